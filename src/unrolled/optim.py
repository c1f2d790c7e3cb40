"""Gradient-descent optimizers, formula for formula as ``torch.optim``.

An optimizer updates a dict of parameter arrays IN PLACE (they are the
model's live weights)::

    opt.step(params, grads)     # params, grads: dict[str, ndarray], same keys

State (momentum buffers, moment estimates, step counts) is kept per
parameter name, created lazily with the parameter's dtype and shape;
``opt.reset()`` clears it. In every optimizer, weight decay first adds
``wd * p`` to the gradient: ``g <- g + wd p`` (L2 regularisation, as torch).

Also ``clip_grad_norm(grads, max_norm)`` (global L2 norm clipping) and the
registry ``get(name, **kw)``.
"""

from __future__ import annotations

import math

import numpy as np

from .engine import backend

__all__ = ["Optimizer", "SGD", "Adam", "Adagrad", "RMSprop", "clip_grad_norm", "get"]


def _check(name, value, ok, expected):
    if not ok(value):
        raise ValueError(f"expected {name} {expected}, got {value!r}")


def _positive(name, value):
    _check(name, value, lambda v: v > 0 and math.isfinite(v), "> 0")


def _non_negative(name, value):
    _check(name, value, lambda v: v >= 0 and math.isfinite(v), ">= 0")


def _unit(name, value):
    _check(name, value, lambda v: 0 <= v < 1, "in [0, 1)")


