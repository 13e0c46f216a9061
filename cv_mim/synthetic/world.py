"""Synthetic multi-view pose world, written in the real datasets' on-disk formats.

The real datasets (Human3.6M, Penn Action, NTU RGB+D) cannot be shipped or downloaded here, so the
project's default data is this world: articulated 3D people (`synthetic_body`) performing parametric
actions (`synthetic_motions`), filmed by cameras placed all around them, with detector-like 2D noise.
`generate_world` writes:

* ``OUT/h36m/{data_3d_h36m.npz, data_2d_h36m_gt.npz, cameras.json}`` — multi-view pretraining data in
  the VideoPose3D layout (paper §4.1 "Human3.6M"): subjects S1, S5, S6, S7, S8 (training) and S9, S11
  (held out), every action once per subject (``"Walk 1"``, ``"GolfSwing 1"``, ...; the ``large`` size
  adds S2, S3, S4, S10 for training, two takes per action and cameras anywhere around the subject;
  the ``varied`` size adds as many takes of random standing gestures, ``"Gestures 1"``, ...),
  3D in metres (T, 32, 3) world z-up, 2D in pixels (T, 17, 2) per camera in the ``camera_order`` of
  ``cameras.json`` (Human3.6M's distortion model). With ``noise`` the 2D file holds detector-like noisy keypoints (it
  plays the role of the detections the paper pairs across views); without it, the exact projections.
* ``OUT/penn_action/labels/NNNN.mat`` — single-view action clips in the Penn Action label format (paper
  §4.1 "Penn Action"): the 14 modelled Penn classes, front / back / left / right views, a train / test
  split, visibility flags (occluded joints keep an annotated position, out-of-frame joints are parked
  at the (0.75, 0.75) placeholder, as in the real files).
* ``OUT/ntu_rgbd/nturgb+d_skeletons/SsssCcccPpppRrrrAaaa.skeleton`` — Kinect v2 skeleton text files
  (paper §4.1 "NTU-RGB+D"): three cameras at -45°, 0°, +45°, each take performed twice facing a
  different side camera, performers on both sides of the official cross-subject split.
* ``OUT/manifest.json`` — seed, sizes, classes, counts, per-clip metadata and the conventions.

View labels (Penn Action). The camera's azimuth around the body, measured counter-clockwise from the
body's facing direction (`synthetic_motions` defines facing per action), gives the label: within 45° of
the facing direction = ``front`` (the subject faces the camera, so their left shoulder is on the image
right), 90° ± 45° = ``left`` (the camera sees the body's left side), 180° ± 45° = ``back``,
-90° ± 45° = ``right``. This matches the real label files (in ``left`` clips the right-side joints are the
ones most often marked invisible).

Determinism: every take, clip and file draws from its own ``np.random.default_rng([seed, stream,
index...])``, so the same seed gives the same arrays and the same ``.skeleton`` bytes (``.npz`` / ``.mat``
containers embed a write timestamp; their arrays are identical).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import time
from typing import Sequence

import numpy as np

from cv_mim.data import h36m as h36m_lib
from cv_mim.data import ntu_rgbd
from cv_mim.data import ntu_skeleton
from cv_mim.data import penn_action as penn_lib
from cv_mim.keypoints import cameras as cameras_mod
from cv_mim.keypoints import profiles
from cv_mim.synthetic import body
from cv_mim.synthetic import capture
from cv_mim.synthetic import motions

FORMATS = ("h36m", "penn_action", "ntu_rgbd")


VIEWS = penn_lib.PENN_VIEWS  # ('front', 'back', 'left', 'right')


# Centre of each view's azimuth bin (degrees counter-clockwise from the facing direction).
VIEW_AZIMUTH = {"front": 0.0, "left": 90.0, "back": 180.0, "right": -90.0}


# Where real Penn Action label files park an invisible joint that has no position (one of their values).
PENN_PLACEHOLDER_XY = (0.75, 0.75)


H36M_TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")


H36M_TEST_SUBJECTS = ("S9", "S11")


# Human3.6M recorded S2, S3, S4 and S10 but never released them; the synthetic world uses the names for
# extra training subjects (body shapes) in the larger sizes.
H36M_EXTRA_TRAIN_SUBJECTS = ("S2", "S3", "S4", "S10")


# Order in which `num_subjects` picks subjects: any two include a held-out one. New subjects are only
# ever appended (a subject's random streams are keyed by its index here).
_H36M_SUBJECT_ORDER = ("S1", "S9", "S5", "S11", "S6", "S7", "S8") + H36M_EXTRA_TRAIN_SUBJECTS


# How the four Human3.6M-format cameras are placed per subject (`WorldSize.h36m_rig`):
#   room   — the real room's square: nominal azimuths ±45°, ±135°, each jittered ±15°, so every camera
#            pair is 90° ± 30° or 180° ± 30° apart;
#   random — four azimuths anywhere on the circle (no two closer than 25°), distances 3.5-7 m, heights
#            0.6-2.8 m: every pair angle from 25° to 180° occurs (the real Human3.6M rig has pairs 46-50°,
#            123-127° and 154° apart, which `room` never shows).
H36M_RIGS = ("room", "random")


H36M_CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")


# Nominal azimuths of the four room cameras around the capture area (degrees, world frame).
_H36M_CAMERA_AZIMUTH = (45.0, 135.0, -135.0, -45.0)


NTU_CAMERA_AZIMUTH = {1: 0.0, 2: -45.0, 3: 45.0}  # camera number -> azimuth around the mark


NTU_FACING_CAMERA = {1: 2, 2: 3}  # replication -> camera the performer faces


# Kinect v2 intrinsics fitted to the real sample files (pinhole; colour 1920x1080, depth 512x424).
# The written colorX = cx + f·x/z is a MIRROR image (camera x = the camera's left), exactly as in the
# real files, so synthetic and real files share one convention and one reader; the reader
# (data.ntu_rgbd.unmirror_color) turns both into camera images.
KINECT_COLOR = {"f": 1050.0, "c": (960.0, 540.0), "size": (1920, 1080)}


KINECT_DEPTH = {"f": 366.0, "c": (258.0, 209.0), "size": (512, 424)}


_KINECT_BODY_ID_BASE = 72057594037927936  # 2**56, the prefix of the real body ids


# Random streams (first entries of the per-item seed sequences).
_STREAM_H36M_SUBJECT, _STREAM_H36M_TAKE, _STREAM_H36M_RIG, _STREAM_H36M_FREE = 11, 12, 13, 14


_STREAM_PENN = 21


_STREAM_NTU_PERFORMER, _STREAM_NTU_SETUP, _STREAM_NTU_TAKE, _STREAM_NTU_VIEW = 31, 32, 33, 34


PENN_IMAGE_SIZES = ((270, 480), (360, 480), (360, 640), (480, 640), (480, 854), (720, 1280))


@dataclasses.dataclass(frozen=True)
class WorldSize:
    """How much data `generate_world` makes.

    Attributes:
      h36m_subjects: subjects of the multi-view takes (subset of S1, S5, S6, S7, S8, S9, S11).
      h36m_actions: motion names performed by every subject (one take each).
      h36m_frames: frames per take.
      h36m_fps: frame rate of the multi-view takes.
      h36m_takes: takes per (subject, action), named ``"<Action> 1"``, ``"<Action> 2"``, ... (like the
        real dataset's two takes per action).
      h36m_rig: camera placement per subject, one of `H36M_RIGS`.
      h36m_free_takes: extra takes per subject of random standing gestures
        (`synthetic_motions.random_gesture_motion`, a new motion per take), named "Gestures 1", ...
      penn_clips: number of Penn Action clips (balanced over classes x views, half train / half test).
      penn_actions: Penn classes.
      penn_frames: (min, max) frames per Penn clip.
      penn_fps: Penn frame rate.
      ntu_performers: performer ids (both sides of the cross-subject split).
      ntu_actions: NTU action codes (keys of `synthetic_motions.NTU_ACTIONS`).
      ntu_setups: number of setups (camera height / distance configurations).
      ntu_frames: (min, max) frames per NTU take.
    """

    h36m_subjects: tuple = H36M_TRAIN_SUBJECTS + H36M_TEST_SUBJECTS
    h36m_actions: tuple = tuple(motions.MOTIONS)
    h36m_frames: int = 150
    h36m_fps: float = 15.0
    h36m_takes: int = 1
    h36m_rig: str = "room"
    h36m_free_takes: int = 0
    penn_clips: int = 616
    penn_actions: tuple = motions.PENN_ACTIONS
    penn_frames: tuple = (40, 120)
    penn_fps: float = 30.0
    ntu_performers: tuple = (1, 2, 3, 4, 5, 6)
    ntu_actions: tuple = tuple(motions.NTU_ACTIONS)
    ntu_setups: int = 3
    ntu_frames: tuple = (50, 110)


SIZES = {
    "default": WorldSize(),
    "tiny": WorldSize(
        h36m_subjects=("S1", "S9"),
        h36m_actions=("walk", "squat", "golf_swing", "hand_waving"),
        h36m_frames=30, penn_clips=64, penn_frames=(24, 40),
        penn_actions=("golf_swing", "jumping_jacks", "squat", "tennis_serve"),
        ntu_performers=(1, 3), ntu_actions=(23, 24), ntu_setups=1, ntu_frames=(10, 14)),
    # A more varied world: 9 training subjects instead of 5, two takes per action, cameras anywhere
    # around the subject. Measured against "default" for the shipped encoder (BUILD_NOTES §14): at
    # equal steps (<= 8000) it transferred worse to the real Human3.6M sample, so it is not the default.
    "large": WorldSize(
        h36m_subjects=H36M_TRAIN_SUBJECTS + H36M_EXTRA_TRAIN_SUBJECTS + H36M_TEST_SUBJECTS,
        h36m_takes=2, h36m_rig="random"),
    # The default world plus as many takes of random standing gestures as scripted takes, for pose
    # coverage beyond the scripted motions (measured in BUILD_NOTES §14).
    "varied": WorldSize(h36m_free_takes=len(motions.MOTIONS)),
}


@dataclasses.dataclass
class H36MWorld:
    """In-memory multi-view data: the three files' contents plus per-take metadata."""

    positions_3d: dict
    positions_2d: dict
    cameras: dict  # {subject: [Camera] in H36M_CAMERA_IDS order}
    takes: list


def _h36m_intrinsics(seed: int) -> dict:
    rng = capture.rng(seed, _STREAM_H36M_RIG, 0)
    out = {}
    for cam_id in H36M_CAMERA_IDS:
        out[cam_id] = dict(
            focal=float(rng.uniform(950.0, 1250.0)),
            principal_offset=tuple(rng.uniform(-12.0, 12.0, 2)),
            k=(float(rng.uniform(-0.21, -0.19)), float(rng.uniform(0.23, 0.26)),
               float(rng.uniform(-0.005, 0.007))),
            p=tuple(float(v) for v in rng.uniform(-0.002, 0.002, 2)),
            image_size=(1000, 1000))
    return out


def _random_azimuths(rng: np.random.Generator, count: int, min_separation: float) -> np.ndarray:
    """`count` azimuths (degrees) uniform on the circle, no two closer than `min_separation`."""
    while True:
        az = rng.uniform(-180.0, 180.0, count)
        gaps = np.abs(capture.wrap_deg(az[:, None] - az[None, :]))
        if np.all(gaps[~np.eye(count, dtype=bool)] >= min_separation):
            return az


def _h36m_rig(seed: int, subject_index: int, intrinsics: dict, rig: str = "room") -> list:
    """Four cameras around the capture area, per subject (like the real per-subject extrinsics).

    ``room``: the room's square, azimuth ±15°, distance 4.8-6.2 m, height 0.9-2.4 m. ``random``: see
    `H36M_RIGS`. The ``room`` streams are drawn exactly as before ``random`` existed.
    """
    rng = capture.rng(seed, _STREAM_H36M_RIG, 1 + subject_index)
    if rig == "random":
        azimuths = _random_azimuths(capture.rng(seed, _STREAM_H36M_RIG, 100 + subject_index),
                                    len(H36M_CAMERA_IDS), 25.0)
        jitter, distances, heights = (0.0, 0.0), (3.5, 7.0), (0.6, 2.8)
    else:
        azimuths, jitter, distances, heights = _H36M_CAMERA_AZIMUTH, (-15.0, 15.0), (4.8, 6.2), (0.9, 2.4)
    cams = []
    for cam_id, azimuth in zip(H36M_CAMERA_IDS, azimuths):
        az = np.deg2rad(azimuth + rng.uniform(*jitter))
        dist = rng.uniform(*distances)
        position = (dist * np.cos(az), dist * np.sin(az), rng.uniform(*heights))
        target = (rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.1))
        cams.append(capture.look_at_camera(cam_id, position, target, roll_deg=rng.uniform(-2.0, 2.0),
                                   **intrinsics[cam_id]))
    return cams


