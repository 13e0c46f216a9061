"""A corpus of bad and hostile inputs, run through every binary (issue 16).

Each case is a command line of one binary on small files this module writes: crafted pickles whose
payload would create a marker file, a crafted SavedModel, broken keypoint arrays, bad flag values.
Every case must end with ONE line ``error: ...`` naming the flag or file, exit status 2, and no
marker file.

Cost: TensorFlow's import dominates (5-15 s per process here), so the matrix runs in one driver
process that imports the libraries once and ``fork``s a child per case; the child runs the binary
exactly as ``python -m cv_mim.<binary>`` would (``runpy``, ``__main__``, its own absl flags). Two
cases also run as real ``python -m`` subprocesses, which checks the quiet start-up too.
"""
import json
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from cv_mim import cli
from cv_mim.data import h36m
from cv_mim.data import safe_pickle

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY_H36M = REPO / "testdata" / "synthetic_tiny" / "h36m"
BINARIES = ("pretrain", "export", "embed", "retrieval", "action_recognition",
            "view_classification", "benchmark", "run_all", "synthesize")


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _object(value):
    array = np.empty((), dtype=object)
    array[()] = value
    return array


class _BenignExport(tf.Module):
    """A minimal export that passes the op allow-list (for cases that fail on the keypoints)."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(tf.ones([26, 4]) * 0.01)

    @tf.function(input_signature=[tf.TensorSpec([None, 13, 2], tf.float32),
                                  tf.TensorSpec([None, 13], tf.float32)])
    def embed_with_scores(self, keypoints_2d, keypoint_scores):
        del keypoint_scores
        emb = tf.matmul(tf.reshape(keypoints_2d, [-1, 26]), self.w)
        return {"pose_embedding": emb, "view_embedding": emb, "normalized_keypoints": keypoints_2d}

    @tf.function(input_signature=[])
    def metadata(self):
        return tf.constant(json.dumps({"model_config": {"pose_dim": 4, "view_dim": 4}}))


class _HostileExport(_BenignExport):
    def __init__(self, marker):
        super().__init__()
        self.marker = str(marker)

    @tf.function(input_signature=[tf.TensorSpec([None, 13, 2], tf.float32),
                                  tf.TensorSpec([None, 13], tf.float32)])
    def embed_with_scores(self, keypoints_2d, keypoint_scores):
        del keypoint_scores
        with tf.control_dependencies([tf.io.write_file(self.marker, "pwned")]):
            emb = tf.matmul(tf.reshape(keypoints_2d, [-1, 26]), self.w)
        return {"pose_embedding": emb, "view_embedding": emb, "normalized_keypoints": keypoints_2d}


def _h36m_dir(root, name, *, data_3d=None, data_2d=None):
    """A Human3.6M-layout folder: the tiny test world's files, some replaced."""
    d = root / name
    d.mkdir()
    shutil.copy(TINY_H36M / "cameras.json", d)
    for key, given in (("data_3d", data_3d), ("data_2d", data_2d)):
        target = d / h36m.FILES[key]
        if given is None:
            shutil.copy(TINY_H36M / h36m.FILES[key], target)
        elif callable(given):
            given(target)
        else:
            target.write_bytes(given)
    return d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Writes the corpus; returns (root, marker path, cases)."""
    root = tmp_path_factory.mktemp("hostile")
    marker = root / "PWNED"
    pose3d = safe_pickle.load_npz(TINY_H36M / h36m.FILES["data_3d"])["positions_3d"].item()
    pose2d = safe_pickle.load_npz(TINY_H36M / h36m.FILES["data_2d"])

    def crafted_3d(path):
        np.savez(path, positions_3d=_object({"S1": {"Walking": _Payload(marker)}}))

    def crafted_metadata(path):
        np.savez(path, positions_2d=pose2d["positions_2d"],
                 metadata=_object({"num_joints": 17, "x": _Payload(marker)}))

    def zero_3d(path):
        h36m.save_positions_3d(path, {s: {a: np.zeros_like(x) for a, x in acts.items()}
                                      for s, acts in pose3d.items()})

    def one_bad_sequence(path):
        first = next(iter(pose3d))
        bad = {s: dict(acts) for s, acts in pose3d.items()}
        bad[first]["Broken"] = np.zeros((3, 5, 3), np.float32)  # wrong joint count
        np.savez(path, positions_3d=_object(bad))

    dirs = {
        "crafted_3d": _h36m_dir(root, "crafted_3d", data_3d=crafted_3d),
        "crafted_meta": _h36m_dir(root, "crafted_meta", data_2d=crafted_metadata),
        "plain_pickle": _h36m_dir(root, "plain_pickle", data_3d=pickle.dumps(_Payload(marker))),
        "zero_3d": _h36m_dir(root, "zero_3d", data_3d=zero_3d),
        "one_bad": _h36m_dir(root, "one_bad", data_3d=one_bad_sequence),
    }
    rng = np.random.default_rng(0)
    pose = rng.normal(400, 50, (6, 13, 2))
    arrays = {"bool": np.ones((4, 13, 2), bool), "complex": pose.astype(complex),
              "empty": np.zeros((0, 13, 2), np.float32), "all_nan": np.full((4, 13, 2), np.nan),
              "flat": np.full((4, 13, 2), 7.0), "huge": np.where(np.arange(13)[:, None] == 3,
                                                                   3e38, pose).astype(np.float32)}
    for name, value in arrays.items():
        np.save(root / f"{name}.npy", value)
    np.save(root / "pickled.npy", _object([_Payload(marker)]), allow_pickle=True)
    benign, hostile = str(root / "benign_export"), str(root / "hostile_export")
    module = _BenignExport()
    tf.saved_model.save(module, benign, signatures={"embed_with_scores": module.embed_with_scores})
    module = _HostileExport(marker)
    tf.saved_model.save(module, hostile, signatures={"embed_with_scores": module.embed_with_scores})
    (root / "a_file").write_text("x")
    out = str(root / "out")
    r = str(root)

    cases = {
        # Flag parsing: one line, exit 2, for every binary.
        **{f"{b}_unknown_flag": (b, ["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'")
           for b in BINARIES},
        "export_missing_required": ("export", [], "--model_dir"),
        "pretrain_bad_int": ("pretrain", [f"--model_dir={out}", "--batch_size=ten"], "--batch_size"),
        # Untrusted files.
        "pretrain_crafted_3d": ("pretrain", [f"--model_dir={out}/p1", f"--data_dir={dirs['crafted_3d']}"],
                                "data_3d_h36m.npz entry 'positions_3d': refusing to unpickle posix.system"),
        "pretrain_plain_pickle": ("pretrain", [f"--model_dir={out}/p2",
                                               f"--data_dir={dirs['plain_pickle']}"],
                                  "data_3d_h36m.npz: a plain pickle"),
        "retrieval_crafted_meta": ("retrieval", [f"--export_dir={benign}", f"--output_dir={out}/r1",
                                                 f"--data_dir={dirs['crafted_meta']}", "--subjects=S1"],
                                   "data_2d_h36m_gt.npz entry 'metadata': refusing to unpickle"),
        "embed_crafted_3d": ("embed", [f"--export_dir={benign}", "--dataset=h36m",
                                       f"--input={dirs['crafted_3d']}", f"--output={out}/e1.npz"],
                             "refusing to unpickle posix.system"),
        "embed_pickled_npy": ("embed", [f"--export_dir={benign}", "--dataset=npy",
                                        f"--input={r}/pickled.npy", f"--output={out}/e2.npz"],
                              "pickled.npy: refusing to unpickle posix.system"),
        # Bad keypoint arrays.
        **{f"embed_{name}": ("embed", [f"--export_dir={benign}", "--dataset=npy",
                                       f"--input={r}/{name}.npy", f"--output={out}/{name}.npz"],
                             match)
           for name, match in (("bool", "bool.npy: keypoints must be a real numeric array"),
                               ("complex", "complex.npy: keypoints must be a real numeric array"),
                               ("empty", "empty.npy: empty keypoint array"),
                               ("all_nan", "all_nan.npy: no frame has a pose"),
                               ("flat", "flat.npy: no frame has a pose"),
                               ("huge", "huge.npy: 6 present joint(s) have coordinates beyond ±1e+08 px"))},
        # Bad values.
        "pretrain_negative_lr": ("pretrain", [f"--model_dir={out}/p3", "--learning_rate=-0.1"],
                                 "--learning_rate must be a finite number > 0"),
        "pretrain_nan_lr": ("pretrain", [f"--model_dir={out}/p4", "--learning_rate=nan"],
                            "--learning_rate must be a finite number > 0"),
        "pretrain_missing_init": ("pretrain", [f"--model_dir={out}/p5", "--init_checkpoint=/nonexistent/ck"],
                                  "--init_checkpoint /nonexistent/ck: no checkpoint"),
        "pretrain_unwritable_model_dir": ("pretrain", [f"--model_dir={r}/a_file/sub"],
                                          "a_file/sub: not a writable directory"),
        "export_bad_checkpoint": ("export", [f"--model_dir={r}", f"--export_dir={out}/x1",
                                             "--checkpoint=/nonexistent/ckpt-3"],
                                  "--checkpoint /nonexistent/ckpt-3: no checkpoint"),
        "export_nan_score": ("export", [f"--model_dir={r}", f"--export_dir={out}/x2",
                                        "--min_keypoint_score=nan"],
                             "--min_keypoint_score must be a finite number"),
        "retrieval_negative_threshold": ("retrieval", [f"--export_dir={benign}", f"--output_dir={out}/r2",
                                                       f"--data_dir={TINY_H36M}", "--threshold=-1"],
                                         "--threshold must be a finite number > 0"),
        "retrieval_nan_threshold": ("retrieval", [f"--export_dir={benign}", f"--output_dir={out}/r3",
                                                  f"--data_dir={TINY_H36M}", "--threshold=nan"],
                                    "--threshold must be a finite number > 0"),
        "retrieval_zero_stride": ("retrieval", [f"--export_dir={benign}", f"--output_dir={out}/r4",
                                                f"--data_dir={TINY_H36M}", "--frame_stride=0"],
                                  "--frame_stride must be an integer >= 1"),
        "retrieval_zero_3d": ("retrieval", [f"--export_dir={benign}", f"--output_dir={out}/r5",
                                            f"--data_dir={dirs['zero_3d']}", "--subjects=S1"],
                              "3D poses have every joint at one point"),
        "view_zero_steps": ("view_classification", [f"--embeddings={r}/none.npz",
                                                    f"--output_dir={out}/v1", "--steps=0"],
                            "--steps must be an integer >= 1"),
        "view_zero_batch": ("view_classification", [f"--embeddings={r}/none.npz",
                                                    f"--output_dir={out}/v2", "--batch_size=0"],
                            "--batch_size must be an integer >= 1"),
        "action_negative_lr": ("action_recognition", [f"--embeddings={r}/none.npz",
                                                      f"--output_dir={out}/a1", "--learning_rate=-1"],
                               "--learning_rate must be a finite number > 0"),
        "embed_h36m_malformed": ("embed", [f"--export_dir={benign}", "--dataset=h36m",
                                           f"--input={dirs['one_bad']}", f"--output={out}/e4.npz"],
                                 "subject 'S1' action 'Broken' must be a numeric (T >= 1, 32, 3)"),
    }
    cases["embed_hostile_export"] = ("embed", [f"--export_dir={hostile}", "--dataset=npy",
                                               f"--input={r}/good.npy", f"--output={out}/e3.npz"],
                                     "hostile_export: refusing to load the export: it contains "
                                     "op(s) ['WriteFile']")
    np.save(root / "good.npy", pose.astype(np.float32))
    return root, marker, cases, dirs, benign


_DRIVER = textwrap.dedent("""
    import json, os, runpy, sys, traceback
    from cv_mim import cli  # the quiet TensorFlow import, as in a binary
    import tensorflow  # paid once, inherited by every child
    from cv_mim.downstream import action_recognition, retrieval, view_classification
    from cv_mim.serving import embed, export
    from cv_mim.training import loop
    cases, out_dir = json.load(open(sys.argv[1])), sys.argv[2]
    results = {}
    for name, (binary, args) in cases.items():
        err = os.path.join(out_dir, name + ".stderr")
        pid = os.fork()
        if pid == 0:
            os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            sys.argv = [binary] + args
            code = 0
            try:
                runpy.run_module("cv_mim." + binary, run_name="__main__", alter_sys=True)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 99
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        results[name] = os.waitstatus_to_exitcode(status)
    print(json.dumps(results))
