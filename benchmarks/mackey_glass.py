"""Mackey-Glass (tau = 17): one-step and 84-step closed-loop forecasts, a NARX against linear AR.

The series: dx/dt = 0.2 x(t - 17) / (1 + x(t - 17)^10) - 0.1 x(t), integrated by RK4 with
step 0.1 (the delayed value read from the stored solution), sampled every 1 time unit,
the first 1000 samples dropped as a transient. The first 1000 samples left fit the
models; the next 1000 are the held-back tail, never seen before scoring. The NARX feeds
back its past outputs at lags 1, 7, 13, 19 (the classic embedding), 8 tanh units and the
linear path, trained by Levenberg-Marquardt with Bayesian regularisation; an ensemble of
three of them, seeds 0-2, each ensemble one draw. The linear AR models are least squares
on the same fit samples: on the same four lags, and on all 19 lags.

NRMSE = RMSE / standard deviation of the series. One step: over the tail. 84 steps:
closed loop (each forecast fed back) from origins every 10 steps in the tail, the error
of the 84th step.

Run: python benchmarks/mackey_glass.py
"""

from __future__ import annotations

import numpy as np

import unrolled
from unrolled.divergences import SquaredError
from unrolled.optim import LevenbergMarquardt

LAGS = [1, 7, 13, 19]
FIT, TAIL, HORIZON = 1000, 1000, 84


def mackey_glass(n, tau=17.0, dt=0.1, sample=10, transient=1000, x0=1.2):
    """n samples every ``sample * dt`` time units, after ``transient`` samples."""
    delay = int(round(tau / dt))
    steps = (n + transient) * sample
    x = np.empty(steps + delay + 1)
    x[: delay + 1] = x0
    f = lambda xt, xd: 0.2 * xd / (1.0 + xd ** 10) - 0.1 * xt  # noqa: E731
    for i in range(delay, steps + delay):
        xd0, xd1 = x[i - delay], x[i - delay + 1]
        xdm = 0.5 * (xd0 + xd1)                                   # the delayed value at the half step
        k1 = f(x[i], xd0)
        k2 = f(x[i] + 0.5 * dt * k1, xdm)
        k3 = f(x[i] + 0.5 * dt * k2, xdm)
        k4 = f(x[i] + dt * k3, xd1)
        x[i + 1] = x[i] + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x[delay::sample][transient: transient + n]


def ar_fit(s, lags, end):
    """Least-squares coefficients of s[t] on s[t - lag] (+ 1), targets t < end."""
    m = max(lags)
    X = np.array([[s[t - lag] for lag in lags] + [1.0] for t in range(m, end)])
    return np.linalg.lstsq(X, s[m:end], rcond=None)[0]


def ar_step(coef, lags, history):
    return float(np.dot(coef[:-1], [history[-lag] for lag in lags]) + coef[-1])


def ar_scores(s, lags, std):
    coef = ar_fit(s, lags, FIT)
    one = [ar_step(coef, lags, s[:t]) for t in range(FIT, FIT + TAIL)]
    far = []
    for o in range(FIT, FIT + TAIL - HORIZON, 10):
        h = list(s[:o])
        for _ in range(HORIZON):
            h.append(ar_step(coef, lags, h))
        far.append(h[-1] - s[o + HORIZON - 1])
    return (np.sqrt(np.mean((np.array(one) - s[FIT:FIT + TAIL]) ** 2)) / std,
            np.sqrt(np.mean(np.square(far))) / std)


def narx_scores(s, seeds, std, mean):
    z = (s - mean) / std
    members = [unrolled.NARX(0, 1, input_delays=None, output_delays=LAGS, hidden=(8,), feedback="open",
                             linear=True, dtype=np.float64, seed=seed) for seed in seeds]
    d = z[None, 1:FIT, None]                                         # d(t) = z(t + 1)
    w = np.ones(d.shape[1])
    w[:max(LAGS)] = 0.0                                              # (taps reading the zero history)
    for m in members:
        unrolled.fit(m, None, d, divergence=SquaredError(weights=w), optimizer=LevenbergMarquardt(bayesian=True),
                     epochs=200, progress=False)
    ens = unrolled.Ensemble(members)
    whole = z[None, 1:, None]
    one = ens.predict(None, teacher=whole)[0, FIT - 1: FIT - 1 + TAIL, 0]          # forecasts of z[FIT ...]
    origins = np.arange(FIT, FIT + TAIL - HORIZON, 10)
    past = np.zeros((len(origins), origins.max() - 1, 1))
    for n, o in enumerate(origins):
        past[n, :o - 1, 0] = z[1:o]                                  # d up to z[o - 1]
    y = ens.forecast(None, past, HORIZON, lengths=origins - 1)       # z[o] .. z[o + HORIZON - 1]
    far = y[:, -1, 0] - z[origins + HORIZON - 1]
    return (np.sqrt(np.mean((one - z[FIT:FIT + TAIL]) ** 2)),
            np.sqrt(np.mean(far ** 2)))


def main():
    s = mackey_glass(FIT + TAIL)
    std, mean = float(np.std(s[:FIT])), float(np.mean(s[:FIT]))
    rows = []
    for seed in range(3):
        rows.append(narx_scores(s, [10 * seed + k for k in range(3)], std, mean))
    r = np.array(rows)
    print(f"Mackey-Glass tau=17, fit on {FIT} samples, scored on the next {TAIL}: NRMSE")
    print("| model | one step | 84 steps, closed loop |")
    print("|---|---|---|")
    print(f"| NARX, lags {LAGS}, 8 units + linear path, LM + Bayesian, ensemble of 3 (median [min, max] over 3) | "
          f"{np.median(r[:, 0]):.2e} [{r[:, 0].min():.2e}, {r[:, 0].max():.2e}] | "
          f"{np.median(r[:, 1]):.3f} [{r[:, 1].min():.3f}, {r[:, 1].max():.3f}] |")
    for name, lags in ((f"linear AR, lags {LAGS}", LAGS), ("linear AR, lags 1-19", list(range(1, 20)))):
        one, far = ar_scores(s, lags, std)
        print(f"| {name} | {one:.2e} | {far:.3f} |")


if __name__ == "__main__":
    main()
