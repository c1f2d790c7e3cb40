"""The lecture's family on the one engine: TDNN, NARX, Jordan, Elman, state space with feedback.

Each model is checked against a plain step-by-step reference of its equation, against
finite differences (float64, max_error < 1e-6) in every mode, and, where the lecture
blocks the gradient, against the exact gradient of the same column with the blocked
source recorded as a constant input.
"""

import re

import numpy as np
import pytest

import unrolled
from reference import reference_forward
from unrolled import RNN, Link, Network
from unrolled.analysis import gradcheck
from unrolled.divergences import SquaredError
from unrolled.models.elman import Elman
from unrolled.models.jordan import Jordan
from unrolled.models.narx import NARX
from unrolled.models.statespace import StateSpace
from unrolled.models.tdnn import TDNN


def randomize(model, seed, scale=0.6):
    """Non-trivial values in every parameter (biases and learned histories included)."""
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * scale
    return rng


def constant_input_twin(net, cache):
    """The same column with every gradient-blocked link reading a recorded constant input.

    The lecture: a blocked link treats its source as a constant input. The twin reads the
    source's recorded sequence (and history) as an external input over a fixed link of
    the same weight, so it computes the same outputs, and its exact gradient (finite
    differences) must be the blocked model's BPTT.
    """
    inputs, links, extra, state = dict(net.inputs), [], {}, {}
    for k, link in enumerate(net.links):
        if link.gradient != "blocked":
            links.append(link)
            continue
        name = f"const{k}"
        inputs[name] = net.layers[link.src].size
        links.append(Link(name, link.dst, link.delay, weight=net.weight(link).copy(), trainable=False))
        D, buf = net.depth[link.src], cache.A[link.src]            # (D + T, N, size)
        extra[name] = np.swapaxes(buf[D:], 0, 1).copy()
        state[name] = np.swapaxes(buf[D - link.delay:D], 0, 1).copy()
    twin = Network(inputs, dict(net.layers), links, net.output, dtype=np.float64)
    for key, value in twin.params.items():
        value[...] = net.params[key]
    return twin, extra, state


def check_blocked_against_twin(model, x, d, lengths):
    div = SquaredError()
    y, cache = model.forward(x, lengths=lengths)
    grads, dx = model.backward(div(y, d, lengths=lengths)[1], cache)
    twin, extra, state = constant_input_twin(model.network, cache)
    np.testing.assert_allclose(twin.forward(x, lengths=lengths, state=state, **extra)[0], y, rtol=1e-12, atol=1e-12)
    check = gradcheck(twin, x, d, div, lengths=lengths, state=state, inputs=extra)
    assert check.max_error < 1e-6, str(check)
    assert set(check.numeric) == set(model.params) | {"dx"}
    for key, g in check.numeric.items():
        np.testing.assert_allclose(dx if key == "dx" else grads[key], g, rtol=1e-6, atol=1e-9, err_msg=key)
    # ... and blocking matters: the model's own (exact) gradient is something else.
    assert gradcheck(model, x, d, div, lengths=lengths).max_error > 1e-3


