"""Layout safety: is a clip of keypoints really in the layout the user named? (numpy only)

A converter (:func:`cv_mim.keypoints.profiles.convert_keypoints`) refuses a wrong joint count, but
several layouts share a size (17: COCO-17, Human3.6M-17 in VideoPose3D's and in the authors' order; 25:
OpenPose BODY_25, BODY_25B, Kinect/NTU-25; 13: canonical, Penn Action) and a mix-up would pass silently,
embedding a body whose "shoulders" are knees. :func:`check_layout` converts the clip as the named layout
and as every other layout of the same size and scores each conversion with three anatomical tests on the
canonical 13 joints (each the fraction of frames that pass, in [0, 1]):

* ``sides`` — left/right consistency: the shoulder line and the hip line point the same way
  (dot(L_shoulder − R_shoulder, L_hip − R_hip) > 0), whatever the view.
* ``symmetry`` — limb-length symmetry: for the upper arms, forearms, thighs and shins, the shorter of the
  left and right segment is at least half the longer.
* ``order`` — body order along the trunk axis (rotation-invariant "head above hips on upright frames"):
  with u = shoulder centre − hip centre, the head lies beyond the shoulders (projection > 1 trunk length)
  and the ankle centre on the other side of the hips (projection < 0).

The plausibility is the mean of the available tests. Decision (documented in the README):

* ERROR (:class:`LayoutError`, a ValueError, so binaries print one ``error:`` line) when another layout
  of the same size scores at least ``margin`` (0.15) higher and the named layout scores below
  ``threshold`` (0.75): the message names the likely layout. A clear mix-up is far more likely than a
  real clip that fails all three tests, and embedding it would give silently wrong results.
* WARNING (logged) when the named layout scores below ``threshold`` but no other layout does better (an
  unusual clip: lying people, heavy occlusion, a detector failing).
* Override: ``skip_layout_check=True`` in the readers (``--skip_layout_check`` in the binaries).

Limits: a layout that only mirrors another (Penn Action's native order vs the canonical one, a global
left/right swap) is invisible to these tests — left and right are only defined by the person's facing,
which 2D keypoints alone do not give.
"""

import dataclasses
import logging

import numpy as np

from cv_mim.keypoints import profiles

log = logging.getLogger("cv_mim.keypoints.plausibility")


DEFAULT_THRESHOLD = 0.75


DEFAULT_MARGIN = 0.15


