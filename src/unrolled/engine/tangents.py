"""Exact Jacobians of a column's outputs with respect to its parameters.

``J[n, t, k, p] = d y_k(n, t) / d theta_p``, through every link and delay, the
recurrences included (the *dynamic* derivative: a weight moves every later step through
the state and, in a closed-loop NARX, through the fed-back outputs). Two ways, the same
numbers:

**Forward mode** (real-time recurrent learning, Williams and Zipser 1989): alongside the
forward pass, every node carries its tangent ``dA/dtheta`` for a block of parameters at
once, following the same schedule::

    dz_dst(t) = sum over links  W  da_src(t - d)           (not across a blocked link)
              + [theta is W[i, j]]  a_src,j(t - d) e_i       (the weight's own term)
              + [theta is b[i]] e_i
    da_dst(t) = f'(z_dst(t)) dz_dst(t)                      (softmax: its full Jacobian)
    da(t < 0) = [theta is init[slot, i]] e_i                 (a learned history)

An acyclic component is done for all steps at once; a cycle steps through time. Its cost
is about ``P`` forward passes, as matrix products over ``P x N`` rows.

**Reverse mode**: one BPTT pass for each output value of each sequence, with a unit
``dy`` at that step and component: ``N T n_out`` backward passes of one sequence. Cheaper
when the parameters outnumber ``2 T n_out``.

A gradient-blocked link (simple Elman, Jordan) keeps its blocking here as in BPTT: no
tangent crosses it, so ``J^T e`` is the gradient ``backward`` gives. The columns of ``J``
are in the order of ``params``, each array flattened in C order.
"""

from __future__ import annotations

import numpy as np

from .. import activations
from .plan import POOL

__all__ = ["forward_tangents", "parameter_columns", "TANGENT_BYTES"]

# A block of tangent columns is sized so its buffers take about this much memory.
TANGENT_BYTES = 64 << 20


def parameter_columns(params):
    """``{name: (first column, size)}`` of every array of ``params``, in their order."""
    columns, offset = {}, 0
    for name, value in params.items():
        columns[name] = (offset, value.size)
        offset += value.size
    return columns


