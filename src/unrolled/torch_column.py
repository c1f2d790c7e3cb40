"""Any model as one ``torch.nn.Module``: the same column, computed in PyTorch step by step.

``unrolled.to_torch(model)`` builds one of two modules (imported only then, with torch):

- :class:`ColumnModule`, for every model: a plan of the model's blocks (a ``Network`` per
  column, ``Bidirectional``, ``Stack``, ``Ensemble``, ``Seq2Seq``) over the model's weights,
  held as ``nn.Parameter`` in ``module.params`` (a ``ParameterDict`` keyed by a sanitized
  name: ``W[x->h1@0]`` is ``W_x_to_h1_at_0``, ``block1.fwd.b[h1]`` is
  ``block1_fwd_b_h1``; ``module.names`` maps a key back to ours, ``module.keys`` ours to a
  key). Fixed links are buffers (``fixed_<key>``), never parameters.
- :class:`PairModule`, for an ``RNN`` / ``LSTM`` / ``GRU`` / ``BiRNN`` that
  ``torch.nn.RNN`` (``LSTM``, ``GRU``) + ``torch.nn.Linear`` hold (``interop``): the pair
  as ``module.rnn`` and ``module.linear``, the learned initial states in ``module.params``.

Each column runs as a loop over t, one source text per network (``loop_source``): at
every step every layer, in the order of the network's schedule, sums its links
``W a_src(t - d)`` (``.detach()`` on a ``gradient="blocked"`` link) and its bias and
applies its activation or its gated cell (``engine.cells``' equations); each delayed node
carries its last D values. The same text runs as Python (training, gradients) and
compiled by TorchScript (``scripted``), which ``to_onnx`` exports as an ONNX ``Loop``
over a dynamic number of steps. With ``lengths`` a sequence's carried values stop at its
last valid step (so the final state is taken there, as ours) and its outputs are zero
after it; a ``Bidirectional`` block reverses each sequence within its own length.

Both modules: ``forward(x, lengths=None, state=None, return_state=False, **inputs)``,
batch first, returning y (N, T, n_out) (and the final state, a dict as ``cache.state``);
``unrolled_params()`` / ``unrolled_grads()`` give the weights and their ``.grad`` under
our names, as NumPy arrays (what ``model.params`` and ``model.backward`` hold).
"""

from __future__ import annotations

import re
import warnings
from typing import List, Tuple

import numpy as np
import torch

from .blocks import WHOLE_SEQUENCE, Bidirectional, Stack, WholeSequence
from .engine import Network
from .ensemble import Ensemble
from .models.narx import NARX
from .models.seq2seq import Seq2Seq
from .registry import block_config

__all__ = ["UnrolledModule", "ColumnModule", "PairModule", "loop_source", "weight_keys", "plan_of", "sanitize",
           "reverse_within"]

_ACTIVATIONS = {"tanh": "torch.tanh({})", "sigmoid": "torch.sigmoid({})", "relu": "torch.relu({})",
                "identity": "{}", "softmax": "torch.softmax({}, dim=-1)"}


def sanitize(key):
    """A ``ParameterDict`` key for one of our names: ``block1.fwd.W[x->h1@0]`` ->
    ``block1_fwd_W_x_to_h1_at_0`` (torch refuses '.', and '[' reads badly)."""
    key = key.replace("->", "_to_").replace("@", "_at_")
    return re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", key)).strip("_")


def _torch_dtype(dtype):
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def _as_tensor(value, dtype, what):
    if isinstance(value, torch.Tensor):
        if value.dtype != dtype:
            raise TypeError(f"{what} must be a {dtype} tensor like the module's weights, got {value.dtype}")
        return value
    return torch.as_tensor(np.asarray(value), dtype=dtype)


def _lengths_tensor(lengths, N, T):
    """``lengths`` as an (N,) int64 tensor of values in 1 .. T; None stays None."""
    if lengths is None:
        return None
    out = torch.as_tensor(np.asarray(lengths.cpu() if isinstance(lengths, torch.Tensor) else lengths),
                          dtype=torch.int64).reshape(-1)
    if out.shape[0] != N:
        raise ValueError(f"expected lengths of shape ({N},), one per sequence, got {tuple(out.shape)}")
    if len(out) and (int(out.min()) < 1 or int(out.max()) > T):
        raise ValueError(f"lengths must lie in 1 .. T = {T}, got {out.tolist()}")
    return out


