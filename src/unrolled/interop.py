"""PyTorch interop: any model as one ``torch.nn.Module`` (``to_torch``), and the pairs.

``to_torch(model)`` gives one module computing any model (``unrolled.torch_column``);
``from_torch(module)`` the model back. An ``RNN`` that torch's own modules hold maps one to
one onto ``torch.nn.RNN`` + ``torch.nn.Linear`` (``rnn_to_torch`` gives the pair, which
``to_torch``'s module holds as ``module.rnn`` and ``module.linear``):

torch holds, per layer k, ``weight_ih_l{k}`` (H, in), ``weight_hh_l{k}`` (H, H) and two
biases ``bias_ih_l{k}``, ``bias_hh_l{k}`` that are only ever summed; ``unrolled`` holds
``W[h{k}->h{k}@0]``-style matrices of the same (dst, src) layout and one bias. So:

    W[x->h1@0]        = weight_ih_l0          W[h{k}->h{k+1}@0] = weight_ih_l{k}
    W[h{k+1}->h{k+1}@1] = weight_hh_l{k}      b[h{k+1}]         = bias_ih_l{k} + bias_hh_l{k}
    W[h{L}->y@0]      = linear.weight         b[y]              = linear.bias

torch takes the initial state h0 as an argument of each call, not as a parameter:
``torch_h0(model, N)`` gives the (L, N, H) tensor that reproduces ``init[h{l}]``.

A ``BiRNN(n_in, n_out, hidden=(H,), blocks=K)`` is ``torch.nn.RNN(n_in, H, num_layers=K,
bidirectional=True)`` + ``torch.nn.Linear(2H, n_out)``: torch's layer k (0-based) is block
k+1, its forward direction the block's ``fwd`` net and its ``_reverse`` weights the
``bwd`` net (``birnn_from_torch``, ``birnn_to_torch``, ``birnn_torch_h0``; ``from_torch``,
``to_torch`` and ``torch_h0`` hand bidirectional modules and BiRNNs to them)::

    block{k+1}.fwd.W[x->h1@0]  = weight_ih_l{k}      block{k+1}.bwd.W[x->h1@0]  = weight_ih_l{k}_reverse
    block{k+1}.fwd.W[h1->h1@1] = weight_hh_l{k}      block{k+1}.bwd.W[h1->h1@1] = weight_hh_l{k}_reverse
    block{k+1}.fwd.b[h1] = bias_ih_l{k} + bias_hh_l{k}   (and _reverse for bwd)
    out.W[x->y@0] = linear.weight                     out.b[y] = linear.bias

torch's h0 for a bidirectional RNN is (2K, N, H), row 2k + direction; the backward
direction's h0 is the lecture's h_b(inf), the ``bwd`` net's ``init[h1]``.

The gated kinds map the same way: ``torch.nn.LSTM`` + ``Linear`` onto an ``LSTM`` (or a
``BiRNN(cell="lstm")``), ``torch.nn.GRU`` onto a ``GRU`` (``BiRNN(cell="gru")``); torch's
gate blocks (LSTM i, f, g, o; GRU r, z, n) are the rows of the same weights, and::

    LSTM:  b[h{k+1}] = bias_ih_l{k} + bias_hh_l{k}                       (4H)
           init[h{k+1}.c] gives c0 as init[h{k+1}] gives h0
    GRU:   b[h{k+1}] = bias_ih_l{k} + [bias_hh_l{k}[:2H]; 0]               (3H)
           b[h{k+1}.hn] = bias_hh_l{k}[2H:]     (b_hn stays inside the reset gate)

``to_torch`` puts the biases in ``bias_ih`` and leaves ``bias_hh`` zero but for a GRU's
b_hn. For an LSTM, ``torch_h0`` gives the pair ``(h0, c0)`` that torch takes.
torch is imported only when these functions are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import os

    import torch

    from .models.birnn import BiRNN
    from .models.rnn import GRU, LSTM, RNN

__all__ = ["from_torch", "to_torch", "to_onnx", "rnn_to_torch", "torch_h0", "birnn_from_torch", "birnn_to_torch",
           "birnn_torch_h0", "pair_arrays"]


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("this needs PyTorch: pip install torch==2.13.0") from None
    return torch


def _cell_of(rnn):
    """The ``cell`` of the model that holds the torch module ``rnn``: None (nn.RNN), "lstm"
    (nn.LSTM), "gru" (nn.GRU); TypeError for anything else."""
    torch = _torch()
    for kind, cell in ((torch.nn.RNN, None), (torch.nn.LSTM, "lstm"), (torch.nn.GRU, "gru")):
        if type(rnn) is kind:
            return cell
    raise TypeError(f"expected a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, got {type(rnn).__name__}")


def _check_modules(rnn, linear, bidirectional):
    """TypeError unless ``rnn`` is a torch.nn.RNN, LSTM or GRU and ``linear`` a torch.nn.Linear;
    ValueError unless ``rnn`` is (or is not) ``bidirectional``, or if it projects."""
    torch = _torch()
    _cell_of(rnn)
    if not isinstance(linear, torch.nn.Linear):
        raise TypeError(f"expected a torch.nn.Linear, got {type(linear).__name__}")
    if rnn.bidirectional and not bidirectional:
        raise ValueError(f"this torch.nn.{type(rnn).__name__} is bidirectional: use BiRNN's from_torch")
    if bidirectional and not rnn.bidirectional:
        raise ValueError(f"this torch.nn.{type(rnn).__name__} is not bidirectional: use from_torch")
    if getattr(rnn, "proj_size", 0):
        raise ValueError(f"torch.nn.{type(rnn).__name__} with proj_size has no counterpart here")


def _check_pair(rnn, linear):
    _check_modules(rnn, linear, bidirectional=False)
    if linear.in_features != rnn.hidden_size:
        raise ValueError(f"linear.in_features ({linear.in_features}) must equal rnn.hidden_size "
                         f"({rnn.hidden_size})")


def from_torch(rnn: torch.nn.Module, linear: torch.nn.Linear | None = None, *, learn_init: bool = True) -> Any:
    """The model holding the weights of torch modules: ``from_torch(module)`` for a module
    that :func:`to_torch` made (any model, its weights as they are now in torch), or
    ``from_torch(rnn, linear)`` for a torch.nn.RNN / LSTM / GRU and a torch.nn.Linear: an
    ``RNN`` for a torch.nn.RNN, an ``LSTM`` for a torch.nn.LSTM, a ``GRU`` for a torch.nn.GRU.

    For the pair: any ``num_layers``, ``nonlinearity`` tanh or relu (nn.RNN), with or
    without biases, ``batch_first`` or not (the model is batch first whatever torch's
    layout); the model takes the torch module's dtype. Its initial states start at zero
    (torch's default h0, c0). A bidirectional ``rnn`` gives a ``BiRNN`` (see
    :func:`birnn_from_torch`).

    Parameters
    ----------
    rnn : a module :func:`to_torch` made, or a torch.nn.RNN / LSTM / GRU
    linear : None (with a :func:`to_torch` module), or the torch.nn.Linear read-out
    learn_init : bool, for the pair: whether the model's initial states are learned

    Returns
    -------
    The unrolled model (a copy of the weights: training one does not train the other).
    """
    from .models.rnn import GRU, LSTM, RNN

    if linear is None:
        return _model_from_module(rnn)
    if getattr(rnn, "bidirectional", False):
        return birnn_from_torch(rnn, linear, learn_init=learn_init)
    _check_pair(rnn, linear)
    L, H = rnn.num_layers, rnn.hidden_size
    cls = {None: RNN, "lstm": LSTM, "gru": GRU}[_cell_of(rnn)]
    model = cls(rnn.input_size, linear.out_features, hidden=(H,) * L, **_model_options(rnn, linear, learn_init))
    return _weights_from_torch(model, rnn, linear)


def _model_from_module(module):
    """The model a :func:`to_torch` module computes, with the module's current weights."""
    from .registry import block_from_config
    from .torch_column import UnrolledModule

    if not isinstance(module, UnrolledModule):
        raise TypeError(f"from_torch takes a module made by unrolled.to_torch, or a (torch.nn.RNN | LSTM | GRU, "
                        f"torch.nn.Linear) pair; got {type(module).__name__} alone")
    model = block_from_config(module.unrolled_config)
    for key, value in module.unrolled_params().items():
        model.params[key][...] = value
    return model


