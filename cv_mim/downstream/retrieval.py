"""Cross-view retrieval: is the pose embedding view-invariant? (paper §4.5, Fig. 4–5; Pr-VIPE protocol)

For every ordered pair of cameras (i, j), i ≠ j, of multi-view data in the Human3.6M layout, queries are
the frames seen by camera i and the gallery is every frame seen by camera j. A query scores a hit at k
when one of its k nearest gallery neighbours (Euclidean distance) is

* ``exact``: the same frame (the same 3D pose), or
* ``pmpjpe``: any pose whose Procrustes-aligned MPJPE to the query's 3D pose is at most ``threshold``
  on normalised 3D poses (hip-centred, spine length 1 — the Pr-VIPE protocol [48], threshold 0.1).

The same is measured with the pose embedding z_p, the view embedding z_v and the raw normalised 2D
keypoints (26-d), so the table shows what the embedding adds over the input.

Without 3D (your own synchronised cameras, e.g. ``--dataset=openpose_multiview``, a folder of ``cam*/``
OpenPose folders): :func:`run_synchronised` counts a hit when a neighbour is the same frame ± ``tolerance``
frames of another camera; frames where the person is not detected are neither queries nor gallery.
"""

import dataclasses
import logging
import math
import os

import numpy as np

from cv_mim import checks
from cv_mim import plotting
from cv_mim import records
from cv_mim.data import registry
from cv_mim.keypoints import normalization
from cv_mim.keypoints import profiles
from cv_mim.serving import embedder as embedder_lib

log = logging.getLogger("cv_mim.retrieval")


FEATURES = ("pose_embedding", "view_embedding", "raw_2d")


KS = (1, 5, 10)


def procrustes_mpjpe(predicted, target):
    """Procrustes-aligned MPJPE between poses [..., J, 3] (similarity transform of predicted onto
    target: rotation, uniform scale, translation); returns [...]."""
    p = np.asarray(predicted, np.float64)
    t = np.asarray(target, np.float64)
    mu_p = p.mean(axis=-2, keepdims=True)
    mu_t = t.mean(axis=-2, keepdims=True)
    p0, t0 = p - mu_p, t - mu_t
    norm_p = np.sqrt((p0 ** 2).sum(axis=(-2, -1), keepdims=True)) + 1e-12
    norm_t = np.sqrt((t0 ** 2).sum(axis=(-2, -1), keepdims=True)) + 1e-12
    p0, t0 = p0 / norm_p, t0 / norm_t
    h = np.swapaxes(p0, -1, -2) @ t0
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
    aligned = scale * (p - mu_p) @ np.swapaxes(r, -1, -2) + mu_t
    return np.linalg.norm(aligned - t, axis=-1).mean(axis=-1)


def _nearest(queries, gallery, k, chunk=2048):
    """Indices [Q, k] of the k nearest gallery rows (Euclidean) of every query."""
    gallery_sq = (gallery ** 2).sum(axis=1)
    out = np.empty((len(queries), k), np.int64)
    for s in range(0, len(queries), chunk):
        q = queries[s:s + chunk]
        d = gallery_sq[None, :] - 2.0 * q @ gallery.T
        idx = np.argpartition(d, kth=min(k, d.shape[1] - 1), axis=1)[:, :k]
        order = np.take_along_axis(d, idx, axis=1).argsort(axis=1)
        out[s:s + chunk] = np.take_along_axis(idx, order, axis=1)
    return out


def hits_at_k(neighbours, is_hit_fn, ks=KS):
    """Fraction of queries with a hit among their first k neighbours, for each k."""
    hits = is_hit_fn(neighbours)  # [Q, kmax] bool
    cumulative = np.cumsum(hits, axis=1) > 0
    # String keys, so results read back from JSON look the same as fresh ones.
    return {str(k): float(cumulative[:, k - 1].mean()) for k in ks}


@dataclasses.dataclass
class RetrievalData:
    """Per-camera features of the same N frames: ``features[name]`` is [C, N, D]; ``poses_3d`` the
    normalised canonical 3D poses [N, 13, 3]; ``keypoints_2d`` [C, N, 13, 2] normalised 2D."""

    features: dict
    poses_3d: np.ndarray
    keypoints_2d: np.ndarray
    camera_ids: list


