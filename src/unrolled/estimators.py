"""scikit-learn style estimators over the engine: fit / predict / score, get_params / set_params.

Two estimators wrap every named model of the family (``RNN``, ``TDNN``, ``NARX``, ``Elman``,
``Jordan``, ``StateSpace``, ``BiRNN``) and :func:`unrolled.fit`:

* :class:`SequenceRegressor`: many-to-many regression. X (N, T, n_in) -> y (N, T, n_out)
  (or (N, T) for one output), one output at every step; trained with
  :class:`~unrolled.divergences.SquaredError`; ``score`` is R^2 over the valid steps.
  With ``output="last"``, many-to-one: one target per sequence, y (N,) or (N, n_out),
  read at each sequence's last valid step.
* :class:`SequenceClassifier`: many-to-one classification. X (N, T, n_in) -> one label per
  sequence, y (N,) of any hashable labels; a softmax output averaged over each
  sequence's valid steps (``readout="pooled"``, trained with ``PooledMean(CrossEntropy())``)
  or read at its last one (``"last"``); ``score`` is accuracy.

Both standardise their inputs by default (``standardize=True``: each feature's mean and
deviation over the valid steps of the training sequences, stored and applied in predict).
:class:`SequenceScaler` does the same as a transformer of its own (per feature, over the
valid steps), for a ``sklearn.pipeline.Pipeline`` or for targets.

Shapes: N sequences (batch), T steps, n_in input features, n_out outputs. X may come as

* an array (N, T, n_in);
* an array (N, T): N univariate sequences of T steps (n_in = 1), as tslearn reads a table;
* a list of N arrays of different lengths, each (T_i, n_in) or (T_i,): padded at the end
  inside (:func:`unrolled.datasets.pad_sequences`), the lengths T_i kept.

Variable lengths of an array X are given as ``lengths=(N,)`` integers (padding at the end
of each sequence) to ``fit``, ``predict`` and ``score`` (a list X carries its own: passing
``lengths`` too is an error); padded steps are never read.

They follow scikit-learn's contract without depending on it: ``__init__`` stores its
keyword arguments and nothing else; every check happens in ``fit``; what ``fit`` learns
ends in ``_`` (``model_``, ``loss_curve_``, ``n_iter_``, ...); ``fit`` returns ``self``;
``random_state`` makes a fit reproducible; :class:`ConvergenceWarning` says when training
stopped while the loss was still falling. ``get_params`` / ``set_params`` read the
constructor's signature, so ``sklearn.base.clone`` (or :func:`clone` here),
``GridSearchCV`` and ``cross_val_score`` work when scikit-learn is installed.

**With scikit-learn installed** (it stays optional: this module imports it when it is
there, and ``import unrolled`` imports this module only when one of its names is used):
:class:`NotFittedError` and :class:`ConvergenceWarning` subclass ``sklearn.exceptions``'
own, so ``except sklearn.exceptions.NotFittedError`` catches ours; and ``lengths`` is
metadata that scikit-learn routes: every method taking it has ``set_{method}_request``
(``set_fit_request``, ``set_predict_request``, ``set_score_request``, ...; the request
is True by default), so with ``sklearn.set_config(enable_metadata_routing=True)``,
``cross_val_score(est, X, y, params={"lengths": L})`` and ``GridSearchCV(...).fit(X, y,
lengths=L)`` split L with the folds and hand it to ``fit`` and ``score`` alike: the
scores count the valid steps only. Without scikit-learn, both classes are our own and
there are no ``set_*_request`` methods (there is nothing to route).

**Convergence rule.** Let L be ``loss_curve_`` (the mean training divergence of each
epoch) and k = ``n_iter_no_change``. Training counts as converged when it stopped early
(``patience``), or when the best loss of the last k epochs improves on the best loss of
all epochs before them by at most a fraction ``tol``::

    min(L[:-k]) - min(L[-k:]) <= tol * |min(L[:-k])|

With k or fewer epochs the first epoch stands for "before" (L[:1] against L[1:]); a
single epoch is never converged; ``tol=numpy.inf`` never warns. Otherwise ``fit`` warns
with :class:`ConvergenceWarning`: raise ``epochs`` (or ``lr``), or pass ``patience``
with ``validation_fraction``.
"""

from __future__ import annotations

import copy
import inspect
import numbers
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import optim as _optim
from ._checks import as_float_array, check_lengths, positive_int
from .datasets import pad_sequences
from .divergences import CrossEntropy, LastStep, PooledMean, SquaredError
from .models import GRU, LSTM, NARX, RNN, TDNN, BiRNN, Elman, Jordan, StateSpace
from .registry import block_config, block_from_config, register_model
from .train import Callback, History
from .train import fit as _fit

if TYPE_CHECKING:
    from typing_extensions import Self

try:        # scikit-learn is optional: with it, our errors are its errors and lengths is routed
    from sklearn.exceptions import ConvergenceWarning as _SkConvergenceWarning
    from sklearn.exceptions import DataConversionWarning as _DataConversionWarning
    from sklearn.exceptions import NotFittedError as _SkNotFittedError
    from sklearn.utils.metadata_routing import UNUSED as _UNUSED
    from sklearn.utils.metadata_routing import _MetadataRequester
except ImportError:
    _SkConvergenceWarning, _SkNotFittedError, _MetadataRequester, _UNUSED = UserWarning, None, object, None
    _DataConversionWarning = UserWarning

__all__ = ["SequenceRegressor", "SequenceClassifier", "SequenceScaler", "ConvergenceWarning", "NotFittedError",
           "clone"]


_OPTIMIZERS = _optim.names() + ["bayesian"]   # "lm" / "bayesian": Levenberg-Marquardt (trainlm / trainbr)


class ConvergenceWarning(_SkConvergenceWarning):
    """Training ended while the loss was still falling (see the module's convergence rule).

    A ``UserWarning``; with scikit-learn installed, a ``sklearn.exceptions.ConvergenceWarning``.
    """


class NotFittedError(*((_SkNotFittedError,) if _SkNotFittedError else (ValueError, AttributeError))):
    """``predict`` / ``score`` / ``transform`` called before ``fit``.

    A ``ValueError`` and an ``AttributeError``; with scikit-learn installed, a
    ``sklearn.exceptions.NotFittedError``.
    """
# model name -> (class, {estimator parameter: default when None}); a parameter named
# here is passed to that model only, and setting it for any other model is an error.
_MODELS = {
    "rnn": (RNN, {}),
    "tdnn": (TDNN, {"width": 4}),
    "narx": (NARX, {"input_delays": 2, "output_delays": 2, "feedback": "closed"}),
    "elman": (Elman, {"context_gradient": "blocked"}),
    "jordan": (Jordan, {"decay": 0.5}),
    "statespace": (StateSpace, {}),
    "birnn": (BiRNN, {"blocks": 1, "cell": "tanh"}),
    "lstm": (LSTM, {}),
    "gru": (GRU, {}),
}
_MODEL_SPECIFIC = ("width", "input_delays", "output_delays", "feedback", "context_gradient", "decay", "blocks",
                   "cell")
_GATED = ("lstm", "gru")          # their gates fix the nonlinearities: no activation to choose
_READOUTS = ("pooled", "last")    # a classifier's: the mean of the softmax over the valid steps, or the last one
_CHANCE_MARGIN = 0.05             # a classifier whose loss stays this close to guessing the priors warns


def clone(estimator):
    """A new, unfitted estimator with the same parameters (as ``sklearn.base.clone``).

    Parameters that are estimators are cloned; others are deep-copied; metadata requests
    set with ``set_{method}_request`` are copied.

    Parameters
    ----------
    estimator : an estimator instance (anything with ``get_params``)

    Returns
    -------
    A new instance of the same class, not fitted.
    """
    if not hasattr(estimator, "get_params") or isinstance(estimator, type):
        raise TypeError(f"cannot clone {estimator!r}: it is not an estimator instance (no get_params)")
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        if hasattr(value, "get_params") and not isinstance(value, type):
            params[name] = clone(value)
        else:
            params[name] = copy.deepcopy(value)
    twin = type(estimator)(**params)
    if "_metadata_request" in vars(estimator):
        twin._metadata_request = copy.deepcopy(estimator._metadata_request)
    return twin


