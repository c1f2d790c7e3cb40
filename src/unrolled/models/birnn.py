"""The lecture's bidirectional RNN: stacked bidirectional blocks, then an output layer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from .._checks import check_hidden, positive_int, seed_for_config
from ..blocks import WHOLE_SEQUENCE, Bidirectional, Stack, WholeSequence
from ..columns import recurrent_network
from ..engine import Layer, Link, Network
from ..registry import register_model
from .base import ConfigFromArguments

__all__ = ["BiRNN"]

CELLS = ("tanh", "lstm", "gru")


@register_model
class BiRNN(ConfigFromArguments, WholeSequence, Stack):
    r"""Bidirectional RNN (Schuster and Paliwal, 1997): ``blocks`` bidirectional blocks, then y.

    In block k (k = 1 .. K) with input u_k (u_1 = X, u_{k+1} = h_k), for layers
    l = 1 .. L of each direction (h^(0) = u_k)::

        h_f^(l)(t) = f( W_fc(l) h_f^(l-1)(t) + W_fr(l) h_f^(l)(t-1) + b_f(l) )   t = 0 .. T-1
        h_b^(l)(t) = f( W_bc(l) h_b^(l-1)(t) + W_br(l) h_b^(l)(t+1) + b_b(l) )   t = T-1 .. 0
        h_k(t)     = [h_f^(L)(t); h_b^(L)(t)]
        Y(t)       = g( W_y h_K(t) + b_y )

    with h_f(-1) and h_b(T) (the lecture's h_b(inf)) learned (``learn_init``) or zero.
    With ``cell="lstm"`` or ``"gru"`` each direction's layers are gated instead
    (``engine.cells``: the equations of ``torch.nn.LSTM`` / ``nn.GRU``, read backwards in
    time by the ``bwd`` net), with their parameters (links of 4H or 3H rows, the GRU's
    ``b[h{l}.hn]``, the LSTM's ``init[h{l}.c]``), on either backend.
    Each sequence is reversed within its own length, so the backward recursion starts at
    its own last valid step. A :class:`~unrolled.blocks.Stack` of
    :class:`~unrolled.blocks.Bidirectional` blocks and a delay-0 output network.

    Parameters (``params`` keys), for block k and direction d in {fwd, bwd}:
    ``block{k}.{d}.W[x->h1@0]`` (W_c(1)), ``block{k}.{d}.W[h{l-1}->h{l}@0]`` (W_c(l)),
    ``block{k}.{d}.W[h{l}->h{l}@1]`` (W_r(l)), ``block{k}.{d}.b[h{l}]``,
    ``block{k}.{d}.init[h{l}]`` (1, H_l); the output layer ``out.W[x->y@0]``
    (n_out, 2 H_L) and ``out.b[y]``.

    With ``hidden=(H,)`` it is ``torch.nn.RNN(n_in, H, num_layers=blocks,
    bidirectional=True)`` + ``torch.nn.Linear(2H, n_out)`` (torch's bidirectional layers
    are blocks of one layer per direction; with ``cell="lstm" | "gru"``, ``torch.nn.LSTM`` /
    ``nn.GRU``); see :func:`unrolled.interop.birnn_from_torch`.

    A BiRNN needs the whole sequence: ``state=`` (streaming, truncated BPTT,
    continuing a sequence) raises ValueError.

    Parameters
    ----------
    n_in, n_out : int
    hidden : tuple of int, the layer sizes H_1 .. H_L of each direction in every block
    blocks : int, the number K of stacked bidirectional blocks
    activation : "tanh" | "relu" | "sigmoid" | "identity", the state activation f of a plain cell
    cell : "tanh" (plain layers h = f(z), f the ``activation``), "lstm" or "gru" (gated;
        ``activation`` then stays "tanh")
    output : "identity" | "softmax" | "sigmoid", the output activation g
    learn_init : bool, h_f(-1) and h_b(T) learned (True) or zero
    bias, output_bias : bool
    dtype : numpy.float32 (default) or numpy.float64
    seed : int or numpy.random.Generator for the initial weights

    Notes
    -----
    Inputs x (N, T, n_in), outputs y (N, T, n_out).
    """

    def __init__(self, n_in: int, n_out: int, *, hidden: int | Sequence[int] = (64,), blocks: int = 1,
                 activation: str = "tanh", output: str = "identity", learn_init: bool = True, bias: bool = True,
                 output_bias: bool = True, dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None, cell: str = "tanh") -> None:
        hidden = check_hidden(hidden)
        blocks = positive_int(blocks, "blocks")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        self._config = dict(n_in=n_in, n_out=n_out, hidden=hidden, blocks=blocks, activation=activation,
                            output=output, learn_init=learn_init, bias=bias, output_bias=output_bias,
                            dtype=dtype, seed=seed_for_config(seed))
        if cell != "tanh":                   # (a plain BiRNN's config reads as it always did)
            self._config["cell"] = cell
        rng = np.random.default_rng(seed)
        parts, width = [], n_in
        for _ in range(blocks):
            nets = [recurrent_network(width, hidden, activation=activation, learn_init=learn_init, bias=bias,
                                      dtype=dtype, seed=rng, cell=None if cell == "tanh" else cell)
                    for _ in range(2)]
            parts.append(Bidirectional(*nets))
            width = 2 * hidden[-1]
        out = Network({"x": width}, {"y": Layer(n_out, output, bias=output_bias, init="zeros")},
                      [Link("x", "y")], "y", dtype=dtype, seed=rng)
        super().__init__(*parts, out, names=[f"block{k}" for k in range(1, blocks + 1)] + ["out"])

    def forward(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None,
                state: dict | None = None) -> tuple[np.ndarray, object]:
        """``(y, cache)``: y (N, T, n_out) for x (N, T, n_in), zero at padded steps.

        Parameters
        ----------
        x : numpy.ndarray
            (N, T, n_in) inputs.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence (padding at the end).
        state : None
            Must be None: the model reads each sequence whole.
        Returns
        -------
        y : numpy.ndarray
            (N, T, n_out) outputs, zero at padded steps.
        cache : object
            What ``backward`` needs; ``cache.state`` the final state.
        """
        if state is not None:
            raise ValueError(f"BiRNN {WHOLE_SEQUENCE}")
        return super().forward(x, lengths=lengths)
