"""The compiled code of the ``"fast"`` backend (Numba): time loops, activations, whole passes.

The engine (:mod:`unrolled.engine.network`) hoists everything a recurrence receives from outside
its strongly connected component into one matrix product over all steps, and pools every
weight gradient into one product after the loop. What is left is the loop over time:
NumPy runs it one Python statement per member, link and step (~3 us a step in calls
alone). Here the same loop is one compiled function, for *any* component, forward and
BPTT, because the component is described by two small integer tables:

    forward  (t = 0 .. T-1, members m in delay-0 order)
        z_m(t) += b_m + sum over inside links s -> m @ d of  a_s(t - d) W^T     (gemm, or s*I)
        a_m(t)  = f_m(z_m(t))
    backward (t = T-1 .. 0, members m in reverse order)
        dz_m(t) = f_m'(da_m(t))  [+ the fused dz of the output layer]
        da_s(t - d) += dz_m(t) W                for every inside link s -> m @ d (gemm, or s*I)


exactly the NumPy loops of ``engine.reference`` (``forward_loop`` / ``backward_loop``), which
stay the readable reference (``backend="numpy"``) and the tests' oracle. ``activate`` and
``activate_back`` apply the same compiled activations to an acyclic layer's all steps
(one pass, no temporaries), ``addmm`` adds a large product in place. Importing this
module imports numba: ``engine.backend`` does it only when a fast pass asks.

**Layout.** Every node's buffers live in flat blocks, one for each kind (the engine's
per-node arrays are views into them): ``A`` and ``dA`` hold ``(D + T, N, size)`` per node,
``Z`` and ``dZ`` hold ``(T, N, H)`` per layer; ``W`` holds every link's ``(H_dst, H_src)``
weight, then the transposes ``(H_src, H_dst)`` of the links inside recurrences (what the
forward loop multiplies by), then the biases. Row ``r`` of a node starts at ``off + r*N*H``:
a contiguous ``(N, H)`` matrix.

``mem`` (M, 10) int64, one row a member: ``offA, offZ, D, H, code, fresh, offb, ZW, offhn,
offC`` (offsets into A/dA and Z/dZ, the history depth, the size, the activation code ``ACT``
or a gated layer's ``CELL``; ``fresh``: nothing was hoisted into its z, so the loop starts
z(t) from the bias at ``W[offb:]``, or 0 when ``offb`` < 0; else it adds that bias to the
hoisted part; ``ZW`` the width of its z rows, H or 4H; a GRU's b_hn at ``W[offhn:]``, an
LSTM's cell state ``h.c`` at ``A[offC:]``, -1 none). ``lnk`` (L, 5) int64, one row an inside
link: ``src member, dst member, delay, offW, kind`` (kind 0: the dense matrix at ``W[offW:]``,
W^T for the forward loop and W for BPTT; kind 1: ``s * I`` with ``s = W[offW]``, an Elman copy
or a Jordan decay, done as a scaled add instead of a product; kind 2: a GRU's own ``h -> h @1``,
whose rows go to the [r, u] and n_h blocks of its z).

**Gated layers** (LSTM, GRU: ``engine.cells``) are members like any other: at each step the
loop adds the bias and the inside links' products into their z (4H wide; a GRU's n_h block
starts from b_hn, since nothing is hoisted into it), then runs the cell (``_lstm_step``,
``_gru_step``: the gates' sigmoids and tanh fused in one pass over the units); BPTT recomputes
the gates from z (``_lstm_step_back``, ``_gru_step_back``), adds what the cell carries to
h(t-1) and c(t-1), then sends dz back through the inside links. Unit j reads column j of
every gate block, so a component with a gated member is never split by units (by sequences
it is, as any). In float32 the gates' sigmoid is 1/2 + tanh(x/2)/2 on the rational tanh
(vectorised; exp is not), within 2e-7 of the exact value; float64 is libm's, to the bit.

**BLAS.** The products call the OpenBLAS that NumPy itself loaded, found by its symbol
and bound with ``llvmlite.binding.add_symbol``: one BLAS and one thread pool in the
process (Numba's own ``np.dot`` would call SciPy's OpenBLAS, whose threads fight NumPy's
over the cores; Numba loads that library when SciPy is installed, but it is never called
here), and the compiled code refers to it by a fixed name, so it is cached on disk
(``cache=True``) and a fresh process loads it instead of compiling (~0.5 s against ~5 s).
Even a (1, 32) @ (32, 32) product is faster in OpenBLAS (~90 ns) than in a compiled loop.
Without such a BLAS (NumPy built on another one), or with ``USE_BLAS = False``, plain
loops do the products: correct, several times slower.

**Threads.** A wide recurrence (weights inside of 512 x 512 or more) runs its loop on
several threads at once, each computing its own columns (units) of every layer with its
own columns of W, the threads meeting at a spin barrier after each layer of each step
(``_barrier``: release/acquire atomics on one counter a thread); a narrower one over a
large batch runs it as calls on disjoint sequences, one a thread; meanwhile BLAS runs on
one thread (``threads``: ``loop_split``, ``run_loop``, ``own_threads``, and the
measurements beside its THREADS). A thread at a barrier whose partner lost its core to
another process only waits, so under load passes stay on one thread (``threads.contended``).

**A whole pass.** ``run_program`` runs a pass that stays on one thread in one call: the
steps the engine would take one Python call at a time (the hoisted products, the
activations, these loops, the weight gradients, the transposes between batch-first and
time-major arrays), listed once as integer rows by ``engine.program``, with the opcodes of ``opcodes``.

**Activations** are compiled loops the compiler vectorises: float32 ``tanh`` is a
rational approximation (Eigen's, clamped; within 6 ulp of the exact value, where the
scalar libm call would be ~30x slower); float64 uses libm (gradient checks want every bit);
sigmoid and softmax call ``exp`` (exact, not vectorised).
"""

