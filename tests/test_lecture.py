"""The library against a literal transcription of the lecture's pseudocode.

The slides transcribed: "Recurrent Neural Net", "BPTT", "Bidirectional RNN block:
inference", "Bidirectional RNN: Simplified code", "First: backprop through a recurrent
net" and "BRNN block: gradient computation".

The functions below follow the slides line by line, for ONE training instance ("Will
only focus on *one* training instance"), with the slide's names:

* h[t, l], z[t, l] are the slide's h(t,l), z(t,l), kept in dicts so that the slide's
  h(-1,l) (and the backward net's h_b(T,l) = h_b(inf,l)) are ordinary entries;
  h[t, 0] = x(t).
* Vectors are 1-D arrays. Forward products are W h (column vectors). The backward slides
  write gradients as ROW vectors: dh(t,l-1) += dz(t,l) W_c(l) is ``dz @ W_c``, and
  dW_c(l) += h(t,l-1) dz(t,l) is the outer product ``np.outer(h, dz)``, so the slide's dW
  has the shape of W transposed; it is compared with the library's gradient ``.T``.
* Activation tanh: Jacobian(h(t,l), z(t,l)) = diag(1 - h(t,l)^2). Output identity
  (the slide has softmax): Jacobian(Y(t), z_o(t)) = I.

Divergence. The lecture's special case "DIV = sum_t Div(t)". The library's
``unrolled.divergences.SquaredError`` (src/unrolled/divergences.py) computes

    DIV = (1/N) sum_n sum_{t < len_n} ||Y_n(t) - d_n(t)||^2        (NO factor 0.5)
    dY_n(t) = dDIV/dY_n(t) = 2 (Y_n(t) - d_n(t)) / N,  0 at padded steps,

i.e. Div(t) = ||Y(t) - d(t)||^2 summed over t and averaged over the N sequences of the
batch. That scaling is the one used here (it is 2x the 0.5 ||Y - d||^2 convention); the
test also checks that the library's value and dY are exactly these.

Batches: the library is batch first, x (N, T, n_in) with ``lengths``. The lecture runs
one sequence of length T; here each sequence n runs through the transcription on its own
valid steps x[n, :len_n] with T = len_n (padded steps are never read), and the batch
gradient is the sum over n of the per-sequence gradients (the 1/N sits in dY).

Every comparison runs for each backend: ``"numpy"`` (reference loops) and ``"fast"``
(numba-compiled loops).
"""

import numpy as np
import pytest

import unrolled
from unrolled import RNN, BiRNN, Bidirectional, Layer, Link, Network, Stack
from unrolled.blocks import recurrent_network
from unrolled.divergences import SquaredError

try:
    import numba  # noqa: F401
    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    _HAVE_NUMBA = False

BACKENDS = ["numpy", pytest.param("fast", marks=pytest.mark.skipif(not _HAVE_NUMBA, reason="numba"))]

# Tolerances of every comparison below.
OUT_TOL = dict(rtol=1e-12, atol=1e-12)    # outputs Y(t), block states h(t)
GRAD_TOL = dict(rtol=1e-10, atol=1e-10)   # every gradient, dx and dh(-1)


# =========================================================================== lecture
def tanh_jacobian(h):
    """Jacobian(h(t,l), z(t,l)) for h = tanh(z): diag(1 - h^2)."""
    return np.diag(1.0 - h * h)


def identity_jacobian(y):
    """Jacobian(Y(t), z_o(t)) for the identity output Y(t) = z_o(t)."""
    return np.eye(y.shape[0])


def fliplr(seq, T):
    """The slide's fliplr, "Flip it in time": t -> T-1-t.

    For an array indexed by time first (x, dh_top, dx) it reverses the rows. For a dict
    keyed (t, l) (h, z) it maps key (t, l) to (T-1-t, l), so the initial state h(-1, l) of
    the reversed net becomes h_b(T, l), the slide's h_b(inf) ("h_b(T,:,:) = h_b(inf,:,:)").
    """
    if isinstance(seq, dict):
        return {(T - 1 - t, l): v for (t, l), v in seq.items()}
    return seq[::-1]


