"""The paper's action-recognition protocols (§4.1, §4.3, App. B.2, App. C) over embedding files.

Settings:

* ``full`` — all training clips, all test clips (Tables 2 and 4).
* ``single_shot`` — the paper's new task: train on the training clips of ONE view, evaluate on the test
  clips of ALL views (Tables 1 and 3). Penn Action: views left/right/front/back, official split. NTU
  RGB+D: the cross-subject training set divided into six (camera, replication) views, evaluated on the
  whole cross-subject test set. Reported per training view (the table's columns), with the per-test-view
  breakdown, and the average over training views.
* ``limited`` — a fraction of the training clips (stratified by class), full test set (Tables 8 and 9;
  NTU uses the cross-view benchmark there).

Any other embedding file with labels (the detector readers of :mod:`cv_mim.data.registry`, labels,
views and split from the file or a CSV sidecar) runs the same settings: train / test from its ``split``
field, single_shot over the views present among its training clips (:func:`_generic_splits`). Its clips
must have one length (``cv_mim.embed --num_frames``).

Features: ``embedding`` (per-frame pose embedding of an export, the paper's default), ``view_embedding``
or ``raw`` (the normalised 2D keypoints, 26-d — the "Temporal ConvNet"/"Res-TCN" rows).

Penn Action's horizontal-flip augmentation (App. B.2) has two readings, both implemented
(``flip_mode``): ``keep`` mirrors x and keeps the joint labels (a front view becomes back-view-like and a
left view right-like — a view augmentation in itself), ``swap`` mirrors x and swaps left/right labels
(the view is kept, the person mirrored). The paper does not say which it used.
"""

import logging
import os

import numpy as np
import tensorflow as tf

from cv_mim import plotting
from cv_mim import records
from cv_mim.data import ntu_rgbd
from cv_mim.data import penn_action
from cv_mim.downstream import trainer
from cv_mim.serving import embed as embed_lib
from cv_mim.serving import embedding_file

log = logging.getLogger("cv_mim.action_recognition")


SETTINGS = ("full", "single_shot", "limited")


FEATURE_CHOICES = ("embedding", "view_embedding", "raw")


# Penn flip augmentation: none, or one of the embedding file's mirrored variants.
FLIP_MODES = ("none",) + embed_lib.FLIP_MODES


BENCHMARKS = ("cross_subject", "cross_view")






DEFAULTS = {
    # CPU-sized defaults; the paper's optimisation (Adam 1e-5 Penn / 1e-3 NTU, batch 64, 1e6 steps)
    # is in launch/*.flags.
    "penn_action": {"classifier": "temporal_convnet", "learning_rate": 1e-3},
    "ntu_rgbd": {"classifier": "resnet1d", "learning_rate": 1e-3},
    "generic": {"classifier": "temporal_convnet", "learning_rate": 1e-3},
}


def dataset_of(emb: embedding_file.EmbeddingFile):
    """'penn_action', 'ntu_rgbd' (their protocols) or 'generic' (any other labelled clips)."""
    dataset = emb.metadata.get("dataset")
    if dataset in ("penn_action", "ntu_rgbd"):
        return dataset
    if len(emb.class_names) == 0 or not (emb["labels"] >= 0).any():
        raise ValueError(f"action recognition needs labelled clips; this {dataset!r} file has no "
                         "labels (give them with cv_mim.embed --labels_csv or use a file that "
                         "holds them)")
    return "generic"


def _generic_splits(emb, setting, train_view):
    """Your own clips: the ``split`` field (train / test) and the ``views`` field; unlabelled clips
    (label −1) are left out. single_shot trains on each view present among the training clips."""
    split, views = emb["split"].astype(str), emb["views"].astype(str)
    labelled = emb["labels"] >= 0
    train = np.flatnonzero((split == "train") & labelled)
    test = np.flatnonzero((split == "test") & labelled)
    if not len(train) or not len(test):
        raise ValueError("action recognition needs labelled training and test clips: the 'split' "
                         "field must say train / test (from the file or cv_mim.embed --labels_csv)")
    if setting != "single_shot":
        return {"all": (train, test)}
    present = sorted(set(views[train].tolist()))
    if present == [""]:
        raise ValueError("single_shot needs the clips' views (from the file or --labels_csv)")
    if train_view and train_view not in present:
        raise ValueError(f"--train_view must be one of the training views {present}, got "
                         f"{train_view!r}")
    return {v: (train[views[train] == v], test) for v in ([train_view] if train_view else present)}


