"""Checkpoints and ``model_config.json``: the one checkpoint layout, and restoring the encoder alone."""

import dataclasses
import json
import os
from typing import Dict

import tensorflow as tf

from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry


def make_checkpoint(algorithm, optimizers: Dict[str, tf.keras.optimizers.Optimizer], step):
    """One tf.train.Checkpoint with every network, every optimizer and the step counter.

    Object names (part of the interface export and downstream binaries rely on):
    ``model/<network name>`` (``model/encoder``, ``model/local_branch``, ``model/estimator``, …),
    ``optimizers/<group>`` and ``step``.
    """
    model = tf.train.Checkpoint(**algorithm.networks)
    opts = tf.train.Checkpoint(**optimizers)
    return tf.train.Checkpoint(model=model, optimizers=opts, step=step)


def check_config_matches(model_dir, config):
    path = os.path.join(model_dir, "model_config.json")
    if not tf.io.gfile.exists(path):
        return
    with tf.io.gfile.GFile(path) as f:
        existing = config_lib.ModelConfig.from_dict(json.load(f))
    if existing != config:
        diff = {k: (v, getattr(config, k)) for k, v in dataclasses.asdict(existing).items()
                if getattr(config, k) != v}
        raise ValueError(
            f"{path} describes a different model than the one requested "
            f"(field: (on disk, requested)) {diff}; use a new model_dir or the same settings")


def load_model_config(model_dir) -> config_lib.ModelConfig:
    """Reads ``model_dir/model_config.json`` (clear error when missing)."""
    path = os.path.join(model_dir, "model_config.json")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} not found: is {model_dir} a cv_mim.pretrain model_dir?")
    with tf.io.gfile.GFile(path) as f:
        return config_lib.ModelConfig.from_dict(json.load(f))


def checkpoint_step(path):
    try:
        return int(path.rsplit("-", 1)[-1])
    except ValueError:
        return -1


def restore_encoder(model_dir, checkpoint=None):
    """Rebuilds the encoder from ``model_config.json`` and restores ``model/encoder`` from a checkpoint.

    Args:
      model_dir: a pretraining model_dir.
      checkpoint: a specific checkpoint path (default: the newest in model_dir).
    Returns:
      (encoder, config, checkpoint_path, step)
    """
    config = load_model_config(model_dir)
    path = checkpoint or tf.train.latest_checkpoint(model_dir)
    if not path:
        raise FileNotFoundError(f"no checkpoint in {model_dir}")
    algorithm = registry.get_algorithm(config).build()
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    ckpt = tf.train.Checkpoint(model=tf.train.Checkpoint(encoder=algorithm.encoder), step=step)
    status = ckpt.restore(path)
    status.expect_partial()
    # The encoder's every variable must have come from the checkpoint.
    status.assert_existing_objects_matched()
    return algorithm.encoder, config, path, int(step.numpy())
