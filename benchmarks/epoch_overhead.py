"""What a whole fit epoch costs beyond its training steps, on the shipped tasks.

A training step is a forward pass, the divergence, BPTT, the gradient check and the
optimizer's update (``train._step``); an epoch adds shuffling, slicing the minibatches,
validation, callbacks and the progress bar. Here each task's ``fit`` runs with every step
timed (a wrapper around ``train._step``) and every validation pass too (``train.evaluate``),
and the table gives the epoch's wall time over the sum of its steps' times (1.00 is no
overhead at all; the aim is at most 1.15), and the same without the validation passes'
time: what shuffling, slicing, callbacks and the loop itself cost. A validation pass is a
forward pass and the divergence; on a task of one sequence validated on that sequence it
costs about half a training step by itself (``val / step``), whatever the loop does.

Run: python benchmarks/epoch_overhead.py [--epochs 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import unrolled
from unrolled import train
from unrolled.divergences import CrossEntropy, PooledMean, SquaredError
from unrolled.optim import Adam


def timed_fit(model, x, d, **kw):
    """``(fit's wall time, the sum of its steps' times, steps, the sum of its validation passes' times)``."""
    inner, inner_eval, spent = train._step, train.evaluate, [0.0, 0, 0.0]

    def step(*args, **kwargs):
        t = time.perf_counter()
        out = inner(*args, **kwargs)
        spent[0] += time.perf_counter() - t
        spent[1] += 1
        return out

    def evaluate(*args, **kwargs):
        t = time.perf_counter()
        out = inner_eval(*args, **kwargs)
        if spent[1]:                    # (not the check of the validation data before the first step)
            spent[2] += time.perf_counter() - t
        return out

    train._step, train.evaluate = step, evaluate
    try:
        t = time.perf_counter()
        unrolled.fit(model, x, d, progress=False, **kw)
        return time.perf_counter() - t, spent[0], spent[1], spent[2]
    finally:
        train._step, train.evaluate = inner, inner_eval


def tasks():
    from unrolled.tasks import series
    from unrolled.datasets import load_japanese_vowels, pad_sequences
    years, values, z, _, fit_end = series.sunspot_series()
    narx = unrolled.NARX(0, 1, input_delays=None, output_delays=8, hidden=(16,), feedback="open", seed=0)
    x, d = series._sequences(narx, z[:fit_end])
    w = np.ones(d.shape[1])
    w[-20:] = 0
    yield ("sunspots: NARX 16 units, 1 sequence", narx, x, d,
           dict(divergence=SquaredError(weights=w), optimizer=Adam(0.01), batch_size=1, validation=(x, d),
                validation_divergence=SquaredError(weights=1 - w)))
    xs, ys, _, _ = load_japanese_vowels()
    xp, lengths = pad_sequences([np.asarray(s, np.float32) for s in xs])
    birnn = unrolled.BiRNN(xp.shape[2], int(ys.max()) + 1, hidden=(32,), output="softmax", seed=0)
    yield ("Japanese vowels: BiRNN 32, 270 sequences", birnn, xp, ys,
           dict(divergence=PooledMean(CrossEntropy()), optimizer=Adam(0.005), batch_size=32, lengths=lengths,
                validation=(xp[:60], ys[:60], lengths[:60]), clip=5.0))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"{'task':44}{'epochs':>7}{'steps':>7}{'fit (s)':>10}{'steps (s)':>11}{'val (s)':>9}"
          f"{'fit / steps':>13}{'(fit - val) / steps':>21}{'val / step':>12}")
    for name, model, x, d, kw in tasks():
        timed_fit(model, x, d, epochs=1, **kw)                  # compile, warm the caches
        wall, steps, n, val = timed_fit(model, x, d, epochs=args.epochs, **kw)
        print(f"{name:44}{args.epochs:>7}{n:>7}{wall:>10.3f}{steps:>11.3f}{val:>9.3f}{wall / steps:>13.2f}"
              f"{(wall - val) / steps:>21.2f}{val / args.epochs / (steps / n):>12.2f}")


if __name__ == "__main__":
    main()
