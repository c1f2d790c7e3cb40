"""Bidirectional, Stack and BiRNN: worked cases, finite differences, lengths, PyTorch agreement."""

import numpy as np
import pytest
import torch

import unrolled
from unrolled import Layer, Link, Network, RNN
from unrolled.analysis import gradcheck
from unrolled.blocks import Bidirectional, Stack, recurrent_network, reverse_within
from unrolled.divergences import BinaryCrossEntropy, CrossEntropy, LastStep, PooledMean, SquaredError
from unrolled.interop import birnn_from_torch, birnn_to_torch, birnn_torch_h0, from_torch, to_torch, torch_h0
from unrolled.models.birnn import BiRNN
from unrolled.optim import SGD


def _randomize(model, rng, scale=0.7):
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * scale


def _running_sum_net():
    # identity activation, W_x = 1, W_r = 1, no bias, h(-1) = 0: h(t) = x(0) + ... + x(t)
    net = recurrent_network(1, (1,), activation="identity", learn_init=False, bias=False, dtype=np.float64)
    net.params["W[x->h1@0]"][...] = 1.0
    net.params["W[h1->h1@1]"][...] = 1.0
    return net


def test_running_sums_by_hand():
    # forward net: h_f(t) = sum_{s <= t} x(s); backward net (same weights): h_b(t) = sum_{t <= s < len} x(s)
    block = Bidirectional(_running_sum_net(), _running_sum_net())
    x = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 99.0]])[..., None]   # second sequence: length 2, 99 is padding
    h, cache = block.forward(x, lengths=[3, 2])
    assert h[0].tolist() == [[1.0, 6.0], [3.0, 5.0], [6.0, 3.0]]
    assert h[1].tolist() == [[1.0, 3.0], [3.0, 2.0], [0.0, 0.0]]   # padding: read nowhere, output zero
    # DIV = sum_t <c(t), h(t)>: dx(s) = sum_{t >= s} c_f(t) + sum_{t <= s} c_b(t)
    c = np.array([[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]], [[1.0, 10.0], [2.0, 20.0], [5.0, 50.0]]])
    grads, dx = block.backward(c, cache)
    assert dx[0, :, 0].tolist() == [6.0 + 10.0, 5.0 + 30.0, 3.0 + 60.0]
    assert dx[1, :, 0].tolist() == [3.0 + 10.0, 2.0 + 30.0, 0.0]
    # dW_x = sum_t dz(t) x(t); dz_f(t) = sum_{t' >= t} c_f(t'), seq 0: [6, 5, 3], seq 1: [3, 2]
    assert grads["fwd.W[x->h1@0]"].item() == 6 * 1 + 5 * 2 + 3 * 3 + 3 * 1 + 2 * 2
    # backward net in its own (reversed) time: dz_b(t) = sum_{t' <= t} c_b(t'): seq 0 [10, 30, 60], seq 1 [10, 30]
    assert grads["bwd.W[x->h1@0]"].item() == 10 * 1 + 30 * 2 + 60 * 3 + 10 * 1 + 30 * 2
    assert set(grads) == set(block.params) == {"fwd.W[x->h1@0]", "fwd.W[h1->h1@1]", "bwd.W[x->h1@0]",
                                               "bwd.W[h1->h1@1]"}


def test_reverse_within_own_length_is_fliplr_of_each_valid_part():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 6, 2))
    lengths = np.array([6, 1, 3, 0])
    r = reverse_within(a, lengths)
    for n, L in enumerate(lengths):
        np.testing.assert_array_equal(r[n, :L], a[n, :L][::-1])
        np.testing.assert_array_equal(r[n, L:], a[n, L:])
    np.testing.assert_array_equal(reverse_within(r, lengths), a)


def _lecture_brnn(block, x):
    """The lecture's BRNN block for one whole sequence x (T, n_in): fliplr around the backward net."""
    h_f = block.forward_net.predict(x[None])[0]
    h_b = np.flip(block.backward_net.predict(np.flip(x, 0)[None])[0], 0)
    return np.concatenate([h_f, h_b], axis=-1)