def _valid(lengths, like):
    """(T, N, 1) of ``like``'s dtype: 1 at the valid steps; ``like`` is a time-major (T, N, ...)
    tensor, so the shape stays symbolic in a trace."""
    ones = torch.ones_like(like[..., :1])
    if lengths is None:
        return ones
    t = torch.arange(like.shape[0])[:, None]
    return (t < lengths[None, :]).to(like.dtype)[..., None] * ones


def reverse_within(a, lengths):
    """Each sequence of ``a`` (N, T, ...) reversed within its own length (``blocks.reverse_within``
    in torch); without lengths, the whole time axis flipped."""
    if lengths is None:
        return torch.flip(a, dims=[1])
    N, T = a.shape[:2]
    t = torch.arange(T)[None, :]
    L = lengths[:, None]
    idx = torch.where(t < L, L - 1 - t, t)
    return a[torch.arange(N)[:, None], idx]


# ----------------------------------------------------------------- the column's loop
def loop_source(net):
    """The source of ``loop(seqs, w, hist, valid) -> (y, hist)``, the column of ``net`` step by step.

    ``seqs``: the inputs in ``net.inputs`` order, time major (T, N, width); ``w``: the weights
    in the order of :func:`weight_keys`; ``hist``: for every node some link reads with a
    delay (``net.nodes`` order) its values a(-1) .. a(-D), each (N, size); ``valid`` (T, N, 1)
    ones at the valid steps. Returns y (T, N, n_out) and the carried values at each
    sequence's last valid step, as ``hist``. Written for Python and TorchScript alike.
    """
    node = {name: i for i, name in enumerate(net.nodes)}
    w = {key: j for j, key in enumerate(weight_keys(net))}
    delayed = [(name, net.depth[name]) for name in net.nodes if net.depth[name]]
    head = ["def loop(seqs: List[Tensor], w: List[Tensor], hist: List[Tensor], valid: Tensor)"
            " -> Tuple[Tensor, List[Tensor]]:"]
    head += [f"    w{j} = w[{j}]" for j in range(len(w))]
    head += [f"    s{node[name]} = seqs[{k}]" for k, name in enumerate(net.inputs)]
    k = 0
    for name, D in delayed:
        for d in range(1, D + 1):
            head.append(f"    a{node[name]}_{d} = hist[{k}]")
            k += 1
    head += ["    ys: List[Tensor] = []", "    for t in range(valid.size(0)):", "        m = valid[t] > 0.5"]
    body = [f"a{node[name]} = s{node[name]}[t]" for name in net.inputs]

    def term(link, cols=""):
        src = f"a{node[link.src]}" + (f"_{link.delay}" if link.delay else "")
        if link.gradient == "blocked":
            src += ".detach()"
        return f"{src} @ w{w[link.key]}{cols}.t()"

    def total(terms, rows):
        return " + ".join(terms) if terms else f"torch.zeros([m.size(0), {rows}], dtype=valid.dtype)"

    for component, _ in net.schedule:
        for name in component:
            layer, i, H = net.layers[name], node[name], net.layers[name].size
            links = [lk for lk in net.links if lk.dst == name]
            bias = [f"w{w[f'b[{name}]']}"] if layer.bias else []
            if layer.cell == "gru":            # r, z, n; the reset gate multiplies W_hn h(t-1) + b_hn
                rec = [lk for lk in links if lk.src == name and lk.delay == 1]
                other = [term(lk) for lk in links if lk not in rec]
                hn = f" + w{w[f'b[{name}.hn]']}" if layer.bias else ""
                body += [f"zx = {total(other + bias, 3 * H)}", f"zh = {term(rec[0])}",
                         f"r = torch.sigmoid(zx[:, :{H}] + zh[:, :{H}])",
                         f"u = torch.sigmoid(zx[:, {H}:{2 * H}] + zh[:, {H}:{2 * H}])",
                         f"n = torch.tanh(zx[:, {2 * H}:] + r * (zh[:, {2 * H}:]{hn}))",
                         f"a{i} = (1.0 - u) * n + u * a{i}_1"]
                continue
            body.append(f"z = {total([term(lk) for lk in links] + bias, layer.rows)}")
            if layer.cell == "lstm":           # i, f, g, o; the cell state is the node h.c
                c = node[f"{name}.c"]
                body += [f"a{c} = torch.sigmoid(z[:, {H}:{2 * H}]) * a{c}_1"
                         f" + torch.sigmoid(z[:, :{H}]) * torch.tanh(z[:, {2 * H}:{3 * H}])",
                         f"a{i} = torch.sigmoid(z[:, {3 * H}:]) * torch.tanh(a{c})"]
            else:
                body.append(f"a{i} = " + _ACTIVATIONS[layer.activation].format("z"))
    body.append(f"ys.append(a{node[net.output]})")
    for name, D in delayed:                    # shift the carried values, only at valid steps
        i = node[name]
        body += [f"a{i}_{d} = torch.where(m, a{i}_{d - 1}, a{i}_{d})" for d in range(D, 1, -1)]
        body.append(f"a{i}_1 = torch.where(m, a{i}, a{i}_1)")
    carried = ", ".join(f"a{node[name]}_{d}" for name, D in delayed for d in range(1, D + 1))
    tail = [f"    return torch.stack(ys), [{carried}]" if carried else
            "    none: List[Tensor] = []\n    return torch.stack(ys), none"]
    return "\n".join(head + ["        " + line for line in body] + tail) + "\n"


