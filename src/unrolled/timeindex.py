"""The time axis of a series: what its steps are called, and what the next ones are.

A forecast is labelled by the steps that follow the history. Three kinds of axis:

* :class:`StepIndex`: numbered steps (a NumPy array, or a pandas index of integers with
  a constant step); the next steps are the following integers.
* :class:`DateIndex`: NumPy ``datetime64`` dates with a regular :class:`DateStep`
  (years, months, month ends, days, business days, minutes, seconds), as a CSV file's
  date column gives them; no pandas needed.
* :class:`PandasIndex`: a pandas ``DatetimeIndex`` or ``PeriodIndex`` of any regular
  frequency (given, or inferred by pandas); the next dates come from that frequency.

:func:`time_index` checks a pandas index: duplicated dates, dates out of order and dates
off any regular grid are ValueErrors naming them; missing dates (gaps in a regular grid)
are a ValueError too, unless the caller fills them (it gets the full grid back and the
positions that were missing). pandas is imported only when a pandas index is given.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

__all__ = ["DateStep", "date_step", "grid_with_gaps", "StepIndex", "DateIndex", "PandasIndex", "time_index", "index_from_config", "steps_of",
           "season_of_frequency"]


@dataclass(frozen=True)
class DateStep:
    """The regular step of a date column, to label the dates that follow it.

    kind : "Y" years, "M" months, "ME" month ends, "D" days, "B" business days (Monday to
    Friday), "m" minutes or "s" seconds, ``k`` of them a step; unit and sep : how the
    column writes its dates (numpy unit; " " or "T" between date and time).
    """

    kind: str
    k: int
    unit: str
    sep: str = " "

    @property
    def text(self):
        """In words: "monthly", "every 3 days", "hourly" ..."""
        k, kind = self.k, self.kind
        if kind in ("m", "s"):
            seconds = k * (60 if kind == "m" else 1)
            for size, one, many in ((3600, "hourly", "hours"), (60, "every minute", "minutes"),
                                    (1, "every second", "seconds")):
                if seconds % size == 0:
                    n = seconds // size
                    return one if n == 1 else f"every {n} {many}"
        if kind in ("M", "ME") and k % 12 == 0:
            text = "yearly" if k == 12 else f"every {k // 12} years"
            return text + (", month ends" if kind == "ME" else "")
        one, many = {"Y": ("yearly", "years"), "M": ("monthly", "months"), "ME": ("monthly, month ends", "months"),
                     "D": ("daily", "days"), "B": ("business days, Monday to Friday", "business days")}[kind]
        if kind == "ME" and k > 1:
            return f"every {k} months, month ends"
        return one if k == 1 else f"every {k} {many}"

    def label(self, date):
        """A date written as the column writes its dates."""
        return np.datetime_as_string(np.datetime64(date, self.unit), unit=self.unit).replace("T", self.sep)

    def shifted(self, date, steps):
        """The dates ``steps`` (an int array) steps after ``date``, as datetime64 in ``unit``."""
        date = np.datetime64(date, self.unit)
        h = np.asarray(steps, dtype=np.int64) * self.k
        if self.kind == "Y" and self.unit != "Y":          # the same day of later years
            month_day = self.label(date)[4:].replace(" ", "T")
            year = int(self.label(date)[:4])
            return np.array([f"{year + n}{month_day}" for n in h.ravel()],
                            dtype=f"datetime64[{self.unit}]").reshape(h.shape)
        if self.kind == "M" and self.unit not in ("Y", "M"):     # the first day of later months
            dates = (date.astype("datetime64[M]") + h).astype("datetime64[D]")
        elif self.kind == "ME":
            dates = (date.astype("datetime64[M]") + h + 1).astype("datetime64[D]") - 1
        elif self.kind == "B":
            dates = np.busday_offset(date.astype("datetime64[D]"), h)
        else:
            dates = date + h
        return dates.astype(f"datetime64[{self.unit}]")

    def after(self, last, horizon):
        """The ``horizon`` dates after ``last``, one step apart, as text."""
        return [self.label(d) for d in self.shifted(last, np.arange(1, horizon + 1))]


def date_step(dates, unit, sep):
    """The :class:`DateStep` of increasing ``dates`` (datetime64 in ``unit``), or None if irregular."""
    def constant(steps):
        return int(steps[0]) if len(steps) and np.all(steps == steps[0]) else None

    if unit in ("Y", "M"):
        k = constant(np.diff(dates.astype(int)))
        return None if k is None else DateStep(unit, k, unit, sep)
    if unit == "D":
        days = dates.astype("datetime64[D]")
        months = days.astype("datetime64[M]")
        first_day = np.all(days == months.astype("datetime64[D]"))
        month_end = np.all((days + 1).astype("datetime64[M]") != months)
        k = constant(np.diff(months.astype(int)))
        if k is not None and first_day:
            return DateStep("M", k, unit, sep)
        if k is not None and month_end:
            return DateStep("ME", k, unit, sep)
        text = np.datetime_as_string(days)
        if len(set(t[4:] for t in text)) == 1 and text[0][4:] != "-02-29":
            k = constant(np.diff(days.astype("datetime64[Y]").astype(int)))
            if k is not None:
                return DateStep("Y", k, unit, sep)
        k = constant(np.diff(days.astype(int)))
        if k is not None:
            return DateStep("D", k, unit, sep)
        if np.all(np.is_busday(days)) and np.array_equal(np.busday_offset(days[:-1], 1), days[1:]):
            return DateStep("B", 1, unit, sep)
        return None
    k = constant(np.diff(dates.astype(int)))
    return None if k is None else DateStep(unit, k, unit, sep)




def grid_with_gaps(dates, unit, sep, most=0.1):
    """``(step, grid, missing)`` where increasing ``dates`` (datetime64 in ``unit``) are a
    regular grid with a few dates left out: ``grid`` every date of it from the first to the
    last, ``missing`` the positions in ``grid`` that ``dates`` lack (at most ``most`` times
    as many as there are dates); None where no such grid holds them all. The grid's step is
    that of the two closest dates. Business days are never taken for such a grid: the
    trading days of a market leave out its holidays, which are no gaps to fill."""
    ints = dates.astype(np.int64)
    if len(dates) < 3 or np.any(np.diff(ints) <= 0):
        return None
    i = int(np.argmin(np.diff(ints)))
    step = date_step(dates[i:i + 2], unit, sep)
    if step is None or step.kind == "B":
        return None
    grid = step.shifted(dates[0], np.arange(int(len(dates) * (1 + most)) + 1))
    grid = grid[grid <= dates[-1]]
    at = np.minimum(np.searchsorted(grid, dates), len(grid) - 1)
    if len(grid) and grid[-1] == dates[-1] and np.array_equal(grid[at], dates):
        missing = np.setdiff1d(np.arange(len(grid)), at)
        if 0 < len(missing) <= most * len(dates):
            return step, grid, missing
    return None


#: the season (steps in a cycle) of each kind of regular step, one step apart
_DATE_SEASONS = {"M": 12, "ME": 12, "D": 7, "B": 5}


def _shown(labels, limit=5):
    labels = [str(x) for x in labels]
    return ", ".join(labels[:limit]) + (f", ... ({len(labels)} in all)" if len(labels) > limit else "")


class StepIndex:
    """Numbered steps ``start, start + step, ...``; the future is the following integers."""

    kind = "steps"

    def __init__(self, start=0, step=1, n=0, name=None, pandas=False):
        self.start, self.step, self.n, self.name, self.pandas = int(start), int(step), int(n), name, bool(pandas)

    def labels(self, positions):
        """The labels of the steps at ``positions`` (0 the first of the history; n and on, the future)."""
        return self.start + self.step * np.asarray(positions, dtype=np.int64)

    def text(self, labels):
        return [str(int(v)) for v in labels]

    @property
    def season(self):
        return None

    @property
    def description(self):
        return f"steps {self.start} .. {self.start + self.step * (self.n - 1)}"

    def get_config(self):
        return {"kind": self.kind, "start": self.start, "step": self.step, "n": self.n, "name": self.name,
                "pandas": self.pandas}

    def with_length(self, n):
        return StepIndex(self.start, self.step, n, self.name, self.pandas)

    def window(self, start, n):
        """The axis of the ``n`` steps from position ``start``."""
        return StepIndex(self.start + start * self.step, self.step, n, self.name, self.pandas)

    def extended_by(self, other):
        """The index of this history followed by ``other``'s steps (which must continue it)."""
        if not isinstance(other, StepIndex) or other.step != self.step or other.start != self.start + self.step * self.n:
            raise ValueError(f"the new steps must continue the history ({self.description}, step {self.step}): "
                             f"expected steps from {self.start + self.step * self.n}, got "
                             f"{other.description if isinstance(other, StepIndex) else 'dates'}")
        return self.with_length(self.n + other.n)


