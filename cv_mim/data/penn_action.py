"""Penn Action label files (``labels/NNNN.mat``) and the dataset used for action recognition (numpy/scipy).

Penn Action [56] has 2,326 clips of 15 actions seen from four rough views. Each clip has one MATLAB
v5 label file whose variables are (as read by :func:`scipy.io.loadmat`):

============== =================== ===========================================================
key            loadmat value        meaning
============== =================== ===========================================================
``x``, ``y``   (T, 13) float64      joint pixel coordinates (a few files store them as uint8/uint16
                                    integers; the reader converts to float64)
``visibility`` (T, 13) uint8        1 = joint visible, 0 = not (invisible joints often hold a
                                    placeholder near the top-left corner, e.g. (0.75, 0.75))
``action``     (1,) str             action name, e.g. ``'baseball_pitch'``
``pose``       (1,) str             view: ``'front'``, ``'back'``, ``'left'`` or ``'right'``
``train``      (1, 1) int32         1 = official training clip, -1 = test clip
``nframes``    (1, 1) uint8/uint16  T
``dimensions`` (1, 3) uint16        [H, W, T] of the video
``bbox``       (Tb, 4) float64      person box per frame (Tb may be smaller than T)
============== =================== ===========================================================

The 13 columns follow :data:`cv_mim.keypoints.PENN13_JOINT_NAMES` (decided from the data by the
keypoints module; :data:`PENN_JOINT_ORDER` is that tuple). :func:`load_penn_action` maps them to the
canonical 13-joint profile with :func:`cv_mim.keypoints.profiles.convert_keypoints` (layout ``'penn13'``).

Protocol choices (paper §4.1 and App. B.2), all arguments of :func:`load_penn_action`:

* ``drop_actions=('strum_guitar',)``: the paper, following [32], removes "playing guitar".
* Invisibility rule (``min_visible_fraction=0.4``): [32] / the paper also remove "several other videos
  due to target person invisibility" without listing them. We drop a clip when fewer than 40 % of its
  T x 13 joint annotations are marked visible. A person seen strictly from the side with the whole far
  side self-occluded still has 7 of 13 joints (54 %) visible, so clips below 40 % are ones where the
  person is largely out of frame or hidden, not merely in profile. On the 108 real sample clips the rule
  removes 4 clips (0711, 1882, 1897, 1908), 2 of them after ``strum_guitar`` is dropped
  (0711 clean_and_jerk left, 1882 squat right). ``exclude_clips`` removes an explicit list as well.
* Resampling (``num_frames=332``): the paper up-samples every clip to 332 frames. We resample each
  clip to exactly ``num_frames`` frames by linear interpolation in time with aligned end points
  (output frame k samples source time k (T-1)/(num_frames-1)); clips longer than ``num_frames`` are
  thereby down-sampled the same way. See :func:`resample_sequence` for the handling of missing joints.
  (332 = ceil(663 / 2): the authors' code pads Penn Action records to 663 frames, the longest clip, and
  reads every second frame.)
"""
from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import re
from typing import Iterable, Sequence

import numpy as np
import scipy.io

from cv_mim.data.clips import LabelledClips
from cv_mim.data.clips import sorted_labels
from cv_mim.data.clips import Tally
from cv_mim.keypoints import profiles

logger = logging.getLogger(__name__)

PENN_JOINT_ORDER = profiles.PENN13_JOINT_NAMES
NUM_PENN_JOINTS = 13
# View names in the label files' ``pose`` field; view labels are indices into this tuple.
PENN_VIEWS = ("front", "back", "left", "right")
# The paper's Table 1 column order (train view), used by every table and report.
TABLE_VIEW_ORDER = ("left", "right", "front", "back")
assert sorted(TABLE_VIEW_ORDER) == sorted(PENN_VIEWS)
# Keys the reader requires (``bbox`` is optional: it is metadata and may be short or absent).
REQUIRED_KEYS = ("x", "y", "visibility", "action", "pose", "train", "nframes", "dimensions")
DEFAULT_NUM_FRAMES = 332
DEFAULT_MIN_VISIBLE_FRACTION = 0.4