def _ntu_names(emb):
    return [ntu_rgbd.parse_ntu_filename(str(c)) for c in emb["clip_ids"]]


def splits(emb, setting, *, train_view=None, benchmark="cross_subject"):
    """{training view name (or "all"): (train_indices, test_indices)} for a setting."""
    dataset = dataset_of(emb)
    if dataset == "generic":
        return _generic_splits(emb, setting, train_view)
    if dataset == "penn_action":
        split = emb["split"].astype(str)
        views = emb["views"].astype(str)
        train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
        if setting == "single_shot":
            chosen = [train_view] if train_view else list(penn_action.TABLE_VIEW_ORDER)
            for v in chosen:
                if v not in penn_action.TABLE_VIEW_ORDER:
                    raise ValueError(f"--train_view for Penn Action must be one of {penn_action.TABLE_VIEW_ORDER}, "
                                     f"got {v!r}")
            return {v: (train[views[train] == v], test) for v in chosen}
        return {"all": (train, test)}
    names = _ntu_names(emb)
    if setting == "single_shot":
        out = {}
        for view, sp in ntu_rgbd.single_shot_splits(names).items():
            name = ntu_rgbd.view_name(*view)
            if train_view and name != train_view.upper().replace("-", ""):
                continue
            out[name] = (sp.train, sp.test)
        if not out:
            raise ValueError(f"--train_view for NTU must be one of {ntu_rgbd.NTU_VIEW_NAMES}, got "
                             f"{train_view!r}")
        return out
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
    if benchmark == "cross_subject":
        return {"all": ntu_rgbd.cross_subject_split(names)}
    return {"all": ntu_rgbd.cross_view_split(names)}


def _features(emb, features, flip=None):
    """The clips' features, read from the file as training and evaluation ask for them."""
    return emb.clip_features(embedding_file.FEATURE_KEYS[features], flip=flip)


def class_coverage(labels, train_idx):
    """Sorted ids of the classes that have at least one training clip."""
    return sorted(set(int(c) for c in labels[train_idx]))



# TensorBoard events of every classifier: output_dir/events/train_<view>_seed<seed>/.
EVENTS_DIR = "events"


