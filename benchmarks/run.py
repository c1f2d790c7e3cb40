"""Time one training step of unrolled against its peers, each in its own process.

    python benchmarks/run.py                 # everything (~10 minutes on 2 cores)
    python benchmarks/run.py --only rnn      # the RNN table; also: family, memory, machine
    python benchmarks/run.py --only rnn --impls unrolled,unrolled-unsplit --configs 1x1024,8x1024
                                             # what the engine's own threads give
    python benchmarks/run.py --only rnn --baseline /path/to/other/checkout/src
                                             # this checkout against another one, alternating
    pip install ".[bench]"                   # the peers: PyTorch (pinned) and JAX

The task: a 1-layer tanh RNN with a linear output, input 32, output 8, T = 200,
float32, one training step = forward + divergence + full BPTT with every parameter's
gradient (the learned initial state's included; none of the inputs, as fit trains and as
the peers compute), no optimizer update. Configurations batch x hidden:
1x32, 1x128, 32x32, 32x128, 32x512, 8x1024. Then the family (NARX, Elman, a 2-layer RNN
with skip links) against hand-specialised NumPy loops of the same math, and the memory
of truncated BPTT on a 100,000-step sequence.

Every implementation runs in its own process (thread pools of two libraries in one
process fight over the cores), one after the other for each configuration, in an order
that alternates between passes; each process times ``--repeats`` steps after warm-up.
A cell shows the median of the passes' medians and, in brackets, their range. A ratio
is unrolled's time over the peer's in each pass (the two ran back to back), median
[range] over the passes: a machine that drifts between passes moves both.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = [(1, 32), (1, 128), (32, 32), (32, 128), (32, 512), (8, 1024)]
FAMILY_CONFIGS = [(1, 32), (32, 128)]
IMPLS = {  # name -> (worker, variant, label, needs)
    "unrolled": ("bench_unrolled.py", "", "unrolled (fast)", None),
    "torch": ("bench_torch.py", "", "PyTorch nn.RNN + Linear", "torch"),
    "torch-1": ("bench_torch.py", "one-thread", "PyTorch nn.RNN + Linear, one thread", "torch"),
    "jax": ("bench_jax.py", "", "JAX lax.scan, jit(value_and_grad)", "jax"),
    "numpy-hand": ("bench_numpy.py", "", "hand-specialised NumPy loop", None),
    "numba-hand": ("bench_numba.py", "", "hand-specialised Numba loop", "numba"),
    "unrolled-numpy": ("bench_unrolled.py", "numpy", "unrolled (backend='numpy')", None),
    "unrolled-unsplit": ("bench_unrolled.py", "unsplit", "unrolled, never split over its own threads", "numba"),
    "baseline": ("bench_unrolled.py", "", "unrolled of --baseline (another checkout)", None),
    "floor": ("bench_floor.py", "", "floor: the step's matrix products alone (NumPy's BLAS)", None),
}
BASELINE = {"src": None}    # --baseline: the src/ folder the "baseline" workers import unrolled from
DEFAULT_IMPLS = [name for name in IMPLS if name not in ("unrolled-unsplit", "torch-1")]   # those on request (--impls)
# (unrolled / floor: how many times the step's own matrix products unrolled's step takes;
# its inverse, the share of the step the products take, is how close it is to the floor)


def cpu_jiffies():
    """(busy, total) CPU time of the whole machine, in clock ticks (Linux /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def others_share(before, after, own_seconds):
    """Fraction of the machine's CPU time used by other processes between two readings."""
    if before is None or after is None or after[1] == before[1]:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    busy = (after[0] - before[0]) / tick
    total = (after[1] - before[1]) / tick
    return max(0.0, busy - own_seconds) / total


def wait_quiet(log, threshold=0.1, window=1.0, max_wait=900):
    """Wait until other processes use less than ``threshold`` of the CPUs for ``window`` s."""
    waited = 0.0
    while waited < max_wait:
        a = cpu_jiffies()
        time.sleep(window)
        if others_share(a, cpu_jiffies(), 0.0) < threshold:
            return waited
        waited += window
        if waited % 30 < window:
            log(f"  (waiting for other processes to leave the CPUs: {waited:.0f} s)")
    return waited


QUIET = {"on": True, "threshold": 0.1, "retries": 0, "discarded": 0}


def worker(script, args, timeout=600, log=lambda m: None):
    """Run a worker in its own process; with QUIET on, rerun it while other processes used
    more than QUIET["threshold"] of the CPUs during its run (a shared machine)."""
    cmd = [sys.executable, os.path.join(HERE, script)] + [str(a) for a in args]
    env = None
    if "--baseline" in args:
        args = [a for a in args if a != "--baseline"]
        cmd = [sys.executable, os.path.join(HERE, script)] + [str(a) for a in args]
        env = {**os.environ, "UNROLLED_SRC": BASELINE["src"]}
    for attempt in range(8):
        if QUIET["on"]:
            wait_quiet(log)
        before, usage0 = cpu_jiffies(), os.times()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE, env=env)
        usage1 = os.times()
        own = (usage1.children_user - usage0.children_user) + (usage1.children_system - usage0.children_system)
        share = others_share(before, cpu_jiffies(), own)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
        if not QUIET["on"] or share < QUIET["threshold"]:
            break
        QUIET["discarded"] += 1
        log(f"  discarded a run of {script} {' '.join(map(str, args))}: other processes used "
            f"{100 * share:.0f}% of the CPUs meanwhile")
    QUIET.setdefault("shares", []).append(share)     # what other processes used during the run kept
    return json.loads(out.stdout.strip().splitlines()[-1])


