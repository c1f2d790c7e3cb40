"""Looking inside a column: gradient checks, impulse responses and gradient flow.

``gradcheck`` compares BPTT's gradients with central finite differences of the
divergence, for every parameter and for the input: what a user runs to trust a model
(and what the tests run over the product of every option).

``impulse_response`` shows how far a network remembers: how a unit input at t = 0 moves
every layer over time (finite for a TDNN, lasting for the recurrent nets).
``gradient_flow`` shows how far the gradient reaches back: the norm of dDIV/dh(t) of
every layer at every step (vanishing and exploding gradients made visible);
``layer_gradients`` gives the vectors themselves.
``jacobian`` gives the derivative of every output at every step with respect to every
parameter: what Levenberg-Marquardt (``optim.LevenbergMarquardt``) trains with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import divergences as _divergences
from .divergences import Divergence
from .engine import ForwardCache, Link, Network
from .engine.tangents import TANGENT_BYTES, forward_tangents, parameter_columns

__all__ = ["gradcheck", "GradCheck", "impulse_response", "layer_gradients", "gradient_flow", "jacobian",
           "jacobian_and_outputs", "JACOBIAN_METHODS"]

JACOBIAN_METHODS = ("auto", "forward", "reverse")


@dataclass
class GradCheck:
    """Per-array errors ``|g_bptt - g_fd| / max(|g_bptt|, |g_fd|, floor)`` (L2 norms).

    ``floor = 1e-3 * max(1, largest gradient norm of any array)``: the error is relative
    for every array whose gradient is not negligible beside the others; for one that is
    (a dead relu layer, a layer that does not reach the output) finite differences give
    rounding noise (about 1e-16 |DIV| / eps), not zero, and are compared at that floor.

    Attributes
    ----------
    errors : dict of str to float
        The relative error of each array (``"dx"`` for the input).
    bptt : dict of str to numpy.ndarray
        The BPTT gradient of each array.
    numeric : dict of str to numpy.ndarray
        The finite-difference gradient of each array.
    """

    errors: dict        # name -> relative error ("dx" for the input)
    bptt: dict          # name -> BPTT gradient
    numeric: dict       # name -> finite-difference gradient

    @property
    def max_error(self) -> float:
        """The largest of ``errors``: below ~1e-6 the gradients agree."""
        return max(self.errors.values())

    def __str__(self):
        width = max(len(k) for k in self.errors)
        return "\n".join(f"{k:<{width}}  {v:.2e}" for k, v in sorted(self.errors.items(), key=lambda kv: -kv[1]))


def gradcheck(model: Any, x: np.ndarray | None, d: np.ndarray, divergence: Divergence | Callable | str,
              *, lengths: np.ndarray | None = None,
              state: dict | None = None, eps: float = 1e-5, inputs: dict | None = None,
              check_input: bool = True) -> GradCheck:
    """Central finite differences of the divergence against BPTT, for each array.

    The differences use the fourth-order stencil
    ``(-f(p+2e) + 8 f(p+e) - 8 f(p-e) + f(p-2e)) / 12e``: its truncation error (e^4) is
    negligible at e = 1e-5, so what is left is rounding, about 1e-16 / e relative to the
    divergence, and even small gradients (deep sigmoid stacks) check to 1e-7.

    Parameters
    ----------
    model : block
        A float64 model (float32 differences are too coarse for 1e-6 checks).
    x : numpy.ndarray or None
        (N, T, n_in) inputs.
    d : numpy.ndarray
        Targets, as ``divergence`` expects them.
    divergence : callable or str
        ``div(y, d, *, lengths) -> (value, dy)`` or a name.
    lengths : numpy.ndarray, optional
        (N,) valid steps of each sequence.
    state : dict, optional
        Initial histories, as the model's ``forward`` takes them.
    eps : float
        The finite-difference step.
    inputs : dict, optional
        Further external inputs, name -> (N, T, width).
    check_input : bool
        Check the input gradient ``dx`` too.

    Returns
    -------
    GradCheck
        ``result.max_error`` below ~1e-6 means the gradients agree.
    """
    div = _divergences.get(divergence)
    inputs = dict(inputs or {})
    if np.dtype(model.dtype) != np.float64:
        raise TypeError(f"gradcheck needs a float64 model (dtype=numpy.float64), got {np.dtype(model.dtype)}")
    x = None if x is None else np.array(x, dtype=np.float64)

    def loss():
        y, _ = model.forward(x, lengths=lengths, state=state, **inputs)
        return div(y, d, lengths=lengths)[0]

    y, cache = model.forward(x, lengths=lengths, state=state, **inputs)
    _, dy = div(y, d, lengths=lengths)
    grads, dx = model.backward(dy, cache)

    numeric = {name: _central(loss, p, eps) for name, p in model.params.items()}
    bptt = dict(grads)
    if check_input and x is not None:
        numeric["dx"] = _central(loss, x, eps)
        bptt["dx"] = dx
    floor = 1e-3 * max([1.0] + [float(np.linalg.norm(g)) for g in bptt.values()])
    errors = {name: _relative(bptt[name], numeric[name], floor) for name in numeric}
    return GradCheck(errors, bptt, numeric)


def _central(loss, array, eps):
    """d loss / d array by a fourth-order central difference, perturbing ``array`` in place."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat, gflat = array.reshape(-1), grad.reshape(-1)

    def at(i, old, step):
        flat[i] = old + step
        return loss()

    for i in range(flat.size):
        old = flat[i]
        f2, f1, b1, b2 = at(i, old, 2 * eps), at(i, old, eps), at(i, old, -eps), at(i, old, -2 * eps)
        flat[i] = old
        gflat[i] = (-f2 + 8 * f1 - 8 * b1 + b2) / (12 * eps)
    return grad


