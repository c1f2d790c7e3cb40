"""Safe save/load: exact round trip, atomic writes, clear errors, no pickle."""

import io as stdio
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import unrolled
import unrolled.io as uio
from unrolled import Layer, Link, Network
from unrolled.blocks import recurrent_network
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


# ---------------------------------------------------------------- every model class

PACKAGE_MODELS = {
    "RNN": lambda: unrolled.RNN(2, 3, hidden=(4, 3), skip_output=True, output="softmax", seed=1),
    "RNN big seed": lambda: unrolled.RNN(2, 1, hidden=(3,), seed=2**62 + 12345),
    "TDNN": lambda: unrolled.TDNN(2, 2, width=3, hidden=(4, 3), seed=1),
    "NARX closed": lambda: unrolled.NARX(2, 2, input_delays=[0, 2], output_delays=3, hidden=4, seed=1),
    "NARX open": lambda: unrolled.NARX(2, 2, input_delays=1, output_delays=[1, 4], feedback="open", seed=1),
    "NARX n_in=0": lambda: unrolled.NARX(0, 1, input_delays=None, output_delays=5, hidden=(3, 3), seed=1),
    # delays longer than the 11 saved values: a delay sizes no weight
    "NARX long taps": lambda: unrolled.NARX(1, 1, input_delays=[0, 400], output_delays=[365], hidden=(2,)),
    "Jordan": lambda: unrolled.Jordan(2, 2, hidden=4, decay=0.25, output="sigmoid", seed=1),
    "Elman": lambda: unrolled.Elman(2, 2, hidden=(4, 3), seed=1),
    "Elman full": lambda: unrolled.Elman(2, 2, hidden=4, context_gradient="full", seed=1),
    "StateSpace": lambda: unrolled.StateSpace(2, 2, hidden=4, activation="relu", seed=1),
    "BiRNN": lambda: unrolled.BiRNN(2, 3, hidden=(4, 3), blocks=2, output="softmax", seed=1),
    "Seq2Seq": lambda: unrolled.Seq2Seq(recurrent_network(2, (3, 2), seed=0),
                                        unrolled.RNN(4, 3, hidden=(3, 2), output="softmax", seed=1)),
    "Bidirectional": lambda: unrolled.Bidirectional(recurrent_network(2, (3,), seed=1),
                                                    unrolled.RNN(2, 2, hidden=(2,), seed=2)),
    "Stack": lambda: unrolled.Stack(
        unrolled.Bidirectional(recurrent_network(2, (3,), seed=1), unrolled.RNN(2, 2, hidden=(2,), seed=2)),
        Network({"x": 5}, {"y": Layer(1, "identity")}, [Link("x", "y")], "y"), names=["bi", "out"]),
    "Network": lambda: Network(
        {"x": 2}, {"h": Layer(2), "c": Layer(2, "identity", bias=False, init="zeros")},
        [Link("x", "h"), Link("c", "h"), Link("h", "c", 1, weight=1.0, trainable=False, gradient="blocked"),
         Link("x", "c", weight=np.array([[1.0, 2.0], [3.0, 4.0]]), trainable=False)], "h", seed=0),
    # no parameters at all: its sizes pass under the floor
    "Network without weights": lambda: Network(
        {"x": 3}, {"y": Layer(3, "identity", bias=False, init="zeros")},
        [Link("x", "y", weight=2.0, trainable=False)], "y"),
    "CharRNN": lambda: unrolled.CharRNN("ab c\n", hidden=(5,), seed=3),
}


@pytest.mark.parametrize("name", PACKAGE_MODELS)
def test_every_model_class_saves_and_loads(name, tmp_path):
    m = PACKAGE_MODELS[name]()
    rng = np.random.default_rng(7)
    for v in m.params.values():
        v[...] = rng.normal(size=v.shape)
    save(m, tmp_path / "m.npz")
    back = load(tmp_path / "m.npz")
    assert type(back) is type(m)
    assert json.dumps(_encode(back.get_config())) == json.dumps(_encode(m.get_config()))
    assert list(back.params) == list(m.params)
    for k, v in m.params.items():
        assert back.params[k].dtype == v.dtype and back.params[k].tobytes() == v.tobytes(), k
    assert os.listdir(tmp_path) == ["m.npz"]


# ---------------------------------------------------------------- load checks before it builds


