"""The NumPy reference: the lecture's ``RNN_forward`` and ``RNN_bptt``, for any column.

This is the readable way a pass runs (``backend="numpy"``), and the oracle the compiled
ones (``engine.fast``, ``engine.program``) are tested against. It follows the lecture's
pseudocode, generalised from "layers 1 .. L, each reading the one below and itself one
step back" to any column of layers and delayed links:

``forward`` (RNN_forward)::

    for each component of the schedule (graph.schedule), in order:
        z(t) = b + sum over links from outside the component  W a_src(t - d)   (all t at once)
        acyclic:  a(t) = f(z(t))                                              (all t at once)
        cyclic:   for t = 0 .. T-1, for each member in delay-0 order:
                      z(t) += sum over links inside  W a_src(t - d);  a(t) = f(z(t))

``backward`` (RNN_bptt), over the schedule of the gradient graph, reversed::

    dDIV/da_out(t) = dy(t)
    for each component, last first:
        acyclic:  dz(t) = f'(z(t)) dDIV/da(t)                                 (all t at once)
        cyclic:   for t = T-1 .. 0, for each member, last first:
                      dz(t) = f'(z(t)) dDIV/da(t)
                      dDIV/da_src(t - d) += W^T dz(t)     for every link inside
        dW = sum_t dz(t) a_src(t - d)^T,  db = sum_t dz(t)                     (pooled over t)
        dDIV/da_src(t - d) += W^T dz(t)   for every link from outside          (all t at once)
    dDIV/d init = what reached t < 0, summed over the batch

A gated layer (LSTM, GRU: ``engine.cells``) is a member of a cyclic component whose
``a(t) = f(z(t))`` is its cell's step, reading its own h(t-1) (and c(t-1), the node ``h.c``),
and whose ``f'`` is the cell's BPTT step, sending back to h(t-1) and c(t-1) what the cell
carries; its links' products add to the gate columns ``cells.link_columns`` names.
``kernels.compiled`` runs the same steps in its loops (``_gated_forward``, ``_gated_backward``).

Arrays are time major: a node's activations ``A[name]`` are (D + T, N, size), the first
D rows its history (a(-D) .. a(-1)), so a_src(t - d) for all t is the slice
``[D - d : D - d + T]``; pre-activations ``Z[name]`` are (T, N, H).
"""

from __future__ import annotations

import numpy as np

from .. import activations
from . import cells
from .cells import cell_node, link_columns
from .plan import transposed_copy

__all__ = ["Gradients", "forward", "backward", "forward_loop", "backward_loop", "fill_histories", "add_dstate",
           "collect_gradients", "shifted"]


class Gradients(dict):
    """The parameters' gradients, name -> array (a dict), and their squared L2 norm over all
    of them, ``squared_norm``: computed in the pass where it runs compiled, else on first read
    (``fit`` checks it before every update; inf or nan says the update must not be applied)."""

    _squared_norm = None

    @property
    def squared_norm(self):
        if self._squared_norm is None:
            self._squared_norm = float(sum(np.vdot(g, g) for g in self.values()))
        return self._squared_norm

    @squared_norm.setter
    def squared_norm(self, value):
        self._squared_norm = value


def shifted(A, depth, node, delay, T):
    """a_node(t - delay) for t = 0 .. T-1: a (T, N, size) view of the history buffer."""
    D = depth[node]
    return A[node][D - delay: D - delay + T]


def fill_histories(net, A, given):
    """Every delayed node's history rows a(-D) .. a(-1), unless the caller ``given`` them:
    the learned ``init[name]`` (the lecture's h(-1), shared by the batch) or zeros."""
    for name in net.nodes:
        D = net.depth[name]
        if D and name not in given:
            init = net.params.get(f"init[{name}]")
            A[name][:D] = 0.0 if init is None else init[:, None, :]          # (D, N, size)


