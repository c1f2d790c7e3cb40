"""What every named model shares: it is one ``Network`` built by its constructor."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..blocks import PredictFromForward

if TYPE_CHECKING:
    from typing_extensions import Self

    from ..engine import ForwardCache

__all__ = ["ConfigFromArguments", "NetworkModel"]


class ConfigFromArguments:
    """``get_config`` / ``from_config`` / ``repr`` from the constructor's arguments.

    A model records its arguments in ``self._config`` (what ``save`` stores and
    ``load`` rebuilds it from); ``dtype`` travels by name.
    """

    _config: dict

    def get_config(self) -> dict:
        """The constructor's arguments, JSON-friendly (``dtype`` by name).

        Returns
        -------
        dict
        """
        config = dict(self._config)
        config["dtype"] = np.dtype(config["dtype"]).name
        return config

    @classmethod
    def from_config(cls, config: dict) -> Self:
        """A new model of this class from what ``get_config`` returned (fresh weights: ``load`` copies the
        saved ones in).

        Parameters
        ----------
        config : dict
            A dict as ``get_config`` returns it.

        Returns
        -------
        model
        """
        config = dict(config)
        config["dtype"] = np.dtype(config["dtype"]).type
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    @property
    def hidden(self) -> tuple[int, ...]:
        """The hidden layers' sizes H_1 .. H_L, as the constructor took them."""
        return self._config["hidden"]


class NetworkModel(ConfigFromArguments, PredictFromForward):
    """A named model: a thin constructor over one :class:`~unrolled.engine.Network`.

    Subclasses build ``self.network`` in ``__init__`` and record their constructor
    arguments in ``self._config`` (what ``get_config`` returns and ``save`` stores).
    Every method here hands the work to the network, so all models share one engine
    (``predict`` is ``forward`` alone, with ``forward``'s keyword arguments).

    Shapes: N batch, T time, n_in inputs, n_out outputs.
    """

    network = None
    _config: dict

    # -- parameters --------------------------------------------------------
    @property
    def params(self) -> dict[str, np.ndarray]:
        """dict name -> live array (``W[src->dst@d]``, ``b[layer]``, ``init[layer]``)."""
        return self.network.params

    @property
    def dtype(self) -> type[np.floating]:
        """The floating dtype of the parameters and outputs (numpy.float32 or numpy.float64)."""
        return self.network.dtype

    @property
    def n_in(self) -> int:
        """Inputs per step, n_in."""
        return self.network.n_in

    @property
    def n_out(self) -> int:
        """Outputs per step, n_out."""
        return self.network.n_out

    # -- computation ---------------------------------------------------------
    def forward(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None, state: dict | None = None,
                **inputs) -> tuple[np.ndarray, ForwardCache]:
        """``(y, cache)``: outputs (N, T, n_out) for inputs x (N, T, n_in); see ``Network.forward``.

        Parameters
        ----------
        x : numpy.ndarray
            (N, T, n_in) inputs.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence (padding at the end).
        state : dict, optional
            node -> (N, D, size) initial history (``cache.state`` of an earlier pass).
        **inputs
            Further external inputs by name, each (N, T, width).

        Returns
        -------
        y : numpy.ndarray
            (N, T, n_out) outputs, zero at padded steps.
        cache : object
            What ``backward`` needs; ``cache.state`` the final state.
        """
        return self.network.forward(x, lengths=lengths, state=state, **inputs)

    def backward(self, dy: np.ndarray, cache: ForwardCache) -> tuple[dict, np.ndarray | None]:
        """BPTT: ``(grads, dx)`` for dy = dDIV/dy (N, T, n_out); grads has the keys of ``params``.

        Parameters
        ----------
        dy : numpy.ndarray
            (N, T, n_out) dDIV/dy, as a divergence gives it.
        cache : object
            What ``forward`` returned with the outputs.

        Returns
        -------
        grads : dict of str to numpy.ndarray
            The gradient of every parameter, the keys of ``params``.
        dx : numpy.ndarray
            (N, T, n_in) dDIV/dx.
        """
        return self.network.backward(dy, cache)

    def backward_full(self, dy: np.ndarray, cache: ForwardCache, *,
                      dstate: dict | None = None) -> tuple[dict, dict, dict]:
        """``(grads, dinputs, dstate_in)``; see ``Network.backward_full``.

        Parameters
        ----------
        dy : numpy.ndarray
            (N, T, n_out) dDIV/dy.
        cache : object
            What ``forward`` returned with the outputs.
        dstate : dict, optional
            dDIV/d``cache.state``, node -> (N, D, size).

        Returns
        -------
        grads : dict of str to numpy.ndarray
            The keys of ``params``.
        dinputs : dict of str to numpy.ndarray
            Input name -> (N, T, width).
        dstate_in : dict of str to numpy.ndarray
            dDIV/d of every history given as ``state``.
        """
        return self.network.backward_full(dy, cache, dstate=dstate)

