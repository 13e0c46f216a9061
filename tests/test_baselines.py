"""Tests of cv_mim/algorithms/reconstruction.py and infomax.py: the Eq. 12 cross-reconstruction and Eq. 2 InfoMax baselines.

Expected loss values are recomputed here with NumPy from the networks' own outputs (the loss formulas
are re-derived, not taken from cv_mim.losses), so the wiring — which embedding is decoded or fused with
which — is checked independently of the code under test.
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import infomax
from cv_mim.algorithms import reconstruction
from cv_mim.algorithms import registry
from cv_mim.algorithms import step as step_lib

ALL = registry.BASELINES
SEED = tf.constant([0, 0], tf.int64)

# A rough standing human in metres, canonical 13-joint order (head, shoulders, elbows, wrists, hips,
# knees, ankles); x right, y forward, z up.
_TEMPLATE = np.array([
    [0.0, 0.0, 1.70], [0.20, 0.0, 1.45], [-0.20, 0.0, 1.45], [0.25, 0.0, 1.15], [-0.25, 0.0, 1.15],
    [0.30, 0.0, 0.90], [-0.30, 0.0, 0.90], [0.12, 0.0, 0.95], [-0.12, 0.0, 0.95], [0.12, 0.0, 0.50],
    [-0.12, 0.0, 0.50], [0.12, 0.0, 0.05], [-0.12, 0.0, 0.05]])
_TORSO_PAIRS = ((1, 2), (1, 7), (1, 8), (2, 7), (2, 8), (7, 8))


def _rotations(rng, n):
    """R = Rz(azimuth)·Ry(elevation)·Rx(roll) with the paper's camera ranges (§4.2)."""
    az = rng.uniform(-np.pi, np.pi, n)
    el = rng.uniform(-np.pi / 6, np.pi / 6, n)
    ro = rng.uniform(-np.pi / 6, np.pi / 6, n)

    def axis_rotation(angle, i, j):
        m = np.tile(np.eye(3), (n, 1, 1))
        c, s = np.cos(angle), np.sin(angle)
        m[:, i, i], m[:, i, j], m[:, j, i], m[:, j, j] = c, -s, s, c
        return m

    return axis_rotation(az, 0, 1) @ axis_rotation(el, 2, 0) @ axis_rotation(ro, 1, 2)


def _normalize_2d(kp):
    """Mid-hip offset, max torso-pair distance scaled to 0.5 (fact sheet §6.3)."""
    offset = 0.5 * (kp[:, 7] + kp[:, 8])
    scale = np.max([np.linalg.norm(kp[:, i] - kp[:, j], axis=-1) for i, j in _TORSO_PAIRS], axis=0)
    return ((kp - offset[:, None]) * 0.5 / scale[:, None, None]).astype(np.float32)


def synthetic_pairs(n, seed=0):
    """n positive pairs: jittered skeletons seen by two random cameras, orthographic, normalised."""
    rng = np.random.default_rng(seed)
    poses = _TEMPLATE[None] + rng.normal(0.0, 0.12, (n, 13, 3))
    views = []
    for _ in range(2):
        rotated = np.einsum("nij,nkj->nki", _rotations(rng, n), poses)
        # Camera looking along +y: image x = world x, image y (down) = -z.
        views.append(_normalize_2d(np.stack([rotated[..., 0], -rotated[..., 2]], axis=-1)))
    return views[0], views[1]


def _config(algorithm, **overrides):
    values = dict(algorithm=algorithm, pose_dim=8, view_dim=8, hidden_dim=64, dropout_rate=0.0)
    values.update(overrides)
    return config_lib.ModelConfig(**values)


def _build(algorithm, **overrides):
    tf.keras.utils.set_random_seed(1)
    return registry.get_baseline(_config(algorithm, **overrides)).build()


# ---------------------------------------------------------------------------------------------------
# Independent NumPy versions of the losses.

def _softplus(x):
    return np.logaddexp(0.0, x)


