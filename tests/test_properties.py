"""Properties of the engine over random columns and random bad inputs (hypothesis).

Hypothesis draws the *structure* of a column (2-4 layers of sizes 1-3 in a random order,
activations, biases, learned / zero histories, links with delays 0-3 that are learned,
fixed ``s * I``, fixed arrays or gradient-blocked, which layer is the output, a second
input) and of a batch (N, T, lengths, which histories are given, where a stream is cut),
so a failure shrinks to the smallest column and batch that still fail. The numbers (the
parameters, x, the given histories) come from one drawn seed: their exact values matter
to no property, and a seed shrinks to 0.

Settings: ``derandomize=True`` and ``database=None``. Every run, a laptop's and CI's,
tries the same examples in the same order, so a failure seen once is seen again (and is
never a flake of one CI run), and no example database records failures between runs
(hypothesis still keeps its caches in ``.hypothesis/``, which ignores itself for git). The
price: no new examples between runs, so the counts below are sized to cover the space,
each kind of bad input its own test, and the file runs in well under a minute on two cores.
"""

import re
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import Phase, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reference import reference_forward  # noqa: E402
from test_network import constant_input_twin  # noqa: E402
from unrolled import Layer, Link, Network, fit  # noqa: E402
from unrolled.analysis import gradcheck  # noqa: E402
from unrolled.divergences import SquaredError  # noqa: E402
from unrolled.optim import SGD  # noqa: E402


def _settings(n):
    # No explain phase: on a failure it reruns the shrunk case hundreds of times (a minute
    # a test here) to say which lines only failing cases ran; the shrunk case is the report.
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink])


ACTIVATIONS = ["tanh", "sigmoid", "relu", "identity", "softmax"]
BACKENDS = ("numpy", "fast")
RTOL = ATOL = 1e-12


# --------------------------------------------------------------------------- columns
class Case:
    """A random column and a batch for it; its repr is what a falsifying example prints."""

    def __init__(self, net, seqs, lengths, state, seed, spec=""):
        self.net = net              # a float64 Network
        self.seqs = seqs            # input name -> (N, T, width)
        self.lengths = lengths      # None or (N,) ints
        self.state = state          # node -> (N, D, size), the given histories
        self.seed = seed            # of the numbers: parameters, inputs, histories
        self.spec = spec

    @property
    def x(self):
        return self.seqs["x"]

    @property
    def others(self):
        return {k: v for k, v in self.seqs.items() if k != "x"}

    @property
    def N(self):
        return self.x.shape[0]

    @property
    def T(self):
        return self.x.shape[1]

    def forward(self, net=None, **kw):
        kw = {"lengths": self.lengths, "state": self.state, **kw}
        return (net or self.net).forward(self.x, **kw, **self.others)

    def __repr__(self):
        lengths = None if self.lengths is None else list(map(int, self.lengths))
        return (f"Case({self.spec}\n  N={self.N}, T={self.T}, lengths={lengths}, "
                f"state given for {sorted(self.state)}, seed={self.seed})")


def _link_repr(link):
    kw = ""
    if link.weight is not None:
        kw += ", weight=" + (f"{link.weight:.3f}" if np.isscalar(link.weight) else f"<array {link.weight.shape}>")
        kw += ", trainable=False"
    if link.gradient == "blocked":
        kw += ', gradient="blocked"'
    return f"Link({link.src!r}, {link.dst!r}, {link.delay}{kw})"


