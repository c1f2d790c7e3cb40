"""Levenberg-Marquardt and Bayesian regularisation through fit; the first-order
regularisers; the linear path of NARX / TDNN; ensembles.

Where a closed form exists the tests hold the numbers to it: LM on a linear model is
least squares in one step; Bayesian regularisation of a linear model ends at the ridge
solution whose alpha and beta satisfy MacKay's fixed-point equations.
"""

import numpy as np
import pytest

import unrolled
from unrolled import Layer, Link, Network, fit
from unrolled.divergences import CrossEntropy, LastStep, SquaredError
from unrolled.ensemble import Ensemble
from unrolled.optim import SGD, Adam, LevenbergMarquardt, WeightDecay, WeightElimination

F64 = dict(dtype=np.float64)
RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 20, 3))
D = X @ np.array([[0.5], [-1.0], [2.0]]) + 0.3 + 0.1 * RNG.normal(size=(4, 20, 1))


def linear_net(seed=0):
    """y(t) = W x(t) + b: a linear model, so least squares has a closed form."""
    return Network({"x": 3}, {"y": Layer(1, "identity")}, [Link("x", "y")], "y", seed=seed, **F64)


def design():
    """The least-squares design matrix [x, 1] and targets, rows in the order of the steps."""
    A = np.concatenate([X.reshape(-1, 3), np.ones((80, 1))], axis=1)
    return A, D.reshape(-1)


def test_lm_on_a_linear_model_is_least_squares():
    net = linear_net()
    history = fit(net, X, D, divergence=SquaredError(), optimizer=LevenbergMarquardt(mu=1e-12), epochs=3,
                  progress=False)
    A, d = design()
    want, *_ = np.linalg.lstsq(A, d, rcond=None)
    np.testing.assert_allclose(net.params["W[x->y@0]"][0], want[:3], rtol=1e-8)
    np.testing.assert_allclose(net.params["b[y]"], want[3:], rtol=1e-8)
    # the loss is the divergence at the accepted weights, and the logs are there every epoch
    assert history.epochs >= 1 and set(history.logs) == {"sse", "ssw", "mu"}
    assert history.loss[-1] == pytest.approx(np.sum((A @ want - d) ** 2) / 4, rel=1e-9)
    assert history.loss[0] == pytest.approx(history.logs["sse"][0])


def test_bayesian_regularisation_of_a_linear_model_reaches_the_evidence_fixed_point():
    net = linear_net()
    history = fit(net, X, D, divergence=SquaredError(), optimizer=LevenbergMarquardt(bayesian=True), epochs=200,
                  progress=False)
    assert set(history.logs) == {"sse", "ssw", "mu", "gamma", "alpha", "beta"}
    A, d = design()
    e = A / 2.0                                   # residual rows: sqrt(1/N) (y - d), N = 4
    alpha, beta = history.logs["alpha"][-1], history.logs["beta"][-1]
    w = np.concatenate([net.params["W[x->y@0]"][0], net.params["b[y]"]])
    # the weights are the ridge (MAP) solution for these alpha, beta ...
    H = beta * e.T @ e + alpha * np.eye(4)
    np.testing.assert_allclose(w, np.linalg.solve(H, beta * e.T @ (d / 2.0)), rtol=1e-6)
    # ... and alpha, beta are MacKay's re-estimates at it (gamma the effective parameters)
    gamma = 4 - alpha * np.trace(np.linalg.inv(H))
    sse = np.sum((e @ w - d / 2.0) ** 2)
    assert alpha == pytest.approx(gamma / (2 * w @ w), rel=1e-5)
    assert beta == pytest.approx((80 - gamma) / (2 * sse), rel=1e-5)
    assert 3.0 < history.logs["gamma"][-1] <= 4.0