def _relative(a, b, floor):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b), floor)
    return float(np.linalg.norm(a - b) / scale)


# ------------------------------------------------------------------ impulse response
def impulse_response(model: Any, steps: int, *, input_index: int = 0, amplitude: float = 1.0, state: dict | None = None,
                     inputs: dict | None = None) -> dict:
    """How a unit input at t = 0 moves every layer over ``steps`` steps.

    Two runs of one sequence: all inputs zero, and the same with ``amplitude`` at input
    ``input_index`` at t = 0. The response of a layer is the difference of its
    activations, ``response[name][t] = a_name(t) with the impulse - a_name(t) without``,
    so biases and initial states cancel. A TDNN of width N answers at t = 0 .. N and is
    exactly zero after (finite response); a recurrent net answers for as long as its
    state remembers.

    Parameters
    ----------
    model : block
        A model built on the engine (``model.network``), with n_in >= 1.
    steps : int
        T, the number of steps.
    input_index : int
        The input that gets the impulse.
    amplitude : float
        The impulse's size.
    state : dict, optional
        Initial history (batch of one), as the model's ``forward`` takes it.
    inputs : dict, optional
        Further external inputs (batch of one, (1, T, width)), the same in both runs;
        any the network reads that are not given (an open-loop NARX's teacher) are zeros.

    Returns
    -------
    dict of str to numpy.ndarray
        Layer name -> (T, size) array, for every layer of ``model.network`` (the output
        ``"y"``, the hidden ``"h1"`` ..., contexts and memories).
    """
    net = model.network
    n_in = net.n_in
    if n_in == 0:
        raise ValueError(f"{type(model).__name__} has no input x to put an impulse into (n_in = 0)")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(input_index, bool) or not isinstance(input_index, (int, np.integer)) \
            or not 0 <= input_index < n_in:
        raise ValueError(f"input_index must be in [0, {n_in}), got {input_index!r}")
    extra = {name: np.zeros((1, steps, width), dtype=net.dtype)
             for name, width in net.inputs.items() if name != "x"}
    extra.update(inputs or {})
    x = np.zeros((1, steps, n_in), dtype=net.dtype)
    _, rest = model.forward(x, state=state, **extra)
    x[0, 0, input_index] = amplitude
    _, hit = model.forward(x, state=state, **extra)
    return {name: (hit.A[name][net.depth[name]:, 0] - rest.A[name][net.depth[name]:, 0])
            for name in net.layers}


