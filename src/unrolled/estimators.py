"""scikit-learn style estimators over the engine: fit / predict / score, get_params / set_params.

Two estimators wrap every named model of the family (``RNN``, ``TDNN``, ``NARX``, ``Elman``,
``Jordan``, ``StateSpace``, ``BiRNN``) and :func:`unrolled.fit`:

* :class:`SequenceRegressor`: many-to-many regression. X (N, T, n_in) -> y (N, T, n_out)
  (or (N, T) for one output), one output at every step; trained with
  :class:`~unrolled.divergences.SquaredError`; ``score`` is R^2 over the valid steps.
* :class:`SequenceClassifier`: many-to-one classification. X (N, T, n_in) -> one label per
  sequence, y (N,) of any hashable labels; a softmax output read at each sequence's last
  valid step, trained with ``LastStep(CrossEntropy())``; ``score`` is accuracy.

Shapes: N sequences (batch), T steps, n_in input features, n_out outputs. Variable lengths
are given as ``lengths=(N,)`` integers (padding at the end of each sequence) to ``fit``,
``predict`` and ``score``; padded steps are never read.

They follow scikit-learn's contract without depending on it: ``__init__`` stores its
keyword arguments and nothing else; every check happens in ``fit``; what ``fit`` learns
ends in ``_`` (``model_``, ``loss_curve_``, ``n_iter_``, ...); ``fit`` returns ``self``;
``random_state`` makes a fit reproducible; :class:`ConvergenceWarning` says when training
stopped while the loss was still falling. ``get_params`` / ``set_params`` read the
constructor's signature, so ``sklearn.base.clone`` (or :func:`clone` here),
``GridSearchCV`` and ``cross_val_score`` work when scikit-learn is installed
(``__sklearn_tags__`` imports it only when scikit-learn itself asks).

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

import numpy as np

from . import optim as _optim
from .divergences import CrossEntropy, LastStep, SquaredError
from .models import NARX, RNN, TDNN, BiRNN, Elman, Jordan, StateSpace
from ._checks import as_float_array, check_lengths, positive_int
from .train import Callback
from .train import fit as _fit

__all__ = ["SequenceRegressor", "SequenceClassifier", "ConvergenceWarning", "NotFittedError", "clone"]


_OPTIMIZERS = _optim.names() + ["bayesian"]   # "lm" / "bayesian": Levenberg-Marquardt (trainlm / trainbr)

class ConvergenceWarning(UserWarning):
    """Training ended while the loss was still falling (see the module's convergence rule)."""


class NotFittedError(ValueError, AttributeError):
    """``predict`` / ``score`` called before ``fit``."""


# model name -> (class, {estimator parameter: default when None}); a parameter named
# here is passed to that model only, and setting it for any other model is an error.
_MODELS = {
    "rnn": (RNN, {}),
    "tdnn": (TDNN, {"width": 4}),
    "narx": (NARX, {"input_delays": 2, "output_delays": 2, "feedback": "closed"}),
    "elman": (Elman, {"context_gradient": "blocked"}),
    "jordan": (Jordan, {"decay": 0.5}),
    "statespace": (StateSpace, {}),
    "birnn": (BiRNN, {"blocks": 1}),
}
_MODEL_SPECIFIC = ("width", "input_delays", "output_delays", "feedback", "context_gradient", "decay", "blocks")


def clone(estimator):
    """A new, unfitted estimator with the same parameters (as ``sklearn.base.clone``).

    Parameters that are estimators are cloned; others are deep-copied.
    """
    if not hasattr(estimator, "get_params") or isinstance(estimator, type):
        raise TypeError(f"cannot clone {estimator!r}: it is not an estimator instance (no get_params)")
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        if hasattr(value, "get_params") and not isinstance(value, type):
            params[name] = clone(value)
        else:
            params[name] = copy.deepcopy(value)
    return type(estimator)(**params)


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


class _SequenceEstimator:
    """The scikit-learn contract and the training shared by both estimators."""

    def __init__(self, model="rnn", hidden=(16,), activation="tanh", epochs=200, batch_size=32, lr=0.01,
                 optimizer="adam", patience=None, validation_fraction=0.0, clip=None, tol=1e-3,
                 n_iter_no_change=10, random_state=None, dtype="float32", verbose=False, width=None,
                 input_delays=None, output_delays=None, feedback=None, context_gradient=None, decay=None,
                 blocks=None):
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

    _output = "identity"

    # ------------------------------------------------------------------ params
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

    def get_params(self, deep=True):
        """The constructor's arguments, dict name -> value (``deep``: nested ``a__b`` too)."""
        out = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
            out[name] = value
        return out

    def set_params(self, **params):
        """Set constructor arguments (``a__b`` reaches a nested estimator's ``b``); returns self.

        No value is checked here: ``fit`` checks them all.
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

    def __sklearn_tags__(self):
        # Only scikit-learn calls this, so scikit-learn is importable here.
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        classifier = self._estimator_type == "classifier"
        return Tags(estimator_type=self._estimator_type,
                    target_tags=TargetTags(required=True, one_d_labels=classifier,
                                           multi_output=not classifier),
                    classifier_tags=ClassifierTags() if classifier else None,
                    regressor_tags=None if classifier else RegressorTags(),
                    input_tags=InputTags(two_d_array=False, three_d_array=True))

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
        if np.dtype(self.dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        own = _MODELS[self.model][1]
        for name in _MODEL_SPECIFIC:
            if getattr(self, name) is not None and name not in own:
                users = [m for m, (_, specific) in _MODELS.items() if name in specific]
                raise ValueError(f"{name}={getattr(self, name)!r} applies to model={users[0]!r} only, "
                                 f"not model={self.model!r}: leave it None")

    def _check_X(self, X, name="X", *, fitting):
        """X as a float (N, T, n_in) array of the model's dtype."""
        X = as_float_array(X, np.dtype(self.dtype).type, name)
        if X.ndim != 3:
            hint = f" - help: one feature per step is {name}[..., None]" if X.ndim == 2 else ""
            raise ValueError(f"expected {name} of shape (N, T, n_in), got {X.shape}{hint}")
        if 0 in X.shape:
            raise ValueError(f"expected {name} with at least one sequence, one step and one feature, got {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} holds NaN or infinity")
        if not fitting and X.shape[2] != self.n_features_in_:
            raise ValueError(f"expected {name} of shape (N, T, {self.n_features_in_}): "
                             f"{type(self).__name__} was fitted with {self.n_features_in_} input features, "
                             f"got {X.shape}")
        return X

    def _forget_fit(self):
        """Remove every fitted attribute: a fit that fails from here on leaves the estimator unfitted."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")] + ["_flat_y"]:
            self.__dict__.pop(name, None)

    def _check_is_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")

    # --------------------------------------------------------------- training
    def _build_model(self, n_in, n_out, seed):
        cls, specific = _MODELS[self.model]
        kwargs = {name: default if getattr(self, name) is None else getattr(self, name)
                  for name, default in specific.items()}
        return cls(n_in, n_out, hidden=self.hidden, activation=self.activation, output=self._output,
                   dtype=np.dtype(self.dtype).type, seed=seed, **kwargs)

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
        validation, train = None, np.arange(N)
        if self.validation_fraction > 0:
            n_val = int(round(self.validation_fraction * N))
            if n_val < 1 or n_val >= N:
                raise ValueError(f"validation_fraction={self.validation_fraction} of N={N} sequences leaves "
                                 f"{n_val} for validation and {N - n_val} for training; both need at least one")
            order = np.random.default_rng(split_seed).permutation(N)
            held, train = np.sort(order[:n_val]), np.sort(order[n_val:])
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

        self.__dict__.update(fitted)
        self.model_ = model
        self.history_ = history
        self.loss_curve_ = list(history.loss)
        self.n_iter_ = history.epochs
        self.best_epoch_ = history.best_epoch
        if validation is not None:
            self.validation_loss_curve_ = list(history.val_loss)
            self.validation_scores_ = list(scorer.scores)
        if not history.stopped_early and not _converged(self.loss_curve_, self.tol, self.n_iter_no_change):
            warnings.warn(
                f"{type(self).__name__} ran all {self.epochs} epochs and the training loss is still falling "
                f"(its best over the last {self.n_iter_no_change} epochs improved by more than tol={self.tol} "
                f"of the best before): raise epochs, or stop early with patience and validation_fraction",
                ConvergenceWarning, stacklevel=3)
        return self

    def _outputs(self, X, lengths):
        """Checked inputs and the model's outputs (N, T, n_out), zero at padded steps."""
        self._check_is_fitted()
        X = self._check_X(X, fitting=False)
        lengths = check_lengths(lengths, X.shape[0], X.shape[1])
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
        self.scores.append(self.estimator._score_outputs(y, target, lengths))
        return False


def _real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# ---------------------------------------------------------------------------
# the estimators

_PARAMS_DOC = """
    model : "rnn" | "tdnn" | "narx" | "elman" | "jordan" | "statespace" | "birnn"
        The named model (``unrolled.RNN``, ``TDNN``, ...), built in ``fit`` with
        n_in = X.shape[2].
    hidden : tuple of int, the hidden layer sizes H_1 .. H_L.
    activation : "tanh" | "relu" | "sigmoid" | "identity", the hidden activation.
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

    Fitted attributes
    -----------------
    model_ : the trained unrolled model.
    n_features_in_ : int, n_in.
    loss_curve_ : list of float, the training divergence of each epoch (per sequence:
        summed over steps and outputs, averaged over the epoch's minibatches).
    n_iter_ : int, epochs run. best_epoch_ : int, the (0-based) epoch whose weights the
        model holds. history_ : the :class:`unrolled.History` of the fit.
    validation_loss_curve_, validation_scores_ : lists, per epoch, on the held-out
        sequences (only with ``validation_fraction > 0``).
"""


class SequenceRegressor(_SequenceEstimator):
    __doc__ = """Many-to-many regression: one output vector at every step.

    X (N, T, n_in) -> y (N, T, n_out), or (N, T) for a single output (``predict`` then
    returns (N, T) too). The model's output layer is linear; it is trained with
    :class:`~unrolled.divergences.SquaredError` summed over the valid steps. ``score``
    is the coefficient of determination R^2 over all valid steps, pooled over sequences,
    averaged over outputs (``sklearn.metrics.r2_score`` on the valid rows).

    The model sees the data as given: scale inputs and targets to about unit size.

    Parameters
    ----------""" + _PARAMS_DOC + """    n_outputs_ : int, n_out.
    """

    _estimator_type = "regressor"

    def _check_y(self, y, X, *, fitting, dtype=None):
        """y as float (N, T, n_out) of ``dtype`` (the model's), and whether it came as (N, T)."""
        N, T = X.shape[:2]
        y = as_float_array(y, np.dtype(self.dtype if dtype is None else dtype).type, "y")
        n_out = y.shape[2] if y.ndim == 3 else 1
        expected = f"({N}, {T}) or ({N}, {T}, n_out)" if fitting else \
            f"({N}, {T}, {self.n_outputs_})" + (f" or ({N}, {T})" if self.n_outputs_ == 1 else "")
        if y.ndim not in (2, 3) or y.shape[:2] != (N, T) or (not fitting and n_out != self.n_outputs_):
            hint = " - help: a SequenceClassifier takes one label per sequence" if y.shape == (N,) else ""
            raise ValueError(f"expected y of shape {expected} like X {X.shape}, got {y.shape}{hint}")
        if y.ndim == 3 and n_out == 0:
            raise ValueError(f"expected y with at least one output, got {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("y holds NaN or infinity")
        return (y[..., None] if y.ndim == 2 else y), y.ndim == 2

    def fit(self, X, y, lengths=None):
        """Train a new model on X (N, T, n_in), y (N, T, n_out) or (N, T); returns self."""
        self._check_hyperparameters()
        X = self._check_X(X, fitting=True)
        y3, flat = self._check_y(y, X, fitting=True)
        lengths = check_lengths(lengths, X.shape[0], X.shape[1])
        return self._train(X, y3, lengths, SquaredError(), y3.shape[2],
                           {"n_features_in_": X.shape[2], "n_outputs_": y3.shape[2], "_flat_y": flat})

    def predict(self, X, lengths=None):
        """Outputs (N, T, n_out) (or (N, T) if fitted on (N, T) targets), 0 at padded steps."""
        y, _ = self._outputs(X, lengths)
        return y[..., 0] if self._flat_y else y

    def score(self, X, y, lengths=None):
        """R^2 of ``predict(X)`` against y over the valid steps (1 is perfect, 0 the mean)."""
        out, lengths = self._outputs(X, lengths)
        X = np.asarray(X)
        y3, _ = self._check_y(y, X, fitting=False, dtype=np.float64)
        return self._score_outputs(out, y3, lengths)

    @staticmethod
    def _score_outputs(out, target, lengths):
        mask = np.arange(out.shape[1])[None, :] < lengths[:, None]
        pred = out[mask].astype(np.float64)          # (valid steps, n_out)
        true = target[mask].astype(np.float64)
        if len(true) == 0:
            raise ValueError("R^2 needs at least one valid step: every length is 0")
        ss_res = np.sum((true - pred) ** 2, axis=0)
        ss_tot = np.sum((true - true.mean(axis=0)) ** 2, axis=0)
        # sklearn's convention for a constant target: 1 if predicted exactly, else 0
        safe = np.where(ss_tot > 0, ss_tot, 1.0)
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))
        return float(np.mean(r2))


