"""The scikit-learn style estimators: the contract, learning, errors and the convergence warning.

Warnings are errors here (pytest's configuration), so every test either trains until
early stopping ends it, or says that it expects a ConvergenceWarning.
"""

import inspect
import pickle
import warnings

import numpy as np
import pytest

from unrolled import NARX, RNN
from unrolled.estimators import (
    ConvergenceWarning,
    NotFittedError,
    SequenceClassifier,
    SequenceRegressor,
    _converged,
    clone,
)

ESTIMATORS = (SequenceRegressor, SequenceClassifier)
ignore_convergence = pytest.mark.filterwarnings("ignore::unrolled.estimators.ConvergenceWarning")


def delayed_copy(N, T, rng, delay=2):
    """x (N, T, 1) white noise; y (N, T) = x one ``delay`` steps earlier (0 before t = delay)."""
    x = rng.normal(size=(N, T, 1))
    y = np.zeros((N, T))
    y[:, delay:] = x[:, :T - delay, 0]
    return x, y


def sign_of_sum(N, T, rng):
    """x (N, T, 1), lengths in [3, T], label "pos"/"neg" = sign of the sum over valid steps.

    The padded steps hold 50.0: a model that read them would be wrong on most sequences.
    """
    x = rng.normal(size=(N, T, 1))
    lengths = rng.integers(3, T + 1, size=N)
    valid = np.arange(T)[None, :] < lengths[:, None]
    total = np.sum(np.where(valid, x[..., 0], 0.0), axis=1)
    x[~valid] = 50.0
    return x, np.where(total > 0, "pos", "neg"), lengths


def r2_by_hand(pred, true, lengths):
    """R^2 per output over the valid steps, averaged over outputs; pred, true (N, T, n_out)."""
    valid = np.arange(true.shape[1])[None, :] < lengths[:, None]
    p, t = pred[valid].astype(np.float64), true[valid].astype(np.float64)
    return float(np.mean(1 - np.sum((t - p) ** 2, axis=0) / np.sum((t - t.mean(axis=0)) ** 2, axis=0)))


# ---------------------------------------------------------------------------
# the contract: parameters, clone, repr


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_init_stores_exactly_its_arguments_and_checks_nothing(cls):
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    est = cls(epochs=-5, model="no such model", hidden="nonsense")   # invalid: only fit says so
    assert sorted(vars(est)) == sorted(names)
    assert est.epochs == -5 and est.model == "no such model" and est.hidden == "nonsense"
    assert sorted(est.get_params()) == sorted(names)
    assert names == ["model", "hidden", "activation", "epochs", "batch_size", "lr", "optimizer", "patience",
                     "validation_fraction", "clip", "tol", "n_iter_no_change", "random_state", "dtype", "verbose",
                     "width", "input_delays", "output_delays", "feedback", "context_gradient", "decay", "blocks",
                     "cell", "standardize"] + (["output"] if cls is SequenceRegressor else ["readout"])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_get_params_set_params_round_trip(cls):
    hidden = (7, 3)
    est = cls(hidden=hidden, epochs=11, lr=0.003, random_state=4)
    params = est.get_params()
    assert params["hidden"] is hidden and params["epochs"] == 11 and params["lr"] == 0.003
    assert params["model"] == ("rnn" if cls is SequenceRegressor else "gru") and params["batch_size"] == 32 and params["width"] is None
    rebuilt = cls(**params)
    assert rebuilt.get_params() == params
    assert rebuilt.set_params(epochs=3, model="tdnn", width=2) is rebuilt
    assert (rebuilt.epochs, rebuilt.model, rebuilt.width) == (3, "tdnn", 2)
    assert est.epochs == 11                                    # the original is untouched
    with pytest.raises(ValueError, match=r"invalid parameter 'epoch' for .*expected one of"):
        est.set_params(epoch=3)
    with pytest.raises(ValueError, match="no parameters to set"):
        est.set_params(model__hidden=3)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_repr_shows_the_changed_arguments_in_constructor_order(cls):
    name = cls.__name__
    assert repr(cls()) == f"{name}()"
    assert repr(cls(epochs=5, hidden=(4,), model="tdnn", width=3)) == \
        f"{name}(model='tdnn', hidden=(4,), epochs=5, width=3)"


