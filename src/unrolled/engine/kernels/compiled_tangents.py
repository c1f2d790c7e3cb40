"""The compiled tangent loop of ``engine.tangents`` (Numba): forward-mode derivatives
through a recurrence, step by step, for a block of Q parameters at once.

    for t = 0 .. T-1, for each member m in delay-0 order:
        dz_m(q, t) += sum over inside links s -> m @ d of  W  da_s(q, t - d)
        da_m(q, t)  = f_m'(z_m(t)) * dz_m(q, t)

``dz_m`` arrives holding what does not depend on the loop (links from outside the
component and each parameter's own term). The NumPy loop in ``engine.tangents`` is the
same computation; this one runs it without a Python statement a link and a step.

Layout (flat float arrays), the Q tangents of a value side by side (innermost, so that
each product is a run of Q contiguous multiply-adds): member m's tangents
``(D + T, N, H, Q)`` at ``dA[offA:]``, its hoisted ``dz`` ``(T, N, H, Q)`` at ``dZ[offZ:]``,
its derivative ``f'(z)`` ``(T, N, H)`` at ``gain[offG:]``; ``mem`` rows ``offA, offZ, offG,
D, H, first link, end of links``; ``lnk`` rows ``src member, delay, offW``, the links into
each member together, with the link's ``(H_dst, H_src)`` weight at ``W[offW:]``, row major.
Importing this module imports numba: ``engine.tangents`` does it only when it runs compiled.
"""

from __future__ import annotations

from numba import njit

__all__ = ["tangent_loop"]


@njit(cache=True, nogil=True, error_model="numpy")
def tangent_loop(dA, dZ, gain, W, mem, lnk, Q, N, T):
    for t in range(T):
        for m in range(mem.shape[0]):
            offA, offZ, offG, D, H = mem[m, 0], mem[m, 1], mem[m, 2], mem[m, 3], mem[m, 4]
            for n in range(N):
                z = offZ + (t * N + n) * H * Q
                for l in range(mem[m, 5], mem[m, 6]):
                    s, d, offW = lnk[l, 0], lnk[l, 1], lnk[l, 2]
                    sD, sH = mem[s, 3], mem[s, 4]
                    src = mem[s, 0] + ((sD + t - d) * N + n) * sH * Q
                    for i in range(H):
                        dz = dZ[z + i * Q: z + (i + 1) * Q]
                        for j in range(sH):
                            w = W[offW + i * sH + j]
                            da = dA[src + j * Q: src + (j + 1) * Q]
                            for q in range(Q):
                                dz[q] += w * da[q]
                a = offA + ((D + t) * N + n) * H * Q
                g = offG + (t * N + n) * H
                for i in range(H):
                    gi = gain[g + i]
                    da = dA[a + i * Q: a + (i + 1) * Q]
                    dz = dZ[z + i * Q: z + (i + 1) * Q]
                    for q in range(Q):
                        da[q] = gi * dz[q]
