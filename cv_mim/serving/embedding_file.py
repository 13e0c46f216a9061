"""The embedding file: ONE documented format (``.npz``) that every downstream binary reads.

File format ``cv_mim.embeddings/2`` — a numpy ``.npz`` (an uncompressed zip of ``.npy`` members),
written clip by clip and read clip by clip (C = clips, K = classes, T_c = frames of clip c):

======================================  ====================  =============================================
member                                  shape, dtype          meaning
======================================  ====================  =============================================
``clip_<c>`` (c = 0 … C − 1)            [T_c] structured      one record per frame of clip c, fields below
``clip_offsets``                        [C + 1] int64         frames of clip c are [off[c], off[c + 1])
``clip_ids``                            [C] str               file stem / sequence name
``labels``                              [C] int64             index into ``class_names`` (−1: unlabelled)
``class_names``                         [K] str               from the data, never hard-coded
``views``                               [C] str               Penn: front/back/left/right; NTU: C1R1…C3R2;
                                                              Human3.6M: camera id; detector formats:
                                                              from the file / labels CSV; npy: ""
``split``                               [C] str               Penn: train/test (official); others: ""
``subjects``                            [C] str               NTU performer "P008", H36M subject, else ""
``setups``, ``cameras``,                [C] int64             NTU file-name fields (−1 elsewhere)
``performers``, ``replications``
``metadata``                            [] str (JSON)         format, feature_dtype, flip_modes, dataset,
                                                              source, export metadata
======================================  ====================  =============================================

Fields of a ``clip_<c>`` record (F = ``feature_dtype`` of the metadata: float16 by default, float32 on
request; P, V = pose / view embedding sizes):

======================================  ====================  =============================================
field                                   shape, dtype          meaning
======================================  ====================  =============================================
``pose_embedding``                      (P,) F                z_p; NaN for a frame without any present
                                                              joint (nobody detected), in every feature
``view_embedding``                      (V,) F                z_v
``pose_embedding_flip_keep`` … (opt.)   (P,) / (V,) F         z_p / z_v of horizontally mirrored keypoints,
``view_embedding_flip_swap``                                  left/right labels kept / swapped
                                                              (``flip_modes``)
``normalized_keypoints``                (13, 2) F             the encoder's input (raw-2D features), ONCE:
                                                              its mirrored variants are derived on read
                                                              (x → −x, and the left/right permutation for
                                                              ``swap``; normalisation commutes with both)
``mask``                                (13,) bool            True = joint present
``has_pose``                            () bool               False: every joint missing, or all present
                                                              joints at one point; that frame's
                                                              embedding is meaningless (counted in the log)
======================================  ====================  =============================================

Files of format ``cv_mim.embeddings/1`` (one array per feature over all frames, float32) are refused
with an error that says to re-run ``cv_mim.embed``. All I/O goes through ``tf.io.gfile`` (``gs://``
works); reading is lazy: :func:`load_embeddings` reads the per-clip fields, and each clip's frames are
read from the file when asked for (:meth:`EmbeddingFile.clip`, :class:`ClipFeatures`).
"""

import io
import json
import logging
import uuid
import zipfile

import numpy as np
import tensorflow as tf

from cv_mim.keypoints import profiles

log = logging.getLogger("cv_mim.embedding_file")

FORMAT = "cv_mim.embeddings/2"
OLD_FORMATS = ("cv_mim.embeddings/1",)

FEATURES = ("pose_embedding", "view_embedding", "normalized_keypoints")
# Features the encoder computes per flip mode; normalized_keypoints' variants are derived on read.
EMBEDDINGS = ("pose_embedding", "view_embedding")
# The downstream binaries' --features choices -> the file key that holds them.
FEATURE_KEYS = {"embedding": "pose_embedding", "pose_embedding": "pose_embedding",
                "view_embedding": "view_embedding", "raw": "normalized_keypoints"}
FLIP_MODES = ("keep", "swap")
FEATURE_DTYPES = ("float16", "float32")
CLIP_FIELDS = ("clip_ids", "labels", "class_names", "views", "split", "subjects", "setups",
               "cameras", "performers", "replications")
