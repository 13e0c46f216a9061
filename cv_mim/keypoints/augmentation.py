"""Camera augmentation (TensorFlow, paper §4.2): random proper rotations of a normalised 3D pose and
its perspective projection. No rotation can mirror a pose (det R = +1, tested)."""

from __future__ import annotations

import math

import numpy as np

from cv_mim.keypoints import cameras


def rotation_matrices(azimuth, elevation, roll):
    """Proper rotations R = Rz(azimuth) @ Ry(elevation) @ Rx(roll) (ZYX Euler angles, radians).

    Rz(a) = [[cos a, -sin a, 0], [sin a, cos a, 0], [0, 0, 1]], Ry(e) = [[cos e, 0, sin e], [0, 1, 0],
    [-sin e, 0, cos e]], Rx(r) = [[1, 0, 0], [0, cos r, -sin r], [0, sin r, cos r]], acting on column
    vectors in (x, y, z) order. det R = +1 always, so no rotation can mirror a pose.

    The authors state reference values in their (y, x, z) layout (fact sheet §6.4): azimuth pi/2
    alone maps (2, 1, 3) -> (1, -2, 3). In our (x, y, z) layout that is (1, 2, 3) -> (-2, 1, 3).

    Args:
      azimuth, elevation, roll: broadcast-compatible float tensors (radians).

    Returns:
      [..., 3, 3] tensor (broadcast shape of the angles), dtype of the angles (float32 default).
    """
    import tensorflow as tf

    azimuth = tf.convert_to_tensor(azimuth)
    if not azimuth.dtype.is_floating:
        azimuth = tf.cast(azimuth, tf.float32)
    dtype = azimuth.dtype
    elevation = tf.cast(tf.convert_to_tensor(elevation, dtype_hint=dtype), dtype)
    roll = tf.cast(tf.convert_to_tensor(roll, dtype_hint=dtype), dtype)
    shape = tf.broadcast_dynamic_shape(
        tf.broadcast_dynamic_shape(tf.shape(azimuth), tf.shape(elevation)), tf.shape(roll))
    azimuth, elevation, roll = (tf.broadcast_to(a, shape) for a in (azimuth, elevation, roll))
    ca, sa = tf.cos(azimuth), tf.sin(azimuth)
    ce, se = tf.cos(elevation), tf.sin(elevation)
    cr, sr = tf.cos(roll), tf.sin(roll)
    rows = [
        [ca * ce, ca * se * sr - sa * cr, ca * se * cr + sa * sr],
        [sa * ce, sa * se * sr + ca * cr, sa * se * cr - ca * sr],
        [-se, ce * sr, ce * cr],
    ]
    return tf.stack([tf.stack(row, axis=-1) for row in rows], axis=-2)


# The authors' virtual camera distance: 1 / (2D scale unit 0.5), in normalised 3D units (spine = 1,
# about 0.5 m, so about 1 m from the hip; real Human3.6M cameras stand 4.8-5.8 m away, about 10 units).
DEFAULT_DEPTH = 2.0
# fold_in constant of the per-pose distance stream (independent of the angles' stream).
_DEPTH_STREAM = 0xDE


def project_with_angles(keypoints_3d, azimuth, elevation, roll, depth=DEFAULT_DEPTH,
                        return_depth=False):
    """Rotates normalised 3D poses and projects them through the virtual camera (no randomness).

    The pose is rotated by ``R = rotation_matrices(azimuth, elevation, roll)`` about its origin
    (the normalised pose is hip-centred), then seen by a pinhole camera with focal length 1 placed at
    ``(-depth, 0, 0)``, looking along world +x with world +z up. Its image axes are x right = world
    -y and y down = world -z, so a right-handed camera frame (x right, y down, z forward) — no mirror:

        x_img = -Y' / (X' + depth),   y_img = -Z' / (X' + depth).

    With zero angles a person facing the camera (facing world -x) has their left side (world -y) on
    the image's right. Equivalently the camera, expressed in the pose's own frame, sits at
    ``-depth * R^T e_x`` and looks along ``R^T e_x``; because the rotations are composed as the
    authors' (Rz outermost), "elevation" and "roll" are rotations of the pose about world y and x,
    not the camera's own pitch/roll (e.g. with roll 0: ``R^T e_x = (cos el cos az, -sin az,
    sin el cos az)``). ``depth`` = 2 = 1 / (2D scale unit 0.5) as in the authors' code.
    Denominators are clamped at 1e-12 (as the authors) so a point behind the camera gives large,
    finite values rather than NaN; with normalised poses (spine length 1) and |elevation| <= 30 deg
    that does not happen.

    Args:
      keypoints_3d: [..., J, 3] float tensor, normalised 3D (world z-up, x/y horizontal).
      azimuth, elevation, roll: radians, broadcastable to ``keypoints_3d.shape[:-2]``.
      depth: normalised camera distance: a number, or a tensor broadcastable to [..., J].

    Returns:
      [..., J, 2] image-plane coordinates (x right, y down), dtype of keypoints_3d.
    """
    import tensorflow as tf

    keypoints_3d = tf.convert_to_tensor(keypoints_3d)
    if not keypoints_3d.dtype.is_floating:
        keypoints_3d = tf.cast(keypoints_3d, tf.float32)
    dtype = keypoints_3d.dtype
    if keypoints_3d.shape.rank is not None and (
            keypoints_3d.shape.rank < 2 or keypoints_3d.shape[-1] not in (None, 3)):
        raise ValueError(f"keypoints_3d must have shape [..., J, 3], got {keypoints_3d.shape}")
    # dtype_hint: Python-float angles must not pass through float32 on their way to float64.
    rotations = rotation_matrices(
        *[tf.cast(tf.convert_to_tensor(a, dtype_hint=dtype), dtype) for a in (azimuth, elevation, roll)])
    # Row vectors: p' = p R^T. The rotation batch dims broadcast against the pose batch dims.
    rotated = tf.linalg.matmul(keypoints_3d, rotations, transpose_b=True)
    x_w, y_w, z_w = tf.unstack(rotated, num=3, axis=-1)
    denominator = tf.maximum(x_w + tf.cast(depth, dtype), tf.cast(cameras._MIN_VIRTUAL_DEPTH, dtype))
    projected = tf.stack([-y_w / denominator, -z_w / denominator], axis=-1)
    # The distance of every joint in front of the camera (<= 0: behind it). Callers use it to treat
    # joints too close to, or behind, the camera plane as unseen (see pipelines.make_pair_dataset).
    return (projected, x_w + tf.cast(depth, dtype)) if return_depth else projected


