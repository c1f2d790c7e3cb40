"""Safe save/load: exact round trip, atomic writes, clear errors, no pickle."""

import io as stdio
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import unrolled.io as uio
from unrolled.io import HEADER_KEY, _decode, _encode, load, register_model, save


@register_model
class DummyModel:
    """Two parameters: W (n_out, n_in) float32 and b (n_out,) float64."""

    def __init__(self, sizes=(3, 2), scale=0.5, extra=None):
        self.sizes = tuple(sizes)
        self.scale = float(scale)
        self.extra = extra if extra is not None else {"table": np.eye(2, dtype=np.int32)}
        n_in, n_out = self.sizes
        self.params = {
            "W": np.zeros((n_out, n_in), dtype=np.float32),
            "b": np.zeros(n_out, dtype=np.float64),
        }

    def get_config(self):
        return {"sizes": self.sizes, "scale": self.scale, "extra": self.extra}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def make_model(seed=0):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((2, 3))
    m = DummyModel(sizes=(4, 3), scale=0.125, extra={"table": table, "tags": ("a", 1)})
    m.params["W"][...] = rng.standard_normal((3, 4)).astype(np.float32)
    m.params["b"][...] = rng.standard_normal(3)
    m.params["W"][0, 0] = np.nan
    m.params["b"][0] = -np.inf
    return m


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def header_array(**overrides):
    header = {
        "format": "unrolled",
        "version": 1,
        "class": "DummyModel",
        "config": _encode(DummyModel().get_config()),
        "params": ["W", "b"],
    }
    header.update(overrides)
    return np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)


def valid_arrays():
    m = DummyModel()
    return {HEADER_KEY: header_array(), "W": m.params["W"], "b": m.params["b"]}


# ---------------------------------------------------------------- round trip


def test_round_trip_exact(tmp_path):
    m = make_model()
    path = tmp_path / "model"  # no extension: the name is used as given
    save(m, path)
    assert os.listdir(tmp_path) == ["model"]
    m2 = load(path)
    assert type(m2) is DummyModel
    assert m2.sizes == (4, 3) and m2.scale == 0.125
    assert m2.params["W"].dtype == np.float32 and m2.params["b"].dtype == np.float64
    np.testing.assert_array_equal(m2.params["W"], m.params["W"])
    np.testing.assert_array_equal(m2.params["b"], m.params["b"])
    assert m2.params["W"].tobytes() == m.params["W"].tobytes()
    assert m2.params["b"].tobytes() == m.params["b"].tobytes()
    table = m2.extra["table"]
    assert table.dtype == np.float64 and table.shape == (2, 3)
    assert table.tobytes() == m.extra["table"].tobytes()
    assert m2.extra["tags"] == ["a", 1]  # tuples come back as lists


def test_round_trip_str_path_and_overwrite(tmp_path):
    path = str(tmp_path / "m.npz")
    save(make_model(0), path)
    save(make_model(1), path)
    m2 = load(path)
    np.testing.assert_array_equal(m2.params["b"], make_model(1).params["b"])
    assert os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_overwrite_keeps_file_mode(tmp_path):
    path = tmp_path / "m.npz"
    save(make_model(0), path)
    os.chmod(path, 0o600)
    save(make_model(1), path)
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_load_copies_into_live_arrays(tmp_path, monkeypatch):
    made = []
    original = DummyModel.from_config.__func__

    def spy(cls, config):
        m = original(cls, config)
        made.append({k: v for k, v in m.params.items()})
        return m

    monkeypatch.setattr(DummyModel, "from_config", classmethod(spy))
    save(make_model(), tmp_path / "m.npz")
    m2 = load(tmp_path / "m.npz")
    assert m2.params["W"] is made[0]["W"] and m2.params["b"] is made[0]["b"]


