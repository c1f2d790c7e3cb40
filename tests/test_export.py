"""Every model to PyTorch (``to_torch``: one module) and to ONNX (``to_onnx``).

The torch module must compute our column: outputs to 1e-10 in float64 (1e-5 in float32)
and the gradient of every parameter and of the input equal to ``model.backward``'s, on
random columns (delays, fixed and blocked links, gated and plain layers, softmax outputs,
lengths, given states) and on every named model.
"""

import numpy as np
import onnxruntime
import pytest
import torch

import unrolled
from unrolled import (GRU, LSTM, NARX, RNN, TDNN, BiRNN, Bidirectional, Elman, Ensemble, Jordan, Layer, Link,
                      Network, Seq2Seq, Stack, StateSpace)
from unrolled.blocks import recurrent_network
from unrolled.torch_column import ColumnModule, EstimatorModule, PairModule

F64 = dict(rtol=1e-10, atol=1e-10)
F32 = dict(rtol=1e-5, atol=1e-5)


def _tol(dtype):
    return F64 if np.dtype(dtype) == np.float64 else F32


def _randomize(model, rng, scale=0.5):
    for p in model.params.values():
        p[...] = rng.normal(size=p.shape) * scale
    return model


def _tensor(value, dtype):
    return torch.tensor(np.asarray(value, dtype=dtype))


def _compare(model, x, *, lengths=None, seed=0, state=None, expect=ColumnModule, **inputs):
    """Outputs, final state and every gradient of ``to_torch(model)`` against ours."""
    dtype = np.dtype(model.dtype)
    tol = _tol(dtype)
    module = unrolled.to_torch(model)
    assert type(module) is expect
    xt = None if x is None else _tensor(x, dtype).requires_grad_(True)
    extra = {k: (_tensor(v, dtype) if isinstance(v, np.ndarray) and k != "decoder_lengths" else v)
             for k, v in inputs.items()}
    kw = {} if state is None else {"state": {k: _tensor(v, dtype) for k, v in state.items()}}
    if isinstance(model, BiRNN):                    # (a BiRNN has no state to return)
        yt, final = module(xt, lengths=lengths, **extra), None
    else:
        yt, final = module(xt, lengths=lengths, return_state=True, **kw, **extra)
    c = np.random.default_rng(seed).normal(size=tuple(yt.shape)).astype(dtype)
    (yt * torch.tensor(c)).sum().backward()
    y, cache = model.forward(x, lengths=lengths, **({} if state is None else {"state": state}), **inputs)
    grads, dx = model.backward(c, cache)
    np.testing.assert_allclose(yt.detach().numpy(), y, **tol)
    assert np.abs(y).max() > 1e-3                                   # (not a column of zeros)
    torch_grads = module.unrolled_grads()
    assert set(torch_grads) == set(grads) == set(model.params)
    for key in grads:
        np.testing.assert_allclose(torch_grads[key], grads[key], err_msg=key, **tol)
    if dx is not None and xt is not None:
        dxt = torch.zeros_like(xt) if xt.grad is None else xt.grad    # (none reached x: all blocked)
        np.testing.assert_allclose(dxt.numpy(), dx, **tol)
    if final is not None and isinstance(cache.state, dict):
        for node, value in cache.state.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_allclose(final[node].detach().numpy(), value, err_msg=node, **tol)
    return module, grads