def _same(a, b):
    """a and b equal as parameter values (False where comparing them is ambiguous)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # arrays and the like: shown in the repr
        return False



# ---------------------------------------------------------------------------
# sequences as they come: arrays (N, T, n), tables (N, T), lists of arrays (T_i, n)


def _real_array(value, dtype, name):
    """``value`` as an array of ``dtype``; an object array of numbers is read as numbers."""
    if hasattr(value, "tocsr") or type(value).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse matrix: sparse input is not supported, pass a dense array "
                        f"({name}.toarray())")
    try:
        value = np.asarray(value)
    except Exception:  # ragged nesting and the like: as_float_array names it
        pass
    if getattr(value, "dtype", None) is not None and value.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} must hold real numbers")
    if isinstance(value, np.ndarray) and value.dtype == object:
        try:
            value = value.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold real numbers: {exc}") from None
    return as_float_array(value, dtype, name)


def _sequences(X, lengths, dtype, name="X"):
    """``X`` as a float (N, T, n) array of ``dtype``, its (N,) int64 lengths and its form.

    X is an array (N, T, n); an array (N, T), N univariate sequences (n = 1); or a list
    (or tuple) of N arrays (T_i, n) or (T_i,), zero-padded at the end to T = max T_i with
    :func:`unrolled.datasets.pad_sequences`, whose lengths T_i are the lengths (passing
    ``lengths`` as well is an error). The form ``(ragged, flat)`` says whether X came as a
    list and whether without a feature axis, so that an output can be given back alike.
    """
    if isinstance(X, (list, tuple)):
        if lengths is not None:
            raise ValueError(f"{name} is a list of sequences, which carries its own lengths: pass lengths= "
                             f"only with an array {name} (N, T, n), not with a list")
        if not X:
            raise ValueError(f"expected {name} with at least one sequence, got an empty {type(X).__name__}")
        arrays = [_real_array(s, dtype, f"{name}[{i}]") for i, s in enumerate(X)]
        first = arrays[0]
        expected = "(T_i,)" if first.ndim == 1 else f"(T_i, {first.shape[1]})" if first.ndim == 2 else None
        for i, a in enumerate(arrays):
            if expected is None or a.ndim != first.ndim or a.shape[1:] != first.shape[1:]:
                raise ValueError(f"expected each sequence of the list {name} of shape "
                                 f"{expected or '(T_i, n_in) or (T_i,)'}, as {name}[0], got {name}[{i}] of "
                                 f"shape {a.shape}")
        X, lengths = pad_sequences(arrays, dtype=dtype)
        return (X[..., None] if X.ndim == 2 else X), lengths, (True, first.ndim == 1)
    X = _real_array(X, dtype, name)
    if X.ndim not in (2, 3):
        hint = f" - help: Reshape your data: one sequence is {name}[None]" if X.ndim == 1 else ""
        raise ValueError(f"expected {name} of shape (N, T, n_in), (N, T) (one feature per step) or a list of "
                         f"(T_i, n_in) / (T_i,) arrays, got shape {X.shape}{hint}")
    if X.ndim == 2 and X.shape[1] == 0:     # the words scikit-learn's users know for an empty table
        raise ValueError(f"expected {name} with at least one step, got 0 feature(s) (shape={X.shape}) while a "
                         f"minimum of 1 is required.")
    flat = X.ndim == 2
    X = X[..., None] if flat else X
    return X, check_lengths(lengths, X.shape[0], X.shape[1]), (False, flat)


def _as_given(out, lengths, form):
    """(N, T, n) ``out`` back in the form its input came in (see :func:`_sequences`)."""
    ragged, flat = form
    out = out[..., 0] if flat else out
    return [out[i, :n] for i, n in enumerate(lengths)] if ragged else out


def _valid(lengths, T):
    """(N, T) bool: the steps within each sequence's length."""
    return np.arange(T)[None, :] < lengths[:, None]


def _check_finite(arr, name, lengths=None):
    """ValueError naming the first place where ``arr`` (N, T, ...) holds NaN or infinity (at
    the valid steps only, with ``lengths``)."""
    bad = ~np.isfinite(arr)
    if lengths is not None and arr.ndim >= 2:
        bad &= _valid(lengths, arr.shape[1]).reshape(arr.shape[:2] + (1,) * (arr.ndim - 2))
    if bad.any():
        where = np.argwhere(bad)[0]
        at = f" (sequence {where[0]}, step {where[1]})" if arr.ndim >= 2 else f" (entry {where[0]})"
        big = np.finfo(arr.dtype).max if arr.dtype.kind == "f" and arr.dtype.itemsize < 8 else None
        hint = "" if big is None or not np.isinf(arr[tuple(where)]) else (
            f", as {arr.dtype}, the model's dtype, which turns values beyond ±{big:.2g} into infinity")
        raise ValueError(f"{name} holds NaN or infinity{at}" + (" within its lengths" if lengths is not None
                                                                  else "") + hint)


def _zero_padding(arr, lengths):
    """``arr`` (N, T, ...) with its padded steps (past each length) set to 0, a copy if any are."""
    pad = ~_valid(lengths, arr.shape[1])
    if not pad.any():
        return arr
    arr = np.array(arr, copy=True)
    arr[pad] = 0
    return arr


def _check_lengths_positive(lengths):
    if np.any(lengths < 1):
        n = int(np.flatnonzero(lengths < 1)[0])
        raise ValueError(f"a sequence is read at its last valid step: every length must be >= 1, "
                         f"got lengths[{n}] = {lengths[n]}")


def _moments(X, lengths):
    """``(mean, var, scale)`` (n,) of each feature of X (N, T, n) over its valid steps:
    the population variance, and the deviation as scale (1 where it is 0)."""
    steps = X[_valid(lengths, X.shape[1])].astype(np.float64)         # (valid steps, n)
    mean, var = steps.mean(axis=0), steps.var(axis=0)
    return mean, var, np.where(var > 0, np.sqrt(var), 1.0)


def _scaled(X, lengths, scaling):
    """X standardised by ``scaling`` = (mean, scale) per feature, in X's dtype, 0 at padded steps."""
    mean, scale = scaling
    out = ((X - mean) / scale).astype(X.dtype)
    out[~_valid(lengths, X.shape[1])] = 0.0
    return out


def _last_steps(out, lengths):
    """(N, n) the outputs (N, T, n) at each sequence's last valid step."""
    _check_lengths_positive(lengths)
    return out[np.arange(len(lengths)), lengths - 1]


