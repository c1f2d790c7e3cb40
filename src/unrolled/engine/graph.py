"""The column's structure: layers, links, and the order a pass runs them in.

A network is a set of named **layers** and **links**. At every step t = 0 ... T-1, for every
layer in an order that respects the delay-0 links::

    z_dst(t) = sum over links (src -> dst @ d) of  W_link a_src(t - d)  +  b_dst
    a_dst(t) = f_dst(z_dst(t))

**Schedule.** The graph of layers is cut into strongly connected components and run in
topological order (``schedule``). A component without a cycle is computed for all steps
at once; a cyclic one (a recurrence) runs a time loop. Delay-0 links must form no cycle.

**The gradient graph.** BPTT runs the same kind of schedule over the links that pass
gradients (not ``gradient="blocked"``) into nodes that need one (``gradient_graph``): a
recurrence whose loop runs through a blocked link (an Elman context, a Jordan memory) is
no cycle there, so its BPTT needs no time loop at all.
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass

import numpy as np

from .. import activations
from . import cells

__all__ = ["Layer", "Link", "schedule", "gradient_graph", "history_depths", "check_inputs_spec",
           "check_layers_spec", "check_links"]

_INIT_KINDS = ("learned", "zeros")
_GRADIENTS = ("full", "blocked")


@dataclass(frozen=True)
class Layer:
    """A layer of ``size`` units: ``a = activation(z)``, ``z`` summing its incoming links.

    ``init`` is where its history before t = 0 comes from when no ``state`` is given:
    ``"learned"`` (a parameter ``init[name]``, one vector per delay slot, shared by the
    batch; the lecture's h(-1)) or ``"zeros"``. It matters only for layers that some link
    reads with a delay.

    ``cell``: ``None`` (a plain layer, ``a = activation(z)``), ``"lstm"`` or ``"gru"``: a
    gated layer (``engine.cells``, the equations of PyTorch's ``nn.LSTM`` / ``nn.GRU``),
    whose links in carry ``(k * size, src)`` weights (k = 4, 3), whose bias is k * size
    long, and whose activation must stay ``"tanh"`` (the cell's own). An LSTM layer
    ``h`` carries its cell state as the node ``h.c`` (``init[h.c]``, ``state["h.c"]``); its
    bias starts at zero but for the forget gate's block, 1, so that c(t-1) is kept at first.
    Both backends run gated layers (``engine.cells``, ``kernels.compiled``). A gated layer
    carries its own previous state inside the cell, beside its links: an LSTM's c(t-1), a
    GRU's z * h(t-1). ``Link(..., gradient="blocked")`` into a gated layer stops the gradient
    through that link's product only; those carries keep theirs.

    Parameters
    ----------
    size : int
        The number of units (>= 1).
    activation : str
        ``"tanh"``, ``"sigmoid"``, ``"relu"``, ``"identity"`` or ``"softmax"``.
    bias : bool
        Whether the layer has a bias ``b[name]``.
    init : {"learned", "zeros"}
        Where its history before t = 0 comes from.
    cell : {None, "lstm", "gru"}
        A plain or a gated layer.
    """

    size: int
    activation: str = "tanh"
    bias: bool = True
    init: str = "learned"
    cell: str = None

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, numbers.Integral) or self.size < 1:
            raise ValueError(f"Layer size must be a positive integer, got {self.size!r}")
        activations.get(self.activation)
        if self.init not in _INIT_KINDS:
            raise ValueError(f"Layer init must be one of {_INIT_KINDS}, got {self.init!r}")
        if self.cell is not None:
            if self.cell not in cells.CELLS:
                raise ValueError(f"Layer cell must be None (plain) or one of {cells.CELLS}, got {self.cell!r}")
            if self.activation != "tanh":
                raise ValueError(f"a {self.cell} layer has its own activations (sigmoid gates, tanh): "
                                 f"leave activation='tanh', got {self.activation!r}")

    @property
    def rows(self) -> int:
        """The rows of the weight of a link into this layer: its size, times k for a gated layer."""
        return cells.gates(self.cell) * self.size

    def get_config(self) -> dict:
        """The layer's fields, JSON-friendly: ``Layer(**config)`` builds it again.

        Returns
        -------
        dict
        """
        config = {"size": int(self.size), "activation": self.activation, "bias": bool(self.bias), "init": self.init}
        if self.cell is not None:            # (a plain layer's config reads as it always did)
            config["cell"] = self.cell
        return config


@dataclass(frozen=True, eq=False)
class Link:
    """A link ``src -> dst`` reading ``src`` as it was ``delay`` steps ago.

    ``weight``: ``None`` (a learned full matrix, randomly initialised), a scalar ``s``
    (the matrix ``s * I``; src and dst must have the same size) or an array of shape
    ``(dst size, src size)``. With ``trainable=False`` the weight is a constant and not
    among the parameters (an Elman context's copy ``I``, a Jordan memory's ``decay * I``).
    ``gradient="blocked"`` lets no gradient cross the link: its source is treated as a
    constant input, as in the lecture's "simple" (Elman, Jordan) networks. Into a gated layer
    it blocks the product only, not the cell's own carry of its state (see :class:`Layer`).

    Parameters
    ----------
    src : str
        A layer or an external input (``"x"``, ``"teacher"``, ...).
    dst : str
        A layer.
    delay : int
        Steps back the source is read (>= 0); delay-0 links must form no cycle.
    weight : None, float or numpy.ndarray
        Learned (None), ``s * I`` (a scalar) or a fixed matrix (dst size, src size).
    trainable : bool
        Whether the weight is a parameter (``W[src->dst@d]``) or a constant.
    gradient : {"full", "blocked"}
        Whether gradients cross the link.
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

    def get_config(self) -> dict:
        """The link's fields, JSON-friendly: ``Link(**config)`` builds it again.

        Returns
        -------
        dict
        """
        w = self.weight
        if isinstance(w, np.ndarray):
            w = w.copy()
        elif w is not None:
            w = float(w)
        return {"src": self.src, "dst": self.dst, "delay": int(self.delay), "weight": w,
                "trainable": bool(self.trainable), "gradient": self.gradient}


def check_inputs_spec(inputs):
    if not isinstance(inputs, dict):
        raise TypeError(f"inputs must be a dict name -> width, got {type(inputs).__name__}")
    for name, width in inputs.items():
        if name in ("lengths", "state", "steps"):
            raise ValueError(f"an input cannot be named {name!r}: forward takes {name}= for itself")
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1:
            raise ValueError(f"input {name!r} must have a positive integer width, got {width!r}")
    return {name: int(w) for name, w in inputs.items()}


def check_layers_spec(layers, inputs):
    if not isinstance(layers, dict) or not layers:
        raise TypeError("layers must be a non-empty dict name -> Layer")
    for name, layer in layers.items():
        if not isinstance(layer, Layer):
            raise TypeError(f"layer {name!r} must be a Layer, got {type(layer).__name__}")
        if name in inputs:
            raise ValueError(f"{name!r} is both an input and a layer")
    return dict(layers)



def check_links(links, layers, inputs):
    """``links`` as a list, each a ``Link`` between known nodes, given once, whose weight fits
    (``(dst size, src size)``, or a scalar ``s * I`` between layers of one size)."""
    sizes = {**inputs, **{name: layer.size for name, layer in layers.items()}}
    rows = {name: layer.rows for name, layer in layers.items()}
    links, seen = list(links), set()
    for link in links:
        if not isinstance(link, Link):
            raise TypeError(f"links must be Link objects, got {type(link).__name__}")
        if link.src not in layers and link.src not in inputs:
            raise ValueError(
                f"link {link.key}: unknown source {link.src!r}; "
                f"expected a layer {list(layers)} or an input {list(inputs)}")
        if link.dst not in layers:
            raise ValueError(f"link {link.key}: unknown destination layer {link.dst!r}; "
                             f"expected one of {list(layers)}")
        if link.key in seen:
            raise ValueError(f"link {link.key} is given twice")
        seen.add(link.key)
        shape = (rows[link.dst], sizes[link.src])
        if isinstance(link.weight, np.ndarray):
            if link.weight.shape != shape:
                raise ValueError(f"link {link.key}: weight must have shape {shape}, got {link.weight.shape}")
        elif link.weight is not None:
            if not isinstance(link.weight, numbers.Real):
                raise TypeError(f"link {link.key}: weight must be None, a number or an array, "
                                f"got {type(link.weight).__name__}")
            if layers[link.dst].cell is not None:
                raise ValueError(f"link {link.key}: a scalar weight (s*I) cannot feed the {layers[link.dst].cell} "
                                 f"layer {link.dst!r}, whose links carry ({shape[0]}, {shape[1]}) weights")
            if shape[0] != shape[1]:
                raise ValueError(f"link {link.key}: a scalar weight means s*I and needs equal sizes, "
                                 f"got src {shape[1]} and dst {shape[0]}")
    for name, layer in layers.items():
        if layer.cell is None:
            continue
        if f"W[{name}->{name}@1]" not in seen:
            raise ValueError(f"the {layer.cell} layer {name!r} needs its own recurrence "
                             f"Link({name!r}, {name!r}, delay=1) (PyTorch's W_hh)")
        node = cells.cell_node(name)
        if layer.cell == "lstm" and (node in layers or node in inputs):
            raise ValueError(f"{node!r} names the cell state of the lstm layer {name!r}: "
                             "no layer or input may be called so")
    return links


def history_depths(inputs, layers, links):
    """node -> D, the largest delay any link reads it with (0: never read from the past);
    an LSTM layer's cell state ``h.c`` is a node of depth 1 (the cell reads c(t-1))."""
    depth = {name: 0 for name in list(inputs) + list(layers)}
    for link in links:
        depth[link.src] = max(depth[link.src], link.delay)
    for name, layer in layers.items():
        if layer.cell == "lstm":
            depth[cells.cell_node(name)] = 1
    return depth


def gradient_graph(net, given, input_grads=True):
    """``(need_a, need_z, schedule)`` of BPTT through ``net`` when the histories of ``given``
    came from the caller (and the inputs' gradients are wanted, with ``input_grads``).

    need_a[node]: dDIV/da(node) is wanted (an input's gradient is returned; a layer's feeds
    its learned or given history, or its dz). need_z[layer]: dDIV/dz is wanted (the layer
    has a bias or a trainable link in, or a link in passes gradient to a node that needs
    it). ``schedule`` is the ``schedule`` of the *gradient graph*: the full-gradient links
    into nodes that need it, so no gradient is computed that nothing reads.
    """
    need_a = {name: bool(input_grads) for name in net.inputs}
    need_z = {}
    for name, layer in net.layers.items():
        need_a[name] = (layer.init == "learned" and net.depth[name] > 0) or name in given
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
    return need_a, need_z, schedule(net.layers, links)


def schedule(layers, links):
    """Strongly connected components of the layer graph, in topological order.

    Returns a list of ``(component, cyclic)``; each component's layers are ordered
    by its delay-0 links. A gated layer is always cyclic: its cell reads its own past. Raises ValueError naming a cycle of delay-0 links.
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
    for name in names:            # a gated layer reads its own past (c(t-1); z h(t-1)) without a link
        if layers[name].cell is not None and name not in edges[name]:
            edges[name].append(name)
    cycle = _find_cycle(names, zero)
    if cycle:
        raise ValueError("delay-0 links form a cycle: " + " -> ".join(cycle)
                         + "; every loop needs a link with delay >= 1")

    comps = _strong_components(names, edges)
    comp_of = {v: c for c, comp in enumerate(comps) for v in comp}

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



def _strong_components(names, edges):
    """The strongly connected components of the graph ``edges`` (Tarjan's algorithm,
    iterative), each a list of names, in the order Tarjan finds them."""
    comps = []
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
                    comp.append(v)
                    if v == node:
                        break
                comps.append(comp)
    return comps


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