def weight_keys(net):
    """The network's weights in the order ``loop`` takes them: every link, then the biases."""
    keys = [link.key for link in net.links]
    for name, layer in net.layers.items():
        if layer.bias:
            keys.append(f"b[{name}]")
            if layer.cell == "gru":
                keys.append(f"b[{name}.hn]")
    return keys


class _NetPlan:
    """One ``Network`` in torch: which of the module's tensors it reads, and its loop.

    ``key_of`` maps the network's parameter and constant keys to the module's (the model's
    names); ``rename`` maps a node as the user names it to the network's (an open-loop
    NARX's output history ``y`` is its network's ``teacher``, in ``state`` and the final state)."""

    def __init__(self, net, key_of, rename=None):
        self.net = net
        self.keys = [key_of[key] for key in weight_keys(net)]
        self.init = {name: key_of[f"init[{name}]"] for name in net.nodes if f"init[{name}]" in net.params}
        self.rename = dict(rename or {})
        self.source = loop_source(net)
        scope = {"torch": torch, "Tensor": torch.Tensor, "List": List, "Tuple": Tuple}
        exec(compile(self.source, f"<unrolled column {net!r}>", "exec"), scope)
        self.eager = scope["loop"]
        self.script = None

    @property
    def inputs(self):
        return list(self.net.inputs)

    def _user(self, name):
        back = {v: k for k, v in self.rename.items()}
        return back.get(name, name)

    def run(self, P, x, lengths, state, extra, scripted):
        net = self.net
        seqs = {}
        given = dict(extra)
        if x is not None and "x" not in net.inputs and x.shape[-1] == 0:
            steps, x = x.shape[1], None               # (an autoregressive NARX's (N, T, 0) x)
            given.setdefault("steps", steps)
        if x is not None:
            given["x"] = x
        steps = given.pop("steps", None)
        for name in net.inputs:
            if given.get(name) is None:
                raise ValueError(f"this network reads the input {name!r}: pass {name}= a tensor of shape "
                                 f"(N, T, {net.inputs[name]})")
            seqs[name] = given.pop(name)
        unknown = sorted(k for k, v in given.items() if v is not None)
        if unknown:
            raise ValueError(f"unknown input(s) {unknown}: this network reads {self.inputs}")
        state = {self.rename.get(k, k): v for k, v in (state or {}).items()}
        bad = sorted(set(state) - {n for n in net.nodes if net.depth[n]})
        if bad:
            raise ValueError(f"state names {bad}, which no link reads with a delay; expected some of "
                             f"{sorted(self._user(n) for n in net.nodes if net.depth[n])}")
        dtype = P[self.keys[0]].dtype if self.keys else _torch_dtype(net.dtype)
        if seqs:
            first = next(iter(seqs.values()))
            N, T = first.shape[0], first.shape[1]
            like = first.transpose(0, 1)
        else:
            if steps is None:
                raise ValueError("this network reads no input: pass steps=T, the number of steps to run")
            N = len(lengths) if lengths is not None else next((v.shape[0] for v in state.values()), 1)
            T = int(steps)
            like = torch.zeros(T, N, 1, dtype=dtype)
        lengths = _lengths_tensor(lengths, N, T)
        valid = _valid(lengths, like)
        ones = torch.ones_like(valid[0])                                   # (N, 1)
        hist = []
        for name in net.nodes:
            D, size = net.depth[name], net.node_size(name)
            if not D:
                continue
            if name in state:
                s = _as_tensor(state[name], dtype, f"state[{self._user(name)!r}]")
                if tuple(s.shape) != (N, D, size):
                    raise ValueError(f"expected state[{self._user(name)!r}] of shape {(N, D, size)} (N, D, size), "
                                     f"got {tuple(s.shape)}")
                hist += [s[:, D - d] for d in range(1, D + 1)]
            elif name in self.init:
                hist += [ones * P[self.init[name]][D - d] for d in range(1, D + 1)]
            else:
                hist += [ones * torch.zeros(size, dtype=dtype)] * D
        loop = self._scripted() if scripted else self.eager
        y, final = loop([s.transpose(0, 1) for s in seqs.values()], [P[k] for k in self.keys], hist, valid)
        y = y.transpose(0, 1)
        if lengths is not None:
            y = torch.where(valid.transpose(0, 1) > 0.5, y, torch.zeros_like(y))
        out, k = {}, 0
        for name in net.nodes:
            D = net.depth[name]
            if D:
                out[self._user(name)] = torch.stack(final[k:k + D][::-1], dim=1)   # (N, D, size), oldest first
                k += D
        return y, out

    def _scripted(self):
        if self.script is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
                self.script = torch.jit.CompilationUnit(self.source).loop
        return self.script


