"""Detector-format readers on small files written here in the real formats (issue 14).

Every test writes the file from known canonical poses (tests/pose_fixtures.py), reads it through
``registry.load_clips`` (the path of ``embed --dataset=NAME``) and compares with the poses it wrote.
"""
import json
import os
import pickle

import numpy as np
import pose_fixtures
import pytest

from cv_mim.data import registry
from cv_mim.keypoints import plausibility
from cv_mim.keypoints import profiles


def _triplets(native, scores):
    return np.concatenate([native, scores[:, None]], 1).reshape(-1).tolist()


def _openpose_frame(path, people):
    """people: list of (native [J, 2], scores [J], person_id)."""
    doc = {"version": 1.3, "people": [
        {"person_id": [pid], "pose_keypoints_2d": _triplets(kp, sc), "face_keypoints_2d": [],
         "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [], "pose_keypoints_3d": []}
        for kp, sc, pid in people]}
    path.write_text(json.dumps(doc))


def _small(kp13, scale=0.4):
    """A smaller person (a distractor) at the image's left."""
    return (kp13 - kp13.mean(0)) * scale + np.array([80.0, 300.0], np.float32)


def _write_openpose_clip(folder, kp13, layout, *, empty=(), ids=None, undetected=None):
    folder.mkdir(parents=True, exist_ok=True)
    big = pose_fixtures.to_native(kp13, layout)
    small = pose_fixtures.to_native(np.stack([_small(k) for k in kp13]), layout)
    for t in range(len(kp13)):
        sc = np.full(big.shape[1], 0.8, np.float32)
        kp = big[t].copy()
        if undetected is not None and t == undetected[0]:
            kp[undetected[1]] = 0.0  # OpenPose writes 0, 0, 0 for an undetected joint
            sc[undetected[1]] = 0.0
        people = [] if t in empty else [(small[t], np.full(big.shape[1], 0.9), -1 if ids is None
                                         else ids[1]), (kp, sc, -1 if ids is None else ids[0])]
        _openpose_frame(folder / f"video_{t:012d}_keypoints.json", people)


def test_openpose_body25b_largest_person_missing_frames_and_joints(tmp_path):
    kp13 = pose_fixtures.walking_clip(12)
    native_idx = profiles.LAYOUT_TO_CANONICAL["openpose25b"]
    _write_openpose_clip(tmp_path / "take", kp13, "openpose25b", empty=(3, 10),
                         undetected=(5, native_idx[6]))
    clips = registry.load_clips("openpose", str(tmp_path / "take"), layout="BODY_25B")
    assert list(clips.clip_ids) == ["take"] and clips.info["layout"] == "openpose25b"
    kp, mask = clips.keypoints[0], clips.masks[0]
    assert kp.shape == (12, 13, 2)
    present = np.ones((12, 13), bool)
    present[[3, 10]] = False
    present[5, 6] = False  # right wrist undetected in frame 5
    np.testing.assert_array_equal(mask, present)
    np.testing.assert_allclose(kp[present], kp13[present], rtol=0, atol=1e-3)
    assert clips.info["missing_frames"] == 2 and clips.info["frames"] == 12


def test_openpose_frames_in_numeric_order_and_person_id_followed(tmp_path):
    kp13 = pose_fixtures.walking_clip(12)
    folder = tmp_path / "take"
    _write_openpose_clip(folder, kp13, "openpose25", ids=(7, 3))
    # From frame 6 on the distractor (id 3) is bigger than person 7, who is absent in frame 9.
    for t in range(6, 12):
        f = folder / f"video_{t:012d}_keypoints.json"
        doc = json.loads(f.read_text())
        doc["people"][0]["pose_keypoints_2d"] = _triplets(
            pose_fixtures.to_native((kp13[t:t + 1] - 300) * 2 + 300, "openpose25")[0],
            np.full(25, 0.9))
        if t == 9:
            doc["people"] = doc["people"][:1]
        f.write_text(json.dumps(doc))
    # Renamed so that lexical order differs from numeric order.
    for t in range(12):
        os.rename(folder / f"video_{t:012d}_keypoints.json", folder / f"frame{t}.json")
    clips = registry.load_clips("openpose", str(folder), layout="body25")
    mask = clips.masks[0]
    assert mask[9].sum() == 0 and mask[np.arange(12) != 9].all()
    keep = np.arange(12) != 9
    np.testing.assert_allclose(clips.keypoints[0][keep], kp13[keep], atol=1e-3)


def test_openpose_needs_a_layout_and_refuses_body25_named_body25b(tmp_path):
    _write_openpose_clip(tmp_path / "take", pose_fixtures.walking_clip(), "openpose25")
    with pytest.raises(ValueError, match="name it with --layout.*openpose25b"):
        registry.load_clips("openpose", str(tmp_path / "take"))
    with pytest.raises(plausibility.LayoutError, match="'openpose25b'.*but like 'openpose25'"):
        registry.load_clips("openpose", str(tmp_path / "take"), layout="body25b")
    with pytest.raises(ValueError, match="--layout must be one of"):
        registry.load_clips("openpose", str(tmp_path / "take"), layout="body_99")


def test_openpose_folder_of_clips_and_synchronised_cameras(tmp_path):
    kp13 = pose_fixtures.walking_clip(8)
    for cam, shift in (("cam1", 0.0), ("cam0", 50.0)):
        _write_openpose_clip(tmp_path / "multi" / cam, kp13 + shift, "openpose18")
    clips = registry.load_clips("openpose_multiview", str(tmp_path / "multi"), layout="coco18")
    assert list(clips.clip_ids) == ["cam0", "cam1"] and list(clips.views) == ["cam0", "cam1"]
    np.testing.assert_allclose(clips.keypoints[0], kp13 + 50.0, atol=1e-3)
    plain = registry.load_clips("openpose", str(tmp_path / "multi"), layout="coco18")
    assert list(plain.clip_ids) == ["cam0", "cam1"] and list(plain.views) == ["", ""]
    os.remove(tmp_path / "multi" / "cam1" / f"video_{7:012d}_keypoints.json")
    with pytest.raises(ValueError, match="different frame counts"):
        registry.load_clips("openpose_multiview", str(tmp_path / "multi"), layout="coco18")
    with pytest.raises(ValueError, match="one sub-folder"):
        registry.load_clips("openpose_multiview", str(tmp_path / "multi" / "cam0"),
                            layout="coco18")


def test_openpose_malformed_file_is_a_clear_error(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "f_0.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1, 2]}]}))
    with pytest.raises(ValueError, match="not a multiple of 3"):
        registry.load_clips("openpose", str(folder), layout="body25")


def _coco_annotation_file(path, videos):
    """videos: {video_id: canonical clip}; images listed out of order; frame 2 of each unannotated."""
    images, annotations, image_id = [], [], 100
    for video, kp13 in videos.items():
        native = pose_fixtures.to_native(kp13, "coco17")
        for t in reversed(range(len(kp13))):
            image_id += 1
            images.append({"id": image_id, "file_name": f"{video}/{t:06d}.jpg", "video_id": video,
                           "frame_id": t, "width": 640, "height": 480})
            if t == 2:
                continue
            v = np.full(17, 2.0)
            v[9] = 0.0  # left wrist not labelled
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "keypoints": _triplets(native[t], v), "num_keypoints": 16,
                                "bbox": [200, 100, 160, 300], "iscrowd": 0, "area": 48000})
            small = pose_fixtures.to_native(_small(kp13[t])[None], "coco17")[0]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "keypoints": _triplets(small, np.full(17, 2.0)), "num_keypoints": 17,
                                "bbox": [60, 250, 60, 120], "iscrowd": 0, "area": 7200})
    doc = {"images": images, "annotations": annotations, "categories": [
        {"id": 1, "name": "person", "supercategory": "person",
         "keypoints": list(profiles.COCO17_JOINT_NAMES), "skeleton": [[16, 14], [14, 12]]}]}
    path.write_text(json.dumps(doc))