FREE_TAKE_NAME = "Gestures"  # take name of the random gestures: "Gestures 1", "Gestures 2", ...


def _take_name(motion: str, take_number: int) -> str:
    """Take name: "Walk 1", "GolfSwing 2", ...; the free gestures are "Gestures 1", "Gestures 2", ..."""
    if motion == motions.FREE_GESTURE:
        return f"{FREE_TAKE_NAME} {take_number}"
    return f"{motions.H36M_ACTION_NAMES[motion]} {take_number}"


def _h36m_take_plan(size: WorldSize):
    """(action index, motion, take number) of every take of one subject, in stream order; the free
    gestures come last with action index None and motion `synthetic_motions.FREE_GESTURE`."""
    return ([(a_index, motion, take) for a_index, motion in enumerate(size.h36m_actions)
             for take in range(1, size.h36m_takes + 1)]
            + [(None, motions.FREE_GESTURE, k) for k in range(1, size.h36m_free_takes + 1)])


def generate_h36m(seed: int, size: WorldSize, noise: bool = True) -> H36MWorld:
    """The multi-view takes of `size` (see `WorldSize`) in memory."""
    intrinsics = _h36m_intrinsics(seed)
    positions_3d, positions_2d, rigs, takes = {}, {}, {}, []
    occ_names = [capture.OCCLUSION_NAMES.get(n, n) for n in profiles.H36M17_JOINT_NAMES]
    for subject in size.h36m_subjects:
        s_index = _H36M_SUBJECT_ORDER.index(subject)
        person = body.sample_subject(capture.rng(seed, _STREAM_H36M_SUBJECT, s_index))
        cams = _h36m_rig(seed, s_index, intrinsics, size.h36m_rig)
        rigs[subject] = cams
        positions_3d[subject], positions_2d[subject] = {}, {}
        for a_index, motion, take_number in _h36m_take_plan(size):
            if a_index is None:  # a free gesture: its own stream, a new random motion per take
                rng = capture.rng(seed, _STREAM_H36M_FREE, s_index, take_number)
                performed = motions.random_gesture_motion(rng)
            else:  # take 1 keeps the stream it had before several takes existed
                rng = capture.rng(seed, _STREAM_H36M_TAKE, s_index, a_index,
                                  *((take_number,) if take_number > 1 else ()))
                performed = motion
            take = motions.sample_take(performed, rng, num_frames=size.h36m_frames,
                                       fps=size.h36m_fps, facing=rng.uniform(-180.0, 180.0),
                                       mode="sequence")
            points = take.positions(person)
            points[..., :2] += rng.uniform(-0.3, 0.3, 2)
            name = _take_name(motion, take_number)
            pose32 = points[:, body.H36M32_INDEX].astype(np.float32)
            positions_3d[subject][name] = pose32
            views, view_labels = [], {}
            pose17 = pose32[:, list(profiles.H36M32_TO_H36M17)].astype(np.float64)
            mid = size.h36m_frames // 2
            for cam in cams:
                toward = cam.center[:2] / 1000.0 - points[mid, body.POINT_INDEX["pelvis"], :2]
                view_labels[cam.camera_id] = capture.view_label(
                    np.rad2deg(np.arctan2(toward[1], toward[0])) - take.facing[mid])
                pix = cameras_mod.project_world_to_pixels(pose17, cam, units="m", distort=True)
                if noise:
                    cam_pts = cameras_mod.world_to_camera(pose17 * 1000.0, cam) / 1000.0
                    height_px = pix[..., 1].max(1) - pix[..., 1].min(1)
                    occ = capture.occlusion_probability(cam_pts, occ_names)
                    pix, _ = capture.add_detector_noise(rng, pix, np.maximum(height_px, 20.0), sigma=0.01,
                                                occlusion=occ, missing_rate=0.0)
                views.append(pix.astype(np.float32))
            positions_2d[subject][name] = views
            takes.append({"subject": subject, "action": name, "motion": motion,
                          "frames": int(size.h36m_frames), "mirrored": take.mirrored,
                          "view_at_middle_frame": view_labels})
    return H36MWorld(positions_3d, positions_2d, rigs, takes)


