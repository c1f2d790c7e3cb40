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

Loading reads the zip with :mod:`zipfile` and each member with
``numpy.lib.format`` (``allow_pickle=False``) and the header with ``json``: no
pickle, no import of anything named in the file.  The class is looked up in a
registry filled by :func:`unrolled.registry.register_model`.  Every member's
.npy header (shape, dtype) is read first, so the sizes in the config, its keys
and, once the model is built, every parameter's shape are checked before any
weight is read, and sizes before any model is built (see :func:`load`).

``save`` writes ``.{name}.unrolled-{pid}-{host}-{token}.tmp`` beside the
target and renames it into place; a later save or load in that directory
removes such a file when its writer's process is gone (killed mid-write).

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

import hashlib
import json
import math
import os
import re
import secrets
import socket
import zipfile
import zlib
from typing import Any

import numpy as np
from numpy.lib import format as npformat

from ._checks import parameter_budget
from .registry import check_config, register_model, registered_class, registered_name

# (register_model is the registry's; it stays importable from here, where it always was)
__all__ = ["FORMAT", "VERSION", "HEADER_KEY", "register_model", "save", "load", "load_training", "check_writable",
           "UnwritablePath"]

FORMAT = "unrolled"
VERSION = 1
HEADER_KEY = "__unrolled__"
_ARRAY_KEY = "__ndarray__"
_ARRAY_KINDS = "biuf"  # bool, signed, unsigned, float: exact as JSON numbers

# Names a parameter may not take: the header, and the keyword arguments of
# numpy.savez_compressed(file, *args, allow_pickle=True, **kwds).
_RESERVED_NAMES = frozenset({HEADER_KEY, "file", "allow_pickle"})
# A training checkpoint's own arrays are stored under this prefix (no parameter starts so).
_TRAINING_PREFIX = "__training__."

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
# Temporary files
#
# save writes ``.{basename}.unrolled-{pid}-{host}-{token}.tmp`` beside the target and
# renames it onto the target when it is complete.  A writer killed mid-write (SIGKILL,
# power loss, OOM killer) cannot remove its file, so the name says whose it is: the
# writer's process id and a tag of its host.  Every save and every load looks in the
# directory it works in and removes such files whose writer is gone: same host tag (a
# pid means nothing on another machine sharing the directory) and no live process of
# that pid.  A live writer's file is never touched.  A reused pid only delays the
# removal; a name of any other shape (another program's file) is never touched.

_TMP_RE = re.compile(r"\..*\.unrolled-(?P<pid>[0-9]{1,10})-(?P<host>[0-9a-f]{8})-[0-9a-f]{16}\.tmp")
_TMP_BASENAME_CHARS = 128  # keeps the name under NAME_MAX (255) whatever the target's length


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _temp_name(target: str) -> str:
    base = os.path.basename(target)[:_TMP_BASENAME_CHARS]
    return f".{base}.unrolled-{os.getpid()}-{_host_tag()}-{secrets.token_hex(8)}.tmp"


def _writer_alive(pid: int) -> bool:
    """Whether process ``pid`` may still be writing (any doubt counts as alive)."""
    if pid <= 0:  # os.kill(0, ...) and os.kill(-1, ...) address process groups
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: alive, someone else's
        return True
    return True


def _remove_stale_temporaries(directory: str) -> list[str]:
    """Remove the temporary files of dead writers in ``directory``; return their paths."""
    if os.name != "posix":  # os.kill(pid, 0) terminates the process on Windows
        return []
    host = _host_tag()
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        m = _TMP_RE.fullmatch(entry.name)
        if m is None or m["host"] != host or _writer_alive(int(m["pid"])):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
        except OSError:  # gone already (another cleaner), or a read-only directory
            continue
        removed.append(entry.path)
    return removed


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


class UnwritablePath(ValueError, OSError):
    """A path no file can be saved at (its folder missing, or a folder itself): a
    ValueError, as every bad argument, and an OSError, as the failed write it replaces."""


