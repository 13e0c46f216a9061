"""Downstream action recognition from per-frame pose features (paper §4.3, App. B.2).

* :mod:`cv_mim.action_recognition.models` — the temporal classifiers: the Temporal ConvNet of Table 6
  (Penn Action), ResNet1D of Table 7 (NTU RGB+D) and the Res-TCN baseline [20]; all output logits.
* :mod:`cv_mim.action_recognition.training` — a small deterministic trainer over precomputed per-frame
  features (numpy in, numpy out), evaluation (top-1 / top-5 / per-class / confusion) and the
  limited-supervision subsampling.
"""

from cv_mim.action_recognition.models import CLASSIFIERS, get_classifier
from cv_mim.action_recognition.training import (
    evaluate,
    mean_std,
    predict_logits,
    subsample_per_class,
    train_classifier,
)

__all__ = [
    "CLASSIFIERS",
    "get_classifier",
    "train_classifier",
    "predict_logits",
    "evaluate",
    "subsample_per_class",
    "mean_std",
]
