"""NTU RGB+D raw skeleton files (``SsssCcccPpppRrrrAaaa.skeleton``), the 2D dataset and its splits (numpy).

File layout (text; the dataset's files use CRLF line endings, LF is accepted too)::

    <number of frames>
    per frame:
      <number of bodies>
      per body:
        <body info: 10 fields>   bodyID clippedEdges handLeftConfidence handLeftState
                                 handRightConfidence handRightState isRestricted leanX leanY trackingState
        <number of joints = 25>
        25 lines of 12 numbers:  x y z depthX depthY colorX colorY orientationW orientationX
                                 orientationY orientationZ trackingState

x y z are Kinect v2 camera-space metres, depthX/Y pixels of the 512x424 depth image, colorX/Y pixels of
the 1920x1080 colour image; joint trackingState 0 = not tracked, 1 = inferred, 2 = tracked. The joints
follow :data:`cv_mim.keypoints.NTU25_JOINT_NAMES`. Numbers are written like .NET's ``Single.ToString()``
(7 significant digits, exponent form ``1.234567E-05`` below 1e-4); :func:`write_skeleton` reproduces this
so that re-writing a parsed real file gives the same bytes.

Protocol choices (paper §4.1, App. B.2), all arguments of :func:`load_ntu_rgbd`:

* Single-person actions A1-A49 only (``actions=range(1, 50)``).
* Main actor (``select_main_actor``): for files with several body ids, bodies tracked in fewer than
  ``min_track_frames`` (default 11) frames are ignored as Kinect noise unless every body is that short
  (the length filter of the common NTU denoising preprocessing), and among the rest the body with the
  largest 3D motion energy wins: the sum over its 25 joints and x/y/z of the temporal variance of the
  camera-space position over its tracked frames (the "most active body" rule of the NTU / ST-GCN-family
  preprocessing). Ties go to the longer track, then the body that appears first.
* 2D input: the main actor's colour-image pixels (colorX, colorY) mapped to the canonical 13 joints
  (``convert_keypoints(..., 'ntu25', scores=trackingState)``, so inferred joints count as present),
  UN-MIRRORED: Kinect's colour coordinates form a mirror image (on all six real sample files, in the
  frames where the body faces the sensor — toes nearer the camera than the ankles — the person's left
  shoulder has the smaller colorX in 100% of frames, where a camera image such as Human3.6M's puts it
  on the right), so x is replaced by ``COLOR_WIDTH - colorX`` (:func:`unmirror_color`). The encoder is
  pretrained on unmirrored views and augmentation never mirrors, so feeding mirrored people would
  swap left and right for every NTU row.
  The sequence spans the main actor's first to last tracked frame; frames inside that span where the
  actor is not tracked are all-missing (mask 0, coordinates 0). Non-finite colour coordinates are
  treated as missing joints.
* Length (``num_frames=300``): following ST-GCN [53] as the paper does, a clip shorter than 300 frames
  is padded by replaying it from its start (frames 0..T-1, 0..T-1, ... truncated at 300); a longer one
  is cropped to its first 300 frames (:func:`replay_pad`).

Benchmarks: :func:`cross_subject_split` (official training performers
:data:`CROSS_SUBJECT_TRAIN_PERFORMERS`), :func:`cross_view_split` (train cameras 2 and 3, test camera
1) and :func:`single_shot_splits`, the paper's six single-shot views: the cross-subject TRAINING set
restricted to one (camera, replication) pair, evaluated on the whole cross-subject TEST set, whose
per-sample view labels (index into :data:`NTU_VIEWS`) allow per-view reporting.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from cv_mim.data import ntu_skeleton
from cv_mim.data.clips import LabelledClips
from cv_mim.data.clips import sorted_labels
from cv_mim.data.clips import Tally
from cv_mim.keypoints import profiles

logger = logging.getLogger(__name__)


CROSS_SUBJECT_TRAIN_PERFORMERS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)


CROSS_VIEW_TRAIN_CAMERAS = (2, 3)


CROSS_VIEW_TEST_CAMERAS = (1,)


# The six views of the single-shot protocol: (camera, replication); view labels index this tuple.
NTU_VIEWS = ((1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2))




def view_name(camera: int, replication: int) -> str:
    """The (camera, replication) view's name, e.g. ``"C2R1"`` (the paper's single-shot columns)."""
    return f"C{camera}R{replication}"


def subject_name(performer: int) -> str:
    """A performer's subject label, e.g. ``"P008"`` (the file-name field)."""
    return f"P{performer:03d}"


