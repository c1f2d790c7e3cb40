"""Properties of the engine over columns and inputs that hypothesis draws (and shrinks).

The columns are those of ``test_network.random_network``: 2-4 layers, delays 0-3, fixed
``s * I`` and blocked links, learned, zero and given histories; hypothesis draws the
column's seed, the batch, the lengths, the backend and where to cut a stream, and on a
failure shrinks them to the smallest case. Settings: ``derandomize=True`` (every run, CI's
too, tries the same examples; a failure is reproducible as it was seen) and no example
database (nothing is written beside the tests).
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reference import reference_forward  # noqa: E402
from test_network import given_state, random_network  # noqa: E402
from unrolled import fit  # noqa: E402
from unrolled.analysis import gradcheck  # noqa: E402
from unrolled.divergences import SquaredError  # noqa: E402
from unrolled.optim import SGD  # noqa: E402

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None)
backends = st.sampled_from(["fast", "numpy"])


@st.composite
def columns(draw, max_T=8, blocking=True):
    """(net, x, u, lengths, state): a random column and a batch for it (with blocked links
    where ``blocking``: BPTT through a blocked link is by design not the true derivative)."""
    net, rng = random_network(draw(st.integers(0, 10_000)), blocked=blocking and draw(st.booleans()))
    net.backend = draw(backends)
    N, T = draw(st.integers(1, 4)), draw(st.integers(1, max_T))
    lengths = np.array(draw(st.lists(st.integers(0, T), min_size=N, max_size=N)))
    x, u = rng.normal(size=(N, T, net.inputs["x"])), rng.normal(size=(N, T, 2))
    state = given_state(net, rng, N, share=draw(st.sampled_from([0.0, 0.5, 1.0])))
    return net, x, u, lengths, state


@SETTINGS
@given(columns())
def test_forward_equals_the_reference_loop(case):
    net, x, u, lengths, state = case
    y, cache = net.forward(x, u=u, lengths=lengths, state=state)
    np.testing.assert_allclose(y, reference_forward(net, x, lengths, state, u=u), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(columns(max_T=6, blocking=False))
def test_bptt_equals_finite_differences(case):
    net, x, u, lengths, state = case
    d = np.random.default_rng(len(x)).normal(size=(len(x), x.shape[1], net.n_out))
    check = gradcheck(net, x, d, SquaredError(), lengths=lengths, state=state, inputs={"u": u})
    assert check.max_error < 1e-6, str(check)


@SETTINGS
@given(columns(max_T=8), st.lists(st.integers(1, 7), max_size=3))
def test_a_stream_cut_anywhere_equals_one_pass(case, cuts):
    net, x, u, _, state = case
    T = x.shape[1]
    bounds = sorted({0, T, *[c for c in cuts if c < T]})
    whole, cache = net.forward(x, u=u, state=state)
    parts, carried = [], state
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        y, c = net.forward(x[:, lo:hi], u=u[:, lo:hi], state=carried)
        parts.append(y)
        carried = c.state
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-12, atol=1e-12)
    for name in cache.state:
        np.testing.assert_allclose(carried[name], cache.state[name], rtol=1e-12, atol=1e-12)


BAD_FORWARD = {
    "x 2-D": lambda x, u, kw: ((x[0],), {"u": u[0]}),
    "x too wide": lambda x, u, kw: ((np.concatenate([x, x], axis=2),), {"u": u}),
    "N differs between inputs": lambda x, u, kw: ((x,), {"u": u[:-1] if len(u) > 1 else np.concatenate([u, u])}),
    "T = 0": lambda x, u, kw: ((x[:, :0],), {"u": u[:, :0]}),
    "strings": lambda x, u, kw: ((x.astype(str),), {"u": u}),
    "objects": lambda x, u, kw: ((x.astype(object),), {"u": u}),
    "bools": lambda x, u, kw: ((x > 0,), {"u": u}),
    "ragged list": lambda x, u, kw: (([[[1.0]], [[1.0], [2.0]]],), {"u": u}),
    "lengths too long": lambda x, u, kw: ((x,), {"u": u, "lengths": np.full(len(x), x.shape[1] + 1)}),
    "lengths negative": lambda x, u, kw: ((x,), {"u": u, "lengths": -np.ones(len(x), int)}),
    "lengths fractional": lambda x, u, kw: ((x,), {"u": u, "lengths": np.full(len(x), 0.5)}),
    "lengths wrong shape": lambda x, u, kw: ((x,), {"u": u, "lengths": np.ones(len(x) + 1, int)}),
    "state unknown name": lambda x, u, kw: ((x,), {"u": u, "state": {"nope": np.zeros((len(x), 1, 1))}}),
    "state wrong shape": lambda x, u, kw: ((x,), {"u": u, "state": {kw["delayed"]: np.zeros((len(x) + 1, 9, 9))}}),
    "state not a dict": lambda x, u, kw: ((x,), {"u": u, "state": [1, 2]}),
    "unknown input": lambda x, u, kw: ((x,), {"u": u, "w": u}),
    "missing input": lambda x, u, kw: ((x,), {}),
}


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(columns(), st.sampled_from(sorted(BAD_FORWARD)))
def test_bad_inputs_to_forward_raise_a_clear_error_and_change_nothing(case, kind):
    net, x, u, _, _ = case
    delayed = next(name for name, D in net.depth.items() if D)
    args, kw = BAD_FORWARD[kind](x, u, {"delayed": delayed})
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises((ValueError, TypeError)) as info:
        net.forward(*args, **kw)
    assert "broadcast" not in str(info.value) and "operands" not in str(info.value)
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])


@SETTINGS
@given(columns(), st.data())
def test_bad_dy_raises_a_clear_error(case, data):
    net, x, u, lengths, state = case
    y, cache = net.forward(x, u=u, lengths=lengths, state=state)
    shape = list(y.shape)
    shape[data.draw(st.integers(0, 2))] += data.draw(st.integers(1, 2))
    with pytest.raises(ValueError, match="dy"):
        net.backward(np.ones(shape), cache)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
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
