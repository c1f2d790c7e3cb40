"""Many fits across processes: an ensemble's members through joblib, locally and on Dask.

The members go to the workers as their config and weights and come back trained; the
numbers must be those of training them one after the other here.
"""

import distributed
import joblib
import numpy as np
import pytest

import unrolled
from unrolled.divergences import SquaredError
from unrolled.ensemble import Ensemble
from unrolled.optim import Adam, LevenbergMarquardt

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 30, 2))
D = np.cumsum(X[..., :1], axis=1) / 5


def ensemble():
    return Ensemble.from_seeds(lambda s: unrolled.NARX(2, 1, input_delays=1, output_delays=2, hidden=(3,),
                                                       feedback="open", dtype=np.float64, seed=s), range(4))


FIT = [dict(optimizer=LevenbergMarquardt(bayesian=True), epochs=10),
       dict(optimizer=Adam(0.01), epochs=5, batch_size=2, seed=7)]


def assert_same(a, b, ha, hb):
    assert [h.loss for h in ha] == [h.loss for h in hb]
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=k)


@pytest.mark.parametrize("kw", FIT, ids=["lm", "adam"])
def test_members_trained_in_loky_processes_equal_those_trained_here(kw):
    here, there = ensemble(), ensemble()
    h_here = here.fit(X, D, divergence=SquaredError(), **kw)
    h_there = there.fit(X, D, divergence=SquaredError(), n_jobs=2, **kw)
    assert_same(here, there, h_here, h_there)


def test_members_trained_on_a_dask_cluster_equal_those_trained_here():
    here, there = ensemble(), ensemble()
    kw = FIT[1]
    h_here = here.fit(X, D, divergence=SquaredError(), **kw)
    with distributed.Client(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None):
        with joblib.parallel_config(backend="dask"):
            h_there = there.fit(X, D, divergence=SquaredError(), n_jobs=2, **kw)
    assert_same(here, there, h_here, h_there)
