"""The lecture's family on the yearly sunspots: choose by validation, then score on the test years.

For each model a small grid of sizes (and taps) is tried with one seed; the setting
with the lowest divergence on 1901-1920 (held out of the gradient, inside the fit
period) is kept, then trained with seeds 0-4. The table gives the median one-step
ARV on 1921-1955 and 1956-1979 and the median closed-loop ARV on 1921-1955 for
horizons 1 to 8 years. The test years are used for nothing but the final scores.

    python examples/sunspots_family.py            # about 5 minutes on 2 cores
"""

import itertools
import sys

import numpy as np

from unrolled import RNN
from unrolled.models.elman import Elman
from unrolled.models.jordan import Jordan
from unrolled.models.narx import NARX
from unrolled.models.tdnn import TDNN
from unrolled.tasks.series import ar_multi_step_table, multi_step_table, train_sunspots

HIDDEN = [4, 8, 16]
TAPS = [4, 8, 12]
GRIDS = {
    "NARX": [dict(make=lambda h, k, s: NARX(0, 1, input_delays=[], output_delays=k, hidden=(h,),
                                            feedback="open", seed=s), h=h, k=k) for h, k in itertools.product(HIDDEN, TAPS)],
    "TDNN": [dict(make=lambda h, k, s: TDNN(1, 1, width=k - 1, hidden=(h,), seed=s), h=h, k=k)
             for h, k in itertools.product(HIDDEN, TAPS)],
    "Elman": [dict(make=lambda h, k, s: Elman(1, 1, hidden=(h,), seed=s), h=h, k=None) for h in HIDDEN],
    "Jordan": [dict(make=lambda h, k, s: Jordan(1, 1, hidden=(h,), seed=s), h=h, k=None) for h in HIDDEN],
    "RNN": [dict(make=lambda h, k, s: RNN(1, 1, hidden=(h,), seed=s), h=h, k=None) for h in HIDDEN],
}


def main(seeds=range(5)):
    rows = {}
    for name, grid in GRIDS.items():
        best = None
        for cfg in grid:
            r = train_sunspots(cfg["make"](cfg["h"], cfg["k"], 0), seed=0, progress=False)
            val = min(r.history.val_loss)
            if best is None or val < best[0]:
                best = (val, cfg)
        cfg = best[1]
        results, horizons = [], []
        for s in seeds:
            r = train_sunspots(cfg["make"](cfg["h"], cfg["k"], s), seed=s, progress=False)
            if name == "NARX":
                r.model.closed_loop()
            results.append([r.table["model"][p] for p in ("fit", "test1", "test2")])
            horizons.append(list(multi_step_table(r.model).values()))
        label = f"{name} (hidden {cfg['h']}" + (f", taps {cfg['k']})" if cfg["k"] else ")")
        rows[label] = (np.median(results, axis=0), np.median(horizons, axis=0))
        print(f"{label}: chosen on 1901-1920 (val {best[0]:.4f})", file=sys.stderr, flush=True)
    base = train_sunspots(RNN(1, 1, hidden=(4,), seed=0), epochs=1, progress=False).table
    ar_h = list(ar_multi_step_table().values())
    print(f"\n| model | ARV 1700-1920 (fit) | 1921-1955 | 1956-1979 | closed loop, 1921-1955, h = 1..8 |")
    print("|---|---|---|---|---|")
    for label, (one, multi) in rows.items():
        print(f"| {label} | {one[0]:.3f} | {one[1]:.3f} | {one[2]:.3f} | " + " ".join(f"{v:.2f}" for v in multi) + " |")
    for key in ("persistence", "AR(12)"):
        t = base[key]
        tail = " ".join(f"{v:.2f}" for v in ar_h) if key == "AR(12)" else ""
        print(f"| {key} | {t['fit']:.3f} | {t['test1']:.3f} | {t['test2']:.3f} | {tail} |")


if __name__ == "__main__":
    main()