from __future__ import annotations

import ctypes
import math
import platform

import numpy as np
from llvmlite import binding as _llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

from . import blas
from .opcodes import (ACTIVATE, ACTIVATE_BACK, CELL, GEMM, GRU_RECURRENT, LOOP, LOOP_BACK, REPEAT, SCALED_IDENTITY,
                      SUM_HISTORY, SUM_ROWS, SWAP, ZERO)

__all__ = ["forward_loop", "backward_loop", "addmm", "activate", "activate_back", "run_program", "adam_update"]

# The compiled code names these symbols whether or not it calls them; without NumPy's
# OpenBLAS they point at a function that is never called (``blas.USE_BLAS`` is False).
if blas.BLAS:
    _llvm.add_symbol("unrolled_cblas_sgemm64", blas.SGEMM)
    _llvm.add_symbol("unrolled_cblas_dgemm64", blas.DGEMM)
else:
    _unused = ctypes.CFUNCTYPE(None)(lambda: None)
    _llvm.add_symbol("unrolled_cblas_sgemm64", ctypes.cast(_unused, ctypes.c_void_p).value)
    _llvm.add_symbol("unrolled_cblas_dgemm64", ctypes.cast(_unused, ctypes.c_void_p).value)


def _find_yield():
    """The address of the C library's ``sched_yield`` (``SwitchToThread`` on Windows): how
    a thread waiting at a barrier of a split loop gives up its core for a moment."""
    for lib, name in ((lambda: ctypes.CDLL(None), "sched_yield"),
                      (lambda: ctypes.windll.kernel32, "SwitchToThread")):
        try:
            return ctypes.cast(getattr(lib(), name), ctypes.c_void_p).value
        except (AttributeError, OSError, TypeError):
            continue
    _no_yield = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 0)                # pragma: no cover
    _find_yield.keep = _no_yield                                          # pragma: no cover
    return ctypes.cast(_no_yield, ctypes.c_void_p).value                 # pragma: no cover


_llvm.add_symbol("unrolled_sched_yield", _find_yield())


# The CPU's spin-wait hint, as an LLVM intrinsic: (name, argument types, arguments) or None.
_x86_pause = ("llvm.x86.sse2.pause", [], [])
_arm_yield = ("llvm.aarch64.hint", [ir.IntType(32)], [ir.Constant(ir.IntType(32), 1)])
_PAUSE = {"x86_64": _x86_pause, "amd64": _x86_pause, "aarch64": _arm_yield,
          "arm64": _arm_yield}.get(platform.machine().lower())


_i32, _i64, _ptr = types.int32, types.int64, types.voidptr
_sgemm = types.ExternalFunction("unrolled_cblas_sgemm64", types.void(
    _i32, _i32, _i32, _i64, _i64, _i64, types.float32, _ptr, _i64, _ptr, _i64, types.float32, _ptr, _i64))
_dgemm = types.ExternalFunction("unrolled_cblas_dgemm64", types.void(
    _i32, _i32, _i32, _i64, _i64, _i64, types.float64, _ptr, _i64, _ptr, _i64, types.float64, _ptr, _i64))
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

_jit = dict(cache=True, nogil=True, error_model="numpy")


# ----------------------------------------------------------- typed constants
def _one(a):
    pass


@overload(_one)
def _one_ol(a):
    one = as_dtype(a.dtype).type(1)
    return lambda a: one


# -------------------------------------------------------------------- products
# Operands are (flat array, offset, row stride) triples: a block, where a matrix starts
# in it, and how far apart its rows lie (a column slice of a wider matrix has the
# wider one's row stride).
def _blas(trans_a, trans_b, add, n, m, k, a, ao, lda, b, bo, ldb, c, co, ldc):
    pass


@overload(_blas)
def _blas_ol(trans_a, trans_b, add, n, m, k, a, ao, lda, b, bo, ldb, c, co, ldc):
    """c (n, m) = op(a) @ op(b), or += with ``add``; op(a) = a (n, k) or a^T for a (k, n),
    op(b) = b (k, m) or b^T for b (m, k); row major. (Without ``add`` BLAS never reads c.)"""
    fn = _sgemm if c.dtype == types.float32 else _dgemm
    one = as_dtype(c.dtype).type(1)

    def impl(trans_a, trans_b, add, n, m, k, a, ao, lda, b, bo, ldb, c, co, ldc):
        size = c.itemsize
        fn(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, n, m, k, one,
           a.ctypes.data + ao * size, lda, b.ctypes.data + bo * size, ldb,
           one if add else one * 0, c.ctypes.data + co * size, ldc)
    return impl


@njit(**_jit)
def _blas_gemm(n, m, k, a, ao, lda, b, bo, ldb, c, co, ldc, trans_b):
    """c (n, m) += a (n, k) @ op(b), op(b) = b (k, m) or b^T for b (m, k); row major."""
    _blas(False, trans_b, True, n, m, k, a, ao, lda, b, bo, ldb, c, co, ldc)