def test_padded_batch_gives_what_each_sequence_gives_alone():
    rng = np.random.default_rng(1)
    m = BiRNN(3, 2, hidden=(4, 3), blocks=2, dtype=np.float64, seed=1)
    _randomize(m, rng, 0.5)
    lengths = np.array([7, 3, 5, 1])
    x = rng.normal(size=(4, 7, 3))
    c = rng.normal(size=(4, 7, 2))
    y, cache = m.forward(x, lengths=lengths)
    grads, dx = m.backward(c, cache)
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    for n, L in enumerate(lengths):
        y_n, cache_n = m.forward(x[n:n + 1, :L])
        np.testing.assert_allclose(y[n, :L], y_n[0], rtol=1e-12, atol=1e-14)
        g_n, dx_n = m.backward(c[n:n + 1, :L], cache_n)
        np.testing.assert_allclose(dx[n, :L], dx_n[0], rtol=1e-12, atol=1e-14)
        for k in total:
            total[k] += g_n[k]
    assert np.all(y[lengths[:, None] <= np.arange(7)] == 0) and np.all(dx[lengths[:, None] <= np.arange(7)] == 0)
    for k in grads:
        np.testing.assert_allclose(grads[k], total[k], rtol=1e-11, atol=1e-13, err_msg=k)
    # and the first block is the lecture's fliplr BRNN, sequence by sequence
    h, _ = m.blocks[0].forward(x, lengths=lengths)
    for n, L in enumerate(lengths):
        np.testing.assert_allclose(h[n, :L], _lecture_brnn(m.blocks[0], x[n, :L]), rtol=1e-12, atol=1e-14)


BIRNN_OPTIONS = [  # blocks, hidden, activation, output, lengths
    (1, (3,), "tanh", "identity", None),
    (2, (3, 2), "tanh", "softmax", [5, 2, 4]),
    (3, (2,), "relu", "sigmoid", [1, 5, 3]),
    (1, (2, 3, 2), "sigmoid", "softmax", [4, 5, 2]),
    (2, (2,), "tanh", "identity", [3, 5, 1]),
]


@pytest.mark.parametrize("blocks,hidden,activation,output,lengths", BIRNN_OPTIONS)
def test_birnn_gradients_match_finite_differences(blocks, hidden, activation, output, lengths):
    i = BIRNN_OPTIONS.index((blocks, hidden, activation, output, lengths))
    rng = np.random.default_rng(10 + i)
    m = BiRNN(2, 3, hidden=hidden, blocks=blocks, activation=activation, output=output,
              learn_init=i != 4, dtype=np.float64, seed=i)
    _randomize(m, rng)
    N, T = 3, 5
    x = rng.normal(size=(N, T, 2))
    if output == "identity":
        div, d = SquaredError(), rng.normal(size=(N, T, 3))
    elif output == "softmax":
        div, d = CrossEntropy(), rng.integers(0, 3, size=(N, T))
    else:
        div, d = BinaryCrossEntropy(), rng.random(size=(N, T, 3))
    check = gradcheck(m, x, d, div, lengths=None if lengths is None else np.array(lengths))
    assert check.max_error < 1e-6, f"{blocks} blocks {hidden} {activation}/{output}\n{check}"
    assert set(check.bptt) - {"dx"} == set(m.params)
    assert len([k for k in m.params if k.endswith("W[x->h1@0]")]) == 2 * blocks
    assert ("block1.bwd.init[h1]" in m.params) == (i != 4)


@pytest.mark.parametrize("readout", [LastStep(CrossEntropy()), PooledMean(CrossEntropy()), PooledMean(SquaredError())])
def test_many_to_one_readouts_over_a_birnn_match_finite_differences(readout):
    rng = np.random.default_rng(2)
    softmax = isinstance(readout.div, CrossEntropy)
    m = BiRNN(2, 3, hidden=(3,), blocks=2, output="softmax" if softmax else "identity", dtype=np.float64, seed=2)
    _randomize(m, rng)
    x = rng.normal(size=(4, 6, 2))
    lengths = np.array([6, 2, 4, 1])
    d = rng.integers(0, 3, size=4) if softmax else rng.normal(size=(4, 3))
    check = gradcheck(m, x, d, readout, lengths=lengths)
    assert check.max_error < 1e-6, f"{readout}\n{check}"
    # one target per sequence, and still a gradient at the first step of every sequence
    assert np.all(np.abs(check.bptt["dx"][:, 0]).sum(-1) > 0)