NTU_VIEW_NAMES = tuple(view_name(c, r) for c, r in NTU_VIEWS)


DEFAULT_NUM_FRAMES = 300


DEFAULT_MIN_TRACK_FRAMES = 11


class NtuName(NamedTuple):
    setup: int
    camera: int
    performer: int
    replication: int
    action: int


_NAME_RE = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")


def parse_ntu_filename(name) -> NtuName:
    """'S001C002P003R002A013' (or a path / a name with the ``.skeleton`` suffix) -> NtuName of ints.

    Raises:
      ValueError: the stem is not SsssCcccPpppRrrrAaaa with 3-digit fields.
    """
    if isinstance(name, NtuName):
        return name
    stem = os.path.basename(os.fspath(name))
    for suffix in (".npy", ".skeleton"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    m = _NAME_RE.match(stem)
    if not m:
        raise ValueError(f"not an NTU RGB+D sample name (SsssCcccPpppRrrrAaaa): {name!r}")
    return NtuName(*(int(g) for g in m.groups()))


def format_ntu_filename(setup, camera=None, performer=None, replication=None, action=None,
                        suffix: str = "") -> str:
    """(setup, camera, performer, replication, action) or an NtuName -> 'SsssCcccPpppRrrrAaaa' + suffix.

    Raises:
      ValueError: a field that is not an integer in 0..999.
    """
    if isinstance(setup, NtuName) or isinstance(setup, tuple):
        if camera is not None:
            raise ValueError("format_ntu_filename: pass either an NtuName or five integers")
        fields = tuple(setup)
    else:
        fields = (setup, camera, performer, replication, action)
    if len(fields) != 5:
        raise ValueError(f"format_ntu_filename: need 5 fields, got {fields}")
    out = []
    for label, v in zip("SCPRA", fields):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) <= 999:
            raise ValueError(f"format_ntu_filename: field {label} must be an integer in 0..999, got {v!r}")
        out.append(f"{label}{int(v):03d}")
    return "".join(out) + suffix


class BodyTrack(NamedTuple):
    """One body id over the frames where it appears: ``frame_indices`` (Tb,) int64, ``joints`` (Tb, 25, 12)."""

    frame_indices: np.ndarray
    joints: np.ndarray


def body_joints(skeleton: ntu_skeleton.NtuSkeleton) -> dict:
    """{body_id: BodyTrack(frame_indices (Tb,), joints (Tb, 25, 12))}, in order of first appearance.

    Raises:
      ValueError: the same body id twice in one frame.
    """
    frames_of, rows_of = {}, {}
    for t, bodies in enumerate(skeleton.frames):
        seen = set()
        for body in bodies:
            if body.body_id in seen:
                raise ValueError(f"{skeleton.name}: body id {body.body_id} appears twice in frame {t}")
            seen.add(body.body_id)
            frames_of.setdefault(body.body_id, []).append(t)
            rows_of.setdefault(body.body_id, []).append(np.asarray(body.joints, np.float64))
    return {bid: BodyTrack(np.asarray(frames_of[bid], np.int64), np.stack(rows_of[bid]))
            for bid in frames_of}


def motion_energy(xyz) -> float:
    """Sum over joints and x/y/z of the temporal variance of (Tb, 25, 3) positions (0 for Tb == 1)."""
    xyz = np.asarray(xyz, np.float64)
    if xyz.ndim != 3 or xyz.shape[0] == 0:
        raise ValueError(f"motion_energy: expected (T>0, J, 3) positions, got shape {xyz.shape}")
    return float(np.nanvar(xyz, axis=0).sum()) if xyz.shape[0] > 1 else 0.0


