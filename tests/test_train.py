"""The trainer: it learns tasks with known answers, and every option does exactly what it says.

Tasks with a known answer (recall k steps back, a pooled mean, the sign of a sum), then
truncated BPTT against a hand-made window-by-window loop, early stopping, seeds,
clipping, checkpoints, errors, and streaming a sequence in chunks through ``cache.state``.
"""

import numpy as np
import pytest

import unrolled
from unrolled import RNN, Callback, evaluate, fit
from unrolled.divergences import CrossEntropy, LastStep, PooledMean, SquaredError
from unrolled.optim import SGD, Adam
from unrolled.analysis import gradcheck


def snapshot(model):
    return {k: v.copy() for k, v in model.params.items()}


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def params_differ(a, b):
    return any(not np.array_equal(a[k], b[k]) for k in a)


def global_norm(tree):
    return float(np.sqrt(sum(np.sum(np.asarray(v, dtype=np.float64) ** 2) for v in tree.values())))


# ------------------------------------------------------------------ known answers
def recall_data(N, seed, T=20, k=3):
    """x random +-1 scalars; d(t) = x(t - k) for t >= k (d = 0 before, weighted 0)."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=(N, T, 1))
    d = np.zeros_like(x)
    d[:, k:] = x[:, :-k]
    return x, d


def test_rnn_learns_to_recall_the_input_three_steps_back():
    T, k = 20, 3
    x, d = recall_data(512, seed=1, T=T, k=k)
    weights = np.ones(T)
    weights[:k] = 0.0                      # nothing to recall before t = k
    model = RNN(1, 1, hidden=(16,), seed=0)
    xt, dt = recall_data(1000, seed=2, T=T, k=k)

    def accuracy():
        y = model.predict(xt)
        return np.mean(np.sign(y[:, k:, 0]) == dt[:, k:, 0])

    assert 0.4 < accuracy() < 0.6           # untrained: chance (measured 0.491)
    history = fit(model, x, d, divergence=SquaredError(weights=weights), optimizer=Adam(0.01),
                  epochs=10, batch_size=32, seed=0, progress=False)
    # Measured: accuracy 1.000 on 1000 fresh sequences (17000 recalls) after 10 epochs
    # (0.17 s); the divergence falls from 8.33 to 0.0077 per sequence of 17 scored steps.
    assert accuracy() >= 0.95
    assert history.loss[-1] < 0.01 * history.loss[0]
    # Held-out divergence per scored step, on the same footing: small.
    held_out = evaluate(model, xt, dt, divergence=SquaredError(weights=weights)) / (T - k)
    assert held_out < 0.01


def pooled_data(N, seed, T=12):
    """Mixed lengths; the target of a sequence is the mean of its valid inputs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, T, 1))
    lengths = rng.integers(4, T + 1, size=N)
    valid = np.arange(T)[None, :] < lengths[:, None]
    d = (np.where(valid, x[..., 0], 0.0).sum(axis=1) / lengths)[:, None]     # (N, 1)
    return x, d, lengths


def test_non_decomposable_pooled_mean_divergence_is_learned():
    """PooledMean(SquaredError): (mean_t y - d)^2 is not a sum of per-step divergences."""
    x, d, lengths = pooled_data(256, seed=1)
    xv, dv, lv = pooled_data(500, seed=2)
    div = PooledMean(SquaredError())
    model = RNN(1, 1, hidden=(8,), seed=0)
    before = evaluate(model, xv, dv, lv, divergence=div)
    history = fit(model, x, d, lengths=lengths, divergence=div, optimizer=Adam(0.01),
                  epochs=20, batch_size=32, seed=0, progress=False)
    after = evaluate(model, xv, dv, lv, divergence=div)
    # Measured: training divergence 0.0864 (epoch 1) -> 0.00108 (epoch 20), a factor 80;
    # held out 0.00072 while always answering 0 scores var(d) = 0.134.
    assert history.loss[0] / history.loss[-1] > 20
    assert history.loss[-1] < 0.005
    assert after < 0.005 and after < before / 10
    assert after < 0.05 * np.mean(dv ** 2)

    # The value is the pooled one, recomputed by hand from the outputs at valid steps.
    y = model.predict(xv, lengths=lv)[..., 0]
    valid = np.arange(y.shape[1])[None, :] < lv[:, None]
    m = np.where(valid, y, 0.0).sum(axis=1) / lv
    np.testing.assert_allclose(after, np.mean((m - dv[:, 0]) ** 2), rtol=1e-5)


