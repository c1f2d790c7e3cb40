"""The Elman network: context units hold a copy of the hidden state one step back."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from .._checks import check_hidden, seed_for_config
from ..columns import hidden_stack
from ..engine import Layer, Link, Network
from ..registry import register_model
from .base import NetworkModel

__all__ = ["Elman"]

_CONTEXT_GRADIENTS = ("blocked", "full")


@register_model
class Elman(NetworkModel):
    r"""Elman network (Elman, 1990): a "simple" recurrent net with context units.

    Each hidden layer l has context units c^(l) that hold a copy of its previous state,
    over a fixed link of weight 1; only the context -> hidden weights are learned::

        c^(l)(t) = h^(l)(t-1)                                  (fixed copy, weight I)
        h^(l)(t) = f( W^(l-1,l) h^(l-1)(t) + W^(c,l) c^(l)(t) + b^(l) )   h^(0) = X
        Y(t)     = g( W^(L,y) h^(L)(t) + b^(y) )

    With ``context_gradient="blocked"`` (Elman's training, the lecture's default) no
    gradient passes over the copy link: in training c(t) is a constant input of each step,
    as if the sequence were "T independent 1-step history nets". With
    ``context_gradient="full"`` the copy passes gradients, and since c(t) = h(t-1) the
    model is exactly the multi-layer :class:`~unrolled.RNN` with W_r = W^(c,l): same
    outputs, same (full BPTT) gradients.

    As a column of the engine: per layer ``h{l-1} -> h{l}``, ``c{l} -> h{l}`` (learned),
    ``h{l} -> c{l} @1`` (fixed weight 1, ``trainable=False``, gradient blocked or full);
    ``h{L} -> y``. The context layer ``c{l}`` is identity, without bias.

    **h(-1).** The copy link reads h^(l) one step back, so c^(l)(0) = h^(l)(-1): the start
    of the context is the hidden layer's own initial history, the engine's ``init[h{l}]``
    when learned, exactly the RNN's learned h(-1) under the same name. It is learned by
    default only with the full gradient: behind a blocked context no gradient reaches it,
    so by default (``learn_init=None``) it is zero there, as Elman's context started.
    A given start: ``state={"h{l}": (N, 1, H_l)}``.

    Parameters (``params`` keys): ``W[x->h1@0]``, ``W[c{l}->h{l}@0]``,
    ``W[h{l-1}->h{l}@0]``, ``W[h{L}->y@0]``, ``b[h{l}]``, ``b[y]``, and ``init[h{l}]``
    (1, H_l) when h(-1) is learned. The copy links are constants (``network.constants``).

    Parameters
    ----------
    n_in, n_out : int
    hidden : tuple of int, the sizes H_1 .. H_L (an int means one layer)
    context_gradient : "blocked" (default) or "full"
    learn_init : bool or None (None: learned with "full", zero with "blocked")
    activation : the hidden activation f; output : the output activation g
    dtype : numpy.float32 (default) or numpy.float64
    seed : int or numpy.random.Generator for the initial weights (with "full" and the
        same seed, the same initial weights as ``RNN``)

    Notes
    -----
    Inputs x (N, T, n_in), outputs y (N, T, n_out).
    """

    def __init__(self, n_in: int, n_out: int, *, hidden: int | Sequence[int] = (16,),
                 context_gradient: str = "blocked", learn_init: bool | None = None, activation: str = "tanh",
                 output: str = "identity", dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None) -> None:
        if context_gradient not in _CONTEXT_GRADIENTS:
            raise ValueError(f"context_gradient must be one of {_CONTEXT_GRADIENTS}, got {context_gradient!r}")
        if learn_init is None:
            learn_init = context_gradient == "full"
        elif learn_init and context_gradient == "blocked":
            warnings.warn("learn_init=True with a blocked context: no gradient reaches h(-1) behind the "
                          "blocked copy, so it never learns; use context_gradient='full' or learn_init=False",
                          UserWarning, stacklevel=2)
        hidden = check_hidden(hidden)
        self._config = dict(n_in=n_in, n_out=n_out, hidden=hidden, context_gradient=context_gradient,
                            learn_init=bool(learn_init), activation=activation, output=output, dtype=dtype,
                            seed=seed_for_config(seed))

        def context(l, h):                  # c{l} beside h{l}: c{l} -> h{l} learned, h{l} -> c{l} @1 a copy
            c = f"c{l}"
            return ({c: Layer(hidden[l - 1], "identity", bias=False, init="zeros")},
                    [Link(c, h), Link(h, c, 1, weight=1.0, trainable=False, gradient=context_gradient)])

        _, layers, links = hidden_stack(hidden, activation, recurrent=False, learn_init=learn_init,
                                        per_layer=context, output_layer=Layer(n_out, output, init="zeros"))
        self.network = Network({"x": n_in}, layers, links, "y", dtype=dtype, seed=seed)

    @property
    def context_gradient(self) -> str:
        """``"blocked"`` (Elman's training) or ``"full"`` (exactly the RNN)."""
        return self._config["context_gradient"]