class SequenceClassifier(_SequenceEstimator):
    __doc__ = """Many-to-one classification: one label per sequence, read at its last valid step.

    X (N, T, n_in) -> y (N,) labels of any kind (ints, strings, ...; ``classes_`` holds
    them sorted). The model's output layer is a softmax over the classes; it is trained
    with ``LastStep(CrossEntropy())``: the cross entropy of the output at each
    sequence's last valid step, ``lengths[n] - 1`` (so every length must be >= 1).
    ``predict_proba`` is that output, ``predict`` its most probable class, ``score`` the
    accuracy. ``feedback="open"`` does not apply (there are no past targets to feed).

    Parameters
    ----------""" + _PARAMS_DOC + """    classes_ : (n_classes,) array, the labels seen in fit, sorted.
    """

    _estimator_type = "classifier"
    _output = "softmax"

    @staticmethod
    def _check_labels(y, N):
        y = np.asarray(y)
        if y.shape != (N,):
            hint = " - help: y.ravel()" if y.shape == (N, 1) else \
                (" - help: per-step targets are a SequenceRegressor's" if y.ndim >= 2 and y.shape[0] == N else "")
            raise ValueError(f"expected y of shape ({N},), one label per sequence of X, got {y.shape}{hint}")
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)):
                raise ValueError("y holds NaN or infinity")
            if not np.all(y == np.round(y)):
                raise ValueError("y holds non-integer numbers, which look like a regression target: "
                                 "SequenceClassifier takes class labels (ints, strings, ...)")
        return y

    def _check_lengths_positive(self, lengths):
        if np.any(lengths < 1):
            n = int(np.flatnonzero(lengths < 1)[0])
            raise ValueError(f"a sequence is classified at its last valid step: every length must be >= 1, "
                             f"got lengths[{n}] = {lengths[n]}")

    def fit(self, X, y, lengths=None):
        """Train a new model on X (N, T, n_in) and labels y (N,); returns self."""
        self._check_hyperparameters()
        if self.feedback == "open":
            raise ValueError("feedback='open' feeds back true past per-step targets, which a classifier "
                             "does not have: use feedback='closed' (or None)")
        X = self._check_X(X, fitting=True)
        y = self._check_labels(y, X.shape[0])
        lengths = check_lengths(lengths, X.shape[0], X.shape[1])
        self._check_lengths_positive(lengths)
        try:
            classes, codes = np.unique(y, return_inverse=True)
        except TypeError as exc:
            raise TypeError(f"y's labels must be of one sortable kind (all str or all numbers): {exc}") from None
        if len(classes) < 2:
            raise ValueError(f"expected at least 2 classes in y, got {len(classes)}: {classes.tolist()}")
        return self._train(X, codes.reshape(-1).astype(np.int64), lengths, LastStep(CrossEntropy()), len(classes),
                           {"classes_": classes, "n_features_in_": X.shape[2]})

    def predict_proba(self, X, lengths=None):
        """(N, n_classes) class probabilities at each sequence's last valid step (columns: classes_)."""
        out, lengths = self._outputs(X, lengths)
        self._check_lengths_positive(lengths)
        return out[np.arange(len(lengths)), lengths - 1].astype(np.float64)

    def predict_log_proba(self, X, lengths=None):
        """(N, n_classes) log probabilities (floored at the smallest positive float)."""
        p = self.predict_proba(X, lengths)
        return np.log(np.maximum(p, np.finfo(p.dtype).tiny))

    def predict(self, X, lengths=None):
        """(N,) the most probable label of each sequence."""
        proba = self.predict_proba(X, lengths)       # checks that it is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, lengths=None):
        """Accuracy: the fraction of sequences whose predicted label equals y (N,)."""
        pred = self.predict(X, lengths)
        y = self._check_labels(y, len(pred))
        return float(np.mean(pred == y))

    def _score_outputs(self, out, codes, lengths):
        return float(np.mean(np.argmax(out[np.arange(len(lengths)), lengths - 1], axis=1) == codes))
