"""Cross-view retrieval: is the pose embedding view-invariant? (paper §4.5, Fig. 4–5; Pr-VIPE protocol)

For every ordered pair of cameras (i, j), i ≠ j, of multi-view data in the Human3.6M layout, queries are
the frames seen by camera i and the gallery is every frame seen by camera j. A query scores a hit at k
when one of its k nearest gallery neighbours (Euclidean distance) is

* ``exact``: the same frame (the same 3D pose), or
* ``pmpjpe``: any pose whose Procrustes-aligned MPJPE to the query's 3D pose is at most ``threshold``
  on normalised 3D poses (hip-centred, spine length 1 — the Pr-VIPE protocol [48], threshold 0.1).

The same is measured with the pose embedding z_p, the view embedding z_v and the raw normalised 2D
keypoints (26-d), so the table shows what the embedding adds over the input.

Two more views of the same question: Hit@1 per camera pair next to the angle between the two cameras'
optical axes (from the cameras' R), sorted by angle, and each feature's view predictability — how
often a linear probe names the camera that saw a held-out frame (:mod:`cv_mim.keypoints.probe`); a
view-invariant z_p scores chance, the number to drive down. With ``draw``, neighbour panels (hits and
misses, 2D and 3D) and a PCA map of the features coloured by pose cluster and by camera
(:mod:`cv_mim.downstream.retrieval_figures`).

Without 3D (your own synchronised cameras, e.g. ``--dataset=openpose_multiview``, a folder of ``cam*/``
OpenPose folders): :func:`run_synchronised` counts a hit when a neighbour is the same frame ± ``tolerance``
frames of another camera; frames where the person is not detected are neither queries nor gallery
(nor probed).
"""

import dataclasses
import logging
import math
import os
import re
from typing import Optional

import numpy as np

from cv_mim import checks
from cv_mim import records
from cv_mim.data import registry
from cv_mim.downstream import retrieval_figures
from cv_mim.keypoints import cameras as cameras_mod
from cv_mim.keypoints import normalization
from cv_mim.keypoints import probe
from cv_mim.keypoints import retrieval_metrics
from cv_mim.serving import embedder as embedder_lib

log = logging.getLogger("cv_mim.retrieval")


FEATURES = ("pose_embedding", "view_embedding", "raw_2d")


KS = retrieval_metrics.KS
# The numpy core (one definition, shared with the validation of cv_mim.training).
procrustes_align = retrieval_metrics.procrustes_align
procrustes_mpjpe = retrieval_metrics.procrustes_mpjpe
hits_at_k = retrieval_metrics.hits_at_k


# Bumped when run() writes new outputs (2: camera probe, per-pair angles, embedding map), so a demo
# workdir made before redoes its retrieval stage instead of reporting without them.
OUTPUTS_VERSION = 2


@dataclasses.dataclass
class RetrievalData:
    """Per-camera features of the same N frames: ``features[name]`` is [C, N, D]; ``poses_3d`` the
    normalised canonical 3D poses [N, 13, 3]; ``keypoints_2d`` [C, N, 13, 2] normalised 2D.

    ``sequences`` [N] names each frame's (subject, action) sequence (consecutive rows of a sequence
    are consecutive frames) and ``camera_angles`` [C, C] the angles in degrees between the cameras'
    optical axes; either may be None when unknown."""

    features: dict
    poses_3d: np.ndarray
    keypoints_2d: np.ndarray
    camera_ids: list
    sequences: Optional[np.ndarray] = None
    camera_angles: Optional[np.ndarray] = None


def evaluate(data: RetrievalData, *, threshold=0.1, ks=KS, max_queries=None, seed=0):
    """Hit@k per feature, averaged over all ordered camera pairs, and per action when the
    sequences are known (:func:`action_names`). Returns a results dict."""
    n = data.poses_3d.shape[0]
    num_queries = len(retrieval_metrics.query_indices(n, max_queries, seed))
    results = {"threshold": threshold, "num_frames": int(n),
               "num_queries_per_pair": int(num_queries), "camera_ids": data.camera_ids,
               "features": {}}
    for name, feats in data.features.items():
        mean, per_pair, query_idx = retrieval_metrics.cross_view_hits(
            feats, data.poses_3d, threshold=threshold, ks=ks, max_queries=max_queries, seed=seed)
        results["features"][name] = {"mean": mean}
        if data.sequences is not None:  # per action, from the same per-query hits
            results["features"][name]["per_action"] = retrieval_metrics.group_hits(
                per_pair, action_names(data.sequences)[query_idx])
        per_pair = [{"query_camera": data.camera_ids[p["query"]],
                     "gallery_camera": data.camera_ids[p["gallery"]],
                     "exact": p["exact"], "pmpjpe": p["pmpjpe"],
                     **({"axis_angle_deg": float(data.camera_angles[p["query"], p["gallery"]])}
                        if data.camera_angles is not None else {})} for p in per_pair]
        results["features"][name]["per_pair"] = per_pair
    return results