def select_main_actor(skeleton: ntu_skeleton.NtuSkeleton, min_track_frames: int = DEFAULT_MIN_TRACK_FRAMES):
    """The main actor's body id (rule in the module docstring); None when no body is tracked."""
    tracks = body_joints(skeleton)
    if not tracks:
        return None
    longest = max(len(tr.frame_indices) for tr in tracks.values())
    threshold = min(int(min_track_frames), longest)
    best, best_key = None, None
    for order, (bid, tr) in enumerate(tracks.items()):
        if len(tr.frame_indices) < threshold:
            continue
        key = (motion_energy(tr.joints[:, :, ntu_skeleton.COL_XYZ]), len(tr.frame_indices), -order)
        if best_key is None or key > best_key:
            best, best_key = bid, key
    return best


COLOR_WIDTH = 1920  # Kinect v2 colour image width in pixels


def unmirror_color(color):
    """Kinect colour pixels (mirror image) → camera-image pixels: x ↦ COLOR_WIDTH − x, y unchanged."""
    color = np.array(color, np.float64, copy=True)
    color[..., 0] = COLOR_WIDTH - color[..., 0]
    return color


def main_actor_keypoints_2d(skeleton: ntu_skeleton.NtuSkeleton, min_track_frames: int = DEFAULT_MIN_TRACK_FRAMES):
    """The main actor's colour-pixel 2D pose in the canonical 13 joints, un-mirrored (:func:`unmirror_color`).

    Returns:
      (keypoints (T, 13, 2) float32 pixels, mask (T, 13) float32, body_id): T spans the actor's first to
      last tracked frame; untracked frames inside the span are all-missing with coordinates 0.
    Raises:
      ValueError: no body in any frame.
    """
    body_id = select_main_actor(skeleton, min_track_frames)
    if body_id is None:
        raise ValueError(f"{skeleton.name}: no body tracked in any of its {skeleton.num_frames} frames")
    track = body_joints(skeleton)[body_id]
    first, last = int(track.frame_indices[0]), int(track.frame_indices[-1])
    t = last - first + 1
    color = np.zeros((t, ntu_skeleton.NUM_NTU_JOINTS, 2), np.float64)
    scores = np.zeros((t, ntu_skeleton.NUM_NTU_JOINTS), np.float64)
    rel = track.frame_indices - first
    color[rel] = unmirror_color(track.joints[:, :, ntu_skeleton.COL_COLOR])
    scores[rel] = track.joints[:, :, ntu_skeleton.COL_TRACKING]
    finite = np.isfinite(color).all(-1)
    scores = np.where(finite, scores, 0.0)
    color = np.where(finite[..., None], color, 0.0)
    kp13, mask13 = profiles.convert_keypoints(color, "ntu25", scores=scores)
    return kp13, mask13, body_id


def replay_pad(keypoints, mask, num_frames: int = DEFAULT_NUM_FRAMES):
    """Pads by replaying the sequence from its start (ST-GCN [53]) or crops to the first ``num_frames``.

    Output frame k is input frame k mod T for T < num_frames, frame k otherwise.

    Returns:
      (keypoints (num_frames, ...) , mask (num_frames, ...)) with the input dtypes.
    Raises:
      ValueError: T == 0, mismatched leading dims, or num_frames < 1.
    """
    kp = np.asarray(keypoints)
    mk = np.asarray(mask)
    if kp.ndim < 1 or kp.shape[0] == 0:
        raise ValueError(f"replay_pad: keypoints must have at least one frame, got shape {kp.shape}")
    if mk.shape[:1] != kp.shape[:1]:
        raise ValueError(f"replay_pad: mask has {mk.shape[:1]} frames, keypoints {kp.shape[:1]}")
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"replay_pad: num_frames must be a positive integer, got {num_frames}")
    idx = np.arange(int(num_frames)) % kp.shape[0]
    return kp[idx], mk[idx]


def _names(names) -> list:
    if isinstance(names, NtuDataset):
        return names.names()
    return [parse_ntu_filename(n) for n in names]


def view_index(camera: int, replication: int) -> int:
    """Index of (camera, replication) in :data:`NTU_VIEWS`."""
    try:
        return NTU_VIEWS.index((int(camera), int(replication)))
    except ValueError:
        raise ValueError(f"no NTU view for camera {camera}, replication {replication}; views are "
                         f"{NTU_VIEWS}") from None


