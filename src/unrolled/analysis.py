"""Looking inside a trained column: gradient checks (and, later, impulse responses).

``gradcheck`` compares BPTT's gradients with central finite differences of the
divergence, for every parameter and for the input: what a user runs to trust a model
(and what the tests run over the product of every option).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import divergences as _divergences

__all__ = ["gradcheck", "GradCheck"]


@dataclass
class GradCheck:
    """Per-array errors ``|g_bptt - g_fd| / max(|g_bptt|, |g_fd|, floor)`` (L2 norms).

    ``floor = 1e-3 * max(1, largest gradient norm of any array)``: the error is relative
    for every array whose gradient is not negligible beside the others; for one that is
    (a dead relu layer, a layer that does not reach the output) finite differences give
    rounding noise (about 1e-16 |DIV| / eps), not zero, and are compared at that floor.
    """

    errors: dict        # name -> relative error ("dx" for the input)
    bptt: dict          # name -> BPTT gradient
    numeric: dict       # name -> finite-difference gradient

    @property
    def max_error(self):
        return max(self.errors.values())

    def __str__(self):
        width = max(len(k) for k in self.errors)
        return "\n".join(f"{k:<{width}}  {v:.2e}" for k, v in sorted(self.errors.items(), key=lambda kv: -kv[1]))


def gradcheck(model, x, d, divergence, *, lengths=None, state=None, eps=1e-5, inputs=None,
              check_input=True):
    """Central finite differences of the divergence against BPTT, for each array.

    The differences use the fourth-order stencil
    ``(-f(p+2e) + 8 f(p+e) - 8 f(p-e) + f(p-2e)) / 12e``: its truncation error (e^4) is
    negligible at e = 1e-5, so what is left is rounding, about 1e-16 / e relative to the
    divergence, and even small gradients (deep sigmoid stacks) check to 1e-7.

    ``model`` should be float64 (float32 differences are too coarse for 1e-6 checks).
    x (N, T, n_in), d as ``divergence`` expects. Returns a :class:`GradCheck`;
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