def edit_file(src, dst, header=None, arrays=None):
    """Copy the saved file ``src`` to ``dst``, applying ``header(h)`` / ``arrays(a)`` in place."""
    with np.load(src, allow_pickle=False) as npz:
        a = {k: npz[k] for k in npz.files}
    h = json.loads(a[HEADER_KEY].tobytes().decode("utf-8"))
    if header is not None:
        header(h)
    a[HEADER_KEY] = np.frombuffer(json.dumps(h).encode("utf-8"), dtype=np.uint8)
    if arrays is not None:
        arrays(a)
    write_npz(dst, **a)
    return dst


def huge_rnn_file(tmp_path, pad=0):
    """The reported file: a small RNN's weights under a config of n_in = hidden = 200000
    (a 298 GiB model); ``pad`` adds a zero array of that many values (compressed to little)."""
    save(unrolled.RNN(2, 1, hidden=(3,), seed=0), tmp_path / "small.npz")

    def header(h):
        h["config"].update(n_in=200000, hidden=[200000])
        if pad:
            h["params"].append("pad")

    def arrays(a):
        if pad:
            a["pad"] = np.zeros(pad, np.float32)

    return edit_file(tmp_path / "small.npz", tmp_path / "huge.npz", header, arrays)


def test_huge_config_fails_before_building(tmp_path, monkeypatch):
    path = huge_rnn_file(tmp_path)
    assert path.stat().st_size < 2000  # the 1.7 kB file

    def forbidden(cls, config):
        raise AssertionError("load built the model before checking its sizes")

    monkeypatch.setattr(unrolled.RNN, "from_config", classmethod(forbidden))
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        load(path)
    assert time.perf_counter() - start < 1.0
    msg = str(info.value)
    assert str(path) in msg and "config['n_in'] is 200000" in msg
    assert "25 parameter values saved in the file" in msg


def test_huge_config_beside_padding_fails_as_value_error_within_a_memory_limit(tmp_path):
    """Zeros compress ~1000:1, so a few kB can pad the saved values past the sizes; then the
    network being built finds that it would hold far more numbers than the file does, and
    refuses before it allocates: a ValueError naming the file (run under RLIMIT_AS all the
    same, so nothing could really take 298 GiB)."""
    pytest.importorskip("resource")
    path = huge_rnn_file(tmp_path, pad=200000)
    assert path.stat().st_size < 5000
    script = textwrap.dedent(f"""
        import resource, sys
        import unrolled
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (2 << 30), resource.getrlimit(resource.RLIMIT_AS)[1]))
        try:
            unrolled.load({str(path)!r})
        except ValueError as exc:
            print("ValueError:", exc)
    """)
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc to size the address-space limit")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ValueError:") and str(path) in out.stdout
    assert "cannot build a RNN" in out.stdout and "more than the" in out.stdout   # refused before allocating


def test_sizes_over_the_absolute_cap(tmp_path):
    save(unrolled.NARX(1, 1, input_delays=[0, 2], output_delays=[1], hidden=(2,)), tmp_path / "n.npz")
    path = edit_file(tmp_path / "n.npz", tmp_path / "far.npz",
                     header=lambda h: h["config"].update(input_delays=[0, 2**24 + 1]))
    with pytest.raises(ValueError, match=r"far\.npz: config\['input_delays'\]\[1\] is 16777217, over the limit"):
        load(path)
    # a count (not a delay's value) is bounded by the saved values
    path = edit_file(tmp_path / "n.npz", tmp_path / "many.npz",
                     header=lambda h: h["config"].update(input_delays=100000))
    with pytest.raises(ValueError, match=r"many\.npz: config\['input_delays'\] is 100000, larger than any "
                                         r"size in a model of the 11 "):
        load(path)
    # as is a list's length (a tiny header of a million layers)
    path = edit_file(tmp_path / "n.npz", tmp_path / "deep.npz",
                     header=lambda h: h["config"].update(hidden=[1] * 10**6))
    assert path.stat().st_size < 10000
    with pytest.raises(ValueError, match=r"deep\.npz: config\['hidden'\] has length 1000000"):
        load(path)