# Decoded clips kept in memory per open file (bytes); beyond it, clips are read from the file again.
DEFAULT_CACHE_BYTES = 256 * 2 ** 20


def record_dtype(pose_dim, view_dim, flip_modes, feature_dtype):
    """The structured dtype of one frame of a ``clip_<c>`` member."""
    if feature_dtype not in FEATURE_DTYPES:
        raise ValueError(f"feature_dtype must be one of {FEATURE_DTYPES}, got {feature_dtype!r}")
    dims = {"pose_embedding": (int(pose_dim),), "view_embedding": (int(view_dim),)}
    fields = [(f + s, feature_dtype, dims[f]) for s in [""] + [f"_flip_{m}" for m in flip_modes]
              for f in EMBEDDINGS]
    return np.dtype(fields + [("normalized_keypoints", feature_dtype, (profiles.NUM_JOINTS, 2)),
                              ("mask", np.bool_, (profiles.NUM_JOINTS,)), ("has_pose", np.bool_)])


def flip_normalized(keypoints, mode):
    """Mirrored normalised keypoints [..., 13, 2]: x → −x, and left/right labels swapped for
    ``swap`` (the same as normalising mirrored pixel keypoints: centring and scaling commute)."""
    if mode not in FLIP_MODES:
        raise ValueError(f"flip mode must be one of {FLIP_MODES}, got {mode!r}")
    out = np.array(keypoints, copy=True)
    out[..., 0] = -out[..., 0]
    return out[..., profiles.LEFT_RIGHT_SWAP, :] if mode == "swap" else out


class _Appender(io.RawIOBase):
    """A write-only stream over a ``tf.io.gfile.GFile`` that counts its own position (some file
    systems, e.g. ``ram://``, cannot tell(); zipfile then writes sequentially)."""

    def __init__(self, gfile):
        super().__init__()
        self._file, self._position = gfile, 0

    def writable(self):
        return True

    def write(self, data):
        self._file.write(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self):
        return self._position


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


class EmbeddingWriter:
    """Writes a ``cv_mim.embeddings/2`` file clip by clip (memory: one clip), atomically.

    Use as a context manager: :meth:`add_clip` per clip, then :meth:`finish` with the per-clip
    fields and metadata; the file appears at ``path`` only after ``finish`` (a temporary sibling is
    renamed into place; on error it is removed).
    """

    def __init__(self, path, *, pose_dim, view_dim, flip_modes=(), feature_dtype="float16"):
        for mode in flip_modes:
            if mode not in FLIP_MODES:
                raise ValueError(f"flip mode must be one of {FLIP_MODES}, got {mode!r}")
        self.path, self.flip_modes, self.feature_dtype = path, tuple(flip_modes), feature_dtype
        self.dtype = record_dtype(pose_dim, view_dim, flip_modes, feature_dtype)
        head, _, tail = path.rpartition("/")
        # A hidden sibling, not "<path>.tmp…": TF's ram:// takes a path prefixing a file for a folder.
        self._tmp = f"{head}{'/' if head else ''}.{tail}.tmp-{uuid.uuid4().hex[:8]}"
        self._file = None
        self._zip = None
        self.lengths = []

    def __enter__(self):
        parent = self.path.rpartition("/")[0]
        if parent:
            tf.io.gfile.makedirs(parent)
        self._file = tf.io.gfile.GFile(self._tmp, "wb")
        self._zip = zipfile.ZipFile(_Appender(self._file), "w", zipfile.ZIP_STORED)
        return self

    def __exit__(self, exc_type, *_):
        if self._zip is not None:  # an error before finish()
            self._zip.close()
            self._file.close()
            tf.io.gfile.remove(self._tmp)

    def add_clip(self, features, mask, has_pose):
        """Appends one clip: ``features`` {field name: [T, ...] float32} with every embedding field of
        :func:`record_dtype`, ``mask`` [T, 13] (> 0 = present), ``has_pose`` [T] bool.

        Raises:
          ValueError: a finite value beyond the float16 range (use ``feature_dtype="float32"``).
        """
        record = np.zeros(len(has_pose), self.dtype)
        for name in self.dtype.names[:-2]:
            value = np.asarray(features[name], np.float32)
            with np.errstate(over="ignore"):  # reported below, naming the field
                stored = value.astype(self.feature_dtype)
            if not np.array_equal(np.isfinite(stored), np.isfinite(value)):
                raise ValueError(f"{name} of clip {len(self.lengths)} holds values beyond the "
                                 f"{self.feature_dtype} range (max |x| = "
                                 f"{np.nanmax(np.abs(value)):.4g}); write with feature_dtype=float32")
            record[name] = stored
        record["mask"] = np.asarray(mask) > 0
        record["has_pose"] = has_pose
        self._zip.writestr(f"clip_{len(self.lengths)}.npy", _npy_bytes(record))
        self.lengths.append(len(record))

    def finish(self, clip_fields, metadata):
        """Writes the per-clip fields (``CLIP_FIELDS``) and metadata; moves the file into place."""
        offsets = np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)]).astype(np.int64)
        metadata = dict(metadata, format=FORMAT, feature_dtype=self.feature_dtype,
                        flip_modes=list(self.flip_modes))
        members = dict({k: clip_fields[k] for k in CLIP_FIELDS}, clip_offsets=offsets,
                       metadata=np.array(json.dumps(metadata, default=str)))
        for key, value in members.items():
            self._zip.writestr(f"{key}.npy", _npy_bytes(value))
        self._zip.close()
        self._file.close()
        self._zip = None
        tf.io.gfile.rename(self._tmp, self.path, overwrite=True)
        return self.path


