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

Second order, for sums of squares: :class:`LevenbergMarquardt` (MATLAB's ``trainlm``),
with ``bayesian=True`` Bayesian regularisation (``trainbr``). It takes whole-batch steps
from the Jacobian of the residuals (``fit`` gives it them: ``step_full(problem)``).

Regularisers for first-order training, ``fit(..., regularizer=)``: :class:`WeightDecay`
and :class:`WeightElimination`, scaled so that their strength means the same whatever
the number and length of the sequences.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .engine import backend

if TYPE_CHECKING:
    from .least_squares import LeastSquares

__all__ = ["Optimizer", "SGD", "Adam", "Adagrad", "RMSprop", "LevenbergMarquardt", "WeightDecay",
           "WeightElimination", "clip_grad_norm", "get", "names"]


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

    Parameters
    ----------
    lr : float
        The learning rate (> 0).
    weight_decay : float
        L2 weight decay added to the gradient, ``g + weight_decay * p`` (>= 0).
    """

    def __init__(self, lr: float, weight_decay: float) -> None:
        _positive("lr", lr)
        _non_negative("weight_decay", weight_decay)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.state = {}

    def reset(self) -> None:
        """Forget all state (moments, buffers, step counts)."""
        self.state = {}

    def step(self, params: dict, grads: dict) -> None:
        """One update of every parameter, in place.

        Parameters
        ----------
        params : dict of str to numpy.ndarray
            The live parameters (``model.params``), updated in place.
        grads : dict of str to numpy.ndarray
            Their gradients, the same keys and shapes (not mutated).
        """
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

    Parameters
    ----------
    lr : float
        The learning rate.
    momentum : float
        mu, in [0, 1).
    nesterov : bool
        Nesterov's momentum (needs momentum > 0).
    weight_decay : float
        L2 weight decay added to the gradient.
    """

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
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

    Parameters
    ----------
    lr : float
        The learning rate.
    betas : tuple of float
        (b1, b2), the moments' decay rates, each in [0, 1).
    eps : float
        Added to the denominator.
    weight_decay : float
        L2 weight decay added to the gradient.
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
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

    Parameters
    ----------
    lr : float
        The learning rate.
    eps : float
        Added to the denominator.
    weight_decay : float
        L2 weight decay added to the gradient.
    """

    def __init__(self, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0) -> None:
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

    Parameters
    ----------
    lr : float
        The learning rate.
    alpha : float
        The squared gradients' decay rate, in [0, 1).
    eps : float
        Added to the denominator.
    momentum : float
        mu, in [0, 1).
    weight_decay : float
        L2 weight decay added to the gradient.
    """

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
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


class LevenbergMarquardt:
    r"""Levenberg-Marquardt on a sum of squares; ``bayesian=True``: Bayesian regularisation.

    Full batch and second order, as MATLAB's ``trainlm`` / ``trainbr`` and pyrenn train
    the classic dynamic nets. One ``fit`` epoch is one iteration. With ``e`` the residuals
    at every scored step (``SquaredError``: the divergence is ``e . e``, each ``e`` the
    output's error times the square root of its step's weight / N) and ``J = de/dw`` their
    exact Jacobian (``analysis.jacobian``, through every recurrence)::

        repeat:
            dw = -(beta J^T J + (alpha + mu) I)^-1 (beta J^T e + alpha w)
            F(w) = beta E_D(w) + alpha E_W(w),   E_D = e . e,   E_W = w . w
            F(w + dw) < F(w):  accept,  mu <- mu * mu_decrease,  end of the iteration
            otherwise:                   mu <- mu * mu_increase   (mu > mu_max: converged)

    Without ``bayesian``, alpha = 0 and beta = 1: plain LM, ``dw = -(J^T J + mu I)^-1 J^T e``.

    **Bayesian regularisation** (MacKay 1992; Foresee and Hagan 1997, as ``trainbr``):
    the weights have a Gaussian prior of precision ``2 alpha`` and the errors a noise of
    precision ``2 beta``; both are re-estimated at the start of every iteration (after
    the first, which starts from alpha = 0, beta = 1) from the effective number of
    parameters ``gamma`` that the data determine::

        gamma = P - alpha tr((beta J^T J + alpha I)^-1)
        alpha = gamma / (2 E_W),    beta = (n - gamma) / (2 E_D)

    with ``n`` the number of scored residuals (their total weight) and ``P`` of
    parameters; every parameter (weights, biases, learned histories) is under the prior.
    No validation split is needed: the prior, not the stopping epoch, keeps the net small.
    ``fit`` records ``mu``, ``sse`` (E_D, the divergence), ``ssw`` (E_W) and, when
    Bayesian, ``gamma``, ``alpha`` and ``beta`` in ``History.logs`` every epoch.

    Parameters
    ----------
    mu : float
        The damping to start with (> 0).
    mu_decrease : float
        The damping's factor after an accepted step, in (0, 1).
    mu_increase : float
        The damping's factor after a refused step (> 1).
    mu_max : float
        The damping at which the iteration has converged (no step lowers F) and ``fit``
        stops.
    bayesian : bool
        Re-estimate alpha and beta as above (``trainbr``); False: ``trainlm``.
    """

    full_batch = True
    lr = None          # (no learning rate: the damping mu takes its place)

    def __init__(self, mu: float = 1e-3, mu_decrease: float = 0.1, mu_increase: float = 10.0,
                 mu_max: float = 1e10, bayesian: bool = False) -> None:
        _positive("mu", mu)
        _check("mu_decrease", mu_decrease, lambda v: 0 < v < 1, "in (0, 1)")
        _check("mu_increase", mu_increase, lambda v: v > 1 and math.isfinite(v), "> 1")
        _check("mu_max", mu_max, lambda v: v > mu and math.isfinite(v), f"> mu = {mu}")
        if not isinstance(bayesian, (bool, np.bool_)):
            raise TypeError(f"bayesian must be True or False, got {bayesian!r}")
        self.mu0, self.mu_decrease, self.mu_increase, self.mu_max = float(mu), float(mu_decrease), \
            float(mu_increase), float(mu_max)
        self.bayesian = bool(bayesian)
        self.reset()

    def __repr__(self):
        return (f"LevenbergMarquardt(mu={self.mu0}, mu_decrease={self.mu_decrease}, mu_increase={self.mu_increase}, "
                f"mu_max={self.mu_max}, bayesian={self.bayesian})")

    def reset(self) -> None:
        """Back to the first iteration: mu = the starting damping, alpha = 0, beta = 1."""
        self.state = {"lm": {"step": 0, "mu": np.array(self.mu0), "alpha": np.array(0.0), "beta": np.array(1.0),
                             "gamma": np.array(np.nan)}}

    def step(self, params: dict, grads: dict) -> None:
        """Refused: Levenberg-Marquardt steps from the Jacobian (``step_full``), through ``fit``.

        Parameters
        ----------
        params, grads : dict of str to numpy.ndarray
            As ``Optimizer.step`` takes them.

        Raises
        ------
        TypeError
            Always, saying how to use it.
        """
        raise TypeError("LevenbergMarquardt takes whole-batch steps from the Jacobian, not from a gradient: "
                        "use it through fit(model, x, d, optimizer=LevenbergMarquardt(), divergence=SquaredError())")

    def step_full(self, problem: LeastSquares) -> dict:
        """One iteration on ``problem``; the weights are left at the accepted point.

        Parameters
        ----------
        problem : unrolled.least_squares.LeastSquares
            The sum of squares: ``weights()``, ``set_weights(w)``,
            ``linearize() -> (e, JtJ, Jte, n)``, ``sse()``.

        Returns
        -------
        dict
            The logs: ``sse``, ``ssw``, ``mu`` (and ``gamma``, ``alpha``, ``beta``) and
            ``converged``.
        """
        st = self.state["lm"]
        w = problem.weights()
        sse, JtJ, Jte, n = problem.linearize()
        P = len(w)
        alpha, beta = float(st["alpha"]), float(st["beta"])
        ssw = float(w @ w)
        if self.bayesian and st["step"] > 0:
            alpha, beta, gamma = _evidence(JtJ, alpha, beta, sse, ssw, n, P)
            st["gamma"] = np.array(gamma)
        elif self.bayesian:
            st["gamma"] = np.array(float(P))          # alpha = 0: every parameter is free
        F = beta * sse + alpha * ssw
        gradient = beta * Jte + alpha * w
        H = beta * JtJ
        mu, converged = float(st["mu"]), True
        while mu <= self.mu_max:
            try:
                dw = -np.linalg.solve(H + (alpha + mu) * np.eye(P), gradient)
            except np.linalg.LinAlgError:
                dw = None
            if dw is not None and np.all(np.isfinite(dw)):
                trial = w + dw
                problem.set_weights(trial)
                sse_new = problem.sse()
                ssw_new = float(trial @ trial)
                # (a decrease beyond rounding: F and the trial's value come from two passes)
                if math.isfinite(sse_new) and beta * sse_new + alpha * ssw_new < F - 1e-12 * abs(F):
                    sse, ssw, converged = sse_new, ssw_new, False
                    mu = max(mu * self.mu_decrease, 1e-20)
                    break
            mu *= self.mu_increase
        if converged:
            problem.set_weights(w)          # no step lowered F: the weights stay where they were
        st.update(step=st["step"] + 1, mu=np.array(min(mu, self.mu_max)), alpha=np.array(alpha),
                  beta=np.array(beta))
        logs = {"sse": sse, "ssw": ssw, "mu": float(st["mu"]), "converged": converged}
        if self.bayesian:
            logs.update(gamma=float(st["gamma"]), alpha=alpha, beta=beta)
        return logs


def _evidence(JtJ, alpha, beta, sse, ssw, n, P):
    """MacKay's re-estimates ``(alpha, beta, gamma)`` at the current weights (see
    :class:`LevenbergMarquardt`): gamma from the eigenvalues of beta J^T J."""
    eig = np.clip(np.linalg.eigvalsh(JtJ), 0.0, None)
    gamma = float(P - alpha * np.sum(1.0 / (beta * eig + alpha))) if alpha > 0 else float(P)
    gamma = min(max(gamma, 0.0), P, n - 1e-9 if n > 1 else n)      # (n - gamma > 0: beta stays finite)
    alpha = gamma / (2 * ssw) if ssw > 0 else 1.0
    beta = (n - gamma) / (2 * sse) if sse > 0 else beta
    return alpha, beta, gamma


class WeightDecay:
    r"""L2 penalty on the link weights, ``strength/2 * sum W^2`` per scored step.

    ``fit(..., regularizer=WeightDecay(1e-3))`` minimises
    ``divergence + s * strength/2 * sum_links ||W||^2`` where ``s`` is the number of steps
    the divergence scores per sequence (its per-step weights summed, over N): the
    divergence is a sum over steps, so scaling the penalty by ``s`` makes ``strength``
    the same trade against the *mean per-step* error whatever N and T are (a penalty
    added to the gradient alone, as ``Adam(weight_decay=)`` does, weighs less the longer
    the sequences). Biases and learned initial states are not penalised.

    Parameters
    ----------
    strength : float
        The penalty's weight (>= 0).
    """

    def __init__(self, strength: float) -> None:
        _non_negative("strength", strength)
        self.strength = float(strength)

    def __repr__(self):
        return f"WeightDecay({self.strength})"

    def penalty(self, params: dict) -> float:
        """The penalty per scored step (to be multiplied by ``s``).

        Parameters
        ----------
        params : dict of str to numpy.ndarray
            A model's parameters; only the link weights ``W[...]`` count.

        Returns
        -------
        float
        """
        return 0.5 * self.strength * sum(float(np.vdot(p, p)) for k, p in _weights(params))

    def gradient(self, params: dict) -> dict:
        """d penalty / d params.

        Parameters
        ----------
        params : dict of str to numpy.ndarray
            A model's parameters.

        Returns
        -------
        dict of str to numpy.ndarray
            The gradient of each link weight ``W[...]`` (other keys absent).
        """
        return {k: self.strength * p for k, p in _weights(params)}


class WeightElimination:
    r"""Weigend, Huberman and Rumelhart's (1990) weight elimination on the link weights.

    Penalty per scored step (scaled as :class:`WeightDecay`)::

        strength * sum_w (w / w0)^2 / (1 + (w / w0)^2)

    Small weights (|w| << w0) pay as under weight decay and are driven to zero; large
    ones pay about ``strength`` each whatever their size, so the penalty counts the
    connections a net uses. ``scale`` is w0 (Weigend used w0 of order 1 for unit-sized
    data). Biases and learned initial states are not penalised.

    Parameters
    ----------
    strength : float
        The penalty's weight (>= 0).
    scale : float
        w0 (> 0).
    """

    def __init__(self, strength: float, scale: float = 1.0) -> None:
        _non_negative("strength", strength)
        _positive("scale", scale)
        self.strength, self.scale = float(strength), float(scale)

    def __repr__(self):
        return f"WeightElimination({self.strength}, scale={self.scale})"

    def penalty(self, params: dict) -> float:
        """The penalty per scored step (to be multiplied by ``s``).

        Parameters
        ----------
        params : dict of str to numpy.ndarray
            A model's parameters; only the link weights ``W[...]`` count.

        Returns
        -------
        float
        """
        total = 0.0
        for _, p in _weights(params):
            r = np.square(p / self.scale)
            total += float(np.sum(r / (1.0 + r)))
        return self.strength * total

    def gradient(self, params: dict) -> dict:
        """d penalty / d params.

        Parameters
        ----------
        params : dict of str to numpy.ndarray
            A model's parameters.

        Returns
        -------
        dict of str to numpy.ndarray
            The gradient of each link weight ``W[...]`` (other keys absent).
        """
        out = {}
        for k, p in _weights(params):
            r = np.square(p / self.scale)
            out[k] = self.strength * (2.0 * p / self.scale ** 2) / np.square(1.0 + r)
        return out


def _weights(params):
    """The link weights of ``params`` (``W[...]``), the arrays a regulariser penalises."""
    return [(k, p) for k, p in params.items() if k.startswith("W[")]


def _compiled():
    """The compiled kernels (``unrolled.engine.kernels.compiled``) where the engine's default
    backend is the fast one, else None (the NumPy formulas: the same numbers, more calls)."""
    if backend.default_backend() == "numpy" or not backend.numba_installed():
        return None
    return backend.compiled_kernels()


def clip_grad_norm(grads: dict, max_norm: float) -> tuple[dict, float]:
    """Scale all gradients together so their global L2 norm is at most max_norm.

        total = sqrt(sum_k ||g_k||^2)
        g_k <- g_k * min(1, max_norm / (total + 1e-6))      (as torch)

    ValueError for a gradient that holds inf or nan.

    Parameters
    ----------
    grads : dict of str to numpy.ndarray
        The gradients (not mutated).
    max_norm : float
        The largest global norm let through (> 0).

    Returns
    -------
    clipped : dict of str to numpy.ndarray
        A new dict of new arrays.
    total : float
        The norm before clipping.
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


_REGISTRY = {"sgd": SGD, "adam": Adam, "adagrad": Adagrad, "rmsprop": RMSprop, "lm": LevenbergMarquardt}


def names() -> list[str]:
    """The optimizers ``get`` knows by name, sorted.

    Returns
    -------
    list of str
    """
    return sorted(_REGISTRY)


def get(name: str | Optimizer | LevenbergMarquardt, **kw) -> Optimizer | LevenbergMarquardt:
    """An optimizer by name ("sgd", "adam", "adagrad", "rmsprop", "lm") built with
    keyword hyperparameters ``kw``; an optimizer instance (no kw) unchanged.

    Parameters
    ----------
    name : str or optimizer
        A name of ``names()``, or an optimizer, returned as it is.
    **kw
        The optimizer's hyperparameters (``lr=``, ...).

    Returns
    -------
    Optimizer or LevenbergMarquardt
    """
    if isinstance(name, (Optimizer, LevenbergMarquardt)) and not kw:
        return name
    if not isinstance(name, str):
        raise TypeError(f"expected an optimizer name, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"expected an optimizer name in {names()}, got {name!r}")
    return _REGISTRY[name](**kw)
