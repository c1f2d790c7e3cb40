"""unrolled against pyrenn on the same NARX with the same weights: Jacobian, LM iteration, training.

pyrenn (pip install pyrenn) trains the classic dynamic nets with Levenberg-Marquardt
and real-time recurrent learning, in per-step Python. Here both get one closed-loop NARX
(tanh hidden layer, linear output, input taps 0..1, output taps 1..K) with the same
weights, on the yearly sunspots (the target) driven by a random input:

1. the Jacobian of the outputs with respect to the weights (pyrenn's RTRL; ours
   ``analysis.jacobian``), compared entry by entry (pyrenn's J is d(error)/dw = -dy/dw);
2. the time of one LM iteration (Jacobian, J^T J, one damped solve, one trial pass);
3. the wall time of a whole training run, the same number of iterations on both sides;
4. the wall time of training to convergence: ours until no step lowers the error (the
   damping past mu_max), pyrenn for as many iterations (it has no such test).

Run: python benchmarks/pyrenn_lm.py [--hidden 8] [--taps 12] [--steps 220] [--iters 20] [--max-iters 500]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np

import unrolled
from unrolled.analysis import jacobian
from unrolled.datasets import load_sunspots
from unrolled.divergences import SquaredError
from unrolled.engine import backend
from unrolled.least_squares import LeastSquares
from unrolled.optim import LevenbergMarquardt


def pyrenn_net(hidden, taps, seed):
    import pyrenn
    net = pyrenn.CreateNN([1, hidden, 1], dIn=[0, 1], dIntern=[], dOut=list(range(1, taps + 1)))
    net["w"] = np.random.default_rng(seed).uniform(-0.5, 0.5, size=net["N"])
    return net


def ours_from(net, hidden, taps):
    """Our NARX with pyrenn's weights, and the column of our J for each entry of its w."""
    import pyrenn
    model = unrolled.NARX(1, 1, input_delays=1, output_delays=taps, hidden=(hidden,), dtype=np.float64, seed=0)
    names = {("IW", 1, 1, d): f"W[x->h1@{d}]" for d in (0, 1)}
    names.update({("LW", 1, 2, d): f"W[y->h1@{d}]" for d in range(1, taps + 1)})
    names.update({("LW", 2, 1, 0): "W[h1->y@0]", ("b", 1): "b[h1]", ("b", 2): "b[y]"})
    offsets, at = {}, 0
    for name, p in model.params.items():
        offsets[name] = at
        at += p.size
    column = np.empty(net["N"], dtype=int)
    w = net["w"].copy()
    for k in range(net["N"]):                      # which matrix entry is w[k]: a unit vector tells
        net["w"] = np.eye(net["N"])[k]
        IW, LW, b = pyrenn.w2Wb(net)
        found = [(("IW",) + key, m) for key, m in IW.items()] + [(("LW",) + key, m) for key, m in LW.items()] \
            + [(("b", key), m.reshape(-1, 1)) for key, m in b.items()]
        for key, m in found:
            if np.any(m):
                i, j = np.argwhere(m)[0]
                p = model.params[names[key]]
                column[k] = offsets[names[key]] + np.ravel_multi_index((i, j) if p.ndim == 2 else (i,), p.shape)
    net["w"] = w
    IW, LW, b = pyrenn.w2Wb(net)
    for key, m in IW.items():
        model.params[names[("IW",) + key]][...] = m
    for key, m in LW.items():
        model.params[names[("LW",) + key]][...] = m
    for key, m in b.items():
        model.params[names[("b", key)]][...] = m
    return model, column


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None):
    import pyrenn
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--taps", type=int, default=12)
    ap.add_argument("--steps", type=int, default=220)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--max-iters", type=int, default=500, help="the most iterations of the run to convergence")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    years, values = load_sunspots()
    y = values[:args.steps]
    y = (y - y.mean()) / y.std()
    u = np.random.default_rng(args.seed).normal(size=args.steps)
    net = pyrenn_net(args.hidden, args.taps, args.seed)
    model, column = ours_from(net, args.hidden, args.taps)
    # pyrenn scales its data to [-1, 1] (prepare_data); both sides then see those numbers
    data, net = pyrenn.prepare_data(u[None, :], y[None, :], net)
    x, d = data["P"].T[None], data["Y"].T[None]                         # (1, T, 1)

    # 1. the same outputs and the same Jacobian
    theirs = pyrenn.NNOut_(data["P"], net, *pyrenn.w2Wb(net), a={})[0][0]
    ours = model.predict(x)[0, :, 0]
    J_py, _, _ = pyrenn.RTRL(net, data)                  # (T, P): d error / dw
    J = jacobian(model, x)[0, :, 0, :][:, column]        # (T, P) in pyrenn's order
    out_err = np.abs(ours - theirs).max() / np.abs(theirs).max()
    jac_err = np.abs(J + J_py).max() / np.abs(J_py).max()

    # 2. one LM iteration: Jacobian, J^T J, a damped solve, one trial pass
    def pyrenn_iteration():
        Jp, E, e = pyrenn.RTRL(net, data)
        w_delta = -np.linalg.inv(Jp.T @ Jp + 3.0 * np.eye(net["N"])) @ (Jp.T @ e)
        w = net["w"]
        net["w"] = w + w_delta
        pyrenn.calc_error(net, data)
        net["w"] = w

    problem = LeastSquares(model, x, d, np.array([args.steps]), {}, SquaredError(), lambda what, v: None)

    def our_iteration():                                   # (on the BLAS threads fit gives it)
        with backend.linear_algebra_threads(problem.size):
            w = problem.weights()
            sse, JtJ, Jte, n = problem.linearize()
            problem.set_weights(w - np.linalg.solve(JtJ + 1e-3 * np.eye(len(w)), Jte))
            problem.sse()
            problem.set_weights(w)

    our_iteration()
    t_ours = best_of(our_iteration, 20)
    t_py = best_of(pyrenn_iteration, 3)

    # 3. a training run of the same number of iterations on each side, from the same weights
    start = net["w"].copy()
    twin = unrolled.NARX(1, 1, input_delays=1, output_delays=args.taps, hidden=(args.hidden,), dtype=np.float64,
                         seed=0)                           # (fit's first call loads its compiled code)
    unrolled.fit(twin, x, d, divergence=SquaredError(), optimizer=LevenbergMarquardt(), epochs=1, progress=False)
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):        # (it prints why it stopped)
        trained = pyrenn.train_LM(u[None, :], y[None, :], net, k_max=args.iters, E_stop=1e-12, verbose=False)
    t_py_train = time.perf_counter() - t
    e_py = float(trained["ErrorHistory"][-1]) if len(trained["ErrorHistory"]) else float("nan")
    net["w"] = start
    t = time.perf_counter()
    history = unrolled.fit(model, x, d, divergence=SquaredError(), optimizer=LevenbergMarquardt(),
                           epochs=args.iters, progress=False)
    t_ours_train = time.perf_counter() - t

    # 4. to convergence: ours until no step lowers the error (mu past mu_max) or --max-iters;
    # pyrenn has no such test (its inner loop would raise its damping for ever), so it runs
    # as many iterations as ours took
    net["w"] = start
    model_c, _ = ours_from(net, args.hidden, args.taps)
    t = time.perf_counter()
    conv = unrolled.fit(model_c, x, d, divergence=SquaredError(), optimizer=LevenbergMarquardt(),
                        epochs=args.max_iters, progress=False)
    t_ours_conv = time.perf_counter() - t
    k_conv = len(conv.loss)
    net["w"] = start
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        trained_c = pyrenn.train_LM(u[None, :], y[None, :], net, k_max=k_conv, E_stop=1e-12, verbose=False)
    t_py_conv = time.perf_counter() - t
    e_py_conv = float(trained_c["ErrorHistory"][-1]) if len(trained_c["ErrorHistory"]) else float("nan")

    P = net["N"]
    print(f"NARX closed loop: 1 input (taps 0..1), {args.hidden} tanh units, {args.taps} output taps; "
          f"P = {P} weights, T = {args.steps} steps of the yearly sunspots")
    print(f"same weights, outputs: max relative difference {out_err:.1e}")
    print(f"same weights, Jacobian (T x P): max relative difference {jac_err:.1e}")
    print()
    print(f"{'':34}{'pyrenn 0.1':>14}{'unrolled':>14}{'ratio':>10}")
    print(f"{'one LM iteration (s)':34}{t_py:>14.4f}{t_ours:>14.5f}{t_py / t_ours:>9.0f}x")
    print(f"{f'{args.iters} LM iterations, training (s)':34}{t_py_train:>14.2f}{t_ours_train:>14.3f}"
          f"{t_py_train / t_ours_train:>9.0f}x")
    print(f"{'sum of squared errors after':34}{e_py:>14.4g}{history.loss[-1]:>14.4g}")
    done = "converged" if conv.stopped_early else "stopped at --max-iters"
    print(f"{f'to convergence, {k_conv} iterations (s)':34}{t_py_conv:>14.2f}{t_ours_conv:>14.3f}"
          f"{t_py_conv / t_ours_conv:>9.0f}x   (ours {done})")
    print(f"{'sum of squared errors after':34}{e_py_conv:>14.4g}{conv.loss[-1]:>14.4g}")


if __name__ == "__main__":
    main()
