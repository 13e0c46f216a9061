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

LOSS_WEIGHTINGS = ("paper", "authors")


@dataclasses.dataclass
class ModelConfig:
    """Everything needed to rebuild an algorithm's networks (written to ``model_config.json``).

    Loss weights follow Eq. 11 (λ1 = 5, λ2 = 0.5, λ3 = 1, §4.2). ``loss_weighting="authors"`` applies the
    authors' hidden factors instead (fact sheet §3.10, §9.1): the cross-view term ×2 (effective 10), an
    extra view-to-view CLUB term with a second Q (weight 2·λ2) and Q's likelihood on it ×2.
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