# ------------------------------------------------------------------------- TDNN
def test_tdnn_equals_a_sliding_window_mlp_on_the_same_weights():
    width = 3
    m = TDNN(2, 2, width=width, hidden=(4, 3), dtype=np.float64, seed=0)
    rng = randomize(m, 0)
    N, T = 3, 7
    x = rng.normal(size=(N, T, 2))
    history = rng.normal(size=(N, width, 2))              # X(-3), X(-2), X(-1), oldest first
    lengths = np.array([7, 3, 5])
    y = m.predict(x, lengths=lengths, state={"x": history})
    p = m.params
    for n in range(N):
        seq = np.concatenate([history[n], x[n, :lengths[n]]])   # seq[t + width] = X(t)
        for t in range(lengths[n]):
            window = [seq[t + width - k] for k in range(width + 1)]        # X(t), X(t-1), ..., X(t-3)
            h1 = np.tanh(sum(p[f"W[x->h1@{k}]"] @ window[k] for k in range(width + 1)) + p["b[h1]"])
            h2 = np.tanh(p["W[h1->h2@0]"] @ h1 + p["b[h2]"])
            np.testing.assert_allclose(y[n, t], p["W[h2->y@0]"] @ h2 + p["b[y]"], rtol=1e-12, atol=1e-12)
        assert np.all(y[n, lengths[n]:] == 0.0)
    # without a given history the inputs before t = 0 are zeros
    np.testing.assert_allclose(m.predict(x[:1]), m.predict(x[:1], state={"x": np.zeros((1, width, 2))}),
                               rtol=0, atol=0)
    assert set(p) == {"W[x->h1@0]", "W[x->h1@1]", "W[x->h1@2]", "W[x->h1@3]", "W[h1->h2@0]", "W[h2->y@0]",
                      "b[h1]", "b[h2]", "b[y]"}
    assert m.network.schedule == [(["h1"], False), (["h2"], False), (["y"], False)]   # no time loop


def test_tdnn_impulse_at_t0_changes_exactly_the_outputs_t0_to_width():
    width, T = 4, 12
    m = TDNN(3, 2, width=width, hidden=(5,), dtype=np.float64, seed=1)
    rng = randomize(m, 1)
    x = rng.normal(size=(1, T, 3))
    kicked = x.copy()
    kicked[0, 0, 1] += 1.0
    change = np.abs(m.predict(kicked) - m.predict(x)).max(axis=2)[0]   # (T,)
    assert np.all(change[:width + 1] > 1e-6)
    assert np.all(change[width + 1:] == 0.0)                            # exactly: the windows are equal


@pytest.mark.parametrize("width,hidden,output", [(0, (3,), "identity"), (2, (3, 2), "sigmoid")])
def test_tdnn_gradients_match_finite_differences(width, hidden, output):
    m = TDNN(2, 2, width=width, hidden=hidden, output=output, dtype=np.float64, seed=2)
    rng = randomize(m, 2)
    x, d = rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 6, 2))
    state = {"x": rng.normal(size=(3, width, 2))} if width else None
    check = gradcheck(m, x, d, SquaredError(), lengths=[6, 2, 4], state=state)
    assert check.max_error < 1e-6, str(check)


# ------------------------------------------------------------------------- NARX
def narx_step(p, input_delays, output_delays, x_at, y_at):
    """The lecture's equation for one step, one hidden layer, read literally:
    h = tanh(sum_i W_xi X(t-i) + sum_k W_yk Y(t-k) + b),  Y(t) = W_o h + b_o."""
    z = p["b[h1]"].copy()
    for i in input_delays or ():
        z = z + p[f"W[x->h1@{i}]"] @ x_at(i)
    for k in output_delays:
        z = z + p[f"W[y->h1@{k}]"] @ y_at(k)
    return p["W[h1->y@0]"] @ np.tanh(z) + p["b[y]"]


def at(seq, history, t, width):
    """seq[t] for t >= 0; before: the given history (oldest first) or zeros."""
    if t >= 0:
        return seq[t]
    if history is None or -t > len(history):
        return np.zeros(width)
    return history[len(history) + t]


def narx_reference(m, x, T, *, teacher=None, x_hist=None, y_hist=None):
    """One sequence, step by step; closed loop unless a teacher is given."""
    p, c = m.params, m.get_config()
    ys = []
    for t in range(T):
        fed = ys if teacher is None else teacher
        ys.append(narx_step(p, c["input_delays"], c["output_delays"],
                            lambda i: at(x, x_hist, t - i, c["n_in"]),
                            lambda k: at(fed, y_hist, t - k, c["n_out"])))
    return np.array(ys)


NARX_CASES = {
    "int delays": dict(n_in=2, n_out=2, input_delays=2, output_delays=2),
    "list delays": dict(n_in=2, n_out=1, input_delays=[0, 3], output_delays=[1, 3]),
    "lagged input only": dict(n_in=1, n_out=2, input_delays=[2], output_delays=[2]),
    "no exogenous input": dict(n_in=0, n_out=2, input_delays=None, output_delays=3),
}