def test_stack_of_networks_and_a_bidirectional_block_matches_finite_differences():
    rng = np.random.default_rng(3)
    tdnn = Network({"x": 2}, {"h": Layer(3)}, [Link("x", "h"), Link("x", "h", delay=2)], "h", dtype=np.float64)
    bi = Bidirectional(recurrent_network(3, (2,), dtype=np.float64, seed=1),
                       recurrent_network(3, (2, 3), activation="relu", dtype=np.float64, seed=2))
    top = RNN(5, 2, hidden=(2,), dtype=np.float64, seed=3)
    stack = Stack(tdnn, bi, top, names=["tdnn", "bi", "top"])
    _randomize(stack, rng)
    assert stack.n_in == 2 and stack.n_out == 2 and bi.n_out == 5
    assert "bi.bwd.W[h1->h2@0]" in stack.params and "top.init[h1]" in stack.params
    x = rng.normal(size=(3, 6, 2))
    check = gradcheck(stack, x, rng.normal(size=(3, 6, 2)), SquaredError(), lengths=np.array([6, 3, 4]))
    assert check.max_error < 1e-6, str(check)
    block_check = gradcheck(bi, rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 5)), SquaredError(),
                            lengths=np.array([2, 4]))
    assert block_check.max_error < 1e-6, str(block_check)


def test_stack_carries_the_state_of_blocks_that_have_one():
    rng = np.random.default_rng(4)
    stack = Stack(RNN(2, 3, hidden=(3,), dtype=np.float64, seed=0), RNN(3, 1, hidden=(2,), dtype=np.float64, seed=1))
    x = rng.normal(size=(2, 8, 2))
    whole = stack.predict(x)
    first, state = stack.predict(x[:, :5], return_state=True)
    rest = stack.predict(x[:, 5:], state=state)
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"state names unknown block\(s\) \['2'\]"):
        stack.forward(x, state={"2": {}})


def test_bidirectional_refuses_to_run_online():
    m = BiRNN(2, 1, hidden=(3,), seed=0)
    x = np.zeros((1, 4, 2))
    with pytest.raises(ValueError, match="BiRNN needs the whole sequence"):
        m.forward(x, state={})
    with pytest.raises(ValueError, match="has no final state to return"):
        m.predict(x, return_state=True)
    with pytest.raises(ValueError, match="Bidirectional needs the whole sequence.*cannot run online"):
        m.blocks[0].forward(x, state={"h1": np.zeros((1, 1, 3))})
    with pytest.raises(ValueError, match="Bidirectional needs the whole sequence"):
        Stack(m.blocks[0], m.blocks[1]).forward(x, state={"0": {}})
    # generation continues from a state: refused with the same message
    from unrolled.generate import generate

    with pytest.raises(ValueError, match="needs the whole sequence"):
        generate(BiRNN(2, 2, hidden=(2,), seed=0), np.zeros((1, 3, 2)), 2)
    # truncated BPTT carries the state between windows: refused, not silently cut
    from unrolled import fit

    with pytest.raises(ValueError, match="needs the whole sequence"):
        fit(m, np.zeros((2, 6, 2)), np.zeros((2, 6, 1)), divergence="mse", optimizer=SGD(0.1),
            epochs=1, bptt=3, progress=False)


def test_params_are_the_childrens_live_arrays():
    m = BiRNN(2, 2, hidden=(3,), blocks=2, dtype=np.float64, seed=0)
    key = "block2.bwd.W[h1->h1@1]"
    assert m.params[key] is m.blocks[1].backward_net.params["W[h1->h1@1]"]
    before = m.params[key].copy()
    x = np.random.default_rng(0).normal(size=(2, 4, 2))
    y, cache = m.forward(x)
    grads, _ = m.backward(np.ones_like(y), cache)
    SGD(lr=0.1).step(m.params, grads)
    np.testing.assert_allclose(m.blocks[1].backward_net.params["W[h1->h1@1]"], before - 0.1 * grads[key])
    assert m.forward(x)[0].tolist() != y.tolist()


