"""Exports as untrusted programs and as carriers of bad weights (issue 16).

* A SavedModel whose graphs hold file, Python or checkpoint-writing ops outside the saver is refused
  BEFORE ``tf.saved_model.load`` (the payload's marker file never appears) unless ``trust_export``.
* Export refuses non-finite weights; the embedder refuses non-finite outputs, naming frames.
* A killed export's hidden temporary folder is removed by the next export.
* Bad ``--checkpoint`` / ``--min_keypoint_score`` are clear errors.
"""
import json
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf

from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry
from cv_mim.serving import embedder as embedder_lib
from cv_mim.serving import export as export_lib
from cv_mim.serving import export_ops
from cv_mim.training import checkpoints
from cv_mim.training import loop
from cv_mim.training import sources

TINY = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "synthetic_tiny"


@pytest.fixture(scope="module")
def source():
    return sources.load_pair_source("h36m", data_dir=str(TINY / "h36m"), subjects=("S1",))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, source):
    root = tmp_path_factory.mktemp("export_safety")
    model_dir = str(root / "model")
    loop.run(model_dir=model_dir, config=config_lib.ModelConfig(hidden_dim=16), source=source,
             batch_size=8, num_steps=2)
    export_dir = str(root / "export")
    export_lib.export(model_dir, export_dir)
    return root, model_dir, export_dir


def _pose(n=4, seed=0):
    return np.random.default_rng(seed).normal(400, 60, (n, 13, 2)).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# The allow-list.


def test_our_export_passes_and_the_lists_hold_no_io_ops(trained):
    _, _, export_dir = trained
    assert export_ops.export_violations(export_dir) == []
    forbidden = {"ReadFile", "WriteFile", "PyFunc", "EagerPyFunc", "PyFuncStateless", "MatchingFiles",
                 "SaveV2", "RestoreV2", "Save", "Restore", "MergeV2Checkpoints", "DeleteFile"}
    assert not forbidden & export_ops.ALLOWED_OPS
    assert {"SaveV2", "RestoreV2"} <= export_ops.SAVER_OPS


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", [a for a in registry.ALGORITHMS if a != "cv_mim"])
def test_every_algorithms_export_passes(tmp_path, source, algorithm):
    """The allow-list is built from our exports: every algorithm's must pass."""
    model_dir = str(tmp_path / "m")
    loop.run(model_dir=model_dir, config=config_lib.ModelConfig(
        hidden_dim=16, algorithm=algorithm, kl_weight=registry.default_kl_weight(algorithm)),
        source=source, batch_size=8, num_steps=1)
    export_lib.export(model_dir, str(tmp_path / "e"))
    assert export_ops.export_violations(str(tmp_path / "e")) == []


class _Crafted(tf.Module):
    """An export look-alike whose embed_with_scores signature also runs a payload."""

    def __init__(self, payload):
        super().__init__()
        self._payload = payload
        self.w = tf.Variable(tf.ones([26, 4]))

    @tf.function(input_signature=[tf.TensorSpec([None, 13, 2], tf.float32),
                                  tf.TensorSpec([None, 13], tf.float32)])
    def embed_with_scores(self, keypoints_2d, keypoint_scores):
        with tf.control_dependencies([self._payload()]):
            flat = tf.reshape(keypoints_2d, [-1, 26]) * 0.0
        emb = tf.matmul(flat, self.w)
        return {"pose_embedding": emb, "view_embedding": emb, "normalized_keypoints": keypoints_2d}

    @tf.function(input_signature=[])
    def metadata(self):
        return tf.constant(json.dumps({"model_config": {"pose_dim": 4, "view_dim": 4}}))


def _payloads(marker, source_file):
    marker, source_file = str(marker), str(source_file)
    return {
        "write_file": lambda: tf.io.write_file(marker, "pwned"),
        "read_then_write": lambda: tf.io.write_file(marker, tf.io.read_file(source_file)),
        "py_function": lambda: tf.py_function(
            lambda: pathlib.Path(marker).write_text("pwned") and 0, [], tf.int32),
        "save_v2": lambda: tf.raw_ops.SaveV2(prefix=marker, tensor_names=["x"],
                                             shape_and_slices=[""], tensors=[tf.constant(1.0)]),
        "matching_files": lambda: tf.io.write_file(
            marker, tf.strings.reduce_join(tf.io.matching_files(source_file))),
    }


