"""COCO keypoint JSON: annotation files and detector result files (numpy only).

* Annotation file (``person_keypoints_*.json``, PoseTrack-style files): ``{"images": [{"id", ...}],
  "annotations": [{"image_id", "keypoints": [x, y, v] * J, "bbox": [x, y, w, h], ["track_id"]}],
  "categories": [{"keypoints": [names]}]}``; ``v`` = 0 not labelled, 1 labelled but not visible,
  2 visible — a joint is present when ``v > 0`` (its position is annotated).
* Result file (the COCO keypoint results format): ``[{"image_id", "category_id", "keypoints": [x, y,
  score] * J, "score", ["bbox"]}]``; a joint is present when its score is > 0 (``min_score`` in the
  registry raises the threshold).

Frames and clips (the grouping rule): every image is one frame. Images carrying a video id
(``video_id`` or PoseTrack's ``vid_id``) are grouped into one clip per video, frames ordered by
``frame_id`` / ``frame_index`` when present, else by image id; clip id = the video id. Without video
ids the whole file is ONE clip of its images in image-id order (numbers compared numerically), clip id
= the file stem. An image without a person annotation is a missing frame. A result file has no image
list: its frames are the image ids that have at least one detection, in image-id order.

Layout: the category's ``keypoints`` names when they match a known layout (COCO-17 files do), else a
17-joint file is COCO-17 (the format's definition); other sizes must be named by the user. Main person:
:mod:`cv_mim.data.detections` (``track_id`` when present, else the largest ``bbox``).
"""

import os

from cv_mim.data import detections
from cv_mim.keypoints import profiles


def _person(ann, name):
    kp, sc = detections.flat_triplets(ann["keypoints"], name=name)
    box = ann.get("bbox")
    area = float(box[2]) * float(box[3]) if box is not None and len(box) == 4 else None
    return detections.Person(keypoints=kp, scores=sc, area=area, person_id=ann.get("track_id"))


def _layout_from_names(names):
    lowered = tuple(str(n).lower() for n in names)
    for layout in profiles.SOURCE_LAYOUTS:
        if tuple(n.lower() for n in profiles.LAYOUT_JOINT_NAMES[layout]) == lowered:
            return layout
    return None


def _read(path):
    return detections.read_json(path, "COCO")


def _clip(clip_id, image_ids, by_image, layout, path):
    frames = [by_image.get(i, []) for i in image_ids]
    sizes = {p.keypoints.shape[0] for people in frames for p in people}
    if len(sizes) > 1:
        raise ValueError(f"{path}: detections with different joint counts {sorted(sizes)}")
    num = sizes.pop() if sizes else 17
    if layout is None and num == 17:
        layout = "coco17"
    kp, sc, _ = detections.select_main_person(frames, num, name=f"{path} clip {clip_id}")
    return detections.DetectionClip(clip_id=str(clip_id), keypoints=kp, scores=sc,
                                    frames=tuple(str(i) for i in image_ids), layout=layout)


def load_coco_json(path):
    """A COCO annotation or result file -> list of :class:`~cv_mim.data.detections.DetectionClip`."""
    doc = _read(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    by_image = {}
    if isinstance(doc, list):  # result file
        for k, ann in enumerate(doc):
            if not isinstance(ann, dict) or "image_id" not in ann or "keypoints" not in ann:
                raise ValueError(f"{path}: result [{k}] lacks 'image_id' or 'keypoints'")
            by_image.setdefault(ann["image_id"], []).append(_person(ann, f"{path}: result [{k}]"))
        ids = sorted(by_image, key=detections.natural_key)
        return [_clip(stem, ids, by_image, None, path)]
    if not isinstance(doc, dict) or "annotations" not in doc or "images" not in doc:
        raise ValueError(f"{path}: neither a COCO annotation file (images, annotations) nor a "
                         "result list")
    layout = None
    for cat in doc.get("categories", []):
        if cat.get("keypoints"):
            layout = _layout_from_names(cat["keypoints"])
    for k, ann in enumerate(doc["annotations"]):
        if "keypoints" not in ann:
            continue
        by_image.setdefault(ann["image_id"], []).append(
            _person(ann, f"{path}: annotations[{k}]"))
    videos = {}
    for img in doc["images"]:
        video = img.get("video_id", img.get("vid_id"))
        order = img.get("frame_id", img.get("frame_index"))
        videos.setdefault(stem if video is None else video, []).append(
            (detections.natural_key(img["id"]) if order is None else order, img["id"]))
    return [_clip(video, [i for _, i in sorted(members, key=lambda m: m[0])], by_image, layout, path)
            for video, members in sorted(videos.items(), key=lambda v: detections.natural_key(v[0]))]
