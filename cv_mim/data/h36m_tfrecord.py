"""The authors' Human3.6M tf.Example TFRecord layout (official-code fact sheet §6.1): reader and writer.

Each record (a ``tf.train.Example``) holds ``num_instances`` = 2 instances (anchor and positive: the
same H36M frame seen by two cameras); every feature has one value per instance:

* ``image/height``, ``image/width`` (int64): the image size of each instance.
* per 2D keypoint NAME of `KEYPOINT_NAMES_2D` (the authors' LEGACY_2DCOCO13 profile, which is our
  canonical 13-joint order, H36M head-top standing in for NOSE_TIP):
  ``image/object/part/NAME/center/y``, ``.../center/x`` (float, **normalised to [0, 1]** by image
  height / width) and ``image/object/part/NAME/score`` (float).
* per 3D keypoint NAME of `KEYPOINT_NAMES_3D` (the authors' LEGACY_3DH36M17 profile, names exactly as
  theirs, e.g. ``Neck/Nose`` containing a slash): ``image/object/part_3d/NAME/center/y``,
  ``.../center/x``, ``.../center/z`` (float): raw Human3.6M **world** coordinates in **millimetres**
  (the authors' generator copies X, Y, Z of the 3d-pose-baseline H5 files into center/x, /y, /z).
  Both instances carry the same world pose.

The reader returns our conventions: 2D in pixels, (x, y) order; 3D in metres in the VideoPose3D
17-joint order (`LEGACY17_TO_H36M17` reorders). ``unit_3d`` states the stored 3D unit ('mm' as the
authors; 'm'; or 'auto' = the median rule of `cv_mim.data.h36m.load_positions_3d`).
"""
from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np

from cv_mim.data import h36m as h36m_lib

NUM_INSTANCES = 2
KEY_IMAGE_HEIGHT = "image/height"
KEY_IMAGE_WIDTH = "image/width"
PREFIX_2D = "image/object/part/"
PREFIX_3D = "image/object/part_3d/"

# LEGACY_2DCOCO13 feature names, in our canonical order (head, l/r shoulder, elbow, wrist, hip, knee,
# ankle).
KEYPOINT_NAMES_2D = (
    "NOSE_TIP", "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST",
    "RIGHT_WRIST", "LEFT_HIP", "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE")
# LEGACY_3DH36M17 feature names, in the authors' order.
KEYPOINT_NAMES_3D = (
    "Hip", "Head", "Neck/Nose", "Thorax", "LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist",
    "RWrist", "Spine", "LHip", "RHip", "LKnee", "RKnee", "LFoot", "RFoot")
# For each VideoPose3D-17 joint (Hip, RHip, RKnee, RFoot, LHip, LKnee, LFoot, Spine, Thorax,
# Neck/Nose, Head, LShoulder, LElbow, LWrist, RShoulder, RElbow, RWrist) its index in KEYPOINT_NAMES_3D.
LEGACY17_TO_H36M17 = (0, 12, 14, 16, 11, 13, 15, 10, 3, 2, 1, 4, 6, 8, 5, 7, 9)
H36M17_TO_LEGACY17 = tuple(int(i) for i in np.argsort(LEGACY17_TO_H36M17))


def feature_keys(keypoint_names_2d: Sequence[str] = KEYPOINT_NAMES_2D,
                 keypoint_names_3d: Sequence[str] = KEYPOINT_NAMES_3D) -> dict[str, list[str]]:
    """Feature keys by group: 'size', '2d_y', '2d_x', '2d_score', '3d_x', '3d_y', '3d_z'."""
    return {
        "size": [KEY_IMAGE_HEIGHT, KEY_IMAGE_WIDTH],
        "2d_y": [f"{PREFIX_2D}{n}/center/y" for n in keypoint_names_2d],
        "2d_x": [f"{PREFIX_2D}{n}/center/x" for n in keypoint_names_2d],
        "2d_score": [f"{PREFIX_2D}{n}/score" for n in keypoint_names_2d],
        "3d_x": [f"{PREFIX_3D}{n}/center/x" for n in keypoint_names_3d],
        "3d_y": [f"{PREFIX_3D}{n}/center/y" for n in keypoint_names_3d],
        "3d_z": [f"{PREFIX_3D}{n}/center/z" for n in keypoint_names_3d],
    }


