"""Tests of cv_mim.data.penn_action: the label-file reader/writer, resampling and the dataset loader."""
import logging
import os

import numpy as np
import pytest
import scipy.io

from cv_mim.data import penn_action
from cv_mim.keypoints import profiles

REAL_KEYS = ("x", "y", "visibility", "action", "pose", "train", "nframes", "dimensions", "bbox")


def _real_labels(realdata_dir):
    d = realdata_dir / "penn_action" / "labels"
    if not d.is_dir():
        pytest.skip(f"Penn Action samples not found at {d}")
    return d


def _make_clip(rng, t=20, action="squat", view="front", train=True, clip_id="0001", vis_prob=0.9):
    return penn_action.PennClip(
        clip_id=clip_id, action=action, view=view, train=train,
        x=rng.uniform(0, 480, (t, 13)), y=rng.uniform(0, 360, (t, 13)),
        visibility=(rng.uniform(size=(t, 13)) < vis_prob).astype(np.uint8),
        dimensions=(360, 480, t), bbox=rng.uniform(0, 300, (t, 4)))


def _savemat_from(path, real_like):
    scipy.io.savemat(os.fspath(path), real_like, format="5")


# ----------------------------------------------------------------------------------------------------
# Real samples.


def test_read_every_real_file_matches_loadmat(realdata_dir):
    labels = _real_labels(realdata_dir)
    files = sorted(labels.glob("*.mat"))
    assert len(files) == 108
    nframes_dtypes, x_dtypes = set(), set()
    for f in files:
        m = scipy.io.loadmat(f)
        clip = penn_action.read_penn_mat(f)
        t = m["x"].shape[0]
        assert clip.clip_id == f.stem
        assert clip.action == str(m["action"][0])
        assert clip.view == str(m["pose"][0])
        assert clip.train == (int(m["train"][0, 0]) == 1)
        assert clip.num_frames == t == int(m["nframes"][0, 0]) == int(m["dimensions"][0, 2])
        assert clip.dimensions == tuple(int(v) for v in m["dimensions"][0])
        np.testing.assert_array_equal(clip.x, m["x"].astype(np.float64))
        np.testing.assert_array_equal(clip.y, m["y"].astype(np.float64))
        np.testing.assert_array_equal(clip.visibility, m["visibility"])
        assert clip.x.dtype == np.float64 and clip.visibility.dtype == np.uint8
        assert clip.bbox.shape[1] == 4 and clip.bbox.shape[0] <= t
        nframes_dtypes.add(m["nframes"].dtype)
        x_dtypes.add(m["x"].dtype)
    # The samples contain both nframes dtypes and integer-stored coordinates; all were read above.
    assert {np.dtype(np.uint8), np.dtype(np.uint16)} <= nframes_dtypes
    assert any(dt.kind == "u" for dt in x_dtypes)


def test_real_file_fields_by_hand(realdata_dir):
    # 0012.mat: a training baseball pitch seen from the back, 115 frames of a 266x480 video (values read
    # from the file with scipy for this test; they are the file's content, not this module's output).
    clip = penn_action.read_penn_mat(_real_labels(realdata_dir) / "0012.mat")
    assert (clip.action, clip.view, clip.train, clip.num_frames) == ("baseball_pitch", "back", True, 115)
    assert clip.dimensions == (266, 480, 115)
    clip = penn_action.read_penn_mat(_real_labels(realdata_dir) / "0033.mat")
    assert (clip.action, clip.view, clip.train) == ("baseball_pitch", "left", False)


def test_rewrite_real_file_keeps_keys_dtypes_values(realdata_dir, tmp_path):
    src = _real_labels(realdata_dir) / "0012.mat"
    out = tmp_path / "0012.mat"
    penn_action.write_penn_mat(out, penn_action.read_penn_mat(src))
    a, b = scipy.io.loadmat(src), scipy.io.loadmat(out)
    for k in REAL_KEYS:
        assert a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        if k != "nframes":  # the real files use uint8 or uint16; the writer always uint16
            assert a[k].dtype == b[k].dtype, k
    assert b["nframes"].dtype == np.uint16


