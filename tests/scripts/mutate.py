"""Mutation testing of the objective: each mutant of losses.py / algorithms/*.py must fail a test.

Each mutant is one exact source replacement (the original text must occur exactly once, so a stale
mutant is an error, not a silent survivor). For each mutant the package and the tests are copied into a
temporary directory, the mutant is applied there, the relevant test files run with ``pytest -x``, and
the result is printed as a Markdown table row: ``killed`` (with the first failing test), ``survived``
or ``error`` (pytest could not even collect: also a kill, but worth a look).

Usage (from the repository root):
    python tests/scripts/mutate.py [--only ID[,ID...]] [--list]

Why a script and not a PyPI tool: mutmut / cosmic-ray generate thousands of operator-level mutants
(each a full pytest run of a TensorFlow suite, ~20-60 s here) and cannot express the semantic mutants
that matter for a faithful objective (CLUB on the pose embedding, a forced minimax generator, a prior
sample from the wrong seed). A curated list runs in minutes and says what each mutant means.
"""

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
LOSSES_TESTS = ["tests/test_losses.py", "tests/test_objective.py", "tests/test_algorithms.py"]
OBJECTIVE_TESTS = ["tests/test_objective.py", "tests/test_algorithms.py"]
BASELINE_TESTS = ["tests/test_baselines.py"]
L, C, I, R, G = ("cv_mim/losses.py", "cv_mim/algorithms/cvmim.py", "cv_mim/algorithms/infomax.py",
                 "cv_mim/algorithms/reconstruction.py", "cv_mim/algorithms/config.py")
N, S = "cv_mim/networks.py", "cv_mim/algorithms/step.py"  # the fused kernels of issue 17
KERNEL_TESTS = ["tests/test_networks.py", "tests/test_algorithms.py"]
V = "cv_mim/training/validation.py"  # the numbers watched during pretraining (issue 15)
VALIDATION_TESTS = ["tests/test_validation.py"]
RETRIEVAL_TESTS = ["tests/test_retrieval_figures.py"]

