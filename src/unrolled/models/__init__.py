"""Named models, each a thin constructor over the one engine (``unrolled.engine``)."""

from .base import NetworkModel
from .birnn import BiRNN
from .charrnn import CharRNN
from .elman import Elman
from .jordan import Jordan
from .narx import NARX
from .rnn import GRU, LSTM, RNN
from .seq2seq import Seq2Seq
from .statespace import StateSpace
from .tdnn import TDNN

__all__ = ["NetworkModel", "RNN", "LSTM", "GRU", "TDNN", "NARX", "Jordan", "Elman", "StateSpace", "BiRNN", "Seq2Seq", "CharRNN"]
