"""A whole pass as one compiled call: the steps of forward and BPTT, listed once.

``Network._forward`` and ``Network._backward_full`` walk the network's schedule in
Python: for each component a product for what comes from outside it, its activation or
its compiled time loop; then BPTT back through the components, with a product per
weight gradient. Each step is a NumPy or compiled call of a microsecond or more, which
for a small network (a 32-unit RNN over 200 steps computes for ~70 us) is most of the
pass. The steps, their shapes and offsets depend only on the network's structure and
the pass's N and T, so here they are worked out once (``forward_program``,
``backward_program``) as rows of integers, and ``_kernels.run_program`` runs them all in
one call. The rows are the same steps the fast path takes one call at a time (the same
BLAS products, activations and loops): only the Python between them is gone.

Only a pass whose loops run on one thread takes this path (``Network._program``): a
split pass is dominated by its loops, and runs as before.

An op is a row of ``_WIDTH`` int64 (see ``_kernels.run_program``); an operand is a
(buffer, offset) pair into the pass's flat blocks, buffers numbered
A, Z, W, dA, dZ, G (the parameters' gradients, one block), E (the
outputs y (N, T, n_out) in forward, dDIV/dy in BPTT) and F (the output layer's fused dz,
(T, N, n_out), when its layer is inside a recurrence).
"""

from __future__ import annotations

import numpy as np

from ._layout import _aligned

A, Z, W, DA, DZ, G, E, F = range(8)
GEMM, ACTIVATE, ACTIVATE_BACK, LOOP, LOOP_BACK, SUM_ROWS, ZERO, REPEAT, SWAP, SUM_HISTORY = range(10)
_WIDTH = 16


class Program:
    """The ops of one pass, with what the caller needs around them.

    ops (n, 16) int64; mem_table, lnk_table: the loops' tables, stacked; gviews: (key,
    offset, size, shape) of every parameter's gradient in the G block, ``gsize`` long;
    ``fused_loop``: the fused dz goes to a loop (F is needed); ``one_blas_thread``: BLAS is
    faster on one thread for this pass.
    """

    def __init__(self):
        self.rows, self.mems, self.lnks = [], [], []
        self.gviews, self.gsize, self.fused_loop, self.one_blas_thread = [], 0, False, False

    def op(self, code, *args):
        row = [code, *args]
        self.rows.append(row + [0] * (_WIDTH - len(row)))

    def gemm(self, trans_a, trans_b, add, n, m, k, a, b, c):
        """c (n, m) (+)= op(a) @ op(b); a, b, c: (buffer, offset, row stride)."""
        (ab, ao, lda), (bb, bo, ldb), (cb, co, ldc) = a, b, c
        self.op(GEMM, int(trans_a), int(trans_b), int(add), n, m, k,
                ab, ao, max(lda, 1), bb, bo, max(ldb, 1), cb, co, max(ldc, 1))   # (BLAS wants ld >= 1)

    def loop(self, code, mem, lnk, *extra):
        self.op(code, sum(len(m) for m in self.mems), len(mem), sum(len(m) for m in self.lnks), len(lnk), *extra)
        self.mems.append(mem)
        self.lnks.append(lnk)

    def finish(self):
        self.ops = np.array(self.rows, dtype=np.int64).reshape(-1, _WIDTH)
        self.mem_table = (np.concatenate(self.mems) if self.mems else np.zeros((0, 7))).astype(np.int64)
        self.lnk_table = (np.concatenate(self.lnks) if self.lnks else np.zeros((0, 5))).astype(np.int64)
        del self.rows, self.mems, self.lnks
        return self


def _offsets(net, blocks):
    """Offsets of every node's (D + T, N, size) in A and layer's (T, N, H) in Z."""
    return ({name: off for name, (off, _) in blocks.layout[0].items()},
            {name: off for name, (off, _) in blocks.layout[1].items()})


def forward_program(net, blocks, given):
    """The ops of a forward pass of ``net`` over ``blocks``' N and T, the histories of
    ``given`` filled by the caller (as are the inputs' steps). Ends with y in E."""
    from ._kernels import ACT          # (imported here: it imports numba, which the NumPy backend never needs)
    plan, N, T = net._plan, blocks.N, blocks.T
    aoff, zoff = _offsets(net, blocks)
    p = Program()
    for name in list(net.inputs) + list(net.layers):        # the histories
        D, size = net.depth[name], net._size(name)
        if not D or name in given:
            continue
        if name in plan.ioff:
            for d in range(D):
                p.op(REPEAT, plan.ioff[name] + d * size, size, A, aoff[name] + d * N * size, N)
        else:
            p.op(ZERO, A, aoff[name], D * N * size)
    for component, cyclic in net.schedule:
        for name in component:
            H, outside = net.layers[name].size, plan.outside[name]
            if cyclic and not outside:
                continue                                   # the loop starts z from the bias
            if not outside:
                p.op(ZERO, Z, zoff[name], T * N * H)
            for i, link in enumerate(outside):               # z = sum of a_src(t - d) W^T, all t
                S, Ds = net._size(link.src), net.depth[link.src]
                p.gemm(False, True, i > 0, T * N, H, S, (A, aoff[link.src] + (Ds - link.delay) * N * S, S),
                       (W, plan.woff[link.key][0], S), (Z, zoff[name], H))
        if cyclic:
            p.loop(LOOP, blocks.members(component), plan.inside(component, False)[0])
        else:
            (name,) = component
            H, D = net.layers[name].size, net.depth[name]
            p.op(ACTIVATE, ACT[net.layers[name].activation], T * N, H, zoff[name],
                 aoff[name] + D * N * H, plan.boff.get(name, -1))
    out, O = net.output, net.layers[net.output].size
    p.op(SWAP, A, aoff[out] + net.depth[out] * N * O, E, 0, T, N, O, 0)
    return p.finish()


