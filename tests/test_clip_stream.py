"""The streaming clip iterator (issue 17): ``registry.iter_clips`` reads one file at a time, gives
what ``load_clips`` and the per-dataset loaders give, and ``embed_dataset`` consumes it chunk by
chunk."""
import dataclasses
import json
import pathlib
import pickle
import shutil

import numpy as np
import pose_fixtures
import pytest

from cv_mim.data import clips as clips_lib
from cv_mim.data import ntu_rgbd
from cv_mim.data import ntu_skeleton
from cv_mim.data import penn_action
from cv_mim.data import registry
from cv_mim.serving import embed as embed_lib
from cv_mim.serving import embedder as embedder_lib
from cv_mim.serving import embedding_file
from cv_mim.serving import pretrained

TINY = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "synthetic_tiny"
PENN = TINY / "penn_action" / "labels"
NTU = TINY / "ntu_rgbd" / "nturgb+d_skeletons"


def _pickle(path):
    """A PYSKL-style pickle of 6 COCO-17 clips (labels 0-2, xsub split, NTU names)."""
    annotations = []
    for k in range(6):
        native = pose_fixtures.to_native(pose_fixtures.walking_clip(8 + k, seed=k), "coco17")[None]
        annotations.append({"frame_dir": f"S001C00{1 + k % 2}P00{1 + k // 2}R001A00{1 + k % 3}",
                            "label": k % 3, "keypoint": native,
                            "keypoint_score": np.full(native.shape[:-1], 0.9, np.float32)})
    names = [a["frame_dir"] for a in annotations]
    with open(path, "wb") as f:
        pickle.dump({"split": {"xsub_train": names[:4], "xsub_val": names[4:]},
                     "annotations": annotations}, f)
    return str(path)


def _npy(path):
    arr = np.stack([pose_fixtures.walking_clip(10, seed=s) for s in range(3)])
    arr[1, 2, 4] = np.nan
    np.save(path, arr)
    return str(path)


CASES = {
    "penn_action": lambda tmp: (str(PENN), {}),
    "penn_action_rules": lambda tmp: (str(PENN), {"min_visible_fraction": 0.6,
                                                  "invisible_joints": "missing", "num_frames": 40}),
    "ntu_rgbd": lambda tmp: (str(NTU), {"num_frames": 50}),
    "h36m": lambda tmp: (str(TINY / "h36m"), {"subjects": ["S1"]}),
    "npy": lambda tmp: (_npy(tmp / "clips.npy"), {}),
    "skeleton_pickle": lambda tmp: (_pickle(tmp / "mine.pkl"), {"num_frames": 12}),
}


def _assert_same_clip_sets(a, b):
    for field in dataclasses.fields(registry.ClipSet):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name in ("keypoints", "masks"):
            assert len(x) == len(y)
            for u, v in zip(x, y):
                assert u.dtype == v.dtype and np.array_equal(u, v, equal_nan=True)
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), field.name
        else:
            assert x == y, field.name


@pytest.mark.parametrize("case", sorted(CASES))
def test_stream_gives_what_load_clips_gives(case, tmp_path):
    path, options = CASES[case](tmp_path)
    dataset = case.replace("_rules", "")
    eager = registry.load_clips(dataset, path, **options)
    stream = registry.iter_clips(dataset, path, **options)
    kept = [(c.keypoints, c.mask) for c in stream]
    _assert_same_clip_sets(stream.clip_set([k for k, _ in kept], [m for _, m in kept]), eager)
    fields = registry.iter_clips(dataset, path, **options)
    for _ in fields:
        pass
    light = fields.clip_set()  # the dataset-level fields without keeping any keypoints
    assert light.keypoints == [] and light.masks == []
    _assert_same_clip_sets(dataclasses.replace(light, keypoints=eager.keypoints,
                                               masks=eager.masks), eager)


def test_stream_and_the_per_dataset_loaders_agree():
    penn = penn_action.load_penn_action(PENN, num_frames=40, min_visible_fraction=0.6)
    clips = registry.load_clips("penn_action", str(PENN), num_frames=40, min_visible_fraction=0.6)
    assert np.array_equal(np.stack(clips.keypoints), penn.keypoints)
    assert np.array_equal(np.stack(clips.masks), penn.mask)
    assert clips.class_names == penn.class_names and np.array_equal(clips.labels, penn.labels)
    assert list(clips.views) == [penn.view_names[v] for v in penn.views]
    assert list(clips.split) == ["train" if t else "test" for t in penn.train]
    assert clips.info["excluded"] == penn.excluded and penn.excluded  # 0.6 removes one
    ntu = ntu_rgbd.load_ntu_rgbd(NTU, num_frames=50)
    clips = registry.load_clips("ntu_rgbd", str(NTU), num_frames=50)
    assert np.array_equal(np.stack(clips.keypoints), ntu.keypoints)
    assert clips.class_names == ntu.class_names and np.array_equal(clips.labels, ntu.labels)
    assert np.array_equal(clips.cameras, ntu.cameras)
    assert list(clips.views) == [ntu_rgbd.NTU_VIEW_NAMES[v] if v >= 0 else "" for v in ntu.views]
    assert ntu.class_names == tuple(f"A{a:03d}" for a in sorted(set(ntu.actions.tolist())))