def sign_data(N, seed, T=15):
    """+-1 inputs, odd lengths 5..15 (so the sum is never 0); label = [sum > 0]."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=(N, T, 1))
    lengths = 2 * rng.integers(2, 8, size=N) + 1
    valid = np.arange(T)[None, :] < lengths[:, None]
    labels = (np.where(valid, x[..., 0], 0.0).sum(axis=1) > 0).astype(np.int64)
    return x, labels, lengths


def test_many_to_one_classifies_the_sign_of_the_sum_with_mixed_lengths():
    x, labels, lengths = sign_data(512, seed=3)
    xt, lt, lent = sign_data(1000, seed=4)
    assert len(np.unique(lengths)) == 6 and 0.4 < labels.mean() < 0.6
    model = RNN(1, 2, hidden=(16,), output="softmax", seed=0)
    history = fit(model, x, labels, lengths=lengths, divergence=LastStep(CrossEntropy()),
                  optimizer=Adam(0.01), epochs=40, batch_size=32, seed=0, progress=False)
    y = model.predict(xt, lengths=lent)
    probs = y[np.arange(len(lt)), lent - 1]                     # (N, 2) at each last valid step
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # Measured: accuracy 1.000 on 1000 fresh sequences after 40 epochs (0.5 s); over
    # eight other seeds (model and minibatch order) 0.955-1.000, so 0.95 has room.
    assert np.mean(probs.argmax(axis=1) == lt) >= 0.95
    assert history.loss[-1] < 0.1
    # Padded steps output exactly 0: the answer is read at the last valid step only.
    pad = np.arange(y.shape[1])[None, :] >= lent[:, None]
    assert np.all(y[pad] == 0.0)


# ------------------------------------------------------------------ one epoch by hand
def test_one_epoch_is_minibatch_bptt_steps_and_mean_loss_by_hand():
    """loss[e] is the mean of the minibatch divergences; val_loss[e] scores the epoch's end."""
    x, d = small_regression(N=7, T=5, seed=11)
    xv, dv = small_regression(N=4, T=5, seed=12)
    lr, div = 0.05, SquaredError()
    model = make_model()
    start = snapshot(model)
    h = fit(model, x, d, divergence=div, optimizer=SGD(lr), epochs=1, batch_size=3, shuffle=False,
            validation=(xv, dv), progress=False)

    by_hand = make_model()
    losses = []
    for idx in (slice(0, 3), slice(3, 6), slice(6, 7)):        # the last batch holds one sequence
        y, cache = by_hand.forward(x[idx])
        value, dy = div(y, d[idx])
        grads, _ = by_hand.backward(dy, cache)
        for key in grads:
            by_hand.params[key] -= lr * grads[key]
        losses.append(value)
    np.testing.assert_allclose(h.loss, [np.mean(losses)], rtol=1e-12)
    for key in start:
        np.testing.assert_allclose(model.params[key], by_hand.params[key], rtol=1e-12, atol=1e-14,
                                   err_msg=key)
    y, _ = by_hand.forward(xv)
    np.testing.assert_allclose(h.val_loss, [div(y, dv)[0]], rtol=1e-12)
    assert h.best_epoch == 0 and not h.stopped_early


# ------------------------------------------------------------------ truncated BPTT
def small_regression(N=6, T=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, T, 2))
    d = rng.normal(size=(N, T, 1))
    return x, d


def make_model(seed=0, **kw):
    kw.setdefault("hidden", (5,))
    return RNN(2, 1, dtype=np.float64, seed=seed, **kw)


@pytest.mark.parametrize("bptt", [8, 9, 100])
def test_bptt_at_least_T_is_plain_bptt(bptt):
    x, d = small_regression(N=10, T=8)
    runs = []
    for window in (None, bptt):
        model = make_model()
        h = fit(model, x, d, divergence=SquaredError(), optimizer=Adam(0.01), epochs=3,
                batch_size=4, seed=1, bptt=window, progress=False)
        runs.append((h.loss, snapshot(model)))
    assert runs[0][0] == runs[1][0]
    assert_same_params(runs[0][1], runs[1][1])


