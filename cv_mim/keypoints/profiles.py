"""Keypoint profiles, source-layout converters and the pose normalisations of CV-MIM.

The model sees every 2D pose as the canonical 13-joint profile of Pr-VIPE [48] that the paper uses
(§4.2, "a skeleton representation that consists of 13 joints according to the keypoint definition in
[48]"); its order is the authors' (fact sheet §6.2, ``LEGACY_2DCOCO13``):

  0 head, 1 left_shoulder, 2 right_shoulder, 3 left_elbow, 4 right_elbow, 5 left_wrist, 6 right_wrist,
  7 left_hip, 8 right_hip, 9 left_knee, 10 right_knee, 11 left_ankle, 12 right_ankle

"left"/"right" are always the person's anatomical sides. Coordinates are (x, y) image pixels
(x right, y down) before normalisation.

Contents
* Profile constants: :data:`NUM_JOINTS`, :data:`JOINT_NAMES`, :data:`LEFT_RIGHT_SWAP`, :data:`BONES`.
* Source layouts (native joint orders) and :func:`convert_keypoints`, which maps any of them to the
  canonical profile plus a presence mask. "head" is the head-top for Human3.6M (as the authors, who let
  H36M ``Head`` stand in for the nose tip), the nose for COCO / OpenPose, Kinect's ``Head`` for NTU and
  Penn Action's head point. Head rule for detector layouts: a layout that has a head-top (OpenPose
  BODY_25B ``HeadTop``, Halpe-26 ``head``) uses it, because the encoder learns the Human3.6M head-top;
  nose-only layouts (COCO-17, BODY_25, COCO-18, MediaPipe-33, COCO-WholeBody) use the nose.
* :func:`layouts_with_joints` — the layouts of one joint count; the plausibility check that tells
  same-size layouts apart is :mod:`cv_mim.keypoints.plausibility`.
* :func:`validate_keypoints` — the numpy-level input check (ValueError naming the input and its shape).
* :func:`normalize_keypoints_2d` — the authors' 2D normalisation (fact sheet §6.3) with one documented
  rule for missing joints; :func:`normalize_keypoints_3d` — their ``LEGACY_3DH36M17`` 3D normalisation
  (fact sheet §6.2) applied to the VideoPose3D 17-joint order.

This module imports TensorFlow lazily (only inside the two normalisation functions), so the numpy-only
format readers in ``cv_mim/data`` can import the layout constants without pulling in TensorFlow.
"""

from __future__ import annotations

import numpy as np

NUM_JOINTS = 13


JOINT_NAMES = (
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)


# LEFT_RIGHT_SWAP[i] is the index of the mirror-image joint of joint i, so ``kp[..., LEFT_RIGHT_SWAP, :]``
# relabels left as right (needed together with x -> -x for a horizontal flip). It is an involution.
LEFT_RIGHT_SWAP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11)


# Limb segments for drawing (head to both shoulders, shoulder and hip girdles, arms, trunk sides, legs).
BONES = (
    (0, 1),
    (0, 2),
    (1, 2),
    (1, 3),
    (3, 5),
    (2, 4),
    (4, 6),
    (1, 7),
    (2, 8),
    (7, 8),
    (7, 9),
    (9, 11),
    (8, 10),
    (10, 12),
)


# Indices used by the 2D normalisation (fact sheet §6.3).
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 1, 2, 7, 8


# The six torso pairs whose largest distance is the 2D scale.
TORSO_PAIRS = (
    (LEFT_SHOULDER, RIGHT_SHOULDER),
    (LEFT_SHOULDER, LEFT_HIP),
    (LEFT_SHOULDER, RIGHT_HIP),
    (RIGHT_SHOULDER, LEFT_HIP),
    (RIGHT_SHOULDER, RIGHT_HIP),
    (LEFT_HIP, RIGHT_HIP),
)


# The authors' scale unit for 2D: the largest torso distance becomes 0.5.
SCALE_UNIT_2D = 0.5


# Lower bound on the scale, as the authors' max(1e-12, scale).
_EPS = 1e-12