# (Loops index slices, never ``x[offset + i]``: with an index the compiler cannot prove
# non-negative, every access checks for wraparound and nothing is vectorised, 3-20x slower.)
@njit(**_jit)
def _gemm(n, m, k, a, ao, lda, b, bo, ldb, c, co, ldc, use_blas):
    """c (n, m) += a (n, k) @ b (k, m), row strides lda, ldb, ldc: BLAS, or a loop adding
    scaled rows of b."""
    if use_blas:
        _blas_gemm(n, m, k, a, ao, lda, b, bo, ldb, c, co, ldc, False)
        return
    for i in range(n):
        ci = c[co + i * ldc: co + i * ldc + m]
        ai = a[ao + i * lda: ao + i * lda + k]
        for q in range(k):
            s = ai[q]
            bq = b[bo + q * ldb: bo + q * ldb + m]
            for j in range(m):
                ci[j] += s * bq[j]


@njit(**_jit)
def addmm(a, b, c, trans_b, use_blas):
    """c += a @ b (``trans_b``: a @ b.T) for C-contiguous 2-D arrays, without a temporary."""
    n, k = a.shape
    m = c.shape[1]
    af, bf, cf = a.reshape(a.size), b.reshape(b.size), c.reshape(c.size)
    if use_blas:
        _blas_gemm(n, m, k, af, 0, k, bf, 0, k if trans_b else m, cf, 0, m, trans_b)
    elif trans_b:
        for i in range(n):
            ai = af[i * k: (i + 1) * k]
            for j in range(m):
                bj = bf[j * k: (j + 1) * k]
                s = cf[i * m + j] * 0
                for q in range(k):
                    s += ai[q] * bj[q]
                cf[i * m + j] += s
    else:
        _gemm(n, m, k, af, 0, k, bf, 0, m, cf, 0, m, False)


@njit(**_jit)
def _axpy(n, s, x, xo, y, yo):
    """y[yo:yo+n] += s * x[xo:xo+n]."""
    xs, ys = x[xo: xo + n], y[yo: yo + n]
    for i in range(n):
        ys[i] += s * xs[i]


@njit(**_jit)
def _bias(n, h, W, bo, z, zo, ldz, add):
    """The (n, h) rows at z[zo:] (row stride ldz) get the bias W[bo:bo+h]: added to them
    (``add``) or written over them; bo < 0: no bias (nothing added, or zeros written)."""
    if bo < 0:
        if not add:
            for i in range(n):
                row = z[zo + i * ldz: zo + i * ldz + h]
                for j in range(h):
                    row[j] = 0
        return
    b = W[bo: bo + h]
    for i in range(n):
        row = z[zo + i * ldz: zo + i * ldz + h]
        if add:
            for j in range(h):
                row[j] += b[j]
        else:
            for j in range(h):
                row[j] = b[j]


# ------------------------------------------------------------------ activations
def _tanh1(x):
    pass


@overload(_tanh1)
def _tanh1_ol(x):
    """tanh of one number: libm's for float64; for float32 Eigen's rational approximation
    (odd degree-13 over even degree-6 polynomial on [-c, c]), which the compiler vectorises."""
    if x != types.float32:
        return lambda x: math.tanh(x)
    f = np.float32
    clamp, tiny = f(7.90531110763549805), f(0.0004)
    a13, a11, a9, a7 = f(-2.76076847742355e-16), f(2.00018790482477e-13), f(-8.60467152213735e-11), \
        f(5.12229709037114e-08)
    a5, a3, a1 = f(1.48572235717979e-05), f(6.37261928875436e-04), f(4.89352455891786e-03)
    b6, b4, b2, b0 = f(1.19825839466702e-06), f(1.18534705686654e-04), f(2.26843463243900e-03), \
        f(4.89352518554385e-03)

    def rational(x):
        x = clamp if x > clamp else x        # clamped by comparisons, so that NaN stays NaN
        x = -clamp if x < -clamp else x
        x2 = x * x
        p = ((((((a13 * x2 + a11) * x2 + a9) * x2 + a7) * x2 + a5) * x2 + a3) * x2 + a1) * x
        q = ((b6 * x2 + b4) * x2 + b2) * x2 + b0
        return x if abs(x) < tiny else p / q
    return rational


@njit(**_jit)
def _tanh_into(z, out):
    for i in range(z.size):
        out[i] = _tanh1(z[i])


def _sigmoid1(x):
    pass


@overload(_sigmoid1)
def _sigmoid1_ol(x):
    """The logistic function of one number: in float64 as ``_activate`` computes it (exp of
    -|x|, never overflowing); in float32 as 1/2 + tanh(x/2)/2 with the rational tanh, which
    vectorises where exp does not (a gated step has three sigmoids a unit): within 2e-7
    of the exact value, absolutely (relatively, where it is at least 1/2)."""
    if x != types.float32:
        def exact(x):
            e = math.exp(-abs(x))
            return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)
        return exact
    half = np.float32(0.5)
    return lambda x: half + half * _tanh1(half * x)


@njit(**_jit)
def _activate(act, n, h, z, zo, out, oo):
    """out = f(z) for the (n, h) matrices at z[zo:], out[oo:], as activations.py computes it."""
    one = _one(z)
    zs, os = z[zo: zo + n * h], out[oo: oo + n * h]
    if act == 1:
        _tanh_into(zs, os)
    elif act == 0:
        for i in range(zs.size):
            os[i] = zs[i]
    elif act == 3:
        for i in range(zs.size):
            v = zs[i]
            os[i] = 0 if v < 0 else v                  # NaN stays NaN, as np.maximum
    elif act == 2:
        for i in range(zs.size):
            v = zs[i]
            e = math.exp(-abs(v))
            os[i] = one / (one + e) if v >= 0 else e / (one + e)
    else:
        for i in range(n):
            row, res = zs[i * h: (i + 1) * h], os[i * h: (i + 1) * h]
            top = row[0]
            for j in range(1, h):
                top = max(top, row[j])
            total = top * 0
            for j in range(h):
                e = math.exp(row[j] - top)
                res[j] = e
                total += e
            for j in range(h):
                res[j] /= total


