"""The pretraining pair pipeline: determinism, resumption, camera pairs, augmentation mix, masks."""
import numpy as np
import pytest

from cv_mim import pipeline
from cv_mim.keypoints import augmentation as augmentation_mod
from cv_mim.keypoints import normalization
from cv_mim.keypoints import profiles


def _pose3d(rng, n):
    """Crude upright 13-joint 3D skeletons (z up, facing -x), hip-centred, spine ~1, jittered."""
    base = np.array([
        [0, 0, 1.9], [0, -0.4, 1.2], [0, 0.4, 1.2], [0, -0.6, 0.8], [0, 0.6, 0.8],
        [-0.2, -0.7, 0.4], [-0.2, 0.7, 0.4], [0, -0.2, 0], [0, 0.2, 0], [-0.1, -0.2, -0.9],
        [-0.1, 0.2, -0.9], [0, -0.2, -1.8], [0, 0.2, -1.8]], np.float32)
    # Our "left" joints are at -y: a person facing -x has their left at -y (z up, right-handed).
    return base[None] + rng.normal(scale=0.15, size=(n, 13, 3)).astype(np.float32)


def _source(n=64, c=4, seed=0):
    rng = np.random.default_rng(seed)
    kp3d = _pose3d(rng, n)
    azimuths = np.linspace(0, 2 * np.pi, c, endpoint=False)
    kp2d = np.stack([augmentation_mod.project_with_angles(kp3d, az, 0.0, 0.0).numpy() * 1000 + 500
                     for az in azimuths], axis=1).astype(np.float32)
    return pipeline.PairSource(kp2d, kp3d)


def _take(ds, k):
    return [tuple(t.numpy() for t in batch) for batch in ds.take(k)]


def test_shapes_normalisation_and_determinism():
    src = _source()
    ds = pipeline.make_pair_dataset(src, batch_size=32, seed=3)
    batches = _take(ds, 3)
    again = _take(pipeline.make_pair_dataset(src, batch_size=32, seed=3), 3)
    other = _take(pipeline.make_pair_dataset(src, batch_size=32, seed=4), 1)
    for (a, p), (a2, p2) in zip(batches, again):
        assert a.shape == p.shape == (32, 13, 2) and a.dtype == np.float32
        np.testing.assert_array_equal(a, a2)
        np.testing.assert_array_equal(p, p2)
    assert not np.allclose(batches[0][0], other[0][0])
    a = batches[0][0]
    # Normalised: mid-hip at the origin, largest torso-pair distance 0.5.
    np.testing.assert_allclose((a[:, 7] + a[:, 8]) / 2, 0.0, atol=1e-5)
    torso = [1, 2, 7, 8]
    dists = np.stack([np.linalg.norm(a[:, i] - a[:, j], axis=-1)
                      for k, i in enumerate(torso) for j in torso[k + 1:]], axis=1)
    np.testing.assert_allclose(dists.max(axis=1), 0.5, rtol=1e-4)


def test_resumed_dataset_continues_the_same_sequence():
    src = _source()
    full = _take(pipeline.make_pair_dataset(src, batch_size=8, seed=1), 5)
    resumed = _take(pipeline.make_pair_dataset(src, batch_size=8, seed=1, start_batch=3), 2)
    for (a, p), (ra, rp) in zip(full[3:], resumed):
        np.testing.assert_array_equal(a, ra)
        np.testing.assert_array_equal(p, rp)
    limited = list(pipeline.make_pair_dataset(src, batch_size=8, seed=1, num_batches=4))
    assert len(limited) == 4


def test_real_pairs_use_two_different_cameras_of_the_same_frame():
    # Each camera sees a different, recognisable constant pose; frames differ by a per-frame offset
    # that normalisation removes, so the camera of each view can be identified exactly.
    rng = np.random.default_rng(0)
    c = 4
    per_camera = rng.normal(scale=50, size=(c, 13, 2)).astype(np.float32) + 300
    kp2d = np.repeat(per_camera[None], 10, axis=0) + np.arange(10, dtype=np.float32)[:, None, None,
                                                                                     None]
    src = pipeline.PairSource(kp2d, None)
    refs = normalization.normalize_keypoints_2d(per_camera)[0].numpy()
    (a, p), = _take(pipeline.make_pair_dataset(src, batch_size=512, seed=0, augmentation="none"), 1)

    def camera_of(views):
        d = np.abs(views[:, None] - refs[None]).max(axis=(2, 3))
        assert np.all(d.min(axis=1) < 1e-4)
        return d.argmin(axis=1)

    ca, cp = camera_of(a), camera_of(p)
    assert np.all(ca != cp)
    pairs = set(zip(ca.tolist(), cp.tolist()))
    assert len(pairs) == c * (c - 1)  # every ordered pair of distinct cameras occurs


