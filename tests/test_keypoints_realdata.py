"""Checks of the joint-layout decisions in cv_mim/keypoints/profiles.py against the real data samples.

* Penn Action: which joint of each left/right pair is the person's left is decided from the label files
  (the dataset's README lists "left" first; the labels say otherwise). Two independent lines of evidence:
  the image x-order of shoulders and hips in front- vs back-view clips, and — not relying on the view
  labels at all — knee direction (knees point forward) plus occlusion (the far side is less often visible)
  in side-view clips.
* Human3.6M 32 joints: left/right names agree with anatomy (left = up x forward, with the foot-to-toe
  direction as forward in the z-up world frame), and "Head" is the head-top.
* NTU RGB+D (Kinect v2): Kinect's Left joints are anatomical left in its right-handed camera space.
All skip cleanly when ../shared/realdata is absent (``realdata_dir`` fixture).
"""
import numpy as np
import pytest

from cv_mim.keypoints import normalization
from cv_mim.keypoints import profiles

scipy_io = pytest.importorskip("scipy.io")

PAIRS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")


def _penn_clips(realdata_dir):
    files = sorted((realdata_dir / "penn_action" / "labels").glob("*.mat"))
    if not files:
        pytest.skip("no Penn Action label files in the real-data samples")
    clips = []
    for f in files:
        m = scipy_io.loadmat(str(f))
        clips.append(
            {
                "view": str(np.ravel(m["pose"])[0]).strip(),
                "x": np.asarray(m["x"], float),
                "y": np.asarray(m["y"], float),
                "vis": np.asarray(m["visibility"]).astype(bool),
            }
        )
    return clips


def _penn(name):
    return profiles.PENN13_JOINT_NAMES.index(name)


def _fraction_left_has_larger_x(clips, view, part):
    """Over visible frames of `view` clips: fraction where the (decided) left joint has the larger x."""
    left, right = _penn("left_" + part), _penn("right_" + part)
    hits = total = 0
    for c in clips:
        if c["view"] != view:
            continue
        ok = c["vis"][:, left] & c["vis"][:, right]
        hits += int(np.sum(c["x"][ok, left] > c["x"][ok, right]))
        total += int(ok.sum())
    return hits / max(total, 1), total


def test_penn_order_front_back_views(realdata_dir):
    clips = _penn_clips(realdata_dir)
    # A person facing the camera ("front") has the anatomical left on the image's right (larger x);
    # seen from behind ("back") the other way round.
    for part in ("shoulder", "hip"):
        front, n_front = _fraction_left_has_larger_x(clips, "front", part)
        back, n_back = _fraction_left_has_larger_x(clips, "back", part)
        assert n_front > 200 and n_back > 200
        assert front > 0.8, (part, front)
        assert back < 0.2, (part, back)


def test_penn_order_side_views_knee_direction_and_occlusion(realdata_dir):
    clips = _penn_clips(realdata_dir)
    left_side = [_penn("left_" + p) for p in PAIRS]
    right_side = [_penn("right_" + p) for p in PAIRS]
    support = against = 0
    for c in clips:
        if c["view"] not in ("left", "right"):
            continue
        x, y, vis = c["x"], c["y"], c["vis"]
        crosses = []
        for side in ("left", "right"):
            h, k, a = _penn(side + "_hip"), _penn(side + "_knee"), _penn(side + "_ankle")
            ok = vis[:, h] & vis[:, k] & vis[:, a]
            vx, vy = x[ok, a] - x[ok, h], y[ok, a] - y[ok, h]
            wx, wy = x[ok, k] - x[ok, h], y[ok, k] - y[ok, h]
            cross = vx * wy - vy * wx
            bent = np.abs(cross) > 0.1 * (vx**2 + vy**2)  # clearly bent knee
            crosses.append(cross[bent])
        cross = np.concatenate(crosses)
        vis_left, vis_right = vis[:, left_side].mean(), vis[:, right_side].mean()
        if cross.size == 0 or vis_left == vis_right:
            continue
        # Image x right, y down: the knee (which points forward) on the negative-cross side of the
        # hip->ankle axis means the person faces image-right, i.e. their RIGHT side is towards the camera
        # (valid for any in-plane rotation of the body).
        right_near = np.mean(cross < 0) > 0.5
        if right_near == (vis_right > vis_left):
            support += 1
        else:
            against += 1
    assert support + against >= 20
    assert support >= 3 * against, (support, against)


def test_penn_view_labels_match_decided_sides(realdata_dir):
    # In "left"-view clips the camera sees the person's left side, so the decided left joints are the
    # more visible (near) ones; in "right"-view clips the right joints.
    clips = _penn_clips(realdata_dir)
    left_side = [_penn("left_" + p) for p in PAIRS]
    right_side = [_penn("right_" + p) for p in PAIRS]
    votes = {"left": [0, 0], "right": [0, 0]}
    for c in clips:
        if c["view"] in votes:
            vl, vr = c["vis"][:, left_side].mean(), c["vis"][:, right_side].mean()
            if vl != vr:
                votes[c["view"]][0 if (vl > vr) == (c["view"] == "left") else 1] += 1
    for view, (agree, disagree) in votes.items():
        assert agree >= 2 * disagree and agree >= 10, (view, agree, disagree)


