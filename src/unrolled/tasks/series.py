"""The lecture's tasks on the data shipped in the package, as the command line runs them.

Yearly sunspots, one step ahead (the classic connectionist benchmark of Weigend,
Huberman and Rumelhart, 1990): fit on 1700-1920, score on 1921-1955 and 1956-1979 by
the average relative variance, ARV = MSE / variance of the series over 1700-1979.
The network reads the series one year at a time and predicts the next year; at test
time it runs over the whole series, so each forecast sees only years before it.

Any other series (a CSV column, the daily returns of a stock) is split 70/15/15 in time
and scored by MSE over its variance. The work of ``unrolled train`` (without --task),
``unrolled forecast`` and ``unrolled impulse`` is here too: :func:`load_series`,
:func:`train_forecaster`, :func:`forecast_saved`, :func:`impulse_saved`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import datasets, io
from ..analysis import impulse_response
from ..divergences import SquaredError
from ..models import NARX, RNN, TDNN, Elman, Jordan
from ..optim import Adam
from ..train import fit

__all__ = ["SUNSPOT_SPLIT", "SunspotResult", "arv", "persistence_forecast", "ar_forecast",
           "sunspot_series", "one_step_forecasts", "multi_step_forecasts", "train_sunspots",
           "multi_step_table", "ar_multi_step_table", "sunspot_table", "SERIES_SPLIT", "SeriesResult",
           "series_from_csv", "stock_returns", "train_series", "series_table", "FORECASTERS", "STOCK_TICKERS",
           "load_series", "ForecasterRun", "train_forecaster", "forecast_saved", "ImpulseRun", "impulse_saved"]

#: (first, last) target years of each part of the classic split.
SUNSPOT_SPLIT = {"fit": (1700, 1920), "test1": (1921, 1955), "test2": (1956, 1979)}


def arv(pred, truth, variance):
    """Average relative variance: mean squared error divided by the series' variance."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    return float(np.mean((pred - truth) ** 2) / variance)


def persistence_forecast(series):
    """One-step forecasts s_hat(t+1) = s(t); element t forecasts series[t]."""
    return np.concatenate([[np.nan], series[:-1]])


def _ar_fit(s, order, fit_end):
    """A least-squares AR(order) with intercept fitted on the targets ``s[order:fit_end]``.

    Returns ``(coef, X)``: coef is (order + 1,), the weights of s(t-1) .. s(t-order), then
    the intercept; X is the (len(s) - order, order + 1) design matrix, row i the lagged
    values s[order+i-1], ..., s[i] and a 1, so that ``X @ coef`` forecasts ``s[order:]``.
    """
    lags = np.stack([s[order - k - 1: len(s) - k - 1] for k in range(order)], axis=1)  # (len-order, order)
    X = np.hstack([lags, np.ones((len(lags), 1))])
    n_fit = fit_end - order
    coef, *_ = np.linalg.lstsq(X[:n_fit], s[order:fit_end], rcond=None)
    return coef, X


def ar_forecast(series, order, fit_end):
    """One-step forecasts of a least-squares AR(order) with intercept.

    The coefficients are fitted on the targets ``series[order:fit_end]`` (indices);
    element t of the result forecasts ``series[t]`` from ``series[t-order:t]``.
    """
    s = np.asarray(series, float)
    coef, X = _ar_fit(s, order, fit_end)
    out = np.full(len(s), np.nan)
    out[order:] = X @ coef
    return out


@dataclass
class SunspotResult:
    """Forecasts over 1700-1979 of a trained model and the baselines, and their ARVs."""

    years: np.ndarray
    truth: np.ndarray
    forecasts: dict      # name -> (len(years),) one-step forecasts (NaN where none)
    table: dict          # name -> {"fit": arv, "test1": arv, "test2": arv}
    model: object
    history: object


def _mask(years, part):
    lo, hi = SUNSPOT_SPLIT[part]
    return (years >= lo) & (years <= hi)


