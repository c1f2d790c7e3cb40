"""NARX: nonlinear autoregressive network with exogenous inputs, open and closed loop."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from .._checks import as_float_array, check_delay, check_hidden, seed_for_config
from ..columns import hidden_stack
from ..engine import ForwardCache, Layer, Link, Network
from ..registry import register_model
from .base import NetworkModel

__all__ = ["NARX"]

_FEEDBACK = ("closed", "open")
@register_model
class NARX(NetworkModel):
    r"""NARX network: the output is fed back as an input (the lecture's infinite-response net).

    With input taps ``input_delays`` (L: 0 .. L) and output taps ``output_delays`` (K: 1 .. K)::

        Y_t = f(X_t, X_{t-1}, ..., X_{t-L}, Y_{t-1}, ..., Y_{t-K})
        h^(1)(t) = f( sum_{i in input_delays} W^(x,1)_i X(t-i)
                      + sum_{k in output_delays} W^(y,1)_k Y(t-k) + b^(1) )
        h^(l)(t) = f( W^(l-1,l) h^(l-1)(t) + b^(l) )                   l = 2 .. L
        Y(t)     = g( W^(L,y) h^(L)(t) + b^(y) )

    As a column of the engine: ``x -> h1 @i`` for each input delay, ``y -> h1 @k`` for each
    output delay, ``h{l-1} -> h{l}``, ``h{L} -> y``.

    **Closed loop** (``feedback="closed"``, the "parallel" form): Y(t-k) is the net's own
    output. The cycle h1 -> ... -> y -> h1 runs in the engine's time loop and BPTT follows
    it. Before t = 0 the output history reads zeros, or known past outputs given as
    ``state={"y": (N, K, n_out)}`` (K the largest output delay, oldest first).

    **Open loop** (``feedback="open"``, series-parallel, teacher forcing): Y(t-k) is the
    *true* past output, an external sequence: ``forward(x, teacher=d)``; the feedback
    links are ``teacher -> h1 @k`` in the engine, there is no cycle and the whole net is
    computed for all steps at once. ``fit`` passes the targets as the teacher by itself
    (through :meth:`fit_inputs`).

    **One set of weights for both modes.** The model holds both engine networks, built
    over the *same* arrays. ``params`` uses the closed-loop names in either mode: the
    weight on the k-th past output is ``W[y->h1@k]`` whether that output is the net's own
    or the teacher's (the open network's ``W[teacher->h1@k]`` is that very array), so
    gradients, optimizers and saved files see the same keys in both modes. Switch with
    ``model.feedback = "open"`` (in place), or get a second model sharing the arrays with
    :meth:`closed_loop` / :meth:`open_loop`. In either mode ``state`` and
    ``cache.state`` call the output history ``"y"``: an open-loop pass leaves there the
    last true outputs, from which a closed-loop pass continues (see :meth:`forecast`).

    Parameters (``params`` keys): ``W[x->h1@i]``, ``W[y->h1@k]``, ``W[h{l-1}->h{l}@0]``,
    ``W[h{L}->y@0]``, ``b[h{l}]``, ``b[y]``.

    Parameters
    ----------
    n_in : int >= 0, exogenous inputs (0: a pure autoregressive net, x is None or (N, T, 0))
    n_out : int, outputs (several: MIMO)
    input_delays : int L (delays 0 .. L) or a list of delays >= 0; None when n_in = 0
    output_delays : int K (delays 1 .. K) or a list of delays >= 1
    hidden : tuple of int, the sizes H_1 .. H_L (an int means one layer)
    feedback : "closed" (default) or "open"
    activation : the hidden activation f; output : the output activation g
    linear : add the skip links from every tap straight to the output layer
        (``x -> y @i``, ``y -> y @k``: ``W[x->y@i]``, ``W[y->y@k]``), so that
        ``Y(t) = g(linear AR part + W^(L,y) h^(L)(t) + b^(y))``: a trend and the linear part
        of a series are carried by a linear term, not by saturating units.
    dtype : numpy.float32 (default) or numpy.float64
    seed : int or numpy.random.Generator for the initial weights (the same in both modes)

    Notes
    -----
    Inputs x (N, T, n_in), teacher (N, T, n_out) in open loop, outputs y (N, T, n_out).
    """

    def __init__(self, n_in: int, n_out: int, *, input_delays: int | Sequence[int] | None,
                 output_delays: int | Sequence[int], hidden: int | Sequence[int] = (16,),
                 feedback: str = "closed", activation: str = "tanh", output: str = "identity",
                 linear: bool = False, dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None) -> None:
        if isinstance(n_in, bool) or not isinstance(n_in, numbers.Integral) or n_in < 0:
            raise ValueError(f"n_in must be an integer >= 0 (0: no exogenous input), got {n_in!r}")
        n_in = int(n_in)
        if n_in == 0:
            if input_delays is not None and not (isinstance(input_delays, (list, tuple)) and not input_delays):
                raise ValueError(f"n_in=0 has no input to delay: pass input_delays=None, got {input_delays!r}")
            input_delays = None
        elif input_delays is None:
            raise ValueError(f"n_in={n_in} needs input_delays: an int L (delays 0..L) or a list of delays >= 0")
        else:
            input_delays = _delays(input_delays, "input_delays", low=0)
        output_delays = _delays(output_delays, "output_delays", low=1)
        hidden = check_hidden(hidden)
        if feedback not in _FEEDBACK:
            raise ValueError(f"feedback must be one of {_FEEDBACK}, got {feedback!r}")
        if not isinstance(linear, (bool, np.bool_)):
            raise TypeError(f"linear must be True or False, got {linear!r}")
        self._config = dict(n_in=n_in, n_out=n_out, input_delays=input_delays, output_delays=output_delays,
                            hidden=hidden, feedback=feedback, activation=activation, output=output,
                            dtype=dtype, seed=seed_for_config(seed))
        if linear:                                   # (recorded only when set: older files stay equal)
            self._config["linear"] = True
        closed = self._build("closed", seed)        # built first: the weights never depend on the mode
        opened = self._build("open", 0)
        for key in opened.params:                    # then the open net is re-pointed at the same arrays
            opened.params[key] = closed.params[_canonical(key)]
        self._nets = {"closed": closed, "open": opened}
        self._feedback = feedback

    def _build(self, mode, seed):
        c = self._config
        inputs = {"x": c["n_in"]} if c["n_in"] else {}
        source = "y" if mode == "closed" else "teacher"
        if mode == "open":
            inputs["teacher"] = c["n_out"]
        taps = [("x", i) for i in (c["input_delays"] or ())] + [(source, k) for k in c["output_delays"]]
        _, layers, links = hidden_stack(c["hidden"], c["activation"], recurrent=False, first=taps,
                                        output_layer=Layer(c["n_out"], c["output"], init="zeros"))
        if c.get("linear"):                          # the lecture's skip: every tap straight to y
            links += [Link(src, "y", delay=delay) for src, delay in taps]
        return Network(inputs, layers, links, "y", dtype=c["dtype"], seed=seed)

    # -- the two modes ---------------------------------------------------------
    @property
    def network(self) -> Network:
        """The engine network of the current mode (both share the weight arrays)."""
        return self._nets[self._feedback]

    @property
    def params(self) -> dict[str, np.ndarray]:
        """dict name -> live array, under the closed-loop names in either mode."""
        return self._nets["closed"].params

    @property
    def feedback(self) -> str:
        """"closed" or "open"; setting it switches the mode in place, keeping the weights."""
        return self._feedback

    @feedback.setter
    def feedback(self, mode: str) -> None:
        if mode not in _FEEDBACK:
            raise ValueError(f"feedback must be one of {_FEEDBACK}, got {mode!r}")
        self._feedback = mode
        self._config["feedback"] = mode

    def closed_loop(self) -> NARX:
        """A closed-loop NARX over the very same weight arrays (training one trains both)."""
        return self._twin("closed")

    def open_loop(self) -> NARX:
        """An open-loop (teacher-forced) NARX over the very same weight arrays."""
        return self._twin("open")

    def _twin(self, mode):
        config = self.get_config()
        config["feedback"] = mode
        twin = type(self).from_config(config)
        for net in twin._nets.values():
            for key in net.params:
                net.params[key] = self.params[_canonical(key)]
        return twin

    @property
    def input_delays(self) -> tuple[int, ...] | None:
        """The delays of the input taps, a sorted tuple (empty without exogenous input)."""
        return self._config["input_delays"]

    @property
    def output_delays(self) -> tuple[int, ...]:
        """The delays of the fed-back output taps, a sorted tuple."""
        return self._config["output_delays"]

    # -- computation ---------------------------------------------------------
    def forward(self, x: np.ndarray | None = None, *, lengths: np.ndarray | None = None,
                state: dict | None = None, teacher: np.ndarray | None = None,
                steps: int | None = None) -> tuple[np.ndarray, ForwardCache]:
        """Run the current mode over whole sequences: ``(y, cache)``.

        Parameters
        ----------
        x : numpy.ndarray or None
            (N, T, n_in); with n_in = 0, None or an (N, T, 0) array.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each sequence.
        state : dict, optional
            "y" (N, K, n_out) the output history before t = 0 and "x"
            (N, max input delay, n_in) the input history (zeros when not given).
        teacher : numpy.ndarray, optional
            (N, T, n_out) the true outputs, read (delayed) in open loop only.
        steps : int, optional
            The number of steps T where no sequence gives it (closed loop, n_in = 0;
            N then comes from state["y"], else lengths, else 1).

        Returns
        -------
        y : numpy.ndarray
            (N, T, n_out).
        cache : ForwardCache
            The engine's cache; ``cache.state`` holds the final "x" and "y" histories (in
            open loop: the last true outputs) to continue from.
        """
        return self._forward(self._feedback, x, lengths=lengths, state=state, teacher=teacher, steps=steps)

    def predict(self, x: np.ndarray | None = None, *, lengths: np.ndarray | None = None,
                state: dict | None = None, return_state: bool = False, teacher: np.ndarray | None = None,
                steps: int | None = None) -> np.ndarray | tuple:
        """Outputs (N, T, n_out) of the current mode alone (and the final state with
        ``return_state``); the arguments as ``forward`` takes them.

        Parameters
        ----------
        x, lengths, state, teacher, steps
            As ``forward`` takes them.
        return_state : bool
            Return the final state too.

        Returns
        -------
        y : numpy.ndarray or tuple
            (N, T, n_out) outputs; with ``return_state``, ``(y, cache.state)``.
        """
        return super().predict(x, lengths=lengths, state=state, return_state=return_state, teacher=teacher,
                               steps=steps)

    def _forward(self, mode, x, *, lengths=None, state=None, teacher=None, steps=None):
        c = self._config
        if c["n_in"] == 0 and x is not None:
            arr = np.asarray(x)
            if arr.ndim != 3 or arr.shape[2] != 0:
                raise ValueError(f"this NARX has no exogenous input (n_in=0): expected x None or of "
                                 f"shape (N, T, 0), got {arr.shape}")
            shape, x = arr.shape[:2], None
        else:
            shape = None if x is None else np.shape(x)[:2]
        seqs = {}
        if mode == "open":
            if teacher is None:
                raise ValueError("an open-loop NARX feeds back the true past outputs: pass teacher= the "
                                 f"targets, shape (N, T, {c['n_out']}) (fit passes them by itself)")
            seqs["teacher"] = teacher
            shape = shape or np.shape(teacher)[:2]
        elif teacher is not None:
            raise ValueError("a closed-loop NARX feeds back its own outputs and reads no teacher; "
                             "use model.open_loop() for teacher forcing, or give known past outputs "
                             "as state={'y': (N, K, n_out)}")
        elif c["n_in"] == 0 and shape is None and steps is None:
            raise ValueError("a closed-loop NARX without exogenous inputs needs the number of "
                             "steps: pass x of shape (N, T, 0) or steps=T")
        if steps is not None and shape is not None and steps != shape[1]:
            raise ValueError(f"steps={steps} contradicts the sequences' T={shape[1]}")
        if c["n_in"] == 0 and mode == "closed":
            # No sequence goes in: the engine runs steps=T for the batch of the state or
            # lengths (else 1); an x of shape (N, T, 0) gives both.
            if shape is not None:
                if shape[1] == 0:
                    raise ValueError("x has no time steps (T = 0)")
                if lengths is not None and np.size(lengths) != shape[0]:
                    raise ValueError(f"expected lengths of shape ({shape[0]},), one per sequence of x, "
                                     f"got {np.shape(lengths)}")
                steps, lengths = shape[1], np.full(shape[0], shape[1]) if lengths is None else lengths
        else:
            steps = None                 # the sequences give T
        y, cache = self._nets[mode].forward(x, lengths=lengths, state=_rename(state, mode, "in"), steps=steps,
                                            **seqs)
        cache.state = _rename(cache.state, mode, "out")
        cache.mode = mode                   # backward uses the network that ran, whatever the mode now
        return y, cache

    def backward(self, dy: np.ndarray, cache: ForwardCache) -> tuple[dict, np.ndarray | None]:
        """BPTT: ``(grads, dx)``; grads under the keys of ``params`` in either mode.

        dx is (N, T, n_in) (an (N, T, 0) array when n_in = 0). In closed loop the gradient
        runs back through the fed-back outputs; in open loop the teacher is a constant.

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
        grads, dinputs, _ = self.backward_full(dy, cache)
        dx = dinputs.get("x")
        if dx is None and self.n_in == 0 and cache.input_grads:
            dx = np.zeros((cache.N, cache.T, 0), dtype=self.dtype)
        return grads, dx

    def backward_full(self, dy: np.ndarray, cache: ForwardCache, *,
                      dstate: dict | None = None) -> tuple[dict, dict, dict]:
        """``(grads, dinputs, dstate_in)`` as ``Network.backward_full``, output history named "y".

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
        mode = getattr(cache, "mode", self._feedback)
        engine_cache = dataclasses.replace(cache, state=_rename(cache.state, mode, "in"))
        grads, dinputs, dstate_in = self._nets[mode].backward_full(dy, engine_cache,
                                                                   dstate=_rename(dstate, mode, "in"))
        grads = {_canonical(key): g for key, g in grads.items()}
        return {key: grads[key] for key in self.params}, dinputs, _rename(dstate_in, mode, "out")

    def fit_inputs(self, x: np.ndarray | None, d: np.ndarray) -> dict:
        """What ``fit`` passes to ``forward`` beside x: the targets as teacher in open loop.

        Parameters
        ----------
        x : numpy.ndarray or None
            The inputs (unused).
        d : numpy.ndarray
            The targets (N, T, n_out).

        Returns
        -------
        dict
            ``{"teacher": d}`` in open loop, else empty.
        """
        return {"teacher": d} if self._feedback == "open" else {}

    def forecast(self, x_past: np.ndarray | None, y_past: np.ndarray, horizon: int, *,
                 x_future: np.ndarray | None = None, lengths: np.ndarray | None = None,
                 state: dict | None = None) -> np.ndarray:
        """Closed-loop forecast of the ``horizon`` outputs after a known past.

        Warm-up: the open-loop net runs over the past, reading the true past outputs
        ``y_past`` as its teacher (whatever the current mode), which leaves the last input
        and output taps in its final state. From there the closed-loop net runs
        ``horizon`` steps, each output fed back as the next step's past output, reading
        the future exogenous inputs ``x_future``.

        Parameters
        ----------
        x_past : numpy.ndarray or None
            (N, T_p, n_in), or None / (N, T_p, 0) when n_in = 0.
        y_past : numpy.ndarray
            (N, T_p, n_out), the known outputs over the same steps.
        horizon : int
            Steps to forecast (>= 1).
        x_future : numpy.ndarray, optional
            (N, horizon, n_in), required when n_in > 0.
        lengths : numpy.ndarray, optional
            (N,) valid steps of each past (padding at the end): each forecast starts
            after its own sequence's last valid step.
        state : dict, optional
            The histories before the past, as in ``forward`` (zeros by default).

        Returns
        -------
        numpy.ndarray
            (N, horizon, n_out): the forecasts of Y(T_p), ..., Y(T_p + horizon - 1).
        """
        horizon = check_delay(horizon, "horizon", low=1)
        y_past = as_float_array(y_past, self.dtype, "y_past")
        if y_past.ndim != 3 or y_past.shape[2] != self.n_out:
            raise ValueError(f"expected y_past of shape (N, T, {self.n_out}), got {y_past.shape}")
        _, cache = self._forward("open", x_past, lengths=lengths, state=state, teacher=y_past)
        warm = cache.state
        if self._config["n_in"]:
            if x_future is None:
                raise ValueError(f"this NARX reads exogenous inputs: pass x_future of shape "
                                 f"(N, {horizon}, {self._config['n_in']}), the inputs over the horizon")
            if np.shape(x_future)[:2] != (len(y_past), horizon):
                raise ValueError(f"expected x_future of shape ({len(y_past)}, {horizon}, "
                                 f"{self._config['n_in']}), got {np.shape(x_future)}")
            y, _ = self._forward("closed", x_future, state=warm)
        else:
            if x_future is not None and np.shape(x_future) != (len(y_past), horizon, 0):
                raise ValueError(f"this NARX has no exogenous input (n_in=0): x_future must be None, "
                                 f"got shape {np.shape(x_future)}")
            y, _ = self._forward("closed", None, state=warm, steps=horizon)
        return y


def _canonical(key):
    """A parameter name of either mode's network under the closed-loop name."""
    return key.replace("W[teacher->", "W[y->")


def _rename(state, mode, direction):
    """Histories keyed as the user sees them ("y") or as the open network does ("teacher")."""
    if state is None or mode == "closed":
        return state
    old, new = ("y", "teacher") if direction == "in" else ("teacher", "y")
    if not isinstance(state, dict):
        return state                                 # the engine says what was expected
    return {(new if name == old else name): value for name, value in state.items()}


def _delays(value, name, *, low):
    """An int k (delays low .. k) or a list of distinct delays >= low, as a sorted tuple."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return tuple(range(low, check_delay(value, name, low=low) + 1))
    try:
        delays = [check_delay(d, f"each of {name}", low=low) for d in value]
    except TypeError:
        raise TypeError(f"{name} must be an int or a list of ints >= {low}, got {value!r}") from None
    if not delays:
        raise ValueError(f"{name} must name at least one delay, got {value!r}")
    if len(set(delays)) != len(delays):
        raise ValueError(f"{name} must not repeat a delay, got {value!r}")
    return tuple(sorted(delays))
