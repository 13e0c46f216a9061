"""Tests of cv_mim/keypoints/profiles.py and normalization.py: profile constants, layout converters, validation and normalisations.

Expected index tables below are written by hand from each dataset's documented joint order (not taken
from the module), and the normalisation is checked against an independent loop-based NumPy reference.
"""
import itertools
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cv_mim.keypoints import normalization
from cv_mim.keypoints import profiles

# Hand-written from the documented native orders: native index of each canonical joint
# (head, LS, RS, LE, RE, LW, RW, LH, RH, LK, RK, LA, RA).
EXPECTED_INDICES = {
    "canonical13": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
    # H36M 32: Head 15, LShoulder 17, RShoulder 25, LElbow 18, RElbow 26, LWrist 19, RWrist 27,
    # LHip 6, RHip 1, LKnee 7, RKnee 2, LFoot 8, RFoot 3.
    "h36m32": (15, 17, 25, 18, 26, 19, 27, 6, 1, 7, 2, 8, 3),
    # VideoPose3D 17: Hip, RHip, RKnee, RFoot, LHip, LKnee, LFoot, Spine, Thorax, Neck/Nose, Head,
    # LShoulder, LElbow, LWrist, RShoulder, RElbow, RWrist.
    "h36m17": (10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3),
    # LEGACY_3DH36M17: Hip, Head, Neck/Nose, Thorax, LShoulder, RShoulder, LElbow, RElbow, LWrist, RWrist,
    # Spine, LHip, RHip, LKnee, RKnee, LFoot, RFoot.
    "h36m17_legacy": (1, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16),
    "coco17": (0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
    # Penn native (decided from the label files): head, R-sho, L-sho, R-elb, L-elb, R-wri, L-wri, R-hip,
    # L-hip, R-knee, L-knee, R-ank, L-ank.
    "penn13": (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11),
    # Kinect v2 (0-based): Head 3, ShoulderLeft 4, ShoulderRight 8, ElbowLeft 5, ElbowRight 9,
    # WristLeft 6, WristRight 10, HipLeft 12, HipRight 16, KneeLeft 13, KneeRight 17, AnkleLeft 14,
    # AnkleRight 18.
    "ntu25": (3, 4, 8, 5, 9, 6, 10, 12, 16, 13, 17, 14, 18),
    # BODY_25: Nose 0, LShoulder 5, RShoulder 2, LElbow 6, RElbow 3, LWrist 7, RWrist 4, LHip 12, RHip 9,
    # LKnee 13, RKnee 10, LAnkle 14, RAnkle 11.
    "openpose25": (0, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11),
}
NUM_SOURCE = {
    "canonical13": 13,
    "h36m32": 32,
    "h36m17": 17,
    "h36m17_legacy": 17,
    "coco17": 17,
    "penn13": 13,
    "ntu25": 25,
    "openpose25": 25,
}
# The authors' 32 -> LEGACY_3DH36M17 selection (fact sheet §6.1).
LEGACY_FROM_H36M32 = (0, 15, 14, 13, 17, 25, 18, 26, 19, 27, 12, 6, 1, 7, 2, 8, 3)


def _side(name):
    """'left'/'right'/None from a joint name of any layout (L*, *Left, left_*)."""
    n = name.lower()
    if n.startswith("left") or n.endswith("left") or (name[0] == "L" and name[1].isupper()):
        return "left"
    if n.startswith("right") or n.endswith("right") or (name[0] == "R" and name[1].isupper()):
        return "right"
    return None


# ------------------------------------------------------------------------------------------ profile


def test_profile_constants():
    assert profiles.NUM_JOINTS == 13
    assert profiles.JOINT_NAMES == (
        "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
        "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    )  # fmt: skip
    assert profiles.SOURCE_LAYOUTS == (
        "canonical13", "h36m32", "h36m17", "h36m17_legacy", "coco17", "penn13", "ntu25", "openpose25",
        "openpose25b", "openpose18", "halpe26", "mediapipe33", "coco_wholebody133",
    )  # fmt: skip


def test_left_right_swap_is_involution_mapping_left_to_right():
    swap = profiles.LEFT_RIGHT_SWAP
    assert sorted(swap) == list(range(13))
    assert all(swap[swap[i]] == i for i in range(13))
    assert swap[0] == 0
    for i, name in enumerate(profiles.JOINT_NAMES):
        if name.startswith("left_"):
            assert profiles.JOINT_NAMES[swap[i]] == "right_" + name[len("left_"):]
        elif name.startswith("right_"):
            assert profiles.JOINT_NAMES[swap[i]] == "left_" + name[len("right_"):]
    # Applying it to an array mirrors labels.
    kp = np.arange(26, dtype=np.float32).reshape(13, 2)
    np.testing.assert_array_equal(kp[list(swap)][list(swap)], kp)


def test_bones_are_valid_and_connect_all_joints():
    edges = set()
    for i, j in profiles.BONES:
        assert 0 <= i < 13 and 0 <= j < 13 and i != j
        edges.add(frozenset((i, j)))
    assert len(edges) == len(profiles.BONES)  # no duplicates
    # Connected: flood fill from the head reaches every joint.
    reached, frontier = {0}, [0]
    while frontier:
        a = frontier.pop()
        for e in edges:
            if a in e:
                (b,) = e - {a}
                if b not in reached:
                    reached.add(b)
                    frontier.append(b)
    assert reached == set(range(13))
    # Mirror-symmetric: swapping left/right maps the bone set onto itself.
    swap = profiles.LEFT_RIGHT_SWAP
    assert {frozenset((swap[i], swap[j])) for i, j in profiles.BONES} == edges


# ------------------------------------------------------------------------------------------ layouts


def test_layout_name_tuples():
    assert profiles.H36M17_JOINT_NAMES == (
        "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck/Nose", "Head",
        "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
    )  # fmt: skip
    assert profiles.H36M32_TO_H36M17 == (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
    assert tuple(profiles.H36M32_JOINT_NAMES[i] for i in profiles.H36M32_TO_H36M17) == profiles.H36M17_JOINT_NAMES
    assert tuple(profiles.H36M32_JOINT_NAMES[i] for i in LEGACY_FROM_H36M32) == profiles.H36M17_LEGACY_JOINT_NAMES
    for layout, n in NUM_SOURCE.items():
        names = profiles.LAYOUT_JOINT_NAMES[layout]
        assert len(names) == n, layout
        assert len(set(names)) == n, layout  # unique names
    assert profiles.COCO17_JOINT_NAMES[0] == "nose" and profiles.COCO17_JOINT_NAMES[5] == "left_shoulder"
    assert profiles.NTU25_JOINT_NAMES[3] == "Head" and profiles.NTU25_JOINT_NAMES[20] == "SpineShoulder"
    assert profiles.OPENPOSE25_JOINT_NAMES[0] == "Nose" and profiles.OPENPOSE25_JOINT_NAMES[8] == "MidHip"
    assert set(profiles.PENN13_JOINT_NAMES) == set(profiles.JOINT_NAMES)


@pytest.mark.parametrize("layout", list(EXPECTED_INDICES))
def test_convert_moves_each_source_joint_to_its_canonical_slot(layout):
    n = NUM_SOURCE[layout]
    # A distinct value per source joint (x = joint index, y = 1000 + joint index), with leading dims.
    kp = np.zeros((2, 3, n, 2), np.float32)
    kp[..., 0] = np.arange(n)
    kp[..., 1] = 1000 + np.arange(n)
    kp[1] += 0.25  # leading entries stay distinguishable
    kp13, mask13 = profiles.convert_keypoints(kp, layout)
    assert kp13.shape == (2, 3, 13, 2) and kp13.dtype == np.float32
    assert mask13.shape == (2, 3, 13) and mask13.dtype == np.float32
    np.testing.assert_array_equal(mask13, 1.0)
    expected = np.array(EXPECTED_INDICES[layout], np.float32)
    np.testing.assert_array_equal(kp13[0, :, :, 0], np.broadcast_to(expected, (3, 13)))
    np.testing.assert_array_equal(kp13[1, :, :, 1], np.broadcast_to(1000.25 + expected, (3, 13)))


@pytest.mark.parametrize("layout", list(EXPECTED_INDICES))
def test_convert_sides_and_head_choice(layout):
    names = profiles.LAYOUT_JOINT_NAMES[layout]
    idx = profiles.LAYOUT_TO_CANONICAL[layout]
    for k, canonical in enumerate(profiles.JOINT_NAMES):
        source = names[idx[k]]
        if canonical == "head":
            assert source == {
                "canonical13": "head", "h36m32": "Head", "h36m17": "Head", "h36m17_legacy": "Head",
                "coco17": "nose", "penn13": "head", "ntu25": "Head", "openpose25": "Nose",
            }[layout]  # fmt: skip
        else:
            assert _side(source) == canonical.split("_")[0], (layout, canonical, source)


def test_h36m_head_is_head_top_index():
    assert profiles.LAYOUT_TO_CANONICAL["h36m32"][0] == 15
    assert profiles.LAYOUT_TO_CANONICAL["h36m17"][0] == 10
    assert profiles.LAYOUT_TO_CANONICAL["h36m17_legacy"][0] == 1
    assert profiles.LAYOUT_TO_CANONICAL["ntu25"][0] == 3


def test_h36m_conversions_agree_through_17_joint_selections():
    rng = np.random.default_rng(0)
    kp32 = rng.normal(size=(5, 32, 3)).astype(np.float32)  # 3D kept
    via32, _ = profiles.convert_keypoints(kp32, "h36m32")
    via17, _ = profiles.convert_keypoints(kp32[:, list(profiles.H36M32_TO_H36M17)], "h36m17")
    via_legacy, _ = profiles.convert_keypoints(kp32[:, list(LEGACY_FROM_H36M32)], "h36m17_legacy")
    assert via32.shape == (5, 13, 3)
    np.testing.assert_array_equal(via32, via17)
    np.testing.assert_array_equal(via32, via_legacy)


def test_convert_scores_give_mask_and_missing_nan_becomes_zero():
    kp = np.arange(17 * 2, dtype=np.float32).reshape(17, 2)
    scores = np.ones(17)
    scores[5] = 0.0  # left_shoulder (COCO 5) missing
    scores[16] = -1.0  # right_ankle (COCO 16) missing
    scores[1] = 0.0  # left_eye: not used by the canonical profile
    kp[5] = np.nan
    kp[16] = np.inf
    kp[1] = np.nan
    kp13, mask13 = profiles.convert_keypoints(kp, "coco17", scores=scores)
    expected_mask = np.ones(13, np.float32)
    expected_mask[[1, 12]] = 0
    np.testing.assert_array_equal(mask13, expected_mask)
    assert np.isfinite(kp13).all()
    np.testing.assert_array_equal(kp13[[1, 12]], 0.0)
    np.testing.assert_array_equal(kp13[0], [0, 1])  # nose kept


def test_convert_errors_name_the_input():
    with pytest.raises(ValueError, match=r"layout.*'mpii'"):
        profiles.convert_keypoints(np.zeros((13, 2)), "mpii")
    with pytest.raises(ValueError, match=r"keypoints.*17.*\(4, 13, 2\)"):
        profiles.convert_keypoints(np.zeros((4, 13, 2)), "coco17")
    with pytest.raises(ValueError, match=r"keypoints.*\(17, 4\)"):
        profiles.convert_keypoints(np.zeros((17, 4)), "coco17")
    with pytest.raises(ValueError, match=r"scores.*\(16,\)"):
        profiles.convert_keypoints(np.zeros((17, 2)), "coco17", scores=np.ones(16))
    with pytest.raises(ValueError, match=r"scores.*non-finite"):
        profiles.convert_keypoints(np.zeros((17, 2)), "coco17", scores=np.full(17, np.nan))
    bad = np.zeros((17, 2))
    bad[11, 0] = np.nan  # left hip, present
    with pytest.raises(ValueError, match=r"keypoints.*non-finite.*present"):
        profiles.convert_keypoints(bad, "coco17")


# ------------------------------------------------------------------------------------------ validation


def test_validate_keypoints_accepts_and_casts():
    out = profiles.validate_keypoints(np.ones((3, 13, 2), np.float64), "poses", num_joints=13)
    assert out.dtype == np.float32 and out.shape == (3, 13, 2)
    out = profiles.validate_keypoints([[1, 2, 3]] * 17, "p3d", num_joints=17, dims=3)
    assert out.shape == (17, 3)
    assert profiles.validate_keypoints(np.zeros((4, 2, 3)), "x", dims=(2, 3)).shape == (4, 2, 3)


@pytest.mark.parametrize(
    "array, kwargs, pattern",
    [
        (np.zeros(13), {}, r"my_poses.*\(13,\).*rank 1"),
        (np.zeros((5, 12, 2)), {"num_joints": 13}, r"my_poses.*13 joints.*\(5, 12, 2\)"),
        (np.zeros((5, 13, 3)), {"num_joints": 13}, r"my_poses.*\(5, 13, 3\)"),
        (np.full((2, 13, 2), np.nan), {}, r"my_poses.*non-finite.*\(2, 13, 2\)"),
        (np.full((2, 13, 2), np.inf), {}, r"my_poses.*non-finite"),
        (np.array([["a", "b"]] * 13), {}, r"my_poses.*numeric.*\(13, 2\)"),
    ],
)
def test_validate_keypoints_errors(array, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        profiles.validate_keypoints(array, "my_poses", **kwargs)


# ------------------------------------------------------------------------------------------ 2D normalisation


def reference_normalize(kp, mask):
    """Independent loop-based NumPy implementation of the documented rule for one pose [13, 2]."""
    vis = [j for j in range(13) if mask[j] > 0 and np.all(np.isfinite(kp[j]))]
    hips = [j for j in (7, 8) if j in vis]
    if hips:
        offset = np.mean([kp[j] for j in hips], axis=0)
    elif vis:
        offset = np.mean([kp[j] for j in vis], axis=0)
    else:
        offset = np.zeros(2)
    torso = [
        np.linalg.norm(kp[a] - kp[b])
        for a, b in itertools.combinations((1, 2, 7, 8), 2)
        if a in vis and b in vis
    ]
    if torso:
        scale = max(torso)
    elif len(vis) >= 2:
        scale = max(np.linalg.norm(kp[a] - kp[b]) for a, b in itertools.combinations(vis, 2))
    else:
        scale = 1.0
    scale = max(scale, 1e-12)
    out = np.zeros((13, 2))
    for j in vis:
        out[j] = (kp[j] - offset) * 0.5 / scale
    return out, offset, scale


def _random_poses_and_masks(rng, n):
    kp = rng.uniform(0, 1000, size=(n, 13, 2))
    masks = (rng.uniform(size=(n, 13)) > rng.uniform(0, 0.9, size=(n, 1))).astype(np.float32)
    # Force each fallback to appear.
    masks[0] = 1  # all present
    masks[1] = 1
    masks[1, 7] = 0  # one hip missing
    masks[2] = 1
    masks[2, [7, 8]] = 0  # both hips missing
    masks[3] = 1
    masks[3, [1, 2, 7, 8]] = 0
    masks[3, 1] = 1  # only one torso joint -> no torso pair
    masks[4] = 0
    masks[4, 5] = 1  # a single visible joint
    masks[5] = 0  # nothing visible
    masks[6] = 0
    masks[6, [0, 12]] = 1  # two non-torso joints
    return kp, masks


def test_normalize_2d_matches_numpy_reference_on_random_poses():
    rng = np.random.default_rng(1)
    kp, masks = _random_poses_and_masks(rng, 60)
    normalized, offset, scale = normalization.normalize_keypoints_2d(kp.reshape(6, 10, 13, 2), masks.reshape(6, 10, 13))
    assert normalized.shape == (6, 10, 13, 2) and offset.shape == (6, 10, 1, 2)
    assert scale.shape == (6, 10, 1, 1)
    assert normalized.dtype == tf.float32
    normalized = normalized.numpy().reshape(60, 13, 2)
    offset = offset.numpy().reshape(60, 2)
    scale = scale.numpy().reshape(60)
    for i in range(60):
        ref_n, ref_o, ref_s = reference_normalize(kp[i], masks[i])
        np.testing.assert_allclose(normalized[i], ref_n, rtol=1e-4, atol=1e-5, err_msg=f"pose {i}")
        np.testing.assert_allclose(offset[i], ref_o, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(scale[i], ref_s, rtol=1e-5)
    # The fallback cases hit the documented values.
    np.testing.assert_allclose(offset[1], kp[1, 8], rtol=1e-6)  # visible hip
    np.testing.assert_allclose(scale[4], 1.0)
    np.testing.assert_allclose(normalized[4], 0.0, atol=0)  # single joint = its own offset
    np.testing.assert_allclose(scale[6], np.linalg.norm(kp[6, 0] - kp[6, 12]), rtol=1e-5)


def test_normalize_2d_square_torso_by_hand():
    kp = np.zeros((13, 2), np.float32)
    kp[1] = (2, 0)  # left shoulder
    kp[2] = (0, 0)  # right shoulder
    kp[7] = (2, 2)  # left hip
    kp[8] = (0, 2)  # right hip
    kp[0] = (1, -1)  # head
    kp[11] = (3, 6)  # left ankle
    normalized, offset, scale = normalization.normalize_keypoints_2d(kp)
    # offset = mid-hip (1, 2); scale = diagonal 2*sqrt(2); factor 0.5 / (2 sqrt 2) = 1 / (4 sqrt 2).
    np.testing.assert_allclose(offset.numpy(), [[1, 2]])
    np.testing.assert_allclose(scale.numpy(), [[2 * np.sqrt(2)]], rtol=1e-6)
    c = 1 / (4 * np.sqrt(2))
    np.testing.assert_allclose(normalized[0].numpy(), [0, -3 * c], rtol=1e-6)
    np.testing.assert_allclose(normalized[1].numpy(), [c, -2 * c], rtol=1e-6)
    np.testing.assert_allclose(normalized[8].numpy(), [-c, 0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(normalized[11].numpy(), [2 * c, 4 * c], rtol=1e-6)
    # Largest torso distance becomes 0.5.
    n = normalized.numpy()
    assert np.isclose(np.linalg.norm(n[1] - n[8]), 0.5, rtol=1e-6)


def test_normalize_2d_is_similarity_invariant():
    rng = np.random.default_rng(2)
    kp = rng.uniform(0, 500, size=(8, 13, 2))
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = 3.5 * kp @ rot.T + np.array([40.0, -25.0])
    a, _, s_a = normalization.normalize_keypoints_2d(kp)
    b, _, s_b = normalization.normalize_keypoints_2d(moved)
    np.testing.assert_allclose(b.numpy(), a.numpy() @ rot.T, atol=1e-5)
    np.testing.assert_allclose(s_b.numpy(), 3.5 * s_a.numpy(), rtol=1e-5)


def test_missing_joint_rule_masked_joints_zero_and_stats_unchanged():
    rng = np.random.default_rng(3)
    kp = rng.uniform(0, 800, size=(4, 13, 2)).astype(np.float32)
    mask = np.ones((4, 13), np.float32)
    mask[0, [3, 9]] = 0
    mask[1, [7]] = 0  # a hip: offset falls back to the other hip
    mask[2, [1, 2, 7, 8]] = 0  # whole torso
    mask[3, [0]] = 0
    base = normalization.normalize_keypoints_2d(kp, mask)
    for garbage in (1e9, -3.0, np.nan, np.inf):
        changed = kp.copy()
        changed[mask == 0] = garbage
        out = normalization.normalize_keypoints_2d(changed, mask)
        for x, y in zip(base, out):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
    normalized, offset, scale = (t.numpy() for t in base)
    assert np.all(normalized[mask == 0] == 0.0)
    # Present joints follow the returned statistics; pose 1's offset is its visible (right) hip.
    expected = (kp - offset) * 0.5 / scale
    np.testing.assert_allclose(normalized[mask == 1], expected[mask == 1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(offset[1, 0], kp[1, 8])


def test_all_missing_gives_zeros_no_nan():
    kp = np.full((2, 13, 2), np.nan, np.float32)
    normalized, offset, scale = normalization.normalize_keypoints_2d(kp, np.zeros((2, 13)))
    np.testing.assert_array_equal(normalized.numpy(), 0.0)
    np.testing.assert_array_equal(offset.numpy(), 0.0)
    np.testing.assert_array_equal(scale.numpy(), 1.0)


def test_mask_broadcasts_and_accepts_bool():
    rng = np.random.default_rng(4)
    kp = rng.uniform(0, 100, size=(3, 13, 2))
    mask = np.ones(13, bool)
    mask[4] = False
    a = normalization.normalize_keypoints_2d(kp, mask)[0].numpy()
    b = normalization.normalize_keypoints_2d(kp, np.tile(mask.astype(np.float32), (3, 1)))[0].numpy()
    np.testing.assert_array_equal(a, b)
    assert np.all(a[:, 4] == 0)


def test_normalize_2d_errors_name_the_input():
    with pytest.raises(ValueError, match=r"keypoints.*\(5, 13, 3\)"):
        normalization.normalize_keypoints_2d(np.zeros((5, 13, 3)))
    with pytest.raises(ValueError, match=r"keypoints.*\(17, 2\)"):
        normalization.normalize_keypoints_2d(np.zeros((17, 2)))
    with pytest.raises(ValueError, match=r"keypoints.*\(13,\)"):
        normalization.normalize_keypoints_2d(np.zeros(13))
    with pytest.raises(ValueError, match=r"mask.*\(5, 12\)"):
        normalization.normalize_keypoints_2d(np.zeros((5, 13, 2)), np.ones((5, 12)))
    with pytest.raises(ValueError, match=r"mask.*\(4, 13\)"):
        normalization.normalize_keypoints_2d(np.zeros((5, 13, 2)), np.ones((4, 13)))
    with pytest.raises(ValueError, match=r"keypoints.*numeric"):
        normalization.normalize_keypoints_2d(np.array([["a", "b"]] * 13))
    kp = np.ones((13, 2))
    kp[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"keypoints.*non-finite.*present"):
        normalization.normalize_keypoints_2d(kp)


def test_normalize_2d_graph_mode_with_unknown_batch_treats_nonfinite_as_missing():
    fn = tf.function(
        normalization.normalize_keypoints_2d,
        input_signature=[
            tf.TensorSpec([None, 13, 2], tf.float32),
            tf.TensorSpec([None, 13], tf.float32),
        ],
    )
    rng = np.random.default_rng(5)
    kp = rng.uniform(0, 600, size=(5, 13, 2)).astype(np.float32)
    mask = np.ones((5, 13), np.float32)
    mask[1, 2] = 0
    eager = normalization.normalize_keypoints_2d(kp, mask)
    graph = fn(kp, mask)
    for a, b in zip(eager, graph):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)
    assert graph[0].shape == (5, 13, 2)
    # In a graph a NaN at a present joint counts as missing (same as masking it).
    nan_kp = kp.copy()
    nan_kp[3, 8] = np.nan
    masked = mask.copy()
    masked[3, 8] = 0
    for a, b in zip(fn(nan_kp, mask), normalization.normalize_keypoints_2d(kp, masked)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)
    # No mask argument, unknown batch and rank-4 input.
    fn2 = tf.function(normalization.normalize_keypoints_2d, input_signature=[tf.TensorSpec([None, None, 13, 2])])
    out = fn2(kp.reshape(5, 1, 13, 2))
    np.testing.assert_allclose(
        out[0].numpy().reshape(5, 13, 2), normalization.normalize_keypoints_2d(kp)[0].numpy(), rtol=1e-6, atol=1e-6
    )


def test_normalize_2d_in_tf_data_and_saved_model(tmp_path):
    rng = np.random.default_rng(6)
    kp = rng.uniform(0, 600, size=(6, 13, 2)).astype(np.float32)
    mask = (rng.uniform(size=(6, 13)) > 0.2).astype(np.float32)
    expected = normalization.normalize_keypoints_2d(kp, mask)[0].numpy()
    ds = tf.data.Dataset.from_tensor_slices((kp, mask)).map(lambda k, m: normalization.normalize_keypoints_2d(k, m)[0])
    got = np.stack([x.numpy() for x in ds])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)

    module = tf.Module()
    module.normalize = tf.function(
        lambda k, m: normalization.normalize_keypoints_2d(k, m)[0],
        input_signature=[tf.TensorSpec([None, 13, 2], tf.float32), tf.TensorSpec([None, 13], tf.float32)],
    )
    tf.saved_model.save(module, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(loaded.normalize(kp, mask).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_normalize_2d_gradients_are_finite():
    kp = np.random.default_rng(7).uniform(0, 100, size=(2, 13, 2)).astype(np.float32)
    kp[0, 5] = np.nan  # masked NaN
    kp[1, 3] = kp[1, 4]  # coincident joints
    mask = np.ones((2, 13), np.float32)
    mask[0, 5] = 0
    x = tf.constant(kp)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(normalization.normalize_keypoints_2d(x, mask)[0] ** 2)
    g = tape.gradient(y, x).numpy()
    assert np.isfinite(g).all()


# ------------------------------------------------------------------------------------------ 3D normalisation


def test_normalize_3d_by_hand():
    kp = np.zeros((17, 3), np.float32)
    hip = np.array([1.0, 2.0, 3.0])
    kp[:] = hip
    kp[7] = hip + (0, 0, 3)  # Spine: |Hip - Spine| = 3
    kp[8] = kp[7] + (4, 0, 0)  # Thorax: |Spine - Thorax| = 4 -> scale 7
    kp[10] = hip + (0, 7, 14)  # Head
    kp[3] = hip + (-7, 0, 0)  # RFoot
    normalized, offset, scale = normalization.normalize_keypoints_3d(kp)
    np.testing.assert_allclose(offset.numpy(), [hip])
    np.testing.assert_allclose(scale.numpy(), [[7.0]], rtol=1e-6)
    np.testing.assert_allclose(normalized[0].numpy(), 0.0, atol=0)
    np.testing.assert_allclose(normalized[10].numpy(), [0, 1, 2], rtol=1e-6)
    np.testing.assert_allclose(normalized[3].numpy(), [-1, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(normalized[8].numpy(), [4 / 7, 0, 3 / 7], rtol=1e-6)
    # Units cancel: millimetres give the same result.
    np.testing.assert_allclose(normalization.normalize_keypoints_3d(kp * 1000)[0].numpy(), normalized.numpy(), rtol=1e-5)


def test_normalize_3d_batched_graph_and_errors():
    rng = np.random.default_rng(8)
    kp = rng.normal(size=(4, 17, 3)).astype(np.float32)
    fn = tf.function(normalization.normalize_keypoints_3d, input_signature=[tf.TensorSpec([None, 17, 3], tf.float32)])
    normalized, offset, scale = fn(kp)
    assert normalized.shape == (4, 17, 3) and offset.shape == (4, 1, 3) and scale.shape == (4, 1, 1)
    for i in range(4):
        s = np.linalg.norm(kp[i, 0] - kp[i, 7]) + np.linalg.norm(kp[i, 7] - kp[i, 8])
        np.testing.assert_allclose(normalized[i].numpy(), (kp[i] - kp[i, 0]) / s, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"keypoints_h36m17.*\(4, 13, 3\)"):
        normalization.normalize_keypoints_3d(np.zeros((4, 13, 3)))
    bad = kp.copy()
    bad[0, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"keypoints_h36m17.*non-finite"):
        normalization.normalize_keypoints_3d(bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        fn(bad)


def test_importing_module_does_not_import_tensorflow():
    # cv_mim/data readers are numpy-only and import the layout constants from here.
    code = "import sys, cv_mim.keypoints.profiles; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
