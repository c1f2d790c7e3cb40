"""A whole pass as one compiled call: the steps of forward and BPTT, listed once.

The step-by-step path (``engine.fast``) walks the network's schedule in Python: for each
component a product for what comes from outside it, its activation or its compiled time
loop; then BPTT back through the components, with a product per weight gradient. Each
step is a NumPy or compiled call of a microsecond or more, which for a small network (a
32-unit RNN over 200 steps computes for ~70 us) is most of the pass. The steps, their
shapes and offsets depend only on the network's structure and the pass's N and T, so
here they are worked out once (``forward_program``, ``backward_program``) as rows of
integers, and ``kernels.compiled.run_program`` runs them all in one call. The rows are
the same steps the fast path takes one call at a time (the same BLAS products,
activations and loops): only the Python between them is gone.

Only a pass whose loops run on one thread takes this path (``forward_for``,
``backward_for``): a split pass is dominated by its loops, and runs step by step.

An op is a row of ``OP_WIDTH`` int64, its opcode first (``kernels.opcodes``; the operands
of each are in ``kernels.compiled.run_program``); an operand is a (buffer, offset) pair
into the pass's flat arrays, numbered ACTS, PREACTS, WEIGHTS, D_ACTS, D_PREACTS, GRADS
(the parameters' gradients, one array), OUTPUTS (the outputs y (N, T, n_out) in forward,
dDIV/dy in BPTT) and FUSED (the output layer's fused dz, (T, N, n_out), when its layer is
inside a recurrence).
"""

from __future__ import annotations

import contextlib

import numpy as np

from .kernels import blas, threads
from .kernels.opcodes import (ACT, ACTIVATE, ACTIVATE_BACK, ACTS, D_ACTS, D_PREACTS, FUSED, GEMM, GRADS, LOOP,
                              LOOP_BACK, OP_WIDTH, OUTPUTS, PREACTS, REPEAT, SUM_HISTORY, SUM_ROWS, SUM_SQUARES, SWAP,
                              WEIGHTS, ZERO)
from .plan import POOL, transposed_copy
from .reference import Gradients, add_dstate

__all__ = ["Program", "forward_program", "backward_program", "forward_for", "backward_for", "run_forward",
           "run_backward", "WHOLE_PASS"]

# Whether a pass that runs on one thread may run as one compiled program; False: step by
# step, as a split pass does (the tests compare the two).
WHOLE_PASS = True


class Program:
    """The ops of one pass, with what the caller needs around them.

    ops (n, 16) int64; mem_table, lnk_table: the loops' tables, stacked; gviews: (key,
    offset, size, shape) of every parameter's gradient in the GRADS array, ``gsize`` long;
    ``fused_loop``: the fused dz goes to a loop (FUSED is needed); ``one_blas_thread``: BLAS is
    faster on one thread for this pass.
    """

    def __init__(self):
        self.rows, self.mems, self.lnks = [], [], []
        self.gviews, self.gsize, self.fused_loop, self.one_blas_thread = [], 0, False, False

    def op(self, code, *args):
        row = [code, *args]
        self.rows.append(row + [0] * (OP_WIDTH - len(row)))

    def gemm(self, trans_a, trans_b, add, n, m, k, a, b, c):
        """c (n, m) (+)= op(a) @ op(b); a, b, c: (buffer, offset, row stride)."""
        (ab, ao, lda), (bb, bo, ldb), (cb, co, ldc) = a, b, c
        self.op(GEMM, int(trans_a), int(trans_b), int(add), n, m, k,
                ab, ao, max(lda, 1), bb, bo, max(ldb, 1), cb, co, max(ldc, 1))   # (BLAS wants ld >= 1)

    def lay_out_gradients(self, params):
        """Place every parameter's gradient in the GRADS array, one after the other with no
        gap (so that one op sums their squares): key -> its offset."""
        offsets, off = {}, 0
        for key, value in params.items():
            offsets[key] = off
            self.gviews.append((key, off, value.size, value.shape))
            off += value.size
        self.norm_slot, self.gsize = off, off + 1      # then one slot: the squared norm of them all
        return offsets

    def loop(self, code, mem, lnk, *extra):
        self.op(code, sum(len(m) for m in self.mems), len(mem), sum(len(m) for m in self.lnks), len(lnk), *extra)
        self.mems.append(mem)
        self.lnks.append(lnk)

    def finish(self):
        self.ops = np.array(self.rows, dtype=np.int64).reshape(-1, OP_WIDTH)
        self.mem_table = (np.concatenate(self.mems) if self.mems else np.zeros((0, 10))).astype(np.int64)
        self.lnk_table = (np.concatenate(self.lnks) if self.lnks else np.zeros((0, 5))).astype(np.int64)
        del self.rows, self.mems, self.lnks
        return self


