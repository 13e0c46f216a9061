"""The embedding file: ONE documented format (``.npz``) that every downstream binary reads.

File format ``cv_mim.embeddings/1`` (numpy ``.npz``; F = total frames, C = clips, K = classes):

======================================  ====================  =============================================
key                                     shape, dtype          meaning
======================================  ====================  =============================================
``pose_embedding``                      [F, P] float32        z_p of every frame (clips concatenated)
``view_embedding``                      [F, V] float32        z_v of every frame
``normalized_keypoints``                [F, 13, 2] float32    the encoder's input (raw-2D features)
``mask``                                [F, 13] float32       1 = joint present
``has_pose``                            [F] bool              False: every joint missing, or all present
                                                              joints at one point; that frame's
                                                              embedding is meaningless (counted in
                                                              the log)
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
import os

import numpy as np

FORMAT = "cv_mim.embeddings/1"


FEATURES = ("pose_embedding", "view_embedding", "normalized_keypoints")
# The downstream binaries' --features choices -> the file key that holds them.
FEATURE_KEYS = {"embedding": "pose_embedding", "pose_embedding": "pose_embedding",
                "view_embedding": "view_embedding", "raw": "normalized_keypoints"}


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
    for key in FEATURES:
        values = arrays[key]
        if values.dtype.kind != "f" or len(values) != offsets[-1]:
            raise ValueError(f"{path}: {key} must be a float array of {offsets[-1]} frames, got "
                             f"dtype {values.dtype} shape {values.shape}")
        finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if not finite.all():
            raise ValueError(f"{path}: {key} is NaN/inf in {int((~finite).sum())} frame(s) (first: "
                             f"{np.flatnonzero(~finite)[:5].tolist()})")
    if "has_pose" in arrays and arrays["has_pose"].shape != (offsets[-1],):
        raise ValueError(f"{path}: has_pose must have shape ({offsets[-1]},), got "
                         f"{arrays['has_pose'].shape}")
    return EmbeddingFile(arrays=arrays, metadata=metadata)