class ClipFeatures:
    """Per-clip features of some clips of an embedding file, read on demand.

    ``shape`` is (N, T, D) (all selected clips have one length); ``x[i]`` / ``x[indices]`` /
    ``x[a:b]`` read those clips and return float32 ([T, D] or [n, T, D]; ``x[i, t]`` indexes further
    after reading); frames with nobody detected
    (NaN in the file) read as zeros. ``np.asarray(x)`` reads all of them.
    """

    def __init__(self, emb, feature, flip, clips):
        self._emb, self.feature, self.flip = emb, feature, flip
        self.clips = np.asarray(clips, np.int64)
        lengths = np.diff(emb["clip_offsets"])[self.clips]
        if len(set(lengths.tolist())) > 1:
            raise ValueError(f"clips have different lengths {sorted(set(lengths.tolist()))[:5]}; "
                             "resample them to a fixed length first")
        dim = 2 * profiles.NUM_JOINTS if feature == "normalized_keypoints" else \
            emb.feature_dim(feature)
        self.shape = (len(self.clips), int(lengths[0]) if len(lengths) else 0, dim)

    def __len__(self):
        return self.shape[0]

    def select(self, indices):
        """The features of a subset (positions into this one), still unread."""
        return ClipFeatures(self._emb, self.feature, self.flip, self.clips[np.asarray(indices)])

    def __getitem__(self, index):
        rest = ()
        if isinstance(index, tuple):  # x[clip, frame, ...]: the clips are read, then indexed
            index, rest = index[0], index[1:]
        if isinstance(index, (int, np.integer)):
            out = self._read(self.clips[index])
            return out[rest] if rest else out
        chosen = self.clips[index]
        out = np.empty((len(chosen),) + self.shape[1:], np.float32)
        for i, clip in enumerate(chosen):
            out[i] = self._read(clip)
        return out[(slice(None),) + rest] if rest else out

    def __array__(self, dtype=None, copy=None):
        return self[:].astype(dtype or np.float32, copy=False)

    def _read(self, clip):
        values = self._emb.clip_feature(int(clip), self.feature, self.flip)
        return np.nan_to_num(values.reshape(self.shape[1], -1).astype(np.float32), nan=0.0)