def action_names(sequences):
    """[N] action of each frame: its "subject/action" sequence name without the subject and the take
    number ("S11/Directions 1" -> "Directions"; Human3.6M's takes of one action are "X", "X 1", "X 2")."""
    return np.array([re.sub(r"\s+\d+$", "", str(s).split("/", 1)[-1]) for s in sequences])


def per_action_view_predictability(features, sequences, *, seed=0):
    """{action: :func:`view_predictability` of that action's frames}: the number to drive down, per
    action (an action too short to hold out two blocks of frames gives None, as there)."""
    actions = action_names(sequences)
    return {action: view_predictability({k: v[:, actions == action] for k, v in features.items()},
                                        np.asarray(sequences)[actions == action], seed=seed)
            for action in dict.fromkeys(actions.tolist())}


def action_table(results, threshold):
    """Per action: frames, Hit@1 of every feature (P-MPJPE and same frame) and z_p's camera probe."""
    feats = results["features"]
    names = list(feats)
    actions = list(next(iter(feats.values()))["per_action"])
    probes = results.get("per_action_view_probe", {})
    counts = results.get("action_frames", {})
    lines = ["| action | frames | " + " | ".join(f"{n} Hit@1 (P-MPJPE ≤ {threshold:g} / same frame, %)"
                                                 for n in names)
             + " | pose_embedding camera probe (%, lower is better) |",
             "|---|---|" + "---|" * (len(names) + 1)]
    for action in actions:
        cells = [f"{100 * feats[n]['per_action'][action]['pmpjpe']['1']:.1f} / "
                 f"{100 * feats[n]['per_action'][action]['exact']['1']:.1f}" for n in names]
        acc = probes.get(action, {}).get("pose_embedding", {}).get("accuracy")
        lines.append(f"| {action} | {counts.get(action, '')} | " + " | ".join(cells)
                     + f" | {'–' if acc is None else f'{100 * acc:.1f}'} |")
    return "\n".join(lines)


def markdown_table(results, ks=KS):
    """The Hit@k table, then (when present) the camera-probe and per-camera-pair tables."""
    lines = ["| feature | " + " | ".join(f"Hit@{k} (same frame)" for k in ks) + " | "
             + " | ".join(f"Hit@{k} (P-MPJPE ≤ {results['threshold']:g})" for k in ks) + " |",
             "|---|" + "---|" * (2 * len(ks))]
    for name, res in results["features"].items():
        m = res["mean"]
        lines.append(f"| {name} | " + " | ".join(f"{100 * m['exact'][str(k)]:.1f}" for k in ks)
                     + " | " + " | ".join(f"{100 * m['pmpjpe'][str(k)]:.1f}" for k in ks) + " |")
    if results.get("view_probe"):
        lines += ["", probe_table(results["view_probe"])]
    if results.get("camera_pairs"):
        lines += ["", pair_table(results["camera_pairs"], results["threshold"])]
    if all("per_action" in res for res in results["features"].values()):
        lines += ["", "Per action (queries of that action against every frame of the other camera; "
                  "the camera probe on that action's frames alone):", "",
                  action_table(results, results["threshold"])]
    return "\n".join(lines)


def view_predictability(features, sequences=None, *, seed=0, block=probe.FRAME_BLOCK):
    """Camera identity predicted from one frame's feature by a linear probe, per feature.

    Args:
      features: {name: [C, N, D]} per-camera features of the same N frames.
      sequences: [N] sequence of each frame (consecutive rows = consecutive frames); blocks of
        ``block`` frames of a sequence are held out together. None = one sequence.
    Returns:
      {name: :func:`cv_mim.keypoints.probe.view_probe` result}: accuracy and chance (1 / C). For z_p
      this is the number to drive down (a view-invariant z_p scores chance). A take too short to
      hold out two blocks gives accuracy None and the reason under "skipped".
    """
    out = {}
    for name, feats in features.items():
        try:
            out[name] = probe.sequence_camera_probe(feats, sequences, block=block, seed=seed)
        except ValueError as error:  # too short a take to hold frames out: no number, not a crash
            log.warning("camera probe of %s skipped: %s", name, error)
            out[name] = {"accuracy": None, "chance": None, "skipped": str(error)}
    return out


