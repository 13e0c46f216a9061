"""The authors' 2D and 3D keypoint normalisation (TensorFlow; fact sheet §6.2–6.4).

* :func:`normalize_keypoints_2d` — hip-centred, max-torso-pair scaled 2D poses, with one documented rule for
  missing joints (written as 0);
* :func:`normalize_keypoints_3d` — the authors' ``LEGACY_3DH36M17`` 3D normalisation;
* :func:`normalized_3d_canonical` — Human3.6M-17 world poses to normalised canonical-13 3D poses.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cv_mim.keypoints import profiles


def _to_float_tensor(value, name):
    try:
        t = tf.convert_to_tensor(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: cannot be converted to a numeric tensor ({e})") from e
    if not (t.dtype.is_floating or t.dtype.is_integer or t.dtype == tf.bool):
        raise ValueError(f"{name}: expected a numeric tensor, got dtype {t.dtype.name} with shape {t.shape}")
    return tf.cast(t, tf.float32)


def _check_static_shape(t, name, num_joints, dims):
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


def _is_symbolic(t):
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
    # Longer than a screen on purpose: The authors' normalisation and its missing-joint fallbacks as
    # one traceable graph function.
    kp = _check_static_shape(_to_float_tensor(keypoints, "keypoints"), "keypoints", profiles.NUM_JOINTS, 2)
    if mask is None:
        present = tf.ones_like(kp[..., 0], dtype=tf.bool)
    else:
        m = _to_float_tensor(mask, "mask")
        if m.shape.rank is not None and (m.shape.rank < 1 or m.shape[-1] not in (None, profiles.NUM_JOINTS)):
            raise ValueError(f"mask: expected shape [..., {profiles.NUM_JOINTS}], got shape {m.shape}")
        try:
            tf.broadcast_static_shape(m.shape, kp.shape[:-1])
        except ValueError as e:
            raise ValueError(
                f"mask: shape {m.shape} does not broadcast to keypoints' shape {kp.shape[:-1]} "
                f"(keypoints shape {kp.shape} without the coordinate axis)"
            ) from e
        present = tf.broadcast_to(m > 0, tf.shape(kp)[:-1])

    finite = tf.reduce_all(tf.math.is_finite(kp), axis=-1)
    if not _is_symbolic(kp):
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
    hip_count = tf.reduce_sum(valid_f[..., profiles.LEFT_HIP : profiles.RIGHT_HIP + 1, :], axis=-2, keepdims=True)
    hip_sum = tf.reduce_sum(kp0[..., profiles.LEFT_HIP : profiles.RIGHT_HIP + 1, :], axis=-2, keepdims=True)
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
    off_diagonal = ~np.eye(profiles.NUM_JOINTS, dtype=bool)
    pair_valid = tf.logical_and(
        tf.logical_and(valid[..., :, None], valid[..., None, :]), off_diagonal
    )
    torso = np.zeros((profiles.NUM_JOINTS, profiles.NUM_JOINTS), dtype=bool)
    for i, j in profiles.TORSO_PAIRS:
        torso[i, j] = torso[j, i] = True
    torso_valid = tf.logical_and(pair_valid, torso)
    axes = [-2, -1]
    torso_sq = tf.reduce_max(tf.where(torso_valid, sq, 0.0), axis=axes)
    all_sq = tf.reduce_max(tf.where(pair_valid, sq, 0.0), axis=axes)
    any_torso = tf.reduce_any(torso_valid, axis=axes)
    any_pair = tf.reduce_any(pair_valid, axis=axes)
    scale_sq = tf.where(any_torso, torso_sq, all_sq)
    scale = tf.where(any_pair, tf.sqrt(tf.maximum(scale_sq, profiles._EPS * profiles._EPS)), 1.0)
    scale = scale[..., None, None]  # [..., 1, 1]

    normalized = (kp0 - offset) * (profiles.SCALE_UNIT_2D / scale)
    normalized = tf.where(valid[..., None], normalized, 0.0)
    return normalized, offset, scale


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
    name = "keypoints_h36m17"
    kp = _check_static_shape(_to_float_tensor(keypoints_h36m17, name), name, 17, 3)
    if _is_symbolic(kp):
        kp = tf.debugging.assert_all_finite(kp, f"normalize_keypoints_3d: {name} contains NaN/inf")
    else:
        profiles.validate_keypoints(kp.numpy(), name, num_joints=17, dims=3)
    offset = kp[..., profiles._H36M17_HIP : profiles._H36M17_HIP + 1, :]

    def length(a, b):
        d = kp[..., a, :] - kp[..., b, :]
        return tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(d), axis=-1), profiles._EPS * profiles._EPS))

    scale = length(profiles._H36M17_HIP, profiles._H36M17_SPINE) + length(profiles._H36M17_SPINE, profiles._H36M17_THORAX)
    scale = tf.maximum(scale, profiles._EPS)[..., None, None]
    return (kp - offset) / scale, offset, scale


def normalized_3d_canonical(keypoints_3d_h36m17):
    """(N, 17, 3) Human3.6M world poses (VideoPose3D order) → (N, 13, 3) normalised canonical poses.

    3D normalisation as the authors (fact sheet §6.2/6.4): hip-centred, spine length (Hip→Spine→Thorax)
    = 1, then the 13 canonical joints (head = Human3.6M head-top).
    """
    normalized, _, _ = normalize_keypoints_3d(
        np.asarray(keypoints_3d_h36m17, np.float32))
    kp13, _ = profiles.convert_keypoints(np.asarray(normalized), "h36m17")
    return kp13.astype(np.float32)