class DateIndex:
    """NumPy dates of a regular :class:`DateStep`; the future is the dates that continue them."""

    kind = "dates"

    def __init__(self, first, step, n, name=None):
        self.step, self.n, self.name = step, int(n), name
        self.first = np.datetime64(first, step.unit)

    @classmethod
    def from_dates(cls, dates, name=None):
        """The index of increasing ``dates`` (datetime64); ValueError if they are not regular."""
        dates = np.asarray(dates)
        if dates.dtype.kind != "M":
            raise TypeError(f"expected dates as numpy datetime64, got dtype {dates.dtype}")
        if len(dates) < 2:
            raise ValueError(f"expected at least two dates, got {len(dates)}")
        unit = np.datetime_data(dates.dtype)[0]
        if unit not in ("Y", "M", "D", "m", "s"):      # weeks, hours, us, ns ...: the coarsest exact unit
            for unit in ("D", "m", "s"):
                coarse = dates.astype(f"datetime64[{unit}]")
                if np.array_equal(coarse.astype(dates.dtype), dates):
                    dates = coarse
                    break
            else:
                raise ValueError(f"dates finer than a second ({dates.dtype}) are not supported; expected "
                                 "dates in whole seconds or coarser")
        bad = np.flatnonzero(np.diff(dates) <= np.timedelta64(0, unit))
        if len(bad):
            i = int(bad[0]) + 1
            what = "repeats" if dates[i] == dates[i - 1] else "comes before"
            raise ValueError(f"dates must increase, but date {i} ({dates[i]}) {what} date {i - 1} ({dates[i - 1]})")
        step = date_step(dates, unit, " ")
        if step is None:
            gaps = np.diff(dates)
            raise ValueError(f"the dates {dates[0]} .. {dates[-1]} are not regular (steps of {gaps.min()} to "
                             f"{gaps.max()}): expected one step between all of them")
        return cls(dates[0], step, len(dates), name)

    def labels(self, positions):
        return self.step.shifted(self.first, positions)

    def text(self, labels):
        return [self.step.label(d) for d in labels]

    @property
    def season(self):
        return _DATE_SEASONS.get(self.step.kind) if self.step.k == 1 else None

    @property
    def description(self):
        last = self.labels([self.n - 1])[0]
        return f"dates {self.step.label(self.first)} .. {self.step.label(last)}, {self.step.text}"

    def get_config(self):
        s = self.step
        return {"kind": self.kind, "first": self.step.label(self.first).replace(" ", "T"), "step_kind": s.kind,
                "k": s.k, "unit": s.unit, "sep": s.sep, "n": self.n, "name": self.name}

    def with_length(self, n):
        return DateIndex(self.first, self.step, n, self.name)

    def window(self, start, n):
        """The axis of the ``n`` steps from position ``start``."""
        return DateIndex(self.labels([start])[0], self.step, n, self.name)

    def extended_by(self, other):
        expected = self.labels([self.n])[0]
        if not isinstance(other, DateIndex) or other.first != expected or other.step.kind != self.step.kind \
                or other.step.k != self.step.k:
            got = other.description if hasattr(other, "description") else "steps"
            raise ValueError(f"the new dates must continue the history ({self.description}): expected "
                             f"{self.step.label(expected)} next, got {got}")
        return self.with_length(self.n + other.n)


