"""Tests for cv_mim/losses.py against independent float64 NumPy/SciPy implementations.

Every expected value is computed here, from the paper's equations (Eq. 6-10, 12) and the fact
sheet's description of the authors' losses (§3), with plain NumPy loops/broadcasting, SciPy or hand
arithmetic; the TensorFlow code under test is never used to produce an expected value.
"""
import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats
import tensorflow as tf

from cv_mim import losses

LOG2 = math.log(2.0)
LOG_2PI = math.log(2.0 * math.pi)
ALL_MEASURES = ["jsd", "gan", "kl", "rkl", "h2", "w1"]


# ---------------------------------------------------------------------------------------------
# Independent NumPy references (float64).


def np_softplus(x):
    return np.logaddexp(0.0, x)


def np_positive_expectation(s, measure):
    """E⁺ of the f-divergence bounds (DIM [17]; fact sheet §3.1 step 2)."""
    return {
        "jsd": lambda: LOG2 - np_softplus(-s),
        "gan": lambda: -np_softplus(-s),
        "kl": lambda: s,
        "rkl": lambda: -np.exp(-s),
        "h2": lambda: 1.0 - np.exp(-s),
        "w1": lambda: s,
    }[measure]()


def np_negative_expectation(s, measure):
    """E⁻ of the f-divergence bounds (DIM [17]; fact sheet §3.1 step 2)."""
    return {
        "jsd": lambda: np_softplus(s) - LOG2,
        "gan": lambda: np_softplus(-s) + s,
        "kl": lambda: np.exp(s - 1.0),
        "rkl": lambda: s - 1.0,
        "h2": lambda: np.exp(s) - 1.0,
        "w1": lambda: s,
    }[measure]()


def np_fenchel_dual(local, global_, measure, positive=None):
    """Fact sheet §3.1: S[i,a,j,b] = <l_ia, g_jb>; E± per element; mean over positions a, b;
    loss = mean over negatives of E⁻ − mean over positives of E⁺ (P default identity)."""
    local = np.asarray(local, np.float64)
    global_ = np.asarray(global_, np.float64)
    if local.ndim == 2:
        local = local[:, None, :]
    if global_.ndim == 2:
        global_ = global_[:, None, :]
    batch = local.shape[0]
    e_pos = np.zeros((batch, batch))
    e_neg = np.zeros((batch, batch))
    for i in range(batch):
        for j in range(batch):
            s = np.array([[np.dot(la, gb) for gb in global_[j]] for la in local[i]])
            e_pos[i, j] = np.mean(np_positive_expectation(s, measure))
            e_neg[i, j] = np.mean(np_negative_expectation(s, measure))
    pos = np.eye(batch) if positive is None else np.asarray(positive, np.float64)
    neg = 1.0 - pos
    return (np.sum(neg * e_neg) / max(np.sum(neg), 1e-12)
            - np.sum(pos * e_pos) / max(np.sum(pos), 1e-12))


def np_eq6_jsd_minus_2log2(local, global_):
    """Eq. 6 with P = I written out term by term, minus the constant 2·log 2."""
    s = np.asarray(local, np.float64) @ np.asarray(global_, np.float64).T
    batch = s.shape[0]
    neg_terms = [np_softplus(s[i, j]) for i in range(batch) for j in range(batch) if i != j]
    pos_terms = [np_softplus(-s[i, i]) for i in range(batch)]
    return np.mean(neg_terms) + np.mean(pos_terms) - 2.0 * LOG2


def np_info_nce(local, global_, positive=None, temperature=1.0):
    """The authors' InfoNCE, written with loops: for every (local position a, global position b) and
    every i, the cross-entropy of ⟨l_ia, g_ib⟩ over itself and ⟨l_ja, g_ib⟩ for the j with P[i,j] = 0
    (a softmax over column i of S[i, j] = ⟨l_i, g_j⟩)."""
    local, global_ = np.asarray(local, np.float64), np.asarray(global_, np.float64)
    local = local[:, None] if local.ndim == 2 else local
    global_ = global_[:, None] if global_.ndim == 2 else global_
    batch = local.shape[0]
    pos = np.eye(batch) if positive is None else np.asarray(positive, np.float64)
    terms = []
    for a in range(local.shape[1]):
        for b in range(global_.shape[1]):
            s = local[:, a] @ global_[:, b].T / temperature
            for i in range(batch):
                logits = [s[i, i]] + [s[j, i] for j in range(batch) if pos[i, j] == 0]
                m = max(logits)
                terms.append(m + math.log(sum(math.exp(v - m) for v in logits)) - s[i, i])
    return float(np.mean(terms))


def np_gauss_logpdf(mean, log_var, target):
    """Elementwise log N(target; mean, exp(log_var)), with the −½·log 2π constant."""
    mean, log_var, target = (np.asarray(a, np.float64) for a in (mean, log_var, target))
    return (-0.5 * LOG_2PI - 0.5 * log_var
            - (target - mean) ** 2 / (2.0 * np.exp(log_var)))


