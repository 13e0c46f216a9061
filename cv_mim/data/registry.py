"""The loader registry: ``--dataset`` name -> labelled clips of 2D keypoints (numpy only).

:data:`DATASETS` is the one list of readers every binary offers; :func:`load_clips` returns a
:class:`ClipSet` in the canonical 13-joint layout with a joint mask, clip boundaries and metadata.

:func:`iter_clips` streams the same clips one at a time (:class:`ClipStream`); :func:`load_clips`
collects it, so the two cannot disagree.

Detector formats (:data:`DETECTOR_DATASETS`) go through :func:`_detector_stream`: the layout is
named by the user (``layout``) or recorded in the file, checked (joint count, then the plausibility
check of :mod:`cv_mim.keypoints.plausibility`, skipped with ``skip_layout_check``), converted to the
canonical profile; joints with a score <= ``min_score`` are missing. Labels, views, split and
subjects come from the file when it has them, and from a CSV sidecar (``labels_csv``: a header row
with ``clip_id`` and any of ``label``, ``view``, ``split``, ``subject``; a label is a class name or an
integer) which overrides the file. ``num_frames`` resamples every clip to that length (the rule of
:func:`cv_mim.data.penn_action.resample_sequence`), as the action classifiers need one clip length.
"""

import csv
import dataclasses
import logging
import os

import numpy as np

from cv_mim.data import clips as clips_lib
from cv_mim.data import ntu_rgbd
from cv_mim.data import safe_pickle
from cv_mim.keypoints import checks
from cv_mim.keypoints import plausibility
from cv_mim.keypoints import profiles

log = logging.getLogger("cv_mim.data.registry")

DETECTOR_DATASETS = ("openpose", "openpose_multiview", "coco_json", "mmpose_json",
                     "skeleton_pickle")

DATASETS = ("penn_action", "ntu_rgbd", "h36m", "npy") + DETECTOR_DATASETS

# Layout names users know from the detectors' documentation -> profiles.SOURCE_LAYOUTS.
LAYOUT_ALIASES = {"body25": "openpose25", "body_25": "openpose25", "body25b": "openpose25b",
                  "body_25b": "openpose25b", "coco18": "openpose18", "coco": "coco17",
                  "halpe": "halpe26", "mediapipe": "mediapipe33", "blazepose": "mediapipe33",
                  "coco_wholebody": "coco_wholebody133", "h36m": "h36m17", "ntu": "ntu25"}

LAYOUT_CHOICES = profiles.SOURCE_LAYOUTS + tuple(LAYOUT_ALIASES)


@dataclasses.dataclass
class ClipSet:
    """Clips of 2D keypoints in canonical order with per-clip fields (the embedder's input)."""

    keypoints: list           # C arrays [T_c, 13, 2] pixels
    masks: list               # C arrays [T_c, 13]
    clip_ids: np.ndarray
    labels: np.ndarray
    class_names: tuple
    views: np.ndarray
    split: np.ndarray
    subjects: np.ndarray
    setups: np.ndarray
    cameras: np.ndarray
    performers: np.ndarray
    replications: np.ndarray
    info: dict


def empty_ints(n):
    return np.full(n, -1, np.int64)


@dataclasses.dataclass
class Clip:
    """One clip of a :class:`ClipStream`: canonical keypoints and its per-clip fields.

    ``label`` is the clip's raw label (a class name, an integer as int or text, or None =
    unlabelled); the dataset's label rule turns all of them into indices and class names at the end.
    ``ntu`` holds NTU's file-name fields (setup, camera, performer, replication), -1 elsewhere.
    """

    keypoints: np.ndarray     # [T, 13, 2] pixels
    mask: np.ndarray          # [T, 13]
    clip_id: str
    label: object = None
    view: str = ""
    split: str = ""
    subject: str = ""
    ntu: tuple = (-1, -1, -1, -1)


NTU_FIELDS = ("setups", "cameras", "performers", "replications")


