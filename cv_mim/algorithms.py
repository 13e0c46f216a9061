"""Representation-learning algorithms: CV-MIM (Eq. 11) and the baselines of §4.3 (Eq. 2, Eq. 12).

Every algorithm follows one contract, so the training loop, the checkpoint layout, export and every
downstream binary treat them alike:

* ``algorithm.encoder`` — the :class:`~cv_mim.networks.Encoder` that export and embedding use;
* ``algorithm.networks`` — ordered ``{name: keras.Model}`` of everything with weights (the checkpoint
  object names, part of the interface: ``encoder``, ``local_branch``, ``estimator``, ``inter_estimator``,
  ``discriminator``, ``decoder``);
* ``algorithm.optimizer_groups`` — ordered ``{group: [network names]}``: one optimizer per group, applied
  in this order within a step (CV-MIM: ``encoder`` → ``estimator`` → ``discriminator``, the paper's
  "optimized alternately" as the authors' code does it);
* ``algorithm.compute_losses(anchor, positive, seed, training)`` — one shared forward pass returning
  ``{group: {"total_loss": ..., <named terms>...}}`` plus a ``"metrics"`` group that is never optimised.

Multi-replica semantics (``tf.distribute``): each replica encodes its share of the batch, then every
embedding is all-gathered, so contrastive negatives come from the GLOBAL batch and every loss is the
global-batch loss, identical on all replicas. :func:`train_step` scales each replica's loss by
1/num_replicas, so the SUM of gradients that the optimizers all-reduce is exactly the global-batch
gradient. Q and D are small and run on the gathered global batch on every replica (so their BatchNorm
statistics are global too); the encoder uses synchronised BatchNorm.
"""

import contextlib
import dataclasses
import json
from typing import Dict, List

import tensorflow as tf

from cv_mim import losses
from cv_mim import networks