class _BidirectionalPlan:
    """h(t) = [h_f(t); h_b(t)], the backward net reading each sequence reversed within its length."""

    inputs = ["x"]

    def __init__(self, fwd, bwd, n_fwd):
        self.fwd, self.bwd, self.n_fwd = fwd, bwd, n_fwd

    def run(self, P, x, lengths, state, extra, scripted):
        if state is not None:
            raise ValueError(f"a Bidirectional block {WHOLE_SEQUENCE}")
        lengths = _lengths_tensor(lengths, x.shape[0], x.shape[1])
        h_f, _ = self.fwd.run(P, x, lengths, None, extra, scripted)
        h_b, _ = self.bwd.run(P, reverse_within(x, lengths), lengths, None, extra, scripted)
        return torch.cat([h_f, reverse_within(h_b, lengths)], dim=-1), {}


class _StackPlan:
    """Blocks in series; the state is a dict block name -> that block's state."""

    inputs = ["x"]

    def __init__(self, names, plans, whole_sequence=False):
        self.names, self.plans, self.whole_sequence = names, plans, whole_sequence

    def run(self, P, x, lengths, state, extra, scripted):
        if self.whole_sequence and state is not None:
            raise ValueError(f"this Stack (a BiRNN) {WHOLE_SEQUENCE}")
        state = state or {}
        unknown = sorted(set(state) - set(self.names))
        if unknown:
            raise ValueError(f"state names unknown block(s) {unknown}; the blocks are {self.names}")
        h, final = x, {}
        for name, plan in zip(self.names, self.plans):
            h, final[name] = plan.run(P, h, lengths, state.get(name), {}, scripted)
        return h, final


class _EnsemblePlan:
    """The mean of the members' outputs; the state is a dict member name -> its state."""

    def __init__(self, plans):
        self.plans = plans
        self.inputs = plans[0].inputs

    def run(self, P, x, lengths, state, extra, scripted):
        state = state or {}
        ys, final = [], {}
        for i, plan in enumerate(self.plans):
            y, final[str(i)] = plan.run(P, x, lengths, state.get(str(i)), extra, scripted)
            ys.append(y)
        return torch.stack(ys).mean(dim=0), final