@dataclasses.dataclass
class PennClip:
    """One Penn Action label file.

    Attributes:
      clip_id: the file stem, e.g. ``'0001'``.
      action: action name (``action`` field).
      view: ``'front'``, ``'back'``, ``'left'`` or ``'right'`` (``pose`` field).
      train: True for the official training split (``train == 1``), False for test (``-1``).
      x, y: (T, 13) float64 pixel coordinates, columns in :data:`PENN_JOINT_ORDER`.
      visibility: (T, 13) uint8, 1 = visible.
      dimensions: (H, W, T) of the video, ints.
      bbox: (Tb, 4) float64 person boxes (Tb <= T in the real files; may be (0, 4)).
    """

    clip_id: str
    action: str
    view: str
    train: bool
    x: np.ndarray
    y: np.ndarray
    visibility: np.ndarray
    dimensions: tuple
    bbox: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.x.shape[0])

    def keypoints(self) -> np.ndarray:
        """(T, 13, 2) float64 (x, y) in the native Penn column order."""
        return np.stack([self.x, self.y], axis=-1)

    def placeholder(self) -> np.ndarray:
        """(T, 13) bool: invisible joints whose coordinates carry no position (see :func:`joint_mask`)."""
        return placeholder_joints(self.x, self.y, self.visibility, self.dimensions)