def sunspot_series():
    """Yearly sunspots 1700-1979: (years, values, z, (mean, scale), fit_end).

    z is the series standardised with the mean and deviation of 1700-1920;
    ``fit_end`` is the index of 1921 (the first test year).
    """
    years, values = datasets.load_sunspots()
    keep = years <= SUNSPOT_SPLIT["test2"][1]
    years, values = years[keep], values[keep]
    fit_end = int(np.searchsorted(years, SUNSPOT_SPLIT["fit"][1], side="right"))
    mean, scale = values[:fit_end].mean(), values[:fit_end].std()
    return years, values, (values - mean) / scale, (mean, scale), fit_end


def _sequences(model, z):
    """Input and target sequences for one-step forecasting: x(t) = z(t), d(t) = z(t+1).

    A model without exogenous input (a NARX with n_in = 0) reads no x: its past
    outputs, fed back, are the series itself.
    """
    dtype = model.dtype
    x = z[None, :-1, None].astype(dtype) if model.n_in else None
    return x, z[None, 1:, None].astype(dtype)


def one_step_forecasts(model, z):
    """The model's forecast of z(t+1) from z(0..t), for t = 0 .. len(z)-2."""
    x, d = _sequences(model, z)
    extra = getattr(model, "fit_inputs", lambda x, d: {})(x, d)
    return model.predict(x, **extra)[0, :, 0]


def multi_step_forecasts(model, z, targets, horizon):
    """Closed-loop forecasts of z[j] made ``horizon`` years ahead, for each index j in ``targets``.

    The model warms up on the true series up to z[j - horizon] and then runs on its own
    outputs: a NARX feeds them back through its output taps (``forecast``); a model
    reading x(t) = z(t) gets each forecast as its next input. All origins run as one
    batch of different lengths.
    """
    targets = np.asarray(targets)
    origins = targets - horizon + 1            # z[0 .. origin-1] known; forecast z[origin ..]
    T = int(origins.max())
    if hasattr(model, "forecast"):
        d = np.zeros((len(targets), T - 1, 1))
        for n, o in enumerate(origins):
            d[n, :o - 1, 0] = z[1:o]           # d(t) = z(t+1), known for t <= o - 2
        y = model.forecast(None, d, horizon, lengths=origins - 1)
        return y[:, -1, 0]
    x = np.zeros((len(targets), T, 1))
    for n, o in enumerate(origins):
        x[n, :o, 0] = z[:o]
    y, state = model.predict(x, lengths=origins, return_state=True)
    step = y[np.arange(len(targets)), origins - 1][:, None, :]          # forecast of z[origin]
    for _ in range(horizon - 1):
        step, state = model.predict(step, state=state, return_state=True)
    return step[:, 0, 0]


def train_sunspots(model=None, *, epochs=2000, lr=0.01, seed=0, progress=True, validation_years=20,
                   patience=300, weight_decay=0.0):
    """Train ``model`` (default: ``RNN(1, 1, hidden=(16,))``) on the classic split.

    The model reads the series one year at a time and forecasts the next. The last
    ``validation_years`` of the fit period (1901-1920 by default) are held out of the
    gradient and pick the stopping epoch (early stopping with ``patience``, best
    weights restored); the test years are never looked at before scoring. Adam with an
    optional L2 ``weight_decay`` trains it. Returns a ``SunspotResult`` with the model's and
    the baselines' (persistence, AR(12)) ARVs.
    """
    years, values, z, (mean, scale), fit_end = sunspot_series()
    variance = float(np.var(values))
    if model is None:
        model = RNN(1, 1, hidden=(16,), seed=seed)
    x, d = _sequences(model, z[:fit_end])      # targets up to 1920 only
    steps = d.shape[1]
    train_w = np.ones(steps)
    train_w[steps - validation_years:] = 0.0
    val_w = 1.0 - train_w
    history = fit(model, x, d, divergence=SquaredError(weights=train_w),
                  optimizer=Adam(lr, weight_decay=weight_decay),
                  epochs=epochs, batch_size=1, validation=(x, d),
                  validation_divergence=SquaredError(weights=val_w), patience=patience,
                  progress=progress, seed=seed)

    y = one_step_forecasts(model, z)
    forecasts = {
        "model": np.concatenate([[np.nan], y * scale + mean]),
        "persistence": persistence_forecast(values),
        "AR(12)": ar_forecast(values, 12, fit_end),
    }
    table = {}
    for name, f in forecasts.items():
        table[name] = {}
        for part in SUNSPOT_SPLIT:
            m = _mask(years, part) & ~np.isnan(f)
            table[name][part] = arv(f[m], values[m], variance)
    return SunspotResult(years, values, forecasts, table, model, history)


