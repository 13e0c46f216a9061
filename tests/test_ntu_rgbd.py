"""Tests of cv_mim.data.ntu_rgbd: the .skeleton parser/writer, main actor, padding, loader and splits."""
import itertools
import logging
import os

import numpy as np
import pytest

from cv_mim.data import ntu_rgbd
from cv_mim.data import ntu_skeleton
from cv_mim.data import safe_pickle
from cv_mim.keypoints import profiles

REAL_NAMES = ("S001C001P001R001A001", "S001C001P001R001A011", "S001C003P008R002A058",
              "S002C001P003R001A003", "S003C001P015R001A034", "S004C002P003R001A017")
# Canonical joint -> Kinect v2 joint, written out by hand (independent of keypoints.convert_keypoints).
CANONICAL_TO_KINECT = {
    "head": "Head", "left_shoulder": "ShoulderLeft", "right_shoulder": "ShoulderRight",
    "left_elbow": "ElbowLeft", "right_elbow": "ElbowRight", "left_wrist": "WristLeft",
    "right_wrist": "WristRight", "left_hip": "HipLeft", "right_hip": "HipRight", "left_knee": "KneeLeft",
    "right_knee": "KneeRight", "left_ankle": "AnkleLeft", "right_ankle": "AnkleRight",
}
KINECT_INDEX = [profiles.NTU25_JOINT_NAMES.index(CANONICAL_TO_KINECT[n]) for n in profiles.JOINT_NAMES]


def _real_dir(realdata_dir):
    d = realdata_dir / "ntu_rgbd"
    if not d.is_dir():
        pytest.skip(f"NTU RGB+D samples not found at {d}")
    return d


def _independent_parse(path):
    """A deliberately different, minimal reader: list of frames, each a list of (id, (25, 12))."""
    toks = path.read_text().split("\n")
    toks = [t.strip() for t in toks if t.strip()]
    i, frames = 1, []
    for _ in range(int(toks[0])):
        nb = int(toks[i]); i += 1
        bodies = []
        for _ in range(nb):
            bid = int(toks[i].split()[0]); i += 2
            bodies.append((bid, np.array([[float(v) for v in toks[i + j].split()] for j in range(25)])))
            i += 25
        frames.append(bodies)
    assert i == len(toks)
    return frames


def _body(rng, body_id, center, scale=0.05):
    joints = np.zeros((25, 12))
    joints[:, :3] = center + rng.normal(0, scale, (25, 3))
    joints[:, 3:5] = rng.uniform(0, 500, (25, 2))
    joints[:, 5:7] = rng.uniform(0, 1900, (25, 2))
    joints[:, 7:11] = rng.normal(0, 0.5, (25, 4))
    joints[:, 11] = 2
    # 7 significant digits, like the files, so a write/read round trip is exact.
    joints[:, :11] = np.vectorize(lambda v: float("%.7g" % v))(joints[:, :11])
    return ntu_skeleton.NtuBody(body_id=body_id, joints=joints, lean_x=0.25, lean_y=-0.125)


# ----------------------------------------------------------------------------------------------------
# Real samples.


def test_parse_real_files_against_independent_reader(realdata_dir):
    d = _real_dir(realdata_dir)
    for name in REAL_NAMES:
        path = d / f"{name}.skeleton"
        skel = ntu_skeleton.read_skeleton(path)
        ref = _independent_parse(path)
        first_line = path.read_bytes().split(b"\r\n")[0]
        assert skel.name == name
        assert skel.num_frames == len(ref) == int(first_line)
        for frame, ref_frame in zip(skel.frames, ref):
            assert [b.body_id for b in frame] == [bid for bid, _ in ref_frame]
            for body, (_, joints) in zip(frame, ref_frame):
                np.testing.assert_array_equal(body.joints, joints)
    two = ntu_skeleton.read_skeleton(d / "S001C003P008R002A058.skeleton")
    assert two.num_frames == 70 and two.max_bodies == 2
    assert all(len(f) == 2 for f in two.frames)
    info = two.frames[0][0]
    # Values of the first body-info line, read off the file by eye: "72057594037944738 0 1 1 1 1 0
    # 0.01119184 -0.256052 2".
    assert info.info() == (72057594037944738, 0, 1, 1, 1, 1, 0, 0.01119184, -0.256052, 2)


