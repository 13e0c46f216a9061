"""Every model / export / output path through tf.io.gfile: the whole chain on TF's in-memory ``ram://``.

``ram://`` lives in this process only, so the chain runs through the binaries' library ``run``
functions (the binaries are thin flag wrappers around them). Nothing may land on the local disk: the
test runs in an empty working directory and checks that it stays empty.
"""
import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from cv_mim.algorithms import config as config_lib
from cv_mim.downstream import action_recognition as action_lib
from cv_mim.downstream import retrieval as retrieval_lib
from cv_mim.downstream import view_classification as view_lib
from cv_mim.serving import embed as embed_lib
from cv_mim.serving import embedding_file
from cv_mim.serving import export as export_lib
from cv_mim.training import loop
from cv_mim.training import sources

TINY = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "synthetic_tiny"
ROOT = "ram://cv_mim_gfile_test"


@pytest.mark.slow
def test_pretrain_export_embed_and_downstream_on_ram(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model_dir, export_dir = f"{ROOT}/model", f"{ROOT}/exports/cv_mim"
    src = sources.load_pair_source("h36m", data_dir=str(TINY / "h36m"), subjects=("S1",))
    loop.run(model_dir=model_dir, config=config_lib.ModelConfig(hidden_dim=32), source=src,
             batch_size=16, num_steps=3, checkpoint_every=2, summary_every=1)
    assert tf.io.gfile.glob(f"{model_dir}/ckpt-*.index")
    # A temporary left by a killed export (no pid: always stale) is removed by the next export.
    stale = f"{ROOT}/exports/.cv_mim.tmp-0badf00d"
    tf.io.gfile.makedirs(stale)
    export_lib.export(model_dir, export_dir)
    assert not tf.io.gfile.exists(stale)
    assert {"saved_model.pb", export_lib.METADATA_FILE} <= set(tf.io.gfile.listdir(export_dir))

    emb_path = embed_lib.embed_dataset(export_dir, "penn_action", str(TINY / "penn_action" / "labels"),
                                       f"{ROOT}/embeddings/penn.npz", flip_modes=("swap",))
    emb = embedding_file.load_embeddings(emb_path)
    assert emb.num_clips == 64 and emb.metadata["export_dir"] == export_dir
    action = action_lib.run(embeddings=emb_path, output_dir=f"{ROOT}/action", setting="full",
                            features="embedding", steps=3, flip_mode="swap", log_every=1000)
    with tf.io.gfile.GFile(f"{ROOT}/action/results.json") as f:
        assert json.load(f)["train_views"]["all"]["top1_mean"] == action["train_views"]["all"][
            "top1_mean"]
    assert {"table.md", "confusion_all.csv", "confusion_all.png"} <= set(
        tf.io.gfile.listdir(f"{ROOT}/action"))
    with tf.io.gfile.GFile(f"{ROOT}/action/confusion_all.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    view_lib.run(embeddings=emb_path, output_dir=f"{ROOT}/view", steps=5,
                 features=("view_embedding",))
    assert "view_results.json" in tf.io.gfile.listdir(f"{ROOT}/view")
    retrieval_lib.run(export_dir=export_dir, output_dir=f"{ROOT}/retrieval",
                      data_dir=str(TINY / "h36m"), subjects=("S1",), frame_stride=8)
    assert "retrieval_results.json" in tf.io.gfile.listdir(f"{ROOT}/retrieval")
    assert list(tmp_path.iterdir()) == []  # nothing went to the local disk
    tf.io.gfile.rmtree(ROOT)


def test_confusion_figure_and_csv_on_ram():
    from cv_mim import plotting  # pylint: disable=import-outside-toplevel
    tf.io.gfile.makedirs(f"{ROOT}_plot")
    plotting.write_confusion(f"{ROOT}_plot/c", np.array([[2, 1], [0, 3]]), ["a", "b"])
    with tf.io.gfile.GFile(f"{ROOT}_plot/c.csv") as f:
        assert f.read().splitlines() == ["true\\predicted,a,b", "a,2,1", "b,0,3"]
    tf.io.gfile.rmtree(f"{ROOT}_plot")