def _penn_plan(size: WorldSize):
    """(action, view, train) per clip: balanced over classes x views, alternating train / test."""
    plan, counts = [], {}
    n_act = len(size.penn_actions)
    for i in range(size.penn_clips):
        action = size.penn_actions[i % n_act]
        view = VIEWS[(i // n_act) % len(VIEWS)]
        k = counts.get((action, view), 0)
        counts[(action, view)] = k + 1
        plan.append((action, view, k % 2 == 0))
    # Real Penn files are numbered by action.
    order = sorted(range(len(plan)), key=lambda i: (size.penn_actions.index(plan[i][0]), i))
    return [plan[i] for i in order]


def _penn_clip(seed: int, index: int, action: str, view: str, train: bool, size: WorldSize,
               noise: bool):
    rng = capture.rng(seed, _STREAM_PENN, index)
    motion = motions.MOTIONS[action]
    lo, hi = size.penn_frames
    if motion.cyclic:
        num_frames = int(rng.integers(lo, hi + 1))
    else:
        num_frames = int(np.clip(round(motion.period * size.penn_fps * rng.uniform(1.05, 1.6)), lo, hi))
    facing = rng.uniform(-180.0, 180.0)
    take = motions.sample_take(action, rng, num_frames=num_frames, fps=size.penn_fps, facing=facing)
    person = body.sample_subject(rng)
    points = take.positions(person)
    # Camera around the body: view bin centre +- 38 deg, looking slightly down, framing the person.
    rel_az = VIEW_AZIMUTH[view] + rng.uniform(-38.0, 38.0)
    elevation = rng.uniform(-5.0, 30.0)
    height, width = PENN_IMAGE_SIZES[int(rng.integers(len(PENN_IMAGE_SIZES)))]
    focal = width * rng.uniform(0.8, 1.8)
    low, high = points.reshape(-1, 3).min(0), points.reshape(-1, 3).max(0)
    centre = (low + high) / 2.0 + rng.normal(0.0, 0.05, 3)
    extent = max(high[2] - low[2], 0.6 * np.linalg.norm(high[:2] - low[:2]), 0.8)
    fill = rng.uniform(0.45, 0.85)
    distance = focal * extent / (fill * height)
    az = np.deg2rad(facing + rel_az)
    el = np.deg2rad(elevation)
    position = centre + distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                             np.sin(el)])
    cam = capture.look_at_camera(f"penn{index:04d}", position, centre, focal=focal,
                         image_size=(height, width), roll_deg=rng.uniform(-4.0, 4.0),
                         principal_offset=tuple(rng.uniform(-0.1, 0.1, 2) * (width, height)))
    names = profiles.PENN13_JOINT_NAMES
    joints3d = points[:, body.canonical_names_to_index(names)]
    pix = cameras_mod.project_world_to_pixels(joints3d, cam, units="m", distort=False)
    visibility = np.ones(pix.shape[:2], np.uint8)
    if noise:
        cam_pts = cameras_mod.world_to_camera(joints3d * 1000.0, cam) / 1000.0
        height_px = pix[..., 1].max(1) - pix[..., 1].min(1)
        pix, visibility = capture.add_detector_noise(rng, pix, np.maximum(height_px, 10.0), sigma=0.015,
                                             occlusion=capture.occlusion_probability(cam_pts, names))
    outside = ((pix[..., 0] < 0) | (pix[..., 0] > width - 1) | (pix[..., 1] < 0)
               | (pix[..., 1] > height - 1))
    visibility[outside] = 0
    pix[..., 0] = np.clip(pix[..., 0], 0.0, width - 1.0)
    pix[..., 1] = np.clip(pix[..., 1], 0.0, height - 1.0)
    margin = 0.08 * (pix[..., 1].max(1) - pix[..., 1].min(1))[:, None]
    bbox = np.concatenate([pix.min(1) - margin, pix.max(1) + margin], axis=1)
    bbox[:, [0, 2]] = np.clip(bbox[:, [0, 2]], 0.0, width - 1.0)
    bbox[:, [1, 3]] = np.clip(bbox[:, [1, 3]], 0.0, height - 1.0)
    # Out-of-frame joints are parked at the top-left corner, as the real label files do; occluded
    # joints inside the frame keep an annotated (guessed, noisier) position.
    pix[outside] = PENN_PLACEHOLDER_XY
    clip = penn_lib.PennClip(
        clip_id=f"{index + 1:04d}", action=action, view=view, train=bool(train),
        x=pix[..., 0], y=pix[..., 1], visibility=visibility, dimensions=(height, width, num_frames),
        bbox=bbox)
    info = {"clip_id": clip.clip_id, "action": action, "view": view, "train": bool(train),
            "frames": num_frames, "relative_azimuth_deg": round(float(capture.wrap_deg(rel_az)), 3),
            "elevation_deg": round(float(elevation), 3), "facing_deg": round(float(facing), 3),
            "mirrored": take.mirrored, "subject_height_m": round(person.height, 4)}
    return clip, info