def multi_step_table(model, horizons=range(1, 9), part="test1"):
    """ARV of closed-loop forecasts ``h`` years ahead over the years of ``part``, per horizon."""
    years, values, z, (mean, scale), _ = sunspot_series()
    variance = float(np.var(values))
    targets = np.flatnonzero(_mask(years, part))
    out = {}
    for h in horizons:
        f = multi_step_forecasts(model, z, targets, h) * scale + mean
        out[h] = arv(f, values[targets], variance)
    return out


def ar_multi_step_table(order=12, horizons=range(1, 9), part="test1"):
    """The same for the least-squares AR(order), iterated on its own forecasts."""
    years, values, _, _, fit_end = sunspot_series()
    variance = float(np.var(values))
    s = values
    coef, _ = _ar_fit(s, order, fit_end)
    targets = np.flatnonzero(_mask(years, part))
    out = {}
    for h in horizons:
        preds = []
        for j in targets:
            hist = list(s[:j - h + 1])
            for _ in range(h):
                hist.append(float(np.dot(coef[:order], hist[::-1][:order]) + coef[order]))
            preds.append(hist[-1])
        out[h] = arv(np.array(preds), s[targets], variance)
    return out


def sunspot_table(result, name="model"):
    """The ARV table as text, one row a forecaster."""
    lines = [f"{'one-step ARV':<14} {'1700-1920 (fit)':>16} {'1921-1955':>10} {'1956-1979':>10}"]
    for key, row in result.table.items():
        label = name if key == "model" else key
        lines.append(f"{label:<14} {row['fit']:>16.4f} {row['test1']:>10.4f} {row['test2']:>10.4f}")
    return "\n".join(lines)


# ----------------------------------------------------------------- any series
#: fractions of a series used to fit and to validate; the rest is the test part
SERIES_SPLIT = (0.70, 0.15)


@dataclass
class SeriesResult:
    """One-step forecasts of a series split in time (fit / validation / test)."""

    name: str
    truth: np.ndarray      # (T,) the series
    forecasts: dict        # forecaster -> (T,) forecast of truth[t] (NaN where none)
    table: dict            # forecaster -> {"fit": mse ratio, "val": ..., "test": ...}
    bounds: tuple          # (fit_end, val_end) indices into truth
    model: object
    history: object
    hit_rate: dict         # forecaster -> share of test steps whose sign is right


def series_from_csv(path, column=None):
    """A numeric column of a CSV file (header row; the last numeric column by default)."""
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 3:
        raise ValueError(f"{path}: expected a header row and at least two rows of values, got {len(rows)} rows")
    header, body = rows[0], rows[1:]
    numeric = []
    for j, name in enumerate(header):
        try:
            numeric.append((name, np.array([float(r[j]) for r in body])))
        except (ValueError, IndexError):
            continue
    if not numeric:
        raise ValueError(f"{path}: no column holds only numbers; columns are {header}")
    if column is None:
        return numeric[-1]
    for name, values in numeric:
        if name == column:
            return name, values
    raise ValueError(f"{path}: no numeric column {column!r}; numeric columns are {[n for n, _ in numeric]}")


def stock_returns(target="IBM", exogenous=("AAPL", "MSFT")):
    """Daily log returns (in percent) of ``target`` and of the ``exogenous`` tickers, same dates."""
    tickers = [target] + [t for t in exogenous if t != target]
    dates, prices = datasets.load_stock_panel(tickers, "adj_close")
    returns = 100 * np.diff(np.log(prices), axis=0)
    return dates[1:], returns[:, 0], returns[:, 1:]