def test_load_real_penn_action(realdata_dir):
    labels = _real_labels(realdata_dir)
    ds = penn_action.load_penn_action(labels)
    # Independent bookkeeping straight from scipy.
    info = {}
    for f in sorted(labels.glob("*.mat")):
        m = scipy.io.loadmat(f)
        info[f.stem] = dict(action=str(m["action"][0]), view=str(m["pose"][0]), train=int(m["train"][0, 0]) == 1,
                            vis=float(m["visibility"].mean()), x=m["x"].astype(float), y=m["y"].astype(float),
                            v=m["visibility"], h=int(m["dimensions"].ravel()[0]),
                            w=int(m["dimensions"].ravel()[1]))
    expected_ids = sorted(k for k, v in info.items() if v["action"] != "strum_guitar" and v["vis"] >= 0.4)
    assert list(ds.clip_ids) == expected_ids
    invisible = sorted(k for k, v in info.items() if v["action"] != "strum_guitar" and v["vis"] < 0.4)
    assert invisible == ["0711", "1882"]  # the rule's effect on the 108 samples
    assert [c for c, r in ds.excluded if "invisible" in r] == invisible
    assert sum("dropped" in r for _, r in ds.excluded) == sum(v["action"] == "strum_guitar" for v in info.values())
    assert ds.class_names == tuple(sorted({info[k]["action"] for k in expected_ids}))
    assert len(ds.class_names) == 14 and "strum_guitar" not in ds.class_names
    assert ds.keypoints.shape == (len(expected_ids), 332, 13, 2) and ds.mask.shape == (len(expected_ids), 332, 13)
    assert ds.keypoints.dtype == np.float32
    penn_index = {n: i for i, n in enumerate(profiles.PENN13_JOINT_NAMES)}
    order = [penn_index[n] for n in profiles.JOINT_NAMES]  # canonical joint -> Penn column, by name
    for i, cid in enumerate(ds.clip_ids):
        rec = info[cid]
        assert ds.class_names[ds.labels[i]] == rec["action"]
        assert ds.view_names[ds.views[i]] == rec["view"]
        assert bool(ds.train[i]) == rec["train"]
        assert ds.num_frames_original[i] == rec["x"].shape[0]
        # End points of the resampled clip are the original first/last frames.
        for out_t, src_t in ((0, 0), (-1, -1)):
            np.testing.assert_allclose(ds.keypoints[i, out_t, :, 0], rec["x"][src_t, order], rtol=1e-6)
            np.testing.assert_allclose(ds.keypoints[i, out_t, :, 1], rec["y"][src_t, order], rtol=1e-6)
            # Default rule: present = visible, or invisible with an annotated position (not parked at
            # the top-left corner, not outside the image).
            x, y, v = rec["x"][src_t, order], rec["y"][src_t, order], rec["v"][src_t, order]
            parked = (v == 0) & (((x <= 1) & (y <= 1)) | (x < 0) | (y < 0) | (x > rec["w"]) | (y > rec["h"]))
            np.testing.assert_array_equal(ds.mask[i, out_t], (~parked).astype(np.float32))
    # Class coverage per training view, computed independently.
    cov = ds.class_coverage()
    for view in penn_action.PENN_VIEWS:
        want = sorted({info[k]["action"] for k in expected_ids if info[k]["train"] and info[k]["view"] == view})
        assert list(cov[view]) == want
        assert set(ds.missing_classes_per_view()[view]) == set(ds.class_names) - set(want)
    # clean_and_jerk's only left-view training clip (0711) is the invisible one.
    assert "clean_and_jerk" not in cov["left"]


def test_real_invisibility_rule_parameter(realdata_dir):
    labels = _real_labels(realdata_dir)
    ds = penn_action.load_penn_action(labels, drop_actions=(), min_visible_fraction=None, num_frames=16)
    assert len(ds) == 108 and len(ds.class_names) == 15
    ds = penn_action.load_penn_action(labels, drop_actions=(), num_frames=16)
    assert sorted(c for c, _ in ds.excluded) == ["0711", "1882", "1897", "1908"]
    ds = penn_action.load_penn_action(labels, exclude_clips=["0012", 33], num_frames=16)
    assert "0012" not in ds.clip_ids and "0033" not in ds.clip_ids
    assert ("0012", "in exclude_clips") in ds.excluded


