"""The thread policy: ``set_num_threads`` / ``get_num_threads`` / ``num_threads``, the default
(threadpoolctl's limits, joblib's workers, the environment, the usable CPUs), and passes
that stay on one thread while other processes take the cores."""

import os
import threading
import time

import numpy as np
import pytest

import unrolled
from test_fast_path import loop_threads, pass_and_gradients, run_python
from unrolled.divergences import SquaredError
from unrolled.engine import backend
from unrolled.engine import fast as fast_path
from unrolled.engine.kernels import blas as blas_lib
from unrolled.engine.kernels import threads as thread_lib

kernels = pytest.importorskip("unrolled.engine.kernels.compiled")
can_split = blas_lib.BLAS and blas_lib.CAN_SET_THREADS and blas_lib.blas_threads() is not None
needs_split = pytest.mark.skipif(not can_split, reason="OpenBLAS cannot be read and set here: nothing is split")


@pytest.fixture(autouse=True)
def _default_policy(monkeypatch):
    """Every test starts from the default policy, no contention seen, and ends there."""
    monkeypatch.setattr(thread_lib, "THREADS", None)
    monkeypatch.setattr(thread_lib, "_load", thread_lib._Load())
    old = unrolled.set_num_threads(None)
    yield
    unrolled.set_num_threads(old)


def force_splits(monkeypatch):
    """Every loop and product pays to split (the thresholds set to nothing), by units."""
    for name, value in (("MIN_WEIGHTS", 0), ("MIN_UNITS", 1), ("MIN_ROWS", 1), ("MIN_ROW_WORK", 0)):
        monkeypatch.setattr(thread_lib, name, value)
    monkeypatch.setattr(fast_path, "PRODUCT_WORK", 0)
    monkeypatch.setattr(fast_path, "PRODUCT_ROWS", 1)


def float64_rnn():
    model = unrolled.RNN(3, 2, hidden=(40,), dtype=np.float64, seed=1)
    rng = np.random.default_rng(0)
    return model, rng.normal(size=(6, 9, 3)), rng.normal(size=(6, 9, 2))


# ------------------------------------------------------------- set, get, context
def test_set_and_get_and_back_to_the_default():
    default = unrolled.get_num_threads()
    assert default == backend.get_num_threads() >= 1
    assert unrolled.set_num_threads(1) is None                  # the default was in force
    assert unrolled.get_num_threads() == 1
    assert unrolled.set_num_threads(3) == 1                     # returns the previous setting
    assert unrolled.get_num_threads() == 3                      # explicit: may exceed the CPUs
    assert unrolled.set_num_threads(None) == 3
    assert unrolled.get_num_threads() == default


def test_the_context_manager_restores_the_setting_even_on_an_error():
    unrolled.set_num_threads(2)
    with unrolled.num_threads(1) as ctx:
        assert unrolled.get_num_threads() == 1 and ctx.n == 1
        with unrolled.num_threads(3):
            assert unrolled.get_num_threads() == 3
        assert unrolled.get_num_threads() == 1
    assert unrolled.get_num_threads() == 2
    with pytest.raises(RuntimeError):
        with unrolled.num_threads(1):
            raise RuntimeError("inside")
    assert unrolled.get_num_threads() == 2
    with unrolled.num_threads(None):                            # the default, for a while
        assert unrolled.get_num_threads() <= thread_lib.usable_cpus()
    assert unrolled.get_num_threads() == 2


def test_the_setting_is_the_whole_process_s():
    seen = []
    with unrolled.num_threads(1):
        t = threading.Thread(target=lambda: seen.append(unrolled.get_num_threads()))
        t.start()
        t.join()
    assert seen == [1]


@pytest.mark.parametrize("bad,error", [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError),
                                       (True, TypeError), (np.float64(2.0), TypeError)])
def test_bad_numbers_of_threads_are_refused_and_change_nothing(bad, error):
    unrolled.set_num_threads(2)
    with pytest.raises(error, match="number of threads, an integer >= 1"):
        unrolled.set_num_threads(bad)
    with pytest.raises(error, match="num_threads takes a number of threads"):
        unrolled.num_threads(bad)
    assert unrolled.get_num_threads() == 2
    assert unrolled.set_num_threads(np.int64(1)) == 2 and unrolled.get_num_threads() == 1


