"""Divergences between network output sequences and target sequences.

A divergence is a callable ``div(y, d, *, lengths=None) -> (value, dy)``:

* ``y``: network outputs, shape (N, T, C), batch first, floating point.
* ``d``: targets (shape depends on the divergence, see each class).
* ``lengths``: optional (N,) integers in [0, T], the number of valid steps of
  each sequence. Padding sits at the END of each sequence: steps
  ``t >= lengths[n]`` contribute nothing, and ``dy`` there is exactly 0.
  Padded entries of ``y`` and ``d`` are never read (they may hold anything).
* ``value``: a Python float; ``dy = d value / d y``, same shape and dtype as y.

Reduction: SUM over valid time steps and output components, MEAN over the N
sequences::

    value = (1/N) * sum_n sum_{t < len_n} w[n, t] * Div_t(y[n, t], d[n, t])

where ``w`` are optional per-step weights (all ones by default). The value is
the divergence of whole sequences; it is not an average over time steps, so a
sequence twice as long weighs twice as much.

Per-step divergences decompose over time (the sum above). The many-to-one
wrappers ``LastStep`` and ``PooledMean`` compare one target with a whole
sequence; ``PooledMean`` shows that the divergence between whole sequences
cannot always be decomposed into a sum of per-step divergences.

Shape legend: N batch, T time, C outputs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "Divergence",
    "SquaredError",
    "CrossEntropy",
    "BinaryCrossEntropy",
    "LastStep",
    "PooledMean",
    "LogitGradient",
    "get",
]


class LogitGradient(np.ndarray):
    """d value / d y, plus the exact gradient w.r.t. the output pre-activation.

    An ndarray (shape (N, T, C)) whose values are ``dy = d value / d y``, so it
    can be used anywhere a plain gradient can. It also carries:

    * ``dz``: (N, T, C) ndarray, ``d value / d z`` where ``y = act(z)`` is the
      output layer. For a softmax/sigmoid output with cross entropy this is
      ``(y - d)/N`` (masked and weighted like ``dy``): it is exact even where
      the output saturates (y == 0 or 1), where ``dy`` has to be clipped to a
      large finite number and ``J^T dy`` would be wrong.
    * ``activation``: ``"softmax"`` or ``"sigmoid"``, the output activation
      ``dz`` assumes. An engine whose output layer is that activation should
      use ``dz`` directly instead of back-propagating ``dy`` through it.

    Any array derived from a LogitGradient (slices, views, arithmetic) has
    ``dz = activation = None``: its values no longer match ``dz``, so the
    fused gradient must not be trusted there. ``np.asarray(g)`` gives the
    plain ``dy`` array.

    Parameters
    ----------
    dy : array_like
        (N, T, C) d value / d y.
    dz : array_like
        (N, T, C) d value / d z, the same shape.
    activation : {"softmax", "sigmoid"}
        The output activation ``dz`` assumes.
    """

    def __new__(cls, dy: ArrayLike, dz: ArrayLike, activation: str) -> LogitGradient:
        obj = np.asarray(dy).view(cls)
        dz = np.asarray(dz)
        if dz.shape != obj.shape:
            raise ValueError(f"expected dz of shape {obj.shape} like dy, got {dz.shape}")
        obj.dz = dz
        obj.activation = str(activation)
        return obj

    def __array_finalize__(self, obj):
        # Called for views, slices and ufunc results: never inherit dz.
        self.dz = None
        self.activation = None


# ---------------------------------------------------------------------------
# validation helpers


def _check_outputs(y):
    """y as a floating (N, T, C) ndarray, N >= 1."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.floating):
        raise TypeError(f"expected y of a floating dtype, got {y.dtype}")
    if y.ndim != 3:
        raise ValueError(f"expected y of shape (N, T, C), got {y.shape}")
    if y.shape[0] == 0:
        raise ValueError(f"expected y with at least one sequence (N >= 1), got {y.shape}")
    return y


