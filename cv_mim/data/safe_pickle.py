"""Reading pickles and ``.npz``/``.npy`` files without running their code (numpy only).

A pickle is a program: unpickling calls whatever callables the file names, so a crafted
``data_3d_h36m.npz`` (VideoPose3D stores its dicts as pickled 0-d object arrays) could run a payload
inside any binary that reads it. Everything the project reads goes through this module instead of
``pickle.load`` / ``np.load(allow_pickle=True)``:

* :func:`safe_load` unpickles with an unpickler whose ``find_class`` admits only the few numpy
  callables an array or dtype needs (``_reconstruct``, ``ndarray``, ``dtype``, ``scalar``,
  ``_frombuffer``) and the builtin containers/numbers that have no opcode of their own (``set``,
  ``frozenset``, ``complex``, ``bytearray``, ``OrderedDict``, protocol-2 ``_codecs.encode``).
  Dicts, lists, tuples, strings, bytes, ints, floats, bools and None have opcodes of their own and
  need no global. Anything else is refused with :class:`UnsafePickleError` (a ``ValueError``) before
  it is called. Names resolve from a fixed table, so no module named by the file is ever imported.
* :func:`load_npz` reads ``.npz``/``.npy`` files with ``np.load(allow_pickle=False)``; object arrays
  are decoded by parsing the ``.npy`` header and passing the pickle payload to :func:`safe_load`.
* :func:`load_pickle` reads a plain pickle file (e.g. a skeleton ``.pkl``) the same safe way.
"""
from __future__ import annotations

import ast
import builtins
import collections
import io
import os
import pickle
import struct
from typing import Iterable, Optional

import numpy as np

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# np.load's own default cap on a .npy header (guards ast.literal_eval against huge headers).
_MAX_HEADER_SIZE = 10000


