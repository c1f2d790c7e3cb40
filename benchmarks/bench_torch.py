"""Worker: PyTorch ``nn.RNN`` + ``nn.Linear`` with autograd, a learned h0 (``--model rnn`` only)."""

import torch

from _common import N_IN, N_OUT, data, parse_args, report, time_steps


def main():
    args = parse_args(__doc__)
    if args.model != "rnn":
        raise SystemExit("bench_torch times the plain RNN only")
    torch.manual_seed(0)
    N, H = args.N, args.H
    rnn = torch.nn.RNN(N_IN, H, batch_first=True)
    lin = torch.nn.Linear(H, N_OUT)
    h0 = torch.nn.Parameter(torch.zeros(1, 1, H))
    params = list(rnn.parameters()) + list(lin.parameters()) + [h0]
    x, d = (torch.from_numpy(a) for a in data(N, args.T))

    def step():
        for p in params:
            p.grad = None
        out, _ = rnn(x, h0.expand(1, N, H).contiguous())
        loss = ((lin(out) - d) ** 2).sum() / N
        loss.backward()
        return loss

    report(time_steps(step, args.repeats, args.warmup), threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
