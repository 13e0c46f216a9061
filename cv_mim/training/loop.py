"""The pretraining loop behind ``python -m cv_mim.pretrain`` (library code: explicit arguments only).

``model_dir`` layout (the interface of export and every downstream binary):

* ``model_config.json`` — :class:`cv_mim.algorithms.config.ModelConfig` (algorithm, sizes, fusion, keypoint
  profile, normalisation, loss settings);
* ``ckpt-<step>.*`` + ``checkpoint`` — ``tf.train.CheckpointManager`` checkpoints with the objects
  ``model/<network>``, ``optimizers/<group>`` and ``step`` (see :func:`checkpoints.make_checkpoint`);
  only finite weights are ever saved;
* ``flags.json`` (written once the model_dir is known to fit the requested config), ``train/``
  TensorBoard events, ``metrics.jsonl`` (the same scalars as JSON lines), ``train_summary.json`` (at
  the end); ``.lock`` while a run is writing;
* with validation data: ``eval/`` TensorBoard events and ``eval/<metric>`` rows in ``metrics.jsonl``,
  and ``best/`` — the checkpoint of the best validation value so far with ``best/best.json``
  (:mod:`cv_mim.training.validation`).

A run is four phases, one function each: :func:`_prepare` (arguments, lock, config check, records),
:func:`_build_and_restore` (model, optimizers, newest intact checkpoint / init checkpoint),
:func:`_train` (the step loop, ``steps_per_loop`` steps per compiled call) and :func:`_finalise`.

Multi-worker: only the chief writes into ``model_dir``; every other worker saves its (identical)
checkpoints into ``model_dir/workertemp_<task id>`` and deletes it at the end, as TensorFlow's
multi-worker guide prescribes (saving is collective, so every worker must save).
"""

import dataclasses
import logging
import math
import os
import time
from typing import Optional, Sequence, Union

import tensorflow as tf

from cv_mim import pipeline
from cv_mim import progress
from cv_mim import records
from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry
from cv_mim.algorithms import step as step_lib
from cv_mim.keypoints import augmentation as augmentation_lib
from cv_mim.training import checkpoints
from cv_mim.training import distribution
from cv_mim.training import locking
from cv_mim.training import summaries
from cv_mim.training import validation as validation_lib

