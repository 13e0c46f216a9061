"""How the synthetic world is filmed: look-at cameras, view labels, occlusion and detector noise.

Numpy only. Every random stream is a ``numpy.random.Generator`` keyed by integers (:func:`rng`), so the
world is a pure function of its seed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import special

from cv_mim.keypoints import cameras


def rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def wrap_deg(angle):
    return (np.asarray(angle, dtype=np.float64) + 180.0) % 360.0 - 180.0


def view_label(relative_azimuth_deg: float) -> str:
    """'front' / 'left' / 'back' / 'right' for a camera at this azimuth from the facing direction.

    Args:
      relative_azimuth_deg: camera azimuth around the body, degrees counter-clockwise (seen from
        above) from the facing direction; any real value (wrapped to (-180, 180]).
    """
    a = float(wrap_deg(relative_azimuth_deg))
    if not np.isfinite(a):
        raise ValueError(f"relative_azimuth_deg must be finite, got {relative_azimuth_deg!r}")
    if abs(a) <= 45.0:
        return "front"
    if abs(a) >= 135.0:
        return "back"
    return "left" if a > 0 else "right"


def look_at_camera(camera_id: str, position, target, *, focal, image_size, roll_deg=0.0,
                   principal_offset=(0.0, 0.0), k=(0.0, 0.0, 0.0), p=(0.0, 0.0)) -> cameras.Camera:
    """A Human3.6M-convention camera (x right, y down, z forward) looking from `position` at `target`.

    Args:
      camera_id: id string.
      position, target: (3,) world points in metres (z up).
      focal: focal length in pixels (fx = fy).
      image_size: (height, width) in pixels.
      roll_deg: rotation about the optical axis.
      principal_offset: principal point offset from the image centre in pixels.
      k, p: Human3.6M distortion coefficients.

    Raises:
      ValueError: position == target, or a camera looking straight up / down (no image x axis).
    """
    position = np.asarray(position, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - position
    if position.shape != (3,) or forward.shape != (3,) or not np.all(np.isfinite(forward)):
        raise ValueError(f"camera {camera_id!r}: position and target must be finite (3,) points, got "
                         f"{position.shape} and {np.shape(target)}")
    if np.linalg.norm(forward[:2]) < 1e-6 * max(np.linalg.norm(forward), 1e-12):
        raise ValueError(f"camera {camera_id!r}: the camera must not look straight up or down "
                         f"(position {position}, target {target})")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    roll = np.deg2rad(roll_deg)
    right, down = (np.cos(roll) * right + np.sin(roll) * down,
                   -np.sin(roll) * right + np.cos(roll) * down)
    rotation = np.stack([right, down, forward])
    height, width = image_size
    return cameras.Camera(
        camera_id=str(camera_id), R=rotation, t=-rotation @ position * 1000.0,
        f=(float(focal), float(focal)),
        c=(width / 2.0 + principal_offset[0], height / 2.0 + principal_offset[1]),
        k=k, p=p, res_w=int(width), res_h=int(height))


def ar1(rng, shape, rho):
    """Stationary AR(1) unit-variance noise along axis 0."""
    eps = rng.normal(size=shape)
    out = np.empty(shape)
    out[0] = eps[0]
    scale = np.sqrt(1.0 - rho * rho)
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + scale * eps[t]
    return out


# Names `occlusion_probability` needs (torso joints and the head) in the H36M17 / Kinect layouts.
OCCLUSION_NAMES = {"Head": "head", "LShoulder": "left_shoulder", "RShoulder": "right_shoulder",
                    "LHip": "left_hip", "RHip": "right_hip", "ShoulderLeft": "left_shoulder",
                    "ShoulderRight": "right_shoulder", "HipLeft": "left_hip", "HipRight": "right_hip"}


def occlusion_probability(points_cam: np.ndarray, joint_names: Sequence[str]) -> np.ndarray:
    """Chance that a joint is hidden, from how far behind the torso it is as seen by the camera.

    Args:
      points_cam: (T, J, 3) camera-frame points (z = depth, metres).
      joint_names: canonical names of the J joints (``head``, ``left_shoulder``, ...).

    Returns:
      (T, J) probabilities in [0, 0.6]: ~0.55 for limb joints 20+ cm behind the torso (the far side
      in side views), small for the head and for joints in front of the torso.
    """
    idx = {n: i for i, n in enumerate(joint_names)}
    torso = [idx[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    depth = points_cam[..., 2] - points_cam[:, torso, 2].mean(1, keepdims=True)
    prob = 0.55 * special.expit((depth - 0.13) / 0.04)
    prob[:, idx["head"]] = 0.02
    return prob


def add_detector_noise(rng: np.random.Generator, keypoints: np.ndarray, person_px: np.ndarray, *,
                       sigma: float = 0.012, rho: float = 0.6, outlier_rate: float = 0.004,
                       occlusion: np.ndarray | None = None, missing_rate: float = 0.03,
                       occluded_sigma_factor: float = 3.0):
    """Detector-like 2D noise: temporally correlated jitter, rare outliers, missing / occluded joints.

    Args:
      rng: numpy Generator.
      keypoints: (T, J, 2) exact pixel coordinates.
      person_px: (T,) person height in pixels (noise scales with it).
      sigma: jitter standard deviation as a fraction of the person height.
      rho: lag-1 autocorrelation of the jitter (detections drift rather than flicker).
      outlier_rate: fraction of joints displaced by a gross error (~10 % of the person height).
      occlusion: optional (T, J) extra probability of a joint being hidden (see
        `occlusion_probability`).
      missing_rate: base probability of a hidden joint.
      occluded_sigma_factor: hidden joints keep a guessed position with this much more jitter.

    Returns:
      (noisy (T, J, 2) float64, visibility (T, J) uint8 with 1 = visible).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2 or keypoints.shape[0] < 1:
        raise ValueError(f"keypoints must have shape (T, J, 2), got {keypoints.shape}")
    num_frames, num_joints, _ = keypoints.shape
    px = np.asarray(person_px, dtype=np.float64)
    if px.shape != (num_frames,):
        raise ValueError(f"person_px must have shape ({num_frames},), got {px.shape}")
    if occlusion is not None and np.shape(occlusion) != (num_frames, num_joints):
        raise ValueError(f"occlusion must have shape ({num_frames}, {num_joints}), got "
                         f"{np.shape(occlusion)}")
    px = px.reshape(num_frames, 1, 1)
    jitter = ar1(rng, (num_frames, num_joints, 2), rho) * sigma * px
    hidden_p = np.full((num_frames, num_joints), missing_rate)
    if occlusion is not None:
        hidden_p = hidden_p + occlusion
    # Occlusions last several frames: threshold a slowly varying uniform field.
    field = special.ndtr(ar1(rng, (num_frames, num_joints), 0.85))
    visible = field >= hidden_p
    jitter = np.where(visible[..., None], jitter, jitter * occluded_sigma_factor)
    gross = rng.uniform(size=(num_frames, num_joints)) < outlier_rate
    jitter = jitter + gross[..., None] * rng.normal(size=(num_frames, num_joints, 2)) * 0.1 * px
    return keypoints + jitter, visible.astype(np.uint8)
