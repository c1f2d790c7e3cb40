"""Named models, each a thin constructor over the one engine (``unrolled.network``)."""

from .base import NetworkModel
from .birnn import BiRNN
from .rnn import RNN
from .seq2seq import Seq2Seq

__all__ = ["NetworkModel", "RNN", "BiRNN", "Seq2Seq"]
