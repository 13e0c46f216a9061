"""Human3.6M in the VideoPose3D file layout: 3D/2D pose files and multi-view frames (numpy only).

File layout (as written by VideoPose3D's data preparation; we read and write the same):

* 3D file (``data_3d_h36m.npz``): ``positions_3d`` = pickled dict
  ``{subject: {action: (T, 32, 3) float32}}``, world coordinates (z up) in **metres**.
* 2D file (``data_2d_h36m_gt.npz`` or detections): ``positions_2d`` = pickled dict
  ``{subject: {action: [one (T, 17, 2) float32 array per camera]}}`` in **pixels**, the cameras in the
  order of the camera file's ``camera_order``; ``metadata`` = ``{'num_joints': 17,
  'keypoints_symmetry': [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}`` (VideoPose3D's detection files
  may add ``layout_name``: 'h36m' or 'coco'). The 17 joints are the VideoPose3D order (32-joint indices
  ``cv_mim.keypoints.H36M32_TO_H36M17``). Our writer may add ``camera_ids`` to the metadata; when
  present the reader uses it to check (and, for a permutation, fix) the camera order.

numpy only (no TensorFlow import); `load_multiview` uses `cv_mim.keypoints.profiles.convert_keypoints` for the
17 -> 13 joint mapping.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Sequence

import numpy as np

from cv_mim.data import safe_pickle
from cv_mim.keypoints import cameras as cameras_mod
from cv_mim.keypoints import profiles

NUM_JOINTS_3D = 32
NUM_JOINTS_2D = 17
KEYPOINTS_SYMMETRY_17 = [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]
DEFAULT_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
# File names of the layout inside a data directory (VideoPose3D's preparation scripts).
FILES = {"data_3d": "data_3d_h36m.npz", "data_2d": "data_2d_h36m_gt.npz", "cameras": "cameras.json"}
# The 3D file's unit ("auto": detected by the rule below).
UNITS = ("auto", "m", "mm")
# 'auto' unit rule: Human3.6M coordinates lie within a few metres of the room centre, so the median
# absolute coordinate is ~0.5 in metres and ~500 in millimetres; 20 separates the two with a wide
# margin on both sides (a 20 m median in metres or a 2 cm median in millimetres is not a H36M scene).
AUTO_UNIT_MEDIAN_THRESHOLD = 20.0
# At most this many coordinates are used for the 'auto' median (a strided subsample).
_AUTO_UNIT_MAX_SAMPLES = 2_000_000
# VideoPose3D's `layout_name` of a 2D file -> `cv_mim.keypoints` source layout.
_LAYOUTS_2D = {"h36m": "h36m17", "coco": "coco17"}


# ----------------------------------------------------------------------------------------------
# Low-level file access.


def _load_pickled_dict(path, key: str, *, required: bool = True):
    """Returns the dict stored as ``path``'s 0-d object array ``key``, with errors naming the file.

    Read through :func:`cv_mim.data.safe_pickle.load_npz`: the pickle may only hold numpy arrays and
    plain Python data, so a crafted file is refused before any of it runs."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Pose file not found: {path}")
    data = safe_pickle.load_npz(path, keys=[key])
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a .npy array, not a .npz file with a {key!r} entry")
    if key not in data:
        if not required:
            return None
        raise ValueError(f"{path}: no {key!r} entry; not a VideoPose3D "
                         f"{'3D' if key == 'positions_3d' else '2D'} pose file")
    value = data[key]
    if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
        value = value.item()
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: {key!r} must be a pickled dict, got {type(value).__name__}")
    return value


def _check_nested(positions, path, what):
    if not isinstance(positions, Mapping) or not positions:
        raise ValueError(f"{path}: {what} must be a non-empty dict {{subject: {{action: ...}}}}")
    for subject, actions in positions.items():
        if not isinstance(actions, Mapping) or not actions:
            raise ValueError(f"{path}: {what}[{subject!r}] must be a non-empty dict {{action: ...}}")


