r"""Action recognition on Penn Action / NTU RGB+D with raw 2D poses or an export's embeddings.

    python -m cv_mim.action_recognition --embeddings=runs/penn_embeddings.npz \
        --setting=single_shot --output_dir=runs/ar/penn_single_shot
    python -m cv_mim.action_recognition --export_dir=runs/cv_mim/export --dataset=penn_action \
        --input=DATA/penn_action/labels --setting=full --output_dir=runs/ar/penn_full

With --input the dataset is first embedded (by --export_dir, default the shipped encoder) by the
same library function as ``cv_mim.embed``
(written to output_dir/embeddings.npz). Protocols: cv_mim/downstream/action_recognition.py.
"""

import os

from absl import app
from absl import flags

from cv_mim import cli
from cv_mim.data import registry as data_registry
from cv_mim.downstream import action_recognition as action_lib
from cv_mim.downstream import classifiers
from cv_mim.serving import embed as embed_lib
from cv_mim.serving import pretrained

FLAGS = flags.FLAGS


flags.DEFINE_string("embeddings", None, "A cv_mim.embed output (.npz).")


flags.DEFINE_string("export_dir", None, "Embed --input with this export first (default without "
                    "--embeddings: the shipped pretrained encoder, cv_mim/pretrained/).")


flags.DEFINE_enum("dataset", None, ("penn_action", "ntu_rgbd") + data_registry.DETECTOR_DATASETS,
                  "Dataset of --input; a detector format gives your own "
                  "labelled clips (labels / views / split from the file or --labels_csv).")


flags.DEFINE_string("input", None, "Dataset path to embed (with --export_dir, default the shipped "
                    "encoder).")


flags.DEFINE_string("skip_list", None, "NTU: names of samples to skip (when embedding --input).")


flags.DEFINE_bool("skip_malformed", False, "When embedding --input: skip malformed files "
                  "(counted in the log) instead of stopping.")


cli.define_invisible_joints_flag("When embedding --input: ")
cli.define_trust_export_flag()
cli.define_detector_flags("When embedding --input in a detector format: ")


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
    embeddings = FLAGS.embeddings
    if embeddings and (FLAGS.export_dir or FLAGS.input):
        raise app.UsageError("give either --embeddings or --export_dir/--input, not both")
    if not embeddings:
        if not FLAGS.dataset or not FLAGS.input:
            raise app.UsageError("give --embeddings (from cv_mim.embed), or --dataset and --input "
                                 "(embedded with --export_dir, default the shipped encoder)")
        flips = ("keep", "swap") if FLAGS.dataset == "penn_action" else ()
        kwargs = {"skip_malformed": FLAGS.skip_malformed}
        if FLAGS.dataset == "ntu_rgbd":
            kwargs["skip_list"] = FLAGS.skip_list
        if FLAGS.dataset == "penn_action":
            kwargs["invisible_joints"] = FLAGS.invisible_joints
        if FLAGS.dataset in data_registry.DETECTOR_DATASETS:
            kwargs = cli.detector_kwargs(FLAGS)
        embeddings = embed_lib.embed_dataset(
            pretrained.resolve(FLAGS.export_dir), FLAGS.dataset, FLAGS.input,
            os.path.join(FLAGS.output_dir, "embeddings.npz"), flip_modes=flips,
            trust_export=FLAGS.trust_export, **kwargs)
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
