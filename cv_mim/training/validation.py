"""Validation during pretraining: cross-view retrieval and the cross-view MI estimate on held-out poses,
and the ``best/`` checkpoint kept by one of them.

Every ``val_every`` steps (and at the last step of a run) the encoder embeds, in inference mode (no
dropout, BatchNorm's moving statistics), every camera's 2D keypoints of a small held-out
:class:`ValidationSet` and reports

* ``retrieval/hit1_pmpjpe`` — cross-view retrieval Hit@1 of z_p with the Pr-VIPE criterion (the nearest
  frame of the other camera has P-MPJPE ≤ 0.1 to the query's normalised 3D pose, paper §4.5), averaged
  over every ordered camera pair; the numbers of ``python -m cv_mim.retrieval`` (the same numpy core,
  :mod:`cv_mim.keypoints.retrieval_metrics`), restricted to z_p and k = 1;
* ``retrieval/hit1_exact`` — the same with the same-frame criterion;
* ``cross_view_mi`` — −L_MI(z_p^i; z_p^j) of Eq. 6 (the estimator of ``config.mi_measure``), the pairs
  being the same frame seen by cameras i and j, every other frame of the set a negative, averaged over
  the ordered camera pairs: the training monitor ``metrics/cross_view_mi`` on held-out poses (the set's
  neighbouring frames are near-duplicates, so it reads lower than the training batches' value).

and two numbers to drive down (monitors; lower is better, so they cannot choose ``best/``):

* ``view_predictability`` — z_p's view predictability: how often a linear probe names the camera of a
  held-out frame from its z_p (:func:`cv_mim.keypoints.probe.sequence_camera_probe`, blocks of
  :data:`~cv_mim.keypoints.probe.FRAME_BLOCK` consecutive rows of a sequence held out together, split
  seed 0): the retrieval report's number; chance is 1 / C for a view-invariant z_p;
* ``cross_view_discrepancy`` — :func:`cv_mim.losses.cross_view_discrepancy` of every ordered camera
  pair's z_p, averaged: the share of z_p's spread by which two cameras' embeddings of one frame
  differ (0 = identical).

Validation reads the weights and writes nothing into them, and it draws no random numbers: training is
bit-identical with and without it (tests/test_validation.py).

``model_dir/best/`` holds one checkpoint (the full training checkpoint, same object names) of the step
with the highest value of the chosen metric so far, and ``best/best.json`` (step, metric, value, every
metric of that step). A resumed run restores the record, so the best is never reset by a restart; a
record past the restored step (written after the last checkpoint of an interrupted run) is dropped like
the metrics rows of those steps — the resumed run repeats those steps and their validations.
"""

import dataclasses
import json
import logging
import math
import os
import time

import numpy as np
import tensorflow as tf

from cv_mim import losses
from cv_mim import records
from cv_mim.keypoints import normalization
from cv_mim.keypoints import probe
from cv_mim.keypoints import retrieval_metrics
from cv_mim.training import checkpoints
from cv_mim.training import summaries

log = logging.getLogger("cv_mim.pretrain")

# The validation metrics (the one list: flag choices, TensorBoard tags ``eval/<name>``, rows).
METRIC_HELP = {
    "retrieval/hit1_pmpjpe": "cross-view retrieval Hit@1 of z_p, P-MPJPE <= 0.1 criterion (Pr-VIPE)",
    "retrieval/hit1_exact": "cross-view retrieval Hit@1 of z_p, same-frame criterion",
    "cross_view_mi": "cross-view MI estimate -L_MI(z_p^i; z_p^j) (Eq. 6) on validation pairs",
}
METRICS = tuple(METRIC_HELP)
DEFAULT_METRIC = METRICS[0]
# Reported with the metrics, lower is better: not a --val_metric choice.
MONITOR_HELP = {
    "view_predictability": "z_p's camera named by a linear probe on held-out frames (chance 1/C; "
                           "the number to drive down)",
    "cross_view_discrepancy": "share of z_p's spread by which two cameras' embeddings of a frame "
                              "differ (0 = identical)",
}
REPORTED = METRICS + tuple(MONITOR_HELP)
THRESHOLD = 0.1  # P-MPJPE criterion on normalised poses (Pr-VIPE [48])
TAG_PREFIX = "eval/"
BEST_DIR = "best"
BEST_FILE = "best.json"