def available(impl):
    if impl == "baseline":
        return BASELINE["src"] is not None
    need = IMPLS[impl][3]
    return need is None or importlib.util.find_spec(need) is not None


def time_all(jobs, impls, passes, repeats, log, extra=()):
    """jobs: list of (model, N, H); ``extra``: more arguments for every worker (``--T``, ...).
    Returns {(impl, model, N, H): [median of each pass]}."""
    results = {}
    for p in range(passes):
        for model, N, H in jobs:
            order = impls if p % 2 == 0 else impls[::-1]
            for impl in order:
                script, variant, _, _ = IMPLS[impl]
                args = ["--model", model, "--N", N, "--H", H, "--repeats", repeats, *extra]
                if variant:
                    args += ["--variant", variant]
                if impl == "baseline":
                    args += ["--baseline"]
                r = worker(script, args, log=log)
                med = float(np.median(r["times"]))
                results.setdefault((impl, model, N, H), []).append(med)
                log(f"  pass {p + 1} {model:8s} {N:>2}x{H:<4} {impl:15s} {1e3 * med:9.3f} ms "
                    f"(min {1e3 * min(r['times']):.3f}, max {1e3 * max(r['times']):.3f})")
    return results


def cell(meds):
    m = float(np.median(meds))
    lo, hi = min(meds), max(meds)
    fmt = (lambda v: f"{1e3 * v:.3f}") if m < 1e-3 else (lambda v: f"{1e3 * v:.2f}") if m < 0.1 \
        else (lambda v: f"{1e3 * v:.0f}")
    return f"{fmt(m)} [{fmt(lo)}-{fmt(hi)}]" if len(meds) > 1 else fmt(m)


def ratio_cell(ours, peers):
    """Median [range] over the passes of each pass's ratio ours / peer's: the two ran back to
    back in that pass, so a machine that drifts between passes moves both."""
    r = [a / b for a, b in zip(ours, peers)]
    m = float(np.median(r))
    return f"{m:.2f} [{min(r):.2f}-{max(r):.2f}]" if len(r) > 1 else f"{m:.2f}"