def parse_authors_examples(serialized, num_instances: int = NUM_INSTANCES,
                           keypoint_names_2d: Sequence[str] = KEYPOINT_NAMES_2D,
                           keypoint_names_3d: Sequence[str] = KEYPOINT_NAMES_3D):
    """Parses a batch of serialized records into raw tensors (usable in ``tf.data.Dataset.map``).

    Args:
      serialized: [B] string tensor of serialized ``tf.train.Example``.
      num_instances: instances per record (2).
      keypoint_names_2d, keypoint_names_3d: feature names (defaults: the authors' profiles).

    Returns:
      dict of tensors, stored conventions kept: 'image_sizes' [B, I, 2] int64 (height, width),
      'keypoints_2d_normalized_yx' [B, I, 13, 2] float32 in [0, 1] (y, x), 'scores' [B, I, 13],
      'keypoints_3d_legacy_xyz' [B, I, 17, 3] float32 (stored unit, authors' joint order, (x, y, z)).
    """
    import tensorflow as tf

    keys = feature_keys(keypoint_names_2d, keypoint_names_3d)
    spec = {k: tf.io.FixedLenFeature([num_instances], tf.int64) for k in keys["size"]}
    for group in ("2d_y", "2d_x", "2d_score", "3d_x", "3d_y", "3d_z"):
        spec.update({k: tf.io.FixedLenFeature([num_instances], tf.float32) for k in keys[group]})
    parsed = tf.io.parse_example(serialized, spec)

    def stack(group):  # [B, I, J]
        return tf.stack([parsed[k] for k in keys[group]], axis=-1)

    return {
        "image_sizes": tf.stack([parsed[KEY_IMAGE_HEIGHT], parsed[KEY_IMAGE_WIDTH]], axis=-1),
        "keypoints_2d_normalized_yx": tf.stack([stack("2d_y"), stack("2d_x")], axis=-1),
        "scores": stack("2d_score"),
        "keypoints_3d_legacy_xyz": tf.stack([stack("3d_x"), stack("3d_y"), stack("3d_z")], axis=-1),
    }


def _clean_tf_message(message: str) -> str:
    """TensorFlow's error text without graph/node/op decorations."""
    message = re.sub(r"\{\{[^}]*\}\}|\[\[[^\]]*\]\]|\[Op:[^\]]*\]( name: \S*)?", "", message)
    message = re.sub(r"Error in user-defined function passed to .*? transformation with iterator: "
                     r"\S+: ", "", message)
    return " ".join(message.split()).strip()


def _list_files(file_pattern) -> list[str]:
    import tensorflow as tf

    patterns = [file_pattern] if isinstance(file_pattern, (str, os.PathLike)) else list(file_pattern)
    files = []
    for pattern in patterns:
        pattern = os.fspath(pattern)
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise FileNotFoundError(f"No TFRecord file matches {pattern}")
        files.extend(matched)
    return files


