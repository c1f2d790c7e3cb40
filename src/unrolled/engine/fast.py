"""The compiled path, step by step: ``engine.reference`` with its loops and products fast.

The same schedule as the reference, each step one call: the hoisted products over all
steps (BLAS; in place where the result is large), the compiled activations (the bias
added as they read z), each recurrence's time loop as one compiled call
(``kernels.compiled.forward_loop`` / ``backward_loop``), every weight gradient one pooled
product. Where a network's recurrence pays to split (``kernels.threads.loop_split``), a
pass runs on the engine's own threads (``threads_for``): the loops split by units or by
sequences, the large products by rows, BLAS on one thread meanwhile. A pass that stays on
one thread runs as one compiled program instead (``engine.program``), the same steps
without the Python between them; but for a network with a gated layer (LSTM, GRU), which
always runs here: its links' products go to the gate columns ``cells.link_columns`` names.
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import backend
from .cells import cell_node, link_columns
from .kernels import blas, threads
from .kernels.opcodes import ACT
from .plan import POOL
from .reference import add_dstate, collect_gradients, fill_histories, shifted

__all__ = ["forward", "backward", "threads_for"]

# A product is split over threads from 2^23 multiply-adds (~160 us on one thread, against
# some 40 us to hand half to a thread), into parts of at least 16 rows (or columns) of its result.
PRODUCT_WORK, PRODUCT_ROWS = 1 << 23, 16

_NO_CONTEXT = contextlib.nullcontext()
_NO_BIAS = {np.float32: np.zeros(0, np.float32), np.float64: np.zeros(0, np.float64)}
_ONES = {}


def threads_for(kernels, plan, N):
    """The context a pass over N sequences runs in, on at most ``backend.pass_threads()``
    threads: where a loop of the network pays to split (``threads.loop_split``), the engine's
    threads splitting the work, BLAS on one thread (``threads.own_threads``); a network with a
    gated layer whose every loop is too small to split, on one thread; else BLAS's threads,
    as NumPy runs them, but no more than that number (``blas.blas_threads_at_most``)."""
    count, held = backend.pass_threads()
    if kernels is not None and N is not None and count > 1 and \
            any(len(threads.loop_split(stats, N, count)) > 1 for stats in plan.loops()):
        return threads.own_threads(count)
    if kernels is not None and N is not None and count > 1 and plan.net.gated and \
            all(N * stats[0] < threads.MIN_ROW_WORK for stats in plan.loops()):
        # A gated network too small to split: its steps' products are below what OpenBLAS
        # threads, and so are its few pooled ones, which its threads slow (32 x 32 LSTM,
        # N = 32, T = 100, a machine busy with other work: 32 against 4-6.5 ms).
        return blas.one_blas_thread()
    if held is not None and count < held:
        return blas.blas_threads_at_most(count)
    return _NO_CONTEXT


def forward(net, kernels, buffers, A, Z, W, given):
    """``reference.forward``, compiled: fill ``A`` and ``Z`` of every layer."""
    plan, T, N = net._plan, buffers.T, buffers.N
    fill_histories(net, A, given)
    for component, cyclic in net.schedule:
        for name in component:            # everything from outside the component, all steps at once
            z, outside = Z[name], plan.outside[name]
            if cyclic and not outside:
                continue                  # the compiled loop starts z from the bias
            if not outside:
                b = net.params.get(f"b[{name}]")
                z[...] = 0.0 if b is None else b
                continue
            # (the bias is added where the activation reads z; a gated layer's links from
            # outside go to all of its z but a GRU's n_h block, which the loop starts)
            zx = _flat(z)[:, link_columns(net.layers[name], outside[0])]
            first = outside[0]
            _product(zx, _flat(shifted(A, net.depth, first.src, first.delay, T)), W[first.key].T, kernels)
            for link in outside[1:]:
                _add_product(zx, _flat(shifted(A, net.depth, link.src, link.delay, T)), W[link.key],
                             kernels, trans_b=True)
        if cyclic:
            threads.run_loop(kernels.forward_loop, (buffers.acts, buffers.preacts, buffers.weights,
                                                    buffers.members(component), buffers.inside(component, W),
                                                    N, T, blas.USE_BLAS), plan.loop_stats(component), N)
        else:
            (name,) = component
            b = net.params.get(f"b[{name}]") if plan.outside[name] else None
            kernels.activate(ACT[net.layers[name].activation], _flat(Z[name]), _flat(A[name][net.depth[name]:]),
                             _NO_BIAS[net.dtype] if b is None else np.asarray(b, net.dtype))


def backward(net, kernels, cache, buffers, dy, fused, dstate):
    """``reference.backward``, compiled; the same arguments but ``buffers``, the pass's."""
    A, Z, W, T, N = cache.A, cache.Z, cache.weights, cache.T, cache.N
    plan, out = net._plan, net.output
    dA = _GradBlock(buffers, net.nodes, net.depth)   # every node's dA
    if dy is not None:
        dA.first(out)[...] = dy
    add_dstate(dA, dstate, cache.lengths, net.depth)
    need_a, need_z, schedule = plan.gradient_graph(cache.given, cache.input_grads)
    dZblk = POOL.empty(buffers.preacts.size, buffers.preacts.dtype)
    grads = {}
    for component, cyclic in reversed(schedule):
        members = set(component)
        if cyclic:
            has_out = out in members and fused is not None
            for name in component:
                dA[name]                      # (zeroed, if nothing reached it yet)
                if cell_node(name) in net.cell_states:
                    dA[cell_node(name)]       # an LSTM's cell state
            threads.run_loop(kernels.backward_loop, (
                buffers.acts, buffers.preacts, dA.block, dZblk, buffers.weights, buffers.members(component),
                buffers.inside(component, W, backward=True), fused.reshape(-1) if has_out else buffers.weights[:0],
                component.index(out) if has_out else -1, N, T, blas.USE_BLAS), plan.loop_stats(component), N)
        else:
            (name,) = component
            if not need_z[name]:
                continue
            D = net.depth[name]
            kernels.activate_back(ACT[net.layers[name].activation], _flat(dA[name][D:]), _flat(A[name][D:]),
                                  _flat(Z[name]), _flat(buffers.z(name, dZblk)))
            if name == out and fused is not None:
                buffers.z(name, dZblk)[...] += fused
        for name in component:            # pooled over time: weight gradients, and what goes outside
            layer = net.layers[name]
            dz = _flat(buffers.z(name, dZblk))                                 # (T N, H), gated (T N, 4H)
            if f"b[{name}]" in net.params:
                grads[f"b[{name}]"] = _sum_rows(dz[:, :layer.rows])
            if f"b[{name}.hn]" in net.params:                                 # a GRU's b_hn: its n_h block
                grads[f"b[{name}.hn]"] = _sum_rows(dz[:, layer.rows:])
            for link in plan.incoming[name]:
                cols = link_columns(layer, link)
                if link.key in net.params:
                    src = _flat(shifted(A, net.depth, link.src, link.delay, T))     # (T N, S)
                    if isinstance(cols, slice):
                        grads[link.key] = _pooled_product(dz[:, cols], src, kernels)
                    else:                     # a GRU's own recurrence: [r, u] and n_h, (3H, H)
                        H = layer.size
                        grads[link.key] = np.concatenate([_pooled_product(dz[:, :2 * H], src, kernels),
                                                          _pooled_product(dz[:, 3 * H:], src, kernels)])
                if link.gradient == "full" and link.src not in members and need_a[link.src]:
                    first = dA.first(link.src) if link.delay == 0 else None
                    if first is not None:             # written, not added: no zeros first
                        _product(_flat(first), dz[:, cols], W[link.key], kernels)
                    else:
                        _add_product(_flat(shifted(dA, net.depth, link.src, link.delay, T)), dz[:, cols],
                                     W[link.key], kernels)
    return collect_gradients(net, cache, dA, grads, need_a)


