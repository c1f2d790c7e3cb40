"""Gated layers (LSTM, GRU) in the column: PyTorch agreement, finite differences, models."""

import numpy as np
import pytest
import torch

from unrolled import Layer, Link, Network
from unrolled.analysis import gradcheck
from unrolled.divergences import SquaredError

CELLS = ["lstm", "gru"]
TORCH = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def _randomise(params, rng, scale=0.5):
    for p in params.values():
        p[...] = rng.normal(size=p.shape) * scale


# ------------------------------------------------------------------ the layer kind
@pytest.mark.parametrize("cell", CELLS)
def test_one_gated_layer_is_torch_with_the_same_weights(cell):
    # A Network x -> h, h -> h @1 of one gated layer against torch's cell, weights copied by
    # hand (b_ih = b[h], b_hh = 0 but for a GRU's n block, b_hn = b[h.hn]).
    H, n_in, N, T = 5, 3, 4, 7
    rng = np.random.default_rng(1)
    net = Network({"x": n_in}, {"h": Layer(H, cell=cell)}, [Link("x", "h"), Link("h", "h", delay=1)], "h",
                  dtype=np.float64, seed=1)
    _randomise(net.params, rng)
    k = 4 if cell == "lstm" else 3
    assert net.params["W[x->h@0]"].shape == (k * H, n_in) and net.params["b[h]"].shape == (k * H,)
    m = TORCH[cell](n_in, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.tensor(net.params["W[x->h@0]"]))
        m.weight_hh_l0.copy_(torch.tensor(net.params["W[h->h@1]"]))
        m.bias_ih_l0.copy_(torch.tensor(net.params["b[h]"]))
        m.bias_hh_l0.zero_()
        if cell == "gru":
            m.bias_hh_l0[2 * H:] = torch.tensor(net.params["b[h.hn]"])
    x = rng.normal(size=(N, T, n_in))
    c = rng.normal(size=(N, T, H))
    xt = torch.tensor(x, requires_grad=True)
    h0 = torch.tensor(np.broadcast_to(net.params["init[h]"][-1], (1, N, H)).copy(), requires_grad=True)
    if cell == "lstm":
        c0 = torch.tensor(np.broadcast_to(net.params["init[h.c]"][-1], (1, N, H)).copy(), requires_grad=True)
        yt, (hT, cT) = m(xt, (h0, c0))
    else:
        yt, hT = m(xt, h0)
    (yt * torch.tensor(c)).sum().backward()
    y, cache = net.forward(x)
    g, dx = net.backward(c, cache)
    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(g["W[x->h@0]"], m.weight_ih_l0.grad.numpy(), **tol)
    np.testing.assert_allclose(g["W[h->h@1]"], m.weight_hh_l0.grad.numpy(), **tol)
    np.testing.assert_allclose(g["b[h]"], m.bias_ih_l0.grad.numpy(), **tol)
    np.testing.assert_allclose(g["init[h]"][0], h0.grad[0].sum(0).numpy(), **tol)
    np.testing.assert_allclose(cache.state["h"][:, 0], hT[0].detach().numpy(), **tol)
    if cell == "lstm":
        np.testing.assert_allclose(g["init[h.c]"][0], c0.grad[0].sum(0).numpy(), **tol)
        np.testing.assert_allclose(cache.state["h.c"][:, 0], cT[0].detach().numpy(), **tol)
    else:
        np.testing.assert_allclose(g["b[h.hn]"], m.bias_hh_l0.grad[2 * H:].numpy(), **tol)


def _mixed_column(cell, seed):
    """A random column mixing a gated layer g and a plain tanh layer p in one recurrence
    (g -> p @1, p -> g), a second delay on g's own past, a delayed input and links from
    both to the output."""
    rng = np.random.default_rng(seed)
    G, P = (int(v) for v in rng.integers(2, 4, size=2))
    layers = {"p": Layer(P, "tanh"), "g": Layer(G, cell=cell), "y": Layer(2, "identity", init="zeros")}
    links = [Link("x", "p"), Link("g", "p", delay=1), Link("p", "g"), Link("x", "g", delay=1),
             Link("g", "g", delay=1), Link("g", "g", delay=2), Link("p", "p", delay=1),
             Link("g", "y"), Link("p", "y", delay=1)]
    net = Network({"x": 2}, layers, links, "y", dtype=np.float64, seed=seed)
    _randomise(net.params, rng, 0.6)
    return net, rng


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("padded", [False, True])
def test_mixed_gated_and_plain_column_matches_finite_differences(cell, padded):
    net, rng = _mixed_column(cell, seed=3 + padded)
    N, T = 3, 6
    x = rng.normal(size=(N, T, 2))
    d = rng.normal(size=(N, T, 2))
    lengths = np.array([6, 2, 4]) if padded else None
    check = gradcheck(net, x, d, SquaredError(), lengths=lengths)
    assert check.max_error < 1e-7, str(check)
    assert set(check.bptt) - {"dx"} == set(net.params)
    assert (cell == "lstm") == ("init[g.c]" in net.params) and (cell == "gru") == ("b[g.hn]" in net.params)