def test_penn_conversion_puts_canonical_left_shoulder_on_image_right_in_front_views(realdata_dir):
    clips = [c for c in _penn_clips(realdata_dir) if c["view"] == "front"]
    hits = total = 0
    for c in clips:
        kp = np.stack([c["x"], c["y"]], axis=-1)
        kp13, mask13 = profiles.convert_keypoints(kp, "penn13", scores=c["vis"].astype(float))
        ok = (mask13[:, 1] > 0) & (mask13[:, 2] > 0)
        hits += int(np.sum(kp13[ok, 1, 0] > kp13[ok, 2, 0]))
        total += int(ok.sum())
    assert total > 200 and hits / total > 0.8


def _h36m_3d(realdata_dir):
    path = realdata_dir / "h36m" / "data_3d_h36m_S11_sample.npz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    with np.load(path, allow_pickle=True) as data:
        positions = data["positions_3d"].item()
    return next(iter(next(iter(positions.values())).values()))  # (T, 32, 3) metres, z up


def test_h36m32_sides_and_head_top(realdata_dir):
    p = _h36m_3d(realdata_dir)
    names = profiles.H36M32_JOINT_NAMES
    i = names.index
    forward = p[:, i("RToe")] - p[:, i("RFoot")]
    forward[:, 2] = 0.0
    left_dir = np.cross(np.array([0.0, 0.0, 1.0]), forward)  # left = up x forward (right-handed)
    for a, b in (("LHip", "RHip"), ("LShoulder", "RShoulder"), ("LKnee", "RKnee")):
        dots = np.einsum("ij,ij->i", p[:, i(a)] - p[:, i(b)], left_dir)
        assert np.mean(dots > 0) > 0.9, (a, b)
    # Head (the canonical head source) is the head-top: the highest head joint and farther from the
    # Thorax than Neck/Nose (the head tilts, so Neck/Nose itself can dip below the Thorax).
    z = p[..., 2]
    assert np.all(z[:, i("Head")] > z[:, i("Neck/Nose")])
    assert np.all(z[:, i("Head")] > z[:, i("Thorax")])
    dist = lambda a: np.linalg.norm(p[:, i(a)] - p[:, i("Thorax")], axis=-1)  # noqa: E731
    assert np.all(dist("Head") > dist("Neck/Nose"))
    kp13, _ = profiles.convert_keypoints(p, "h36m32")
    np.testing.assert_array_equal(kp13[:, 0], p[:, 15].astype(np.float32))


def test_h36m_normalisations_on_real_data(realdata_dir):
    p = _h36m_3d(realdata_dir)
    p17 = p[:, list(profiles.H36M32_TO_H36M17)]
    normalized, _, _ = normalization.normalize_keypoints_3d(p17)
    n = normalized.numpy()
    np.testing.assert_allclose(n[:, 0], 0.0, atol=1e-6)
    spine = np.linalg.norm(n[:, 7] - n[:, 0], axis=-1) + np.linalg.norm(n[:, 8] - n[:, 7], axis=-1)
    np.testing.assert_allclose(spine, 1.0, rtol=1e-5)

    path = realdata_dir / "h36m" / "data_2d_h36m_S11_sample_gt.npz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    with np.load(path, allow_pickle=True) as data:
        positions = data["positions_2d"].item()
        metadata = data["metadata"].item()
    # The file's own left/right symmetry lists agree with the H36M17 names.
    left, right = metadata["keypoints_symmetry"]
    assert all(profiles.H36M17_JOINT_NAMES[j].startswith("L") for j in left)
    assert all(profiles.H36M17_JOINT_NAMES[j].startswith("R") for j in right)
    views = next(iter(next(iter(positions.values())).values()))
    kp13, mask13 = profiles.convert_keypoints(np.stack(views), "h36m17")  # (4, T, 13, 2)
    normalized, _, _ = normalization.normalize_keypoints_2d(kp13, mask13)
    n = normalized.numpy()
    torso = np.stack(
        [np.linalg.norm(n[..., a, :] - n[..., b, :], axis=-1) for a, b in profiles.TORSO_PAIRS], axis=-1
    )
    np.testing.assert_allclose(torso.max(-1), 0.5, rtol=1e-5)
    np.testing.assert_allclose((n[..., 7, :] + n[..., 8, :]) / 2, 0.0, atol=1e-6)


def test_ntu_kinect_left_is_anatomical_left(realdata_dir):
    path = realdata_dir / "ntu_rgbd" / "S001C001P001R001A001.skeleton.npy"
    if not path.exists():
        pytest.skip(f"{path} not present")
    s = np.load(path, allow_pickle=True).item()["skel_body0"]  # (T, 25, 3) camera space, metres
    i = profiles.NTU25_JOINT_NAMES.index
    up = s[:, i("Head")] - s[:, i("SpineBase")]
    for side_a, side_b, foot, ankle in (
        ("HipLeft", "HipRight", "FootRight", "AnkleRight"),
        ("ShoulderLeft", "ShoulderRight", "FootLeft", "AnkleLeft"),
    ):
        forward = s[:, i(foot)] - s[:, i(ankle)]
        left_dir = np.cross(up, forward)  # Kinect camera space is right-handed
        dots = np.einsum("ij,ij->i", s[:, i(side_a)] - s[:, i(side_b)], left_dir)
        assert np.mean(dots > 0) > 0.9, (side_a, side_b)
    kp13, _ = profiles.convert_keypoints(s, "ntu25")
    np.testing.assert_array_equal(kp13[:, 0], s[:, 3].astype(np.float32))
