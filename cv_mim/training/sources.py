"""Pretraining data: the on-disk formats (Human3.6M layout, the authors' TFRecords) to a
:class:`~cv_mim.pipeline.PairSource` of multi-view 2D poses and normalised canonical 3D poses."""

import numpy as np

from cv_mim import pipeline
from cv_mim.keypoints import normalization
from cv_mim.training import loop


def source_from_multiview(poses) -> pipeline.PairSource:
    """PairSource from :class:`cv_mim.data.h36m.MultiViewPoses` (Human3.6M layout, real or synthetic)."""
    return pipeline.PairSource(keypoints_2d=np.asarray(poses.keypoints_2d, np.float32),
                      keypoints_3d=normalization.normalized_3d_canonical(poses.keypoints_3d))


DATA_FORMATS = ("h36m", "authors_tfrecord")


def load_pair_source(data_format="h36m", *, data_dir=None, data_3d=None, data_2d=None,
                     cameras=None, subjects=("S1", "S5", "S6", "S7", "S8"), unit="auto",
                     tfrecord_pattern=None, use_2d_file=True):
    """Loads multi-view pretraining data into a :class:`cv_mim.pipelines.PairSource`.

    ``h36m``: the VideoPose3D layout — ``data_dir`` holding ``data_3d_h36m.npz``,
    ``data_2d_h36m_gt.npz`` (optional) and ``cameras.json``, or the three paths given one by one
    (explicit paths win). Without a 2D file (or with ``use_2d_file=False``) the 2D keypoints are the
    projections of the 3D poses through the real cameras (with distortion).
    ``authors_tfrecord``: the authors' tf.Example files (two views per record).
    """
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {DATA_FORMATS}, got {data_format!r}")
    if data_format == "authors_tfrecord":
        if not tfrecord_pattern:
            raise ValueError("data_format='authors_tfrecord' needs tfrecord_pattern")
        from cv_mim.data import h36m_tfrecord  # pylint: disable=import-outside-toplevel
        records = h36m_tfrecord.read_authors_tfrecords(tfrecord_pattern)
        kp2d = np.asarray(records["keypoints_2d"], np.float32)
        scores = records.get("scores")
        if scores is not None:
            kp2d = np.where(np.asarray(scores)[..., None] > 0, kp2d, np.nan).astype(np.float32)
        return pipeline.PairSource(
            keypoints_2d=kp2d,
            keypoints_3d=normalization.normalized_3d_canonical(records["keypoints_3d"]))

    from cv_mim.data import h36m  # pylint: disable=import-outside-toplevel
    path_3d, data_2d_path, path_cameras = h36m.resolve_paths(data_dir, data_3d, data_2d, cameras,
                                                             use_2d_file)
    if use_2d_file and not data_2d_path:
        loop.log.info("no 2D file in %s: projecting the 3D poses through the real cameras", data_dir)
    poses = h36m.load_multiview(path_3d, path_cameras, data_2d_path, subjects=tuple(subjects),
                                unit=unit)
    loop.log.info("loaded %d frames x %d cameras of subjects %s (%s 2D)", len(poses),
             poses.num_cameras, ",".join(subjects), "file" if data_2d_path else "projected")
    return source_from_multiview(poses)
