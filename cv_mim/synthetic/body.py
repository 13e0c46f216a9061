"""Articulated 3D body of the synthetic multi-view pose world: subjects, joint angles, forward kinematics.

The body is a kinematic tree rooted at the pelvis::

    pelvis -> spine (mid-back) -> thorax -> head (neck point, nose, head centre, head top)
    thorax -> {left, right} shoulder -> elbow -> wrist -> hand (centre, finger tip, thumb)
    pelvis -> {left, right} hip -> knee -> ankle -> toe base -> toe tip

Frames and units: metres, world frame z-up. A body's own frame has x = forward (where the chest
points when upright), y = the body's left, z = up (right-handed). The root orientation is
``Rz(yaw) @ Ry(pitch) @ Rx(roll)``: yaw turns the body about the vertical, positive pitch leans it
forward (pitch = +90 deg lies face down with the head along +x), roll tilts it about the forward axis.

Joint angles are in degrees and are named in `DOFS`; each limb joint has flexion, abduction and
twist (for the legs and arms) or a single flexion (elbows, knees, ankles, wrists). The left side is
authored directly and the right side is its mirror image through the sagittal plane (``M R M`` with
``M = diag(1, -1, 1)``), so the same angles give a left-right symmetric pose and mirroring a motion is
a relabelling of angles (`mirror_angles`). `JOINT_LIMITS` clamps every angle to an anatomical range.

Bone lengths are fractions of the subject's height taken from standard anthropometric tables
(Winter, *Biomechanics and Motor Control of Human Movement*) and cross-checked against the
Human3.6M skeleton (e.g. thigh 0.44 m, shin 0.45 m, upper arm 0.28 m, forearm 0.25 m for a ~1.75 m
actor); each subject scales them by height and by small per-segment factors (`sample_subject`).

`forward_kinematics` returns the `BODY_POINTS` (29 named 3D points); `to_layout` re-indexes them
into the on-disk layouts: the Human3.6M 32-joint VideoPose3D order (joints the body does not model sit
at their parent, exactly where the real data put them), the Penn Action 13 joints and the Kinect v2
25 joints of NTU RGB+D.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

ROOT_DOFS = ("root_yaw", "root_pitch", "root_roll")


# Root translations in metres (for a 1.75 m subject; scaled by height): forward / left in the facing
# frame, and an extra vertical lift applied after the body is put on the ground (jumps).
TRANSLATION_DOFS = ("root_fwd", "root_side", "root_lift")


TORSO_DOFS = ("spine_flex", "spine_side", "spine_twist", "chest_flex", "chest_side", "chest_twist",
              "neck_flex", "neck_side", "neck_twist")


_ARM = ("sh_flex", "sh_abd", "sh_twist", "elbow", "wrist")


_LEG = ("hip_flex", "hip_abd", "hip_twist", "knee", "ankle")


LIMB_DOFS = tuple(f"{s}_{d}" for s in ("l", "r") for d in _ARM + _LEG)


DOFS = ROOT_DOFS + TRANSLATION_DOFS + TORSO_DOFS + LIMB_DOFS


DOF_INDEX = {name: i for i, name in enumerate(DOFS)}


NUM_DOFS = len(DOFS)


# Rest pose (degrees / metres): standing relaxed, arms slightly away from the body.
REST_POSE = {name: 0.0 for name in DOFS}


REST_POSE.update({"l_sh_abd": 8.0, "r_sh_abd": 8.0, "l_elbow": 12.0, "r_elbow": 12.0,
                  "l_knee": 3.0, "r_knee": 3.0, "l_hip_abd": 3.0, "r_hip_abd": 3.0})


# Anatomical limits in degrees (inclusive), applied after all per-clip variation.
JOINT_LIMITS = {
    "spine_flex": (-30.0, 80.0), "spine_side": (-30.0, 30.0), "spine_twist": (-45.0, 45.0),
    "chest_flex": (-30.0, 70.0), "chest_side": (-30.0, 30.0), "chest_twist": (-50.0, 50.0),
    "neck_flex": (-50.0, 60.0), "neck_side": (-40.0, 40.0), "neck_twist": (-75.0, 75.0),
}


for _side in ("l", "r"):
    JOINT_LIMITS.update({
        f"{_side}_sh_flex": (-70.0, 185.0), f"{_side}_sh_abd": (-45.0, 185.0),
        f"{_side}_sh_twist": (-95.0, 110.0), f"{_side}_elbow": (0.0, 155.0),
        f"{_side}_wrist": (-70.0, 80.0),
        f"{_side}_hip_flex": (-40.0, 135.0), f"{_side}_hip_abd": (-30.0, 75.0),
        f"{_side}_hip_twist": (-45.0, 45.0), f"{_side}_knee": (0.0, 155.0),
        f"{_side}_ankle": (-45.0, 45.0),
    })


# Angles whose sign flips when a motion is mirrored left <-> right (rotations about the forward or
# vertical axis); the limb DOFs swap sides instead.
_MIRROR_NEGATE = ("root_yaw", "root_roll", "root_side", "spine_side", "spine_twist", "chest_side",
                  "chest_twist", "neck_side", "neck_twist")


def mirror_angles(angles: np.ndarray) -> np.ndarray:
    """Mirror image of a motion through the body's sagittal plane (left-handed from right-handed).

    Args:
      angles: (..., NUM_DOFS) angles in `DOFS` order.

    Returns:
      (..., NUM_DOFS) angles of the mirrored motion: left and right limb DOFs swapped; yaw, roll,
      sideways translation, lateral bends and twists negated.
    """
    angles = np.asarray(angles)
    out = angles.copy()
    for name in _MIRROR_NEGATE:
        out[..., DOF_INDEX[name]] = -angles[..., DOF_INDEX[name]]
    for dof in _ARM + _LEG:
        out[..., DOF_INDEX[f"l_{dof}"]] = angles[..., DOF_INDEX[f"r_{dof}"]]
        out[..., DOF_INDEX[f"r_{dof}"]] = angles[..., DOF_INDEX[f"l_{dof}"]]
    return out


def clamp_to_limits(angles: np.ndarray) -> np.ndarray:
    """Clips every limited DOF of (..., NUM_DOFS) angles to `JOINT_LIMITS` (returns a copy)."""
    out = np.array(angles, dtype=np.float64, copy=True)
    for name, (low, high) in JOINT_LIMITS.items():
        i = DOF_INDEX[name]
        out[..., i] = np.clip(out[..., i], low, high)
    return out


# Segment lengths as fractions of standing height (Winter's anthropometric table, H36M-checked).
_BONE_FRACTIONS = {
    "spine": 0.133,       # pelvis (hip-joint level) -> mid-back
    "chest": 0.148,       # mid-back -> thorax (base of the neck)
    "head": 0.140,        # thorax -> head top
    "clavicle": 0.088,    # thorax -> shoulder joint (half shoulder width)
    "upper_arm": 0.163,
    "forearm": 0.146,
    "hand": 0.105,        # wrist -> finger tips
    "pelvis": 0.075,      # pelvis centre -> hip joint (half hip width)
    "thigh": 0.248,
    "shin": 0.247,
    "ankle_height": 0.039,
    "foot": 0.088,        # ankle -> toe base, horizontal
    "toe": 0.035,
}


SEGMENTS = tuple(_BONE_FRACTIONS)


@dataclasses.dataclass(frozen=True)
class Subject:
    """One synthetic person.

    Attributes:
      height: standing height in metres.
      bones: {segment name: length in metres} for every name in `SEGMENTS`.
    """

    height: float
    bones: Mapping[str, float]

    def __post_init__(self):
        missing = [s for s in SEGMENTS if s not in self.bones]
        if missing:
            raise ValueError(f"Subject.bones is missing segments {missing}")
        if not (0.5 < self.height < 2.5):
            raise ValueError(f"Subject.height must be in metres (0.5, 2.5), got {self.height}")


def default_subject(height: float = 1.75) -> Subject:
    """The average body of the given height (no per-segment variation)."""
    return Subject(height=float(height),
                   bones={k: v * float(height) for k, v in _BONE_FRACTIONS.items()})


def sample_subject(rng: np.random.Generator) -> Subject:
    """Draws a person: height ~ N(1.72, 0.085) m clipped to [1.50, 1.98], each segment scaled by a
    further factor ~ N(1, 0.04) (widths ~ N(1, 0.07)) so proportions differ between people.

    Args:
      rng: numpy Generator (consumes a fixed number of draws).
    """
    height = float(np.clip(rng.normal(1.72, 0.085), 1.50, 1.98))
    # Broad vs. narrow build: shoulder and hip widths co-vary.
    build = rng.normal(1.0, 0.07)
    factors = rng.normal(1.0, 0.04, size=len(SEGMENTS))
    bones = {}
    for (name, frac), factor in zip(_BONE_FRACTIONS.items(), factors):
        if name in ("clavicle", "pelvis"):
            factor = factor * build
        bones[name] = float(frac * height * np.clip(factor, 0.85, 1.15))
    return Subject(height=height, bones=bones)


BODY_POINTS = (
    "pelvis", "spine", "thorax", "neck", "nose", "head_centre", "head_top",
    "l_shoulder", "l_elbow", "l_wrist", "l_hand", "l_hand_tip", "l_thumb",
    "r_shoulder", "r_elbow", "r_wrist", "r_hand", "r_hand_tip", "r_thumb",
    "l_hip", "l_knee", "l_ankle", "l_toe", "l_toe_tip",
    "r_hip", "r_knee", "r_ankle", "r_toe", "r_toe_tip",
)


POINT_INDEX = {name: i for i, name in enumerate(BODY_POINTS)}


NUM_POINTS = len(BODY_POINTS)


# Rigid segments whose world rotation `forward_kinematics` can also return (for Kinect joint
# orientations): name -> point where the segment starts.
SEGMENT_FRAMES = ("pelvis", "spine", "chest", "head", "l_upper_arm", "l_forearm", "l_hand",
                  "r_upper_arm", "r_forearm", "r_hand", "l_thigh", "l_shin", "l_foot",
                  "r_thigh", "r_shin", "r_foot")


_MIRROR = np.diag([1.0, -1.0, 1.0])


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _apply(rot, vec):
    """(T, 3, 3) @ (3,) or (T, 3) -> (T, 3)."""
    return np.einsum("tij,...j->t...i", rot, vec) if np.ndim(vec) == 1 else np.einsum(
        "tij,tj->ti", rot, vec)


def _limb_rotation(flex, abd, twist, side):
    """Shoulder / hip rotation: flexion raises the limb forward, abduction sideways (away from the
    body's midline), twist turns it about its own long axis (external rotation positive)."""
    rot = _ry(-flex) @ _rx(abd) @ _rz(twist)
    if side == "r":
        rot = _MIRROR @ rot @ _MIRROR
    return rot


def forward_kinematics(angles: np.ndarray, subject: Subject, *, facing=0.0, root_xy=None,
                       ground: str = "feet", bar_height: float = 2.3, return_frames: bool = False):
    """Joint angles -> 3D points of `BODY_POINTS` in the world frame.

    Args:
      angles: (T, NUM_DOFS) float array in `DOFS` order; angles in degrees, `TRANSLATION_DOFS` in
        metres for a 1.75 m subject (scaled by ``subject.height / 1.75``). ``root_yaw`` is the
        motion's own turn relative to the facing direction.
      subject: the `Subject`.
      facing: scalar or (T,) facing direction in degrees, counter-clockwise from world +x (added to
        ``root_yaw``; ``root_fwd`` / ``root_side`` are along / left of it).
      root_xy: optional (T, 2) extra world translation of the whole body in metres (paths that turn).
      ground: how the body is placed vertically each frame before ``root_lift`` is added:
        'feet' = lowest ankle / toe point on the floor (z = 0; standing, sitting on a bench),
        'body' = lowest body point on the floor (lying), 'hang' = mean wrist height at
        ``bar_height`` (pull-ups), 'none' = pelvis at z = 0.
      bar_height: bar height in metres for ground='hang'.
      return_frames: also return {segment: (T, 3, 3) world rotation} for `SEGMENT_FRAMES`.

    Returns:
      (T, NUM_POINTS, 3) float64 world points in metres (plus the frames dict when asked).

    Raises:
      ValueError: wrong angle array shape, non-finite angles, or an unknown ground mode.
    """
    # Longer than a screen on purpose: One kinematic chain, root to extremities: each segment's
    # frame depends on its parent's.
    angles = np.asarray(angles, dtype=np.float64)
    if angles.ndim != 2 or angles.shape[1] != NUM_DOFS:
        raise ValueError(f"angles must have shape (T, {NUM_DOFS}), got {angles.shape}")
    if not np.all(np.isfinite(angles)):
        raise ValueError("angles contain NaN or inf")
    if ground not in ("feet", "body", "hang", "none"):
        raise ValueError(f"ground must be 'feet', 'body', 'hang' or 'none', got {ground!r}")
    num_frames = angles.shape[0]
    rad = np.deg2rad(angles)
    a = {name: rad[:, i] for name, i in DOF_INDEX.items()}
    b = subject.bones
    h = subject.height
    pts = np.zeros((num_frames, NUM_POINTS, 3))
    frames = {}

    def put(name, value):
        pts[:, POINT_INDEX[name]] = value

    facing_rad = np.deg2rad(np.broadcast_to(np.asarray(facing, dtype=np.float64), (num_frames,)))
    root = _rz(a["root_yaw"] + facing_rad) @ _ry(a["root_pitch"]) @ _rx(a["root_roll"])
    frames["pelvis"] = root
    pelvis = np.zeros((num_frames, 3))
    spine_rot = root @ _ry(a["spine_flex"]) @ _rx(-a["spine_side"]) @ _rz(a["spine_twist"])
    frames["spine"] = spine_rot
    spine = pelvis + _apply(spine_rot, np.array([0.0, 0.0, b["spine"]]))
    chest_rot = spine_rot @ _ry(a["chest_flex"]) @ _rx(-a["chest_side"]) @ _rz(a["chest_twist"])
    frames["chest"] = chest_rot
    thorax = spine + _apply(chest_rot, np.array([0.0, 0.0, b["chest"]]))
    head_rot = chest_rot @ _ry(a["neck_flex"]) @ _rx(-a["neck_side"]) @ _rz(a["neck_twist"])
    frames["head"] = head_rot
    head = b["head"]
    put("pelvis", pelvis)
    put("spine", spine)
    put("thorax", thorax)
    # Offsets inside the head segment (fractions of thorax->head-top), from the H36M skeleton.
    put("neck", thorax + _apply(head_rot, np.array([0.0, 0.0, 0.25 * head])))
    put("nose", thorax + _apply(head_rot, np.array([0.30 * head, 0.0, 0.40 * head])))
    put("head_centre", thorax + _apply(head_rot, np.array([0.08 * head, 0.0, 0.68 * head])))
    put("head_top", thorax + _apply(head_rot, np.array([0.10 * head, 0.0, 1.00 * head])))

    for side, sign in (("l", 1.0), ("r", -1.0)):
        shoulder = thorax + _apply(chest_rot, np.array([0.0, sign * b["clavicle"], 0.03 * b["clavicle"]]))
        upper = chest_rot @ _limb_rotation(a[f"{side}_sh_flex"], a[f"{side}_sh_abd"],
                                           a[f"{side}_sh_twist"], side)
        elbow = shoulder + _apply(upper, np.array([0.0, 0.0, -b["upper_arm"]]))
        fore = upper @ _ry(-a[f"{side}_elbow"])
        wrist = elbow + _apply(fore, np.array([0.0, 0.0, -b["forearm"]]))
        hand_rot = fore @ _ry(-a[f"{side}_wrist"])
        hand = b["hand"]
        put(f"{side}_shoulder", shoulder)
        put(f"{side}_elbow", elbow)
        put(f"{side}_wrist", wrist)
        put(f"{side}_hand", wrist + _apply(hand_rot, np.array([0.0, 0.0, -0.45 * hand])))
        put(f"{side}_hand_tip", wrist + _apply(hand_rot, np.array([0.0, 0.0, -hand])))
        # With the arm hanging and palms facing the thigh, the thumb points forward.
        put(f"{side}_thumb", wrist + _apply(hand_rot, np.array([0.35 * hand, 0.0, -0.45 * hand])))
        frames[f"{side}_upper_arm"], frames[f"{side}_forearm"], frames[f"{side}_hand"] = (
            upper, fore, hand_rot)

        hip = pelvis + _apply(root, np.array([0.0, sign * b["pelvis"], -0.1 * b["pelvis"]]))
        thigh = root @ _limb_rotation(a[f"{side}_hip_flex"], a[f"{side}_hip_abd"],
                                      a[f"{side}_hip_twist"], side)
        knee = hip + _apply(thigh, np.array([0.0, 0.0, -b["thigh"]]))
        shin = thigh @ _ry(a[f"{side}_knee"])
        ankle = knee + _apply(shin, np.array([0.0, 0.0, -b["shin"]]))
        foot = shin @ _ry(-a[f"{side}_ankle"])
        toe = ankle + _apply(foot, np.array([b["foot"], 0.0, -b["ankle_height"] * 0.9]))
        put(f"{side}_hip", hip)
        put(f"{side}_knee", knee)
        put(f"{side}_ankle", ankle)
        put(f"{side}_toe", toe)
        put(f"{side}_toe_tip", toe + _apply(foot, np.array([b["toe"], 0.0, 0.0])))
        frames[f"{side}_thigh"], frames[f"{side}_shin"], frames[f"{side}_foot"] = thigh, shin, foot

    # Root translation in the facing (yaw-only) frame, scaled to the subject.
    scale = h / 1.75
    yaw = facing_rad
    tx = angles[:, DOF_INDEX["root_fwd"]] * scale
    ty = angles[:, DOF_INDEX["root_side"]] * scale
    lift = angles[:, DOF_INDEX["root_lift"]] * scale
    offset = np.stack([tx * np.cos(yaw) - ty * np.sin(yaw), tx * np.sin(yaw) + ty * np.cos(yaw),
                       np.zeros(num_frames)], axis=-1)
    if ground == "feet":
        feet = [POINT_INDEX[n] for n in ("l_ankle", "l_toe", "l_toe_tip", "r_ankle", "r_toe",
                                         "r_toe_tip")]
        # The ankle joint sits ankle_height above the sole.
        low = np.minimum(pts[:, feet[0::3], 2].min(1) - b["ankle_height"],
                         pts[:, [feet[1], feet[2], feet[4], feet[5]], 2].min(1))
        offset[:, 2] = -low
    elif ground == "body":
        offset[:, 2] = -pts[:, :, 2].min(1)
    elif ground == "hang":
        wrists = pts[:, [POINT_INDEX["l_wrist"], POINT_INDEX["r_wrist"]], 2].mean(1)
        offset[:, 2] = bar_height - wrists
    offset[:, 2] += lift
    if root_xy is not None:
        root_xy = np.asarray(root_xy, dtype=np.float64)
        if root_xy.shape != (num_frames, 2):
            raise ValueError(f"root_xy must have shape ({num_frames}, 2), got {root_xy.shape}")
        offset[:, :2] += root_xy
    pts += offset[:, None, :]
    if return_frames:
        return pts, frames
    return pts


# Human3.6M 32 joints (VideoPose3D order). Joints the body does not model sit at their parent, as in
# the real files: 11 (spine base) = pelvis, 16 / 24 (clavicle roots) = thorax, 20 / 28 = wrist,
# 23 / 31 = hand.
H36M32_FROM_BODY = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "r_toe", "r_toe_tip",
    "l_hip", "l_knee", "l_ankle", "l_toe", "l_toe_tip",
    "pelvis", "spine", "thorax", "nose", "head_top",
    "thorax", "l_shoulder", "l_elbow", "l_wrist", "l_wrist", "l_thumb", "l_hand", "l_hand",
    "thorax", "r_shoulder", "r_elbow", "r_wrist", "r_wrist", "r_thumb", "r_hand", "r_hand",
)


