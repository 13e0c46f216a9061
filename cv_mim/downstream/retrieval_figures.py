"""Figures of the retrieval evaluation: nearest-neighbour panels and a PCA map of the embeddings.

Drawing only: what is a hit, which neighbours and which clusters are decided by the caller
(:mod:`cv_mim.downstream.retrieval`) or by the small numeric helpers here (:func:`pca_2d`,
:func:`pose_clusters`), which are tested on their own.
"""

import warnings

import numpy as np
from scipy.cluster import vq

from cv_mim import plotting
from cv_mim.keypoints import profiles

HIT_COLOR, MISS_COLOR = "tab:green", "tab:red"
_LEFT_HIP, _RIGHT_HIP = profiles.JOINT_NAMES.index("left_hip"), profiles.JOINT_NAMES.index("right_hip")
_IS_LEFT = [any(profiles.JOINT_NAMES[j].startswith("left") for j in bone) for bone in profiles.BONES]


def _skeleton(ax, pose, *, color=None, lw=1.5, alpha=1.0, offset=(0.0, 0.0)):
    """Bones of one [13, 2] pose, as one artist (drawing is the slow part of these figures); left
    limbs red and right limbs blue unless one ``color``."""
    from matplotlib import collections  # pylint: disable=import-outside-toplevel
    p = np.asarray(pose, np.float64) + np.asarray(offset)
    segments = p[np.asarray(profiles.BONES)]  # -> [B, 2, 2]
    colors = color or ["tab:red" if left else "tab:blue" for left in _IS_LEFT]
    ax.add_collection(collections.LineCollection(segments, colors=colors, linewidths=lw,
                                                 alpha=alpha), autolim=False)


def facing_rotation(pose_3d):
    """(3, 3) rotation about the vertical (z) axis that turns the hips of ``pose_3d`` [13, 3] onto
    the x axis, so every 3D cell shows the query from its front and its side."""
    hips = pose_3d[_LEFT_HIP] - pose_3d[_RIGHT_HIP]
    a = -np.arctan2(hips[1], hips[0]) if np.hypot(hips[0], hips[1]) > 1e-9 else 0.0
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def front_and_side(pose_3d, rotation):
    """Two [13, 2] projections (x right, y down in the figure) of a z-up pose: front (x, z) and
    side (y, z), hip-centred, after ``rotation``."""
    p = (pose_3d - pose_3d[[_LEFT_HIP, _RIGHT_HIP]].mean(axis=0)) @ rotation.T
    return np.stack([p[:, 0], -p[:, 2]], -1), np.stack([p[:, 1], -p[:, 2]], -1)


def _extent(*arrays):
    """Half-width that holds every finite coordinate of ``arrays`` (1 when there is none)."""
    finite = np.abs(np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays]))
    finite = finite[np.isfinite(finite)]
    return 1.1 * float(finite.max()) + 1e-6 if finite.size else 1.0


# Panel geometry in data units of the single axes (y down): a 2D cell is 1 × 1, the 3D cell below it
# 1 × _H3 (front and side view side by side), each under a line of title.
_GAP, _TITLE, _H3 = 0.1, 0.14, 0.7
_ROW = _TITLE + 1.0 + _TITLE + _H3 + _GAP


def _cell(ax, x0, y0, height, color, title):
    """A framed cell with its title above; returns the cell's centre."""
    from matplotlib import patches  # pylint: disable=import-outside-toplevel
    ax.add_patch(patches.Rectangle((x0, y0), 1.0, height, fill=False, edgecolor=color,
                                   linewidth=2.2))
    ax.text(x0 + 0.5, y0 - 0.03, title, ha="center", va="bottom", fontsize=6.5,
            color="black" if color == "black" else color)
    return x0 + 0.5, y0 + height / 2


def _draw_3d(ax, centre, poses, scale, **style):
    """Front (left half) and side (right half) projections of one pose around a 3D cell's centre."""
    for pose, dx in zip(poses, (-0.25, 0.25)):
        _skeleton(ax, scale * pose, offset=(centre[0] + dx, centre[1]), **style)


def draw_neighbour_panels(path, *, query_2d, neighbour_2d, query_3d, neighbour_3d, query_ids,
                          neighbour_ids, errors, hits, threshold, title):
    """PNG: per query, a row of 2D inputs (query, then its neighbours from the other camera) and below
    it the 3D poses (front | side; each neighbour Procrustes-aligned to the query, drawn over the
    query's 3D in grey). Hits are framed green, misses red, with their P-MPJPE.

    Args:
      query_2d: [Q, 13, 2]; neighbour_2d: [Q, K, 13, 2] normalised 2D.
      query_3d: [Q, 13, 3]; neighbour_3d: [Q, K, 13, 3] (aligned to their query) normalised 3D.
      query_ids, neighbour_ids: [Q], [Q, K] frame numbers; errors, hits: [Q, K] P-MPJPE and the
        caller's hit decision.
    """
    plt = plotting.pyplot()
    num_q, top = np.asarray(neighbour_ids).shape
    scale_2d = 0.45 / _extent(query_2d, neighbour_2d)
    width, height = (top + 1) * (1 + _GAP), num_q * _ROW
    # One axes for the whole figure: dozens of subplots cost far more to build than the drawing.
    fig = plt.figure(figsize=(1.55 * width, 1.55 * height + 0.45))
    ax = fig.add_axes((0.0, 0.0, 1.0, height / (height + 0.45 / 1.55)))
    for r in range(num_q):
        rot = facing_rotation(query_3d[r])
        q_views = front_and_side(query_3d[r], rot)
        n_views = [front_and_side(p, rot) for p in neighbour_3d[r]]
        scale_3d = min(0.225, 0.45 * _H3) / _extent(*q_views, *n_views)
        y2 = r * _ROW + _TITLE
        y3 = y2 + 1.0 + _TITLE
        for c in range(top + 1):
            x0 = c * (1 + _GAP)
            if c == 0:
                color, top_title = "black", f"query f{query_ids[r]}"
                bottom_title, pose_2d = "its 3D: front | side", query_2d[r]
            else:
                k = c - 1
                hit, g = bool(hits[r][k]), int(neighbour_ids[r][k])
                color = HIT_COLOR if hit else MISS_COLOR
                same = " (same frame)" if g == int(query_ids[r]) else ""
                top_title = f"{'hit' if hit else 'miss'} f{g}{same}"
                bottom_title, pose_2d = f"P-MPJPE {float(errors[r][k]):.3f}", neighbour_2d[r][k]
            centre = _cell(ax, x0, y2, 1.0, color, top_title)
            _skeleton(ax, scale_2d * np.asarray(pose_2d), offset=centre)
            centre = _cell(ax, x0, y3, _H3, color, bottom_title)
            if c:
                _draw_3d(ax, centre, q_views, scale_3d, color="0.75", lw=2.5)
            _draw_3d(ax, centre, n_views[c - 1] if c else q_views, scale_3d)
    ax.set_xlim(-0.02, width - _GAP + 0.02)
    ax.set_ylim(height, 0.0)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.suptitle(f"{title}\ngreen = hit (P-MPJPE ≤ {threshold:g} to the query's 3D), red = miss; "
                 "2D: red = left limbs; 3D: grey = the query", fontsize=8, y=0.995)
    plotting.save_figure(fig, path, dpi=100)