def forward(net, A, Z, W, T, given):
    """RNN_forward: fill ``A`` (activations) and ``Z`` (pre-activations) of every layer,
    the inputs' steps and the ``given`` histories being in ``A`` already."""
    plan = net._plan
    fill_histories(net, A, given)
    for component, cyclic in net.schedule:
        for name in component:                 # what comes from outside the component: all t at once
            z, layer = Z[name], net.layers[name]                          # (T, N, H), gated (T, N, 4H)
            b = net.params.get(f"b[{name}]")
            z[..., :layer.rows] = 0.0 if b is None else b
            z[..., layer.rows:] = net.params.get(f"b[{name}.hn]", 0.0)   # a GRU's n_h starts at b_hn
            for link in plan.outside[name]:
                z[..., link_columns(layer, link)] += shifted(A, net.depth, link.src, link.delay, T) @ W[link.key].T
        if cyclic:
            forward_loop(net, component, A, Z, W, T)
        else:
            (name,) = component
            activations.get(net.layers[name].activation).forward(Z[name], out=A[name][net.depth[name]:])


def forward_loop(net, component, A, Z, W, T):
    """The recurrence of a cyclic component, step by step.

    On entry ``Z[name]`` holds what comes from outside the component (hoisted); the loop
    adds the links inside it, one step at a time, and applies the activations (a gated
    layer's cell, ``cells.forward_step``). ``kernels.compiled.forward_loop`` is this loop
    compiled.
    """
    members = set(component)
    inside = {name: [lk for lk in net._plan.incoming[name] if lk.src in members] for name in component}
    acts = {name: activations.get(net.layers[name].activation) for name in component}
    for t in range(T):
        for name in component:
            zt, layer, row = Z[name][t], net.layers[name], net.depth[name] + t     # (N, H), gated (N, 4H)
            for link in inside[name]:
                src_t = A[link.src][net.depth[link.src] + t - link.delay]     # (N, S)
                zt[:, link_columns(layer, link)] += src_t @ W[link.key].T
            if layer.cell is None:
                acts[name].forward(zt, out=A[name][row])
            else:                                                         # c(t) is row t + 1 of h.c
                c = A.get(cell_node(name))
                cells.forward_step(layer.cell, zt, A[name][row - 1], None if c is None else c[t],
                                   A[name][row], None if c is None else c[t + 1])


def backward(net, cache, dy, fused, dstate):
    """RNN_bptt: ``(grads, dinputs, dstate_in)`` (see ``Network.backward_full``).

    ``dy`` (T, N, n_out) is dDIV/dy, zero at padded steps, or None when ``fused``
    (T, N, n_out) holds the output layer's dz instead; ``dstate`` (checked) is added at
    each sequence's last steps."""
    A, Z, W, T = cache.A, cache.Z, cache.weights, cache.T
    dA = {name: np.zeros_like(a) for name, a in A.items()}               # (D + T, N, size)
    out = net.output
    if dy is not None:
        dA[out][net.depth[out]:] = dy
    add_dstate(dA, dstate, cache.lengths, net.depth)
    need_a, need_z, schedule = net._plan.gradient_graph(cache.given, cache.input_grads)
    dZ, grads = {}, {}
    for component, cyclic in reversed(schedule):
        members = set(component)
        if cyclic:
            backward_loop(net, component, A, Z, dA, dZ, W, fused, T)
        else:
            (name,) = component
            if not need_z[name]:
                continue          # nothing it holds or feeds needs a gradient
            D = net.depth[name]
            dZ[name] = activations.get(net.layers[name].activation).backward(dA[name][D:], A[name][D:], Z[name])
            if name == out and fused is not None:
                dZ[name] += fused
        for name in component:    # pooled over time: the weight gradients, and what goes outside
            layer = net.layers[name]
            if f"b[{name}]" in net.params:
                grads[f"b[{name}]"] = dZ[name][..., :layer.rows].sum(axis=(0, 1))
            if f"b[{name}.hn]" in net.params:                             # a GRU's b_hn: its n_h block
                grads[f"b[{name}.hn]"] = dZ[name][..., layer.rows:].sum(axis=(0, 1))
            for link in net._plan.incoming[name]:
                dz = dZ[name][..., link_columns(layer, link)]             # (T, N, rows of the link)
                src = shifted(A, net.depth, link.src, link.delay, T)      # (T, N, S)
                if link.key in net.params:                                # sum_t dz(t)^T a_src(t - d)
                    grads[link.key] = dz.reshape(-1, dz.shape[-1]).T @ src.reshape(-1, src.shape[-1])
                if link.gradient == "full" and link.src not in members and need_a[link.src]:
                    da_src = shifted(dA, net.depth, link.src, link.delay, T)  # (T, N, S)
                    da_src += dz @ W[link.key]
    return collect_gradients(net, cache, dA, grads, need_a)