def rnn_to_torch(model: RNN | LSTM | GRU | BiRNN) -> tuple[torch.nn.RNNBase, torch.nn.Linear]:
    """``(rnn, linear)``: a ``torch.nn.RNN`` (``LSTM``, ``GRU`` for those models), batch_first,
    and a ``torch.nn.Linear`` with ``model``'s weights (what ``to_torch`` returned before it
    returned one module; ``to_torch(model).rnn`` / ``.linear`` are this pair).

    The model must be a plain ``RNN``, ``LSTM`` or ``GRU``: equal hidden sizes, no skip
    links, identity output. Its biases go to ``bias_ih`` (``bias_hh`` is zero but for a
    GRU's b_hn). Pass ``torch_h0(model, N)`` as h0 (an LSTM: ``(h0, c0)``) to reproduce its
    initial states. A ``BiRNN`` gives a bidirectional module (see :func:`birnn_to_torch`).
    """
    from .models.birnn import BiRNN
    from .models.rnn import GRU, LSTM, RNN

    if isinstance(model, BiRNN):
        return birnn_to_torch(model)

    def layout(cfg, hidden):
        problems = [] if len(set(hidden)) == 1 else [f"unequal hidden sizes {hidden}"]
        return problems + (["skip links"] if cfg["skip_input"] or cfg["skip_output"] else [])

    cls = type(model) if type(model) in (LSTM, GRU) else RNN
    cfg = _torch_config(model, cls, "rnn_to_torch", layout)
    return _weights_to_torch(model, cfg, len(cfg["hidden"]), bidirectional=False)