def test_file_is_plain_npz_with_header(tmp_path):
    save(make_model(), tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted([HEADER_KEY, "W", "b"])
        header = json.loads(npz[HEADER_KEY].tobytes().decode("utf-8"))
    assert header["format"] == "unrolled" and header["version"] == 1
    assert header["class"] == "DummyModel" and header["params"] == ["W", "b"]
    assert header["config"]["sizes"] == [4, 3]


# ---------------------------------------------------------------- config encoding


def test_encode_decode():
    cfg = {
        "t": (1, 2.5, "x", None, True),
        "np_scalars": [np.float32(0.1), np.int64(7), np.bool_(True)],
        "nested": {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "e": np.zeros((0, 3))},
        "f32": np.array([0.1, 1e-8], dtype=np.float32),
        "zero_d": np.array(2.5),
    }
    enc = _encode(cfg)
    text = json.dumps(enc)
    dec = _decode(json.loads(text))
    assert dec["t"] == [1, 2.5, "x", None, True]
    assert dec["np_scalars"] == [float(np.float32(0.1)), 7, True]
    assert type(dec["np_scalars"][1]) is int and type(dec["np_scalars"][2]) is bool
    for key, arr in (("a", cfg["nested"]["a"]), ("e", cfg["nested"]["e"])):
        assert dec["nested"][key].dtype == arr.dtype and dec["nested"][key].shape == arr.shape
        np.testing.assert_array_equal(dec["nested"][key], arr)
    assert dec["f32"].dtype == np.float32 and dec["f32"].tobytes() == cfg["f32"].tobytes()
    assert dec["zero_d"].shape == () and dec["zero_d"] == 2.5


def test_encode_rejects_unsupported():
    with pytest.raises(TypeError, match=r"config\['f'\]: cannot save a function"):
        _encode({"f": lambda: None})
    with pytest.raises(TypeError, match="keys must be str"):
        _encode({1: 2})
    with pytest.raises(TypeError, match="only bool, int and float arrays"):
        _encode({"o": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="reserved"):
        _encode({"__ndarray__": 1})


def test_decode_rejects_object_dtype():
    with pytest.raises(ValueError, match="dtype must be bool, int or float"):
        _decode({"__ndarray__": [1], "dtype": "|O", "shape": [1]})
    with pytest.raises(ValueError, match="values, shape"):
        _decode({"__ndarray__": [1, 2], "dtype": "<f8", "shape": [3]})


# ---------------------------------------------------------------- atomic save


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save(make_model(0), path)
    before = path.read_bytes()

    def boom(file, *args, **kwds):
        file.write(b"PK\x03\x04 partial garbage")
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save(make_model(1), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(load(path).params["b"], make_model(0).params["b"])


def test_failed_replace_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save(make_model(0), path)
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("replace failed")

    monkeypatch.setattr(uio.os, "replace", boom)
    with pytest.raises(OSError, match="replace failed"):
        save(make_model(1), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_failed_get_config_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save(make_model(0), path)
    before = path.read_bytes()
    m = make_model(1)
    monkeypatch.setattr(m, "get_config", lambda: {"bad": object()})
    with pytest.raises(TypeError, match="cannot save a object"):
        save(m, path)

    def raises():
        raise RuntimeError("config failed")

    monkeypatch.setattr(m, "get_config", raises)
    with pytest.raises(RuntimeError, match="config failed"):
        save(m, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_save_rejects_bad_models(tmp_path):
    class Unregistered(DummyModel):
        pass

    with pytest.raises(ValueError, match="not registered"):
        save(Unregistered(), tmp_path / "m.npz")
    m = DummyModel()
    m.params["o"] = np.array([None], dtype=object)
    with pytest.raises(TypeError, match="object dtype"):
        save(m, tmp_path / "m.npz")
    m = DummyModel()
    m.params["file"] = np.zeros(1)
    with pytest.raises(ValueError, match="reserved"):
        save(m, tmp_path / "m.npz")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        save(DummyModel(), 3)
    assert os.listdir(tmp_path) == []


def test_register_model_conflict():
    with pytest.raises(ValueError, match="already registered"):

        @register_model
        class DummyModel:  # noqa: F811 - a different class under a taken name
            @classmethod
            def from_config(cls, config):
                return cls()

    with pytest.raises(TypeError, match="expects a class"):
        register_model(lambda: None)


# ---------------------------------------------------------------- corrupted files


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")


def test_truncated_file(tmp_path):
    path = tmp_path / "m.npz"
    save(make_model(), path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 10, 4):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not an unrolled model file"):
            load(path)


def test_damaged_member(tmp_path):
    path = tmp_path / "m.npz"
    save(make_model(), path)
    data = bytearray(path.read_bytes())
    # flip bytes inside the compressed data of the first member
    for i in range(60, 80):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not an unrolled model file"):
        load(path)


def test_random_and_empty_bytes(tmp_path):
    path = tmp_path / "r.npz"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match="not an unrolled model file.*not a zip"):
        load(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="not an unrolled model file.*empty"):
        load(path)


def test_pickle_file_is_not_unpickled(tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    path.write_bytes(pickle.dumps({"W": np.zeros(2)}))

    def forbidden(*args, **kwargs):
        raise AssertionError("load must never unpickle")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    with pytest.raises(ValueError, match="not an unrolled model file"):
        load(path)


def test_plain_npz_without_header(tmp_path):
    path = tmp_path / "plain.npz"
    write_npz(path, W=np.zeros((2, 3), np.float32), b=np.zeros(2))
    with pytest.raises(ValueError, match="not an unrolled model file.*no '__unrolled__' header"):
        load(path)


def test_npz_with_pickled_object_array(tmp_path, monkeypatch):
    arrays = valid_arrays()
    arrays["W"] = np.array([{"evil": 1}, None], dtype=object)
    path = tmp_path / "obj.npz"
    write_npz(path, **arrays)

    def forbidden(*args, **kwargs):
        raise AssertionError("load must never unpickle")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    with pytest.raises(ValueError, match="not an unrolled model file.*cannot read array 'W'"):
        load(path)
    # the header itself as a pickled object array
    path2 = tmp_path / "objheader.npz"
    write_npz(path2, **{HEADER_KEY: np.array([{"format": "unrolled"}], dtype=object)})
    with pytest.raises(ValueError, match="not an unrolled model file.*cannot read array '__unrolled__'"):
        load(path2)


def test_foreign_or_bad_header(tmp_path):
    cases = {
        "format": ({HEADER_KEY: header_array(format="other")}, "header format is 'other'"),
        "json": ({HEADER_KEY: np.frombuffer(b"{not json", np.uint8)}, "not UTF-8 JSON"),
        "dtype": ({HEADER_KEY: np.zeros(3, np.float64)}, "1-D uint8"),
        "version0": ({HEADER_KEY: header_array(version=0)}, "version must be an int"),
        "params": ({HEADER_KEY: header_array(params="W")}, "'params' must be a list"),
    }
    for name, (override, message) in cases.items():
        arrays = valid_arrays()
        arrays.update(override)
        path = tmp_path / f"{name}.npz"
        write_npz(path, **arrays)
        with pytest.raises(ValueError, match="not an unrolled model file") as info:
            load(path)
        assert message in str(info.value), (name, str(info.value))


def test_future_version(tmp_path):
    arrays = valid_arrays()
    arrays[HEADER_KEY] = header_array(version=2)
    path = tmp_path / "v2.npz"
    write_npz(path, **arrays)
    with pytest.raises(ValueError, match="format version 2.*newer"):
        load(path)


def test_unknown_class(tmp_path):
    arrays = valid_arrays()
    arrays[HEADER_KEY] = header_array(**{"class": "NoSuchModel"})
    path = tmp_path / "u.npz"
    write_npz(path, **arrays)
    with pytest.raises(ValueError, match="unknown model class 'NoSuchModel'"):
        load(path)


def test_missing_and_extra_param_arrays(tmp_path):
    arrays = valid_arrays()
    del arrays["b"]
    write_npz(tmp_path / "missing.npz", **arrays)
    with pytest.raises(ValueError, match=r"not an unrolled model file.*missing: \['b'\]"):
        load(tmp_path / "missing.npz")
    arrays = valid_arrays()
    arrays["c"] = np.zeros(1)
    write_npz(tmp_path / "extra.npz", **arrays)
    with pytest.raises(ValueError, match=r"not listed in the header: \['c'\]"):
        load(tmp_path / "extra.npz")


def test_param_mismatch_names_the_param(tmp_path):
    arrays = valid_arrays()
    arrays["W"] = np.zeros((5, 5), np.float32)
    write_npz(tmp_path / "shape.npz", **arrays)
    with pytest.raises(ValueError, match=r"parameter 'W' is saved with shape \(5, 5\)"):
        load(tmp_path / "shape.npz")
    arrays = valid_arrays()
    arrays["b"] = arrays["b"].astype(np.float32)
    write_npz(tmp_path / "dtype.npz", **arrays)
    with pytest.raises(ValueError, match="parameter 'b' .*dtype float32.*expects .*dtype float64"):
        load(tmp_path / "dtype.npz")
    arrays = valid_arrays()
    arrays[HEADER_KEY] = header_array(params=["W", "b", "c"])
    arrays["c"] = np.zeros(1)
    write_npz(tmp_path / "names.npz", **arrays)
    with pytest.raises(ValueError, match="do not match the parameters"):
        load(tmp_path / "names.npz")


def test_zip_member_that_is_not_npy(tmp_path):
    path = tmp_path / "z.npz"
    buf = stdio.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(HEADER_KEY, b"hello")
    path.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="not an unrolled model file"):
        load(Path(path))
