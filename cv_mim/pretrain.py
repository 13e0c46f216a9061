r"""Pretrains CV-MIM (or a baseline) on multi-view 2D poses.

    python -m cv_mim.pretrain --flagfile=launch/h36m.flags
    python -m cv_mim.pretrain --flagfile=launch/synthetic.flags

See README.md ("Pretraining") for the data layout and every flag; the library entry point is
:func:`cv_mim.training.loop.run`.
"""


import os
import tempfile

from absl import app
from absl import flags

from cv_mim import checks
from cv_mim import cli
from cv_mim import pipeline
from cv_mim.algorithms import config as config_lib
from cv_mim.data import h36m
from cv_mim.keypoints import augmentation
from cv_mim.training import distribution
from cv_mim.training import loop
from cv_mim.training import sources
from cv_mim.training import validation

FLAGS = flags.FLAGS

# Data.
flags.DEFINE_enum("data_format", "h36m", sources.DATA_FORMATS,
                  "h36m: the VideoPose3D layout (data_3d_h36m.npz, data_2d_h36m_gt.npz, "
                  "cameras.json); authors_tfrecord: the authors' tf.Example files.")
flags.DEFINE_string("data_dir", None, "Directory with the Human3.6M-layout files.")
flags.DEFINE_string("data_3d", None, "3D poses .npz (overrides data_dir/data_3d_h36m.npz).")
flags.DEFINE_string("data_2d", None, "2D keypoints .npz (overrides data_dir/data_2d_h36m_gt.npz).")
flags.DEFINE_string("cameras", None, "cameras.json (overrides data_dir/cameras.json).")
flags.DEFINE_bool("use_2d_file", True, "Use the 2D file; if false, project the 3D through the "
                  "real cameras.")
flags.DEFINE_list("subjects", list(h36m.DEFAULT_SUBJECTS), "Training subjects.")
flags.DEFINE_enum("unit", "auto", list(h36m.UNITS), "Unit of the 3D file.")
flags.DEFINE_string("tfrecord_pattern", None, "File pattern of the authors' TFRecords.")
flags.DEFINE_enum("augmentation", "mixed", pipeline.AUGMENTATIONS,
                  "mixed: each view real or randomly projected with probability 0.5 (paper §4.2).")
flags.DEFINE_float("keypoint_dropout_rate", 0.0,
                   "Probability that a joint of a training view is marked missing (not in the paper "
                   "or the authors' code; 0 = off). For encoders that must embed poses with missing "
                   "detections.")
flags.DEFINE_list("projection_depth", [str(augmentation.DEFAULT_DEPTH)],
                  "Distance of the random virtual cameras from the hip, in normalised units (spine "
                  "length 1, about 0.5 m): one number (default: the authors' constant), or low,high "
                  "to draw one per projected view. The paper is silent on it; real Human3.6M cameras "
                  "stand about 10 units away.")
# Model: one flag per ModelConfig field (generated, so the flags and the config cannot drift).
_DEFINE = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string}
for _flag in config_lib.flag_fields():
    if _flag.choices:
        flags.DEFINE_enum(_flag.name, _flag.default, list(_flag.choices), _flag.help)
    else:
        _DEFINE[_flag.type](_flag.name, _flag.default, _flag.help)
# Optimisation.
flags.DEFINE_integer("batch_size", 256, "Global batch of positive pairs.")
flags.DEFINE_integer("num_steps", 5_000_000, "Training steps.")
flags.DEFINE_float("learning_rate", 0.02, "AdaGrad learning rate.")
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and augmentation.")
flags.DEFINE_bool("mixed_precision", False, "bfloat16 compute (mixed_bfloat16 policy).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the step (one replica only; refused with "
                  "more, where the cross-replica sums are not compiled).")
flags.DEFINE_integer("steps_per_loop", 1, "Steps per compiled call (no host sync between them); a "
                     "call never crosses a summary, checkpoint or log step, so the curve is the same.")
flags.DEFINE_bool("run_eagerly", False, "Run the step eagerly (debugging).")
# Run.
flags.DEFINE_string("model_dir", None, "Output directory (checkpoints, config, events).")
flags.DEFINE_enum("strategy", "default", distribution.STRATEGIES,
                  "default | mirrored (all local devices) | multi_worker (reads TF_CONFIG).")
flags.DEFINE_string("init_checkpoint", None, "Initialise from this checkpoint when model_dir has none.")
flags.DEFINE_integer("summary_every", 100, "Steps between TensorBoard scalars.")
flags.DEFINE_integer("checkpoint_every", 10_000, "Steps between checkpoints.")
flags.DEFINE_integer("log_every", 100, "Steps between progress lines.")
flags.DEFINE_integer("keep_checkpoints", 5, "Checkpoints kept.")
# Validation (cv_mim.training.validation): held-out subjects of data_dir, or explicit files.
flags.DEFINE_integer("val_every", 500, "Steps between validations (and the last step) when "
                     "validation data are given (--val_subjects or --val_data_3d); 0 = off.")
flags.DEFINE_list("val_subjects", [], "Held-out subjects of --data_dir (or of --val_data_3d) to "
                  "validate on, e.g. S9,S11 (the synthetic world's and Human3.6M's test subjects).")
flags.DEFINE_string("val_data_3d", None, "Validation 3D poses .npz (Human3.6M layout), e.g. the real "
                    "Human3.6M sample; all its subjects unless --val_subjects names some.")