def train_series(model, series, exogenous=None, *, name="series", epochs=2000, lr=0.01, seed=0,
                 patience=300, progress=True, ar_order=12, split=SERIES_SPLIT, zero_baseline=False):
    """Train ``model`` to forecast ``series[t+1]`` from the past, split in time.

    series : (T,) values; exogenous : optional (T, k) inputs known at time t.
    The first ``split[0]`` of the steps fit the weights, the next ``split[1]`` pick the
    stopping epoch, the rest is the test. The model reads x(t) = [series(t), exogenous(t)]
    (a NARX with output feedback reads only exogenous(t) and feeds the series back).
    Scores are MSE ratios: each forecaster's mean squared error over the variance of the
    series in the fit part; persistence, a least-squares AR(``ar_order``) and, with
    ``zero_baseline`` (returns), the random walk's forecast of a zero return are scored
    on the same steps.
    """
    series = np.asarray(series, np.float64)
    if series.ndim != 1 or len(series) < 3 * ar_order:
        raise ValueError(f"expected a 1-D series of at least {3 * ar_order} values, got shape {series.shape}")
    T = len(series)
    fit_end, val_end = int(T * split[0]), int(T * (split[0] + split[1]))
    mean, scale = series[:fit_end].mean(), series[:fit_end].std()
    z = (series - mean) / scale
    cols = [z[:, None]]
    if exogenous is not None:
        ex = np.asarray(exogenous, np.float64).reshape(T, -1)
        cols.append((ex - ex[:fit_end].mean(0)) / ex[:fit_end].std(0))
    feeds_back = hasattr(model, "forecast")
    inputs = np.hstack(cols[1:] if feeds_back else cols)            # (T, n_in)
    if inputs.shape[1] != model.n_in:
        raise ValueError(f"this task gives the model {inputs.shape[1]} inputs per step, "
                         f"but it was built for n_in={model.n_in}")
    dtype = model.dtype
    x = inputs[None, :-1].astype(dtype) if model.n_in else None
    d = z[None, 1:, None].astype(dtype)
    steps = T - 1
    w_fit = (np.arange(steps) < fit_end - 1).astype(float)
    w_val = ((np.arange(steps) >= fit_end - 1) & (np.arange(steps) < val_end - 1)).astype(float)
    # the weights reach only up to the end of validation: the test targets take no part
    x_fit = None if x is None else x[:, :val_end - 1]
    d_fit = d[:, :val_end - 1]
    history = fit(model, x_fit, d_fit, divergence=SquaredError(weights=w_fit[:val_end - 1]),
                  optimizer=Adam(lr), epochs=epochs, batch_size=1, validation=(x_fit, d_fit),
                  validation_divergence=SquaredError(weights=w_val[:val_end - 1]), patience=patience,
                  progress=progress, seed=seed)
    extra = getattr(model, "fit_inputs", lambda x, d: {})(x, d)
    y = model.predict(x, **extra)[0, :, 0]
    forecasts = {"model": np.concatenate([[np.nan], y * scale + mean]),
                 "persistence": persistence_forecast(series),
                 f"AR({ar_order})": ar_forecast(series, ar_order, fit_end)}
    if zero_baseline:
        forecasts["random walk"] = np.concatenate([[np.nan], np.zeros(T - 1)])
    variance = float(np.var(series[:fit_end]))
    parts = {"fit": slice(1, fit_end), "val": slice(fit_end, val_end), "test": slice(val_end, T)}
    table, hits = {}, {}
    for key, f in forecasts.items():
        table[key] = {}
        for part, sl in parts.items():
            ok = ~np.isnan(f[sl])
            table[key][part] = arv(f[sl][ok], series[sl][ok], variance)
        t, ft = series[parts["test"]], f[parts["test"]]
        hits[key] = float(np.mean(np.sign(ft) == np.sign(t))) if np.any(ft) else float("nan")
    return SeriesResult(name, series, forecasts, table, (fit_end, val_end), model, history, hits)


def series_table(result, name="model", hit_rate=False):
    """The MSE-ratio table of a ``SeriesResult`` as text."""
    fit_end, val_end = result.bounds
    T = len(result.truth)
    head = (f"{'MSE / variance':<14} {'fit (' + str(fit_end - 1) + ')':>12} "
            f"{'val (' + str(val_end - fit_end) + ')':>10} {'test (' + str(T - val_end) + ')':>11}")
    lines = [head + ("   sign right (test)" if hit_rate else "")]
    for key, row in result.table.items():
        label = name if key == "model" else key
        line = f"{label:<14} {row['fit']:>12.4f} {row['val']:>10.4f} {row['test']:>11.4f}"
        if hit_rate:
            rate = result.hit_rate[key]
            line += f"   {rate:>17.3f}" if np.isfinite(rate) else f"   {'-':>17}"
        lines.append(line)
    return "\n".join(lines)