def check_writable(path: str | os.PathLike, what: str = "path") -> str:
    """``path`` as a str, if a file can be saved there: its folder exists and it is not a
    folder itself; else :class:`UnwritablePath` (a ValueError and an OSError) naming
    ``what`` and the path (TypeError for a path that is not a str or os.PathLike).
    ``save`` checks this first, and ``fit`` checks its ``checkpoint`` before the first
    update, so that a mistyped folder is refused at once, not after training and not by
    the name of the temporary file.

    Parameters
    ----------
    path : str or os.PathLike
        Where a file is to be saved.
    what : str
        How the error names the path (``"checkpoint"``, ``"--out"``).

    Returns
    -------
    str
        ``path`` as a str.
    """
    try:
        target = _path(path)
    except TypeError:
        raise TypeError(f"{what} must be a str or os.PathLike, got {type(path).__name__}") from None
    if not target:
        raise UnwritablePath(f"{what} must name a file, got an empty path")
    directory = os.path.dirname(os.path.abspath(target))
    named = repr(target) if what == "path" else f"{what} {target!r}"
    if os.path.isdir(target) or target.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)):
        raise UnwritablePath(f"cannot save to {named}: it names a folder; name a file in it")
    if not os.path.isdir(directory):
        why = "is not a folder" if os.path.exists(directory) else "does not exist"
        raise UnwritablePath(f"cannot save to {named}: its folder {directory!r} {why}")
    return target


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
        if name in _RESERVED_NAMES or name.startswith(_TRAINING_PREFIX):
            raise ValueError(
                f"parameter name {name!r} is reserved ({sorted(_RESERVED_NAMES)} are the "
                "file header and numpy.savez_compressed's own arguments); rename it"
            )
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"parameter {name!r} must be a numpy ndarray, got {type(arr).__name__}")
        if arr.dtype.hasobject:
            raise TypeError(f"parameter {name!r} has object dtype, which cannot be saved without pickle")
    return params


def _create_temporary(target: str) -> tuple[str, int]:
    directory = os.path.dirname(os.path.abspath(target))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(directory, _temp_name(target))
        try:
            return tmp, os.open(tmp, flags, 0o600)
        except FileExistsError:  # a 64-bit token collided: draw another
            continue


def save(model: Any, path: str | os.PathLike, *, training: tuple[dict, dict[str, np.ndarray]] | None = None) -> None:
    """Write ``model`` (class name, config, parameters) to ``path``, atomically.

    ``training``: optionally ``(state, arrays)``, what ``fit`` needs to resume (a dict
    of JSON values and a dict name -> ndarray), stored beside the model in the same
    file (header key ``"training"``, arrays under ``__training__.<name>``); ``load``
    ignores it, :func:`load_training` reads it back.

    Parameters
    ----------
    model : instance of a class decorated with :func:`register_model`
        With ``get_config()`` and ``params`` (see the module docstring).
        Parameter arrays of any shape, e.g. W (n_out, n_in), b (n_out,), are
        stored exactly (values, shape, dtype).
    path : str or os.PathLike
        Used as given (no extension is added; ``.npz`` is customary).
    training : tuple of (dict, dict), optional
        ``(state, arrays)`` that ``fit`` needs to resume, as described above.

    Notes
    -----
    The file is written to a temporary file in the same directory
    (``.{name}.unrolled-{pid}-{host}-{token}.tmp``), flushed and fsynced,
    then moved onto ``path`` with :func:`os.replace`: a reader sees the old
    file or the new one, never a partial one.  On any error the temporary
    file is removed and any previous file at ``path`` is left untouched.  If
    the process is killed mid-write, the next ``save`` or ``load`` in that
    directory removes the temporary file (its writer's pid is gone).
    """
    target = check_writable(path)
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
    extra = {}
    if training is not None:
        state, extra = training
        for key, value in extra.items():
            if not isinstance(value, np.ndarray) or value.dtype.hasobject:
                raise TypeError(f"training array {key!r} must be a numeric ndarray, got {type(value).__name__}")
        header["training"] = {"state": _encode(state, "training"), "arrays": list(extra)}
    text = json.dumps(header, ensure_ascii=False, allow_nan=True)
    arrays = {HEADER_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    arrays.update(params)
    arrays.update({_TRAINING_PREFIX + key: value for key, value in extra.items()})

    directory = os.path.dirname(os.path.abspath(target))
    _remove_stale_temporaries(directory)
    mode = _new_file_mode(target)
    tmp, fd = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)  # object dtypes were refused above
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
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
# features Python lacks (NotImplementedError, RuntimeError), a seek past the
# end (OSError).
_READ_ERRORS = (
    zipfile.BadZipFile, EOFError, ValueError, KeyError, zlib.error,
    NotImplementedError, RuntimeError, OSError,
)

