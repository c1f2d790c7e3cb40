"""Character-level language model on the King James Gospel of John (book 43).

Task: predict the next character. Data: the 879 verses of John, each verse followed by
"\n"; the character set (65 symbols incl. "\n") is that of the whole book. Split: 10% of
the verses (88) held out at random (numpy seed 0, the same for every model seed); the
other 791 verses, in canonical order, are the training stream (~88k characters).

Model: RNN(65, 65, hidden=(HIDDEN,), tanh, output="softmax"), CrossEntropy, trained by
truncated BPTT: the training stream is cut into 32 parallel rows, windows of 50 steps,
the state carried between windows (fit(..., bptt=50)); Adam(0.003), clip 5, 15
epochs. Sizes chosen to keep three seeds within ~4 minutes on 2 CPU cores; no
hyper-parameter was chosen on the held-out verses.

Score: each held-out verse is read from the model's learned initial state, starting
from "\n", predicting every character of the verse and its closing "\n". Bits per
character = total nats over all held-out characters / ln 2 / their number, computed
exactly (CrossEntropy's value is the sum over valid steps divided by N, so nats =
value * N). Beside it the unigram baseline: character frequencies of the training
stream (add-one smoothed), scored on the same held-out characters. Two samples of
seed 0's model: unrolled.generate, temperature 0.7, seed 0, primed with "\nAnd ".

Run: PYTHONPATH=src python examples/kjv_chars.py
"""

import math
import time

import numpy as np

import unrolled
from unrolled.datasets import load_kjv, pad_sequences
from unrolled.divergences import CrossEntropy
from unrolled.generate import one_hot
from unrolled.optim import Adam

BOOK, HIDDEN, ROWS, BPTT, EPOCHS, LR = 43, 128, 32, 50, 15, 0.003


def main():
    t0 = time.perf_counter()
    verses = [text for _, text in load_kjv(BOOK)]
    chars = sorted(set("".join(verses)) | {"\n"})
    idx = {c: i for i, c in enumerate(chars)}
    V = len(chars)
    rng = np.random.default_rng(0)
    held = np.zeros(len(verses), bool)
    held[rng.choice(len(verses), size=round(0.1 * len(verses)), replace=False)] = True
    train_text = "".join(v + "\n" for v, h in zip(verses, held) if not h)
    stream = np.array([idx[c] for c in train_text], dtype=np.int64)
    L = (len(stream) - 1) // ROWS
    x = one_hot(stream[:ROWS * L].reshape(ROWS, L), V)
    d = stream[1:ROWS * L + 1].reshape(ROWS, L)

    # held-out verses: input "\n" + verse, target verse + "\n"
    seqs = [np.array([idx[c] for c in "\n" + v + "\n"]) for v, h in zip(verses, held) if h]
    xs, lh = pad_sequences([one_hot(s[:-1], V) for s in seqs])
    ds, _ = pad_sequences([s[1:] for s in seqs], dtype=np.int64)
    n_chars = int(lh.sum())

    counts = np.bincount(stream, minlength=V) + 1.0
    logp = np.log(counts / counts.sum())
    mask = np.arange(ds.shape[1])[None, :] < lh[:, None]
    unigram_bpc = -logp[ds[mask]].sum() / math.log(2) / n_chars
    print(f"book {BOOK}: {len(verses)} verses, {V} symbols; train {len(stream)} chars, "
          f"held out {held.sum()} verses = {n_chars} chars")

    results, model0 = [], None
    for seed in (0, 1, 2):
        model = unrolled.RNN(V, V, hidden=(HIDDEN,), output="softmax", seed=seed)
        h = unrolled.fit(model, x, d, divergence=CrossEntropy(), optimizer=Adam(LR), epochs=EPOCHS,
                         batch_size=ROWS, bptt=BPTT, clip=5.0, seed=seed, progress=False)
        y = model.predict(xs, lengths=lh)
        value, _ = CrossEntropy()(y, ds, lengths=lh)
        bpc = value * len(seqs) / math.log(2) / n_chars
        p = y[mask, ds[mask]]
        direct = -np.log(p.astype(np.float64)).sum() / math.log(2) / n_chars
        assert abs(direct - bpc) < 1e-3 * bpc, (direct, bpc)
        results.append(bpc)
        print(f"seed {seed}: train loss {h.loss[-1] / L / math.log(2):.3f} bits/char (last epoch), "
              f"held-out {bpc:.4f} bpc ({time.perf_counter() - t0:.0f} s)")
        if seed == 0:
            model0 = model

    prime = np.stack([one_hot(np.array([idx[c] for c in "\nAnd "]), V)] * 2)
    out = unrolled.generate(model0, prime, 200, temperature=0.7, seed=0)
    for k, row in enumerate(out):
        print(f"sample {k + 1}: And " + "".join(chars[i] for i in row).replace("\n", " / "))
    print()
    print("| model | held-out verses | bits per character, median of seeds 0-2 | range |")
    print("|---|---|---|---|")
    print(f"| RNN {HIDDEN} tanh, softmax, TBPTT {BPTT} | John, 10% of verses ({n_chars} chars) "
          f"| {np.median(results):.3f} | {min(results):.3f}-{max(results):.3f} |")
    print(f"| unigram (train frequencies, add-one) | same | {unigram_bpc:.3f} | - |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
