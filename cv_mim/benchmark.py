r"""Prints the project's performance figures as one table.

    python -m cv_mim.benchmark                      # every section, paper configuration
    python -m cv_mim.benchmark --sections=step --algorithms=cv_mim

Sections (code and definitions: :mod:`cv_mim.report.benchmark`):
  step      training-step time per algorithm in fp32, fp32+XLA and bfloat16 side by side in one run,
            each with its model FLOP rate as a fraction of the fp32 matmul peak (4096², same run) and
            as a multiple of the bare-matmul floor of the same layers in the same dtype; for CV-MIM,
            issue 17's targets (fp32 <= 1.55x, bf16 <= 1.0x the fp32 floor) marked met / NOT met.
  pipeline  input-pipeline pairs/s on one core against the step's consumption (headroom).
  memory    peak resident memory of synthesizing a world and of a short pretraining on it.
  inference SavedModel inference poses/s at batch 1, 256 and 4096.

The CPU used by other processes during each timing is printed beside it (this machine is shared).
"""

import os

from absl import app
from absl import flags

from cv_mim import cli

FLAGS = flags.FLAGS
_SECTIONS = ("step", "pipeline", "memory", "inference")  # checked again by the library
flags.DEFINE_list("sections", list(_SECTIONS), f"Sections to run, from {_SECTIONS}.")
flags.DEFINE_list("algorithms", ["cv_mim", "autoencoder", "vae", "beta_vae", "infonce", "dim"],
                  "Algorithms timed by the step section.")
flags.DEFINE_integer("batch_size", 256, "Pairs per step (paper: 256).")
flags.DEFINE_integer("hidden_dim", 1024, "Hidden width (paper: 1024).")
flags.DEFINE_float("seconds", 4.0, "Minimum timing window per figure (and for the matmul peak).")
flags.DEFINE_integer("steps_per_call", 10, "Training steps per compiled call in the step section "
                     "(as pretrain --steps_per_loop).")
flags.DEFINE_bool("xla", True, "Also time the XLA-compiled step.")
flags.DEFINE_bool("bf16", True, "Also time the bfloat16 mixed-precision step.")
flags.DEFINE_string("json_out", None, "Also write the figures as JSON here.")


@cli.friendly_errors
def main(argv):
    cli.start(argv)
    import logging  # pylint: disable=import-outside-toplevel
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from cv_mim import records  # pylint: disable=import-outside-toplevel
    from cv_mim.report import benchmark  # pylint: disable=import-outside-toplevel
    if FLAGS.seconds <= 0 or FLAGS.steps_per_call <= 0 or FLAGS.batch_size <= 0:
        raise app.UsageError("--seconds, --steps_per_call and --batch_size must be positive")
    table, results = benchmark.run(
        sections=tuple(FLAGS.sections), algorithms=tuple(FLAGS.algorithms),
        batch_size=FLAGS.batch_size, hidden_dim=FLAGS.hidden_dim, min_seconds=FLAGS.seconds,
        xla=FLAGS.xla, bf16=FLAGS.bf16, steps_per_call=FLAGS.steps_per_call,
        peak_seconds=max(FLAGS.seconds, 1.0))
    print("\n" + table)
    if FLAGS.json_out:
        records.write_json(FLAGS.json_out, results)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cli.run(main)
