"""Yearly sunspots, the classic split: every training recipe of the library side by side.

No setting is chosen on a test year. Two ways of choosing are used:

- **the Bayesian evidence** (MacKay 1992), computed on 1700-1920 alone: for each net
  trained by Levenberg-Marquardt with Bayesian regularisation (``trainbr``),
  ``ln p(D | alpha, beta, net)`` from its final alpha, beta, E_D, E_W and the Gauss-Newton
  Hessian, with the hidden units' symmetry factor ``ln(H! 2^H)``; the grid is 1-5 units x
  6/9/12 taps x with/without the linear path, seeds 0-2, the median per setting;
- **validation on 1901-1920** (fit on 1700-1900) for the early-stopped recipes.

One row chooses nothing: every net of the grid, averaged with weights proportional to its
evidence (Bayesian model averaging over the grid, a uniform prior on its settings).

Then each chosen recipe is trained on 1700-1920 for seeds 0-4 and scored once on
1921-1955 and 1956-1979 by ARV (MSE over the variance of 1700-1979); ensembles of five
(member k of seed s built with seed 100 s + k) count as one draw a seed. The first
targets, whose taps read the zero history before 1700, are left out of every fit.

Run: python benchmarks/sunspots_evidence.py [--average-only]   (about 10 minutes on 2 cores)
"""

from __future__ import annotations

import itertools
import math

import numpy as np

import unrolled
from unrolled.divergences import SquaredError
from unrolled.least_squares import LeastSquares
from unrolled.optim import Adam, LevenbergMarquardt, WeightElimination
from unrolled.tasks import series as S

YEARS, VALUES, Z, (MEAN, SCALE), FIT_END = S.sunspot_series()
VARIANCE = float(np.var(VALUES))
VAL_END = int(np.searchsorted(YEARS, 1900, side="right"))       # validation fits on 1700-1900
GRID = list(itertools.product([1, 2, 3, 4, 5], [False, True], [6, 9, 12]))   # units x linear path x taps


def narx(H, linear, taps, seed):
    return unrolled.NARX(0, 1, input_delays=None, output_delays=taps, hidden=(H,), feedback="open", linear=linear,
                         dtype=np.float64, seed=seed)


def weights(d, taps, end):
    w = np.zeros(d.shape[1])
    w[taps:end - 1] = 1.0                   # targets z[taps + 1 .. end - 1]: no zero history read
    return w


def train(model, recipe, end, taps):
    x, d = S._sequences(model, Z[:FIT_END])
    w = weights(d, taps, end)
    if recipe["kind"] == "bayesian":
        return unrolled.fit(model, x, d, divergence=SquaredError(weights=w), progress=False, epochs=300,
                            optimizer=LevenbergMarquardt(bayesian=True)), (x, d, w)
    val = np.zeros_like(w)
    val[end - 1:] = 1.0
    kw = dict(validation=(x, d), validation_divergence=SquaredError(weights=val)) if end < FIT_END else {}
    if recipe["kind"] == "lm":
        return unrolled.fit(model, x, d, divergence=SquaredError(weights=w), optimizer=LevenbergMarquardt(),
                            epochs=recipe.get("epochs", 200), progress=False,
                            patience=10 if kw else None, **kw), (x, d, w)
    return unrolled.fit(model, x, d, divergence=SquaredError(weights=w), optimizer=Adam(0.01), batch_size=1,
                        epochs=recipe.get("epochs", 2000), regularizer=WeightElimination(recipe["strength"]),
                        progress=False, patience=100 if kw else None, **kw), (x, d, w)


def log_evidence(model, history, data, H):
    x, d, w = data
    problem = LeastSquares(model, x, d, np.array([d.shape[1]]), model.fit_inputs(x, d), SquaredError(weights=w),
                           None)
    sse, JtJ, _, n = problem.linearize()
    wv = problem.weights()
    P = len(wv)
    a, b = history.logs["alpha"][-1], history.logs["beta"][-1]
    _, logdet = np.linalg.slogdet(2 * b * JtJ + 2 * a * np.eye(P))
    return (n / 2 * math.log(b) + P / 2 * math.log(a) - (b * sse + a * wv @ wv) - logdet / 2
            + P / 2 * math.log(2 * math.pi) - (n + P) / 2 * math.log(math.pi) + math.lgamma(H + 1) + H * math.log(2))


def forecasts(model):
    return np.concatenate([[np.nan], S.one_step_forecasts(model, Z) * SCALE + MEAN])


def arvs(f, parts=("fit", "test1", "test2")):
    out = []
    for part in parts:
        m = S._mask(YEARS, part) & ~np.isnan(f)
        out.append(S.arv(f[m], VALUES[m], VARIANCE))
    return out


def val_arv(f):
    m = (YEARS >= 1901) & (YEARS <= 1920)
    return S.arv(f[m], VALUES[m], VARIANCE)


