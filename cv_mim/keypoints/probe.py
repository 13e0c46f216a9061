"""How well a linear probe predicts the camera (view) from a feature: the view-predictability number.

Numpy and SciPy only: the one definition behind the retrieval report's camera probe
(:mod:`cv_mim.downstream.retrieval`) and the validation that runs during pretraining
(:mod:`cv_mim.training.validation`), so a training run tracks the number the report prints.

A pose embedding z_p that is truly view-invariant carries no information about the camera that saw the
pose, so a linear classifier predicting the camera from z_p should do no better than chance; the view
embedding z_v and the raw 2D keypoints should let it do much better. This module fits that classifier:
multinomial logistic regression (softmax, L2 penalty) on standardised features, solved to convergence
by L-BFGS. The objective is convex and the solver starts from zero, so the result depends on the seed
only through the train/test split; the split is by ``groups`` (frames, or blocks of consecutive frames,
or clips) so no frame or clip is seen both in training and in the test.
"""

import numpy as np
from scipy import optimize

# Consecutive frames are near-duplicates: a camera probe holds out blocks of this many frames.
FRAME_BLOCK = 10


def _softmax_loss(flat, x, y_onehot, l2):
    """Mean cross-entropy + l2/2·‖W‖² (bias unpenalised) of a softmax classifier, and its gradient."""
    d, k = x.shape[1], y_onehot.shape[1]
    w, b = flat[:d * k].reshape(d, k), flat[d * k:]
    logits = x @ w + b  # -> [N, K]
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -(y_onehot * log_p).sum() / n + 0.5 * l2 * (w ** 2).sum()
    residual = (np.exp(log_p) - y_onehot) / n  # -> [N, K]
    grad = np.concatenate([(x.T @ residual + l2 * w).ravel(), residual.sum(axis=0)])
    return loss, grad


def fit_softmax(x, y, num_classes, *, l2=1e-3, max_iter=500):
    """Weights [D, K] and bias [K] of an L2-penalised softmax regression on (x [N, D], y [N] ints)."""
    x = np.asarray(x, np.float64)
    y_onehot = np.eye(num_classes)[np.asarray(y)]
    start = np.zeros(x.shape[1] * num_classes + num_classes)
    res = optimize.minimize(_softmax_loss, start, args=(x, y_onehot, l2), jac=True,
                            method="L-BFGS-B", options={"maxiter": max_iter})
    d = x.shape[1]
    return res.x[:d * num_classes].reshape(d, num_classes), res.x[d * num_classes:]


def group_split(groups, *, test_fraction=0.3, seed=0):
    """Boolean test mask [N]: a seeded random ``test_fraction`` of the distinct groups (at least one
    group on each side), so all rows of a group fall on the same side."""
    groups = np.asarray(groups)
    names, inverse = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        raise ValueError(f"a held-out split needs at least 2 groups (frames/clips), got {len(names)}")
    num_test = int(np.clip(round(test_fraction * len(names)), 1, len(names) - 1))
    test_groups = np.random.default_rng(seed).permutation(len(names))[:num_test]
    return np.isin(inverse.ravel(), test_groups)


def view_probe(features, labels, groups, *, test_fraction=0.3, seed=0, l2=1e-3):
    """Held-out accuracy of a linear probe predicting ``labels`` (the camera/view) from ``features``.

    Args:
      features: [N, D] one row per (frame, camera); rows with a non-finite value are left out.
      labels: [N] camera/view label of each row (any hashable values).
      groups: [N] the frame or clip of each row: a group is wholly in training or wholly in the test.
      test_fraction: fraction of the groups held out.
      seed: seed of the split (the fit itself is deterministic).
      l2: L2 penalty on the weights of the standardised features.

    Returns:
      {"accuracy", "chance" (the majority label's share of the test rows), "num_classes",
      "num_train", "num_test", "test_fraction", "seed"}.
    """
    x = np.asarray(features, np.float64).reshape(len(labels), -1)
    keep = np.isfinite(x).all(axis=1)
    x, labels, groups = x[keep], np.asarray(labels)[keep], np.asarray(groups)[keep]
    names, y = np.unique(labels, return_inverse=True)
    y = y.ravel()
    if len(names) < 2:
        raise ValueError(f"a view probe needs at least 2 distinct labels, got {len(names)}")
    test = group_split(groups, test_fraction=test_fraction, seed=seed)
    train = ~test
    # Standardised with the training rows' statistics; a constant feature carries nothing (std 1).
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std < 1e-12] = 1.0
    x = (x - mean) / std
    w, b = fit_softmax(x[train], y[train], len(names), l2=l2)
    predicted = np.argmax(x[test] @ w + b, axis=1)
    return {"accuracy": float((predicted == y[test]).mean()),
            "chance": float(np.bincount(y[test], minlength=len(names)).max() / test.sum()),
            "num_classes": int(len(names)), "num_train": int(train.sum()),
            "num_test": int(test.sum()), "test_fraction": float(test_fraction), "seed": int(seed)}


def camera_probe(per_camera_features, *, frame_groups=None, test_fraction=0.3, seed=0, l2=1e-3):
    """:func:`view_probe` of camera identity from the features [C, N, D] of the same N frames seen by C
    cameras (label = camera index); ``frame_groups`` [N] (default: each frame its own group) keeps all
    views of a frame, or of a block of frames, on one side of the split."""
    feats = np.asarray(per_camera_features)
    c, n = feats.shape[:2]
    groups = np.arange(n) if frame_groups is None else np.asarray(frame_groups)
    return view_probe(feats.reshape(c * n, -1), np.repeat(np.arange(c), n), np.tile(groups, c),
                      test_fraction=test_fraction, seed=seed, l2=l2)


def sequence_camera_probe(per_camera_features, sequences=None, *, block=FRAME_BLOCK, seed=0):
    """:func:`camera_probe` of [C, N, D] features holding out blocks of ``block`` consecutive frames of
    a sequence together (``sequences`` [N], consecutive rows = consecutive frames; None = one
    sequence): the view-predictability number of the retrieval report and of the validation.
    ValueError when fewer than two blocks can be held out."""
    n = np.shape(per_camera_features)[1]
    groups = frame_blocks(np.zeros(n, int) if sequences is None else sequences, block)
    return camera_probe(per_camera_features, frame_groups=groups, seed=seed)


def frame_blocks(sequences, block):
    """Group id [N] of every row of consecutive frames: its run of equal ``sequences`` values and the
    block of ``block`` consecutive rows of that run it falls in (consecutive frames are
    near-duplicates; holding them out together keeps the test honest)."""
    seq = np.asarray(sequences)
    if seq.size == 0:
        return np.zeros(0, np.int64)
    starts = np.r_[True, seq[1:] != seq[:-1]]
    run = np.cumsum(starts) - 1
    position = np.arange(len(seq)) - np.flatnonzero(starts)[run]
    return run * (len(seq) + 1) + position // max(1, int(block))
