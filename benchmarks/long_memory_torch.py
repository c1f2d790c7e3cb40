"""examples/long_memory.py's task in PyTorch: nn.LSTM / nn.GRU trained as the example trains ours.

The same data (numpy seed 1234), inputs standardised with the training sequences'
statistics, 32 units, a linear read-out of the last step, cross entropy, Adam(0.01),
batch 32, the given number of epochs, torch's own initialisation (seeded with SEED), one
thread. It answers whether a failure of ours on that task is the implementation's or the
training recipe's.

    python benchmarks/long_memory_torch.py lstm|gru SEED EPOCHS      # e.g. lstm 0 60
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from long_memory import marked_symbol  # noqa: E402


def main(cell, seed, epochs):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    rng = np.random.default_rng(1234)
    x_train, y_train = marked_symbol(2000, rng)
    x_test, y_test = marked_symbol(1000, rng)
    frames = x_train.reshape(-1, x_train.shape[-1])
    mu, sd = frames.mean(0), frames.std(0)

    def scaled(x):
        return torch.tensor((x - mu) / sd, dtype=torch.float32)

    X, X_test, Y = scaled(x_train), scaled(x_test), torch.tensor(y_train)
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](x_train.shape[-1], 32, batch_first=True)
    linear = torch.nn.Linear(32, 4)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(linear.parameters()), lr=0.01)
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X))
        for i in range(0, len(X), 32):
            batch = order[i:i + 32]
            loss = torch.nn.functional.cross_entropy(linear(rnn(X[batch])[0][:, -1]), Y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        accuracy = float((linear(rnn(X_test)[0][:, -1]).argmax(1).numpy() == y_test).mean())
    print(f"torch {cell} seed {seed}, {epochs} epochs: test accuracy {accuracy:.3f} "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
