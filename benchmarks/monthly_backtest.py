"""The monthly sunspots (1749-2008), forecast 1 .. 12 months ahead by backtest.

Expanding windows: each of the last FOLDS years is forecast from the months before it
(the forecaster refitted each fold, default settings, nothing tuned on the folds), beside
seasonal naive, naive and a least-squares AR(lags) fitted on the same window.

    python benchmarks/monthly_backtest.py [--folds 10] [--ensemble 5] [--epochs 300]

Prints the RMSE per step ahead (sunspot number) and the 90% band's coverage.
"""

import argparse
import time

import numpy as np

import unrolled
from unrolled import datasets


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--ensemble", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dates, values = datasets.load_sunspots_monthly()
    dates = dates.astype("datetime64[M]")
    f = unrolled.Forecaster(ensemble=args.ensemble, epochs=args.epochs, seed=args.seed)
    start = time.perf_counter()
    bt = unrolled.backtest(f, values, index=dates, horizon=12, folds=args.folds, coverage=0.9)
    print(f"monthly sunspots {dates[0]} .. {dates[-1]}: {args.folds} folds of 12 months, origins "
          f"{bt.origins[0]} .. {bt.origins[-1]}; Forecaster(ensemble={args.ensemble}, seed={args.seed}), "
          f"{time.perf_counter() - start:.0f} s")
    print(bt.table("rmse"))


if __name__ == "__main__":
    main()
