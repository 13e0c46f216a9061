"""Networks of CV-MIM (paper §3, §4.2, App. B.1) as small Keras 3 models.

* :class:`Encoder` E — the residual MLP of Martinez et al. [30]: a 1024-wide input layer, residual blocks
  of Dense-BN-ReLU-Dropout layers, and a linear embedder whose output is split into the pose embedding
  z_p (first ``pose_dim`` entries) and the view embedding z_v (the rest).
* :class:`LocalBranch` — the "local" feature that stands in for the input x in the MI(x; z) term of
  Eq. 5/11 (DIM-style local/global estimator [17]). It shares E's input layer ``fc0`` and has its own
  residual blocks and linear head (fact sheet §1.4).
* :func:`fuse` — the fusion ⊙ of Eq. 11: mixture of experts (default), product of experts, concatenation.
* :class:`LikelihoodEstimator` Q — the Gaussian variational network q(z_v | z_p) of §3.2 / App. B.1.
* :class:`Discriminator` D — the three-layer MLP of §3.3 / App. B.1 (logit output).
* :class:`Decoder` G — the cross-reconstruction decoder of the Eq. 12 baselines (same residual MLP).

Every model returns a dict with named keys and casts its outputs to float32, so an opt-in
``mixed_bfloat16`` Keras policy only changes the internal matmuls.
"""

import math
from typing import Dict

import numpy as np
import tensorflow as tf

from cv_mim import checks

keras = tf.keras

FUSIONS = ("moe", "poe", "cat")
EMBEDDERS = ("point", "gaussian")


def _dense(units, name, activation=None, he_normal=True):
    # The authors initialise both kernel and bias with he_normal (fact sheet §1.1); Q and D keep Keras
    # defaults (glorot_uniform / zeros).
    if he_normal:
        return keras.layers.Dense(
            units, activation=activation, kernel_initializer="he_normal",
            bias_initializer="he_normal", name=name)
    return keras.layers.Dense(units, activation=activation, name=name)


# The stateless draws of the training step name their algorithm. Outside XLA, "auto_select" is
# Philox on CPU and GPU (the same numbers, checked); under XLA, "auto_select" derived a different
# key/counter from a seed whose first word is negative or 2³² or more (measured: [0, 1] and [3, 7]
# agreed, [-5, 2] and [2⁴⁰, 5] did not; derive_seed's first word is a random int32), so the masks
# differed under jit_compile. See stateless_unit_uniform for the second XLA difference.
RNG_ALG = "philox"


def derive_seed(seed, *keys):
    """A [2] int64 stateless seed derived from ``seed`` by folding in the integers ``keys`` in order."""
    seed = tf.cast(seed, tf.int64)
    for key in keys:
        seed = tf.cast(tf.random.experimental.stateless_fold_in(seed, key, alg=RNG_ALG), tf.int64)
    return seed


def stateless_unit_uniform(shape, seed):
    """Float32 uniform on [0, 1): ``tf.random.stateless_uniform(shape, seed)`` bit for bit, also
    under XLA.

    Both paths draw the same Philox uint32 words from ``seed`` (same key and counter) but map them
    to floats differently: TensorFlow's CPU/GPU kernel puts the LOW 23 bits of each word into the
    mantissa, XLA the HIGH 23 bits, so under ``jit_compile`` every dropout mask and prior sample
    differed (an XLA step's first loss was ~1e-2 relative off the plain step's). The words are
    drawn here and mapped the kernel's way: the default (non-XLA) numbers are unchanged and XLA
    draws the same ones.
    """
    mantissa = tf.bitwise.bitwise_or(stateless_mantissa_bits(shape, seed), 0x3F800000)
    return tf.bitcast(mantissa, tf.float32) - 1.0  # exactly mantissa · 2⁻²³


def stateless_mantissa_bits(shape, seed):
    """uint32 in [0, 2²³): the integers m with ``stateless_unit_uniform(shape, seed) == m · 2⁻²³``."""
    bits = tf.random.stateless_uniform(shape, seed=seed, minval=None, maxval=None, dtype=tf.uint32,
                                       alg=RNG_ALG)
    return tf.bitwise.bitwise_and(bits, 0x7FFFFF)