def _sample_weight(sample_weight, N):
    """(N,) float64 weights of the sequences, or None; ValueError unless finite, >= 0, not all 0."""
    if sample_weight is None:
        return None
    w = _real_array(sample_weight, np.float64, "sample_weight")
    if w.shape != (N,):
        raise ValueError(f"expected sample_weight of shape ({N},), one weight a sequence, got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.sum(w) > 0:
        raise ValueError("sample_weight must be finite, >= 0 and not all 0")
    return w


def _require_y(y, name):
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None")


def _r2(pred, true, weights=None):
    """R^2 per column of (M, n) ``pred`` against ``true`` (rows weighted by ``weights``
    (M,), as sklearn's r2_score), averaged over columns."""
    pred, true = pred.astype(np.float64), true.astype(np.float64)
    if len(true) == 0:
        raise ValueError("R^2 needs at least one valid step: every length is 0")
    w = np.ones(len(true)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w[:, None]
    ss_res = np.sum(w * (true - pred) ** 2, axis=0)
    ss_tot = np.sum(w * (true - np.sum(w * true, axis=0) / np.sum(w)) ** 2, axis=0)
    # sklearn's convention for a constant target: 1 if predicted exactly, else 0
    safe = np.where(ss_tot > 0, ss_tot, 1.0)
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(r2))


# ---------------------------------------------------------------------------
# saving: what unrolled.save writes of an estimator


def _pack(value):
    """A parameter value as a config holds it: numbers as 0-d arrays (they size nothing, so
    ``load``'s size check passes them), tuples as lists, NumPy scalar types by name."""
    if isinstance(value, (list, tuple)):
        return [_pack(v) for v in value]
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return np.asarray(value)
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    return value


def _unpack(value):
    """Inverse of :func:`_pack` (lists come back as tuples)."""
    if isinstance(value, list):
        return tuple(_unpack(v) for v in value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


class _Params(_MetadataRequester):
    """get_params / set_params / repr from the constructor's signature; with scikit-learn
    installed, its metadata routing (``set_{method}_request``) for ``lengths``."""

    # Requested by default: a sequence estimator always wants to know which steps are valid.
    __metadata_request__fit = __metadata_request__predict = __metadata_request__score = {"lengths": True}
    __metadata_request__predict_proba = __metadata_request__predict_log_proba = {"lengths": True}
    __metadata_request__transform = __metadata_request__inverse_transform = {"lengths": True}

    @classmethod
    def _param_names(cls):
        signature = inspect.signature(cls.__init__)
        names = []
        for name, p in signature.parameters.items():
            if name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise RuntimeError(f"{cls.__name__}.__init__ must take explicit keyword arguments, not *{name}")
            names.append(name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments.

        Parameters
        ----------
        deep : bool, also the parameters of parameters that are estimators (``a__b``).

        Returns
        -------
        dict name -> value.
        """
        out = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
            out[name] = value
        return out

    def set_params(self, **params) -> Self:
        """Set constructor arguments (``a__b`` reaches a nested estimator's ``b``).

        No value is checked here: ``fit`` checks them all.

        Parameters
        ----------
        **params : name=value, names as ``get_params`` gives them.

        Returns
        -------
        self
        """
        valid = self._param_names()
        nested = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}: "
                                 f"expected one of {valid}")
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub in nested.items():
            inner = getattr(self, name)
            if not hasattr(inner, "set_params"):
                raise ValueError(f"parameter {name!r} of {type(self).__name__} is {inner!r}, "
                                 f"which has no parameters to set ({', '.join(sub)})")
            inner.set_params(**sub)
        return self

    def __repr__(self):
        """The arguments that differ from their defaults, in the constructor's order."""
        signature = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={getattr(self, k)!r}" for k, p in signature.items()
                   if k != "self" and not _same(getattr(self, k), p.default)]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_is_fitted(self):
        if not hasattr(self, self._fitted_mark):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")

    # -- saving (unrolled.save / unrolled.load): a config and the fitted weights ---------
    config_keys = ("params", "fitted")

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The fitted model's weights, name -> live array (empty before ``fit``): what
        ``unrolled.save`` stores beside :meth:`get_config`."""
        model = getattr(self, "model_", None)
        return {} if model is None else model.params

    def get_config(self) -> dict:
        """What ``unrolled.save`` writes: the constructor's arguments and the fit.

        Returns
        -------
        dict with "params" (``get_params(deep=False)``; numbers as 0-d arrays, tuples as
        lists) and "fitted" (None before ``fit``).
        """
        return {"params": {k: _pack(v) for k, v in self.get_params(deep=False).items()},
                "fitted": self._fitted_config() if hasattr(self, self._fitted_mark) else None}

    @classmethod
    def from_config(cls, config: dict) -> Self:
        """The estimator :meth:`get_config` described, fitted as it was (``unrolled.load``).

        Parameters
        ----------
        config : dict, as :meth:`get_config` returns it (after a save and load).

        Returns
        -------
        A new estimator (sequences among its parameters come back as tuples).
        """
        out = cls(**{k: _unpack(v) for k, v in config["params"].items()})
        if config["fitted"] is not None:
            out._restore_fit(config["fitted"])
        return out


class _SequenceEstimator(_Params):
    """The scikit-learn contract and the training shared by both estimators."""

    def __init__(self, model: str = "rnn", hidden: int | Sequence[int] = (16,), activation: str = "tanh",
                 epochs: int = 200, batch_size: int = 32, lr: float = 0.01, optimizer: str = "adam",
                 patience: int | None = None, validation_fraction: float = 0.0, clip: float | None = None,
                 tol: float = 1e-3, n_iter_no_change: int = 10,
                 random_state: int | np.random.Generator | None = None, dtype: DTypeLike = "float32",
                 verbose: bool = False, width: int | None = None,
                 input_delays: int | Sequence[int] | None = None,
                 output_delays: int | Sequence[int] | None = None, feedback: str | None = None,
                 context_gradient: str | None = None, decay: float | None = None, blocks: int | None = None,
                 cell: str | None = None, standardize: bool = True) -> None:
        self.model = model
        self.hidden = hidden
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.clip = clip
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose
        self.width = width
        self.input_delays = input_delays
        self.output_delays = output_delays
        self.feedback = feedback
        self.context_gradient = context_gradient
        self.decay = decay
        self.blocks = blocks
        self.cell = cell
        self.standardize = standardize

    _output = "identity"
    _fitted_mark = "model_"

    def _no_step_targets(self):
        """None, or what lacks per-step targets (which feedback="open" feeds back)."""
        return None

    def _autoregression(self):
        """Whether fit may take X without features (a NARX on y alone)."""
        return False

    def __sklearn_tags__(self):
        # Only scikit-learn calls this, so scikit-learn is importable here.
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        classifier = self._estimator_type == "classifier"
        return Tags(estimator_type=self._estimator_type,
                    target_tags=TargetTags(required=True, one_d_labels=classifier,
                                           multi_output=not classifier),
                    classifier_tags=ClassifierTags() if classifier else None,
                    regressor_tags=None if classifier else RegressorTags(),
                    input_tags=InputTags(two_d_array=True, three_d_array=True))

    # -------------------------------------------------------------- checking
    def _check_hyperparameters(self):
        if self.model not in _MODELS:
            raise ValueError(f"model must be one of {sorted(_MODELS)}, got {self.model!r}")
        for name in ("epochs", "batch_size", "n_iter_no_change"):
            positive_int(getattr(self, name), name)
        if self.patience is not None:
            positive_int(self.patience, "patience")
        for name in ("lr",):
            value = getattr(self, name)
            if not _real(value) or not value > 0 or not np.isfinite(value):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not _real(self.tol) or not self.tol >= 0:
            raise ValueError(f"tol must be a number >= 0 (inf: never warn), got {self.tol!r}")
        if self.clip is not None and (not _real(self.clip) or not self.clip > 0):
            raise ValueError(f"clip must be None or a positive gradient norm, got {self.clip!r}")
        if not _real(self.validation_fraction) or not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be a number in [0, 1), got {self.validation_fraction!r}")
        if self.patience is not None and self.validation_fraction == 0:
            raise ValueError("patience stops on the validation loss: set validation_fraction > 0 "
                             "(for example 0.1) to hold out sequences for it")
        if not isinstance(self.optimizer, str) or self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {self.optimizer!r}")
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise TypeError(f"standardize must be True or False, got {self.standardize!r}")
        if self.model in _GATED and self.activation != "tanh":
            raise ValueError(f"activation={self.activation!r} does not apply to model={self.model!r}: its gates "
                             "fix the nonlinearities (sigmoid gates, tanh candidate); leave it 'tanh'")
        own = _MODELS[self.model][1]
        for name in _MODEL_SPECIFIC:
            if getattr(self, name) is not None and name not in own:
                users = [m for m, (_, specific) in _MODELS.items() if name in specific]
                raise ValueError(f"{name}={getattr(self, name)!r} applies to model={users[0]!r} only, "
                                 f"not model={self.model!r}: leave it None")
        if self.feedback == "open" and self._no_step_targets():
            raise ValueError(f"feedback='open' feeds back true past per-step targets, which "
                             f"{self._no_step_targets()} does not have: use feedback='closed' (or None)")

    def _check_X(self, X, lengths, *, fitting):
        """X as a float (N, T, n_in) array of the model's dtype and its (N,) lengths."""
        X, lengths, _ = _sequences(X, lengths, np.dtype(self.dtype).type)
        no_features = self._autoregression() if fitting else self.n_features_in_ == 0
        if 0 in X.shape[:2] or (X.shape[2] == 0 and not no_features):
            raise ValueError(f"expected X with at least one sequence, one step and one feature, got {X.shape}")
        _check_finite(X, "X", lengths)
        X = _zero_padding(X, lengths)              # padded steps are never read: NaN there (tslearn's) is fine
        if not fitting and X.shape[2] != self.n_features_in_:
            raise ValueError(f"expected X of shape (N, T, {self.n_features_in_}): "
                             f"{type(self).__name__} was fitted with {self.n_features_in_} input features, "
                             f"got {X.shape}")
        return X, lengths

    def _forget_fit(self):
        """Remove every fitted attribute: a fit that fails from here on leaves the estimator unfitted."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")] + ["_flat_y", "_last"]:
            self.__dict__.pop(name, None)

    # --------------------------------------------------------------- training
    def _build_model(self, n_in, n_out, seed):
        cls, specific = _MODELS[self.model]
        kwargs = {name: default if getattr(self, name) is None else getattr(self, name)
                  for name, default in specific.items()}
        if n_in == 0 and self.input_delays is None:
            kwargs["input_delays"] = None            # a NARX on y alone: no input to delay
        if self.model not in _GATED:
            kwargs["activation"] = self.activation
        return cls(n_in, n_out, hidden=self.hidden, output=self._output, dtype=np.dtype(self.dtype).type,
                   seed=seed, **kwargs)

    def _seeds(self):
        """Three seeds (initial weights, validation split, minibatch order) from random_state."""
        state = self.random_state
        if isinstance(state, np.random.RandomState):
            state = int(state.randint(2 ** 31 - 1))
        elif not (state is None or isinstance(state, (numbers.Integral, np.random.Generator,
                                                      np.random.SeedSequence))) or isinstance(state, bool):
            raise TypeError(f"random_state must be None, an int or a numpy.random.Generator, got {state!r}")
        rng = np.random.default_rng(state)
        return [int(s) for s in rng.integers(0, 2 ** 63 - 1, size=3)]

    def _train(self, X, target, lengths, divergence, n_out, fitted):
        """Build ``model_``, train it, and set the fitted attributes (``fitted``: the caller's).

        The previous fit is forgotten first, so a fit that fails here leaves none behind.
        """
        self._forget_fit()
        model_seed, split_seed, shuffle_seed = self._seeds()
        N = X.shape[0]
        validation, train, held = None, np.arange(N), None
        if self.validation_fraction > 0:
            n_val = int(round(self.validation_fraction * N))
            if n_val < 1 or n_val >= N:
                raise ValueError(f"validation_fraction={self.validation_fraction} of N={N} sequences leaves "
                                 f"{n_val} for validation and {N - n_val} for training; both need at least one")
            order = np.random.default_rng(split_seed).permutation(N)
            held, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        if not np.any(lengths[train]):
            raise ValueError(f"expected at least one valid step to fit on, got every length 0 among the "
                             f"{len(train)} training sequences")
        scaling = None
        if self.standardize and X.shape[2]:          # fitted on the training sequences, stored, applied in predict
            mean, _, scale = _moments(X[train], lengths[train])
            scaling = (mean, scale)
            X = _scaled(X, lengths, scaling)
        fitted = dict(fitted, input_mean_=None if scaling is None else scaling[0],
                      input_scale_=None if scaling is None else scaling[1])
        if held is not None:
            validation = (X[held], target[held], lengths[held])

        model = self._build_model(X.shape[2], n_out, model_seed)
        narx_open = isinstance(model, NARX) and model.feedback == "open"
        # what predict will run: a closed-loop NARX over the same weights
        scorer = _ValidationScore(self, model.closed_loop() if narx_open else model, validation)
        second_order = self.optimizer in ("lm", "bayesian")     # whole-batch steps: no lr, no minibatches
        opt = (_optim.LevenbergMarquardt(bayesian=self.optimizer == "bayesian") if second_order
               else _optim.get(self.optimizer, lr=self.lr))
        history = _fit(model, X[train], target[train], lengths=lengths[train], divergence=divergence,
                       optimizer=opt, epochs=self.epochs, batch_size=None if second_order else self.batch_size,
                       validation=validation, patience=self.patience, clip=self.clip, seed=shuffle_seed,
                       callbacks=[scorer] if validation is not None else [], progress=bool(self.verbose))
        if narx_open:
            model.feedback = "closed"      # trained teacher-forced, predicts from its own outputs

        self._set_fit(model, history, fitted, scorer.scores if validation is not None else None)
        if not history.stopped_early and not _converged(self.loss_curve_, self.tol, self.n_iter_no_change):
            warnings.warn(
                f"{type(self).__name__} ran all {self.epochs} epochs and the training loss is still falling "
                f"(its best over the last {self.n_iter_no_change} epochs improved by more than tol={self.tol} "
                f"of the best before): raise epochs, or stop early with patience and validation_fraction",
                ConvergenceWarning, stacklevel=3)
        return self

    def _set_fit(self, model, history, fitted, scores):
        """The fitted attributes, after a fit or a load: ``fitted`` the estimator's own."""
        self.__dict__.update(fitted)
        self.model_ = model
        self.history_ = history
        self.loss_curve_ = list(history.loss)
        self.n_iter_ = history.epochs
        self.best_epoch_ = history.best_epoch
        if scores is not None:
            self.validation_loss_curve_ = list(history.val_loss)
            self.validation_scores_ = list(scores)

    def _fitted_config(self):
        h = self.history_
        history = {"loss": np.asarray(h.loss, dtype=np.float64), "val_loss": np.asarray(h.val_loss, dtype=np.float64),
                   "logs": {k: np.asarray(v, dtype=np.float64) for k, v in h.logs.items()},
                   "best_epoch": _pack(h.best_epoch), "stopped_early": bool(h.stopped_early),
                   "seconds": np.asarray(h.seconds, dtype=np.float64)}
        scores = getattr(self, "validation_scores_", None)
        scaled = getattr(self, "input_mean_", None) is not None
        return {"model": block_config(self.model_), "history": history,
                "scores": None if scores is None else np.asarray(scores, dtype=np.float64),
                "attributes": self._fitted_attributes(),
                "input_scaling": {"mean": self.input_mean_, "scale": self.input_scale_} if scaled else None}

    def _restore_fit(self, f):
        h = f["history"]
        history = History(loss=h["loss"].tolist(), val_loss=h["val_loss"].tolist(),
                          logs={k: v.tolist() for k, v in h["logs"].items()}, best_epoch=_unpack(h["best_epoch"]),
                          stopped_early=h["stopped_early"], seconds=float(h["seconds"]))
        scaling = f.get("input_scaling")
        attributes = dict(self._attributes_from(f["attributes"]),
                          input_mean_=None if scaling is None else np.asarray(scaling["mean"]),
                          input_scale_=None if scaling is None else np.asarray(scaling["scale"]))
        self._set_fit(block_from_config(f["model"]), history, attributes,
                      None if f["scores"] is None else f["scores"].tolist())

    def _outputs(self, X, lengths):
        """Checked inputs and the model's outputs (N, T, n_out), zero at padded steps."""
        self._check_is_fitted()
        X, lengths = self._check_X(X, lengths, fitting=False)
        if getattr(self, "input_mean_", None) is not None:
            X = _scaled(X, lengths, (self.input_mean_, self.input_scale_))
        return self.model_.predict(X, lengths=lengths), lengths
def _converged(loss, tol, k):
    """The module's convergence rule on the loss curve ``loss``."""
    if tol == np.inf:
        return True
    if len(loss) < 2:
        return False
    split = max(1, len(loss) - k)
    before, recent = min(loss[:split]), min(loss[split:])
    return before - recent <= tol * abs(before)


class _ValidationScore(Callback):
    """Scores (R^2 / accuracy) of the model on the held-out sequences after each epoch."""

    def __init__(self, estimator, model, validation):
        self.estimator, self.model, self.validation, self.scores = estimator, model, validation, []

    def on_epoch_end(self, model, epoch, logs):
        X, target, lengths = self.validation
        y = self.model.predict(X, lengths=lengths)
        self.scores.append(self.estimator._validation_score(y, target, lengths))
        return False


def _real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# ---------------------------------------------------------------------------
# the estimators

def _untried_remedies(est):
    """What a classifier that learned nothing could try, leaving out the settings it has."""
    tries = []
    if est.model not in ("gru", "lstm", "birnn"):
        tries.append("model='gru' or 'lstm' (or a bidirectional 'birnn') for long sequences")
    elif est.model != "birnn":
        tries.append("a bidirectional model='birnn' with cell='gru'")
    if est.readout != "pooled":
        tries.append("readout='pooled'")
    if not est.standardize:
        tries.append("standardize=True")
    tries.append("more hidden units, a higher lr or more epochs")
    return "Try " + "; ".join(tries)


_PARAMS_DOC = """
    model : "rnn" | "tdnn" | "narx" | "elman" | "jordan" | "statespace" | "birnn" | "lstm" | "gru"
        The named model (``unrolled.RNN``, ``TDNN``, ..., ``LSTM``, ``GRU``), built in
        ``fit`` with n_in = X.shape[2].
    hidden : tuple of int, the hidden layer sizes H_1 .. H_L.
    activation : "tanh" | "relu" | "sigmoid" | "identity", the hidden activation (not
        for "lstm" / "gru", whose gates fix theirs).
    standardize : bool (default True); standardise each input feature by its mean and
        deviation over the valid steps of the training sequences (fitted in ``fit``,
        stored as ``input_mean_`` / ``input_scale_``, applied in predict and score).
    epochs, batch_size : int; minibatches of whole sequences, Adam by default.
    lr : float, the learning rate; optimizer : "adam" | "sgd" | "rmsprop" | "adagrad", or
        "lm" (Levenberg-Marquardt) | "bayesian" (LM with Bayesian regularisation), which
        take whole-batch steps (``lr`` and ``batch_size`` then do not apply; regression only).
    patience : None or int; stop when the validation loss has not improved for this
        many epochs and keep the best weights (needs ``validation_fraction > 0``).
    validation_fraction : float in [0, 1); the share of sequences held out (at random,
        under ``random_state``) to give ``validation_loss_curve_`` and
        ``validation_scores_`` each epoch.
    clip : None or float, clip the gradient to this global L2 norm.
    tol, n_iter_no_change : the convergence rule (see the module docstring).
    random_state : None, int or numpy.random.Generator: initial weights, validation split
        and minibatch order. An int gives the same fit every time.
    dtype : "float32" (default) or "float64", the model's arrays.
    verbose : bool, a progress bar on stderr.
    width : TDNN only, past inputs read (None: 4).
    input_delays, output_delays : NARX only, input taps 0..L and output taps 1..K
        (None: 2 and 2). feedback : NARX only, "closed" (default: trained through its
        own fed-back outputs) or "open" (trained teacher-forced on the true past targets;
        regressor only). Either way ``predict`` runs closed loop, from its own outputs.
    context_gradient : Elman only, "blocked" (None) or "full".
    decay : Jordan only, the memory's decay (None: 0.5).
    blocks : BiRNN only, stacked bidirectional blocks (None: 1).
    cell : BiRNN only, "tanh" (None), "lstm" or "gru": the layers of each direction.
"""

_FITTED_DOC = """
    Fitted attributes
    -----------------
    model_ : the trained unrolled model. With ``standardize=True`` it reads standardised
        inputs, ``(X - input_mean_) / input_scale_``: call it directly only on those.
    n_features_in_ : int, n_in (1 for X given as (N, T) or as a list of (T_i,) arrays).
    input_mean_, input_scale_ : (n_in,) the standardisation of the inputs (None with
        ``standardize=False``).
    loss_curve_ : list of float, the training divergence of each epoch (per sequence:
        summed over steps and outputs, averaged over the epoch's minibatches).
    n_iter_ : int, epochs run. best_epoch_ : int, the (0-based) epoch whose weights the
        model holds. history_ : the :class:`unrolled.History` of the fit.
    validation_loss_curve_, validation_scores_ : lists, per epoch, on the held-out
        sequences (only with ``validation_fraction > 0``).
"""




class SequenceRegressor(_SequenceEstimator):
    __doc__ = """Regression of sequences: one output vector at every step, or one per sequence.

    Per step (``output="sequence"``, the default): X (N, T, n_in) -> y (N, T, n_out), or
    (N, T) for a single output (``predict`` then returns (N, T) too), or a list of N
    target arrays (T_i, n_out) / (T_i,) of the lengths of X's sequences. Trained with
    :class:`~unrolled.divergences.SquaredError` summed over the valid steps; ``score`` is
    the coefficient of determination R^2 over all valid steps, pooled over sequences,
    averaged over outputs (``sklearn.metrics.r2_score`` on the valid rows).

    One per sequence (``output="last"``, many-to-one): y (N,) or (N, n_out), the output
    read at each sequence's last valid step (every length >= 1), trained with
    ``LastStep(SquaredError())``; ``predict`` returns (N,) or (N, n_out), ``score`` is
    R^2 over the sequences.

    X is an array (N, T, n_in), an array (N, T) (univariate sequences) or a list of
    arrays (T_i, n_in) / (T_i,) (padded inside, lengths kept); see the module docstring.

    **A pure autoregression** (``model="narx"``, per step): ``fit(None, y)`` (or X of
    shape (N, T, 0)) fits a NARX on y alone, ``Y_t = f(Y_{t-1}, ..., Y_{t-K})``
    (``output_delays`` K; ``input_delays`` must stay None). Trained as ``feedback`` says:
    "open" (teacher forcing: each step reads the true past of y, one-step-ahead) learns
    the dynamics; "closed" (the default) runs from rest, zeros before t = 0, through its
    own outputs. Predicting needs what the model reads, its own past: ``predict(None,
    y_past=Y, horizon=H)`` (Y (N, T_p[, n_out]) or a list, with ``lengths`` for an array)
    warms the NARX up on the known past, teacher-forced, and forecasts the H steps after
    each sequence's last valid step, closed loop (:meth:`unrolled.NARX.forecast`), giving
    (N, H[, n_out]); ``predict(None, horizon=H)`` is the free run from rest, (1, H[,
    n_out]), and ``predict(X)`` with X (N, T, 0) the same for N sequences of T steps.
    ``score(None, y)`` scores that free run from rest over y's steps.

    The inputs are standardised inside (``standardize=True``); the targets are fitted as
    given: scale them to about unit size (:class:`SequenceScaler` of y, then its
    ``inverse_transform`` of the predictions).

    Parameters
    ----------""" + _PARAMS_DOC + """    output : "sequence" (default: one output per step) or "last" (one per sequence).
    """ + _FITTED_DOC + """    n_outputs_ : int, n_out.
    """

    _estimator_type = "regressor"
    # predict's y_past and horizon are arguments, not metadata to route
    __metadata_request__predict = {"y_past": _UNUSED, "horizon": _UNUSED}

    def __init__(self, model: str = "rnn", hidden: int | Sequence[int] = (16,), activation: str = "tanh",
                 epochs: int = 200, batch_size: int = 32, lr: float = 0.01, optimizer: str = "adam",
                 patience: int | None = None, validation_fraction: float = 0.0, clip: float | None = None,
                 tol: float = 1e-3, n_iter_no_change: int = 10,
                 random_state: int | np.random.Generator | None = None, dtype: DTypeLike = "float32",
                 verbose: bool = False, width: int | None = None,
                 input_delays: int | Sequence[int] | None = None,
                 output_delays: int | Sequence[int] | None = None, feedback: str | None = None,
                 context_gradient: str | None = None, decay: float | None = None, blocks: int | None = None,
                 cell: str | None = None, standardize: bool = True, output: str = "sequence") -> None:
        super().__init__(**{k: v for k, v in locals().items() if k not in ("self", "output", "__class__")})
        self.output = output

    def _no_step_targets(self):
        return "output='last' (one target per sequence)" if self.output == "last" else None

    def _autoregression(self):
        return self.model == "narx" and self.output == "sequence"

    def _check_hyperparameters(self):
        if self.output not in ("sequence", "last"):
            raise ValueError(f"output must be 'sequence' (one output per step) or 'last' (one per sequence), "
                             f"got {self.output!r}")
        super()._check_hyperparameters()

    def _data(self, X, y, lengths, *, fitting, dtype=None):
        """Checked X (N, T, n_in), lengths (N,), the targets (N, T, n_out) per step or
        (N, n_out) per sequence, of ``dtype`` (the model's), and whether y came flat."""
        _require_y(y, type(self).__name__)
        dtype = np.dtype(self.dtype if dtype is None else dtype).type
        last = self.output == "last" if fitting else self._last
        if X is None:
            if not (self._autoregression() if fitting else self.n_features_in_ == 0):
                raise ValueError("X=None is a pure autoregression on y alone: model='narx' with "
                                 "output='sequence' only; pass X of shape (N, T, n_in)")
            y3, lengths, (_, flat) = _sequences(y, lengths, dtype, "y")
            return np.zeros(y3.shape[:2] + (0,), dtype=np.dtype(self.dtype)), lengths, \
                self._check_targets(y3, fitting, lengths), flat
        ragged = isinstance(X, (list, tuple))
        X, lengths = self._check_X(X, lengths, fitting=fitting)
        N, T = X.shape[:2]
        n_out = None if fitting else self.n_outputs_
        if last:
            _check_lengths_positive(lengths)
            y = _real_array(y, dtype, "y")
            if y.ndim not in (1, 2) or y.shape[0] != N or (n_out is not None and y.size != N * n_out):
                want = f"({N},) or ({N}, n_out)" if fitting else f"({N}, {n_out})" + (f" or ({N},)" if n_out == 1
                                                                                      else "")
                raise ValueError(f"expected y of shape {want}, one target per sequence of X (output='last'), "
                                 f"got {y.shape}")
            return X, lengths, self._check_targets(y.reshape(N, -1), fitting), y.ndim == 1
        if isinstance(y, (list, tuple)):
            y3, y_lengths, (_, flat) = _sequences(y, None, dtype, "y")
            if len(y_lengths) != N or np.any(y_lengths != lengths):
                raise ValueError(f"expected y as {N} target sequences of the lengths of X's, "
                                 f"{lengths.tolist()[:8]}{' ...' if N > 8 else ''}, got {len(y_lengths)} of "
                                 f"lengths {y_lengths.tolist()[:8]}{' ...' if len(y_lengths) > 8 else ''}")
            padded = np.zeros((N, T, y3.shape[2]), dtype=dtype)
            padded[:, :y3.shape[1]] = y3
            return X, lengths, self._check_targets(padded, fitting, lengths), flat
        y = _real_array(y, dtype, "y")
        n = y.shape[2] if y.ndim == 3 else 1
        if y.ndim not in (2, 3) or y.shape[:2] != (N, T) or (n_out is not None and n != n_out):
            want = f"({N}, {T}) or ({N}, {T}, n_out)" if fitting else \
                f"({N}, {T}, {n_out})" + (f" or ({N}, {T})" if n_out == 1 else "")
            like = "the list X padded, " if ragged else ""
            hint = " - help: one target per sequence is output='last'" if y.shape == (N,) else ""
            raise ValueError(f"expected y of shape {want} like {like}X {X.shape}, got {y.shape}{hint}")
        return X, lengths, self._check_targets(y if y.ndim == 3 else y[..., None], fitting, lengths), y.ndim == 2

    def _check_targets(self, y, fitting, lengths=None):
        if y.shape[-1] == 0:
            raise ValueError(f"expected y with at least one output, got {y.shape}")
        if not fitting and y.shape[-1] != self.n_outputs_:
            raise ValueError(f"expected y with {self.n_outputs_} outputs, as fitted, got {y.shape}")
        _check_finite(y, "y", lengths if y.ndim == 3 else None)
        if lengths is not None and y.ndim == 3:
            y = _zero_padding(y, lengths)
        return y

    def fit(self, X: ArrayLike | None, y: ArrayLike, lengths: ArrayLike | None = None) -> Self:
        """Train a new model.

        Parameters
        ----------
        X : (N, T, n_in) or (N, T) array, or a list of (T_i, n_in) / (T_i,) arrays; None
            (or (N, T, 0)) for a NARX on y alone.
        y : per step, (N, T, n_out) or (N, T) or a list of (T_i, n_out) / (T_i,) arrays;
            with ``output="last"``, (N,) or (N, n_out).
        lengths : None or (N,) ints, the valid steps of each sequence of an array X (or
            of y, when X is None).

        Returns
        -------
        self
        """
        self._check_hyperparameters()
        X, lengths, target, flat = self._data(X, y, lengths, fitting=True)
        last = self.output == "last"
        return self._train(X, target, lengths, LastStep(SquaredError()) if last else SquaredError(),
                           target.shape[-1], {"n_features_in_": X.shape[2], "n_outputs_": target.shape[-1],
                                              "_flat_y": flat, "_last": last})

    def predict(self, X: ArrayLike | None, lengths: ArrayLike | None = None, *, y_past: ArrayLike | None = None,
                horizon: int | None = None) -> np.ndarray:
        """The fitted model's outputs.

        Parameters
        ----------
        X : as ``fit`` takes it; None for a NARX fitted on y alone (with ``horizon``).
        lengths : None or (N,) ints (of X, or of ``y_past`` when X is None).
        y_past : NARX on y alone only: the known past (N, T_p[, n_out]) or a list, to
            forecast ``horizon`` steps after (see the class docstring).
        horizon : int >= 1, the steps to forecast or to run free (X None only).

        Returns
        -------
        Per step: (N, T, n_out) (or (N, T) if fitted on flat targets), 0 at padded steps;
        ``output="last"``: (N, n_out) or (N,); a forecast: (N, horizon[, n_out]).
        """
        self._check_is_fitted()
        if X is None or y_past is not None or horizon is not None:
            out = self._autoregress(X, lengths, y_past, horizon)
        else:
            out, lengths = self._outputs(X, lengths)
            out = _last_steps(out, lengths) if self._last else out
        return out[..., 0] if self._flat_y else out

    def _autoregress(self, X, lengths, y_past, horizon):
        if self.n_features_in_ != 0:
            raise ValueError(f"X=None, y_past and horizon are for a NARX fitted on y alone (X=None); this "
                             f"{type(self).__name__} reads {self.n_features_in_} input features: pass X "
                             f"(N, T, {self.n_features_in_}) (to forecast after a known past with inputs, "
                             f"use est.model_.forecast(x_past, y_past, horizon, x_future=...), with x_past and "
                             f"x_future standardised by input_mean_ and input_scale_)")
        if X is not None:
            raise ValueError("an autoregression's predict takes X=None with y_past and / or horizon, or X of "
                             "shape (N, T, 0) alone")
        if horizon is None:
            raise ValueError("a NARX on y alone predicts the steps after a known past or from rest: pass "
                             "horizon=H (and y_past= the known past)")
        if y_past is None:
            return self.model_.predict(None, steps=horizon)
        y3, lengths, _ = _sequences(y_past, lengths, np.dtype(self.dtype).type, "y_past")
        return self.model_.forecast(None, self._check_targets(y3, fitting=False), horizon, lengths=lengths)

    def score(self, X: ArrayLike | None, y: ArrayLike, lengths: ArrayLike | None = None,
              sample_weight: ArrayLike | None = None) -> float:
        """R^2 of ``predict(X)`` against y over the valid steps (per sequence with
        ``output="last"``): 1 is perfect, 0 the mean.

        Parameters
        ----------
        X, y, lengths : as ``fit`` takes them.
        sample_weight : None or (N,) weights of the sequences (each valid step of sequence
            n weighs ``sample_weight[n]``), as sklearn's ``r2_score`` takes them.

        Returns
        -------
        float
        """
        self._check_is_fitted()
        X, lengths, target, _ = self._data(X, y, lengths, fitting=False, dtype=np.float64)
        w = _sample_weight(sample_weight, X.shape[0])
        out, lengths = self._outputs(X, lengths)
        return self._validation_score(out, target, lengths, w)

    def _validation_score(self, out, target, lengths, weights=None):
        if getattr(self, "_last", self.output == "last"):
            return _r2(_last_steps(out, lengths), target, weights)
        return self._score_outputs(out, target, lengths, weights)

    @staticmethod
    def _score_outputs(out, target, lengths, weights=None):
        """R^2 of (N, T, n_out) outputs against targets over the valid steps."""
        mask = _valid(lengths, out.shape[1])
        steps = None if weights is None else np.broadcast_to(weights[:, None], mask.shape)[mask]
        return _r2(out[mask], target[mask], steps)

    def _fitted_attributes(self):
        return {"n_features_in_": _pack(self.n_features_in_), "n_outputs_": _pack(self.n_outputs_),
                "flat_y": self._flat_y, "last": self._last}

    @staticmethod
    def _attributes_from(a):
        return {"n_features_in_": _unpack(a["n_features_in_"]), "n_outputs_": _unpack(a["n_outputs_"]),
                "_flat_y": a["flat_y"], "_last": a["last"]}


class SequenceClassifier(_SequenceEstimator):
    __doc__ = """Many-to-one classification: one label per sequence.

    X (N, T, n_in), (N, T) (univariate sequences) or a list of arrays (T_i, n_in) /
    (T_i,) -> y (N,) labels of any kind (ints, strings, ...; ``classes_`` holds them
    sorted). The model's output layer is a softmax over the classes, read out per
    sequence by ``readout``:

    * ``"pooled"`` (default): the softmax outputs averaged over the sequence's valid
      steps, trained with ``PooledMean(CrossEntropy())``. Every step gets a gradient, so
      a plain recurrence learns on long sequences, where the last step alone (below)
      reaches back only as far as the gradient survives;
    * ``"last"``: the output at the last valid step, ``lengths[n] - 1``, trained with
      ``LastStep(CrossEntropy())`` (what a gated ``model="gru"``/``"lstm"`` or a
      ``"birnn"`` can carry over long spans).

    ``model`` defaults to ``"gru"`` here (``"rnn"`` in :class:`SequenceRegressor`): on the
    shipped speech tasks and on synthetic sequences of 150-200 steps a GRU with the pooled
    read-out was the one configuration that learned every task
    (``benchmarks/classifier_defaults.py``; the table is in the README).

    Every length must be >= 1. ``predict_proba`` is the read-out, ``predict`` its most
    probable class, ``score`` the accuracy. ``feedback="open"`` does not apply (there are
    no past targets to feed). A fit whose best training loss stays within 5% of the
    cross entropy of always guessing the class frequencies (it learned nothing) warns
    with :class:`ConvergenceWarning`, saying what to try (``tol=numpy.inf``: no warning).

    Parameters
    ----------""" + _PARAMS_DOC + """    readout : "pooled" (default) or "last", as above.
""" + _FITTED_DOC + """    classes_ : (n_classes,) array, the labels seen in fit, sorted.
    """

    _estimator_type = "classifier"
    _output = "softmax"

    def __init__(self, model: str = "gru", hidden: int | Sequence[int] = (16,), activation: str = "tanh",
                 epochs: int = 200, batch_size: int = 32, lr: float = 0.01, optimizer: str = "adam",
                 patience: int | None = None, validation_fraction: float = 0.0, clip: float | None = None,
                 tol: float = 1e-3, n_iter_no_change: int = 10,
                 random_state: int | np.random.Generator | None = None, dtype: DTypeLike = "float32",
                 verbose: bool = False, width: int | None = None,
                 input_delays: int | Sequence[int] | None = None,
                 output_delays: int | Sequence[int] | None = None, feedback: str | None = None,
                 context_gradient: str | None = None, decay: float | None = None, blocks: int | None = None,
                 cell: str | None = None, standardize: bool = True, readout: str = "pooled") -> None:
        super().__init__(**{k: v for k, v in locals().items() if k not in ("self", "readout", "__class__")})
        self.readout = readout

    def _no_step_targets(self):
        return "a classifier"

    def _check_hyperparameters(self):
        if self.readout not in _READOUTS:
            raise ValueError(f"readout must be 'pooled' (the softmax outputs averaged over the valid steps) or "
                             f"'last' (the output at the last valid step), got {self.readout!r}")
        super()._check_hyperparameters()

    def _read_out(self, out, lengths):
        """(N, n_classes): the outputs (N, T, n_classes) averaged over each sequence's valid
        steps (``readout="pooled"``) or at its last one (``"last"``)."""
        if self.readout == "last":
            return _last_steps(out, lengths)
        _check_lengths_positive(lengths)
        mask = _valid(lengths, out.shape[1])[..., None]
        return np.where(mask, out, 0).sum(axis=1) / lengths[:, None]

    @staticmethod
    def _check_labels(y, N):
        _require_y(y, "SequenceClassifier")
        y = np.asarray(y)
        if y.shape == (N, 1):
            warnings.warn(f"A column-vector y was passed when a 1d array was expected: y of shape {y.shape} is "
                          f"read as ({N},) labels (y.ravel())", _DataConversionWarning, stacklevel=3)
            y = y.ravel()
        if y.shape != (N,):
            hint = " - help: per-step targets are a SequenceRegressor's" if y.ndim >= 2 and y.shape[0] == N else ""
            raise ValueError(f"expected y of shape ({N},), one label per sequence of X, got {y.shape}{hint}")
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)):
                raise ValueError("y holds NaN or infinity")
            if not np.all(y == np.round(y)):
                raise ValueError("y holds non-integer numbers, which look like a continuous (regression) target: "
                                 "SequenceClassifier takes class labels (ints, strings, ...)")
        return y

    def fit(self, X: ArrayLike, y: ArrayLike, lengths: ArrayLike | None = None) -> Self:
        """Train a new model.

        Parameters
        ----------
        X : (N, T, n_in) or (N, T) array, or a list of (T_i, n_in) / (T_i,) arrays.
        y : (N,) labels.
        lengths : None or (N,) ints >= 1, the valid steps of each sequence of an array X.

        Returns
        -------
        self
        """
        self._check_hyperparameters()
        X, lengths = self._check_X(X, lengths, fitting=True)
        y = self._check_labels(y, X.shape[0])
        _check_lengths_positive(lengths)
        try:
            classes, codes = np.unique(y, return_inverse=True)
        except TypeError as exc:
            raise TypeError(f"y's labels must be of one sortable kind (all str or all numbers): {exc}") from None
        if len(classes) < 2:
            raise ValueError(f"expected at least 2 classes in y, got {len(classes)} class"
                             f"{'es' if len(classes) != 1 else ''}: {classes.tolist()}")
        codes = codes.reshape(-1).astype(np.int64)
        read = PooledMean(CrossEntropy()) if self.readout == "pooled" else LastStep(CrossEntropy())
        self._train(X, codes, lengths, read, len(classes), {"classes_": classes, "n_features_in_": X.shape[2]})
        prior = np.bincount(codes, minlength=len(classes)) / len(codes)
        chance = float(-np.sum(prior[prior > 0] * np.log(prior[prior > 0])))
        best = min(self.loss_curve_)
        if self.tol != np.inf and best > (1 - _CHANCE_MARGIN) * chance:
            warnings.warn(
                f"SequenceClassifier learned nothing: its best training loss {best:.4g} stayed within "
                f"{_CHANCE_MARGIN:.0%} of {chance:.4g}, the cross entropy of always guessing the class frequencies. "
                f"{_untried_remedies(self)}", ConvergenceWarning, stacklevel=2)
        return self

    def predict_proba(self, X: ArrayLike, lengths: ArrayLike | None = None) -> np.ndarray:
        """Class probabilities of each sequence: the softmax outputs averaged over its valid
        steps (``readout="pooled"``) or at its last valid step (``"last"``).

        Parameters
        ----------
        X, lengths : as ``fit`` takes them.

        Returns
        -------
        (N, n_classes) float64, columns in the order of ``classes_``.
        """
        out, lengths = self._outputs(X, lengths)
        return self._read_out(out, lengths).astype(np.float64)

    def predict_log_proba(self, X: ArrayLike, lengths: ArrayLike | None = None) -> np.ndarray:
        """Log probabilities (floored at the smallest positive float).

        Parameters
        ----------
        X, lengths : as ``fit`` takes them.

        Returns
        -------
        (N, n_classes) float64.
        """
        p = self.predict_proba(X, lengths)
        return np.log(np.maximum(p, np.finfo(p.dtype).tiny))

    def predict(self, X: ArrayLike, lengths: ArrayLike | None = None) -> np.ndarray:
        """The most probable label of each sequence.

        Parameters
        ----------
        X, lengths : as ``fit`` takes them.

        Returns
        -------
        (N,) labels, of ``classes_``.
        """
        proba = self.predict_proba(X, lengths)       # checks that it is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: ArrayLike, y: ArrayLike, lengths: ArrayLike | None = None,
              sample_weight: ArrayLike | None = None) -> float:
        """Accuracy: the fraction of sequences whose predicted label equals y.

        Parameters
        ----------
        X, lengths : as ``fit`` takes them; y : (N,) labels.
        sample_weight : None or (N,) weights of the sequences (a weighted fraction).

        Returns
        -------
        float in [0, 1].
        """
        pred = self.predict(X, lengths)
        y = self._check_labels(y, len(pred))
        return float(np.average(pred == y, weights=_sample_weight(sample_weight, len(pred))))

    def _validation_score(self, out, codes, lengths):
        return float(np.mean(np.argmax(self._read_out(out, lengths), axis=1) == codes))

    def _fitted_attributes(self):
        labels = self.classes_
        return {"n_features_in_": _pack(self.n_features_in_), "classes_dtype": labels.dtype.str,
                "classes_": labels if labels.dtype.kind in "biuf" else labels.tolist()}

    @staticmethod
    def _attributes_from(a):
        return {"n_features_in_": _unpack(a["n_features_in_"]),
                "classes_": np.asarray(a["classes_"], dtype=np.dtype(a["classes_dtype"]))}


@register_model
class SequenceScaler(_Params):
    """Standardise sequences per feature, over the valid steps only.

    ``transform`` gives ``(x - mean_) / scale_`` at every valid step, the mean and the
    (population) standard deviation of each feature taken over every valid step of every
    sequence seen in ``fit`` (padded steps never count, and come out 0). X comes as the
    estimators take it: (N, T, n), (N, T) or a list of (T_i, n) / (T_i,) arrays, and goes
    out in the same form (a list stays a list), so that it sits in a
    ``sklearn.pipeline.Pipeline`` in front of a :class:`SequenceRegressor` or
    :class:`SequenceClassifier`.

    Parameters
    ----------
    with_mean : bool, subtract the mean (default True).
    with_std : bool, divide by the standard deviation (default True); a feature of
        deviation 0 is divided by 1.

    Fitted attributes
    -----------------
    mean_, scale_ : (n_features,) float64. var_ : (n_features,) float64, the variance.
    n_features_in_ : int, n. n_steps_seen_ : int, the valid steps counted.
    """

    _fitted_mark = "mean_"

    def __init__(self, with_mean: bool = True, with_std: bool = True) -> None:
        self.with_mean = with_mean
        self.with_std = with_std

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(), input_tags=InputTags(two_d_array=True, three_d_array=True))

    def _check(self, X, lengths, fitting):
        X, lengths, form = _sequences(X, lengths, np.float64)
        if 0 in X.shape:
            raise ValueError(f"expected X with at least one sequence, one step and one feature, got {X.shape}")
        _check_finite(X, "X", lengths)
        if not fitting and X.shape[2] != self.n_features_in_:
            raise ValueError(f"expected X of shape (N, T, {self.n_features_in_}): SequenceScaler was fitted "
                             f"with {self.n_features_in_} features, got {X.shape}")
        return X, lengths, form

    def fit(self, X: ArrayLike, y: object = None, lengths: ArrayLike | None = None) -> Self:
        """Learn each feature's mean and deviation over the valid steps.

        Parameters
        ----------
        X : (N, T, n) or (N, T) array, or a list of (T_i, n) / (T_i,) arrays.
        y : ignored.
        lengths : None or (N,) ints, the valid steps of each sequence of an array X.

        Returns
        -------
        self
        """
        for name in ("with_mean", "with_std"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        X, lengths, _ = self._check(X, lengths, fitting=True)
        steps = X[_valid(lengths, X.shape[1])]                  # (valid steps, n)
        if len(steps) == 0:
            raise ValueError("SequenceScaler needs at least one valid step: every length is 0")
        self.n_features_in_ = X.shape[2]
        self.n_steps_seen_ = len(steps)
        mean, var, scale = _moments(X, lengths)
        self.mean_ = mean if self.with_mean else np.zeros(X.shape[2])
        self.var_ = var if self.with_std else np.ones(X.shape[2])
        self.scale_ = scale if self.with_std else np.ones(X.shape[2])
        return self

    def _apply(self, X, lengths, inverse):
        self._check_is_fitted()
        X, lengths, form = self._check(X, lengths, fitting=False)
        out = X * self.scale_ + self.mean_ if inverse else (X - self.mean_) / self.scale_
        out[~_valid(lengths, X.shape[1])] = 0.0
        return _as_given(out, lengths, form)

    def transform(self, X: ArrayLike, lengths: ArrayLike | None = None) -> np.ndarray | list[np.ndarray]:
        """Standardise X.

        Parameters
        ----------
        X, lengths : as ``fit`` takes them.

        Returns
        -------
        ``(X - mean_) / scale_`` (float64) in the form X came in, 0 at padded steps.
        """
        return self._apply(X, lengths, inverse=False)

    def inverse_transform(self, X: ArrayLike,
                          lengths: ArrayLike | None = None) -> np.ndarray | list[np.ndarray]:
        """Undo :meth:`transform`.

        Parameters
        ----------
        X, lengths : as ``fit`` takes them.

        Returns
        -------
        ``X * scale_ + mean_`` (float64) in the form X came in, 0 at padded steps.
        """
        return self._apply(X, lengths, inverse=True)

    def fit_transform(self, X: ArrayLike, y: object = None,
                      lengths: ArrayLike | None = None) -> np.ndarray | list[np.ndarray]:
        """``fit(X, y, lengths)`` then ``transform(X, lengths)``.

        Parameters
        ----------
        X, y, lengths : as ``fit`` takes them.

        Returns
        -------
        The standardised X, as :meth:`transform` gives it.
        """
        return self.fit(X, y, lengths).transform(X, lengths)

    def _fitted_config(self):
        return {"mean": self.mean_, "var": self.var_, "scale": self.scale_,
                "n_features_in": _pack(self.n_features_in_), "n_steps_seen": _pack(self.n_steps_seen_)}

    def _restore_fit(self, f):
        self.mean_, self.var_, self.scale_ = f["mean"], f["var"], f["scale"]
        self.n_features_in_, self.n_steps_seen_ = _unpack(f["n_features_in"]), _unpack(f["n_steps_seen"])


register_model(SequenceRegressor)
register_model(SequenceClassifier)