class ClipStream:
    """A dataset's clips one at a time (:class:`Clip`), and its dataset-level fields at the end.

    Iterate it once; it keeps only each clip's small fields (id, label, view, split, subject, NTU
    fields). Once it is exhausted, :meth:`clip_set` gives the fields that need every clip — class
    names and label indices (``label_rule``), the reader's ``info`` (skipped and excluded lists,
    counts) — as a :class:`ClipSet` around the keypoints the caller kept (none, for a consumer
    that streams them).
    """

    def __init__(self, clips, label_rule, info):
        """``clips``: an iterator of Clip; ``label_rule``: per-clip labels -> (labels, class names);
        ``info``: a callable giving the info dict once ``clips`` is exhausted."""
        self._clips, self._label_rule, self._info = clips, label_rule, info
        self._fields = []
        self._state = "new"

    def __iter__(self):
        if self._state != "new":
            raise RuntimeError("a ClipStream can be iterated only once")
        self._state = "reading"
        for clip in self._clips:
            self._fields.append((clip.clip_id, clip.label, clip.view, clip.split, clip.subject,
                                 tuple(clip.ntu)))
            yield clip
        self._state = "done"

    def clip_set(self, keypoints=(), masks=()):
        """The :class:`ClipSet` of the clips read, around the ``keypoints`` / ``masks`` kept."""
        if self._state != "done":
            raise RuntimeError("ClipStream.clip_set() needs the stream read to its end first")
        columns = list(zip(*self._fields)) or [()] * 6
        ids, labels, views, split, subjects, ntu = columns
        labels, class_names = self._label_rule(list(labels))
        return ClipSet(
            keypoints=list(keypoints), masks=list(masks), clip_ids=np.array(ids),
            labels=np.asarray(labels, np.int64), class_names=tuple(class_names),
            views=np.array(views), split=np.array(split), subjects=np.array(subjects),
            info=self._info(), **{k: np.array([f[i] for f in ntu], np.int64)
                                  for i, k in enumerate(NTU_FIELDS)})


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """Every reader's options; each loader reads the ones that apply to it (see :func:`load_clips`)."""

    skip_malformed: bool = False
    skip_list: object = None
    subjects: object = None
    num_frames: object = None
    min_visible_fraction: float = 0.4
    invisible_joints: str = "annotated"
    layout: object = None
    skip_layout_check: bool = False
    min_score: float = 0.0
    labels_csv: object = None
    split_prefix: object = None


def _stream_penn(path, o):
    """One label file at a time (:func:`cv_mim.data.penn_action.iter_penn_action`)."""
    from cv_mim.data import penn_action  # pylint: disable=import-outside-toplevel
    kwargs = {"num_frames": o.num_frames} if o.num_frames else {}
    tally = clips_lib.Tally()
    records = penn_action.iter_penn_action(path, skip_malformed=o.skip_malformed,
                                           min_visible_fraction=o.min_visible_fraction,
                                           invisible_joints=o.invisible_joints, tally=tally,
                                           **kwargs)
    clips = (Clip(r.keypoints, r.mask, r.clip_id, label=r.action, view=r.view,
                  split="train" if r.train else "test") for r in records)
    return ClipStream(clips, clips_lib.sorted_labels, lambda: {
        "num_skipped": len(tally.skipped), "skipped": tally.skipped, "excluded": tally.excluded,
        "invisible_joints": o.invisible_joints, "min_visible_fraction": o.min_visible_fraction})


def _ntu_clip(r):
    n = r.name
    view = (ntu_rgbd.view_name(n.camera, n.replication)
            if (n.camera, n.replication) in ntu_rgbd.NTU_VIEWS else "")
    return Clip(r.keypoints, r.mask, r.clip_id, label=r.class_name, view=view,
                subject=ntu_rgbd.subject_name(n.performer),
                ntu=(n.setup, n.camera, n.performer, n.replication))


