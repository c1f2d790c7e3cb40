"""Blocks that hold other blocks: the lecture's bidirectional block, and blocks in series.

A **block** is anything with the model interface: ``params`` (dict name -> live array),
``forward(x, *, lengths=None, state=None) -> (y, cache)``, ``backward(dy, cache) ->
(grads, dx)``, ``n_in``, ``n_out`` and ``dtype``. A :class:`~unrolled.engine.Network`,
every named model, and the two blocks of this module are blocks, so they nest.

- :class:`Bidirectional` (the lecture's BRNN block): a forward net reads the sequence
  from t = 0 up, a backward net reads it from its last step down, and their states are
  concatenated, h(t) = [h_f(t); h_b(t)].
- :class:`Stack`: blocks in series (stacked bidirectional blocks, then an output layer).

A block's parameters are its children's, named ``<child>.<name>`` (``fwd.W[x->h1@0]``,
``block2.bwd.b[h1]``, ``out.W[x->y@0]``); the values are the children's live arrays, so
an optimizer that updates ``block.params`` in place trains the children.

Shapes: N batch, T time, n_in inputs, H a layer's size, n_out outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_float_array, check_finite_inputs, check_lengths
from .columns import recurrent_network
from .registry import block_config, block_from_config, register_model

__all__ = ["Bidirectional", "Stack", "recurrent_network", "reverse_within", "block_config", "block_from_config",
           "prefix_keys", "prefixed_params", "Composite", "PredictFromForward", "WholeSequence",
           "WHOLE_SEQUENCE"]

WHOLE_SEQUENCE = (
    "needs the whole sequence: its backward net reads each sequence from its last step "
    "down to its first, so it cannot run online, stream, or continue from a state. "
    "- help: call forward on whole sequences with state=None (no truncated BPTT: fit(..., bptt=None))")


# ------------------------------------------------------------------------ helpers
def reverse_within(a: ArrayLike, lengths: ArrayLike) -> np.ndarray:
    """Each sequence of ``a`` (N, T, ...) reversed in time within its own length.

    Step t < len_n goes to len_n - 1 - t; the padding (t >= len_n) stays where it is, at
    the end. The map is its own inverse: ``reverse_within(reverse_within(a, L), L) == a``.
    With all lengths T it is the lecture's ``fliplr``.

    Parameters
    ----------
    a : array_like
        (N, T, ...) sequences.
    lengths : array_like
        (N,) valid steps of each sequence.

    Returns
    -------
    numpy.ndarray
        The same shape as ``a``.
    """
    a = np.asarray(a)
    N, T = a.shape[:2]
    t = np.arange(T)[None, :]
    L = np.asarray(lengths)[:, None]
    idx = np.where(t < L, L - 1 - t, t)                               # (N, T)
    return a[np.arange(N)[:, None], idx]


def _check_block(block, what):
    missing = [a for a in ("params", "forward", "backward", "n_in", "n_out", "dtype") if not hasattr(block, a)]
    if missing:
        raise TypeError(f"{what} must be a block (a Network, a model or a block) with params, forward, "
                        f"backward, n_in, n_out and dtype; a {type(block).__name__} lacks {missing}")
    return block


def prefix_keys(named: dict[str, dict]) -> dict:
    """``{"<prefix>.<key>": value}`` from ``{prefix: {key: value}}`` (parameters or gradients).

    Parameters
    ----------
    named : dict of str to dict
        prefix -> {key: value}.

    Returns
    -------
    dict
    """
    return {f"{prefix}.{key}": value for prefix, d in named.items() for key, value in d.items()}


def prefixed_params(children: dict[str, Any]) -> dict[str, np.ndarray]:
    """{child.name: array} over the children's live parameter arrays.

    Parameters
    ----------
    children : dict of str to block
        name -> child block.

    Returns
    -------
    dict of str to numpy.ndarray
    """
    return prefix_keys({prefix: child.params for prefix, child in children.items()})


def _check_x(x, n_in, dtype, who):
    arr = as_float_array(x, dtype, "x")
    if arr.ndim != 3 or arr.shape[2] != n_in:
        raise ValueError(f"{who} expected x of shape (N, T, {n_in}), got {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError("x has no time steps (T = 0)")
    return arr


def _check_dy(dy, shape, dtype, who):
    arr = as_float_array(dy, dtype, "dy")
    if arr.shape != shape:
        raise ValueError(f"{who} expected dy of shape {shape} like its outputs, got {arr.shape}")
    return arr


class Composite:
    """A block of named child blocks (``children``): its ``params`` are theirs, prefixed."""

    children: dict

    @property
    def params(self) -> dict[str, np.ndarray]:
        """dict ``<child>.<name>`` -> the children's live arrays."""
        return prefixed_params(self.children)


