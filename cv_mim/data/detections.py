"""What the detector-output readers share: one clip of one person in a native layout (numpy only).

Readers (:mod:`~cv_mim.data.openpose`, :mod:`~cv_mim.data.coco_json`, :mod:`~cv_mim.data.mmpose_json`,
:mod:`~cv_mim.data.skeleton_pickle`) return :class:`DetectionClip` objects: keypoints in the file's own
joint order, per-joint scores, and the per-clip fields the file holds. :mod:`cv_mim.data.registry`
converts them to the canonical profile after the layout check.

Main-person rule (the same in every reader): when the detections carry a person / track id (OpenPose
``person_id`` other than −1, PoseTrack ``track_id``, MMPose ``track_id``, the person axis of a skeleton
pickle), the clip follows ONE id: the one of the largest box in the first frame with a detection, and a
frame where that id is absent is missing. Without ids, each frame takes its largest box. Box = the
detector's box when the file has one, else the extent of the joints with a score > 0.

Missing frames: a frame with nobody detected (or without the followed id) has all scores 0 and NaN
coordinates; it stays in the clip, so frame indices keep their meaning, and is never embedded as if
present (:func:`cv_mim.serving.embed.embed_dataset` writes NaN features for frames without any joint).
"""

import dataclasses
import json
import re

import numpy as np


def read_json(path, what):
    """The JSON document of ``path``, or a ValueError naming the file and the format ``what``."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable {what} JSON file ({err})") from None

@dataclasses.dataclass
class Person:
    """One detection: native keypoints [J, 2], scores [J], box area (or None), id (or None)."""

    keypoints: np.ndarray
    scores: np.ndarray
    area: float | None = None
    person_id: object = None


@dataclasses.dataclass
class DetectionClip:
    """One person's track in a native layout.

    Attributes:
      clip_id: file stem / folder name / video id / ``frame_dir``.
      keypoints: [T, J, 2] float32 pixels, NaN where missing.
      scores: [T, J] float32 confidences, 0 where missing.
      frames: T frame names (file stems, image ids).
      layout: the layout recorded in the file (MMPose ``dataset_name``, pickle joint count), or None.
      fields: per-clip fields the file holds: ``label`` (int), ``class_name``, ``view``, ``split``,
        ``subject``.
    """

    clip_id: str
    keypoints: np.ndarray
    scores: np.ndarray
    frames: tuple
    layout: str | None = None
    fields: dict = dataclasses.field(default_factory=dict)


def box_area(person):
    """The detector's box area, else the extent of the joints with a score > 0 (0 when none)."""
    if person.area is not None:
        return float(person.area)
    ok = (person.scores > 0) & np.isfinite(person.keypoints).all(-1)
    if not ok.any():
        return 0.0
    pts = person.keypoints[ok]
    extent = pts.max(0) - pts.min(0)
    return float(extent[0] * extent[1])


def _real_id(pid):
    return pid is not None and not (isinstance(pid, (int, float, np.integer)) and pid < 0)


def select_main_person(frames_people, num_joints, *, name):
    """Applies the main-person rule to per-frame lists of :class:`Person`.

    Returns:
      (keypoints [T, J, 2] float32 with NaN for missing, scores [T, J] float32, followed id or None).
    Raises:
      ValueError: a detection with another joint count than ``num_joints``.
    """
    t = len(frames_people)
    kp = np.full((t, num_joints, 2), np.nan, np.float32)
    sc = np.zeros((t, num_joints), np.float32)
    followed = None
    for people in frames_people:
        if people:
            first = max(people, key=box_area)
            followed = first.person_id if _real_id(first.person_id) else None
            break
    for i, people in enumerate(frames_people):
        for p in people:
            if p.keypoints.shape != (num_joints, 2) or p.scores.shape != (num_joints,):
                raise ValueError(f"{name}: frame {i} has a detection of {p.keypoints.shape[0]} "
                                 f"joints, the others {num_joints}")
        if followed is not None:
            people = [p for p in people if p.person_id == followed]
        if not people:
            continue
        best = max(people, key=box_area)
        present = (best.scores > 0) & np.isfinite(best.keypoints).all(-1)
        kp[i][present] = best.keypoints[present]
        sc[i][present] = best.scores[present]
    return kp, sc, followed


def natural_key(text):
    """Sort key that orders embedded numbers numerically ('f2' < 'f10')."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text))]


def flat_triplets(values, *, name):
    """[x0, y0, c0, x1, ...] -> (keypoints [J, 2], scores [J]) float32."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size % 3:
        raise ValueError(f"{name}: {arr.size} numbers is not a multiple of 3 (x, y, score per joint)")
    arr = arr.reshape(-1, 3)
    return arr[:, :2].astype(np.float32), arr[:, 2].astype(np.float32)
