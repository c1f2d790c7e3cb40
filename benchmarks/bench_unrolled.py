"""Worker: one training step of an ``unrolled`` model (forward, divergence, backward).

``--variant numpy`` runs the engine's NumPy reference loops instead of the compiled ones;
``--variant unsplit`` the compiled loops without the engine's own threads (never split:
BLAS keeps its threads), to measure what the splits give. With ``UNROLLED_SRC`` set, the
``unrolled`` of that folder (another checkout's src/) runs the step.
"""

import time

t_start = time.perf_counter()     # before any import: what a user waits for in a fresh process

import os  # noqa: E402
import sys  # noqa: E402
# this checkout's src/, or another's (run.py --baseline sets UNROLLED_SRC)
sys.path.insert(0, os.environ.get("UNROLLED_SRC")
                or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))


import unrolled  # noqa: E402
from unrolled.divergences import SquaredError  # noqa: E402
from unrolled.models.elman import Elman  # noqa: E402
from unrolled.models.narx import NARX  # noqa: E402

from _common import N_IN, N_OUT, NARX_IN, NARX_OUT, data, parse_args, report, time_steps  # noqa: E402


def build(model, H):
    if model == "rnn":
        return unrolled.RNN(N_IN, N_OUT, hidden=(H,), seed=0)
    if model == "rnn2skip":
        return unrolled.RNN(N_IN, N_OUT, hidden=(H, H), skip_input=True, skip_output=True, seed=0)
    if model == "elman":
        return Elman(N_IN, N_OUT, hidden=(H,), seed=0)              # blocked context, as Elman trained
    if model == "lstm":
        return unrolled.LSTM(N_IN, N_OUT, hidden=(H,), seed=0)
    if model == "gru":
        return unrolled.GRU(N_IN, N_OUT, hidden=(H,), seed=0)
    if model == "narx":
        return NARX(N_IN, N_OUT, input_delays=NARX_IN, output_delays=NARX_OUT, hidden=(H,), seed=0)
    raise ValueError(model)


def main():
    args = parse_args(__doc__)
    if args.variant == "unsplit":
        from unrolled.engine.kernels import threads
        threads.MIN_WEIGHTS = threads.MIN_ROW_WORK = float("inf")
    elif args.variant:
        unrolled.set_default_backend(args.variant)
    model = build(args.model, args.H)
    x, d = data(args.N, args.T)
    div = SquaredError()

    def step():
        y, cache = model.forward(x)
        value, dy = div(y, d)
        cache.input_grads = False             # as fit trains, and as the peers: no dDIV/dx
        grads, _ = model.backward(dy, cache)
        return value

    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    times = time_steps(step, args.repeats, args.warmup)
    report(times, first_call=first, since_start=t0 + first - t_start)


if __name__ == "__main__":
    main()
