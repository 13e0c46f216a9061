"""Embeds whole datasets with an export into ONE documented file format (``.npz``).

This file is the only embedding input of ``cv_mim.action_recognition`` and ``cv_mim.view_classification``
(their ``--export_dir`` shortcut calls :func:`embed_dataset` rather than a second code path).

The format is documented in :mod:`cv_mim.serving.embedding_file`. The clips are read one at a time
(:func:`cv_mim.data.registry.iter_clips`), embedded in chunks of about ``batch_size`` frames and
written clip by clip, so memory is one chunk plus the per-clip fields, whatever the dataset's size
(Penn Action and NTU RGB+D; the formats whose input is one document hold that document, see
``iter_clips``).
"""

import itertools
import logging

import numpy as np

from cv_mim import records
from cv_mim.data import registry as data_registry
from cv_mim.keypoints import profiles
from cv_mim.serving import embedder as embedder_lib
from cv_mim.serving import embedding_file

log = logging.getLogger("cv_mim.embed")


FLIP_MODES = embedding_file.FLIP_MODES


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


class _PoselessCount:
    """Counts frames without a pose for the log; ValueError when no frame has one."""

    def __init__(self):
        self.missing = self.frames = 0
        self.first = None

    def add(self, has_pose, clip_id):
        if self.first is None and not has_pose.all():
            self.first = (int(np.flatnonzero(~has_pose)[0]), clip_id)
        self.missing += int((~has_pose).sum())
        self.frames += len(has_pose)

    def report(self, what):
        if self.missing == self.frames:
            raise ValueError(f"{what}: no frame has a pose to embed (every joint missing, or all "
                             f"joints at one point, in all {self.frames} frames)")
        if self.missing:
            log.warning("%s: %d of %d frames have no pose (every joint missing, or all at one point; "
                        "first: frame %d of clip %s); flagged has_pose=False in the file", what,
                        self.missing, self.frames, *self.first)


def _chunks(clips, batch_size):
    """Consecutive lists of clips of about ``batch_size`` frames (at least one clip each): a chunk
    ends at the first clip that brings it to ``batch_size`` frames or more."""
    chunk, frames = [], 0
    for clip in clips:
        chunk.append(clip)
        frames += len(clip.keypoints)
        if frames >= batch_size:
            yield chunk
            chunk, frames = [], 0
    if chunk:
        yield chunk


def _embed_chunk(embedder, kp, mask, flip_modes, batch_size, name):
    """{record field: [N, ...] float32} plus has_pose [N] of the frames ``kp`` [N, 13, 2]."""
    features = {}
    has_pose = None
    for mode in (None,) + tuple(flip_modes):
        k, m = (kp, mask) if mode is None else flip_keypoints(kp, mask, mode)
        out = embedder(np.where(m[..., None] > 0, k, np.nan), m, batch_size=batch_size, name=name)
        empty = ~(m > 0).any(-1)  # nobody detected: never embedded as if present
        keys = embedding_file.FEATURES if mode is None else embedding_file.EMBEDDINGS
        for feature in keys:
            value = out[feature]
            features[feature + ("" if mode is None else f"_flip_{mode}")] = np.where(
                empty.reshape((-1,) + (1,) * (value.ndim - 1)), np.float32(np.nan), value)
        if mode is None:
            has_pose = out["has_pose"] & ~empty
    return features, has_pose


def embed_dataset(export_dir, dataset, path, output, *, flip_modes=(), batch_size=8192,
                  trust_export=False, feature_dtype="float16", **loader_kwargs):
    """Embeds a dataset with an export and writes the ``cv_mim.embeddings/2`` file ``output``
    (any ``tf.io.gfile`` path); ``feature_dtype`` float16 (default) or float32."""
    for mode in flip_modes:
        if mode not in FLIP_MODES:
            raise ValueError(f"flip mode must be one of {FLIP_MODES}, got {mode!r}")
    if feature_dtype not in embedding_file.FEATURE_DTYPES:
        raise ValueError(f"feature_dtype must be one of {embedding_file.FEATURE_DTYPES}, got "
                         f"{feature_dtype!r}")
    stream = data_registry.iter_clips(dataset, path, **loader_kwargs)
    clips = iter(stream)
    first = next(clips, None)  # the dataset's first errors come before the export is loaded
    if first is None:
        raise ValueError(f"{dataset} at {path}: no clips to embed")
    embedder = embedder_lib.Embedder(export_dir, trust_export=trust_export)
    log.info("embedding the clips of %s with %s", dataset, export_dir)
    name = f"{dataset} keypoints of {path}"
    count = _PoselessCount()
    with embedding_file.EmbeddingWriter(output, pose_dim=embedder.pose_dim,
                                        view_dim=embedder.view_dim, flip_modes=flip_modes,
                                        feature_dtype=feature_dtype) as writer:
        for chunk in _chunks(itertools.chain([first], clips), batch_size):
            first = None  # the chunk holds it now
            kp = np.concatenate([c.keypoints for c in chunk]).astype(np.float32)
            mask = np.concatenate([c.mask for c in chunk]).astype(np.float32)
            features, has_pose = _embed_chunk(embedder, kp, mask, writer.flip_modes, batch_size,
                                              name)
            start = 0
            for clip in chunk:
                frames = slice(start, start + len(clip.keypoints))
                writer.add_clip({k: v[frames] for k, v in features.items()}, mask[frames],
                                has_pose[frames])
                count.add(has_pose[frames], clip.clip_id)
                start += len(clip.keypoints)
            del chunk, kp, mask, features, has_pose  # before the next chunk is read
        clips = stream.clip_set()  # the per-clip fields, no keypoints
        log.info("embedded %d clips (%d frames) of %s", len(clips.clip_ids), count.frames, dataset)
        count.report(f"{dataset} at {path}")
        metadata = {"dataset": dataset, "source": records.absolute(path),
                    "export_dir": records.absolute(export_dir), "export": embedder.metadata,
                    "loader": {k: str(v) for k, v in loader_kwargs.items()},
                    "loader_info": clips.info}
        fields = {k: getattr(clips, k) for k in embedding_file.CLIP_FIELDS}
        fields["class_names"] = np.array(clips.class_names)
        writer.finish(fields, metadata)
    log.info("wrote %s", output)
    return output