def cross_subject_split(names, train_performers: Sequence[int] = CROSS_SUBJECT_TRAIN_PERFORMERS):
    """Cross-subject benchmark: (train_indices, test_indices) by performer id."""
    parsed = _names(names)
    train = np.array([n.performer in set(train_performers) for n in parsed], bool)
    return np.flatnonzero(train), np.flatnonzero(~train)


def cross_view_split(names, train_cameras: Sequence[int] = CROSS_VIEW_TRAIN_CAMERAS,
                     test_cameras: Sequence[int] = CROSS_VIEW_TEST_CAMERAS):
    """Cross-view benchmark: (train_indices: cameras 2 and 3, test_indices: camera 1)."""
    parsed = _names(names)
    cams = np.array([n.camera for n in parsed], np.int64)
    return np.flatnonzero(np.isin(cams, train_cameras)), np.flatnonzero(np.isin(cams, test_cameras))


@dataclasses.dataclass
class SingleShotSplit:
    """One single-shot view: ``train`` indices (cross-subject training samples of this view), ``test``
    indices (the whole cross-subject test set) and ``test_views`` (view index into NTU_VIEWS of each test
    sample, -1 for a (camera, replication) outside the six)."""

    view: tuple
    train: np.ndarray
    test: np.ndarray
    test_views: np.ndarray


def single_shot_splits(names, train_performers: Sequence[int] = CROSS_SUBJECT_TRAIN_PERFORMERS) -> dict:
    """The paper's six single-shot splits: {(camera, replication): SingleShotSplit} for NTU_VIEWS."""
    parsed = _names(names)
    train_idx, test_idx = cross_subject_split(parsed, train_performers)
    views = np.array([NTU_VIEWS.index((n.camera, n.replication)) if (n.camera, n.replication) in NTU_VIEWS
                      else -1 for n in parsed], np.int64)
    out = {}
    for v, view in enumerate(NTU_VIEWS):
        out[view] = SingleShotSplit(view=view, train=train_idx[views[train_idx] == v], test=test_idx,
                                    test_views=views[test_idx])
    return out


@dataclasses.dataclass
class NtuDataset(LabelledClips):
    """NTU RGB+D samples as 2D canonical-13 sequences.

    Attributes:
      keypoints: (N, num_frames, 13, 2) float32 colour-image pixels (main actor, replay-padded).
      mask: (N, num_frames, 13) float32, 1 = joint tracked or inferred.
      labels: (N,) int64 index into ``class_names`` (equals action - 1 when all of A1..A49 are present).
      actions, setups, cameras, performers, replications: (N,) int64 from the file names.
      clip_ids: (N,) str file stems.
      num_frames_original: (N,) int64 length of the main actor's span before padding.
      main_body_ids: (N,) object (Python ints; Kinect ids exceed int64 precision in some tools).
      num_bodies: (N,) int64 number of distinct body ids in the file.
      class_names: ('A001', ...) the action codes present, sorted by action number.
      skipped: [(file, reason)] of malformed files skipped with ``skip_malformed=True``.
      excluded: names removed by the skip list.
    """

    keypoints: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    actions: np.ndarray
    setups: np.ndarray
    cameras: np.ndarray
    performers: np.ndarray
    replications: np.ndarray
    clip_ids: np.ndarray
    num_frames_original: np.ndarray
    main_body_ids: np.ndarray
    num_bodies: np.ndarray
    class_names: tuple
    skipped: list = dataclasses.field(default_factory=list)
    excluded: list = dataclasses.field(default_factory=list)

    @property
    def views(self) -> np.ndarray:
        """(N,) view index into NTU_VIEWS (-1 outside the six)."""
        return np.array([NTU_VIEWS.index((c, r)) if (c, r) in NTU_VIEWS else -1
                         for c, r in zip(self.cameras.tolist(), self.replications.tolist())], np.int64)

    def names(self) -> list:
        return [NtuName(int(s), int(c), int(p), int(r), int(a)) for s, c, p, r, a in
                zip(self.setups, self.cameras, self.performers, self.replications, self.actions)]

    def subset(self, indices) -> "NtuDataset":
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"subset: boolean mask must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        per_sample = ("keypoints", "mask", "labels", "actions", "setups", "cameras", "performers",
                      "replications", "clip_ids", "num_frames_original", "main_body_ids", "num_bodies")
        return dataclasses.replace(self, **{f: getattr(self, f)[idx] for f in per_sample},
                                   skipped=list(self.skipped), excluded=list(self.excluded))

    def cross_subject_split(self):
        return cross_subject_split(self)

    def cross_view_split(self):
        return cross_view_split(self)

    def single_shot_splits(self) -> dict:
        return single_shot_splits(self)


