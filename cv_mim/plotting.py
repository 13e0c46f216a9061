"""Figures: matplotlib set up once (headless ``Agg``), and the figures several stages share.

A leaf utility: any stage may import it; it imports nothing of cv_mim. Files are written through
``tf.io.gfile`` (:func:`save_figure`), so output dirs may be ``gs://`` paths.
"""

import csv
import io

import numpy as np
import tensorflow as tf


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend (imported on first use: matplotlib is slow to
    import and most library calls draw nothing)."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    return plt


def save_figure(fig, path, dpi=110):
    """Writes a matplotlib figure as PNG to any ``tf.io.gfile`` path and closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())


def write_confusion(path_base, confusion, class_names, *, title=None):
    """``<path_base>.csv`` (counts, true class per row) and ``<path_base>.png``.

    The figure is row-normalised (each true class sums to 1) with the counts written in the cells; its
    title is ``title`` plus the accuracy the matrix implies (trace / total).
    """
    confusion = np.asarray(confusion)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["true\\predicted"] + list(class_names))
    for name, row in zip(class_names, confusion):
        writer.writerow([name] + [int(x) for x in row])
    with tf.io.gfile.GFile(path_base + ".csv", "w") as f:
        f.write(text.getvalue())
    plt = pyplot()
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(0.45 * k + 2.5, 0.45 * k + 2.4))
    norm = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(class_names, rotation=90, fontsize=7)
    ax.set_yticklabels(class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = float(np.trace(confusion)) / max(float(confusion.sum()), 1.0)
    ax.set_title(f"{title + ' — ' if title else ''}accuracy {100 * accuracy:.1f}%", fontsize=8)
    for i in range(k):
        for j in range(k):
            if confusion[i, j]:
                ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    save_figure(fig, path_base + ".png")
