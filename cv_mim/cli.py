"""Shared behaviour of the absl binaries."""

import functools
import logging
import sys

from absl import app


def friendly_errors(main):
    """Bad input (missing or malformed files, bad shapes, bad flag combinations) ends the binary with
    one clear line on stderr and exit status 2, instead of a Python traceback. The library functions
    raise ValueError / FileNotFoundError / FileExistsError with messages that name the file, flag or
    shape; set CV_MIM_TRACEBACK=1 to see the full traceback."""

    @functools.wraps(main)
    def wrapper(argv):
        import os  # pylint: disable=import-outside-toplevel
        try:
            return main(argv)
        except (ValueError, FileNotFoundError, FileExistsError) as err:
            if os.environ.get("CV_MIM_TRACEBACK"):
                raise
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def start(argv):
    """Common prologue of every binary's main: no positional arguments; INFO logging."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger().setLevel(logging.INFO)


def define_invisible_joints_flag(context=""):
    """Defines ``--invisible_joints`` (Penn Action's rule, :func:`cv_mim.data.penn_action.joint_mask`)."""
    from absl import flags  # pylint: disable=import-outside-toplevel

    from cv_mim.data import penn_action  # pylint: disable=import-outside-toplevel
    flags.DEFINE_enum("invisible_joints", "annotated", list(penn_action.INVISIBLE_JOINT_RULES),
                      f"{context}Penn Action invisible joints: 'annotated' uses their annotated "
                      "positions (only placeholders are missing), 'missing' treats them all as "
                      "missing.")


DETECTOR_FLAGS = ("layout", "skip_layout_check", "min_score", "labels_csv", "split_prefix",
                  "num_frames")


def define_detector_flags(context="Detector formats: "):
    """Defines the flags of the detector-format readers (:data:`cv_mim.data.registry.DETECTOR_DATASETS`);
    :func:`detector_kwargs` turns them into ``load_clips`` arguments."""
    from absl import flags  # pylint: disable=import-outside-toplevel

    from cv_mim.data import registry  # pylint: disable=import-outside-toplevel
    flags.DEFINE_string("layout", None, f"{context}joint layout of the file (required when the file "
                        "does not record it), one of " + ", ".join(registry.LAYOUT_CHOICES) + ".")
    flags.DEFINE_bool("skip_layout_check", False, f"{context}do not refuse keypoints that look like "
                      "another layout of the same size (cv_mim.keypoints.plausibility).")
    flags.DEFINE_float("min_score", 0.0, f"{context}joints with a score <= this are missing.")
    flags.DEFINE_string("labels_csv", None, f"{context}CSV sidecar with clip_id and any of label, "
                        "view, split, subject.")
    flags.DEFINE_string("split_prefix", None, f"{context}skeleton_pickle split lists to use (e.g. "
                        "xsub, xview); default the file's first *_train list.")
    flags.DEFINE_integer("num_frames", None, f"{context}resample every clip to this many frames "
                         "(action recognition needs one clip length).")


def detector_kwargs(flag_values):
    """``load_clips`` keyword arguments from the flags of :func:`define_detector_flags`."""
    return {name: getattr(flag_values, name) for name in DETECTOR_FLAGS}


def parse_seeds(values):
    """--seeds as integers, or a usage error naming the flag."""
    try:
        return [int(v) for v in values]
    except ValueError:
        raise app.UsageError(f"--seeds must be integers, got {values}") from None