def test_body0_matches_ntu_authors_npy(realdata_dir):
    d = _real_dir(realdata_dir)
    ref = safe_pickle.load_npz(d / "S001C001P001R001A001.skeleton.npy").item()
    assert ref["skel_body0"].shape == (103, 25, 3)
    skel = ntu_skeleton.read_skeleton(d / "S001C001P001R001A001.skeleton")
    assert [len(f) for f in skel.frames] == list(ref["nbodys"])
    tracks = ntu_rgbd.body_joints(skel)
    (track,) = tracks.values()
    np.testing.assert_array_equal(track.frame_indices, np.arange(103))
    np.testing.assert_allclose(track.joints[:, :, :3], ref["skel_body0"], rtol=0, atol=1e-7)


def test_rewrite_real_files_is_byte_identical(realdata_dir, tmp_path):
    d = _real_dir(realdata_dir)
    for name in REAL_NAMES:
        out = tmp_path / f"{name}.skeleton"
        ntu_skeleton.write_skeleton(out, ntu_skeleton.read_skeleton(d / f"{name}.skeleton"))
        assert out.read_bytes() == (d / f"{name}.skeleton").read_bytes(), name


def test_lf_line_endings_parse_the_same(realdata_dir, tmp_path):
    src = _real_dir(realdata_dir) / "S001C001P001R001A011.skeleton"
    lf = tmp_path / "S001C001P001R001A011.skeleton"
    lf.write_bytes(src.read_bytes().replace(b"\r\n", b"\n"))
    a, b = ntu_skeleton.read_skeleton(src), ntu_skeleton.read_skeleton(lf)
    assert a.num_frames == b.num_frames
    for fa, fb in zip(a.frames, b.frames):
        for ba, bb in zip(fa, fb):
            assert ba.info() == bb.info()
            np.testing.assert_array_equal(ba.joints, bb.joints)


def test_main_actor_on_two_body_file(realdata_dir):
    skel_path = _real_dir(realdata_dir) / "S001C003P008R002A058.skeleton"
    ref = _independent_parse(skel_path)
    per_body = {}
    for frame in ref:
        for bid, joints in frame:
            per_body.setdefault(bid, []).append(joints)
    assert len(per_body) == 2
    energy = {}
    for bid, rows in per_body.items():
        xyz = np.stack(rows)[:, :, :3]
        energy[bid] = float(((xyz - xyz.mean(axis=0)) ** 2).mean(axis=0).sum())
    expected = max(energy, key=energy.get)
    skel = ntu_skeleton.read_skeleton(skel_path)
    assert ntu_rgbd.select_main_actor(skel) == expected
    for bid, tr in ntu_rgbd.body_joints(skel).items():
        assert ntu_rgbd.motion_energy(tr.joints[:, :, :3]) == pytest.approx(energy[bid], rel=1e-9)
    kp, mask, bid = ntu_rgbd.main_actor_keypoints_2d(skel)
    assert bid == expected
    color = np.stack(per_body[expected])[:, :, 5:7]
    unmirrored = np.stack([1920.0 - color[..., 0], color[..., 1]], -1)
    np.testing.assert_allclose(kp, unmirrored[:, KINECT_INDEX], rtol=1e-6)
    np.testing.assert_array_equal(mask, np.stack(per_body[expected])[:, KINECT_INDEX, 11] > 0)


def test_load_real_ntu(realdata_dir):
    d = _real_dir(realdata_dir)
    ds = ntu_rgbd.load_ntu_rgbd(d)  # default actions A1..A49 leave out A058
    assert list(ds.clip_ids) == [n for n in REAL_NAMES if int(n[-3:]) < 50]
    assert ds.class_names == ("A001", "A003", "A011", "A017", "A034")
    assert ds.keypoints.shape == (5, 300, 13, 2) and ds.mask.shape == (5, 300, 13)
    for i, name in enumerate(ds.clip_ids):
        s, c, p, r, a = (int(name[k + 1:k + 4]) for k in range(0, 20, 4))
        assert (ds.setups[i], ds.cameras[i], ds.performers[i], ds.replications[i], ds.actions[i]) == (s, c, p, r, a)
        assert ds.class_names[ds.labels[i]] == f"A{a:03d}"
        ref = _independent_parse(d / f"{name}.skeleton")
        assert ds.num_frames_original[i] == len(ref)
        color = np.stack([f[0][1][:, 5:7] for f in ref])[:, KINECT_INDEX]
        color = np.stack([1920.0 - color[..., 0], color[..., 1]], -1)  # un-mirrored
        t = len(ref)
        # Replay padding: output frame k is input frame k mod T.
        for k in (0, t - 1, t, 2 * t + 3, 299):
            np.testing.assert_allclose(ds.keypoints[i, k], color[k % t], rtol=1e-6)
    ds_all = ntu_rgbd.load_ntu_rgbd(d, actions=range(1, 61))
    assert len(ds_all) == 6 and ds_all.num_bodies.tolist() == [1, 1, 2, 1, 1, 1]
    assert ds_all.views.tolist() == [0, 0, 5, 0, 0, 2]  # C1R1 x4, C3R2, C2R1


