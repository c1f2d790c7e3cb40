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

import inspect
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from . import divergences as _divergences
from . import optim as _optim
from ._checks import check_lengths, check_seed, first_nonfinite
from .engine import ForwardCache, backend
from .generate import output_activation
from .least_squares import LeastSquares

if TYPE_CHECKING:
    from .divergences import Divergence
    from .optim import LevenbergMarquardt, Optimizer, WeightDecay, WeightElimination

__all__ = ["fit", "History", "Callback", "EarlyStopping", "LearningRateSchedule", "ReduceLROnPlateau", "Checkpoint",
           "ProgressBar", "evaluate"]


@dataclass
class History:
    """What ``fit`` returns: per-epoch training and validation divergence.

    ``loss[e]`` is the mean over the epoch's minibatches of the divergence (per
    sequence); ``val_loss[e]`` the divergence on the validation set after epoch e.
    ``best_epoch`` is the epoch whose weights the model holds when early stopping
    restored them (else the last); ``stopped_early`` says whether training stopped
    before ``epochs`` (early stopping, or a second-order optimizer that converged).
    ``logs`` holds what else an optimizer reports every epoch, name -> list
    (``LevenbergMarquardt``: ``mu``, ``sse``, ``ssw``; Bayesian: ``gamma``, ``alpha``,
    ``beta``).

    Attributes
    ----------
    loss : list of float
        The training divergence of every epoch.
    val_loss : list of float
        The validation divergence of every epoch (empty without validation).
    logs : dict of str to list
        What else the optimizer reported every epoch.
    best_epoch : int or None
        The epoch of the weights the model holds after early stopping.
    stopped_early : bool
        Whether training stopped before ``epochs``.
    seconds : float
        Wall time of the whole fit.
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    logs: dict = field(default_factory=dict)
    best_epoch: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        """The number of epochs trained (``len(loss)``)."""
        return len(self.loss)


class Callback:
    """Hooks called by ``fit``. ``on_epoch_end`` returning True stops training.

    Subclass it and override the hooks you need; every hook does nothing by default.
    ``fit`` calls, in this order: ``set_optimizer``, ``check``, ``on_train_begin``, then
    ``on_batch_end`` after every minibatch and ``on_epoch_end`` after every epoch, and
    ``on_train_end``. ``state`` / ``restore`` let a checkpoint resume the callback exactly.
    """

    def set_optimizer(self, optimizer: Optimizer | LevenbergMarquardt) -> None:
        """Called by ``fit`` before training with the optimizer it steps (whose ``lr`` a
        callback may change between epochs).

        Parameters
        ----------
        optimizer : unrolled.optim.Optimizer
            The optimizer ``fit`` steps.
        """

    def check(self, model: Any, epochs: int) -> None:
        """Called by ``fit`` before anything changes: raise ValueError / TypeError for what
        would fail later (the model and the optimizer are still untouched).

        Parameters
        ----------
        model : block
            The model to be trained.
        epochs : int
            The number of epochs ``fit`` will run at most.
        """

    def on_train_begin(self, model: Any, epochs: int) -> None:
        """Training starts (``epochs`` at most).

        Parameters
        ----------
        model : block
            The model being trained.
        epochs : int
            The number of epochs ``fit`` will run at most.
        """

    def on_batch_end(self, model: Any, batch: int, n_batches: int, loss: float) -> None:
        """A minibatch was trained on: its ``loss``.

        Parameters
        ----------
        model : block
            The model being trained (its weights already updated).
        batch : int
            The minibatch's index within the epoch, 0 .. n_batches - 1.
        n_batches : int
            The number of minibatches of the epoch.
        loss : float
            The minibatch's divergence.
        """

    def on_epoch_end(self, model: Any, epoch: int, logs: dict) -> bool:
        """An epoch ended: ``logs`` has ``loss`` (and ``val_loss``); return True to stop.

        Parameters
        ----------
        model : block
            The model being trained.
        epoch : int
            The epoch that ended, from 0.
        logs : dict
            ``loss`` (the epoch's mean training divergence), ``val_loss`` with validation
            data, and what the optimizer reports (``mu``, ``gamma``, ...).

        Returns
        -------
        bool
            True stops training after this epoch.
        """
        return False

    def on_train_end(self, model: Any, history: History) -> None:
        """Training ended (the :class:`History` is complete but for ``seconds``).

        Parameters
        ----------
        model : block
            The trained model.
        history : History
            What ``fit`` is about to return.
        """

    def state(self) -> tuple[dict, dict]:
        """What a checkpoint keeps of this callback to resume it exactly. Nothing by default.

        Returns
        -------
        values : dict
            JSON-friendly values.
        arrays : dict of str to numpy.ndarray
            Arrays by name.
        """
        return {}, {}

    def restore(self, values: dict, arrays: dict) -> None:
        """Take back what ``state`` gave (after ``on_train_begin``, when ``fit`` resumes).

        Parameters
        ----------
        values : dict
            The first half of what ``state`` returned.
        arrays : dict of str to numpy.ndarray
            The second half of what ``state`` returned.
        """



class EarlyStopping(Callback):
    """Stop when ``val_loss`` has not improved for ``patience`` epochs; restore the best weights.

    ``fit(..., patience=k)`` adds one. It needs validation data.

    Parameters
    ----------
    patience : int
        Epochs without improvement before training stops (>= 1).
    min_delta : float
        How much lower ``val_loss`` must be to count as an improvement.
    restore_best : bool
        Put back the weights of the best epoch when training ends.
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, restore_best: bool = True) -> None:
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        self.patience, self.min_delta, self.restore_best = patience, min_delta, restore_best

    def on_train_begin(self, model: Any, epochs: int) -> None:
        self.best, self.best_epoch, self.wait, self.weights = math.inf, None, 0, None

    def on_epoch_end(self, model: Any, epoch: int, logs: dict) -> bool:
        value = logs.get("val_loss")
        if value is None:
            raise ValueError("EarlyStopping needs validation data: pass validation=(x, d) to fit")
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            self.weights = {k: v.copy() for k, v in model.params.items()}
            return False
        self.wait += 1
        return self.wait >= self.patience

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        values = {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}
        return values, ({} if self.weights is None else dict(self.weights))

    def restore(self, values: dict, arrays: dict[str, np.ndarray]) -> None:
        self.best, self.best_epoch, self.wait = values["best"], values["best_epoch"], values["wait"]
        self.weights = {k: v.copy() for k, v in arrays.items()} or None

    def on_train_end(self, model: Any, history: History) -> None:
        if self.restore_best and self.weights is not None:
            for key, value in self.weights.items():
                np.copyto(model.params[key], value)
            history.best_epoch = self.best_epoch


