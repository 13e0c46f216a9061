"""Losses of CV-MIM and its baselines as pure functions of tensors (no networks inside).

Notation: B = batch size, D = embedding size. "Positives" are given by a [B, B] indicator matrix P
(1 = the pair (i, j) is a positive); ``None`` means the identity (the two views of one 3D pose), which is
the paper's and the authors' default (fact sheet §3.2).

* :func:`fenchel_dual_loss` — f-divergence MI lower bounds with the encode-and-dot-product critic
  [17]; the Jensen–Shannon measure is the paper's Eq. 6.
* :func:`info_nce_loss` — InfoNCE [34], used by the InfoNCE baseline.
* :func:`club_upper_bound` and :func:`likelihood_loss` — the CLUB upper bound L_inter of Eq. 7 and the
  maximum-likelihood training of Q that realises L_KL of Eq. 8.
* :func:`discriminator_loss`, :func:`gradient_penalty`, :func:`generator_loss` — prior matching,
  Eq. 9–10.
* :func:`reconstruction_loss`, :func:`gaussian_kl_loss` — the cross-reconstruction baselines (Eq. 12).
* :func:`cross_view_discrepancy` — how far apart two views' embeddings of one pose are, as a fraction
  of the embedding's spread: a monitor, and the optional alignment term (not in the paper).
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

MEASURES = ("jsd", "gan", "kl", "rkl", "h2", "w1")
CLUB_VARIANTS = ("paper", "authors")
GENERATOR_LOSSES = ("non_saturating", "minimax")
# How the VAE's KL is reduced over the latent dimensions (the one definition; the config's choices and
# help derive from it). The reconstruction is always a mean over the B·J·2 input entries.
KL_SCALE_HELP = {
    "per_dimension": "KL averaged over the latent dimensions, as the reconstruction is averaged over "
                     "the input entries (both terms per scalar; does not collapse, BUILD_NOTES §7)",
    "authors": "KL summed over the latent dimensions (the authors' scale; with their per-entry MSE it "
               "makes the collapsed posterior optimal on normalised 2D poses)",
}
KL_SCALES = tuple(KL_SCALE_HELP)
_LOG2 = math.log(2.0)


def _indicator(positive_indicator, batch_size):
    if positive_indicator is None:
        return tf.eye(batch_size, dtype=tf.float32)
    return tf.cast(positive_indicator, tf.float32)



def positive_expectation(scores, measure="jsd"):
    """E_P[·] term of the f-divergence lower bound for positive-pair scores."""
    if measure == "jsd":
        return _LOG2 - tf.nn.softplus(-scores)
    if measure == "gan":
        return -tf.nn.softplus(-scores)
    if measure == "kl":
        return scores
    if measure == "rkl":
        return -tf.exp(-scores)
    if measure == "h2":
        return 1.0 - tf.exp(-scores)
    if measure == "w1":
        return scores
    raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")


def negative_expectation(scores, measure="jsd"):
    """E_N[·] term of the f-divergence lower bound for negative-pair scores."""
    if measure == "jsd":
        return tf.nn.softplus(scores) - _LOG2
    if measure == "gan":
        return tf.nn.softplus(-scores) + scores
    if measure == "kl":
        return tf.exp(scores - 1.0)
    if measure == "rkl":
        return scores - 1.0
    if measure == "h2":
        return tf.exp(scores) - 1.0
    if measure == "w1":
        return scores
    raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")


def _with_positions(x):
    """[B, D] -> [B, 1, D] float32 (a single position); [B, N, D] unchanged."""
    x = tf.convert_to_tensor(x, tf.float32)
    return x[:, None, :] if x.shape.rank == 2 else x


def fenchel_dual_loss(local, global_, measure="jsd", positive_indicator=None):
    """Contrastive f-divergence MI loss; with ``measure="jsd"`` this is L_MI of Eq. 6.

    loss = mean_{(i,j) negative} E⁻(S_ij) − mean_{(i,j) positive} E⁺(S_ij),
    S[i, j] = ⟨local_i, global_j⟩ (the dot-product critic f of Eq. 6, no normalisation).

    For JSD, E⁺(s) = log 2 − ρ(−s) and E⁻(s) = ρ(s) − log 2 with ρ = softplus, so the loss equals
    Eq. 6, E_pos[ρ(−f)] + E_neg[ρ(f)], minus the constant 2·log 2; −loss is the Jensen–Shannon MI
    estimate of DIM [17] (0 for a critic that cannot tell pairs apart, up to 2·log 2).

    Args:
      local: [B, D] or [B, N, D].
      global_: [B, D] or [B, N, D].
      measure: one of ``MEASURES``.
      positive_indicator: optional [B, B] 0/1 matrix; default identity.
    Returns:
      Scalar loss (to be minimised).
    """
    local, global_ = _with_positions(local), _with_positions(global_)  # -> [B, N, D], [B, M, D]
    # Every pair of positions is scored and the measure applied per score before averaging (DIM).
    scores = tf.einsum("iad,jbd->iajb", local, global_)
    batch = tf.shape(scores)[0]
    pos_mask = _indicator(positive_indicator, batch)
    neg_mask = 1.0 - pos_mask
    e_pos = tf.reduce_mean(positive_expectation(scores, measure), axis=[1, 3])
    e_neg = tf.reduce_mean(negative_expectation(scores, measure), axis=[1, 3])
    e_pos = tf.reduce_sum(pos_mask * e_pos) / tf.maximum(tf.reduce_sum(pos_mask), 1e-12)
    e_neg = tf.reduce_sum(neg_mask * e_neg) / tf.maximum(tf.reduce_sum(neg_mask), 1e-12)
    return e_neg - e_pos


def info_nce_loss(local, global_, positive_indicator=None, temperature=1.0):
    """InfoNCE [34] with the dot-product critic, as the authors' function (fact sheet §3.3).

    With S[i, j] = ⟨l_i, g_j⟩/τ, global feature i's positive ⟨l_i, g_i⟩ competes with ⟨l_j, g_i⟩ for
    the j that are not positives of i — a softmax over the COLUMN i of S:

        loss = mean_i [ log( exp S[i,i] + Σ_{j: P[i,j]=0} exp S[j,i] ) − S[i,i] ].

    With the default P = I that is Σ_j over the whole column. Off-diagonal positives (P[i,j] = 1,
    j ≠ i) are left out of the denominator (the authors mask them with −1e12). For [B, N, D] /
    [B, M, D] inputs every (local position a, global position b) pair is scored,
    S_ab[i, j] = ⟨l_{i,a}, g_{j,b}⟩/τ, and the loss is averaged over i, a and b.

    Args:
      local: [B, D] or [B, N, D]; global_: [B, D] or [B, M, D].
      positive_indicator: optional [B, B] 0/1 matrix (default identity).
      temperature: τ > 0.
    Returns:
      Scalar loss; log(B) − loss is the InfoNCE MI lower bound (with P = I).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    local, global_ = _with_positions(local), _with_positions(global_)  # -> [B, N, D], [B, M, D]
    # scores[a, b, i, j] = ⟨l_{i,a}, g_{j,b}⟩ / τ.
    scores = tf.einsum("iad,jbd->abij", local, global_) / temperature
    batch = tf.shape(scores)[-1]
    positive = tf.linalg.diag_part(scores)                 # [A, M, B]: S[i, i]
    column = tf.linalg.matrix_transpose(scores)            # column[..., i, j] = S[j, i]
    pos_mask = _indicator(positive_indicator, batch)
    negatives = tf.where(pos_mask > 0, tf.constant(-1e9, tf.float32), column)
    logits = tf.concat([positive[..., None], negatives], axis=-1)
    return tf.reduce_mean(tf.reduce_logsumexp(logits, axis=-1) - positive)


