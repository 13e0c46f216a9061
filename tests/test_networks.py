"""Tests for cv_mim/networks.py: shapes, structure, parameter counts, initialisation and modes.

Structure is checked against an independent NumPy forward pass that reads the layers' weights (so
the order Dense → BN → ReLU/ELU → Dropout, the residual add, the linear embedder and the tanh heads
are pinned), and parameter counts against the hand arithmetic of App. B.1 / fact sheet §1.1.
"""
import math

import numpy as np
import pytest
import tensorflow as tf

from cv_mim import networks

keras = tf.keras
BN_EPS = 1e-3  # Keras default, as the authors (fact sheet §1.1)


@pytest.fixture(autouse=True)
def _seed():
    # Deterministic initialisation, dropout masks and Gaussian samples for every test.
    keras.utils.set_random_seed(1234)


def _np(x):
    return np.asarray(x, np.float64)


def _poses(batch, seed=0, num_joints=13):
    return np.random.default_rng(seed).standard_normal((batch, num_joints, 2)).astype(np.float32)


def _layers(model, kind):
    return [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, kind)]


def _randomise_bn_statistics(model, seed):
    """Give every BatchNorm non-trivial γ, β and moving statistics for inference-mode checks."""
    rng = np.random.default_rng(seed)
    for bn in _layers(model, keras.layers.BatchNormalization):
        n = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 1.5, n).astype(np.float32))
        bn.beta.assign(rng.normal(0.0, 0.3, n).astype(np.float32))
        bn.moving_mean.assign(rng.normal(0.0, 0.3, n).astype(np.float32))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype(np.float32))


def _np_dense(layer, x):
    return x @ _np(layer.kernel) + _np(layer.bias)


def _np_bn_inference(bn, x):
    return ((x - _np(bn.moving_mean)) / np.sqrt(_np(bn.moving_variance) + BN_EPS) * _np(bn.gamma)
            + _np(bn.beta))


def _np_linear_layer(layer, x):
    # Dense → BN → ReLU → Dropout (identity in inference).
    return np.maximum(_np_bn_inference(layer.bn, _np_dense(layer.dense, x)), 0.0)


def _np_trunk(trunk, x):
    for b in range(trunk.num_blocks):
        block = getattr(trunk, f"res_block{b + 1}")
        y = x
        for i in range(block.num_layers):
            y = _np_linear_layer(getattr(block, f"linear{i}"), y)
        x = x + y  # residual add after the last dropout, no activation after it
    return x


def _np_elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def _mlp_param_count(in_dim, hidden, num_blocks, layers_per_block, out_dim):
    """Trainable scalars of the residual MLP [30]: input layer, residual layers, linear head."""
    fc0 = (in_dim * hidden + hidden) + 2 * hidden            # Dense + BN γ/β
    residual = num_blocks * layers_per_block * ((hidden * hidden + hidden) + 2 * hidden)
    head = hidden * out_dim + out_dim
    return fc0 + residual + head


# ---------------------------------------------------------------------------------------------
# Encoder E.


@pytest.fixture(scope="module")
def default_encoder():
    encoder = networks.Encoder()
    encoder(_poses(5), training=False)
    return encoder


def test_default_encoder_output_keys_and_shapes(default_encoder):
    out = default_encoder(_poses(5), training=False)
    assert set(out) == {"fc0", "embedding", "pose_embedding", "view_embedding"}
    assert tuple(out["embedding"].shape) == (5, 64)
    assert tuple(out["pose_embedding"].shape) == (5, 32)
    assert tuple(out["view_embedding"].shape) == (5, 32)
    assert tuple(out["fc0"].shape) == (5, 1024)
    assert all(v.dtype == tf.float32 for v in out.values())


def test_default_encoder_unknown_batch_in_tf_function(default_encoder):
    fn = tf.function(lambda x: default_encoder(x, training=False),
                     input_signature=[tf.TensorSpec([None, 13, 2], tf.float32)])
    outputs = fn.get_concrete_function().structured_outputs
    assert outputs["embedding"].shape.as_list() == [None, 64]
    assert outputs["pose_embedding"].shape.as_list() == [None, 32]
    assert outputs["view_embedding"].shape.as_list() == [None, 32]
    assert outputs["fc0"].shape.as_list() == [None, 1024]
    np.testing.assert_allclose(fn(_poses(3))["embedding"],
                               default_encoder(_poses(3), training=False)["embedding"],
                               rtol=1e-5, atol=1e-5)


