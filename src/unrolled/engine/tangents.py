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
    """The Jacobian's columns ``lo .. hi-1``, time major: ``(hi - lo, T, N, n_out)``.

    ``cache`` is a forward pass's (``net.forward``); ``columns`` maps the network's
    parameter names to ``(first column, size)`` (the caller's order: a model's ``params``
    may name the network's arrays otherwise).
    """
    A, Z, W, T = cache.A, cache.Z, cache.weights, cache.T
    N, Q = cache.N, hi - lo
    dA = {name: np.zeros((Q,) + a.shape, dtype=a.dtype) for name, a in A.items() if name in net.layers}
    # (Q, D + T, N, size) for every layer; the inputs' tangents are zero (they are data)
    picked = {name: _picked(columns[name], lo, hi) for name in net.params if name in columns}
    picked = {name: qf for name, qf in picked.items() if len(qf[0])}      # the block's own arrays only
    for name in net.layers:                       # a learned history: d init / d init = 1
        key = f"init[{name}]"
        if key in picked and name not in cache.given:
            q, flat = picked[key]
            size = net.layers[name].size
            dA[name][q, flat // size, :, flat % size] = 1.0
    plan = net._plan
    for component, cyclic in net.schedule:
        members = set(component)
        dZ = {}
        for name in component:                    # what does not depend on the loop: all t at once
            dz = dZ[name] = np.zeros((Q,) + Z[name].shape, dtype=Z[name].dtype)       # (Q, T, N, H)
            if f"b[{name}]" in picked:
                q, flat = picked[f"b[{name}]"]
                dz[q, :, :, flat] = 1.0
            for link in plan.incoming[name]:
                src = A[link.src][net.depth[link.src] - link.delay: net.depth[link.src] - link.delay + T]
                if link.key in picked:            # the weight's own term: a_src,j(t - d) at unit i
                    q, flat = picked[link.key]
                    S = src.shape[-1]
                    dz[q, :, :, flat // S] += np.moveaxis(src[:, :, flat % S], -1, 0)
                if link.src not in members and link.src not in net.inputs and link.gradient == "full":
                    dz += _shifted(dA, net.depth, link.src, link.delay, T) @ W[link.key].T
        if cyclic:
            _tangent_loop(net, component, A, Z, W, dA, dZ, T)
        else:
            (name,) = component
            D = net.depth[name]
            dA[name][:, D:] = activations.get(net.layers[name].activation).backward(dZ[name], A[name][D:], Z[name])
    out = net.output
    return dA[out][:, net.depth[out]:]


def _tangent_loop(net, component, A, Z, W, dA, dZ, T):
    """The tangents of a cyclic component, step by step (the forward loop's twin)."""
    members = set(component)
    inside = {name: [lk for lk in net._plan.incoming[name] if lk.src in members and lk.gradient == "full"]
              for name in component}
    acts = {name: activations.get(net.layers[name].activation) for name in component}
    for t in range(T):
        for name in component:
            dz = dZ[name][:, t]                                             # (Q, N, H)
            for link in inside[name]:
                dz += dA[link.src][:, net.depth[link.src] + t - link.delay] @ W[link.key].T
            row = net.depth[name] + t
            dA[name][:, row] = acts[name].backward(dz, A[name][row], Z[name][t])


def _shifted(dA, depth, node, delay, T):
    """da_node(t - delay) for t = 0 .. T-1: (Q, T, N, size)."""
    D = depth[node]
    return dA[node][:, D - delay: D - delay + T]


def _picked(column, lo, hi):
    """For one parameter array at ``(first column, size)``: which of the block's tangents
    ``lo .. hi-1`` are its entries: ``(q, flat)``, tangent index and flat index in the array."""
    first, size = column
    start, stop = max(lo, first), min(hi, first + size)
    flat = np.arange(start, max(start, stop)) - first
    return flat + first - lo, flat
