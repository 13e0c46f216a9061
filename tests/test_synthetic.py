"""Tests of the synthetic pose world (cv_mim/data/synthetic*.py, cv_mim/synthesize.py).

The files are read back with generic readers (np.load, scipy.io.loadmat, a strict text parser written
here), and geometric facts are checked against independent computations (the projection formula of the
cameras.json note, mirror symmetry, where the shoulders fall in each view).
"""
import dataclasses
import hashlib
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import scipy.io

from cv_mim.data import penn_action
from cv_mim.keypoints import normalization
from cv_mim.keypoints import profiles
from cv_mim.synthetic import body
from cv_mim.synthetic import capture
from cv_mim.synthetic import motions
from cv_mim.synthetic import world as world_mod

REPO = pathlib.Path(__file__).resolve().parents[1]
TESTDATA_WORLD = REPO / "testdata" / "synthetic_tiny"
# The official NTU RGB+D cross-subject training performers (Shahroudy et al. 2016).
NTU_TRAIN_PERFORMERS = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
PENN_KEYS = {"x", "y", "visibility", "action", "pose", "train", "nframes", "dimensions", "bbox"}


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    manifest = world_mod.generate_world(out, seed=0, size="tiny")
    return out, manifest


@pytest.fixture(scope="module")
def clean_world(tmp_path_factory):
    """Tiny world without noise, with more Penn clips for the geometry checks."""
    out = tmp_path_factory.mktemp("clean")
    manifest = world_mod.generate_world(out, seed=1, size="tiny", noise=False, penn_clips=128)
    return out, manifest


def _load_dict(path, key):
    with np.load(path, allow_pickle=True) as data:
        return data[key].item()


# --------------------------------------------------------------------------------------------
# Body model and motions.


def test_rest_pose_is_an_upright_person_facing_its_facing_direction():
    subject = body.default_subject(1.75)
    rest = np.array([[body.REST_POSE[n] for n in body.DOFS]])
    for facing in (0.0, 90.0):
        p = body.forward_kinematics(rest, subject, facing=facing)[0]
        get = lambda n: p[body.POINT_INDEX[n]]
        assert 1.55 < get("head_top")[2] < 1.75
        assert 0.85 < get("pelvis")[2] < 1.0
        assert abs(p[:, 2].min()) < 1e-9  # feet on the floor
        forward = np.array([np.cos(np.deg2rad(facing)), np.sin(np.deg2rad(facing)), 0.0])
        left = np.array([-forward[1], forward[0], 0.0])
        assert (get("l_shoulder") - get("r_shoulder")) @ left > 0.25
        assert (get("nose") - get("head_centre")) @ forward > 0.03
        assert (get("l_toe") - get("l_ankle")) @ forward > 0.1


def test_forward_kinematics_keeps_bone_lengths_over_a_take():
    subject = body.sample_subject(np.random.default_rng(3))
    take = motions.sample_take("golf_swing", np.random.default_rng(4), num_frames=60, fps=30)
    p = take.positions(subject)
    for a, b in (("l_knee", "l_ankle"), ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"),
                 ("pelvis", "spine"), ("l_hip", "l_knee")):
        length = np.linalg.norm(p[:, body.POINT_INDEX[a]] - p[:, body.POINT_INDEX[b]], axis=-1)
        assert np.ptp(length) < 1e-9
        assert 0.15 < length[0] < 0.6


def test_mirrored_take_is_the_mirror_image_of_the_right_handed_take():
    subject = body.default_subject()
    kwargs = dict(num_frames=40, fps=30, facing=0.0, variation=0.0, action_start=0.0)
    right = motions.sample_take("tennis_serve", np.random.default_rng(0), mirrored=False, **kwargs)
    left = motions.sample_take("tennis_serve", np.random.default_rng(0), mirrored=True, **kwargs)
    p_right, p_left = right.positions(subject), left.positions(subject)
    # Reflect y and swap the l_/r_ points.
    swap = [body.POINT_INDEX[("r_" + n[2:]) if n.startswith("l_") else ("l_" + n[2:])
                             if n.startswith("r_") else n] for n in body.BODY_POINTS]
    expected = p_right[:, swap] * np.array([1.0, -1.0, 1.0])
    np.testing.assert_allclose(p_left, expected, atol=1e-9)
    assert not np.allclose(p_left, p_right, atol=0.05)  # the serve is asymmetric


def test_joint_limits_are_enforced():
    take = motions.sample_take("pullup", np.random.default_rng(0), num_frames=50, fps=30,
                               variation=3.0)
    for name, (low, high) in body.JOINT_LIMITS.items():
        values = take.angles[:, body.DOF_INDEX[name]]
        assert values.min() >= low - 1e-9 and values.max() <= high + 1e-9, name