def narx_data(m, rng, N=3, T=7):
    c = m.get_config()
    x = rng.normal(size=(N, T, c["n_in"]))
    d = rng.normal(size=(N, T, c["n_out"]))
    K, L = max(c["output_delays"]), max(c["input_delays"] or [0])
    state = {"y": rng.normal(size=(N, K, c["n_out"]))}
    if L:
        state["x"] = rng.normal(size=(N, L, c["n_in"]))
    return x, d, state


@pytest.mark.parametrize("case", NARX_CASES)
def test_narx_closed_loop_equals_a_plain_python_loop(case):
    m = NARX(**NARX_CASES[case], hidden=4, dtype=np.float64, seed=3)
    rng = randomize(m, 3)
    x, _, state = narx_data(m, rng)
    lengths = np.array([7, 3, 5])
    y = m.predict(x, lengths=lengths, state=state)
    for n in range(len(x)):
        x_hist = state["x"][n] if "x" in state else None
        ref = narx_reference(m, x[n], lengths[n], x_hist=x_hist, y_hist=state["y"][n])
        np.testing.assert_allclose(y[n, :lengths[n]], ref, rtol=1e-12, atol=1e-12)
    # zero histories when none is given
    np.testing.assert_allclose(m.predict(x[:1]), narx_reference(m, x[0], 7)[None], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", NARX_CASES)
def test_narx_open_loop_reads_the_teacher(case):
    m = NARX(**NARX_CASES[case], hidden=4, feedback="open", dtype=np.float64, seed=4)
    rng = randomize(m, 4)
    x, d, state = narx_data(m, rng)
    y = m.predict(x, teacher=d, state=state)
    for n in range(len(x)):
        x_hist = state["x"][n] if "x" in state else None
        ref = narx_reference(m, x[n], 7, teacher=d[n], x_hist=x_hist, y_hist=state["y"][n])
        np.testing.assert_allclose(y[n], ref, rtol=1e-12, atol=1e-12)
    assert m.network.schedule == [(["h1"], False), (["y"], False)]      # no cycle: all steps at once
    # fed its own closed-loop outputs as the teacher, the open loop gives them back
    y_closed = m.closed_loop().predict(x, state=state)
    np.testing.assert_allclose(m.predict(x, teacher=y_closed, state=state), y_closed, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("feedback", ["closed", "open"])
@pytest.mark.parametrize("case", NARX_CASES)
def test_narx_gradients_match_finite_differences(case, feedback):
    m = NARX(**NARX_CASES[case], hidden=3, feedback=feedback, dtype=np.float64, seed=5)
    rng = randomize(m, 5)
    x, d, state = narx_data(m, rng, N=3, T=6)
    lengths = np.array([6, 2, 4])
    check = gradcheck(m, x, d, SquaredError(), lengths=lengths, state=state, inputs=m.fit_inputs(x, d))
    assert check.max_error < 1e-6, str(check)
    assert set(check.bptt) == set(m.params) | {"dx"}


def test_narx_two_hidden_layers_closed_loop_gradients():
    m = NARX(2, 2, input_delays=1, output_delays=[1, 2], hidden=(3, 2), activation="sigmoid",
             dtype=np.float64, seed=6)
    rng = randomize(m, 6, scale=1.0)
    x, d, _ = narx_data(m, rng, N=2, T=6)
    check = gradcheck(m, x, d, SquaredError(), lengths=[6, 3])
    assert check.max_error < 1e-6, str(check)
    assert m.network.schedule == [(["h1", "h2", "y"], True)]


def test_narx_switching_modes_keeps_the_very_same_weight_arrays():
    m = NARX(2, 1, input_delays=1, output_delays=2, hidden=3, dtype=np.float64, seed=7)
    arrays = dict(m.params)
    keys = list(m.params)
    m.feedback = "open"
    assert list(m.params) == keys and all(m.params[k] is arrays[k] for k in keys)
    assert m.network.params["W[teacher->h1@2]"] is arrays["W[y->h1@2]"]
    twin = m.closed_loop()
    assert twin.feedback == "closed" and m.feedback == "open"
    assert all(twin.params[k] is arrays[k] for k in keys)
    # training one trains the other: an in-place update shows in both modes
    rng = np.random.default_rng(7)
    x, d = rng.normal(size=(2, 5, 2)), rng.normal(size=(2, 5, 1))
    before = twin.predict(x)
    unrolled.optim.SGD(lr=0.1).step(m.params, m.backward(np.ones((2, 5, 1)), m.forward(x, teacher=d)[1])[0])
    assert not np.allclose(twin.predict(x), before)
    # a pass keeps the mode it ran in: switching before backward changes nothing
    y, cache = m.forward(x, teacher=d)
    grads = m.backward(np.ones_like(y), cache)[0]
    m.feedback = "closed"
    again = m.backward(np.ones_like(y), cache)[0]
    assert all(np.array_equal(grads[k], again[k]) for k in keys)
    # the initial weights never depend on the mode
    a = NARX(2, 1, input_delays=1, output_delays=2, hidden=3, seed=11)
    b = NARX(2, 1, input_delays=1, output_delays=2, hidden=3, seed=11, feedback="open")
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_narx_state_names_the_output_history_y_in_both_modes():
    m = NARX(1, 1, input_delays=1, output_delays=2, hidden=3, feedback="open", dtype=np.float64, seed=8)
    randomize(m, 8)
    rng = np.random.default_rng(8)
    x, d = rng.normal(size=(2, 9, 1)), rng.normal(size=(2, 9, 1))
    # an open-loop pass over the first 5 steps leaves the last true outputs as "y"
    _, cache = m.forward(x[:, :5], teacher=d[:, :5])
    np.testing.assert_array_equal(cache.state["y"], d[:, 3:5])
    np.testing.assert_array_equal(cache.state["x"], x[:, 4:5])
    # ... from which the open loop continues exactly
    np.testing.assert_allclose(m.predict(x[:, 5:], teacher=d[:, 5:], state=cache.state),
                               m.predict(x, teacher=d)[:, 5:], rtol=1e-12, atol=1e-12)
    # the gradient w.r.t. the given output history comes back under "y" too
    y, cache = m.forward(x, teacher=d, state={"y": d[:, :2]})
    _, _, dstate = m.backward_full(np.ones_like(y), cache)
    assert set(dstate) == {"y"}


def test_narx_without_exogenous_input_runs_from_steps_or_an_empty_x():
    m = NARX(0, 2, input_delays=None, output_delays=2, hidden=3, dtype=np.float64, seed=9)
    randomize(m, 9)
    y_hist = np.random.default_rng(9).normal(size=(2, 2, 2))
    y1 = m.predict(np.zeros((2, 6, 0)), state={"y": y_hist})
    y2 = m.predict(steps=6, state={"y": y_hist})
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_allclose(y1[1], narx_reference(m, None, 6, y_hist=y_hist[1]), rtol=1e-12, atol=1e-12)
    _, dx = m.backward(np.ones_like(y1), m.forward(steps=6, state={"y": y_hist})[1])
    assert m.n_in == 0 and dx.shape == (2, 6, 0)


def narx_forecast_reference(m, x_past, y_past, horizon, x_future):
    """One sequence: the known past as it was, then the model's own outputs fed back."""
    c = m.get_config()
    T = len(y_past)
    xs = None if x_future is None else np.concatenate([x_past, x_future])
    ys = list(y_past)
    for t in range(T, T + horizon):
        ys.append(narx_step(m.params, c["input_delays"], c["output_delays"],
                            lambda i: at(xs, None, t - i, c["n_in"]), lambda k: at(ys, None, t - k, c["n_out"])))
    return np.array(ys[T:])


@pytest.mark.parametrize("case", ["int delays", "list delays", "no exogenous input"])
@pytest.mark.parametrize("feedback", ["closed", "open"])
def test_narx_forecast_equals_a_step_by_step_closed_loop(case, feedback):
    m = NARX(**NARX_CASES[case], hidden=4, feedback=feedback, dtype=np.float64, seed=10)
    rng = randomize(m, 10)
    n_in, n_out = m.get_config()["n_in"], m.get_config()["n_out"]
    N, Tp, H = 3, 8, 5
    x_past, y_past = rng.normal(size=(N, Tp, n_in)), rng.normal(size=(N, Tp, n_out))
    x_future = rng.normal(size=(N, H, n_in)) if n_in else None
    lengths = np.array([8, 4, 6])
    y = m.forecast(x_past if n_in else None, y_past, H, x_future=x_future, lengths=lengths)
    assert y.shape == (N, H, n_out)
    for n in range(N):
        L = lengths[n]
        ref = narx_forecast_reference(m, x_past[n, :L], y_past[n, :L], H, None if x_future is None else x_future[n])
        np.testing.assert_allclose(y[n], ref, rtol=1e-12, atol=1e-12)
    assert m.feedback == feedback                                   # forecasting leaves the mode alone


def test_narx_fit_in_open_loop_then_forecast_in_closed_loop():
    # y(t) = 0.8 y(t-1) - 0.5 y(t-2) + 0.3 u(t): a linear system the net can learn
    rng = np.random.default_rng(12)
    N, T = 8, 40
    u = rng.normal(size=(N, T, 1))
    y = np.zeros((N, T, 1))
    for t in range(T):
        y[:, t] = 0.3 * u[:, t] + (0.8 * y[:, t - 1] if t >= 1 else 0) - (0.5 * y[:, t - 2] if t >= 2 else 0)
    m = NARX(1, 1, input_delays=0, output_delays=2, hidden=4, feedback="open", dtype=np.float64, seed=12)
    assert m.fit_inputs(u, y).keys() == {"teacher"}
    history = unrolled.fit(m, u[:, :30], y[:, :30], divergence="mse", optimizer=unrolled.optim.Adam(lr=0.02),
                           epochs=150, batch_size=8, progress=False, seed=0)
    assert history.loss[-1] < 0.05 * history.loss[0]
    forecast = m.forecast(u[:, :30], y[:, :30], 10, x_future=u[:, 30:])
    persistence = np.mean((y[:, 29:30] - y[:, 30:]) ** 2)
    assert np.mean((forecast - y[:, 30:]) ** 2) < 0.2 * persistence


def test_narx_errors_say_what_was_expected():
    with pytest.raises(ValueError, match=r"n_in=0 has no input to delay: pass input_delays=None"):
        NARX(0, 1, input_delays=2, output_delays=1)
    with pytest.raises(ValueError, match=r"n_in=2 needs input_delays"):
        NARX(2, 1, input_delays=None, output_delays=1)
    with pytest.raises(ValueError, match=r"output_delays must be >= 1, got 0"):
        NARX(1, 1, input_delays=0, output_delays=0)
    with pytest.raises(ValueError, match=r"each of output_delays must be >= 1, got 0"):
        NARX(1, 1, input_delays=0, output_delays=[0, 1])
    with pytest.raises(ValueError, match=r"input_delays must not repeat a delay"):
        NARX(1, 1, input_delays=[1, 1], output_delays=1)
    with pytest.raises(ValueError, match=r"feedback must be one of \('closed', 'open'\), got 'parallel'"):
        NARX(1, 1, input_delays=0, output_delays=1, feedback="parallel")
    m = NARX(1, 1, input_delays=0, output_delays=1)
    x = np.zeros((1, 3, 1))
    with pytest.raises(ValueError, match=r"closed-loop NARX feeds back its own outputs and reads no teacher"):
        m.forward(x, teacher=x)
    with pytest.raises(ValueError, match=r"open-loop NARX feeds back the true past outputs: pass teacher="):
        m.open_loop().forward(x)
    with pytest.raises(ValueError, match=r"pass x_future of shape \(N, 4, 1\)"):
        m.forecast(x, x, 4)
    with pytest.raises(ValueError, match=r"needs the number of steps: pass x of shape \(N, T, 0\) or steps=T"):
        NARX(0, 1, input_delays=None, output_delays=1).forward(None)


# ----------------------------------------------------------------------- Jordan
def test_jordan_memory_is_the_running_average_of_past_outputs():
    decay = 0.3
    m = Jordan(2, 2, hidden=(4, 3), decay=decay, dtype=np.float64, seed=13)
    rng = randomize(m, 13)
    x = rng.normal(size=(2, 8, 2))
    m0, y0 = rng.normal(size=(2, 1, 2)), rng.normal(size=(2, 1, 2))
    for state in (None, {"m": m0, "y": y0}):
        y, cache = m.forward(x, state=state)
        memory = np.swapaxes(cache.A["m"][1:], 0, 1)              # (N, T, n_out): m(0) .. m(T-1)
        mem = np.zeros((2, 2)) if state is None else m0[:, 0]      # m(-1)
        prev = np.zeros((2, 2)) if state is None else y0[:, 0]     # y(-1)
        for t in range(8):
            mem = decay * mem + (1 - decay) * prev                 # m(t) = decay m(t-1) + (1-decay) y(t-1)
            np.testing.assert_allclose(memory[:, t], mem, rtol=1e-12, atol=1e-14)
            prev = y[:, t]
    assert set(m.params) == {"W[x->h1@0]", "W[m->h1@0]", "W[h1->h2@0]", "W[h2->y@0]", "b[h1]", "b[h2]", "b[y]"}
    assert m.network.constants["W[m->m@1]"].tolist() == [[0.3, 0.0], [0.0, 0.3]]


@pytest.mark.parametrize("hidden,decay", [((3,), 0.5), ((3, 2), 0.8)])
def test_jordan_gradient_is_that_of_a_constant_memory_input(hidden, decay):
    # No gradient crosses the memory: BPTT equals the exact gradient of the column in
    # which m's sequence is a recorded constant input.
    m = Jordan(2, 2, hidden=hidden, decay=decay, dtype=np.float64, seed=14)
    rng = randomize(m, 14)
    x, d = rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 6, 2))
    check_blocked_against_twin(m, x, d, lengths=np.array([6, 3, 5]))