@st.composite
def networks(draw, *, blocked=True, second_input=None):
    """A random float64 column: every link kind, delays 0-3, no delay-0 cycle.

    Delay-0 links between layers go only forward in a random order of the layers (a
    backward or self link drawn with delay 0 gets delay 1); delayed links go anywhere.
    Every layer after the first in that order reads an earlier node at delay 0, so the
    column is connected; x feeds the first layer at a drawn delay.
    """
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(2, 4))
    order = draw(st.permutations([f"l{i}" for i in range(n)]))
    names = sorted(order)
    pos = {name: i for i, name in enumerate(order)}
    layers = {name: Layer(draw(st.integers(1, 3)), draw(st.sampled_from(ACTIVATIONS)),
                          bias=draw(st.booleans()), init=draw(st.sampled_from(["learned", "zeros"])))
              for name in names}
    inputs = {"x": draw(st.integers(1, 3))}
    if second_input if second_input is not None else draw(st.booleans()):
        inputs["u"] = draw(st.integers(1, 2))
    size = {**inputs, **{k: v.size for k, v in layers.items()}}
    links = {}

    def add(src, dst, delay, kind="learned", block=False):
        if src in layers and delay == 0 and pos[src] >= pos[dst]:
            delay = 1
        if (src, dst, delay) in links:
            return
        kw = {}
        if kind == "scalar" and size[src] == size[dst]:
            kw = dict(weight=float(rng.choice([-1, 1]) * rng.uniform(0.3, 1.0)), trainable=False)
        elif kind in ("scalar", "array"):
            kw = dict(weight=rng.normal(size=(size[dst], size[src])) * 0.6, trainable=False)
        links[src, dst, delay] = Link(src, dst, delay, gradient="blocked" if block else "full", **kw)

    delays = st.integers(0, 3)
    add("x", order[0], draw(delays))
    if "u" in inputs:
        add("u", draw(st.sampled_from(names)), draw(delays))
    for i in range(1, n):
        add(draw(st.sampled_from(["x", *order[:i]])), order[i], 0)
    nodes = list(inputs) + names
    extra = st.tuples(st.sampled_from(nodes), st.sampled_from(names), delays,
                      st.sampled_from(["learned", "scalar", "array"]),
                      st.booleans() if blocked else st.just(False))
    for src, dst, delay, kind, block in draw(st.lists(extra, max_size=n + 3)):
        add(src, dst, delay, kind, block)
    output = draw(st.sampled_from(names))
    net = Network(inputs, layers, list(links.values()), output, dtype=np.float64, seed=seed)
    for p in net.params.values():            # non-trivial values everywhere, biases and inits too
        p[...] = rng.normal(size=p.shape) * 0.6
    spec = (f"\n  inputs={inputs}, order={order}, output={output!r},\n  layers={layers},\n  links=["
            + ",\n         ".join(map(_link_repr, net.links)) + "]")
    return net, rng, seed, spec


@st.composite
def cases(draw, *, max_N=4, max_T=8, min_T=1, blocked=True, padded=True, second_input=None):
    """A column (``networks``) and a batch: N 1-max_N, T min_T-max_T, lengths None or
    drawn in [0, T] (0 and T included), each delayed node's history given or not."""
    net, rng, seed, spec = draw(networks(blocked=blocked, second_input=second_input))
    N, T = draw(st.integers(1, max_N)), draw(st.integers(min_T, max_T))
    lengths = None
    if padded and draw(st.booleans()):
        lengths = np.array(draw(st.lists(st.integers(0, T), min_size=N, max_size=N)), dtype=np.int64)
    seqs = {name: rng.normal(size=(N, T, w)) for name, w in net.inputs.items()}
    state = {name: rng.normal(size=(N, D, net.node_size(name))) * 0.8
             for name, D in net.depth.items() if D and draw(st.booleans())}
    return Case(net, seqs, lengths, state, seed, spec)


def reference_state(case):
    """The final history (node -> (N, D, size)) the definition gives: every layer's
    activations from ``reference_forward`` of the same column with that layer as the
    output, then the last D values before each sequence's length (the given, learned or
    zero history where the sequence is shorter than D)."""
    net, N = case.net, case.N
    lengths = np.full(N, case.T) if case.lengths is None else case.lengths
    acts = dict(case.seqs)
    for name in net.layers:
        twin = Network(net.inputs, net.layers, net.links, name, dtype=np.float64)
        for key in twin.params:
            twin.params[key][...] = net.params[key]
        acts[name] = reference_forward(twin, case.x, lengths, case.state, **case.others)
    out = {}
    for name, D in net.depth.items():
        if not D:
            continue
        s = np.zeros((N, D, net.node_size(name)))
        for n in range(N):
            for j in range(D):
                t = lengths[n] - D + j
                if t >= 0:
                    s[n, j] = acts[name][n, t]
                elif name in case.state:
                    s[n, j] = case.state[name][n, D + t]
                elif f"init[{name}]" in net.params:
                    s[n, j] = net.params[f"init[{name}]"][D + t]
        out[name] = s
    return out