# --------------------------------------------------------------- random columns
def _random_column(rng, dtype):
    """A random column: 3-5 layers (plain of every activation, LSTM, GRU), delay-0 links only
    forward (no cycle), delayed links anywhere (delays 1-3), some fixed (constants) and some
    blocked, learned or zero initial histories, a softmax or other output."""
    n_layers = int(rng.integers(3, 6))
    names = [f"h{i}" for i in range(n_layers - 1)] + ["y"]
    layers, cells = {}, {}
    for i, name in enumerate(names):
        cell = None if name == "y" else rng.choice([None, None, "lstm", "gru"])
        act = "tanh" if cell else str(rng.choice(["tanh", "sigmoid", "relu", "identity"]))
        if name == "y":
            act = str(rng.choice(["softmax", "softmax", "identity", "sigmoid"]))
        cells[name] = cell
        layers[name] = Layer(int(rng.integers(2, 5)), act, bias=bool(rng.random() < 0.8),
                             init=str(rng.choice(["learned", "zeros"])), cell=cell)
    sizes = {"x": 3, **{n: layers[n].size for n in names}}
    links, seen = [], set()

    def add(src, dst, delay):
        if (src, dst, delay) in seen:
            return
        seen.add((src, dst, delay))
        weight, trainable, gradient = None, True, "full"
        r = rng.random()
        if r < 0.15 and src != "x":
            weight, trainable = rng.normal(size=(layers[dst].rows, sizes[src])) * 0.5, False
        elif r < 0.3 and src != "x":
            gradient = "blocked"
        links.append(Link(src, dst, delay=delay, weight=weight, trainable=trainable, gradient=gradient))

    for i, name in enumerate(names):
        add("x" if i == 0 else names[i - 1], name, 0)                 # a path from x to y
        if cells[name]:
            links.append(Link(name, name, delay=1))                     # the gated layer's W_hh
            seen.add((name, name, 1))
    for _ in range(int(rng.integers(3, 8))):
        src = str(rng.choice(["x"] + names))
        dst = str(rng.choice(names))
        delay = int(rng.integers(1, 4))
        if src != "x" and names.index(src) < names.index(dst) and rng.random() < 0.5:
            delay = 0
        add(src, dst, delay)
    return Network({"x": 3}, layers, links, "y", dtype=dtype, seed=int(rng.integers(1 << 30)))


@pytest.mark.parametrize("seed", range(10))
def test_random_column_outputs_and_gradients_float64(seed):
    rng = np.random.default_rng(seed)
    net = _randomize(_random_column(rng, np.float64), rng)
    N, T = 4, 7
    x = rng.normal(size=(N, T, 3))
    lengths = rng.integers(1, T + 1, size=N) if seed % 2 else None
    module, _ = _compare(net, x, lengths=lengths, seed=seed)
    assert set(module.names.values()) == set(net.params)


@pytest.mark.parametrize("seed", range(4))
def test_random_column_float32(seed):
    rng = np.random.default_rng(100 + seed)
    net = _randomize(_random_column(rng, np.float32), rng, 0.4)
    x = rng.normal(size=(3, 6, 3)).astype(np.float32)
    _compare(net, x, lengths=np.array([6, 4, 2]), seed=seed)


def test_random_columns_cover_what_they_claim():
    """The ten random columns hold every kind the tests above promise."""
    kinds = set()
    for seed in range(10):
        net = _random_column(np.random.default_rng(seed), np.float64)
        kinds |= {layer.cell or layer.activation for layer in net.layers.values()}
        kinds |= {"fixed" for lk in net.links if not lk.trainable} | {"blocked" for lk in net.links
                                                                       if lk.gradient == "blocked"}
        kinds |= {f"delay{lk.delay}" for lk in net.links}
    assert kinds >= {"lstm", "gru", "softmax", "tanh", "relu", "sigmoid", "identity", "fixed", "blocked",
                     "delay0", "delay1", "delay2", "delay3"}


