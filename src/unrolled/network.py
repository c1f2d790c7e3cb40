"""The column: named layers joined by links that may reach back in time, unrolled.

A network is a set of **layers** and **links**. At every step t = 0 ... T-1, for every
layer in an order that respects the delay-0 links::

    z_dst(t) = sum over links (src -> dst @ d) of  W_link a_src(t - d)  +  b_dst
    a_dst(t) = f_dst(z_dst(t))

``src`` is a layer or an external input sequence (``"x"``, or e.g. ``"teacher"``). For
t - d < 0 a node reads its **initial history**: zeros, a learned parameter
(``init[layer]``, the lecture's h(-1)), or values the caller passes as ``state``.

**Schedule.** The graph of layers is cut into strongly connected components and run in
topological order. A component without a cycle is computed for all steps at once (one
matrix product over T*N rows). A cyclic component (a recurrence) runs a time loop, but
what it receives from outside the component is hoisted out of the loop into one matrix
product, so the loop does only the recurrent products and activations.

**BPTT** runs the schedule of the *gradient graph* backwards (the lecture's ``RNN_bptt``):
the links that pass gradients (not ``gradient="blocked"``) into nodes that need one (an
input, a layer with parameters, or one that passes gradient on). dDIV/da(t) of a layer
gathers what its outgoing links send back (delay-0 links from the same step, delay-d links
from step t+d), times the activation's Jacobian, giving dDIV/dz(t). A recurrence whose loop
runs through a blocked link (an Elman context, a Jordan memory) is no cycle there, so its
BPTT needs no time loop at all. A link's weight gradient, sum_t dz_dst(t)^T a_src(t-d), is
one matrix product over all steps. Gradients that reach t < 0 are the gradients of the
initial histories.

**Backends.** The time loops of the cyclic components run either step by step in NumPy
(``_forward_loop``, ``_backward_loop``: the readable reference, ``backend="numpy"``) or as one
compiled function each (``_kernels.forward_loop``, ``_kernels.backward_loop``, Numba, the
default ``backend="fast"`` when numba is installed). Everything else (the hoisted products,
the pooled weight gradients) is the same code for both. With the compiled loops, a network
with a wide recurrence splits its loops and its large products over threads of its own
(``_kernels.run_loop``, ``_product``); the others run as NumPy does, on BLAS's threads, and
a pass of theirs runs whole as one compiled program: the same steps, listed once for the
structure and the pass's N and T (``_program``, ``Network._program``).

Internal layout is time major, ``(D + T, N, size)`` per node, where the first ``D`` rows hold
the initial history (``D`` = the largest delay any link reads the node with): then a(t - d)
for all t is the contiguous slice ``[D - d : D - d + T]``. All nodes' buffers are views into
one flat block (and all pre-activations into another), which the compiled loops read
through small tables of offsets (see ``_layout``). Public arrays are batch first.

Shapes: N batch, T time, n_in inputs, H a layer's size, n_out outputs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import numbers
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _program, activations
from ._layout import POOL, Blocks, Plan

__all__ = ["Layer", "Link", "Network", "ForwardCache", "set_default_backend"]

_INIT_KINDS = ("learned", "zeros")
_GRADIENTS = ("full", "blocked")
_BACKENDS = ("fast", "numpy")


# ---------------------------------------------------------------------- backends
@functools.lru_cache(maxsize=None)
def _numba_installed():
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):      # e.g. sys.modules["numba"] = None: import blocked
        return False


_KERNELS = []   # the imported ``_kernels`` module, once a fast pass asked for it


def _kernel_module():
    if not _KERNELS:
        try:
            from . import _kernels
        except Exception as exc:  # numba installed but unusable (e.g. built for another NumPy)
            warnings.warn(f"numba failed to import ({exc}); unrolled runs its NumPy loops "
                          f"(backend='numpy')", RuntimeWarning, stacklevel=3)
            _DEFAULT_BACKEND[0] = "numpy"
            return None
        _KERNELS.append(_kernels)
    return _KERNELS[0]


def _check_backend(name, auto=False):
    if name not in _BACKENDS + (("auto",) if auto else ()):
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    if name == "fast" and not _numba_installed():
        raise ValueError("backend 'fast' compiles the time loops with numba, which is not installed"
                         "\n- help: pip install numba, or use backend='numpy' (the same results, slower)")
    return name


# "auto": "fast" when numba is installed and NumPy's BLAS was found (the compiled loops'
# own products, without it, are slower than NumPy's for all but small nets), else "numpy".
_DEFAULT_BACKEND = [_check_backend(os.environ.get("UNROLLED_BACKEND") or "auto", auto=True)]


def set_default_backend(name):
    """Set how networks without their own ``backend`` run their time loops; returns the old one.

    ``"fast"``: each recurrence's time loop (forward and BPTT) is one compiled function
    (numba; compiled once and cached on disk). ``"numpy"``: the readable step-by-step
    NumPy loops, the reference the fast one is tested against. ``"auto"`` (the default):
    ``"fast"`` when numba is installed and NumPy's OpenBLAS could be bound (see
    ``unrolled._kernels``), else ``"numpy"``. The environment variable ``UNROLLED_BACKEND``
    sets it at import.
    """
    old = _DEFAULT_BACKEND[0]
    _DEFAULT_BACKEND[0] = _check_backend(name, auto=True)
    return old


@dataclass(frozen=True)
class Layer:
    """A layer of ``size`` units: ``a = activation(z)``, ``z`` summing its incoming links.

    ``init`` is where its history before t = 0 comes from when no ``state`` is given:
    ``"learned"`` (a parameter ``init[name]``, one vector per delay slot, shared by the
    batch; the lecture's h(-1)) or ``"zeros"``. It matters only for layers that some link
    reads with a delay.
    """

    size: int
    activation: str = "tanh"
    bias: bool = True
    init: str = "learned"

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, numbers.Integral) or self.size < 1:
            raise ValueError(f"Layer size must be a positive integer, got {self.size!r}")
        activations.get(self.activation)
        if self.init not in _INIT_KINDS:
            raise ValueError(f"Layer init must be one of {_INIT_KINDS}, got {self.init!r}")

    def get_config(self):
        return {"size": int(self.size), "activation": self.activation, "bias": bool(self.bias), "init": self.init}


@dataclass(frozen=True, eq=False)
class Link:
    """A link ``src -> dst`` reading ``src`` as it was ``delay`` steps ago.

    ``weight``: ``None`` (a learned full matrix, randomly initialised), a scalar ``s``
    (the matrix ``s * I``; src and dst must have the same size) or an array of shape
    ``(dst size, src size)``. With ``trainable=False`` the weight is a constant and not
    among the parameters (an Elman context's copy ``I``, a Jordan memory's ``decay * I``).
    ``gradient="blocked"`` lets no gradient cross the link: its source is treated as a
    constant input, as in the lecture's "simple" (Elman, Jordan) networks.
    """

    src: str
    dst: str
    delay: int = 0
    weight: object = None
    trainable: bool = True
    gradient: str = "full"

    def __post_init__(self):
        for end in ("src", "dst"):
            if not isinstance(getattr(self, end), str):
                raise TypeError(f"Link {end} must be a layer or input name (str), got {getattr(self, end)!r}")
        if isinstance(self.delay, bool) or not isinstance(self.delay, numbers.Integral):
            raise TypeError(f"Link delay must be an integer, got {self.delay!r}")
        if self.delay < 0:
            raise ValueError(f"Link {self.src}->{self.dst}: delay must be >= 0, got {self.delay}")
        if self.gradient not in _GRADIENTS:
            raise ValueError(f"Link gradient must be one of {_GRADIENTS}, got {self.gradient!r}")
        if self.weight is None and not self.trainable:
            raise ValueError(f"Link {self.key}: a fixed (trainable=False) link needs a weight")

    @functools.cached_property
    def key(self):
        """The parameter name of this link's weight, e.g. ``W[h->h@1]``."""
        return f"W[{self.src}->{self.dst}@{self.delay}]"

    def get_config(self):
        w = self.weight
        if isinstance(w, np.ndarray):
            w = w.copy()
        elif w is not None:
            w = float(w)
        return {"src": self.src, "dst": self.dst, "delay": int(self.delay), "weight": w,
                "trainable": bool(self.trainable), "gradient": self.gradient}


@dataclass
class ForwardCache:
    """What a forward pass keeps for BPTT, and the final history for continuation.

    ``state``: dict node -> (N, D, size), the last D values of every node read with a
    delay, at each sequence's own last valid step, oldest first. Pass it as ``state=`` to
    continue the sequences where they stopped.
    """

    A: dict            # node -> (D + T, N, size) activations, history first
    Z: dict            # layer -> (T, N, H) pre-activations
    weights: dict      # link key -> (dst, src) weight used in this pass
    lengths: np.ndarray  # (N,)
    given: frozenset   # nodes whose initial history came from the caller
    state: dict = field(default_factory=dict)
    blocks: object = field(default=None, repr=False)   # the flat buffers behind A and Z (internal)
    # False: backward skips the gradients of the inputs (dx None, dinputs empty): ``fit``
    # sets it, since it reads only the parameters' gradients.
    input_grads: bool = True

    @property
    def N(self):
        return len(self.lengths)

    @property
    def T(self):
        return next(iter(self.Z.values())).shape[0]


class Network:
    """One column of layers and delayed links, unrolled over time.

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

    ``params`` maps ``W[src->dst@d]``, ``b[layer]`` and ``init[layer]`` (shape
    ``(D, size)``, oldest slot first) to the live arrays: changing one in place changes
    the network.
    """

    def __init__(self, inputs, layers, links, output, *, dtype=np.float32, seed=None, backend=None):
        self.backend = backend
        self.dtype = _check_dtype(dtype)
        self.inputs = _check_inputs_spec(inputs)
        self.layers = _check_layers_spec(layers, self.inputs)
        self.links = list(links)
        self.output = output
        self.seed = seed if not isinstance(seed, np.random.Generator) else None
        if output not in self.layers:
            raise ValueError(f"output must be one of the layers {list(self.layers)}, got {output!r}")
        self._check_links()
        self.depth = self._history_depths()
        self.schedule = _schedule(self.layers, self.links)
        self.params = {}
        self.constants = {}
        self._init_params(np.random.default_rng(seed))
        self._plan = Plan(self)

    # ----------------------------------------------------------------- structure
    def _size(self, node):
        return self.inputs[node] if node in self.inputs else self.layers[node].size

    def _check_links(self):
        seen = set()
        for link in self.links:
            if not isinstance(link, Link):
                raise TypeError(f"links must be Link objects, got {type(link).__name__}")
            if link.src not in self.layers and link.src not in self.inputs:
                raise ValueError(
                    f"link {link.key}: unknown source {link.src!r}; "
                    f"expected a layer {list(self.layers)} or an input {list(self.inputs)}")
            if link.dst not in self.layers:
                raise ValueError(f"link {link.key}: unknown destination layer {link.dst!r}; "
                                 f"expected one of {list(self.layers)}")
            if link.key in seen:
                raise ValueError(f"link {link.key} is given twice")
            seen.add(link.key)
            shape = (self._size(link.dst), self._size(link.src))
            if isinstance(link.weight, np.ndarray):
                if link.weight.shape != shape:
                    raise ValueError(f"link {link.key}: weight must have shape {shape}, got {link.weight.shape}")
            elif link.weight is not None:
                if not isinstance(link.weight, numbers.Real):
                    raise TypeError(f"link {link.key}: weight must be None, a number or an array, "
                                    f"got {type(link.weight).__name__}")
                if shape[0] != shape[1]:
                    raise ValueError(f"link {link.key}: a scalar weight means s*I and needs equal sizes, "
                                     f"got src {shape[1]} and dst {shape[0]}")

    def _history_depths(self):
        depth = {name: 0 for name in list(self.inputs) + list(self.layers)}
        for link in self.links:
            depth[link.src] = max(depth[link.src], link.delay)
        return depth

    def _incoming(self, layer):
        plan = getattr(self, "_plan", None)
        if plan is not None:
            return plan.incoming[layer]
        return [link for link in self.links if link.dst == layer]

    def _init_params(self, rng):
        fan_in = {name: 0 for name in self.layers}
        for link in self.links:
            if link.weight is None:
                fan_in[link.dst] += self._size(link.src)
        for link in self.links:
            shape = (self._size(link.dst), self._size(link.src))
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
                self.params[f"b[{name}]"] = np.zeros(layer.size, dtype=self.dtype)
        for name, layer in self.layers.items():
            if layer.init == "learned" and self.depth[name] > 0:
                self.params[f"init[{name}]"] = np.zeros((self.depth[name], layer.size), dtype=self.dtype)

    def weight(self, link):
        """The current weight matrix of ``link`` (a parameter or a constant)."""
        return self.params[link.key] if link.key in self.params else self.constants[link.key]

    @property
    def n_in(self):
        return self.inputs.get("x", 0)

    @property
    def n_out(self):
        return self.layers[self.output].size

    def get_config(self):
        return {
            "inputs": dict(self.inputs),
            "layers": {name: layer.get_config() for name, layer in self.layers.items()},
            "links": [link.get_config() for link in self.links],
            "output": self.output,
            "dtype": np.dtype(self.dtype).name,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layers = {name: Layer(**spec) for name, spec in config.pop("layers").items()}
        links = [Link(**spec) for spec in config.pop("links")]
        return cls(config.pop("inputs"), layers, links, config.pop("output"),
                   dtype=np.dtype(config.pop("dtype")), seed=config.pop("seed", None))

    def __repr__(self):
        links = ", ".join(link.key[2:-1] for link in self.links)
        return f"Network(layers={list(self.layers)}, links=[{links}], output={self.output!r})"

    # ------------------------------------------------------------------- forward
    def forward(self, x, *, lengths=None, state=None, steps=None, **inputs):
        """Run the column over whole sequences.

        Parameters
        ----------
        x : (N, T, n_in) array, the input ``"x"`` (``None`` if the network has none).
        lengths : (N,) ints, valid steps of each sequence (padding at the end), or None.
        state : dict node -> (N, D, size) initial history, oldest first (e.g. the
            ``cache.state`` of an earlier pass, to continue the sequences).
        steps : T, for a network that reads no input (a generator that only feeds back
            its own outputs); N then comes from ``state``, else ``lengths``, else 1. With
            inputs, None or their T.
        **inputs : further external inputs by name, each (N, T, width).

        Returns ``(y, cache)``: y (N, T, n_out), zero at padded steps; ``cache`` for
        ``backward``, with ``cache.state`` the final history of every delayed node.
        """
        seqs = self._gather_inputs(x, inputs)
        N, T = self._batch_shape(seqs, lengths, state, steps)
        with _threads(self._fast(), self._plan, N):
            return self._forward(seqs, N, T, lengths, state)

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

    def _forward(self, seqs, N, T, lengths, state):
        lengths = check_lengths(lengths, N, T)
        state = self._check_state(state, N)
        valid = _valid_mask(lengths, T)                                   # (T, N, 1), None: no padding

        A, Z = {}, {}
        blocks = Blocks(self._plan, N, T, self.dtype)
        # The weights of this pass, copied into one block (backward uses these, not params).
        weights = blocks.set_weights({link.key: self.weight(link) for link in self.links},
                                     {name: self.params[f"b[{name}]"] for name in self._plan.boff},
                                     {name: self.params[f"init[{name}]"] for name in self._plan.ioff})
        fast = self._fast()
        program = self._program(fast, blocks, weights, given=frozenset(state))
        for name in self.inputs:
            D = self.depth[name]
            buf = A[name] = blocks.a(name)                                # (D + T, N, width)
            if D and (program is None or name in state):                  # (else the program fills it)
                buf[:D] = state[name] if name in state else 0.0
            buf[D:] = np.swapaxes(seqs[name], 0, 1)                       # (T, N, width)
            if valid is not None:
                buf[D:][~valid[..., 0]] = 0.0                             # padded steps read 0
        for name, layer in self.layers.items():
            D = self.depth[name]
            buf = A[name] = blocks.a(name)                                # (D + T, N, H)
            if not D:
                continue
            if name in state:
                buf[:D] = state[name]
            elif program is not None:
                continue
            elif f"init[{name}]" in self.params:
                buf[:D] = self.params[f"init[{name}]"][:, None, :]
            else:
                buf[:D] = 0.0
        if program is not None:                  # the whole pass in one compiled call
            y = np.empty((N, T, self.n_out), self.dtype)
            none = blocks.W[:0]
            fast.run_program(program.ops, program.mem_table, program.lnk_table,
                             (blocks.A, blocks.Z, blocks.W, none, none, none, y.reshape(-1), none), N, T, fast._NO_SYNC)
            if valid is not None:                # zero at padded steps, as below
                y[~np.swapaxes(valid[..., 0], 0, 1)] = 0.0
            Z = {name: blocks.z(name) for name in self.layers}
            return y, self._cache(blocks, A, Z, weights, lengths, state, valid)
        for component, cyclic in self.schedule:
            # Everything from outside the component, for all steps at once (hoisted).
            for name in component:
                z = Z[name] = blocks.z(name)                              # (T, N, H)
                outside = self._plan.outside[name]
                b = self.params.get(f"b[{name}]")
                if cyclic and fast and not outside:
                    continue                      # the compiled loop starts z from the bias
                if outside:
                    first = outside[0]
                    _product(_flat(z), _flat(_shifted(A, self.depth, first.src, first.delay, T)),
                             weights[first.key].T, fast)
                    if b is not None and not fast:
                        z += b                    # (the compiled code adds it as it reads z)
                    for link in outside[1:]:
                        _add_product(_flat(z), _flat(_shifted(A, self.depth, link.src, link.delay, T)),
                                     weights[link.key], fast, trans_b=True)
                else:
                    z[...] = 0.0 if b is None else b
            if not cyclic:
                (name,) = component
                D = self.depth[name]
                if fast:
                    b = self.params.get(f"b[{name}]") if self._plan.outside[name] else None
                    fast.activate(fast.ACT[self.layers[name].activation], _flat(Z[name]), _flat(A[name][D:]),
                                  _NO_BIAS[self.dtype] if b is None else np.asarray(b, self.dtype))
                else:
                    activations.get(self.layers[name].activation).forward(Z[name], out=A[name][D:])
            elif fast:
                fast.run_loop(fast.forward_loop, (blocks.A, blocks.Z, blocks.W, blocks.members(component),
                                                  blocks.inside(component, weights), N, T, fast.USE_BLAS),
                              self._plan.loop_stats(component), N)
            else:
                self._forward_loop(component, A, Z, weights, T)

        out = A[self.output][self.depth[self.output]:]                    # (T, N, n_out)
        y = out if valid is None else np.where(valid, out, 0.0)
        y = np.swapaxes(y, 0, 1).copy()                                   # (N, T, n_out), a copy
        return y, self._cache(blocks, A, Z, weights, lengths, state, valid)

    def _cache(self, blocks, A, Z, weights, lengths, state, valid):
        cache = ForwardCache(A=A, Z=Z, weights=weights, lengths=lengths, given=frozenset(state))
        cache.blocks = blocks
        blocks.keep_views(A, Z, weights)
        cache.state = self._final_state(A, lengths, whole=valid is None)
        return cache

    def _program(self, fast, blocks, weights, given=frozenset(), backward=False, input_grads=True, fused=False,
                 preset=frozenset()):
        """The pass as one compiled program (``_program``), or None where it runs step by
        step: the NumPy backend, no BLAS, a loop split over threads (inside ``own_threads``),
        or a fixed ``s * I`` link whose matrix was changed. (Padding is the caller's: it
        masks the inputs, outputs and dy around the program, which computes every step.)"""
        if fast is None or not _WHOLE_PASS or not fast.USE_BLAS or getattr(fast._mode, "taken", None):
            return None
        for component, cyclic in self.schedule if not backward else ():
            if cyclic and blocks.inside(component, weights) is not self._plan.inside(component, False)[0]:
                return None
        given = frozenset(given)
        key = (backward, blocks.N, blocks.T, given, bool(input_grads), fused, preset, self.output)
        programs = self._plan.programs
        program = programs.get(key, False)
        if program is False:
            program = (_program.backward_program(self, blocks, given, input_grads, fused, preset) if backward
                       else _program.forward_program(self, blocks, given))
            if len(programs) > 64:                                    # many sizes seen: start afresh
                programs.clear()
            programs[key] = program
        if program is not None and backward:
            for component, cyclic in self._backward_plan(given, input_grads)[2]:
                if cyclic and blocks.inside(component, weights, backward=True) is not \
                        self._plan.inside(component, True)[0]:
                    return None
        return program

    def _forward_loop(self, component, A, Z, weights, T):
        """The recurrence of a cyclic component, step by step: the NumPy reference.

        On entry ``Z[name]`` holds what comes from outside the component (hoisted); the
        loop adds the links inside it, one step at a time, and applies the activations.
        ``_kernels.forward_loop`` is this loop compiled (``backend="fast"``).
        """
        members = set(component)
        inside = {name: [lk for lk in self._incoming(name) if lk.src in members] for name in component}
        for t in range(T):
            for name in component:
                zt = Z[name][t]                                           # (N, H)
                for link in inside[name]:
                    src_t = A[link.src][self.depth[link.src] + t - link.delay]   # (N, S)
                    zt += src_t @ weights[link.key].T
                act = activations.get(self.layers[name].activation)
                act.forward(zt, out=A[name][self.depth[name] + t])

    def predict(self, x, *, lengths=None, state=None, return_state=False, **inputs):
        """Outputs (N, T, n_out) of ``forward`` alone; with ``return_state`` also the final state."""
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
    def backward(self, dy, cache):
        """BPTT: ``(grads, dx)`` from ``dy`` = dDIV/dy (N, T, n_out).

        ``grads`` has exactly the keys of ``params``; ``dx`` (N, T, n_in) is dDIV/dx
        (``None`` if the network has no input ``"x"``, or if ``cache.input_grads`` was set
        False to skip it). Pure: the same arguments give the same answer.
        """
        grads, dinputs, _ = self.backward_full(dy, cache)
        return grads, dinputs.get("x")

    def backward_full(self, dy, cache, *, dstate=None):
        """BPTT with every gradient: ``(grads, dinputs, dstate_in)``.

        dy : (N, T, n_out) gradient of the divergence w.r.t. the outputs; a
            ``divergences.LogitGradient`` whose ``activation`` is the output layer's is
            taken through its exact ``dz`` (fused softmax / sigmoid cross-entropy).
        dstate : optional dict node -> (N, D, size), gradient w.r.t. ``cache.state``
            (when the final state feeds something else, e.g. a decoder).

        Returns ``grads`` (keys of ``params``), ``dinputs`` (input name -> (N, T, width))
        and ``dstate_in`` (node -> (N, D, size)) for every history given as ``state``.
        """
        with _threads(self._fast(), self._plan, cache.N):
            return self._backward_full(dy, cache, dstate)

    def _backward_full(self, dy, cache, dstate):
        A, Z, W, lengths = cache.A, cache.Z, cache.weights, cache.lengths
        N, T = cache.N, cache.T
        valid = _valid_mask(lengths, T)                                   # (T, N, 1), None: no padding
        out = self.output
        dy_arr = self._check_dy(dy, N, T)
        blocks = cache.blocks
        if blocks is None or not blocks.holds(A, Z, W):                   # a cache built by hand
            blocks = Blocks(self._plan, N, T, self.dtype)
            for name in list(self.inputs) + list(self.layers):
                blocks.a(name)[...] = A[name]
            for name in self.layers:
                blocks.z(name)[...] = Z[name]
            blocks.set_weights(W)                    # (the biases only the forward loops read)
        is_fused = getattr(dy, "activation", None) == self.layers[out].activation and getattr(dy, "dz", None) is not None
        fast = self._fast()
        program = self._program(fast, blocks, W, cache.given, True, cache.input_grads, is_fused,
                                frozenset(dstate or ()))
        if program is not None:
            return self._run_backward(fast, program, dy.dz if is_fused else dy_arr, cache, blocks, valid, dstate)
        dA = _GradBlock(blocks, list(self.inputs) + list(self.layers), self.depth)   # every node's dA
        fused = None
        if is_fused:
            g = np.swapaxes(np.asarray(dy.dz, dtype=self.dtype), 0, 1)
            fused = np.ascontiguousarray(g) if valid is None else np.where(valid, g, 0.0)
        else:
            g = np.swapaxes(dy_arr, 0, 1)
            dA.first(out)[...] = g if valid is None else np.where(valid, g, 0.0)
        self._add_dstate(dstate, cache, dA.__getitem__)

        # The gradient graph: only links that pass gradients, only to nodes that need one.
        need_a, need_z, schedule = self._backward_plan(cache.given, cache.input_grads)
        fast = self._fast()
        dZblk = POOL.empty(blocks.Z.size, blocks.Z.dtype) if fast or any(c for _, c in schedule) else None
        grads = {}
        for component, cyclic in reversed(schedule):
            members = set(component)
            dZ = {}
            if not cyclic:
                (name,) = component
                if not need_z[name]:
                    continue          # nothing it holds or feeds needs a gradient
                D = self.depth[name]
                if fast:          # into the dz block: no temporaries
                    dZ[name] = blocks.z(name, dZblk)
                    fast.activate_back(fast.ACT[self.layers[name].activation], _flat(dA[name][D:]),
                                       _flat(A[name][D:]), _flat(Z[name]), _flat(dZ[name]))
                else:
                    dZ[name] = self._dz(name, dA[name][D:], A, Z[name], slice(None))
                if name == out and fused is not None:
                    dZ[name] += fused
            else:
                for name in component:
                    dZ[name] = blocks.z(name, dZblk)
                if fast:
                    has_out = out in members and fused is not None
                    for name in component:
                        dA[name]                      # (zeroed, if nothing reached it yet)
                    fast.run_loop(fast.backward_loop, (
                        blocks.A, blocks.Z, dA.block, dZblk, blocks.W, blocks.members(component),
                        blocks.inside(component, W, backward=True), fused.reshape(-1) if has_out else blocks.W[:0],
                        component.index(out) if has_out else -1, N, T, fast.USE_BLAS),
                        self._plan.loop_stats(component), N)
                else:
                    self._backward_loop(component, A, Z, dA, dZ, W, fused, T)
            # Pool over time: one product per link for the weight gradient, and the
            # gradient sent to sources outside the component.
            for name in component:
                dz = dZ[name]                                                    # (T, N, H)
                if f"b[{name}]" in self.params:
                    grads[f"b[{name}]"] = _sum_rows(_flat(dz))
                for link in self._incoming(name):
                    if link.key in self.params:
                        src = _shifted(A, self.depth, link.src, link.delay, T)     # (T, N, S)
                        grads[link.key] = _pooled_product(_flat(dz), _flat(src), fast)
                    if link.gradient == "full" and link.src not in members and need_a[link.src]:
                        first = dA.first(link.src) if link.delay == 0 else None
                        if first is not None:             # written, not added: no zeros first
                            _product(_flat(first), _flat(dz), W[link.key], fast)
                        else:
                            Ds = self.depth[link.src]
                            _add_product(_flat(dA[link.src][Ds - link.delay: Ds - link.delay + T]), _flat(dz),
                                         W[link.key], fast)

        for name, layer in self.layers.items():
            key = f"init[{name}]"
            if key in self.params:
                D = self.depth[name]
                grads[key] = (np.zeros_like(self.params[key]) if name in cache.given
                              else dA[name][:D].sum(axis=1))
        dinputs = {name: _transposed_copy(dA[name][self.depth[name]:]) for name in self.inputs if need_a[name]}
        dstate_in = {name: np.ascontiguousarray(np.swapaxes(dA[name][:self.depth[name]], 0, 1))
                     for name in cache.given}
        grads = {key: grads[key].astype(self.dtype, copy=False) for key in self.params}
        return grads, dinputs, dstate_in

    def _add_dstate(self, dstate, cache, da):
        """Add ``dstate`` (node -> (N, D, size), dDIV/d``cache.state``) into dA at each
        sequence's last D steps; ``da(name)`` gives the node's (D + T, N, size) dA, zeroed
        where nothing was added yet."""
        for name, g in (dstate or {}).items():
            if name not in cache.state:
                raise ValueError(f"dstate names {name!r}, which has no final state; "
                                 f"expected some of {sorted(cache.state)}")
            g = np.asarray(g, dtype=self.dtype)
            if g.shape != cache.state[name].shape:
                raise ValueError(f"dstate[{name!r}] must have shape {cache.state[name].shape}, got {g.shape}")
            rows = cache.lengths[:, None] + np.arange(self.depth[name])[None, :]
            np.add.at(da(name), (rows, np.arange(cache.N)[:, None]), g)

    def _run_backward(self, fast, program, dy, cache, blocks, valid, dstate):
        """BPTT as one compiled program (``_program.backward_program``): dy is dDIV/dy, or
        the output layer's fused dz, (N, T, n_out); ``valid`` as in ``_valid_mask``;
        ``dstate`` is added into dA first (the program starts from it)."""
        N, T = blocks.N, blocks.T
        E = np.asarray(dy, dtype=self.dtype)
        if E.shape != (N, T, self.n_out):
            raise ValueError(f"expected dy.dz of shape {(N, T, self.n_out)} like the outputs, got {E.shape}")
        if valid is not None:                     # nothing flows back from a padded step
            E = np.where(np.swapaxes(valid, 0, 1), E, 0.0)
        E = np.ascontiguousarray(E)
        if not E.flags.writeable:                 # (the compiled code takes writable buffers only)
            E = E.copy()
        dAblk = POOL.empty(blocks.A.size, blocks.A.dtype)

        def zeroed(name):
            view = blocks.a(name, dAblk)
            view.fill(0)
            return view
        self._add_dstate(dstate, cache, zeroed)
        dZblk = POOL.empty(blocks.Z.size, blocks.Z.dtype)
        G = POOL.empty(program.gsize, blocks.A.dtype)
        none = blocks.W[:0]
        F = POOL.empty(E.size, E.dtype) if program.fused_loop else none
        with fast.one_blas_thread() if program.one_blas_thread else contextlib.nullcontext():
            fast.run_program(program.ops, program.mem_table, program.lnk_table,
                             (blocks.A, blocks.Z, blocks.W, dAblk, dZblk, G, E.reshape(-1), F), N, T, fast._NO_SYNC)
        grads = {key: G[off: off + size].reshape(shape) for key, off, size, shape in program.gviews}
        need_a = self._backward_plan(cache.given, cache.input_grads)[0]
        dinputs = {name: _transposed_copy(blocks.a(name, dAblk)[self.depth[name]:])
                   for name in self.inputs if need_a[name]}
        dstate_in = {name: np.ascontiguousarray(np.swapaxes(blocks.a(name, dAblk)[:self.depth[name]], 0, 1))
                     for name in cache.given}
        return grads, dinputs, dstate_in

    def _backward_plan(self, given, input_grads=True):
        """``(need_a, need_z, schedule)`` of BPTT when the histories of ``given`` came from the
        caller (and the inputs' gradients are wanted, with ``input_grads``).

        need_a[node]: dDIV/da(node) is wanted (an input's gradient is returned; a layer's
        feeds its learned or given history, or its dz). need_z[layer]: dDIV/dz is wanted (the
        layer has a bias or a trainable link in, or a link in passes gradient to a node that
        needs it). Backward runs the SCCs of the *gradient graph* (full-gradient links into
        nodes that need it), so a recurrence whose loop is cut by a blocked link (an Elman
        context, a Jordan memory) is differentiated for all steps at once, like a feed-forward
        layer, and no gradient is computed that nothing reads.
        """
        key = (frozenset(given), bool(input_grads))
        found = self._plan.backward_plans.get(key)
        if found is None:
            net = self
            need_a = {name: bool(input_grads) for name in net.inputs}
            need_z = {}
            for name, layer in net.layers.items():
                need_a[name] = (layer.init == "learned" and net.depth[name] > 0) or name in key[0]
                need_z[name] = layer.bias or any(lk.trainable for lk in net.links if lk.dst == name)
            changed = True
            while changed:
                changed = False
                for link in net.links:
                    if link.gradient == "full" and need_a[link.src] and not need_z[link.dst]:
                        need_z[link.dst] = changed = True
                for name in net.layers:
                    if need_z[name] and not need_a[name]:
                        need_a[name] = changed = True
            links = [lk for lk in net.links if lk.gradient == "full" and lk.src in net.layers and need_a[lk.src]]
            found = self._plan.backward_plans[key] = (need_a, need_z, _schedule(net.layers, links))
        return found

    def _backward_loop(self, component, A, Z, dA, dZ, W, fused, T):
        """BPTT through a cyclic component of the gradient graph, step by step (NumPy reference).

        On entry ``dA`` holds what reached the members from outside the component; going
        back in time, each member's dDIV/da(t) gathers what the links inside send back
        (delay-0 links from the same step, delay-d links from step t+d), times the
        activation's Jacobian. Writes ``dZ[name][t]``. ``_kernels.backward_loop`` is this
        loop compiled (``backend="fast"``).
        """
        members = set(component)
        inside = {name: [lk for lk in self._incoming(name) if lk.src in members and lk.gradient == "full"]
                  for name in component}
        for t in range(T - 1, -1, -1):
            for name in reversed(component):
                D = self.depth[name]
                dz = self._dz(name, dA[name][D + t], A, Z[name][t], D + t)       # (N, H)
                if name == self.output and fused is not None:
                    dz += fused[t]
                dZ[name][t] = dz
                for link in inside[name]:
                    dA[link.src][self.depth[link.src] + t - link.delay] += dz @ W[link.key]

    def _dz(self, name, da, A, z, rows):
        """dDIV/dz of layer ``name`` from dDIV/da, at the buffer rows ``rows``."""
        act = activations.get(self.layers[name].activation)
        D = self.depth[name]
        a = A[name][D:] if isinstance(rows, slice) else A[name][rows]
        return act.backward(da, a, z)

    # ------------------------------------------------------------------ backends
    @property
    def backend(self):
        """``"fast"`` (compiled time loops) or ``"numpy"`` (the reference loops); settable.

        ``None`` (the default) follows :func:`set_default_backend`: ``"fast"`` when numba
        is installed (and NumPy's BLAS found), else ``"numpy"``. Both compute the same
        column; they differ by the rounding of a sum's order (and float32 ``tanh``, to a
        few ulp).
        """
        return self._backend

    @backend.setter
    def backend(self, name):
        self._backend = None if name is None else _check_backend(name)

    def _fast(self):
        """The compiled kernels (module ``_kernels``) if this network runs fast, else None."""
        name = self._backend or _DEFAULT_BACKEND[0]
        if name == "numpy" or (name == "auto" and not _numba_installed()):
            return None
        kernels = _kernel_module()
        if name == "auto" and kernels is not None and not kernels.BLAS:
            return None
        return kernels

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
        if state is None:
            return {}
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict node -> (N, D, size) array, got {type(state).__name__}")
        checked = {}
        for name, value in state.items():
            if name not in self.depth or self.depth[name] == 0:
                raise ValueError(f"state names {name!r}, which no link reads with a delay; "
                                 f"expected some of {sorted(n for n, d in self.depth.items() if d)}")
            shape = (N, self.depth[name], self._size(name))
            arr = as_float_array(value, self.dtype, f"state[{name!r}]")
            if arr.shape != shape:
                raise ValueError(f"expected state[{name!r}] of shape {shape} (N, D, size), got {arr.shape}")
            checked[name] = np.swapaxes(arr, 0, 1)   # (D, N, size)
        return checked

    def _check_dy(self, dy, N, T):
        arr = as_float_array(dy, self.dtype, "dy")
        shape = (N, T, self.n_out)
        if arr.shape != shape:
            raise ValueError(f"expected dy of shape {shape} like the outputs, got {arr.shape}")
        return arr


# ---------------------------------------------------------------------- helpers
def _flat(a):
    """(T, N, S) -> (T*N, S) without a copy when contiguous."""
    return a.reshape(-1, a.shape[-1])


_ONES = {}


def _sum_rows(a):
    """a (K, S) summed over its rows, as a product with a vector of ones (for the narrow
    arrays of a bias gradient, 3-10x faster than ``a.sum(axis=0)``)."""
    K = a.shape[0]
    ones = _ONES.get((K, a.dtype))
    if ones is None:
        if len(_ONES) > 32:
            _ONES.clear()
        ones = _ONES[(K, a.dtype)] = np.ones(K, dtype=a.dtype)
    return ones @ a


def _transposed_copy(a):
    """(T, N, S) -> a new (N, T, S) C-contiguous array (from the pool: no page faults)."""
    if a.nbytes < POOL.min_bytes:
        return np.ascontiguousarray(np.swapaxes(a, 0, 1))
    out = POOL.empty(a.size, a.dtype).reshape(a.shape[1], a.shape[0], a.shape[2])
    np.copyto(out, np.swapaxes(a, 0, 1))
    return out


_NO_BIAS = {np.float32: np.zeros(0, np.float32), np.float64: np.zeros(0, np.float64)}


class _GradBlock:
    """dDIV/da of every node of a backward pass, in one block laid out like A (``block``),
    each node's part zeroed only once something reads or adds to it: a first contribution
    that covers the node's steps whole is written instead (``first``), and only the
    history rows are zeroed (a large pass saves a write over all of it)."""

    def __init__(self, blocks, names, depth):
        self.block = POOL.empty(blocks.A.size, blocks.A.dtype)
        self.views = {name: blocks.a(name, self.block) for name in names}
        self.depth = depth
        self.ready = set()

    def __getitem__(self, name):
        """Node ``name``'s (D + T, N, size) dDIV/da (zeros where nothing was added yet)."""
        view = self.views[name]
        if name not in self.ready:
            view.fill(0)
            self.ready.add(name)
        return view

    def first(self, name):
        """Steps 0 .. T-1 of node ``name``'s dDIV/da, (T, N, size), for its first contribution
        to write whole (its history rows zeroed); None if it already holds one."""
        if name in self.ready:
            return None
        view, D = self.views[name], self.depth[name]
        view[:D].fill(0)
        self.ready.add(name)
        return view[D:]


def _threads(fast, plan, N):
    """The context a pass over N sequences runs in: where a loop of the network pays to split
    (``_kernels.loop_split``), the engine's threads splitting the work, BLAS on one thread
    (``_kernels.own_threads``); else none (products on BLAS's threads, as NumPy runs them)."""
    if fast is None or N is None or not any(len(fast.loop_split(stats, N)) > 1 for stats in plan.loops()):
        return contextlib.nullcontext()
    return fast.own_threads()


# Whether a pass that runs on one thread may run as one compiled program (``_program``);
# False: step by step, as a split pass does (the tests compare the two).
_WHOLE_PASS = True

# A product is split over threads from 2^23 multiply-adds (~160 us on one thread, against
# some 40 us to hand half to a thread), into parts of at least 16 rows (or columns) of its result.
_PRODUCT_WORK, _PRODUCT_ROWS = 1 << 23, 16


def _product(out, a, b, fast):
    """out = a @ b for 2-D arrays; with the kernels, split by rows (or, for a result of few
    rows, by columns) over threads."""
    work = a.shape[0] * a.shape[1] * b.shape[1]
    if fast is None or work < _PRODUCT_WORK:
        return np.matmul(a, b, out=out)
    if out.shape[0] >= out.shape[1]:
        fast.run_parts(lambda lo, hi: np.matmul(a[lo:hi], b, out=out[lo:hi]),
                       fast.split(out.shape[0], work, _PRODUCT_ROWS, _PRODUCT_WORK))
    else:
        fast.run_parts(lambda lo, hi: np.matmul(a, b[:, lo:hi], out=out[:, lo:hi]),
                       fast.split(out.shape[1], work, _PRODUCT_ROWS, _PRODUCT_WORK))
    return out


def pooled_on_one_thread(entries, rows):
    """Whether a pooled product of a result of ``entries`` over ``rows`` rows runs faster on one
    BLAS thread: OpenBLAS splits even a 32 x 32 result over its threads, slower than one
    ((32 x 6400) @ (6400 x 32) 337 against 179 us)."""
    return entries <= 1024 and rows >= 1024


def _pooled_product(dz, src, fast):
    """dz^T @ src, (H, S) from (K, H) and (K, S): a weight gradient pooled over K = T*N rows.
    With the kernels, split over threads: a large result by its rows (``_product``), a
    small one by blocks of the K rows, the partial sums added."""
    work = dz.shape[0] * dz.shape[1] * src.shape[1]
    if fast is None or work < _PRODUCT_WORK:
        if fast is None or not pooled_on_one_thread(dz.shape[1] * src.shape[1], dz.shape[0]):
            return dz.T @ src
        with fast.one_blas_thread():
            return dz.T @ src
    out = POOL.empty(dz.shape[1] * src.shape[1], dz.dtype).reshape(dz.shape[1], src.shape[1])
    if out.size > 1 << 16:
        return _product(out, dz.T, src, fast)
    parts = fast.split(dz.shape[0], dz.shape[0] * out.size, _PRODUCT_ROWS, _PRODUCT_WORK)
    partial = [out] + [np.empty_like(out) for _ in parts[1:]]
    fast.run_parts(lambda i, lo, hi: np.matmul(dz[lo:hi].T, src[lo:hi], out=partial[i]),
                   [(i, lo, hi) for i, (lo, hi) in enumerate(parts)])
    for p in partial[1:]:
        out += p
    return out


def _add_product(c, a, b, fast, trans_b=False):
    """c += a @ b (a @ b.T with ``trans_b``) for 2-D c; with the kernels and a large c, in place
    (a large temporary would cost its page faults; a small one less than the call), split by
    rows over threads."""
    if fast is not None and c.nbytes >= 1 << 17 and c.flags.c_contiguous and a.flags.c_contiguous \
            and b.flags.c_contiguous:
        work = a.shape[0] * a.shape[1] * c.shape[1]
        fast.run_parts(lambda lo, hi: fast.addmm(a[lo:hi], b, c[lo:hi], trans_b, fast.USE_BLAS),
                       fast.split(c.shape[0], work, _PRODUCT_ROWS, _PRODUCT_WORK))
    else:
        c += a @ (b.T if trans_b else b)


def _shifted(A, depth, node, delay, T):
    """a_node(t - delay) for t = 0 .. T-1: a (T, N, size) view of the history buffer."""
    D = depth[node]
    return A[node][D - delay: D - delay + T]


def _valid_mask(lengths, T):
    """(T, N, 1) bool, True at the valid steps of each sequence; None when nothing is padded."""
    if len(lengths) == 0 or (lengths.size < 64 and min(lengths.tolist()) == T) or lengths.min() == T:
        return None
    return (np.arange(T)[:, None] < lengths[None, :])[..., None]


def as_float_array(value, dtype, name):
    """``value`` as an array of ``dtype``; TypeError for anything not real numbers."""
    if type(value) is np.ndarray and value.dtype == dtype:
        return value
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers (float or int), got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def check_lengths(lengths, N, T):
    """``lengths`` as (N,) int64 in [0, T]; all T when None."""
    if lengths is None:
        return np.full(N, T, dtype=np.int64)
    arr = np.asarray(lengths)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"lengths must be integers, got dtype {arr.dtype}")
    if arr.shape != (N,):
        raise ValueError(f"expected lengths of shape ({N},), one per sequence, got {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > T):
        raise ValueError(f"lengths must lie in [0, T={T}], got values from {arr.min()} to {arr.max()}")
    return arr.astype(np.int64)


def _check_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt.type


def _check_inputs_spec(inputs):
    if not isinstance(inputs, dict):
        raise TypeError(f"inputs must be a dict name -> width, got {type(inputs).__name__}")
    for name, width in inputs.items():
        if name in ("lengths", "state", "steps"):
            raise ValueError(f"an input cannot be named {name!r}: forward takes {name}= for itself")
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1:
            raise ValueError(f"input {name!r} must have a positive integer width, got {width!r}")
    return {name: int(w) for name, w in inputs.items()}


def _check_layers_spec(layers, inputs):
    if not isinstance(layers, dict) or not layers:
        raise TypeError("layers must be a non-empty dict name -> Layer")
    for name, layer in layers.items():
        if not isinstance(layer, Layer):
            raise TypeError(f"layer {name!r} must be a Layer, got {type(layer).__name__}")
        if name in inputs:
            raise ValueError(f"{name!r} is both an input and a layer")
    return dict(layers)


def _schedule(layers, links):
    """Strongly connected components of the layer graph, in topological order.

    Returns a list of ``(component, cyclic)``; each component's layers are ordered
    by its delay-0 links. Raises ValueError naming a cycle of delay-0 links.
    """
    names = list(layers)
    index = {name: i for i, name in enumerate(names)}
    edges = {name: [] for name in names}     # every layer -> layer link
    zero = {name: [] for name in names}      # delay-0 layer -> layer links
    for link in links:
        if link.src in layers:
            edges[link.src].append(link.dst)
            if link.delay == 0:
                zero[link.src].append(link.dst)
    cycle = _find_cycle(names, zero)
    if cycle:
        raise ValueError("delay-0 links form a cycle: " + " -> ".join(cycle)
                         + "; every loop needs a link with delay >= 1")

    # Tarjan's algorithm (iterative), then order the components.
    comp_of, comps = {}, []
    counter, stack, on_stack, low, num = [0], [], set(), {}, {}
    for root in names:
        if root in num:
            continue
        work = [(root, iter(edges[root]))]
        num[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in num:
                    num[nxt] = low[nxt] = counter[0]; counter[0] += 1
                    stack.append(nxt); on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], num[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == num[node]:
                comp = []
                while True:
                    v = stack.pop(); on_stack.discard(v)
                    comp.append(v); comp_of[v] = len(comps)
                    if v == node:
                        break
                comps.append(comp)

    # Topological order of the condensed graph (Kahn, ties by layer order).
    n = len(comps)
    succ = [set() for _ in range(n)]
    indeg = [0] * n
    for u in names:
        for v in edges[u]:
            cu, cv = comp_of[u], comp_of[v]
            if cu != cv and cv not in succ[cu]:
                succ[cu].add(cv); indeg[cv] += 1
    ready = sorted((min(index[v] for v in comps[c]), c) for c in range(n) if indeg[c] == 0)
    order = []
    while ready:
        _, c = ready.pop(0)
        order.append(c)
        for d in succ[c]:
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append((min(index[v] for v in comps[d]), d))
                ready.sort()
    schedule = []
    for c in order:
        members = set(comps[c])
        ordered = _topo_order([v for v in names if v in members], zero)
        cyclic = len(members) > 1 or any(v in edges[v] for v in members)
        schedule.append((ordered, cyclic))
    return schedule


def _topo_order(members, zero):
    """``members`` ordered so that every delay-0 link inside them goes forward."""
    inside = set(members)
    indeg = {v: 0 for v in members}
    for u in members:
        for v in zero[u]:
            if v in inside:
                indeg[v] += 1
    ready = [v for v in members if indeg[v] == 0]
    order = []
    while ready:
        u = ready.pop(0)
        order.append(u)
        for v in zero[u]:
            if v in inside:
                indeg[v] -= 1
                if indeg[v] == 0:
                    ready.append(v)
    return order


def _find_cycle(names, succ):
    """A cycle in the graph ``succ`` as a list of names (first repeated last), or None."""
    color = {v: 0 for v in names}   # 0 new, 1 on the path, 2 done
    for root in names:
        if color[root]:
            continue
        path, work = [root], [iter(succ[root])]
        color[root] = 1
        while work:
            for nxt in work[-1]:
                if color[nxt] == 1:
                    return path[path.index(nxt):] + [nxt]
                if color[nxt] == 0:
                    color[nxt] = 1
                    path.append(nxt)
                    work.append(iter(succ[nxt]))
                    break
            else:
                color[path.pop()] = 2
                work.pop()
    return None