def read_authors_tfrecords(file_pattern, *, num_instances: int = NUM_INSTANCES, unit_3d: str = "mm",
                           keypoint_names_2d: Sequence[str] = KEYPOINT_NAMES_2D,
                           keypoint_names_3d: Sequence[str] = KEYPOINT_NAMES_3D,
                           batch_size: int = 4096) -> dict[str, np.ndarray]:
    """Reads every record of the files matching `file_pattern` (sorted by file name, file order kept).

    Args:
      file_pattern: a glob pattern or path, or a list of them.
      num_instances: instances per record (2 = anchor, positive).
      unit_3d: unit of the stored 3D: 'mm' (the authors' files), 'm', or 'auto' (metres when the
        median absolute coordinate is < 20, else millimetres).
      keypoint_names_2d, keypoint_names_3d: feature names (defaults: the authors' profiles).
      batch_size: records parsed per step (memory only).

    Returns:
      dict of numpy arrays (N records):
        'keypoints_2d' (N, I, 13, 2) float32 pixels, (x, y), canonical 13-joint order;
        'scores' (N, I, 13) float32;
        'image_sizes' (N, I, 2) int64 (height, width);
        'keypoints_3d' (N, 17, 3) float32 metres, world, VideoPose3D 17-joint order (instance 0's; the
          authors write the same world pose for both instances);
        'keypoints_3d_instances' (N, I, 17, 3) the same per instance.

    Raises:
      FileNotFoundError: nothing matches the pattern.
      ValueError: a corrupt file or a record lacking a key / with the wrong value count (naming the
        file and TensorFlow's message, which names the key); bad `unit_3d`.
    """
    import tensorflow as tf

    if unit_3d not in ("mm", "m", "auto"):
        raise ValueError(f"unit_3d must be 'mm', 'm' or 'auto', got {unit_3d!r}")
    chunks = []
    for path in _list_files(file_pattern):
        dataset = tf.data.TFRecordDataset(path).batch(batch_size).map(
            lambda s: parse_authors_examples(s, num_instances, keypoint_names_2d, keypoint_names_3d))
        try:
            for batch in dataset:
                chunks.append({k: v.numpy() for k, v in batch.items()})
        except tf.errors.DataLossError as error:
            raise ValueError(f"{path}: corrupt TFRecord file ({_clean_tf_message(error.message)})") \
                from None
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(f"{path}: record does not match the authors' layout "
                             f"({_clean_tf_message(error.message)})") from None
    if chunks:
        raw = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    else:
        raw = {"image_sizes": np.zeros((0, num_instances, 2), np.int64),
               "keypoints_2d_normalized_yx": np.zeros((0, num_instances, len(keypoint_names_2d), 2),
                                                      np.float32),
               "scores": np.zeros((0, num_instances, len(keypoint_names_2d)), np.float32),
               "keypoints_3d_legacy_xyz": np.zeros((0, num_instances, len(keypoint_names_3d), 3),
                                                   np.float32)}
    sizes = raw["image_sizes"]
    # Denormalise: (y * height, x * width), then swap to our (x, y) order.
    yx = raw["keypoints_2d_normalized_yx"].astype(np.float64)
    pixels = np.stack([yx[..., 1] * sizes[..., None, 1], yx[..., 0] * sizes[..., None, 0]], axis=-1)
    legacy = raw["keypoints_3d_legacy_xyz"].astype(np.float64)
    if unit_3d == "auto":
        unit_3d = "m" if legacy.size and np.median(np.abs(legacy)) < \
            h36m_lib.AUTO_UNIT_MEDIAN_THRESHOLD else "mm"
    metres = legacy * (1e-3 if unit_3d == "mm" else 1.0)
    if len(keypoint_names_3d) == len(LEGACY17_TO_H36M17):
        metres = metres[..., list(LEGACY17_TO_H36M17), :]
    instances = metres.astype(np.float32)
    return {
        "keypoints_2d": pixels.astype(np.float32),
        "scores": raw["scores"].astype(np.float32),
        "image_sizes": sizes.astype(np.int64),
        "keypoints_3d": instances[:, 0],
        "keypoints_3d_instances": instances,
    }