def _gaussian(mean, log_var):
    return tfd.Normal(loc=mean, scale=tf.exp(0.5 * log_var))


def gaussian_log_likelihood(mean, log_var, target):
    """log q(y_i | x_i) per example, averaged over dimensions (a per-dimension mean, as the authors).

    Args:
      mean, log_var: [B, D] parameters of the diagonal Gaussian q predicted by Q.
      target: [B, D] samples y.
    Returns:
      [B] log-likelihoods (tensorflow-probability Normal, including the −½·log 2π constant).
    """
    return tf.reduce_mean(_gaussian(mean, log_var).log_prob(target), axis=-1)


def pairwise_log_likelihood(mean, log_var, target):
    """L[i, j] = log q(y_j | x_i), averaged over dimensions. Returns [B, B].

    Closed form (no [B, B, D] tensor): with w = exp(−log_var),
    Σ_d −½[log 2π + log_var_id + (y_jd − μ_id)² w_id] expands into three [B, D]×[D, B] matmuls,
    (y²)ᵀ-by-w, y-by-(μ·w) and a per-row constant Σ_d (μ² w + log_var)_id.
    """
    mean = tf.convert_to_tensor(mean, tf.float32)
    log_var = tf.convert_to_tensor(log_var, tf.float32)
    target = tf.convert_to_tensor(target, tf.float32)
    inv_var = tf.exp(-log_var)
    dim = tf.cast(tf.shape(mean)[-1], tf.float32)
    quad = (tf.matmul(inv_var, tf.square(target), transpose_b=True)           # Σ_d w_id y_jd²
            - 2.0 * tf.matmul(mean * inv_var, target, transpose_b=True)      # Σ_d μ_id w_id y_jd
            + tf.reduce_sum(tf.square(mean) * inv_var, axis=-1, keepdims=True))
    const = tf.reduce_sum(log_var, axis=-1, keepdims=True) + dim * math.log(2.0 * math.pi)
    return -0.5 * (quad + const) / dim