def test_arm_ik_reaches_its_target():
    subject = body.default_subject()
    for target, side in (((0.3, 0.05, -0.1), "l"), ((0.2, -0.3, 0.4), "r")):
        angles = dict(body.REST_POSE)
        angles.update(body.arm_ik(target, side))
        p = body.forward_kinematics(np.array([[angles[n] for n in body.DOFS]]), subject,
                                    ground="none")[0]
        wrist = p[body.POINT_INDEX[f"{side}_wrist"]] - p[body.POINT_INDEX["thorax"]]
        np.testing.assert_allclose(wrist, target, atol=1e-6)


def test_motion_library_covers_the_required_classes():
    assert len(motions.MOTIONS) >= 12
    assert set(motions.PENN_ACTIONS) <= set(motions.MOTIONS)
    assert sum(m.asymmetric for m in motions.MOTIONS.values()) >= 5
    assert all(1 <= code <= 49 for code in motions.NTU_ACTIONS)
    for name in motions.MOTIONS:
        take = motions.sample_take(name, np.random.default_rng(1), num_frames=20, fps=15,
                                   mode="sequence")
        assert np.all(np.isfinite(take.positions(body.default_subject())))


def test_view_label_bins():
    assert capture.view_label(0.0) == "front"
    assert capture.view_label(44.0) == "front" and capture.view_label(46.0) == "left"
    assert capture.view_label(90.0) == "left" and capture.view_label(-90.0) == "right"
    assert capture.view_label(180.0) == "back" and capture.view_label(-170.0) == "back"
    assert capture.view_label(360.0 + 100.0) == "left"


# --------------------------------------------------------------------------------------------
# Human3.6M layout.


def test_h36m_files_have_the_videopose3d_layout(tiny_world):
    out, manifest = tiny_world
    pos3d = _load_dict(out / "h36m" / "data_3d_h36m.npz", "positions_3d")
    pos2d = _load_dict(out / "h36m" / "data_2d_h36m_gt.npz", "positions_2d")
    meta = _load_dict(out / "h36m" / "data_2d_h36m_gt.npz", "metadata")
    cams = json.loads((out / "h36m" / "cameras.json").read_text())
    assert set(cams) >= {"_note", "camera_order", "intrinsics", "extrinsics"}
    assert sorted(pos3d) == sorted(pos2d) == ["S1", "S9"] == sorted(cams["extrinsics"])
    assert meta["num_joints"] == 17
    for subject, actions in pos3d.items():
        assert sorted(actions) == sorted(manifest["classes"]["h36m"])
        for action, pose in actions.items():
            assert re.fullmatch(r"[A-Z][A-Za-z]+ 1", action)
            assert pose.dtype == np.float32 and pose.shape == (30, 32, 3)
            assert -0.05 < pose[..., 2].min() < 0.1 and pose[..., 2].max() < 2.6  # metres, z up
            views = pos2d[subject][action]
            assert isinstance(views, list) and len(views) == len(cams["camera_order"]) == 4
            assert all(v.dtype == np.float32 and v.shape == (30, 17, 2) for v in views)
            # Joints the body does not model sit at their parent, as in the real files.
            for child, parent in ((11, 0), (16, 13), (24, 13), (20, 19), (23, 22), (28, 27), (31, 30)):
                np.testing.assert_array_equal(pose[:, child], pose[:, parent])


def _project_from_note(points_m, cam_json, intr):
    """Independent projection with the formula written in cameras.json's _note."""
    R, t = np.asarray(cam_json["R"]), np.asarray(cam_json["t"])
    X = points_m * 1000.0 @ R.T + t
    x, y = X[..., 0] / X[..., 2], X[..., 1] / X[..., 2]
    k1, k2, k3 = intr["k"]
    p1, p2 = intr["p"]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    tan = p1 * y + p2 * x
    xd, yd = x * (radial + tan) + p2 * r2, y * (radial + tan) + p1 * r2
    return np.stack([intr["f"][0] * xd + intr["c"][0], intr["f"][1] * yd + intr["c"][1]], -1)


