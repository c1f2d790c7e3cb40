"""What every benchmark worker shares: the task, the data, the timing loop, the report.

The task: one training step of a recurrent network, float32, T = 200 steps,
input 32, output 8 (linear), divergence sum_t ||y(t) - d(t)||^2 / N, forward and full
BPTT with every parameter's gradient (initial state included; none of the inputs, as
``fit`` trains and as the peers compute), no optimizer update.

A worker times ``repeats`` steps after ``warmup`` ones and prints one JSON line:
``{"times": [seconds, ...], ...}``. ``run.py`` starts each worker in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_IN, N_OUT = 32, 8

# The family's models: (model, batch N, hidden H). NARX taps: inputs 0..2, outputs 1..2.
# The gated ones (benchmarks/gated.py): one LSTM or GRU layer, then the linear output.
MODELS = ("rnn", "narx", "elman", "rnn2skip", "lstm", "gru")
NARX_IN, NARX_OUT = 2, 2


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default="rnn", choices=MODELS)
    p.add_argument("--N", type=int, default=32, help="batch")
    p.add_argument("--H", type=int, default=128, help="hidden units (each layer)")
    p.add_argument("--T", type=int, default=200, help="time steps")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--variant", default="", help="implementation variant (worker specific)")
    return p.parse_args()


def data(N, T, seed=0):
    """x (N, T, 32) and d (N, T, 8), float32, the same in every worker."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, T, N_IN)).astype(np.float32)
    d = rng.normal(size=(N, T, N_OUT)).astype(np.float32)
    return x, d


def uniform(rng, shape, fan_in):
    k = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-k, k, size=shape).astype(np.float32)


def time_steps(step, repeats, warmup, sync=None):
    """Seconds of each of ``repeats`` calls of ``step`` after ``warmup`` calls."""
    for _ in range(warmup):
        out = step()
        if sync is not None:
            sync(out)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = step()
        if sync is not None:
            sync(out)
        times.append(time.perf_counter() - t0)
    return times


def report(times, **extra):
    print(json.dumps({"times": times, **extra}))
    sys.stdout.flush()
