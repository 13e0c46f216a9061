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
