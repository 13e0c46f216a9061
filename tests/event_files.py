"""Reading TensorBoard event files in tests, with TensorFlow alone (no tensorboard package)."""
import os

import tensorflow as tf


def scalar_events(logdir):
    """``{tag: [(step, value), ...]}`` of every scalar in ``logdir``'s event files (file order)."""
    from tensorflow.core.util import event_pb2  # pylint: disable=import-outside-toplevel
    tags = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(str(logdir), "events.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor))))
    return tags
