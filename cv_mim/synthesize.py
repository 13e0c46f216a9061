r"""Generates the synthetic multi-view pose world in the real datasets' on-disk formats.

    python -m cv_mim.synthesize --output_dir=/tmp/cv_mim_world            # default size (~10-15 s)
    python -m cv_mim.synthesize --output_dir=/tmp/tiny --size=tiny        # a tiny world (< 1 s)
    python -m cv_mim.synthesize --output_dir=/tmp/clean --nonoise         # exact 2D, all joints visible
    python -m cv_mim.synthesize --output_dir=/tmp/varied --size=varied    # + random standing gestures

Writes OUT/h36m/{data_3d_h36m.npz, data_2d_h36m_gt.npz, cameras.json}, OUT/penn_action/labels/*.mat,
OUT/ntu_rgbd/nturgb+d_skeletons/*.skeleton and OUT/manifest.json, then prints a summary. The same
--seed gives the same data. The library entry point is :func:`cv_mim.synthetic.world.generate_world`.
"""

from absl import app
from absl import flags

from cv_mim import cli
from cv_mim.synthetic import world

FLAGS = flags.FLAGS

flags.DEFINE_string("output_dir", None, "Output directory (a previous synthetic world there is "
                    "replaced; any other non-empty directory is refused).")
flags.DEFINE_integer("seed", 0, "Random seed (same seed, same data).")
flags.DEFINE_enum("size", "default", sorted(world.SIZES), "Preset size of the world.")
flags.DEFINE_bool("noise", True, "Detector-like 2D noise and missing joints (--nonoise: exact "
                  "projections, every joint visible).")
flags.DEFINE_multi_enum("formats", list(world.FORMATS), world.FORMATS, "Formats to write.")
flags.DEFINE_integer("num_subjects", None, "Human3.6M-layout subjects (1-11; picked S1, S9, S5, S11, "
                     "S6, S7, S8, S2, S3, S4, S10). Default: the size's (default 7, tiny 2, large 11).")
flags.DEFINE_integer("h36m_frames", None, "Frames per Human3.6M-layout take (default: the size's).")
flags.DEFINE_integer("h36m_free_takes", None, "Extra Human3.6M-layout takes per subject of random "
                     "standing gestures (default: the size's; 'varied' has one per scripted motion).")
flags.DEFINE_integer("penn_clips", None, "Number of Penn Action clips (default: the size's).")
flags.DEFINE_list("ntu_performers", None, "NTU performer ids, e.g. 1,2,3,4 (default: the size's).")
flags.mark_flag_as_required("output_dir")


@cli.friendly_errors
def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        performers = (None if FLAGS.ntu_performers is None
                      else [int(p) for p in FLAGS.ntu_performers])
    except ValueError:
        raise app.UsageError(f"--ntu_performers must be integers, got {FLAGS.ntu_performers}")
    try:
        manifest = world.generate_world(
            FLAGS.output_dir, seed=FLAGS.seed, size=FLAGS.size, noise=FLAGS.noise,
            formats=tuple(dict.fromkeys(FLAGS.formats)), num_subjects=FLAGS.num_subjects,
            h36m_frames=FLAGS.h36m_frames, penn_clips=FLAGS.penn_clips, ntu_performers=performers,
            h36m_free_takes=FLAGS.h36m_free_takes)
    except ValueError as error:  # bad flag values: a one-line message, not a traceback
        raise app.UsageError(str(error))
    print(world.summary(manifest))
    print(f"Written to {FLAGS.output_dir}")


if __name__ == "__main__":
    cli.run(main)