def test_default_encoder_parameter_count(default_encoder):
    expected = _mlp_param_count(in_dim=13 * 2, hidden=1024, num_blocks=2, layers_per_block=2,
                                out_dim=32 + 32)
    # Spelled out: fc0 26·1024+1024 + 2·1024; 4 × (1024·1024+1024 + 2·1024); 1024·64+64.
    assert expected == ((26 * 1024 + 1024 + 2048) + 4 * (1024 * 1024 + 1024 + 2048)
                        + (1024 * 64 + 64))
    assert networks.count_parameters(default_encoder) == expected
    assert abs(expected - 4.30e6) < 0.01e6  # fact sheet §1.1: ≈ 4.30 M
    # Moving mean/variance of the 5 BatchNorms (the stateless dropout layers have no state).
    moving = [v for v in default_encoder.non_trainable_variables if "moving" in v.path]
    assert sum(int(np.prod(v.shape)) for v in moving) == 5 * 2 * 1024


def test_default_encoder_he_normal_kernels_and_biases(default_encoder):
    denses = _layers(default_encoder, keras.layers.Dense)
    assert len(denses) == 1 + 4 + 1
    for dense in denses:
        assert isinstance(dense.kernel_initializer, keras.initializers.HeNormal), dense.name
        assert isinstance(dense.bias_initializer, keras.initializers.HeNormal), dense.name
        assert dense.kernel_constraint is None  # App. B.1: no max-norm constraint
        bias = _np(dense.bias)
        assert np.count_nonzero(bias) == bias.size, dense.name
        # he_normal: std ≈ sqrt(2 / fan_in) (truncated normal rescaled to that std).
        fan_in = dense.kernel.shape[0]
        np.testing.assert_allclose(np.std(_np(dense.kernel)), math.sqrt(2.0 / fan_in), rtol=0.1)
    # A bias of n units has fan_in = n for Keras' variance scaling.
    fc0_bias = _np(default_encoder.fc0.dense.bias)
    np.testing.assert_allclose(np.std(fc0_bias), math.sqrt(2.0 / 1024), rtol=0.15)


def test_default_encoder_batch_norm_is_synchronised(default_encoder):
    bns = _layers(default_encoder, keras.layers.BatchNormalization)
    assert len(bns) == 5
    assert all(bn.synchronized for bn in bns)
    assert all(abs(bn.momentum - 0.99) < 1e-9 and abs(bn.epsilon - BN_EPS) < 1e-12 for bn in bns)
    unsync = networks.Encoder(hidden_dim=8, sync_batch_norm=False)
    unsync(_poses(2))
    assert not any(bn.synchronized for bn in _layers(unsync, keras.layers.BatchNormalization))


def test_encoder_dropout_only_in_training():
    encoder = networks.Encoder(hidden_dim=64)
    x = _poses(6, seed=1)
    train1 = _np(encoder(x, training=True)["embedding"])
    train2 = _np(encoder(x, training=True)["embedding"])
    assert not np.allclose(train1, train2)
    infer1 = _np(encoder(x, training=False)["embedding"])
    infer2 = _np(encoder(x, training=False)["embedding"])
    np.testing.assert_array_equal(infer1, infer2)
    # Without dropout two training calls agree (BN batch statistics are the same), so the difference
    # above is dropout's.
    no_dropout = networks.Encoder(hidden_dim=64, dropout_rate=0.0)
    np.testing.assert_allclose(no_dropout(x, training=True)["embedding"],
                               no_dropout(x, training=True)["embedding"], rtol=1e-6, atol=1e-6)
    # Inference uses the moving statistics: a row's output does not depend on the rest of the batch.
    np.testing.assert_allclose(encoder(x[:1], training=False)["embedding"], infer1[:1], rtol=1e-5,
                               atol=1e-5)
    drops = _layers(encoder, networks.StatelessDropout)
    assert len(drops) == 5 and all(abs(d.rate - 0.25) < 1e-12 for d in drops)
    assert not _layers(encoder, keras.layers.Dropout)  # no stateful (un-checkpointed) RNG left
    # With a seed the training masks are reproducible, and differ between seeds.
    seed = tf.constant([4, 2], tf.int64)
    s1 = _np(encoder(x, training=True, seed=seed)["embedding"])
    np.testing.assert_array_equal(s1, _np(encoder(x, training=True, seed=seed)["embedding"]))
    assert not np.allclose(s1, _np(encoder(x, training=True, seed=seed + 1)["embedding"]))


