"""The demo driver reuses a stage's output only when the same settings made it (issue 12)."""
import json

from cv_mim.report import demo


def _counting(folder, name="out.json", value=1):
    calls = []

    def compute():
        calls.append(1)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps({"value": value}))
    return compute, calls


def test_a_stage_is_reused_only_for_the_same_settings(tmp_path):
    folder = tmp_path / "stage"
    compute, calls = _counting(folder)
    key = {"stage": "x", "seed": 0, "steps": 30}
    assert demo._stage(str(folder), key, compute, "out.json") == {"value": 1}
    assert demo._stage(str(folder), dict(key), compute, "out.json") == {"value": 1}
    assert len(calls) == 1  # reused
    (folder / "leftover.txt").write_text("made by the seed-0 run")
    compute2, calls2 = _counting(folder, value=2)
    assert demo._stage(str(folder), dict(key, seed=1), compute2, "out.json") == {"value": 2}
    assert len(calls2) == 1 and not (folder / "leftover.txt").exists()  # redone from scratch


def test_an_interrupted_stage_is_redone_and_unlabelled_output_is_not_trusted(tmp_path):
    folder = tmp_path / "stage"
    folder.mkdir()
    (folder / "out.json").write_text(json.dumps({"value": "old run, settings unknown"}))
    compute, calls = _counting(folder, value=3)
    assert demo._stage(str(folder), {"stage": "x"}, compute, "out.json") == {"value": 3}
    assert calls == [1]

    def crash():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "partial").write_text("half")
        raise KeyboardInterrupt

    other = {"stage": "x", "seed": 5}
    try:
        demo._stage(str(folder), other, crash, "out.json")
    except KeyboardInterrupt:
        pass
    compute, calls = _counting(folder, value=4)
    assert demo._stage(str(folder), other, compute, "out.json") == {"value": 4}
    assert calls == [1] and not (folder / "partial").exists()


def test_a_resumable_stage_keeps_its_partial_output_for_the_same_settings(tmp_path):
    folder = tmp_path / "model"
    key = {"stage": "pretrain", "steps": 100}
    assert demo._claim(str(folder), key, resumable=True) is False
    (folder / "ckpt-50.index").write_text("checkpoint of an interrupted run")
    assert demo._claim(str(folder), key, resumable=True) is False  # not complete, but kept
    assert (folder / "ckpt-50.index").exists()
    demo._complete(str(folder), key)
    assert demo._claim(str(folder), key, resumable=True) is True
    assert demo._claim(str(folder), dict(key, steps=200), resumable=True) is False
    assert not (folder / "ckpt-50.index").exists()  # other settings: started over


def _retrieval_entry(probe=None, pairs=None):
    mean = {"pmpjpe": {"1": 0.5, "5": 0.7, "10": 0.8}, "exact": {"1": 0.1}}
    entry = {"threshold": 0.1,
             "features": {f: {"mean": mean} for f in ("pose_embedding", "view_embedding", "raw_2d")}}
    if probe is not None:
        entry["view_probe"] = {"pose_embedding": probe}
    if pairs is not None:
        entry["camera_pairs"] = pairs
    return entry


def test_report_shows_z_p_view_predictability_and_tolerates_older_outputs():
    from cv_mim.report import report
    methods = {"cv_mim": {"retrieval": _retrieval_entry({"accuracy": 0.826, "chance": 0.25}),
                          "view_classification": {"features": {
                              "raw": {"accuracy_mean": 0.6, "accuracy_std": None},
                              "view_embedding": {"accuracy_mean": 0.7, "accuracy_std": None},
                              "pose_embedding": {"accuracy_mean": 0.565, "accuracy_std": None,
                                                 "chance": 0.28}}}},
               "autoencoder": {"retrieval": _retrieval_entry(),  # made before the probe existed
                               "view_classification": {"features": {
                                   "raw": {"accuracy_mean": 0.6, "accuracy_std": None},
                                   "view_embedding": {"accuracy_mean": 0.5,
                                                      "accuracy_std": None}}}}}
    table = report._retrieval_table(methods, ["autoencoder", "cv_mim"])
    assert table.splitlines()[2].endswith("| – |") and table.splitlines()[3].endswith("| 82.6 (25) |")
    table10, raw = report._table10(methods, ["autoencoder", "cv_mim"])
    assert raw == 0.6
    assert table10.splitlines()[-1].startswith("| from z_p instead (lower = more view-invariant; "
                                               "chance 28.0) | | – | 56.50 |")
    assert report._pair_lines(methods) == []  # no angles: no per-pair table
    methods["cv_mim"]["retrieval"]["camera_pairs"] = [
        {"cameras": ["a", "b"], "axis_angle_deg": 46.0, "hit1": {"pose_embedding": 0.8}}]
    assert "| a – b | 46 | 80.0 |" in "\n".join(report._pair_lines(methods))


def test_report_links_the_embedding_map_when_retrieval_drew_it(tmp_path):
    from cv_mim.downstream import retrieval
    from cv_mim.report import report
    folder = tmp_path / "retrieval" / "cv_mim"
    folder.mkdir(parents=True)
    methods = {"cv_mim": {}}
    assert not any("embedding map" in line for line in report._figure_lines(str(tmp_path),
                                                                            methods)[0])
    (folder / retrieval.EMBEDDING_MAP).write_bytes(b"png")
    lines = report._figure_lines(str(tmp_path), methods)[0]
    assert f"![CV-MIM embedding map](retrieval/cv_mim/{retrieval.EMBEDDING_MAP})" in lines
