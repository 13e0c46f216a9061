"""The MI baselines (Eq. 2 optimised directly, §3.4 "Discussion"), :class:`CrossViewInfoMax`:

    L = Σ_v L_MI(l_v; z_p,v ⊙ z_v,v) + w·Σ_v L_MI(l_v; z_p,v̄ ⊙ z_v,v),

where l_v is the local branch (:class:`~cv_mim.networks.LocalBranch` on E's ``fc0``, checkpoint name
``local_branch``) standing in for x_v, ⊙ the fusion of ``config.fusion`` and w =
``config.infomax_cross_weight``. L_MI is the Jensen–Shannon (or ``config.mi_measure``) estimator of
Eq. 6 for ``dim`` [17] and InfoNCE [34] (temperature ``config.infonce_temperature``) for ``infonce``.
The cross-view global feature pairs the OTHER view's pose embedding with the SAME view's view
embedding by default (``cross_pairing="swap_pose"``); see :class:`CrossViewInfoMax` for why.

Multi-replica semantics are CV-MIM's (see :mod:`cv_mim.algorithms`): every tensor that enters a loss
is all-gathered, so contrastive negatives come from the global batch and every loss is the
global-batch loss, identical on all replicas.
"""

from cv_mim import losses
from cv_mim import networks
from cv_mim.algorithms import contract

CROSS_PAIRINGS = ("swap_pose", "other_view")