@pytest.mark.parametrize("embedder", ["point", "gaussian"])
def test_encoder_inference_matches_numpy_forward_pass(embedder):
    encoder = networks.Encoder(pose_dim=3, view_dim=5, hidden_dim=16, num_blocks=2,
                               layers_per_block=2, embedder=embedder)
    x = _poses(4, seed=2)
    encoder(x)
    _randomise_bn_statistics(encoder, seed=3)
    out = encoder(x, training=False)
    flat = _np(x).reshape(4, 26)
    fc0 = _np_linear_layer(encoder.fc0, flat)
    h = _np_trunk(encoder.trunk, fc0)
    mean = _np_dense(encoder.head, h)  # linear embedder: no activation / normalisation / sigmoid
    np.testing.assert_allclose(out["fc0"], fc0, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["embedding"], mean, rtol=1e-4, atol=1e-4)
    if embedder == "gaussian":
        np.testing.assert_allclose(out["mean"], mean, rtol=1e-4, atol=1e-4)
        log_var = 10.0 * np.tanh(_np_dense(encoder.log_var_head, h))
        np.testing.assert_allclose(out["log_var"], log_var, rtol=1e-4, atol=1e-4)


def test_encoder_pose_is_first_pose_dim_entries():
    encoder = networks.Encoder(pose_dim=3, view_dim=5, hidden_dim=16)
    out = encoder(_poses(4, seed=4), training=False)
    emb = _np(out["embedding"])
    assert emb.shape == (4, 8)
    np.testing.assert_array_equal(out["pose_embedding"], emb[:, :3])
    np.testing.assert_array_equal(out["view_embedding"], emb[:, 3:])


def test_gaussian_embedder_samples_in_training_and_returns_mean_in_inference():
    encoder = networks.Encoder(hidden_dim=32, dropout_rate=0.0, embedder="gaussian")
    x = _poses(256, seed=5)
    out = encoder(x, training=True)
    assert {"mean", "log_var"} <= set(out)
    mean, log_var, emb = _np(out["mean"]), _np(out["log_var"]), _np(out["embedding"])
    assert mean.shape == log_var.shape == emb.shape == (256, 64)
    # 10·tanh: |log σ²| ≤ 10 (float32 tanh can round to exactly ±1 when saturated).
    assert np.all(np.abs(log_var) <= 10.0)
    assert np.max(np.abs(log_var)) > 1.0  # the 10·tanh scale, not a bare tanh
    # Reparameterised sample: ε = (z − μ)/σ is standard normal.
    eps = (emb - mean) / np.exp(0.5 * log_var)
    assert abs(np.mean(eps)) < 0.05 and abs(np.std(eps) - 1.0) < 0.05
    second = encoder(x, training=True)
    np.testing.assert_allclose(second["mean"], mean, rtol=1e-5, atol=1e-5)
    assert not np.allclose(second["embedding"], emb)
    infer = encoder(x, training=False)
    np.testing.assert_array_equal(infer["embedding"], infer["mean"])
    np.testing.assert_array_equal(infer["pose_embedding"], _np(infer["mean"])[:, :32])
    assert np.all(np.abs(_np(infer["log_var"])) <= 10.0)
    # Gaussian embedder adds exactly one more head of the same size.
    expected = _mlp_param_count(26, 32, 2, 2, 64) + (32 * 64 + 64)
    assert networks.count_parameters(encoder) == expected


def test_gaussian_log_var_bounded_for_extreme_inputs():
    encoder = networks.Encoder(hidden_dim=16, embedder="gaussian")
    out = encoder(1e4 * _poses(8, seed=6), training=False)
    assert np.all(np.isfinite(_np(out["log_var"])))
    assert np.all(np.abs(_np(out["log_var"])) <= 10.0)