def unit_uniform_threshold(p: float) -> int:
    """The integer T with ``m · 2⁻²³ < float32(p)  ⇔  m < T`` for every integer m in [0, 2²³)."""
    return int(math.ceil(float(np.float32(p)) * 2 ** 23))


def global_rows(shape_fn, seed, batch):
    """Random rows for THIS replica's examples, drawn as rows of the GLOBAL batch.

    ``shape_fn(n, seed)`` draws an [n, ...] tensor statelessly; the whole global batch
    (``batch × num_replicas`` rows) is drawn and the replica's rows ``[r·batch, (r + 1)·batch)`` are
    returned, so example k of the global batch gets the same values however the batch is split (the
    stateless generators produce one flat counter-based stream, so row k does not depend on how many
    rows are drawn). Every replica must hold ``batch`` examples (the loop's equal split).
    """
    ctx = tf.distribute.get_replica_context()
    replicas = 1 if ctx is None else ctx.num_replicas_in_sync
    if replicas == 1:
        return shape_fn(batch, seed)
    replica = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
    rows = shape_fn(batch * replicas, seed)
    return rows[replica * batch:(replica + 1) * batch]


class StatelessDropout(keras.layers.Layer):
    """Inverted dropout whose mask is a function of (seed, global example index) only.

    Keras' ``Dropout`` draws from an RNG state that is neither checkpointed nor independent of the
    replica split; here the mask of example k is row k of a stateless uniform draw for the global batch
    (:func:`global_rows`), so a resumed run and a run on any number of replicas see the same masks.
    With ``seed=None`` in training (a caller outside the training step) a stateful draw is used.
    """

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)

    def call(self, x, training=False, seed=None):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        if seed is None:
            kept = tf.random.uniform(tf.shape(x)) < keep
        else:
            # The mask of stateless_unit_uniform(...) < keep, compared as integers (three fewer
            # elementwise passes per layer; the same masks bit for bit, tested).
            units = tf.shape(x)[1:]
            bits = global_rows(
                lambda n, s: stateless_mantissa_bits(tf.concat([[n], units], 0), s),
                seed, tf.shape(x)[0])
            kept = bits < tf.constant(unit_uniform_threshold(keep), tf.uint32)
        return x * (tf.cast(kept, x.dtype) / tf.cast(keep, x.dtype))


class BatchNormalization(keras.layers.BatchNormalization):
    """Keras ``BatchNormalization`` whose training pass on one replica is TensorFlow's fused kernel.

    Same variables, arguments, outputs and moving-statistics update as Keras' layer (biased batch
    variance, ``moving = moving·momentum + batch·(1 − momentum)``); in training, with a single replica,
    channels last, no mask, no renormalisation and a float32 / bfloat16 / float16 input (the dtypes
    the kernel takes), the batch is normalised by ``FusedBatchNormV3``
    (statistics in float32 for bfloat16 inputs, one kernel forward and one backward) instead of Keras'
    seven elementwise and reduction ops — about half the time of the layer on CPU (BUILD_NOTES §10).
    Everything else — inference, several replicas (the all-reduced statistics of
    ``synchronized=True``), a mask — is Keras' own code. The two paths agree to float32 rounding
    (``tests/test_networks.py``).
    """

    def call(self, inputs, training=None, mask=None):
        ctx = tf.distribute.get_replica_context()
        replicas = 1 if ctx is None else ctx.num_replicas_in_sync
        rank = len(inputs.shape)
        if (not (training and self.trainable) or mask is not None or replicas != 1 or self.renorm
                or rank < 2 or self.axis not in (-1, rank - 1) or not (self.scale and self.center)
                or self.epsilon < 1.001e-5
                or inputs.dtype not in (tf.float32, tf.bfloat16, tf.float16)):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        x = tf.reshape(inputs, [-1, 1, 1, channels])
        empty = tf.constant([], tf.float32)
        y, mean, unbiased_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=tf.cast(self.gamma, tf.float32), offset=tf.cast(self.beta, tf.float32),
            mean=empty, variance=empty, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel returns the Bessel-corrected batch variance; Keras' moving average uses the
        # biased one (the one the batch was normalised with).
        count = tf.cast(tf.shape(x)[0], tf.float32)
        variance = unbiased_variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(tf.reshape(y, tf.shape(inputs)), self.compute_dtype)