def test_given_state_its_gradient_and_the_final_state():
    """A column started from a given history: the final state, and dDIV/dstate equal ours."""
    rng = np.random.default_rng(3)
    net = _randomize(Network({"x": 2}, {"h": Layer(3), "g": Layer(2, cell="lstm"), "y": Layer(2, "softmax")},
                             [Link("x", "h"), Link("h", "h", delay=2), Link("h", "g"), Link("g", "g", delay=1),
                              Link("g", "y"), Link("y", "h", delay=1, gradient="blocked")], "y",
                             dtype=np.float64), rng)
    N, T = 3, 5
    x = rng.normal(size=(N, T, 2))
    state = {"h": rng.normal(size=(N, 2, 3)), "g.c": rng.normal(size=(N, 1, 2)), "y": rng.normal(size=(N, 1, 2))}
    lengths = np.array([5, 2, 3])
    module = unrolled.to_torch(net)
    st = {k: torch.tensor(v, requires_grad=True) for k, v in state.items()}
    y, final = module(torch.tensor(x), lengths=lengths, state=st, return_state=True)
    c = rng.normal(size=y.shape)
    dfinal = {k: rng.normal(size=tuple(v.shape)) for k, v in final.items()}
    ((y * torch.tensor(c)).sum() + sum((final[k] * torch.tensor(v)).sum() for k, v in dfinal.items())).backward()
    yo, cache = net.forward(x, lengths=lengths, state=state)
    grads, _, dstate_in = net.backward_full(c, cache, dstate=dfinal)
    np.testing.assert_allclose(y.detach().numpy(), yo, **F64)
    for k in cache.state:
        np.testing.assert_allclose(final[k].detach().numpy(), cache.state[k], err_msg=k, **F64)
    for k in state:
        np.testing.assert_allclose(st[k].grad.numpy(), dstate_in[k], err_msg=k, **F64)
    for k, g in module.unrolled_grads().items():
        np.testing.assert_allclose(g, grads[k], err_msg=k, **F64)


# ----------------------------------------------------------------- named models
def _x(rng, model, N=3, T=6, dtype=np.float64):
    return rng.normal(size=(N, T, model.n_in)).astype(dtype)


LENGTHS = np.array([6, 3, 1])


@pytest.mark.parametrize("make, expect", [
    (lambda: RNN(3, 2, hidden=(4, 3), skip_input=True, skip_output=True, output="softmax", dtype=np.float64),
     ColumnModule),
    (lambda: RNN(3, 2, hidden=(4, 4), activation="relu", dtype=np.float64), PairModule),
    (lambda: RNN(3, 2, hidden=(4,), activation="sigmoid", learn_init=False, dtype=np.float64), ColumnModule),
    (lambda: LSTM(3, 2, hidden=(4, 4), dtype=np.float64), PairModule),
    (lambda: GRU(3, 2, hidden=(4, 4), bias=False, dtype=np.float64), PairModule),
    (lambda: LSTM(3, 2, hidden=(4, 3), skip_input=True, output="softmax", dtype=np.float64), ColumnModule),
    (lambda: GRU(3, 2, hidden=(3, 4), skip_output=True, dtype=np.float64), ColumnModule),
    (lambda: NARX(3, 2, input_delays=2, output_delays=3, hidden=(4, 3), linear=True, dtype=np.float64),
     ColumnModule),
    (lambda: Elman(3, 2, hidden=(4, 3), dtype=np.float64), ColumnModule),
    (lambda: Elman(3, 2, hidden=(4,), context_gradient="full", dtype=np.float64), ColumnModule),
    (lambda: Jordan(3, 2, hidden=(4,), decay=0.3, dtype=np.float64), ColumnModule),
    (lambda: TDNN(3, 2, width=3, hidden=(4, 3), dtype=np.float64), ColumnModule),
    (lambda: StateSpace(3, 2, hidden=(4,), dtype=np.float64), ColumnModule),
    (lambda: BiRNN(3, 2, hidden=(4,), blocks=2, dtype=np.float64), PairModule),
    (lambda: BiRNN(3, 2, hidden=(4,), cell="lstm", dtype=np.float64), PairModule),
    (lambda: BiRNN(3, 2, hidden=(4, 3), cell="gru", output="softmax", dtype=np.float64), ColumnModule),
    (lambda: unrolled.CharRNN("abcd", hidden=(5,), dtype=np.float64), ColumnModule),
], ids=["rnn-skips-softmax", "rnn-pair", "rnn-sigmoid-zero-init", "lstm-pair", "gru-pair-nobias", "lstm-skips",
        "gru-skips", "narx-closed", "elman", "elman-full", "jordan", "tdnn", "statespace", "birnn-pair",
        "birnn-lstm-pair", "birnn-gru-column", "charrnn"])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["whole", "lengths"])