def to_torch(model: Any) -> torch.nn.Module:
    """One ``torch.nn.Module`` computing ``model``: any ``Network``, every model built on one
    (NARX in either loop, Elman, Jordan, TDNN, RNN with skips, StateSpace, LSTM, GRU, BiRNN,
    Seq2Seq), ``Bidirectional``, ``Stack``, ``Ensemble``, or a fitted ``SequenceRegressor`` /
    ``SequenceClassifier`` (an :class:`~unrolled.torch_column.EstimatorModule`: its input
    standardisation, its ``model_`` and its read-out, so the module computes what the
    estimator predicts).

    The module holds the model's weights as ``nn.Parameter`` (a copy: training one does not
    train the other; ``from_torch(module)`` gives a model back) and computes the same
    column step by step (``unrolled.torch_column``): ``module(x, lengths=None,
    state=None, return_state=False, **inputs)``, batch first, returns y (and the final
    state). ``module.unrolled_grads()`` gives each parameter's gradient under our names.

    An ``RNN`` / ``LSTM`` / ``GRU`` / ``BiRNN`` that ``torch.nn.RNN`` (``LSTM``, ``GRU``) +
    ``torch.nn.Linear`` hold (see :func:`rnn_to_torch`) is built from that pair,
    ``module.rnn`` and ``module.linear``, its learned initial states parameters beside them.

    Parameters
    ----------
    model : any unrolled model or block, or a fitted estimator

    Returns
    -------
    torch.nn.Module (an ``unrolled.torch_column.UnrolledModule``).
    """
    from . import torch_column
    from .models.birnn import BiRNN
    from .models.rnn import RNN, LSTM, GRU

    fitted = _fitted_model(model)
    if fitted is not model:                  # an estimator: its scaling, its model, its read-out
        from .estimators import SequenceClassifier

        readout = model.readout if isinstance(model, SequenceClassifier) else ("last" if model._last else None)
        return torch_column.EstimatorModule(to_torch(fitted), getattr(model, "input_mean_", None),
                                            getattr(model, "input_scale_", None), readout)
    if type(model) in (RNN, LSTM, GRU, BiRNN):            # (a CharRNN's softmax: never a pair)
        try:
            rnn, linear = rnn_to_torch(model)
        except ValueError:                   # not a pair torch holds: the general column
            pass
        else:
            return torch_column.PairModule(model, rnn, linear, _init_rows(model), pair_arrays)
    return torch_column.ColumnModule(model)


