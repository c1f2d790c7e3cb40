"""The default threads against one thread, on an idle machine and with one core kept busy.

    python benchmarks/contention.py [--configs 32x128,32x512,8x1024] [--T 100] [--passes 2] [--seconds 2]

A training step (forward, squared error, BPTT without dx; ``_common``'s task) of an RNN
of one hidden layer, timed in a fresh process for each setting: ``default`` (the thread
policy, ``unrolled.get_num_threads()`` threads where a split pays) and ``one``
(``unrolled.set_num_threads(1)``). The two alternate (their order flips every pass),
first on an idle machine (each run waits until other processes leave the CPUs, and is
rerun if they came back meanwhile: ``run.worker``), then with another process spinning on
the last usable CPU ("busy"; the column "others" is the share of the machine's CPU time
that processes other than the step used during its run: the spinning one alone is 0.5
on 2 CPUs). Prints each pass's medians and the ratio default / one: under load the
default should take at most 1.1x the time of one thread; idle, what the splits give.
Processes of the same code differ by up to 1.4x here (at 32x128 more than the settings
do), so each machine state ends with the same comparison inside one process too (a
fresh one for each configuration): ``--rounds`` rounds of ~0.25 s blocks of each
setting, in turns (``with unrolled.num_threads(...)``), the ratio of each round's medians.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from run import QUIET, cpu_jiffies, others_share, worker as run_worker

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = ("default", "one")
INTERLEAVED = "interleaved"


def worker(args):
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))
    import unrolled
    from unrolled.divergences import SquaredError
    from unrolled.engine.kernels import threads

    from _common import N_IN, N_OUT, data, time_steps

    if args.worker == "one":
        unrolled.set_num_threads(1)
    model = unrolled.RNN(N_IN, N_OUT, hidden=(args.H,), seed=0)
    x, d = data(args.N, args.T)
    div = SquaredError()
    stayed = [0]

    def step():
        stayed[0] += threads.contended()
        y, cache = model.forward(x)
        _, dy = div(y, d)
        cache.input_grads = False
        model.backward(dy, cache)

    time_steps(step, 0, args.warmup - 1)
    each = time_steps(step, 1, 0)[0]                   # the last warm-up step
    if args.worker == INTERLEAVED:
        return interleaved(step, each, args, unrolled)
    repeats = max(args.repeats, min(int(args.seconds / each), 1000))     # ~``seconds`` of steps
    times = time_steps(step, repeats, 0)
    print(json.dumps({"median": statistics.median(times), "one_thread_steps": stayed[0],
                      "steps": repeats + args.warmup, "threads": unrolled.get_num_threads()}))


def timed(setting, N, H, args, extra=()):
    """The worker's report for one setting, with ``others``: the share of the CPUs other
    processes used meanwhile."""
    before, usage0 = cpu_jiffies(), os.times()
    got = run_worker(os.path.basename(__file__), ["--worker", setting, "--N", N, "--H", H, "--T", args.T,
                                                   "--repeats", args.repeats, "--warmup", args.warmup,
                                                   "--seconds", args.seconds, *extra])
    usage1 = os.times()
    own = (usage1.children_user - usage0.children_user) + (usage1.children_system - usage0.children_system)
    got["others"] = others_share(before, cpu_jiffies(), own)
    return got


def interleaved(step, each, args, unrolled):
    """Blocks of ~0.25 s of steps, with the default and with one thread in turn (the order
    flipping every round), in this one process: the ratios of the rounds' medians."""
    from _common import time_steps
    n = max(3, int(0.25 / each))
    ratios, medians = [], {s: [] for s in SETTINGS}
    for r in range(args.rounds):
        got = {}
        for s in (SETTINGS if r % 2 == 0 else SETTINGS[::-1]):
            with unrolled.num_threads(1 if s == "one" else None):
                got[s] = statistics.median(time_steps(step, n, 0))
            medians[s].append(got[s])
        ratios.append(got["default"] / got["one"])
    print(json.dumps({"ratios": ratios, **{s: statistics.median(m) for s, m in medians.items()}}))


def busy_process():
    """A process spinning on the last usable CPU, until killed."""
    cpu = max(os.sched_getaffinity(0))
    code = f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True:\n    pass\n"
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.3)
    return proc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="32x128,32x512,8x1024", help="batch x hidden, comma separated")
    ap.add_argument("--T", type=int, default=100, help="time steps")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10, help="steps timed in a process, at least")
    ap.add_argument("--seconds", type=float, default=2.0, help="steps timed in a process, about")
    ap.add_argument("--warmup", type=int, default=3, help="steps before timing, at least 1")
    ap.add_argument("--machine", default="idle,busy", help="idle, busy, or both (comma separated)")
    ap.add_argument("--rounds", type=int, default=8, help="rounds of the one-process comparison (0: none)")
    ap.add_argument("--worker", choices=SETTINGS + (INTERLEAVED,), help=argparse.SUPPRESS)
    ap.add_argument("--N", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--H", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    configs = [tuple(int(v) for v in c.split("x")) for c in args.configs.split(",")]
    print(f"T = {args.T}, ~{args.seconds:g} s of steps (at least {args.repeats}) after {args.warmup}, "
          f"medians in ms; load average "
          f"{os.getloadavg()[0]:.2f} on {len(os.sched_getaffinity(0))} usable CPUs")
    print("| machine | batch x hidden | pass | default, ms | one thread, ms | default / one | "
          "default: steps begun on one thread | others (default, one) |")
    print("|---|---|---|---|---|---|---|---|")
    summary, rounds = {}, {}
    for machine in args.machine.split(","):
        QUIET["on"] = machine == "idle"
        busy = busy_process() if machine == "busy" else None
        try:
            for p in range(args.passes):
                for N, H in configs:
                    order = SETTINGS if p % 2 == 0 else SETTINGS[::-1]
                    got = {s: timed(s, N, H, args) for s in order}
                    ratio = got["default"]["median"] / got["one"]["median"]
                    summary.setdefault((machine, N, H), []).append(ratio)
                    print(f"| {machine} | {N}x{H} | {p + 1} | {1e3 * got['default']['median']:.1f} | "
                          f"{1e3 * got['one']['median']:.1f} | {ratio:.2f} | "
                          f"{got['default']['one_thread_steps']}/{got['default']['steps']} | "
                          f"{got['default']['others']:.2f}, {got['one']['others']:.2f} |", flush=True)
            for N, H in configs if args.rounds else ():
                got = timed(INTERLEAVED, N, H, args, ("--rounds", args.rounds))
                rounds[(machine, N, H)] = got
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    print("\n| machine | batch x hidden | default / one, each pass (own processes) | "
          "in one process: default, one thread (ms) | default / one, median [range] of the rounds |")
    print("|---|---|---|---|---|")
    for key, ratios in summary.items():
        machine, N, H = key
        one = rounds.get(key)
        inside = "" if one is None else (f"{1e3 * one['default']:.1f}, {1e3 * one['one']:.1f} | "
                                         f"{statistics.median(one['ratios']):.2f} "
                                         f"[{min(one['ratios']):.2f}-{max(one['ratios']):.2f}]")
        print(f"| {machine} | {N}x{H} | {', '.join(f'{r:.2f}' for r in ratios)} | {inside or ' | '} |")


if __name__ == "__main__":
    main()
