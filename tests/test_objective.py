"""CV-MIM's full objective (Eq. 5–11) re-derived in float64 NumPy from the networks' own outputs.

The test calls the Keras sub-networks itself (encoder, local branch, Q, D), draws the prior samples from
the same step seed, takes D's input gradients with its own tape, and recomputes every term with NumPy
formulas written here (not taken from ``cv_mim.losses``). Only the three totals that the optimisers
use (``encoder``, ``estimator``, ``discriminator``) are read from ``compute_losses``, so a wrong weight,
a swapped argument, a dropped term or a wrong sign anywhere in the objective fails here.
"""

import numpy as np
import pytest
import tensorflow as tf

from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import contract
from cv_mim.algorithms import registry

LOG2 = np.log(2.0)
REL = 1e-5


def _softplus(x):
    return np.logaddexp(0.0, x)


def np_jsd_loss(local, global_):
    """Eq. 6 minus 2·log 2 with the identity positives: mean_neg ρ(S) − log2 − mean_pos (log2 − ρ(−S))."""
    s = local @ global_.T
    eye = np.eye(len(s), dtype=bool)
    return np.mean(_softplus(s[~eye]) - LOG2) - np.mean(LOG2 - _softplus(-s[eye]))


def np_log_q(mean, log_var, target):
    """ll[i, j] = (1/D)·Σ_d log N(target_jd; mean_id, exp(log_var_id))."""
    diff = target[None, :, :] - mean[:, None, :]
    lp = -0.5 * (np.log(2 * np.pi) + log_var[:, None, :] + diff ** 2 / np.exp(log_var[:, None, :]))
    return lp.mean(axis=-1)


def np_club(mean, log_var, target, variant):
    ll = np_log_q(mean, log_var, target)
    eye = np.eye(len(ll), dtype=bool)
    if variant == "paper":  # Eq. 7: positives minus the product of marginals (all B² pairs)
        return ll[eye].mean() - ll.mean()
    return max(0.0, ll[eye].mean() - ll[~eye].mean())  # authors: off-diagonal negatives, clip at 0


def np_fuse(pose, view, fusion):
    if fusion == "cat":
        return np.concatenate([pose, view], axis=-1)
    return {"moe": 0.5 * (pose + view), "poe": pose * view}[fusion]


def _np(x):
    return np.asarray(x, np.float64)


def _outputs(alg, anchor, positive, seed, training):
    """Everything the objective reads, from the sub-networks called here (float64 NumPy)."""
    out = {}
    streams = contract.stream_seeds(seed)  # the step's dropout streams, from the same seed
    for tag, x, view in (("a", anchor, "anchor"), ("p", positive, "positive")):
        enc = alg.encoder(x, training=training, seed=streams[f"encoder_{view}"])
        out[f"pose_{tag}"] = _np(enc["pose_embedding"])
        out[f"view_{tag}"] = _np(enc["view_embedding"])
        out[f"local_{tag}"] = _np(alg.networks["local_branch"](
            enc["fc0"], training=training, seed=streams[f"local_{view}"])["local"])
        if "estimator" in alg.networks:
            q = alg.networks["estimator"](enc["pose_embedding"], training=training)
            out[f"q_mean_{tag}"], out[f"q_log_var_{tag}"] = _np(q["mean"]), _np(q["log_var"])
        out[f"enc_{tag}"] = enc
    if "inter_estimator" in alg.networks:
        q = alg.networks["inter_estimator"](out["enc_a"]["view_embedding"], training=training)
        out["qi_mean"], out["qi_log_var"] = _np(q["mean"]), _np(q["log_var"])
    if "discriminator" in alg.networks:
        d = alg.networks["discriminator"]
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        for i, tag in enumerate("ap"):
            fake = tf.sigmoid(out[f"enc_{tag}"]["embedding"])
            real = tf.random.stateless_uniform(tf.shape(fake), seed=seeds[i])
            for kind, x in (("fake", fake), ("real", real)):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    logit = d(x, training=training)["logit"]
                out[f"d_{kind}_{tag}"] = _np(logit)
                out[f"d_grad_{kind}_{tag}"] = _np(tape.gradient(logit, x))
    return out


