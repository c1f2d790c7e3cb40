"""Training by backpropagation through time: a trainer that knows nothing of models.

``fit`` needs only what every model has: ``params`` (live arrays), ``forward`` and
``backward``. One update is: forward a minibatch of whole sequences, take the
divergence between the output and target *sequences* and its gradient at every step,
BPTT, (clip), optimizer step. With ``bptt=k`` (truncated BPTT) each minibatch is cut
into windows of k steps; the state at the end of one window starts the next (as a
constant: no gradient crosses the cut), and the weights are updated after each window,
so memory does not grow with T.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import divergences as _divergences
from . import optim as _optim
from ._checks import check_lengths
from .engine import ForwardCache

__all__ = ["fit", "History", "Callback", "EarlyStopping", "LearningRateSchedule", "ReduceLROnPlateau", "Checkpoint",
           "ProgressBar", "evaluate"]


@dataclass
class History:
    """What ``fit`` returns: per-epoch training and validation divergence.

    ``loss[e]`` is the mean over the epoch's minibatches of the divergence (per
    sequence); ``val_loss[e]`` the divergence on the validation set after epoch e.
    ``best_epoch`` is the epoch whose weights the model holds when early stopping
    restored them (else the last); ``stopped_early`` says whether training stopped
    before ``epochs``.
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0

    @property
    def epochs(self):
        return len(self.loss)


class Callback:
    """Hooks called by ``fit``. ``on_epoch_end`` returning True stops training."""

    def set_optimizer(self, optimizer):
        """Called by ``fit`` before training with the optimizer it steps (whose ``lr`` a
        callback may change between epochs)."""

    def on_train_begin(self, model, epochs):
        pass

    def on_batch_end(self, model, batch, n_batches, loss):
        pass

    def on_epoch_end(self, model, epoch, logs):
        return False

    def on_train_end(self, model, history):
        pass


class EarlyStopping(Callback):
    """Stop when ``val_loss`` has not improved for ``patience`` epochs; restore the best weights."""

    def __init__(self, patience=10, min_delta=0.0, restore_best=True):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience, self.min_delta, self.restore_best = patience, min_delta, restore_best

    def on_train_begin(self, model, epochs):
        self.best, self.best_epoch, self.wait, self.weights = math.inf, None, 0, None

    def on_epoch_end(self, model, epoch, logs):
        value = logs.get("val_loss")
        if value is None:
            raise ValueError("EarlyStopping needs validation data: pass validation=(x, d) to fit")
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            self.weights = {k: v.copy() for k, v in model.params.items()}
            return False
        self.wait += 1
        return self.wait >= self.patience

    def on_train_end(self, model, history):
        if self.restore_best and self.weights is not None:
            for key, value in self.weights.items():
                np.copyto(model.params[key], value)
            history.best_epoch = self.best_epoch


class _SetsLearningRate(Callback):
    """A callback that changes an optimizer's ``lr``: its own, or else the one ``fit`` steps."""

    optimizer = None

    def set_optimizer(self, optimizer):
        if self.optimizer is None:
            self.optimizer = optimizer