def choose_by_evidence():
    print("Bayesian evidence on 1700-1920 (median over seeds 0-2; higher is better)")
    print(f"{'units':>6}{'taps':>6}{'linear':>8}{'ln evidence':>13}{'gamma':>8}")
    best = None
    for H, linear, taps in GRID:
        evs, gammas = [], []
        for seed in range(3):
            model = narx(H, linear, taps, seed)
            history, data = train(model, {"kind": "bayesian"}, FIT_END, taps)
            evs.append(log_evidence(model, history, data, H))
            gammas.append(history.logs["gamma"][-1])
        ev = float(np.median(evs))
        print(f"{H:>6}{taps:>6}{str(linear):>8}{ev:>13.1f}{np.median(gammas):>8.1f}")
        if best is None or ev > best[0]:
            best = (ev, H, linear, taps)
    return best[1:]


def choose_by_validation(label, settings, make_recipe, H=8, taps=12):
    scores = []
    for value in settings:
        model = narx(H, False, taps, 0)
        train(model, make_recipe(value), VAL_END, taps)
        scores.append(val_arv(forecasts(model)))
    pick = settings[int(np.argmin(scores))]
    print(f"{label}: ARV on 1901-1920 " + ", ".join(f"{v}: {s:.3f}" for v, s in zip(settings, scores))
          + f" -> {pick}")
    return pick


def row(name, make, recipe, taps, members=1):
    results = []
    for seed in range(5):
        nets = [make(100 * seed + k if members > 1 else seed) for k in range(members)]
        for net in nets:        # the early-stopped recipes fit 1700-1900 and stop on 1901-1920
            train(net, recipe, FIT_END if recipe["kind"] == "bayesian" else VAL_END, taps)
        results.append(arvs(np.mean([forecasts(net) for net in nets], axis=0)))
    r = np.array(results)
    cells = [f"{np.median(r[:, i]):.3f} [{r[:, i].min():.3f}, {r[:, i].max():.3f}]" for i in range(3)]
    print(f"| {name} | " + " | ".join(cells) + " |")


def average_by_evidence_row():
    """Bayesian model averaging (MacKay 1992): for each seed, every net of the grid trained
    on 1700-1920, its forecasts weighted by its posterior probability, proportional to its
    evidence (the grid's prior uniform). Nothing is chosen: the evidence weighs every net."""
    results, top = [], []
    for seed in range(5):
        evs, fs = [], []
        for H, linear, taps in GRID:
            model = narx(H, linear, taps, seed)
            history, data = train(model, {"kind": "bayesian"}, FIT_END, taps)
            evs.append(log_evidence(model, history, data, H))
            fs.append(forecasts(model))
        evs = np.array(evs)
        p = np.exp(evs - evs.max())
        p /= p.sum()
        top.append(float(p.max()))
        results.append(arvs(np.tensordot(p, np.array(fs), axes=1)))
    r = np.array(results)
    cells = [f"{np.median(r[:, i]):.3f} [{r[:, i].min():.3f}, {r[:, i].max():.3f}]" for i in range(3)]
    print(f"| LM + Bayesian, the {len(GRID)} nets of the grid averaged by their evidence | " + " | ".join(cells) + " |")
    print(f"(the largest posterior weight in each seed's average: {', '.join(f'{t:.2f}' for t in top)})")


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--average-only", action="store_true", help="only the row of the evidence-weighted average")
    if ap.parse_args(argv).average_only:
        return average_by_evidence_row()
    H, linear, taps = choose_by_evidence()
    print(f"-> {H} units, {taps} taps, linear path {linear}\n")
    strength = choose_by_validation("Adam + weight elimination, 12 taps x 8 units, strength",
                                    [1e-4, 1e-3, 1e-2, 1e-1, 1.0], lambda s: {"kind": "adam", "strength": s})
    print()
    print("| one-step ARV, median [min, max] over seeds 0-4 | 1700-1920 (fit) | 1921-1955 | 1956-1979 |")
    print("|---|---|---|---|")
    tag = f"{H} units, {taps} taps" + (", linear path" if linear else "")
    row(f"LM + Bayesian, {tag} (by evidence)", lambda s: narx(H, linear, taps, s), {"kind": "bayesian"}, taps)
    row(f"LM + Bayesian, {tag}, ensemble of 5", lambda s: narx(H, linear, taps, s), {"kind": "bayesian"}, taps, 5)
    average_by_evidence_row()
    row("LM + Bayesian, 8 units, 12 taps (Weigend's size)", lambda s: narx(8, False, 12, s), {"kind": "bayesian"}, 12)
    row("LM, 8 units, 12 taps, stopped on 1901-1920", lambda s: narx(8, False, 12, s), {"kind": "lm"}, 12)
    row(f"Adam + weight elimination ({strength}), 8 units, 12 taps", lambda s: narx(8, False, 12, s),
        {"kind": "adam", "strength": strength}, 12)
    ar = arvs(S.ar_forecast(VALUES, 12, FIT_END))
    pers = arvs(S.persistence_forecast(VALUES))
    print("| AR(12), least squares | " + " | ".join(f"{v:.3f}" for v in ar) + " |")
    print("| persistence | " + " | ".join(f"{v:.3f}" for v in pers) + " |")
    print("| Weigend, Huberman, Rumelhart 1990 (weight elimination), as published | 0.082 | 0.086 | 0.35 |")
    print("| Tong and Lim 1980 (threshold AR), as published | | 0.097 | 0.28 |")
    print("| Nowlan and Hinton 1992 (soft weight sharing), as published | | 0.077 | |")


if __name__ == "__main__":
    main()