log = logging.getLogger("cv_mim.pretrain")


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf; the message names the loss and the step."""


NonFiniteWeightsError = checkpoints.NonFiniteWeightsError


@dataclasses.dataclass
class _Session:
    """What the phases of one run share."""
    dist: tf.distribute.Strategy
    model_dir: str
    write_dir: str  # model_dir on the chief, a private temporary directory on other workers
    is_chief: bool
    algorithm: object = None
    optimizers: dict = None
    step_var: tf.Variable = None
    checkpoint: tf.train.Checkpoint = None
    manager: tf.train.CheckpointManager = None
    validator: validation_lib.Validator = None



def run(*, model_dir: str, config: config_lib.ModelConfig, source: pipeline.PairSource,
        batch_size: int = 256, num_steps: int = 5_000_000, learning_rate: float = 0.02,
        seed: int = 0, strategy: Union[str, tf.distribute.Strategy] = "default",
        devices: Optional[Sequence[str]] = None, init_checkpoint: Optional[str] = None,
        augmentation: str = "mixed", keypoint_dropout_rate: float = 0.0,
        projection_depth=augmentation_lib.DEFAULT_DEPTH,
        summary_every: int = 100, checkpoint_every: int = 10_000, log_every: int = 100,
        steps_per_loop: int = 1, keep_checkpoints: int = 5, run_eagerly: bool = False,
        jit_compile: bool = False, mixed_precision: bool = False,
        flags_record: Optional[dict] = None, stop_after: Optional[int] = None,
        validation: Optional[validation_lib.ValidationSet] = None, val_every: int = 500,
        val_metric: str = validation_lib.DEFAULT_METRIC):
    """Pretrains ``config.algorithm`` on positive pairs from ``source``; returns a summary dict.

    Args:
      model_dir: where checkpoints, config, flags and events go (created; locked while running).
      config: the model (written to model_config.json; a resumed run must match it).
      source: the pretraining frames.
      batch_size: GLOBAL pairs per step; each replica gets batch_size / num_replicas.
      num_steps: total steps (a resumed run continues up to this).
      learning_rate: AdaGrad learning rate of every optimizer.
      seed: seeds weights, data order, augmentation and prior samples (reproducible on CPU).
      strategy: a name of ``distribution.STRATEGIES`` or a strategy already created (a multi-worker
        strategy must be created before any other TensorFlow op of the process).
      init_checkpoint: checkpoint to initialise the networks from when model_dir has none.
      augmentation, keypoint_dropout_rate, projection_depth: see
        :func:`cv_mim.pipeline.make_pair_dataset`.
      summary_every, checkpoint_every, log_every: steps between scalars (and the last step), between
        checkpoints (and the last step), between progress lines.
      steps_per_loop: at most this many steps per compiled call; a call never crosses a summary,
        checkpoint or log step, so the recorded curve does not depend on it. Losses are checked for
        NaN/inf once per call (covering every step of it).
      stop_after: stop (with a checkpoint) after this many steps of THIS invocation — for tests and
        for splitting long runs; the run resumes from there.
      validation: held-out frames to validate on (None = no validation).
      val_every: steps between validations (and the last step); 0 = off.
      val_metric: the :data:`validation.METRICS` name that chooses the ``best/`` checkpoint.
    Raises:
      NonFiniteLossError, NonFiniteWeightsError: training diverged (the last good checkpoint is kept).
      locking.ModelDirLockedError: another run is using ``model_dir``.
    """
    _check_arguments(batch_size=batch_size, num_steps=num_steps, learning_rate=learning_rate,
                     summary_every=summary_every, checkpoint_every=checkpoint_every,
                     log_every=log_every, steps_per_loop=steps_per_loop,
                     keep_checkpoints=keep_checkpoints, val_every=val_every, val_metric=val_metric)
    dist = distribution.create_strategy(strategy, devices) if isinstance(strategy, str) else strategy
    replicas = dist.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"batch_size={batch_size} is not divisible by the {replicas} replicas")
    if jit_compile and replicas > 1:
        raise ValueError(f"--jit_compile works with one replica only (this run has {replicas}): "
                         "the cross-replica gradient sums are not XLA-compiled here")
    is_chief, _, task_id = distribution.worker_role(dist)
    write_dir = model_dir if is_chief else os.path.join(model_dir, f"workertemp_{task_id}")
    session = _Session(dist=dist, model_dir=model_dir, write_dir=write_dir, is_chief=is_chief)
    try:
        tf.io.gfile.makedirs(write_dir)
    except tf.errors.OpError as err:
        raise ValueError(f"model_dir {model_dir} cannot be created: {err.message}") from None
    previous_policy = tf.keras.mixed_precision.global_policy()
    try:
        with locking.locked(model_dir, enabled=is_chief):
            _prepare(session, config, flags_record)
            if mixed_precision:
                tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
            start = _build_and_restore(session, config, seed=seed, learning_rate=learning_rate,
                                       init_checkpoint=init_checkpoint,
                                       keep_checkpoints=keep_checkpoints)
            if validation is not None and val_every:
                _set_up_validation(session, validation, config, val_metric, start)
            stop = num_steps if stop_after is None else min(num_steps, start + stop_after)
            summary = {"algorithm": config.algorithm, "start_step": start, "model_dir": model_dir,
                       "replicas": replicas, "global_batch": batch_size}
            if session.validator is not None:
                summary["validation_data"] = validation.description
            if stop <= start:
                log.info("nothing to do: step %d >= num_steps %d", start, num_steps)
                summary.update(final_step=start, steps_run=0)
                return summary
            make_dataset = lambda: pipeline.make_pair_dataset(  # noqa: E731
                source, batch_size=batch_size, seed=seed, augmentation=augmentation,
                start_batch=start, keypoint_dropout_rate=keypoint_dropout_rate,
                projection_depth=projection_depth, num_batches=stop - start)
            mode = "eager" if run_eagerly else ("XLA" if jit_compile else "tf.function")
            log.info("training %s for steps %d..%d: global batch %d on %d replica(s) in %d "
                     "worker(s), %s, up to %d step(s) per call", config.algorithm, start + 1, stop,
                     batch_size, replicas, _num_workers(dist), mode, steps_per_loop)
            t_start = time.time()
            last = _train(session, make_dataset, batch_size=batch_size, start=start, stop=stop,
                          num_steps=num_steps, seed=seed, steps_per_loop=steps_per_loop,
                          every=(summary_every, checkpoint_every, log_every, val_every),
                          run_eagerly=run_eagerly, jit_compile=jit_compile)
            return _finalise(session, summary, start=start, stop=stop, last_losses=last,
                             seconds=time.time() - t_start)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous_policy)
        if not is_chief and tf.io.gfile.exists(write_dir):
            tf.io.gfile.rmtree(write_dir)


def _check_arguments(**values):
    if values["val_every"] < 0:
        raise ValueError(f"val_every must be >= 0 (0 = off), got {values['val_every']}")
    if values["val_metric"] not in validation_lib.METRICS:
        raise ValueError(f"val_metric must be one of {validation_lib.METRICS}, got "
                         f"{values['val_metric']!r}")
    for name in ("batch_size", "num_steps", "summary_every", "checkpoint_every", "log_every",
                 "steps_per_loop", "keep_checkpoints"):
        if values[name] <= 0:
            raise ValueError(f"{name} must be positive, got {values[name]}")
    lr = values["learning_rate"]
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning_rate must be a positive finite number, got {lr}")


def _num_workers(dist):
    resolver = getattr(dist, "cluster_resolver", None)
    try:
        return max(1, len(resolver.cluster_spec().as_dict().get("worker", []))
                   + len(resolver.cluster_spec().as_dict().get("chief", [])))
    except (AttributeError, TypeError, ValueError):
        return 1


def _prepare(session, config, flags_record):
    """Checks that model_dir fits ``config``, then (chief only) writes the config and flags.

    The check comes first: a mistaken rerun into the wrong model_dir fails without touching the
    original run's ``flags.json``.
    """
    checkpoints.check_config_matches(session.model_dir, config)
    if not session.is_chief:
        return
    records.write_json(os.path.join(session.model_dir, "model_config.json"),
                       dataclasses.asdict(config))
    if flags_record is not None:
        records.write_json(os.path.join(session.model_dir, "flags.json"), flags_record)


def _build_and_restore(session, config, *, seed, learning_rate, init_checkpoint,
                       keep_checkpoints):
    """Builds model + optimizers in the strategy scope and restores them; returns the start step.

    Start-up order (logged): the newest intact checkpoint in model_dir; else ``init_checkpoint``
    (networks only); else from scratch. On the chief, metrics rows and TensorBoard events past the
    restored step (written by an interrupted run) are dropped.
    """
    with session.dist.scope():
        tf.keras.utils.set_random_seed(seed)
        session.algorithm = registry.get_algorithm(config).build()
        session.optimizers = step_lib.create_optimizers(session.algorithm, learning_rate)
        session.step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        session.checkpoint = checkpoints.make_checkpoint(session.algorithm, session.optimizers,
                                                         session.step_var)
        restored = checkpoints.restore_newest_intact(session.checkpoint, session.model_dir, log)
        if restored:
            log.info("start-up: resuming from %s (step %d)", restored,
                     int(session.step_var.numpy()))
        elif init_checkpoint:
            _init_networks(session, init_checkpoint)
        else:
            log.info("start-up: no checkpoint in %s and no init_checkpoint; from scratch",
                     session.model_dir)
        session.manager = tf.train.CheckpointManager(
            session.checkpoint, session.write_dir, max_to_keep=keep_checkpoints,
            step_counter=session.step_var)
    _use_learning_rate(session.optimizers, learning_rate)
    start = int(session.step_var.numpy())
    if session.is_chief:
        dropped = summaries.drop_metrics_after(session.model_dir, start)
        for logdir in ("train", "eval"):
            dropped += summaries.drop_events_after(os.path.join(session.model_dir, logdir), start)
        if dropped:
            log.info("dropped %d metric rows/events past the restored step %d", dropped, start)
    return start


def _init_networks(session, init_checkpoint):
    path = (tf.train.latest_checkpoint(init_checkpoint)
            if tf.io.gfile.isdir(init_checkpoint) else init_checkpoint)
    if not path or not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"init_checkpoint {init_checkpoint}: no checkpoint found")
    tf.train.Checkpoint(model=tf.train.Checkpoint(**session.algorithm.networks)).restore(
        path).expect_partial()
    log.info("start-up: no checkpoint in %s; networks initialised from %s", session.model_dir, path)


def _use_learning_rate(optimizers, learning_rate):
    """A checkpoint restores the optimizer's learning rate too; the requested one wins."""
    for group, opt in optimizers.items():
        if abs(_lr(opt) - learning_rate) > 1e-6 * learning_rate:  # float32 storage
            log.info("optimizer %s: learning rate %g from the checkpoint replaced by %g",
                     group, _lr(opt), learning_rate)
            opt.learning_rate = learning_rate