@njit(**_jit)
def _activate_back(act, n, h, da, a, ao, z, zo, dz, dzo):
    """dz = dDIV/dz from da = dDIV/da (da and a at offset ao, z and dz at zo and dzo),
    from the forward values a and z, as activations.py computes it."""
    one = _one(da)
    size = n * h
    das, as_, zs, dzs = da[ao: ao + size], a[ao: ao + size], z[zo: zo + size], dz[dzo: dzo + size]
    if act == 1:
        for i in range(size):
            dzs[i] = das[i] * (one - as_[i] * as_[i])
    elif act == 0:
        for i in range(size):
            dzs[i] = das[i]
    elif act == 3:
        for i in range(size):
            dzs[i] = das[i] * (one if zs[i] > 0 else one * 0)
    elif act == 2:
        for i in range(size):
            dzs[i] = das[i] * as_[i] * (one - as_[i])
    else:
        for i in range(n):
            lo, hi = i * h, (i + 1) * h
            s = one * 0
            for j in range(lo, hi):
                s += das[j] * as_[j]
            for j in range(lo, hi):
                dzs[j] = as_[j] * (das[j] - s)


# ------------------------------------------------------------- gated steps
# A gated layer's step (``engine.cells``: PyTorch's equations) for n rows, units j0 ..
# j0+w-1 of H: its z rows of width 4H at Z[zo:] (gate block b of a row at b*H), its h and
# c rows of width H. The gates are recomputed from z in BPTT (elementwise, cheap), as the
# NumPy loops do. (Each block is a slice: indexed from one row slice, the loops of BPTT
# vectorise badly, 4x slower at 512 units.)
@njit(**_jit)
def _blocks(X, z0, H, w):
    """The four gate blocks of a z row at X[z0:] (row width 4H), units 0 .. w-1 of each."""
    return X[z0: z0 + w], X[z0 + H: z0 + H + w], X[z0 + 2 * H: z0 + 2 * H + w], X[z0 + 3 * H: z0 + 3 * H + w]


@njit(**_jit)
def _lstm_step(n, H, j0, w, Z, zo, A, cpo, co, ho):
    """c(t) = f c(t-1) + i g, h(t) = o tanh(c(t)) from z = [i, f, g, o] before their
    sigmoids and tanh; c(t-1) at A[cpo:], c(t) to A[co:], h(t) to A[ho:]."""
    for r in range(n):
        z0, u0 = zo + r * 4 * H + j0, r * H + j0
        zi, zf, zg, zq = _blocks(Z, z0, H, w)
        cp, c, h = A[cpo + u0: cpo + u0 + w], A[co + u0: co + u0 + w], A[ho + u0: ho + u0 + w]
        for j in range(w):
            i, f, o = _sigmoid1(zi[j]), _sigmoid1(zf[j]), _sigmoid1(zq[j])
            cj = f * cp[j] + i * _tanh1(zg[j])
            c[j] = cj
            h[j] = o * _tanh1(cj)


@njit(**_jit)
def _lstm_step_back(n, H, j0, w, dA, A, ho, cpo, co, Z, dZ, zo):
    """BPTT through ``_lstm_step``: dz (to dZ[zo:]) from dh (dA[ho:]) and dc(t) (dA[co:]);
    adds f dc to dc(t-1) (dA[cpo:])."""
    one = _one(dZ)
    for r in range(n):
        z0, u0 = zo + r * 4 * H + j0, r * H + j0
        zi, zf, zg, zq = _blocks(Z, z0, H, w)
        di, df, dg, dq = _blocks(dZ, z0, H, w)
        dh, c, cp = dA[ho + u0: ho + u0 + w], A[co + u0: co + u0 + w], A[cpo + u0: cpo + u0 + w]
        dc, dcp = dA[co + u0: co + u0 + w], dA[cpo + u0: cpo + u0 + w]
        for j in range(w):
            i, f, o = _sigmoid1(zi[j]), _sigmoid1(zf[j]), _sigmoid1(zq[j])
            g = _tanh1(zg[j])
            tc = _tanh1(c[j])
            d = dc[j] + dh[j] * o * (one - tc * tc)                       # h = o tanh(c)
            di[j] = d * g * i * (one - i)                                  # c = f c_prev + i g
            df[j] = d * cp[j] * f * (one - f)
            dg[j] = d * i * (one - g * g)
            dq[j] = dh[j] * tc * o * (one - o)
            dcp[j] += d * f


@njit(**_jit)
def _gru_step(n, H, j0, w, Z, zo, A, hpo, ho):
    """h(t) = (1 - u) n + u h(t-1), n = tanh(n_x + r n_h), from z = [r, u, n_x, n_h] (r, u
    before their sigmoids); h(t-1) at A[hpo:], h(t) to A[ho:]."""
    one = _one(Z)
    for r in range(n):
        z0, u0 = zo + r * 4 * H + j0, r * H + j0
        zr, zu, zx, zh = _blocks(Z, z0, H, w)
        hp, h = A[hpo + u0: hpo + u0 + w], A[ho + u0: ho + u0 + w]
        for j in range(w):
            rg, u = _sigmoid1(zr[j]), _sigmoid1(zu[j])
            nj = _tanh1(zx[j] + rg * zh[j])
            h[j] = (one - u) * nj + u * hp[j]


