"""Gated layers (LSTM, GRU) on the compiled path (backend "fast") against the NumPy reference.

The compiled time loops must compute the column the reference loops compute: outputs,
final states (h and an LSTM's c), every parameter's gradient, the inputs' gradients and
those of given initial states, with a gradient on the final state too; for LSTM and GRU
models of 1 and 2 layers, padded lengths, learned, zero and given initial states, float64
and float32, and a random column mixing gated and plain layers in one recurrence. Each
array is compared to the reference's within ``tol`` of its largest entry, elementwise:
1e-12 in float64, 1e-5 in float32 (where the compiled float32 tanh and sigmoid differ from
NumPy's by a few ulp).
"""

import numpy as np
import pytest

import test_fast_path
import unrolled
from unrolled import Layer, Link, Network
from unrolled.divergences import SquaredError
from unrolled.engine import reference
from unrolled.engine.kernels import threads as thread_lib

kernels = pytest.importorskip("unrolled.engine.kernels.compiled")

# test_fast_path's fixtures: each test with BLAS and with the plain loops ("blas"), and on
# one thread, whole or step by step, and split over 2 and 3 threads ("threads")
blas, threads = test_fast_path.blas, test_fast_path.threads
CELLS = ["lstm", "gru"]
TOL = {np.float64: 1e-12, np.float32: 1e-5}


def _randomise(params, rng, scale):
    for p in params.values():
        p[...] = rng.normal(size=p.shape) * scale


def everything(net, x, d, *, lengths=None, state=None, dstate=False):
    """Outputs, final state, every gradient, dDIV/dx and the given states' gradients of one
    pass; with ``dstate``, a gradient on every final state as well."""
    y, cache = net.forward(x, lengths=lengths, state=state)
    _, dy = SquaredError()(y, d, lengths=lengths)
    ds = {name: np.full_like(s, 0.5) for name, s in cache.state.items()} if dstate else None
    grads, dinputs, dstate_in = net.backward_full(dy, cache, dstate=ds)
    return {"y": y, **{f"state[{k}]": v for k, v in cache.state.items()}, **{f"grad {k}": v for k, v in grads.items()},
            **{f"d{k}": v for k, v in dinputs.items()}, **{f"dstate_in[{k}]": v for k, v in dstate_in.items()}}


def compare(net, run, dtype):
    """``run()`` under the reference loops and the compiled ones: the same keys, each array
    within TOL of its largest entry; returns the largest relative difference seen."""
    results = {}
    for backend in ("numpy", "fast"):
        net.backend = backend
        results[backend] = run()
    net.backend = None
    ref, fast = results["numpy"], results["fast"]
    assert set(ref) == set(fast)
    worst = 0.0
    for key in ref:
        a, b = np.asarray(ref[key]), np.asarray(fast[key])
        assert a.dtype == b.dtype == dtype and a.shape == b.shape, key
        scale = float(np.max(np.abs(a))) if a.size else 0.0
        assert scale > 0 or not a.size or not np.any(b), key           # (a zero array must stay zero)
        np.testing.assert_allclose(b, a, rtol=TOL[dtype], atol=TOL[dtype] * scale, err_msg=key)
        if scale:
            worst = max(worst, float(np.max(np.abs(b - a))) / scale)
    return worst


def model(cell, layers, dtype, seed, **options):
    make = unrolled.LSTM if cell == "lstm" else unrolled.GRU
    hidden = (5, 4)[:layers]
    m = make(3, 2, hidden=hidden, dtype=dtype, seed=seed, **options)
    rng = np.random.default_rng(seed)
    _randomise(m.params, rng, 0.5)
    return m.network, rng


# --------------------------------------------------------------------- the models
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("padded", [False, True], ids=["whole", "padded"])
@pytest.mark.usefixtures("blas", "threads")
def test_models_learned_initial_state(cell, layers, dtype, padded):
    net, rng = model(cell, layers, dtype, seed=layers + 10 * padded)
    N, T = 4, 11
    x, d = rng.normal(size=(N, T, 3)), rng.normal(size=(N, T, 2))
    lengths = np.array([11, 3, 7, 1]) if padded else None
    assert any(k.startswith("init[") for k in net.params)
    compare(net, lambda: everything(net, x, d, lengths=lengths, dstate=True), dtype)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.usefixtures("blas", "threads")
def test_models_given_initial_state_and_its_gradient(cell, layers, dtype):
    net, rng = model(cell, layers, dtype, seed=20 + layers)
    N, T = 3, 9
    x, d = rng.normal(size=(N, T, 3)), rng.normal(size=(N, T, 2))
    state = {name: rng.normal(size=(N, D, net.node_size(name))) for name, D in net.depth.items()
             if D and name != "y"}
    assert ("h1.c" in state) == (cell == "lstm")
    compare(net, lambda: everything(net, x, d, lengths=np.array([9, 5, 2]), state=state, dstate=True), dtype)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.usefixtures("blas")