def _as_pose_array(value, path, where, joints, dims):
    try:
        array = np.asarray(value)
    except Exception:  # ragged lists etc.
        raise ValueError(f"{path}: {where} is not an array") from None
    if (array.ndim != 3 or array.shape[1:] != (joints, dims) or array.shape[0] < 1
            or not np.issubdtype(array.dtype, np.number)):
        raise ValueError(f"{path}: {where} must be a numeric (T >= 1, {joints}, {dims}) array, got "
                         f"shape {array.shape} dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{path}: {where} contains NaN or inf (shape {array.shape})")
    return array


def _validate_positions_3d(positions, path, skipped=None):
    """Checked copy of ``positions_3d``; with a ``skipped`` list, malformed sequences are dropped and
    recorded there as (``"subject/action"``, reason) instead of raising."""
    _check_nested(positions, path, "positions_3d")
    out = {}
    for subject, actions in positions.items():
        kept = {}
        for action, array in actions.items():
            try:
                kept[str(action)] = _as_pose_array(
                    array, path, f"subject {subject!r} action {action!r}", NUM_JOINTS_3D, 3)
            except ValueError as error:
                if skipped is None:
                    raise
                skipped.append((f"{subject}/{action}", str(error)))
        if kept:
            out[str(subject)] = kept
    if not out:
        raise ValueError(f"{path}: every sequence of positions_3d is malformed (see the log)")
    return out


def _camera_name(index, camera_ids):
    if camera_ids is not None and index < len(camera_ids):
        return f"camera {index} (id {camera_ids[index]})"
    return f"camera {index}"


def _validate_camera_list(value, path, subject, action, camera_ids=None):
    if isinstance(value, np.ndarray) and value.dtype != object:
        value = list(value)  # a (C, T, 17, 2) array is accepted as C per-camera arrays
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{path}: subject {subject!r} action {action!r} must be a non-empty list "
                         f"of per-camera arrays, got {type(value).__name__}")
    return [
        _as_pose_array(array, path,
                       f"subject {subject!r} action {action!r} {_camera_name(i, camera_ids)}",
                       NUM_JOINTS_2D, 2)
        for i, array in enumerate(value)
    ]


def _validate_positions_2d(positions, path):
    _check_nested(positions, path, "positions_2d")
    return {
        str(subject): {str(action): _validate_camera_list(cams, path, subject, action)
                       for action, cams in actions.items()}
        for subject, actions in positions.items()
    }


