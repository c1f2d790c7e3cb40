"""The Jordan network: a fixed memory unit keeps a running average of past outputs."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from .._checks import as_float_array, check_delay, check_hidden, seed_for_config
from ..columns import hidden_stack
from ..engine import ForwardCache, Layer, Link, Network
from ..registry import register_model
from .base import NetworkModel

__all__ = ["Jordan"]


@register_model
class Jordan(NetworkModel):
    r"""Jordan network (Jordan, 1986): the memory is a running average of the outputs.

    The lecture's "let's make memory more explicit", with a memory m of fixed structure::

        m(t)     = decay * m(t-1) + (1 - decay) * Y(t-1)        m(-1) = Y(-1) = 0
        h^(1)(t) = f( W^(x,1) X(t) + W^(m,1) m(t) + b^(1) )
        h^(l)(t) = f( W^(l-1,l) h^(l-1)(t) + b^(l) )            l = 2 .. L
        Y(t)     = g( W^(L,y) h^(L)(t) + b^(y) )

    so m(t) = (1 - decay) sum_{s>=1} decay^(s-1) Y(t-s): the whole past of the output, not
    only the last step. The memory does not learn, and no gradient passes through it
    (the lecture: "blocked" at the memory units): in training m(t) is a constant input of
    each step, and only W^(m,1) (memory -> hidden) and the feed-forward weights learn.

    As a column of the engine: a layer ``m`` (size n_out, identity, no bias, history
    zeros) with ``m -> m @1`` fixed at ``decay * I`` and ``y -> m @1`` fixed at
    ``(1 - decay) * I``, both ``trainable=False, gradient="blocked"``; ``x -> h1``,
    ``m -> h1`` (learned), ``h{l-1} -> h{l}``, ``h{L} -> y``. A memory other than zero
    at the start is given as ``state={"m": (N, 1, n_out), "y": (N, 1, n_out)}``.

    The input may be a constant **plan** (Jordan's setting): ``forward(plan, steps=T)``
    with plan (N, n_in) feeds the same input at each of T steps; ``backward`` then
    returns dDIV/dplan (N, n_in), the sum over steps.

    Parameters (``params`` keys): ``W[x->h1@0]``, ``W[m->h1@0]``, ``W[h{l-1}->h{l}@0]``,
    ``W[h{L}->y@0]``, ``b[h{l}]``, ``b[y]`` (the memory's weights are constants,
    ``network.constants``).

    Parameters
    ----------
    n_in, n_out : int
    hidden : tuple of int, the sizes H_1 .. H_L (an int means one layer)
    decay : float in [0, 1], how much of the old memory is kept each step
    activation : the hidden activation f; output : the output activation g
    dtype : numpy.float32 (default) or numpy.float64
    seed : int or numpy.random.Generator for the initial weights

    Notes
    -----
    Inputs x (N, T, n_in) or a plan (N, n_in) with ``steps=T``; outputs y (N, T, n_out).
    """

    def __init__(self, n_in: int, n_out: int, *, hidden: int | Sequence[int] = (16,), decay: float = 0.5,
                 activation: str = "tanh", output: str = "identity", dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None) -> None:
        if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be a number in [0, 1], got {decay!r}")
        hidden = check_hidden(hidden)
        self._config = dict(n_in=n_in, n_out=n_out, hidden=hidden, decay=float(decay), activation=activation,
                            output=output, dtype=dtype,
                            seed=seed_for_config(seed))
        _, layers, links = hidden_stack(hidden, activation, recurrent=False, first=(("x", 0), ("m", 0)),
                                        output_layer=Layer(n_out, output, init="zeros"))
        layers["m"] = Layer(n_out, "identity", bias=False, init="zeros")
        links.append(Link("m", "m", 1, weight=float(decay), trainable=False, gradient="blocked"))
        links.append(Link("y", "m", 1, weight=1.0 - float(decay), trainable=False, gradient="blocked"))
        self.network = Network({"x": n_in}, layers, links, "y", dtype=dtype, seed=seed)

    @property
    def decay(self) -> float:
        """The memory's decay (its fixed weight ``decay * I`` on itself)."""
        return self._config["decay"]

    def forward(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None, state: dict | None = None,
                steps: int | None = None) -> tuple[np.ndarray, object]:
        """``(y, cache)`` for x (N, T, n_in), or a constant plan x (N, n_in) with ``steps=T``.

        Parameters
        ----------
        x : numpy.ndarray
            (N, T, n_in) inputs, or a plan (N, n_in) fed at every step.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence.
        state : dict, optional
            Initial histories (``"m"``, ``"y"``, ...), as ``Network.forward`` takes them.
        steps : int, optional
            T, for a plan.

        Returns
        -------
        y : numpy.ndarray
            (N, T, n_out) outputs, zero at padded steps.
        cache : object
            What ``backward`` needs; ``cache.state`` the final state.
        """
        x = as_float_array(x, self.dtype, "x")
        plan = x.ndim == 2
        if plan:
            if steps is None:
                raise ValueError(f"a plan x of shape {x.shape} (N, n_in) is fed at every step: "
                                 "pass steps=T, or x of shape (N, T, n_in)")
            x = np.broadcast_to(x[:, None, :], (x.shape[0], check_delay(steps, "steps", low=1), x.shape[1]))
        elif steps is not None and x.ndim == 3 and steps != x.shape[1]:
            raise ValueError(f"steps={steps} contradicts x with T={x.shape[1]}")
        y, cache = self.network.forward(x, lengths=lengths, state=state)
        cache.plan = plan                # backward returns dDIV/dplan, summed over the steps
        return y, cache

    def predict(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None, state: dict | None = None,
                return_state: bool = False, steps: int | None = None) -> np.ndarray | tuple:
        """Outputs (N, T, n_out) alone (and the final state with ``return_state``); x and
        ``steps`` as ``forward`` takes them.

        Parameters
        ----------
        x, lengths, state, steps
            As ``forward`` takes them.
        return_state : bool
            Return the final state too.

        Returns
        -------
        y : numpy.ndarray or tuple
            (N, T, n_out) outputs; with ``return_state``, ``(y, cache.state)``.
        """
        return super().predict(x, lengths=lengths, state=state, return_state=return_state, steps=steps)

    def backward(self, dy: np.ndarray, cache: ForwardCache) -> tuple[dict, np.ndarray | None]:
        """BPTT (blocked at the memory): ``(grads, dx)``; dx (N, n_in) for a plan.

        Parameters
        ----------
        dy : numpy.ndarray
            (N, T, n_out) dDIV/dy, as a divergence gives it.
        cache : object
            What ``forward`` returned with the outputs.

        Returns
        -------
        grads : dict of str to numpy.ndarray
            The gradient of every parameter, the keys of ``params``.
        dx : numpy.ndarray
            (N, T, n_in) dDIV/dx.
        """
        grads, dx = self.network.backward(dy, cache)
        if dx is not None and getattr(cache, "plan", False):
            dx = dx.sum(axis=1)
        return grads, dx