# ----------------------------------------------------- 1. forward = the reference loop
@_settings(60)
@given(cases())
def test_forward_equals_the_reference_loop_on_both_backends(case):
    want_y = reference_forward(case.net, case.x, case.lengths, case.state, **case.others)
    want_state = reference_state(case)
    for backend in BACKENDS:
        case.net.backend = backend
        y, cache = case.forward()
        np.testing.assert_allclose(y, want_y, rtol=RTOL, atol=ATOL, err_msg=backend)
        assert set(cache.state) == set(want_state)
        for name in want_state:
            np.testing.assert_allclose(cache.state[name], want_state[name], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{backend}: final state of {name}")


# ------------------------------------------------- 2. BPTT = central finite differences
def _relu_off_its_kink(case, margin=1e-4):
    """Whether every valid relu pre-activation is farther than ``margin`` from 0 (finite
    differences across the kink measure no derivative)."""
    _, cache = case.forward()
    lengths = cache.lengths
    for name, layer in case.net.layers.items():
        if layer.activation == "relu":
            z = cache.Z[name]                                           # (T, N, H)
            valid = np.arange(case.T)[:, None] < lengths[None, :]
            if np.any(np.abs(z[valid]) < margin):
                return False
    return True


@_settings(40)
@given(cases(max_N=3, max_T=5, blocked=False), st.sampled_from(BACKENDS))
def test_bptt_equals_central_finite_differences(case, backend):
    """For every parameter and for x, rel. error < 1e-6 (fourth-order central differences,
    step 1e-5: truncation ~1e-20, rounding ~1e-11 of the divergence). Blocked links are
    left out: their BPTT is by design not the derivative (the next test)."""
    assume(_relu_off_its_kink(case))
    net = case.net
    net.backend = backend
    d = np.random.default_rng(case.seed + 1).normal(size=(case.N, case.T, net.n_out))
    check = gradcheck(net, case.x, d, SquaredError(), lengths=case.lengths, state=case.state,
                      inputs=case.others, eps=1e-5)
    assert set(check.bptt) == set(net.params) | {"dx"}
    assert check.max_error < 1e-6, str(check)
    # the other backend's BPTT is the same gradient
    net.backend = BACKENDS[1 - BACKENDS.index(backend)]
    y, cache = case.forward()
    grads, dx = net.backward(SquaredError()(y, d, lengths=case.lengths)[1], cache)
    for key, g in {**grads, "dx": dx}.items():
        np.testing.assert_allclose(g, check.bptt[key], rtol=1e-9, atol=1e-12, err_msg=key)


def _constant_input_twin(case, cache):
    """``test_network.constant_input_twin`` of a drawn case (the lecture: a blocked link
    treats its source as a constant input), with the case's given histories, as a Case;
    and the param key map twin -> original."""
    twin_net, extra, state, rename = constant_input_twin(case.net, cache, case.N, case.T)
    for name, s in case.state.items():            # a given history may be shallower in the twin
        if twin_net.depth[name]:
            state[name] = s[:, s.shape[1] - twin_net.depth[name]:]
    return Case(twin_net, {**case.seqs, **extra}, case.lengths, state, case.seed, "(twin)"), rename


@_settings(30)
@given(cases(max_N=3, max_T=5, blocked=True), st.sampled_from(BACKENDS))
def test_bptt_through_blocked_links_is_the_gradient_with_their_source_held_constant(case, backend):
    net = case.net
    assume(any(link.gradient == "blocked" for link in net.links) and _relu_off_its_kink(case))
    net.backend = backend
    d = np.random.default_rng(case.seed + 1).normal(size=(case.N, case.T, net.n_out))
    y, cache = case.forward()
    grads, dx = net.backward(SquaredError()(y, d, lengths=case.lengths)[1], cache)
    twin, rename = _constant_input_twin(case, cache)
    np.testing.assert_allclose(twin.forward()[0], y, rtol=RTOL, atol=ATOL)
    check = gradcheck(twin.net, twin.x, d, SquaredError(), lengths=case.lengths, state=twin.state,
                      inputs=twin.others)
    floor = 1e-3 * max([1.0] + [float(np.linalg.norm(g)) for g in check.numeric.values()])
    for key, g in check.numeric.items():
        mine = dx if key == "dx" else grads[rename.get(key, key)]
        if key.startswith("init["):               # rows only a blocked link read get no gradient
            assert np.all(mine[:-len(g)] == 0.0), key
            mine = mine[-len(g):]
        err = np.linalg.norm(mine - g) / max(np.linalg.norm(mine), np.linalg.norm(g), floor)
        assert err < 1e-6, f"{key}: {err:.2e}\n{check}"


# --------------------------------------------- 3. a stream cut anywhere = one pass
@_settings(60)
@given(cases(max_T=10, min_T=2, padded=False), st.data())
def test_a_stream_cut_anywhere_into_chunks_equals_one_pass(case, data):
    cuts = data.draw(st.lists(st.integers(1, case.T - 1), unique=True, max_size=case.T - 1).map(sorted),
                     label="cuts")
    bounds = [0, *cuts, case.T]
    for backend in BACKENDS:
        case.net.backend = backend
        whole, cache = case.forward()
        parts, carried = [], case.state
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            chunk = {name: s[:, lo:hi] for name, s in case.seqs.items()}
            y, c = case.net.forward(chunk.pop("x"), state=carried, **chunk)
            parts.append(y)
            carried = c.state
        np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=RTOL, atol=ATOL, err_msg=backend)
        assert set(carried) == set(cache.state)
        for name in cache.state:
            np.testing.assert_allclose(carried[name], cache.state[name], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{backend}: final state of {name}")


# ------------------------------------ 4. bad inputs: a clear error, an unchanged model
# What a NumPy (or Python) internal error says, never what the engine's own checks say.
INTERNAL = re.compile(r"broadcast|operands|ufunc|out of bounds|index \d+ is out|tuple index|unsupported operand|"
                      r"not supported between|could not convert|invalid literal|unhashable|cannot reshape|"
                      r"NoneType|object of type|has no len|not subscriptable|iteration over")

words = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)