def test_truncated_bptt_one_batch_equals_two_windows_by_hand():
    x, d = small_regression(N=6, T=8)
    k, lr = 4, 0.1
    model = make_model(hidden=(5, 3))
    model.params["init[h1]"][...] = np.linspace(-0.5, 0.5, 5)     # a non-zero learned h(-1)
    start = snapshot(model)
    h = fit(model, x, d, divergence=SquaredError(), optimizer=SGD(lr), epochs=1, batch_size=6,
            shuffle=False, bptt=k, progress=False)

    by_hand = make_model(hidden=(5, 3))
    for key, value in start.items():
        by_hand.params[key][...] = value
    div = SquaredError()
    y1, c1 = by_hand.forward(x[:, :k])
    v1, dy1 = div(y1, d[:, :k])
    g1, _ = by_hand.backward(dy1, c1)
    for key in g1:
        by_hand.params[key] -= lr * g1[key]
    y2, c2 = by_hand.forward(x[:, k:], state=c1.state)           # state from before the step
    v2, dy2 = div(y2, d[:, k:])
    g2, _ = by_hand.backward(dy2, c2)
    for key in g2:
        by_hand.params[key] -= lr * g2[key]
    # The state enters window 2 as a constant: no gradient reaches h(-1) there.
    assert np.all(g2["init[h1]"] == 0) and np.any(g1["init[h1]"] != 0)

    for key in start:
        np.testing.assert_allclose(model.params[key], by_hand.params[key], rtol=1e-12, atol=1e-14,
                                   err_msg=key)
    np.testing.assert_allclose(h.loss[0], v1 + v2, rtol=1e-12)

    # And it is not the one full-BPTT step: the cut and the mid-sequence update matter.
    full = make_model(hidden=(5, 3))
    for key, value in start.items():
        full.params[key][...] = value
    fit(full, x, d, divergence=SquaredError(), optimizer=SGD(lr), epochs=1, batch_size=6,
        shuffle=False, progress=False)
    assert np.max(np.abs(full.params["W[h1->h1@1]"] - model.params["W[h1->h1@1]"])) > 1e-4


def test_truncated_bptt_with_mixed_lengths_across_windows():
    """Lengths ending inside, at the edge of and before windows; padding never matters."""
    T, k, lr = 10, 3, 0.05
    x, d = small_regression(N=6, T=T, seed=3)
    lengths = np.array([2, 3, 5, 6, 0, 7])                      # max 7: window s=9 is skipped
    div = SquaredError()
    model = make_model()
    start = snapshot(model)
    h = fit(model, x, d, lengths=lengths, divergence=div, optimizer=SGD(lr), epochs=1,
            batch_size=6, shuffle=False, bptt=k, progress=False)
    assert np.isfinite(h.loss[0]) and h.loss[0] > 0
    assert all(np.all(np.isfinite(v)) for v in model.params.values())

    # The same windows by hand.
    by_hand = make_model()
    state, total, windows = None, 0.0, 0
    for s in range(0, T, k):
        win = np.clip(lengths - s, 0, k)
        if not win.any():
            break
        y, cache = by_hand.forward(x[:, s:s + k], lengths=win, state=state)
        value, dy = div(y, d[:, s:s + k], lengths=win)
        grads, _ = by_hand.backward(dy, cache)
        for key in grads:
            by_hand.params[key] -= lr * grads[key]
        state, total, windows = cache.state, total + value, windows + 1
    assert windows == 3
    np.testing.assert_allclose(h.loss[0], total, rtol=1e-12)
    for key in start:
        np.testing.assert_allclose(model.params[key], by_hand.params[key], rtol=1e-12, atol=1e-14,
                                   err_msg=key)

    # Garbage in the padding (inputs and targets) changes nothing.
    pad = np.arange(T)[None, :] >= lengths[:, None]
    xg, dg = x.copy(), d.copy()
    xg[pad] = 1e3
    dg[pad] = -1e3
    other = make_model()
    h2 = fit(other, xg, dg, lengths=lengths, divergence=div, optimizer=SGD(lr), epochs=2,
             batch_size=4, bptt=k, seed=0, progress=False)
    again = make_model()
    h3 = fit(again, x, d, lengths=lengths, divergence=div, optimizer=SGD(lr), epochs=2,
             batch_size=4, bptt=k, seed=0, progress=False)
    assert h2.loss == h3.loss
    assert_same_params(snapshot(other), snapshot(again))