@pytest.mark.parametrize("embedder", ["point", "gaussian"])
def test_encoder_get_config_round_trip(embedder):
    encoder = networks.Encoder(pose_dim=4, view_dim=6, hidden_dim=12, num_blocks=3,
                               layers_per_block=1, dropout_rate=0.1, embedder=embedder,
                               num_joints=5, sync_batch_norm=False, name="my_encoder")
    x = _poses(3, seed=7, num_joints=5)
    encoder(x)
    config = encoder.get_config()
    clone = networks.Encoder.from_config(config)
    clone(x)
    assert clone.get_config() == config
    assert clone.name == "my_encoder"
    assert [v.shape for v in clone.weights] == [v.shape for v in encoder.weights]
    assert [v.path for v in clone.weights] == [v.path for v in encoder.weights]
    assert networks.count_parameters(clone) == networks.count_parameters(encoder) == (
        _mlp_param_count(10, 12, 3, 1, 10) + (12 * 10 + 10 if embedder == "gaussian" else 0))
    clone.set_weights(encoder.get_weights())
    np.testing.assert_allclose(clone(x, training=False)["embedding"],
                               encoder(x, training=False)["embedding"], rtol=1e-6, atol=1e-6)


def test_encoder_constructor_errors():
    with pytest.raises(ValueError, match="embedder") as info:
        networks.Encoder(embedder="vae")
    assert "point" in str(info.value) and "gaussian" in str(info.value)
    for name in ("pose_dim", "view_dim", "hidden_dim", "num_joints"):
        for bad in (0, -3):
            with pytest.raises(ValueError, match=name):
                networks.Encoder(**{name: bad})


@pytest.mark.parametrize("kwargs", [{"num_blocks": -1}, {"layers_per_block": 0},
                                    {"layers_per_block": -2}])
def test_encoder_rejects_degenerate_residual_structure(kwargs):
    # layers_per_block = 0 would make every "residual block" return x + x = 2x, and a negative
    # num_blocks silently builds no blocks: both must be a clear ValueError naming the argument.
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        networks.Encoder(hidden_dim=8, **kwargs)


@pytest.mark.parametrize("shape", [(2, 13, 3), (4, 26, 2), (4, 12, 2)])
def test_encoder_rejects_wrong_keypoint_shape(shape):
    # A [2, 13, 3] (x, y, score) batch has 78 values and would otherwise be reshaped to 3 poses of
    # 26; [4, 26, 2] would become 8 poses. Wrong joint / coordinate counts must raise ValueError.
    encoder = networks.Encoder(hidden_dim=8)
    encoder(_poses(1))
    with pytest.raises(ValueError):
        encoder(np.zeros(shape, np.float32))


# ---------------------------------------------------------------------------------------------
# Local branch.


def test_local_branch_shapes_structure_and_parameters():
    encoder = networks.Encoder(hidden_dim=16)
    branch = networks.LocalBranch(output_dim=7, hidden_dim=16)
    x = _poses(5, seed=8)
    fc0 = encoder(x, training=False)["fc0"]
    out = branch(fc0, training=False)
    assert set(out) == {"local"}
    assert tuple(out["local"].shape) == (5, 7) and out["local"].dtype == tf.float32
    # It has no input layer of its own: residual blocks + linear head only (fact sheet §1.4).
    residual = 2 * 2 * ((16 * 16 + 16) + 2 * 16)
    assert networks.count_parameters(branch) == residual + (16 * 7 + 7)
    assert not any("fc0" in v.path for v in branch.weights)
    _randomise_bn_statistics(branch, seed=9)
    expected = _np_dense(branch.head, _np_trunk(branch.trunk, _np(fc0)))
    np.testing.assert_allclose(branch(fc0, training=False)["local"], expected, rtol=1e-4,
                               atol=1e-4)
    for dense in _layers(branch, keras.layers.Dense):
        assert isinstance(dense.bias_initializer, keras.initializers.HeNormal)
    assert all(bn.synchronized for bn in _layers(branch, keras.layers.BatchNormalization))
    clone = networks.LocalBranch.from_config(branch.get_config())
    clone(fc0)
    assert clone.get_config() == branch.get_config()
    assert networks.count_parameters(clone) == networks.count_parameters(branch)