def RNN_forward(L, Wc, Wr, b, hinit, x, T):
    """Slide "First: Define forward recurrence" (returns h and, for the BPTT slides, z).

    Wc, Wr, b, hinit: dicts l -> array for l = 1..L; x: (T, n_in).
    """
    h, z = {}, {}
    for l in range(1, L + 1):
        h[-1, l] = hinit[l]                          # h(-1,:) = hinit
    for t in range(0, T):                            # for t = 0:T-1  # Going forward in time
        h[t, 0] = x[t]                               #     h(t,0) = x(t)
        for l in range(1, L + 1):                    #     for l = 1:L
            z[t, l] = Wc[l] @ h[t, l - 1] + Wr[l] @ h[t - 1, l] + b[l]
            #                                              z(t,l) = Wc(l)h(t,l-1) + Wr(l)h(t-1,l) + b(l)
            h[t, l] = np.tanh(z[t, l])               #         h(t,l) = tanh(z(t,l))
    return h, z                                      # return h


def RNN_net_forward(L, W_c, W_r, b, W_o, b_o, h_init, x, T):
    """Slide "Recurrent Neural Net" (time-synchronous output), identity instead of softmax."""
    h, z, z_o, Y = {}, {}, {}, {}
    for l in range(1, L + 1):
        h[-1, l] = h_init[l]                         # Assuming h(-1,*) is known
    for t in range(0, T):                            # for t = 0:T-1
        h[t, 0] = x[t]                               #     h(t,0) = x(t)
        for l in range(1, L + 1):                    #     for l = 1:L
            z[t, l] = W_c[l] @ h[t, l - 1] + W_r[l] @ h[t - 1, l] + b[l]
            #                                              z(t,l) = W_c(l)h(t,l-1) + W_r(l)h(t-1,l) + b(l)
            h[t, l] = np.tanh(z[t, l])               #         h(t,l) = tanh(z(t,l))
        z_o[t] = W_o @ h[t, L] + b_o                 #     z_o(t) = W_o h(t,L) + b_o
        Y[t] = z_o[t]                                #     Y(t) = softmax(z_o(t))  -> identity here
    return h, z, z_o, Y


def RNN_net_bptt(L, W_c, W_r, b, W_o, b_o, h, z, z_o, Y, dY, T):
    """Slide "BPTT" (the full net with its output layer W_o, b_o).

    dY[t] = gradient(div, Y(t)). Returns dx (T, n_in), dW_c, dW_r, db (dicts over l),
    dW_o, db_o and dh(-1, l) (dict over l). dW are the slide's h dz (W transposed).
    """
    # Assuming all dz, dh, dW and db are initialized to 0
    dh = {key: np.zeros_like(v) for key, v in h.items()}
    dz = {}
    dz_o = {}
    dW_c = {l: np.zeros_like(W_c[l].T) for l in range(1, L + 1)}
    dW_r = {l: np.zeros_like(W_r[l].T) for l in range(1, L + 1)}
    db = {l: np.zeros_like(b[l]) for l in range(1, L + 1)}
    dW_o = np.zeros_like(W_o.T)
    db_o = np.zeros_like(b_o)
    dx = np.zeros((T, W_c[1].shape[1]))
    for t in range(T - 1, -1, -1):                   # for t = T-1:downto:0  # Backward through time
        dz_o[t] = dY[t] @ identity_jacobian(Y[t])    #     dz_o(t) = dY(t) Jacobian(Y(t), z_o(t))
        dW_o += np.outer(h[t, L], dz_o[t])           #     dW_o += h(t,L) dz_o(t)
        db_o += dz_o[t]                              #     db_o += dz_o(t)
        dh[t, L] += dz_o[t] @ W_o                    #     dh(t,L) += dz_o(t) W_o
        for l in range(L, 0, -1):                    #     for l = L:1  # Reverse through layers
            dz[t, l] = dh[t, l] @ tanh_jacobian(h[t, l])  # dz(t,l) = dh(t,l) Jacobian(h(t,l), z(t,l))
            dh[t, l - 1] += dz[t, l] @ W_c[l]        #         dh(t,l-1) += dz(t,l) W_c(l)
            dh[t - 1, l] = dz[t, l] @ W_r[l]         #         dh(t-1,l) = dz(t,l) W_r(l)
            # (this slide writes "=", the RNN_bptt slide "+="; the same here: nothing has
            #  written dh(t-1,l) before step t, which is its only writer of time t-1 at layer l)
            dW_c[l] += np.outer(h[t, l - 1], dz[t, l])  #     dW_c(l) += h(t,l-1) dz(t,l)
            dW_r[l] += np.outer(h[t - 1, l], dz[t, l])  #     dW_r(l) += h(t-1,l) dz(t,l)
            db[l] += dz[t, l]                        #         db(l) += dz(t,l)
        dx[t] = dh[t, 0]                             # the input's gradient, dh(t,0)
    dh_init = {l: dh[-1, l] for l in range(1, L + 1)}
    return dx, dW_c, dW_r, db, dW_o, db_o, dh_init


