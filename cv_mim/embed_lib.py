"""Embeds whole datasets with an export into ONE documented file format (``.npz``).

This file is the only embedding input of ``cv_mim.action_recognition`` and ``cv_mim.view_classification``
(their ``--export_dir`` shortcut calls :func:`embed_dataset` rather than a second code path).

File format ``cv_mim.embeddings/1`` (numpy ``.npz``; F = total frames, C = clips, K = classes):

======================================  ====================  =============================================
key                                     shape, dtype          meaning
======================================  ====================  =============================================
``pose_embedding``                      [F, P] float32        z_p of every frame (clips concatenated)
``view_embedding``                      [F, V] float32        z_v of every frame
``normalized_keypoints``                [F, 13, 2] float32    the encoder's input (raw-2D features)
``mask``                                [F, 13] float32       1 = joint present
``clip_offsets``                        [C + 1] int64         frames of clip c are [off[c], off[c + 1])
``clip_ids``                            [C] str               file stem / sequence name
``labels``                              [C] int64             index into ``class_names`` (−1: unlabelled)
``class_names``                         [K] str               from the data, never hard-coded
``views``                               [C] str               Penn: front/back/left/right; NTU: C1R1…C3R2;
                                                              Human3.6M: camera id; npy: ""
``split``                               [C] str               Penn: train/test (official); others: ""
``subjects``                            [C] str               NTU performer "P008", H36M subject, else ""
``setups``, ``cameras``,                [C] int64             NTU file-name fields (−1 elsewhere)
``performers``, ``replications``
``<feature>_flip_keep`` /               as above              optional: the same features of horizontally
``<feature>_flip_swap``                                       mirrored keypoints, left/right labels kept /
                                                              swapped (``flip_modes``)
``metadata``                            [] str (JSON)         dataset, source, export metadata, flips
======================================  ====================  =============================================
"""

import dataclasses
import json
import logging
import os

import numpy as np

from cv_mim import keypoints

log = logging.getLogger("cv_mim.embed")
FORMAT = "cv_mim.embeddings/1"
DATASETS = ("penn_action", "ntu_rgbd", "h36m", "npy")
FLIP_MODES = ("keep", "swap")
FEATURES = ("pose_embedding", "view_embedding", "normalized_keypoints")


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


def _empty_ints(n):
    return np.full(n, -1, np.int64)


