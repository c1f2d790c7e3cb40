"""Worker: hand-specialised NumPy loops of the same math as the ``unrolled`` models.

Each model written out by hand, as one would for that model alone: products from
outside a recurrence hoisted out of the time loop, weight gradients pooled into one
product over all steps, time loops only where the recurrence needs them (the blocked
Elman context has none in BPTT). The same divergence; no dDIV/dx (the engine's step
skips it too, as ``fit`` does).
"""

import numpy as np

from _common import N_IN, N_OUT, NARX_IN, NARX_OUT, data, parse_args, report, time_steps, uniform


def flat(a):
    return a.reshape(-1, a.shape[-1])


def squared_error(y, ds, N):
    """The divergence sum_t ||y(t) - d(t)||^2 / N and its gradient dy."""
    r = y - ds
    return float(np.sum(r * r)) / N, 2 * r / N


def tanh_recurrence(Z, h0, Wh):
    """hs[0] = h0, hs[t + 1] = tanh(Z[t] + hs[t] @ Wh^T); Z (T, N, H) holds the hoisted part."""
    T, N, H = Z.shape
    hs = np.empty((T + 1, N, H), np.float32)
    hs[0] = h0
    for t in range(T):
        hs[t + 1] = np.tanh(Z[t] + hs[t] @ Wh.T)
    return hs


def tanh_bptt(dH, hs, Wh):
    """dZ[t] = (dH[t] + dh) (1 - h(t)^2), dh = dZ[t] @ Wh, for t = T-1 .. 0; returns dZ and
    dh, then dDIV/dh(-1)."""
    T, N, H = dH.shape
    dZ = np.empty_like(dH)
    dh = np.zeros((N, H), np.float32)
    for t in range(T - 1, -1, -1):
        dz = (dH[t] + dh) * (1 - hs[t + 1] * hs[t + 1])
        dZ[t] = dz
        dh = dz @ Wh
    return dZ, dh


def rnn_step(p, xs, ds, N, recurrence=tanh_recurrence, bptt=tanh_bptt):
    """1-layer RNN, learned h(-1). xs (T, N, I), ds (T, N, O). Returns loss, grads.
    ``recurrence`` and ``bptt`` run its two time loops (``bench_numba`` passes compiled ones)."""
    T, H = xs.shape[0], p["Wh"].shape[0]
    Z = (flat(xs) @ p["Wx"].T + p["b"]).reshape(T, N, H)          # hoisted
    hs = recurrence(Z, p["h0"], p["Wh"])
    y = (flat(hs[1:]) @ p["Wo"].T + p["bo"]).reshape(T, N, -1)
    loss, dy = squared_error(y, ds, N)
    g = {"Wo": flat(dy).T @ flat(hs[1:]), "bo": dy.sum((0, 1))}
    dZ, dh = bptt((flat(dy) @ p["Wo"]).reshape(T, N, H), hs, p["Wh"])
    g.update(Wh=flat(dZ).T @ flat(hs[:-1]), Wx=flat(dZ).T @ flat(xs), b=dZ.sum((0, 1)), h0=dh.sum(0))
    return loss, g


def rnn2skip_step(p, xs, ds, N):
    """2-layer RNN with skips x -> h2 and h1 -> y, learned h(-1) of both layers."""
    T, H = xs.shape[0], p["Wh1"].shape[0]
    Z1 = (flat(xs) @ p["Wx1"].T + p["b1"]).reshape(T, N, H)
    h1 = tanh_recurrence(Z1, p["h01"], p["Wh1"])
    Z2 = (flat(h1[1:]) @ p["W12"].T + flat(xs) @ p["Wx2"].T + p["b2"]).reshape(T, N, H)
    h2 = tanh_recurrence(Z2, p["h02"], p["Wh2"])
    y = (flat(h2[1:]) @ p["Wo"].T + flat(h1[1:]) @ p["Wo1"].T + p["bo"]).reshape(T, N, -1)
    loss, dy = squared_error(y, ds, N)
    g = {"Wo": flat(dy).T @ flat(h2[1:]), "Wo1": flat(dy).T @ flat(h1[1:]), "bo": dy.sum((0, 1))}
    dZ2, dh = tanh_bptt((flat(dy) @ p["Wo"]).reshape(T, N, H), h2, p["Wh2"])
    g.update(Wh2=flat(dZ2).T @ flat(h2[:-1]), W12=flat(dZ2).T @ flat(h1[1:]), Wx2=flat(dZ2).T @ flat(xs),
             b2=dZ2.sum((0, 1)), h02=dh.sum(0))
    dZ1, dh = tanh_bptt((flat(dy) @ p["Wo1"] + flat(dZ2) @ p["W12"]).reshape(T, N, H), h1, p["Wh1"])
    g.update(Wh1=flat(dZ1).T @ flat(h1[:-1]), Wx1=flat(dZ1).T @ flat(xs), b1=dZ1.sum((0, 1)), h01=dh.sum(0))
    return loss, g