def test_named_model(make, expect, lengths):
    rng = np.random.default_rng(7)
    model = _randomize(make(), rng)
    _compare(model, _x(rng, model), lengths=lengths, expect=expect)


def test_narx_open_loop_reads_the_teacher_and_calls_its_history_y():
    rng = np.random.default_rng(1)
    model = _randomize(NARX(2, 2, input_delays=1, output_delays=2, hidden=(4,), feedback="open",
                            dtype=np.float64), rng)
    x, d = _x(rng, model), rng.normal(size=(3, 6, 2))
    state = {"y": rng.normal(size=(3, 2, 2)), "x": rng.normal(size=(3, 1, 2))}
    module, _ = _compare(model, x, lengths=LENGTHS, teacher=d, state=state)
    with pytest.raises(ValueError, match="reads the input 'teacher': pass teacher="):
        module(torch.tensor(x))


def test_narx_without_inputs_runs_steps_from_its_state():
    rng = np.random.default_rng(2)
    model = _randomize(NARX(0, 1, input_delays=None, output_delays=3, hidden=(4,), dtype=np.float64), rng)
    state = {"y": rng.normal(size=(2, 3, 1))}
    y, cache = model.forward(None, state=state, steps=5)
    yt, final = unrolled.to_torch(model)(None, state={"y": torch.tensor(state["y"])}, steps=5, return_state=True)
    np.testing.assert_allclose(yt.detach().numpy(), y, **F64)
    np.testing.assert_allclose(final["y"].detach().numpy(), cache.state["y"], **F64)


def test_state_of_a_pair_module():
    """An LSTM pair starts from a given (h, c) and returns torch's h_n, c_n as our state."""
    rng = np.random.default_rng(5)
    model = _randomize(LSTM(2, 2, hidden=(3, 3), dtype=np.float64), rng)
    x = _x(rng, model)
    state = {k: rng.normal(size=(3, 1, 3)) for k in ("h1", "h2", "h1.c", "h2.c")}
    _compare(model, x, lengths=LENGTHS, state=state, expect=PairModule)


def test_stack_of_bidirectional_blocks_and_a_column():
    rng = np.random.default_rng(4)
    bi = Bidirectional(recurrent_network(3, (4,), dtype=np.float64, seed=1),
                       recurrent_network(3, (2,), cell="gru", dtype=np.float64, seed=2))
    head = Network({"x": 6}, {"h": Layer(3), "y": Layer(2, "softmax")},
                   [Link("x", "h"), Link("h", "h", delay=1), Link("h", "y")], "y", dtype=np.float64)
    model = _randomize(Stack(bi, head, names=["bi", "head"]), rng)
    _compare(model, _x(rng, model), lengths=LENGTHS)
    _compare(model, _x(rng, model))


def test_seq2seq():
    rng = np.random.default_rng(6)
    model = _randomize(Seq2Seq(LSTM(3, 2, hidden=(4,), dtype=np.float64),
                               LSTM(2, 3, hidden=(4,), output="softmax", learn_init=False, dtype=np.float64)), rng)
    x, u = _x(rng, model), rng.normal(size=(3, 4, 2))
    _compare(model, x, lengths=LENGTHS, decoder_inputs=u, decoder_lengths=np.array([4, 2, 3]))


def test_ensemble():
    rng = np.random.default_rng(8)
    model = _randomize(Ensemble([NARX(2, 1, input_delays=1, output_delays=2, hidden=(3,), dtype=np.float64, seed=s)
                                 for s in range(3)]), rng)
    _compare(model, _x(rng, model), lengths=LENGTHS)