def evaluate(data: RetrievalData, *, threshold=0.1, ks=KS, max_queries=None, seed=0):
    """Hit@k per feature, averaged over all ordered camera pairs. Returns a results dict."""
    kmax = max(ks)
    num_cameras = len(data.camera_ids)
    n = data.poses_3d.shape[0]
    rng = np.random.default_rng(seed)
    query_idx = np.arange(n) if not max_queries or max_queries >= n else np.sort(
        rng.choice(n, max_queries, replace=False))
    results = {"threshold": threshold, "num_frames": int(n),
               "num_queries_per_pair": int(len(query_idx)), "camera_ids": data.camera_ids,
               "features": {}}
    for name, feats in data.features.items():
        per_pair = []
        for i in range(num_cameras):
            for j in range(num_cameras):
                if i == j:
                    continue
                nn = _nearest(feats[i][query_idx], feats[j], kmax)
                exact = hits_at_k(nn, lambda nb: nb == query_idx[:, None], ks)
                errors = procrustes_mpjpe(data.poses_3d[nn], data.poses_3d[query_idx][:, None])
                near = hits_at_k(nn, lambda nb, e=errors: e <= threshold, ks)
                per_pair.append({"query_camera": data.camera_ids[i],
                                 "gallery_camera": data.camera_ids[j],
                                 "exact": exact, "pmpjpe": near})
        summary = {}
        for crit in ("exact", "pmpjpe"):
            summary[crit] = {str(k): float(np.mean([p[crit][str(k)] for p in per_pair]))
                             for k in ks}
        results["features"][name] = {"mean": summary, "per_pair": per_pair}
    return results


def markdown_table(results, ks=KS):
    lines = ["| feature | " + " | ".join(f"Hit@{k} (same frame)" for k in ks) + " | "
             + " | ".join(f"Hit@{k} (P-MPJPE ≤ {results['threshold']:g})" for k in ks) + " |",
             "|---|" + "---|" * (2 * len(ks))]
    for name, res in results["features"].items():
        m = res["mean"]
        lines.append(f"| {name} | " + " | ".join(f"{100 * m['exact'][str(k)]:.1f}" for k in ks)
                     + " | " + " | ".join(f"{100 * m['pmpjpe'][str(k)]:.1f}" for k in ks) + " |")
    return "\n".join(lines)


def draw_panels(path, data: RetrievalData, feature, *, num_queries=4, top=5, seed=0,
                query_camera=0, gallery_camera=1):
    """PNG of query skeletons (left) and their top-``top`` neighbours (paper Fig. 4/5 style)."""
    plt = plotting.pyplot()

    rng = np.random.default_rng(seed)
    n = data.poses_3d.shape[0]
    queries = rng.choice(n, size=min(num_queries, n), replace=False)
    feats = data.features[feature]
    nn = _nearest(feats[query_camera][queries], feats[gallery_camera], top)
    shown = np.concatenate([data.keypoints_2d[query_camera, queries].reshape(-1, 2),
                            data.keypoints_2d[gallery_camera, nn.reshape(-1)].reshape(-1, 2)])
    extent = 1.1 * float(np.abs(shown).max()) + 1e-6
    fig, axes = plt.subplots(len(queries), top + 1, figsize=(1.6 * (top + 1), 1.9 * len(queries)),
                             squeeze=False)
    for r, q in enumerate(queries):
        poses = [data.keypoints_2d[query_camera, q]] + [data.keypoints_2d[gallery_camera, g]
                                                        for g in nn[r]]
        titles = [f"query f{q}"] + [f"{'✓' if g == q else ''}f{g}" for g in nn[r]]
        for c, (pose, title) in enumerate(zip(poses, titles)):
            ax = axes[r, c]
            for a, b in profiles.BONES:
                left = any(profiles.JOINT_NAMES[j].startswith("left") for j in (a, b))
                ax.plot([pose[a, 0], pose[b, 0]], [pose[a, 1], pose[b, 1]],
                        color="tab:red" if left else "tab:blue", lw=1.5)
            ax.set_xlim(-extent, extent)
            ax.set_ylim(extent, -extent)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=7)
            if c == 0:
                for spine in ax.spines.values():
                    spine.set_color("black")
                    spine.set_linewidth(2)
    fig.suptitle(f"{feature}: query (camera {data.camera_ids[query_camera]}) and top-{top} "
                 f"neighbours (camera {data.camera_ids[gallery_camera]}); red = left limbs",
                 fontsize=8)
    fig.tight_layout()
    plotting.save_figure(fig, path)


