"""unrolled.sktime.SktimeForecaster under sktime's own forecaster checks, and against the
Forecaster it wraps. These run in their own environment (``pip install ".[sktime]"``,
the second step of .ci/run), since sktime pins an older pandas than the main tests use."""

import numpy as np
import pandas as pd
import pytest
from sktime.forecasting.base import ForecastingHorizon
from sktime.split import temporal_train_test_split
from sktime.utils.estimator_checks import parametrize_with_checks

from unrolled import Forecaster
from unrolled.sktime import SktimeForecaster


@pytest.mark.filterwarnings("default")          # sktime's checks warn about its own optional packages
@parametrize_with_checks(SktimeForecaster)
def test_sktimes_own_checks(obj, test_name):
    """Every check sktime runs on a forecaster (754 of them on sktime 1.2) passes."""
    from sktime.utils.estimator_checks import check_estimator

    check_estimator(obj, tests_to_run=test_name, raise_exceptions=True)


def monthly(n=72, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.Series(10 + 3 * np.sin(2 * np.pi * t / 12) + 0.3 * rng.standard_normal(n),
                     index=pd.period_range("2000-01", periods=n, freq="M"), name="sales")


SETTINGS = dict(training="adam", lags=12, hidden=3, epochs=30, seed=0)


def test_forecasts_are_the_wrapped_forecasters():
    y = monthly()
    y_train, y_test = temporal_train_test_split(y, test_size=6)
    fh = ForecastingHorizon(np.arange(1, 7), is_relative=True)
    ours = SktimeForecaster(**SETTINGS).fit(y_train, fh=fh)
    direct = Forecaster(**SETTINGS).fit(y_train)
    pred = ours.predict()
    assert pred.index.equals(y_test.index) and pred.name == "sales"
    np.testing.assert_array_equal(pred.to_numpy(), direct.predict(6).to_numpy())
    band = ours.predict_interval(coverage=[0.8, 0.5])
    assert list(band.columns) == [("sales", c, side) for c in (0.8, 0.5) for side in ("lower", "upper")]
    lower_upper = direct.predict_interval(6, coverage=0.8, paths=1000, seed=0).to_numpy()
    np.testing.assert_array_equal(band[("sales", 0.8, "lower")].to_numpy(), lower_upper[:, 0])
    np.testing.assert_array_equal(band[("sales", 0.8, "upper")].to_numpy(), lower_upper[:, 1])
    # relative steps 2 and 5 are the 2nd and 5th of the same closed loop
    np.testing.assert_array_equal(ours.predict(fh=[2, 5]).to_numpy(), pred.to_numpy()[[1, 4]])


def test_update_without_refit_is_forecaster_update_and_with_refit_a_new_fit():
    y = monthly()
    ours = SktimeForecaster(**SETTINGS).fit(y[:60], fh=[1, 2])
    ours.update(y[60:66], update_params=False)
    direct = Forecaster(**SETTINGS).fit(y[:60]).update(y[60:66])
    np.testing.assert_array_equal(ours.predict().to_numpy(), direct.predict(2).to_numpy())
    assert str(ours.predict().index[0]) == "2005-07"
    ours.update(y[66:], update_params=True)
    refit = Forecaster(**SETTINGS).fit(y)
    np.testing.assert_array_equal(ours.predict().to_numpy(), refit.predict(2).to_numpy())


def test_in_sample_steps_are_refused_with_a_clear_error():
    y = monthly()
    ours = SktimeForecaster(**SETTINGS).fit(y, fh=[1])
    with pytest.raises(NotImplementedError, match="can not perform in-sample prediction"):   # sktime, by our tag
        ours.predict(fh=[-1, 0, 1])