class PredictFromForward:
    """``predict``: a block's ``forward`` alone, its outputs (and the final state).

    The one ``predict`` of every block and model; a class whose ``forward`` takes more
    keywords (``teacher``, ``steps``) names them in its own ``predict`` signature and
    hands them here.
    """

    def predict(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None, state: dict | None = None,
                return_state: bool = False, **inputs) -> np.ndarray | tuple:
        """Outputs y (N, T, n_out) of ``forward(x, lengths=..., state=..., **inputs)`` alone;
        with ``return_state``, ``(y, cache.state)``: the final state to continue from.

        Parameters
        ----------
        x : numpy.ndarray
            (N, T, n_in) inputs.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence (padding at the end).
        state : dict, optional
            Initial histories, as ``forward`` takes them.
        return_state : bool
            Return the final state too.
        **inputs
            Further external inputs, name -> (N, T, width).

        Returns
        -------
        y : numpy.ndarray or tuple
            (N, T, n_out) outputs; with ``return_state``, ``(y, cache.state)``.
        """
        self._check_finite(x, lengths, inputs)
        y, cache = self.forward(x, lengths=lengths, state=state, **inputs)
        return (y, cache.state) if return_state else y


    def _check_finite(self, x, lengths, inputs):
        """ValueError naming a NaN or infinity of the inputs at a valid step (or a value
        beyond the model's dtype), before ``predict`` runs the pass."""
        check_finite_inputs(lengths, getattr(self, "dtype", None), x=x, **inputs)


class WholeSequence(PredictFromForward):
    """``predict`` of a block that reads each sequence whole (from its last step too): it
    has no state to start from or to return."""

    def predict(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None, state: dict | None = None,
                return_state: bool = False) -> np.ndarray | tuple:
        """Outputs (N, T, n_out) alone. ``state``/``return_state`` raise: no state to continue.

        Parameters
        ----------
        x : numpy.ndarray
            (N, T, n_in) inputs.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence (padding at the end).
        state : None
            Must be None: there is no state to start from.
        return_state : bool
            Must be False: there is no state to return.

        Returns
        -------
        numpy.ndarray
            (N, T, n_out) outputs.
        """
        if return_state:
            raise ValueError(f"{type(self).__name__} has no final state to return: it {WHOLE_SEQUENCE}")
        return super().predict(x, lengths=lengths, state=state)


# --------------------------------------------------------------------- Bidirectional
@dataclass
class BidirectionalCache:
    """The two nets' caches. ``state`` is empty: a bidirectional block has no state to continue from."""

    fwd: object
    bwd: object
    lengths: np.ndarray          # (N,)
    shape: tuple                 # (N, T, n_out) of the block's output
    state: dict = field(default_factory=dict)