def RNN_bptt(L, W_c, W_r, b, hinit, x, T, dh_top, h, z):
    """Slide "First: backprop through a recurrent net" (``function RNN_bppt``, sic).

    dh_top: (T, H_L), ddiv/dh(t,L). Returns dx (T, n_in), dWc, dWr, db, dh(-1) (dicts over l).
    """
    h = dict(h)
    # Assuming all dz, dh, dW_c, dW_r and db are initialized to 0
    dh = {key: np.zeros_like(v) for key, v in h.items()}   # dh = zeros
    dz = {}
    dW_c = {l: np.zeros_like(W_c[l].T) for l in range(1, L + 1)}
    dW_r = {l: np.zeros_like(W_r[l].T) for l in range(1, L + 1)}
    db = {l: np.zeros_like(b[l]) for l in range(1, L + 1)}
    dx = np.zeros((T, W_c[1].shape[1]))
    for t in range(T - 1, -1, -1):                   # for t = T-1:downto:0  # Backward through time
        dh[t, L] += dh_top[t]                        #     dh(t,L) += dh_top(t)
        h[t, 0] = x[t]                               #     h(t,0) = x(t)
        dh.setdefault((t, 0), np.zeros_like(x[t]))
        for l in range(L, 0, -1):                    #     for l = L:1  # Reverse through layers
            dz[t, l] = dh[t, l] @ tanh_jacobian(h[t, l])  # dz(t,l) = dh(t,l) Jacobian(h(t,l), z(t,l))
            dh[t, l - 1] += dz[t, l] @ W_c[l]        #         dh(t,l-1) += dz(t,l) W_c(l)
            dh[t - 1, l] += dz[t, l] @ W_r[l]        #         dh(t-1,l) += dz(t,l) W_r(l)
            dW_c[l] += np.outer(h[t, l - 1], dz[t, l])  #     dW_c(l) += h(t,l-1) dz(t,l)
            dW_r[l] += np.outer(h[t - 1, l], dz[t, l])  #     dW_r(l) += h(t-1,l) dz(t,l)
            db[l] += dz[t, l]                        #         db(l) += dz(t,l)
        dx[t] = dh[t, 0]                             #     dx(t) = dh(t,0)
    # return dx, dWc, dWr, db, dh(-1)  # dh(-1) is actually dh(-1,1:L,:)
    return dx, dW_c, dW_r, db, {l: dh[-1, l] for l in range(1, L + 1)}


def BRNN_block_forward_explicit(L_f, W_fc, W_fr, b_f, h_f_init, L_b, W_bc, W_br, b_b, h_b_inf, x, T):
    """Slide "Bidirectional RNN block: inference" (the two recurrences written out)."""
    h_f, z_f, h_b, z_b = {}, {}, {}, {}
    for l in range(1, L_f + 1):
        h_f[-1, l] = h_f_init[l]                     # Assuming h_f(-1,*) ... known
    # forward recurrence
    for t in range(0, T):                            # for t = 0:T-1  # Going forward in time
        h_f[t, 0] = x[t]                             #     h_f(t,0) = x(t)
        for l in range(1, L_f + 1):                  #     for l = 1:L_f
            z_f[t, l] = W_fc[l] @ h_f[t, l - 1] + W_fr[l] @ h_f[t - 1, l] + b_f[l]
            h_f[t, l] = np.tanh(z_f[t, l])           #         h_f(t,l) = tanh(z_f(t,l))
    # backward recurrence
    for l in range(1, L_b + 1):
        h_b[T, l] = h_b_inf[l]                       # h_b(T,:,:) = h_b(inf,:,:)
    for t in range(T - 1, -1, -1):                   # for t = T-1:downto:0  # Going backward in time
        h_b[t, 0] = x[t]                             #     h_b(t,0) = x(t)
        for l in range(1, L_b + 1):                  #     for l = 1:L_b
            z_b[t, l] = W_bc[l] @ h_b[t, l - 1] + W_br[l] @ h_b[t + 1, l] + b_b[l]
            h_b[t, l] = np.tanh(z_b[t, l])           #         h_b(t,l) = tanh(z_b(t,l))
    h = {}
    for t in range(0, T):                            # for t = 0:T-1  # The output combines ...
        h[t] = np.concatenate([h_f[t, L_f], h_b[t, L_b]])  # h(t) = [h_f(t,L_f); h_b(t,L_b)]
    return h


