"""The view-disentangled representation-learning baselines of §4.3 (Tables 1–3, 8–10).

All of them keep CV-MIM's encoder E (the same architecture, pose/view split and training setup, App. B.1)
and follow the :class:`~cv_mim.algorithms.contract.Algorithm` contract with ONE optimizer group, ``"encoder"``,
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
(:func:`~cv_mim.losses.reconstruction_loss`, the authors' scale) and KL_v is averaged over the batch
and, by ``kl_scale`` (:data:`~cv_mim.losses.KL_SCALES`), averaged over the embedding dimensions
(``per_dimension``, the default: both terms per scalar) or summed over them (``authors``, fact sheet
§3.8–3.9, whose optimum on normalised 2D poses is the collapsed posterior — BUILD_NOTES §1).
"""

from absl import logging
import tensorflow as tf

from cv_mim import losses
from cv_mim import networks
from cv_mim.algorithms import contract

# β of the β-VAE baseline when the user gives none. The paper does not state its β; 4 is the value of
# Higgins et al. [16] for their main disentanglement benchmark and the usual "β > 1" default. Library
# code takes ``ModelConfig.kl_weight`` as given; binaries call :func:`default_kl_weight` when the user
# did not set the KL weight.
DEFAULT_BETA = 4.0



def _mean_joint_error(reconstruction, target):
    """Mean Euclidean distance per joint, in normalised units (0.5 = the largest torso-pair length)."""
    return tf.reduce_mean(tf.norm(reconstruction - target, axis=-1))


class CrossReconstruction(contract.Algorithm):
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
    Σ_v MSE(G(z_p,v̄, z_v,v), x_v), ``kl_loss`` = kl_weight·(KL_a + KL_p) at ``kl_scale`` (0 for the
    point embedder), ``kl_divergence`` = KL_a + KL_p in nats (summed over the dimensions, unweighted,
    whatever ``kl_scale``), and the two ``*_error`` metrics the mean per-joint
    Euclidean distance, averaged over both views (normalised units).
    """

    def __init__(self, config):
        super().__init__(config)
        cfg = config
        self.variational = cfg.embedder == "gaussian"
        if cfg.algorithm == "beta_vae" and cfg.kl_weight == 1.0:
            logging.warning("beta_vae with kl_weight == 1 is the plain VAE objective; the β-VAE "
                            "default is kl_weight=%s (registry.default_kl_weight)", DEFAULT_BETA)
        self.decoder = networks.Decoder(
            num_joints=cfg.num_joints, hidden_dim=cfg.hidden_dim, num_blocks=cfg.num_blocks,
            layers_per_block=cfg.layers_per_block, dropout_rate=cfg.dropout_rate, name="decoder")
        self.networks["decoder"] = self.decoder
        self.optimizer_groups["encoder"] = ["encoder", "decoder"]

    def compute_losses(self, anchor, positive, seed, training=True):
        """Eq. 12 for both views (+ the KL of the Gaussian embedder).

        Args:
          anchor, positive: [b, J, 2] normalised 2D poses of this replica (two views of the same 3D
            poses; row i of both is the same pose).
          seed: [2] int step seed: the dropout masks and the VAE sample
            (:func:`contract.stream_seeds`).
          training: training mode for BatchNorm, dropout and the Gaussian sample.
        Returns:
          The nested dict of losses and metrics described in the class docstring (global-batch
          values).
        """
        cfg = self.config
        seeds = contract.stream_seeds(seed)
        anchor = tf.convert_to_tensor(anchor, tf.float32)
        positive = tf.convert_to_tensor(positive, tf.float32)
        enc_a = self.encoder(anchor, training=training, seed=seeds["encoder_anchor"])
        enc_p = self.encoder(positive, training=training, seed=seeds["encoder_positive"])
        pose_a, view_a = enc_a["pose_embedding"], enc_a["view_embedding"]
        pose_p, view_p = enc_p["pose_embedding"], enc_p["view_embedding"]

        def decode(pose, view, stream):
            # The four decodings are separate calls, as the authors do, so each call's BatchNorm batch
            # statistics come from one kind of (pose, view) pairing. The decoder runs on this replica's share (its
            # synchronised BatchNorm makes the statistics global); the reconstructions are then
            # gathered so that the loss is the global-batch mean on every replica.
            return contract.gather(self.decoder((pose, view), training=training,
                                                seed=seeds[stream])["keypoints"])

        self_a = decode(pose_a, view_a, "decoder_self_anchor")
        self_p = decode(pose_p, view_p, "decoder_self_positive")
        # Cross reconstruction (the second term of Eq. 12): the pose of the OTHER view with this view's
        # view embedding must still reproduce this view's input.
        cross_a = decode(pose_p, view_a, "decoder_cross_anchor")
        cross_p = decode(pose_a, view_p, "decoder_cross_positive")
        x_a, x_p = contract.gather(anchor), contract.gather(positive)

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
            "pose_view_correlation": contract.mean_abs_correlation(
                contract.gather(pose_a), contract.gather(view_a)),
        }
        if self.variational:
            params = [(contract.gather(e["mean"]), contract.gather(e["log_var"]))
                      for e in (enc_a, enc_p)]
            kl_loss = cfg.kl_weight * sum(losses.gaussian_kl_loss(m, lv, cfg.kl_scale)
                                          for m, lv in params)
            total = total + kl_loss
            # In nats (summed over the dimensions) whatever the scale, so a collapse shows as ~0.
            metrics["kl_divergence"] = sum(losses.gaussian_kl_loss(m, lv, "authors")
                                           for m, lv in params)
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
