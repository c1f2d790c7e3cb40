"""Shipped data sets: counts and values checked against the original files."""

import csv
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from unrolled import datasets
from unrolled.datasets import (
    load_japanese_vowels,
    load_kjv,
    load_spoken_digits,
    load_stock_panel,
    load_stocks,
    load_sunspots,
    pad_sequences,
    stratified_split,
)

# The originals the shipped files were converted from (see LICENSES.md);
# tests that compare whole files against them skip where they are absent.
RAW = Path(os.environ.get("UNROLLED_RAW_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_raw = pytest.mark.skipif(not RAW.is_dir(), reason=f"original data not found at {RAW}")


# ---------------------------------------------------------------- sunspots


def test_sunspots_values():
    years, values = load_sunspots()
    assert years.shape == values.shape == (309,)
    assert years.dtype == np.int64 and values.dtype == np.float64
    assert years[0] == 1700 and values[0] == 5.0
    assert years[1] == 1701 and values[1] == 11.0
    # last row of sunspots_yearly.csv: 2008,2.9
    assert years[-1] == 2008 and values[-1] == 2.9
    np.testing.assert_array_equal(years, np.arange(1700, 2009))


def test_loaders_return_fresh_arrays():
    _, v1 = load_sunspots()
    v1[0] = -1.0
    _, v2 = load_sunspots()
    assert v2[0] == 5.0


# ---------------------------------------------------------------- stocks


def test_stocks_counts_and_known_values():
    s = load_stocks()
    assert list(s) == ["AAPL", "IBM", "MSFT", "GOOG"]
    assert [len(s[t].dates) for t in s] == [3270, 3270, 3270, 2148]
    aapl, goog = s["AAPL"], s["GOOG"]
    assert aapl.dates.dtype == np.dtype("datetime64[D]")
    assert aapl.close.dtype == aapl.adj_close.dtype == np.float64
    assert aapl.close.shape == aapl.adj_close.shape == (3270,)
    # stocks_daily.csv: AAPL,2000-03-01,118.56,132.06,118.5,130.31,9616100,4.186662803811
    assert aapl.dates[0] == np.datetime64("2000-03-01")
    assert aapl.close[0] == 130.31
    assert aapl.adj_close[0] == 4.186662803811
    # stocks_daily.csv: GOOG,2013-03-01,797.8,807.14,796.15,806.19,4346400,404.3431686260103
    assert goog.dates[0] == np.datetime64("2004-08-19")
    assert goog.dates[-1] == np.datetime64("2013-03-01")
    assert goog.close[-1] == 806.19
    assert goog.adj_close[-1] == 404.3431686260103
    # IBM,2005-06-01,75.57,77.5,75.57,76.84,7380600,58.50257812637
    ibm = s["IBM"]
    i = np.flatnonzero(ibm.dates == np.datetime64("2005-06-01"))
    assert ibm.adj_close[i].tolist() == [58.50257812637]
    for t in s:
        assert np.all(np.diff(s[t].dates) > np.timedelta64(0, "D"))


def test_stocks_selection_and_errors():
    assert list(load_stocks("GOOG")) == ["GOOG"]
    assert list(load_stocks(["MSFT", "AAPL"])) == ["MSFT", "AAPL"]
    with pytest.raises(ValueError, match="unknown ticker"):
        load_stocks(["AAPL", "TSLA"])
    with pytest.raises(TypeError, match="tickers must be str"):
        load_stocks([1])


def test_stock_panel_shared_dates():
    dates, prices = load_stock_panel(["AAPL", "GOOG"])
    assert dates.shape == (2148,) and prices.shape == (2148, 2)
    s = load_stocks(["AAPL", "GOOG"])
    np.testing.assert_array_equal(dates, s["GOOG"].dates)
    np.testing.assert_array_equal(prices[:, 1], s["GOOG"].adj_close)
    i = np.searchsorted(s["AAPL"].dates, dates)
    np.testing.assert_array_equal(prices[:, 0], s["AAPL"].adj_close[i])

    dates, close = load_stock_panel(["IBM", "MSFT", "AAPL"], column="close")
    assert close.shape == (3270, 3)
    assert close[0].tolist() == [100.25, 90.81, 130.31]
    with pytest.raises(ValueError, match="column must be one of"):
        load_stock_panel(["IBM"], column="open")
    with pytest.raises(ValueError, match="at least one"):
        load_stock_panel([])


@needs_raw
def test_stocks_match_original_csv():
    with open(RAW / "stocks_daily.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    s = load_stocks()
    for t in s:
        mine = [r for r in rows if r["Ticker"] == t]
        assert s[t].dates.astype(str).tolist() == [r["Date"] for r in mine]
        assert s[t].close.tolist() == [float(r["Close"]) for r in mine]
        assert s[t].adj_close.tolist() == [float(r["Adj Close"]) for r in mine]


# ---------------------------------------------------------------- Japanese vowels


def test_japanese_vowels_counts():
    x_train, y_train, x_test, y_test = load_japanese_vowels()
    assert len(x_train) == 270 and y_train.shape == (270,)
    assert len(x_test) == 370 and y_test.shape == (370,)
    assert y_train.dtype == y_test.dtype == np.int64
    assert all(x.ndim == 2 and x.shape[1] == 12 and x.dtype == np.float64 for x in x_train + x_test)
    lengths = [len(x) for x in x_train + x_test]
    assert min(lengths) == 7 and max(lengths) == 29
    assert max(len(x) for x in x_train) == 26
    assert sum(len(x) for x in x_train) == 4274 and sum(len(x) for x in x_test) == 5687
    np.testing.assert_array_equal(np.bincount(y_train), [30] * 9)
    np.testing.assert_array_equal(np.bincount(y_test), [31, 35, 88, 44, 29, 24, 40, 50, 29])
    # JapaneseVowels_TRAIN.ts, first case: "1.860936,...:-0.207383,...:0.261557,..."
    assert x_train[0].shape == (20, 12)
    assert x_train[0][0, 0] == 1.860936
    assert x_train[0][0, 1] == -0.207383
    assert x_train[0][0, 2] == 0.261557
    assert x_train[0][1, 0] == 1.891651
    # JapaneseVowels_TEST.ts, last case: 12th dimension ends "0.224688", label 9
    assert x_test[-1][-1, 11] == 0.224688 and y_test[-1] == 8


def _parse_ts(path):
    xs, ys = [], []
    for line in path.read_text().splitlines():
        if not line.strip() or line[0] in "#@":
            continue
        *dims, label = line.strip().split(":")
        xs.append(np.array([[float(v) for v in d.split(",")] for d in dims]).T)
        ys.append(int(label) - 1)
    return xs, np.array(ys)


@needs_raw
def test_japanese_vowels_match_ts_files():
    x_train, y_train, x_test, y_test = load_japanese_vowels()
    for part, x, y in (("TRAIN", x_train, y_train), ("TEST", x_test, y_test)):
        xs, ys = _parse_ts(RAW / "japanese_vowels" / f"JapaneseVowels_{part}.ts")
        np.testing.assert_array_equal(y, ys)
        assert len(x) == len(xs)
        for a, b in zip(x, xs):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- spoken digits


def test_spoken_digits_counts():
    x, y = load_spoken_digits()
    assert len(x) == 3000 and y.shape == (3000,)
    assert all(a.dtype == np.float32 and a.ndim == 2 and a.shape[1] == 13 for a in x)
    assert sum(len(a) for a in x) == 53999
    assert min(len(a) for a in x) == 6 and max(len(a) for a in x) == 92
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [300] * 10)


@needs_raw
def test_spoken_digits_match_original():
    x, y = load_spoken_digits()
    with np.load(RAW / "spoken_digits_mfcc.npz", allow_pickle=False) as d:
        np.testing.assert_array_equal(np.concatenate(x), d["X"])
        np.testing.assert_array_equal([len(a) for a in x], d["lengths"])
        np.testing.assert_array_equal(y, d["y"])


# ---------------------------------------------------------------- KJV


def test_kjv():
    verses = load_kjv()
    assert len(verses) == 31102
    assert verses[0] == ("01001001", "In the beginning God created the heaven and the earth.")
    assert verses[-1][0] == "66022021"
    assert all(len(ref) == 8 and ref.isdigit() for ref, _ in verses)
    assert dict(verses)["43011035"] == "Jesus wept."


def test_kjv_books():
    genesis = load_kjv(1)
    assert len(genesis) == 1533 and {r[:2] for r, _ in genesis} == {"01"}
    both = load_kjv([66, 1])
    assert len(both) == 1533 + 404
    assert both[0][0] == "01001001" and both[-1][0] == "66022021"
    with pytest.raises(ValueError, match="1 \\(Genesis\\) to 66"):
        load_kjv([67])
    with pytest.raises(TypeError, match="book numbers"):
        load_kjv(["Genesis"])


@needs_raw
def test_kjv_matches_original():
    with gzip.open(RAW / "kjv_verses.tsv.gz", "rt", encoding="utf-8") as f:
        raw = [line.rstrip("\n").split("\t") for line in f]
    verses = load_kjv()
    assert [int(r) for r, _ in verses] == [int(r) for r, _ in raw]
    assert [t for _, t in verses] == [t for _, t in raw]


# ---------------------------------------------------------------- helpers


def test_pad_sequences():
    seqs = [np.ones((3, 2)), 2 * np.ones((1, 2)), np.arange(10.0).reshape(5, 2)]
    x, lengths = pad_sequences(seqs)
    assert x.shape == (3, 5, 2) and x.dtype == np.float32
    assert lengths.dtype == np.int64 and lengths.tolist() == [3, 1, 5]
    np.testing.assert_array_equal(x[0, :3], 1.0)
    np.testing.assert_array_equal(x[0, 3:], 0.0)
    np.testing.assert_array_equal(x[1, 0], 2.0)
    np.testing.assert_array_equal(x[1, 1:], 0.0)
    np.testing.assert_array_equal(x[2], seqs[2])
    x64, _ = pad_sequences(seqs, dtype=np.float64)
    assert x64.dtype == np.float64
    x1, l1 = pad_sequences([np.array([1, 2, 3]), np.array([4])], dtype=np.int64)
    assert x1.tolist() == [[1, 2, 3], [4, 0, 0]] and l1.tolist() == [3, 1]


def test_pad_sequences_real_data():
    x_train, _, _, _ = load_japanese_vowels()
    x, lengths = pad_sequences(x_train)
    assert x.shape == (270, 26, 12)
    assert lengths.sum() == 4274
    assert x[0, 0, 0] == np.float32(1.860936)


def test_pad_sequences_errors():
    with pytest.raises(ValueError, match="at least one"):
        pad_sequences([])
    with pytest.raises(ValueError, match="share n"):
        pad_sequences([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="must all be 2-D"):
        pad_sequences([np.zeros((2, 3)), np.zeros(2)])


def test_stratified_split():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    train, test = stratified_split(y, 0.2, seed=0)
    assert train.dtype == test.dtype == np.int64
    assert len(test) == 20 and len(train) == 80
    assert np.bincount(y[test]).tolist() == [10, 6, 4]
    assert np.bincount(y[train]).tolist() == [40, 24, 16]
    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(100))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    # reproducible under a seed, different under another
    train2, test2 = stratified_split(y, 0.2, seed=0)
    np.testing.assert_array_equal(test, test2)
    np.testing.assert_array_equal(train, train2)
    _, test3 = stratified_split(y, 0.2, seed=1)
    assert not np.array_equal(test, test3)
    # a Generator is accepted and drawn from
    rng = np.random.default_rng(0)
    _, a = stratified_split(y, 0.2, rng)
    _, b = stratified_split(y, 0.2, rng)
    assert len(a) == len(b) == 20 and not np.array_equal(a, b)


def test_stratified_split_spoken_digits():
    _, y = load_spoken_digits()
    train, test = stratified_split(y, 0.1, seed=42)
    assert np.bincount(y[test]).tolist() == [30] * 10
    assert np.bincount(y[train]).tolist() == [270] * 10


def test_stratified_split_errors():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        stratified_split(y, 1.0, seed=0)
    with pytest.raises(ValueError, match="1-D"):
        stratified_split(y.reshape(2, 2), 0.5, seed=0)
    with pytest.raises(TypeError, match="seed must be"):
        stratified_split(y, 0.5, seed=0.5)
    with pytest.raises(TypeError, match="seed must be"):
        stratified_split(y, 0.5, seed=None)


def test_licenses_cover_every_shipped_file():
    from importlib import resources

    root = resources.files(datasets)
    shipped = sorted(
        p.name for p in root.iterdir() if p.is_file() and not p.name.endswith((".py", ".pyc", ".md"))
    )
    assert shipped == [
        "japanese_vowels.npz",
        "kjv_verses.tsv.gz",
        "spoken_digits_mfcc.npz",
        "stocks_daily.csv.gz",
        "sunspots_monthly.csv",
        "sunspots_yearly.csv",
    ]
    text = root.joinpath("LICENSES.md").read_text(encoding="utf-8")
    for name in shipped:
        assert f"`{name}`" in text
    total = sum(len(root.joinpath(n).read_bytes()) for n in shipped)
    assert total < 6_000_000


def test_monthly_sunspots_are_the_source_values_month_by_month():
    from unrolled.datasets import load_sunspots_monthly
    months, values = load_sunspots_monthly()
    assert months.dtype == np.dtype("datetime64[M]") and months.shape == values.shape == (3120,)
    assert str(months[0]) == "1749-01" and str(months[-1]) == "2008-12"
    assert np.all(np.diff(months).astype(int) == 1)                     # every month, in order
    assert values[0] == 58.0 and values[11] == 85.2 and values[-1] == 0.8
    assert np.all(np.isfinite(values)) and values.min() >= 0
    # the original's 1749 row, and its February 1824 (interpolated by the source)
    source = [58.0, 62.6, 70.0, 55.7, 85.0, 83.5, 94.8, 66.3, 75.9, 75.5, 158.6, 85.2]
    np.testing.assert_array_equal(values[:12], source)


@needs_raw
def test_monthly_sunspots_equal_the_fixed_width_original():
    from unrolled.datasets import load_sunspots_monthly
    want = []
    for line in (RAW / "sunspots_monthly.dat").read_text(encoding="ascii").splitlines():
        cells = line.split()
        if len(cells) == 13 and cells[0].isdigit() and 1749 <= int(cells[0]) <= 2008:
            want.extend(float(c) for c in cells[1:])
    np.testing.assert_array_equal(load_sunspots_monthly()[1], want)