def probe_table(view_probe):
    lines = ["| feature | camera predicted from one frame (linear probe, held-out frames, %) "
             "| chance (%) |", "|---|---|---|"]
    for name, res in view_probe.items():
        if res["accuracy"] is None:
            lines.append(f"| {name} | – ({res['skipped']}) | – |")
            continue
        lines.append(f"| {name} | {100 * res['accuracy']:.1f} | {100 * res['chance']:.1f} |")
    lines.append("")
    lines.append("A view-invariant pose_embedding scores chance here; view_embedding and raw_2d are "
                 "expected to score well above it.")
    return "\n".join(lines)


def camera_pairs(results, key="pmpjpe"):
    """Hit@1 per unordered camera pair (mean of both directions) with the angle between the two
    cameras' optical axes, sorted by angle; [] when the angles are unknown."""
    pairs = {}
    for name, res in results["features"].items():
        for p in res["per_pair"]:
            if "axis_angle_deg" not in p:
                return []
            entry = pairs.setdefault(tuple(sorted((p["query_camera"], p["gallery_camera"]))),
                                     {"angle": p["axis_angle_deg"], "hits": {}})
            entry["hits"].setdefault(name, []).append(p[key]["1"])
    rows = [{"cameras": list(cams), "axis_angle_deg": float(e["angle"]),
             "hit1": {name: float(np.mean(v)) for name, v in e["hits"].items()}}
            for cams, e in pairs.items()]
    return sorted(rows, key=lambda r: r["axis_angle_deg"])


