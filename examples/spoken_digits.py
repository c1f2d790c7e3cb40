"""Spoken digits (FSDD, 13 MFCC a frame) with a bidirectional RNN, many-to-one.

Task: which digit 0-9 was spoken, 3000 recordings of 6-92 frames. Split: stratified
80/20 with seed 0 (stratified_split(y, 0.2, seed=0)): 2400 train, 600 test. From the
2400 a stratified 10% validation split (seed 0) is carved off for early stopping; the
test set is used only for the final score. Inputs standardised with the statistics of
the 2160 fitting sequences.

Model: BiRNN(13, 10, hidden=(32,), output="softmax") read out by
PooledMean(CrossEntropy()) (the read-out the JapaneseVowels validation split picked;
not re-chosen here), Adam(0.005), batch 32, up to 25 epochs, early stopping
(patience 5). Seeds 0, 1, 2. Sizes chosen so the script runs in a few minutes on
2 CPU cores. Writes the seed-0 confusion matrix of the test set to --plot.

The pipeline is unrolled.tasks.sequences.spoken_digits (one seed a call);
`unrolled train --task spoken-digits` runs it from the command line.

`--cell lstm` or `--cell gru` gives the BiRNN gated layers, all else the same.

Run: PYTHONPATH=src python examples/spoken_digits.py [--plot spoken-digits-confusion.png] [--cell tanh|lstm|gru]
"""

import argparse
import time

import numpy as np

from unrolled.tasks.plots import plot_confusion
from unrolled.tasks.sequences import spoken_digits

HIDDEN = (32,)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plot", default="spoken-digits-confusion.png")
    ap.add_argument("--cell", default="tanh", choices=("tanh", "lstm", "gru"),
                    help="the BiRNN's layers (default tanh; all else the same)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    accs = []
    for seed in (0, 1, 2):
        result = spoken_digits(seed, cell=args.cell)
        accs.append(result.metrics["accuracy"])
        print(f"seed {seed}: {result.history.epochs} epochs, test accuracy {accs[-1]:.4f} "
              f"({time.perf_counter() - t0:.0f} s)")
        if seed == 0:
            cm = result.confusion
            plot_confusion(cm, args.plot, f"FSDD test (600), BiRNN {args.cell} seed 0: acc {accs[-1]:.3f}",
                           what="digit")
            print(f"confusion matrix (rows true, cols predicted) -> {args.plot}\n{cm}")
    print()
    print("| model | split | test accuracy, median of seeds 0-2 | range |")
    print("|---|---|---|---|")
    print(f"| BiRNN 2x{HIDDEN[0]} {args.cell}, PooledMean(CrossEntropy) | stratified 80/20, seed 0 (600 test) "
          f"| {np.median(accs):.3f} | {min(accs):.3f}-{max(accs):.3f} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