def test_mixed_augmentation_replaces_half_of_the_views():
    rng = np.random.default_rng(1)
    kp3d = _pose3d(rng, 50)
    real_pose = rng.normal(scale=40, size=(13, 2)).astype(np.float32) + 400
    kp2d = np.broadcast_to(real_pose, (50, 3, 13, 2)).copy()
    src = pipeline.PairSource(kp2d, kp3d)
    ref = normalization.normalize_keypoints_2d(real_pose)[0].numpy()
    (a, p), = _take(pipeline.make_pair_dataset(src, batch_size=4000, seed=2), 1)
    is_real_a = np.abs(a - ref).max(axis=(1, 2)) < 1e-4
    is_real_p = np.abs(p - ref).max(axis=(1, 2)) < 1e-4
    assert 0.45 < is_real_a.mean() < 0.55 and 0.45 < is_real_p.mean() < 0.55
    # The two views are mixed independently (all four combinations occur about equally).
    both_real = np.mean(is_real_a & is_real_p)
    assert 0.2 < both_real < 0.3
    (a2, _), = _take(pipeline.make_pair_dataset(src, batch_size=500, seed=2,
                                                 augmentation="projection"), 1)
    assert not np.any(np.abs(a2 - ref).max(axis=(1, 2)) < 1e-4)


def test_missing_joints_are_zero_and_never_nan():
    src = _source()
    kp2d = src.keypoints_2d.copy()
    kp2d[:, :, 5] = np.nan  # the left wrist is never detected
    (a, p), = _take(pipeline.make_pair_dataset(pipeline.PairSource(kp2d, src.keypoints_3d),
                                                batch_size=256, seed=0, augmentation="none"), 1)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(p))
    np.testing.assert_array_equal(a[:, 5], 0.0)


@pytest.mark.parametrize("augmentation", ["none", "mixed"])
def test_keypoint_dropout_marks_joints_missing_and_changes_nothing_else(augmentation):
    src = _source(n=64, c=4, seed=3)
    kw = dict(batch_size=512, seed=7, augmentation=augmentation)
    (a0, p0), = _take(pipeline.make_pair_dataset(src, **kw), 1)
    (a1, p1), = _take(pipeline.make_pair_dataset(src, keypoint_dropout_rate=0.3, **kw), 1)
    (a2, p2), = _take(pipeline.make_pair_dataset(src, keypoint_dropout_rate=0.3, **kw), 1)
    np.testing.assert_array_equal(a1, a2)  # deterministic
    np.testing.assert_array_equal(p1, p2)
    hips = [profiles.JOINT_NAMES.index("left_hip"), profiles.JOINT_NAMES.index("right_hip")]
    others = [j for j in range(profiles.NUM_JOINTS) if j not in hips]
    for before, after in ((a0, a1), (p0, p1)):
        missing_before = np.all(before == 0.0, axis=-1)
        dropped = np.all(after == 0.0, axis=-1) & ~missing_before
        assert missing_before.mean() < 0.02
        # (A dropped joint reads 0; so does the kept hip when the other hip is dropped, since it becomes
        # the offset — hence the rate is measured on the other joints, and the hips are checked below.)
        assert abs(dropped[:, others].mean() - 0.3) < 0.03, dropped[:, others].mean()
        # Same frames, cameras and projections: re-normalising the undropped pose with the dropout
        # mask (normalisation is invariant to the similarity it applied) gives the dropped pose.
        hips_ok = ~dropped[:, hips].any(1)
        assert 0.4 < hips_ok.mean() < 0.6  # (1 - 0.3)^2 of the examples keep both hips
        expected, _, _ = normalization.normalize_keypoints_2d(
            before, (~(dropped | missing_before)).astype(np.float32))
        np.testing.assert_allclose(after[hips_ok], expected.numpy()[hips_ok], atol=1e-5)
    # The two views drop different joints.
    assert not np.array_equal(np.all(a1 == 0, -1), np.all(p1 == 0, -1))