def test_local_branch_constructor_errors():
    with pytest.raises(ValueError, match="output_dim"):
        networks.LocalBranch(output_dim=0)
    with pytest.raises(ValueError, match="hidden_dim"):
        networks.LocalBranch(output_dim=4, hidden_dim=-1)


# ---------------------------------------------------------------------------------------------
# Likelihood estimator Q.


def test_likelihood_estimator_structure_and_bounds():
    q = networks.LikelihoodEstimator(output_dim=6)
    x = np.random.default_rng(10).standard_normal((9, 4)).astype(np.float32)
    out = q(x, training=False)
    assert set(out) == {"mean", "log_var"}
    assert tuple(out["mean"].shape) == tuple(out["log_var"].shape) == (9, 6)
    # Two heads of Dense(V) → BN → ELU → Dense(V); hidden width defaults to V (App. B.1).
    per_head = (4 * 6 + 6) + 2 * 6 + (6 * 6 + 6)
    assert networks.count_parameters(q) == 2 * per_head
    assert len(_layers(q, keras.layers.BatchNormalization)) == 2
    for dense in _layers(q, keras.layers.Dense):  # Keras defaults, unlike E (fact sheet §3.6)
        assert isinstance(dense.kernel_initializer, keras.initializers.GlorotUniform)
        assert np.all(_np(dense.bias) == 0.0)
    _randomise_bn_statistics(q, seed=11)
    out = q(x, training=False)
    mean = _np_dense(q.mean_out, _np_elu(_np_bn_inference(q.mean_bn, _np_dense(q.mean_hidden, x))))
    log_var = np.tanh(_np_dense(
        q.log_var_out, _np_elu(_np_bn_inference(q.log_var_bn, _np_dense(q.log_var_hidden, x)))))
    np.testing.assert_allclose(out["mean"], mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["log_var"], log_var, rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(_np(out["log_var"])) < 1.0)
    big = q(1e3 * x, training=True)["log_var"]
    assert np.all(np.abs(_np(big)) <= 1.0)
    wide = networks.LikelihoodEstimator(output_dim=6, hidden_dim=10)
    wide(x)
    assert networks.count_parameters(wide) == 2 * ((4 * 10 + 10) + 2 * 10 + (10 * 6 + 6))
    clone = networks.LikelihoodEstimator.from_config(wide.get_config())
    clone(x)
    assert networks.count_parameters(clone) == networks.count_parameters(wide)


def test_likelihood_estimator_constructor_errors():
    for bad in (0, -1):
        with pytest.raises(ValueError, match="output_dim"):
            networks.LikelihoodEstimator(output_dim=bad)


# ---------------------------------------------------------------------------------------------
# Discriminator D.


def test_discriminator_structure_and_parameter_count():
    d = networks.Discriminator(input_dim=64)
    x = np.random.default_rng(12).uniform(size=(7, 64)).astype(np.float32)
    out = d(x)
    assert set(out) == {"logit"} and tuple(out["logit"].shape) == (7, 1)
    denses = [d.hidden1, d.hidden2, d.logit]
    assert [(k.kernel.shape[0], k.kernel.shape[1]) for k in denses] == [(64, 64), (64, 32), (32, 1)]
    expected = (64 * 64 + 64) + (64 * 32 + 32) + (32 * 1 + 1)
    assert networks.count_parameters(d) == expected == 6273  # "about 6.3 k" (fact sheet §3.7)
    assert not _layers(d, keras.layers.BatchNormalization)
    h = np.maximum(_np_dense(d.hidden1, _np(x)), 0.0)
    h = np.maximum(_np_dense(d.hidden2, h), 0.0)
    np.testing.assert_allclose(out["logit"], _np_dense(d.logit, h), rtol=1e-4, atol=1e-5)
    for bad in (0, -64):
        with pytest.raises(ValueError, match="input_dim"):
            networks.Discriminator(input_dim=bad)


# ---------------------------------------------------------------------------------------------
# Decoder G.


