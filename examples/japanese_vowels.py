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

Run: PYTHONPATH=src python examples/japanese_vowels.py
"""

import time

import numpy as np

import unrolled
from unrolled.datasets import load_japanese_vowels, pad_sequences, stratified_split
from unrolled.divergences import CrossEntropy, LastStep, PooledMean
from unrolled.optim import Adam

HIDDEN, LR, EPOCHS, BATCH, PATIENCE = (32,), 0.005, 60, 16, 10


def accuracy(model, x, lengths, y, readout):
    out = model.predict(x, lengths=lengths)
    if readout == "last":
        scores = out[np.arange(len(x)), lengths - 1]
    else:
        mask = (np.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]
        scores = (out * mask).sum(1) / lengths[:, None]
    return float(np.mean(scores.argmax(-1) == y))


def train(seed, readout, xf, lf, yf, xv, lv, yv):
    model = unrolled.BiRNN(12, 9, hidden=HIDDEN, output="softmax", seed=seed)
    div = LastStep(CrossEntropy()) if readout == "last" else PooledMean(CrossEntropy())
    unrolled.fit(model, xf, yf, lengths=lf, divergence=div, optimizer=Adam(LR), epochs=EPOCHS,
                 batch_size=BATCH, validation=(xv, yv, lv), patience=PATIENCE, clip=5.0,
                 seed=seed, progress=False)
    return model


def main():
    t0 = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load_japanese_vowels()
    fit_idx, val_idx = stratified_split(y_tr, 0.2, seed=0)
    frames = np.concatenate([x_tr[i] for i in fit_idx])
    mu, sd = frames.mean(0), frames.std(0)
    norm = lambda seqs: [(s - mu) / sd for s in seqs]
    xf, lf = pad_sequences(norm([x_tr[i] for i in fit_idx]))
    xv, lv = pad_sequences(norm([x_tr[i] for i in val_idx]))
    xt, lt = pad_sequences(norm(x_te))
    yf, yv = y_tr[fit_idx], y_tr[val_idx]

    # choose the read-out on the validation split only (seed 0)
    val_acc = {r: accuracy(train(0, r, xf, lf, yf, xv, lv, yv), xv, lv, yv, r) for r in ("last", "pooled")}
    readout = max(val_acc, key=lambda r: (val_acc[r], r == "last"))
    print(f"validation accuracy (seed 0): LastStep {val_acc['last']:.3f}, PooledMean {val_acc['pooled']:.3f}"
          f" -> {readout}")

    accs = []
    for seed in (0, 1, 2):
        model = train(seed, readout, xf, lf, yf, xv, lv, yv)
        accs.append(accuracy(model, xt, lt, y_te, readout))
        print(f"seed {seed}: test accuracy {accs[-1]:.4f}")
    name = "LastStep" if readout == "last" else "PooledMean"
    print()
    print("| model | read-out | test accuracy, median of seeds 0-2 | range |")
    print("|---|---|---|---|")
    print(f"| BiRNN 2x{HIDDEN[0]} tanh, softmax | {name}(CrossEntropy) | {np.median(accs):.3f} "
          f"| {min(accs):.3f}-{max(accs):.3f} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
