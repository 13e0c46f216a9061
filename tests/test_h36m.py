"""Tests for cv_mim/data/h36m.py (VideoPose3D layout): a fixture written here and the real S11 sample."""
import pickle
import subprocess
import sys

import numpy as np
import pytest

from cv_mim.data import h36m
from cv_mim.data import safe_pickle
from cv_mim.keypoints import cameras

# From the real-data README (independent of the code under test).
H36M32_TO_17 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
# VideoPose3D-17 indices of the canonical 13 joints (head = Head, shoulders, elbows, wrists, hips,
# knees, feet; left before right).
H36M17_TO_13 = [10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]
CAMERA_IDS = ["cam_front", "cam_side"]
SUBJECTS = ("S1", "S5")  # the fixture's subjects (the default list has S6-S8 too)
FOCAL, CENTRE = 1000.0, (500.0, 400.0)


def _look_at_camera(camera_id, centre_mm):
    """Undistorted camera at `centre_mm` looking at the world origin, upright (world z up)."""
    forward = -np.asarray(centre_mm, float) / np.linalg.norm(centre_mm)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    return cameras.Camera(camera_id, R=rotation, t=-rotation @ np.asarray(centre_mm, float),
                          f=[FOCAL, FOCAL], c=list(CENTRE), k=[0, 0, 0], p=[0, 0], res_w=1000,
                          res_h=800)


def _pinhole(points_m, camera):
    """Independent pinhole projection (no distortion) of world points in metres."""
    cam = (points_m * 1000.0) @ camera.R.T + camera.t
    return FOCAL * cam[..., :2] / cam[..., 2:] + np.asarray(CENTRE)


@pytest.fixture
def world(tmp_path):
    """A small world in the real layout: 2 subjects x 2 actions, 2 cameras, files in tmp_path."""
    rng = np.random.default_rng(0)
    positions_3d = {}
    for subject in ("S1", "S5"):
        positions_3d[subject] = {}
        for action, frames in (("Walking 1", 6), ("Sitting", 4)):
            # Bodies around the room centre, about 1 m tall (metres, z up).
            base = rng.normal(0.0, 0.3, (1, 32, 3)) + np.array([0.0, 0.0, 0.9])
            positions_3d[subject][action] = (base + rng.normal(0, 0.02, (frames, 32, 3))).astype(
                np.float32)
    rig = cameras.CameraRig.from_cameras(
        {s: [_look_at_camera("cam_front", [-4000.0, 0.0, 1500.0]),
             _look_at_camera("cam_side", [0.0, 4500.0, 1200.0])] for s in ("S1", "S5", "S9")})
    paths = {"3d": tmp_path / "data_3d_h36m.npz", "2d": tmp_path / "data_2d_h36m_gt.npz",
             "cameras": tmp_path / "cameras.json"}
    cameras.save_h36m_cameras(paths["cameras"], rig)
    h36m.save_positions_3d(paths["3d"], positions_3d)
    positions_2d = {s: {a: [_pinhole(p[:, H36M32_TO_17], cam) for cam in rig.cameras(s)]
                        for a, p in acts.items()} for s, acts in positions_3d.items()}
    h36m.save_positions_2d(paths["2d"], positions_2d)
    return {"paths": paths, "positions_3d": positions_3d, "positions_2d": positions_2d, "rig": rig}


def _write_2d(path, positions_2d, metadata=None):
    h36m.save_positions_2d(path, positions_2d, metadata)
    return path


def test_3d_round_trip_and_auto_unit(world, tmp_path):
    loaded = h36m.load_positions_3d(world["paths"]["3d"])
    for subject, actions in world["positions_3d"].items():
        for action, pose in actions.items():
            assert loaded[subject][action].dtype == np.float32
            np.testing.assert_array_equal(loaded[subject][action], pose)
    # The same poses stored in millimetres: 'auto' sees a median |coordinate| >= 20 and converts.
    mm = {s: {a: p * 1000.0 for a, p in acts.items()} for s, acts in world["positions_3d"].items()}
    path_mm = tmp_path / "mm.npz"
    h36m.save_positions_3d(path_mm, mm)
    auto = h36m.load_positions_3d(path_mm)
    explicit = h36m.load_positions_3d(path_mm, unit="mm")
    as_metres = h36m.load_positions_3d(path_mm, unit="m")
    np.testing.assert_allclose(auto["S1"]["Sitting"], world["positions_3d"]["S1"]["Sitting"], atol=1e-6)
    np.testing.assert_array_equal(auto["S5"]["Walking 1"], explicit["S5"]["Walking 1"])
    np.testing.assert_allclose(as_metres["S1"]["Sitting"], mm["S1"]["Sitting"], rtol=1e-6)
    with pytest.raises(ValueError, match="unit"):
        h36m.load_positions_3d(path_mm, unit="cm")


