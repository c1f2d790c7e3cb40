"""The yearly sunspots through unrolled.Forecaster, scored as `unrolled train` scores them.

Fit on 1700-1920 (the Forecaster's defaults: 5 NARX nets of 5 units, 6 lags, the linear
path, Bayesian regularisation), then append 1921-1979 with `update` (no refit) and take
the one-step forecasts: ARV = MSE / variance of 1700-1979 on each part.

    python benchmarks/sunspots_forecaster.py [--seed 0]
"""

import argparse

import numpy as np

import unrolled
from unrolled import datasets
from unrolled.tasks.series import SUNSPOT_SPLIT


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    years, values = datasets.load_sunspots()
    keep = years <= 1979
    years, values = years[keep].astype(int), values[keep]
    dates = np.array([str(y) for y in years], dtype="datetime64[Y]")
    fit_end = int(np.searchsorted(years, 1920, side="right"))
    f = unrolled.Forecaster(seed=args.seed).fit(values[:fit_end], index=dates[:fit_end])
    f.update(values[fit_end:], index=dates[fit_end:])
    pred = f.one_step()[:, 0]
    variance = float(np.var(values))
    row = []
    for part, (lo, hi) in SUNSPOT_SPLIT.items():
        m = (years >= lo) & (years <= hi) & np.isfinite(pred)
        row.append(float(np.mean((pred[m] - values[m]) ** 2) / variance))
    print(f"Forecaster seed {args.seed}: ARV fit {row[0]:.4f}  1921-1955 {row[1]:.4f}  1956-1979 {row[2]:.4f}")


if __name__ == "__main__":
    main()