def _offsets(net, buffers):
    """Offsets of every node's (D + T, N, size) in ACTS and layer's (T, N, H) in PREACTS."""
    return ({name: off for name, (off, _) in buffers.layout[0].items()},
            {name: off for name, (off, _) in buffers.layout[1].items()})


def forward_program(net, buffers, given):
    """The ops of a forward pass of ``net`` over ``buffers``' N and T, the histories of
    ``given`` filled by the caller (as are the inputs' steps). Ends with y in OUTPUTS."""
    plan, N, T = net._plan, buffers.N, buffers.T
    aoff, zoff = _offsets(net, buffers)
    p = Program()
    for name in list(net.inputs) + list(net.layers):        # the histories
        D, size = net.depth[name], plan.size[name]
        if not D or name in given:
            continue
        if name in plan.init_at:
            for d in range(D):
                p.op(REPEAT, plan.init_at[name] + d * size, size, ACTS, aoff[name] + d * N * size, N)
        else:
            p.op(ZERO, ACTS, aoff[name], D * N * size)
    for component, cyclic in net.schedule:
        for name in component:
            H, outside = net.layers[name].size, plan.outside[name]
            if cyclic and not outside:
                continue                                   # the loop starts z from the bias
            if not outside:
                p.op(ZERO, PREACTS, zoff[name], T * N * H)
            for i, link in enumerate(outside):               # z = sum of a_src(t - d) W^T, all t
                S, Ds = plan.size[link.src], net.depth[link.src]
                p.gemm(False, True, i > 0, T * N, H, S, (ACTS, aoff[link.src] + (Ds - link.delay) * N * S, S),
                       (WEIGHTS, plan.weight_at[link.key][0], S), (PREACTS, zoff[name], H))
        if cyclic:
            p.loop(LOOP, buffers.members(component), plan.inside(component, False)[0])
        else:
            (name,) = component
            H, D = net.layers[name].size, net.depth[name]
            p.op(ACTIVATE, ACT[net.layers[name].activation], T * N, H, zoff[name],
                 aoff[name] + D * N * H, plan.bias_at.get(name, -1))
    out, O = net.output, net.layers[net.output].size
    p.op(SWAP, ACTS, aoff[out] + net.depth[out] * N * O, OUTPUTS, 0, T, N, O, 0)
    p.n_out = O
    return p.finish()


