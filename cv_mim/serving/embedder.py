"""Embedding 2D keypoints with an exported SavedModel (the only path downstream tasks use).

:class:`Embedder` wraps ``cv_mim.export`` output: it validates the input (clear ``ValueError`` naming the
array and its shape), batches it, and calls the SavedModel's ``embed_with_scores`` signature, so the
normalisation and missing-joint rule are exactly the ones baked into the export.
"""

import numpy as np
import tensorflow as tf

from cv_mim.keypoints import profiles
from cv_mim.serving import export as export_lib


class Embedder:
    """Embeds canonical 13-joint 2D keypoints with a SavedModel from ``cv_mim.export``."""

    def __init__(self, export_dir):
        self.export_dir = export_dir
        self.module, self.metadata = export_lib.load_export(export_dir)
        self._fn = self.module.signatures["embed_with_scores"]
        config = self.metadata.get("model_config", {})
        self.pose_dim = int(config.get("pose_dim", 32))
        self.view_dim = int(config.get("view_dim", 32))

    def __call__(self, keypoints_2d, mask=None, *, batch_size=4096, name="keypoints_2d"):
        """Returns ``{"pose_embedding": [N, P], "view_embedding": [N, V], "normalized_keypoints":
        [N, 13, 2]}`` (numpy float32) for ``keypoints_2d`` [N, 13, 2] pixels and optional ``mask``
        [N, 13] (1 = present; a joint with mask 0 is missing and may hold NaN)."""
        kp = np.asarray(keypoints_2d, dtype=np.float32)
        if kp.ndim != 3 or kp.shape[1:] != (profiles.NUM_JOINTS, 2):
            raise ValueError(f"{name} must have shape [N, 13, 2] (canonical joints, pixels), got "
                             f"{kp.shape}")
        if mask is None:
            mask = np.ones(kp.shape[:2], np.float32)
        mask = np.asarray(mask, dtype=np.float32)
        if mask.shape != kp.shape[:2]:
            raise ValueError(f"mask for {name} must have shape {kp.shape[:2]}, got {mask.shape}")
        bad = ~np.isfinite(kp).all(axis=-1) & (mask > 0)
        if bad.any():
            raise ValueError(f"{name}: {int(bad.sum())} joint(s) marked present have NaN/inf "
                             f"coordinates (array of shape {kp.shape}); give them mask 0")
        kp = np.where(np.isfinite(kp), kp, 0.0).astype(np.float32)
        outputs = {"pose_embedding": [], "view_embedding": [], "normalized_keypoints": []}
        for start in range(0, len(kp), batch_size):
            out = self._fn(keypoints_2d=tf.constant(kp[start:start + batch_size]),
                           keypoint_scores=tf.constant(mask[start:start + batch_size]))
            for key in outputs:
                outputs[key].append(out[key].numpy())
        if not len(kp):
            return {"pose_embedding": np.zeros((0, self.pose_dim), np.float32),
                    "view_embedding": np.zeros((0, self.view_dim), np.float32),
                    "normalized_keypoints": np.zeros((0, 13, 2), np.float32)}
        return {key: np.concatenate(values) for key, values in outputs.items()}