def test_real_files_are_unmirrored_left_shoulder_on_image_right_when_facing(realdata_dir):
    """Facing check: in frames where the body faces the sensor, a camera image shows the person's left
    shoulder on the image RIGHT. Facing is read from the 3D joints without any handedness convention:
    the toes (FootLeft/FootRight) are nearer the camera than the ankles by > 3 cm on average."""
    d = _real_dir(realdata_dir)
    counts = []
    for name in REAL_NAMES:
        skel = ntu_skeleton.read_skeleton(d / f"{name}.skeleton")
        kp, mask, bid = ntu_rgbd.main_actor_keypoints_2d(skel)
        track = ntu_rgbd.body_joints(skel)[bid]
        xyz = track.joints[:, :, 0:3]
        toes_ahead = 0.5 * ((xyz[:, 15, 2] - xyz[:, 14, 2]) + (xyz[:, 19, 2] - xyz[:, 18, 2]))
        facing = toes_ahead < -0.03
        span = track.frame_indices - track.frame_indices[0]
        kp_facing = kp[span[facing]]
        left = profiles.JOINT_NAMES.index("left_shoulder")
        right = profiles.JOINT_NAMES.index("right_shoulder")
        counts.append((int(facing.sum()), int((kp_facing[:, left, 0] > kp_facing[:, right, 0]).sum())))
    assert sum(n for n, _ in counts) > 300  # enough facing frames for the check to mean something
    assert all(k == n for n, k in counts), counts  # 100%, as the raw files are 0%


# ----------------------------------------------------------------------------------------------------
# Malformed files.


def _lines(path):
    return path.read_bytes().decode().split("\r\n")


@pytest.mark.parametrize("case,pattern", [
    ("truncated", "unexpected end of file"),
    ("short_row", "must have 12 numbers"),
    ("non_numeric", "non-numeric value 'abc'"),
    ("joint_count", "joint count must be 25"),
    ("body_info", "must have 10 fields"),
    ("frame_count", "single integer"),
    ("trailing", "unexpected content after"),
    ("tracking_state", "trackingState must be 0, 1 or 2"),
])
def test_malformed_skeletons_name_file_and_line(tmp_path, case, pattern):
    rng = np.random.default_rng(0)
    skel = ntu_skeleton.NtuSkeleton(frames=[[_body(rng, 7, np.zeros(3))] for _ in range(3)])
    path = tmp_path / "S001C001P001R001A001.skeleton"
    ntu_skeleton.write_skeleton(path, skel)
    lines = _lines(path)
    # Layout: line 1 frame count; frame t starts at line 2 + 28 t (body count), info, joint count, 25 rows.
    if case == "truncated":
        text = "\r\n".join(lines[:40])
        bad_line = 41
    elif case == "short_row":
        lines[2 + 28 + 5] = " ".join(lines[2 + 28 + 5].split()[:11])
        text, bad_line = "\r\n".join(lines), 2 + 28 + 5 + 1
    elif case == "non_numeric":
        toks = lines[10].split()
        toks[3] = "abc"
        lines[10] = " ".join(toks)
        text, bad_line = "\r\n".join(lines), 11
    elif case == "joint_count":
        lines[3] = "24"
        text, bad_line = "\r\n".join(lines), 4
    elif case == "body_info":
        lines[2] = " ".join(lines[2].split()[:9])
        text, bad_line = "\r\n".join(lines), 3
    elif case == "frame_count":
        lines[0] = "3 4"
        text, bad_line = "\r\n".join(lines), 1
    elif case == "trailing":
        text, bad_line = "\r\n".join(lines[:-1] + ["garbage", ""]), len(lines)
    elif case == "tracking_state":
        toks = lines[6].split()
        toks[-1] = "5"
        lines[6] = " ".join(toks)
        text, bad_line = "\r\n".join(lines), 7
    path.write_bytes(text.encode())
    with pytest.raises(ValueError, match=pattern) as err:
        ntu_skeleton.read_skeleton(path)
    assert f"{path}:{bad_line}:" in str(err.value)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        ntu_skeleton.read_skeleton("/nonexistent/S001C001P001R001A001.skeleton")


