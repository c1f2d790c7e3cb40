"""The engine's own threads: how a pass splits a loop or a product, and runs the parts.

Where a recurrence's loop pays to split, a pass runs on threads of its own instead of
OpenBLAS's (``own_threads(count)``: ``count`` is the thread policy's, ``engine.backend``),
every product inside a one-thread BLAS call. The compiled loops take the part of the
work a thread does as arguments (rows n0 .. n1-1, the columns of thread k of P); this
module decides the parts and runs them, and watches whether a split loop's threads get
their cores (``contended``).
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from . import blas

__all__ = ["THREADS", "split", "run_parts", "loop_split", "run_loop", "own_threads", "inside_own_threads",
           "NO_SYNC", "usable_cpus", "contended"]


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
# the tests set them to force splits. How many threads a pass may use is the thread
# policy's (``engine.backend.pass_threads``); THREADS, None but in the tests, overrides it.
THREADS = None
MIN_WEIGHTS = 1 << 18
MIN_UNITS = 16       # a thread's share of a split loop's widest layer, at least
MIN_ROWS = 8         # a thread's share of a batch split by sequences, at least
MIN_ROW_WORK = 1 << 18
_workers = {}                # number of workers -> ThreadPoolExecutor
_pools_lock = threading.Lock()
_mode = threading.local()    # .taken: the pass's number of threads inside own_threads (in this thread)
_stat = threading.local()    # .clock: this thread's ``_WaitClock``
_loop_lock = threading.Lock()   # one split loop at a time: its threads must all be running


def _ranges(n, parts):
    """``n`` rows cut into ``parts`` ranges ``(lo, hi)`` of (nearly) equal size."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def split(n, work, min_rows, min_work):
    """The ranges ``[(lo, hi), ...]`` that ``n`` rows of ``work`` multiply-adds run as: one
    range a thread inside ``own_threads``; ``[(0, n)]`` outside it or where a split does not pay."""
    count = getattr(_mode, "taken", None)
    if count is None or work < min_work:
        return [(0, n)]
    parts = min(count, n // max(min_rows, 1))
    return _ranges(n, parts) if parts > 1 else [(0, n)]


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


def loop_split(stats, N, count):
    """How a loop over N sequences would be split over at most ``count`` threads: its calls
    ``[(n0, n1, k, P), ...]``, one a thread (rows n0 .. n1-1, thread k of P's columns).
    ``stats``: the component's ``(weights inside, widest layer, mixes units)`` (``Plan.loop_stats``)."""
    weights, widest, mixes = stats
    P = min(count, max(widest // max(MIN_UNITS, 1), 1))
    if P > 1 and not mixes and weights >= MIN_WEIGHTS:
        return [(0, N, k, P) for k in range(P)]                        # by units
    parts = min(count, N // max(MIN_ROWS, 1))
    if parts > 1 and N * weights >= MIN_ROW_WORK:                       # by sequences
        return [(lo, hi, 0, 1) for lo, hi in _ranges(N, parts)]
    return [(0, N, 0, 1)]


def run_loop(kernel, args, stats, N):
    """``kernel(*args, n0, n1, k, P, sync)``, a compiled time loop over N sequences, split
    over threads inside ``own_threads`` as ``loop_split`` says, else on the calling thread.
    A split loop reports how long its threads waited for a CPU (``_load``)."""
    count = getattr(_mode, "taken", None)
    parts = loop_split(stats, N, count) if count else [(0, N, 0, 1)]
    if len(parts) == 1:
        return kernel(*args, 0, N, 0, 1, NO_SYNC)
    ran = [(0.0, 0.0)] * len(parts)     # (seconds waiting for a CPU, wall seconds) of each thread's part
    start = time.perf_counter()

    def part(i, sync, n0, n1, k, P):
        clock = _clock()
        waited = clock.waited(since_last=i > 0)          # a worker: since its last part (woken for this one)
        kernel(*args, n0, n1, k, P, sync)
        wall = time.perf_counter() - start
        ran[i] = (min(clock.waited() - waited, wall), wall)   # (what the worker waited before counts once)
        clock.done()

    if parts[0][3] == 1:                                    # by sequences: the calls never meet
        run_parts(part, [(i, NO_SYNC) + p for i, p in enumerate(parts)])
    else:
        if not _loop_lock.acquire(blocking=False):          # by units: all P must run at once
            return kernel(*args, 0, N, 0, 1, NO_SYNC)
        try:
            sync = np.zeros(16 * (len(parts) + 1), dtype=np.int64)     # a slot a thread, then "called off"

            def call_off():
                sync[16 * len(parts)] = 1
            run_parts(part, [(i, sync) + p for i, p in enumerate(parts)], call_off)
        finally:
            _loop_lock.release()
    _load.ran(sum(w for w, _ in ran), sum(t for _, t in ran))


class _WaitClock:
    """How long this thread has been ready to run but waiting for a CPU, in seconds: Linux's
    /proc/self/task/TID/schedstat (kept open while the thread lives: ~0.6 us a read), else
    (no such file) its wall time less its CPU time, which counts waits for locks too."""

    def __init__(self):
        self.fd, self.last = -1, None
        try:
            self.fd = os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
            self._read()
        except (OSError, AttributeError, ValueError, IndexError):
            self.close()

    def _read(self):
        if self.fd < 0:
            return time.perf_counter() - time.thread_time()
        return int(os.pread(self.fd, 96, 0).split()[1]) * 1e-9

    def waited(self, since_last=False):
        """The wait so far; ``since_last``: as if the thread had not run since ``done`` (a
        pool thread, asleep in between, then waited only to be woken: for a CPU)."""
        now = self._read()
        return now if not since_last or self.last is None or self.fd < 0 else self.last

    def done(self):
        """The thread ends a part of a split loop."""
        self.last = self._read()

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    __del__ = close


def _clock():
    """This thread's ``_WaitClock``."""
    clock = getattr(_stat, "clock", None)
    if clock is None:
        clock = _stat.clock = _WaitClock()
    return clock


class _Load:
    """Whether other processes take the cores from the split loops, measured on them.

    A thread of a split loop is always ready to run (computing, or spinning at a barrier)
    until its part is done, so it waits for a CPU only when the system gives its core to
    someone else; a loop split by units then waits for it at the next barrier. On 2 cores
    with one busy process each thread waits about 1/3 of the time, and a split runs slower
    than one thread would (1.1-1.4x measured). Once the threads of split loops (over at
    least ``JUDGED`` seconds of their parts) waited more than ``WAITED`` of their time,
    passes stay on one thread (``contended``) for ``backoff`` seconds, doubled (up to
    ``LONGEST``) each time a split tried after it finds the cores still taken, back to
    ``SHORTEST`` once one finds them free. Costs some 5 us a split loop; under load, a
    split tried every few seconds."""

    WAITED = 0.1
    JUDGED = 0.02
    SHORTEST, LONGEST = 0.25, 8.0

    def __init__(self):
        self.waited = self.wall = 0.0
        self.until = 0.0                # time.monotonic() until which passes stay on one thread
        self.backoff = self.SHORTEST

    def ran(self, waited, wall):
        """The threads of a split loop waited ``waited`` seconds for a CPU in their ``wall``
        seconds (both summed over them)."""
        self.waited += waited
        self.wall += wall
        if self.wall < self.JUDGED:
            return
        taken = self.waited > self.WAITED * self.wall
        self.waited = self.wall = 0.0
        if taken:
            self.until = time.monotonic() + self.backoff
            self.backoff = min(2 * self.backoff, self.LONGEST)
        else:
            self.backoff = self.SHORTEST


_load = _Load()


def contended():
    """Whether passes should stay on one thread for now: the threads of a split loop were
    lately seen not to get their cores (``_Load``)."""
    return time.monotonic() < _load.until



# The sync slots of a loop that is not split (the compiled loop never touches them).
NO_SYNC = np.zeros(32, dtype=np.int64)


def inside_own_threads():
    """Whether this thread is inside ``own_threads`` (a pass splitting its work)."""
    return bool(getattr(_mode, "taken", None))


class own_threads:
    """``with own_threads(count):`` a pass splits its work over up to ``count`` of the
    engine's threads, every BLAS product inside on one thread (``one_blas_thread``:
    products that other threads of the program run meanwhile are single-threaded too).
    Does nothing for one thread or where OpenBLAS cannot be set to one thread (the BLAS
    then keeps its threads, and engine threads beside them would only fight them for the
    cores). ``count`` None: ``THREADS``, else the usable CPUs."""

    def __init__(self, count=None):
        if count is None:
            count = THREADS or usable_cpus()
        self.on = count > 1 and blas.CAN_SET_THREADS
        self.count = count

    def __enter__(self):
        if self.on:
            self.blas = blas.one_blas_thread().__enter__()
            self.outer = getattr(_mode, "taken", None)
            _mode.taken = self.count
        return self

    def __exit__(self, *exc):
        if self.on:
            _mode.taken = self.outer
            self.blas.__exit__(*exc)


def _after_fork_in_child():
    """A forked child has none of the parent's threads: forget its pools and locks."""
    global _loop_lock, _pools_lock, _load, _stat
    _workers.clear()
    _loop_lock, _pools_lock = threading.Lock(), threading.Lock()
    _load, _stat = _Load(), threading.local()       # (the parent's threads' schedstat files: another's)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)