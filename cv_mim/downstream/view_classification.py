"""View classification (App. C, Table 10): a linear classifier predicts each frame's view.

Every frame of a Penn Action clip is labelled with its clip's view (front/back/left/right). A linear
classifier is trained on the frames of the official training clips and evaluated on the frames of the
test clips, on the view embedding z_v of an export and, as the baseline, on the raw normalised 2D
keypoints (26-d). Optimisation as App. C: AdaGrad, learning rate 1e-2, batch 64, 1e4 iterations.
Your own clips (detector readers) work the same way: their ``views`` and ``split`` fields (from the file
or a CSV sidecar); frames with nobody detected are left out.
"""

import logging
import os

import numpy as np
import tensorflow as tf

from cv_mim import plotting
from cv_mim import records
from cv_mim.data import penn_action
from cv_mim.downstream import trainer
from cv_mim.serving import embedding_file

log = logging.getLogger("cv_mim.view_classification")


FEATURES = ("view_embedding", "raw", "pose_embedding")


# Table 10 compares z_v with raw 2D; z_p is probed too, as the invariance number: a view-invariant
# pose embedding leaves the classifier at chance.
DEFAULT_FEATURES = FEATURES


def frame_dataset(emb: embedding_file.EmbeddingFile, feature):
    """(features [F, D] in the file's dtype, view labels [F], split [F], view names) of every frame
    with somebody detected; one feature is read, clip by clip."""
    if feature not in FEATURES:
        raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
    views = emb["views"].astype(str)
    view_names = tuple(v for v in penn_action.PENN_VIEWS if v in set(views)) or \
        tuple(sorted(set(views)))
    if not all(views):
        raise ValueError("the embedding file has clips without a view label")
    splits = emb["split"].astype(str)
    xs, ys, split = [], [], []
    for c in range(emb.num_clips):
        x = emb.clip_feature(c, embedding_file.FEATURE_KEYS[feature])
        x = x.reshape(len(x), -1)
        seen = np.isfinite(x).all(-1)  # frames with nobody detected are NaN: not classified
        xs.append(x[seen])
        ys.append(np.full(int(seen.sum()), view_names.index(views[c]), np.int64))
        split.append(np.full(int(seen.sum()), splits[c]))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(split), view_names