def test_clone_is_unfitted_with_equal_parameters_and_refits_identically():
    rng = np.random.default_rng(0)
    x, y = delayed_copy(16, 10, rng)
    est = SequenceRegressor(hidden=(5,), epochs=4, batch_size=8, random_state=3, tol=np.inf).fit(x, y)
    twin = clone(est)
    assert type(twin) is SequenceRegressor and twin is not est
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "model_") and not hasattr(twin, "loss_curve_")
    twin.fit(x, y)                                   # an int random_state: an exact clone
    assert twin.loss_curve_ == est.loss_curve_
    np.testing.assert_array_equal(twin.predict(x), est.predict(x))
    with pytest.raises(TypeError, match="not an estimator instance"):
        clone(SequenceRegressor)


# ---------------------------------------------------------------------------
# fitting


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_returns_self_and_sets_fitted_attributes(cls):
    rng = np.random.default_rng(1)
    x, y_reg = delayed_copy(20, 6, rng)
    y = y_reg if cls is SequenceRegressor else (x.sum(axis=(1, 2)) > 0).astype(int)
    est = cls(model="rnn", hidden=(4,), epochs=5, batch_size=8, random_state=0, tol=np.inf)
    assert est.fit(x, y) is est
    assert est.n_features_in_ == 1 and est.n_iter_ == 5 and est.best_epoch_ == 4
    assert len(est.loss_curve_) == 5 and all(np.isfinite(est.loss_curve_))
    assert isinstance(est.model_, RNN) and est.model_.hidden == (4,)
    assert est.history_.loss == est.loss_curve_
    assert not hasattr(est, "validation_scores_") and not hasattr(est, "validation_loss_curve_")
    if cls is SequenceClassifier:
        np.testing.assert_array_equal(est.classes_, [0, 1])
        assert est.model_.n_out == 2
    else:
        assert est.n_outputs_ == 1 and est.model_.n_out == 1


def test_fit_is_reproducible_under_random_state():
    rng = np.random.default_rng(2)
    x, y = delayed_copy(24, 8, rng)

    def run(state):
        est = SequenceRegressor(hidden=(6,), epochs=6, batch_size=8, validation_fraction=0.25,
                                random_state=state, tol=np.inf)
        return est.fit(x, y)

    a, b, c = run(0), run(0), run(1)
    assert a.loss_curve_ == b.loss_curve_ and a.validation_scores_ == b.validation_scores_
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert a.loss_curve_ != c.loss_curve_
    assert not np.array_equal(a.predict(x), c.predict(x))
    g1 = run(np.random.default_rng(5)).loss_curve_              # a Generator: reproducible as its seed
    g2 = run(np.random.default_rng(5)).loss_curve_
    assert g1 == g2


def test_regressor_learns_a_delayed_copy_and_stops_early():
    # y(t) = x(t - 2): the RNN must hold each input for two steps.
    rng = np.random.default_rng(0)
    x, y = delayed_copy(64, 20, rng)
    x_test, y_test = delayed_copy(64, 20, rng)
    est = SequenceRegressor(epochs=400, batch_size=16, patience=5, validation_fraction=0.25, random_state=0)
    est.fit(x, y)                                   # stopped early: no ConvergenceWarning
    assert est.history_.stopped_early and est.n_iter_ < 400
    assert len(est.validation_scores_) == len(est.validation_loss_curve_) == est.n_iter_
    best = est.best_epoch_
    assert est.validation_loss_curve_[best] == min(est.validation_loss_curve_)
    assert est.predict(x_test).shape == (64, 20)
    assert est.score(x_test, y_test) >= 0.98        # measured 0.997 (90 epochs); 0.996-0.998 for random_state 0-3
    # the same targets as (N, T, 1) give (N, T, 1) predictions and the same R^2
    assert est.score(x_test, y_test[..., None]) == est.score(x_test, y_test)