class _SetsLearningRate(Callback):
    """A callback that changes an optimizer's ``lr``: its own, or else the one ``fit`` steps."""

    optimizer = None

    def set_optimizer(self, optimizer: Optimizer | LevenbergMarquardt) -> None:
        if self.optimizer is None:
            self.optimizer = optimizer


class LearningRateSchedule(_SetsLearningRate):
    """Set the learning rate at the start of every epoch: ``lr = schedule(epoch, lr)``.

    ``schedule(epoch, lr)`` gets the epoch about to start (0, 1, ...) and the current
    rate; e.g. ``lambda epoch, lr: 0.01 * 0.9 ** epoch`` (exponential decay) or
    ``lambda epoch, lr: lr / 10 if epoch in (30, 60) else lr`` (steps). ``optimizer``:
    the one to set (default: the one ``fit`` steps).

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> lr``, a positive number for every epoch.
    optimizer : unrolled.optim.Optimizer, optional
        The optimizer whose ``lr`` to set (default: the one ``fit`` steps).
    """

    def __init__(self, schedule: Callable[[int, float], float],
                 optimizer: Optimizer | LevenbergMarquardt | None = None) -> None:
        if not callable(schedule):
            raise TypeError(f"schedule must be a callable (epoch, lr) -> lr, got {type(schedule).__name__}")
        self.schedule, self.optimizer = schedule, optimizer

    def _next(self, epoch, lr):
        lr = self.schedule(epoch, lr)
        if isinstance(lr, bool) or not (isinstance(lr, (int, float, np.floating)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"the schedule gave the learning rate {lr!r} for epoch {epoch}; expected a positive number")
        return float(lr)

    def _set(self, epoch):
        self.optimizer.lr = self._next(epoch, self.optimizer.lr)

    def check(self, model: Any, epochs: int) -> None:
        """Every rate the schedule will give, worked out ahead (from the optimizer's rate now).

        Parameters
        ----------
        model : block
            The model to be trained (unused).
        epochs : int
            The number of epochs whose rates are checked.
        """
        lr = self.optimizer.lr
        for epoch in range(epochs):
            lr = self._next(epoch, lr)

    def on_train_begin(self, model: Any, epochs: int) -> None:
        self.epochs = epochs
        self._set(0)

    def on_epoch_end(self, model: Any, epoch: int, logs: dict) -> bool:
        if epoch + 1 < self.epochs:
            self._set(epoch + 1)
        return False


class ReduceLROnPlateau(_SetsLearningRate):
    """Multiply the learning rate by ``factor`` when the monitored loss (``"val_loss"``, or
    ``"loss"`` without validation) has not improved by more than ``min_delta`` for
    ``patience`` epochs; never below ``min_lr``. After a reduction it waits ``patience``
    epochs again. ``optimizer``: the one to set (default: the one ``fit`` steps).

    Parameters
    ----------
    factor : float
        What the rate is multiplied by, in (0, 1).
    patience : int
        Epochs without improvement before a reduction (>= 1).
    min_lr : float
        The rate is never set below this.
    min_delta : float
        How much lower the monitored loss must be to count as an improvement.
    monitor : {"val_loss", "loss"}
        The loss watched.
    optimizer : unrolled.optim.Optimizer, optional
        The optimizer whose ``lr`` to set (default: the one ``fit`` steps).
    """

    def __init__(self, factor: float = 0.1, patience: int = 10, min_lr: float = 0.0, min_delta: float = 0.0,
                 monitor: str = "val_loss", optimizer: Optimizer | LevenbergMarquardt | None = None) -> None:
        if not 0 < factor < 1:
            raise ValueError(f"factor must lie in (0, 1), got {factor!r}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience!r}")
        if monitor not in ("val_loss", "loss"):
            raise ValueError(f"monitor must be 'val_loss' or 'loss', got {monitor!r}")
        self.factor, self.patience, self.min_lr, self.min_delta = factor, patience, min_lr, min_delta
        self.monitor, self.optimizer = monitor, optimizer

    def on_train_begin(self, model: Any, epochs: int) -> None:
        self.best, self.wait = math.inf, 0

    def on_epoch_end(self, model: Any, epoch: int, logs: dict) -> bool:
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

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {"best": self.best, "wait": self.wait}, {}

    def restore(self, values: dict, arrays: dict[str, np.ndarray]) -> None:
        self.best, self.wait = values["best"], values["wait"]


class Checkpoint(Callback):
    """Save the model to ``path`` after each epoch (or only when ``val_loss`` improves).

    This writes the model alone (what ``unrolled.load`` reads); ``fit(..., checkpoint=PATH)``
    writes what training needs to resume as well.

    Parameters
    ----------
    path : str or os.PathLike
        The file written (atomically) by ``unrolled.save``.
    best_only : bool
        Save only when the monitored loss (``val_loss``, else ``loss``) improves.
    """

    def __init__(self, path: str | os.PathLike, best_only: bool = False) -> None:
        self.path, self.best_only = path, best_only

    def on_train_begin(self, model: Any, epochs: int) -> None:
        self.best = math.inf

    def on_epoch_end(self, model: Any, epoch: int, logs: dict) -> bool:
        from .io import save

        value = logs.get("val_loss", logs["loss"])
        if not self.best_only or value < self.best:
            self.best = min(self.best, value)
            save(model, self.path)
        return False


class ProgressBar(Callback):
    """A one-line progress bar on stderr: epoch, bar, loss, validation loss, time.

    ``fit(..., progress=True)`` (the default) adds one.

    Parameters
    ----------
    stream : file-like, optional
        Where to write (default ``sys.stderr``); off a terminal one line every 2 s.
    width : int
        The bar's width in characters.
    """

    def __init__(self, stream: IO[str] | None = None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width

    def on_train_begin(self, model: Any, epochs: int) -> None:
        self.epochs, self.start, self.last = epochs, time.perf_counter(), 0.0
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def on_epoch_end(self, model: Any, epoch: int, logs: dict) -> bool:
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

    def on_train_end(self, model: Any, history: History) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def fit(model: Any, x: np.ndarray | None, d: np.ndarray, *, divergence: Divergence | Callable | str,
        optimizer: Optimizer | LevenbergMarquardt | str, epochs: int = 10,
        batch_size: int | None = None, lengths: np.ndarray | None = None, validation: tuple | None = None,
        validation_divergence: Divergence | Callable | str | None = None, patience: int | None = None,
        clip: float | None = None, bptt: int | None = None, shuffle: bool = True,
        seed: int | np.random.Generator | None = None, callbacks: Callback | Iterable[Callback] = (),
        progress: bool = True, checkpoint: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
        inputs: dict | None = None, check_output: bool = True,
        regularizer: WeightDecay | WeightElimination | None = None) -> History | list[History]:
    """Train ``model`` on sequences by BPTT; returns a :class:`History`.

    An :class:`~unrolled.Ensemble` is trained member by member (``Ensemble.fit``: each
    from its own seed), and a list of their histories comes back.

    Parameters
    ----------
    model : any object with ``params``, ``forward`` and ``backward``.
    x : (N, T, n_in) inputs.
    d : targets, as the divergence expects them: (N, T, n_out), (N, T) class labels, or
        one per sequence for many-to-one divergences.
    divergence : callable ``div(y, d, *, lengths) -> (value, dy)`` or a name.
    optimizer : an ``unrolled.optim`` optimizer or a name ("adam", "sgd", ...). A
        full-batch one (``LevenbergMarquardt``) takes one step on all sequences an epoch,
        from the Jacobian; it needs a sum-of-squares divergence (``SquaredError``) and
        takes no ``batch_size``, ``bptt``, ``clip``, ``regularizer`` (with
        ``bayesian=True`` it has its own) or learning-rate callback.
    epochs : int. batch_size : int, sequences a minibatch (default 32).
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
    checkpoint : a path; after every epoch a file is written there, atomically, that
        ``unrolled.load`` reads as the model (the best one on the validation data when
        ``validation`` is given, else the last) and that holds all ``fit`` needs to go on:
        the last weights, the optimizer's state and learning rate, the epoch, the random
        generator's state, the history and the built-in callbacks' state.
    resume : a checkpoint written by ``fit(..., checkpoint=)`` with these same
        arguments: training goes on after its epoch, and ends bitwise as an uninterrupted
        run would (user callbacks keep what their ``state`` / ``restore`` keep).
    inputs : dict name -> (N, T, width) further external inputs of the network.
    check_output : refuse a divergence made for another output activation
        (``CrossEntropy`` wants a softmax output, ``BinaryCrossEntropy`` a sigmoid one);
        False when the outputs are what the divergence wants by construction.
    regularizer : ``optim.WeightDecay(strength)`` or ``optim.WeightElimination(strength,
        scale)``: a penalty on the link weights added to each minibatch's divergence,
        times the steps that divergence scores per sequence (so the strength means the
        same for any N and T; see ``WeightDecay``). ``History.loss`` is the divergence alone.

    Returns
    -------
    History or list of History
        The per-epoch losses (a list, one a member, for an ``Ensemble``). The model
        holds the trained weights (the best ones under early stopping).

    Notes
    -----
    Everything is checked before the first update: the settings, the shapes and the
    finiteness of x, d and the validation data (the first non-finite value named by
    sequence, step and feature), the targets against the model's outputs (class labels
    in range, one forward pass on one sequence), the divergence against the output
    activation, the callbacks and a learning-rate schedule's every value; a call that
    is refused leaves the model and the optimizer as they were. During training every
    update is checked before it is applied (the loss and the gradient's norm): on a
    non-finite one fit raises ``FloatingPointError`` saying what is likely to blame, and
    the model keeps its last finite weights (the best ones, under early stopping).
    """
    if isinstance(getattr(model, "members", None), list) and callable(getattr(model, "fit", None)):
        # An ensemble: each member trained on its own (Ensemble.fit), a list of histories back.
        kw = dict(divergence=divergence, optimizer=optimizer, epochs=epochs, batch_size=batch_size, lengths=lengths,
                  validation=validation, validation_divergence=validation_divergence, patience=patience, clip=clip,
                  bptt=bptt, shuffle=shuffle, callbacks=callbacks, progress=progress, inputs=inputs,
                  check_output=check_output, regularizer=regularizer)
        if checkpoint is not None or resume is not None:
            raise ValueError("checkpoint / resume take one model: fit an ensemble's members one by one to keep them")
        return model.fit(x, d, seed=seed, **kw)
    div = _divergences.get(divergence)
    val_div = div if validation_divergence is None else _divergences.get(validation_divergence)
    opt = _optim.get(optimizer) if isinstance(optimizer, str) else optimizer
    if not hasattr(opt, "step"):
        raise TypeError(f"optimizer must be an unrolled.optim optimizer or a name, got {type(optimizer).__name__}")
    full_batch = bool(getattr(opt, "full_batch", False))
    for name, value in (("epochs", epochs), ("batch_size", 32 if batch_size is None else batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if full_batch:
        _check_full_batch(opt, div, batch_size, bptt, clip, regularizer)
    batch_size = 32 if batch_size is None else batch_size
    if regularizer is not None and not (callable(getattr(regularizer, "gradient", None))
                                        and callable(getattr(regularizer, "penalty", None))):
        raise TypeError("regularizer must be an unrolled.optim.WeightDecay or WeightElimination "
                        f"(with penalty and gradient), got {type(regularizer).__name__}")
    if bptt is not None and (isinstance(bptt, bool) or not isinstance(bptt, (int, np.integer)) or bptt < 1):
        raise ValueError(f"bptt must be a positive number of steps, got {bptt!r}")
    if clip is not None and not (isinstance(clip, (int, float, np.floating)) and math.isfinite(clip) and clip > 0):
        raise ValueError(f"clip must be a positive norm, got {clip!r}")
    seed = check_seed(seed)

    x, d, lengths, inputs = _check_data(x, d, lengths, _with_fit_inputs(model, x, d, inputs), "x")
    _check_against_model(model, x, d, lengths, inputs, div, bptt, check_output)
    if validation is not None:
        validation = _check_validation(model, validation, val_div)
    callbacks = _all_callbacks(callbacks, patience, validation, progress)
    if full_batch and any(isinstance(cb, _SetsLearningRate) for cb in callbacks):
        raise ValueError(f"{type(opt).__name__} has no learning rate for "
                         f"{next(type(cb).__name__ for cb in callbacks if isinstance(cb, _SetsLearningRate))} to set")
    if checkpoint is not None:
        from .io import check_writable
        checkpoint = check_writable(checkpoint, "checkpoint")
    run = None if checkpoint is None and resume is None else _fingerprint(
        x, d, lengths, inputs, opt, div, validation, val_div, batch_size=batch_size, bptt=bptt, shuffle=shuffle,
        clip=clip, regularizer=None if regularizer is None else repr(regularizer))
    writer = None if checkpoint is None else _Checkpointer(checkpoint, validation is not None, run)
    resumed = None if resume is None else _read_checkpoint(resume, model, opt, callbacks, writer, run)
    for cb in callbacks:
        if hasattr(cb, "set_optimizer"):
            cb.set_optimizer(opt)
    for cb in callbacks:
        getattr(cb, "check", lambda model, epochs: None)(model, epochs)

    rng = np.random.default_rng(seed)
    N = len(lengths)
    history = History()
    start = time.perf_counter()
    guard = _Guard(model, opt, clip, x, d)
    problem = LeastSquares(model, x, d, lengths, inputs, div, guard.fail) if full_batch else None
    for cb in callbacks:
        cb.on_train_begin(model, epochs)
    first = 0
    if resumed is not None:
        first = _apply_checkpoint(resumed, model, opt, rng, history, callbacks, writer)
    # NumPy's overflow and invalid-value signals are the guard's to answer (it checks every
    # loss and gradient, and names the cause), not a warning or an error from deep inside.
    quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    try:
        quiet.__enter__()
        for epoch in range(first, epochs):
            if full_batch:
                guard.at = (epoch, 0)
                logs = _full_batch_step(model, problem, opt, guard, callbacks)
            else:
                order = rng.permutation(N) if shuffle else np.arange(N)
                batches = [order[i:i + batch_size] for i in range(0, N, batch_size)]
                total = 0.0
                for b, idx in enumerate(batches):
                    guard.at = (epoch, b)
                    xb = None if x is None else x[idx]
                    extra = {k: v[idx] for k, v in inputs.items()}
                    loss = _train_batch(model, xb, d[idx], lengths[idx], extra, _restrict(div, rows=idx), opt,
                                        clip, bptt, guard, regularizer)
                    total += loss
                    for cb in callbacks:
                        cb.on_batch_end(model, b, len(batches), loss)
                logs = {"loss": total / len(batches)}
            history.loss.append(logs["loss"])
            for key, value in logs.items():
                if key not in ("loss", "converged"):
                    history.logs.setdefault(key, []).append(value)
            if validation is not None:
                xv, dv, lv = validation
                logs["val_loss"] = evaluate(model, xv, dv, lv, divergence=val_div,
                                            inputs=_with_fit_inputs(model, xv, dv, None))
                if not math.isfinite(logs["val_loss"]):
                    guard.fail("validation", logs["val_loss"])
                history.val_loss.append(logs["val_loss"])
            stop = bool(logs.get("converged"))
            for cb in callbacks:
                stop = bool(cb.on_epoch_end(model, epoch, logs)) or stop
            stopped = stop and epoch + 1 < epochs
            if writer is not None:
                writer.write(model, opt, rng, history, epoch, callbacks, stopped, logs)
            if stopped:
                history.stopped_early = True
                break
    except _Diverged as exc:
        raise FloatingPointError(str(exc) + _restore_best(model, callbacks)) from None
    finally:
        quiet.__exit__(None, None, None)
    history.best_epoch = history.epochs - 1
    for cb in callbacks:
        cb.on_train_end(model, history)
    history.seconds = time.perf_counter() - start
    return history


class _Checkpointer:
    """Writes ``fit``'s checkpoint after every epoch (see ``fit``'s ``checkpoint``): the
    model part holds the best weights on the validation data (with ``best``) or the last;
    the training part holds everything else, the last weights among it."""

    def __init__(self, path, best, run=None):
        self.path, self.best, self.best_value, self.best_params = path, best, math.inf, None
        self.run = run              # what the run trains on and how (``_fingerprint``), which resume checks

    def write(self, model, opt, rng, history, epoch, callbacks, stopped, logs):
        from .io import save
        if self.best and logs["val_loss"] < self.best_value:
            self.best_value = logs["val_loss"]
            self.best_params = {k: v.copy() for k, v in model.params.items()}
        arrays = {f"params.{k}": v.copy() for k, v in model.params.items()}   # (copies: the model part may differ)
        slots = {}
        for i, (name, st) in enumerate(opt.state.items()):
            slots[name] = {"index": i, "step": st.get("step", 0),
                           "arrays": [k for k, v in st.items() if isinstance(v, np.ndarray)]}
            arrays.update({f"opt.{i}.{k}": st[k] for k in slots[name]["arrays"]})
        cbs = []
        for i, cb in enumerate(callbacks):
            values, cb_arrays = cb.state() if hasattr(cb, "state") else ({}, {})
            cbs.append({"class": type(cb).__name__, "values": values, "arrays": list(cb_arrays)})
            arrays.update({f"cb.{i}.{k}": v for k, v in cb_arrays.items()})
        if self.best_params is not None:
            arrays.update({f"best.{k}": v for k, v in self.best_params.items()})
        state = {"epoch": epoch, "stopped": stopped, "rng": rng.bit_generator.state,
                 "loss": history.loss, "val_loss": history.val_loss, "logs": history.logs,
                 "best_value": self.best_value,
                 "optimizer": {"class": type(opt).__name__, "lr": opt.lr, "slots": slots}, "callbacks": cbs,
                 "run": self.run}
        with _weights_as(model, self.best_params):
            save(model, self.path, training=(state, arrays))


class _weights_as:
    """``with _weights_as(model, weights):`` the model holds ``weights`` inside (None: its own)."""

    def __init__(self, model, weights):
        self.model, self.weights = model, weights

    def __enter__(self):
        if self.weights is not None:
            self.kept = {k: v.copy() for k, v in self.model.params.items()}
            for k, v in self.weights.items():
                np.copyto(self.model.params[k], v)

    def __exit__(self, *exc):
        if self.weights is not None:
            for k, v in self.kept.items():
                np.copyto(self.model.params[k], v)


def _crc(arr):
    """A checksum of an array's values and shape (zlib's CRC-32, no copy of a contiguous array)."""
    arr = np.ascontiguousarray(arr)
    return [list(arr.shape), str(arr.dtype), zlib.crc32(memoryview(arr).cast("B"))]


def _fingerprint(x, d, lengths, inputs, opt, div, validation, val_div, **settings):
    """What a run trains on and how, as JSON values: checksums of the data and of the
    validation data, the settings that shape its steps (the divergences by class and
    weights), the optimizer's learning rate at the start. A checkpoint keeps the first
    run's; ``resume`` refuses a call that differs from it, naming what differs."""
    def weights(div):
        w = getattr(div, "weights", None)
        return None if w is None else _crc(w)

    data = {"x": None if x is None else _crc(x), "d": _crc(d), "lengths": _crc(lengths),
            **{f"inputs[{k!r}]": _crc(v) for k, v in sorted(inputs.items())}}
    if validation is not None:
        data.update({f"validation {k}": None if v is None else _crc(v) for k, v in zip(("x", "d", "lengths"), validation)})
    settings = {k: v.item() if isinstance(v, np.generic) else v for k, v in settings.items()}
    settings.update({"divergence": type(div).__name__, "divergence weights": weights(div),
                     "validation": validation is not None,
                     "validation_divergence": None if validation is None else type(val_div).__name__,
                     "validation_divergence weights": None if validation is None else weights(val_div)})
    return {"data": data, "settings": settings, "lr": getattr(opt, "lr", None)}


def _check_run(where, saved, run, used):
    """ValueError naming the first difference between a checkpoint's run and this call's
    (``used``: the optimizer has stepped already, as in a run interrupted and resumed in
    the same process, where a schedule may have moved its rate: the rate is not compared)."""
    if not saved or run is None:                 # (a checkpoint written before runs were recorded)
        return
    for key in list(run["data"]) + [k for k in saved["data"] if k not in run["data"]]:
        value, was = run["data"].get(key), saved["data"].get(key)      # [shape, dtype, crc] or None
        if was == value:
            continue
        if not was:
            why = f"it was trained without {key}"
        elif not value:
            why = f"it was trained with {key}, this call gives none"
        elif was[0] != value[0]:
            why = f"it was trained on {key} of shape {tuple(was[0])}, not {tuple(value[0])}"
        elif was[1] != value[1]:
            why = f"it was trained on {key} of dtype {was[1]}, not {value[1]}"
        else:
            why = f"it was trained on {key} with other values"
        raise ValueError(f"{where} {why}; resume on the same data")
    for key, value in run["settings"].items():
        if saved["settings"].get(key) != value:
            if key.endswith(" weights"):
                raise ValueError(f"{where} its {key[:-8]} had other weights")
            raise ValueError(f"{where} it was trained with {key}={saved['settings'].get(key)!r}, this call gives "
                             f"{value!r}")
    if not used and run["lr"] != saved.get("lr"):
        raise ValueError(f"{where} its optimizer started with lr={saved.get('lr')!r}, this one has lr={run['lr']!r}; "
                         "build the optimizer as before to resume (the checkpoint carries on its rate and moments), "
                         "or load the model and fit it anew to train on at another rate")


def _read_checkpoint(path, model, opt, callbacks, writer, run=None):
    """A checkpoint read and checked against this call's model, optimizer, callbacks, data
    and settings (ValueError naming the file for any mismatch), before anything changes."""
    from .io import load_training
    saved, state, arrays = load_training(path)
    where = f"{path}: cannot resume from it:"
    if type(saved) is not type(model) or saved.get_config() != model.get_config():
        raise ValueError(f"{where} it holds a {type(saved).__name__} built as {saved.get_config()}, "
                         f"not this {type(model).__name__} ({model.get_config()})")
    if state["optimizer"]["class"] != type(opt).__name__:
        raise ValueError(f"{where} it was trained with {state['optimizer']['class']}, not {type(opt).__name__}")
    kinds = [cb["class"] for cb in state["callbacks"]]
    if kinds != [type(cb).__name__ for cb in callbacks]:
        raise ValueError(f"{where} its callbacks were {kinds}, these are {[type(cb).__name__ for cb in callbacks]}")
    for key, value in model.params.items():
        got = arrays.get(f"params.{key}")
        if got is None or got.shape != value.shape or got.dtype != value.dtype:
            raise ValueError(f"{where} its weights do not fit this model's {key!r} {value.shape}")
    _check_run(where, state.get("run"), run, bool(getattr(opt, "state", None)))
    if writer is not None:
        writer.run = state.get("run") or run     # a resumed run records the first one's start
    return state, arrays


def _apply_checkpoint(resumed, model, opt, rng, history, callbacks, writer):
    """Put the checkpoint's state in place; returns the epoch to go on from."""
    state, arrays = resumed
    for key, value in model.params.items():
        np.copyto(value, arrays[f"params.{key}"])
    opt.lr = state["optimizer"]["lr"]
    opt.state = {}
    for name, slot in state["optimizer"]["slots"].items():
        opt.state[name] = {"step": slot["step"], **{k: arrays[f"opt.{slot['index']}.{k}"].copy()
                                                    for k in slot["arrays"]}}
    rng.bit_generator.state = state["rng"]
    history.loss, history.val_loss = list(state["loss"]), list(state["val_loss"])
    history.logs = {k: list(v) for k, v in state.get("logs", {}).items()}
    for i, (cb, saved) in enumerate(zip(callbacks, state["callbacks"])):
        if hasattr(cb, "restore"):
            cb.restore(saved["values"], {k: arrays[f"cb.{i}.{k}"] for k in saved["arrays"]})
    if writer is not None and writer.best:
        writer.best_value = state["best_value"]
        best = {k[5:]: v for k, v in arrays.items() if k.startswith("best.")}
        writer.best_params = best or None
    history.stopped_early = bool(state["stopped"])
    return len(history.loss) if not state["stopped"] else 1 << 62


def _all_callbacks(callbacks, patience, validation, progress):
    """The user's callbacks (checked) and those ``fit``'s own arguments ask for."""
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise TypeError(f"callbacks must be a list of Callback objects, got {type(callbacks).__name__}") from None
    hooks = {"on_train_begin": "model, epochs", "on_batch_end": "model, batch, n_batches, loss",
             "on_epoch_end": "model, epoch, logs", "on_train_end": "model, history"}
    for i, cb in enumerate(callbacks):
        if not all(callable(getattr(cb, hook, None)) for hook in hooks):
            raise TypeError(f"callbacks[{i}] must be an unrolled.Callback (with {', '.join(hooks)}), "
                            f"got {type(cb).__name__}")
        for hook, args in hooks.items():            # called with these, checked before the first update
            try:
                inspect.signature(getattr(cb, hook)).bind(*args.split(", "))
            except ValueError:                      # (no signature to read: a builtin)
                continue
            except TypeError:
                raise TypeError(f"callbacks[{i}].{hook} ({type(cb).__name__}) must take ({args}), "
                                f"its signature is {inspect.signature(getattr(cb, hook))}") from None
    if patience is not None:
        if validation is None:
            raise ValueError("patience needs validation data: pass validation=(x_val, d_val)")
        callbacks.append(EarlyStopping(patience))
    if progress:
        callbacks.append(ProgressBar())
    return callbacks


def evaluate(model: Any, x: np.ndarray | None, d: np.ndarray, lengths: np.ndarray | None = None, *,
             divergence: Divergence | Callable | str, inputs: dict | None = None) -> float:
    """The divergence of ``model``'s outputs on ``x`` against ``d`` (forward only).

    Parameters
    ----------
    model : block
        Anything with ``forward``.
    x : numpy.ndarray or None
        Inputs (N, T, n_in).
    d : numpy.ndarray
        Targets, as the divergence expects them.
    lengths : numpy.ndarray, optional
        (N,) valid steps of each sequence.
    divergence : callable or str
        ``div(y, d, *, lengths) -> (value, dy)`` or a name (``"mse"``, ...).
    inputs : dict, optional
        Further external inputs of the network, name -> (N, T, width).

    Returns
    -------
    float
        The divergence's value.
    """
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


def _train_batch(model, x, d, lengths, inputs, div, opt, clip, bptt, guard, regularizer=None):
    T = (x if x is not None else next(iter(inputs.values()))).shape[1]
    if bptt is None or bptt >= T:
        return _step(model, x, d, lengths, inputs, None, div, opt, clip, guard, regularizer)[0]
    state, total = None, 0.0
    for s in range(0, T, bptt):
        win = np.clip(lengths - s, 0, bptt)
        if not win.any():
            break
        sl = slice(s, s + bptt)
        loss, state = _step(model, None if x is None else x[:, sl], d[:, sl], win,
                            {k: v[:, sl] for k, v in inputs.items()}, state, _restrict(div, steps=sl), opt, clip,
                            guard, regularizer)
        total += loss
    return total


def _step(model, x, d, lengths, inputs, state, div, opt, clip, guard, regularizer=None):
    """One update; ``guard`` checks the loss and the gradient's norm before it is applied."""
    y, cache = model.forward(x, lengths=lengths, state=state, **inputs)
    value, dy = div(y, d, lengths=lengths)
    value = float(value)
    if not math.isfinite(value):
        guard.fail("loss", value)
    if isinstance(cache, ForwardCache):
        cache.input_grads = False                 # only the parameters' gradients are read here
    grads, _ = model.backward(dy, cache)
    norm2 = getattr(grads, "squared_norm", None)  # (the engine's gradients know it; sum it otherwise)
    if regularizer is not None:                   # the penalty's gradient, per scored step
        scale = div.steps_scored(lengths, y.shape[1]) if hasattr(div, "steps_scored") else float(np.mean(lengths))
        grads = dict(grads)
        for key, g in regularizer.gradient(model.params).items():
            grads[key] = grads[key] + (scale * g).astype(grads[key].dtype, copy=False)
        norm2 = None
    if norm2 is None:
        norm2 = float(sum(np.vdot(g, g) for g in grads.values()))
    if not math.isfinite(norm2):
        guard.fail("gradient", norm2)
    if clip is not None:
        grads, _ = _optim.clip_grad_norm(grads, clip)
    opt.step(model.params, grads)
    guard.updates += 1
    return value, getattr(cache, "state", None)


def _full_batch_step(model, problem, opt, guard, callbacks):
    """One iteration of a full-batch optimizer on all sequences (its logs, ``loss`` = the
    divergence at the weights it accepted)."""
    with backend.linear_algebra_threads(problem.size):
        logs = dict(opt.step_full(problem))
    if not math.isfinite(logs["sse"]):
        guard.fail("loss", logs["sse"])
    guard.updates += 1
    logs["loss"] = logs["sse"]
    for cb in callbacks:
        cb.on_batch_end(model, 0, 1, logs["loss"])
    return logs


def _check_full_batch(opt, div, batch_size, bptt, clip, regularizer):
    """What a full-batch (second-order) optimizer cannot take, refused by name."""
    name = type(opt).__name__
    if not callable(getattr(div, "residuals", None)):
        raise ValueError(f"{name} minimises a sum of squares: divergence must be SquaredError (with or without "
                         f"weights), got {type(div).__name__}")
    for what, value in (("batch_size", batch_size), ("bptt", bptt), ("clip", clip), ("regularizer", regularizer)):
        if value is not None:
            hint = " (use LevenbergMarquardt(bayesian=True) to regularise)" if what == "regularizer" else ""
            raise ValueError(f"{name} takes whole-batch steps on all sequences: {what} does not apply, "
                             f"got {what}={value!r}{hint}")


class _Diverged(Exception):
    """A non-finite loss or gradient met by ``_Guard`` (fit raises it as FloatingPointError)."""


class _Guard:
    """What ``fit`` needs to say why training diverged: the model, optimizer, clip, data,
    where it is (epoch, minibatch) and how many updates it has applied."""

    def __init__(self, model, opt, clip, x, d):
        self.model, self.opt, self.clip, self.x, self.d = model, opt, clip, x, d
        self.updates, self.at = 0, (0, 0)

    def fail(self, what, value):
        epoch, batch = self.at
        where = (f"the validation divergence became {value} after epoch {epoch}" if what == "validation" else
                 f"the {'divergence' if what == 'loss' else 'squared norm of the gradient'} became {value} "
                 f"in epoch {epoch}, minibatch {batch}")
        raise _Diverged(f"{where}; no non-finite update was applied. {self.blame()}")

    def blame(self):
        """What is likely to blame, from what the data, the weights and the recurrences show."""
        scale = max(_largest(self.x), _largest(self.d))
        if self.updates == 0:
            return (f"Before any update: the data reach {scale:.3g} in magnitude (finite, as checked); "
                    "scale x and d to about unit size, or start from smaller weights.")
        weights = max(_largest(p) for p in self.model.params.values())
        radius = _recurrent_radius(self.model)
        lr = getattr(self.opt, "lr", None)
        clip_hint = "" if self.clip is not None else ", clip the gradient (clip=1.0)"
        if radius > 1.0:
            return (f"The recurrence explodes: a recurrent weight matrix has spectral radius {radius:.3g} > 1, "
                    f"so its gradient grows with every step back in time; lower the learning rate{clip_hint}, "
                    "or shorten the window (bptt=).")
        return (f"After {self.updates} updates the weights reach {weights:.3g}: the learning rate {lr} is too large "
                f"for these data (of magnitude up to {scale:.3g}); lower it{clip_hint}.")


def _largest(a):
    a = np.asarray(a) if a is not None else np.zeros(0)
    return float(np.max(np.abs(a))) if a.size and a.dtype.kind == "f" else 0.0


def _recurrent_radius(model):
    """The largest spectral radius of the square weights on delayed self-links (``W[h->h@d]``)."""
    radius = 0.0
    for key, w in model.params.items():
        name = key.rsplit(".", 1)[-1]
        if name.startswith("W[") and "@0]" not in name and w.ndim == 2 and w.shape[0] == w.shape[1]:
            src, dst = name[2:].split("->")[0], name.split("->")[1].split("@")[0]
            if src == dst and np.all(np.isfinite(w)):
                radius = max(radius, float(np.max(np.abs(np.linalg.eigvals(w.astype(np.float64))))))
    return radius


def _restore_best(model, callbacks):
    """Restore early stopping's best weights, if it holds some; says so."""
    for cb in callbacks:
        if isinstance(cb, EarlyStopping) and cb.restore_best and cb.weights is not None:
            for key, value in cb.weights.items():
                np.copyto(model.params[key], value)
            return f" The weights are those of epoch {cb.best_epoch}, the best on the validation data."
    return ""


def _as_batch(value, name):
    """``value`` as an array; a list of sequences of different lengths is an error that
    says how to batch them (NumPy's own message names no remedy)."""
    try:
        return np.asarray(value)
    except ValueError:
        raise ValueError(f"{name} holds sequences of different lengths (or shapes); pad them into one "
                         f"(N, T, ...) array and pass their lengths: x, lengths = "
                         f"unrolled.datasets.pad_sequences(list_of_sequences), fit(..., lengths=lengths)") from None


def _check_data(x, d, lengths, inputs, name):
    inputs = dict(inputs or {})
    if x is not None:
        x = _as_batch(x, name)
        if x.ndim != 3:
            raise ValueError(f"expected {name} of shape (N, T, n_in), got {x.shape}")
    first = x if x is not None else next(iter(inputs.values()), None)
    if first is None:
        raise ValueError("fit needs input sequences: x or inputs=")
    N, T = np.shape(first)[:2]
    if N == 0:
        raise ValueError(f"{name} holds no sequence (N = 0): fit needs at least one")
    if d is None:
        raise ValueError(f"fit needs targets: expected {'d' if name == 'x' else 'd_val'} with N={N} sequences on "
                         "axis 0, got None")
    d = _as_batch(d, "d" if name == "x" else "d_val")
    if d.shape[:1] != (N,):
        raise ValueError(f"expected targets d with N={N} sequences on axis 0 like x, got shape {d.shape}")
    for key, value in inputs.items():
        inputs[key] = np.asarray(value)
        if inputs[key].shape[:2] != (N, T):
            raise ValueError(f"input {key!r} must have (N, T) = {(N, T)} like x, got {inputs[key].shape}")
    lengths = check_lengths(lengths, N, T)
    target = "d" if name == "x" else "d_val"
    for arr, what, per_step in [(x, name, True), (d, target, d.ndim >= 2 and d.shape[1] == T)] + \
            [(v, f"input {k!r}", True) for k, v in inputs.items()]:
        message = None if arr is None else first_nonfinite(arr, what, lengths if per_step else None)
        if message:
            raise ValueError(f"{message}; fit trains on finite data only (padded steps may hold anything)")
    return x, d, lengths, inputs


def _check_against_model(model, x, d, lengths, inputs, div, bptt, check_output):
    """The data against the model before any update: one forward pass over the first
    sequence (the inputs' shapes), then the divergence on every target with outputs of
    the right shape (labels in range, target shapes); and the divergence against the
    model's output activation."""
    expected = getattr(div, "activation", None) or getattr(getattr(div, "div", None), "activation", None)
    actual = output_activation(model, default=None)
    if check_output and expected and actual and actual != expected:
        raise ValueError(f"{type(div).__name__} expects the outputs of a {expected} layer, but this model's output "
                         f"activation is {actual!r}\n- help: build the model with output={expected!r}, or pass "
                         f"check_output=False if its outputs are what {type(div).__name__} expects by construction")
    _check_width(model, x, "x")
    window = slice(None) if bptt is None else slice(0, bptt)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        y, _ = model.forward(None if x is None else x[:1, window],
                             lengths=np.minimum(lengths[:1], bptt or lengths[0]),
                             **{k: v[:1, window] for k, v in inputs.items()})
    T = y.shape[1] if bptt is None else (x if x is not None else next(iter(inputs.values()))).shape[1]
    if bptt is not None and (d.ndim < 2 or d.shape[1] != T):
        raise ValueError(f"truncated BPTT cuts the targets in time: expected d with T={T} steps "
                         f"on axis 1, got shape {d.shape}")
    probe = np.full((len(lengths), T, y.shape[2]), 1.0 / max(y.shape[2], 1), dtype=y.dtype)
    div(probe, d, lengths=lengths)


def _check_width(model, x, name):
    n_in = getattr(model, "n_in", None)
    if x is not None and isinstance(n_in, (int, np.integer)) and x.shape[2] != n_in:
        raise ValueError(f"expected {name} of shape (N, T, {n_in}) for this model (n_in={n_in}), got {x.shape}")


def _check_validation(model, validation, div):
    if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
        raise ValueError("validation must be (x_val, d_val) or (x_val, d_val, lengths_val)")
    xv, dv = validation[0], validation[1]
    lv = validation[2] if len(validation) == 3 else None
    xv, dv, lv, _ = _check_data(xv, dv, lv, _with_fit_inputs(model, xv, dv, None), "x_val")
    _check_width(model, xv, "x_val")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        value = evaluate(model, xv, dv, lv, divergence=div, inputs=_with_fit_inputs(model, xv, dv, None))
    if not math.isfinite(value):
        raise ValueError(f"the validation divergence of the untrained model is {value}: the validation data "
                         "are finite, so the divergence overflows on them; scale x_val and d_val to about unit size")
    return xv, dv, lv