def read_skip_list(path) -> set:
    """Sample names (one per line; blank lines and '#' comments ignored) -> set of stems."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"NTU skip list not found: {path}")
    out = set()
    with open(path, encoding="utf-8") as f:
        for ln in f:
            ln = ln.split("#", 1)[0].strip()
            if ln:
                out.add(format_ntu_filename(parse_ntu_filename(ln)))
    return out


@dataclasses.dataclass
class NtuRecord:
    """One sample as :func:`iter_ntu_rgbd` yields it.

    Attributes:
      name: the file name's fields (:class:`NtuName`).
      clip_id: the file stem.
      keypoints: (num_frames, 13, 2) float32 colour-image pixels (main actor, replay-padded).
      mask: (num_frames, 13) float32, 1 = joint tracked or inferred.
      num_frames_original: length of the main actor's span before padding.
      main_body_id: the main actor's Kinect body id (a Python int).
      num_bodies: number of distinct body ids in the file.
    """

    name: NtuName
    clip_id: str
    keypoints: np.ndarray
    mask: np.ndarray
    num_frames_original: int
    main_body_id: object
    num_bodies: int

    @property
    def class_name(self) -> str:
        """The action code, e.g. ``'A013'`` (3 digits, so sorting the codes sorts the numbers)."""
        return f"A{self.name.action:03d}"


def iter_ntu_rgbd(skeleton_dir, *, actions: Iterable[int] = range(1, 50), skip_list=None,
                  skip_malformed: bool = False, num_frames: int = DEFAULT_NUM_FRAMES,
                  min_track_frames: int = DEFAULT_MIN_TRACK_FRAMES, tally: Tally | None = None):
    """The samples of a directory of ``.skeleton`` files, one file at a time.

    The arguments and the per-sample rules are those of :func:`load_ntu_rgbd` (which collects this
    iterator); the arguments, the directory and the skip list are checked when this is called, the
    files when they are reached. Every rule is per file (actions and the skip list go by the file
    name, the main actor is chosen within the file), so nothing needs the whole dataset; the class
    list (the action codes seen, sorted) is made from the yielded records at the end.

    Args:
      tally: a :class:`~cv_mim.data.clips.Tally` that receives the skipped files
        ``[(path, reason)]`` and the names removed by the skip list as they are met.
    Returns:
      An iterator of :class:`NtuRecord` in file-name order; exhausting it raises ValueError when no
      sample was left.
    """
    skeleton_dir = os.fspath(skeleton_dir)
    if not os.path.isdir(skeleton_dir):
        raise FileNotFoundError(f"NTU RGB+D skeleton directory not found: {skeleton_dir}")
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames}")
    keep_actions = {int(a) for a in actions}
    if skip_list is None:
        skip = set()
    elif isinstance(skip_list, (str, os.PathLike)):
        skip = read_skip_list(skip_list)
    else:
        skip = {format_ntu_filename(parse_ntu_filename(n)) for n in skip_list}
    files = sorted(f for f in os.listdir(skeleton_dir) if f.endswith(".skeleton"))
    tally = Tally() if tally is None else tally
    tally.files = len(files)
    return _ntu_records(skeleton_dir, files, keep_actions, skip, skip_malformed, int(num_frames),
                        min_track_frames, tally)


def _ntu_records(skeleton_dir, files, keep_actions, skip, skip_malformed, num_frames,
                 min_track_frames, tally):
    # Longer than a screen on purpose: reads, selects the main actor, pads and labels every take
    # file by file (skip records together).
    skipped, excluded = tally.skipped, tally.excluded
    kept = 0
    for fname in files:
        path = os.path.join(skeleton_dir, fname)
        try:
            name = parse_ntu_filename(fname)
        except ValueError as e:
            if not skip_malformed:
                raise ValueError(f"{path}: {e}") from None
            skipped.append((path, str(e)))
            logger.warning("Skipping %s: %s", path, e)
            continue
        if name.action not in keep_actions:
            continue
        stem = format_ntu_filename(name)
        if stem in skip:
            excluded.append(stem)
            continue
        try:
            skel = ntu_skeleton.read_skeleton(path)
            kp, mk, body_id = main_actor_keypoints_2d(skel, min_track_frames)
        except ValueError as e:
            if not skip_malformed:
                raise
            skipped.append((path, str(e)))
            logger.warning("Skipping malformed NTU file: %s", e)
            continue
        t = kp.shape[0]
        kp, mk = replay_pad(kp, mk, num_frames)
        kept += 1
        yield NtuRecord(name=name, clip_id=stem, keypoints=kp.astype(np.float32),
                        mask=mk.astype(np.float32), num_frames_original=t, main_body_id=body_id,
                        num_bodies=len(body_joints(skel)))
    if skipped:
        logger.warning("Skipped %d malformed NTU RGB+D file(s) in %s", len(skipped), skeleton_dir)
    if not kept:
        raise ValueError(f"{skeleton_dir}: no sample left ({len(files)} .skeleton files, {len(skipped)} "
                         f"malformed, {len(excluded)} in the skip list, actions {sorted(keep_actions)[:5]}...)")


def load_ntu_rgbd(skeleton_dir, *, actions: Iterable[int] = range(1, 50), skip_list=None,
                  skip_malformed: bool = False, num_frames: int = DEFAULT_NUM_FRAMES,
                  min_track_frames: int = DEFAULT_MIN_TRACK_FRAMES) -> NtuDataset:
    """Loads the ``*.skeleton`` files of a directory as 2D canonical-13 sequences of the main actor.

    This collects :func:`iter_ntu_rgbd`, which reads one file at a time.

    Args:
      skeleton_dir: directory of ``SsssCcccPpppRrrrAaaa.skeleton`` files (not searched recursively).
      actions: action numbers to keep (default A1-A49, the single-person classes). Filtering uses the
        file name, so other files are not even parsed.
      skip_list: None, a path to a text file of sample names (the known-bad list), or an iterable of
        names; listed samples are not loaded and are recorded in ``NtuDataset.excluded``.
      skip_malformed: when True, files that fail to parse or have no tracked body are skipped, logged and
        listed in ``NtuDataset.skipped``; when False the first one raises.
      num_frames: output length (:func:`replay_pad`).
      min_track_frames: the noise-track length of :func:`select_main_actor`.
    Returns:
      :class:`NtuDataset` in file-name order.
    Raises:
      FileNotFoundError: missing directory / skip list.
      ValueError: a malformed file or a ``.skeleton`` file with a bad name (naming it) when not
        skipping; no sample left.
    """
    tally = Tally()
    records = list(iter_ntu_rgbd(skeleton_dir, actions=actions, skip_list=skip_list,
                                 skip_malformed=skip_malformed, num_frames=num_frames,
                                 min_track_frames=min_track_frames, tally=tally))
    labels, class_names = sorted_labels([r.class_name for r in records])
    col = lambda k: np.array([getattr(r.name, k) for r in records], np.int64)  # noqa: E731
    return NtuDataset(
        keypoints=np.stack([r.keypoints for r in records]),
        mask=np.stack([r.mask for r in records]),
        labels=labels,
        actions=col("action"), setups=col("setup"), cameras=col("camera"), performers=col("performer"),
        replications=col("replication"),
        clip_ids=np.array([r.clip_id for r in records]),
        num_frames_original=np.array([r.num_frames_original for r in records], np.int64),
        main_body_ids=np.array([r.main_body_id for r in records], dtype=object),
        num_bodies=np.array([r.num_bodies for r in records], np.int64),
        class_names=class_names,
        skipped=tally.skipped,
        excluded=tally.excluded,
    )
