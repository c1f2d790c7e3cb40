"""Nothing a user passes to ``fit`` destroys a model.

- Every bad argument is refused before the first update, with ValueError or TypeError,
  and the model and the optimizer are left bit for bit as they were (``BAD``: one row a
  kind of bad input).
- No non-finite value is ever written into the weights: a non-finite loss or gradient
  stops training before its update, with a FloatingPointError saying what is to blame;
  under early stopping the best weights come back.
"""

import copy
import math

import numpy as np
import pytest

import unrolled
from unrolled import fit
from unrolled.divergences import BinaryCrossEntropy, CrossEntropy, LastStep, SquaredError
from unrolled.optim import SGD, Adam, clip_grad_norm
from unrolled.train import Callback, LearningRateSchedule


def regression(N=6, T=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, T, 2)), rng.normal(size=(N, T, 1))


def model_and_optimizer():
    model = unrolled.RNN(2, 1, hidden=(4,), dtype=np.float64, seed=0)
    opt = Adam(0.01)
    fit(model, *regression(), divergence=SquaredError(), optimizer=opt, epochs=1, progress=False)   # has state
    return model, opt


def classifier():
    return unrolled.RNN(2, 3, hidden=(4,), output="softmax", dtype=np.float64, seed=0)


def state_of(model, opt):
    return ({k: v.copy() for k, v in model.params.items()}, opt.lr, copy.deepcopy(opt.state))


def assert_unchanged(before, after):
    params, lr, state = before
    params2, lr2, state2 = after
    assert params.keys() == params2.keys() and lr == lr2
    for k in params:
        np.testing.assert_array_equal(params[k], params2[k], err_msg=k)
    assert state.keys() == state2.keys()
    for name in state:
        for key, value in state[name].items():
            np.testing.assert_array_equal(value, state2[name][key], err_msg=f"{name}.{key}")


def with_nan(a, index):
    a = np.array(a, dtype=np.float64)
    a[index] = np.nan
    return a


x0, d0 = regression()
xv0, dv0 = regression(N=3, seed=1)
labels = np.random.default_rng(2).integers(0, 3, size=(6, 8))