class _Seq2SeqPlan:
    """The encoder's final state (through the bridge) starts the decoder."""

    inputs = ["x", "decoder_inputs"]

    def __init__(self, encoder, decoder, bridge):
        self.encoder, self.decoder, self.bridge = encoder, decoder, bridge

    def run(self, P, x, lengths, state, extra, scripted):
        extra = dict(extra)
        u = extra.pop("decoder_inputs", None)
        if u is None:
            raise ValueError("a Seq2Seq module needs decoder_inputs=, (N, T_out, n_dec_in): the teacher-forced "
                             "decoder inputs")
        decoder_lengths = extra.pop("decoder_lengths", None)
        _, enc = self.encoder.run(P, x, lengths, state, extra, scripted)
        start = {d: enc[e] for d, e in self.bridge.items()}
        return self.decoder.run(P, u, decoder_lengths, start, {}, scripted)


def plan_of(block, prefix=""):
    """The plan computing ``block`` in torch, reading the module's tensors under ``prefix``."""
    net = block if isinstance(block, Network) else getattr(block, "network", None)
    if isinstance(net, Network):
        # a model's names are its network's, but an open-loop NARX's W[teacher->h1@k] is the
        # model's W[y->h1@k]: the same array, found by identity
        by_array = {id(a): key for key, a in block.params.items()}
        key_of = {key: prefix + by_array.get(id(a), key) for key, a in net.params.items()}
        key_of.update({key: prefix + key for key in net.constants})
        rename = {"y": "teacher"} if isinstance(block, NARX) and block.feedback == "open" else None
        return _NetPlan(net, key_of, rename)
    if isinstance(block, Bidirectional):
        return _BidirectionalPlan(plan_of(block.forward_net, prefix + "fwd."),
                                  plan_of(block.backward_net, prefix + "bwd."), block.forward_net.n_out)
    if isinstance(block, Stack):
        return _StackPlan(block.names, [plan_of(b, f"{prefix}{n}.") for n, b in zip(block.names, block.blocks)],
                          whole_sequence=isinstance(block, WholeSequence))
    if isinstance(block, Ensemble):
        return _EnsemblePlan([plan_of(m, f"{prefix}{i}.") for i, m in enumerate(block.members)])
    if isinstance(block, Seq2Seq):
        return _Seq2SeqPlan(plan_of(block.encoder, prefix + "encoder."), plan_of(block.decoder, prefix + "decoder."),
                            block.bridge)
    raise TypeError(f"to_torch takes a Network, a model built on one (RNN, NARX, Elman, ...), a Bidirectional, "
                    f"Stack, Ensemble or Seq2Seq, or a fitted estimator; got {type(block).__name__}")


def _constants(block, prefix=""):
    """{our name: array} of every fixed link's weight in ``block`` (the buffers of its module)."""
    net = block if isinstance(block, Network) else getattr(block, "network", None)
    if isinstance(net, Network):
        return {prefix + key: value for key, value in net.constants.items()}
    children = getattr(block, "children", {})
    return {k: v for name, child in children.items() for k, v in _constants(child, f"{prefix}{name}.").items()}


# ------------------------------------------------------------------------ modules
class UnrolledModule(torch.nn.Module):
    """What both modules share: ``params`` (a ParameterDict), the names both ways
    (``names``: key -> ours, ``keys``: ours -> key), the model's config (for
    ``from_torch``), and the weights and gradients under our names."""

    def _hold(self, model, params):
        self.unrolled_config = block_config(model)
        self.dtype = _torch_dtype(model.dtype)
        self.names, self.keys = {}, {}
        for ours in params:
            key = sanitize(ours)
            while key in self.names:                     # (two names that sanitize alike)
                key += "_"
            self.names[key], self.keys[ours] = ours, key
        self.params = torch.nn.ParameterDict({self.keys[k]: torch.nn.Parameter(torch.tensor(np.array(v)))
                                              for k, v in params.items()})
        self.scripted = False

    def _inputs(self, x):
        return x if x is None else _as_tensor(x, self.dtype, "x")

    def unrolled_params(self):
        """{our name: array}: the weights as ``model.params`` holds them."""
        return {ours: self.params[key].detach().cpu().numpy().copy() for ours, key in self.keys.items()}

    def unrolled_grads(self):
        """{our name: array}: each parameter's ``.grad`` (zeros where none reached it), as
        ``model.backward`` gives them."""
        out = {}
        for ours, key in self.keys.items():
            p = self.params[key]
            out[ours] = (torch.zeros_like(p) if p.grad is None else p.grad).detach().cpu().numpy().copy()
        return out

    def extra_repr(self):
        return f"unrolled {self.unrolled_config['class']}"


