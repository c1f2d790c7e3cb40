"""The command line on the user's own CSV files: dates, --column, --exog, --fill, bad cells,
and the model files each command serves."""

import numpy as np
import pytest

import unrolled
from unrolled import cli
from unrolled.cli import main
from unrolled.tasks.series import read_csv_series

T = 120                                     # rows of the test series: fit 84, validation 18, test 18


def monthly(n=T, start="2000-01"):
    """n first-of-month dates from ``start``, as text."""
    return [str(d) for d in (np.datetime64(start, "M") + np.arange(n)).astype("datetime64[D]")]


def wave(n=T):
    t = np.arange(n)
    return np.sin(0.3 * t) + 0.5 * np.sin(0.05 * t)


def write_csv(path, header, columns):
    """A CSV file of ``columns`` (lists of cells, numbers written with 6 decimals)."""
    cells = [[c if isinstance(c, str) else f"{c:.6f}" for c in col] for col in columns]
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(row) for row in zip(*cells)) + "\n")
    return path


@pytest.fixture
def dated(tmp_path):
    """date,value: 120 months from 2000-01-01 (the last 2009-12-01)."""
    return write_csv(tmp_path / "dated.csv", ["date", "value"], [monthly(), list(wave())])


def run(capsys, *argv):
    """(exit status, stdout, stderr) of ``unrolled ARGV``."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def table_row(out, label):
    return [float(v) for v in next(line for line in out.splitlines() if line.startswith(label + " ")
                                  and "hidden" not in line).split()[1:]]


@pytest.mark.parametrize("model", cli.MODELS)
def test_a_dated_csv_trains_every_model_and_forecasts_with_dates(tmp_path, capsys, dated, model):
    out_path = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--training", "adam", "--data", dated, "--model", model, "--hidden", "4", "--taps", "3",
                         "--epochs", "3", "--no-progress", "--no-plot", "--out", out_path)
    assert code == 0, err
    assert "dated.csv: 120 rows; target column value (the only numeric column), no exogenous inputs" in out
    assert "dates 2000-01-01 .. 2009-12-01 in column date, monthly" in out
    # the persistence row, computed here: MSE of s(t-1) over var(s on the fit part)
    s = np.round(wave(), 6)
    var = np.var(s[:84])
    persistence = [np.mean((s[a:b] - s[a - 1:b - 1]) ** 2) / var for a, b in ((1, 84), (84, 102), (102, 120))]
    np.testing.assert_allclose(table_row(out, "persistence"), persistence, atol=0.5e-4)

    f = unrolled.load(out_path)                                # a whole Forecaster: nets, scaling, dates, history
    assert isinstance(f, unrolled.Forecaster)
    assert f.names_ == ["value"] and f.exog_names_ == [] and f.axis_.description.endswith("monthly")
    np.testing.assert_array_equal(f.history_[:, 0], s)          # the test part extends it: nothing refitted
    assert f.models_[0].members[0].n_in == (0 if model == "narx" else 1)     # no exogenous column
    # the table's model row is the forecaster's own one-step forecasts of the test part
    one = f.one_step()[:, 0]
    assert table_row(out, NAMES[model])[2] == pytest.approx(np.mean((one[102:] - s[102:]) ** 2) / var, abs=0.5e-4)
    code, out, err = run(capsys, "forecast", out_path, "--horizon", "3", "--no-plot", "--csv", tmp_path / "f.csv")
    assert code == 0, err                                       # no --data: the file holds the history
    rows = [line.split() for line in out.splitlines() if line.startswith("2010-")]
    assert [r[0] for r in rows] == ["2010-01-01", "2010-02-01", "2010-03-01"]
    np.testing.assert_allclose([float(r[1]) for r in rows], f.predict(3), rtol=1e-3, atol=1e-4)
    code, out, err = run(capsys, "forecast", out_path, "--data", dated, "--horizon", "1", "--no-plot")
    assert code == 0 and "dated.csv holds no rows past the history: nothing to extend" in out


NAMES = {"narx": "NARX", "tdnn": "TDNN", "rnn": "RNN", "elman": "Elman", "jordan": "Jordan"}


def test_forecast_data_extends_a_saved_forecasters_history(tmp_path, capsys):
    s = np.round(wave(), 6)
    short = write_csv(tmp_path / "short.csv", ["date", "value"], [monthly(100), list(wave(100))])
    whole = write_csv(tmp_path / "whole.csv", ["date", "value"], [monthly(), list(wave())])
    tail = write_csv(tmp_path / "tail.csv", ["date", "value"], [monthly()[100:], list(wave()[100:])])
    m = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--training", "adam", "--data", short, "--hidden", "3", "--taps", "3",
                         "--epochs", "5", "--no-progress", "--no-plot", "--out", m)
    assert code == 0, err
    fitted = unrolled.load(m)
    expected = fitted.update(s[100:]).predict(2)          # the same nets, the history extended
    for data in (whole, tail):                                  # the whole series, or only the rows past it
        code, out, err = run(capsys, "forecast", m, "--data", data, "--horizon", "2", "--no-plot",
                             "--csv", tmp_path / "f.csv")
        assert code == 0, err
        assert "history extended by 20 rows of " + data.name + " (2008-05-01 .. 2009-12-01), not refitted" in out
        rows = [line.split() for line in out.splitlines() if line.startswith("2010-")]
        assert [r[0] for r in rows] == ["2010-01-01", "2010-02-01"]
        np.testing.assert_allclose([float(r[1]) for r in rows], expected, rtol=1e-3, atol=1e-4)
    # a file that is another series, or skips a month, is refused, naming where
    other = s.copy()
    other[50] += 1
    revised = write_csv(tmp_path / "revised.csv", ["date", "value"], [monthly(), list(other)])
    code, out, err = run(capsys, "forecast", m, "--data", revised, "--no-plot")
    assert code == 2 and "value at 2004-03-01 is" in err and "must continue the series" in err
    gap = write_csv(tmp_path / "gap.csv", ["date", "value"], [monthly()[101:], list(wave()[101:])])
    code, out, err = run(capsys, "forecast", m, "--data", gap, "--no-plot")
    assert code == 2 and "expected 2008-05-01, got 2008-06-01" in err


@pytest.mark.parametrize("header, dates, step, labels", [
    ("year", [str(1800 + i) for i in range(40)], "yearly", ["1840", "1841"]),
    ("month", [str(np.datetime64("2001-03") + i) for i in range(40)], "monthly", ["2004-07", "2004-08"]),
    ("date", [str(np.datetime64("2020-01-01") + 7 * i) for i in range(40)], "every 7 days",
     ["2020-10-07", "2020-10-14"]),
    ("date", [str(d) for d in np.busday_offset(np.datetime64("2020-01-06"), np.arange(40))],
     "business days, Monday to Friday", ["2020-03-02", "2020-03-03"]),
    ("date", [str(d) for d in (np.datetime64("2000-02") + np.arange(40)).astype("datetime64[D]") - 1],
     "monthly, month ends", ["2003-05-31", "2003-06-30"]),
    ("date", [f"{1990 + i}-06-30" for i in range(40)], "yearly, month ends", ["2030-06-30", "2031-06-30"]),
    ("date", [f"{1990 + i}-06-15" for i in range(40)], "yearly", ["2030-06-15", "2031-06-15"]),
    ("date", [f"{1990 + 2 * i}-01-01" for i in range(40)], "every 2 years", ["2070-01-01", "2072-01-01"]),
    ("date", [str(d) for d in (np.datetime64("1999-03") + 12 * np.arange(40)).astype("datetime64[D]") - 1],
     "yearly, month ends", ["2039-02-28", "2040-02-29"]),
    ("time", [str(np.datetime64("2020-01-01T00:00") + np.timedelta64(15 * i, "m")).replace("T", " ")
              for i in range(40)], "every 15 minutes", ["2020-01-01 10:00", "2020-01-01 10:15"]),
    ("when", [str(np.datetime64("2020-01-01T00:00:00") + np.timedelta64(3600 * i, "s")) for i in range(40)],
     "hourly", ["2020-01-02T16:00:00", "2020-01-02T17:00:00"]),
])
def test_the_dates_that_continue_a_regular_step(tmp_path, header, dates, step, labels):
    data = read_csv_series(write_csv(tmp_path / "s.csv", [header, "value"], [dates, list(wave(40))]))
    assert data.date_column == header and data.step.text == step
    assert data.step.after(data.dates[-1], 2) == labels
    assert data.name == "value"
    np.testing.assert_allclose(data.values, np.round(wave(40), 6))


def test_irregular_dates_label_forecasts_by_step(tmp_path, capsys):
    days = np.datetime64("2020-01-01") + np.cumsum(np.r_[0, np.arange(T - 1) % 3 + 1])
    path = write_csv(tmp_path / "irr.csv", ["date", "value"], [[str(d) for d in days], list(wave())])
    code, out, err = run(capsys, "train", "--training", "adam", "--data", path, "--model", "rnn", "--hidden", "3", "--epochs", "2",
                         "--no-progress", "--no-plot", "--out", tmp_path / "m.npz")
    assert code == 0, err
    assert f"dates 2020-01-01 .. {days[-1]} in column date, irregular (steps of 1 days to 3 days)" in out
    code, out, err = run(capsys, "forecast", tmp_path / "m.npz", "--horizon", "2", "--no-plot")
    assert code == 0, err
    assert "value: history steps 0 .. 119; closed-loop forecasts" in out       # no regular dates: numbered steps
    assert [line.split()[0] for line in out.splitlines()[2:4]] == ["120", "121"]


@pytest.mark.parametrize("dates, lost, step, shown", [
    ([str(d) for d in np.datetime64("2023-01-01") + np.arange(T)], [20, 21, 50], "daily",
     "2023-01-21, 2023-01-22, 2023-02-20"),
    (monthly(), [7], "monthly", "2000-08-01"),
])
def test_dates_missing_from_a_regular_grid_are_named_or_filled(tmp_path, capsys, dates, lost, step, shown):
    v, x = wave(), np.cos(0.2 * np.arange(T))
    keep = np.setdiff1d(np.arange(T), lost)
    path = write_csv(tmp_path / "lost.csv", ["date", "value", "x"],
                     [[dates[i] for i in keep], list(np.round(v[keep], 6)), list(np.round(x[keep], 6))])
    with pytest.raises(ValueError, match=f"column date lacks {len(lost)} dates? of its {step} grid \\({shown}\\); "
                                         "--fill interpolates the values at them"):
        read_csv_series(path, exog=["x"])
    data = read_csv_series(path, exog=["x"], fill=True)
    assert [str(d) for d in data.dates] == dates and data.step.text == step
    for got, full in ((data.values, v), (data.exogenous[:, 0], x)):
        want = np.interp(np.arange(T), keep, np.round(full[keep], 6))     # the kept rows, the lost ones between
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert f"filled the {len(lost)} missing date{'s' if len(lost) > 1 else ''} of column date ({shown})" in \
        " ".join(data.notes)
    code, out, err = run(capsys, "train", "--training", "adam", "--data", path, "--model", "rnn", "--hidden", "3",
                         "--epochs", "2", "--no-progress", "--no-plot", "--out", tmp_path / "m.npz")
    assert code == 2 and "--fill interpolates the values at them" in err


def test_trading_days_and_sparse_dates_are_no_grid_with_gaps(tmp_path):
    from unrolled.datasets import load_stock_panel
    dates, prices = load_stock_panel(["IBM"], "adj_close")        # exchange holidays left out of Monday-Friday
    days = [str(d)[:10] for d in dates[:T]]
    assert np.all(np.is_busday(np.array(days, dtype="datetime64[D]")))
    path = write_csv(tmp_path / "ibm.csv", ["date", "close"], [days, list(prices[:T, 0])])
    data = read_csv_series(path)
    assert data.step is None and "irregular" in " ".join(data.notes)     # numbered steps, nothing filled
    rng = np.random.default_rng(0)
    sparse = np.sort(rng.choice(150, 100, replace=False))          # a third of the days absent: no gaps, a pattern
    path = write_csv(tmp_path / "sparse.csv", ["date", "value"],
                     [[str(np.datetime64("2023-01-01") + int(i)) for i in sparse], list(wave(100))])
    assert read_csv_series(path).step is None


def test_a_year_column_is_dates_only_when_named_so(tmp_path):
    years = [str(1900 + i) for i in range(T)]
    named = read_csv_series(write_csv(tmp_path / "a.csv", ["year", "value"], [years, list(wave())]))
    assert named.date_column == "year" and named.step.text == "yearly"
    other = read_csv_series(write_csv(tmp_path / "b.csv", ["count", "value"], [years, list(wave())]))
    assert other.date_column is None and other.name == "value"
    assert "the last of the numeric columns count, value" in other.notes[0]
    chosen = read_csv_series(tmp_path / "b.csv", date="count")          # --date says which holds the dates
    assert chosen.date_column == "count" and chosen.name == "value" and chosen.step.text == "yearly"
    with pytest.raises(ValueError, match="--date column value does not hold dates"):
        read_csv_series(tmp_path / "b.csv", date="value")
    with pytest.raises(ValueError, match="no column 'when' \\(--date\\); the columns are count, value"):
        read_csv_series(tmp_path / "b.csv", date="when")


def test_column_and_exog_pick_the_target_and_the_inputs(tmp_path, capsys):
    a, b, c = wave(), np.cos(0.3 * np.arange(T)), np.linspace(-1, 1, T) ** 3
    path = write_csv(tmp_path / "abc.csv", ["date", "a", "b", "c"], [monthly(), list(a), list(b), list(c)])
    m = tmp_path / "m.npz"
    common = ["--hidden", "3", "--epochs", "2", "--no-progress", "--no-plot", "--out", m]
    code, out, err = run(capsys, "train", "--training", "adam", "--data", path, "--model", "rnn", *common)
    assert code == 0, err
    assert "target column c (the last of the numeric columns a, b, c; --column picks another)" in out
    assert out.splitlines()[3].startswith("c: RNN hidden=[3] trained 2 epochs")

    code, out, err = run(capsys, "train", "--training", "adam", "--data", path, "--model", "rnn", "--column", "a", "--exog", "b,c",
                         *common)
    assert code == 0, err
    assert "target column a (--column), exogenous inputs b, c (a forecast reads them up to the step before)" in out
    f = unrolled.load(m)
    assert f.names_ == ["a"] and f.exog_names_ == ["b", "c"] and f.models_[0].members[0].n_in == 3   # a, b and c
    # the forecast of a(t) reads b and c up to t - 1: the forecaster's X is them shifted by one row
    np.testing.assert_array_equal(f.history_[:, 0], np.round(a, 6)[1:])
    s = np.round(a, 6)[1:]
    var = np.var(s[:83])                        # 119 steps: fit 83, validation 18, test 18
    assert table_row(out, "persistence")[0] == pytest.approx(np.mean(np.diff(s[:83]) ** 2) / var, abs=0.5e-4)
    code, out, err = run(capsys, "forecast", m, "--data", path, "--column", "a")
    assert code == 2 and "reads the exogenous inputs b, c, whose future values the file cannot hold" in err

    code, out, err = run(capsys, "train", "--training", "adam", "--data", path, "--exog", "b", *common)           # a NARX
    assert code == 0, err
    assert "target column c (the last of the numeric columns a, c; --column picks another), exogenous " \
           "inputs b" in out
    assert unrolled.load(m).models_[0].members[0].n_in == 1

    for argv, message in [(["--column", "d"], "abc.csv: no column 'd'; the columns are date, a, b, c"),
                          (["--exog", "a,zz"], "abc.csv: no column 'zz'"),
                          (["--column", "date"], "abc.csv: column date holds dates, not values"),
                          (["--column", "a", "--exog", "a"], "--exog names a twice or as the --column target")]:
        code, out, err = run(capsys, "train", "--training", "adam", "--data", path, *argv, *common)
        assert code == 2 and err.startswith("unrolled train: error: ") and message in err
        assert len(err.splitlines()) == 1


def csv_with(tmp_path, line, cell=None, row=None):
    """The dated CSV with data ``line`` (file line, from 2) replaced: its value ``cell``, or the whole ``row``."""
    dates, values = monthly(), [f"{v:.6f}" for v in wave()]
    rows = [f"{d},{v}" for d, v in zip(dates, values)]
    rows[line - 2] = row if row is not None else f"{dates[line - 2]},{cell}"
    path = tmp_path / "bad.csv"
    path.write_text("date,value\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("change, message", [
    (dict(row="2000-11-01,0.5,7"), "bad.csv line 12: expected 2 cells like the header, got 3"),
    (dict(row="2000-11-01"), "bad.csv line 12: expected 2 cells like the header, got 1"),
    (dict(cell="abc"), "bad.csv line 12, column value: expected a number, got 'abc'"),
    (dict(cell=""), "bad.csv line 12, column value: expected a number, got an empty cell"),
    (dict(cell="nan"), "bad.csv line 12, column value: expected a finite number, got 'nan'"),
    (dict(cell="-inf"), "bad.csv line 12, column value: expected a finite number, got '-inf'"),
    (dict(row="2000-09-01,0.5"), "bad.csv line 12, column date: dates must increase, but 2000-09-01 follows "
                                 "2000-10-01"),
    (dict(row="2000-02-30,0.5"), "bad.csv line 12, column date: expected a date written YYYY-MM-DD like the "
                                 "column's others, got '2000-02-30'"),
])
def test_each_bad_cell_is_one_line_naming_line_and_column(tmp_path, capsys, change, message):
    path, out_path = csv_with(tmp_path, 12, **change), tmp_path / "m.npz"
    for model in ("narx", "rnn"):
        code, out, err = run(capsys, "train", "--training", "adam", "--data", path, "--model", model, "--epochs", "2", "--no-progress",
                             "--no-plot", "--out", out_path)
        assert code == 2
        assert err.startswith(f"unrolled train: error: {path} line 12") and message.split(" ", 1)[1] in err
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert not out_path.exists()


@pytest.mark.parametrize("text, message", [
    ("date,value\n" + "".join(f"{d},1.5\n" for d in monthly()),
     "column value is constant (every value 1.5): nothing to learn or standardise"),
    ("", "empty file; expected a header row"),
    ("2000-01-01,1.0\n2000-02-01,2.0\n2000-03-01,3.0\n", "line 1: expected a header row naming the columns, got "
                                                         "values (2000-01-01, 1.0)"),
    ("date,value\n2000-01-01,1.0\n", "expected a header row and at least two rows of values, got 1 row of values"),
    ("date,value\n" + "".join(f"{d},{v}\n" for d, v in zip(monthly(20), wave(20))),
     "value: 20 values are too few; the split 70/15/15 and the AR(12) baseline need at least 36"),
    ("date,date\n2000-01-01,1\n", "line 1: the header row names column 'date' twice"),
    ("date,name\n" + "".join(f"{d},x{i}\n" for i, d in enumerate(monthly())),
     "no column of numbers to forecast; the columns are date (dates), name (text)"),
    ("date,value\n2000-01-01," + "9" * 200_000 + "\n", "line 2: not a readable CSV row (field larger than field "
                                                      "limit"),
])
def test_files_that_cannot_be_a_series_are_one_line_errors(tmp_path, capsys, text, message):
    path = tmp_path / "f.csv"
    path.write_text(text)
    code, out, err = run(capsys, "train", "--training", "adam", "--data", path, "--epochs", "2", "--no-progress", "--no-plot",
                         "--out", tmp_path / "m.npz")
    assert code == 2 and message in err and err.startswith("unrolled train: error: ")
    assert len(err.splitlines()) == 1 and not (tmp_path / "m.npz").exists()


def test_a_file_not_utf8_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "latin.csv"
    path.write_bytes("date,valeur \xe9\n".encode("latin-1") + b"2000-01-01,1\n2000-02-01,2\n")
    code, out, err = run(capsys, "train", "--training", "adam", "--data", path, "--no-progress", "--no-plot", "--out", tmp_path / "m")
    assert code == 2 and "not a UTF-8 text file (byte 0xe9 at offset 12)" in err and len(err.splitlines()) == 1


def test_fill_interpolates_and_says_so(tmp_path, capsys):
    dates, v = monthly(), np.round(wave(), 6)
    cells = [f"{x:.6f}" for x in v]
    cells[10], cells[30], cells[31] = "n/a", "", "nan"                  # lines 12, 32 and 33
    path = write_csv(tmp_path / "gaps.csv", ["date", "value"], [dates, cells])
    code, out, err = run(capsys, "train", "--training", "adam", "--data", path, "--model", "rnn", "--fill", "--hidden", "3",
                         "--epochs", "2", "--no-progress", "--no-plot", "--out", tmp_path / "m.npz")
    assert code == 0, err
    assert "filled 3 cells in column value by linear interpolation (lines 12, 32, 33)" in out
    data = read_csv_series(path, fill=True)
    filled = v.copy()
    filled[10] = (v[9] + v[11]) / 2
    filled[30], filled[31] = v[29] + (v[32] - v[29]) / 3, v[29] + 2 * (v[32] - v[29]) / 3
    np.testing.assert_allclose(data.values, filled, rtol=0, atol=1e-12)
    # the persistence row is scored on the filled series
    var = np.var(filled[:84])
    assert table_row(out, "persistence")[0] == pytest.approx(np.mean(np.diff(filled[:84]) ** 2) / var, abs=0.5e-4)
    # forecast reads the file the same way, and says so too
    code, out, err = run(capsys, "forecast", tmp_path / "m.npz", "--data", path, "--fill", "--horizon", "1")
    assert code == 0 and "filled 3 cells in column value" in out and "2010-01-01" in out
    code, out, err = run(capsys, "forecast", tmp_path / "m.npz", "--data", path, "--horizon", "1")
    assert code == 2 and "gaps.csv line 12, column value: expected a number, got 'n/a'" in err


def test_the_plot_of_a_dated_series_is_against_its_dates(tmp_path, capsys, dated, monkeypatch):
    from unrolled.tasks import plots

    seen = {}
    save = plots._save

    def keep(plt, fig, path):
        fig.canvas.draw()
        ax = fig.axes[0]
        seen["x"] = ax.lines[0].get_xdata()
        seen["ticks"] = [t.get_text() for t in ax.get_xticklabels()]
        seen["xlabel"] = ax.get_xlabel()
        save(plt, fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    code, out, err = run(capsys, "train", "--training", "adam", "--data", dated, "--model", "rnn", "--hidden", "3", "--epochs", "2",
                         "--no-progress", "--plot", tmp_path / "p.png", "--out", tmp_path / "m.npz")
    assert code == 0, err
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    x = seen["x"]
    assert np.asarray(x).dtype.kind == "M"                      # datetime64: plotted against the dates
    assert str(np.asarray(x)[0]) == "2008-07-01" and str(np.asarray(x)[-1]) == "2009-12-01"   # the test part
    assert seen["xlabel"] == "date (test part, 2008-07-01 .. 2009-12-01)"
    assert any("2009" in t for t in seen["ticks"]), seen["ticks"]


def unsupported_files(tmp_path):
    from unrolled.models import RNN, BiRNN, CharRNN, Seq2Seq

    files = {"BiRNN": BiRNN(1, 1, hidden=(3,), seed=0), "CharRNN": CharRNN("ab\n", hidden=(3,), seed=0),
             "Seq2Seq": Seq2Seq(RNN(2, 2, hidden=(3,), seed=0), RNN(2, 2, hidden=(3,), seed=1))}
    for name, model in files.items():
        unrolled.save(model, tmp_path / f"{name}.npz")
    return {name: tmp_path / f"{name}.npz" for name in files}


def test_impulse_and_forecast_say_which_models_they_serve(tmp_path, capsys):
    files = unsupported_files(tmp_path)
    serves_impulse = ("unrolled impulse: error: impulse serves the one-way networks of one engine column (RNN, "
                      "TDNN, NARX, Jordan, Elman, StateSpace, CharRNN); this file holds a ")
    serves_forecast = ("unrolled forecast: error: forecast serves the one-step forecasters of one series (NARX, "
                       "TDNN, RNN, Elman, Jordan, StateSpace); this file holds a ")
    for name in ("BiRNN", "Seq2Seq"):
        code, out, err = run(capsys, "impulse", files[name], "--plot", tmp_path / "i.png")
        assert code == 2 and err.startswith(serves_impulse + name + " (") and len(err.splitlines()) == 1
        assert not (tmp_path / "i.png").exists()
    for name, why in [("BiRNN", "it cannot run past the end of the data"),
                      ("CharRNN", "a character model: 'unrolled sample' generates text with it"),
                      ("Seq2Seq", "an encoder-decoder: 'unrolled sample' decodes with it")]:
        code, out, err = run(capsys, "forecast", files[name])
        assert code == 2 and err == serves_forecast + name + " (" + err.split(" (", 2)[2]
        assert why in err and len(err.splitlines()) == 1
    # a character model is an RNN: impulse follows it
    code, out, err = run(capsys, "impulse", files["CharRNN"], "--steps", "5", "--plot", tmp_path / "c.png")
    assert code == 0 and out.startswith("CharRNN: output response to a unit input at t = 0")


def test_options_a_source_does_not_take(tmp_path, capsys, dated):
    for argv, message in [(["--exog", "AAPL"], "--exog applies to stocks and CSV files, not to sunspots"),
                          (["--fill"], "--fill applies to CSV files, not to sunspots"),
                          (["--data", "stocks", "--fill"], "--fill applies to CSV files, not to stocks"),
                          (["--data", "stocks", "--exog", "IBM"], "--exog for stocks names other tickers than "
                                                                  "--column IBM"),
                          (["--task", "reverse", "--fill"], "it takes no --fill"),
                          (["--task", "reverse", "--exog", "a"], "it takes no --exog")]:
        code, out, err = run(capsys, "train", *argv, "--no-progress", "--no-plot", "--out", tmp_path / "m.npz")
        assert code == 2 and message in err and len(err.splitlines()) == 1


def test_an_unexpected_floating_point_error_is_one_line(monkeypatch, capsys, dated):
    from unrolled.tasks import series

    def diverge(*args, **kwargs):
        raise FloatingPointError("the loss is nan at epoch 3\nlower the learning rate")

    monkeypatch.setattr(series, "train_forecaster", diverge)
    code, out, err = run(capsys, "train", "--training", "adam", "--data", dated)
    assert code == 2
    assert err == "unrolled train: error: the loss is nan at epoch 3 lower the learning rate\n"
