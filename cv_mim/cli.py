"""Shared behaviour of the absl binaries: one clear line for bad input, a quiet start-up.

Every binary ends with ``cli.run(main)`` and decorates ``main`` with :func:`friendly_errors`:

* a bad flag value (absl parse error, missing required flag, failed validator) or a bad input file is
  ONE line ``error: ...`` on stderr and exit status 2 — no traceback, no 59 lines of flag help;
* importing this module (binaries import it before any TensorFlow-importing library) silences the
  C++ start-up noise TensorFlow prints on a machine without a GPU (CUDA/oneDNN notices written before
  absl's logging is initialised, which ``TF_CPP_MIN_LOG_LEVEL`` cannot reach). Set
  ``CV_MIM_TF_LOGS=1`` to see it, ``CV_MIM_TRACEBACK=1`` to get tracebacks instead of one-line errors.
"""

import contextlib
import functools
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile

from absl import app
from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Errors that bad input raises in the libraries (their messages name the flag, file or shape).
# OSError subclasses cover unwritable / misplaced paths (their message names the path).
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, PermissionError, NotADirectoryError,
               IsADirectoryError, app.UsageError, flags.Error)


@contextlib.contextmanager
def _stderr_captured():
    """Sends file descriptor 2 to a temporary file; replays it if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            tmp.seek(0)
            os.write(2, tmp.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` (and its device discovery) with stderr captured."""

    def find_spec(self, fullname, path, target=None):  # pylint: disable=unused-argument
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module):
            with _stderr_captured():
                exec_module(module)
                module.config.list_physical_devices("GPU")  # the CUDA probe prints here

        spec.loader.exec_module = quiet_exec_module
        return spec


if "tensorflow" not in sys.modules and not os.environ.get("CV_MIM_TF_LOGS"):
    sys.meta_path.insert(0, _QuietTensorFlowImport())


def error_line(err) -> str:
    """``error: <message>`` on one line (a multi-line message is joined with '; ')."""
    text = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return f"error: {text or type(err).__name__}"


def fail(err):
    """Prints the one-line error and exits with status 2."""
    print(error_line(err), file=sys.stderr)
    sys.exit(2)


def friendly_errors(main):
    """Bad input (missing or malformed files, bad shapes, bad flag values or combinations) ends the
    binary with one clear line on stderr and exit status 2, instead of a Python traceback. The library
    functions raise ValueError / FileNotFoundError / ... with messages that name the file, flag or
    shape; set CV_MIM_TRACEBACK=1 to see the full traceback."""

    @functools.wraps(main)
    def wrapper(argv):
        try:
            return main(argv)
        except USER_ERRORS as err:
            if os.environ.get("CV_MIM_TRACEBACK"):
                raise
            fail(err)

    return wrapper


def parse_flags(argv):
    """absl's flag parsing, but a parse error is one line and exit 2 (absl: usage text, exit 1)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        fail(err)


def run(main):
    """``absl.app.run(main)`` with :func:`parse_flags` (every binary's entry point)."""
    app.run(main, flags_parser=parse_flags)


def start(argv):
    """Common prologue of every binary's main: no positional arguments; INFO logging."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.getLogger().setLevel(logging.INFO)


def define_trust_export_flag():
    """Defines ``--trust_export`` (skip the op allow-list check of an export, see the README)."""
    flags.DEFINE_bool("trust_export", False,
                      "Load an export even if its graphs hold ops cv_mim.export never writes (file, "
                      "Python or network ops). A SavedModel is a program: only for trusted exports.")


def define_invisible_joints_flag(context=""):
    """Defines ``--invisible_joints`` (Penn Action's rule, :func:`cv_mim.data.penn_action.joint_mask`)."""
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


def define_embedding_input_flags(datasets, *, default_dataset=None, embeddings_help,
                                  input_help="Dataset path to embed"):
    """Defines the flags of a downstream binary that reads ``--embeddings`` or embeds ``--input``
    itself (``--export_dir``, ``--dataset``, the readers' flags); :func:`embeddings_from_flags`
    turns them into an embeddings file. ``datasets`` are the reader names ``--dataset`` accepts."""
    from cv_mim.data import registry  # pylint: disable=import-outside-toplevel
    flags.DEFINE_string("embeddings", None, embeddings_help)
    flags.DEFINE_string("export_dir", None, "Embed --input with this export first (default without "
                        "--embeddings: the shipped pretrained encoder, cv_mim/pretrained/).")
    flags.DEFINE_enum("dataset", default_dataset, tuple(datasets) + registry.DETECTOR_DATASETS,
                      "Dataset of --input; a detector format gives your own labelled clips "
                      "(labels / views / split from the file or --labels_csv).")
    flags.DEFINE_string("input", None, f"{input_help} (with --export_dir, default the shipped "
                        "encoder).")
    if "ntu_rgbd" in datasets:
        flags.DEFINE_string("skip_list", None, "NTU: names of samples to skip (when embedding "
                            "--input).")
    flags.DEFINE_bool("skip_malformed", False, "When embedding --input: skip malformed files "
                      "(counted in the log) instead of stopping.")
    define_invisible_joints_flag("When embedding --input: ")
    define_trust_export_flag()
    define_detector_flags("When embedding --input in a detector format: ")


def embeddings_from_flags(flag_values, output_dir, flip_modes_of=lambda dataset: ()):
    """The embeddings file of the flags of :func:`define_embedding_input_flags`: ``--embeddings``,
    or ``--input`` embedded (by ``--export_dir``, default the shipped encoder) into
    ``output_dir/embeddings.npz`` by the same library function as ``cv_mim.embed``.
    ``flip_modes_of(dataset)`` gives the flip modes to embed."""
    # pylint: disable=import-outside-toplevel
    from cv_mim.data import registry
    from cv_mim.serving import embed as embed_lib
    from cv_mim.serving import pretrained
    fv = flag_values
    if fv.embeddings and (fv.export_dir or fv.input):
        raise app.UsageError("give either --embeddings or --export_dir/--input, not both")
    if fv.embeddings:
        return fv.embeddings
    if not fv.dataset or not fv.input:
        raise app.UsageError("give --embeddings (from cv_mim.embed), or --dataset and --input "
                             "(embedded with --export_dir, default the shipped encoder)")
    if fv.dataset in registry.DETECTOR_DATASETS:
        kwargs = detector_kwargs(fv)
    else:
        kwargs = {"skip_malformed": fv.skip_malformed}
        if fv.dataset == "ntu_rgbd":
            kwargs["skip_list"] = fv.skip_list
        if fv.dataset == "penn_action":
            kwargs["invisible_joints"] = fv.invisible_joints
    return embed_lib.embed_dataset(
        pretrained.resolve(fv.export_dir), fv.dataset, fv.input,
        os.path.join(output_dir, "embeddings.npz"), flip_modes=flip_modes_of(fv.dataset),
        trust_export=fv.trust_export, **kwargs)


def parse_seeds(values):
    """--seeds as integers, or a usage error naming the flag."""
    try:
        return [int(v) for v in values]
    except ValueError:
        raise app.UsageError(f"--seeds must be integers, got {values}") from None
