"""Runs the same CV-MIM steps on 1 and on 2 logical CPU replicas and prints the differences as JSON.

Run in a fresh process (logical devices must be configured before TensorFlow initialises):
    python tests/scripts/replica_equivalence.py [loss_weighting] [dropout_rate] [algorithm] \
        [alignment_loss_weight]

The default dropout is the model default (0.25): the masks are drawn per global example index from the
step seed (networks.StatelessDropout), so the replica split must not change them.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry
from cv_mim.algorithms import step as step_lib
from cv_mim.training import distribution
from cv_mim.training import summaries

GLOBAL_BATCH = 16
NUM_STEPS = 3
loss_weighting = sys.argv[1] if len(sys.argv) > 1 else "paper"
dropout_rate = float(sys.argv[2]) if len(sys.argv) > 2 else config_lib.ModelConfig().dropout_rate
algorithm = sys.argv[3] if len(sys.argv) > 3 else "cv_mim"
alignment_loss_weight = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0


def batches():
    rng = np.random.default_rng(7)
    out = []
    for _ in range(NUM_STEPS):
        anchor = rng.normal(scale=0.3, size=(GLOBAL_BATCH, 13, 2)).astype(np.float32)
        positive = (anchor + rng.normal(scale=0.05, size=anchor.shape)).astype(np.float32)
        out.append((anchor, positive))
    return out


def run(devices, initial_weights=None):
    strategy = tf.distribute.MirroredStrategy(devices)
    config = config_lib.ModelConfig(algorithm=algorithm, hidden_dim=64, dropout_rate=dropout_rate,
                                    loss_weighting=loss_weighting,
                                    alignment_loss_weight=alignment_loss_weight)
    with strategy.scope():
        tf.keras.utils.set_random_seed(0)
        alg = registry.get_algorithm(config).build()
        if initial_weights is not None:
            for name, net in alg.networks.items():
                net.set_weights(initial_weights[name])
        weights0 = {name: net.get_weights() for name, net in alg.networks.items()}
        opts = step_lib.create_optimizers(alg)
    step = distribution.make_train_step(strategy, alg, opts)
    history = []
    for i, (anchor, positive) in enumerate(batches()):
        ds = tf.data.Dataset.from_tensors((anchor, positive))
        a, p = next(iter(strategy.experimental_distribute_dataset(ds)))
        losses = step(a, p, distribution.step_seed(0, i))
        history.append({k: float(v) for k, v in summaries.flatten_losses(losses).items()})
    weights = {name: net.get_weights() for name, net in alg.networks.items()}
    return weights0, history, weights, strategy.num_replicas_in_sync


w0, hist1, w1, n1 = run(["/cpu:0"])
_, hist2, w2, n2 = run(["/cpu:0", "/cpu:1"], initial_weights=w0)
loss_diff = max(abs(hist1[i][k] - hist2[i][k]) / max(1.0, abs(hist1[i][k]))
                for i in range(NUM_STEPS) for k in hist1[i])
weight_diff = max(float(np.max(np.abs(a - b)))
                  for name in w1 for a, b in zip(w1[name], w2[name]))
moved = max(float(np.max(np.abs(a - b))) for name in w1 for a, b in zip(w0[name], w1[name]))
print(json.dumps({"replicas": [n1, n2], "max_rel_loss_diff": loss_diff,
                  "max_weight_diff": weight_diff, "max_weight_change": moved,
                  "losses_1": hist1[-1], "losses_2": hist2[-1]}))
