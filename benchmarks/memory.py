"""Worker: peak memory of training on one long sequence, truncated or full BPTT.

    python benchmarks/memory.py --T 100000 --bptt 200      # truncated BPTT, window 200
    python benchmarks/memory.py --T 20000                  # full BPTT over all T steps

An RNN (input 32, 128 tanh units, output 8, float32, batch 1) trained by plain SGD,
window after window, the final state of each window starting the next (what
``fit(..., bptt=200)`` does). Prints the peak resident set size of the process
(``ru_maxrss``) and what the pass must keep: the activations, pre-activations and their
gradients of every step in memory at once, O(T N H).
"""

import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

import numpy as np  # noqa: E402

import unrolled  # noqa: E402
from unrolled.divergences import SquaredError  # noqa: E402


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # Linux: KiB


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--T", type=int, default=100_000)
    p.add_argument("--bptt", type=int, default=0, help="window (0: full BPTT)")
    p.add_argument("--H", type=int, default=128)
    args = p.parse_args()
    H, T = args.H, args.T
    model = unrolled.RNN(32, 8, hidden=(H,), seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, T, 32)).astype(np.float32)
    d = rng.normal(size=(1, T, 8)).astype(np.float32)
    div = SquaredError()
    window = args.bptt or T
    # warm up (compiled loops loaded) before taking the baseline
    y, c = model.forward(x[:, :10])
    model.backward(div(y, d[:, :10])[1], c)
    del y, c
    base = peak_mib()
    t0 = time.perf_counter()
    state, loss = None, 0.0
    for lo in range(0, T, window):
        y, cache = model.forward(x[:, lo:lo + window], state=state)
        value, dy = div(y, d[:, lo:lo + window])
        grads, _ = model.backward(dy, cache)
        for key, g in grads.items():
            model.params[key] -= 1e-3 * g
        state, loss = cache.state, loss + value
        del y, cache, dy, grads
    seconds = time.perf_counter() - t0
    # what one pass over `window` steps keeps: a, z, da, dz of the hidden layer (+ x, y)
    per_step = 4 * (2 * (2 * H) + 2 * (32 + 2 * 8))                # bytes per step, N = 1
    print(json.dumps({"T": T, "bptt": args.bptt, "H": H, "peak_mib": peak_mib(), "baseline_mib": base,
                      "growth_mib": peak_mib() - base, "pass_arrays_mib": per_step * window / 2 ** 20,
                      "data_mib": (x.nbytes + d.nbytes) / 2 ** 20, "seconds": seconds,
                      "loss": loss}))


if __name__ == "__main__":
    main()
