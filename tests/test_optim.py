import numpy as np
import pytest
import torch

from unrolled import optim
from unrolled.optim import SGD, Adagrad, Adam, RMSprop, clip_grad_norm

SHAPES = {"W": (4, 3), "b": (3,), "U": (2, 2, 2)}


def random_problem(seed, steps=5):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    grads = [{k: rng.normal(size=s) for k, s in SHAPES.items()} for _ in range(steps)]
    return params, grads


VARIANTS = [
    (SGD, dict(lr=0.1), torch.optim.SGD),
    (SGD, dict(lr=0.1, momentum=0.9), torch.optim.SGD),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True), torch.optim.SGD),
    (SGD, dict(lr=0.05, momentum=0.5, weight_decay=0.01), torch.optim.SGD),
    (SGD, dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1), torch.optim.SGD),
    (SGD, dict(), torch.optim.SGD),
    (Adam, dict(), torch.optim.Adam),
    (Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), torch.optim.Adam),
    (Adagrad, dict(), torch.optim.Adagrad),
    (Adagrad, dict(lr=0.1, eps=1e-6, weight_decay=0.05), torch.optim.Adagrad),
    (RMSprop, dict(), torch.optim.RMSprop),
    (RMSprop, dict(lr=0.01, alpha=0.9, eps=1e-6, momentum=0.8), torch.optim.RMSprop),
    (RMSprop, dict(lr=0.01, momentum=0.5, weight_decay=0.1), torch.optim.RMSprop),
]


@pytest.mark.parametrize("cls, kw, torch_cls", VARIANTS)
def test_matches_torch_for_five_steps(cls, kw, torch_cls):
    params, grads = random_problem(7)
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    topt = torch_cls(list(tparams.values()), **kw)
    opt = cls(**kw)
    for g in grads:
        opt.step(params, g)
        for k, tp in tparams.items():
            tp.grad = torch.tensor(g[k])
        topt.step()
        for k in params:
            np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-12, atol=1e-15)
    # the parameters really moved
    assert not np.allclose(params["W"], random_problem(7)[0]["W"])


@pytest.mark.parametrize("cls, kw, torch_cls", VARIANTS[::3])
def test_update_is_in_place_and_grads_untouched(cls, kw, torch_cls):
    params, grads = random_problem(8, steps=2)
    before = {k: v.copy() for k, v in params.items()}
    ids = {k: id(v) for k, v in params.items()}
    grads_copy = [{k: v.copy() for k, v in g.items()} for g in grads]
    opt = cls(**kw)
    for g in grads:
        opt.step(params, g)
    assert {k: id(v) for k, v in params.items()} == ids
    assert all(not np.array_equal(params[k], before[k]) for k in params)
    for g, gc in zip(grads, grads_copy):
        for k in g:
            np.testing.assert_array_equal(g[k], gc[k])


def test_sgd_by_hand():
    p = {"w": np.array([1.0, -2.0])}
    opt = SGD(lr=0.5, momentum=0.5)
    opt.step(p, {"w": np.array([2.0, 2.0])})
    # b = g = [2, 2]; p = [1, -2] - 0.5 [2, 2] = [0, -3]
    np.testing.assert_array_equal(p["w"], [0.0, -3.0])
    opt.step(p, {"w": np.array([0.0, 4.0])})
    # b = 0.5 [2, 2] + [0, 4] = [1, 5]; p = [0, -3] - 0.5 [1, 5] = [-0.5, -5.5]
    np.testing.assert_array_equal(p["w"], [-0.5, -5.5])


def test_adam_first_step_by_hand():
    p = {"w": np.array([1.0, 1.0])}
    Adam(lr=0.1).step(p, {"w": np.array([3.0, -0.5])})
    # t = 1: m_hat = g, v_hat = g^2, step = lr g / (|g| + eps) ~ lr sign(g)
    np.testing.assert_allclose(p["w"], [0.9, 1.1], rtol=1e-8)


def test_state_is_lazy_per_name_with_param_dtype_and_reset():
    params = {"a": np.ones(3, dtype=np.float32), "b": np.ones(2)}
    grads = {"a": np.full(3, 0.5), "b": np.full(2, 0.5)}  # float64 grads for float32 a
    opt = Adam(lr=0.1)
    assert opt.state == {}
    opt.step(params, grads)
    assert params["a"].dtype == np.float32
    assert opt.state["a"]["m"].dtype == np.float32 and opt.state["b"]["v"].dtype == np.float64
    assert opt.state["a"]["step"] == 1
    opt.reset()
    assert opt.state == {}
    # after reset the next step is a first step again: the same move as before
    a_before = params["a"].copy()
    opt.step(params, grads)
    np.testing.assert_allclose(a_before - params["a"], 1 - np.float32(0.9), rtol=1e-6)


