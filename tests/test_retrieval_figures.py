"""Retrieval figures: the hit/miss decision of the panels, the camera-pair table, the PCA map's
numerics, and that every figure is written, also from degenerate inputs (no pixels compared)."""
import numpy as np
import pytest

from cv_mim.downstream import retrieval as retrieval_lib
from cv_mim.downstream import retrieval_figures as figures


def _rotated(pose, angle=0.9, scale=1.7):
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]])
    return scale * pose @ rot.T + [0.3, -0.2, 0.1]


def _data(n=8, num_cameras=2, seed=0, angles=None):
    rng = np.random.default_rng(seed)
    poses = rng.normal(size=(n, 13, 3))
    feats = 10.0 * rng.normal(size=(num_cameras, n, 4))
    if n > 5:
        poses[5] = _rotated(poses[0])  # another frame, the same pose up to a similarity transform
        feats[1, 5] = feats[0, 0]  # query 0's nearest gallery neighbours: 5, then 3, then 0
        feats[1, 3] = feats[0, 0] + 0.1
        feats[1, 0] = feats[0, 0] + 0.2
    features = {name: feats.copy() for name in retrieval_lib.FEATURES}
    return retrieval_lib.RetrievalData(
        features=features, poses_3d=poses, keypoints_2d=rng.normal(size=(num_cameras, n, 13, 2)),
        camera_ids=[f"c{i}" for i in range(num_cameras)], sequences=np.array(["S9/a"] * n),
        camera_angles=angles)


def test_a_neighbour_is_a_hit_by_the_p_mpjpe_criterion_not_by_its_frame():
    data = _data()
    nn, errors, hits = retrieval_lib.panel_neighbours(
        data, "pose_embedding", np.array([0]), query_camera=0, gallery_camera=1, top=3,
        threshold=0.1)
    assert nn[0].tolist() == [5, 3, 0]
    np.testing.assert_allclose(errors[0], [retrieval_lib.procrustes_mpjpe(data.poses_3d[g],
                                                                          data.poses_3d[0])
                                           for g in (5, 3, 0)])
    assert errors[0, 0] < 1e-9 and errors[0, 1] > 0.1
    assert hits[0].tolist() == [True, False, True]  # frame 5 is a hit: same pose, other frame
    at = errors[0, 1]  # the threshold is inclusive, as in the evaluation (P-MPJPE <= threshold)
    assert retrieval_lib.panel_neighbours(data, "pose_embedding", np.array([0]), query_camera=0,
                                          gallery_camera=1, top=3, threshold=at)[2][0, 1]
    assert not retrieval_lib.panel_neighbours(data, "pose_embedding", np.array([0]),
                                              query_camera=0, gallery_camera=1, top=3,
                                              threshold=at * (1 - 1e-9))[2][0, 1]


def test_panels_use_the_widest_camera_pair():
    angles = np.array([[0, 40, 150], [40, 0, 120], [150, 120, 0]], float)
    assert retrieval_lib.panel_cameras(_data(num_cameras=3, angles=angles)) == (0, 2)
    assert retrieval_lib.panel_cameras(_data(num_cameras=3)) == (0, 1)


def test_camera_pairs_average_both_directions_and_sort_by_angle():
    def pair(q, g, angle, hit):
        return {"query_camera": q, "gallery_camera": g, "axis_angle_deg": angle,
                "pmpjpe": {"1": hit}, "exact": {"1": 0.0}}
    results = {"threshold": 0.1, "features": {"pose_embedding": {"per_pair": [
        pair("a", "b", 150.0, 0.2), pair("b", "a", 150.0, 0.4),
        pair("a", "c", 40.0, 0.9), pair("c", "a", 40.0, 0.7)]}}}
    rows = retrieval_lib.camera_pairs(results)
    assert [r["cameras"] for r in rows] == [["a", "c"], ["a", "b"]]
    assert rows[0]["hit1"]["pose_embedding"] == pytest.approx(0.8)
    assert rows[1]["hit1"]["pose_embedding"] == pytest.approx(0.3)
    assert "| a – c | 40 | 80.0 |" in retrieval_lib.pair_table(rows, 0.1)
    del results["features"]["pose_embedding"]["per_pair"][0]["axis_angle_deg"]
    assert retrieval_lib.camera_pairs(results) == []  # angles unknown: no table


