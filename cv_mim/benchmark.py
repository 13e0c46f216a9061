r"""Prints the project's performance figures as one table.

    python -m cv_mim.benchmark                      # every section, paper configuration
    python -m cv_mim.benchmark --sections=step --algorithms=cv_mim

Sections:
  step      training-step throughput per algorithm (steps/s, pairs/s, model FLOP rate as a fraction of
            the fp32 matmul peak measured in the same run), tf.function vs XLA, and bfloat16.
  pipeline  input-pipeline pairs/s on one core against the step's consumption (headroom).
  memory    peak resident memory of a short synthetic pretraining run (subprocess).
  inference SavedModel inference poses/s at batch 1, 256 and 4096.

Figures are ratios against the machine's own matmul peak measured in this run; the CPU used by other
processes during each timing is printed beside it (this machine is shared).
"""

import logging
import os
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

from cv_mim import cli
from cv_mim import pipeline
from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry
from cv_mim.algorithms import step as step_lib
from cv_mim.report import benchmark as benchmark_lib
from cv_mim.serving import export as export_lib
from cv_mim.training import distribution

FLAGS = flags.FLAGS
SECTIONS = ("step", "pipeline", "memory", "inference")
flags.DEFINE_list("sections", list(SECTIONS), f"Sections to run, from {SECTIONS}.")
flags.DEFINE_list("algorithms", ["cv_mim", "autoencoder", "vae", "beta_vae", "infonce", "dim"],
                  "Algorithms timed by the step section.")
flags.DEFINE_integer("batch_size", 256, "Pairs per step (paper: 256).")
flags.DEFINE_integer("hidden_dim", 1024, "Hidden width (paper: 1024).")
flags.DEFINE_float("seconds", 4.0, "Minimum timing window per figure.")
flags.DEFINE_bool("xla", True, "Also time the XLA-compiled step.")
flags.DEFINE_bool("bf16", True, "Also time the bfloat16 mixed-precision step.")
flags.DEFINE_string("json_out", None, "Also write the figures as JSON here.")


def _step_section(rows, results, peak32, peak16):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    anchor, positive = benchmark_lib.random_pairs(FLAGS.batch_size)
    for name in FLAGS.algorithms:
        modes = [("fp32", False, False)]
        if FLAGS.xla:
            modes.append(("fp32+XLA", False, True))
        if FLAGS.bf16:
            modes.append(("bf16", True, False))
        ref_loss = None
        for label, bf16, xla in modes:
            previous = tf.keras.mixed_precision.global_policy()
            if bf16:
                tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
            try:
                tf.keras.utils.set_random_seed(0)
                cfg = config_lib.ModelConfig(algorithm=name, hidden_dim=FLAGS.hidden_dim)
                alg = registry.get_algorithm(cfg).build()
                opts = step_lib.create_optimizers(alg)
                strategy = tf.distribute.get_strategy()
                step = distribution.make_train_step(strategy, alg, opts, jit_compile=xla)
                seed = tf.constant([0, 0], tf.int64)
                first = step(anchor, positive, seed)
                loss0 = float(first["encoder"]["total_loss"])
                secs, mon = benchmark_lib.time_callable(
                    lambda: step(anchor, positive, seed)["encoder"]["total_loss"].numpy(),
                    min_seconds=FLAGS.seconds)
                macs = sum(benchmark_lib.dense_kernel_parameters(alg.networks[n])
                           for n in alg.networks)
                # Two views per pair; forward + backward ≈ 3 × forward; 2 FLOP per MAC.
                flop = 2 * 3 * macs * 2 * FLAGS.batch_size
                gflops = flop / secs / 1e9
                results.setdefault("step", {})[f"{name}/{label}"] = {
                    "ms_per_step": 1e3 * secs, "steps_per_s": 1 / secs,
                    "pairs_per_s": FLAGS.batch_size / secs, "gflop_per_step": flop / 1e9,
                    "gflops": gflops, "fraction_of_fp32_peak": gflops / peak32["gflops"],
                    "other_cores": mon.other_cores, "first_step_encoder_loss": loss0}
                if ref_loss is None:
                    ref_loss = loss0
                note = (f"{flop / 1e9:.1f} GFLOP/step, {gflops / peak32['gflops']:.2f} of fp32 "
                        f"peak")
                if label != "fp32":
                    note += f", first-step loss rel. diff vs fp32 {abs(loss0 - ref_loss) / abs(ref_loss):.1e}"
                rows.append(benchmark_lib.TimedFigure(
                    f"step {name} {label} (batch {FLAGS.batch_size})", 1e3 * secs, "ms/step",
                    mon.other_cores, note))
            finally:
                tf.keras.mixed_precision.set_global_policy(previous)


def _pipeline_section(rows, results):
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(0)
    n, c = 20000, 4
    kp3d = rng.normal(scale=0.5, size=(n, 13, 3)).astype(np.float32)
    kp2d = (rng.normal(scale=50, size=(n, c, 13, 2)) + 500).astype(np.float32)
    source = pipeline.PairSource(kp2d, kp3d)
    # One core for the pipeline: private threadpool of size 1.
    ds = pipeline.make_pair_dataset(source, batch_size=FLAGS.batch_size, seed=0,
                                     num_parallel_calls=1)
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    ds = ds.with_options(options)
    it = iter(ds)
    secs, mon = benchmark_lib.time_callable(lambda: next(it), min_seconds=FLAGS.seconds)
    pairs_per_s = FLAGS.batch_size / secs
    consumption = results.get("step", {}).get("cv_mim/fp32", {}).get("pairs_per_s")
    headroom = pairs_per_s / consumption if consumption else float("nan")
    results["pipeline"] = {"pairs_per_s_one_core": pairs_per_s,
                           "step_pairs_per_s": consumption, "headroom": headroom,
                           "other_cores": mon.other_cores}
    rows.append(benchmark_lib.TimedFigure(
        "input pipeline, 1 core (mixed augmentation)", pairs_per_s, "pairs/s", mon.other_cores,
        f"headroom {headroom:.1f}x over the fp32 CV-MIM step" if consumption else
        "run with the step section for the headroom"))