# ------------------------------------------------------------------ early stopping
def test_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(5)
    # Noise targets: nothing to learn, so the validation divergence wanders and rises.
    x, d = rng.normal(size=(16, 10, 1)), rng.normal(size=(16, 10, 1))
    xv, dv = rng.normal(size=(64, 10, 1)), rng.normal(size=(64, 10, 1))
    model = RNN(1, 1, hidden=(16,), seed=0)
    h = fit(model, x, d, divergence=SquaredError(), optimizer=Adam(0.05), epochs=200,
            batch_size=8, validation=(xv, dv), patience=5, seed=0, progress=False)
    # Measured: stops after epoch 10, best epoch 4 (index), val 9.0993.
    assert h.stopped_early and h.epochs < 200
    assert len(h.val_loss) == len(h.loss) == h.epochs
    best = int(np.argmin(h.val_loss))
    assert h.best_epoch == best
    assert best < h.epochs - 1                      # the last weights were not the best
    assert h.epochs == best + 1 + 5                 # patience 5 epochs without improvement
    assert evaluate(model, xv, dv, divergence=SquaredError()) == min(h.val_loss)


def test_patience_without_stopping_still_keeps_the_best_epoch():
    rng = np.random.default_rng(6)
    x, d = rng.normal(size=(16, 6, 1)), rng.normal(size=(16, 6, 1))
    xv, dv = rng.normal(size=(32, 6, 1)), rng.normal(size=(32, 6, 1))
    model = RNN(1, 1, hidden=(4,), seed=0)
    h = fit(model, x, d, divergence=SquaredError(), optimizer=Adam(0.05), epochs=6,
            batch_size=8, validation=(xv, dv), patience=50, seed=0, progress=False)
    assert not h.stopped_early and h.epochs == 6
    assert h.best_epoch == int(np.argmin(h.val_loss))
    assert h.best_epoch < h.epochs - 1              # measured: best epoch 0 of 6
    assert evaluate(model, xv, dv, divergence=SquaredError()) == min(h.val_loss)


# ------------------------------------------------------------------ reproducibility
def test_same_seed_same_training_other_seed_other_training():
    rng = np.random.default_rng(7)
    x, d = rng.normal(size=(20, 6, 1)), rng.normal(size=(20, 6, 1))
    xv, dv = rng.normal(size=(8, 6, 1)), rng.normal(size=(8, 6, 1))

    def run(model_seed, fit_seed):
        model = RNN(1, 1, hidden=(6,), seed=model_seed)
        h = fit(model, x, d, divergence=SquaredError(), optimizer=Adam(0.01), epochs=4,
                batch_size=6, validation=(xv, dv), seed=fit_seed, progress=False)
        return h, snapshot(model)

    h1, p1 = run(0, 0)
    h2, p2 = run(0, 0)
    assert h1.loss == h2.loss and h1.val_loss == h2.val_loss
    assert_same_params(p1, p2)

    h3, p3 = run(0, 1)                               # other minibatch order
    assert h3.loss != h1.loss and params_differ(p1, p3)
    h4, p4 = run(1, 0)                               # other initial weights
    assert h4.loss != h1.loss and params_differ(p1, p4)
    assert params_differ(snapshot(RNN(1, 1, hidden=(6,), seed=0)), snapshot(RNN(1, 1, hidden=(6,), seed=1)))


