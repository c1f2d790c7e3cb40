"""JapaneseVowels speaker recognition with a bidirectional RNN, many-to-one.

Task: which of 9 speakers uttered /ae/, from 12 LPC cepstrum coefficients a frame
(variable lengths 7-29). Split: the archive's own train/test split (270 / 370).
From the 270 training sequences a stratified 20% validation split (seed 0) is carved
off; it picks the many-to-one read-out (LastStep vs PooledMean over a softmax output,
chosen once on seed 0) and the stopping epoch. The test set is used only for the
final score. Inputs are standardised with the statistics of the 216 fitting sequences.

Model: BiRNN(12, 9, hidden=(32,), output="softmax"), Adam(0.005), batch 16, up to 60
epochs, early stopping (patience 10) on the validation loss. Seeds 0, 1, 2 (weights
and minibatch order). Sizes chosen to keep the whole script near a minute on 2 CPU
cores, not tuned on the test set.

The pipeline is unrolled.tasks.sequences.japanese_vowels (one seed a call);
`unrolled train --task japanese-vowels` runs it from the command line.

`--cell lstm` or `--cell gru` gives the BiRNN gated layers, all else the same (the
read-out is chosen again on seed 0's validation split).

Run: PYTHONPATH=src python examples/japanese_vowels.py [--cell tanh|lstm|gru]
"""

import argparse
import time

import numpy as np

from unrolled.tasks.sequences import japanese_vowels

HIDDEN = (32,)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="tanh", choices=("tanh", "lstm", "gru"),
                    help="the BiRNN's layers (default tanh; all else the same)")
    cell = ap.parse_args().cell
    t0 = time.perf_counter()
    # choose the read-out on the validation split only (seed 0)
    first = {r: japanese_vowels(0, readout=r, cell=cell) for r in ("last", "pooled")}
    val_acc = {r: res.metrics["val_accuracy"] for r, res in first.items()}
    readout = max(val_acc, key=lambda r: (val_acc[r], r == "last"))
    print(f"validation accuracy (seed 0): LastStep {val_acc['last']:.3f}, PooledMean {val_acc['pooled']:.3f}"
          f" -> {readout}")

    accs = []
    for seed in (0, 1, 2):
        result = first[readout] if seed == 0 else japanese_vowels(seed, readout=readout, cell=cell)
        accs.append(result.metrics["accuracy"])
        print(f"seed {seed}: test accuracy {accs[-1]:.4f}")
    name = "LastStep" if readout == "last" else "PooledMean"
    print()
    print("| model | read-out | test accuracy, median of seeds 0-2 | range |")
    print("|---|---|---|---|")
    print(f"| BiRNN 2x{HIDDEN[0]} {cell}, softmax | {name}(CrossEntropy) | {np.median(accs):.3f} "
          f"| {min(accs):.3f}-{max(accs):.3f} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
