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
  Penn Action's head point.
* :func:`validate_keypoints` — the numpy-level input check (ValueError naming the input and its shape).
* :func:`normalize_keypoints_2d` — the authors' 2D normalisation (fact sheet §6.3) with one documented
  rule for missing joints; :func:`normalize_keypoints_3d` — their ``LEGACY_3DH36M17`` 3D normalisation
  (fact sheet §6.2) applied to the VideoPose3D 17-joint order.

This module imports TensorFlow lazily (only inside the two normalisation functions), so the numpy-only
format readers in ``cv_mim/data`` can import the layout constants without pulling in TensorFlow.
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------------------------------
# Canonical 13-joint profile.
# ----------------------------------------------------------------------------------------------------

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
_LEFT_SHOULDER, _RIGHT_SHOULDER, _LEFT_HIP, _RIGHT_HIP = 1, 2, 7, 8
# The six torso pairs whose largest distance is the 2D scale.
TORSO_PAIRS = (
    (_LEFT_SHOULDER, _RIGHT_SHOULDER),
    (_LEFT_SHOULDER, _LEFT_HIP),
    (_LEFT_SHOULDER, _RIGHT_HIP),
    (_RIGHT_SHOULDER, _LEFT_HIP),
    (_RIGHT_SHOULDER, _RIGHT_HIP),
    (_LEFT_HIP, _RIGHT_HIP),
)
# The authors' scale unit for 2D: the largest torso distance becomes 0.5.
SCALE_UNIT_2D = 0.5
# Lower bound on the scale, as the authors' max(1e-12, scale).
_EPS = 1e-12

# ----------------------------------------------------------------------------------------------------
# Source layouts (native joint orders).
# ----------------------------------------------------------------------------------------------------

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

SOURCE_LAYOUTS = (
    "canonical13",
    "h36m32",
    "h36m17",
    "h36m17_legacy",
    "coco17",
    "penn13",
    "ntu25",
    "openpose25",
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
}

# LAYOUT_TO_CANONICAL[layout][k] = native index of canonical joint k, e.g. 'h36m32' ->
# (15, 17, 25, 18, 26, 19, 27, 6, 1, 7, 2, 8, 3).
LAYOUT_TO_CANONICAL = {
    layout: tuple(LAYOUT_JOINT_NAMES[layout].index(name) for name in _CANONICAL_SOURCES[layout])
    for layout in SOURCE_LAYOUTS
}


# ----------------------------------------------------------------------------------------------------
# Validation and conversion (numpy).
# ----------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------
# Normalisation (TensorFlow).
# ----------------------------------------------------------------------------------------------------


def _tf():
    # Imported here so that importing this module (for its constants) does not import TensorFlow.
    import tensorflow as tf

    return tf


