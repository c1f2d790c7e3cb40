"""The lecture's tasks on the data shipped in the package, as the command line runs them.

Yearly sunspots, one step ahead (the classic connectionist benchmark of Weigend,
Huberman and Rumelhart, 1990): fit on 1700-1920, score on 1921-1955 and 1956-1979 by
the average relative variance, ARV = MSE / variance of the series over 1700-1979.
The network reads the series one year at a time and predicts the next year; at test
time it runs over the whole series, so each forecast sees only years before it.

Any other series (a CSV column, the daily returns of a stock) is forecast by a
:class:`~unrolled.Forecaster`, split 70/15/15 in time (it fits the first two parts and is
scored on the third, whose values only extend its history) and scored by MSE over the
variance of the fit part. A CSV file is read by :func:`read_csv_series`
(csv and NumPy only): a header row, a date column recognised and kept to label forecasts
and plots, the target and exogenous columns by name, and every bad cell an error naming
its line and column (or interpolated, on request). The work of ``unrolled train``
(without --task), ``unrolled forecast`` and ``unrolled impulse`` is here too:
:func:`load_data`, :func:`train_forecaster`, :func:`forecast_saved`, :func:`impulse_saved`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import datasets, io
from ..analysis import impulse_response
from ..ensemble import Ensemble
from ..forecasting import ENSEMBLE, FORECASTERS, Forecaster, TRAINING_DEFAULTS, TRAININGS, ar_fit, ar_iterate, train_one_step  # noqa: F401
from ..timeindex import DateStep, date_step, grid_with_gaps
from ..models import NARX, RNN, TDNN, Elman, Jordan

__all__ = ["SUNSPOT_SPLIT", "SunspotResult", "arv", "persistence_forecast", "ar_forecast",
           "sunspot_series", "one_step_forecasts", "multi_step_forecasts", "train_sunspots", "train_one_step",
           "TRAININGS",
           "multi_step_table", "ar_multi_step_table", "sunspot_table", "SERIES_SPLIT", "SeriesResult",
           "series_from_csv", "stock_returns", "train_series", "series_table", "FORECASTERS", "STOCK_TICKERS",
           "read_csv_series", "CsvSeries", "DateStep", "load_data", "SeriesData", "load_series",
           "ForecasterRun", "train_forecaster", "forecast_saved", "ImpulseRun", "impulse_saved",
           "ForecasterForecast", "forecast_forecaster", "extend_forecaster", "atomic_write"]

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
    coef, X = ar_fit(s, order, fit_end)
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


def train_sunspots(model=None, *, training="adam", epochs=None, lr=0.01, seed=0, progress=True,
                   validation_years=20, patience=300, weight_decay=0.0):
    """Train ``model`` (default: ``RNN(1, 1, hidden=(16,))``) on the classic split.

    The model reads the series one year at a time and forecasts the next, trained by
    :func:`train_one_step` with ``training``. The last ``validation_years`` of the fit
    period (1901-1920 by default) are held out of the fit: with ``"adam"`` they pick the
    stopping epoch; with ``"bayesian"`` (which needs no held-out years) pass
    ``validation_years=0`` to fit on all of 1700-1920. The test years are never looked at
    before scoring. Returns a ``SunspotResult`` with the model's and the baselines'
    (persistence, AR(12)) ARVs.
    """
    years, values, z, (mean, scale), fit_end = sunspot_series()
    variance = float(np.var(values))
    if model is None:
        model = RNN(1, 1, hidden=(16,), seed=seed)
    x, d = _sequences(model, z[:fit_end])      # targets up to 1920 only
    steps = d.shape[1]
    train_w = np.ones(steps)
    train_w[steps - validation_years:] = 0.0
    val_w = 1.0 - train_w if validation_years else np.ones(steps)
    history = train_one_step(model, x, d, train_w, val_w, training=training, epochs=epochs, lr=lr,
                             patience=patience, seed=seed, progress=progress, weight_decay=weight_decay)

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
    coef, _ = ar_fit(s, order, fit_end)
    targets = np.flatnonzero(_mask(years, part))
    out = {}
    for h in horizons:
        preds = [ar_iterate(coef, s[:j - h + 1], h)[-1] for j in targets]
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
    dates: object = None   # (T,) datetime64 of the steps, or None (steps are numbered)


# ----------------------------------------------------------------- a CSV file of the user's
#: (pattern, numpy unit) of each ISO date form a date column may use, shortest first
_DATE_FORMS = (
    (re.compile(r"\d{4}"), "Y"),
    (re.compile(r"\d{4}-\d{2}"), "M"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "D"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}"), "m"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}"), "s"),
)
#: the way each form is written, for messages
_DATE_LOOKS = {"Y": "YYYY", "M": "YYYY-MM", "D": "YYYY-MM-DD", "m": "YYYY-MM-DD HH:MM", "s": "YYYY-MM-DD HH:MM:SS"}
#: a column of bare four-digit numbers holds years only when its name says it holds time
_TIME_NAME = re.compile(r"year|date|time|period|month|day", re.IGNORECASE)


def _parse_date(text):
    """(np.datetime64, unit) of an ISO date or date-time cell, or None if it is not one."""
    s = text.strip()
    for pattern, unit in _DATE_FORMS:
        if pattern.fullmatch(s):
            try:
                return np.datetime64(s.replace(" ", "T"), unit), unit
            except ValueError:          # 2001-02-30, hour 25 ...
                return None
    return None


def _parse_number(text):
    """float(text), or None where the cell holds no number (nan and inf do parse)."""
    try:
        return float(text)
    except ValueError:
        return None


def _mostly(cells, parse):
    """Whether more than half of the non-empty ``cells`` parse (and at least one does)."""
    filled = [c for c in cells if c.strip()]
    good = sum(parse(c) is not None for c in filled)
    return good > 0 and 2 * good > len(filled)


@dataclass
class CsvSeries:
    """The series a CSV file gives (:func:`read_csv_series`).

    name : the target column; values : (T,) its numbers; exogenous : (T, k) those of
    the ``exog_names`` columns, or None; dates : (T,) datetime64 of the date column
    ``date_column``, or None; step : their :class:`DateStep`, or None (no dates, or
    irregular ones); notes : what was chosen or done, one sentence each, for the report.
    """

    path: Path
    name: str
    values: np.ndarray
    exogenous: object
    exog_names: tuple
    dates: object
    date_column: object
    step: object
    notes: list

    fills: list = ()

    def date_label(self, i):
        return self.step.label(self.dates[i]) if self.step is not None else \
            np.datetime_as_string(self.dates[i]).replace("T", " ")


def _csv_rows(path):
    """(header, rows, line numbers) of a CSV file: blank lines and empty trailing rows dropped."""
    import csv

    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            try:
                for row in reader:
                    if row:
                        rows.append([cell.strip() for cell in row])
                        lines.append(reader.line_num)
            except csv.Error as exc:
                raise ValueError(f"{path} line {reader.line_num}: not a readable CSV row ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file (byte {exc.object[exc.start]:#04x} at offset "
                         f"{exc.start})") from None
    while rows and not any(rows[-1]):
        rows.pop()
        lines.pop()
    if not rows:
        raise ValueError(f"{path}: empty file; expected a header row naming the columns, then rows of values")
    header, line0 = rows[0], lines[0]
    for j, name in enumerate(header):
        if not name:
            raise ValueError(f"{path} line {line0}: cell {j + 1} of the header row names no column")
        if name in header[:j]:
            raise ValueError(f"{path} line {line0}: the header row names column {name!r} twice")
    if all(_parse_number(name) is not None or _parse_date(name) is not None for name in header):
        raise ValueError(f"{path} line {line0}: expected a header row naming the columns, got values "
                         f"({', '.join(header[:4])}{', ...' if len(header) > 4 else ''})")
    for row, line in zip(rows[1:], lines[1:]):
        if len(row) != len(header):
            raise ValueError(f"{path} line {line}: expected {len(header)} cells like the header, got {len(row)}")
    if len(rows) < 3:
        raise ValueError(f"{path}: expected a header row and at least two rows of values, got "
                         f"{len(rows) - 1} row{'s' if len(rows) != 2 else ''} of values")
    return header, rows[1:], np.array(lines[1:])


def _date_column(path, name, cells, lines):
    """(dates, unit, sep) of a date column; ValueError naming the line of a bad or out-of-order date."""
    first = _parse_date(next(c for c in cells if _parse_date(c) is not None))
    unit = first[1]
    sep = "T" if any("T" in c for c in cells) else " "
    dates = []
    for cell, line in zip(cells, lines):
        parsed = _parse_date(cell)
        if parsed is None or parsed[1] != unit:
            got = f"{cell!r}" if cell else "an empty cell"
            raise ValueError(f"{path} line {line}, column {name}: expected a date written {_DATE_LOOKS[unit]} "
                             f"like the column's others, got {got}")
        dates.append(parsed[0])
    dates = np.array(dates)
    bad = np.flatnonzero(np.diff(dates) <= np.timedelta64(0, unit))
    if len(bad):
        i = int(bad[0]) + 1
        raise ValueError(f"{path} line {lines[i]}, column {name}: dates must increase, but {cells[i]} follows "
                         f"{cells[i - 1]}")
    return dates, unit, sep


def _number_column(path, name, cells, lines, fill):
    """(values, note) of a column of numbers; ValueError naming the line of a bad cell unless ``fill``."""
    values = np.empty(len(cells))
    bad = []
    for i, (cell, line) in enumerate(zip(cells, lines)):
        v = _parse_number(cell)
        if v is None or not np.isfinite(v):
            if not fill:
                what = "a finite number" if v is not None else "a number"
                got = f"{cell!r}" if cell else "an empty cell"
                raise ValueError(f"{path} line {line}, column {name}: expected {what}, got {got} "
                                 f"(--fill interpolates such cells)")
            bad.append(i)
            v = np.nan
        values[i] = v
    note = None
    if bad:
        good = np.flatnonzero(np.isfinite(values))
        if len(good) < 2:
            raise ValueError(f"{path}, column {name}: {len(good)} of its {len(cells)} cells hold a number; "
                             "too few to interpolate the others")
        values[bad] = np.interp(bad, good, values[good])
        where = ", ".join(str(lines[i]) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        note = (f"filled {len(bad)} cell{'s' if len(bad) > 1 else ''} in column {name} by linear interpolation "
                f"(line{'s' if len(bad) > 1 else ''} {where})")
    if np.all(values == values[0]):
        raise ValueError(f"{path}, column {name} is constant (every value {values[0]:g}): nothing to learn or "
                         "standardise")
    return values, note


def read_csv_series(path, column=None, exog=(), fill=False, date=None):
    """The series to forecast, its exogenous inputs and its dates, from a CSV file.

    The file has a header row naming the columns, then one row a time step, every row
    as many cells as the header. A column all of whose cells are ISO dates or date-times
    (YYYY-MM-DD, YYYY-MM, YYYY-MM-DD HH:MM[:SS], or YYYY in a column named like year or
    date) is the date column; its dates must increase, and label the forecasts and plots.
    Dates of a regular grid with a few left out (a daily series missing some days, up to
    one in ten; ``timeindex.grid_with_gaps``) are a ValueError naming the missing ones, or
    with ``fill`` rows at them interpolated linearly in every column; other irregular dates
    (trading days with their holidays among them) label nothing: forecasts count steps.
    ``date`` names the date column where the default would pick another (or none: a
    column of bare years not named like time).
    ``column`` names the target (default: the only numeric column other than the dates and
    ``exog``, or the last of several); ``exog`` names the exogenous input columns (default
    none). Every cell of those must be a finite number; a bad one is a ValueError naming
    its line and column, or with ``fill`` is interpolated linearly (and a note says so). A
    constant column is a ValueError too. Returns a :class:`CsvSeries`.
    """
    header, rows, lines = _csv_rows(path)
    cells = {name: [row[j] for row in rows] for j, name in enumerate(header)}
    exog = tuple(exog or ())
    dated = [name for name in header if _mostly(cells[name], _parse_date)
             and (_parse_date(next(c for c in cells[name] if _parse_date(c)))[1] != "Y" or _TIME_NAME.search(name))]
    numeric = [name for name in header if name not in dated and _mostly(cells[name], _parse_number)]
    if date is not None:
        if date not in cells:
            raise ValueError(f"{path}: no column {date!r} (--date); the columns are {', '.join(header)}")
        if date in (column, *exog):
            raise ValueError(f"--date {date} is the --column target or an --exog input too")
        if not _mostly(cells[date], _parse_date):
            raise ValueError(f"{path}: --date column {date} does not hold dates (expected YYYY, YYYY-MM, "
                             f"YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS]; its first cells: {', '.join(cells[date][:3])})")
        dated = [date] + [n for n in dated if n != date]
        numeric = [n for n in numeric if n != date]
    for name in (column, *exog):
        if name is not None and name not in cells:
            raise ValueError(f"{path}: no column {name!r}; the columns are {', '.join(header)}")
        if name in dated:
            raise ValueError(f"{path}: column {name} holds dates, not values")
    twice = sorted({name for name in exog if exog.count(name) > 1 or name == column})
    if twice:
        raise ValueError(f"--exog names {', '.join(twice)} twice or as the --column target too")
    notes = []
    if column is not None:
        name, why = column, "--column"
    else:
        candidates = [n for n in numeric if n not in exog]
        if not candidates:
            kinds = ", ".join(f"{n} ({'dates' if n in dated else 'numbers' if n in numeric else 'text'})"
                              for n in header)
            raise ValueError(f"{path}: no column of numbers to forecast; the columns are {kinds}")
        name = candidates[-1]
        why = ("the only numeric column" if len(candidates) == 1 else
               f"the last of the numeric columns {', '.join(candidates)}; --column picks another")
    values, note = _number_column(path, name, cells[name], lines, fill)
    fills = [note] if note else []
    exogenous = []
    for ex in exog:
        v, note = _number_column(path, ex, cells[ex], lines, fill)
        exogenous.append(v)
        fills += [note] if note else []
    exo_text = (f"exogenous inputs {', '.join(exog)} (a forecast reads them up to the step before)" if exog
                else "no exogenous inputs (--exog adds some)")
    notes.append(f"{path.name}: {len(values)} rows; target column {name} ({why}), {exo_text}")
    dates = step = date_column = None
    if dated:
        date_column = dated[0]
        dates, unit, sep = _date_column(path, date_column, cells[date_column], lines)
        step = date_step(dates, unit, sep)
        first, last = (np.datetime_as_string(d).replace("T", sep) for d in (dates[0], dates[-1]))
        gaps = None if step is not None else grid_with_gaps(dates, unit, sep)
        if gaps is not None:                 # a regular grid with dates left out: name them, or fill them
            step, grid, missing = gaps
            shown = ", ".join(step.label(d) for d in grid[missing[:5]]) + (", ..." if len(missing) > 5 else "")
            many = len(missing) > 1
            if not fill:
                raise ValueError(f"{path}: column {date_column} lacks {len(missing)} date{'s' if many else ''} of its "
                                 f"{step.text} grid ({shown}); --fill interpolates the values at them")
            kept = np.setdiff1d(np.arange(len(grid)), missing)
            values, *exogenous = (np.interp(np.arange(len(grid)), kept, v) for v in [values, *exogenous])
            dates = grid
            fills.append(f"filled the {len(missing)} missing date{'s' if many else ''} of column {date_column} "
                         f"({shown}) by linear interpolation of every column")
        if step is not None:
            notes.append(f"dates {first} .. {last} in column {date_column}, {step.text}")
        else:
            gaps = np.diff(dates)
            notes.append(f"dates {first} .. {last} in column {date_column}, irregular (steps of {gaps.min()} to "
                         f"{gaps.max()}): forecasts are labelled by steps past the last date")
    notes += fills
    return CsvSeries(Path(path), name, values, np.stack(exogenous, axis=1) if exogenous else None, exog,
                     dates, date_column, step, notes, fills)


def series_from_csv(path, column=None):
    """(name, values) of a numeric column of a CSV file (see :func:`read_csv_series`)."""
    data = read_csv_series(Path(path), column)
    return data.name, data.values


def stock_returns(target="IBM", exogenous=("AAPL", "MSFT")):
    """Daily log returns (in percent) of ``target`` and of the ``exogenous`` tickers, same dates."""
    tickers = [target] + [t for t in exogenous if t != target]
    dates, prices = datasets.load_stock_panel(tickers, "adj_close")
    returns = 100 * np.diff(np.log(prices), axis=0)
    return dates[1:], returns[:, 0], returns[:, 1:]


def train_series(forecaster, series, exogenous=None, *, name="series", ar_order=12, split=SERIES_SPLIT,
                 zero_baseline=False, exog_names=None, dates=None):
    """Fit ``forecaster`` (an unfitted :class:`~unrolled.Forecaster`) to ``series`` split in
    time, and score its one-step forecasts beside the baselines.

    series : (T,) values; exogenous : optional (T, k) inputs known at time t, read one
    step later (the forecast of series[t] reads them up to t - 1, so the first step, which
    has none, is dropped: the forecaster's X is the exogenous inputs shifted by one); dates :
    optional (T,) datetime64 of the steps, used as the forecaster's time axis when they are
    regular (else the steps are numbered and the dates only label the report).
    The forecaster fits the first ``split[0] + split[1]`` of the steps (with Adam, its
    early stopping watches the second part, the validation part); then its history is
    extended by the rest, the test part, without refitting (``Forecaster.update``), so each
    one-step forecast reads only values before it and the returned forecaster forecasts
    past the end of the series. Scores are MSE ratios: each forecaster's mean squared
    error over the variance of the series in the fit part. Persistence, seasonal naive
    (where the time axis has a season), a least-squares AR(``ar_order``) fitted on the
    fitted part and, with ``zero_baseline`` (returns), the random walk's zero return are
    scored on the same steps. ``exog_names`` name the exogenous columns.

    A series (or exogenous input) that is not finite, or constant over the fit part, is
    a ValueError: it cannot be standardised.
    """
    series = np.asarray(series, np.float64)
    if series.ndim != 1:
        raise ValueError(f"expected a 1-D series, got shape {series.shape}")
    if exogenous is not None:
        # a forecast of series[t] may read the exogenous inputs only up to t - 1: row t of
        # the forecaster's X holds them at t - 1 (the first row, which has none, is dropped)
        exogenous = np.asarray(exogenous, np.float64).reshape(len(series), -1)[:-1]
        series = series[1:]
        dates = None if dates is None else np.asarray(dates)[1:]
    if len(series) < 3 * ar_order:
        raise ValueError(f"{name}: {len(series)} values are too few; the split 70/15/15 and the AR({ar_order}) "
                         f"baseline need at least {3 * ar_order}")
    T = len(series)
    fit_end, val_end = int(T * split[0]), int(T * (split[0] + split[1]))
    exog = None if exogenous is None else np.asarray(exogenous, np.float64).reshape(T, -1)
    names = [name] + (list(exog_names) if exog_names is not None else
                      [f"exogenous input {j}" for j in range(0 if exog is None else exog.shape[1])])
    for label, values in zip(names, [series] + ([] if exog is None else list(exog.T))):
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise ValueError(f"{label}: value {bad[0]} is {values[bad[0]]}; the series must be finite")
        if np.all(values[:fit_end] == values[0]):
            raise ValueError(f"{label} is constant over the fit part (its first {fit_end} values, every one "
                             f"{values[0]:g}): nothing to learn or standardise")
        with np.errstate(over="ignore", invalid="ignore"):
            spread = np.std(values[:fit_end])
        if not np.isfinite(spread):
            raise ValueError(f"{label}: values up to {np.max(np.abs(values)):g} are too large to standardise")
    index = None
    if dates is not None and date_step(np.asarray(dates), np.datetime_data(np.asarray(dates).dtype)[0], " ") is not None:
        index = np.asarray(dates)
    forecaster.fit(series[:val_end], None if exog is None else exog[:val_end],
                   index=None if index is None else index[:val_end], names=[name],
                   exog_names=None if exog is None else names[1:])
    forecaster.update(series[val_end:], None if exog is None else exog[val_end:])
    forecasts = {"model": forecaster.one_step()[:, 0], "persistence": persistence_forecast(series)}
    period = forecaster.period_
    if period is not None and period < fit_end:
        forecasts[f"seasonal naive ({period})"] = np.concatenate([np.full(period, np.nan), series[:-period]])
    forecasts[f"AR({ar_order})"] = ar_forecast(series, ar_order, val_end)
    if zero_baseline:
        forecasts["random walk"] = np.concatenate([[np.nan], np.zeros(T - 1)])
    variance = float(np.var(series[:fit_end]))
    parts = {"fit": slice(1, fit_end), "val": slice(fit_end, val_end), "test": slice(val_end, T)}
    table, hits = {}, {}
    for key, f in forecasts.items():
        table[key] = {}
        for part, sl in parts.items():
            ok = ~np.isnan(f[sl])
            table[key][part] = arv(f[sl][ok], series[sl][ok], variance) if ok.any() else float("nan")
        t, ft = series[parts["test"]], f[parts["test"]]
        hits[key] = float(np.mean(np.sign(ft) == np.sign(t))) if np.any(ft) else float("nan")
    return SeriesResult(name, series, forecasts, table, (fit_end, val_end), forecaster, forecaster.histories_[0],
                        hits, None if dates is None else np.asarray(dates))


def series_table(result, name="model", hit_rate=False):
    """The MSE-ratio table of a ``SeriesResult`` as text."""
    fit_end, val_end = result.bounds
    T = len(result.truth)
    labels = {key: name if key == "model" else key for key in result.table}
    w = max(14, *(len(label) for label in labels.values()))
    head = (f"{'MSE / variance':<{w}} {'fit (' + str(fit_end - 1) + ')':>12} "
            f"{'val (' + str(val_end - fit_end) + ')':>10} {'test (' + str(T - val_end) + ')':>11}")
    lines = [head + ("   sign right (test)" if hit_rate else "")]
    for key, row in result.table.items():
        line = f"{labels[key]:<{w}} {row['fit']:>12.4f} {row['val']:>10.4f} {row['test']:>11.4f}"
        if hit_rate:
            rate = result.hit_rate[key]
            line += f"   {rate:>17.3f}" if np.isfinite(rate) else f"   {'-':>17}"
        lines.append(line)
    return "\n".join(lines)


# ----------------------------------------------------------------- the command line's work
#: the tickers of the shipped stock panel
STOCK_TICKERS = ("AAPL", "IBM", "MSFT")


@dataclass
class SeriesData:
    """The series --data, --column, --exog and --fill give (:func:`load_data`).

    name : the series' name; values : (T,) its values, None for sunspots (their tasks
    load their own); exogenous : (T, k) inputs, or None; exog_names : their names; kind :
    "sunspots", "stocks" or "csv"; csv : the :class:`CsvSeries` of a CSV file, else None.
    """

    name: str
    values: object
    exogenous: object
    kind: str
    exog_names: tuple = ()
    csv: object = None
    stock_dates: object = None      # stocks: (T,) the trading days, which label but are no regular axis

    @property
    def dates(self):
        return self.stock_dates if self.csv is None else self.csv.dates

    @property
    def notes(self):
        if self.kind == "stocks":
            first, last = (str(d) for d in self.stock_dates[[0, -1]])
            return [f"{self.name}: {len(self.values)} trading days {first} .. {last} (steps numbered: markets "
                    f"close on holidays); exogenous inputs {', '.join(self.exog_names)} (a forecast reads them "
                    "up to the day before)"]
        return [] if self.csv is None else self.csv.notes


def load_data(data="sunspots", column=None, exog=None, fill=False, date=None):
    """The :class:`SeriesData` of ``unrolled``'s --data, --column, --exog and --fill.

    ``data``: "sunspots" (values None: the sunspot tasks load their own), "stocks" (the
    daily log returns of ``column``, default IBM; the ``exog`` tickers, default the other
    two, are exogenous) or the path of a CSV file (:func:`read_csv_series`: ``column``
    the target, default the last numeric one; ``exog`` the exogenous columns, default
    none; ``fill`` interpolates bad cells).
    """
    exog = None if exog is None else tuple(exog)
    if data == "sunspots":
        if column is not None:
            raise ValueError("--column applies to stocks and CSV files, not to sunspots")
        if exog is not None:
            raise ValueError("--exog applies to stocks and CSV files, not to sunspots")
        if fill:
            raise ValueError("--fill applies to CSV files, not to sunspots")
        if date is not None:
            raise ValueError("--date applies to CSV files, not to sunspots")
        return SeriesData("sunspots", None, None, "sunspots")
    if data == "stocks":
        if fill or date is not None:
            raise ValueError(f"{'--fill' if fill else '--date'} applies to CSV files, not to stocks")
        target = column or "IBM"
        if target not in STOCK_TICKERS:
            raise ValueError(f"--column for stocks must be AAPL, IBM or MSFT, got {target!r}")
        others = tuple(t for t in STOCK_TICKERS if t != target) if exog is None else exog
        wrong = [t for t in others if t not in STOCK_TICKERS or t == target or others.count(t) > 1]
        if wrong or not others:
            raise ValueError(f"--exog for stocks names other tickers than --column {target} (of AAPL, IBM, MSFT), "
                             f"each once; got {','.join(others) or 'none'}")
        dates, returns, exogenous = stock_returns(target, others)
        return SeriesData(f"{target} daily log return (%)", returns, exogenous, "stocks", others,
                          stock_dates=dates)
    path = Path(data)
    if not path.is_file():
        raise ValueError(f"--data must be sunspots, stocks or an existing CSV file, got {data!r}")
    csv = read_csv_series(path, column, exog or (), fill, date)
    return SeriesData(csv.name, csv.values, csv.exogenous, "csv", csv.exog_names, csv)


def load_series(data="sunspots", column=None):
    """(name, series, exogenous, kind) of :func:`load_data` for --data and --column."""
    d = load_data(data, column)
    return d.name, d.values, d.exogenous, d.kind


@dataclass
class ForecasterRun:
    """A forecaster trained by :func:`train_forecaster`.

    result : the ``SunspotResult`` (sunspots) or ``SeriesResult``; stem : the default
    file name without its suffix, DATA-MODEL; report : the text ``unrolled train`` prints
    (what was read from a CSV file, the training line and the score table); title : the
    forecast plot's.
    """

    result: object
    stem: str
    report: str
    title: str

    @property
    def model(self):
        return self.result.model


def train_forecaster(data="sunspots", model="narx", *, column=None, exog=None, fill=False, hidden=None, taps=None,
                     training="bayesian", linear=None, epochs=None, lr=0.01, seed=0, progress=True, date=None):
    """``unrolled train`` without --task: build the ``model`` (a key of :data:`FORECASTERS`),
    train it to forecast the series :func:`load_data` gives for ``data``, ``column``,
    ``exog`` and ``fill`` one step ahead and score it beside the baselines: the sunspots
    by :func:`train_sunspots` (a bare model or Ensemble, the classic split), any other series
    by :func:`train_series` (a :class:`~unrolled.Forecaster`, whose saved file then holds
    the whole history). ``hidden`` and ``linear`` default to the training's
    :data:`TRAINING_DEFAULTS`, ``taps`` too for the sunspots, else to the Forecaster's
    ``lags`` (the training's, or the season where that is longer); with ``"bayesian"``
    the model is float64. Returns a :class:`ForecasterRun`."""
    if training not in TRAININGS:
        raise ValueError(f"training must be one of {TRAININGS}, got {training!r}")
    default_hidden, default_taps, default_linear = TRAINING_DEFAULTS[training]
    hidden = default_hidden if hidden is None else hidden
    linear = default_linear if linear is None else linear
    label, make = FORECASTERS[model]
    d = load_data(data, column, exog, fill, date)
    name, series, exogenous, kind = d.name, d.values, d.exogenous, d.kind
    stem = f"{kind if kind != 'csv' else Path(data).stem}-{model}"
    lin = linear and model in ("narx", "tdnn")
    if kind == "sunspots":
        taps = default_taps if taps is None else taps
        n_in = 0 if model == "narx" else 1
        dtype = np.float64 if training == "bayesian" else np.float32
        if training == "bayesian":
            net = Ensemble([make(n_in, hidden, taps, 100 * seed + k, lin, dtype) for k in range(ENSEMBLE)])
        else:
            net = make(n_in, hidden, taps, seed, lin, dtype)
        result = train_sunspots(net, training=training, epochs=epochs, lr=lr, seed=seed, progress=progress,
                                validation_years=0 if training == "bayesian" else 20)
        table, stop, history = sunspot_table(result, name=label), "1901-1920", result.history
        members = net.members if training == "bayesian" else [net]
    else:
        fit_part, val_part = SERIES_SPLIT
        forecaster = Forecaster(model, lags=taps, hidden=hidden, training=training, linear=linear, epochs=epochs,
                                lr=lr, validation=val_part / (fit_part + val_part) if training == "adam" else None,
                                seed=seed, progress=progress)
        result = train_series(forecaster, series, exogenous, name=name, zero_baseline=kind == "stocks",
                              ar_order=5 if kind == "stocks" else 12, exog_names=d.exog_names, dates=d.dates)
        taps = forecaster.lags_
        table = series_table(result, name=label, hit_rate=kind == "stocks")
        stop, history = "the validation part", result.history
        history = history if training == "bayesian" else history[0]
        members = forecaster.models_[0].members
    taps_text = f" taps={taps}" if model in ("narx", "tdnn") else ""
    taps_text += " + linear path" if linear and model in ("narx", "tdnn") else ""
    h = history
    if training == "bayesian":
        gammas = [m.logs["gamma"][-1] for m in h]
        how = (f"an ensemble of {len(h)} nets, each trained by Levenberg-Marquardt with Bayesian regularisation "
               f"({h[0].epochs} iterations; {sum(m.seconds for m in h):.1f}s in all); "
               f"{min(gammas):.1f}-{max(gammas):.1f} effective parameters of "
               f"{sum(p.size for p in members[0].params.values())} in each")
    else:
        how = (f"trained {h.epochs} epochs in {h.seconds:.1f}s; weights of epoch {h.best_epoch + 1} kept "
               f"(best on {stop})")
    report = f"{name}: {label} hidden={list(hidden)}{taps_text}{',' if training == 'bayesian' else ''} {how}\n{table}"
    if kind != "sunspots":
        report += "\n" + _split_text(result, training)
    return ForecasterRun(result, stem, "\n".join([*d.notes, report]),
                         f"{name}: one-step forecasts, {label} {list(hidden)}"
                         + (f", mean of {ENSEMBLE} nets (Bayesian regularisation)" if training == "bayesian" else ""))


def _split_text(result, training):
    """The sentence under a series' table: which steps each part holds, and what fitted what."""
    fit_end, val_end = result.bounds
    T = len(result.truth)
    if result.dates is not None:
        when = [np.datetime_as_string(result.dates[i]).replace("T", " ") for i in (0, fit_end - 1, fit_end,
                                                                                    val_end - 1, val_end, T - 1)]
    else:
        when = [f"step {i}" for i in (0, fit_end - 1, fit_end, val_end - 1, val_end, T - 1)]
    val = "its early stopping watched" if training == "adam" else "fitted too"
    return (f"fit {when[0]} .. {when[1]}, val {when[2]} .. {when[3]} ({val}), test {when[4]} .. {when[5]} "
            f"(never fitted: its forecasts read only values before them)")


#: the models ``unrolled forecast`` runs past the data, and ``unrolled impulse`` follows
_FORECASTS = "forecast serves the one-step forecasters of one series (NARX, TDNN, RNN, Elman, Jordan, StateSpace)"
_IMPULSES = ("impulse serves the one-way networks of one engine column (RNN, TDNN, NARX, Jordan, Elman, "
             "StateSpace, CharRNN)")


def _one_way_model(model, serves, forecaster):
    """ValueError saying which models a command ``serves`` unless ``model`` is one of them
    (an ensemble when its members are)."""
    from ..models import BiRNN, CharRNN, Seq2Seq, StateSpace

    if isinstance(model, Ensemble):
        return _one_way_model(model.members[0], serves, forecaster)
    if isinstance(model, CharRNN) and forecaster:
        why = "a character model: 'unrolled sample' generates text with it"
    elif isinstance(model, Seq2Seq):
        why = ("an encoder-decoder" + (": 'unrolled sample' decodes with it" if forecaster else
                                       " of two networks, not one column"))
    elif isinstance(model, BiRNN):
        why = "it reads each sequence backwards too, so " + (
            "it cannot run past the end of the data" if forecaster else "it has no response to a past impulse alone")
    elif not isinstance(model, (NARX, TDNN, RNN, Elman, Jordan, StateSpace)):
        why = "not one of them"
    elif forecaster and model.n_out != 1:
        why = f"with {model.n_out} outputs, not one series"
    else:
        return
    name = type(model).__name__
    article = "an" if name.startswith(("A", "E", "I", "O", "U", "RNN")) else "a"
    raise ValueError(f"{serves}; this file holds {article} {name} ({why})")


_NO_FUTURE_EXOG = ("this forecaster reads the exogenous inputs {}, whose future values the file cannot hold: "
                   "use Forecaster.predict(fh, X=...) from Python")


@dataclass
class ForecasterForecast:
    """A saved :class:`~unrolled.Forecaster`'s forecast (:func:`forecast_forecaster`).

    labels : the future dates (text); point, lower, upper : (horizon, S); report : the
    text ``unrolled forecast`` prints; the history and the fitted one-step forecasts
    for the plot.
    """

    forecaster: object
    labels: list
    point: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    coverage: float
    report: str


def forecast_forecaster(forecaster, horizon, coverage=0.9, csv_path=None):
    """The dated forecasts 1 .. ``horizon`` steps past a fitted Forecaster's history, with
    the ``coverage`` band (residual bootstrap of the closed loop), written as a CSV
    (``date, <series>, <series>_lower, <series>_upper``; atomically) when ``csv_path``
    is given. The forecaster carries its data: nothing else is read."""
    axis, names = forecaster.axis_, forecaster.names_
    if forecaster.exog_names_:
        raise ValueError(_NO_FUTURE_EXOG.format(", ".join(forecaster.exog_names_)))
    H = horizon
    point = np.asarray(forecaster.predict(H), dtype=float).reshape(H, len(names))
    band = np.asarray(forecaster.predict_interval(H, coverage=coverage, paths=1000, seed=0), dtype=float)
    band = band.reshape(H, len(names), 2)
    lower, upper = band[..., 0], band[..., 1]
    labels = axis.text(forecaster.future_index(H))
    width = max(10, *(len(x) for x in labels))
    lines = [*forecaster.notes_, f"{', '.join(names)}: history {axis.description}; closed-loop forecasts, "
             f"{coverage:.0%} band by residual bootstrap"]
    lines.append(f"{'':>{width}}  " + "  ".join(f"{n + ' (' + format(coverage, '.0%') + ' band)':>32}" for n in names))
    for h in range(H):
        lines.append(f"{labels[h]:>{width}}  " + "  ".join(
            f"{point[h, j]:>10.4g} [{lower[h, j]:>9.4g}, {upper[h, j]:>9.4g}]" for j in range(len(names))))
    if csv_path is not None:
        rows = ["date," + ",".join(f"{n},{n}_lower,{n}_upper" for n in names)]
        rows += [labels[h] + "," + ",".join(f"{float(point[h, j])!r},{float(lower[h, j])!r},{float(upper[h, j])!r}"
                                            for j in range(len(names))) for h in range(H)]
        atomic_write(csv_path, lambda fh: fh.write("\n".join(rows) + "\n"))
        lines.append(f"forecasts written to {csv_path}")
    return ForecasterForecast(forecaster, labels, point, lower, upper, coverage, "\n".join(lines))


def extend_forecaster(forecaster, data, column=None, fill=False, date=None):
    """Extend a fitted Forecaster's history with the rows of ``data`` (a CSV file, or
    "stocks") past its end, without refitting (``Forecaster.update``), for ``unrolled
    forecast MODEL --data FILE``. ``column`` defaults to the forecaster's series. The file
    may hold the whole series or only the rows that follow the history; rows it shares
    with the history must hold the same values (else the file is another series: a
    ValueError naming the first row that differs). Returns the notes for the report."""
    f = forecaster
    if f.exog_names_:
        raise ValueError(_NO_FUTURE_EXOG.format(", ".join(f.exog_names_)))
    if len(f.names_) != 1:
        raise ValueError(f"--data extends one series; this forecaster holds {len(f.names_)} ({', '.join(f.names_)})")
    if data == "sunspots":
        raise ValueError("--data extends a saved Forecaster's history: give a CSV file (or stocks)")
    d = load_data(data, column or (f.names_[0] if data != "stocks" else None), None, fill, date)
    history, n = f.history_[:, 0], len(f.history_)
    axis = f.axis_
    if axis.kind == "dates" and d.dates is not None:
        ours = axis.labels(np.arange(n))
        shared = (d.dates >= ours[0]) & (d.dates <= ours[-1])
        where = np.searchsorted(ours, d.dates[shared])
        if np.any(where >= n) or not np.array_equal(ours[np.minimum(where, n - 1)], d.dates[shared]):
            raise ValueError(f"{data}: its dates up to {axis.step.label(ours[-1])} are not those of the history "
                             f"({axis.description})")
        new = np.flatnonzero(d.dates > ours[-1])
        expected = axis.labels(np.arange(n, n + len(new)))
        if not np.array_equal(expected, d.dates[new]):
            first = int(np.flatnonzero(expected != d.dates[new])[0])
            raise ValueError(f"{data}: the rows past the history must continue its dates ({axis.step.text}): "
                             f"expected {axis.step.label(expected[first])}, got {axis.step.label(d.dates[new][first])}")
        shown = [axis.step.label(t) for t in d.dates]
    else:
        if len(d.values) < n:
            raise ValueError(f"{data}: {len(d.values)} rows, fewer than the {n} of the history; without dates "
                             "(or with the history's steps numbered) the file must hold the whole series")
        where, new = np.arange(n), np.arange(n, len(d.values))
        shown = [f"row {i}" for i in range(len(d.values))]
        shared = np.arange(len(d.values)) < n
    ours = history[where]
    theirs = d.values[np.flatnonzero(shared)]
    differ = np.flatnonzero(~np.isclose(ours, theirs, rtol=1e-12, atol=0))
    if len(differ):
        i = int(np.flatnonzero(shared)[differ[0]])
        raise ValueError(f"{data}: {d.name} at {shown[i]} is {d.values[i]:.10g}, but the saved history holds "
                         f"{ours[differ[0]]:.10g} there: --data must continue the series the forecaster was "
                         "fitted on (refit on a revised series)")
    notes = list(d.notes)
    if len(new):
        f.update(d.values[new])
        notes.append(f"history extended by {len(new)} row{'s' if len(new) > 1 else ''} of {Path(str(data)).name} "
                     f"({shown[new[0]]} .. {shown[new[-1]]}), not refitted")
    else:
        notes.append(f"{Path(str(data)).name} holds no rows past the history: nothing to extend")
    return notes


def atomic_write(path, write, binary=False):
    """Write ``path`` through ``write(file)`` into a temporary file beside it, then move it
    into place: a failed write leaves the old file. The new file gets the usual mode."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp made it 0600; give it a new file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def forecast_saved(path, data="sunspots", column=None, horizon=8, exog=None, fill=False, date=None):
    """``unrolled forecast``: the text of the closed-loop forecasts, 1 .. ``horizon`` steps
    past the end of the series, of the model saved at ``path``, warmed up on the whole
    series (standardised as it was for training). The forecasts of a CSV series with a
    regular date column are labelled with the dates that continue it; otherwise by step
    (t+1 ...), and sunspots by year."""
    model = io.load(path)
    _one_way_model(model, _FORECASTS, forecaster=True)
    d = load_data(data, column, exog, fill, date)
    name, series, exogenous, kind = d.name, d.values, d.exogenous, d.kind
    reads_exogenous = model.n_in > (0 if isinstance(model, NARX) else 1)
    if exogenous is not None or reads_exogenous:
        raise ValueError("forecasting past the data needs the future exogenous inputs, which are unknown; "
                         "use NARX.forecast(..., x_future=...) from Python")
    head = []
    if kind == "sunspots":
        years, series = datasets.load_sunspots()
        fit_end = int(np.searchsorted(years, SUNSPOT_SPLIT["fit"][1], side="right"))
        labels = [str(int(years[-1]) + h) for h in range(1, horizon + 1)]
        last = ""
    else:
        fit_end = int(len(series) * SERIES_SPLIT[0])
        labels = [f"t+{h}" for h in range(1, horizon + 1)]
        csv, last = d.csv, ""
        if csv is not None:
            head = csv.fills
            if csv.dates is not None:
                last = f" on {csv.date_label(-1)}"
                if csv.step is not None:
                    labels = csv.step.after(csv.dates[-1], horizon)
                    last += f" ({csv.step.text})"
                else:
                    last += " (irregular dates: labelled by steps past it)"
    mean, scale = series[:fit_end].mean(), series[:fit_end].std()
    if not scale > 0:
        raise ValueError(f"{name} is constant over the fit part (every value {series[0]:g}): nothing to standardise")
    z = (series - mean) / scale
    T = len(z)
    if hasattr(model, "closed_loop"):
        model = model.closed_loop()
    values = [multi_step_forecasts(model, z, np.array([T - 1 + h]), h)[0] * scale + mean
              for h in range(1, horizon + 1)]
    width = max(8, *(len(label) for label in labels))
    lines = head + [f"{name}: last value {series[-1]:.4g}{last}; closed-loop forecasts of {type(model).__name__}"]
    lines += [f"{label:>{width}}  {v:10.4g}" for label, v in zip(labels, values)]
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
    loop; an ensemble: its members' mean). Returns an :class:`ImpulseRun`; a model that is
    not one engine column (a BiRNN, a Seq2Seq) is a ValueError saying which models it serves."""
    model = io.load(path)
    _one_way_model(model, _IMPULSES, forecaster=False)
    response, what = _impulse(model, steps)
    y = response["y"][:, 0]
    last = np.flatnonzero(np.abs(y) > 1e-6)
    report = "\n".join([
        f"{type(model).__name__}: output response to {what}",
        "t      " + " ".join(f"{t:>8d}" for t in range(min(steps, 10))),
        "dy(t)  " + " ".join(f"{v:>8.4f}" for v in y[:10]),
        "last step with |dy| > 1e-6: " + (str(int(last[-1])) if len(last) else "none")])
    return ImpulseRun(response, report, f"{type(model).__name__}: response to {what}")


def _impulse(model, steps):
    """``(response, what was put in)`` of :func:`impulse_saved`; an ensemble's is the mean
    of its members' output responses."""
    if isinstance(model, Ensemble):
        parts = [_impulse(m, steps) for m in model.members]
        return {"y": np.mean([r["y"] for r, _ in parts], axis=0)}, parts[0][1] + f" (the mean of {len(parts)} nets)"
    if model.n_in == 0:
        # an autonomous NARX: the impulse is a unit past output y(-1), fed back closed loop
        closed = model.closed_loop() if hasattr(model, "closed_loop") else model
        K = max(closed.output_delays)
        kick = np.zeros((1, K, model.n_out), dtype=model.dtype)
        kick[0, -1, 0] = 1.0
        base = closed.predict(None, state={"y": np.zeros_like(kick)}, steps=steps)[0]
        hit = closed.predict(None, state={"y": kick}, steps=steps)[0]
        return {"y": hit - base}, "a unit past output y(-1)"
    return impulse_response(model, steps), "a unit input at t = 0"