def test_stream_reads_one_file_per_clip(monkeypatch):
    reads = []
    real_mat, real_skeleton = penn_action.read_penn_mat, ntu_skeleton.read_skeleton
    monkeypatch.setattr(penn_action, "read_penn_mat", lambda p: reads.append(p) or real_mat(p))
    monkeypatch.setattr(ntu_skeleton, "read_skeleton",
                        lambda p: reads.append(p) or real_skeleton(p))
    for dataset, path in (("penn_action", PENN), ("ntu_rgbd", NTU)):
        reads.clear()
        stream = iter(registry.iter_clips(dataset, str(path)))
        assert not reads  # nothing is read before the first clip is asked for
        first = next(stream)
        assert len(reads) == 1 and pathlib.Path(reads[0]).stem == first.clip_id
        second = next(stream)
        assert pathlib.Path(reads[-1]).stem == second.clip_id


def test_stream_is_read_once_and_its_fields_need_the_end():
    stream = registry.iter_clips("penn_action", str(PENN))
    clips = iter(stream)
    next(clips)
    with pytest.raises(RuntimeError, match="read to its end"):
        stream.clip_set()
    with pytest.raises(RuntimeError, match="only once"):
        iter(stream).__next__()


def test_stream_errors_name_the_file_and_skipping_is_recorded(tmp_path):
    folder = tmp_path / "labels"
    shutil.copytree(PENN, folder)
    bad = sorted(folder.glob("*.mat"))[5]
    bad.write_bytes(b"not a mat file")
    stream = iter(registry.iter_clips("penn_action", str(folder)))
    for _ in range(3):
        next(stream)  # the clips before the bad file come through
    with pytest.raises(ValueError, match=f"{bad}: cannot be read as a MATLAB"):
        list(stream)
    skipping = registry.iter_clips("penn_action", str(folder), skip_malformed=True)
    ids = [c.clip_id for c in skipping]
    assert bad.stem not in ids
    assert [p for p, _ in skipping.clip_set().info["skipped"]] == [str(bad)]
    with pytest.raises(FileNotFoundError, match="not found"):  # checked at the call, not lazily
        registry.iter_clips("penn_action", str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .mat label files"):
        registry.iter_clips("penn_action", str(tmp_path / "empty"))


def test_sorted_labels():
    labels, names = clips_lib.sorted_labels(["b", "a", "b", "c"])
    assert names == ("a", "b", "c") and labels.tolist() == [1, 0, 1, 2]
    assert labels.dtype == np.int64


@pytest.fixture(scope="module")
def shipped():
    return pretrained.export_dir()


def _eager_reference(export_dir, dataset, path, batch_size, flip_modes, **options):
    """What embed_dataset wrote before the stream: every clip loaded, then the same chunks."""
    clips = registry.load_clips(dataset, path, **options)
    embedder = embedder_lib.Embedder(export_dir)
    lengths = [len(k) for k in clips.keypoints]
    bounds, start, frames = [], 0, 0
    for c, n in enumerate(lengths):
        frames += n
        if frames >= batch_size:
            bounds.append((start, c + 1))
            start, frames = c + 1, 0
    if start < len(lengths):
        bounds.append((start, len(lengths)))
    out = []
    for a, b in bounds:
        kp = np.concatenate(clips.keypoints[a:b]).astype(np.float32)
        mask = np.concatenate(clips.masks[a:b]).astype(np.float32)
        features, has_pose = embed_lib._embed_chunk(  # pylint: disable=protected-access
            embedder, kp, mask, flip_modes, batch_size, f"{dataset} keypoints of {path}")
        offsets = np.cumsum([0] + lengths[a:b])
        for c in range(b - a):
            s = slice(offsets[c], offsets[c + 1])
            out.append(({k: v[s] for k, v in features.items()}, mask[s] > 0, has_pose[s]))
    return clips, out


@pytest.mark.parametrize("dataset,batch_size", [("penn_action", 700), ("ntu_rgbd", 8192)])
def test_streamed_embedding_equals_the_eager_one(shipped, tmp_path, dataset, batch_size):
    path = str(PENN if dataset == "penn_action" else NTU)
    flips = ("keep", "swap")
    out = embed_lib.embed_dataset(shipped, dataset, path, str(tmp_path / "e.npz"),
                                  flip_modes=flips, batch_size=batch_size, feature_dtype="float32")
    clips, expected = _eager_reference(shipped, dataset, path, batch_size, flips)
    emb = embedding_file.load_embeddings(out)
    assert emb.num_clips == len(expected) > 1
    for field in embedding_file.CLIP_FIELDS:
        want = np.array(clips.class_names) if field == "class_names" else getattr(clips, field)
        assert np.array_equal(emb[field], want), field
    assert emb.metadata["loader_info"] == json.loads(
        json.dumps(clips.info, default=str))
    for c, (features, mask, has_pose) in enumerate(expected):
        record = emb.clip(c)
        assert np.array_equal(record["mask"], mask) and np.array_equal(record["has_pose"], has_pose)
        for name, value in features.items():
            assert np.array_equal(record[name], value, equal_nan=True), (c, name)


def test_embedding_a_bad_file_late_writes_nothing(shipped, tmp_path):
    folder = tmp_path / "labels"
    shutil.copytree(PENN, folder)
    bad = sorted(folder.glob("*.mat"))[-1]
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=f"{bad}: cannot be read"):
        embed_lib.embed_dataset(shipped, "penn_action", str(folder), str(tmp_path / "e.npz"),
                                batch_size=700)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels"]  # no file, no temporary