def train_linear(x, y, num_classes, *, steps=10_000, batch_size=64, learning_rate=1e-2, seed=0,
                 writer=None):
    """Linear softmax classifier trained with AdaGrad on (x, y); returns the Keras layer and the
    last loss. ``writer``: optional TensorBoard writer of ``train/loss`` (five times per run)."""
    tf.keras.utils.set_random_seed(seed)
    layer = tf.keras.layers.Dense(num_classes, name="linear_view_classifier")
    layer.build((None, x.shape[1]))
    opt = tf.keras.optimizers.Adagrad(learning_rate)
    opt.build(layer.trainable_variables)
    xs, ys = tf.constant(x), tf.constant(y)  # x in the file's dtype (float16: half the memory)

    @tf.function
    def step(idx):
        with tf.GradientTape() as tape:
            logits = layer(tf.cast(tf.gather(xs, idx), tf.float32))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                tf.gather(ys, idx), logits))
        grads = tape.gradient(loss, layer.trainable_variables)
        opt.apply_gradients(zip(grads, layer.trainable_variables))
        return loss

    rng = np.random.default_rng(seed)
    loss = None
    for i in range(steps):
        loss = step(tf.constant(rng.integers(0, len(x), batch_size)))
        if (i + 1) % max(1, steps // 5) == 0:
            log.info("linear view classifier step %d/%d loss %.4f", i + 1, steps, float(loss))
            if writer is not None:
                trainer.write_scalars(writer, i + 1, {"train/loss": float(loss)})
    return layer, float(loss) if loss is not None else float("nan")


def predict(layer, x, batch_size=65536):
    """Predicted classes of the frames ``x`` [F, D], in batches (float32 one batch at a time)."""
    return np.concatenate([np.argmax(layer(tf.constant(x[i:i + batch_size], tf.float32)).numpy(),
                                     axis=1) for i in range(0, len(x), batch_size)])


def run(*, embeddings, output_dir, features=DEFAULT_FEATURES, steps=10_000, batch_size=64,
        learning_rate=1e-2, seeds=(0,), method=None):
    """Trains and evaluates the linear view classifier; writes results JSON and a table.

    Raises:
      ValueError: naming the flag for steps / batch_size < 1, a learning rate that is not a finite
        number > 0 or no seeds (an untrained classifier's accuracy is not a result).
    """
    trainer.check_optimisation(steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                               seeds=seeds)

    emb = (embeddings if isinstance(embeddings, embedding_file.EmbeddingFile)
           else embedding_file.load_embeddings(embeddings))
    if emb.metadata.get("dataset") in ("ntu_rgbd", "h36m", "npy"):
        raise ValueError(f"view classification (Table 10) needs clips with a view and a train/test "
                         f"split (Penn Action, or your own clips); this file holds "
                         f"{emb.metadata.get('dataset')!r}")
    tf.io.gfile.makedirs(output_dir)
    method = method or emb.metadata.get("export", {}).get("algorithm", "embedding")
    results = {"method": method, "steps": steps, "batch_size": batch_size,
               "learning_rate": learning_rate, "seeds": list(seeds), "features": {}}
    for feature in features:
        x, y, split, view_names = frame_dataset(emb, feature)
        train, test = split == "train", split == "test"
        if not train.any() or not test.any():
            raise ValueError("view classification needs training and test clips (the 'split' field)")
        accs, confusion = [], np.zeros((len(view_names),) * 2, np.int64)
        for seed in seeds:
            writer = trainer.event_writer(os.path.join(output_dir, "events",
                                                       f"{feature}_seed{seed}"))
            layer, loss = train_linear(x[train], y[train], len(view_names), steps=steps,
                                       batch_size=batch_size, learning_rate=learning_rate,
                                       seed=seed, writer=writer)
            pred = predict(layer, x[test])
            accs.append(float((pred == y[test]).mean()))
            # Accuracy overall and per true view (the per-view rows of the confusion matrix).
            trainer.write_scalars(writer, steps, dict(
                {"eval/accuracy": accs[-1]},
                **{f"eval/accuracy/{view_names[v]}": float((pred[y[test] == v] == v).mean())
                   for v in np.unique(y[test])}))
            np.add.at(confusion, (y[test], pred), 1)
        base = os.path.join(output_dir, f"view_confusion_{feature}")
        plotting.write_confusion(base, confusion, view_names,
                                 title=f"view classification, {feature}")
        mean, std = trainer.mean_std(accs)  # sample std, as the action-recognition tables
        results["features"][feature] = {
            "accuracy_mean": mean, "accuracy_std": std,
            "runs": accs, "confusion": confusion.tolist(), "view_names": list(view_names),
            "num_train_frames": int(train.sum()), "num_test_frames": int(test.sum()),
            "chance": float(np.bincount(y[test]).max() / test.sum())}
    records.write_results(output_dir, results, "view_results.json", markdown_table(results),
                          "view_table.md")
    return results


def markdown_table(results):
    """Table 10 layout: one column per input, accuracy (%)."""
    names = {"raw": "2D Pose", "view_embedding": f"{results['method']} (z_v)",
             "pose_embedding": f"{results['method']} (z_p)"}
    feats = list(results["features"])
    head = "| Methods | " + " | ".join(names[f] for f in feats) + " |"
    cells = []
    for f in feats:
        r = results["features"][f]
        std = r["accuracy_std"]
        cells.append(f"{100 * r['accuracy_mean']:.2f}"
                     + ("" if std is None else f" ± {100 * std:.2f}"))
    row = "| Accuracy (%) | " + " | ".join(cells) + " |"
    note = trainer.spread_note(len(results["features"][feats[0]]["runs"])) if feats else ""
    lines = [head, "|---|" + "---|" * len(feats), row, "", f"Accuracy: {note}."]
    if "pose_embedding" in results["features"]:
        r = results["features"]["pose_embedding"]
        lines.append(f"z_p's view predictability (lower = more view-invariant; a view-invariant z_p "
                     f"scores chance, the majority view's share of the test frames: "
                     f"{100 * r['chance']:.1f}%): {100 * r['accuracy_mean']:.2f}%.")
    return "\n".join(lines)