def BRNN_block_forward(L_f, W_fc, W_fr, b_f, h_f_init, L_b, W_bc, W_br, b_b, h_b_inf, x, T):
    """Slide "Bidirectional RNN block" (simplified code, with RNN_forward and fliplr)."""
    # forward pass
    h_f, z_f = RNN_forward(L_f, W_fc, W_fr, b_f, h_f_init, x, T)
    # h_f = RNN_forward(L_f, W_fc, W_fr, b_f, h_f(-1,:), x, T)
    # backward pass
    x_rev = fliplr(x, T)                             # x_rev = fliplr(x)  # Flip it in time
    h_brev, z_brev = RNN_forward(L_b, W_bc, W_br, b_b, h_b_inf, x_rev, T)
    # h_brev = RNN_forward(L_b, W_bc, W_br, b_b, h_b(inf,:), x_rev, T)
    h_b = fliplr(h_brev, T)                          # h_b = fliplr(h_brev)  # Flip back to straighten time
    z_b = fliplr(z_brev, T)
    # combine the two for the output
    h = {}
    for t in range(0, T):                            # for t = 0:T-1
        h[t] = np.concatenate([h_f[t, L_f], h_b[t, L_b]])  # h(t) = [h_f(t,L_f); h_b(t,L_b)]
    return h, (h_f, z_f, h_b, z_b)


def BRNN_block_backward(dh, x, T, L_f, W_fc, W_fr, b_f, h_f_init, L_b, W_bc, W_br, b_b, h_b_inf,
                        h_f, z_f, h_b, z_b):
    """Slide "BRNN block: gradient computation". dh: (T, H_f + H_b), ddiv/dh(t)."""
    # "L_f and L_b are the number of components in h_f(t) and h_b(t)": the slide reuses
    # L_f for the size of h_f(t); here that size is H_f.
    H_f = h_f_init[L_f].shape[0]
    dh_f = np.zeros((T, H_f))
    dh_b = np.zeros((T, dh.shape[1] - H_f))
    for t in range(0, T):                            # for t = 0:T-1  # Separate out ... gradients
        dh_f[t] = dh[t, :H_f]                        #     dh_f(t) = dh(t,1:L_f)
        dh_b[t] = dh[t, H_f:]                        #     dh_b(t) = dh(t,L_f+1:L_f+L_b)
    # forward net  (the slide passes "L" to both calls: here L_f and L_b)
    dx_f, dW_fc, dW_fr, db_f, dh_f_init = RNN_bptt(L_f, W_fc, W_fr, b_f, h_f_init, x, T, dh_f, h_f, z_f)
    # backward net
    x_rev = fliplr(x, T)                             # x_rev = fliplr(x)  # Flip it in time
    dh_brev = fliplr(dh_b, T)                        # dh_brev = fliplr(dh_b)
    h_brev = fliplr(h_b, T)                          # h_brev = fliplr(h_b)
    z_brev = fliplr(z_b, T)                          # z_brev = fliplr(z_b)
    dx_brev, dW_bc, dW_br, db_b, dh_b_inf = RNN_bptt(L_b, W_bc, W_br, b_b, h_b_inf, x_rev, T,
                                                     dh_brev, h_brev, z_brev)
    dx_b = fliplr(dx_brev, T)                        # dx_b = fliplr(dx_brev)
    dx = np.zeros_like(x)
    for t in range(0, T):                            # for t = 0:T-1  # Add the partials
        dx[t] = dx_f[t] + dx_b[t]                    #     dx(t) = dx_f(t) + dx_b(t)
    return dx, (dW_fc, dW_fr, db_f, dh_f_init), (dW_bc, dW_br, db_b, dh_b_inf)