# The 17 named joints of H36M32 (indices 0,1,2,3,6,7,8,12,13,14,15,17,18,19,25,26,27).
H36M17_FROM_BODY = tuple(H36M32_FROM_BODY[i] for i in
                         (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27))


# Penn Action / canonical joints by *name*; the on-disk order comes from keypoints.PENN13_JOINT_NAMES.
CANONICAL13_FROM_BODY = {
    "head": "head_centre",
    "left_shoulder": "l_shoulder", "right_shoulder": "r_shoulder",
    "left_elbow": "l_elbow", "right_elbow": "r_elbow",
    "left_wrist": "l_wrist", "right_wrist": "r_wrist",
    "left_hip": "l_hip", "right_hip": "r_hip",
    "left_knee": "l_knee", "right_knee": "r_knee",
    "left_ankle": "l_ankle", "right_ankle": "r_ankle",
}


# Kinect v2 (NTU RGB+D) 25 joints in the dataset's order.
NTU25_FROM_BODY = (
    "pelvis", "spine", "neck", "head_centre",
    "l_shoulder", "l_elbow", "l_wrist", "l_hand",
    "r_shoulder", "r_elbow", "r_wrist", "r_hand",
    "l_hip", "l_knee", "l_ankle", "l_toe",
    "r_hip", "r_knee", "r_ankle", "r_toe",
    "thorax", "l_hand_tip", "l_thumb", "r_hand_tip", "r_thumb",
)