# (id, file, original, mutant, what it means); the tests run are chosen by file (run_mutant).
MUTANTS = [
    ("jsd_pos_sign", L, "return _LOG2 - tf.nn.softplus(-scores)",
     "return _LOG2 - tf.nn.softplus(scores)", "JSD E+ with the wrong sign inside ρ"),
    ("fd_loss_sign", L, "return e_neg - e_pos", "return e_pos - e_neg", "MI loss maximised"),
    ("fd_pos_sum", L,
     "e_pos = tf.reduce_sum(pos_mask * e_pos) / tf.maximum(tf.reduce_sum(pos_mask), 1e-12)",
     "e_pos = tf.reduce_sum(pos_mask * e_pos)", "positive term summed, not averaged"),
    ("nce_row_softmax", L, "column = tf.linalg.matrix_transpose(scores)", "column = scores",
     "InfoNCE softmax over the row"),
    ("nce_keep_off_diag_pos", L, "negatives = tf.where(pos_mask > 0,",
     "negatives = tf.where(tf.eye(batch) > 0,", "off-diagonal positives counted as negatives"),
    ("nce_temperature", L, "/ temperature\n    batch = tf.shape(scores)[-1]",
     "\n    batch = tf.shape(scores)[-1]", "InfoNCE temperature ignored"),
    ("ll_sum_dims", L, "return -0.5 * (quad + const) / dim", "return -0.5 * (quad + const)",
     "pairwise log-likelihood summed over dimensions"),
    ("ll_quad_sign", L, "- 2.0 * tf.matmul(mean * inv_var, target",
     "+ 2.0 * tf.matmul(mean * inv_var, target", "closed-form cross term with the wrong sign"),
    ("gauss_ll_sum", L,
     "return tf.reduce_mean(_gaussian(mean, log_var).log_prob(target), axis=-1)",
     "return tf.reduce_sum(_gaussian(mean, log_var).log_prob(target), axis=-1)",
     "per-example likelihood summed over dimensions"),
    ("gauss_scale", L, "scale=tf.exp(0.5 * log_var)", "scale=tf.exp(log_var)",
     "log_var used as log σ"),
    ("club_sign", L, "        negative = tf.reduce_mean(ll)\n        return positive - negative",
     "        negative = tf.reduce_mean(ll)\n        return negative - positive", "CLUB sign"),
    ("club_paper_offdiag", L, "        negative = tf.reduce_mean(ll)\n",
     "        negative = (tf.reduce_sum(ll) - tf.linalg.trace(ll)) / tf.cast(batch * batch - batch,"
     " tf.float32)\n", "paper CLUB negatives over off-diagonal pairs only"),
    ("club_paper_clipped", L, "        return positive - negative\n    neg_mask",
     "        return tf.nn.relu(positive - negative)\n    neg_mask", "paper CLUB clipped at 0"),
    ("club_authors_unclipped", L, "return tf.nn.relu(positive - negative)",
     "return positive - negative", "authors' CLUB not clipped"),
    ("q_loss_sign", L, "return -tf.reduce_mean(gaussian_log_likelihood(",
     "return tf.reduce_mean(gaussian_log_likelihood(", "Q minimises its likelihood"),
    ("d_half", L, "return 0.5 * (tf.reduce_mean(tf.nn.softplus(-real_logits))",
     "return (tf.reduce_mean(tf.nn.softplus(-real_logits))", "D loss without the 0.5"),
    ("d_real_sign", L, "tf.reduce_mean(tf.nn.softplus(-real_logits))",
     "tf.reduce_mean(tf.nn.softplus(real_logits))", "D pushes real samples to 'fake'"),
    ("gp_mean_dims", L,
     "return tf.reduce_mean(tf.reduce_sum(tf.square(input_gradients), axis=-1))",
     "return tf.reduce_mean(tf.square(input_gradients))", "penalty: mean over dims, not ‖·‖²"),
    ("gen_ns_is_minimax", L, "        return tf.reduce_mean(tf.nn.softplus(-fake_logits))",
     "        return -tf.reduce_mean(tf.nn.softplus(fake_logits))", "non-saturating = minimax"),
    ("gen_minimax_authors_mm", L, "        return -tf.reduce_mean(tf.nn.softplus(fake_logits))",
     "        return tf.reduce_mean(tf.nn.softplus(fake_logits))", "minimax = the authors' 'MM'"),
    ("recon_sum", L, "return tf.reduce_mean(tf.square(tf.cast(reconstruction",
     "return tf.reduce_sum(tf.square(tf.cast(reconstruction", "reconstruction summed"),
    ("kl_no_one", L, "per_dim = -0.5 * (1.0 + log_var", "per_dim = -0.5 * (log_var",
     "KL without the +1"),
    ("kl_mean_dims", L, 'reduce = tf.reduce_sum if scale == "authors" else tf.reduce_mean',
     "reduce = tf.reduce_mean", "authors' KL averaged over dimensions"),
    ("kl_per_dim_summed", L, 'reduce = tf.reduce_sum if scale == "authors" else tf.reduce_mean',
     "reduce = tf.reduce_sum", "per_dimension KL summed over dimensions (the authors' scale)"),
    ("kl_batch_summed", L, "return tf.reduce_mean(reduce(per_dim, axis=-1))",
     "return tf.reduce_sum(reduce(per_dim, axis=-1))", "KL summed over the batch"),
    # CV-MIM (cvmim.py).
    ("view_weight_single", C, "cfg.view_loss_weight * self.cross_view_factor * cross_view",
     "cfg.view_loss_weight * cross_view", "cross-view weight λ1 instead of 2·λ1"),
    ("view_on_view_emb", C, "losses.fenchel_dual_loss(pose_a, pose_p, measure)",
     "losses.fenchel_dual_loss(view_a, view_p, measure)", "cross-view MI on z_v"),
    ("rep_wrong_local", C, "losses.fenchel_dual_loss(loc_p, networks.fuse(pose_p",
     "losses.fenchel_dual_loss(loc_a, networks.fuse(pose_p", "view p's MI uses view a's local"),
    ("rep_dropped", C, "        representation_loss = (\n",
     "        representation_loss = 0.0 * (\n", "representation MI dropped"),
    ("fuse_swapped", C, "networks.fuse(pose_a, view_a, cfg.fusion)",
     "networks.fuse(view_a, pose_a, cfg.fusion)", "fusion arguments swapped"),
    ("club_on_pose", C, 'q_a["log_var"], view_a, variant=variant)',
     'q_a["log_var"], pose_a, variant=variant)', "CLUB pointed at the pose embedding"),
    ("club_target_no_grad", C, 'q_a["log_var"], view_a, variant=variant)',
     'q_a["log_var"], tf.stop_gradient(view_a), variant=variant)',
     "CLUB's gradient does not reach z_v (values unchanged)"),
    ("gen_no_grad", C, 'prior_loss += losses.generator_loss(d(fake, training=training)["logit"],',
     'prior_loss += losses.generator_loss(d(tf.stop_gradient(fake), training=training)["logit"],',
     "generator term does not train E (values unchanged)"),
    ("club_variant_ignored", C, "variant = cfg.club_variant", 'variant = "paper"',
     "club_variant flag ignored"),
    ("lambda2_dropped", C, "disentangle = cfg.disentangle_loss_weight * intra",
     "disentangle = intra", "λ2 missing"),
    ("q_on_pose", C, 'losses.likelihood_loss(q_a["mean"], q_a["log_var"], view_a)',
     'losses.likelihood_loss(q_a["mean"], q_a["log_var"], pose_a)', "Q fits the pose"),
    ("inter_weight", C, "inter_loss = 2.0 * cfg.disentangle_loss_weight * inter",
     "inter_loss = cfg.disentangle_loss_weight * inter", "authors' inter CLUB ×1"),
    ("inter_ll_weight", C, "inter_ll = 2.0 * losses.likelihood_loss(",
     "inter_ll = 1.0 * losses.likelihood_loss(", "authors' inter likelihood ×1"),
    ("lambda3_dropped", C, "prior_loss = cfg.prior_loss_weight * prior_loss",
     "prior_loss = prior_loss", "λ3 missing"),
    ("gp_zeroed", C, "cfg.gradient_penalty_weight * 0.5", "0.0 * cfg.gradient_penalty_weight * 0.5",
     "gradient penalty zeroed"),
    ("gp_real_only", C, "                                 + losses.gradient_penalty(grad_fake)))",
     "))", "penalty on the prior samples only"),
    ("forced_minimax", C, "                                                    cfg.generator_loss)",
     '                                                    "minimax")', "generator forced minimax"),
    ("prior_same_seed", C, "seed=seeds[i])", "seed=seeds[0])", "both views' prior from one seed"),
    ("d_unsquashed", C, "fake = tf.sigmoid(tf.concat([pose, view], axis=-1))",
     "fake = tf.concat([pose, view], axis=-1)", "D sees un-squashed embeddings"),
    ("d_trains_encoder", C, "fake_const = tf.stop_gradient(fake)", "fake_const = fake",
     "D's loss reaches the encoder"),
    # Baselines.
    ("infomax_cross_weight", I, "cross = cfg.infomax_cross_weight * (", "cross = (",
     "cross weight ignored"),
    ("infomax_pairing", I, "cross_a, cross_p = fuse(pose_p, view_a), fuse(pose_a, view_p)",
     "cross_a, cross_p = fuse(pose_a, view_p), fuse(pose_p, view_a)", "swap_pose crossed wrongly"),
    ("infonce_temperature_flag", I, "temperature=cfg.infonce_temperature)", "temperature=1.0)",
     "temperature flag ignored"),
    ("recon_cross_swapped", R, 'cross_a = decode(pose_p, view_a, "decoder_cross_anchor")',
     'cross_a = decode(pose_a, view_p, "decoder_cross_anchor")',
     "cross reconstruction keeps the wrong view embedding"),
    ("kl_weight_ignored", R, "kl_loss = cfg.kl_weight * sum(", "kl_loss = 1.0 * sum(",
     "β ignored"),
    ("kl_scale_ignored", R, "losses.gaussian_kl_loss(m, lv, cfg.kl_scale)",
     "losses.gaussian_kl_loss(m, lv)", "kl_scale ignored (always the authors' sum)"),
    ("kl_metric_scaled", R, 'metrics["kl_divergence"] = sum(losses.gaussian_kl_loss(m, lv, "authors")',
     'metrics["kl_divergence"] = sum(losses.gaussian_kl_loss(m, lv, cfg.kl_scale)',
     "kl_divergence metric not in nats"),
    ("kl_one_view", R, "for e in (enc_a, enc_p)]", "for e in (enc_a, enc_a)]",
     "KL of the anchor counted twice, the positive's dropped"),
    ("kl_scale_default_authors", G, '"per_dimension", "VAE/β-VAE KL reduction',
     '"authors", "VAE/β-VAE KL reduction', "default KL scale = the collapsing authors' one"),
    ("bn_unbiased_moving_var", N, "variance = unbiased_variance * (count - 1.0) / count",
     "variance = unbiased_variance", "fused BN: Bessel-corrected variance in the moving average"),
    ("bn_moving_mean_frozen", N,
     "self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))",
     "self.moving_mean.assign(self.moving_mean)", "fused BN: moving mean never updated"),
    ("bn_never_fused", N, "if (not (training and self.trainable) or mask is not None",
     "if (True or mask is not None", "the fused path never taken (Keras' layer everywhere)"),
    ("drop_threshold_floor", N, "return int(math.ceil(float(np.float32(p)) * 2 ** 23))",
     "return int(math.floor(float(np.float32(p)) * 2 ** 23))", "dropout threshold rounded down"),
    ("drop_keep_is_rate", N, "kept = bits < tf.constant(unit_uniform_threshold(keep), tf.uint32)",
     "kept = bits < tf.constant(unit_uniform_threshold(self.rate), tf.uint32)",
     "dropout keeps with probability = the drop rate"),
    ("adagrad_keras3_eps", S, "if isinstance(gradient, tf.IndexedSlices):", "if True:",
     "Keras 3's update (ε under the root) instead of the authors'"),
    ("adagrad_lr_ignored", S, "lr=tf.cast(learning_rate, var.dtype)", "lr=tf.constant(0.02, var.dtype)",
     "AdaGrad learning rate fixed at the default"),
    # The cross-view alignment option (not in the paper) and its discrepancy.
    ("align_spread_free", L, "    if stop_scale_gradient:\n        spread = tf.stop_gradient(spread)\n",
     "", "alignment: the spread's gradient kept (the encoder may inflate z_p)"),
    ("align_spread_one_view", L, "both = tf.concat([a, b], axis=0)", "both = a",
     "discrepancy: the spread of the anchor view only"),
    ("align_no_half", L, "return distance / (2.0 * tf.maximum(spread, 1e-12))",
     "return distance / tf.maximum(spread, 1e-12)", "discrepancy not halved (1 ≠ unrelated views)"),
    ("align_weight_ignored", C, "enc_terms[\"alignment_loss\"] = cfg.alignment_loss_weight * discrepancy",
     "enc_terms[\"alignment_loss\"] = discrepancy", "alignment weight ignored"),
    ("align_dropped", C, "            total = total + enc_terms[\"alignment_loss\"]\n", "",
     "alignment term reported, not added to E's loss"),
    ("align_view_vs_pose", C, "discrepancy = losses.cross_view_discrepancy(pose_a, pose_p)",
     "discrepancy = losses.cross_view_discrepancy(pose_a, view_p)",
     "alignment pulls z_p towards the other view's z_v"),
    ("val_sequences_ignored", V, "probe.sequence_camera_probe(pose, data.sequences)",
     "probe.sequence_camera_probe(pose)", "validation probe blocks span two takes"),
    ("group_all_queries", "cv_mim/keypoints/retrieval_metrics.py", "rows = query_groups == group",
     "rows = np.ones(len(query_groups), bool)", "per-action Hit@k over every query"),
    ("action_keeps_take", "cv_mim/downstream/retrieval.py",
     'return np.array([re.sub(r"\\s+\\d+$", "", str(s).split("/", 1)[-1]) for s in sequences])',
     'return np.array([str(s).split("/", 1)[-1] for s in sequences])',
     "an action's takes ('Directions 1', 'Directions 2') counted as two actions"),
    ("probe_single_frames", "cv_mim/keypoints/probe.py",
     "return camera_probe(per_camera_features, frame_groups=groups, seed=seed)",
     "return camera_probe(per_camera_features, seed=seed)",
     "camera probe holds out single frames (near-duplicates leak)"),
    ("val_discrepancy_one_pair", V,
     "                          for i in range(c) for j in range(c) if i != j]))",
     "                          for i in range(1) for j in range(2) if i != j]))",
     "validation discrepancy of the first camera pair only"),
]