def test_coco_annotation_file_groups_by_video_in_frame_order(tmp_path):
    videos = {"v2": pose_fixtures.walking_clip(6, seed=2), "v1": pose_fixtures.walking_clip(5)}
    path = tmp_path / "person_keypoints_val.json"
    _coco_annotation_file(path, videos)
    clips = registry.load_clips("coco_json", str(path))
    assert list(clips.clip_ids) == ["v1", "v2"] and clips.info["layout"] == "coco17"
    for c, video in enumerate(("v1", "v2")):
        expected = np.ones((len(videos[video]), 13), bool)
        expected[2] = False
        expected[:, 5] &= False  # COCO left wrist = canonical 5, v = 0
        np.testing.assert_array_equal(clips.masks[c], expected)
        np.testing.assert_allclose(clips.keypoints[c][expected], videos[video][expected], atol=1e-3)


def test_coco_result_file_image_id_order_largest_box(tmp_path):
    kp13 = pose_fixtures.walking_clip(10)
    native = pose_fixtures.to_native(kp13, "coco17")
    results = []
    for t in (3, 1, 0, 2, 10, 11, 4, 5, 6, 7, 8, 9):  # image ids; 10, 11 get the same person
        frame = t if t < 10 else t - 10
        sc = np.linspace(0.3, 0.95, 17)
        results.append({"image_id": t, "category_id": 1, "score": 0.7,
                        "keypoints": _triplets(native[frame] if t < 10 else native[frame], sc)})
        small = pose_fixtures.to_native(_small(kp13[frame])[None], "coco17")[0]
        results.append({"image_id": t, "category_id": 1, "score": 0.99,
                        "keypoints": _triplets(small, np.full(17, 0.99))})
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    clips = registry.load_clips("coco_json", str(path), min_score=0.5)
    assert list(clips.clip_ids) == ["results"] and len(clips.keypoints[0]) == 12
    sc13 = np.linspace(0.3, 0.95, 17)[list(profiles.LAYOUT_TO_CANONICAL["coco17"])]
    np.testing.assert_array_equal(clips.masks[0][0], sc13 > 0.5)
    expected = np.concatenate([kp13, kp13[:2]])
    np.testing.assert_allclose(clips.keypoints[0][:, sc13 > 0.5], expected[:, sc13 > 0.5],
                               atol=1e-3)


