"""Validation during pretraining: the metrics, the rows and events, the best/ checkpoint (kept across a
resume, exported with --checkpoint=best), training untouched by it, and the flags' errors."""
import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import contract
from cv_mim.downstream import retrieval as retrieval_lib
from cv_mim.keypoints import normalization
from cv_mim.serving import export as export_lib
from cv_mim.training import loop
from cv_mim.training import sources
from cv_mim.training import validation

H36M = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "synthetic_tiny" / "h36m"


def _config(**kw):
    kw.setdefault("hidden_dim", 32)
    return config_lib.ModelConfig(**kw)  # dropout 0.25, the default


@pytest.fixture(scope="module")
def source():
    return sources.load_pair_source("h36m", data_dir=str(H36M), subjects=("S1",))


@pytest.fixture(scope="module")
def val_set():
    return sources.load_validation_set("h36m", data_dir=str(H36M), subjects=("S1",),
                                       val_subjects=("S9",), max_frames=40)


def _events(logdir):
    from tensorflow.core.util import event_pb2  # pylint: disable=import-outside-toplevel
    tags = {}
    for path in tf.io.gfile.glob(os.path.join(logdir, "events.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def _rows(model_dir):
    with open(os.path.join(model_dir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _np_jsd_mi(a, b):
    """−L_MI of Eq. 6 (JSD, dot-product critic, identity positives) in float64."""
    s = np.asarray(a, np.float64) @ np.asarray(b, np.float64).T
    softplus = lambda x: np.logaddexp(0.0, x)  # noqa: E731
    pos = np.eye(len(s), dtype=bool)
    e_pos = (np.log(2.0) - softplus(-s))[pos].mean()
    e_neg = (softplus(s) - np.log(2.0))[~pos].mean()
    return e_pos - e_neg


def test_validation_set_is_strided_held_out_frames(val_set):
    assert val_set.keypoints_2d.shape == (40, 4, 13, 2) and val_set.poses_3d.shape == (40, 13, 3)
    full = sources.load_validation_set("h36m", data_dir=str(H36M), subjects=("S1",),
                                       val_subjects=("S9",), max_frames=0)
    assert full.poses_3d.shape[0] == 120  # 4 actions x 30 frames of S9
    np.testing.assert_array_equal(val_set.poses_3d, full.poses_3d[::3])  # ceil(120 / 40) = 3
    np.testing.assert_array_equal(val_set.keypoints_2d, full.keypoints_2d[::3])


@pytest.fixture(scope="module")
def uneven_val_set():
    """60 frames: 15 rows per take, so blocks of 10 made per take differ from blocks of one sequence."""
    return sources.load_validation_set("h36m", data_dir=str(H36M), subjects=("S1",),
                                       val_subjects=("S9",), max_frames=60)


def test_evaluate_is_the_retrieval_binarys_number_and_eq6_on_validation_pairs(uneven_val_set):
    val_set = uneven_val_set
    encoder = contract.encoder_from_config(_config())
    encoder(tf.zeros([1, 13, 2]), training=False)
    values = validation.evaluate(encoder, val_set, mi_measure="jsd", batch_size=7)  # 6 chunks
    assert set(values) == set(validation.REPORTED)
    pose = []
    for c in range(4):
        kp = tf.constant(val_set.keypoints_2d[:, c])
        normalized, _, _ = normalization.normalize_keypoints_2d(kp, tf.ones(kp.shape[:2]))
        pose.append(encoder(normalized, training=False)["pose_embedding"].numpy())
    pose = np.stack(pose)
    data = retrieval_lib.RetrievalData(features={"pose_embedding": pose}, poses_3d=val_set.poses_3d,
                                       keypoints_2d=None, camera_ids=list("abcd"))
    mean = retrieval_lib.evaluate(data, threshold=0.1, ks=(1,))["features"]["pose_embedding"]["mean"]
    assert values["retrieval/hit1_pmpjpe"] == mean["pmpjpe"]["1"]
    assert values["retrieval/hit1_exact"] == mean["exact"]["1"]
    assert 0 < values["retrieval/hit1_pmpjpe"] < 1  # an untrained encoder: neither none nor all
    mi = np.mean([_np_jsd_mi(pose[i], pose[j]) for i in range(4) for j in range(4) if i != j])
    assert values["cross_view_mi"] == pytest.approx(mi, rel=1e-5, abs=1e-5)
    # The number to drive down: the retrieval report's camera probe of z_p, 10-frame blocks of each
    # sequence held out together.
    report = retrieval_lib.view_predictability({"z_p": pose}, val_set.sequences)["z_p"]
    assert values["view_predictability"] == report["accuracy"]
    assert 0 <= values["view_predictability"] <= 1
    one_sequence = retrieval_lib.view_predictability({"z_p": pose})["z_p"]  # blocks across takes
    assert one_sequence["accuracy"] != report["accuracy"]  # so the takes' blocks are what is used
    pose64 = pose.astype(np.float64)
    discrepancy = np.mean([np.mean(np.sum((pose64[i] - pose64[j]) ** 2, axis=1))
                           / (2 * np.concatenate([pose64[i], pose64[j]]).var(axis=0).sum())
                           for i in range(4) for j in range(4) if i != j])
    assert values["cross_view_discrepancy"] == pytest.approx(discrepancy, rel=1e-5)


def test_validation_sequences_are_the_held_out_takes(val_set):
    """Rows carry their "subject/action"; the probe's blocks never span two takes."""
    assert val_set.sequences.shape == (40,)
    assert sorted(set(val_set.sequences)) == [f"S9/{a} 1" for a in ("GolfSwing", "HandWaving",
                                                                     "Squat", "Walk")]
    # 4 takes x 30 frames in file order, every 3rd frame: 10 consecutive rows each.
    np.testing.assert_array_equal(val_set.sequences.reshape(4, 10), np.repeat(
        [[f"S9/{a} 1"] for a in ("Walk", "Squat", "GolfSwing", "HandWaving")], 10, axis=1))
    with pytest.raises(ValueError, match="validation sequences must be"):
        validation.ValidationSet(keypoints_2d=val_set.keypoints_2d, poses_3d=val_set.poses_3d,
                                 camera_ids=val_set.camera_ids, sequences=val_set.sequences[:-1])


def test_too_few_frames_for_a_held_out_split_give_nan_predictability(val_set):
    """Two frames of one sequence are one block: no held-out split, NaN (not a crash)."""
    encoder = contract.encoder_from_config(_config())
    short = validation.ValidationSet(keypoints_2d=val_set.keypoints_2d[:2],
                                     poses_3d=val_set.poses_3d[:2], camera_ids=val_set.camera_ids)
    values = validation.evaluate(encoder, short)
    assert math.isnan(values["view_predictability"])
    assert math.isfinite(values["cross_view_discrepancy"])


# Scripted validation values by step: NaN is never the best; 0.9 at step 4 stays the best after the
# resume although step 6 is validated later (0.7).
SCRIPT = {2: math.nan, 4: 0.9, 6: 0.7}


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory, source, val_set):
    """Run to step 4 (validating at 2 and 4), then resume to 6: ``(model_dir, first, second)``."""
    model_dir = str(tmp_path_factory.mktemp("val") / "m")

    def scripted(encoder, data, **kwargs):
        step = scripted.steps.pop(0)
        return {"retrieval/hit1_pmpjpe": SCRIPT[step], "retrieval/hit1_exact": step / 10,
                "cross_view_mi": -float(step), "view_predictability": 1 - step / 10,
                "cross_view_discrepancy": step / 100}

    scripted.steps = [2, 4, 6]
    kwargs = dict(model_dir=model_dir, config=_config(), source=source, batch_size=16,
                  num_steps=6, summary_every=2, log_every=2, checkpoint_every=2,
                  validation=val_set, val_every=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(validation, "evaluate", scripted)
        first = loop.run(stop_after=4, **kwargs)
        second = loop.run(**kwargs)
    return model_dir, first, second


def test_rows_events_and_best_that_survives_a_resume(scripted_run):
    model_dir, first, second = scripted_run
    evals = [r for r in _rows(model_dir) if "eval/cross_view_mi" in r]
    assert [r["step"] for r in evals] == [2, 4, 6]
    assert [r["eval/cross_view_mi"] for r in evals] == [-2.0, -4.0, -6.0]
    assert evals[0]["eval/retrieval/hit1_pmpjpe"] is None  # NaN, written as JSON null
    tags = _events(os.path.join(model_dir, "eval"))
    assert sorted(tags["eval/retrieval/hit1_pmpjpe"]) == [2, 4, 6]
    assert set(tags) == {f"eval/{m}" for m in validation.REPORTED}
    assert [r["eval/view_predictability"] for r in evals] == [0.8, 0.6, 0.4]
    assert first["best"]["step"] == 4 and second["start_step"] == 4
    best = validation.read_best(model_dir)
    assert best == second["best"]
    assert (best["step"], best["metric"], best["value"]) == (4, "retrieval/hit1_pmpjpe", 0.9)
    assert second["final_validation"]["step"] == 6
    # best/ holds the weights of step 4 (the run's own ckpt-4), not those of step 6.
    best_path = tf.train.latest_checkpoint(os.path.join(model_dir, "best"))
    assert best_path.endswith("ckpt-4")
    name = next(n for n, _ in tf.train.list_variables(best_path)
                if n.startswith("model/encoder/") and "kernel" in n)
    at4, at6 = (tf.train.load_variable(os.path.join(model_dir, f"ckpt-{s}"), name) for s in (4, 6))
    np.testing.assert_array_equal(tf.train.load_variable(best_path, name), at4)
    assert not np.array_equal(at4, at6)


def test_export_best_latest_and_a_path(scripted_run, tmp_path):
    model_dir = scripted_run[0]
    out = subprocess.run([sys.executable, "-m", "cv_mim.export", f"--model_dir={model_dir}",
                          f"--export_dir={tmp_path / 'best'}", "--checkpoint=best"],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(best checkpoint, step 4, retrieval/hit1_pmpjpe 0.9)" in out.stdout
    with open(os.path.join(tmp_path / "best", export_lib.METADATA_FILE), encoding="utf-8") as f:
        best = json.load(f)
    assert (best["checkpoint_choice"], best["checkpoint_step"]) == ("best", 4)
    assert best["validation"]["value"] == 0.9 and best["validation"]["step"] == 4
    assert best["checkpoint"].endswith(os.path.join("best", "ckpt-4"))
    latest, choice = export_lib.resolve_checkpoint(model_dir, "latest")
    assert (latest, choice) == (None, "latest")
    assert export_lib.validation_record(model_dir, "latest", 6) == {
        "step": 6, "validation": {"retrieval/hit1_pmpjpe": 0.7, "retrieval/hit1_exact": 0.6,
                                  "cross_view_mi": -6.0, "view_predictability": 0.4,
                                  "cross_view_discrepancy": 0.06}}
    path = os.path.join(model_dir, "ckpt-6")
    assert export_lib.resolve_checkpoint(model_dir, path) == (path, "path")
    with pytest.raises(FileNotFoundError, match="--checkpoint=best: .* holds no checkpoint"):
        export_lib.resolve_checkpoint(str(tmp_path), "best")


def test_validation_does_not_change_training(tmp_path, source, val_set):
    """Default dropout 0.25, a validation after every step: the same variables, bit for bit."""
    variables = {}
    for name, data in (("plain", None), ("validated", val_set)):
        model_dir = str(tmp_path / name)
        loop.run(model_dir=model_dir, config=_config(), source=source, batch_size=16, num_steps=3,
                 summary_every=1, log_every=3, validation=data, val_every=1)
        reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
        variables[name] = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
                           if "save_counter" not in n}  # counts saves, best/ ones included
    assert len(_events(str(tmp_path / "validated" / "eval"))["eval/cross_view_mi"]) == 3
    assert variables["plain"].keys() == variables["validated"].keys()
    for n, value in variables["plain"].items():
        np.testing.assert_array_equal(value, variables["validated"][n], err_msg=n)


def test_validation_arguments_are_refused_with_the_flag_named():
    common = dict(data_dir=str(H36M), subjects=("S1",))
    assert sources.load_validation_set("h36m", **common) is None
    with pytest.raises(ValueError,
                       match="--val_subjects: validation needs .*=authors_tfrecord has none"):
        sources.load_validation_set("authors_tfrecord", val_subjects=("S9",))
    with pytest.raises(ValueError, match="--val_subjects: S1 also train"):
        sources.load_validation_set("h36m", val_subjects=("S1", "S9"), **common)
    with pytest.raises(ValueError, match="is the training 3D file"):
        sources.load_validation_set("h36m", val_data_3d=str(H36M / "data_3d_h36m.npz"), **common)
    with pytest.raises(ValueError, match="--val_data_2d/--val_cameras need --val_data_3d"):
        sources.load_validation_set("h36m", val_cameras=str(H36M / "cameras.json"), **common)
    with pytest.raises(ValueError, match="--val_max_frames must be an integer >= 0"):
        sources.load_validation_set("h36m", val_subjects=("S9",), max_frames=-1, **common)
    with pytest.raises(ValueError, match="Unknown subject 'S7'"):
        sources.load_validation_set("h36m", val_subjects=("S7",), **common)
    with pytest.raises(ValueError, match="val_every must be >= 0"):
        loop.run(model_dir="unused", config=_config(), source=None, val_every=-1)
    with pytest.raises(ValueError, match="val_metric must be one of"):
        loop.run(model_dir="unused", config=_config(), source=None, val_metric="loss")


def test_explicit_files_the_real_human36m_sample(realdata_dir):
    real = realdata_dir / "h36m"
    data = sources.load_validation_set(
        "h36m", data_dir=str(H36M), subjects=("S1",), max_frames=100,
        val_data_3d=str(real / "data_3d_h36m_S11_sample.npz"),
        val_data_2d=str(real / "data_2d_h36m_S11_sample_gt.npz"),
        val_cameras=str(real / "cameras.json"))
    assert data.keypoints_2d.shape == (78, 4, 13, 2)  # 311 frames, stride ceil(311 / 100) = 4
    assert data.camera_ids == ["54138969", "55011271", "58860488", "60457274"]
    assert "S11" in data.description and np.isfinite(data.keypoints_2d).all()


def test_pretrain_binary_bad_validation_flag_is_one_error_line(tmp_path):
    cmd = [sys.executable, "-m", "cv_mim.pretrain", f"--data_dir={H36M}", "--subjects=S1",
           "--val_subjects=S1", f"--model_dir={tmp_path / 'm'}", "--num_steps=1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == ["error: --val_subjects: S1 also train (--subjects); validation must be on "
                     "held-out subjects"], out.stderr


def test_report_merges_training_and_validation_rows_of_a_step(tmp_path):
    from cv_mim.report import report  # pylint: disable=import-outside-toplevel
    rows = [{"step": 2, "encoder/total_loss": 3.0, "metrics/cross_view_mi": -1.0},
            {"step": 2, "eval/cross_view_mi": -2.0}, {"step": 3, "eval/cross_view_mi": -1.5}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert report._read_metrics(str(tmp_path)) == [  # pylint: disable=protected-access
        {**rows[0], **rows[1]}, rows[2]]
    report.plot_training_curves(str(tmp_path / "curves.png"),
                                {"methods": {"cv_mim": {"model_dir": str(tmp_path)}}})
    assert (tmp_path / "curves.png").stat().st_size > 0  # an eval-only row is not a KeyError