def test_real_invisible_joints_annotated_or_missing(realdata_dir):
    labels = _real_labels(realdata_dir)
    ann = penn_action.load_penn_action(labels, num_frames=16)
    miss = penn_action.load_penn_action(labels, num_frames=16, invisible_joints="missing")
    # Resampling interpolates only between present samples, so the coordinates agree where both rules
    # have the joint present at the aligned end frames.
    both = (ann.mask[:, [0, -1]] > 0) & (miss.mask[:, [0, -1]] > 0)
    np.testing.assert_array_equal(ann.keypoints[:, [0, -1]][both], miss.keypoints[:, [0, -1]][both])
    assert list(ann.clip_ids) == list(miss.clip_ids)  # the invisibility rule counts the flags either way
    # 'missing' is the visibility flag; 'annotated' keeps every joint 'missing' keeps and more.
    assert np.all(ann.mask >= miss.mask)
    # On the sample, 35 % of the invisible joints are parked at the corner (0.75/0.667/1/0.953), the
    # rest carry an annotated position: the default treats about 2/3 of the invisible joints as present.
    placeholders = invisible = 0
    for f in sorted(labels.glob("*.mat")):
        clip = penn_action.read_penn_mat(f)
        invisible += int((clip.visibility == 0).sum())
        placeholders += int(clip.placeholder().sum())
        parked = clip.placeholder()
        assert np.all(clip.x[parked] <= 1.0) and np.all(clip.y[parked] <= 1.0)
    assert 0.30 < placeholders / invisible < 0.40
    gained = float((ann.mask - miss.mask).sum()) / float((1 - miss.mask).sum())
    assert 0.5 < gained < 0.8


def test_joint_mask_rules_by_hand():
    x = np.full((1, 13), 100.0)
    y = np.full((1, 13), 100.0)
    vis = np.ones((1, 13), np.uint8)
    vis[0, 1:6] = 0
    x[0, 1], y[0, 1] = 0.75, 0.75      # invisible, parked at the corner -> missing
    x[0, 2], y[0, 2] = 1.0, 1.0        # the (1, 1) placeholder -> missing
    x[0, 3], y[0, 3] = 50.0, 60.0      # invisible with an annotated position -> present
    x[0, 4] = 500.0                    # invisible, right of the 480-wide image -> missing
    y[0, 5] = -3.0                     # invisible, above the image -> missing
    x[0, 6], y[0, 6] = 0.5, 0.5        # VISIBLE at the corner: a visible joint is always present
    clip = penn_action.PennClip("0001", "squat", "front", True, x, y, vis, (360, 480, 1),
                                np.zeros((0, 4)))
    want = np.ones(13, np.float32)
    want[[1, 2, 4, 5]] = 0
    np.testing.assert_array_equal(penn_action.joint_mask(clip)[0], want)
    np.testing.assert_array_equal(penn_action.joint_mask(clip, "missing")[0], vis[0].astype(np.float32))
    # Without image dimensions only the corner rule applies.
    np.testing.assert_array_equal(
        penn_action.placeholder_joints(x, y, vis, (0, 0, 1))[0],
        np.isin(np.arange(13), [1, 2]))
    with pytest.raises(ValueError, match="invisible_joints"):
        penn_action.joint_mask(clip, "guess")


