"""Tests for cv_mim/data/safe_pickle.py: hostile pickles are refused before any payload runs, and real
VideoPose3D / NTU files read back exactly as ``np.load(allow_pickle=True)`` reads them."""
import builtins
import functools
import io
import os
import pathlib
import pickle
import subprocess
import zipfile

import numpy as np
import pytest

from cv_mim.data import safe_pickle

REALDATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "realdata"
if not REALDATA.is_dir():
    REALDATA = pathlib.Path("/work/shared/realdata")


class _Payload:
    """Pickles as ``callable(*args)``: what an attacker's file would do on load."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _payloads(marker):
    """Ways a pickle can run code; each would create `marker` if it ran."""
    shell = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _Payload(os.system, shell),
        "builtins.exec": _Payload(builtins.exec, code),
        "builtins.eval": _Payload(builtins.eval, code),
        "subprocess.call": _Payload(subprocess.call, ["touch", str(marker)]),
        "functools.partial": _Payload(functools.partial(os.system, shell)),
        "builtins.open": _Payload(builtins.open, str(marker), "w"),
        "pathlib.Path.touch": _Payload(pathlib.Path(marker).touch),
    }


def _inside_array(obj):
    """`obj` as the value of a VideoPose3D-style 0-d object array (a dict of dicts)."""
    value = np.empty((), dtype=object)
    value[()] = {"S1": {"Walking": obj}}
    return value


@pytest.mark.parametrize("name", sorted(_payloads("x")))
def test_hostile_pickle_refused_and_payload_never_runs(tmp_path, name):
    marker = tmp_path / "PWNED"
    payload = _payloads(marker)[name]
    data = pickle.dumps({"S1": [np.zeros(3), payload]}, protocol=3)
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"evil\.pkl: refusing to unpickle"):
        safe_pickle.safe_load(data, what="evil.pkl")
    assert not marker.exists()
    # Sanity: the same bytes do run the payload through the unrestricted unpickler.
    if name not in ("builtins.open", "pathlib.Path.touch"):
        pickle.loads(data)
        assert marker.exists(), "the crafted pickle is not a real payload"


def test_refusal_names_module_and_callable():
    data = pickle.dumps(_Payload(os.system, "true"))
    with pytest.raises(ValueError) as info:
        safe_pickle.safe_load(data, what="f.npz")
    module = os.system.__module__  # 'posix' on Linux
    assert f"refusing to unpickle {module}.system" in str(info.value)


@pytest.mark.parametrize("where", ["positions_3d", "metadata"])
def test_hostile_npz_entry_refused(tmp_path, where):
    marker = tmp_path / "PWNED"
    path = tmp_path / "data_3d_h36m.npz"
    entries = {"positions_3d": _inside_array(np.zeros((2, 32, 3), np.float32)),
               "metadata": _inside_array(1)}
    entries[where] = _inside_array(_payloads(marker)["os.system"])
    np.savez_compressed(path, **entries)
    with pytest.raises(safe_pickle.UnsafePickleError, match=f"entry '{where}': refusing"):
        safe_pickle.load_npz(path)
    assert not marker.exists()
    # Reading only the harmless entry works; the hostile one is never unpickled.
    other = "metadata" if where == "positions_3d" else "positions_3d"
    assert list(safe_pickle.load_npz(path, keys=[other])) == [other]
    assert not marker.exists()


def test_plain_pickle_named_npz_refused(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "data_3d_h36m.npz"
    path.write_bytes(pickle.dumps(_payloads(marker)["os.system"]))
    with pytest.raises(ValueError, match="data_3d_h36m.npz: a plain pickle"):
        safe_pickle.load_npz(path)
    assert not marker.exists()


def test_hostile_npy_refused(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "x.skeleton.npy"
    np.save(path, _inside_array(_payloads(marker)["builtins.exec"]), allow_pickle=True)
    with pytest.raises(safe_pickle.UnsafePickleError, match="x.skeleton.npy: refusing"):
        safe_pickle.load_npz(path)
    assert not marker.exists()


def test_header_payload_mismatch_refused(tmp_path):
    """A .npy whose header says (3,) object but whose pickle is a plain dict is not an array."""
    path = tmp_path / "x.npy"
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False,
                                               "shape": (3,)})
    path.write_bytes(buf.getvalue() + pickle.dumps({"a": 1}, protocol=3))
    with pytest.raises(ValueError, match="does not match its .npy header"):
        safe_pickle.load_npz(path)


def _assert_same(a, b, where="root"):
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
                _assert_same(x, y, f"{where}[{i}]")
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


REAL_FILES = ["h36m/data_3d_h36m_S11_sample.npz", "h36m/data_2d_h36m_S11_sample_gt.npz",
              "ntu_rgbd/S001C001P001R001A001.skeleton.npy"]


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_files_identical_to_unrestricted_load(name):
    path = REALDATA / name
    if not path.exists():
        pytest.skip("real-data samples absent")
    ours = safe_pickle.load_npz(path)
    theirs = np.load(path, allow_pickle=True)
    if isinstance(theirs, np.ndarray):
        _assert_same(ours, theirs)
        assert ours.item()["skel_body0"].shape == (103, 25, 3)
    else:
        with theirs:
            _assert_same(ours, {k: theirs[k] for k in theirs.files})


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_videopose3d_layout_round_trips(protocol):
    """Dict of dict of arrays, list of arrays, numpy scalars, sets, complex, bytes, OrderedDict."""
    rng = np.random.default_rng(0)
    value = {"S1": {"Walking": [rng.normal(size=(4, 17, 2)).astype(np.float32) for _ in range(3)],
                    "Sitting": rng.normal(size=(2, 32, 3))},
             "meta": {"num_joints": 17, "keypoints_symmetry": [[4, 5], [1, 2]], "s": np.float32(2.5),
                      "i": np.int64(7), "c": 1 + 2j, "set": {1, 2}, "fs": frozenset("ab"),
                      "b": b"\x00\xff", "none": None, "t": (True, 1.5, "x"),
                      "od": __import__("collections").OrderedDict(a=1),
                      "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
                      "structured": np.zeros(2, dtype=[("x", "<f4"), ("n", "<i2")])}}
    data = pickle.dumps(value, protocol=protocol)
    _assert_same(safe_pickle.safe_load(data), pickle.loads(data))


def test_npz_mixed_entries_round_trip(tmp_path):
    path = tmp_path / "mixed.npz"
    obj = _inside_array(np.arange(5.0))
    np.savez(path, plain=np.arange(3, dtype=np.int16), obj=obj, lst=np.array([np.zeros(2), None],
                                                                              dtype=object))
    ours = safe_pickle.load_npz(path)
    with np.load(path, allow_pickle=True) as theirs:
        _assert_same(ours, {k: theirs[k] for k in theirs.files})


@pytest.mark.parametrize("content,match", [
    (b"", "not a .npz/.npy file"),
    (b"hello world", "not a .npz/.npy file"),
    (b"PK\x03\x04truncated", "not a readable .npz/.npy file"),
    (b"\x93NUMPY\x01\x00\xff\xff", "bad .npy header"),
])
def test_garbage_files_named(tmp_path, content, match):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"bad.npz: {match}"):
        safe_pickle.load_npz(path)


def test_truncated_pickle_payload(tmp_path):
    path = tmp_path / "t.npz"
    np.savez(path, obj=_inside_array(np.arange(100.0)))
    with zipfile.ZipFile(path) as z:
        raw = z.read("obj.npy")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("obj.npy", raw[: len(raw) - 40])
    with pytest.raises(ValueError, match="entry 'obj': not a readable pickle"):
        safe_pickle.load_npz(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        safe_pickle.load_npz("/nonexistent/nope.npz")


def test_codecs_encode_restricted():
    """Protocol 2 spells bytes as _codecs.encode(str, 'latin1'); nothing else of _codecs passes."""
    assert safe_pickle.safe_load(pickle.dumps(b"\x01\xfe", protocol=2)) == b"\x01\xfe"
    import _codecs  # pylint: disable=import-outside-toplevel
    data = pickle.dumps(_Payload(_codecs.encode, "abc", "rot13"), protocol=2)
    with pytest.raises(ValueError, match="not a readable pickle"):
        safe_pickle.safe_load(data)