def pairwise_log_likelihood_dense(mean, log_var, target):
    """The same L[i, j] through the explicit [B, B, D] tensor (the reference the closed form matches)."""
    dist = _gaussian(mean[:, None, :], log_var[:, None, :])
    return tf.reduce_mean(dist.log_prob(target[None, :, :]), axis=-1)


def club_upper_bound(mean, log_var, target, positive_indicator=None, variant="paper"):
    """CLUB upper bound on I(x; y) [7], the disentanglement term L_inter of Eq. 7.

    With q(y | x) = N(mean(x), exp(log_var(x))) from Q (Eq. 8):

    * ``variant="paper"``: Eq. 7 as written — E_{p(x,y)}[log q(y|x)] − E_{p(x)p(y)}[log q(y'|x)],
      the first mean over positive pairs, the second over ALL B² pairs (the product of the marginals,
      as in the original CLUB); not clipped.
    * ``variant="authors"``: the authors' code (fact sheet §3.6): the negative mean over off-diagonal
      (non-positive) pairs only, and the bound clipped at 0 (max(0, pos − neg)).

    Args:
      mean, log_var: [B, D] Q's outputs for the conditioning samples x_i.
      target: [B, D] the y_j.
      positive_indicator: optional [B, B] (default identity).
      variant: one of ``CLUB_VARIANTS``.
    Returns:
      Scalar bound, minimised by the encoder (gradients flow into mean, log_var and target).
    """
    if variant not in CLUB_VARIANTS:
        raise ValueError(f"CLUB variant must be one of {CLUB_VARIANTS}, got {variant!r}")
    ll = pairwise_log_likelihood(mean, log_var, target)
    batch = tf.shape(ll)[0]
    pos_mask = _indicator(positive_indicator, batch)
    positive = tf.reduce_sum(pos_mask * ll) / tf.maximum(tf.reduce_sum(pos_mask), 1e-12)
    if variant == "paper":
        negative = tf.reduce_mean(ll)
        return positive - negative
    neg_mask = 1.0 - pos_mask
    negative = tf.reduce_sum(neg_mask * ll) / tf.maximum(tf.reduce_sum(neg_mask), 1e-12)
    return tf.nn.relu(positive - negative)


def likelihood_loss(mean, log_var, target):
    """Q's training loss: −E[log q(y | x)] over positive pairs (maximum likelihood for Eq. 8).

    Minimising KL[p(y|x) ‖ q(y|x)] over q is maximum likelihood of q on samples of p(x, y).
    """
    return -tf.reduce_mean(gaussian_log_likelihood(mean, log_var, target))


