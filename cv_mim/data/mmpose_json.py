"""MMPose prediction JSON (MMPose 1.x; numpy only).

Accepted shapes (an *instance* is ``{"keypoints": [[x, y], ...], "keypoint_scores": [...], "bbox":
[[x1, y1, x2, y2]], "bbox_score", ["track_id"]}``):

* the demo scripts' ``--save-predictions`` file: ``{"meta_info": {"dataset_name", "num_keypoints",
  ...}, "instance_info": [{"frame_id": i, "instances": [...]}, ...]}`` (a video) or ``"instance_info":
  [instances]`` (one image);
* ``MMPoseInferencer(pred_out_dir=...)`` files: ``[{"frame_id", "instances"}, ...]`` (a video) or
  ``[instances]`` (one image).

``path`` is a file (a video file is one clip; an image file one single-frame clip) or a folder of such
files: per-image files form ONE clip in file-name order (numbers compared numerically); each video file
is its own clip (clip id = file stem). Frames are ordered by ``frame_id``; an empty ``instances`` list
is a missing frame. Layout: ``meta_info.dataset_name`` (:data:`DATASET_LAYOUTS`) when present, else the
user names it. Main person: :mod:`cv_mim.data.detections`.
"""

import os

import numpy as np

from cv_mim.data import detections

# MMPose dataset names -> layouts (the joint orders of those datasets' metainfo files).
DATASET_LAYOUTS = {"coco": "coco17", "h36m": "h36m17", "halpe26": "halpe26",
                   "coco_wholebody": "coco_wholebody133"}


def _instance(inst, name):
    if not isinstance(inst, dict) or "keypoints" not in inst:
        raise ValueError(f"{name}: an instance without 'keypoints'")
    kp = np.asarray(inst["keypoints"], np.float64)
    if kp.ndim == 3 and kp.shape[0] == 1:  # some versions keep a leading instance axis
        kp = kp[0]
    if kp.ndim != 2 or kp.shape[1] < 2:
        raise ValueError(f"{name}: keypoints of shape {kp.shape}, expected [J, 2]")
    scores = inst.get("keypoint_scores")
    sc = np.ones(len(kp)) if scores is None else np.asarray(scores, np.float64).reshape(-1)
    if sc.shape != (len(kp),):
        raise ValueError(f"{name}: {sc.size} keypoint_scores for {len(kp)} keypoints")
    box = np.asarray(inst.get("bbox", []), np.float64).reshape(-1)
    area = float((box[2] - box[0]) * (box[3] - box[1])) if box.size == 4 else None
    return detections.Person(keypoints=kp[:, :2].astype(np.float32), scores=sc.astype(np.float32),
                             area=area, person_id=inst.get("track_id"))


def _frames(records):
    """(is_video, [(frame_id, instances)]) of an ``instance_info`` / inferencer list."""
    if records and all(isinstance(r, dict) and "instances" in r for r in records):
        return True, sorted(((r.get("frame_id", k), r["instances"]) for k, r in enumerate(records)),
                            key=lambda fr: fr[0])
    return False, [(0, records)]


def read_file(path):
    """One MMPose prediction file -> (is_video, frames [(frame_id, [Person])], layout or None)."""
    doc = detections.read_json(path, "MMPose")
    layout = None
    if isinstance(doc, dict):
        if "instance_info" not in doc:
            raise ValueError(f"{path}: not an MMPose prediction file (no 'instance_info')")
        meta = doc.get("meta_info") or {}
        layout = DATASET_LAYOUTS.get(str(meta.get("dataset_name", "")).lower())
        doc = doc["instance_info"]
    if not isinstance(doc, list):
        raise ValueError(f"{path}: not an MMPose prediction file (expected a list of instances or "
                         "frames)")
    is_video, frames = _frames(doc)
    return is_video, [(fid, [_instance(i, f"{path} frame {fid}") for i in insts])
                      for fid, insts in frames], layout


def _clip(clip_id, names, frames, layout, path):
    sizes = {p.keypoints.shape[0] for people in frames for p in people}
    if len(sizes) > 1:
        raise ValueError(f"{path}: detections with different joint counts {sorted(sizes)}")
    num = sizes.pop() if sizes else 17
    kp, sc, _ = detections.select_main_person(frames, num, name=str(path))
    return detections.DetectionClip(clip_id=clip_id, keypoints=kp, scores=sc,
                                    frames=tuple(str(n) for n in names), layout=layout)


def load_mmpose_json(path):
    """A prediction file or a folder of them -> list of DetectionClip (module docstring)."""
    files = [path] if os.path.isfile(path) else [
        os.path.join(path, f) for f in sorted(os.listdir(path), key=detections.natural_key)
        if f.endswith(".json")]
    if not files:
        raise ValueError(f"{path}: no MMPose .json prediction files")
    clips, images = [], []
    for file in files:
        is_video, frames, layout = read_file(file)
        stem = os.path.splitext(os.path.basename(file))[0]
        if is_video:
            clips.append(_clip(stem, [f for f, _ in frames], [p for _, p in frames], layout, file))
        else:
            images.append((stem, frames[0][1], layout))
    if images:
        layouts = {l for _, _, l in images}
        name = os.path.basename(os.path.normpath(path))
        clips.append(_clip(os.path.splitext(name)[0], [s for s, _, _ in images],
                           [p for _, p, _ in images], layouts.pop() if len(layouts) == 1 else None,
                           path))
    return clips
