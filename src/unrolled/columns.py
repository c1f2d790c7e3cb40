"""The shared builder of the named models' columns: hidden layers h1 .. hL and their links.

Every named model is a column whose hidden layers are named ``h1`` .. ``hL`` and read
the one below (``h{l-1} -> h{l}``); a recurrent stack adds each layer's own past
(``h{l} -> h{l} @1``). What reaches ``h1`` from outside (taps of the input, fed-back
outputs, a memory) and what the top layer feeds (an output layer) is each model's own.
The order of the links is the order their weights are drawn in for a seed, so it is
part of what a model's parameters are: the builders keep one order for all.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_hidden
from .engine import Layer, Link, Network

__all__ = ["hidden_layers", "recurrent_links", "chain_links", "recurrent_network"]


def hidden_layers(hidden, activation, *, bias=True, init="zeros"):
    """``(names, layers)``: the names ``h1`` .. ``hL`` and a dict of their ``Layer``s of the
    sizes ``hidden`` (a tuple of positive ints, or an int: one layer)."""
    hidden = check_hidden(hidden)
    names = [f"h{l}" for l in range(1, len(hidden) + 1)]
    return names, {name: Layer(size, activation, bias=bias, init=init) for name, size in zip(names, hidden)}


def recurrent_links(names, *, source="x", extra=None):
    """The links of a recurrent stack: for each layer, the one below (``source`` for h1),
    ``extra(l, name)`` (e.g. skip links from the input), then its own past ``@1``."""
    links = []
    for l, name in enumerate(names):
        links.append(Link(source if l == 0 else names[l - 1], name))
        if extra is not None:
            links.extend(extra(l, name))
        links.append(Link(name, name, delay=1))
    return links


def chain_links(names):
    """``h{l-1} -> h{l}`` for l = 2 .. L: a feed-forward stack above h1."""
    return [Link(below, name) for below, name in zip(names[:-1], names[1:])]


def recurrent_network(n_in, hidden, *, activation="tanh", learn_init=True, bias=True,
                      dtype=np.float32, seed=None):
    r"""A column of recurrent layers whose output is its top hidden layer (no output layer).

    The lecture's ``RNN_forward``: with h^(0)(t) = x(t), for l = 1 .. L::

        h^(l)(t) = f( W_c(l) h^(l-1)(t) + W_r(l) h^(l)(t-1) + b(l) )

    and the output is h^(L)(t) (N, T, H_L). As links: ``x -> h1``, ``h{l-1} -> h{l}``,
    ``h{l} -> h{l} @1``. Parameters ``W[x->h1@0]``, ``W[h{l-1}->h{l}@0]``,
    ``W[h{l}->h{l}@1]``, ``b[h{l}]`` and, with ``learn_init``, ``init[h{l}]`` (1, H_l), the
    lecture's h(-1). The forward and backward nets of
    :class:`~unrolled.blocks.Bidirectional` blocks (and an encoder for
    :class:`~unrolled.models.seq2seq.Seq2Seq`) are such columns.
    """
    names, layers = hidden_layers(hidden, activation, bias=bias, init="learned" if learn_init else "zeros")
    return Network({"x": n_in}, layers, recurrent_links(names), names[-1], dtype=dtype, seed=seed)