# Canonical (left, right) limb segments compared by the symmetry test.
_J = profiles.JOINT_NAMES.index
_SYMMETRIC_SEGMENTS = tuple(
    ((_J(f"left_{a}"), _J(f"left_{b}")), (_J(f"right_{a}"), _J(f"right_{b}")))
    for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle")))
_HEAD, _LS, _RS, _LH, _RH, _LA, _RA = (_J(n) for n in (
    "head", "left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_ankle",
    "right_ankle"))


class LayoutError(ValueError):
    """The keypoints look like another layout than the one named."""


@dataclasses.dataclass
class Plausibility:
    """Per-test fractions of passing frames (None: no frame had the joints) and their mean."""

    sides: float | None
    symmetry: float | None
    order: float | None

    @property
    def score(self):
        parts = [p for p in (self.sides, self.symmetry, self.order) if p is not None]
        return float(np.mean(parts)) if parts else None

    def describe(self):
        def fmt(v):
            return "n/a" if v is None else f"{v:.2f}"
        return (f"plausibility {fmt(self.score)}: sides {fmt(self.sides)}, symmetry "
                f"{fmt(self.symmetry)}, order {fmt(self.order)}")


def _fraction(passed, valid):
    n = int(valid.sum())
    return None if n == 0 else float((passed & valid).sum() / n)


def plausibility(kp13, mask13):
    """Scores canonical keypoints ``kp13`` [T, 13, 2] with presence ``mask13`` [T, 13]."""
    kp = np.asarray(kp13, np.float64).reshape(-1, profiles.NUM_JOINTS, np.shape(kp13)[-1])[..., :2]
    present = np.asarray(mask13).reshape(-1, profiles.NUM_JOINTS) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        shoulders, hips = kp[:, _LS] - kp[:, _RS], kp[:, _LH] - kp[:, _RH]
        torso = present[:, [_LS, _RS, _LH, _RH]].all(-1)
        sides_valid = torso & (np.linalg.norm(shoulders, axis=-1) > 0) & (
            np.linalg.norm(hips, axis=-1) > 0)
        sides = _fraction((shoulders * hips).sum(-1) > 0, sides_valid)

        passed, valid = [], []
        for (la, lb), (ra, rb) in _SYMMETRIC_SEGMENTS:
            left = np.linalg.norm(kp[:, la] - kp[:, lb], axis=-1)
            right = np.linalg.norm(kp[:, ra] - kp[:, rb], axis=-1)
            ok = present[:, [la, lb, ra, rb]].all(-1) & (np.maximum(left, right) > 0)
            passed.append(np.minimum(left, right) >= 0.5 * np.maximum(left, right))
            valid.append(ok)
        symmetry = _fraction(np.concatenate(passed), np.concatenate(valid))

        hip_mid = 0.5 * (kp[:, _LH] + kp[:, _RH])
        axis = 0.5 * (kp[:, _LS] + kp[:, _RS]) - hip_mid
        length_sq = (axis * axis).sum(-1)
        head_t = ((kp[:, _HEAD] - hip_mid) * axis).sum(-1) / length_sq
        ankle_t = ((0.5 * (kp[:, _LA] + kp[:, _RA]) - hip_mid) * axis).sum(-1) / length_sq
        order_valid = torso & present[:, [_HEAD, _LA, _RA]].all(-1) & (length_sq > 0)
        order = _fraction((head_t > 1.0) & (ankle_t < 0.0), order_valid)
    return Plausibility(sides=sides, symmetry=symmetry, order=order)


def layout_scores(keypoints, scores, layout):
    """Plausibility of the clip read as ``layout`` and as every other layout of the same size."""
    num = np.shape(keypoints)[-2]
    out = {}
    for candidate in (layout,) + tuple(l for l in profiles.layouts_with_joints(num) if l != layout):
        kp13, mask13 = profiles.convert_keypoints(keypoints, candidate, scores)
        out[candidate] = plausibility(kp13, mask13)
    return out


def check_layout(keypoints, scores, layout, *, name="keypoints", threshold=DEFAULT_THRESHOLD,
                 margin=DEFAULT_MARGIN):
    """Checks that a clip ``keypoints`` [T, J, 2] (``scores`` [T, J] or None) is in ``layout``.

    Returns:
      {layout: Plausibility} for the named layout and its same-size alternatives.
    Raises:
      LayoutError: another layout of the same size fits clearly better (rule in the module docstring).
      ValueError: a wrong joint count for ``layout`` (from the converter).
    """
    results = layout_scores(keypoints, scores, layout)
    named = results[layout].score
    if named is None:
        log.warning("%s: layout %r could not be checked (no frame with the torso joints)", name,
                    layout)
        return results
    others = {k: v.score for k, v in results.items() if k != layout and v.score is not None}
    best = max(others, key=others.get) if others else None
    if best is not None and named < threshold and others[best] - named >= margin:
        raise LayoutError(
            f"{name}: the keypoints do not look like layout {layout!r} ({results[layout].describe()}) "
            f"but like {best!r} ({results[best].describe()}); name the right layout, or pass "
            f"--skip_layout_check (skip_layout_check=True) if you are sure")
    if named < threshold:
        log.warning("%s: unusual poses for layout %r (%s); no other %d-joint layout fits better",
                    name, layout, results[layout].describe(), np.shape(keypoints)[-2])
    return results