def generate_penn_clips(seed: int, size: WorldSize, noise: bool = True):
    """The Penn Action clips of `size` in memory: (list of `penn_action.PennClip`, list of info dicts)."""
    clips, infos = [], []
    for index, (action, view, train) in enumerate(_penn_plan(size)):
        clip, info = _penn_clip(seed, index, action, view, train, size, noise)
        clips.append(clip)
        infos.append(info)
    return clips, infos


def _kinect_rotation(position, target):
    """World -> Kinect camera rotation (rows: x = the camera's left, y = up, z = forward)."""
    forward = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    left = np.cross([0.0, 0.0, 1.0], forward)
    left /= np.linalg.norm(left)
    up = np.cross(forward, left)
    return np.stack([left, up, forward])


def _quaternions_wxyz(rot):
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z), w >= 0."""
    m = rot
    w = np.sqrt(np.maximum(0.0, 1.0 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2])) / 2.0
    x = np.sqrt(np.maximum(0.0, 1.0 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2])) / 2.0
    y = np.sqrt(np.maximum(0.0, 1.0 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2])) / 2.0
    z = np.sqrt(np.maximum(0.0, 1.0 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2])) / 2.0
    x = np.copysign(x, m[..., 2, 1] - m[..., 1, 2])
    y = np.copysign(y, m[..., 0, 2] - m[..., 2, 0])
    z = np.copysign(z, m[..., 1, 0] - m[..., 0, 1])
    q = np.stack([w, x, y, z], -1)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _ntu_orientations(points, frames):
    """(T, 25, 3, 3) world rotations of the Kinect joint frames (y along the bone, x = body left,
    z = x cross y), None entries for leaf joints."""
    num_frames = points.shape[0]
    out = np.zeros((num_frames, 25, 3, 3))
    valid = np.zeros(25, bool)
    for j, spec in enumerate(body.NTU25_ORIENTATION):
        if spec is None:
            continue
        segment, child = spec
        start = points[:, body.NTU25_INDEX[j]]
        y_axis = points[:, body.POINT_INDEX[child]] - start
        norm = np.linalg.norm(y_axis, axis=-1, keepdims=True)
        fallback = -frames[segment][:, :, 2]
        y_axis = np.where(norm > 1e-6, y_axis / np.maximum(norm, 1e-9), fallback)
        x_axis = frames[segment][:, :, 1]
        x_axis = x_axis - y_axis * np.sum(x_axis * y_axis, -1, keepdims=True)
        x_axis /= np.maximum(np.linalg.norm(x_axis, axis=-1, keepdims=True), 1e-9)
        out[:, j] = np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)], -1)
        valid[j] = True
    return out, valid


def _ntu_setup(seed: int, setup: int) -> dict:
    rng = capture.rng(seed, _STREAM_NTU_SETUP, setup)
    return {"camera_height_m": float(rng.uniform(1.0, 1.8)), "distance_m": float(rng.uniform(2.6, 3.6)),
            "target_height_m": float(rng.uniform(0.9, 1.2))}


def _ntu_take(seed, performer, person, setup_id, setup, code, replication, size, noise):
    # Longer than a screen on purpose: One take's random draws in a fixed order (see sample_take);
    # the writer fields follow the format.
    motion = motions.NTU_ACTIONS[code]
    rng = capture.rng(seed, _STREAM_NTU_TAKE, performer, code, replication)
    lo, hi = size.ntu_frames
    spec = motions.MOTIONS[motion]
    if spec.cyclic:
        num_frames = int(rng.integers(lo, hi + 1))
    else:
        num_frames = int(np.clip(round(spec.period * 30.0 * rng.uniform(1.15, 1.6)), lo, hi))
    facing_cam = NTU_FACING_CAMERA[replication]
    facing = NTU_CAMERA_AZIMUTH[facing_cam] + rng.normal(0.0, 6.0)
    take = motions.sample_take(motion, rng, num_frames=num_frames, fps=30.0, facing=facing)
    points, frames = body.forward_kinematics(take.angles, person, facing=take.facing,
                                             root_xy=take.root_xy, ground=take.ground,
                                             return_frames=True)
    points[..., :2] += rng.normal(0.0, 0.15, 2)
    rot_world, valid = _ntu_orientations(points, frames)
    spine_dir = points[:, body.POINT_INDEX["thorax"]] - points[:, body.POINT_INDEX["pelvis"]]
    spine_dir /= np.linalg.norm(spine_dir, axis=-1, keepdims=True)
    facing_rad = np.deg2rad(take.facing)
    lean_x = -(spine_dir[:, 0] * -np.sin(facing_rad) + spine_dir[:, 1] * np.cos(facing_rad))
    lean_y = spine_dir[:, 0] * np.cos(facing_rad) + spine_dir[:, 1] * np.sin(facing_rad)
    joints3d = points[:, body.NTU25_INDEX]
    body_id = _KINECT_BODY_ID_BASE + int(rng.integers(1000, 20000))
    out = []
    for camera in (1, 2, 3):
        vrng = capture.rng(seed, _STREAM_NTU_VIEW, performer, code, replication, camera)
        az = np.deg2rad(NTU_CAMERA_AZIMUTH[camera])
        position = np.array([setup["distance_m"] * np.cos(az), setup["distance_m"] * np.sin(az),
                             setup["camera_height_m"]])
        rot = _kinect_rotation(position, (0.0, 0.0, setup["target_height_m"]))
        cam = (joints3d - position) @ rot.T
        tracking = np.full(cam.shape[:2], 2.0)
        if noise:
            occ = capture.occlusion_probability(
                cam, [capture.OCCLUSION_NAMES.get(n, n) for n in profiles.NTU25_JOINT_NAMES])
            # Kinect jitter (~1 cm, correlated), larger for joints it has to infer.
            jitter, visible = capture.add_detector_noise(vrng, np.zeros(cam.shape[:2] + (2,)),
                                                 np.ones(cam.shape[0]), sigma=0.008, rho=0.7,
                                                 outlier_rate=0.0, occlusion=occ, missing_rate=0.01,
                                                 occluded_sigma_factor=4.0)
            depth_jitter = capture.ar1(vrng, cam.shape[:2], 0.7) * 0.01
            cam = cam + np.concatenate([jitter, depth_jitter[..., None]], -1)
            tracking = np.where(visible == 1, 2.0, 1.0)
        ratio_x, ratio_y = cam[..., 0] / cam[..., 2], cam[..., 1] / cam[..., 2]
        depth_xy = np.stack([KINECT_DEPTH["c"][0] + KINECT_DEPTH["f"] * ratio_x,
                             KINECT_DEPTH["c"][1] - KINECT_DEPTH["f"] * ratio_y], -1)
        color_xy = np.stack([KINECT_COLOR["c"][0] + KINECT_COLOR["f"] * ratio_x,
                             KINECT_COLOR["c"][1] - KINECT_COLOR["f"] * ratio_y], -1)
        quats = _quaternions_wxyz(rot @ rot_world)
        quats[:, ~valid] = 0.0
        rows = np.concatenate([cam, depth_xy, color_xy, quats, tracking[..., None]], -1)
        frames_out = []
        hand = vrng.integers(0, 2, size=(num_frames, 2))
        for t in range(num_frames):
            frames_out.append([ntu_skeleton.NtuBody(
                body_id=body_id, joints=rows[t], clipped_edges=0,
                hand_left_confidence=int(hand[t, 0]), hand_left_state=int(1 + hand[t, 0]),
                hand_right_confidence=int(hand[t, 1]), hand_right_state=int(1 + hand[t, 1]),
                is_restricted=0, lean_x=float(lean_x[t]), lean_y=float(lean_y[t]), tracking_state=2)])
        name = ntu_rgbd.format_ntu_filename(setup_id, camera, performer, replication, code)
        relative = float(capture.wrap_deg(NTU_CAMERA_AZIMUTH[camera] - facing))
        info = {"name": name, "setup": setup_id, "camera": camera, "performer": performer,
                "replication": replication, "action": code, "motion": motion, "frames": num_frames,
                "relative_azimuth_deg": round(relative, 3), "mirrored": take.mirrored}
        out.append((name, ntu_skeleton.NtuSkeleton(frames=frames_out, name=name), info))
    return out


def generate_ntu(seed: int, size: WorldSize, noise: bool = True):
    """The NTU takes of `size` in memory: list of (file stem, `ntu_rgbd.NtuSkeleton`, info dict)."""
    out = []
    for performer in size.ntu_performers:
        person = body.sample_subject(capture.rng(seed, _STREAM_NTU_PERFORMER, performer))
        setup_id = 1 + (performer - 1) % size.ntu_setups
        setup = _ntu_setup(seed, setup_id)
        for code in size.ntu_actions:
            if code not in motions.NTU_ACTIONS:
                raise ValueError(f"NTU action code A{code} is not modelled; known: "
                                 f"{sorted(motions.NTU_ACTIONS)}")
            for replication in (1, 2):
                out.extend(_ntu_take(seed, performer, person, setup_id, setup, code, replication,
                                     size, noise))
    return out


def _resolve_size(size, num_subjects=None, h36m_frames=None, penn_clips=None, ntu_performers=None,
                  **overrides) -> WorldSize:
    if isinstance(size, WorldSize):
        world = size
    elif size in SIZES:
        world = SIZES[size]
    else:
        raise ValueError(f"size must be one of {sorted(SIZES)} or a WorldSize, got {size!r}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if num_subjects is not None:
        if not 1 <= int(num_subjects) <= len(_H36M_SUBJECT_ORDER):
            raise ValueError(f"num_subjects must be in 1..{len(_H36M_SUBJECT_ORDER)}, got {num_subjects}")
        chosen = set(_H36M_SUBJECT_ORDER[:int(num_subjects)])
        changes["h36m_subjects"] = tuple(
            s for s in H36M_TRAIN_SUBJECTS + H36M_EXTRA_TRAIN_SUBJECTS + H36M_TEST_SUBJECTS
            if s in chosen)
    if h36m_frames is not None:
        changes["h36m_frames"] = int(h36m_frames)
    if penn_clips is not None:
        changes["penn_clips"] = int(penn_clips)
    if ntu_performers is not None:
        changes["ntu_performers"] = tuple(int(p) for p in ntu_performers)
    world = dataclasses.replace(world, **changes)
    unknown = [s for s in world.h36m_subjects if s not in _H36M_SUBJECT_ORDER]
    if unknown:
        raise ValueError(f"unknown Human3.6M subjects {unknown}; use {_H36M_SUBJECT_ORDER}")
    for name in world.h36m_actions:
        if name not in motions.MOTIONS:
            raise ValueError(f"unknown motion {name!r} in h36m_actions; known: {sorted(motions.MOTIONS)}")
    for name in world.penn_actions:
        if name not in motions.MOTIONS:
            raise ValueError(f"unknown motion {name!r} in penn_actions; known: {sorted(motions.MOTIONS)}")
    if world.h36m_free_takes < 0:
        raise ValueError(f"h36m_free_takes must be >= 0, got {world.h36m_free_takes}")
    if world.h36m_rig not in H36M_RIGS or world.h36m_takes < 1:
        raise ValueError(f"h36m_rig must be one of {H36M_RIGS} and h36m_takes >= 1, got "
                         f"{world.h36m_rig!r}, {world.h36m_takes}")
    if world.h36m_frames < 2 or world.penn_clips < 0:
        raise ValueError(f"h36m_frames must be >= 2 and penn_clips >= 0, got {world.h36m_frames}, "
                         f"{world.penn_clips}")
    for field in ("penn_frames", "ntu_frames"):
        lo, hi = getattr(world, field)
        if not 2 <= lo <= hi:
            raise ValueError(f"{field} must be (min, max) with 2 <= min <= max, got {(lo, hi)}")
    bad = [p for p in world.ntu_performers if not 1 <= p <= 999]
    if bad or world.ntu_setups < 1:
        raise ValueError(f"NTU performer ids must be in 1..999 and ntu_setups >= 1, got "
                         f"{world.ntu_performers}, {world.ntu_setups}")
    return world


def _prepare_output(output_dir: pathlib.Path) -> None:
    """Creates the directory; a previous synthetic world there (it has a manifest.json) is replaced,
    any other non-empty directory is refused so that nothing else is deleted."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir {output_dir} exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        if not (output_dir / "manifest.json").is_file():
            raise ValueError(f"output_dir {output_dir} is not empty and holds no synthetic world "
                             f"(manifest.json); refusing to write into it")
        for sub in FORMATS:
            if (output_dir / sub).is_dir():
                shutil.rmtree(output_dir / sub)
        (output_dir / "manifest.json").unlink()
    output_dir.mkdir(parents=True, exist_ok=True)