def rnn_flops(N, H, T=200, n_in=32, n_out=8):
    """Forward FLOPs of the RNN step: 2 N T (n_in H + H H + H n_out)."""
    return 2 * N * T * (n_in * H + H * H + H * n_out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["rnn", "family", "memory", "machine"], action="append")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--configs", default=",".join(f"{n}x{h}" for n, h in CONFIGS))
    ap.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                    help=f"comma-separated, of {', '.join(IMPLS)}")
    ap.add_argument("--no-wait", action="store_true",
                    help="time even while other processes use the CPUs (default: wait, and rerun a "
                         "worker during whose run others used more than 10%% of the CPUs)")
    ap.add_argument("--baseline", metavar="SRC",
                    help="also time the unrolled imported from SRC (another checkout's src/), in its own "
                         "processes alternating with this one's; adds the row unrolled / baseline")
    args = ap.parse_args()
    QUIET["on"] = not args.no_wait
    if args.baseline:
        BASELINE["src"] = os.path.abspath(args.baseline)
        if "baseline" not in args.impls.split(","):
            args.impls += ",baseline"
    only = set(args.only or ["machine", "rnn", "family", "memory"])
    configs = [tuple(int(v) for v in c.split("x")) for c in args.configs.split(",")]
    impls = [i for i in args.impls.split(",") if available(i)]
    missing = [i for i in args.impls.split(",") if not available(i)]
    lines = []

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    started = time.time()
    machine = worker("machine.py", [], log=log)
    lines.append(f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, NumPy {machine['numpy']}; "
                 f"float32 2048-cube matmul {machine['gflops']:.0f} GFLOP/s (best of 5; median "
                 f"{machine['gflops_median']:.0f}), (32x512)@(512x512) {machine['gflops_step']:.0f} GFLOP/s, "
                 f"4 MiB matrix streamed by matrix-vector products {machine['stream_gbs']:.1f} GB/s.")
    if missing:
        lines.append(f"Not installed, skipped: {', '.join(missing)}.")

    if "rnn" in only:
        worker("bench_unrolled.py", ["--N", 1, "--H", 32, "--repeats", 1], log=log)   # compiled code cached
        first = [worker("bench_unrolled.py", ["--N", 1, "--H", 32, "--repeats", 1], log=log) for _ in range(3)]
        lines.append("First call in a fresh process (RNN 32-32-8, float32; compiled code loaded from numba's "
                     "cache): " + ", ".join(f"{r['since_start']:.2f} s" for r in first) + " from the start of "
                     "the interpreter to the end of the first training step (of which the step: "
                     + ", ".join(f"{r['first_call']:.2f} s" for r in first) + ").")
        res = time_all([("rnn", N, H) for N, H in configs], impls, args.passes, args.repeats, log)
        head = "| implementation | " + " | ".join(f"{N}x{H}" for N, H in configs) + " |"
        lines += ["", "One training step of the RNN, ms: median of the passes' medians [range]; a ratio is the "
                  "median [range] of each pass's own ratio (the two ran back to back, on the machine as it "
                  "was then)", "",
                  head, "|---" * (len(configs) + 1) + "|"]
        for impl in impls:
            lines.append(f"| {IMPLS[impl][2]} | " + " | ".join(cell(res[(impl, 'rnn', N, H)])
                                                        for N, H in configs) + " |")
        med = {k: float(np.median(v)) for k, v in res.items()}
        for peer in ("jax", "torch", "numba-hand", "numpy-hand", "unrolled-unsplit", "baseline", "floor"):
            if peer in impls:
                lines.append(f"| unrolled / {peer} | " + " | ".join(
                    ratio_cell(res[("unrolled", "rnn", N, H)], res[(peer, "rnn", N, H)]) for N, H in configs) + " |")
        for N, H in configs:
            t = med[("unrolled", "rnn", N, H)]
            rate = 3 * rnn_flops(N, H) / t / 1e9
            lines.append(f"- {N}x{H}: 3x forward FLOPs / time = {rate:.0f} GFLOP/s, "
                         f"{100 * rate / machine['gflops']:.0f}% of the 2048-cube matmul rate")
            if H >= 1024:
                floor = 2 * 200 * H * H * 4 / (machine["stream_gbs"] * 1e9)
                lines.append(f"  memory floor at {N}x{H}: the {H * H * 4 / 2 ** 20:.0f} MiB recurrent matrix is "
                             f"read twice a step (forward, BPTT), 2 x 200 x {H * H * 4 / 2 ** 20:.0f} MiB at "
                             f"{machine['stream_gbs']:.1f} GB/s = {1e3 * floor:.0f} ms; unrolled takes "
                             f"{1e3 * t:.0f} ms ({100 * floor / t:.0f}% of its time)")

    if "family" in only:
        fam_impls = [i for i in ("unrolled", "numpy-hand") if i in impls]
        jobs = [(m, N, H) for m in ("narx", "elman", "rnn2skip", "rnn") for N, H in FAMILY_CONFIGS]
        res = time_all(jobs, fam_impls, args.passes, args.repeats, log)
        lines += ["", "The family, one training step, ms (median of the passes [range]); NARX taps x 0..2, "
                  "y 1..2; Elman context gradient blocked; RNN 2 layers with skips x->h2, h1->y", "",
                  "| model | batch x hidden | unrolled | hand-specialised NumPy | ratio |", "|---|---|---|---|---|"]
        for m, N, H in jobs:
            u, h = res[("unrolled", m, N, H)], res[("numpy-hand", m, N, H)]
            lines.append(f"| {m} | {N}x{H} | {cell(u)} | {cell(h)} | {ratio_cell(u, h)} |")

    if "memory" in only:
        lines += ["", "Memory: RNN 32-128-8, batch 1, float32, SGD after every window", "",
                  "| T | BPTT | peak RSS MiB | growth over warm-up MiB | arrays of one pass MiB | seconds |",
                  "|---|---|---|---|---|---|"]
        for T, bptt in [(10_000, 200), (100_000, 200), (25_000, 0), (100_000, 0)]:
            r = worker("memory.py", ["--T", T, "--bptt", bptt], log=log)
            lines.append(f"| {T:,} | {'window ' + str(bptt) if bptt else 'full'} | {r['peak_mib']:.0f} | "
                         f"{r['growth_mib']:.0f} | {r['pass_arrays_mib']:.1f} | {r['seconds']:.2f} |")

    lines.append(f"\n({time.time() - started:.0f} s; python {sys.version.split()[0]}; "
                 f"{QUIET['discarded']} runs discarded because other processes used the CPUs)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
