"""Tests for cv_mim/data/h36m_tfrecord.py: the authors' tf.Example layout (fact sheet §6.1)."""
import numpy as np
import pytest
import tensorflow as tf

from cv_mim.data import h36m_tfrecord
from cv_mim.data import safe_pickle
from cv_mim.keypoints import profiles

# 32-joint indices (3d-pose-baseline H5 / VideoPose3D) of the authors' LEGACY_3DH36M17 order, as
# listed in the fact sheet §6.1, and of the VideoPose3D 17 order (real-data README).
H5_TO_LEGACY = [0, 15, 14, 13, 17, 25, 18, 26, 19, 27, 12, 6, 1, 7, 2, 8, 3]
H36M32_TO_17 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
COCO13 = ["NOSE_TIP", "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST",
          "RIGHT_WRIST", "LEFT_HIP", "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE"]
LEGACY17 = ["Hip", "Head", "Neck/Nose", "Thorax", "LShoulder", "RShoulder", "LElbow", "RElbow",
            "LWrist", "RWrist", "Spine", "LHip", "RHip", "LKnee", "RKnee", "LFoot", "RFoot"]


def _hand_made_example(pose32_mm, pixels_xy, sizes_hw, scores):
    """One record built directly from the fact sheet's description (not with the module's writer)."""
    feature = {
        "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[h for h, _ in sizes_hw])),
        "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[w for _, w in sizes_hw])),
    }

    def floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))

    for j, name in enumerate(COCO13):
        feature[f"image/object/part/{name}/center/y"] = floats(
            [pixels_xy[i][j][1] / sizes_hw[i][0] for i in range(2)])
        feature[f"image/object/part/{name}/center/x"] = floats(
            [pixels_xy[i][j][0] / sizes_hw[i][1] for i in range(2)])
        feature[f"image/object/part/{name}/score"] = floats([scores[i][j] for i in range(2)])
    for j, name in enumerate(LEGACY17):
        joint = pose32_mm[H5_TO_LEGACY[j]]
        for axis, letter in enumerate("xyz"):
            feature[f"image/object/part_3d/{name}/center/{letter}"] = floats([joint[axis]] * 2)
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _random_records(n, seed=0):
    rng = np.random.default_rng(seed)
    sizes = np.stack([rng.integers(900, 1100, (n, 2)), rng.integers(900, 1100, (n, 2))], axis=-1)
    pixels = rng.uniform(0, 900, (n, 2, 13, 2))
    pose3d = rng.normal(0, 1.0, (n, 17, 3)) + np.array([0.5, -1.0, 0.9])  # metres
    scores = rng.uniform(0, 1, (n, 2, 13))
    return pixels, pose3d, sizes, scores


def test_reads_a_hand_made_record_in_the_authors_layout(tmp_path):
    rng = np.random.default_rng(1)
    pose32_mm = rng.normal(0, 800.0, (32, 3)) + np.array([0.0, 0.0, 900.0])
    pixels = rng.uniform(0, 1000, (2, 13, 2))
    sizes = [(1002, 1000), (1000, 1000)]
    scores = rng.uniform(0, 1, (2, 13))
    path = tmp_path / "hand.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(_hand_made_example(pose32_mm, pixels, sizes, scores))
    data = h36m_tfrecord.read_authors_tfrecords(str(path))
    assert data["keypoints_2d"].shape == (1, 2, 13, 2)
    np.testing.assert_allclose(data["keypoints_2d"][0], pixels, atol=2e-4)  # pixels, (x, y)
    np.testing.assert_allclose(data["scores"][0], scores, atol=1e-7)
    np.testing.assert_array_equal(data["image_sizes"][0], sizes)
    # 3D: millimetres in the authors' order -> metres in the VideoPose3D 17 order.
    assert data["keypoints_3d"].shape == (1, 17, 3)
    np.testing.assert_allclose(data["keypoints_3d"][0], pose32_mm[H36M32_TO_17] / 1000.0, atol=1e-6)
    np.testing.assert_allclose(data["keypoints_3d_instances"][0, 1], data["keypoints_3d"][0])


