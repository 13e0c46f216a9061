r"""From nothing to the paper's comparison on the synthetic world: the driver behind ``cv_mim.run_all``.

Stages (each reused when its output exists AND was made with the same settings, so an interrupted run
continues and a run with other settings in the same workdir redoes what they change):
  1. synthesize the multi-view pose world (Human3.6M, Penn Action and NTU RGB+D formats);
  2. pretrain CV-MIM and every baseline on its Human3.6M layout (resumable);
  3. export each encoder as a SavedModel;
  4. cross-view retrieval on the held-out subjects;
  5. embed the Penn-Action-layout clips with each export;
  6. single-shot cross-view action recognition for each method and for raw 2D poses;
  7. view classification (z_v vs raw 2D);
  8. report.md with the tables in the paper's layout and PNG figures.

Every stage's folder holds ``stage.json``: the settings that made it (its own and those of every stage
it reads), so a changed ``--seed``, ``--pretrain_steps`` or ``--quick`` can never report old results
under a new header.
"""

import json
import logging
import os
import shutil

from cv_mim import progress
from cv_mim import records
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

log = logging.getLogger("cv_mim.run_all")
STAGE_FILE = "stage.json"


def _stored_key(folder):
    try:
        with open(os.path.join(folder, STAGE_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _claim(folder, key, resumable=False):
    """Makes ``folder`` belong to ``key``: a folder made with other settings (or by an interrupted
    non-resumable stage) is removed first. A ``resumable`` stage (pretraining) marks the folder as
    started, so an interrupted run continues from its checkpoints instead of starting over.

    Returns True when ``folder`` already holds a COMPLETE output of ``key`` (see :func:`_complete`).
    """
    stored = _stored_key(folder)
    if stored is not None and stored.get("settings") == key:
        if stored.get("complete") or resumable:
            return bool(stored.get("complete"))
    if os.path.exists(folder):
        log.info("%s: %s; redoing it", folder,
                 "incomplete or unlabelled output" if stored is None or stored.get("settings") == key
                 else "made with other settings")
        shutil.rmtree(folder)
    if resumable:
        os.makedirs(folder)
        records.write_json(os.path.join(folder, STAGE_FILE), {"settings": key, "complete": False})
    return False


def _complete(folder, key):
    os.makedirs(folder, exist_ok=True)
    records.write_json(os.path.join(folder, STAGE_FILE), {"settings": key, "complete": True})


def _stage(folder, key, compute, result_file=None):
    """Runs ``compute()`` unless ``folder`` holds its complete output for ``key``; returns the JSON in
    ``result_file`` (relative to folder) when one is named, else None."""
    if not _claim(folder, key):
        compute()
        _complete(folder, key)
    if result_file:
        with open(os.path.join(folder, result_file), encoding="utf-8") as f:
            return json.load(f)
    return None


def _world(workdir, size, seed):
    folder = os.path.join(workdir, "world")
    key = {"stage": "world", "size": size, "seed": seed}
    _stage(folder, key, lambda: world_mod.generate_world(folder, seed=seed, size=size))
    with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
        return json.load(f), key


VAL_POINTS = 10  # validations per pretraining run (and the last step)


def _pretrain_and_export(workdir, algorithm, world_key, manifest, s, source_cache):
    """Pretrains (resumably) and exports ``algorithm``; returns (export_dir, export key)."""
    model_dir = os.path.join(workdir, "models", algorithm)
    export_dir = os.path.join(workdir, "exports", algorithm)
    key = {"stage": "pretrain", "algorithm": algorithm, "world": world_key,
           **{k: s[k] for k in ("seed", "pretrain_steps", "pretrain_batch", "hidden_dim")}}
    if not _claim(model_dir, key, resumable=True):
        if "source" not in source_cache:
            source_cache["source"] = sources.load_pair_source(
                "h36m", data_dir=os.path.join(workdir, "world", "h36m"),
                subjects=tuple(manifest["h36m"]["train_subjects"]))
        config = config_lib.ModelConfig(algorithm=algorithm, hidden_dim=s["hidden_dim"],
                                        kl_weight=registry.default_kl_weight(algorithm))
        if "validation" not in source_cache:
            # Watched on the world's test subjects (the retrieval stage's frames, strided): the
            # demo exports the last checkpoint, so validation only records the curve (eval/ events,
            # metrics.jsonl, best/) and selects nothing; training is bit-identical without it.
            source_cache["validation"] = sources.load_validation_set(
                "h36m", data_dir=os.path.join(workdir, "world", "h36m"),
                subjects=tuple(manifest["h36m"]["train_subjects"]),
                val_subjects=tuple(manifest["h36m"]["test_subjects"]), max_frames=1000)
        steps = s["pretrain_steps"]
        loop.run(model_dir=model_dir, config=config, source=source_cache["source"],
                 batch_size=s["pretrain_batch"], num_steps=steps, seed=s["seed"],
                 summary_every=max(1, steps // 100), checkpoint_every=max(1, steps // 2),
                 log_every=max(1, steps // 10),
                 flags_record={"run_all": s, "algorithm": algorithm},
                 validation=source_cache["validation"], val_every=max(1, steps // VAL_POINTS))
        _complete(model_dir, key)
    export_key = {"stage": "export", "model": key}
    if _stored_key(export_dir) != {"settings": export_key, "complete": True}:
        if os.path.exists(export_dir):
            shutil.rmtree(export_dir)
        export_lib.export(model_dir, export_dir)
        _complete(export_dir, export_key)
    return export_dir, export_key


def _evaluate(workdir, algorithm, export_dir, export_key, manifest, s, trust_export):
    """Retrieval, embedding, single-shot action recognition and view classification of one export."""
    seeds, steps = s["seeds"], s["classifier_steps"]
    out = {"export_dir": export_dir, "model_dir": os.path.join(workdir, "models", algorithm)}
    folder = os.path.join(workdir, "retrieval", algorithm)
    out["retrieval"] = _stage(
        folder, {"stage": "retrieval", "export": export_key, "seed": s["seed"],
                 "outputs": retrieval_lib.OUTPUTS_VERSION},
        lambda: retrieval_lib.run(
            export_dir=export_dir, output_dir=folder,
            data_dir=os.path.join(workdir, "world", "h36m"),
            subjects=tuple(manifest["h36m"]["test_subjects"]), max_queries=1000, seed=s["seed"],
            trust_export=trust_export),
        "retrieval_results.json")
    emb_dir = os.path.join(workdir, "embeddings", algorithm)
    emb_key = {"stage": "embed", "export": export_key}
    emb_path = os.path.join(emb_dir, "penn.npz")
    _stage(emb_dir, emb_key, lambda: embed_lib.embed_dataset(
        export_dir, "penn_action", os.path.join(workdir, "world", "penn_action", "labels"),
        emb_path, flip_modes=("keep", "swap"), trust_export=trust_export))
    folder_ar = os.path.join(workdir, "action_recognition", algorithm)
    out["single_shot"] = _stage(
        folder_ar, {"stage": "single_shot", "embeddings": emb_key, "steps": steps, "seeds": seeds},
        lambda: action_lib.run(embeddings=emb_path, output_dir=folder_ar, setting="single_shot",
                               features="embedding", steps=steps, seeds=seeds, method=algorithm,
                               log_every=max(1, steps // 2)),
        "results.json")
    folder_vc = os.path.join(workdir, "view_classification", algorithm)
    out["view_classification"] = _stage(
        folder_vc, {"stage": "view_classification", "embeddings": emb_key,
                    "steps": s["view_steps"], "seeds": seeds,
                    "features": list(view_lib.DEFAULT_FEATURES)},
        lambda: view_lib.run(embeddings=emb_path, output_dir=folder_vc,
                             features=view_lib.DEFAULT_FEATURES, steps=s["view_steps"],
                             seeds=seeds, method=algorithm),
        "view_results.json")
    return out, emb_path, emb_key


def run(*, workdir, algorithms=registry.ALGORITHMS, size="default", seed=0, pretrain_steps=2000,
        pretrain_batch=256, hidden_dim=512, classifier_steps=600, view_steps=2000, seeds=(0,),
        trust_export=False):
    """Runs every stage; returns the report dict (also written as report.json / report.md).

    Exports already in ``workdir/exports`` are reused; like every other export they are checked
    against the op allow-list unless ``trust_export``."""
    unknown = sorted(set(algorithms) - set(registry.ALGORITHMS))
    if unknown or not algorithms:
        raise ValueError(f"unknown algorithms {unknown or '(none given)'}; choose from "
                         f"{registry.ALGORITHMS}")
    os.makedirs(workdir, exist_ok=True)
    n = len(algorithms)
    stages = progress.Stages({"world": 1, **{f"pretrain/{a}": 6 for a in algorithms},
                              **{f"eval/{a}": 3 for a in algorithms}, "raw": 2, "report": 0.5})
    settings = {"size": size, "seed": seed, "pretrain_steps": pretrain_steps,
                "pretrain_batch": pretrain_batch, "hidden_dim": hidden_dim,
                "classifier_steps": classifier_steps, "view_steps": view_steps,
                "seeds": list(seeds), "algorithms": list(algorithms)}

    stages.start("world", f"synthesizing ({size}) into {os.path.join(workdir, 'world')}")
    manifest, world_key = _world(workdir, size, seed)
    stages.finish("world")
    results = {"settings": settings, "methods": {}}
    source_cache = {}
    first_embedding = None
    for i, algorithm in enumerate(algorithms):
        stages.start(f"pretrain/{algorithm}", f"({i + 1}/{n}) {pretrain_steps} steps")
        export_dir, export_key = _pretrain_and_export(workdir, algorithm, world_key, manifest,
                                                      settings, source_cache)
        stages.finish(f"pretrain/{algorithm}")
        stages.start(f"eval/{algorithm}", "retrieval, embedding, action and view recognition")
        entry, emb_path, emb_key = _evaluate(workdir, algorithm, export_dir, export_key, manifest,
                                             settings, trust_export)
        first_embedding = first_embedding or (emb_path, emb_key)
        results["methods"][algorithm] = entry
        stages.finish(f"eval/{algorithm}")

    stages.start("raw", "raw 2D Temporal ConvNet baseline")
    folder = os.path.join(workdir, "action_recognition", "raw_2d")
    # Raw 2D features are the normalised keypoints: they depend on the world, not on the export.
    results["raw_2d"] = {"single_shot": _stage(
        folder, {"stage": "raw_2d", "world": world_key, "steps": classifier_steps,
                 "seeds": list(seeds)},
        lambda: action_lib.run(
            embeddings=first_embedding[0], output_dir=folder, setting="single_shot",
            features="raw", steps=classifier_steps, seeds=seeds,
            method="Temporal ConvNet (raw 2D)", log_every=max(1, classifier_steps // 2)),
        "results.json")}
    stages.finish("raw")

    stages.start("report", os.path.join(workdir, "report.md"))
    report = report_lib.write_report(workdir, results, manifest)
    stages.finish("report")
    stages.start("done", f"report: {os.path.join(workdir, 'report.md')}")
    return report
