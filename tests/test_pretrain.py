"""End-to-end tests of the pretraining binary: artefacts, resume, NaN stop, strategies, bad input."""
import json
import os
import pathlib
import subprocess
import sys

import event_files
import numpy as np
import pytest
import tensorflow as tf

from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry
from cv_mim.keypoints import normalization
from cv_mim.serving import export as export_lib
from cv_mim.training import checkpoints
from cv_mim.training import locking
from cv_mim.training import loop
from cv_mim.training import sources

TINY = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "synthetic_tiny"
H36M = TINY / "h36m"


def _small_config(**kw):
    kw.setdefault("hidden_dim", 32)
    return config_lib.ModelConfig(**kw)


@pytest.fixture(scope="module")
def source():
    return sources.load_pair_source("h36m", data_dir=str(H36M), subjects=("S1",))


def _events(model_dir):
    return event_files.scalar_events(os.path.join(model_dir, "train"))


def test_run_writes_checkpoint_events_flags_and_config(tmp_path, source):
    model_dir = str(tmp_path / "m")
    summary = loop.run(model_dir=model_dir, config=_small_config(), source=source,
                               batch_size=16, num_steps=6, summary_every=2, checkpoint_every=3,
                               log_every=2, flags_record={"hello": "world"})
    assert summary["final_step"] == 6 and summary["steps_run"] == 6
    files = set(os.listdir(model_dir))
    assert {"flags.json", "model_config.json", "checkpoint", "train_summary.json",
            "metrics.jsonl"} <= files
    assert json.load(open(os.path.join(model_dir, "flags.json"))) == {"hello": "world"}
    config = checkpoints.load_model_config(model_dir)
    assert config == _small_config()
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-6")
    # The checkpoint's object names are part of the interface.
    names = {name for name, _ in tf.train.list_variables(tf.train.latest_checkpoint(model_dir))}
    for prefix in ("model/encoder/", "model/local_branch/", "model/estimator/",
                   "model/discriminator/", "optimizers/encoder/", "optimizers/estimator/",
                   "optimizers/discriminator/", "step/"):
        assert any(n.startswith(prefix) for n in names), prefix
    tags = _events(model_dir)
    for tag in ("train/encoder/cross_view_loss", "train/encoder/total_loss", "train/lr/encoder",
                "train/estimator/total_loss", "train/discriminator/total_loss",
                "train/metrics/cross_view_mi"):
        assert tag in tags, tag
    assert [s for s, _ in tags["train/encoder/cross_view_loss"]] == [2, 4, 6]
    assert tags["train/lr/encoder"][0][1] == pytest.approx(0.02)
    # The encoder rebuilds from model_config.json + checkpoint alone, without building Q, D or the
    # local branch (export must not depend on the training networks).
    from cv_mim import networks  # pylint: disable=import-outside-toplevel

    def refuse(*args, **kwargs):
        raise AssertionError("restore_encoder built a training-only network")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("LikelihoodEstimator", "Discriminator", "LocalBranch", "Decoder"):
            mp.setattr(networks, name, refuse)
        encoder, cfg, path, step = checkpoints.restore_encoder(model_dir)
    assert step == 6 and cfg.hidden_dim == 32
    out = encoder(tf.zeros([2, 13, 2]), training=False)
    assert out["pose_embedding"].shape == (2, 32)
    # The same weights as a restore of the whole algorithm.
    full = registry.get_algorithm(cfg).build()
    tf.train.Checkpoint(model=tf.train.Checkpoint(**full.networks)).restore(path).expect_partial()
    assert len(encoder.weights) == len(full.encoder.weights)
    for mine, theirs in zip(encoder.weights, full.encoder.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_keypoint_dropout_option_trains_and_rejects_bad_rates(tmp_path, source):
    losses = {}
    for rate in (0.0, 0.4):
        model_dir = str(tmp_path / f"m{rate}")
        loop.run(model_dir=model_dir, config=_small_config(), source=source, batch_size=16,
                         num_steps=2, log_every=1, summary_every=1, keypoint_dropout_rate=rate)
        rows = [json.loads(l) for l in open(os.path.join(model_dir, "metrics.jsonl"))]
        losses[rate] = rows[0]["encoder/total_loss"]
    assert np.isfinite(losses[0.4]) and losses[0.4] != losses[0.0]  # other inputs, same seed
    with pytest.raises(ValueError, match="keypoint_dropout_rate must be in"):
        loop.run(model_dir=str(tmp_path / "bad"), config=_small_config(), source=source,
                         batch_size=16, num_steps=2, keypoint_dropout_rate=1.0)


def _checkpoint_arrays(path):
    """{variable name: value} of every variable a checkpoint holds (the object graph left out)."""
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in name}