def _np_jsd_loss(local, global_):
    s = local.astype(np.float64) @ global_.astype(np.float64).T
    off = ~np.eye(len(s), dtype=bool)
    # Eq. 6 (E_pos softplus(-s) + E_neg softplus(s)) minus its constant 2 log 2.
    return _softplus(s[off]).mean() + _softplus(-np.diag(s)).mean() - 2.0 * math.log(2.0)


def _np_info_nce(local, global_, temperature):
    """The authors' InfoNCE: global i's positive ⟨l_i, g_i⟩ against ⟨l_j, g_i⟩ (column i of S)."""
    s = local.astype(np.float64) @ global_.astype(np.float64).T / temperature
    m = s.max(axis=0, keepdims=True)
    log_norm = np.log(np.exp(s - m).sum(axis=0)) + m[0]
    return np.mean(log_norm - np.diag(s))


def _np_mse(a, b):
    return np.mean((a.astype(np.float64) - b) ** 2)


def _np_kl(mean, log_var, scale="authors"):
    """KL to N(0, I) per example, summed (authors) or averaged (per_dimension) over dims; batch mean."""
    mean, log_var = mean.astype(np.float64), log_var.astype(np.float64)
    per_dim = 0.5 * (np.exp(log_var) + mean ** 2 - 1.0 - log_var)
    return np.mean(per_dim.sum(-1) if scale == "authors" else per_dim.mean(-1))


def _np_fuse(pose, view, fusion):
    return {"moe": 0.5 * (pose + view), "poe": pose * view,
            "cat": np.concatenate([pose, view], axis=-1)}[fusion]


def _numpy(result):
    return {g: {k: float(v) for k, v in terms.items()} for g, terms in result.items()}


# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALL)
def test_builds_with_named_networks_and_one_optimizer_group(algorithm, tmp_path):
    alg = _build(algorithm)
    recon = algorithm in registry.RECONSTRUCTION_BASELINES
    second = "decoder" if recon else "local_branch"
    assert list(alg.networks) == ["encoder", second]
    assert alg.networks["encoder"] is alg.encoder
    assert alg.optimizer_groups == {"encoder": ["encoder", second]}
    assert len(alg.group_variables("encoder")) == sum(
        len(n.trainable_variables) for n in alg.networks.values())
    assert alg.encoder.embedder == ("gaussian" if algorithm in ("vae", "beta_vae") else "point")

    x = synthetic_pairs(5)[0]
    enc = alg.encoder(x, training=False)
    assert enc["pose_embedding"].shape == (5, 8) and enc["view_embedding"].shape == (5, 8)
    if recon:
        out = alg.networks["decoder"]((enc["pose_embedding"], enc["view_embedding"]))["keypoints"]
        assert out.shape == (5, 13, 2)
        # The decoder reads [z_p ; z_v] (16) into its hidden layer.
        assert alg.networks["decoder"].fc0.dense.kernel.shape == (16, 64)
    else:
        assert alg.networks["local_branch"](enc["fc0"])["local"].shape == (5, 8)

    result = alg.compute_losses(x, x, SEED, training=False)
    assert set(result) == {"encoder", "metrics"}
    expected = ({"total_loss", "reconstruction_loss", "cross_reconstruction_loss", "kl_loss"} if recon
                else {"total_loss", "representation_loss", "cross_representation_loss"})
    assert set(result["encoder"]) == expected
    for terms in result.values():
        for value in terms.values():
            assert value.shape == () and np.isfinite(value.numpy())
    # A checkpoint of the networks dict stores every variable under its network's contract name.
    path = tf.train.Checkpoint(**alg.networks).write(str(tmp_path / "ckpt"))
    roots = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
    assert roots - {"_CHECKPOINTABLE_OBJECT_GRAPH"} == {"encoder", second}


def test_get_algorithm_dispatches_to_the_baselines():
    assert isinstance(registry.get_algorithm(_config("autoencoder")),
                      reconstruction.CrossReconstruction)
    assert isinstance(registry.get_algorithm(_config("beta_vae", kl_weight=4.0)),
                      reconstruction.CrossReconstruction)
    assert isinstance(registry.get_algorithm(_config("infonce")), infomax.CrossViewInfoMax)
    dim = registry.get_algorithm(_config("dim"))
    assert isinstance(dim, infomax.CrossViewInfoMax)
    # The documented default reading of Eq. 2's cross-view term: I(x^i; z_p^j ⊙ z_v^i).
    assert dim.cross_pairing == "swap_pose"


