"""``tf.distribute`` strategies, the distributed train step and the per-step seed."""

import logging
import os
from typing import Optional, Sequence

import tensorflow as tf

from cv_mim.algorithms import step as step_lib

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
        return step_lib.train_step(algorithm, optimizers, anchor, positive, seed)

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
