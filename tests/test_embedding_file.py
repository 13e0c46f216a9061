"""The cv_mim.embeddings/2 file: written clip by clip, read lazily, float16 by default, any gfile path."""
import json
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from cv_mim.downstream import trainer
from cv_mim.keypoints import profiles
from cv_mim.serving import embedding_file

LENGTHS = (3, 5, 2)


def _clip_values(c, n, flips):
    """Distinct hand-made values per clip: frame t of clip c holds 100·c + t + field offsets."""
    base = (100 * c + np.arange(n, dtype=np.float32))[:, None]
    out = {"pose_embedding": base + np.arange(4) / 8, "view_embedding": base + 0.5 + np.arange(3),
           "normalized_keypoints": (base[:, :, None] / 1000 + np.arange(26).reshape(13, 2) / 64)}
    for m in flips:
        out[f"pose_embedding_flip_{m}"] = -out["pose_embedding"]
        out[f"view_embedding_flip_{m}"] = out["view_embedding"] * (2 if m == "keep" else 3)
    return out


def _fields(n):
    return {"clip_ids": np.array([f"c{i}" for i in range(n)]), "labels": np.arange(n) % 2,
            "class_names": np.array(["a", "b"]), "views": np.array(["front"] * n),
            "split": np.array(["train"] * n), "subjects": np.array([""] * n),
            "setups": np.full(n, -1), "cameras": np.full(n, -1), "performers": np.full(n, -1),
            "replications": np.full(n, -1)}


def _write(path, *, feature_dtype="float16", flips=("keep", "swap"), nobody=(1, 2)):
    """Three clips; frame ``nobody[1]`` of clip ``nobody[0]`` has nobody (NaN, has_pose False)."""
    with embedding_file.EmbeddingWriter(path, pose_dim=4, view_dim=3, flip_modes=flips,
                                        feature_dtype=feature_dtype) as writer:
        for c, n in enumerate(LENGTHS):
            values = _clip_values(c, n, flips)
            has_pose = np.ones(n, bool)
            mask = np.ones((n, 13), np.float32)
            mask[:, 1] = 0  # left shoulder missing everywhere
            if c == nobody[0]:
                has_pose[nobody[1]] = False
                mask[nobody[1]] = 0
                for v in values.values():
                    v[nobody[1]] = np.nan
            writer.add_clip(values, mask, has_pose)
        writer.finish(_fields(len(LENGTHS)), {"dataset": "hand"})
    return path


@pytest.mark.parametrize("dtype", embedding_file.FEATURE_DTYPES)
def test_round_trip_hand_values(tmp_path, dtype):
    emb = embedding_file.load_embeddings(_write(str(tmp_path / "e.npz"), feature_dtype=dtype))
    assert emb.metadata["format"] == "cv_mim.embeddings/2" and emb.metadata["dataset"] == "hand"
    assert emb.metadata["feature_dtype"] == dtype and emb.flip_modes == ("keep", "swap")
    assert emb["clip_offsets"].tolist() == [0, 3, 8, 10] and emb.class_names == ("a", "b")
    for c, n in enumerate(LENGTHS):
        values = _clip_values(c, n, ("keep", "swap"))
        for name in ("pose_embedding", "view_embedding_flip_swap", "pose_embedding_flip_keep"):
            feature, _, flip = name.partition("_flip_")
            got = emb.clip_feature(c, feature, flip or None)
            assert got.dtype == dtype
            np.testing.assert_array_equal(got[~np.isnan(got[:, 0])],
                                          values[name].astype(dtype)[~np.isnan(got[:, 0])])
    rec = emb.clip(1)
    assert rec["has_pose"].tolist() == [True, True, False, True, True]
    assert rec["mask"].dtype == bool and not rec["mask"][:, 1].any() and rec["mask"][0, 0]
    assert np.isnan(emb["pose_embedding"][3 + 2]).all()  # the concatenated frame view
    assert emb["pose_embedding"].shape == (10, 4) and emb["mask"].shape == (10, 13)


def test_mirrored_keypoints_are_derived_from_the_stored_ones(tmp_path):
    emb = embedding_file.load_embeddings(_write(str(tmp_path / "e.npz"), feature_dtype="float32"))
    nk = emb.clip_feature(0, "normalized_keypoints")
    keep = emb.clip_feature(0, "normalized_keypoints", "keep")
    swap = emb.clip_feature(0, "normalized_keypoints", "swap")
    np.testing.assert_array_equal(keep[..., 0], -nk[..., 0])
    np.testing.assert_array_equal(keep[..., 1], nk[..., 1])
    # Left shoulder (1) and right shoulder (2) trade places under swap; the head (0) stays.
    np.testing.assert_array_equal(swap[:, 1], keep[:, 2])
    np.testing.assert_array_equal(swap[:, 2], keep[:, 1])
    np.testing.assert_array_equal(swap[:, 0], keep[:, 0])
    assert profiles.LEFT_RIGHT_SWAP[1] == 2 and profiles.LEFT_RIGHT_SWAP[0] == 0
    assert not emb.clip_feature(0, "mask", "swap")[:, 2].any()  # the missing joint moved
    assert emb.has("normalized_keypoints_flip_swap") and not emb.has("pose_embedding_flip_up")


