"""The pretraining loop behind ``python -m cv_mim.pretrain`` (library code: explicit arguments only).

``model_dir`` layout (the interface of export and every downstream binary):

* ``model_config.json`` — :class:`cv_mim.algorithms.config.ModelConfig` (algorithm, sizes, fusion, keypoint
  profile, normalisation, loss settings);
* ``ckpt-<step>.*`` + ``checkpoint`` — ``tf.train.CheckpointManager`` checkpoints with the objects
  ``model/<network>``, ``optimizers/<group>`` and ``step`` (see :func:`cv_mim.training.checkpoints.make_checkpoint`);
* ``flags.json`` (written at start), ``train/`` TensorBoard events, ``metrics.jsonl`` (the same scalars
  as JSON lines, for plotting without TensorBoard), ``train_summary.json`` (at the end).

Start-up order (logged): resume from the newest checkpoint in ``model_dir``; else initialise from
``init_checkpoint``; else start from scratch.
"""

import dataclasses
import json
import logging
import math
import os
import time
from typing import Callable, Optional, Sequence

import tensorflow as tf

from cv_mim import pipeline
from cv_mim import records
from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry
from cv_mim.algorithms import step as step_lib
from cv_mim.training import checkpoints
from cv_mim.training import distribution
from cv_mim.training import summaries