@pytest.mark.parametrize("world", ["clean_world", "tiny_world"])
def test_projection_of_the_3d_reproduces_the_2d(world, request):
    out, manifest = request.getfixturevalue(world)
    pos3d = _load_dict(out / "h36m" / "data_3d_h36m.npz", "positions_3d")
    pos2d = _load_dict(out / "h36m" / "data_2d_h36m_gt.npz", "positions_2d")
    cams = json.loads((out / "h36m" / "cameras.json").read_text())
    errors, inside = [], []
    for subject, actions in pos3d.items():
        for action, pose in actions.items():
            joints17 = pose[:, list(profiles.H36M32_TO_H36M17)].astype(np.float64)
            for cam_id, view in zip(cams["camera_order"], pos2d[subject][action]):
                proj = _project_from_note(joints17, cams["extrinsics"][subject][cam_id],
                                          cams["intrinsics"][cam_id])
                inside.append(np.all((proj > 0) & (proj < 1000), axis=-1).ravel())
                errors.append(np.linalg.norm(proj - view, axis=-1).ravel())
    errors = np.concatenate(errors)
    assert np.mean(np.concatenate(inside)) > 0.99  # the people stay in the 1000 x 1000 images
    if manifest["noise"]:
        assert 1.0 < np.median(errors) < 15.0  # detector-like noise of a few pixels
    else:
        assert errors.max() < 0.01


# --------------------------------------------------------------------------------------------
# Penn Action layout.


def test_penn_files_load_with_the_real_fields_and_dtypes(tiny_world):
    out, manifest = tiny_world
    files = sorted((out / "penn_action" / "labels").glob("*.mat"))
    infos = {c["clip_id"]: c for c in manifest["penn_action"]["clips"]}
    assert [f.stem for f in files] == [f"{i:04d}" for i in range(1, len(files) + 1)]
    assert len(files) == manifest["counts"]["penn_action"]["clips"] == 64
    seen = set()
    for f in files:
        m = scipy.io.loadmat(f)
        assert PENN_KEYS <= set(m)
        t = m["x"].shape[0]
        assert m["x"].dtype == m["y"].dtype == np.float64 and m["x"].shape == m["y"].shape == (t, 13)
        assert m["visibility"].dtype == np.uint8 and set(np.unique(m["visibility"])) <= {0, 1}
        assert m["train"].dtype == np.int32 and int(m["train"][0, 0]) in (1, -1)
        assert int(m["nframes"][0, 0]) == t and m["nframes"].dtype.kind == "u"
        assert m["dimensions"].dtype == np.uint16
        height, width, frames = (int(v) for v in m["dimensions"][0])
        assert frames == t
        assert m["bbox"].shape == (t, 4)
        assert (m["x"] >= 0).all() and (m["x"] <= width).all()
        assert (m["y"] >= 0).all() and (m["y"] <= height).all()
        action, view = str(m["action"][0]), str(m["pose"][0])
        info = infos[f.stem]
        assert (action, view, int(m["train"][0, 0]) == 1) == (info["action"], info["view"],
                                                                 info["train"])
        assert capture.view_label(info["relative_azimuth_deg"]) == view
        seen.add((action, view, info["train"]))
    # Every class is seen from every view, in both splits.
    assert len(seen) == len(manifest["classes"]["penn_action"]) * 4 * 2


def test_penn_view_labels_match_the_image_geometry(clean_world):
    out, manifest = clean_world
    names = profiles.PENN13_JOINT_NAMES
    ls, rs = names.index("left_shoulder"), names.index("right_shoulder")
    lh, rh = names.index("left_hip"), names.index("right_hip")
    left_on_right = {v: [] for v in world_mod.VIEWS}
    width_ratio = {v: [] for v in world_mod.VIEWS}
    # Actions that do not turn the body away from its facing direction (a tennis serve starts
    # side-on to the net, a golf swing twists the chest by ~90 deg).
    upright = [c for c in manifest["penn_action"]["clips"] if c["action"] in ("squat", "jumping_jacks")]
    assert len(upright) >= 32
    for info in upright:
        m = scipy.io.loadmat(out / "penn_action" / "labels" / f"{info['clip_id']}.mat")
        x, y = m["x"], m["y"]
        # Noise off: only joints that leave the image are marked invisible (rare, as in the real files).
        assert m["visibility"].mean() > 0.8
        left_on_right[info["view"]].append(np.mean(x[:, ls] > x[:, rs]))
        torso = np.hypot(x[:, ls] + x[:, rs] - x[:, lh] - x[:, rh],
                         y[:, ls] + y[:, rs] - y[:, lh] - y[:, rh]) / 2  # shoulder-hip midpoints
        width_ratio[info["view"]].append(np.median(np.abs(x[:, ls] - x[:, rs]) / torso))
    # Front: the subject's left shoulder is on the image right; back: on the image left.
    assert np.mean(left_on_right["front"]) > 0.85
    assert np.mean(left_on_right["back"]) < 0.15
    # Side views foreshorten the shoulders.
    assert np.median(width_ratio["left"] + width_ratio["right"]) < 0.6 * np.median(
        width_ratio["front"] + width_ratio["back"])


# --------------------------------------------------------------------------------------------
# NTU RGB+D layout.


