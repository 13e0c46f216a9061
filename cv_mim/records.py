"""Run records: JSON files written atomically, and results JSON + Markdown table pairs."""

import json
import logging
import os

import numpy as np
import tensorflow as tf

log = logging.getLogger("cv_mim")


def jsonable(obj):
    """numpy arrays/scalars → lists/numbers; NaN/inf → None (strict JSON has no NaN, e.g. the
    per-class accuracy of a class without test clips)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_json(path, payload):
    """Writes JSON atomically (temporary file + rename); works on any tf.io.gfile path."""
    head, tail = os.path.split(path)
    # A hidden sibling, not "<path>.tmp": TF's ram:// takes a path that prefixes a file for a folder.
    tmp = os.path.join(head, f".{tail}.tmp")
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(jsonable(payload), indent=2, sort_keys=True, default=str))
    tf.io.gfile.rename(tmp, path, overwrite=True)


def write_results(output_dir, results, json_name, table, table_name, heading=""):
    """Writes a run's results JSON and its Markdown table into ``output_dir`` and logs where.

    The binaries print the table themselves (stdout); logging it here too showed it twice."""
    tf.io.gfile.makedirs(output_dir)
    write_json(os.path.join(output_dir, json_name), results)
    with tf.io.gfile.GFile(os.path.join(output_dir, table_name), "w") as f:
        f.write((heading + "\n\n" if heading else "") + table + "\n")
    log.info("wrote %s and %s", os.path.join(output_dir, json_name),
             os.path.join(output_dir, table_name))


def absolute(path):
    """``path`` made absolute; a URL-like path (``gs://…``, ``ram://…``) is returned as it is."""
    path = str(path)
    return path if "://" in path else os.path.abspath(path)
