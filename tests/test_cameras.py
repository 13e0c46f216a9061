"""Tests for cv_mim/keypoints/cameras.py and augmentation.py: camera files, real-camera projection and the camera augmentation."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cv_mim.data import safe_pickle
from cv_mim.keypoints import augmentation
from cv_mim.keypoints import cameras
from cv_mim.keypoints import normalization

H36M_CAMERA_IDS = ["54138969", "55011271", "58860488", "60457274"]
# 32-joint indices of the VideoPose3D 17 joints (README of the real-data samples).
H36M32_TO_17 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
# VideoPose3D-17 indices of the canonical 13 joints: Head, LShoulder, RShoulder, LElbow, RElbow,
# LWrist, RWrist, LHip, RHip, LKnee, RKnee, LFoot, RFoot (independent of cv_mim.keypoints).
H36M17_TO_13 = [10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]
HEAD, LSHO, RSHO, LHIP, RHIP = 0, 1, 2, 7, 8


def _toy_camera(k=(0.0, 0.0, 0.0), p=(0.0, 0.0)):
    return cameras.Camera(camera_id="toy", R=np.eye(3), t=[0.0, 0.0, 1000.0], f=[1000.0, 1000.0],
                          c=[500.0, 400.0], k=k, p=p, res_w=1000, res_h=800)


def _load_s11(realdata_dir):
    h36m = realdata_dir / "h36m"
    positions_3d = safe_pickle.load_npz(h36m / "data_3d_h36m_S11_sample.npz")["positions_3d"]
    positions_2d = safe_pickle.load_npz(h36m / "data_2d_h36m_S11_sample_gt.npz")["positions_2d"]
    pose_3d = positions_3d.item()["S11"]["Directions 1"]
    pose_2d = positions_2d.item()["S11"]["Directions 1"]
    return pose_3d, pose_2d


# ---------------------------------------------------------------------------------------------
# Real cameras.


def test_real_s11_projection_reproduces_ground_truth_2d(realdata_dir):
    rig = cameras.load_h36m_cameras(realdata_dir / "h36m" / "cameras.json")
    assert rig.camera_order == H36M_CAMERA_IDS
    pose_3d, pose_2d = _load_s11(realdata_dir)
    for index, camera in enumerate(rig.cameras("S11")):
        projected = cameras.project_world_to_pixels(pose_3d[:, H36M32_TO_17], camera, units="m")
        assert projected.shape == (311, 17, 2)
        assert np.abs(projected - pose_2d[index]).max() < 0.01
        # The distortion is not negligible: the undistorted pinhole misses by pixels.
        pinhole = cameras.project_world_to_pixels(pose_3d[:, H36M32_TO_17], camera, distort=False)
        assert np.abs(pinhole - pose_2d[index]).max() > 1.0


def test_real_camera_centres_and_quaternions_match_file(realdata_dir, tmp_path):
    path = realdata_dir / "h36m" / "cameras.json"
    raw = json.loads(path.read_text())
    rig = cameras.load_h36m_cameras(path)
    out = tmp_path / "cameras.json"
    cameras.save_h36m_cameras(out, rig)
    written = json.loads(out.read_text())
    assert set(written) == {"_note", "camera_order", "intrinsics", "extrinsics"}
    assert written["camera_order"] == raw["camera_order"]
    for cam_id in H36M_CAMERA_IDS:
        for key in ("f", "c", "k", "p", "p_videopose3d_order", "res_w", "res_h",
                    "azimuth_deg_vis_only"):
            np.testing.assert_allclose(written["intrinsics"][cam_id][key],
                                       raw["intrinsics"][cam_id][key], rtol=0, atol=1e-12)
    for subject, cams in raw["extrinsics"].items():
        for cam_id, extr in cams.items():
            ours = written["extrinsics"][subject][cam_id]
            # T (camera centre) and the quaternion are derived from R, t on save; compare with the
            # independently published values.
            np.testing.assert_allclose(ours["T"], extr["T"], atol=1e-6)
            np.testing.assert_allclose(rig.camera(subject, cam_id).center, extr["T"], atol=1e-6)
            if "orientation_quat_wxyz" in extr:
                q_ours, q_ref = np.array(ours["orientation_quat_wxyz"]), np.array(
                    extr["orientation_quat_wxyz"])
                assert min(np.abs(q_ours - q_ref).max(), np.abs(q_ours + q_ref).max()) < 1e-6
    # Round trip through our own reader.
    again = cameras.load_h36m_cameras(out)
    assert again.subjects == rig.subjects
    for subject in rig.subjects:
        for a, b in zip(rig.cameras(subject), again.cameras(subject)):
            for name in ("R", "t", "f", "c", "k", "p"):
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
            assert (a.camera_id, a.res_w, a.res_h) == (b.camera_id, b.res_w, b.res_h)


def test_toy_projection_by_hand():
    camera = _toy_camera()
    point = np.array([100.0, -50.0, 1000.0])  # mm; camera frame = (100, -50, 2000)
    np.testing.assert_allclose(cameras.world_to_camera(point, camera), [100.0, -50.0, 2000.0])
    # x = 0.05, y = -0.025 -> f * (x, y) + c.
    np.testing.assert_allclose(cameras.project_world_to_pixels(point, camera, units="mm"),
                               [550.0, 375.0], atol=1e-9)
    np.testing.assert_allclose(cameras.project_world_to_pixels(point / 1000.0, camera, units="m"),
                               [550.0, 375.0], atol=1e-9)


def test_toy_projection_with_k1_only():
    camera = _toy_camera(k=(0.1, 0.0, 0.0))
    # r2 = 0.05^2 + 0.025^2 = 0.003125; radial = 1 + 0.1 * r2 = 1.0003125.
    expected = [500.0 + 1000.0 * 0.05 * 1.0003125, 400.0 - 1000.0 * 0.025 * 1.0003125]
    np.testing.assert_allclose(
        cameras.project_world_to_pixels([100.0, -50.0, 1000.0], camera, units="mm"),
        expected, atol=1e-9)
    np.testing.assert_allclose(
        cameras.project_world_to_pixels([100.0, -50.0, 1000.0], camera, units="mm", distort=False),
        [550.0, 375.0], atol=1e-9)


def test_toy_projection_tangential_is_human36m_formula_not_opencv():
    camera = _toy_camera(p=(0.01, 0.02))
    # x = 0.05, y = -0.025, r2 = 0.003125; tan = p1 y + p2 x = 0.00075;
    # x' = x (1 + tan) + p2 r2 = 0.0501; y' = y (1 + tan) + p1 r2 = -0.0249875.
    np.testing.assert_allclose(
        cameras.project_world_to_pixels([100.0, -50.0, 1000.0], camera, units="mm"),
        [550.1, 375.0125], atol=1e-9)
    # OpenCV's model would give x' = x + 2 p1 x y + p2 (r2 + 2 x^2) = 0.05011250: different.
    assert abs(cameras.project_world_to_pixels([100.0, -50.0, 1000.0], camera, units="mm")[0]
               - (500.0 + 1000.0 * 0.0501125)) > 0.01


def test_projection_rejects_bad_input():
    camera = _toy_camera()
    with pytest.raises(ValueError, match="not in front"):
        cameras.project_world_to_pixels([0.0, 0.0, -2000.0], camera, units="mm")
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        cameras.world_to_camera(np.zeros((5, 2)), camera)
    with pytest.raises(ValueError, match="NaN"):
        cameras.world_to_camera([np.nan, 0.0, 0.0], camera)
    with pytest.raises(ValueError, match="units"):
        cameras.project_world_to_pixels([0.0, 0.0, 1.0], camera, units="cm")


def test_camera_rejects_mirror_and_bad_shapes():
    with pytest.raises(ValueError, match="proper rotation"):
        cameras.Camera("m", R=np.diag([1.0, 1.0, -1.0]), t=[0, 0, 0], f=[1, 1], c=[0, 0],
                       k=[0, 0, 0], p=[0, 0], res_w=10, res_h=10)
    with pytest.raises(ValueError, match="k must be 3"):
        cameras.Camera("m", R=np.eye(3), t=[0, 0, 0], f=[1, 1], c=[0, 0], k=[0, 0], p=[0, 0],
                       res_w=10, res_h=10)


def test_custom_rig_round_trip_any_cameras_and_subjects(tmp_path):
    rng = np.random.default_rng(0)

    def rotation(angle):
        c, s = math.cos(angle), math.sin(angle)
        return np.array([[c, -s, 0.0], [0.0, 0.0, -1.0], [s, c, 0.0]])  # det +1

    ids = ["camB", "camA", "camC"]
    intr = {cid: dict(f=rng.uniform(900, 1200, 2), c=rng.uniform(400, 600, 2),
                      k=rng.normal(0, 0.1, 3), p=rng.normal(0, 0.001, 2)) for cid in ids}
    by_subject = {
        subject: [cameras.Camera(cid, R=rotation(rng.uniform(-3, 3)), t=rng.normal(0, 500, 3),
                                 res_w=640, res_h=480, **intr[cid]) for cid in ids]
        for subject in ("P1", "P7")
    }
    path = tmp_path / "rig.json"
    cameras.save_h36m_cameras(path, by_subject)
    rig = cameras.load_h36m_cameras(path)
    assert rig.camera_order == ids and rig.subjects == ["P1", "P7"]
    for subject, cams in by_subject.items():
        for original, loaded in zip(cams, rig.cameras(subject)):
            np.testing.assert_allclose(loaded.R, original.R, atol=1e-15)
            np.testing.assert_allclose(loaded.t, original.t, atol=1e-12)
            np.testing.assert_allclose(loaded.p, original.p, atol=1e-15)
    with pytest.raises(ValueError, match=r"'S9'.*available subjects: \['P1', 'P7'\]"):
        rig.cameras("S9")
    with pytest.raises(ValueError, match="camZ"):
        rig.camera("P1", "camZ")


def _small_rig_json(tmp_path):
    cams = [cameras.Camera(cid, R=np.eye(3), t=[0.0, 0.0, 3000.0 + i], f=[1000, 1000], c=[500, 500],
                           k=[0, 0, 0], p=[0, 0], res_w=1000, res_h=1000)
            for i, cid in enumerate(["111", "222"])]
    path = tmp_path / "small.json"
    cameras.save_h36m_cameras(path, {"S1": cams, "S5": cams})
    return json.loads(path.read_text())


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        cameras.load_h36m_cameras(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        cameras.load_h36m_cameras(bad)
    raw = _small_rig_json(tmp_path)
    assert cameras.load_h36m_cameras(tmp_path / "small.json").camera_order == ["111", "222"]
    # A subject naming a camera id that has no intrinsics.
    broken = json.loads(json.dumps(raw))
    broken["extrinsics"]["S1"]["999"] = broken["extrinsics"]["S1"]["111"]
    path = tmp_path / "unknown_id.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="999"):
        cameras.load_h36m_cameras(path)
    # A subject lacking one of camera_order's cameras.
    broken = json.loads(json.dumps(raw))
    del broken["extrinsics"]["S5"]["222"]
    path = tmp_path / "missing_id.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="S5.*222"):
        cameras.load_h36m_cameras(path)
    # camera_order naming a camera without intrinsics.
    broken = json.loads(json.dumps(raw))
    broken["camera_order"].append("333")
    path = tmp_path / "order.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="333"):
        cameras.load_h36m_cameras(path)
    # Missing key.
    broken = json.loads(json.dumps(raw))
    del broken["intrinsics"]["222"]["k"]
    path = tmp_path / "missing_key.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="'k'"):
        cameras.load_h36m_cameras(path)


def test_importing_cameras_does_not_import_tensorflow():
    code = "import sys, cv_mim.keypoints.cameras; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# Camera augmentation (TensorFlow).

def _numpy_rotation(azimuth, elevation, roll):
    ca, sa, ce, se, cr, sr = (math.cos(azimuth), math.sin(azimuth), math.cos(elevation),
                              math.sin(elevation), math.cos(roll), math.sin(roll))
    rz = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])
    ry = np.array([[ce, 0, se], [0, 1, 0], [-se, 0, ce]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    return rz @ ry @ rx


def test_rotation_matrices_are_proper_and_zyx():
    rng = np.random.default_rng(1)
    angles = rng.uniform(-math.pi, math.pi, size=(50, 3))
    matrices = augmentation.rotation_matrices(angles[:, 0], angles[:, 1], angles[:, 2]).numpy()
    assert matrices.shape == (50, 3, 3)
    for angle, matrix in zip(angles, matrices):
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-5)
        assert abs(np.linalg.det(matrix) - 1.0) < 1e-5
        np.testing.assert_allclose(matrix, _numpy_rotation(*angle), atol=1e-5)


def _yxz(vector):
    """Swaps the authors' (y, x, z) layout to (x, y, z) and back (it is its own inverse)."""
    return np.asarray(vector, dtype=np.float64)[[1, 0, 2]]