def _pretrain_binary(model_dir, cfg, **flags_):
    """Runs ``python -m cv_mim.pretrain`` in a fresh process (nothing of this process carries over)."""
    cmd = [sys.executable, "-m", "cv_mim.pretrain", f"--data_dir={H36M}", "--subjects=S1",
           f"--model_dir={model_dir}", f"--algorithm={cfg.algorithm}",
           f"--hidden_dim={cfg.hidden_dim}"] + [f"--{k}={v}" for k, v in flags_.items()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stderr


@pytest.mark.parametrize("algorithm", ["cv_mim", pytest.param("vae", marks=pytest.mark.slow)])
def test_resumed_run_is_the_run_done_in_one_go_bit_for_bit(tmp_path, source, algorithm):
    """The real loop at the defaults (dropout 0.25, mixed camera augmentation, every random stream;
    vae adds the reparameterised sample): 2N steps in one go vs N steps, then the process dropped and
    the binary resumed from the checkpoint to 2N in a NEW process. Every variable of the checkpoint —
    every network, every optimizer slot, the step — and every metrics row must be bit-identical."""
    cfg = _small_config(algorithm=algorithm)
    assert cfg.dropout_rate == 0.25
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    flags_ = dict(batch_size=16, num_steps=6, summary_every=1, checkpoint_every=3, log_every=3,
                  seed=3)
    full = loop.run(model_dir=straight, config=cfg, source=source, **flags_)
    assert full["final_step"] == 6 and full["steps_run"] == 6
    first = loop.run(model_dir=split, config=cfg, source=source, stop_after=3, **flags_)
    assert first["final_step"] == 3
    log_text = _pretrain_binary(split, cfg, **flags_)
    assert f"resuming from {split}/ckpt-3 (step 3)" in log_text
    a, b = _checkpoint_arrays(f"{straight}/ckpt-6"), _checkpoint_arrays(f"{split}/ckpt-6")
    assert sorted(a) == sorted(b)
    assert any(n.startswith("optimizers/encoder/") for n in a)  # the AdaGrad accumulators too
    assert int(b["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 6
    differ = [n for n in a if not np.array_equal(a[n], b[n])]
    assert not differ, f"{len(differ)} of {len(a)} variables differ after the resume: {differ[:5]}"
    # The second half trained (so the comparison is not of untouched weights).
    mid = _checkpoint_arrays(f"{split}/ckpt-3")
    assert sum(not np.array_equal(mid[n], b[n]) for n in b if n.startswith("model/")) > 10
    rows = open(os.path.join(split, "metrics.jsonl")).read()
    assert [json.loads(l)["step"] for l in rows.splitlines()] == [1, 2, 3, 4, 5, 6]
    assert rows == open(os.path.join(straight, "metrics.jsonl")).read()
    again = loop.run(model_dir=split, config=cfg, source=source, **flags_)
    assert again["steps_run"] == 0


def test_killed_run_resumes_from_last_checkpoint(tmp_path):
    model_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "cv_mim.pretrain", f"--data_dir={H36M}", "--subjects=S1",
           f"--model_dir={model_dir}", "--hidden_dim=32", "--batch_size=16", "--num_steps=400",
           "--checkpoint_every=5", "--log_every=5", "--summary_every=5"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    # Kill it once it has written a checkpoint past step 5.
    import time  # pylint: disable=import-outside-toplevel
    deadline = time.time() + 300
    while time.time() < deadline:
        latest = tf.train.latest_checkpoint(str(model_dir))
        if latest and int(latest.rsplit("-", 1)[1]) >= 10:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    killed_at = int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])
    out = subprocess.run(cmd[:-5] + ["--num_steps=" + str(killed_at + 5), "--checkpoint_every=5",
                                     "--log_every=5", "--summary_every=5"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"resuming from {model_dir}/ckpt-{killed_at}" in out.stderr
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{killed_at + 5}")


def test_nan_stop_keeps_only_checkpoints_whose_weights_gave_finite_losses(tmp_path, source):
    """A huge learning rate: step 3's update makes weights ~1e30 (finite, saved as ckpt-3 by the old
    code), and step 4's loss, computed with them, is non-finite. ckpt-3 must go; ckpt-2 is kept."""
    model_dir = str(tmp_path / "nan")
    cfg = _small_config()
    loop.run(model_dir=model_dir, config=cfg, source=source, batch_size=16, num_steps=2,
             checkpoint_every=1)
    with pytest.raises(loop.NonFiniteLossError,
                       match=r"became non-finite at step 4 .*last good checkpoint .*ckpt-2\)"):
        loop.run(model_dir=model_dir, config=cfg, source=source, batch_size=16, num_steps=50,
                 checkpoint_every=1, learning_rate=1e30)
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")
    assert not tf.io.gfile.glob(os.path.join(model_dir, "ckpt-3*"))
    # The kept checkpoint resumes (its weights are finite) and the run can continue.
    summary = loop.run(model_dir=model_dir, config=cfg, source=source, batch_size=16, num_steps=3)
    assert summary["start_step"] == 2 and np.isfinite(summary["final_losses"]["encoder/total_loss"])


def test_save_if_finite_refuses_non_finite_weights(tmp_path):
    v = tf.Variable([1.0, 2.0], name="w")
    counter = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=v, c=counter), str(tmp_path), 3)
    assert checkpoints.save_if_finite(manager, [v, counter], 1).endswith("ckpt-1")
    for bad in (np.nan, np.inf):
        v.assign([1.0, bad])
        with pytest.raises(checkpoints.NonFiniteWeightsError, match=r"step 2 \(w.*ckpt-1"):
            checkpoints.save_if_finite(manager, [v, counter], 2)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-1")


def test_resume_uses_the_requested_learning_rate(tmp_path, source):
    model_dir = str(tmp_path / "lr")
    loop.run(model_dir=model_dir, config=_small_config(), source=source, batch_size=16,
                     num_steps=1)
    loop.run(model_dir=model_dir, config=_small_config(), source=source, batch_size=16,
                     num_steps=2, learning_rate=0.005, summary_every=1)
    lrs = dict(_events(model_dir)["train/lr/encoder"])
    assert lrs[2] == pytest.approx(0.005)


def test_init_checkpoint_and_config_mismatch(tmp_path, source):
    first = str(tmp_path / "first")
    loop.run(model_dir=first, config=_small_config(), source=source, batch_size=16,
                     num_steps=2)
    enc_first, _, _, _ = checkpoints.restore_encoder(first)
    second = str(tmp_path / "second")
    loop.run(model_dir=second, config=_small_config(), source=source, batch_size=16,
                     num_steps=1, init_checkpoint=first, learning_rate=1e-9)
    enc_second, _, _, _ = checkpoints.restore_encoder(second)
    np.testing.assert_allclose(enc_first.get_weights()[0], enc_second.get_weights()[0], atol=1e-5)
    with pytest.raises(ValueError, match="describes a different model"):
        loop.run(model_dir=first, config=_small_config(pose_dim=16, view_dim=16),
                         source=source, batch_size=16, num_steps=3)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(data_dir="/nonexistent"), FileNotFoundError, "data_3d file not found"),
    (dict(data_dir=str(H36M), subjects=("S7",)), ValueError, "S7"),
    (dict(), ValueError, "needs data_3d"),
    (dict(data_format="csv"), ValueError, "data_format must be one of"),
])
def test_bad_data_arguments(kwargs, error, match):
    args = dict(data_format="h36m")
    args.update(kwargs)
    with pytest.raises(error, match=match):
        sources.load_pair_source(**args)