@dataclasses.dataclass
class ValidationSet:
    """Held-out multi-view frames: ``keypoints_2d`` [N, C, 13, 2] (pixels; non-finite = missing),
    ``poses_3d`` [N, 13, 3] normalised canonical 3D poses, ``camera_ids`` C names, ``description``
    (where they come from, for the logs and the run records), ``sequences`` [N] the sequence of each
    row (consecutive rows of one sequence are consecutive frames; None = one sequence)."""

    keypoints_2d: np.ndarray
    poses_3d: np.ndarray
    camera_ids: list
    description: str = ""
    sequences: np.ndarray | None = None

    def __post_init__(self):
        kp = np.asarray(self.keypoints_2d)
        if kp.ndim != 4 or kp.shape[2:] != (13, 2) or kp.shape[1] < 2 or kp.shape[0] < 2:
            raise ValueError(f"validation needs >= 2 frames seen by >= 2 cameras, [N, C, 13, 2] 2D "
                             f"keypoints; got shape {kp.shape} ({self.description})")
        if np.asarray(self.poses_3d).shape != (kp.shape[0], 13, 3):
            raise ValueError(f"validation 3D poses must be [{kp.shape[0]}, 13, 3], got "
                             f"{np.asarray(self.poses_3d).shape}")
        if self.sequences is not None and np.shape(self.sequences) != (kp.shape[0],):
            raise ValueError(f"validation sequences must be [{kp.shape[0]}], got "
                             f"{np.shape(self.sequences)}")


def stride_index(n, max_frames):
    """The rows kept of ``n``: every s-th, s the smallest stride that leaves at most ``max_frames``
    (0 = all)."""
    stride = 1 if not max_frames or n <= max_frames else math.ceil(n / max_frames)
    return np.arange(0, n, stride)


def _embed(encoder, keypoints_2d, batch_size):
    """z_p [N, P] float32 (as the export returns it) of one camera's 2D keypoints; the encoder
    in inference mode."""
    out = []
    for s in range(0, len(keypoints_2d), batch_size):
        kp = tf.constant(keypoints_2d[s:s + batch_size], tf.float32)
        mask = tf.cast(tf.reduce_all(tf.math.is_finite(kp), axis=-1), tf.float32)
        normalized, _, _ = normalization.normalize_keypoints_2d(kp, mask)
        out.append(tf.cast(encoder(normalized, training=False)["pose_embedding"], tf.float32))
    return tf.concat(out, axis=0).numpy()


def evaluate(encoder, data: ValidationSet, *, mi_measure="jsd", batch_size=1024):
    """``{name: value}`` for every name of :data:`REPORTED` (see the module docstring); a set too
    short to hold out two blocks of frames gives ``view_predictability`` NaN."""
    pose = np.stack([_embed(encoder, data.keypoints_2d[:, c], batch_size)
                     for c in range(len(data.camera_ids))])  # -> [C, N, P]
    mean, _, _ = retrieval_metrics.cross_view_hits(pose, data.poses_3d, threshold=THRESHOLD,
                                                   ks=(1,))
    mi = [-float(losses.fenchel_dual_loss(tf.constant(pose[i]), tf.constant(pose[j]), mi_measure))
          for i in range(len(pose)) for j in range(len(pose)) if i != j]
    try:
        predictability = probe.sequence_camera_probe(pose, data.sequences)["accuracy"]
    except ValueError as error:  # fewer than two blocks of frames: no held-out split
        log.warning("validation: no view predictability (%s)", error)
        predictability = float("nan")
    return {"retrieval/hit1_pmpjpe": mean["pmpjpe"]["1"], "retrieval/hit1_exact": mean["exact"]["1"],
            "cross_view_mi": float(np.mean(mi)), "view_predictability": predictability,
            "cross_view_discrepancy": camera_pair_discrepancy(pose)}


def camera_pair_discrepancy(per_camera):
    """:func:`cv_mim.losses.cross_view_discrepancy` of [C, N, D] per-camera features, averaged over
    the ordered camera pairs."""
    c = len(per_camera)
    return float(np.mean([float(losses.cross_view_discrepancy(per_camera[i], per_camera[j]))
                          for i in range(c) for j in range(c) if i != j]))


def read_best(model_dir):
    """The ``best/best.json`` record of ``model_dir`` (a dict), or None."""
    path = os.path.join(model_dir, BEST_DIR, BEST_FILE)
    if not tf.io.gfile.exists(path):
        return None
    try:
        with tf.io.gfile.GFile(path) as f:
            record = json.load(f)
    except ValueError:
        log.warning("%s is unreadable; the best checkpoint starts afresh", path)
        return None
    return record if isinstance(record, dict) else None


