"""PyTorch interop: an ``RNN`` maps one to one onto ``torch.nn.RNN`` + ``torch.nn.Linear``.

torch holds, per layer k, ``weight_ih_l{k}`` (H, in), ``weight_hh_l{k}`` (H, H) and two
biases ``bias_ih_l{k}``, ``bias_hh_l{k}`` that are only ever summed; ``unrolled`` holds
``W[h{k}->h{k}@0]``-style matrices of the same (dst, src) layout and one bias. So:

    W[x->h1@0]        = weight_ih_l0          W[h{k}->h{k+1}@0] = weight_ih_l{k}
    W[h{k+1}->h{k+1}@1] = weight_hh_l{k}      b[h{k+1}]         = bias_ih_l{k} + bias_hh_l{k}
    W[h{L}->y@0]      = linear.weight         b[y]              = linear.bias

torch takes the initial state h0 as an argument of each call, not as a parameter:
``torch_h0(model, N)`` gives the (L, N, H) tensor that reproduces ``init[h{l}]``.
torch is imported only when these functions are called.
"""

from __future__ import annotations

import numpy as np

__all__ = ["from_torch", "to_torch", "torch_h0"]


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("this needs PyTorch: pip install torch==2.13.0") from None
    return torch


def _check_pair(rnn, linear):
    torch = _torch()
    if not isinstance(rnn, torch.nn.RNN):
        raise TypeError(f"expected a torch.nn.RNN, got {type(rnn).__name__}")
    if not isinstance(linear, torch.nn.Linear):
        raise TypeError(f"expected a torch.nn.Linear, got {type(linear).__name__}")
    if rnn.bidirectional:
        raise ValueError("this torch.nn.RNN is bidirectional: use BiRNN's from_torch")
    if rnn.proj_size if hasattr(rnn, "proj_size") else 0:
        raise ValueError("torch.nn.RNN with proj_size has no counterpart here")
    if linear.in_features != rnn.hidden_size:
        raise ValueError(f"linear.in_features ({linear.in_features}) must equal rnn.hidden_size "
                         f"({rnn.hidden_size})")


def from_torch(rnn, linear, *, learn_init=True):
    """An ``RNN`` holding the weights of ``rnn`` (torch.nn.RNN) and ``linear`` (torch.nn.Linear).

    Any ``num_layers``, ``nonlinearity`` tanh or relu, with or without biases; the
    model takes the torch module's dtype. ``init[h{l}]`` start at zero (torch's default h0).
    """
    from .models.rnn import RNN

    _check_pair(rnn, linear)
    dtype = {"torch.float32": np.float32, "torch.float64": np.float64}.get(str(rnn.weight_ih_l0.dtype))
    if dtype is None:
        raise TypeError(f"torch module dtype must be float32 or float64, got {rnn.weight_ih_l0.dtype}")
    L, H = rnn.num_layers, rnn.hidden_size
    model = RNN(rnn.input_size, linear.out_features, hidden=(H,) * L, activation=rnn.nonlinearity,
                output="identity", learn_init=learn_init, bias=rnn.bias,
                output_bias=linear.bias is not None, dtype=dtype)
    p = model.params

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


def to_torch(model):
    """``(rnn, linear)``: a ``torch.nn.RNN`` (batch_first) and ``torch.nn.Linear`` with ``model``'s weights.

    The model must be a plain ``RNN``: equal hidden sizes, no skip links, identity
    output. Its biases go to ``bias_ih`` (``bias_hh`` is zero). Pass
    ``torch_h0(model, N)`` as h0 to reproduce its initial states.
    """
    torch = _torch()
    from .models.rnn import RNN

    if not isinstance(model, RNN):
        raise TypeError(f"to_torch takes an unrolled.RNN, got {type(model).__name__}")
    cfg = model.get_config()
    hidden = tuple(cfg["hidden"])
    problems = []
    if len(set(hidden)) != 1:
        problems.append(f"unequal hidden sizes {hidden}")
    if cfg["skip_input"] or cfg["skip_output"]:
        problems.append("skip links")
    if cfg["output"] != "identity":
        problems.append(f"output activation {cfg['output']!r} (torch.nn.Linear is identity)")
    if cfg["activation"] not in ("tanh", "relu"):
        problems.append(f"activation {cfg['activation']!r} (torch.nn.RNN has tanh or relu)")
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
    L = len(model.get_config()["hidden"])
    rows = []
    for l in range(1, L + 1):
        init = model.params.get(f"init[h{l}]")
        H = model.get_config()["hidden"][l - 1]
        vec = init[-1] if init is not None else np.zeros(H, dtype=model.dtype)
        rows.append(np.broadcast_to(vec, (N, H)))
    return torch.from_numpy(np.ascontiguousarray(np.stack(rows)))
