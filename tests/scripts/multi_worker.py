"""One worker of a multi-worker pretraining run (or, without TF_CONFIG, the one-process reference).

    TF_CONFIG='{"cluster": {"worker": ["localhost:P0", "localhost:P1"]}, "task": {"type": "worker",
    "index": 0}}' python tests/scripts/multi_worker.py MODEL_DIR DATA_DIR STEPS [VAL_EVERY]

With VAL_EVERY, pretraining validates on the held-out subject S9 every VAL_EVERY steps (and keeps
``best/``).

Prints one JSON line: the run's summary plus the final encoder weights' checksum terms.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cv_mim.training import distribution  # pylint: disable=wrong-import-position

# Strategy first, before any TensorFlow op (collectives are configured at start-up).
strategy = distribution.create_strategy("multi_worker" if "TF_CONFIG" in os.environ else "default")

from cv_mim.algorithms import config as config_lib  # pylint: disable=wrong-import-position
from cv_mim.training import loop  # pylint: disable=wrong-import-position
from cv_mim.training import sources  # pylint: disable=wrong-import-position

model_dir, data_dir, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
val_every = int(sys.argv[4]) if len(sys.argv) > 4 else 0
source = sources.load_pair_source("h36m", data_dir=data_dir, subjects=("S1",))
validation = sources.load_validation_set("h36m", data_dir=data_dir, subjects=("S1",),
                                         val_subjects=("S9",)) if val_every else None
# Default dropout (0.25): masks are functions of (step seed, global example index), so 1 × 16 and
# 2 × 8 draw the same masks.
config = config_lib.ModelConfig(hidden_dim=32)
summary = loop.run(model_dir=model_dir, config=config, source=source, batch_size=16,
                   num_steps=steps, seed=5, strategy=strategy, summary_every=1,
                   checkpoint_every=2, log_every=steps, steps_per_loop=2,
                   flags_record={"worker": os.environ.get("TF_CONFIG", "single")},
                   validation=validation, val_every=val_every)
print(json.dumps({"replicas": summary["replicas"], "final_step": summary["final_step"],
                  "losses": summary["final_losses"], "checkpoint": summary["checkpoint"]}))
