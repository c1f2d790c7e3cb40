"""Worker: PyTorch ``nn.RNN`` (``--model rnn``), ``nn.LSTM`` or ``nn.GRU`` (``lstm``, ``gru``) +
``nn.Linear`` with autograd on the CPU, a learned initial state (h0; an LSTM's c0 too).
``--threads``: torch.set_num_threads (default: the CPUs this process may use, as unrolled);
``--variant one-thread``: one thread."""

import os
import sys

import torch

from _common import N_IN, N_OUT, data, parse_args, report, time_steps

MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def main():
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if "--threads" in sys.argv:
        i = sys.argv.index("--threads")
        threads = int(sys.argv[i + 1])
        del sys.argv[i: i + 2]
    args = parse_args(__doc__)
    if args.variant == "one-thread":
        threads = 1
    if args.model not in MODULES:
        raise SystemExit(f"bench_torch times {', '.join(MODULES)} only")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    N, H = args.N, args.H
    rnn = MODULES[args.model](N_IN, H, batch_first=True)
    lin = torch.nn.Linear(H, N_OUT)
    h0 = torch.nn.Parameter(torch.zeros(1, 1, H))
    c0 = torch.nn.Parameter(torch.zeros(1, 1, H))
    params = list(rnn.parameters()) + list(lin.parameters()) + [h0] + ([c0] if args.model == "lstm" else [])
    x, d = (torch.from_numpy(a) for a in data(N, args.T))

    def step():
        for p in params:
            p.grad = None
        h = h0.expand(1, N, H).contiguous()
        out, _ = rnn(x, (h, c0.expand(1, N, H).contiguous()) if args.model == "lstm" else h)
        loss = ((lin(out) - d) ** 2).sum() / N
        loss.backward()
        return loss

    report(time_steps(step, args.repeats, args.warmup), threads=torch.get_num_threads(), version=torch.__version__)


if __name__ == "__main__":
    main()
