"""The engine's own threads: how a pass splits a loop or a product, and runs the parts.

Where a recurrence's loop pays to split, a pass runs on up to ``THREADS`` threads of its
own instead of OpenBLAS's (``own_threads``), every product inside a one-thread BLAS call.
The compiled loops take the part of the work a thread does as arguments (rows n0 .. n1-1,
the columns of thread k of P); this module decides the parts and runs them.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from . import blas

__all__ = ["THREADS", "split", "run_parts", "loop_split", "run_loop", "own_threads", "inside_own_threads",
           "NO_SYNC", "usable_cpus"]


def usable_cpus():
    """The CPUs this process may use: its affinity, capped by a cgroup (v2) CPU quota, as
    a container limited to 2 CPUs on a larger host sees it."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cpus


# When a loop splits (``loop_split``). A wide recurrence (its weights inside have MIN_WEIGHTS
# entries or more: a 512 x 512 matrix) is split by units: each thread computes its columns
# of every layer of the component with its own columns of W (which stay in its core's
# cache), the threads meeting at a barrier after each layer of each step
# (``compiled._barrier``, ~0.2 us). A narrower one over a batch is split by sequences,
# which never meet (from MIN_ROW_WORK multiply-adds a step, MIN_ROWS sequences a thread).
# Narrower splits do not pay: the barriers, and the halves of each step's state that cross
# between the cores, cost what the split saves. Other networks run as NumPy does, on
# OpenBLAS's threads (after a multi-threaded call its idle threads spin for a while and
# slow anything on ours by up to 50%, so a pass uses one kind of threads or the other).
# Where OpenBLAS cannot be set to one thread (older than 0.3.27, or another BLAS), nothing
# is split. The measurements behind these numbers are in the README ("Threads"). Settable;
# the tests set them to force splits.
THREADS = usable_cpus()
MIN_WEIGHTS = 1 << 18
MIN_UNITS = 16       # a thread's share of a split loop's widest layer, at least
MIN_ROWS = 8         # a thread's share of a batch split by sequences, at least
MIN_ROW_WORK = 1 << 18
_workers = {}                # number of workers -> ThreadPoolExecutor
_pools_lock = threading.Lock()
_mode = threading.local()    # .taken: True inside own_threads (in this thread)
_loop_lock = threading.Lock()   # one split loop at a time: its threads must all be running


def _ranges(n, parts):
    """``n`` rows cut into ``parts`` ranges ``(lo, hi)`` of (nearly) equal size."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def split(n, work, min_rows, min_work):
    """The ranges ``[(lo, hi), ...]`` that ``n`` rows of ``work`` multiply-adds run as: one
    range a thread inside ``own_threads``; ``[(0, n)]`` outside it or where a split does not pay."""
    parts = min(THREADS, n // max(min_rows, 1))
    if getattr(_mode, "taken", None) is None or parts < 2 or work < min_work:
        return [(0, n)]
    return _ranges(n, parts)


def _pool(workers):
    """A thread pool of ``workers`` threads (made once for each number asked for)."""
    with _pools_lock:
        pool = _workers.get(workers)
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor
            pool = _workers[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unrolled")
        return pool


def run_parts(fn, parts, on_failure=None):
    """``fn(*part)`` for every part of ``parts`` at once: the last in worker threads (all
    at once: a split loop's threads wait for each other), the first in the calling thread.
    ``on_failure()`` runs as soon as a part fails (or cannot start), before waiting for the others."""
    if len(parts) == 1:
        return fn(*parts[0])

    def guarded(*part):
        try:
            return fn(*part)
        except BaseException:
            if on_failure is not None:
                on_failure()
            raise

    futures = []
    try:
        pool = _pool(len(parts) - 1)
        for part in parts[1:]:
            futures.append(pool.submit(guarded, *part))
        guarded(*parts[0])
    except BaseException:
        if on_failure is not None:
            on_failure()
        raise
    finally:
        for f in futures:
            f.result()


def loop_split(stats, N):
    """How a loop over N sequences would be split: its calls ``[(n0, n1, k, P), ...]``, one
    a thread (rows n0 .. n1-1, thread k of P's columns). ``stats``: the component's
    ``(weights inside, widest layer, mixes units)`` (``Plan.loop_stats``)."""
    weights, widest, mixes = stats
    P = min(THREADS, max(widest // max(MIN_UNITS, 1), 1))
    if P > 1 and not mixes and weights >= MIN_WEIGHTS:
        return [(0, N, k, P) for k in range(P)]                        # by units
    parts = min(THREADS, N // max(MIN_ROWS, 1))
    if parts > 1 and N * weights >= MIN_ROW_WORK:                       # by sequences
        return [(lo, hi, 0, 1) for lo, hi in _ranges(N, parts)]
    return [(0, N, 0, 1)]


def run_loop(kernel, args, stats, N):
    """``kernel(*args, n0, n1, k, P, sync)``, a compiled time loop over N sequences, split
    over threads inside ``own_threads`` as ``loop_split`` says, else on the calling thread."""
    parts = loop_split(stats, N) if getattr(_mode, "taken", None) else [(0, N, 0, 1)]
    if len(parts) == 1:
        return kernel(*args, 0, N, 0, 1, NO_SYNC)
    if parts[0][3] == 1:                                    # by sequences: the calls never meet
        return run_parts(lambda n0, n1, k, P: kernel(*args, n0, n1, k, P, NO_SYNC), parts)
    if not _loop_lock.acquire(blocking=False):              # by units: all P must run at once
        return kernel(*args, 0, N, 0, 1, NO_SYNC)
    try:
        sync = np.zeros(16 * (len(parts) + 1), dtype=np.int64)     # a slot a thread, then "called off"

        def call_off():
            sync[16 * len(parts)] = 1
        run_parts(lambda n0, n1, k, P: kernel(*args, n0, n1, k, P, sync), parts, call_off)
    finally:
        _loop_lock.release()




# The sync slots of a loop that is not split (the compiled loop never touches them).
NO_SYNC = np.zeros(32, dtype=np.int64)


def inside_own_threads():
    """Whether this thread is inside ``own_threads`` (a pass splitting its work)."""
    return bool(getattr(_mode, "taken", None))


class own_threads:
    """``with own_threads():`` a pass splits its work over the engine's threads, every BLAS
    product inside on one thread (``one_blas_thread``: products that other threads of the
    program run meanwhile are single-threaded too). Does nothing with one usable CPU or
    where OpenBLAS cannot be set to one thread (the BLAS then keeps its threads, and engine
    threads beside them would only fight them for the cores)."""

    def __init__(self):
        self.on = THREADS > 1 and blas.CAN_SET_THREADS

    def __enter__(self):
        if self.on:
            self.blas = blas.one_blas_thread().__enter__()
            self.outer = getattr(_mode, "taken", None)
            _mode.taken = True
        return self

    def __exit__(self, *exc):
        if self.on:
            _mode.taken = self.outer
            self.blas.__exit__(*exc)


def _after_fork_in_child():
    """A forked child has none of the parent's threads: forget its pools and locks."""
    global _loop_lock, _pools_lock
    _workers.clear()
    _loop_lock, _pools_lock = threading.Lock(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)