"""Distribution, compiled steps, checkpoints and summaries shared by the pretraining loop.

Strategies: ``default`` (one device), ``mirrored`` (all local GPUs, or the given devices) and
``multi_worker`` (MultiWorkerMirroredStrategy; reads ``TF_CONFIG``). Model, optimizers and the checkpoint
are created inside ``strategy.scope()``; the step runs ``algorithms.train_step`` on every replica through
``strategy.run`` inside one ``tf.function``.
"""

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
    """{'encoder': {'view_loss': t}} → {'encoder/view_loss': t}."""
    flat = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_losses(value, prefix=f"{name}/"))
        else:
            flat[name] = value
    return flat
