"""The time-delay neural network: the lecture's finite-response "sliding predictor"."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from .._checks import check_delay, check_hidden, seed_for_config
from ..columns import hidden_stack
from ..engine import Layer, Link, Network
from ..registry import register_model
from .base import NetworkModel

__all__ = ["TDNN"]


@register_model
class TDNN(NetworkModel):
    r"""Time-delay neural network (a 1-D convolution over time): a finite-response system.

    The output reads the current input and the ``width`` inputs before it::

        Y_t = f(X_t, X_{t-1}, ..., X_{t-N})                         N = width
        h^(1)(t) = f( sum_{k=0..N} W^(x,1)_k X(t-k) + b^(1) )
        h^(l)(t) = f( W^(l-1,l) h^(l-1)(t) + b^(l) )                 l = 2 .. L
        Y(t)     = g( W^(L,y) h^(L)(t) + b^(y) )

    An input at t = 0 moves the outputs at t = 0 .. N and none after. As a column of the
    engine: ``x -> h1 @0, @1, ..., @N``, ``h{l-1} -> h{l}``, ``h{L} -> y``. There is no
    cycle, so the engine computes every layer for all steps at once. Inputs before t = 0
    read zeros, or the history given as ``state={"x": (N, width, n_in)}`` (oldest first;
    ``cache.state["x"]`` of an earlier pass continues a stream).

    Parameters (``params`` keys): ``W[x->h1@k]`` for k = 0 .. width (the tap on X(t-k)),
    ``W[h{l-1}->h{l}@0]``, ``W[h{L}->y@0]``, biases ``b[h{l}]``, ``b[y]``.

    Parameters
    ----------
    n_in, n_out : int
    width : int >= 0, the number of past inputs read (N in the lecture)
    hidden : tuple of int, the sizes H_1 .. H_L (an int means one layer)
    activation : the hidden activation f ("tanh", "relu", "sigmoid", "identity")
    output : the output activation g ("identity", "softmax", "sigmoid")
    linear : add skip links from every tap straight to the output, ``x -> y @k``
        (``W[x->y@k]``): a linear FIR part beside the hidden units
    dtype : numpy.float32 (default) or numpy.float64
    seed : int or numpy.random.Generator for the initial weights

    Notes
    -----
    Inputs x (N, T, n_in), outputs y (N, T, n_out).
    """

    def __init__(self, n_in: int, n_out: int, *, width: int, hidden: int | Sequence[int] = (32,),
                 activation: str = "tanh", output: str = "identity", linear: bool = False,
                 dtype: DTypeLike = np.float32, seed: int | np.random.Generator | None = None) -> None:
        width = check_delay(width, "width", low=0)
        hidden = check_hidden(hidden)
        if not isinstance(linear, (bool, np.bool_)):
            raise TypeError(f"linear must be True or False, got {linear!r}")
        self._config = dict(n_in=n_in, n_out=n_out, width=width, hidden=hidden, activation=activation,
                            output=output, dtype=dtype,
                            seed=seed_for_config(seed))
        if linear:                                   # (recorded only when set: older files stay equal)
            self._config["linear"] = True
        taps = [("x", k) for k in range(width + 1)]
        _, layers, links = hidden_stack(hidden, activation, recurrent=False, first=taps,
                                        output_layer=Layer(n_out, output, init="zeros"))
        if linear:                                   # the lecture's skip: every tap straight to y
            links += [Link(src, "y", delay=delay) for src, delay in taps]
        self.network = Network({"x": n_in}, layers, links, "y", dtype=dtype, seed=seed)

    @property
    def width(self) -> int:
        """The number of past inputs read, N."""
        return self._config["width"]