def _strict_parse_skeleton(path):
    """Independent strict parser: returns (frames, 25, 12) float array and the body-info rows."""
    raw = path.read_bytes()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    lines = raw.decode("ascii").split("\r\n")[:-1]
    pos = 0
    num_frames = int(lines[pos]); pos += 1
    joints, infos = [], []
    for _ in range(num_frames):
        assert lines[pos] == "1"; pos += 1
        info = lines[pos].split(); pos += 1
        assert len(info) == 10
        infos.append(info)
        assert lines[pos] == "25"; pos += 1
        rows = []
        for _ in range(25):
            tokens = lines[pos].split(" "); pos += 1
            assert len(tokens) == 12 and re.fullmatch(r"[012]", tokens[11])
            rows.append([float(v) for v in tokens])
        joints.append(rows)
    assert pos == len(lines)
    return np.asarray(joints), infos


def test_ntu_files_parse_strictly_and_their_2d_matches_the_3d(tiny_world):
    out, manifest = tiny_world
    files = sorted((out / "ntu_rgbd" / "nturgb+d_skeletons").glob("*.skeleton"))
    assert len(files) == manifest["counts"]["ntu_rgbd"]["files"] == 24
    for f in files[:12]:
        joints, infos = _strict_parse_skeleton(f)
        assert all(int(i[0]) > 2 ** 56 and i[9] == "2" for i in infos)
        x, y, z = joints[..., 0], joints[..., 1], joints[..., 2]
        assert (z > 1.5).all() and (z < 5.0).all()
        # Kinect camera space -> colour / depth pixels with the documented intrinsics (mirrored x).
        np.testing.assert_allclose(joints[..., 5], 960 + 1050 * x / z, atol=0.02)
        np.testing.assert_allclose(joints[..., 6], 540 - 1050 * y / z, atol=0.02)
        np.testing.assert_allclose(joints[..., 3], 258 + 366 * x / z, atol=0.02)
        np.testing.assert_allclose(joints[..., 4], 209 - 366 * y / z, atol=0.02)
        quat = joints[..., 7:11]
        leaf = [3, 15, 19, 21, 22, 23, 24]
        assert (quat[:, leaf] == 0).all()
        np.testing.assert_allclose(np.linalg.norm(np.delete(quat, leaf, axis=1), axis=-1), 1.0,
                                   atol=1e-5)
        assert set(np.unique(joints[..., 11])) <= {1.0, 2.0}


def test_ntu_file_names_carry_the_setup_camera_performer_replication_action(tiny_world):
    out, manifest = tiny_world
    stems = [f.stem for f in (out / "ntu_rgbd" / "nturgb+d_skeletons").glob("*.skeleton")]
    fields = [tuple(int(g) for g in re.fullmatch(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})", s).groups())
              for s in stems]
    assert {f[1] for f in fields} == {1, 2, 3} and {f[3] for f in fields} == {1, 2}
    assert all(1 <= f[4] <= 49 for f in fields)
    performers = {f[2] for f in fields}
    assert performers & NTU_TRAIN_PERFORMERS and performers - NTU_TRAIN_PERFORMERS
    takes = {}
    for f in fields:
        takes.setdefault((f[0], f[2], f[3], f[4]), []).append(f[1])
    assert all(sorted(c) == [1, 2, 3] for c in takes.values())
    info = {i["name"]: i for i in manifest["ntu_rgbd"]["files"]}
    assert sorted(info) == sorted(stems)


def test_ntu_replications_face_the_side_cameras(clean_world):
    out, _ = clean_world
    folder = out / "ntu_rgbd" / "nturgb+d_skeletons"
    depth_front, depth_side = [], []
    for replication, faced, side in ((1, 2, 3), (2, 3, 2)):
        paths = sorted(folder.glob(f"*C{faced:03d}P*R{replication:03d}A*.skeleton"))
        assert paths
        for path in paths:
            front, _ = _strict_parse_skeleton(path)
            other, _ = _strict_parse_skeleton(pathlib.Path(str(path).replace(f"C{faced:03d}",
                                                                              f"C{side:03d}")))
            # Facing the camera: the left shoulder (Kinect joint 4) is on the camera's right, i.e.
            # at smaller Kinect x (x = camera's left), and both shoulders are at similar depth.
            assert np.median(front[:, 4, 0] - front[:, 8, 0]) < -0.15
            depth_front.append(np.median(np.abs(front[:, 4, 2] - front[:, 8, 2])))
            depth_side.append(np.median(np.abs(other[:, 4, 2] - other[:, 8, 2])))
    # Seen from the side camera (90 deg away) the shoulders are at very different depths.
    assert np.median(depth_front) < 0.1 and np.median(depth_side) > 0.2


# --------------------------------------------------------------------------------------------
# The whole world.