class EmbeddingFile:
    """An open ``cv_mim.embeddings/2`` file: per-clip fields in memory, frames read on demand."""

    def __init__(self, path, npz, fields, metadata, cache_bytes=DEFAULT_CACHE_BYTES):
        self.path, self._npz, self.arrays, self.metadata = path, npz, fields, metadata
        self.flip_modes = tuple(metadata.get("flip_modes", ()))
        self._cache, self._cache_bytes, self._cache_limit = {}, 0, int(cache_bytes)
        self._dtype = None

    @property
    def num_clips(self):
        return len(self.arrays["clip_ids"])

    @property
    def class_names(self):
        return tuple(str(c) for c in self.arrays["class_names"])

    def __getitem__(self, key):
        """A per-clip field, or (for a frame field, e.g. ``pose_embedding``) that field of every
        frame concatenated — this reads the whole file: for small files and tests."""
        if key in self.arrays:
            return self.arrays[key]
        feature, flip = self._split_key(key)
        return np.concatenate([self.clip_feature(c, feature, flip) for c in range(self.num_clips)])

    def has(self, key):
        if key in self.arrays:
            return True
        try:
            self._split_key(key)
        except (KeyError, ValueError):
            return False
        return True

    def _split_key(self, key):
        for mode in FLIP_MODES:
            if key.endswith(f"_flip_{mode}"):
                return key[:-len(f"_flip_{mode}")], self._check_flip(key, mode)
        if key in FEATURES + ("mask", "has_pose"):
            return key, None
        raise KeyError(key)

    def _check_flip(self, feature, flip):
        if flip is not None and flip not in self.flip_modes:
            raise ValueError(f"the embedding file has no {feature!r} of flip mode {flip!r} (flip "
                             f"modes present: {list(self.flip_modes)}); re-run cv_mim.embed with "
                             f"--flip_modes={flip}")
        return flip

    def feature_dim(self, feature):
        return int(np.prod(self.record_dtype()[feature].shape))

    def record_dtype(self):
        """The structured dtype of the frames (read from the first clip)."""
        if self._dtype is None:
            self._dtype = self.clip(0).dtype
        return self._dtype

    def clip(self, c):
        """The frame records [T_c] of clip ``c`` (read from the file and checked)."""
        try:
            record = self._npz[f"clip_{c}"]
        except Exception as err:  # pylint: disable=broad-except
            raise ValueError(f"{self.path}: clip {c} is unreadable ({type(err).__name__}: "
                             f"{err})") from None
        length = int(self.arrays["clip_offsets"][c + 1] - self.arrays["clip_offsets"][c])
        if record.ndim != 1 or record.dtype.names is None or len(record) != length:
            raise ValueError(f"{self.path}: clip {c} must be a record array of {length} frames, "
                             f"got {record.dtype} shape {record.shape}")
        missing = [f for f in FEATURES + ("mask", "has_pose") if f not in record.dtype.names]
        if missing:
            raise ValueError(f"{self.path}: clip {c} lacks the fields {missing}")
        has_pose = record["has_pose"].astype(bool)
        for name in record.dtype.names:
            if name in ("mask", "has_pose"):
                continue
            values = record[name]
            if values.dtype.kind != "f":
                raise ValueError(f"{self.path}: clip {c} field {name} must be float, got "
                                 f"{values.dtype}")
            # Frames with nobody detected are NaN by design (has_pose False); NaN elsewhere is damage.
            bad = has_pose & ~np.isfinite(values.reshape(length, -1)).all(axis=1)
            if bad.any():
                raise ValueError(f"{self.path}: {name} of clip {c} is NaN/inf in {int(bad.sum())} "
                                 f"frame(s) that have a pose (first: "
                                 f"{np.flatnonzero(bad)[:5].tolist()})")
        return record

    def clip_feature(self, c, feature, flip=None):
        """One field of clip ``c`` [T_c, ...] in the stored dtype (mirrored keypoints derived)."""
        flip = self._check_flip(feature, flip)
        key = (c, feature, flip)
        if key in self._cache:
            return self._cache[key]
        if feature in EMBEDDINGS and flip is not None:
            value = self.clip(c)[f"{feature}_flip_{flip}"]
        else:
            value = self.clip(c)[feature]
            if flip is not None and feature == "normalized_keypoints":
                value = flip_normalized(value, flip)
            elif flip == "swap" and feature == "mask":
                value = value[..., profiles.LEFT_RIGHT_SWAP]
        value = np.ascontiguousarray(value)
        if self._cache_bytes + value.nbytes <= self._cache_limit:
            self._cache[key] = value
            self._cache_bytes += value.nbytes
        return value

    def clip_features(self, feature, flip=None, clips=None):
        """Per-clip features [C, T, D] as :class:`ClipFeatures` (read on demand; all clips must have
        one length, as Penn Action (332) and NTU (300) do). ``feature`` is one of ``FEATURES``;
        ``normalized_keypoints`` is flattened to 26-d; ``flip`` selects a mirrored variant."""
        if feature not in FEATURES:
            raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
        self._check_flip(feature, flip)
        return ClipFeatures(self, feature, flip,
                            np.arange(self.num_clips) if clips is None else clips)


