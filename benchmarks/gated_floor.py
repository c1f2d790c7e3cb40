"""The floor of an LSTM training step: the time of its own matrix products alone.

One training step of benchmarks/gated.py (LSTM, batch N = 32, T = 100, input 32, H units)
must at least compute, in float32:

* at each step, the recurrent product z(t) += h(t-1) W_hh^T, (N, H) @ (H, 4H), and in BPTT
  dh(t-1) = dz(t) W_hh, (N, 4H) @ (4H, H): 2 T products that cannot be batched over time;
* once, the input product (T N, 32) @ (32, 4H) and the weight gradients
  dW_hh = dZ^T H_prev, (4H, T N) @ (T N, H), and dW_ih, (4H, T N) @ (T N, 32).

This script times exactly those products with NumPy's BLAS (the one the engine calls) on
the threads it has, median of --repeats, and prints them beside 0.5x the PyTorch step
time given with --torch-ms (from benchmarks/gated.py's table): where the floor is above
it, no implementation on this BLAS reaches the target.

    python benchmarks/gated_floor.py --hidden 32 64 128 --torch-ms 6.99 10.82 20.76
"""

import argparse
import time

import numpy as np


def floor_ms(H, N=32, T=100, n_in=32, repeats=20, rng=None):
    rng = rng or np.random.default_rng(0)
    f = np.float32
    h, W = rng.normal(size=(N, H)).astype(f), rng.normal(size=(4 * H, H)).astype(f)
    dz = rng.normal(size=(N, 4 * H)).astype(f)
    X, Wi = rng.normal(size=(T * N, n_in)).astype(f), rng.normal(size=(4 * H, n_in)).astype(f)
    dZ, Hp = rng.normal(size=(T * N, 4 * H)).astype(f), rng.normal(size=(T * N, H)).astype(f)
    WT = np.ascontiguousarray(W.T)
    out_z, out_h = np.empty((N, 4 * H), f), np.empty((N, H), f)
    times = []
    for _ in range(repeats + 3):
        t0 = time.perf_counter()
        for _ in range(T):
            np.matmul(h, WT, out=out_z)
        for _ in range(T):
            np.matmul(dz, W, out=out_h)
        X @ Wi.T
        dZ.T @ Hp
        dZ.T @ X
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times[3:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--torch-ms", type=float, nargs="*", default=[])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    print("| H | the products alone, ms | 0.5x PyTorch's step, ms |")
    print("|---|---|---|")
    for k, H in enumerate(args.hidden):
        target = f"{0.5 * args.torch_ms[k]:.2f}" if k < len(args.torch_ms) else "-"
        print(f"| {H} | {floor_ms(H, repeats=args.repeats):.2f} | {target} |")


if __name__ == "__main__":
    main()
