"""Temporal classifiers for action recognition from per-frame pose features (App. B.2, §4.3).

All models map a batch of feature sequences ``[B, T, C]`` (T frames, C features per frame: a 32-d pose
embedding, or the 26 normalised 2D keypoint coordinates) to LOGITS ``[B, num_classes]`` (float32). The
"SoftMax" row of the paper's Tables 6 and 7 lives in the loss
(``SparseCategoricalCrossentropy(from_logits=True)``, see :mod:`cv_mim.downstream.trainer`).

* ``"temporal_convnet"`` — :class:`TemporalConvNet`, Table 6 (Penn Action): three
  Conv1D(k7, stride 2) → BN → ReLU → Dropout(0.5) stages with 64 → 128 → 256 filters, global average
  pooling, Dense. Temporal lengths for T = 332 (663 frames sub-sampled by 2): 166, 83, 42.
* ``"resnet1d"`` — :class:`ResNet1D`, Table 7 (NTU RGB+D), the residual network of Fawaz et al. [15]
  modified as in the table: a Conv1D(64, k7) → BN → ReLU stem and three :class:`ResidualBlock1D`
  (64, stride 2), (128, stride 2), (256, stride 1); GAP; Dense. Lengths for T = 300: 300, 150, 75, 75.
* ``"res_tcn"`` — :class:`ResTCN`, the Res-TCN baseline of Kim & Reiter [20] as the authors configure
  it (fact sheet §7.1): Conv1D(64, k8) stem, nine pre-activation units (:class:`PreActivationUnit`),
  final BN → ReLU → GAP → Dense; an L1(1e-4) regulariser on EVERY conv kernel (stem, units, 1×1
  shortcuts).

Common conventions (fact sheet §7.1): every Conv1D uses 'same' padding, so a stride-2 layer maps T to
ceil(T / 2); the convolutions and the final Dense of the Table 6/7 models initialise kernel AND bias
with ``he_normal`` (the authors' choice, kept although BN follows); every Res-TCN convolution (stem,
units, shortcuts) and its final Dense have a ``he_normal`` kernel and the default zero bias. BatchNorm
and Dropout run in inference mode unless the model is called with ``training=True``.

Every model has explicit constructor arguments, a :meth:`get_config` that round-trips through
``from_config``, and ``stage_outputs(x)`` which returns the per-stage activations (to check the Table 6/7
lengths or to extract features).
"""

from typing import Dict, List, Sequence, Tuple

import tensorflow as tf

from cv_mim import checks
from cv_mim import networks

keras = tf.keras


CLASSIFIERS = ("temporal_convnet", "resnet1d", "res_tcn")


# The authors' enum names (fact sheet §7.1) are accepted as aliases, case-insensitively.
_ALIASES = {"convnet": "temporal_convnet", "resnet": "resnet1d", "restcn": "res_tcn"}


_PACKAGE = "cv_mim_action"


# Kim & Reiter's unit table as configured by the authors: (stride, kernel, filters) per unit.
RES_TCN_UNITS = (
    (1, 8, 64), (1, 8, 64), (1, 8, 64),
    (2, 8, 128), (1, 8, 128), (1, 8, 128),
    (2, 8, 256), (1, 8, 256), (1, 8, 256),
)



def _check_rate(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a float in [0, 1), got {value!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1), got {value}")
    return value


def _check_int_tuple(values, name: str) -> Tuple[int, ...]:
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"`{name}` must be a sequence of positive integers, got {values!r}") from None
    if not values:
        raise ValueError(f"`{name}` must not be empty")
    return tuple(checks.positive_int(v, f"{name}[{i}]") for i, v in enumerate(values))


def _check_sequence_input(inputs, model_name: str):
    shape = inputs.shape
    if len(shape) != 3:
        raise ValueError(
            f"{model_name} expects features of shape [batch, frames, channels], got shape "
            f"{tuple(shape)}")
    if shape[1] is not None and shape[1] < 1:
        raise ValueError(f"{model_name} needs at least one frame, got shape {tuple(shape)}")


def _conv(filters, kernel_size, strides, name, he_normal_bias=True, kernel_regularizer=None):
    # The authors use a he_normal kernel everywhere; CONVNET/RESNET also a he_normal bias, RESTCN the
    # default zero bias (fact sheet §7.1).
    return keras.layers.Conv1D(
        filters, kernel_size, strides=strides, padding="same", kernel_initializer="he_normal",
        bias_initializer="he_normal" if he_normal_bias else "zeros",
        kernel_regularizer=kernel_regularizer, name=name)