def elman_step(p, xs, ds, N):
    """Elman net, context c(t) = h(t-1) copied with the gradient blocked (h(-1) = 0)."""
    T, H = xs.shape[0], p["Wc"].shape[0]
    Z = (flat(xs) @ p["Wx"].T + p["b"]).reshape(T, N, H)
    hs = np.zeros((T + 1, N, H), np.float32)                       # hs[t] = h(t-1) = c(t)
    for t in range(T):
        hs[t + 1] = np.tanh(Z[t] + hs[t] @ p["Wc"].T)
    y = (flat(hs[1:]) @ p["Wo"].T + p["bo"]).reshape(T, N, -1)
    loss, dy = squared_error(y, ds, N)
    # no gradient through the context: BPTT needs no time loop
    dZ = (flat(dy) @ p["Wo"]).reshape(T, N, H) * (1 - hs[1:] * hs[1:])
    g = {"Wo": flat(dy).T @ flat(hs[1:]), "bo": dy.sum((0, 1)), "Wc": flat(dZ).T @ flat(hs[:-1]),
         "Wx": flat(dZ).T @ flat(xs), "b": dZ.sum((0, 1))}
    return loss, g


def narx_step(p, xs, ds, N):
    """Closed-loop NARX: h(t) = tanh(sum_i Wx_i x(t-i) + sum_k Wy_k y(t-k) + b), y = Wo h + bo."""
    T, H = xs.shape[0], p["Wo"].shape[1]
    L, K = NARX_IN, NARX_OUT
    xp = np.concatenate([np.zeros((L, N, xs.shape[2]), np.float32), xs])       # x(t) = 0 for t < 0
    Z = (sum(flat(xp[L - i: L - i + T]) @ p[f"Wx{i}"].T for i in range(L + 1)) + p["b"]).reshape(T, N, H)
    ys = np.zeros((K + T, N, N_OUT), np.float32)                   # ys[K + t] = y(t), zeros before
    hs = np.empty((T, N, H), np.float32)
    for t in range(T):
        z = Z[t].copy()
        for k in range(1, K + 1):
            z += ys[K + t - k] @ p[f"Wy{k}"].T
        hs[t] = np.tanh(z)
        ys[K + t] = hs[t] @ p["Wo"].T + p["bo"]
    y = ys[K:]
    loss, dy = squared_error(y, ds, N)
    dZh = np.empty_like(Z)
    dZy = np.empty_like(y)
    for t in range(T - 1, -1, -1):
        gy = dy[t].copy()
        for k in range(1, K + 1):
            if t + k < T:
                gy += dZh[t + k] @ p[f"Wy{k}"]
        dZy[t] = gy
        dZh[t] = (gy @ p["Wo"]) * (1 - hs[t] * hs[t])
    g = {"Wo": flat(dZy).T @ flat(hs), "bo": dZy.sum((0, 1)), "b": dZh.sum((0, 1))}
    for i in range(L + 1):
        g[f"Wx{i}"] = flat(dZh).T @ flat(xp[L - i: L - i + T])
    for k in range(1, K + 1):
        g[f"Wy{k}"] = flat(dZh).T @ flat(ys[K - k: K - k + T])
    return loss, g


def params(model, H, seed=0):
    rng = np.random.default_rng(seed)
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    if model == "rnn":
        return {"Wx": uniform(rng, (H, N_IN), N_IN + H), "Wh": uniform(rng, (H, H), N_IN + H), "b": z(H),
                "h0": z(H), "Wo": uniform(rng, (N_OUT, H), H), "bo": z(N_OUT)}
    if model == "elman":
        return {"Wx": uniform(rng, (H, N_IN), N_IN + H), "Wc": uniform(rng, (H, H), N_IN + H), "b": z(H),
                "Wo": uniform(rng, (N_OUT, H), H), "bo": z(N_OUT)}
    if model == "rnn2skip":
        return {"Wx1": uniform(rng, (H, N_IN), N_IN + H), "Wh1": uniform(rng, (H, H), N_IN + H), "b1": z(H),
                "h01": z(H), "W12": uniform(rng, (H, H), 2 * H + N_IN), "Wx2": uniform(rng, (H, N_IN), 2 * H + N_IN),
                "Wh2": uniform(rng, (H, H), 2 * H + N_IN), "b2": z(H), "h02": z(H),
                "Wo": uniform(rng, (N_OUT, H), 2 * H), "Wo1": uniform(rng, (N_OUT, H), 2 * H), "bo": z(N_OUT)}
    if model == "narx":
        fan = (NARX_IN + 1) * N_IN + NARX_OUT * N_OUT
        p = {f"Wx{i}": uniform(rng, (H, N_IN), fan) for i in range(NARX_IN + 1)}
        p.update({f"Wy{k}": uniform(rng, (H, N_OUT), fan) for k in range(1, NARX_OUT + 1)})
        p.update(b=z(H), Wo=uniform(rng, (N_OUT, H), H), bo=z(N_OUT))
        return p
    raise ValueError(model)


STEPS = {"rnn": rnn_step, "rnn2skip": rnn2skip_step, "elman": elman_step, "narx": narx_step}


def main():
    args = parse_args(__doc__)
    p = params(args.model, args.H)
    x, d = data(args.N, args.T)
    fn = STEPS[args.model]

    def step():
        xs = np.ascontiguousarray(np.swapaxes(x, 0, 1))            # time major, as the engine
        ds = np.ascontiguousarray(np.swapaxes(d, 0, 1))
        return fn(p, xs, ds, args.N)

    report(time_steps(step, args.repeats, args.warmup))


if __name__ == "__main__":
    main()
