"""Time one training step of an LSTM and a GRU against PyTorch and JAX, each in its own process.

    python benchmarks/gated.py                       # LSTM and GRU, hidden 32 .. 512, 3 passes
    python benchmarks/gated.py --models lstm --hidden 32,128 --passes 5
    python benchmarks/gated.py --no-wait             # time even while other processes use the CPUs
    python benchmarks/gated.py --impls unrolled,torch,floor   # and the floor: the step's products alone
    pip install ".[bench]"                           # the peers: PyTorch (pinned) and JAX

The task, as the RNN table's (benchmarks/run.py) but gated and T = 100: one LSTM or GRU
layer of H units, then a linear output, input 32, output 8, batch 32, float32; one
training step = forward + divergence sum_t ||y(t) - d(t)||^2 / N + full BPTT with every
parameter's gradient (the learned initial state's included, an LSTM's h0 and c0; none of
the inputs), no optimizer update. Peers: ``torch.nn.LSTM`` / ``nn.GRU`` + ``nn.Linear``
with autograd on the CPU (``torch.set_num_threads`` = the CPUs this process may use, as
unrolled's default; and on one thread, ``torch-1``, which a machine busy with other work
slows less), and JAX ``lax.scan`` under ``jit(value_and_grad)`` with the input product
hoisted (``benchmarks/bench_jax.py``).

Every implementation runs in its own process, one after the other for each size, in an
order that alternates between passes; each process times ``--repeats`` steps after
warm-up. A cell is the median of the passes' medians and [their range]; a ratio is
unrolled's time over the peer's in each pass (the two ran back to back), median [range].
By default a worker waits for the other processes to leave the CPUs and is rerun when
they used more than 10% of them during its run (``run.worker``); the table says how much
they used during the runs it kept.
"""

import argparse
import sys
import time

import numpy as np

from run import IMPLS, QUIET, available, cell, ratio_cell, time_all, worker

MODELS = {"lstm": ("LSTM", "torch.nn.LSTM"), "gru": ("GRU", "torch.nn.GRU")}
HIDDEN = (32, 64, 128, 256, 512)
N, T = 32, 100
LABELS = {"unrolled": "unrolled (fast)", "torch": "PyTorch {module} + Linear, autograd",
          "torch-1": "PyTorch {module} + Linear, autograd, one thread",
          "jax": "JAX lax.scan, jit(value_and_grad)", "unrolled-numpy": "unrolled (backend='numpy')",
          "floor": "floor: the step's matrix products alone (NumPy's BLAS)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lstm,gru")
    ap.add_argument("--hidden", default=",".join(map(str, HIDDEN)))
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--impls", default="unrolled,torch,torch-1,jax", help=f"comma-separated, of {', '.join(LABELS)}")
    ap.add_argument("--no-wait", action="store_true", help="time even while other processes use the CPUs")
    args = ap.parse_args()
    QUIET["on"] = not args.no_wait
    models = args.models.split(",")
    hidden = [int(h) for h in args.hidden.split(",")]
    impls = [i for i in args.impls.split(",") if available(i)]
    missing = [i for i in args.impls.split(",") if not available(i)]

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    started = time.time()
    machine = worker("machine.py", [], log=log)
    lines = [f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, NumPy {machine['numpy']}; float32 2048-cube "
             f"matmul {machine['gflops']:.0f} GFLOP/s (best of 5; median {machine['gflops_median']:.0f})."]
    if missing:
        lines.append(f"Not installed, skipped: {', '.join(missing)}.")
    for model in models:
        worker("bench_unrolled.py", ["--model", model, "--N", 1, "--H", 8, "--repeats", 1], log=log)  # compiled, cached
    jobs = [(model, N, H) for model in models for H in hidden]
    res = time_all(jobs, impls, args.passes, args.repeats, log, extra=["--T", T])
    for model in models:
        name, module = MODELS[model]
        lines += ["", f"One training step of the {name}, batch {N}, T = {T}, input 32, output 8, float32, ms: median "
                  f"of {args.passes} passes' medians of {args.repeats} steps [range]", "",
                  "| implementation | " + " | ".join(f"H = {H}" for H in hidden) + " |",
                  "|---" * (len(hidden) + 1) + "|"]
        for impl in impls:
            lines.append(f"| {LABELS[impl].format(module=module)} | "
                         + " | ".join(cell(res[(impl, model, N, H)]) for H in hidden) + " |")
        for peer in ("torch", "torch-1", "jax", "unrolled-numpy", "floor"):
            if peer in impls and "unrolled" in impls:
                lines.append(f"| unrolled / {peer} | " + " | ".join(
                    ratio_cell(res[("unrolled", model, N, H)], res[(peer, model, N, H)]) for H in hidden) + " |")
    shares = QUIET.get("shares", [0.0])
    lines.append(f"\n({time.time() - started:.0f} s; python {sys.version.split()[0]}; other processes used "
                 f"{100 * float(np.median(shares)):.0f}% of the CPUs during the median run kept, "
                 f"{100 * max(shares):.0f}% at most; {QUIET['discarded']} runs discarded"
                 f"{'' if QUIET['on'] else ' (--no-wait: none waited for)'})")
    print("\n".join(lines))


if __name__ == "__main__":
    assert set(LABELS) <= set(IMPLS)
    main()
