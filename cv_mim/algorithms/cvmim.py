"""CV-MIM: the full objective of Eq. 11 (encoder E with the local branch, Q of Eq. 8, D of Eq. 10)."""

import tensorflow as tf

from cv_mim import losses
from cv_mim import networks
from cv_mim.algorithms import contract


class CVMIM(contract.Algorithm):
    """CV-MIM, the full objective of Eq. 11.

    Encoder E (with the local branch) minimises

        Σ_v L_MI(x_v; z_p,v ⊙ z_v,v) + c·λ1·L_MI(z_p; z_p⁺) + λ2·Σ_v L_inter(z_p,v; z_v,v)
        + λ3·Σ_v L_prior,gen(σ(z_p,v ⊕ z_v,v)),

    over the two views v ∈ {anchor, positive} of each 3D pose, where L_MI is the Jensen–Shannon
    estimator of Eq. 6 (the local branch stands in for x, DIM-style), L_inter the CLUB bound of Eq. 7
    and L_prior,gen the encoder's side of Eq. 10. c = 2 by default: Eq. 5 sums the cross-view MI over
    i ≠ j, which for two views is two terms, equal because the JSD estimator with the identity
    positives is symmetric in its arguments; ``loss_weighting="single_cross_view"`` sets c = 1
    (``ModelConfig.cross_view_factor``). Q minimises −log q(z_v | z_p) (Eq. 8, maximum
    likelihood) and D the discriminator loss of Eq. 10 plus the gradient penalty. λ2 = 0 removes Q and
    λ3 = 0 removes D entirely (the "w/o L_inter" / "w/o L_prior" ablations of Table 5).

    Not in the paper, off by default: ``alignment_loss_weight`` λa > 0 adds
    λa·:func:`~cv_mim.losses.cross_view_discrepancy`(z_p, z_p⁺) to E's loss. The discrepancy itself
    is always reported (``cross_view_discrepancy``): the share of z_p's spread by which the two
    views of one pose differ, the training-time view of z_p's view predictability (issue 15).
    """

    def __init__(self, config):
        super().__init__(config)
        cfg = config
        self.fused_dim = networks.fused_dim(cfg.fusion, cfg.pose_dim, cfg.view_dim)
        self.local_branch = contract.local_branch_from_config(cfg, self.fused_dim)
        self.networks["local_branch"] = self.local_branch
        self.optimizer_groups["encoder"] = ["encoder", "local_branch"]
        self.use_estimator = cfg.disentangle_loss_weight > 0
        self.use_discriminator = cfg.prior_loss_weight > 0
        self.authors_weighting = cfg.loss_weighting == "authors"
        self.cross_view_factor = cfg.cross_view_factor
        if self.use_estimator:
            self.networks["estimator"] = networks.LikelihoodEstimator(cfg.view_dim,
                                                                      name="estimator")
            self.optimizer_groups["estimator"] = ["estimator"]
            if self.authors_weighting:
                self.networks["inter_estimator"] = networks.LikelihoodEstimator(
                    cfg.view_dim, name="inter_estimator")
                self.optimizer_groups["estimator"].append("inter_estimator")
        if self.use_discriminator:
            self.networks["discriminator"] = networks.Discriminator(
                cfg.pose_dim + cfg.view_dim, name="discriminator")
            self.optimizer_groups["discriminator"] = ["discriminator"]

    def compute_losses(self, anchor, positive, seed, training=True):
        # Longer than a screen on purpose: Eq. 11 read top to bottom: one forward pass feeds the
        # three optimizer groups' losses; split up, a dozen gathered tensors would travel between
        # helpers (tests/test_objective.py re-derives it).
        cfg = self.config
        seeds = contract.stream_seeds(seed)
        enc_a, enc_p, loc_a, loc_p = self.encode_with_local(anchor, positive, seeds, training)
        pose_a, view_a = contract.gather(enc_a["pose_embedding"]), contract.gather(enc_a["view_embedding"])
        pose_p, view_p = contract.gather(enc_p["pose_embedding"]), contract.gather(enc_p["view_embedding"])
        loc_a, loc_p = contract.gather(loc_a), contract.gather(loc_p)

        measure = cfg.mi_measure
        representation_loss = (
            losses.fenchel_dual_loss(loc_a, networks.fuse(pose_a, view_a, cfg.fusion), measure)
            + losses.fenchel_dual_loss(loc_p, networks.fuse(pose_p, view_p, cfg.fusion), measure))
        cross_view = losses.fenchel_dual_loss(pose_a, pose_p, measure)
        cross_view_loss = cfg.view_loss_weight * self.cross_view_factor * cross_view

        enc_terms = {
            "representation_loss": representation_loss,
            "cross_view_loss": cross_view_loss,
        }
        discrepancy = losses.cross_view_discrepancy(pose_a, pose_p)
        result = {"metrics": {
            "cross_view_mi": -cross_view,
            "cross_view_discrepancy": discrepancy,
            "pose_view_correlation": contract.mean_abs_correlation(pose_a, view_a),
        }}
        total = representation_loss + cross_view_loss
        if cfg.alignment_loss_weight > 0:
            enc_terms["alignment_loss"] = cfg.alignment_loss_weight * discrepancy
            total = total + enc_terms["alignment_loss"]

        if self.use_estimator:
            q = self.networks["estimator"]
            q_a = q(pose_a, training=training)
            q_p = q(pose_p, training=training)
            variant = cfg.club_variant
            intra = (losses.club_upper_bound(q_a["mean"], q_a["log_var"], view_a, variant=variant)
                     + losses.club_upper_bound(q_p["mean"], q_p["log_var"], view_p,
                                               variant=variant))
            disentangle = cfg.disentangle_loss_weight * intra
            est_loss = (losses.likelihood_loss(q_a["mean"], q_a["log_var"], view_a)
                        + losses.likelihood_loss(q_p["mean"], q_p["log_var"], view_p))
            est_terms = {"intra_likelihood_loss": est_loss}
            if self.authors_weighting:  # two bounds: each reported, and their sum
                enc_terms["intra_bound_loss"] = disentangle
                q_inter = self.networks["inter_estimator"](view_a, training=training)
                inter = losses.club_upper_bound(q_inter["mean"], q_inter["log_var"], view_p,
                                                variant=variant)
                inter_loss = 2.0 * cfg.disentangle_loss_weight * inter
                enc_terms["inter_bound_loss"] = inter_loss
                disentangle = disentangle + inter_loss
                inter_ll = 2.0 * losses.likelihood_loss(q_inter["mean"], q_inter["log_var"],
                                                        view_p)
                est_terms["inter_likelihood_loss"] = inter_ll
                est_loss = est_loss + inter_ll
            enc_terms["disentangle_loss"] = disentangle
            total = total + disentangle
            result["estimator"] = dict(est_terms, total_loss=est_loss)

        if self.use_discriminator:
            d = self.networks["discriminator"]
            prior_loss = 0.0
            disc_loss = 0.0
            seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2,
                                                            alg=networks.RNG_ALG)
            for i, (pose, view) in enumerate(((pose_a, view_a), (pose_p, view_p))):
                fake = tf.sigmoid(tf.concat([pose, view], axis=-1))
                # The uniform prior samples are drawn for the whole global batch from the step's seed,
                # so they do not depend on how the batch is split across replicas.
                real = networks.stateless_unit_uniform(tf.shape(fake), seeds[i])
                prior_loss += losses.generator_loss(d(fake, training=training)["logit"],
                                                    cfg.generator_loss)
                # D's own loss sees the embeddings as constants: the encoder is never trained on it.
                fake_const = tf.stop_gradient(fake)
                with tf.GradientTape(watch_accessed_variables=False) as gp_tape:
                    gp_tape.watch([real, fake_const])
                    real_logit = d(real, training=training)["logit"]
                    fake_logit = d(fake_const, training=training)["logit"]
                grad_real, grad_fake = gp_tape.gradient(
                    [real_logit, fake_logit], [real, fake_const])
                disc_loss += (losses.discriminator_loss(real_logit, fake_logit)
                              + cfg.gradient_penalty_weight * 0.5
                              * (losses.gradient_penalty(grad_real)
                                 + losses.gradient_penalty(grad_fake)))
            prior_loss = cfg.prior_loss_weight * prior_loss
            enc_terms["prior_loss"] = prior_loss
            total = total + prior_loss
            result["discriminator"] = {"total_loss": disc_loss}

        result["encoder"] = dict(enc_terms, total_loss=total)
        return result
