"""unrolled.Forecaster: pandas and dates in, dated forecasts out, scaling and differencing
inside, intervals, backtests and saved files, checked against hand-built passes."""

import numpy as np
import pandas as pd
import pytest

import unrolled
from unrolled import Forecaster, backtest
from unrolled.forecasting import _difference, _integrate

FAST = dict(ensemble=1, epochs=15)


def wave(T=120, seed=0, period=12):
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    return 10 + 3 * np.sin(2 * np.pi * t / period) + 0.3 * rng.standard_normal(T)


def test_point_forecast_is_the_narx_closed_loop_on_the_scaled_series():
    y = wave()
    f = Forecaster(lags=4, **FAST).fit(y)
    net = f.models_[0].members[0]
    mean, scale = y.mean(), y.std()
    z = ((y - mean) / scale)[None, :, None]
    by_hand = net.forecast(None, z, 7)[0, :, 0] * scale + mean
    np.testing.assert_allclose(f.predict(7), by_hand, rtol=1e-12)
    np.testing.assert_allclose(f.predict([2, 5]), by_hand[[1, 4]], rtol=1e-12)


def test_a_recurrent_model_reads_the_past_value_and_continues_its_state():
    y = wave(80)
    f = Forecaster("elman", hidden=4, **FAST).fit(y)
    net = f.models_[0].members[0]
    mean, scale = y.mean(), y.std()
    z = (y - mean) / scale
    x = np.concatenate([[0.0], z[:-1]])[None, :, None]
    _, state = net.predict(x, return_state=True)
    prev, out = z[-1], []
    for _ in range(3):
        step, state = net.predict(np.array([[[prev]]]), state=state, return_state=True)
        prev = step[0, 0, 0]
        out.append(prev * scale + mean)
    np.testing.assert_allclose(f.predict(3), out, rtol=1e-12)


@pytest.mark.parametrize("lags", [[1], [1, 1], [12], [12, 1], [12, 1, 1]])
def test_differencing_is_undone_exactly(lags):
    rng = np.random.default_rng(1)
    series = np.cumsum(rng.standard_normal((80, 2)), axis=0)
    w, levels = _difference(series[:60], lags)
    w_all, _ = _difference(series, lags)
    future = w_all[len(w):]                                   # the true increments after step 60
    np.testing.assert_allclose(_integrate(future, levels, lags), series[60:], atol=1e-9)


def test_d1_follows_a_trend_past_the_fitted_range():
    t = np.arange(100.0)
    y = 5 + 0.5 * t + np.sin(t)                                # a trend and a wiggle
    f = Forecaster(d=1, lags=6, **FAST).fit(y)
    pred = f.predict(10)
    truth = 5 + 0.5 * np.arange(100, 110) + np.sin(np.arange(100, 110))
    assert np.max(np.abs(pred - truth)) < 1.5                  # the level is never left behind
    assert pred[-1] > y.max()


def test_dates_in_dates_out():
    y = pd.Series(wave(60), index=pd.date_range("2020-01-01", periods=60, freq="MS"), name="sales")
    f = Forecaster(lags=3, **FAST).fit(y)
    out = f.predict(4)
    assert list(out.index) == list(pd.date_range("2025-01-01", periods=4, freq="MS"))
    assert out.name == "sales" and f.period_ == 12
    p = pd.Series(wave(60), index=pd.period_range("2001Q1", periods=60, freq="Q"))
    assert [str(v) for v in Forecaster(lags=3, **FAST).fit(p).predict([1, 3]).index] == ["2016Q1", "2016Q3"]
    r = pd.Series(wave(60), index=pd.RangeIndex(10, 70))
    assert list(Forecaster(lags=3, **FAST).fit(r).predict(2).index) == [70, 71]
    arr = Forecaster(lags=3, **FAST).fit(wave(60)).predict(2)
    assert isinstance(arr, np.ndarray) and arr.shape == (2,)
    days = np.arange("2024-01-29", "2024-03-29", dtype="datetime64[D]")
    g = Forecaster(lags=3, **FAST).fit(wave(len(days)), index=days)
    assert list(g.future_index(2)) == [np.datetime64("2024-03-29"), np.datetime64("2024-03-30")]