def test_jordan_constant_plan():
    m = Jordan(3, 2, hidden=4, dtype=np.float64, seed=15)
    rng = randomize(m, 15)
    plan = rng.normal(size=(2, 3))
    full = np.repeat(plan[:, None, :], 6, axis=1)
    y, cache = m.forward(plan, steps=6)
    y_full, cache_full = m.forward(full)
    np.testing.assert_array_equal(y, y_full)
    dy = rng.normal(size=y.shape)
    g, dplan = m.backward(dy, cache)
    g_full, dx = m.backward(dy, cache_full)
    np.testing.assert_allclose(dplan, dx.sum(axis=1), rtol=1e-12)
    assert dplan.shape == (2, 3)
    with pytest.raises(ValueError, match=r"a plan x of shape \(2, 3\) \(N, n_in\) is fed at every step: pass steps=T"):
        m.forward(plan)
    with pytest.raises(ValueError, match=r"decay must be a number in \[0, 1\], got 1.5"):
        Jordan(1, 1, decay=1.5)


# ------------------------------------------------------------------------ Elman
def elman_key(rnn_key):
    """RNN's W_r of layer l, W[hl->hl@1], is Elman's context weight W[cl->hl@0]."""
    return re.sub(r"W\[h(\d+)->h\1@1\]", r"W[c\1->h\1@0]", rnn_key)


