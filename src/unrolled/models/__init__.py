"""Named models, each a thin constructor over the one engine (``unrolled.network``)."""

from .base import NetworkModel
from .rnn import RNN

__all__ = ["NetworkModel", "RNN"]
