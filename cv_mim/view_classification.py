r"""View classification on Penn Action (App. C, Table 10).

    python -m cv_mim.view_classification --embeddings=runs/penn_embeddings.npz \
        --output_dir=runs/view_classification
    python -m cv_mim.view_classification --export_dir=runs/cv_mim/export \
        --input=DATA/penn_action/labels --output_dir=runs/view_classification

With --input the dataset is embedded (by --export_dir, default the shipped encoder) by the same
library function as ``cv_mim.embed``.
"""


from absl import app
from absl import flags

from cv_mim import cli
from cv_mim.downstream import view_classification as view_lib

FLAGS = flags.FLAGS
cli.define_embedding_input_flags(("penn_action",), default_dataset="penn_action",
                                embeddings_help="A cv_mim.embed output of Penn Action (.npz).",
                                input_help="Penn Action labels/ folder or detector file to embed")
flags.DEFINE_string("output_dir", None, "Results directory.")
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
    embeddings = cli.embeddings_from_flags(FLAGS, FLAGS.output_dir)
    seeds = cli.parse_seeds(FLAGS.seeds)
    results = view_lib.run(embeddings=embeddings, output_dir=FLAGS.output_dir,
                           features=tuple(FLAGS.features), steps=FLAGS.steps,
                           batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
                           seeds=seeds, method=FLAGS.method)
    print(view_lib.markdown_table(results))


if __name__ == "__main__":
    cli.run(main)
