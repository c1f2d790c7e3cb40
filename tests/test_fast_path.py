"""The compiled time loops (backend "fast") against the NumPy reference loops (backend "numpy").

The fast backend must compute the same column: outputs, final states and every gradient
(weights, inputs, given histories), to 1e-12 in float64 and to float32 rounding in
float32, over random columns and over every model of the family, with BLAS products and
with the plain loops that replace them.
"""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import unrolled
from test_network import given_state, random_data, random_network
from unrolled import Layer, Link, Network
from unrolled.engine import backend, plan
from unrolled.engine import program as program_mod
from unrolled.engine import fast as fast_path
from unrolled.engine.kernels import blas as blas_lib
from unrolled.engine.kernels import opcodes
from unrolled.engine.kernels import threads as thread_lib
from unrolled.divergences import CrossEntropy, SquaredError
from unrolled.models.elman import Elman
from unrolled.models.jordan import Jordan
from unrolled.models.narx import NARX
from unrolled.models.statespace import StateSpace

kernels = pytest.importorskip("unrolled.engine.kernels.compiled")
# the folder holding the very package these tests import (the checkout's src/, or
# site-packages when installed): a subprocess must load the same files, and the same cache
SRC = os.path.dirname(os.path.dirname(os.path.abspath(unrolled.__file__)))


@pytest.fixture(params=[True, False], ids=["blas", "loops"])
def blas(request, monkeypatch):
    """Run a test with the BLAS products and again with the plain loops."""
    if request.param and not blas_lib.BLAS:
        pytest.skip("NumPy's BLAS was not found: the fast backend uses its own loops")
    monkeypatch.setattr(blas_lib, "USE_BLAS", request.param)
    return request.param


@pytest.fixture(params=[(1, ""), (1, "steps"), (2, "units"), (3, "units"), (2, "sequences"), (3, "sequences")],
                ids=["one-thread", "one-thread-steps", "units-2", "units-3", "sequences-2", "sequences-3"])
def threads(request, monkeypatch):
    """Run a test on one thread (a pass as one compiled program, and step by step), and
    with every loop split over 2 and over 3 threads, by units and by sequences, and every
    product split (the thresholds that keep small networks on one thread set to nothing)."""
    count, kind = request.param
    monkeypatch.setattr(thread_lib, "THREADS", count)
    if kind == "steps":
        monkeypatch.setattr(program_mod, "WHOLE_PASS", False)
    if count > 1:
        monkeypatch.setattr(thread_lib, "MIN_WEIGHTS", 0 if kind == "units" else 1 << 60)
        monkeypatch.setattr(thread_lib, "MIN_UNITS", 1)
        monkeypatch.setattr(thread_lib, "MIN_ROWS", 1)
        monkeypatch.setattr(thread_lib, "MIN_ROW_WORK", 0)
        monkeypatch.setattr(fast_path, "PRODUCT_WORK", 0)
        monkeypatch.setattr(fast_path, "PRODUCT_ROWS", 1)
    return request.param


def both(net, run):
    """``run()`` under the NumPy loops and under the compiled ones, restoring the backend."""
    results = []
    for backend in ("numpy", "fast"):
        net.backend = backend
        results.append(run())
    net.backend = None
    return results


def assert_same(a, b, rtol, atol, where=""):
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_same(a[key], b[key], rtol, atol, f"{where}[{key}]")
    elif isinstance(a, (tuple, list)):
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same(u, v, rtol, atol, f"{where}[{i}]")
    elif a is None:
        assert b is None, where
    else:
        assert np.asarray(a).dtype == np.asarray(b).dtype, where
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=where)


def pass_and_gradients(net, x, d, div, **kw):
    """Outputs, final state and every gradient of one pass (dstate too, when a state is given)."""
    y, cache = net.forward(x, **kw)
    value, dy = div(y, d, lengths=kw.get("lengths"))
    dstate = {name: np.full_like(s, 0.5) for name, s in cache.state.items()} if kw.get("state") else None
    grads, dinputs, dstate_in = net.backward_full(dy, cache, dstate=dstate)
    return y, cache.state, grads, dinputs, dstate_in