@njit(**_jit)
def _gru_step_back(n, H, j0, w, dA, A, ho, hpo, Z, dZ, zo):
    """BPTT through ``_gru_step``: dz (to dZ[zo:]) from dh (dA[ho:]); adds u dh to
    dh(t-1) (dA[hpo:])."""
    one = _one(dZ)
    for r in range(n):
        z0, u0 = zo + r * 4 * H + j0, r * H + j0
        zr, zu, zx, zh = _blocks(Z, z0, H, w)
        dr, du, dx, dn_h = _blocks(dZ, z0, H, w)
        dh, hp, dhp = dA[ho + u0: ho + u0 + w], A[hpo + u0: hpo + u0 + w], dA[hpo + u0: hpo + u0 + w]
        for j in range(w):
            rg, u = _sigmoid1(zr[j]), _sigmoid1(zu[j])
            nj = _tanh1(zx[j] + rg * zh[j])
            dn = dh[j] * (one - u) * (one - nj * nj)                      # h = (1 - u) n + u h_prev
            dr[j] = dn * zh[j] * rg * (one - rg)                           # n = tanh(n_x + r n_h)
            du[j] = dh[j] * (hp[j] - nj) * u * (one - u)
            dx[j] = dn
            dn_h[j] = dn * rg
            dhp[j] += dh[j] * u


@njit(**_jit)
def activate(act, z, out, bias):
    """z += bias (a (h,) array, or empty: none), then out = f(z), for (rows, h) C-contiguous
    arrays: an acyclic layer, all steps, in one pass over z."""
    h = z.shape[-1]
    rows = z.size // h
    zf = z.reshape(z.size)
    if bias.size:
        _bias(rows, h, bias, 0, zf, 0, h, True)
    _activate(act, rows, h, zf, 0, out.reshape(out.size), 0)


@njit(**_jit)
def activate_back(act, da, a, z, dz):
    """dz = f'(da) for (rows, h) C-contiguous arrays (da and a alike, z and dz alike)."""
    h = dz.shape[-1]
    _activate_back(act, dz.size // h, h, da.reshape(da.size), a.reshape(a.size), 0,
                   z.reshape(z.size), 0, dz.reshape(dz.size), 0)


# --------------------------------------------------------- threads in step
# The P threads of a split loop meet at a barrier after each member of each step. Each
# thread announces the barriers it passed in its own slot of ``sync`` (int64, 16 apart:
# separate cache lines), with release/acquire atomics: what a thread wrote before it
# arrived is seen by the others once they leave. Slot P calls the split off: a part that
# failed sets it, and the others leave their loops instead of waiting for it forever.
def _atomic_ptr(builder, addr):
    return builder.inttoptr(addr, ir.PointerType(ir.IntType(64)))


@intrinsic
def _store_release(typingctx, addr, value):
    def codegen(context, builder, signature, args):
        builder.store_atomic(args[1], _atomic_ptr(builder, args[0]), "release", 8)
        return context.get_dummy_value()
    return types.void(types.intp, types.int64), codegen


@intrinsic
def _load_acquire(typingctx, addr):
    def codegen(context, builder, signature, args):
        return builder.load_atomic(_atomic_ptr(builder, args[0]), "acquire", 8)
    return types.int64(types.intp), codegen


@intrinsic
def _spin_pause(typingctx):
    def codegen(context, builder, signature, args):      # x86 "pause", arm "yield": a hint
        if _PAUSE is not None:
            name, argtypes, values = _PAUSE
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), argtypes), name)
            builder.call(fn, values)
        return context.get_dummy_value()
    return types.void(), codegen

_yield = types.ExternalFunction("unrolled_sched_yield", types.int32())

@njit(**_jit)
def _barrier(sync, k, P, gen):
    """Thread k of P has reached barrier number ``gen``: wait for the others to reach it
    (spinning, and giving up the core now and then, should a thread be descheduled).
    Returns True if the split was called off (slot P: a part failed): leave the loop."""
    base = sync.ctypes.data
    _store_release(base + k * 128, gen)
    for j in range(P):
        if j == k:
            continue
        spins = 0
        while _load_acquire(base + j * 128) < gen:
            if _load_acquire(base + P * 128):
                return True
            _spin_pause()
            spins += 1
            if spins == 2000:
                _yield()
                spins = 0
    return False


@njit(**_jit)
def _cols(H, k, P):
    """Thread k's columns ``j0 .. j1-1`` of a layer of H units split over P threads
    (whole cache lines of float32 where H allows: threads then never write the same line)."""
    width = (H + P - 1) // P
    if width >= 16:
        width = (width + 15) // 16 * 16
    return min(H, k * width), min(H, (k + 1) * width)


# ------------------------------------------------------------------ the loops
# A call computes the rows (sequences) n0 .. n1-1 of the batch, and of those the columns
# of thread k of P: the products read all columns of their sources and write the
# thread's columns of the result, with the thread's own columns of W (a slice with W's
# row stride), so each core keeps its part of W in its own cache. A split by rows runs
# calls on disjoint rows (k = 0, P = 1: every column, no barrier); a split by units
# runs P calls on all rows (``_cols``).
_LSTM, _GRU = CELL["lstm"], CELL["gru"]


@njit(**_jit)
def _gated_offsets(mem, m, N, t, n0):
    """``(H, code, rows, zo, ho, cpo, co)`` of step t of the gated member m, rows from n0:
    its size, ``CELL`` code, the rows of its links (4H, 3H), where its z(t) starts (rows of
    4H), its h(t) (row D + t), an LSTM's c(t-1) and c(t) (rows t and t + 1 of ``h.c``)."""
    H, code = mem[m, 3], mem[m, 4]
    return (H, code, 4 * H if code == _LSTM else 3 * H, mem[m, 1] + (t * N + n0) * 4 * H,
            mem[m, 0] + ((mem[m, 2] + t) * N + n0) * H, mem[m, 9] + (t * N + n0) * H,
            mem[m, 9] + ((t + 1) * N + n0) * H)