# ------------------------------------------------------------------ clipping
@pytest.mark.parametrize("factor", [0.1, 0.5, 10.0])
def test_clip_bounds_the_step_by_the_global_norm(factor):
    x, d = small_regression(N=6, T=8, seed=4)
    probe = make_model()
    y, cache = probe.forward(x)
    _, dy = SquaredError()(y, d)
    raw, _ = probe.backward(dy, cache)
    raw_norm = global_norm(raw)
    assert raw_norm > 0.1
    c = factor * raw_norm

    model = make_model()
    start = snapshot(model)
    fit(model, x, d, divergence=SquaredError(), optimizer=SGD(lr=1.0), epochs=1, batch_size=6,
        clip=c, progress=False)
    delta = {k: start[k] - model.params[k] for k in start}
    step = global_norm(delta)
    assert step <= c * (1 + 1e-12)
    if raw_norm > c:
        np.testing.assert_allclose(step, c, rtol=1e-6)
        scale = c / raw_norm
    else:
        np.testing.assert_allclose(step, raw_norm, rtol=1e-12)
        scale = 1.0
    for k in start:                                   # same direction as the raw gradient
        np.testing.assert_allclose(delta[k], scale * raw[k], rtol=1e-6, atol=1e-12, err_msg=k)


# ------------------------------------------------------------------ checkpoint
def test_checkpoint_file_loads_back_to_the_same_predictions(tmp_path):
    unrolled_io = pytest.importorskip("unrolled.io")
    rng = np.random.default_rng(8)
    x, d = rng.normal(size=(12, 7, 2)), rng.normal(size=(12, 7, 1))
    xt = rng.normal(size=(5, 9, 2))

    path = tmp_path / "last.npz"
    model = make_model(hidden=(4, 3))
    fit(model, x, d, divergence=SquaredError(), optimizer=Adam(0.01), epochs=3, batch_size=4,
        seed=0, checkpoint=path, progress=False)
    assert path.is_file()
    loaded = unrolled_io.load(path)
    assert isinstance(loaded, RNN) and loaded.hidden == (4, 3) and loaded.dtype == np.float64
    assert_same_params(snapshot(loaded), snapshot(model))
    np.testing.assert_array_equal(loaded.predict(xt), model.predict(xt))

    # With validation the file holds the best epoch: the weights early stopping restores.
    xv, dv = rng.normal(size=(12, 7, 2)), rng.normal(size=(12, 7, 1))
    best_path = tmp_path / "best.npz"
    model = make_model(hidden=(4, 3))
    h = fit(model, x, d, divergence=SquaredError(), optimizer=Adam(0.05), epochs=40,
            batch_size=4, seed=0, validation=(xv, dv), patience=3, checkpoint=best_path,
            progress=False)
    assert h.stopped_early and h.best_epoch == int(np.argmin(h.val_loss)) < h.epochs - 1
    loaded = unrolled_io.load(best_path)
    np.testing.assert_array_equal(loaded.predict(xt), model.predict(xt))
    assert evaluate(loaded, xv, dv, divergence=SquaredError()) == min(h.val_loss)


# ------------------------------------------------------------------ errors
def test_fit_rejects_bad_arguments():
    x, d = small_regression(N=6, T=8)
    model = make_model()
    start = snapshot(model)
    kw = dict(divergence=SquaredError(), optimizer=SGD(0.1), progress=False)
    with pytest.raises(ValueError, match="patience needs validation"):
        fit(model, x, d, patience=3, **kw)
    with pytest.raises(ValueError, match=r"N=6 sequences"):
        fit(model, x, d[:5], **kw)
    with pytest.raises(ValueError, match=r"N=4 sequences"):
        fit(model, x, d, validation=(x[:4], d), **kw)
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="epochs must be a positive integer"):
            fit(model, x, d, epochs=bad, **kw)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        fit(model, x, d, batch_size=0, **kw)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="bptt must be a positive number"):
            fit(model, x, d, bptt=bad, **kw)
    with pytest.raises(ValueError, match="clip must be a positive"):
        fit(model, x, d, clip=0.0, **kw)
    # Truncated BPTT cuts the targets in time: one target per sequence cannot be cut.
    with pytest.raises(ValueError, match="truncated BPTT cuts the targets in time"):
        fit(model, x, d[:, -1], bptt=3, divergence=LastStep(SquaredError()), optimizer=SGD(0.1),
            progress=False)
    assert_same_params(start, snapshot(model))       # nothing was trained by any of these


