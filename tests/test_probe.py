"""The camera/view linear probe (view predictability of a feature) and its held-out split."""
import numpy as np
import pytest

from cv_mim.keypoints import probe


def _camera_features(rng, num_cameras=4, n=200, d=8, signal=6.0):
    feats = rng.normal(size=(num_cameras, n, d))
    feats[np.arange(num_cameras), :, np.arange(num_cameras)] += signal  # camera c lifts dim c
    return feats


def test_a_feature_that_encodes_the_camera_is_predicted():
    res = probe.camera_probe(_camera_features(np.random.default_rng(0)))
    assert res["accuracy"] > 0.98
    assert res["chance"] == pytest.approx(0.25)  # every held-out frame brings all 4 cameras
    assert res["num_classes"] == 4 and res["num_train"] + res["num_test"] == 800
    assert res["num_test"] == 4 * 60  # 30% of the 200 frames


def test_a_feature_independent_of_the_camera_scores_chance():
    feats = np.random.default_rng(1).normal(size=(4, 500, 8))
    res = probe.camera_probe(feats)
    assert abs(res["accuracy"] - res["chance"]) < 0.06  # ±3.5 σ of a 600-row test at p = 0.25


def test_groups_never_straddle_the_split():
    """Each group has its own feature direction and a random label: learnable only by memorising
    the group. Held out by group, the probe is at chance; a row-wise split (every row its own group)
    leaks the groups and scores high, so the grouping is what keeps the test honest."""
    rng = np.random.default_rng(2)
    num_groups, per_group = 40, 10
    groups = np.repeat(np.arange(num_groups), per_group)
    x = np.eye(num_groups)[groups] + 0.01 * rng.normal(size=(len(groups), num_groups))
    labels = rng.integers(0, 4, num_groups)[groups]
    by_group = probe.view_probe(x, labels, groups)
    by_row = probe.view_probe(x, labels, np.arange(len(groups)))
    assert by_group["accuracy"] <= by_group["chance"] + 0.05
    assert by_row["accuracy"] > 0.95
    test = probe.group_split(groups, test_fraction=0.3, seed=5)
    for g in range(num_groups):
        assert len(set(test[groups == g])) == 1
    assert test.sum() == 12 * per_group  # round(0.3 · 40) groups


def test_the_probe_is_deterministic_and_the_seed_moves_the_split():
    feats = _camera_features(np.random.default_rng(3), signal=0.5)
    assert probe.camera_probe(feats, seed=4) == probe.camera_probe(feats, seed=4)
    frames = np.arange(200)
    assert not np.array_equal(probe.group_split(frames, seed=0), probe.group_split(frames, seed=1))


def test_rows_with_missing_features_are_left_out_and_bad_inputs_refused():
    feats = _camera_features(np.random.default_rng(4))
    feats[1, :50] = np.nan  # camera 1 missed the first 50 frames
    res = probe.camera_probe(feats)
    assert res["num_train"] + res["num_test"] == 800 - 50
    with pytest.raises(ValueError, match="at least 2 distinct labels"):
        probe.view_probe(np.zeros((10, 2)), np.zeros(10), np.arange(10))
    with pytest.raises(ValueError, match="at least 2 groups"):
        probe.view_probe(np.zeros((10, 2)), np.arange(10) % 2, np.zeros(10))


def test_softmax_loss_hand_value_and_gradient():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(7, 3)), rng.integers(0, 4, 7)
    onehot = np.eye(4)[y]
    loss, _ = probe._softmax_loss(np.zeros(16), x, onehot, 0.1)
    assert loss == pytest.approx(np.log(4.0), abs=1e-12)  # uniform prediction, zero penalty
    flat = rng.normal(size=16)
    loss, grad = probe._softmax_loss(flat, x, onehot, 0.1)
    w, b = flat[:12].reshape(3, 4), flat[12:]
    logits = x @ w + b
    ref = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(7), y]) + 0.05 * (w ** 2).sum()
    assert loss == pytest.approx(ref, abs=1e-12)
    eps = 1e-6
    numeric = [(probe._softmax_loss(flat + eps * e, x, onehot, 0.1)[0]
                - probe._softmax_loss(flat - eps * e, x, onehot, 0.1)[0]) / (2 * eps)
               for e in np.eye(16)]
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_frame_blocks_group_consecutive_frames_within_a_sequence():
    seq = np.array(["S9/a"] * 25 + ["S9/b"] * 5)
    groups = probe.frame_blocks(seq, 10)
    sizes = [int((groups == g).sum()) for g in dict.fromkeys(groups)]
    assert sizes == [10, 10, 5, 5]
    assert len(set(groups[:25]) & set(groups[25:])) == 0
