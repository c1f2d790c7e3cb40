"""Which code runs a pass: the compiled kernels (``"fast"``) or the NumPy reference (``"numpy"``).

``"fast"`` needs numba, and NumPy's own OpenBLAS for its products (``kernels.blas``);
``"numpy"`` runs the readable loops of ``engine.reference``. The default, ``"auto"``, is
``"fast"`` where both are there, else ``"numpy"``; ``UNROLLED_BACKEND`` sets it at import,
:func:`set_default_backend` later, and a network's own ``backend`` overrides it.

The compiled module (``kernels.compiled``) is imported only when a fast pass first asks
for it: importing numba costs some 0.3 s that a NumPy-only user never pays.

**The thread policy.** A pass runs on at most :func:`get_num_threads` threads, the
engine's own and BLAS's together: where a loop splits, that many engine threads with
BLAS on one thread each (``kernels.threads.own_threads``); elsewhere BLAS on at most that
many (``kernels.blas.blas_threads_at_most``, only where it runs on more). The number is
the one given to :func:`set_num_threads` (or :class:`num_threads`); by default the
smallest of the usable CPUs (affinity, cgroup quota), the threads NumPy's OpenBLAS is
held to now (``threadpoolctl.threadpool_limits``, ``OPENBLAS_NUM_THREADS`` /
``OMP_NUM_THREADS`` when it started: so 1 in a joblib/loky worker of ``n_jobs`` = the
CPUs), and ``UNROLLED_NUM_THREADS``, else ``OMP_NUM_THREADS`` (read at import). By
default, too, a pass stays on one thread for a while when the threads of a split loop
are seen not to get their cores (``kernels.threads.contended``: another process busy).
"""

from __future__ import annotations

import functools
import importlib.util
import numbers
import os
import threading
import warnings

from .kernels import blas, threads

__all__ = ["BACKENDS", "check_backend", "set_default_backend", "default_backend", "numba_installed",
           "compiled_kernels", "kernels_for", "set_num_threads", "get_num_threads", "num_threads", "pass_threads",
           "linear_algebra_threads", "SMALL_SYSTEM"]

BACKENDS = ("fast", "numpy")


@functools.lru_cache(maxsize=None)
def numba_installed():
    """Whether numba can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):      # e.g. sys.modules["numba"] = None: import blocked
        return False


def check_backend(name, auto=False):
    """``name`` if it is a backend (or ``"auto"``, with ``auto``); ValueError otherwise, and
    for ``"fast"`` without numba."""
    if name not in BACKENDS + (("auto",) if auto else ()):
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "fast" and not numba_installed():
        raise ValueError("backend 'fast' compiles the time loops with numba, which is not installed"
                         "\n- help: pip install numba, or use backend='numpy' (the same results, slower)")
    return name


_default = check_backend(os.environ.get("UNROLLED_BACKEND") or "auto", auto=True)
_compiled = None        # the imported ``kernels.compiled``, once a fast pass asked for it


def default_backend() -> str:
    """The backend of networks without their own: ``"auto"``, ``"fast"`` or ``"numpy"``."""
    return _default


def set_default_backend(name: str) -> str:
    """Set how networks without their own ``backend`` run their time loops; returns the old one.

    ``"fast"``: each recurrence's time loop (forward and BPTT) is one compiled function
    (numba; compiled once and cached on disk). ``"numpy"``: the readable step-by-step
    NumPy loops, the reference the fast one is tested against. ``"auto"`` (the default):
    ``"fast"`` when numba is installed and NumPy's OpenBLAS could be bound (see
    ``unrolled.engine.kernels``), else ``"numpy"``. The environment variable
    ``UNROLLED_BACKEND`` sets it at import.

    Parameters
    ----------
    name : {"auto", "fast", "numpy"}
        The backend.

    Returns
    -------
    str
        The backend before.
    """
    global _default
    old, _default = _default, check_backend(name, auto=True)
    return old


def compiled_kernels():
    """The compiled module, imported on first use; None (the default falls back to
    ``"numpy"``, with a warning) where numba is installed but fails to import."""
    global _compiled, _default
    if _compiled is None:
        try:
            from .kernels import compiled
        except Exception as exc:  # numba installed but unusable (e.g. built for another NumPy)
            warnings.warn(f"numba failed to import ({exc}); unrolled runs its NumPy loops "
                          f"(backend='numpy')", RuntimeWarning, stacklevel=3)
            _default = "numpy"
            return None
        _compiled = compiled
    return _compiled


def kernels_for(backend):
    """The compiled module that a pass with ``backend`` (a network's own, or None: the
    default) runs on, or None where it runs the NumPy reference."""
    name = backend or _default
    if name == "numpy" or (name == "auto" and not numba_installed()):
        return None
    kernels = compiled_kernels()
    if name == "auto" and kernels is not None and not blas.BLAS:
        return None
    return kernels


# ------------------------------------------------------------------ threads
def _check_threads(n, what="set_num_threads"):
    """``n`` as a number of threads (an integer >= 1); TypeError or ValueError naming ``what``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{what} takes a number of threads, an integer >= 1 (or None: the default), "
                        f"got {n!r}")
    if n < 1:
        raise ValueError(f"{what} takes a number of threads, an integer >= 1 (or None: the default), got {n}")
    return int(n)


