r"""Exports a pretrained encoder as a SavedModel that embeds raw 2D keypoints.

    python -m cv_mim.export --model_dir=runs/cv_mim --export_dir=runs/cv_mim/export
    python -m cv_mim.export ... --tflite=runs/cv_mim/embed.tflite   # also a TFLite model

Signatures and the metadata are documented in :mod:`cv_mim.serving.export` and in the README.
"""


from absl import flags

from cv_mim import cli
from cv_mim.serving import export as export_lib
from cv_mim.training import validation

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A cv_mim.pretrain model_dir.")
flags.DEFINE_string("export_dir", None, "Where the SavedModel goes.")
flags.DEFINE_string("checkpoint", "latest", "latest: the newest checkpoint of model_dir; best: "
                    "model_dir/best/ (the best validation value of pretraining); else a checkpoint "
                    "path (prefix of a .index file) or folder.")
flags.DEFINE_float("min_keypoint_score", 0.0,
                   "Joints whose score is <= this are treated as missing (score signatures).")
flags.DEFINE_bool("overwrite", False, "Replace an existing export_dir.")
flags.DEFINE_string("tflite", None, "Also write a TFLite model of one signature here (.tflite, with "
                    "<path>.json metadata).")
flags.DEFINE_enum("tflite_signature", "embed_with_scores", list(export_lib.SIGNATURES),
                  "Signature of the TFLite model.")
flags.mark_flags_as_required(["model_dir", "export_dir"])


def _validation_text(metadata):
    """", <metric> <value>" of the exported checkpoint's validation, if it was validated."""
    record = metadata.get("validation") or {}
    name = record.get("metric", validation.DEFAULT_METRIC)
    value = record.get("value", (record.get("validation") or {}).get(name))
    return "" if value is None else f", {name} {value:.4g}"


@cli.friendly_errors
def main(argv):
    cli.start(argv)
    metadata = export_lib.export(FLAGS.model_dir, FLAGS.export_dir, checkpoint=FLAGS.checkpoint,
                                 min_keypoint_score=FLAGS.min_keypoint_score,
                                 overwrite=FLAGS.overwrite)
    print(f"exported {metadata['algorithm']} ({metadata['checkpoint_choice']} checkpoint, step "
          f"{metadata['checkpoint_step']}{_validation_text(metadata)}) to "
          f"{FLAGS.export_dir}; signatures: {', '.join(metadata['signatures'])}")
    if FLAGS.tflite:
        from cv_mim.serving import tflite  # pylint: disable=import-outside-toplevel
        tflite.convert(FLAGS.export_dir, FLAGS.tflite, signature=FLAGS.tflite_signature,
                       trust_export=True)  # the export this command just wrote
        print(f"wrote {FLAGS.tflite} ({FLAGS.tflite_signature})")


if __name__ == "__main__":
    cli.run(main)