# For Kinect joint orientations: (segment whose side axis the joint frame uses, point the joint's bone
# points to), None for the leaf joints that the real files write as a zero quaternion (head, feet,
# hand tips, thumbs). Each entry is indexed like NTU25_FROM_BODY.
NTU25_ORIENTATION = (
    ("pelvis", "spine"), ("spine", "thorax"), ("head", "head_centre"), None,
    ("l_upper_arm", "l_elbow"), ("l_forearm", "l_wrist"), ("l_hand", "l_hand"), ("l_hand", "l_hand_tip"),
    ("r_upper_arm", "r_elbow"), ("r_forearm", "r_wrist"), ("r_hand", "r_hand"), ("r_hand", "r_hand_tip"),
    ("l_thigh", "l_knee"), ("l_shin", "l_ankle"), ("l_foot", "l_toe"), None,
    ("r_thigh", "r_knee"), ("r_shin", "r_ankle"), ("r_foot", "r_toe"), None,
    ("chest", "neck"), None, None, None, None,
)


def layout_indices(names) -> np.ndarray:
    """Indices into `BODY_POINTS` for a sequence of body-point names."""
    try:
        return np.asarray([POINT_INDEX[n] for n in names], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"unknown body point {error.args[0]!r}; known: {BODY_POINTS}") from None