# Human3.6M 32-joint motion-capture skeleton (the order of the dataset's D3_Positions / the 3d-pose-baseline
# H5 files and VideoPose3D's data_3d_h36m.npz). The 17 joints that 3d-pose-baseline names keep their names
# (Hip, RHip, ..., "Neck/Nose", "Head" = head-top end site). The other 15 are end sites or duplicates
# (several coincide with a parent joint) that no dataset in this project uses; they get descriptive names.
H36M32_JOINT_NAMES = (
    "Hip",  # 0 pelvis (root)
    "RHip",  # 1
    "RKnee",  # 2
    "RFoot",  # 3 ankle
    "RToe",  # 4 toe base
    "RToeSite",  # 5 toe end site
    "LHip",  # 6
    "LKnee",  # 7
    "LFoot",  # 8 ankle
    "LToe",  # 9
    "LToeSite",  # 10
    "SpineBase",  # 11 coincides with Hip
    "Spine",  # 12
    "Thorax",  # 13
    "Neck/Nose",  # 14
    "Head",  # 15 head-top (end site)
    "LClavicle",  # 16 coincides with Thorax
    "LShoulder",  # 17
    "LElbow",  # 18
    "LWrist",  # 19
    "LThumb",  # 20
    "LThumbSite",  # 21
    "LWristEnd",  # 22
    "LWristEndSite",  # 23
    "RClavicle",  # 24 coincides with Thorax
    "RShoulder",  # 25
    "RElbow",  # 26
    "RWrist",  # 27
    "RThumb",  # 28
    "RThumbSite",  # 29
    "RWristEnd",  # 30
    "RWristEndSite",  # 31
)


# Human3.6M 17 joints in VideoPose3D's order (its data_2d_h36m_*.npz and the 32->17 reduction).
H36M17_JOINT_NAMES = (
    "Hip",
    "RHip",
    "RKnee",
    "RFoot",
    "LHip",
    "LKnee",
    "LFoot",
    "Spine",
    "Thorax",
    "Neck/Nose",
    "Head",
    "LShoulder",
    "LElbow",
    "LWrist",
    "RShoulder",
    "RElbow",
    "RWrist",
)


# The 32-joint indices of H36M17_JOINT_NAMES.
H36M32_TO_H36M17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)


# The authors' LEGACY_3DH36M17 order (fact sheet §6.1/§6.2): the order of the 3D keypoints in their
# H36M tf.Example files.
H36M17_LEGACY_JOINT_NAMES = (
    "Hip",
    "Head",
    "Neck/Nose",
    "Thorax",
    "LShoulder",
    "RShoulder",
    "LElbow",
    "RElbow",
    "LWrist",
    "RWrist",
    "Spine",
    "LHip",
    "RHip",
    "LKnee",
    "RKnee",
    "LFoot",
    "RFoot",
)


# MS-COCO 17 keypoints.
COCO17_JOINT_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)


# Penn Action's 13 joints in the native column order of its label files (x, y, visibility), named by the
# person's ANATOMICAL side. The dataset's README lists "left" before "right" in every pair; the label files
# show that the first joint of each pair is the person's RIGHT side (the left one in the image when the
# person faces the camera). Evidence from the real label files (front/back shoulder and hip x-order, and
# knee direction + occlusion in side views) is recorded in BUILD_NOTES.md and re-checked by
# tests/test_keypoints_realdata.py.
PENN13_JOINT_NAMES = (
    "head",
    "right_shoulder",
    "left_shoulder",
    "right_elbow",
    "left_elbow",
    "right_wrist",
    "left_wrist",
    "right_hip",
    "left_hip",
    "right_knee",
    "left_knee",
    "right_ankle",
    "left_ankle",
)


# NTU RGB+D: the 25 Kinect v2 joints (0-based; Kinect's Left/Right are the person's anatomical sides in
# Kinect's right-handed camera space).
NTU25_JOINT_NAMES = (
    "SpineBase",  # 0
    "SpineMid",  # 1
    "Neck",  # 2
    "Head",  # 3
    "ShoulderLeft",  # 4
    "ElbowLeft",  # 5
    "WristLeft",  # 6
    "HandLeft",  # 7
    "ShoulderRight",  # 8
    "ElbowRight",  # 9
    "WristRight",  # 10
    "HandRight",  # 11
    "HipLeft",  # 12
    "KneeLeft",  # 13
    "AnkleLeft",  # 14
    "FootLeft",  # 15
    "HipRight",  # 16
    "KneeRight",  # 17
    "AnkleRight",  # 18
    "FootRight",  # 19
    "SpineShoulder",  # 20
    "HandTipLeft",  # 21
    "ThumbLeft",  # 22
    "HandTipRight",  # 23
    "ThumbRight",  # 24
)