def test_unknown_config_key_is_a_value_error_naming_the_file(tmp_path):
    save(unrolled.RNN(2, 1, hidden=(3,), seed=0), tmp_path / "rnn.npz")
    path = edit_file(tmp_path / "rnn.npz", tmp_path / "bogus.npz", header=lambda h: h["config"].update(bogus=1))
    with pytest.raises(ValueError, match=r"bogus\.npz: config \(a RNN config\) has keys \['bogus'\] that RNN\(\) "
                                         r"does not take"):
        load(path)

    def drop_n_in(h):
        del h["config"]["n_in"]

    path = edit_file(tmp_path / "rnn.npz", tmp_path / "no_n_in.npz", header=drop_n_in)
    with pytest.raises(ValueError, match=r"no_n_in\.npz: .*lacks the keys \['n_in'\]"):
        load(path)
    # a child of a composite, at any depth
    save(PACKAGE_MODELS["Stack"](), tmp_path / "stack.npz")

    def child_key(h):
        h["config"]["blocks"][0]["config"]["backward_net"]["config"]["bogus"] = 1

    path = edit_file(tmp_path / "stack.npz", tmp_path / "child.npz", header=child_key)
    with pytest.raises(ValueError, match=r"child\.npz: config\['blocks'\]\[0\]\['config'\]\['backward_net'\]"
                                         r"\['config'\] \(a RNN config\) has keys \['bogus'\]"):
        load(path)

    def child_class(h):
        h["config"]["blocks"][1]["class"] = "NoSuchBlock"

    path = edit_file(tmp_path / "stack.npz", tmp_path / "child_class.npz", header=child_class)
    with pytest.raises(ValueError, match=r"child_class\.npz: config\['blocks'\]\[1\]: unknown model class"):
        load(path)
    # a class with its own from_config: its TypeError becomes a ValueError naming file and class
    save(DummyModel(), tmp_path / "dummy.npz")
    path = edit_file(tmp_path / "dummy.npz", tmp_path / "dummy_bogus.npz",
                     header=lambda h: h["config"].update(bogus=1))
    with pytest.raises(ValueError, match=r"dummy_bogus\.npz: cannot build a DummyModel .*TypeError.*bogus"):
        load(path)


@pytest.mark.parametrize("change", [{"hidden": "abc"}, {"n_in": "abc"}, {"dtype": "complex128"},
                                    {"activation": 3}, {"n_in": -2}])
def test_wrong_config_value_is_a_value_error_naming_the_file(tmp_path, change):
    save(unrolled.RNN(2, 1, hidden=(3,), seed=0), tmp_path / "rnn.npz")
    path = edit_file(tmp_path / "rnn.npz", tmp_path / "wrong.npz", header=lambda h: h["config"].update(change))
    with pytest.raises(ValueError, match=r"wrong\.npz: cannot build a RNN from the saved config"):
        load(path)


def test_saved_shape_disagreeing_with_config_names_parameter_and_file(tmp_path, monkeypatch):
    save(unrolled.RNN(2, 1, hidden=(3,), seed=0), tmp_path / "rnn.npz")
    key = "W[x->h1@0]"
    path = edit_file(tmp_path / "rnn.npz", tmp_path / "shape.npz",
                     arrays=lambda a: a.update({key: np.zeros((3, 5), np.float32)}))
    read = []
    real = uio._read_member
    monkeypatch.setattr(uio, "_read_member", lambda zf, n, *a: read.append(n) or real(zf, n, *a))
    with pytest.raises(ValueError) as info:
        load(path)
    msg = str(info.value)
    assert str(path) in msg and f"parameter {key!r} is saved with shape (3, 5)" in msg
    assert "expects shape (3, 2)" in msg
    assert read == [HEADER_KEY]  # no weight was read before the shapes were checked


def test_npy_header_claiming_more_than_the_member_holds(tmp_path):
    buf = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    arrays = valid_arrays()
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in (HEADER_KEY, "b"):
            member = stdio.BytesIO()
            np.lib.format.write_array(member, arrays[name])
            zf.writestr(name + ".npy", member.getvalue())
        zf.writestr("W.npy", buf.getvalue() + bytes(24))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"not an unrolled model file: .*liar\.npz: array 'W': its \.npy "
                                         r"header says shape \(1000000000000,\) float32"):
        load(path)
    assert time.perf_counter() - start < 1.0


def test_zip_member_claiming_more_than_it_stores(tmp_path):
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(HEADER_KEY + ".npy", b"\x93NUMPY" + bytes(100))
    data = bytearray(path.read_bytes())
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size, local and central
        i = data.index(sig)
        data[i + at:i + at + 4] = (4 * 10**9).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"not an unrolled model file: .*stored uncompressed in 106 bytes but "
                                         r"claims 4000000000"):
        load(path)


# ---------------------------------------------------------------- killed saves