def test_lm_trains_a_closed_loop_narx_through_its_feedback():
    """The dynamic Jacobian: LM fits a closed-loop NARX, the loss never rises."""
    rng = np.random.default_rng(1)
    t = np.arange(60)
    d = (np.sin(0.3 * t) + 0.05 * rng.normal(size=60))[None, :, None]
    x = np.cos(0.3 * t)[None, :, None]
    model = unrolled.NARX(1, 1, input_delays=1, output_delays=2, hidden=(4,), seed=0, **F64)
    before = SquaredError()(model.predict(x), d)[0]
    history = fit(model, x, d, divergence=SquaredError(), optimizer=LevenbergMarquardt(), epochs=30, progress=False)
    assert np.all(np.diff(history.loss) <= 1e-12)
    assert history.loss[-1] < 0.05 * before
    assert history.loss[-1] == pytest.approx(SquaredError()(model.predict(x), d)[0], rel=1e-9)


def test_steps_with_zero_weight_do_not_count():
    w = np.ones(20)
    w[15:] = 0.0
    changed = D.copy()
    changed[:, 15:] += 100.0
    a, b = linear_net(), linear_net()
    for net, d in ((a, D), (b, changed)):
        fit(net, X, d, divergence=SquaredError(weights=w), optimizer=LevenbergMarquardt(bayesian=True), epochs=20,
            progress=False)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_lm_stops_when_converged_and_resumes_exactly(tmp_path):
    net = linear_net()
    history = fit(net, X, D, divergence=SquaredError(), optimizer=LevenbergMarquardt(), epochs=500, progress=False)
    assert history.stopped_early and history.epochs < 500
    # interrupted after 5 epochs and resumed = one run of 12
    rng = np.random.default_rng(3)
    x, d = rng.normal(size=(2, 30, 1)), rng.normal(size=(2, 30, 1))
    make = lambda: unrolled.NARX(1, 1, input_delays=1, output_delays=1, hidden=(3,), seed=0, **F64)  # noqa: E731
    whole = make()
    h_whole = fit(whole, x, d, divergence=SquaredError(), optimizer=LevenbergMarquardt(bayesian=True), epochs=12,
                  progress=False)
    part = make()
    path = tmp_path / "lm.npz"
    fit(part, x, d, divergence=SquaredError(), optimizer=LevenbergMarquardt(bayesian=True), epochs=5,
        progress=False, checkpoint=path)
    again = make()
    h_again = fit(again, x, d, divergence=SquaredError(), optimizer=LevenbergMarquardt(bayesian=True), epochs=12,
                  progress=False, resume=path)
    assert h_again.loss == h_whole.loss and h_again.logs == h_whole.logs
    for k in whole.params:
        np.testing.assert_array_equal(again.params[k], whole.params[k])


@pytest.mark.parametrize("kw, match", [
    (dict(divergence=CrossEntropy()), "minimises a sum of squares: divergence must be SquaredError"),
    (dict(divergence=LastStep(SquaredError())), "divergence must be SquaredError"),
    (dict(batch_size=2), "batch_size does not apply"),
    (dict(bptt=5), "bptt does not apply"),
    (dict(clip=1.0), "clip does not apply"),
    (dict(regularizer=WeightDecay(0.1)), "regularizer does not apply.*bayesian=True"),
    (dict(callbacks=[unrolled.LearningRateSchedule(lambda e, lr: lr)]), "no learning rate"),
])
def test_what_lm_cannot_take_is_refused_by_name(kw, match):
    net = linear_net()
    before = {k: v.copy() for k, v in net.params.items()}
    args = dict(divergence=SquaredError(), optimizer=LevenbergMarquardt(), epochs=2, progress=False)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        fit(net, X, D, **args)
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])


@pytest.mark.parametrize("kw, match", [
    (dict(mu=0), "expected mu > 0"), (dict(mu_decrease=1.0), "mu_decrease in \\(0, 1\\)"),
    (dict(mu_increase=1.0), "mu_increase > 1"), (dict(mu_max=1e-4), "mu_max > mu"),
])
def test_bad_lm_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        LevenbergMarquardt(**kw)
    with pytest.raises(TypeError, match="bayesian must be True or False"):
        LevenbergMarquardt(bayesian="yes")
    with pytest.raises(TypeError, match="whole-batch steps from the Jacobian"):
        LevenbergMarquardt().step({}, {})


