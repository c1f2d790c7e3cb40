"""Worker: the floor of a training step, the time of its own matrix products alone.

One training step of a layer of H units (``--model rnn``: one tanh recurrence; ``lstm``:
4 gate blocks; ``gru``: 3) with input 32 and a linear output of 8, batch N, T steps, in
float32, must at least compute, whatever else it does (elementwise work, the loop):

* at each step, the recurrent product z(t) += h(t-1) W_hh^T, (N, H) @ (H, G H), and in
  BPTT dh(t-1) = dz(t) W_hh, (N, G H) @ (G H, H): 2 T products that cannot be batched
  over time (G = 1, 4 or 3 blocks);
* once, over all T N rows: the input product (T N, 32) @ (32, G H), the output
  (T N, H) @ (H, 8) and its backward (T N, 8) @ (8, H), and the weight gradients
  dW_hh = dZ^T H_prev, dW_ih = dZ^T X and dW_out = dY^T H.

This worker times exactly those products with NumPy's BLAS (the one the engine calls),
on its default threads and on one thread, each a whole step's worth, and reports for
each step the faster of the two: the rate of the step's own product shapes on this
machine. ``run.py`` and ``gated.py`` show it as the row "floor" (``--impls ...,floor``),
and unrolled's time over it as how far the engine is from it.
"""

import numpy as np

from _common import N_IN, N_OUT, parse_args, report

BLOCKS = {"rnn": 1, "lstm": 4, "gru": 3}


def products(N, H, T, G, seed=0):
    """A function running the step's products once, on arrays made here."""
    rng = np.random.default_rng(seed)
    f = np.float32
    h, WT, W = (rng.normal(size=s).astype(f) for s in ((N, H), (H, G * H), (G * H, H)))
    dz = rng.normal(size=(N, G * H)).astype(f)
    X, Wi = rng.normal(size=(T * N, N_IN)).astype(f), rng.normal(size=(N_IN, G * H)).astype(f)
    Hs, Wo, Wo_t = rng.normal(size=(T * N, H)).astype(f), rng.normal(size=(H, N_OUT)).astype(f), \
        rng.normal(size=(N_OUT, H)).astype(f)
    dZ, dY = rng.normal(size=(T * N, G * H)).astype(f), rng.normal(size=(T * N, N_OUT)).astype(f)
    out_z, out_h = np.empty((N, G * H), f), np.empty((N, H), f)

    def run():
        for _ in range(T):
            np.matmul(h, WT, out=out_z)
        for _ in range(T):
            np.matmul(dz, W, out=out_h)
        return (X @ Wi, Hs @ Wo, dY @ Wo_t, dZ.T @ Hs, dZ.T @ X, dY.T @ Hs)

    return run


def time_floor(run, repeats, warmup):
    """Seconds of each of ``repeats`` runs, each the faster of the BLAS's default threads
    and one thread (where threadpoolctl is installed to set them)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        best = []
        for threads in (None, 1) if threadpool_limits is not None else (None,):
            if threads is None:
                best.append(_once(run))
            else:
                with threadpool_limits(threads, user_api="blas"):
                    best.append(_once(run))
        times.append(min(best))
    return times


def _once(run):
    import time
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def main():
    args = parse_args(__doc__.splitlines()[0])
    if args.model not in BLOCKS:
        raise SystemExit(f"bench_floor.py times the products of {', '.join(BLOCKS)}, not {args.model!r}")
    run = products(args.N, args.H, args.T, BLOCKS[args.model])
    report(time_floor(run, args.repeats, args.warmup))


if __name__ == "__main__":
    main()