def test_loader_invisible_joints_flag(tmp_path):
    rng = np.random.default_rng(3)
    clip = _make_clip(rng, t=6, vis_prob=1.0)
    clip.visibility[:, 2] = 0           # annotated but invisible
    clip.visibility[:, 4] = 0
    clip.x[:, 4] = clip.y[:, 4] = 0.75  # parked
    penn_action.write_penn_mat(tmp_path / "0001.mat", clip)
    col = {n: i for i, n in enumerate(profiles.PENN13_JOINT_NAMES)}
    canon = {n: i for i, n in enumerate(profiles.JOINT_NAMES)}
    c2, c4 = (canon[profiles.PENN13_JOINT_NAMES[k]] for k in (2, 4))
    assert col[profiles.PENN13_JOINT_NAMES[2]] == 2
    ds = penn_action.load_penn_action(tmp_path, num_frames=6)
    assert ds.mask[0, :, c2].all() and not ds.mask[0, :, c4].any()
    assert ds.mask[0].sum() == 6 * 12
    ds = penn_action.load_penn_action(tmp_path, num_frames=6, invisible_joints="missing")
    assert not ds.mask[0, :, c2].any() and not ds.mask[0, :, c4].any()
    with pytest.raises(ValueError, match="invisible_joints must be one of"):
        penn_action.load_penn_action(tmp_path, invisible_joints="all")


# ----------------------------------------------------------------------------------------------------
# Writer round trips.


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    clip = _make_clip(rng, t=17, action="bench_press", view="right", train=False, clip_id="0042")
    path = tmp_path / "labels" / "0042.mat"
    penn_action.write_penn_mat(path, clip)
    back = penn_action.read_penn_mat(path)
    assert (back.clip_id, back.action, back.view, back.train, back.dimensions) == \
        ("0042", "bench_press", "right", False, (360, 480, 17))
    np.testing.assert_array_equal(back.x, clip.x)
    np.testing.assert_array_equal(back.y, clip.y)
    np.testing.assert_array_equal(back.visibility, clip.visibility)
    np.testing.assert_array_equal(back.bbox, clip.bbox)
    m = scipy.io.loadmat(path)
    assert {k for k in m if not k.startswith("__")} == set(REAL_KEYS)
    assert m["x"].dtype == np.float64 and m["x"].shape == (17, 13)
    assert m["visibility"].dtype == np.uint8
    assert m["train"].dtype == np.int32 and m["train"].shape == (1, 1) and m["train"][0, 0] == -1
    assert m["nframes"].dtype == np.uint16 and m["nframes"].shape == (1, 1) and m["nframes"][0, 0] == 17
    assert m["dimensions"].dtype == np.uint16 and m["dimensions"].tolist() == [[360, 480, 17]]
    assert m["action"].dtype.kind == "U" and m["action"].shape == (1,) and m["action"][0] == "bench_press"
    assert m["pose"][0] == "right"


def test_writer_matches_real_file_layout(realdata_dir, tmp_path):
    real = scipy.io.loadmat(_real_labels(realdata_dir) / "0015.mat")
    path = tmp_path / "0001.mat"
    penn_action.write_penn_mat(path, _make_clip(np.random.default_rng(1)))
    ours = scipy.io.loadmat(path)
    for k in REAL_KEYS:
        assert ours[k].ndim == real[k].ndim, k
        assert ours[k].dtype.kind == real[k].dtype.kind, k
    assert ours["__header__"].startswith(b"MATLAB 5.0 MAT-file")


def test_writer_rejects_bad_clips(tmp_path):
    rng = np.random.default_rng(2)
    good = _make_clip(rng)
    bad_cases = {
        "shape": dict(x=good.x[:, :12]),
        "zero": dict(x=good.x[:0], y=good.y[:0], visibility=good.visibility[:0], dimensions=(360, 480, 0)),
        "view": dict(view="top"),
        "dims": dict(dimensions=(360, 480, 5)),
        "nan": dict(x=np.where(np.eye(20, 13) > 0, np.nan, good.x)),
        "vis": dict(visibility=good.visibility * 3),
    }
    for case, changes in bad_cases.items():
        bad = penn_action.PennClip(**{**good.__dict__, **changes})
        with pytest.raises(ValueError, match="write_penn_mat"):
            penn_action.write_penn_mat(tmp_path / f"{case}.mat", bad)


# ----------------------------------------------------------------------------------------------------
# Malformed files.


def _real_like_dict(t=10):
    rng = np.random.default_rng(3)
    return {"x": rng.uniform(0, 400, (t, 13)), "y": rng.uniform(0, 300, (t, 13)),
            "visibility": np.ones((t, 13), np.uint8), "action": "bowl", "pose": "back",
            "train": np.array([[1]], np.int32), "nframes": np.array([[t]], np.uint8),
            "dimensions": np.array([[270, 480, t]], np.uint16), "bbox": np.zeros((t, 4))}