# ----------------------------------------------------------------------------------------------------
# Writer.


def test_format_kinect_float_by_hand():
    cases = {7.257856e-05: "7.257856E-05", 0.0: "0", -0.0: "0", 3.6: "3.6", 276.0: "276",
             1036.233: "1036.233", -0.2059419: "-0.2059419", 12345678.0: "1.234568E+07",
             0.0001: "0.0001", float("nan"): "NaN", float("-inf"): "-Infinity"}
    for v, s in cases.items():
        assert ntu_skeleton.format_kinect_float(v) == s


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    frames = [[], [_body(rng, 11, np.array([0, 0, 3.0]))],
              [_body(rng, 11, np.array([0, 0, 3.0])), _body(rng, 12, np.array([1, 0, 3.0]))]]
    frames[2][1].joints[3, 11] = 0
    frames[2][1].clipped_edges = 4
    skel = ntu_skeleton.NtuSkeleton(frames=frames)
    path = tmp_path / "x" / "S001C001P001R001A001.skeleton"
    ntu_skeleton.write_skeleton(path, skel)
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == 1 + 3 + 3 * 27 and raw.endswith(b"\r\n") and b"\n\n" not in raw
    back = ntu_skeleton.read_skeleton(path)
    assert [len(f) for f in back.frames] == [0, 1, 2]
    for fa, fb in zip(frames, back.frames):
        for ba, bb in zip(fa, fb):
            assert ba.info() == bb.info()
            np.testing.assert_array_equal(ba.joints, bb.joints)
    tracks = ntu_rgbd.body_joints(back)
    assert list(tracks) == [11, 12]
    assert tracks[11].frame_indices.tolist() == [1, 2] and tracks[12].joints.shape == (1, 25, 12)


def test_writer_rejects_bad_bodies(tmp_path):
    rng = np.random.default_rng(2)
    body = _body(rng, 1, np.zeros(3))
    body.joints = body.joints[:24]
    with pytest.raises(ValueError, match="joints must have shape"):
        ntu_skeleton.write_skeleton(tmp_path / "a.skeleton", ntu_skeleton.NtuSkeleton([[body]]))
    body = _body(rng, 1, np.zeros(3))
    body.hand_left_state = 1.5
    with pytest.raises(ValueError, match="hand_left_state"):
        ntu_skeleton.write_skeleton(tmp_path / "a.skeleton", ntu_skeleton.NtuSkeleton([[body]]))


# ----------------------------------------------------------------------------------------------------
# Names, padding, main actor on synthetic tracks.


def test_filenames():
    n = ntu_rgbd.parse_ntu_filename("S017C003P020R002A060")
    assert n == ntu_rgbd.NtuName(setup=17, camera=3, performer=20, replication=2, action=60)
    assert ntu_rgbd.parse_ntu_filename("/a/b/S001C002P003R001A049.skeleton").action == 49
    assert ntu_rgbd.format_ntu_filename(17, 3, 20, 2, 60) == "S017C003P020R002A060"
    assert ntu_rgbd.format_ntu_filename(n, suffix=".skeleton") == "S017C003P020R002A060.skeleton"
    for bad in ("S01C003P020R002A060", "S017C003P020R002A06x", "foo", "S017C003P020R002A060.txt"):
        with pytest.raises(ValueError, match="NTU"):
            ntu_rgbd.parse_ntu_filename(bad)
    with pytest.raises(ValueError, match="0..999"):
        ntu_rgbd.format_ntu_filename(1, 2, 3000, 1, 1)