def build_data(poses, embedder, *, frame_stride=1):
    """Embeds every camera's 2D of a :class:`cv_mim.data.h36m.MultiViewPoses` with an Embedder."""
    idx = np.arange(0, len(poses), max(1, frame_stride))
    kp2d = poses.keypoints_2d[idx]  # [N, C, 13, 2]
    features = {name: [] for name in FEATURES}
    normalized = []
    for c in range(poses.num_cameras):
        views = kp2d[:, c]
        mask = np.isfinite(views).all(axis=-1).astype(np.float32)
        out = embedder(views, mask, name=f"camera {poses.camera_ids[c]} keypoints")
        features["pose_embedding"].append(out["pose_embedding"])
        features["view_embedding"].append(out["view_embedding"])
        features["raw_2d"].append(out["normalized_keypoints"].reshape(len(idx), -1))
        normalized.append(out["normalized_keypoints"])
    features = {k: np.stack(v) for k, v in features.items()}
    poses_3d = normalization.normalized_3d_canonical(poses.keypoints_3d[idx])
    return RetrievalData(features=features, poses_3d=poses_3d, keypoints_2d=np.stack(normalized),
                         camera_ids=[str(c) for c in poses.camera_ids])


def check_arguments(*, threshold, frame_stride, max_queries):
    """ValueError naming the flag for a bad threshold, frame_stride or max_queries."""
    try:
        threshold_ok = math.isfinite(float(threshold)) and float(threshold) > 0
    except (TypeError, ValueError):
        threshold_ok = False
    if not threshold_ok:
        raise ValueError(f"--threshold must be a finite number > 0 (P-MPJPE on normalised poses; "
                         f"Pr-VIPE: 0.1), got {threshold!r}")
    checks.positive_int(frame_stride, "--frame_stride")
    if max_queries is not None and (int(max_queries) != max_queries or max_queries < 0):
        raise ValueError(f"--max_queries must be an integer >= 0 (0 = all), got {max_queries!r}")


def check_poses_3d(poses_3d, path):
    """ValueError naming ``path`` when 3D poses are degenerate (all joints at one point).

    Such frames normalise to the same (undefined) pose, so every query would "hit" every gallery
    frame under the P-MPJPE criterion (all-zero 3D gave 100% hits)."""
    poses = np.asarray(poses_3d, np.float64)
    spread = (poses.max(axis=-2) - poses.min(axis=-2)).max(axis=-1)  # [N]
    flat = spread <= 1e-9
    if flat.any():
        raise ValueError(f"{path}: {int(flat.sum())} of {len(flat)} 3D poses have every joint at one "
                         f"point (first: frame {int(np.flatnonzero(flat)[0])}); retrieval needs real "
                         "3D poses")


def run(*, export_dir, output_dir, data_dir=None, data_3d=None, data_2d=None, cameras=None,
        subjects=("S9", "S11"), unit="auto", threshold=0.1, frame_stride=1, max_queries=2000,
        seed=0, draw=True, trust_export=False):
    """Runs the retrieval evaluation; writes ``retrieval_results.json``, ``retrieval.md`` and PNGs.

    Raises:
      ValueError: naming the flag, for a threshold that is not a finite number > 0, a frame_stride
        < 1, a negative max_queries; naming the file, for degenerate 3D poses.
    """
    from cv_mim.data import h36m  # pylint: disable=import-outside-toplevel

    check_arguments(threshold=threshold, frame_stride=frame_stride, max_queries=max_queries)
    path_3d, path_2d, path_cameras = h36m.resolve_paths(data_dir, data_3d, data_2d, cameras)
    poses = h36m.load_multiview(path_3d, path_cameras, path_2d, subjects=tuple(subjects),
                                unit=unit)
    if poses.num_cameras < 2:
        raise ValueError(f"cross-view retrieval needs at least 2 cameras, got {poses.num_cameras}")
    check_poses_3d(poses.keypoints_3d, path_3d)
    embedder = embedder_lib.Embedder(export_dir, trust_export=trust_export)
    data = build_data(poses, embedder, frame_stride=frame_stride)
    results = evaluate(data, threshold=threshold, max_queries=max_queries, seed=seed)
    results.update(export_dir=export_dir, subjects=list(subjects), frame_stride=frame_stride,
                   algorithm=embedder.metadata.get("algorithm"))
    records.write_results(
        output_dir, results, "retrieval_results.json", markdown_table(results), "retrieval.md",
        heading=f"Cross-view retrieval ({results['algorithm']}, subjects {', '.join(subjects)})")
    if draw:
        for feature in ("pose_embedding", "view_embedding"):
            draw_panels(os.path.join(output_dir, f"retrieval_{feature}.png"), data, feature,
                        seed=seed)
    return results