def test_key_and_shape_mismatch():
    params = {"w": np.zeros(2), "b": np.zeros(1)}
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['c'\]"):
        SGD(0.1).step(params, {"w": np.zeros(2), "c": np.zeros(1)})
    with pytest.raises(ValueError, match=r"expected grads\['w'\] of shape \(2,\), got \(3,\)"):
        SGD(0.1).step(params, {"w": np.zeros(3), "b": np.zeros(1)})
    with pytest.raises(TypeError, match=r"expected params\['w'\] to be a floating ndarray"):
        SGD(0.1).step({"w": [0.0, 1.0]}, {"w": np.zeros(2)})


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    _, grads = random_problem(9, steps=1)
    grads = grads[0]
    originals = {k: v.copy() for k, v in grads.items()}
    clipped, total = clip_grad_norm(grads, max_norm)
    tensors = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)
    ttotal = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    assert isinstance(total, float)
    assert total == pytest.approx(ttotal.item(), rel=1e-14)
    for t, k in zip(tensors, grads):
        np.testing.assert_allclose(clipped[k], t.grad.numpy(), rtol=1e-14)
        np.testing.assert_array_equal(grads[k], originals[k])
        assert clipped[k] is not grads[k]
    new_norm = np.sqrt(sum(np.sum(v**2) for v in clipped.values()))
    assert new_norm == pytest.approx(min(total, max_norm), rel=1e-5)


def test_clip_grad_norm_by_hand():
    clipped, total = clip_grad_norm({"a": np.array([3.0]), "b": np.array([[4.0]])}, 1.0)
    # ||(3, 4)|| = 5, coef = 1 / (5 + 1e-6)
    assert total == 5.0
    np.testing.assert_allclose(clipped["a"], [3 / (5 + 1e-6)], rtol=1e-15)
    np.testing.assert_allclose(clipped["b"], [[4 / (5 + 1e-6)]], rtol=1e-15)
    with pytest.raises(ValueError, match="expected max_norm > 0, got 0"):
        clip_grad_norm({"a": np.ones(1)}, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [dict(), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)])
def test_adam_compiled_equals_its_numpy_formulas_to_the_bit(dtype, kw, monkeypatch):
    if optim._compiled() is None:
        pytest.skip("numba is not installed: Adam runs its NumPy formulas only")
    params, grads = random_problem(11, steps=4)
    runs = []
    for compiled in (True, False):
        if not compiled:
            monkeypatch.setattr(optim, "_compiled", lambda: None)
        p = {k: v.astype(dtype) for k, v in params.items()}
        opt = Adam(**kw)
        for g in grads:
            opt.step(p, {k: v.astype(dtype) for k, v in g.items()})
        runs.append((p, opt.state))
    for k in SHAPES:
        np.testing.assert_array_equal(runs[0][0][k], runs[1][0][k])
        np.testing.assert_array_equal(runs[0][1][k]["v"], runs[1][1][k]["v"])
        assert runs[0][0][k].dtype == dtype


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SGD(lr=0.0), "expected lr > 0, got 0.0"),
        (lambda: SGD(lr=-1.0), "expected lr > 0"),
        (lambda: SGD(lr=0.1, momentum=-0.1), "expected momentum >= 0"),
        (lambda: SGD(lr=0.1, nesterov=True), "expected momentum > 0 with nesterov=True"),
        (lambda: SGD(lr=0.1, weight_decay=-1), "expected weight_decay >= 0"),
        (lambda: Adam(betas=(1.0, 0.999)), r"expected beta1 in \[0, 1\), got 1.0"),
        (lambda: Adam(betas=(0.9, -0.1)), r"expected beta2 in \[0, 1\)"),
        (lambda: Adam(betas=(0.9,)), r"expected betas = \(beta1, beta2\)"),
        (lambda: Adam(eps=0.0), "expected eps > 0"),
        (lambda: Adagrad(lr=float("nan")), "expected lr > 0"),
        (lambda: Adagrad(eps=-1e-10), "expected eps > 0"),
        (lambda: RMSprop(alpha=1.5), r"expected alpha in \[0, 1\)"),
        (lambda: RMSprop(momentum=-1), "expected momentum >= 0"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_registry():
    assert type(optim.get("sgd", lr=0.1)) is SGD
    adam = optim.get("adam", lr=0.01, betas=(0.5, 0.6))
    assert type(adam) is Adam and adam.lr == 0.01 and adam.betas == (0.5, 0.6)
    assert type(optim.get("adagrad")) is Adagrad and type(optim.get("rmsprop")) is RMSprop
    assert optim.get(adam) is adam
    with pytest.raises(ValueError, match=r"expected an optimizer name in \['adagrad', 'adam', 'lm', 'rmsprop', 'sgd'\], got 'lbfgs'"):
        optim.get("lbfgs")