def generate_world(output_dir, *, seed: int = 0, size="default", noise: bool = True,
                   formats: Sequence[str] = FORMATS, num_subjects: int | None = None,
                   h36m_frames: int | None = None, penn_clips: int | None = None,
                   ntu_performers: Sequence[int] | None = None, **size_overrides) -> dict:
    """Generates the synthetic world and writes it in the real on-disk formats.

    Args:
      output_dir: output directory (created; a previous world there is replaced; any other
        non-empty directory is refused).
      seed: random seed; the same seed gives the same arrays.
      size: a name in `SIZES` ('default', 'tiny', 'large', 'varied') or a `WorldSize`.
      noise: detector-like 2D noise and missing joints (False: exact projections, all visible).
      formats: subset of `FORMATS` to write.
      num_subjects: number of Human3.6M subjects (1-11, picked as S1, S9, S5, S11, S6, S7, S8, S2,
        S3, S4, S10 so that two or more include a held-out subject).
      h36m_frames, penn_clips, ntu_performers: override the size's counts.
      **size_overrides: any other `WorldSize` field.

    Returns:
      The manifest dict (also written to ``output_dir/manifest.json``, which is identical for the
      same arguments; the returned dict adds ``generation_seconds``).
    """
    # Longer than a screen on purpose: The world driver: sizes, the three formats and the manifest,
    # in the order the seed streams are drawn (reordering would change every world).
    started = time.perf_counter()
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {tuple(formats)}")
    unknown = [k for k in size_overrides if k not in {f.name for f in dataclasses.fields(WorldSize)}]
    if unknown:
        raise ValueError(f"unknown size fields {unknown}; WorldSize has "
                         f"{[f.name for f in dataclasses.fields(WorldSize)]}")
    world = _resolve_size(size, num_subjects, h36m_frames, penn_clips, ntu_performers,
                          **size_overrides)
    seed = int(seed)
    out = pathlib.Path(output_dir)
    _prepare_output(out)
    manifest = {
        "generator": "cv_mim.synthetic.world",
        "format_version": 1,
        "seed": seed,
        "size": size if isinstance(size, str) else "custom",
        "noise": bool(noise),
        "settings": {k: (list(v) if isinstance(v, tuple) else v)
                     for k, v in dataclasses.asdict(world).items()},
        "views": list(VIEWS),
        "conventions": {
            "world": "metres, z up; bodies face `facing_deg` (counter-clockwise from +x)",
            "view_label": "camera azimuth around the body counter-clockwise from the facing direction: "
                          "|a| <= 45 front, 45 < a < 135 left, |a| >= 135 back, -135 < a < -45 right",
            "h36m_2d": "pixels, Human3.6M distortion, cameras in cameras.json camera_order; noisy "
                       "(detector-like) when noise is true",
            "penn_joint_order": list(profiles.PENN13_JOINT_NAMES),
            "ntu_cameras": {f"C{c:03d}": f"azimuth {a:+.0f} deg around the performer's mark"
                            for c, a in NTU_CAMERA_AZIMUTH.items()},
            "ntu_replications": {f"R{r:03d}": f"faces camera C{c:03d}"
                                 for r, c in NTU_FACING_CAMERA.items()},
            "kinect": {"color": KINECT_COLOR, "depth": KINECT_DEPTH,
                       "camera_frame": "x = camera's left, y = up, z = forward (metres); "
                                       "colorX = cx + f x / z (mirrored image), colorY = cy - f y / z"},
        },
        "classes": {}, "counts": {}, "frames": {},
    }
    if "h36m" in formats:
        data = generate_h36m(seed, world, noise)
        folder = out / "h36m"
        folder.mkdir(parents=True, exist_ok=True)
        h36m_lib.save_positions_3d(folder / "data_3d_h36m.npz", data.positions_3d)
        h36m_lib.save_positions_2d(folder / "data_2d_h36m_gt.npz", data.positions_2d, metadata={
            "num_joints": 17, "keypoints_symmetry": [list(g) for g in h36m_lib.KEYPOINTS_SYMMETRY_17],
            "camera_ids": list(H36M_CAMERA_IDS)})
        cameras_mod.save_h36m_cameras(folder / "cameras.json", data.cameras, list(H36M_CAMERA_IDS))
        manifest["classes"]["h36m"] = [_take_name(m, t) for _, m, t in _h36m_take_plan(world)]
        manifest["counts"]["h36m"] = {"subjects": len(data.positions_3d), "takes": len(data.takes),
                                      "cameras": len(H36M_CAMERA_IDS)}
        manifest["frames"]["h36m"] = int(sum(t["frames"] for t in data.takes))
        manifest["h36m"] = {
            "fps": world.h36m_fps, "camera_order": list(H36M_CAMERA_IDS),
            "train_subjects": [s for s in world.h36m_subjects if s not in H36M_TEST_SUBJECTS],
            "test_subjects": [s for s in world.h36m_subjects if s in H36M_TEST_SUBJECTS],
            "takes": data.takes}
    if "penn_action" in formats:
        clips, infos = generate_penn_clips(seed, world, noise)
        folder = out / "penn_action" / "labels"
        folder.mkdir(parents=True, exist_ok=True)
        for clip in clips:
            penn_lib.write_penn_mat(folder / f"{clip.clip_id}.mat", clip)
        manifest["classes"]["penn_action"] = list(world.penn_actions)
        manifest["counts"]["penn_action"] = {
            "clips": len(clips), "train": sum(c.train for c in clips),
            "test": sum(not c.train for c in clips),
            "per_view": {v: sum(c.view == v for c in clips) for v in VIEWS}}
        manifest["frames"]["penn_action"] = int(sum(c.num_frames for c in clips))
        manifest["penn_action"] = {"fps": world.penn_fps, "clips": infos}
    if "ntu_rgbd" in formats:
        takes = generate_ntu(seed, world, noise)
        folder = out / "ntu_rgbd" / "nturgb+d_skeletons"
        folder.mkdir(parents=True, exist_ok=True)
        for name, skeleton, _ in takes:
            ntu_skeleton.write_skeleton(folder / f"{name}.skeleton", skeleton)
        infos = [info for _, _, info in takes]
        train_ids = set(ntu_rgbd.CROSS_SUBJECT_TRAIN_PERFORMERS)
        manifest["classes"]["ntu_rgbd"] = {f"A{c:03d}": motions.NTU_ACTION_NAMES[c]
                                           for c in world.ntu_actions}
        manifest["counts"]["ntu_rgbd"] = {
            "files": len(infos),
            "cross_subject_train_files": sum(i["performer"] in train_ids for i in infos),
            "cross_subject_test_files": sum(i["performer"] not in train_ids for i in infos),
            "performers": list(world.ntu_performers)}
        manifest["frames"]["ntu_rgbd"] = int(sum(i["frames"] for i in infos))
        manifest["ntu_rgbd"] = {
            "fps": 30.0,
            "setups": {f"S{s:03d}": _ntu_setup(seed, s) for s in range(1, world.ntu_setups + 1)},
            "files": infos}
    with open(out / "manifest.json", "w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=1)  # deterministic: no timings in the file
        stream.write("\n")
    manifest["generation_seconds"] = round(time.perf_counter() - started, 3)
    return manifest


def summary(manifest: dict) -> str:
    """A human-readable summary of a manifest (what `cv_mim.synthesize` prints)."""
    lines = [f"Synthetic world (seed {manifest['seed']}, size {manifest['size']}, "
             f"noise {'on' if manifest['noise'] else 'off'}), generated in "
             f"{manifest.get('generation_seconds', float('nan')):.1f} s"]
    counts, frames, classes = manifest["counts"], manifest["frames"], manifest["classes"]
    if "h36m" in counts:
        h = manifest["h36m"]
        lines.append(f"  h36m: {counts['h36m']['subjects']} subjects (train {h['train_subjects']}, "
                     f"held out {h['test_subjects']}), {counts['h36m']['takes']} takes x "
                     f"{counts['h36m']['cameras']} cameras, {frames['h36m']} frames at {h['fps']:g} fps, "
                     f"{len(classes['h36m'])} actions")
    if "penn_action" in counts:
        c = counts["penn_action"]
        lines.append(f"  penn_action: {c['clips']} clips ({c['train']} train / {c['test']} test), "
                     f"{frames['penn_action']} frames, {len(classes['penn_action'])} classes, views "
                     + ", ".join(f"{v} {n}" for v, n in c["per_view"].items()))
    if "ntu_rgbd" in counts:
        c = counts["ntu_rgbd"]
        lines.append(f"  ntu_rgbd: {c['files']} skeleton files ({c['cross_subject_train_files']} "
                     f"cross-subject train / {c['cross_subject_test_files']} test), performers "
                     f"{c['performers']}, {frames['ntu_rgbd']} frames, {len(classes['ntu_rgbd'])} "
                     f"actions, cameras C001-C003 x replications R001-R002")
    for fmt in ("h36m", "penn_action", "ntu_rgbd"):
        if fmt in classes:
            names = classes[fmt] if isinstance(classes[fmt], list) else [
                f"{k} {v}" for k, v in classes[fmt].items()]
            lines.append(f"  {fmt} classes: " + ", ".join(names))
    return "\n".join(lines)