# ----------------------------------------------------------------- the command line's work
#: --model name -> (label, constructor(n_in, hidden, taps, seed)) for one-step forecasting.
#: A NARX feeds the series back through ``taps`` output delays and reads the exogenous
#: inputs (if any) at delays 0 .. taps-1; the others read the series (and exogenous inputs).
FORECASTERS = {
    "narx": ("NARX", lambda n, h, k, s: NARX(
        n, 1, input_delays=(k - 1 if n else []), output_delays=k, hidden=h, feedback="open", seed=s)),
    "tdnn": ("TDNN", lambda n, h, k, s: TDNN(n, 1, width=k - 1, hidden=h, seed=s)),
    "rnn": ("RNN", lambda n, h, k, s: RNN(n, 1, hidden=h, seed=s)),
    "elman": ("Elman", lambda n, h, k, s: Elman(n, 1, hidden=h, seed=s)),
    "jordan": ("Jordan", lambda n, h, k, s: Jordan(n, 1, hidden=h, seed=s)),
}

#: the tickers of the shipped stock panel
STOCK_TICKERS = ("AAPL", "IBM", "MSFT")


def load_series(data="sunspots", column=None):
    """(name, series, exogenous, kind) for ``unrolled``'s --data / --column.

    ``data``: "sunspots" (series None: the sunspot tasks load their own), "stocks" (the
    daily log returns of ``column``, default IBM; the other tickers are exogenous) or the
    path of a CSV file (its numeric ``column``, default the last). kind is "sunspots",
    "stocks" or "csv".
    """
    if data == "sunspots":
        if column is not None:
            raise ValueError("--column applies to stocks and CSV files, not to sunspots")
        return "sunspots", None, None, "sunspots"
    if data == "stocks":
        target = column or "IBM"
        others = tuple(t for t in STOCK_TICKERS if t != target)
        if target not in STOCK_TICKERS:
            raise ValueError(f"--column for stocks must be AAPL, IBM or MSFT, got {target!r}")
        _, returns, exogenous = stock_returns(target, others)
        return f"{target} daily log return (%)", returns, exogenous, "stocks"
    path = Path(data)
    if not path.is_file():
        raise ValueError(f"--data must be sunspots, stocks or an existing CSV file, got {data!r}")
    name, values = series_from_csv(path, column)
    return name, values, None, "csv"


@dataclass
class ForecasterRun:
    """A forecaster trained by :func:`train_forecaster`.

    result : the ``SunspotResult`` (sunspots) or ``SeriesResult``; stem : the default
    file name without its suffix, DATA-MODEL; report : the text ``unrolled train`` prints
    (the training line and the score table); title : the forecast plot's.
    """

    result: object
    stem: str
    report: str
    title: str

    @property
    def model(self):
        return self.result.model


def train_forecaster(data="sunspots", model="narx", *, column=None, hidden=(16,), taps=8, epochs=2000, lr=0.01,
                     seed=0, progress=True):
    """``unrolled train`` without --task: build the ``model`` (a key of :data:`FORECASTERS`),
    train it to forecast the series :func:`load_series` gives for ``data`` and ``column``
    one step ahead (:func:`train_sunspots` or :func:`train_series`) and score it beside the
    baselines. Returns a :class:`ForecasterRun`."""
    label, make = FORECASTERS[model]
    name, series, exogenous, kind = load_series(data, column)
    stem = f"{kind if kind != 'csv' else Path(data).stem}-{model}"
    n_exo = 0 if exogenous is None else exogenous.shape[1]
    n_in = n_exo if model == "narx" else 1 + n_exo
    net = make(n_in, hidden, taps, seed)
    taps_text = f" taps={taps}" if model in ("narx", "tdnn") else ""
    if kind == "sunspots":
        result = train_sunspots(net, epochs=epochs, lr=lr, seed=seed, progress=progress)
        table, stop = sunspot_table(result, name=label), "1901-1920"
    else:
        result = train_series(net, series, exogenous, name=name, epochs=epochs, lr=lr, seed=seed,
                              progress=progress, zero_baseline=kind == "stocks",
                              ar_order=5 if kind == "stocks" else 12)
        table, stop = series_table(result, name=label, hit_rate=kind == "stocks"), "the validation part"
    h = result.history
    report = (f"{name}: {label} hidden={list(hidden)}{taps_text} trained {h.epochs} epochs in "
              f"{h.seconds:.1f}s; weights of epoch {h.best_epoch + 1} kept (best on {stop})\n{table}")
    return ForecasterRun(result, stem, report, f"{name}: one-step forecasts, {label} {list(hidden)}")