class ColumnModule(UnrolledModule):
    """Any model of unrolled in torch (see the module's docstring); ``to_torch`` builds it.

    ``forward(x, lengths=None, state=None, return_state=False, **inputs)``: x (N, T, n_in)
    batch first; ``inputs`` what the model's forward takes besides (``teacher`` of an
    open-loop NARX, ``decoder_inputs`` / ``decoder_lengths`` of a Seq2Seq, ``steps`` of a
    network without inputs). Returns y (N, T, n_out), and with ``return_state`` also the
    final state, a dict as the model's ``cache.state`` (tensors).
    """

    def __init__(self, model):
        super().__init__()
        plan = plan_of(model)                        # (TypeError for what is no model)
        self._hold(model, model.params)
        self.plan = plan
        for ours, value in _constants(model).items():
            self.register_buffer("fixed_" + sanitize(ours), torch.tensor(np.array(value)))
        self._fixed = {ours: "fixed_" + sanitize(ours) for ours in _constants(model)}
        self.input_names = list(self.plan.inputs)
        self.input_widths = {"x": model.n_in, "teacher": model.n_out,
                             "decoder_inputs": getattr(getattr(model, "decoder", None), "n_in", None)}

    def tensors(self):
        """{our name: tensor}: the parameters and the fixed links' buffers."""
        out = {ours: self.params[key] for ours, key in self.keys.items()}
        out.update({ours: getattr(self, name) for ours, name in self._fixed.items()})
        return out

    def forward(self, x=None, lengths=None, state=None, return_state=False, **inputs):
        extra = {k: (v if k in ("decoder_lengths", "steps") or v is None else _as_tensor(v, self.dtype, k))
                 for k, v in inputs.items()}
        y, final = self.plan.run(self.tensors(), self._inputs(x), lengths, state, extra, self.scripted)
        return (y, final) if return_state else y



class PairModule(UnrolledModule):
    """An ``RNN``, ``LSTM``, ``GRU`` or ``BiRNN`` that torch's own modules hold: ``module.rnn``
    (``torch.nn.RNN``/``LSTM``/``GRU``, batch_first) and ``module.linear``, with the
    learned initial states as parameters in ``module.params`` (``init_h1``, ...: h0, one row
    per torch layer and direction, c0 for an LSTM). ``forward`` as :class:`ColumnModule`
    (``lengths`` through ``pack_padded_sequence``). ``rnn, linear = module`` still unpacks
    the pair that ``to_torch`` returned before, with a DeprecationWarning.
    """

    def __init__(self, model, rnn, linear, rows, pair_arrays):
        super().__init__()
        self.cell = {torch.nn.LSTM: "lstm", torch.nn.GRU: "gru"}.get(type(rnn))
        keys = [key for key, _ in rows] + ([key[:-1] + ".c]" for key, _ in rows] if self.cell == "lstm" else [])
        self._hold(model, {key: model.params[key] for key in keys if key in model.params})
        self.rnn, self.linear = rnn, linear
        self.rows = rows                           # (our init key, the state node) per h0 row
        # (rnn, linear, grads=) -> {our name: array}: interop's map of the pair onto our names
        self.pair_arrays = pair_arrays
        self.input_names = ["x"]
        self.input_widths = {"x": model.n_in}

    def forward(self, x=None, lengths=None, state=None, return_state=False):
        x = self._inputs(x)
        if x is None:
            raise ValueError(f"expected x of shape (N, T, {self.rnn.input_size}), got None")
        bidirectional = self.rnn.bidirectional
        if bidirectional and (state is not None or return_state):
            raise ValueError("a BiRNN needs the whole sequence: it starts from no state and returns none")
        N, T = x.shape[0], x.shape[1]
        lengths = _lengths_tensor(lengths, N, T)
        ones = torch.ones_like(x[:, 0, :1])                               # (N, 1)

        def h0(suffix=""):
            out = []
            for key, node in self.rows:
                node, key = node + suffix, key[:-1] + suffix + "]"
                if state is not None and node in state:
                    out.append(_as_tensor(state[node], self.dtype, f"state[{node!r}]")[:, -1])
                elif key in self.keys:
                    out.append(ones * self.params[self.keys[key]][-1])
                else:
                    out.append(ones * torch.zeros(self.rnn.hidden_size, dtype=self.dtype))
            return torch.stack(out)
        start = (h0(), h0(".c")) if self.cell == "lstm" else h0()
        if lengths is None:
            out, h_n = self.rnn(x, start)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, h_n = self.rnn(packed, start)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        y = self.linear(out)
        if lengths is not None:
            valid = (torch.arange(T)[None, :] < lengths[:, None])[..., None]
            y = torch.where(valid, y, torch.zeros_like(y))
        if not return_state:
            return y
        h_n, c_n = h_n if self.cell == "lstm" else (h_n, None)
        final = {node: h_n[r][:, None] for r, (_, node) in enumerate(self.rows)}
        if c_n is not None:
            final.update({node + ".c": c_n[r][:, None] for r, (_, node) in enumerate(self.rows)})
        return y, final

    def __iter__(self):
        warnings.warn("to_torch returns one torch.nn.Module now; unpacking it into (rnn, linear) is "
                      "deprecated: use module.rnn and module.linear (and module as the whole model)",
                      DeprecationWarning, stacklevel=2)
        return iter((self.rnn, self.linear))

    def unrolled_params(self):
        return {**self.pair_arrays(self.rnn, self.linear, grads=False), **super().unrolled_params()}

    def unrolled_grads(self):
        return {**self.pair_arrays(self.rnn, self.linear, grads=True), **super().unrolled_grads()}


