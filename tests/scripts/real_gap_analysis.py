"""Which real poses and viewpoints the synthetic world under-represents (issue 15), for one export.

    python tests/scripts/real_gap_analysis.py WORLD [EXPORT_DIR] [REAL_H36M_DIR]

WORLD is a synthetic world (``python -m cv_mim.synthesize --output_dir=WORLD``; the shipped encoder
was trained on the default one); EXPORT_DIR defaults to the shipped encoder; REAL_H36M_DIR to
``../shared/realdata/h36m`` (the real Human3.6M sample). Prints, as markdown:

* **poses**: for every real frame, its *novelty* = the smallest P-MPJPE (normalised canonical 3D, the
  retrieval criterion's distance) to any pose of the world's training subjects (strided to at most
  ``MAX_WORLD`` poses), and Hit@1 of z_p (P-MPJPE <= 0.1) of the frame as a query, averaged over
  the 12 ordered camera pairs, binned by novelty;
* **viewpoints**: each real camera's height, distance and elevation relative to the subject and its
  focal length, beside the range of the world's cameras.
"""
import json
import os
import sys

import numpy as np

from cv_mim.data import h36m
from cv_mim.downstream import retrieval
from cv_mim.keypoints import normalization
from cv_mim.keypoints import profiles
from cv_mim.keypoints import retrieval_metrics
from cv_mim.serving import embedder as embedder_lib
from cv_mim.synthetic import world as world_lib

MAX_WORLD = 6000
THRESHOLD = 0.1
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def novelty(real_3d, world_3d, chunk=64):
    """[N] smallest P-MPJPE of each real pose to the world's poses (both normalised canonical), and
    [N] the index of that nearest world pose."""
    out, nearest = np.empty(len(real_3d)), np.empty(len(real_3d), np.int64)
    for s in range(0, len(real_3d), chunk):
        q = real_3d[s:s + chunk]
        err = retrieval_metrics.procrustes_mpjpe(world_3d[None], q[:, None])  # [q, W]
        out[s:s + chunk], nearest[s:s + chunk] = err.min(axis=1), err.argmin(axis=1)
    return out, nearest