def _valid_mask(lengths, N, T):
    """(N, T) bool, True at valid steps t < lengths[n]."""
    if lengths is None:
        return np.ones((N, T), dtype=bool)
    lengths = np.asarray(lengths)
    if lengths.dtype == bool or not np.issubdtype(lengths.dtype, np.integer):
        raise TypeError(f"expected integer lengths, got dtype {lengths.dtype}")
    if lengths.shape != (N,):
        raise ValueError(f"expected lengths of shape ({N},), got {lengths.shape}")
    bad = (lengths < 0) | (lengths > T)
    if bad.any():
        n = int(np.flatnonzero(bad)[0])
        raise ValueError(f"expected lengths in [0, T={T}], got lengths[{n}] = {lengths[n]}")
    return np.arange(T)[None, :] < lengths[:, None]


def _check_weights(weights):
    """Per-step weights as a float64 (T,) or (N, T) array (or None)."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim not in (1, 2):
        raise ValueError(f"expected weights of shape (T,) or (N, T), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("expected finite, non-negative weights")
    return w


def _ratio(num, den):
    """num / max(den, tiny), capped at +-(largest float); 0 where num == 0.

    The gradient of -d log y is -d/y, which is infinite where a saturated
    output y == 0 still has a target d > 0; this keeps it large but finite.
    """
    info = np.finfo(num.dtype)
    with np.errstate(over="ignore"):
        q = num / np.maximum(den, info.tiny)
    return np.clip(q, -info.max, info.max)


def _log(y):
    """log(max(y, tiny)): finite even at y == 0."""
    return np.log(np.maximum(y, np.finfo(y.dtype).tiny))


# ---------------------------------------------------------------------------
# protocol and per-step divergences


class Divergence:
    """Base class of divergences: ``div(y, d, *, lengths=None) -> (value, dy)``.

    y (N, T, C) floating outputs; d targets; lengths (N,) ints or None;
    value a Python float, (1/N) * sum over valid steps and components;
    dy (N, T, C) = d value / d y, dtype of y, exactly 0 at padded steps.
    dy may be a ``LogitGradient`` (an ndarray carrying the fused ``.dz``).

    ``accepts_labels`` says whether d may be integer class labels (N, T);
    the many-to-one wrappers use it to check per-sequence targets.
    """

    accepts_labels = False

    def __call__(self, y, d, *, lengths=None):
        raise NotImplementedError

    def steps_scored(self, lengths: np.ndarray, T: int) -> float:
        """How many steps it scores per sequence (mean over the batch): what a penalty on
        the weights is scaled by, so that its strength means the same whatever N and T
        (``optim.WeightDecay``).

        A divergence summed over valid steps scores their count (with per-step weights,
        the weights summed over the valid steps, over N); a many-to-one divergence
        (``LastStep``, ``PooledMean``) scores one read-out per sequence.

        Parameters
        ----------
        lengths : numpy.ndarray
            (N,) valid steps of each sequence.
        T : int
            The padded length.

        Returns
        -------
        float
        """
        return float(np.mean(lengths)) if len(lengths) else 0.0

    def restrict(self, rows: ArrayLike | None = None, steps: slice | None = None) -> Divergence:
        """The same divergence on a minibatch (``rows``) and/or time window (``steps``).

        Only per-step weights depend on which sequences and steps are scored, so a
        divergence without them returns itself. ``fit`` calls this for every
        minibatch and truncated-BPTT window.

        Parameters
        ----------
        rows : array_like of int, optional
            The sequences of the minibatch.
        steps : slice, optional
            The steps of the window.

        Returns
        -------
        Divergence
        """
        return self


class _PerStep(Divergence):
    """A divergence that is a (weighted) sum of per-step divergences.

    Subclasses implement ``_terms(y, d, scale) -> (loss, dy, dz)`` given
    y, d (N, T, C) with padding replaced by 0 and scale (N, T) = w * mask / N:
    loss (N, T) unweighted per-step divergence, dy and dz (N, T, C) already
    multiplied by scale (dz None when there is no fused gradient).
    """

    activation = None

    def __init__(self, weights: ArrayLike | None = None) -> None:
        self.weights = _check_weights(weights)

    def __repr__(self):
        w = "" if self.weights is None else f"weights=<{self.weights.shape}>"
        return f"{type(self).__name__}({w})"

    def restrict(self, rows: ArrayLike | None = None, steps: slice | None = None) -> Divergence:
        if self.weights is None:
            return self
        w = self.weights
        if rows is not None and w.ndim == 2:
            w = w[rows]
        if steps is not None:
            w = w[..., steps]
        new = copy.copy(self)
        new.weights = w
        return new

    def steps_scored(self, lengths: np.ndarray, T: int) -> float:
        N = len(lengths)
        return float(np.sum(self._scale(_valid_mask(lengths, N, T), np.float64))) if N else 0.0

    def _targets(self, d, y, mask):
        """d as a (N, T, C) array of y's dtype (default: same shape as y)."""
        d = np.asarray(d)
        if d.shape != y.shape:
            raise ValueError(f"expected d of shape {y.shape} like y, got {d.shape}")
        return d.astype(y.dtype, copy=False)

    def _scale(self, mask, dtype):
        N, T = mask.shape
        w = self.weights
        if w is None:
            w = np.ones((N, T))
        elif w.shape not in ((T,), (N, T)):
            raise ValueError(f"expected weights of shape ({T},) or ({N}, {T}), got {w.shape}")
        return (np.where(mask, w, 0.0) / N).astype(dtype)

    def __call__(self, y, d, *, lengths=None):
        y = _check_outputs(y)
        N, T, C = y.shape
        mask = _valid_mask(lengths, N, T)
        d = self._targets(d, y, mask)
        m3 = mask[:, :, None]
        y0 = np.where(m3, y, 0).astype(y.dtype)
        d0 = np.where(m3, d, 0).astype(y.dtype)
        scale = self._scale(mask, y.dtype)
        loss, dy, dz = self._terms(y0, d0, scale)
        value = float(np.sum(scale * loss, dtype=np.float64))
        dy = np.where(m3, dy, 0).astype(y.dtype)
        if dz is None:
            return value, dy
        dz = np.where(m3, dz, 0).astype(y.dtype)
        return value, LogitGradient(dy, dz, self.activation)