class EstimatorModule(UnrolledModule):
    """A fitted ``SequenceRegressor`` / ``SequenceClassifier`` in torch: what its ``predict``
    (a classifier's ``predict_proba``) computes. Its input standardisation (buffers
    ``input_mean``, ``input_scale``; none with ``standardize=False``), its model
    (``module.model``, the module :func:`~unrolled.to_torch` makes of ``model_``) and its
    read-out: a classifier's softmax averaged over each sequence's valid steps
    (``readout="pooled"``) or at its last one (``"last"``), (N, n_classes); a regressor's
    outputs per step (N, T, n_out) or, with ``output="last"``, at the last valid step
    (N, n_out). ``forward(x, lengths=None)``; ``from_torch(module)`` gives back the model.
    """

    def __init__(self, inner, mean, scale, readout):
        super().__init__()
        self.model = inner
        self.unrolled_config, self.dtype = inner.unrolled_config, inner.dtype
        self.names, self.keys = inner.names, inner.keys
        self.input_names, self.input_widths = inner.input_names, inner.input_widths
        self.readout = readout                       # None (per step), "last" or "pooled"
        self.standardized = mean is not None
        if self.standardized:
            self.register_buffer("input_mean", torch.tensor(np.asarray(mean), dtype=self.dtype))
            self.register_buffer("input_scale", torch.tensor(np.asarray(scale), dtype=self.dtype))

    @property
    def params(self):
        """The model's parameters (``module.model.params``)."""
        return self.model.params

    @property
    def scripted(self):
        return self.model.scripted

    @scripted.setter
    def scripted(self, value):
        if "model" in self._modules:                 # (UnrolledModule's own default, before the model is held)
            self.model.scripted = value

    def forward(self, x=None, lengths=None):
        x = self._inputs(x)
        if x is None:
            raise ValueError("expected x of shape (N, T, n_in), got None")
        if self.standardized:
            x = (x - self.input_mean) / self.input_scale
        y = self.model(x, lengths=lengths)
        if self.readout is None:
            return y
        N, T = y.shape[0], y.shape[1]
        lengths = _lengths_tensor(lengths, N, T)
        if self.readout == "last":
            return y[:, -1] if lengths is None else y[torch.arange(N), lengths - 1]
        if lengths is None:
            return y.mean(dim=1)
        valid = (torch.arange(T)[None, :] < lengths[:, None]).to(y.dtype)[..., None]
        return (y * valid).sum(dim=1) / lengths[:, None].to(y.dtype)

    def unrolled_params(self):
        return self.model.unrolled_params()

    def unrolled_grads(self):
        return self.model.unrolled_grads()