def _read_npz(path):
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"embedding file not found: {path}")
    try:
        npz = np.load(tf.io.gfile.GFile(path, "rb"), allow_pickle=False)
        if not hasattr(npz, "files"):
            raise ValueError("a .npy array, not an .npz archive")
        metadata = json.loads(str(npz["metadata"])) if "metadata" in npz.files else None
    except Exception as err:  # pylint: disable=broad-except
        raise ValueError(f"{path}: not a readable .npz embedding file ({err})") from None
    return npz, metadata


def load_embeddings(path, *, cache_bytes=DEFAULT_CACHE_BYTES) -> EmbeddingFile:
    """Opens and checks a ``cv_mim.embeddings/2`` file (clear errors naming the file).

    Reads the per-clip fields and metadata only; frames are read (and checked) when asked for.
    Decoded clip features are kept in memory up to ``cache_bytes``.
    """
    npz, metadata = _read_npz(path)
    missing = [k for k in CLIP_FIELDS + ("clip_offsets", "metadata") if k not in npz.files]
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: not a cv_mim.embeddings file (missing keys {missing})"
                         if missing else f"{path}: its metadata entry is not a JSON object")
    if metadata.get("format") in OLD_FORMATS:
        raise ValueError(f"{path}: format {metadata['format']!r} of an older cv_mim is no longer "
                         f"read (expected {FORMAT!r}); re-run cv_mim.embed to rewrite it")
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: format {metadata.get('format')!r}, expected {FORMAT!r}")
    if missing:
        raise ValueError(f"{path}: not a cv_mim.embeddings file (missing keys {missing})")
    fields = {k: npz[k] for k in CLIP_FIELDS + ("clip_offsets",)}
    offsets = fields["clip_offsets"]
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu" or len(offsets) < 1 or offsets[0] != 0 \
            or np.any(np.diff(offsets) < 0):
        raise ValueError(f"{path}: clip_offsets must be a non-decreasing integer array from 0")
    num_clips = len(offsets) - 1
    bad = [k for k in CLIP_FIELDS if k != "class_names" and fields[k].shape != (num_clips,)]
    if bad:
        raise ValueError(f"{path}: the per-clip fields {bad} do not have {num_clips} entries")
    absent = [c for c in (0, num_clips - 1) if num_clips and f"clip_{c}" not in npz.files]
    if absent or not num_clips:
        raise ValueError(f"{path}: clip_offsets do not match the clip members (missing clip_"
                         f"{absent[0] if absent else 0})")
    for mode in metadata.get("flip_modes", ()):
        if mode not in FLIP_MODES:
            raise ValueError(f"{path}: unknown flip mode {mode!r} in the metadata")
    emb = EmbeddingFile(path, npz, fields, metadata, cache_bytes)
    emb.record_dtype()  # reads and checks clip 0
    return emb