def read_eval_row(model_dir, step):
    """The validation values ``{metric: value}`` recorded in metrics.jsonl at ``step``, or None."""
    path = os.path.join(model_dir, summaries.METRICS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    found = None
    with tf.io.gfile.GFile(path) as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("step") == step and any(
                    k.startswith(TAG_PREFIX) for k in row):
                found = {k[len(TAG_PREFIX):]: v for k, v in row.items() if k.startswith(TAG_PREFIX)}
    return found


class BestCheckpoint:
    """Keeps ``model_dir/best/``: the checkpoint of the highest finite ``metric`` so far.

    Every worker saves (saving is collective under multi-worker training); only the chief writes into
    ``model_dir``, the others into their temporary ``write_dir``.
    """

    def __init__(self, checkpoint, step_var, *, model_dir, write_dir, is_chief, metric, start):
        if metric not in METRICS:
            raise ValueError(f"val_metric must be one of {METRICS}, got {metric!r}")
        self.metric, self.is_chief = metric, is_chief
        self.model_dir = model_dir
        self.manager = tf.train.CheckpointManager(checkpoint, os.path.join(write_dir, BEST_DIR),
                                                  max_to_keep=1, step_counter=step_var)
        self.record = self._restored_record(start)

    def _restored_record(self, start):
        record = read_best(self.model_dir)
        if record is None:
            return None
        if record.get("metric") != self.metric:
            log.info("best checkpoint: was chosen by %s, this run chooses by %s; starts afresh",
                     record.get("metric"), self.metric)
            return None
        if not isinstance(record.get("step"), int) or record["step"] > start:
            log.info("best checkpoint: its step %s is past the restored step %d (its metrics rows "
                     "were dropped too); starts afresh", record.get("step"), start)
            return None
        log.info("best checkpoint: %s = %.4g at step %d (restored)", self.metric, record["value"],
                 record["step"])
        return record

    def update(self, step, values, variables):
        """Saves the checkpoint of ``step`` if ``values[metric]`` is finite and beats the best;
        returns whether it did."""
        value = values[self.metric]
        if not math.isfinite(value) or (self.record is not None and value <= self.record["value"]):
            return False
        try:
            path = checkpoints.save_if_finite(self.manager, variables, step)
        except checkpoints.NonFiniteWeightsError as err:
            log.warning("best checkpoint not saved: %s", err)
            return False
        self.record = {"step": int(step), "metric": self.metric, "value": float(value),
                       "checkpoint": os.path.join(BEST_DIR, os.path.basename(path)),
                       "validation": dict(values)}
        if self.is_chief:
            records.write_json(os.path.join(self.model_dir, BEST_DIR, BEST_FILE), self.record)
        return True


class Validator:
    """What the loop calls every ``val_every`` steps: evaluate, record, keep the best, log a line."""

    def __init__(self, data: ValidationSet, best: BestCheckpoint, *, mi_measure, writer,
                 model_dir, is_chief):
        self.data, self.best, self.mi_measure = data, best, mi_measure
        self.writer, self.model_dir, self.is_chief = writer, model_dir, is_chief
        self.last = None

    def __call__(self, step, encoder, variables):
        t0 = time.time()
        values = evaluate(encoder, self.data, mi_measure=self.mi_measure)
        improved = self.best.update(step, values, variables)
        if self.is_chief:
            summaries.append_metrics(self.model_dir, step,  # NaN → null (strict JSON)
                                     {TAG_PREFIX + k: records.jsonable(v) for k, v in values.items()})
            with self.writer.as_default(step=step):
                for name, value in values.items():
                    summaries.write_scalar(TAG_PREFIX + name, value, step)
            self.writer.flush()
        self.last = dict(values, step=int(step))
        best = self.best.record
        log.info("validation at step %d: Hit@1 (P-MPJPE <= %g) %.3f | Hit@1 (same frame) %.3f | "
                 "cross-view MI %.4g | z_p view predictability %.3f (chance %.3f), cross-view "
                 "discrepancy %.3f | %d frames x %d cameras, %.1f s | %s", step, THRESHOLD,
                 values["retrieval/hit1_pmpjpe"], values["retrieval/hit1_exact"],
                 values["cross_view_mi"], values["view_predictability"],
                 1 / len(self.data.camera_ids), values["cross_view_discrepancy"],
                 len(self.data.poses_3d), len(self.data.camera_ids),
                 time.time() - t0,
                 f"new best {self.best.metric}" if improved else
                 (f"best {best['value']:.4g} at step {best['step']}" if best else "no best yet"))
        return values