def test_clip_features_are_read_on_demand(tmp_path):
    emb = embedding_file.load_embeddings(_write(str(tmp_path / "e.npz")), cache_bytes=0)
    with pytest.raises(ValueError, match="different lengths"):
        emb.clip_features("pose_embedding")
    x = emb.clip_features("pose_embedding", clips=[1])
    assert isinstance(x, embedding_file.ClipFeatures) and x.shape == (1, 5, 4)
    expected = _clip_values(1, 5, ())["pose_embedding"].astype(np.float16).astype(np.float32)
    expected[2] = 0.0  # nobody detected: classifiers see zeros
    np.testing.assert_array_equal(x[0], expected)
    np.testing.assert_array_equal(x[0, 2:4], expected[2:4])
    np.testing.assert_array_equal(x[[0, 0], 1], expected[[1, 1]])
    np.testing.assert_array_equal(np.asarray(x), expected[None])
    raw = emb.clip_features("normalized_keypoints", flip="keep", clips=[0])
    assert raw.shape == (1, 3, 26) and raw[0].dtype == np.float32
    assert emb._cache == {}  # cache_bytes=0: nothing kept
    with pytest.raises(ValueError, match="--flip_modes=keep"):
        embedding_file.load_embeddings(_write(str(tmp_path / "n.npz"), flips=())).clip_features(
            "pose_embedding", flip="keep")


def test_cache_stays_within_its_budget(tmp_path):
    emb = embedding_file.load_embeddings(_write(str(tmp_path / "e.npz")), cache_bytes=50)
    for c in range(3):
        emb.clip_feature(c, "pose_embedding")
    # 3·4·2 = 24 bytes, then 5·4·2 = 40 would exceed 50: only clips that fit are kept.
    assert sorted(emb._cache) == [(0, "pose_embedding", None), (2, "pose_embedding", None)]
    assert emb._cache_bytes == 24 + 16 <= 50


def test_a_damaged_clip_fails_only_when_read(tmp_path):
    path = tmp_path / "e.npz"
    _write(str(path))
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    bad = np.load(path)["clip_2"].copy()
    bad["pose_embedding"][0] = np.nan  # NaN in a frame that has a pose
    import io  # pylint: disable=import-outside-toplevel
    buf = io.BytesIO()
    np.save(buf, bad)
    members["clip_2.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    emb = embedding_file.load_embeddings(str(path))
    emb.clip_feature(0, "pose_embedding")  # other clips read fine: nothing else was read
    with pytest.raises(ValueError, match=r"e.npz: pose_embedding of clip 2 is NaN/inf in 1 frame"):
        emb.clip_feature(2, "pose_embedding")


def test_old_and_foreign_files_are_refused_clearly(tmp_path):
    old = tmp_path / "old.npz"
    np.savez(old, pose_embedding=np.zeros((2, 4), np.float32), clip_offsets=np.array([0, 2]),
             metadata=np.array(json.dumps({"format": "cv_mim.embeddings/1"})))
    with pytest.raises(ValueError, match=r"old.npz: format 'cv_mim.embeddings/1' of an older "
                                         r"cv_mim is no longer read.*re-run cv_mim.embed"):
        embedding_file.load_embeddings(str(old))
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match="a.npy: not a readable .npz"):
        embedding_file.load_embeddings(str(tmp_path / "a.npy"))
    (tmp_path / "t.npz").write_bytes(b"PK\x03\x04broken")
    with pytest.raises(ValueError, match="t.npz: not a readable"):
        embedding_file.load_embeddings(str(tmp_path / "t.npz"))
    np.savez(tmp_path / "x.npz", metadata=np.array(json.dumps({"format": "other"})))
    with pytest.raises(ValueError, match="format 'other'"):
        embedding_file.load_embeddings(str(tmp_path / "x.npz"))
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        embedding_file.load_embeddings(str(tmp_path / "nope.npz"))


def test_float16_overflow_and_failed_writes_leave_no_file(tmp_path):
    path = str(tmp_path / "e.npz")
    with pytest.raises(ValueError, match="beyond the float16 range.*feature_dtype=float32"):
        with embedding_file.EmbeddingWriter(path, pose_dim=4, view_dim=3) as writer:
            values = _clip_values(0, 2, ())
            values["view_embedding"][1, 0] = 7e4
            writer.add_clip(values, np.ones((2, 13)), np.ones(2, bool))
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
    with pytest.raises(ValueError, match="feature_dtype must be one of"):
        embedding_file.EmbeddingWriter(path, pose_dim=4, view_dim=3, feature_dtype="int8")


def test_ram_filesystem_round_trip():
    path = "ram://embedding_file_test/sub/e.npz"
    _write(path)
    assert tf.io.gfile.listdir("ram://embedding_file_test/sub") == ["e.npz"]
    emb = embedding_file.load_embeddings(path)
    np.testing.assert_array_equal(emb.clip_feature(2, "view_embedding"),
                                  _clip_values(2, 2, ())["view_embedding"].astype(np.float16))


def test_trainer_reads_lazy_features_like_an_array(tmp_path):
    """The same seed on ClipFeatures and on the same features as an array: the same model."""
    emb = embedding_file.load_embeddings(_write(str(tmp_path / "e.npz"), nobody=(0, 1)),
                                         cache_bytes=0)
    lazy = emb.clip_features("normalized_keypoints", clips=[0, 0, 0, 0])
    flip = emb.clip_features("normalized_keypoints", flip="swap", clips=[0, 0, 0, 0])
    labels = np.array([0, 1, 0, 1])
    kwargs = dict(num_classes=2, steps=3, batch_size=2, seed=3, log_every=10, dropout_rate=0.25)
    m1, h1 = trainer.train_classifier(lazy, labels, alternate_features=flip, **kwargs)
    m2, h2 = trainer.train_classifier(np.asarray(lazy), labels, alternate_features=np.asarray(flip),
                                      **kwargs)
    np.testing.assert_array_equal(h1["loss_per_step"], h2["loss_per_step"])
    np.testing.assert_array_equal(trainer.predict_logits(m1, lazy.select([1, 2])),
                                  trainer.predict_logits(m2, np.asarray(lazy)[1:3]))
