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


def parse_seeds(values):
    """--seeds as integers, or a usage error naming the flag."""
    try:
        return [int(v) for v in values]
    except ValueError:
        raise app.UsageError(f"--seeds must be integers, got {values}") from None
