"""The NTU RGB+D ``.skeleton`` text format: reader, writer and its field layout (numpy only).

The dataset logic (file names, main actor, splits, views) is :mod:`cv_mim.data.ntu_rgbd`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import re

import numpy as np

NUM_NTU_JOINTS = 25


BODY_INFO_FIELDS = ("body_id", "clipped_edges", "hand_left_confidence", "hand_left_state",
                    "hand_right_confidence", "hand_right_state", "is_restricted", "lean_x", "lean_y",
                    "tracking_state")


JOINT_FIELDS = ("x", "y", "z", "depth_x", "depth_y", "color_x", "color_y", "orientation_w",
                "orientation_x", "orientation_y", "orientation_z", "tracking_state")


# Column indices into a (25, 12) joint block.
COL_XYZ = slice(0, 3)


COL_DEPTH = slice(3, 5)


COL_COLOR = slice(5, 7)


COL_TRACKING = 11


@dataclasses.dataclass
class NtuBody:
    """One body in one frame.

    Attributes:
      body_id: Kinect tracking id (a large integer, e.g. 72057594037931101; kept exact as int).
      joints: (25, 12) float64, columns :data:`JOINT_FIELDS` (last column trackingState 0/1/2).
      clipped_edges ... tracking_state: the other fields of the body info line.
    """

    body_id: int
    joints: np.ndarray
    clipped_edges: int = 0
    hand_left_confidence: int = 0
    hand_left_state: int = 0
    hand_right_confidence: int = 0
    hand_right_state: int = 0
    is_restricted: int = 0
    lean_x: float = 0.0
    lean_y: float = 0.0
    tracking_state: int = 2

    def info(self) -> tuple:
        """The 10 body-info values in file order."""
        return tuple(getattr(self, f) for f in BODY_INFO_FIELDS)


@dataclasses.dataclass
class NtuSkeleton:
    """A parsed ``.skeleton`` file: ``frames[t]`` is the list of bodies seen in frame t (maybe empty)."""

    frames: list
    name: str | None = None

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def max_bodies(self) -> int:
        return max((len(f) for f in self.frames), default=0)


INT_RE = re.compile(r"^[+-]?\d+$")


def parse_int(token: str, path: str, line_no: int, what: str) -> int:
    if not INT_RE.match(token):
        raise ValueError(f"{path}:{line_no}: {what} must be an integer, got {token!r}")
    return int(token)


def read_skeleton(path) -> NtuSkeleton:
    """Strictly parses one NTU RGB+D ``.skeleton`` file (CRLF or LF line endings).

    Returns:
      :class:`NtuSkeleton` with ``name`` = the file stem.
    Raises:
      FileNotFoundError: no such file.
      ValueError naming the file and 1-based line: a missing / non-integer count, a negative count, a
        body info line without exactly 10 fields or with non-integer integer fields, a joint count other
        than 25, a joint row without exactly 12 numbers, a truncated file, or extra non-blank content
        after the last frame.
    """
    # Longer than a screen on purpose: A line-by-line parser of the .skeleton grammar: one cursor
    # and one error style (file:line); split up, the cursor would be threaded through every helper.
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"NTU RGB+D skeleton file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not an ASCII text skeleton file ({e})") from e
    lines = text.split("\n")
    # CRLF -> strip the CR; a final newline leaves one empty element.
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    n_lines = len(lines)
    pos = 0

    def next_line(what: str) -> str:
        nonlocal pos
        if pos >= n_lines or (pos == n_lines - 1 and lines[pos] == ""):
            raise ValueError(f"{path}:{pos + 1}: unexpected end of file (truncated?) while reading {what}")
        ln = lines[pos]
        pos += 1
        return ln

    def read_count(what: str) -> int:
        ln = next_line(what)
        toks = ln.split()
        if len(toks) != 1:
            raise ValueError(f"{path}:{pos}: expected a single integer ({what}), got {ln!r}")
        v = parse_int(toks[0], path, pos, what)
        if v < 0:
            raise ValueError(f"{path}:{pos}: {what} must be >= 0, got {v}")
        return v

    num_frames = read_count("the frame count")
    frames = []
    for t in range(num_frames):
        num_bodies = read_count(f"the body count of frame {t}")
        bodies = []
        for b in range(num_bodies):
            ln = next_line(f"the body info line of frame {t}, body {b}")
            toks = ln.split()
            if len(toks) != len(BODY_INFO_FIELDS):
                raise ValueError(f"{path}:{pos}: body info line (frame {t}, body {b}) must have "
                                 f"{len(BODY_INFO_FIELDS)} fields, got {len(toks)}: {ln!r}")
            info = {}
            for field, tok in zip(BODY_INFO_FIELDS, toks):
                if field in ("lean_x", "lean_y"):
                    try:
                        info[field] = float(tok)
                    except ValueError:
                        raise ValueError(f"{path}:{pos}: body field {field} is not a number: {tok!r}") from None
                else:
                    info[field] = parse_int(tok, path, pos, f"body field {field}")
            nj = read_count(f"the joint count of frame {t}, body {b}")
            if nj != NUM_NTU_JOINTS:
                raise ValueError(f"{path}:{pos}: joint count must be {NUM_NTU_JOINTS}, got {nj}")
            start = pos
            rows = []
            for j in range(NUM_NTU_JOINTS):
                ln = next_line(f"joint {j} of frame {t}, body {b}")
                toks = ln.split()
                if len(toks) != len(JOINT_FIELDS):
                    raise ValueError(f"{path}:{pos}: joint row (frame {t}, body {b}, joint {j}) must have "
                                     f"{len(JOINT_FIELDS)} numbers, got {len(toks)}: {ln!r}")
                rows.append(toks)
            try:
                joints = np.array(rows, dtype=np.float64)
            except ValueError:
                for k, toks in enumerate(rows):
                    for tok in toks:
                        try:
                            float(tok)
                        except ValueError:
                            raise ValueError(f"{path}:{start + k + 1}: joint row (frame {t}, body {b}, joint "
                                             f"{k}) has a non-numeric value {tok!r}") from None
                raise
            ts = joints[:, COL_TRACKING]
            if not np.isin(ts, (0.0, 1.0, 2.0)).all():
                k = int(np.flatnonzero(~np.isin(ts, (0.0, 1.0, 2.0)))[0])
                raise ValueError(f"{path}:{start + k + 1}: joint trackingState must be 0, 1 or 2, got "
                                 f"{rows[k][COL_TRACKING]!r}")
            bodies.append(NtuBody(joints=joints, **info))
        frames.append(bodies)
    for k in range(pos, n_lines):
        if lines[k].strip():
            raise ValueError(f"{path}:{k + 1}: unexpected content after the last of {num_frames} frames: "
                             f"{lines[k][:60]!r}")
    return NtuSkeleton(frames=frames, name=pathlib.Path(path).stem)


def format_kinect_float(value) -> str:
    """A number as .NET ``Single.ToString()`` writes it in the dataset: 7 significant digits ("G7"),
    trailing zeros removed, exponent form ``d.ddddddE-05`` when the exponent is < -4 or >= 7,
    ``0`` for (signed) zero, ``NaN`` / ``Infinity`` / ``-Infinity``."""
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0.0:
        return "0"
    s = "%.7g" % v
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}E{exp[0]}{int(exp[1:]):02d}"
    return s


def format_int_field(value, what: str, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        raise ValueError(f"write_skeleton({path}): {what} must be an integer, got {value!r}")
    return str(int(value))


def write_skeleton(path, skeleton: NtuSkeleton) -> None:
    """Writes the exact text layout of the dataset (CRLF line endings, the same field counts and the
    .NET number format of :func:`format_kinect_float`). Integer body fields and the joint trackingState
    are written as integers.

    Raises:
      ValueError: a body whose joints are not (25, 12), a non-integer integer field, or a joint
        trackingState outside {0, 1, 2}.
    """
    path = os.fspath(path)
    out = [str(len(skeleton.frames))]
    for t, bodies in enumerate(skeleton.frames):
        out.append(str(len(bodies)))
        for b, body in enumerate(bodies):
            fields = []
            for field in BODY_INFO_FIELDS:
                v = getattr(body, field)
                if field in ("lean_x", "lean_y"):
                    fields.append(format_kinect_float(v))
                else:
                    fields.append(format_int_field(v, f"frame {t} body {b} field {field}", path))
            out.append(" ".join(fields))
            joints = np.asarray(body.joints, np.float64)
            if joints.shape != (NUM_NTU_JOINTS, len(JOINT_FIELDS)):
                raise ValueError(f"write_skeleton({path}): frame {t} body {b}: joints must have shape "
                                 f"({NUM_NTU_JOINTS}, {len(JOINT_FIELDS)}), got {joints.shape}")
            ts = joints[:, COL_TRACKING]
            if not np.isin(ts, (0.0, 1.0, 2.0)).all():
                raise ValueError(f"write_skeleton({path}): frame {t} body {b}: joint trackingState must be "
                                 f"0, 1 or 2, got {np.unique(ts)}")
            out.append(str(NUM_NTU_JOINTS))
            for row in joints:
                out.append(" ".join([format_kinect_float(v) for v in row[:COL_TRACKING]] +
                                    [str(int(row[COL_TRACKING]))]))
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as f:
        f.write(("\r\n".join(out) + "\r\n").encode("ascii"))
