"""Checks of keypoint arrays from users and files, before they reach a model (numpy only).

Every reader of user keypoints (the ``npy`` dataset, :class:`cv_mim.serving.embedder.Embedder`) uses
these, so a bool, complex, text or empty array, or coordinates no image has, is a clear ValueError
naming the array rather than a silently wrong embedding.
"""
from __future__ import annotations

import warnings

import numpy as np

# No camera image is 1e8 px wide; beyond this, float32 normalisation (squared distances) overflows
# (3e38 px keypoints gave all-NaN embeddings before this check).
MAX_ABS_PIXELS = 1e8


def as_keypoints(value, name: str) -> np.ndarray:
    """A real-valued (integer or float) non-empty array as float32; ValueError naming ``name`` else.

    NaN/inf are kept (they mark missing joints); bool, complex, object and string arrays are refused
    (``astype(float32)`` would turn them into 0/1, drop the imaginary part, or fail obscurely)."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name}: keypoints must be a real numeric array (int or float), got dtype "
                         f"{array.dtype} with shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name}: empty keypoint array (shape {array.shape})")
    return array.astype(np.float32)


def check_coordinate_range(keypoints, present, name: str) -> None:
    """ValueError when a present joint lies beyond :data:`MAX_ABS_PIXELS` (not a pixel coordinate)."""
    kp = np.asarray(keypoints, np.float64)
    present = np.asarray(present, bool)
    big = present & (np.abs(np.where(np.isfinite(kp), kp, 0.0)) > MAX_ABS_PIXELS).any(axis=-1)
    if big.any():
        frame = int(np.argwhere(big)[0][0])
        raise ValueError(f"{name}: {int(big.sum())} present joint(s) have coordinates beyond "
                         f"±{MAX_ABS_PIXELS:g} px (first in frame {frame}: "
                         f"{np.abs(kp[big]).max():.3g}); these are not pixel coordinates")


def has_pose(keypoints, present) -> np.ndarray:
    """[N] bool: frame n has at least two present joints at distinct positions.

    A frame without (every joint missing, or all present joints at one point) has no scale to
    normalise by; the encoder would embed the empty pose as an ordinary-looking vector."""
    kp = np.asarray(keypoints, np.float64)
    present = np.asarray(present, bool) & np.isfinite(kp).all(axis=-1)
    filled = np.where(present[..., None], kp, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames: nanmax warns
        spread = np.nanmax(filled, axis=-2) - np.nanmin(filled, axis=-2)  # [N, 2]
    return (present.sum(axis=-1) >= 2) & (np.nan_to_num(spread, nan=0.0).max(axis=-1) > 0)
