"""The loader registry: ``--dataset`` name -> labelled clips of 2D keypoints (numpy only).

:data:`DATASETS` is the one list of readers every binary offers; :func:`load_clips` returns a
:class:`ClipSet` in the canonical 13-joint layout with a joint mask, clip boundaries and metadata.
"""

import dataclasses
import logging
import os

import numpy as np

from cv_mim.data import ntu_rgbd
from cv_mim.data import safe_pickle
from cv_mim.keypoints import checks
from cv_mim.keypoints import profiles

log = logging.getLogger("cv_mim.data")

DATASETS = ("penn_action", "ntu_rgbd", "h36m", "npy")


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


def load_clips(dataset, path, *, skip_malformed=False, skip_list=None, subjects=None,
               num_frames=None, min_visible_fraction=0.4, invisible_joints="annotated"):
    """Reads a dataset into a :class:`ClipSet` with the project's loaders.

    ``min_visible_fraction`` and ``invisible_joints`` are Penn Action's clip-removal rule and
    invisible-joint rule (:func:`cv_mim.data.penn_action.joint_mask`); other datasets ignore them.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{dataset} input not found: {path}")
    if dataset == "penn_action":
        from cv_mim.data import penn_action  # pylint: disable=import-outside-toplevel
        kwargs = {"num_frames": num_frames} if num_frames else {}
        ds = penn_action.load_penn_action(path, skip_malformed=skip_malformed,
                                          min_visible_fraction=min_visible_fraction,
                                          invisible_joints=invisible_joints, **kwargs)
        n = len(ds)
        return ClipSet(
            keypoints=list(ds.keypoints), masks=list(ds.mask), clip_ids=np.asarray(ds.clip_ids),
            labels=np.asarray(ds.labels, np.int64), class_names=tuple(ds.class_names),
            views=np.array([ds.view_names[v] for v in ds.views]),
            split=np.array(["train" if t else "test" for t in ds.train]),
            subjects=blank(n), setups=empty_ints(n), cameras=empty_ints(n),
            performers=empty_ints(n), replications=empty_ints(n),
            info={"num_skipped": ds.num_skipped, "skipped": ds.skipped, "excluded": ds.excluded,
                  "invisible_joints": invisible_joints,
                  "min_visible_fraction": min_visible_fraction})
    if dataset == "ntu_rgbd":
        kwargs = {"num_frames": num_frames} if num_frames else {}
        ds = ntu_rgbd.load_ntu_rgbd(path, skip_list=skip_list, skip_malformed=skip_malformed,
                                    **kwargs)
        n = len(ds)
        views = np.asarray(ds.views)
        return ClipSet(
            keypoints=list(ds.keypoints), masks=list(ds.mask), clip_ids=np.asarray(ds.clip_ids),
            labels=np.asarray(ds.labels, np.int64), class_names=tuple(ds.class_names),
            views=np.array([ntu_rgbd.NTU_VIEW_NAMES[v] if v >= 0 else "" for v in views]),
            split=blank(n), subjects=np.array([f"P{p:03d}" for p in ds.performers]),
            setups=np.asarray(ds.setups, np.int64), cameras=np.asarray(ds.cameras, np.int64),
            performers=np.asarray(ds.performers, np.int64),
            replications=np.asarray(ds.replications, np.int64),
            info={"num_skipped": ds.num_skipped, "skipped": ds.skipped,
                  "excluded": list(ds.excluded)})
    if dataset == "h36m":
        from cv_mim.data import h36m  # pylint: disable=import-outside-toplevel
        path_3d, path_2d, path_cameras = h36m.resolve_paths(data_dir=path)
        skipped = [] if skip_malformed else None
        poses = h36m.load_multiview(path_3d, path_cameras, path_2d, subjects=subjects,
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
        n = len(kps)
        return ClipSet(
            keypoints=kps, masks=masks, clip_ids=np.array(ids),
            labels=np.array([class_names.index(a) for a in actions], np.int64),
            class_names=class_names, views=np.array(views), split=blank(n),
            subjects=np.array(subj), setups=empty_ints(n), cameras=empty_ints(n),
            performers=empty_ints(n), replications=empty_ints(n),
            info={"num_skipped": len(skipped or ()), "skipped": skipped or []})
    # npy: [N, 13, 2] (one clip) or [C, T, 13, 2] (C clips); NaN marks missing joints.
    arr = safe_pickle.load_npz(path)
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path}: a .npz archive, not a .npy keypoint array")
    arr = checks.as_keypoints(arr, path)
    if arr.ndim not in (3, 4) or arr.shape[-2:] != (profiles.NUM_JOINTS, 2):
        raise ValueError(f"{path}: a keypoint .npy must have shape [N, 13, 2] or [C, T, 13, 2] "
                         f"(canonical joints, pixels), got {arr.shape}")
    if arr.ndim == 3:
        arr = arr[None]
    arr = arr.astype(np.float32)
    n = arr.shape[0]
    return ClipSet(
        keypoints=list(arr), masks=[np.isfinite(a).all(-1).astype(np.float32) for a in arr],
        clip_ids=np.array([f"{os.path.basename(path)}:{i}" for i in range(n)]),
        labels=empty_ints(n), class_names=(), views=blank(n), split=blank(n),
        subjects=blank(n), setups=empty_ints(n), cameras=empty_ints(n),
        performers=empty_ints(n), replications=empty_ints(n), info={})