def backward_loop(net, component, A, Z, dA, dZ, W, fused, T):
    """BPTT through a cyclic component of the gradient graph, step by step.

    On entry ``dA`` holds what reached the members from outside the component; going
    back in time, each member's dDIV/da(t) gathers what the links inside send back
    (delay-0 links from the same step, delay-d links from step t+d), times the
    activation's Jacobian (a gated layer: back through its cell, ``cells.backward_step``,
    which also sends back what its cell carries from h(t-1), c(t-1)). Writes ``dZ[name]``
    (T, N, H; gated (T, N, 4H)). ``kernels.compiled.backward_loop`` is this loop compiled.
    """
    members = set(component)
    inside = {name: [lk for lk in net._plan.incoming[name] if lk.src in members and lk.gradient == "full"]
              for name in component}
    acts = {name: activations.get(net.layers[name].activation) for name in component}
    for name in component:
        dZ[name] = np.empty_like(Z[name])
    for t in range(T - 1, -1, -1):
        for name in reversed(component):
            row, layer = net.depth[name] + t, net.layers[name]
            if layer.cell is None:
                dz = acts[name].backward(dA[name][row], A[name][row], Z[name][t])   # (N, H)
            else:
                node = cell_node(name)
                c, dc = (A[node], dA[node]) if node in A else (None, None)
                dz, dh_prev, dc_prev = cells.backward_step(
                    layer.cell, dA[name][row], Z[name][t], A[name][row - 1],
                    None if c is None else c[t + 1], None if c is None else c[t], None if c is None else dc[t + 1])
                if dh_prev is not None:
                    dA[name][row - 1] += dh_prev
                if dc_prev is not None:
                    dc[t] += dc_prev
            if name == net.output and fused is not None:
                dz += fused[t]
            dZ[name][t] = dz
            for link in inside[name]:
                dA[link.src][net.depth[link.src] + t - link.delay] += dz[:, link_columns(layer, link)] @ W[link.key]


def add_dstate(dA, dstate, lengths, depth):
    """Add ``dstate`` (node -> (N, D, size), dDIV/d of the final state) into dA at each
    sequence's last D steps; ``dA`` maps a node to its (D + T, N, size) gradient."""
    for name, g in dstate.items():
        rows = lengths[:, None] + np.arange(depth[name])[None, :]      # (N, D) buffer rows
        np.add.at(dA[name], (rows, np.arange(len(lengths))[:, None]), g)


def collect_gradients(net, cache, dA, grads, need_a):
    """``(grads, dinputs, dstate_in)`` once BPTT is through: the initial histories' gradients
    (what reached t < 0), the inputs' (batch first), and those of the given histories."""
    for name in net.nodes:
        key = f"init[{name}]"
        if key in net.params:
            D = net.depth[name]
            grads[key] = np.zeros_like(net.params[key]) if name in cache.given else dA[name][:D].sum(axis=1)
    dinputs = {name: transposed_copy(dA[name][net.depth[name]:]) for name in net.inputs if need_a[name]}
    dstate_in = {name: np.ascontiguousarray(np.swapaxes(dA[name][:net.depth[name]], 0, 1)) for name in cache.given}
    grads = Gradients({key: grads[key].astype(net.dtype, copy=False) for key in net.params})
    return grads, dinputs, dstate_in