def _environment_threads(environ):
    """The threads the environment asks for: ``UNROLLED_NUM_THREADS`` (ValueError if it is no
    integer >= 1), else the first number of ``OMP_NUM_THREADS`` (ignored if it is none, as
    OpenMP does); None when neither is set."""
    value = environ.get("UNROLLED_NUM_THREADS", "").strip()
    if value:
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            raise ValueError(f"UNROLLED_NUM_THREADS must be a number of threads, an integer >= 1, got {value!r}")
        return number
    value = environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()       # "4,2": 4 at the outer level
    return int(value) if value.isdigit() and int(value) > 0 else None


def _fixed_limit():
    """What of the default does not change while the process runs: the usable CPUs capped by
    the environment's number (read at import, and again in a forked child)."""
    cpus, asked = threads.usable_cpus(), _environment_threads(os.environ)
    return cpus if asked is None else min(cpus, asked)


_fixed = _fixed_limit()
_explicit = None              # set_num_threads's number, None: the default
_explicit_lock = threading.Lock()


def get_num_threads() -> int:
    """The most threads a pass runs on, the engine's own and BLAS's together.

    The number given to :func:`set_num_threads`, else the default: the smallest of the CPUs
    this process may use (its affinity, a container's quota), the threads NumPy's OpenBLAS
    is limited to now (``threadpoolctl.threadpool_limits(n)``; ``OPENBLAS_NUM_THREADS`` or
    ``OMP_NUM_THREADS`` when the process started, which joblib sets to 1 in its loky
    workers on a machine of ``n_jobs`` CPUs), and ``UNROLLED_NUM_THREADS``, else
    ``OMP_NUM_THREADS``. With the default, a pass runs on one thread for a while whenever
    the threads of a split loop are seen not to get their cores (another process busy).
    """
    return _limit(blas.blas_threads())


def _limit(held):
    """``get_num_threads()``, given ``held``: BLAS's threads now (None: unknown)."""
    if _explicit is not None:
        return _explicit
    n = _fixed
    return n if held is None or held >= n else max(held, 1)


def set_num_threads(n: int | None) -> int | None:
    """Run every pass on at most ``n`` threads, the engine's own and BLAS's together
    (``None``: back to the default, see :func:`get_num_threads`). Process-wide; returns the
    previous setting (None: the default). Unlike the default, ``n`` is kept under load
    (a run then takes the same steps whatever else the machine does) and may exceed the
    usable CPUs. Products outside the engine's passes keep BLAS's own setting.

    Parameters
    ----------
    n : int or None
        The most threads (>= 1), or None for the default.

    Returns
    -------
    int or None
        The setting before (None: the default).
    """
    global _explicit
    n = None if n is None else _check_threads(n)
    with _explicit_lock:
        old, _explicit = _explicit, n
    return old


class num_threads:
    """``with unrolled.num_threads(n):`` passes inside run on at most ``n`` threads (see
    :func:`set_num_threads`); the setting before comes back on exit, an error or not.
    ``n`` is checked when the object is made. Process-wide, like ``set_num_threads``:
    other threads' passes meanwhile run with ``n`` too.

    Parameters
    ----------
    n : int or None
        The most threads inside the block (>= 1), or None for the default.
    """

    def __init__(self, n: int | None) -> None:
        self.n = None if n is None else _check_threads(n, "num_threads")

    def __enter__(self) -> num_threads:
        self.old = set_num_threads(self.n)
        return self

    def __exit__(self, *exc) -> None:
        set_num_threads(self.old)


def pass_threads():
    """``(count, held)``: the threads a pass starting now may run on, and BLAS's threads now
    (None: unknown). ``count`` is ``kernels.threads.THREADS`` where the tests set it, else
    :func:`get_num_threads`, by default lowered to one while the cores are taken
    (``threads.contended``)."""
    held = blas.blas_threads()
    if threads.THREADS is not None:
        return threads.THREADS, held
    n = _limit(held)
    return (1 if n > 1 and _explicit is None and threads.contended() else n), held


# Second-order training's own linear algebra of at most this many unknowns runs on one
# BLAS thread: a (220 x 129) J^T J and the damped (129 x 129) solve took the same time on
# one thread as on two on an idle machine, and a thread spinning for a busy core made an
# LM iteration 20 times slower.
SMALL_SYSTEM = 256


def linear_algebra_threads(unknowns):
    """``with linear_algebra_threads(P):`` the BLAS and LAPACK calls inside (J^T J, the
    damped solve of Levenberg-Marquardt) run on at most the threads a pass starting now
    may (:func:`pass_threads`), and on one for ``P <= SMALL_SYSTEM`` unknowns."""
    count, _ = pass_threads()
    return blas.blas_threads_at_most(1 if unknowns <= SMALL_SYSTEM else count)


def _after_fork_in_child():
    """A forked child may have other CPUs (its affinity): read them again."""
    global _fixed
    _fixed = _fixed_limit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