def _touched(marker):
    """Whether a payload wrote ``marker`` (SaveV2 writes ``marker.index`` and data shards)."""
    return any(p.name.startswith(marker.name) for p in marker.parent.iterdir())


@pytest.mark.parametrize("name", sorted(_payloads("m", "s")))
def test_crafted_export_refused_before_load_and_runs_only_when_trusted(tmp_path, name):
    marker, secret = tmp_path / "PWNED", tmp_path / "secret.txt"
    secret.write_text("secret")
    module = _Crafted(_payloads(marker, secret)[name])
    export_dir = str(tmp_path / "crafted")
    tf.saved_model.save(module, export_dir,
                        signatures={"embed_with_scores": module.embed_with_scores})
    assert not _touched(marker)
    with pytest.raises(ValueError, match=r"crafted: refusing to load the export.*--trust_export"):
        embedder_lib.Embedder(export_dir)
    assert not _touched(marker)
    if name == "py_function":
        return  # a py_function's Python body is not saved: it cannot run in another process
    # Trusted, the same export loads and its payload runs (so the refusal above was not vacuous).
    embedder = embedder_lib.Embedder(export_dir, trust_export=True)
    embedder(_pose())
    assert _touched(marker)


def test_injected_op_in_a_real_export_is_refused(trained, tmp_path):
    """A WriteFile node spliced into one of our export's functions (protobuf edit) is found."""
    from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=import-outside-toplevel
    _, _, export_dir = trained
    copy = tmp_path / "tampered"
    shutil.copytree(export_dir, copy)
    saved = saved_model_pb2.SavedModel.FromString((copy / "saved_model.pb").read_bytes())
    function = next(f for f in saved.meta_graphs[0].graph_def.library.function
                    if "embed_with_scores" in f.signature.name
                    and "signature_wrapper" not in f.signature.name)
    node = function.node_def.add(name="payload", op="WriteFile")
    node.input.extend(["filename", "contents"])
    (copy / "saved_model.pb").write_bytes(saved.SerializeToString())
    violations = export_ops.export_violations(str(copy))
    assert [op for op, _ in violations] == ["WriteFile"]
    assert function.signature.name in violations[0][1]