def test_replay_pad():
    kp = np.arange(3, dtype=np.float32)[:, None, None] * np.ones((3, 13, 2), np.float32)
    mask = np.array([1, 0, 1], np.float32)[:, None] * np.ones((3, 13), np.float32)
    out, m = ntu_rgbd.replay_pad(kp, mask, 8)
    assert out[:, 0, 0].tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert m[:, 0].tolist() == [1, 0, 1, 1, 0, 1, 1, 0]
    long = np.arange(310, dtype=np.float32)[:, None, None] * np.ones((310, 13, 2), np.float32)
    out, m = ntu_rgbd.replay_pad(long, np.ones((310, 13)), 300)
    assert out.shape == (300, 13, 2) and out[-1, 0, 0] == 299
    with pytest.raises(ValueError):
        ntu_rgbd.replay_pad(kp[:0], mask[:0], 5)


def _write_take(directory, name, rng, t=20, extra=None, gap=None):
    """One actor (id 100) walking with growing amplitude; ``extra`` adds other bodies per frame."""
    frames = []
    for k in range(t):
        if gap is not None and k in gap:
            frames.append([])
            continue
        body = _body(rng, 100, np.array([0.3 * np.sin(k / 3), 0, 3.0]))
        frames.append([body])
    for bid, frame_ids, amplitude in extra or ():
        for k in frame_ids:
            frames[k].append(_body(rng, bid, np.array([amplitude * (k % 2), 0, 3.0])))
    ntu_skeleton.write_skeleton(os.path.join(directory, name + ".skeleton"), ntu_skeleton.NtuSkeleton(frames))


def test_main_actor_rule_on_synthetic_tracks(tmp_path):
    rng = np.random.default_rng(3)
    # A short (5-frame) noise body moving a lot is ignored; a long, still second body loses to the actor.
    _write_take(tmp_path, "S001C001P001R001A001", rng,
                extra=[(200, range(5), 5.0), (300, range(20), 0.0)])
    skel = ntu_skeleton.read_skeleton(tmp_path / "S001C001P001R001A001.skeleton")
    assert ntu_rgbd.select_main_actor(skel) == 100
    assert ntu_rgbd.select_main_actor(skel, min_track_frames=1) == 200
    # A long second body that moves more wins.
    _write_take(tmp_path, "S001C001P001R001A002", rng, extra=[(300, range(20), 1.0)])
    assert ntu_rgbd.select_main_actor(ntu_skeleton.read_skeleton(tmp_path / "S001C001P001R001A002.skeleton")) == 300


def test_main_actor_span_and_gaps(tmp_path):
    rng = np.random.default_rng(4)
    _write_take(tmp_path, "S001C001P001R001A001", rng, t=12, gap={0, 1, 5, 11})
    skel = ntu_skeleton.read_skeleton(tmp_path / "S001C001P001R001A001.skeleton")
    kp, mask, bid = ntu_rgbd.main_actor_keypoints_2d(skel)
    assert bid == 100 and kp.shape == (9, 13, 2)  # frames 2..10
    assert mask[3].sum() == 0 and np.all(kp[3] == 0)  # frame 5 = span index 3 is a gap
    assert mask.sum() == 8 * 13
    with pytest.raises(ValueError, match="no body"):
        ntu_rgbd.main_actor_keypoints_2d(ntu_skeleton.NtuSkeleton([[], []], name="empty"))


# ----------------------------------------------------------------------------------------------------
# Loader on a synthetic directory.


