"""Worker: a hand-specialised compiled loop of the 1-layer RNN (``--model rnn``).

A Numba-compiled time loop of the same math: the RNN's two time loops
written for that model alone in Numba, with the same BLAS binding and vectorised tanh
as the engine's kernels (``unrolled.engine.kernels.compiled``); everything else as ``bench_numpy``.
It shows what the generic engine costs over a loop that knows its model.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from unrolled.engine.kernels import compiled as K  # noqa: E402
from unrolled.engine.kernels.blas import USE_BLAS  # noqa: E402

from _common import data, parse_args, report, time_steps  # noqa: E402
import bench_numpy  # noqa: E402


@njit(cache=True, nogil=True, error_model="numpy")
def rnn_forward(Z, hs, WhT, use_blas):
    """hs[t + 1] = tanh(Z[t] + hs[t] @ Wh^T); Z (T, N, H) holds the hoisted part."""
    T, N, H = Z.shape
    for t in range(T):
        z = Z[t].reshape(N * H)
        K._gemm(N, H, H, hs[t].reshape(N * H), 0, H, WhT.reshape(H * H), 0, H, z, 0, H, use_blas)
        K._tanh_into(z, hs[t + 1].reshape(N * H))


@njit(cache=True, nogil=True, error_model="numpy")
def rnn_backward(dH, hs, Wh, dZ, dh, use_blas):
    """dZ[t] = (dH[t] + dh) (1 - h(t)^2), dh = dZ[t] @ Wh, for t = T-1 .. 0; dh ends as dDIV/dh(-1)."""
    T, N, H = dH.shape
    for t in range(T - 1, -1, -1):
        dz, h, g = dZ[t].reshape(N * H), hs[t + 1].reshape(N * H), dH[t].reshape(N * H)
        d = dh.reshape(N * H)
        for i in range(N * H):
            dz[i] = (g[i] + d[i]) * (1 - h[i] * h[i])
            d[i] = 0
        K._gemm(N, H, H, dz, 0, H, Wh.reshape(H * H), 0, H, d, 0, H, use_blas)


def compiled_recurrence(Z, h0, Wh):
    T, N, H = Z.shape
    hs = np.empty((T + 1, N, H), np.float32)
    hs[0] = h0
    rnn_forward(Z, hs, np.ascontiguousarray(Wh.T), USE_BLAS)
    return hs


def compiled_bptt(dH, hs, Wh):
    T, N, H = dH.shape
    dZ, dh = np.empty_like(dH), np.zeros((N, H), np.float32)
    rnn_backward(dH, hs, Wh, dZ, dh, USE_BLAS)
    return dZ, dh


def rnn_step(p, xs, ds, N):
    """``bench_numpy.rnn_step`` with these compiled time loops."""
    return bench_numpy.rnn_step(p, xs, ds, N, compiled_recurrence, compiled_bptt)


def main():
    args = parse_args(__doc__)
    if args.model != "rnn":
        raise SystemExit("bench_numba times the plain RNN only")
    p = bench_numpy.params("rnn", args.H)
    x, d = data(args.N, args.T)

    def step():
        xs = np.ascontiguousarray(np.swapaxes(x, 0, 1))
        ds = np.ascontiguousarray(np.swapaxes(d, 0, 1))
        return rnn_step(p, xs, ds, args.N)

    report(time_steps(step, args.repeats, args.warmup))


if __name__ == "__main__":
    main()