# Deflate encodes at most 258 bytes in a 2-bit code: 1032 bytes out per byte in.
# A member that claims more than that (plus slack for the stream's own framing)
# lies about its size, and numpy would allocate what the .npy header claims
# before reading a byte of it.
_MAX_DEFLATE_RATIO = 1032
_RATIO_SLACK = 1 << 16
_MAX_HEADER_BYTES = 1 << 27   # 128 MiB of JSON: far beyond any config, far below trouble

# Sizes in a config (see _check_sizes).
_MAX_SIZE = 1 << 24           # no layer, input, tap count or delay beyond 16 777 216
_SIZE_FLOOR = 256             # sizes up to this pass whatever was saved (models with few or no weights)
_FREE_INT_KEYS = frozenset({"seed", "epochs"})                          # seeds an RNG, counts iterations: sizes nothing
_DELAY_KEYS = frozenset({"delay", "input_delays", "output_delays"})    # a delay's value sizes no weight


class _Member:
    """A zip member holding one .npy array, as its header describes it (no data read)."""

    __slots__ = ("info", "shape", "dtype", "size")

    def __init__(self, info, shape, dtype):
        self.info, self.shape, self.dtype = info, shape, dtype
        self.size = math.prod(shape)


def _scan_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, path: str) -> _Member:
    """Read only the .npy header of ``info``; check it against the member's size."""
    if info.flag_bits & 0x1:
        raise _not_ours(path, f"array {name!r} is encrypted")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise _not_ours(path, f"array {name!r} is stored uncompressed in {info.compress_size} bytes "
                                  f"but claims {info.file_size}")
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + _RATIO_SLACK:
            raise _not_ours(path, f"array {name!r} claims {info.file_size} bytes from {info.compress_size} "
                                  "compressed bytes, more than deflate can encode")
    else:
        raise _not_ours(path, f"array {name!r} uses zip compression method {info.compress_type}; "
                              "numpy.savez_compressed writes deflate (8)")
    try:
        with zf.open(info) as m:
            version = npformat.read_magic(m)
            if version == (1, 0):
                shape, fortran, dtype = npformat.read_array_header_1_0(m)
            elif version == (2, 0):
                shape, fortran, dtype = npformat.read_array_header_2_0(m)
            else:
                raise ValueError(f".npy format version {version} is not supported")
            offset = m.tell()
    except _READ_ERRORS as exc:
        raise _not_ours(path, f"cannot read array {name!r} ({type(exc).__name__}: {exc})") from exc
    if dtype.hasobject:
        raise _not_ours(path, f"cannot read array {name!r}: it holds Python objects, which only "
                              "pickle could read, and load never unpickles")
    member = _Member(info, tuple(shape), dtype)
    nbytes = member.size * dtype.itemsize
    if offset + nbytes != info.file_size:
        raise _not_ours(path, f"array {name!r}: its .npy header says shape {member.shape} {dtype} "
                              f"({nbytes} bytes) but the member holds {info.file_size - offset} bytes")
    return member


def _scan(zf: zipfile.ZipFile, path: str) -> dict[str, _Member]:
    members: dict[str, _Member] = {}
    for info in zf.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if info.is_dir() or name in members:
            raise _not_ours(path, f"unexpected zip entry {info.filename!r}")
        members[name] = _scan_member(zf, info, name, path)
    return members


