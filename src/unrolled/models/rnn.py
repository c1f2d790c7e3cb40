"""The lecture's fully recurrent (state-space) network, several layers, skips, learned h(-1);
and the same stack of gated layers, ``LSTM`` and ``GRU``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from .._checks import check_hidden, seed_for_config
from ..columns import hidden_stack
from ..engine import Layer, Link, Network
from ..engine.cells import GRU_EQUATIONS, LSTM_EQUATIONS
from ..registry import register_model
from .base import NetworkModel

__all__ = ["RNN", "LSTM", "GRU"]


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

    Notes
    -----
    Inputs x (N, T, n_in), outputs y (N, T, n_out).
    """

    cell = None              # the layers' cell: a CharRNN sets its own before building

    def __init__(self, n_in: int, n_out: int, *, hidden: int | Sequence[int] = (64,), activation: str = "tanh",
                 output: str = "identity", skip_input: bool = False, skip_output: bool = False,
                 learn_init: bool = True, bias: bool = True, output_bias: bool = True,
                 dtype: DTypeLike = np.float32, seed: int | np.random.Generator | None = None) -> None:
        hidden = check_hidden(hidden)
        self._config = dict(n_in=n_in, n_out=n_out, hidden=hidden, activation=activation,
                            output=output, skip_input=skip_input, skip_output=skip_output,
                            learn_init=learn_init, bias=bias, output_bias=output_bias,
                            dtype=dtype, seed=seed_for_config(seed))
        self.network = stacked_network(self.cell, **self._config)


def stacked_network(cell, *, n_in, n_out, hidden, activation, output, skip_input, skip_output, learn_init,
                     bias, output_bias, dtype, seed):
    """The column of an ``RNN`` (``cell`` None) or of an ``LSTM`` / ``GRU``: the same links."""
    names, layers, links = hidden_stack(
        hidden, activation, recurrent=True, learn_init=learn_init, bias=bias, cell=cell,
        per_layer=lambda l, name: ({}, [Link("x", name)] if skip_input and l > 1 else []),
        output_layer=Layer(n_out, output, bias=output_bias, init="zeros"))
    if skip_output:
        links.extend(Link(name, "y") for name in names[:-1])
    return Network({"x": n_in}, layers, links, "y", dtype=dtype, seed=seed)


class _GatedRNN(NetworkModel):
    """An ``RNN`` whose hidden layers are gated (``cell``): the options of the RNN but its
    activation, which the cell fixes. Subclasses set ``cell`` and document the equations."""

    cell = None

    def __init__(self, n_in: int, n_out: int, *, hidden: int | Sequence[int] = (64,), output: str = "identity",
                 skip_input: bool = False, skip_output: bool = False, learn_init: bool = True,
                 bias: bool = True, output_bias: bool = True, dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None) -> None:
        hidden = check_hidden(hidden)
        self._config = dict(n_in=n_in, n_out=n_out, hidden=hidden, output=output, skip_input=skip_input,
                            skip_output=skip_output, learn_init=learn_init, bias=bias,
                            output_bias=output_bias, dtype=dtype, seed=seed_for_config(seed))
        self.network = stacked_network(self.cell, activation="tanh", **self._config)


def _indented(text):
    return "".join("    " + line for line in text.splitlines(True))


_GATED_OPTIONS = """
    Parameters
    ----------
    n_in, n_out : int
    hidden : tuple of int, the sizes H_1 .. H_L (an int means one layer)
    output : "identity" | "softmax" | "sigmoid", the output activation g
    skip_input, skip_output : bool, links x -> h{l} (l > 1) and h{l} -> y (l < L)
    learn_init : bool, the initial states learned (True) or zero
    bias, output_bias : bool, biases of the gated layers (PyTorch's bias=) and of the output
    dtype : numpy.float32 (default) or numpy.float64
    seed : int or numpy.random.Generator for the initial weights (uniform in +-1/sqrt(fan-in)
        of each layer; biases zero but an LSTM's forget gate, whose bias starts at 1, as
        Gers, Schmidhuber and Cummins (2000) advise and Keras does: not PyTorch's
        initialisation)

    Notes
    -----
    Inputs x (N, T, n_in), outputs y (N, T, n_out). Runs on the compiled loops (``backend="fast"``,
    the default with numba) or the NumPy reference loops (``backend="numpy"``).
    """