def test_auto_unit_threshold_is_median_20():
    pose_below = {"S1": {"a": np.full((2, 32, 3), 19.0, np.float32)}}
    pose_above = {"S1": {"a": np.full((2, 32, 3), 21.0, np.float32)}}
    assert h36m._infer_unit(pose_below, "x") == "m"
    assert h36m._infer_unit(pose_above, "x") == "mm"


def test_2d_round_trip_with_metadata(world):
    loaded, metadata = h36m.load_positions_2d(world["paths"]["2d"], return_metadata=True)
    assert metadata == {"num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13],
                                                                [1, 2, 3, 14, 15, 16]]}
    for subject, actions in world["positions_2d"].items():
        for action, cams in actions.items():
            assert len(loaded[subject][action]) == 2
            for ours, ref in zip(loaded[subject][action], cams):
                assert ours.shape == ref.shape and ours.dtype == np.float32
                np.testing.assert_allclose(ours, ref, atol=1e-3)
    assert isinstance(h36m.load_positions_2d(world["paths"]["2d"]), dict)


def test_files_are_the_videopose3d_layout(world, tmp_path):
    # Read back with plain numpy, as VideoPose3D does.
    data = np.load(world["paths"]["3d"], allow_pickle=True)
    assert data.files == ["positions_3d"]
    assert data["positions_3d"].item()["S5"]["Sitting"].shape == (4, 32, 3)
    data = np.load(world["paths"]["2d"], allow_pickle=True)
    assert sorted(data.files) == ["metadata", "positions_2d"]
    assert isinstance(data["positions_2d"].item()["S1"]["Walking 1"], list)
    # Saving under a name without '.npz' writes exactly that file.
    path = tmp_path / "no_suffix"
    h36m.save_positions_3d(path, world["positions_3d"])
    assert path.is_file() and not (tmp_path / "no_suffix.npz").exists()


def test_load_multiview_projects_without_2d(world):
    paths = world["paths"]
    poses = h36m.load_multiview(paths["3d"], paths["cameras"], subjects=("S1", "S5"))
    assert poses.keypoints_2d.shape == (20, 2, 13, 2) and poses.keypoints_2d.dtype == np.float32
    assert poses.keypoints_3d.shape == (20, 17, 3) and len(poses) == 20
    assert list(poses.camera_ids) == CAMERA_IDS
    assert list(poses.subjects[:10]) == ["S1"] * 10 and list(poses.subjects[10:]) == ["S5"] * 10
    assert list(poses.actions[:6]) == ["Walking 1"] * 6 and list(poses.frames[:6]) == list(range(6))
    assert list(poses.frames[6:10]) == [0, 1, 2, 3]
    pose = world["positions_3d"]["S5"]["Sitting"]
    rows = (poses.subjects == "S5") & (poses.actions == "Sitting")
    np.testing.assert_allclose(poses.keypoints_3d[rows], pose[:, H36M32_TO_17], atol=1e-6)
    for index, camera in enumerate(world["rig"].cameras("S5")):
        expected = _pinhole(pose[:, H36M32_TO_17], camera)[:, H36M17_TO_13]
        np.testing.assert_allclose(poses.keypoints_2d[rows, index], expected, atol=1e-3)


def test_load_multiview_from_2d_file_matches_projection(world):
    paths = world["paths"]
    projected = h36m.load_multiview(paths["3d"], paths["cameras"], subjects=["S1", "S5"])
    from_file = h36m.load_multiview(paths["3d"], paths["cameras"], paths["2d"], subjects=["S1", "S5"])
    np.testing.assert_allclose(from_file.keypoints_2d, projected.keypoints_2d, atol=1e-3)
    np.testing.assert_array_equal(from_file.keypoints_3d, projected.keypoints_3d)
    # One subject by name, every second frame.
    strided = h36m.load_multiview(paths["3d"], paths["cameras"], paths["2d"], subjects="S5",
                                  frame_stride=2)
    assert len(strided) == 3 + 2 and list(strided.frames) == [0, 2, 4, 0, 2]
    np.testing.assert_array_equal(strided.keypoints_2d[0], from_file.keypoints_2d[10])


def test_load_multiview_reorders_cameras_by_metadata_ids(world, tmp_path):
    swapped = {s: {a: cams[::-1] for a, cams in acts.items()}
               for s, acts in world["positions_2d"].items()}
    path = _write_2d(tmp_path / "swapped.npz", swapped,
                     {"num_joints": 17, "camera_ids": CAMERA_IDS[::-1]})
    paths = world["paths"]
    reordered = h36m.load_multiview(paths["3d"], paths["cameras"], path, subjects=SUBJECTS)
    reference = h36m.load_multiview(paths["3d"], paths["cameras"], paths["2d"], subjects=SUBJECTS)
    np.testing.assert_array_equal(reordered.keypoints_2d, reference.keypoints_2d)
    path = _write_2d(tmp_path / "unknown_id.npz", world["positions_2d"],
                     {"num_joints": 17, "camera_ids": ["cam_front", "cam_top"]})
    with pytest.raises(ValueError, match="cam_top"):
        h36m.load_multiview(paths["3d"], paths["cameras"], path, subjects=SUBJECTS)