@pytest.mark.parametrize("case,pattern", [
    ("missing_pose", r"missing field\(s\) \['pose'\]"),
    ("zero_frames", "zero frames"),
    ("bad_shape", r"\(T, 13\)"),
    ("nframes_mismatch", "nframes = 9"),
    ("train_zero", "'train' must be 1"),
    ("unknown_view", "'pose'"),
    ("bbox_cols", "'bbox'"),
    ("garbage", "cannot be read"),
])
def test_malformed_files_raise_naming_the_file(tmp_path, case, pattern):
    path = tmp_path / f"{case}.mat"
    d = _real_like_dict()
    if case == "missing_pose":
        del d["pose"]
    elif case == "zero_frames":
        d.update(x=np.zeros((0, 13)), y=np.zeros((0, 13)), visibility=np.zeros((0, 13), np.uint8),
                 nframes=np.array([[0]], np.uint8))
    elif case == "bad_shape":
        d["x"] = d["x"][:, :12]
    elif case == "nframes_mismatch":
        d["nframes"] = np.array([[9]], np.uint8)
    elif case == "train_zero":
        d["train"] = np.array([[0]], np.int32)
    elif case == "unknown_view":
        d["pose"] = "above"
    elif case == "bbox_cols":
        d["bbox"] = np.zeros((10, 3))
    if case == "garbage":
        path.write_bytes(b"this is not a mat file at all" * 10)
    else:
        _savemat_from(path, d)
    with pytest.raises(ValueError, match=pattern) as err:
        penn_action.read_penn_mat(path)
    assert str(path) in str(err.value)


def test_tolerant_fields(tmp_path):
    # uint16 nframes, integer coordinates, short bbox and no bbox at all are all accepted.
    d = _real_like_dict(t=6)
    d.update(nframes=np.array([[6]], np.uint16), x=np.arange(78, dtype=np.uint16).reshape(6, 13),
             bbox=np.ones((4, 4)))
    _savemat_from(tmp_path / "a.mat", d)
    clip = penn_action.read_penn_mat(tmp_path / "a.mat")
    assert clip.x.dtype == np.float64 and clip.x[5, 12] == 77.0 and clip.bbox.shape == (4, 4)
    del d["bbox"]
    _savemat_from(tmp_path / "b.mat", d)
    assert penn_action.read_penn_mat(tmp_path / "b.mat").bbox.shape == (0, 4)
    with pytest.raises(FileNotFoundError):
        penn_action.read_penn_mat(tmp_path / "none.mat")


def test_loader_skip_malformed_counts(tmp_path, caplog):
    rng = np.random.default_rng(4)
    for i, (action, view, train) in enumerate([("squat", "front", True), ("bowl", "left", False),
                                               ("squat", "back", False)]):
        penn_action.write_penn_mat(tmp_path / f"{i + 1:04d}.mat",
                                   _make_clip(rng, t=8 + i, action=action, view=view, train=train, vis_prob=1.0))
    d = _real_like_dict()
    del d["x"]
    _savemat_from(tmp_path / "0004.mat", d)
    (tmp_path / "0005.mat").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="0004.mat"):
        penn_action.load_penn_action(tmp_path)
    with caplog.at_level(logging.WARNING, logger="cv_mim.data.penn_action"):
        ds = penn_action.load_penn_action(tmp_path, skip_malformed=True, num_frames=10)
    assert ds.num_skipped == 2 and {os.path.basename(p) for p, _ in ds.skipped} == {"0004.mat", "0005.mat"}
    assert "Skipped 2 malformed" in caplog.text
    assert len(ds) == 3 and ds.class_names == ("bowl", "squat")
    assert ds.labels.tolist() == [1, 0, 1] and ds.train.tolist() == [True, False, False]
    assert [ds.view_names[v] for v in ds.views] == ["front", "left", "back"]
    train, test = ds.single_shot_split("front")
    assert train.tolist() == [0] and test.tolist() == [1, 2]
    assert ds.single_shot_split("left")[0].size == 0
    counts = ds.class_counts_per_view("test")
    assert counts[penn_action.PENN_VIEWS.index("left"), 0] == 1 and counts.sum() == 2
    sub = ds.subset(ds.train)
    assert len(sub) == 1 and sub.class_names == ds.class_names


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        penn_action.load_penn_action(tmp_path / "missing")
    with pytest.raises(ValueError, match="no .mat"):
        penn_action.load_penn_action(tmp_path)
    penn_action.write_penn_mat(tmp_path / "0001.mat", _make_clip(np.random.default_rng(5), action="strum_guitar"))
    with pytest.raises(ValueError, match="no clip left"):
        penn_action.load_penn_action(tmp_path)
    with pytest.raises(ValueError, match="min_visible_fraction"):
        penn_action.load_penn_action(tmp_path, min_visible_fraction=2.0)


