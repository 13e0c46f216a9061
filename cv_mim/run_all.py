r"""From nothing to the paper's comparison on the synthetic world, in one command.

    python -m cv_mim.run_all --workdir=runs/demo

The stages and their reuse rules are :mod:`cv_mim.report.demo`'s.
"""

import os

from absl import flags

from cv_mim import cli
from cv_mim.algorithms import registry
from cv_mim.report import demo

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "runs/demo", "Everything goes here.")
flags.DEFINE_list("algorithms", list(registry.ALGORITHMS), "Representation learners to compare.")
flags.DEFINE_enum("size", "default", ["tiny", "default"], "Synthetic world size.")
flags.DEFINE_integer("seed", 0, "Seed of the world, the pretraining and the classifiers.")
flags.DEFINE_integer("pretrain_steps", 2000, "Pretraining steps per method.")
flags.DEFINE_integer("pretrain_batch", 256, "Pretraining batch (pairs).")
flags.DEFINE_integer("hidden_dim", 512, "Encoder width for the demo (paper: 1024).")
flags.DEFINE_integer("classifier_steps", 600, "Action-recognition steps per training view.")
flags.DEFINE_integer("view_steps", 2000, "View-classification steps (paper: 1e4).")
flags.DEFINE_list("seeds", ["0"], "Classifier seeds (mean ± std over them).")
cli.define_trust_export_flag()
flags.DEFINE_bool("quick", False, "Smoke-test sizes (tiny world, few steps): checks the plumbing, "
                  "not the claims.")


@cli.friendly_errors
def main(argv):
    cli.start(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    kwargs = dict(workdir=FLAGS.workdir, algorithms=tuple(FLAGS.algorithms), size=FLAGS.size,
                  seed=FLAGS.seed, pretrain_steps=FLAGS.pretrain_steps,
                  pretrain_batch=FLAGS.pretrain_batch, hidden_dim=FLAGS.hidden_dim,
                  classifier_steps=FLAGS.classifier_steps, view_steps=FLAGS.view_steps,
                  seeds=tuple(cli.parse_seeds(FLAGS.seeds)), trust_export=FLAGS.trust_export)
    if FLAGS.quick:
        kwargs.update(size="tiny", pretrain_steps=30, pretrain_batch=64, hidden_dim=64,
                      classifier_steps=20, view_steps=50)
    report = demo.run(**kwargs)
    print(report["summary_text"])


if __name__ == "__main__":
    cli.run(main)
