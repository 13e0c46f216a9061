"""Detector layouts (BODY_25B, COCO-18, Halpe-26, MediaPipe-33, COCO-WholeBody, H36M-17 detections) and
the layout-safety check (joint count, plausibility of a same-size layout) — issue 14."""
import logging

import numpy as np
import pose_fixtures
import pytest

from cv_mim.data import registry
from cv_mim.keypoints import plausibility
from cv_mim.keypoints import profiles

# Native index of each canonical joint (head, LSh, RSh, LEl, REl, LWr, RWr, LHip, RHip, LKn, RKn, LAn,
# RAn), typed from each format's documentation independently of the name tables in profiles.
EXPECTED_INDEX = {
    "openpose25b": (18, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),  # head = HeadTop
    "openpose18": (0, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10),
    "halpe26": (17, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),  # head = Halpe "Head" (top)
    "mediapipe33": (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28),
    "coco_wholebody133": (0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
    "h36m17": (10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3),
    "openpose25": (0, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11),
}

SIZES = {"openpose25b": 25, "openpose18": 18, "halpe26": 26, "mediapipe33": 33,
         "coco_wholebody133": 133, "h36m17": 17, "openpose25": 25}


@pytest.mark.parametrize("layout", sorted(EXPECTED_INDEX))
def test_layout_maps_documented_joints_to_canonical(layout):
    assert len(profiles.LAYOUT_JOINT_NAMES[layout]) == SIZES[layout]
    assert profiles.LAYOUT_TO_CANONICAL[layout] == EXPECTED_INDEX[layout]
    rng = np.random.default_rng(1)
    kp = rng.uniform(0, 500, (3, SIZES[layout], 2)).astype(np.float32)
    scores = rng.uniform(0.0, 1.0, (3, SIZES[layout])).astype(np.float32)
    scores[1, EXPECTED_INDEX[layout][4]] = 0.0  # a detector's missing right elbow
    kp13, mask13 = profiles.convert_keypoints(kp, layout, scores)
    np.testing.assert_array_equal(kp13, kp[:, list(EXPECTED_INDEX[layout])])
    np.testing.assert_array_equal(mask13, (scores[:, list(EXPECTED_INDEX[layout])] > 0))
    assert mask13[1, 4] == 0 and mask13.sum() == 3 * 13 - 1


def test_body25b_and_halpe_use_the_head_top_others_the_nose():
    assert profiles.OPENPOSE25B_JOINT_NAMES[profiles.LAYOUT_TO_CANONICAL["openpose25b"][0]] == "HeadTop"
    assert profiles.HALPE26_JOINT_NAMES[profiles.LAYOUT_TO_CANONICAL["halpe26"][0]] == "head"
    for layout in ("openpose25", "openpose18", "coco17", "mediapipe33", "coco_wholebody133"):
        head = profiles.LAYOUT_JOINT_NAMES[layout][profiles.LAYOUT_TO_CANONICAL[layout][0]]
        assert head.lower() == "nose", layout


def test_converter_refuses_wrong_joint_count_naming_the_layouts_of_that_size():
    with pytest.raises(ValueError, match=r"layout 'openpose25' has 25 joints, got 17 .*"
                                         r"'h36m17', 'h36m17_legacy', 'coco17'"):
        profiles.convert_keypoints(np.zeros((4, 17, 2)), "openpose25")
    with pytest.raises(ValueError, match="layout 'mediapipe33' has 33 joints, got 25"):
        profiles.convert_keypoints(np.zeros((25, 2)), "mediapipe33")


def _same_size_pairs():
    pairs = []
    for true in profiles.SOURCE_LAYOUTS:
        for named in profiles.layouts_with_joints(len(profiles.LAYOUT_JOINT_NAMES[true])):
            if named != true and {true, named} != {"canonical13", "penn13"}:
                pairs.append((true, named))
    return pairs


@pytest.mark.parametrize("true,named", _same_size_pairs())
def test_wrong_same_size_layout_is_refused_naming_the_likely_layout(true, named):
    native = pose_fixtures.to_native(pose_fixtures.walking_clip(), true)
    plausibility.check_layout(native, None, true)  # the right layout passes
    with pytest.raises(plausibility.LayoutError, match=f"do not look like layout '{named}'.*"
                                                       f"but like '{true}'"):
        plausibility.check_layout(native, None, named)


def test_plausibility_tests_each_detect_their_defect():
    kp = pose_fixtures.walking_clip()
    mask = np.ones(kp.shape[:2])
    good = plausibility.plausibility(kp, mask)
    assert (good.sides, good.symmetry, good.order) == (1.0, 1.0, 1.0)
    crossed = kp.copy()
    crossed[:, [7, 8]] = crossed[:, [8, 7]]  # hips swapped, shoulders not
    assert plausibility.plausibility(crossed, mask).sides == 0.0
    short = kp.copy()
    short[:, 5] = short[:, 3] + 0.2 * (short[:, 5] - short[:, 3])  # left forearm 1/5 of the right
    assert plausibility.plausibility(short, mask).symmetry == pytest.approx(0.75)
    low_head = kp.copy()
    low_head[:, 0] = kp[:, 7:9].mean(1)
    assert plausibility.plausibility(low_head, mask).order == 0.0
    # Rotation invariance: a person lying down (90 degrees) is as plausible as standing.
    lying = np.stack([kp[..., 1], -kp[..., 0]], -1)
    assert plausibility.plausibility(lying, mask).score == 1.0
    none = plausibility.plausibility(kp, np.zeros_like(mask))
    assert none.score is None


def test_implausible_clip_without_better_layout_warns_only(caplog):
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 400, (20, 33, 2))
    with caplog.at_level(logging.WARNING):
        result = plausibility.check_layout(noise, None, "mediapipe33", name="noise")
    assert result["mediapipe33"].score < plausibility.DEFAULT_THRESHOLD
    assert "unusual poses for layout 'mediapipe33'" in caplog.text