class _GradBlock:
    """dDIV/da of every node of a backward pass, in one flat array laid out like the
    activations (``block``), each node's part zeroed only once something reads or adds to
    it: a first contribution that covers the node's steps whole is written instead
    (``first``), and only the history rows are zeroed (a large pass saves a write over all of it)."""

    def __init__(self, buffers, names, depth):
        self.block = POOL.empty(buffers.acts.size, buffers.acts.dtype)
        self.views = {name: buffers.a(name, self.block) for name in names}
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


# ---------------------------------------------------------------------- products
def _flat(a):
    """(T, N, S) -> (T*N, S) without a copy when contiguous."""
    return a.reshape(-1, a.shape[-1])


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


def _product(out, a, b, kernels):
    """out = a @ b for 2-D arrays, split by rows (or, for a result of few rows, by columns)
    over the engine's threads where that pays."""
    work = a.shape[0] * a.shape[1] * b.shape[1]
    if work < PRODUCT_WORK:
        return np.matmul(a, b, out=out)
    if out.shape[0] >= out.shape[1]:
        threads.run_parts(lambda lo, hi: np.matmul(a[lo:hi], b, out=out[lo:hi]),
                          threads.split(out.shape[0], work, PRODUCT_ROWS, PRODUCT_WORK))
    else:
        threads.run_parts(lambda lo, hi: np.matmul(a, b[:, lo:hi], out=out[:, lo:hi]),
                          threads.split(out.shape[1], work, PRODUCT_ROWS, PRODUCT_WORK))
    return out


def _pooled_product(dz, src, kernels):
    """dz^T @ src, (H, S) from (K, H) and (K, S): a weight gradient pooled over K = T*N rows,
    split over threads where that pays: a large result by its rows (``_product``), a small
    one by blocks of the K rows, the partial sums added."""
    work = dz.shape[0] * dz.shape[1] * src.shape[1]
    if work < PRODUCT_WORK:
        if not blas.pooled_on_one_thread(dz.shape[1] * src.shape[1], dz.shape[0]):
            return dz.T @ src
        with blas.one_blas_thread():
            return dz.T @ src
    out = POOL.empty(dz.shape[1] * src.shape[1], dz.dtype).reshape(dz.shape[1], src.shape[1])
    if out.size > 1 << 16:
        return _product(out, dz.T, src, kernels)
    parts = threads.split(dz.shape[0], dz.shape[0] * out.size, PRODUCT_ROWS, PRODUCT_WORK)
    partial = [out] + [np.empty_like(out) for _ in parts[1:]]
    threads.run_parts(lambda i, lo, hi: np.matmul(dz[lo:hi].T, src[lo:hi], out=partial[i]),
                      [(i, lo, hi) for i, (lo, hi) in enumerate(parts)])
    for p in partial[1:]:
        out += p
    return out


def _add_product(c, a, b, kernels, trans_b=False):
    """c += a @ b (a @ b.T with ``trans_b``) for 2-D c; for a large c in place (a large
    temporary would cost its page faults; a small one less than the call), split by rows
    over threads."""
    if c.nbytes >= 1 << 17 and c.flags.c_contiguous and a.flags.c_contiguous and b.flags.c_contiguous:
        work = a.shape[0] * a.shape[1] * c.shape[1]
        threads.run_parts(lambda lo, hi: kernels.addmm(a[lo:hi], b, c[lo:hi], trans_b, blas.USE_BLAS),
                          threads.split(c.shape[0], work, PRODUCT_ROWS, PRODUCT_WORK))
    else:
        c += a @ (b.T if trans_b else b)