@pytest.mark.parametrize("name", ["SequenceRegressor", "SequenceClassifier"])
def test_fitted_estimators(name):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(8, 5, 2))
    y = rng.normal(size=(8, 5, 1)) if name == "SequenceRegressor" else np.arange(8) % 3
    est = getattr(unrolled, name)(model="elman", hidden=(4,), epochs=2, tol=np.inf, dtype="float64",
                                  random_state=0).fit(X, y)
    module = unrolled.to_torch(est)
    assert isinstance(module, EstimatorModule) and isinstance(module.model, ColumnModule)
    _compare(est.model_, X, lengths=np.array([5, 4, 3, 2, 1, 5, 5, 5]))
    lengths = np.array([5, 4, 3, 2, 1, 5, 5, 5])
    # the module computes what the estimator predicts: its scaling, its model, its read-out
    for lens in (None, lengths):
        out = module(torch.tensor(X), lengths=lens).detach().numpy()
        if name == "SequenceClassifier":                   # pooled softmax: rows sum to one
            np.testing.assert_allclose(out, est.predict_proba(X, lens), **F64)
        else:
            np.testing.assert_allclose(out, est.predict(X, lens), **F64)       # y was (N, T, 1)
    assert np.allclose(module.input_mean.numpy(), est.input_mean_) and module.standardized
    assert unrolled.from_torch(module).get_config() == est.model_.get_config()
    with pytest.raises(unrolled.NotFittedError, match="not fitted yet: call fit before to_torch"):
        unrolled.to_torch(getattr(unrolled, name)())


@pytest.mark.parametrize("make, expect", [
    (lambda: RNN(3, 2, hidden=(4, 4), dtype=np.float32), PairModule),
    (lambda: GRU(3, 2, hidden=(4,), dtype=np.float32), PairModule),
    (lambda: NARX(3, 2, input_delays=2, output_delays=2, hidden=(4,), dtype=np.float32), ColumnModule),
    (lambda: BiRNN(3, 2, hidden=(4, 3), cell="lstm", output="softmax", dtype=np.float32), ColumnModule),
], ids=["rnn-pair", "gru-pair", "narx", "birnn-column"])
def test_float32_models(make, expect):
    rng = np.random.default_rng(11)
    model = _randomize(make(), rng, 0.4)
    module, _ = _compare(model, _x(rng, model, dtype=np.float32), lengths=LENGTHS, expect=expect)
    assert all(p.dtype == torch.float32 for p in module.parameters())


# --------------------------------------------------------- names, round trips, errors
def test_parameters_are_named_after_ours_and_fixed_links_are_buffers():
    model = Jordan(2, 1, hidden=(3,), decay=0.25, dtype=np.float64, seed=0)
    module = unrolled.to_torch(model)
    assert module.names["W_x_to_h1_at_0"] == "W[x->h1@0]" and module.keys["b[h1]"] == "b_h1"
    assert set(module.names.values()) == set(model.params)
    assert dict(module.named_parameters()).keys() == {f"params.{k}" for k in module.names}
    buffers = dict(module.named_buffers())
    assert set(buffers) == {"fixed_W_m_to_m_at_1", "fixed_W_y_to_m_at_1"}
    np.testing.assert_array_equal(buffers["fixed_W_m_to_m_at_1"].numpy(), 0.25 * np.eye(1))
    nested = unrolled.to_torch(BiRNN(2, 1, hidden=(3, 3), dtype=np.float64))
    assert nested.names["block1_fwd_W_h1_to_h2_at_0"] == "block1.fwd.W[h1->h2@0]"