class SquaredError(_PerStep):
    """Squared error: Div_t = ||y(t) - d(t)||^2 = sum_c (y_c - d_c)^2.

    y (N, T, C), d (N, T, C). dy = 2 w (y - d) / N at valid steps.

    Parameters
    ----------
    weights : array_like, optional
        Per-step weights w, (T,) or (N, T), finite and non-negative (default 1).
    """

    def _terms(self, y, d, scale):
        r = y - d
        return np.sum(r * r, axis=-1), 2 * scale[..., None] * r, None

    def __call__(self, y, d, *, lengths=None):
        y = _check_outputs(y)
        N, T, _ = y.shape
        if type(self) is not SquaredError or self.weights is not None:
            return super().__call__(y, d, lengths=lengths)
        # Nothing weighted: the same sums without the scales, the residual zeroed at padded
        # steps (to rounding: the squares summed in float64 at once, not per step first).
        r = y - self._targets(d, y, None)
        if lengths is not None:
            padded = ~_valid_mask(lengths, N, T)
            if padded.any():
                r[padded] = 0.0
        value = float(np.sum(r * r, dtype=np.float64)) / N
        return value, y.dtype.type(2 / N) * r

    def residuals(self, y: np.ndarray, d: np.ndarray, *,
                  lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The divergence as a sum of squares, what Levenberg-Marquardt minimises.

        Parameters
        ----------
        y : numpy.ndarray
            (N, T, C) outputs.
        d : numpy.ndarray
            (N, T, C) targets.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence.

        Returns
        -------
        e : numpy.ndarray
            (N, T, C) float64 ``root (y - d)``, so that ``value = sum(e**2)``.
        root : numpy.ndarray
            (N, T) the square root of each step's weight / N (0 at padded steps,
            :meth:`residual_roots`).
        """
        y = _check_outputs(y)
        N, T, _ = y.shape
        mask = _valid_mask(lengths, N, T)
        d = self._targets(d, y, mask)
        root = self.residual_roots(lengths, N, T)
        r = np.where(mask[..., None], y.astype(np.float64) - d, 0.0)
        return root[..., None] * r, root

    def residual_roots(self, lengths: np.ndarray | None, N: int, T: int) -> np.ndarray:
        """The square root of each step's weight / N, 0 at padded steps.

        Parameters
        ----------
        lengths : numpy.ndarray or None
            (N,) valid steps of each sequence.
        N, T : int
            The batch and the padded length.

        Returns
        -------
        numpy.ndarray
            (N, T) float64.
        """
        return np.sqrt(self._scale(_valid_mask(lengths, N, T), np.float64))


class CrossEntropy(_PerStep):
    """Cross entropy of softmax outputs: Div_t = -sum_c d_c log y_c.

    y (N, T, C) probabilities (a softmax output); d either integer class
    labels (N, T) in [0, C) (one-hot targets) or target distributions
    (N, T, C), non-negative. The value uses log(max(y, tiny)).

    Returns a ``LogitGradient`` with activation ``"softmax"``:

    * values  dy = -w d / (N y); where y == 0 and d > 0 the quotient is taken
      with y = tiny (and capped at the largest float); where d == 0 it is 0.
    * ``.dz`` = J_softmax^T dy = w (y sum_c d_c - d) / N, which is w (y - d)/N
      for distributions and labels (sum_c d_c = 1). Exact even when saturated.

    Parameters
    ----------
    weights : array_like, optional
        Per-step weights w, (T,) or (N, T), finite and non-negative (default 1).
    """

    accepts_labels = True
    activation = "softmax"

    def __call__(self, y, d, *, lengths=None):
        y = _check_outputs(y)
        d = np.asarray(d)
        N, T, C = y.shape
        if d.shape != (N, T):
            return super().__call__(y, d, lengths=lengths)
        # Class labels: the same terms as the general path on one-hot targets, computed at
        # the labels only (each one-hot sum has one nonzero term), not over all C outputs.
        mask = _valid_mask(lengths, N, T)
        labels = self._labels(d, mask, C)[..., None]                       # (N, T, 1)
        scale = self._scale(mask, y.dtype)                                 # w * mask / N
        y0 = np.where(mask[:, :, None], y, 0).astype(y.dtype, copy=False)   # (a new array)
        at = np.take_along_axis(y0, labels, axis=-1)[..., 0]               # y at the labels
        value = float(np.sum(scale * -_log(at), dtype=np.float64))
        dy = np.zeros_like(y0)
        np.put_along_axis(dy, labels, -_ratio(scale, at)[..., None], axis=-1)
        dz = y0                                                            # y - d, times scale
        np.put_along_axis(dz, labels, (at - 1)[..., None], axis=-1)
        dz *= scale[..., None]
        return value, LogitGradient(dy, dz, self.activation)

    @staticmethod
    def _labels(d, mask, C):
        """Integer labels (N, T) checked at the valid steps, 0 at the padded ones."""
        N, T = mask.shape
        if d.dtype == bool or not np.issubdtype(d.dtype, np.integer):
            raise TypeError(
                f"expected integer class labels of shape {(N, T)}, got dtype {d.dtype}"
            )
        bad = mask & ((d < 0) | (d >= C))
        if bad.any():
            n, t = np.argwhere(bad)[0]
            raise ValueError(
                f"expected class labels in [0, C={C}), got {d[n, t]} at (n={n}, t={t})"
            )
        return np.where(mask, d, 0)

    def _targets(self, d, y, mask):
        d = np.asarray(d)
        N, T, C = y.shape
        if d.shape == (N, T):
            labels = self._labels(d, mask, C)
            return (labels[..., None] == np.arange(C)).astype(y.dtype)
        if d.shape != y.shape:
            raise ValueError(
                f"expected d of shape {(N, T)} (class labels) or {y.shape} "
                f"(distributions) like y, got {d.shape}"
            )
        d = d.astype(y.dtype, copy=False)
        if np.any(mask[..., None] & ~(d >= 0)):
            raise ValueError("expected non-negative target distributions d")
        return d

    def _terms(self, y, d, scale):
        s = scale[..., None]
        loss = -np.sum(d * _log(y), axis=-1)
        dy = -_ratio(s * d, y)
        dz = s * (y * np.sum(d, axis=-1, keepdims=True) - d)
        return loss, dy, dz


class BinaryCrossEntropy(_PerStep):
    """Binary cross entropy of sigmoid outputs, each component independent:

        Div_t = -sum_c [d_c log y_c + (1 - d_c) log(1 - y_c)]

    y (N, T, C) in [0, 1] (a sigmoid output); d (N, T, C) in [0, 1].
    Returns a ``LogitGradient`` with activation ``"sigmoid"``:
    values dy = w/N [-d/y + (1-d)/(1-y)] (y, 1-y floored at tiny like
    CrossEntropy), ``.dz`` = y(1-y) dy = w (y - d)/N, exact when saturated.

    Parameters
    ----------
    weights : array_like, optional
        Per-step weights w, (T,) or (N, T), finite and non-negative (default 1).
    """

    activation = "sigmoid"

    def _targets(self, d, y, mask):
        d = super()._targets(d, y, mask)
        if np.any(mask[..., None] & ~((d >= 0) & (d <= 1))):
            raise ValueError("expected targets d in [0, 1]")
        return d

    def _terms(self, y, d, scale):
        s = scale[..., None]
        loss = -np.sum(d * _log(y) + (1 - d) * _log(1 - y), axis=-1)
        dy = _ratio(s * (1 - d), 1 - y) - _ratio(s * d, y)
        return loss, dy, s * (y - d)


# ---------------------------------------------------------------------------
# many-to-one wrappers


def _per_sequence_targets(div, d, N, C):
    """Check per-sequence targets: (N, C), or (N,) labels if div takes labels."""
    d = np.asarray(d)
    if d.shape == (N, C) or (d.shape == (N,) and getattr(div, "accepts_labels", False)):
        return d
    labels = f" or ({N},) class labels" if getattr(div, "accepts_labels", False) else ""
    raise ValueError(f"expected per-sequence targets d of shape ({N}, {C}){labels}, got {d.shape}")


def _sequence_lengths(lengths, N, T, who):
    """(N,) int lengths in [1, T] (all T when None)."""
    mask = _valid_mask(lengths, N, T)
    n_valid = mask.sum(axis=1)
    if np.any(n_valid == 0):
        n = int(np.flatnonzero(n_valid == 0)[0])
        raise ValueError(
            f"{who} expected at least one valid step per sequence, got 0 for sequence {n}"
        )
    return mask, n_valid


class _ManyToOne(Divergence):
    """A divergence of one read-out per sequence, wrapping a per-step divergence ``div``."""

    def __init__(self, div: Divergence | Callable | str) -> None:
        self.div = get(div)

    def restrict(self, rows: ArrayLike | None = None, steps: slice | None = None) -> Divergence:
        inner = getattr(self.div, "restrict", lambda rows=None, steps=None: self.div)(rows=rows)
        if inner is self.div:
            return self
        new = copy.copy(self)
        new.div = inner
        return new

    def __repr__(self):
        return f"{type(self).__name__}({self.div!r})"

    def steps_scored(self, lengths: np.ndarray, T: int) -> float:
        return 1.0


class LastStep(_ManyToOne):
    """Many-to-one: ``div`` applied to each sequence's last valid step only.

    y (N, T, C); d per sequence, (N, C) (or (N,) labels for CrossEntropy);
    lengths (N,) in [1, T] or None (last step T - 1).

        value = div(y_last, d)   with y_last[n] = y[n, len_n - 1]
        dy[n, len_n - 1] = d div / d y_last[n], 0 elsewhere.

    A LogitGradient from ``div`` stays a LogitGradient (``.dz`` scattered
    the same way). Weights of ``div`` apply to the (N, 1) last steps.

    Parameters
    ----------
    div : Divergence or str
        The per-step divergence applied to the last steps.
    """


    def __call__(self, y, d, *, lengths=None):
        y = _check_outputs(y)
        N, T, C = y.shape
        d = _per_sequence_targets(self.div, d, N, C)
        _, n_valid = _sequence_lengths(lengths, N, T, "LastStep")
        rows, last = np.arange(N), n_valid - 1
        value, g = self.div(y[rows, last][:, None, :], d.reshape((N, 1) + d.shape[1:]))
        dy = np.zeros_like(y)
        dy[rows, last] = np.asarray(g)[:, 0]
        if isinstance(g, LogitGradient) and g.dz is not None:
            dz = np.zeros_like(y)
            dz[rows, last] = g.dz[:, 0]
            return value, LogitGradient(dy, dz, g.activation)
        return value, dy


class PooledMean(_ManyToOne):
    """Many-to-one by mean pooling: compare the mean output with one target.

    y (N, T, C); d per sequence, (N, C) (or (N,) labels for CrossEntropy);
    lengths (N,) in [1, T] or None.

        m_n = (1/len_n) sum_{t < len_n} y[n, t]            (N, C)
        value = div(m[:, None, :], d)
        dy[n, t] = (d div / d m_n) / len_n   for t < len_n, 0 elsewhere.

    When ``div`` is nonlinear in m (cross entropy, squared error) this value
    is not a sum of per-step divergences Div(y(t), d): the divergence between
    whole sequences cannot always be decomposed into a sum of per-step
    divergences. Every step gets a gradient that depends on all the others
    through m.

    Returns a plain ndarray: a fused ``.dz`` of ``div`` refers to the pooled
    m, not to any output layer, so only the plain values d div / d m are used
    (for CrossEntropy -d/(N m), exact since m > 0 for softmax outputs).

    Parameters
    ----------
    div : Divergence or str
        The per-step divergence applied to the mean outputs.
    """


    def __call__(self, y, d, *, lengths=None):
        y = _check_outputs(y)
        N, T, C = y.shape
        d = _per_sequence_targets(self.div, d, N, C)
        mask, n_valid = _sequence_lengths(lengths, N, T, "PooledMean")
        m3 = mask[:, :, None]
        inv_len = (1.0 / n_valid).astype(y.dtype)[:, None]
        m = np.sum(np.where(m3, y, 0), axis=1).astype(y.dtype) * inv_len
        value, g = self.div(m[:, None, :], d.reshape((N, 1) + d.shape[1:]))
        dm = np.asarray(g)[:, 0] * inv_len
        dy = np.where(m3, dm[:, None, :], 0).astype(y.dtype)
        return value, dy


# ---------------------------------------------------------------------------
# registry

_REGISTRY = {
    "squared_error": SquaredError,
    "mse": SquaredError,
    "cross_entropy": CrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
}


def get(name_or_div: str | Divergence | Callable) -> Divergence | Callable:
    """A Divergence by name ("squared_error"/"mse", "cross_entropy",
    "binary_cross_entropy"), or a Divergence instance (or any callable
    ``div(y, d, *, lengths=None) -> (value, dy)``) unchanged.

    Parameters
    ----------
    name_or_div : str or callable
        A name, or a divergence returned as it is.

    Returns
    -------
    Divergence or callable
    """
    if isinstance(name_or_div, Divergence) or (callable(name_or_div) and not isinstance(name_or_div, type)):
        return name_or_div
    if not isinstance(name_or_div, str):
        raise TypeError(f"expected a Divergence, a callable div(y, d, *, lengths) or a name, "
                        f"got {type(name_or_div).__name__}")
    if name_or_div in _REGISTRY:
        return _REGISTRY[name_or_div]()
    raise ValueError(
        f"expected a Divergence or one of {sorted(_REGISTRY)}, got {name_or_div!r}"
    )