# (id, model maker, x, d, keyword arguments, error type, text in the message)
BAD = [
    ("x-2d", None, x0[0], d0, {}, ValueError, "shape"),
    ("x-ragged-list", None, [x0[0], x0[1, :5]], d0[:2], {}, ValueError, "pad_sequences"),
    ("d-ragged-list", None, x0[:2], [d0[0], d0[1, :5]], {}, ValueError, "pad_sequences"),
    ("x-wrong-width", None, x0[..., :1], d0, {}, ValueError, "n_in=2), got (6, 8, 1)"),
    ("x-strings", None, np.full((6, 8, 2), "a"), d0, {}, TypeError, "real numbers"),
    ("x-no-sequence", None, x0[:0], d0[:0], {}, ValueError, "N = 0"),
    ("x-nan", None, with_nan(x0, (3, 5, 1)), d0, {}, ValueError, "sequence 3, step 5, feature 1"),
    ("x-inf", None, np.where(np.arange(8)[None, :, None] == 2, np.inf, x0), d0, {}, ValueError, "inf"),
    ("d-nan", None, x0, with_nan(d0, (0, 7, 0)), {}, ValueError, "sequence 0, step 7"),
    ("d-wrong-N", None, x0, d0[:5], {}, ValueError, "N=6"),
    ("d-wrong-width", None, x0, np.zeros((6, 8, 2)), {}, ValueError, ""),
    ("d-wrong-T", None, x0, np.zeros((6, 7, 1)), {}, ValueError, ""),
    ("labels-out-of-range", classifier, x0, np.where(labels == 2, 3, labels), {"divergence": CrossEntropy()},
     ValueError, ""),
    ("labels-negative", classifier, x0, -np.ones((6, 8), int), {"divergence": CrossEntropy()}, ValueError, ""),
    ("labels-float", classifier, x0, labels + 0.5, {"divergence": CrossEntropy()}, (ValueError, TypeError), ""),
    ("cross-entropy-on-identity", None, x0, labels, {"divergence": CrossEntropy()}, ValueError, "softmax"),
    ("bce-on-identity", None, x0, np.zeros((6, 8, 1)), {"divergence": BinaryCrossEntropy()}, ValueError,
     "sigmoid"),
    ("last-step-cross-entropy-on-identity", None, x0, labels[:, 0], {"divergence": LastStep(CrossEntropy())},
     ValueError, "softmax"),
    ("lengths-inf", None, x0, d0, {"lengths": [np.inf, 8, 8, 8, 8, 8]}, TypeError, "whole numbers"),
    ("lengths-fraction", None, x0, d0, {"lengths": [7.5, 8, 8, 8, 8, 8]}, TypeError, "whole numbers"),
    ("lengths-too-long", None, x0, d0, {"lengths": [9, 8, 8, 8, 8, 8]}, ValueError, "[0, T=8]"),
    ("lengths-negative", None, x0, d0, {"lengths": [-1, 8, 8, 8, 8, 8]}, ValueError, "[0, T=8]"),
    ("lengths-wrong-shape", None, x0, d0, {"lengths": [8, 8]}, ValueError, "shape (6,)"),
    ("lengths-strings", None, x0, d0, {"lengths": ["8"] * 6}, TypeError, "integers"),
    ("validation-wrong-width", None, x0, d0, {"validation": (xv0[..., :1], dv0)}, ValueError, "x_val of shape"),
    ("validation-wrong-targets", None, x0, d0, {"validation": (xv0, dv0[:2])}, ValueError, "N=3"),
    ("validation-nan", None, x0, d0, {"validation": (with_nan(xv0, (1, 2, 0)), dv0)}, ValueError,
     "x_val holds nan at sequence 1, step 2"),
    ("validation-not-a-pair", None, x0, d0, {"validation": xv0}, ValueError, "(x_val, d_val)"),
    ("validation-overflows", None, x0, d0, {"validation": (xv0, dv0 * 1e300)}, ValueError, "overflow"),
    ("patience-without-validation", None, x0, d0, {"patience": 3}, ValueError, "validation"),
    ("patience-zero", None, x0, d0, {"patience": 0, "validation": (xv0, dv0)}, ValueError, "patience"),
    ("epochs-zero", None, x0, d0, {"epochs": 0}, ValueError, "epochs"),
    ("epochs-float", None, x0, d0, {"epochs": 2.5}, ValueError, "epochs"),
    ("batch-size-negative", None, x0, d0, {"batch_size": -1}, ValueError, "batch_size"),
    ("bptt-zero", None, x0, d0, {"bptt": 0}, ValueError, "bptt"),
    ("bptt-with-per-sequence-targets", None, x0, d0[:, 0], {"bptt": 4}, ValueError, "truncated BPTT"),
    ("clip-negative", None, x0, d0, {"clip": -1.0}, ValueError, "clip"),
    ("clip-nan", None, x0, d0, {"clip": float("nan")}, ValueError, "clip"),
    ("seed-string", None, x0, d0, {"seed": "abc"}, TypeError, "seed"),
    ("seed-float", None, x0, d0, {"seed": 1.5}, TypeError, "seed"),
    ("seed-negative", None, x0, d0, {"seed": -1}, ValueError, "seed"),
    ("callback-not-a-callback", None, x0, d0, {"callbacks": [1]}, TypeError, "callbacks[0]"),
    ("callbacks-not-a-list", None, x0, d0, {"callbacks": 3}, TypeError, "callbacks"),
    ("schedule-negative-later", None, x0, d0,
     {"callbacks": [LearningRateSchedule(lambda e, lr: 0.01 if e < 3 else -1.0)], "epochs": 5}, ValueError,
     "epoch 3"),
    ("schedule-nan", None, x0, d0, {"callbacks": [LearningRateSchedule(lambda e, lr: float("nan"))]}, ValueError,
     "learning rate"),
    ("divergence-unknown", None, x0, d0, {"divergence": "hinge"}, ValueError, ""),
    ("optimizer-unknown", None, x0, d0, {"optimizer": "lbfgs"}, ValueError, ""),
    ("optimizer-not-one", None, x0, d0, {"optimizer": 3}, TypeError, "optimizer"),
    ("unknown-input", None, x0, d0, {"inputs": {"u": np.zeros((6, 8, 1))}}, ValueError, "unknown input"),
    ("input-wrong-T", None, x0, d0, {"inputs": {"u": np.zeros((6, 7, 1))}}, ValueError, "(N, T)"),
]


