"""Delayed sequence to sequence with unrolled.Seq2Seq: reverse a sequence of symbols.

Task: read s_1 .. s_L <eos> (symbols 0-9, L uniform in 3..8) and write s_L .. s_1 <eos>.
Data: 6000 distinct random training sequences and 500 test sequences, all drawn with
numpy seed 1234 and deduplicated, so no test sequence occurs in training.

Model: encoder recurrent_network(11, (H,)) (tanh, learned h(-1)); its final state
h(len-1) starts the decoder RNN(12, 11, hidden=(H,), output="softmax",
learn_init=False), which reads the previous target symbol (teacher forcing, <start>
first) in training. CrossEntropy over the L+1 output steps, Adam(0.005), clip 5,
batch 64, 20 epochs, no early stopping (nothing is chosen on the test set).
Sizes chosen to keep three seeds within ~4 minutes on 2 CPU cores.

Score: greedy decoding (Seq2Seq.translate, each output fed back) for 9 steps, cut at
the first <eos>; exact match = the whole output (and its <eos>) equals the target.

The pipeline is unrolled.tasks.sequences.reverse (one seed a call); `unrolled train --task
reverse` runs it from the command line and `unrolled sample MODEL --prime "3 1 4"` decodes.

Run: PYTHONPATH=src python examples/reverse_seq2seq.py
"""

import time

import numpy as np

from unrolled.tasks.sequences import REVERSE_HIDDEN as H, reverse, reverse_data


def main():
    t0 = time.perf_counter()
    train, test = reverse_data()
    assert not set(train) & set(test)
    accs, train_accs = [], []
    for seed in (0, 1, 2):
        result = reverse(seed)
        accs.append(result.metrics["exact_match"])
        train_accs.append(result.metrics["train_exact_match"])
        print(f"seed {seed}: exact match test {accs[-1]:.3f}, train (first 500) {train_accs[-1]:.3f} "
              f"({time.perf_counter() - t0:.0f} s)")
    print()
    print("| model | task | held-out exact match, median of seeds 0-2 | range |")
    print("|---|---|---|---|")
    print(f"| Seq2Seq, RNN {H} tanh encoder + decoder, greedy | reverse 3-8 symbols of 10 (500 unseen) "
          f"| {np.median(accs):.3f} | {min(accs):.3f}-{max(accs):.3f} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