def _bad_shape(draw, good):
    """A shape (ndim 0-4, dims 0-4) other than ``good``."""
    return draw(st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple).filter(lambda s: s != tuple(good)))


NON_NUMERIC = ["str", "object", "bool", "complex", "datetime", "bytes", "None"]


def _non_numeric(kind, shape, rng):
    """Something of ``shape`` that is not real numbers: every value but None converts to
    float (numbers as text, objects, bools, ...), so only a dtype check can refuse it."""
    base = rng.normal(size=shape)
    return {"str": lambda: base.astype(str), "object": lambda: base.astype(object),
            "bool": lambda: base > 0, "complex": lambda: base + 0.5j,
            "datetime": lambda: np.full(shape, np.datetime64("2020-01-01")),
            "bytes": lambda: base.astype(bytes), "None": lambda: None}[kind]()


def _ragged(draw, N, T, w):
    """Nested lists of N (at least 2) sequences, of unequal lengths or unequal widths."""
    ts = draw(st.lists(st.integers(1, T + 1), min_size=max(N, 2), max_size=max(N, 2)))
    ws = draw(st.lists(st.integers(1, w + 1), min_size=len(ts), max_size=len(ts)))
    assume(len(set(ts)) > 1 or len(set(ws)) > 1)
    return [[[0.5] * wn for _ in range(tn)] for tn, wn in zip(ts, ws)]


