"""Which defaults make SequenceClassifier() learn: model, read-out and input scaling.

Each configuration is fitted as a new user would (the estimator's defaults but for the
settings named, ``epochs`` capped so the table runs in minutes) on the shipped tasks
(Japanese vowels: its own split; spoken digits: a stratified 1000 / 500 sample) and on
synthetic ones with 100-200 steps, and scored on held-out sequences; median and range of
the test accuracy over seeds, and how many fits warned that they learned nothing.
Nothing here is tuned on a test part: the table compares fixed configurations.

    python benchmarks/classifier_defaults.py [--seeds 3] [--epochs 40]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from unrolled import SequenceClassifier
from unrolled.datasets import load_japanese_vowels, load_spoken_digits, stratified_split
from unrolled.estimators import ConvergenceWarning

CONFIGS = {
    "rnn, last, raw inputs (old default)": dict(model="rnn", readout="last", standardize=False),
    "rnn, last, standardized": dict(model="rnn", readout="last"),
    "rnn, pooled, standardized": dict(model="rnn", readout="pooled"),
    "gru, last, standardized": dict(model="gru", readout="last"),
    "gru, pooled, standardized": dict(model="gru", readout="pooled"),
}


def japanese_vowels(seed):
    x_train, y_train, x_test, y_test = load_japanese_vowels()
    return x_train, y_train, x_test, y_test


def spoken_digits(seed):
    x, y = load_spoken_digits()
    rng = np.random.default_rng(100 + seed)
    pick = np.sort(rng.choice(len(x), 1500, replace=False))
    x, y = [x[i] for i in pick], y[pick]
    train, test = stratified_split(y, 1 / 3, seed)
    return [x[i] for i in train], y[train], [x[i] for i in test], y[test]


def early_cue(seed, n=600, T=150):
    """Two classes told apart by the sign of a pulse in the first 10 steps, then noise:
    the class must be remembered over 140 steps. Features far from unit size (scale 50)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, T, 2))
    x[:, :10, 0] += np.where(y == 1, 1.5, -1.5)[:, None]
    x = 50 * x + 200
    cut = 2 * n // 3
    return x[:cut], y[:cut], x[cut:], y[cut:]


def frequency(seed, n=600, T=200):
    """Which of two frequencies a noisy sine has (a local property, at every step)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = np.arange(T)
    omega = np.where(y == 1, 0.30, 0.22)[:, None]
    x = np.sin(omega * t + rng.uniform(0, 2 * np.pi, (n, 1))) + 0.8 * rng.normal(size=(n, T))
    cut = 2 * n // 3
    return x[:cut, :, None], y[:cut], x[cut:, :, None], y[cut:]


def sign_of_sum(seed, n=600, T=100):
    """The sign of the sum of all T inputs: the last step must hold the whole sum."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, 1))
    y = (x.sum(axis=(1, 2)) > 0).astype(int)
    cut = 2 * n // 3
    return x[:cut], y[:cut], x[cut:], y[cut:]


TASKS = {"Japanese vowels (T 7-29, 9 classes)": japanese_vowels,
         "spoken digits (T 6-92, 10 classes)": spoken_digits,
         "early cue (T 150, 2 classes)": early_cue,
         "frequency (T 200, 2 classes)": frequency,
         "sign of sum (T 100, 2 classes)": sign_of_sum}


def run(task, config, seed, epochs):
    x_train, y_train, x_test, y_test = TASKS[task](seed)
    est = SequenceClassifier(**CONFIGS[config], epochs=epochs, random_state=seed, tol=np.inf)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(x_train, y_train)
    chance = any(issubclass(w.category, ConvergenceWarning) and "learned nothing" in str(w.message) for w in caught)
    return est.score(x_test, y_test), chance, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--tasks", default=None, help="comma-separated words naming tasks (default: all)")
    args = parser.parse_args()
    tasks = list(TASKS) if not args.tasks else [t for t in TASKS if any(k in t for k in args.tasks.split(","))]
    print(f"test accuracy, median (range) over seeds 0..{args.seeds - 1}; epochs {args.epochs}; "
          f"[k] = fits that warned they learned nothing")
    for task in tasks:
        print(f"\n{task}")
        for config in CONFIGS:
            results = [run(task, config, s, args.epochs) for s in range(args.seeds)]
            acc = np.array([r[0] for r in results])
            warned = sum(r[1] for r in results)
            secs = np.median([r[2] for r in results])
            print(f"  {config:<38} {np.median(acc):.3f} ({acc.min():.3f}-{acc.max():.3f})  [{warned}]  "
                  f"{secs:5.1f} s a fit", flush=True)


if __name__ == "__main__":
    main()