def _allowed_globals():
    """(module, name) -> object for every global a numpy-array pickle may name.

    ``numpy.core`` is numpy 1.x's name of ``numpy._core`` (files written by numpy 1 use it)."""
    from numpy._core import multiarray  # pylint: disable=import-outside-toplevel
    from numpy._core import numeric  # pylint: disable=import-outside-toplevel
    table = {}
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        table[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol-5 arrays
    table[("numpy", "ndarray")] = np.ndarray
    table[("numpy", "dtype")] = np.dtype
    for name in ("set", "frozenset", "complex", "bytearray"):
        for module in ("builtins", "__builtin__"):  # __builtin__: protocol 2 (Python 2) spelling
            table[(module, name)] = getattr(builtins, name)
    table[("collections", "OrderedDict")] = collections.OrderedDict
    # Protocol 2 (Python 2 compatible) pickles spell bytes as _codecs.encode(str, 'latin1').
    table[("_codecs", "encode")] = _latin1_encode
    return table


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` restricted to the one use protocol-2 pickles make of it."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only allowed as encode(str, 'latin1')")
    return text.encode("latin1")


class UnsafePickleError(ValueError):
    """A pickle names a callable outside the allow-list; nothing of it was run."""


class _RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves globals only from :func:`_allowed_globals`."""

    def __init__(self, file, *, what, encoding="ASCII"):
        super().__init__(file, encoding=encoding)
        self._what = what
        self._table = _allowed_globals()

    def find_class(self, module, name):
        try:
            return self._table[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(
                f"{self._what}: refusing to unpickle {module}.{name} (only numpy arrays, dtypes and "
                "plain containers, strings and numbers are allowed; the file may be malicious)"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self._what}: refusing a pickle with persistent ids")


def safe_load(file_or_path, *, what: Optional[str] = None, encoding: str = "ASCII"):
    """Unpickles a file, path or bytes admitting only numpy arrays/dtypes and plain Python data.

    Args:
      file_or_path: a binary file object, a path, or ``bytes``.
      what: how errors name the source (default: the path, or "pickle").
      encoding: for Python 2 ``str`` objects (as ``pickle.load``; numpy uses 'ASCII').

    Returns:
      The unpickled object.

    Raises:
      UnsafePickleError: the pickle names a callable outside the allow-list (nothing was called).
      ValueError: the data is not a readable pickle (truncated, corrupt, ...).
    """
    if isinstance(file_or_path, (bytes, bytearray, memoryview)):
        return safe_load(io.BytesIO(bytes(file_or_path)), what=what or "pickle", encoding=encoding)
    if isinstance(file_or_path, (str, os.PathLike)):
        path = os.fspath(file_or_path)
        with open(path, "rb") as f:
            return safe_load(f, what=what or path, encoding=encoding)
    what = what or getattr(file_or_path, "name", None) or "pickle"
    try:
        return _RestrictedUnpickler(file_or_path, what=what, encoding=encoding).load()
    except UnsafePickleError:
        raise
    except Exception as error:  # UnpicklingError, EOFError, TypeError from a bad REDUCE, ...
        raise ValueError(f"{what}: not a readable pickle ({type(error).__name__}: {error})") from None


def load_pickle(path, *, what: Optional[str] = None):
    """Reads a plain pickle file through :func:`safe_load` (errors name the file)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what or path}: file not found")
    return safe_load(path, what=what or path)


# ----------------------------------------------------------------------------------------------
# .npy / .npz


def _read_header(fp, what):
    """Parses a ``.npy`` header (versions 1-3); returns (shape, fortran_order, dtype)."""
    magic = fp.read(8)
    if len(magic) != 8 or magic[:6] != _NPY_MAGIC:
        raise ValueError(f"{what}: not a .npy array (bad magic)")
    major = magic[6]
    if major not in (1, 2, 3):
        raise ValueError(f"{what}: unsupported .npy format version {major}.{magic[7]}")
    size_format = "<H" if major == 1 else "<I"
    raw = fp.read(struct.calcsize(size_format))
    (length,) = struct.unpack(size_format, raw) if len(raw) == struct.calcsize(size_format) else (-1,)
    if not 0 < length <= _MAX_HEADER_SIZE:
        raise ValueError(f"{what}: bad .npy header length {length}")
    text = fp.read(length).decode("utf8" if major == 3 else "latin1")
    try:
        header = ast.literal_eval(text)  # literals only: never calls anything
        shape = tuple(int(n) for n in header["shape"])
        fortran = bool(header["fortran_order"])
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except Exception as error:  # SyntaxError, KeyError, TypeError, ...
        raise ValueError(f"{what}: bad .npy header ({type(error).__name__}: {error})") from None
    return shape, fortran, dtype


def _read_object_array(fp, shape, dtype, what):
    """The pickled object array after a ``.npy`` header, via :func:`safe_load`, checked against it."""
    array = safe_load(fp, what=what, encoding="ASCII")
    if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != dtype:
        raise ValueError(f"{what}: pickle payload does not match its .npy header (shape {shape}, "
                         f"dtype {dtype})")
    return array


def _file_kind(path, what):
    with open(path, "rb") as f:
        head = f.read(6)
    if head == _NPY_MAGIC:
        return "npy"
    if head[:4] in _ZIP_MAGICS:
        return "npz"
    if head[:1] == b"\x80":
        raise ValueError(f"{what}: a plain pickle, not a .npz/.npy file; refusing to read it as one")
    raise ValueError(f"{what}: not a .npz/.npy file")


def load_npz(path, *, what: Optional[str] = None, keys: Optional[Iterable[str]] = None):
    """Reads a ``.npz`` or ``.npy`` file without ever unpickling unsafely.

    Args:
      path: the file.
      what: how errors name it (default: the path).
      keys: for a ``.npz``, load only these entries (absent ones are skipped); default all.

    Returns:
      For a ``.npz``, a dict ``{entry: array}`` (as ``np.load(allow_pickle=True)`` would give, object
      arrays included); for a ``.npy``, the array.

    Raises:
      FileNotFoundError: no such file.
      UnsafePickleError: an object array's pickle names a callable outside the allow-list.
      ValueError: not a readable .npz/.npy file (plain pickles included).
    """
    path = os.fspath(path)
    what = what or path
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what}: file not found")
    try:
        kind = _file_kind(path, what)
        if kind == "npy":
            return _load_npy(path, what)
        return _load_npz_entries(path, what, keys)
    except ValueError:
        raise
    except Exception as error:  # zipfile.BadZipFile, OSError, EOFError, ...
        raise ValueError(f"{what}: not a readable .npz/.npy file ({type(error).__name__}: "
                         f"{error})") from None


def _load_npy(path, what):
    with open(path, "rb") as f:
        shape, _, dtype = _read_header(f, what)
        if dtype.hasobject:
            return _read_object_array(f, shape, dtype, what)
    return np.load(path, allow_pickle=False)


def _load_npz_entries(path, what, keys):
    wanted = None if keys is None else set(keys)
    out = {}
    with np.load(path, allow_pickle=False) as data:
        names = set(data.zip.namelist())
        for key in data.files:
            if wanted is not None and key not in wanted:
                continue
            member = key + ".npy" if key + ".npy" in names else key
            entry = f"{what} entry {key!r}"
            with data.zip.open(member) as fp:
                shape, _, dtype = _read_header(fp, entry)
                if dtype.hasobject:
                    out[key] = _read_object_array(fp, shape, dtype, entry)
                    continue
            out[key] = data[key]
    return out
