"""A small deterministic trainer for the action classifiers over precomputed per-frame features.

Numpy in, numpy out: the caller computes per-frame features once (the frozen encoder's 32-d pose
embedding, or the 26 normalised 2D keypoint coordinates), pads/crops every clip to T frames and passes
``features [N, T, D]`` with integer ``labels [N]`` — an array, or an embedding file's
:class:`~cv_mim.serving.embedding_file.ClipFeatures`, whose clips are read only when a batch needs
them (training never holds a whole dataset's features). This module never touches the encoder, so the
representation stays fixed during downstream training as in App. B.1 ("the learned representations
are fixed during downstream training").

* :func:`train_classifier` — Adam with a fixed learning rate (App. B.2: 1e-5 on Penn Action, 1e-3 on
  NTU RGB+D, mini-batches of 64), sparse softmax cross-entropy on the logits plus the model's
  regularisation losses; optional horizontal-flip augmentation through precomputed ``alternate_features``.
* :func:`predict_logits` — inference-mode logits ``[N, K]``.
* :func:`evaluate` — top-1 / top-5 accuracy, per-class accuracy, confusion matrix; optionally restricted
  to a subset of classes.
* :func:`subsample_per_class` — the class-stratified subsets of the limited-supervision protocol
  (§4.3, Tables 8–9).
* :func:`mean_std` — mean ± standard deviation over repeated runs (the "86.83 ± 0.50" entries).

All accuracies are FRACTIONS in [0, 1] (multiply by 100 for the paper's percentages).
"""

import logging
import time
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Union
import weakref

import numpy as np
import tensorflow as tf

from cv_mim import checks
from cv_mim import progress
from cv_mim.downstream import classifiers
from cv_mim.serving import embedding_file
from cv_mim.training import summaries

keras = tf.keras


logger = logging.getLogger(__name__)


SAMPLING_MODES = ("epochs", "replacement")


