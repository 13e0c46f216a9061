"""A short CV-MIM run on synthetic positive pairs: the cross-view MI estimate rises and cross-view
nearest-neighbour retrieval with z_p beats the untrained encoder and the raw 2D input."""
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from cv_mim import pipeline
from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry
from cv_mim.algorithms import step as step_lib
from cv_mim.downstream import retrieval as retrieval_lib
from cv_mim.keypoints import normalization
from cv_mim.training import distribution
from cv_mim.training import sources

TINY = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "synthetic_tiny" / "h36m"


def _retrieval(encoder, views, poses_3d):
    """Mean cross-view Hit@1 over all ordered camera pairs (Pr-VIPE criterion: the retrieved frame's
    3D pose is within Procrustes-aligned MPJPE 0.1 of the query's), with z_p of ``encoder`` or with
    the raw normalised 2D keypoints when ``encoder`` is None."""
    feats = [v.reshape(len(v), -1) if encoder is None
             else encoder(v, training=False)["pose_embedding"].numpy() for v in views]
    hits = []
    for i in range(len(feats)):
        for j in range(len(feats)):
            if i != j:
                d = ((feats[i][:, None] - feats[j][None]) ** 2).sum(-1)
                nn = d.argmin(axis=1)
                err = retrieval_lib.procrustes_mpjpe(poses_3d[nn], poses_3d)
                hits.append(float((err <= 0.1).mean()))
    return float(np.mean(hits))


@pytest.mark.slow
def test_short_cv_mim_run_learns_view_invariant_pose_embeddings():
    source = sources.load_pair_source("h36m", data_dir=str(TINY), subjects=("S1",))
    views = [normalization.normalize_keypoints_2d(source.keypoints_2d[:, c])[0].numpy()
             for c in range(source.num_cameras)]
    tf.keras.utils.set_random_seed(0)
    alg = registry.get_algorithm(config_lib.ModelConfig(hidden_dim=128)).build()
    opts = step_lib.create_optimizers(alg)
    step = distribution.make_train_step(tf.distribute.get_strategy(), alg, opts)
    untrained = _retrieval(alg.encoder, views, source.keypoints_3d)
    raw = _retrieval(None, views, source.keypoints_3d)
    mi = []
    data = pipeline.make_pair_dataset(source, batch_size=64, seed=0, num_batches=600)
    for i, (a, p) in enumerate(data):
        out = step(a, p, distribution.step_seed(0, i))
        mi.append(float(out["metrics"]["cross_view_mi"]))
    trained = _retrieval(alg.encoder, views, source.keypoints_3d)
    first, last = np.mean(mi[:20]), np.mean(mi[-20:])
    print(f"MI {first:.3f} -> {last:.3f}; hit@1 trained {trained:.3f} untrained {untrained:.3f} raw {raw:.3f}")
    assert last > first + 1.0, (first, last)
    assert trained > untrained + 0.2, (trained, untrained)
    assert trained > raw + 0.2, (trained, raw)
