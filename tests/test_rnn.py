"""RNN: a hand-worked case, finite differences over its options, and PyTorch agreement."""

import itertools

import numpy as np
import pytest
import torch

import unrolled
from unrolled import RNN, from_torch, to_torch, torch_h0
from unrolled.interop import rnn_to_torch
from unrolled.analysis import gradcheck
from unrolled.divergences import BinaryCrossEntropy, CrossEntropy, SquaredError


def test_two_step_scalar_example_by_hand():
    # Identity activations so every number is exact.
    #   W_x = 2, W_r = 0.5, b_h = 1, h(-1) = 4, W_o = 3, b_o = -1, x = [1, -2], d = [10, 0]
    m = RNN(1, 1, hidden=(1,), activation="identity", dtype=np.float64)
    p = m.params
    p["W[x->h1@0]"][...] = 2.0
    p["W[h1->h1@1]"][...] = 0.5
    p["b[h1]"][...] = 1.0
    p["init[h1]"][...] = 4.0
    p["W[h1->y@0]"][...] = 3.0
    p["b[y]"][...] = -1.0
    x = np.array([1.0, -2.0]).reshape(1, 2, 1)
    d = np.array([10.0, 0.0]).reshape(1, 2, 1)
    y, cache = m.forward(x)
    # t=0: h = 2*1 + 0.5*4 + 1 = 5        y = 3*5 - 1 = 14
    # t=1: h = 2*(-2) + 0.5*5 + 1 = -0.5  y = 3*(-0.5) - 1 = -2.5
    assert y.ravel().tolist() == [14.0, -2.5]
    value, dy = SquaredError()(y, d)
    assert value == 22.25                       # (14-10)^2 + (-2.5-0)^2 = 16 + 6.25
    assert dy.ravel().tolist() == [8.0, -5.0]   # 2 (y - d)
    g, dx = m.backward(dy, cache)
    # dh(1) = -5*3 = -15 = dz(1);  dh(0) = 8*3 + dz(1)*W_r = 24 - 7.5 = 16.5 = dz(0)
    assert g["W[h1->y@0]"].item() == 42.5       # 8*5 + (-5)*(-0.5)
    assert g["b[y]"].item() == 3.0              # 8 - 5
    assert g["W[x->h1@0]"].item() == 46.5       # 16.5*1 + (-15)*(-2)
    assert g["W[h1->h1@1]"].item() == -9.0      # 16.5*h(-1) + (-15)*h(0) = 66 - 75
    assert g["b[h1]"].item() == 1.5             # 16.5 - 15
    assert g["init[h1]"].item() == 8.25         # dz(0) * W_r = 16.5 * 0.5
    assert dx.ravel().tolist() == [33.0, -30.0]  # dz(t) * W_x
    assert m.predict(x, return_state=True)[1]["h1"].item() == -0.5


def test_one_tanh_step_by_hand():
    # h = tanh(0.5 * 2) = tanh(1) = 0.76159...; y = 1 * h; DIV = (y - 0)^2
    # dDIV/dW_x = 2 y * (1 - h^2) * x = 2 * 0.76159 * 0.41997 * 2
    m = RNN(1, 1, hidden=(1,), learn_init=False, dtype=np.float64)
    for k in m.params:
        m.params[k][...] = 0.0
    m.params["W[x->h1@0]"][...] = 0.5
    m.params["W[h1->y@0]"][...] = 1.0
    y, cache = m.forward(np.full((1, 1, 1), 2.0))
    h = np.tanh(1.0)
    assert y.item() == pytest.approx(h, abs=1e-15)
    g, _ = m.backward(2 * y, cache)
    assert g["W[x->h1@0]"].item() == pytest.approx(2 * h * (1 - h * h) * 2, rel=1e-14)


OPTIONS = list(itertools.product([1, 2, 3], [False, True], [False, True], [False, True]))


