"""SavedModel export of a pretrained encoder: raw 2D keypoints in, pose and view embeddings out.

The SavedModel is self-contained: loading it needs TensorFlow only (no import of this package).
Normalisation (:func:`cv_mim.keypoints.normalization.normalize_keypoints_2d`, the one used in training) happens inside.

Signatures (every one returns ``pose_embedding`` [N, P], ``view_embedding`` [N, V] and
``normalized_keypoints`` [N, 13, 2] float32):

=========================  ==========================================================================
``serving_default``        ``keypoints_2d`` float32 [N, 13, 2], pixels (x, y), canonical 13-joint order
``embed_with_scores``      ``keypoints_2d`` [N, 13, 2] and ``keypoint_scores`` [N, 13]; a joint with
                           score <= ``min_keypoint_score`` (recorded in the metadata) is missing
``embed_coco17``           ``keypoints_2d`` [N, 17, 2] COCO order and ``keypoint_scores`` [N, 17]
``embed_h36m17``           ``keypoints_2d`` [N, 17, 2] Human3.6M 17-joint (VideoPose3D) order
``embed_with_scores_``     as ``embed_with_scores`` / ``embed_coco17`` plus ``min_keypoint_score`` []
``threshold``,             float32: the score threshold chosen at call time (the two signatures
``embed_coco17_threshold`` above use the default recorded at export, ``min_keypoint_score`` in the
                           metadata; exports made before these signatures keep working through them)
=========================  ==========================================================================

Missing joints — and, inside the graph, joints with non-finite coordinates — are excluded from the
normalisation statistics and fed to the encoder at the origin (the project's one missing-joint rule).
The export also carries ``metadata()`` (a JSON string: algorithm, checkpoint step, model config,
flags of the pretraining run) and writes the same JSON to ``<export_dir>/cv_mim_export.json``.
"""

import datetime
import json
import logging
import math
import os
import re
import uuid

import numpy as np
import tensorflow as tf

from cv_mim import records
from cv_mim.keypoints import normalization
from cv_mim.keypoints import profiles
from cv_mim.serving import export_ops
from cv_mim.training import checkpoints
from cv_mim.training import validation

log = logging.getLogger("cv_mim.export")


METADATA_FILE = "cv_mim_export.json"


SIGNATURES = ("serving_default", "embed_with_scores", "embed_coco17", "embed_h36m17",
              "embed_with_scores_threshold", "embed_coco17_threshold")


