"""CharRNN: an RNN over the characters of an alphabet that its saved file carries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import DTypeLike

from ..generate import generate, one_hot
from ..registry import register_model
from .rnn import RNN

__all__ = ["CharRNN"]


@register_model
class CharRNN(RNN):
    """An ``RNN`` over the characters of ``alphabet``: one-hot in, softmax out.

    Exactly ``RNN(len(alphabet), len(alphabet), hidden=..., output="softmax", ...)``
    (the same weights from the same seed), with the alphabet kept in its config, so
    ``unrolled.save`` stores it in the model file and ``unrolled.load`` gives it back:
    symbol i is ``alphabet[i]``. With ``cell="lstm"`` or ``"gru"`` its hidden layers are
    those of :class:`~unrolled.LSTM` / :class:`~unrolled.GRU` (the same column and weights
    from the same seed); the activation then stays ``"tanh"``, the cell's own.

    Parameters
    ----------
    alphabet : str
        The characters, none repeated.
    hidden, activation, skip_input, skip_output, learn_init, bias, output_bias, dtype, seed
        As :class:`~unrolled.RNN` takes them.
    cell : {None, "lstm", "gru"}
        Plain tanh layers (None, the default) or gated ones.
    """

    def __init__(self, alphabet: str, *, hidden: int | Sequence[int] = (128,), activation: str = "tanh",
                 skip_input: bool = False, skip_output: bool = False, learn_init: bool = True,
                 bias: bool = True, output_bias: bool = True, dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None, cell: str | None = None) -> None:
        if not isinstance(alphabet, str) or not alphabet:
            raise TypeError(f"alphabet must be a non-empty str, got {alphabet!r:.80}")
        if len(set(alphabet)) != len(alphabet):
            raise ValueError(f"alphabet must not repeat a character, got {alphabet!r:.200}")
        if cell not in (None, "lstm", "gru"):
            raise ValueError(f"cell must be None, 'lstm' or 'gru', got {cell!r}")
        if cell is not None and activation != "tanh":
            raise ValueError(f"a {cell} cell fixes its own activation (tanh); got activation={activation!r}")
        V = len(alphabet)
        self.cell = cell
        super().__init__(V, V, hidden=hidden, activation=activation, output="softmax", skip_input=skip_input,
                         skip_output=skip_output, learn_init=learn_init, bias=bias, output_bias=output_bias,
                         dtype=dtype, seed=seed)
        config = {k: v for k, v in self._config.items() if k not in ("n_in", "n_out", "output")}
        self._config = {"alphabet": alphabet, **config, **({"cell": cell} if cell else {})}
        self._index = {c: i for i, c in enumerate(alphabet)}

    @property
    def alphabet(self) -> str:
        """The characters, symbol i being ``alphabet[i]``."""
        return self._config["alphabet"]

    def encode(self, text: str) -> np.ndarray:
        """(len(text),) int64 symbol indices; ValueError naming characters not in the alphabet.

        Parameters
        ----------
        text : str

        Returns
        -------
        numpy.ndarray
        """
        unknown = sorted(set(text) - set(self._index))
        if unknown:
            raise ValueError(f"characters not in the model's alphabet: {''.join(unknown)!r}; "
                             f"it knows {self.alphabet!r}")
        return np.array([self._index[c] for c in text], dtype=np.int64)

    def decode(self, indices: Iterable[int]) -> str:
        """The text of symbol indices: ``encode``'s inverse.

        Parameters
        ----------
        indices : iterable of int

        Returns
        -------
        str
        """
        return "".join(self.alphabet[int(i)] for i in indices)

    def sample(self, prime: str = "\n", steps: int = 200, *, temperature: float = 1.0, greedy: bool = False,
               seed: int | np.random.Generator | None = None) -> str:
        """``steps`` characters generated after reading ``prime`` (at least one character):
        each drawn from the softmax output (``temperature``; ``greedy``: the argmax) and fed
        back. See :func:`unrolled.generate.generate`.

        Parameters
        ----------
        prime : str
            Read first.
        steps : int
            Characters to generate.
        temperature : float
            Sampling temperature.
        greedy : bool
            Argmax instead of sampling.
        seed : int or numpy.random.Generator, optional
            For sampling.

        Returns
        -------
        str
        """
        if not prime:
            raise ValueError("prime must hold at least one character")
        x = one_hot(self.encode(prime), len(self.alphabet), self.dtype)
        out = generate(self, x, steps, temperature=temperature, greedy=greedy, seed=seed)
        return self.decode(out)