def _blank(n):
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
            subjects=_blank(n), setups=_empty_ints(n), cameras=_empty_ints(n),
            performers=_empty_ints(n), replications=_empty_ints(n),
            info={"num_skipped": ds.num_skipped, "skipped": ds.skipped, "excluded": ds.excluded,
                  "invisible_joints": invisible_joints,
                  "min_visible_fraction": min_visible_fraction})
    if dataset == "ntu_rgbd":
        from cv_mim.data import ntu_rgbd  # pylint: disable=import-outside-toplevel
        kwargs = {"num_frames": num_frames} if num_frames else {}
        ds = ntu_rgbd.load_ntu_rgbd(path, skip_list=skip_list, skip_malformed=skip_malformed,
                                    **kwargs)
        n = len(ds)
        views = np.asarray(ds.views)
        return ClipSet(
            keypoints=list(ds.keypoints), masks=list(ds.mask), clip_ids=np.asarray(ds.clip_ids),
            labels=np.asarray(ds.labels, np.int64), class_names=tuple(ds.class_names),
            views=np.array([ntu_rgbd.NTU_VIEW_NAMES[v] if v >= 0 else "" for v in views]),
            split=_blank(n), subjects=np.array([f"P{p:03d}" for p in ds.performers]),
            setups=np.asarray(ds.setups, np.int64), cameras=np.asarray(ds.cameras, np.int64),
            performers=np.asarray(ds.performers, np.int64),
            replications=np.asarray(ds.replications, np.int64),
            info={"num_skipped": ds.num_skipped, "skipped": ds.skipped,
                  "excluded": list(ds.excluded)})
    if dataset == "h36m":
        from cv_mim.data import h36m  # pylint: disable=import-outside-toplevel
        path_3d, path_2d, path_cameras = h36m.resolve_paths(data_dir=path)
        poses = h36m.load_multiview(path_3d, path_cameras, path_2d, subjects=subjects)
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
            class_names=class_names, views=np.array(views), split=_blank(n),
            subjects=np.array(subj), setups=_empty_ints(n), cameras=_empty_ints(n),
            performers=_empty_ints(n), replications=_empty_ints(n), info={})
    # npy: [N, 13, 2] (one clip) or [C, T, 13, 2] (C clips); NaN marks missing joints.
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:  # pylint: disable=broad-except
        raise ValueError(f"{path}: not a readable .npy array ({err})") from None
    if arr.ndim not in (3, 4) or arr.shape[-2:] != (keypoints.NUM_JOINTS, 2):
        raise ValueError(f"{path}: a keypoint .npy must have shape [N, 13, 2] or [C, T, 13, 2] "
                         f"(canonical joints, pixels), got {arr.shape}")
    if arr.ndim == 3:
        arr = arr[None]
    arr = arr.astype(np.float32)
    n = arr.shape[0]
    return ClipSet(
        keypoints=list(arr), masks=[np.isfinite(a).all(-1).astype(np.float32) for a in arr],
        clip_ids=np.array([f"{os.path.basename(path)}:{i}" for i in range(n)]),
        labels=_empty_ints(n), class_names=(), views=_blank(n), split=_blank(n),
        subjects=_blank(n), setups=_empty_ints(n), cameras=_empty_ints(n),
        performers=_empty_ints(n), replications=_empty_ints(n), info={})


def flip_keypoints(kp, mask, mode):
    """Horizontal mirror of pixel keypoints [..., 13, 2] (x → −x; normalisation removes the offset).

    ``keep``: the joint labels are kept, so the mirrored pose reads as the opposite view (a front view
    becomes back-view-like, left becomes right) — a view augmentation in itself.
    ``swap``: the left/right labels are swapped too, which keeps the view and mirrors the person.
    """
    if mode not in FLIP_MODES:
        raise ValueError(f"flip mode must be one of {FLIP_MODES}, got {mode!r}")
    out = np.array(kp, np.float32, copy=True)
    out[..., 0] = -out[..., 0]
    mask = np.asarray(mask, np.float32)
    if mode == "swap":
        out = out[..., keypoints.LEFT_RIGHT_SWAP, :]
        mask = mask[..., keypoints.LEFT_RIGHT_SWAP]
    return out, mask


