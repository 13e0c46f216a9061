"""Writes testdata/shipped_embeddings.npz: the shipped encoder's embeddings of a fixed fixture.

Run after (and only after) deliberately replacing the shipped model (cv_mim/pretrained/):

    python tests/scripts/store_shipped_embeddings.py

tests/test_pretrained.py compares the shipped model's output with this file, so an accidental change
of the model, its export or the normalisation is caught.
"""
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cv_mim.data import h36m  # noqa: E402
from cv_mim.serving import embedder as embedder_lib  # noqa: E402

FIXTURE_2D = REPO / "testdata" / "synthetic_tiny" / "h36m" / "data_2d_h36m_gt.npz"
OUTPUT = REPO / "testdata" / "shipped_embeddings.npz"


def fixture_keypoints() -> np.ndarray:
    """[24, 17, 2] H36M-17 pixels: subject S9 'Walk 1', frames 0-5, all four cameras."""
    positions = h36m.load_positions_2d(FIXTURE_2D)["S9"]["Walk 1"]
    return np.concatenate([np.asarray(cam[:6], np.float32) for cam in positions])


def main():
    out = embedder_lib.Embedder().embed(fixture_keypoints(), layout="h36m17")
    np.savez(OUTPUT, pose_embedding=out["pose_embedding"], view_embedding=out["view_embedding"])
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