FORWARD_KINDS = [
    "ndim", "width", "N differs", "T differs", "T=0", *(f"dtype {k}" for k in NON_NUMERIC), "ragged",
    "lengths too long", "lengths negative", "lengths shape", "lengths fraction", "lengths non-finite",
    "lengths strings", "lengths bools", "lengths objects",
    "state not a dict", "state unknown name", "state shape", "state dtype", "state ragged",
    "unknown input", "missing input", "steps"]


@st.composite
def bad_forward_calls(draw, case, what):
    """(kwargs of forward, the names its message may name): ``what`` wrong, all else right."""
    net, rng, N, T = case.net, np.random.default_rng(case.seed), case.N, case.T
    seqs = dict(case.seqs)
    kw = {"lengths": case.lengths, "state": case.state}
    delayed = sorted(name for name, D in net.depth.items() if D)
    inp = draw(st.sampled_from(sorted(net.inputs)), label="input")
    w = net.inputs[inp]
    names = {inp}
    if what == "ndim":
        shape = draw(st.lists(st.integers(1, 3), max_size=5).filter(lambda s: len(s) != 3))
        seqs[inp] = rng.normal(size=shape) if shape else 1.0
    elif what == "width":
        seqs[inp] = rng.normal(size=(N, T, draw(st.integers(0, 5).filter(lambda v: v != w))))
    elif what in ("N differs", "T differs"):
        shape = [N, T, w]
        axis = 0 if what == "N differs" else 1
        shape[axis] = draw(st.integers(1, 6).filter(lambda v: v != shape[axis]))
        seqs[inp] = rng.normal(size=shape)
        names = set(net.inputs)
    elif what == "T=0":
        seqs = {k: v[:, :0] for k, v in seqs.items()}
        names = set(net.inputs)
    elif what.startswith("dtype"):
        seqs[inp] = _non_numeric(what.split()[1], (N, T, w), rng)
    elif what == "ragged":
        seqs[inp] = _ragged(draw, N, T, w)
    elif what.startswith("lengths"):
        names = {"lengths"}
        good = draw(st.lists(st.integers(0, T), min_size=N, max_size=N))
        i = draw(st.integers(0, N - 1))
        if what == "lengths too long":
            good[i] = draw(st.integers(T + 1, T + 5))
            kw["lengths"] = np.array(good)
        elif what == "lengths negative":
            good[i] = draw(st.integers(-5, -1))
            kw["lengths"] = good
        elif what == "lengths shape":
            kw["lengths"] = np.full(_bad_shape(draw, (N,)), T)
        elif what == "lengths fraction":
            good = [float(v) for v in good]
            good[i] = draw(st.integers(0, T - 1)) + draw(st.sampled_from([0.5, 0.25, 1e-3, 0.999]))
            kw["lengths"] = np.array(good)
        elif what == "lengths non-finite":
            good = np.array(good, dtype=float)
            good[i] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
            kw["lengths"] = good
        elif what == "lengths strings":
            kw["lengths"] = [str(v) for v in good]
        elif what == "lengths bools":
            kw["lengths"] = np.array(good, dtype=bool)
        else:
            kw["lengths"] = np.array(good, dtype=object)
    elif what.startswith("state"):
        names = {"state"}
        state = dict(case.state)
        if what == "state not a dict":
            state = draw(st.sampled_from([[1, 2], "h", 3.0, (("l0", 1),), np.zeros((N, 1, 1))]))
        elif what == "state unknown name":
            name = draw(st.one_of(words, st.sampled_from(sorted(net.depth))).filter(lambda v: v not in delayed))
            state[name] = rng.normal(size=(N, 1, net.node_size(name) if name in net.depth else 1))
        else:
            assume(delayed)
            name = draw(st.sampled_from(delayed), label="node")
            good = (N, net.depth[name], net.node_size(name))
            if what == "state shape":
                state[name] = rng.normal(size=_bad_shape(draw, good))
            elif what == "state dtype":
                state[name] = _non_numeric(draw(st.sampled_from(NON_NUMERIC)), good, rng)
            else:
                state[name] = _ragged(draw, *good)
        kw["state"] = state
    elif what == "unknown input":
        name = draw(words.filter(lambda v: v not in net.inputs and v not in ("lengths", "state", "steps")))
        seqs[name] = case.seqs[inp]
        names = {name}
    elif what == "missing input":
        del seqs[inp]
    else:
        assert what == "steps"
        names = {"steps"}
        kw["steps"] = draw(st.sampled_from([0, -1, T + 1, T + 3, 2.5, True, "3", np.float64(T)])
                           .filter(lambda v: v != T or isinstance(v, (bool, float))))
    x = seqs.pop("x", None)
    return dict(x=x, **kw, **seqs), names


