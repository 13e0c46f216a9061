"""TFLite conversion of an export, for on-device embedding next to a mobile pose detector.

Converting the SavedModel directly (``TFLiteConverter.from_saved_model``) gives NaN embeddings: the
encoder's weights are Keras 3 variables, which the converter's own variable freezing does not read
(the normalised keypoints, computed without weights, come out right). :func:`convert` therefore freezes
one signature's variables into constants first (``convert_variables_to_constants_v2``) and converts
that graph; the TFLite model then gives the SavedModel's outputs to float rounding (tested against the
SavedModel in tests/test_own_evaluation.py).

One signature per ``.tflite`` file (default ``embed_with_scores``: canonical keypoints [N, 13, 2] and
scores [N, 13], what a detector gives); inputs and outputs keep the SavedModel's names. The export's
metadata and the signature go to ``<output>.json`` beside the model.
"""

import json
import os

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import convert_to_constants  # pylint: disable=no-name-in-module

from cv_mim import records
from cv_mim.serving import export as export_lib


def _frozen_function(signature_fn):
    frozen = convert_to_constants.convert_variables_to_constants_v2(signature_fn)
    names = [s.name for s in tf.nest.flatten(signature_fn.structured_outputs)]
    _, specs = signature_fn.structured_input_signature
    specs = [tf.TensorSpec(s.shape, s.dtype, name=k) for k, s in sorted(specs.items())]

    @tf.function(input_signature=specs)
    def named(*args):
        out = frozen(**{s.name: a for s, a in zip(specs, args)})
        return dict(zip(names, tf.nest.flatten(out)))

    return named.get_concrete_function()


def convert(export_dir, output, *, signature="embed_with_scores", trust_export=False):
    """Writes ``output`` (.tflite) for one signature of ``export_dir``; returns the sidecar dict."""
    module, metadata = export_lib.load_export(export_dir, trust_export=trust_export)
    if signature not in module.signatures:
        raise ValueError(f"{export_dir}: no signature {signature!r}; it has "
                         f"{sorted(module.signatures)}")
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [_frozen_function(module.signatures[signature])], module)
    model = converter.convert()
    parent = os.path.dirname(records.absolute(output))
    if parent:
        tf.io.gfile.makedirs(parent)
    with tf.io.gfile.GFile(output, "wb") as f:
        f.write(model)
    sidecar = {"format": "cv_mim.tflite/1", "signature": signature,
               "export_dir": records.absolute(export_dir), "export": metadata}
    with tf.io.gfile.GFile(output + ".json", "w") as f:
        f.write(json.dumps(sidecar, indent=2, sort_keys=True, default=str))
    return sidecar


class TFLiteEmbedder:
    """Runs a converted model: ``embedder(keypoints_2d=..., keypoint_scores=...)`` -> dict of numpy."""

    def __init__(self, path):
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"TFLite model not found: {path}")
        with tf.io.gfile.GFile(path, "rb") as f:  # model_content: gs:// paths work too
            self.interpreter = tf.lite.Interpreter(model_content=f.read())
        self._runner = self.interpreter.get_signature_runner()
        self.inputs = tuple(self.interpreter.get_signature_list()["serving_default"]["inputs"])

    def __call__(self, **inputs):
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise ValueError(f"TFLite model inputs {self.inputs}; missing {sorted(missing)}")
        return self._runner(**{k: np.asarray(v, np.float32) for k, v in inputs.items()})