@ignore_convergence
@pytest.mark.parametrize("model, extra, delay, at_least", [
    # measured R^2 on held-out data, random_state 0 (and the range over random_state 0-3)
    ("rnn", {}, 2, 0.98),                  # 0.995 (0.994-0.995)
    ("tdnn", {"width": 3}, 2, 0.98),       # 0.997 (0.995-0.997)
    ("narx", {}, 2, 0.98),                 # 0.995 (0.994-0.996)
    ("elman", {}, 2, 0.9),                 # 0.978 (0.937-0.994): no gradient through the context copy
    ("statespace", {}, 2, 0.98),           # 0.995 (0.994-0.995)
    ("birnn", {"blocks": 1}, 2, 0.98),     # 0.995 (0.994-0.995)
    ("jordan", {"decay": 0.5}, 0, 0.95),   # 0.996 (0.995-0.998); it remembers outputs, not inputs: y(t) = x(t)
])
def test_every_model_of_the_family_regresses(model, extra, delay, at_least):
    rng = np.random.default_rng(0)
    x, y = delayed_copy(64, 20, rng, delay)
    x_test, y_test = delayed_copy(64, 20, rng, delay)
    est = SequenceRegressor(model=model, epochs=40, batch_size=16, random_state=0, **extra).fit(x, y)
    assert type(est.model_).__name__.lower() == model
    assert est.score(x_test, y_test) >= at_least


@ignore_convergence
def test_narx_trained_open_loop_predicts_closed_loop():
    rng = np.random.default_rng(0)
    x, y = delayed_copy(64, 20, rng)
    x_test, y_test = delayed_copy(64, 20, rng)
    est = SequenceRegressor(model="narx", feedback="open", input_delays=3, output_delays=1, epochs=40,
                            batch_size=16, validation_fraction=0.2, random_state=0).fit(x, y)
    assert isinstance(est.model_, NARX) and est.model_.feedback == "closed"
    assert est.score(x_test, y_test) >= 0.98                    # measured 0.996 (0.995-0.996, random_state 0-3)
    assert est.validation_scores_[-1] >= 0.98                   # scored closed loop, as predict runs


@ignore_convergence
def test_multi_output_regression_and_r2_over_valid_steps_only():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(48, 12, 2))
    y = np.stack([np.roll(x[..., 0], 1, axis=1), -x[..., 1]], axis=-1)       # (48, 12, 2)
    y[:, 0, 0] = 0.0
    est = SequenceRegressor(epochs=30, batch_size=16, random_state=0).fit(x, y)
    assert est.n_outputs_ == 2 and est.predict(x).shape == (48, 12, 2)
    lengths = rng.integers(1, 13, size=48)
    pred = est.predict(x, lengths)
    padded = np.arange(12)[None, :] >= lengths[:, None]
    assert np.all(pred[padded] == 0.0)                          # padded steps give zero outputs
    garbage = y.copy()
    garbage[padded] = 1e6                                       # never read by score
    expected = r2_by_hand(pred, y, lengths)
    assert est.score(x, garbage, lengths) == pytest.approx(expected, abs=1e-12)
    assert expected >= 0.95                                     # measured 0.990 (0.989-0.990)


def test_r2_worked_by_hand():
    # true 1, 2, 5 (mean 8/3), predicted 1, 2, 3:
    #   SS_res = (5 - 3)^2 = 4,  SS_tot = (5/3)^2 + (2/3)^2 + (7/3)^2 = 78/9
    #   R^2 = 1 - 4 / (78/9) = 1 - 36/78 = 7/13
    out = np.array([[[1.0], [2.0], [3.0]]])
    true = np.array([[[1.0], [2.0], [5.0]]])
    assert SequenceRegressor._score_outputs(out, true, np.array([3])) == pytest.approx(7 / 13, abs=1e-15)
    assert SequenceRegressor._score_outputs(out, true, np.array([2])) == 1.0     # step 2 is padding
    # a constant target: 1 when hit exactly, else 0 (sklearn's convention)
    const = np.ones((1, 3, 1))
    assert SequenceRegressor._score_outputs(const, const, np.array([3])) == 1.0
    assert SequenceRegressor._score_outputs(out, const, np.array([3])) == 0.0