ALGORITHMS = ("cv_mim", "autoencoder", "vae", "beta_vae", "infonce", "dim")
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
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
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
        if self.cross_pairing not in ("swap_pose", "other_view"):
            raise ValueError(f"cross_pairing must be one of ('swap_pose', 'other_view'), got "
                             f"{self.cross_pairing!r}")
        for name in ("view_loss_weight", "disentangle_loss_weight", "prior_loss_weight",
                     "kl_weight", "gradient_penalty_weight", "infomax_cross_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        networks.fused_dim(self.fusion, self.pose_dim, self.view_dim)  # validates the fusion

    @property
    def embedder(self):
        return "gaussian" if self.algorithm in ("vae", "beta_vae") else "point"

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"model config has unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)


def _gather(x):
    """Concatenate a per-replica tensor over all replicas (identity on one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_gather(x, axis=0)


def _encoder_from_config(config):
    return networks.Encoder(
        pose_dim=config.pose_dim, view_dim=config.view_dim, hidden_dim=config.hidden_dim,
        num_blocks=config.num_blocks, layers_per_block=config.layers_per_block,
        dropout_rate=config.dropout_rate, embedder=config.embedder, num_joints=config.num_joints,
        name="encoder")


def _local_branch_from_config(config, output_dim):
    return networks.LocalBranch(
        output_dim, hidden_dim=config.hidden_dim, num_blocks=config.num_blocks,
        layers_per_block=config.layers_per_block, dropout_rate=config.dropout_rate,
        name="local_branch")


class Algorithm:
    """Base class: holds the networks and builds them; subclasses define the objective."""

    def __init__(self, config: ModelConfig):
        self.config = config
        self.encoder = _encoder_from_config(config)
        self.networks: Dict[str, tf.keras.Model] = {"encoder": self.encoder}
        self.optimizer_groups: Dict[str, List[str]] = {"encoder": ["encoder"]}

    def build(self):
        """Creates every variable by calling each network once on zeros."""
        cfg = self.config
        dummy = tf.zeros([2, cfg.num_joints, 2])
        self.compute_losses(dummy, dummy, tf.constant([0, 0], tf.int64), training=False)
        return self

    def group_variables(self, group):
        variables = []
        for name in self.optimizer_groups[group]:
            variables.extend(self.networks[name].trainable_variables)
        return variables

    def compute_losses(self, anchor, positive, seed, training=True):
        raise NotImplementedError


class CVMIM(Algorithm):
    """CV-MIM, the full objective of Eq. 11.

    Encoder E (with the local branch) minimises

        Σ_v L_MI(x_v; z_p,v ⊙ z_v,v) + λ1·L_MI(z_p; z_p⁺) + λ2·Σ_v L_inter(z_p,v; z_v,v)
        + λ3·Σ_v L_prior,gen(σ(z_p,v ⊕ z_v,v)),

    over the two views v ∈ {anchor, positive} of each 3D pose, where L_MI is the Jensen–Shannon
    estimator of Eq. 6 (the local branch stands in for x, DIM-style), L_inter the CLUB bound of Eq. 7
    and L_prior,gen the encoder's side of Eq. 10. Q minimises −log q(z_v | z_p) (Eq. 8, maximum
    likelihood) and D the discriminator loss of Eq. 10 plus the gradient penalty. λ2 = 0 removes Q and
    λ3 = 0 removes D entirely (the "w/o L_inter" / "w/o L_prior" ablations of Table 5).
    """

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        cfg = config
        self.fused_dim = networks.fused_dim(cfg.fusion, cfg.pose_dim, cfg.view_dim)
        self.local_branch = _local_branch_from_config(cfg, self.fused_dim)
        self.networks["local_branch"] = self.local_branch
        self.optimizer_groups["encoder"] = ["encoder", "local_branch"]
        self.use_estimator = cfg.disentangle_loss_weight > 0
        self.use_discriminator = cfg.prior_loss_weight > 0
        self.authors_weighting = cfg.loss_weighting == "authors"
        if self.use_estimator:
            self.networks["estimator"] = networks.LikelihoodEstimator(cfg.view_dim,
                                                                      name="estimator")
            self.optimizer_groups["estimator"] = ["estimator"]
            if self.authors_weighting:
                self.networks["inter_estimator"] = networks.LikelihoodEstimator(
                    cfg.view_dim, name="inter_estimator")
                self.optimizer_groups["estimator"].append("inter_estimator")
        if self.use_discriminator:
            self.networks["discriminator"] = networks.Discriminator(
                cfg.pose_dim + cfg.view_dim, name="discriminator")
            self.optimizer_groups["discriminator"] = ["discriminator"]

    def compute_losses(self, anchor, positive, seed, training=True):
        cfg = self.config
        enc_a = self.encoder(anchor, training=training)
        enc_p = self.encoder(positive, training=training)
        loc_a = self.local_branch(enc_a["fc0"], training=training)["local"]
        loc_p = self.local_branch(enc_p["fc0"], training=training)["local"]
        pose_a, view_a = _gather(enc_a["pose_embedding"]), _gather(enc_a["view_embedding"])
        pose_p, view_p = _gather(enc_p["pose_embedding"]), _gather(enc_p["view_embedding"])
        loc_a, loc_p = _gather(loc_a), _gather(loc_p)

        measure = cfg.mi_measure
        representation_loss = (
            losses.fenchel_dual_loss(loc_a, networks.fuse(pose_a, view_a, cfg.fusion), measure)
            + losses.fenchel_dual_loss(loc_p, networks.fuse(pose_p, view_p, cfg.fusion), measure))
        cross_view = losses.fenchel_dual_loss(pose_a, pose_p, measure)
        view_factor = 2.0 if self.authors_weighting else 1.0
        view_loss = cfg.view_loss_weight * view_factor * cross_view

        enc_terms = {
            "representation_loss": representation_loss,
            "view_loss": view_loss,
        }
        result = {"metrics": {
            "cross_view_mi": -cross_view,
            "pose_view_correlation": _mean_abs_correlation(pose_a, view_a),
        }}
        total = representation_loss + view_loss

        if self.use_estimator:
            q = self.networks["estimator"]
            q_a = q(pose_a, training=training)
            q_p = q(pose_p, training=training)
            variant = cfg.club_variant
            intra = (losses.club_upper_bound(q_a["mean"], q_a["log_var"], view_a, variant=variant)
                     + losses.club_upper_bound(q_p["mean"], q_p["log_var"], view_p,
                                               variant=variant))
            disentangle = cfg.disentangle_loss_weight * intra
            est_loss = (losses.likelihood_loss(q_a["mean"], q_a["log_var"], view_a)
                        + losses.likelihood_loss(q_p["mean"], q_p["log_var"], view_p))
            est_terms = {"intra_likelihood_loss": est_loss}
            enc_terms["intra_bound_loss"] = disentangle
            if self.authors_weighting:
                q_inter = self.networks["inter_estimator"](view_a, training=training)
                inter = losses.club_upper_bound(q_inter["mean"], q_inter["log_var"], view_p,
                                                variant=variant)
                inter_loss = 2.0 * cfg.disentangle_loss_weight * inter
                enc_terms["inter_bound_loss"] = inter_loss
                disentangle = disentangle + inter_loss
                inter_ll = 2.0 * losses.likelihood_loss(q_inter["mean"], q_inter["log_var"],
                                                        view_p)
                est_terms["inter_likelihood_loss"] = inter_ll
                est_loss = est_loss + inter_ll
            enc_terms["disentangle_loss"] = disentangle
            total = total + disentangle
            result["estimator"] = dict(est_terms, total_loss=est_loss)

        if self.use_discriminator:
            d = self.networks["discriminator"]
            prior_loss = 0.0
            disc_loss = 0.0
            seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
            for i, (pose, view) in enumerate(((pose_a, view_a), (pose_p, view_p))):
                fake = tf.sigmoid(tf.concat([pose, view], axis=-1))
                # The uniform prior samples are drawn for the whole global batch from the step's seed,
                # so they do not depend on how the batch is split across replicas.
                real = tf.random.stateless_uniform(tf.shape(fake), seed=seeds[i])
                prior_loss += losses.generator_loss(d(fake, training=training)["logit"],
                                                    cfg.generator_loss)
                # D's own loss sees the embeddings as constants: the encoder is never trained on it.
                fake_const = tf.stop_gradient(fake)
                with tf.GradientTape(watch_accessed_variables=False) as gp_tape:
                    gp_tape.watch([real, fake_const])
                    real_logit = d(real, training=training)["logit"]
                    fake_logit = d(fake_const, training=training)["logit"]
                grad_real, grad_fake = gp_tape.gradient(
                    [real_logit, fake_logit], [real, fake_const])
                disc_loss += (losses.discriminator_loss(real_logit, fake_logit)
                              + cfg.gradient_penalty_weight * 0.5
                              * (losses.gradient_penalty(grad_real)
                                 + losses.gradient_penalty(grad_fake)))
            prior_loss = cfg.prior_loss_weight * prior_loss
            enc_terms["prior_loss"] = prior_loss
            total = total + prior_loss
            result["discriminator"] = {"total_loss": disc_loss}

        result["encoder"] = dict(enc_terms, total_loss=total)
        return result


def _mean_abs_correlation(a, b):
    """Mean |Pearson correlation| between every dimension of a and every dimension of b (a monitor)."""
    a = a - tf.reduce_mean(a, axis=0, keepdims=True)
    b = b - tf.reduce_mean(b, axis=0, keepdims=True)
    a = a / (tf.norm(a, axis=0, keepdims=True) + 1e-8)
    b = b / (tf.norm(b, axis=0, keepdims=True) + 1e-8)
    return tf.reduce_mean(tf.abs(tf.matmul(a, b, transpose_a=True)))


def get_algorithm(config: ModelConfig) -> Algorithm:
    """Builds the algorithm named by ``config.algorithm`` (variables are created by ``build()``)."""
    if config.algorithm == "cv_mim":
        return CVMIM(config)
    from cv_mim import baselines  # pylint: disable=import-outside-toplevel
    return baselines.get_baseline(config)


def create_optimizers(algorithm: Algorithm, learning_rate=0.02):
    """One AdaGrad(learning_rate) per optimizer group (§4.2: AdaGrad, lr 0.02), built eagerly.

    Call inside the strategy scope; building the optimizer state before the first step is required by
    Keras 3 under tf.distribute.
    """
    optimizers = {}
    for group in algorithm.optimizer_groups:
        opt = tf.keras.optimizers.Adagrad(learning_rate=learning_rate, name=f"{group}_optimizer")
        opt.build(algorithm.group_variables(group))
        optimizers[group] = opt
    return optimizers


@tf.autograph.experimental.do_not_convert
def train_step(algorithm: Algorithm, optimizers, anchor, positive, seed):
    """One step on this replica's share of the batch: shared forward pass, then E → Q → D updates.

    One ``GradientTape`` per optimizer group records the single forward pass; each group's gradient is
    taken of its own ``total_loss`` with respect to its own variables only, so the encoder never
    receives Q's likelihood loss or D's loss, and Q and D never receive the encoder's objective. All
    gradients are computed before any update is applied.

    Args:
      algorithm: a built :class:`Algorithm`.
      optimizers: ``{group: optimizer}`` from :func:`create_optimizers`.
      anchor, positive: [b, J, 2] normalised 2D poses of this replica (two views of the same 3D poses).
      seed: [2] int64 step seed (prior samples and other step randomness).
    Returns:
      The nested dict of losses (global-batch values).
    """
    groups = list(algorithm.optimizer_groups)
    variables = {g: algorithm.group_variables(g) for g in groups}
    with contextlib.ExitStack() as stack:
        tapes = {}
        for g in groups:
            tape = stack.enter_context(tf.GradientTape(watch_accessed_variables=False))
            # Keras 3 variables wrap a tf.Variable; the tape watches the wrapped one.
            tape.watch([v.value for v in variables[g]])
            tapes[g] = tape
        result = algorithm.compute_losses(anchor, positive, seed, training=True)
        # Scaled inside the tapes (an op outside them would not be recorded).
        ctx = tf.distribute.get_replica_context()
        scale = 1.0 / (ctx.num_replicas_in_sync if ctx is not None else 1)
        scaled = {g: result[g]["total_loss"] * scale for g in groups}
    grads = {g: tapes[g].gradient(scaled[g], [v.value for v in variables[g]]) for g in groups}
    for g in groups:
        optimizers[g].apply_gradients(
            [(gr, v) for gr, v in zip(grads[g], variables[g]) if gr is not None])
    return result
