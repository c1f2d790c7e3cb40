"""Impulse responses (how far a net remembers) and gradient flow (how far its gradient reaches)."""

import numpy as np
import pytest

from unrolled import RNN
from unrolled.analysis import gradient_flow, impulse_response, layer_gradients
from unrolled.divergences import CrossEntropy, SquaredError
from unrolled.models.elman import Elman
from unrolled.models.jordan import Jordan
from unrolled.models.narx import NARX
from unrolled.models.statespace import StateSpace
from unrolled.models.tdnn import TDNN


def randomize(model, seed, scale=0.6):
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * scale
    return rng


# ------------------------------------------------------------------ impulse response
@pytest.mark.parametrize("width,hidden", [(3, (4,)), (2, (4, 3))])
def test_tdnn_impulse_response_is_finite(width, hidden):
    m = TDNN(2, 2, width=width, hidden=hidden, dtype=np.float64, seed=0)
    randomize(m, 0)
    r = impulse_response(m, 10, input_index=1)
    assert set(r) == {f"h{l}" for l in range(1, len(hidden) + 1)} | {"y"}
    for name, response in r.items():
        assert response.shape == (10, m.network.layers[name].size)
        assert np.all(np.abs(response[:width + 1]).max(axis=1) > 1e-6), name   # it answers at t = 0 .. width
        assert np.all(response[width + 1:] == 0.0), name                       # and exactly nothing after


def test_linear_tdnn_impulse_response_is_its_taps():
    # identity activation: y(t) = W_o (W_t e_i) amplitude for t <= width, the taps themselves
    m = TDNN(3, 2, width=2, hidden=4, activation="identity", dtype=np.float64, seed=1)
    randomize(m, 1)
    r = impulse_response(m, 5, input_index=2, amplitude=2.5)
    p = m.params
    for t in range(3):
        np.testing.assert_allclose(r["y"][t], 2.5 * p["W[h1->y@0]"] @ p[f"W[x->h1@{t}]"][:, 2], rtol=1e-12)
    assert np.all(r["y"][3:] == 0.0)