def test_view_predictability_holds_out_blocks_of_frames():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(3, 60, 4))
    feats[np.arange(3), :, np.arange(3)] += 8.0
    res = retrieval_lib.view_predictability({"pose_embedding": feats},
                                            np.array(["S9/a"] * 30 + ["S11/a"] * 30))
    assert res["pose_embedding"]["accuracy"] == 1.0
    assert res["pose_embedding"]["chance"] == pytest.approx(1 / 3)
    assert res["pose_embedding"]["num_test"] == 3 * 20  # 2 of the 6 blocks of 10 frames
    short = retrieval_lib.view_predictability({"pose_embedding": feats[:, :10]})
    assert short["pose_embedding"]["accuracy"] is None  # one block: nothing to hold out
    assert "– (a held-out split needs at least 2 groups" in retrieval_lib.probe_table(short)


def test_pca_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
    xy, ratio = figures.pca_2d(x)
    vals, vecs = np.linalg.eigh(np.cov(x.T))
    ref = (x - x.mean(0)) @ vecs[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(xy), np.abs(ref), atol=1e-8)  # up to each axis' sign
    np.testing.assert_allclose(ratio, vals[::-1][:2] / vals.sum(), atol=1e-10)
    flat, flat_ratio = figures.pca_2d(np.ones((4, 3)))
    assert np.all(flat == 0) and np.all(flat_ratio == 0)
    one, _ = figures.pca_2d(np.ones((1, 3)))
    assert one.shape == (1, 2)


def test_pose_clusters_find_separated_poses_and_are_seeded():
    rng = np.random.default_rng(3)
    poses = np.concatenate([rng.normal(0, 0.05, (20, 13, 3)), rng.normal(3, 0.05, (20, 13, 3))])
    labels = figures.pose_clusters(poses, 2, seed=0)
    assert len(set(labels[:20])) == 1 and len(set(labels[20:])) == 1 and labels[0] != labels[20]
    wide = rng.normal(size=(50, 13, 3))
    np.testing.assert_array_equal(figures.pose_clusters(wide, 5, seed=7),
                                  figures.pose_clusters(wide, 5, seed=7))
    assert set(figures.pose_clusters(np.zeros((6, 13, 3)), 4)) == {0}  # one distinct pose


def test_front_and_side_views_face_the_hips_onto_x():
    pose = np.random.default_rng(4).normal(size=(13, 3))
    front, side = figures.front_and_side(pose, figures.facing_rotation(pose))
    hips = front[figures._LEFT_HIP] - front[figures._RIGHT_HIP]
    assert abs(side[figures._LEFT_HIP, 0] - side[figures._RIGHT_HIP, 0]) < 1e-9  # depth only
    assert hips[0] > 0 and np.linalg.norm(hips) > 0
    np.testing.assert_allclose(front[:, 1], -(pose[:, 2] - pose[[7, 8], 2].mean()))  # z up


def test_every_figure_is_written(tmp_path):
    data = _data(angles=np.array([[0.0, 90.0], [90.0, 0.0]]))
    probe = {"pose_embedding": {"accuracy": 0.5, "chance": 0.5}}
    paths = retrieval_lib.draw_figures(str(tmp_path), data, seed=0, view_probe=probe)
    assert [p.rsplit("/", 1)[1] for p in paths] == [
        "retrieval_pose_embedding.png", "retrieval_view_embedding.png", retrieval_lib.EMBEDDING_MAP]
    for path in paths:
        assert (tmp_path / path.rsplit("/", 1)[1]).stat().st_size > 1000


@pytest.mark.parametrize("case", ["one_frame", "ties_and_missing"])
def test_degenerate_inputs_still_draw(tmp_path, case):
    data = _data(n=1 if case == "one_frame" else 8)
    if case == "ties_and_missing":  # every feature equal, one pose, NaN rows (undetected frames)
        for name in data.features:
            data.features[name][:] = 0.0
        data.poses_3d[:] = data.poses_3d[0]
        data.features["raw_2d"][1, :3] = np.nan
    retrieval_lib.draw_panels(str(tmp_path / "p.png"), data, "pose_embedding", num_queries=2,
                              top=3)
    figures.draw_embedding_map(str(tmp_path / "m.png"), data.features, data.poses_3d,
                               data.camera_ids)
    assert (tmp_path / "p.png").stat().st_size > 1000 and (tmp_path / "m.png").stat().st_size > 1000


