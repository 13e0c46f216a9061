"""The loader registry: ``--dataset`` name -> labelled clips of 2D keypoints (numpy only).

:data:`DATASETS` is the one list of readers every binary offers; :func:`load_clips` returns a
:class:`ClipSet` in the canonical 13-joint layout with a joint mask, clip boundaries and metadata.

Detector formats (:data:`DETECTOR_DATASETS`) go through :func:`_detector_clips`: the layout is named by
the user (``layout``) or recorded in the file, checked (joint count, then the plausibility check of
:mod:`cv_mim.keypoints.plausibility`, skipped with ``skip_layout_check``), converted to the canonical
profile; joints with a score <= ``min_score`` are missing. Labels, views, split and subjects come from
the file when it has them, and from a CSV sidecar (``labels_csv``: a header row with ``clip_id`` and any
of ``label``, ``view``, ``split``, ``subject``; a label is a class name or an integer) which overrides
the file. ``num_frames`` resamples every clip to that length (the rule of
:func:`cv_mim.data.penn_action.resample_sequence`), as the action classifiers need one clip length.
"""

import csv
import dataclasses
import logging
import os

import numpy as np

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


def blank(n):
    return np.array([""] * n)


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


def _clip_set(keypoints, masks, clip_ids, labels, class_names, views, split, subjects, info,
              ntu_fields=None):
    """A ClipSet with the NTU file-name fields (-1 when the dataset has none)."""
    n = len(keypoints)
    ntu_fields = ntu_fields or {k: empty_ints(n) for k in
                                ("setups", "cameras", "performers", "replications")}
    return ClipSet(keypoints=list(keypoints), masks=list(masks), clip_ids=np.asarray(clip_ids),
                   labels=np.asarray(labels, np.int64), class_names=tuple(class_names),
                   views=np.asarray(views), split=np.asarray(split), subjects=np.asarray(subjects),
                   info=info, **ntu_fields)


def _load_penn(path, o):
    from cv_mim.data import penn_action  # pylint: disable=import-outside-toplevel
    kwargs = {"num_frames": o.num_frames} if o.num_frames else {}
    ds = penn_action.load_penn_action(path, skip_malformed=o.skip_malformed,
                                      min_visible_fraction=o.min_visible_fraction,
                                      invisible_joints=o.invisible_joints, **kwargs)
    return _clip_set(
        ds.keypoints, ds.mask, ds.clip_ids, ds.labels, ds.class_names,
        [ds.view_names[v] for v in ds.views], ["train" if t else "test" for t in ds.train],
        blank(len(ds)),
        info={"num_skipped": ds.num_skipped, "skipped": ds.skipped, "excluded": ds.excluded,
              "invisible_joints": o.invisible_joints,
              "min_visible_fraction": o.min_visible_fraction})


def _load_ntu(path, o):
    kwargs = {"num_frames": o.num_frames} if o.num_frames else {}
    ds = ntu_rgbd.load_ntu_rgbd(path, skip_list=o.skip_list, skip_malformed=o.skip_malformed,
                                **kwargs)
    views = np.asarray(ds.views)
    return _clip_set(
        ds.keypoints, ds.mask, ds.clip_ids, ds.labels, ds.class_names,
        [ntu_rgbd.NTU_VIEW_NAMES[v] if v >= 0 else "" for v in views], blank(len(ds)),
        [ntu_rgbd.subject_name(p) for p in ds.performers],
        info={"num_skipped": ds.num_skipped, "skipped": ds.skipped, "excluded": list(ds.excluded)},
        ntu_fields={k: np.asarray(getattr(ds, k), np.int64)
                    for k in ("setups", "cameras", "performers", "replications")})


def _load_h36m(path, o):
    """One clip per (subject, action, camera); the action's first word is its label."""
    from cv_mim.data import h36m  # pylint: disable=import-outside-toplevel
    path_3d, path_2d, path_cameras = h36m.resolve_paths(data_dir=path)
    skipped = [] if o.skip_malformed else None
    poses = h36m.load_multiview(path_3d, path_cameras, path_2d, subjects=o.subjects,
                                skipped=skipped)
    for name, reason in skipped or ():
        log.warning("skipped malformed Human3.6M sequence %s: %s", name, reason)
    kps, masks, ids, actions, views, subj = [], [], [], [], [], []
    keys = list(zip(poses.subjects.tolist(), poses.actions.tolist()))
    for key in dict.fromkeys(keys):
        rows = np.array([i for i, k in enumerate(keys) if k == key])
        for c, cam in enumerate(poses.camera_ids):
            kp = poses.keypoints_2d[rows, c]
            kps.append(kp)
            masks.append(np.isfinite(kp).all(-1).astype(np.float32))
            ids.append(f"{key[0]}/{key[1]}/{cam}")
            actions.append(key[1].split(" ")[0])
            views.append(str(cam))
            subj.append(key[0])
    class_names = tuple(sorted(set(actions)))
    return _clip_set(kps, masks, ids, [class_names.index(a) for a in actions], class_names, views,
                     blank(len(kps)), subj,
                     info={"num_skipped": len(skipped or ()), "skipped": skipped or []})