def to_onnx(model: Any, path: str | os.PathLike, *, opset: int = 17) -> str:
    """Write ``model`` (or a module :func:`to_torch` made) to ``path`` as an ONNX graph, for inference.

    The graph is ``to_torch(model)`` exported by PyTorch's TorchScript-based exporter
    (``torch.onnx.export(..., dynamo=False)``): each column's step loop is compiled by
    TorchScript and becomes an ONNX ``Loop`` over the steps, and a pair module's
    ``nn.RNN`` / ``LSTM`` / ``GRU`` ONNX's own RNN / LSTM / GRU node; N and T are dynamic.
    Its inputs are the model's sequences, batch first, in the model's dtype: ``x``
    (N, T, n_in), and an open-loop NARX's ``teacher`` or a Seq2Seq's ``decoder_inputs``
    (N, T_out, n_dec_in); its output ``y`` (N, T, n_out).

    Not covered: ``lengths`` (pad the sequences and read each one up to its length: a
    causal model's valid steps do not depend on the padding after them, but a BiRNN's
    backward direction and a Seq2Seq's encoder state do), ``state`` in or out (the
    graph starts from the learned or zero initial histories), a network without inputs
    (a NARX with n_in = 0, which runs ``steps``), and training. The file is written
    atomically: a failed export leaves whatever ``path`` held before.

    Parameters
    ----------
    model : an unrolled model (anything :func:`to_torch` takes) or a module it made
    path : str or Path of the .onnx file
    opset : int, the ONNX opset (default 17)

    Returns
    -------
    ``path``.
    """
    import os
    import tempfile
    import warnings

    torch = _torch()
    from .torch_column import UnrolledModule

    module = model if isinstance(model, UnrolledModule) else to_torch(model)
    names = list(module.input_names)
    if "x" not in names:
        raise ValueError(f"to_onnx exports a model that reads sequences x (N, T, n_in); this one reads "
                         f"{names or 'no input'} (a NARX with n_in=0 runs steps=T from its state: not covered)")
    widths = module.input_widths
    time_axis = {"decoder_inputs": "T_out"}
    example = tuple(torch.zeros(2, 3, widths[name], dtype=module.dtype) for name in names)
    graph = _onnx_graph(module, names)
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
    os.close(fd)
    scripted, module.scripted = module.scripted, True
    try:
        with warnings.catch_warnings():      # (the TorchScript exporter's deprecation and tracer notes)
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, example, tmp, dynamo=False, opset_version=opset, input_names=names,
                              output_names=["y"],
                              dynamic_axes={**{n: {0: "N", 1: time_axis.get(n, "T")} for n in names},
                                            "y": {0: "N", 1: "T_out" if "decoder_inputs" in names else "T"}})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        module.scripted = scripted
    return path


def _onnx_graph(module, names):
    """A module whose forward takes the inputs ``names`` positionally (what the exporter traces)."""
    torch = _torch()

    class OnnxGraph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.module = module

        def forward(self, *inputs):
            return self.module(**dict(zip(names, inputs)))

    return OnnxGraph()


def _fitted_model(model):
    """A fitted estimator's ``model_`` (NotFittedError for an unfitted one); anything else as it is."""
    from . import estimators

    if isinstance(model, (estimators.SequenceRegressor, estimators.SequenceClassifier)):
        if not hasattr(model, "model_"):
            raise estimators.NotFittedError(f"this {type(model).__name__} is not fitted yet: call fit before "
                                            "to_torch (it exports the trained model_)")
        return model.model_
    return model


def _init_rows(model):
    """``(init key, state node)`` for each row of torch's h0: layer k of an RNN is ``h{k+1}``;
    of a BiRNN, block k+1's two directions (row 2k + direction)."""
    from .models.birnn import BiRNN

    if isinstance(model, BiRNN):
        rows, _ = _correspondence(model.get_config()["blocks"], bidirectional=True)
        return [(init, init.replace("init[", "")[:-1]) for *_, init in rows]     # (BiRNN: no state)
    return [(f"init[h{l}]", f"h{l}") for l in range(1, len(model.get_config()["hidden"]) + 1)]