# --------------------------------------------------------------------- random columns
@pytest.mark.parametrize("seed", range(16))
def test_random_columns_float64(seed, blas, threads):
    net, rng = random_network(seed, blocked=seed % 2 == 1)
    x, u, lengths = random_data(net, rng, N=3, T=7)
    state = given_state(net, rng, len(x))
    d = rng.normal(size=(3, 7, net.n_out))
    ref, fast = both(net, lambda: pass_and_gradients(net, x, d, SquaredError(), lengths=lengths,
                                                     state=state, u=u))
    assert_same(ref, fast, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_random_columns_softmax_output_fused_cross_entropy(seed, blas, threads):
    net, rng = random_network(400 + seed, output_act="softmax")
    x, u, lengths = random_data(net, rng, N=3, T=6)
    labels = rng.integers(0, net.n_out, size=(3, 6))
    ref, fast = both(net, lambda: pass_and_gradients(net, x, labels, CrossEntropy(), lengths=lengths, u=u))
    assert_same(ref, fast, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("output", ["identity", "softmax", "sigmoid"])
def test_a_pass_as_one_program_equals_it_step_by_step(seed, output, monkeypatch):
    """Padded sequences or whole ones, histories given or not, the inputs' gradients wanted
    or not, the output's gradient fused or not: the whole-pass program, the step-by-step
    compiled path and the NumPy loops agree."""
    from unrolled.divergences import BinaryCrossEntropy
    net, rng = random_network(600 + seed, blocked=seed % 2 == 1, output_act=output)
    x, u, lengths = random_data(net, rng, N=3, T=7)
    lengths = lengths if seed % 2 else None
    state = given_state(net, rng, 3, share=(0.0, 0.5, 1.0)[seed % 3])
    if output == "softmax":
        d, div = rng.integers(0, net.n_out, size=(3, 7)), CrossEntropy()
    elif output == "sigmoid":
        d, div = rng.random(size=(3, 7, net.n_out)), BinaryCrossEntropy()
    else:
        d, div = rng.normal(size=(3, 7, net.n_out)), SquaredError()
    programs = []
    program = kernels.run_program
    monkeypatch.setattr(kernels, "run_program", lambda *args: programs.append(1) or program(*args))
    results = []
    for backend, whole in (("numpy", True), ("fast", False), ("fast", True)):
        net.backend = backend
        monkeypatch.setattr(program_mod, "WHOLE_PASS", whole)
        y, cache = net.forward(x, u=u, state=state, lengths=lengths)
        cache.input_grads = seed % 4 < 2
        value, dy = div(y, d, lengths=lengths)
        results.append((y, cache.state, *net.backward_full(dy, cache)))
    net.backend = None
    assert len(programs) == (2 if blas_lib.BLAS else 0)          # forward and BPTT, the last run only
    assert_same(results[0], results[1], rtol=1e-12, atol=1e-12)
    assert_same(results[0], results[2], rtol=1e-12, atol=1e-12)


def test_a_read_only_gradient_and_a_new_output_layer_are_taken_as_given():
    net = Network({"x": 2}, {"h": Layer(3, "tanh"), "o": Layer(2)},
                  [Link("x", "h"), Link("h", "h", 1), Link("h", "o")], "o", dtype=np.float64, seed=0)
    x = np.random.default_rng(0).normal(size=(2, 4, 2))
    results = []
    for whole in (False, True):
        program_mod.WHOLE_PASS = whole
        try:
            net.output = "o"
            y, cache = net.forward(x)
            dy = np.ones_like(y)
            dy.flags.writeable = False
            first = net.backward(dy, cache)
            net.output = "h"                       # the cached program of "o" must not answer for "h"
            y, cache = net.forward(x)
            results.append((first, y, cache.A["h"][1:].swapaxes(0, 1), net.backward(np.ones_like(y), cache)))
        finally:
            program_mod.WHOLE_PASS = True
            net.output = "o"
    assert_same(results[0], results[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(results[1][1], results[1][2])
    assert not results[1][3][0]["W[h->o@0]"].any()


@pytest.mark.parametrize("seed", range(8))
def test_random_columns_float32(seed, blas, threads):
    net64, rng = random_network(500 + seed)
    net = Network.from_config({**net64.get_config(), "dtype": "float32"})
    for key, value in net64.params.items():
        net.params[key][...] = value
    x, u, lengths = random_data(net, rng, N=4, T=30)
    d = rng.normal(size=(4, 30, net.n_out))
    ref, fast = both(net, lambda: pass_and_gradients(net, x, d, SquaredError(), lengths=lengths, u=u))
    assert_same(ref, fast, rtol=2e-4, atol=2e-5)


# ----------------------------------------------------------------------- the family
def randomized(model, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * scale
    return rng


FAMILY = {
    "rnn-3-layers-skips": lambda dt: unrolled.RNN(3, 2, hidden=(5, 4, 3), skip_input=True, skip_output=True,
                                                  dtype=dt, seed=1),
    "rnn-relu": lambda dt: unrolled.RNN(3, 2, hidden=(6,), activation="relu", dtype=dt, seed=2),
    "rnn-sigmoid-softmax": lambda dt: unrolled.RNN(3, 4, hidden=(6,), activation="sigmoid", output="softmax",
                                                   dtype=dt, seed=3),
    "narx-closed": lambda dt: NARX(3, 2, input_delays=2, output_delays=3, hidden=(5, 4), dtype=dt, seed=4),
    "elman-blocked": lambda dt: Elman(3, 2, hidden=(5, 4), dtype=dt, seed=5),
    "elman-full": lambda dt: Elman(3, 2, hidden=(5,), context_gradient="full", dtype=dt, seed=6),
    "jordan": lambda dt: Jordan(3, 2, hidden=(5,), dtype=dt, seed=7),
    "state-space": lambda dt: StateSpace(3, 2, hidden=(5,), dtype=dt, seed=8),
}


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_family_float64(name, blas, threads):
    model = FAMILY[name](np.float64)
    rng = randomized(model, 10)
    x, d = rng.normal(size=(4, 9, 3)), rng.normal(size=(4, 9, model.n_out))
    lengths = np.array([9, 4, 7, 1])
    ref, fast = both(model.network, lambda: pass_and_gradients(model, x, d, SquaredError(), lengths=lengths))
    assert_same(ref, fast, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_family_float32_long_sequences(name, blas, threads):
    model = FAMILY[name](np.float32)
    rng = randomized(model, 11, scale=0.3)
    x, d = rng.normal(size=(3, 120, 3)), rng.normal(size=(3, 120, model.n_out))
    ref, fast = both(model.network, lambda: pass_and_gradients(model, x, d, SquaredError()))
    assert_same(ref, fast, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("N,H", [(1, 40), (5, 70)])
def test_larger_sizes(N, H, blas, threads):
    model = unrolled.RNN(6, 3, hidden=(H, H), skip_output=True, dtype=np.float64, seed=12)
    rng = randomized(model, 12, scale=0.15)
    x, d = rng.normal(size=(N, 15, 6)), rng.normal(size=(N, 15, 3))
    ref, fast = both(model.network, lambda: pass_and_gradients(model, x, d, SquaredError()))
    assert_same(ref, fast, rtol=1e-12, atol=1e-12)


def test_float32_tanh_is_within_a_few_ulp():
    z = np.concatenate([np.linspace(-10, 10, 200_001), np.logspace(-8, 1, 10_001), -np.logspace(-8, 1, 10_001),
                        [0.0, 1e-30, -1e-30, 50.0, -50.0, np.inf, -np.inf]]).astype(np.float32)
    out = np.empty_like(z)
    kernels._activate(1, 1, z.size, z, 0, out, 0)
    exact = np.tanh(z.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - exact) / ulp) < 8


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "softmax", "identity"])
def test_nan_stays_nan(activation):
    net = Network({"x": 1}, {"h": Layer(3, activation)}, [Link("x", "h"), Link("h", "h", 1)], "h", backend="fast")
    x = np.ones((2, 4, 1), dtype=np.float32)
    x[0, 1] = np.nan
    with np.errstate(invalid="ignore"):
        y = net.forward(x)[0]
    assert np.all(np.isnan(y[0, 1:])) and np.all(np.isfinite(y[1]))


# ------------------------------------------------------------------ engine details
def test_changed_identity_constant_is_used_as_the_matrix_it_is():
    # An Elman copy link (1.0 * I) runs as a scaled add; if someone changes the constant
    # matrix in place, the fast loop must use the matrix.
    model = Elman(2, 1, hidden=(3,), context_gradient="full", dtype=np.float64, seed=13)
    rng = randomized(model, 13)
    key = "W[h1->c1@1]"
    model.network.constants[key][...] = rng.normal(size=(3, 3))
    x, d = rng.normal(size=(2, 6, 2)), rng.normal(size=(2, 6, 1))
    ref, fast = both(model.network, lambda: pass_and_gradients(model, x, d, SquaredError()))
    assert_same(ref, fast, rtol=1e-12, atol=1e-12)


def test_a_cache_without_its_buffers_still_backpropagates():
    net, rng = random_network(21)
    x, u, lengths = random_data(net, rng)
    y, cache = net.forward(x, u=u, lengths=lengths)
    dy = rng.normal(size=y.shape)
    expected = net.backward(dy, cache)
    bare = unrolled.ForwardCache(A={k: v.copy() for k, v in cache.A.items()},
                                 Z={k: v.copy() for k, v in cache.Z.items()},
                                 weights={k: v.copy() for k, v in cache.weights.items()},
                                 lengths=cache.lengths, given=cache.given, state=cache.state)
    assert_same(expected, net.backward(dy, bare), rtol=1e-12, atol=1e-12)
    # a cache whose arrays were replaced (its buffers stale) is read from its arrays too
    changed = dataclasses.replace(cache, A={k: v.copy() for k, v in cache.A.items()})
    changed.A[net.output][...] *= 2.0              # would be missed if the old buffers were read
    cache.A[net.output][...] *= 2.0
    assert_same(net.backward(dy, cache), net.backward(dy, changed), rtol=1e-12, atol=1e-12)


def test_recycled_buffers_never_overwrite_what_a_caller_kept():
    model = unrolled.RNN(2, 1, hidden=(4,), dtype=np.float64, seed=14)
    rng = randomized(model, 14)
    x1, x2 = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 5, 2))
    y, cache = model.forward(x1)
    h = cache.A["h1"]                                   # a view of the pass's buffer, kept ...
    kept = h.copy()
    grads, dx = model.backward(np.ones_like(y), cache)
    dx_kept = dx.copy()
    del cache                                           # ... after the cache is gone
    for _ in range(3):
        y2, c2 = model.forward(x2)
        model.backward(np.ones_like(y2), c2)
    np.testing.assert_array_equal(h, kept)
    np.testing.assert_array_equal(dx, dx_kept)


def test_buffer_pool_gives_a_buffer_again_only_when_unreferenced():
    pool = plan.BufferPool()
    pool.min_bytes = 0
    a = pool.empty(100, np.float32)
    address = a.__array_interface__["data"][0]
    view = a[10:20]
    del a
    b = pool.empty(100, np.float32)
    assert b.__array_interface__["data"][0] != address      # the view still holds it
    del view
    c = pool.empty(100, np.float32)
    assert c.__array_interface__["data"][0] == address      # now it comes back
    assert pool.empty(100, np.float64).dtype == np.float64
    big = pool.empty((pool.max_bytes // 4) + 1, np.float32)
    fresh = plan.BufferPool()
    fresh.empty(10, np.float32)
    assert not fresh._arrays                                 # too small to be worth it
    assert not any(arr[1] is big for arr in pool._arrays)    # too big to keep


def test_backward_graph_skips_what_nothing_needs():
    # Elman with a blocked context: the recurrence is cut in the gradient graph, so BPTT
    # needs no time loop at all, and the context layer needs no gradient.
    net = Elman(2, 1, hidden=(3,)).network
    need_a, need_z, schedule = net._plan.gradient_graph(frozenset())
    assert not any(cyclic for _, cyclic in schedule)
    assert not need_a["c1"] and not need_z["c1"]
    assert need_a["h1"] and need_z["h1"] and need_a["x"]
    # with a given history of the context's source, it is needed again
    assert net._plan.gradient_graph(frozenset({"h1"}))[0]["h1"]


# ------------------------------------------------------------------------ backends
def test_backend_selection():
    net = Network({"x": 1}, {"h": Layer(2)}, [Link("x", "h"), Link("h", "h", 1)], "h", backend="numpy")
    assert net.backend == "numpy" and backend.kernels_for(net.backend) is None
    net.backend = "fast"
    assert backend.kernels_for(net.backend) is kernels
    net.backend = None
    old = unrolled.set_default_backend("numpy")
    try:
        assert backend.kernels_for(net.backend) is None
        unrolled.set_default_backend("auto")
        assert backend.kernels_for(net.backend) is (kernels if blas_lib.BLAS else None)
    finally:
        unrolled.set_default_backend(old)
    with pytest.raises(ValueError, match=r"backend must be one of \('fast', 'numpy'\), got 'gpu'"):
        Network({"x": 1}, {"h": Layer(2)}, [Link("x", "h")], "h", backend="gpu")


def run_python(code):
    env = {k: v for k, v in os.environ.items() if k != "UNROLLED_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**env, "PYTHONPATH": SRC})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_without_numba_the_engine_runs_its_numpy_loops():
    out = run_python(
        "import sys\n"
        "sys.modules['numba'] = None          # as if numba were not installed\n"
        "import numpy as np, unrolled\n"
        "m = unrolled.RNN(2, 1, hidden=(3,), seed=0)\n"
        "y, c = m.forward(np.ones((2, 4, 2)))\n"
        "g, dx = m.backward(np.ones_like(y), c)\n"
        "print(unrolled.engine.backend.kernels_for(m.network.backend) is None, sys.modules['numba'] is not None, float(y.sum()))\n"
        "try:\n"
        "    m.network.backend = 'fast'\n"
        "except ValueError as e:\n"
        "    print('refused:', 'pip install numba' in str(e))\n")
    assert out.split() == ["True", "False", out.split()[2], "refused:", "True"]


def test_compiled_loops_are_cached_across_processes():
    model = unrolled.RNN(2, 1, hidden=(3,), seed=0)       # compiles (or loads) the float32 loops here
    model.network.backend = "fast"
    y, c = model.forward(np.ones((1, 3, 2)))
    model.backward(np.ones_like(y), c)
    out = run_python(
        "import numpy as np, unrolled\n"
        "from unrolled.engine.kernels import compiled as k\n"
        "m = unrolled.RNN(2, 1, hidden=(3,), seed=0)\n"
        "m.network.backend = 'fast'\n"
        "y, c = m.forward(np.ones((1, 3, 2)))\n"
        "m.backward(np.ones_like(y), c)\n"
        "s = [k.forward_loop.stats, k.backward_loop.stats, k.run_program.stats]\n"
        "print(sum(sum(x.cache_hits.values()) for x in s), sum(sum(x.cache_misses.values()) for x in s))\n")
    hits, misses = map(int, out.split())
    assert hits >= 1 and misses == 0


# ------------------------------------------------------------------------- threads
def loop_threads(monkeypatch):
    """Record the number of threads P of every compiled loop call."""
    seen = []
    for name in ("forward_loop", "backward_loop"):
        kernel = getattr(kernels, name)

        def record(*args, kernel=kernel):
            seen.append(args[-2])
            return kernel(*args)
        monkeypatch.setattr(kernels, name, record)
    program = kernels.run_program

    def record_program(ops, *args):                   # a whole-pass program runs its loops on one thread
        seen.extend(1 for code in ops[:, 0] if code in (opcodes.LOOP, opcodes.LOOP_BACK))
        return program(ops, *args)
    monkeypatch.setattr(kernels, "run_program", record_program)
    return seen


def test_a_wide_recurrence_is_split_over_threads_and_blas_gets_its_threads_back(monkeypatch):
    if not blas_lib.BLAS or not blas_lib.CAN_SET_THREADS:
        pytest.skip("OpenBLAS cannot be set to one thread here: nothing is split")
    monkeypatch.setattr(thread_lib, "THREADS", 2)
    seen = loop_threads(monkeypatch)
    model = unrolled.RNN(4, 3, hidden=(512,), seed=0)               # 512 x 512 inside: split
    rng = np.random.default_rng(0)
    x, d = rng.normal(size=(2, 5, 4)).astype(np.float32), rng.normal(size=(2, 5, 3)).astype(np.float32)
    before = blas_lib.blas_threads_local(2)
    try:
        fast = pass_and_gradients(model, x, d, SquaredError())
        assert blas_lib.blas_threads_local(2) == 2                    # restored after each pass
    finally:
        blas_lib.blas_threads_local(before)
    assert seen.count(2) == 4                                        # both threads, both loops
    model.network.backend = "numpy"
    ref = pass_and_gradients(model, x, d, SquaredError())
    assert_same(ref, fast, rtol=2e-4, atol=2e-5)


def test_a_narrow_recurrence_is_split_by_sequences_of_a_large_batch_only(monkeypatch):
    if not blas_lib.BLAS or not blas_lib.CAN_SET_THREADS:
        pytest.skip("OpenBLAS cannot be set to one thread here: nothing is split")
    monkeypatch.setattr(thread_lib, "THREADS", 2)
    calls = []
    kernel, program = kernels.forward_loop, kernels.run_program
    monkeypatch.setattr(kernels, "forward_loop", lambda *args: calls.append(args[-5:-1]) or kernel(*args))
    monkeypatch.setattr(kernels, "run_program", lambda *args: calls.append(("whole", args[-3])) or program(*args))
    model = unrolled.RNN(4, 3, hidden=(128,), seed=0)               # 128 x 128: not split by units
    for N in (2, 32):
        model.forward(np.ones((N, 5, 4), np.float32))
    assert calls == [("whole", 2), (0, 16, 0, 1), (16, 32, 0, 1)] or \
        calls == [("whole", 2), (16, 32, 0, 1), (0, 16, 0, 1)]      # (the two threads in either order)


def test_a_softmax_inside_a_recurrence_is_never_split(monkeypatch):
    monkeypatch.setattr(thread_lib, "THREADS", 2)
    monkeypatch.setattr(thread_lib, "MIN_WEIGHTS", 0)
    monkeypatch.setattr(thread_lib, "MIN_UNITS", 1)
    seen = loop_threads(monkeypatch)
    net = Network({"x": 2}, {"h": Layer(6, "softmax")}, [Link("x", "h"), Link("h", "h", 1)], "h", seed=0)
    y, cache = net.forward(np.ones((3, 4, 2)))
    net.backward(np.ones_like(y), cache)
    assert seen == [1, 1]
    np.testing.assert_allclose(y.sum(axis=-1), 1.0)


@pytest.mark.parametrize("H,P", [(3, 2), (16, 2), (40, 2), (100, 3), (512, 2), (7, 3)])
def test_columns_of_the_threads_cover_the_layer_once(H, P):
    cols = [kernels._cols(H, k, P) for k in range(P)]
    assert cols[0][0] == 0 and cols[-1][1] == H
    assert all(cols[k][1] == cols[k + 1][0] for k in range(P - 1))
    assert all(j0 <= j1 for j0, j1 in cols)
    if H >= 16 * P:                                                  # whole cache lines each
        assert all(j0 % 16 == 0 for j0, _ in cols)




def test_a_split_loop_whose_part_fails_raises_instead_of_waiting_forever():
    if not thread_lib.own_threads().on:
        pytest.skip("OpenBLAS cannot be set to one thread here: nothing is split")
    # In a subprocess with a timeout: were the call-off broken, thread 0 would wait at its
    # barrier forever, and the test must fail, not hang.
    code = (
        "import numpy as np, unrolled\n"
        "from unrolled.engine.kernels import compiled as k, threads as t\n"
        "t.THREADS, t.MIN_WEIGHTS, t.MIN_UNITS = 2, 0, 1\n"
        "kernel = k.forward_loop\n"
        "def second_thread_fails(*args):\n"
        "    if args[-3] == 1:\n"                                   # thread k = 1 never starts
        "        raise RuntimeError('part failed')\n"
        "    return kernel(*args)\n"                                # thread 0 waits at its barrier
        "k.forward_loop = second_thread_fails\n"
        "model = unrolled.RNN(2, 1, hidden=(32,), seed=0)\n"
        "x = np.ones((1, 50, 2))\n"
        "try:\n"
        "    model.forward(x)\n"
        "except RuntimeError as e:\n"
        "    print('raised:', e)\n"
        "k.forward_loop = kernel\n"
        "fast = model.predict(x)\n"
        "model.network.backend = 'numpy'\n"
        "print('same after:', np.allclose(fast, model.predict(x), rtol=1e-5, atol=1e-6))\n"
    )
    out = run_python(code).splitlines()
    assert out[-2:] == ["raised: part failed", "same after: True"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_splits_its_loops_with_threads_of_its_own():
    code = (
        "import os, sys, numpy as np\n"
        "import unrolled\n"
        "from unrolled.engine.kernels import compiled as k, threads as t\n"
        "t.THREADS, t.MIN_WEIGHTS, t.MIN_UNITS = 2, 0, 1\n"
        "m = unrolled.RNN(2, 1, hidden=(32,), seed=0)\n"
        "x = np.ones((2, 20, 2), np.float32)\n"
        "y = m.predict(x)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if np.array_equal(m.predict(x), y) else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    assert run_python(code).strip().splitlines()[-1] == "0"


def test_blas_goes_back_to_its_threads_only_when_the_last_holder_leaves():
    if not blas_lib.CAN_SET_THREADS:
        pytest.skip("OpenBLAS cannot be set here")
    import threading
    before = blas_lib.blas_threads_local(2)
    try:
        first, second = blas_lib.one_blas_thread(), blas_lib.one_blas_thread()
        first.__enter__()
        t = threading.Thread(target=second.__enter__)
        t.start()
        t.join()
        first.__exit__(None, None, None)             # the other thread still holds it
        assert blas_lib.blas_threads_local(1) == 1
        second.__exit__(None, None, None)
        assert blas_lib.blas_threads_local(2) == 2
    finally:
        blas_lib.blas_threads_local(before)
