"""Known poses written in detector layouts, for the reader and layout tests (no real data).

:func:`walking_clip` makes canonical 13-joint image keypoints of a person facing the camera (their left
on the image's right) walking across the frame; :func:`to_native` places them in any source layout's
joint order and fills the layout's other joints (eyes, ears, neck, feet, hands...) where they are on a
body, so a same-size mix-up of layouts reads wrong joints, as it would on real data.
"""

import numpy as np

from cv_mim.keypoints import profiles

# head, ls, rs, le, re, lw, rw, lh, rh, lk, rk, la, ra (x, y pixels; person's left = image right).
_BASE = np.array([[300, 130], [325, 170], [275, 170], [332, 215], [268, 215], [335, 255],
                  [265, 255], [315, 260], [285, 260], [317, 320], [283, 320], [318, 380],
                  [282, 380]], np.float64)


def walking_clip(num_frames=12, seed=0):
    """[T, 13, 2] float32 canonical keypoints with arm/leg swing, drift and pixel noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)[:, None]
    kp = np.repeat(_BASE[None], num_frames, axis=0)
    swing = 12.0 * np.sin(0.6 * t)
    for joint, sign in ((5, 1), (6, -1), (11, -1), (12, 1)):
        kp[:, joint, 1] += sign * swing[:, 0] * 0.3
        kp[:, joint, 0] += sign * swing[:, 0] * 0.4
    kp[..., 0] += 4.0 * t
    kp += rng.normal(0.0, 1.0, kp.shape)
    return kp.astype(np.float32)


def _side(name):
    low = name.lower()
    if "left" in low or (name[0] == "L" and name[1:2].isupper()):
        return 1.0
    if "right" in low or (name[0] == "R" and name[1:2].isupper()):
        return -1.0
    return 0.0


def _filler(name, kp13):
    """Where a non-canonical joint of this name lies, from the canonical joints [T, 13, 2]."""
    low, side = name.lower(), _side(name)
    head, sh_mid, hip_mid = kp13[:, 0], kp13[:, 1:3].mean(1), kp13[:, 7:9].mean(1)
    pick = (lambda left, right: kp13[:, left] if side > 0 else kp13[:, right])
    if any(k in low for k in ("eye", "ear", "nose", "mouth", "face")):
        return head + np.array([6.0 * side, 14.0])
    if any(k in low for k in ("neck", "thorax", "clavicle")):
        return sh_mid + np.array([0.0, -5.0])
    if "spine" in low:
        return 0.5 * (sh_mid + hip_mid)
    if any(k in low for k in ("toe", "heel", "foot")):
        return pick(11, 12) + np.array([4.0 * side, 12.0])
    if any(k in low for k in ("hand", "pinky", "index", "thumb", "wrist")):
        return pick(5, 6) + np.array([2.0 * side, 8.0])
    if "hip" in low:
        return hip_mid
    if "head" in low:
        return head + np.array([0.0, -10.0])
    raise KeyError(name)


def to_native(kp13, layout):
    """Canonical [T, 13, 2] -> [T, J, 2] in ``layout``'s native order (others filled by name)."""
    names = profiles.LAYOUT_JOINT_NAMES[layout]
    index = profiles.LAYOUT_TO_CANONICAL[layout]
    out = np.zeros(kp13.shape[:1] + (len(names), 2), np.float64)
    for j, name in enumerate(names):
        out[:, j] = kp13[:, index.index(j)] if j in index else _filler(name, kp13)
    return out.astype(np.float32)