def _stream_ntu(path, o):
    """One ``.skeleton`` file at a time (:func:`cv_mim.data.ntu_rgbd.iter_ntu_rgbd`)."""
    kwargs = {"num_frames": o.num_frames} if o.num_frames else {}
    tally = clips_lib.Tally()
    records = ntu_rgbd.iter_ntu_rgbd(path, skip_list=o.skip_list, skip_malformed=o.skip_malformed,
                                     tally=tally, **kwargs)
    return ClipStream((_ntu_clip(r) for r in records), clips_lib.sorted_labels, lambda: {
        "num_skipped": len(tally.skipped), "skipped": tally.skipped,
        "excluded": list(tally.excluded)})


def _stream_h36m(path, o):
    """One clip per (subject, action, camera); the action's first word is its label.

    The VideoPose3D files hold every sequence in one archive, so they are read whole (as for
    pretraining); the clips are then yielded one at a time.
    """
    from cv_mim.data import h36m  # pylint: disable=import-outside-toplevel
    path_3d, path_2d, path_cameras = h36m.resolve_paths(data_dir=path)
    skipped = [] if o.skip_malformed else None
    poses = h36m.load_multiview(path_3d, path_cameras, path_2d, subjects=o.subjects,
                                skipped=skipped)
    for name, reason in skipped or ():
        log.warning("skipped malformed Human3.6M sequence %s: %s", name, reason)

    def clips():
        keys = list(zip(poses.subjects.tolist(), poses.actions.tolist()))
        for key in dict.fromkeys(keys):
            rows = np.array([i for i, k in enumerate(keys) if k == key])
            for c, cam in enumerate(poses.camera_ids):
                kp = poses.keypoints_2d[rows, c]
                yield Clip(kp, np.isfinite(kp).all(-1).astype(np.float32),
                           f"{key[0]}/{key[1]}/{cam}", label=key[1].split(" ")[0], view=str(cam),
                           subject=key[0])
    return ClipStream(clips(), clips_lib.sorted_labels,
                      lambda: {"num_skipped": len(skipped or ()), "skipped": skipped or []})


def _stream_npy(path, o):
    """[N, 13, 2] (one clip) or [C, T, 13, 2] (C clips) canonical keypoints; NaN marks missing.

    One array file, read whole; its clips are yielded one at a time.
    """
    del o  # no options
    arr = safe_pickle.load_npz(path)
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path}: a .npz archive, not a .npy keypoint array")
    arr = checks.as_keypoints(arr, path)
    if arr.ndim not in (3, 4) or arr.shape[-2:] != (profiles.NUM_JOINTS, 2):
        raise ValueError(f"{path}: a keypoint .npy must have shape [N, 13, 2] or [C, T, 13, 2] "
                         f"(canonical joints, pixels), got {arr.shape}")
    arr = (arr[None] if arr.ndim == 3 else arr).astype(np.float32)
    name = os.path.basename(path)
    clips = (Clip(a, np.isfinite(a).all(-1).astype(np.float32), f"{name}:{i}")
             for i, a in enumerate(arr))
    return ClipStream(clips, _labels, dict)


def _detector_stream_of(dataset):
    def stream(path, o):
        try:
            clips, info = _read_detections(dataset, path, o.split_prefix)
        except (KeyError, TypeError, AttributeError, IndexError) as err:
            # A structure the format does not allow (a missing key, a dict where a list belongs,
            # mixed types...): one clear line naming the file, never a traceback.
            raise ValueError(f"{dataset} input {path}: malformed file ({type(err).__name__}: "
                             f"{err})") from None
        return _detector_stream(dataset, clips, info, layout=o.layout,
                                skip_layout_check=o.skip_layout_check, min_score=o.min_score,
                                labels_csv=o.labels_csv, num_frames=o.num_frames)
    return stream