def check_depth_range(depth):
    """(low, high) of a virtual camera distance given as one number or a (low, high) pair; raises
    ValueError unless 0 < low <= high."""
    if isinstance(depth, (str, bytes, bool)):
        raise ValueError(f"a camera distance is a number or (low, high), got {depth!r}")
    if np.ndim(depth) == 0:  # Python, numpy or scalar-tensor numbers
        low = high = float(depth)
    else:
        values = [float(v) for v in np.asarray(depth).reshape(-1)]
        if len(values) not in (1, 2):
            raise ValueError(f"a camera distance is one number or (low, high), got {depth!r}")
        low, high = values[0], values[-1]
    if not (0 < low <= high and math.isfinite(high)):
        raise ValueError(f"camera distance range must satisfy 0 < low <= high, got ({low}, {high})")
    return low, high


def random_camera_projection(keypoints_3d, seed, azimuth_range=(-math.pi, math.pi),
                             elevation_range=(-math.pi / 6, math.pi / 6),
                             roll_range=(-math.pi / 6, math.pi / 6), depth=DEFAULT_DEPTH,
                             return_angles=False, return_depth=False):
    """Camera augmentation (paper §4.2): projection of each pose from a random virtual camera.

    One independent (azimuth, elevation, roll) is drawn uniformly per pose (i.e. per element of
    ``keypoints_3d.shape[:-2]``) from the given ranges (defaults: +-180, +-30, +-30 degrees, as the
    paper), using a stateless RNG so the result is a pure function of (keypoints_3d, seed); it works
    inside ``tf.data.Dataset.map`` (give each element its own seed, e.g. from
    ``tf.data.Dataset.random(seed).batch(2)`` zipped in, or
    ``tf.random.experimental.stateless_fold_in``).
    Only proper rotations are used, so the output is never a mirror image (the authors' early
    release mirrored, their issue #636).

    Args:
      keypoints_3d: [..., J, 3] normalised 3D poses (world z-up), e.g. the 13 canonical joints.
      seed: shape [2] integer tensor.
      azimuth_range, elevation_range, roll_range: (low, high) in radians.
      depth: normalised camera distance (2.0 as the authors), or a (low, high) range: then one
        distance per pose is drawn uniformly from it, from a stream of its own (the angles are
        those of a fixed depth with the same seed). A range with low == high is that fixed depth.
      return_angles: also return the sampled angles.
      return_depth: also return [..., J] each joint's depth in front of the virtual camera.

    Returns:
      [..., J, 2] image-plane keypoints (x right, y down); with ``return_angles`` also a
      [..., 3] tensor of (azimuth, elevation, roll).
    """
    import tensorflow as tf

    keypoints_3d = tf.convert_to_tensor(keypoints_3d)
    if not keypoints_3d.dtype.is_floating:
        keypoints_3d = tf.cast(keypoints_3d, tf.float32)
    dtype = keypoints_3d.dtype
    for name, (low, high) in (("azimuth_range", azimuth_range), ("elevation_range", elevation_range),
                              ("roll_range", roll_range)):
        if not low <= high:
            raise ValueError(f"{name} must be (low, high) with low <= high, got {(low, high)}")
    batch_shape = tf.shape(keypoints_3d)[:-2]
    uniform = tf.random.stateless_uniform(tf.concat([batch_shape, [3]], axis=0), seed=seed,
                                          dtype=dtype)
    low = tf.constant([azimuth_range[0], elevation_range[0], roll_range[0]], dtype=dtype)
    high = tf.constant([azimuth_range[1], elevation_range[1], roll_range[1]], dtype=dtype)
    angles = low + (high - low) * uniform
    depth_low, depth_high = check_depth_range(depth)
    if depth_low == depth_high:
        depth = depth_low
    else:  # one distance per pose, [..., 1] so that it broadcasts over the joints
        draw = tf.random.stateless_uniform(
            tf.concat([batch_shape, [1]], axis=0),
            seed=tf.random.experimental.stateless_fold_in(seed, _DEPTH_STREAM), dtype=dtype)
        depth = depth_low + (depth_high - depth_low) * draw
    projected = project_with_angles(keypoints_3d, angles[..., 0], angles[..., 1], angles[..., 2],
                                    depth=depth, return_depth=return_depth)
    if return_depth:
        projected, joint_depth = projected
        return (projected, joint_depth, angles) if return_angles else (projected, joint_depth)
    return (projected, angles) if return_angles else projected