def _h36m_2d(realdata_dir):
    data = np.load(realdata_dir / "h36m" / "data_2d_h36m_S11_sample_gt.npz", allow_pickle=True)
    return data["positions_2d"].item()["S11"]["Directions 1"]


def test_real_h36m_2d_passes_as_h36m17_and_is_refused_as_coco17(realdata_dir):
    for cam, kp in enumerate(_h36m_2d(realdata_dir)):
        scores = np.ones(kp.shape[:2])
        result = plausibility.check_layout(kp, scores, "h36m17", name=f"camera {cam}")
        assert result["h36m17"].score > 0.9
        for wrong in ("coco17", "h36m17_legacy"):
            with pytest.raises(plausibility.LayoutError,
                               match=f"layout '{wrong}'.*but like 'h36m17'"):
                plausibility.check_layout(kp, scores, wrong, name=f"camera {cam}")


def test_registry_layout_check_and_override(tmp_path, realdata_dir):
    """A real H36M-17 array written as COCO results is refused as COCO-17 unless the check is
    skipped; named h36m17 it converts to the canonical joints."""
    import json  # pylint: disable=import-outside-toplevel
    kp = _h36m_2d(realdata_dir)[0][:40]
    results = [{"image_id": t, "category_id": 1, "score": 0.9,
                "keypoints": np.concatenate([kp[t], np.ones((17, 1))], 1).reshape(-1).tolist()}
               for t in range(len(kp))]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    with pytest.raises(plausibility.LayoutError, match="but like 'h36m17'"):
        registry.load_clips("coco_json", str(path))
    skipped = registry.load_clips("coco_json", str(path), skip_layout_check=True)
    assert skipped.info["layout"] == "coco17" and skipped.info["layout_check"] is None
    right = registry.load_clips("coco_json", str(path), layout="h36m")
    np.testing.assert_allclose(right.keypoints[0],
                               kp[:, list(profiles.LAYOUT_TO_CANONICAL["h36m17"])], rtol=1e-6)


def test_real_ntu_kinect_2d_passes_as_ntu25_and_is_refused_as_openpose(realdata_dir):
    from cv_mim.data import ntu_skeleton  # pylint: disable=import-outside-toplevel
    for path in sorted((realdata_dir / "ntu_rgbd").glob("*.skeleton")):
        skel = ntu_skeleton.read_skeleton(path)
        frames = [f[0].joints for f in skel.frames if f]
        kp = np.stack([j[:, ntu_skeleton.COL_COLOR] for j in frames]).astype(np.float32)
        scores = np.stack([j[:, ntu_skeleton.COL_TRACKING] for j in frames])
        result = plausibility.check_layout(kp, scores, "ntu25", name=path.name)
        assert result["ntu25"].score > 0.85, (path.name, result["ntu25"].describe())
        for wrong in ("openpose25", "openpose25b"):
            with pytest.raises(plausibility.LayoutError, match=f"'{wrong}'.*but like 'ntu25'"):
                plausibility.check_layout(kp, scores, wrong, name=path.name)


def test_real_penn_clips_raise_no_false_alarm(realdata_dir):
    from cv_mim.data import penn_action  # pylint: disable=import-outside-toplevel
    scores = []
    for path in sorted((realdata_dir / "penn_action" / "labels").glob("*.mat"))[:40]:
        clip = penn_action.read_penn_mat(path)
        kp = np.stack([clip.x, clip.y], -1)
        result = plausibility.check_layout(kp, clip.visibility.astype(np.float32), "penn13",
                                           name=path.name)
        if result["penn13"].score is not None:  # side views: the far-side joints are invisible
            scores.append(result["penn13"].score)
    # Sports poses (handstands, bent-over swings) still pass the rotation-invariant tests mostly.
    assert len(scores) > 30 and np.median(scores) > 0.85, np.round(scores, 2)
