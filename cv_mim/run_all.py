r"""From nothing to the paper's comparison on the synthetic world, in one command.

    python -m cv_mim.run_all --workdir=runs/demo

Stages (each skipped when its output already exists, so an interrupted run continues):
  1. synthesize the multi-view pose world (Human3.6M, Penn Action and NTU RGB+D formats);
  2. pretrain CV-MIM and every baseline (Auto-Encoder, VAE, β-VAE, InfoNCE, DIM) on its Human3.6M layout;
  3. export each encoder as a SavedModel;
  4. cross-view retrieval on the held-out subjects S9/S11;
  5. embed the Penn-Action-layout clips with each export;
  6. single-shot cross-view action recognition for each method and for raw 2D poses;
  7. view classification (z_v vs raw 2D);
  8. report.md with the tables in the paper's layout and PNG figures.
"""

import json
import logging
import os
import time

from absl import flags

from cv_mim import cli
from cv_mim.algorithms import config as config_lib
from cv_mim.algorithms import registry
from cv_mim.downstream import action_recognition as action_lib
from cv_mim.downstream import retrieval as retrieval_lib
from cv_mim.downstream import view_classification as view_lib
from cv_mim.report import report as report_lib
from cv_mim.serving import embed as embed_lib
from cv_mim.serving import export as export_lib
from cv_mim.synthetic import world as world_mod
from cv_mim.training import loop
from cv_mim.training import sources

FLAGS = flags.FLAGS
ALL_METHODS = registry.ALGORITHMS
flags.DEFINE_string("workdir", "runs/demo", "Everything goes here.")
flags.DEFINE_list("algorithms", list(ALL_METHODS), "Representation learners to compare.")
flags.DEFINE_enum("size", "default", ["tiny", "default"], "Synthetic world size.")
flags.DEFINE_integer("seed", 0, "Seed of the world, the pretraining and the classifiers.")
flags.DEFINE_integer("pretrain_steps", 2000, "Pretraining steps per method.")
flags.DEFINE_integer("pretrain_batch", 256, "Pretraining batch (pairs).")
flags.DEFINE_integer("hidden_dim", 512, "Encoder width for the demo (paper: 1024).")
flags.DEFINE_integer("classifier_steps", 600, "Action-recognition steps per training view.")
flags.DEFINE_integer("view_steps", 2000, "View-classification steps (paper: 1e4).")
flags.DEFINE_list("seeds", ["0"], "Classifier seeds (mean ± std over them).")
cli.define_trust_export_flag()
flags.DEFINE_bool("quick", False, "Smoke-test sizes (tiny world, few steps): checks the plumbing, "
                  "not the claims.")


class Progress:
    """Stage-level progress with elapsed time and an ETA from the stage weights."""

    def __init__(self, weights):
        self.weights = dict(weights)
        self.total = float(sum(self.weights.values()))
        self.done = 0.0
        self.t0 = time.time()

    def start(self, name, detail=""):
        elapsed = time.time() - self.t0
        frac = self.done / self.total
        eta = elapsed / frac * (1 - frac) if frac > 0.02 else float("nan")
        eta_text = "?" if eta != eta else f"{int(eta // 60)}m{int(eta % 60):02d}s"
        logging.info("[%3.0f%% | %dm%02ds elapsed | ETA %s] %s %s", 100 * frac, elapsed // 60,
                     elapsed % 60, eta_text, name, detail)

    def finish(self, name):
        self.done += self.weights.get(name, 0)