class _LinearLayer(keras.layers.Layer):
    """Dense → BatchNorm → ReLU → Dropout, the unit of the residual MLP."""

    def __init__(self, units, dropout_rate, sync_batch_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dropout_rate = dropout_rate
        self.sync_batch_norm = sync_batch_norm
        self.dense = _dense(units, "dense")
        # Synchronised BatchNorm: statistics over the global batch, so results do not depend on the
        # number of replicas (a no-op cost on one device).
        self.bn = BatchNormalization(synchronized=sync_batch_norm, name="bn")
        self.dropout = StatelessDropout(dropout_rate)

    def call(self, x, training=False, seed=None):
        x = self.dense(x)
        x = self.bn(x, training=training)
        x = tf.nn.relu(x)
        return self.dropout(x, training=training, seed=seed)


class _ResidualBlock(keras.layers.Layer):
    """x + [Linear layer] × n; the add comes after the last dropout, no activation after it."""

    def __init__(self, units, num_layers, dropout_rate, sync_batch_norm=True, **kwargs):
        super().__init__(**kwargs)
        # One named attribute per sub-layer: Keras 3 wraps lists of layers in a TrackedList that
        # tf.train.Checkpoint does not follow, so layers held only in a list would not be saved.
        self.num_layers = int(num_layers)
        for i in range(self.num_layers):
            setattr(self, f"linear{i}", _LinearLayer(units, dropout_rate, sync_batch_norm,
                                                     name=f"linear{i}"))

    def call(self, x, training=False, seed=None):
        y = x
        for i in range(self.num_layers):
            layer_seed = None if seed is None else derive_seed(seed, i)
            y = getattr(self, f"linear{i}")(y, training=training, seed=layer_seed)
        return x + y


class _ResidualTrunk(keras.layers.Layer):
    """The residual blocks shared in shape by the encoder, the local branch and the decoder."""

    def __init__(self, hidden_dim, num_blocks, layers_per_block, dropout_rate, sync_batch_norm,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_blocks = int(num_blocks)
        for i in range(self.num_blocks):  # named attributes, not a list (see _ResidualBlock)
            setattr(self, f"res_block{i + 1}", _ResidualBlock(
                hidden_dim, layers_per_block, dropout_rate, sync_batch_norm,
                name=f"res_block{i + 1}"))

    def call(self, x, training=False, seed=None):
        for i in range(self.num_blocks):
            block_seed = None if seed is None else derive_seed(seed, i)
            x = getattr(self, f"res_block{i + 1}")(x, training=training, seed=block_seed)
        return x


def _check_positive(**values):
    for name, value in values.items():
        checks.positive_int(value, name)


def _check_non_negative(**values):
    for name, value in values.items():
        checks.non_negative_int(value, name)


class Encoder(keras.Model):
    """Encoder E (App. B.1): 2D pose [B, J, 2] → pose embedding z_p and view embedding z_v.

    Args:
      pose_dim: size d of z_p (paper: 32).
      view_dim: size of z_v (paper: 32).
      hidden_dim: width of every hidden layer (1024).
      num_blocks: residual blocks after the input layer (2).
      layers_per_block: Dense-BN-ReLU-Dropout layers per block (2).
      dropout_rate: dropout after every hidden layer (0.25).
      embedder: ``"point"`` (linear head, the paper's model) or ``"gaussian"`` (mean and log-variance
        heads with a reparameterised sample in training — the VAE / β-VAE baselines).
      num_joints: keypoints per pose (13).
      sync_batch_norm: synchronise BatchNorm statistics across replicas.

    ``call(keypoints, training, seed)``: ``seed`` ([2] int) makes every random draw in training (the
    dropout masks and the Gaussian sample) a stateless function of (seed, global example index); see
    :class:`StatelessDropout`.

    Call returns a dict: ``pose_embedding`` [B, pose_dim], ``view_embedding`` [B, view_dim],
    ``embedding`` [B, pose_dim + view_dim] (their concatenation), ``fc0`` [B, hidden_dim] (the input-layer
    activation the local branch reads) and, for the Gaussian embedder, ``mean`` and ``log_var``.
    """

    def __init__(self, pose_dim=32, view_dim=32, hidden_dim=1024, num_blocks=2, layers_per_block=2,
                 dropout_rate=0.25, embedder="point", num_joints=13, sync_batch_norm=True,
                 **kwargs):
        kwargs.setdefault("name", "encoder")
        super().__init__(**kwargs)
        _check_positive(pose_dim=pose_dim, view_dim=view_dim, hidden_dim=hidden_dim,
                        num_joints=num_joints, layers_per_block=layers_per_block)
        _check_non_negative(num_blocks=num_blocks)
        if embedder not in EMBEDDERS:
            raise ValueError(f"embedder must be one of {EMBEDDERS}, got {embedder!r}")
        self.pose_dim = int(pose_dim)
        self.view_dim = int(view_dim)
        self.hidden_dim = int(hidden_dim)
        self.num_blocks = int(num_blocks)
        self.layers_per_block = int(layers_per_block)
        self.dropout_rate = float(dropout_rate)
        self.embedder = embedder
        self.num_joints = int(num_joints)
        self.sync_batch_norm = bool(sync_batch_norm)
        self.fc0 = _LinearLayer(hidden_dim, dropout_rate, sync_batch_norm, name="fc0")
        self.trunk = _ResidualTrunk(hidden_dim, num_blocks, layers_per_block, dropout_rate,
                                    sync_batch_norm, name="trunk")
        out_dim = self.pose_dim + self.view_dim
        self.head = _dense(out_dim, "embedder")
        if embedder == "gaussian":
            self.log_var_head = _dense(out_dim, "embedder_log_var")

    def call(self, keypoints, training=False, seed=None):
        keypoints = tf.convert_to_tensor(keypoints)
        if keypoints.shape.rank != 3 or tuple(keypoints.shape[1:]) != (self.num_joints, 2):
            raise ValueError(f"Encoder input must have shape [B, {self.num_joints}, 2] (normalised "
                             f"2D keypoints), got {keypoints.shape}")
        x = tf.reshape(keypoints, [tf.shape(keypoints)[0], self.num_joints * 2])
        seeds = [None] * 3 if seed is None else [derive_seed(seed, k) for k in range(3)]
        fc0 = self.fc0(x, training=training, seed=seeds[0])
        h = self.trunk(fc0, training=training, seed=seeds[1])
        outputs = {"fc0": tf.cast(fc0, tf.float32)}
        embedding = tf.cast(self.head(h), tf.float32)
        if self.embedder == "gaussian":
            mean = embedding
            # 10·tanh keeps the log-variance in a finite range (the authors' Gaussian embedder).
            log_var = 10.0 * tf.tanh(tf.cast(self.log_var_head(h), tf.float32))
            outputs["mean"], outputs["log_var"] = mean, log_var
            if training:
                if seed is None:
                    eps = tf.random.normal(tf.shape(mean))
                else:
                    eps = global_rows(lambda n, s: tf.random.stateless_normal(
                        [n, tf.shape(mean)[1]], seed=s, alg=RNG_ALG), seeds[2], tf.shape(mean)[0])
                embedding = mean + tf.exp(0.5 * log_var) * eps
            else:
                embedding = mean
        outputs["embedding"] = embedding
        outputs["pose_embedding"] = embedding[:, :self.pose_dim]
        outputs["view_embedding"] = embedding[:, self.pose_dim:]
        return outputs

    def get_config(self):
        return {
            "pose_dim": self.pose_dim, "view_dim": self.view_dim, "hidden_dim": self.hidden_dim,
            "num_blocks": self.num_blocks, "layers_per_block": self.layers_per_block,
            "dropout_rate": self.dropout_rate, "embedder": self.embedder,
            "num_joints": self.num_joints, "sync_batch_norm": self.sync_batch_norm,
            "name": self.name,
        }


class LocalBranch(keras.Model):
    """The local feature for the MI(x; z_p ⊙ z_v) term of Eq. 11 (fact sheet §1.4).

    It reads the encoder's ``fc0`` activation [B, hidden_dim] (so it shares the encoder's input layer and
    its dropout mask), runs its own residual blocks, and a linear head of ``output_dim``.
    """

    def __init__(self, output_dim, hidden_dim=1024, num_blocks=2, layers_per_block=2,
                 dropout_rate=0.25, sync_batch_norm=True, **kwargs):
        kwargs.setdefault("name", "local_branch")
        super().__init__(**kwargs)
        _check_positive(output_dim=output_dim, hidden_dim=hidden_dim,
                        layers_per_block=layers_per_block)
        _check_non_negative(num_blocks=num_blocks)
        self.output_dim = int(output_dim)
        self.hidden_dim = int(hidden_dim)
        self.num_blocks = int(num_blocks)
        self.layers_per_block = int(layers_per_block)
        self.dropout_rate = float(dropout_rate)
        self.sync_batch_norm = bool(sync_batch_norm)
        self.trunk = _ResidualTrunk(hidden_dim, num_blocks, layers_per_block, dropout_rate,
                                    sync_batch_norm, name="trunk")
        self.head = _dense(output_dim, "embedder")

    def call(self, fc0, training=False, seed=None):
        h = self.trunk(fc0, training=training, seed=seed)
        return {"local": tf.cast(self.head(h), tf.float32)}

    def get_config(self):
        return {"output_dim": self.output_dim, "hidden_dim": self.hidden_dim,
                "num_blocks": self.num_blocks, "layers_per_block": self.layers_per_block,
                "dropout_rate": self.dropout_rate, "sync_batch_norm": self.sync_batch_norm,
                "name": self.name}


def fused_dim(fusion, pose_dim, view_dim):
    """Size of z_p ⊙ z_v for a fusion; MOE and POE are element-wise and need pose_dim == view_dim."""
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
    if fusion == "cat":
        return pose_dim + view_dim
    if pose_dim != view_dim:
        raise ValueError(
            f"fusion {fusion!r} is element-wise and needs pose_dim == view_dim, got "
            f"pose_dim={pose_dim}, view_dim={view_dim} (use fusion='cat')")
    return pose_dim


def fuse(pose, view, fusion="moe"):
    """The fusion ⊙ of Eq. 11 on [B, d] tensors (parameter-free, fact sheet §2).

    ``moe``: mixture of experts [44], 0.5·(z_p + z_v); ``poe``: product of experts [52], z_p · z_v;
    ``cat``: concatenation [z_p ; z_v].
    """
    if fusion in ("moe", "poe"):
        p_dim, v_dim = pose.shape[-1], view.shape[-1]
        if p_dim is not None and v_dim is not None and p_dim != v_dim:
            fused_dim(fusion, p_dim, v_dim)  # raises, naming both sizes
    if fusion == "moe":
        return 0.5 * (pose + view)
    if fusion == "poe":
        return pose * view
    if fusion == "cat":
        return tf.concat([pose, view], axis=-1)
    raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")


class LikelihoodEstimator(keras.Model):
    """Q: the Gaussian q(z_v | z_p) of §3.2 (App. B.1: Dense → BN → ELU → Dense, per head).

    Returns ``mean`` [B, output_dim] and ``log_var`` [B, output_dim]; the log-variance head ends in tanh
    (log σ² ∈ (−1, 1)) as in the authors' code, which keeps the likelihood well conditioned.
    """

    def __init__(self, output_dim, hidden_dim=None, **kwargs):
        kwargs.setdefault("name", "likelihood_estimator")
        super().__init__(**kwargs)
        _check_positive(output_dim=output_dim)
        self.output_dim = int(output_dim)
        self.hidden_dim = int(hidden_dim or output_dim)
        self.mean_hidden = keras.layers.Dense(self.hidden_dim, name="mean_hidden")
        self.mean_bn = BatchNormalization(name="mean_bn")
        self.mean_out = keras.layers.Dense(self.output_dim, name="mean_out")
        self.log_var_hidden = keras.layers.Dense(self.hidden_dim, name="log_var_hidden")
        self.log_var_bn = BatchNormalization(name="log_var_bn")
        self.log_var_out = keras.layers.Dense(self.output_dim, activation="tanh",
                                              name="log_var_out")

    def call(self, inputs, training=False):
        m = tf.nn.elu(self.mean_bn(self.mean_hidden(inputs), training=training))
        v = tf.nn.elu(self.log_var_bn(self.log_var_hidden(inputs), training=training))
        return {"mean": tf.cast(self.mean_out(m), tf.float32),
                "log_var": tf.cast(self.log_var_out(v), tf.float32)}

    def get_config(self):
        return {"output_dim": self.output_dim, "hidden_dim": self.hidden_dim, "name": self.name}


class Discriminator(keras.Model):
    """D of §3.3 / App. B.1: Dense(n, ReLU) → Dense(n/2, ReLU) → Dense(1) logit, n = input size."""

    def __init__(self, input_dim, **kwargs):
        kwargs.setdefault("name", "discriminator")
        super().__init__(**kwargs)
        _check_positive(input_dim=input_dim)
        self.input_dim = int(input_dim)
        self.hidden1 = keras.layers.Dense(self.input_dim, activation="relu", name="hidden1")
        self.hidden2 = keras.layers.Dense(max(1, self.input_dim // 2), activation="relu",
                                          name="hidden2")
        self.logit = keras.layers.Dense(1, name="logit")

    def call(self, inputs, training=False):
        return {"logit": tf.cast(self.logit(self.hidden2(self.hidden1(inputs))), tf.float32)}

    def get_config(self):
        return {"input_dim": self.input_dim, "name": self.name}


class Decoder(keras.Model):
    """G of the cross-reconstruction baselines (Eq. 12): (z_p, z_v) → 2D pose [B, J, 2].

    The same residual MLP as the encoder ([30]), fed the concatenation [z_p ; z_v].
    """

    def __init__(self, num_joints=13, hidden_dim=1024, num_blocks=2, layers_per_block=2,
                 dropout_rate=0.25, sync_batch_norm=True, **kwargs):
        kwargs.setdefault("name", "decoder")
        super().__init__(**kwargs)
        _check_positive(num_joints=num_joints, hidden_dim=hidden_dim,
                        layers_per_block=layers_per_block)
        _check_non_negative(num_blocks=num_blocks)
        self.num_joints = int(num_joints)
        self.hidden_dim = int(hidden_dim)
        self.num_blocks = int(num_blocks)
        self.layers_per_block = int(layers_per_block)
        self.dropout_rate = float(dropout_rate)
        self.sync_batch_norm = bool(sync_batch_norm)
        self.fc0 = _LinearLayer(hidden_dim, dropout_rate, sync_batch_norm, name="fc0")
        self.trunk = _ResidualTrunk(hidden_dim, num_blocks, layers_per_block, dropout_rate,
                                    sync_batch_norm, name="trunk")
        self.head = _dense(num_joints * 2, "embedder")

    def call(self, inputs, training=False, seed=None):
        pose, view = inputs
        seeds = [None] * 2 if seed is None else [derive_seed(seed, k) for k in range(2)]
        h = self.fc0(tf.concat([pose, view], axis=-1), training=training, seed=seeds[0])
        h = self.trunk(h, training=training, seed=seeds[1])
        out = tf.cast(self.head(h), tf.float32)
        return {"keypoints": tf.reshape(out, [-1, self.num_joints, 2])}

    def get_config(self):
        return {"num_joints": self.num_joints, "hidden_dim": self.hidden_dim,
                "num_blocks": self.num_blocks, "layers_per_block": self.layers_per_block,
                "dropout_rate": self.dropout_rate, "sync_batch_norm": self.sync_batch_norm,
                "name": self.name}


def count_parameters(model) -> int:
    """Number of trainable scalars of a built model."""
    return int(sum(int(tf.size(v)) for v in model.trainable_variables))


def network_summary(networks: Dict[str, keras.Model]) -> Dict[str, int]:
    return {name: count_parameters(net) for name, net in networks.items()}
