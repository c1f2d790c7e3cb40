"""Forecasting a user's own series: ``Forecaster.fit(y, X)``, then ``predict(fh, X)``.

The interface forecasters know from statsmodels, sktime, skforecast and darts, over the
lecture's networks: y is a pandas Series or DataFrame (each column a series) or a NumPy
array (T,) or (T, n_series); X the exogenous inputs aligned with y. With a pandas
DatetimeIndex or PeriodIndex the forecasts come back indexed by the future dates; with
NumPy in, NumPy out (``future_index`` gives the labels).

What a fit does, in order (every step stored, so a saved forecaster is whole):

1. the time axis is checked (:mod:`unrolled.timeindex`): duplicated, out-of-order or
   irregular dates are errors naming them; missing dates and bad values (NaN, inf) are
   errors too, unless ``fill="interpolate"`` fills them linearly (``notes_`` says which);
2. differencing: ``d`` regular differences and ``D`` seasonal ones of lag ``period``,
   w(t) = (1 - B)^d (1 - B^period)^D y(t), undone on the forecasts;
3. scaling: w and X standardised with the mean and deviation of the data fitted;
4. the network: the model reads the series' past and X(t) and is trained to give w(t)
   one step ahead. A NARX feeds its output back through ``lags`` output taps (delays
   1 .. lags) and reads X at delays 0 .. lags-1; the other models read x(t) = [w(t-1), X(t)].
   ``training="bayesian"`` (the default): an ensemble of nets, each trained by
   Levenberg-Marquardt with Bayesian regularisation (no validation split needed);
   ``"adam"``: Adam with early stopping on the last 15% of the steps.
5. a forecast runs the nets closed loop from the end of the history, each forecast fed
   back as the next step's past value; the ensemble's mean is the point forecast.

Intervals (``predict_interval``) come from residual bootstrapping of the closed loop:
each path adds to every step's forecast a one-step residual of the fit drawn at random
(in the scaled, differenced space) and feeds that value back; the paths are spread over
the ensemble's members, so the band holds the noise and the nets' disagreement.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ._checks import check_delay, check_hidden, check_seed
from .divergences import SquaredError
from .ensemble import Ensemble, fit_many
from .models import NARX, RNN, TDNN, Elman, Jordan
from .optim import Adam, LevenbergMarquardt
from .registry import block_config, block_from_config, register_model
from .timeindex import DateIndex, StepIndex, index_from_config, steps_of, time_index
from .train import fit

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Forecaster", "Backtest", "backtest", "train_one_step", "ar_fit", "ar_iterate", "TRAININGS", "FORECASTERS",
           "TRAINING_DEFAULTS", "ENSEMBLE"]

#: how a forecaster is trained (``training=``)
TRAININGS = ("bayesian", "adam")

#: name -> (label, make(n_in, hidden, taps, seed, linear, dtype)) of the one-step forecasters.
#: A NARX feeds the series back through ``taps`` output delays and reads the exogenous
#: inputs (if any) at delays 0 .. taps-1; the others read the series (and exogenous inputs).
FORECASTERS = {
    "narx": ("NARX", lambda n, h, k, s, lin, dt: NARX(
        n, 1, input_delays=(k - 1 if n else []), output_delays=k, hidden=h, feedback="open", linear=lin, dtype=dt,
        seed=s)),
    "tdnn": ("TDNN", lambda n, h, k, s, lin, dt: TDNN(n, 1, width=k - 1, hidden=h, linear=lin, dtype=dt, seed=s)),
    "rnn": ("RNN", lambda n, h, k, s, lin, dt: RNN(n, 1, hidden=h, dtype=dt, seed=s)),
    "elman": ("Elman", lambda n, h, k, s, lin, dt: Elman(n, 1, hidden=h, dtype=dt, seed=s)),
    "jordan": ("Jordan", lambda n, h, k, s, lin, dt: Jordan(n, 1, hidden=h, dtype=dt, seed=s)),
}
#: the defaults of each training: (hidden, taps, linear path).
#: "bayesian": on the yearly sunspots the Bayesian evidence (computed on 1700-1920 alone)
#: was highest for 5 units, 6 taps and the linear path, over 1-5 units, 6/9/12 taps, with
#: and without it (benchmarks/sunspots_evidence.py); "adam": chosen on 1901-1920.
TRAINING_DEFAULTS = {"bayesian": ((5,), 6, True), "adam": ((16,), 8, False)}
#: nets averaged with ``training="bayesian"`` (member k of seed s is built with seed
#: 100 s + k): one net's forecasts of the sunspots on 1956-1979 vary with its seed
#: (ARV 0.31-0.42 over seeds 0-4), an ensemble's much less (0.33-0.35)
ENSEMBLE = 5
_SCALERS = ("standard", "none")
_STRATEGIES = ("local", "global")
_VALIDATION = 0.15        # the tail Adam's early stopping watches
#: a fitted Forecaster's attributes -> where its fitted state holds them
_FITTED_ATTRIBUTES = {"names_": "names", "exog_names_": "exog_names", "axis_": "axis", "lags_": "lags",
                      "period_": "period", "notes_": "notes", "models_": "models", "history_": "values"}


# ----------------------------------------------------------------- training one step ahead
def _training_kw(training, train_w, val_w, x, d, *, epochs, lr, patience, weight_decay, progress):
    """fit's keywords for ``training`` (see :func:`train_one_step`)."""
    validation = {} if val_w is None else dict(validation=(x, d), validation_divergence=SquaredError(weights=val_w))
    if training == "bayesian":
        return dict(divergence=SquaredError(weights=train_w), optimizer=LevenbergMarquardt(bayesian=True),
                    epochs=300 if epochs is None else epochs, progress=progress, **validation)
    return dict(divergence=SquaredError(weights=train_w), optimizer=Adam(lr, weight_decay=weight_decay),
                epochs=2000 if epochs is None else epochs, batch_size=1, patience=patience, progress=progress,
                **validation)


def train_one_step(model, x, d, train_w, val_w, *, training="bayesian", epochs=None, lr=0.01, patience=300,
                   seed=0, progress=True, weight_decay=0.0):
    """Fit ``model`` to one-step targets ``d`` (1, T, 1) with the steps weighted ``train_w``;
    the steps weighted ``val_w`` are held out. Returns fit's ``History``.

    ``training="bayesian"``: Levenberg-Marquardt with Bayesian regularisation (``trainbr``)
    for ``epochs`` iterations (default 300), on the fit steps alone: the prior, not the
    held-out steps, keeps the net small, and the held-out steps are only scored. The first
    targets, which a model with delayed taps reads from a history of zeros (as many as its
    largest tap), are left out of the fit.
    ``"adam"``: Adam (with an optional L2 ``weight_decay``) for up to ``epochs`` epochs
    (default 2000), the held-out steps picking the stopping epoch (early stopping with
    ``patience``, best weights restored). An :class:`~unrolled.Ensemble` is trained member
    by member, and the list of their histories comes back.
    """
    if training not in TRAININGS:
        raise ValueError(f"training must be one of {TRAININGS}, got {training!r}")
    if isinstance(model, Ensemble):          # each member on its own: a list of histories
        return [train_one_step(m, x, d, train_w, val_w, training=training, epochs=epochs, lr=lr, patience=patience,
                               seed=seed, progress=progress, weight_decay=weight_decay) for m in model.members]
    if training == "bayesian":
        train_w = np.array(train_w, dtype=float)
        train_w[:_warm_up(model)] = 0.0
    kw = _training_kw(training, train_w, val_w, x, d, epochs=epochs, lr=lr, patience=patience,
                      weight_decay=weight_decay, progress=progress)
    return fit(model, x, d, seed=seed, **kw)


