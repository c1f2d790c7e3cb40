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

Run: PYTHONPATH=src python examples/spoken_digits.py [--plot spoken-digits-confusion.png]
"""

import argparse
import time

import numpy as np

import unrolled
from unrolled.datasets import load_spoken_digits, pad_sequences, stratified_split
from unrolled.divergences import CrossEntropy, PooledMean
from unrolled.optim import Adam

HIDDEN, LR, EPOCHS, BATCH, PATIENCE = (32,), 0.005, 25, 32, 5


def pooled_predictions(model, x, lengths):
    out = model.predict(x, lengths=lengths)
    mask = (np.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]
    return ((out * mask).sum(1) / lengths[:, None]).argmax(-1)


def plot_confusion(cm, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(cm, cmap="Blues")
    for i in range(10):
        for j in range(10):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plot", default="spoken-digits-confusion.png")
    args = ap.parse_args()
    t0 = time.perf_counter()
    x, y = load_spoken_digits()
    train_idx, test_idx = stratified_split(y, 0.2, seed=0)
    fit_pos, val_pos = stratified_split(y[train_idx], 0.1, seed=0)
    fit_idx, val_idx = train_idx[fit_pos], train_idx[val_pos]
    frames = np.concatenate([x[i] for i in fit_idx])
    mu, sd = frames.mean(0), frames.std(0)
    prep = lambda idx: pad_sequences([(x[i] - mu) / sd for i in idx])
    (xf, lf), (xv, lv), (xt, lt) = prep(fit_idx), prep(val_idx), prep(test_idx)
    yf, yv, yt = y[fit_idx], y[val_idx], y[test_idx]

    accs = []
    for seed in (0, 1, 2):
        model = unrolled.BiRNN(13, 10, hidden=HIDDEN, output="softmax", seed=seed)
        h = unrolled.fit(model, xf, yf, lengths=lf, divergence=PooledMean(CrossEntropy()), optimizer=Adam(LR),
                         epochs=EPOCHS, batch_size=BATCH, validation=(xv, yv, lv), patience=PATIENCE, clip=5.0,
                         seed=seed, progress=False)
        pred = pooled_predictions(model, xt, lt)
        accs.append(float(np.mean(pred == yt)))
        print(f"seed {seed}: {h.epochs} epochs, test accuracy {accs[-1]:.4f} ({time.perf_counter() - t0:.0f} s)")
        if seed == 0:
            cm = np.zeros((10, 10), dtype=int)
            np.add.at(cm, (yt, pred), 1)
            plot_confusion(cm, args.plot, f"FSDD test (600), BiRNN seed 0: acc {accs[-1]:.3f}")
            print(f"confusion matrix (rows true, cols predicted) -> {args.plot}\n{cm}")
    print()
    print("| model | split | test accuracy, median of seeds 0-2 | range |")
    print("|---|---|---|---|")
    print(f"| BiRNN 2x{HIDDEN[0]} tanh, PooledMean(CrossEntropy) | stratified 80/20, seed 0 (600 test) "
          f"| {np.median(accs):.3f} | {min(accs):.3f}-{max(accs):.3f} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
