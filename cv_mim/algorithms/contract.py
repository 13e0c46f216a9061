"""The contract every representation learner follows (CV-MIM, Eq. 11, and the baselines of §4.3).

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
global-batch loss, identical on all replicas. :func:`cv_mim.algorithms.step.train_step` scales each replica's loss by
1/num_replicas, so the SUM of gradients that the optimizers all-reduce is exactly the global-batch
gradient. Q and D are small and run on the gathered global batch on every replica (so their BatchNorm
statistics are global too); the encoder uses synchronised BatchNorm.
"""

from typing import Dict, List

import tensorflow as tf

from cv_mim import networks

# The step's random streams: one stateless seed per network call, derived from the step seed.
# Every random draw of a step is a function of (step seed, stream, global example index), so a
# resumed run and any replica split see the same dropout masks and samples (networks.StatelessDropout).
STREAMS = ("encoder_anchor", "encoder_positive", "local_anchor", "local_positive",
           "decoder_self_anchor", "decoder_self_positive", "decoder_cross_anchor",
           "decoder_cross_positive")


def stream_seeds(seed):
    """``{stream: [2] int64 seed}`` for :data:`STREAMS`, derived from the step seed ``seed``."""
    return {name: networks.derive_seed(seed, 1000 + i) for i, name in enumerate(STREAMS)}


def gather(x):
    """Concatenate a per-replica tensor over all replicas (identity on one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_gather(x, axis=0)


def encoder_from_config(config):
    return networks.Encoder(
        pose_dim=config.pose_dim, view_dim=config.view_dim, hidden_dim=config.hidden_dim,
        num_blocks=config.num_blocks, layers_per_block=config.layers_per_block,
        dropout_rate=config.dropout_rate, embedder=config.embedder, num_joints=config.num_joints,
        name="encoder")


def local_branch_from_config(config, output_dim):
    return networks.LocalBranch(
        output_dim, hidden_dim=config.hidden_dim, num_blocks=config.num_blocks,
        layers_per_block=config.layers_per_block, dropout_rate=config.dropout_rate,
        name="local_branch")


class Algorithm:
    """Base class: holds the networks and builds them; subclasses define the objective."""

    def __init__(self, config):
        self.config = config
        self.encoder = encoder_from_config(config)
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

    def encode_with_local(self, anchor, positive, seeds, training):
        """Both views through E and the local branch (each with its own dropout stream).

        Returns (E's outputs for the anchor, for the positive, local features of the anchor, of the
        positive) — this replica's rows, not yet gathered. Needs ``self.local_branch``.
        """
        enc_a = self.encoder(anchor, training=training, seed=seeds["encoder_anchor"])
        enc_p = self.encoder(positive, training=training, seed=seeds["encoder_positive"])
        loc_a = self.local_branch(enc_a["fc0"], training=training,
                                  seed=seeds["local_anchor"])["local"]
        loc_p = self.local_branch(enc_p["fc0"], training=training,
                                  seed=seeds["local_positive"])["local"]
        return enc_a, enc_p, loc_a, loc_p

    def compute_losses(self, anchor, positive, seed, training=True):
        raise NotImplementedError


def mean_abs_correlation(a, b):
    """Mean |Pearson correlation| between every dimension of a and every dimension of b (a monitor)."""
    a = a - tf.reduce_mean(a, axis=0, keepdims=True)
    b = b - tf.reduce_mean(b, axis=0, keepdims=True)
    a = a / (tf.norm(a, axis=0, keepdims=True) + 1e-8)
    b = b / (tf.norm(b, axis=0, keepdims=True) + 1e-8)
    return tf.reduce_mean(tf.abs(tf.matmul(a, b, transpose_a=True)))