def placeholder_joints(x, y, visibility, dimensions=None) -> np.ndarray:
    """(T, 13) bool: invisible joints stored as a placeholder rather than an estimated position.

    A Penn Action annotation marks a joint invisible (``visibility`` 0) in two ways. Mostly the
    annotator still clicked where the occluded joint is (on the 108-file real sample, 65 % of the
    invisible joints; their distance from the visible joints' centre has the same distribution as the
    visible joints'); otherwise the joint is parked at the top-left corner — (0.75, 0.75),
    (0.667, 0.667), (1, 1), (0.953, 0.953) in the sample — typically when it is outside the frame. A
    placeholder is an invisible joint with x <= 1 and y <= 1, or outside the [0, W] x [0, H] image
    (``dimensions`` = (H, W, T); bounds are not checked when H or W is 0).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    invisible = np.asarray(visibility) <= 0
    out = (x <= 1.0) & (y <= 1.0)
    if dimensions is not None:
        h, w = int(dimensions[0]), int(dimensions[1])
        if h > 0 and w > 0:
            out |= (x < 0) | (y < 0) | (x > w) | (y > h)
    return invisible & out


INVISIBLE_JOINT_RULES = ("annotated", "missing")


def _check_invisible_joints(rule):
    if rule not in INVISIBLE_JOINT_RULES:
        raise ValueError(f"invisible_joints must be one of {INVISIBLE_JOINT_RULES}, got {rule!r}")


def joint_mask(clip: "PennClip", invisible_joints: str = "annotated") -> np.ndarray:
    """(T, 13) float32 presence mask (native column order) of a clip's joints.

    ``invisible_joints='annotated'`` (default): every joint with an annotated position is present —
    visible joints and invisible ones whose estimated position the annotator gave; only placeholders
    (:func:`placeholder_joints`) are missing. This feeds the encoder complete poses wherever the
    annotation has them, as it was trained (Human3.6M poses have every joint; neither the paper nor the
    authors' code drops keypoints), and matches the NTU loader, where Kinect's *inferred* joints count as
    present. ``'missing'``: every invisible joint is missing (set to 0 by the normalisation).
    """
    _check_invisible_joints(invisible_joints)
    if invisible_joints == "missing":
        return (np.asarray(clip.visibility) > 0).astype(np.float32)
    return (~clip.placeholder()).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# Reading and writing one label file.


def _mat_string(value, key: str, path: str) -> str:
    """A MATLAB char array as loaded by scipy (``array(['name'])``) -> 'name'."""
    arr = np.asarray(value)
    if arr.dtype.kind not in ("U", "S") or arr.size != 1:
        raise ValueError(f"{path}: field {key!r} must be a string, got dtype {arr.dtype} shape {arr.shape}")
    text = arr.reshape(-1)[0]
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = str(text).strip()
    if not text:
        raise ValueError(f"{path}: field {key!r} is an empty string")
    return text


def _mat_int_scalar(value, key: str, path: str) -> int:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in ("i", "u", "f"):
        raise ValueError(f"{path}: field {key!r} must be a numeric scalar, got dtype {arr.dtype} "
                         f"shape {arr.shape}")
    v = float(arr.reshape(-1)[0])
    if not np.isfinite(v) or v != int(v):
        raise ValueError(f"{path}: field {key!r} must be an integer, got {v}")
    return int(v)


def _frame_array(m: dict, key: str, path: str) -> np.ndarray:
    arr = np.asarray(m[key])
    if arr.ndim != 2 or arr.shape[1] != NUM_PENN_JOINTS or arr.dtype.kind not in ("i", "u", "f", "b"):
        raise ValueError(f"{path}: field {key!r} must be a numeric (T, {NUM_PENN_JOINTS}) array, got dtype "
                         f"{arr.dtype} shape {arr.shape}")
    return arr


def read_penn_mat(path) -> PennClip:
    """Reads one Penn Action label file.

    Args:
      path: a ``labels/NNNN.mat`` file.
    Returns:
      A :class:`PennClip` (x, y as float64 even when stored as integers).
    Raises:
      FileNotFoundError: no such file.
      ValueError (naming the file): not a MAT file, a missing required field, zero frames, x / y /
        visibility not all (T, 13) with T == ``nframes``, non-finite coordinates, an unknown view,
        ``train`` not 1 or -1, ``dimensions`` not 3 values, ``bbox`` not (Tb, 4).
    """
    # Longer than a screen on purpose: Field-by-field validation of one .mat file, in the file's
    # field order; each check names the field.
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Penn Action label file not found: {path}")
    try:
        m = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for garbage input.
        raise ValueError(f"{path}: cannot be read as a MATLAB .mat file ({type(e).__name__}: {e})") from e
    missing = [k for k in REQUIRED_KEYS if k not in m]
    if missing:
        have = sorted(k for k in m if not k.startswith("__"))
        raise ValueError(f"{path}: missing field(s) {missing} (file has {have})")

    x = _frame_array(m, "x", path)
    y = _frame_array(m, "y", path)
    vis = _frame_array(m, "visibility", path)
    t = x.shape[0]
    if t == 0:
        raise ValueError(f"{path}: zero frames (x has shape {x.shape})")
    if y.shape != x.shape or vis.shape != x.shape:
        raise ValueError(f"{path}: x, y and visibility must have the same (T, 13) shape, got "
                         f"{x.shape}, {y.shape}, {vis.shape}")
    nframes = _mat_int_scalar(m["nframes"], "nframes", path)
    if nframes != t:
        raise ValueError(f"{path}: nframes = {nframes} but x/y/visibility have {t} rows")
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{path}: non-finite (NaN/inf) values in x or y")
    if not np.isin(vis, (0, 1)).all():
        raise ValueError(f"{path}: visibility must hold only 0/1, got values {np.unique(vis)[:10]}")
    vis = vis.astype(np.uint8)

    action = _mat_string(m["action"], "action", path)
    view = _mat_string(m["pose"], "pose", path)
    if view not in PENN_VIEWS:
        raise ValueError(f"{path}: field 'pose' (view) must be one of {PENN_VIEWS}, got {view!r}")
    train_flag = _mat_int_scalar(m["train"], "train", path)
    if train_flag not in (1, -1):
        raise ValueError(f"{path}: field 'train' must be 1 (train) or -1 (test), got {train_flag}")

    dims = np.asarray(m["dimensions"])
    if dims.size != 3 or dims.dtype.kind not in ("i", "u", "f"):
        raise ValueError(f"{path}: field 'dimensions' must hold 3 numbers [H, W, T], got dtype {dims.dtype} "
                         f"shape {dims.shape}")
    dimensions = tuple(int(v) for v in dims.reshape(-1))
    if dimensions[2] != t:
        # Only metadata: keep it, but say so (the frame arrays are what the loader uses).
        logger.warning("%s: dimensions[2] = %d differs from the %d annotated frames", path,
                       dimensions[2], t)

    if "bbox" in m:
        bbox = np.asarray(m["bbox"])
        if bbox.size == 0:
            bbox = np.zeros((0, 4), np.float64)
        if bbox.ndim != 2 or bbox.shape[1] != 4 or bbox.dtype.kind not in ("i", "u", "f"):
            raise ValueError(f"{path}: field 'bbox' must be a numeric (Tb, 4) array, got dtype {bbox.dtype} "
                             f"shape {bbox.shape}")
        bbox = bbox.astype(np.float64)
    else:
        bbox = np.zeros((0, 4), np.float64)

    return PennClip(clip_id=pathlib.Path(path).stem, action=action, view=view, train=train_flag == 1,
                    x=x, y=y, visibility=vis, dimensions=dimensions, bbox=bbox)


def write_penn_mat(path, clip: PennClip) -> None:
    """Writes a label file with the real keys and dtypes (readable by :func:`read_penn_mat` and
    :func:`scipy.io.loadmat` exactly like the dataset's own files).

    Written: ``x``, ``y`` float64 (T, 13); ``visibility`` uint8 (T, 13); ``action``, ``pose`` strings;
    ``train`` int32 (1, 1) = 1 / -1; ``nframes`` uint16 (1, 1) = T; ``dimensions`` uint16 (1, 3)
    = [H, W, T]; ``bbox`` float64 (Tb, 4). ``clip.clip_id`` is not stored (it is the file name).

    Raises:
      ValueError: inconsistent shapes, zero frames, non-finite coordinates, visibility outside {0, 1},
        an unknown view, an empty action, ``dimensions`` not (H, W, T) with T == number of frames, or
        values that do not fit uint16.
    """
    path = os.fspath(path)
    name = f"write_penn_mat({path})"
    x = np.asarray(clip.x, np.float64)
    y = np.asarray(clip.y, np.float64)
    vis = np.asarray(clip.visibility)
    if x.ndim != 2 or x.shape[1] != NUM_PENN_JOINTS or x.shape[0] == 0:
        raise ValueError(f"{name}: clip.x must have shape (T>0, {NUM_PENN_JOINTS}), got {x.shape}")
    if y.shape != x.shape or vis.shape != x.shape:
        raise ValueError(f"{name}: clip.x, clip.y, clip.visibility must share shape {x.shape}, got "
                         f"{y.shape} and {vis.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{name}: non-finite (NaN/inf) coordinates")
    if not np.isin(vis, (0, 1)).all():
        raise ValueError(f"{name}: clip.visibility must hold only 0/1 (or bools)")
    if clip.view not in PENN_VIEWS:
        raise ValueError(f"{name}: clip.view must be one of {PENN_VIEWS}, got {clip.view!r}")
    if not isinstance(clip.action, str) or not clip.action.strip():
        raise ValueError(f"{name}: clip.action must be a non-empty string, got {clip.action!r}")
    t = x.shape[0]
    dims = tuple(int(v) for v in np.asarray(clip.dimensions).reshape(-1))
    if len(dims) != 3 or dims[2] != t:
        raise ValueError(f"{name}: clip.dimensions must be (H, W, T) with T = {t}, got {clip.dimensions}")
    if t > 65535 or min(dims) < 0 or max(dims) > 65535:
        raise ValueError(f"{name}: dimensions {dims} / frame count {t} do not fit uint16")
    bbox = np.asarray(clip.bbox, np.float64)
    if bbox.size == 0:
        bbox = np.zeros((0, 4), np.float64)
    if bbox.ndim != 2 or bbox.shape[1] != 4:
        raise ValueError(f"{name}: clip.bbox must have shape (Tb, 4), got {bbox.shape}")
    data = {
        "action": clip.action,
        "pose": clip.view,
        "x": x,
        "y": y,
        "visibility": vis.astype(np.uint8),
        "train": np.array([[1 if clip.train else -1]], np.int32),
        "bbox": bbox,
        "dimensions": np.array([dims], np.uint16),
        "nframes": np.array([[t]], np.uint16),
    }
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    scipy.io.savemat(path, data, format="5", oned_as="row")


# ----------------------------------------------------------------------------------------------------
# Temporal resampling.


def resample_sequence(keypoints, mask, num_frames: int):
    """Resamples a keypoint sequence to ``num_frames`` frames by linear interpolation in time.

    Output frame k samples source time s_k = k (T - 1) / (num_frames - 1) (first and last frames
    aligned; for T == 1 every output frame is the single input frame). With i = floor(s_k) and
    w = s_k - i, a joint is present in the output when it is present in every source frame with
    non-zero weight (frame i, and frame i + 1 when w > 0); its coordinates are then
    (1 - w) p_i + w p_{i+1}. A joint missing in either neighbour is marked missing and takes the
    coordinates of the nearer source frame (interpolating towards a placeholder coordinate of an
    invisible joint would invent a position).

    Args:
      keypoints: (T, J, C) array, T >= 1.
      mask: (T, J) array, > 0 = present.
      num_frames: output length (>= 1).
    Returns:
      (keypoints (num_frames, J, C) float32, mask (num_frames, J) float32 in {0, 1}).
    Raises:
      ValueError: bad shapes, T == 0 or num_frames < 1.
    """
    kp = np.asarray(keypoints, np.float64)
    mk = np.asarray(mask, np.float64)
    if kp.ndim != 3 or kp.shape[0] == 0:
        raise ValueError(f"resample_sequence: keypoints must be (T>0, J, C), got shape {kp.shape}")
    if mk.shape != kp.shape[:2]:
        raise ValueError(f"resample_sequence: mask must have shape {kp.shape[:2]}, got {mk.shape}")
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"resample_sequence: num_frames must be a positive integer, got {num_frames}")
    num_frames = int(num_frames)
    t = kp.shape[0]
    present = mk > 0
    if t == 1:
        return (np.repeat(kp, num_frames, 0).astype(np.float32),
                np.repeat(present, num_frames, 0).astype(np.float32))
    if num_frames == 1:
        s = np.zeros(1)
    else:
        s = np.arange(num_frames) * ((t - 1) / (num_frames - 1))
    # Source times within rounding error of an integer (e.g. the last frame) use that frame only.
    s_round = np.round(s)
    s = np.where(np.abs(s - s_round) < 1e-9, s_round, s)
    i0 = np.clip(np.floor(s).astype(np.int64), 0, t - 1)
    w = s - i0
    i1 = np.minimum(i0 + 1, t - 1)
    w = np.where(i1 == i0, 0.0, w)
    interp = (1.0 - w)[:, None, None] * kp[i0] + w[:, None, None] * kp[i1]
    out_mask = present[i0] & (present[i1] | (w == 0.0)[:, None])
    nearest = np.where(w > 0.5, i1, i0)
    out = np.where(out_mask[..., None], interp, kp[nearest])
    return out.astype(np.float32), out_mask.astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# The dataset.


@dataclasses.dataclass
class PennDataset(LabelledClips):
    """Penn Action clips ready for action recognition.

    Attributes:
      keypoints: (N, num_frames, 13, 2) float32 pixels, canonical 13-joint order
        (:data:`cv_mim.keypoints.profiles.JOINT_NAMES`), resampled to ``num_frames`` (see
        :func:`resample_sequence`).
      mask: (N, num_frames, 13) float32, 1 = joint present (see :func:`joint_mask`).
      labels: (N,) int64 index into ``class_names``.
      views: (N,) int64 index into ``view_names`` (= :data:`PENN_VIEWS`).
      train: (N,) bool, official split.
      clip_ids: (N,) str, file stems.
      num_frames_original: (N,) int64, T of each label file.
      class_names: sorted action names present in the loaded clips (never a hard-coded list).
      view_names: :data:`PENN_VIEWS`.
      skipped: [(file, reason)] of malformed files skipped with ``skip_malformed=True``.
      excluded: [(clip_id, reason)] of clips removed by ``drop_actions``, the invisibility rule or
        ``exclude_clips``.
    """

    keypoints: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    views: np.ndarray
    train: np.ndarray
    clip_ids: np.ndarray
    num_frames_original: np.ndarray
    class_names: tuple
    view_names: tuple = PENN_VIEWS
    skipped: list = dataclasses.field(default_factory=list)
    excluded: list = dataclasses.field(default_factory=list)

    def subset(self, indices) -> "PennDataset":
        """A dataset with the clips at ``indices`` (int array or boolean mask); same class/view names."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"subset: boolean mask must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        return dataclasses.replace(
            self, keypoints=self.keypoints[idx], mask=self.mask[idx], labels=self.labels[idx],
            views=self.views[idx], train=self.train[idx], clip_ids=self.clip_ids[idx],
            num_frames_original=self.num_frames_original[idx], skipped=list(self.skipped),
            excluded=list(self.excluded))

    def view_index(self, view: str) -> int:
        if view not in self.view_names:
            raise ValueError(f"view must be one of {self.view_names}, got {view!r}")
        return self.view_names.index(view)

    def train_indices(self) -> np.ndarray:
        return np.flatnonzero(self.train)

    def test_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.train)

    def single_shot_split(self, view: str):
        """Single-shot cross-view protocol (§4.1): train on the training clips of one view, test on
        ALL test clips (every view). Returns (train_indices, test_indices); ``self.views[test]`` gives
        the per-view breakdown."""
        v = self.view_index(view)
        return np.flatnonzero(self.train & (self.views == v)), self.test_indices()

    def single_shot_splits(self) -> dict:
        """{view name: (train_indices, test_indices)} for the four views."""
        return {view: self.single_shot_split(view) for view in self.view_names}

    def class_counts_per_view(self, split: str = "train") -> np.ndarray:
        """(num_views, num_classes) int64 clip counts of the ``'train'``, ``'test'`` or ``'all'`` clips."""
        if split == "train":
            sel = self.train
        elif split == "test":
            sel = ~self.train
        elif split == "all":
            sel = np.ones(len(self), bool)
        else:
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        counts = np.zeros((len(self.view_names), self.num_classes), np.int64)
        np.add.at(counts, (self.views[sel], self.labels[sel]), 1)
        return counts

    def class_coverage(self) -> dict:
        """{view: tuple of class names that have at least one TRAINING clip in that view}.

        In the single-shot setting a classifier trained on one view never sees the classes missing
        here, so they bound its accuracy on the test set.
        """
        counts = self.class_counts_per_view("train")
        return {view: tuple(c for j, c in enumerate(self.class_names) if counts[v, j] > 0)
                for v, view in enumerate(self.view_names)}

    def missing_classes_per_view(self) -> dict:
        """{view: tuple of class names WITHOUT a training clip in that view}."""
        cov = self.class_coverage()
        return {view: tuple(c for c in self.class_names if c not in cov[view]) for view in self.view_names}


def visible_fraction(visibility) -> float:
    """Fraction of the T x 13 joint annotations marked visible (the invisibility rule's statistic)."""
    vis = np.asarray(visibility)
    return float((vis > 0).mean()) if vis.size else 0.0


def _normalise_clip_ids(exclude_clips) -> set:
    out = set()
    for c in exclude_clips or ():
        if isinstance(c, (int, np.integer)):
            out.add(f"{int(c):04d}")
        else:
            out.add(pathlib.Path(str(c)).stem)
    return out


_PENN_FILE = re.compile(r".*\.mat$", re.IGNORECASE)


@dataclasses.dataclass
class PennRecord:
    """One clip as :func:`iter_penn_action` yields it: canonical keypoints, the label file's fields.

    Attributes:
      clip_id: the file stem.
      action: action name.
      view: one of :data:`PENN_VIEWS`.
      train: official split.
      num_frames_original: T of the label file.
      keypoints: (num_frames, 13, 2) float32 pixels, canonical order, resampled.
      mask: (num_frames, 13) float32, 1 = joint present.
    """

    clip_id: str
    action: str
    view: str
    train: bool
    num_frames_original: int
    keypoints: np.ndarray
    mask: np.ndarray


def iter_penn_action(labels_dir, *, skip_malformed: bool = False,
                     drop_actions: Sequence[str] = ("strum_guitar",),
                     exclude_clips: Iterable | None = None,
                     min_visible_fraction: float | None = DEFAULT_MIN_VISIBLE_FRACTION,
                     num_frames: int = DEFAULT_NUM_FRAMES, invisible_joints: str = "annotated",
                     tally: Tally | None = None):
    """The clips of a Penn Action ``labels`` directory, one label file at a time.

    The arguments and the per-clip rules are those of :func:`load_penn_action` (which collects this
    iterator); the arguments and the directory are checked when this is called, the files when they
    are reached. Every rule is per clip, so nothing needs the whole dataset: the class list (sorted
    action names of the clips kept, :func:`cv_mim.data.clips.sorted_labels`) is made from the
    yielded ``action`` fields at the end.

    Args:
      tally: a :class:`~cv_mim.data.clips.Tally` that receives the skipped files
        ``[(path, reason)]`` and the excluded clips ``[(clip_id, reason)]`` as they are met.
    Returns:
      An iterator of :class:`PennRecord` in file-name order; exhausting it raises ValueError when no
      clip was left.
    Raises:
      as :func:`load_penn_action` (bad arguments and a missing or empty directory at once).
    """
    labels_dir = os.fspath(labels_dir)
    if not os.path.isdir(labels_dir):
        raise FileNotFoundError(f"Penn Action labels directory not found: {labels_dir}")
    if min_visible_fraction is not None and not 0.0 <= float(min_visible_fraction) <= 1.0:
        raise ValueError(f"min_visible_fraction must be in [0, 1] or None, got {min_visible_fraction}")
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames}")
    _check_invisible_joints(invisible_joints)
    if isinstance(drop_actions, str):
        drop_actions = (drop_actions,)
    files = sorted(f for f in os.listdir(labels_dir) if _PENN_FILE.match(f))
    if not files:
        raise ValueError(f"{labels_dir}: no .mat label files")
    tally = Tally() if tally is None else tally
    tally.files = len(files)
    return _penn_records(labels_dir, files, skip_malformed, set(drop_actions or ()),
                         _normalise_clip_ids(exclude_clips), min_visible_fraction, int(num_frames),
                         invisible_joints, tally)