def _copy_tree(dest, root=ROOT):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ("cv_mim", "tests", "testdata"):
        if (root / name).exists():
            shutil.copytree(root / name, dest / name, ignore=ignore)
    for name in ("pytest.ini", "pyproject.toml", "setup.cfg", "conftest.py"):
        if (root / name).exists():
            shutil.copy(root / name, dest / name)


def _apply(dest, path, original, mutant):
    target = dest / path
    text = target.read_text()
    count = text.count(original)
    if count != 1:
        raise SystemExit(f"error: mutant text occurs {count} times in {path}: {original!r}")
    target.write_text(text.replace(original, mutant))


def _pytest(dest, tests):
    env = dict(os.environ, PYTHONPATH=str(dest), TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-m", "not slow and not multidevice", "-k", "not two_replicas", *tests]
    return subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True)


def run_mutant(mutant_id, path, original, mutant, root):
    tests = {L: LOSSES_TESTS, C: OBJECTIVE_TESTS, N: KERNEL_TESTS, S: KERNEL_TESTS,
             V: VALIDATION_TESTS, "cv_mim/keypoints/probe.py": VALIDATION_TESTS,
             "cv_mim/keypoints/retrieval_metrics.py": RETRIEVAL_TESTS,
             "cv_mim/downstream/retrieval.py": RETRIEVAL_TESTS}.get(path, BASELINE_TESTS)
    with tempfile.TemporaryDirectory(prefix=f"mutant_{mutant_id}_") as tmp:
        dest = pathlib.Path(tmp)
        _copy_tree(dest, root)
        _apply(dest, path, original, mutant)
        proc = _pytest(dest, tests)
    if proc.returncode == 0:
        return "survived", ""
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.M)
    if failed and proc.returncode in (1, 2):  # 2: xdist's "-x" interruption after the failure
        return "killed", failed[0]
    return "error", (proc.stdout.strip().splitlines()[-1:] or [""])[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma-separated mutant ids")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--skip_clean_check", action="store_true",
                        help="do not first check that the unmutated tree passes the tests")
    args = parser.parse_args()
    # One snapshot of the tree for the whole run, so edits made meanwhile do not leak into mutants.
    snapshot = tempfile.TemporaryDirectory(prefix="mutation_source_")
    root = pathlib.Path(snapshot.name)
    _copy_tree(root)
    wanted = set(filter(None, args.only.split(",")))
    unknown = wanted - {m[0] for m in MUTANTS}
    if unknown:
        raise SystemExit(f"error: unknown mutant ids {sorted(unknown)}")
    if not args.list and not args.skip_clean_check:
        # A kill only means something if the unmutated tree passes the same tests.
        for tests in (LOSSES_TESTS, BASELINE_TESTS):
            proc = _pytest(root, tests)
            if proc.returncode != 0:
                raise SystemExit(f"error: the unmutated tree fails {tests}:\n{proc.stdout[-2000:]}")
    print("| mutant | file | meaning | result | first failing test |")
    print("|---|---|---|---|---|")
    survivors = 0
    for mutant_id, path, original, mutant, meaning in MUTANTS:
        if wanted and mutant_id not in wanted:
            continue
        if args.list:
            print(f"| {mutant_id} | {path} | {meaning} | | |")
            continue
        status, test = run_mutant(mutant_id, path, original, mutant, root)
        survivors += status == "survived"
        print(f"| {mutant_id} | {path.split('/')[-1]} | {meaning} | {status} | {test} |", flush=True)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