def _peak_rss_of(code):
    """Runs ``code`` in a fresh Python; returns (peak RSS in MB, CompletedProcess)."""
    code = code + ("\nimport resource\n"
                   "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("MAXRSS")]
    return (float(lines[-1].split()[1]) if proc.returncode == 0 and lines else float("nan")), proc


def _memory_section(rows, results):
    with tempfile.TemporaryDirectory() as tmp:
        world_rss, proc = _peak_rss_of(
            f"from cv_mim.data import synthetic\nsynthetic.generate_world({tmp!r} + '/world', seed=0)")
        with benchmark_lib.LoadMonitor() as mon:
            train_rss, proc2 = _peak_rss_of(
                "from cv_mim import algorithms, pretrain_lib\n"
                f"src = pretrain_lib.load_pair_source('h36m', data_dir={tmp!r} + '/world/h36m')\n"
                f"pretrain_lib.run(model_dir={tmp!r} + '/model', config=algorithms.ModelConfig(),"
                " source=src, batch_size=256, num_steps=30, log_every=1000, checkpoint_every=1000)")
        for value, p, name in ((world_rss, proc, "synthesizing the default world"),
                               (train_rss, proc2, "pretraining on it (paper model, batch 256)")):
            note = "target < 3000 MB" if "pretraining" in name else ""
            if value != value:  # NaN: the subprocess failed
                note = "FAILED: " + (p.stderr.strip().splitlines() or ["?"])[-1][:120]
            rows.append(benchmark_lib.TimedFigure(f"peak memory, {name}", value, "MB",
                                                  mon.other_cores, note))
        results["memory"] = {"world_peak_rss_mb": world_rss, "pretrain_peak_rss_mb": train_rss}


def _inference_section(rows, results, peak32):
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_lib.ModelConfig(hidden_dim=FLAGS.hidden_dim)
        alg = registry.get_algorithm(cfg).build()
        module = export_lib.EmbeddingModule(alg.encoder, {"algorithm": "cv_mim"})
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.embed})
        fn = tf.saved_model.load(tmp).signatures["serving_default"]
        macs = benchmark_lib.dense_kernel_parameters(alg.encoder)
        for batch in (1, 256, 4096):
            x = tf.constant(np.random.default_rng(0).normal(400, 60, (batch, 13, 2)), tf.float32)
            secs, mon = benchmark_lib.time_callable(
                lambda x=x: fn(keypoints_2d=x)["pose_embedding"].numpy(),
                min_seconds=FLAGS.seconds / 2)
            poses = batch / secs
            frac = 2 * macs * poses / 1e9 / peak32["gflops"]
            results.setdefault("inference", {})[str(batch)] = {
                "poses_per_s": poses, "fraction_of_fp32_peak": frac,
                "other_cores": mon.other_cores}
            rows.append(benchmark_lib.TimedFigure(
                f"SavedModel inference, batch {batch}", poses, "poses/s", mon.other_cores,
                f"{frac:.2f} of fp32 peak"))


@cli.friendly_errors
def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    unknown = sorted(set(FLAGS.sections) - set(SECTIONS))
    if unknown:
        raise app.UsageError(f"--sections: unknown {unknown}; choose from {SECTIONS}")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    info = benchmark_lib.machine_info()
    peak32 = benchmark_lib.matmul_peak(tf.float32)
    peak16 = benchmark_lib.matmul_peak(tf.bfloat16)
    rows = [
        benchmark_lib.TimedFigure("fp32 matmul peak (2048²)", peak32["gflops"], "GFLOP/s",
                                  peak32["other_cores"]),
        benchmark_lib.TimedFigure("bf16 matmul peak (2048²)", peak16["gflops"], "GFLOP/s",
                                  peak16["other_cores"],
                                  f"{peak16['gflops'] / peak32['gflops']:.2f}x fp32"),
    ]
    results = {"machine": info, "matmul_peak": {"fp32": peak32, "bf16": peak16}}
    if "step" in FLAGS.sections:
        _step_section(rows, results, peak32, peak16)
    if "pipeline" in FLAGS.sections:
        _pipeline_section(rows, results)
    if "memory" in FLAGS.sections:
        _memory_section(rows, results)
    if "inference" in FLAGS.sections:
        _inference_section(rows, results, peak32)
    print(f"\ncv_mim benchmark on {info.get('cpu', '?')} ({info['cpus']} CPUs), TensorFlow "
          f"{info['tensorflow']}, 1-min load average at start {info.get('load_average_1m', '?')}")
    print("| figure | value | other processes' CPU (cores) | note |")
    print("|---|---|---|---|")
    for row in rows:
        print(row.row())
    if FLAGS.json_out:
        from cv_mim import records  # pylint: disable=import-outside-toplevel
        records.write_json(FLAGS.json_out, results)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cli.run(main)
