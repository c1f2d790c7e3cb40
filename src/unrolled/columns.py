"""The shared builder of the named models' columns: the hidden stack h1 .. hL and its links.

Every named model is a column whose hidden layers are named ``h1`` .. ``hL`` and read
the one below (``h{l-1} -> h{l}``); a recurrent stack adds each layer's own past
(``h{l} -> h{l} @1``). What reaches ``h1`` from outside (taps of the input, fed-back
outputs, a memory), what stands beside each layer (a skip from the input, Elman's
context) and what the top layer feeds (an output layer) is each model's own, and
:func:`hidden_stack` takes it as arguments. The order of the layers and links is the
order the engine draws their weights in for a seed, so it is part of what a model's
parameters are: the builder keeps one order for all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from ._checks import check_hidden
from .engine import Layer, Link, Network

__all__ = ["hidden_stack", "recurrent_network"]


def hidden_stack(hidden, activation, *, recurrent, learn_init=False, bias=True, first=(("x", 0),),
                 per_layer=None, output_layer=None, cell=None):
    r"""``(names, layers, links)`` of a stack of hidden layers h1 .. hL, for l = 1 .. L::

        h^(l)(t) = f( u^(l)(t) [+ per_layer's links into h^(l)] [+ W^(ll) h^(l)(t-1)] + b^(l) )
        u^(1)(t) = sum_{(s, d) in first} W^(s,1)_d s(t-d)
        u^(l)(t) = W^(l-1,l) h^(l-1)(t)                                        l = 2 .. L
        Y(t)     = g( W^(L,y) h^(L)(t) + b^(y) )                               (output_layer)

    the recurrent term W^(ll) h^(l)(t-1) with ``recurrent`` only.

    hidden : the sizes H_1 .. H_L (a tuple of positive ints, or an int: one layer)
    activation : the hidden activation f
    recurrent : bool, each layer reads its own past, ``h{l} -> h{l} @1``
    learn_init : bool, the layers' history before t = 0 is a parameter ``init[h{l}]``
        (1, H_l) (True) or zero
    bias : bool, the biases ``b[h{l}]``
    first : the ``(source, delay)`` pairs that feed h1 (default: the input ``x`` now)
    per_layer : None, or ``per_layer(l, name) -> (layers, links)``: layers to stand right
        after h{l} (an Elman context ``c{l}``) and links to follow h{l}'s input from
        below (a skip from ``x``, the context's links)
    output_layer : None, or the ``Layer`` of the output y (size n_out, activation g),
        read from the top layer, ``h{L} -> y``
    cell : None (plain layers, ``h = f(z)``), ``"lstm"`` or ``"gru"``: gated hidden layers
        (``engine.cells``; then ``activation`` must be "tanh" and ``recurrent`` True)

    ``names`` is ``["h1", ..., "hL"]``; ``layers`` a dict name -> ``Layer`` (h1, its
    per-layer layers, h2, ..., then y); ``links`` for each layer in turn: its input from
    below, the per-layer links, then ``h{l} -> h{l} @1`` when ``recurrent``; last
    ``h{L} -> y``. What the caller adds (skips to y, feedback from y) comes after.
    """
    hidden = check_hidden(hidden)
    names = [f"h{l}" for l in range(1, len(hidden) + 1)]
    init = "learned" if learn_init else "zeros"
    layers, links = {}, []
    for l, (name, size) in enumerate(zip(names, hidden), start=1):
        layers[name] = Layer(size, activation, bias=bias, init=init, cell=cell)
        if l == 1:
            links.extend(Link(src, name, delay=delay) for src, delay in first)
        else:
            links.append(Link(names[l - 2], name))
        if per_layer is not None:
            extra_layers, extra_links = per_layer(l, name)
            layers.update(extra_layers)
            links.extend(extra_links)
        if recurrent:
            links.append(Link(name, name, delay=1))
    if output_layer is not None:
        layers["y"] = output_layer
        links.append(Link(names[-1], "y"))
    return names, layers, links


def recurrent_network(n_in: int, hidden: int | Sequence[int], *, activation: str = "tanh", learn_init: bool = True,
                      bias: bool = True, dtype: DTypeLike = np.float32, seed: int | np.random.Generator | None = None,
                      cell: str | None = None) -> Network:
    r"""A column of recurrent layers whose output is its top hidden layer (no output layer).

    The lecture's ``RNN_forward``: with h^(0)(t) = x(t), for l = 1 .. L::

        h^(l)(t) = f( W_c(l) h^(l-1)(t) + W_r(l) h^(l)(t-1) + b(l) )

    and the output is h^(L)(t) (N, T, H_L). As links: ``x -> h1``, ``h{l-1} -> h{l}``,
    ``h{l} -> h{l} @1``. Parameters ``W[x->h1@0]``, ``W[h{l-1}->h{l}@0]``,
    ``W[h{l}->h{l}@1]``, ``b[h{l}]`` and, with ``learn_init``, ``init[h{l}]`` (1, H_l), the
    lecture's h(-1). With ``cell="lstm" | "gru"`` the layers are gated (``engine.cells``).
    The forward and backward nets of
    :class:`~unrolled.blocks.Bidirectional` blocks (and an encoder for
    :class:`~unrolled.models.seq2seq.Seq2Seq`) are such columns.

    Parameters
    ----------
    n_in : int
    hidden : tuple of int
        H_1 .. H_L.
    activation : str
    learn_init : bool
    bias : bool
    dtype : numpy float dtype
    seed : int or numpy.random.Generator, optional
    cell : {None, "lstm", "gru"}

    Returns
    -------
    Network
    """
    names, layers, links = hidden_stack(hidden, activation, recurrent=True, learn_init=learn_init, bias=bias,
                                        cell=cell)
    return Network({"x": n_in}, layers, links, names[-1], dtype=dtype, seed=seed)
