"""Evaluation on your own labelled / synchronised clips from the detector readers, and the export's
call-time score threshold (issue 14)."""
import json
import pathlib
import pickle

import numpy as np
import pose_fixtures
import pytest
import tensorflow as tf

from cv_mim.algorithms import config as config_lib
from cv_mim.downstream import action_recognition as action_lib
from cv_mim.downstream import retrieval as retrieval_lib
from cv_mim.downstream import view_classification as view_lib
from cv_mim.serving import embed as embed_lib
from cv_mim.serving import embedding_file
from cv_mim.serving import export as export_lib
from cv_mim.training import loop
from cv_mim.training import sources

TINY = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "synthetic_tiny"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("own_eval")
    src = sources.load_pair_source("h36m", data_dir=str(TINY / "h36m"), subjects=("S1",))
    loop.run(model_dir=str(root / "model"), config=config_lib.ModelConfig(hidden_dim=32),
             source=src, batch_size=16, num_steps=3, flags_record={"note": "test"})
    export_lib.export(str(root / "model"), str(root / "export"))
    return str(root / "export")


def _raised(kp13):
    """The 'arms up' class: wrists and elbows above the shoulders."""
    out = kp13.copy()
    out[:, 3:7, 1] = kp13[:, 1:3, 1].repeat(2, axis=1) - np.array([35.0, 35.0, 75.0, 75.0])
    return out


def _side(kp13):
    """A side-like camera: the body narrowed to 30 % of its width."""
    out = kp13.copy()
    centre = out[..., :1, 0].mean(-1, keepdims=True)
    out[..., 0] = centre + 0.3 * (out[..., 0] - centre)
    return out


def _labelled_pickle(path):
    """12 clips: actions 1 (walk) / 2 (arms up) x cameras 1 (front) / 2 (side) x 3 performers;
    performers 1, 2 train (xsub_train), 3 test; lengths 10-15 frames."""
    annotations, train, test = [], [], []
    for a in (1, 2):
        for c in (1, 2):
            for p in (1, 2, 3):
                kp13 = pose_fixtures.walking_clip(9 + a + c + p, seed=10 * a + c + p)
                kp13 = _raised(kp13) if a == 2 else kp13
                kp13 = _side(kp13) if c == 2 else kp13
                native = pose_fixtures.to_native(kp13, "coco17")[None]
                name = f"S001C{c:03d}P{p:03d}R001A{a:03d}"
                annotations.append({"frame_dir": name, "label": a - 1, "total_frames": len(kp13),
                                    "img_shape": (480, 640), "keypoint": native,
                                    "keypoint_score": np.full(native.shape[:-1], 0.9, np.float32)})
                (train if p < 3 else test).append(name)
    with open(path, "wb") as f:
        pickle.dump({"split": {"xsub_train": train, "xsub_val": test},
                     "annotations": annotations}, f)