def _to_float_tensor(tf, value, name):
    try:
        t = tf.convert_to_tensor(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: cannot be converted to a numeric tensor ({e})") from e
    if not (t.dtype.is_floating or t.dtype.is_integer or t.dtype == tf.bool):
        raise ValueError(f"{name}: expected a numeric tensor, got dtype {t.dtype.name} with shape {t.shape}")
    return tf.cast(t, tf.float32)


def _check_static_shape(tf, t, name, num_joints, dims):
    """ValueError for a statically wrong shape; a runtime shape check when the last dims are unknown."""
    shape = t.shape
    expected = f"[..., {num_joints}, {dims}]"
    if shape.rank is None:
        return t
    if shape.rank < 2:
        raise ValueError(f"{name}: expected shape {expected}, got shape {shape} (rank {shape.rank})")
    if (shape[-1] is not None and shape[-1] != dims) or (
        shape[-2] is not None and shape[-2] != num_joints
    ):
        raise ValueError(f"{name}: expected shape {expected}, got shape {shape}")
    if shape[-1] is None or shape[-2] is None:
        t = tf.ensure_shape(t, [None] * (shape.rank - 2) + [num_joints, dims])
    return t


def _is_symbolic(tf, t):
    return not tf.executing_eagerly() or tf.is_symbolic_tensor(t)


def normalize_keypoints_2d(keypoints, mask=None):
    """Centres and scales 2D poses as the authors do (fact sheet §6.3), with one missing-joint rule.

    With all joints present this is exactly the authors' rule:
      offset = mid-hip = (left_hip + right_hip) / 2,
      scale  = max over the six pairs of {left_shoulder, right_shoulder, left_hip, right_hip} of the
               Euclidean distance,
      normalized = (x - offset) * 0.5 / max(scale, 1e-12)
    so the largest torso distance becomes 0.5 (scale unit 0.5).

    Missing joints (mask <= 0) — the one rule: they are excluded from the offset and the scale, and are
    set to exactly 0 (the origin = the offset) in the output. Fallbacks, so the result is never NaN:
      * one hip missing   -> offset = the visible hip;
      * both hips missing -> offset = mean of the visible joints;
      * no torso pair with both ends visible -> scale = largest distance between any two visible joints,
        or 1.0 when fewer than two joints are visible;
      * all joints missing -> normalized all 0, offset 0, scale 1.
    Non-finite coordinates (NaN/inf): inside a TF graph (tf.function, tf.data, SavedModel) they count as
    missing. Called eagerly (numpy or eager tensors), a non-finite coordinate at a joint whose mask is
    present (or with ``mask=None``) raises ValueError; non-finite coordinates of masked joints are fine.
    The statistics never depend on the coordinates of missing joints.

    Implemented with tf ops only (tf.where, no Python branching on values), so it runs inside
    tf.function, tf.data and exported SavedModels, and with any leading (also unknown) batch dims.

    Args:
      keypoints: [..., 13, 2] numpy array or tensor (canonical order), any real dtype; computed in float32.
      mask: optional [..., 13] (broadcastable to keypoints' leading dims), > 0 = present; None = all present.
    Returns:
      (normalized [..., 13, 2], offset [..., 1, 2], scale [..., 1, 1]), float32 tensors, such that
      normalized = (keypoints - offset) * 0.5 / scale for present joints.
    Raises:
      ValueError: naming ``keypoints`` / ``mask`` and the shape, for a wrong shape or dtype; for
        non-finite present coordinates when called eagerly.
    """
    tf = _tf()
    kp = _check_static_shape(tf, _to_float_tensor(tf, keypoints, "keypoints"), "keypoints", NUM_JOINTS, 2)
    if mask is None:
        present = tf.ones_like(kp[..., 0], dtype=tf.bool)
    else:
        m = _to_float_tensor(tf, mask, "mask")
        if m.shape.rank is not None and (m.shape.rank < 1 or m.shape[-1] not in (None, NUM_JOINTS)):
            raise ValueError(f"mask: expected shape [..., {NUM_JOINTS}], got shape {m.shape}")
        try:
            tf.broadcast_static_shape(m.shape, kp.shape[:-1])
        except ValueError as e:
            raise ValueError(
                f"mask: shape {m.shape} does not broadcast to keypoints' shape {kp.shape[:-1]} "
                f"(keypoints shape {kp.shape} without the coordinate axis)"
            ) from e
        present = tf.broadcast_to(m > 0, tf.shape(kp)[:-1])

    finite = tf.reduce_all(tf.math.is_finite(kp), axis=-1)
    if not _is_symbolic(tf, kp):
        bad = np.logical_and(~finite.numpy(), present.numpy())
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"keypoints: non-finite (NaN/inf) coordinates at {int(bad.sum())} joint(s) marked present "
                f"(shape {tuple(kp.shape)}; first at index {first}); mask them out (mask 0)"
            )
    valid = tf.logical_and(present, finite)  # [..., 13]
    valid_f = tf.cast(valid, tf.float32)[..., None]  # [..., 13, 1]
    # Zero the missing joints first so that NaN/inf never enters any arithmetic (also keeps gradients finite).
    kp0 = tf.where(valid[..., None], kp, 0.0)

    # Offset: mean of the visible hips; else mean of all visible joints (0 when none is visible).
    hip_count = tf.reduce_sum(valid_f[..., _LEFT_HIP : _RIGHT_HIP + 1, :], axis=-2, keepdims=True)
    hip_sum = tf.reduce_sum(kp0[..., _LEFT_HIP : _RIGHT_HIP + 1, :], axis=-2, keepdims=True)
    all_count = tf.reduce_sum(valid_f, axis=-2, keepdims=True)
    all_sum = tf.reduce_sum(kp0, axis=-2, keepdims=True)
    offset = tf.where(
        hip_count > 0,
        hip_sum / tf.maximum(hip_count, 1.0),
        all_sum / tf.maximum(all_count, 1.0),
    )  # [..., 1, 2]

    # Scale: squared distances of all joint pairs, max over the visible torso pairs, else over all
    # visible pairs; sqrt taken once, after clamping at eps^2 (= the authors' max(eps, scale)).
    diff = kp0[..., :, None, :] - kp0[..., None, :, :]
    sq = tf.reduce_sum(tf.square(diff), axis=-1)  # [..., 13, 13]
    off_diagonal = ~np.eye(NUM_JOINTS, dtype=bool)
    pair_valid = tf.logical_and(
        tf.logical_and(valid[..., :, None], valid[..., None, :]), off_diagonal
    )
    torso = np.zeros((NUM_JOINTS, NUM_JOINTS), dtype=bool)
    for i, j in TORSO_PAIRS:
        torso[i, j] = torso[j, i] = True
    torso_valid = tf.logical_and(pair_valid, torso)
    axes = [-2, -1]
    torso_sq = tf.reduce_max(tf.where(torso_valid, sq, 0.0), axis=axes)
    all_sq = tf.reduce_max(tf.where(pair_valid, sq, 0.0), axis=axes)
    any_torso = tf.reduce_any(torso_valid, axis=axes)
    any_pair = tf.reduce_any(pair_valid, axis=axes)
    scale_sq = tf.where(any_torso, torso_sq, all_sq)
    scale = tf.where(any_pair, tf.sqrt(tf.maximum(scale_sq, _EPS * _EPS)), 1.0)
    scale = scale[..., None, None]  # [..., 1, 1]

    normalized = (kp0 - offset) * (SCALE_UNIT_2D / scale)
    normalized = tf.where(valid[..., None], normalized, 0.0)
    return normalized, offset, scale


