r"""Action recognition on Penn Action / NTU RGB+D with raw 2D poses or an export's embeddings.

    python -m cv_mim.action_recognition --embeddings=runs/penn_embeddings.npz \
        --setting=single_shot --output_dir=runs/ar/penn_single_shot
    python -m cv_mim.action_recognition --export_dir=runs/cv_mim/export --dataset=penn_action \
        --input=DATA/penn_action/labels --setting=full --output_dir=runs/ar/penn_full

With --input the dataset is first embedded (by --export_dir, default the shipped encoder) by the
same library function as ``cv_mim.embed``
(written to output_dir/embeddings.npz). Protocols: cv_mim/downstream/action_recognition.py.
"""


from absl import flags

from cv_mim import cli
from cv_mim.downstream import action_recognition as action_lib
from cv_mim.downstream import classifiers

FLAGS = flags.FLAGS


cli.define_embedding_input_flags(("penn_action", "ntu_rgbd"),
                                embeddings_help="A cv_mim.embed output (.npz).")


flags.DEFINE_string("output_dir", None, "Results directory.")


flags.DEFINE_enum("setting", "single_shot", action_lib.SETTINGS, "Protocol.")


flags.DEFINE_enum("features", "embedding", action_lib.FEATURE_CHOICES,
                  "embedding: pose embedding (paper); raw: normalised 2D keypoints.")


flags.DEFINE_string("train_view", None, "single_shot: one training view (Penn: left/right/front/"
                    "back; NTU: C1R1..C3R2); default: every view in turn.")


flags.DEFINE_float("fraction", None, "limited: fraction of training clips.")


flags.DEFINE_enum("benchmark", "cross_subject", action_lib.BENCHMARKS, "NTU full/limited split.")


flags.DEFINE_enum("classifier", None, list(classifiers.CLASSIFIERS),
                  "Default: temporal_convnet (Penn, Table 6), resnet1d (NTU, Table 7).")


flags.DEFINE_integer("steps", 2000, "Training steps (paper: 1e6).")


flags.DEFINE_integer("batch_size", 64, "Batch size (paper: 64).")


flags.DEFINE_float("learning_rate", None, "Adam learning rate (paper: 1e-5 Penn, 1e-3 NTU; "
                   "CPU default 1e-3).")


flags.DEFINE_list("seeds", ["0"], "One run per seed; mean ± std over runs.")


flags.DEFINE_enum("flip_mode", "none", action_lib.FLIP_MODES,
                  "Penn horizontal flip: keep (mirror, keep labels) or swap (mirror, swap L/R).")


flags.DEFINE_bool("restrict_to_seen_classes", False,
                  "Evaluate only classes present in the training split (documented deviation).")


flags.DEFINE_string("method", None, "Row name in the tables.")


flags.mark_flag_as_required("output_dir")


@cli.friendly_errors
def main(argv):
    cli.start(argv)
    embeddings = cli.embeddings_from_flags(
        FLAGS, FLAGS.output_dir,
        flip_modes_of=lambda dataset: ("keep", "swap") if dataset == "penn_action" else ())
    seeds = cli.parse_seeds(FLAGS.seeds)
    results = action_lib.run(
        embeddings=embeddings, output_dir=FLAGS.output_dir, setting=FLAGS.setting,
        features=FLAGS.features, train_view=FLAGS.train_view, fraction=FLAGS.fraction,
        benchmark=FLAGS.benchmark, classifier=FLAGS.classifier, steps=FLAGS.steps,
        batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate, seeds=seeds,
        flip_mode=FLAGS.flip_mode, restrict_to_seen_classes=FLAGS.restrict_to_seen_classes,
        method=FLAGS.method)
    print(action_lib.markdown_table(results))


if __name__ == "__main__":
    cli.run(main)