def test_saver_ops_are_allowed_only_in_the_saver_functions(trained):
    """Our export has SaveV2/RestoreV2 in __traced_save/__traced_restore only; moving one into a
    signature's function makes it a violation."""
    from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=import-outside-toplevel
    _, _, export_dir = trained
    saved = saved_model_pb2.SavedModel.FromString(
        pathlib.Path(export_dir, "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0]
    holders = {f.signature.name for f in graph.graph_def.library.function
               if {"SaveV2", "RestoreV2"} & {n.op for n in f.node_def}}
    assert holders and all("_traced_" in h for h in holders)
    assert export_ops._meta_graph_violations(graph) == []  # pylint: disable=protected-access
    target = next(f for f in graph.graph_def.library.function if "embed_coco17" in f.signature.name)
    target.node_def.add(name="save", op="SaveV2")
    bad = export_ops._meta_graph_violations(graph)  # pylint: disable=protected-access
    assert [op for op, _ in bad] == ["SaveV2"]


def test_not_a_saved_model(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(ValueError, match="saved_model.pb: not a readable SavedModel"):
        export_lib.load_export(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        export_lib.load_export(str(tmp_path / "absent"))


# ------------------------------------------------------------------------------------------------
# Nothing bad is kept.


def _write_encoder_checkpoint(model_dir, prefix, transform):
    """A checkpoint like the loop's (model/encoder + step) with the encoder's weights transformed."""
    encoder, _, _, step = checkpoints.restore_encoder(model_dir)
    for variable in encoder.weights:
        variable.assign(transform(variable.numpy()))
    ckpt = tf.train.Checkpoint(model=tf.train.Checkpoint(encoder=encoder),
                               step=tf.Variable(step, dtype=tf.int64))
    return ckpt.save(prefix)  # save(): also the save_counter restore_encoder expects


def test_export_refuses_non_finite_weights(trained, tmp_path):
    _, model_dir, _ = trained

    def poison(values):
        values = values.copy()
        values.flat[0] = np.nan
        return values

    path = _write_encoder_checkpoint(model_dir, str(tmp_path / "nan" / "ckpt"), poison)
    with pytest.raises(ValueError, match=r"ckpt-1: encoder variable \S+ has 1 non-finite value"):
        export_lib.export(model_dir, str(tmp_path / "e"), checkpoint=path)
    assert not (tmp_path / "e").exists()


def test_embed_refuses_non_finite_outputs_naming_frames(trained, tmp_path):
    _, model_dir, _ = trained
    path = _write_encoder_checkpoint(model_dir, str(tmp_path / "big" / "ckpt"),
                                     lambda v: v * 1e30)  # finite weights, overflowing outputs
    export_dir = str(tmp_path / "e")
    export_lib.export(model_dir, export_dir, checkpoint=path)
    with pytest.raises(ValueError, match=r"mine: the export .* non-finite pose_embedding for 4 of 4 "
                                         r"frame\(s\) \(first: \[0, 1, 2, 3\]\)"):
        embedder_lib.Embedder(export_dir)(_pose(), name="mine")


def test_stale_export_temporaries_are_removed(trained, tmp_path):
    _, model_dir, _ = trained
    export_dir = tmp_path / "exp"
    dead_pid = 2 ** 22 + 12345  # above the default pid_max: never a live process
    stale = [tmp_path / ".exp.tmp-1a2b3c4d", tmp_path / f".exp.tmp-{dead_pid}-0badf00d",
             tmp_path / f".exp.tmp-{dead_pid}-0badf00d.old"]
    live = tmp_path / ".exp.tmp-1-deadbeef"  # pid 1 is alive: a concurrent export
    other = tmp_path / ".other.tmp-1a2b3c4d"  # another export's name
    for d in stale + [live, other]:
        (d / "variables").mkdir(parents=True)
    export_lib.export(model_dir, str(export_dir))
    assert not any(d.exists() for d in stale)
    assert live.exists() and other.exists()
    assert (export_dir / "saved_model.pb").exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".exp.tmp")]
    assert leftovers == [live.name]


def test_bad_checkpoint_and_min_keypoint_score(trained, tmp_path):
    _, model_dir, _ = trained
    with pytest.raises(FileNotFoundError, match=r"--checkpoint /nonexistent/ckpt-3: no checkpoint"):
        export_lib.export(model_dir, str(tmp_path / "a"), checkpoint="/nonexistent/ckpt-3")
    (tmp_path / "junk.index").write_bytes(b"not a checkpoint index")
    with pytest.raises(ValueError, match="junk: not a readable checkpoint"):
        export_lib.export(model_dir, str(tmp_path / "b"), checkpoint=str(tmp_path / "junk"))
    for score in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="--min_keypoint_score must be a finite number"):
            export_lib.export(model_dir, str(tmp_path / "c"), min_keypoint_score=score)


# ------------------------------------------------------------------------------------------------
# The embedder's input checks.


@pytest.mark.parametrize("value,match", [
    (np.ones((2, 13, 2), bool), "real numeric array.*bool"),
    (np.ones((2, 13, 2), complex), "real numeric array.*complex"),
    (np.full((2, 13, 2), "1"), "real numeric array"),
    (np.zeros((2, 13, 3), np.float32), r"\[N, 13, 2\].*\(2, 13, 3\)"),
])
def test_embedder_refuses_bad_arrays(trained, value, match):
    with pytest.raises(ValueError, match="kp.*" + match):
        embedder_lib.Embedder(trained[2])(value, name="kp")


def test_embedder_refuses_huge_coordinates(trained):
    kp = _pose()
    kp[2, 5] = 3e38
    with pytest.raises(ValueError, match=r"kp: 1 present joint\(s\).*beyond.*frame 2.*3e\+38"):
        embedder_lib.Embedder(trained[2])(kp, name="kp")


def test_embedder_flags_frames_without_a_pose(trained):
    kp = _pose(5)
    mask = np.ones((5, 13), np.float32)
    mask[1] = 0                         # every joint missing
    kp[3] = kp[3, 0]                    # every joint at one point
    mask[4, 1:] = 0                     # one joint: no scale either
    out = embedder_lib.Embedder(trained[2])(np.where(mask[..., None] > 0, kp, np.nan), mask)
    np.testing.assert_array_equal(out["has_pose"], [True, False, True, False, False])
    assert np.isfinite(out["pose_embedding"]).all()
