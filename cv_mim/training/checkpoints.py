"""Checkpoints and ``model_config.json``: the one checkpoint layout, and restoring the encoder alone."""

import dataclasses
import json
import os
from typing import Dict

import tensorflow as tf

from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import contract


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
    # Only the encoder is built: Q, D, the local branch and the decoder stay in the checkpoint.
    encoder = contract.encoder_from_config(config)
    encoder(tf.zeros([1, config.num_joints, 2]), training=False)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    ckpt = tf.train.Checkpoint(model=tf.train.Checkpoint(encoder=encoder), step=step)
    status = ckpt.restore(path)
    status.expect_partial()
    # The encoder's every variable must have come from the checkpoint.
    status.assert_existing_objects_matched()
    return encoder, config, path, int(step.numpy())


class NonFiniteWeightsError(FloatingPointError):
    """Weights about to be saved are NaN or inf (nothing is saved)."""


def list_checkpoints(model_dir):
    """The checkpoint prefixes in ``model_dir``, oldest first.

    From the ``checkpoint`` state file; if that is missing or unreadable, from the ``ckpt-<n>.index``
    files on disk (so a damaged state file does not hide intact checkpoints).
    """
    try:
        state = tf.train.get_checkpoint_state(model_dir)
    except (tf.errors.OpError, ValueError):  # text_format parse errors are ValueError subclasses
        state = None
    if state is not None and state.all_model_checkpoint_paths:
        # get_checkpoint_state has already joined relative entries to model_dir (joining them again
        # broke every resume under a relative --model_dir); the checkpoints are model_dir's own.
        paths = [os.path.join(model_dir, os.path.basename(p))
                 for p in state.all_model_checkpoint_paths]
    else:
        paths = [p[:-len(".index")] for p in tf.io.gfile.glob(os.path.join(model_dir, "ckpt-*.index"))]
    return sorted(set(paths), key=checkpoint_step)


def restore_newest_intact(checkpoint, model_dir, log):
    """Restores ``checkpoint`` from the newest readable checkpoint of ``model_dir``.

    A checkpoint whose files are truncated or corrupted (TensorFlow checks each tensor's CRC) or that
    does not match the objects is skipped with a warning naming it and the one used instead.

    Returns:
      The restored path, or None when ``model_dir`` has no checkpoint.
    Raises:
      ValueError: checkpoints exist but none of them is readable.
    """
    candidates = list(reversed(list_checkpoints(model_dir)))
    failures = []
    for path in candidates:
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError,
                RuntimeError) as err:  # what a damaged bundle raises varies by the damage
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            failures.append((path, reason))
            log.warning("checkpoint %s is unreadable (%s)", path, reason)
            continue
        if failures:
            log.warning("the newest checkpoint %s is corrupted or truncated; resuming from the newest "
                        "intact one, %s", failures[0][0], path)
        return path
    if failures:
        raise ValueError(f"no intact checkpoint in {model_dir}: "
                         + "; ".join(f"{p}: {r}" for p, r in failures))
    return None


def _non_finite(variables):
    """Names of the floating-point variables holding a NaN or inf (one host transfer)."""
    tensors = [(getattr(v, "path", v.name), tf.convert_to_tensor(v)) for v in variables]
    tensors = [(name, t) for name, t in tensors if t.dtype.is_floating]
    if not tensors:
        return []
    ok = tf.stack([tf.reduce_all(tf.math.is_finite(t)) for _, t in tensors]).numpy()
    return [name for (name, _), fine in zip(tensors, ok) if not fine]


def save_if_finite(manager, variables, step):
    """Saves checkpoint ``step`` only if every weight is finite.

    Raises:
      NonFiniteWeightsError: some weight is NaN or inf (the previous checkpoints are kept).
    """
    bad = _non_finite(variables)
    if bad:
        raise NonFiniteWeightsError(
            f"weights became non-finite at step {step} ({', '.join(bad[:5])}"
            f"{', ...' if len(bad) > 5 else ''}); not saved — the last good checkpoint "
            f"({manager.latest_checkpoint or 'none'}) is kept")
    return manager.save(checkpoint_number=step)


def drop_checkpoints_from(model_dir, first_bad_step, log):
    """Deletes the checkpoints of ``model_dir`` at step >= ``first_bad_step`` and points the state
    file at the newest remaining one; returns that one (or None)."""
    paths = list_checkpoints(model_dir)
    keep = [p for p in paths if checkpoint_step(p) < first_bad_step]
    for path in paths:
        if path not in keep:
            for name in tf.io.gfile.glob(path + ".*"):
                tf.io.gfile.remove(name)
            log.warning("removed checkpoint %s: its weights gave a non-finite loss", path)
    state = os.path.join(model_dir, "checkpoint")
    if keep:
        # The paths are as seen from here (list_checkpoints' own); TensorFlow writes them relative
        # to model_dir, rewriting the list it is given in place, hence the copy.
        tf.compat.v1.train.update_checkpoint_state(
            model_dir, keep[-1], all_model_checkpoint_paths=list(keep))
    elif tf.io.gfile.exists(state):
        tf.io.gfile.remove(state)
    return keep[-1] if keep else None