def _load_npy(path, o):
    """[N, 13, 2] (one clip) or [C, T, 13, 2] (C clips) canonical keypoints; NaN marks missing."""
    del o  # no options
    arr = safe_pickle.load_npz(path)
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path}: a .npz archive, not a .npy keypoint array")
    arr = checks.as_keypoints(arr, path)
    if arr.ndim not in (3, 4) or arr.shape[-2:] != (profiles.NUM_JOINTS, 2):
        raise ValueError(f"{path}: a keypoint .npy must have shape [N, 13, 2] or [C, T, 13, 2] "
                         f"(canonical joints, pixels), got {arr.shape}")
    arr = (arr[None] if arr.ndim == 3 else arr).astype(np.float32)
    n = arr.shape[0]
    return _clip_set(list(arr), [np.isfinite(a).all(-1).astype(np.float32) for a in arr],
                     [f"{os.path.basename(path)}:{i}" for i in range(n)], empty_ints(n), (),
                     blank(n), blank(n), blank(n), info={})


def _detector_loader(dataset):
    def load(path, o):
        try:
            clips, info = _read_detections(dataset, path, o.split_prefix)
        except (KeyError, TypeError, AttributeError, IndexError) as err:
            # A structure the format does not allow (a missing key, a dict where a list belongs,
            # mixed types...): one clear line naming the file, never a traceback.
            raise ValueError(f"{dataset} input {path}: malformed file ({type(err).__name__}: "
                             f"{err})") from None
        return _detector_clips(dataset, clips, info, layout=o.layout,
                               skip_layout_check=o.skip_layout_check, min_score=o.min_score,
                               labels_csv=o.labels_csv, num_frames=o.num_frames)
    return load


# The loader registry: ``--dataset`` name -> loader(path, LoadOptions) -> ClipSet.
LOADERS = {"penn_action": _load_penn, "ntu_rgbd": _load_ntu, "h36m": _load_h36m, "npy": _load_npy,
           **{name: _detector_loader(name) for name in DETECTOR_DATASETS}}
assert tuple(LOADERS) == DATASETS


def load_clips(dataset, path, **options):
    """Reads a dataset into a :class:`ClipSet` with the loader :data:`LOADERS` names.

    ``options`` are :class:`LoadOptions` fields. ``min_visible_fraction`` and ``invisible_joints`` are
    Penn Action's clip-removal and invisible-joint rules (:func:`cv_mim.data.penn_action.joint_mask`);
    ``skip_list`` is NTU's; ``subjects`` Human3.6M's; ``layout``, ``skip_layout_check``,
    ``min_score``, ``labels_csv`` and ``split_prefix`` (skeleton pickle split) apply to
    :data:`DETECTOR_DATASETS` (module docstring); each loader ignores the others.
    """
    if dataset not in LOADERS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    known = {f.name for f in dataclasses.fields(LoadOptions)}
    if set(options) - known:
        raise TypeError(f"load_clips: unknown options {sorted(set(options) - known)}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{dataset} input not found: {path}")
    return LOADERS[dataset](path, LoadOptions(**options))


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


def _detector_clips(dataset, clips, info, *, layout, skip_layout_check, min_score, labels_csv,
                    num_frames=None):
    if not clips:
        raise ValueError(f"{dataset}: no clips found")
    layout = resolve_layout(dataset, clips, layout)
    scores = [np.where(c.scores > min_score, c.scores, 0.0).astype(np.float32) for c in clips]
    report = None
    if not skip_layout_check:
        report = plausibility.check_layout(
            np.concatenate([c.keypoints for c in clips]), np.concatenate(scores), layout,
            name=f"{dataset} ({len(clips)} clips)")
    kps, masks = zip(*(profiles.convert_keypoints(c.keypoints, layout, s)
                       for c, s in zip(clips, scores)))
    if num_frames:  # a fixed length for the action classifiers (Penn Action's resampling rule)
        from cv_mim.data import penn_action  # pylint: disable=import-outside-toplevel
        kps, masks = zip(*(penn_action.resample_sequence(k, m, num_frames)
                           for k, m in zip(kps, masks)))
    fields = [dict(c.fields) for c in clips]
    if labels_csv:
        sidecar = read_labels_csv(labels_csv)
        ids = {c.clip_id for c in clips}
        extra = sorted(set(sidecar) - ids)
        if extra:
            log.warning("%s: %d clip ids of %s are not in the data (e.g. %s)", dataset, len(extra),
                        labels_csv, extra[:3])
        for c, f in zip(clips, fields):
            f.update(sidecar.get(c.clip_id, {}))
    labels, class_names = _labels([f.get("label") for f in fields])
    n = len(clips)
    info = dict(info, layout=layout, layout_check=None if report is None else {
        k: v.describe() for k, v in report.items()}, min_score=min_score,
        missing_frames=int(sum((m.sum(-1) == 0).sum() for m in masks)),
        frames=int(sum(len(m) for m in masks)))
    return ClipSet(
        keypoints=list(kps), masks=list(masks), clip_ids=np.array([c.clip_id for c in clips]),
        labels=labels, class_names=class_names,
        views=np.array([str(f.get("view", "")) for f in fields]),
        split=np.array([str(f.get("split", "")) for f in fields]),
        subjects=np.array([str(f.get("subject", "")) for f in fields]),
        setups=empty_ints(n), cameras=empty_ints(n), performers=empty_ints(n),
        replications=empty_ints(n), info=info)