# The loader registry: ``--dataset`` name -> stream(path, LoadOptions) -> ClipStream.
STREAMS = {"penn_action": _stream_penn, "ntu_rgbd": _stream_ntu, "h36m": _stream_h36m,
           "npy": _stream_npy, **{name: _detector_stream_of(name) for name in DETECTOR_DATASETS}}
assert tuple(STREAMS) == DATASETS


def iter_clips(dataset, path, **options):
    """A :class:`ClipStream` over a dataset's clips, read one file (or record) at a time.

    ``options`` are those of :func:`load_clips`. Options, the path and (for each reader) what it can
    check before reading clips are checked here; each file when it is reached, with the same errors
    and ``skip_malformed`` handling as :func:`load_clips`, which collects this stream. What is held
    at a time: Penn Action and NTU RGB+D, one label / skeleton file; Human3.6M, ``npy`` and the
    detector formats, the parsed input (one archive, array or JSON / pickle document, which those
    formats do not split), the canonical clips then yielded one at a time. Dataset-level rules need
    no pre-pass: the class list and label indices come from the clips' labels at the end
    (:meth:`ClipStream.clip_set`); the detector formats' layout and its plausibility check are
    decided over all clips of the parsed document before the first clip is yielded.
    """
    if dataset not in STREAMS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    known = {f.name for f in dataclasses.fields(LoadOptions)}
    if set(options) - known:
        raise TypeError(f"load_clips: unknown options {sorted(set(options) - known)}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{dataset} input not found: {path}")
    return STREAMS[dataset](path, LoadOptions(**options))


def load_clips(dataset, path, **options):
    """Reads a dataset into a :class:`ClipSet` with the reader :data:`STREAMS` names.

    ``options`` are :class:`LoadOptions` fields. ``min_visible_fraction`` and ``invisible_joints`` are
    Penn Action's clip-removal and invisible-joint rules (:func:`cv_mim.data.penn_action.joint_mask`);
    ``skip_list`` is NTU's; ``subjects`` Human3.6M's; ``layout``, ``skip_layout_check``,
    ``min_score``, ``labels_csv`` and ``split_prefix`` (skeleton pickle split) apply to
    :data:`DETECTOR_DATASETS` (module docstring); each loader ignores the others. This collects
    :func:`iter_clips` (everything in memory); ``cv_mim.embed`` streams it instead.
    """
    stream = iter_clips(dataset, path, **options)
    keypoints, masks = [], []
    for clip in stream:
        keypoints.append(clip.keypoints)
        masks.append(clip.mask)
    return stream.clip_set(keypoints, masks)


def _read_detections(dataset, path, split_prefix):
    # pylint: disable=import-outside-toplevel
    if dataset == "openpose":
        from cv_mim.data import openpose
        return openpose.load_openpose(path), {}
    if dataset == "openpose_multiview":
        from cv_mim.data import openpose
        return openpose.load_openpose_multiview(path), {"synchronised_views": True}
    if dataset == "coco_json":
        from cv_mim.data import coco_json
        return coco_json.load_coco_json(path), {}
    if dataset == "mmpose_json":
        from cv_mim.data import mmpose_json
        return mmpose_json.load_mmpose_json(path), {}
    from cv_mim.data import skeleton_pickle
    return skeleton_pickle.load_skeleton_pickle(path, split_prefix=split_prefix)


def resolve_layout(dataset, clips, layout):
    """The user's layout (aliases allowed) or the one recorded in the file; error when neither."""
    if layout is not None:
        name = LAYOUT_ALIASES.get(str(layout).lower(), str(layout).lower())
        if name not in profiles.SOURCE_LAYOUTS:
            raise ValueError(f"--layout must be one of {LAYOUT_CHOICES}, got {layout!r}")
        recorded = {c.layout for c in clips if c.layout}
        if recorded and recorded != {name}:
            log.warning("%s: --layout=%s overrides the layout recorded in the file %s", dataset,
                        name, sorted(recorded))
        return name
    recorded = {c.layout for c in clips}
    if len(recorded) == 1 and None not in recorded:
        return recorded.pop()
    joints = sorted({c.keypoints.shape[1] for c in clips})
    raise ValueError(f"{dataset}: the file does not record its joint layout ({joints} joints); name "
                     f"it with --layout (one of {profiles.layouts_with_joints(joints[0]) or LAYOUT_CHOICES})")