@pytest.mark.parametrize("angles, expected_yxz", [
    ((math.pi / 2, 0.0, 0.0), (1.0, -2.0, 3.0)),  # azimuth alone
    ((0.0, math.pi / 2, 0.0), (2.0, 3.0, -1.0)),  # elevation alone
    ((0.0, 0.0, math.pi / 2), (-3.0, 1.0, 2.0)),  # roll alone
    ((math.pi / 2, -math.pi / 2, math.pi), (3.0, 2.0, 1.0)),  # all three
])
def test_rotation_matrices_match_fact_sheet_reference(angles, expected_yxz):
    # The fact sheet's values are written in the authors' (y, x, z) layout; the point is (2, 1, 3).
    matrix = augmentation.rotation_matrices(*[tf.constant(a, tf.float64) for a in angles]).numpy()
    rotated_xyz = matrix @ _yxz([2.0, 1.0, 3.0])
    np.testing.assert_allclose(_yxz(rotated_xyz), expected_yxz, atol=1e-12)


def test_project_with_angles_fact_sheet_reference():
    # (2, 1, 3) [y, x, z] with az = pi/2, el = -pi/2, roll = pi projects to (y, x) = (-1/4, -3/4).
    point = tf.constant([_yxz([2.0, 1.0, 3.0])], tf.float64)
    projected = augmentation.project_with_angles(point, math.pi / 2, -math.pi / 2, math.pi).numpy()
    np.testing.assert_allclose(projected, [[-0.75, -0.25]], atol=1e-12)  # ours is (x, y)