def test_cat_fusion_with_unequal_dims_sizes_the_local_branch():
    tf.keras.utils.set_random_seed(1)
    alg = registry.get_baseline(_config("dim", pose_dim=6, view_dim=10, fusion="cat")).build()
    enc = alg.encoder(synthetic_pairs(3)[0])
    assert alg.local_branch(enc["fc0"])["local"].shape == (3, 16)


@pytest.mark.parametrize("algorithm,kl_weight,kl_scale", [
    ("autoencoder", 1.0, "per_dimension"), ("vae", 1.0, "per_dimension"), ("vae", 1.0, "authors"),
    ("beta_vae", 4.0, "per_dimension"), ("beta_vae", 4.0, "authors")])
def test_reconstruction_losses_match_numpy(algorithm, kl_weight, kl_scale):
    alg = _build(algorithm, kl_weight=kl_weight, kl_scale=kl_scale)
    a, p = synthetic_pairs(6, seed=3)
    got = _numpy(alg.compute_losses(a, p, SEED, training=False))

    enc_a, enc_p = alg.encoder(a, training=False), alg.encoder(p, training=False)
    if algorithm == "autoencoder":
        emb_a, emb_p = enc_a["embedding"].numpy(), enc_p["embedding"].numpy()
    else:
        # Outside training the VAE decodes the posterior mean.
        emb_a, emb_p = enc_a["mean"].numpy(), enc_p["mean"].numpy()

    def dec(pose, view):
        return alg.networks["decoder"]((pose, view), training=False)["keypoints"].numpy()

    zp_a, zv_a, zp_p, zv_p = emb_a[:, :8], emb_a[:, 8:], emb_p[:, :8], emb_p[:, 8:]
    self_a, self_p = dec(zp_a, zv_a), dec(zp_p, zv_p)
    cross_a, cross_p = dec(zp_p, zv_a), dec(zp_a, zv_p)

    recon = _np_mse(self_a, a) + _np_mse(self_p, p)
    cross = _np_mse(cross_a, a) + _np_mse(cross_p, p)
    if algorithm == "autoencoder":
        kl = 0.0
    else:
        params = [(e["mean"].numpy(), e["log_var"].numpy()) for e in (enc_a, enc_p)]
        # The metric is in nats (summed over the dims) whatever the scale; the loss uses the scale.
        np.testing.assert_allclose(got["metrics"]["kl_divergence"],
                                   sum(_np_kl(m, lv) for m, lv in params), rtol=1e-4)
        kl = sum(_np_kl(m, lv, kl_scale) for m, lv in params)
    enc = got["encoder"]
    np.testing.assert_allclose(enc["reconstruction_loss"], recon, rtol=1e-5)
    np.testing.assert_allclose(enc["cross_reconstruction_loss"], cross, rtol=1e-5)
    np.testing.assert_allclose(enc["kl_loss"], kl_weight * kl if kl else 0.0, rtol=1e-4)
    np.testing.assert_allclose(enc["total_loss"], recon + cross + kl_weight * kl, rtol=1e-4)

    def joint_err(r, x):
        return np.mean(np.linalg.norm(r - x, axis=-1))

    np.testing.assert_allclose(got["metrics"]["reconstruction_error"],
                               0.5 * (joint_err(self_a, a) + joint_err(self_p, p)), rtol=1e-5)
    np.testing.assert_allclose(got["metrics"]["cross_reconstruction_error"],
                               0.5 * (joint_err(cross_a, a) + joint_err(cross_p, p)), rtol=1e-5)


@pytest.mark.parametrize("algorithm,fusion,pairing", [
    ("dim", "moe", "swap_pose"), ("dim", "poe", "other_view"), ("infonce", "cat", "swap_pose"),
    ("infonce", "moe", "other_view")])
