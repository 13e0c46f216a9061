"""Embeds whole datasets with an export into ONE documented file format (``.npz``).

This file is the only embedding input of ``cv_mim.action_recognition`` and ``cv_mim.view_classification``
(their ``--export_dir`` shortcut calls :func:`embed_dataset` rather than a second code path).

The format is documented in :mod:`cv_mim.serving.embedding_file`.
"""

import json
import logging
import os

import numpy as np

from cv_mim.data import registry as data_registry
from cv_mim.keypoints import profiles
from cv_mim.serving import embedder as embedder_lib
from cv_mim.serving import embedding_file

log = logging.getLogger("cv_mim.embed")


FLIP_MODES = ("keep", "swap")


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
        out = out[..., profiles.LEFT_RIGHT_SWAP, :]
        mask = mask[..., profiles.LEFT_RIGHT_SWAP]
    return out, mask


def embed_dataset(export_dir, dataset, path, output, *, flip_modes=(), batch_size=8192,
                  **loader_kwargs):
    """Embeds a dataset with an export and writes the ``cv_mim.embeddings/1`` file ``output``."""
    for mode in flip_modes:
        if mode not in FLIP_MODES:
            raise ValueError(f"flip mode must be one of {FLIP_MODES}, got {mode!r}")
    clips = data_registry.load_clips(dataset, path, **loader_kwargs)
    if not clips.keypoints:
        raise ValueError(f"{dataset} at {path}: no clips to embed")
    embedder = embedder_lib.Embedder(export_dir)
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
        for feature in embedding_file.FEATURES:
            arrays[feature + suffix] = out[feature]
        if not suffix:
            arrays["mask"] = m
    metadata = {"format": embedding_file.FORMAT, "dataset": dataset, "source": os.path.abspath(path),
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
