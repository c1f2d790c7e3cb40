"""Character-level language model on the King James Gospel of John (book 43).

Task: predict the next character. Data: the 879 verses of John, each verse followed by
"\n"; the character set (65 symbols incl. "\n") is that of the whole book. Split: 10% of
the verses (88) held out at random (numpy seed 0, the same for every model seed); the
other 791 verses, in canonical order, are the training stream (~88k characters).

Model: RNN(65, 65, hidden=(128,), tanh, output="softmax"), CrossEntropy, trained by
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

The pipeline is unrolled.tasks.sequences.kjv_chars (one seed a call); `unrolled train
--task kjv-chars` runs it from the command line and `unrolled sample` samples the saved model.

`--cell lstm` (59 units, 33,518 parameters) or `--cell gru` (70 units, 33,315) trains a
gated layer of about the tanh RNN's 33,345 parameters instead, all else the same.

Run: PYTHONPATH=src python examples/kjv_chars.py [--cell tanh|lstm|gru]
"""

import argparse
import time

import numpy as np

import unrolled
from unrolled.generate import one_hot
from unrolled.tasks.sequences import KJV_BOOK as BOOK, kjv_chars


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="tanh", choices=("tanh", "lstm", "gru"),
                    help="the hidden layer (default tanh; lstm / gru with about its parameter count)")
    cell = ap.parse_args().cell
    t0 = time.perf_counter()
    results, model0 = [], None
    for seed in (0, 1, 2):
        result = kjv_chars(seed, cell=cell)
        if seed == 0:
            model0, n_chars, unigram = result.model, result.n_chars, result.metrics["unigram_bpc"]
            n_params = sum(p.size for p in model0.params.values())
            print(f"book {BOOK}: {result.n_train_verses + result.n_verses} verses, {len(model0.alphabet)} symbols; "
                  f"train {result.n_train_chars} chars, held out {result.n_verses} verses = {n_chars} chars")
        results.append(result.metrics["bpc"])
        print(f"seed {seed}: train loss {result.metrics['train_bpc']:.3f} bits/char (last epoch), "
              f"held-out {results[-1]:.4f} bpc ({time.perf_counter() - t0:.0f} s)")

    prime = np.stack([one_hot(model0.encode("\nAnd "), len(model0.alphabet))] * 2)
    out = unrolled.generate(model0, prime, 200, temperature=0.7, seed=0)
    for k, row in enumerate(out):
        print(f"sample {k + 1}: And " + model0.decode(row).replace("\n", " / "))
    print()
    print("| model | held-out verses | bits per character, median of seeds 0-2 | range |")
    print("|---|---|---|---|")
    print(f"| {result.description} ({n_params} parameters) | John, 10% of verses ({n_chars} chars) "
          f"| {np.median(results):.3f} | {min(results):.3f}-{max(results):.3f} |")
    print(f"| unigram (train frequencies, add-one) | same | {unigram:.3f} | - |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
