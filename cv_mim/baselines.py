"""The view-disentangled representation-learning baselines of §4.3 (Tables 1–3, 8–10).

All of them keep CV-MIM's encoder E (the same architecture, pose/view split and training setup, App. B.1)
and follow the :class:`~cv_mim.algorithms.Algorithm` contract with ONE optimizer group, ``"encoder"``,
that holds every network of the baseline.

Cross-reconstruction baselines (Eq. 12), :class:`CrossReconstruction`:

* ``autoencoder`` — point embedder, decoder G (:class:`~cv_mim.networks.Decoder`, checkpoint name
  ``decoder``);
* ``vae`` [22] — Gaussian embedder (E returns a mean and a log-variance and samples in training) plus
  ``kl_weight``·KL[q(z|x) ‖ N(0, I)], ``kl_weight`` = 1;
* ``beta_vae`` [1, 16] — the same with ``kl_weight`` = β (see :data:`DEFAULT_BETA`).

For both views v ∈ {a, p} of one 3D pose, with the normalised 2D input x_v:

    L = Σ_v ‖x_v − G(z_p,v, z_v,v)‖² + Σ_v ‖x_v − G(z_p,v̄, z_v,v)‖² + kl_weight·Σ_v KL_v,

v̄ the other view; ‖·‖² is the mean squared error over all B·J·2 entries
(:func:`~cv_mim.losses.reconstruction_loss`) and KL_v is summed over the embedding dimensions and
averaged over the batch (:func:`~cv_mim.losses.gaussian_kl_loss`) — the authors' scaling (fact sheet
§3.8–3.9).

MI baselines (Eq. 2 optimised directly, §3.4 "Discussion"), :class:`CrossViewInfoMax`:

    L = Σ_v L_MI(l_v; z_p,v ⊙ z_v,v) + w·Σ_v L_MI(l_v; z_p,v̄ ⊙ z_v,v),

where l_v is the local branch (:class:`~cv_mim.networks.LocalBranch` on E's ``fc0``, checkpoint name
``local_branch``) standing in for x_v, ⊙ the fusion of ``config.fusion`` and w =
``config.infomax_cross_weight``. L_MI is the Jensen–Shannon (or ``config.mi_measure``) estimator of
Eq. 6 for ``dim`` [17] and InfoNCE [34] (temperature ``config.infonce_temperature``) for ``infonce``.
The cross-view global feature pairs the OTHER view's pose embedding with the SAME view's view
embedding by default (``cross_pairing="swap_pose"``); see :class:`CrossViewInfoMax` for why.

Multi-replica semantics are CV-MIM's (see :mod:`cv_mim.algorithms`): every tensor that enters a loss
is all-gathered, so contrastive negatives come from the global batch and every loss is the
global-batch loss, identical on all replicas.
"""

from absl import logging
import tensorflow as tf

from cv_mim import algorithms
from cv_mim import losses
from cv_mim import networks

RECONSTRUCTION_BASELINES = ("autoencoder", "vae", "beta_vae")
INFOMAX_BASELINES = ("infonce", "dim")
BASELINES = RECONSTRUCTION_BASELINES + INFOMAX_BASELINES
CROSS_PAIRINGS = ("swap_pose", "other_view")

# β of the β-VAE baseline when the user gives none. The paper does not state its β; 4 is the value of
# Higgins et al. [16] for their main disentanglement benchmark and the usual "β > 1" default. Library
# code takes ``ModelConfig.kl_weight`` as given; binaries call :func:`default_kl_weight` when the user
# did not set the KL weight.
DEFAULT_BETA = 4.0


def default_kl_weight(algorithm):
    """The KL weight a binary should use for ``algorithm`` when the user did not choose one.

    Returns :data:`DEFAULT_BETA` for ``beta_vae`` and 1.0 otherwise (the VAE's weight; unused by
    algorithms without a Gaussian embedder).
    """
    if algorithm not in algorithms.ALGORITHMS:
        raise ValueError(f"algorithm must be one of {algorithms.ALGORITHMS}, got {algorithm!r}")
    return DEFAULT_BETA if algorithm == "beta_vae" else 1.0


def _mean_joint_error(reconstruction, target):
    """Mean Euclidean distance per joint, in normalised units (0.5 = the largest torso-pair length)."""
    return tf.reduce_mean(tf.norm(reconstruction - target, axis=-1))