def test_round_trip_and_written_keys(tmp_path):
    pixels, pose3d, sizes, scores = _random_records(5)
    path = tmp_path / "rt.tfrecord"
    assert h36m_tfrecord.write_authors_tfrecords(path, pixels, pose3d, sizes, scores) == 5
    data = h36m_tfrecord.read_authors_tfrecords(str(path))
    np.testing.assert_allclose(data["keypoints_2d"], pixels, atol=2e-4)
    np.testing.assert_allclose(data["scores"], scores, atol=1e-7)
    np.testing.assert_allclose(data["keypoints_3d"], pose3d, atol=2e-6)
    np.testing.assert_array_equal(data["image_sizes"], sizes)
    # The stored values follow the layout: normalised (y, x), 3D in mm under the legacy names.
    record = next(iter(tf.data.TFRecordDataset(str(path)))).numpy()
    features = tf.train.Example.FromString(record).features.feature
    expected_keys = {"image/height", "image/width"}
    expected_keys |= {f"image/object/part/{n}/{s}" for n in COCO13
                      for s in ("center/y", "center/x", "score")}
    expected_keys |= {f"image/object/part_3d/{n}/center/{a}" for n in LEGACY17 for a in "xyz"}
    assert set(features.keys()) == expected_keys
    y = features["image/object/part/LEFT_WRIST/center/y"].float_list.value
    np.testing.assert_allclose(y, pixels[0, :, 5, 1] / sizes[0, :, 0], rtol=1e-6)
    z_head = features["image/object/part_3d/Head/center/z"].float_list.value
    np.testing.assert_allclose(z_head, [pose3d[0, 10, 2] * 1000.0] * 2, rtol=1e-6)
    x_rfoot = features["image/object/part_3d/RFoot/center/x"].float_list.value
    np.testing.assert_allclose(x_rfoot, [pose3d[0, 3, 0] * 1000.0] * 2, rtol=1e-6)