# OpenPose BODY_25.
OPENPOSE25_JOINT_NAMES = (
    "Nose",  # 0
    "Neck",  # 1
    "RShoulder",  # 2
    "RElbow",  # 3
    "RWrist",  # 4
    "LShoulder",  # 5
    "LElbow",  # 6
    "LWrist",  # 7
    "MidHip",  # 8
    "RHip",  # 9
    "RKnee",  # 10
    "RAnkle",  # 11
    "LHip",  # 12
    "LKnee",  # 13
    "LAnkle",  # 14
    "REye",  # 15
    "LEye",  # 16
    "REar",  # 17
    "LEar",  # 18
    "LBigToe",  # 19
    "LSmallToe",  # 20
    "LHeel",  # 21
    "RBigToe",  # 22
    "RSmallToe",  # 23
    "RHeel",  # 24
)


# OpenPose BODY_25B (the experimental model of openpose_train, the default of Pose2Sim): the 17 COCO
# joints in COCO order, then the upper neck, the head-top and the six foot points. Same size as BODY_25
# but a different order: reading one as the other moves 10 of the 13 canonical joints.
OPENPOSE25B_JOINT_NAMES = (
    "Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist",
    "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle", "UpperNeck", "HeadTop",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)


# OpenPose COCO-18 (``--model_pose COCO``; also the OpenPose-style 18-joint output of many ports).
OPENPOSE18_JOINT_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip", "RKnee",
    "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)


# Halpe-26 (AlphaPose ``halpe26`` models): COCO-17, then head-top ("Head"), neck, mid-hip and the feet.
HALPE26_JOINT_NAMES = COCO17_JOINT_NAMES + (
    "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe",
    "left_heel", "right_heel",
)


# MediaPipe Pose / BlazePose 33 landmarks.
MEDIAPIPE33_JOINT_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)


# COCO-WholeBody 133 keypoints: body (COCO-17 order) 0-16, feet 17-22, face 23-90, left hand 91-111,
# right hand 112-132. Only the body part is used; the other 116 get positional names.
COCO_WHOLEBODY133_JOINT_NAMES = (
    COCO17_JOINT_NAMES
    + ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
    + tuple(f"face_{i}" for i in range(68))
    + tuple(f"left_hand_{i}" for i in range(21))
    + tuple(f"right_hand_{i}" for i in range(21))
)


SOURCE_LAYOUTS = (
    "canonical13",
    "h36m32",
    "h36m17",
    "h36m17_legacy",
    "coco17",
    "penn13",
    "ntu25",
    "openpose25",
    "openpose25b",
    "openpose18",
    "halpe26",
    "mediapipe33",
    "coco_wholebody133",
)


LAYOUT_JOINT_NAMES = {
    "canonical13": JOINT_NAMES,
    "h36m32": H36M32_JOINT_NAMES,
    "h36m17": H36M17_JOINT_NAMES,
    "h36m17_legacy": H36M17_LEGACY_JOINT_NAMES,
    "coco17": COCO17_JOINT_NAMES,
    "penn13": PENN13_JOINT_NAMES,
    "ntu25": NTU25_JOINT_NAMES,
    "openpose25": OPENPOSE25_JOINT_NAMES,
    "openpose25b": OPENPOSE25B_JOINT_NAMES,
    "openpose18": OPENPOSE18_JOINT_NAMES,
    "halpe26": HALPE26_JOINT_NAMES,
    "mediapipe33": MEDIAPIPE33_JOINT_NAMES,
    "coco_wholebody133": COCO_WHOLEBODY133_JOINT_NAMES,
}


# For each layout, the source joint that fills each canonical joint (in JOINT_NAMES order).
_H36M_CANONICAL_SOURCES = (
    "Head",  # head-top stands in for the head, as the authors' compatible-name table does
    "LShoulder",
    "RShoulder",
    "LElbow",
    "RElbow",
    "LWrist",
    "RWrist",
    "LHip",
    "RHip",
    "LKnee",
    "RKnee",
    "LFoot",  # H36M's "Foot" joint is the ankle
    "RFoot",
)


