"""PyTorch interop: an ``RNN`` maps one to one onto ``torch.nn.RNN`` + ``torch.nn.Linear``.

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
torch is imported only when these functions are called.
"""

from __future__ import annotations

import numpy as np

__all__ = ["from_torch", "to_torch", "torch_h0", "birnn_from_torch", "birnn_to_torch", "birnn_torch_h0"]


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("this needs PyTorch: pip install torch==2.13.0") from None
    return torch


def _check_modules(rnn, linear, bidirectional):
    """TypeError unless ``rnn`` is a torch.nn.RNN and ``linear`` a torch.nn.Linear;
    ValueError unless ``rnn`` is (or is not) ``bidirectional``, or if it projects."""
    torch = _torch()
    if not isinstance(rnn, torch.nn.RNN):
        raise TypeError(f"expected a torch.nn.RNN, got {type(rnn).__name__}")
    if not isinstance(linear, torch.nn.Linear):
        raise TypeError(f"expected a torch.nn.Linear, got {type(linear).__name__}")
    if rnn.bidirectional and not bidirectional:
        raise ValueError("this torch.nn.RNN is bidirectional: use BiRNN's from_torch")
    if bidirectional and not rnn.bidirectional:
        raise ValueError("this torch.nn.RNN is not bidirectional: use from_torch for an RNN")
    if getattr(rnn, "proj_size", 0):
        raise ValueError("torch.nn.RNN with proj_size has no counterpart here")


def _check_pair(rnn, linear):
    _check_modules(rnn, linear, bidirectional=False)
    if linear.in_features != rnn.hidden_size:
        raise ValueError(f"linear.in_features ({linear.in_features}) must equal rnn.hidden_size "
                         f"({rnn.hidden_size})")


def from_torch(rnn, linear, *, learn_init=True):
    """An ``RNN`` holding the weights of ``rnn`` (torch.nn.RNN) and ``linear`` (torch.nn.Linear).

    Any ``num_layers``, ``nonlinearity`` tanh or relu, with or without biases; the
    model takes the torch module's dtype. ``init[h{l}]`` start at zero (torch's default h0).
    A bidirectional ``rnn`` gives a ``BiRNN`` (see :func:`birnn_from_torch`).
    """
    from .models.rnn import RNN

    if isinstance(rnn, _torch().nn.RNN) and rnn.bidirectional:
        return birnn_from_torch(rnn, linear, learn_init=learn_init)
    _check_pair(rnn, linear)
    L, H = rnn.num_layers, rnn.hidden_size
    model = RNN(rnn.input_size, linear.out_features, hidden=(H,) * L, **_model_options(rnn, linear, learn_init))
    dtype, p = model.dtype, model.params

    def take(tensor):
        return tensor.detach().cpu().numpy().astype(dtype)

    for k in range(L):
        src = "x" if k == 0 else f"h{k}"
        dst = f"h{k + 1}"
        p[f"W[{src}->{dst}@0]"][...] = take(getattr(rnn, f"weight_ih_l{k}"))
        p[f"W[{dst}->{dst}@1]"][...] = take(getattr(rnn, f"weight_hh_l{k}"))
        if rnn.bias:
            p[f"b[{dst}]"][...] = take(getattr(rnn, f"bias_ih_l{k}")) + take(getattr(rnn, f"bias_hh_l{k}"))
    p[f"W[h{L}->y@0]"][...] = take(linear.weight)
    if linear.bias is not None:
        p["b[y]"][...] = take(linear.bias)
    return model


def _layer_problems(cfg):
    """What in a model's config torch.nn.RNN + Linear cannot hold (output, state activation)."""
    problems = []
    if cfg["output"] != "identity":
        problems.append(f"output activation {cfg['output']!r} (torch.nn.Linear is identity)")
    if cfg["activation"] not in ("tanh", "relu"):
        problems.append(f"activation {cfg['activation']!r} (torch.nn.RNN has tanh or relu)")
    return problems