# ------------------------------------------------------------------ regularisers
def test_steps_scored_per_sequence():
    lengths = np.array([3, 5])
    assert SquaredError().steps_scored(lengths, 5) == 4.0
    assert SquaredError(weights=np.array([1, 1, 0, 0, 0.5])).steps_scored(lengths, 5) == (2 + 2.5) / 2
    assert LastStep(SquaredError()).steps_scored(lengths, 5) == 1.0


def test_weight_decay_is_scaled_by_the_steps_scored_and_leaves_biases_alone():
    net = linear_net()
    w0 = {k: v.copy() for k, v in net.params.items()}
    y, cache = net.forward(X)
    grads, _ = net.backward(SquaredError()(y, D)[1], cache)
    fit(net, X, D, divergence=SquaredError(), optimizer=SGD(0.1), epochs=1, batch_size=4, shuffle=False,
        progress=False, regularizer=WeightDecay(0.01))
    np.testing.assert_allclose(net.params["W[x->y@0]"],
                               w0["W[x->y@0]"] - 0.1 * (grads["W[x->y@0]"] + 20 * 0.01 * w0["W[x->y@0]"]), rtol=1e-12)
    np.testing.assert_allclose(net.params["b[y]"], w0["b[y]"] - 0.1 * grads["b[y]"], rtol=1e-12)


def test_the_strength_means_the_same_for_longer_sequences():
    """Repeating every sequence twice over in time doubles the divergence and, with it, the
    penalty: the minimiser does not move (Adam(weight_decay=) would halve its effect).

    With N sequences of s scored steps, fit minimises (1/N) |A w - d|^2 + s lambda/2 |W|^2,
    whose minimiser solves (A^T A + N s lambda/2 M) w = A^T d (M: 1 on the weights, 0 on
    the bias); doubling the steps doubles both A^T A and s.
    """
    x, d = X[:, :10], D[:, :10]
    got = []
    for reps in (1, 2):
        net = linear_net()
        fit(net, np.concatenate([x] * reps, 1), np.concatenate([d] * reps, 1), divergence=SquaredError(),
            optimizer=SGD(0.01 / reps, momentum=0.9), epochs=1500, batch_size=4, shuffle=False, progress=False,
            regularizer=WeightDecay(0.5))
        got.append(np.concatenate([net.params["W[x->y@0]"][0], net.params["b[y]"]]))
    A = np.concatenate([x.reshape(-1, 3), np.ones((40, 1))], axis=1)
    want = np.linalg.solve(A.T @ A + 4 * 10 * 0.5 / 2 * np.diag([1.0, 1, 1, 0]), A.T @ d.reshape(-1))
    np.testing.assert_allclose(got[0], want, rtol=1e-8)
    np.testing.assert_allclose(got[1], want, rtol=1e-8)


def test_weight_elimination_gradient_is_its_penalty_derivative():
    reg = WeightElimination(0.3, scale=0.7)
    params = {"W[x->y@0]": np.array([[0.1, -2.0, 0.5]]), "b[y]": np.array([4.0])}
    g = reg.gradient(params)
    assert set(g) == {"W[x->y@0]"}
    eps = 1e-6
    for i in range(3):
        up = {k: v.copy() for k, v in params.items()}
        down = {k: v.copy() for k, v in params.items()}
        up["W[x->y@0]"][0, i] += eps
        down["W[x->y@0]"][0, i] -= eps
        assert g["W[x->y@0]"][0, i] == pytest.approx((reg.penalty(up) - reg.penalty(down)) / (2 * eps), rel=1e-7)
    # a large weight costs about `strength`, a small one as weight decay
    assert reg.penalty({"W[a->b@0]": np.array([1e4])}) == pytest.approx(0.3, rel=1e-6)
    assert reg.penalty({"W[a->b@0]": np.array([1e-3])}) == pytest.approx(0.3 * (1e-3 / 0.7) ** 2, rel=1e-5)