# --------------------------------------------------------------------- the default
@pytest.mark.parametrize("environ,expected", [
    ({}, None), ({"OMP_NUM_THREADS": "3"}, 3), ({"OMP_NUM_THREADS": "4,2"}, 4),
    ({"OMP_NUM_THREADS": "many"}, None), ({"OMP_NUM_THREADS": "0"}, None), ({"UNROLLED_NUM_THREADS": ""}, None),
    ({"UNROLLED_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}, 2), ({"UNROLLED_NUM_THREADS": " 5 "}, 5)])
def test_the_environment_s_number(environ, expected):
    assert backend._environment_threads(environ) == expected


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_unrolled_num_threads_is_refused_naming_the_variable(value):
    with pytest.raises(ValueError, match=f"UNROLLED_NUM_THREADS must be .* integer >= 1, got '{value}'"):
        backend._environment_threads({"UNROLLED_NUM_THREADS": value})


THREAD_VARIABLES = ("UNROLLED_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS")


def subprocess_threads(**env):
    """``unrolled.get_num_threads()`` and the usable CPUs in a fresh process whose environment
    holds, of the thread variables, ``env`` only (another test may have left some set here)."""
    code = "import unrolled\nfrom unrolled.engine.kernels import threads\n" \
           "print(unrolled.get_num_threads(), threads.usable_cpus())\n"
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    for k in THREAD_VARIABLES:
        os.environ.pop(k, None)
    os.environ.update(env)
    try:
        return tuple(int(v) for v in run_python(code).split())
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_environment_limits_the_default_at_import():
    assert subprocess_threads(UNROLLED_NUM_THREADS="1") == (1, thread_lib.usable_cpus())
    n, cpus = subprocess_threads(OMP_NUM_THREADS="1", UNROLLED_NUM_THREADS="")
    assert (n, cpus) == (1, thread_lib.usable_cpus())
    n, cpus = subprocess_threads(UNROLLED_NUM_THREADS="64")        # never more than the usable CPUs
    assert n == cpus == thread_lib.usable_cpus()
    assert subprocess_threads(OPENBLAS_NUM_THREADS="1") == (1, cpus)     # BLAS started on one: so are we


def test_the_default_is_at_most_the_usable_cpus(monkeypatch):
    assert 1 <= unrolled.get_num_threads() <= thread_lib.usable_cpus()
    monkeypatch.setattr(backend, "_fixed", 1)                     # as with an affinity of one CPU
    assert unrolled.get_num_threads() == 1


@pytest.mark.skipif(blas_lib.blas_threads() is None, reason="NumPy's OpenBLAS cannot tell its threads here")
def test_threadpoolctl_limits_in_force_limit_the_default(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(backend, "_fixed", 2)                     # as on a 2-CPU machine, whatever this one
    before = blas_lib.blas_threads_local(2)
    try:
        assert unrolled.get_num_threads() == 2
        with threadpoolctl.threadpool_limits(1):
            assert unrolled.get_num_threads() == 1
            with unrolled.num_threads(2):                         # an explicit number wins
                assert unrolled.get_num_threads() == 2
        assert unrolled.get_num_threads() == 2
        with threadpoolctl.threadpool_limits(1, user_api="blas"):
            assert unrolled.get_num_threads() == 1
    finally:
        blas_lib.blas_threads_local(before)


def test_a_joblib_loky_worker_sees_the_threads_joblib_gives_it():
    joblib = pytest.importorskip("joblib")
    got = joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(unrolled.get_num_threads)() for _ in range(4))
    # loky sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS to cpu_count // n_jobs in its workers
    expected = max(min(joblib.cpu_count() // 2, thread_lib.usable_cpus()), 1)
    assert got == [expected] * 4
    if joblib.cpu_count() <= 3:
        assert got == [1, 1, 1, 1]


# ---------------------------------------------------------------- passes obey it
@needs_split
def test_one_and_two_threads_give_the_same_pass_to_1e_12(monkeypatch):
    force_splits(monkeypatch)
    seen = loop_threads(monkeypatch)
    model, x, d = float64_rnn()
    with unrolled.num_threads(1):
        one = pass_and_gradients(model.network, x, d, SquaredError())
    assert seen == [1, 1]                                          # a whole-pass program: one thread
    seen.clear()
    with unrolled.num_threads(2):
        two = pass_and_gradients(model.network, x, d, SquaredError())
    assert seen == [2, 2, 2, 2]                                    # both loops, both threads
    y1, y2 = one[0], two[0]
    assert y1.dtype == np.float64 and np.abs(y1).max() > 0.1
    np.testing.assert_allclose(y2, y1, rtol=1e-12, atol=1e-12)
    assert set(one[2]) == set(two[2]) == set(model.network.params)
    for key in one[2]:
        np.testing.assert_allclose(two[2][key], one[2][key], rtol=1e-12, atol=1e-12, err_msg=key)
    for key in one[3]:
        np.testing.assert_allclose(two[3][key], one[3][key], rtol=1e-12, atol=1e-12, err_msg=key)


@needs_split
def test_blas_and_the_engine_together_stay_within_the_number(monkeypatch):
    force_splits(monkeypatch)
    inside = []
    for name in ("forward_loop", "run_program"):
        kernel = getattr(kernels, name)

        def record(*args, kernel=kernel, name=name):
            P = args[-2] if name == "forward_loop" else 1
            inside.append((P, blas_lib._get_threads()))
            return kernel(*args)
        monkeypatch.setattr(kernels, name, record)
    model, x, _ = float64_rnn()
    before = blas_lib.blas_threads_local(2)
    try:
        with unrolled.num_threads(1):
            model.network.forward(x)
            assert inside == [(1, 1)]                  # one thread, BLAS held to one during the pass
            assert blas_lib._get_threads() == 2        # and given back after it
        inside.clear()
        with unrolled.num_threads(2):
            model.network.forward(x)
        assert inside == [(2, 1), (2, 1)]              # two engine threads, BLAS on one each
        assert blas_lib._get_threads() == 2
    finally:
        blas_lib.blas_threads_local(before)


@needs_split
@pytest.mark.parametrize("small_system, expected", [(256, 1), (0, 2)])
def test_levenberg_marquardt_solves_a_small_system_on_one_blas_thread(monkeypatch, small_system, expected):
    """LM's own linear algebra (J^T J, the damped solve): one BLAS thread up to
    SMALL_SYSTEM unknowns, else the pass's threads; the setting is given back after fit."""
    monkeypatch.setattr(backend, "SMALL_SYSTEM", small_system)
    seen = []
    solve = np.linalg.solve

    def record(a, b):
        seen.append(blas_lib._get_threads())
        return solve(a, b)
    monkeypatch.setattr(np.linalg, "solve", record)
    model = unrolled.NARX(1, 1, input_delays=1, output_delays=2, hidden=(3,), dtype=np.float64, seed=0)
    x = np.random.default_rng(0).normal(size=(2, 30, 1))
    before = blas_lib.blas_threads_local(2)
    try:
        with unrolled.num_threads(2):
            unrolled.fit(model, x, np.tanh(x), divergence=SquaredError(), optimizer=unrolled.optim.LevenbergMarquardt(),
                         epochs=3, progress=False)
        assert seen and set(seen) == {expected}
        assert blas_lib._get_threads() == 2
    finally:
        blas_lib.blas_threads_local(before)


# -------------------------------------------------------------- under contention
def test_a_split_loop_whose_threads_lose_their_cores_keeps_passes_on_one_thread(monkeypatch):
    monkeypatch.setattr(backend, "_fixed", 2)
    monkeypatch.setattr(blas_lib, "blas_threads", lambda: 2)
    load = thread_lib._load
    assert backend.pass_threads()[0] == 2 and not thread_lib.contended()
    load.ran(0.004, 0.005)                                    # too little time to judge
    assert not thread_lib.contended() and load.wall == 0.005
    load.ran(0.006, 0.025)                                    # waited 10 of 30 ms for a CPU: taken
    assert thread_lib.contended() and backend.pass_threads()[0] == 1
    assert load.until - time.monotonic() == pytest.approx(0.25, abs=0.05) and load.backoff == 0.5
    with unrolled.num_threads(2):                             # an explicit number is kept under load
        assert backend.pass_threads()[0] == 2
    assert unrolled.get_num_threads() == 2                    # the policy's number is unchanged
    load.ran(0.01, 0.03)                                      # still taken: off for longer
    assert load.backoff == 1.0 and load.until - time.monotonic() == pytest.approx(0.5, abs=0.05)
    for _ in range(10):
        load.ran(0.01, 0.03)
    assert load.backoff == load.LONGEST == 8.0
    load.until = 0.0                                          # the backoff is over: a split is tried
    assert backend.pass_threads()[0] == 2
    load.ran(0.001, 0.03)                                     # and its threads got their cores
    assert load.backoff == load.SHORTEST and not thread_lib.contended()


def test_a_thread_s_wait_for_a_cpu_is_read_from_the_system():
    clock = thread_lib._clock()
    assert thread_lib._clock() is clock                       # one a thread
    waited = clock.waited()
    assert 0 <= waited < time.perf_counter()
    clock.done()
    assert clock.waited(since_last=True) == clock.last <= clock.waited()
    seen = []
    t = threading.Thread(target=lambda: seen.append((thread_lib._clock() is not clock, thread_lib._clock().waited())))
    t.start()
    t.join()
    assert len(seen) == 1 and seen[0][0] and seen[0][1] >= 0
    if os.path.exists(f"/proc/self/task/{threading.get_native_id()}/schedstat"):   # Linux: the run queue's count
        assert clock.fd >= 0


@needs_split
def test_a_pass_under_contention_runs_on_one_thread_and_measures_the_splits(monkeypatch):
    force_splits(monkeypatch)
    monkeypatch.setattr(backend, "_fixed", 2)
    seen = loop_threads(monkeypatch)
    model, x, d = float64_rnn()
    thread_lib._load.until = time.monotonic() + 60
    one = pass_and_gradients(model.network, x, d, SquaredError())
    assert seen == [1, 1]
    seen.clear()
    thread_lib._load.until = 0.0
    judged = []
    monkeypatch.setattr(thread_lib._load, "ran", lambda cpu, wall: judged.append((cpu, wall)))
    two = pass_and_gradients(model.network, x, d, SquaredError())
    assert seen == [2, 2, 2, 2] and len(judged) == 2           # each split loop reports its threads' time
    assert all(0 <= waited <= wall and wall > 0 for waited, wall in judged)
    np.testing.assert_allclose(two[0], one[0], rtol=1e-12, atol=1e-12)


def test_the_package_exports_the_policy():
    assert {"set_num_threads", "get_num_threads", "num_threads"} <= set(unrolled.__all__)
    assert unrolled.num_threads is backend.num_threads