def run(*, embeddings, output_dir, setting="single_shot", features="embedding", train_view=None,
        fraction=None, benchmark="cross_subject", classifier=None, steps=2000, batch_size=64,
        learning_rate=None, seeds=(0,), flip_mode="none", restrict_to_seen_classes=False,
        method=None, log_every=500):
    """Trains and evaluates classifiers for one setting; writes results JSON, tables and confusions.

    Args:
      embeddings: a ``cv_mim.embeddings`` .npz path or a loaded :class:`~cv_mim.serving.embedding_file.EmbeddingFile`.
      output_dir: results directory (created).
      setting: one of ``SETTINGS``.
      features: one of ``FEATURE_CHOICES``.
      train_view: single_shot only — one training view (default: every view in turn).
      fraction: limited only — fraction of training clips (stratified by class).
      benchmark: NTU full/limited — ``cross_subject`` or ``cross_view``.
      classifier: temporal_convnet | resnet1d | res_tcn (default: the paper's per dataset).
      steps, batch_size, learning_rate: optimisation (Adam).
      seeds: one run per seed; results are mean ± std over runs.
      flip_mode: Penn horizontal-flip augmentation: none | keep | swap.
      restrict_to_seen_classes: evaluate only test clips of classes present in the training split and
        take the argmax over those classes (documented deviation; off by default).
      method: name of the row in the tables (default: from the export's algorithm or "raw 2D").
    Returns:
      The results dict (also written to ``output_dir/results.json``).
    """
    # Longer than a screen on purpose: The protocol as the paper states it (per training view:
    # split, train over seeds, evaluate per test view); its results dict is built as it goes and
    # written once.

    trainer.check_optimisation(steps=steps, batch_size=batch_size,
                               learning_rate=1.0 if learning_rate is None else learning_rate,
                               seeds=seeds)
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    if features not in FEATURE_CHOICES:
        raise ValueError(f"features must be one of {FEATURE_CHOICES}, got {features!r}")
    if flip_mode not in FLIP_MODES:
        raise ValueError(f"flip_mode must be one of {FLIP_MODES}, got {flip_mode!r}")
    if setting == "limited" and not (fraction and 0 < fraction <= 1):
        raise ValueError(f"setting=limited needs 0 < fraction <= 1, got {fraction!r}")
    emb = (embeddings if isinstance(embeddings, embedding_file.EmbeddingFile)
           else embedding_file.load_embeddings(embeddings))
    dataset = dataset_of(emb)
    if flip_mode != "none" and dataset == "ntu_rgbd":
        raise ValueError("flip augmentation is a Penn Action protocol (NTU: no augmentation, App. B.2)")
    defaults = DEFAULTS[dataset]
    classifier = classifier or defaults["classifier"]
    learning_rate = defaults["learning_rate"] if learning_rate is None else learning_rate
    if method is None:
        method = "raw 2D" if features == "raw" else emb.metadata.get("export", {}).get(
            "algorithm", "embedding")
    labels = emb["labels"].astype(np.int64)
    class_names = emb.class_names
    num_classes = len(class_names)
    x = _features(emb, features)
    x_flip = _features(emb, features, flip_mode) if flip_mode != "none" else None
    test_views_all = emb["views"].astype(str)
    tf.io.gfile.makedirs(output_dir)

    results = {"dataset": dataset, "setting": setting, "features": features, "method": method,
               "classifier": classifier, "steps": steps, "batch_size": batch_size,
               "learning_rate": learning_rate, "seeds": list(seeds), "flip_mode": flip_mode,
               "benchmark": benchmark if dataset == "ntu_rgbd" else None, "fraction": fraction,
               "restrict_to_seen_classes": restrict_to_seen_classes,
               "class_names": list(class_names), "embedding_file": emb.metadata.get("source"),
               "export": emb.metadata.get("export_dir"), "train_views": {}}
    for view, (train_idx, test_idx) in splits(emb, setting, train_view=train_view,
                                              benchmark=benchmark).items():
        seen = class_coverage(labels, train_idx)
        missing = [class_names[c] for c in range(num_classes) if c not in seen]
        test_in_seen = float(np.isin(labels[test_idx], seen).mean()) if len(test_idx) else 0.0
        log.info("train view %s: %d training clips, %d test clips; classes seen in training %d/%d%s",
                 view, len(train_idx), len(test_idx), len(seen), num_classes,
                 f" (missing: {', '.join(missing)}; best reachable top-1 {100 * test_in_seen:.1f}%)"
                 if missing else "")
        if len(train_idx) == 0:
            raise ValueError(f"train view {view}: no training clips")
        runs = []
        for seed in seeds:
            idx = train_idx
            if setting == "limited":
                sub = trainer.subsample_per_class(labels[train_idx], fraction, seed)
                idx = train_idx[sub]
            logdir = os.path.join(output_dir, EVENTS_DIR, f"train_{view}_seed{seed}")
            model, history = trainer.train_classifier(
                x.select(idx), labels[idx], num_classes=num_classes, classifier=classifier,
                steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                alternate_features=None if x_flip is None else x_flip.select(idx),
                log_every=log_every, logdir=logdir)
            logits = trainer.predict_logits(model, x.select(test_idx))
            ev = trainer.evaluate(logits, labels[test_idx], num_classes, class_names=class_names,
                                   restrict_to_classes=seen if restrict_to_seen_classes else None)
            per_test_view = {}
            tv = test_views_all[test_idx]
            for name in sorted(set(tv.tolist())):
                sel = tv == name
                per_test_view[name] = trainer.evaluate(
                    logits[sel], labels[test_idx][sel], num_classes,
                    restrict_to_classes=seen if restrict_to_seen_classes else None)["top1"]
            trainer.write_scalars(trainer.event_writer(logdir), steps, dict(
                {"eval/top1": ev["top1"], "eval/top5": ev.get("top5")},
                **{f"eval/top1/{name}": v for name, v in per_test_view.items()}))
            runs.append({"seed": seed, "num_train": int(len(idx)), "top1": ev["top1"],
                         "top5": ev.get("top5"), "per_test_view_top1": per_test_view,
                         "per_class": ev.get("per_class"), "confusion": ev["confusion"],
                         "final_loss": history.get("loss", [None])[-1] if history else None})
        top1 = [r["top1"] for r in runs]
        top5 = [r["top5"] for r in runs if r["top5"] is not None]
        conf = np.sum([np.asarray(r["confusion"]) for r in runs], axis=0)
        base = os.path.join(output_dir, f"confusion_{view}")
        plotting.write_confusion(base, conf, class_names, title=f"{method}, trained on {view}")
        results["train_views"][view] = {
            "num_train_clips": int(len(train_idx)), "num_test_clips": int(len(test_idx)),
            "classes_seen": [class_names[c] for c in seen], "classes_missing": missing,
            "best_reachable_top1": test_in_seen,
            "top1_mean": trainer.mean_std(top1)[0], "top1_std": trainer.mean_std(top1)[1],
            "top5_mean": trainer.mean_std(top5)[0] if top5 else None,
            "top5_std": trainer.mean_std(top5)[1] if top5 else None, "runs": runs,
            "confusion_csv": base + ".csv"}
    per_view = results["train_views"]
    results["average_top1"] = float(np.mean([v["top1_mean"] for v in per_view.values()]))
    t5 = [v["top5_mean"] for v in per_view.values() if v["top5_mean"] is not None]
    results["average_top5"] = float(np.mean(t5)) if t5 else None
    # Std over runs of the per-run average over training views (the "Average" column's ±).
    results["run_std_of_average_top1"] = trainer.mean_std(
        [np.mean([v["runs"][i]["top1"] for v in per_view.values()]) for i in range(len(seeds))])[1]
    records.write_results(output_dir, results, "results.json", markdown_table(results), "table.md")
    return results