# ------------------------------------------------------------------ streaming
def test_forward_in_chunks_through_state_equals_forward_whole():
    rng = np.random.default_rng(9)
    model = RNN(2, 3, hidden=(4, 5), learn_init=True, dtype=np.float64, seed=2)
    for layer in ("h1", "h2"):                        # a learned h(-1) that is not zero
        key = f"init[{layer}]"
        model.params[key][...] = rng.uniform(-0.8, 0.8, size=model.params[key].shape)
    x = rng.normal(size=(3, 12, 2))
    y, cache = model.forward(x)

    pieces, state = [], None
    for lo, hi in ((0, 5), (5, 6), (6, 12)):
        yc, cc = model.forward(x[:, lo:hi], state=state)
        pieces.append(yc)
        state = cc.state
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), y, rtol=1e-12, atol=1e-12)
    assert state.keys() == cache.state.keys() == {"h1", "h2"}
    for name in state:
        np.testing.assert_allclose(state[name], cache.state[name], rtol=1e-12, atol=1e-12)
    # The state matters: restarting the second chunk from h(-1) gives other outputs.
    restart = model.predict(x[:, 5:6])
    assert np.max(np.abs(restart - y[:, 5:6])) > 1e-3

    # Mixed lengths: each sequence's state is taken at its own last valid step.
    lengths = np.array([12, 4, 9])
    y, cache = model.forward(x, lengths=lengths)
    pieces, state = [], None
    for lo, hi in ((0, 5), (5, 12)):
        yc, cc = model.forward(x[:, lo:hi], lengths=np.clip(lengths - lo, 0, hi - lo), state=state)
        pieces.append(yc)
        state = cc.state
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), y, rtol=1e-12, atol=1e-12)
    for name in state:
        np.testing.assert_allclose(state[name], cache.state[name], rtol=1e-12, atol=1e-12)
    for n, length in enumerate(lengths):              # = running the valid prefix alone
        y_alone, alone = model.forward(x[n:n + 1, :length])
        np.testing.assert_allclose(y_alone[0], y[n, :length], rtol=1e-12, atol=1e-12)
        for name in state:
            np.testing.assert_allclose(alone.state[name][0], cache.state[name][n], rtol=1e-12, atol=1e-12)


# ------------------------------------------------- per-step weights in batches and windows
def _sgd_by_hand(model, x, d, w, batches):
    """One SGD(lr=0.1) epoch done by hand, each batch scored with its own rows of w."""
    for idx in batches:
        y, cache = model.forward(x[idx])
        _, dy = SquaredError(weights=w[idx])(y, d[idx])
        grads, _ = model.backward(dy, cache)
        for k in model.params:
            model.params[k] -= 0.1 * grads[k]


def test_per_sequence_weights_follow_the_shuffled_minibatches():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 2))
    d = rng.normal(size=(4, 6, 1))
    w = np.zeros((4, 6))
    w[0] = 1.0                                     # only sequence 0 is scored
    a = RNN(2, 1, hidden=(3,), dtype=np.float64, seed=1)
    b = RNN(2, 1, hidden=(3,), dtype=np.float64, seed=1)
    fit(a, x, d, divergence=SquaredError(weights=w), optimizer=SGD(0.1), epochs=1, batch_size=2,
        seed=2, progress=False)
    order = np.random.default_rng(2).permutation(4)
    _sgd_by_hand(b, x, d, w, [order[:2], order[2:]])
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-12, atol=1e-15)


def test_per_step_weights_are_cut_with_the_bptt_windows():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 8, 1))
    d = rng.normal(size=(2, 8, 1))
    w = np.linspace(0.0, 1.0, 8)
    a = RNN(1, 1, hidden=(3,), dtype=np.float64, seed=3)
    b = RNN(1, 1, hidden=(3,), dtype=np.float64, seed=3)
    fit(a, x, d, divergence=SquaredError(weights=w), optimizer=SGD(0.1), epochs=1, batch_size=2,
        bptt=4, shuffle=False, progress=False)
    state = None
    for sl in (slice(0, 4), slice(4, 8)):           # the two windows by hand
        y, cache = b.forward(x[:, sl], state=state)
        _, dy = SquaredError(weights=w[sl])(y, d[:, sl])
        grads, _ = b.backward(dy, cache)
        for k in b.params:
            b.params[k] -= 0.1 * grads[k]
        state = cache.state
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-12, atol=1e-15)