def _final_dense(num_classes, he_normal_bias=True):
    return keras.layers.Dense(num_classes, kernel_initializer="he_normal",
                              bias_initializer="he_normal" if he_normal_bias else "zeros",
                              name="logits")


def _logits(dense, pooled):
    # Logits are always float32, so an opt-in mixed-precision policy only changes the convolutions.
    return tf.cast(dense(pooled), tf.float32)


@keras.utils.register_keras_serializable(package=_PACKAGE)
class ResidualBlock1D(keras.layers.Layer):
    """The R-Conv1D block of Table 7 (after Fawaz et al. [15]).

    main path:  Conv(k7, stride s) → BN → ReLU → Dropout → Conv(k5) → BN → ReLU → Dropout → Conv(k3) → BN
    shortcut:   Conv(k1, stride s) → BN (always a projection, as in Table 7, even when shapes agree)
    output:     ReLU(main + shortcut)

    Args:
        filters: output channels of every convolution of the block.
        strides: temporal stride s of the first convolution and of the shortcut.
        dropout_rate: drop rate after the first two ReLUs (Table 7: 0.5).
        kernel_sizes: kernel sizes of the three main-path convolutions (Table 7: 7, 5, 3).

    Input ``[B, T, C_in]`` → output ``[B, ceil(T / s), filters]``.
    """

    def __init__(self, filters=64, strides=1, dropout_rate=0.5, kernel_sizes=(7, 5, 3), **kwargs):
        super().__init__(**kwargs)
        self.filters = checks.positive_int(filters, "filters")
        self.strides = checks.positive_int(strides, "strides")
        self.dropout_rate = _check_rate(dropout_rate, "dropout_rate")
        self.kernel_sizes = _check_int_tuple(kernel_sizes, "kernel_sizes")
        if len(self.kernel_sizes) != 3:
            raise ValueError(f"`kernel_sizes` must have 3 entries, got {self.kernel_sizes}")
        k1, k2, k3 = self.kernel_sizes
        self.conv1 = _conv(self.filters, k1, self.strides, "conv1")
        self.bn1 = networks.BatchNormalization(name="bn1")
        self.drop1 = keras.layers.Dropout(self.dropout_rate, name="drop1")
        self.conv2 = _conv(self.filters, k2, 1, "conv2")
        self.bn2 = networks.BatchNormalization(name="bn2")
        self.drop2 = keras.layers.Dropout(self.dropout_rate, name="drop2")
        self.conv3 = _conv(self.filters, k3, 1, "conv3")
        self.bn3 = networks.BatchNormalization(name="bn3")
        self.shortcut_conv = _conv(self.filters, 1, self.strides, "shortcut_conv")
        self.shortcut_bn = networks.BatchNormalization(name="shortcut_bn")

    def call(self, x, training=False):
        y = self.drop1(tf.nn.relu(self.bn1(self.conv1(x), training=training)), training=training)
        y = self.drop2(tf.nn.relu(self.bn2(self.conv2(y), training=training)), training=training)
        y = self.bn3(self.conv3(y), training=training)
        shortcut = self.shortcut_bn(self.shortcut_conv(x), training=training)
        return tf.nn.relu(y + shortcut)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides, dropout_rate=self.dropout_rate,
                      kernel_sizes=list(self.kernel_sizes))
        return config


@keras.utils.register_keras_serializable(package=_PACKAGE)
class PreActivationUnit(keras.layers.Layer):
    """One Res-TCN unit of Kim & Reiter [20]: x + Conv(Dropout(ReLU(BN(x)))).

    The identity path becomes a 1×1 convolution with the unit's stride (no activation, no BN) when the
    shape changes, i.e. when the input channel count differs from ``filters`` or ``strides`` > 1; the
    decision is taken in :meth:`build` from the input shape.

    Args:
        filters: output channels.
        kernel_size: temporal kernel of the main convolution (Res-TCN: 8).
        strides: temporal stride of the main convolution and of the shortcut.
        dropout_rate: drop rate between ReLU and the convolution.
        kernel_regularizer: optional regulariser of both convolution kernels (main and shortcut);
            :class:`ResTCN` passes the authors' L1(1e-4).

    Input ``[B, T, C_in]`` → output ``[B, ceil(T / strides), filters]``.
    """

    def __init__(self, filters=64, kernel_size=8, strides=1, dropout_rate=0.5, kernel_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = checks.positive_int(filters, "filters")
        self.kernel_size = checks.positive_int(kernel_size, "kernel_size")
        self.strides = checks.positive_int(strides, "strides")
        self.dropout_rate = _check_rate(dropout_rate, "dropout_rate")
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bn = networks.BatchNormalization(name="bn")
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")
        self.conv = _conv(self.filters, self.kernel_size, self.strides, "conv", he_normal_bias=False,
                          kernel_regularizer=self.kernel_regularizer)
        self.shortcut_conv = None

    def build(self, input_shape):
        if input_shape[-1] != self.filters or self.strides != 1:
            self.shortcut_conv = _conv(self.filters, 1, self.strides, "shortcut_conv", he_normal_bias=False,
                                       kernel_regularizer=self.kernel_regularizer)

    def call(self, x, training=False):
        y = self.dropout(tf.nn.relu(self.bn(x, training=training)), training=training)
        y = self.conv(y)
        shortcut = x if self.shortcut_conv is None else self.shortcut_conv(x)
        return y + shortcut

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      dropout_rate=self.dropout_rate,
                      kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer)
                      if self.kernel_regularizer is not None else None)
        return config


