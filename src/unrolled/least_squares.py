"""A model's divergence on its training data as a sum of squares, for second-order training.

``fit`` hands a :class:`LeastSquares` to a full-batch optimizer
(``optim.LevenbergMarquardt``): the weights as one vector, the residuals ``e`` at every
scored step (``divergence = e . e``) and the products ``J^T J`` and ``J^T e`` of their
exact Jacobian (``analysis.jacobian``), built over blocks of sequences so that ``J``
itself is never held whole.
"""

from __future__ import annotations

import numpy as np

from .analysis import jacobian_and_outputs

__all__ = ["LeastSquares", "JACOBIAN_BYTES"]

JACOBIAN_BYTES = 64 << 20     # the rows of J held at once, at most


class LeastSquares:
    """``divergence(model(x), d) = sum e^2`` as a function of the weights.

    model : ``params``, ``forward``, ``backward``. x, d, lengths, inputs: the whole
    training set, checked (``inputs``: the further inputs ``forward`` reads, an open-loop
    NARX's teacher among them). divergence : one with ``residuals(y, d, lengths=)`` (a
    ``SquaredError``). ``guard(what, value)`` is called on a non-finite value.
    """

    def __init__(self, model, x, d, lengths, inputs, divergence, guard):
        self.model, self.x, self.d, self.lengths, self.inputs = model, x, d, lengths, inputs
        self.divergence, self.guard = divergence, guard
        self.names = list(model.params)
        self.size = sum(np.size(p) for p in model.params.values())      # P, the unknowns

    def weights(self):
        """Every parameter, flattened in the order of ``params``, as one float64 vector."""
        return np.concatenate([np.ravel(self.model.params[k]).astype(np.float64) for k in self.names])

    def set_weights(self, w):
        """Write the vector ``w`` back into the model's arrays (in place)."""
        at = 0
        for k in self.names:
            p = self.model.params[k]
            p[...] = w[at: at + p.size].reshape(p.shape)
            at += p.size

    def _residuals(self):
        """``(e, root)`` of the whole set (see ``SquaredError.residuals``)."""
        y, _ = self.model.forward(self.x, lengths=self.lengths, **self.inputs)
        return self.divergence.residuals(y, self.d, lengths=self.lengths)

    def sse(self):
        """The divergence at the current weights (a forward pass only)."""
        e, _ = self._residuals()
        return float(np.sum(e * e))

    def linearize(self):
        """``(sse, J^T J, J^T e, n)`` at the current weights: the divergence, the products
        of the residuals' Jacobian, and n the number of residuals (their total weight).
        One forward pass gives both the outputs and the Jacobian, a block of sequences at a time."""
        N, T, C = self.d.shape[0], self.d.shape[1], self.model.n_out
        root = self.divergence.residual_roots(self.lengths, N, T)        # (N, T)
        P = self.size
        block = max(1, JACOBIAN_BYTES // max(1, T * C * P * 8))
        JtJ, Jte, sse = np.zeros((P, P)), np.zeros(P), 0.0
        for lo in range(0, N, block):
            rows = slice(lo, min(N, lo + block))
            x = None if self.x is None else self.x[rows]
            inputs = {k: v[rows] for k, v in self.inputs.items()}
            J, y = jacobian_and_outputs(self.model, x, lengths=self.lengths[rows], **inputs)   # (n, T, C, P)
            keep = root[rows] > 0                                                            # the scored steps
            r = root[rows][keep][:, None]
            if keep.all():                        # (views, not copies: J is some P times the outputs)
                Jk, e = J.reshape(-1, C, P), y.reshape(-1, C).astype(np.float64) - self.d[rows].reshape(-1, C)
            else:
                Jk, e = J[keep], y[keep].astype(np.float64) - self.d[rows][keep]
            er = (r * e).reshape(-1)
            Jr = Jk.astype(np.float64, copy=False)
            Jr = (Jr if np.all(r == 1.0) else Jr * r[..., None]).reshape(-1, P)
            if not np.all(np.isfinite(er)):
                self.guard("loss", float(np.sum(er * er)))
            if not np.all(np.isfinite(Jr)):
                self.guard("gradient", float(np.sum(Jr * Jr)))
            JtJ += Jr.T @ Jr
            Jte += Jr.T @ er
            sse += float(er @ er)
        n = float(np.sum(root ** 2)) * N * C
        return sse, JtJ, Jte, n