def forward_tangents(net, cache, columns, lo, hi):
    """The Jacobian's columns ``lo .. hi-1``: ``(T, N, n_out, hi - lo)``.

    ``cache`` is a forward pass's (``net.forward``); ``columns`` maps the network's
    parameter names to ``(first column, size)`` (the caller's order: a model's ``params``
    may name the network's arrays otherwise). Every layer's tangents are
    ``(D + T, N, size, Q)``: the Q tangents of one value side by side, so that each
    product is a run of Q multiply-adds; the inputs' tangents are zero (they are data).
    """
    if net.gated:
        raise ValueError("forward-mode tangents do not cover gated layers (LSTM, GRU) yet: use reverse mode")
    A, Z, W, T = cache.A, cache.Z, cache.weights, cache.T
    Q = hi - lo
    kernels = _compiled(net)
    dA, dZ, blocks = {}, {}, {}
    for component, cyclic in net.schedule:        # a recurrence's buffers in one block (compiled loop)
        one = cyclic and kernels is not None and _elementwise(net, component)
        arrays, block_a = _buffers({name: A[name].shape + (Q,) for name in component}, A[component[0]].dtype, one)
        dA.update(arrays)
        arrays, block_z = _buffers({name: Z[name].shape + (Q,) for name in component}, A[component[0]].dtype, one)
        dZ.update(arrays)
        blocks[component[0]] = block_a, block_z
    picked = {name: _picked(columns[name], lo, hi) for name in net.params if name in columns}
    picked = {name: qf for name, qf in picked.items() if len(qf[0])}      # the block's own arrays only
    for name in net.layers:                       # a learned history: d init / d init = 1
        key = f"init[{name}]"
        if key in picked and name not in cache.given:
            q, flat = picked[key]
            size = net.layers[name].size
            dA[name][flat // size, :, flat % size, q] = 1.0
    plan = net._plan
    for component, cyclic in net.schedule:
        members = set(component)
        for name in component:                    # what does not depend on the loop: all t at once
            dz = dZ[name]                                                     # (T, N, H, Q)
            if f"b[{name}]" in picked:
                q, flat = picked[f"b[{name}]"]
                whole = _whole_block(dz, q, flat, 1)
                if whole is not None:             # dz[t, n, i, q0 + i] = 1: one strided view
                    whole[...] = 1.0
                else:
                    dz[:, :, flat, q] = 1.0
            for link in plan.incoming[name]:
                src = A[link.src][net.depth[link.src] - link.delay: net.depth[link.src] - link.delay + T]
                if link.key in picked:            # the weight's own term: a_src,j(t - d) at unit i
                    q, flat = picked[link.key]
                    S = src.shape[-1]
                    whole = _whole_block(dz, q, flat, S)
                    if whole is not None:         # dz[t, n, i, q0 + i S + j] += a_src,j: one strided view
                        whole += src[:, :, None, :]
                    else:
                        dz[:, :, flat // S, q] += src[:, :, flat % S]
                if link.src not in members and link.src not in net.inputs and link.gradient == "full":
                    dz += W[link.key] @ _shifted(dA, net.depth, link.src, link.delay, T)
        if cyclic and kernels is not None and _elementwise(net, component):
            _compiled_loop(kernels, net, component, A, Z, W, dA, dZ, T, *blocks[component[0]])
        elif cyclic:
            _tangent_loop(net, component, A, Z, W, dA, dZ, T)
        else:
            (name,) = component
            D = net.depth[name]
            dA[name][D:] = _through(net.layers[name].activation, dZ[name], A[name][D:], Z[name])
    out = net.output
    return dA[out][net.depth[out]:]


def _whole_block(dz, q, flat, S):
    """When the block holds all of a (H, S) weight (its tangents q0 .. q0 + H S - 1, in
    order: ``_picked`` gives them so), the (T, N, H, S) view of ``dz`` (T, N, H, Q) at
    ``[t, n, i, q0 + i S + j]``; else None. A bias (H,) is the case S = 1."""
    T, N, H, Q = dz.shape
    if len(q) != H * S or not dz.flags.c_contiguous:
        return None
    st = dz.strides
    return np.ndarray((T, N, H, S), dtype=dz.dtype, buffer=dz, offset=int(q[0]) * st[3],
                      strides=(st[0], st[1], st[2] + S * st[3], st[3]))


def _buffers(shapes, dtype, one_block):
    """``(arrays, block)``: zeroed arrays of ``shapes`` (name -> shape); with ``one_block``
    views into the one flat ``block`` (else None). The memory comes from the passes'
    ``POOL``: these tangents are some P times a pass's values, and fresh memory would
    cost a page fault every 4 KiB."""
    sizes = {name: int(np.prod(shape)) for name, shape in shapes.items()}
    if not one_block:
        return {name: _zeroed(sizes[name], dtype).reshape(shape) for name, shape in shapes.items()}, None
    flat = _zeroed(sum(sizes.values()), dtype)
    out, at = {}, 0
    for name, shape in shapes.items():
        out[name] = flat[at: at + sizes[name]].reshape(shape)
        at += sizes[name]
    return out, flat


def _zeroed(size, dtype):
    flat = POOL.empty(size, dtype)
    flat.fill(0)
    return flat


def _through(activation, dz, a, z):
    """The tangents ``da = f'(z) dz`` of the activation's values: dz (..., H, Q), a and z (..., H).
    The Jacobian of every activation is symmetric (softmax's ``diag(a) - a a^T`` too), so
    its backward (J^T da) computes it; the tangents' Q axis stands after the units."""
    act = activations.get(activation)
    if act.elementwise:
        return act.backward(dz, a[..., None], z[..., None])
    a = a[..., None]
    return a * (dz - np.sum(a * dz, axis=-2, keepdims=True))         # softmax: over the units


def _tangent_loop(net, component, A, Z, W, dA, dZ, T):
    """The tangents of a cyclic component, step by step (the forward loop's twin)."""
    members = set(component)
    inside = {name: [lk for lk in net._plan.incoming[name] if lk.src in members and lk.gradient == "full"]
              for name in component}
    for t in range(T):
        for name in component:
            dz = dZ[name][t]                                                 # (N, H, Q)
            for link in inside[name]:
                dz += W[link.key] @ dA[link.src][net.depth[link.src] + t - link.delay]
            row = net.depth[name] + t
            dA[name][row] = _through(net.layers[name].activation, dz, A[name][row], Z[name][t])


def _compiled(net):
    """The compiled tangent loop where the network runs compiled, else None."""
    from .backend import kernels_for
    if kernels_for(net.backend) is None:
        return None
    from .kernels import compiled_tangents
    return compiled_tangents


def _elementwise(net, component):
    return all(activations.get(net.layers[name].activation).elementwise for name in component)


def _compiled_loop(kernels, net, component, A, Z, W, dA, dZ, T, block_a, block_z):
    """``_tangent_loop`` as one compiled call (``kernels.compiled_tangents``) over the
    members' buffers, which lie in one flat block each for dA and dZ (``_buffers``):
    ``block_a`` and ``block_z``."""
    index = {name: i for i, name in enumerate(component)}
    first = component[0]
    Q, N, dtype = dA[first].shape[-1], dA[first].shape[1], dA[first].dtype
    gains, mem, lnk, weights = [], [], [], []
    offA = offZ = offG = offW = 0
    for name in component:
        D, H = net.depth[name], net.layers[name].size
        derivative = activations.get(net.layers[name].activation).backward(np.ones_like(Z[name]), A[name][D:], Z[name])
        gains.append(np.ascontiguousarray(derivative, dtype=dtype).reshape(-1))
        start = len(lnk)
        for link in net._plan.incoming[name]:
            if link.src in index and link.gradient == "full":
                weights.append(np.ascontiguousarray(W[link.key], dtype=dtype).reshape(-1))
                lnk.append((index[link.src], link.delay, offW))
                offW += weights[-1].size
        mem.append((offA, offZ, offG, D, H, start, len(lnk)))
        offA += dA[name].size
        offZ += dZ[name].size
        offG += Z[name].size
    kernels.tangent_loop(block_a, block_z, np.concatenate(gains),
                         np.concatenate(weights or [np.zeros(1, dtype)]),
                         np.array(mem, dtype=np.int64), np.array(lnk, dtype=np.int64).reshape(-1, 3), Q, N, T)


def _shifted(dA, depth, node, delay, T):
    """da_node(t - delay) for t = 0 .. T-1: (T, N, size, Q)."""
    D = depth[node]
    return dA[node][D - delay: D - delay + T]


def _picked(column, lo, hi):
    """For one parameter array at ``(first column, size)``: which of the block's tangents
    ``lo .. hi-1`` are its entries: ``(q, flat)``, tangent index and flat index in the array."""
    first, size = column
    start, stop = max(lo, first), min(hi, first + size)
    flat = np.arange(start, max(start, stop)) - first
    return flat + first - lo, flat