@register_model
class Bidirectional(Composite, WholeSequence):
    r"""The lecture's bidirectional (BRNN) block: h(t) = [h_f(t); h_b(t)].

    Both nets read the block's input x(t) (the series, or the output of a lower block).
    The forward net runs t = 0 .. T-1; the backward net runs each sequence in reverse
    time *within its own length* (padding stays at the end)::

        h_f      = forward_net(x)                          # RNN_forward(x)
        h_b      = flip(backward_net(flip(x)))             # flip: t -> len_n - 1 - t
        h(t)     = [h_f(t); h_b(t)]                        # (N, T, H_f + H_b)

    Backprop (the lecture's BRNN gradient): dDIV/dh(t) is split into its halves
    [dDIV/dh_f(t); dDIV/dh_b(t)]; each net runs its own BPTT (the backward half flipped
    into the backward net's time and its dx flipped back), and the input gradient is the
    sum dx = dx_f + dx_b.

    The backward net starts at each sequence's end, so the block needs the whole
    sequence: ``state=`` raises ValueError. Parameters are ``fwd.<name>`` and
    ``bwd.<name>`` (the two nets' live arrays).

    Parameters
    ----------
    forward_net, backward_net : blocks with the same n_in and dtype (for example
        :func:`recurrent_network` columns). n_out = forward_net.n_out + backward_net.n_out.
    """

    def __init__(self, forward_net: Any, backward_net: Any) -> None:
        self.forward_net = _check_block(forward_net, "forward_net")
        self.backward_net = _check_block(backward_net, "backward_net")
        if forward_net.n_in != backward_net.n_in:
            raise ValueError(f"both nets read the block input: forward_net.n_in = {forward_net.n_in} "
                             f"but backward_net.n_in = {backward_net.n_in}")
        if np.dtype(forward_net.dtype) != np.dtype(backward_net.dtype):
            raise TypeError(f"forward_net is {np.dtype(forward_net.dtype)} but backward_net is "
                            f"{np.dtype(backward_net.dtype)}; build both with the same dtype")

    @property
    def children(self) -> dict:
        """dict name -> child block, in order: what ``params`` prefixes."""
        return {"fwd": self.forward_net, "bwd": self.backward_net}

    @property
    def dtype(self) -> type[np.floating]:
        """The floating dtype of the parameters and outputs (numpy.float32 or numpy.float64)."""
        return self.forward_net.dtype

    @property
    def n_in(self) -> int:
        """Inputs per step, n_in."""
        return self.forward_net.n_in

    @property
    def n_out(self) -> int:
        """Outputs per step, n_out."""
        return self.forward_net.n_out + self.backward_net.n_out

    def forward(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None,
                state: dict | None = None) -> tuple[np.ndarray, BidirectionalCache]:
        """``(h, cache)``: h (N, T, H_f + H_b) for x (N, T, n_in), zero at padded steps.

        Parameters
        ----------
        x : numpy.ndarray
            (N, T, n_in) inputs.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence (padding at the end).
        state : None
            Must be None: the block reads each sequence whole.

        Returns
        -------
        h : numpy.ndarray
            (N, T, H_f + H_b).
        cache : BidirectionalCache
        """
        if state is not None:
            raise ValueError(f"{type(self).__name__} {WHOLE_SEQUENCE}")
        x = _check_x(x, self.n_in, self.dtype, type(self).__name__)
        N, T = x.shape[:2]
        lengths = check_lengths(lengths, N, T)
        h_f, c_f = self.forward_net.forward(x, lengths=lengths)                     # (N, T, H_f)
        h_brev, c_b = self.backward_net.forward(reverse_within(x, lengths), lengths=lengths)
        h = np.concatenate([h_f, reverse_within(h_brev, lengths)], axis=-1)         # (N, T, H_f + H_b)
        return h, BidirectionalCache(c_f, c_b, lengths, h.shape)

    def backward(self, dy: np.ndarray, cache: BidirectionalCache) -> tuple[dict, np.ndarray | None]:
        """``(grads, dx)``: BPTT of both nets; dx (N, T, n_in) = dx_f + dx_b.

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
        dy = _check_dy(dy, cache.shape, self.dtype, type(self).__name__)
        L = cache.lengths
        nf = self.forward_net.n_out
        g_f, dx_f = self.forward_net.backward(np.ascontiguousarray(dy[..., :nf]), cache.fwd)
        g_b, dx_brev = self.backward_net.backward(reverse_within(dy[..., nf:], L), cache.bwd)
        dx = dx_f + reverse_within(dx_brev, L)
        return prefix_keys({"fwd": g_f, "bwd": g_b}), dx

    def get_config(self) -> dict:
        """The constructor's arguments, JSON-friendly, children as block specs.

        What ``unrolled.save`` stores and ``from_config`` rebuilds from.

        Returns
        -------
        dict
        """
        return {"forward_net": block_config(self.forward_net), "backward_net": block_config(self.backward_net)}

    @classmethod
    def from_config(cls, config: dict) -> Bidirectional:
        """A new Bidirectional from what ``get_config`` returned (fresh weights: ``load`` copies the
        saved ones in).

        Parameters
        ----------
        config : dict
            A dict as ``get_config`` returns it.

        Returns
        -------
        Bidirectional
        """
        return cls(block_from_config(config["forward_net"]), block_from_config(config["backward_net"]))

    def __repr__(self):
        return f"Bidirectional({self.forward_net!r}, {self.backward_net!r})"


# ---------------------------------------------------------------------------- Stack
@dataclass
class StackCache:
    """The blocks' caches, bottom first; ``state`` maps block name -> its final state."""

    caches: list
    lengths: np.ndarray
    state: dict = field(default_factory=dict)


