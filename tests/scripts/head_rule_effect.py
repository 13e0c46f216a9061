r"""How far z_p moves when the canonical head is the nose instead of the Human3.6M head-top (issue 14).

    PYTHONPATH=. python tests/scripts/head_rule_effect.py --export_dir=EXPORT \
        --realdata=../shared/realdata --synthetic=testdata/synthetic_tiny/h36m

On the real Human3.6M 2D sample (4 cameras x 311 frames) the encoder's input head is the head-top
("Head"); a nose-headed detector gives the nose instead — stood in for by H36M's "Neck/Nose" joint. The
script embeds every frame three ways (head-top, nose, and a head-top estimate nose + beta (nose −
shoulder centre) with beta fitted by least squares on the synthetic world's 2D, not on the real sample)
and prints the median z_p distance to the head-top embedding, next to two yardsticks: the median distance
between z_p of two random frames, and between two cameras' z_p of the same frame.
"""

import argparse
import os

import numpy as np

from cv_mim.keypoints import profiles
from cv_mim.serving import embedder as embedder_lib

NOSE = profiles.H36M17_JOINT_NAMES.index("Neck/Nose")
HEAD = profiles.H36M17_JOINT_NAMES.index("Head")
SHOULDERS = [profiles.H36M17_JOINT_NAMES.index(n) for n in ("LShoulder", "RShoulder")]


def fit_beta(kp17):
    """Least-squares beta of head-top ≈ nose + beta (nose − shoulder centre) over [N, 17, 2]."""
    d = (kp17[:, NOSE] - kp17[:, SHOULDERS].mean(1)).reshape(-1)
    r = (kp17[:, HEAD] - kp17[:, NOSE]).reshape(-1)
    return float(d @ r / (d @ d))


def variants(kp17, beta):
    kp13, _ = profiles.convert_keypoints(kp17, "h36m17")
    nose = kp13.copy()
    nose[:, 0] = kp17[:, NOSE]
    estimate = kp13.copy()
    estimate[:, 0] = kp17[:, NOSE] + beta * (kp17[:, NOSE] - kp17[:, SHOULDERS].mean(1))
    return {"head_top": kp13, "nose": nose, "nose_extrapolated": estimate}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--export_dir", required=True)
    parser.add_argument("--realdata", default="../shared/realdata")
    parser.add_argument("--synthetic", default="testdata/synthetic_tiny/h36m")
    args = parser.parse_args()
    synth = np.load(os.path.join(args.synthetic, "data_2d_h36m_gt.npz"), allow_pickle=True)
    synth_2d = np.concatenate([v for subj in synth["positions_2d"].item().values()
                               for cams in subj.values() for v in cams])
    beta = fit_beta(synth_2d)
    real = np.load(os.path.join(args.realdata, "h36m", "data_2d_h36m_S11_sample_gt.npz"),
                   allow_pickle=True)["positions_2d"].item()["S11"]["Directions 1"]
    embedder = embedder_lib.Embedder(args.export_dir)
    z = {name: [] for name in ("head_top", "nose", "nose_extrapolated")}
    for cam in real:
        for name, kp in variants(np.asarray(cam, np.float32), beta).items():
            z[name].append(embedder(kp)["pose_embedding"])
    z = {k: np.stack(v) for k, v in z.items()}  # [4, T, P]
    rng = np.random.default_rng(0)
    c, t = z["head_top"].shape[:2]
    a, b = rng.integers(0, t, 5000), rng.integers(0, t, 5000)
    keep = a != b
    cam = rng.integers(0, c, 5000)
    random_pair = np.linalg.norm(z["head_top"][cam[keep], a[keep]] - z["head_top"][cam[keep], b[keep]],
                                 axis=-1)
    cross_view = np.linalg.norm(z["head_top"][0] - z["head_top"][1:], axis=-1)
    print(f"beta (fitted on the synthetic world's 2D) = {beta:.3f}")
    print(f"median |z_p| distance, two random frames (same camera): {np.median(random_pair):.4f}")
    print(f"median |z_p| distance, same frame, camera 0 vs cameras 1-3: {np.median(cross_view):.4f}")
    for name in ("nose", "nose_extrapolated"):
        moved = np.linalg.norm(z[name] - z["head_top"], axis=-1)
        print(f"median |z_p(head={name}) - z_p(head-top)|: {np.median(moved):.4f} "
              f"({np.median(moved) / np.median(random_pair):.2f} x random pair, "
              f"{np.median(moved) / np.median(cross_view):.2f} x cross-view)")


if __name__ == "__main__":
    main()