@pytest.mark.parametrize("hidden", [(4,), (3, 2)])
def test_elman_with_full_gradient_is_the_rnn(hidden):
    rnn = RNN(2, 3, hidden=hidden, dtype=np.float64, seed=16)
    elman = Elman(2, 3, hidden=hidden, context_gradient="full", dtype=np.float64, seed=16)
    # same seed, same initial weights: the links are drawn in the same order
    assert {elman_key(k) for k in rnn.params} == set(elman.params)
    assert all(np.array_equal(v, elman.params[elman_key(k)]) for k, v in rnn.params.items())
    rng = randomize(rnn, 16)                       # h(-1) = init[h1] too: c(0) reads it
    for k, v in rnn.params.items():
        elman.params[elman_key(k)][...] = v
    x, d = rng.normal(size=(3, 7, 2)), rng.normal(size=(3, 7, 3))
    lengths = np.array([7, 2, 5])
    div = SquaredError()
    y_r, c_r = rnn.forward(x, lengths=lengths)
    y_e, c_e = elman.forward(x, lengths=lengths)
    np.testing.assert_allclose(y_e, y_r, rtol=1e-13, atol=1e-14)
    g_r, dx_r = rnn.backward(div(y_r, d, lengths=lengths)[1], c_r)
    g_e, dx_e = elman.backward(div(y_e, d, lengths=lengths)[1], c_e)
    for k, g in g_r.items():
        np.testing.assert_allclose(g_e[elman_key(k)], g, rtol=1e-12, atol=1e-14, err_msg=k)
    np.testing.assert_allclose(dx_e, dx_r, rtol=1e-12, atol=1e-14)
    for l in range(1, len(hidden) + 1):            # the final state continues the same way
        np.testing.assert_allclose(c_e.state[f"h{l}"], c_r.state[f"h{l}"], rtol=1e-13)