@register_model
class Stack(Composite, PredictFromForward):
    """Blocks in series: y = block_K( ... block_2(block_1(x)) ).

    Forward chains the outputs (each block reads the one below at every step, with the
    same lengths); backward chains the input gradients from the top block down. The dy
    given to ``backward`` goes to the top block unchanged, so a fused softmax
    cross-entropy gradient (``divergences.LogitGradient``) still reaches a softmax
    output layer exactly.

    Parameters
    ----------
    *blocks : blocks with blocks[i].n_out == blocks[i+1].n_in and one dtype.
    names : one name per block (default ``"0"``, ``"1"``, ...); parameter names are
        ``<block name>.<name>``.

    Notes
    -----
    ``state`` (and ``cache.state``) is a dict block name -> that block's state; a block
    not named starts from its own initial history.
    """

    def __init__(self, *blocks: Any, names: Sequence[str] | None = None) -> None:
        if not blocks:
            raise ValueError("Stack needs at least one block")
        if names is None:
            names = [str(i) for i in range(len(blocks))]
        names = list(names)
        if len(names) != len(blocks) or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"names must be {len(blocks)} non-empty strings, one per block, got {names!r}")
        if len(set(names)) != len(names) or any("." in n for n in names):
            raise ValueError(f"block names must be distinct and contain no '.', got {names!r}")
        for i, block in enumerate(blocks):
            _check_block(block, f"block {names[i]!r}")
        for i in range(len(blocks) - 1):
            if blocks[i].n_out != blocks[i + 1].n_in:
                raise ValueError(f"block {names[i]!r} gives {blocks[i].n_out} outputs but block "
                                 f"{names[i + 1]!r} reads n_in = {blocks[i + 1].n_in}")
        dtypes = {np.dtype(b.dtype) for b in blocks}
        if len(dtypes) != 1:
            raise TypeError(f"all blocks must share one dtype, got {sorted(str(d) for d in dtypes)}")
        self.blocks = list(blocks)
        self.names = names

    @property
    def children(self) -> dict:
        """dict name -> child block, in order: what ``params`` prefixes."""
        return dict(zip(self.names, self.blocks))

    @property
    def dtype(self) -> type[np.floating]:
        """The floating dtype of the parameters and outputs (numpy.float32 or numpy.float64)."""
        return self.blocks[0].dtype

    @property
    def n_in(self) -> int:
        """Inputs per step, n_in."""
        return self.blocks[0].n_in

    @property
    def n_out(self) -> int:
        """Outputs per step, n_out."""
        return self.blocks[-1].n_out

    def forward(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None,
                state: dict | None = None) -> tuple[np.ndarray, StackCache]:
        """``(y, cache)``: y (N, T, n_out) for x (N, T, n_in), zero at padded steps.

        Parameters
        ----------
        x : numpy.ndarray
            (N, T, n_in) inputs.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence (padding at the end).
        state : dict, optional
            block name -> that block's initial state.
        Returns
        -------
        y : numpy.ndarray
            (N, T, n_out) outputs, zero at padded steps.
        cache : object
            What ``backward`` needs; ``cache.state`` the final state.
        """
        x = _check_x(x, self.n_in, self.dtype, type(self).__name__)
        N, T = x.shape[:2]
        lengths = check_lengths(lengths, N, T)
        if state is not None:
            if not isinstance(state, dict):
                raise TypeError(f"state must be a dict block name -> state, got {type(state).__name__}")
            unknown = sorted(set(state) - set(self.names))
            if unknown:
                raise ValueError(f"state names unknown block(s) {unknown}; the blocks are {self.names}")
        caches, final = [], {}
        h = x
        for name, block in zip(self.names, self.blocks):
            h, cache = block.forward(h, lengths=lengths, state=None if state is None else state.get(name))
            caches.append(cache)
            final[name] = getattr(cache, "state", None)
        return h, StackCache(caches, lengths, final)

    def backward(self, dy: np.ndarray, cache: StackCache) -> tuple[dict, np.ndarray | None]:
        """``(grads, dx)``: each block's BPTT from the top down; dx (N, T, n_in).

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
        grads = {}
        g = dy
        for name, block, c in reversed(list(zip(self.names, self.blocks, cache.caches))):
            gb, g = block.backward(g, c)
            grads.update({f"{name}.{k}": v for k, v in gb.items()})
        return {k: grads[k] for k in self.params}, g

    def get_config(self) -> dict:
        """The constructor's arguments, JSON-friendly, children as block specs.

        What ``unrolled.save`` stores and ``from_config`` rebuilds from.

        Returns
        -------
        dict
        """
        return {"blocks": [block_config(b) for b in self.blocks], "names": list(self.names)}

    @classmethod
    def from_config(cls, config: dict) -> Stack:
        """A new Stack from what ``get_config`` returned (fresh weights: ``load`` copies the
        saved ones in).

        Parameters
        ----------
        config : dict
            A dict as ``get_config`` returns it.

        Returns
        -------
        Stack
        """
        return cls(*[block_from_config(spec) for spec in config["blocks"]], names=config["names"])

    def __repr__(self):
        inner = ", ".join(f"{n}={b!r}" for n, b in zip(self.names, self.blocks))
        return f"Stack({inner})"
