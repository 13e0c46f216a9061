r"""Exports a pretrained encoder as a SavedModel that embeds raw 2D keypoints.

    python -m cv_mim.export --model_dir=runs/cv_mim --export_dir=runs/cv_mim/export

Signatures and the metadata are documented in :mod:`cv_mim.export_lib` and in the README.
"""


from absl import flags

from cv_mim import cli
from cv_mim.serving import export as export_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A cv_mim.pretrain model_dir.")
flags.DEFINE_string("export_dir", None, "Where the SavedModel goes.")
flags.DEFINE_string("checkpoint", None, "A specific checkpoint (default: the newest in model_dir).")
flags.DEFINE_float("min_keypoint_score", 0.0,
                   "Joints whose score is <= this are treated as missing (score signatures).")
flags.DEFINE_bool("overwrite", False, "Replace an existing export_dir.")
flags.mark_flags_as_required(["model_dir", "export_dir"])


@cli.friendly_errors
def main(argv):
    cli.start(argv)
    metadata = export_lib.export(FLAGS.model_dir, FLAGS.export_dir, checkpoint=FLAGS.checkpoint,
                                 min_keypoint_score=FLAGS.min_keypoint_score,
                                 overwrite=FLAGS.overwrite)
    print(f"exported {metadata['algorithm']} (checkpoint step {metadata['checkpoint_step']}) to "
          f"{FLAGS.export_dir}; signatures: {', '.join(metadata['signatures'])}")


if __name__ == "__main__":
    cli.run(main)
