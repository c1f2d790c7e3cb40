"""An :class:`unrolled.Forecaster` as an sktime forecaster (``pip install "unrolled[sktime]"``).

sktime's forecasters share one interface (``fit(y, X, fh)``, ``predict(fh, X)``,
``predict_interval``, ``update``) and its model selection, pipelines and metrics work on
any of them. :class:`SktimeForecaster` is that interface over a Forecaster: it takes the
Forecaster's arguments, fits one on sktime's ``y`` (a DataFrame of one or more series)
and ``X``, and forecasts the relative steps of ``fh`` past the cutoff, closed loop. sktime
is imported only by this module.

    from sktime.split import temporal_train_test_split
    from unrolled.sktime import SktimeForecaster

    y_train, y_test = temporal_train_test_split(y, test_size=12)
    f = SktimeForecaster(lags=12).fit(y_train, fh=range(1, 13))
    f.predict(), f.predict_interval(coverage=0.9)

Not covered: in-sample forecasts (``fh`` at or before the cutoff) and missing values
(fill them first, or use ``Forecaster(fill="interpolate")``).
"""

from __future__ import annotations

import numpy as np

try:
    from sktime.forecasting.base import BaseForecaster
except ImportError as exc:          # say which extra brings it
    raise ImportError(f"unrolled.sktime needs sktime ({exc}): pip install 'unrolled[sktime]'") from exc

from .forecasting import Forecaster

__all__ = ["SktimeForecaster"]


class SktimeForecaster(BaseForecaster):
    """sktime's interface over :class:`unrolled.Forecaster` (same parameters; see there).

    ``update(y, X, update_params=False)`` appends observations without refitting
    (``Forecaster.update``); ``update_params=True`` refits on the whole history.
    Intervals are the Forecaster's: a residual bootstrap of the closed loop over the
    ensemble's members (``paths`` of them, seeded by ``interval_seed``). With ``X``, predict
    needs X at every step up to the farthest one of ``fh`` (the closed loop reads them all).

    Examples
    --------
    >>> from sktime.datasets import load_airline
    >>> from unrolled.sktime import SktimeForecaster
    >>> y = load_airline()
    >>> f = SktimeForecaster(training="adam", lags=12, hidden=4, epochs=20).fit(y, fh=[1, 2, 3])
    >>> f.predict().index.astype(str).tolist()
    ['1961-01', '1961-02', '1961-03']
    """

    _tags = {
        "authors": ["unrolled developers"],
        "maintainers": ["unrolled developers"],
        "y_inner_mtype": "pd.DataFrame",
        "X_inner_mtype": "pd.DataFrame",
        "capability:multivariate": True,
        "capability:exogenous": True,
        "capability:insample": False,
        "capability:pred_int": True,
        "capability:pred_int:insample": False,
        "capability:missing_values": False,
        "capability:non_contiguous_X": False,       # a closed loop reads X at every step up to the last
        "requires-fh-in-fit": False,
        "X-y-must-have-same-index": True,
        "capability:update": True,                  # update appends without refitting; update_params refits
    }
    _config = {"remember_data": False}              # the adapter keeps the history it refits on itself

    def __init__(self, model="narx", lags=None, hidden=None, training="bayesian", ensemble=None,
                 scaler="standard", d=0, D=0, period=None, linear=None, strategy="local", epochs=None, lr=0.01,
                 validation=None, seed=0, paths=1000, interval_seed=0):
        self.model, self.lags, self.hidden, self.training, self.ensemble = model, lags, hidden, training, ensemble
        self.scaler, self.d, self.D, self.period, self.linear = scaler, d, D, period, linear
        self.strategy, self.epochs, self.lr, self.validation, self.seed = strategy, epochs, lr, validation, seed
        self.paths, self.interval_seed = paths, interval_seed
        super().__init__()
        self._y, self._X = None, None               # where sktime keeps data if remember_data is set later

    def _new_forecaster(self):
        keys = ("model", "lags", "hidden", "training", "ensemble", "scaler", "d", "D", "period", "linear",
                "strategy", "epochs", "lr", "validation", "seed")
        return Forecaster(**{k: getattr(self, k) for k in keys})

    def _fit(self, y, X, fh):
        self.forecaster_ = self._new_forecaster().fit(y, X)
        self.seen_ = (y, X)                        # what update_params=True refits on
        return self

    def _steps(self, fh):
        steps = np.asarray(fh.to_relative(self.cutoff), dtype=np.int64)
        if steps.min() < 1:
            raise ValueError(f"SktimeForecaster forecasts past the cutoff only (relative steps >= 1), got "
                             f"{sorted(set(steps.tolist()))}")
        return [int(h) for h in steps]

    def _future(self, fh, values):
        """``values`` (a Forecaster's DataFrame, rows in the order of ``fh``) indexed as sktime wants."""
        values.index = fh.to_absolute_index(self.cutoff)
        return values

    def _predict(self, fh, X):
        out = self.forecaster_.predict(self._steps(fh), X=X)
        return self._future(fh, out if out.ndim == 2 else out.to_frame())

    def _predict_interval(self, fh, X, coverage):
        import pandas as pd

        steps = self._steps(fh)
        names = list(self.seen_[0].columns)
        parts = {}
        for c in coverage:
            band = self.forecaster_.predict_interval(steps, X=X, coverage=c, paths=self.paths,
                                                     seed=self.interval_seed)
            band = band.to_numpy().reshape(len(steps), len(names), 2)
            for j, name in enumerate(names):
                parts[(name, c, "lower")] = band[:, j, 0]
                parts[(name, c, "upper")] = band[:, j, 1]
        columns = pd.MultiIndex.from_tuples([(n, c, side) for n in names for c in coverage
                                             for side in ("lower", "upper")])
        out = pd.DataFrame({key: parts[key] for key in columns}, columns=columns)
        return self._future(fh, out)

    def _update(self, y, X=None, update_params=True):
        import pandas as pd

        f = self.forecaster_
        last = f.axis_.labels([len(f.history_) - 1])[0]
        new = y.index > last                       # sktime may pass rows the history holds already
        if not new.any():
            return self
        seen_y, seen_X = self.seen_
        seen_y = pd.concat([seen_y, y[new]])
        if seen_X is not None and X is not None:
            seen_X = pd.concat([seen_X, X[~X.index.isin(seen_X.index)]]).sort_index()
        self.seen_ = (seen_y, seen_X)
        if update_params:
            self.forecaster_ = self._new_forecaster().fit(seen_y, seen_X)
        else:
            f.update(y[new], X)
        return self

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Small, fast settings for sktime's estimator checks."""
        return [dict(training="adam", lags=2, hidden=2, epochs=3, paths=50),
                dict(model="elman", training="adam", lags=3, hidden=(2,), epochs=2, paths=50)]
