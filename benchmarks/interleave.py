"""This checkout's training step against another checkout's, interleaved in one process.

    python benchmarks/interleave.py /path/to/other/checkout/src [--configs 1x32,32x32,32x128]

Separate processes on a shared machine drift by 1.5x between runs (``run.py`` alternates
them and reports per-pass ratios); for a change that should cost nothing, that is too
coarse. Here both versions run in the same process, in blocks of ~20 ms taken in turn
(the order flipping every round), so every drift of the machine moves both alike. The
other checkout's ``unrolled`` is copied to a temporary folder as ``unrolled_baseline``
(its compiled code is compiled afresh for that copy). Prints, for each configuration,
both medians and the median [quartiles] of the per-round ratios this / baseline.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))


def load_baseline(src):
    folder = tempfile.mkdtemp(prefix="unrolled-baseline-")
    shutil.copytree(os.path.join(src, "unrolled"), os.path.join(folder, "unrolled_baseline"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, folder)
    import unrolled_baseline
    return unrolled_baseline


def stepper(pkg, N, H, rng):
    """One training step (forward, squared error, BPTT without dx) of a 32-H-8 RNN, T = 200."""
    x = rng.normal(size=(N, 200, 32)).astype(np.float32)
    d = rng.normal(size=(N, 200, 8)).astype(np.float32)
    model, div = pkg.RNN(32, 8, hidden=(H,), seed=0), pkg.divergences.SquaredError()

    def step():
        y, cache = model.forward(x)
        _, dy = div(y, d)
        cache.input_grads = False
        model.backward(dy, cache)
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("baseline", help="the other checkout's src/ folder")
    ap.add_argument("--configs", default="1x32,1x128,32x32,32x128")
    ap.add_argument("--seconds", type=float, default=8.0, help="time per configuration and version")
    args = ap.parse_args()
    import unrolled
    baseline = load_baseline(os.path.abspath(args.baseline))
    print("| batch x hidden | this, ms | baseline, ms | this / baseline, median [quartiles] |")
    print("|---|---|---|---|")
    for cfg in args.configs.split(","):
        N, H = (int(v) for v in cfg.split("x"))
        steps = {"this": stepper(unrolled, N, H, np.random.default_rng(0)),
                 "baseline": stepper(baseline, N, H, np.random.default_rng(0))}
        for step in steps.values():                     # compile (or load) and warm up
            for _ in range(3):
                step()
        t0 = time.perf_counter()
        steps["this"]()
        inner = max(1, int(0.02 / (time.perf_counter() - t0)))
        rounds = max(5, int(args.seconds / (0.02 if inner > 1 else time.perf_counter() - t0 + 1e-9)))
        times = {k: [] for k in steps}
        for r in range(rounds):
            for k in (("this", "baseline") if r % 2 == 0 else ("baseline", "this")):
                t0 = time.perf_counter()
                for _ in range(inner):
                    steps[k]()
                times[k].append((time.perf_counter() - t0) / inner)
        ratios = [a / b for a, b in zip(times["this"], times["baseline"])]
        q = statistics.quantiles(ratios, n=4)
        print(f"| {N}x{H} | {1e3 * statistics.median(times['this']):.3f} | "
              f"{1e3 * statistics.median(times['baseline']):.3f} | "
              f"{statistics.median(ratios):.3f} [{q[0]:.3f}-{q[2]:.3f}] |", flush=True)


if __name__ == "__main__":
    main()