def test_missing_and_corrupt_files(world, tmp_path):
    paths = world["paths"]
    with pytest.raises(FileNotFoundError, match="absent_3d.npz"):
        h36m.load_positions_3d(tmp_path / "absent_3d.npz")
    with pytest.raises(FileNotFoundError, match="absent_2d.npz"):
        h36m.load_multiview(paths["3d"], paths["cameras"], tmp_path / "absent_2d.npz", subjects=SUBJECTS)
    with pytest.raises(FileNotFoundError, match="absent.json"):
        h36m.load_multiview(paths["3d"], tmp_path / "absent.json", subjects=SUBJECTS)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all" * 10)
    with pytest.raises(ValueError, match="garbage.npz"):
        h36m.load_positions_3d(garbage)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(paths["3d"].read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.npz"):
        h36m.load_positions_3d(truncated)
    with pytest.raises(ValueError, match="data_2d_h36m_gt.npz.*positions_3d"):
        h36m.load_positions_3d(paths["2d"])  # a 2D file given as 3D
    pickled = tmp_path / "plain_pickle.npz"
    pickled.write_bytes(pickle.dumps({"S1": 1}))
    with pytest.raises(ValueError, match="plain_pickle.npz"):
        h36m.load_positions_3d(pickled)


def test_unknown_subject_is_named_with_available_ones(world):
    paths = world["paths"]
    with pytest.raises(ValueError, match=r"'S7'.*available subjects: \['S1', 'S5'\]"):
        h36m.load_multiview(paths["3d"], paths["cameras"], subjects=("S1", "S7"))


def test_subject_missing_from_camera_file(world, tmp_path):
    rig = world["rig"]
    only_s1 = cameras.CameraRig.from_cameras({"S1": rig.cameras("S1")})
    cameras.save_h36m_cameras(tmp_path / "s1_only.json", only_s1)
    with pytest.raises(ValueError, match="'S5'.*available subjects: \\['S1'\\]"):
        h36m.load_multiview(world["paths"]["3d"], tmp_path / "s1_only.json", subjects=("S1", "S5"))


def test_camera_count_mismatch(world, tmp_path):
    three = {s: {a: cams + [cams[0]] for a, cams in acts.items()}
             for s, acts in world["positions_2d"].items()}
    path = _write_2d(tmp_path / "three_cams.npz", three)
    with pytest.raises(ValueError, match=r"3 camera arrays.*2 cameras \['cam_front', 'cam_side'\]"):
        h36m.load_multiview(world["paths"]["3d"], world["paths"]["cameras"], path, subjects=SUBJECTS)


def test_wrong_shapes_are_named(world, tmp_path):
    bad_3d = {"S1": {"Walking 1": np.zeros((5, 17, 3), np.float32)}}
    with pytest.raises(ValueError, match=r"'S1' action 'Walking 1'.*\(5, 17, 3\)"):
        h36m.save_positions_3d(tmp_path / "bad3d.npz", bad_3d)
    # Write a malformed 2D file with plain numpy (our writer refuses) and load it.
    positions = {s: {a: list(c) for a, c in acts.items()} for s, acts in world["positions_2d"].items()}
    positions["S5"]["Sitting"][1] = np.zeros((4, 16, 2), np.float32)
    path = tmp_path / "bad2d.npz"
    np.savez_compressed(path, positions_2d=np.array(positions, dtype=object))
    message = r"'S5' action 'Sitting' camera 1 \(id cam_side\).*\(4, 16, 2\)"
    with pytest.raises(ValueError, match=message):
        h36m.load_multiview(world["paths"]["3d"], world["paths"]["cameras"], path, subjects=SUBJECTS)
    with pytest.raises(ValueError, match=r"'S5' action 'Sitting' camera 1.*\(4, 16, 2\)"):
        h36m.load_positions_2d(path)
    nan_pose = {"S1": {"a": np.full((2, 32, 3), np.nan, np.float32)}}
    with pytest.raises(ValueError, match="NaN"):
        h36m.save_positions_3d(tmp_path / "nan.npz", nan_pose)


def test_frame_count_mismatch_and_trim(world, tmp_path):
    longer = {s: {a: [np.concatenate([c, c[:2]]) for c in cams] for a, cams in acts.items()}
              for s, acts in world["positions_2d"].items()}
    path = _write_2d(tmp_path / "longer.npz", longer)
    paths = world["paths"]
    with pytest.raises(ValueError, match=r"Frame-count mismatch.*'Walking 1'.*8 2D frames.*6 3D frames"):
        h36m.load_multiview(paths["3d"], paths["cameras"], path, subjects=SUBJECTS)
    trimmed = h36m.load_multiview(paths["3d"], paths["cameras"], path, trim_longer_2d=True,
                                  subjects=SUBJECTS)
    reference = h36m.load_multiview(paths["3d"], paths["cameras"], paths["2d"], subjects=SUBJECTS)
    np.testing.assert_array_equal(trimmed.keypoints_2d, reference.keypoints_2d)
    shorter = {s: {a: [c[:-1] for c in cams] for a, cams in acts.items()}
               for s, acts in world["positions_2d"].items()}
    path = _write_2d(tmp_path / "shorter.npz", shorter)
    with pytest.raises(ValueError, match="Frame-count mismatch"):
        h36m.load_multiview(paths["3d"], paths["cameras"], path, trim_longer_2d=True, subjects=SUBJECTS)


def test_missing_action_in_2d(world, tmp_path):
    partial = {s: {"Sitting": acts["Sitting"]} for s, acts in world["positions_2d"].items()}
    path = _write_2d(tmp_path / "partial.npz", partial)
    with pytest.raises(ValueError, match="no 2D poses for action 'Walking 1'"):
        h36m.load_multiview(world["paths"]["3d"], world["paths"]["cameras"], path, subjects=SUBJECTS)


def test_importing_h36m_does_not_import_tensorflow():
    code = "import sys, cv_mim.data.h36m; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_real_s11_multiview_with_and_without_2d(realdata_dir):
    root = realdata_dir / "h36m"
    kwargs = dict(subjects=("S11",))
    projected = h36m.load_multiview(root / "data_3d_h36m_S11_sample.npz", root / "cameras.json",
                                    **kwargs)
    from_file = h36m.load_multiview(root / "data_3d_h36m_S11_sample.npz", root / "cameras.json",
                                    root / "data_2d_h36m_S11_sample_gt.npz", **kwargs)
    assert projected.keypoints_2d.shape == (311, 4, 13, 2)
    assert list(projected.camera_ids) == ["54138969", "55011271", "58860488", "60457274"]
    assert np.abs(projected.keypoints_2d - from_file.keypoints_2d).max() < 0.01
    # 3D in metres (the sample is metres; 'auto' must not rescale it), VideoPose3D 17 joints.
    raw = safe_pickle.load_npz(root / "data_3d_h36m_S11_sample.npz")["positions_3d"].item()
    np.testing.assert_array_equal(projected.keypoints_3d, raw["S11"]["Directions 1"][:, H36M32_TO_17])
    gt = safe_pickle.load_npz(root / "data_2d_h36m_S11_sample_gt.npz")["positions_2d"].item()
    for index in range(4):
        np.testing.assert_allclose(from_file.keypoints_2d[:, index],
                                   gt["S11"]["Directions 1"][index][:, H36M17_TO_13], atol=1e-4)
    with pytest.raises(ValueError, match=r"'S1'.*available subjects: \['S11'\]"):
        h36m.load_multiview(root / "data_3d_h36m_S11_sample.npz", root / "cameras.json")


def test_coco_layout_detections_and_unknown_layout(world, tmp_path):
    # VideoPose3D's Detectron files store COCO-17 keypoints (metadata layout_name 'coco'). Place the
    # H36M joints in COCO slots (nose <- head-top, 5.. <- limbs); eyes/ears get noise (unused).
    coco_from_canonical = [0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    rng = np.random.default_rng(3)
    coco = {}
    for subject, actions in world["positions_2d"].items():
        coco[subject] = {}
        for action, cams in actions.items():
            coco[subject][action] = []
            for cam in cams:
                array = rng.uniform(0, 1000, cam.shape)
                array[:, coco_from_canonical] = cam[:, H36M17_TO_13]
                coco[subject][action].append(array)
    path = _write_2d(tmp_path / "coco.npz", coco, {"layout_name": "coco", "num_joints": 17})
    paths = world["paths"]
    from_coco = h36m.load_multiview(paths["3d"], paths["cameras"], path, subjects=SUBJECTS)
    reference = h36m.load_multiview(paths["3d"], paths["cameras"], paths["2d"], subjects=SUBJECTS)
    np.testing.assert_allclose(from_coco.keypoints_2d, reference.keypoints_2d, atol=1e-3)
    path = _write_2d(tmp_path / "mpii.npz", coco, {"layout_name": "mpii", "num_joints": 17})
    with pytest.raises(ValueError, match="mpii"):
        h36m.load_multiview(paths["3d"], paths["cameras"], path, subjects=SUBJECTS)