def test_view_classification_probes_z_p_by_default_and_says_what_it_means():
    from cv_mim.downstream import view_classification as view_lib
    assert "pose_embedding" in view_lib.DEFAULT_FEATURES
    run = {"accuracy_mean": 0.565, "accuracy_std": None, "runs": [0.565], "chance": 0.283}
    table = view_lib.markdown_table({"method": "cv_mim", "features": {
        "view_embedding": dict(run, accuracy_mean=0.666), "raw": run, "pose_embedding": run}})
    assert "| Methods | cv_mim (z_v) | 2D Pose | cv_mim (z_p) |" in table
    assert "z_p's view predictability" in table and "28.3%): 56.50%." in table


def test_per_query_hits_are_what_the_pair_hit_rates_average():
    """Query 0's neighbours in camera 1 are frames 5 (its pose up to a similarity), 3, then 0: a
    P-MPJPE hit at k = 1, an exact hit only at k = 3; the pair's rates are the per-query means."""
    from cv_mim.keypoints import retrieval_metrics  # pylint: disable=import-outside-toplevel
    data = _data()
    feats = data.features["pose_embedding"]
    queries = np.arange(8)
    per_query = retrieval_metrics.pair_query_hits(feats[0], feats[1], data.poses_3d, queries,
                                                  threshold=0.1, ks=(1, 3))
    assert per_query["pmpjpe"]["1"][0] and not per_query["exact"]["1"][0]
    assert per_query["exact"]["3"][0]
    rates = retrieval_metrics.pair_hits(feats[0], feats[1], data.poses_3d, queries, threshold=0.1,
                                        ks=(1, 3))
    for crit in ("exact", "pmpjpe"):
        for k in ("1", "3"):
            assert rates[crit][k] == pytest.approx(per_query[crit][k].mean())


def test_action_names_drop_the_subject_and_the_take_number():
    names = retrieval_lib.action_names(["S11/Directions 1", "S11/Directions", "S9/WalkDog 2",
                                        "S1/Sitting 1", "Photo", "S5/Walk 10"])
    assert names.tolist() == ["Directions", "Directions", "WalkDog", "Sitting", "Photo", "Walk"]


def test_per_action_hits_split_the_queries_and_average_back_to_the_whole():
    """Query 0 is the one P-MPJPE hit at k = 1 (test above): its action scores 1/3 of its queries
    per pair in one direction; the per-action rates, weighted by their query counts, give the mean,
    and each is the per-query hits of pair_query_hits restricted to that action's queries."""
    from cv_mim.keypoints import retrieval_metrics  # pylint: disable=import-outside-toplevel
    data = _data()
    data.sequences = np.array(["S9/Eating 1"] * 3 + ["S9/Phoning 2"] * 5)
    results = retrieval_lib.evaluate(data, threshold=0.1, ks=(1, 3))
    res = results["features"]["pose_embedding"]
    assert list(res["per_action"]) == ["Eating", "Phoning"]
    feats = data.features["pose_embedding"]
    for crit in ("exact", "pmpjpe"):
        for k in ("1", "3"):
            per_query = [retrieval_metrics.pair_query_hits(feats[i], feats[j], data.poses_3d,
                                                           np.arange(8), threshold=0.1,
                                                           ks=(1, 3))[crit][k]
                         for i, j in ((0, 1), (1, 0))]
            for action, rows in (("Eating", slice(0, 3)), ("Phoning", slice(3, 8))):
                expected = np.mean([hits[rows] for hits in per_query])
                assert res["per_action"][action][crit][k] == pytest.approx(expected), (crit, k)
            weighted = (3 * res["per_action"]["Eating"][crit][k]
                        + 5 * res["per_action"]["Phoning"][crit][k]) / 8
            assert weighted == pytest.approx(res["mean"][crit][k])
    assert res["per_action"]["Eating"]["pmpjpe"]["1"] != res["per_action"]["Phoning"]["pmpjpe"]["1"]
    # Per-action camera probe: too few frames to hold out two blocks gives None, not a crash.
    probes = retrieval_lib.per_action_view_predictability(data.features, data.sequences)
    assert probes["Eating"]["pose_embedding"]["accuracy"] is None
    results.update(per_action_view_probe=probes, action_frames={"Eating": 3, "Phoning": 5},
                   view_probe=None, camera_pairs=[])
    table = retrieval_lib.markdown_table(results, ks=(1, 3))
    assert "| Eating | 3 | " in table and "| Phoning | 5 | " in table
