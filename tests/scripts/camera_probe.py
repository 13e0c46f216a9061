"""z_p's view predictability (issue 15) for one or more exports, as BUILD_NOTES §14 reports it.

    python tests/scripts/camera_probe.py [--world=WORLD] [--offsets] EXPORT_DIR|shipped [...]

For each export: the camera probe of the retrieval report (a linear probe naming the camera of one
frame, 10-frame blocks held out) on the real Human3.6M sample (``../shared/realdata/h36m``) over split
seeds 0-4, mean ± sample std; with ``--world``, the same probe on each held-out take (S9, S11) of that
synthetic world — one take and its 4 cameras at a time, as on the real sample — averaged over takes,
for z_p, z_v and the raw 2D. With ``--offsets``, where the camera sits (BUILD_NOTES §14, tenth
session): per feature of the real sample, the probe after removing each camera's mean feature, the
share of the feature's variance between the cameras' means and across the cameras at a frame, and
the cross-view discrepancy (``validation.camera_pair_discrepancy``).
"""
import os
import sys

import numpy as np

from cv_mim.data import h36m
from cv_mim.downstream import retrieval
from cv_mim.serving import embedder as embedder_lib
from cv_mim.training import validation

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REAL = os.path.join(ROOT, "..", "shared", "realdata", "h36m")
SPLIT_SEEDS = range(5)


def _load(folder, three_d, two_d, subjects):
    return h36m.load_multiview(os.path.join(folder, three_d), os.path.join(folder, "cameras.json"),
                               os.path.join(folder, two_d), subjects=subjects)


def _probe_splits(features, sequences):
    """The camera probe (%) of [C, N, D] features for each split seed."""
    return [100 * retrieval.view_predictability({"f": features}, sequences, seed=s)["f"]["accuracy"]
            for s in SPLIT_SEEDS]


def _probe(features, sequences):
    """Mean and sample std over the split seeds of :func:`_probe_splits`."""
    acc = _probe_splits(features, sequences)
    return np.mean(acc), np.std(acc, ddof=1)


def offsets(features, sequences):
    """{name: line} where a feature's camera information sits (see the module docstring)."""
    lines = {}
    for name, f in features.items():
        f = np.asarray(f, np.float64)  # [C, N, D]
        total = f.reshape(-1, f.shape[-1]).var(axis=0).sum()
        camera_means = f.mean(axis=1, keepdims=True)
        between = (camera_means - f.mean(axis=(0, 1), keepdims=True)).var(axis=0).sum()
        across = (f - f.mean(axis=0, keepdims=True)).var(axis=(0, 1)).sum()
        lines[name] = ("probe %.1f ± %.1f, after removing each camera's mean %.1f ± %.1f; variance "
                       "between camera means %.3f, across cameras at a frame %.3f; discrepancy %.3f" % (
                           *_probe(f, sequences), *_probe(f - camera_means, sequences),
                           between / total, across / total,
                           validation.camera_pair_discrepancy(f)))
    return lines


def main(argv):
    world = next((a.split("=", 1)[1] for a in argv if a.startswith("--world=")), None)
    show_offsets = "--offsets" in argv
    exports = [a for a in argv if not a.startswith("--world=") and a != "--offsets"]
    real = _load(REAL, "data_3d_h36m_S11_sample.npz", "data_2d_h36m_S11_sample_gt.npz", ("S11",))
    synth = world and _load(os.path.join(world, "h36m"), "data_3d_h36m.npz", "data_2d_h36m_gt.npz",
                            ("S9", "S11"))
    for export in exports:
        embedder = embedder_lib.Embedder(None if export == "shipped" else export)
        data = retrieval.build_data(real, embedder)
        acc = _probe_splits(data.features["pose_embedding"], data.sequences)
        print(f"{embedder.export_dir}: real H36M camera probe of z_p over split seeds "
              f"{SPLIT_SEEDS.start}-{SPLIT_SEEDS.stop - 1}: {np.mean(acc):.1f} ± {np.std(acc, ddof=1):.1f} "
              f"({', '.join(f'{a:.1f}' for a in acc)})")
        if show_offsets:
            for name, line in offsets(data.features, data.sequences).items():
                print(f"  {name}: {line}")
        if synth:
            data = retrieval.build_data(synth, embedder)
            per_take = {name: [] for name in data.features}
            for take in np.unique(data.sequences):
                sel = data.sequences == take
                probe = retrieval.view_predictability(
                    {k: v[:, sel] for k, v in data.features.items()}, data.sequences[sel])
                for name in per_take:
                    per_take[name].append(probe[name]["accuracy"])
            print("  per held-out synthetic take (mean over %d takes): %s" % (
                len(np.unique(data.sequences)), ", ".join(
                    f"{k} {100 * np.nanmean(np.array(v, float)):.1f}" for k, v in per_take.items())))


if __name__ == "__main__":
    main(sys.argv[1:])