def output_layer_forward(W_o, b_o, h, T):
    """The output layer on top of the block, "followed by an output layer": identity."""
    Y = {}
    for t in range(0, T):
        Y[t] = W_o @ h[t] + b_o                      # z_o(t) = W_o h(t) + b_o;  Y(t) = z_o(t)
    return Y


def output_layer_backward(W_o, b_o, h, Y, dY, T):
    """The output-layer lines of the "BPTT" slide, giving the block's dh(t)."""
    dW_o, db_o = np.zeros_like(W_o.T), np.zeros_like(b_o)
    dh = np.zeros((T, W_o.shape[1]))
    for t in range(T - 1, -1, -1):
        dz_o = dY[t] @ identity_jacobian(Y[t])       # dz_o(t) = dY(t) Jacobian(Y(t), z_o(t))
        dW_o += np.outer(h[t], dz_o)                 # dW_o += h(t) dz_o(t)
        db_o += dz_o                                 # db_o += dz_o(t)
        dh[t] = dz_o @ W_o                           # dh(t) += dz_o(t) W_o
    return dh, dW_o, db_o


def divergence(Y, d, T, N):
    """DIV_n = (1/N) sum_t ||Y(t) - d(t)||^2 and dY(t) = 2 (Y(t) - d(t)) / N (library scaling)."""
    value = 0.0
    dY = {}
    for t in range(0, T):
        r = Y[t] - d[t]
        value += float(r @ r) / N                    # Div(t) = ||Y(t) - d(t)||^2, over N sequences
        dY[t] = 2.0 * r / N                          # gradient(div, Y(t))
    return value, dY


# =========================================================================== helpers
def set_backend(block, backend):
    """Set ``backend`` on every Network inside a model/block; returns how many were set."""
    if isinstance(block, Network):
        block.backend = backend
        assert block.backend == backend
        return 1
    if hasattr(block, "network"):
        return set_backend(block.network, backend)
    return sum(set_backend(child, backend) for child in block.children.values())


def randomize(params, rng, scale=0.6):
    """Random values in every parameter, the initial states h(-1) included (nonzero)."""
    for p in params.values():
        p[...] = rng.normal(size=p.shape) * scale


def column_params(P, prefix, L):
    """The lecture's W_c(l), W_r(l), b(l), h(-1,l) from a recurrent column's parameters."""
    W_c = {1: P[f"{prefix}W[x->h1@0]"]}              # W_c(1): input -> layer 1
    for l in range(2, L + 1):
        W_c[l] = P[f"{prefix}W[h{l - 1}->h{l}@0]"]   # W_c(l): layer l-1 -> layer l, same time
    W_r = {l: P[f"{prefix}W[h{l}->h{l}@1]"] for l in range(1, L + 1)}   # W_r(l): delay 1
    b = {l: P[f"{prefix}b[h{l}]"] for l in range(1, L + 1)}
    h_init = {l: P[f"{prefix}init[h{l}]"][0] for l in range(1, L + 1)}  # (1, H) -> vector
    return W_c, W_r, b, h_init


def column_grads(prefix, L, dW_c, dW_r, db, dh_init):
    """The lecture's gradients under the library's names and layouts (dW transposed)."""
    g = {f"{prefix}W[x->h1@0]": dW_c[1].T}
    for l in range(2, L + 1):
        g[f"{prefix}W[h{l - 1}->h{l}@0]"] = dW_c[l].T
    for l in range(1, L + 1):
        g[f"{prefix}W[h{l}->h{l}@1]"] = dW_r[l].T
        g[f"{prefix}b[h{l}]"] = db[l]
        g[f"{prefix}init[h{l}]"] = dh_init[l][None, :]
    return g


def add_grads(total, g):
    for k, v in g.items():
        total[k] = total[k] + v if k in total else v.copy()


def assert_same_grads(lib, lecture, params):
    assert set(lib) == set(params), "the library returns a gradient for each parameter"
    assert set(lecture) == set(params), "the transcription gives a gradient for each parameter"
    for k in params:
        assert lib[k].shape == params[k].shape, k
        np.testing.assert_allclose(lib[k], lecture[k], err_msg=k, **GRAD_TOL)