def test_glob_over_shards_and_units(tmp_path):
    pixels, pose3d, sizes, scores = _random_records(7, seed=2)
    h36m_tfrecord.write_authors_tfrecords(tmp_path / "part-00000.tfrecord", pixels[:4], pose3d[:4],
                                          sizes[:4], scores[:4])
    h36m_tfrecord.write_authors_tfrecords(tmp_path / "part-00001.tfrecord", pixels[4:], pose3d[4:],
                                          (1000, 1000), unit_3d="m")
    first = h36m_tfrecord.read_authors_tfrecords(str(tmp_path / "part-00000.tfrecord"))
    second_m = h36m_tfrecord.read_authors_tfrecords(str(tmp_path / "part-00001.tfrecord"), unit_3d="m")
    second_auto = h36m_tfrecord.read_authors_tfrecords(str(tmp_path / "part-00001.tfrecord"),
                                                       unit_3d="auto")
    np.testing.assert_allclose(second_m["keypoints_3d"], pose3d[4:], atol=1e-6)
    np.testing.assert_array_equal(second_auto["keypoints_3d"], second_m["keypoints_3d"])
    np.testing.assert_array_equal(second_m["scores"], np.ones((3, 2, 13)))
    first_auto = h36m_tfrecord.read_authors_tfrecords(str(tmp_path / "part-00000.tfrecord"),
                                                      unit_3d="auto")
    np.testing.assert_allclose(first_auto["keypoints_3d"], pose3d[:4], atol=2e-6)
    both = h36m_tfrecord.read_authors_tfrecords(str(tmp_path / "part-*.tfrecord"))
    assert both["keypoints_2d"].shape == (7, 2, 13, 2)
    np.testing.assert_array_equal(both["keypoints_2d"][:4], first["keypoints_2d"])


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        h36m_tfrecord.read_authors_tfrecords(str(tmp_path / "nothing-here*.tfrecord"))
    garbage = tmp_path / "garbage.tfrecord"
    garbage.write_bytes(b"\x00\x01 definitely not a tfrecord" * 20)
    with pytest.raises(ValueError, match="garbage.tfrecord"):
        h36m_tfrecord.read_authors_tfrecords(str(garbage))
    # A record missing the 3D keys.
    path = tmp_path / "no3d.tfrecord"
    feature = {"image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[10, 10]))}
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    with pytest.raises(ValueError, match="no3d.tfrecord.*image/"):
        h36m_tfrecord.read_authors_tfrecords(str(path))
    # Records with one instance read as two: the wrong value count is reported with the key.
    pixels, pose3d, sizes, _ = _random_records(2)
    path = tmp_path / "one_instance.tfrecord"
    h36m_tfrecord.write_authors_tfrecords(path, pixels[:, :1], pose3d, sizes[:, :1])
    with pytest.raises(ValueError, match="one_instance.tfrecord.*image/.*size: 1"):
        h36m_tfrecord.read_authors_tfrecords(str(path))
    assert h36m_tfrecord.read_authors_tfrecords(str(path), num_instances=1)["scores"].shape == (2, 1, 13)
    with pytest.raises(ValueError, match=r"keypoints_2d.*\(2, 2, 12, 2\)"):
        h36m_tfrecord.write_authors_tfrecords(tmp_path / "x", pixels[:, :, :12], pose3d, sizes)
    with pytest.raises(ValueError, match=r"keypoints_3d.*\(2, 16, 3\)"):
        h36m_tfrecord.write_authors_tfrecords(tmp_path / "x", pixels, pose3d[:, :16], sizes)
    with pytest.raises(ValueError, match="image_sizes"):
        h36m_tfrecord.write_authors_tfrecords(tmp_path / "x", pixels, pose3d, (0, 1000))
    with pytest.raises(ValueError, match="unit_3d"):
        h36m_tfrecord.read_authors_tfrecords(str(garbage), unit_3d="cm")


def test_real_s11_frames_through_the_authors_layout(realdata_dir, tmp_path):
    root = realdata_dir / "h36m"
    pose32 = safe_pickle.load_npz(root / "data_3d_h36m_S11_sample.npz")["positions_3d"].item()[
        "S11"]["Directions 1"][:20].astype(np.float64)
    gt_2d = safe_pickle.load_npz(root / "data_2d_h36m_S11_sample_gt.npz")["positions_2d"].item()[
        "S11"]["Directions 1"]
    to13 = [10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]
    path = tmp_path / "s11.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for frame in range(20):  # cameras 0 and 2 as (anchor, positive)
            pixels = [gt_2d[0][frame][to13], gt_2d[2][frame][to13]]
            writer.write(_hand_made_example(pose32[frame] * 1000.0, pixels,
                                            [(1002, 1000), (1000, 1000)], np.ones((2, 13))))
    data = h36m_tfrecord.read_authors_tfrecords(str(path))
    np.testing.assert_allclose(data["keypoints_3d"], pose32[:, H36M32_TO_17], atol=1e-6)
    np.testing.assert_allclose(data["keypoints_2d"][:, 0], gt_2d[0][:20][:, to13], atol=1e-3)
    np.testing.assert_allclose(data["keypoints_2d"][:, 1], gt_2d[2][:20][:, to13], atol=1e-3)


def test_names_agree_with_the_keypoints_module():

    assert tuple(h36m_tfrecord.KEYPOINT_NAMES_3D) == tuple(profiles.H36M17_LEGACY_JOINT_NAMES)
    for index, name in enumerate(profiles.H36M17_JOINT_NAMES):
        legacy_name = h36m_tfrecord.KEYPOINT_NAMES_3D[h36m_tfrecord.LEGACY17_TO_H36M17[index]]
        assert legacy_name == name
    assert len(h36m_tfrecord.KEYPOINT_NAMES_2D) == len(profiles.JOINT_NAMES) == 13