def np_objective(cfg, o):
    """The three totals of Eq. 11 for CV-MIM under ``cfg``, from the outputs ``o``."""
    views = "ap"
    rep = sum(np_jsd_loss(o[f"local_{v}"], np_fuse(o[f"pose_{v}"], o[f"view_{v}"], cfg.fusion))
              for v in views)
    factor = {"paper": 2.0, "single_cross_view": 1.0, "authors": 2.0}[cfg.loss_weighting]
    enc = rep + factor * cfg.view_loss_weight * np_jsd_loss(o["pose_a"], o["pose_p"])
    if cfg.alignment_loss_weight > 0:  # not in the paper: the two views' z_p pulled together
        # The spread is a constant of the step (held fixed by the gradient test below).
        spread = o.get("alignment_spread",
                       np.concatenate([o["pose_a"], o["pose_p"]]).var(axis=0).sum())
        enc += cfg.alignment_loss_weight * (np.mean(np.sum((o["pose_a"] - o["pose_p"]) ** 2, axis=1))
                                            / (2 * spread))
    totals = {}
    if cfg.disentangle_loss_weight > 0:
        club = sum(np_club(o[f"q_mean_{v}"], o[f"q_log_var_{v}"], o[f"view_{v}"], cfg.club_variant)
                   for v in views)
        est = -sum(np.diag(np_log_q(o[f"q_mean_{v}"], o[f"q_log_var_{v}"], o[f"view_{v}"])).mean()
                   for v in views)
        enc += cfg.disentangle_loss_weight * club
        if cfg.loss_weighting == "authors":
            enc += 2 * cfg.disentangle_loss_weight * np_club(
                o["qi_mean"], o["qi_log_var"], o["view_p"], cfg.club_variant)
            est += -2 * np.diag(np_log_q(o["qi_mean"], o["qi_log_var"], o["view_p"])).mean()
        totals["estimator"] = est
    if cfg.prior_loss_weight > 0:
        gen, disc = 0.0, 0.0
        for v in views:
            fake, real = o[f"d_fake_{v}"], o[f"d_real_{v}"]
            if cfg.generator_loss == "non_saturating":
                gen += np.mean(_softplus(-fake))      # −E log D(z)
            else:
                gen += -np.mean(_softplus(fake))      # E log(1 − D(z)), Eq. 10 as written
            penalty = 0.5 * sum(np.mean(np.sum(o[f"d_grad_{k}_{v}"] ** 2, axis=-1))
                                for k in ("real", "fake"))
            disc += (0.5 * (np.mean(_softplus(-real)) + np.mean(_softplus(fake)))
                     + cfg.gradient_penalty_weight * penalty)
        enc += cfg.prior_loss_weight * gen
        totals["discriminator"] = disc
    totals["encoder"] = enc
    return totals


def _pairs(batch=12, seed=0):
    rng = np.random.default_rng(seed)
    anchor = rng.normal(scale=0.3, size=(batch, 13, 2)).astype(np.float32)
    positive = (anchor + rng.normal(scale=0.1, size=anchor.shape)).astype(np.float32)
    return tf.constant(anchor), tf.constant(positive)


# Weights differ from each other (and from 1) so that a swapped or dropped weight changes the total.
_ODD = dict(view_loss_weight=3.0, disentangle_loss_weight=0.7, prior_loss_weight=1.3,
            gradient_penalty_weight=0.6)
CASES = {
    "defaults": {},
    "odd_weights": _ODD,
    "single_cross_view": dict(_ODD, loss_weighting="single_cross_view"),
    "authors": dict(_ODD, loss_weighting="authors"),
    "authors_club_clip": dict(_ODD, loss_weighting="authors", club_variant="authors"),
    "no_inter": dict(_ODD, disentangle_loss_weight=0.0),
    "no_prior": dict(_ODD, prior_loss_weight=0.0),
    "no_inter_no_prior": dict(disentangle_loss_weight=0.0, prior_loss_weight=0.0),
    "fusion_cat": dict(_ODD, fusion="cat", view_dim=16),
    "fusion_poe": dict(_ODD, fusion="poe"),
    "minimax_generator": dict(_ODD, generator_loss="minimax"),
    "club_authors_variant": dict(_ODD, club_variant="authors"),
    "alignment": dict(_ODD, alignment_loss_weight=2.5),
    "alignment_authors": dict(_ODD, alignment_loss_weight=0.4, loss_weighting="authors"),
}


def _check(case, training, dropout):
    cfg = config_lib.ModelConfig(hidden_dim=32, dropout_rate=dropout, **CASES[case])
    tf.keras.utils.set_random_seed(11)
    alg = registry.get_algorithm(cfg).build()
    anchor, positive = _pairs()
    seed = tf.constant([7, 3], tf.int64)
    result = alg.compute_losses(anchor, positive, seed, training=training)
    expected = np_objective(cfg, _outputs(alg, anchor, positive, seed, training))
    got = {g: float(result[g]["total_loss"]) for g in result if g != "metrics"}
    assert sorted(got) == sorted(expected)
    for group, value in expected.items():
        assert got[group] == pytest.approx(value, rel=REL, abs=1e-6), (case, group, got, expected)


@pytest.mark.parametrize("case", sorted(CASES))
def test_full_objective_matches_numpy_in_training_mode(case):
    """Training mode at the default dropout 0.25: the masks are stateless in the step seed, so the
    test's own forward pass (same seed streams) is the loss's."""
    _check(case, training=True, dropout=0.25)


@pytest.mark.parametrize("case", ["defaults", "authors", "single_cross_view", "alignment"])
def test_full_objective_matches_numpy_in_inference_mode(case):
    _check(case, training=False, dropout=0.25)


