"""Gated layers: the LSTM and GRU cells as layer kinds of the column.

A gated layer ``h`` of size H is a ``Layer(H, cell="lstm" | "gru")``. Like every layer it
sums its incoming links, but into k*H pre-activations, one block of H per gate (k = 4 for
the LSTM, 3 for the GRU), so every link into it carries a ``(k*H, src size)`` weight, and
its bias ``b[h]`` is k*H long. Its activation is the cell below instead of ``f(z)``; what it
sends along its outgoing links is h(t), H wide, as any layer. It always reads its own
past, so it always runs in a time loop, and it must have its own recurrent link
``h -> h @1`` (PyTorch's W_hh).

**LSTM** (PyTorch's ``nn.LSTM``, gates in its order i, f, g, o)::

{LSTM_EQUATIONS}
In the column, ``W_i* x_t`` is the sum over every link into h from elsewhere (the input,
layers below, skips, other delays), ``W_h* h_{t-1}`` is ``W[h->h@1]``, and the two biases
are one, ``b[h] = b_ih + b_hh`` (4H). The cell state c is a node of its own, ``h.c``
(size H, history depth 1), carried beside h: ``init[h.c]`` is its learned c(-1) (with
``init[h]`` the learned h(-1)), ``state["h.c"]`` gives or continues it, as ``state["h"]``
does h. No link can read ``h.c``.

**GRU** (PyTorch's ``nn.GRU``, gates r, z, n; the reset gate applied after the recurrent
product, as PyTorch and cuDNN do)::

{GRU_EQUATIONS}
Again ``W_i*`` is every link from elsewhere and ``W_h*`` is ``W[h->h@1]`` (3H, H). The
n-block of that link's product is kept apart, since r multiplies it: ``b[h]`` (3H) is
``[b_ir + b_hr, b_iz + b_hz, b_in]`` and ``b[h.hn]`` (H) is b_hn.

**Buffers.** A gated layer's pre-activations ``Z[h]`` are (T, N, 4H): the LSTM's
[i, f, g, o] before their sigmoids and tanh; the GRU's [r, z, n_x, n_h] with
n_x = W_in x + b_in (all links but its own recurrence) and n_h = W_hn h(t-1) + b_hn, so
``n = tanh(n_x + r * n_h)``. The gates are recomputed from ``Z`` in BPTT (elementwise,
cheap), not stored. ``link_columns`` says which columns of ``Z`` a link's rows add to.

**Backends.** ``forward_step`` and ``backward_step`` are the NumPy reference
(``engine.reference``, ``backend="numpy"``); the compiled loops (``engine.fast`` with
``kernels.compiled``, ``backend="fast"``) run the same steps, everything from outside a
gated layer's recurrence hoisted into one product over all steps (x W_ih for every t), so a
step does only h(t-1) W_hh and the fused gates, and BPTT pools every weight gradient into one
product. (A network with a gated layer runs step by step, never as one whole-pass program:
``engine.program`` lays out plain layers only.)
"""

from __future__ import annotations

import numpy as np

from .. import activations

LSTM_EQUATIONS = """\
    i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigma(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)
"""

GRU_EQUATIONS = """\
    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}
"""

__doc__ = __doc__.replace("{LSTM_EQUATIONS}", LSTM_EQUATIONS).replace("{GRU_EQUATIONS}", GRU_EQUATIONS)

__all__ = ["CELLS", "LSTM_EQUATIONS", "GRU_EQUATIONS", "gates", "z_width", "link_columns", "cell_node", "forward_step", "backward_step"]

CELLS = ("lstm", "gru")
_GATES = {None: 1, "lstm": 4, "gru": 3}

_sigmoid = activations.get("sigmoid").forward


def gates(cell):
    """k: the number of H-blocks a link into a layer of this ``cell`` carries (1 plain)."""
    return _GATES[cell]


def z_width(layer):
    """The width of a layer's pre-activation buffer ``Z``: H plain, 4H gated."""
    return layer.size if layer.cell is None else 4 * layer.size


def cell_node(name):
    """The name of an LSTM layer's cell-state node: ``h1`` -> ``h1.c``."""
    return f"{name}.c"


def link_columns(layer, link):
    """The columns of the destination's ``Z`` a link's product rows add to: all of them
    (plain, LSTM), the first 3H (GRU, a link from elsewhere) or [r, z, n_h] (the GRU's own
    recurrence ``h -> h @1``)."""
    if layer.cell != "gru":
        return slice(None)
    H = layer.size
    if link.src == link.dst and link.delay == 1:
        return np.r_[0:2 * H, 3 * H:4 * H]
    return slice(0, 3 * H)


def forward_step(cell, z, h_prev, c_prev, h_out, c_out):
    """One step of a gated layer: ``z`` (N, 4H) its pre-activations (every link and bias
    in), ``h_prev`` (N, H) h(t-1), ``c_prev`` c(t-1) (LSTM); writes h(t) into ``h_out``
    and, for the LSTM, c(t) into ``c_out``."""
    H = h_out.shape[-1]
    if cell == "lstm":
        i, f, o = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H]), _sigmoid(z[:, 3 * H:])
        g = np.tanh(z[:, 2 * H:3 * H])
        c_out[...] = f * c_prev + i * g
        h_out[...] = o * np.tanh(c_out)
    else:
        r, u = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H])
        n = np.tanh(z[:, 2 * H:3 * H] + r * z[:, 3 * H:])
        h_out[...] = (1.0 - u) * n + u * h_prev


def backward_step(cell, dh, z, h_prev, c, c_prev, dc):
    """BPTT through one step of a gated layer.

    dh (N, H): dDIV/dh(t), everything that reached h(t) (its outgoing links, later
    steps); z (N, 4H) the step's pre-activations; h_prev: h(t-1); c, c_prev, dc: c(t),
    c(t-1) and dDIV/dc(t) from later steps and the final state (LSTM; None for the GRU).

    Returns ``(dz, dh_prev, dc_prev)``: dDIV/dz (N, 4H) in the layout of ``z``, and what
    goes back to h(t-1) and c(t-1) besides the links (the GRU's ``z * h(t-1)``, the LSTM's
    ``f * c(t-1)``; None where there is none).
    """
    H = dh.shape[-1]
    if cell == "lstm":
        i, f, o = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H]), _sigmoid(z[:, 3 * H:])
        g = np.tanh(z[:, 2 * H:3 * H])
        tc = np.tanh(c)
        dc = dc + dh * o * (1.0 - tc * tc)                 # h = o tanh(c)
        dz = np.concatenate([dc * g * i * (1.0 - i),          # c = f c_prev + i g
                             dc * c_prev * f * (1.0 - f),
                             dc * i * (1.0 - g * g),
                             dh * tc * o * (1.0 - o)], axis=-1)
        return dz, None, dc * f
    r, u = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H])
    n = np.tanh(z[:, 2 * H:3 * H] + r * z[:, 3 * H:])
    dn = dh * (1.0 - u) * (1.0 - n * n)                      # h = (1 - u) n + u h_prev
    dz = np.concatenate([dn * z[:, 3 * H:] * r * (1.0 - r),    # n = tanh(n_x + r n_h)
                         dh * (h_prev - n) * u * (1.0 - u),
                         dn,
                         dn * r], axis=-1)
    return dz, dh * u, None
