"""The model configuration: one dataclass, one validation place (written to ``model_config.json``).

Every pretraining flag that shapes the model or its objective is generated from
:class:`ModelConfig`'s fields (see :mod:`cv_mim.pretrain`), and every consumer (the loop, export, the
checkpoint restore) rebuilds the networks from it.
"""

import dataclasses
import json

from cv_mim import losses
from cv_mim import networks
from cv_mim.algorithms import infomax
from cv_mim.algorithms import registry

# How the terms of Eq. 11 are weighted (the one definition; flag choices and help derive from it).
LOSS_WEIGHTING_HELP = {
    "paper": "Eq. 5/11 as written: the cross-view sum over i != j has two (equal, symmetric) terms "
             "for two views, so the cross-view JSD term is weighted 2·λ1",
    "single_cross_view": "the cross-view term counted once (weight λ1), the pre-issue-13 default",
    "authors": "the authors' code: cross-view 2·λ1 plus a view-to-view CLUB term (weight 2·λ2) with a "
               "second Q whose likelihood is weighted ×2",
}
LOSS_WEIGHTINGS = tuple(LOSS_WEIGHTING_HELP)
# Multiplier of λ1 on the cross-view term, per weighting (Eq. 5: Σ_{i≠j} over two views = 2 terms).
CROSS_VIEW_FACTORS = {"paper": 2.0, "single_cross_view": 1.0, "authors": 2.0}


@dataclasses.dataclass
class ModelConfig:
    """Everything needed to rebuild an algorithm's networks (written to ``model_config.json``).

    Loss weights follow Eq. 11 (λ1 = 5, λ2 = 0.5, λ3 = 1, §4.2). ``loss_weighting`` (see
    :data:`LOSS_WEIGHTING_HELP`): ``"paper"`` (default) weights the cross-view JSD term 2·λ1, because
    Eq. 5 sums I(z_p^i; z_p^j) over i ≠ j — two symmetric terms for two views (this coincides with the
    authors' ×2, fact sheet §3.5); ``"single_cross_view"`` counts it once (λ1); ``"authors"`` adds the
    authors' other hidden factors (fact sheet §3.10, §9.1): an extra view-to-view CLUB term with a
    second Q (weight 2·λ2) and Q's likelihood on it ×2.
    """

    algorithm: str = "cv_mim"
    pose_dim: int = 32
    view_dim: int = 32
    hidden_dim: int = 1024
    num_blocks: int = 2
    layers_per_block: int = 2
    dropout_rate: float = 0.25
    fusion: str = "moe"
    num_joints: int = 13
    keypoint_profile: str = "canonical13"
    normalization: str = "mid_hip_offset/max_torso_pair_scale/unit_0.5/missing_joints_zero"
    # Loss settings.
    view_loss_weight: float = 5.0          # λ1
    disentangle_loss_weight: float = 0.5   # λ2
    prior_loss_weight: float = 1.0         # λ3
    loss_weighting: str = "paper"
    club_variant: str = "paper"
    generator_loss: str = "non_saturating"
    gradient_penalty_weight: float = 1.0
    mi_measure: str = "jsd"
    kl_weight: float = 1.0                 # VAE: 1; β-VAE: β
    infonce_temperature: float = 1.0
    infomax_cross_weight: float = 5.0      # weight of the cross-view terms of the Eq. 2 baselines
    cross_pairing: str = "swap_pose"       # Eq. 2 baselines: (z_p^j, z_v^i) or "other_view" (z_p^j, z_v^j)

    def __post_init__(self):
        registry.spec(self.algorithm)  # validates the name
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(
                f"loss_weighting must be one of {LOSS_WEIGHTINGS}, got {self.loss_weighting!r}")
        if self.club_variant not in losses.CLUB_VARIANTS:
            raise ValueError(
                f"club_variant must be one of {losses.CLUB_VARIANTS}, got {self.club_variant!r}")
        if self.generator_loss not in losses.GENERATOR_LOSSES:
            raise ValueError(f"generator_loss must be one of {losses.GENERATOR_LOSSES}, got "
                             f"{self.generator_loss!r}")
        if self.mi_measure not in losses.MEASURES:
            raise ValueError(f"mi_measure must be one of {losses.MEASURES}, got {self.mi_measure!r}")
        if not self.infonce_temperature > 0:
            raise ValueError(f"infonce_temperature must be > 0, got {self.infonce_temperature}")
        if self.cross_pairing not in infomax.CROSS_PAIRINGS:
            raise ValueError(f"cross_pairing must be one of {infomax.CROSS_PAIRINGS}, got "
                             f"{self.cross_pairing!r}")
        for name in ("view_loss_weight", "disentangle_loss_weight", "prior_loss_weight",
                     "kl_weight", "gradient_penalty_weight", "infomax_cross_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        networks.fused_dim(self.fusion, self.pose_dim, self.view_dim)  # validates the fusion

    @property
    def cross_view_factor(self):
        """c in c·λ1·L_MI(z_p; z_p⁺): 2 for Eq. 5's two i ≠ j terms, 1 for ``single_cross_view``."""
        return CROSS_VIEW_FACTORS[self.loss_weighting]

    @property
    def embedder(self):
        return registry.spec(self.algorithm).embedder

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"model config has unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)
