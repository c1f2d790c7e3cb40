"""Ensembles: several models of one task, trained apart from different seeds, averaged.

A small series leaves a network's weights poorly determined: nets trained from different
initial weights fit the data alike and disagree where it says little. Their average
forecasts better than a typical member, and their spread says where they disagree.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .blocks import Composite, PredictFromForward
from .registry import block_config, block_from_config, register_model

if TYPE_CHECKING:
    from .train import History

__all__ = ["Ensemble", "EnsembleCache", "fit_many"]


class EnsembleCache:
    """The members' caches; ``state`` maps a member's name to its final state."""

    def __init__(self, caches: list, names: Sequence[str]) -> None:
        self.caches = caches
        self.state = {name: getattr(c, "state", {}) for name, c in zip(names, caches)}


@register_model
class Ensemble(Composite, PredictFromForward):
    """The mean of M models' outputs: ``y(t) = (1/M) sum_m y_m(t)``.

    Parameters
    ----------
    models : list
        Models (or blocks) of the same inputs, outputs and dtype; build them with
        different seeds (``Ensemble.from_seeds``).

    Notes
    -----
    ``params`` are the members', named ``<m>.<name>`` (m = 0 .. M-1), so an ensemble
    saves and loads as one file. ``forward`` / ``backward`` are those of the mean (dy
    reaches each member divided by M); ``predict(..., return_spread=True)`` and
    ``forecast`` also give the members' spread. Training an ensemble trains each member
    on its own divergence (``fit(ensemble, ...)``, ``Ensemble.fit``), in parallel
    processes with ``n_jobs``.
    """

    def __init__(self, models: Iterable[Any]) -> None:
        models = list(models)
        if not models:
            raise ValueError("an Ensemble needs at least one model")
        for i, m in enumerate(models):
            if not all(hasattr(m, a) for a in ("params", "forward", "backward")):
                raise TypeError(f"models[{i}] must be a model (params, forward, backward), got {type(m).__name__}")
        first = models[0]
        for i, m in enumerate(models[1:], start=1):
            for attr in ("n_in", "n_out"):
                if getattr(m, attr) != getattr(first, attr):
                    raise ValueError(f"models[{i}] has {attr} = {getattr(m, attr)}, models[0] has "
                                     f"{getattr(first, attr)}: an ensemble averages models of one task")
            if np.dtype(m.dtype) != np.dtype(first.dtype):
                raise TypeError(f"models[{i}] is {np.dtype(m.dtype)}, models[0] {np.dtype(first.dtype)}")
        self.members = models

    @classmethod
    def from_seeds(cls, make: Callable[[int], Any], seeds: Iterable[int]) -> Ensemble:
        """``Ensemble([make(seed) for seed in seeds])``, e.g.
        ``Ensemble.from_seeds(lambda s: NARX(0, 1, input_delays=None, output_delays=12, seed=s), range(5))``.

        Parameters
        ----------
        make : callable
            ``make(seed) -> model``.
        seeds : iterable of int
            One seed a member.

        Returns
        -------
        Ensemble
        """
        return cls([make(seed) for seed in seeds])

    @property
    def children(self) -> dict:
        """dict name -> child block, in order: what ``params`` prefixes."""
        return {str(i): m for i, m in enumerate(self.members)}

    @property
    def dtype(self) -> type[np.floating]:
        """The floating dtype of the parameters and outputs (numpy.float32 or numpy.float64)."""
        return self.members[0].dtype

    @property
    def n_in(self) -> int:
        """Inputs per step, n_in."""
        return self.members[0].n_in

    @property
    def n_out(self) -> int:
        """Outputs per step, n_out."""
        return self.members[0].n_out

    def __len__(self):
        return len(self.members)

    def get_config(self) -> dict:
        """The constructor's arguments, JSON-friendly, children as block specs.

        What ``unrolled.save`` stores and ``from_config`` rebuilds from.

        Returns
        -------
        dict
        """
        return {"models": [block_config(m) for m in self.members]}

    @classmethod
    def from_config(cls, config: dict) -> Ensemble:
        """A new Ensemble from what ``get_config`` returned (fresh weights: ``load`` copies the
        saved ones in).

        Parameters
        ----------
        config : dict
            A dict as ``get_config`` returns it.

        Returns
        -------
        Ensemble
        """
        return cls([block_from_config(spec) for spec in config["models"]])

    def __repr__(self):
        return f"Ensemble({len(self.members)} x {type(self.members[0]).__name__})"

    # -- computation ---------------------------------------------------------
    def forward(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None, state: dict | None = None,
                **inputs) -> tuple[np.ndarray, EnsembleCache]:
        """``(y, cache)``: the members' mean output; ``state`` maps a member's name ("0",
        "1", ...) to its state.

        Parameters
        ----------
        x : numpy.ndarray
            (N, T, n_in) inputs.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence (padding at the end).
        state : dict, optional
            member name -> its state.
        **inputs
            Further external inputs, name -> (N, T, width).

        Returns
        -------
        y : numpy.ndarray
            (N, T, n_out) outputs, zero at padded steps.
        cache : object
            What ``backward`` needs; ``cache.state`` the final state.
        """
        ys, caches = self._run(x, lengths, state, inputs)
        return np.mean(ys, axis=0).astype(self.dtype, copy=False), EnsembleCache(caches, list(self.children))

    def _run(self, x, lengths, state, inputs):
        state = state or {}
        ys, caches = [], []
        for name, m in self.children.items():
            y, cache = m.forward(x, lengths=lengths, state=state.get(name), **inputs)
            ys.append(y)
            caches.append(cache)
        return ys, caches

    def backward(self, dy: np.ndarray, cache: EnsembleCache) -> tuple[dict, np.ndarray | None]:
        """``(grads, dx)`` of the mean: each member's BPTT with ``dy / M``.

        Parameters
        ----------
        dy : numpy.ndarray
            (N, T, n_out) dDIV/dy, as a divergence gives it.
        cache : object
            What ``forward`` returned with the outputs.

        Returns
        -------
        grads : dict of str to numpy.ndarray
            The gradient of every parameter, the keys of ``params``.
        dx : numpy.ndarray
            (N, T, n_in) dDIV/dx.
        """
        M = len(self.members)
        dy = np.asarray(dy) / M
        grads, dx = {}, None
        for name, m, c in zip(self.children, self.members, cache.caches):
            g, d = m.backward(dy.astype(m.dtype, copy=False), c)
            grads.update({f"{name}.{k}": v for k, v in g.items()})
            dx = d if dx is None or d is None else dx + d
        return grads, dx

    def predict(self, x: np.ndarray | None = None, *, lengths: np.ndarray | None = None,
                state: dict | None = None, return_state: bool = False, return_spread: bool = False,
                **inputs) -> np.ndarray | tuple:
        """The mean output (N, T, n_out); with ``return_spread`` also the members' standard
        deviation at every step, ``(mean, spread)`` (and the state with ``return_state``).

        Parameters
        ----------
        x : numpy.ndarray
            (N, T, n_in) inputs.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence (padding at the end).
        state : dict, optional
            member name -> its state.
        return_state : bool
            Return the members' final states too.
        return_spread : bool
            Return the members' standard deviation too.
        **inputs
            Further external inputs, name -> (N, T, width).

        Returns
        -------
        numpy.ndarray or tuple
            The mean (N, T, n_out); ``(mean, spread)``, ``(mean, state)`` or
            ``(mean, spread, state)`` as asked.
        """
        self._check_finite(x, lengths, inputs)
        ys, caches = self._run(x, lengths, state, inputs)
        mean = np.mean(ys, axis=0).astype(self.dtype, copy=False)
        out = (mean, np.std(ys, axis=0).astype(self.dtype, copy=False)) if return_spread else (mean,)
        if return_state:
            out += (EnsembleCache(caches, list(self.children)).state,)
        return out if len(out) > 1 else out[0]

    def forecast(self, *args, return_spread: bool = False,
                 **kwargs) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The members' closed-loop forecasts (``forecast`` of each, e.g. a NARX's), averaged;
        with ``return_spread`` also their standard deviation: ``(mean, spread)``.

        Parameters
        ----------
        *args, **kwargs
            What each member's ``forecast`` takes (``NARX.forecast``).
        return_spread : bool
            Return the members' standard deviation too.

        Returns
        -------
        numpy.ndarray or tuple
            The mean forecast; with ``return_spread``, ``(mean, spread)``.
        """
        if not all(hasattr(m, "forecast") for m in self.members):
            raise TypeError(f"forecast needs members that forecast (NARX), got {type(self.members[0]).__name__}")
        ys = np.stack([m.forecast(*args, **kwargs) for m in self.members])
        mean = ys.mean(axis=0).astype(self.dtype, copy=False)
        return (mean, ys.std(axis=0).astype(self.dtype, copy=False)) if return_spread else mean

    # -- what the members are (an open-loop NARX's teacher, its closed-loop twin) ----
    @property
    def fit_inputs(self) -> Callable[[np.ndarray | None, np.ndarray], dict]:
        """The members' ``fit_inputs`` (a NARX in open loop reads its targets as the teacher)."""
        hook = getattr(self.members[0], "fit_inputs", None)
        if hook is None:
            raise AttributeError(f"the members ({type(self.members[0]).__name__}) read no further inputs in training")
        return hook

    @property
    def closed_loop(self) -> Callable[[], Ensemble]:
        """``closed_loop()``: the ensemble of the members' closed-loop twins (NARX), sharing their weights."""
        if not hasattr(self.members[0], "closed_loop"):
            raise AttributeError(f"the members ({type(self.members[0]).__name__}) have no closed loop")
        return lambda: Ensemble([m.closed_loop() for m in self.members])

    # -- training --------------------------------------------------------------
    def fit(self, x: np.ndarray | None, d: np.ndarray, *, seed: int | None = None, n_jobs: int | None = None,
            **fit_kw) -> list[History]:
        """Train every member on ``(x, d)`` with ``unrolled.fit(member, x, d, **fit_kw)``;
        member m shuffles its minibatches with its own seed, drawn from ``(seed, m)``, and
        gets its own copy of the optimizer and callbacks (none shares their state).

        ``n_jobs``: None or 1 trains them one after the other here; more (or -1: every
        CPU) hands them to joblib, in processes of its default backend, so that
        ``joblib.parallel_config(backend="dask")`` (or Ray's) carries them to a cluster
        unchanged. Each member comes back with its trained weights, the same numbers as
        trained here. Returns the members' ``History`` objects, in order.

        Parameters
        ----------
        x : numpy.ndarray or None
            (N, T, n_in) inputs.
        d : numpy.ndarray
            Targets.
        seed : int, optional
            The seed the members' seeds are drawn from.
        n_jobs : int, optional
            Processes (None or 1: here; -1: every CPU).
        **fit_kw
            What ``unrolled.fit`` takes (``divergence=``, ``optimizer=``, ``epochs=``, ...).

        Returns
        -------
        list of History
        """
        seeds = [None if seed is None else int(np.random.SeedSequence([int(seed), m]).generate_state(1)[0])
                 for m in range(len(self.members))]
        M = len(self.members)
        return fit_many(self.members, [x] * M, [d] * M, seeds=seeds, n_jobs=n_jobs, **fit_kw)


