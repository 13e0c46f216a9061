"""Embedding 2D keypoints with an exported SavedModel (the only path downstream tasks use).

:class:`Embedder` wraps ``cv_mim.export`` output: it validates the input (clear ``ValueError`` naming the
array and its shape), batches it, and calls the SavedModel's ``embed_with_scores`` signature, so the
normalisation and missing-joint rule are exactly the ones baked into the export. The export's ops are
checked against the allow-list before it is loaded (:mod:`cv_mim.serving.export_ops`), and every
output is checked to be finite.
"""

import numpy as np
import tensorflow as tf

from cv_mim.keypoints import checks
from cv_mim.keypoints import profiles
from cv_mim.serving import export as export_lib
from cv_mim.serving import pretrained

OUTPUTS = ("pose_embedding", "view_embedding", "normalized_keypoints")


class Embedder:
    """Embeds 2D keypoints with a SavedModel from ``cv_mim.export`` (default: the shipped encoder).

    Two lines from detector keypoints to view-invariant pose embeddings::

        from cv_mim.serving.embedder import Embedder
        z_p = Embedder().embed(keypoints, layout="coco17")["pose_embedding"]
    """

    def __init__(self, export_dir=None, *, trust_export=False):
        """Args:
          export_dir: a ``cv_mim.export`` directory; None = the shipped pretrained encoder
            (:mod:`cv_mim.serving.pretrained`).
          trust_export: skip the op allow-list check (only for exports you made yourself).
        """
        export_dir = pretrained.resolve(export_dir)
        self.export_dir = export_dir
        self.module, self.metadata = export_lib.load_export(export_dir, trust_export=trust_export)
        self._fn = self.module.signatures["embed_with_scores"]
        config = self.metadata.get("model_config", {})
        self.pose_dim = int(config.get("pose_dim", 32))
        self.view_dim = int(config.get("view_dim", 32))

    def __call__(self, keypoints_2d, mask=None, *, batch_size=4096, name="keypoints_2d"):
        """Returns ``{"pose_embedding": [N, P], "view_embedding": [N, V], "normalized_keypoints":
        [N, 13, 2], "has_pose": [N] bool}`` (numpy) for ``keypoints_2d`` [N, 13, 2] pixels and optional
        ``mask`` [N, 13] (1 = present; a joint with mask 0 is missing and may hold NaN).

        ``has_pose`` is False for a frame with every joint missing or all present joints at one point:
        its embedding is the encoder's output for an empty pose and means nothing.

        Raises:
          ValueError: naming ``name``: wrong shape or dtype (bool, complex, text), NaN at a present
            joint, coordinates beyond ``checks.MAX_ABS_PIXELS``, or a non-finite output (naming the
            first frames).
        """
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        kp = self._check_input(keypoints_2d, name)
        mask = np.ones(kp.shape[:2], np.float32) if mask is None else np.asarray(mask, np.float32)
        if mask.shape != kp.shape[:2]:
            raise ValueError(f"mask for {name} must have shape {kp.shape[:2]}, got {mask.shape}")
        if not np.isfinite(mask).all():
            raise ValueError(f"mask for {name} contains NaN/inf")
        present = mask > 0
        bad = ~np.isfinite(kp).all(axis=-1) & present
        if bad.any():
            raise ValueError(f"{name}: {int(bad.sum())} joint(s) marked present have NaN/inf "
                             f"coordinates (array of shape {kp.shape}); give them mask 0")
        checks.check_coordinate_range(kp, present, name)
        if not len(kp):
            return {"pose_embedding": np.zeros((0, self.pose_dim), np.float32),
                    "view_embedding": np.zeros((0, self.view_dim), np.float32),
                    "normalized_keypoints": np.zeros((0, 13, 2), np.float32),
                    "has_pose": np.zeros(0, bool)}
        kp = np.where(np.isfinite(kp), kp, 0.0).astype(np.float32)
        outputs = {key: [] for key in OUTPUTS}
        for start in range(0, len(kp), batch_size):
            out = self._fn(keypoints_2d=tf.constant(kp[start:start + batch_size]),
                           keypoint_scores=tf.constant(mask[start:start + batch_size]))
            for key in outputs:
                outputs[key].append(out[key].numpy())
        result = {key: np.concatenate(values) for key, values in outputs.items()}
        self._check_finite(result, name)
        result["has_pose"] = checks.has_pose(kp, present)
        return result

    def embed(self, keypoints, layout="canonical13", scores=None, *, batch_size=4096):
        """Embeds keypoints in any supported layout (``profiles.SOURCE_LAYOUTS``: coco17, openpose25,
        halpe26, mediapipe33, h36m17, ...) with optional per-joint scores (a joint with score <= 0 is
        missing).

        Args:
          keypoints: [N, J, 2] pixels in the native joint order of `layout`.
          layout: the layout's name.
          scores: optional [N, J] confidences or visibilities.
          batch_size: frames per SavedModel call.

        Returns:
          The dict of :meth:`__call__` (``pose_embedding`` [N, P], ``view_embedding`` [N, V],
          ``normalized_keypoints``, ``has_pose``).
        """
        kp13, mask13 = profiles.convert_keypoints(keypoints, layout, scores)
        return self(kp13, mask13, batch_size=batch_size, name=f"keypoints ({layout})")

    @staticmethod
    def _check_input(keypoints_2d, name):
        if isinstance(keypoints_2d, np.ndarray) and keypoints_2d.size == 0:
            kp = keypoints_2d.astype(np.float32) if keypoints_2d.dtype.kind in "iuf" else None
            if kp is None:
                checks.as_keypoints(keypoints_2d, name)  # raises the dtype error
        else:
            kp = checks.as_keypoints(keypoints_2d, name)
        if kp.ndim != 3 or kp.shape[1:] != (profiles.NUM_JOINTS, 2):
            raise ValueError(f"{name} must have shape [N, 13, 2] (canonical joints, pixels), got "
                             f"{kp.shape}")
        return kp

    def _check_finite(self, result, name):
        for key in OUTPUTS:
            finite = np.isfinite(result[key].reshape(len(result[key]), -1)).all(axis=1)
            if not finite.all():
                frames = np.flatnonzero(~finite)
                raise ValueError(
                    f"{name}: the export {self.export_dir} gave non-finite {key} for "
                    f"{len(frames)} of {len(finite)} frame(s) (first: {frames[:5].tolist()}); its "
                    "weights or these inputs are broken")