def test_bad_dates_and_values_are_named():
    idx = pd.date_range("2020-01-01", periods=40, freq="D")
    y = pd.Series(wave(40), index=idx)
    with pytest.raises(ValueError, match="duplicated dates: 2020-01-02"):
        Forecaster(**FAST).fit(y.iloc[[0, 1, 1, *range(2, 40)]])
    gappy = y.drop(idx[[10, 11]])
    with pytest.raises(ValueError, match="lacks 2 dates .*2020-01-11, 2020-01-12.*fill='interpolate'"):
        Forecaster(**FAST).fit(gappy)
    filled = Forecaster(fill="interpolate", **FAST).fit(gappy)
    assert "filled 2 values" in filled.notes_[0]
    hole = y.copy()
    hole.iloc[5] = np.nan
    with pytest.raises(ValueError, match="1 missing or non-finite value .*y at 2020-01-06"):
        Forecaster(**FAST).fit(hole)
    with pytest.raises(ValueError, match="irregular: 2020-01-05 12:00:00"):
        Forecaster(**FAST).fit(pd.Series(wave(5), index=pd.to_datetime(
            ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04", "2020-01-05 12:00"], format="ISO8601")))
    with pytest.raises(TypeError, match="column 'y' must hold numbers"):
        Forecaster(**FAST).fit(pd.Series(["a"] * 40, index=idx))
    typo = pd.Series([1.5] * 40, index=idx, dtype=object)
    typo.iloc[7] = "oops"
    with pytest.raises(TypeError, match="row 7 holds 'oops'; pd.to_numeric"):
        Forecaster(**FAST).fit(typo)
    with pytest.raises(ValueError, match="model must be one of"):
        Forecaster("lstm")


def test_exogenous_inputs_are_read_at_the_future_dates():
    idx = pd.date_range("2021-01-04", periods=80, freq="D")
    rng = np.random.default_rng(2)
    x = pd.DataFrame({"price": rng.standard_normal(90)}, index=pd.date_range("2021-01-04", periods=90, freq="D"))
    y = pd.Series(2 * x["price"].to_numpy()[:80] + 0.1 * rng.standard_normal(80), index=idx)
    f = Forecaster(lags=2, **FAST).fit(y, x.iloc[:80])
    pred = f.predict(5, X=x)
    assert np.max(np.abs(pred.to_numpy() - 2 * x["price"].to_numpy()[80:85])) < 0.5
    with pytest.raises(ValueError, match="lacks the exogenous values of the future dates 2021-03-29"):
        f.predict(5, X=x.iloc[:85].drop(x.index[85 - 1]))
    with pytest.raises(ValueError, match="reads the exogenous inputs price"):
        f.predict(3)


def test_several_series_local_and_global():
    df = pd.DataFrame({"a": wave(70, 0), "b": wave(70, 1) * 2},
                      index=pd.period_range("2000-01", periods=70, freq="M"))
    local = Forecaster(lags=3, **FAST).fit(df)
    alone = Forecaster(lags=3, **FAST).fit(df["a"])
    np.testing.assert_allclose(local.predict(4)["a"].to_numpy(), alone.predict(4).to_numpy(), rtol=1e-12)
    pooled = Forecaster(lags=3, strategy="global", **FAST).fit(df)
    out = pooled.predict(4)
    assert list(out.columns) == ["a", "b"] and len(pooled.models_) == 1
    assert np.all(np.abs(out["b"].to_numpy() - 20) < 10)      # each series in its own units


def test_interval_coverage_on_a_held_back_tail():
    rng = np.random.default_rng(3)
    e = rng.standard_normal(400)
    y = np.zeros(400)
    for t in range(1, 400):
        y[t] = 0.7 * y[t - 1] + e[t]
    bt = backtest(Forecaster(lags=2, hidden=2, **FAST), y, horizon=3, folds=30, coverage=0.8)
    covered = bt.covered().mean()
    assert 0.65 <= covered <= 0.93, covered
    rmse = bt.rmse()
    assert rmse["forecaster"][0] < rmse["naive"][0]            # AR(1) with 0.7 beats persistence
    assert abs(rmse["forecaster"][0] - rmse["AR(2)"][0]) < 0.2 * rmse["AR(2)"][0]


def test_backtest_baselines_by_hand():
    y = np.tile(np.arange(6.0), 12)                            # period 6, no noise
    bt = backtest(Forecaster(lags=6, period=6, **FAST), y, horizon=4, folds=3)
    np.testing.assert_allclose(bt.errors["seasonal naive"], 0.0)
    last = len(y) - 4                                          # the last fold's origin
    np.testing.assert_allclose(bt.errors["naive"][-1, :, 0], y[last - 1] - y[last:last + 4])
    ar = 1.0 + 0.5 * np.sin(np.arange(200))
    res = backtest(Forecaster(lags=3, **FAST), ar, horizon=2, folds=2)
    assert np.max(np.abs(res.errors["AR(3)"])) < 1e-8          # a sine is an exact AR(2)
    assert "seasonal naive" in res.table()


def test_saved_forecaster_is_whole(tmp_path):
    y = pd.Series(wave(50), index=pd.date_range("2019-03-31", periods=50, freq="ME"), name="v")
    f = Forecaster(lags=3, d=1, **FAST).fit(y)
    unrolled.save(f, tmp_path / "f.npz")
    g = unrolled.load(tmp_path / "f.npz")
    pd.testing.assert_series_equal(f.predict(6), g.predict(6))
    secs = pd.Series(wave(50), index=pd.date_range("2019-03-31", periods=50, freq="D").as_unit("s"))
    unrolled.save(Forecaster(lags=3, **FAST).fit(secs), tmp_path / "s.npz")
    assert unrolled.load(tmp_path / "s.npz").predict(2).index.unit == "s"     # the resolution kept
    pd.testing.assert_frame_equal(f.predict_interval(6, paths=50), g.predict_interval(6, paths=50))
    with pytest.raises(ValueError, match="not fitted yet"):
        Forecaster().predict(3)


def test_works_inside_timeseriessplit_and_an_sktime_style_loop():
    from sklearn.model_selection import TimeSeriesSplit

    y = wave(150)
    errors, naive = [], []
    for train, test in TimeSeriesSplit(n_splits=3, test_size=6).split(y):
        f = Forecaster(lags=12, **FAST).fit(y[train])
        errors.append(np.mean(np.abs(f.predict(len(test)) - y[test])))
        naive.append(np.mean(np.abs(y[train][-1] - y[test])))
    assert np.mean(errors) < 0.6 * np.mean(naive)
    ys = pd.Series(y, index=pd.date_range("2010-01-01", periods=150, freq="MS"))
    f = Forecaster(lags=12, **FAST)
    f.fit(ys.iloc[:140])
    fh = [1, 2, 3]
    pred = f.predict(fh)
    assert list(pred.index) == list(ys.index[140:143])
    assert np.mean(np.abs(pred.to_numpy() - y[140:143])) < 1.0


def test_unrolled_forecast_of_a_saved_forecaster_writes_dated_csv_and_png(tmp_path, capsys):
    from unrolled.cli import main

    y = pd.Series(wave(60), index=pd.date_range("2015-01-01", periods=60, freq="MS"), name="sales")
    f = Forecaster(lags=3, **FAST).fit(y)
    unrolled.save(f, tmp_path / "sales.npz")
    assert main(["forecast", str(tmp_path / "sales.npz"), "--horizon", "4"]) == 0
    rows = (tmp_path / "sales-forecast.csv").read_text().splitlines()
    assert rows[0] == "date,sales,sales_lower,sales_upper"
    assert [r.split(",")[0] for r in rows[1:]] == ["2020-01-01", "2020-02-01", "2020-03-01", "2020-04-01"]
    table = np.array([[float(v) for v in r.split(",")[1:]] for r in rows[1:]])
    np.testing.assert_allclose(table[:, 0], f.predict(4).to_numpy(), rtol=1e-15)
    band = f.predict_interval(4, coverage=0.9, paths=1000, seed=0)
    np.testing.assert_allclose(table[:, 1:], band.to_numpy(), rtol=1e-15)
    assert (tmp_path / "sales-forecast.png").stat().st_size > 10_000
    assert (tmp_path / "sales-residuals.png").stat().st_size > 10_000
    assert "2020-01-01" in capsys.readouterr().out
    assert main(["forecast", str(tmp_path / "sales.npz"), "--data", "stocks"]) != 0
    assert "must continue the series the forecaster was fitted on" in capsys.readouterr().err


def test_update_extends_the_history_without_refitting():
    y = pd.Series(wave(80), index=pd.date_range("2001-01-01", periods=80, freq="MS"))
    f = Forecaster(lags=3, **FAST).fit(y.iloc[:70])
    weights = {k: v.copy() for k, v in f.params.items()}
    f.update(y.iloc[70:])
    assert all(np.array_equal(weights[k], v) for k, v in f.params.items())
    net = f.models_[0].members[0]
    w = y.iloc[:70].to_numpy()
    mean, scale = w.mean(), w.std()                         # the scaling stays as fitted
    z = ((y.to_numpy() - mean) / scale)[None, :, None]
    np.testing.assert_allclose(f.predict(3).to_numpy(), net.forecast(None, z, 3)[0, :, 0] * scale + mean,
                               rtol=1e-12)
    assert str(f.predict(1).index[0].date()) == "2007-09-01"
    with pytest.raises(ValueError, match="must continue the history"):
        f.update(y.iloc[75:])


def test_what_users_pass_is_read_as_they_mean_it():
    idx = pd.date_range("2020-01-01", periods=64)
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.standard_normal(64), "b": np.arange(64.0)}, index=idx)
    y = pd.Series(wave(64), index=idx)
    f = Forecaster(lags=2, **FAST).fit(y[:60], X[:60])
    pd.testing.assert_series_equal(f.predict(4, X[60:][["b", "a"]]), f.predict(4, X[60:]))   # by name
    with pytest.raises(ValueError, match="the Series 'b'; the forecaster was fitted on"):
        Forecaster(lags=2, **FAST).fit(y[:60], X["a"][:60]).predict(2, X["b"][60:])
    with pytest.raises(ValueError, match=r"X lacks 60 of y's dates \(2020-01-01"):
        Forecaster(lags=2, **FAST).fit(y[:60], X[:60].set_axis(idx[:60] + pd.Timedelta(days=100)))
    with pytest.raises(ValueError, match="X lacks 10 of y's dates"):
        Forecaster(lags=2, fill="interpolate", **FAST).fit(y[:60], X[:50])
    with pytest.raises(ValueError, match="X has duplicated dates"):
        Forecaster(lags=2, **FAST).fit(y[:60], pd.concat([X[:60], X[:1]]))
    out = f.predict([3, 1], X[60:])                           # the steps in the order asked
    assert list(out.index) == [idx[62], idx[60]]
    np.testing.assert_allclose(out.to_numpy(), f.predict(3, X[60:]).to_numpy()[[2, 0]])
    df = pd.DataFrame({0: wave(40), 1: wave(40, 1)}, index=pd.RangeIndex(40))
    assert list(Forecaster(lags=2, **FAST).fit(df).predict(2).columns) == [0, 1]
    months = pd.date_range("2020-01-01", periods=60, freq="MS").to_numpy()      # datetime64[us] or [ns]
    g = Forecaster(lags=2, **FAST).fit(wave(60), index=months)
    assert g.period_ == 12 and str(g.future_index(1)[0]) == "2025-01-01"
    weeks = np.datetime64("2024-01-01", "W") + np.arange(60)
    assert Forecaster(lags=2, **FAST).fit(wave(60), index=weeks).future_index(1)[0] == weeks[-1] + 1
    bme = pd.Series(wave(80), index=pd.date_range("2015-01-30", periods=80, freq="BME"))
    assert Forecaster(lags=2, D=1, **FAST).fit(bme).period_ == 12
    with pytest.raises(ValueError, match="y is empty"):
        Forecaster(**FAST).fit(np.array([]))


def test_without_matplotlib_the_forecast_is_written_and_says_no_plot(tmp_path, capsys, monkeypatch):
    import sys

    from unrolled.cli import main

    f = Forecaster(lags=3, **FAST).fit(wave(40))
    unrolled.save(f, tmp_path / "w.npz")
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib now raises ImportError
    assert main(["forecast", str(tmp_path / "w.npz"), "--horizon", "2"]) == 0
    assert "no plot written: matplotlib is not installed (pip install 'unrolled[plot]')" in capsys.readouterr().out
    assert (tmp_path / "w-forecast.csv").exists() and not (tmp_path / "w-forecast.png").exists()


def test_residuals_and_their_autocorrelation_by_hand(tmp_path):
    from unrolled.tasks.plots import plot_training

    y = wave(90)
    f = Forecaster(lags=3, **FAST).fit(y)
    r = f.residuals()[:, 0]
    np.testing.assert_allclose(r, y - f.one_step()[:, 0])
    e = r[np.isfinite(r)]
    assert len(e) == 90 - 3                                     # the warm-up steps have no forecast
    e = e - e.mean()
    acf, bound = f.residual_acf(5)
    by_hand = [np.sum(e[k:] * e[:len(e) - k]) / np.sum(e * e) for k in range(6)]
    np.testing.assert_allclose(acf[:, 0], by_hand, rtol=1e-12)
    assert bound == pytest.approx(1.96 / np.sqrt(87))
    plot_training(f.histories_[0], tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 10_000


def test_validation_is_the_tail_adams_early_stopping_watches():
    y = np.sin(0.3 * np.arange(60))
    f = Forecaster(training="adam", lags=3, hidden=3, epochs=4, validation=0.25, seed=0).fit(y)
    # the stopping epoch is the best on the last 15 of the 60 steps: the validation curve is theirs
    h = f.histories_[0][0]
    assert len(h.val_loss) == 4 and h.best_epoch == int(np.argmin(h.val_loss)) == 3
    r = f.residuals()[:, 0] / f._fitted["scale"][0]             # one-step errors as the net saw them (scaled)
    assert h.val_loss[3] == pytest.approx(np.sum(r[-15:] ** 2), rel=1e-6)      # float32 nets
    for bad, error, match in [(0.0, ValueError, "strictly between 0 and 1"), (1.0, ValueError, "strictly"),
                              (True, ValueError, "strictly")]:
        with pytest.raises(error, match=match):
            Forecaster(training="adam", validation=bad)
    with pytest.raises(ValueError, match="needs training='adam'"):
        Forecaster(validation=0.2)


def test_update_takes_one_new_row_and_names_a_row_that_does_not_follow():
    y = pd.Series(np.sin(0.3 * np.arange(48)), index=pd.date_range("2000-01", periods=48, freq="MS"))
    base = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0).fit(y[:40])
    one = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0).fit(y[:40]).update(y[40:41])
    two = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0).fit(y[:40]).update(y[40:41]).update(y[41:42])
    both = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0).fit(y[:40]).update(y[40:42])
    assert one.predict(1).index[0] == pd.Timestamp("2003-06-01")
    pd.testing.assert_series_equal(two.predict(3), both.predict(3))
    with pytest.raises(ValueError, match="expected 2003-05-01 next, got 2003-11-01"):
        base.update(y[46:47])
    months = np.arange("2000-01", "2004-01", dtype="datetime64[M]")
    f = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0).fit(y.to_numpy()[:40], index=months[:40])
    f.update(y.to_numpy()[40:41], index=months[40:41])
    assert str(f.future_index(1)[0]) == "2003-06"
    np.testing.assert_array_equal(f.predict(3), one.predict(3).to_numpy())
    with pytest.raises(ValueError, match="expected 2003-06 next, got 2003-07"):
        f.update(y.to_numpy()[42:43], index=months[42:43])