def season_of_frequency(freqstr):
    """Steps in a year (or week, or day) of a pandas frequency one unit apart: monthly 12,
    quarterly 4, weekly 52, daily 7, business daily 5, hourly 24; None for others."""
    import re

    m = re.fullmatch(r"(\d*)([A-Za-z]+)(-[A-Za-z]+)?", freqstr or "")
    if not m or m.group(1) not in ("", "1"):
        return None
    base = m.group(2)
    if len(base) > 1 and base[0] == "B" and base[1] in "MQYA":   # business month / quarter / year ends
        base = base[1:]
    if base in ("min", "T", "s", "S", "ms", "us", "ns", "L", "U", "N"):
        return None
    for prefix, season in (("B", 5), ("M", 12), ("Q", 4), ("W", 52), ("D", 7), ("h", 24), ("H", 24)):
        if base.startswith(prefix):
            return season
    return None


class PandasIndex:
    """A pandas DatetimeIndex or PeriodIndex of a regular frequency."""

    def __init__(self, index):
        self.index = index
        self.kind = "period" if type(index).__name__ == "PeriodIndex" else "datetime"
        self.freq = index.freqstr
        self.n = len(index)
        self.name = index.name

    def _grid(self, n):
        """The first ``n`` dates of this frequency from the first date (a fresh index, its freq kept)."""
        import pandas as pd

        if self.kind == "period":
            return pd.period_range(self.index[0], periods=n, freq=self.index.freq, name=self.name)
        return pd.date_range(self.index[0], periods=n, freq=self.index.freq, name=self.name)

    def labels(self, positions):
        positions = np.asarray(positions, dtype=np.int64)
        last = int(positions.max()) if positions.size else 0
        out = self._grid(max(last + 1, self.n))[positions]
        out.name = self.name
        return out

    def text(self, labels):
        return [str(v.date()) if self.kind == "datetime" and v == v.normalize() else str(v) for v in labels]

    @property
    def season(self):
        return season_of_frequency(self.freq)

    @property
    def description(self):
        return f"dates {self.text(self.index[:1])[0]} .. {self.text(self.index[-1:])[0]}, frequency {self.freq}"

    def get_config(self):
        config = {"kind": self.kind, "freq": self.freq, "n": self.n, "name": self.name,
                  "first": np.asarray(self.index[:1].asi8, dtype=np.int64)}
        if self.kind == "datetime":
            config["unit"] = self.index.unit
            config["tz"] = None if self.index.tz is None else _tz_key(self.index)
            freq = self.index.freq
            if type(freq).__name__ == "CustomBusinessDay":      # its holidays are not in its freqstr "C"
                config["holidays"] = np.asarray(freq.holidays, dtype="datetime64[D]").astype(np.int64)   # days
                config["weekmask"] = freq.weekmask
        return config

    def with_length(self, n):
        return PandasIndex(self._grid(n))

    def window(self, start, n):
        """The axis of the ``n`` steps from position ``start``."""
        return PandasIndex(self._grid(start + n)[start:])

    def extended_by(self, other):
        expected = self.labels([self.n])[0]
        if not isinstance(other, PandasIndex) or other.index[0] != expected or other.freq != self.freq:
            got = other.description if hasattr(other, "description") else "steps"
            raise ValueError(f"the new dates must continue the history ({self.description}): expected "
                             f"{self.text([expected])[0]} next, got {got}")
        return self.with_length(self.n + other.n)