def test_classifier_learns_sign_of_sum_with_mixed_lengths_and_string_labels():
    rng = np.random.default_rng(1)
    x, y, lengths = sign_of_sum(512, 12, rng)
    x_test, y_test, lengths_test = sign_of_sum(512, 12, rng)
    est = SequenceClassifier(epochs=300, patience=10, validation_fraction=0.2, random_state=0, readout="last",
                             standardize=False)
    est.fit(x, y, lengths)                          # stopped early: no ConvergenceWarning
    assert est.history_.stopped_early
    np.testing.assert_array_equal(est.classes_, ["neg", "pos"])
    proba = est.predict_proba(x_test, lengths_test)
    assert proba.shape == (512, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(est.predict_log_proba(x_test, lengths_test), np.log(proba), rtol=1e-12)
    pred = est.predict(x_test, lengths_test)
    np.testing.assert_array_equal(pred, est.classes_[np.argmax(proba, axis=1)])
    assert set(pred) == {"neg", "pos"}
    accuracy = est.score(x_test, y_test, lengths_test)
    assert accuracy == np.mean(pred == y_test)
    assert accuracy >= 0.93             # measured 0.965 (28 epochs); 0.959-0.975 for random_state 0-4
    # read at the wrong step (the padded end) the same sequences score much worse
    assert est.score(x_test, y_test) < accuracy - 0.1


@ignore_convergence
def test_classifier_three_integer_classes():
    # label = which of 3 input channels has the largest sum; labels 11, 3, 7 (sorted: 3, 7, 11)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 8, 3))
    labels = np.array([11, 3, 7])
    y = labels[np.argmax(x.sum(axis=1), axis=1)]
    est = SequenceClassifier(model="rnn", epochs=40, random_state=0).fit(x[:200], y[:200])
    np.testing.assert_array_equal(est.classes_, [3, 7, 11])
    assert est.predict_proba(x[200:]).shape == (100, 3)
    assert est.score(x[200:], y[200:]) >= 0.75       # chance 1/3; measured 0.86 (0.82-0.86, random_state 0-3)


@ignore_convergence
def test_refit_replaces_every_fitted_attribute():
    rng = np.random.default_rng(5)
    x, y = delayed_copy(20, 6, rng)
    est = SequenceRegressor(hidden=(3,), epochs=3, validation_fraction=0.25, random_state=0).fit(x, y)
    assert len(est.validation_scores_) == 3
    x2 = np.concatenate([x, x], axis=-1)
    est.set_params(validation_fraction=0.0, epochs=2).fit(x2, np.stack([y, y], axis=-1))
    assert est.n_features_in_ == 2 and est.n_outputs_ == 2 and est.n_iter_ == 2
    assert not hasattr(est, "validation_scores_") and not hasattr(est, "validation_loss_curve_")
    # bad arguments are refused before anything changes ...
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        est.set_params(epochs=0).fit(x, y)
    assert est.n_features_in_ == 2 and est.n_iter_ == 2
    # ... a fit that fails while training leaves no stale fit behind
    with pytest.raises(ValueError, match="unknown activation"):
        est.set_params(epochs=2, activation="swish").fit(x, y)
    assert [k for k in vars(est) if k.endswith("_")] == []
    with pytest.raises(NotFittedError):
        est.predict(x)


def test_fitted_estimator_pickles():
    rng = np.random.default_rng(6)
    x, y, lengths = sign_of_sum(30, 6, rng)
    est = SequenceClassifier(hidden=(4,), epochs=3, random_state=0, tol=np.inf).fit(x, y, lengths)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(x, lengths), est.predict_proba(x, lengths))


# ---------------------------------------------------------------------------
# the convergence warning


