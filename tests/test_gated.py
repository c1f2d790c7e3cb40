"""Gated layers (LSTM, GRU) in the column: PyTorch agreement, finite differences, models."""

import numpy as np
import pytest
import torch

import unrolled
from unrolled import Layer, Link, Network
from unrolled.analysis import gradcheck
from unrolled.divergences import CrossEntropy, SquaredError

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
    state = {name: rng.normal(size=(N, net.depth[name], net.node_size(name))) for name in ("g", "p", "g.c")
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


# ----------------------------------------------------------------- models and torch
def _torch_module(cell, L, bias, dtype, seed, batch_first=True, bidirectional=False, H=4):
    torch.manual_seed(seed)
    rnn = TORCH[cell](3, H, num_layers=L, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
                      dtype=dtype)
    linear = torch.nn.Linear(2 * H if bidirectional else H, 2, dtype=dtype)
    return rnn, linear


def _h0_leaf(h0):
    """torch_h0's answer as leaves that gather their gradients."""
    if isinstance(h0, tuple):
        return tuple(t.clone().requires_grad_(True) for t in h0)
    return h0.clone().requires_grad_(True)


def _assert_layer_grads(g, rnn, names, cell, tol):
    """Every weight and bias gradient of torch's layers against the model's, ``names`` the
    (suffix, W_in, W_rec, b) keys of each."""
    H = rnn.hidden_size
    for suffix, w_in, w_rec, b in names:
        np.testing.assert_allclose(g[w_in], getattr(rnn, f"weight_ih_{suffix}").grad.numpy(), **tol)
        np.testing.assert_allclose(g[w_rec], getattr(rnn, f"weight_hh_{suffix}").grad.numpy(), **tol)
        if rnn.bias:
            # b[h] holds b_ih (+ b_hh for the gates that only sum them): its gradient is b_ih's
            np.testing.assert_allclose(g[b], getattr(rnn, f"bias_ih_{suffix}").grad.numpy(), **tol)
            b_hh = getattr(rnn, f"bias_hh_{suffix}").grad.numpy()
            if cell == "gru":
                np.testing.assert_allclose(g[b[:-1] + ".hn]"], b_hh[2 * H:], **tol)
                np.testing.assert_allclose(g[b][:2 * H], b_hh[:2 * H], **tol)
            else:
                np.testing.assert_allclose(g[b], b_hh, **tol)


def _init_grads(g, keys, h0, cell, tol):
    """The learned initial states' gradients: torch's d/dh0 (and d/dc0) summed over the batch."""
    h, c = h0 if cell == "lstm" else (h0, None)
    for k, key in enumerate(keys):
        np.testing.assert_allclose(g[key][0], h.grad[k].sum(0).numpy(), **tol)
        if c is not None:
            np.testing.assert_allclose(g[key[:-1] + ".c]"][0], c.grad[k].sum(0).numpy(), **tol)


def _model(cell, seed, *, n_in=3, n_out=2, **options):
    """``(model, rng)``: a float64 LSTM or GRU with random weights (and ``rng`` to go on with)."""
    cls = {"lstm": unrolled.LSTM, "gru": unrolled.GRU}[cell]
    m = cls(n_in, n_out, dtype=np.float64, seed=seed, **options)
    rng = np.random.default_rng(seed)
    _randomise(m.params, rng, 0.5)
    return m, rng


def _stack_names(L):
    """(torch suffix, W_in, W_rec, b) keys of an L-layer LSTM / GRU model."""
    return [(f"l{k}", f"W[{'x' if k == 0 else f'h{k}'}->h{k + 1}@0]", f"W[h{k + 1}->h{k + 1}@1]", f"b[h{k + 1}]")
            for k in range(L)]


def _tolerance(dtype):
    return dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("L,bias,dtype,batch_first", [
    (1, True, torch.float64, True), (2, True, torch.float64, False), (2, False, torch.float64, True),
    (2, True, torch.float32, True), (1, False, torch.float32, False)])
def test_from_torch_gives_torchs_outputs_and_every_gradient(cell, L, bias, dtype, batch_first):
    rnn, linear = _torch_module(cell, L, bias, dtype, seed=L + 2 * bias, batch_first=batch_first)
    m = unrolled.from_torch(rnn, linear)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    assert type(m) is {"lstm": unrolled.LSTM, "gru": unrolled.GRU}[cell] and m.dtype == np_dtype
    rng = np.random.default_rng(L)
    for key in m.params:                                 # non-zero learned h(-1), c(-1)
        if key.startswith("init["):
            m.params[key][...] = rng.normal(size=m.params[key].shape) * 0.5
    N, T = 4, 7
    x = rng.normal(size=(N, T, 3)).astype(np_dtype)
    c = rng.normal(size=(N, T, 2)).astype(np_dtype)
    xt = torch.tensor(x, requires_grad=True)
    h0 = _h0_leaf(unrolled.torch_h0(m, N))
    out, _ = rnn(xt if batch_first else xt.transpose(0, 1), h0)
    yt = linear(out if batch_first else out.transpose(0, 1))
    (yt * torch.tensor(c)).sum().backward()

    y, cache = m.forward(x)
    g, dx = m.backward(c, cache)                          # DIV = sum(y * c): dDIV/dy = c
    tol = _tolerance(dtype)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    _assert_layer_grads(g, rnn, _stack_names(L), cell, tol)
    _init_grads(g, [f"init[h{k + 1}]" for k in range(L)], h0, cell, tol)
    np.testing.assert_allclose(g[f"W[h{L}->y@0]"], linear.weight.grad.numpy(), **tol)
    np.testing.assert_allclose(g["b[y]"], linear.bias.grad.numpy(), **tol)
    assert set(g) == set(m.params)


@pytest.mark.parametrize("cell", CELLS)
def test_padded_sequences_match_torch_run_on_each_sequence(cell):
    # lengths (padding at the end) against torch run on each sequence alone, its gradients
    # added up; the final state is torch's h_n (and c_n) of each sequence.
    rnn, linear = _torch_module(cell, 2, True, torch.float64, seed=5)
    m = unrolled.from_torch(rnn, linear)
    rng = np.random.default_rng(1)
    lengths = np.array([6, 2, 4])
    x = rng.normal(size=(3, 6, 3))
    c = rng.normal(size=(3, 6, 2))
    y, cache = m.forward(x, lengths=lengths)
    g, dx = m.backward(c, cache)
    tol = _tolerance(torch.float64)
    assert np.all(y[1, 2:] == 0.0) and np.all(dx[1, 2:] == 0.0)
    for n, L in enumerate(lengths):
        xt = torch.tensor(x[n:n + 1, :L], requires_grad=True)
        out, last = rnn(xt)
        yt = linear(out)
        (yt * torch.tensor(c[n:n + 1, :L])).sum().backward()        # torch adds up the parameters' grads
        np.testing.assert_allclose(y[n, :L], yt[0].detach().numpy(), **tol)
        np.testing.assert_allclose(dx[n, :L], xt.grad[0].numpy(), **tol)
        h_n, c_n = last if cell == "lstm" else (last, None)
        for k in range(2):
            np.testing.assert_allclose(cache.state[f"h{k + 1}"][n, 0], h_n[k, 0].detach().numpy(), **tol)
            if c_n is not None:
                np.testing.assert_allclose(cache.state[f"h{k + 1}.c"][n, 0], c_n[k, 0].detach().numpy(), **tol)
    _assert_layer_grads(g, rnn, _stack_names(2), cell, tol)
    np.testing.assert_allclose(g["W[h2->y@0]"], linear.weight.grad.numpy(), **tol)


@pytest.mark.parametrize("cell", CELLS)
def test_to_torch_round_trip(cell):
    m, rng = _model(cell, 3, hidden=(5, 5))
    module = unrolled.to_torch(m)
    rnn, linear = module.rnn, module.linear
    assert type(rnn) is TORCH[cell] and rnn.batch_first and rnn.num_layers == 2
    x = rng.normal(size=(2, 6, 3))
    out, _ = rnn(torch.tensor(x), unrolled.torch_h0(m, 2))
    np.testing.assert_allclose(m.predict(x), linear(out).detach().numpy(), rtol=1e-10, atol=1e-12)
    back = unrolled.from_torch(rnn, linear)
    for key, value in m.params.items():               # the same numbers (initial states: torch has none)
        if not key.startswith("init["):
            np.testing.assert_allclose(back.params[key], value, rtol=1e-15, atol=1e-15)
    with pytest.raises(ValueError, match=f"no torch.nn.{cell.upper()} counterpart: skip links"):
        unrolled.interop.rnn_to_torch(_model(cell, 0, hidden=(4, 4), skip_input=True)[0])


@pytest.mark.parametrize("cell", CELLS)
def test_bidirectional_torch_module_is_a_birnn_of_that_cell(cell):
    rnn, linear = _torch_module(cell, 2, True, torch.float64, seed=9, bidirectional=True)
    m = unrolled.from_torch(rnn, linear)
    assert isinstance(m, unrolled.BiRNN) and m.get_config()["cell"] == cell
    rng = np.random.default_rng(4)
    for key in m.params:
        if "init[" in key:
            m.params[key][...] = rng.normal(size=m.params[key].shape) * 0.5
    N, T = 3, 5
    x = rng.normal(size=(N, T, 3))
    c = rng.normal(size=(N, T, 2))
    xt = torch.tensor(x, requires_grad=True)
    h0 = _h0_leaf(unrolled.torch_h0(m, N))
    out, _ = rnn(xt, h0)
    yt = linear(out)
    (yt * torch.tensor(c)).sum().backward()
    y, cache = m.forward(x)
    g, dx = m.backward(c, cache)
    tol = _tolerance(torch.float64)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    names = [(f"l{k}{suffix}", f"block{k + 1}.{d}.W[x->h1@0]", f"block{k + 1}.{d}.W[h1->h1@1]",
              f"block{k + 1}.{d}.b[h1]") for k in range(2) for suffix, d in (("", "fwd"), ("_reverse", "bwd"))]
    _assert_layer_grads(g, rnn, names, cell, tol)
    _init_grads(g, [f"block{k + 1}.{d}.init[h1]" for k in range(2) for d in ("fwd", "bwd")], h0, cell, tol)
    np.testing.assert_allclose(g["out.W[x->y@0]"], linear.weight.grad.numpy(), **tol)
    module = unrolled.to_torch(m)
    twin, lin2 = module.rnn, module.linear
    out2, _ = twin(torch.tensor(x), unrolled.torch_h0(m, N))
    np.testing.assert_allclose(lin2(out2).detach().numpy(), y, **tol)


@pytest.mark.parametrize("cell", CELLS)
def test_model_options_match_finite_differences(cell):
    m, rng = _model(cell, 1, n_in=2, n_out=3, hidden=(3, 2), output="softmax", skip_input=True, skip_output=True)
    x = rng.normal(size=(3, 5, 2))
    d = rng.integers(0, 3, size=(3, 5))
    check = gradcheck(m, x, d, CrossEntropy(), lengths=np.array([5, 3, 1]))
    assert check.max_error < 1e-7, str(check)
    assert {"W[x->h2@0]", "W[h1->y@0]"} <= set(m.params)


@pytest.mark.parametrize("make", [
    lambda: unrolled.LSTM(3, 2, hidden=(4, 3), seed=0),
    lambda: unrolled.GRU(3, 2, hidden=4, learn_init=False, bias=False, dtype=np.float64, seed=1),
    lambda: unrolled.BiRNN(3, 2, hidden=(4,), cell="gru", seed=2),
    lambda: unrolled.BiRNN(3, 2, hidden=(3,), blocks=2, cell="lstm", dtype=np.float64, seed=3)])
def test_save_load_round_trip_is_equal_to_the_bit(tmp_path, make):
    m = make()
    rng = np.random.default_rng(0)
    _randomise(m.params, rng, 0.5)
    path = tmp_path / "m.npz"
    unrolled.save(m, path)
    back = unrolled.load(path)
    assert type(back) is type(m) and back.get_config() == m.get_config()
    assert all(np.array_equal(back.params[k], v) and back.params[k].dtype == v.dtype for k, v in m.params.items())
    x = rng.normal(size=(2, 5, 3)).astype(m.dtype)
    assert np.array_equal(back.predict(x, lengths=[5, 3]), m.predict(x, lengths=[5, 3]))


@pytest.mark.parametrize("cell", CELLS)
def test_streaming_two_chunks_with_state_is_one_pass(cell):
    m, rng = _model(cell, 4, hidden=(4, 3))
    x = rng.normal(size=(2, 9, 3))
    whole, state = m.predict(x, return_state=True)
    first, mid = m.predict(x[:, :4], return_state=True)
    assert set(mid) == ({"h1", "h2", "h1.c", "h2.c"} if cell == "lstm" else {"h1", "h2"})
    second, end = m.predict(x[:, 4:], state=mid, return_state=True)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=1e-13, atol=1e-14)
    for name in state:
        np.testing.assert_allclose(end[name], state[name], rtol=1e-13, atol=1e-14)


