"""Tests of cv_mim/action_recognition/models.py: Tables 6/7 shapes, Res-TCN [20], logits, config."""
import math

import numpy as np
import pytest
import tensorflow as tf

from cv_mim.downstream import classifiers

keras = tf.keras


@pytest.fixture(autouse=True)
def _seed():
    # Weight initialisation and dropout draw from the global Keras seed.
    keras.utils.set_random_seed(0)


def _random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("name", classifiers.CLASSIFIERS)
@pytest.mark.parametrize("shape", [(4, 332, 26), (4, 300, 32), (4, 128, 16)])
def test_output_shape_dtype_for_every_model_and_input(name, shape):
    model = classifiers.get_classifier(name, shape[1:], num_classes=4)
    logits = model(_random(shape), training=False)
    assert tuple(logits.shape) == (4, 4)
    assert logits.dtype == tf.float32
    assert np.all(np.isfinite(logits.numpy()))


def test_temporal_convnet_matches_table6():
    model = classifiers.get_classifier("temporal_convnet", (332, 32), num_classes=14)
    stages = model.stage_outputs(_random((2, 332, 32)))
    # Table 6: 166 × 64, 83 × 128, 42 × 256 (stride 2, 'same' padding: ceil(T / 2) per stage).
    assert [tuple(s.shape[1:]) for s in stages] == [(166, 64), (83, 128), (42, 256)]
    assert [tuple(c.kernel.shape) for c in model.convs] == [(7, 32, 64), (7, 64, 128), (7, 128, 256)]
    assert all(c.strides == (2,) for c in model.convs)
    assert tuple(model.classifier.kernel.shape) == (256, 14)


def test_temporal_convnet_parameter_count_by_hand():
    # C = 26 inputs, K = 4: conv = k·C_in·C_out + C_out, BN = 4·C (γ, β, moving mean, moving var).
    c, k = 26, 4
    expected = (7 * c * 64 + 64) + (7 * 64 * 128 + 128) + (7 * 128 * 256 + 256) \
        + 4 * (64 + 128 + 256) + (256 * k + k)
    model = classifiers.get_classifier("temporal_convnet", (332, c), num_classes=k)
    assert model.count_params() == expected


def test_resnet1d_matches_table7():
    model = classifiers.get_classifier("resnet1d", (300, 32), num_classes=49)
    stages = model.stage_outputs(_random((2, 300, 32)))
    # Table 7: stem 300 × 64, then 150 × 64, 75 × 128, 75 × 256.
    assert [tuple(s.shape[1:]) for s in stages] == [(300, 64), (150, 64), (75, 128), (75, 256)]
    assert tuple(model.stem_conv.kernel.shape) == (7, 32, 64)
    for block, (filters, stride) in zip(model.blocks, [(64, 2), (128, 2), (256, 1)]):
        assert [c.kernel.shape[0] for c in (block.conv1, block.conv2, block.conv3, block.shortcut_conv)] \
            == [7, 5, 3, 1]
        assert block.conv1.strides == (stride,) and block.shortcut_conv.strides == (stride,)
        assert block.conv2.strides == (1,) and block.conv3.strides == (1,)
        assert block.conv3.filters == filters
    assert tuple(model.classifier.kernel.shape) == (256, 49)


def test_residual_block_reference_shape():
    # Fact sheet §7.1: the residual block on [4, 128, 16] with 64 filters and stride 2 gives [4, 64, 64].
    block = classifiers.ResidualBlock1D(64, 2)
    assert tuple(block(_random((4, 128, 16))).shape) == (4, 64, 64)


def test_residual_block_is_relu_of_main_plus_shortcut():
    block = classifiers.ResidualBlock1D(8, 1, dropout_rate=0.0)
    x = _random((2, 10, 8))
    out = block(x).numpy()
    # Recompute the two paths from the sub-layers (inference mode).
    y = tf.nn.relu(block.bn1(block.conv1(x)))
    y = tf.nn.relu(block.bn2(block.conv2(y)))
    y = block.bn3(block.conv3(y))
    s = block.shortcut_bn(block.shortcut_conv(x))
    np.testing.assert_allclose(out, np.maximum(y.numpy() + s.numpy(), 0.0), rtol=1e-5, atol=1e-6)