def discriminator_loss(real_logits, fake_logits):
    """D's loss for Eq. 10 with logits: 0.5·[mean ρ(−D(real)) + mean ρ(D(fake))], ρ = softplus.

    "real" are the prior samples u ~ U(0, 1), "fake" the sigmoid-squashed embeddings; minimising this is
    maximising Eq. 10 over D (the authors' 0.5 averaging of the two halves).
    """
    return 0.5 * (tf.reduce_mean(tf.nn.softplus(-real_logits))
                  + tf.reduce_mean(tf.nn.softplus(fake_logits)))


def gradient_penalty(input_gradients):
    """R1/R2-style penalty mean_b ‖∂D(x_b)/∂x_b‖² [Mescheder et al.], the authors' D regulariser.

    Args:
      input_gradients: [B, D] gradients of D's logits with respect to its inputs.
    """
    return tf.reduce_mean(tf.reduce_sum(tf.square(input_gradients), axis=-1))


def generator_loss(fake_logits, kind="non_saturating"):
    """The encoder's side of Eq. 10.

    ``minimax``: min_E E[log(1 − D(z))] = −mean ρ(D(z)), as Eq. 10 reads;
    ``non_saturating``: mean ρ(−D(z)) = −E[log D(z)], the usual non-saturating form (the authors').
    """
    if kind == "non_saturating":
        return tf.reduce_mean(tf.nn.softplus(-fake_logits))
    if kind == "minimax":
        return -tf.reduce_mean(tf.nn.softplus(fake_logits))
    raise ValueError(f"generator loss must be one of {GENERATOR_LOSSES}, got {kind!r}")


def reconstruction_loss(reconstruction, target):
    """Squared L2 error of Eq. 12 as a mean over all B·J·2 entries (Keras MSE, as the authors)."""
    return tf.reduce_mean(tf.square(tf.cast(reconstruction, tf.float32)
                                    - tf.cast(target, tf.float32)))


def gaussian_kl_loss(mean, log_var, scale="authors"):
    """KL[N(mean, exp(log_var)) ‖ N(0, I)] of the VAE, averaged over the batch.

    Args:
      mean, log_var: [B, D] parameters of the diagonal Gaussian posterior.
      scale: one of :data:`KL_SCALES` — ``"authors"`` sums over the D dimensions, ``"per_dimension"``
        averages over them (the sum divided by D).
    """
    if scale not in KL_SCALES:
        raise ValueError(f"KL scale must be one of {KL_SCALES}, got {scale!r}")
    per_dim = -0.5 * (1.0 + log_var - tf.square(mean) - tf.exp(log_var))
    reduce = tf.reduce_sum if scale == "authors" else tf.reduce_mean
    return tf.reduce_mean(reduce(per_dim, axis=-1))


def cross_view_discrepancy(a, b, *, stop_scale_gradient=True):
    """The share of an embedding's spread by which two views of the same poses differ.

        d = mean_i ‖a_i − b_i‖² / (2 · Σ_k Var_k),

    with Var_k the variance of dimension k over the 2B rows of [a; b]. 0 when the two views embed
    identically; about 1 when a and b are unrelated draws of the same distribution
    (E‖a − b‖² = 2 Σ Var); 0 also for a constant embedding (the spread is floored at 1e-12). It is
    unchanged by scaling the embedding, so the encoder cannot lower it by shrinking z_p. With
    ``stop_scale_gradient`` (the training term) the spread is a constant of the step: the gradient
    only pulls each pair together, and inflating the spread does not pay.

    Not in the paper: Eq. 5's cross-view JSD term scores raw dot products, which a view-dependent
    direction orthogonal to the poses' does not change (BUILD_NOTES §1, §14).

    Args:
      a, b: [B, D] the two views' embeddings (row i of each: the same 3D pose).
    Returns:
      Scalar.
    """
    a = tf.cast(a, tf.float32)  # bfloat16 embeddings (mixed precision) are compared in float32
    b = tf.cast(b, tf.float32)
    both = tf.concat([a, b], axis=0)
    spread = tf.reduce_sum(tf.math.reduce_variance(both, axis=0))
    if stop_scale_gradient:
        spread = tf.stop_gradient(spread)
    distance = tf.reduce_mean(tf.reduce_sum(tf.square(a - b), axis=-1))
    return distance / (2.0 * tf.maximum(spread, 1e-12))