H36M32_INDEX = layout_indices(H36M32_FROM_BODY)


H36M17_INDEX = layout_indices(H36M17_FROM_BODY)


NTU25_INDEX = layout_indices(NTU25_FROM_BODY)


def canonical_names_to_index(joint_names) -> np.ndarray:
    """Body-point indices for a tuple of canonical joint names (e.g. keypoints.PENN13_JOINT_NAMES).

    Raises:
      ValueError: a name that is not one of the 13 canonical joints.
    """
    try:
        return layout_indices([CANONICAL13_FROM_BODY[n] for n in joint_names])
    except KeyError as error:
        raise ValueError(f"joint {error.args[0]!r} is not a canonical 13-joint name "
                         f"{tuple(CANONICAL13_FROM_BODY)}") from None


def arm_ik(wrist_target, side: str, *, elbow_hint=None, subject: Subject | None = None) -> dict:
    """Shoulder / elbow angles that put a wrist at a target, for authoring keyframes.

    Args:
      wrist_target: (3,) wrist position in metres in the chest frame (x forward, y left, z up),
        relative to the thorax point (the base of the neck).
      side: 'l' or 'r'.
      elbow_hint: (3,) direction in the chest frame towards which the elbow should point; picks the
        swivel of the arm about the shoulder-wrist line. Default: down and outwards on that side.
      subject: body proportions (default: `default_subject()`).

    Returns:
      {'<side>_sh_flex', '<side>_sh_abd', '<side>_sh_twist', '<side>_elbow'} in degrees. Targets out
      of reach are pulled onto the reachable sphere (arm straight).
    """
    if side not in ("l", "r"):
        raise ValueError(f"side must be 'l' or 'r', got {side!r}")
    subject = subject or default_subject()
    b = subject.bones
    target = np.asarray(wrist_target, dtype=np.float64).copy()
    sign = 1.0 if side == "l" else -1.0
    hint = np.asarray((0.0, 0.6 * sign, -1.0) if elbow_hint is None else elbow_hint,
                      dtype=np.float64).copy()
    if side == "r":  # solve the mirror image with the left arm
        target[1] = -target[1]
        hint[1] = -hint[1]
    shoulder = np.array([0.0, b["clavicle"], 0.03 * b["clavicle"]])
    w = target - shoulder
    l1, l2 = b["upper_arm"], b["forearm"]
    dist = float(np.clip(np.linalg.norm(w), abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6))
    w_hat = w / max(np.linalg.norm(w), 1e-9)
    cos_e = (dist ** 2 - l1 ** 2 - l2 ** 2) / (2 * l1 * l2)
    elbow = float(np.arccos(np.clip(cos_e, -1.0, 1.0)))
    # Wrist and elbow directions in the upper-arm frame (bone along -z, elbow bends towards +x).
    v = np.array([l2 * np.sin(elbow), 0.0, -l1 - l2 * np.cos(elbow)])
    u1 = v / np.linalg.norm(v)
    e_dir = np.array([0.0, 0.0, -1.0])
    u2 = e_dir - u1 * (e_dir @ u1)
    u2 /= np.linalg.norm(u2)
    h2 = hint - w_hat * (hint @ w_hat)
    if np.linalg.norm(h2) < 1e-6:  # hint along the arm: any perpendicular direction
        h2 = np.cross(w_hat, [1.0, 0.0, 0.0])
    h2 /= np.linalg.norm(h2)
    rot = (np.stack([w_hat, h2, np.cross(w_hat, h2)], 1)
           @ np.stack([u1, u2, np.cross(u1, u2)], 1).T)
    # Decompose rot = Ry(-flex) Rx(abd) Rz(twist).
    abd = float(np.arcsin(np.clip(-rot[1, 2], -1.0, 1.0)))
    flex = float(np.arctan2(-rot[0, 2], rot[2, 2]))
    m = _rx(np.array(-abd)) @ _ry(np.array(flex)) @ rot
    twist = float(np.arctan2(m[1, 0], m[0, 0]))
    deg = np.rad2deg
    return {f"{side}_sh_flex": float(deg(flex)), f"{side}_sh_abd": float(deg(abd)),
            f"{side}_sh_twist": float(deg(twist)), f"{side}_elbow": float(deg(elbow))}