def synchronised_hits(features, present, camera_ids, *, tolerance=0, ks=KS):
    """Cross-camera Hit@k on synchronised views without 3D: frame t of camera i finds a hit at k when
    one of its k nearest frames of camera j (i ≠ j) is frame t' with |t' − t| <= ``tolerance``.

    Args:
      features: {name: [C, N, D]} per-camera features of the same N time steps.
      present: [C, N] bool; frames where the person was not detected are neither queries nor gallery.
      camera_ids: C names.
    Returns:
      {"tolerance", "num_frames", "camera_ids", "features": {name: {"mean": {k: hit}, "per_pair"}}}.
    """
    kmax = max(ks)
    results = {"tolerance": int(tolerance), "num_frames": int(present.shape[1]),
               "camera_ids": list(camera_ids), "features": {}}
    for name, feats in features.items():
        per_pair = []
        for i, j in ((i, j) for i in range(len(camera_ids)) for j in range(len(camera_ids))):
            queries, gallery = np.flatnonzero(present[i]), np.flatnonzero(present[j])
            if i == j or not len(queries) or len(gallery) < kmax:
                continue
            nn = gallery[_nearest(feats[i][queries], feats[j][gallery], kmax)]
            hits = hits_at_k(nn, lambda nb, q=queries: np.abs(nb - q[:, None]) <= tolerance, ks)
            per_pair.append({"query_camera": camera_ids[i], "gallery_camera": camera_ids[j],
                             "num_queries": int(len(queries)), "hits": hits})
        if not per_pair:
            raise ValueError(f"retrieval needs at least 2 cameras with {kmax} or more frames where "
                             "the person is detected")
        results["features"][name] = {
            "mean": {str(k): float(np.mean([p["hits"][str(k)] for p in per_pair])) for k in ks},
            "per_pair": per_pair}
    return results


def synchronised_table(results, ks=KS):
    tol = results["tolerance"]
    lines = ["| feature | " + " | ".join(f"Hit@{k} (frame ± {tol})" for k in ks) + " |",
             "|---|" + "---|" * len(ks)]
    for name, res in results["features"].items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * res['mean'][str(k)]:.1f}" for k in ks)
                     + " |")
    return "\n".join(lines)


def run_synchronised(*, export_dir, output_dir, dataset, path, tolerance=0, trust_export=False,
                     **loader_kwargs):
    """Retrieval on synchronised camera views from a reader (``openpose_multiview``: one ``cam*/``
    folder per camera; any other reader whose clips are the cameras of one take, equal lengths)."""
    clips = registry.load_clips(dataset, path, **loader_kwargs)
    lengths = {len(k) for k in clips.keypoints}
    if len(clips.keypoints) < 2 or len(lengths) != 1:
        raise ValueError(f"{dataset} at {path}: synchronised retrieval needs >= 2 clips (cameras) "
                         f"of one length, got {len(clips.keypoints)} clips of lengths "
                         f"{sorted(lengths)}")
    embedder = embedder_lib.Embedder(export_dir, trust_export=trust_export)
    features = {name: [] for name in FEATURES}
    for kp, mask, cam in zip(clips.keypoints, clips.masks, clips.clip_ids):
        out = embedder(np.where(mask[..., None] > 0, kp, np.nan), mask, name=f"camera {cam}")
        features["pose_embedding"].append(out["pose_embedding"])
        features["view_embedding"].append(out["view_embedding"])
        features["raw_2d"].append(out["normalized_keypoints"].reshape(len(kp), -1))
    present = np.stack([(m > 0).any(-1) for m in clips.masks])
    results = synchronised_hits({k: np.stack(v) for k, v in features.items()}, present,
                                [str(c) for c in clips.clip_ids], tolerance=tolerance)
    results.update(export_dir=export_dir, dataset=dataset, source=records.absolute(path),
                   algorithm=embedder.metadata.get("algorithm"), loader_info=clips.info)
    records.write_results(
        output_dir, results, "retrieval_results.json", synchronised_table(results),
        "retrieval.md", heading=f"Cross-camera retrieval ({results['algorithm']}, {dataset})")
    return results