class CrossReconstruction(algorithms.Algorithm):
    """Auto-encoder / VAE / β-VAE with the cross-reconstruction objective of Eq. 12.

    Networks: ``encoder`` and ``decoder`` (both in the single optimizer group ``encoder``). The decoder
    is the encoder's residual MLP [30] fed [z_p ; z_v] and outputs [B, J, 2]; it runs in training mode
    exactly when the encoder does (the authors always run it in training mode; evaluation never uses
    the decoder, so only ``compute_losses(training=False)`` differs, and it is then deterministic).
    Gaussian embedders (``vae``, ``beta_vae``) decode the reparameterised sample in training and the
    mean otherwise; the KL term is always computed from the mean and log-variance.

    ``compute_losses`` returns::

        {"encoder": {"total_loss", "reconstruction_loss", "cross_reconstruction_loss", "kl_loss"},
         "metrics": {"reconstruction_error", "cross_reconstruction_error", "pose_view_correlation",
                     "kl_divergence" (Gaussian embedder only)}}

    with ``reconstruction_loss`` = Σ_v MSE(G(z_p,v, z_v,v), x_v), ``cross_reconstruction_loss`` =
    Σ_v MSE(G(z_p,v̄, z_v,v), x_v), ``kl_loss`` = kl_weight·(KL_a + KL_p) (0 for the point embedder),
    ``kl_divergence`` = KL_a + KL_p unweighted, and the two ``*_error`` metrics the mean per-joint
    Euclidean distance, averaged over both views (normalised units).
    """

    def __init__(self, config: algorithms.ModelConfig):
        if config.algorithm not in RECONSTRUCTION_BASELINES:
            raise ValueError(f"CrossReconstruction handles {RECONSTRUCTION_BASELINES}, got "
                             f"algorithm={config.algorithm!r}")
        super().__init__(config)
        cfg = config
        self.variational = cfg.embedder == "gaussian"
        if cfg.algorithm == "beta_vae" and cfg.kl_weight == 1.0:
            logging.warning("beta_vae with kl_weight == 1 is the plain VAE objective; the β-VAE "
                            "default is kl_weight=%s (baselines.default_kl_weight)", DEFAULT_BETA)
        self.decoder = networks.Decoder(
            num_joints=cfg.num_joints, hidden_dim=cfg.hidden_dim, num_blocks=cfg.num_blocks,
            layers_per_block=cfg.layers_per_block, dropout_rate=cfg.dropout_rate, name="decoder")
        self.networks["decoder"] = self.decoder
        self.optimizer_groups["encoder"] = ["encoder", "decoder"]

    def compute_losses(self, anchor, positive, seed, training=True):
        """Eq. 12 for both views (+ the KL of the Gaussian embedder); ``seed`` is unused.

        Args:
          anchor, positive: [b, J, 2] normalised 2D poses of this replica (two views of the same 3D
            poses; row i of both is the same pose).
          seed: [2] int step seed (unused: the only randomness, the VAE sample, is drawn by E).
          training: training mode for BatchNorm, dropout and the Gaussian sample.
        Returns:
          The nested dict of losses and metrics described in the class docstring (global-batch
          values).
        """
        del seed
        cfg = self.config
        anchor = tf.convert_to_tensor(anchor, tf.float32)
        positive = tf.convert_to_tensor(positive, tf.float32)
        enc_a = self.encoder(anchor, training=training)
        enc_p = self.encoder(positive, training=training)
        pose_a, view_a = enc_a["pose_embedding"], enc_a["view_embedding"]
        pose_p, view_p = enc_p["pose_embedding"], enc_p["view_embedding"]

        def decode(pose, view):
            # The four decodings are separate calls, as the authors do, so each call's BatchNorm batch
            # statistics come from one kind of (pose, view) pairing. The decoder runs on this replica's share (its
            # synchronised BatchNorm makes the statistics global); the reconstructions are then
            # gathered so that the loss is the global-batch mean on every replica.
            return algorithms._gather(self.decoder((pose, view), training=training)["keypoints"])

        self_a, self_p = decode(pose_a, view_a), decode(pose_p, view_p)
        # Cross reconstruction (the second term of Eq. 12): the pose of the OTHER view with this view's
        # view embedding must still reproduce this view's input.
        cross_a, cross_p = decode(pose_p, view_a), decode(pose_a, view_p)
        x_a, x_p = algorithms._gather(anchor), algorithms._gather(positive)

        reconstruction = (losses.reconstruction_loss(self_a, x_a)
                          + losses.reconstruction_loss(self_p, x_p))
        cross_reconstruction = (losses.reconstruction_loss(cross_a, x_a)
                                + losses.reconstruction_loss(cross_p, x_p))
        total = reconstruction + cross_reconstruction
        metrics = {
            "reconstruction_error": 0.5 * (_mean_joint_error(self_a, x_a)
                                           + _mean_joint_error(self_p, x_p)),
            "cross_reconstruction_error": 0.5 * (_mean_joint_error(cross_a, x_a)
                                                 + _mean_joint_error(cross_p, x_p)),
            "pose_view_correlation": algorithms._mean_abs_correlation(
                algorithms._gather(pose_a), algorithms._gather(view_a)),
        }
        if self.variational:
            kl = (losses.gaussian_kl_loss(algorithms._gather(enc_a["mean"]),
                                          algorithms._gather(enc_a["log_var"]))
                  + losses.gaussian_kl_loss(algorithms._gather(enc_p["mean"]),
                                            algorithms._gather(enc_p["log_var"])))
            kl_loss = cfg.kl_weight * kl
            total = total + kl_loss
            metrics["kl_divergence"] = kl
        else:
            kl_loss = tf.constant(0.0, tf.float32)
        return {
            "encoder": {
                "total_loss": total,
                "reconstruction_loss": reconstruction,
                "cross_reconstruction_loss": cross_reconstruction,
                "kl_loss": kl_loss,
            },
            "metrics": metrics,
        }