def embed_dataset(export_dir, dataset, path, output, *, flip_modes=(), batch_size=8192,
                  **loader_kwargs):
    """Embeds a dataset with an export and writes the ``cv_mim.embeddings/1`` file ``output``."""
    from cv_mim import embedding  # pylint: disable=import-outside-toplevel
    for mode in flip_modes:
        if mode not in FLIP_MODES:
            raise ValueError(f"flip mode must be one of {FLIP_MODES}, got {mode!r}")
    clips = load_clips(dataset, path, **loader_kwargs)
    if not clips.keypoints:
        raise ValueError(f"{dataset} at {path}: no clips to embed")
    embedder = embedding.Embedder(export_dir)
    lengths = np.array([len(k) for k in clips.keypoints], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    kp = np.concatenate(clips.keypoints).astype(np.float32)
    mask = np.concatenate(clips.masks).astype(np.float32)
    log.info("embedding %d clips (%d frames) of %s with %s", len(lengths), len(kp), dataset,
             export_dir)
    arrays = {}
    variants = [("", kp, mask)] + [
        (f"_flip_{m}",) + flip_keypoints(kp, mask, m) for m in flip_modes]
    for suffix, k, m in variants:
        out = embedder(np.where(m[..., None] > 0, k, np.nan), m, batch_size=batch_size,
                       name=f"{dataset} keypoints")
        for feature in FEATURES:
            arrays[feature + suffix] = out[feature]
        if not suffix:
            arrays["mask"] = m
    metadata = {"format": FORMAT, "dataset": dataset, "source": os.path.abspath(path),
                "export_dir": os.path.abspath(export_dir), "export": embedder.metadata,
                "flip_modes": list(flip_modes), "loader": {k: str(v) for k, v in
                                                           loader_kwargs.items()},
                "loader_info": clips.info}
    os.makedirs(os.path.dirname(os.path.abspath(output)) or ".", exist_ok=True)
    tmp = f"{output}.tmp.npz"
    np.savez(tmp, clip_offsets=offsets, clip_ids=clips.clip_ids, labels=clips.labels,
             class_names=np.array(clips.class_names), views=clips.views, split=clips.split,
             subjects=clips.subjects, setups=clips.setups, cameras=clips.cameras,
             performers=clips.performers, replications=clips.replications,
             metadata=np.array(json.dumps(metadata, default=str)), **arrays)
    os.replace(tmp, output)
    log.info("wrote %s", output)
    return output


@dataclasses.dataclass
class EmbeddingFile:
    """A loaded ``cv_mim.embeddings/1`` file."""

    arrays: dict
    metadata: dict

    @property
    def num_clips(self):
        return len(self.arrays["clip_ids"])

    @property
    def class_names(self):
        return tuple(str(c) for c in self.arrays["class_names"])

    def __getitem__(self, key):
        return self.arrays[key]

    def has(self, key):
        return key in self.arrays

    def clip_features(self, feature, flip=None, clips=None):
        """Per-clip features [C, T, D] (all clips must have the same length; they do for Penn
        Action (332) and NTU (300)). ``feature`` is one of ``FEATURES``; ``normalized_keypoints`` is
        flattened to 26-d; ``flip`` selects a mirrored variant."""
        if feature not in FEATURES:
            raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
        key = feature if flip is None else f"{feature}_flip_{flip}"
        if key not in self.arrays:
            raise ValueError(f"the embedding file has no {key!r} (flip modes present: "
                             f"{self.metadata.get('flip_modes')}); re-run cv_mim.embed with "
                             f"--flip_modes={flip}")
        offsets = self.arrays["clip_offsets"]
        lengths = np.diff(offsets)
        idx = np.arange(self.num_clips) if clips is None else np.asarray(clips)
        if len(set(lengths[idx].tolist())) > 1:
            raise ValueError(f"clips have different lengths {sorted(set(lengths.tolist()))[:5]}; "
                             "resample them to a fixed length first")
        data = self.arrays[key]
        t = int(lengths[idx[0]]) if len(idx) else 0
        frames = (offsets[idx][:, None] + np.arange(t)[None]).reshape(-1)
        out = data[frames].reshape(len(idx), t, -1)
        return out.astype(np.float32)


def load_embeddings(path) -> EmbeddingFile:
    """Loads and checks a ``cv_mim.embeddings/1`` file (clear errors naming the file)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"embedding file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as err:  # pylint: disable=broad-except
        raise ValueError(f"{path}: not a readable .npz embedding file ({err})") from None
    missing = [k for k in ("pose_embedding", "view_embedding", "normalized_keypoints",
                           "clip_offsets", "clip_ids", "labels", "class_names", "metadata")
               if k not in arrays]
    if missing:
        raise ValueError(f"{path}: not a cv_mim.embeddings file (missing keys {missing})")
    metadata = json.loads(str(arrays.pop("metadata")))
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: format {metadata.get('format')!r}, expected {FORMAT!r}")
    offsets = arrays["clip_offsets"]
    if offsets[-1] != len(arrays["pose_embedding"]) or len(offsets) != len(arrays["clip_ids"]) + 1:
        raise ValueError(f"{path}: clip_offsets do not match the frame arrays")
    return EmbeddingFile(arrays=arrays, metadata=metadata)