def _upright_body_facing_minus_x():
    """13 canonical joints (hip-centred, z up) of a person facing world -x: their left is world -y."""
    half_shoulder, half_hip = 0.35, 0.2
    joints = {
        "head": (0.0, 0.0, 1.7), "l_sho": (0.0, -half_shoulder, 1.2), "r_sho": (0.0, half_shoulder, 1.2),
        "l_elb": (0.0, -0.45, 0.8), "r_elb": (0.0, 0.45, 0.8), "l_wri": (0.0, -0.5, 0.4),
        "r_wri": (0.0, 0.5, 0.4), "l_hip": (0.0, -half_hip, 0.0), "r_hip": (0.0, half_hip, 0.0),
        "l_kne": (0.0, -half_hip, -0.9), "r_kne": (0.0, half_hip, -0.9),
        "l_ank": (0.0, -half_hip, -1.8), "r_ank": (0.0, half_hip, -1.8),
    }
    return np.array(list(joints.values()), dtype=np.float32)


def test_upright_body_facing_camera_is_not_mirrored():
    body = _upright_body_facing_minus_x()
    front = augmentation.project_with_angles(body, 0.0, 0.0, 0.0).numpy()
    assert front[LSHO, 0] > front[RSHO, 0] and front[LHIP, 0] > front[RHIP, 0]  # left on the right
    assert front[HEAD, 1] < front[LHIP, 1] and front[HEAD, 1] < front[RHIP, 1]  # head above hips
    # Seen from behind (camera moved round by 180 degrees).
    back = augmentation.project_with_angles(body, math.pi, 0.0, 0.0).numpy()
    assert back[LSHO, 0] < back[RSHO, 0] and back[LHIP, 0] < back[RHIP, 0]
    assert back[HEAD, 1] < back[LHIP, 1]
    # A 30 degree roll tilts the image but keeps the head up and left/right unchanged.
    rolled = augmentation.project_with_angles(body, 0.0, 0.0, math.pi / 6).numpy()
    assert rolled[LSHO, 0] > rolled[RSHO, 0] and rolled[HEAD, 1] < rolled[LHIP, 1]