def _digest(folder: pathlib.Path) -> str:
    """Hash of every array / text in a world (npz and mat containers embed timestamps)."""
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.suffix == ".npz":
            for key in ("positions_3d", "positions_2d"):
                with np.load(f, allow_pickle=True) as data:
                    if key in data:
                        d = data[key].item()
                        for s in sorted(d):
                            for a in sorted(d[s]):
                                for arr in (d[s][a] if isinstance(d[s][a], list) else [d[s][a]]):
                                    h.update(np.ascontiguousarray(arr).tobytes())
        elif f.suffix == ".mat":
            m = scipy.io.loadmat(f)
            for key in sorted(PENN_KEYS):
                h.update(np.ascontiguousarray(m[key]).tobytes())
        elif f.suffix in (".skeleton", ".json"):
            h.update(f.read_bytes())
    return h.hexdigest()


def test_same_seed_same_world_other_seed_other_world(tmp_path, tiny_world):
    out, _ = tiny_world
    world_mod.generate_world(tmp_path / "again", seed=0, size="tiny")
    world_mod.generate_world(tmp_path / "other", seed=1, size="tiny")
    assert _digest(tmp_path / "again") == _digest(out)
    assert _digest(tmp_path / "other") != _digest(out)


def test_penn_invisible_joints_are_annotated_or_parked_like_the_real_files(tiny_world):
    """Occluded joints keep an annotated position near the body; out-of-frame joints are parked at the
    (0.75, 0.75) placeholder, and the loader's default rule treats exactly those as missing."""
    out, _ = tiny_world
    parked = annotated = invisible = 0
    dists = []  # annotated invisible joints: distance from the visible joints' centre / their extent
    for f in sorted((out / "penn_action" / "labels").glob("*.mat")):
        clip = penn_action.read_penn_mat(f)
        at_corner = (clip.x == 0.75) & (clip.y == 0.75)
        assert not (at_corner & (clip.visibility > 0)).any()
        np.testing.assert_array_equal(clip.placeholder(), at_corner)
        hidden = (clip.visibility == 0) & ~at_corner
        parked += int(at_corner.sum())
        annotated += int(hidden.sum())
        invisible += int((clip.visibility == 0).sum())
        vis = clip.visibility > 0
        for t in np.flatnonzero(hidden.any(1) & (vis.sum(1) >= 4)):
            cx, cy = clip.x[t, vis[t]].mean(), clip.y[t, vis[t]].mean()
            extent = max(np.ptp(clip.x[t, vis[t]]), np.ptp(clip.y[t, vis[t]]))
            dists.extend(np.hypot(clip.x[t, hidden[t]] - cx, clip.y[t, hidden[t]] - cy) / extent)
        mask = penn_action.joint_mask(clip)
        np.testing.assert_array_equal(mask, (~at_corner).astype(np.float32))
    assert parked > 0 and invisible == parked + annotated and annotated > 0.5 * invisible
    # Near the body, as on the real sample (median 0.35, 99th percentile 1.84 there).
    assert np.median(dists) < 0.6 and np.percentile(dists, 99) < 2.5, np.percentile(dists, [50, 99])


def _numbers(folder: pathlib.Path) -> dict:
    """{relative file: float64 vector of every number in it} (text tokens that are not numbers are
    kept as a hash), for comparing two worlds up to floating-point round-off."""
    out = {}
    for f in sorted(folder.rglob("*")):
        if not f.is_file():
            continue
        rel = str(f.relative_to(folder))
        if f.suffix in (".npz", ".mat"):
            arrays = list(_arrays(f))
            nums = [np.ravel(a).astype(np.float64) for a in arrays if a.dtype.kind in "biuf"]
            text = [str(a.tolist()) for a in arrays if a.dtype.kind not in "biuf"]
            out[rel] = (np.concatenate(nums or [np.zeros(0)]),
                        hashlib.sha256(" ".join(text).encode()).hexdigest())
        elif f.suffix in (".skeleton", ".json"):
            tokens = re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[A-Za-z_]\w*",
                                f.read_text(encoding="utf-8"))
            nums = [float(t) for t in tokens if not t[0].isalpha() and t[0] != "_"]
            words = [t for t in tokens if t[0].isalpha() or t[0] == "_"]
            out[rel] = (np.array(nums), hashlib.sha256(" ".join(words).encode()).hexdigest())
    return out


def _arrays(f: pathlib.Path):
    if f.suffix == ".npz":
        with np.load(f, allow_pickle=True) as data:
            for key in ("positions_3d", "positions_2d"):
                if key in data:
                    d = data[key].item()
                    for s in sorted(d):
                        for a in sorted(d[s]):
                            yield from (d[s][a] if isinstance(d[s][a], list) else [d[s][a]])
    else:
        m = scipy.io.loadmat(f)
        for key in sorted(PENN_KEYS):
            yield m[key]