# -------------------------------------------------------------------- gradient flow
def layer_gradients(model: Any, x: np.ndarray | None, d: np.ndarray, divergence: Divergence | Callable | str, *,
                    lengths: np.ndarray | None = None, state: dict | None = None,
                    inputs: dict | None = None) -> dict[str, np.ndarray]:
    """dDIV/dh(t) of every layer at every step: dict name -> (N, T, size).

    The total derivative of the divergence with respect to each layer's activation,
    through every path BPTT takes (gradient-blocked links pass none, as in training).
    The engine keeps these inside ``backward``; they are recovered exactly, without a
    second implementation of BPTT:

    1. a twin of ``model.network`` adds to every layer an external *probe* input read
       by a fixed identity link at delay 0, ``z_l(t) += probe_l(t)``, with probe = 0; it
       shares the weight arrays and is run on exactly the inputs and given histories the
       model's pass had (read back from its cache), so it computes the same column. The
       engine's dDIV/dprobe_l(t) is then dDIV/dz_l(t) for every layer and step;
    2. each layer's dDIV/da_l(t) is what its outgoing links send back, the lecture's
       ``dh(t) = sum_links W^T dz_dst(t + delay)``, plus dDIV/dy(t) at the output layer.

    Parameters
    ----------
    model : block
        A model built on the engine (``model.network``), without gated layers.
    x : numpy.ndarray or None
        (N, T, n_in) inputs.
    d : numpy.ndarray
        Targets, as ``divergence`` expects them.
    divergence : callable or str
        ``div(y, d, *, lengths) -> (value, dy)`` or a name.
    lengths : numpy.ndarray, optional
        (N,) valid steps of each sequence.
    state : dict, optional
        Initial histories, as the model's ``forward`` takes them.
    inputs : dict, optional
        Further external inputs, name -> (N, T, width).

    Returns
    -------
    dict of str to numpy.ndarray
        Layer name -> (N, T, size) dDIV/da(t); padded steps are zero.
    """
    div = _divergences.get(divergence)
    y, cache = model.forward(x, lengths=lengths, state=state, **(inputs or {}))
    _, dy = div(y, d, lengths=lengths)
    net = model.network
    dz = _probe_dz(net, cache, dy)
    T = cache.T
    da = {name: np.zeros_like(g) for name, g in dz.items()}
    da[net.output] += np.asarray(dy, dtype=net.dtype)
    for link in net.links:
        if link.src in net.layers and link.gradient == "full" and link.delay < T:
            w = cache.weights[link.key]                                   # (dst, src)
            da[link.src][:, :T - link.delay] += dz[link.dst][:, link.delay:] @ w
    return da


def gradient_flow(model: Any, x: np.ndarray | None, d: np.ndarray, divergence: Divergence | Callable | str, *,
                  lengths: np.ndarray | None = None, state: dict | None = None,
                  inputs: dict | None = None) -> dict[str, np.ndarray]:
    """The norm of dDIV/dh(t) over t for every layer: dict name -> (T,) array.

    ``flow[name][t] = || dDIV/da_name(t) ||`` (L2 over the batch and the layer's units),
    from :func:`layer_gradients`. Read from t = T-1 backwards it shows how far the
    gradient of late errors reaches into the past: shrinking geometrically (vanishing),
    growing (exploding), or stopping at a blocked context (Elman, Jordan).

    Parameters
    ----------
    model, x, d, divergence, lengths, state, inputs
        As :func:`layer_gradients` takes them.

    Returns
    -------
    dict of str to numpy.ndarray
        Layer name -> (T,) norms.
    """
    grads = layer_gradients(model, x, d, divergence, lengths=lengths, state=state, inputs=inputs)
    return {name: np.sqrt(np.sum(np.square(g, dtype=np.float64), axis=(0, 2))) for name, g in grads.items()}