def test_invisibility_rule_threshold(tmp_path):
    rng = np.random.default_rng(6)
    clip = _make_clip(rng, t=10, vis_prob=1.0)
    vis = np.zeros((10, 13), np.uint8)
    vis[:, :5] = 1  # 5/13 = 0.385 visible
    clip.visibility = vis
    penn_action.write_penn_mat(tmp_path / "0001.mat", clip)
    clip2 = _make_clip(rng, t=10, vis_prob=1.0, action="bowl")
    vis2 = np.zeros((10, 13), np.uint8)
    vis2[:, :6] = 1  # 6/13 = 0.46 visible
    clip2.visibility = vis2
    penn_action.write_penn_mat(tmp_path / "0002.mat", clip2)
    assert penn_action.visible_fraction(vis) == pytest.approx(5 / 13)
    ds = penn_action.load_penn_action(tmp_path, num_frames=4)
    assert ds.clip_ids.tolist() == ["0002"] and ds.class_names == ("bowl",)
    with pytest.raises(ValueError, match="no clip left"):
        penn_action.load_penn_action(tmp_path, num_frames=4, min_visible_fraction=0.5)
    ds = penn_action.load_penn_action(tmp_path, num_frames=4, min_visible_fraction=0.3)
    assert len(ds) == 2


# ----------------------------------------------------------------------------------------------------
# Resampling.


def test_resample_upsample_values_and_mask():
    # 3 frames -> 5: source times 0, 0.5, 1, 1.5, 2.
    kp = np.zeros((3, 2, 2))
    kp[:, 0, 0] = [0.0, 10.0, 30.0]
    kp[:, 1, 1] = [100.0, 200.0, 300.0]
    mask = np.ones((3, 2))
    mask[1, 1] = 0  # joint 1 missing in the middle frame
    out, m = penn_action.resample_sequence(kp, mask, 5)
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 5.0, 10.0, 20.0, 30.0])
    np.testing.assert_array_equal(m[:, 0], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(m[:, 1], [1, 0, 0, 0, 1])
    # Missing output joints take the nearer source frame (ties -> the earlier one).
    np.testing.assert_allclose(out[:, 1, 1], [100.0, 100.0, 200.0, 200.0, 300.0])
    assert out.dtype == np.float32 and m.dtype == np.float32


def test_resample_downsample_and_constant():
    t = 663
    kp = np.tile(np.arange(t, dtype=float)[:, None, None], (1, 13, 2))
    out, m = penn_action.resample_sequence(kp, np.ones((t, 13)), 332)
    assert out.shape == (332, 13, 2)
    np.testing.assert_allclose(out[:, 0, 0], 2.0 * np.arange(332))  # 662 / 331 = 2 source frames per step
    assert m.min() == 1
    one, m1 = penn_action.resample_sequence(kp[:1] + 7, np.ones((1, 13)), 332)
    assert one.shape == (332, 13, 2) and np.all(one == 7) and np.all(m1 == 1)
    with pytest.raises(ValueError, match="T>0"):
        penn_action.resample_sequence(kp[:0], np.ones((0, 13)), 5)
    with pytest.raises(ValueError, match="num_frames"):
        penn_action.resample_sequence(kp, np.ones((t, 13)), 0)
