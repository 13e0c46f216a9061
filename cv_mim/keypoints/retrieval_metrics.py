"""Cross-view retrieval metrics, numpy only (Pr-VIPE protocol, paper §4.5): Procrustes-aligned MPJPE,
Euclidean nearest neighbours and Hit@k over every ordered camera pair.

The one definition behind ``python -m cv_mim.retrieval`` (:mod:`cv_mim.downstream.retrieval`) and the
validation that runs during pretraining (:mod:`cv_mim.training.validation`), so the number a training
run tracks is the number the retrieval binary reports.
"""

import numpy as np

KS = (1, 5, 10)
CRITERIA = ("exact", "pmpjpe")


def procrustes_align(predicted, target):
    """``predicted`` poses [..., J, 3] moved onto ``target`` by the best similarity transform
    (rotation, uniform scale, translation; no reflection)."""
    p = np.asarray(predicted, np.float64)
    t = np.asarray(target, np.float64)
    mu_p = p.mean(axis=-2, keepdims=True)
    mu_t = t.mean(axis=-2, keepdims=True)
    p0, t0 = p - mu_p, t - mu_t
    norm_p = np.sqrt((p0 ** 2).sum(axis=(-2, -1), keepdims=True)) + 1e-12
    norm_t = np.sqrt((t0 ** 2).sum(axis=(-2, -1), keepdims=True)) + 1e-12
    p0, t0 = p0 / norm_p, t0 / norm_t
    h = np.swapaxes(p0, -1, -2) @ t0  # -> [..., 3, 3]
    u, s, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, -1, -2)
    r = v @ np.swapaxes(u, -1, -2)
    # Proper rotations only (no reflection).
    det = np.sign(np.linalg.det(r))
    sign = np.ones_like(s)
    sign[..., -1] = det
    v = v * sign[..., None, :]
    s = s * sign
    r = v @ np.swapaxes(u, -1, -2)
    scale = s.sum(axis=-1)[..., None, None] * norm_t / norm_p
    return scale * (p - mu_p) @ np.swapaxes(r, -1, -2) + mu_t


def procrustes_mpjpe(predicted, target):
    """Procrustes-aligned MPJPE between poses [..., J, 3] (similarity transform of predicted onto
    target: rotation, uniform scale, translation); returns [...]."""
    aligned = procrustes_align(predicted, target)
    return np.linalg.norm(aligned - np.asarray(target, np.float64), axis=-1).mean(axis=-1)


def nearest(queries, gallery, k, chunk=2048):
    """Indices [Q, k] of the k nearest gallery rows (Euclidean) of every query, nearest first."""
    gallery_sq = (gallery ** 2).sum(axis=1)
    out = np.empty((len(queries), k), np.int64)
    for s in range(0, len(queries), chunk):
        q = queries[s:s + chunk]
        d = gallery_sq[None, :] - 2.0 * q @ gallery.T  # -> [q, G]; |q|² is the same for every row
        idx = np.argpartition(d, kth=min(k, d.shape[1] - 1), axis=1)[:, :k]
        order = np.take_along_axis(d, idx, axis=1).argsort(axis=1)
        out[s:s + chunk] = np.take_along_axis(idx, order, axis=1)
    return out


def hits_per_query(neighbours, is_hit_fn, ks=KS):
    """{str(k): [Q] bool}: whether each query has a hit among its first k neighbours."""
    hits = is_hit_fn(neighbours)  # [Q, kmax] bool
    cumulative = np.cumsum(hits, axis=1) > 0
    # String keys, so results read back from JSON look the same as fresh ones.
    return {str(k): cumulative[:, k - 1] for k in ks}


def hits_at_k(neighbours, is_hit_fn, ks=KS):
    """Fraction of queries with a hit among their first k neighbours, for each k."""
    return {k: float(hit.mean()) for k, hit in hits_per_query(neighbours, is_hit_fn, ks).items()}


def query_indices(num_frames, max_queries, seed):
    """Sorted query frames: all of them, or ``max_queries`` drawn without replacement."""
    if not max_queries or max_queries >= num_frames:
        return np.arange(num_frames)
    return np.sort(np.random.default_rng(seed).choice(num_frames, max_queries, replace=False))


