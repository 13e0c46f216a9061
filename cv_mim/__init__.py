"""CV-MIM: view-disentangled human pose representations (Zhao et al., CVPR 2021)."""

__version__ = "0.1.0"