SLOW_SAVE = textwrap.dedent("""
    import io, sys, time
    import numpy as np
    import unrolled

    real = np.savez_compressed

    def slow(file, *args, **kwds):   # half of the real file, then a hang: killed mid-write
        buf = io.BytesIO()
        real(buf, *args, **kwds)
        file.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        file.flush()
        time.sleep(600)

    np.savez_compressed = slow
    unrolled.save(unrolled.RNN(3, 2, hidden=(64,), seed=1), sys.argv[1])
""")


def temporaries(directory):
    return sorted(p for p in os.listdir(directory) if uio._TMP_RE.fullmatch(p))


def start_slow_save(target):
    """A process saving to ``target`` that hangs mid-write; returns it once its temp file has data."""
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(target)])
    deadline = time.monotonic() + 60
    try:
        while True:
            tmps = temporaries(os.path.dirname(target))
            if tmps and os.path.getsize(os.path.join(os.path.dirname(target), tmps[0])) > 0:
                return proc, tmps[0]
            assert proc.poll() is None, "the slow save exited early"
            assert time.monotonic() < deadline, "the slow save never wrote its temporary file"
            time.sleep(0.02)
    except BaseException:
        kill(proc)
        raise


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()  # reaped: a zombie still counts as a live pid


posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and pids")


@posix_only
def test_killed_save_keeps_target_and_the_next_save_removes_its_temporary(tmp_path):
    target = tmp_path / "m.npz"
    save(make_model(0), target)
    before = target.read_bytes()
    proc, tmp = start_slow_save(target)
    assert tmp.startswith(".m.npz.unrolled-%d-" % proc.pid)
    kill(proc)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == before  # untouched
    assert temporaries(tmp_path) == [tmp]  # the killed writer's file is left...
    np.testing.assert_array_equal(load(target).params["b"], make_model(0).params["b"])
    assert temporaries(tmp_path) == []  # ...until a load there removes it
    # again, for save: a new target (absent before), then a save in the same folder
    proc, tmp = start_slow_save(tmp_path / "new.npz")
    kill(proc)
    assert not (tmp_path / "new.npz").exists() and temporaries(tmp_path) == [tmp]
    save(make_model(1), target)
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


@posix_only
def test_live_writer_temporary_is_not_removed(tmp_path):
    save(make_model(0), tmp_path / "other.npz")
    proc, tmp = start_slow_save(tmp_path / "m.npz")
    try:
        save(make_model(1), tmp_path / "other.npz")
        load(tmp_path / "other.npz")
        save(make_model(1), tmp_path / "m.npz")  # even a save of the same target
        assert temporaries(tmp_path) == [tmp]
    finally:
        kill(proc)
    load(tmp_path / "other.npz")
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "other.npz"]


@posix_only
def test_cleanup_touches_only_dead_writers_files_of_this_host(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(done.stdout)
    host = uio._host_tag()
    other_host = "0" * 8 if host != "0" * 8 else "1" * 8
    names = {
        "dead": f".m.npz.unrolled-{dead}-{host}-{'a' * 16}.tmp",
        "alive": f".m.npz.unrolled-{os.getpid()}-{host}-{'b' * 16}.tmp",
        "other host": f".m.npz.unrolled-{dead}-{other_host}-{'c' * 16}.tmp",
        "pid 0": f".m.npz.unrolled-0-{host}-{'d' * 16}.tmp",
        "old scheme": ".m.npz.x1y2z3w4.tmp",
        "someone's": f".notes.{dead}.tmp",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    os.mkdir(tmp_path / f".d.unrolled-{dead}-{host}-{'e' * 16}.tmp")  # not a file: kept
    save(make_model(), tmp_path / "m.npz")
    left = set(os.listdir(tmp_path))
    assert names["dead"] not in left
    assert left == {"m.npz", f".d.unrolled-{dead}-{host}-{'e' * 16}.tmp"} | (set(names.values()) - {names["dead"]})


def test_save_names_the_missing_folder_not_its_temporary_file(tmp_path):
    model = make_model()
    with pytest.raises(ValueError, match=r"cannot save to '.*m.npz': its folder '.*nodir.sub' does not exist"):
        save(model, tmp_path / "nodir" / "sub" / "m.npz")
    with pytest.raises(ValueError, match="it names a folder; name a file in it"):
        save(model, tmp_path)
    with pytest.raises(OSError, match=r"cannot save to '.*nodir/': it names a folder"):   # an OSError too
        save(model, str(tmp_path / "nodir") + os.sep)
    assert os.listdir(tmp_path) == []