def test_elman_full_gradients_match_finite_differences():
    m = Elman(2, 2, hidden=(3, 2), context_gradient="full", activation="sigmoid", dtype=np.float64, seed=17)
    rng = randomize(m, 17)
    x, d = rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 6, 2))
    check = gradcheck(m, x, d, SquaredError(), lengths=[6, 2, 4])
    assert check.max_error < 1e-6, str(check)


@pytest.mark.parametrize("hidden", [(3,), (3, 2)])
def test_elman_blocked_gradient_is_that_of_a_constant_context_input(hidden):
    m = Elman(2, 2, hidden=hidden, dtype=np.float64, seed=18)
    assert "init[h1]" not in m.params                 # behind a blocked context h(-1) is zero
    rng = randomize(m, 18)
    x, d = rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 6, 2))
    check_blocked_against_twin(m, x, d, lengths=np.array([6, 4, 2]))


def test_elman_blocked_context_is_a_copy_of_the_last_hidden_state():
    m = Elman(2, 1, hidden=3, dtype=np.float64, seed=19)
    rng = randomize(m, 19)
    y, cache = m.forward(rng.normal(size=(2, 5, 2)), state={"h1": rng.normal(size=(2, 1, 3))})
    np.testing.assert_array_equal(cache.A["c1"], cache.A["h1"][:-1])    # c(t) = h(t-1), h(-1) included
    with pytest.warns(UserWarning, match=r"no gradient reaches h\(-1\) behind the blocked copy"):
        Elman(1, 1, learn_init=True)