def np_pairwise_ll(mean, log_var, target):
    """L[i, j] = mean_d log q(y_j,d | x_i) (rows condition, columns targets)."""
    batch = mean.shape[0]
    out = np.zeros((batch, batch))
    for i in range(batch):
        for j in range(batch):
            out[i, j] = np.mean(np_gauss_logpdf(mean[i], log_var[i], target[j]))
    return out


def np_club(mean, log_var, target, positive=None, variant="paper"):
    ll = np_pairwise_ll(mean, log_var, target)
    batch = ll.shape[0]
    pos = np.eye(batch) if positive is None else np.asarray(positive, np.float64)
    positive_mean = np.sum(pos * ll) / np.sum(pos)
    if variant == "paper":
        # Eq. 7 / original CLUB: negatives drawn from p(z_p)p(z_v) -> all B² pairs, no clipping.
        return positive_mean - np.mean(ll)
    neg = 1.0 - pos
    return max(0.0, positive_mean - np.sum(neg * ll) / np.sum(neg))


def _rand(rng, *shape, scale=1.0):
    # Float32-representable values so TF and NumPy see exactly the same inputs.
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def _value(x):
    return float(np.asarray(x))


# ---------------------------------------------------------------------------------------------
# Fenchel-dual MI loss (Eq. 6).