def test_fused_softmax_gradient_reaches_the_output_layer_exactly():
    # a saturated softmax: dy = -d/y is capped, the fused dz = (y - d)/N stays exact
    m = BiRNN(1, 2, hidden=(2,), output="softmax", dtype=np.float64, seed=0)
    m.params["out.b[y]"][...] = [800.0, -800.0]
    y, cache = m.forward(np.zeros((1, 1, 1)))
    _, dy = CrossEntropy()(y, np.array([[1]]))
    grads, _ = m.backward(dy, cache)
    np.testing.assert_allclose(grads["out.b[y]"], [1.0, -1.0])


# ----------------------------------------------------------------------- PyTorch
def _torch_birnn(K, nonlinearity, bias, dtype, seed):
    torch.manual_seed(seed)
    rnn = torch.nn.RNN(3, 4, num_layers=K, nonlinearity=nonlinearity, bias=bias, batch_first=True,
                       bidirectional=True, dtype=dtype)
    linear = torch.nn.Linear(8, 2, dtype=dtype)
    return rnn, linear


@pytest.mark.parametrize("K,nonlinearity,bias,dtype,packed", [
    (1, "tanh", True, torch.float64, False), (2, "tanh", True, torch.float64, True),
    (3, "relu", False, torch.float64, True), (2, "relu", True, torch.float64, False),
    (2, "tanh", True, torch.float32, True)])
def test_same_weights_in_torch_give_same_outputs_and_gradients(K, nonlinearity, bias, dtype, packed):
    rnn, linear = _torch_birnn(K, nonlinearity, bias, dtype, seed=K)
    m = from_torch(rnn, linear)                               # hands a bidirectional RNN to birnn_from_torch
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    assert isinstance(m, BiRNN) and m.dtype == np_dtype and m.get_config()["blocks"] == K
    rng = np.random.default_rng(K)
    for k in range(1, K + 1):                                 # non-zero learned h_f(-1) and h_b(inf)
        for d in ("fwd", "bwd"):
            m.params[f"block{k}.{d}.init[h1]"][...] = rng.normal(size=(1, 4)) * 0.5
    N, T = 4, 7
    lengths = np.array([7, 2, 5, 1]) if packed else np.full(N, T)
    x = rng.normal(size=(N, T, 3)).astype(np_dtype)
    c = rng.normal(size=(N, T, 2)).astype(np_dtype)
    valid = (np.arange(T)[None, :] < lengths[:, None])[..., None]

    xt = torch.tensor(x, requires_grad=True)
    h0 = torch_h0(m, N).clone().requires_grad_(True)
    assert h0.shape == (2 * K, N, 4)
    if packed:
        seq = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=True,
                                                      enforce_sorted=False)
        out, hn = rnn(seq, h0)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    else:
        out, hn = rnn(xt, h0)
    yt = linear(out) * torch.tensor(valid.astype(np_dtype))
    (yt * torch.tensor(c)).sum().backward()

    y, cache = m.forward(x, lengths=lengths if packed else None)
    g, dx = m.backward(c, cache)                              # DIV = sum(y * c): dDIV/dy = c
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    for k in range(K):
        for suffix, d in (("", "fwd"), ("_reverse", "bwd")):
            net = f"block{k + 1}.{d}"
            np.testing.assert_allclose(g[f"{net}.W[x->h1@0]"], getattr(rnn, f"weight_ih_l{k}{suffix}").grad.numpy(),
                                       **tol)
            np.testing.assert_allclose(g[f"{net}.W[h1->h1@1]"], getattr(rnn, f"weight_hh_l{k}{suffix}").grad.numpy(),
                                       **tol)
            if bias:
                np.testing.assert_allclose(g[f"{net}.b[h1]"], getattr(rnn, f"bias_ih_l{k}{suffix}").grad.numpy(), **tol)
                np.testing.assert_allclose(g[f"{net}.b[h1]"], getattr(rnn, f"bias_hh_l{k}{suffix}").grad.numpy(), **tol)
            # one h(-1) shared by the batch: its gradient sums torch's d/dh0 over N
            row = 2 * k + (d == "bwd")
            np.testing.assert_allclose(g[f"{net}.init[h1]"][0], h0.grad[row].sum(0).numpy(), **tol)
    np.testing.assert_allclose(g["out.W[x->y@0]"], linear.weight.grad.numpy(), **tol)
    np.testing.assert_allclose(g["out.b[y]"], linear.bias.grad.numpy(), **tol)
    assert set(g) == set(m.params)