@pytest.mark.parametrize("cell", CELLS)
def test_given_state_gradients_match_finite_differences(cell):
    # dstate_in (the gradient of a given h and c) and dstate (a gradient on the final state).
    net, rng = _mixed_column(cell, seed=7)
    N, T = 2, 5
    x = rng.normal(size=(N, T, 2))
    c = rng.normal(size=(N, T, 2))
    state = {name: rng.normal(size=(N, net.depth[name], net._size(name))) for name in ("g", "p", "g.c")
             if name in net.depth}
    _, cache = net.forward(x, state=state)
    dstate = {name: rng.normal(size=v.shape) for name, v in cache.state.items()}

    def loss(st):
        y, cch = net.forward(x, state=st)
        return np.sum(y * c) + sum(np.sum(cch.state[k] * v) for k, v in dstate.items())

    _, _, dstate_in = net.backward_full(c, cache, dstate=dstate)
    assert set(dstate_in) == set(state)
    eps = 1e-6
    for name, value in state.items():
        numeric = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            up, down = {k: v.copy() for k, v in state.items()}, {k: v.copy() for k, v in state.items()}
            up[name][i] += eps
            down[name][i] -= eps
            numeric[i] = (loss(up) - loss(down)) / (2 * eps)
        np.testing.assert_allclose(dstate_in[name], numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cell", CELLS)
def test_padded_sequences_stop_their_state_at_their_last_step(cell):
    net, rng = _mixed_column(cell, seed=11)
    x = rng.normal(size=(3, 6, 2))
    lengths = np.array([6, 2, 4])
    y, cache = net.forward(x, lengths=lengths)
    for n, L in enumerate(lengths):
        y1, c1 = net.forward(x[n:n + 1, :L])
        np.testing.assert_allclose(y[n, :L], y1[0], rtol=1e-13, atol=1e-14)
        assert np.all(y[n, L:] == 0.0)
        for name, value in c1.state.items():
            np.testing.assert_allclose(cache.state[name][n], value[0], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_gated_network_ignores_backend_and_runs_the_reference(cell):
    net, rng = _mixed_column(cell, seed=2)
    x = rng.normal(size=(2, 4, 2))
    y = {}
    for backend in ("numpy", "fast"):
        net.backend = backend
        y[backend] = net.predict(x)
    assert np.array_equal(y["numpy"], y["fast"])


def test_gated_layer_errors_name_what_was_expected():
    with pytest.raises(ValueError, match="cell must be None"):
        Layer(3, cell="rnn")
    with pytest.raises(ValueError, match="leave activation='tanh'"):
        Layer(3, "relu", cell="lstm")
    with pytest.raises(ValueError, match=r"needs its own recurrence Link\('h', 'h', delay=1\)"):
        Network({"x": 2}, {"h": Layer(3, cell="gru")}, [Link("x", "h")], "h")
    with pytest.raises(ValueError, match=r"weight must have shape \(12, 2\)"):
        Network({"x": 2}, {"h": Layer(3, cell="lstm")},
                [Link("x", "h", weight=np.ones((3, 2))), Link("h", "h", delay=1)], "h")
    with pytest.raises(ValueError, match="scalar weight"):
        Network({"x": 3}, {"h": Layer(3, cell="lstm")},
                [Link("x", "h", weight=1.0, trainable=False), Link("h", "h", delay=1)], "h")
    with pytest.raises(ValueError, match="cell state of the lstm layer"):
        Network({"x": 2}, {"h": Layer(3, cell="lstm"), "h.c": Layer(2)},
                [Link("x", "h"), Link("h", "h", delay=1), Link("h", "h.c")], "h.c")


def test_gated_layer_config_round_trips_and_plain_configs_are_unchanged():
    assert Layer(3).get_config() == {"size": 3, "activation": "tanh", "bias": True, "init": "learned"}
    assert Layer(3, cell="gru").get_config()["cell"] == "gru"
    net, _ = _mixed_column("lstm", seed=5)
    twin = Network.from_config(net.get_config())
    assert twin.layers == net.layers and set(twin.params) == set(net.params)
