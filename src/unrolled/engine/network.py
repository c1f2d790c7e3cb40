"""The column: named layers joined by links that may reach back in time, unrolled.

A network is a set of **layers** and **links** (``engine.graph``). At every step
t = 0 ... T-1, for every layer in an order that respects the delay-0 links::

    z_dst(t) = sum over links (src -> dst @ d) of  W_link a_src(t - d)  +  b_dst
    a_dst(t) = f_dst(z_dst(t))

``src`` is a layer or an external input sequence (``"x"``, or e.g. ``"teacher"``). For
t - d < 0 a node reads its **initial history**: zeros, a learned parameter
(``init[layer]``, the lecture's h(-1)), or values the caller passes as ``state``.

``Network`` holds the structure and the parameters, checks what a caller passes, and
chooses how a pass runs, in one place (``_how``):

- ``engine.reference``: the NumPy loops, the lecture's ``RNN_forward`` / ``RNN_bptt``
  step by step (``backend="numpy"``), the oracle the other two are tested against;
- ``engine.fast``: the same schedule with compiled loops and activations, on BLAS or on
  the engine's own threads where a wide recurrence pays to split;
- ``engine.program``: a pass that stays on one thread, whole, as one compiled call.

All three read and write the same buffers: every node's activations ``(D + T, N, size)``
(time major, the first ``D`` rows the history, ``D`` the largest delay any link reads the
node with: a(t - d) for all t is the slice ``[D - d : D - d + T]``) are views into one flat
array, the pre-activations into another (``engine.plan``). Public arrays are batch first.

Shapes: N batch, T time, n_in inputs, H a layer's size, n_out outputs.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import DTypeLike

from .._checks import as_float_array, check_dtype, check_finite_inputs, check_lengths, check_parameter_budget, seed_for_config
from ..registry import register_model
from . import fast, program, reference
from .backend import check_backend, kernels_for, set_default_backend
from .cells import cell_node
from .graph import Layer, Link, check_inputs_spec, check_layers_spec, check_links, history_depths, schedule
from .plan import PassBuffers, Plan

__all__ = ["Layer", "Link", "Network", "ForwardCache", "set_default_backend"]


@dataclass
class ForwardCache:
    """What a forward pass keeps for BPTT, and the final history for continuation.

    ``state``: dict node -> (N, D, size), the last D values of every node read with a
    delay, at each sequence's own last valid step, oldest first. Pass it as ``state=`` to
    continue the sequences where they stopped.

    Attributes
    ----------
    A : dict
        node -> (D + T, N, size) activations, history first.
    Z : dict
        layer -> (T, N, H) pre-activations.
    weights : dict
        link key -> (dst, src) weight used in this pass.
    lengths : numpy.ndarray
        (N,) valid steps of each sequence.
    given : frozenset
        The nodes whose initial history came from the caller.
    state : dict
        node -> (N, D, size), the final history.
    buffers : object
        The flat arrays behind A and Z (internal).
    input_grads : bool
        False: ``backward`` skips the gradients of the inputs.
    """

    A: dict            # node -> (D + T, N, size) activations, history first
    Z: dict            # layer -> (T, N, H) pre-activations
    weights: dict      # link key -> (dst, src) weight used in this pass
    lengths: np.ndarray  # (N,)
    given: frozenset   # nodes whose initial history came from the caller
    state: dict = field(default_factory=dict)
    buffers: object = field(default=None, repr=False)  # the flat arrays behind A and Z (internal)
    # False: backward skips the gradients of the inputs (dx None, dinputs empty): ``fit``
    # sets it, since it reads only the parameters' gradients.
    input_grads: bool = True

    @property
    def N(self) -> int:
        """The batch size N."""
        return len(self.lengths)

    @property
    def T(self) -> int:
        """The number of steps T."""
        return next(iter(self.Z.values())).shape[0]

@register_model
class Network:
    """One column of layers and delayed links, unrolled over time.

    ``params`` maps ``W[src->dst@d]``, ``b[layer]`` and ``init[layer]`` (shape ``(D, size)``, oldest slot
    first) to the live arrays: changing one in place changes the network. A gated layer h (``Layer(cell="lstm"
    | "gru")``, ``engine.cells``) has links in of ``(k H, src)`` and ``b[h]`` of k H (k = 4 LSTM, 3 GRU); a
    GRU also ``b[h.hn]`` (H, PyTorch's b_hn), an LSTM also ``init[h.c]`` (1, H), its c(-1).

    Parameters
    ----------
    inputs : dict name -> int
        External input sequences and their widths, e.g. ``{"x": 3}``.
    layers : dict name -> Layer
    links : list of Link
    output : str
        The layer whose activations ``forward`` returns.
    dtype : numpy float dtype, float32 by default (float64 for gradient checks).
    seed : int or numpy.random.Generator, for the initial weights.
    backend : ``"fast"``, ``"numpy"`` or None (the default: ``"fast"`` when numba is
        installed); how the time loops of the recurrences run. See :attr:`backend`.
    """

    def __init__(self, inputs: dict[str, int], layers: dict[str, Layer], links: Iterable[Link], output: str, *,
                 dtype: DTypeLike = np.float32, seed: int | np.random.Generator | None = None,
                 backend: str | None = None) -> None:
        self.backend = backend
        self.dtype = check_dtype(dtype)
        self.inputs = check_inputs_spec(inputs)
        self.layers = check_layers_spec(layers, self.inputs)
        self.output = output
        self.seed = seed_for_config(seed)
        if output not in self.layers:
            raise ValueError(f"output must be one of the layers {list(self.layers)}, got {output!r}")
        self.links = check_links(links, self.layers, self.inputs)
        self.depth = history_depths(self.inputs, self.layers, self.links)
        # the LSTM layers' cell states, node -> its layer; every node a pass holds activations
        # of: the inputs, the layers, the cell states
        self.cell_states = {cell_node(name): name for name, layer in self.layers.items() if layer.cell == "lstm"}
        self.nodes = list(self.inputs) + list(self.layers) + list(self.cell_states)
        self.gated = any(layer.cell is not None for layer in self.layers.values())
        self.schedule = schedule(self.layers, self.links)
        self.params = {}
        self.constants = {}
        self._init_params(np.random.default_rng(seed))
        self._plan = Plan(self)

    # ----------------------------------------------------------------- structure
    def node_size(self, node: str) -> int:
        """The width of a node's activations (an LSTM cell state ``h.c``: its layer's size).

        Parameters
        ----------
        node : str
            An input, a layer or an LSTM cell state (``"h.c"``).
        """
        if node in self.inputs:
            return self.inputs[node]
        return self.layers[self.cell_states.get(node, node)].size

    def _init_params(self, rng):
        check_parameter_budget(sum(self.layers[lk.dst].rows * self.node_size(lk.src) for lk in self.links)
                               + sum(layer.rows + layer.size * self.depth[name] for name, layer in self.layers.items())
                               + sum(self.node_size(node) for node in self.cell_states))
        fan_in = {name: 0 for name in self.layers}
        for link in self.links:
            if link.weight is None:
                fan_in[link.dst] += self.node_size(link.src)
        for link in self.links:
            shape = (self.layers[link.dst].rows, self.node_size(link.src))
            if link.weight is None:
                k = 1.0 / np.sqrt(fan_in[link.dst])
                w = rng.uniform(-k, k, size=shape)
            elif isinstance(link.weight, np.ndarray):
                w = link.weight
            else:
                w = float(link.weight) * np.eye(shape[0])
            w = np.array(w, dtype=self.dtype)
            (self.params if link.trainable else self.constants)[link.key] = w
        for name, layer in self.layers.items():
            if layer.bias:
                self.params[f"b[{name}]"] = initial_bias(layer, self.dtype)
                if layer.cell == "gru":                                   # b_hn, inside the reset gate
                    self.params[f"b[{name}.hn]"] = np.zeros(layer.size, dtype=self.dtype)
        for name in self.nodes[len(self.inputs):]:                        # layers, then LSTM cell states
            if self.layers[self.cell_states.get(name, name)].init == "learned" and self.depth[name] > 0:
                self.params[f"init[{name}]"] = np.zeros((self.depth[name], self.node_size(name)), dtype=self.dtype)

    def weight(self, link: Link) -> np.ndarray:
        """The current weight matrix of ``link``, one of ``links`` (a parameter or a constant), live.

        Parameters
        ----------
        link : Link
        """
        return self.params[link.key] if link.key in self.params else self.constants[link.key]

    @property
    def n_in(self) -> int:
        """Width of the input ``"x"``, n_in (0 if the network has none)."""
        return self.inputs.get("x", 0)

    @property
    def n_out(self) -> int:
        """Size of the output layer, n_out."""
        return self.layers[self.output].size

    def get_config(self) -> dict:
        """The structure (inputs, layers, links, output, dtype, seed), JSON-friendly, for ``save``."""
        return {
            "inputs": dict(self.inputs),
            "layers": {name: layer.get_config() for name, layer in self.layers.items()},
            "links": [link.get_config() for link in self.links],
            "output": self.output,
            "dtype": np.dtype(self.dtype).name,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> Network:
        """A new Network (fresh weights: ``load`` copies the saved ones in).

        Parameters
        ----------
        config : dict
            As ``get_config`` returns it.
        """
        config = dict(config)
        layers = {name: Layer(**spec) for name, spec in config.pop("layers").items()}
        links = [Link(**spec) for spec in config.pop("links")]
        return cls(config.pop("inputs"), layers, links, config.pop("output"),
                   dtype=np.dtype(config.pop("dtype")), seed=config.pop("seed", None))

    def __repr__(self):
        links = ", ".join(link.key[2:-1] for link in self.links)
        return f"Network(layers={list(self.layers)}, links=[{links}], output={self.output!r})"

    # ------------------------------------------------------------------- forward
    def forward(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None, state: dict | None = None,
                steps: int | None = None, **inputs) -> tuple[np.ndarray, ForwardCache]:
        """Run the column over whole sequences.

        Parameters
        ----------
        x : (N, T, n_in) array, the input ``"x"`` (``None`` if the network has none).
        lengths : (N,) ints, valid steps of each sequence (padding at the end), or None.
        state : dict node -> (N, D, size) initial history, oldest first (e.g. the
            ``cache.state`` of an earlier pass, to continue the sequences).
        steps : T, for a network that reads no input (a generator that only feeds back its own outputs); N
            then comes from ``state``, else ``lengths``, else 1. With inputs, None or their T.
        **inputs : further external inputs by name, each (N, T, width).

        Returns
        -------
        y : numpy.ndarray
            (N, T, n_out), zero at padded steps.
        cache : ForwardCache
            For ``backward``; ``cache.state`` the final history of every delayed node.
        """
        seqs = self._gather_inputs(x, inputs)
        N, T = self._batch_shape(seqs, lengths, state, steps)
        lengths = check_lengths(lengths, N, T)
        state = self._check_state(state, N)
        kernels = self._kernels()
        with fast.threads_for(kernels, self._plan, N):
            return self._forward(kernels, seqs, N, T, lengths, state)

    def _batch_shape(self, seqs, lengths, state, steps):
        """(N, T) of a pass: from the input sequences, or for a network without inputs from
        ``steps`` and the batch of ``state`` or ``lengths`` (else 1)."""
        if steps is not None:
            if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
                raise TypeError(f"steps must be an integer (the number of steps T), got {steps!r}")
            if steps < 1:
                raise ValueError(f"steps must be at least 1 (the number of steps T), got {steps}")
        if seqs:
            N, T = next(iter(seqs.values())).shape[:2]
            if steps is not None and steps != T:
                raise ValueError(f"steps={steps} contradicts the inputs' T={T}")
            return N, T
        if steps is None:
            raise ValueError("this network reads no input: pass steps=T, the number of steps to run")
        if lengths is not None:
            return int(np.size(lengths)), int(steps)
        if isinstance(state, dict):                  # (a malformed state is named by _check_state)
            for value in state.values():
                if np.ndim(value) == 3:
                    return int(np.shape(value)[0]), int(steps)
        return 1, int(steps)

    def _forward(self, kernels, seqs, N, T, lengths, state):
        valid = _valid_mask(lengths, T)                                   # (T, N, 1), None: no padding
        buffers = PassBuffers(self._plan, N, T, self.dtype)
        # The weights of this pass, copied into one array (backward uses these, not params);
        # the biases, a GRU h's b_hn among them as "h.hn".
        biases = [*self._plan.bias_at, *(f"{name}.hn" for name in self._plan.hn_at)]
        weights = buffers.set_weights({link.key: self.weight(link) for link in self.links},
                                      {name: self.params[f"b[{name}]"] for name in biases},
                                      {name: self.params[f"init[{name}]"] for name in self._plan.init_at})
        A = {name: buffers.a(name) for name in self.nodes}                           # (D + T, N, size)
        Z = {name: buffers.z(name) for name in self.layers}                           # (T, N, H)
        for name, seq in seqs.items():
            A[name][self.depth[name]:] = np.swapaxes(seq, 0, 1)           # (T, N, width)
            if valid is not None:
                A[name][self.depth[name]:][~valid[..., 0]] = 0.0          # padded steps read 0
        for name, history in state.items():
            A[name][:self.depth[name]] = history                          # (D, N, size)
        how, whole = self._how(kernels, buffers, weights, state)
        if whole is not None:                    # the whole pass in one compiled call
            y = program.run_forward(kernels, whole, buffers)
            if valid is not None:                # zero at padded steps
                y[~np.swapaxes(valid[..., 0], 0, 1)] = 0.0
        else:
            if how is reference:
                reference.forward(self, A, Z, weights, T, frozenset(state))
            else:
                fast.forward(self, kernels, buffers, A, Z, weights, frozenset(state))
            out = A[self.output][self.depth[self.output]:]                # (T, N, n_out)
            y = np.swapaxes(out if valid is None else np.where(valid, out, 0.0), 0, 1).copy()   # (N, T, n_out)
        cache = ForwardCache(A=A, Z=Z, weights=weights, lengths=lengths, given=frozenset(state), buffers=buffers)
        buffers.keep_views(A, Z, weights)
        cache.state = self._final_state(A, lengths, whole=valid is None)
        return y, cache

    def _how(self, kernels, buffers, weights, given, backward=None):
        """How this pass runs: ``(reference, None)``, ``(fast, None)`` (step by step) or
        ``(program, p)`` with the compiled program ``p`` of the whole pass; ``backward``:
        ``(input_grads, fused, preset)`` of a backward pass."""
        if kernels is None:
            return reference, None
        if backward is None:
            whole = program.forward_for(self, buffers, weights, given)
        else:
            whole = program.backward_for(self, buffers, weights, given, *backward)
        return (fast, None) if whole is None else (program, whole)

    def predict(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None, state: dict | None = None,
                return_state: bool = False, **inputs) -> np.ndarray | tuple[np.ndarray, dict]:
        """Outputs (N, T, n_out) of ``forward`` alone; with ``return_state`` also the final state.

        Parameters
        ----------
        x, lengths, state, return_state, **inputs
            As ``forward`` takes them (NaN or inf at a valid step: ValueError); ``return_state``: the pair
            ``(y, cache.state)``.
        """
        check_finite_inputs(lengths, self.dtype, x=x, **inputs)
        y, cache = self.forward(x, lengths=lengths, state=state, **inputs)
        return (y, cache.state) if return_state else y

    def _final_state(self, A, lengths, whole=False):
        """The last D values of every delayed node at each sequence's last valid step, (N, D, size);
        ``whole``: every sequence runs all T steps."""
        state = {}
        N = len(lengths)
        T = A[self.output].shape[0] - self.depth[self.output]
        for name, D in self.depth.items():
            if D == 0:
                continue
            if whole:                                                     # every sequence ends at T
                state[name] = np.swapaxes(A[name][T: T + D], 0, 1).copy()
                continue
            rows = lengths[:, None] + np.arange(D)[None, :]               # (N, D) in buffer rows
            state[name] = A[name][rows, np.arange(N)[:, None]].copy()    # (N, D, size)
        return state

    # ------------------------------------------------------------------ backward
    def backward(self, dy: np.ndarray, cache: ForwardCache) -> tuple[dict, np.ndarray | None]:
        """BPTT: ``(grads, dx)``. Pure: the same arguments give the same answer.

        Parameters
        ----------
        dy : numpy.ndarray
            (N, T, n_out) dDIV/dy, as a divergence gives it.
        cache : ForwardCache
            What ``forward`` returned with the outputs.

        Returns
        -------
        grads : dict of str to numpy.ndarray
            Exactly the keys of ``params``.
        dx : numpy.ndarray or None
            (N, T, n_in) dDIV/dx (None without ``"x"``, or if ``cache.input_grads`` is False).
        """
        grads, dinputs, _ = self.backward_full(dy, cache)
        return grads, dinputs.get("x")

    def backward_full(self, dy: np.ndarray, cache: ForwardCache, *,
                      dstate: dict | None = None) -> tuple[dict, dict, dict]:
        """BPTT with every gradient.

        Parameters
        ----------
        dy : numpy.ndarray
            (N, T, n_out) dDIV/dy; a ``divergences.LogitGradient`` whose ``activation`` is
            the output layer's is taken through its exact ``dz`` (fused cross-entropy).
        cache : ForwardCache
            What ``forward`` returned with the outputs.
        dstate : dict, optional
            node -> (N, D, size) dDIV/d``cache.state`` (when the final state feeds
            something else, e.g. a decoder).

        Returns
        -------
        grads, dinputs, dstate_in : dict
            The keys of ``params``; input name -> (N, T, width); node -> (N, D, size) for
            every history given as ``state``.
        """
        kernels = self._kernels()
        with fast.threads_for(kernels, self._plan, cache.N):
            return self._backward_full(kernels, dy, cache, dstate)

    def _backward_full(self, kernels, dy, cache, dstate):
        N, T = cache.N, cache.T
        valid = _valid_mask(cache.lengths, T)                             # (T, N, 1), None: no padding
        is_fused = (getattr(dy, "activation", None) == self.layers[self.output].activation
                    and getattr(dy, "dz", None) is not None and self.layers[self.output].cell is None)
        g = self._check_dy(dy.dz if is_fused else dy, N, T, "dy.dz" if is_fused else "dy")   # (N, T, n_out)
        if valid is not None:                                             # nothing flows back from a padded step
            g = np.where(np.swapaxes(valid, 0, 1), g, 0.0)
        dstate = self._check_dstate(dstate, cache)
        buffers = cache.buffers
        if buffers is None or not buffers.holds(cache.A, cache.Z, cache.weights):   # a cache built by hand
            buffers = PassBuffers(self._plan, N, T, self.dtype)
            for name in self.nodes:
                buffers.a(name)[...] = cache.A[name]
            for name in self.layers:
                buffers.z(name)[...] = cache.Z[name]
            buffers.set_weights(cache.weights)       # (the biases only the forward loops read)
        how, whole = self._how(kernels, buffers, cache.weights, cache.given,
                               backward=(cache.input_grads, is_fused, frozenset(dstate)))
        if whole is not None:
            return program.run_backward(self, kernels, whole, cache, buffers, g, dstate)
        g = np.swapaxes(g, 0, 1)                                          # (T, N, n_out)
        dy_tm, fused = (None, np.ascontiguousarray(g)) if is_fused else (g, None)
        if how is reference:
            return reference.backward(self, cache, dy_tm, fused, dstate)
        return fast.backward(self, kernels, cache, buffers, dy_tm, fused, dstate)

    def _check_dstate(self, dstate, cache):
        """``dstate`` (node -> (N, D, size), dDIV/d``cache.state``) checked, as arrays of the dtype."""
        shapes = {name: value.shape for name, value in cache.state.items()}
        return _check_histories(dstate, "dstate", shapes, self.dtype, "which has no final state")

    # ------------------------------------------------------------------ backends
    @property
    def backend(self) -> str | None:
        """``"fast"`` (compiled time loops) or ``"numpy"`` (the reference loops); settable.

        ``None`` (the default) follows :func:`set_default_backend`: ``"fast"`` when numba is installed (and
        NumPy's BLAS found), else ``"numpy"``. Both compute the same column; they differ by the rounding of a
        sum's order (and float32 ``tanh``, to a few ulp; a gated layer's float32 sigmoid, to 2e-7).
        """
        return self._backend

    def _kernels(self):
        """The compiled kernels a pass runs with, None for the NumPy reference."""
        return kernels_for(self._backend)

    @backend.setter
    def backend(self, name: str | None) -> None:
        self._backend = None if name is None else check_backend(name)

    # --------------------------------------------------------------- validation
    def _gather_inputs(self, x, inputs):
        given = dict(inputs)
        if x is not None:
            given["x"] = x
        unknown = set(given) - set(self.inputs)
        if unknown:
            raise ValueError(f"unknown input(s) {sorted(unknown)}: this network reads {list(self.inputs)}")
        missing = set(self.inputs) - set(given)
        if missing:
            name = sorted(missing)[0]
            raise ValueError(f"this network reads the input {name!r}: pass {name}= an array of shape "
                             f"(N, T, {self.inputs[name]})")
        seqs, shape = {}, None
        for name in self.inputs:
            arr = as_float_array(given[name], self.dtype, name)
            if arr.ndim != 3 or arr.shape[2] != self.inputs[name]:
                raise ValueError(f"expected {name} of shape (N, T, {self.inputs[name]}), got {arr.shape}")
            if arr.shape[1] == 0:
                raise ValueError(f"{name} has no time steps (T = 0)")
            if shape is not None and arr.shape[:2] != shape:
                raise ValueError(f"all inputs must share (N, T): {name} has {arr.shape[:2]}, expected {shape}")
            shape = arr.shape[:2]
            seqs[name] = arr
        return seqs

    def _check_state(self, state, N):
        """``state`` (node -> (N, D, size)) checked, as (D, N, size) arrays of the dtype."""
        shapes = {name: (N, D, self.node_size(name)) for name, D in self.depth.items() if D}
        checked = _check_histories(state, "state", shapes, self.dtype, "which no link reads with a delay")
        return {name: np.swapaxes(arr, 0, 1) for name, arr in checked.items()}   # (D, N, size)

    def _check_dy(self, dy, N, T, name="dy"):
        arr = as_float_array(dy, self.dtype, name)
        shape = (N, T, self.n_out)
        if arr.shape != shape:
            raise ValueError(f"expected {name} of shape {shape} like the outputs, got {arr.shape}")
        return arr


def initial_bias(layer, dtype):
    """A layer's bias before training: zero, but for an LSTM's forget-gate block, 1 (the
    gate open, so that c(t-1) is kept at first: Gers, Schmidhuber and Cummins, 2000)."""
    b = np.zeros(layer.rows, dtype=dtype)
    if layer.cell == "lstm":
        b[layer.size: 2 * layer.size] = 1.0
    return b


def _check_histories(values, what, shapes, dtype, unknown):
    """``values`` (None, or a dict node -> array of the shape ``shapes`` gives it) as arrays
    of ``dtype``; TypeError / ValueError naming ``what`` and the node otherwise."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise TypeError(f"{what} must be a dict node -> (N, D, size) array, got {type(values).__name__}")
    checked = {}
    for name, value in values.items():
        if name not in shapes:
            raise ValueError(f"{what} names {name!r}, {unknown}; expected some of {sorted(shapes)}")
        arr = checked[name] = as_float_array(value, dtype, f"{what}[{name!r}]")
        if arr.shape != shapes[name]:
            raise ValueError(f"expected {what}[{name!r}] of shape {shapes[name]} (N, D, size), got {arr.shape}")
    return checked


def _valid_mask(lengths, T):
    """(T, N, 1) bool, True at the valid steps of each sequence; None when nothing is padded."""
    if len(lengths) == 0 or (lengths.size < 64 and min(lengths.tolist()) == T) or lengths.min() == T:
        return None
    return (np.arange(T)[:, None] < lengths[None, :])[..., None]