# The 12 limb joints in canonical order, in OpenPose's and in COCO's (snake_case) spelling.
_OPENPOSE_LIMBS = ("LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist", "RWrist", "LHip", "RHip",
                   "LKnee", "RKnee", "LAnkle", "RAnkle")


_COCO_STYLE_LIMBS = COCO17_JOINT_NAMES[5:]


_CANONICAL_SOURCES = {
    "canonical13": JOINT_NAMES,
    "h36m32": _H36M_CANONICAL_SOURCES,
    "h36m17": _H36M_CANONICAL_SOURCES,
    "h36m17_legacy": _H36M_CANONICAL_SOURCES,
    "coco17": ("nose",) + COCO17_JOINT_NAMES[5:],
    "penn13": JOINT_NAMES,  # PENN13_JOINT_NAMES uses the canonical (anatomical) names
    "ntu25": (
        "Head",
        "ShoulderLeft",
        "ShoulderRight",
        "ElbowLeft",
        "ElbowRight",
        "WristLeft",
        "WristRight",
        "HipLeft",
        "HipRight",
        "KneeLeft",
        "KneeRight",
        "AnkleLeft",
        "AnkleRight",
    ),
    "openpose25": (
        "Nose",
        "LShoulder",
        "RShoulder",
        "LElbow",
        "RElbow",
        "LWrist",
        "RWrist",
        "LHip",
        "RHip",
        "LKnee",
        "RKnee",
        "LAnkle",
        "RAnkle",
    ),
    # Head rule (module docstring): layouts that have a head-top use it, as the encoder was trained on
    # the Human3.6M head-top; nose-only layouts use the nose.
    "openpose25b": ("HeadTop",) + _OPENPOSE_LIMBS,
    "openpose18": ("Nose",) + _OPENPOSE_LIMBS,
    "halpe26": ("head",) + COCO17_JOINT_NAMES[5:],
    "mediapipe33": ("nose",) + _COCO_STYLE_LIMBS,
    "coco_wholebody133": ("nose",) + _COCO_STYLE_LIMBS,
}


# LAYOUT_TO_CANONICAL[layout][k] = native index of canonical joint k, e.g. 'h36m32' ->
# (15, 17, 25, 18, 26, 19, 27, 6, 1, 7, 2, 8, 3).
LAYOUT_TO_CANONICAL = {
    layout: tuple(LAYOUT_JOINT_NAMES[layout].index(name) for name in _CANONICAL_SOURCES[layout])
    for layout in SOURCE_LAYOUTS
}


def layouts_with_joints(num_joints):
    """The source layouts with ``num_joints`` joints (the candidates a same-size mix-up can come from)."""
    return tuple(name for name in SOURCE_LAYOUTS if len(LAYOUT_JOINT_NAMES[name]) == num_joints)


def _as_keypoint_array(array, name, num_joints, dims):
    """Shape/dtype checks shared by validate_keypoints and convert_keypoints (no finiteness check)."""
    allowed_dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    try:
        arr = np.asarray(array)
    except Exception as e:  # ragged nested lists and the like
        raise ValueError(f"{name}: cannot be read as a numeric array ({e})") from e
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype} with shape {arr.shape}")
    joints = "J" if num_joints is None else str(num_joints)
    dims_text = "|".join(str(d) for d in allowed_dims)
    expected = f"[..., {joints}, {dims_text}]"
    if arr.ndim < 2:
        raise ValueError(f"{name}: expected shape {expected}, got shape {arr.shape} (rank {arr.ndim})")
    if arr.shape[-1] not in allowed_dims:
        raise ValueError(
            f"{name}: expected shape {expected} (last axis = coordinates), got shape {arr.shape}"
        )
    if num_joints is not None and arr.shape[-2] != num_joints:
        raise ValueError(
            f"{name}: expected shape {expected} ({num_joints} joints on axis -2), got shape {arr.shape}"
        )
    return arr.astype(np.float32)