def test_update_names_a_bad_new_value_by_its_own_date_and_fills_it_from_the_history():
    y = pd.Series(np.arange(40.0), index=pd.date_range("2000-01", periods=40, freq="MS"), name="sales")
    new = pd.Series([40.0, np.nan, 42.0], index=pd.date_range("2003-05", periods=3, freq="MS"), name="sales")
    f = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0).fit(y)
    with pytest.raises(ValueError, match=r"1 missing or non-finite value \(sales at 2003-06-01"):
        f.update(new)
    filled = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0, fill="interpolate").fit(y)
    filled.update(new.iloc[:2])                 # a bad last value: the last finite one carried (40)
    assert "sales at 2003-06-01" in filled.notes_[-1]
    filled.update(pd.Series([np.inf], index=pd.date_range("2003-07", periods=1, freq="MS"), name="sales"))
    assert "sales at 2003-07-01" in filled.notes_[-1]   # one bad value alone: read against the history
    filled.update(pd.Series([np.nan, 46.0], index=pd.date_range("2003-08", periods=2, freq="MS"), name="sales"))
    np.testing.assert_allclose(filled._state()["values"][-6:, 0], [39, 40, 40, 40, 43, 46])


def test_update_reads_a_pandas_x_at_the_new_dates_only():
    y = pd.Series(np.sin(0.3 * np.arange(48)), index=pd.date_range("2000-01", periods=48, freq="MS"))
    X = pd.DataFrame({"a": np.cos(np.arange(48))}, index=y.index)
    new_only = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0).fit(y[:40], X[:40])
    new_only.update(y[40:42], X[40:42])
    everything = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0).fit(y[:40], X[:40])
    everything.update(y[40:42], X)
    pd.testing.assert_series_equal(new_only.predict(2, X[42:44]), everything.predict(2, X[42:44]))
    with pytest.raises(ValueError, match="X lacks 1 of y's dates \\(2003-06-01\\)"):
        Forecaster(training="adam", lags=3, hidden=3, epochs=2).fit(y[:40], X[:40]).update(y[40:42], X[40:41])