def test_birnn_cell_must_be_known():
    with pytest.raises(ValueError, match=r"cell must be one of \('tanh', 'lstm', 'gru'\)"):
        unrolled.BiRNN(3, 2, cell="rnn")
    assert "cell" not in unrolled.BiRNN(3, 2).get_config()     # a plain BiRNN's config as before


# ------------------------------------------------------- what else reads the column
@pytest.mark.parametrize("cell", CELLS)
def test_blocked_context_around_a_gated_layer_treats_it_as_a_constant_input(cell):
    # An Elman context c (h -> c @1, fixed I, gradient blocked) around a gated layer h: its
    # gradients are those of the twin that reads the context's values as an external input.
    H = 3
    layers = {"h": Layer(H, cell=cell), "c": Layer(H, "identity", bias=False, init="zeros"),
              "y": Layer(2, "identity", init="zeros")}
    links = [Link("x", "h"), Link("c", "h"), Link("h", "h", delay=1), Link("h", "y"),
             Link("h", "c", delay=1, weight=1.0, trainable=False, gradient="blocked")]
    net = Network({"x": 2}, layers, links, "y", dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    _randomise(net.params, rng)
    x, dy = rng.normal(size=(2, 5, 2)), rng.normal(size=(2, 5, 2))
    y, cache = net.forward(x)
    g, _ = net.backward(dy, cache)
    twin = Network({"x": 2, "ctx": H}, {"h": layers["h"], "y": layers["y"]},
                   [Link("x", "h"), Link("ctx", "h"), Link("h", "h", delay=1), Link("h", "y")], "y",
                   dtype=np.float64, seed=0)
    for key in twin.params:
        twin.params[key][...] = net.params[key.replace("ctx->", "c->")]
    context = np.swapaxes(cache.A["c"][net.depth["c"]:], 0, 1)
    y2, cache2 = twin.forward(x, ctx=context)
    g2, _ = twin.backward(dy, cache2)
    np.testing.assert_allclose(y2, y, rtol=1e-14, atol=1e-15)
    for key in twin.params:
        np.testing.assert_allclose(g[key.replace("ctx->", "c->")], g2[key], rtol=1e-12, atol=1e-14)


def test_an_lstm_starts_with_its_forget_gate_open():
    # b[h] = [b_i; b_f; b_g; b_o]: zero but b_f, 1 (a GRU's biases all zero)
    m = unrolled.LSTM(3, 2, hidden=(4, 5), seed=0)
    for name, H in (("h1", 4), ("h2", 5)):
        np.testing.assert_array_equal(m.params[f"b[{name}]"], np.repeat([0.0, 1.0, 0.0, 0.0], H))
    g = unrolled.GRU(3, 2, hidden=(4,), seed=0)
    assert not g.params["b[h1]"].any() and not g.params["b[h1.hn]"].any()


@pytest.mark.parametrize("cell", CELLS)
def test_blocked_self_link_of_a_gated_layer_blocks_its_product_only(cell):
    # h -> h @1 with gradient="blocked": the product W_h* h(t-1) sees h(t-1) as a constant,
    # while the cell's own carry (an LSTM's c(t-1), a GRU's z * h(t-1)) keeps its gradient,
    # as Layer's docstring says. Against torch's cell equations written out with h(t-1)
    # detached in the product alone.
    H, n_in, N, T = 3, 2, 2, 6
    net = Network({"x": n_in}, {"h": Layer(H, cell=cell)},
                  [Link("x", "h"), Link("h", "h", delay=1, gradient="blocked")], "h", dtype=np.float64, seed=0)
    rng = np.random.default_rng(3)
    _randomise(net.params, rng)
    x, dy = rng.normal(size=(N, T, n_in)), rng.normal(size=(N, T, H))
    y, cache = net.forward(x)
    g, dx = net.backward(dy, cache)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    xt = torch.tensor(x, requires_grad=True)
    h = P["init[h]"][-1].expand(N, H)
    c = P["init[h.c]"][-1].expand(N, H) if cell == "lstm" else None
    out = []
    for t in range(T):
        zx = xt[:, t] @ P["W[x->h@0]"].T + P["b[h]"]
        zh = h.detach() @ P["W[h->h@1]"].T
        if cell == "lstm":
            i, f, gg, o = (zx + zh).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:
            (xr, xz, xn), (hr, hz, hn) = zx.chunk(3, dim=1), zh.chunk(3, dim=1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * (hn + P["b[h.hn]"]))
            h = (1 - z) * n + z * h
        out.append(h)
    yt = torch.stack(out, 1)
    (yt * torch.tensor(dy)).sum().backward()
    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    for key, p in P.items():                                # (an LSTM's h(-1) reaches h only by
        expected = np.zeros_like(g[key]) if p.grad is None else p.grad.numpy()   # the product: 0)
        np.testing.assert_allclose(g[key], expected, err_msg=key, **tol)
    carried = "init[h.c]" if cell == "lstm" else "init[h]"  # the carry is not blocked: not zero
    assert np.abs(g[carried]).max() > 1e-3 and np.abs(g["W[h->h@1]"]).max() > 1e-3


@pytest.mark.parametrize("cell", CELLS)
def test_jacobian_of_a_gated_model_is_reverse_mode_and_agrees_with_bptt(cell):
    m, rng = _model(cell, 6, hidden=(2,))
    x, dy = rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3, 2))
    J = unrolled.analysis.jacobian(m, x, lengths=[3, 2])
    dy[1, 2] = 0.0                                        # (a padded step: its rows are zero)
    g, _ = m.backward(dy, m.forward(x, lengths=[3, 2])[1])
    np.testing.assert_allclose(np.einsum("ntk,ntkp->p", dy, J),
                               np.concatenate([g[k].ravel() for k in m.params]), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="no tangents for gated layers"):
        unrolled.analysis.jacobian(m, x, method="forward")