# VideoPose3D 17-joint indices used by the 3D rule.
_H36M17_HIP = H36M17_JOINT_NAMES.index("Hip")
_H36M17_SPINE = H36M17_JOINT_NAMES.index("Spine")
_H36M17_THORAX = H36M17_JOINT_NAMES.index("Thorax")


def normalize_keypoints_3d(keypoints_h36m17):
    """The authors' LEGACY_3DH36M17 3D normalisation (fact sheet §6.2) on the VideoPose3D 17-joint order.

    offset = Hip (index 0), scale = |Hip - Spine| + |Spine - Thorax| (the length of the lower spine
    chain), normalized = (x - offset) / max(scale, 1e-12) (scale unit 1). Units cancel, so metres or
    millimetres give the same result.

    Args:
      keypoints_h36m17: [..., 17, 3] numpy array or tensor in H36M17_JOINT_NAMES order.
    Returns:
      (normalized [..., 17, 3], offset [..., 1, 3], scale [..., 1, 1]) float32 tensors.
    Raises:
      ValueError: naming ``keypoints_h36m17`` and its shape, for a wrong shape/dtype, or for NaN/inf when
        called eagerly. Inside a graph, NaN/inf fail a tf.debugging.assert_all_finite check at run time.
    """
    tf = _tf()
    name = "keypoints_h36m17"
    kp = _check_static_shape(tf, _to_float_tensor(tf, keypoints_h36m17, name), name, 17, 3)
    if _is_symbolic(tf, kp):
        kp = tf.debugging.assert_all_finite(kp, f"normalize_keypoints_3d: {name} contains NaN/inf")
    else:
        validate_keypoints(kp.numpy(), name, num_joints=17, dims=3)
    offset = kp[..., _H36M17_HIP : _H36M17_HIP + 1, :]

    def length(a, b):
        d = kp[..., a, :] - kp[..., b, :]
        return tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(d), axis=-1), _EPS * _EPS))

    scale = length(_H36M17_HIP, _H36M17_SPINE) + length(_H36M17_SPINE, _H36M17_THORAX)
    scale = tf.maximum(scale, _EPS)[..., None, None]
    return (kp - offset) / scale, offset, scale