def test_a_custom_business_calendar_keeps_its_holidays_through_save_and_load(tmp_path):
    calendar = pd.offsets.CustomBusinessDay(holidays=["2020-01-20", "2020-02-17", "2020-03-16"])
    y = pd.Series(np.sin(0.3 * np.arange(30)), index=pd.date_range("2020-01-02", periods=30, freq=calendar))
    f = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0).fit(y[:20])   # a holiday inside: no gap
    future = f.future_index(30)
    assert not future.isin(pd.to_datetime(["2020-02-17", "2020-03-16"])).any()
    assert future[:10].equals(y.index[20:])
    unrolled.save(f, tmp_path / "c.npz")
    g = unrolled.load(tmp_path / "c.npz")
    assert g.future_index(30).equals(future)
    np.testing.assert_array_equal(g.predict(5).to_numpy(), f.predict(5).to_numpy())


def test_time_zones_save_by_a_name_that_gives_them_back(tmp_path):
    import datetime

    import dateutil.tz

    for tz, name in [(dateutil.tz.gettz("Europe/Berlin"), "Europe/Berlin"), (dateutil.tz.tzutc(), "UTC"),
                     (datetime.timezone(datetime.timedelta(hours=1)), "UTC+01:00")]:
        y = pd.Series(np.sin(0.3 * np.arange(40)), index=pd.date_range("2000-03-20", periods=40, freq="D", tz=tz))
        f = Forecaster(training="adam", lags=3, hidden=3, epochs=2, seed=0).fit(y)
        unrolled.save(f, tmp_path / "tz.npz")
        g = unrolled.load(tmp_path / "tz.npz")
        ours, theirs = g.predict(3), f.predict(3)
        assert str(ours.index.tz) == name
        assert (ours.index.tz_localize(None) == theirs.index.tz_localize(None)).all()   # the same wall clock
        np.testing.assert_array_equal(ours.to_numpy(), theirs.to_numpy())