def read_labels_csv(path):
    """CSV sidecar -> {clip_id: {column: value}} (columns: clip_id + label/view/split/subject)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"labels CSV not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "clip_id" not in reader.fieldnames:
            raise ValueError(f"{path}: the labels CSV needs a header row with a 'clip_id' column "
                             f"(and any of label, view, split, subject), got {reader.fieldnames}")
        unknown = set(reader.fieldnames) - {"clip_id", "label", "view", "split", "subject"}
        if unknown:
            raise ValueError(f"{path}: unknown columns {sorted(unknown)}")
        return {row["clip_id"]: {k: v for k, v in row.items() if k != "clip_id" and v not in
                                 (None, "")} for row in reader}


def _labels(values):
    """Per-clip labels (int, class name or None) -> (int64 indices, class names)."""
    given = [v for v in values if v is not None]
    if not given:
        return empty_ints(len(values)), ()
    if all(isinstance(v, (int, np.integer)) or str(v).lstrip("-").isdigit() for v in given):
        ints = [None if v is None else int(v) for v in values]
        names = tuple(str(i) for i in range(max(i for i in ints if i is not None) + 1))
        return np.array([-1 if i is None else i for i in ints], np.int64), names
    names = tuple(sorted({str(v) for v in given}))
    return np.array([-1 if v is None else names.index(str(v)) for v in values], np.int64), names


def _detector_stream(dataset, clips, info, *, layout, skip_layout_check, min_score, labels_csv,
                     num_frames=None):
    """The layout (resolved and checked over every clip of the document), the labels CSV, then
    the clips converted one at a time (the parsed native clips are released as they go)."""
    if not clips:
        raise ValueError(f"{dataset}: no clips found")
    layout = resolve_layout(dataset, clips, layout)
    report = None
    if not skip_layout_check:
        report = plausibility.check_layout(
            np.concatenate([c.keypoints for c in clips]),
            np.concatenate([_scores(c, min_score) for c in clips]), layout,
            name=f"{dataset} ({len(clips)} clips)")
    sidecar = {}
    if labels_csv:
        sidecar = read_labels_csv(labels_csv)
        extra = sorted(set(sidecar) - {c.clip_id for c in clips})
        if extra:
            log.warning("%s: %d clip ids of %s are not in the data (e.g. %s)", dataset, len(extra),
                        labels_csv, extra[:3])
    frames = {"missing_frames": 0, "frames": 0}

    def converted():
        for i, c in enumerate(clips):
            clips[i] = None  # the native copy is not needed once converted
            kp, mask = profiles.convert_keypoints(c.keypoints, layout, _scores(c, min_score))
            if num_frames:  # a fixed length for the action classifiers (Penn Action's rule)
                from cv_mim.data import penn_action  # pylint: disable=import-outside-toplevel
                kp, mask = penn_action.resample_sequence(kp, mask, num_frames)
            frames["missing_frames"] += int((mask.sum(-1) == 0).sum())
            frames["frames"] += len(mask)
            f = dict(c.fields, **sidecar.get(c.clip_id, {}))
            yield Clip(kp, mask, c.clip_id, label=f.get("label"), view=str(f.get("view", "")),
                       split=str(f.get("split", "")), subject=str(f.get("subject", "")))

    return ClipStream(converted(), _labels, lambda: dict(
        info, layout=layout, layout_check=None if report is None else {
            k: v.describe() for k, v in report.items()}, min_score=min_score, **frames))


def _scores(clip, min_score):
    """A detection clip's scores with those <= ``min_score`` set to 0 (missing joints)."""
    return np.where(clip.scores > min_score, clip.scores, 0.0).astype(np.float32)
