"""One small-budget measurement on a synthetic world: pretrain -> export -> embed Penn -> single-shot
action recognition (and, for cv_mim, view classification of z_v). Used for the VAE KL-scale and the
CLUB-variant decisions (BUILD_NOTES §1); run the jobs one at a time.

Usage (from the repository root; WORLD from ``python -m cv_mim.synthesize --output_dir=WORLD``):
    W=256 B=256 S=1000 python tests/scripts/baseline_measure.py WORLD OUT ALGORITHM SEED [field=value ...]
    python tests/scripts/baseline_measure.py WORLD OUT raw SEED EMBEDDINGS.npz   # raw 2D baseline
``field=value`` are ModelConfig overrides (``kl_scale=authors``, ``club_variant=authors``); W, B, S
are the width, the pretraining batch and steps (defaults 128, 64, 600). Writes OUT/result.json.
"""
import json
import os
import sys
import time

from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry
from cv_mim.downstream import action_recognition as action_lib
from cv_mim.downstream import view_classification as view_lib
from cv_mim.serving import embed as embed_lib
from cv_mim.serving import export as export_lib
from cv_mim.training import loop
from cv_mim.training import sources


def main(world, out, algorithm, seed, extra):
    t0 = time.time()
    result = {"algorithm": algorithm, "seed": seed}
    if algorithm == "raw":
        emb, features = extra[0], "raw"
    else:
        over = dict(kv.split("=", 1) for kv in extra)
        over = {k: float(v) if k.endswith("weight") else v for k, v in over.items()}
        over.setdefault("kl_weight", registry.default_kl_weight(algorithm))
        cfg = config_lib.ModelConfig(algorithm=algorithm,
                                     hidden_dim=int(os.environ.get("W", 128)), **over)
        manifest = json.load(open(os.path.join(world, "manifest.json")))
        src = sources.load_pair_source("h36m", data_dir=os.path.join(world, "h36m"),
                                       subjects=tuple(manifest["h36m"]["train_subjects"]))
        summary = loop.run(model_dir=f"{out}/model", config=cfg, source=src,
                           batch_size=int(os.environ.get("B", 64)),
                           num_steps=int(os.environ.get("S", 600)), seed=seed, summary_every=100,
                           checkpoint_every=100_000, log_every=500)
        export_lib.export(f"{out}/model", f"{out}/export")
        emb, features = f"{out}/penn.npz", "embedding"
        embed_lib.embed_dataset(f"{out}/export", "penn_action",
                                os.path.join(world, "penn_action", "labels"), emb,
                                flip_modes=("keep", "swap"))
        result.update(overrides=over, final_losses=summary["final_losses"])
    ss = action_lib.run(embeddings=emb, output_dir=f"{out}/ss", setting="single_shot",
                        features=features, steps=600, seeds=(seed,), log_every=300)
    result["single_shot"] = ss["average_top1"]
    if algorithm == "cv_mim":
        vc = view_lib.run(embeddings=emb, output_dir=f"{out}/vc", features=("view_embedding",),
                          steps=2000, seeds=(seed,))
        result["view_z_v"] = vc["features"]["view_embedding"]["accuracy_mean"]
    result["seconds"] = time.time() - t0
    with open(f"{out}/result.json", "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
