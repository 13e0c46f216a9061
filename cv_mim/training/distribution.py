"""Strategies, the worker's role, input distribution and the compiled training loop.

Strategies: ``default`` (one device), ``mirrored`` (all local GPUs, or the given devices) and
``multi_worker`` (MultiWorkerMirroredStrategy; reads ``TF_CONFIG``). A multi-worker strategy must be
created before the process runs any TensorFlow op (collectives are configured at start-up), so the
binary creates it first and hands it to the loop.

Input sharding policy (one for every strategy): no auto-sharding. Every worker builds the same
deterministic global batch (batch ``b`` depends only on ``(seed, b)``) and keeps the consecutive rows
of its own replicas: replica ``r`` of ``R`` gets rows ``[r·B/R, (r+1)·B/R)`` of global batch ``B``,
exactly the split a one-process MirroredStrategy makes. Each worker therefore pays the input cost of
the whole batch (small next to the step) and no example is duplicated or dropped.
"""

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


def worker_role(strategy):
    """``(is_chief, task_type, task_id)`` of this process.

    The chief is the ``chief`` task, or ``worker`` 0 when the cluster has no ``chief`` (TensorFlow's
    multi-worker convention); a process without a cluster is its own chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None) if resolver is not None else None
    if not task_type:
        return True, None, 0
    task_id = int(resolver.task_id or 0)
    if task_type == "chief":
        return True, task_type, task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief, task_type, task_id


def distribute_pairs(strategy, make_dataset, global_batch: int):
    """Distributes the global-batch ``(anchor, positive)`` dataset of ``make_dataset()`` (see the
    module docstring's sharding policy)."""
    replicas = strategy.num_replicas_in_sync
    per_replica = global_batch // replicas

    def dataset_fn(ctx):
        local = replicas // ctx.num_input_pipelines
        first = ctx.input_pipeline_id * local

        def rows(t):
            return tf.reshape(t, [replicas, per_replica] + t.shape[1:].as_list())[first:first + local]

        return make_dataset().flat_map(
            lambda a, p: tf.data.Dataset.from_tensor_slices((rows(a), rows(p))))

    return strategy.distribute_datasets_from_function(dataset_fn)


def _replica_fn(algorithm, optimizers, jit_compile):
    def replica_fn(anchor, positive, seed):
        return step_lib.train_step(algorithm, optimizers, anchor, positive, seed)

    # XLA compiles the per-replica function; the caller allows it on one replica only.
    return tf.function(replica_fn, jit_compile=True, reduce_retracing=True) if jit_compile \
        else replica_fn


def make_train_step(strategy, algorithm, optimizers, *, run_eagerly=False, jit_compile=False):
    """Builds ``step(anchor, positive, seed) -> nested losses`` over distributed inputs (one step per
    call; the pretraining loop uses :func:`make_train_loop`).

    ``anchor``/``positive`` are per-replica values; ``seed`` is a [2] int64 tensor. The losses are
    global-batch values (identical on every replica); replica 0's copy is returned.
    """
    replica_fn = _replica_fn(algorithm, optimizers, jit_compile)

    def step(anchor, positive, seed):
        per_replica = strategy.run(replica_fn, args=(anchor, positive, seed))
        return tf.nest.map_structure(
            lambda t: strategy.experimental_local_results(t)[0], per_replica)

    return step if run_eagerly else tf.function(step)


def _finite(flat_losses):
    return tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in flat_losses])


def make_train_loop(strategy, algorithm, optimizers, step_var, base_seed, *, run_eagerly=False,
                    jit_compile=False):
    """Builds ``loop(iterator, n) -> (losses, finite, first_bad_step)`` running ``n`` steps in one call.

    Each step draws the next distributed batch, uses the seed :func:`step_seed` ``(base_seed,
    step_var)`` computed in the graph, and increments ``step_var``, so nothing goes back to the host
    between steps. Returned: the nested losses of the last step, a bool vector (one entry per loss of
    :func:`cv_mim.training.summaries.flatten_losses`, same order) that is False where the loss was
    non-finite at any step of the call, and the first step number (1-based) with a non-finite loss, or
    -1.
    """
    from cv_mim.training import summaries  # pylint: disable=import-outside-toplevel
    replica_fn = _replica_fn(algorithm, optimizers, jit_compile)

    def one_step(iterator):
        anchor, positive = next(iterator)
        seed = step_seed(base_seed, step_var)
        per_replica = strategy.run(replica_fn, args=(anchor, positive, seed))
        step_var.assign_add(1)
        losses = tf.nest.map_structure(
            lambda t: strategy.experimental_local_results(t)[0], per_replica)
        return losses, _finite(list(summaries.flatten_losses(losses).values()))

    cache = {}

    def loop(iterator, n):
        template = cache["template"]
        # Every step runs in the loop body (none peeled off before it), so the compiled step is the
        # same graph whatever n is, and the losses do not depend on steps_per_loop.
        losses = tf.nest.map_structure(lambda t: tf.zeros(t.shape, t.dtype), template[0])
        finite = tf.ones(template[1].shape, tf.bool)
        first_bad = tf.constant(-1, tf.int64)
        for _ in tf.range(n):
            losses, ok = one_step(iterator)
            newly_bad = tf.logical_and(first_bad < 0, tf.logical_not(tf.reduce_all(ok)))
            first_bad = tf.where(newly_bad, tf.cast(step_var.read_value(), tf.int64), first_bad)
            finite = tf.logical_and(finite, ok)
        return losses, finite, first_bad

    compiled = loop if run_eagerly else tf.function(loop)

    def call(iterator, n):
        if "template" not in cache:
            # The structure of one step's outputs, from a trace (nothing runs).
            outputs = tf.function(one_step).get_concrete_function(iterator).structured_outputs
            cache["template"] = tf.nest.map_structure(
                lambda t: tf.TensorSpec(t.shape, t.dtype), outputs)
        return compiled(iterator, n)

    return call


def step_seed(base_seed: int, step) -> tf.Tensor:
    """The [2] int64 seed of a step: a pure function of (base seed, step), so a resumed run draws the
    same randomness it would have drawn without the interruption."""
    return tf.stack([tf.constant(int(base_seed), tf.int64), tf.cast(step, tf.int64)])