def validate_keypoints(array, name, *, num_joints=None, dims=2):
    """Checks a keypoint array and returns it as float32.

    Args:
      array: array-like of shape [..., J, dims] (any leading dims).
      name: what to call the input in error messages (an argument or file name).
      num_joints: required J, or None for any.
      dims: required size of the coordinate axis (int), or a tuple of accepted sizes.
    Returns:
      np.ndarray float32 of the same shape.
    Raises:
      ValueError: naming ``name`` and the shape, for a non-numeric array, rank < 2, a wrong joint count
        or coordinate size, or any NaN/inf value.
    """
    arr = _as_keypoint_array(array, name, num_joints, dims)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)
        raise ValueError(
            f"{name}: {int((~finite).sum())} non-finite (NaN/inf) value(s) in array of shape {arr.shape}, "
            f"first at index {tuple(int(i) for i in bad[0])}"
        )
    return arr


def convert_keypoints(keypoints, layout, scores=None):
    """Maps keypoints of a source layout to the canonical 13-joint profile.

    Pure re-indexing (no coordinate change): canonical joint k is native joint
    ``LAYOUT_TO_CANONICAL[layout][k]``. Head choice: H36M head-top ("Head", as the authors), COCO /
    OpenPose nose, NTU (Kinect v2) "Head", Penn Action head. Ankles: H36M "Foot" (its ankle joint),
    Kinect "Ankle*", COCO/OpenPose ankles.

    Args:
      keypoints: [..., J, C] array-like in the native order of ``layout`` (J = len of its joint-name
        tuple), C = 2 (pixels) or 3 (kept as is).
      layout: one of SOURCE_LAYOUTS.
      scores: optional [..., J] confidences / visibilities (e.g. Penn ``visibility``, NTU
        ``trackingState``, detector scores); a joint is present when its score is > 0.
    Returns:
      (kp13, mask13): float32 [..., 13, C] and float32 [..., 13] in {0, 1} (1 = present; all ones when
      ``scores`` is None). Coordinates of joints marked missing are set to 0 when they are non-finite,
      so the output is always finite.
    Raises:
      ValueError: unknown layout; wrong shape of ``keypoints`` or ``scores``; non-finite scores; a
        non-finite coordinate at a joint that is marked present.
    """
    if layout not in LAYOUT_JOINT_NAMES:
        raise ValueError(f"layout: unknown layout {layout!r}; expected one of {SOURCE_LAYOUTS}")
    num_source = len(LAYOUT_JOINT_NAMES[layout])
    shape = np.shape(keypoints)
    if len(shape) >= 2 and shape[-2] != num_source:
        same = layouts_with_joints(shape[-2])
        hint = f"; layouts with {shape[-2]} joints: {same}" if same else ""
        raise ValueError(f"keypoints: layout {layout!r} has {num_source} joints, got {shape[-2]} "
                         f"(array of shape {tuple(shape)}){hint}")
    kp = _as_keypoint_array(keypoints, "keypoints", num_source, (2, 3))
    index = np.asarray(LAYOUT_TO_CANONICAL[layout])
    kp13 = kp[..., index, :]
    if scores is None:
        mask13 = np.ones(kp13.shape[:-1], np.float32)
    else:
        try:
            sc = np.asarray(scores, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"scores: cannot be read as a numeric array ({e})") from e
        if sc.shape != kp.shape[:-1]:
            raise ValueError(
                f"scores: expected shape {kp.shape[:-1]} (keypoints' shape without the coordinate axis, "
                f"layout {layout!r}), got shape {sc.shape}"
            )
        if not np.isfinite(sc).all():
            raise ValueError(f"scores: non-finite (NaN/inf) values in array of shape {sc.shape}")
        mask13 = (sc[..., index] > 0).astype(np.float32)
    finite13 = np.isfinite(kp13).all(axis=-1)
    bad = (~finite13) & (mask13 > 0)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"keypoints: non-finite (NaN/inf) coordinates at {int(bad.sum())} joint(s) marked present "
            f"(array of shape {kp.shape}, layout {layout!r}; first at canonical index {first}); pass "
            f"scores <= 0 for missing joints"
        )
    kp13 = np.where(finite13[..., None], kp13, np.float32(0.0)).astype(np.float32)
    return kp13, mask13


# VideoPose3D 17-joint indices used by the 3D rule.
_H36M17_HIP = H36M17_JOINT_NAMES.index("Hip")


_H36M17_SPINE = H36M17_JOINT_NAMES.index("Spine")


_H36M17_THORAX = H36M17_JOINT_NAMES.index("Thorax")