# =========================================================================== 1. RNN
RNN_CASES = [0, 1, 2, 3, 4, 5]   # seeds; sizes drawn from them, lengths for odd seeds


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", RNN_CASES)
def test_rnn_forward_and_bptt_match_lecture_pseudocode(seed, backend):
    """RNN vs the slides' "Recurrent Neural Net" forward and "BPTT": Y(t) and every gradient."""
    rng = np.random.default_rng(100 + seed)
    L = 2 + seed % 2                                 # 2 or 3 hidden layers
    hidden = tuple(int(v) for v in rng.integers(1, 6, size=L))
    n_in, n_out = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    N, T = int(rng.integers(2, 5)), int(rng.integers(3, 8))
    if seed % 2:
        lengths = rng.integers(1, T + 1, size=N)
        lengths[0] = T
        if seed == 5:
            lengths[-1] = 0                          # an empty sequence: contributes nothing
    else:
        lengths = None
    m = RNN(n_in, n_out, hidden=hidden, dtype=np.float64, seed=seed)
    assert set_backend(m, backend) == 1
    randomize(m.params, rng)
    P = m.params
    W_c, W_r, b, h_init = column_params(P, "", L)
    W_o, b_o = P[f"W[h{L}->y@0]"], P["b[y]"]
    x = rng.normal(size=(N, T, n_in))                # padded steps hold values too: never read
    d = rng.normal(size=(N, T, n_out))
    lens = np.full(N, T) if lengths is None else lengths

    # --- the lecture, one sequence at a time
    Y_lec = np.zeros((N, T, n_out))
    dY_lec = np.zeros((N, T, n_out))
    value_lec = 0.0
    grads_lec, dx_lec = {}, np.zeros((N, T, n_in))
    for n in range(N):
        Tn = int(lens[n])
        h, z, z_o, Y = RNN_net_forward(L, W_c, W_r, b, W_o, b_o, h_init, x[n, :Tn], Tn)
        v, dY = divergence(Y, d[n, :Tn], Tn, N)
        value_lec += v
        dx, dW_c, dW_r, db, dW_o, db_o, dh_init = RNN_net_bptt(L, W_c, W_r, b, W_o, b_o, h, z, z_o, Y,
                                                               dY, Tn)
        for t in range(Tn):
            Y_lec[n, t], dY_lec[n, t] = Y[t], dY[t]
        dx_lec[n, :Tn] = dx
        g = column_grads("", L, dW_c, dW_r, db, dh_init)
        g[f"W[h{L}->y@0]"], g["b[y]"] = dW_o.T, db_o
        add_grads(grads_lec, g)

    # --- the library
    y, cache = m.forward(x, lengths=lengths)
    np.testing.assert_allclose(y, Y_lec, **OUT_TOL)          # Y_lec is 0 at padded steps, as is y
    value, dy = SquaredError()(y, d, lengths=lengths)
    np.testing.assert_allclose(value, value_lec, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dy, dY_lec, **OUT_TOL)        # 2 (Y - d) / N, 0 when padded
    grads, dx = m.backward(dy, cache)
    assert_same_grads(grads, grads_lec, P)
    np.testing.assert_allclose(dx, dx_lec, **GRAD_TOL)       # 0 at padded steps