def fit_many(models: Sequence[Any], xs: Sequence[np.ndarray | None], ds: Sequence[np.ndarray], *,
             seeds: Sequence[int | None] | None = None, n_jobs: int | None = None, **fit_kw) -> list[History]:
    """``[unrolled.fit(models[i], xs[i], ds[i], seed=seeds[i], **fit_kw) for i ...]``, in
    parallel with ``n_jobs``: many models, each on its own data (one model a series, a
    sweep, restarts from different seeds), trained in place; returns their histories.

    Each fit gets its own copy of ``fit_kw`` (optimizer, callbacks: no state is shared).
    ``n_jobs`` None or 1: one after the other here; more (-1: every CPU): through joblib's
    default backend (processes), so ``joblib.parallel_config(backend="dask")`` or Ray's
    carries them to a cluster unchanged. A model travels as its config and weights and
    comes back trained, with the numbers it would have had here; the compiled kernels are
    cached on disk, so a worker compiles nothing that its machine compiled before.

    Parameters
    ----------
    models : list
        The models, trained in place.
    xs, ds : list
        One input array (or None) and one target array a model.
    seeds : list of int, optional
        One seed a model.
    n_jobs : int, optional
        Processes (None or 1: here; -1: every CPU).
    **fit_kw
        What ``unrolled.fit`` takes.

    Returns
    -------
    list of History
    """
    from .train import fit
    models = list(models)
    xs, ds = list(xs), list(ds)
    if not len(xs) == len(ds) == len(models):
        raise ValueError(f"expected one x and one d for each of the {len(models)} models, "
                         f"got {len(xs)} and {len(ds)}")
    seeds = [None] * len(models) if seeds is None else list(seeds)
    if len(seeds) != len(models):
        raise ValueError(f"expected one seed for each of the {len(models)} models, got {len(seeds)}")
    fit_kw = dict(fit_kw, progress=fit_kw.get("progress", False))
    if n_jobs in (None, 1):
        return [fit(m, x, d, seed=s, **copy.deepcopy(fit_kw)) for m, x, d, s in zip(models, xs, ds, seeds)]
    try:
        import joblib
    except ImportError:
        raise ImportError("n_jobs needs joblib: pip install 'unrolled[parallel]' (or joblib)") from None
    jobs = (joblib.delayed(_fit_member)(block_config(m), m.params, x, d, s, fit_kw)
            for m, x, d, s in zip(models, xs, ds, seeds))
    histories = []
    for m, (params, history) in zip(models, joblib.Parallel(n_jobs=n_jobs)(jobs)):
        for k, v in params.items():
            np.copyto(m.params[k], v)
        histories.append(history)
    return histories


def _fit_member(spec, params, x, d, seed, fit_kw):
    """One member rebuilt from its config and weights, trained (in a worker): ``(params, history)``."""
    from .train import fit
    model = block_from_config(spec)
    for k, v in params.items():
        np.copyto(model.params[k], v)
    # (a copy: joblib sends one batch of tasks to a worker in one piece, and its tasks would
    # share the optimizer, its moments carried from one model to the next)
    history = fit(model, x, d, seed=seed, **copy.deepcopy(fit_kw))
    return model.params, history
