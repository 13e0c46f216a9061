"""TensorBoard scalars (TensorFlow alone, no tensorboard package) and the ``metrics.jsonl`` rows of a run;
both are trimmed back to the restored step when a run resumes."""

import json
import os

import tensorflow as tf


def _scalar_metadata():
    from tensorflow.core.framework import summary_pb2  # pylint: disable=import-outside-toplevel
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    return metadata.SerializeToString()


_SCALAR_METADATA = None


def write_scalar(name, value, step):
    """Writes a TensorBoard scalar to the default summary writer.

    ``tf.summary.scalar`` lives in the tensorboard package; this writes the same event (scalars plugin
    metadata) with TensorFlow alone, so training does not depend on tensorboard being installed.
    """
    global _SCALAR_METADATA
    if _SCALAR_METADATA is None:
        _SCALAR_METADATA = _scalar_metadata()
    return tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                            metadata=_SCALAR_METADATA)


def flatten_losses(nested, prefix=""):
    """{'encoder': {'cross_view_loss': t}} → {'encoder/cross_view_loss': t}."""
    flat = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_losses(value, prefix=f"{name}/"))
        else:
            flat[name] = value
    return flat


METRICS_FILE = "metrics.jsonl"


def append_metrics(model_dir, step, flat):
    """Appends one JSON line ``{"step": step, **flat}`` to ``model_dir/metrics.jsonl``."""
    with tf.io.gfile.GFile(os.path.join(model_dir, METRICS_FILE), "a") as f:
        f.write(json.dumps({"step": int(step), **flat}) + "\n")


def drop_metrics_after(model_dir, step):
    """Rewrites ``metrics.jsonl`` without rows past ``step`` (and without a torn last line), so a
    resumed run does not repeat the steps of the interrupted one. Returns the number dropped."""
    path = os.path.join(model_dir, METRICS_FILE)
    if not tf.io.gfile.exists(path):
        return 0
    with tf.io.gfile.GFile(path) as f:
        lines = f.read().splitlines()
    kept = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            kept.append(line)
    if len(kept) != len(lines):
        tmp = path + ".tmp"
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write("".join(line + "\n" for line in kept))
        tf.io.gfile.rename(tmp, path, overwrite=True)
    return len(lines) - len(kept)


def drop_events_after(logdir, step):
    """Rewrites the TensorBoard event files of ``logdir`` without summaries past ``step``.

    A resumed run writes the steps after its checkpoint again; without this, TensorBoard would show
    the interrupted run's rows and the resumed run's rows for the same steps. Only files that hold
    such rows are rewritten (a torn last record of a killed run is dropped too). Returns the number
    of events dropped.
    """
    from tensorflow.core.util import event_pb2  # pylint: disable=import-outside-toplevel
    dropped = 0
    for path in sorted(tf.io.gfile.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        kept, torn, late = [], False, 0
        try:
            for record in tf.data.TFRecordDataset(path):
                raw = record.numpy()
                event = event_pb2.Event.FromString(raw)
                if event.HasField("summary") and event.step > step:
                    late += 1
                else:
                    kept.append(raw)
        except tf.errors.DataLossError:
            torn = True
        if late or torn:
            tmp = path + ".tmp"
            with tf.io.TFRecordWriter(tmp) as writer:
                for raw in kept:
                    writer.write(raw)
            tf.io.gfile.rename(tmp, path, overwrite=True)
            dropped += late
    return dropped