def pair_query_hits(feats_query, feats_gallery, poses_3d, query_idx, *, threshold, ks=KS):
    """Per-query hits of one ordered camera pair: queries ``feats_query[query_idx]`` against every
    frame of ``feats_gallery`` (both [N, D] of the same N frames); ``{"exact": {k: [Q] bool},
    "pmpjpe": {k: [Q] bool}}``.

    ``exact``: a neighbour is the query's own frame; ``pmpjpe``: a neighbour's normalised 3D pose is
    within ``threshold`` P-MPJPE of the query's (``poses_3d`` [N, J, 3])."""
    nn = nearest(feats_query[query_idx], feats_gallery, max(ks))
    exact = hits_per_query(nn, lambda nb: nb == query_idx[:, None], ks)
    errors = procrustes_mpjpe(poses_3d[nn], poses_3d[query_idx][:, None])  # -> [Q, kmax]
    near = hits_per_query(nn, lambda nb: errors <= threshold, ks)
    return {"exact": exact, "pmpjpe": near}


def query_rates(per_query):
    """:func:`pair_query_hits`' per-query hits averaged over the queries: ``{crit: {k: hit}}``."""
    return {crit: {k: float(hit.mean()) for k, hit in by_k.items()}
            for crit, by_k in per_query.items()}


def pair_hits(feats_query, feats_gallery, poses_3d, query_idx, *, threshold, ks=KS):
    """Hit@k of one ordered camera pair, :func:`pair_query_hits` averaged over the queries:
    ``{"exact": {k: hit}, "pmpjpe": {k: hit}}``."""
    return query_rates(pair_query_hits(feats_query, feats_gallery, poses_3d, query_idx,
                                       threshold=threshold, ks=ks))


def cross_view_hits(features, poses_3d, *, threshold=0.1, ks=KS, max_queries=None, seed=0):
    """Hit@k of one feature averaged over every ordered camera pair (i, j), i ≠ j.

    Args:
      features: [C, N, D] per-camera features of the same N frames.
      poses_3d: [N, J, 3] normalised 3D poses of those frames.
      threshold: the P-MPJPE criterion (Pr-VIPE: 0.1 on normalised poses).
      ks: the k of Hit@k.
      max_queries: queries per pair (None or 0 = every frame), drawn with ``seed``.
    Returns:
      ``(mean, per_pair, query_idx)``: ``mean[criterion][str(k)]``, one dict per ordered pair
      ``{"query": i, "gallery": j, "exact": ..., "pmpjpe": ..., "query_hits": ...}`` (the last:
      :func:`pair_query_hits`, per query, for :func:`group_hits`) and the query frames.
    """
    query_idx = query_indices(poses_3d.shape[0], max_queries, seed)
    per_pair = []
    for i in range(len(features)):
        for j in range(len(features)):
            if i != j:
                hits = pair_query_hits(features[i], features[j], poses_3d, query_idx,
                                       threshold=threshold, ks=ks)
                per_pair.append(dict(query_rates(hits), query=i, gallery=j, query_hits=hits))
    mean = {crit: {str(k): float(np.mean([p[crit][str(k)] for p in per_pair])) for k in ks}
            for crit in CRITERIA}
    return mean, per_pair, query_idx


def group_hits(per_pair, query_groups):
    """Hit@k per group of query frames, averaged over every (camera pair, query) of the group:
    ``{group: {criterion: {str(k): hit}}}`` from :func:`cross_view_hits`' ``per_pair`` (their
    ``query_hits``) and ``query_groups`` [Q], the group of each query frame. The queries'
    weighted mean over groups is :func:`cross_view_hits`' mean."""
    query_groups = np.asarray(query_groups)
    out = {}
    for group in dict.fromkeys(query_groups.tolist()):  # first-appearance order
        rows = query_groups == group
        out[group] = {crit: {k: float(np.mean([p["query_hits"][crit][k][rows] for p in per_pair]))
                             for k in per_pair[0]["query_hits"][crit]}
                      for crit in CRITERIA}
    return out