def _penn_records(labels_dir, files, skip_malformed, drop, exclude, min_visible_fraction,
                  num_frames, invisible_joints, tally):
    # Longer than a screen on purpose: reads, filters and resamples clip by clip, so the
    # skip/exclude records stay together.
    skipped, excluded = tally.skipped, tally.excluded
    kept = 0
    for fname in files:
        path = os.path.join(labels_dir, fname)
        try:
            clip = read_penn_mat(path)
        except ValueError as e:
            if not skip_malformed:
                raise
            skipped.append((path, str(e)))
            logger.warning("Skipping malformed Penn Action file: %s", e)
            continue
        if clip.action in drop:
            excluded.append((clip.clip_id, f"action {clip.action!r} dropped"))
            continue
        if clip.clip_id in exclude:
            excluded.append((clip.clip_id, "in exclude_clips"))
            continue
        frac = visible_fraction(clip.visibility)
        if min_visible_fraction and frac < float(min_visible_fraction):
            excluded.append((clip.clip_id, f"target person invisible: {frac:.3f} of the joint annotations "
                                           f"visible < {float(min_visible_fraction):.3f}"))
            continue
        kp13, m13 = profiles.convert_keypoints(clip.keypoints(), "penn13",
                                               scores=joint_mask(clip, invisible_joints))
        kp, mask = resample_sequence(kp13, m13, num_frames)
        kept += 1
        yield PennRecord(clip_id=clip.clip_id, action=clip.action, view=clip.view,
                         train=clip.train, num_frames_original=clip.num_frames, keypoints=kp,
                         mask=mask)
    if skipped:
        logger.warning("Skipped %d malformed Penn Action file(s) in %s", len(skipped), labels_dir)
    if not kept:
        raise ValueError(f"{labels_dir}: no clip left ({len(files)} files, {len(skipped)} malformed, "
                         f"{len(excluded)} excluded)")


