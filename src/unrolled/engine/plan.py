"""How a pass lays out its buffers: flat arrays, offsets, and the pool they come from.

Every node's activations of one pass live in one flat array, every layer's
pre-activations in another, the pass's weights in a third; the per-node arrays the
engine works with (``cache.A``, ``cache.Z``, ``cache.weights``) are views into them. So
the compiled loops (``kernels.compiled``) can read any component of any network through a
few integer offsets, and the arrays can be recycled whole (``BufferPool``).

``Plan`` is what a network's structure fixes (offsets, the tables of its recurrences, the
gradient graph), worked out once; ``PassBuffers`` is one pass's arrays.
"""

from __future__ import annotations

import numbers
import sys
import threading

import numpy as np

from .cells import cell_node, z_width
from .graph import gradient_graph
from .kernels.opcodes import ACT, CELL, DENSE, GRU_RECURRENT, SCALED_IDENTITY

__all__ = ["Plan", "PassBuffers", "BufferPool", "POOL", "aligned_empty", "aligned", "transposed_copy"]

_ALIGN = 16   # elements: every buffer in a block starts on a 64-byte boundary (float32; 128 float64)


def aligned(off):
    """``off`` rounded up to the next buffer start (64 bytes of float32)."""
    return -(-off // _ALIGN) * _ALIGN


class Plan:
    """The structure forward and backward read at every call, worked out once.

    Buffer layout: every node's activations (with their history) lie in one flat block,
    ``(D + T, N, size)`` after another, inputs then layers; the layers' pre-activations
    ``(T, N, H)`` in another; a pass's weights in a third: every link's ``(H_dst, H_src)``
    in link order, then the transposes of the links inside recurrences, then the biases
    the compiled loops add. Every buffer starts on a cache line (``_ALIGN``). The compiled
    loops read a component from these blocks through small integer tables (``kernels.compiled``).
    """

    def __init__(self, net):
        self.net = net
        self.size = {name: net.node_size(name) for name in net.nodes}
        self.incoming = {name: [link for link in net.links if link.dst == name] for name in net.layers}
        self.outside = {}                             # layer -> its links from outside its component
        for component, _ in net.schedule:
            for name in component:
                self.outside[name] = [lk for lk in self.incoming[name] if lk.src not in component]
        self.weight_at, off = {}, 0                        # link key -> (offset, shape) in the weight block
        for link in net.links:
            shape = (net.layers[link.dst].rows, self.size[link.src])
            self.weight_at[link.key] = (off, shape)
            off = aligned(off + shape[0] * shape[1])
        self.transpose_at = {}                               # then W^T (src, dst) of the links inside a recurrence
        for component, cyclic in net.schedule:
            for link in net.links:
                if cyclic and link.dst in component and link.src in component:
                    self.transpose_at[link.key] = off
                    off = aligned(off + self.weight_at[link.key][1][0] * self.weight_at[link.key][1][1])
        self.bias_at = {}                                # then the biases (the compiled code adds them)
        for name, layer in net.layers.items():
            if layer.bias:
                self.bias_at[name] = off
                off = aligned(off + layer.rows)
        self.hn_at = {}                                  # then a GRU's b_hn (H), its n_h block's bias
        for name, layer in net.layers.items():
            if layer.bias and layer.cell == "gru":
                self.hn_at[name] = off
                off = aligned(off + layer.size)
        self.init_at = {}                                # then the learned initial states (D, H)
        for name in net.nodes:
            if f"init[{name}]" in net.params:
                self.init_at[name] = off
                off = aligned(off + net.depth[name] * self.size[name])
        self.weights_size = off
        self.programs = {}                            # (N, T, ...) -> program.Program
        self._tables = {}
        self._gradient_graphs = {}                    # (given, input_grads) -> graph.gradient_graph's answer

    def gradient_graph(self, given, input_grads=True):
        """``graph.gradient_graph`` of the network (worked out once for each ``given`` set)."""
        key = (frozenset(given), bool(input_grads))
        found = self._gradient_graphs.get(key)
        if found is None:
            found = self._gradient_graphs[key] = gradient_graph(self.net, key[0], key[1])
        return found

    def layout(self, N, T):
        """``(A, Z, size of A, size of Z)``: node -> (offset, shape) of its view in the A block,
        layer -> in the Z block, for N sequences of T steps."""
        key = ("layout", N, T)
        found = self._tables.get(key)
        if found is None:
            net = self.net
            A, off = {}, 0
            for name in net.nodes:
                A[name] = (off, (net.depth[name] + T, N, self.size[name]))
                off = aligned(off + (net.depth[name] + T) * N * self.size[name])
            Z, zoff = {}, 0
            for name, layer in net.layers.items():
                Z[name] = (zoff, (T, N, z_width(layer)))
                zoff = aligned(zoff + T * N * z_width(layer))
            if len(self._tables) > 256:                               # many sizes seen: start afresh
                self._tables.clear()
            found = self._tables[key] = (A, Z, off, zoff)
        return found

    def members(self, component):
        """(M, 7) int64 rows ``D, H, code, fresh, bias offset, z width, b_hn offset``
        (``PassBuffers.members`` puts the offsets of the pass's buffers before them, and the
        cell state's after). ``code``: the activation's ``ACT``, or a gated layer's ``CELL``.
        ``fresh``: nothing reaches the layer from outside its component, so the compiled loop
        starts its z from the bias itself; else it adds the bias to what was hoisted (offset
        -1: no bias). ``z width``: H, or 4H for a gated layer; ``b_hn``: a GRU's, -1 none."""
        key = ("members", tuple(component))
        found = self._tables.get(key)
        if found is None:
            net = self.net
            rows = []
            for n in component:
                layer = net.layers[n]
                code = ACT[layer.activation] if layer.cell is None else CELL[layer.cell]
                rows.append([net.depth[n], layer.size, code, int(not self.outside[n]), self.bias_at.get(n, -1),
                             z_width(layer), self.hn_at.get(n, -1)])
            found = self._tables[key] = np.array(rows, dtype=np.int64).reshape(-1, 7)
        return found

    def loop_stats(self, component):
        """``(weights, widest, mixes)`` of a cyclic component: the entries of the dense weight
        matrices inside it (what a step of its loop multiplies by), its largest layer, and
        whether a layer's activation mixes its units (softmax): what decides whether its loop
        is split over threads (``kernels.threads.run_loop``; one that mixes is never split by
        units). A gated layer's rows count k times (k gates): what a step multiplies by."""
        key = ("stats", tuple(component))
        found = self._tables.get(key)
        if found is None:
            net, members = self.net, set(component)
            weights = sum(net.layers[lk.dst].rows * self.size[lk.src] for lk in net.links
                          if lk.dst in members and lk.src in members
                          and (lk.trainable or not isinstance(lk.weight, numbers.Real)))
            found = self._tables[key] = (weights, max(net.layers[n].size for n in component),
                                         any(net.layers[n].activation == "softmax" for n in component))
        return found

    def loops(self):
        """``loop_stats`` of every cyclic component of the forward schedule."""
        found = self._tables.get("loops")
        if found is None:
            found = self._tables["loops"] = [self.loop_stats(c) for c, cyclic in self.net.schedule if cyclic]
        return found

    def inside(self, component, backward):
        """(L, 5) int64 rows ``src member, dst member, delay, weight offset, kind`` of the links
        inside ``component`` (backward: only those that pass gradients), and the rows whose
        fixed scalar weight makes them ``s * I`` (kind ``SCALED_IDENTITY``, else ``DENSE``, or
        ``GRU_RECURRENT`` for a GRU's own ``h -> h @1``), to be checked against the weights."""
        key = ("inside", tuple(component), backward)
        found = self._tables.get(key)
        if found is None:
            index = {name: i for i, name in enumerate(component)}
            rows, scaled = [], []
            for link in self.net.links:
                if link.dst not in index or link.src not in index:
                    continue
                if backward and link.gradient != "full":
                    continue
                identity = not link.trainable and isinstance(link.weight, numbers.Real)
                if identity:
                    scaled.append((len(rows), link.key))
                off = self.weight_at[link.key][0] if backward else self.transpose_at[link.key]
                gru_own = self.net.layers[link.dst].cell == "gru" and link.src == link.dst and link.delay == 1
                kind = SCALED_IDENTITY if identity else GRU_RECURRENT if gru_own else DENSE
                rows.append([index[link.src], index[link.dst], link.delay, off, kind])
            found = self._tables[key] = (np.array(rows, dtype=np.int64).reshape(-1, 5), scaled)
        return found


class BufferPool:
    """Flat buffers handed out again once nothing references them any more.

    A pass writes some N*T*H numbers of fresh memory, and the first touch of every fresh
    page costs a page fault (~2.4 us a 4 KiB page in a VM: as much as the arithmetic of
    a small recurrence). So the big blocks of a pass come from here: the pool keeps a
    reference to each block it gave out and gives it out again (same size and dtype) only
    when its reference count shows that the pool's is the last one: the cache that used
    it, and every view of it a caller kept, are gone. Results never depend on it.
    Buffers larger than ``max_bytes`` are not kept, nor more than ``max_free`` bytes of
    unused ones; nor those under ``min_bytes``, which malloc recycles without a fault.
    """

    def __init__(self, min_bytes=128 << 10, max_bytes=64 << 20, max_free=256 << 20, max_entries=64):
        self.min_bytes, self.max_bytes, self.max_free, self.max_entries = min_bytes, max_bytes, max_free, max_entries
        self._arrays = []
        self._lock = threading.Lock()

    def _free(self, i):
        """Whether the pool holds the only references to its i-th buffer (base and aligned view)."""
        base, view = self._arrays[i]
        # base: the pool's pair, the view's .base, the local name and getrefcount's argument
        # (every view a caller derived refers to the base); view: the pair, local, argument
        return sys.getrefcount(base) <= 4 and sys.getrefcount(view) <= 3

    def empty(self, size, dtype):
        """A 1-D array of ``size`` elements of ``dtype``, 64-byte aligned, contents undefined."""
        dtype = np.dtype(dtype)
        nbytes = size * dtype.itemsize
        if nbytes < self.min_bytes:
            return np.empty(size, dtype)          # small: malloc's own alignment, no page faults
        if nbytes > self.max_bytes:
            return aligned_empty(size, dtype)[1]
        with self._lock:
            arrays = self._arrays
            for i in range(len(arrays)):                      # (no local name for an entry here:
                if arrays[i][1].size == size and arrays[i][1].dtype == dtype and self._free(i):
                    arrays.append(arrays.pop(i))                  # it would count as a reference)
                    return arrays[-1][1]
            free = [i for i in range(len(arrays)) if self._free(i)]
            spare = sum(arrays[i][0].nbytes for i in free)
            while free and (spare > self.max_free or len(arrays) >= self.max_entries):
                spare -= arrays[free[0]][0].nbytes
                del arrays[free.pop(0)]
                free = [i - 1 for i in free]
            if len(arrays) >= self.max_entries:
                del arrays[0]                                     # forgotten, not freed: still in use
            arrays.append(aligned_empty(size, dtype))
            return arrays[-1][1]


def aligned_empty(size, dtype, align=64):
    """``(base, view)``: a 1-D ``view`` of ``size`` elements starting on an ``align``-byte
    boundary (whole cache lines: the products' vector loads never straddle two)."""
    dtype = np.dtype(dtype)
    base = np.empty(size + align // dtype.itemsize, dtype=dtype)
    start = (-base.ctypes.data % align) // dtype.itemsize
    return base, base[start: start + size]


POOL = BufferPool()


def transposed_copy(a):
    """(T, N, S) -> a new (N, T, S) C-contiguous array (from the pool: no page faults)."""
    if a.nbytes < POOL.min_bytes:
        return np.ascontiguousarray(np.swapaxes(a, 0, 1))
    out = POOL.empty(a.size, a.dtype).reshape(a.shape[1], a.shape[0], a.shape[2])
    np.copyto(out, np.swapaxes(a, 0, 1))
    return out


class PassBuffers:
    """The flat arrays of one pass (see ``Plan``): ``acts`` (every node's (D + T, N, size)
    activations, history first), ``preacts`` (every layer's (T, N, H) z) and ``weights``
    (set by ``set_weights``); the per-node arrays of a pass are views into them."""

    def __init__(self, plan, N, T, dtype):
        self.plan, self.N, self.T = plan, N, T
        self.layout = plan.layout(N, T)
        self.acts = POOL.empty(self.layout[2], dtype)                        # every (D + T, N, size)
        self.preacts = POOL.empty(self.layout[3], dtype)                        # every layer's (T, N, H)
        self.weights = None                                                      # every (H_dst, H_src)
        self.views = None                  # (A, Z, W) dicts of the views a forward pass made

    def a(self, name, block=None):
        """Node ``name``'s (D + T, N, size) view of ``block`` (A or one laid out like it)."""
        off, shape = self.layout[0][name]
        return (self.acts if block is None else block)[off: off + shape[0] * shape[1] * shape[2]].reshape(shape)

    def z(self, name, block=None):
        """Layer ``name``'s (T, N, H) view of ``block`` (Z or one laid out like it)."""
        off, shape = self.layout[1][name]
        return (self.preacts if block is None else block)[off: off + shape[0] * shape[1] * shape[2]].reshape(shape)

    def holds(self, A, Z, W):
        """Whether ``A``, ``Z`` and ``W`` (a cache's dicts) still hold this pass's views of the blocks."""
        return self.views is not None and [id(v) for d in (A, Z, W) for v in d.values()] == self.ids

    def keep_views(self, A, Z, W):
        """Remember the views a forward pass made (kept alive, so that their ids stay theirs)."""
        self.views = [v for d in (A, Z, W) for v in d.values()]
        self.ids = [id(v) for v in self.views]

    def set_weights(self, weights, biases=None, inits=None):
        """Copy ``weights`` (link key -> (dst, src)) into the weight block, with the transposes,
        the biases (layer -> (rows,), and ``"h.hn"`` -> a GRU h's b_hn (H,)) and the learned initial states (layer -> (D, H)) the
        compiled code reads; returns the views, key -> (dst, src)."""
        plan = self.plan
        W = self.weights = POOL.empty(plan.weights_size, self.acts.dtype)
        views = {}
        for key, (off, shape) in plan.weight_at.items():
            views[key] = W[off: off + shape[0] * shape[1]].reshape(shape)
            views[key][...] = weights[key]
        for key, off in plan.transpose_at.items():
            shape = plan.weight_at[key][1]
            W[off: off + shape[0] * shape[1]].reshape(shape[1], shape[0])[...] = views[key].T
        for name, off in plan.bias_at.items():
            W[off: off + plan.net.layers[name].rows] = 0.0 if biases is None else biases[name]
        for name, off in plan.hn_at.items():                   # (keyed "h.hn" among the biases)
            W[off: off + plan.net.layers[name].size] = 0.0 if biases is None else biases[f"{name}.hn"]
        for name, off in plan.init_at.items():
            if inits is not None:
                W[off: off + inits[name].size] = inits[name].reshape(-1)
        return views

    def members(self, component):
        """The compiled loops' member table of ``component`` for this pass's N and T."""
        key = ("mem", tuple(component), self.N, self.T)
        mem = self.plan._tables.get(key)
        if mem is None:
            static = self.plan.members(component)
            mem = np.empty((len(static), 10), dtype=np.int64)   # offA, offZ, D, H, code, fresh, bias_at, ZW, hn_at, offC
            mem[:, 0] = [self.layout[0][name][0] for name in component]
            mem[:, 1] = [self.layout[1][name][0] for name in component]
            mem[:, 2:9] = static
            mem[:, 9] = [self.layout[0][cell_node(name)][0] if cell_node(name) in self.layout[0] else -1
                         for name in component]                  # an LSTM's cell state h.c (depth 1)
            if len(self.plan._tables) > 256:                          # many sizes seen: start afresh
                self.plan._tables.clear()
            self.plan._tables[key] = mem
        return mem

    def inside(self, component, weights, backward=False):
        """The compiled loops' link table of ``component``; a fixed ``s * I`` link is done as a
        scaled add, unless its matrix was changed (then as the product it is)."""
        static, scaled = self.plan.inside(component, backward)
        table = static
        for row, key in scaled:
            w = weights[key]
            s = w[0, 0]
            if np.count_nonzero(w) != (len(w) if s != 0 else 0) or np.any(np.diagonal(w) != s):
                if table is static:
                    table = static.copy()
                table[row, 4] = DENSE
        return table