@pytest.mark.parametrize("measure", ALL_MEASURES)
@pytest.mark.parametrize("seed", [0, 1])
def test_fenchel_dual_loss_matches_numpy_all_measures(measure, seed):
    rng = np.random.default_rng(seed)
    local, global_ = _rand(rng, 6, 5, scale=0.5), _rand(rng, 6, 5, scale=0.5)
    got = _value(losses.fenchel_dual_loss(local, global_, measure=measure))
    np.testing.assert_allclose(got, np_fenchel_dual(local, global_, measure), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fenchel_jsd_equals_eq6_minus_2log2(seed):
    rng = np.random.default_rng(seed)
    local, global_ = _rand(rng, 7, 4), _rand(rng, 7, 4)
    got = _value(losses.fenchel_dual_loss(local, global_, measure="jsd"))
    np.testing.assert_allclose(got, np_eq6_jsd_minus_2log2(local, global_), rtol=1e-5, atol=1e-5)


def test_fenchel_jsd_aligned_simplex_embeddings_reach_minus_2log2():
    # Centred one-hot rows (simplex vertices): <v_i, v_i> = 1 − 1/B > 0, <v_i, v_j> = −1/B < 0.
    # Scaled by c, positives → +∞ and negatives → −∞, so the MI estimate −loss → 2·log 2.
    batch, c = 4, 40.0
    v = np.eye(batch) - 1.0 / batch
    emb = (c * v).astype(np.float32)
    got = _value(losses.fenchel_dual_loss(emb, emb, measure="jsd"))
    np.testing.assert_allclose(got, -2.0 * LOG2, atol=1e-6)


def test_fenchel_jsd_aligned_one_hot_embeddings_give_minus_log2():
    # Orthogonal one-hot rows: positives S_ii = c² (ρ(−c²) ≈ 0), negatives S_ij = 0 (ρ(0) = log 2),
    # so the loss is log 2 + 0 − 2 log 2 = −log 2 (half of the maximal estimate).
    c = 10.0
    emb = (c * np.eye(4, 6)).astype(np.float32)
    got = _value(losses.fenchel_dual_loss(emb, emb, measure="jsd"))
    np.testing.assert_allclose(got, -LOG2, atol=1e-6)


def test_fenchel_jsd_zero_scores_give_exactly_zero():
    # A critic that outputs 0 everywhere cannot tell pairs apart: E⁺(0) = E⁻(0) = 0.
    local = np.zeros((5, 3), np.float32)
    rng = np.random.default_rng(0)
    assert _value(losses.fenchel_dual_loss(local, _rand(rng, 5, 3), measure="jsd")) == 0.0
    # Orthogonal local / global subspaces: all scores 0 as well.
    local = np.concatenate([_rand(rng, 5, 2), np.zeros((5, 2), np.float32)], axis=1)
    global_ = np.concatenate([np.zeros((5, 2), np.float32), _rand(rng, 5, 2)], axis=1)
    assert abs(_value(losses.fenchel_dual_loss(local, global_, measure="jsd"))) < 1e-7


@pytest.mark.parametrize("s", [0.0, 0.7, -1.3, 3.0])
def test_fenchel_jsd_identical_embeddings_for_all_rows(s):
    # Every score equals s: loss = ρ(s) + ρ(−s) − 2 log 2 ≥ 0, with equality only at s = 0 — an
    # uninformative critic gives an MI estimate ≤ 0, never a positive one.
    d = 4
    row = np.full(d, math.sqrt(abs(s) / d), np.float32)
    local = np.tile(row, (6, 1))
    global_ = np.tile(row * (1.0 if s >= 0 else -1.0), (6, 1))
    expected = np_softplus(s) + np_softplus(-s) - 2.0 * LOG2
    got = _value(losses.fenchel_dual_loss(local, global_, measure="jsd"))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got >= -1e-7


def test_fenchel_shuffled_pairs_score_worse_than_aligned_pairs():
    # Same embeddings, but the global side is a derangement of the local side: the diagonal pairs
    # are no longer the matching ones, so the loss rises (the MI estimate falls).
    rng = np.random.default_rng(3)
    emb = _rand(rng, 8, 16)
    shuffled_global = np.roll(emb, 1, axis=0)
    aligned = _value(losses.fenchel_dual_loss(emb, emb))
    shuffled = _value(losses.fenchel_dual_loss(emb, shuffled_global))
    np.testing.assert_allclose(shuffled, np_fenchel_dual(emb, shuffled_global, "jsd"), rtol=1e-5,
                               atol=1e-5)
    assert aligned < shuffled


@pytest.mark.parametrize("measure", ["jsd", "kl", "w1"])
def test_fenchel_custom_positive_indicator(measure):
    rng = np.random.default_rng(4)
    local, global_ = _rand(rng, 6, 4, scale=0.5), _rand(rng, 6, 4, scale=0.5)
    # Symmetric, ones on the diagonal, plus two off-diagonal positive pairs.
    p = np.eye(6, dtype=np.float32)
    p[0, 3] = p[3, 0] = p[1, 2] = p[2, 1] = 1.0
    got = _value(losses.fenchel_dual_loss(local, global_, measure=measure, positive_indicator=p))
    np.testing.assert_allclose(got, np_fenchel_dual(local, global_, measure, p), rtol=1e-5,
                               atol=1e-5)
    # Boolean indicators are accepted too.
    got_bool = _value(losses.fenchel_dual_loss(local, global_, measure=measure,
                                               positive_indicator=p.astype(bool)))
    np.testing.assert_allclose(got_bool, got, rtol=1e-6)


def test_fenchel_custom_indicator_hand_value():
    # 2×2 scores [[1, 2], [3, 4]] from local = I, global_ = [[1, 3], [2, 4]]; all-pairs-positive
    # except (1, 0): W1 loss = mean(neg) − mean(pos) = 3 − (1 + 2 + 4)/3.
    local = np.eye(2, dtype=np.float32)
    global_ = np.array([[1.0, 3.0], [2.0, 4.0]], np.float32)
    p = np.array([[1.0, 1.0], [0.0, 1.0]], np.float32)
    got = _value(losses.fenchel_dual_loss(local, global_, measure="w1", positive_indicator=p))
    np.testing.assert_allclose(got, 3.0 - 7.0 / 3.0, rtol=1e-6)


@pytest.mark.parametrize("measure", ALL_MEASURES)
def test_fenchel_bnd_form_with_one_position_equals_bd_form(measure):
    # The algorithms feed [B, 1, D] tensors (fact sheet §1.4: num_locals = num_globals = 1).
    rng = np.random.default_rng(5)
    local, global_ = _rand(rng, 5, 3, scale=0.5), _rand(rng, 5, 3, scale=0.5)
    got = _value(losses.fenchel_dual_loss(local[:, None], global_[:, None], measure=measure))
    np.testing.assert_allclose(got, np_fenchel_dual(local, global_, measure), rtol=1e-5, atol=1e-5)
    mixed = _value(losses.fenchel_dual_loss(local[:, None], global_, measure=measure))
    np.testing.assert_allclose(mixed, got, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("measure", ALL_MEASURES)
def test_fenchel_bnd_form_with_several_positions(measure):
    # DIM [17] / the authors (fact sheet §3.1 steps 1-3): scores for every (local position, global
    # position) pair, E± applied per score, THEN averaged over positions. Averaging the features
    # first is only equivalent for measures whose E± are linear (w1).
    rng = np.random.default_rng(6)
    local, global_ = _rand(rng, 4, 3, 5), _rand(rng, 4, 2, 5)
    got = _value(losses.fenchel_dual_loss(local, global_, measure=measure))
    np.testing.assert_allclose(got, np_fenchel_dual(local, global_, measure), rtol=1e-5, atol=1e-5)


def test_fenchel_works_in_tf_function_with_unknown_batch():
    fn = tf.function(lambda a, b: losses.fenchel_dual_loss(a, b),
                     input_signature=[tf.TensorSpec([None, 3]), tf.TensorSpec([None, 3])])
    rng = np.random.default_rng(7)
    local, global_ = _rand(rng, 5, 3), _rand(rng, 5, 3)
    np.testing.assert_allclose(_value(fn(local, global_)), np_fenchel_dual(local, global_, "jsd"),
                               rtol=1e-5, atol=1e-6)


def test_expectations_match_numpy_elementwise():
    s = np.linspace(-4.0, 4.0, 17).astype(np.float32)
    for measure in ALL_MEASURES:
        np.testing.assert_allclose(losses.positive_expectation(s, measure),
                                   np_positive_expectation(s.astype(np.float64), measure),
                                   rtol=1e-5, atol=1e-5, err_msg=measure)
        np.testing.assert_allclose(losses.negative_expectation(s, measure),
                                   np_negative_expectation(s.astype(np.float64), measure),
                                   rtol=1e-5, atol=1e-5, err_msg=measure)



# ---------------------------------------------------------------------------------------------
# InfoNCE.


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_info_nce_matches_numpy(temperature, seed):
    rng = np.random.default_rng(seed)
    local, global_ = _rand(rng, 6, 4), _rand(rng, 6, 4)
    got = _value(losses.info_nce_loss(local, global_, temperature=temperature))
    np.testing.assert_allclose(got, np_info_nce(local, global_, temperature=temperature),
                               rtol=1e-5, atol=1e-5)


def test_info_nce_zero_scores_give_log_batch():
    for batch in (2, 5, 8):
        z = np.zeros((batch, 3), np.float32)
        np.testing.assert_allclose(_value(losses.info_nce_loss(z, z)), math.log(batch), rtol=1e-6)


def test_info_nce_excludes_off_diagonal_positives_from_denominator():
    p = np.eye(5, dtype=np.float32)
    p[0, 1] = p[1, 0] = p[2, 3] = p[3, 2] = p[2, 4] = p[4, 2] = 1.0
    z = np.zeros((5, 3), np.float32)
    # Zero scores: row i's softmax runs over B − (#off-diagonal positives of row i) entries.
    counts = 5 - (p.sum(axis=1) - 1.0)
    expected = np.mean(np.log(counts))
    np.testing.assert_allclose(_value(losses.info_nce_loss(z, z, positive_indicator=p)), expected,
                               rtol=1e-6)
    rng = np.random.default_rng(9)
    local, global_ = _rand(rng, 5, 4), _rand(rng, 5, 4)
    got = _value(losses.info_nce_loss(local, global_, positive_indicator=p, temperature=0.7))
    np.testing.assert_allclose(got, np_info_nce(local, global_, p, 0.7), rtol=1e-5, atol=1e-5)


def test_info_nce_softmax_runs_over_the_column_hand_value():
    """B = 2, S = [[1, 0], [2, 0]] (S[i, j] = ⟨l_i, g_j⟩): column 0 is (1, 2), column 1 is (0, 0).

    i = 0: log(e¹ + e²) − 1; i = 1: log(e⁰ + e⁰) − 0 = log 2. A row softmax would give
    log(e¹ + e⁰) − 1 and log(e² + e⁰) − 0 instead.
    """
    local = np.array([[1.0, 0.0], [2.0, 0.0]], np.float32)
    global_ = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    hand = 0.5 * ((math.log(math.e + math.e ** 2) - 1.0) + math.log(2.0))
    np.testing.assert_allclose(_value(losses.info_nce_loss(local, global_)), hand, rtol=1e-6)
    row = 0.5 * ((math.log(math.e + 1.0) - 1.0) + math.log(math.e ** 2 + 1.0))
    assert abs(hand - row) > 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_info_nce_with_positions_scores_every_position_pair(seed):
    rng = np.random.default_rng(seed)
    local, global_ = _rand(rng, 5, 3, 4), _rand(rng, 5, 2, 4)
    got = _value(losses.info_nce_loss(local, global_, temperature=0.8))
    np.testing.assert_allclose(got, np_info_nce(local, global_, temperature=0.8), rtol=1e-5)
    # Not the loss of the position means (what averaging positions first would give).
    means = _value(losses.info_nce_loss(local.mean(1), global_.mean(1), temperature=0.8))
    assert abs(got - means) > 1e-3
    # Mixed shapes: [B, N, D] local against a [B, D] global.
    got2 = _value(losses.info_nce_loss(local, global_[:, 0]))
    np.testing.assert_allclose(got2, np_info_nce(local, global_[:, 0]), rtol=1e-5)


def test_info_nce_with_positions_and_off_diagonal_positives():
    rng = np.random.default_rng(4)
    p = np.eye(5, dtype=np.float32)
    p[0, 3] = p[3, 0] = 1.0
    local, global_ = _rand(rng, 5, 2, 3), _rand(rng, 5, 3, 3)
    got = _value(losses.info_nce_loss(local, global_, positive_indicator=p))
    np.testing.assert_allclose(got, np_info_nce(local, global_, p), rtol=1e-5)


def test_info_nce_perfect_alignment_gives_zero():
    emb = (30.0 * (np.eye(4) - 0.25)).astype(np.float32)
    assert abs(_value(losses.info_nce_loss(emb, emb))) < 1e-5


# ---------------------------------------------------------------------------------------------
# Gaussian likelihoods (Eq. 7-8).


def test_gaussian_log_likelihood_matches_scipy():
    rng = np.random.default_rng(10)
    mean, log_var, target = _rand(rng, 4, 6), _rand(rng, 4, 6, scale=0.5), _rand(rng, 4, 6)
    expected = np.mean(stats.norm.logpdf(target.astype(np.float64), loc=mean.astype(np.float64),
                                         scale=np.exp(0.5 * log_var.astype(np.float64))), axis=-1)
    got = np.asarray(losses.gaussian_log_likelihood(mean, log_var, target))
    assert got.shape == (4,)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_gaussian_log_likelihood_toy_values():
    zeros = np.zeros((3, 5), np.float32)
    np.testing.assert_allclose(losses.gaussian_log_likelihood(zeros, zeros, zeros),
                               np.full(3, -0.5 * LOG_2PI), rtol=1e-6)
    # log_var = log 4 (σ = 2), target − mean = 2: −½log2π − ½log4 − 4/8 per dim.
    lv = np.full((2, 3), math.log(4.0), np.float32)
    got = losses.gaussian_log_likelihood(np.zeros((2, 3), np.float32), lv,
                                         np.full((2, 3), 2.0, np.float32))
    np.testing.assert_allclose(got, np.full(2, -0.5 * LOG_2PI - math.log(2.0) - 0.5), rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairwise_log_likelihood_closed_form_equals_dense_tensor_form(seed):
    """The three-matmul closed form gives the [B, B, D] tensor's values (and NumPy's)."""
    rng = np.random.default_rng(seed)
    mean, log_var, target = _rand(rng, 16, 32), _rand(rng, 16, 32, scale=0.6), _rand(rng, 16, 32)
    closed = np.asarray(losses.pairwise_log_likelihood(mean, log_var, target))
    dense = np.asarray(losses.pairwise_log_likelihood_dense(mean, log_var, target))
    np.testing.assert_allclose(closed, dense, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(closed, np_pairwise_ll(mean, log_var, target), rtol=1e-5, atol=1e-5)
    # Gradients agree too (the encoder is trained through them).
    tensors = [tf.constant(x) for x in (mean, log_var, target)]
    weights = tf.constant(rng.normal(size=(16, 16)), tf.float32)
    grads = []
    for fn in (losses.pairwise_log_likelihood, losses.pairwise_log_likelihood_dense):
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            out = tf.reduce_sum(fn(*tensors) * weights)
        grads.append(tape.gradient(out, tensors))
    for g1, g2 in zip(*grads):
        np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-5)


def test_pairwise_log_likelihood_matches_numpy():
    rng = np.random.default_rng(11)
    mean, log_var, target = _rand(rng, 5, 3), _rand(rng, 5, 3, scale=0.5), _rand(rng, 5, 3)
    got = np.asarray(losses.pairwise_log_likelihood(mean, log_var, target))
    assert got.shape == (5, 5)
    np.testing.assert_allclose(got, np_pairwise_ll(mean, log_var, target), rtol=1e-5, atol=1e-5)
    # Its diagonal is the per-example likelihood.
    np.testing.assert_allclose(np.diag(got), losses.gaussian_log_likelihood(mean, log_var, target),
                               rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# CLUB upper bound (Eq. 7) and Q's likelihood loss (Eq. 8).


@pytest.mark.parametrize("variant", ["paper", "authors"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_club_matches_numpy(variant, seed):
    rng = np.random.default_rng(seed)
    target = _rand(rng, 6, 4)
    # Q partially predicts the target so the bound is typically positive, but not always.
    mean = (0.7 * target + _rand(rng, 6, 4, scale=0.5)).astype(np.float32)
    log_var = _rand(rng, 6, 4, scale=0.3)
    got = _value(losses.club_upper_bound(mean, log_var, target, variant=variant))
    np.testing.assert_allclose(got, np_club(mean, log_var, target, variant=variant), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("variant", ["paper", "authors"])
def test_club_custom_positive_indicator(variant):
    rng = np.random.default_rng(12)
    mean, log_var, target = _rand(rng, 6, 3), _rand(rng, 6, 3, scale=0.3), _rand(rng, 6, 3)
    p = np.eye(6, dtype=np.float32)
    p[0, 5] = p[5, 0] = 1.0
    got = _value(losses.club_upper_bound(mean, log_var, target, positive_indicator=p,
                                         variant=variant))
    np.testing.assert_allclose(got, np_club(mean, log_var, target, p, variant), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("variant", ["paper", "authors"])
def test_club_is_zero_when_q_ignores_the_condition(variant):
    # Same mean/var in every row: L[i, j] depends on j only, so pos = neg = mean_j L[·, j].
    rng = np.random.default_rng(13)
    mean = np.tile(_rand(rng, 1, 4), (5, 1))
    log_var = np.tile(_rand(rng, 1, 4, scale=0.5), (5, 1))
    target = _rand(rng, 5, 4)
    got = _value(losses.club_upper_bound(mean, log_var, target, variant=variant))
    assert abs(got) < 1e-5


def test_club_hand_computed_2x2():
    # D = 1, log_var = 0: L[i, j] = c − (μ_i − y_j)²/2 with c = −½ log 2π.
    # μ = y = [0, 2]: L = c + [[0, −2], [−2, 0]]. paper: c − (c − 1) = 1; authors: c − (c − 2) = 2.
    mean = np.array([[0.0], [2.0]], np.float32)
    zeros = np.zeros((2, 1), np.float32)
    np.testing.assert_allclose(_value(losses.club_upper_bound(mean, zeros, mean, variant="paper")),
                               1.0, rtol=1e-6)
    np.testing.assert_allclose(
        _value(losses.club_upper_bound(mean, zeros, mean, variant="authors")), 2.0, rtol=1e-6)
    # Targets swapped: L = c + [[−2, 0], [0, −2]]. paper (unclipped): −1; authors: max(0, −2) = 0.
    swapped = mean[::-1].copy()
    np.testing.assert_allclose(
        _value(losses.club_upper_bound(mean, zeros, swapped, variant="paper")), -1.0, rtol=1e-6)
    assert _value(losses.club_upper_bound(mean, zeros, swapped, variant="authors")) == 0.0


def test_club_gradients_flow_and_authors_clip_stops_them():
    mean = tf.Variable([[0.0], [2.0]])
    log_var = tf.Variable([[0.1], [-0.2]])
    target = tf.Variable([[0.3], [1.5]])
    with tf.GradientTape() as tape:
        bound = losses.club_upper_bound(mean, log_var, target, variant="paper")
    grads = tape.gradient(bound, [mean, log_var, target])
    assert all(g is not None and np.any(np.asarray(g) != 0.0) for g in grads)
    # Negative bound in the authors' variant: clipped to 0, so no gradient at all.
    target_bad = tf.Variable([[2.0], [0.0]])
    with tf.GradientTape() as tape:
        bound = losses.club_upper_bound(mean, tf.zeros_like(log_var), target_bad,
                                        variant="authors")
    assert _value(bound) == 0.0
    grads = tape.gradient(bound, [mean, target_bad])
    assert all(g is None or np.all(np.asarray(g) == 0.0) for g in grads)


def test_likelihood_loss_matches_numpy():
    rng = np.random.default_rng(14)
    mean, log_var, target = _rand(rng, 7, 3), _rand(rng, 7, 3, scale=0.5), _rand(rng, 7, 3)
    expected = -np.mean(np_gauss_logpdf(mean, log_var, target))
    np.testing.assert_allclose(_value(losses.likelihood_loss(mean, log_var, target)), expected,
                               rtol=1e-5, atol=1e-6)
    zeros = np.zeros((2, 3), np.float32)
    np.testing.assert_allclose(_value(losses.likelihood_loss(zeros, zeros, zeros)), 0.5 * LOG_2PI,
                               rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Prior matching (Eq. 9-10).


def test_discriminator_loss_matches_numpy_and_hand_values():
    rng = np.random.default_rng(15)
    real, fake = _rand(rng, 8, 1, scale=2.0), _rand(rng, 6, 1, scale=2.0)
    expected = 0.5 * (np.mean(np_softplus(-real.astype(np.float64)))
                      + np.mean(np_softplus(fake.astype(np.float64))))
    np.testing.assert_allclose(_value(losses.discriminator_loss(real, fake)), expected, rtol=1e-5)
    zeros = np.zeros((4, 1), np.float32)
    np.testing.assert_allclose(_value(losses.discriminator_loss(zeros, zeros)),
                               0.5 * (LOG2 + LOG2), rtol=1e-6)
    # A perfect discriminator (real logits +∞, fake logits −∞) has loss → 0.
    big = np.full((4, 1), 50.0, np.float32)
    assert _value(losses.discriminator_loss(big, -big)) < 1e-12


def test_gradient_penalty_with_known_gradients():
    # D(x) = x·w has ∂D/∂x = w for every row, so the penalty is ‖w‖².
    w = np.array([1.0, -2.0, 0.5], np.float32)
    x = tf.constant(np.random.default_rng(16).standard_normal((5, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.linalg.matvec(x, w)
    grads = tape.gradient(logits, x)
    np.testing.assert_allclose(_value(losses.gradient_penalty(grads)), 1.0 + 4.0 + 0.25,
                               rtol=1e-6)
    # D(x) = ½‖x‖² has ∂D/∂x_b = x_b: penalty = mean_b ‖x_b‖².
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = 0.5 * tf.reduce_sum(tf.square(x), axis=-1)
    grads = tape.gradient(logits, x)
    expected = np.mean(np.sum(np.asarray(x, np.float64) ** 2, axis=-1))
    np.testing.assert_allclose(_value(losses.gradient_penalty(grads)), expected, rtol=1e-5)


def test_generator_loss_both_kinds():
    zeros = np.zeros((6, 1), np.float32)
    np.testing.assert_allclose(_value(losses.generator_loss(zeros, "non_saturating")), LOG2,
                               rtol=1e-6)
    np.testing.assert_allclose(_value(losses.generator_loss(zeros, "minimax")), -LOG2, rtol=1e-6)
    np.testing.assert_allclose(_value(losses.generator_loss(zeros)), LOG2, rtol=1e-6)  # default NS
    rng = np.random.default_rng(17)
    logits = _rand(rng, 9, 1, scale=2.0).astype(np.float64)
    d = 1.0 / (1.0 + np.exp(-logits))  # D(z) = sigmoid(logit)
    # non-saturating: −E[log D(z)]; minimax (Eq. 10 as written): E[log(1 − D(z))].
    np.testing.assert_allclose(_value(losses.generator_loss(logits.astype(np.float32),
                                                            "non_saturating")),
                               -np.mean(np.log(d)), rtol=1e-5)
    np.testing.assert_allclose(_value(losses.generator_loss(logits.astype(np.float32), "minimax")),
                               np.mean(np.log(1.0 - d)), rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Cross-reconstruction baselines (Eq. 12, VAE KL).


def test_reconstruction_loss_matches_numpy():
    rng = np.random.default_rng(18)
    recon, target = _rand(rng, 4, 13, 2), _rand(rng, 4, 13, 2)
    expected = np.sum((recon.astype(np.float64) - target) ** 2) / (4 * 13 * 2)
    np.testing.assert_allclose(_value(losses.reconstruction_loss(recon, target)), expected,
                               rtol=1e-5)
    assert _value(losses.reconstruction_loss(target, target)) == 0.0
    np.testing.assert_allclose(_value(losses.reconstruction_loss(target + np.float32(0.5), target)),
                               0.25, rtol=1e-5)


def test_gaussian_kl_loss_toy_values():
    zeros = np.zeros((3, 7), np.float32)
    assert abs(_value(losses.gaussian_kl_loss(zeros, zeros))) < 1e-7
    np.testing.assert_allclose(_value(losses.gaussian_kl_loss(np.ones((3, 7), np.float32), zeros)),
                               7 / 2, rtol=1e-6)


def test_gaussian_kl_loss_scales_hand_values():
    """By hand: row 0 has μ = (1, 0, 0, 2), log σ² = 0 → KL per dim (½, 0, 0, 2), sum 2.5; row 1 has
    μ = 0, log σ² = (log 2, 0, 0, 0) → ½(2 − 1 − log 2) = 0.15343 in dim 0, sum 0.15343. Batch mean:
    authors (sum) (2.5 + 0.15343)/2 = 1.32671; per_dimension (mean over the 4 dims) a quarter of it."""
    mean = np.array([[1, 0, 0, 2], [0, 0, 0, 0]], np.float32)
    log_var = np.array([[0, 0, 0, 0], [math.log(2.0), 0, 0, 0]], np.float32)
    summed = (2.5 + 0.5 * (1.0 - math.log(2.0))) / 2
    np.testing.assert_allclose(_value(losses.gaussian_kl_loss(mean, log_var, "authors")), summed,
                               rtol=1e-6)
    np.testing.assert_allclose(_value(losses.gaussian_kl_loss(mean, log_var, "per_dimension")),
                               summed / 4, rtol=1e-6)
    assert losses.KL_SCALES == ("per_dimension", "authors")
    with pytest.raises(ValueError, match="KL scale must be one of"):
        losses.gaussian_kl_loss(mean, log_var, "sum")


@pytest.mark.parametrize("scale", ["authors", "per_dimension"])
def test_gaussian_kl_loss_matches_numpy_both_scales(scale):
    rng = np.random.default_rng(23)
    mean, log_var = _rand(rng, 5, 7), _rand(rng, 5, 7, scale=0.8)
    m, lv = mean.astype(np.float64), log_var.astype(np.float64)
    per_dim = 0.5 * (np.exp(lv) + m ** 2 - 1.0 - lv)
    expected = np.mean(per_dim.sum(-1) if scale == "authors" else per_dim.mean(-1))
    np.testing.assert_allclose(_value(losses.gaussian_kl_loss(mean, log_var, scale)), expected,
                               rtol=1e-6)


def test_gaussian_kl_loss_matches_numerical_integration():
    rng = np.random.default_rng(19)
    mean, log_var = _rand(rng, 3, 2), _rand(rng, 3, 2, scale=0.5)

    def kl_1d(mu, lv):
        sigma = math.exp(0.5 * lv)
        p = stats.norm(mu, sigma)
        q = stats.norm(0.0, 1.0)
        value, _ = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)),
                                  mu - 12 * sigma, mu + 12 * sigma)
        return value

    expected = np.mean([sum(kl_1d(float(mean[b, d]), float(log_var[b, d])) for d in range(2))
                        for b in range(3)])
    np.testing.assert_allclose(_value(losses.gaussian_kl_loss(mean, log_var)), expected,
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Bad arguments.


def test_bad_measure_raises_naming_allowed_values():
    z = np.zeros((3, 2), np.float32)
    for fn in (lambda: losses.fenchel_dual_loss(z, z, measure="jsdd"),
               lambda: losses.positive_expectation(z, "bogus"),
               lambda: losses.negative_expectation(z, "bogus")):
        with pytest.raises(ValueError) as info:
            fn()
        message = str(info.value)
        assert all(m in message for m in ALL_MEASURES), message


def test_bad_club_variant_raises_naming_allowed_values():
    z = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError) as info:
        losses.club_upper_bound(z, z, z, variant="original")
    assert "paper" in str(info.value) and "authors" in str(info.value)
    assert "original" in str(info.value)


def test_bad_generator_loss_kind_raises_naming_allowed_values():
    with pytest.raises(ValueError) as info:
        losses.generator_loss(np.zeros((3, 1), np.float32), kind="wgan")
    assert "non_saturating" in str(info.value) and "minimax" in str(info.value)
    assert "wgan" in str(info.value)


def test_info_nce_non_positive_temperature_raises():
    # Contract: bad inputs raise a clear ValueError, never a silent inf/NaN (τ = 0 divides by 0).
    z = np.ones((3, 2), np.float32)
    for temperature in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature"):
            losses.info_nce_loss(z, z, temperature=temperature)


# ---------------------------------------------------------------------------------------------
# Cross-view discrepancy (the optional alignment term; not in the paper).


def np_discrepancy(a, b):
    """mean_i ‖a_i − b_i‖² / (2 Σ_k Var_k[a; b]), in float64 loops."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    rows = np.concatenate([a, b])
    spread = sum(np.mean((rows[:, k] - rows[:, k].mean()) ** 2) for k in range(rows.shape[1]))
    distance = np.mean([np.sum((a[i] - b[i]) ** 2) for i in range(len(a))])
    return distance / (2 * spread)


@pytest.mark.parametrize("seed", [0, 1])
def test_cross_view_discrepancy_matches_numpy(seed):
    rng = np.random.default_rng(40 + seed)
    a, b = _rand(rng, 9, 5), _rand(rng, 9, 5)
    np.testing.assert_allclose(_value(losses.cross_view_discrepancy(a, b)), np_discrepancy(a, b),
                               rtol=1e-6)
    # Not symmetric in a swapped row order: it pairs row i with row i.
    assert _value(losses.cross_view_discrepancy(a, b[::-1])) != pytest.approx(
        _value(losses.cross_view_discrepancy(a, b)), rel=1e-3)


def test_cross_view_discrepancy_hand_values():
    """By hand: a = [(1, 0), (0, 0)], b = 0. Rows of [a; b]: variance 1/4 − 1/16 = 3/16 in dim 0, 0 in
    dim 1; mean squared distance (1 + 0)/2 = 1/2 → (1/2) / (2·3/16) = 4/3. Identical views give 0,
    a constant embedding 0 (not NaN), and scaling both views changes nothing."""
    a = np.array([[1, 0], [0, 0]], np.float32)
    b = np.zeros((2, 2), np.float32)
    np.testing.assert_allclose(_value(losses.cross_view_discrepancy(a, b)), 4 / 3, rtol=1e-6)
    assert _value(losses.cross_view_discrepancy(a, a)) == 0.0
    assert _value(losses.cross_view_discrepancy(b, b)) == 0.0
    np.testing.assert_allclose(_value(losses.cross_view_discrepancy(7 * a, 7 * b)), 4 / 3, rtol=1e-6)
    # Unrelated draws of one distribution: about 1.
    rng = np.random.default_rng(3)
    big = _rand(rng, 4000, 8), _rand(rng, 4000, 8)
    assert _value(losses.cross_view_discrepancy(*big)) == pytest.approx(1.0, abs=0.03)


def test_cross_view_discrepancy_gradient_only_pulls_pairs_together():
    """With the spread S held constant (the training term) ∂/∂a_i = (a_i − b_i)/(B·S); the hand case
    above gives (8/3, 0) for a_0 and 0 for a_1. Without the stop the spread's gradient is added: the
    finite difference of the NumPy function."""
    a = tf.constant([[1, 0], [0, 0]], tf.float32)
    b = tf.zeros((2, 2))
    with tf.GradientTape() as tape:
        tape.watch(a)
        value = losses.cross_view_discrepancy(a, b)
    np.testing.assert_allclose(tape.gradient(value, a).numpy(), [[8 / 3, 0], [0, 0]], rtol=1e-6)

    rng = np.random.default_rng(5)
    a, b = _rand(rng, 6, 3), _rand(rng, 6, 3)
    spread = np.concatenate([a, b]).astype(np.float64).var(axis=0).sum()
    at = tf.constant(a)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(at)
        held = losses.cross_view_discrepancy(at, b)
        free = losses.cross_view_discrepancy(at, b, stop_scale_gradient=False)
    np.testing.assert_allclose(tape.gradient(held, at).numpy(), (a - b) / (6 * spread), rtol=1e-5)
    numeric = np.zeros_like(a, np.float64)
    for idx in np.ndindex(a.shape):
        step = np.zeros_like(a, np.float64)
        step[idx] = 1e-6
        numeric[idx] = (np_discrepancy(a + step, b) - np_discrepancy(a - step, b)) / 2e-6
    np.testing.assert_allclose(tape.gradient(free, at).numpy(), numeric, rtol=1e-4, atol=1e-6)
    assert not np.allclose(numeric, (a - b) / (6 * spread), rtol=1e-3)
