"""Throughput of many small fits: one NARX a series, ours against the same loop in PyTorch.

Many short series (200 steps each; an AR(2) with noise, different per series), one
open-loop NARX a series (4 output taps, 8 tanh units, linear output), Adam(0.01) for a
fixed number of epochs on the whole series. unrolled runs ``fit_many`` one after the other
and in joblib's processes; PyTorch runs the same network (``nn.Linear`` on the 4 lags, tanh,
``nn.Linear``: teacher forcing makes the open-loop NARX exactly that) with ``torch.optim.Adam``,
one thread a process, one after the other and in the same joblib processes. Fits per second
on this machine's cores, each way measured in the same run.

Run: python benchmarks/many_fits.py [--series 200] [--epochs 50] [--jobs 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_series(n, T, seed=0):
    rng = np.random.default_rng(seed)
    out = np.zeros((n, T))
    for i in range(n):
        a1, a2 = rng.uniform(0.5, 1.5), rng.uniform(-0.8, -0.2)
        e = rng.normal(scale=0.3, size=T)
        for t in range(2, T):
            out[i, t] = a1 * out[i, t - 1] + a2 * out[i, t - 2] + e[t]
    return out / out.std(axis=1, keepdims=True)


def ours(series, epochs, jobs):
    import unrolled
    from unrolled.divergences import SquaredError
    from unrolled.optim import Adam
    models = [unrolled.NARX(0, 1, input_delays=None, output_delays=4, hidden=(8,), feedback="open", seed=i)
              for i in range(len(series))]
    ds = [s[None, :, None].astype(np.float32) for s in series]
    unrolled.fit(unrolled.NARX(0, 1, input_delays=None, output_delays=4, hidden=(8,), feedback="open", seed=0),
                 None, ds[0], divergence=SquaredError(), optimizer=Adam(0.01), epochs=2, progress=False)   # compile
    start = time.perf_counter()
    histories = unrolled.fit_many(models, [None] * len(ds), ds, n_jobs=jobs, divergence=SquaredError(),
                                  optimizer=Adam(0.01), epochs=epochs, batch_size=1)
    return time.perf_counter() - start, float(np.median([h.loss[-1] for h in histories]))


def _torch_fit(s, epochs, seed):
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    y = torch.tensor(s, dtype=torch.float32)
    lags = torch.stack([torch.cat([torch.zeros(k), y[:-k]]) for k in range(1, 5)], dim=1)   # (T, 4)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(epochs):
        opt.zero_grad()
        loss = ((net(lags)[:, 0] - y) ** 2).sum()
        loss.backward()
        opt.step()
    return loss.item()


def theirs(series, epochs, jobs):
    import joblib
    start = time.perf_counter()
    if jobs in (None, 1):
        losses = [_torch_fit(s, epochs, i) for i, s in enumerate(series)]
    else:
        losses = joblib.Parallel(n_jobs=jobs)(joblib.delayed(_torch_fit)(s, epochs, i) for i, s in enumerate(series))
    return time.perf_counter() - start, float(np.median(losses))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    series = make_series(args.series, args.steps)
    _torch_fit(series[0], 2, 0)                  # (torch's first call pays its start-up)
    rows = []
    for name, run in (("unrolled", ours), ("PyTorch 2.13 (CPU)", theirs)):
        for jobs in (1, args.jobs):
            seconds, loss = run(series, args.epochs, jobs)
            rows.append((name, jobs, seconds, args.series / seconds, loss))
    print(f"{args.series} series of {args.steps} steps, NARX 4 taps x 8 tanh units, Adam, {args.epochs} epochs each")
    print(f"{'':22}{'processes':>10}{'seconds':>10}{'fits/s':>10}{'median final SSE':>18}")
    for name, jobs, seconds, rate, loss in rows:
        print(f"{name:22}{jobs:>10}{seconds:>10.2f}{rate:>10.1f}{loss:>18.2f}")


if __name__ == "__main__":
    main()