def to_torch(model):
    """``(rnn, linear)``: a ``torch.nn.RNN`` (batch_first) and ``torch.nn.Linear`` with ``model``'s weights.

    The model must be a plain ``RNN``: equal hidden sizes, no skip links, identity
    output. Its biases go to ``bias_ih`` (``bias_hh`` is zero). Pass
    ``torch_h0(model, N)`` as h0 to reproduce its initial states. A ``BiRNN`` gives a
    bidirectional ``torch.nn.RNN`` (see :func:`birnn_to_torch`).
    """
    torch = _torch()
    from .models.birnn import BiRNN
    from .models.rnn import RNN

    if isinstance(model, BiRNN):
        return birnn_to_torch(model)
    if not isinstance(model, RNN):
        raise TypeError(f"to_torch takes an unrolled.RNN, got {type(model).__name__}")
    cfg = model.get_config()
    hidden = tuple(cfg["hidden"])
    problems = []
    if len(set(hidden)) != 1:
        problems.append(f"unequal hidden sizes {hidden}")
    if cfg["skip_input"] or cfg["skip_output"]:
        problems.append("skip links")
    problems += _layer_problems(cfg)
    if problems:
        raise ValueError("this RNN has no torch.nn.RNN counterpart: " + ", ".join(problems))
    L, H = len(hidden), hidden[0]
    tdtype = torch.float64 if model.dtype == np.float64 else torch.float32
    rnn = torch.nn.RNN(cfg["n_in"], H, num_layers=L, nonlinearity=cfg["activation"], bias=cfg["bias"],
                       batch_first=True, dtype=tdtype)
    linear = torch.nn.Linear(H, cfg["n_out"], bias=cfg["output_bias"], dtype=tdtype)
    p = model.params
    with torch.no_grad():
        for k in range(L):
            src = "x" if k == 0 else f"h{k}"
            dst = f"h{k + 1}"
            getattr(rnn, f"weight_ih_l{k}").copy_(torch.from_numpy(p[f"W[{src}->{dst}@0]"].copy()))
            getattr(rnn, f"weight_hh_l{k}").copy_(torch.from_numpy(p[f"W[{dst}->{dst}@1]"].copy()))
            if cfg["bias"]:
                getattr(rnn, f"bias_ih_l{k}").copy_(torch.from_numpy(p[f"b[{dst}]"].copy()))
                getattr(rnn, f"bias_hh_l{k}").zero_()
        linear.weight.copy_(torch.from_numpy(p[f"W[h{L}->y@0]"].copy()))
        if cfg["output_bias"]:
            linear.bias.copy_(torch.from_numpy(p["b[y]"].copy()))
    return rnn, linear


def torch_h0(model, N):
    """The (L, N, H) initial state tensor that makes torch start where ``model`` does."""
    torch = _torch()
    from .models.birnn import BiRNN

    if isinstance(model, BiRNN):
        return birnn_torch_h0(model, N)
    L = len(model.get_config()["hidden"])
    rows = []
    for l in range(1, L + 1):
        init = model.params.get(f"init[h{l}]")
        H = model.get_config()["hidden"][l - 1]
        vec = init[-1] if init is not None else np.zeros(H, dtype=model.dtype)
        rows.append(np.broadcast_to(vec, (N, H)))
    return torch.from_numpy(np.ascontiguousarray(np.stack(rows)))


# ---------------------------------------------------------------- bidirectional
_DIRECTIONS = (("", "fwd"), ("_reverse", "bwd"))


def _model_options(rnn, linear, learn_init):
    """The options of the model that holds ``rnn`` + ``linear``: their activation, biases, dtype."""
    return dict(activation=rnn.nonlinearity, output="identity", learn_init=learn_init, bias=rnn.bias,
                output_bias=linear.bias is not None, dtype=_np_dtype(rnn.weight_ih_l0))


def _np_dtype(tensor):
    dtype = {"torch.float32": np.float32, "torch.float64": np.float64}.get(str(tensor.dtype))
    if dtype is None:
        raise TypeError(f"torch module dtype must be float32 or float64, got {tensor.dtype}")
    return dtype