def test_convergence_rule_worked_by_hand():
    # k = 2 last epochs against all before; tol = 0.01 of the best before.
    # [10, 5, 4.99, 4.98]: best before 5, best since 4.98: 0.02 <= 0.05 -> converged
    assert _converged([10, 5, 4.99, 4.98], 0.01, 2)
    # [10, 5, 4.9, 4.8]: 0.2 > 0.05 -> still falling
    assert not _converged([10, 5, 4.9, 4.8], 0.01, 2)
    # rising at the end is converged (no improvement at all): 5 - 6 <= 0.05
    assert _converged([10, 5, 6, 7], 0.01, 2)
    # k >= epochs: the first epoch stands for "before": 10 - 9.95 = 0.05 <= 0.1
    assert _converged([10, 9.95], 0.01, 10)
    assert not _converged([10, 9], 0.01, 10)
    assert not _converged([10], 0.01, 10)          # one epoch: never converged
    assert _converged([0.0, 0.0], 0.0, 1)          # a perfect fit cannot improve


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_too_few_epochs_warn_that_training_did_not_converge(cls):
    rng = np.random.default_rng(7)
    x, y_reg = delayed_copy(32, 10, rng)
    y = y_reg if cls is SequenceRegressor else np.where(x.sum(axis=(1, 2)) > 0, "a", "b")
    est = cls(epochs=3, batch_size=8, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"ran all 3 epochs and the training loss is still falling"):
        est.fit(x, y)
    assert est.n_iter_ == 3                        # fitted all the same
    assert est.loss_curve_[-1] < 0.999 * min(est.loss_curve_[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls(epochs=3, batch_size=8, random_state=0, tol=np.inf).fit(x, y)   # tol=inf: never warns


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predict_before_fit_raises_not_fitted(cls):
    x = np.zeros((2, 3, 1))
    methods = ["predict", "predict_proba", "predict_log_proba"] if cls is SequenceClassifier else ["predict"]
    for method in methods:
        with pytest.raises(NotFittedError, match=rf"this {cls.__name__} is not fitted yet: call fit"):
            getattr(cls(), method)(x)
    with pytest.raises(NotFittedError):
        cls().score(x, np.zeros(2) if cls is SequenceClassifier else np.zeros((2, 3)))
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    assert issubclass(ConvergenceWarning, UserWarning)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("params, error, message", [
    ({"model": "transformer"}, ValueError, r"model must be one of \['birnn', .*got 'transformer'"),
    ({"epochs": 0}, ValueError, "epochs must be a positive integer, got 0"),
    ({"batch_size": 2.5}, ValueError, "batch_size must be a positive integer, got 2.5"),
    ({"lr": -1.0}, ValueError, "lr must be a positive number, got -1.0"),
    ({"tol": -1}, ValueError, "tol must be a number >= 0"),
    ({"clip": 0}, ValueError, "clip must be None or a positive gradient norm"),
    ({"validation_fraction": 1.0}, ValueError, r"validation_fraction must be a number in \[0, 1\)"),
    ({"patience": 3}, ValueError, "patience stops on the validation loss: set validation_fraction > 0"),
    ({"optimizer": "lbfgs"}, ValueError, r"optimizer must be one of \['adagrad', 'adam', 'lm', 'rmsprop', 'sgd', 'bayesian'\]"),
    ({"dtype": "float16"}, TypeError, "dtype must be 'float32' or 'float64'"),
    ({"width": 3, "model": "rnn"}, ValueError, r"width=3 applies to model='tdnn' only, not model='rnn'"),
    ({"model": "tdnn", "decay": 0.3}, ValueError, "decay=0.3 applies to model='jordan' only"),
    ({"random_state": "seed"}, TypeError, "random_state must be None, an int or a numpy.random.Generator"),
    ({"validation_fraction": 0.01}, ValueError, "leaves 0 for validation and 8 for training"),
    # the model's own checks, reached through fit
    ({"activation": "swish", "model": "rnn"}, ValueError, "unknown activation 'swish'"),
    ({"hidden": (4, 0)}, ValueError, "hidden must be one or more positive layer sizes"),
    ({"model": "jordan", "decay": 2.0}, ValueError, r"decay must be a number in \[0, 1\], got 2.0"),
])
def test_bad_hyperparameters_fail_in_fit(cls, params, error, message):
    x = np.zeros((8, 3, 1))
    y = np.zeros((8, 3)) if cls is SequenceRegressor else np.arange(8) % 2
    est = cls(**params)                            # construction accepts anything
    with pytest.raises(error, match=message):
        est.fit(x, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bad_X_names_expected_and_received_shapes(cls):
    y = np.zeros((4, 5)) if cls is SequenceRegressor else np.arange(4) % 2
    est = cls(epochs=1)
    with pytest.raises(ValueError, match=r"expected X of shape \(N, T, n_in\), \(N, T\) \(one feature per step\) "
                                         r"or a list of \(T_i, n_in\) / \(T_i,\) arrays, got shape \(4,\)"):
        est.fit(np.zeros(4), y)
    with pytest.raises(TypeError, match="X must hold real numbers"):
        est.fit(np.full((4, 5, 1), "a"), y)
    bad = np.zeros((4, 5, 1))
    bad[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"X holds NaN or infinity \(sequence 1, step 2\) within its lengths$"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match=r"X holds NaN or infinity \(sequence 0, step 0\).*as float32, the model's "
                                         r"dtype, which turns values beyond ±3.4e\+38 into infinity"):
        est.fit(np.full((4, 5, 1), 1e200), y)      # finite in float64, not in float32
    with pytest.raises(TypeError, match=r"X\[0\] must be an array of real numbers, got nested sequences of "
                                        r"different lengths \(a ragged list\)"):
        est.fit([[[1.0], [2.0, 3.0]]] * 4, y)
    with pytest.raises(ValueError, match=r"at least one sequence, one step and one feature, got \(0, 5, 1\)"):
        est.fit(np.zeros((0, 5, 1)), y[:0])
    with pytest.raises(ValueError, match=r"at least one sequence, one step and one feature, got \(4, 5, 0\)"):
        est.fit(np.zeros((4, 5, 0)), y)
    with pytest.raises(ValueError, match=r"expected lengths of shape \(4,\)"):
        est.fit(np.zeros((4, 5, 1)), y, lengths=[5, 5])


@ignore_convergence
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predict_checks_the_number_of_features(cls):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(6, 4, 2))
    y = x.sum(axis=-1) if cls is SequenceRegressor else np.arange(6) % 2
    est = cls(hidden=(3,), epochs=1, random_state=0).fit(x, y)
    with pytest.raises(ValueError, match=rf"expected X of shape \(N, T, 2\): {cls.__name__} was fitted "
                                         r"with 2 input features, got \(6, 4, 3\)"):
        est.predict(np.zeros((6, 4, 3)))
    assert est.predict(np.zeros((2, 9, 2))).shape[0] == 2     # any N and T


def test_regressor_bad_y_names_shapes():
    x = np.zeros((4, 5, 1))
    est = SequenceRegressor(epochs=1)
    with pytest.raises(ValueError, match=r"expected y of shape \(4, 5\) or \(4, 5, n_out\) like X "
                                         r"\(4, 5, 1\), got \(4, 6\)"):
        est.fit(x, np.zeros((4, 6)))
    with pytest.raises(ValueError, match=r"got \(4,\) - help: one target per sequence is output='last'"):
        est.fit(x, np.zeros(4))
    with pytest.raises(ValueError, match="y holds NaN or infinity"):
        est.fit(x, np.full((4, 5), np.inf))
    with pytest.raises(TypeError, match="y must hold real numbers"):
        est.fit(x, np.full((4, 5), "a"))


@ignore_convergence
def test_regressor_score_checks_y_against_the_fitted_outputs():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(6, 4, 1))
    est = SequenceRegressor(hidden=(3,), epochs=1, random_state=0).fit(x, np.zeros((6, 4, 2)))
    with pytest.raises(ValueError, match=r"expected y of shape \(6, 4, 2\) like X \(6, 4, 1\), got \(6, 4\)"):
        est.score(x, np.zeros((6, 4)))


def test_classifier_bad_y_and_lengths():
    x = np.zeros((4, 5, 1))
    est = SequenceClassifier(epochs=1)
    with pytest.raises(ValueError, match=r"expected y of shape \(4,\), one label per sequence of X, "
                                         r"got \(4, 2\) - help: per-step targets"):
        est.fit(x, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"got \(4, 5\) - help: per-step targets are a SequenceRegressor's"):
        est.fit(x, np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"expected at least 2 classes in y, got 1 class: \['a'\]"):
        est.fit(x, ["a"] * 4)
    with pytest.raises(ValueError, match=r"non-integer numbers, which look like a continuous \(regression\) target"):
        est.fit(x, [0.5, 1.0, 2.0, 0.0])
    with pytest.raises(TypeError, match="labels must be of one sortable kind"):
        est.fit(x, np.array(["a", 1, "b", 2], dtype=object))
    with pytest.raises(ValueError, match=r"every length must be >= 1, got lengths\[2\] = 0"):
        est.fit(x, [0, 1, 0, 1], lengths=[5, 3, 0, 1])
    with pytest.raises(ValueError, match="feedback='open' feeds back true past per-step targets"):
        SequenceClassifier(model="narx", feedback="open").fit(x, [0, 1, 0, 1])


# ---------------------------------------------------------------------------
# scikit-learn itself, when installed


def test_scikit_learn_interop():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone as sk_clone
    from sklearn.base import is_classifier, is_regressor
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.utils import estimator_checks
    from sklearn.utils.validation import check_is_fitted

    for est in (SequenceRegressor(epochs=3, hidden=(4,)), SequenceClassifier(epochs=3, hidden=(4,))):
        name = type(est).__name__
        # the checks that do not feed 2-D tables (our X is 3-D)
        for check in ("check_parameters_default_constructible", "check_no_attributes_set_in_init",
                      "check_get_params_invariance", "check_set_params", "check_estimator_repr"):
            getattr(estimator_checks, check)(name, est)
        twin = sk_clone(est)
        assert twin.get_params() == est.get_params() and twin is not est
        with pytest.raises(SkNotFitted):
            check_is_fitted(est)
    assert is_classifier(SequenceClassifier()) and is_regressor(SequenceRegressor())

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8, 1))
    y = np.where(x.sum(axis=(1, 2)) > 0, "a", "b")
    clf = SequenceClassifier(model="rnn", epochs=30, random_state=0, tol=np.inf, readout="last", standardize=False)
    scores = cross_val_score(clf, x, y, cv=3)       # stratified folds: is_classifier is True
    assert scores.shape == (3,) and scores.min() >= 0.8          # measured 0.95, 0.90, 0.95
    search = GridSearchCV(clf, {"hidden": [(2,), (8,)]}, cv=2).fit(x, y)
    assert search.best_params_ in ({"hidden": (2,)}, {"hidden": (8,)})
    assert search.best_score_ >= 0.8                             # measured 0.87 (hidden=(8,))
    check_is_fitted(search.best_estimator_)
    assert sklearn.__version__