def test_testdata_world_is_current():
    """testdata/synthetic_tiny must equal what the code generates (see testdata/README.md), up to
    round-off: numpy releases differ in the last bit of some transcendental functions (seen: 1 ulp in
    camera rotations between numpy versions), which an exact digest would report as a stale world."""
    if not TESTDATA_WORLD.is_dir():
        pytest.fail(f"{TESTDATA_WORLD} is missing; regenerate it as testdata/README.md says")
    manifest = json.loads((TESTDATA_WORLD / "manifest.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        world_mod.generate_world(tmp, seed=manifest["seed"], size=manifest["size"],
                                 noise=manifest["noise"])
        fresh, stored = _numbers(pathlib.Path(tmp)), _numbers(TESTDATA_WORLD)
    stale = "testdata/synthetic_tiny is stale: regenerate it as testdata/README.md says"
    assert sorted(fresh) == sorted(stored), stale
    for rel in fresh:
        a, b = fresh[rel], stored[rel]
        if isinstance(a, tuple):
            assert a[1] == b[1], f"{stale} ({rel}: text differs)"
            a, b = a[0], b[0]
        assert a.shape == b.shape, f"{stale} ({rel}: {a.shape} vs {b.shape} numbers)"
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=f"{stale} ({rel})")


def test_manifest_and_counts(tiny_world):
    out, manifest = tiny_world
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["seed"] == 0 and on_disk["size"] == "tiny" and on_disk["noise"] is True
    assert on_disk["counts"]["penn_action"]["per_view"] == {v: 16 for v in world_mod.VIEWS}
    assert on_disk["h36m"]["train_subjects"] == ["S1"] and on_disk["h36m"]["test_subjects"] == ["S9"]
    assert on_disk["frames"]["h36m"] == 2 * 4 * 30


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="size"):
        world_mod.generate_world(tmp_path / "a", size="huge")
    with pytest.raises(ValueError, match="formats"):
        world_mod.generate_world(tmp_path / "b", size="tiny", formats=("kinetics",))
    with pytest.raises(ValueError, match="num_subjects"):
        world_mod.generate_world(tmp_path / "c", size="tiny", num_subjects=12)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        world_mod.generate_world(tmp_path / "d", size="tiny")
    assert (tmp_path / "d" / "precious.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="unknown motion"):
        motions.sample_take("moonwalk", np.random.default_rng(0), num_frames=5, fps=10)
    with pytest.raises(ValueError, match=r"\(T, "):
        body.forward_kinematics(np.zeros((3, 5)), body.default_subject())
    with pytest.raises(ValueError, match="finite"):
        capture.view_label(float("nan"))
    with pytest.raises(ValueError, match="straight up or down"):
        capture.look_at_camera("c", (0, 0, 3), (0, 0, 1), focal=1000, image_size=(100, 100))


def test_num_subjects_keeps_a_held_out_subject(tmp_path):
    manifest = world_mod.generate_world(tmp_path, size="tiny", num_subjects=3, formats=("h36m",))
    assert manifest["h36m"]["train_subjects"] == ["S1", "S5"]
    assert manifest["h36m"]["test_subjects"] == ["S9"]
    assert not (tmp_path / "penn_action").exists()


def _pair_angles(cams):
    """Angles (degrees) between the optical axes of every camera pair of one rig."""
    axes = [np.asarray(c.R)[2] for c in cams]
    return [float(np.degrees(np.arccos(np.clip(axes[i] @ axes[j], -1.0, 1.0))))
            for i in range(len(axes)) for j in range(i + 1, len(axes))]


def test_random_rig_shows_every_pair_angle_and_room_rig_is_unchanged():
    subjects = tuple(world_mod._H36M_SUBJECT_ORDER)
    size = world_mod.WorldSize(h36m_subjects=subjects, h36m_actions=("walk",), h36m_frames=4)
    room = world_mod.generate_h36m(0, size, noise=False)
    rand = world_mod.generate_h36m(0, dataclasses.replace(size, h36m_rig="random"), noise=False)
    room_angles = np.concatenate([_pair_angles(room.cameras[s]) for s in subjects])
    rand_angles = np.concatenate([_pair_angles(rand.cameras[s]) for s in subjects])
    # The room's square never shows the real rig's ~45° pairs; the random rig covers 25°..180°.
    assert room_angles.min() > 55.0
    assert rand_angles.min() > 15.0
    counts, _ = np.histogram(rand_angles, bins=[0, 60, 120, 181])
    assert np.all(counts >= 8), counts
    # The same subject's 3D take does not depend on the rig; its 2D does.
    np.testing.assert_array_equal(room.positions_3d["S1"]["Walk 1"], rand.positions_3d["S1"]["Walk 1"])
    assert not np.allclose(room.positions_2d["S1"]["Walk 1"][0], rand.positions_2d["S1"]["Walk 1"][0])


def test_several_takes_per_action_keep_take_one():
    size = world_mod.WorldSize(h36m_subjects=("S1", "S10"), h36m_actions=("walk", "squat"),
                               h36m_frames=6)
    one = world_mod.generate_h36m(3, size, noise=True)
    two = world_mod.generate_h36m(3, dataclasses.replace(size, h36m_takes=2), noise=True)
    assert sorted(two.positions_3d["S10"]) == ["Squat 1", "Squat 2", "Walk 1", "Walk 2"]
    for subject in ("S1", "S10"):
        for name in ("Walk 1", "Squat 1"):
            np.testing.assert_array_equal(one.positions_3d[subject][name], two.positions_3d[subject][name])
            np.testing.assert_array_equal(one.positions_2d[subject][name][2],
                                          two.positions_2d[subject][name][2])
    assert not np.allclose(two.positions_3d["S1"]["Walk 1"], two.positions_3d["S1"]["Walk 2"])
    with pytest.raises(ValueError, match="h36m_rig"):
        world_mod.generate_world(tempfile.mkdtemp(), size="tiny", h36m_rig="dome")
    with pytest.raises(ValueError, match="h36m_takes"):
        world_mod.generate_world(tempfile.mkdtemp(), size="tiny", h36m_takes=0)


def test_free_gestures_are_new_varied_standing_poses_and_leave_the_scripted_takes_alone():
    size = world_mod.WorldSize(h36m_subjects=("S1", "S9"), h36m_actions=("walk", "pointing"),
                               h36m_frames=40)
    plain = world_mod.generate_h36m(4, size, noise=True)
    free = world_mod.generate_h36m(4, dataclasses.replace(size, h36m_free_takes=3), noise=True)
    assert sorted(free.positions_3d["S9"]) == ["Gestures 1", "Gestures 2", "Gestures 3", "Pointing 1",
                                               "Walk 1"]
    for subject in ("S1", "S9"):  # the scripted takes are array-for-array the same
        for name in ("Walk 1", "Pointing 1"):
            np.testing.assert_array_equal(plain.positions_3d[subject][name],
                                          free.positions_3d[subject][name])
            np.testing.assert_array_equal(plain.positions_2d[subject][name][1],
                                          free.positions_2d[subject][name][1])
    takes = [t for t in free.takes if t["action"].startswith("Gestures")]
    assert len(takes) == 6 and {t["motion"] for t in takes} == {motions.FREE_GESTURE}
    # Every take is a different motion: its poses differ from the other takes' (not one gesture
    # repeated), and from subject to subject.
    g = [free.positions_3d["S1"][f"Gestures {k}"] for k in (1, 2, 3)] + [
        free.positions_3d["S9"]["Gestures 1"]]
    for i in range(len(g)):
        for j in range(i):
            assert np.abs(g[i] - g[j]).mean() > 0.02
    # Standing on the floor (z up, metres), hands away from the rest pose much of the time.
    for k in (1, 2, 3):
        pose = free.positions_3d["S1"][f"Gestures {k}"]
        feet = pose[:, [profiles.H36M32_JOINT_NAMES.index(n) for n in ("RToe", "LToe")]]
        assert np.all(feet[..., 2].min(axis=1) < 0.08) and np.all(feet[..., 2].min(axis=1) > -0.02)
        assert np.all(np.isfinite(free.positions_2d["S1"][f"Gestures {k}"][0]))
    # The drawn keyframes are inside the wide ranges and, once varied, inside the joint limits.
    rng = np.random.default_rng(7)
    for _ in range(20):
        motion = motions.random_gesture_motion(rng)
        times, keyframes = motion.keyframe_array()
        assert 4 <= len(times) <= 7 and np.all(np.diff(times) > 0)
        arm = keyframes[:-1, body.DOF_INDEX["r_sh_flex"]]
        assert np.all((arm >= -40) & (arm <= 170))
        take = motions.sample_take(motion, rng, num_frames=30, fps=15, mode="sequence")
        assert take.motion == motions.FREE_GESTURE
        for name, (low, high) in body.JOINT_LIMITS.items():
            values = take.angles[:, body.DOF_INDEX[name]]
            assert values.min() >= low - 1e-9 and values.max() <= high + 1e-9, name
    first = motions.random_gesture_motion(np.random.default_rng(3))
    assert first == motions.random_gesture_motion(np.random.default_rng(3))  # seeded
    manifest = world_mod.generate_world(tempfile.mkdtemp(), size="tiny", formats=("h36m",),
                                        h36m_free_takes=2)
    assert manifest["classes"]["h36m"][-2:] == ["Gestures 1", "Gestures 2"]
    assert world_mod.SIZES["varied"].h36m_free_takes == len(motions.MOTIONS)
    assert dataclasses.replace(world_mod.SIZES["varied"], h36m_free_takes=0) == world_mod.SIZES["default"]
    with pytest.raises(ValueError, match="h36m_free_takes"):
        world_mod.generate_world(tempfile.mkdtemp(), size="tiny", h36m_free_takes=-1)


def test_command_line_binary(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cv_mim.synthesize", f"--output_dir={tmp_path / 'w'}", "--size=tiny",
         "--seed=2", "--formats=penn_action", "--penn_clips=8"],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "penn_action: 8 clips" in result.stdout
    assert len(list((tmp_path / "w" / "penn_action" / "labels").glob("*.mat"))) == 8
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["seed"] == 2


# --------------------------------------------------------------------------------------------
# The phenomenon the paper studies: 2D poses depend on the view.


def _clip_features(x, y, visibility, segments=4):
    """Masked temporal means over `segments` equal parts plus the temporal std of the normalised
    canonical 2D joints."""
    kp13, mask = profiles.convert_keypoints(np.stack([x, y], -1), "penn13", scores=visibility)
    norm, _, _ = normalization.normalize_keypoints_2d(kp13, mask)
    norm = np.asarray(norm, np.float64)
    w = np.asarray(mask, np.float64)[..., None]
    bounds = np.linspace(0, len(norm), segments + 1).astype(int)
    parts = [((norm[a:b] * w[a:b]).sum(0) / np.maximum(w[a:b].sum(0), 1)).ravel()
             for a, b in zip(bounds[:-1], bounds[1:])]
    mean = (norm * w).sum(0) / np.maximum(w.sum(0), 1)
    std = np.sqrt(((norm - mean) ** 2 * w).sum(0) / np.maximum(w.sum(0), 1))
    return np.concatenate(parts + [std.ravel()])


def _softmax_regression(x, labels, num_classes, l2=1e-2, steps=300, lr=0.5):
    weights, bias = np.zeros((x.shape[1], num_classes)), np.zeros(num_classes)
    onehot = np.eye(num_classes)[labels]
    for _ in range(steps):
        logits = x @ weights + bias
        prob = np.exp(logits - logits.max(1, keepdims=True))
        prob /= prob.sum(1, keepdims=True)
        grad = (prob - onehot) / len(x)
        weights -= lr * (x.T @ grad + l2 * weights)
        bias -= lr * grad.sum(0)
    return weights, bias


@pytest.mark.slow
def test_single_view_classifier_loses_on_other_views(tmp_path):
    """Trained on one view's clips, a classifier of raw normalised 2D poses is far above chance on
    held-out clips of that view and clearly worse on the other views (paper §4.1, single-shot
    cross-view setting)."""
    world_mod.generate_world(tmp_path, seed=0, formats=("penn_action",))
    clips = [scipy.io.loadmat(f) for f in sorted((tmp_path / "penn_action" / "labels").glob("*.mat"))]
    feats = np.stack([_clip_features(m["x"], m["y"], m["visibility"]) for m in clips])
    actions = sorted({str(m["action"][0]) for m in clips})
    labels = np.array([actions.index(str(m["action"][0])) for m in clips])
    views = np.array([str(m["pose"][0]) for m in clips])
    train = np.array([int(m["train"][0, 0]) == 1 for m in clips])
    chance = 1.0 / len(actions)
    table = {}
    for train_view in world_mod.VIEWS:
        fit = train & (views == train_view)
        mu, sd = feats[fit].mean(0), feats[fit].std(0) + 1e-6
        z = (feats - mu) / sd
        weights, bias = _softmax_regression(z[fit], labels[fit], len(actions))
        for test_view in world_mod.VIEWS:
            held = ~train & (views == test_view)
            table[train_view, test_view] = np.mean((z[held] @ weights + bias).argmax(1) == labels[held])
    for v in world_mod.VIEWS:
        same = table[v, v]
        cross = np.mean([table[v, w] for w in world_mod.VIEWS if w != v])
        assert same > 3 * chance, (v, table)
        assert cross < same - 0.15, (v, table)
    print("\n| train \\ test | " + " | ".join(world_mod.VIEWS) + " |")
    for v in world_mod.VIEWS:
        print(f"| {v} | " + " | ".join(f"{100 * table[v, w]:.1f}" for w in world_mod.VIEWS) + " |")
