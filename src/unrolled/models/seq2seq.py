"""Delayed sequence to sequence: an encoder's final state starts a decoder."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from .._checks import as_float_array, check_finite_inputs, check_lengths
from ..blocks import Composite, PredictFromForward, prefix_keys
from ..engine import ForwardCache, Network
from ..generate import generate, one_hot, output_activation
from ..registry import block_config, block_from_config, register_model
from .base import NetworkModel

__all__ = ["Seq2Seq"]


def _network(model, what):
    net = model if isinstance(model, Network) else getattr(model, "network", None)
    if not isinstance(net, Network) or not hasattr(model, "backward_full"):
        raise TypeError(f"{what} must be a Network or a named model built on one (it passes its state on and "
                        f"needs backward_full), got {type(model).__name__}")
    return net


@dataclass
class Seq2SeqCache:
    """The encoder's and the decoder's caches; ``state`` is the decoder's final state."""

    encoder: object
    decoder: object
    encoder_shape: tuple          # (N, T_in, encoder.n_out), for the encoder's zero dy
    state: dict = field(default_factory=dict)


@register_model
class Seq2Seq(Composite, PredictFromForward):
    r"""Delayed sequence to sequence (the lecture's encoder-decoder).

    The **encoder** reads the source X(0 .. T_in-1) of each sequence up to its own length
    and gives its final state s = h_enc(len - 1) (``cache.state``). The **decoder**
    starts from it, h_dec(-1) = s, and reads its own input sequence u(t)::

        h_dec^(l)(t) = f( W_c(l) h_dec^(l-1)(t) + W_r(l) h_dec^(l)(t-1) + b(l) ),  h_dec^(0)(t) = u(t)
        Y(t)         = g( W_y h_dec^(L)(t) + b_y )

    In training (``forward``) u is given, ``decoder_inputs``: with teacher forcing the
    previous *target* symbol, u(0) = <start>, u(t) = one_hot(d(t-1))
    (:func:`unrolled.generate.teacher_forcing`). At inference (``translate``) u(t) is
    the decoder's own previous output (argmax, or a sample), fed back step by step.

    BPTT runs the decoder back to t = -1, where dDIV/dh_dec(-1) is the gradient of the
    encoder's final state; the encoder's BPTT starts from it (``backward_full(...,
    dstate=...)``), at each sequence's own last step.

    Parameters
    ----------
    encoder : a Network or named model (e.g. ``unrolled.blocks.recurrent_network`` or an
        ``RNN``, whose output layer is then unused) reading the source (n_in = n_src).
    decoder : a Network or named model (e.g. ``RNN(n_dec_in, n_out, output="softmax",
        learn_init=False)``) whose hidden layers start from the encoder's (their own
        ``init[...]`` is never read: build the decoder with ``learn_init=False``).
    bridge : dict decoder node -> encoder node, whose final state becomes the decoder's
        initial history (same size and depth). Default: every delayed layer the two
        share by name (``h1``, ``h2``, ... for RNN-like nets), and the cell states of
        LSTM layers (``h1.c``, ...): an ``LSTM`` decoder starts from an ``LSTM`` encoder's
        h and c, a ``GRU`` from a ``GRU``'s h.

    Notes
    -----
    Parameters (``params`` keys) are ``encoder.<name>`` and ``decoder.<name>``.
    Inputs x (N, T_in, n_src), decoder_inputs (N, T_out, n_dec_in); outputs
    (N, T_out, n_out).
    """

    def __init__(self, encoder: Network | NetworkModel, decoder: Network | NetworkModel, *,
                 bridge: dict[str, str] | None = None) -> None:
        enc, dec = _network(encoder, "encoder"), _network(decoder, "decoder")
        if np.dtype(encoder.dtype) != np.dtype(decoder.dtype):
            raise TypeError(f"encoder is {np.dtype(encoder.dtype)} but decoder is {np.dtype(decoder.dtype)}; "
                            "build both with the same dtype")
        # the delayed layers, and the cell states of LSTM layers (``h1.c``): what a state holds
        delayed_enc = {n for n, d in enc.depth.items() if d > 0 and n not in enc.inputs}
        delayed_dec = {n for n, d in dec.depth.items() if d > 0 and n not in dec.inputs}
        if bridge is None:
            bridge = {n: n for n in dec.nodes if n in delayed_dec and n in delayed_enc}
            if not bridge:
                raise ValueError(f"the encoder's delayed layers {sorted(delayed_enc)} and the decoder's "
                                 f"{sorted(delayed_dec)} share no name: pass bridge={{decoder layer: encoder layer}}")
        if not isinstance(bridge, dict) or not bridge:
            raise ValueError(f"bridge must be a non-empty dict decoder layer -> encoder layer, got {bridge!r}")
        for d, e in bridge.items():
            if d not in delayed_dec:
                raise ValueError(f"bridge: {d!r} is not a delayed layer of the decoder; expected one of "
                                 f"{sorted(delayed_dec)}")
            if e not in delayed_enc:
                raise ValueError(f"bridge: {e!r} is not a delayed layer of the encoder; expected one of "
                                 f"{sorted(delayed_enc)}")
            ds, es = (dec.depth[d], dec.node_size(d)), (enc.depth[e], enc.node_size(e))
            if ds != es:
                raise ValueError(f"bridge {d!r} <- {e!r}: the decoder's history is (depth, size) {ds}, "
                                 f"the encoder's final state {es}")
        self.encoder, self.decoder = encoder, decoder
        self.bridge = dict(bridge)

    @property
    def children(self) -> dict:
        """dict name -> child block, in order: what ``params`` prefixes."""
        return {"encoder": self.encoder, "decoder": self.decoder}

    @property
    def dtype(self) -> type[np.floating]:
        """The floating dtype of the parameters and outputs (numpy.float32 or numpy.float64)."""
        return self.encoder.dtype

    @property
    def n_in(self) -> int:
        """Source inputs per step, n_src (the encoder's n_in)."""
        return self.encoder.n_in

    @property
    def n_out(self) -> int:
        """Outputs per step (the decoder's n_out)."""
        return self.decoder.n_out

    # ------------------------------------------------------------------ compute
    def encode(self, x: np.ndarray, *, lengths: np.ndarray | None = None,
               state: dict | None = None) -> tuple[dict[str, np.ndarray], ForwardCache]:
        """The decoder's initial state from the source: dict decoder layer -> (N, D, H).

        Parameters
        ----------
        x : numpy.ndarray
            (N, T_in, n_src) source.
        lengths : numpy.ndarray, optional
            (N,) valid source steps.
        state : dict, optional
            The encoder's initial state.

        Returns
        -------
        start : dict of str to numpy.ndarray
            Decoder node -> (N, D, H), its initial state.
        cache : object
            The encoder's cache.
        """
        _, cache = self.encoder.forward(x, lengths=lengths, state=state)
        return {d: cache.state[e] for d, e in self.bridge.items()}, cache

    def forward(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None, state: dict | None = None,
                decoder_inputs: np.ndarray | None = None,
                decoder_lengths: np.ndarray | None = None) -> tuple[np.ndarray, Seq2SeqCache]:
        """Teacher-forced pass: ``(y, cache)``.

        Parameters
        ----------
        x : numpy.ndarray
            (N, T_in, n_src) source.
        lengths : numpy.ndarray, optional
            (N,) its valid steps.
        state : dict, optional
            The encoder's initial state.
        decoder_inputs : numpy.ndarray
            (N, T_out, n_dec_in), the decoder's inputs (teacher forcing:
            ``teacher_forcing(targets, n_dec_in, start)``).
        decoder_lengths : numpy.ndarray, optional
            (N,) valid decoder steps, or None (all T_out).

        Returns
        -------
        y : numpy.ndarray
            (N, T_out, n_out), zero at padded decoder steps.
        cache : Seq2SeqCache
        """
        if decoder_inputs is None:
            raise ValueError("Seq2Seq.forward needs decoder_inputs=, shape (N, T_out, "
                             f"{self.decoder.n_in}): the teacher-forced decoder inputs. - help: "
                             "unrolled.generate.teacher_forcing(targets, size, start); to decode "
                             "from the model's own outputs use translate()")
        u = as_float_array(decoder_inputs, self.dtype, "decoder_inputs")
        N = np.shape(x)[0]
        if u.ndim != 3 or u.shape[0] != N:
            raise ValueError(f"expected decoder_inputs of shape ({N}, T_out, {self.decoder.n_in}) with the "
                             f"N of x, got {u.shape}")
        start, ce = self.encode(x, lengths=lengths, state=state)
        y, cd = self.decoder.forward(u, lengths=decoder_lengths, state=start)
        shape = (ce.N, ce.T, self.encoder.n_out)
        return y, Seq2SeqCache(ce, cd, shape, cd.state)

    def backward_full(self, dy: np.ndarray, cache: Seq2SeqCache) -> tuple[dict, dict, dict]:
        """``(grads, dinputs, dstate_in)``: dinputs has ``"x"`` (N, T_in, n_src) and
        ``"decoder_inputs"`` (N, T_out, n_dec_in); dstate_in the encoder's, for a given state.

        Parameters
        ----------
        dy : numpy.ndarray
            (N, T_out, n_out) dDIV/dy.
        cache : Seq2SeqCache
            What ``forward`` returned.

        Returns
        -------
        grads : dict of str to numpy.ndarray
        dinputs : dict of str to numpy.ndarray
        dstate_in : dict of str to numpy.ndarray
        """
        g_dec, din_dec, dstart = self.decoder.backward_full(dy, cache.decoder)
        dstate = {}
        for d, e in self.bridge.items():                      # dDIV/dh_dec(-1) -> encoder's final state
            dstate[e] = dstate[e] + dstart[d] if e in dstate else dstart[d]
        zero = np.zeros(cache.encoder_shape, dtype=self.dtype)
        g_enc, din_enc, dstate_in = self.encoder.backward_full(zero, cache.encoder, dstate=dstate)
        grads = prefix_keys({"encoder": g_enc, "decoder": g_dec})
        return grads, {"x": din_enc.get("x"), "decoder_inputs": din_dec.get("x")}, dstate_in

    def backward(self, dy: np.ndarray, cache: Seq2SeqCache) -> tuple[dict, np.ndarray | None]:
        """``(grads, dx)``: BPTT through the decoder, then the encoder; dx (N, T_in, n_src).

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
            (N, T_in, n_src) dDIV/dx.
        """
        grads, dinputs, _ = self.backward_full(dy, cache)
        return grads, dinputs["x"]

    def predict(self, x: np.ndarray | None, *, lengths: np.ndarray | None = None, state: dict | None = None,
                decoder_inputs: np.ndarray | None = None,
                decoder_lengths: np.ndarray | None = None) -> np.ndarray | tuple:
        """Teacher-forced outputs (N, T_out, n_out) alone.

        Parameters
        ----------
        x, lengths, state, decoder_inputs, decoder_lengths
            As ``forward`` takes them.

        Returns
        -------
        numpy.ndarray
            (N, T_out, n_out).
        """
        return super().predict(x, lengths=lengths, state=state, decoder_inputs=decoder_inputs,
                               decoder_lengths=decoder_lengths)

    def _check_finite(self, x, lengths, inputs):
        """The encoder's inputs at its valid steps, the decoder's at its own."""
        check_finite_inputs(lengths, self.dtype, x=x)
        check_finite_inputs(inputs.get("decoder_lengths"), self.dtype, decoder_inputs=inputs.get("decoder_inputs"))

    def translate(self, x: np.ndarray, steps: int, *, start: int | ArrayLike, lengths: np.ndarray | None = None,
                  state: dict | None = None, greedy: bool = True, temperature: float = 1.0,
                  seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Decode ``steps`` steps from the model's own outputs, fed back (inference).

        x (N, T_in, n_src) and lengths as in ``forward``. ``start`` is the decoder's
        first input: a symbol index (its one-hot) for a softmax decoder, or a vector
        (n_dec_in,) / (N, n_dec_in). Greedy (argmax) by default; ``greedy=False`` samples
        with ``temperature`` and ``seed`` (see :func:`unrolled.generate.generate`).

        Returns (N, steps) symbol indices for a softmax decoder, else (N, steps, n_out).
        Each step is one decoder step continuing from the previous step's state.

        Parameters
        ----------
        x : numpy.ndarray
            (N, T_in, n_src) source.
        steps : int
            Decoder steps.
        start : int or array_like
            The decoder's first input.
        lengths : numpy.ndarray, optional
            (N,) valid source steps.
        state : dict, optional
            The encoder's initial state.
        greedy : bool
            Argmax (True) or sampling.
        temperature : float
            Sampling temperature.
        seed : int or numpy.random.Generator, optional
            For sampling.

        Returns
        -------
        numpy.ndarray
            (N, steps) indices or (N, steps, n_out) outputs.
        """
        x = as_float_array(x, self.dtype, "x")
        if x.ndim != 3:
            raise ValueError(f"expected x of shape (N, T_in, {self.n_in}), got {x.shape}")
        N = x.shape[0]
        lengths = check_lengths(lengths, N, x.shape[1])
        symbol = isinstance(start, (int, np.integer)) and not isinstance(start, bool)
        if output_activation(self.decoder) == "softmax" and not symbol:
            raise TypeError(f"a softmax decoder starts from a symbol: start must be an index, got {start!r}")
        if symbol:
            first = one_hot(np.full(N, start), self.decoder.n_in, self.dtype)
        else:
            vec = as_float_array(start, self.dtype, "start")
            if vec.shape not in ((self.decoder.n_in,), (N, self.decoder.n_in)):
                raise ValueError(f"expected start of shape ({self.decoder.n_in},) or ({N}, {self.decoder.n_in}), "
                                 f"got {vec.shape}")
            first = np.broadcast_to(vec, (N, self.decoder.n_in))
        initial, _ = self.encode(x, lengths=lengths, state=state)
        return generate(self.decoder, first[:, None, :], steps, greedy=greedy, temperature=temperature,
                        seed=seed, state=initial)

    # ------------------------------------------------------------------- config
    def get_config(self) -> dict:
        """The constructor's arguments, JSON-friendly, children as block specs.

        What ``unrolled.save`` stores and ``from_config`` rebuilds from.

        Returns
        -------
        dict
        """
        return {"encoder": block_config(self.encoder), "decoder": block_config(self.decoder),
                "bridge": dict(self.bridge)}

    @classmethod
    def from_config(cls, config: dict) -> Seq2Seq:
        """A new Seq2Seq from what ``get_config`` returned (fresh weights: ``load`` copies the
        saved ones in).

        Parameters
        ----------
        config : dict
            A dict as ``get_config`` returns it.

        Returns
        -------
        Seq2Seq
        """
        return cls(block_from_config(config["encoder"]), block_from_config(config["decoder"]),
                   bridge=config.get("bridge"))

    def __repr__(self):
        return f"Seq2Seq(encoder={self.encoder!r}, decoder={self.decoder!r}, bridge={self.bridge!r})"
