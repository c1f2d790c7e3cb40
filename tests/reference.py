"""Slow, obviously right references kept as test oracles.

``reference_forward`` is the column's definition read literally: for t = 0 .. T-1, for
every layer in an order that respects the delay-0 links, z = sum_links W a_src(t-d) + b,
a = f(z). No schedule, no hoisting, one sequence at a time, lengths by truncation.
"""

import numpy as np

from unrolled import activations


def delay0_order(net):
    order, placed = [], set()
    while len(order) < len(net.layers):
        for name in net.layers:
            if name in placed:
                continue
            if all(l.src in placed or l.src in net.inputs or l.delay > 0
                   for l in net.links if l.dst == name):
                order.append(name)
                placed.add(name)
    return order


def reference_forward(net, x, lengths=None, state=None, **inputs):
    """y (N, T, n_out) computed one sequence and one step at a time."""
    seqs = dict(inputs)
    if x is not None:
        seqs["x"] = x
    N, T = next(iter(seqs.values())).shape[:2]
    lengths = np.full(N, T) if lengths is None else np.asarray(lengths)
    state = state or {}
    order = delay0_order(net)
    y = np.zeros((N, T, net.n_out))
    for n in range(N):
        hist = {}  # node -> dict t -> vector, t may be negative

        def value(node, t):
            if t >= 0:
                return hist[node][t]
            D = net.depth[node]
            if node in state:
                return state[node][n][D + t]
            key = f"init[{node}]"
            if key in net.params:
                return net.params[key][D + t]
            return np.zeros(net.node_size(node))

        for name in net.inputs:
            hist[name] = {t: seqs[name][n, t] for t in range(lengths[n])}
        for name in net.layers:
            hist[name] = {}
        for t in range(lengths[n]):
            for name in order:
                layer = net.layers[name]
                z = np.zeros(layer.size)
                if f"b[{name}]" in net.params:
                    z = z + net.params[f"b[{name}]"]
                for link in net.links:
                    if link.dst == name:
                        z = z + net.weight(link) @ value(link.src, t - link.delay)
                hist[name][t] = activations.get(layer.activation).forward(z)
            y[n, t] = hist[net.output][t]
    return y
