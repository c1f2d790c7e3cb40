"""unrolled: recurrent neural networks as one column of layers unrolled in time.

Every model of the family (TDNN, NARX, Jordan, Elman, multi-layer RNN, bidirectional)
is a ``Network`` of layers and delayed links; training is backpropagation through that
column unrolled over the sequence. Arrays are NumPy, batch first: inputs (N, T, n_in),
outputs (N, T, n_out).
"""

from . import activations, divergences, optim
from .blocks import Bidirectional, Stack
from .generate import generate
from .interop import from_torch, to_onnx, to_torch, torch_h0
from .io import load, save
from .models import GRU, LSTM, NARX, RNN, TDNN, BiRNN, Elman, Jordan, Seq2Seq, StateSpace
from .engine import ForwardCache, Layer, Link, Network, set_default_backend
from .engine.backend import get_num_threads, num_threads, set_num_threads
from .train import (Callback, Checkpoint, EarlyStopping, History, LearningRateSchedule, ProgressBar,
                    ReduceLROnPlateau, evaluate, fit)
from .models import CharRNN
from .ensemble import Ensemble, fit_many
from . import analysis
from .forecasting import Backtest, Forecaster, backtest

__version__ = "0.1.0"

__all__ = [
    "Network", "Layer", "Link", "ForwardCache", "set_default_backend",
    "set_num_threads", "get_num_threads", "num_threads",
    "RNN", "LSTM", "GRU", "TDNN", "NARX", "Jordan", "Elman", "StateSpace", "BiRNN", "Seq2Seq", "Bidirectional", "Stack",
    "generate",
    "fit", "evaluate", "History", "Callback", "EarlyStopping", "LearningRateSchedule", "ReduceLROnPlateau",
    "Checkpoint", "ProgressBar",
    "SequenceRegressor", "SequenceClassifier", "SequenceScaler", "ConvergenceWarning", "NotFittedError", "CharRNN",
    "save", "load", "from_torch", "to_torch", "to_onnx", "torch_h0",
    "activations", "divergences", "optim", "analysis", "Ensemble", "fit_many",
    "Forecaster", "backtest", "Backtest",
]

# The estimators import scikit-learn where it is installed (their errors are its errors),
# which takes over a second: they are imported on first use, not with the package.
_ESTIMATORS = ("SequenceRegressor", "SequenceClassifier", "SequenceScaler", "ConvergenceWarning", "NotFittedError")


def __getattr__(name):
    if name in _ESTIMATORS:
        from . import estimators
        return getattr(estimators, name)
    raise AttributeError(f"module 'unrolled' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_ESTIMATORS))