class CrossViewInfoMax(algorithms.Algorithm):
    """Eq. 2 maximised directly with a lower-bound MI estimator: the ``dim`` and ``infonce`` baselines.

    Networks: ``encoder`` and ``local_branch`` (one optimizer group ``encoder``). The local branch reads
    E's ``fc0`` activation and stands in for the input x, exactly as in CV-MIM's MI(x; z_p ⊙ z_v) term;
    the global feature is a fusion (``config.fusion``) of a pose and a view embedding.

    Terms (v ∈ {a, p}, v̄ the other view, l_v the local feature of view v):

    * ``representation_loss`` = Σ_v L_MI(l_v; z_p,v ⊙ z_v,v) — the first sum of Eq. 2;
    * ``cross_representation_loss`` = w·Σ_v L_MI(l_v; g_v) — the cross-view sum of Eq. 2, with
      w = ``config.infomax_cross_weight`` and

      - ``cross_pairing="swap_pose"`` (default): g_v = z_p,v̄ ⊙ z_v,v, the other view's pose with this
        view's view embedding;
      - ``cross_pairing="other_view"``: g_v = z_p,v̄ ⊙ z_v,v̄, Eq. 2 as printed.

    Why ``swap_pose`` is the default: Eq. 2 prints I(x^i; z_p^j, z_v^j), but the paper's own derivation
    (App. A.1, last two inequalities, and App. A.2) bounds I(x^i; z_p^j, z_v^i); the cross-reconstruction
    objective it is compared with (Eq. 12) decodes (z_p⁺, z_v) — the other view's pose with this view's
    view embedding; and the authors' INFOMAX baseline uses that pairing (fact sheet §3.5, §4.3). It is
    also the only reading with a disentangling pressure: with the printed pairing, g_v is just the other
    view's own fused embedding, so the cross term asks BOTH halves of view v̄'s embedding to carry what
    the two views share, and nothing ties the view embedding to the view-specific part of x_v. With
    ``swap_pose`` the only way the fused code can match x_v is for z_p to carry the view-shared content
    (it comes from the other view) and z_v the view-specific content (it must come from this view).

    L_MI is :func:`~cv_mim.losses.fenchel_dual_loss` with ``config.mi_measure`` (default ``"jsd"``,
    Eq. 6) for ``dim`` and :func:`~cv_mim.losses.info_nce_loss` with temperature
    ``config.infonce_temperature`` for ``infonce`` (rows = local features, candidates = the global
    features of the whole global batch). Positives are the diagonal (the same 3D pose), every other
    item of the global batch is a negative.

    Metrics: ``cross_view_mi`` (−L_MI of the JSD/``mi_measure`` estimator between the two views' pose
    embeddings — the quantity CV-MIM optimises, reported here as a monitor so the two can be compared)
    and ``pose_view_correlation``.
    """

    def __init__(self, config: algorithms.ModelConfig, cross_pairing="swap_pose"):
        if config.algorithm not in INFOMAX_BASELINES:
            raise ValueError(f"CrossViewInfoMax handles {INFOMAX_BASELINES}, got "
                             f"algorithm={config.algorithm!r}")
        if cross_pairing not in CROSS_PAIRINGS:
            raise ValueError(f"cross_pairing must be one of {CROSS_PAIRINGS}, got {cross_pairing!r}")
        if config.infomax_cross_weight < 0:
            raise ValueError(
                f"infomax_cross_weight must be >= 0, got {config.infomax_cross_weight}")
        if config.algorithm == "infonce" and not config.infonce_temperature > 0:
            raise ValueError(
                f"infonce_temperature must be > 0, got {config.infonce_temperature}")
        super().__init__(config)
        cfg = config
        self.cross_pairing = cross_pairing
        self.fused_dim = networks.fused_dim(cfg.fusion, cfg.pose_dim, cfg.view_dim)
        self.local_branch = algorithms._local_branch_from_config(cfg, self.fused_dim)
        self.networks["local_branch"] = self.local_branch
        self.optimizer_groups["encoder"] = ["encoder", "local_branch"]

    def mi_loss(self, local, global_):
        """The estimator's loss L_MI(local; global) on [B, D] tensors (minimising it maximises MI)."""
        cfg = self.config
        if cfg.algorithm == "infonce":
            return losses.info_nce_loss(local, global_, temperature=cfg.infonce_temperature)
        return losses.fenchel_dual_loss(local, global_, cfg.mi_measure)

    def compute_losses(self, anchor, positive, seed, training=True):
        """Eq. 2 for both views; ``seed`` is unused.

        Args:
          anchor, positive: [b, J, 2] normalised 2D poses of this replica (row i of both is the same
            3D pose seen from two cameras).
          seed: [2] int step seed (unused).
          training: training mode for BatchNorm and dropout.
        Returns:
          ``{"encoder": {"total_loss", "representation_loss", "cross_representation_loss"},
          "metrics": {"cross_view_mi", "pose_view_correlation"}}`` (global-batch values).
        """
        del seed
        cfg = self.config
        enc_a = self.encoder(anchor, training=training)
        enc_p = self.encoder(positive, training=training)
        loc_a = self.local_branch(enc_a["fc0"], training=training)["local"]
        loc_p = self.local_branch(enc_p["fc0"], training=training)["local"]
        gather = algorithms._gather
        pose_a, view_a = gather(enc_a["pose_embedding"]), gather(enc_a["view_embedding"])
        pose_p, view_p = gather(enc_p["pose_embedding"]), gather(enc_p["view_embedding"])
        loc_a, loc_p = gather(loc_a), gather(loc_p)


        def fuse(pose, view):
            return networks.fuse(pose, view, cfg.fusion)

        representation = (self.mi_loss(loc_a, fuse(pose_a, view_a))
                          + self.mi_loss(loc_p, fuse(pose_p, view_p)))
        if self.cross_pairing == "swap_pose":
            cross_a, cross_p = fuse(pose_p, view_a), fuse(pose_a, view_p)
        else:
            cross_a, cross_p = fuse(pose_p, view_p), fuse(pose_a, view_a)
        cross = cfg.infomax_cross_weight * (self.mi_loss(loc_a, cross_a)
                                            + self.mi_loss(loc_p, cross_p))
        return {
            "encoder": {
                "total_loss": representation + cross,
                "representation_loss": representation,
                "cross_representation_loss": cross,
            },
            "metrics": {
                "cross_view_mi": -losses.fenchel_dual_loss(pose_a, pose_p, cfg.mi_measure),
                "pose_view_correlation": algorithms._mean_abs_correlation(pose_a, view_a),
            },
        }


def get_baseline(config: algorithms.ModelConfig) -> algorithms.Algorithm:
    """Builds the baseline named by ``config.algorithm`` (variables are created by ``build()``).

    ``autoencoder``/``vae``/``beta_vae`` → :class:`CrossReconstruction` (the KL weight is
    ``config.kl_weight`` as given; see :func:`default_kl_weight`); ``infonce``/``dim`` →
    :class:`CrossViewInfoMax` with ``config.cross_pairing`` (default ``"swap_pose"``).
    """
    if config.algorithm in RECONSTRUCTION_BASELINES:
        return CrossReconstruction(config)
    if config.algorithm in INFOMAX_BASELINES:
        return CrossViewInfoMax(config, cross_pairing=config.cross_pairing)
    raise ValueError(f"get_baseline builds one of {BASELINES}, got algorithm={config.algorithm!r} "
                     "(CV-MIM itself is built by algorithms.get_algorithm)")