# ------------------------------------------------------------- state space + feedback
def test_state_space_with_output_feedback_follows_its_equation():
    m = StateSpace(2, 2, hidden=3, dtype=np.float64, seed=20)
    rng = randomize(m, 20)
    x = rng.normal(size=(2, 6, 2))
    y_prev0 = rng.normal(size=(2, 1, 2))
    y = m.predict(x, state={"y": y_prev0})
    p = m.params
    for n in range(2):
        h, y_prev = p["init[h1]"][0], y_prev0[n, 0]
        for t in range(6):
            # h(t) = tanh(W_x x(t) + W_r h(t-1) + W_fb y(t-1) + b);  y(t) = W_o h(t) + b_o
            h = np.tanh(p["W[x->h1@0]"] @ x[n, t] + p["W[h1->h1@1]"] @ h + p["W[y->h1@1]"] @ y_prev + p["b[h1]"])
            y_prev = p["W[h1->y@0]"] @ h + p["b[y]"]
            np.testing.assert_allclose(y[n, t], y_prev, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, reference_forward(m.network, x, state={"y": y_prev0}), rtol=1e-12, atol=1e-12)
    # without the feedback link it is the RNN, weights and all
    plain, rnn = StateSpace(2, 2, hidden=(3, 2), output_feedback=False, seed=3), RNN(2, 2, hidden=(3, 2), seed=3)
    assert plain.params.keys() == rnn.params.keys()
    assert all(np.array_equal(v, rnn.params[k]) for k, v in plain.params.items())