def backward_program(net, blocks, given, input_grads, fused, preset=frozenset()):
    """The ops of BPTT through ``net`` over ``blocks``' N and T (see
    ``Network._backward_full``, which this follows step for step). E holds dDIV/dy
    (N, T, n_out), or with ``fused`` the output layer's dz; the dA of the nodes in
    ``preset`` holds on entry what the caller put there (the gradient of a final
    state; zeros elsewhere), the rest of dA nothing yet; the parameters' gradients
    end in G (``Program.gviews``); dA holds every wanted node's gradient. None if some
    parameter would get no gradient (the caller then takes the step-by-step path)."""
    from ._kernels import ACT
    plan, N, T = net._plan, blocks.N, blocks.T
    aoff, zoff = _offsets(net, blocks)
    need_a, need_z, schedule = net._backward_plan(given, input_grads)
    out, O = net.output, net.layers[net.output].size
    p = Program()
    goff, off = {}, 0
    for key, value in net.params.items():
        goff[key] = off
        p.gviews.append((key, off, value.size, value.shape))
        off = _aligned(off + value.size)
    p.gsize = off
    written = set()

    ready = set(preset)                # nodes whose dA is all set (see network._GradBlock)

    def whole(name):
        if name not in ready:
            p.op(ZERO, DA, aoff[name], (net.depth[name] + T) * N * net._size(name))
            ready.add(name)

    def first(name):
        if name in ready:
            return False
        p.op(ZERO, DA, aoff[name], net.depth[name] * N * net._size(name))
        ready.add(name)
        return True

    out_cyclic = any(out in c for c, cyclic in schedule if cyclic)
    if not fused:
        p.op(SWAP, E, 0, DA, aoff[out] + net.depth[out] * N * O, N, T, O, int(not first(out)))
    elif out_cyclic:
        p.fused_loop = True
        p.op(SWAP, E, 0, F, 0, N, T, O, 0)
    for component, cyclic in reversed(schedule):
        members = set(component)
        if not cyclic:
            (name,) = component
            if not need_z[name]:
                continue
            H, D = net.layers[name].size, net.depth[name]
            whole(name)
            p.op(ACTIVATE_BACK, ACT[net.layers[name].activation], T * N, H, aoff[name] + D * N * H, zoff[name])
            if name == out and fused:
                p.op(SWAP, E, 0, DZ, zoff[name], N, T, O, 1)
        else:
            for name in component:
                whole(name)
            at = component.index(out) if out in members and fused else -1
            p.loop(LOOP_BACK, blocks.members(component), plan.inside(component, True)[0], at)
        for name in component:
            H = net.layers[name].size
            if f"b[{name}]" in net.params:
                p.op(SUM_ROWS, T * N, H, zoff[name], goff[f"b[{name}]"])
                written.add(f"b[{name}]")
            for link in plan.incoming[name]:
                S, Ds = net._size(link.src), net.depth[link.src]
                src = aoff[link.src] + (Ds - link.delay) * N * S
                if link.key in net.params:                   # dW = sum over t of dz(t)^T a_src(t - d)
                    p.gemm(True, False, False, H, S, T * N, (DZ, zoff[name], H), (A, src, S), (G, goff[link.key], S))
                    written.add(link.key)
                if link.gradient == "full" and link.src not in members and need_a[link.src]:
                    add = not (link.delay == 0 and first(link.src))
                    if add:
                        whole(link.src)
                    p.gemm(False, False, add, T * N, S, H, (DZ, zoff[name], H), (W, plan.woff[link.key][0], S),
                           (DA, src, S))
    for name in net.layers:
        key = f"init[{name}]"
        if key in net.params:
            D, H = net.depth[name], net.layers[name].size
            if name in given:
                p.op(ZERO, G, goff[key], D * H)
            else:
                whole(name)
                p.op(SUM_HISTORY, D, N, H, aoff[name], goff[key])
            written.add(key)
    for name in list(net.inputs) + list(given):
        if need_a[name] or name in given:
            whole(name)
    if written != set(net.params):
        return None
    # Where every weight gradient is a small result pooled over many rows, BLAS is faster on
    # one thread for them, and those products are most of BPTT: it runs on one (32 x 32,
    # N = 32: 0.94 against 1.39 ms).
    from .network import pooled_on_one_thread
    sizes = [net.params[link.key].size for link in net.links if link.key in net.params]
    p.one_blas_thread = bool(sizes) and all(pooled_on_one_thread(size, T * N) for size in sizes)
    return p.finish()
