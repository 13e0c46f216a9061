"""Cameras: Human3.6M camera parameters, real-camera projection, and the random-camera augmentation.

Two halves:

* **Real cameras** (numpy only). `Camera` holds one camera's intrinsics and its extrinsics for one
  subject; `CameraRig` holds every subject's cameras as stored in a ``cameras.json`` file
  (the layout of ``shared/realdata/h36m/cameras.json``: ``_note``, ``camera_order``,
  ``intrinsics[camera_id]``, ``extrinsics[subject][camera_id]``). Projection follows Human3.6M's own
  distortion model (not OpenCV's), see `camera_to_pixels`.
* **Camera augmentation** (TensorFlow, paper §4.2): `rotation_matrices`, `project_with_angles` and
  `random_camera_projection` rotate a normalised 3D pose by a random proper rotation and project it
  through a virtual pinhole camera at a fixed normalised depth. TensorFlow is imported lazily inside
  these functions so that the numpy-only format modules (``cv_mim.data.*``) can import this module
  without pulling in TensorFlow.

Conventions (Human3.6M): world frame z-up, millimetres; ``x_cam = R @ X_world + t = R @ (X_world - T)``
with ``T`` the camera centre; camera frame x right, y down, z forward; pixels (x right, y down).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Mapping, Sequence

import numpy as np

# The `_note` written by `save_h36m_cameras`: the conventions a reader of the JSON file needs.
CAMERA_JSON_NOTE = (
    "Human3.6M camera parameters. Units: millimetres, pixels. Convention: x_cam = R @ X_world + t = "
    "R @ (X_world - T); T = camera centre in world coords. Intrinsics f=[fx,fy], c=[cx,cy], "
    "k=[k1,k2,k3] radial, p=[p1,p2] tangential in the order stored in the official Human3.6M "
    "metadata.xml; VideoPose3D lists the two tangential values in the opposite order, kept here as "
    "p_videopose3d_order. Distortion follows Human3.6M's own projection (not OpenCV's): with x, y = "
    "X/Z, Y/Z and r2 = x^2 + y^2, radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3, tan = p1 y + p2 x (p in the "
    "order stored here), x' = x (radial + tan) + p2 r2, y' = y (radial + tan) + p1 r2, pixel = f * "
    "(x', y') + c. orientation_quat_wxyz = camera-to-world rotation quaternion as stored in "
    "VideoPose3D (R_cam_to_world = quat_to_matrix(q); R = its transpose)."
)


# Tolerance for accepting R as a proper rotation (the published H36M matrices are orthonormal to
# ~1e-9; a looser bound only guards against transposed/mirrored/garbage matrices).
_ROTATION_TOLERANCE = 1e-4


# Points closer than this (mm) to the camera plane cannot be projected meaningfully.
_MIN_DEPTH_MM = 1e-6


# Smallest depth (normalised units) used in the virtual-camera perspective divide, as the authors.
_MIN_VIRTUAL_DEPTH = 1e-12


def _as_vector(value, size, name, camera_id):
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (size,) or not np.all(np.isfinite(array)):
        raise ValueError(
            f"Camera {camera_id!r}: {name} must be {size} finite numbers, got shape "
            f"{array.shape}: {value!r}")
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class Camera:
    """One real camera (intrinsics + the extrinsics of one subject's recording).

    Attributes:
      camera_id: camera identifier (Human3.6M: '54138969', ...).
      R: (3, 3) float64 world->camera rotation (proper: det +1).
      t: (3,) float64 translation in mm, ``x_cam = R @ X_world + t``.
      f: (2,) focal lengths (fx, fy) in pixels.
      c: (2,) principal point (cx, cy) in pixels.
      k: (3,) radial distortion (k1, k2, k3).
      p: (2,) tangential distortion (p1, p2) in the order of cameras.json "p" (Human3.6M metadata order,
        i.e. VideoPose3D's order swapped).
      res_w: image width in pixels.
      res_h: image height in pixels.
    """

    camera_id: str
    R: np.ndarray
    t: np.ndarray
    f: np.ndarray
    c: np.ndarray
    k: np.ndarray
    p: np.ndarray
    res_w: int
    res_h: int

    def __post_init__(self):
        camera_id = str(self.camera_id)
        rotation = np.asarray(self.R, dtype=np.float64)
        if rotation.shape != (3, 3) or not np.all(np.isfinite(rotation)):
            raise ValueError(f"Camera {camera_id!r}: R must be a finite (3, 3) matrix, got shape "
                             f"{rotation.shape}")
        if (np.abs(rotation @ rotation.T - np.eye(3)).max() > _ROTATION_TOLERANCE
                or abs(np.linalg.det(rotation) - 1.0) > _ROTATION_TOLERANCE):
            # A det -1 matrix would silently mirror every projection.
            raise ValueError(f"Camera {camera_id!r}: R is not a proper rotation (orthonormal with "
                             f"det +1); det = {np.linalg.det(rotation):.6f}")
        fields = {
            "camera_id": camera_id,
            "R": rotation,
            "t": _as_vector(self.t, 3, "t", camera_id),
            "f": _as_vector(self.f, 2, "f", camera_id),
            "c": _as_vector(self.c, 2, "c", camera_id),
            "k": _as_vector(self.k, 3, "k", camera_id),
            "p": _as_vector(self.p, 2, "p", camera_id),
        }
        if np.any(fields["f"] <= 0):
            raise ValueError(f"Camera {camera_id!r}: focal lengths must be positive, got {self.f}")
        for name in ("res_w", "res_h"):
            value = getattr(self, name)
            if int(value) != value or int(value) <= 0:
                raise ValueError(f"Camera {camera_id!r}: {name} must be a positive integer, got "
                                 f"{value!r}")
            fields[name] = int(value)
        for name, value in fields.items():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre T in world coordinates (mm): T = -R^T t."""
        return -self.R.T @ self.t

    def same_intrinsics(self, other: "Camera", atol: float = 1e-9) -> bool:
        """Whether two cameras share intrinsics (the JSON layout stores one set per camera id)."""
        return (self.res_w == other.res_w and self.res_h == other.res_h
                and all(np.allclose(getattr(self, n), getattr(other, n), rtol=0, atol=atol)
                        for n in ("f", "c", "k", "p")))

    @property
    def optical_axis(self) -> np.ndarray:
        """(3,) unit viewing direction in world coordinates: the camera's +z axis, R^T (0, 0, 1)."""
        return self.R[2]


def optical_axis_angles(cameras: Sequence[Camera]) -> np.ndarray:
    """(C, C) angles in degrees between the optical axes of every pair of cameras (0 = looking the
    same way, 180 = facing each other): how far apart two views of the same pose are."""
    axes = np.stack([cam.optical_axis for cam in cameras])  # -> [C, 3]
    return np.degrees(np.arccos(np.clip(axes @ axes.T, -1.0, 1.0)))


def _rotation_to_quaternion_wxyz(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z), w >= 0, of a proper rotation matrix (Shepperd's method)."""
    m = rotation
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q, dtype=np.float64)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


class CameraRig:
    """All cameras of a cameras.json file: per subject, one `Camera` per id in `camera_order`.

    Build it with `load_h36m_cameras` or `CameraRig.from_cameras`.
    """

    def __init__(self, camera_order: Sequence[str],
                 cameras_by_subject: Mapping[str, Mapping[str, Camera]],
                 extra_intrinsics: Mapping[str, Mapping] | None = None):
        """Initialiser (prefer `from_cameras` / `load_h36m_cameras`).

        Args:
          camera_order: camera ids in the order used by the 2D files (per-camera list order).
          cameras_by_subject: {subject: {camera_id: Camera}}, every subject having every id.
          extra_intrinsics: optional {camera_id: {key: JSON value}} kept verbatim on save (e.g. the
            real file's ``azimuth_deg_vis_only``).
        """
        order = [str(c) for c in camera_order]
        if not order:
            raise ValueError("CameraRig: camera_order is empty")
        if len(set(order)) != len(order):
            raise ValueError(f"CameraRig: camera_order has duplicate ids: {order}")
        if not cameras_by_subject:
            raise ValueError("CameraRig: no subjects given")
        self._order = order
        self._cameras: dict[str, dict[str, Camera]] = {}
        reference: dict[str, Camera] = {}
        for subject, cams in cameras_by_subject.items():
            subject = str(subject)
            cams = {str(k): v for k, v in cams.items()}
            missing = [c for c in order if c not in cams]
            unknown = [c for c in cams if c not in order]
            if missing or unknown:
                raise ValueError(
                    f"CameraRig: subject {subject!r} has cameras {sorted(cams)}; missing from it: "
                    f"{missing}; not in camera_order {order}: {unknown}")
            for cam_id, cam in cams.items():
                if not isinstance(cam, Camera):
                    raise ValueError(f"CameraRig: subject {subject!r} camera {cam_id!r} is a "
                                     f"{type(cam).__name__}, expected Camera")
                if cam.camera_id != cam_id:
                    raise ValueError(f"CameraRig: subject {subject!r} lists camera {cam.camera_id!r} "
                                     f"under id {cam_id!r}")
                ref = reference.setdefault(cam_id, cam)
                if not ref.same_intrinsics(cam):
                    # The JSON layout stores one set of intrinsics per camera id.
                    raise ValueError(f"CameraRig: camera {cam_id!r} has different intrinsics for "
                                     f"subject {subject!r} than for another subject")
            self._cameras[subject] = {c: cams[c] for c in order}
        self._extra = {str(k): dict(v) for k, v in (extra_intrinsics or {}).items()}

    @classmethod
    def from_cameras(cls, cameras_by_subject: Mapping[str, Sequence[Camera] | Mapping[str, Camera]],
                     camera_order: Sequence[str] | None = None) -> "CameraRig":
        """Builds a rig from {subject: [Camera, ...]} (or {subject: {camera_id: Camera}}).

        Args:
          cameras_by_subject: per subject the cameras; lists are keyed by `Camera.camera_id`.
          camera_order: camera id order; default = the order of the first subject's cameras.
        """
        by_subject = {}
        for subject, cams in cameras_by_subject.items():
            if isinstance(cams, Mapping):
                by_subject[subject] = dict(cams)
            else:
                cams = list(cams)
                ids = [c.camera_id if isinstance(c, Camera) else None for c in cams]
                if None in ids:
                    raise ValueError(f"CameraRig.from_cameras: subject {subject!r} has a non-Camera "
                                     f"entry")
                if len(set(ids)) != len(ids):
                    raise ValueError(f"CameraRig.from_cameras: subject {subject!r} has duplicate "
                                     f"camera ids {ids}")
                by_subject[subject] = dict(zip(ids, cams))
        if camera_order is None:
            if not by_subject:
                raise ValueError("CameraRig.from_cameras: no subjects given")
            camera_order = list(next(iter(by_subject.values())).keys())
        return cls(camera_order, by_subject)

    @property
    def camera_order(self) -> list[str]:
        """Camera ids in file order (the order of the per-camera lists of the 2D files)."""
        return list(self._order)

    @property
    def subjects(self) -> list[str]:
        """Subjects with extrinsics, in file order."""
        return list(self._cameras)

    def _check_subject(self, subject: str) -> dict[str, Camera]:
        try:
            return self._cameras[str(subject)]
        except KeyError:
            raise ValueError(f"Unknown subject {subject!r} in the camera file; available subjects: "
                             f"{self.subjects}") from None

    def cameras(self, subject: str) -> list[Camera]:
        """The subject's cameras in `camera_order` order. ValueError for an unknown subject."""
        return list(self._check_subject(subject).values())

    def camera(self, subject: str, camera_id: str) -> Camera:
        """One camera. ValueError naming the subject / id for an unknown one."""
        cams = self._check_subject(subject)
        try:
            return cams[str(camera_id)]
        except KeyError:
            raise ValueError(f"Camera id {camera_id!r} is not in the camera file; available: "
                             f"{self._order}") from None

    def to_json_dict(self) -> dict:
        """The cameras.json layout as a JSON-serialisable dict."""
        intrinsics = {}
        first = next(iter(self._cameras.values()))
        for cam_id in self._order:
            cam = first[cam_id]
            entry = {
                "f": cam.f.tolist(), "c": cam.c.tolist(), "k": cam.k.tolist(), "p": cam.p.tolist(),
                "p_videopose3d_order": cam.p[::-1].tolist(),
                "res_w": cam.res_w, "res_h": cam.res_h,
            }
            for key, value in self._extra.get(cam_id, {}).items():
                entry.setdefault(key, value)
            intrinsics[cam_id] = entry
        extrinsics = {}
        for subject, cams in self._cameras.items():
            extrinsics[subject] = {
                cam_id: {
                    "R": cam.R.tolist(), "t": cam.t.tolist(), "T": cam.center.tolist(),
                    # VideoPose3D stores the camera-to-world rotation, i.e. of R^T.
                    "orientation_quat_wxyz": _rotation_to_quaternion_wxyz(cam.R.T).tolist(),
                }
                for cam_id, cam in cams.items()
            }
        return {"_note": CAMERA_JSON_NOTE, "camera_order": list(self._order),
                "intrinsics": intrinsics, "extrinsics": extrinsics}


def _require(mapping, key, where, path):
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise ValueError(f"{path}: missing key {key!r} in {where}")
    return mapping[key]


def load_h36m_cameras(path: str | os.PathLike) -> CameraRig:
    """Reads a cameras.json file (layout of shared/realdata/h36m/cameras.json).

    Any number of cameras (``camera_order``) and any subjects are accepted. Only R and t are read
    from the extrinsics (T and the quaternion are derived quantities); ``p`` is read in the
    Human3.6M metadata order (not ``p_videopose3d_order``).

    Args:
      path: the JSON file.

    Returns:
      A `CameraRig`.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: unreadable JSON, a missing key, bad values, a subject missing a camera of
        ``camera_order`` or naming a camera id that has no intrinsics.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Camera file not found: {path}")
    try:
        with open(path, "r", encoding="utf-8") as stream:
            data = json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a valid JSON camera file ({error})") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object at top level")
    order = [str(c) for c in _require(data, "camera_order", "the top level", path)]
    intrinsics = {str(k): v for k, v in _require(data, "intrinsics", "the top level", path).items()}
    extrinsics = _require(data, "extrinsics", "the top level", path)
    missing = [c for c in order if c not in intrinsics]
    if missing:
        raise ValueError(f"{path}: camera ids {missing} of camera_order have no intrinsics "
                         f"(intrinsics has {sorted(intrinsics)})")
    known_keys = {"f", "c", "k", "p", "p_videopose3d_order", "res_w", "res_h"}
    extra = {c: {k: v for k, v in intrinsics[c].items() if k not in known_keys} for c in order}
    by_subject = {}
    for subject, cams in extrinsics.items():
        if not isinstance(cams, Mapping):
            raise ValueError(f"{path}: extrinsics[{subject!r}] is not an object")
        cams = {str(k): v for k, v in cams.items()}
        unknown = [c for c in cams if c not in intrinsics]
        if unknown:
            raise ValueError(f"{path}: subject {subject!r} names camera ids {unknown} that are absent "
                             f"from intrinsics/camera_order {order}")
        absent = [c for c in order if c not in cams]
        if absent:
            raise ValueError(f"{path}: subject {subject!r} has no extrinsics for camera ids {absent}")
        subject_cams = {}
        for cam_id in order:
            intr, extr = intrinsics[cam_id], cams[cam_id]
            where = f"camera {cam_id!r}"
            try:
                subject_cams[cam_id] = Camera(
                    camera_id=cam_id,
                    R=_require(extr, "R", f"extrinsics of subject {subject!r} {where}", path),
                    t=_require(extr, "t", f"extrinsics of subject {subject!r} {where}", path),
                    f=_require(intr, "f", f"intrinsics of {where}", path),
                    c=_require(intr, "c", f"intrinsics of {where}", path),
                    k=_require(intr, "k", f"intrinsics of {where}", path),
                    p=_require(intr, "p", f"intrinsics of {where}", path),
                    res_w=_require(intr, "res_w", f"intrinsics of {where}", path),
                    res_h=_require(intr, "res_h", f"intrinsics of {where}", path))
            except (TypeError, ValueError) as error:
                raise ValueError(f"{path}: subject {subject!r}: {error}") from None
        by_subject[str(subject)] = subject_cams
    if not by_subject:
        raise ValueError(f"{path}: extrinsics lists no subjects")
    return CameraRig(order, by_subject, extra)


def save_h36m_cameras(path: str | os.PathLike,
                      rig_or_dicts: CameraRig | Mapping[str, Sequence[Camera] | Mapping[str, Camera]],
                      camera_order: Sequence[str] | None = None) -> None:
    """Writes a cameras.json file in the layout read by `load_h36m_cameras`.

    Written keys: ``_note``, ``camera_order``, ``intrinsics[id]`` (f, c, k, p, p_videopose3d_order,
    res_w, res_h, plus any extra keys the rig was loaded with), ``extrinsics[subject][id]`` (R, t, T,
    orientation_quat_wxyz = quaternion of the camera-to-world rotation R^T, w >= 0).

    Args:
      path: output file.
      rig_or_dicts: a `CameraRig`, or {subject: [Camera, ...]} / {subject: {camera_id: Camera}}.
      camera_order: id order when a dict is given (default: the first subject's order).
    """
    rig = (rig_or_dicts if isinstance(rig_or_dicts, CameraRig)
           else CameraRig.from_cameras(rig_or_dicts, camera_order))
    with open(os.fspath(path), "w", encoding="utf-8") as stream:
        json.dump(rig.to_json_dict(), stream, indent=1)
        stream.write("\n")


def _points(points, name, dims=3) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim < 1 or array.shape[-1] != dims:
        raise ValueError(f"{name} must have shape (..., {dims}), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf (shape {array.shape})")
    return array


def world_to_camera(points_world, camera: Camera) -> np.ndarray:
    """World -> camera coordinates: ``x_cam = R @ X_world + t``.

    Args:
      points_world: (..., 3) world points in millimetres.
      camera: the `Camera`.

    Returns:
      (..., 3) float64 camera-frame points in millimetres (x right, y down, z forward).
    """
    points = _points(points_world, "points_world")
    return points @ camera.R.T + camera.t


def camera_to_pixels(points_cam, camera: Camera, distort: bool = True) -> np.ndarray:
    """Camera-frame points -> pixels with Human3.6M's own distortion model.

    With x, y = X/Z, Y/Z and r2 = x^2 + y^2:
    radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3, tan = p1 y + p2 x,
    x' = x (radial + tan) + p2 r2, y' = y (radial + tan) + p1 r2, pixel = f * (x', y') + c
    (p in cameras.json "p" order). This is NOT OpenCV's model (whose tangential terms are
    2 p1 x y + p2 (r2 + 2 x^2) etc.); it is the one that reproduces the dataset's 2D labels.

    Args:
      points_cam: (..., 3) camera-frame points (any length unit; only ratios matter).
      camera: the `Camera`.
      distort: apply the distortion (False: plain pinhole).

    Returns:
      (..., 2) float64 pixel coordinates (x right, y down).

    Raises:
      ValueError: wrong shape, non-finite values, or a point not in front of the camera (Z <= 0).
    """
    points = _points(points_cam, "points_cam")
    depth = points[..., 2]
    if np.any(depth <= _MIN_DEPTH_MM):
        raise ValueError(f"camera {camera.camera_id!r}: {int(np.sum(depth <= _MIN_DEPTH_MM))} point(s) "
                         f"are not in front of the camera (Z <= 0; min Z = {depth.min():.6g}); they "
                         f"cannot be projected")
    x = points[..., 0] / depth
    y = points[..., 1] / depth
    if distort:
        k1, k2, k3 = camera.k
        p1, p2 = camera.p
        r2 = x * x + y * y
        radial = 1.0 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
        tangential = p1 * y + p2 * x
        x, y = x * (radial + tangential) + p2 * r2, y * (radial + tangential) + p1 * r2
    return np.stack([camera.f[0] * x + camera.c[0], camera.f[1] * y + camera.c[1]], axis=-1)


def project_world_to_pixels(points_world, camera: Camera, *, units: str = "m",
                            distort: bool = True) -> np.ndarray:
    """World points -> pixels (`world_to_camera` then `camera_to_pixels`).

    Args:
      points_world: (..., 3) world points.
      camera: the `Camera`.
      units: 'm' (metres, the VideoPose3D 3D files) or 'mm' (the camera file's unit).
      distort: apply Human3.6M's distortion.

    Returns:
      (..., 2) float64 pixels.
    """
    if units not in ("m", "mm"):
        raise ValueError(f"units must be 'm' or 'mm', got {units!r}")
    points = _points(points_world, "points_world")
    if units == "m":
        points = points * 1000.0
    return camera_to_pixels(world_to_camera(points, camera), camera, distort=distort)
