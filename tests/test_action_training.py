"""Tests of cv_mim/downstream/trainer.py: evaluation, training, determinism, flips, subsets."""
import logging
import math

import event_files
import numpy as np
import pytest
import tensorflow as tf

from cv_mim.downstream import classifiers
from cv_mim.downstream import trainer

keras = tf.keras

SMALL = dict(filters=(16, 32, 32))  # a small Temporal ConvNet keeps every run well under a second


def _sinusoids(n, seed, num_frames=64, dims=8, signal_channel=0, noise=0.4):
    """Class c ∈ {0, 1, 2} = a sinusoid of 2 / 5 / 9 cycles (random phase) in one channel, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    t = np.arange(num_frames) / num_frames
    cycles = np.array([2.0, 5.0, 9.0])[labels]
    x = noise * rng.standard_normal((n, num_frames, dims))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x[:, :, signal_channel] += np.sin(2 * np.pi * cycles[:, None] * t[None] + phase)
    return x.astype(np.float32), labels


# --------------------------------------------------------------------------------------------------
# evaluate()
# --------------------------------------------------------------------------------------------------

# 6 classes, 4 examples; expected values worked out by hand in the comments.
LOGITS = np.array([
    [5, 1, 0, 0, 0, 0],   # true 0 → argmax 0 (correct)
    [0, 3, 4, 0, 0, 0],   # true 1 → argmax 2 (wrong), class 1 ranked 2nd → top-5 hit
    [6, 5, 4, 3, 2, 1],   # true 5 → argmax 0 (wrong), class 5 ranked 6th → top-5 miss
    [0, 0, 1, 2, 0, 0],   # true 2 → argmax 3 (wrong), class 2 ranked 2nd → top-5 hit
], np.float32)
LABELS = np.array([0, 1, 5, 2])


def test_evaluate_hand_made_logits():
    result = trainer.evaluate(LOGITS, LABELS, 6, class_names=list("abcdef"))
    assert result["top1"] == pytest.approx(1 / 4)
    assert result["top5"] == pytest.approx(3 / 4)
    assert result["num_examples"] == 4
    expected = np.zeros((6, 6), np.int64)
    expected[0, 0] = expected[1, 2] = expected[5, 0] = expected[2, 3] = 1
    np.testing.assert_array_equal(result["confusion"], expected)
    np.testing.assert_array_equal(result["per_class_count"], [1, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(result["per_class_accuracy"][[0, 1, 2, 5]], [1.0, 0.0, 0.0, 0.0])
    assert np.isnan(result["per_class_accuracy"][3]) and np.isnan(result["per_class_accuracy"][4])
    assert result["mean_class_accuracy"] == pytest.approx(1 / 4)
    assert result["per_class"]["a"] == 1.0 and result["per_class"]["f"] == 0.0


def test_evaluate_restricted_to_training_classes():
    result = trainer.evaluate(LOGITS, LABELS, 6, restrict_to_classes=[5, 1])
    # Only the examples of classes 1 and 5 count (rows 1 and 2); the argmax runs over logits 1 and 5:
    # row 1: (3, 0) → class 1, now CORRECT (class 2's larger logit is ignored);
    # row 2: (5, 1) → class 1, wrong.
    assert result["num_examples"] == 2
    assert result["top1"] == pytest.approx(0.5)
    assert result["top5"] is None  # fewer than 5 candidate classes
    assert result["classes"] == [1, 5]
    expected = np.zeros((6, 6), np.int64)
    expected[1, 1] = expected[5, 1] = 1
    np.testing.assert_array_equal(result["confusion"], expected)


def test_evaluate_ties_and_small_k():
    # A tie goes to the lower class id (like np.argmax); with K = 3 there is no top-5.
    result = trainer.evaluate([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]], [1, 1], 3)
    assert result["top1"] == pytest.approx(0.5)
    assert result["top5"] is None


def test_evaluate_with_no_example_left(caplog):
    with caplog.at_level(logging.WARNING, logger="cv_mim.downstream.trainer"):
        result = trainer.evaluate(LOGITS, LABELS, 6, restrict_to_classes=[3, 4])
    assert result["num_examples"] == 0
    assert result["top1"] is None and result["top5"] is None and result["mean_class_accuracy"] is None
    assert not result["confusion"].any() and np.all(np.isnan(result["per_class_accuracy"]))
    assert any("no example" in r.getMessage() for r in caplog.records)
    assert trainer.evaluate(np.zeros((0, 6)), [], 6)["num_examples"] == 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(logits=np.zeros((4, 5)), labels=LABELS, num_classes=6), "logits"),
    (dict(logits=np.full((4, 6), np.nan), labels=LABELS, num_classes=6), "NaN"),
    (dict(logits=LOGITS, labels=[0, 1, 6, 2], num_classes=6), "labels"),
    (dict(logits=LOGITS, labels=[0, 1, 2], num_classes=6), "labels"),
    (dict(logits=LOGITS, labels=[0.5, 1, 2, 2], num_classes=6), "integer"),
    (dict(logits=LOGITS, labels=LABELS, num_classes=6, restrict_to_classes=[]), "non-empty"),
    (dict(logits=LOGITS, labels=LABELS, num_classes=6, restrict_to_classes=[1, 1]), "repeated"),
    (dict(logits=LOGITS, labels=LABELS, num_classes=6, restrict_to_classes=[7]), "restrict_to_classes"),
    (dict(logits=LOGITS, labels=LABELS, num_classes=6, class_names=["a"]), "class_names"),
])
def test_evaluate_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        trainer.evaluate(**kwargs)


# --------------------------------------------------------------------------------------------------
# train_classifier() / predict_logits()
# --------------------------------------------------------------------------------------------------

def test_training_learns_separable_sequences(caplog):
    x_train, y_train = _sinusoids(150, seed=0)
    x_test, y_test = _sinusoids(90, seed=1)
    before = trainer.evaluate(
        trainer.predict_logits(classifiers.get_classifier("temporal_convnet", (64, 8), 3, **SMALL), x_test),
        y_test, 3)
    evaluations = []

    def eval_fn(model):
        evaluations.append(model)
        return {"top1": trainer.evaluate(trainer.predict_logits(model, x_test), y_test, 3)["top1"]}

    with caplog.at_level(logging.INFO, logger="cv_mim.downstream.trainer"):
        model, history = trainer.train_classifier(
            x_train, y_train, num_classes=3, steps=200, batch_size=32, learning_rate=3e-3,
            dropout_rate=0.2, model_kwargs=SMALL, log_every=50, eval_fn=eval_fn, eval_every=100)
    result = trainer.evaluate(trainer.predict_logits(model, x_test), y_test, 3)
    assert result["top1"] >= 0.9 > before["top1"] + 0.2
    assert history["step"] == [50, 100, 150, 200]
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["loss_per_step"].shape == (200,) and np.all(np.isfinite(history["loss_per_step"]))
    assert [e["step"] for e in history["eval"]] == [100, 200] and len(evaluations) == 2
    assert history["eval"][-1]["top1"] == pytest.approx(result["top1"])
    messages = [r.getMessage() for r in caplog.records]
    assert any("step 50/200" in m and "loss" in m and "steps/s" in m and "ETA" in m for m in messages)


def test_training_is_deterministic_for_a_seed():
    x, y = _sinusoids(40, seed=2, num_frames=32, dims=4)
    kwargs = dict(num_classes=3, steps=15, batch_size=8, model_kwargs=SMALL, log_every=5,
                  alternate_features=x[:, ::-1], alternate_probability=0.5)
    runs = [trainer.train_classifier(x, y, seed=s, **kwargs) for s in (7, 7, 8)]
    logits = [trainer.predict_logits(m, x) for m, _ in runs]
    np.testing.assert_array_equal(logits[0], logits[1])
    np.testing.assert_array_equal(runs[0][1]["loss_per_step"], runs[1][1]["loss_per_step"])
    assert not np.allclose(logits[0], logits[2])


def test_training_sampling_and_alternate_draws():
    x, y = _sinusoids(20, seed=3, num_frames=16, dims=4)
    for sampling in trainer.SAMPLING_MODES:
        seen, flags = [], []
        _, history = trainer.train_classifier(
            x, y, num_classes=3, steps=50, batch_size=32, model_kwargs=SMALL, sampling=sampling,
            alternate_features=-x, alternate_probability=0.3, log_every=50,
            on_batch=lambda step, idx, alt: (seen.append(idx), flags.append(alt)))
        seen, flags = np.concatenate(seen), np.concatenate(flags)
        assert seen.shape == (1600,) and flags.dtype == bool
        # 1600 Bernoulli(0.3) draws: standard deviation 0.0115, so ±0.05 is > 4 sigma.
        assert abs(flags.mean() - 0.3) < 0.05
        assert history["alternate_fraction"] == pytest.approx(flags.mean())
        counts = np.bincount(seen, minlength=20)
        if sampling == "epochs":  # 1600 = 80 full epochs of the 20 clips
            np.testing.assert_array_equal(counts, np.full(20, 80))
        else:
            assert counts.min() > 0 and counts.max() - counts.min() > 0


def test_alternate_features_and_labels_are_used_in_training():
    # Originals carry the class signal in channel 0; the "alternates" carry it in channel 1 with the
    # labels rotated by one. The model can only follow the rotated mapping on alternates if training
    # actually fed them (with their alternate labels).
    x, y = _sinusoids(150, seed=4, signal_channel=0)
    x_alt = x[:, :, [1, 0, 2, 3, 4, 5, 6, 7]]
    y_alt = (y + 1) % 3
    model, history = trainer.train_classifier(
        x, y, num_classes=3, steps=250, batch_size=32, learning_rate=3e-3, dropout_rate=0.2,
        model_kwargs=SMALL, alternate_features=x_alt, alternate_labels=y_alt, alternate_probability=0.5,
        log_every=250)
    assert 0.4 < history["alternate_fraction"] < 0.6
    x_test, y_test = _sinusoids(90, seed=5, signal_channel=0)
    assert trainer.evaluate(trainer.predict_logits(model, x_test), y_test, 3)["top1"] >= 0.85
    x_test_alt = x_test[:, :, [1, 0, 2, 3, 4, 5, 6, 7]]
    assert trainer.evaluate(trainer.predict_logits(model, x_test_alt), (y_test + 1) % 3, 3)["top1"] >= 0.85


def test_regularisation_loss_is_part_of_the_training_loss():
    x, y = _sinusoids(16, seed=6, num_frames=16, dims=4)
    keras.utils.set_random_seed(0)
    model = classifiers.get_classifier("res_tcn", (16, 4), 3, dropout_rate=0.0, stem_filters=8,
                                  units=((1, 3, 8), (2, 3, 16)), l1=0.5)
    reference = classifiers.ResTCN.from_config(model.get_config())
    reference(x[:1])
    reference.set_weights(model.get_weights())
    batches = []
    _, history = trainer.train_classifier(
        x, y, num_classes=3, classifier=model, steps=1, batch_size=8, log_every=1,
        on_batch=lambda step, idx, alt: batches.append(idx))
    # Step-1 loss recomputed independently with the initial weights (no dropout; BN in training mode).
    logits = reference(x[batches[0]], training=True).numpy().astype(np.float64)
    log_probs = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) \
        - logits.max(1, keepdims=True)
    cross_entropy = -np.mean(log_probs[np.arange(8), y[batches[0]]])
    # The authors' Res-TCN puts L1 on EVERY conv kernel (stem, units, 1x1 shortcuts).
    convs = [layer for layer in reference._flatten_layers() if isinstance(layer, keras.layers.Conv1D)]
    assert len(convs) > 1
    l1 = 0.5 * sum(np.abs(c.kernel.numpy()).sum() for c in convs)
    assert l1 > 0.5 * cross_entropy  # the penalty is large enough to matter below
    assert history["loss_per_step"][0] == pytest.approx(cross_entropy + l1, rel=1e-4)


def test_predict_logits_matches_model_and_is_batch_independent():
    x, _ = _sinusoids(11, seed=7, num_frames=20, dims=4)
    model = classifiers.get_classifier("resnet1d", (20, 4), 3)
    direct = model(x, training=False).numpy()
    for batch_size in (3, 4, 256):
        logits = trainer.predict_logits(model, x, batch_size=batch_size)
        assert logits.shape == (11, 3) and logits.dtype == np.float32
        np.testing.assert_allclose(logits, direct, rtol=1e-5, atol=1e-5)


def test_non_finite_loss_raises():
    x, y = _sinusoids(8, seed=8, num_frames=8, dims=2)
    # Inputs near float32's maximum: the convolutions overflow once the weights grow (1e30 inputs
    # stay finite with the fused BatchNorm, whose statistics do not square the raw inputs).
    with pytest.raises(FloatingPointError, match="step"):
        trainer.train_classifier(x * 1e38, y, num_classes=3, steps=3, batch_size=4, log_every=3,
                                  learning_rate=1e30, model_kwargs=SMALL)


@pytest.mark.parametrize("change, match", [
    (dict(features=np.zeros((4, 8))), r"\[N, T, D\]"),
    (dict(features=np.full((4, 8, 2), np.nan)), "NaN"),
    (dict(labels=[0, 1, 2]), "labels"),
    (dict(labels=[0, 1, 2, 3]), "labels"),
    (dict(num_classes=1), "num_classes"),
    (dict(classifier="lstm"), "unknown classifier"),
    (dict(classifier=42), "classifier"),
    (dict(alternate_features=np.zeros((4, 7, 2))), "alternate_features"),
    (dict(alternate_labels=[0, 0, 0, 0]), "without `alternate_features`"),
    (dict(alternate_features=np.zeros((4, 8, 2)), alternate_probability=1.5), "alternate_probability"),
    (dict(alternate_features=np.zeros((4, 8, 2)), alternate_labels=[0, 9, 0, 0]), "alternate_labels"),
    (dict(steps=0), "steps"),
    (dict(batch_size=0), "batch_size"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(sampling="bootstrap"), "sampling"),
    (dict(seed=-1), "seed"),
])
def test_train_classifier_bad_inputs(change, match):
    kwargs = dict(features=np.zeros((4, 8, 2), np.float32), labels=[0, 1, 2, 0], num_classes=3,
                  steps=1, batch_size=2)
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        trainer.train_classifier(kwargs.pop("features"), kwargs.pop("labels"), **kwargs)


def test_model_with_wrong_number_of_outputs_is_rejected():
    model = classifiers.get_classifier("temporal_convnet", (8, 2), 4, **SMALL)
    with pytest.raises(ValueError, match=r"expected \(1, 3\) logits"):
        trainer.train_classifier(np.zeros((4, 8, 2), np.float32), [0, 1, 2, 0], num_classes=3,
                                  classifier=model, steps=1)


# --------------------------------------------------------------------------------------------------
# subsample_per_class() / mean_std()
# --------------------------------------------------------------------------------------------------

def test_subsample_per_class_proportions():
    labels = np.repeat([0, 1, 2, 3], [50, 30, 20, 1])
    np.random.default_rng(0).shuffle(labels)
    indices = trainer.subsample_per_class(labels, 0.1, seed=0)
    assert indices.dtype == np.int64 and np.all(np.diff(indices) > 0)
    # 10 % of 50 / 30 / 20 = 5 / 3 / 2; the single clip of class 3 is kept (at least one per class).
    np.testing.assert_array_equal(np.bincount(labels[indices], minlength=4), [5, 3, 2, 1])
    np.testing.assert_array_equal(trainer.subsample_per_class(labels, 1.0, seed=3), np.arange(101))


def test_subsample_per_class_largest_remainder():
    labels = np.repeat([0, 1, 2], [7, 7, 6])
    # Quotas 3.5 / 3.5 / 3.0 and a total of round(0.5 · 20) = 10: the extra clip goes to the first of
    # the tied largest remainders (class 0).
    counts = np.bincount(labels[trainer.subsample_per_class(labels, 0.5, seed=0)])
    np.testing.assert_array_equal(counts, [4, 3, 3])
    np.testing.assert_array_equal(
        np.bincount(labels[trainer.subsample_per_class(labels, 0.01, seed=0, min_per_class=2)]),
        [2, 2, 2])


def test_subsample_per_class_seeds_and_nesting():
    labels = np.random.default_rng(1).integers(0, 5, 400)
    small = trainer.subsample_per_class(labels, 0.1, seed=4)
    large = trainer.subsample_per_class(labels, 0.3, seed=4)
    assert set(small) <= set(large)
    np.testing.assert_array_equal(small, trainer.subsample_per_class(labels, 0.1, seed=4))
    assert not np.array_equal(small, trainer.subsample_per_class(labels, 0.1, seed=5))
    assert abs(small.size - 40) <= 1


@pytest.mark.parametrize("args, match", [
    ((np.array([0, 1]), 0.0, 0), "fraction"),
    ((np.array([0, 1]), 1.5, 0), "fraction"),
    ((np.zeros((2, 2), int), 0.5, 0), "labels"),
    ((np.array([0, -1]), 0.5, 0), "labels"),
    ((np.array([0.5, 1.0]), 0.5, 0), "labels"),
    ((np.array([0, 1]), 0.5, -1), "seed"),
])
def test_subsample_per_class_bad_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        trainer.subsample_per_class(*args)


def test_mean_std():
    mean, std = trainer.mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    assert std == pytest.approx(math.sqrt(((1.5 ** 2 + 0.5 ** 2) * 2) / 3))  # sample std, ddof = 1
    assert trainer.mean_std([0.7]) == (pytest.approx(0.7), None)  # never a "± 0.00"
    with pytest.raises(ValueError, match="empty"):
        trainer.mean_std([])
    with pytest.raises(ValueError, match="NaN"):
        trainer.mean_std([1.0, float("nan")])
    with pytest.raises(ValueError, match="one-dimensional"):
        trainer.mean_std([[1.0, 2.0]])




def test_training_writes_tensorboard_events_of_loss_and_evaluations(tmp_path):
    x, y = _sinusoids(24, seed=0)
    scores = iter([0.25, 0.75])
    _, history = trainer.train_classifier(
        x, y, num_classes=3, steps=20, batch_size=8, model_kwargs=SMALL, log_every=10,
        eval_fn=lambda model: {"top1": next(scores), "note": "text is not a scalar"},
        eval_every=10, logdir=str(tmp_path / "events"))
    tags = event_files.scalar_events(str(tmp_path / "events"))
    assert set(tags) == {"train/loss", "train/steps_per_second", "eval/top1"}
    assert [s for s, _ in tags["train/loss"]] == [10, 20]
    np.testing.assert_allclose([v for _, v in tags["train/loss"]], history["loss"], rtol=1e-6)
    assert tags["eval/top1"] == [(10, 0.25), (20, 0.75)]
