"""tf.data input pipelines for pretraining: positive pairs of one 3D pose seen from two views.

A positive pair is the same frame seen by two different real cameras (all ordered camera pairs, sampled
uniformly), and each of its two views is independently replaced, with probability 0.5, by the
projection of the frame's own 3D pose through a random virtual camera — the paper's "even mixture of
detected and projected 2D keypoints" (§4.2; fact sheet §6.4–6.5). Both views are then normalised by
:func:`cv_mim.keypoints.normalization.normalize_keypoints_2d`, the one normalisation used everywhere.

The pipeline never materialises pairs: it keeps one array of 2D keypoints per (frame, camera) and one
normalised 3D pose per frame, and each batch is drawn by index with a counter-based stateless RNG — batch
``b`` is a pure function of ``(seed, b)``. A run resumed at step ``s`` therefore continues with exactly
the batches it would have seen, and the sequence of global batches does not depend on the number of
replicas.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from cv_mim.keypoints import augmentation as augmentation_mod
from cv_mim.keypoints import normalization
from cv_mim.keypoints import profiles

AUGMENTATIONS = ("mixed", "none", "projection")


@dataclasses.dataclass
class PairSource:
    """What the pair pipeline samples from.

    Attributes:
      keypoints_2d: (N, C, 13, 2) float32 2D keypoints of every frame in every real camera (pixels or
        any consistent unit; non-finite entries count as missing joints).
      keypoints_3d: (N, 13, 3) float32 normalised 3D poses (world z-up, canonical joint order), the
        input of the camera augmentation; None when no 3D is available (augmentation must be "none").
    """

    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray = None

    def __post_init__(self):
        kp2d = np.asarray(self.keypoints_2d)
        if kp2d.ndim != 4 or kp2d.shape[2:] != (profiles.NUM_JOINTS, 2):
            raise ValueError(f"PairSource.keypoints_2d must have shape (N, C, 13, 2), got {kp2d.shape}")
        if kp2d.shape[0] == 0:
            raise ValueError("PairSource.keypoints_2d holds no frames")
        if self.keypoints_3d is not None:
            kp3d = np.asarray(self.keypoints_3d)
            if kp3d.shape != (kp2d.shape[0], profiles.NUM_JOINTS, 3):
                raise ValueError(f"PairSource.keypoints_3d must have shape ({kp2d.shape[0]}, 13, 3), "
                                 f"got {kp3d.shape}")
            if not np.all(np.isfinite(kp3d)):
                raise ValueError("PairSource.keypoints_3d contains NaN or inf")

    @property
    def num_frames(self):
        return int(self.keypoints_2d.shape[0])

    @property
    def num_cameras(self):
        return int(self.keypoints_2d.shape[1])


MIN_PROJECTION_DEPTH = 0.5


def make_pair_dataset(source: PairSource, *, batch_size: int, seed: int, augmentation="mixed",
                      projection_probability=0.5, start_batch=0, num_batches=None,
                      min_projection_depth=MIN_PROJECTION_DEPTH, keypoint_dropout_rate=0.0,
                      projection_depth=augmentation_mod.DEFAULT_DEPTH,
                      num_parallel_calls=tf.data.AUTOTUNE):
    """Batches of normalised positive pairs.

    Args:
      source: the frames to sample from.
      batch_size: pairs per (global) batch.
      seed: base seed; batch b depends only on (seed, b).
      augmentation: ``"mixed"`` (paper: each view independently real or projected with probability
        ``projection_probability``), ``"none"`` (real cameras only) or ``"projection"`` (both views from
        random virtual cameras).
      min_projection_depth: a projected joint closer than this to the virtual camera plane (in
        normalised units; by default the camera is 2 units from the hip) is treated as unseen (missing). The
        paper's camera ranges occasionally put a raised hand at or behind the camera plane, where the
        perspective division explodes (the authors clamp the divisor at 1e-12, which yields values
        up to 1e12); one such batch ruins BatchNorm's moving statistics.
      keypoint_dropout_rate: probability that a joint of a view is marked missing (independently
        per joint and view; missing joints are set to 0 by the normalisation). Not in the paper or
        the authors' CV-MIM code (default 0 = off, and then the batches are exactly those without
        the option); it trains an encoder for inputs with missing detections.
      projection_depth: distance of the virtual cameras from the hip, in normalised units (spine
        length 1): a number (default 2, the authors' constant) or a (low, high) range, one distance
        drawn per projected view (the authors' code has such a range, unset). The paper is silent on
        it; real Human3.6M cameras stand about 10 units away.
      start_batch: index of the first batch (the resumed step).
      num_batches: stop after this many batches (default: endless).
    Returns:
      tf.data.Dataset of ``(anchor, positive)``, each [batch_size, 13, 2] float32 normalised.
    """
    # Longer than a screen on purpose: One tf.data graph; its stateless seeds are derived in one
    # place so a batch is a function of (seed, batch index) alone.
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if augmentation != "none" and source.keypoints_3d is None:
        raise ValueError(f"augmentation={augmentation!r} needs 3D poses; this source has none "
                         "(use augmentation='none')")
    if augmentation != "projection" and source.num_cameras < 2:
        raise ValueError(f"pairs of real views need at least 2 cameras, the source has "
                         f"{source.num_cameras} (use augmentation='projection')")
    if not 0.0 <= projection_probability <= 1.0:
        raise ValueError(f"projection_probability must be in [0, 1], got {projection_probability}")
    if not 0.0 <= keypoint_dropout_rate < 1.0:
        raise ValueError(f"keypoint_dropout_rate must be in [0, 1), got {keypoint_dropout_rate}")
    augmentation_mod.check_depth_range(projection_depth)
    if augmentation == "none":
        projection_probability = 0.0
    elif augmentation == "projection":
        projection_probability = 1.0

    num_frames, num_cameras = source.num_frames, source.num_cameras
    kp2d = tf.constant(source.keypoints_2d, tf.float32)
    kp3d = (tf.constant(source.keypoints_3d, tf.float32) if source.keypoints_3d is not None
            else None)
    base = tf.constant([int(seed), 0x5EED], tf.int64)

    def make_batch(index):
        seeds = tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(base, index), 6)
        frame = tf.random.stateless_uniform([batch_size], seeds[0], 0, num_frames, tf.int64)
        if num_cameras >= 2:
            cam_a = tf.random.stateless_uniform([batch_size], seeds[1], 0, num_cameras, tf.int64)
            # A different camera, uniformly: every ordered pair (i, j), i != j, is equally likely.
            offset = tf.random.stateless_uniform([batch_size], seeds[2], 1, num_cameras, tf.int64)
            cam_p = (cam_a + offset) % num_cameras
            real_a = tf.gather_nd(kp2d, tf.stack([frame, cam_a], axis=1))
            real_p = tf.gather_nd(kp2d, tf.stack([frame, cam_p], axis=1))
        else:
            real_a = real_p = tf.zeros([batch_size, profiles.NUM_JOINTS, 2])
        views = []
        for i, (real, proj_seed, mix_seed) in enumerate(((real_a, seeds[3], seeds[4]),
                                                         (real_p, seeds[5], None))):
            if projection_probability > 0.0:
                pose3d = tf.gather(kp3d, frame)
                projected, joint_depth = augmentation_mod.random_camera_projection(
                    pose3d, proj_seed, depth=projection_depth, return_depth=True)
                seen = joint_depth >= min_projection_depth
                projected = tf.where(seen[..., None], projected, tf.constant(np.nan, tf.float32))
                if projection_probability >= 1.0:
                    use_projection = tf.ones([batch_size], tf.bool)
                else:
                    mix = (tf.random.stateless_uniform([batch_size], mix_seed)
                           if mix_seed is not None else
                           tf.random.stateless_uniform(
                               [batch_size], tf.random.experimental.stateless_fold_in(proj_seed, 1)))
                    use_projection = mix < projection_probability
                view = tf.where(use_projection[:, None, None], projected, real)
            else:
                view = real
            if keypoint_dropout_rate > 0.0:
                # Its own stream (folded from the step seed), so the other draws do not change.
                drop_seed = tf.random.experimental.stateless_fold_in(seeds[0], 0xD0 + i)
                dropped = tf.random.stateless_uniform(
                    [batch_size, profiles.NUM_JOINTS], drop_seed) < keypoint_dropout_rate
                view = tf.where(dropped[..., None], tf.constant(np.nan, tf.float32), view)
            mask = tf.cast(tf.reduce_all(tf.math.is_finite(view), axis=-1), tf.float32)
            normalized, _, _ = normalization.normalize_keypoints_2d(view, mask)
            views.append(normalized)
        return views[0], views[1]

    stop = np.iinfo(np.int64).max if num_batches is None else int(start_batch) + int(num_batches)
    dataset = tf.data.Dataset.range(int(start_batch), stop)
    dataset = dataset.map(make_batch, num_parallel_calls=num_parallel_calls, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