def test_decoder_output_shape_and_parameters():
    g = networks.Decoder(hidden_dim=16)
    rng = np.random.default_rng(14)
    pose = rng.standard_normal((5, 32)).astype(np.float32)
    view = rng.standard_normal((5, 32)).astype(np.float32)
    out = g((pose, view), training=False)
    assert set(out) == {"keypoints"}
    assert tuple(out["keypoints"].shape) == (5, 13, 2) and out["keypoints"].dtype == tf.float32
    assert networks.count_parameters(g) == _mlp_param_count(64, 16, 2, 2, 26)
    # The decoder reads the concatenation [z_p ; z_v] in that order.
    _randomise_bn_statistics(g, seed=15)
    h = _np_trunk(g.trunk, _np_linear_layer(g.fc0, np.concatenate([pose, view], -1)))
    np.testing.assert_allclose(_np(g((pose, view), training=False)["keypoints"]),
                               _np_dense(g.head, h).reshape(5, 13, 2), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="num_joints"):
        networks.Decoder(num_joints=0)
    with pytest.raises(ValueError, match="hidden_dim"):
        networks.Decoder(hidden_dim=0)


# ---------------------------------------------------------------------------------------------
# Fusion ⊙ (Eq. 11).


def test_fuse_operations():
    rng = np.random.default_rng(16)
    pose = rng.standard_normal((4, 3)).astype(np.float32)
    view = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(networks.fuse(pose, view, "moe"), (_np(pose) + view) / 2.0,
                               rtol=1e-6)
    np.testing.assert_allclose(networks.fuse(pose, view), (_np(pose) + view) / 2.0, rtol=1e-6)
    np.testing.assert_allclose(networks.fuse(pose, view, "poe"), _np(pose) * view, rtol=1e-6)
    np.testing.assert_array_equal(networks.fuse(pose, view[:, :2], "cat"),
                                  np.concatenate([pose, view[:, :2]], axis=-1))
    with pytest.raises(ValueError) as info:
        networks.fuse(pose, view, "sum")
    assert all(name in str(info.value) for name in ("moe", "poe", "cat"))


def test_fused_dim():
    assert networks.fused_dim("moe", 32, 32) == 32
    assert networks.fused_dim("poe", 16, 16) == 16
    assert networks.fused_dim("cat", 32, 8) == 40
    for fusion in ("moe", "poe"):
        with pytest.raises(ValueError) as info:
            networks.fused_dim(fusion, 32, 8)
        assert "32" in str(info.value) and "8" in str(info.value)
        assert "pose_dim" in str(info.value) and "view_dim" in str(info.value)
    with pytest.raises(ValueError, match="fusion"):
        networks.fused_dim("max", 32, 32)


@pytest.mark.parametrize("fusion", ["moe", "poe"])
def test_fuse_elementwise_rejects_unequal_dims(fusion):
    # pose [B, 32] with view [B, 1] would otherwise broadcast silently to [B, 32].
    pose = np.ones((3, 32), np.float32)
    for view in (np.ones((3, 1), np.float32), np.ones((3, 8), np.float32)):
        with pytest.raises(ValueError, match="32"):
            networks.fuse(pose, view, fusion)


def test_network_summary_counts_each_network():
    d = networks.Discriminator(input_dim=8)
    d(np.zeros((1, 8), np.float32))
    q = networks.LikelihoodEstimator(output_dim=2)
    q(np.zeros((2, 3), np.float32))
    summary = networks.network_summary({"D": d, "Q": q})
    assert summary == {"D": (8 * 8 + 8) + (8 * 4 + 4) + (4 + 1),
                       "Q": 2 * ((3 * 2 + 2) + 2 * 2 + (2 * 2 + 2))}