class CrossViewInfoMax(contract.Algorithm):
    """Eq. 2 maximised directly with a lower-bound MI estimator: the ``dim`` and ``infonce`` baselines.

    Networks: ``encoder`` and ``local_branch`` (one optimizer group ``encoder``). The local branch reads
    E's ``fc0`` activation and stands in for the input x, exactly as in CV-MIM's MI(x; z_p ⊙ z_v) term;
    the global feature is a fusion (``config.fusion``) of a pose and a view embedding.

    Terms (v ∈ {a, p}, v̄ the other view, l_v the local feature of view v):

    * ``representation_loss`` = Σ_v L_MI(l_v; z_p,v ⊙ z_v,v) — the first sum of Eq. 2;
    * ``cross_representation_loss`` = w·Σ_v L_MI(l_v; g_v) — the cross-view sum of Eq. 2, with
      w = ``config.infomax_cross_weight`` and

      - ``cross_pairing="swap_pose"`` (default): g_v = z_p,v̄ ⊙ z_v,v, the other view's pose with this
        view's view embedding;
      - ``cross_pairing="other_view"``: g_v = z_p,v̄ ⊙ z_v,v̄, Eq. 2 as printed.

    Why ``swap_pose`` is the default: Eq. 2 prints I(x^i; z_p^j, z_v^j), but the paper's own derivation
    (App. A.1, last two inequalities, and App. A.2) bounds I(x^i; z_p^j, z_v^i); the cross-reconstruction
    objective it is compared with (Eq. 12) decodes (z_p⁺, z_v) — the other view's pose with this view's
    view embedding; and the authors' INFOMAX baseline uses that pairing (fact sheet §3.5, §4.3). It is
    also the only reading with a disentangling pressure: with the printed pairing, g_v is just the other
    view's own fused embedding, so the cross term asks BOTH halves of view v̄'s embedding to carry what
    the two views share, and nothing ties the view embedding to the view-specific part of x_v. With
    ``swap_pose`` the only way the fused code can match x_v is for z_p to carry the view-shared content
    (it comes from the other view) and z_v the view-specific content (it must come from this view).

    L_MI is :func:`~cv_mim.losses.fenchel_dual_loss` with ``config.mi_measure`` (default ``"jsd"``,
    Eq. 6) for ``dim`` and :func:`~cv_mim.losses.info_nce_loss` with temperature
    ``config.infonce_temperature`` for ``infonce`` (the authors' form: each global feature's own local
    feature against the local features of the whole global batch). Positives are the diagonal (the same 3D pose), every other
    item of the global batch is a negative.

    Metrics: ``cross_view_mi`` (−L_MI of the JSD/``mi_measure`` estimator between the two views' pose
    embeddings — the quantity CV-MIM optimises, reported here as a monitor so the two can be compared)
    and ``pose_view_correlation``.
    """

    def __init__(self, config, cross_pairing=None):
        cross_pairing = config.cross_pairing if cross_pairing is None else cross_pairing
        if cross_pairing not in CROSS_PAIRINGS:
            raise ValueError(f"cross_pairing must be one of {CROSS_PAIRINGS}, got {cross_pairing!r}")
        if config.infomax_cross_weight < 0:
            raise ValueError(
                f"infomax_cross_weight must be >= 0, got {config.infomax_cross_weight}")
        if config.algorithm == "infonce" and not config.infonce_temperature > 0:
            raise ValueError(
                f"infonce_temperature must be > 0, got {config.infonce_temperature}")
        super().__init__(config)
        cfg = config
        self.cross_pairing = cross_pairing
        self.fused_dim = networks.fused_dim(cfg.fusion, cfg.pose_dim, cfg.view_dim)
        self.local_branch = contract.local_branch_from_config(cfg, self.fused_dim)
        self.networks["local_branch"] = self.local_branch
        self.optimizer_groups["encoder"] = ["encoder", "local_branch"]

    def mi_loss(self, local, global_):
        """The estimator's loss L_MI(local; global) on [B, D] tensors (minimising it maximises MI)."""
        cfg = self.config
        if cfg.algorithm == "infonce":
            return losses.info_nce_loss(local, global_, temperature=cfg.infonce_temperature)
        return losses.fenchel_dual_loss(local, global_, cfg.mi_measure)

    def compute_losses(self, anchor, positive, seed, training=True):
        """Eq. 2 for both views.

        Args:
          anchor, positive: [b, J, 2] normalised 2D poses of this replica (row i of both is the same
            3D pose seen from two cameras).
          seed: [2] int step seed (the dropout masks, :func:`contract.stream_seeds`).
          training: training mode for BatchNorm and dropout.
        Returns:
          ``{"encoder": {"total_loss", "representation_loss", "cross_representation_loss"},
          "metrics": {"cross_view_mi", "pose_view_correlation"}}`` (global-batch values).
        """
        cfg = self.config
        seeds = contract.stream_seeds(seed)
        enc_a, enc_p, loc_a, loc_p = self.encode_with_local(anchor, positive, seeds, training)
        gather = contract.gather
        pose_a, view_a = gather(enc_a["pose_embedding"]), gather(enc_a["view_embedding"])
        pose_p, view_p = gather(enc_p["pose_embedding"]), gather(enc_p["view_embedding"])
        loc_a, loc_p = gather(loc_a), gather(loc_p)


        def fuse(pose, view):
            return networks.fuse(pose, view, cfg.fusion)

        representation = (self.mi_loss(loc_a, fuse(pose_a, view_a))
                          + self.mi_loss(loc_p, fuse(pose_p, view_p)))
        if self.cross_pairing == "swap_pose":
            cross_a, cross_p = fuse(pose_p, view_a), fuse(pose_a, view_p)
        else:
            cross_a, cross_p = fuse(pose_p, view_p), fuse(pose_a, view_a)
        cross = cfg.infomax_cross_weight * (self.mi_loss(loc_a, cross_a)
                                            + self.mi_loss(loc_p, cross_p))
        return {
            "encoder": {
                "total_loss": representation + cross,
                "representation_loss": representation,
                "cross_representation_loss": cross,
            },
            "metrics": {
                "cross_view_mi": -losses.fenchel_dual_loss(pose_a, pose_p, cfg.mi_measure),
                "pose_view_correlation": contract.mean_abs_correlation(pose_a, view_a),
            },
        }
