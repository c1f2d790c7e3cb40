"""Save and load models: one ``.npz`` file that cannot run code when loaded.

File format (version 1)
-----------------------
A zip written by :func:`numpy.savez_compressed` holding

- one array per parameter, under the parameter's name, with its exact shape
  and dtype;
- ``__unrolled__``: a uint8 array of UTF-8 JSON, the header::

      {"format": "unrolled", "version": 1, "class": "<registered class name>",
       "config": <model.get_config(), encoded by _encode>,
       "params": ["<name>", ...]}

Loading uses ``numpy.load(..., allow_pickle=False)`` and ``json``: no pickle,
no import of anything named in the file.  The class is looked up in a
registry filled by :func:`unrolled.registry.register_model`.

Model protocol
--------------
Every class saved or loaded here provides

- ``model.get_config() -> dict``: constructor arguments, JSON-serialisable
  after :func:`_encode` (str keys; str, int, float, bool, None, lists, tuples,
  dicts, numpy scalars and numeric numpy arrays);
- ``cls.from_config(config) -> model``: rebuilds the model (tuples in the
  config come back as lists, arrays as arrays);
- ``model.params``: dict name -> live ndarray, the trainable weights.
  :func:`load` copies the saved values *into* these arrays.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np

from .registry import register_model, registered_class, registered_name

# (register_model is the registry's; it stays importable from here, where it always was)
__all__ = ["FORMAT", "VERSION", "HEADER_KEY", "register_model", "save", "load"]

FORMAT = "unrolled"
VERSION = 1
HEADER_KEY = "__unrolled__"
_ARRAY_KEY = "__ndarray__"
_ARRAY_KINDS = "biuf"  # bool, signed, unsigned, float: exact as JSON numbers

# Names a parameter may not take: the header, and the keyword arguments of
# numpy.savez_compressed(file, *args, allow_pickle=True, **kwds).
_RESERVED_NAMES = frozenset({HEADER_KEY, "file", "allow_pickle"})

# --------------------------------------------------------------------------
# Config encoding


def _encode(obj: Any, where: str = "config") -> Any:
    """Turn a config into plain JSON types.

    numpy arrays (numeric or bool) become
    ``{"__ndarray__": nested list, "dtype": str, "shape": list}``; numpy
    scalars become Python scalars; tuples become lists; dicts (str keys only)
    and lists are encoded recursively.  Anything else raises TypeError naming
    where it sits (``where`` is the path used in that message).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(
                f"{where}: only bool, int and float arrays can be saved in a config, "
                f"got dtype {obj.dtype}"
            )
        return {_ARRAY_KEY: obj.tolist(), "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        if obj.dtype.kind not in _ARRAY_KINDS + "U":
            raise TypeError(f"{where}: unsupported numpy scalar of dtype {obj.dtype}")
        return obj.item()
    if isinstance(obj, (int, float)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: dict keys must be str, got {type(k).__name__} ({k!r})")
            if k == _ARRAY_KEY:
                raise ValueError(f"{where}: the key {_ARRAY_KEY!r} is reserved for encoded arrays")
            out[k] = _encode(v, f"{where}[{k!r}]")
        return out
    raise TypeError(
        f"{where}: cannot save a {type(obj).__name__} in a config; expected str, int, "
        "float, bool, None, list, tuple, dict or a numeric numpy array/scalar"
    )


def _decode(obj: Any, where: str = "config") -> Any:
    """Inverse of :func:`_encode`: rebuild arrays (exact dtype and shape).

    Tuples come back as lists.  Raises ValueError on a malformed encoded
    array (unknown or non-numeric dtype, data that does not fit the shape).
    """
    if isinstance(obj, list):
        return [_decode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if _ARRAY_KEY in obj:
            return _decode_array(obj, where)
        return {k: _decode(v, f"{where}[{k!r}]") for k, v in obj.items()}
    return obj


def _decode_array(obj: dict, where: str) -> np.ndarray:
    if set(obj) != {_ARRAY_KEY, "dtype", "shape"}:
        raise ValueError(
            f"{where}: an encoded array needs exactly the keys "
            f"['{_ARRAY_KEY}', 'dtype', 'shape'], got {sorted(obj)}"
        )
    try:
        dtype = np.dtype(obj["dtype"])
    except TypeError as exc:
        raise ValueError(f"{where}: invalid array dtype {obj['dtype']!r}") from exc
    if dtype.kind not in _ARRAY_KINDS:
        raise ValueError(f"{where}: array dtype must be bool, int or float, got {dtype}")
    shape = obj["shape"]
    if not isinstance(shape, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise ValueError(f"{where}: array shape must be a list of ints >= 0, got {shape!r}")
    try:
        arr = np.array(obj[_ARRAY_KEY], dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{where}: array data does not fit dtype {dtype}: {exc}") from exc
    if arr.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(
            f"{where}: array data has {arr.size} values, shape {tuple(shape)} "
            f"needs {int(np.prod(shape, dtype=np.int64))}"
        )
    return arr.reshape(shape)


# --------------------------------------------------------------------------
# Save


def _path(path) -> str:
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if not isinstance(p, str):
        raise TypeError(f"path must be a str or os.PathLike giving str, got {type(p).__name__}")
    return p


def _new_file_mode(target: str) -> int:
    """Permission bits for the saved file: the old file's, else 0o666 & ~umask."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        pass
    try:  # Linux: read the umask without changing it (os.umask is not thread-safe)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644


def _params_of(model) -> dict[str, np.ndarray]:
    params = getattr(model, "params", None)
    if not isinstance(params, dict):
        raise TypeError(
            f"{type(model).__name__}.params must be a dict name -> ndarray, got {type(params).__name__}"
        )
    for name, arr in params.items():
        if not isinstance(name, str):
            raise TypeError(f"parameter names must be str, got {type(name).__name__} ({name!r})")
        if name in _RESERVED_NAMES:
            raise ValueError(
                f"parameter name {name!r} is reserved ({sorted(_RESERVED_NAMES)} are the "
                "file header and numpy.savez_compressed's own arguments); rename it"
            )
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"parameter {name!r} must be a numpy ndarray, got {type(arr).__name__}")
        if arr.dtype.hasobject:
            raise TypeError(f"parameter {name!r} has object dtype, which cannot be saved without pickle")
    return params


def save(model, path: str | os.PathLike) -> None:
    """Write ``model`` (class name, config, parameters) to ``path``, atomically.

    Parameters
    ----------
    model : instance of a class decorated with :func:`register_model`
        With ``get_config()`` and ``params`` (see the module docstring).
        Parameter arrays of any shape, e.g. W (n_out, n_in), b (n_out,), are
        stored exactly (values, shape, dtype).
    path : str or os.PathLike
        Used as given (no extension is added; ``.npz`` is customary).

    The file is written to a temporary file in the same directory, flushed
    and fsynced, then moved onto ``path`` with :func:`os.replace`: a reader
    sees the old file or the new one, never a partial one.  On any error the
    temporary file is removed and any previous file at ``path`` is left
    untouched.
    """
    target = _path(path)
    name = registered_name(model, "save")
    get_config = getattr(model, "get_config", None)
    if not callable(get_config):
        raise TypeError(f"{name} must define get_config() to be saved")
    config = get_config()
    if not isinstance(config, dict):
        raise TypeError(f"{name}.get_config() must return a dict, got {type(config).__name__}")
    params = _params_of(model)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "class": name,
        "config": _encode(config),
        "params": list(params),
    }
    text = json.dumps(header, ensure_ascii=False, allow_nan=True)
    arrays = {HEADER_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    arrays.update(params)

    directory = os.path.dirname(os.path.abspath(target))
    mode = _new_file_mode(target)
    tmp = tempfile.NamedTemporaryFile(
        dir=directory, prefix="." + os.path.basename(target) + ".", suffix=".tmp", delete=False
    )
    try:
        with tmp:
            np.savez_compressed(tmp, **arrays)  # object dtypes were refused above
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, mode)
        os.replace(tmp.name, target)
    except BaseException:
        try:
            os.unlink(tmp.name)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable where the OS allows fsync on a directory."""
    flags = getattr(os, "O_DIRECTORY", 0) | os.O_RDONLY
    try:
        fd = os.open(directory, flags)
    except OSError:
        return  # e.g. Windows: directories cannot be opened
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# Load


def _not_ours(path: str, why: str) -> ValueError:
    return ValueError(f"not an unrolled model file: {path}: {why}")


# What reading a damaged zip member can raise: bad CRC or structure
# (BadZipFile), truncation (EOFError, ValueError "EOF"), a damaged deflate
# stream (zlib.error), object arrays or a bad .npy header (ValueError), zip
# features Python lacks (NotImplementedError, RuntimeError).
_READ_ERRORS = (
    zipfile.BadZipFile, EOFError, ValueError, KeyError, zlib.error,
    NotImplementedError, RuntimeError,
)


def _member(npz, name: str, path: str) -> np.ndarray:
    """Array ``name`` of an open NpzFile; ValueError if it cannot be read."""
    try:
        arr = npz[name]
    except _READ_ERRORS as exc:
        raise _not_ours(path, f"cannot read array {name!r} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(arr, np.ndarray):
        raise _not_ours(path, f"entry {name!r} is not a .npy array")
    return arr


def _read_header(npz, path: str) -> dict:
    if HEADER_KEY not in npz.files:
        raise _not_ours(path, f"no {HEADER_KEY!r} header entry (arrays: {sorted(npz.files)[:10]})")
    raw = _member(npz, HEADER_KEY, path)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _not_ours(path, f"header must be a 1-D uint8 array, got {raw.dtype} shape {raw.shape}")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _not_ours(path, f"header is not UTF-8 JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _not_ours(path, f"header must be a JSON object, got {type(header).__name__}")
    if header.get("format") != FORMAT:
        raise _not_ours(path, f"header format is {header.get('format')!r}, expected {FORMAT!r}")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _not_ours(path, f"header version must be an int >= 1, got {version!r}")
    if version > VERSION:
        raise ValueError(
            f"{path} is unrolled file format version {version}, written by a newer "
            f"unrolled; this one reads versions up to {VERSION}: upgrade unrolled"
        )
    for key, typ in (("class", str), ("config", dict), ("params", list)):
        if not isinstance(header.get(key), typ):
            raise _not_ours(path, f"header {key!r} must be a {typ.__name__}, got {header.get(key)!r:.80}")
    names = header["params"]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise _not_ours(path, f"header 'params' must list distinct str names, got {names!r:.200}")
    return header


def load(path: str | os.PathLike):
    """Read a model written by :func:`save` and return it, weights restored.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    model
        ``cls.from_config(config)`` of the registered class named in the
        file, with every saved parameter copied into ``model.params`` (same
        names, shapes and dtypes, else ValueError naming the parameter).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not an unrolled model file (not a zip, truncated or corrupted, no or
        foreign header, missing or extra arrays, object arrays), a newer
        format version, an unregistered class name, or parameters that do
        not match the rebuilt model.  Nothing in the file is unpickled.
    """
    p = _path(path)
    with open(p, "rb") as f:
        magic = f.read(4)
        if magic != b"PK\x03\x04":
            what = "empty file" if not magic else f"starts with {magic!r}, not a zip archive"
            raise _not_ours(p, what)
        f.seek(0)
        try:
            npz = np.load(f, allow_pickle=False)
        except _READ_ERRORS as exc:
            raise _not_ours(p, f"corrupted archive ({type(exc).__name__}: {exc})") from exc
        with npz:
            header = _read_header(npz, p)
            names = header["params"]
            stored = set(npz.files) - {HEADER_KEY}
            missing = [n for n in names if n not in stored]
            if missing:
                raise _not_ours(p, f"parameter arrays missing: {missing}")
            extra = sorted(stored - set(names))
            if extra:
                raise _not_ours(p, f"arrays not listed in the header: {extra}")
            values = {n: _member(npz, n, p) for n in names}

    cls_name = header["class"]
    cls = registered_class(cls_name, where=f"{p}: ")
    model = cls.from_config(_decode(header["config"]))
    live = _params_of(model)
    if set(live) != set(names):
        raise ValueError(
            f"{p}: saved parameters {sorted(names)} do not match the parameters "
            f"{sorted(live)} of the {cls_name} rebuilt from its config"
        )
    for n in names:
        a, v = live[n], values[n]
        if a.shape != v.shape or a.dtype != v.dtype:
            raise ValueError(
                f"{p}: parameter {n!r} is saved with shape {v.shape} dtype {v.dtype}, "
                f"the rebuilt {cls_name} expects shape {a.shape} dtype {a.dtype}"
            )
    for n in names:
        np.copyto(live[n], values[n])
    return model