def torch_h0(model: RNN | LSTM | GRU | BiRNN, N: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The initial state that makes torch start where ``model`` does.

    Parameters
    ----------
    model : an RNN, LSTM, GRU or BiRNN
    N : int, the batch size

    Returns
    -------
    (L, N, H) tensor (L·2 layers for a BiRNN); for an LSTM the pair ``(h0, c0)``, as
    ``torch.nn.LSTM`` takes it.
    """
    from .models.birnn import BiRNN

    if isinstance(model, BiRNN):
        return birnn_torch_h0(model, N)
    hidden = model.get_config()["hidden"]
    return _h0(model, [(f"init[h{l}]", H) for l, H in enumerate(hidden, start=1)], N)


# ---------------------------------------------------------------- bidirectional
_DIRECTIONS = (("", "fwd"), ("_reverse", "bwd"))


def birnn_from_torch(rnn: torch.nn.RNNBase, linear: torch.nn.Linear, *, learn_init: bool = True) -> BiRNN:
    """A ``BiRNN`` holding the weights of a bidirectional ``torch.nn.RNN`` (``LSTM``, ``GRU``)
    and a ``torch.nn.Linear``.

    ``torch.nn.RNN(n_in, H, num_layers=K, bidirectional=True)`` + ``Linear(2H, n_out)``
    becomes ``BiRNN(n_in, n_out, hidden=(H,), blocks=K)`` (any nonlinearity torch has,
    with or without biases; the module's dtype); an ``nn.LSTM`` / ``nn.GRU`` a
    ``BiRNN(..., cell="lstm" | "gru")``. The initial states start at zero (torch's default).
    """
    from .models.birnn import BiRNN

    _check_modules(rnn, linear, bidirectional=True)
    K, H = rnn.num_layers, rnn.hidden_size
    if linear.in_features != 2 * H:
        raise ValueError(f"linear.in_features ({linear.in_features}) must be 2 * rnn.hidden_size ({2 * H}): "
                         "it reads [h_f; h_b]")
    cell = _cell_of(rnn)
    model = BiRNN(rnn.input_size, linear.out_features, hidden=(H,), blocks=K,
                  **_model_options(rnn, linear, learn_init), **({"cell": cell} if cell else {}))
    return _weights_from_torch(model, rnn, linear)


def birnn_to_torch(model: BiRNN) -> tuple[torch.nn.RNNBase, torch.nn.Linear]:
    """``(rnn, linear)``: a bidirectional ``torch.nn.RNN`` (batch_first) and a ``torch.nn.Linear``.

    The model must be a ``BiRNN`` with one layer per direction in each block
    (``hidden=(H,)``), tanh or relu states (or ``cell="lstm" | "gru"``: an ``nn.LSTM`` /
    ``nn.GRU``) and an identity output. Biases go to ``bias_ih`` (``bias_hh`` is zero but
    for a GRU's b_hn). Pass ``birnn_torch_h0(model, N)`` as h0 (an LSTM: ``(h0, c0)``).
    """
    from .models.birnn import BiRNN

    def layout(cfg, hidden):
        return [] if len(hidden) == 1 else [f"{len(hidden)} layers per direction in a block "
                                            "(torch has one: hidden=(H,))"]

    cfg = _torch_config(model, BiRNN, "birnn_to_torch", layout)
    return _weights_to_torch(model, cfg, cfg["blocks"], bidirectional=True)


def birnn_torch_h0(model: BiRNN, N: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The (2K, N, H) h0 tensor (row 2k + direction) that starts torch where ``model`` starts
    (``cell="lstm"``: the pair ``(h0, c0)``)."""
    cfg = model.get_config()
    if len(cfg["hidden"]) != 1:
        raise ValueError(f"torch's bidirectional RNN has one layer per direction in a block; this BiRNN has "
                         f"hidden={tuple(cfg['hidden'])}")
    H = cfg["hidden"][0]
    return _h0(model, [(key, H) for *_, key in _correspondence(cfg["blocks"], bidirectional=True)[0]], N)


# ------------------------------------------------------- both directions, both kinds
def _correspondence(layers, bidirectional):
    """Which ``params`` key holds which torch weight: ``(rows, (W_out, b_out))``.

    One row per torch layer k (and direction): ``(suffix, W_in, W_rec, b, init)``, the
    suffix of torch's names (``weight_ih_{suffix}`` = W_in, ``weight_hh_{suffix}`` =
    W_rec, ``bias_ih_{suffix} + bias_hh_{suffix}`` = b; h0's row is ``init``), and the
    keys of the output layer's weight (``linear.weight``) and bias (``linear.bias``).
    """
    rows = []
    if bidirectional:                                    # torch's layer k is block k+1
        for k in range(layers):
            for suffix, d in _DIRECTIONS:
                net = f"block{k + 1}.{d}."
                rows.append((f"l{k}{suffix}", f"{net}W[x->h1@0]", f"{net}W[h1->h1@1]", f"{net}b[h1]",
                             f"{net}init[h1]"))
        return rows, ("out.W[x->y@0]", "out.b[y]")
    for k in range(layers):                              # torch's layer k is h{k+1}
        src, dst = ("x" if k == 0 else f"h{k}"), f"h{k + 1}"
        rows.append((f"l{k}", f"W[{src}->{dst}@0]", f"W[{dst}->{dst}@1]", f"b[{dst}]", f"init[{dst}]"))
    return rows, (f"W[h{layers}->y@0]", "b[y]")


def _hn(b):
    """The key of a GRU's b_hn beside its bias key ``...b[h1]``: ``...b[h1.hn]``."""
    return b[:-1] + ".hn]"


def _weights_from_torch(model, rnn, linear):
    """``model`` with the weights of ``rnn`` and ``linear`` copied into its ``params``."""
    for key, value in pair_arrays(rnn, linear).items():
        model.params[key][...] = value
    return model


def pair_arrays(rnn, linear, *, grads=False):
    """{our name: array}: the weights of ``rnn`` and ``linear`` under our names (b = bias_ih +
    bias_hh; a GRU's b_hn apart), or with ``grads`` their gradients (b's is bias_ih's, which
    equals it: torch only ever sums the two)."""
    cell, H = _cell_of(rnn), rnn.hidden_size

    def take(tensor):
        value = tensor.grad if grads else tensor
        if value is None:
            return np.zeros(tuple(tensor.shape), dtype=_np_dtype(tensor))
        return value.detach().cpu().numpy().astype(_np_dtype(tensor))

    p = {}
    rows, (w_out, b_out) = _correspondence(rnn.num_layers, rnn.bidirectional)
    for suffix, w_in, w_rec, b, _ in rows:
        p[w_in] = take(getattr(rnn, f"weight_ih_{suffix}"))
        p[w_rec] = take(getattr(rnn, f"weight_hh_{suffix}"))
        if rnn.bias:
            b_ih, b_hh = take(getattr(rnn, f"bias_ih_{suffix}")), take(getattr(rnn, f"bias_hh_{suffix}"))
            if cell == "gru":                    # b_hn stays apart: the reset gate multiplies it
                p[_hn(b)] = b_hh[2 * H:].copy()
                b_hh[2 * H:] = 0.0
            p[b] = b_ih if grads else b_ih + b_hh
    p[w_out] = take(linear.weight)
    if linear.bias is not None:
        p[b_out] = take(linear.bias)
    return p


def _weights_to_torch(model, cfg, layers, *, bidirectional):
    """``(rnn, linear)``: new torch modules of ``layers`` layers (batch_first) holding ``model``'s
    weights; ``cfg`` is its checked config (:func:`_torch_config`)."""
    torch = _torch()
    H, cell = cfg["hidden"][0], _model_cell(model)
    tdtype = torch.float64 if model.dtype == np.float64 else torch.float32
    options = dict(num_layers=layers, bias=cfg["bias"], batch_first=True, bidirectional=bidirectional, dtype=tdtype)
    if cell is None:
        rnn = torch.nn.RNN(cfg["n_in"], H, nonlinearity=cfg["activation"], **options)
    else:
        rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](cfg["n_in"], H, **options)
    linear = torch.nn.Linear(2 * H if bidirectional else H, cfg["n_out"], bias=cfg["output_bias"], dtype=tdtype)
    p = model.params

    def put(tensor, value):
        tensor.copy_(torch.from_numpy(np.array(value)))

    rows, (w_out, b_out) = _correspondence(layers, bidirectional)
    with torch.no_grad():
        for suffix, w_in, w_rec, b, _ in rows:
            put(getattr(rnn, f"weight_ih_{suffix}"), p[w_in])
            put(getattr(rnn, f"weight_hh_{suffix}"), p[w_rec])
            if cfg["bias"]:
                put(getattr(rnn, f"bias_ih_{suffix}"), p[b])
                getattr(rnn, f"bias_hh_{suffix}").zero_()
                if cell == "gru":
                    put(getattr(rnn, f"bias_hh_{suffix}")[2 * H:], p[_hn(b)])
        put(linear.weight, p[w_out])
        if cfg["output_bias"]:
            put(linear.bias, p[b_out])
    return rnn, linear


def _torch_config(model, cls, who, layout):
    """``model``'s config, if torch.nn.RNN + Linear can hold the model: TypeError unless it is a
    ``cls``; ValueError listing what they cannot hold, ``layout(cfg, hidden)`` (its layers'
    sizes and links), then the output and state activations."""
    if not isinstance(model, cls):
        raise TypeError(f"{who} takes an unrolled.{cls.__name__}, got {type(model).__name__}")
    cfg = model.get_config()
    problems = layout(cfg, tuple(cfg["hidden"]))
    if cfg["output"] != "identity":
        problems.append(f"output activation {cfg['output']!r} (torch.nn.Linear is identity)")
    if cfg.get("activation", "tanh") not in ("tanh", "relu"):
        problems.append(f"activation {cfg['activation']!r} (torch.nn.RNN has tanh or relu)")
    if problems:
        kind = {None: "RNN", "lstm": "LSTM", "gru": "GRU"}[_model_cell(model)]
        raise ValueError(f"this {cls.__name__} has no torch.nn.{kind} counterpart: " + ", ".join(problems))
    return cfg


def _h0(model, rows, N):
    """torch's h0 (len(rows), N, H): for each ``(key, H)`` the last row of ``params[key]``
    (a learned initial state) or zeros, the same for every sequence; for a model with LSTM
    layers the pair ``(h0, c0)``, c0 from ``init[h{l}.c]``."""
    torch = _torch()

    def stacked(keys):
        out = []
        for key, H in keys:
            init = model.params.get(key)
            vec = init[-1] if init is not None else np.zeros(H, dtype=model.dtype)
            out.append(np.broadcast_to(vec, (N, H)))
        return torch.from_numpy(np.ascontiguousarray(np.stack(out)))

    if _model_cell(model) != "lstm":
        return stacked(rows)
    return stacked(rows), stacked([(key[:-1] + ".c]", H) for key, H in rows])


def _model_cell(model):
    """The cell of a model's recurrent layers: None (plain), "lstm" or "gru"."""
    cell = model.get_config().get("cell")
    if cell is None and hasattr(model, "network"):
        cell = model.network.layers["h1"].cell
    return None if cell == "tanh" else cell


def _model_options(rnn, linear, learn_init):
    """The options of the model that holds ``rnn`` + ``linear``: their activation (nn.RNN's),
    biases, dtype."""
    options = dict(output="identity", learn_init=learn_init, bias=rnn.bias,
                   output_bias=linear.bias is not None, dtype=_np_dtype(rnn.weight_ih_l0))
    if _cell_of(rnn) is None:
        options["activation"] = rnn.nonlinearity
    return options


def _np_dtype(tensor):
    dtype = {"torch.float32": np.float32, "torch.float64": np.float64}.get(str(tensor.dtype))
    if dtype is None:
        raise TypeError(f"torch module dtype must be float32 or float64, got {tensor.dtype}")
    return dtype