def _set_up_validation(session, data, config, metric, start):
    """The validator and its ``best/`` checkpoint (the record of a resumed run restored)."""
    best = validation_lib.BestCheckpoint(
        session.checkpoint, session.step_var, model_dir=session.model_dir,
        write_dir=session.write_dir, is_chief=session.is_chief, metric=metric, start=start)
    writer = (tf.summary.create_file_writer(os.path.join(session.model_dir, "eval"))
              if session.is_chief else tf.summary.create_noop_writer())
    session.validator = validation_lib.Validator(data, best, mi_measure=config.mi_measure,
                                                 writer=writer, model_dir=session.model_dir,
                                                 is_chief=session.is_chief)
    log.info("validation: %s; %d frames x %d cameras; best checkpoint by %s", data.description,
             len(data.poses_3d), len(data.camera_ids), metric)


def _next_stop(step, stop, steps_per_loop, every):
    """End of the next compiled call: never past a summary, checkpoint, log or validation step."""
    ends = [stop, step + steps_per_loop] + [(step // e + 1) * e for e in every if e]
    return min(ends)


def _network_variables(session):
    return [v for net in session.algorithm.networks.values() for v in net.weights]


def _train(session, make_dataset, *, batch_size, start, stop, num_steps, seed, steps_per_loop,
           every, run_eagerly, jit_compile):
    """The step loop; returns the flat losses of the last step."""
    summary_every, checkpoint_every, log_every, val_every = every
    iterator = iter(distribution.distribute_pairs(session.dist, make_dataset, batch_size))
    loop_fn = distribution.make_train_loop(session.dist, session.algorithm, session.optimizers,
                                           session.step_var, seed, run_eagerly=run_eagerly,
                                           jit_compile=jit_compile)
    writer = (tf.summary.create_file_writer(os.path.join(session.model_dir, "train"))
              if session.is_chief else tf.summary.create_noop_writer())
    t_start = time.time()
    last_line = [t_start, start]  # time and step of the last progress line
    step, flat = start, {}
    while step < stop:
        n = _next_stop(step, stop, steps_per_loop, every) - step
        losses, finite, first_bad = loop_fn(iterator, tf.constant(n, tf.int32))
        step += n
        flat = {k: float(v) for k, v in summaries.flatten_losses(losses).items()}
        _check_finite(session, flat, finite.numpy(), int(first_bad.numpy()))
        if step % summary_every == 0 or step == num_steps:
            _record(session, writer, step, flat, (step - start) / max(time.time() - t_start, 1e-9))
        if step % checkpoint_every == 0:
            checkpoints.save_if_finite(session.manager, _network_variables(session), step)
        if session.validator is not None and (step % val_every == 0 or step == stop):
            session.validator(step, session.algorithm.encoder, _network_variables(session))
        if step % log_every == 0 or step == stop:
            _log_progress(step, num_steps, flat, last_line)
    writer.flush()
    return flat


def _check_finite(session, flat, finite, first_bad):
    """Stops on a non-finite loss; removes the checkpoints whose weights produced it."""
    if first_bad < 0:
        return
    bad = [k for k, ok in zip(flat, finite) if not ok]
    # The loss of step s is computed with the weights saved as checkpoint s-1.
    good = (checkpoints.drop_checkpoints_from(session.write_dir, first_bad - 1, log)
            if session.is_chief else session.manager.latest_checkpoint)
    raise NonFiniteLossError(
        f"loss {bad[0]} became non-finite at step {first_bad} (non-finite: {', '.join(bad)}); "
        f"the last good checkpoint ({good or 'none'}) is kept — lower the learning rate or "
        f"check the input data")


def _record(session, writer, step, flat, steps_per_second):
    if not session.is_chief:
        return
    summaries.append_metrics(session.model_dir, step, flat)
    with writer.as_default(step=step):
        for name, value in flat.items():
            summaries.write_scalar(f"train/{name}", value, step)
        for group, opt in session.optimizers.items():
            summaries.write_scalar(f"train/lr/{group}", _lr(opt), step)
        summaries.write_scalar("train/steps_per_second", steps_per_second, step)


def _log_progress(step, num_steps, flat, last_line):
    now = time.time()
    rate = (step - last_line[1]) / max(now - last_line[0], 1e-9)
    eta = (num_steps - step) / rate if rate > 0 else float("inf")
    shown = " ".join(f"{k.split('/')[-1] if k.startswith('encoder/') else k}={v:.4g}"
                     for k, v in flat.items()
                     if k.endswith("total_loss") or k in ("encoder/cross_view_loss",
                                                          "metrics/cross_view_mi"))
    log.info("step %d/%d (%.1f%%) | %s | %.2f steps/s | ETA %s", step, num_steps,
             100.0 * step / num_steps, shown, rate, progress.format_duration(eta))
    last_line[:] = [now, step]


def _finalise(session, summary, *, start, stop, last_losses, seconds):
    """Final checkpoint (finite weights only) and, on the chief, ``train_summary.json``."""
    manager = session.manager
    if manager.latest_checkpoint is None or checkpoints.checkpoint_step(
            manager.latest_checkpoint) != stop:
        checkpoints.save_if_finite(manager, _network_variables(session), stop)
    checkpoint = os.path.join(session.model_dir, os.path.basename(manager.latest_checkpoint))
    summary.update(final_step=stop, steps_run=stop - start, seconds=seconds,
                   steps_per_second=(stop - start) / max(seconds, 1e-9),
                   final_losses=last_losses, checkpoint=checkpoint)
    if session.validator is not None:
        summary.update(final_validation=session.validator.last, best=session.validator.best.record)
    if session.is_chief:
        records.write_json(os.path.join(session.model_dir, "train_summary.json"), summary)
    log.info("done: step %d, checkpoint %s", stop, checkpoint)
    return summary


def _lr(optimizer):
    """The current learning rate as a float (works for mirrored variables too)."""
    return float(optimizer.learning_rate.numpy())