def load_penn_action(labels_dir, *, skip_malformed: bool = False, drop_actions: Sequence[str] = ("strum_guitar",),
                     exclude_clips: Iterable | None = None,
                     min_visible_fraction: float | None = DEFAULT_MIN_VISIBLE_FRACTION,
                     num_frames: int = DEFAULT_NUM_FRAMES,
                     invisible_joints: str = "annotated") -> PennDataset:
    """Loads every ``*.mat`` label file of a Penn Action ``labels`` directory.

    Per clip: x / y -> canonical 13 joints (``convert_keypoints(..., 'penn13', scores=mask)`` with the
    presence mask of :func:`joint_mask` under ``invisible_joints``), resampled to ``num_frames``
    frames (:func:`resample_sequence`; the paper up-samples every clip to 332 frames, §4.1); action
    label (index into ``class_names``, the sorted action names left after the exclusions); view label (``pose`` field, index into
    :data:`PENN_VIEWS`); official split (``train`` field). This collects :func:`iter_penn_action`,
    which reads one file at a time.

    Exclusions, applied in this order and recorded in ``PennDataset.excluded``:
      1. ``drop_actions`` (the paper drops ``strum_guitar``, following [32]);
      2. ``exclude_clips``: explicit clip ids (file stems like ``'0711'`` or ints);
      3. the invisibility rule: clips whose :func:`visible_fraction` is below ``min_visible_fraction``
         (default 0.4; ``None`` or 0 disables it). See the module docstring for the reasoning.

    Args:
      labels_dir: directory holding ``NNNN.mat`` files.
      skip_malformed: when True, unreadable / malformed files are skipped, logged and listed in
        ``PennDataset.skipped``; when False the first one raises.
      drop_actions: action names to drop.
      exclude_clips: clip ids to drop.
      min_visible_fraction: invisibility threshold in [0, 1], or None.
      num_frames: output length per clip.
      invisible_joints: ``'annotated'`` (invisible joints with an annotated position are used, only
        placeholders are missing) or ``'missing'`` (every invisible joint is missing); see
        :func:`joint_mask`. The invisibility rule always counts the ``visibility`` flags.
    Returns:
      :class:`PennDataset`, clips in file-name order.
    Raises:
      FileNotFoundError: ``labels_dir`` is not a directory.
      ValueError: a malformed file (naming it) when ``skip_malformed`` is False; no .mat files; no
        clip left after the exclusions; bad arguments.
    """
    tally = Tally()
    records = list(iter_penn_action(
        labels_dir, skip_malformed=skip_malformed, drop_actions=drop_actions,
        exclude_clips=exclude_clips, min_visible_fraction=min_visible_fraction,
        num_frames=num_frames, invisible_joints=invisible_joints, tally=tally))
    labels, class_names = sorted_labels([r.action for r in records])
    return PennDataset(
        keypoints=np.stack([r.keypoints for r in records]),
        mask=np.stack([r.mask for r in records]),
        labels=labels,
        views=np.array([PENN_VIEWS.index(r.view) for r in records], np.int64),
        train=np.array([r.train for r in records], bool),
        clip_ids=np.array([r.clip_id for r in records]),
        num_frames_original=np.array([r.num_frames_original for r in records], np.int64),
        class_names=class_names,
        view_names=PENN_VIEWS,
        skipped=tally.skipped,
        excluded=tally.excluded,
    )