flags.DEFINE_string("val_data_2d", None, "Validation 2D keypoints .npz (default: the 3D projected "
                    "through the cameras).")
flags.DEFINE_string("val_cameras", None, "Validation cameras.json (default: the training one).")
flags.DEFINE_integer("val_max_frames", 1000, "At most this many validation frames (evenly strided; "
                     "0 = all), so a validation costs seconds.")
flags.DEFINE_enum("val_metric", validation.DEFAULT_METRIC, list(validation.METRICS),
                  "Validation metric that picks the best/ checkpoint (higher is better): "
                  + "; ".join(f"{k}: {v}" for k, v in validation.METRIC_HELP.items()) + ".")
flags.mark_flag_as_required("model_dir")


def model_config_from_flags():
    return config_lib.from_flag_values({f.name: FLAGS[f.name].value for f in config_lib.flag_fields()})


def check_run_flags():
    """Validates the run flags the loop would only trip over later (ValueError naming the flag)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  (after cli: quiet start-up)
    checks.positive_float(FLAGS.learning_rate, "--learning_rate")
    if FLAGS.val_every < 0:
        raise ValueError(f"--val_every must be >= 0 (0 = off), got {FLAGS.val_every}")
    if not 0 <= FLAGS.keypoint_dropout_rate < 1:
        raise ValueError(f"--keypoint_dropout_rate must be in [0, 1), got "
                         f"{FLAGS.keypoint_dropout_rate!r}")
    _projection_depth()
    if FLAGS.init_checkpoint:
        given = FLAGS.init_checkpoint
        path = tf.train.latest_checkpoint(given) if tf.io.gfile.isdir(given) else given
        if not path or not tf.io.gfile.exists(f"{path}.index"):
            raise FileNotFoundError(f"--init_checkpoint {given}: no checkpoint there (give a "
                                    "model_dir or the prefix of a .index file)")
    _check_writable(FLAGS.model_dir)


def _check_writable(model_dir):
    """ValueError naming --model_dir when a local model_dir cannot be created or written."""
    if "://" in model_dir:  # remote file systems: left to tf.io.gfile
        return
    try:
        os.makedirs(model_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=model_dir):
            pass
    except OSError as err:
        raise ValueError(f"--model_dir {model_dir}: not a writable directory "
                         f"({err.strerror or type(err).__name__})") from None


@cli.friendly_errors
def main(argv):
    cli.start(argv)
    # The strategy comes first: a multi-worker strategy configures collectives at start-up, which
    # fails once any TensorFlow op (the data loading's) has run.
    strategy = distribution.create_strategy(FLAGS.strategy)
    try:
        config = model_config_from_flags()
    except ValueError as err:
        raise app.UsageError(str(err)) from None
    check_run_flags()
    # Validation first: its flag errors come before the (long) load of the training data.
    val_set = sources.load_validation_set(
        FLAGS.data_format, data_dir=FLAGS.data_dir, data_3d=FLAGS.data_3d, data_2d=FLAGS.data_2d,
        cameras=FLAGS.cameras, subjects=FLAGS.subjects, unit=FLAGS.unit,
        use_2d_file=FLAGS.use_2d_file, val_subjects=FLAGS.val_subjects,
        val_data_3d=FLAGS.val_data_3d, val_data_2d=FLAGS.val_data_2d,
        val_cameras=FLAGS.val_cameras, max_frames=FLAGS.val_max_frames)
    source = sources.load_pair_source(
        FLAGS.data_format, data_dir=FLAGS.data_dir, data_3d=FLAGS.data_3d, data_2d=FLAGS.data_2d,
        cameras=FLAGS.cameras, subjects=FLAGS.subjects, unit=FLAGS.unit,
        tfrecord_pattern=FLAGS.tfrecord_pattern, use_2d_file=FLAGS.use_2d_file)
    try:
        _train(config, source, strategy, val_set)
    except (loop.NonFiniteLossError, loop.NonFiniteWeightsError) as err:
        raise ValueError(f"training stopped: {err}") from None  # one line, exit 2


def _projection_depth():
    """--projection_depth as (low, high); ValueError naming the flag."""
    try:
        return augmentation.check_depth_range(FLAGS.projection_depth)
    except ValueError as err:
        raise ValueError(f"--projection_depth: {err}") from None


def _train(config, source, strategy, val_set):
    loop.run(
        model_dir=FLAGS.model_dir, config=config, source=source, batch_size=FLAGS.batch_size,
        num_steps=FLAGS.num_steps, learning_rate=FLAGS.learning_rate, seed=FLAGS.seed,
        strategy=strategy, steps_per_loop=FLAGS.steps_per_loop, init_checkpoint=FLAGS.init_checkpoint,
        augmentation=FLAGS.augmentation, keypoint_dropout_rate=FLAGS.keypoint_dropout_rate,
        projection_depth=_projection_depth(), summary_every=FLAGS.summary_every,
        checkpoint_every=FLAGS.checkpoint_every, log_every=FLAGS.log_every,
        keep_checkpoints=FLAGS.keep_checkpoints, run_eagerly=FLAGS.run_eagerly,
        jit_compile=FLAGS.jit_compile, mixed_precision=FLAGS.mixed_precision,
        flags_record=FLAGS.flag_values_dict(), validation=val_set, val_every=FLAGS.val_every,
        val_metric=FLAGS.val_metric)


if __name__ == "__main__":
    cli.run(main)
