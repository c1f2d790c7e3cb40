"""Worker: JAX, ``lax.scan`` under ``jit(value_and_grad)``, the input product hoisted: a tanh RNN
(``--model rnn``), an LSTM or a GRU (``lstm``, ``gru``: PyTorch's equations) + a linear output."""

import jax
import jax.numpy as jnp
import numpy as np

from _common import N_IN, N_OUT, data, parse_args, report, time_steps, uniform

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def cell(model, p):
    """The step of ``lax.scan``: carry (h, or (h, c)) and z(t) = x(t) W_ih^T + b (hoisted)."""
    if model == "rnn":
        def step(h, z):
            h = jnp.tanh(z + h @ p["Wh"].T)
            return h, h
    elif model == "lstm":
        def step(carry, z):
            h, c = carry
            i, f, g, o = jnp.split(z + h @ p["Wh"].T, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h
    else:
        def step(h, z):
            H = h.shape[-1]
            gh = h @ p["Wh"].T                                           # (N, 3H)
            r = jax.nn.sigmoid(z[:, :H] + gh[:, :H])
            u = jax.nn.sigmoid(z[:, H:2 * H] + gh[:, H:2 * H])
            n = jnp.tanh(z[:, 2 * H:] + r * (gh[:, 2 * H:] + p["bhn"]))
            h = (1 - u) * n + u * h
            return h, h
    return step


def main():
    args = parse_args(__doc__)
    if args.model not in GATES:
        raise SystemExit(f"bench_jax times {', '.join(GATES)} only")
    N, H, T, k = args.N, args.H, args.T, GATES[args.model]
    rng = np.random.default_rng(0)
    params = {
        "Wx": uniform(rng, (k * H, N_IN), H), "Wh": uniform(rng, (k * H, H), H), "b": np.zeros(k * H, np.float32),
        "h0": np.zeros(H, np.float32), "Wo": uniform(rng, (N_OUT, H), H), "bo": np.zeros(N_OUT, np.float32),
    }
    if args.model == "lstm":
        params["c0"] = np.zeros(H, np.float32)
    if args.model == "gru":
        params["bhn"] = np.zeros(H, np.float32)
    params = jax.tree_util.tree_map(jnp.asarray, params)
    x, d = (jnp.asarray(a) for a in data(N, T))

    def loss(p, x, d):
        zx = jnp.swapaxes(x, 0, 1) @ p["Wx"].T + p["b"]                 # (T, N, kH), hoisted
        h0 = jnp.broadcast_to(p["h0"], (N, H))
        carry = (h0, jnp.broadcast_to(p["c0"], (N, H))) if args.model == "lstm" else h0
        _, hs = jax.lax.scan(cell(args.model, p), carry, zx)
        y = hs @ p["Wo"].T + p["bo"]                                     # (T, N, 8)
        return jnp.sum((y - jnp.swapaxes(d, 0, 1)) ** 2) / N

    f = jax.jit(jax.value_and_grad(loss))

    def step():
        return f(params, x, d)

    report(time_steps(step, args.repeats, args.warmup, sync=jax.block_until_ready), version=jax.__version__)


if __name__ == "__main__":
    main()
