"""Pretraining data: the on-disk formats (Human3.6M layout, the authors' TFRecords) to a
:class:`~cv_mim.pipeline.PairSource` of multi-view 2D poses and normalised canonical 3D poses."""

import os

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
    """Loads multi-view pretraining data into a :class:`cv_mim.pipeline.PairSource`.

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


VALIDATION_FLAGS = ("--val_subjects", "--val_data_3d", "--val_data_2d", "--val_cameras")


def load_validation_set(data_format="h36m", *, data_dir=None, data_3d=None, data_2d=None,
                        cameras=None, subjects=(), unit="auto", use_2d_file=True, val_subjects=(),
                        val_data_3d=None, val_data_2d=None, val_cameras=None, max_frames=1000):
    """The held-out frames of pretraining's validation (:mod:`cv_mim.training.validation`), or None.

    Either ``val_subjects`` of the training files (``data_dir`` / ``data_3d`` / ``cameras``; they must
    not be training ``subjects``), or explicit files: ``val_data_3d`` with ``val_data_2d`` (optional:
    without it the 3D is projected through the cameras) and ``val_cameras`` (default: the training
    camera file), all their subjects unless ``val_subjects`` names some. Every ``s``-th frame is kept,
    ``s`` the smallest stride that leaves at most ``max_frames`` (0 = all).

    Raises:
      ValueError: naming the flag, for validation with a data format without 3D multi-view files, a
        validation subject that is also a training subject, ``val_data_2d``/``val_cameras`` without
        ``val_data_3d``, a negative ``max_frames``.
    """
    given = [name for name, value in zip(VALIDATION_FLAGS,
                                         (val_subjects, val_data_3d, val_data_2d, val_cameras))
             if value]
    if not given:
        return None
    if data_format != "h36m":
        raise ValueError(f"{'/'.join(given)}: validation needs multi-view 2D with 3D in the Human3.6M "
                         f"layout (--data_format=h36m); --data_format={data_format} has none — drop "
                         "the validation flags")
    if (val_data_2d or val_cameras) and not val_data_3d:
        raise ValueError("--val_data_2d/--val_cameras need --val_data_3d (or use --val_subjects "
                         "of the training files)")
    if int(max_frames) != max_frames or max_frames < 0:
        raise ValueError(f"--val_max_frames must be an integer >= 0 (0 = all), got {max_frames!r}")
    from cv_mim.data import h36m  # pylint: disable=import-outside-toplevel
    from cv_mim.training import validation  # pylint: disable=import-outside-toplevel
    train_3d, train_2d, train_cameras = h36m.resolve_paths(data_dir, data_3d, data_2d, cameras,
                                                           use_2d_file)
    if val_data_3d:
        path_3d, path_2d, path_cameras = h36m.resolve_paths(None, val_data_3d, val_data_2d,
                                                            val_cameras or train_cameras)
        wanted = tuple(val_subjects) or None
    else:
        path_3d, path_2d, path_cameras = train_3d, train_2d, train_cameras
        wanted = tuple(val_subjects)
    if os.path.abspath(path_3d) == os.path.abspath(train_3d):
        if wanted is None:
            raise ValueError(f"--val_data_3d {val_data_3d} is the training 3D file: name the "
                             "held-out subjects with --val_subjects")
        overlap = sorted(set(wanted) & set(subjects))
        if overlap:
            raise ValueError(f"--val_subjects: {','.join(overlap)} also train (--subjects); "
                             "validation must be on held-out subjects")
    poses = h36m.load_multiview(path_3d, path_cameras, path_2d, subjects=wanted, unit=unit)
    idx = validation.stride_index(len(poses), max_frames)
    poses_3d = normalization.normalized_3d_canonical(poses.keypoints_3d[idx])
    names = ",".join(sorted(set(map(str, poses.subjects))))
    return validation.ValidationSet(
        keypoints_2d=np.asarray(poses.keypoints_2d[idx], np.float32), poses_3d=poses_3d,
        camera_ids=[str(c) for c in poses.camera_ids],
        description=f"subjects {names} of {path_3d} ({'2D file' if path_2d else 'projected 2D'}, "
                    f"{len(poses_3d)} of {len(poses)} frames)",
        sequences=poses.sequence_names(idx))