class _SequenceClassifier(keras.Model):
    """Shared plumbing: ``call`` returns the logits, ``stage_outputs`` the per-stage activations."""

    def _forward(self, inputs, training) -> Dict[str, object]:
        raise NotImplementedError

    def call(self, inputs, training=False):
        _check_sequence_input(inputs, type(self).__name__)
        return self._forward(inputs, training)["logits"]

    def stage_outputs(self, inputs, training=False) -> List[tf.Tensor]:
        """Per-stage activations ``[B, T_i, C_i]`` (the rows of Table 6 / Table 7), in order."""
        inputs = tf.convert_to_tensor(inputs, dtype=self.compute_dtype)
        _check_sequence_input(inputs, type(self).__name__)
        return list(self._forward(inputs, training)["stages"])


@keras.utils.register_keras_serializable(package=_PACKAGE)
class TemporalConvNet(_SequenceClassifier):
    """Temporal ConvNet of Table 6 (Penn Action; the authors' CONVNET, fact sheet §7.1).

    ``len(filters)`` × [Conv1D(f, kernel_size, stride) → BN → ReLU → Dropout(dropout_rate)] →
    GlobalAveragePooling1D → Dense(num_classes) logits.

    Args:
        num_classes: number of action classes K (Penn Action: 14).
        filters: filters of the convolution stages (Table 6: 64, 128, 256).
        kernel_size: temporal kernel (Table 6: 7).
        strides: temporal stride of every stage (Table 6: 2).
        dropout_rate: drop rate after each ReLU (Table 6: 0.5).

    ``[B, T, C]`` → logits ``[B, num_classes]``; stage lengths ceil(T/2), ceil(T/4), ceil(T/8)
    (T = 332: 166, 83, 42 as in Table 6).
    """

    def __init__(self, num_classes, filters=(64, 128, 256), kernel_size=7, strides=2, dropout_rate=0.5,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = checks.positive_int(num_classes, "num_classes")
        self.filters = _check_int_tuple(filters, "filters")
        self.kernel_size = checks.positive_int(kernel_size, "kernel_size")
        self.strides = checks.positive_int(strides, "strides")
        self.dropout_rate = _check_rate(dropout_rate, "dropout_rate")
        self.convs, self.bns, self.drops = [], [], []
        for i, f in enumerate(self.filters):
            self.convs.append(_conv(f, self.kernel_size, self.strides, f"conv{i}"))
            self.bns.append(networks.BatchNormalization(name=f"bn{i}"))
            self.drops.append(keras.layers.Dropout(self.dropout_rate, name=f"drop{i}"))
        self.pool = keras.layers.GlobalAveragePooling1D(name="pool")
        self.classifier = _final_dense(self.num_classes)

    def _forward(self, inputs, training):
        x, stages = inputs, []
        for conv, bn, drop in zip(self.convs, self.bns, self.drops):
            x = drop(tf.nn.relu(bn(conv(x), training=training)), training=training)
            stages.append(x)
        return {"stages": stages, "logits": _logits(self.classifier, self.pool(x))}

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, filters=list(self.filters),
                      kernel_size=self.kernel_size, strides=self.strides, dropout_rate=self.dropout_rate)
        return config