@pytest.mark.parametrize("cls,args,inputs", [
    (networks.Encoder, dict(hidden_dim=16), lambda: tf.zeros([2, 13, 2])),
    (networks.LocalBranch, dict(output_dim=8, hidden_dim=16), lambda: tf.zeros([2, 16])),
    (networks.Decoder, dict(hidden_dim=16), lambda: (tf.zeros([2, 32]), tf.zeros([2, 32]))),
])
def test_tf_checkpoint_round_trip_restores_every_variable(tmp_path, cls, args, inputs):
    """Every weight (residual blocks included) is saved and restored by tf.train.Checkpoint."""
    tf.keras.utils.set_random_seed(1)
    a = cls(**args)
    a(inputs())
    path = tf.train.Checkpoint(net=a).save(str(tmp_path / "ckpt"))
    tf.keras.utils.set_random_seed(2)
    b = cls(**args)
    b(inputs())
    status = tf.train.Checkpoint(net=b).restore(path)
    status.assert_existing_objects_matched()
    for va, vb in zip(a.weights, b.weights):
        if "seed_generator" in va.path:
            continue
        np.testing.assert_array_equal(va.numpy(), vb.numpy(), err_msg=va.path)


def test_stateless_draws_are_the_kernels_numbers_and_the_same_under_xla():
    """XLA differed from the plain kernels twice: ``auto_select`` derived another key/counter from a
    seed like [-5, 2], and its uniforms took the high 23 bits of each Philox word (the kernel: the
    low 23). ``stateless_unit_uniform`` and ``derive_seed`` give the kernel's default numbers, with
    XLA too."""
    for seed in ([0, 1], [-5, 2], [2**40, 5], [-1521856249, 1000]):
        seed = tf.constant(seed, tf.int64)
        plain = tf.random.stateless_uniform([64, 9], seed=seed)  # the default-algorithm kernel
        draws = []
        for jit in (False, True):
            draw = tf.function(lambda s: (networks.stateless_unit_uniform([64, 9], s),
                                          networks.derive_seed(s, 3, 1)), jit_compile=jit)(seed)
            draws.append([d.numpy() for d in draw])
        np.testing.assert_array_equal(draws[0][0].view(np.uint32), plain.numpy().view(np.uint32))
        np.testing.assert_array_equal(draws[1][0].view(np.uint32), plain.numpy().view(np.uint32))
        folded = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(seed, 3), 1)  # default algorithm, no XLA
        np.testing.assert_array_equal(draws[0][1], folded.numpy())
        np.testing.assert_array_equal(draws[1][1], folded.numpy())
    # What the library works around (if TensorFlow changes, the workaround may go): the kernels' own
    # uniforms differ under XLA even with Philox named.
    f = lambda s: tf.random.stateless_uniform([8], seed=s, alg="philox")
    seed = tf.constant([3, 7], tf.int64)
    assert not np.array_equal(tf.function(f)(seed).numpy(),
                              tf.function(f, jit_compile=True)(seed).numpy())


