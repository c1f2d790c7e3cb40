"""NumPy's own OpenBLAS: found once, its threads set per pass.

The compiled loops call the ``cblas_?gemm`` of the OpenBLAS that NumPy itself loaded
(found by its symbol here, bound to the compiled code in ``compiled``): one BLAS and one
thread pool in the process. Numba's own ``np.dot`` would call SciPy's OpenBLAS, whose
threads fight NumPy's over the cores. Nothing here needs numba.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading

import numpy as np

__all__ = ["BLAS", "USE_BLAS", "SGEMM", "DGEMM", "CAN_SET_THREADS", "blas_threads_local", "blas_threads",
           "blas_threads_at_most", "one_blas_thread", "pooled_on_one_thread"]


def find_numpy_blas():
    """``(library, sgemm address, dgemm address)``: ``cblas_?gemm`` (64-bit ints) in NumPy's own
    OpenBLAS, or None."""
    root = os.path.dirname(np.__file__)
    dirs = [os.path.join(root, os.pardir, "numpy.libs"), os.path.join(root, ".dylibs"), root]
    names = [("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_"), ("cblas_sgemm64_", "cblas_dgemm64_")]
    for folder in dirs:
        for path in sorted(glob.glob(os.path.join(folder, "*openblas*"))):
            try:
                lib = ctypes.CDLL(path)       # already loaded by NumPy: the same handle
            except OSError:
                continue
            for s, d in names:
                fs, fd = getattr(lib, s, None), getattr(lib, d, None)
                if fs is not None and fd is not None:
                    return lib, ctypes.cast(fs, ctypes.c_void_p).value, ctypes.cast(fd, ctypes.c_void_p).value
    return None


_found = find_numpy_blas()
BLAS = _found is not None
# The addresses of cblas_sgemm / cblas_dgemm (64-bit ints), None without NumPy's OpenBLAS.
SGEMM, DGEMM = (_found[1], _found[2]) if BLAS else (None, None)
_set_threads_local = getattr(_found[0], "openblas_set_num_threads_local", None) if BLAS else None  # >= 0.3.27
if _set_threads_local is not None:
    _set_threads_local.argtypes, _set_threads_local.restype = [ctypes.c_int], ctypes.c_int
CAN_SET_THREADS = _set_threads_local is not None


def _getter(lib, names):
    """The first of ``names`` in ``lib``, as a ctypes function of no argument returning an int, or None."""
    for name in names:
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            fn.argtypes, fn.restype = [], ctypes.c_int
            return fn
    return None


# What OpenBLAS runs a product on now: threadpoolctl's limits and the environment of a
# joblib worker (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS) show here (~0.3 us a read).
_get_threads = _getter(_found[0] if BLAS else None, ("scipy_openblas_get_num_threads64_",
                                                     "openblas_get_num_threads64_", "openblas_get_num_threads"))

# Read by the engine at every call: False forces the plain loops (the tests use it).
# With BLAS, every product goes to it: measured here, OpenBLAS beats a compiled loop even
# for a (1, 32) @ (32, 32) product (87 ns against 150 ns), more so as sizes grow.
USE_BLAS = BLAS


def blas_threads_local(n):
    """Set the BLAS threads of the next products to ``n``; returns the old number (or None
    where OpenBLAS cannot: then nothing changes). Despite its name, NumPy's OpenBLAS keeps
    this setting for the whole process, not per thread."""
    return None if _set_threads_local is None else _set_threads_local(n)


def blas_threads():
    """The threads BLAS products run on, as the program (threadpoolctl, the environment) set
    them: while the engine holds BLAS to fewer (``blas_threads_at_most``), the number it will
    go back to. None where NumPy's OpenBLAS was not found or cannot tell."""
    if _get_threads is None:
        return None
    cls = blas_threads_at_most
    with cls._lock:
        return cls._saved if cls._holders else _get_threads()


def _lower_to(n):
    """Set BLAS to ``n`` threads if it runs on more; returns the setting before (None where
    OpenBLAS cannot be set)."""
    if _get_threads is None:
        old = blas_threads_local(n)
        if old is not None and old < n:
            blas_threads_local(old)
        return old
    old = _get_threads()
    if old > n:
        blas_threads_local(n)
    return old


class blas_threads_at_most:
    """``with blas_threads_at_most(n):`` BLAS products inside run on at most ``n`` threads.
    OpenBLAS keeps its setting process-wide, so every holder counts: the first one in saves
    the setting, each lowers it to its own ``n`` if that is fewer, and the last one out
    restores it, whatever the threads that hold it meanwhile. Does nothing where OpenBLAS
    cannot be set (``CAN_SET_THREADS``)."""

    _lock = threading.Lock()
    _holders = 0        # over all threads
    _saved = None       # the setting before the first of them

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        cls = blas_threads_at_most
        with cls._lock:
            old = _lower_to(self.n)
            if cls._holders == 0:
                cls._saved = old
            cls._holders += 1
        return self

    def __exit__(self, *exc):
        cls = blas_threads_at_most
        with cls._lock:
            cls._holders -= 1
            if cls._holders == 0 and cls._saved:
                blas_threads_local(cls._saved)


def one_blas_thread():
    """``with one_blas_thread():`` BLAS products inside run on one thread (``blas_threads_at_most(1)``)."""
    return blas_threads_at_most(1)



def pooled_on_one_thread(entries, rows):
    """Whether a pooled product of a result of ``entries`` over ``rows`` rows runs faster on one
    BLAS thread: OpenBLAS splits even a 32 x 32 result over its threads, slower than one
    ((32 x 6400) @ (6400 x 32) 337 against 179 us)."""
    return entries <= 1024 and rows >= 1024


def _after_fork_in_child():
    """A forked child has none of the parent's threads: forget who held BLAS's setting."""
    cls = blas_threads_at_most
    cls._lock, cls._holders, cls._saved = threading.Lock(), 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
