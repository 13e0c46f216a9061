"""Distribution, compiled steps, checkpoints and summaries shared by the pretraining loop.

Strategies: ``default`` (one device), ``mirrored`` (all local GPUs, or the given devices) and
``multi_worker`` (MultiWorkerMirroredStrategy; reads ``TF_CONFIG``). Model, optimizers and the checkpoint
are created inside ``strategy.scope()``; the step runs ``algorithms.train_step`` on every replica through
``strategy.run`` inside one ``tf.function``.
"""

import logging
import os
from typing import Dict, Optional, Sequence

import tensorflow as tf

from cv_mim import algorithms

STRATEGIES = ("default", "mirrored", "multi_worker")


def create_strategy(name: str = "default", devices: Optional[Sequence[str]] = None):
    """Returns the tf.distribute strategy called ``name`` (one of ``STRATEGIES``)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            logging.warning("--strategy=multi_worker without TF_CONFIG: running as a single worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def make_train_step(strategy, algorithm, optimizers, *, run_eagerly=False, jit_compile=False):
    """Builds ``step(anchor, positive, seed) -> nested losses`` over distributed inputs.

    ``anchor``/``positive`` are per-replica values from ``strategy.experimental_distribute_dataset``
    (each replica gets global_batch / num_replicas examples); ``seed`` is a [2] int64 tensor. The losses
    are global-batch values (identical on every replica); replica 0's copy is returned.

    Args:
      run_eagerly: skip ``tf.function`` (debugging).
      jit_compile: XLA-compile the step (single-device only; collectives are not XLA-compiled here).
    """

    def replica_fn(anchor, positive, seed):
        return algorithms.train_step(algorithm, optimizers, anchor, positive, seed)

    def step(anchor, positive, seed):
        per_replica = strategy.run(replica_fn, args=(anchor, positive, seed))
        return tf.nest.map_structure(
            lambda t: strategy.experimental_local_results(t)[0], per_replica)

    if run_eagerly:
        return step
    if jit_compile and strategy.num_replicas_in_sync == 1:
        # The per-replica function is what XLA compiles; strategy.run on one replica is a plain call.
        compiled = tf.function(replica_fn, jit_compile=True, reduce_retracing=True)

        def xla_step(anchor, positive, seed):
            return compiled(anchor, positive, seed)

        return tf.function(xla_step)
    return tf.function(step)


def step_seed(base_seed: int, step) -> tf.Tensor:
    """The [2] int64 seed of a step: a pure function of (base seed, step), so a resumed run draws the
    same randomness it would have drawn without the interruption."""
    return tf.stack([tf.constant(int(base_seed), tf.int64), tf.cast(step, tf.int64)])


def make_checkpoint(algorithm, optimizers: Dict[str, tf.keras.optimizers.Optimizer], step):
    """One tf.train.Checkpoint with every network, every optimizer and the step counter.

    Object names (part of the interface export and downstream binaries rely on):
    ``model/<network name>`` (``model/encoder``, ``model/local_branch``, ``model/estimator``, …),
    ``optimizers/<group>`` and ``step``.
    """
    model = tf.train.Checkpoint(**algorithm.networks)
    opts = tf.train.Checkpoint(**optimizers)
    return tf.train.Checkpoint(model=model, optimizers=opts, step=step)


def _scalar_metadata():
    from tensorflow.core.framework import summary_pb2  # pylint: disable=import-outside-toplevel
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    return metadata.SerializeToString()


_SCALAR_METADATA = None


def write_scalar(name, value, step):
    """Writes a TensorBoard scalar to the default summary writer.

    ``tf.summary.scalar`` lives in the tensorboard package; this writes the same event (scalars plugin
    metadata) with TensorFlow alone, so training does not depend on tensorboard being installed.
    """
    global _SCALAR_METADATA
    if _SCALAR_METADATA is None:
        _SCALAR_METADATA = _scalar_metadata()
    return tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                            metadata=_SCALAR_METADATA)


def flatten_losses(nested, prefix=""):
    """{'encoder': {'view_loss': t}} → {'encoder/view_loss': t}."""
    flat = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_losses(value, prefix=f"{name}/"))
        else:
            flat[name] = value
    return flat