def test_res_tcn_structure():
    model = classifiers.get_classifier("res_tcn", (128, 16), num_classes=4)
    stages = model.stage_outputs(_random((2, 128, 16)))
    expected = [(128, 64)] * 4 + [(64, 128)] * 3 + [(32, 256)] * 3  # stem + 9 units
    assert [tuple(s.shape[1:]) for s in stages] == expected
    assert tuple(model.stem_conv.kernel.shape) == (8, 16, 64)
    assert [tuple(u.conv.kernel.shape) for u in model.res_units][:4] == \
        [(8, 64, 64)] * 3 + [(8, 64, 128)]
    # 1×1 strided shortcut exactly where the shape changes (units 4 and 7, 1-based).
    has_shortcut = [u.shortcut_conv is not None for u in model.res_units]
    assert has_shortcut == [False, False, False, True, False, False, True, False, False]
    assert model.res_units[3].shortcut_conv.kernel.shape[0] == 1
    assert model.res_units[3].shortcut_conv.strides == (2,)


def test_res_tcn_identity_unit_is_x_plus_preactivated_conv():
    unit = classifiers.PreActivationUnit(8, 3, 1, dropout_rate=0.0)
    x = _random((2, 12, 8))
    out = unit(x).numpy()
    assert unit.shortcut_conv is None
    expected = x + unit.conv(tf.nn.relu(unit.bn(x))).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def _layers_of(model, kind):
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, kind)]


def _initializer_name(initializer):
    return type(initializer).__name__


def test_res_tcn_l1_regulariser_on_every_conv_kernel():
    """Authors' Res-TCN: L1(1e-4) on the stem, the nine unit convs and the two 1×1 shortcuts."""
    model = classifiers.get_classifier("res_tcn", (32, 6), num_classes=3)
    convs = _layers_of(model, tf.keras.layers.Conv1D)
    shortcuts = [c for c in convs if c.name == "shortcut_conv"]
    assert len(convs) == 1 + 9 + 2 and len(shortcuts) == 2
    for conv in convs:
        assert isinstance(conv.kernel_regularizer, tf.keras.regularizers.L1), conv.path
        assert float(conv.kernel_regularizer.l1) == pytest.approx(1e-4)
    assert len(model.losses) == len(convs)
    expected = sum(1e-4 * np.abs(c.kernel.numpy()).sum() for c in convs)
    np.testing.assert_allclose(float(tf.add_n(model.losses)), expected, rtol=1e-5)
    no_l1 = classifiers.get_classifier("res_tcn", (32, 6), num_classes=3, l1=0.0)
    assert len(no_l1.losses) == 0
    for name in ("temporal_convnet", "resnet1d"):
        assert len(classifiers.get_classifier(name, (32, 6), num_classes=3).losses) == 0


@pytest.mark.parametrize("name,bias", [("temporal_convnet", "HeNormal"), ("resnet1d", "HeNormal"),
                                       ("res_tcn", "Zeros")])
def test_every_conv_and_final_dense_is_he_normal(name, bias):
    """Fact sheet §7.1: he_normal kernels everywhere; CONVNET/RESNET he_normal biases, RESTCN zeros."""
    model = classifiers.get_classifier(name, (32, 6), num_classes=3)
    convs = _layers_of(model, tf.keras.layers.Conv1D)
    dense = _layers_of(model, tf.keras.layers.Dense)
    assert convs and len(dense) == 1
    for layer in convs + dense:
        assert _initializer_name(layer.kernel_initializer) == "HeNormal", layer.path
        assert _initializer_name(layer.bias_initializer) == bias, layer.path
    # The initialiser really acted: a he_normal bias is not all zeros.
    assert (np.any(dense[0].bias.numpy() != 0)) == (bias == "HeNormal")