def test_corrupt_and_misshaped_files(tmp_path):
    import shutil  # pylint: disable=import-outside-toplevel
    d = tmp_path / "h36m"
    shutil.copytree(H36M, d)
    (d / "data_3d_h36m.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="data_3d_h36m.npz"):
        sources.load_pair_source("h36m", data_dir=str(d), subjects=("S1",))
    shutil.copy(H36M / "data_3d_h36m.npz", d / "data_3d_h36m.npz")
    cams = json.loads((d / "cameras.json").read_text())
    del cams["extrinsics"]["S1"][cams["camera_order"][1]]
    (d / "cameras.json").write_text(json.dumps(cams))
    with pytest.raises(ValueError, match=cams["camera_order"][1]):
        sources.load_pair_source("h36m", data_dir=str(d), subjects=("S1",))


@pytest.mark.parametrize("algorithm", ["autoencoder", "vae", "beta_vae", "infonce", "dim"])
def test_baseline_checkpoints_export_like_cv_mim(tmp_path, source, algorithm):
    model_dir = str(tmp_path / algorithm)
    loop.run(model_dir=model_dir, config=_small_config(algorithm=algorithm),
                     source=source, batch_size=16, num_steps=2)
    encoder, cfg, _, step = checkpoints.restore_encoder(model_dir)
    assert cfg.algorithm == algorithm and step == 2
    meta = export_lib.export(model_dir, str(tmp_path / f"{algorithm}_export"))
    assert meta["algorithm"] == algorithm
    loaded, _ = export_lib.load_export(str(tmp_path / f"{algorithm}_export"))
    kp = np.random.default_rng(0).normal(400, 50, (3, 13, 2)).astype(np.float32)
    out = loaded.signatures["serving_default"](keypoints_2d=tf.constant(kp))
    ref = encoder(_normalize(kp), training=False)["pose_embedding"].numpy()
    np.testing.assert_allclose(out["pose_embedding"].numpy(), ref, atol=1e-5)


def _normalize(kp):
    return normalization.normalize_keypoints_2d(kp)[0]


@pytest.mark.slow
@pytest.mark.multidevice
def test_mirrored_strategy_on_two_logical_devices(tmp_path):
    script = (
        "import tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()]*2)\n"
        "from cv_mim.algorithms import config as config_lib\nfrom cv_mim.training import loop, sources\n"
        f"src = sources.load_pair_source('h36m', data_dir={str(H36M)!r}, subjects=('S1',))\n"
        f"val = sources.load_validation_set('h36m', data_dir={str(H36M)!r}, subjects=('S1',),"
        " val_subjects=('S9',), max_frames=20)\n"
        f"s = loop.run(model_dir={str(tmp_path / 'mirrored')!r},"
        " config=config_lib.ModelConfig(hidden_dim=32), source=src, batch_size=16, num_steps=3,"
        " strategy='mirrored', devices=['/cpu:0', '/cpu:1'], validation=val, val_every=2)\n"
        "print('REPLICAS', s['replicas'], s['final_step'], s['final_validation']['step'])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "REPLICAS 2 3 3" in out.stdout  # validated (at 2 and) at the end, encoder mirrored
    assert tf.train.latest_checkpoint(str(tmp_path / "mirrored")).endswith("ckpt-3")


def test_binary_bad_input_is_one_clear_line_not_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cv_mim.pretrain", f"--model_dir={tmp_path}",
                           "--data_dir=/nonexistent"], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 2
    assert "error: data_3d file not found: /nonexistent/data_3d_h36m.npz" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_projection_depth_reaches_the_training_batches(tmp_path, source):
    losses = {}
    for depth in (2.0, (8.0, 12.0)):  # (the pipeline's tests check that (2, 2) is 2 bit for bit)
        model_dir = str(tmp_path / f"m{depth}")
        loop.run(model_dir=model_dir, config=_small_config(), source=source, batch_size=16,
                 num_steps=1, log_every=1, summary_every=1, projection_depth=depth)
        rows = [json.loads(l) for l in open(os.path.join(model_dir, "metrics.jsonl"))]
        losses[depth] = rows[0]["encoder/total_loss"]
    assert np.isfinite(losses[(8.0, 12.0)]) and losses[(8.0, 12.0)] != losses[2.0]


def test_the_binary_passes_projection_depth_to_the_loop(tmp_path):
    """--projection_depth reaches loop.run as (low, high) (the loop's own test shows it reaches the
    batches); the default is the authors' constant."""
    code = ("import sys\nfrom absl import flags\nfrom cv_mim import pretrain\n"
            "seen = {}\npretrain.loop.run = lambda **kw: seen.update(kw)\n"
            "for argv in (['p'], ['p', '--projection_depth=8,12']):\n"
            f"    flags.FLAGS(argv + ['--model_dir={tmp_path}'])\n"
            "    pretrain._train(None, None, None, None)\n"
            "    print('DEPTH', seen['projection_depth'])\n"
            "    flags.FLAGS.unparse_flags()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert [l for l in out.stdout.splitlines() if l.startswith("DEPTH")] == [
        "DEPTH (2.0, 2.0)", "DEPTH (8.0, 12.0)"]


@pytest.mark.parametrize("value", ["5,4", "0", "two"])
def test_binary_bad_projection_depth_is_one_line_naming_the_flag(tmp_path, value):
    proc = subprocess.run([sys.executable, "-m", "cv_mim.pretrain", f"--model_dir={tmp_path}",
                           f"--data_dir={H36M}", f"--projection_depth={value}"],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: --projection_depth: " in proc.stderr and "Traceback" not in proc.stderr
    assert not os.listdir(tmp_path)  # refused before anything is written


def test_config_mismatch_leaves_the_original_flags_json(tmp_path, source):
    model_dir = str(tmp_path / "m")
    loop.run(model_dir=model_dir, config=_small_config(), source=source, batch_size=16,
             num_steps=1, flags_record={"run": "original"})
    with pytest.raises(ValueError, match="describes a different model"):
        loop.run(model_dir=model_dir, config=_small_config(pose_dim=16, view_dim=16), source=source,
                 batch_size=16, num_steps=2, flags_record={"run": "mistake"})
    assert json.load(open(os.path.join(model_dir, "flags.json"))) == {"run": "original"}
    assert checkpoints.load_model_config(model_dir) == _small_config()


def test_steps_per_loop_gives_the_same_curve_bit_for_bit(tmp_path, source):
    """Default dropout, 10 steps: steps_per_loop=1, 3 and 10 write identical metrics.jsonl files (the
    compiled loop body is the same graph; seeds come from the step variable in the graph)."""
    texts = []
    for spl in (1, 3, 10):
        model_dir = str(tmp_path / f"spl{spl}")
        loop.run(model_dir=model_dir, config=_small_config(), source=source, batch_size=16,
                 num_steps=10, summary_every=5, checkpoint_every=10, log_every=10,
                 steps_per_loop=spl, seed=1)
        texts.append(open(os.path.join(model_dir, "metrics.jsonl")).read())
        assert [json.loads(l)["step"] for l in texts[-1].splitlines()] == [5, 10]
    assert texts[0] == texts[1] == texts[2]


def test_next_stop_never_crosses_a_summary_checkpoint_or_log_step():
    assert loop._next_stop(0, 100, 1000, (7, 50, 30)) == 7
    assert loop._next_stop(7, 100, 1000, (7, 50, 30)) == 14
    assert loop._next_stop(28, 100, 1000, (7, 50, 30)) == 30
    assert loop._next_stop(98, 100, 1000, (70, 500, 300)) == 100
    assert loop._next_stop(10, 100, 4, (70, 500, 300)) == 14


def _corrupt(path, how):
    data = open(path, "rb").read()
    if how == "truncate":
        open(path, "wb").write(data[:len(data) // 2])
    else:  # flip bytes in the middle: the tensor CRCs no longer match
        mid = len(data) // 2
        open(path, "wb").write(data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 16])
                               + data[mid + 16:])


@pytest.mark.parametrize("how,part", [("truncate", "data-00000-of-00001"), ("flip", "data-00000-of-00001"),
                                      ("truncate", "index")])
def test_corrupted_newest_checkpoint_falls_back_to_newest_intact(tmp_path, source, caplog, how,
                                                                 part):
    model_dir = str(tmp_path / "m")
    cfg = _small_config()
    loop.run(model_dir=model_dir, config=cfg, source=source, batch_size=16, num_steps=4,
             checkpoint_every=2)
    _corrupt(os.path.join(model_dir, f"ckpt-4.{part}"), how)
    with caplog.at_level("WARNING", logger="cv_mim.pretrain"):
        summary = loop.run(model_dir=model_dir, config=cfg, source=source, batch_size=16,
                           num_steps=5)
    assert summary["start_step"] == 2 and summary["final_step"] == 5
    assert any("ckpt-4" in r.message and "ckpt-2" in r.message and r.levelname == "WARNING"
               for r in caplog.records), [r.message for r in caplog.records]


def test_a_relative_model_dir_resumes_and_keeps_its_checkpoint_list(tmp_path, source, monkeypatch):
    """The flagfiles' --model_dir=runs/... is relative: a resume must find the checkpoints (the state
    file's entries were once joined to model_dir twice, so every such resume stopped with 'no intact
    checkpoint'), and dropping checkpoints must leave a state file that reads back."""
    import logging  # pylint: disable=import-outside-toplevel
    monkeypatch.chdir(tmp_path)
    model_dir, cfg = os.path.join("runs", "m"), _small_config()
    loop.run(model_dir=model_dir, config=cfg, source=source, batch_size=16, num_steps=2,
             checkpoint_every=1)
    summary = loop.run(model_dir=model_dir, config=cfg, source=source, batch_size=16, num_steps=3,
                       checkpoint_every=1)
    assert summary["start_step"] == 2 and summary["final_step"] == 3
    assert checkpoints.list_checkpoints(model_dir) == [os.path.join(model_dir, f"ckpt-{n}")
                                                       for n in (1, 2, 3)]
    kept = checkpoints.drop_checkpoints_from(model_dir, 2, logging.getLogger("test"))
    assert kept == os.path.join(model_dir, "ckpt-1")
    assert checkpoints.list_checkpoints(model_dir) == [kept]
    assert tf.train.latest_checkpoint(model_dir) == kept
    summary = loop.run(model_dir=model_dir, config=cfg, source=source, batch_size=16, num_steps=2)
    assert summary["start_step"] == 1 and summary["final_step"] == 2


def test_every_checkpoint_unreadable_is_an_error_not_a_fresh_start(tmp_path, source):
    model_dir = str(tmp_path / "m")
    loop.run(model_dir=model_dir, config=_small_config(), source=source, batch_size=16,
             num_steps=1)
    _corrupt(os.path.join(model_dir, "ckpt-1.index"), "truncate")
    with pytest.raises(ValueError, match="no intact checkpoint in .*ckpt-1"):
        loop.run(model_dir=model_dir, config=_small_config(), source=source, batch_size=16,
                 num_steps=2)


def test_model_dir_lock_refuses_a_live_holder_and_reclaims_a_dead_one(tmp_path, source):
    import socket  # pylint: disable=import-outside-toplevel
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (model_dir / ".lock").write_text(json.dumps({"host": socket.gethostname(),
                                                     "pid": holder.pid}))
        with pytest.raises(locking.ModelDirLockedError,
                           match=rf"in use by another run \(process {holder.pid} "):
            loop.run(model_dir=str(model_dir), config=_small_config(), source=source,
                     batch_size=16, num_steps=1)
        assert not (model_dir / "model_config.json").exists()  # refused before writing anything
    finally:
        holder.kill()
        holder.wait()
    summary = loop.run(model_dir=str(model_dir), config=_small_config(), source=source,
                       batch_size=16, num_steps=1)  # the holder is dead: stale lock reclaimed
    assert summary["final_step"] == 1
    assert not (model_dir / ".lock").exists()  # released at the end


def test_resume_drops_metrics_rows_and_events_past_the_restored_step(tmp_path, source):
    model_dir = str(tmp_path / "m")
    kwargs = dict(config=_small_config(), source=source, batch_size=16, summary_every=1,
                  checkpoint_every=2, log_every=10)
    loop.run(model_dir=model_dir, num_steps=3, **kwargs)  # rows 1..3, checkpoints 2 and 3
    tf.io.gfile.remove(os.path.join(model_dir, "ckpt-3.index"))  # as if killed after step 3's row
    with open(os.path.join(model_dir, "metrics.jsonl"), "a") as f:
        f.write('{"step": 4, "encoder/tot')  # a torn row of a killed run
    loop.run(model_dir=model_dir, num_steps=5, **kwargs)
    steps = [json.loads(l)["step"] for l in open(os.path.join(model_dir, "metrics.jsonl"))]
    assert steps == [1, 2, 3, 4, 5]
    tb_steps = [s for s, _ in _events(model_dir)["train/encoder/total_loss"]]
    assert sorted(tb_steps) == [1, 2, 3, 4, 5]


def test_jit_compile_with_several_replicas_is_refused_not_silently_dropped(tmp_path, source):
    import types  # pylint: disable=import-outside-toplevel
    two_replicas = types.SimpleNamespace(num_replicas_in_sync=2)
    with pytest.raises(ValueError, match="--jit_compile works with one replica only .*has 2"):
        loop.run(model_dir=str(tmp_path / "m"), config=_small_config(), source=source,
                 batch_size=16, num_steps=1, strategy=two_replicas, jit_compile=True)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("kwargs,match", [
    (dict(learning_rate=-0.1), "learning_rate must be a positive finite number"),
    (dict(learning_rate=float("nan")), "learning_rate must be a positive finite number"),
    (dict(steps_per_loop=0), "steps_per_loop must be positive"),
])
def test_bad_loop_arguments_are_refused(tmp_path, source, kwargs, match):
    with pytest.raises(ValueError, match=match):
        loop.run(model_dir=str(tmp_path / "m"), config=_small_config(), source=source,
                 batch_size=16, num_steps=1, **kwargs)


def test_model_dir_that_cannot_be_created_is_a_clear_error(tmp_path, source):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="model_dir .*file/m cannot be created"):
        loop.run(model_dir=str(tmp_path / "file" / "m"), config=_small_config(), source=source,
                 batch_size=16, num_steps=1)


@pytest.mark.slow  # 107-158 s on the loaded 2-core machine (XLA compiles the loop)
def test_xla_step_matches_the_plain_step_at_default_dropout(tmp_path, source):
    """Under XLA the dropout masks and prior samples used to differ (another key/counter from the
    auto_select algorithm, the high 23 bits of each Philox word): the first losses were ~1e-2
    relative apart. With the draws pinned, XLA and the plain step differ only by float
    reassociation."""
    curves = []
    for jit in (False, True):
        model_dir = str(tmp_path / f"jit{jit}")
        loop.run(model_dir=model_dir, config=_small_config(), source=source, batch_size=16,
                 num_steps=3, summary_every=1, checkpoint_every=3, log_every=3, seed=1,
                 jit_compile=jit)
        curves.append([json.loads(l) for l in open(os.path.join(model_dir, "metrics.jsonl"))])
    assert [r["step"] for r in curves[0]] == [r["step"] for r in curves[1]] == [1, 2, 3]
    for plain, xla in zip(*curves):
        for key in ("encoder/total_loss", "discriminator/total_loss"):
            assert xla[key] == pytest.approx(plain[key], rel=1e-5, abs=1e-6), (plain["step"], key)