def test_from_torch_takes_the_module_back_with_what_torch_trained():
    rng = np.random.default_rng(12)
    for model in (_randomize(Elman(2, 1, hidden=(3,), dtype=np.float64), rng),
                  _randomize(LSTM(2, 1, hidden=(3, 3), dtype=np.float64), rng),
                  _randomize(GRU(2, 1, hidden=(3,), dtype=np.float64), rng)):
        module = unrolled.to_torch(model)
        with torch.no_grad():
            for p in module.parameters():
                p.add_(0.125)
        back = unrolled.from_torch(module)
        assert type(back) is type(model)
        x = _x(rng, model)
        np.testing.assert_allclose(back.predict(x), module(torch.tensor(x)).detach().numpy(), **F64)
        for key, value in back.params.items():
            assert not np.allclose(value, model.params[key]), key      # every weight came from torch
    with pytest.raises(TypeError, match="a module made by unrolled.to_torch.*got Linear alone"):
        unrolled.from_torch(torch.nn.Linear(2, 2))


def test_the_pair_is_inside_and_unpacking_it_is_deprecated():
    rng = np.random.default_rng(13)
    model = _randomize(RNN(2, 1, hidden=(3,), dtype=np.float64), rng)
    module = unrolled.to_torch(model)
    assert isinstance(module.rnn, torch.nn.RNN) and isinstance(module.linear, torch.nn.Linear)
    np.testing.assert_array_equal(module.params["init_h1"].detach().numpy(), model.params["init[h1]"])
    with pytest.warns(DeprecationWarning, match="use module.rnn and module.linear"):
        rnn, linear = module
    assert rnn is module.rnn and linear is module.linear
    # the pair still runs as torch runs it, with the learned h0 from torch_h0
    x = _x(rng, model)
    out, _ = rnn(torch.tensor(x), unrolled.torch_h0(model, 3))
    np.testing.assert_allclose(linear(out).detach().numpy(), model.predict(x), **F64)