def _probe_dz(net, cache, dy):
    """dDIV/dz of every layer of ``net``, (N, T, size), for the pass that gave ``cache``."""
    if net.gated:
        raise ValueError("layer_gradients / gradient_flow do not cover gated layers (LSTM, GRU) yet")
    probes = {name: f"probe:{name}" for name in net.layers}
    inputs = dict(net.inputs)
    inputs.update({probe: net.layers[name].size for name, probe in probes.items()})
    links = list(net.links) + [Link(probe, name, weight=1.0, trainable=False) for name, probe in probes.items()]
    twin = Network(inputs, net.layers, links, net.output, dtype=net.dtype, seed=0)
    twin.params = net.params                   # the same keys: the probes are constants
    twin.constants.update(net.constants)
    N, T = cache.N, cache.T
    seqs = {name: np.swapaxes(cache.A[name][net.depth[name]:], 0, 1) for name in net.inputs}
    seqs.update({probe: np.zeros((N, T, net.layers[name].size), dtype=net.dtype)
                 for name, probe in probes.items()})
    given = {name: np.swapaxes(cache.A[name][:net.depth[name]], 0, 1) for name in cache.given}
    x = seqs.pop("x", None)
    _, twin_cache = twin.forward(x, lengths=cache.lengths, state=given, **seqs)
    _, dinputs, _ = twin.backward_full(dy, twin_cache)
    return {name: dinputs[probe] for name, probe in probes.items()}


# ------------------------------------------------------------------------- Jacobian
def jacobian(model: Any, x: np.ndarray | None, *, lengths: np.ndarray | None = None, method: str = "auto",
             **forward_kw) -> np.ndarray:
    """The derivative of every output at every valid step with respect to every parameter.

    ``J[n, t, k, p] = d y_k(n, t) / d theta_p``, shape ``(N, T, n_out, P)``: the columns
    in the order of ``model.params``, each array flattened in C order (column
    ``offset(name) + numpy.ravel_multi_index(index, shape)``; the offsets are the sizes of
    the arrays before it). Through every link, delay and recurrence, the fed-back outputs
    of a closed-loop NARX included: the dynamic derivative, exact (not finite
    differences). Rows at padded steps are zero. A gradient-blocked link (simple Elman,
    Jordan) passes no derivative, as in BPTT, so that for any ``dy``
    ``einsum("ntk,ntkp->p", dy, J)`` is the gradient ``backward(dy)`` gives.

    Parameters
    ----------
    model : block
        A model (or block) with ``params``, ``forward`` and ``backward``.
    x : numpy.ndarray or None
        (N, T, n_in) inputs, as ``model.forward`` takes them (None for a network without).
    lengths : numpy.ndarray, optional
        (N,) valid steps of each sequence.
    method : {"auto", "forward", "reverse"}
        ``"forward"`` (tangents carried through the column alongside the forward pass,
        real-time recurrent learning: about P forward passes' work, done as products over
        P x N rows), ``"reverse"`` (one BPTT pass of one sequence for each output value:
        N T n_out passes), or ``"auto"``: forward mode for a model on one engine network
        unless the parameters outnumber ``2 T n_out``; reverse for other blocks and for
        networks with gated layers (LSTM, GRU), which forward mode does not carry yet.
    **forward_kw
        What else ``model.forward`` takes (``state=``, ``teacher=``, ...).

    Returns
    -------
    numpy.ndarray
        (N, T, n_out, P), of the model's dtype.
    """
    return jacobian_and_outputs(model, x, lengths=lengths, method=method, **forward_kw)[0]


def jacobian_and_outputs(model: Any, x: np.ndarray | None, *, lengths: np.ndarray | None = None, method: str = "auto",
                         **forward_kw) -> tuple[np.ndarray, np.ndarray]:
    """:func:`jacobian` and the outputs of the same forward pass (what Levenberg-Marquardt
    needs at every iteration, for one pass instead of two).

    Parameters
    ----------
    model, x, lengths, method, **forward_kw
        As :func:`jacobian` takes them.

    Returns
    -------
    J : numpy.ndarray
        (N, T, n_out, P), as :func:`jacobian` gives it.
    y : numpy.ndarray
        (N, T, n_out) the outputs.
    """
    if method not in JACOBIAN_METHODS:
        raise ValueError(f"method must be one of {JACOBIAN_METHODS}, got {method!r}")
    params = model.params
    P = sum(value.size for value in params.values())
    y, cache = model.forward(x, lengths=lengths, **forward_kw)
    N, T, n_out = y.shape
    columns = _network_columns(model, cache)
    if method == "forward" and columns is None:
        raise ValueError(f"method='forward' needs a model on one engine network; {type(model).__name__} is "
                         "not: use method='reverse' or 'auto'")
    gated = columns is not None and (model if isinstance(model, Network) else model.network).gated
    if method == "forward" and gated:
        raise ValueError("method='forward' has no tangents for gated layers (LSTM, GRU) yet: "
                         "use method='reverse' or 'auto'")
    if method == "auto":
        method = "forward" if columns is not None and not gated and P <= 2 * T * n_out else "reverse"
    out_lengths = _output_lengths(cache, lengths, forward_kw, N, T)
    if method == "forward":
        J = _forward_jacobian(model if isinstance(model, Network) else model.network, cache, columns, P)
    else:
        J = _reverse_jacobian(model, x, lengths, forward_kw, y.shape, P, out_lengths)
    J[~(np.arange(T)[None, :] < out_lengths[:, None])] = 0.0
    return J, y