def birnn_from_torch(rnn, linear, *, learn_init=True):
    """A ``BiRNN`` holding the weights of a bidirectional ``torch.nn.RNN`` and a ``torch.nn.Linear``.

    ``torch.nn.RNN(n_in, H, num_layers=K, bidirectional=True)`` + ``Linear(2H, n_out)``
    becomes ``BiRNN(n_in, n_out, hidden=(H,), blocks=K)`` (any nonlinearity torch has,
    with or without biases; the module's dtype). The ``init[h1]`` start at zero
    (torch's default h0).
    """
    from .models.birnn import BiRNN

    _check_modules(rnn, linear, bidirectional=True)
    K, H = rnn.num_layers, rnn.hidden_size
    if linear.in_features != 2 * H:
        raise ValueError(f"linear.in_features ({linear.in_features}) must be 2 * rnn.hidden_size ({2 * H}): "
                         "it reads [h_f; h_b]")
    model = BiRNN(rnn.input_size, linear.out_features, hidden=(H,), blocks=K,
                  **_model_options(rnn, linear, learn_init))
    dtype, p = model.dtype, model.params

    def take(name):
        return getattr(rnn, name).detach().cpu().numpy().astype(dtype)

    for k in range(K):
        for suffix, d in _DIRECTIONS:
            net = f"block{k + 1}.{d}"
            p[f"{net}.W[x->h1@0]"][...] = take(f"weight_ih_l{k}{suffix}")
            p[f"{net}.W[h1->h1@1]"][...] = take(f"weight_hh_l{k}{suffix}")
            if rnn.bias:
                p[f"{net}.b[h1]"][...] = take(f"bias_ih_l{k}{suffix}") + take(f"bias_hh_l{k}{suffix}")
    p["out.W[x->y@0]"][...] = linear.weight.detach().cpu().numpy().astype(dtype)
    if linear.bias is not None:
        p["out.b[y]"][...] = linear.bias.detach().cpu().numpy().astype(dtype)
    return model


def birnn_to_torch(model):
    """``(rnn, linear)``: a bidirectional ``torch.nn.RNN`` (batch_first) and a ``torch.nn.Linear``.

    The model must be a ``BiRNN`` with one layer per direction in each block
    (``hidden=(H,)``), tanh or relu states and an identity output. Biases go to
    ``bias_ih`` (``bias_hh`` is zero). Pass ``birnn_torch_h0(model, N)`` as h0.
    """
    torch = _torch()
    from .models.birnn import BiRNN

    if not isinstance(model, BiRNN):
        raise TypeError(f"birnn_to_torch takes an unrolled.BiRNN, got {type(model).__name__}")
    cfg = model.get_config()
    hidden = tuple(cfg["hidden"])
    problems = []
    if len(hidden) != 1:
        problems.append(f"{len(hidden)} layers per direction in a block (torch has one: hidden=(H,))")
    problems += _layer_problems(cfg)
    if problems:
        raise ValueError("this BiRNN has no torch.nn.RNN counterpart: " + ", ".join(problems))
    K, H = cfg["blocks"], hidden[0]
    tdtype = torch.float64 if model.dtype == np.float64 else torch.float32
    rnn = torch.nn.RNN(cfg["n_in"], H, num_layers=K, nonlinearity=cfg["activation"], bias=cfg["bias"],
                       batch_first=True, bidirectional=True, dtype=tdtype)
    linear = torch.nn.Linear(2 * H, cfg["n_out"], bias=cfg["output_bias"], dtype=tdtype)
    p = model.params

    def put(name, value):
        getattr(rnn, name).copy_(torch.from_numpy(np.array(value)))

    with torch.no_grad():
        for k in range(K):
            for suffix, d in _DIRECTIONS:
                net = f"block{k + 1}.{d}"
                put(f"weight_ih_l{k}{suffix}", p[f"{net}.W[x->h1@0]"])
                put(f"weight_hh_l{k}{suffix}", p[f"{net}.W[h1->h1@1]"])
                if cfg["bias"]:
                    put(f"bias_ih_l{k}{suffix}", p[f"{net}.b[h1]"])
                    getattr(rnn, f"bias_hh_l{k}{suffix}").zero_()
        linear.weight.copy_(torch.from_numpy(np.array(p["out.W[x->y@0]"])))
        if cfg["output_bias"]:
            linear.bias.copy_(torch.from_numpy(np.array(p["out.b[y]"])))
    return rnn, linear


def birnn_torch_h0(model, N):
    """The (2K, N, H) h0 tensor (row 2k + direction) that starts torch where ``model`` starts."""
    torch = _torch()
    cfg = model.get_config()
    if len(cfg["hidden"]) != 1:
        raise ValueError(f"torch's bidirectional RNN has one layer per direction in a block; this BiRNN has "
                         f"hidden={tuple(cfg['hidden'])}")
    H = cfg["hidden"][0]
    rows = []
    for k in range(cfg["blocks"]):
        for _, d in _DIRECTIONS:
            init = model.params.get(f"block{k + 1}.{d}.init[h1]")
            vec = init[-1] if init is not None else np.zeros(H, dtype=model.dtype)
            rows.append(np.broadcast_to(vec, (N, H)))
    return torch.from_numpy(np.ascontiguousarray(np.stack(rows)))