class EmbeddingModule(tf.Module):
    """tf.Module wrapping a frozen encoder (inference mode) with fixed signatures."""

    def __init__(self, encoder, metadata: dict, min_keypoint_score: float = 0.0):
        super().__init__(name="cv_mim_embedding")
        self.encoder = encoder
        self._metadata_json = json.dumps(metadata, sort_keys=True, default=str)
        self._min_score = float(min_keypoint_score)
        self._coco_index = tf.constant(profiles.LAYOUT_TO_CANONICAL["coco17"], tf.int32)
        self._h36m_index = tf.constant(profiles.LAYOUT_TO_CANONICAL["h36m17"], tf.int32)

    def _embed(self, kp13, mask13):
        normalized, _, _ = normalization.normalize_keypoints_2d(kp13, mask13)
        out = self.encoder(normalized, training=False)
        return {"pose_embedding": out["pose_embedding"], "view_embedding": out["view_embedding"],
                "normalized_keypoints": normalized}

    @staticmethod
    def _finite_mask(kp):
        return tf.cast(tf.reduce_all(tf.math.is_finite(kp), axis=-1), tf.float32)

    @tf.function(input_signature=[
        tf.TensorSpec([None, profiles.NUM_JOINTS, 2], tf.float32, name="keypoints_2d")])
    def embed(self, keypoints_2d):
        return self._embed(keypoints_2d, self._finite_mask(keypoints_2d))

    @tf.function(input_signature=[
        tf.TensorSpec([None, profiles.NUM_JOINTS, 2], tf.float32, name="keypoints_2d"),
        tf.TensorSpec([None, profiles.NUM_JOINTS], tf.float32, name="keypoint_scores")])
    def embed_with_scores(self, keypoints_2d, keypoint_scores):
        return self._scored(keypoints_2d, keypoint_scores, self._min_score)

    @tf.function(input_signature=[
        tf.TensorSpec([None, profiles.NUM_JOINTS, 2], tf.float32, name="keypoints_2d"),
        tf.TensorSpec([None, profiles.NUM_JOINTS], tf.float32, name="keypoint_scores"),
        tf.TensorSpec([], tf.float32, name="min_keypoint_score")])
    def embed_with_scores_threshold(self, keypoints_2d, keypoint_scores, min_keypoint_score):
        return self._scored(keypoints_2d, keypoint_scores, min_keypoint_score)

    def _scored(self, kp13, scores13, min_score):
        mask = tf.cast(scores13 > min_score, tf.float32)
        return self._embed(kp13, mask * self._finite_mask(kp13))

    @tf.function(input_signature=[
        tf.TensorSpec([None, 17, 2], tf.float32, name="keypoints_2d"),
        tf.TensorSpec([None, 17], tf.float32, name="keypoint_scores")])
    def embed_coco17(self, keypoints_2d, keypoint_scores):
        return self.embed_coco17_threshold(keypoints_2d, keypoint_scores, self._min_score)

    @tf.function(input_signature=[
        tf.TensorSpec([None, 17, 2], tf.float32, name="keypoints_2d"),
        tf.TensorSpec([None, 17], tf.float32, name="keypoint_scores"),
        tf.TensorSpec([], tf.float32, name="min_keypoint_score")])
    def embed_coco17_threshold(self, keypoints_2d, keypoint_scores, min_keypoint_score):
        kp = tf.gather(keypoints_2d, self._coco_index, axis=1)
        scores = tf.gather(keypoint_scores, self._coco_index, axis=1)
        return self._scored(kp, scores, min_keypoint_score)

    @tf.function(input_signature=[tf.TensorSpec([None, 17, 2], tf.float32, name="keypoints_2d")])
    def embed_h36m17(self, keypoints_2d):
        kp = tf.gather(keypoints_2d, self._h36m_index, axis=1)
        return self._embed(kp, self._finite_mask(kp))

    @tf.function(input_signature=[])
    def metadata(self):
        return tf.constant(self._metadata_json)


# --checkpoint keywords: the newest checkpoint of model_dir, and its best/ checkpoint.
CHECKPOINT_KEYWORDS = ("latest", "best")


def resolve_checkpoint(model_dir, checkpoint):
    """``(path or None, choice)``: ``latest`` (or None) = the newest checkpoint of model_dir (None),
    ``best`` = the checkpoint in ``model_dir/best/`` (pretraining with validation), else the path."""
    if checkpoint in (None, "latest"):
        return None, "latest"
    if checkpoint == "best":
        best_dir = os.path.join(model_dir, validation.BEST_DIR)
        path = tf.train.latest_checkpoint(best_dir) if tf.io.gfile.isdir(best_dir) else None
        if not path:
            raise FileNotFoundError(f"--checkpoint=best: {best_dir} holds no checkpoint (pretrain "
                                    "with validation: --val_subjects or --val_data_3d)")
        return path, "best"
    return checkpoint, "path"


def validation_record(model_dir, choice, step):
    """What the export metadata says of the checkpoint's validation: the best/ record, or the
    validation values pretraining recorded at that step (None when it did not validate there)."""
    if choice == "best":
        best = validation.read_best(model_dir)
        if best is not None and best.get("step") == step:
            return best
    values = validation.read_eval_row(model_dir, step)
    return None if values is None else {"step": step, "validation": values}