def test_loader_synthetic_dir(tmp_path, caplog):
    rng = np.random.default_rng(5)
    names = ["S001C001P001R001A001", "S001C002P002R002A003", "S001C003P003R001A003", "S001C001P004R002A050",
             "S002C002P005R001A010"]
    for i, n in enumerate(names):
        _write_take(tmp_path, n, rng, t=10 + i)
    (tmp_path / "S003C001P001R001A002.skeleton").write_bytes(b"3\r\n1\r\n")  # truncated
    ntu_skeleton.write_skeleton(tmp_path / "S003C001P001R001A004.skeleton", ntu_skeleton.NtuSkeleton([[], []]))  # no body
    skip = tmp_path / "skip.txt"
    skip.write_text("# known bad\nS002C002P005R001A010\n\n")
    with pytest.raises(ValueError, match="S003C001P001R001A002.skeleton"):
        ntu_rgbd.load_ntu_rgbd(tmp_path, skip_list=skip)
    with caplog.at_level(logging.WARNING, logger="cv_mim.data.ntu_rgbd"):
        ds = ntu_rgbd.load_ntu_rgbd(tmp_path, skip_list=skip, skip_malformed=True, num_frames=30)
    assert "Skipped 2 malformed" in caplog.text
    assert ds.num_skipped == 2
    assert sorted(os.path.basename(p) for p, _ in ds.skipped) == ["S003C001P001R001A002.skeleton",
                                                                  "S003C001P001R001A004.skeleton"]
    assert ds.excluded == ["S002C002P005R001A010"]
    assert list(ds.clip_ids) == names[:3]  # A050 is outside A1..A49
    assert ds.class_names == ("A001", "A003") and ds.labels.tolist() == [0, 1, 1]
    assert ds.num_frames_original.tolist() == [10, 11, 12]
    assert ds.keypoints.shape == (3, 30, 13, 2)
    np.testing.assert_array_equal(ds.keypoints[0, 10:20], ds.keypoints[0, :10])  # replayed
    assert ds.cameras.tolist() == [1, 2, 3] and ds.replications.tolist() == [1, 2, 1]
    tr, te = ds.cross_subject_split()
    assert tr.tolist() == [0, 1] and te.tolist() == [2]  # performers 1, 2 train; 3 test
    sub = ds.subset(tr)
    assert len(sub) == 2 and sub.class_names == ds.class_names
    ds2 = ntu_rgbd.load_ntu_rgbd(tmp_path, skip_list=["S001C001P001R001A001"], skip_malformed=True,
                                 actions=[3], num_frames=5)
    assert list(ds2.clip_ids) == names[1:3] and ds2.class_names == ("A003",)
    assert ds2.excluded == []  # the listed sample is not an A003 take, so it is not even considered


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ntu_rgbd.load_ntu_rgbd(tmp_path / "none")
    (tmp_path / "badname.skeleton").write_text("0\r\n")
    with pytest.raises(ValueError, match="badname"):
        ntu_rgbd.load_ntu_rgbd(tmp_path)
    with pytest.raises(ValueError, match="no sample left"):
        ntu_rgbd.load_ntu_rgbd(tmp_path, skip_malformed=True)
    with pytest.raises(FileNotFoundError):
        ntu_rgbd.load_ntu_rgbd(tmp_path, skip_list=tmp_path / "nolist.txt")


# ----------------------------------------------------------------------------------------------------
# Splits on synthetic name lists.


def _all_names():
    return [ntu_rgbd.format_ntu_filename(1, c, p, r, a)
            for c, p, r, a in itertools.product((1, 2, 3), range(1, 41), (1, 2), (1, 7))]


def test_cross_subject_and_cross_view():
    names = _all_names()  # 3 cameras x 40 performers x 2 replications x 2 actions = 480
    train_p = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
    tr, te = ntu_rgbd.cross_subject_split(names)
    assert len(tr) == 20 * 12 and len(te) == 20 * 12
    assert all(int(names[i][9:12]) in train_p for i in tr)
    assert all(int(names[i][9:12]) not in train_p for i in te)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(len(names)))
    tr, te = ntu_rgbd.cross_view_split(names)
    assert {names[i][4:8] for i in tr} == {"C002", "C003"} and {names[i][4:8] for i in te} == {"C001"}
    assert len(tr) == 320 and len(te) == 160


def test_single_shot_splits():
    names = _all_names()
    cs_train, cs_test = ntu_rgbd.cross_subject_split(names)
    splits = ntu_rgbd.single_shot_splits(names)
    assert list(splits) == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2)]
    union = []
    for (cam, rep), sp in splits.items():
        assert len(sp.train) == 20 * 2  # 20 training performers x 2 actions
        for i in sp.train:
            n = ntu_rgbd.parse_ntu_filename(names[i])
            assert (n.camera, n.replication) == (cam, rep) and i in set(cs_train)
        np.testing.assert_array_equal(sp.test, cs_test)  # evaluated on the whole CS test set
        for i, v in zip(sp.test, sp.test_views):
            n = ntu_rgbd.parse_ntu_filename(names[i])
            assert ntu_rgbd.NTU_VIEW_NAMES[v] == f"C{n.camera}R{n.replication}"
        union.extend(sp.train.tolist())
    assert sorted(union) == cs_train.tolist()
    assert ntu_rgbd.view_index(3, 2) == 5
    with pytest.raises(ValueError):
        ntu_rgbd.view_index(4, 1)