def test_models_zero_initial_state_no_biases_skips(cell):
    net, rng = model(cell, 2, np.float64, seed=31, learn_init=False, bias=False, skip_input=True,
                     skip_output=True)
    assert not any(k.startswith(("init[", "b[h")) for k in net.params)
    x, d = rng.normal(size=(2, 8, 3)), rng.normal(size=(2, 8, 2))
    compare(net, lambda: everything(net, x, d), np.float64)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.usefixtures("blas")
def test_float32_long_sequences_wider_layers(cell):
    make = unrolled.LSTM if cell == "lstm" else unrolled.GRU
    m = make(6, 3, hidden=(40, 24), seed=3)
    rng = np.random.default_rng(3)
    _randomise(m.params, rng, 0.3)
    x, d = rng.normal(size=(5, 100, 6)), rng.normal(size=(5, 100, 3))
    worst = compare(m.network, lambda: everything(m.network, x, d, lengths=np.array([100, 60, 99, 1, 37]),
                                                  dstate=True), np.float32)
    assert worst < 1e-5


# --------------------------------------------------------------- a mixed column
def mixed_column(cell, seed, dtype):
    """A gated layer g and a plain tanh layer p in one recurrence (g -> p @1, p -> g), a
    second delay on g's own past, a delayed input, a plain layer after them that feeds g
    back (q -> g @2), a softmax-free output reading both."""
    rng = np.random.default_rng(seed)
    G, P = (int(v) for v in rng.integers(2, 6, size=2))
    layers = {"p": Layer(P, "tanh"), "g": Layer(G, cell=cell), "q": Layer(3, "sigmoid", init="zeros"),
              "y": Layer(2, "identity", init="zeros")}
    links = [Link("x", "p"), Link("g", "p", delay=1), Link("p", "g"), Link("x", "g", delay=1),
             Link("g", "g", delay=1), Link("g", "g", delay=2), Link("p", "p", delay=1),
             Link("g", "q"), Link("q", "g", delay=2), Link("g", "y"), Link("p", "y", delay=1)]
    net = Network({"x": 2}, layers, links, "y", dtype=dtype, seed=seed)
    _randomise(net.params, rng, 0.6)
    return net, rng


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.usefixtures("blas", "threads")
def test_mixed_gated_and_plain_column(cell, dtype, seed):
    net, rng = mixed_column(cell, seed, dtype)
    assert [c for c, cyclic in net.schedule if cyclic] == [["p", "g", "q"]]
    N, T = 3, 10
    x, d = rng.normal(size=(N, T, 2)), rng.normal(size=(N, T, 2))
    state = {"g": rng.normal(size=(N, 2, net.node_size("g")))} if seed == 1 else None
    compare(net, lambda: everything(net, x, d, lengths=np.array([10, 4, 7]), state=state, dstate=True), dtype)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.usefixtures("blas")
def test_gated_layers_in_a_stack_with_a_plain_recurrence_between(cell):
    # x -> g1 (gated) -> r (plain tanh recurrence) -> g2 (gated) -> y: three cyclic
    # components, each loop compiled, the products between hoisted.
    layers = {"g1": Layer(4, cell=cell), "r": Layer(3, "tanh"), "g2": Layer(5, cell=cell, init="zeros"),
              "y": Layer(2, "identity", init="zeros")}
    links = [Link("x", "g1"), Link("g1", "g1", 1), Link("g1", "r"), Link("r", "r", 1), Link("r", "g2"),
             Link("g1", "g2", 2), Link("g2", "g2", 1), Link("g2", "y")]
    net = Network({"x": 3}, layers, links, "y", dtype=np.float64, seed=4)
    rng = np.random.default_rng(4)
    _randomise(net.params, rng, 0.5)
    x, d = rng.normal(size=(3, 12, 3)), rng.normal(size=(3, 12, 2))
    compare(net, lambda: everything(net, x, d, lengths=np.array([12, 12, 5]), dstate=True), np.float64)


@pytest.mark.usefixtures("blas")
def test_a_blocked_gated_recurrence_still_carries_its_cell():
    # the GRU's own link gradient-blocked: no product back through W_hh, but its cell still
    # sends u * dh to h(t-1) (and an LSTM's c carries f * dc), as the reference does
    for cell in CELLS:
        layers = {"h": Layer(4, cell=cell), "y": Layer(2, "identity", init="zeros")}
        links = [Link("x", "h"), Link("h", "h", 1, gradient="blocked"), Link("h", "y")]
        net = Network({"x": 3}, layers, links, "y", dtype=np.float64, seed=5)
        rng = np.random.default_rng(5)
        _randomise(net.params, rng, 0.5)
        x, d = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 6, 2))
        compare(net, lambda: everything(net, x, d), np.float64)


