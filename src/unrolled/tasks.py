"""The lecture's tasks on the data shipped in the package, as the command line runs them.

Yearly sunspots, one step ahead (the classic connectionist benchmark of Weigend,
Huberman and Rumelhart, 1990): fit on 1700-1920, score on 1921-1955 and 1956-1979 by
the average relative variance, ARV = MSE / variance of the series over 1700-1979.
The network reads the series one year at a time and predicts the next year; at test
time it runs over the whole series, so each forecast sees only years before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import datasets
from .divergences import SquaredError
from .optim import Adam
from .train import fit

__all__ = ["SUNSPOT_SPLIT", "SunspotResult", "arv", "persistence_forecast", "ar_forecast",
           "sunspot_series", "one_step_forecasts", "multi_step_forecasts", "train_sunspots",
           "multi_step_table", "ar_multi_step_table", "sunspot_table"]

#: (first, last) target years of each part of the classic split.
SUNSPOT_SPLIT = {"fit": (1700, 1920), "test1": (1921, 1955), "test2": (1956, 1979)}


def arv(pred, truth, variance):
    """Average relative variance: mean squared error divided by the series' variance."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    return float(np.mean((pred - truth) ** 2) / variance)


def persistence_forecast(series):
    """One-step forecasts s_hat(t+1) = s(t); element t forecasts series[t]."""
    return np.concatenate([[np.nan], series[:-1]])


def ar_forecast(series, order, fit_end):
    """One-step forecasts of a least-squares AR(order) with intercept.

    The coefficients are fitted on the targets ``series[order:fit_end]`` (indices);
    element t of the result forecasts ``series[t]`` from ``series[t-order:t]``.
    """
    s = np.asarray(series, float)
    lags = np.stack([s[order - k - 1: len(s) - k - 1] for k in range(order)], axis=1)  # (len-order, order)
    X = np.hstack([lags, np.ones((len(lags), 1))])
    target = s[order:]
    n_fit = fit_end - order
    coef, *_ = np.linalg.lstsq(X[:n_fit], target[:n_fit], rcond=None)
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
                   patience=300):
    """Train ``model`` (default: ``RNN(1, 1, hidden=(16,))``) on the classic split.

    The model reads the series one year at a time and forecasts the next. The last
    ``validation_years`` of the fit period (1901-1920 by default) are held out of the
    gradient and pick the stopping epoch (early stopping with ``patience``, best
    weights restored); the test years are never looked at before scoring. Returns a
    ``SunspotResult`` with the model's and the baselines' (persistence, AR(12)) ARVs.
    """
    from .models import RNN

    years, values, z, (mean, scale), fit_end = sunspot_series()
    variance = float(np.var(values))
    if model is None:
        model = RNN(1, 1, hidden=(16,), seed=seed)
    x, d = _sequences(model, z[:fit_end])      # targets up to 1920 only
    steps = d.shape[1]
    train_w = np.ones(steps)
    train_w[steps - validation_years:] = 0.0
    val_w = 1.0 - train_w
    history = fit(model, x, d, divergence=SquaredError(weights=train_w), optimizer=Adam(lr),
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
    lags = np.stack([s[order - k - 1: len(s) - k - 1] for k in range(order)], axis=1)
    X = np.hstack([lags, np.ones((len(lags), 1))])
    coef, *_ = np.linalg.lstsq(X[:fit_end - order], s[order:fit_end], rcond=None)
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
