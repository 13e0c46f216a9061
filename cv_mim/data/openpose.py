"""OpenPose ``--write_json`` output: a folder of per-frame JSON files (numpy only).

Each frame file (``<name>_<frame>_keypoints.json``) is ``{"version": ..., "people": [{"person_id": [-1],
"pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...], ...}, ...]}``; undetected joints are ``0, 0, 0``.
The joint order depends on the model (BODY_25, BODY_25B, COCO-18), which the file does not record: the
user names it (``layout``). Frames are ordered by the file names with numbers compared numerically;
a frame with an empty ``people`` list is a missing frame.

Folder layouts:

* JSON files directly in ``path``: one clip, named after the folder.
* Otherwise every sub-folder holding JSON files is one clip (its name = clip id), e.g. one folder per
  video. :func:`load_openpose_multiview` reads the same structure as synchronised cameras (``cam*/``
  folders, frame i of every camera taken at the same time): clip id = view = the folder name.

Main person: :mod:`cv_mim.data.detections` (``person_id`` when OpenPose's tracking filled it, else
the largest box).
"""

import os

from cv_mim.data import detections


def _json_files(folder):
    return sorted((f for f in os.listdir(folder) if f.endswith(".json")), key=detections.natural_key)


def read_frame(path):
    """One OpenPose frame file -> list of :class:`~cv_mim.data.detections.Person`."""
    doc = detections.read_json(path, "OpenPose")
    if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
        raise ValueError(f"{path}: not an OpenPose JSON file (no 'people' list)")
    people = []
    for k, person in enumerate(doc["people"]):
        if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
            raise ValueError(f"{path}: people[{k}] has no 'pose_keypoints_2d'")
        values = person["pose_keypoints_2d"]
        if not values:
            continue
        kp, sc = detections.flat_triplets(values, name=f"{path}: people[{k}].pose_keypoints_2d")
        pid = person.get("person_id", -1)
        if isinstance(pid, list):
            pid = pid[0] if pid else -1
        people.append(detections.Person(keypoints=kp, scores=sc, person_id=pid))
    return people


def read_folder(folder, clip_id=None, view=""):
    """A folder of frame files -> one :class:`~cv_mim.data.detections.DetectionClip`."""
    files = _json_files(folder)
    if not files:
        raise ValueError(f"{folder}: no OpenPose .json files")
    frames = [read_frame(os.path.join(folder, f)) for f in files]
    sizes = {p.keypoints.shape[0] for people in frames for p in people}
    if len(sizes) > 1:
        raise ValueError(f"{folder}: detections with different joint counts {sorted(sizes)}")
    num = sizes.pop() if sizes else 25
    kp, sc, _ = detections.select_main_person(frames, num, name=folder)
    stems = tuple(f[: -len(".json")] for f in files)
    fields = {"view": view} if view else {}
    return detections.DetectionClip(clip_id=clip_id or os.path.basename(os.path.normpath(folder)),
                                    keypoints=kp, scores=sc, frames=stems, fields=fields)


def _clip_folders(path):
    if _json_files(path):
        return [path]
    subs = sorted((os.path.join(path, d) for d in os.listdir(path)
                   if os.path.isdir(os.path.join(path, d))), key=detections.natural_key)
    subs = [d for d in subs if _json_files(d)]
    if not subs:
        raise ValueError(f"{path}: no OpenPose .json files in the folder or its sub-folders")
    return subs


def load_openpose(path):
    """All clips under ``path`` (see the module docstring)."""
    return [read_folder(folder) for folder in _clip_folders(path)]


def load_openpose_multiview(path):
    """Synchronised cameras: every sub-folder of ``path`` is one camera (view = folder name)."""
    folders = _clip_folders(path)
    if folders == [path]:
        raise ValueError(f"{path}: openpose_multiview expects one sub-folder of frame files per "
                         "camera (cam*/), found frame files directly in the folder")
    clips = [read_folder(f, view=os.path.basename(f)) for f in folders]
    lengths = {len(c.frames) for c in clips}
    if len(lengths) > 1:
        raise ValueError(f"{path}: cameras have different frame counts "
                         f"{ {c.clip_id: len(c.frames) for c in clips} }; synchronised views need "
                         "one file per frame in every camera")
    return clips