@njit(**_jit)
def _source_at(mem, lnk, l, N, t, n0):
    """``(Hs, offset)`` of the source of inside link l at step t - d (rows from n0)."""
    s = lnk[l, 0]
    return mem[s, 3], mem[s, 0] + ((mem[s, 2] + t - lnk[l, 2]) * N + n0) * mem[s, 3]


@njit(**_jit)
def _gated_forward(A, Z, W, mem, lnk, m, N, t, n0, n, j0, j1, use_blas):
    """Step t of the gated member m for the rows n0 .. n0+n-1 and its units j0 .. j1-1 (of
    every gate block): the bias and the inside links into its z (rows of width 4H; a GRU's
    own recurrence into [r, u] and n_h, every other link into [r, u, n_x]), then its cell."""
    H, code, rows, zo, ho, cpo, co = _gated_offsets(mem, m, N, t, n0)
    ZW, w, blocks = 4 * H, j1 - j0, 4 if code == _LSTM else 3
    for b in range(blocks):                # z starts as the bias (nothing hoisted), or adds it
        _bias(n, w, W, mem[m, 6] + b * H + j0 if mem[m, 6] >= 0 else -1, Z, zo + b * H + j0, ZW, not mem[m, 5])
    if code == _GRU:                       # n_h = W_hn h(t-1) + b_hn: nothing hoisted there
        _bias(n, w, W, mem[m, 8] + j0 if mem[m, 8] >= 0 else -1, Z, zo + 3 * H + j0, ZW, False)
    for l in range(lnk.shape[0]):
        if lnk[l, 1] != m:
            continue
        Hs, ao = _source_at(mem, lnk, l, N, t, n0)                           # a_s(t - d): (n, Hs)
        gru_own = lnk[l, 4] == GRU_RECURRENT                                 # W^T (Hs, rows) at W[offW:]
        if w == H and not gru_own:
            _gemm(n, rows, Hs, A, ao, Hs, W, lnk[l, 3], rows, Z, zo, ZW, use_blas)
            continue
        for b in range(blocks):            # the units' columns of each block (a GRU's n: to n_h)
            to = 3 if gru_own and b == 2 else b
            _gemm(n, w, Hs, A, ao, Hs, W, lnk[l, 3] + b * H + j0, rows, Z, zo + to * H + j0, ZW, use_blas)
    if code == _LSTM:
        _lstm_step(n, H, j0, w, Z, zo, A, cpo, co, ho)
    else:
        _gru_step(n, H, j0, w, Z, zo, A, ho - N * H, ho)


@njit(**_jit)
def _gated_back(A, Z, dA, dZ, mem, m, N, t, n0, n, j0, j1):
    """BPTT through the cell of the gated member m at step t, rows n0 .. n0+n-1, units
    j0 .. j1-1: its dz from its dh (and dc), and what its cell carries back to h(t-1) (and
    c(t-1)). (``_gated_links_back`` then sends dz back through its inside links.)"""
    H, code, rows, zo, ho, cpo, co = _gated_offsets(mem, m, N, t, n0)
    if code == _LSTM:
        _lstm_step_back(n, H, j0, j1 - j0, dA, A, ho, cpo, co, Z, dZ, zo)
    else:
        _gru_step_back(n, H, j0, j1 - j0, dA, A, ho, ho - N * H, Z, dZ, zo)


@njit(**_jit)
def _gated_links_back(dZ, dA, W, mem, lnk, l, m, N, t, n0, n, c0, c1, use_blas):
    """da_s(t - d), columns c0 .. c1-1, += dz_m(t) W for the inside link l into the gated
    member m (a GRU's own recurrence: its [r, u] and n_h blocks)."""
    H, code, rows, zo, ho, cpo, co = _gated_offsets(mem, m, N, t, n0)
    Hs, so = _source_at(mem, lnk, l, N, t, n0)                               # da_s(t - d): (n, Hs)
    if lnk[l, 4] == GRU_RECURRENT:                                           # W (3H, H) at W[offW:]
        _gemm(n, c1 - c0, 2 * H, dZ, zo, 4 * H, W, lnk[l, 3] + c0, Hs, dA, so + c0, Hs, use_blas)
        _gemm(n, c1 - c0, H, dZ, zo + 3 * H, 4 * H, W, lnk[l, 3] + 2 * H * Hs + c0, Hs, dA, so + c0, Hs, use_blas)
    else:                                                                    # W (rows, Hs)
        _gemm(n, c1 - c0, rows, dZ, zo, 4 * H, W, lnk[l, 3] + c0, Hs, dA, so + c0, Hs, use_blas)