def test_a_plain_function_is_a_divergence():
    # the squared error of each sequence's cumulative sum: it does not decompose over time
    def cumsum_error(y, d, *, lengths=None):
        c = np.cumsum(y, axis=1) - np.cumsum(d, axis=1)
        dy = np.cumsum((2 * c / len(y))[:, ::-1], axis=1)[:, ::-1]
        return float(np.sum(c * c) / len(y)), dy

    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 10, 1))
    d = 0.3 * x
    model = RNN(1, 1, hidden=(4,), dtype=np.float64, seed=0)
    check = gradcheck(model, x[:2], d[:2], cumsum_error)
    assert check.max_error < 1e-6, str(check)
    h = fit(model, x, d, divergence=cumsum_error, optimizer=Adam(0.02), epochs=150, batch_size=16,
            progress=False)
    assert h.loss[-1] < h.loss[0] / 20


# ------------------------------------------------------------------ learning rates
class _RecordLR(Callback):
    """The learning rate each epoch trained with (read after its last batch)."""

    def set_optimizer(self, optimizer):
        self.opt, self.seen = optimizer, []

    def on_batch_end(self, model, batch, n_batches, loss):
        if batch == n_batches - 1:
            self.seen.append(self.opt.lr)


def _small_task(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 6, 2))
    return RNN(2, 1, hidden=(3,), dtype=np.float64, seed=seed), x, x[:, :, :1] * 0.5


def test_learning_rate_schedule_sets_each_epochs_rate_from_the_one_fit_steps():
    model, x, d = _small_task()
    record = _RecordLR()
    opt = unrolled.optim.SGD(lr=1.0)
    unrolled.fit(model, x, d, divergence="mse", optimizer=opt, epochs=4, batch_size=4, progress=False,
                 callbacks=[unrolled.LearningRateSchedule(lambda epoch, lr: 0.1 * 0.5 ** epoch), record])
    np.testing.assert_allclose(record.seen, [0.1, 0.05, 0.025, 0.0125])
    assert opt.lr == 0.0125                                    # not moved on past the last epoch


def test_learning_rate_schedule_works_with_an_optimizer_named_by_a_string():
    model, x, d = _small_task(1)
    record = _RecordLR()
    unrolled.fit(model, x, d, divergence="mse", optimizer="adam", epochs=3, progress=False,
                 callbacks=[unrolled.LearningRateSchedule(lambda epoch, lr: lr / 2 if epoch else 0.02), record])
    np.testing.assert_allclose(record.seen, [0.02, 0.01, 0.005])


def test_learning_rate_schedule_refuses_a_rate_that_is_not_positive():
    model, x, d = _small_task(2)
    with pytest.raises(ValueError, match=r"the schedule gave the learning rate -1.0 for epoch 0; expected a positive"):
        unrolled.fit(model, x, d, divergence="mse", optimizer="sgd", epochs=2, progress=False,
                     callbacks=[unrolled.LearningRateSchedule(lambda epoch, lr: -1.0)])
    with pytest.raises(TypeError, match=r"schedule must be a callable \(epoch, lr\) -> lr, got float"):
        unrolled.LearningRateSchedule(0.1)


def test_reduce_lr_on_plateau_by_hand():
    opt = unrolled.optim.SGD(lr=1.0)
    cb = unrolled.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.2, monitor="loss")
    cb.set_optimizer(opt)
    cb.on_train_begin(None, 10)
    rates = []
    for epoch, loss in enumerate([5.0, 4.0, 4.0, 4.5, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]):
        assert cb.on_epoch_end(None, epoch, {"loss": loss}) is False
        rates.append(opt.lr)
    # no improvement at epochs 2, 3: halve; 4 improves; 5, 6: halve; 7, 8: 0.25 -> floor 0.2
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2]


def test_reduce_lr_on_plateau_needs_what_it_monitors():
    model, x, d = _small_task(3)
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau monitors 'val_loss', which fit did not compute"):
        unrolled.fit(model, x, d, divergence="mse", optimizer="sgd", epochs=2, progress=False,
                     callbacks=[unrolled.ReduceLROnPlateau()])
    with pytest.raises(ValueError, match=r"factor must lie in \(0, 1\), got 2"):
        unrolled.ReduceLROnPlateau(factor=2)