def _snapshot(net):
    return {k: (v.dtype, v.shape, v.tobytes()) for k, v in {**net.params, **net.constants}.items()}


def _assert_clear_error(exc, names):
    """A ValueError / TypeError of ours (not a subclass such as NumPy's AxisError, which is
    also an IndexError) whose message names what was wrong and quotes no NumPy internals."""
    assert type(exc) in (ValueError, TypeError), f"{type(exc).__name__}: {exc}"
    message = str(exc)
    assert not INTERNAL.search(message), message
    assert any(re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", message) for n in names), (names, message)


@pytest.mark.parametrize("kind", FORWARD_KINDS)
@_settings(10)
@given(case=cases(second_input=True), backend=st.sampled_from(BACKENDS), data=st.data())
def test_bad_inputs_to_forward_raise_a_clear_error_and_change_nothing(kind, case, backend, data):
    net = case.net
    net.backend = backend
    kw, names = data.draw(bad_forward_calls(case, kind), label="call")
    before, (y0, _) = _snapshot(net), case.forward()
    with pytest.raises(Exception) as info:
        net.forward(**kw)
    _assert_clear_error(info.value, names)
    assert _snapshot(net) == before
    assert np.array_equal(case.forward()[0], y0)                 # and it computes what it did


DY_KINDS = ["shape", *(f"dtype {k}" for k in NON_NUMERIC), "ragged"]
DSTATE_KINDS = ["unknown name", "not a dict", "shape", *(f"dtype {k}" for k in NON_NUMERIC), "ragged"]


@st.composite
def bad_dys(draw, case, what):
    """A dy that backward must refuse."""
    rng, shape = np.random.default_rng(case.seed), (case.N, case.T, case.net.n_out)
    if what == "shape":
        return rng.normal(size=_bad_shape(draw, shape))
    if what == "ragged":
        return _ragged(draw, *shape)
    return _non_numeric(what.split()[1], shape, rng)


@st.composite
def bad_dstates(draw, case, what):
    """A gradient of the final state that backward_full must refuse."""
    rng = np.random.default_rng(case.seed)
    net, delayed = case.net, sorted(name for name, D in case.net.depth.items() if D)
    if what == "unknown name":
        name = draw(st.one_of(words, st.sampled_from(sorted(net.depth))).filter(lambda v: v not in delayed))
        return {name: np.zeros((case.N, 1, 1))}
    if what == "not a dict":
        return draw(st.sampled_from([[1, 2], "h", 3.0, np.zeros((case.N, 1, 1))]))
    assume(delayed)
    name = draw(st.sampled_from(delayed), label="node")
    good = (case.N, net.depth[name], net.node_size(name))
    if what == "shape":
        return {name: rng.normal(size=_bad_shape(draw, good))}
    if what == "ragged":
        return {name: _ragged(draw, *good)}
    return {name: _non_numeric(what.split()[1], good, rng)}


def _backward_refuses(case, backend, bad_call):
    """``bad_call(net, cache, dy)`` raises a clear error; the parameters are bitwise as they
    were and the cache gives the very gradients it gave before."""
    net = case.net
    net.backend = backend
    y, cache = case.forward()
    dy = np.random.default_rng(case.seed + 2).normal(size=y.shape)
    dstate = {k: np.ones_like(v) for k, v in cache.state.items()}
    before = _snapshot(net), net.backward_full(dy, cache, dstate=dstate)
    with pytest.raises(Exception) as info:
        bad_call(net, cache, dy)
    after = _snapshot(net), net.backward_full(dy, cache, dstate=dstate)
    assert after[0] == before[0]
    for old, new in zip(before[1], after[1]):
        assert old.keys() == new.keys() and all(np.array_equal(old[k], new[k]) for k in old)
    return info.value


@pytest.mark.parametrize("kind", DY_KINDS)
@_settings(10)
@given(case=cases(), backend=st.sampled_from(BACKENDS), data=st.data())
def test_bad_dy_to_backward_raises_a_clear_error_and_changes_nothing(kind, case, backend, data):
    dy = data.draw(bad_dys(case, kind), label="dy")
    exc = _backward_refuses(case, backend, lambda net, cache, _: net.backward(dy, cache))
    _assert_clear_error(exc, {"dy"})


@pytest.mark.parametrize("kind", DSTATE_KINDS)
@_settings(10)
@given(case=cases(), backend=st.sampled_from(BACKENDS), data=st.data())
def test_bad_dstate_to_backward_full_raises_a_clear_error_and_changes_nothing(kind, case, backend, data):
    dstate = data.draw(bad_dstates(case, kind), label="dstate")
    exc = _backward_refuses(case, backend, lambda net, cache, dy: net.backward_full(dy, cache, dstate=dstate))
    _assert_clear_error(exc, {"dstate"})


@_settings(25)
@given(st.integers(0, 5), st.integers(0, 7), st.integers(0, 1), st.sampled_from([np.nan, np.inf, -np.inf]),
       st.sampled_from(["x", "d"]))
def test_fit_names_the_first_non_finite_value_and_changes_nothing(n, t, f, bad, where):
    import unrolled
    rng = np.random.default_rng(0)
    x, d = rng.normal(size=(6, 8, 2)), rng.normal(size=(6, 8, 2))
    (x if where == "x" else d)[n, t, f] = bad
    model = unrolled.RNN(2, 2, hidden=(3,), dtype=np.float64, seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(ValueError, match=f"{where} holds {bad} at sequence {n}, step {t}, feature {f}"):
        fit(model, x, d, divergence=SquaredError(), optimizer=SGD(0.1), epochs=2, progress=False)
    for k in before:
        np.testing.assert_array_equal(model.params[k], before[k])


# ------------------------------------------- Jacobians over random columns (analysis.jacobian)
@_settings(25)
@given(cases(max_N=2, max_T=5, blocked=False), st.sampled_from(["forward", "reverse"]))
def test_the_jacobian_equals_central_finite_differences(case, method):
    """Every output at every valid step against every parameter, 1e-6 relative."""
    from unrolled.analysis import jacobian
    assume(_relu_off_its_kink(case))
    net = case.net
    kw = dict(lengths=case.lengths, state=case.state, **case.others)
    J = jacobian(net, case.x, method=method, **kw)
    cols, eps = [], 1e-6
    for p in net.params.values():
        flat = p.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = net.forward(case.x, **kw)[0]
            flat[i] = old - eps
            down = net.forward(case.x, **kw)[0]
            flat[i] = old
            cols.append((up - down) / (2 * eps))
    want = np.stack(cols, axis=-1) if cols else np.zeros(J.shape)
    scale = max(np.abs(want).max(initial=0.0), 1e-3)
    assert np.abs(J - want).max(initial=0.0) / scale < 1e-6


@_settings(25)
@given(cases(max_N=3, max_T=5))
def test_j_transpose_dy_is_the_bptt_gradient_blocked_links_included(case):
    from unrolled.analysis import jacobian
    net = case.net
    y, cache = case.forward()
    dy = np.random.default_rng(case.seed + 2).normal(size=y.shape)
    lengths = cache.lengths
    dy[~(np.arange(case.T)[None, :] < lengths[:, None])] = 0.0
    grads, _ = net.backward(dy, cache)
    want = np.concatenate([grads[k].ravel() for k in net.params] or [np.zeros(0)])
    J = jacobian(net, case.x, lengths=case.lengths, state=case.state, **case.others)
    np.testing.assert_allclose(np.einsum("ntk,ntkp->p", dy, J), want, rtol=1e-9, atol=1e-11)