def index_from_config(config):
    """The index that ``get_config`` described."""
    kind = config["kind"]
    if kind == "steps":
        return StepIndex(config["start"], config["step"], config["n"], config["name"], config["pandas"])
    if kind == "dates":
        step = DateStep(config["step_kind"], config["k"], config["unit"], config["sep"])
        return DateIndex(np.datetime64(config["first"], config["unit"]), step, config["n"], config["name"])
    import pandas as pd

    first = np.asarray(config["first"], dtype=np.int64)
    if kind == "period":
        start = pd.PeriodIndex.from_ordinals(first, freq=config["freq"])[0]
        grid = pd.period_range(start, periods=config["n"], freq=config["freq"], name=config["name"])
    else:
        start = pd.to_datetime(first, unit=config["unit"])
        if config["tz"] is not None:
            start = start.tz_localize("UTC").tz_convert(config["tz"])
        freq = config["freq"]
        if config.get("holidays") is not None:
            freq = pd.offsets.CustomBusinessDay(n=int(freq[:-1] or 1), holidays=list(np.asarray(config["holidays"]).astype("datetime64[D]")),
                                                weekmask=config["weekmask"])
        grid = pd.date_range(start[0], periods=config["n"], freq=freq, name=config["name"])
        grid = grid.as_unit(config["unit"])          # the resolution it was saved with (s, ms, us, ns)
    return PandasIndex(grid)