def _infer_unit(positions, path) -> str:
    """'m' when the median absolute coordinate is < AUTO_UNIT_MEDIAN_THRESHOLD, else 'mm'."""
    arrays = [a for actions in positions.values() for a in actions.values()]
    total = sum(a.size for a in arrays)
    step = max(1, total // _AUTO_UNIT_MAX_SAMPLES)
    sample = np.concatenate([np.abs(np.asarray(a).ravel()[::step].astype(np.float64)) for a in arrays])
    if sample.size == 0:
        raise ValueError(f"{path}: no coordinates to infer the unit from; pass unit='m' or 'mm'")
    return "m" if float(np.median(sample)) < AUTO_UNIT_MEDIAN_THRESHOLD else "mm"


def _save_npz(path, **arrays):
    # A file object keeps numpy from appending '.npz' to a path that lacks it.
    with open(os.fspath(path), "wb") as stream:
        np.savez_compressed(stream, **arrays)


def _object_array(value):
    array = np.empty((), dtype=object)
    array[()] = value
    return array


# ----------------------------------------------------------------------------------------------
# Public loaders / savers.


def load_positions_3d(path, unit: str = "auto", *,
                      skipped: list | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Reads a VideoPose3D 3D file.

    Args:
      path: the .npz file with ``positions_3d``.
      unit: unit of the stored coordinates: 'm', 'mm', or 'auto' = metres when the median absolute
        coordinate (over all subjects/actions, strided subsample of at most 2e6 values) is < 20, else
        millimetres (VideoPose3D writes metres; the raw Human3.6M / 3d-pose-baseline files are mm).
      skipped: if a list, malformed sequences are skipped and appended to it as
        (``"subject/action"``, reason) instead of raising.

    Returns:
      {subject: {action: (T, 32, 3) float32}} world coordinates (z up) in metres.

    Raises:
      FileNotFoundError: missing file (the message names it).
      ValueError: unreadable/corrupt file, missing ``positions_3d``, wrong nesting, an array not of
        shape (T, 32, 3) (naming subject/action and shape), non-finite values, bad ``unit``.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    path = os.fspath(path)
    positions = _validate_positions_3d(_load_pickled_dict(path, "positions_3d"), path, skipped)
    if unit == "auto":
        unit = _infer_unit(positions, path)
    factor = 1.0 if unit == "m" else 1e-3
    return {subject: {action: (np.asarray(a, np.float64) * factor).astype(np.float32)
                      for action, a in actions.items()}
            for subject, actions in positions.items()}


def load_positions_2d(path, return_metadata: bool = False):
    """Reads a VideoPose3D 2D file.

    Args:
      path: the .npz file with ``positions_2d`` (and usually ``metadata``).
      return_metadata: also return the ``metadata`` dict (None when absent).

    Returns:
      {subject: {action: [per-camera (T, 17, 2) float32 pixels]}}, and the metadata when asked.

    Raises:
      FileNotFoundError / ValueError as `load_positions_3d` (shape errors name the camera index).
    """
    path = os.fspath(path)
    positions = _validate_positions_2d(_load_pickled_dict(path, "positions_2d"), path)
    positions = {subject: {action: [a.astype(np.float32) for a in cams]
                           for action, cams in actions.items()}
                 for subject, actions in positions.items()}
    if not return_metadata:
        return positions
    metadata = _load_pickled_dict(path, "metadata", required=False)
    return positions, (dict(metadata) if metadata is not None else None)


def save_positions_3d(path, positions_3d: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Writes ``positions_3d`` = {subject: {action: (T, 32, 3) float32 metres}} to exactly `path`."""
    positions = _validate_positions_3d(positions_3d, "positions_3d")
    payload = {s: {a: np.asarray(x, np.float32) for a, x in acts.items()}
               for s, acts in positions.items()}
    _save_npz(path, positions_3d=_object_array(payload))


def save_positions_2d(path, positions_2d: Mapping[str, Mapping[str, Sequence[np.ndarray]]],
                      metadata: Mapping | None = None) -> None:
    """Writes ``positions_2d`` = {subject: {action: [per-camera (T, 17, 2) pixels]}} and ``metadata``.

    Args:
      path: output file (written under exactly this name).
      positions_2d: the poses, cameras in the camera file's ``camera_order``.
      metadata: default ``{'num_joints': 17, 'keypoints_symmetry': KEYPOINTS_SYMMETRY_17}``; an optional
        ``camera_ids`` list is honoured by `load_multiview`.
    """
    positions = _validate_positions_2d(positions_2d, "positions_2d")
    payload = {s: {a: [np.asarray(x, np.float32) for x in cams] for a, cams in acts.items()}
               for s, acts in positions.items()}
    if metadata is None:
        metadata = {"num_joints": NUM_JOINTS_2D,
                    "keypoints_symmetry": [list(g) for g in KEYPOINTS_SYMMETRY_17]}
    _save_npz(path, positions_2d=_object_array(payload), metadata=_object_array(dict(metadata)))


# ----------------------------------------------------------------------------------------------
# Multi-view frames.


@dataclasses.dataclass(frozen=True, eq=False)
class MultiViewPoses:
    """All frames of some subjects, seen by every camera: one row per (subject, action, frame).

    Pairs of views are sampled later by index (row, camera_a, camera_b); they are never materialised.

    Attributes:
      keypoints_2d: (N, C, 13, 2) float32 pixels, canonical 13-joint order, (x, y).
      keypoints_3d: (N, 17, 3) float32 world coordinates in metres (z up), VideoPose3D 17-joint order.
      subjects: (N,) str.
      actions: (N,) str.
      frames: (N,) int64 frame index within its (subject, action) sequence.
      camera_ids: (C,) str, the camera file's ``camera_order``.
    """

    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray
    subjects: np.ndarray
    actions: np.ndarray
    frames: np.ndarray
    camera_ids: np.ndarray

    def __post_init__(self):
        n = self.keypoints_3d.shape[0]
        c = len(self.camera_ids)
        expected = {"keypoints_2d": (n, c, 13, 2), "keypoints_3d": (n, 17, 3), "subjects": (n,),
                    "actions": (n,), "frames": (n,)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"MultiViewPoses.{name} must have shape {shape}, got "
                                 f"{getattr(self, name).shape}")

    def __len__(self) -> int:
        return int(self.keypoints_3d.shape[0])

    @property
    def num_cameras(self) -> int:
        return len(self.camera_ids)

    def sequence_names(self, rows=slice(None)) -> np.ndarray:
        """(n,) str "subject/action" of the given rows (default all): one name per sequence."""
        return np.char.add(np.char.add(self.subjects[rows].astype(str), "/"),
                           self.actions[rows].astype(str))


def _order_cameras_2d(metadata, camera_order, path):
    """Index permutation mapping camera_order positions to the 2D file's lists, or None."""
    ids = (metadata or {}).get("camera_ids")
    if ids is None:
        return None
    ids = [str(i) for i in ids]
    unknown = [i for i in ids if i not in camera_order]
    if unknown:
        raise ValueError(f"{path}: metadata camera_ids {unknown} are absent from the camera file "
                         f"(camera_order {camera_order})")
    if sorted(ids) != sorted(camera_order):
        raise ValueError(f"{path}: metadata camera_ids {ids} do not match the camera file's "
                         f"camera_order {camera_order}")
    return [ids.index(c) for c in camera_order]


def _sequence_2d(positions_2d, subject, action, frames_3d, camera_order, permutation, trim_longer_2d,
                 *, paths):
    """The checked per-camera 2D arrays of one (subject, action), in ``camera_order``."""
    data_2d_path, data_3d_path, cameras_path = paths
    actions_2d = {str(a): v for a, v in positions_2d[subject].items()}
    if action not in actions_2d:
        raise ValueError(f"{data_2d_path}: subject {subject!r} has no 2D poses for action "
                         f"{action!r} (present in {data_3d_path})")
    raw_cams = actions_2d[action]
    count = len(raw_cams) if isinstance(raw_cams, (list, tuple, np.ndarray)) else None
    if count != len(camera_order):
        raise ValueError(
            f"{data_2d_path}: subject {subject!r} action {action!r} has {count} camera "
            f"arrays but the camera file {cameras_path} has {len(camera_order)} "
            f"cameras {camera_order}")
    if permutation is not None:
        raw_cams = [raw_cams[i] for i in permutation]
    cams_2d = _validate_camera_list(raw_cams, data_2d_path, subject, action, camera_order)
    for index, cam in enumerate(cams_2d):
        frames_2d = cam.shape[0]
        if frames_2d == frames_3d:
            continue
        if trim_longer_2d and frames_2d > frames_3d:
            cams_2d[index] = cam[:frames_3d]
            continue
        raise ValueError(
            f"Frame-count mismatch for subject {subject!r} action {action!r} "
            f"{_camera_name(index, camera_order)}: {frames_2d} 2D frames in "
            f"{data_2d_path} vs {frames_3d} 3D frames in {data_3d_path}")
    return cams_2d


def resolve_paths(data_dir=None, data_3d=None, data_2d=None, cameras=None, use_2d_file=True):
    """(data_3d, data_2d or None, cameras) paths of the layout: explicit paths win over ``data_dir``.

    The 3D and camera files must exist. A 2D file given explicitly must exist too; the default one in
    ``data_dir`` is optional (None when absent or when ``use_2d_file`` is false: the 3D is then
    projected through the real cameras by :func:`load_multiview`).
    """
    paths = {}
    for key, given in (("data_3d", data_3d), ("data_2d", data_2d), ("cameras", cameras)):
        paths[key] = given or (os.path.join(data_dir, FILES[key]) if data_dir else None)
    for key in ("data_3d", "cameras"):
        if not paths[key]:
            raise ValueError(f"Human3.6M data needs {key}: pass data_dir or {key} explicitly")
        if not os.path.exists(paths[key]):
            raise FileNotFoundError(f"{key} file not found: {paths[key]}")
    path_2d = paths["data_2d"] if use_2d_file else None
    if path_2d and not os.path.exists(path_2d):
        if data_2d:
            raise FileNotFoundError(f"data_2d file not found: {path_2d}")
        path_2d = None
    return paths["data_3d"], path_2d, paths["cameras"]


def load_multiview(data_3d_path, cameras_path, data_2d_path=None,
                   subjects: Sequence[str] | str | None = DEFAULT_SUBJECTS, unit: str = "auto",
                   distort: bool = True, *, frame_stride: int = 1,
                   trim_longer_2d: bool = False, skipped: list | None = None) -> MultiViewPoses:
    """Loads synchronised multi-view 2D poses with their 3D for some subjects.

    Args:
      data_3d_path: VideoPose3D 3D file (positions_3d, 32 joints).
      cameras_path: cameras.json (its ``camera_order`` fixes the camera axis).
      data_2d_path: VideoPose3D 2D file (ground truth or detections), one array per camera in
        ``camera_order``; None = project the 3D through the real cameras (Human3.6M distortion when
        `distort`).
      subjects: subjects to load (a single name is accepted; None = all of the 3D file).
      unit: unit of the 3D file ('auto' / 'm' / 'mm', see `load_positions_3d`).
      distort: apply the lens distortion when projecting (only without `data_2d_path`).
      frame_stride: keep every `frame_stride`-th frame (1 = all; 5 turns 50 Hz into 10 Hz).
      trim_longer_2d: cut 2D sequences that are longer than the 3D one to its length (VideoPose3D
        does so for some detection files); default False = such a mismatch is an error.
      skipped: if a list, malformed (subject, action) sequences — bad shapes or values, an action
        missing from the 2D file, a camera-count or frame-count mismatch — are left out and appended
        to it as (``"subject/action"``, reason) instead of raising (``--skip_malformed``).

    Returns:
      `MultiViewPoses` (2D in the canonical 13-joint order, 3D in metres, VideoPose3D 17 joints).

    Raises:
      FileNotFoundError: a missing file.
      ValueError: corrupt files; an unknown subject (listing the available ones); an action missing
        from the 2D file; a 2D camera count that differs from ``camera_order`` or ``camera_ids`` not
        matching it; wrong array shapes (naming subject/action/camera and the shape); different 2D and
        3D frame counts.
    """
    # Longer than a screen on purpose: One pass over (subject, action) that validates, projects and
    # stacks; its steps share the per-sequence state (cameras, frame stride, skip list) and each
    # error must name the sequence.
    if int(frame_stride) != frame_stride or frame_stride < 1:
        raise ValueError(f"frame_stride must be a positive integer, got {frame_stride!r}")
    data_3d_path = os.fspath(data_3d_path)
    positions_3d = load_positions_3d(data_3d_path, unit=unit, skipped=skipped)
    rig = cameras_mod.load_h36m_cameras(cameras_path)
    camera_order = rig.camera_order
    if subjects is None:
        subjects = list(positions_3d)
    elif isinstance(subjects, str):
        subjects = [subjects]
    subjects = [str(s) for s in subjects]
    if not subjects:
        raise ValueError("load_multiview: no subjects requested")
    for subject in subjects:
        if subject not in positions_3d:
            raise ValueError(f"Unknown subject {subject!r}: not in {data_3d_path}; available "
                             f"subjects: {sorted(positions_3d)}")
        if subject not in rig.subjects:
            raise ValueError(f"{os.fspath(cameras_path)}: no cameras for subject {subject!r}; "
                             f"available subjects: {rig.subjects}")

    positions_2d = layout = permutation = None
    if data_2d_path is not None:
        data_2d_path = os.fspath(data_2d_path)
        raw = _load_pickled_dict(data_2d_path, "positions_2d")
        metadata = _load_pickled_dict(data_2d_path, "metadata", required=False)
        _check_nested(raw, data_2d_path, "positions_2d")
        layout_name = (metadata or {}).get("layout_name", "h36m")
        if layout_name not in _LAYOUTS_2D:
            raise ValueError(f"{data_2d_path}: unsupported 2D layout_name {layout_name!r} (supported: "
                             f"{sorted(_LAYOUTS_2D)})")
        layout = _LAYOUTS_2D[layout_name]
        permutation = _order_cameras_2d(metadata, camera_order, data_2d_path)
        positions_2d = raw

    # First pass: validate everything and count frames, so the outputs are allocated once.
    plan = []  # (subject, action, pose_3d (T, 32, 3), per-camera 2D list or None)
    for subject in subjects:
        if subject not in positions_3d:  # every sequence of it was malformed and skipped
            continue
        if positions_2d is not None and subject not in positions_2d:
            raise ValueError(f"{data_2d_path}: no 2D poses for subject {subject!r}; available "
                             f"subjects: {sorted(map(str, positions_2d))}")
        for action, pose_3d in positions_3d[subject].items():
            try:
                cams_2d = None if positions_2d is None else _sequence_2d(
                    positions_2d, subject, action, pose_3d.shape[0], camera_order, permutation,
                    trim_longer_2d, paths=(data_2d_path, data_3d_path, os.fspath(cameras_path)))
            except ValueError as error:
                if skipped is None:
                    raise
                skipped.append((f"{subject}/{action}", str(error)))
                continue
            plan.append((subject, action, pose_3d, cams_2d))
    if not plan:
        raise ValueError(f"{data_3d_path}: no well-formed sequence of subjects {subjects} to load")

    total = sum(len(range(0, p[2].shape[0], frame_stride)) for p in plan)
    num_cameras = len(camera_order)
    keypoints_2d = np.empty((total, num_cameras, 13, 2), np.float32)
    keypoints_3d = np.empty((total, 17, 3), np.float32)
    subject_col = np.empty(total, dtype=f"<U{max(len(p[0]) for p in plan)}")
    action_col = np.empty(total, dtype=f"<U{max(len(p[1]) for p in plan)}")
    frame_col = np.empty(total, np.int64)
    row = 0
    for subject, action, pose_3d, cams_2d in plan:
        keep = np.arange(0, pose_3d.shape[0], frame_stride)
        rows = slice(row, row + keep.size)
        pose_17 = pose_3d[keep][:, list(profiles.H36M32_TO_H36M17)]
        keypoints_3d[rows] = pose_17
        for index, camera in enumerate(rig.cameras(subject)):
            if cams_2d is None:
                pixels = cameras_mod.project_world_to_pixels(pose_17, camera, units="m", distort=distort)
                source_layout = "h36m17"
            else:
                pixels = cams_2d[index][keep]
                source_layout = layout
            kp13, _ = profiles.convert_keypoints(np.asarray(pixels, np.float32), source_layout)
            keypoints_2d[rows, index] = kp13
        subject_col[rows] = subject
        action_col[rows] = action
        frame_col[rows] = keep
        row += keep.size
    return MultiViewPoses(keypoints_2d=keypoints_2d, keypoints_3d=keypoints_3d, subjects=subject_col,
                          actions=action_col, frames=frame_col,
                          camera_ids=np.asarray(camera_order, dtype=str))
