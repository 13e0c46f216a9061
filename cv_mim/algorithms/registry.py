"""The one list of representation learners: ``{name: Spec}``, from which everything else derives.

The pretraining flag ``--algorithm``, :class:`~cv_mim.algorithms.config.ModelConfig`'s validation, the
demo's method list, the report's display names, the benchmark's defaults and the tests' parametrisation
all read :data:`REGISTRY`. Adding a baseline is one class and one entry here.

* ``cv_mim`` — :class:`~cv_mim.algorithms.cvmim.CVMIM`, the full objective of Eq. 11;
* ``autoencoder``, ``vae``, ``beta_vae`` — :class:`~cv_mim.algorithms.reconstruction.CrossReconstruction`
  (Eq. 12);
* ``infonce``, ``dim`` — :class:`~cv_mim.algorithms.infomax.CrossViewInfoMax` (Eq. 2 optimised directly).
"""

import dataclasses
from typing import Callable

from cv_mim.algorithms import cvmim
from cv_mim.algorithms import infomax
from cv_mim.algorithms import reconstruction


@dataclasses.dataclass(frozen=True)
class Spec:
    """One algorithm: how to build it and how people call it."""

    build: Callable          # config -> Algorithm (variables created by ``.build()``)
    display_name: str        # the paper's name (report tables, figure legends)
    family: str              # "cv_mim", "reconstruction" (Eq. 12) or "infomax" (Eq. 2)
    embedder: str = "point"  # "gaussian": the encoder returns a mean and a log-variance
    default_kl_weight: float = 1.0  # what binaries use when the user sets no KL weight


REGISTRY = {
    "cv_mim": Spec(cvmim.CVMIM, "CV-MIM", "cv_mim"),
    "autoencoder": Spec(reconstruction.CrossReconstruction, "Auto-Encoder", "reconstruction"),
    "vae": Spec(reconstruction.CrossReconstruction, "VAE", "reconstruction", embedder="gaussian"),
    "beta_vae": Spec(reconstruction.CrossReconstruction, "β-VAE", "reconstruction",
                     embedder="gaussian", default_kl_weight=reconstruction.DEFAULT_BETA),
    "infonce": Spec(infomax.CrossViewInfoMax, "InfoNCE", "infomax"),
    "dim": Spec(infomax.CrossViewInfoMax, "DIM", "infomax"),
}
ALGORITHMS = tuple(REGISTRY)
BASELINES = tuple(name for name in REGISTRY if name != "cv_mim")
RECONSTRUCTION_BASELINES = tuple(n for n, s in REGISTRY.items() if s.family == "reconstruction")
INFOMAX_BASELINES = tuple(n for n, s in REGISTRY.items() if s.family == "infomax")
GAUSSIAN_EMBEDDERS = tuple(n for n, s in REGISTRY.items() if s.embedder == "gaussian")
DISPLAY_NAMES = {name: spec.display_name for name, spec in REGISTRY.items()}


def spec(algorithm: str) -> Spec:
    """The registry entry of ``algorithm``, or a ValueError naming the choices."""
    try:
        return REGISTRY[algorithm]
    except KeyError:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}") from None


def default_kl_weight(algorithm: str) -> float:
    """The KL weight a binary uses for ``algorithm`` when the user did not choose one.

    :data:`~cv_mim.algorithms.reconstruction.DEFAULT_BETA` for ``beta_vae``, 1.0 otherwise (the VAE's
    weight; unused by algorithms without a Gaussian embedder). Library code takes
    ``ModelConfig.kl_weight`` as given.
    """
    return spec(algorithm).default_kl_weight


def get_algorithm(config):
    """Builds the algorithm named by ``config.algorithm`` (variables are created by ``build()``)."""
    return spec(config.algorithm).build(config)


def get_baseline(config):
    """:func:`get_algorithm` restricted to the baselines (refuses ``cv_mim``)."""
    if config.algorithm not in BASELINES:
        raise ValueError(f"get_baseline builds one of {BASELINES}, got algorithm={config.algorithm!r} "
                         "(CV-MIM itself is built by registry.get_algorithm)")
    return get_algorithm(config)