def _tz_key(index):
    """The name a saved file keeps for ``index``'s time zone (an IANA key such as
    "Europe/Berlin", or "UTC"), checked to give back the same wall-clock times; ValueError
    for a zone no name gives back (convert the index to an IANA zone first)."""
    tz = index.tz
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)          # zoneinfo, pytz
    filename = getattr(tz, "_filename", None)                            # dateutil's tzfile
    if key is None and isinstance(filename, str):
        key = filename.split("zoneinfo/", 1)[1] if "zoneinfo/" in filename else filename
    if key is None:
        key = "UTC" if type(tz).__name__ == "tzutc" else str(tz)
    try:
        same = index.tz_convert(key).tz_localize(None).equals(index.tz_localize(None))
    except Exception:               # an unknown name: whichever error this pandas and zone library raise
        same = False
    if not same:
        raise ValueError(f"cannot save the time zone {tz!r} of y's dates by a name that gives it back; "
                         f"convert them to an IANA zone first (y.tz_convert('Europe/Berlin'))")
    return key


def _infer_frequency(index):
    """pandas' inferred frequency of ``index`` as a string, or None (whichever type this
    pandas returns it as)."""
    import warnings

    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            found = pd.infer_freq(index)
        except (TypeError, ValueError):
            return None
    return getattr(found, "freqstr", found)


def _guess_frequency(index):
    """The frequency most windows of three consecutive dates follow, or None."""

    n = len(index)
    starts = np.unique(np.linspace(0, n - 3, num=min(n - 2, 200)).astype(int))
    seen = Counter()
    for i in starts:
        f = _infer_frequency(index[i:i + 3])
        if f is not None:
            seen[f] += 1
    return seen.most_common(1)[0][0] if seen else None


def time_index(index, what="y"):
    """``(axis, missing)`` of a pandas index: ``axis`` the :class:`PandasIndex` or
    :class:`StepIndex` of the full regular grid, ``missing`` the positions in it that
    ``index`` lacks (empty when there is no gap). ValueError for duplicated or
    out-of-order dates and for dates off every regular grid, naming them."""
    import pandas as pd

    if isinstance(index, (pd.DatetimeIndex, pd.PeriodIndex)):
        dup = index[index.duplicated()]
        if len(dup):
            raise ValueError(f"{what} has duplicated dates: {_shown(dup.astype(str))}; expected one row a date")
        if not index.is_monotonic_increasing:
            i = int(np.flatnonzero(np.diff(index.asi8) < 0)[0]) + 1
            raise ValueError(f"{what}'s dates must increase, but {index[i]} (row {i}) follows {index[i - 1]}; "
                             "sort it first (y.sort_index())")
        if len(index) < 3:
            raise ValueError(f"{what} has {len(index)} dates; expected at least 3 to know their frequency")
        if isinstance(index, pd.PeriodIndex):
            grid = pd.period_range(index[0], index[-1], freq=index.freq, name=index.name)
        else:
            freq = index.freq or _infer_frequency(index)         # an offset keeps a custom calendar's holidays
            if freq is None:
                freq = _guess_frequency(index)
                if freq is None:
                    raise ValueError(f"{what}'s dates {index[0]} .. {index[-1]} follow no regular frequency; "
                                     "expected dates one step apart (daily, monthly, ...)")
            grid = pd.date_range(index[0], index[-1], freq=freq, name=index.name)
            off = ~index.isin(grid)
            if off.any():
                raise ValueError(f"{what}'s dates are irregular: {_shown(index[off].astype(str))} "
                                 f"{'is' if off.sum() == 1 else 'are'} off the {getattr(freq, 'freqstr', freq)} grid the others "
                                 "follow")
        missing = np.flatnonzero(~grid.isin(index))
        return PandasIndex(grid), missing
    values = np.asarray(index)
    if values.dtype.kind not in "iu":
        raise TypeError(f"{what}'s index must be a DatetimeIndex, a PeriodIndex or integers, got "
                        f"{type(index).__name__} of {values.dtype}")
    return steps_of(values, what, name=index.name, pandas=True), np.array([], dtype=int)


def steps_of(values, what="y", name=None, pandas=False):
    """The :class:`StepIndex` of integer labels a constant step apart; ValueError otherwise."""
    values = np.asarray(values)
    steps = np.diff(values)
    if len(values) >= 2 and steps[0] > 0 and np.all(steps == steps[0]):
        return StepIndex(values[0], steps[0], len(values), name, pandas=pandas)
    raise ValueError(f"{what}'s labels must be numbered steps a constant step apart (or dates); got "
                     f"{_shown(values[:6])}")