@njit(**_jit)
def forward_loop(A, Z, W, mem, lnk, N, T, use_blas, n0, n1, k, P, sync):
    """The forward time loop of one cyclic component (see the module docstring), for the
    rows n0 .. n1-1 and the columns of thread k of P.

    Z holds the hoisted part of every member's z (its links from outside) on entry and
    the whole z (bias added) on exit; A receives a_m(t) for t = 0 .. T-1 (its history
    rows are read).
    """
    M, L = mem.shape[0], lnk.shape[0]
    n = n1 - n0
    gen = 0
    for t in range(T):
        for m in range(M):
            H = mem[m, 3]
            j0, j1 = _cols(H, k, P)
            w = j1 - j0
            zo = mem[m, 1] + (t * N + n0) * H                           # z_m(t): (n, H) at Z[zo:]
            oo = mem[m, 0] + ((mem[m, 2] + t) * N + n0) * H             # a_m(t)
            if mem[m, 4] >= _LSTM:             # a gated member: its units j0 .. j1-1 of every gate
                if w > 0:
                    _gated_forward(A, Z, W, mem, lnk, m, N, t, n0, n, j0, j1, use_blas)
            elif w > 0:                        # the bias: z starts as it (nothing hoisted), or adds it
                _bias(n, w, W, mem[m, 6] + j0 if mem[m, 6] >= 0 else -1, Z, zo + j0, H, not mem[m, 5])
                for l in range(L):
                    if lnk[l, 1] != m:
                        continue
                    s = lnk[l, 0]
                    Hs = mem[s, 3]
                    ao = mem[s, 0] + ((mem[s, 2] + t - lnk[l, 2]) * N + n0) * Hs  # a_s(t - d): (n, Hs)
                    if lnk[l, 4] == SCALED_IDENTITY:
                        for i in range(n):
                            _axpy(w, W[lnk[l, 3]], A, ao + i * Hs + j0, Z, zo + i * H + j0)
                    else:                                               # W^T (Hs, H) at W[offW:]
                        _gemm(n, w, Hs, A, ao, Hs, W, lnk[l, 3] + j0, H, Z, zo + j0, H, use_blas)
                if w == H:
                    _activate(mem[m, 4], n, H, Z, zo, A, oo)
                else:
                    for i in range(n):
                        _activate(mem[m, 4], 1, w, Z, zo + i * H + j0, A, oo + i * H + j0)
            if P > 1:
                gen += 1
                if _barrier(sync, k, P, gen):
                    return


@njit(**_jit)
def backward_loop(A, Z, dA, dZ, W, mem, lnk, fused, out, N, T, use_blas, n0, n1, k, P, sync):
    """BPTT through one cyclic component of the gradient graph (see the module docstring),
    for the rows n0 .. n1-1 and the columns of thread k of P.

    dA holds on entry what reached each member from outside the component; the loop
    adds what the inside links send back and writes dZ of every member at every step.
    ``fused`` (T, N, H_out) is added to dz of member ``out`` (-1: none). A thread writes
    only its own columns of dA and dZ, so what it reads of them it wrote itself, but
    for dz_m(t) whole, which the products read after a barrier.
    """
    M, L = mem.shape[0], lnk.shape[0]
    one = _one(dZ)
    n = n1 - n0
    gen = 0
    for t in range(T - 1, -1, -1):
        for m in range(M - 1, -1, -1):
            H = mem[m, 3]
            gated = mem[m, 4] >= _LSTM
            j0, j1 = _cols(H, k, P)
            w = j1 - j0
            ao = mem[m, 0] + ((mem[m, 2] + t) * N + n0) * H             # a_m(t), da_m(t)
            zo = mem[m, 1] + (t * N + n0) * H                           # z_m(t), dz_m(t)
            fo = (t * N + n0) * H                                       # fused(t)
            if gated:                          # its units j0 .. j1-1 of every gate (never fused)
                if w > 0:
                    _gated_back(A, Z, dA, dZ, mem, m, N, t, n0, n, j0, j1)
            elif w == H:
                _activate_back(mem[m, 4], n, H, dA, A, ao, Z, zo, dZ, zo)
                if m == out:
                    _axpy(n * H, one, fused, fo, dZ, zo)
            else:
                for i in range(n if w > 0 else 0):
                    r = i * H + j0
                    _activate_back(mem[m, 4], 1, w, dA, A, ao + r, Z, zo + r, dZ, zo + r)
                    if m == out:
                        _axpy(w, one, fused, fo + r, dZ, zo + r)
            if P > 1:
                gen += 1
                if _barrier(sync, k, P, gen):
                    return
            for l in range(L):
                if lnk[l, 1] != m:
                    continue
                s = lnk[l, 0]
                Hs = mem[s, 3]
                c0, c1 = _cols(Hs, k, P)
                if c1 == c0:
                    continue
                if gated:
                    _gated_links_back(dZ, dA, W, mem, lnk, l, m, N, t, n0, n, c0, c1, use_blas)
                    continue
                so = mem[s, 0] + ((mem[s, 2] + t - lnk[l, 2]) * N + n0) * Hs  # da_s(t - d): (n, Hs)
                if lnk[l, 4] == SCALED_IDENTITY:
                    for i in range(n):
                        _axpy(c1 - c0, W[lnk[l, 3]], dZ, zo + i * H + c0, dA, so + i * Hs + c0)
                else:                                                   # W (H, Hs) at W[offW:]
                    _gemm(n, c1 - c0, H, dZ, zo, H, W, lnk[l, 3] + c0, Hs, dA, so + c0, Hs, use_blas)


# ------------------------------------------------------------ a whole pass
# A pass whose loops run on one thread can run whole in one compiled call: its
# ``program`` (``engine.program.Program``, worked out once for the network's structure
# and the pass's N and T) lists the steps the step-by-step path (``engine.fast``) takes,
# one int64 row each, column 0 the opcode, operands as (buffer, offset) pairs into the
# pass's flat buffers (the opcodes and buffer numbers are ``opcodes``' GEMM .. SUM_HISTORY
# and ACTS .. FUSED, a buffer's place in the tuple the program runs on).
@njit(**_jit)
def _sum_rows_into(n, h, src, so, dst, do):
    """dst[do:do+h] = the sum of the n rows of h at src[so:] (summed in float64: a bias
    gradient adds up T*N rows)."""
    acc = np.zeros(h, np.float64)
    for r in range(n):
        row = src[so + r * h: so + (r + 1) * h]
        for j in range(h):
            acc[j] += row[j]
    out = dst[do: do + h]
    for j in range(h):
        out[j] = acc[j]