@keras.utils.register_keras_serializable(package=_PACKAGE)
class ResNet1D(_SequenceClassifier):
    """ResNet1D of Table 7 (NTU RGB+D; the authors' RESNET, after Fawaz et al. [15]).

    Stem Conv1D(stem_filters, k7, stride 1) → BN → ReLU (no dropout, as in Table 7), then one
    :class:`ResidualBlock1D` per entry of ``block_filters`` / ``block_strides``, GAP, Dense logits.

    Args:
        num_classes: number of classes K (NTU single-person actions: 49).
        stem_filters: filters of the stem (Table 7: 64).
        block_filters: filters of the residual blocks (Table 7: 64, 128, 256).
        block_strides: strides of the residual blocks (Table 7: 2, 2, 1).
        dropout_rate: drop rate inside the blocks (Table 7: 0.5).

    ``[B, T, C]`` → logits ``[B, num_classes]``; stage lengths T, ceil(T/2), ceil(T/4), ceil(T/4)
    (T = 300: 300, 150, 75, 75 as in Table 7).
    """

    def __init__(self, num_classes, stem_filters=64, block_filters=(64, 128, 256), block_strides=(2, 2, 1),
                 dropout_rate=0.5, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = checks.positive_int(num_classes, "num_classes")
        self.stem_filters = checks.positive_int(stem_filters, "stem_filters")
        self.block_filters = _check_int_tuple(block_filters, "block_filters")
        self.block_strides = _check_int_tuple(block_strides, "block_strides")
        if len(self.block_filters) != len(self.block_strides):
            raise ValueError(
                f"`block_filters` {self.block_filters} and `block_strides` {self.block_strides} must "
                "have the same length")
        self.dropout_rate = _check_rate(dropout_rate, "dropout_rate")
        self.stem_conv = _conv(self.stem_filters, 7, 1, "stem_conv")
        self.stem_bn = networks.BatchNormalization(name="stem_bn")
        self.blocks = [
            ResidualBlock1D(f, s, self.dropout_rate, name=f"block{i}")
            for i, (f, s) in enumerate(zip(self.block_filters, self.block_strides))]
        self.pool = keras.layers.GlobalAveragePooling1D(name="pool")
        self.classifier = _final_dense(self.num_classes)

    def _forward(self, inputs, training):
        x = tf.nn.relu(self.stem_bn(self.stem_conv(inputs), training=training))
        stages = [x]
        for block in self.blocks:
            x = block(x, training=training)
            stages.append(x)
        return {"stages": stages, "logits": _logits(self.classifier, self.pool(x))}

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, stem_filters=self.stem_filters,
                      block_filters=list(self.block_filters), block_strides=list(self.block_strides),
                      dropout_rate=self.dropout_rate)
        return config


@keras.utils.register_keras_serializable(package=_PACKAGE)
class ResTCN(_SequenceClassifier):
    """Res-TCN baseline of Kim & Reiter [20] (§4.3), in the authors' configuration (fact sheet §7.1).

    Stem Conv1D(stem_filters, k8, stride 1) → one :class:`PreActivationUnit` per
    ``(stride, kernel, filters)`` row of ``units`` (default :data:`RES_TCN_UNITS`: (1,8,64)×3,
    (2,8,128), (1,8,128)×2, (2,8,256), (1,8,256)×2) → BN → ReLU → global average pooling over the full
    length → Dense(num_classes, he_normal kernel) LOGITS. Every conv kernel — stem, units and 1×1
    shortcuts — is he_normal with an L1(``l1``) regulariser, as in the authors' code.

    Deliberate deviation from the authors' code: their final Dense has a softmax activation while the
    training loss applies ``from_logits=True``, i.e. a double softmax (fact sheet §7.1 ⚠). Here the
    Dense outputs logits like the other classifiers, so the loss sees the intended single softmax. The
    L1 penalty appears in ``model.losses`` and is added to the loss by the trainer.

    Args:
        num_classes: number of classes K.
        stem_filters: filters of the stem (64).
        units: sequence of (stride, kernel, filters) rows.
        dropout_rate: drop rate inside every unit (0.5).
        l1: L1 coefficient of every conv kernel (1e-4); 0 disables the regulariser.

    ``[B, T, C]`` → logits ``[B, num_classes]``; with the default units the stage lengths are T (stem
    and units 1–3), ceil(T/2) (units 4–6), ceil(T/4) (units 7–9).
    """

    def __init__(self, num_classes, stem_filters=64, units=RES_TCN_UNITS, dropout_rate=0.5, l1=1e-4,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = checks.positive_int(num_classes, "num_classes")
        self.stem_filters = checks.positive_int(stem_filters, "stem_filters")
        try:
            units = [tuple(u) for u in units]
        except TypeError:
            raise ValueError(f"`units` must be a sequence of (stride, kernel, filters), got {units!r}") \
                from None
        if not units or any(len(u) != 3 for u in units):
            raise ValueError(
                f"`units` must be a non-empty sequence of (stride, kernel, filters), got {units}")
        self.units = tuple(_check_int_tuple(u, f"units[{i}]") for i, u in enumerate(units))
        self.dropout_rate = _check_rate(dropout_rate, "dropout_rate")
        try:
            self.l1 = float(l1)
        except (TypeError, ValueError):
            raise ValueError(f"`l1` must be a non-negative float, got {l1!r}") from None
        if not self.l1 >= 0.0:
            raise ValueError(f"`l1` must be a non-negative float, got {l1!r}")
        regularizer = keras.regularizers.L1(self.l1) if self.l1 > 0 else None
        self.stem_conv = _conv(self.stem_filters, 8, 1, "stem_conv", he_normal_bias=False,
                               kernel_regularizer=regularizer)
        self.res_units = [
            PreActivationUnit(f, k, s, self.dropout_rate, kernel_regularizer=regularizer,
                              name=f"unit{i}")
            for i, (s, k, f) in enumerate(self.units)]
        self.final_bn = networks.BatchNormalization(name="final_bn")
        self.pool = keras.layers.GlobalAveragePooling1D(name="pool")
        self.classifier = _final_dense(self.num_classes, he_normal_bias=False)

    def _forward(self, inputs, training):
        x = self.stem_conv(inputs)
        stages = [x]
        for unit in self.res_units:
            x = unit(x, training=training)
            stages.append(x)
        x = tf.nn.relu(self.final_bn(x, training=training))
        return {"stages": stages, "logits": _logits(self.classifier, self.pool(x))}

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, stem_filters=self.stem_filters,
                      units=[list(u) for u in self.units], dropout_rate=self.dropout_rate, l1=self.l1)
        return config