def pca_2d(x):
    """[N, 2] projection of the rows of ``x`` [N, D] on their first two principal components, and the
    fraction of the variance each explains (zeros for constant data)."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    comps = np.zeros((2, x.shape[1]))
    comps[:min(2, len(vt))] = vt[:2]
    total = float((s ** 2).sum())
    ratio = np.zeros(2)
    ratio[:min(2, len(s))] = (s[:2] ** 2) / total if total > 0 else 0.0
    return centred @ comps.T, ratio


def pose_clusters(poses_3d, num_clusters, *, seed=0):
    """K-means labels [N] of 3D poses [N, J, 3] (scipy ``kmeans2``, k-means++ start from ``seed``); fewer
    clusters when there are fewer distinct poses."""
    x = np.asarray(poses_3d, np.float64).reshape(len(poses_3d), -1)
    k = min(int(num_clusters), len(np.unique(x.round(9), axis=0)))
    if k <= 1:
        return np.zeros(len(x), np.int64)
    with warnings.catch_warnings():  # an emptied cluster is fine for a picture
        warnings.simplefilter("ignore")
        _, labels = vq.kmeans2(x, k, minit="++", seed=np.random.default_rng(seed))
    return labels.astype(np.int64)


def draw_embedding_map(path, features, poses_3d, camera_ids, *, num_clusters=6, seed=0,
                       max_points=3000, probe=None):
    """PNG: each feature's PCA map of every (frame, camera) point, coloured by the k-means cluster of
    the frame's 3D pose (left) and by the camera that saw it (right). A view-invariant z_p mixes the
    cameras and separates the clusters; raw 2D and z_v show the opposite.

    Args:
      features: {name: [C, N, D]} per-camera features of the same N frames.
      poses_3d: [N, J, 3] the frames' 3D poses (the clusters).
      camera_ids: C camera names.
      probe: optional {name: {"accuracy", "chance"}} camera-probe results, quoted in the titles.
    """
    plt = plotting.pyplot()
    clusters = pose_clusters(poses_3d, num_clusters, seed=seed)
    c, n = next(iter(features.values())).shape[:2]
    rng = np.random.default_rng(seed)
    cam = np.repeat(np.arange(c), n)
    frame = np.tile(np.arange(n), c)
    shown = np.sort(rng.choice(c * n, max_points, replace=False)) if c * n > max_points else \
        np.arange(c * n)
    fig, axes = plt.subplots(len(features), 2, figsize=(8, 3.4 * len(features)), squeeze=False)
    for row, (name, feats) in enumerate(features.items()):
        x = np.asarray(feats, np.float64).reshape(c * n, -1)[shown]
        ok = np.isfinite(x).all(axis=1)
        xy, ratio = pca_2d(x[ok]) if ok.any() else (np.zeros((0, 2)), np.zeros(2))
        for col, (labels, what, cmap) in enumerate(((clusters[frame[shown]][ok], "3D pose cluster",
                                                     "tab10"),
                                                    (cam[shown][ok], "camera", "Dark2"))):
            ax = axes[row, col]
            sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap=cmap, s=4, alpha=0.6,
                            vmin=0, vmax=max(9 if col == 0 else 7, 1), linewidths=0)
            extra = ""
            if col == 1 and probe and name in probe:
                extra = (f"\ncamera probe {100 * probe[name]['accuracy']:.1f}% "
                         f"(chance {100 * probe[name]['chance']:.1f}%)")
            ax.set_title(f"{name}: coloured by {what}{extra}", fontsize=8)
            ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}%)", fontsize=7)
            ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}%)", fontsize=7)
            ax.tick_params(labelsize=6)
            if col == 1 and len(xy):
                handles = [plt.Line2D([], [], ls="", marker="o", color=sc.cmap(sc.norm(i)))
                           for i in range(c)]
                ax.legend(handles, list(camera_ids), fontsize=6, markerscale=0.8, loc="best")
    fig.suptitle("PCA of each feature; a view-invariant pose embedding mixes the cameras and keeps "
                 "the pose clusters apart", fontsize=9)
    fig.tight_layout()
    plotting.save_figure(fig, path, dpi=100)