def _as_features(features, name: str):
    """``features`` as a float32 array [N, T, D], checked; an embedding file's lazy
    :class:`~cv_mim.serving.embedding_file.ClipFeatures` stays lazy (its reads are finite float32)."""
    if isinstance(features, embedding_file.ClipFeatures):
        if min(features.shape) < 1:
            raise ValueError(f"`{name}` must be non-empty in every dimension, got shape "
                             f"{features.shape}")
        return features
    try:
        array = np.asarray(features, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` must be a float array [N, T, D]: {e}") from None
    if array.ndim != 3:
        raise ValueError(f"`{name}` must have shape [N, T, D] (clips, frames, features), got shape "
                         f"{array.shape}")
    if min(array.shape) < 1:
        raise ValueError(f"`{name}` must be non-empty in every dimension, got shape {array.shape}")
    # Check finiteness in chunks of clips so that a large NTU array does not need a second full copy.
    for start in range(0, array.shape[0], 1024):
        chunk = array[start:start + 1024]
        if not np.isfinite(chunk).all():
            bad = start + int(np.argwhere(~np.isfinite(chunk))[0, 0])
            raise ValueError(f"`{name}` contains NaN or inf (first in clip {bad}); shape {array.shape}")
    return array


def _as_labels(labels, name: str, num_classes: int, length: Optional[int] = None) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must have shape [N], got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"`{name}` has {array.shape[0]} entries but there are {length} clips")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)) or \
                not np.all(array == np.round(array)):
            raise ValueError(f"`{name}` must hold integer class ids, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(f"`{name}` must lie in [0, {num_classes}), got range "
                         f"[{array.min()}, {array.max()}]")
    return array


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer ≥ 2, got {num_classes!r}")
    return int(num_classes)




class _BatchSampler:
    """Draws clip indices from a seeded numpy Generator.

    ``"epochs"``: concatenated random permutations of the N clips (every clip is seen once per epoch;
    a batch may straddle two epochs, so when N < batch_size a batch holds some clips twice).
    ``"replacement"``: i.i.d. uniform draws.
    """

    def __init__(self, num_items: int, batch_size: int, rng: np.random.Generator, mode: str):
        self.num_items, self.batch_size, self.rng, self.mode = num_items, batch_size, rng, mode
        self._queue = np.zeros((0,), np.int64)

    def next(self) -> np.ndarray:
        if self.mode == "replacement":
            return self.rng.integers(0, self.num_items, size=self.batch_size)
        while self._queue.shape[0] < self.batch_size:
            self._queue = np.concatenate([self._queue, self.rng.permutation(self.num_items)])
        batch, self._queue = self._queue[:self.batch_size], self._queue[self.batch_size:]
        return batch


def check_optimisation(*, steps, batch_size, learning_rate, seeds):
    """ValueError naming the flag for a bad optimisation setting."""
    checks.positive_int(steps, "--steps")
    checks.positive_int(batch_size, "--batch_size")
    checks.positive_float(learning_rate, "--learning_rate")
    if not len(seeds):
        raise ValueError("--seeds: give at least one seed")


def event_writer(logdir):
    """A TensorBoard writer for ``logdir`` (a no-op writer when ``logdir`` is None)."""
    return tf.summary.create_file_writer(logdir) if logdir else tf.summary.create_noop_writer()


def write_scalars(writer, step, scalars):
    """TensorBoard scalars ``{tag: number}`` at ``step`` (non-numbers are skipped)."""
    with writer.as_default(step=step):
        for name, value in scalars.items():
            if isinstance(value, (int, float, np.integer, np.floating)):
                summaries.write_scalar(name, value, step)
    writer.flush()


def train_classifier(
        features,
        labels,
        *,
        num_classes: int,
        classifier: Union[str, keras.Model] = "temporal_convnet",
        steps: int = 2000,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        seed: int = 0,
        alternate_features=None,
        alternate_probability: float = 0.5,
        alternate_labels=None,
        log_every: int = 100,
        eval_fn: Optional[Callable[[keras.Model], Mapping[str, float]]] = None,
        eval_every: Optional[int] = None,
        dropout_rate: float = 0.5,
        sampling: str = "epochs",
        model_kwargs: Optional[Mapping[str, object]] = None,
        on_batch: Optional[Callable[[int, np.ndarray, np.ndarray], None]] = None,
        logdir: Optional[str] = None,
) -> Tuple[keras.Model, Dict[str, object]]:
    """Trains a temporal classifier on precomputed per-frame features (App. B.2).

    Each step draws ``batch_size`` clip indices (see ``sampling``); when ``alternate_features`` is
    given, each drawn example independently uses its alternate version with probability
    ``alternate_probability`` — with the horizontally flipped clip as the alternate this is App. B.2's
    "randomly horizontally flipping all frames in a video" (Penn Action), for raw keypoints as for
    embeddings (the caller embeds the mirrored keypoints). The loss is the mean sparse softmax
    cross-entropy of the logits plus ``sum(model.losses)`` (e.g. Res-TCN's L1 penalty), minimised with
    ``keras.optimizers.Adam(learning_rate)`` (fixed rate, no EMA: the paper evaluates the raw weights).

    Determinism: the function calls ``keras.utils.set_random_seed(seed)`` (global Python / numpy / TF
    seeds) before building the model, and draws batches and flip decisions from
    ``np.random.default_rng(seed)``, so on CPU the same arguments give the same weights. When an
    already-built ``keras.Model`` is passed, its initial weights and dropout seeds are the caller's.

    Args:
        features: float ``[N, T, D]`` — N clips of T frames with D features per frame.
        labels: int ``[N]`` in [0, num_classes).
        num_classes: K ≥ 2.
        classifier: a name of :data:`~cv_mim.downstream.classifiers.CLASSIFIERS` (built with
            ``get_classifier(classifier, (T, D), K, dropout_rate, **model_kwargs)``) or a Keras model
            mapping ``[B, T, D]`` to logits ``[B, K]`` (trained in place).
        steps: number of optimiser steps (paper: 1e6; far fewer suffice for small data).
        batch_size: clips per step (paper: 64).
        learning_rate: Adam learning rate (paper: 1e-5 Penn Action, 1e-3 NTU RGB+D).
        seed: seed of the weights, dropout, batch order and flip decisions.
        alternate_features: optional float ``[N, T, D]``, the alternate (e.g. horizontally flipped)
            version of every clip.
        alternate_probability: probability in [0, 1] that a drawn example uses its alternate.
        alternate_labels: optional int ``[N]``, labels of the alternate versions (default: ``labels``).
        log_every: log progress (step/total, loss, steps/s, ETA) through :mod:`logging` every this
            many steps.
        eval_fn: optional callable ``eval_fn(model) -> dict`` run every ``eval_every`` steps and after
            the last step; its results go to ``history["eval"]`` (with the step) and to the log.
        eval_every: steps between evaluations (default: ``log_every``).
        dropout_rate: drop rate of a classifier built by name (paper: 0.5).
        sampling: "epochs" (shuffled epochs, default) or "replacement" (i.i.d. uniform draws).
        model_kwargs: extra constructor arguments of a classifier built by name.
        on_batch: optional hook ``on_batch(step, indices [B], used_alternate [B] bool)`` called for
            every drawn batch before the update (for monitoring and tests).
        logdir: optional TensorBoard directory: ``train/loss`` and ``train/steps_per_second`` per
            logging window, ``eval/<name>`` for every number ``eval_fn`` returns.

    Returns:
        ``(model, history)``; ``history`` holds ``"step"``, ``"loss"`` (mean total loss over each
        logging window), ``"steps_per_second"`` (lists, one entry per log), ``"loss_per_step"``
        (float32 ``[steps]``), ``"eval"`` (list of dicts with ``"step"``), ``"alternate_fraction"``
        (fraction of drawn examples that used their alternate), ``"seconds"`` (wall time).

    Raises:
        ValueError: malformed features / labels / alternates or arguments, or a model whose output is
            not ``[B, num_classes]``.
        FloatingPointError: the loss became NaN or inf.
    """
    num_classes = _check_num_classes(num_classes)
    features = _as_features(features, "features")
    num_clips, num_frames, feature_dim = features.shape
    labels = _as_labels(labels, "labels", num_classes, num_clips)
    steps = checks.positive_int(steps, "steps")
    batch_size = checks.positive_int(batch_size, "batch_size")
    log_every = checks.positive_int(log_every, "log_every")
    eval_every = log_every if eval_every is None else checks.positive_int(eval_every, "eval_every")
    learning_rate = checks.positive_float(learning_rate, "learning_rate")
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"`sampling` must be one of {SAMPLING_MODES}, got {sampling!r}")
    seed = checks.non_negative_int(seed, "seed")
    alternate = _check_alternates(features, labels, num_classes, alternate_features,
                                  alternate_probability, alternate_labels)

    keras.utils.set_random_seed(seed)
    model = _build_classifier(classifier, num_frames, feature_dim, num_classes, dropout_rate,
                              model_kwargs)
    train_step = _make_train_step(model, learning_rate, batch_size, num_frames, feature_dim)
    rng = np.random.default_rng(seed)
    batches = _Batches(features, labels, alternate, _BatchSampler(num_clips, batch_size, rng, sampling),
                       rng)
    log = _TrainingLog(steps)
    writer = event_writer(logdir)

    def run_eval(step):
        result = dict(eval_fn(model))
        log.history["eval"].append({"step": step, **result})
        write_scalars(writer, step, {f"eval/{k}": v for k, v in result.items()})
        logger.info("eval at step %d: %s", step, ", ".join(
            f"{k}={v:.4f}" if isinstance(v, (float, np.floating)) else f"{k}={v}"
            for k, v in result.items()))

    for step in range(1, steps + 1):
        indices, x, y, use_alternate = batches.next()
        if on_batch is not None:
            on_batch(step, indices.copy(), use_alternate.copy())
        log.pending.append(train_step(tf.constant(x), tf.constant(y.astype(np.int32))))
        if step % log_every == 0 or step == steps:
            log.close_window(step)
            write_scalars(writer, step, {
                "train/loss": log.history["loss"][-1],
                "train/steps_per_second": log.history["steps_per_second"][-1]})
        if eval_fn is not None and (step % eval_every == 0 or step == steps):
            run_eval(step)
    return model, log.finish(batches.alternate_fraction())


def _check_alternates(features, labels, num_classes, alternate_features, alternate_probability,
                      alternate_labels):
    """(alternate features, probability, alternate labels) checked, or None without alternates."""
    if alternate_features is None:
        if alternate_labels is not None:
            raise ValueError("`alternate_labels` given without `alternate_features`")
        return None
    alternate_features = _as_features(alternate_features, "alternate_features")
    if alternate_features.shape != features.shape:
        raise ValueError(f"`alternate_features` must have the shape of `features` {features.shape}, "
                         f"got {alternate_features.shape}")
    try:
        alternate_probability = float(alternate_probability)
    except (TypeError, ValueError):
        raise ValueError("`alternate_probability` must be a float in [0, 1], got "
                         f"{alternate_probability!r}") from None
    if not 0.0 <= alternate_probability <= 1.0:
        raise ValueError(f"`alternate_probability` must be in [0, 1], got {alternate_probability}")
    alternate_labels = (labels if alternate_labels is None else
                        _as_labels(alternate_labels, "alternate_labels", num_classes,
                                   features.shape[0]))
    return alternate_features, alternate_probability, alternate_labels


def _build_classifier(classifier, num_frames, feature_dim, num_classes, dropout_rate, model_kwargs):
    """The classifier by name (built) or the given Keras model, checked to output [B, K] logits."""
    if isinstance(classifier, str):
        model = classifiers.get_classifier(classifier, (num_frames, feature_dim), num_classes,
                                           dropout_rate=dropout_rate, **dict(model_kwargs or {}))
    elif isinstance(classifier, keras.Model):
        if model_kwargs:
            raise ValueError("`model_kwargs` only applies to a classifier given by name")
        model = classifier
    else:
        raise ValueError(f"`classifier` must be a name in {classifiers.CLASSIFIERS} or a keras.Model, "
                         f"got {type(classifier).__name__}")
    probe = model(tf.zeros((1, num_frames, feature_dim), tf.float32), training=False)
    if tuple(probe.shape) != (1, num_classes):
        raise ValueError(f"the classifier maps [1, {num_frames}, {feature_dim}] to {tuple(probe.shape)}, "
                         f"expected (1, {num_classes}) logits")
    return model


def _make_train_step(model, learning_rate, batch_size, num_frames, feature_dim):
    """One Adam step on mean cross-entropy + ``sum(model.losses)``, compiled for the batch shape."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    # Create the slots outside the tf.function (variables must not be created while tracing twice).
    optimizer.build(model.trainable_variables)

    @tf.function(input_signature=[
        tf.TensorSpec([batch_size, num_frames, feature_dim], tf.float32),
        tf.TensorSpec([batch_size], tf.int32)])
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            regularization = model.losses
            if regularization:
                loss = loss + tf.add_n([tf.cast(r, tf.float32) for r in regularization])
        variables = model.trainable_variables
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss

    return train_step


class _Batches:
    """Draws (indices, x, y, used_alternate) batches: clips from the sampler, then each example's
    alternate version with the given probability (the same rng, in this order: reproducible)."""

    def __init__(self, features, labels, alternate, sampler, rng):
        self.features, self.labels, self.alternate = features, labels, alternate
        self.sampler, self.rng = sampler, rng
        self.num_alternate = 0
        self.num_drawn = 0

    def next(self):
        indices = self.sampler.next()
        x = self.features[indices]
        y = self.labels[indices]
        use_alternate = np.zeros((len(indices),), bool)
        if self.alternate is not None:
            alt_features, probability, alt_labels = self.alternate
            use_alternate = self.rng.random(len(indices)) < probability
            if use_alternate.any():
                x[use_alternate] = alt_features[indices[use_alternate]]
                y = np.where(use_alternate, alt_labels[indices], y)
            self.num_alternate += int(use_alternate.sum())
        self.num_drawn += len(indices)
        return indices, x, y, use_alternate

    def alternate_fraction(self):
        return self.num_alternate / float(self.num_drawn) if self.alternate is not None else 0.0


class _TrainingLog:
    """Loss bookkeeping: per-step losses read back once per logging window (no per-step host sync),
    NaN check per window, progress lines with steps/s and ETA, the returned ``history``."""

    def __init__(self, steps):
        self.steps = steps
        self.history: Dict[str, object] = {"step": [], "loss": [], "steps_per_second": [], "eval": []}
        self.losses = np.zeros((steps,), np.float32)
        self.pending = []  # loss tensors since the last log
        self.start = self.window_start = time.perf_counter()
        self.window_first_step = 1

    def close_window(self, step):
        window = np.asarray([p.numpy() for p in self.pending], np.float32)
        self.losses[self.window_first_step - 1:step] = window
        self.pending = []
        if not np.all(np.isfinite(window)):
            bad = self.window_first_step + int(np.argwhere(~np.isfinite(window))[0, 0])
            raise FloatingPointError(f"the training loss became non-finite at step {bad}")
        now = time.perf_counter()
        steps_per_second = (step - self.window_first_step + 1) / max(now - self.window_start, 1e-9)
        eta = (self.steps - step) / steps_per_second
        self.history["step"].append(step)
        self.history["loss"].append(float(window.mean()))
        self.history["steps_per_second"].append(float(steps_per_second))
        logger.info("step %d/%d  loss %.4f  %.1f steps/s  ETA %s", step, self.steps, window.mean(),
                    steps_per_second, progress.format_duration(eta))
        self.window_start, self.window_first_step = now, step + 1

    def finish(self, alternate_fraction):
        self.history["loss_per_step"] = self.losses
        self.history["alternate_fraction"] = alternate_fraction
        self.history["seconds"] = time.perf_counter() - self.start
        return self.history


# One compiled inference function per (model, batch size, clip shape); weak keys so models are freed.
_PREDICT_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _predict_fn(model, batch_size, frames, dims):
    per_model = _PREDICT_FNS.setdefault(model, {})
    key = (batch_size, frames, dims)
    if key not in per_model:
        model_ref = weakref.ref(model)  # the cached function must not keep the model alive

        @tf.function(input_signature=[tf.TensorSpec([batch_size, frames, dims], tf.float32)])
        def predict(x):
            return tf.cast(model_ref()(x, training=False), tf.float32)

        per_model[key] = predict
    return per_model[key]


def predict_logits(model: keras.Model, features, batch_size: int = 256) -> np.ndarray:
    """Inference-mode logits (BN moving statistics, no dropout) for every clip.

    Args:
        model: a classifier mapping ``[B, T, D]`` to ``[B, K]``.
        features: float ``[N, T, D]``, N ≥ 1.
        batch_size: clips per forward pass; the last batch is zero-padded to this size so the compiled
            function is traced once (outputs are per-example in inference mode, so padding is harmless).

    Returns:
        float32 ``[N, K]`` logits.
    """
    features = _as_features(features, "features")
    batch_size = checks.positive_int(batch_size, "batch_size")
    num_clips, frames, dims = features.shape
    batch_size = min(batch_size, num_clips)
    predict = _predict_fn(model, batch_size, frames, dims)
    outputs = []
    for start in range(0, num_clips, batch_size):
        batch = features[start:start + batch_size]
        count = batch.shape[0]
        if count < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - count, frames, dims), np.float32)])
        outputs.append(predict(tf.constant(batch)).numpy()[:count])
    logits = np.concatenate(outputs, axis=0)
    if logits.ndim != 2:
        raise ValueError(f"the model returned logits of shape {logits.shape}, expected [N, K]")
    return logits


def evaluate(logits, labels, num_classes: int, class_names: Optional[Sequence[str]] = None,
             restrict_to_classes: Optional[Sequence[int]] = None) -> Dict[str, object]:
    """Top-1 / top-5 accuracy, per-class accuracy and confusion matrix of classifier logits.

    Predictions: the top-1 prediction is the argmax of the logits (ties → lowest class id); an example
    is top-k correct when its true class is among the k classes ranked first by a stable descending
    sort (ties broken by lower class id, consistent with the argmax). The authors' evaluation reports
    top-1 and top-5 (fact sheet §7.5).

    Evaluation restricted to the classes seen in training (``restrict_to_classes``): only the examples
    whose TRUE class is in the list are evaluated, and the prediction is the argmax (top-k ranking) over
    the logits of the listed classes only — the logits of the other classes are ignored, so a model can
    never be wrong by predicting a class it was not trained on. Class ids in the outputs stay the
    original ids (the confusion matrix keeps its [K, K] layout; rows and columns of unlisted classes are
    zero).

    Args:
        logits: float ``[N, K]`` with K == num_classes (finite).
        labels: int ``[N]`` in [0, K).
        num_classes: K ≥ 2.
        class_names: optional K names; adds ``"per_class"`` = {name: accuracy}.
        restrict_to_classes: optional non-empty list of distinct class ids.

    Returns:
        A dict with
        ``"top1"`` (fraction in [0, 1]; None when no example is left to evaluate),
        ``"top5"`` (fraction; None when fewer than 5 candidate classes or no example),
        ``"per_class_accuracy"`` (float64 ``[K]``; NaN for a class without evaluated examples),
        ``"per_class_count"`` (int64 ``[K]``),
        ``"mean_class_accuracy"`` (mean of the per-class accuracies over the classes with examples;
        None when there is no example),
        ``"confusion"`` (int64 ``[K, K]``, rows = true class, columns = predicted class),
        ``"num_examples"`` (evaluated examples),
        ``"classes"`` (the candidate class ids, sorted),
        and ``"per_class"`` when ``class_names`` is given.

    Raises:
        ValueError: shapes, ranges, non-finite logits or bad class lists.

    An empty evaluation (N = 0, or no true label among ``restrict_to_classes`` — e.g. one test view of
    a single-shot split) is not an error: it returns ``num_examples`` = 0, None metrics, an all-zero
    confusion matrix and logs a warning, so loops over views do not crash.
    """
    num_classes = _check_num_classes(num_classes)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"`logits` must have shape [N, {num_classes}], got {logits.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError(f"`logits` contains NaN or inf; shape {logits.shape}")
    labels = _as_labels(labels, "labels", num_classes, logits.shape[0])
    if class_names is not None:
        class_names = [str(n) for n in class_names]
        if len(class_names) != num_classes:
            raise ValueError(f"`class_names` has {len(class_names)} entries, expected {num_classes}")

    if restrict_to_classes is None:
        classes = np.arange(num_classes)
    else:
        classes = np.asarray(list(restrict_to_classes))
        if classes.ndim != 1 or classes.size == 0:
            raise ValueError(f"`restrict_to_classes` must be a non-empty list of class ids, got "
                             f"{restrict_to_classes!r}")
        classes = _as_labels(classes, "restrict_to_classes", num_classes)
        if np.unique(classes).size != classes.size:
            raise ValueError(f"`restrict_to_classes` has repeated class ids: {restrict_to_classes!r}")
        classes = np.sort(classes)
    keep = np.isin(labels, classes)
    if not keep.any():
        logger.warning("evaluate: no example to evaluate (%d labels, none in the candidate classes %s)",
                       labels.shape[0], classes.tolist())
    labels, logits = labels[keep], logits[keep][:, classes]

    # Stable descending sort: ties keep the lower (candidate) index first, like np.argmax.
    ranking = classes[np.argsort(-logits, axis=1, kind="stable")]
    predictions = ranking[:, 0]
    correct = predictions == labels

    def top_k(k):
        return float(np.mean(np.any(ranking[:, :k] == labels[:, None], axis=1)))

    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    count = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(count > 0, np.diag(confusion) / np.maximum(count, 1), np.nan)
    empty = labels.shape[0] == 0
    result = {
        "top1": None if empty else float(correct.mean()),
        "top5": top_k(5) if classes.size >= 5 and not empty else None,
        "per_class_accuracy": per_class,
        "per_class_count": count,
        "mean_class_accuracy": None if empty else float(np.mean(per_class[count > 0])),
        "confusion": confusion,
        "num_examples": int(labels.shape[0]),
        "classes": classes.tolist(),
    }
    if class_names is not None:
        result["per_class"] = {class_names[c]: float(per_class[c]) for c in range(num_classes)}
    return result


def subsample_per_class(labels, fraction: float, seed: int, min_per_class: int = 1) -> np.ndarray:
    """Indices of a class-stratified fraction of the training clips (limited supervision, Tables 8–9).

    The target total is round(fraction · N); it is split over the classes present in proportion to their
    sizes n_c by largest-remainder apportionment (each class gets floor(fraction · n_c), the leftover
    clips go to the classes with the largest fractional parts, ties to the lower class id), then every
    class present gets at least ``min(min_per_class, n_c)`` clips — so the total can exceed
    round(fraction · N) at very small fractions. Within a class the clips are taken from the front of a
    seeded random permutation of that class; the permutation depends only on ``seed`` and the labels,
    so for one seed the subsets of increasing fractions are nested.

    Args:
        labels: int ``[N]`` class ids (any non-negative integers).
        fraction: in (0, 1]; 1 returns every index.
        seed: seed of the selection.
        min_per_class: minimum clips per class present (≥ 1).

    Returns:
        Sorted int64 indices into ``labels``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"`labels` must be a non-empty array [N], got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(f"`labels` must hold non-negative integer class ids, got dtype {labels.dtype}")
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise ValueError(f"`fraction` must be a float in (0, 1], got {fraction!r}") from None
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"`fraction` must be in (0, 1], got {fraction}")
    min_per_class = checks.positive_int(min_per_class, "min_per_class")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")

    classes, counts = np.unique(labels, return_counts=True)
    quotas = fraction * counts
    take = np.floor(quotas).astype(np.int64)
    leftover = int(round(fraction * labels.size)) - int(take.sum())
    if leftover > 0:
        order = np.lexsort((classes, -(quotas - take)))  # largest remainder first, then lower class id
        take[order[:leftover]] += 1
    take = np.minimum(np.maximum(take, min_per_class), counts)

    rng = np.random.default_rng(seed)
    chosen = []
    for c, k in zip(classes, take):
        members = np.flatnonzero(labels == c)
        chosen.append(members[rng.permutation(members.size)[:k]])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def spread_note(num_runs: int) -> str:
    """The caption that says what a table's "±" means (or that there is none)."""
    if num_runs > 1:
        return f"mean ± sample std over n = {num_runs} seeds"
    return "n = 1 (one seed: no spread is estimated)"


def mean_std(values) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (ddof = 1) of repeated-run results, e.g. top-1 over seeds.

    A single value gives a standard deviation of None: no spread can be estimated from one run, and
    tables then print the mean with ``n = 1`` instead of a misleading "± 0.00".

    Raises:
        ValueError: empty input, not one-dimensional, or non-finite values.
    """
    array = np.asarray(values, dtype=np.float64).reshape(-1) if np.ndim(values) <= 1 else None
    if array is None:
        raise ValueError(f"`values` must be one-dimensional, got shape {np.shape(values)}")
    if array.size == 0:
        raise ValueError("`values` is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`values` contains NaN or inf: {array.tolist()}")
    std = float(np.std(array, ddof=1)) if array.size > 1 else None
    return float(np.mean(array)), std
