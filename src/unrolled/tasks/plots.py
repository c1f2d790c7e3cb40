"""The PNGs the command line and the examples write.

matplotlib is imported only when a plot is drawn (with the Agg backend), so importing
this module, ``unrolled.tasks`` or ``unrolled`` does not import it; each file is written
atomically (a temporary file in the same folder, then renamed) with a new file's mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .series import SUNSPOT_SPLIT, SunspotResult, atomic_write

__all__ = ["plot_confusion", "plot_forecast", "plot_series", "plot_impulse", "plot_forecaster", "plot_task"]


def plot_confusion(cm, path, title, what="class"):
    """A PNG of a confusion matrix ``cm`` (rows true ``what``, columns predicted), counts written in."""
    cm = np.asarray(cm)
    C = cm.shape[0]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=120)
    ax.imshow(cm, cmap="Blues")
    for i in range(C):
        for j in range(C):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
    ax.set_xticks(range(C))
    ax.set_yticks(range(C))
    ax.set_xlabel(f"predicted {what}")
    ax.set_ylabel(f"true {what}")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(plt, fig, path)


def plot_forecast(result, path, title):
    """A PNG of the series and the model's one-step forecasts, test years shaded."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4), dpi=110)
    ax.plot(result.years, result.truth, color="black", lw=1.2, label="observed")
    ax.plot(result.years, result.forecasts["model"], color="tab:red", lw=1.0, label="model, one step ahead")
    ax.plot(result.years, result.forecasts["AR(12)"], color="tab:blue", lw=0.8, ls="--", label="AR(12)")
    for part in ("test1", "test2"):
        lo, hi = SUNSPOT_SPLIT[part]
        ax.axvspan(lo, hi, color="0.9", zorder=0)
        row = result.table["model"][part]
        ax.text((lo + hi) / 2, ax.get_ylim()[1] * 0.95, f"ARV {row:.3f}", ha="center", va="top", fontsize=8)
    ax.set_xlabel("year")
    ax.set_ylabel("yearly mean sunspot number")
    _finish(plt, fig, ax, path, title, legend_loc="upper left")


def plot_series(result, path, title):
    """A PNG of the test part of a series and the model's one-step forecasts, against the
    series' dates where it has them (``result.dates``), else its step numbers."""
    plt = _pyplot()
    fit_end, val_end = result.bounds
    dates = getattr(result, "dates", None)
    t = np.arange(len(result.truth)) if dates is None else np.asarray(dates)
    fig, ax = plt.subplots(figsize=(10, 4), dpi=110)
    ax.plot(t[val_end:], result.truth[val_end:], color="black", lw=0.8, label="observed")
    ax.set_ylabel(result.name)
    ax.plot(t[val_end:], result.forecasts["model"][val_end:], color="tab:red", lw=0.8,
            label="model, one step ahead")
    if dates is None:
        ax.set_xlabel("step (test part)")
    else:
        ax.set_xlabel(f"date (test part, {_date_text(t[val_end])} .. {_date_text(t[-1])})")
        fig.autofmt_xdate()
    _finish(plt, fig, ax, path, title, legend_loc="upper left")


def _date_text(date):
    return np.datetime_as_string(date).replace("T", " ")