def _strided(count):
    return np.arange(0, count, max(1, count // MAX_WORLD))


def per_frame_hits(features, poses_3d):
    """[N] Hit@1 (P-MPJPE <= THRESHOLD) of every frame as a query, mean over ordered camera pairs."""
    c, n = features.shape[:2]
    every_frame = np.arange(n)
    hits = np.zeros(n)
    for i in range(c):
        for j in range(c):
            if i != j:
                hits += retrieval_metrics.pair_query_hits(
                    features[i], features[j], poses_3d, every_frame, threshold=THRESHOLD,
                    ks=(1,))["pmpjpe"]["1"]
    return hits / (c * (c - 1))


def camera_geometry(cameras_path, subject, centre):
    """{camera: (height m, distance m, elevation deg, focal px)} of one subject's rig, looking at
    ``centre`` (the subject's mean hip position, world mm, z up)."""
    with open(cameras_path, encoding="utf-8") as f:
        cams = json.load(f)
    out = {}
    for cid in cams["camera_order"]:
        t = np.asarray(cams["extrinsics"][subject][cid]["T"], float)
        d = t - centre
        horizontal = np.hypot(d[0], d[1])
        out[cid] = (t[2] / 1000, np.linalg.norm(d) / 1000,
                    float(np.degrees(np.arctan2(d[2], horizontal))),
                    float(np.mean(cams["intrinsics"][cid]["f"])))
    return out


def main(world, export_dir=None, real_dir=None):
    real_dir = real_dir or os.path.join(ROOT, "..", "shared", "realdata", "h36m")
    real = h36m.load_multiview(os.path.join(real_dir, "data_3d_h36m_S11_sample.npz"),
                               os.path.join(real_dir, "cameras.json"),
                               os.path.join(real_dir, "data_2d_h36m_S11_sample_gt.npz"), subjects=("S11",))
    embedder = embedder_lib.Embedder(export_dir)
    data = retrieval.build_data(real, embedder)
    hits = per_frame_hits(data.features["pose_embedding"], data.poses_3d)
    raw_hits = per_frame_hits(data.features["raw_2d"], data.poses_3d)

    with open(os.path.join(world, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    train = tuple(manifest["h36m"]["train_subjects"])
    synth = h36m.load_multiview(os.path.join(world, "h36m", "data_3d_h36m.npz"),
                                os.path.join(world, "h36m", "cameras.json"),
                                os.path.join(world, "h36m", "data_2d_h36m_gt.npz"), subjects=train)
    world_3d = normalization.normalized_3d_canonical(synth.keypoints_3d[_strided(len(synth))])
    nov, nearest = novelty(data.poses_3d, world_3d)

    print(f"export: {embedder.export_dir}; real frames {len(hits)}; world poses compared "
          f"{len(world_3d)} (every {len(synth) // len(world_3d)}th of {len(synth)}, subjects "
          f"{', '.join(train)})\n")
    # The random gestures of the 'varied' world (world.FREE_TAKE_NAME takes) beside the scripted
    # takes, each strided to the same number of poses.
    free = np.char.startswith(synth.actions.astype(str), world_lib.FREE_TAKE_NAME)
    groups = [("all", np.ones(len(synth), bool))]
    if free.any():
        groups += [("scripted takes", ~free), ("free gestures", free)]
    for name, sel in groups:
        idx = np.flatnonzero(sel)
        group_nov = nov if name == "all" else novelty(data.poses_3d, normalization.normalized_3d_canonical(
            synth.keypoints_3d[idx[_strided(len(idx))]]))[0]
        print(f"Real frames with a world pose ({name}) within P-MPJPE {THRESHOLD}: "
              f"{100 * np.mean(group_nov <= THRESHOLD):.1f}%; novelty median {np.median(group_nov):.3f}, "
              f"90th percentile {np.percentile(group_nov, 90):.3f}, max {group_nov.max():.3f}")
    aligned = retrieval_metrics.procrustes_align(world_3d[nearest], data.poses_3d)
    per_joint = np.linalg.norm(aligned - data.poses_3d, axis=-1).mean(axis=0)
    print("\nPer-joint error of each real frame's nearest world pose (after Procrustes): " + ", ".join(
        f"{name} {e:.3f}" for name, e in zip(profiles.JOINT_NAMES, per_joint)) + "\n")
    edges = np.quantile(nov, [0, 1 / 3, 2 / 3, 1])
    print("| novelty (P-MPJPE to nearest world pose) | frames | z_p Hit@1 | raw 2D Hit@1 |")
    print("|---|---|---|---|")
    for a, b in zip(edges[:-1], edges[1:]):
        sel = (nov >= a) & (nov <= b)
        print(f"| {a:.3f}–{b:.3f} | {sel.sum()} | {100 * hits[sel].mean():.1f} | "
              f"{100 * raw_hits[sel].mean():.1f} |")
    r = np.corrcoef(nov, hits)[0, 1]
    print(f"\nPearson r(novelty, z_p Hit@1 per frame) = {r:.2f}\n")

    # keypoints_3d: metres, VideoPose3D 17-joint order (joint 0 = pelvis); cameras in mm.
    hip = real.keypoints_3d[:, 0].mean(axis=0) * 1000
    real_geo = camera_geometry(os.path.join(real_dir, "cameras.json"), "S11", hip)
    world_geo = {}
    for s in train:
        sel = synth.subjects == s
        centre = synth.keypoints_3d[sel][:, 0].mean(axis=0) * 1000
        world_geo.update({(s, k): v for k, v in camera_geometry(
            os.path.join(world, "h36m", "cameras.json"), s, centre).items()})
    w = np.array(list(world_geo.values()))
    print("| camera | height (m) | distance (m) | elevation (°) | focal (px) |")
    print("|---|---|---|---|---|")
    for cid, v in real_geo.items():
        print(f"| real {cid} | {v[0]:.2f} | {v[1]:.2f} | {v[2]:.1f} | {v[3]:.0f} |")
    print(f"| world ({len(w)} subject-cameras), min–max | {w[:, 0].min():.2f}–{w[:, 0].max():.2f} | "
          f"{w[:, 1].min():.2f}–{w[:, 1].max():.2f} | {w[:, 2].min():.1f}–{w[:, 2].max():.1f} | "
          f"{w[:, 3].min():.0f}–{w[:, 3].max():.0f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