def test_a_bad_regularizer_is_refused():
    with pytest.raises(TypeError, match="regularizer must be an unrolled.optim.WeightDecay"):
        fit(linear_net(), X, D, divergence=SquaredError(), optimizer="adam", regularizer=0.1, progress=False)
    with pytest.raises(ValueError, match="expected strength >= 0"):
        WeightDecay(-1)


# -------------------------------------------------------------------- linear path
def test_linear_narx_is_an_ar_model_beside_its_units():
    model = unrolled.NARX(1, 1, input_delays=1, output_delays=2, hidden=(3,), linear=True, seed=0, **F64)
    assert {"W[x->y@0]", "W[x->y@1]", "W[y->y@1]", "W[y->y@2]"} <= set(model.params)
    model.params["W[h1->y@0]"][...] = 0.0          # the units switched off: what is left is linear
    a1, a2, c0, c1, b = 0.6, -0.2, 1.5, 0.4, 0.1
    model.params["W[y->y@1]"][...] = a1
    model.params["W[y->y@2]"][...] = a2
    model.params["W[x->y@0]"][...] = c0
    model.params["W[x->y@1]"][...] = c1
    model.params["b[y]"][...] = b
    x = np.random.default_rng(0).normal(size=(1, 12, 1))
    y = model.predict(x)[0, :, 0]
    want, xs = [], x[0, :, 0]
    for t in range(12):
        past = lambda s, k: s[t - k] if t - k >= 0 else 0.0  # noqa: E731
        want.append(a1 * past(want, 1) + a2 * past(want, 2) + c0 * xs[t] + c1 * past(xs, 1) + b)
    np.testing.assert_allclose(y, want, rtol=1e-12)
    # one set of weights in both modes: the open loop fed the outputs gives the same
    np.testing.assert_allclose(model.open_loop().predict(x, teacher=y[None, :, None])[0, :, 0], want, rtol=1e-12)
    again = unrolled.TDNN(1, 1, width=2, linear=True, seed=0)
    assert again.get_config()["linear"] is True and "W[x->y@2]" in again.params
    with pytest.raises(TypeError, match="linear must be True or False"):
        unrolled.NARX(1, 1, input_delays=1, output_delays=1, linear=1)


def test_saved_linear_models_load_as_they_were(tmp_path):
    model = unrolled.NARX(0, 1, input_delays=None, output_delays=3, hidden=(2,), linear=True, seed=4, **F64)
    unrolled.save(model, tmp_path / "m.npz")
    back = unrolled.load(tmp_path / "m.npz")
    assert back.get_config() == model.get_config()
    np.testing.assert_array_equal(back.predict(None, steps=5, state={"y": np.ones((1, 3, 1))}),
                                  model.predict(None, steps=5, state={"y": np.ones((1, 3, 1))}))
    plain = unrolled.NARX(0, 1, input_delays=None, output_delays=3, hidden=(2,), seed=4)
    assert "linear" not in plain.get_config()       # files written before the option read the same


# ---------------------------------------------------------------------- ensembles
def narx_members(seeds):
    return [unrolled.NARX(3, 1, input_delays=1, output_delays=2, hidden=(3,), feedback="open", seed=s, **F64)
            for s in seeds]


def test_an_ensemble_is_the_mean_of_its_members_and_their_spread():
    ens = Ensemble(narx_members([0, 1, 2]))
    ys = np.stack([m.predict(X, teacher=D) for m in ens.members])
    mean, spread = ens.predict(X, teacher=D, return_spread=True)
    np.testing.assert_allclose(mean, ys.mean(0), rtol=1e-14)
    np.testing.assert_allclose(spread, ys.std(0), rtol=1e-12)
    assert sorted(ens.params)[:2] == ["0.W[h1->y@0]", "0.W[x->h1@0]"] and len(ens) == 3
    # backward is that of the mean: the Jacobian of the ensemble is the mean of the members'
    from unrolled.analysis import jacobian
    J = jacobian(ens, X[:1, :6], teacher=D[:1, :6])
    parts = [jacobian(m, X[:1, :6], teacher=D[:1, :6]) / 3 for m in ens.members]
    np.testing.assert_allclose(J, np.concatenate(parts, axis=-1), rtol=1e-10, atol=1e-14)


