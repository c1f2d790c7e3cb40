"""The lecture's fully recurrent (state-space) network, several layers, skips, learned h(-1)."""

from __future__ import annotations

import numpy as np

from .._checks import check_hidden, seed_for_config
from ..columns import hidden_stack
from ..engine import Layer, Link, Network
from ..registry import register_model
from .base import NetworkModel

__all__ = ["RNN"]


@register_model
class RNN(NetworkModel):
    r"""Multi-layer recurrent network (the lecture's state-space model).

    For layers l = 1 .. L and steps t = 0 .. T-1, with h^(0)(t) = X(t)::

        h^(l)(t) = f( W^(l-1,l) h^(l-1)(t) + W^(ll) h^(l)(t-1) [+ W^(0l) X(t)] + b^(l) )
        Y(t)     = g( W^(L,y) h^(L)(t) [+ sum_{l<L} W^(l,y) h^(l)(t)] + b^(y) )

    the bracketed terms being the skip links (``skip_input``: input to every layer;
    ``skip_output``: every layer to the output). h^(l)(-1) is a parameter of the
    network (``learn_init=True``) or zero. As a column of the engine:
    ``x -> h1``, ``h{l-1} -> h{l}``, ``h{l} -> h{l} @1``, ``h{L} -> y``.

    Parameters (``params`` keys): ``W[x->h1@0]`` (the lecture's W_c(1)),
    ``W[h{l}->h{l}@1]`` (W_r(l)), ``W[h{l-1}->h{l}@0]`` (W_c(l)), ``W[h{L}->y@0]`` (W_o),
    skips ``W[x->h{l}@0]`` and ``W[h{l}->y@0]``, biases ``b[h{l}]``, ``b[y]``, and the
    initial states ``init[h{l}]`` of shape (1, H_l).

    Parameters
    ----------
    n_in, n_out : int
    hidden : tuple of int, the sizes H_1 .. H_L (an int means one layer)
    activation : "tanh" | "relu" | "sigmoid" | "identity", the state activation f
    output : "identity" | "softmax" | "sigmoid", the output activation g
    skip_input, skip_output : bool
    learn_init : bool, h(-1) learned (True) or zero
    bias, output_bias : bool, biases of the recurrent layers and of the output layer
    dtype : numpy.float32 (default) or numpy.float64
    seed : int or numpy.random.Generator for the initial weights

    Inputs x (N, T, n_in), outputs y (N, T, n_out).
    """

    def __init__(self, n_in, n_out, *, hidden=(64,), activation="tanh", output="identity",
                 skip_input=False, skip_output=False, learn_init=True, bias=True,
                 output_bias=True, dtype=np.float32, seed=None):
        hidden = check_hidden(hidden)
        self._config = dict(n_in=n_in, n_out=n_out, hidden=hidden, activation=activation,
                            output=output, skip_input=skip_input, skip_output=skip_output,
                            learn_init=learn_init, bias=bias, output_bias=output_bias,
                            dtype=dtype, seed=seed_for_config(seed))
        names, layers, links = hidden_stack(
            hidden, activation, recurrent=True, learn_init=learn_init, bias=bias,
            per_layer=lambda l, name: ({}, [Link("x", name)] if skip_input and l > 1 else []),
            output_layer=Layer(n_out, output, bias=output_bias, init="zeros"))
        if skip_output:
            links.extend(Link(name, "y") for name in names[:-1])
        self.network = Network({"x": n_in}, layers, links, "y", dtype=dtype, seed=seed)
