"""analysis.jacobian: exact derivatives of every output at every step w.r.t. every parameter.

Held three ways: against central finite differences of the outputs (float64, 1e-6
relative) for every model of the family; forward mode (tangents) against reverse mode
(BPTT passes) to rounding; and, where links are gradient-blocked, ``J^T dy`` against the
gradient ``backward`` gives. One hand-worked case has a closed form.
"""

import numpy as np
import pytest

import unrolled
from unrolled import Layer, Link, Network
from unrolled.analysis import jacobian
from unrolled.blocks import Stack
from unrolled.columns import recurrent_network
from unrolled.ensemble import Ensemble
from unrolled.models import Seq2Seq

F64 = dict(dtype=np.float64)


def finite_differences(model, x, eps=1e-6, **kw):
    """(N, T, n_out, P) by central differences of the outputs, in the order of params."""
    cols = []
    for p in model.params.values():
        flat = p.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = model.forward(x, **kw)[0]
            flat[i] = old - eps
            down = model.forward(x, **kw)[0]
            flat[i] = old
            cols.append((up - down) / (2 * eps))
    return np.stack(cols, axis=-1)


def randomize(model, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.normal(scale=scale, size=p.shape)
    return model


def relative(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


X = np.random.default_rng(7).normal(size=(3, 7, 2))
LENGTHS = np.array([7, 5, 3])
D = np.random.default_rng(8).normal(size=(3, 7, 1))

FAMILY = {   # models whose outputs are differentiable everywhere (no blocking, no kinks)
    "rnn-2-layers-skips": lambda: unrolled.RNN(2, 2, hidden=(3, 2), skip_input=True, skip_output=True, seed=1, **F64),
    "narx-closed": lambda: unrolled.NARX(2, 1, input_delays=2, output_delays=3, hidden=(3,), seed=1, **F64),
    "narx-open": lambda: unrolled.NARX(2, 1, input_delays=1, output_delays=2, hidden=(3, 2), feedback="open",
                                       seed=1, **F64),
    "narx-linear-closed": lambda: unrolled.NARX(2, 1, input_delays=1, output_delays=2, hidden=(2,), linear=True,
                                                seed=1, **F64),
    "tdnn-linear": lambda: unrolled.TDNN(2, 2, width=2, hidden=(3,), linear=True, seed=1, **F64),
    "elman-full": lambda: unrolled.Elman(2, 2, hidden=(3,), context_gradient="full", seed=1, **F64),
    "statespace": lambda: unrolled.StateSpace(2, 2, hidden=(3,), seed=1, **F64),
    "sigmoid-softmax": lambda: unrolled.RNN(2, 3, hidden=(3,), activation="sigmoid", output="softmax", seed=1, **F64),
    "birnn": lambda: unrolled.BiRNN(2, 2, hidden=(2,), seed=1, **F64),
    "stack": lambda: Stack(recurrent_network(2, (3,), seed=1, **F64), unrolled.TDNN(3, 2, width=1, hidden=(2,), seed=2,
                                                                                    **F64)),
    "ensemble": lambda: Ensemble([unrolled.RNN(2, 2, hidden=(2,), seed=s, **F64) for s in (1, 2)]),
}


def _inputs(name, model):
    return {"teacher": D} if name == "narx-open" else {}


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_the_jacobian_is_the_derivative_of_every_output(name):
    model = randomize(FAMILY[name](), seed=3)
    kw = dict(lengths=LENGTHS, **_inputs(name, model))
    J = jacobian(model, X, **kw)
    P = sum(p.size for p in model.params.values())
    assert J.shape == (3, 7, model.n_out, P) and J.dtype == np.float64
    want = finite_differences(model, X, **kw)
    want[~(np.arange(7)[None, :] < LENGTHS[:, None])] = 0.0          # padded steps: zero rows
    assert relative(J, want) < 1e-6
    assert not J[1, 5:].any() and not J[2, 3:].any()


@pytest.mark.parametrize("name", [n for n in sorted(FAMILY) if n not in ("birnn", "stack", "ensemble")])
def test_forward_and_reverse_mode_agree_on_both_backends(name):
    model = randomize(FAMILY[name](), seed=4)
    kw = dict(lengths=LENGTHS, **_inputs(name, model))
    forward = jacobian(model, X, method="forward", **kw)
    np.testing.assert_allclose(jacobian(model, X, method="reverse", **kw), forward, rtol=1e-10, atol=1e-13)
    model.network.backend = "numpy"
    np.testing.assert_allclose(jacobian(model, X, method="forward", **kw), forward, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("make", [
    lambda: unrolled.Elman(2, 2, hidden=(3,), seed=1, **F64),              # context copy blocked
    lambda: unrolled.Jordan(2, 2, hidden=(3,), seed=1, **F64),             # memory blocked
], ids=["elman", "jordan"])
def test_blocked_links_stay_blocked_j_transpose_dy_is_the_bptt_gradient(make):
    model = randomize(make(), seed=5)
    dy = np.random.default_rng(9).normal(size=(3, 7, 2))
    dy[~(np.arange(7)[None, :] < LENGTHS[:, None])] = 0.0
    grads, _ = model.backward(dy, model.forward(X, lengths=LENGTHS)[1])
    want = np.concatenate([grads[k].ravel() for k in model.params])
    for method in ("forward", "reverse"):
        J = jacobian(model, X, lengths=LENGTHS, method=method)
        np.testing.assert_allclose(np.einsum("ntk,ntkp->p", dy, J), want, rtol=1e-10, atol=1e-12)
    # and it is not the derivative: finite differences see through the blocked copy
    assert relative(J, finite_differences(model, X, lengths=LENGTHS)) > 1e-3


def test_a_seq2seq_decoders_outputs_by_its_own_lengths():
    rng = np.random.default_rng(0)
    model = randomize(Seq2Seq(recurrent_network(2, (3,), seed=0, **F64),
                              unrolled.RNN(2, 2, hidden=(3,), learn_init=False, seed=1, **F64)), seed=6)
    kw = dict(lengths=np.array([7, 4, 2]), decoder_inputs=rng.normal(size=(3, 5, 2)),
              decoder_lengths=np.array([5, 3, 1]))
    J = jacobian(model, X, **kw)
    want = finite_differences(model, X, **kw)
    want[~(np.arange(5)[None, :] < kw["decoder_lengths"][:, None])] = 0.0
    assert J.shape[:3] == (3, 5, 2) and relative(J, want) < 1e-6


def test_given_state_has_no_derivative_and_closed_loop_narx_reads_its_own_outputs():
    model = randomize(unrolled.NARX(0, 1, input_delays=None, output_delays=2, hidden=(3,), seed=0, **F64), seed=1)
    state = {"y": np.random.default_rng(2).normal(size=(2, 2, 1))}
    J = jacobian(model, None, steps=6, state=state)
    want = finite_differences(model, None, steps=6, state=state)
    assert J.shape == (2, 6, 1, sum(p.size for p in model.params.values())) and relative(J, want) < 1e-6
    # the dynamic derivative differs from the static one (the fed-back outputs held fixed):
    # the open loop fed the closed loop's own outputs computes the same y, not the same J
    open_loop = model.open_loop()
    y = model.predict(None, steps=6, state=state)
    np.testing.assert_allclose(open_loop.predict(None, teacher=y, state=state), y, rtol=1e-12)
    static = jacobian(open_loop, None, teacher=y, state=state)
    np.testing.assert_allclose(static[:, 0], J[:, 0], rtol=1e-12)           # t = 0: nothing fed back yet
    assert relative(static[:, 1:], J[:, 1:]) > 1e-2


def test_hand_worked_linear_recurrence():
    """h(t) = w h(t-1) + u x(t), h(-1) = 0, y = h: y(t) = sum_k w^k u x(t-k), so
    dy(t)/du = sum_k w^k x(t-k) and dy(t)/dw = sum_{k>=1} k w^(k-1) u x(t-k)."""
    net = Network({"x": 1}, {"h": Layer(1, "identity", bias=False, init="zeros")},
                  [Link("x", "h"), Link("h", "h", delay=1)], "h", **F64)
    w, u = 0.5, 2.0
    net.params["W[h->h@1]"][...] = w
    net.params["W[x->h@0]"][...] = u
    x = np.array([[[1.0], [-1.0], [3.0]]])
    J = jacobian(net, x)
    order = list(net.params)
    du, dw = J[0, :, 0, order.index("W[x->h@0]")], J[0, :, 0, order.index("W[h->h@1]")]
    xs = x[0, :, 0]
    np.testing.assert_allclose(du, [1.0, -1 + 0.5 * 1, 3 + 0.5 * -1 + 0.25 * 1], rtol=1e-14)
    np.testing.assert_allclose(dw, [0.0, u * 1.0, u * (xs[1] + 2 * w * xs[0])], rtol=1e-14)


def test_columns_follow_params_in_c_order():
    model = randomize(unrolled.RNN(2, 2, hidden=(3,), seed=0, **F64), seed=2)
    J = jacobian(model, X)
    want = finite_differences(model, X)
    offset = 0
    for name, p in model.params.items():
        index = (1, 0) if p.ndim == 2 else (1,) if p.ndim == 1 else None
        if index is not None and all(i < s for i, s in zip(index, p.shape)):
            col = offset + int(np.ravel_multi_index(index, p.shape))
            np.testing.assert_allclose(J[..., col], want[..., col], rtol=1e-6, atol=1e-9, err_msg=name)
        offset += p.size
    assert offset == J.shape[-1]


def test_bad_method_and_forward_mode_on_a_block_are_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        jacobian(unrolled.RNN(2, 1, hidden=(2,), **F64), X, method="numeric")
    with pytest.raises(ValueError, match="method='forward' needs a model on one engine network"):
        jacobian(unrolled.BiRNN(2, 1, hidden=(2,), **F64), X, method="forward")


@pytest.mark.parametrize("columns", [1, 4])
def test_forward_mode_in_blocks_that_split_a_weight_or_a_bias_gives_the_same_columns(monkeypatch, columns):
    """Blocks of one column, or of four that cut through weights and biases, take the
    indexed (not the strided) path for a cut array's own term; the columns are the same."""
    import unrolled.analysis as analysis
    model = randomize(FAMILY["narx-closed"](), seed=6)
    whole = jacobian(model, X, lengths=LENGTHS, method="forward")
    per_column = sum(a.size for a in model.forward(X)[1].A.values()) * 8 * 3      # (as _forward_jacobian sizes)
    monkeypatch.setattr(analysis, "TANGENT_BYTES", per_column * columns)
    np.testing.assert_allclose(jacobian(model, X, lengths=LENGTHS, method="forward"), whole, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jacobian(model, X, lengths=LENGTHS, method="reverse"), whole, rtol=1e-10, atol=1e-13)