def plot_impulse(response, path, title):
    """A PNG of each layer's response (the output's, and the norm of every other's) over time."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for name, r in response.items():
        if name == "y":
            ax.plot(r[:, 0], color="black", lw=1.5, marker=".", label="output y")
        else:
            ax.plot(np.linalg.norm(r, axis=1), lw=1.0, label=f"|{name}|")
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set_xlabel("t (impulse at t = 0)")
    ax.set_ylabel("response")
    _finish(plt, fig, ax, path, title)


def plot_forecaster_forecast(run, path, last=None):
    """A PNG of a saved Forecaster's forecast (:class:`~unrolled.tasks.series.ForecasterForecast`):
    the history (its last ``last`` steps; default 10 horizons' worth), the fitted one-step
    forecasts, and the future with its band, against the dates."""
    f = run.forecaster
    axis, values, names = f.axis_, f.history_, f.names_
    H = len(run.labels)
    n = min(len(values), last or max(10 * H, 60))
    past = np.arange(len(values) - n, len(values))
    t_past, t_future = _plot_times(axis, past), _plot_times(axis, np.arange(len(values), len(values) + H))
    fitted = run.forecaster.one_step()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4), dpi=110)
    single = len(names) == 1
    for j, name in enumerate(names):
        seen, model = ("black", "tab:red") if single else (f"C{j}", f"C{j}")
        ax.plot(t_past, values[past, j], color=seen, lw=1.0, label=f"{name}, observed")
        ax.plot(t_past, fitted[past, j], color=model, lw=0.8, ls=":", label=f"{name}, fitted one step ahead")
        ax.plot(t_future, run.point[:, j], color=model, lw=1.5, marker=".", label=f"{name}, forecast")
        ax.fill_between(t_future, run.lower[:, j], run.upper[:, j], color=model, alpha=0.2,
                        label=f"{run.coverage:.0%} band")
    ax.axvline(t_past[-1], color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("date" if axis.kind != "steps" else "step")
    ax.set_ylabel(", ".join(names))
    if axis.kind != "steps":
        fig.autofmt_xdate()
    _finish(plt, fig, ax, path, f"{', '.join(names)}: forecast {run.labels[0]} .. {run.labels[-1]}",
            legend_loc="upper left")


def plot_residuals(forecaster, path, lags=24):
    """A PNG of a Forecaster's one-step residuals over time and their autocorrelation,
    with the 95% bound of white noise."""
    f = forecaster
    r = f.residuals()
    acf, bound = f.residual_acf(lags)
    t = _plot_times(f.axis_, np.arange(len(r)))
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), dpi=110)
    for j, name in enumerate(f.names_):
        top.plot(t, r[:, j], lw=0.7, color=f"C{j}", label=name)
        bottom.bar(np.arange(1, lags + 1) + 0.8 * j / len(f.names_), acf[1:, j], width=0.8 / len(f.names_),
                   color=f"C{j}", label=name)
    top.axhline(0, color="0.6", lw=0.6)
    top.set_xlabel("date" if f.axis_.kind != "steps" else "step")
    top.set_ylabel("observed - one-step forecast")
    top.set_title("one-step residuals")
    top.legend(loc="upper left", fontsize=8)
    bottom.axhspan(-bound, bound, color="0.85", zorder=0, label=f"95% bound of white noise (+-{bound:.3f})")
    bottom.set_xlabel("lag (steps)")
    bottom.set_ylabel("autocorrelation")
    _finish(plt, fig, bottom, path, "autocorrelation of the residuals", legend_loc="upper right")


def plot_training(histories, path, title="training"):
    """A PNG of the training divergence (and the validation one, where there is one) of
    each fit in ``histories`` (a History or a list of them, e.g. ``Forecaster.histories_[0]``)
    per epoch, on a log scale."""
    histories = [histories] if hasattr(histories, "loss") else list(histories)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for k, h in enumerate(histories):
        epochs = np.arange(1, len(h.loss) + 1)
        ax.plot(epochs, h.loss, color=f"C{k}", lw=1.0, label=f"fit {k}, training")
        if h.val_loss:
            ax.plot(epochs, h.val_loss, color=f"C{k}", lw=1.0, ls="--", label=f"fit {k}, validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch (Levenberg-Marquardt: iteration)")
    ax.set_ylabel("divergence (a sum over its scored steps)")
    _finish(plt, fig, ax, path, title)


def _plot_times(axis, positions):
    """Positions of an axis as what matplotlib draws: datetime64, or step numbers."""
    labels = axis.labels(positions)
    if axis.kind == "steps":
        return np.asarray(labels)
    if axis.kind == "period":
        return labels.to_timestamp().to_numpy()
    return np.asarray(getattr(labels, "to_numpy", lambda: labels)())


def plot_forecaster(run, path):
    """The forecast plot of a :class:`~unrolled.tasks.series.ForecasterRun`: the whole
    sunspot series (:func:`plot_forecast`) or the test part of any other (:func:`plot_series`)."""
    plot = plot_forecast if isinstance(run.result, SunspotResult) else plot_series
    plot(run.result, path, title=run.title)


def plot_task(result, path):
    """The plot of a task that has one: the confusion matrix of spoken digits on its test set."""
    title = (f"spoken digits, test ({len(result.labels)}), BiRNN seed {result.seed}: "
             f"accuracy {result.metrics['accuracy']:.3f}")
    plot_confusion(result.confusion, path, title, what="digit")


def _finish(plt, fig, ax, path, title, legend_loc="best"):
    """Title, legend, layout, then write the PNG atomically and free the figure."""
    ax.set_title(title)
    ax.legend(loc=legend_loc, fontsize=8)
    fig.tight_layout()
    _save(plt, fig, path)


def _save(plt, fig, path):
    """Write ``fig`` to ``path`` as a PNG, atomically, and free it."""
    _atomic_savefig(fig, Path(path))
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _atomic_savefig(fig, path):
    atomic_write(path, lambda fh: fig.savefig(fh, format="png"), binary=True)