def _pct(mean, std=None, with_std=True):
    if mean is None:
        return "–"
    return f"{100 * mean:.2f} ± {100 * std:.2f}" if with_std and std is not None else \
        f"{100 * mean:.2f}"


def markdown_table(results):
    """The paper's layout: Table 1/3 (single-shot: one column per training view + average),
    Table 2/4 (full: one accuracy), Table 8/9 (limited: one accuracy at the fraction)."""
    views = results["train_views"]
    ntu = results["dataset"] == "ntu_rgbd"
    method = results["method"]
    if results["setting"] == "single_shot":
        cols = list(views)
        head = "| Method | " + " | ".join(cols) + " | Average |"
        cells = []
        for v in cols:
            r = views[v]
            cell = _pct(r["top1_mean"], r["top1_std"])
            if ntu:
                cell += f" / {_pct(r['top5_mean'], r['top5_std'])}"
            cells.append(cell)
        avg = _pct(results["average_top1"], results["run_std_of_average_top1"])
        if ntu and results["average_top5"] is not None:
            avg += f" / {_pct(results['average_top5'], with_std=False)}"
        lines = [head, "|---|" + "---|" * (len(cols) + 1),
                 f"| {method} | " + " | ".join(cells) + f" | {avg} |"]
        lines.append("")
        lines.append("Per test view (top-1, mean over runs), rows = training view:")
        test_views = sorted({tv for r in views.values() for run in r["runs"]
                             for tv in run["per_test_view_top1"]})
        lines.append("| train \\ test | " + " | ".join(test_views) + " |")
        lines.append("|---|" + "---|" * len(test_views))
        for v, r in views.items():
            vals = []
            for tv in test_views:
                xs = [run["per_test_view_top1"].get(tv) for run in r["runs"]]
                xs = [x for x in xs if x is not None]
                vals.append(_pct(float(np.mean(xs)), with_std=False) if xs else "–")
            lines.append(f"| {v} | " + " | ".join(vals) + " |")
        missing = {v: r["classes_missing"] for v, r in views.items() if r["classes_missing"]}
        if missing:
            lines.append("")
            lines.append("Class coverage: " + "; ".join(
                f"{v} lacks {', '.join(m)} (best reachable top-1 "
                f"{100 * views[v]['best_reachable_top1']:.1f}%)" for v, m in missing.items()))
        lines += ["", f"Top-1 (%): {trainer.spread_note(len(results['seeds']))}."]
        return "\n".join(lines)
    r = views["all"]
    label = "Accuracy" if results["setting"] == "full" else f"{100 * results['fraction']:g}% of training clips"
    if ntu:
        label += f" ({results['benchmark']})"
    cell = _pct(r["top1_mean"], r["top1_std"])
    if ntu and r["top5_mean"] is not None:
        cell += f" / top-5 {_pct(r['top5_mean'], r['top5_std'])}"
    return "\n".join([f"| Method | {label} |", "|---|---|", f"| {method} | {cell} |", "",
                      f"Top-1 (%): {trainer.spread_note(len(results['seeds']))}."])
