"""Generation: run a model over a prime, then feed each output back as the next input.

This is the lecture's one-to-many variant (one input, then the output fed back: a prime
of one step) and the sampler of a language model (a prime of several steps). After the
prime, every generated step is *one* step of the network: it continues from the final
state of the step before (``cache.state``), it does not rerun the sequence.

- A **softmax** output (n_out <= n_in) is a distribution over symbols: the next symbol is
  drawn from it (``p_i ~ exp(log p_i / temperature)``, renormalised) or taken as the
  argmax (``greedy=True``), and its one-hot vector (input i = symbol i; further inputs,
  such as a start symbol, only appear in primes) is the next input.
- Any other output (identity, sigmoid; n_out == n_in) is fed back as it is.

A generator is trained with teacher forcing: the input at step t is the target of step
t - 1 (:func:`teacher_forcing`), the target at step t is the next symbol.

Shapes: N batch, T0 prime steps, n_in inputs, n_out outputs.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_float_array, check_lengths, check_seed

__all__ = ["generate", "teacher_forcing", "one_hot", "output_activation"]


def output_activation(model, default="identity"):
    """The activation of ``model``'s output layer ("softmax", "identity", ...).

    Found through a Network's output layer, a named model's ``network``, the top block
    of a ``Stack`` or a Seq2Seq's decoder; ``default`` when the model does not say.
    """
    layers = getattr(model, "layers", None)
    if isinstance(layers, dict) and getattr(model, "output", None) in layers:
        return layers[model.output].activation
    if getattr(model, "network", None) is not None:
        return output_activation(model.network, default)
    blocks = getattr(model, "blocks", None)
    if blocks:
        return output_activation(blocks[-1], default)
    decoder = getattr(model, "decoder", None)
    if decoder is not None:
        return output_activation(decoder, default)
    return default


def one_hot(indices, size, dtype=np.float32):
    """One-hot vectors: (...,) int indices in [0, size) -> (..., size)."""
    idx = np.asarray(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"expected integer symbol indices, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"symbol indices must lie in [0, {size}), got values from {idx.min()} to {idx.max()}")
    return (idx[..., None] == np.arange(size)).astype(dtype)


def teacher_forcing(targets, size, start, *, lengths=None, dtype=np.float32):
    """Teacher-forced inputs (N, T, size) for symbol targets (N, T): [start, d(0), ..., d(T-2)].

    The input at step t is the one-hot of the target at step t - 1, and of the symbol
    ``start`` at t = 0: what a generator or a sequence-to-sequence decoder reads in
    training, where at inference it reads its own previous output. With ``lengths``
    the padded targets (t >= len_n) are not read (they may hold anything, e.g. -1).
    """
    d = np.asarray(targets)
    if d.ndim != 2:
        raise ValueError(f"expected symbol targets of shape (N, T), got {d.shape}")
    if not np.issubdtype(d.dtype, np.integer):
        raise TypeError(f"expected integer symbol targets, got dtype {d.dtype}")
    if isinstance(start, bool) or not isinstance(start, numbers.Integral) or not 0 <= start < size:
        raise ValueError(f"start must be a symbol index in [0, {size}), got {start!r}")
    N, T = d.shape
    lengths = check_lengths(lengths, N, T)
    shifted = np.full((N, T), start, dtype=np.int64)
    shifted[:, 1:] = d[:, :-1]
    read = (np.arange(T)[None, :] >= 1) & (np.arange(T)[None, :] < lengths[:, None])
    shifted[~read] = start
    return one_hot(shifted, size, dtype)


def generate(model: Any, prime: ArrayLike, steps: int, *, temperature: float = 1.0, greedy: bool = False,
             seed: int | np.random.Generator | None = None, lengths: ArrayLike | None = None,
             state: dict | None = None) -> np.ndarray:
    """Run ``model`` over ``prime``, then generate ``steps`` steps by feeding outputs back.

    Parameters
    ----------
    model : a block whose forward takes ``state=`` (a Network, RNN, ...; not a
        bidirectional model, which needs the whole sequence).
    prime : (N, T0, n_in) or (T0, n_in) inputs; T0 = 1 is the one-to-many variant.
    steps : int >= 0, the number of outputs to generate. Output k is read at the step
        after output k - 1 was fed back (output 0 at the prime's last step).
    temperature : float > 0; sampling draws from p^(1/temperature), renormalised
        (low: close to greedy; 1: the model's distribution; high: closer to uniform).
    greedy : take the argmax instead of sampling (deterministic).
    seed : int or numpy.random.Generator for the sampling (the global RNG is not used).
    lengths : (N,) valid steps of each prime (padding at the end), or None.
    state : the model's initial state for the prime (e.g. an encoder's final state).

    Returns
    -------
    softmax output: (N, steps) int64 symbol indices; otherwise (N, steps, n_out) values.
    A 2-D prime gives (steps,) or (steps, n_out).
    """
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not isinstance(temperature, numbers.Real) or not (0 < temperature < np.inf):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}; "
                         "- help: for the most likely symbol use greedy=True")
    dtype = model.dtype
    x = as_float_array(prime, dtype, "prime")
    single = x.ndim == 2
    if single:
        x = x[None]
    if x.ndim != 3 or x.shape[2] != model.n_in or x.shape[1] == 0:
        raise ValueError(f"expected prime of shape (N, T0, {model.n_in}) or (T0, {model.n_in}) with T0 >= 1, "
                         f"got {np.shape(prime)}")
    N, T0 = x.shape[:2]
    lengths = check_lengths(lengths, N, T0)
    if lengths.min() < 1:
        raise ValueError("every prime needs at least one valid step (lengths >= 1)")
    symbols = output_activation(model) == "softmax"
    if symbols and model.n_out > model.n_in:
        raise ValueError(f"a softmax output over {model.n_out} symbols is fed back as a one-hot input: "
                         f"it needs n_in >= n_out, got n_in = {model.n_in}")
    if not symbols and model.n_out != model.n_in:
        raise ValueError(f"generation feeds each output back as the next input: it needs n_out == n_in, "
                         f"got n_out = {model.n_out} and n_in = {model.n_in}")
    rng = np.random.default_rng(check_seed(seed))

    y, cache = model.forward(x, lengths=lengths, state=state)
    last = y[np.arange(N), lengths - 1]                                   # (N, n_out)
    out = np.zeros((N, steps), dtype=np.int64) if symbols else np.zeros((N, steps, model.n_out), dtype=dtype)
    for k in range(steps):
        if symbols:
            idx = np.argmax(last, axis=-1) if greedy else _sample(last, temperature, rng)
            out[:, k] = idx
            nxt = one_hot(idx, model.n_in, dtype)
        else:
            out[:, k] = last
            nxt = last
        if k + 1 == steps:
            break
        y, cache = model.forward(nxt[:, None, :], state=cache.state)     # one step
        last = y[:, 0]
    return out[0] if single else out


def _sample(p, temperature, rng):
    """One draw per row of p (N, C) from p^(1/temperature), renormalised: (N,) int64."""
    p = np.asarray(p, dtype=np.float64)
    logits = np.log(np.maximum(p, np.finfo(np.float64).tiny)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    with np.errstate(under="ignore"):
        q = np.exp(logits)
    q /= q.sum(axis=-1, keepdims=True)
    u = rng.random(len(q))
    idx = (np.cumsum(q, axis=-1) < u[:, None]).sum(axis=-1)
    return np.minimum(idx, q.shape[-1] - 1).astype(np.int64)
