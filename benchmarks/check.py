"""Check that the hand-specialised loops compute what the engine computes (same weights).

    python benchmarks/check.py

A benchmark against a loop of other math would compare nothing: each hand loop of
``bench_numpy`` (and ``bench_numba``) must give the engine's loss and gradients.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

import numpy as np  # noqa: E402

from unrolled.divergences import SquaredError  # noqa: E402

import bench_numba  # noqa: E402
import bench_numpy  # noqa: E402
from _common import NARX_IN, NARX_OUT, data  # noqa: E402
from bench_unrolled import build  # noqa: E402

# engine parameter name -> hand-loop name, per model
NAMES = {
    "rnn": {"W[x->h1@0]": "Wx", "W[h1->h1@1]": "Wh", "b[h1]": "b", "init[h1]": "h0", "W[h1->y@0]": "Wo",
            "b[y]": "bo"},
    "elman": {"W[x->h1@0]": "Wx", "W[c1->h1@0]": "Wc", "b[h1]": "b", "W[h1->y@0]": "Wo", "b[y]": "bo"},
    "rnn2skip": {"W[x->h1@0]": "Wx1", "W[h1->h1@1]": "Wh1", "b[h1]": "b1", "init[h1]": "h01",
                 "W[h1->h2@0]": "W12", "W[x->h2@0]": "Wx2", "W[h2->h2@1]": "Wh2", "b[h2]": "b2",
                 "init[h2]": "h02", "W[h2->y@0]": "Wo", "W[h1->y@0]": "Wo1", "b[y]": "bo"},
    "narx": {**{f"W[x->h1@{i}]": f"Wx{i}" for i in range(NARX_IN + 1)},
             **{f"W[y->h1@{k}]": f"Wy{k}" for k in range(1, NARX_OUT + 1)},
             "b[h1]": "b", "W[h1->y@0]": "Wo", "b[y]": "bo"},
}


def main():
    N, T, H = 4, 30, 16
    x, d = data(N, T, seed=1)
    worst = 0.0
    for model, names in NAMES.items():
        net = build(model, H)
        rng = np.random.default_rng(2)
        for value in net.params.values():
            value[...] = rng.normal(size=value.shape) * 0.3
        y, cache = net.forward(x)
        loss, dy = SquaredError()(y, d)
        grads, _ = net.backward(dy, cache)
        p = {names[k]: v.reshape(-1) if k.startswith("init") else v for k, v in net.params.items()}
        xs, ds = np.ascontiguousarray(np.swapaxes(x, 0, 1)), np.ascontiguousarray(np.swapaxes(d, 0, 1))
        runs = [("numpy", bench_numpy.STEPS[model])] + ([("numba", bench_numba.rnn_step)] if model == "rnn" else [])
        for label, fn in runs:
            hand_loss, g = fn(p, xs, ds, N)
            errs = [abs(hand_loss - loss) / abs(loss)]
            for key, name in names.items():
                ref = grads[key].reshape(-1)
                errs.append(np.max(np.abs(g[name].reshape(-1) - ref)) / (np.max(np.abs(ref)) + 1e-30))
            worst = max(worst, max(errs))
            print(f"{model:9s} {label:6s} max relative difference {max(errs):.1e}")
    if worst > 1e-4:
        raise SystemExit(f"hand loops disagree with the engine: {worst:.1e}")


if __name__ == "__main__":
    main()