def _warm_up(model):
    """The first steps a model reads partly from a history of zeros: its largest tap."""
    taps = list(getattr(model, "output_delays", None) or []) + list(getattr(model, "input_delays", None) or [])
    width = getattr(model, "width", None)
    return max(taps + ([width] if width is not None else []), default=0)


# ----------------------------------------------------------------- what the user gives
def _is_pandas(obj):
    return type(obj).__module__.split(".")[0] == "pandas"


def _numeric(values, name, what):
    """``values`` as float64; TypeError naming the column (and its first cell that is no
    number) unless they are numbers."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu":
        bad = ""
        if arr.dtype.kind == "O":
            for i, v in enumerate(arr):
                if isinstance(v, str) or not isinstance(v, numbers.Real):
                    bad = (f" (row {i} holds {v!r}; pd.to_numeric(column, errors='coerce') makes such cells "
                           "missing, which fill='interpolate' fills)")
                    break
        raise TypeError(f"{what} column {name!r} must hold numbers, got dtype {arr.dtype}{bad}")
    return arr.astype(np.float64)


def _table(obj, what):
    """``(values (T, k), names, pandas index or None, one_column)`` of a Series, DataFrame or array."""
    if _is_pandas(obj):
        kind = type(obj).__name__
        if len(obj) == 0:
            raise ValueError(f"{what} is empty: expected a series of values")
        if kind == "Series":
            name = "y" if obj.name is None and what == "y" else ("x0" if obj.name is None else str(obj.name))
            return _numeric(obj.to_numpy(), name, what)[:, None], [name], obj.index, True
        if kind == "DataFrame":
            if obj.shape[1] == 0:
                raise ValueError(f"{what} has no columns")
            cols = [_numeric(obj[c].to_numpy(), str(c), what) for c in obj.columns]
            return np.stack(cols, axis=1), [str(c) for c in obj.columns], obj.index, False
        raise TypeError(f"{what} must be a pandas Series or DataFrame or a NumPy array, got pandas {kind}")
    if isinstance(obj, (str, bytes, dict)) or not hasattr(obj, "__len__") and not isinstance(obj, np.ndarray):
        raise TypeError(f"{what} must be a pandas Series or DataFrame or a NumPy array, got {type(obj).__name__}")
    try:
        arr = np.asarray(obj)
    except ValueError as exc:
        if "inhomogeneous" not in str(exc):
            raise
        raise ValueError(f"expected {what} of shape (T,) or (T, columns), got rows of different lengths (a ragged "
                         "list); series of different lengths take one Forecaster each") from None
    if arr.size == 0:
        raise ValueError(f"{what} is empty: expected a series of values")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{what} must hold numbers, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"expected {what} of shape (T,) or (T, columns), got {arr.shape}")
    one = arr.ndim == 1
    arr = arr.astype(np.float64).reshape(len(arr), -1)
    prefix = "y" if what == "y" else "x"
    names = ["y"] if what == "y" and one else [f"{prefix}{j}" for j in range(arr.shape[1])]
    return arr, names, None, one


def _fill(values, names, axis, fill, what, notes, before=None):
    """``values`` with their NaN and inf cells filled linearly (``fill="interpolate"``), else
    ValueError naming the first few by date and column (``axis``: the rows' own axis).
    ``before``: finite rows that precede them (``update``: the history), which the
    interpolation reads too."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    rows, cols = np.nonzero(bad)
    labels = axis.text(axis.labels(rows[:5]))
    where = ", ".join(f"{names[c]} at {lab}" for c, lab in zip(cols[:5], labels))
    if fill is None:
        raise ValueError(f"{what} has {len(rows)} missing or non-finite value{'s' if len(rows) > 1 else ''} "
                         f"({where}{', ...' if len(rows) > 5 else ''}); pass fill='interpolate' to fill them")
    k = 0 if before is None else len(before)
    full = values.copy() if before is None else np.concatenate([before, values])
    bad = np.concatenate([np.zeros((k, values.shape[1]), bool), bad])
    for j in range(full.shape[1]):
        good = np.flatnonzero(~bad[:, j])
        if len(good) < 2:
            raise ValueError(f"{what} column {names[j]!r} has {len(good)} finite values: too few to interpolate")
        if bad[:, j].any():
            full[bad[:, j], j] = np.interp(np.flatnonzero(bad[:, j]), good, full[good, j])
    values = full[k:]
    notes.append(f"filled {len(rows)} value{'s' if len(rows) > 1 else ''} of {what} by linear interpolation "
                 f"({where}{', ...' if len(rows) > 5 else ''})")
    return values


def _read(obj, what, *, index=None, fill=None, notes=None):
    """``(values (T, k), names, axis, one_column)``: the table on its regular axis."""
    values, names, pidx, one = _table(obj, what)
    notes = [] if notes is None else notes
    if pidx is not None:
        if index is not None:
            raise ValueError(f"{what} is a pandas object with its own index: index= is for NumPy arrays")
        axis, missing = time_index(pidx, what)
        if len(missing):
            labels = axis.text(axis.labels(missing[:5]))
            if fill is None:
                raise ValueError(f"{what} lacks {len(missing)} date{'s' if len(missing) > 1 else ''} of its "
                                 f"regular grid ({', '.join(labels)}{', ...' if len(missing) > 5 else ''}); "
                                 "pass fill='interpolate' to fill them")
            full = np.full((axis.n, values.shape[1]), np.nan)
            full[np.setdiff1d(np.arange(axis.n), missing)] = values
            values = full
    elif index is None:
        axis = StepIndex(0, 1, len(values))
    else:
        ix = np.asarray(index)
        if len(ix) != len(values):
            raise ValueError(f"expected index= of {len(values)} labels, one per row of {what}, got {len(ix)}")
        if ix.dtype.kind == "M":
            axis = DateIndex.from_dates(ix)
        elif ix.dtype.kind in "iu":
            axis = steps_of(ix, what)
        else:
            raise TypeError(f"index= must be numpy datetime64 dates or integers, got dtype {ix.dtype}")
    return _fill(values, names, axis, fill, what, notes), names, axis, one


def _given_names(given, read, obj, what):
    """The column names of ``obj``: ``given`` (for a NumPy array) or those ``read`` from it."""
    if given is None:
        return read
    if _is_pandas(obj):
        raise ValueError(f"{what} is a pandas object that names its own columns: names are for NumPy arrays")
    given = [str(n) for n in given]
    if len(given) != len(read):
        raise ValueError(f"expected {len(read)} names, one per column of {what}, got {len(given)}")
    return given


def _same_labels(labels, expected):
    """Whether ``labels`` (a pandas index, datetime64 or integers) are the ``expected``
    labels of an axis's next steps."""
    if len(labels) != len(expected):
        return False
    if _is_pandas(labels) or _is_pandas(expected):
        import pandas as pd

        try:
            return bool(pd.Index(labels).equals(pd.Index(expected)))
        except (TypeError, ValueError):
            return False
    labels, expected = np.asarray(labels), np.asarray(expected)
    if (labels.dtype.kind == "M") != (expected.dtype.kind == "M"):
        return False
    return bool(np.all(labels == expected))


# ----------------------------------------------------------------- differencing
def _difference(values, lags):
    """``(w, levels)``: ``values`` (T, S) differenced at each lag in turn; ``levels[i]`` the
    series before the i-th difference (what undoing it needs)."""
    levels, w = [], values
    for lag in lags:
        if len(w) <= lag:
            raise ValueError(f"differencing at lag {lag} needs more than {lag} values, got {len(w)}")
        levels.append(w)
        w = w[lag:] - w[:-lag]
    return w, levels


def _integrate(future, levels, lags):
    """Undo :func:`_difference` on ``future`` (..., H, S) values that follow the history."""
    for lag, level in zip(reversed(lags), reversed(levels)):
        hist, out = level[-lag:], np.empty_like(future)
        for h in range(future.shape[-2]):
            out[..., h, :] = future[..., h, :] + (hist[h] if h < lag else out[..., h - lag, :])
        future = out
    return future


# ----------------------------------------------------------------- the nets' passes
def _inputs(member, z, x):
    """The sequence a member reads: a NARX X(t) (or None); the others [w(t-1), X(t)]."""
    if isinstance(member, NARX):
        return None if x is None else x.astype(member.dtype)
    past = np.concatenate([np.zeros_like(z[:, :1]), z[:, :-1]], axis=1)
    return (past if x is None else np.concatenate([past, x], axis=2)).astype(member.dtype)


def _open(narx):
    """The NARX in open loop (teacher-forced): itself where it is built so."""
    return narx if narx.feedback == "open" else narx.open_loop()


def _one_step(member, z, x):
    """The member's one-step forecasts (N, T) of w(t) from the true past (open loop)."""
    u = _inputs(member, z, x)
    if isinstance(member, NARX):
        return _open(member).predict(u, teacher=z.astype(member.dtype))[:, :, 0]
    return member.predict(u)[:, :, 0]


def _tile(state, paths):
    if isinstance(state, dict):
        return {k: _tile(v, paths) for k, v in state.items()}
    return np.concatenate([state] * paths) if isinstance(state, np.ndarray) else state


def _closed_loop(member, z, x, x_future, horizon, noise=None):
    """Forecasts (P, N, horizon) of w run closed loop past the history ``z`` (N, T, 1),
    ``x`` (N, T, k) or None; ``noise`` (P, N, horizon) is added to each step's value before
    it is fed back (None: one noise-free path)."""
    N = z.shape[0]
    if noise is None and isinstance(member, NARX):     # no noise: the engine runs the whole horizon in one pass
        xf = None if x_future is None else x_future.astype(member.dtype)
        return member.forecast(_inputs(member, z, x), z.astype(member.dtype), horizon, x_future=xf)[None, :, :, 0]
    P = 1 if noise is None else noise.shape[0]
    xf = None if x_future is None else np.concatenate([x_future] * P).astype(member.dtype)
    out = np.empty((P * N, horizon))
    if isinstance(member, NARX):
        _, cache = _open(member).forward(_inputs(member, z, x), teacher=z.astype(member.dtype))
        state, closed = _tile(cache.state, P), member.closed_loop()
        for h in range(horizon):
            step_x = None if xf is None else xf[:, h:h + 1]
            y, c = closed.forward(step_x, state=state, steps=1 if step_x is None else None)
            value = y[:, 0, 0] + (0 if noise is None else noise[:, :, h].ravel())
            state = dict(c.state)
            state["y"] = state["y"].copy()
            state["y"][:, -1, 0] = value
            out[:, h] = value
        return out.reshape(P, N, horizon)
    _, state = member.predict(_inputs(member, z, x), return_state=True)
    state = _tile(state, P)
    prev = np.concatenate([z[:, -1, 0]] * P)
    for h in range(horizon):
        u = prev[:, None, None]
        if xf is not None:
            u = np.concatenate([u, xf[:, h:h + 1]], axis=2)
        y, state = member.predict(u.astype(member.dtype), state=state, return_state=True)
        prev = y[:, 0, 0] + (0 if noise is None else noise[:, :, h].ravel())
        out[:, h] = prev
    return out.reshape(P, N, horizon)


def _horizon(fh):
    """The steps ahead (1-based), in the order asked, that ``fh`` asks for: an int H (1 .. H) or a list."""
    if isinstance(fh, numbers.Integral) and not isinstance(fh, bool):
        if fh < 1:
            raise ValueError(f"fh must be a horizon >= 1 or a list of steps ahead >= 1, got {fh}")
        return np.arange(1, int(fh) + 1)
    try:
        steps = np.asarray(list(fh))
    except TypeError:
        raise TypeError(f"fh must be an int horizon or a list of steps ahead, got {fh!r}") from None
    if steps.size == 0 or steps.dtype.kind not in "iu" or np.any(steps < 1):
        raise ValueError(f"fh must list steps ahead, integers >= 1, got {fh!r}")
    return steps.astype(np.int64)                  # in the order asked


def _check_choice(value, name, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


def _check_int(value, name, low, none=True):
    return None if value is None and none else check_delay(value, name, low=low)


def _period_and_lags(settings, season):
    """The season a forecaster of ``settings`` uses (its period, else the axis' ``season``)
    and its lags (given, else the training's default or the season where that is longer)."""
    period = settings["period"] or season
    return period, settings["lags"] or max(TRAINING_DEFAULTS[settings["training"]][1], period or 0)


# ----------------------------------------------------------------- the forecaster
@register_model
class Forecaster:
    """A series forecaster over the lecture's networks (see the module docstring).

    Parameters
    ----------
    model : "narx" (default), "tdnn", "rnn", "elman" or "jordan"
    lags : past values read (a NARX's output taps 1 .. lags, a TDNN's window); default
        the training's (6 for "bayesian", 8 for "adam"), or the season (``period``, or the
        frequency's: 12 monthly, 4 quarterly, 7 daily, ...) where that is longer
    hidden : hidden layer sizes; default (5,) for "bayesian", (16,) for "adam"
    training : "bayesian" (Levenberg-Marquardt with Bayesian regularisation, float64) or
        "adam" (early stopping on the last ``validation`` of the steps, float32)
    ensemble : nets averaged; default 5 for "bayesian", 1 for "adam"
    scaler : "standard" (mean and deviation of the fitted data, per series and exogenous
        column) or "none"
    d, D, period : regular differences (0, 1, 2) and seasonal ones (0, 1) of lag
        ``period`` (default the frequency's season)
    linear : the linear path of a NARX or TDNN (default: the training's, True for "bayesian")
    strategy : with several series, "local" (one model each) or "global" (one model over
        all, each series its own sequence and its own scaling)
    fill : None (missing dates and bad values are errors) or "interpolate"
    epochs, lr : the training's iterations (default 300 / 2000) and Adam's learning rate
    validation : with "adam", the fraction of the last steps early stopping watches (and
        the weights do not fit); default 0.15
    seed : int; member k of series j starts from seed 100 seed + k + 1000 j
    n_jobs : the members' fits through joblib (see :func:`~unrolled.fit_many`)

    Notes
    -----
    After ``fit``: ``names_`` (series), ``exog_names_``, ``axis_`` (the time axis),
    ``history_`` (T, S) the values fitted (filled where they were filled), ``lags_``,
    ``period_``, ``models_`` (an Ensemble a group of series), ``histories_`` (fit's
    histories) and ``notes_`` (what was filled or chosen).
    """

    config_keys = ("settings", "fitted")        # what a saved file's config holds (unrolled.save)

    def __init__(self, model: str = "narx", *, lags: int | None = None,
                 hidden: int | Sequence[int] | None = None, training: str = "bayesian",
                 ensemble: int | None = None, scaler: str = "standard", d: int = 0, D: int = 0,
                 period: int | None = None, linear: bool | None = None, strategy: str = "local",
                 fill: str | None = None, epochs: int | None = None, lr: float = 0.01,
                 validation: float | None = None, seed: int = 0, n_jobs: int | None = None,
                 progress: bool = False) -> None:
        _check_choice(model, "model", tuple(FORECASTERS))
        _check_choice(training, "training", TRAININGS)
        _check_choice(scaler, "scaler", _SCALERS)
        _check_choice(strategy, "strategy", _STRATEGIES)
        _check_choice(fill, "fill", (None, "interpolate"))
        _check_choice(d, "d", (0, 1, 2))
        _check_choice(D, "D", (0, 1))
        if linear is not None and not isinstance(linear, (bool, np.bool_)):
            raise TypeError(f"linear must be True, False or None, got {linear!r}")
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
            raise ValueError(f"lr must be a number > 0, got {lr!r}")
        if validation is not None:
            if training != "adam":
                raise ValueError(f"validation is the tail Adam's early stopping watches: it needs training='adam' "
                                 f"(this is training={training!r}, which needs no validation split)")
            if isinstance(validation, bool) or not isinstance(validation, numbers.Real) or not 0 < validation < 1:
                raise ValueError(f"validation must be a fraction strictly between 0 and 1, got {validation!r}")
        check_seed(seed)
        if not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an int (a forecaster saves it), got {seed!r}")
        self._settings = dict(
            model=model, lags=_check_int(lags, "lags", 1), training=training,
            hidden=None if hidden is None else list(check_hidden(hidden)),
            ensemble=_check_int(ensemble, "ensemble", 1), scaler=scaler, d=d, D=D,
            period=_check_int(period, "period", 2), linear=None if linear is None else bool(linear),
            strategy=strategy, fill=fill, epochs=_check_int(epochs, "epochs", 1), lr=float(lr),
            validation=None if validation is None else float(validation), seed=int(seed),
            n_jobs=_check_int(n_jobs, "n_jobs", -1), progress=bool(progress))
        self._fitted = None

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments.

        Parameters
        ----------
        deep : bool
            Ignored (no nested estimators), as scikit-learn's signature has it.

        Returns
        -------
        dict
        """
        return dict(self._settings)

    def clone(self) -> Forecaster:
        """An unfitted forecaster of the same settings."""
        return type(self)(**self.get_params())

    def __repr__(self):
        defaults = Forecaster().get_params()
        changed = {k: v for k, v in self._settings.items() if v != defaults[k]}
        return "Forecaster(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"

    # -- fitting ----------------------------------------------------------------
    def fit(self, y: pd.Series | pd.DataFrame | ArrayLike,
            X: pd.Series | pd.DataFrame | ArrayLike | None = None, *, index: ArrayLike | None = None,
            names: Sequence[str] | None = None, exog_names: Sequence[str] | None = None) -> Forecaster:
        """Fit on the series ``y`` and the exogenous inputs ``X`` aligned with it.

        Parameters
        ----------
        y : pandas.Series, pandas.DataFrame or numpy.ndarray
            The series: each column of a DataFrame one, or an array (T,) or (T, S).
        X : pandas.Series, pandas.DataFrame or numpy.ndarray, optional
            The exogenous inputs: of the same dates, or an array (T,) or (T, k).
        index : array_like, optional
            For NumPy y, the dates (datetime64, regular) or step numbers of its rows.
        names, exog_names : list of str, optional
            For NumPy y and X, the names of their columns (default y, x0, x1, ...; pandas
            objects name their own).

        Returns
        -------
        Forecaster
            self.
        """
        notes = []
        values, names_read, axis, one = _read(y, "y", index=index, fill=self._settings["fill"], notes=notes)
        exog, exog_read = self._read_exog(X, axis, len(values), notes)
        names = _given_names(names, names_read, y, "y")
        exog_names = _given_names(exog_names, exog_read, X, "X")
        self._fit_arrays(values, names, axis, one, _is_pandas(y), exog, exog_names, notes)
        if _is_pandas(y):                 # the user's own labels (an int stays an int) for the output
            labels = list(y.columns) if type(y).__name__ == "DataFrame" else [y.name if y.name is not None else "y"]
            self._fitted["int_labels"] = np.array([isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                                   for v in labels])
        return self

    def update(self, y: pd.Series | pd.DataFrame | ArrayLike,
               X: pd.Series | pd.DataFrame | ArrayLike | None = None, *,
               index: ArrayLike | None = None) -> Forecaster:
        """Append new observations that continue the history, without refitting: later
        forecasts start after them (the nets, scaling and differencing stay as fitted).
        y (and X) as ``fit`` takes them; their dates must follow the history's last one
        (NumPy without ``index=``: they are taken to follow it). A pandas X is read at the
        new dates (it may hold the history's too). Returns self.

        Parameters
        ----------
        y : pandas.Series, pandas.DataFrame or numpy.ndarray
            The new observations.
        X : pandas.Series, pandas.DataFrame or numpy.ndarray, optional
            The exogenous inputs at the new dates.
        index : array_like, optional
            For NumPy y, the labels of its rows.

        Returns
        -------
        Forecaster
            self.
        """
        f = self._state()
        notes = []
        if _is_pandas(y) and index is not None:
            raise ValueError("y is a pandas object with its own index: index= is for NumPy arrays")
        values, names, labels, _ = _table(y, "y")
        labels = np.asarray(index) if index is not None else labels
        n = f["axis"].n
        if labels is None or _same_labels(labels, f["axis"].labels(np.arange(n, n + len(values)))):
            axis = f["axis"].with_length(n + len(values))         # they follow the history, one step each
            if values.shape[1] != len(f["names"]):
                raise ValueError(f"expected the series {f['names']}, got {names}")
            values = _fill(values, names, axis.window(n, len(values)), self._settings["fill"], "y", notes,
                           before=f["values"])
        elif len(values) >= 3:                                     # a gap (to fill, or to name), or no continuation
            values, names, axis, _ = _read(y, "y", index=index, fill=self._settings["fill"], notes=notes)
            axis = f["axis"].extended_by(axis)
        else:
            expected = f["axis"].text(f["axis"].labels([n]))[0]
            raise ValueError(f"the new dates must continue the history ({f['axis'].description}): expected "
                             f"{expected} next, got {', '.join(f['axis'].text(labels))}")
        if names != f["names"] and (_is_pandas(y) or values.shape[1] != len(f["names"])):
            raise ValueError(f"expected the series {f['names']}, got {names}")
        exog = None
        if f["exog"] is not None:
            if X is None:
                raise ValueError(f"this forecaster reads the exogenous inputs {', '.join(f['exog_names'])}: pass X "
                                 "for the new steps too")
            exog, _ = self._read_exog(X, axis.window(n, len(values)), len(values), notes)   # pandas X: by date
            exog = np.concatenate([f["exog"], exog])
        elif X is not None:
            raise ValueError("this forecaster was fitted without exogenous inputs: update takes X=None")
        f.update(values=np.concatenate([f["values"], values]), exog=exog, axis=axis, notes=f["notes"] + notes)
        return self

    def _read_exog(self, X, axis, T, notes):
        if X is None:
            return None, []
        if _is_pandas(X) and (hasattr(axis, "index") or getattr(axis, "pandas", False)):
            X = self._aligned(X, axis)
        exog, names, _, _ = _table(X, "X")
        if len(exog) != T:
            raise ValueError(f"expected X with {T} rows, one per step of y, got {len(exog)}")
        return _fill(exog, names, axis, self._settings["fill"], "X", notes), names

    def _aligned(self, X, axis):
        """X's rows at y's dates (or step labels): ValueError naming the dates X lacks
        (those inside X's own span are filled with fill="interpolate")."""
        import pandas as pd

        dup = X.index[X.index.duplicated()]
        if len(dup):
            raise ValueError(f"X has duplicated dates: {', '.join(map(str, dup[:5]))}; expected one row a date")
        wanted = axis.index if hasattr(axis, "index") else pd.Index(axis.labels(np.arange(axis.n)))
        if X.index.equals(wanted):
            return X
        absent = ~wanted.isin(X.index)
        if absent.any():
            inside = (wanted >= X.index.min()) & (wanted <= X.index.max()) if len(X.index) else absent & False
            if self._settings["fill"] is None or np.any(absent & ~np.asarray(inside)):
                shown = ", ".join(axis.text(wanted[absent][:5]))
                hint = ""
                if hasattr(axis, "index") and getattr(X.index, "tz", None) != getattr(axis.index, "tz", None):
                    hint = f" (y's dates are in time zone {axis.index.tz}, X's in {getattr(X.index, 'tz', None)})"
                elif type(X.index) is not type(wanted):
                    hint = f" (y is indexed by a {type(wanted).__name__}, X by a {type(X.index).__name__})"
                raise ValueError(f"X lacks {int(absent.sum())} of y's dates ({shown}{', ...' if absent.sum() > 5 else ''})"
                                 f"{hint}; X must hold a row at every date of y")
        return X.reindex(wanted)

    def _fit_arrays(self, values, names, axis, one, pandas, exog, exog_names, notes):
        s = self._settings
        period, lags = _period_and_lags(s, axis.season)
        if s["D"] and period is None:
            raise ValueError("seasonal differencing (D=1) needs period= (the frequency gives no season)")
        diff_lags = [period] * s["D"] + [1] * s["d"]
        default_hidden, _, default_linear = TRAINING_DEFAULTS[s["training"]]
        w, _ = _difference(values, diff_lags)
        xw = None if exog is None else exog[sum(diff_lags):]
        if len(w) < 2 * lags + 2:
            raise ValueError(f"y has {len(values)} values; {lags} lags"
                             f"{' and differencing' if diff_lags else ''} need at least "
                             f"{2 * lags + 2 + sum(diff_lags)}")
        mean, scale = self._scaling(w, names, "y")
        x_mean, x_scale = (None, None) if xw is None else self._scaling(xw, exog_names, "X")
        z = ((w - mean) / scale).T[:, :, None]                      # (S, T', 1)
        xz = None if xw is None else (xw - x_mean) / x_scale        # (T', k)
        S, n_exo = len(names), 0 if xw is None else xw.shape[1]
        groups = [[j] for j in range(S)] if s["strategy"] == "local" else [list(range(S))]
        M = s["ensemble"] or (ENSEMBLE if s["training"] == "bayesian" else 1)
        hidden = tuple(s["hidden"] or default_hidden)
        linear = default_linear if s["linear"] is None else s["linear"]
        dtype = np.float64 if s["training"] == "bayesian" else np.float32
        _, make = FORECASTERS[s["model"]]
        n_in = n_exo if s["model"] == "narx" else 1 + n_exo
        lin = linear and s["model"] in ("narx", "tdnn")
        models, histories, residuals = [], [], []
        for g, rows in enumerate(groups):
            members = [make(n_in, hidden, lags, 100 * s["seed"] + k + 1000 * g, lin, dtype) for k in range(M)]
            zg = z[rows]
            xg = None if xz is None else np.repeat(xz[None], len(rows), axis=0)
            steps = zg.shape[1]
            train_w = np.ones(steps)
            train_w[:_warm_up(members[0])] = 0.0
            val_w = None
            if s["training"] == "adam":
                held = max(1, int(round((s.get("validation") or _VALIDATION) * steps)))
                val_w = np.zeros(steps)
                val_w[steps - held:] = 1.0
                train_w[steps - held:] = 0.0
            x_in = _inputs(members[0], zg, xg)
            d = zg.astype(dtype)
            kw = _training_kw(s["training"], train_w, val_w, x_in, d, epochs=s["epochs"], lr=s["lr"], patience=300,
                              weight_decay=0.0, progress=s["progress"])
            histories.append(fit_many(members, [x_in] * M, [d] * M, seeds=[s["seed"]] * M, n_jobs=s["n_jobs"],
                                      **kw))
            warm = _warm_up(members[0])
            residuals.append(np.stack([(zg[:, :, 0] - _one_step(m, zg, xg))[:, warm:] for m in members]))
            models.append(Ensemble(members))
        self._fitted = dict(names=names, exog_names=exog_names, one=one, pandas=pandas, axis=axis, values=values,
                            exog=exog, diff_lags=diff_lags, mean=mean, scale=scale, x_mean=x_mean,
                            x_scale=x_scale, groups=groups, models=models, residuals=residuals, lags=lags,
                            period=period, notes=notes)
        self.histories_ = histories

    def _scaling(self, w, names, what):
        if self._settings["scaler"] == "none":
            return np.zeros(w.shape[1]), np.ones(w.shape[1])
        with np.errstate(over="ignore", invalid="ignore"):
            mean, scale = w.mean(axis=0), w.std(axis=0)
            if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
                # the squares overflowed (values above ~1e154): the moments of w over its largest
                # magnitude, scaled back, hold up to the largest float64
                peak = np.max(np.abs(w), axis=0)
                unit = np.where(peak > 0, peak, 1.0)
                mean, scale = unit * (w / unit).mean(axis=0), unit * (w / unit).std(axis=0)
                huge = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(scale)))   # (differencing overflowed)
                if len(huge):
                    diffs = what == "y" and self._settings["d"] + self._settings["D"]
                    differenced = " after differencing" if diffs else ""
                    raise ValueError(f"{what} column {names[huge[0]]!r} is too large to standardise (largest "
                                     f"magnitude {peak[huge[0]]:.3g}{differenced}): rescale it")
        flat = np.flatnonzero(~(scale > 0))
        if len(flat):
            raise ValueError(f"{what} column {names[flat[0]]!r} is constant over the fitted part"
                             f"{' (after differencing)' if what == 'y' and self._settings['d'] + self._settings['D'] else ''}"
                             ": nothing to learn or standardise")
        return mean, scale

    def _state(self):
        if self._fitted is None:
            raise ValueError("this Forecaster is not fitted yet: call fit(y, X) first")
        return self._fitted

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _FITTED_ATTRIBUTES:
            return self._state()[_FITTED_ATTRIBUTES[name]]
        raise AttributeError(f"'Forecaster' object has no attribute {name!r}")

    # -- forecasting --------------------------------------------------------------
    def _scaled_history(self):
        """``(z, xz, levels)``: the history differenced and scaled as the nets read it, (S, T', 1)
        and (T', k) or None, and the levels that undo the differencing."""
        f = self._fitted
        w, levels = _difference(f["values"], f["diff_lags"])
        z = ((w - f["mean"]) / f["scale"]).T[:, :, None]
        xz = None if f["exog"] is None else (f["exog"][sum(f["diff_lags"]):] - f["x_mean"]) / f["x_scale"]
        return z, xz, levels

    def _future_exog(self, X, H):
        """The exogenous inputs (H, k) of the next H steps, scaled."""
        f = self._state()
        if f["exog"] is None:
            if X is not None:
                raise ValueError("this forecaster was fitted without exogenous inputs: predict takes X=None")
            return None
        future = f["axis"].labels(np.arange(f["axis"].n, f["axis"].n + H))
        if X is None:
            raise ValueError(f"this forecaster reads the exogenous inputs {', '.join(f['exog_names'])}: pass X with "
                             f"their values at the {H} future steps ({', '.join(f['axis'].text(future[:3]))}"
                             f"{', ...' if H > 3 else ''})")
        if _is_pandas(X):
            rows = X.reindex(future)
            missing = [lab for lab, ok in zip(f["axis"].text(future), np.asarray(rows.notna().all(axis=1)
                       if rows.ndim == 2 else rows.notna())) if not ok]
            if missing:
                raise ValueError(f"X lacks the exogenous values of the future dates {', '.join(missing[:5])}"
                                 f"{', ...' if len(missing) > 5 else ''}")
            if rows.ndim == 2:
                by_name = {str(c): c for c in rows.columns}
                absent = [c for c in f["exog_names"] if c not in by_name]
                if absent:
                    raise ValueError(f"X lacks the columns {absent} the forecaster was fitted on")
                rows = rows[[by_name[c] for c in f["exog_names"]]]          # the fitted order
            elif rows.name is not None and [str(rows.name)] != f["exog_names"]:
                raise ValueError(f"X is the Series {rows.name!r}; the forecaster was fitted on {f['exog_names']}")
            X = rows
        values, _, _, _ = _table(X, "X")
        if values.shape[1] != len(f["exog_names"]) or len(values) < H:
            raise ValueError(f"expected X of at least {H} rows (the future steps) and {len(f['exog_names'])} "
                             f"columns, got {values.shape}")
        values = values[:H]
        if not np.all(np.isfinite(values)):
            raise ValueError("X holds missing or non-finite values over the horizon")
        return (values - f["x_mean"]) / f["x_scale"]

    def _paths(self, H, X, noise_paths=0, rng=None):
        """Forecasts (P, H, S) in the series' units: the point forecast (P = 1) or bootstrapped paths."""
        f = self._state()
        z, xz, levels = self._scaled_history()
        xf = self._future_exog(X, H)
        S = len(f["names"])
        out = np.empty((max(noise_paths, 1), H, S))
        for rows, ens, res in zip(f["groups"], f["models"], f["residuals"]):
            zg = z[rows]
            xg = None if xz is None else np.repeat(xz[None], len(rows), axis=0)
            xfg = None if xf is None else np.repeat(xf[None], len(rows), axis=0)
            M = len(ens.members)
            if not noise_paths:
                w = np.mean([_closed_loop(m, zg, xg, xfg, H)[0] for m in ens.members], axis=0)   # (N, H)
                out[0][:, rows] = w.T
                continue
            for k, m in enumerate(ens.members):
                picks = np.arange(k, noise_paths, M)
                if not len(picks):
                    continue
                r = res[k]                                                  # (N, T'')
                draws = rng.integers(0, r.shape[1], size=(len(picks), len(rows), H))
                noise = np.take_along_axis(r[None], draws, axis=2)
                paths = _closed_loop(m, zg, xg, xfg, H, noise)              # (p, N, H)
                out[np.ix_(picks, np.arange(H), rows)] = paths.transpose(0, 2, 1)
        out = out * f["scale"] + f["mean"]
        return _integrate(out, levels, f["diff_lags"])

    def future_index(self, fh: int | Sequence[int]) -> np.ndarray | pd.Index:
        """The labels of the steps ``fh`` asks for (dates, or step numbers).

        Parameters
        ----------
        fh : int or list of int
            An int H (steps 1 .. H) or the steps ahead.

        Returns
        -------
        numpy.ndarray or pandas.Index
        """
        f = self._state()
        return f["axis"].labels(f["axis"].n - 1 + _horizon(fh))

    def _labels(self):
        f = self._fitted
        flags = f.get("int_labels")
        return f["names"] if flags is None else [int(n) if i else n for n, i in zip(f["names"], flags)]

    def _wrap(self, values, steps, columns=None):
        """``values`` (len(steps), S) as the user gave y: a Series / DataFrame indexed by the
        future labels, or an array (H,) / (H, S)."""
        f = self._state()
        if not f["pandas"]:
            return values[:, 0] if f["one"] and columns is None else values
        import pandas as pd

        labels = self.future_index(steps)
        if f["axis"].kind == "steps":
            labels = pd.Index(labels, name=f["axis"].name)
        if columns is not None:
            return pd.DataFrame(values, index=labels, columns=columns)
        if f["one"]:
            return pd.Series(values[:, 0], index=labels, name=self._labels()[0])
        return pd.DataFrame(values, index=labels, columns=self._labels())

    def predict(self, fh: int | Sequence[int],
                X: pd.Series | pd.DataFrame | ArrayLike | None = None) -> pd.Series | pd.DataFrame | np.ndarray:
        """The forecasts of the steps ``fh`` (an int H: steps 1 .. H; or a list of steps ahead).

        X : the exogenous inputs over the future steps (a pandas object indexed by the
        future dates, or an array of at least max(fh) rows), when the forecaster was fitted
        with X. Returns a Series / DataFrame indexed by the future dates (pandas y), else
        an array (len(fh),) or (len(fh), S).

        Parameters
        ----------
        fh : int or list of int
            An int H (steps 1 .. H) or the steps ahead.
        X : pandas object or numpy.ndarray, optional
            The future exogenous inputs.

        Returns
        -------
        pandas.Series, pandas.DataFrame or numpy.ndarray
        """
        steps = _horizon(fh)
        paths = self._paths(int(steps.max()), X)
        return self._wrap(paths[0][steps - 1], steps)

    def predict_interval(self, fh: int | Sequence[int], X: pd.Series | pd.DataFrame | ArrayLike | None = None,
                         coverage: float = 0.9, *, paths: int = 1000,
                         seed: int | np.random.Generator = 0) -> pd.DataFrame | np.ndarray:
        """``(lower, upper)`` of a central interval of probability ``coverage`` at the steps
        ``fh``, from ``paths`` closed-loop paths with bootstrapped one-step residuals (see
        the module docstring). pandas y: a DataFrame with columns ``(series, "lower")`` and
        ``(series, "upper")``; NumPy: an array (len(fh), S, 2) (or (len(fh), 2) for one
        series), lower then upper.

        Parameters
        ----------
        fh : int or list of int
            An int H (steps 1 .. H) or the steps ahead.
        X : pandas object or numpy.ndarray, optional
            The future exogenous inputs.
        coverage : float
            The interval's probability, in (0, 1).
        paths : int
            Closed-loop paths simulated (>= 10).
        seed : int or numpy.random.Generator
            For the bootstrap.

        Returns
        -------
        pandas.DataFrame or numpy.ndarray
        """
        if isinstance(coverage, bool) or not isinstance(coverage, numbers.Real) or not 0 < coverage < 1:
            raise ValueError(f"coverage must be a probability strictly between 0 and 1, got {coverage!r}")
        paths = _check_int(paths, "paths", 10, none=False)
        steps = _horizon(fh)
        sims = self._paths(int(steps.max()), X, noise_paths=paths, rng=np.random.default_rng(check_seed(seed)))
        lo, hi = np.quantile(sims, [(1 - coverage) / 2, (1 + coverage) / 2], axis=0)     # (H, S) each
        band = np.stack([lo[steps - 1], hi[steps - 1]], axis=-1)                            # (h, S, 2)
        f = self._fitted
        if not f["pandas"]:
            return band[:, 0] if f["one"] else band
        import pandas as pd

        columns = pd.MultiIndex.from_tuples([(n, side) for n in self._labels() for side in ("lower", "upper")])
        return self._wrap(band.reshape(len(steps), -1), steps, columns=columns)

    def one_step(self) -> np.ndarray:
        """The fitted one-step forecasts of the history, (T, S) in the series' units (NaN where
        the nets read their first, zero, history or the differencing has no past)."""
        f = self._state()
        z, xz, _ = self._scaled_history()
        shift = sum(f["diff_lags"])
        out = np.full(f["values"].shape, np.nan)
        for rows, ens in zip(f["groups"], f["models"]):
            xg = None if xz is None else np.repeat(xz[None], len(rows), axis=0)
            what = np.mean([_one_step(m, z[rows], xg) for m in ens.members], axis=0).T      # (T', N)
            w = z[rows][:, :, 0].T
            warm = _warm_up(ens.members[0])
            delta = (what - w) * f["scale"][rows]
            out[shift + warm:, rows] = f["values"][shift + warm:, rows] + delta[warm:]
        return out

    def residuals(self) -> np.ndarray:
        """The fitted one-step residuals, observed minus forecast, (T, S) in the series'
        units (NaN where :meth:`one_step` has no forecast)."""
        return self._state()["values"] - self.one_step()

    def residual_acf(self, lags: int = 24) -> tuple[np.ndarray, float]:
        """``(acf, bound)``: the autocorrelation (lags + 1, S) of the one-step residuals at
        lags 0 .. ``lags`` (1 at lag 0), and the 95% bound 1.96 / sqrt(n) that white noise
        stays within. Residuals of a forecaster that has left nothing to learn are white.

        Parameters
        ----------
        lags : int
            The largest lag (>= 1).

        Returns
        -------
        acf : numpy.ndarray
            (lags + 1, S).
        bound : float
        """
        lags = _check_int(lags, "lags", 1, none=False)
        r = self.residuals()
        acf = np.empty((lags + 1, r.shape[1]))
        ns = []
        for j in range(r.shape[1]):
            e = r[np.isfinite(r[:, j]), j]
            if len(e) <= lags:
                raise ValueError(f"{len(e)} residuals of series {self._fitted['names'][j]!r} are too few for "
                                 f"{lags} lags")
            e = e - e.mean()
            denom = float(e @ e)
            acf[:, j] = [float(e[k:] @ e[:len(e) - k]) / denom for k in range(lags + 1)]
            ns.append(len(e))
        return acf, 1.96 / np.sqrt(min(ns))

    # -- saving -------------------------------------------------------------------
    @property
    def params(self) -> dict[str, np.ndarray]:
        """The nets' weights, ``<group>.<member>.<name>`` (live arrays)."""
        if self._fitted is None:
            return {}
        return {f"{g}.{k}": v for g, ens in enumerate(self._fitted["models"]) for k, v in ens.params.items()}

    def get_config(self) -> dict:
        """The settings and, once fitted, everything the forecasts need (nets as block specs,
        scaling, differencing, the time axis and the history): what ``unrolled.save`` stores.

        Returns
        -------
        dict
            ``{"settings": ..., "fitted": ... or None}``.
        """
        f = self._fitted
        if f is None:
            return {"settings": self.get_params(), "fitted": None}
        axis = {k: (np.asarray(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v)
                for k, v in f["axis"].get_config().items()}      # ints as arrays: they size no weight
        fitted = {k: f[k] for k in ("names", "exog_names", "one", "pandas", "values", "exog", "mean", "scale",
                                    "x_mean", "x_scale", "residuals", "notes")}
        fitted["int_labels"] = f.get("int_labels")
        fitted.update(axis=axis, diff_lags=np.asarray(f["diff_lags"], dtype=np.int64),
                      groups=[np.asarray(g, dtype=np.int64) for g in f["groups"]],
                      lags=np.asarray(f["lags"]), period=None if f["period"] is None else np.asarray(f["period"]),
                      models=[block_config(m) for m in f["models"]])
        return {"settings": self.get_params(), "fitted": fitted}

    @classmethod
    def from_config(cls, config: dict) -> Forecaster:
        """A new Forecaster from what ``get_config`` returned (its nets' weights fresh: ``load`` copies
        the saved ones in).

        Parameters
        ----------
        config : dict
            A dict as ``get_config`` returns it.

        Returns
        -------
        Forecaster
        """
        out = cls(**config["settings"])
        f = config["fitted"]
        if f is not None:
            axis = {k: (v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v) for k, v in f["axis"].items()}
            out._fitted = dict(
                f, axis=index_from_config(axis), diff_lags=[int(v) for v in f["diff_lags"]],
                groups=[[int(v) for v in g] for g in f["groups"]], lags=int(f["lags"]),
                period=None if f["period"] is None else int(f["period"]),
                models=[block_from_config(spec) for spec in f["models"]],
                residuals=[np.asarray(r) for r in f["residuals"]])
        return out


# ----------------------------------------------------------------- backtesting
class Backtest:
    """Errors of forecasts over expanding windows (:func:`backtest`).

    errors : name -> (folds, horizon, S) forecast minus truth, for the forecaster
    ("forecaster") and the baselines ("seasonal naive", "naive", "AR(p)"); origins : the
    label of each fold's last fitted step; inside : (folds, horizon, S) whether the truth
    fell in the forecaster's interval (with ``coverage=``), else None.

    Parameters
    ----------
    errors : dict of str to numpy.ndarray
        name -> (folds, horizon, S) forecast minus truth.
    origins : list of str
        The label of each fold's last fitted step.
    names : list
        The series.
    horizon : int
        Steps ahead scored.
    coverage : float, optional
        The interval's probability, when intervals were scored.
    inside : numpy.ndarray, optional
        (folds, horizon, S) whether the truth fell in the interval.
    """

    def __init__(self, errors: dict[str, np.ndarray], origins: list[str], names: list, horizon: int,
                 coverage: float | None = None, inside: np.ndarray | None = None) -> None:
        self.errors, self.origins, self.names, self.horizon = errors, origins, names, horizon
        self.coverage, self.inside = coverage, inside

    def rmse(self) -> dict[str, np.ndarray]:
        """name -> (horizon,) root mean squared error over folds and series."""
        return {k: np.sqrt(np.mean(e ** 2, axis=(0, 2))) for k, e in self.errors.items()}

    def mae(self) -> dict[str, np.ndarray]:
        """name -> (horizon,) mean absolute error over folds and series."""
        return {k: np.mean(np.abs(e), axis=(0, 2)) for k, e in self.errors.items()}

    def covered(self) -> np.ndarray | None:
        """(horizon,) share of folds and series whose truth fell inside the interval."""
        return None if self.inside is None else np.mean(self.inside, axis=(0, 2))

    def table(self, metric: str = "rmse") -> str:
        """The per-horizon errors as text, one row a forecaster.

        Parameters
        ----------
        metric : {"rmse", "mae"}

        Returns
        -------
        str
        """
        values = {"rmse": self.rmse, "mae": self.mae}[metric]()
        H = self.horizon
        shown = list(range(H)) if H <= 12 else sorted(set(np.linspace(0, H - 1, 12).astype(int)))
        head = f"{metric.upper() + ' by step ahead':<18}" + "".join(f"{'h=' + str(h + 1):>9}" for h in shown) + \
            f"{'mean':>9}"
        lines = [head]
        for name, v in values.items():
            lines.append(f"{name:<18}" + "".join(f"{v[h]:>9.4g}" for h in shown) + f"{np.mean(v):>9.4g}")
        if self.inside is not None:
            c = self.covered()
            lines.append(f"{'in ' + format(self.coverage, '.0%') + ' band':<18}" +
                         "".join(f"{c[h]:>9.2f}" for h in shown) + f"{np.mean(c):>9.2f}")
        return "\n".join(lines)


def ar_fit(s, order, fit_end=None):
    """A least-squares AR(order) with intercept fitted on the targets ``s[order:fit_end]``.

    Returns ``(coef, X)``: coef is (order + 1,), the weights of s(t-1) .. s(t-order), then
    the intercept; X is the (len(s) - order, order + 1) design matrix, row i the lagged
    values s[order+i-1], ..., s[i] and a 1, so that ``X @ coef`` forecasts ``s[order:]``.
    """
    fit_end = len(s) if fit_end is None else fit_end
    lags = np.stack([s[order - k - 1: len(s) - k - 1] for k in range(order)], axis=1)  # (len-order, order)
    X = np.hstack([lags, np.ones((len(lags), 1))])
    coef, *_ = np.linalg.lstsq(X[:fit_end - order], s[order:fit_end], rcond=None)
    return coef, X


def ar_iterate(coef, history, horizon):
    """The AR's forecasts (horizon,) past ``history``, each fed back as the next step's past."""
    order = len(coef) - 1
    hist = list(history[-order:])
    for _ in range(horizon):
        hist.append(float(np.dot(coef[:order], hist[::-1][:order]) + coef[order]))
    return np.array(hist[order:])


def _ar_forecasts(s, order, H):
    """A least-squares AR(order) with intercept fitted on ``s``, iterated H steps past it."""
    return ar_iterate(ar_fit(s, order)[0], s, H)


def backtest(forecaster: Forecaster, y: pd.Series | pd.DataFrame | ArrayLike,
             X: pd.Series | pd.DataFrame | ArrayLike | None = None, *, horizon: int, folds: int,
             index: ArrayLike | None = None, coverage: float | None = None,
             step: int | None = None) -> Backtest:
    """Refit ``forecaster`` (a clone each fold) over expanding windows and score its
    forecasts 1 .. ``horizon`` steps past each window's end, beside baselines fitted on
    the same window: seasonal naive (the value one season back; the season is the
    forecaster's period or the frequency's, else 1), naive (the last value) and a
    least-squares AR(lags) with intercept, iterated. The last fold ends ``horizon``
    steps before the end of y; the folds' ends are ``step`` (default ``horizon``) apart,
    so the forecasts scored do not overlap. Nothing after a window's end reaches its
    fit (bad values are filled once, over the whole series, with fill="interpolate").
    With ``coverage``, the forecaster's ``predict_interval`` is scored too. Returns a
    :class:`Backtest`.

    Parameters
    ----------
    forecaster : Forecaster
        Its settings are used (it is not fitted itself).
    y : pandas.Series, pandas.DataFrame or numpy.ndarray
        The series, as ``Forecaster.fit`` takes it.
    X : pandas object or numpy.ndarray, optional
        The exogenous inputs.
    horizon : int
        Steps ahead scored.
    folds : int
        Windows.
    index : array_like, optional
        For NumPy y, the labels of its rows.
    coverage : float, optional
        Score ``predict_interval`` of this probability too.
    step : int, optional
        Steps between the folds' ends (default ``horizon``).

    Returns
    -------
    Backtest
    """
    H = _check_int(horizon, "horizon", 1, none=False)
    K = _check_int(folds, "folds", 1, none=False)
    step = H if step is None else _check_int(step, "step", 1, none=False)
    fill = forecaster.get_params()["fill"]
    notes = []
    values, names, axis, one = _read(y, "y", index=index, fill=fill, notes=notes)
    exog, exog_names = forecaster._read_exog(X, axis, len(values), notes)
    T = len(values)
    ends = [T - H - (K - 1 - k) * step for k in range(K)]
    period, lags = _period_and_lags(forecaster.get_params(), axis.season)
    if ends[0] < 3 * lags + 2:
        raise ValueError(f"y has {T} values: {K} folds of {H} steps leave {ends[0]} to fit the first, "
                         f"fewer than the {3 * lags + 2} its {lags} lags need")
    season = period or 1
    errors = {"forecaster": [], "seasonal naive": [], "naive": [], f"AR({lags})": []}
    inside = [] if coverage is not None else None
    for e in ends:
        f = forecaster.clone()
        f._fit_arrays(values[:e], names, axis.with_length(e), one, False,
                      None if exog is None else exog[:e], exog_names, [])
        future_x = None if exog is None else exog[e:e + H]
        truth = values[e:e + H]
        point = f._paths(H, future_x)[0]
        errors["forecaster"].append(point - truth)
        h = np.arange(H)
        back = e - season + h % season if season > 1 else np.full(H, e - 1)
        errors["seasonal naive"].append(values[back] - truth)
        errors["naive"].append(values[e - 1][None] - truth)
        errors[f"AR({lags})"].append(np.stack([_ar_forecasts(values[:e, j], lags, H) for j in range(len(names))],
                                              axis=1) - truth)
        if inside is not None:
            band = f.predict_interval(H, future_x, coverage)
            band = band[:, None] if band.ndim == 2 else band
            inside.append((truth >= band[..., 0]) & (truth <= band[..., 1]))
    origins = axis.text(axis.labels(np.array(ends) - 1))
    return Backtest({k: np.stack(v) for k, v in errors.items()}, origins, names, H, coverage,
                    None if inside is None else np.stack(inside))