@pytest.mark.parametrize("name", classifiers.CLASSIFIERS)
def test_outputs_are_affine_logits_not_probabilities(name):
    model = classifiers.get_classifier(name, (40, 5), num_classes=4)
    x = _random((3, 40, 5))
    # With a zero kernel the output must be exactly the bias — no softmax (which would sum to 1).
    bias = np.array([-1.0, 2.0, 0.5, 3.0], np.float32)
    model.classifier.kernel.assign(np.zeros(model.classifier.kernel.shape, np.float32))
    model.classifier.bias.assign(bias)
    np.testing.assert_allclose(model(x).numpy(), np.tile(bias, (3, 1)), atol=1e-6)
    # Random head: rows are not probability vectors.
    logits = classifiers.get_classifier(name, (40, 5), num_classes=4)(x).numpy()
    assert np.all(np.abs(logits.sum(axis=1) - 1.0) > 1e-3)


@pytest.mark.parametrize("name", classifiers.CLASSIFIERS)
def test_dropout_only_in_training(name):
    x = _random((4, 48, 6))
    model = classifiers.get_classifier(name, (48, 6), num_classes=5)
    a, b = model(x, training=False).numpy(), model(x, training=False).numpy()
    np.testing.assert_array_equal(a, b)
    t1, t2 = model(x, training=True).numpy(), model(x, training=True).numpy()
    assert not np.allclose(t1, t2)
    # Without dropout the training-mode output (batch-statistics BN) is deterministic: the difference
    # above comes from dropout.
    no_drop = classifiers.get_classifier(name, (48, 6), num_classes=5, dropout_rate=0.0)
    np.testing.assert_allclose(no_drop(x, training=True).numpy(), no_drop(x, training=True).numpy(),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", classifiers.CLASSIFIERS)
def test_get_config_round_trip(name, tmp_path):
    model = classifiers.get_classifier(name, (30, 7), num_classes=3, dropout_rate=0.25)
    config = model.get_config()
    assert config["num_classes"] == 3 and config["dropout_rate"] == 0.25
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    x = _random((2, 30, 7))
    clone(x)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    if name == "res_tcn":  # the unit with lazily built shortcuts survives a full .keras save / load
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


def test_custom_sizes_and_aliases():
    small = classifiers.get_classifier("CONVNET", (20, 3), num_classes=2, filters=(4, 8))
    assert isinstance(small, classifiers.TemporalConvNet)
    assert [s.shape[1:] for s in small.stage_outputs(_random((1, 20, 3)))] == [(10, 4), (5, 8)]
    assert isinstance(classifiers.get_classifier("ResNet", (20, 3), 2), classifiers.ResNet1D)
    assert isinstance(classifiers.get_classifier("restcn", (20, 3), 2), classifiers.ResTCN)
    # Length-agnostic: built for T = 20, applied to T = 33.
    assert tuple(small(_random((2, 33, 3))).shape) == (2, 2)
    assert math.ceil(33 / 2) == small.stage_outputs(_random((1, 33, 3)))[0].shape[1]


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="lstm", input_shape=(10, 3), num_classes=4), "unknown classifier"),
    (dict(name="resnet1d", input_shape=(10, 3, 2), num_classes=4), "input_shape"),
    (dict(name="resnet1d", input_shape=(0, 3), num_classes=4), "frames"),
    (dict(name="resnet1d", input_shape=(10, 0), num_classes=4), "channels"),
    (dict(name="resnet1d", input_shape=(10, 2.5), num_classes=4), "channels"),
    (dict(name="resnet1d", input_shape=5, num_classes=4), "input_shape"),
    (dict(name="resnet1d", input_shape=(10, 3), num_classes=1), "num_classes"),
    (dict(name="res_tcn", input_shape=(10, 3), num_classes=4, dropout_rate=1.0), "dropout_rate"),
    (dict(name="res_tcn", input_shape=(10, 3), num_classes=4, l1=-1.0), "l1"),
    (dict(name="res_tcn", input_shape=(10, 3), num_classes=4, units=[(1, 8)]), "units"),
    (dict(name="resnet1d", input_shape=(10, 3), num_classes=4, block_strides=(2,)), "same length"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        classifiers.get_classifier(**kwargs)


def test_wrong_input_rank_raises_value_error():
    model = classifiers.get_classifier("temporal_convnet", (10, 3), num_classes=2)
    with pytest.raises(ValueError, match=r"\[batch, frames, channels\]"):
        model(np.zeros((10, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[batch, frames, channels\]"):
        model.stage_outputs(np.zeros((1, 2, 10, 3), np.float32))