@pytest.mark.parametrize("hidden,learn_init", [((3,), True), ((3, 2), False)])
def test_state_space_gradients_match_finite_differences(hidden, learn_init):
    m = StateSpace(2, 2, hidden=hidden, learn_init=learn_init, dtype=np.float64, seed=21)
    rng = randomize(m, 21)
    x, d = rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 6, 2))
    check = gradcheck(m, x, d, SquaredError(), lengths=[6, 2, 5], state={"y": rng.normal(size=(3, 1, 2))})
    assert check.max_error < 1e-6, str(check)


# ---------------------------------------------------------------------- save / load
MODELS = {
    "tdnn": lambda: TDNN(2, 2, width=3, hidden=(4, 3), seed=1),
    "narx closed": lambda: NARX(2, 2, input_delays=[0, 2], output_delays=3, hidden=4, seed=1),
    "narx open": lambda: NARX(2, 2, input_delays=1, output_delays=[1, 4], feedback="open", seed=1),
    "narx ar": lambda: NARX(0, 1, input_delays=None, output_delays=5, hidden=(3, 3), seed=1),
    "jordan": lambda: Jordan(2, 2, hidden=4, decay=0.25, output="sigmoid", seed=1),
    "elman blocked": lambda: Elman(2, 2, hidden=(4, 3), seed=1),
    "elman full": lambda: Elman(2, 2, hidden=4, context_gradient="full", seed=1),
    "state space": lambda: StateSpace(2, 2, hidden=4, activation="relu", seed=1),
}


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_round_trip(name, tmp_path):
    m = MODELS[name]()
    randomize(m, 22)
    unrolled.save(m, tmp_path / "m.npz")
    back = unrolled.load(tmp_path / "m.npz")
    assert type(back) is type(m) and back.get_config() == m.get_config()
    rng = np.random.default_rng(22)
    x = rng.normal(size=(2, 6, m.n_in))
    kw = m.fit_inputs(x, rng.normal(size=(2, 6, m.n_out))) if isinstance(m, NARX) else {}
    np.testing.assert_array_equal(back.predict(x, **kw), m.predict(x, **kw))
    assert all(np.array_equal(back.params[k], v) for k, v in m.params.items())


def test_narx_without_exogenous_input_names_what_is_wrong():
    m = NARX(0, 1, input_delays=None, output_delays=2, hidden=3, seed=0)
    with pytest.raises(ValueError, match=r"x has no time steps \(T = 0\)"):
        m.forward(np.zeros((4, 0, 0)))
    with pytest.raises(ValueError, match=r"expected lengths of shape \(4,\), one per sequence of x, got \(2,\)"):
        m.forward(np.zeros((4, 5, 0)), lengths=[5, 5])
    with pytest.raises(ValueError, match=r"steps=3 contradicts the sequences' T=5"):
        m.forward(np.zeros((4, 5, 0)), steps=3)
    with pytest.raises(TypeError, match=r"steps must be an integer"):
        m.forward(steps=2.5)
    y = m.predict(steps=4, lengths=[4, 2])
    assert y.shape == (2, 4, 1) and np.all(y[1, 2:] == 0)
