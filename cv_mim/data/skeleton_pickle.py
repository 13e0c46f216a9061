"""PYSKL / MMAction2 skeleton annotation pickles (numpy only; read without running code).

The file (e.g. PYSKL's ``ntu60_hrnet.pkl``, MMAction2's ``ntu60_2d.pkl``) is a dict::

    {"split": {"xsub_train": [frame_dir, ...], "xsub_val": [...], ...},
     "annotations": [{"frame_dir": str, "label": int, "total_frames": T, "img_shape": (H, W),
                      "keypoint": [M, T, V, C] float (C = 2 pixels, or 3 for 3D skeletons),
                      "keypoint_score": [M, T, V] (2D only)}, ...]}

It is read with :func:`cv_mim.data.safe_pickle.safe_load`, which admits only numpy arrays, dtypes and
plain containers: a pickle that names any other callable is refused, never run.

Fields: clip id = ``frame_dir``; label = ``label`` (class names are the label numbers as text, as the
file has none); split = ``train`` / ``test`` from the ``split`` lists of one benchmark (``split_prefix``
argument, e.g. ``xsub``; default: the first ``*_train`` key of the file, or plain ``train``/``val``/
``test`` keys); NTU-style ``frame_dir`` names (``S001C002P003R002A013``) also give subject and view.
Layout: V = 17 -> ``coco17`` (the HRNet 2D annotations), V = 25 -> ``ntu25`` (Kinect); the user can name
another. Main person: the M axis is a person id over the clip; the person with the largest mean box
(joint extent) is followed, and a frame where that person has no joint with score > 0 (or only zero
coordinates, PYSKL's padding) is missing. 3D skeletons (C = 3) use x, y as the 2D keypoints.
"""

import os

import numpy as np

from cv_mim.data import detections
from cv_mim.data import ntu_rgbd
from cv_mim.data import safe_pickle

JOINT_LAYOUTS = {17: "coco17", 25: "ntu25"}


def _split_of(split, split_prefix, what):
    if not split:
        return None, {}
    if not isinstance(split, dict):
        raise ValueError(f"{what}: 'split' must be a dict of name -> list of frame_dir")
    keys = list(split)
    if split_prefix is None:
        prefixed = [k for k in keys if k.endswith("_train")]
        split_prefix = prefixed[0][: -len("_train")] if prefixed else ""
    prefix = f"{split_prefix}_" if split_prefix else ""
    roles = {f"{prefix}train": "train", f"{prefix}val": "test", f"{prefix}test": "test"}
    if not any(k in split for k in roles):
        raise ValueError(f"{what}: no split lists with prefix {split_prefix!r}; the file has "
                         f"{keys}")
    out = {}
    for key, role in roles.items():
        for name in split.get(key, []):
            out[str(name)] = role
    return split_prefix, out


def _person_track(ann, what):
    kp = np.asarray(ann["keypoint"], np.float32)
    if kp.ndim != 4 or kp.shape[-1] not in (2, 3):
        raise ValueError(f"{what}: keypoint of shape {kp.shape}, expected [M, T, V, 2|3]")
    kp = kp[..., :2]
    score = ann.get("keypoint_score")
    sc = (np.ones(kp.shape[:-1], np.float32) if score is None
          else np.asarray(score, np.float32))
    if sc.shape != kp.shape[:-1]:
        raise ValueError(f"{what}: keypoint_score of shape {sc.shape} for keypoint {kp.shape}")
    present = (sc > 0) & np.isfinite(kp).all(-1) & (np.abs(kp).sum(-1) > 0)
    # Mean box (joint extent) area of each person over the clip, vectorised (NTU pickles hold
    # tens of thousands of clips); frames where a person is absent count as area 0.
    lo = np.where(present[..., None], kp, np.inf).min(axis=2)
    hi = np.where(present[..., None], kp, -np.inf).max(axis=2)
    extent = np.where(present.any(axis=2)[..., None], hi - lo, 0.0)
    areas = (extent[..., 0] * extent[..., 1]).mean(axis=1) if kp.shape[1] else np.zeros(len(kp))
    m = int(np.argmax(areas)) if len(areas) else 0
    out_kp = np.where(present[m][..., None], kp[m], np.nan).astype(np.float32)
    out_sc = np.where(present[m], sc[m], 0.0).astype(np.float32)
    return out_kp, out_sc


def load_skeleton_pickle(path, *, split_prefix=None):
    """The annotations of ``path`` -> (list of DetectionClip, info dict)."""
    doc = safe_pickle.load_pickle(path, what=path)
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations"), list):
        raise ValueError(f"{path}: not a skeleton annotation pickle (expected a dict with an "
                         "'annotations' list)")
    split_prefix, roles = _split_of(doc.get("split"), split_prefix, path)
    clips = []
    for k, ann in enumerate(doc["annotations"]):
        what = f"{path}: annotations[{k}]"
        if not isinstance(ann, dict) or "keypoint" not in ann or "frame_dir" not in ann:
            raise ValueError(f"{what} lacks 'frame_dir' or 'keypoint'")
        kp, sc = _person_track(ann, what)
        name = str(ann["frame_dir"])
        fields = {"split": roles.get(name, "")}
        if "label" in ann:
            fields["label"] = int(ann["label"])
        try:
            ntu = ntu_rgbd.parse_ntu_filename(name)
            fields["subject"] = ntu_rgbd.subject_name(ntu.performer)
            fields["view"] = ntu_rgbd.view_name(ntu.camera, ntu.replication)
        except ValueError:
            pass
        clips.append(detections.DetectionClip(
            clip_id=name, keypoints=kp, scores=sc, frames=tuple(range(len(kp))),
            layout=JOINT_LAYOUTS.get(kp.shape[1]), fields=fields))
    return clips, {"split_prefix": split_prefix, "source": os.path.abspath(path)}
