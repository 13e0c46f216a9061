"""Parametric actions of the synthetic pose world: keyframed joint-angle motions with per-take variation.

Every action is a `Motion`: a handful of keyframe poses (joint angles in degrees, see
`synthetic_body.DOFS`) at normalised times, interpolated by a periodic cubic spline. Cyclic actions
(walk, squat, push-up, ...) loop; one-shot actions (golf swing, baseball pitch, ...) run from their first
to their last keyframe and then return to the first pose (used between repetitions of long takes).
Poses are authored for a right-handed performer; ``asymmetric`` actions are performed mirrored
(left-handed) in a minority of takes.

`sample_take` turns a motion into one take (T frames of joint angles, a facing direction per frame and
an optional world path) with the variation real performers show: tempo, amplitude (per clip and per
joint), keyframe timing, constant posture offsets, slow idiosyncratic drift, phase, handedness and
facing direction.

Facing direction convention (what view labels are measured against): the body's forward axis
when upright — where the chest points in a standing action's starting stance (e.g. towards the ball
for golf, towards the plate for a pitch), the head direction for prone actions (push-up) and the feet
direction for supine ones (sit-up, bench press: the side the person sits up / looks towards).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
from scipy import interpolate

from cv_mim.synthetic import body


def sym(**dofs) -> dict:
    """The same limb angles on both sides: ``sym(sh_flex=30)`` -> {'l_sh_flex': 30, 'r_sh_flex': 30}."""
    out = {}
    for name, value in dofs.items():
        out[f"l_{name}"] = value
        out[f"r_{name}"] = value
    return out


def left(**dofs) -> dict:
    """Left-limb angles: ``left(knee=40)`` -> {'l_knee': 40}."""
    return {f"l_{k}": v for k, v in dofs.items()}


def right(**dofs) -> dict:
    """Right-limb angles: ``right(knee=40)`` -> {'r_knee': 40}."""
    return {f"r_{k}": v for k, v in dofs.items()}


def pose(*parts: Mapping[str, float], **dofs) -> dict:
    """Merges partial poses left to right (later entries win)."""
    out = {}
    for part in parts:
        out.update(part)
    out.update(dofs)
    return out


def hands(l=None, r=None, *, l_elbow=None, r_elbow=None) -> dict:
    """Arm angles placing the wrists at chest-frame targets (metres from the thorax, x forward,
    y left, z up; for a 1.75 m body) with optional elbow directions, via `synthetic_body.arm_ik`."""
    out = {}
    if l is not None:
        out.update(body.arm_ik(l, "l", elbow_hint=l_elbow))
    if r is not None:
        out.update(body.arm_ik(r, "r", elbow_hint=r_elbow))
    return out


def swap_sides(p: Mapping[str, float]) -> dict:
    """The same partial pose with left and right limbs exchanged (gait half-cycles)."""
    out = {}
    for name, value in p.items():
        if name.startswith("l_"):
            out["r_" + name[2:]] = value
        elif name.startswith("r_"):
            out["l_" + name[2:]] = value
        elif name in ("spine_twist", "chest_twist", "spine_side", "chest_side", "root_roll",
                      "neck_twist", "root_yaw"):
            out[name] = -value
        else:
            out[name] = value
    return out


@dataclasses.dataclass(frozen=True)
class Motion:
    """One parametric action.

    Attributes:
      name: class name (Penn Action names for the Penn classes).
      cyclic: loops (True) or runs once (False).
      period: seconds per cycle (cyclic) or for keyframes 0..1 (one-shot).
      keyframes: ((time, partial pose), ...) with times in [0, 1) for cyclic motions, [0, 1] for
        one-shot ones; a partial pose maps DOF names to degrees (metres for translations) and is
        applied over `base` over `synthetic_body.REST_POSE`.
      base: pose shared by all keyframes.
      ground: `synthetic_body.forward_kinematics` ground mode.
      speed: forward walking speed in m/s (root translation along the facing direction).
      asymmetric: one arm / side dominant (performed mirrored by left-handed performers).
      returns: one-shot only: fraction of `period` taken to return to the first pose.
      description: one line for the manifest.
    """

    name: str
    cyclic: bool
    period: float
    keyframes: tuple
    base: Mapping[str, float] = dataclasses.field(default_factory=dict)
    ground: str = "feet"
    speed: float = 0.0
    asymmetric: bool = False
    returns: float = 0.35
    description: str = ""

    def keyframe_array(self) -> tuple[np.ndarray, np.ndarray]:
        """Closed periodic keyframe table: times (K+1,) and poses (K+1, NUM_DOFS), last = first."""
        times, poses = [], []
        for t, partial in self.keyframes:
            full = dict(body.REST_POSE)
            full.update(self.base)
            unknown = [k for k in partial if k not in body.DOF_INDEX]
            unknown += [k for k in self.base if k not in body.DOF_INDEX]
            if unknown:
                raise ValueError(f"motion {self.name!r}: unknown DOF names {unknown}")
            full.update(partial)
            times.append(float(t))
            poses.append([full[n] for n in body.DOFS])
        end = 1.0 if self.cyclic else 1.0 + self.returns
        times.append(end)
        poses.append(poses[0])
        times = np.asarray(times)
        if np.any(np.diff(times) <= 0) or times[0] != 0.0:
            raise ValueError(f"motion {self.name!r}: keyframe times must start at 0 and increase, "
                             f"got {times.tolist()}")
        return times, np.asarray(poses, dtype=np.float64)


def _gait(half: Sequence[tuple[float, dict]]) -> tuple:
    """A full gait cycle from the first half (times in [0, 0.5)): the second half mirrors it."""
    return tuple(half) + tuple((t + 0.5, swap_sides(p)) for t, p in half)


_READY = pose(sym(hip_flex=15, knee=20, hip_abd=10), spine_flex=12)


MOTIONS: dict[str, Motion] = {}


def _add(motion: Motion) -> None:
    MOTIONS[motion.name] = motion


# ---- Penn Action classes (strum_guitar is not modelled: the paper drops it).
_SET = hands(l=(0.22, 0.03, -0.17), r=(0.21, -0.03, -0.15))   # both hands together at the chest


_add(Motion(
    "baseball_pitch", cyclic=False, period=1.8, asymmetric=True,
    description="right-handed pitch: set, leg lift, stride and cock, release, follow-through",
    keyframes=(
        (0.0, pose(_SET, root_yaw=-80, **sym(knee=10))),
        (0.3, pose(hands(l=(0.2, 0.02, -0.05), r=(0.19, -0.03, -0.04)), root_yaw=-90, spine_flex=5,
                   **left(hip_flex=95, knee=95), **right(knee=15))),
        (0.5, pose(root_yaw=-55, root_fwd=0.45, chest_twist=-30, spine_side=-10,
                   **right(sh_flex=-20, sh_abd=90, sh_twist=90, elbow=90, knee=25, hip_flex=10),
                   **left(sh_flex=40, sh_abd=70, elbow=20, hip_flex=45, knee=35, hip_abd=20))),
        (0.62, pose(root_yaw=-5, root_fwd=0.7, chest_twist=25, spine_flex=25,
                    **right(sh_flex=120, sh_abd=55, elbow=30, hip_flex=-30, knee=40),
                    **left(sh_flex=30, sh_abd=20, elbow=100, hip_flex=70, knee=30))),
        (0.8, pose(root_yaw=10, root_fwd=0.8, spine_flex=50, chest_twist=20,
                   **right(sh_flex=60, sh_abd=-40, elbow=30, hip_flex=-10, knee=75),
                   **left(sh_flex=20, elbow=90, hip_flex=60, knee=40))),
        (1.0, pose(root_yaw=0, root_fwd=0.85, spine_flex=15, **sym(knee=20, hip_flex=10, elbow=30))),
    )))


_add(Motion(
    "baseball_swing", cyclic=False, period=1.4, asymmetric=True,
    base=pose(sym(hip_flex=25, knee=25, hip_abd=18), spine_flex=20, neck_twist=55),
    description="right-handed batter: stance, load, swing through contact, wrap-around finish",
    keyframes=(
        (0.0, pose(hands(l=(0.16, -0.12, 0.02), r=(0.12, -0.17, 0.05), l_elbow=(0.3, 0.0, -1.0)),
                   chest_twist=-15)),
        (0.35, pose(hands(l=(0.08, -0.16, 0.06), r=(0.04, -0.21, 0.09), l_elbow=(0.3, 0.0, -1.0)),
                    chest_twist=-28, spine_twist=-10, **left(hip_flex=35, knee=30))),
        (0.6, pose(hands(l=(0.47, 0.08, -0.22), r=(0.42, 0.04, -0.19)),
                   chest_twist=25, spine_twist=25, neck_twist=30)),
        (0.8, pose(hands(l=(0.08, 0.28, 0.12), r=(0.2, 0.2, 0.1), r_elbow=(1.0, 0.0, -0.5)),
                   chest_twist=45, spine_twist=40, neck_twist=20, spine_flex=10,
                   **right(knee=45, hip_twist=30))),
        (1.0, pose(hands(l=(0.0, 0.25, 0.2), r=(0.12, 0.2, 0.22), r_elbow=(1.0, 0.0, -0.3)),
                   chest_twist=45, spine_twist=40, neck_twist=20, spine_flex=5,
                   **right(knee=45, hip_twist=30))),
    )))


_add(Motion(
    "bench_press", cyclic=True, period=2.4, ground="feet",
    base=pose(sym(hip_flex=5, knee=80, hip_abd=20), root_pitch=-85, neck_flex=10),
    description="lying on a bench (feet on the floor), pressing a bar from the chest to arm's length",
    keyframes=(
        (0.0, hands(l=(0.5, 0.24, -0.05), r=(0.5, -0.24, -0.05))),
        (0.5, hands(l=(0.13, 0.33, -0.07), r=(0.13, -0.33, -0.07),
                    l_elbow=(-1.0, 0.6, 0.0), r_elbow=(-1.0, -0.6, 0.0))),
    )))


_add(Motion(
    "bowl", cyclic=False, period=2.6, asymmetric=True,
    description="approach steps, pendulum backswing, sliding release, follow-through",
    keyframes=(
        (0.0, pose(_SET, spine_flex=10, **sym(knee=15))),
        (0.25, pose(root_fwd=0.4, spine_flex=15, **right(sh_flex=60, elbow=20, hip_flex=25),
                    **left(sh_flex=40, sh_abd=20, elbow=30, hip_flex=-10, knee=25))),
        (0.5, pose(root_fwd=0.9, spine_flex=30, **right(sh_flex=-70, elbow=5, hip_flex=-15, knee=30),
                   **left(sh_abd=70, elbow=10, hip_flex=30, knee=20))),
        (0.75, pose(root_fwd=1.5, spine_flex=45, **right(sh_flex=40, elbow=5, hip_flex=-30, knee=15,
                                                         hip_abd=-10),
                    **left(sh_abd=80, elbow=10, hip_flex=75, knee=85))),
        (1.0, pose(root_fwd=1.6, spine_flex=30, **right(sh_flex=125, elbow=20, hip_flex=-30, knee=15,
                                                        hip_abd=-10),
                   **left(sh_abd=75, elbow=15, hip_flex=75, knee=85))),
    )))


_RACK = hands(l=(0.13, 0.18, 0.0), r=(0.13, -0.18, 0.0), l_elbow=(1.0, 0.2, -0.3),
              r_elbow=(1.0, -0.2, -0.3))


_OVERHEAD = hands(l=(0.03, 0.3, 0.5), r=(0.03, -0.3, 0.5))


_add(Motion(
    "clean_and_jerk", cyclic=False, period=3.6,
    description="barbell from the floor to the front rack (squat catch), dip, split jerk overhead",
    keyframes=(
        (0.0, pose(hands(l=(0.35, 0.2, -0.41), r=(0.35, -0.2, -0.41)), spine_flex=35, chest_flex=5,
                   neck_flex=-25, **sym(hip_flex=95, knee=105, ankle=25, hip_abd=12))),
        (0.2, pose(hands(l=(0.3, 0.2, -0.45), r=(0.3, -0.2, -0.45)), spine_flex=30, neck_flex=-15,
                   **sym(hip_flex=60, knee=40, ankle=10, hip_abd=10))),
        (0.33, pose(hands(l=(0.12, 0.22, -0.3), r=(0.12, -0.22, -0.3)), spine_flex=-5,
                    **sym(hip_flex=-5, knee=5, ankle=-25))),
        (0.45, pose(_RACK, spine_flex=10, **sym(hip_flex=95, knee=110, ankle=25, hip_abd=15))),
        (0.6, pose(_RACK, **sym(hip_flex=0, knee=5))),
        (0.7, pose(_RACK, **sym(hip_flex=25, knee=30, ankle=15))),
        (0.8, pose(_OVERHEAD, **left(hip_flex=40, knee=45), **right(hip_flex=-25, knee=35))),
        (1.0, pose(_OVERHEAD, **sym(knee=5))),
    )))


_add(Motion(
    "golf_swing", cyclic=False, period=2.2, asymmetric=True,
    base=pose(sym(hip_flex=25, knee=18, hip_abd=10), spine_flex=30, chest_flex=5, neck_flex=25),
    description="address, backswing to the right, downswing through impact, high finish",
    keyframes=(
        (0.0, hands(l=(0.28, 0.03, -0.43), r=(0.3, 0.0, -0.46))),
        (0.45, pose(hands(l=(0.15, -0.2, 0.28), r=(0.06, -0.25, 0.3), l_elbow=(0.2, 0.0, -1.0),
                          r_elbow=(0.0, -0.3, -1.0)),
                    chest_twist=-50, spine_twist=-35, neck_twist=40, **left(knee=30))),
        (0.62, pose(hands(l=(0.3, 0.06, -0.42), r=(0.31, 0.02, -0.45)), chest_twist=15, spine_twist=15)),
        (0.8, pose(hands(l=(0.12, 0.3, 0.12), r=(0.25, 0.2, 0.08), r_elbow=(1.0, 0.0, -0.5)),
                   chest_twist=45, spine_twist=40, spine_flex=10, neck_twist=-30,
                   **right(knee=35, ankle=-30))),
        (1.0, pose(hands(l=(-0.05, 0.25, 0.3), r=(0.05, 0.15, 0.3), r_elbow=(1.0, 0.0, -0.3)),
                   chest_twist=50, spine_twist=45, spine_flex=0, neck_flex=5, neck_twist=-20,
                   **right(knee=35, ankle=-30, hip_flex=5), **left(hip_flex=0, knee=5))),
    )))


_add(Motion(
    "jump_rope", cyclic=True, period=0.5,
    base=pose(sym(sh_abd=25, elbow=75, sh_twist=35, hip_abd=4), neck_flex=5),
    description="two-footed skipping: small hops, hands circling at the hips",
    keyframes=(
        (0.0, pose(root_lift=0.0, **sym(knee=25, hip_flex=12, ankle=20, sh_flex=25))),
        (0.5, pose(root_lift=0.13, **sym(knee=8, hip_flex=4, ankle=-30, sh_flex=0))),
    )))


_add(Motion(
    "jumping_jacks", cyclic=True, period=1.1,
    description="arms from the sides to overhead while the legs jump apart and back",
    keyframes=(
        (0.0, pose(root_lift=0.0, **sym(sh_abd=5, elbow=10, hip_abd=2, knee=15))),
        (0.25, pose(root_lift=0.09, **sym(sh_abd=90, elbow=10, hip_abd=12, knee=5, ankle=-25))),
        (0.5, pose(root_lift=0.0, **sym(sh_abd=165, elbow=10, hip_abd=22, knee=15))),
        (0.75, pose(root_lift=0.09, **sym(sh_abd=90, elbow=10, hip_abd=12, knee=5, ankle=-25))),
    )))


_add(Motion(
    "pullup", cyclic=True, period=2.8, ground="hang",
    base=pose(sym(hip_flex=25, knee=70), left(hip_abd=-4), right(hip_abd=-4)),
    description="hanging from a bar with a wide grip, pulling the chin over it",
    keyframes=(
        (0.0, pose(hands(l=(0.06, 0.36, 0.48), r=(0.06, -0.36, 0.48)), neck_flex=-5)),
        (0.5, pose(hands(l=(0.14, 0.36, 0.1), r=(0.14, -0.36, 0.1), l_elbow=(-0.2, 0.5, -1.0),
                         r_elbow=(-0.2, -0.5, -1.0)), neck_flex=-20, spine_flex=-10)),
    )))


_add(Motion(
    "pushup", cyclic=True, period=2.2, ground="body",
    base=pose(sym(hip_flex=0, knee=0, ankle=25, sh_abd=12), neck_flex=-15),
    description="prone plank on hands and toes, lowering the chest to the floor and pushing up",
    keyframes=(
        (0.0, pose(root_pitch=64, **sym(sh_flex=64, elbow=0))),
        (0.5, pose(root_pitch=82, **sym(sh_flex=38, sh_abd=35, elbow=95))),
    )))


_add(Motion(
    "situp", cyclic=True, period=2.6, ground="body",
    base=pose(hands(l=(0.12, -0.1, -0.1), r=(0.13, 0.1, -0.12), l_elbow=(0.3, 0.5, -1.0),
                    r_elbow=(0.3, -0.5, -1.0)), sym(knee=100, ankle=10, hip_abd=8)),
    description="lying on the back, knees bent, arms crossed on the chest, curling up to sitting",
    keyframes=(
        (0.0, pose(root_pitch=-88, neck_flex=10, **sym(hip_flex=50))),
        (0.5, pose(root_pitch=-40, spine_flex=25, chest_flex=25, neck_flex=25, **sym(hip_flex=95))),
    )))


_add(Motion(
    "squat", cyclic=True, period=2.6,
    base=sym(hip_abd=8, hip_twist=10),
    description="deep body-weight squat with the arms raised forward for balance",
    keyframes=(
        (0.0, sym(sh_flex=10, elbow=10)),
        (0.5, pose(spine_flex=25, chest_flex=5, neck_flex=-20,
                   **sym(hip_flex=105, knee=115, ankle=30, sh_flex=85, elbow=5, hip_abd=14))),
    )))


_add(Motion(
    "tennis_forehand", cyclic=False, period=1.4, asymmetric=True, base=_READY,
    description="ready position, unit turn and backswing, contact, follow-through over the left shoulder",
    keyframes=(
        (0.0, hands(l=(0.3, -0.02, -0.2), r=(0.33, -0.06, -0.22))),
        (0.35, pose(root_yaw=-45, chest_twist=-40, **right(sh_flex=-20, sh_abd=60, elbow=30),
                    **left(sh_flex=80, sh_abd=-20, elbow=10))),
        (0.6, pose(root_yaw=-10, chest_twist=10, **right(sh_flex=60, sh_abd=40, elbow=20),
                   **left(sh_flex=40, sh_abd=30, elbow=60))),
        (0.85, pose(hands(r=(0.15, 0.22, 0.05), r_elbow=(1.0, 0.0, -0.3)), root_yaw=10, chest_twist=40,
                    **left(sh_flex=20, elbow=90))),
        (1.0, pose(hands(r=(0.25, 0.15, -0.1), r_elbow=(1.0, 0.0, -0.5)), root_yaw=5, chest_twist=20,
                   **left(sh_flex=30, elbow=90))),
    )))


_add(Motion(
    "tennis_serve", cyclic=False, period=2.0, asymmetric=True,
    description="sideways stance, ball toss into the trophy pose, jump to contact, follow-through",
    keyframes=(
        (0.0, pose(hands(l=(0.3, 0.05, -0.25), r=(0.32, 0.0, -0.22)), root_yaw=-70, **sym(knee=10))),
        (0.3, pose(root_yaw=-70, spine_flex=-15, **sym(knee=40, hip_flex=20),
                   **left(sh_flex=170, elbow=5), **right(sh_flex=-10, sh_abd=95, sh_twist=80, elbow=100))),
        (0.55, pose(root_yaw=-30, root_lift=0.15, chest_twist=20, **sym(knee=5, ankle=-30),
                    **right(sh_flex=170, sh_abd=20, elbow=5), **left(sh_flex=60, elbow=80))),
        (0.75, pose(root_yaw=0, root_fwd=0.4, spine_flex=40,
                    **right(sh_flex=40, sh_abd=-30, elbow=10, hip_flex=-25, knee=40),
                    **left(sh_flex=10, hip_flex=30, knee=30))),
        (1.0, pose(root_yaw=0, root_fwd=0.5, spine_flex=15, **sym(knee=20, hip_flex=15, sh_flex=20,
                                                                   elbow=30))),
    )))


# ---- Everyday / NTU RGB+D-style actions (also in the multi-view pretraining data).
_add(Motion(
    "walk", cyclic=True, period=1.1, speed=1.35,
    description="walking (on a curved path in the long multi-view takes)",
    keyframes=_gait((
        (0.0, pose(chest_twist=-5, **right(hip_flex=25, knee=5, sh_flex=-20, elbow=15),
                   **left(hip_flex=-15, knee=15, sh_flex=20, elbow=25))),
        (0.15, pose(**right(hip_flex=15, knee=18), **left(hip_flex=-12, knee=40))),
        (0.3, pose(chest_twist=0, **right(hip_flex=0, knee=5, sh_flex=0), **left(hip_flex=20, knee=65,
                                                                                 sh_flex=0))),
    ))))


_add(Motion(
    "run", cyclic=True, period=0.7, speed=3.2, base=pose(spine_flex=10, **sym(elbow=90)),
    description="running with bent arms",
    keyframes=_gait((
        (0.0, pose(root_lift=0.0, chest_twist=-8, **right(hip_flex=35, knee=20, sh_flex=-35),
                   **left(hip_flex=-20, knee=40, sh_flex=40))),
        (0.15, pose(**right(hip_flex=10, knee=35), **left(hip_flex=-25, knee=70))),
        (0.32, pose(root_lift=0.06, chest_twist=0, **right(hip_flex=-15, knee=30, sh_flex=0),
                    **left(hip_flex=45, knee=100, sh_flex=0))),
    ))))


_add(Motion(
    "staggering", cyclic=True, period=1.6, speed=0.4,
    base=pose(sym(sh_abd=25, elbow=30)),
    description="unsteady slow walk with the trunk swaying sideways (NTU A42)",
    keyframes=_gait((
        (0.0, pose(root_roll=8, spine_side=10, neck_side=8, **right(hip_flex=20, knee=10, hip_abd=10),
                   **left(hip_flex=-10, knee=20))),
        (0.25, pose(root_roll=2, spine_side=0, **right(hip_flex=0, knee=8),
                    **left(hip_flex=20, knee=55, hip_abd=15))),
    ))))


_add(Motion(
    "hand_waving", cyclic=True, period=1.0, asymmetric=True,
    base=right(sh_abd=110, sh_flex=20, sh_twist=85),
    description="waving the raised right hand side to side (NTU A23)",
    keyframes=((0.0, right(elbow=15)), (0.5, right(elbow=70))),
))


_add(Motion(
    "punching", cyclic=True, period=1.2, asymmetric=True,
    base=pose(sym(knee=20), left(hip_flex=20), right(hip_flex=-15), spine_twist=-15),
    description="boxing guard, right cross and left jab",
    keyframes=(
        (0.0, pose(**sym(sh_flex=40, sh_abd=20, elbow=135, sh_twist=-30))),
        (0.2, pose(chest_twist=30, **right(sh_flex=90, sh_abd=10, elbow=5),
                   **left(sh_flex=40, sh_abd=20, elbow=135, sh_twist=-30))),
        (0.4, pose(**sym(sh_flex=40, sh_abd=20, elbow=135, sh_twist=-30))),
        (0.6, pose(chest_twist=-10, **left(sh_flex=90, sh_abd=5, elbow=5),
                   **right(sh_flex=40, sh_abd=20, elbow=135, sh_twist=-30))),
        (0.8, pose(**sym(sh_flex=40, sh_abd=20, elbow=135, sh_twist=-30))),
    )))


_add(Motion(
    "kicking", cyclic=False, period=1.3, asymmetric=True,
    description="front kick with the right leg (NTU A24)",
    keyframes=(
        (0.0, {}),
        (0.35, pose(**right(hip_flex=70, knee=90), **sym(sh_abd=20, elbow=40))),
        (0.5, pose(spine_flex=-10, **right(hip_flex=80, knee=5, ankle=-20), **sym(sh_abd=30, elbow=30))),
        (0.75, pose(**right(hip_flex=50, knee=90), **sym(sh_abd=20, elbow=40))),
        (1.0, {}),
    )))


_add(Motion(
    "cheer_up", cyclic=True, period=1.0,
    description="both arms raised in a V above the head, pumping (NTU A22)",
    keyframes=(
        (0.0, pose(**sym(sh_abd=150, sh_flex=25, elbow=10)) ),
        (0.5, pose(**sym(sh_abd=125, sh_flex=30, elbow=60, knee=15))),
    )))


_add(Motion(
    "sit_down", cyclic=False, period=2.0,
    description="sitting down on a chair (NTU A8)",
    keyframes=(
        (0.0, {}),
        (0.5, pose(spine_flex=30, **sym(hip_flex=60, knee=70, ankle=20, sh_flex=30))),
        (1.0, pose(spine_flex=5, **sym(hip_flex=90, knee=90, sh_flex=25, elbow=60))),
    )))


_add(Motion(
    "stand_up", cyclic=False, period=2.0,
    description="standing up from a chair (NTU A9)",
    keyframes=(
        (0.0, pose(spine_flex=5, **sym(hip_flex=90, knee=90, sh_flex=25, elbow=60))),
        (0.5, pose(spine_flex=35, **sym(hip_flex=65, knee=75, ankle=20, sh_flex=30))),
        (1.0, {}),
    )))


_add(Motion(
    "clapping", cyclic=True, period=0.45,
    description="clapping in front of the chest (NTU A10)",
    keyframes=((0.0, hands(l=(0.36, 0.01, -0.12), r=(0.36, -0.01, -0.12))),
               (0.5, hands(l=(0.3, 0.24, -0.1), r=(0.3, -0.24, -0.1)))),
))


_add(Motion(
    "hopping", cyclic=True, period=0.55, asymmetric=True,
    base=pose(left(hip_flex=40, knee=85), sym(sh_abd=30, elbow=20)),
    description="hopping on the right foot, left foot held up (NTU A26)",
    keyframes=(
        (0.0, pose(root_lift=0.0, **right(knee=25, hip_flex=15, ankle=20))),
        (0.5, pose(root_lift=0.12, **right(knee=5, hip_flex=5, ankle=-30))),
    )))


_add(Motion(
    "jump_up", cyclic=False, period=1.4,
    description="crouch, arm swing and vertical jump (NTU A27)",
    keyframes=(
        (0.0, {}),
        (0.35, pose(spine_flex=30, **sym(hip_flex=60, knee=80, ankle=25, sh_flex=-40))),
        (0.55, pose(root_lift=0.3, **sym(sh_flex=150, knee=5, ankle=-30))),
        (0.75, pose(spine_flex=15, **sym(hip_flex=40, knee=50, ankle=20, sh_flex=40))),
        (1.0, {}),
    )))


_add(Motion(
    "pointing", cyclic=False, period=1.8, asymmetric=True,
    description="pointing forward-left with the right hand (NTU A31)",
    keyframes=(
        (0.0, {}),
        (0.3, pose(neck_twist=15, **right(sh_flex=85, sh_abd=-15, elbow=5))),
        (0.75, pose(neck_twist=15, **right(sh_flex=90, sh_abd=-10, elbow=5))),
        (1.0, {}),
    )))


_add(Motion(
    "salute", cyclic=False, period=1.8, asymmetric=True,
    description="military salute with the right hand (NTU A38)",
    keyframes=(
        (0.0, {}),
        (0.3, right(sh_abd=80, sh_flex=30, sh_twist=70, elbow=140)),
        (0.75, right(sh_abd=85, sh_flex=30, sh_twist=75, elbow=145)),
        (1.0, {}),
    )))


_add(Motion(
    "cross_hands", cyclic=False, period=1.8,
    description="crossing both forearms in front of the chest to say stop (NTU A40)",
    keyframes=(
        (0.0, {}),
        (0.3, hands(l=(0.3, -0.12, -0.05), r=(0.32, 0.12, -0.03))),
        (0.75, hands(l=(0.29, -0.13, -0.04), r=(0.31, 0.13, -0.02))),
        (1.0, {}),
    )))


_add(Motion(
    "bow", cyclic=False, period=1.6,
    description="bowing from the hips (NTU A35)",
    keyframes=(
        (0.0, {}),
        (0.4, pose(spine_flex=40, chest_flex=15, neck_flex=20, **sym(hip_flex=15, sh_flex=10))),
        (0.6, pose(spine_flex=40, chest_flex=15, neck_flex=20, **sym(hip_flex=15, sh_flex=10))),
        (1.0, {}),
    )))


_add(Motion(
    "touch_head", cyclic=False, period=2.0, asymmetric=True,
    description="right hand on the forehead as with a headache (NTU A44)",
    keyframes=(
        (0.0, {}),
        (0.3, pose(neck_flex=15, **right(sh_flex=100, sh_abd=20, elbow=140))),
        (0.75, pose(neck_flex=20, spine_flex=10, **right(sh_flex=105, sh_abd=15, elbow=145))),
        (1.0, {}),
    )))


_add(Motion(
    "pick_up", cyclic=False, period=2.2, asymmetric=True,
    description="bending down to pick something up with the right hand (NTU A6)",
    keyframes=(
        (0.0, {}),
        (0.45, pose(spine_flex=50, chest_flex=10, **sym(hip_flex=60, knee=60, ankle=15),
                    **right(sh_flex=70, elbow=5), **left(sh_flex=40, elbow=40))),
        (0.6, pose(spine_flex=50, chest_flex=10, **sym(hip_flex=60, knee=60, ankle=15),
                   **right(sh_flex=65, elbow=10), **left(sh_flex=40, elbow=40))),
        (1.0, right(elbow=90, sh_flex=15)),
    )))


# Class lists per format.
PENN_ACTIONS = ("baseball_pitch", "baseball_swing", "bench_press", "bowl", "clean_and_jerk",
                "golf_swing", "jump_rope", "jumping_jacks", "pullup", "pushup", "situp", "squat",
                "tennis_forehand", "tennis_serve")


# NTU RGB+D action codes (single-person actions A1-A49) and the motion used for each.
NTU_ACTIONS = {6: "pick_up", 7: "baseball_pitch", 8: "sit_down", 9: "stand_up", 10: "clapping",
               22: "cheer_up", 23: "hand_waving", 24: "kicking", 26: "hopping", 27: "jump_up",
               31: "pointing", 35: "bow", 38: "salute", 40: "cross_hands", 42: "staggering",
               44: "touch_head"}


# NTU's own class names for the codes above (the take name in the manifest).
NTU_ACTION_NAMES = {6: "pickup", 7: "throw", 8: "sitting down", 9: "standing up (from sitting)",
                    10: "clapping", 22: "cheer up", 23: "hand waving", 24: "kicking something",
                    26: "hopping (one foot jumping)", 27: "jump up", 31: "pointing to something",
                    35: "nod head/bow", 38: "salute", 40: "cross hands in front", 42: "staggering",
                    44: "touch head (headache)"}


# ---- Free gestures: random standing motions (not a class of any dataset).
FREE_GESTURE = "free_gesture"


def random_gesture_motion(rng: np.random.Generator) -> Motion:
    """A standing motion whose 3-6 keyframes are drawn at random: both arms anywhere in a wide range
    (pointing, reaching, gesturing in every direction), the trunk leaning and twisting, the head
    turning, and sometimes the weight on one leg or a half crouch.

    The scripted motions are a few dozen fixed choreographies; real recordings are full of poses none
    of them contains (Human3.6M's 'Directions' is only 1 % within P-MPJPE 0.1 of the default world,
    BUILD_NOTES §14). These widen the poses the encoder is trained on (they do not put a world pose
    next to each real one: two arms drawn in a wide range are sparse, §14); `sample_take` then varies
    them like any motion.
    """
    num = int(rng.integers(3, 7))
    times = np.sort(rng.uniform(0.0, 1.0, num - 1))
    times = np.r_[0.0, 0.1 + 0.85 * times]  # keyframes at 0 < t1 < ... < 0.95 (distinct)
    keyframes = []
    for t in times:
        p = {}
        for side in ("l", "r"):
            p.update({f"{side}_sh_flex": rng.uniform(-40.0, 170.0),
                      f"{side}_sh_abd": rng.uniform(-20.0, 110.0),
                      f"{side}_sh_twist": rng.uniform(-60.0, 60.0),
                      f"{side}_elbow": rng.uniform(0.0, 135.0),
                      f"{side}_wrist": rng.uniform(-30.0, 30.0)})
        p.update(spine_flex=rng.uniform(-10.0, 35.0), spine_side=rng.uniform(-15.0, 15.0),
                 spine_twist=rng.uniform(-30.0, 30.0), chest_flex=rng.uniform(-5.0, 15.0),
                 chest_side=rng.uniform(-8.0, 8.0), chest_twist=rng.uniform(-15.0, 15.0),
                 neck_flex=rng.uniform(-20.0, 35.0), neck_side=rng.uniform(-15.0, 15.0),
                 neck_twist=rng.uniform(-50.0, 50.0))
        legs = rng.uniform()
        if legs < 0.2:  # half crouch
            p.update(sym(hip_flex=rng.uniform(30.0, 80.0), knee=rng.uniform(50.0, 110.0),
                         ankle=rng.uniform(10.0, 25.0), hip_abd=rng.uniform(5.0, 20.0)))
        elif legs < 0.6:  # weight on one leg, the other bent or stepped out
            side = "l" if rng.uniform() < 0.5 else "r"
            p.update({f"{side}_hip_flex": rng.uniform(-10.0, 35.0), f"{side}_knee": rng.uniform(0.0, 45.0),
                      f"{side}_hip_abd": rng.uniform(0.0, 25.0)})
        keyframes.append((float(t), p))
    return Motion(FREE_GESTURE, cyclic=False, period=float(num * rng.uniform(0.7, 1.3)),
                  keyframes=tuple(keyframes), returns=0.2,
                  description="random standing gestures: arms, trunk and head anywhere in a wide range")


# Every motion appears in the multi-view (Human3.6M-layout) pretraining takes, under a CamelCase
# name like the real ones ("Walk 1").
H36M_ACTION_NAMES = {name: "".join(w.capitalize() for w in name.split("_")) for name in MOTIONS}


@dataclasses.dataclass
class Take:
    """One performance of a motion.

    Attributes:
      motion: motion name.
      angles: (T, NUM_DOFS) joint angles (degrees; translations in metres).
      facing: (T,) facing direction in degrees (world, counter-clockwise from +x).
      root_xy: (T, 2) world path of the body in metres (walking on curves), or zeros.
      mirrored: performed left-handed (mirror image of the authored right-handed motion).
      fps: frames per second.
      ground: ground mode of the motion.
    """

    motion: str
    angles: np.ndarray
    facing: np.ndarray
    root_xy: np.ndarray
    mirrored: bool
    fps: float
    ground: str

    def positions(self, subject: body.Subject) -> np.ndarray:
        """(T, NUM_POINTS, 3) world points of the take performed by `subject` (metres, z-up)."""
        return body.forward_kinematics(self.angles, subject, facing=self.facing,
                                       root_xy=self.root_xy, ground=self.ground)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _style(motion: Motion, rng: np.random.Generator, variation: float):
    """Per-take keyframe table with amplitude / timing / posture variation, as a periodic spline."""
    times, poses = motion.keyframe_array()
    rest = np.asarray([body.REST_POSE[n] for n in body.DOFS])
    num = body.NUM_DOFS
    # Amplitude: one factor for the take, one per DOF.
    amp = rng.uniform(1 - 0.2 * variation, 1 + 0.2 * variation) * rng.normal(1.0, 0.12 * variation, num)
    poses = rest + (poses - rest) * amp
    # Constant posture offsets (degrees) on the angle DOFs; none on the root / translations.
    offsets = rng.normal(0.0, 5.0 * variation, num)
    offsets[[body.DOF_INDEX[n] for n in body.ROOT_DOFS + body.TRANSLATION_DOFS]] = 0.0
    poses = poses + offsets
    # Timing: interior keyframes move by up to a quarter of the gap to their neighbours.
    inner = times.copy()
    for i in range(1, len(times) - 1):
        gap = min(times[i] - times[i - 1], times[i + 1] - times[i])
        inner[i] = times[i] + rng.uniform(-0.25, 0.25) * gap * variation
    spline = interpolate.CubicSpline(inner, poses, axis=0, bc_type="periodic")
    # Slow idiosyncratic drift: two random sinusoids per angle DOF (a few degrees).
    drift_freq = rng.uniform(0.15, 0.8, size=(2, num))
    drift_phase = rng.uniform(0, 2 * np.pi, size=(2, num))
    drift_amp = rng.uniform(0.5, 3.0, size=(2, num)) * variation
    drift_amp[:, [body.DOF_INDEX[n] for n in body.ROOT_DOFS + body.TRANSLATION_DOFS]] = 0.0
    return spline, float(inner[-1]), (drift_freq, drift_phase, drift_amp)


def sample_take(motion_name: str | Motion, rng: np.random.Generator, *, num_frames: int, fps: float,
                facing: float = 0.0, mode: str = "clip", mirrored: bool | None = None,
                variation: float = 1.0, turn_rate: float | None = None,
                action_start: float | None = None) -> Take:
    """One take of a motion with per-take variation.

    Args:
      motion_name: key of `MOTIONS`, or a `Motion` (e.g. from `random_gesture_motion`).
      rng: numpy Generator.
      num_frames: T.
      fps: frames per second.
      facing: facing direction (degrees) at the start of the take.
      mode: 'clip' = one repetition of a one-shot action (with lead-in / lead-out) or a stretch of a
        cyclic one, facing fixed (Penn Action, NTU); 'sequence' = a long take: one-shot actions
        repeated with turns between repetitions, cyclic ones with a slowly turning facing and, for
        walking / running, a curved path (Human3.6M-style takes).
      mirrored: perform left-handed; default: 15 % of takes of asymmetric actions.
      variation: scale of all random variation (0 = the authored motion at the authored tempo).
      turn_rate: sequence mode, cyclic motions: degrees per second of turning (default: random,
        walking motions on a circle of radius 0.9-1.4 m, others within +-12 deg/s).
      action_start: clip mode, one-shot motions: fraction of the free frames before the action
        starts (default random).

    Returns:
      A `Take`.
    """
    # Longer than a screen on purpose: One take's random draws in a fixed order (the world is a pure
    # function of its seed: reordering the draws across helpers would change every world).
    motion = motion_name if isinstance(motion_name, Motion) else MOTIONS.get(motion_name)
    if motion is None:
        raise ValueError(f"unknown motion {motion_name!r}; known: {sorted(MOTIONS)}")
    if mode not in ("clip", "sequence"):
        raise ValueError(f"mode must be 'clip' or 'sequence', got {mode!r}")
    if int(num_frames) < 2:
        raise ValueError(f"num_frames must be >= 2, got {num_frames}")
    num_frames = int(num_frames)
    t = np.arange(num_frames) / float(fps)
    spline, cycle_end, (drift_freq, drift_phase, drift_amp) = _style(motion, rng, variation)
    period = motion.period * float(np.exp(rng.normal(0.0, 0.15 * variation)))
    if mirrored is None:
        mirrored = bool(motion.asymmetric and rng.uniform() < 0.15)
    facing_t = np.full(num_frames, float(facing))
    root_xy = np.zeros((num_frames, 2))

    if motion.cyclic:
        phase = (rng.uniform() + t / period) % 1.0
        if mode == "sequence":
            if turn_rate is not None:
                rate = float(turn_rate)
            elif motion.speed > 0:
                # Walk on a circle of radius 0.9-1.4 m so that the take stays inside the capture area.
                rate = np.rad2deg(motion.speed / rng.uniform(0.9, 1.4)) * rng.choice([-1.0, 1.0])
            else:
                rate = rng.uniform(-12.0, 12.0)
            facing_t = facing + rate * t
    else:
        duration = period  # seconds for keyframe times 0..1
        if mode == "clip":
            free = max(0.0, t[-1] - duration)
            start = (rng.uniform() if action_start is None else action_start) * free
            phase = np.clip((t - start) / duration, 0.0, 1.0)
        else:
            # Repetitions: rest (turning to a new facing), action, return to the first pose.
            phase = np.zeros(num_frames)
            ret = (cycle_end - 1.0) * duration
            clock = rng.uniform(0.0, 0.6)
            current = float(facing)
            while clock < t[-1]:
                gap = rng.uniform(0.4, 1.2)
                new = current + rng.uniform(-100.0, 100.0)
                turn = (t >= clock) & (t < clock + gap)
                facing_t[turn] = current + (new - current) * _smoothstep((t[turn] - clock) / gap)
                facing_t[t >= clock + gap] = new
                current = new
                clock += gap
                act = (t >= clock) & (t < clock + duration + ret)
                phase[act] = (t[act] - clock) / duration
                clock += duration + ret
            phase = np.minimum(phase, cycle_end - 1e-9)
    angles = spline(phase * (cycle_end if motion.cyclic else 1.0))
    drift = (drift_amp[:, None, :] * np.sin(2 * np.pi * drift_freq[:, None, :] * t[None, :, None]
                                             + drift_phase[:, None, :])).sum(0)
    angles = angles + drift
    if motion.speed > 0:
        speed = motion.speed * motion.period / period
        if mode == "sequence":
            heading = np.deg2rad(facing_t)
            dt = 1.0 / fps
            root_xy = np.cumsum(np.stack([np.cos(heading), np.sin(heading)], -1) * speed * dt, 0)
            root_xy -= root_xy.mean(0)
        else:
            angles[:, body.DOF_INDEX["root_fwd"]] += speed * (t - t.mean())
    if mode == "sequence":
        # Long takes stay on their mark: centre the in-place steps (bowling approach, pitch stride).
        fwd = angles[:, body.DOF_INDEX["root_fwd"]]
        angles[:, body.DOF_INDEX["root_fwd"]] = fwd - (fwd.max() + fwd.min()) / 2.0
    if mirrored:
        angles = body.mirror_angles(angles)
    angles = body.clamp_to_limits(angles)
    return Take(motion=motion.name, angles=angles, facing=facing_t, root_xy=root_xy,
                mirrored=bool(mirrored), fps=float(fps), ground=motion.ground)