def forecast_saved(path, data="sunspots", column=None, horizon=8):
    """``unrolled forecast``: the text of the closed-loop forecasts, 1 .. ``horizon`` steps
    past the end of the series, of the model saved at ``path``, warmed up on the whole
    series (standardised as it was for training)."""
    model = io.load(path)
    name, series, exogenous, kind = load_series(data, column)
    if exogenous is not None or (getattr(model, "n_in", 0) > 1):
        raise ValueError("forecasting past the data needs the future exogenous inputs, which are unknown; "
                         "use NARX.forecast(..., x_future=...) from Python")
    if kind == "sunspots":
        years, series = datasets.load_sunspots()
        fit_end = int(np.searchsorted(years, SUNSPOT_SPLIT["fit"][1], side="right"))
        labels = [str(int(years[-1]) + h) for h in range(1, horizon + 1)]
    else:
        fit_end = int(len(series) * SERIES_SPLIT[0])
        labels = [f"t+{h}" for h in range(1, horizon + 1)]
    mean, scale = series[:fit_end].mean(), series[:fit_end].std()
    z = (series - mean) / scale
    T = len(z)
    if hasattr(model, "closed_loop"):
        model = model.closed_loop()
    values = [multi_step_forecasts(model, z, np.array([T - 1 + h]), h)[0] * scale + mean
              for h in range(1, horizon + 1)]
    lines = [f"{name}: last value {series[-1]:.4g}; closed-loop forecasts of {type(model).__name__}"]
    lines += [f"{label:>8}  {v:10.4g}" for label, v in zip(labels, values)]
    return "\n".join(lines)


@dataclass
class ImpulseRun:
    """A saved model's impulse response (:func:`impulse_saved`).

    response : layer name -> (steps, size) response, "y" the output's; report : the text
    ``unrolled impulse`` prints; title : the plot's.
    """

    response: dict
    report: str
    title: str


def impulse_saved(path, steps=40):
    """``unrolled impulse``: how the model saved at ``path`` answers a unit impulse at t = 0
    over ``steps`` steps (an autonomous NARX: a unit past output y(-1), fed back closed
    loop). Returns an :class:`ImpulseRun`."""
    model = io.load(path)
    if model.n_in == 0:
        # an autonomous NARX: the impulse is a unit past output y(-1), fed back closed loop
        closed = model.closed_loop() if hasattr(model, "closed_loop") else model
        K = max(closed.output_delays)
        kick = np.zeros((1, K, model.n_out), dtype=model.dtype)
        kick[0, -1, 0] = 1.0
        base = closed.predict(None, state={"y": np.zeros_like(kick)}, steps=steps)[0]
        hit = closed.predict(None, state={"y": kick}, steps=steps)[0]
        response = {"y": hit - base}
        what = "a unit past output y(-1)"
    else:
        response = impulse_response(model, steps)
        what = "a unit input at t = 0"
    y = response["y"][:, 0]
    last = np.flatnonzero(np.abs(y) > 1e-6)
    report = "\n".join([
        f"{type(model).__name__}: output response to {what}",
        "t      " + " ".join(f"{t:>8d}" for t in range(min(steps, 10))),
        "dy(t)  " + " ".join(f"{v:>8.4f}" for v in y[:10]),
        "last step with |dy| > 1e-6: " + (str(int(last[-1])) if len(last) else "none")])
    return ImpulseRun(response, report, f"{type(model).__name__}: response to {what}")