def test_linear_rnn_impulse_response_decays_as_the_powers_of_its_recurrence():
    # h(t) = W_r^t W_x e_0 for an impulse at t = 0: y(t) = W_o W_r^t W_x e_0
    m = RNN(1, 1, hidden=(2,), activation="identity", dtype=np.float64, seed=2)
    m.params["W[h1->h1@1]"][...] = [[0.5, 0.2], [-0.1, 0.7]]
    r = impulse_response(m, 6)
    p = m.params
    for t in range(6):
        h = np.linalg.matrix_power(p["W[h1->h1@1]"], t) @ p["W[x->h1@0]"][:, 0]
        np.testing.assert_allclose(r["h1"][t], h, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(r["y"][t], p["W[h1->y@0]"] @ h, rtol=1e-12, atol=1e-15)


RECURRENT = {
    "narx closed": lambda: NARX(2, 1, input_delays=1, output_delays=2, hidden=4, dtype=np.float64, seed=3),
    "jordan": lambda: Jordan(2, 1, hidden=4, dtype=np.float64, seed=3),
    "elman": lambda: Elman(2, 1, hidden=4, dtype=np.float64, seed=3),
    "state space": lambda: StateSpace(2, 1, hidden=4, dtype=np.float64, seed=3),
    "rnn": lambda: RNN(2, 1, hidden=(4,), dtype=np.float64, seed=3),
}


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_nets_answer_an_impulse_long_after(name):
    m = RECURRENT[name]()
    randomize(m, 3, scale=0.8)
    r = impulse_response(m, 12)
    # still answering long after any delay line has let the impulse go (a TDNN: exactly 0) ...
    assert np.abs(r["y"][6:, 0]).min() > 1e-12
    # ... but with weaker and weaker influence
    assert np.abs(r["y"][-1, 0]) < 0.1 * np.abs(r["y"][:3, 0]).max()


def test_open_loop_narx_with_its_teacher_held_is_finite_response():
    m = NARX(2, 1, input_delays=3, output_delays=2, hidden=4, feedback="open", dtype=np.float64, seed=4)
    randomize(m, 4)
    r = impulse_response(m, 10)                          # the teacher is held at zero in both runs
    assert np.all(np.abs(r["y"][:4, 0]) > 0.0) and np.all(r["y"][4:] == 0.0)
    closed = impulse_response(m.closed_loop(), 10)       # the same weights, fed back: it lasts
    np.testing.assert_allclose(closed["y"][0], r["y"][0], rtol=1e-12)
    assert np.all(np.abs(closed["y"][4:, 0]) > 0.0)


def test_impulse_response_errors():
    with pytest.raises(ValueError, match=r"NARX has no input x to put an impulse into \(n_in = 0\)"):
        impulse_response(NARX(0, 1, input_delays=None, output_delays=1), 5)
    with pytest.raises(ValueError, match=r"input_index must be in \[0, 2\), got 2"):
        impulse_response(TDNN(2, 1, width=1), 5, input_index=2)
    with pytest.raises(ValueError, match=r"steps must be a positive integer, got 0"):
        impulse_response(TDNN(2, 1, width=1), 0)


# --------------------------------------------------------------------- gradient flow
def test_layer_gradients_of_an_rnn_match_finite_differences_of_its_state():
    # DIV as a function of h(t) alone: the steps before t as they were, y(t) = W_o h(t) + b_o,
    # and the steps after t continued from the state h(t).
    m = RNN(2, 2, hidden=(3,), dtype=np.float64, seed=5)
    rng = randomize(m, 5)
    N, T = 2, 5
    x, d = rng.normal(size=(N, T, 2)), rng.normal(size=(N, T, 2))
    div = SquaredError()
    grads = layer_gradients(m, x, d, div)
    _, cache = m.forward(x)
    p = m.params

    def loss(t, h):
        parts = [m.predict(x[:, :t])] if t > 0 else []
        parts.append((h @ p["W[h1->y@0]"].T + p["b[y]"])[:, None, :])
        if t < T - 1:
            parts.append(m.predict(x[:, t + 1:], state={"h1": h[:, None, :]}))
        return div(np.concatenate(parts, axis=1), d)[0]

    for t in range(T):
        h = cache.A["h1"][1 + t].copy()                 # (N, H): h(t)
        np.testing.assert_allclose(loss(t, h), div(m.predict(x), d)[0], rtol=1e-13)
        fd = np.zeros_like(h)
        for i in np.ndindex(h.shape):
            old = h[i]
            h[i] = old + 1e-6; up = loss(t, h)
            h[i] = old - 1e-6; down = loss(t, h)
            h[i] = old
            fd[i] = (up - down) / 2e-6
        np.testing.assert_allclose(grads["h1"][:, t], fd, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(grads["y"], div(m.predict(x), d)[1])    # dDIV/dy itself


def test_gradient_stops_at_a_blocked_context_and_not_at_a_full_one():
    rng = np.random.default_rng(6)
    x, d = rng.normal(size=(2, 6, 2)), rng.normal(size=(2, 6, 1))
    lengths = np.array([6, 4])
    div = SquaredError()
    blocked = Elman(2, 1, hidden=3, dtype=np.float64, seed=6)
    randomize(blocked, 6)
    dy = div(blocked.predict(x, lengths=lengths), d, lengths=lengths)[1]
    g = layer_gradients(blocked, x, d, div, lengths=lengths)
    # only the local path h1(t) -> y(t): nothing comes back from later steps
    np.testing.assert_allclose(g["h1"], dy @ blocked.params["W[h1->y@0]"], rtol=1e-12, atol=1e-15)
    assert np.all(g["h1"][1, 4:] == 0.0)                  # padded steps
    full = Elman(2, 1, hidden=3, context_gradient="full", dtype=np.float64, seed=6)
    for k, v in blocked.params.items():
        full.params[k][...] = v
    g_full = layer_gradients(full, x, d, div, lengths=lengths)
    assert np.abs(g_full["h1"][0, :5] - g["h1"][0, :5]).max() > 1e-3   # the future reaches back
    np.testing.assert_allclose(g_full["h1"][:, -1], g["h1"][:, -1], rtol=1e-12)   # the last step has no future


def test_elman_full_has_the_gradient_flow_of_the_rnn():
    rnn = RNN(2, 2, hidden=(3, 2), dtype=np.float64, seed=7)
    elman = Elman(2, 2, hidden=(3, 2), context_gradient="full", dtype=np.float64, seed=7)
    rng = randomize(rnn, 7)
    for k, v in rnn.params.items():
        elman.params[k.replace("W[h1->h1@1]", "W[c1->h1@0]").replace("W[h2->h2@1]", "W[c2->h2@0]")][...] = v
    x, d = rng.normal(size=(2, 5, 2)), rng.normal(size=(2, 5, 2))
    flow_r, flow_e = gradient_flow(rnn, x, d, "mse"), gradient_flow(elman, x, d, "mse")
    for name in ("h1", "h2", "y"):
        np.testing.assert_allclose(flow_e[name], flow_r[name], rtol=1e-12)
    # the context c(t) = h(t-1) carries h's gradient one step back: dDIV/dc(t+1) = W_c^T dz(t+1)
    assert flow_e["c1"].shape == (5,) and flow_e["c1"][0] > 0


@pytest.mark.parametrize("w,activation", [(0.5, "identity"), (2.0, "identity")])
def test_linear_rnn_gradient_vanishes_or_explodes_as_the_powers_of_w(w, activation):
    # only the last step is scored: dDIV/dh(t) = (W_r^T)^(T-1-t) dDIV/dh(T-1), W_r = w I
    T = 8
    m = RNN(1, 1, hidden=(2,), activation=activation, dtype=np.float64, seed=8)
    randomize(m, 8)
    m.params["W[h1->h1@1]"][...] = w * np.eye(2)
    x, d = np.ones((1, T, 1)), np.zeros((1, T, 1))
    flow = gradient_flow(m, x, d, SquaredError(weights=np.r_[np.zeros(T - 1), 1.0]))
    np.testing.assert_allclose(flow["h1"], flow["h1"][-1] * w ** np.arange(T - 1, -1, -1), rtol=1e-12)
    np.testing.assert_array_equal(flow["y"][:-1], 0.0)


def test_tanh_rnn_gradient_vanishes_backwards_in_time():
    # |tanh'| <= 1 and ||W_r|| = 0.6: the flow at least shrinks by 0.6 each step back
    T = 10
    m = RNN(2, 1, hidden=(3,), dtype=np.float64, seed=9)
    rng = randomize(m, 9)
    u, _, vt = np.linalg.svd(rng.normal(size=(3, 3)))
    m.params["W[h1->h1@1]"][...] = 0.6 * u @ vt          # spectral norm 0.6
    x, d = rng.normal(size=(2, T, 2)), rng.normal(size=(2, T, 1))
    flow = gradient_flow(m, x, d, SquaredError(weights=np.r_[np.zeros(T - 1), 1.0]))["h1"]
    assert np.all(flow[:-1] <= 0.6 * flow[1:] * (1 + 1e-12)) and flow[0] > 0


def test_gradient_flow_of_narx_open_is_local_and_closed_reaches_back():
    m = NARX(1, 2, input_delays=1, output_delays=2, hidden=3, feedback="open", dtype=np.float64, seed=10)
    rng = randomize(m, 10)
    x, d = rng.normal(size=(2, 6, 1)), rng.normal(size=(2, 6, 2))
    g_open = layer_gradients(m, x, d, "mse", inputs=m.fit_inputs(x, d))
    dy = SquaredError()(m.predict(x, teacher=d), d)[1]
    np.testing.assert_allclose(g_open["h1"], dy @ m.params["W[h1->y@0]"], rtol=1e-12, atol=1e-15)
    closed = m.closed_loop()
    g_closed = layer_gradients(closed, x, d, "mse")
    # y(t) feeds h1(t+1) and h1(t+2) in closed loop: dDIV/dy(t) gathers them
    dz = g_closed["h1"] * (1 - np.swapaxes(closed.forward(x)[1].A["h1"], 0, 1) ** 2)
    W1, W2 = closed.params["W[y->h1@1]"], closed.params["W[y->h1@2]"]
    expect = SquaredError()(closed.predict(x), d)[1].copy()
    expect[:, :-1] += dz[:, 1:] @ W1
    expect[:, :-2] += dz[:, 2:] @ W2
    np.testing.assert_allclose(g_closed["y"], expect, rtol=1e-12, atol=1e-15)


def test_gradient_flow_with_a_softmax_output_and_cross_entropy():
    m = RNN(2, 3, hidden=(4,), output="softmax", dtype=np.float64, seed=11)
    rng = randomize(m, 11)
    x, labels = rng.normal(size=(2, 5, 2)), rng.integers(0, 3, size=(2, 5))
    y, cache = m.forward(x)
    dy = CrossEntropy()(y, labels)[1]
    grads, _ = m.backward(dy, cache)
    g = layer_gradients(m, x, labels, CrossEntropy())
    # BPTT's weight gradient of h -> y is sum_t dz_y(t)^T h(t), dz_y = dy.dz (the fused softmax)
    h = np.swapaxes(cache.A["h1"][1:], 0, 1)
    np.testing.assert_allclose(grads["W[h1->y@0]"], np.einsum("ntk,nth->kh", dy.dz, h), rtol=1e-12)
    np.testing.assert_allclose(g["h1"][:, -1], dy.dz[:, -1] @ m.params["W[h1->y@0]"], rtol=1e-12)