_CLASSES = {"temporal_convnet": TemporalConvNet, "resnet1d": ResNet1D, "res_tcn": ResTCN}


def canonical_classifier_name(name: str) -> str:
    """Returns the entry of :data:`CLASSIFIERS` for ``name`` (aliases CONVNET / RESNET / RESTCN)."""
    if not isinstance(name, str):
        raise ValueError(f"classifier name must be a string, one of {CLASSIFIERS}, got {name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in CLASSIFIERS:
        raise ValueError(
            f"unknown classifier {name!r}; expected one of {CLASSIFIERS} (or the authors' aliases "
            f"{tuple(a.upper() for a in _ALIASES)})")
    return key


def get_classifier(name: str, input_shape: Sequence[int], num_classes: int, dropout_rate: float = 0.5,
                   **kwargs) -> keras.Model:
    """Builds one of :data:`CLASSIFIERS` for sequences of shape ``input_shape`` = (T, C).

    Args:
        name: "temporal_convnet" (Table 6), "resnet1d" (Table 7) or "res_tcn" ([20]); the authors'
            names CONVNET / RESNET / RESTCN are accepted too.
        input_shape: (T, C) — frames per clip and features per frame, both positive integers; T may be
            None (the models are length-agnostic), C may not.
        num_classes: K ≥ 2.
        dropout_rate: drop rate of every Dropout layer (paper: 0.5).
        **kwargs: further constructor arguments of the model class (e.g. ``filters=(8, 16, 32)`` for a
            small TemporalConvNet in tests).

    Returns:
        A built Keras model mapping ``[B, T, C]`` float features to ``[B, num_classes]`` float32 logits.

    Raises:
        ValueError: unknown name, malformed ``input_shape``, ``num_classes`` < 2, bad rate.
    """
    key = canonical_classifier_name(name)
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise ValueError(f"`input_shape` must be (frames, channels), got {input_shape!r}") from None
    if len(shape) != 2:
        raise ValueError(f"`input_shape` must be (frames, channels), got {input_shape!r}")
    frames, channels = shape
    frames = None if frames is None else checks.positive_int(frames, "input_shape[0] (frames)")
    channels = checks.positive_int(channels, "input_shape[1] (channels)")
    num_classes = checks.positive_int(num_classes, "num_classes")
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be at least 2, got {num_classes}")
    model = _CLASSES[key](num_classes=num_classes, dropout_rate=dropout_rate, name=key, **kwargs)
    # Create the weights now (inference mode: BN statistics are not touched) so that the model can be
    # summarised, counted and checkpointed before training.
    model(tf.zeros((1, frames or 8, channels), model.compute_dtype), training=False)
    return model