def _cross_2d(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _handedness(pose_2d):
    """Signed area spanned by the shoulder line and the spine (flips under any reflection)."""
    shoulders = pose_2d[..., LSHO, :] - pose_2d[..., RSHO, :]
    spine = 0.5 * (pose_2d[..., LHIP, :] + pose_2d[..., RHIP, :]) - 0.5 * (
        pose_2d[..., LSHO, :] + pose_2d[..., RSHO, :])
    return _cross_2d(shoulders, spine) / (np.linalg.norm(shoulders, axis=-1) *
                                          np.linalg.norm(spine, axis=-1))


def test_random_projection_never_mirrors_random_poses():
    # For a proper projection the 2D cross product of two limb vectors has the sign of their 3D
    # cross product's component along the camera's viewing axis (+x after rotation); a mirror flips it.
    rng = np.random.default_rng(2)
    poses = rng.normal(0.0, 0.6, size=(400, 13, 3)).astype(np.float32)
    projected, angles = augmentation.random_camera_projection(poses, tf.constant([3, 4]),
                                                         return_angles=True)
    projected, angles = projected.numpy(), angles.numpy()
    a3, b3 = poses[:, LSHO] - poses[:, RSHO], poses[:, LHIP] - poses[:, LSHO]
    normal = np.cross(a3, b3)
    rotation = np.stack([_numpy_rotation(*angle) for angle in angles])
    view_component = np.einsum("bij,bj->bi", rotation, normal)[:, 0]
    a2, b2 = projected[:, LSHO] - projected[:, RSHO], projected[:, LHIP] - projected[:, LSHO]
    clear = np.abs(view_component) > 0.5 * np.linalg.norm(normal, axis=-1)
    assert clear.sum() > 50
    # Perspective can only perturb the sign for near-degenerate views, excluded above; allow ~2%.
    agree = np.sign(_cross_2d(a2, b2)[clear]) == np.sign(view_component[clear])
    assert agree.mean() > 0.98


def _normalize_2d(pose):
    """The project's 2D normalisation (mid-hip offset, 0.5 / max torso distance, fact sheet §6.3)."""

    normalized, _, _ = normalization.normalize_keypoints_2d(np.asarray(pose, np.float32))
    return np.asarray(normalized)


def test_augmented_projection_has_real_camera_handedness(realdata_dir):
    rig = cameras.load_h36m_cameras(realdata_dir / "h36m" / "cameras.json")
    pose_3d, _ = _load_s11(realdata_dir)
    pose_17 = pose_3d[:, H36M32_TO_17].astype(np.float64)
    pose_13 = pose_17[:, H36M17_TO_13]
    hip, spine, thorax = pose_17[:, 0], pose_17[:, 7], pose_17[:, 8]
    scale = np.linalg.norm(hip - spine, axis=-1) + np.linalg.norm(spine - thorax, axis=-1)
    normalized_3d = (pose_13 - hip[:, None]) / scale[:, None, None]
    checked = 0
    for camera in rig.cameras("S11"):
        real = _normalize_2d(cameras.project_world_to_pixels(pose_13, camera, units="m"))
        # Virtual camera looking at the hip along the real camera's line of sight d. With roll 0 its
        # viewing axis in the pose frame is R^T e_x = (cos el cos az, -sin az, sin el cos az) for
        # R = Rz(az) Ry(el); solve for |el| < 90 degrees.
        direction = hip * 1000.0 - camera.center
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        dx, dy, dz = direction.T
        front = dx >= 0
        azimuth = np.where(front, np.arcsin(-dy), np.pi - np.arcsin(-dy))
        elevation = np.where(front, np.arctan2(dz, dx), np.arctan2(-dz, -dx))
        rotations = augmentation.rotation_matrices(azimuth, elevation, np.zeros_like(azimuth)).numpy()
        np.testing.assert_allclose(rotations[:, 0, :], direction, atol=1e-9)  # R^T e_x = d
        virtual = _normalize_2d(augmentation.project_with_angles(
            normalized_3d, azimuth, elevation, np.zeros_like(azimuth)).numpy())
        real_hand, virtual_hand = _handedness(real), _handedness(virtual)
        clear = (np.abs(real_hand) > 0.2) & (np.abs(virtual_hand) > 0.2)
        assert np.all(np.sign(real_hand[clear]) == np.sign(virtual_hand[clear]))
        # Head above the hips in both (image y down).
        assert np.all(real[:, HEAD, 1] < 0) and np.all(virtual[:, HEAD, 1] < 0)
        checked += clear.sum()
    assert checked > 300


def test_random_camera_projection_deterministic_and_in_range():
    rng = np.random.default_rng(5)
    poses = rng.normal(0.0, 0.5, size=(64, 2, 13, 3)).astype(np.float32)
    seed = tf.constant([7, 11], tf.int64)
    first, angles = augmentation.random_camera_projection(poses, seed, return_angles=True)
    second = augmentation.random_camera_projection(poses, seed)
    other = augmentation.random_camera_projection(poses, tf.constant([7, 12], tf.int64))
    assert first.shape == (64, 2, 13, 2) and angles.shape == (64, 2, 3)
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    assert np.abs(first.numpy() - other.numpy()).max() > 1e-3
    angles = angles.numpy()
    assert np.all(np.abs(angles[..., 0]) <= math.pi) and np.all(np.abs(angles[..., 1:]) <= math.pi / 6)
    # Anchor and positive of a pair get independent cameras; azimuth covers the full circle.
    assert np.all(angles[:, 0, 0] != angles[:, 1, 0])
    assert angles[..., 0].min() < -2.5 and angles[..., 0].max() > 2.5
    # The result equals the deterministic helper at the sampled angles.
    np.testing.assert_allclose(
        first.numpy(),
        augmentation.project_with_angles(poses, angles[..., 0], angles[..., 1], angles[..., 2]).numpy(),
        atol=1e-6)


def _rotated_numpy(poses, angles):
    """Independent reference: the 3D rotated by R = Rz(az) Ry(el) Rx(roll) (row vectors)."""
    az, el, ro = (angles[..., k].astype(np.float64) for k in range(3))
    ca, sa, ce, se, cr, sr = np.cos(az), np.sin(az), np.cos(el), np.sin(el), np.cos(ro), np.sin(ro)
    rot = np.stack([np.stack([ca * ce, ca * se * sr - sa * cr, ca * se * cr + sa * sr], -1),
                    np.stack([sa * ce, sa * se * sr + ca * cr, sa * se * cr - ca * sr], -1),
                    np.stack([-se, ce * sr, ce * cr], -1)], -2)
    return np.einsum("...jk,...ik->...ji", poses.astype(np.float64), rot)


def test_random_camera_distance_range_draws_one_distance_per_pose_from_its_own_stream():
    rng = np.random.default_rng(6)
    poses = rng.normal(0.0, 0.5, size=(200, 2, 13, 3)).astype(np.float32)
    seed = tf.constant([3, 9], tf.int64)
    fixed, fixed_depth, fixed_angles = augmentation.random_camera_projection(
        poses, seed, return_angles=True, return_depth=True)
    # The default is the authors' constant 2, and a degenerate range is that constant, bit for bit.
    for same in (2.0, (2.0, 2.0), [2], np.float32(2.0), tf.constant(2.0)):
        np.testing.assert_array_equal(
            augmentation.random_camera_projection(poses, seed, depth=same).numpy(), fixed.numpy())
    ranged, joint_depth, angles = augmentation.random_camera_projection(
        poses, seed, depth=(4.0, 12.0), return_angles=True, return_depth=True)
    # The angles are those of the fixed-distance call: the distances come from a stream of their own.
    np.testing.assert_array_equal(angles.numpy(), fixed_angles.numpy())
    rotated = _rotated_numpy(poses, angles.numpy())
    np.testing.assert_allclose(fixed_depth.numpy(), rotated[..., 0] + 2.0, atol=1e-5)
    distance = joint_depth.numpy() - rotated[..., 0]  # the camera's distance, per joint
    assert distance.shape == (200, 2, 13)
    np.testing.assert_allclose(distance, distance[..., :1].repeat(13, -1), atol=1e-5)  # one per pose
    per_pose = distance[..., 0]
    assert per_pose.min() >= 4.0 - 1e-5 and per_pose.max() <= 12.0 + 1e-5
    assert per_pose.min() < 4.5 and per_pose.max() > 11.5 and 7.0 < per_pose.mean() < 9.0  # uniform
    assert np.all(per_pose[:, 0] != per_pose[:, 1])  # anchor and positive: their own distances
    # The projection is the pinhole at that distance: x = -Y' / (X' + d), y = -Z' / (X' + d).
    d = per_pose[..., None]
    expected = np.stack([-rotated[..., 1] / (rotated[..., 0] + d),
                         -rotated[..., 2] / (rotated[..., 0] + d)], -1)
    np.testing.assert_allclose(ranged.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [0.0, -1.0, (5.0, 4.0), (1.0, 2.0, 3.0), (2.0, float("inf")), "x",
                                 "12", True])
def test_random_camera_distance_rejects_bad_ranges(bad):
    with pytest.raises(ValueError):
        augmentation.random_camera_projection(np.zeros((2, 13, 3), np.float32),
                                              tf.constant([0, 1], tf.int64), depth=bad)


def test_random_camera_projection_inside_tf_data_map():
    poses = np.random.default_rng(6).normal(0.0, 0.5, size=(8, 13, 3)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(poses).enumerate().map(
        lambda index, pose: augmentation.random_camera_projection(
            pose, tf.stack([tf.constant(0, tf.int64), index])))
    outputs = np.stack([x.numpy() for x in dataset])
    again = np.stack([x.numpy() for x in dataset])
    assert outputs.shape == (8, 13, 2) and np.all(np.isfinite(outputs))
    np.testing.assert_array_equal(outputs, again)
    np.testing.assert_allclose(
        outputs[3], augmentation.random_camera_projection(poses[3], tf.constant([0, 3], tf.int64)).numpy(),
        atol=1e-6)


def _rotated_camera(rotation):
    return cameras.Camera(camera_id="r", R=rotation, t=[0.0, 0.0, 0.0], f=[1000.0, 1000.0],
                          c=[500.0, 400.0], k=(0.0, 0.0, 0.0), p=(0.0, 0.0), res_w=1000, res_h=800)


def test_optical_axis_angles_of_toy_cameras():
    a = np.radians(60.0)
    about_y = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    facing = np.diag([1.0, -1.0, -1.0])  # rotated 180° about x: looks the other way
    angles = cameras.optical_axis_angles([_rotated_camera(np.eye(3)), _rotated_camera(about_y),
                                          _rotated_camera(facing)])
    np.testing.assert_allclose(angles, [[0, 60, 180], [60, 0, 120], [180, 120, 0]], atol=1e-6)


def test_optical_axis_points_at_the_principal_point_of_the_real_cameras(realdata_dir):
    """Independent of the formula: a world point straight along the axis projects to c."""
    rig = cameras.load_h36m_cameras(realdata_dir / "h36m" / "cameras.json")
    for cam in rig.cameras("S11"):
        point = cam.center + 3000.0 * cam.optical_axis
        pixel = cameras.project_world_to_pixels(point, cam, units="mm", distort=False)
        np.testing.assert_allclose(pixel, cam.c, atol=1e-6)
    angles = cameras.optical_axis_angles(rig.cameras("S11"))
    np.testing.assert_allclose(angles, angles.T, atol=1e-9)
    assert np.all(np.diag(angles) < 1e-4) and np.all(angles[~np.eye(4, dtype=bool)] > 30)