class Optimizer:
    """Base class: ``step(params, grads)`` updates every ``params[k]`` in place.

    params: dict name -> floating ndarray (any shape); grads: dict with the
    same keys, arrays of the same shapes. Subclasses implement
    ``_update(p, g, state)``: ``state`` is the parameter's dict (empty at its
    first step, ``state["step"]`` is the 1-based step count), ``g`` already
    includes weight decay and must not be mutated in place.
    """

    def __init__(self, lr, weight_decay):
        _positive("lr", lr)
        _non_negative("weight_decay", weight_decay)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.state = {}

    def reset(self):
        """Forget all state (moments, buffers, step counts)."""
        self.state = {}

    def step(self, params, grads):
        """One update of every parameter, in place. Returns None."""
        if set(params) != set(grads):
            missing, extra = sorted(set(params) - set(grads)), sorted(set(grads) - set(params))
            raise ValueError(
                f"expected grads with the keys of params; missing {missing}, unexpected {extra}"
            )
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                got = getattr(p, "dtype", type(p).__name__)
                raise TypeError(f"expected params[{name!r}] to be a floating ndarray, got {got}")
            g = np.asarray(grads[name])
            if g.shape != p.shape:
                raise ValueError(f"expected grads[{name!r}] of shape {p.shape}, got {g.shape}")
            g = g.astype(p.dtype, copy=False)
            if self.weight_decay:
                g = g + self.weight_decay * p
            state = self.state.setdefault(name, {"step": 0})
            state["step"] += 1
            self._update(p, g, state)

    def _update(self, p, g, state):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

        b <- g                  (first step)     b <- mu b + g      (later)
        p <- p - lr * g                          (momentum = 0)
        p <- p - lr * b                          (momentum)
        p <- p - lr * (g + mu b)                 (nesterov)
    """

    def __init__(self, lr=1e-3, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        _non_negative("momentum", momentum)
        if nesterov and momentum <= 0:
            raise ValueError(f"expected momentum > 0 with nesterov=True, got {momentum!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _update(self, p, g, state):
        mu = self.momentum
        if mu:
            if "buf" not in state:
                state["buf"] = g.copy()
            else:
                state["buf"] *= mu
                state["buf"] += g
            g = g + mu * state["buf"] if self.nesterov else state["buf"]
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba), bias-corrected, L2 weight decay as torch.optim.Adam.

        m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
        p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        if len(betas) != 2:
            raise ValueError(f"expected betas = (beta1, beta2), got {betas!r}")
        _unit("beta1", betas[0])
        _unit("beta2", betas[1])
        _positive("eps", eps)
        self.betas, self.eps = (float(betas[0]), float(betas[1])), float(eps)

    def _update(self, p, g, state):
        b1, b2 = self.betas
        t = state["step"]
        if t == 1:
            state["m"], state["v"] = np.zeros_like(p), np.zeros_like(p)
        m, v = state["m"], state["v"]
        kernels = _compiled()
        if kernels is not None and p.flags.c_contiguous and g.flags.c_contiguous and g.dtype == p.dtype:
            # the same arithmetic in one compiled pass instead of a dozen NumPy calls (a small
            # network's step spent as long in Adam as in its forward pass)
            f = p.dtype.type
            kernels.adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), f(1 - b1), f(b2),
                                f(1 - b2), f(math.sqrt(1 - b2**t)), f(self.eps), f(self.lr / (1 - b1**t)))
            return
        m += (1 - b1) * (g - m)  # = b1 m + (1 - b1) g, as torch's lerp
        v *= b2
        v += (1 - b2) * g * g
        denom = np.sqrt(v) / math.sqrt(1 - b2**t) + self.eps
        p -= (self.lr / (1 - b1**t)) * (m / denom)


class Adagrad(Optimizer):
    """Adagrad: per-component step lr / sqrt(sum of squared gradients).

        s <- s + g^2            p <- p - lr * g / (sqrt(s) + eps)
    """

    def __init__(self, lr=1e-2, eps=1e-10, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        _positive("eps", eps)
        self.eps = float(eps)

    def _update(self, p, g, state):
        if "sum" not in state:
            state["sum"] = np.zeros_like(p)
        state["sum"] += g * g
        p -= self.lr * (g / (np.sqrt(state["sum"]) + self.eps))


class RMSprop(Optimizer):
    """RMSprop (uncentered), optional momentum:

        a <- alpha a + (1 - alpha) g^2          r = g / (sqrt(a) + eps)
        p <- p - lr * r                          (momentum = 0)
        b <- mu b + r,  p <- p - lr * b          (momentum, b starts at 0)
    """

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        _unit("alpha", alpha)
        _positive("eps", eps)
        _non_negative("momentum", momentum)
        self.alpha, self.eps, self.momentum = float(alpha), float(eps), float(momentum)

    def _update(self, p, g, state):
        if "sq" not in state:
            state["sq"] = np.zeros_like(p)
        a = state["sq"]
        a *= self.alpha
        a += (1 - self.alpha) * g * g
        r = g / (np.sqrt(a) + self.eps)
        if self.momentum:
            if "buf" not in state:
                state["buf"] = np.zeros_like(p)
            state["buf"] *= self.momentum
            state["buf"] += r
            r = state["buf"]
        p -= self.lr * r


def _compiled():
    """The compiled kernels (``unrolled.engine.kernels.compiled``) where the engine's default
    backend is the fast one, else None (the NumPy formulas: the same numbers, more calls)."""
    if backend.default_backend() == "numpy" or not backend.numba_installed():
        return None
    return backend.compiled_kernels()


def clip_grad_norm(grads, max_norm):
    """Scale all gradients together so their global L2 norm is at most max_norm.

        total = sqrt(sum_k ||g_k||^2)
        g_k <- g_k * min(1, max_norm / (total + 1e-6))      (as torch)

    grads: dict name -> ndarray. Returns (clipped, total): a new dict of new
    arrays (the input is not mutated) and the norm before clipping (float).
    ValueError for a gradient that holds inf or nan.
    """
    _positive("max_norm", max_norm)
    norms = [np.linalg.norm(np.ravel(g)) for g in grads.values()]
    total = float(np.linalg.norm(norms)) if norms else 0.0
    if not math.isfinite(total):
        bad = next(k for k, n in zip(grads, norms) if not np.isfinite(n))
        raise ValueError(f"grads[{bad!r}] holds non-finite values: clipping would spread them to every gradient "
                         "(a diverged step; fit refuses it before clipping)")
    coef = min(1.0, max_norm / (total + 1e-6))
    clipped = {k: np.asarray(g) * coef for k, g in grads.items()}
    return clipped, total


_REGISTRY = {"sgd": SGD, "adam": Adam, "adagrad": Adagrad, "rmsprop": RMSprop}


def names():
    """The optimizers ``get`` knows by name, sorted."""
    return sorted(_REGISTRY)


def get(name, **kw):
    """An optimizer by name ("sgd", "adam", "adagrad", "rmsprop") built with
    keyword hyperparameters ``kw``; an Optimizer instance (no kw) unchanged."""
    if isinstance(name, Optimizer) and not kw:
        return name
    if not isinstance(name, str):
        raise TypeError(f"expected an optimizer name, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"expected an optimizer name in {names()}, got {name!r}")
    return _REGISTRY[name](**kw)
