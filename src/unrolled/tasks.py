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
           "train_sunspots", "sunspot_table"]

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


def train_sunspots(model=None, *, epochs=2000, lr=0.01, seed=0, progress=True, validation_years=20,
                   patience=300):
    """Train ``model`` (default: ``RNN(1, 1, hidden=(16,))``) on the classic split.

    The last ``validation_years`` of the fit period (1901-1920 by default) are held out
    of the gradient and pick the stopping epoch (early stopping with ``patience``,
    best weights restored); the test years are never looked at before scoring. Returns a ``SunspotResult``
    with the model's and the baselines' (persistence, AR(12)) ARVs.
    """
    from .models import RNN

    years, values = datasets.load_sunspots()
    keep = years <= SUNSPOT_SPLIT["test2"][1]
    years, values = years[keep], values[keep]
    variance = float(np.var(values))
    fit_end = int(np.searchsorted(years, SUNSPOT_SPLIT["fit"][1], side="right"))  # targets < fit_end
    mean, scale = values[:fit_end].mean(), values[:fit_end].std()
    z = (values - mean) / scale

    if model is None:
        model = RNN(1, 1, hidden=(16,), seed=seed)
    dtype = model.dtype
    # One sequence: input year t, target year t+1, for targets up to 1920.
    x = z[None, :fit_end - 1, None].astype(dtype)
    d = z[None, 1:fit_end, None].astype(dtype)
    steps = x.shape[1]
    train_w = np.ones(steps)
    train_w[steps - validation_years:] = 0.0
    val_w = 1.0 - train_w
    history = fit(model, x, d, divergence=SquaredError(weights=train_w), optimizer=Adam(lr),
                  epochs=epochs, batch_size=1, validation=(x, d),
                  validation_divergence=SquaredError(weights=val_w), patience=patience,
                  progress=progress, seed=seed)

    y = model.predict(z[None, :-1, None].astype(dtype))[0, :, 0]
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


def sunspot_table(result, name="model"):
    """The ARV table as text, one row a forecaster."""
    lines = [f"{'one-step ARV':<14} {'1700-1920 (fit)':>16} {'1921-1955':>10} {'1956-1979':>10}"]
    for key, row in result.table.items():
        label = name if key == "model" else key
        lines.append(f"{label:<14} {row['fit']:>16.4f} {row['test1']:>10.4f} {row['test2']:>10.4f}")
    return "\n".join(lines)
