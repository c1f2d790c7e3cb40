"""Remember one symbol for 100 steps: the plain recurrence against LSTM and GRU layers.

Task (synthetic, many-to-one): every step shows one of 4 symbols at random (one-hot,
channels 0-3, plus Gaussian noise of sd 0.1 on every channel); one step, 100 steps before
the end of a 120-step sequence, is marked (channel 4 set to 1). The class is the symbol
shown at the marked step. A read-out at the last step must carry it across 100 steps of
distractors; chance is 0.25. 2000 training sequences, 1000 test sequences, drawn once
(numpy seed 1234, whatever the model's seed).

Models: SequenceClassifier(model=..., hidden=(32,), readout="last") with the estimator's
defaults otherwise (Adam 0.01, batch 32, inputs standardised, stopping when the training
loss stops falling, at most --epochs). Seeds 0, 1, 2. Nothing is chosen on the test set:
the three models share every setting, fixed before the first run.

Run: python examples/long_memory.py [--epochs 60] [--models rnn lstm gru] [--seeds 0 1 2]
"""

import argparse
import time
import warnings

import numpy as np

from unrolled import SequenceClassifier

T, CUE_BEFORE_END, SYMBOLS = 120, 100, 4


def marked_symbol(n, rng):
    """(x, y): n sequences of T steps, 5 channels; y the symbol at the marked step."""
    symbols = rng.integers(0, SYMBOLS, (n, T))
    x = np.zeros((n, T, SYMBOLS + 1))
    x[np.arange(n)[:, None], np.arange(T)[None, :], symbols] = 1.0
    cue = T - 1 - CUE_BEFORE_END
    x[:, cue, SYMBOLS] = 1.0
    x += 0.1 * rng.standard_normal(x.shape)
    return x, symbols[:, cue]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["rnn", "lstm", "gru"], choices=["rnn", "lstm", "gru"])
    args = ap.parse_args()
    rng = np.random.default_rng(1234)
    x_train, y_train = marked_symbol(2000, rng)
    x_test, y_test = marked_symbol(1000, rng)
    rows = []
    for model in args.models:
        accs, seconds, warned = [], [], 0
        for seed in args.seeds:
            t0 = time.perf_counter()
            clf = SequenceClassifier(model=model, hidden=(32,), readout="last", epochs=args.epochs,
                                     random_state=seed)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                clf.fit(x_train, y_train)
            warned += any("learned nothing" in str(w.message) for w in caught)
            seconds.append(time.perf_counter() - t0)
            accs.append(clf.score(x_test, y_test))
            print(f"{model} seed {seed}: test accuracy {accs[-1]:.3f}, {clf.n_iter_} epochs, "
                  f"{seconds[-1]:.0f} s", flush=True)
        rows.append((model, accs, seconds, warned))
    print(f"\n| layer (32 units, last-step read-out) | test accuracy, median of seeds "
          f"{args.seeds[0]}-{args.seeds[-1]} | range | 'learned nothing' warnings | s per fit |")
    print("|---|---|---|---|---|")
    for model, accs, seconds, warned in rows:
        print(f"| {model} | {np.median(accs):.3f} | {min(accs):.3f}-{max(accs):.3f} | {warned} of "
              f"{len(accs)} | {np.median(seconds):.0f} |")
    print("\nchance: 0.250")


if __name__ == "__main__":
    main()