@njit(**_jit)
def _sum_squares(G, off, n):
    """The sum of the squares of G[off:off+n] in float64, in four running sums (one would
    chain every add to the last). A float32 slot overflows to inf past ~1.8e19 squared."""
    a0 = a1 = a2 = a3 = 0.0
    v = G[off: off + n]
    n4 = n // 4 * 4
    for i in range(0, n4, 4):
        a0 += np.float64(v[i]) * v[i]
        a1 += np.float64(v[i + 1]) * v[i + 1]
        a2 += np.float64(v[i + 2]) * v[i + 2]
        a3 += np.float64(v[i + 3]) * v[i + 3]
    for i in range(n4, n):
        a0 += np.float64(v[i]) * v[i]
    return (a0 + a1) + (a2 + a3)


@njit(**_jit)
def run_program(ops, mems, lnks, buffers, N, T, sync):
    """Run a pass's ``ops`` (see ``engine.program``) on its flat buffers, ``buffers`` =
    (ACTS, PREACTS, WEIGHTS, D_ACTS, D_PREACTS, GRADS, OUTPUTS, FUSED) as ``opcodes``
    numbers them, here A, Z (activations and pre-activations), W (weights, biases,
    initial states), dA, dZ (their gradients), G (the parameters' gradients), E (the
    outputs y (N, T, n_out), or dDIV/dy), F (the output layer's fused dz, (T, N, n_out));
    an op names a buffer by its place there. ``mems`` and ``lnks`` hold the loops' tables."""
    A, Z, W, dA, dZ, G, E, F = buffers
    for i in range(ops.shape[0]):
        op = ops[i]
        code = op[0]
        if code == GEMM:     # gemm: ta, tb, add, n, m, k, (buf, off, ld) of a, of b, of c
            _blas(op[1] != 0, op[2] != 0, op[3] != 0, op[4], op[5], op[6],
                  buffers[op[7]], op[8], op[9],
                  buffers[op[10]], op[11], op[12],
                  buffers[op[13]], op[14], op[15])
        elif code == ACTIVATE:   # activate: code, rows, h, Z offset, A offset, bias offset in W (-1: none)
            if op[6] >= 0:
                _bias(op[2], op[3], W, op[6], Z, op[4], op[3], True)
            _activate(op[1], op[2], op[3], Z, op[4], A, op[5])
        elif code == ACTIVATE_BACK:   # activate_back: code, rows, h, A/dA offset, Z/dZ offset
            _activate_back(op[1], op[2], op[3], dA, A, op[4], Z, op[5], dZ, op[5])
        elif code == LOOP:   # loop: first row and rows of its mem table, of its lnk table
            forward_loop(A, Z, W, mems[op[1]: op[1] + op[2]], lnks[op[3]: op[3] + op[4]], N, T, True,
                         0, N, 0, 1, sync)
        elif code == LOOP_BACK:   # loop_back: the same, and the member fused dz is added to (-1: none)
            backward_loop(A, Z, dA, dZ, W, mems[op[1]: op[1] + op[2]], lnks[op[3]: op[3] + op[4]], F,
                          op[5], N, T, True, 0, N, 0, 1, sync)
        elif code == SUM_ROWS:   # sum_rows: rows, h, dZ offset, G offset: G = the rows summed
            _sum_rows_into(op[1], op[2], dZ, op[3], G, op[4])
        elif code == ZERO:   # zero: buf, offset, size
            buffers[op[1]][op[2]: op[2] + op[3]] = 0
        elif code == REPEAT:   # repeat: W offset of a vector, h, (buf, offset) of count rows
            v = W[op[1]: op[1] + op[2]]
            dst = buffers[op[3]]
            for r in range(op[5]):
                dst[op[4] + r * op[2]: op[4] + (r + 1) * op[2]] = v
        elif code == SWAP:   # swap: (buf, off) src (I, J, S), (buf, off) dst (J, I, S), I, J, S, add
            src = buffers[op[1]]
            dst = buffers[op[3]]
            I, J, S = op[5], op[6], op[7]
            for a in range(I):
                for b in range(J):
                    x = src[op[2] + (a * J + b) * S: op[2] + (a * J + b + 1) * S]
                    y = dst[op[4] + (b * I + a) * S: op[4] + (b * I + a + 1) * S]
                    if op[8]:
                        for c in range(S):
                            y[c] += x[c]
                    else:
                        for c in range(S):
                            y[c] = x[c]
        elif code == SUM_HISTORY:     # D, N, h, dA offset, G offset: G (D, h) = sum over N
            for d in range(op[1]):
                _sum_rows_into(op[2], op[3], dA, op[4] + d * op[2] * op[3], G, op[5] + d * op[3])
        else:                         # SUM_SQUARES: G offset, size, G slot, add: G[slot] (+)= the sum of squares
            acc = _sum_squares(G, op[1], op[2])
            G[op[3]] = acc + G[op[3]] if op[4] else acc


# ------------------------------------------------------------------ optimizers
@njit(**_jit)
def adam_update(p, g, m, v, c1, b2, c2, s2, eps, step):
    """One Adam step over flat arrays, in place, exactly as ``optim.Adam._update``
    computes it with NumPy (the same operations in the same order and precision; the
    scalars come in the arrays' dtype): m += c1 (g - m); v = b2 v + (c2 g) g;
    p -= step (m / (sqrt(v) / s2 + eps))."""
    for i in range(p.size):
        mi = m[i] + c1 * (g[i] - m[i])
        vi = v[i] * b2 + (c2 * g[i]) * g[i]
        m[i], v[i] = mi, vi
        p[i] -= step * (mi / (math.sqrt(vi) / s2 + eps))
