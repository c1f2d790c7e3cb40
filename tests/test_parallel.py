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


def test_one_model_a_series_in_processes_equals_one_after_the_other():
    from unrolled.ensemble import fit_many
    series = [np.sin(np.arange(40) * w)[None, :, None] for w in (0.2, 0.3, 0.5)]
    make = lambda: [unrolled.NARX(0, 1, input_delays=None, output_delays=3, hidden=(3,), feedback="open",  # noqa: E731
                                  dtype=np.float64, seed=i) for i in range(3)]
    kw = dict(divergence=SquaredError(), optimizer=LevenbergMarquardt(bayesian=True), epochs=8)
    here, there = make(), make()
    h_here = fit_many(here, [None] * 3, series, **kw)
    h_there = fit_many(there, [None] * 3, series, n_jobs=2, **kw)
    assert [h.loss for h in h_here] == [h.loss for h in h_there]
    for a, b in zip(here, there):
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
    assert h_here[0].loss != h_here[1].loss                      # each model saw its own series
    with pytest.raises(ValueError, match="one x and one d for each of the 3 models, got 3 and 2"):
        fit_many(here, [None] * 3, series[:2], **kw)
    with pytest.raises(ValueError, match="one seed for each of the 3 models"):
        fit_many(here, [None] * 3, series, seeds=[1], **kw)


def test_fits_sent_to_a_worker_together_share_no_optimizer_state():
    """joblib ships a batch of tasks to a worker at once; with one Adam between them the
    second model would start from the first one's moments."""
    from unrolled.ensemble import fit_many
    series = [np.sin(np.arange(30) * (0.1 + 0.05 * i))[None, :, None] for i in range(16)]
    make = lambda: [unrolled.NARX(0, 1, input_delays=None, output_delays=2, hidden=(2,), feedback="open",  # noqa: E731
                                  dtype=np.float64, seed=i) for i in range(16)]
    kw = dict(divergence=SquaredError(), optimizer=Adam(0.05), epochs=5, batch_size=1)
    here, there = make(), make()
    h_here = fit_many(here, [None] * 16, series, **kw)
    h_there = fit_many(there, [None] * 16, series, n_jobs=2, **kw)
    assert [h.loss for h in h_here] == [h.loss for h in h_there]


def test_fits_on_ray_through_joblib_equal_those_trained_here():
    import ray
    from ray.util.joblib import register_ray
    from unrolled.ensemble import fit_many
    series = [np.sin(np.arange(40) * (0.1 + 0.05 * i))[None, :, None] for i in range(6)]
    make = lambda: [unrolled.NARX(0, 1, input_delays=None, output_delays=2, hidden=(2,), feedback="open",  # noqa: E731
                                  dtype=np.float64, seed=i) for i in range(6)]
    kw = dict(divergence=SquaredError(), optimizer=Adam(0.05), epochs=5, batch_size=1)
    here, there = make(), make()
    h_here = fit_many(here, [None] * 6, series, **kw)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        register_ray()
        with joblib.parallel_config(backend="ray"):
            h_there = fit_many(there, [None] * 6, series, n_jobs=2, **kw)
    finally:
        ray.shutdown()
    assert [h.loss for h in h_here] == [h.loss for h in h_there]
    for a, b in zip(here, there):
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