@register_model
class LSTM(_GatedRNN):
    __doc__ = r"""Multi-layer LSTM (Hochreiter and Schmidhuber, 1997), then an output layer.

    For layers l = 1 .. L and steps t = 0 .. T-1, with x^(1)(t) = X(t) and
    x^(l)(t) = h^(l-1)(t), as PyTorch's ``nn.LSTM`` documents it::

{equations}        Y(t) = g( W^(L,y) h^(L)(t) [+ sum_{l<L} W^(l,y) h^(l)(t)] + b^(y) )

    As a column: ``x -> h1``, ``h{l-1} -> h{l}``, ``h{l} -> h{l} @1``, ``h{L} -> y``, each
    ``h{l}`` a ``Layer(H, cell="lstm")`` (``engine.cells``). ``unrolled.from_torch`` /
    ``to_torch`` map it one to one onto ``torch.nn.LSTM`` + ``torch.nn.Linear``.

    Parameters (``params`` keys): ``W[x->h1@0]`` (4H_1, n_in) = [W_ii; W_if; W_ig; W_io],
    ``W[h{l-1}->h{l}@0]`` (4H_l, H_{l-1}), ``W[h{l}->h{l}@1]`` (4H_l, H_l) = W_h*,
    ``b[h{l}]`` (4H_l) = b_i* + b_h*, ``W[h{L}->y@0]``, ``b[y]``, skips ``W[x->h{l}@0]`` and
    ``W[h{l}->y@0]``, and the initial states ``init[h{l}]`` (h(-1)) and ``init[h{l}.c]``
    (c(-1)), each (1, H_l). ``state`` / ``cache.state`` carry ``h{l}`` and ``h{l}.c``.
    """.replace("{equations}", _indented(LSTM_EQUATIONS)) + _GATED_OPTIONS
    cell = "lstm"


@register_model
class GRU(_GatedRNN):
    __doc__ = r"""Multi-layer GRU (Cho et al., 2014), then an output layer.

    For layers l = 1 .. L and steps t = 0 .. T-1, with x^(1)(t) = X(t) and
    x^(l)(t) = h^(l-1)(t), as PyTorch's ``nn.GRU`` documents it (the reset gate applied
    after the recurrent product, as PyTorch and cuDNN do)::

{equations}        Y(t) = g( W^(L,y) h^(L)(t) [+ sum_{l<L} W^(l,y) h^(l)(t)] + b^(y) )

    As a column: ``x -> h1``, ``h{l-1} -> h{l}``, ``h{l} -> h{l} @1``, ``h{L} -> y``, each
    ``h{l}`` a ``Layer(H, cell="gru")`` (``engine.cells``). ``unrolled.from_torch`` /
    ``to_torch`` map it one to one onto ``torch.nn.GRU`` + ``torch.nn.Linear``.

    Parameters (``params`` keys): ``W[x->h1@0]`` (3H_1, n_in) = [W_ir; W_iz; W_in],
    ``W[h{l-1}->h{l}@0]`` (3H_l, H_{l-1}), ``W[h{l}->h{l}@1]`` (3H_l, H_l) = W_h*,
    ``b[h{l}]`` (3H_l) = [b_ir + b_hr, b_iz + b_hz, b_in], ``b[h{l}.hn]`` (H_l) = b_hn,
    ``W[h{L}->y@0]``, ``b[y]``, skips ``W[x->h{l}@0]`` and ``W[h{l}->y@0]``, and the
    initial states ``init[h{l}]`` (1, H_l).
    """.replace("{equations}", _indented(GRU_EQUATIONS)) + _GATED_OPTIONS
    cell = "gru"