def _checked(array, name, shape):
    array = np.asarray(array, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf (shape {array.shape})")
    return array


def write_authors_tfrecords(path, keypoints_2d, keypoints_3d, image_sizes, scores=None, *,
                            unit_3d: str = "mm",
                            keypoint_names_2d: Sequence[str] = KEYPOINT_NAMES_2D,
                            keypoint_names_3d: Sequence[str] = KEYPOINT_NAMES_3D) -> int:
    """Writes records in the authors' layout (the inverse of `read_authors_tfrecords`).

    Args:
      path: output TFRecord file.
      keypoints_2d: (N, I, 13, 2) pixels, (x, y), canonical order.
      keypoints_3d: (N, 17, 3) (same pose for every instance, as the authors) or (N, I, 17, 3);
        metres, world, VideoPose3D 17-joint order.
      image_sizes: (height, width) per instance, broadcastable to (N, I, 2); positive integers.
      scores: (N, I, 13) keypoint scores; default ones.
      unit_3d: unit to store the 3D in: 'mm' (as the authors) or 'm'.
      keypoint_names_2d, keypoint_names_3d: feature names (defaults: the authors' profiles).

    Returns:
      The number of records written.
    """
    import tensorflow as tf

    if unit_3d not in ("mm", "m"):
        raise ValueError(f"unit_3d must be 'mm' or 'm', got {unit_3d!r}")
    keypoints_2d = np.asarray(keypoints_2d, dtype=np.float64)
    if keypoints_2d.ndim != 4 or keypoints_2d.shape[2:] != (len(keypoint_names_2d), 2):
        raise ValueError(f"keypoints_2d must have shape (N, I, {len(keypoint_names_2d)}, 2), got "
                         f"{keypoints_2d.shape}")
    num_records, num_instances = keypoints_2d.shape[:2]
    keypoints_2d = _checked(keypoints_2d, "keypoints_2d", keypoints_2d.shape)
    keypoints_3d = np.asarray(keypoints_3d, dtype=np.float64)
    num_3d = len(keypoint_names_3d)
    if keypoints_3d.shape == (num_records, num_3d, 3):
        keypoints_3d = np.repeat(keypoints_3d[:, None], num_instances, axis=1)
    keypoints_3d = _checked(keypoints_3d, "keypoints_3d", (num_records, num_instances, num_3d, 3))
    try:
        sizes = np.broadcast_to(np.asarray(image_sizes), (num_records, num_instances, 2))
    except ValueError:
        raise ValueError(f"image_sizes must broadcast to (N, I, 2) = "
                         f"{(num_records, num_instances, 2)}, got {np.shape(image_sizes)}") from None
    if np.any(sizes <= 0) or np.any(np.asarray(sizes, np.float64) != np.round(sizes)):
        raise ValueError("image_sizes must be positive integers (height, width)")
    sizes = sizes.astype(np.int64)
    scores = (np.ones(keypoints_2d.shape[:3]) if scores is None
              else _checked(scores, "scores", keypoints_2d.shape[:3]))
    if num_3d == len(H36M17_TO_LEGACY17):
        keypoints_3d = keypoints_3d[:, :, list(H36M17_TO_LEGACY17)]
    stored_3d = keypoints_3d * (1000.0 if unit_3d == "mm" else 1.0)
    normalized_y = keypoints_2d[..., 1] / sizes[..., None, 0]
    normalized_x = keypoints_2d[..., 0] / sizes[..., None, 1]
    keys = feature_keys(keypoint_names_2d, keypoint_names_3d)

    def floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    with tf.io.TFRecordWriter(os.fspath(path)) as writer:
        for n in range(num_records):
            feature = {KEY_IMAGE_HEIGHT: ints(sizes[n, :, 0]), KEY_IMAGE_WIDTH: ints(sizes[n, :, 1])}
            for j in range(len(keypoint_names_2d)):
                feature[keys["2d_y"][j]] = floats(normalized_y[n, :, j])
                feature[keys["2d_x"][j]] = floats(normalized_x[n, :, j])
                feature[keys["2d_score"][j]] = floats(scores[n, :, j])
            for j in range(num_3d):
                for axis, group in enumerate(("3d_x", "3d_y", "3d_z")):
                    feature[keys[group][j]] = floats(stored_3d[n, :, j, axis])
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    return num_records