def test_fitting_an_ensemble_trains_each_member_on_its_own_in_parallel_or_not(tmp_path):
    kw = dict(divergence=SquaredError(), optimizer=LevenbergMarquardt(bayesian=True), epochs=8, seed=3)
    one = Ensemble(narx_members([0, 1]))
    histories = fit(one, X, D, progress=False, **kw)
    alone = narx_members([0, 1])
    for m, h in zip(alone, histories):
        fit(m, X, D, progress=False, **{**kw, "optimizer": LevenbergMarquardt(bayesian=True), "seed": None})
    for m, ref in zip(one.members, alone):          # LM is full batch: the seed does not matter
        for k in m.params:
            np.testing.assert_array_equal(m.params[k], ref.params[k])
    two = Ensemble(narx_members([0, 1]))
    parallel = two.fit(X, D, n_jobs=2, **kw)
    assert [h.loss for h in parallel] == [h.loss for h in histories]
    for k in one.params:
        np.testing.assert_array_equal(two.params[k], one.params[k])
    unrolled.save(two, tmp_path / "ens.npz")
    back = unrolled.load(tmp_path / "ens.npz")
    np.testing.assert_array_equal(back.predict(X, teacher=D), two.predict(X, teacher=D))


def test_ensemble_members_get_their_own_optimizer_state_and_seeds():
    ens = Ensemble([unrolled.RNN(3, 1, hidden=(3,), seed=s, **F64) for s in (0, 0)])     # the same start
    fit(ens, X, D, divergence=SquaredError(), optimizer=Adam(0.01), epochs=2, batch_size=1, seed=5, progress=False)
    a, b = ens.members
    assert not np.array_equal(a.params["W[x->h1@0]"], b.params["W[x->h1@0]"])   # shuffled apart


def test_ensemble_forecasts_average_the_members():
    members = [unrolled.NARX(0, 1, input_delays=None, output_delays=2, hidden=(2,), seed=s, **F64) for s in (0, 1)]
    ens = Ensemble(members)
    past = np.sin(np.arange(10.0))[None, :, None]
    mean, spread = ens.forecast(None, past, 4, return_spread=True)
    each = np.stack([m.forecast(None, past, 4) for m in members])
    np.testing.assert_allclose(mean, each.mean(0), rtol=1e-14)
    np.testing.assert_allclose(spread, each.std(0), rtol=1e-12)


def test_bad_ensembles_are_refused():
    with pytest.raises(ValueError, match="at least one model"):
        Ensemble([])
    with pytest.raises(ValueError, match="models\\[1\\] has n_out = 2"):
        Ensemble([unrolled.RNN(3, 1, hidden=(2,)), unrolled.RNN(3, 2, hidden=(2,))])
    with pytest.raises(TypeError, match="models\\[0\\] must be a model"):
        Ensemble([3])
    with pytest.raises(TypeError, match="forecast needs members that forecast"):
        Ensemble([unrolled.RNN(3, 1, hidden=(2,))]).forecast(None, None, 2)


def test_the_regressor_trains_with_levenberg_marquardt_and_bayesian_regularisation():
    from unrolled.estimators import SequenceClassifier, SequenceRegressor
    for name in ("lm", "bayesian"):
        est = SequenceRegressor(model="rnn", hidden=(3,), optimizer=name, epochs=200, random_state=0,
                               tol=np.inf).fit(X, D[..., 0])
        assert est.loss_curve_[-1] < 0.2 * est.loss_curve_[0]
        if name == "lm":                      # LM accepts only descents (Bayesian: of beta E_D + alpha E_W)
            assert np.all(np.diff(est.loss_curve_) <= 1e-12)
    with pytest.raises(ValueError, match="divergence must be SquaredError"):
        SequenceClassifier(model="rnn", hidden=(3,), optimizer="lm", epochs=2).fit(X, np.array([0, 1, 0, 1]))
