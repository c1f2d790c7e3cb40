"""Worker: what this machine can do, float32, with NumPy's BLAS (all its threads).

* ``gflops``: a 2048-cube matrix product, the ceiling for large products;
* ``gflops_step``: the products one RNN step does at 32x512, (32, 512) @ (512, 512);
* ``stream_gbs``: bytes per second of a 1024x1024 matrix (4 MiB, as at 8x1024) read by
  matrix-vector products, over and over: the memory-traffic floor of a recurrence whose
  weight matrix is read from the cache hierarchy at every step.
"""

import json
import os
import time

import numpy as np


def best(f, repeats, rounds=5):
    f()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(repeats):
            f()
        times.append((time.perf_counter() - t0) / repeats)
    return min(times), float(np.median(times))


def main():
    rng = np.random.default_rng(0)
    a, b = (rng.random((2048, 2048), dtype=np.float32) for _ in range(2))
    t, tm = best(lambda: a @ b, 3)
    out = {"gflops": 2 * 2048 ** 3 / t / 1e9, "gflops_median": 2 * 2048 ** 3 / tm / 1e9}
    h, w = rng.random((32, 512), dtype=np.float32), rng.random((512, 512), dtype=np.float32)
    t, _ = best(lambda: h @ w, 200)
    out["gflops_step"] = 2 * 32 * 512 * 512 / t / 1e9
    v, w = rng.random((1, 1024), dtype=np.float32), rng.random((1024, 1024), dtype=np.float32)
    t, _ = best(lambda: v @ w, 300)
    out["stream_gbs"] = w.nbytes / t / 1e9
    out["cpus"] = os.cpu_count()
    try:
        with open("/proc/cpuinfo") as f:
            out["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        out["cpu"] = "unknown"
    out["numpy"] = np.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
