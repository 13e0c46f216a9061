r"""Cross-view retrieval evaluation of an export on Human3.6M-layout multi-view data.

    python -m cv_mim.retrieval --export_dir=runs/cv_mim/export --data_dir=DATA/h36m \
        --subjects=S9,S11 --output_dir=runs/cv_mim/retrieval

Writes retrieval_results.json and retrieval.md: Hit@k per feature, the camera predicted from one
frame's feature by a linear probe (z_p's view predictability: chance for a view-invariant z_p) and
Hit@1 per camera pair by the angle between the cameras' optical axes; with --draw, nearest-neighbour
panels (hits green, misses red, with the 3D poses) and a PCA map of the features coloured by pose
cluster and by camera (retrieval_embedding_map.png).

Your own synchronised cameras (no 3D; hit = the same frame ± --tolerance frames of another camera):

    python -m cv_mim.retrieval --export_dir=runs/cv_mim/export --dataset=openpose_multiview \
        --input=MY_TAKE --layout=body25b --tolerance=2 --output_dir=runs/cv_mim/retrieval_mine
"""


from absl import flags

from cv_mim import cli
from cv_mim.data import h36m
from cv_mim.data import registry
from cv_mim.downstream import retrieval as retrieval_lib
from cv_mim.serving import pretrained

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", None, "SavedModel from cv_mim.export (default: the shipped "
                    "pretrained encoder, cv_mim/pretrained/).")
flags.DEFINE_string("output_dir", None, "Where results go.")
flags.DEFINE_string("data_dir", None, "Directory with data_3d_h36m.npz, data_2d_h36m_gt.npz, "
                    "cameras.json.")
flags.DEFINE_string("data_3d", None, "3D .npz (overrides data_dir).")
flags.DEFINE_string("data_2d", None, "2D .npz (overrides data_dir; default: project the 3D).")
flags.DEFINE_string("cameras", None, "cameras.json (overrides data_dir).")
flags.DEFINE_list("subjects", ["S9", "S11"], "Evaluation subjects (held out from pretraining).")
flags.DEFINE_enum("unit", "auto", list(h36m.UNITS), "Unit of the 3D file.")
flags.DEFINE_float("threshold", 0.1, "P-MPJPE threshold on normalised 3D poses (Pr-VIPE: 0.1).")
flags.DEFINE_integer("frame_stride", 1, "Use every n-th frame.")
flags.DEFINE_integer("max_queries", 2000, "Queries per camera pair (random subset; 0 = all).")
flags.DEFINE_integer("seed", 0, "Seed of the query subset and the panels.")
flags.DEFINE_bool("draw", True, "Draw nearest-neighbour panels and the PCA embedding map "
                  "(matplotlib).")
cli.define_trust_export_flag()
flags.DEFINE_enum("dataset", "h36m", ("h36m",) + registry.DETECTOR_DATASETS,
                  "h36m: the Human3.6M protocol above; a detector format: synchronised cameras "
                  "(one clip per camera) read from --input.")
flags.DEFINE_string("input", None, "Detector formats: the take (e.g. a folder of cam*/ folders).")
cli.define_detector_flags()
flags.DEFINE_integer("tolerance", 0, "Detector formats: a neighbour within this many frames of the "
                     "query's frame is a hit.")
flags.mark_flags_as_required(["output_dir"])


@cli.friendly_errors
def main(argv):
    cli.start(argv)
    export_dir = pretrained.resolve(FLAGS.export_dir)
    if FLAGS.dataset != "h36m":
        if not FLAGS.input:
            raise ValueError(f"--dataset={FLAGS.dataset} needs --input")
        results = retrieval_lib.run_synchronised(
            export_dir=export_dir, output_dir=FLAGS.output_dir, dataset=FLAGS.dataset,
            path=FLAGS.input, tolerance=FLAGS.tolerance, trust_export=FLAGS.trust_export,
            **cli.detector_kwargs(FLAGS))
        print(retrieval_lib.synchronised_table(results))
        return
    results = retrieval_lib.run(
        export_dir=export_dir, output_dir=FLAGS.output_dir, data_dir=FLAGS.data_dir,
        data_3d=FLAGS.data_3d, data_2d=FLAGS.data_2d, cameras=FLAGS.cameras,
        subjects=FLAGS.subjects, unit=FLAGS.unit, threshold=FLAGS.threshold,
        frame_stride=FLAGS.frame_stride, max_queries=FLAGS.max_queries or None, seed=FLAGS.seed,
        draw=FLAGS.draw, trust_export=FLAGS.trust_export)
    print(retrieval_lib.markdown_table(results))


if __name__ == "__main__":
    cli.run(main)