# ---------------------------------------------------------------------------
# defaults for long sequences: input scaling, pooled read-out, gated models, the chance warning


def early_cue(n, T, seed):
    """Two classes told apart only by the sign of a pulse in the first 10 of T steps, on
    inputs far from unit size (scale 50, offset 200)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, T, 2))
    x[:, :10, 0] += np.where(y == 1, 1.5, -1.5)[:, None]
    return 50 * x + 200, y


def test_inputs_are_standardised_by_the_training_sequences_valid_steps():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 5.0, size=(12, 7, 2))
    lengths = np.array([7, 3, 5, 7, 2, 6, 7, 4, 7, 5, 3, 7])
    x[np.arange(7)[None, :] >= lengths[:, None]] = 1e6                  # padding never counts
    y = rng.normal(size=(12, 7))
    est = SequenceRegressor(hidden=(3,), epochs=2, random_state=0, tol=np.inf, dtype="float64").fit(x, y, lengths)
    valid = x[np.arange(7)[None, :] < lengths[:, None]]                # (steps, 2)
    np.testing.assert_allclose(est.input_mean_, valid.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(est.input_scale_, valid.std(axis=0), rtol=1e-12)
    by_hand = est.model_.predict((x - est.input_mean_) / est.input_scale_, lengths=lengths)
    np.testing.assert_allclose(est.predict(x, lengths), by_hand[..., 0], rtol=1e-12)
    raw = SequenceRegressor(hidden=(3,), epochs=2, random_state=0, tol=np.inf, dtype="float64",
                            standardize=False).fit(x, y, lengths)
    assert raw.input_mean_ is None and raw.input_scale_ is None
    np.testing.assert_allclose(raw.predict(x, lengths), raw.model_.predict(x, lengths=lengths)[..., 0], rtol=1e-12)
    with pytest.raises(TypeError, match="standardize must be True or False"):
        SequenceRegressor(standardize="yes").fit(x, y, lengths)


def test_pooled_readout_is_the_mean_softmax_over_valid_steps():
    x, y = early_cue(40, 12, 0)
    lengths = np.random.default_rng(1).integers(1, 13, 40)
    est = SequenceClassifier(hidden=(4,), epochs=3, random_state=0, tol=np.inf).fit(x, y, lengths)
    assert est.readout == "pooled"
    out = est.model_.predict(((x - est.input_mean_) / est.input_scale_).astype(np.float32), lengths=lengths)
    mean = np.array([out[n, :lengths[n]].mean(axis=0) for n in range(40)])
    np.testing.assert_allclose(est.predict_proba(x, lengths), mean, rtol=1e-5)
    last = SequenceClassifier(hidden=(4,), epochs=3, random_state=0, tol=np.inf, readout="last").fit(x, y, lengths)
    out = last.model_.predict(((x - last.input_mean_) / last.input_scale_).astype(np.float32), lengths=lengths)
    np.testing.assert_allclose(last.predict_proba(x, lengths), out[np.arange(40), lengths - 1], rtol=1e-6)
    with pytest.raises(ValueError, match="readout must be 'pooled'"):
        SequenceClassifier(readout="max").fit(x, y)


def test_default_classifier_learns_a_long_cue_where_the_old_default_stayed_at_chance():
    x, y = early_cue(300, 150, 0)
    x_test, y_test = early_cue(200, 150, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        old = SequenceClassifier(model="rnn", epochs=5, random_state=0, readout="last", standardize=False).fit(x, y)
    assert any("learned nothing: its best training loss" in str(w.message) for w in caught)
    assert old.score(x_test, y_test) < 0.6                        # measured 0.52: chance
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*still falling", category=ConvergenceWarning)
        warnings.filterwarnings("error", message=".*learned nothing", category=ConvergenceWarning)
        new = SequenceClassifier(epochs=5, random_state=0).fit(x, y)
    assert type(new.model_).__name__ == "GRU" and new.readout == "pooled" and new.standardize
    assert new.score(x_test, y_test) > 0.9                        # measured 0.995


def test_the_chance_warning_compares_with_the_entropy_of_the_class_frequencies():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5, 1))
    y = rng.permutation(np.repeat([0, 1, 2], [30, 20, 10]))          # labels unrelated to x
    est = SequenceClassifier(hidden=(2,), epochs=2, lr=1e-4, random_state=0)
    p = np.array([30, 20, 10]) / 60
    entropy = -np.sum(p * np.log(p))                                  # 1.011: guessing the frequencies
    with pytest.warns(ConvergenceWarning, match=f"within 5% of {entropy:.4g}, the cross entropy of always"):
        est.fit(x, y)
    assert min(est.loss_curve_) > 0.95 * entropy
    with pytest.warns(ConvergenceWarning, match="Try a bidirectional model='birnn' with cell='gru'; more hidden"):
        est.fit(x, y)                                 # the default GRU: the advice names what is left
    with pytest.warns(ConvergenceWarning, match="Try model='gru' or 'lstm'.*; readout='pooled'; standardize=True"):
        est.set_params(model="rnn", readout="last", standardize=False).fit(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SequenceClassifier(hidden=(2,), epochs=2, lr=1e-4, random_state=0, tol=np.inf).fit(x, y)   # never warns


@pytest.mark.parametrize("model, cls", [("lstm", "LSTM"), ("gru", "GRU")])
def test_gated_models_serve_both_estimators(model, cls):
    import unrolled

    x, y = early_cue(120, 30, 0)
    x_test, y_test = early_cue(100, 30, 1)
    clf = SequenceClassifier(model=model, hidden=(8,), epochs=8, random_state=0, tol=np.inf).fit(x, y)
    assert type(clf.model_) is getattr(unrolled, cls) and clf.model_.hidden == (8,)
    assert clf.score(x_test, y_test) > 0.9
    built = getattr(unrolled, cls)(2, 2, hidden=(8,), output="softmax", seed=clf._seeds()[0])
    assert sorted(built.params) == sorted(clf.model_.params)
    rng = np.random.default_rng(2)
    xr, yr = delayed_copy(40, 10, rng)
    reg = SequenceRegressor(model=model, hidden=(6,), epochs=40, random_state=0, tol=np.inf).fit(xr, yr)
    assert reg.score(xr, yr) > 0.5
    with pytest.raises(ValueError, match=f"activation='relu' does not apply to model='{model}'"):
        SequenceRegressor(model=model, activation="relu").fit(xr, yr)
    bi = SequenceClassifier(model="birnn", cell=model, hidden=(4,), epochs=2, random_state=0, tol=np.inf).fit(x, y)
    assert bi.model_.get_config()["cell"] == model