def _fused_ops(layer, x, **kwargs):
    """The op types of ``layer(x, training=True, **kwargs)`` traced as a graph."""
    fn = tf.function(lambda t: layer(t, training=True, **kwargs))
    return {op.type for op in fn.get_concrete_function(x).graph.get_operations()}


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("shape", [(64, 48), (8, 20, 16)])
def test_fused_batch_norm_matches_keras_and_numpy(policy, shape):
    """networks.BatchNormalization's fused training pass (one replica) = Keras' layer and a NumPy
    batch norm: outputs, the gradients of x, gamma and beta, and the moving-statistics update (biased
    variance, momentum 0.99); inference is Keras' own path."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        rng = np.random.default_rng(3)
        x = tf.constant(rng.normal(loc=2.0, scale=3.0, size=shape).astype(np.float32))
        ours, ref = networks.BatchNormalization(), keras.layers.BatchNormalization()
        ours.build(x.shape)
        ref.build(x.shape)
        for v in ours.weights:
            v.assign(rng.normal(size=v.shape).astype(np.float32) + (3.0 if "variance" in v.path else 0))
        for v, w in zip(ours.weights, ref.weights):
            w.assign(v)
        before = {v.path.split("/")[-1]: v.numpy().copy() for v in ours.weights}
        x_in = tf.cast(x, ours.compute_dtype)
        assert "FusedBatchNormV3" in _fused_ops(ours, x_in)  # the fused path is the one tested
        assert "FusedBatchNormV3" not in _fused_ops(ref, x_in)

        def forward(layer):
            with tf.GradientTape() as tape:
                tape.watch(x_in)
                y = layer(x_in, training=True)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.cos(x))
            return y, tape.gradient(loss, [x_in, layer.gamma, layer.beta])

        y, grads = tf.function(lambda: forward(ours))()
        y_ref, grads_ref = tf.function(lambda: forward(ref))()
        assert y.dtype == y_ref.dtype == ours.compute_dtype
        bf16 = policy == "mixed_bfloat16"
        tol = 1e-2 if bf16 else 1e-5  # bf16 output: one rounding of the same float32 value
        np.testing.assert_allclose(_np(tf.cast(y, tf.float32)), _np(tf.cast(y_ref, tf.float32)),
                                   rtol=tol, atol=tol)
        for g, g_ref in zip(grads, grads_ref):
            np.testing.assert_allclose(_np(tf.cast(g, tf.float32)), _np(tf.cast(g_ref, tf.float32)),
                                       rtol=tol, atol=tol)
        # NumPy: normalise over every axis but the channels with the biased variance.
        xs = _np(tf.cast(x_in, tf.float32)).reshape(-1, shape[-1])
        mean, var = xs.mean(0), xs.var(0)
        expected = (xs - mean) / np.sqrt(var + BN_EPS) * before["gamma"] + before["beta"]
        np.testing.assert_allclose(_np(tf.cast(y, tf.float32)).reshape(-1, shape[-1]), expected,
                                   rtol=tol, atol=tol)
        np.testing.assert_allclose(ours.moving_mean.numpy(),
                                   0.99 * before["moving_mean"] + 0.01 * mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ours.moving_variance.numpy(),
                                   0.99 * before["moving_variance"] + 0.01 * var, rtol=1e-6)
        np.testing.assert_allclose(ours.moving_variance.numpy(), ref.moving_variance.numpy(),
                                   rtol=1e-6)
        for v, w in zip(ours.weights, ref.weights):  # inference: Keras' code, bit for bit
            w.assign(v)
        np.testing.assert_array_equal(_np(tf.cast(ours(x_in, training=False), tf.float32)),
                                      _np(tf.cast(ref(x_in, training=False), tf.float32)))
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_fused_batch_norm_leaves_masks_frozen_layers_and_float64_to_keras():
    x = tf.zeros([4, 6, 3])
    frozen = networks.BatchNormalization()
    frozen.build(x.shape)
    frozen.trainable = False
    assert "FusedBatchNormV3" not in _fused_ops(frozen, x)
    masked = networks.BatchNormalization()
    masked.build(x.shape)
    assert "FusedBatchNormV3" not in _fused_ops(masked, x, mask=tf.ones([4, 6], tf.bool))
    wide = networks.BatchNormalization(dtype="float64")  # a dtype the fused kernel does not take
    x64 = tf.zeros([4, 6, 3], tf.float64)
    wide.build(x64.shape)
    assert "FusedBatchNormV3" not in _fused_ops(wide, x64)
    assert wide(x64 + 1.0, training=True).dtype == tf.float64


@pytest.mark.parametrize("rate", [0.25, 0.1, 0.3, 0.5, 0.9, 1e-7, 0.999999])
def test_dropout_integer_mask_is_the_uniform_mask_bit_for_bit(rate):
    """StatelessDropout compares the draw's mantissa integers with a threshold instead of the uniform
    floats with keep: the same masks, with and without XLA, for representable and other rates."""
    seed = tf.constant([3, 9], tf.int64)
    keep = 1.0 - rate
    threshold = networks.unit_uniform_threshold(keep)
    below = np.float32(threshold - 1) * np.float32(2.0 ** -23)
    assert below < np.float32(keep) <= np.float32(threshold) * np.float32(2.0 ** -23)
    layer = networks.StatelessDropout(rate)
    x = tf.ones([64, 300])
    expected = (tf.cast(networks.stateless_unit_uniform([64, 300], seed) < keep, tf.float32)
                / tf.cast(keep, tf.float32)).numpy()
    np.testing.assert_array_equal(layer(x, training=True, seed=seed).numpy(), expected)
    xla = tf.function(lambda t: layer(t, training=True, seed=seed), jit_compile=True)
    np.testing.assert_array_equal(xla(x).numpy(), expected)