def backward_program(net, buffers, given, input_grads, fused, preset=frozenset()):
    """The ops of BPTT through ``net`` over ``buffers``' N and T (see
    ``fast.backward``, which this follows step for step). OUTPUTS holds dDIV/dy
    (N, T, n_out), or with ``fused`` the output layer's dz; the dA of the nodes in
    ``preset`` holds on entry what the caller put there (the gradient of a final
    state; zeros elsewhere), the rest of dA nothing yet; the parameters' gradients
    end in GRADS (``Program.gviews``); dA holds every wanted node's gradient. None if some
    parameter would get no gradient (the caller then takes the step-by-step path)."""
    plan, N, T = net._plan, buffers.N, buffers.T
    aoff, zoff = _offsets(net, buffers)
    need_a, need_z, schedule = plan.gradient_graph(given, input_grads)
    out, O = net.output, net.layers[net.output].size
    p = Program()
    goff = p.lay_out_gradients(net.params)
    dA = _ZeroedOnce(p, net, aoff, N, T, preset)
    written = set()
    if not fused:
        p.op(SWAP, OUTPUTS, 0, D_ACTS, aoff[out] + net.depth[out] * N * O, N, T, O, int(not dA.first(out)))
    elif any(out in c for c, cyclic in schedule if cyclic):
        p.fused_loop = True
        p.op(SWAP, OUTPUTS, 0, FUSED, 0, N, T, O, 0)
    for component, cyclic in reversed(schedule):
        members = set(component)
        if not cyclic:
            (name,) = component
            if not need_z[name]:
                continue
            H, D = net.layers[name].size, net.depth[name]
            dA.whole(name)
            p.op(ACTIVATE_BACK, ACT[net.layers[name].activation], T * N, H, aoff[name] + D * N * H, zoff[name])
            if name == out and fused:
                p.op(SWAP, OUTPUTS, 0, D_PREACTS, zoff[name], N, T, O, 1)
        else:
            for name in component:
                dA.whole(name)
            at = component.index(out) if out in members and fused else -1
            p.loop(LOOP_BACK, buffers.members(component), plan.inside(component, True)[0], at)
        for name in component:
            written |= _pooled_gradients(p, net, name, members, need_a, dA, aoff, zoff, goff, N, T)
    for name in net.layers:
        key = f"init[{name}]"
        if key in net.params:
            D, H = net.depth[name], net.layers[name].size
            if name in given:
                p.op(ZERO, GRADS, goff[key], D * H)
            else:
                dA.whole(name)
                p.op(SUM_HISTORY, D, N, H, aoff[name], goff[key])
            written.add(key)
    for name in list(net.inputs) + list(given):
        if need_a[name] or name in given:
            dA.whole(name)
    if written != set(net.params):
        return None
    p.op(SUM_SQUARES, 0, p.norm_slot, p.norm_slot, 0)      # the gradients' squared norm, for fit's check
    # Where every weight gradient is a small result pooled over many rows, BLAS is faster on
    # one thread for them, and those products are most of BPTT: it runs on one (32 x 32,
    # N = 32: 0.94 against 1.39 ms).
    sizes = [net.params[link.key].size for link in net.links if link.key in net.params]
    p.one_blas_thread = bool(sizes) and all(blas.pooled_on_one_thread(size, T * N) for size in sizes)
    return p.finish()


def _pooled_gradients(p, net, name, members, need_a, dA, aoff, zoff, goff, N, T):
    """The ops that pool layer ``name``'s dz over time: its bias's and its links' weight
    gradients, and what its links send to sources outside the component ``members``.
    Returns the keys of the gradients written."""
    plan, H, written = net._plan, net.layers[name].size, set()
    if f"b[{name}]" in net.params:
        p.op(SUM_ROWS, T * N, H, zoff[name], goff[f"b[{name}]"])
        written.add(f"b[{name}]")
    for link in plan.incoming[name]:
        S, Ds = plan.size[link.src], net.depth[link.src]
        src = aoff[link.src] + (Ds - link.delay) * N * S
        if link.key in net.params:                   # dW = sum over t of dz(t)^T a_src(t - d)
            p.gemm(True, False, False, H, S, T * N, (D_PREACTS, zoff[name], H), (ACTS, src, S),
                   (GRADS, goff[link.key], S))
            written.add(link.key)
        if link.gradient == "full" and link.src not in members and need_a[link.src]:
            add = not (link.delay == 0 and dA.first(link.src))
            if add:
                dA.whole(link.src)
            p.gemm(False, False, add, T * N, S, H, (D_PREACTS, zoff[name], H),
                   (WEIGHTS, plan.weight_at[link.key][0], S), (D_ACTS, src, S))
    return written


class _ZeroedOnce:
    """Which nodes' dA a backward program has set (``fast._GradBlock``, as ops): a node is
    zeroed whole before anything adds to it (``whole``), or, for a first contribution that
    writes all its steps, only its history rows (``first``)."""

    def __init__(self, program, net, aoff, N, T, preset):
        self.p, self.net, self.aoff, self.N, self.T = program, net, aoff, N, T
        self.ready = set(preset)                # (the caller set these: a final state's gradient)

    def whole(self, name):
        if name not in self.ready:
            rows = self.net.depth[name] + self.T
            self.p.op(ZERO, D_ACTS, self.aoff[name], rows * self.N * self.net._plan.size[name])
            self.ready.add(name)

    def first(self, name):
        """Zero the history rows of ``name`` for a first contribution; False if it has one."""
        if name in self.ready:
            return False
        self.p.op(ZERO, D_ACTS, self.aoff[name], self.net.depth[name] * self.N * self.net._plan.size[name])
        self.ready.add(name)
        return True


# ------------------------------------------------------------------ running one
def _cached(net, key, build):
    """The program under ``key`` in the network's plan, built once (None: none fits)."""
    programs = net._plan.programs
    program = programs.get(key, False)
    if program is False:
        program = build()
        if len(programs) > 64:                                        # many sizes seen: start afresh
            programs.clear()
        programs[key] = program
    return program