def _read_member(zf: zipfile.ZipFile, name: str, member: _Member, path: str) -> np.ndarray:
    """The array ``name``, whose header :func:`_scan_member` checked."""
    try:
        with zf.open(member.info) as m:
            arr = npformat.read_array(m, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise _not_ours(path, f"cannot read array {name!r} ({type(exc).__name__}: {exc})") from exc
    if arr.shape != member.shape or arr.dtype != member.dtype:  # the same header, read twice
        raise _not_ours(path, f"array {name!r} changed while it was read")
    return arr


def _read_header(zf: zipfile.ZipFile, members: dict[str, _Member], path: str) -> dict:
    if HEADER_KEY not in members:
        raise _not_ours(path, f"no {HEADER_KEY!r} header entry (arrays: {sorted(members)[:10]})")
    h = members[HEADER_KEY]
    if h.dtype != np.uint8 or len(h.shape) != 1:
        raise _not_ours(path, f"header must be a 1-D uint8 array, got {h.dtype} shape {h.shape}")
    if h.size > _MAX_HEADER_BYTES:
        raise _not_ours(path, f"header of {h.size} bytes is over the limit of {_MAX_HEADER_BYTES}")
    raw = _read_member(zf, HEADER_KEY, h, path)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _not_ours(path, f"header is not UTF-8 JSON ({type(exc).__name__}: {exc})") from exc
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


def _check_sizes(config: dict, n_saved: int, path: str) -> None:
    """Refuse, before any model is built, a config whose sizes the saved weights cannot hold.

    A model's memory is set by the sizes in its config (a layer of H units and an
    input of n_in mean an H x n_in weight), and the file's true size by its saved
    arrays, whose shapes are known from their .npy headers without reading them.
    Every size a model builds an array of (a layer, an input or output width, a
    vocabulary, a count of layers, taps or blocks, each of which owns a weight)
    appears as a dimension of at least one saved weight or bias, so it is at most
    ``n_saved``, the total number of saved parameter values.  A config asking for
    more (``n_in = hidden = 200000`` beside a few hundred saved values, which would
    be a 298 GiB model) cannot be this file's model; building it first would
    allocate all of it before the saved shapes could disagree.  So every int in the
    config, at any depth (a composite's child configs too), and every list's
    length must be at most ``n_saved`` (or ``_SIZE_FLOOR``, for models with few or
    no weights) and at most ``_MAX_SIZE``.  Exempt: ``seed`` (it sizes nothing),
    the values of delays (``delay``, the entries of ``input_delays`` /
    ``output_delays``: a 12-step tap on a net of 11 weights is fine), which only
    meet the absolute cap, and encoded arrays (bounded by the header's size, their
    shape checked against their data by :func:`_decode`).

    This bounds each size by the file; the arrays built from two sizes are then
    checked against the saved ones after building (in :func:`load`), and a build
    that still cannot get its memory fails as ValueError there.
    """
    limit = min(_MAX_SIZE, max(n_saved, _SIZE_FLOOR))

    def too_big(where, value, bound, what):
        if bound == limit and limit < _MAX_SIZE:
            why = (f"larger than any size in a model of the {n_saved} parameter values saved in the "
                   f"file (limit {limit}): the config does not describe the saved weights")
        else:
            why = f"over the limit of {_MAX_SIZE} on any size in a model config"
        return ValueError(f"{path}: {where} {what} {value}, {why}; refusing to build the model")

    stack = [(config, "config", None, False)]
    while stack:
        obj, where, key, in_list = stack.pop()
        if isinstance(obj, dict):
            if _ARRAY_KEY in obj:
                continue
            stack.extend((v, f"{where}[{k!r}]", k, False)   # reversed: popped in order
                         for k, v in reversed(obj.items()) if k not in _FREE_INT_KEYS)
        elif isinstance(obj, list):
            if len(obj) > limit:
                raise too_big(where, len(obj), limit, "has length")
            stack.extend((obj[i], f"{where}[{i}]", key, True) for i in reversed(range(len(obj))))
        elif isinstance(obj, int) and not isinstance(obj, bool):
            delay = key == "delay" or (key in _DELAY_KEYS and in_list)
            bound = _MAX_SIZE if delay else limit
            if obj > bound:
                raise too_big(where, obj, bound, "is")
        elif isinstance(obj, str) and len(obj) > _MAX_SIZE:
            raise too_big(where, len(obj), _MAX_SIZE, "is a str of length")


def load(path: str | os.PathLike) -> Any:
    """Read a model written by :func:`save` and return it, weights restored.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

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
        Any check below.  Nothing in the file is unpickled, nothing it names
        is imported.

    Notes
    -----
    Checks, in order, each failure a ValueError naming the file:

    1. the zip and every member's .npy header (shape, dtype; no object
       arrays; the bytes the member holds, which deflate bounds by the file's
       size), reading no array data;
    2. the JSON header (format, version, class, config, params) and that the
       arrays are exactly the listed parameters;
    3. the class is registered; every size in the config against the saved
       arrays' total number of values and an absolute cap
       (:func:`_check_sizes`); the config decodes;
    4. the config's keys against the class's constructor (and each child
       block's, for composites);
    5. only then the model is built: any error of ``from_config`` (a wrong
       type, a bad value, no memory) becomes ValueError naming the class;
    6. the rebuilt parameters' names, shapes and dtypes against the saved
       headers, then the arrays are read and copied in.

    A load also removes the temporary files of saves that were killed
    mid-write in the file's directory (see :func:`save`).
    """
    return _load(path)[0]


def load_training(path: str | os.PathLike) -> tuple[Any, dict, dict]:
    """The model and the training part of a file written by ``save(..., training=...)`` (a
    checkpoint of ``fit``); ValueError naming the file if it has none.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint written by ``fit(..., checkpoint=)``.

    Returns
    -------
    model
        The model as :func:`load` gives it.
    state : dict
        The JSON values of the training state.
    arrays : dict of str to numpy.ndarray
        Its arrays.
    """
    model, state, arrays = _load(path, training=True)
    if state is None:
        raise ValueError(f"{_path(path)}: holds a model but no training state: not a checkpoint of fit")
    return model, state, arrays


def _load(path, training=False):
    """See :func:`load`."""
    p = _path(path)
    with open(p, "rb") as f:
        _remove_stale_temporaries(os.path.dirname(os.path.abspath(p)))
        magic = f.read(4)
        if magic != b"PK\x03\x04":
            what = "empty file" if not magic else f"starts with {magic!r}, not a zip archive"
            raise _not_ours(p, what)
        f.seek(0)
        try:
            zf = zipfile.ZipFile(f)
        except _READ_ERRORS as exc:
            raise _not_ours(p, f"corrupted archive ({type(exc).__name__}: {exc})") from exc
        with zf:
            members = _scan(zf, p)
            header = _read_header(zf, members, p)
            names = header["params"]
            stored = set(members) - {HEADER_KEY}
            missing = [n for n in names if n not in stored]
            if missing:
                raise _not_ours(p, f"parameter arrays missing: {missing}")
            part = header.get("training")
            if part is not None and not (isinstance(part, dict) and isinstance(part.get("arrays"), list)
                                         and all(isinstance(n, str) for n in part["arrays"])):
                raise _not_ours(p, "malformed training part in the header")
            listed = set(names) | {_TRAINING_PREFIX + n for n in (part or {}).get("arrays", [])}
            missing = [n for n in listed if n not in stored]
            if missing:
                raise _not_ours(p, f"training arrays missing: {sorted(missing)[:10]}")
            extra = sorted(stored - listed)
            if extra:
                raise _not_ours(p, f"arrays not listed in the header: {extra}")
            saved = {n: members[n] for n in names}

            cls_name = header["class"]
            cls = registered_class(cls_name, where=f"{p}: ")
            try:
                _check_sizes(header["config"], sum(m.size for m in saved.values()), p)
                try:
                    config = _decode(header["config"])
                except ValueError as exc:
                    raise ValueError(f"{p}: {exc}") from exc
                check_config(cls, config, where=f"{p}: ")
            except RecursionError:
                raise _not_ours(p, "config nested too deeply") from None
            try:
                # what the saved arrays hold bounds what one network may hold (with room for
                # fixed matrices, which a file does not store): nothing larger is allocated
                with parameter_budget(2 * sum(m.size for m in saved.values()) + 4096, f"{p}: "):
                    model = cls.from_config(config)
            except Exception as exc:
                raise ValueError(f"{p}: cannot build a {cls_name} from the saved config: "
                                 f"{type(exc).__name__}: {exc}") from exc
            live = _params_of(model)
            if set(live) != set(names):
                raise ValueError(
                    f"{p}: saved parameters {sorted(names)} do not match the parameters "
                    f"{sorted(live)} of the {cls_name} rebuilt from its config"
                )
            for n in names:
                a, s = live[n], saved[n]
                if a.shape != s.shape or a.dtype != s.dtype:
                    raise ValueError(
                        f"{p}: parameter {n!r} is saved with shape {s.shape} dtype {s.dtype}, "
                        f"the rebuilt {cls_name} expects shape {a.shape} dtype {a.dtype}"
                    )
            values = {n: _read_member(zf, n, saved[n], p) for n in names}
            state = arrays = None
            if training and part is not None:
                try:
                    state = _decode(part.get("state"), "training")
                except ValueError as exc:
                    raise ValueError(f"{p}: {exc}") from exc
                arrays = {n: _read_member(zf, _TRAINING_PREFIX + n, members[_TRAINING_PREFIX + n], p)
                          for n in part["arrays"]}
    for n in names:
        np.copyto(live[n], values[n])
    return model, state, arrays