def test_cross_view_weight_is_twice_lambda1_by_default():
    """Eq. 5: Σ_{i≠j} I(z_p^i; z_p^j) over two views is two equal terms → 2·λ1 (single: λ1)."""
    assert config_lib.ModelConfig().cross_view_factor == 2.0
    assert config_lib.ModelConfig(loss_weighting="single_cross_view").cross_view_factor == 1.0
    assert config_lib.ModelConfig(loss_weighting="authors").cross_view_factor == 2.0
    assert config_lib.ModelConfig().loss_weighting == "paper"
    # The two i ≠ j terms are equal: the JSD loss with identity positives is symmetric.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    assert np_jsd_loss(a, b) == pytest.approx(np_jsd_loss(b, a), rel=1e-12)


def test_numpy_reference_hand_values():
    """The reference's own building blocks against values worked out by hand."""
    # Zero scores: ρ(0) − log2 − (log2 − ρ(0)) = 0.
    assert np_jsd_loss(np.zeros((3, 2)), np.zeros((3, 2))) == pytest.approx(0.0, abs=1e-15)
    # One-hot rows ×10: positive scores 100, negative 0 → (ρ(0) − log2) − (log2 − ρ(−100)) ≈ −log2.
    e = 10.0 * np.eye(3)
    hand = (_softplus(0.0) - LOG2) - (LOG2 - _softplus(-100.0))
    assert np_jsd_loss(e, e) == pytest.approx(hand, rel=1e-12)
    # Standard normal q: log N(0; 0, 1) = −½ log 2π.
    assert np_log_q(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)))[0, 0] == pytest.approx(
        -0.5 * np.log(2 * np.pi))
    # CLUB with q independent of the condition is 0 (both variants).
    m = np.zeros((3, 2))
    y = np.arange(6.0).reshape(3, 2)
    assert np_club(m, m, y, "paper") == pytest.approx(0.0, abs=1e-12)
    assert np_club(m, m, y, "authors") == pytest.approx(0.0, abs=1e-12)


def _encoder_objective(alg, cfg, anchor, positive, seed, alignment_spread=None):
    outputs = _outputs(alg, anchor, positive, seed, training=True)
    if alignment_spread is not None:
        outputs["alignment_spread"] = alignment_spread
    return np_objective(cfg, outputs)["encoder"]


# Cases where one term dominates E's gradient, so that a term's gradient path is checked on its own.
GRADIENT_CASES = dict(
    CASES,
    club_dominant=dict(view_loss_weight=0.0, disentangle_loss_weight=200.0, prior_loss_weight=0.0),
    prior_dominant=dict(view_loss_weight=0.0, disentangle_loss_weight=0.0, prior_loss_weight=200.0),
    inter_dominant=dict(view_loss_weight=0.0, disentangle_loss_weight=200.0, prior_loss_weight=0.0,
                        loss_weighting="authors"),
    alignment_dominant=dict(view_loss_weight=0.0, disentangle_loss_weight=0.0, prior_loss_weight=0.0,
                            alignment_loss_weight=200.0),
)


@pytest.mark.parametrize("case", ["defaults", "authors", "club_dominant", "prior_dominant",
                                  "inter_dominant", "alignment_dominant"])
def test_encoder_gradient_matches_the_numpy_objective_by_finite_differences(case):
    """Gradient routing of the objective itself: the encoder's gradient (tape on compute_losses) along
    a random direction of E's and the local branch's weights equals the central difference of the
    NumPy objective. A stop_gradient on any encoder-side input of a term (e.g. CLUB's target z_v)
    keeps every value and fails here."""
    cfg = config_lib.ModelConfig(hidden_dim=32, **GRADIENT_CASES[case])
    tf.keras.utils.set_random_seed(3)
    alg = registry.get_algorithm(cfg).build()
    anchor, positive = _pairs()
    seed = tf.constant([2, 8], tf.int64)
    variables = alg.group_variables("encoder")
    with tf.GradientTape() as tape:
        total = alg.compute_losses(anchor, positive, seed, training=True)["encoder"]["total_loss"]
    grads = tape.gradient(total, [v.value for v in variables])
    # The alignment term's spread is a constant of the step (stop_gradient): held at its value here.
    base_outputs = _outputs(alg, anchor, positive, seed, training=True)
    spread = np.concatenate([base_outputs["pose_a"], base_outputs["pose_p"]]).var(axis=0).sum()
    rng = np.random.default_rng(0)
    base = [v.numpy() for v in variables]
    direction = [rng.normal(size=w.shape) * (np.std(w) + 1e-3) for w in base]
    analytic = sum(float(np.sum(g.numpy() * d)) for g, d in zip(grads, direction) if g is not None)
    step = 2e-4
    values = []
    for sign in (1.0, -1.0):
        for v, w, d in zip(variables, base, direction):
            v.assign((w + sign * step * d).astype(np.float32))
        values.append(_encoder_objective(alg, cfg, anchor, positive, seed, spread))
    for v, w in zip(variables, base):
        v.assign(w)
    numeric = (values[0] - values[1]) / (2 * step)
    assert abs(analytic) > 1e-3
    assert numeric == pytest.approx(analytic, rel=2e-2), (numeric, analytic)