def _runs_whole():
    """Whether a pass may run as a program now: not with the plain loops (no BLAS), not
    when a pass splits its work over threads."""
    return WHOLE_PASS and blas.USE_BLAS and not threads.inside_own_threads()


def _unchanged_scalings(net, buffers, weights, components, backward):
    """Whether every fixed ``s * I`` link inside these cyclic components still holds ``s * I``
    (a program bakes the scaled add in; a changed matrix runs step by step)."""
    return all(buffers.inside(c, weights, backward) is net._plan.inside(c, backward)[0]
               for c, cyclic in components if cyclic)


def forward_for(net, buffers, weights, given):
    """The forward program of this pass, or None where it runs step by step (a network with
    a gated layer always does: the programs lay out plain layers only)."""
    if net.gated or not _runs_whole() or not _unchanged_scalings(net, buffers, weights, net.schedule, False):
        return None
    key = (False, buffers.N, buffers.T, frozenset(given), net.output)
    return _cached(net, key, lambda: forward_program(net, buffers, given))


def backward_for(net, buffers, weights, given, input_grads, fused, preset):
    """The backward program of this pass, or None where it runs step by step (as ``forward_for``)."""
    if net.gated or not _runs_whole():
        return None
    key = (True, buffers.N, buffers.T, frozenset(given), bool(input_grads), fused, frozenset(preset), net.output)
    program = _cached(net, key, lambda: backward_program(net, buffers, given, input_grads, fused, preset))
    schedule = net._plan.gradient_graph(given, input_grads)[2]
    if program is None or not _unchanged_scalings(net, buffers, weights, schedule, True):
        return None
    return program


def run_forward(kernels, program, buffers):
    """Run a forward program: y (N, T, n_out), a new array, every step computed."""
    N, T = buffers.N, buffers.T
    y = np.empty((N, T, program.n_out), buffers.acts.dtype)
    none = buffers.weights[:0]
    kernels.run_program(program.ops, program.mem_table, program.lnk_table,
                        (buffers.acts, buffers.preacts, buffers.weights, none, none, none, y.reshape(-1), none),
                        N, T, threads.NO_SYNC)
    return y


def run_backward(net, kernels, program, cache, buffers, dy, dstate):
    """Run a backward program: ``(grads, dinputs, dstate_in)`` as ``reference.backward``
    gives them; ``dy`` (N, T, n_out) is dDIV/dy or the output layer's fused dz, batch
    first, zero at padded steps; ``dstate`` (checked) goes into dA first."""
    N, T = buffers.N, buffers.T
    E = np.ascontiguousarray(dy)
    if not E.flags.writeable:                 # (the compiled code takes writable buffers only)
        E = E.copy()
    dA = POOL.empty(buffers.acts.size, buffers.acts.dtype)
    views = {}
    for name in dstate:                       # the program starts from what is there
        views[name] = buffers.a(name, dA)
        views[name].fill(0)
    add_dstate(views, dstate, cache.lengths, net.depth)
    dZ = POOL.empty(buffers.preacts.size, buffers.preacts.dtype)
    G = POOL.empty(program.gsize, buffers.acts.dtype)
    none = buffers.weights[:0]
    F = POOL.empty(E.size, E.dtype) if program.fused_loop else none
    with blas.one_blas_thread() if program.one_blas_thread else contextlib.nullcontext():
        kernels.run_program(program.ops, program.mem_table, program.lnk_table,
                            (buffers.acts, buffers.preacts, buffers.weights, dA, dZ, G, E.reshape(-1), F),
                            N, T, threads.NO_SYNC)
    grads = Gradients({key: G[off: off + size].reshape(shape) for key, off, size, shape in program.gviews})
    grads.squared_norm = float(G[program.norm_slot]) if program.gviews else 0.0
    need_a = net._plan.gradient_graph(cache.given, cache.input_grads)[0]
    dinputs = {name: transposed_copy(buffers.a(name, dA)[net.depth[name]:]) for name in net.inputs if need_a[name]}
    dstate_in = {name: np.ascontiguousarray(np.swapaxes(buffers.a(name, dA)[:net.depth[name]], 0, 1))
                 for name in cache.given}
    return grads, dinputs, dstate_in