def _mmpose_instances(native, scores, shift=0.0):
    kp = native + shift
    return {"keypoints": kp.tolist(), "keypoint_scores": scores.tolist(),
            "bbox": [[float(kp[:, 0].min()), float(kp[:, 1].min()), float(kp[:, 0].max()),
                      float(kp[:, 1].max())]], "bbox_score": 0.95}


def test_mmpose_saved_predictions_video_layout_from_meta(tmp_path):
    kp13 = pose_fixtures.walking_clip(7)
    native = pose_fixtures.to_native(kp13, "halpe26")
    small = pose_fixtures.to_native(np.stack([_small(k) for k in kp13]), "halpe26")
    frames = []
    for t in reversed(range(7)):
        insts = [] if t == 4 else [_mmpose_instances(small[t], np.full(26, 0.9)),
                                   _mmpose_instances(native[t], np.full(26, 0.8))]
        frames.append({"frame_id": t + 1, "instances": insts})
    doc = {"meta_info": {"dataset_name": "halpe26", "num_keypoints": 26}, "instance_info": frames}
    (tmp_path / "results_video.json").write_text(json.dumps(doc))
    clips = registry.load_clips("mmpose_json", str(tmp_path / "results_video.json"))
    assert clips.info["layout"] == "halpe26" and list(clips.clip_ids) == ["results_video"]
    assert clips.masks[0][4].sum() == 0 and clips.masks[0][np.arange(7) != 4].all()
    np.testing.assert_allclose(clips.keypoints[0][np.arange(7) != 4],
                               kp13[np.arange(7) != 4], atol=1e-3)


def test_mmpose_inferencer_per_image_folder_needs_layout(tmp_path):
    kp13 = pose_fixtures.walking_clip(5)
    native = pose_fixtures.to_native(kp13, "coco_wholebody133")
    for t in range(5):
        (tmp_path / f"img{t * 5}.json").write_text(
            json.dumps([_mmpose_instances(native[t], np.full(133, 0.6))]))
    with pytest.raises(ValueError, match="--layout"):
        registry.load_clips("mmpose_json", str(tmp_path))
    clips = registry.load_clips("mmpose_json", str(tmp_path), layout="coco_wholebody")
    assert len(clips.keypoints) == 1
    np.testing.assert_allclose(clips.keypoints[0], kp13, atol=1e-3)  # img0, img5, ..., img20


def _pyskl_pickle(path, clips, joints_layout="coco17", payload=None):
    annotations = []
    for name, (kp13, label) in clips.items():
        native = pose_fixtures.to_native(kp13, joints_layout)
        t, v = native.shape[:2]
        kp = np.zeros((2, t, v, 2), np.float32)
        kp[0] = np.stack([pose_fixtures.to_native(_small(k)[None], joints_layout)[0]
                          for k in kp13])
        kp[1] = native
        kp[1, -2:] = 0.0  # PYSKL pads a lost person with zeros
        score = np.full((2, t, v), 0.9, np.float32)
        score[1, -2:] = 0.0
        annotations.append({"frame_dir": name, "label": label, "img_shape": (480, 640),
                            "original_shape": (480, 640), "total_frames": t, "keypoint": kp,
                            "keypoint_score": score})
    doc = payload or {"split": {"xsub_train": [n for n in clips][:1],
                                "xsub_val": [n for n in clips][1:],
                                "xview_train": [n for n in clips][1:]},
                      "annotations": annotations}
    with open(path, "wb") as f:
        pickle.dump(doc, f)


