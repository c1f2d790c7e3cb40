"""Activation functions, keyed by name, with derivatives written from cached values.

Each activation ``f`` maps a pre-activation ``z`` (N, ..., H) to ``a = f(z)``. Its
backward maps ``da = dDIV/da`` to ``dz = dDIV/dz`` using the forward values ``a``
(and ``z`` where needed), so no activation is ever recomputed:

=========  ======================  ==========================================
name       a = f(z)                dz from da
=========  ======================  ==========================================
tanh       tanh(z)                 da * (1 - a^2)
sigmoid    1 / (1 + e^-z)          da * a * (1 - a)
relu       max(z, 0)               da * [z > 0]
identity   z                       da
softmax    e^z / sum e^z           a * (da - <da, a>)   (full Jacobian: vector valued)
=========  ======================  ==========================================

The softmax Jacobian is ``diag(a) - a a^T``; its product with ``da`` is the last row.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ACTIVATIONS", "Activation", "get"]


class Activation:
    """One activation: ``forward(z, out=None)`` and ``backward(da, a, z)``.

    ``elementwise`` is False for softmax, whose Jacobian is not diagonal.
    """

    def __init__(self, name, forward, backward, elementwise=True):
        self.name = name
        self.forward = forward
        self.backward = backward
        self.elementwise = elementwise

    def __repr__(self):
        return f"Activation({self.name!r})"


def _tanh(z, out=None):
    return np.tanh(z, out=out)


def _tanh_back(da, a, z):
    return da * (1.0 - a * a)


def _sigmoid(z, out=None):
    # 1 / (1 + exp(-z)) written so that exp never overflows: for z < 0 use
    # exp(z) / (1 + exp(z)).
    e = np.exp(-np.abs(z))
    r = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)
    if out is None:
        return r
    out[...] = r
    return out


def _sigmoid_back(da, a, z):
    return da * a * (1.0 - a)


def _relu(z, out=None):
    return np.maximum(z, 0, out=out)


def _relu_back(da, a, z):
    return da * (z > 0)


def _identity(z, out=None):
    if out is None:
        return z.copy()
    out[...] = z
    return out


def _identity_back(da, a, z):
    return da


def _softmax(z, out=None):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    if out is None:
        return e
    out[...] = e
    return out


def _softmax_back(da, a, z):
    # J^T da with J = diag(a) - a a^T  (J is symmetric)
    return a * (da - np.sum(da * a, axis=-1, keepdims=True))


ACTIVATIONS = {
    "tanh": Activation("tanh", _tanh, _tanh_back),
    "sigmoid": Activation("sigmoid", _sigmoid, _sigmoid_back),
    "relu": Activation("relu", _relu, _relu_back),
    "identity": Activation("identity", _identity, _identity_back),
    "softmax": Activation("softmax", _softmax, _softmax_back, elementwise=False),
}


def get(name):
    """The activation called ``name`` (one of ``ACTIVATIONS``)."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}: expected one of {sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]