def build_metadata(model_dir, config, checkpoint_path, step, min_keypoint_score,
                   checkpoint_choice="latest"):
    flags_path = os.path.join(model_dir, "flags.json")
    flags_record = None
    if tf.io.gfile.exists(flags_path):
        with tf.io.gfile.GFile(flags_path) as f:
            flags_record = json.load(f)
    import dataclasses  # pylint: disable=import-outside-toplevel
    return {
        "format": "cv_mim.export/1",
        "algorithm": config.algorithm,
        "checkpoint": checkpoint_path,
        "checkpoint_step": step,
        "checkpoint_choice": checkpoint_choice,
        "validation": validation_record(model_dir, checkpoint_choice, step),
        "model_config": dataclasses.asdict(config),
        "pretrain_flags": flags_record,
        "min_keypoint_score": min_keypoint_score,
        "signatures": list(SIGNATURES),
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


def _check_checkpoint(model_dir, checkpoint):
    """ValueError naming ``checkpoint`` unless it is a readable checkpoint (a prefix or a folder)."""
    if checkpoint is None:
        return None
    path = tf.train.latest_checkpoint(checkpoint) if tf.io.gfile.isdir(checkpoint) else checkpoint
    if not path or not tf.io.gfile.exists(f"{path}.index"):
        raise FileNotFoundError(f"--checkpoint {checkpoint}: no checkpoint there (expected the "
                                f"prefix of a .index file, e.g. {os.path.join(model_dir, 'ckpt-N')})")
    try:
        tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as error:
        message = str(getattr(error, "message", error)).splitlines()[0]
        raise ValueError(f"--checkpoint {checkpoint}: not a readable checkpoint "
                         f"({type(error).__name__}: {message})") from None
    return path


def _restore(model_dir, checkpoint):
    """``checkpoints.restore_encoder`` with errors naming the checkpoint instead of tracebacks."""
    path = _check_checkpoint(model_dir, checkpoint)
    try:
        return checkpoints.restore_encoder(model_dir, path)
    except (tf.errors.OpError, AssertionError) as error:
        message = getattr(error, "message", str(error)).splitlines()[0]
        raise ValueError(f"{path or model_dir}: the checkpoint does not hold this model_dir's "
                         f"encoder ({type(error).__name__}: {message})") from None


def check_finite_weights(encoder, path):
    """ValueError naming the first non-finite variable (a diverged run must not be exported)."""
    for variable in encoder.weights:
        values = np.asarray(variable.numpy())
        if not np.isfinite(values).all():
            name = getattr(variable, "path", None) or variable.name
            raise ValueError(
                f"{path}: encoder variable {name} has {int((~np.isfinite(values)).sum())} non-finite value(s) of {values.size}; "
                "refusing to export a diverged checkpoint (pick an earlier one with --checkpoint)")


# Temporary export folders: f".{name}.tmp-{pid}-{hex}"; older ones (no pid) are always stale.
_TMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.tmp-(?:(?P<pid>\d+)-)?[0-9a-f]{8}(?:\.old)?$")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temporaries(export_dir):
    """Removes hidden temporary folders of ``export_dir`` left by killed exports; returns them.

    A folder whose writer process is still alive (a concurrent export) is left alone."""
    export_dir = records.absolute(export_dir).rstrip("/")
    parent, name = os.path.split(export_dir)
    removed = []
    if not tf.io.gfile.isdir(parent):
        return removed
    for entry in tf.io.gfile.listdir(parent):
        entry = entry.rstrip("/")  # gfile lists gs:// folders with a trailing slash
        match = _TMP_PATTERN.match(entry)
        if not match or match.group("name") != name:
            continue
        pid = match.group("pid")
        if pid is not None and int(pid) != os.getpid() and _pid_alive(int(pid)):
            continue
        try:
            tf.io.gfile.rmtree(os.path.join(parent, entry))
        except tf.errors.OpError as error:  # removed meanwhile, or not ours to remove
            log.warning("could not remove %s: %s", os.path.join(parent, entry), error)
            continue
        removed.append(os.path.join(parent, entry))
    if removed:
        log.warning("removed %d stale temporary folder(s) of killed exports: %s", len(removed),
                    ", ".join(removed))
    return removed


def _move_tree(src, dst):
    """Renames the folder ``src`` to ``dst``: one atomic rename on a local disk; file by file on a
    URL file system (gs://: a folder rename is a copy per object anyway; ram:// renames only the
    folder's own entry and leaves its files behind)."""
    if "://" not in src:
        tf.io.gfile.rename(src, dst)
        return
    for folder, _, files in list(tf.io.gfile.walk(src)):
        target = dst + folder[len(src):]
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.rename(os.path.join(folder, name), os.path.join(target, name))
    tf.io.gfile.rmtree(src)


def export(model_dir, export_dir, *, checkpoint=None, min_keypoint_score=0.0, overwrite=False):
    """Exports the encoder of ``model_dir`` to a SavedModel at ``export_dir``, atomically.

    ``checkpoint``: None or ``"latest"`` (the newest of model_dir), ``"best"`` (``model_dir/best/``,
    the best validation value of pretraining) or a checkpoint path / folder. The metadata records
    which (``checkpoint_choice``) and its validation values (``validation``, None if none).

    The SavedModel is written to a temporary sibling directory and renamed into place only when
    complete, so a crash never leaves a half-written directory at ``export_dir``; temporaries of
    killed exports are removed by the next export to the same place.

    Returns:
      The metadata dict.

    Raises:
      FileExistsError: ``export_dir`` exists and not ``overwrite``.
      FileNotFoundError / ValueError: no or a bad checkpoint; non-finite weights; a bad
        ``min_keypoint_score``.
    """
    try:
        min_keypoint_score = float(min_keypoint_score)
    except (TypeError, ValueError):
        min_keypoint_score = math.nan
    if not math.isfinite(min_keypoint_score):
        raise ValueError(f"--min_keypoint_score must be a finite number, got {min_keypoint_score!r}")
    if tf.io.gfile.exists(export_dir) and not overwrite:
        raise FileExistsError(f"export_dir {export_dir} exists; pass overwrite=True (--overwrite)")
    checkpoint, choice = resolve_checkpoint(model_dir, checkpoint)
    encoder, config, path, step = _restore(model_dir, checkpoint)
    check_finite_weights(encoder, path)
    metadata = build_metadata(model_dir, config, path, step, min_keypoint_score, choice)
    module = EmbeddingModule(encoder, metadata, min_keypoint_score)
    export_dir = records.absolute(export_dir)  # gs://… paths are absolute already
    parent = os.path.dirname(export_dir)
    tf.io.gfile.makedirs(parent)
    clean_stale_temporaries(export_dir)
    tmp = os.path.join(parent, f".{os.path.basename(export_dir)}.tmp-{os.getpid()}-"
                               f"{uuid.uuid4().hex[:8]}")
    try:
        signatures = {
            "serving_default": module.embed,
            "embed_with_scores": module.embed_with_scores,
            "embed_coco17": module.embed_coco17,
            "embed_h36m17": module.embed_h36m17,
            "embed_with_scores_threshold": module.embed_with_scores_threshold,
            "embed_coco17_threshold": module.embed_coco17_threshold,
        }
        tf.saved_model.save(module, tmp, signatures=signatures)
        # tf.io.gfile throughout, so gs:// export dirs work end to end.
        with tf.io.gfile.GFile(os.path.join(tmp, METADATA_FILE), "w") as f:
            f.write(json.dumps(metadata, indent=2, sort_keys=True, default=str))
        if tf.io.gfile.exists(export_dir):
            old = f"{tmp}.old"
            _move_tree(export_dir, old)
            _move_tree(tmp, export_dir)
            tf.io.gfile.rmtree(old)
        else:
            _move_tree(tmp, export_dir)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.rmtree(tmp)
    log.info("exported %s (step %d) to %s", config.algorithm, step, export_dir)
    return metadata


def load_export(export_dir, *, trust_export=False):
    """Loads an export with TensorFlow; returns (loaded module, metadata dict).

    Its ops are checked against the allow-list (:func:`cv_mim.serving.export_ops.check_export_ops`)
    *before* ``tf.saved_model.load``, unless ``trust_export``."""
    if not tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{export_dir} is not a SavedModel directory (no saved_model.pb)")
    export_ops.check_export_ops(export_dir, trust_export=trust_export)
    loaded = tf.saved_model.load(export_dir)
    missing = [s for s in ("embed_with_scores",) if s not in loaded.signatures]
    if missing or not hasattr(loaded, "metadata"):
        raise ValueError(f"{export_dir}: not a cv_mim.export SavedModel (no metadata() or "
                         f"signature(s) {missing or ['metadata']})")
    try:
        metadata = json.loads(loaded.metadata().numpy().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, AttributeError) as error:
        raise ValueError(f"{export_dir}: unreadable export metadata ({error})") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{export_dir}: export metadata must be a JSON object")
    return loaded, metadata