log = logging.getLogger("cv_mim.pretrain")


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf; the message names the loss and the step."""


def _format_eta(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def run(*, model_dir: str, config: config_lib.ModelConfig, source: pipeline.PairSource,
        batch_size: int = 256, num_steps: int = 5_000_000, learning_rate: float = 0.02,
        seed: int = 0, strategy: str = "default", devices: Optional[Sequence[str]] = None,
        init_checkpoint: Optional[str] = None, augmentation: str = "mixed",
        keypoint_dropout_rate: float = 0.0, summary_every: int = 100,
        checkpoint_every: int = 10_000, log_every: int = 100,
        keep_checkpoints: int = 5, record_if: Optional[Callable[[int], bool]] = None,
        run_eagerly: bool = False, jit_compile: bool = False, mixed_precision: bool = False,
        flags_record: Optional[dict] = None, stop_after: Optional[int] = None):
    """Pretrains ``config.algorithm`` on positive pairs from ``source``; returns a summary dict.

    Args:
      model_dir: where checkpoints, config, flags and events go (created).
      config: the model (written to model_config.json; a resumed run must match it).
      source: the pretraining frames.
      batch_size: GLOBAL pairs per step; each replica gets batch_size / num_replicas.
      num_steps: total steps (a resumed run continues up to this).
      learning_rate: AdaGrad learning rate of every optimizer.
      seed: seeds weights, data order, augmentation and prior samples (reproducible on CPU).
      strategy: one of ``distribution.STRATEGIES``.
      init_checkpoint: checkpoint to initialise the networks from when model_dir has none.
      augmentation, keypoint_dropout_rate: see :func:`cv_mim.pipeline.make_pair_dataset`.
      record_if: ``step -> bool`` deciding when scalars are written (default: every
        ``summary_every`` steps and the last step).
      stop_after: stop (with a checkpoint) after this many steps of THIS invocation — for tests and
        for splitting long runs; the run resumes from there.
    """
    if batch_size <= 0 or num_steps <= 0:
        raise ValueError(f"batch_size and num_steps must be positive, got {batch_size}, {num_steps}")
    for name, value in (("summary_every", summary_every), ("checkpoint_every", checkpoint_every),
                        ("log_every", log_every)):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    tf.io.gfile.makedirs(model_dir)
    if flags_record is not None:
        records.write_json(os.path.join(model_dir, "flags.json"), flags_record)
    checkpoints.check_config_matches(model_dir, config)
    records.write_json(os.path.join(model_dir, "model_config.json"), dataclasses.asdict(config))

    dist = distribution.create_strategy(strategy, devices)
    replicas = dist.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"batch_size={batch_size} is not divisible by the {replicas} replicas")
    record_if = record_if or (lambda s: s % summary_every == 0 or s == num_steps)

    previous_policy = tf.keras.mixed_precision.global_policy()
    if mixed_precision:
        tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        with dist.scope():
            tf.keras.utils.set_random_seed(seed)
            algorithm = registry.get_algorithm(config).build()
            optimizers = step_lib.create_optimizers(algorithm, learning_rate)
            step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            checkpoint = checkpoints.make_checkpoint(algorithm, optimizers, step_var)
            manager = tf.train.CheckpointManager(checkpoint, model_dir,
                                                 max_to_keep=keep_checkpoints,
                                                 step_counter=step_var)
            if manager.latest_checkpoint:
                checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
                log.info("start-up: resuming from %s (step %d)", manager.latest_checkpoint,
                         int(step_var.numpy()))
            elif init_checkpoint:
                path = (tf.train.latest_checkpoint(init_checkpoint)
                        if tf.io.gfile.isdir(init_checkpoint) else init_checkpoint)
                if not path:
                    raise FileNotFoundError(f"init_checkpoint {init_checkpoint}: no checkpoint found")
                tf.train.Checkpoint(model=tf.train.Checkpoint(**algorithm.networks)).restore(
                    path).expect_partial()
                log.info("start-up: no checkpoint in %s; networks initialised from %s",
                         model_dir, path)
            else:
                log.info("start-up: no checkpoint in %s and no init_checkpoint; from scratch",
                         model_dir)
        for group, opt in optimizers.items():
            # A checkpoint restores the optimizer's learning rate too; the requested one wins.
            if abs(_lr(opt) - learning_rate) > 1e-6 * learning_rate:  # float32 storage
                log.info("optimizer %s: learning rate %g from the checkpoint replaced by %g",
                         group, _lr(opt), learning_rate)
                opt.learning_rate = learning_rate
        step_fn = distribution.make_train_step(dist, algorithm, optimizers,
                                            run_eagerly=run_eagerly, jit_compile=jit_compile)
        start = int(step_var.numpy())
        remaining = num_steps - start
        if stop_after is not None:
            remaining = min(remaining, stop_after)
        summary = {"algorithm": config.algorithm, "start_step": start, "model_dir": model_dir,
                   "replicas": replicas, "global_batch": batch_size}
        if remaining <= 0:
            log.info("nothing to do: step %d >= num_steps %d", start, num_steps)
            summary.update(final_step=start, steps_run=0)
            return summary

        dataset = pipeline.make_pair_dataset(source, batch_size=batch_size, seed=seed,
                                              augmentation=augmentation, start_batch=start,
                                              keypoint_dropout_rate=keypoint_dropout_rate,
                                              num_batches=remaining)
        iterator = iter(dist.experimental_distribute_dataset(dataset))
        writer = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
        log.info("training %s for steps %d..%d: global batch %d on %d replica(s), %s",
                 config.algorithm, start + 1, start + remaining, batch_size, replicas,
                 "eager" if run_eagerly else ("XLA" if jit_compile else "tf.function"))
        t_start = time.time()
        t_last, step_last = t_start, start
        last_losses = {}
        steps_per_second = 0.0
        step = start
        for anchor, positive in iterator:
            losses = step_fn(anchor, positive, distribution.step_seed(seed, step))
            step += 1
            flat = {k: float(v) for k, v in summaries.flatten_losses(losses).items()}
            bad = [k for k, v in flat.items() if not math.isfinite(v)]
            if bad:
                raise NonFiniteLossError(
                    f"loss {bad[0]} became {flat[bad[0]]} at step {step} "
                    f"(non-finite: {', '.join(bad)}); the last good checkpoint "
                    f"({manager.latest_checkpoint or 'none'}) is kept — lower the learning "
                    f"rate or check the input data")
            step_var.assign(step)
            last_losses = flat
            steps_per_second = (step - start) / max(time.time() - t_start, 1e-9)
            if record_if(step):
                with open(os.path.join(model_dir, "metrics.jsonl"), "a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": step, **flat}) + "\n")
                with writer.as_default(step=step):
                    for name, value in flat.items():
                        summaries.write_scalar(f"train/{name}", value, step)
                    for group, opt in optimizers.items():
                        summaries.write_scalar(f"train/lr/{group}", _lr(opt), step)
                    summaries.write_scalar("train/steps_per_second", steps_per_second, step)
            if step % checkpoint_every == 0:
                manager.save(checkpoint_number=step)
            if step % log_every == 0 or step == start + remaining:
                now = time.time()
                rate = (step - step_last) / max(now - t_last, 1e-9)
                eta = (num_steps - step) / rate if rate > 0 else float("inf")
                shown = " ".join(f"{k.split('/')[-1] if k.startswith('encoder/') else k}="
                                 f"{v:.4g}" for k, v in flat.items()
                                 if k.endswith("total_loss") or k in (
                                     "encoder/view_loss", "metrics/cross_view_mi"))
                log.info("step %d/%d (%.1f%%) | %s | %.2f steps/s | ETA %s", step, num_steps,
                         100.0 * step / num_steps, shown, rate, _format_eta(eta))
                t_last, step_last = now, step
        if manager.latest_checkpoint is None or int(step_var.numpy()) != checkpoints.checkpoint_step(
                manager.latest_checkpoint):
            manager.save(checkpoint_number=step)
        writer.flush()
        elapsed = time.time() - t_start
        summary.update(final_step=step, steps_run=step - start, seconds=elapsed,
                       steps_per_second=(step - start) / max(elapsed, 1e-9),
                       final_losses=last_losses, checkpoint=manager.latest_checkpoint)
        records.write_json(os.path.join(model_dir, "train_summary.json"), summary)
        log.info("done: step %d, checkpoint %s", step, manager.latest_checkpoint)
        return summary
    finally:
        tf.keras.mixed_precision.set_global_policy(previous_policy)


def _lr(optimizer):
    """The current learning rate as a float (works for mirrored variables too)."""
    return float(optimizer.learning_rate.numpy())