def test_clear_errors():
    with pytest.raises(TypeError, match="to_torch takes a Network, a model built on one.*got str"):
        unrolled.to_torch("rnn")
    module = unrolled.to_torch(BiRNN(2, 1, hidden=(3, 3), dtype=np.float64))
    x = torch.zeros(2, 4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="needs the whole sequence"):
        module(x, state={})
    with pytest.raises(ValueError, match="needs the whole sequence"):
        unrolled.to_torch(BiRNN(2, 1, hidden=(3,), dtype=np.float64))(x, return_state=True)
    with pytest.raises(TypeError, match="must be a torch.float64 tensor like the module's weights, got torch.float32"):
        module(x.float())
    column = unrolled.to_torch(Elman(2, 1, hidden=(3,), dtype=np.float64))
    with pytest.raises(ValueError, match=r"expected lengths of shape \(2,\), one per sequence, got \(3,\)"):
        column(x, lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"lengths must lie in 1 .. T = 4, got \[0, 5\]"):
        column(x, lengths=[0, 5])
    with pytest.raises(ValueError, match=r"state names \['q'\], which no link reads with a delay"):
        column(x, state={"q": torch.zeros(2, 1, 3)})
    with pytest.raises(ValueError, match=r"expected state\['h1'\] of shape \(2, 1, 3\) \(N, D, size\), got \(2, 3\)"):
        column(x, state={"h1": torch.zeros(2, 3, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"unknown input\(s\) \['teacher'\]"):
        column(x, teacher=torch.zeros(2, 4, 1, dtype=torch.float64))


# ------------------------------------------------------------------------- ONNX



def _onnx_outputs(path, **inputs):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(inputs)
    return session.run(["y"], {k: v.astype(np.float32) for k, v in inputs.items()})[0]


@pytest.mark.parametrize("make", [
    lambda: RNN(3, 2, hidden=(4, 4)),
    lambda: LSTM(3, 2, hidden=(4, 4)),
    lambda: GRU(3, 2, hidden=(4,)),
    lambda: NARX(3, 2, input_delays=2, output_delays=3, hidden=(4,)),
    lambda: BiRNN(3, 2, hidden=(4,), blocks=2),
    lambda: BiRNN(3, 2, hidden=(4, 3), cell="gru", output="softmax"),
    lambda: LSTM(3, 2, hidden=(4, 3), skip_input=True, output="softmax"),
    lambda: Elman(3, 2, hidden=(4,)),
    lambda: TDNN(3, 2, width=3, hidden=(4,)),
], ids=["rnn", "lstm", "gru", "narx-closed", "birnn", "birnn-gru-column", "lstm-column", "elman", "tdnn"])
def test_onnx_matches_onnxruntime_for_any_N_and_T(make, tmp_path):
    rng = np.random.default_rng(21)
    model = _randomize(make(), rng, 0.4)
    path = unrolled.to_onnx(model, tmp_path / "model.onnx")
    for N, T in [(2, 3), (5, 11), (1, 1)]:                  # other N and T than the export's
        x = rng.normal(size=(N, T, 3)).astype(np.float32)
        np.testing.assert_allclose(_onnx_outputs(path, x=x), model.predict(x), **F32)


def test_onnx_of_a_fitted_classifier_gives_its_probabilities(tmp_path):
    rng = np.random.default_rng(22)
    X = rng.normal(size=(12, 6, 2)).astype(np.float32)
    est = unrolled.SequenceClassifier(hidden=(5,), epochs=3, tol=np.inf, random_state=0).fit(X, np.arange(12) % 3)
    path = unrolled.to_onnx(est, tmp_path / "classifier.onnx")
    probs = _onnx_outputs(path, x=X)                                 # (N, n_classes): its predict_proba
    np.testing.assert_allclose(probs, est.predict_proba(X), **F32)
    last = unrolled.SequenceClassifier(hidden=(5,), epochs=3, tol=np.inf, random_state=0, readout="last")
    last.fit(X, np.arange(12) % 3)
    np.testing.assert_allclose(_onnx_outputs(unrolled.to_onnx(last, tmp_path / "last.onnx"), x=X),
                               last.predict_proba(X), **F32)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, **F32)


def test_onnx_with_a_second_input(tmp_path):
    """An open-loop NARX reads its teacher, a Seq2Seq its decoder inputs (their own T)."""
    rng = np.random.default_rng(23)
    narx = _randomize(NARX(2, 1, input_delays=1, output_delays=2, hidden=(3,), feedback="open"), rng)
    x, d = rng.normal(size=(3, 7, 2)), rng.normal(size=(3, 7, 1))
    out = _onnx_outputs(unrolled.to_onnx(narx, tmp_path / "narx.onnx"), x=x, teacher=d)
    np.testing.assert_allclose(out, narx.predict(x.astype(np.float32), teacher=d.astype(np.float32)), **F32)
    s2s = _randomize(Seq2Seq(GRU(2, 1, hidden=(4,)), GRU(3, 3, hidden=(4,), output="softmax", learn_init=False)), rng)
    u = rng.normal(size=(3, 4, 3))
    out = _onnx_outputs(unrolled.to_onnx(s2s, tmp_path / "s2s.onnx"), x=x, decoder_inputs=u)
    np.testing.assert_allclose(out, s2s.predict(x.astype(np.float32), decoder_inputs=u.astype(np.float32)), **F32)


def test_onnx_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"the old model")

    def broken(module, args, f, **kw):
        with open(f, "wb") as out:
            out.write(b"half a graph")
        raise RuntimeError("the exporter failed")
    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="the exporter failed"):
        unrolled.to_onnx(RNN(2, 1, hidden=(3,)), path)
    assert path.read_bytes() == b"the old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]        # no temporary file left


def test_onnx_refuses_a_network_without_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"reads sequences x \(N, T, n_in\); this one reads no input"):
        unrolled.to_onnx(NARX(0, 1, input_delays=None, output_delays=2), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="to_torch takes a Network"):
        unrolled.to_onnx(object(), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())
