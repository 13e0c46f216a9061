"""An exclusive lock on a model_dir, so two runs never write into one directory.

The lock is a small JSON file ``<model_dir>/.lock`` naming the host and process that holds it. It is
created by renaming a private temporary file onto the lock path without overwriting (through
``tf.io.gfile``, so ``gs://`` directories work too). A lock left by a process that is no longer alive
on this host (a killed run) is stale and is reclaimed with a warning; a lock held by a live process,
or by a process on another host (whose liveness cannot be checked from here), refuses the run with one
clear error naming the holder and the file.
"""

import contextlib
import json
import logging
import os
import socket
import time
import uuid

import tensorflow as tf

log = logging.getLogger("cv_mim.pretrain")

LOCK_FILE = ".lock"


class ModelDirLockedError(FileExistsError):
    """Another live run holds the model_dir's lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_holder(path):
    try:
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)
    except (tf.errors.OpError, ValueError):
        return None  # half-written or unreadable: treated as stale below


def _is_stale(holder) -> bool:
    if not isinstance(holder, dict) or not isinstance(holder.get("pid"), int):
        return True
    return holder.get("host") == socket.gethostname() and not _alive(holder["pid"])


def acquire(model_dir: str) -> str:
    """Takes the lock of ``model_dir`` (which must exist); returns the lock path.

    Raises:
      ModelDirLockedError: a live process (or one on another host) holds it.
    """
    path = os.path.join(model_dir, LOCK_FILE)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
    # Not named ".lock…": TF's ram:// file system takes a path that prefixes a file for a folder.
    tmp = os.path.join(model_dir, f".tmp-lock-{uuid.uuid4().hex}")
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(me))
    try:
        for _ in range(2):  # second attempt after reclaiming a stale lock
            try:
                tf.io.gfile.rename(tmp, path, overwrite=False)
                return path
            except tf.errors.AlreadyExistsError:
                holder = _read_holder(path)
                if not _is_stale(holder):
                    raise ModelDirLockedError(
                        f"{model_dir} is in use by another run (process {holder.get('pid')} on "
                        f"{holder.get('host')}, lock file {path}); use another --model_dir, or "
                        f"delete {path} if that run is gone") from None
                log.warning("reclaiming the stale lock %s of process %s on %s (no longer running)",
                            path, (holder or {}).get("pid"), (holder or {}).get("host"))
                tf.io.gfile.remove(path)
        raise ModelDirLockedError(f"{model_dir}: another run took the lock {path} while it was "
                                  "being reclaimed")
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)


def release(path: str):
    """Removes the lock file if this process still holds it."""
    holder = _read_holder(path)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        tf.io.gfile.remove(path)


@contextlib.contextmanager
def locked(model_dir: str, enabled: bool = True):
    """``with locked(model_dir):`` holds the lock for the block (no-op when not ``enabled``)."""
    if not enabled:
        yield None
        return
    path = acquire(model_dir)
    try:
        yield path
    finally:
        release(path)