# ------------------------------------------------------------------ how it runs
@pytest.mark.parametrize("cell", CELLS)
def test_the_fast_backend_runs_gated_layers_compiled(cell, monkeypatch):
    # the reference's step-by-step loops never run, the compiled loops do; backend="numpy"
    # still runs the reference
    calls = []

    def refuse(*args, **kwargs):
        raise AssertionError("the reference loop ran")
    monkeypatch.setattr(reference, "forward_loop", refuse)
    monkeypatch.setattr(reference, "backward_loop", refuse)
    for name in ("forward_loop", "backward_loop"):
        kernel = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, kernel=kernel, name=name: calls.append(name) or kernel(*a))
    net, rng = model(cell, 2, np.float32, seed=1)
    net.backend = "fast"
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    y, cache = net.forward(x)
    net.backward(np.ones_like(y), cache)
    assert calls == ["forward_loop"] * 2 + ["backward_loop"] * 2
    net.backend = "numpy"
    with pytest.raises(AssertionError, match="the reference loop ran"):
        net.forward(x)


def test_a_wide_gated_recurrence_is_split_by_units_a_narrower_one_by_sequences():
    # each thread computes its units of every gate block with its own columns of W (which
    # stay in its core's cache): from 2^18 weights inside, 4 x 256 x 256 for an LSTM;
    # a narrower one over a large batch by sequences
    for cell, H, by_units in (("lstm", 256, True), ("gru", 256, False), ("lstm", 128, False), ("gru", 512, True)):
        net = unrolled.LSTM(3, 2, hidden=(H,)) if cell == "lstm" else unrolled.GRU(3, 2, hidden=(H,))
        (component,) = [c for c, cyclic in net.network.schedule if cyclic]
        stats = net.network._plan.loop_stats(component)
        assert stats[0] == (4 if cell == "lstm" else 3) * H * H and not stats[2]
        split = thread_lib.loop_split(stats, 32, 2)
        assert split == ([(0, 32, 0, 2), (0, 32, 1, 2)] if by_units else [(0, 16, 0, 1), (16, 32, 0, 1)])


@pytest.mark.parametrize("cell", CELLS)
def test_compiled_sigmoid_and_tanh_of_a_gated_step_are_within_a_few_ulp(cell):
    # a one-step, one-unit layer: h from z alone, so the compiled float32 gate functions are
    # seen directly against float64 NumPy, over the whole range of z
    z = np.concatenate([np.linspace(-30, 30, 60_001), [0.0, 1e-30, -1e-30, 100.0, -100.0]])
    n = len(z)
    net = Network({"x": 1}, {"h": Layer(1, cell=cell, bias=False, init="zeros")},
                  [Link("x", "h", weight=np.ones((4 if cell == "lstm" else 3, 1))), Link("h", "h", 1)],
                  "h", dtype=np.float32, backend="fast")
    net.params["W[h->h@1]"][...] = 0.0
    y = net.predict(z.astype(np.float32).reshape(n, 1, 1))[:, 0, 0].astype(np.float64)
    s = 1.0 / (1.0 + np.exp(-z.astype(np.float32).astype(np.float64)))
    t = np.tanh(z.astype(np.float32).astype(np.float64))
    exact = s * np.tanh(s * t) if cell == "lstm" else (1.0 - s) * t   # i = f = g = o = z; r = u = n_x = z
    assert np.max(np.abs(y - exact)) < 4e-7


def test_a_gated_pass_too_small_to_split_keeps_blas_on_one_thread(monkeypatch):
    # 32 x 32 LSTM over 32 sequences: no loop splits, and its products run on one BLAS
    # thread (OpenBLAS's threads only slow products this small); 32 x 64 splits by sequences
    from unrolled.engine.kernels import blas as blas_lib
    if not blas_lib.BLAS or not blas_lib.CAN_SET_THREADS or blas_lib._get_threads is None:
        pytest.skip("OpenBLAS cannot be set to one thread here")
    monkeypatch.setattr(thread_lib, "THREADS", 2)
    seen = []
    kernel = kernels.forward_loop
    monkeypatch.setattr(kernels, "forward_loop", lambda *a: seen.append((blas_lib._get_threads(), *a[-5:-1])) or kernel(*a))
    before = blas_lib.blas_threads_local(2)
    try:
        for H in (32, 64):
            unrolled.LSTM(3, 2, hidden=(H,), seed=0).predict(np.ones((32, 4, 3), np.float32))
        assert blas_lib._get_threads() == 2                              # given back after the pass
    finally:
        blas_lib.blas_threads_local(before)
    assert seen[0] == (1, 0, 32, 0, 1)                                   # 32: the whole batch, one BLAS thread
    assert sorted(seen[1:]) == [(1, 0, 16, 0, 1), (1, 16, 32, 0, 1)]      # 64: two halves, each on one