def test_the_sktime_adapter_without_sktime_names_the_extra():
    import subprocess
    import sys

    code = ("import sys; sys.modules['sktime'] = None\n"
            "try:\n    import unrolled.sktime\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "unrolled.sktime needs sktime" in out and "pip install 'unrolled[sktime]'" in out


def test_numpy_columns_take_the_names_given():
    y, x = wave(60), np.cos(np.arange(60))
    f = Forecaster(training="adam", lags=3, hidden=2, epochs=2).fit(y, x, names=["sales"], exog_names=["price"])
    assert f.names_ == ["sales"] and f.exog_names_ == ["price"]
    with pytest.raises(ValueError, match="expected 1 names, one per column of y, got 2"):
        Forecaster(training="adam", lags=3, hidden=2, epochs=2).fit(y, names=["a", "b"])
    with pytest.raises(ValueError, match="names its own columns"):
        Forecaster(training="adam", lags=3, hidden=2, epochs=2).fit(pd.Series(y), names=["a"])


def test_a_series_of_huge_finite_values_forecasts_as_the_same_series_at_unit_scale():
    y = np.sin(np.arange(60) / 3.0)
    unit = Forecaster(training="adam", lags=3, hidden=3, epochs=3, seed=0).fit(y).predict(3)
    for k in (1e160, 1e300):                       # the squares of these overflow float64
        huge = Forecaster(training="adam", lags=3, hidden=3, epochs=3, seed=0).fit(y * k).predict(3)
        np.testing.assert_allclose(huge / k, unit, rtol=1e-12)


def test_a_ragged_list_is_named_as_one():
    v = np.sin(np.arange(80) / 3.0)
    with pytest.raises(ValueError, match=r"expected y of shape \(T,\) or \(T, columns\), got rows of different "
                                         r"lengths \(a ragged list\); series of different lengths take one"):
        Forecaster(training="adam", epochs=1).fit([list(v[:50]), list(v)])


def test_update_with_another_number_of_columns_is_named_before_any_fill():
    f = Forecaster(training="adam", lags=3, hidden=3, epochs=1, seed=0, fill="interpolate").fit(np.arange(30.0))
    with pytest.raises(ValueError, match=r"expected the series \['y'\], got \['y0', 'y1'\]"):
        f.update(np.array([[1.0, np.nan], [2.0, 3.0]]))
