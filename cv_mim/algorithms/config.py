"""The model configuration: one dataclass, one validation place (written to ``model_config.json``).

Every pretraining flag that shapes the model or its objective is generated from
:class:`ModelConfig`'s fields (see :mod:`cv_mim.pretrain`), and every consumer (the loop, export, the
checkpoint restore) rebuilds the networks from it.
"""

import dataclasses
import json
import math

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


def _field(default, help_text, *, choices=None, flag=None, flag_default=dataclasses.MISSING):
    """A config field that is also a pretraining flag (see :func:`flag_fields`)."""
    return dataclasses.field(default=default, metadata={
        "help": help_text, "choices": choices, "flag": flag,
        "flag_default": default if flag_default is dataclasses.MISSING else flag_default})


@dataclasses.dataclass(frozen=True)
class FlagField:
    """One generated flag: its name, the config field it sets, type, default, choices and help."""

    name: str
    field: str
    type: type
    default: object
    choices: tuple
    help: str


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

    # Each field with a ``help`` is a ``cv_mim.pretrain`` flag of the same name (or ``flag``), its
    # choices from ``choices``: the flags are generated from these fields (:func:`flag_fields`).
    algorithm: str = _field("cv_mim", "Representation learner.", choices=registry.ALGORITHMS)
    pose_dim: int = _field(32, "Size of z_p.", flag="pose_embedding_dim")
    view_dim: int = _field(32, "Size of z_v.", flag="view_embedding_dim")
    hidden_dim: int = _field(1024, "Width of the residual MLPs (App. B.1).")
    num_blocks: int = _field(2, "Residual blocks.")
    layers_per_block: int = _field(2, "Linear layers per residual block.")
    dropout_rate: float = _field(0.25, "Dropout rate of the residual MLPs.")
    fusion: str = _field("moe", "Fusion of z_p and z_v in Eq. 11.", choices=networks.FUSIONS)
    # Fixed by the data and the export (not flags).
    num_joints: int = 13
    keypoint_profile: str = "canonical13"
    normalization: str = "mid_hip_offset/max_torso_pair_scale/unit_0.5/missing_joints_zero"
    # Loss settings.
    view_loss_weight: float = _field(5.0, "λ1 of Eq. 11.")
    disentangle_loss_weight: float = _field(0.5, "λ2 of Eq. 11 (0 removes L_inter and Q).")
    prior_loss_weight: float = _field(1.0, "λ3 of Eq. 11 (0 removes L_prior and D).")
    alignment_loss_weight: float = _field(
        0.0, "Weight of a cross-view alignment term on z_p that is NOT in the paper (0 = Eq. 11 as "
        "written): the two views' squared z_p distance as a share of z_p's batch spread "
        "(losses.cross_view_discrepancy). cv_mim only; BUILD_NOTES §1/§14.")
    loss_weighting: str = _field(
        "paper", "; ".join(f"{k}: {v}" for k, v in LOSS_WEIGHTING_HELP.items()) + ".",
        choices=LOSS_WEIGHTINGS)
    club_variant: str = _field("paper", "CLUB estimator of Eq. 7 (paper: unclipped; authors: "
                               "off-diagonal negatives, clipped at 0).", choices=losses.CLUB_VARIANTS)
    generator_loss: str = _field("non_saturating", "Encoder's side of Eq. 10.",
                                 choices=losses.GENERATOR_LOSSES)
    gradient_penalty_weight: float = _field(1.0, "Weight of D's gradient penalty (Eq. 10).")
    mi_measure: str = _field("jsd", "MI estimator of Eq. 6.", choices=losses.MEASURES)
    kl_weight: float = _field(1.0, "KL weight of vae (default 1) and beta_vae (β, default 4).",
                              flag_default=None)
    kl_scale: str = _field(
        "per_dimension", "VAE/β-VAE KL reduction over the latent dimensions; "
        + "; ".join(f"{k}: {v}" for k, v in losses.KL_SCALE_HELP.items()) + ".",
        choices=losses.KL_SCALES)
    infonce_temperature: float = _field(1.0, "Temperature of the infonce baseline.")
    infomax_cross_weight: float = _field(5.0, "Weight of the cross-view terms of the infonce/dim "
                                         "baselines (Eq. 2).")
    cross_pairing: str = _field("swap_pose", "infonce/dim cross-view term: (z_p^j, z_v^i) or Eq. 2 "
                                "as printed (z_p^j, z_v^j).", choices=infomax.CROSS_PAIRINGS)

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
        if self.kl_scale not in losses.KL_SCALES:
            raise ValueError(f"kl_scale must be one of {losses.KL_SCALES}, got {self.kl_scale!r}")
        if self.mi_measure not in losses.MEASURES:
            raise ValueError(f"mi_measure must be one of {losses.MEASURES}, got {self.mi_measure!r}")
        if not self.infonce_temperature > 0:
            raise ValueError(f"infonce_temperature must be > 0, got {self.infonce_temperature}")
        if self.cross_pairing not in infomax.CROSS_PAIRINGS:
            raise ValueError(f"cross_pairing must be one of {infomax.CROSS_PAIRINGS}, got "
                             f"{self.cross_pairing!r}")
        for name in ("view_loss_weight", "disentangle_loss_weight", "prior_loss_weight",
                     "kl_weight", "gradient_penalty_weight", "infomax_cross_weight",
                     "alignment_loss_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):  # NaN fails every comparison
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.alignment_loss_weight > 0 and self.algorithm != "cv_mim":
            raise ValueError(f"alignment_loss_weight is a CV-MIM term; {self.algorithm} does not use "
                             f"it, got {self.alignment_loss_weight}")
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
        values = dict(values)
        if "kl_scale" not in values and values.get("algorithm") in registry.GAUSSIAN_EMBEDDERS:
            # Written before the field existed: that VAE was trained with the authors' summed KL.
            values["kl_scale"] = "authors"
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"model config has unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)


def flag_fields():
    """The :class:`ModelConfig` fields that are pretraining flags, as :class:`FlagField` s."""
    hints = {"int": int, "float": float, "str": str}
    out = []
    for f in dataclasses.fields(ModelConfig):
        meta = f.metadata
        if "help" not in meta:
            continue
        kind = f.type if isinstance(f.type, type) else hints[str(f.type)]
        out.append(FlagField(name=meta["flag"] or f.name, field=f.name, type=kind,
                             default=meta["flag_default"], choices=tuple(meta["choices"] or ()),
                             help=meta["help"]))
    return out


def from_flag_values(values):
    """A :class:`ModelConfig` from ``{flag name: value}`` (every :func:`flag_fields` flag).

    A ``kl_weight`` of None means the algorithm's default (:func:`registry.default_kl_weight`).
    """
    kwargs = {ff.field: values[ff.name] for ff in flag_fields()}
    if kwargs["kl_weight"] is None:
        kwargs["kl_weight"] = registry.default_kl_weight(kwargs["algorithm"])
    return ModelConfig(**kwargs)