def run(*, workdir, algorithms=ALL_METHODS, size="default", seed=0, pretrain_steps=2000,
        pretrain_batch=256, hidden_dim=512, classifier_steps=600, view_steps=2000, seeds=(0,),
        trust_export=False):
    """Runs every stage; returns the report dict (also written as report.json / report.md).

    Exports already in ``workdir/exports`` are reused; like every other export they are checked
    against the op allow-list unless ``trust_export``."""

    unknown = sorted(set(algorithms) - set(ALL_METHODS))
    if unknown:
        raise ValueError(f"unknown algorithms {unknown}; choose from {ALL_METHODS}")
    os.makedirs(workdir, exist_ok=True)
    world = os.path.join(workdir, "world")
    n = len(algorithms)
    progress = Progress({"world": 1, **{f"pretrain/{a}": 6 for a in algorithms},
                         **{f"eval/{a}": 3 for a in algorithms}, "raw": 2, "report": 0.5})
    settings = {"size": size, "seed": seed, "pretrain_steps": pretrain_steps,
                "pretrain_batch": pretrain_batch, "hidden_dim": hidden_dim,
                "classifier_steps": classifier_steps, "view_steps": view_steps,
                "seeds": list(seeds), "algorithms": list(algorithms)}

    progress.start("world", f"synthesizing ({size}) into {world}")
    manifest_path = os.path.join(world, "manifest.json")
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("seed") != seed or manifest.get("size") != size:
            manifest = world_mod.generate_world(world, seed=seed, size=size)
    else:
        manifest = world_mod.generate_world(world, seed=seed, size=size)
    progress.finish("world")

    results = {"settings": settings, "methods": {}}
    penn_dir = os.path.join(world, "penn_action", "labels")
    h36m_dir = os.path.join(world, "h36m")
    source = None
    for i, algorithm in enumerate(algorithms):
        model_dir = os.path.join(workdir, "models", algorithm)
        export_dir = os.path.join(workdir, "exports", algorithm)
        progress.start(f"pretrain/{algorithm}", f"({i + 1}/{n}) {pretrain_steps} steps")
        if not os.path.exists(export_dir):
            if source is None:
                source = sources.load_pair_source(
                    "h36m", data_dir=h36m_dir, subjects=tuple(manifest["h36m"]["train_subjects"]))
            config = config_lib.ModelConfig(
                algorithm=algorithm, hidden_dim=hidden_dim,
                kl_weight=registry.default_kl_weight(algorithm))
            loop.run(model_dir=model_dir, config=config, source=source,
                             batch_size=pretrain_batch, num_steps=pretrain_steps, seed=seed,
                             summary_every=max(1, pretrain_steps // 100),
                             checkpoint_every=max(1, pretrain_steps // 2),
                             log_every=max(1, pretrain_steps // 10),
                             flags_record={"run_all": settings, "algorithm": algorithm})
            export_lib.export(model_dir, export_dir)
        progress.finish(f"pretrain/{algorithm}")

        progress.start(f"eval/{algorithm}", "retrieval, embedding, action and view recognition")
        entry = {"model_dir": model_dir, "export_dir": export_dir}
        entry["retrieval"] = _cached_json(
            os.path.join(workdir, "retrieval", algorithm, "retrieval_results.json"),
            lambda a=algorithm, e=export_dir: retrieval_lib.run(
                export_dir=e, output_dir=os.path.join(workdir, "retrieval", a), data_dir=h36m_dir,
                subjects=tuple(manifest["h36m"]["test_subjects"]), max_queries=1000,
                seed=seed, trust_export=trust_export))
        emb_path = os.path.join(workdir, "embeddings", f"{algorithm}_penn.npz")
        if not os.path.exists(emb_path):
            embed_lib.embed_dataset(export_dir, "penn_action", penn_dir, emb_path,
                                    flip_modes=("keep", "swap"), trust_export=trust_export)
        entry["single_shot"] = _cached_json(
            os.path.join(workdir, "action_recognition", algorithm, "results.json"),
            lambda a=algorithm, p=emb_path: action_lib.run(
                embeddings=p, output_dir=os.path.join(workdir, "action_recognition", a),
                setting="single_shot", features="embedding", steps=classifier_steps,
                seeds=seeds, method=a, log_every=max(1, classifier_steps // 2)))
        entry["view_classification"] = _cached_json(
            os.path.join(workdir, "view_classification", algorithm, "view_results.json"),
            lambda a=algorithm, p=emb_path: view_lib.run(
                embeddings=p, output_dir=os.path.join(workdir, "view_classification", a),
                features=("view_embedding", "raw"), steps=view_steps, seeds=seeds, method=a))
        results["methods"][algorithm] = entry
        progress.finish(f"eval/{algorithm}")

    progress.start("raw", "raw 2D Temporal ConvNet baseline")
    first_emb = os.path.join(workdir, "embeddings", f"{algorithms[0]}_penn.npz")
    results["raw_2d"] = {"single_shot": _cached_json(
        os.path.join(workdir, "action_recognition", "raw_2d", "results.json"),
        lambda: action_lib.run(
            embeddings=first_emb, output_dir=os.path.join(workdir, "action_recognition", "raw_2d"),
            setting="single_shot", features="raw", steps=classifier_steps, seeds=seeds,
            method="Temporal ConvNet (raw 2D)", log_every=max(1, classifier_steps // 2)))}
    progress.finish("raw")

    progress.start("report", os.path.join(workdir, "report.md"))
    report = report_lib.write_report(workdir, results, manifest)
    progress.finish("report")
    progress.start("done", f"report: {os.path.join(workdir, 'report.md')}")
    return report


def _cached_json(path, compute):
    """Returns the JSON at ``path`` if a previous run wrote it, else ``compute()``."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return compute()


@cli.friendly_errors
def main(argv):
    cli.start(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    kwargs = dict(workdir=FLAGS.workdir, algorithms=tuple(FLAGS.algorithms), size=FLAGS.size,
                  seed=FLAGS.seed, pretrain_steps=FLAGS.pretrain_steps,
                  pretrain_batch=FLAGS.pretrain_batch, hidden_dim=FLAGS.hidden_dim,
                  classifier_steps=FLAGS.classifier_steps, view_steps=FLAGS.view_steps,
                  seeds=tuple(cli.parse_seeds(FLAGS.seeds)), trust_export=FLAGS.trust_export)
    if FLAGS.quick:
        kwargs.update(size="tiny", pretrain_steps=30, pretrain_batch=64, hidden_dim=64,
                      classifier_steps=20, view_steps=50)
    report = run(**kwargs)
    print(report["summary_text"])


if __name__ == "__main__":
    cli.run(main)