class LearningRateSchedule(_SetsLearningRate):
    """Set the learning rate at the start of every epoch: ``lr = schedule(epoch, lr)``.

    ``schedule(epoch, lr)`` gets the epoch about to start (0, 1, ...) and the current
    rate; e.g. ``lambda epoch, lr: 0.01 * 0.9 ** epoch`` (exponential decay) or
    ``lambda epoch, lr: lr / 10 if epoch in (30, 60) else lr`` (steps). ``optimizer``:
    the one to set (default: the one ``fit`` steps).
    """

    def __init__(self, schedule, optimizer=None):
        if not callable(schedule):
            raise TypeError(f"schedule must be a callable (epoch, lr) -> lr, got {type(schedule).__name__}")
        self.schedule, self.optimizer = schedule, optimizer

    def _set(self, epoch):
        lr = self.schedule(epoch, self.optimizer.lr)
        if not (isinstance(lr, (int, float, np.floating)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"the schedule gave the learning rate {lr!r} for epoch {epoch}; expected a positive number")
        self.optimizer.lr = float(lr)

    def on_train_begin(self, model, epochs):
        self.epochs = epochs
        self._set(0)

    def on_epoch_end(self, model, epoch, logs):
        if epoch + 1 < self.epochs:
            self._set(epoch + 1)
        return False


class ReduceLROnPlateau(_SetsLearningRate):
    """Multiply the learning rate by ``factor`` when the monitored loss (``"val_loss"``, or
    ``"loss"`` without validation) has not improved by more than ``min_delta`` for
    ``patience`` epochs; never below ``min_lr``. After a reduction it waits ``patience``
    epochs again. ``optimizer``: the one to set (default: the one ``fit`` steps)."""

    def __init__(self, factor=0.1, patience=10, min_lr=0.0, min_delta=0.0, monitor="val_loss", optimizer=None):
        if not 0 < factor < 1:
            raise ValueError(f"factor must lie in (0, 1), got {factor!r}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience!r}")
        if monitor not in ("val_loss", "loss"):
            raise ValueError(f"monitor must be 'val_loss' or 'loss', got {monitor!r}")
        self.factor, self.patience, self.min_lr, self.min_delta = factor, patience, min_lr, min_delta
        self.monitor, self.optimizer = monitor, optimizer

    def on_train_begin(self, model, epochs):
        self.best, self.wait = math.inf, 0

    def on_epoch_end(self, model, epoch, logs):
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(f"ReduceLROnPlateau monitors {self.monitor!r}, which fit did not compute: pass "
                             "validation=(x, d) to fit, or monitor='loss'")
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.wait = 0
        return False


class Checkpoint(Callback):
    """Save the model to ``path`` after each epoch (or only when ``val_loss`` improves)."""

    def __init__(self, path, best_only=False):
        self.path, self.best_only = path, best_only

    def on_train_begin(self, model, epochs):
        self.best = math.inf

    def on_epoch_end(self, model, epoch, logs):
        from .io import save

        value = logs.get("val_loss", logs["loss"])
        if not self.best_only or value < self.best:
            self.best = min(self.best, value)
            save(model, self.path)
        return False


class ProgressBar(Callback):
    """A one-line progress bar on stderr: epoch, bar, loss, validation loss, time."""

    def __init__(self, stream=None, width=24):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width

    def on_train_begin(self, model, epochs):
        self.epochs, self.start, self.last = epochs, time.perf_counter(), 0.0
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def on_epoch_end(self, model, epoch, logs):
        now = time.perf_counter()
        done = epoch + 1
        if not self.tty and done != self.epochs and now - self.last < 2.0:
            return False
        self.last = now
        filled = int(self.width * done / self.epochs)
        bar = "#" * filled + "." * (self.width - filled)
        text = f"epoch {done:>{len(str(self.epochs))}}/{self.epochs} [{bar}] loss {logs['loss']:.5g}"
        if "val_loss" in logs:
            text += f"  val {logs['val_loss']:.5g}"
        text += f"  {now - self.start:.1f}s"
        self.stream.write(("\r" if self.tty else "") + text + ("" if self.tty else "\n"))
        self.stream.flush()
        return False

    def on_train_end(self, model, history):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def fit(model, x, d, *, divergence, optimizer, epochs=10, batch_size=32, lengths=None,
        validation=None, validation_divergence=None, patience=None, clip=None, bptt=None, shuffle=True, seed=None,
        callbacks=(), progress=True, checkpoint=None, inputs=None):
    """Train ``model`` on sequences by BPTT; returns a :class:`History`.

    Parameters
    ----------
    model : any object with ``params``, ``forward`` and ``backward``.
    x : (N, T, n_in) inputs.
    d : targets, as the divergence expects them: (N, T, n_out), (N, T) class labels, or
        one per sequence for many-to-one divergences.
    divergence : callable ``div(y, d, *, lengths) -> (value, dy)`` or a name.
    optimizer : an ``unrolled.optim`` optimizer or a name ("adam", "sgd", ...).
    epochs, batch_size : int.
    lengths : (N,) valid steps of each sequence (padding at the end).
    validation : ``(x_val, d_val)`` or ``(x_val, d_val, lengths_val)``.
    validation_divergence : what to score the validation data with (default: the
        training divergence), e.g. the same divergence weighted on held-out steps.
    patience : stop when the validation divergence has not improved for this many
        epochs and restore the best weights (needs ``validation``).
    clip : clip the gradient to this global L2 norm.
    bptt : truncated BPTT window (steps); the state is carried between windows.
    shuffle, seed : minibatch order, reproducible under ``seed``.
    callbacks : :class:`Callback` objects.
    progress : show a progress bar on stderr.
    checkpoint : a path; the model is saved there after every epoch (the best one
        when ``validation`` is given).
    inputs : dict name -> (N, T, width) further external inputs of the network.
    """
    div = _divergences.get(divergence)
    val_div = div if validation_divergence is None else _divergences.get(validation_divergence)
    opt = _optim.get(optimizer) if isinstance(optimizer, str) else optimizer
    if not hasattr(opt, "step"):
        raise TypeError(f"optimizer must be an unrolled.optim optimizer or a name, got {type(optimizer).__name__}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if bptt is not None and (not isinstance(bptt, (int, np.integer)) or bptt < 1):
        raise ValueError(f"bptt must be a positive number of steps, got {bptt!r}")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be a positive norm, got {clip!r}")

    x, d, lengths, inputs = _check_data(x, d, lengths, _with_fit_inputs(model, x, d, inputs), "x")
    if validation is not None:
        validation = _check_validation(model, validation)
    callbacks = list(callbacks)
    if patience is not None:
        if validation is None:
            raise ValueError("patience needs validation data: pass validation=(x_val, d_val)")
        callbacks.append(EarlyStopping(patience))
    if checkpoint is not None:
        callbacks.append(Checkpoint(checkpoint, best_only=validation is not None))
    if progress:
        callbacks.append(ProgressBar())

    rng = np.random.default_rng(seed)
    N = len(lengths)
    history = History()
    start = time.perf_counter()
    for cb in callbacks:
        if hasattr(cb, "set_optimizer"):
            cb.set_optimizer(opt)
    for cb in callbacks:
        cb.on_train_begin(model, epochs)
    for epoch in range(epochs):
        order = rng.permutation(N) if shuffle else np.arange(N)
        batches = [order[i:i + batch_size] for i in range(0, N, batch_size)]
        total = 0.0
        for b, idx in enumerate(batches):
            xb = None if x is None else x[idx]
            extra = {k: v[idx] for k, v in inputs.items()}
            loss = _train_batch(model, xb, d[idx], lengths[idx], extra, _restrict(div, rows=idx), opt, clip, bptt)
            total += loss
            for cb in callbacks:
                cb.on_batch_end(model, b, len(batches), loss)
        logs = {"loss": total / len(batches)}
        if not np.isfinite(logs["loss"]):
            raise FloatingPointError(f"the divergence became {logs['loss']} in epoch {epoch}: "
                                     "lower the learning rate or clip the gradient (clip=1.0)")
        history.loss.append(logs["loss"])
        if validation is not None:
            xv, dv, lv = validation
            logs["val_loss"] = evaluate(model, xv, dv, lv, divergence=val_div,
                                        inputs=_with_fit_inputs(model, xv, dv, None))
            history.val_loss.append(logs["val_loss"])
        stop = False
        for cb in callbacks:
            stop = bool(cb.on_epoch_end(model, epoch, logs)) or stop
        if stop and epoch + 1 < epochs:
            history.stopped_early = True
            break
    history.best_epoch = history.epochs - 1
    for cb in callbacks:
        cb.on_train_end(model, history)
    history.seconds = time.perf_counter() - start
    return history


def evaluate(model, x, d, lengths=None, *, divergence, inputs=None):
    """The divergence of ``model``'s outputs on ``x`` against ``d`` (forward only)."""
    div = _divergences.get(divergence)
    y, _ = model.forward(x, lengths=lengths, **(inputs or {}))
    value, _ = div(y, d, lengths=lengths)
    return float(value)


def _restrict(div, rows=None, steps=None):
    """``div`` for a minibatch / window (its per-step weights sliced); plain callables as they are."""
    restrict = getattr(div, "restrict", None)
    return div if restrict is None else restrict(rows=rows, steps=steps)


def _with_fit_inputs(model, x, d, inputs):
    """The extra inputs a model reads in training (an open-loop NARX: its teacher = d).

    A model may define ``fit_inputs(x, d) -> dict``; the caller's ``inputs`` win.
    """
    hook = getattr(model, "fit_inputs", None)
    extra = dict(hook(x, d)) if hook is not None else {}
    extra.update(inputs or {})
    return extra


def _train_batch(model, x, d, lengths, inputs, div, opt, clip, bptt):
    T = (x if x is not None else next(iter(inputs.values()))).shape[1]
    if bptt is None or bptt >= T:
        return _step(model, x, d, lengths, inputs, None, div, opt, clip)[0]
    if d.ndim < 2 or d.shape[1] != T:
        raise ValueError(f"truncated BPTT cuts the targets in time: expected d with T={T} steps "
                         f"on axis 1, got shape {d.shape}")
    state, total = None, 0.0
    for s in range(0, T, bptt):
        win = np.clip(lengths - s, 0, bptt)
        if not win.any():
            break
        sl = slice(s, s + bptt)
        loss, state = _step(model, None if x is None else x[:, sl], d[:, sl], win,
                            {k: v[:, sl] for k, v in inputs.items()}, state, _restrict(div, steps=sl), opt, clip)
        total += loss
    return total


def _step(model, x, d, lengths, inputs, state, div, opt, clip):
    y, cache = model.forward(x, lengths=lengths, state=state, **inputs)
    value, dy = div(y, d, lengths=lengths)
    if isinstance(cache, ForwardCache):
        cache.input_grads = False                 # only the parameters' gradients are read here
    grads, _ = model.backward(dy, cache)
    if clip is not None:
        grads, _ = _optim.clip_grad_norm(grads, clip)
    opt.step(model.params, grads)
    return float(value), getattr(cache, "state", None)


def _check_data(x, d, lengths, inputs, name):
    inputs = dict(inputs or {})
    if x is not None:
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"expected {name} of shape (N, T, n_in), got {x.shape}")
    first = x if x is not None else next(iter(inputs.values()), None)
    if first is None:
        raise ValueError("fit needs input sequences: x or inputs=")
    N, T = np.shape(first)[:2]
    d = np.asarray(d)
    if d.shape[:1] != (N,):
        raise ValueError(f"expected targets d with N={N} sequences on axis 0 like x, got shape {d.shape}")
    for key, value in inputs.items():
        inputs[key] = np.asarray(value)
        if inputs[key].shape[:2] != (N, T):
            raise ValueError(f"input {key!r} must have (N, T) = {(N, T)} like x, got {inputs[key].shape}")
    return x, d, check_lengths(lengths, N, T), inputs


def _check_validation(model, validation):
    if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
        raise ValueError("validation must be (x_val, d_val) or (x_val, d_val, lengths_val)")
    xv, dv = validation[0], validation[1]
    lv = validation[2] if len(validation) == 3 else None
    xv, dv, lv, _ = _check_data(xv, dv, lv, _with_fit_inputs(model, xv, dv, None), "x_val")
    return xv, dv, lv