# =========================================================================== 2. BRNN
def _birnn_model(kind, n_in, n_out, seed):
    """The lecture's BRNN block followed by an output layer.

    "birnn": unrolled.BiRNN, L_f = L_b = 2.  "stack": Stack(Bidirectional(...), output
    Network) with a 2-layer forward net and a 1-layer backward net (L_f != L_b).
    """
    if kind == "birnn":
        return BiRNN(n_in, n_out, hidden=(3, 4), dtype=np.float64, seed=seed), (2, 2)
    fwd = recurrent_network(n_in, (3, 4), dtype=np.float64, seed=seed)
    bwd = recurrent_network(n_in, (5,), dtype=np.float64, seed=seed + 1)
    out = Network({"x": 4 + 5}, {"y": Layer(n_out, "identity", bias=True, init="zeros")},
                  [Link("x", "y")], "y", dtype=np.float64)
    return Stack(Bidirectional(fwd, bwd), out, names=["block1", "out"]), (2, 1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("kind", ["birnn", "stack"])
def test_brnn_block_forward_and_backward_match_lecture_pseudocode(kind, with_lengths, backend):
    """BRNN block + output layer vs the slides' BRNN inference and gradient computation."""
    seed = {"birnn": 7, "stack": 8}[kind] + 10 * with_lengths
    rng = np.random.default_rng(seed)
    n_in, n_out, N, T = 3, 2, 4, 6
    m, (L_f, L_b) = _birnn_model(kind, n_in, n_out, seed)
    assert set_backend(m, backend) == 3                        # fwd net, bwd net, output layer
    randomize(m.params, rng)
    P = m.params
    W_fc, W_fr, b_f, h_f_init = column_params(P, "block1.fwd.", L_f)
    W_bc, W_br, b_b, h_b_inf = column_params(P, "block1.bwd.", L_b)   # bwd init = h_b(inf)
    W_o, b_o = P["out.W[x->y@0]"], P["out.b[y]"]
    lengths = np.array([6, 3, 1, 5]) if with_lengths else None
    lens = np.full(N, T) if lengths is None else lengths
    x = rng.normal(size=(N, T, n_in))
    d = rng.normal(size=(N, T, n_out))
    fwd_args = (L_f, W_fc, W_fr, b_f, h_f_init)
    bwd_args = (L_b, W_bc, W_br, b_b, h_b_inf)

    Y_lec = np.zeros((N, T, n_out))
    dY_lec = np.zeros((N, T, n_out))
    h_lec = np.zeros((N, T, W_o.shape[1]))
    value_lec, grads_lec, dx_lec = 0.0, {}, np.zeros((N, T, n_in))
    for n in range(N):
        Tn = int(lens[n])                            # the block's T is this sequence's length:
        xn = x[n, :Tn]                               # fliplr reverses within it
        h, (h_f, z_f, h_b, z_b) = BRNN_block_forward(*fwd_args, *bwd_args, xn, Tn)
        h_explicit = BRNN_block_forward_explicit(*fwd_args, *bwd_args, xn, Tn)
        for t in range(Tn):                          # the two BRNN inference slides agree
            np.testing.assert_allclose(h[t], h_explicit[t], rtol=1e-14, atol=1e-14)
            h_lec[n, t] = h[t]
        Y = output_layer_forward(W_o, b_o, h, Tn)
        v, dY = divergence(Y, d[n, :Tn], Tn, N)
        value_lec += v
        dh, dW_o, db_o = output_layer_backward(W_o, b_o, h, Y, dY, Tn)
        dx, (dW_fc, dW_fr, db_f, dh_f_init), (dW_bc, dW_br, db_b, dh_b_inf) = BRNN_block_backward(
            dh, xn, Tn, *fwd_args, *bwd_args, h_f, z_f, h_b, z_b)
        for t in range(Tn):
            Y_lec[n, t], dY_lec[n, t] = Y[t], dY[t]
        dx_lec[n, :Tn] = dx
        g = column_grads("block1.fwd.", L_f, dW_fc, dW_fr, db_f, dh_f_init)
        g.update(column_grads("block1.bwd.", L_b, dW_bc, dW_br, db_b, dh_b_inf))
        g["out.W[x->y@0]"], g["out.b[y]"] = dW_o.T, db_o
        add_grads(grads_lec, g)

    # the block alone (0 at padded steps, like h_lec): h(t) = [h_f(t); h_b(t)]
    block = m.blocks[0]
    h_lib, _ = block.forward(x, lengths=lengths)
    np.testing.assert_allclose(h_lib, h_lec, **OUT_TOL)
    # the whole net
    y, cache = m.forward(x, lengths=lengths)
    np.testing.assert_allclose(y, Y_lec, **OUT_TOL)
    value, dy = SquaredError()(y, d, lengths=lengths)
    np.testing.assert_allclose(value, value_lec, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dy, dY_lec, **OUT_TOL)
    grads, dx = m.backward(dy, cache)
    assert_same_grads(grads, grads_lec, P)
    np.testing.assert_allclose(dx, dx_lec, **GRAD_TOL)


# =========================================================================== 3. by hand
@pytest.mark.parametrize("backend", BACKENDS)
def test_one_unit_rnn_three_steps_by_hand(backend):
    """A 1-unit RNN, T = 3, every number worked out by hand (identity activation: exact).

    W_c = 2, W_r = 0.5, b = -1, h(-1) = 2, W_o = -1, b_o = 0.5
    x = [1, 0, -1], d = [0, 1, 0], N = 1.
    """
    m = RNN(1, 1, hidden=(1,), activation="identity", dtype=np.float64, seed=0)
    assert set_backend(m, backend) == 1
    P = m.params
    P["W[x->h1@0]"][...] = 2.0       # W_c(1)
    P["W[h1->h1@1]"][...] = 0.5      # W_r(1)
    P["b[h1]"][...] = -1.0           # b(1)
    P["init[h1]"][...] = 2.0         # h(-1)
    P["W[h1->y@0]"][...] = -1.0      # W_o
    P["b[y]"][...] = 0.5             # b_o
    x = np.array([1.0, 0.0, -1.0]).reshape(1, 3, 1)
    d = np.array([0.0, 1.0, 0.0]).reshape(1, 3, 1)

    # forward:  z(t) = W_c x(t) + W_r h(t-1) + b,  h(t) = z(t),  Y(t) = W_o h(t) + b_o
    #   t=0: z = 2*1    + 0.5*2 - 1 =  2,  h =  2,  Y = -1*2    + 0.5 = -1.5
    #   t=1: z = 2*0    + 0.5*2 - 1 =  0,  h =  0,  Y = -1*0    + 0.5 =  0.5
    #   t=2: z = 2*(-1) + 0.5*0 - 1 = -3,  h = -3,  Y = -1*(-3) + 0.5 =  3.5
    y, cache = m.forward(x)
    np.testing.assert_allclose(y.ravel(), [-1.5, 0.5, 3.5], rtol=0, atol=1e-15)

    # DIV = sum_t ||Y(t) - d(t)||^2 = (-1.5)^2 + (0.5-1)^2 + 3.5^2 = 2.25 + 0.25 + 12.25 = 14.75
    # dY(t) = 2 (Y(t) - d(t)) = [-3, -1, 7]
    value, dy = SquaredError()(y, d)
    np.testing.assert_allclose(value, 14.75, rtol=0, atol=1e-15)
    np.testing.assert_allclose(dy.ravel(), [-3.0, -1.0, 7.0], rtol=0, atol=1e-15)

    # BPTT, t = 2 down to 0 (dz_o = dY; dh(t) += dz_o W_o; dz = dh (identity));
    #   t=2: dz_o =  7: dW_o += h(2) 7 = -21,  db_o += 7,   dh(2) = 7*(-1) = -7,  dz(2) = -7
    #        dx(2) = dz W_c = -14,  dh(1) = dz W_r = -3.5
    #        dW_c += x(2) dz = 7,  dW_r += h(1) dz = 0,  db += -7
    #   t=1: dz_o = -1: dW_o += h(1)(-1) = 0 -> -21,  db_o -> 6,  dh(1) = -3.5 + (-1)(-1) = -2.5
    #        dz(1) = -2.5,  dx(1) = -5,  dh(0) = -2.5*0.5 = -1.25
    #        dW_c += x(1) dz = 0 -> 7,  dW_r += h(0) dz = 2*(-2.5) = -5 -> -5,  db -> -9.5
    #   t=0: dz_o = -3: dW_o += h(0)(-3) = -6 -> -27,  db_o -> 3,  dh(0) = -1.25 + 3 = 1.75
    #        dz(0) = 1.75,  dx(0) = 3.5,  dh(-1) = dz(0) W_r = 0.875
    #        dW_c += x(0) dz = 1.75 -> 8.75,  dW_r += h(-1) dz = 3.5 -> -1.5,  db -> -7.75
    g, dx = m.backward(dy, cache)
    expected = {"W[h1->y@0]": -27.0, "b[y]": 3.0, "W[x->h1@0]": 8.75, "W[h1->h1@1]": -1.5,
                "b[h1]": -7.75, "init[h1]": 0.875}
    assert set(g) == set(expected)
    for k, v in expected.items():
        np.testing.assert_allclose(g[k], np.full(P[k].shape, v), rtol=0, atol=1e-15, err_msg=k)
    np.testing.assert_allclose(dx.ravel(), [3.5, -5.0, -14.0], rtol=0, atol=1e-15)