""")


@pytest.fixture(scope="module")
def matrix(corpus):
    root, _, cases, _, _ = corpus
    spec = root / "cases.json"
    spec.write_text(json.dumps({k: [b, a] for k, (b, a, _) in cases.items()}))
    logs = root / "logs"
    logs.mkdir()
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(spec), str(logs)], capture_output=True,
                          text=True, timeout=900, cwd=root,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: (codes[name], (logs / f"{name}.stderr").read_text()) for name in cases}


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _case_names():
    return ([f"{b}_unknown_flag" for b in BINARIES]
            + ["export_missing_required", "pretrain_bad_int", "pretrain_crafted_3d",
               "pretrain_plain_pickle", "retrieval_crafted_meta", "embed_crafted_3d",
               "embed_pickled_npy", "embed_hostile_export"]
            + [f"embed_{n}" for n in ("bool", "complex", "empty", "all_nan", "flat", "huge")]
            + ["pretrain_negative_lr", "pretrain_nan_lr", "pretrain_missing_init",
               "pretrain_unwritable_model_dir", "export_bad_checkpoint", "export_nan_score",
               "retrieval_negative_threshold", "retrieval_nan_threshold", "retrieval_zero_stride",
               "retrieval_zero_3d", "view_zero_steps", "view_zero_batch", "action_negative_lr",
               "embed_h36m_malformed"])


@pytest.mark.slow
@pytest.mark.parametrize("name", _case_names())
def test_every_binary_one_line_exit_2_no_payload(corpus, matrix, name):
    _, marker, cases, _, _ = corpus
    assert set(_case_names()) == set(cases)
    code, stderr = matrix[name]
    expected = cases[name][2]
    assert "Traceback" not in stderr, stderr
    errors = _error_lines(stderr)
    assert code == 2 and len(errors) == 1, (code, stderr)
    assert expected in errors[0], errors[0]
    if name.endswith("unknown_flag") or name in ("export_missing_required", "pretrain_bad_int"):
        assert stderr.splitlines() == errors, stderr  # nothing but the one line
    assert not marker.exists()


@pytest.mark.slow
def test_h36m_skip_malformed_skips_the_bad_sequence(corpus, tmp_path):
    """--skip_malformed works for Human3.6M as for Penn and NTU (in-process: same library call)."""
    _, _, _, dirs, benign = corpus
    from cv_mim.serving import embed as embed_lib  # pylint: disable=import-outside-toplevel
    out = embed_lib.embed_dataset(benign, "h36m", str(dirs["one_bad"]), str(tmp_path / "e.npz"),
                                  skip_malformed=True)
    with np.load(out) as f:
        meta = json.loads(str(f["metadata"]))
        ids = f["clip_ids"].tolist()
    assert meta["loader_info"]["num_skipped"] == 1
    assert meta["loader_info"]["skipped"][0][0] == "S1/Broken"
    assert ids and not any("Broken" in i for i in ids)


def _python_m(binary, *args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "CV_MIM_"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", f"cv_mim.{binary}", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd, env=env)


def test_python_m_bad_flag_is_exactly_one_line(tmp_path):
    """A real process, no TF_CPP_MIN_LOG_LEVEL in the environment: no CUDA/oneDNN start-up noise."""
    proc = _python_m("embed", "--no_such_flag=1", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: Unknown command line flag 'no_such_flag'"]


@pytest.mark.slow
def test_python_m_hostile_npz_is_refused_in_one_line(corpus, tmp_path):
    _, marker, _, dirs, benign = corpus
    proc = _python_m("retrieval", f"--export_dir={benign}", f"--output_dir={tmp_path}/r",
                     f"--data_dir={dirs['crafted_3d']}", "--subjects=S1", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "refusing to unpickle" in lines[0]
    assert not marker.exists()


def test_error_line_joins_multi_line_messages():
    assert cli.error_line(ValueError("a\n  b\n\nc")) == "error: a; b; c"
    assert cli.error_line(ValueError("")) == "error: ValueError"


def test_the_corpus_payload_is_real(tmp_path):
    """The crafted pickles do run their payload through an unrestricted unpickler."""
    marker = tmp_path / "REAL"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()