@pytest.mark.parametrize("make,x,d,kw,error,text", [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_a_bad_argument_is_refused_before_anything_changes(make, x, d, kw, error, text):
    model, opt = model_and_optimizer()
    if make is not None:
        model = make()
    before = state_of(model, opt)
    args = dict(divergence=SquaredError(), optimizer=opt, epochs=2, batch_size=2, progress=False)
    args.update(kw)
    with pytest.raises(error) as info:
        fit(model, x, d, **args)
    assert text in str(info.value)
    assert "Traceback" not in str(info.value)
    assert_unchanged(before, state_of(model, opt))


def test_the_table_covers_at_least_forty_kinds_of_bad_input():
    assert len({row[0] for row in BAD}) == len(BAD) >= 40


def test_check_output_false_lets_a_deliberate_pairing_train():
    x, _ = regression()
    d = np.random.default_rng(0).random(size=(6, 8, 1))
    model = unrolled.RNN(2, 1, hidden=(3,), output="identity", dtype=np.float64, seed=0)
    with pytest.raises(ValueError, match="check_output=False"):
        fit(model, x, d, divergence=BinaryCrossEntropy(), optimizer=SGD(0.01), epochs=1, progress=False)
    model.params["b[y]"][...] = 0.5                 # outputs near 0.5: valid probabilities for this data
    fit(model, x, d, divergence=BinaryCrossEntropy(), optimizer=SGD(1e-4), epochs=1, progress=False,
        check_output=False)


def test_padded_steps_may_hold_nan():
    x, d = regression()
    x[0, 6:] = np.nan                               # padding, never read
    d[0, 6:] = np.nan
    model = unrolled.RNN(2, 1, hidden=(3,), dtype=np.float64, seed=0)
    fit(model, x, d, lengths=[6, 8, 8, 8, 8, 8], divergence=SquaredError(), optimizer=SGD(0.01), epochs=2,
        progress=False)
    assert all(np.all(np.isfinite(p)) for p in model.params.values())


# ------------------------------------------------------------------ divergence
def assert_finite(model):
    for k, p in model.params.items():
        assert np.all(np.isfinite(p)), k


def test_an_exploding_recurrence_stops_before_its_update_and_says_so():
    model = unrolled.RNN(1, 1, hidden=(8,), activation="identity", dtype=np.float32, seed=0)
    model.params["W[h1->h1@1]"][...] = 50 * np.eye(8)
    x, d = np.ones((2, 200, 1)), np.zeros((2, 200, 1))
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(FloatingPointError) as info:
        fit(model, x, d, divergence=SquaredError(), optimizer=SGD(0.01), epochs=3, progress=False)
    message = str(info.value)
    assert "no non-finite update was applied" in message and "Before any update" in message
    for k in before:                                # refused at the first update: nothing changed
        np.testing.assert_array_equal(model.params[k], before[k])


def test_a_huge_learning_rate_stops_with_finite_weights_and_blames_the_rate():
    x, d = regression(N=8, T=10)
    model = unrolled.RNN(2, 1, hidden=(4,), activation="identity", dtype=np.float32, seed=0)
    with pytest.raises(FloatingPointError) as info:
        fit(model, x, d, divergence=SquaredError(), optimizer=SGD(1e6), epochs=50, batch_size=2, progress=False)
    assert_finite(model)
    message = str(info.value)
    assert "learning rate" in message and "clip=1.0" in message


def test_the_hint_does_not_suggest_clip_when_it_is_set():
    x, d = regression(N=8, T=10)
    model = unrolled.RNN(2, 1, hidden=(4,), activation="identity", dtype=np.float32, seed=0)
    with pytest.raises(FloatingPointError) as info:
        fit(model, x, d, divergence=SquaredError(), optimizer=SGD(1e12), epochs=50, batch_size=2, clip=1.0,
            progress=False)
    assert_finite(model)
    assert "clip=1.0" not in str(info.value)


def test_huge_inputs_are_blamed_on_the_data():
    x, d = regression()
    model = unrolled.RNN(2, 1, hidden=(4,), activation="identity", dtype=np.float32, seed=0)
    with pytest.raises(FloatingPointError, match="scale x and d"):
        fit(model, x * 1e30, d, divergence=SquaredError(), optimizer=SGD(0.01), epochs=2, progress=False)
    assert_finite(model)


def test_early_stopping_gives_back_its_best_weights_when_training_diverges():
    x, d = regression(N=8, T=10)
    xv, dv = regression(N=4, T=10, seed=3)
    model = unrolled.RNN(2, 1, hidden=(4,), activation="identity", dtype=np.float64, seed=0)

    class Explode(Callback):                        # from epoch 3 on, a learning rate that diverges
        def on_epoch_end(self, model, epoch, logs):
            if epoch == 2:
                opt.lr = 1e200
            return False

    opt = SGD(0.01)
    snapshots = []

    class Keep(Callback):
        def on_epoch_end(self, model, epoch, logs):
            snapshots.append(({k: v.copy() for k, v in model.params.items()}, logs["val_loss"]))

    with pytest.raises(FloatingPointError, match="best on the validation data"):
        fit(model, x, d, divergence=SquaredError(), optimizer=opt, epochs=20, batch_size=2, progress=False,
            validation=(xv, dv), patience=5, callbacks=[Keep(), Explode()])
    best = min(range(len(snapshots)), key=lambda i: snapshots[i][1])
    for k, v in snapshots[best][0].items():
        np.testing.assert_array_equal(model.params[k], v)


def test_clip_grad_norm_refuses_non_finite_gradients():
    grads = {"a": np.ones(3), "b": np.array([1.0, np.inf])}
    with pytest.raises(ValueError, match=r"grads\['b'\]"):
        clip_grad_norm(grads, 1.0)
    with pytest.raises(ValueError, match=r"grads\['a'\]"):
        clip_grad_norm({"a": np.array([np.nan])}, 1.0)
    clipped, total = clip_grad_norm({"a": np.array([3.0, 4.0])}, 1.0)
    assert total == 5.0 and math.isclose(float(np.linalg.norm(clipped["a"])), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize("backend", ["fast", "numpy"])
def test_the_gradients_carry_their_squared_norm(backend):
    model = unrolled.RNN(3, 2, hidden=(4, 3), dtype=np.float64, seed=0)
    model.network.backend = backend
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    y, cache = model.forward(x)
    grads, _ = model.backward(np.ones_like(y), cache)
    expected = sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values())
    assert math.isclose(grads.squared_norm, expected, rel_tol=1e-12)


def test_a_seed_sequence_builds_a_model_that_saves(tmp_path):
    model = unrolled.RNN(2, 1, hidden=(3,), seed=np.random.SeedSequence(4))
    unrolled.save(model, tmp_path / "m.npz")
    assert unrolled.load(tmp_path / "m.npz").get_config()["seed"] is None
    with pytest.raises(TypeError, match="seed"):
        unrolled.RNN(2, 1, hidden=(3,), seed="abc")
    with pytest.raises(ValueError, match="seed"):
        unrolled.RNN(2, 1, hidden=(3,), seed=-1)


@pytest.mark.parametrize("make", [lambda: unrolled.RNN(3, 1, hidden=(4,), seed=0),
                                  lambda: unrolled.BiRNN(3, 1, hidden=(4,), seed=0),
                                  lambda: unrolled.NARX(3, 1, input_delays=2, output_delays=2, hidden=(4,), seed=0),
                                  lambda: unrolled.RNN(3, 1, hidden=(4,), seed=0).network,
                                  lambda: unrolled.Ensemble.from_seeds(
                                      lambda s: unrolled.RNN(3, 1, hidden=(4,), seed=s), [0, 1])])
def test_predict_refuses_a_non_finite_input_at_a_valid_step_and_reads_padding_as_padding(make):
    model = make()
    x = np.zeros((2, 5, 3))
    x[1, 3, 2] = np.inf
    with pytest.raises(ValueError, match=r"x holds inf at sequence 1, step 3, feature 2 \(1 non-finite value\(s\) "
                                         r"in all\); predict reads finite inputs only"):
        model.predict(x)
    y = model.predict(x, lengths=np.array([5, 3]))       # the inf lies past sequence 1's three steps
    np.testing.assert_array_equal(y, model.predict(np.where(np.isfinite(x), x, 0.0), lengths=np.array([5, 3])))


def test_predict_refuses_a_value_beyond_the_models_float32_and_checks_a_decoder_by_its_own_lengths():
    model = unrolled.RNN(3, 1, hidden=(4,), seed=0)                       # float32
    with pytest.raises(ValueError, match=r"x holds inf at sequence 0, step 1, feature 2 .* once cast to float32, "
                                         r"the model's dtype \(its range ends at ±3.4e\+38\)"):
        model.predict(np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 1e39]]]))
    assert np.isfinite(model.predict(np.full((1, 2, 3), 1e30))).all()   # large, within float32: tanh saturates
    s2s = unrolled.Seq2Seq(unrolled.RNN(2, 2, hidden=(3,), seed=0), unrolled.RNN(2, 2, hidden=(3,), seed=1))
    x, u = np.zeros((2, 3, 2)), np.zeros((2, 6, 2))
    u[0, 4, 1] = np.nan                          # past decoder sequence 0's 2 steps: padding, read as such
    y = s2s.predict(x, lengths=np.array([3, 1]), decoder_inputs=u, decoder_lengths=np.array([2, 6]))
    np.testing.assert_array_equal(y, s2s.predict(x, lengths=np.array([3, 1]), decoder_inputs=np.nan_to_num(u),
                                                 decoder_lengths=np.array([2, 6])))
    u[1, 4, 1] = np.nan                          # within decoder sequence 1's 6 steps (past its encoder's 1)
    with pytest.raises(ValueError, match="decoder_inputs holds nan at sequence 1, step 4, feature 1"):
        s2s.predict(x, lengths=np.array([3, 1]), decoder_inputs=u, decoder_lengths=np.array([2, 6]))


def test_fit_without_targets_or_with_a_callback_of_the_wrong_signature_is_refused_before_any_update():
    model = unrolled.RNN(3, 1, hidden=(4,), seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    x = np.zeros((4, 5, 3))
    with pytest.raises(ValueError, match="fit needs targets: expected d with N=4 sequences on axis 0, got None"):
        fit(model, x, None, divergence=SquaredError(), optimizer=Adam(0.01), epochs=2, progress=False)

    class Wrong(Callback):
        def on_epoch_end(self, model, epoch):            # lacks logs
            pass

    with pytest.raises(TypeError, match=r"callbacks\[0\].on_epoch_end \(Wrong\) must take \(model, epoch, logs\), "
                                        r"its signature is \(model, epoch\)"):
        fit(model, x, np.zeros((4, 5, 1)), divergence=SquaredError(), optimizer=Adam(0.01), epochs=2,
            progress=False, callbacks=[Wrong()])
    for key in before:
        np.testing.assert_array_equal(model.params[key], before[key])