@pytest.fixture(scope="module")
def own_embeddings(export_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("own_clips")
    _labelled_pickle(root / "mine.pkl")
    return embed_lib.embed_dataset(export_dir, "skeleton_pickle", str(root / "mine.pkl"),
                                   str(root / "mine.npz"), num_frames=16)


def test_own_clips_action_recognition_settings(own_embeddings, tmp_path):
    emb = embedding_file.load_embeddings(own_embeddings)
    assert emb.clip_features("pose_embedding").shape == (12, 16, emb["pose_embedding"].shape[1])
    single = action_lib.run(embeddings=emb, output_dir=str(tmp_path / "ss"), features="raw",
                            steps=60, seeds=(0,), log_every=1000)
    assert single["dataset"] == "generic"
    assert sorted(single["train_views"]) == ["C1R1", "C2R1"]
    for view in single["train_views"].values():
        assert view["num_train_clips"] == 4 and view["num_test_clips"] == 4
        assert set(view["runs"][0]["per_test_view_top1"]) == {"C1R1", "C2R1"}
    # Arms up vs walking is separable from the raw 2D: the classifier must learn it.
    assert single["average_top1"] == 1.0
    assert (tmp_path / "ss" / "table.md").exists()
    full = action_lib.run(embeddings=emb, output_dir=str(tmp_path / "full"), setting="full",
                          steps=5, log_every=1000)
    assert list(full["train_views"]) == ["all"]
    assert full["train_views"]["all"]["num_train_clips"] == 8
    limited = action_lib.run(embeddings=emb, output_dir=str(tmp_path / "lim"), setting="limited",
                             fraction=0.5, steps=5, log_every=1000)
    assert limited["train_views"]["all"]["runs"][0]["num_train"] == 4
    with pytest.raises(ValueError, match="training views"):
        action_lib.run(embeddings=emb, output_dir=str(tmp_path / "x"), train_view="front", steps=1)


def test_own_clips_view_classification(own_embeddings, tmp_path):
    res = view_lib.run(embeddings=own_embeddings, output_dir=str(tmp_path), features=("raw",),
                       steps=300, learning_rate=0.5)
    raw = res["features"]["raw"]
    assert raw["view_names"] == ["C1R1", "C2R1"] and raw["num_test_frames"] == 4 * 16
    assert raw["accuracy_mean"] == 1.0  # a narrowed body is an easy view cue


def _openpose_take(root, kp13, empty_frame):
    from test_readers import _write_openpose_clip  # pylint: disable=import-outside-toplevel
    for c, (scale, shift) in enumerate(((1.0, 0.0), (0.5, 40.0), (1.5, -60.0))):
        _write_openpose_clip(root / f"cam{c}", kp13 * scale + shift, "openpose25b",
                             empty=(empty_frame,) if c == 1 else ())


def test_frames_with_nobody_are_nan_in_the_embedding_file(export_dir, tmp_path):
    kp13 = pose_fixtures.walking_clip(10)
    _openpose_take(tmp_path / "take", kp13, empty_frame=4)
    out = embed_lib.embed_dataset(export_dir, "openpose", str(tmp_path / "take"),
                                  str(tmp_path / "e.npz"), layout="body25b")
    emb = embedding_file.load_embeddings(out)
    offsets = emb["clip_offsets"]
    for feature in embedding_file.FEATURES:
        data = emb[feature].reshape(offsets[-1], -1)
        empty = np.zeros(offsets[-1], bool)
        empty[offsets[1] + 4] = True
        assert np.isnan(data[empty]).all() and np.isfinite(data[~empty]).all(), feature
    assert emb.metadata["loader_info"]["missing_frames"] == 1
    assert (emb.clip_features("pose_embedding")[1, 4] == 0).all()  # classifiers see zeros


def test_synchronised_hits_hand_values():
    # Camera 1 sees frame t where camera 0 sees frame t + 1 (a one-frame offset).
    feats = np.arange(6, dtype=np.float32)[:, None]
    features = {"f": np.stack([feats, feats - 1.0])}
    present = np.ones((2, 6), bool)
    exact = retrieval_lib.synchronised_hits(features, present, ["a", "b"], tolerance=0, ks=(1, 2))
    # Query 0->1: t's nearest in camera 1 is t + 1 (absent for t = 5: nearest is 5).
    assert exact["features"]["f"]["per_pair"][0]["hits"] == {"1": 1 / 6, "2": 1.0}
    window = retrieval_lib.synchronised_hits(features, present, ["a", "b"], tolerance=1, ks=(1,))
    assert window["features"]["f"]["mean"] == {"1": 1.0}
    present[1, 2] = False
    gone = retrieval_lib.synchronised_hits(features, present, ["a", "b"], tolerance=0, ks=(1,))
    pairs = gone["features"]["f"]["per_pair"]
    assert [p["num_queries"] for p in pairs] == [6, 5]


def test_openpose_multiview_retrieval(export_dir, tmp_path):
    kp13 = pose_fixtures.walking_clip(10)
    _openpose_take(tmp_path / "take", kp13, empty_frame=4)
    res = retrieval_lib.run_synchronised(export_dir=export_dir, output_dir=str(tmp_path / "out"),
                                         dataset="openpose_multiview", path=str(tmp_path / "take"),
                                         layout="body25b")
    # Same pose scaled and shifted: normalised 2D identical, so raw 2D and z_p find the same frame.
    assert res["features"]["raw_2d"]["mean"]["1"] == 1.0
    assert res["features"]["pose_embedding"]["mean"]["1"] == 1.0
    assert {p["num_queries"] for p in res["features"]["raw_2d"]["per_pair"]} == {9, 10}
    # 10 frames are one block of consecutive frames: nothing to hold out, so no camera probe.
    assert res["view_probe"]["pose_embedding"]["accuracy"] is None
    assert "at least 2 groups" in (tmp_path / "out" / "retrieval.md").read_text()
    assert json.loads((tmp_path / "out" / "retrieval_results.json").read_text())["tolerance"] == 0


def test_export_score_threshold_at_call_time(export_dir):
    module, metadata = export_lib.load_export(export_dir)
    assert set(export_lib.SIGNATURES) <= set(module.signatures)
    rng = np.random.default_rng(0)
    kp = tf.constant(pose_fixtures.walking_clip(4))
    scores = rng.uniform(0, 1, (4, 13)).astype(np.float32)
    default = module.signatures["embed_with_scores"](keypoints_2d=kp,
                                                     keypoint_scores=tf.constant(scores))
    same = module.signatures["embed_with_scores_threshold"](
        keypoints_2d=kp, keypoint_scores=tf.constant(scores),
        min_keypoint_score=tf.constant(float(metadata["min_keypoint_score"])))
    at_half = module.signatures["embed_with_scores_threshold"](
        keypoints_2d=kp, keypoint_scores=tf.constant(scores),
        min_keypoint_score=tf.constant(0.5))
    binary = module.signatures["embed_with_scores"](
        keypoints_2d=kp, keypoint_scores=tf.constant((scores > 0.5).astype(np.float32)))
    for key in ("pose_embedding", "normalized_keypoints"):
        np.testing.assert_array_equal(default[key].numpy(), same[key].numpy())
        np.testing.assert_array_equal(at_half[key].numpy(), binary[key].numpy())
        assert not np.allclose(at_half[key].numpy(), default[key].numpy())
    coco = np.zeros((4, 17, 2), np.float32)
    coco_scores = np.zeros((4, 17), np.float32)
    from cv_mim.keypoints import profiles  # pylint: disable=import-outside-toplevel
    idx = list(profiles.LAYOUT_TO_CANONICAL["coco17"])
    coco[:, idx], coco_scores[:, idx] = kp.numpy(), scores
    coco_half = module.signatures["embed_coco17_threshold"](
        keypoints_2d=tf.constant(coco), keypoint_scores=tf.constant(coco_scores),
        min_keypoint_score=tf.constant(0.5))
    np.testing.assert_array_equal(coco_half["pose_embedding"].numpy(),
                                  at_half["pose_embedding"].numpy())


@pytest.mark.parametrize("signature", ["embed_with_scores", "embed_coco17_threshold"])
def test_tflite_model_gives_the_savedmodel_embeddings(export_dir, tmp_path, signature):
    from cv_mim.serving import tflite  # pylint: disable=import-outside-toplevel
    path = str(tmp_path / "embed.tflite")
    sidecar = tflite.convert(export_dir, path, signature=signature)
    assert sidecar["signature"] == signature and json.loads(open(path + ".json").read())
    model = tflite.TFLiteEmbedder(path)
    rng = np.random.default_rng(3)
    joints = 13 if signature == "embed_with_scores" else 17
    inputs = {"keypoints_2d": rng.uniform(50, 450, (5, joints, 2)).astype(np.float32),
              "keypoint_scores": rng.uniform(0, 1, (5, joints)).astype(np.float32)}
    inputs["keypoint_scores"][1, :3] = 0.0  # missing joints
    if signature.endswith("_threshold"):
        inputs["min_keypoint_score"] = np.float32(0.3)
    assert set(model.inputs) == set(inputs)
    got = model(**inputs)
    module, _ = export_lib.load_export(export_dir)
    want = module.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    for key in ("pose_embedding", "view_embedding", "normalized_keypoints"):
        assert np.isfinite(got[key]).all()
        np.testing.assert_allclose(got[key], want[key].numpy(), rtol=1e-4, atol=1e-4)