def pair_table(rows, threshold):
    names = list(rows[0]["hit1"]) if rows else []
    lines = ["| camera pair | angle between optical axes (°) | "
             + " | ".join(f"{n} Hit@1 (P-MPJPE ≤ {threshold:g}, %)" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for r in rows:
        lines.append(f"| {r['cameras'][0]} – {r['cameras'][1]} | {r['axis_angle_deg']:.0f} | "
                     + " | ".join(f"{100 * r['hit1'][n]:.1f}" for n in names) + " |")
    return "\n".join(lines)


def panel_neighbours(data: RetrievalData, feature, queries, *, query_camera, gallery_camera, top,
                     threshold):
    """The ``top`` nearest neighbours (gallery camera) of each query frame, their P-MPJPE to the
    query's 3D pose and whether each is a hit by the evaluation's criterion (P-MPJPE ≤ threshold).

    Returns (neighbours [Q, K], errors [Q, K], hits [Q, K] bool)."""
    feats = data.features[feature]
    nn = retrieval_metrics.nearest(feats[query_camera][queries], feats[gallery_camera],
                  min(top, feats.shape[1]))
    errors = procrustes_mpjpe(data.poses_3d[nn], data.poses_3d[queries][:, None])
    return nn, errors, errors <= threshold


def draw_panels(path, data: RetrievalData, feature, *, num_queries=4, top=5, seed=0,
                query_camera=0, gallery_camera=1, threshold=0.1):
    """PNG of query skeletons and their top-``top`` neighbours (paper Fig. 4/5 style), 2D inputs above
    the 3D poses, each neighbour marked hit / miss with its P-MPJPE
    (:func:`cv_mim.downstream.retrieval_figures.draw_neighbour_panels`)."""
    rng = np.random.default_rng(seed)
    n = data.poses_3d.shape[0]
    queries = np.sort(rng.choice(n, size=min(num_queries, n), replace=False))
    nn, errors, hits = panel_neighbours(data, feature, queries, query_camera=query_camera,
                                        gallery_camera=gallery_camera, top=top,
                                        threshold=threshold)
    retrieval_figures.draw_neighbour_panels(
        path, query_2d=data.keypoints_2d[query_camera, queries],
        neighbour_2d=data.keypoints_2d[gallery_camera][nn], query_3d=data.poses_3d[queries],
        neighbour_3d=procrustes_align(data.poses_3d[nn], data.poses_3d[queries][:, None]),
        query_ids=queries, neighbour_ids=nn, errors=errors, hits=hits, threshold=threshold,
        title=f"{feature}: query (camera {data.camera_ids[query_camera]}) and top-{nn.shape[1]} "
              f"neighbours (camera {data.camera_ids[gallery_camera]})")


def panel_cameras(data: RetrievalData):
    """(query, gallery) camera indices of the panels: the pair whose optical axes are furthest apart
    (the hardest retrieval), or cameras 0 and 1 when the angles are unknown."""
    if data.camera_angles is None:
        return 0, 1
    i, j = np.unravel_index(np.argmax(data.camera_angles), data.camera_angles.shape)
    return int(i), int(j)


def draw_figures(output_dir, data: RetrievalData, *, threshold=0.1, seed=0, view_probe=None):
    """The retrieval figures: neighbour panels of z_p and z_v (between the two cameras whose axes are
    furthest apart when the angles are known, else the first two) and the PCA map of every feature.
    Returns the paths written."""
    query_camera, gallery_camera = panel_cameras(data)
    paths = []
    for feature in ("pose_embedding", "view_embedding"):
        paths.append(os.path.join(output_dir, f"retrieval_{feature}.png"))
        draw_panels(paths[-1], data, feature, seed=seed, threshold=threshold,
                    query_camera=query_camera, gallery_camera=gallery_camera)
    paths.append(os.path.join(output_dir, EMBEDDING_MAP))
    retrieval_figures.draw_embedding_map(paths[-1], data.features, data.poses_3d, data.camera_ids,
                                         seed=seed, probe=view_probe)
    return paths


EMBEDDING_MAP = "retrieval_embedding_map.png"


def build_data(poses, embedder, *, frame_stride=1, camera_angles=None):
    """Embeds every camera's 2D of a :class:`cv_mim.data.h36m.MultiViewPoses` with an Embedder;
    ``camera_angles`` [C, C] (degrees between optical axes) is passed through."""
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
    sequences = poses.sequence_names(idx)
    return RetrievalData(features=features, poses_3d=poses_3d, keypoints_2d=np.stack(normalized),
                         camera_ids=[str(c) for c in poses.camera_ids], sequences=sequences,
                         camera_angles=camera_angles)


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
    data = build_data(poses, embedder, frame_stride=frame_stride,
                      camera_angles=rig_axis_angles(path_cameras, subjects))
    results = evaluate(data, threshold=threshold, max_queries=max_queries, seed=seed)
    results["view_probe"] = view_predictability(data.features, data.sequences, seed=seed)
    results["per_action_view_probe"] = per_action_view_predictability(data.features, data.sequences,
                                                                      seed=seed)
    actions = action_names(data.sequences)
    results["action_frames"] = {a: int((actions == a).sum()) for a in dict.fromkeys(actions.tolist())}
    results["camera_pairs"] = camera_pairs(results)
    results.update(export_dir=export_dir, subjects=list(subjects), frame_stride=frame_stride,
                   algorithm=embedder.metadata.get("algorithm"))
    records.write_results(
        output_dir, results, "retrieval_results.json", markdown_table(results), "retrieval.md",
        heading=f"Cross-view retrieval ({results['algorithm']}, subjects {', '.join(subjects)})")
    if draw:
        draw_figures(output_dir, data, threshold=threshold, seed=seed,
                     view_probe=results["view_probe"])
    return results


def rig_axis_angles(path_cameras, subjects):
    """[C, C] angles (degrees) between the cameras' optical axes, averaged over ``subjects`` (each
    Human3.6M subject has its own calibration of the same cameras)."""
    rig = cameras_mod.load_h36m_cameras(path_cameras)
    return np.mean([cameras_mod.optical_axis_angles(rig.cameras(s)) for s in subjects], axis=0)


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
            nn = gallery[retrieval_metrics.nearest(feats[i][queries], feats[j][gallery], kmax)]
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
    if results.get("view_probe"):
        lines += ["", probe_table(results["view_probe"])]
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
    features = {k: np.stack(v) for k, v in features.items()}
    results = synchronised_hits(features, present, [str(c) for c in clips.clip_ids],
                                tolerance=tolerance)
    # Frames without a detection are NaN, so the probe leaves them out.
    results["view_probe"] = view_predictability(
        {k: np.where(present[..., None], v.reshape(v.shape[:2] + (-1,)), np.nan)
         for k, v in features.items()})
    results.update(export_dir=export_dir, dataset=dataset, source=records.absolute(path),
                   algorithm=embedder.metadata.get("algorithm"), loader_info=clips.info)
    records.write_results(
        output_dir, results, "retrieval_results.json", synchronised_table(results),
        "retrieval.md", heading=f"Cross-camera retrieval ({results['algorithm']}, {dataset})")
    return results