def test_skeleton_pickle_labels_split_ntu_fields_and_padding(tmp_path):
    a, b = pose_fixtures.walking_clip(9), pose_fixtures.walking_clip(9, seed=4)
    path = tmp_path / "ntu60_hrnet.pkl"
    _pyskl_pickle(path, {"S001C002P003R001A005": (a, 4), "S002C001P008R002A010": (b, 9)})
    clips = registry.load_clips("skeleton_pickle", str(path))
    assert clips.info["layout"] == "coco17" and clips.info["split_prefix"] == "xsub"
    assert list(clips.clip_ids) == ["S001C002P003R001A005", "S002C001P008R002A010"]
    assert list(clips.labels) == [4, 9] and clips.class_names == tuple(str(i) for i in range(10))
    assert list(clips.split) == ["train", "test"]
    assert list(clips.subjects) == ["P003", "P008"] and list(clips.views) == ["C2R1", "C1R2"]
    for kp, mask, expected in zip(clips.keypoints, clips.masks, (a, b)):
        assert mask[-2:].sum() == 0 and mask[:-2].all()
        np.testing.assert_allclose(kp[:-2], expected[:-2], atol=1e-4)
    xview = registry.load_clips("skeleton_pickle", str(path), split_prefix="xview")
    assert list(xview.split) == ["", "train"]


def test_skeleton_pickle_ntu25_3d_and_labels_csv(tmp_path):
    a = pose_fixtures.walking_clip(6)
    path = tmp_path / "ntu60_3danno.pkl"
    _pyskl_pickle(path, {"clipA": (a, 0), "clipB": (a + 10, 1)}, joints_layout="ntu25")
    csv = tmp_path / "labels.csv"
    csv.write_text("clip_id,label,view,subject\nclipA,wave,front,S1\nclipB,clap,side,S2\n")
    clips = registry.load_clips("skeleton_pickle", str(path), labels_csv=str(csv))
    assert clips.info["layout"] == "ntu25"
    assert clips.class_names == ("clap", "wave") and list(clips.labels) == [1, 0]
    assert list(clips.views) == ["front", "side"] and list(clips.subjects) == ["S1", "S2"]
    bad = tmp_path / "bad.csv"
    bad.write_text("name,label\nclipA,1\n")
    with pytest.raises(ValueError, match="'clip_id' column"):
        registry.load_clips("skeleton_pickle", str(path), labels_csv=str(bad))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch EXPLOITED",))


def test_skeleton_pickle_never_runs_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"annotations": [_Exploit()]}, f)
    with pytest.raises(ValueError, match="refusing"):
        registry.load_clips("skeleton_pickle", str(path))
    assert not (tmp_path / "EXPLOITED").exists()
    with open(path, "wb") as f:
        pickle.dump({"annotations": "nope"}, f)
    with pytest.raises(ValueError, match="not a skeleton annotation pickle"):
        registry.load_clips("skeleton_pickle", str(path))


@pytest.mark.slow  # a subprocess importing TensorFlow: 10-30 s on a loaded machine
def test_embed_binary_wrong_layout_is_one_error_line(tmp_path):
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    _write_openpose_clip(tmp_path / "take", pose_fixtures.walking_clip(), "openpose25b")
    proc = subprocess.run(
        [sys.executable, "-m", "cv_mim.embed", f"--export_dir={tmp_path / 'none'}",
         "--dataset=openpose", f"--input={tmp_path / 'take'}", "--layout=body25",
         f"--output={tmp_path / 'out.npz'}"], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), check=False)
    assert proc.returncode == 2
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "but like 'openpose25b'" in errors[0]
    assert "--skip_layout_check" in errors[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("dataset, name, content", [
    ("coco_json", "no_image_id.json", {"images": [{"id": 1, "file_name": "a.jpg"}],
                                       "annotations": [{"keypoints": [0] * 51, "bbox": [0, 0, 1, 1]}],
                                       "categories": [{"id": 1, "name": "person"}]}),
    ("coco_json", "images_not_dicts.json", {"images": [1], "annotations": [],
                                            "categories": [{"id": 1, "name": "person"}]}),
])
def test_structurally_malformed_detector_files_are_one_clear_error(tmp_path, dataset, name, content):
    """Review finding: a missing key or a wrong container type is a ValueError naming the file."""
    path = tmp_path / name
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=name):
        registry.load_clips(dataset, str(path), layout="coco17")


def test_openpose_keypoints_that_are_not_a_list_are_one_clear_error(tmp_path):
    folder = tmp_path / "take"
    folder.mkdir()
    (folder / "000000_keypoints.json").write_text(json.dumps(
        {"version": 1.3, "people": [{"pose_keypoints_2d": {"a": 1}}]}))
    with pytest.raises(ValueError, match="take"):
        registry.load_clips("openpose", str(folder), layout="body25")