def test_to_torch_round_trip():
    m = BiRNN(3, 2, hidden=(5,), blocks=2, activation="relu", dtype=np.float64, seed=3)
    rng = np.random.default_rng(3)
    _randomize(m, rng, 0.4)
    module = to_torch(m)
    rnn, linear = module.rnn, module.linear
    assert rnn.bidirectional and rnn.num_layers == 2
    x = rng.normal(size=(2, 6, 3))
    with torch.no_grad():
        out, _ = rnn(torch.tensor(x), birnn_torch_h0(m, 2))
        yt = linear(out).numpy()
    np.testing.assert_allclose(m.predict(x), yt, rtol=1e-12, atol=1e-12)
    back = birnn_from_torch(rnn, linear)
    for k, v in back.params.items():
        if ".init[" not in k:
            np.testing.assert_allclose(v, m.params[k], rtol=1e-15)
    assert birnn_to_torch(m)[0].weight_hh_l1_reverse.shape == (5, 5)


def test_torch_conversion_refuses_what_torch_cannot_hold():
    with pytest.raises(ValueError, match=r"no torch.nn.RNN counterpart: 2 layers per direction .*output "
                                         r"activation 'softmax'"):
        birnn_to_torch(BiRNN(2, 1, hidden=(4, 4), output="softmax"))
    with pytest.raises(ValueError, match=r"must be 2 \* rnn.hidden_size \(6\)"):
        from_torch(torch.nn.RNN(2, 3, bidirectional=True), torch.nn.Linear(3, 1))
    with pytest.raises(ValueError, match="not bidirectional: use from_torch"):
        birnn_from_torch(torch.nn.RNN(2, 3), torch.nn.Linear(6, 1))
    rnn, linear = torch.nn.RNN(2, 3, dtype=torch.float64), torch.nn.Linear(3, 1, dtype=torch.float64)
    assert isinstance(from_torch(rnn, linear), RNN)             # plain RNNs are unchanged


# ----------------------------------------------------------------- config, errors
def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 5, 2))
    lengths = np.array([5, 3])
    bi = Bidirectional(recurrent_network(2, (3,), seed=1), RNN(2, 2, hidden=(2,), seed=2))
    models = [
        BiRNN(2, 3, hidden=(4, 3), blocks=2, output="softmax", seed=1),
        bi,
        Stack(bi, Network({"x": 5}, {"y": Layer(1, "identity")}, [Link("x", "y")], "y"), names=["bi", "out"]),
    ]
    for i, m in enumerate(models):
        _randomize(m, rng, 0.5)
        path = tmp_path / f"model{i}.npz"
        unrolled.save(m, path)
        back = unrolled.load(path)
        assert type(back) is type(m) and list(back.params) == list(m.params)
        np.testing.assert_array_equal(back.predict(x, lengths=lengths), m.predict(x, lengths=lengths))
    assert unrolled.load(tmp_path / "model0.npz").get_config() == models[0].get_config()


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"both nets read the block input: forward_net.n_in = 2 but "
                                         r"backward_net.n_in = 3"):
        Bidirectional(recurrent_network(2, 3), recurrent_network(3, 3))
    with pytest.raises(TypeError, match="forward_net is float32 but backward_net is float64"):
        Bidirectional(recurrent_network(2, 3), recurrent_network(2, 3, dtype=np.float64))
    with pytest.raises(ValueError, match=r"block '0' gives 4 outputs but block '1' reads n_in = 3"):
        Stack(recurrent_network(2, 4), recurrent_network(3, 3))
    with pytest.raises(TypeError, match=r"lacks \['params', 'forward'"):
        Stack(object())
    with pytest.raises(ValueError, match="blocks must be a positive integer, got 0"):
        BiRNN(2, 1, blocks=0)
    with pytest.raises(ValueError, match=r"Bidirectional expected x of shape \(N, T, 2\), got \(3, 2\)"):
        Bidirectional(recurrent_network(2, 3), recurrent_network(2, 3)).forward(np.zeros((3, 2)))