def _output_lengths(cache, lengths, forward_kw, N, T):
    """The valid output steps of each sequence: a decoder's own (``decoder_lengths``), else
    those the pass used (its cache's), else ``lengths``, else T."""
    for value in (forward_kw.get("decoder_lengths"), getattr(cache, "lengths", None), lengths):
        if value is not None and np.shape(value) == (N,):
            return np.minimum(np.asarray(value, dtype=np.int64), T)
    return np.full(N, T)


def _network_columns(model, cache):
    """``{network key: (first column, size)}`` when ``model`` runs on one engine network
    (``model.network``, or the model itself) whose arrays are those of ``model.params``
    (under their names or others: a NARX in open loop names ``W[y->h1@k]`` otherwise);
    None for other blocks."""
    net = model if isinstance(model, Network) else getattr(model, "network", None)
    if not isinstance(net, Network) or not isinstance(cache, ForwardCache):
        return None
    by_array = {id(value): column for value, column in
                zip(model.params.values(), parameter_columns(model.params).values())}
    if set(by_array) != {id(value) for value in net.params.values()}:
        return None
    return {name: by_array[id(value)] for name, value in net.params.items()}


def _forward_jacobian(net, cache, columns, P):
    """Forward mode: the tangents of blocks of columns, sized to ``TANGENT_BYTES``."""
    N, T = cache.N, cache.T
    per_column = sum(a.size for a in cache.A.values()) * np.dtype(net.dtype).itemsize * 3
    block = max(1, min(P, TANGENT_BYTES // max(per_column, 1)))
    J = np.empty((N, T, net.n_out, P), dtype=net.dtype)
    for lo in range(0, P, block):
        hi = min(P, lo + block)
        J[..., lo:hi] = forward_tangents(net, cache, columns, lo, hi).swapaxes(0, 1)
    return J


def _reverse_jacobian(model, x, lengths, forward_kw, shape, P, out_lengths):
    """Reverse mode: one BPTT pass of one sequence per output value (unit dy)."""
    N, T, n_out = shape
    J = np.zeros((N, T, n_out, P), dtype=model.dtype)
    for n in range(N):
        rows = slice(n, n + 1)
        kw = {name: _rows_of(value, rows, N) for name, value in forward_kw.items()}
        _, cache = model.forward(None if x is None else np.asarray(x)[rows],
                                 lengths=None if lengths is None else np.asarray(lengths)[rows], **kw)
        if isinstance(cache, ForwardCache):
            cache.input_grads = False             # the parameters' gradients are all it reads
        dy = np.zeros((1, T, n_out), dtype=model.dtype)
        for t in range(int(out_lengths[n])):
            for k in range(n_out):
                dy[0, t, k] = 1.0
                grads, _ = model.backward(dy, cache)
                dy[0, t, k] = 0.0
                J[n, t, k] = np.concatenate([np.ravel(grads[name]) for name in model.params])
    return J


def _rows_of(value, rows, N):
    """One sequence's part of a keyword argument of ``forward``: arrays (and dicts of them,
    a state) with N first are sliced; anything else is passed as it is."""
    if isinstance(value, dict):
        return {k: _rows_of(v, rows, N) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == N:
        return value[rows]
    return value