@pytest.mark.parametrize("cell", CELLS)
def test_seq2seq_with_gated_encoder_and_decoder_bridges_h_and_c(cell):
    from unrolled.columns import recurrent_network

    enc = recurrent_network(2, (3,), cell=cell, dtype=np.float64, seed=0)
    dec = {"lstm": unrolled.LSTM, "gru": unrolled.GRU}[cell](3, 2, hidden=(3,), learn_init=False,
                                                              dtype=np.float64, seed=1)
    m = unrolled.Seq2Seq(enc, dec)
    assert m.bridge == ({"h1": "h1", "h1.c": "h1.c"} if cell == "lstm" else {"h1": "h1"})
    rng = np.random.default_rng(8)
    _randomise(m.params, rng, 0.7)
    x, u, d = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 4, 3)), rng.normal(size=(3, 4, 2))
    lengths = np.array([5, 1, 3])
    y, _ = m.forward(x, lengths=lengths, decoder_inputs=u)
    for n, L in enumerate(lengths):            # the decoder starts from the encoder's h (and c) at L - 1
        _, ce = enc.forward(x[n:n + 1, :L])
        np.testing.assert_allclose(y[n], dec.predict(u[n:n + 1], state=ce.state)[0], rtol=1e-13, atol=1e-15)
    def div(y, d, *, lengths=None):                      # over every decoder step (lengths are the source's)
        return SquaredError()(y, d)

    check = gradcheck(m, x, d, div, lengths=lengths, inputs={"decoder_inputs": u})
    assert check.max_error < 1e-7, str(check)
    assert np.abs(check.bptt["encoder.W[x->h1@0]"]).sum() > 0          # the decoder's error reaches the encoder
