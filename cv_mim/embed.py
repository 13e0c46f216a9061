r"""Embeds a whole dataset with an export into one .npz file (format: cv_mim.serving.embedding_file).

    python -m cv_mim.embed --export_dir=runs/cv_mim/export --dataset=penn_action \
        --input=DATA/penn_action/labels --output=runs/cv_mim/penn_embeddings.npz --flip_modes=keep,swap
"""


from absl import flags

from cv_mim import cli
from cv_mim.data import registry as data_registry
from cv_mim.serving import embed as embed_lib
from cv_mim.serving import embedding_file
from cv_mim.serving import pretrained

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", None, "SavedModel from cv_mim.export (default: the shipped "
                    "pretrained encoder, cv_mim/pretrained/).")
flags.DEFINE_enum("dataset", None, data_registry.DATASETS,
                  "penn_action: labels/ folder of .mat; ntu_rgbd: folder of .skeleton; h36m: "
                  "folder with data_3d_h36m.npz (+ data_2d_h36m_gt.npz) and cameras.json; npy: a "
                  ".npy of [N,13,2] or [C,T,13,2] canonical keypoints (NaN = missing); openpose: "
                  "folder of per-frame OpenPose JSON (or of such folders); openpose_multiview: "
                  "folder of cam*/ OpenPose folders; coco_json: COCO keypoint annotation or result "
                  "file; mmpose_json: MMPose prediction file or folder; skeleton_pickle: PYSKL / "
                  "MMAction2 annotation .pkl.")
flags.DEFINE_string("input", None, "Dataset path.")
flags.DEFINE_string("output", None, "Output .npz (any tf.io.gfile path, e.g. gs://).")
flags.DEFINE_list("flip_modes", [], "Also embed mirrored keypoints: keep and/or swap.")
flags.DEFINE_enum("feature_dtype", "float16", embedding_file.FEATURE_DTYPES,
                  "Precision of the stored features (float16: half the size; the downstream "
                  "classifiers give the same results, see README).")
flags.DEFINE_bool("skip_malformed", False, "Skip malformed files (counted in the log) instead of "
                  "stopping.")
flags.DEFINE_string("skip_list", None, "NTU: text file of sample names to skip.")
flags.DEFINE_list("subjects", None, "h36m: subjects to embed (default: all).")
flags.DEFINE_float("min_visible_fraction", 0.4, "Penn: drop clips with fewer visible joints.")
cli.define_invisible_joints_flag()
cli.define_trust_export_flag()
cli.define_detector_flags()
flags.mark_flags_as_required(["dataset", "input", "output"])


@cli.friendly_errors
def main(argv):
    cli.start(argv)
    kwargs = {"skip_malformed": FLAGS.skip_malformed}
    if FLAGS.dataset == "ntu_rgbd":
        kwargs["skip_list"] = FLAGS.skip_list
    if FLAGS.dataset == "h36m":
        kwargs["subjects"] = FLAGS.subjects
    if FLAGS.dataset == "penn_action":
        kwargs["min_visible_fraction"] = FLAGS.min_visible_fraction
        kwargs["invisible_joints"] = FLAGS.invisible_joints
    if FLAGS.dataset in data_registry.DETECTOR_DATASETS:
        kwargs = cli.detector_kwargs(FLAGS)
    path = embed_lib.embed_dataset(pretrained.resolve(FLAGS.export_dir), FLAGS.dataset, FLAGS.input,
                                   FLAGS.output,
                                   flip_modes=tuple(FLAGS.flip_modes),
                                   trust_export=FLAGS.trust_export,
                                   feature_dtype=FLAGS.feature_dtype, **kwargs)
    print(f"wrote {path}")


if __name__ == "__main__":
    cli.run(main)