@pytest.mark.parametrize("layers,skip_input,skip_output,learn_init", OPTIONS)
def test_rnn_options_gradients_match_finite_differences(layers, skip_input, skip_output, learn_init):
    i = OPTIONS.index((layers, skip_input, skip_output, learn_init))
    activation = ["tanh", "relu", "sigmoid"][i % 3]
    output = ["identity", "softmax", "sigmoid"][(i // 3) % 3]
    rng = np.random.default_rng(i)
    hidden = tuple(int(h) for h in rng.integers(2, 4, size=layers))
    m = RNN(2, 3, hidden=hidden, activation=activation, output=output, skip_input=skip_input,
            skip_output=skip_output, learn_init=learn_init, dtype=np.float64, seed=i)
    for p in m.params.values():
        p[...] = rng.normal(size=p.shape) * 0.7
    N, T = 3, 5
    x = rng.normal(size=(N, T, 2))
    lengths = np.array([5, 2, 4]) if i % 2 else None
    if output == "identity":
        div, d = SquaredError(), rng.normal(size=(N, T, 3))
    elif output == "softmax":
        div, d = CrossEntropy(), rng.integers(0, 3, size=(N, T))
    else:
        div, d = BinaryCrossEntropy(), rng.random(size=(N, T, 3))
    check = gradcheck(m, x, d, div, lengths=lengths)
    assert check.max_error < 1e-6, f"{activation}/{output}\n{check}"
    assert set(check.bptt) - {"dx"} == set(m.params)
    skips = [k for k in m.params if k.startswith("W[x->h") and k != "W[x->h1@0]"]
    assert len(skips) == (layers - 1 if skip_input else 0)


def _torch_pair(L, nonlinearity, bias, dtype, seed):
    torch.manual_seed(seed)
    rnn = torch.nn.RNN(3, 4, num_layers=L, nonlinearity=nonlinearity, bias=bias, batch_first=True, dtype=dtype)
    linear = torch.nn.Linear(4, 2, dtype=dtype)
    return rnn, linear


@pytest.mark.parametrize("L,nonlinearity,bias,dtype", [
    (1, "tanh", True, torch.float64), (2, "relu", True, torch.float64), (3, "tanh", False, torch.float64),
    (2, "tanh", True, torch.float32), (1, "relu", False, torch.float32)])
def test_same_weights_in_torch_give_same_outputs_and_gradients(L, nonlinearity, bias, dtype):
    rnn, linear = _torch_pair(L, nonlinearity, bias, dtype, seed=L)
    m = from_torch(rnn, linear)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    assert m.dtype == np_dtype
    rng = np.random.default_rng(0)
    N, T = 4, 7
    for l in range(1, L + 1):                       # a non-zero learned h(-1)
        m.params[f"init[h{l}]"][...] = rng.normal(size=(1, 4)) * 0.5
    x = rng.normal(size=(N, T, 3)).astype(np_dtype)
    c = rng.normal(size=(N, T, 2)).astype(np_dtype)

    xt = torch.tensor(x, requires_grad=True)
    h0 = torch_h0(m, N).clone().requires_grad_(True)
    out, _ = rnn(xt, h0)
    yt = linear(out)
    (yt * torch.tensor(c)).sum().backward()

    y, cache = m.forward(x)
    g, dx = m.backward(c, cache)                     # DIV = sum(y * c): dDIV/dy = c
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    for k in range(L):
        src = "x" if k == 0 else f"h{k}"
        np.testing.assert_allclose(g[f"W[{src}->h{k + 1}@0]"], getattr(rnn, f"weight_ih_l{k}").grad.numpy(), **tol)
        np.testing.assert_allclose(g[f"W[h{k + 1}->h{k + 1}@1]"], getattr(rnn, f"weight_hh_l{k}").grad.numpy(), **tol)
        if bias:
            np.testing.assert_allclose(g[f"b[h{k + 1}]"], getattr(rnn, f"bias_ih_l{k}").grad.numpy(), **tol)
            np.testing.assert_allclose(g[f"b[h{k + 1}]"], getattr(rnn, f"bias_hh_l{k}").grad.numpy(), **tol)
        # our h(-1) is one vector shared by the batch: its gradient sums torch's d/dh0 over N
        np.testing.assert_allclose(g[f"init[h{k + 1}]"][0], h0.grad[k].sum(0).numpy(), **tol)
    np.testing.assert_allclose(g[f"W[h{L}->y@0]"], linear.weight.grad.numpy(), **tol)
    np.testing.assert_allclose(g["b[y]"], linear.bias.grad.numpy(), **tol)


def test_packed_sequences_in_torch_match_lengths():
    rnn, linear = _torch_pair(2, "tanh", True, torch.float64, seed=5)
    m = from_torch(rnn, linear)
    rng = np.random.default_rng(1)
    lengths = np.array([6, 2, 4])
    x = rng.normal(size=(3, 6, 3))
    c = rng.normal(size=(3, 6, 2))
    xt = torch.tensor(x, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=True,
                                                     enforce_sorted=False)
    out, hn = rnn(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=6)
    mask = torch.tensor((np.arange(6)[None, :] < lengths[:, None])[..., None].astype(float))
    yt = linear(out) * mask
    (yt * torch.tensor(c)).sum().backward()
    y, cache = m.forward(x, lengths=lengths)
    g, dx = m.backward(c, cache)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g["W[h1->h1@1]"], rnn.weight_hh_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
    # the final state is each sequence's state at its own last step, as torch's h_n
    np.testing.assert_allclose(cache.state["h2"][:, 0], hn[1].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_to_torch_round_trip():
    m = RNN(3, 2, hidden=(5, 5), activation="relu", dtype=np.float64, seed=3)
    rng = np.random.default_rng(3)
    for p in m.params.values():
        p[...] = rng.normal(size=p.shape) * 0.4
    module = to_torch(m)                              # one module; the pair is inside it
    rnn, linear = module.rnn, module.linear
    x = rng.normal(size=(2, 6, 3))
    with torch.no_grad():
        out, _ = rnn(torch.tensor(x), torch_h0(m, 2))
        yt = linear(out).numpy()
    np.testing.assert_allclose(m.predict(x), yt, rtol=1e-12, atol=1e-12)
    back = from_torch(rnn, linear)
    for k, v in back.params.items():
        if not k.startswith("init["):
            np.testing.assert_allclose(v, m.params[k], rtol=1e-15)


def test_to_torch_refuses_what_torch_cannot_hold():
    with pytest.raises(ValueError, match=r"no torch.nn.RNN counterpart: unequal hidden sizes \(4, 3\), skip links"):
        rnn_to_torch(RNN(2, 1, hidden=(4, 3), skip_input=True))
    with pytest.raises(TypeError, match=r"expected a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, got RNNCell"):
        from_torch(torch.nn.RNNCell(2, 3), torch.nn.Linear(3, 1))


def test_save_and_load_round_trip(tmp_path):
    m = RNN(2, 3, hidden=(4, 3), skip_output=True, output="softmax", seed=1)
    path = tmp_path / "model.npz"
    unrolled.save(m, path)
    back = unrolled.load(path)
    assert isinstance(back, RNN) and back.get_config() == m.get_config()
    x = np.random.default_rng(0).normal(size=(2, 5, 2))
    np.testing.assert_array_equal(back.predict(x), m.predict(x))


def test_network_save_and_load_keeps_fixed_weights(tmp_path):
    from unrolled import Layer, Link, Network

    net = Network({"x": 2}, {"h": Layer(2), "c": Layer(2, "identity", bias=False, init="zeros")},
                  [Link("x", "h"), Link("c", "h"), Link("h", "c", 1, weight=1.0, trainable=False, gradient="blocked"),
                   Link("x", "c", weight=np.array([[1.0, 2.0], [3.0, 4.0]]), trainable=False)], "h", seed=0)
    unrolled.save(net, tmp_path / "net.npz")
    back = unrolled.load(tmp_path / "net.npz")
    x = np.random.default_rng(0).normal(size=(1, 4, 2))
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    np.testing.assert_array_equal(back.constants["W[x->c@0]"], [[1.0, 2.0], [3.0, 4.0]])


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"hidden must be one or more positive layer sizes, got \(0,\)"):
        RNN(1, 1, hidden=(0,))
    with pytest.raises(ValueError, match=r"input 'x' must have a positive integer width, got 0"):
        RNN(0, 1)
    with pytest.raises(ValueError, match=r"unknown activation 'soft'"):
        RNN(1, 1, output="soft")
