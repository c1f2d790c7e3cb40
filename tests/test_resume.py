"""Training interrupted at any point and resumed ends bitwise as if it had never stopped.

``fit(..., checkpoint=PATH)`` writes after every epoch the model, the optimizer's state,
the epoch, the random generator's state, the history and the callbacks' state, in one
atomic file; ``fit(..., resume=PATH)`` goes on from it. The test kills a training
process with SIGKILL at random moments (mid-epoch, mid-save), resumes it each time, and
compares the final weights and history with one run never interrupted.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import unrolled
from unrolled import fit, io
from unrolled.divergences import SquaredError
from unrolled.optim import SGD, Adam
from unrolled.train import Callback, LearningRateSchedule, ReduceLROnPlateau

SRC = os.path.dirname(os.path.dirname(os.path.abspath(unrolled.__file__)))

WORKER = r'''
import json, os, sys, time
import numpy as np
import unrolled
from unrolled import fit
from unrolled.divergences import SquaredError
from unrolled.optim import Adam
from unrolled.train import Callback, LearningRateSchedule, ReduceLROnPlateau

class Slow(Callback):          # time for a kill to land anywhere; changes no number
    def on_batch_end(self, model, batch, n_batches, loss):
        time.sleep(0.04)

checkpoint, out = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
x, d = rng.normal(size=(24, 30, 2)), rng.normal(size=(24, 30, 1))
xv, dv = rng.normal(size=(6, 30, 2)), rng.normal(size=(6, 30, 1))
model = unrolled.RNN(2, 1, hidden=(8,), seed=0)
history = fit(model, x, d, divergence=SquaredError(), optimizer=Adam(0.02), epochs=16, batch_size=8, seed=3,
              validation=(xv, dv), patience=30, callbacks=[Slow(), ReduceLROnPlateau(0.5, patience=2)],
              progress=False, checkpoint=checkpoint,
              resume=checkpoint if os.path.exists(checkpoint) else None)
np.savez(out, **model.params)
with open(out + ".json", "w") as f:
    json.dump({"loss": history.loss, "val_loss": history.val_loss, "best": history.best_epoch}, f)
print("done")
'''


def run_worker(script, checkpoint, out, kill_after=None):
    """Run the worker; with ``kill_after`` seconds, SIGKILL it then. True if it finished."""
    proc = subprocess.Popen([sys.executable, script, str(checkpoint), str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": SRC})
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            return False
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    return True


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL here")
def test_training_killed_at_random_points_and_resumed_ends_bitwise_as_uninterrupted(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    run_worker(script, tmp_path / "straight.npz", tmp_path / "straight-out.npz")

    checkpoint, out = tmp_path / "ck.npz", tmp_path / "resumed-out.npz"
    delays = np.random.default_rng(7).uniform(0.6, 1.4, size=15)   # from the start: ~0.7 s of it is imports
    kills = 0
    for delay in delays:
        if run_worker(script, checkpoint, out, kill_after=float(delay)):
            break
        kills += 1
    else:
        run_worker(script, checkpoint, out)
    assert kills >= 3                                     # it really was interrupted, more than once

    straight, resumed = np.load(tmp_path / "straight-out.npz"), np.load(out)
    assert set(straight.files) == set(resumed.files)
    for key in straight.files:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)
    with open(tmp_path / "straight-out.npz.json") as f, open(str(out) + ".json") as g:
        assert json.load(f) == json.load(g)
    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert not leftovers                                  # a killed save's temporary is gone


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(12, 10, 2)), rng.normal(size=(12, 10, 1))


def test_the_checkpoint_loads_as_the_best_model_and_holds_the_last_weights(tmp_path):
    x, d = data()
    xv, dv = data(1)
    path = tmp_path / "ck.npz"
    model = unrolled.RNN(2, 1, hidden=(4,), dtype=np.float64, seed=0)
    history = fit(model, x, d, divergence=SquaredError(), optimizer=Adam(0.05), epochs=12, batch_size=4, seed=0,
                  validation=(xv, dv), progress=False, checkpoint=path)
    best = unrolled.load(path)
    _, state, arrays = io.load_training(path)
    assert state["epoch"] == 11 and state["loss"] == history.loss and state["val_loss"] == history.val_loss
    for key, value in model.params.items():                # the last weights, to go on from
        np.testing.assert_array_equal(arrays[f"params.{key}"], value)
    from unrolled.train import evaluate
    assert evaluate(best, xv, dv, divergence=SquaredError()) == min(history.val_loss)


def test_resume_continues_an_sgd_run_with_momentum_exactly(tmp_path):
    x, d = data()

    def run(epochs, **kw):
        model = unrolled.RNN(2, 1, hidden=(4,), dtype=np.float64, seed=0)
        h = fit(model, x, d, divergence=SquaredError(), optimizer=SGD(0.05, momentum=0.9), epochs=epochs,
                batch_size=5, seed=2, progress=False, **kw)
        return model, h
    straight, hs = run(9)
    path = tmp_path / "ck.npz"
    run(4, checkpoint=path)
    resumed, hr = run(9, checkpoint=path, resume=path)
    assert hr.loss == hs.loss
    for key in straight.params:
        np.testing.assert_array_equal(resumed.params[key], straight.params[key])


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    x, d = data()
    path = tmp_path / "ck.npz"
    fit(unrolled.RNN(2, 1, hidden=(4,), seed=0), x, d, divergence=SquaredError(), optimizer=Adam(0.01), epochs=2,
        progress=False, checkpoint=path)
    other = unrolled.RNN(2, 1, hidden=(5,), seed=0)
    before = {k: v.copy() for k, v in other.params.items()}
    with pytest.raises(ValueError, match="cannot resume"):
        fit(other, x, d, divergence=SquaredError(), optimizer=Adam(0.01), epochs=4, progress=False, resume=path)
    with pytest.raises(ValueError, match="trained with Adam, not SGD"):
        fit(unrolled.RNN(2, 1, hidden=(4,), seed=0), x, d, divergence=SquaredError(), optimizer=SGD(0.01),
            epochs=4, progress=False, resume=path)
    for key in before:
        np.testing.assert_array_equal(other.params[key], before[key])
    plain = tmp_path / "plain.npz"
    unrolled.save(other, plain)
    with pytest.raises(ValueError, match="no training state"):
        fit(other, x, d, divergence=SquaredError(), optimizer=Adam(0.01), epochs=4, progress=False, resume=plain)


def test_a_checkpoint_that_cannot_be_written_is_refused_before_the_first_update(tmp_path):
    x, d = data()
    model = unrolled.RNN(2, 1, hidden=(4,), seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    (tmp_path / "a-file").write_text("x")
    for path, message in ((tmp_path / "missing" / "ck.npz", "its folder .*missing' does not exist"),
                          (tmp_path, "it names a folder"),
                          (tmp_path / "a-file" / "ck.npz", "its folder .*a-file' is not a folder"),
                          ("", "must name a file")):
        with pytest.raises(ValueError, match=f"checkpoint .*{message}" if path != "" else message):
            fit(model, x, d, divergence=SquaredError(), optimizer=Adam(0.01), epochs=2, progress=False,
                checkpoint=path)
    with pytest.raises(TypeError, match="checkpoint must be a str or os.PathLike, got bool"):
        fit(model, x, d, divergence=SquaredError(), optimizer=Adam(0.01), epochs=2, progress=False, checkpoint=True)
    for key in before:
        np.testing.assert_array_equal(model.params[key], before[key])
    assert sorted(os.listdir(tmp_path)) == ["a-file"]


def test_resume_refuses_other_data_or_other_settings_and_names_them(tmp_path):
    x, d = data()
    path = tmp_path / "ck.npz"
    kw = dict(divergence=SquaredError(), batch_size=4, progress=False)
    fit(unrolled.RNN(2, 1, hidden=(4,), seed=0), x, d, optimizer=Adam(0.01), epochs=2, checkpoint=path, **kw)
    model = unrolled.RNN(2, 1, hidden=(4,), seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    x2 = x.copy()
    x2[3, 4, 1] += 1e-9
    for call, message in [
        (dict(x=x[:8], d=d[:8]), r"it was trained on x of shape \(12, 10, 2\), not \(8, 10, 2\); resume on the same data"),
        (dict(x=x2), "it was trained on x with other values"),
        (dict(d=2 * d), "it was trained on d with other values"),
        (dict(optimizer=Adam(0.5)), r"its optimizer started with lr=0.01, this one has lr=0.5; build the optimizer"),
        (dict(batch_size=6), "it was trained with batch_size=4, this call gives 6"),
        (dict(clip=1.0), "it was trained with clip=None, this call gives 1.0"),
        (dict(divergence=SquaredError(weights=np.ones(10))), "its divergence had other weights"),
        (dict(x=x.astype(np.float32)), "it was trained on x of dtype float64, not float32"),
        (dict(validation=(x, d)), "it was trained without validation x; resume on the same data"),
        (dict(regularizer=unrolled.optim.WeightDecay(0.5)), "it was trained with regularizer=None, this call gives"),
    ]:
        args = {"x": x, "d": d, **kw, "optimizer": Adam(0.01), **call}
        with pytest.raises(ValueError, match=f"ck.npz: cannot resume from it: {message}"):
            fit(model, args.pop("x"), args.pop("d"), epochs=4, resume=path, **args)
    for key in before:
        np.testing.assert_array_equal(model.params[key], before[key])
    history = fit(model, x, d, optimizer=Adam(0.01), epochs=4, resume=path, checkpoint=path, **kw)   # the same run
    assert history.epochs == 4
    again = unrolled.RNN(2, 1, hidden=(4,), seed=0)
    fit(again, x, d, optimizer=Adam(0.01), epochs=6, resume=path, **kw)                # resumed twice: still the same


def test_resume_in_the_same_process_with_the_optimizer_a_schedule_has_changed(tmp_path):
    x, d = data()
    path = tmp_path / "ck.npz"

    class Interrupt(Callback):
        at = 2

        def on_epoch_end(self, model, epoch, logs):
            if epoch == self.at:
                raise KeyboardInterrupt

    stop = Interrupt()
    kw = dict(divergence=SquaredError(), batch_size=4, progress=False, checkpoint=path,
              callbacks=[LearningRateSchedule(lambda epoch, lr: 0.01 * 0.5 ** epoch), stop])
    model, opt = unrolled.RNN(2, 1, hidden=(4,), seed=0), Adam(0.01)
    with pytest.raises(KeyboardInterrupt):
        fit(model, x, d, optimizer=opt, epochs=6, **kw)
    assert opt.lr < 0.01                              # the schedule moved the object's rate
    stop.at = None
    history = fit(model, x, d, optimizer=opt, epochs=6, resume=path, **kw)   # the same optimizer object
    assert history.epochs == 6
    with pytest.raises(ValueError, match="its optimizer started with lr=0.01, this one has lr=0.02"):
        fit(model, x, d, optimizer=Adam(0.02), epochs=8, resume=path, **kw)