def test_projection_depth_changes_only_the_projected_views():
    src = _source(n=64, c=4, seed=3)
    kw = dict(batch_size=512, seed=7, augmentation="mixed")
    (a0, p0), = _take(pipeline.make_pair_dataset(src, **kw), 1)
    (a1, p1), = _take(pipeline.make_pair_dataset(src, projection_depth=(2.0, 2.0), **kw), 1)
    np.testing.assert_array_equal(a0, a1)  # a degenerate range is the default, bit for bit
    np.testing.assert_array_equal(p0, p1)
    (a2, p2), = _take(pipeline.make_pair_dataset(src, projection_depth=(8.0, 12.0), **kw), 1)
    (ra, rp), = _take(pipeline.make_pair_dataset(src, **dict(kw, augmentation="none")), 1)
    for before, after, real_view in ((a0, a2, ra), (p0, p2, rp)):
        changed = np.abs(before - after).max(axis=(1, 2)) > 1e-6
        real = np.abs(before - real_view).max(axis=(1, 2)) < 1e-6  # the view a real camera gave
        assert 0.4 < real.mean() < 0.6
        # Every projected view moves with the distance and no real one does (same frames, cameras
        # and mixing draws).
        np.testing.assert_array_equal(changed, ~real)
    # Farther cameras foreshorten less: the normalised 2D of a projected view moves with the distance.
    assert np.abs(a0 - a2).max() > 0.05


@pytest.mark.parametrize("kwargs,match", [
    (dict(augmentation="flip"), "augmentation must be one of"),
    (dict(batch_size=0), "batch_size must be positive"),
    (dict(projection_probability=1.5), "projection_probability"),
    (dict(keypoint_dropout_rate=1.0), "keypoint_dropout_rate must be in"),
    (dict(keypoint_dropout_rate=-0.1), "keypoint_dropout_rate must be in"),
    (dict(projection_depth=(3.0, 1.0)), "camera distance range"),
])
def test_bad_arguments(kwargs, match):
    args = dict(batch_size=4, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        pipeline.make_pair_dataset(_source(), **args)


def test_bad_sources():
    with pytest.raises(ValueError, match=r"keypoints_2d must have shape \(N, C, 13, 2\)"):
        pipeline.PairSource(np.zeros((5, 4, 17, 2), np.float32))
    with pytest.raises(ValueError, match="keypoints_3d must have shape"):
        pipeline.PairSource(np.zeros((5, 4, 13, 2), np.float32), np.zeros((4, 13, 3), np.float32))
    one_camera = pipeline.PairSource(np.zeros((5, 1, 13, 2), np.float32),
                                      np.zeros((5, 13, 3), np.float32))
    with pytest.raises(ValueError, match="at least 2 cameras"):
        pipeline.make_pair_dataset(one_camera, batch_size=4, seed=0)
    no_3d = pipeline.PairSource(np.zeros((5, 2, 13, 2), np.float32))
    with pytest.raises(ValueError, match="needs 3D poses"):
        pipeline.make_pair_dataset(no_3d, batch_size=4, seed=0, augmentation="mixed")


def test_joints_near_or_behind_the_virtual_camera_are_missing_not_huge():
    """A hand reaching towards the virtual camera (depth 2) must not explode the normalised input."""
    rng = np.random.default_rng(3)
    kp3d = _pose3d(rng, 200)
    kp3d[:, 5] = [-2.2, -0.4, 0.4]  # the left wrist is behind the camera plane at azimuth 0
    kp2d = np.zeros((200, 2, 13, 2), np.float32)
    src = pipeline.PairSource(kp2d, kp3d)
    (a, _), = _take(pipeline.make_pair_dataset(src, batch_size=2000, seed=0,
                                                augmentation="projection"), 1)
    assert np.all(np.isfinite(a))
    assert np.abs(a).max() < 20.0
    # Without the guard the same batch holds huge values (the division by a clamped depth).
    (b, _), = _take(pipeline.make_pair_dataset(src, batch_size=2000, seed=0,
                                                augmentation="projection",
                                                min_projection_depth=-np.inf), 1)
    assert np.abs(b).max() > 1e3
