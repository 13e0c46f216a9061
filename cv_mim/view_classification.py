r"""View classification on Penn Action (App. C, Table 10).

    python -m cv_mim.view_classification --embeddings=runs/penn_embeddings.npz \
        --output_dir=runs/view_classification
    python -m cv_mim.view_classification --export_dir=runs/cv_mim/export \
        --input=DATA/penn_action/labels --output_dir=runs/view_classification

With --input the dataset is embedded (by --export_dir, default the shipped encoder) by the same
library function as ``cv_mim.embed``.
"""

import os

from absl import app
from absl import flags

from cv_mim import cli
from cv_mim.data import registry as data_registry
from cv_mim.downstream import view_classification as view_lib
from cv_mim.serving import embed as embed_lib
from cv_mim.serving import pretrained

FLAGS = flags.FLAGS
flags.DEFINE_string("embeddings", None, "A cv_mim.embed output of Penn Action (.npz).")
flags.DEFINE_string("export_dir", None, "Embed --input with this export first (default without "
                    "--embeddings: the shipped pretrained encoder, cv_mim/pretrained/).")
flags.DEFINE_string("input", None, "Penn Action labels/ folder to embed (with --export_dir, "
                    "default the shipped encoder).")
flags.DEFINE_string("output_dir", None, "Results directory.")
flags.DEFINE_bool("skip_malformed", False, "When embedding --input: skip malformed label "
                  "files (counted in the log) instead of stopping.")
cli.define_invisible_joints_flag("When embedding --input: ")
cli.define_trust_export_flag()
flags.DEFINE_enum("dataset", "penn_action", ("penn_action",) + data_registry.DETECTOR_DATASETS,
                  "Dataset of --input (a detector format: your own clips with "
                  "views and split from the file or --labels_csv).")
cli.define_detector_flags("When embedding --input in a detector format: ")
flags.DEFINE_list("features", list(view_lib.DEFAULT_FEATURES),
                  f"Inputs to compare, from {view_lib.FEATURES} (pose_embedding: z_p's view "
                  "predictability, lower = more view-invariant).")
flags.DEFINE_integer("steps", 10_000, "Iterations (App. C: 1e4).")
flags.DEFINE_integer("batch_size", 64, "Batch size (App. C: 64).")
flags.DEFINE_float("learning_rate", 1e-2, "AdaGrad learning rate (App. C: 1e-2).")
flags.DEFINE_list("seeds", ["0"], "One run per seed.")
flags.DEFINE_string("method", None, "Name of the representation in the table.")
flags.mark_flag_as_required("output_dir")


@cli.friendly_errors
def main(argv):
    cli.start(argv)
    unknown = sorted(set(FLAGS.features) - set(view_lib.FEATURES))
    if unknown:
        raise app.UsageError(f"--features: unknown {unknown}; choose from "
                             f"{view_lib.FEATURES}")
    embeddings = FLAGS.embeddings
    if embeddings and (FLAGS.export_dir or FLAGS.input):
        raise app.UsageError("give either --embeddings or --export_dir/--input, not both")
    if not embeddings:
        if not FLAGS.input:
            raise app.UsageError("give --embeddings (from cv_mim.embed) or --input (embedded with "
                                 "--export_dir, default the shipped encoder)")
        kwargs = ({"skip_malformed": FLAGS.skip_malformed,
                   "invisible_joints": FLAGS.invisible_joints} if FLAGS.dataset == "penn_action"
                  else cli.detector_kwargs(FLAGS))
        embeddings = embed_lib.embed_dataset(pretrained.resolve(FLAGS.export_dir), FLAGS.dataset,
                                             FLAGS.input,
                                             os.path.join(FLAGS.output_dir, "embeddings.npz"),
                                             trust_export=FLAGS.trust_export, **kwargs)
    seeds = cli.parse_seeds(FLAGS.seeds)
    results = view_lib.run(embeddings=embeddings, output_dir=FLAGS.output_dir,
                           features=tuple(FLAGS.features), steps=FLAGS.steps,
                           batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
                           seeds=seeds, method=FLAGS.method)
    print(view_lib.markdown_table(results))


if __name__ == "__main__":
    cli.run(main)