def test_infomax_losses_match_numpy(algorithm, fusion, pairing):
    tf.keras.utils.set_random_seed(1)
    cfg = _config(algorithm, fusion=fusion, infonce_temperature=0.5, infomax_cross_weight=3.0)
    alg = infomax.CrossViewInfoMax(cfg, cross_pairing=pairing).build()
    a, p = synthetic_pairs(7, seed=4)
    got = _numpy(alg.compute_losses(a, p, SEED, training=False))

    enc_a, enc_p = alg.encoder(a, training=False), alg.encoder(p, training=False)
    loc_a = alg.local_branch(enc_a["fc0"], training=False)["local"].numpy()
    loc_p = alg.local_branch(enc_p["fc0"], training=False)["local"].numpy()
    zp_a, zv_a = enc_a["embedding"].numpy()[:, :8], enc_a["embedding"].numpy()[:, 8:]
    zp_p, zv_p = enc_p["embedding"].numpy()[:, :8], enc_p["embedding"].numpy()[:, 8:]

    def mi(local, global_):
        if algorithm == "dim":
            return _np_jsd_loss(local, global_)
        return _np_info_nce(local, global_, 0.5)

    rep = mi(loc_a, _np_fuse(zp_a, zv_a, fusion)) + mi(loc_p, _np_fuse(zp_p, zv_p, fusion))
    if pairing == "swap_pose":  # I(x^i; z_p^j, z_v^i)
        cross = mi(loc_a, _np_fuse(zp_p, zv_a, fusion)) + mi(loc_p, _np_fuse(zp_a, zv_p, fusion))
    else:  # I(x^i; z_p^j, z_v^j), Eq. 2 as printed
        cross = mi(loc_a, _np_fuse(zp_p, zv_p, fusion)) + mi(loc_p, _np_fuse(zp_a, zv_a, fusion))
    enc = got["encoder"]
    np.testing.assert_allclose(enc["representation_loss"], rep, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(enc["cross_representation_loss"], 3.0 * cross, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(enc["total_loss"], rep + 3.0 * cross, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["metrics"]["cross_view_mi"], -_np_jsd_loss(zp_a, zp_p),
                               rtol=1e-4, atol=1e-5)


def test_pairings_differ():
    """The two readings of the cross-view term give different losses on the same networks."""
    a, p = synthetic_pairs(6, seed=5)
    values = {}
    for pairing in infomax.CROSS_PAIRINGS:
        tf.keras.utils.set_random_seed(1)
        alg = infomax.CrossViewInfoMax(_config("dim"), cross_pairing=pairing).build()
        values[pairing] = float(alg.compute_losses(a, p, SEED, training=False)["encoder"][
            "cross_representation_loss"])
    assert abs(values["swap_pose"] - values["other_view"]) > 1e-3


@pytest.mark.parametrize("algorithm", ALL)
def test_objective_is_symmetric_in_the_two_views(algorithm):
    alg = _build(algorithm, kl_weight=4.0 if algorithm == "beta_vae" else 1.0)
    a, p = synthetic_pairs(6, seed=6)
    ap = _numpy(alg.compute_losses(a, p, SEED, training=False))["encoder"]
    pa = _numpy(alg.compute_losses(p, a, SEED, training=False))["encoder"]
    for name in ap:
        np.testing.assert_allclose(ap[name], pa[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # ...and the cross term really uses the other view: per unit weight it differs from the same-view
    # term (they would coincide if the "other" view's embedding were this view's own).
    if algorithm in registry.RECONSTRUCTION_BASELINES:
        same, cross, weight = "reconstruction_loss", "cross_reconstruction_loss", 1.0
    else:
        same, cross = "representation_loss", "cross_representation_loss"
        weight = alg.config.infomax_cross_weight
    assert abs(ap[cross] / weight - ap[same]) > 1e-4


@pytest.mark.parametrize("algorithm", ALL)
def test_gradients_reach_every_network(algorithm):
    alg = _build(algorithm, dropout_rate=0.25)
    a, p = synthetic_pairs(16, seed=7)
    variables = alg.group_variables("encoder")
    with tf.GradientTape() as tape:
        total = alg.compute_losses(a, p, SEED, training=True)["encoder"]["total_loss"]
    grads = tape.gradient(total, variables)
    for v, g in zip(variables, grads):
        assert g is not None, v.path
        assert np.all(np.isfinite(g.numpy())), v.path
    for name, net in alg.networks.items():
        norms = [float(tf.norm(g)) for v, g in zip(variables, grads)
                 if any(v is w for w in net.trainable_variables)]
        assert norms and max(norms) > 0.0, name
    if algorithm in ("vae", "beta_vae"):
        log_var_kernel = alg.encoder.log_var_head.kernel
        g = [g for v, g in zip(variables, grads) if v is log_var_kernel][0]
        assert float(tf.norm(g)) > 0.0


def test_cross_term_gradient_reaches_the_encoder_through_the_other_view():
    """Only the cross term links view a's pose embedding to view p's input."""
    tf.keras.utils.set_random_seed(1)
    alg = registry.get_baseline(_config("autoencoder")).build()
    a, p = synthetic_pairs(8, seed=8)
    p = tf.constant(p)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(p)
        result = alg.compute_losses(a, p, SEED, training=False)["encoder"]
    # Gradient of the anchor's cross reconstruction G(z_p^p, z_v^a) ≈ x^a flows into x^p.
    g_cross = tape.gradient(result["cross_reconstruction_loss"], p)
    g_self = tape.gradient(result["reconstruction_loss"], p)
    assert float(tf.norm(g_cross)) > 0.0 and float(tf.norm(g_self)) > 0.0


def test_kl_scale_default_flag_and_validation():
    """The default KL scale is the one that does not collapse (BUILD_NOTES §1); the authors' sum is a
    flag value; a bad value is refused."""
    assert config_lib.ModelConfig(algorithm="vae").kl_scale == "per_dimension"
    flag = {f.name: f for f in config_lib.flag_fields()}["kl_scale"]
    assert flag.default == "per_dimension" and flag.choices == ("per_dimension", "authors")
    assert config_lib.ModelConfig(algorithm="vae", kl_scale="authors").kl_scale == "authors"
    with pytest.raises(ValueError, match="kl_scale must be one of"):
        config_lib.ModelConfig(algorithm="vae", kl_scale="sum")
    # A model_config.json written before the field existed describes a VAE trained with the sum.
    old = {"algorithm": "beta_vae", "kl_weight": 4.0}
    assert config_lib.ModelConfig.from_dict(old).kl_scale == "authors"
    assert config_lib.ModelConfig.from_dict({"algorithm": "cv_mim"}).kl_scale == "per_dimension"


def test_default_kl_weight_and_validation():
    assert registry.default_kl_weight("beta_vae") == reconstruction.DEFAULT_BETA > 1.0
    assert registry.default_kl_weight("vae") == 1.0
    with pytest.raises(ValueError, match="algorithm"):
        registry.default_kl_weight("gan")
    with pytest.raises(ValueError, match="cv_mim"):
        registry.get_baseline(_config("cv_mim"))
    with pytest.raises(ValueError, match="cross_pairing"):
        infomax.CrossViewInfoMax(_config("dim"), cross_pairing="literal")
    with pytest.raises(ValueError, match="infomax_cross_weight"):
        infomax.CrossViewInfoMax(_config("dim", infomax_cross_weight=-1.0))
    with pytest.raises(ValueError, match="infonce_temperature"):
        infomax.CrossViewInfoMax(_config("infonce", infonce_temperature=0.0))
    # The registry is the one dispatcher: each family's names build that family's class.
    for name in registry.BASELINES:
        expected = (reconstruction.CrossReconstruction if name in registry.RECONSTRUCTION_BASELINES
                    else infomax.CrossViewInfoMax)
        assert type(registry.get_algorithm(_config(name))) is expected, name
    assert set(registry.RECONSTRUCTION_BASELINES) == {"autoencoder", "vae", "beta_vae"}
    assert set(registry.INFOMAX_BASELINES) == {"infonce", "dim"}


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ALL)
def test_short_training_lowers_the_loss(algorithm):
    """30 AdaGrad steps of algorithms.train_step (tf.function, batch 64, dropout 0.25) on synthetic
    positive pairs at least halve the total loss and each of its two main terms."""
    steps, batch = 30, 64
    tf.keras.utils.set_random_seed(2)
    cfg = _config(algorithm, pose_dim=32, view_dim=32, dropout_rate=0.25,
                  kl_weight=registry.default_kl_weight(algorithm))
    alg = registry.get_algorithm(cfg).build()
    optimizers = step_lib.create_optimizers(alg)
    step = tf.function(lambda x, y, s: step_lib.train_step(alg, optimizers, x, y, s))
    anchors, positives = synthetic_pairs(steps * batch, seed=9)
    history = []
    for i in range(steps):
        sl = slice(i * batch, (i + 1) * batch)
        result = step(anchors[sl], positives[sl], tf.constant([0, i], tf.int64))
        history.append(_numpy(result)["encoder"])
    assert all(np.isfinite(h["total_loss"]) for h in history)
    recon = algorithm in registry.RECONSTRUCTION_BASELINES
    names = (("total_loss", "reconstruction_loss", "cross_reconstruction_loss") if recon
             else ("total_loss", "representation_loss", "cross_representation_loss"))
    for name in names:
        first = np.mean([h[name] for h in history[:5]])
        last = np.mean([h[name] for h in history[-5:]])
        assert last < 0.5 * first, (name, first, last)


_MULTI_REPLICA_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    from test_baselines import _config, synthetic_pairs
    from cv_mim.algorithms import registry, step as step_lib

    out = {}
    a, p = synthetic_pairs(8, seed=10)
    seed = tf.constant([0, 1], tf.int64)
    # One strategy per process: several MirroredStrategy objects would share collective instance keys.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for name in ("autoencoder", "infonce"):
        # One residual block keeps the graph (and its collectives) small: tracing dominates the time.
        cfg = _config(name, num_blocks=1, hidden_dim=32)
        tf.keras.utils.set_random_seed(3)
        single = registry.get_baseline(cfg).build()
        opt_single = step_lib.create_optimizers(single)
        with strategy.scope():
            multi = registry.get_baseline(cfg).build()
            for key, net in single.networks.items():
                multi.networks[key].set_weights(net.get_weights())
            opt_multi = step_lib.create_optimizers(multi)
        before = [w.copy() for n in single.networks.values() for w in n.get_weights()]
        ref = tf.function(lambda x, y: step_lib.train_step(single, opt_single, x, y, seed))(a, p)
        dist = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((a, p)).batch(8))
        x, y = next(iter(dist))

        @tf.function
        def run(x, y):
            return strategy.run(
                lambda u, v: step_lib.train_step(multi, opt_multi, u, v, seed), args=(x, y))

        got = run(x, y)
        replica_totals = [float(t) for t in strategy.experimental_local_results(
            got["encoder"]["total_loss"])]
        weight_diff = max(
            float(np.max(np.abs(w1 - w2)))
            for key in single.networks
            for w1, w2 in zip(single.networks[key].get_weights(), multi.networks[key].get_weights()))
        after = [w for n in single.networks.values() for w in n.get_weights()]
        weight_change = max(float(np.max(np.abs(w1 - w0))) for w1, w0 in zip(after, before))
        out[name] = {"single": float(ref["encoder"]["total_loss"]), "replicas": replica_totals,
                     "weight_diff": weight_diff, "weight_change": weight_change}
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.multidevice
def test_two_replicas_match_one_device():
    """Global-batch semantics: on 2 replicas (4 + 4 examples) every replica reports the 8-example loss
    and one train_step leaves exactly the weights a single device leaves (dropout 0, sync BN)."""
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", _MULTI_REPLICA_SCRIPT, tests_dir],
                          capture_output=True, text=True, env=env, timeout=240, check=False)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    for name, res in json.loads(lines[-1][len("RESULT"):]).items():
        assert len(res["replicas"]) == 2, name
        np.testing.assert_allclose(res["replicas"], [res["single"]] * 2, rtol=1e-4, err_msg=name)
        assert res["weight_change"] > 1e-3, (name, res)  # the step did move the weights
        assert res["weight_diff"] < 1e-5 * max(1.0, res["weight_change"] * 100), (name, res)
