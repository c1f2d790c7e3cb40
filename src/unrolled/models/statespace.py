"""The state-space network with output feedback: the lecture's "shades of NARX"."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from .._checks import check_hidden, seed_for_config
from ..columns import hidden_stack
from ..engine import Layer, Link, Network
from ..registry import register_model
from .base import NetworkModel

__all__ = ["StateSpace"]


@register_model
class StateSpace(NetworkModel):
    r"""Recurrent state-space network whose state also reads the previous output.

    The lecture's "shades of NARX": the state-space model with the output fed back::

        h^(1)(t) = f( W^(x,1) X(t) + W^(11) h^(1)(t-1) + W^(y,1) Y(t-1) + b^(1) )
        h^(l)(t) = f( W^(l-1,l) h^(l-1)(t) + W^(ll) h^(l)(t-1) + b^(l) )      l = 2 .. L
        Y(t)     = g( W^(L,y) h^(L)(t) + b^(y) )

    h^(l)(-1) is a parameter (``learn_init=True``) or zero; Y(-1) is zero or given as
    ``state={"y": (N, 1, n_out)}``. As a column of the engine: :class:`~unrolled.RNN`'s
    links (``x -> h1``, ``h{l-1} -> h{l}``, ``h{l} -> h{l} @1``, ``h{L} -> y``) plus
    ``y -> h1 @1``; everything from h1 to y is one cycle, run in the time loop, and BPTT
    follows the fed-back output too. ``output_feedback=False`` leaves exactly the RNN
    (same parameter names, and with the same seed the same initial weights).

    Parameters (``params`` keys): RNN's ``W[x->h1@0]``, ``W[h{l}->h{l}@1]``,
    ``W[h{l-1}->h{l}@0]``, ``W[h{L}->y@0]``, ``b[h{l}]``, ``b[y]``, ``init[h{l}]``, and
    ``W[y->h1@1]``.

    Parameters
    ----------
    n_in, n_out : int
    hidden : tuple of int, the sizes H_1 .. H_L (an int means one layer)
    output_feedback : bool, the link y -> h1 @1
    learn_init : bool, h(-1) learned (True) or zero
    activation : the state activation f; output : the output activation g
    dtype : numpy.float32 (default) or numpy.float64
    seed : int or numpy.random.Generator for the initial weights

    Notes
    -----
    Inputs x (N, T, n_in), outputs y (N, T, n_out).
    """

    def __init__(self, n_in: int, n_out: int, *, hidden: int | Sequence[int] = (16,),
                 output_feedback: bool = True, learn_init: bool = True, activation: str = "tanh",
                 output: str = "identity", dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None) -> None:
        hidden = check_hidden(hidden)
        self._config = dict(n_in=n_in, n_out=n_out, hidden=hidden, output_feedback=bool(output_feedback),
                            learn_init=bool(learn_init), activation=activation, output=output, dtype=dtype,
                            seed=seed_for_config(seed))
        _, layers, links = hidden_stack(hidden, activation, recurrent=True, learn_init=learn_init,
                                        output_layer=Layer(n_out, output, init="zeros"))
        if output_feedback:
            links.append(Link("y", "h1", delay=1))
        self.network = Network({"x": n_in}, layers, links, "y", dtype=dtype, seed=seed)
