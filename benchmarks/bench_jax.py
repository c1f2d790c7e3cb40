"""Worker: JAX, ``lax.scan`` under ``jit(value_and_grad)``, the input product hoisted (``--model rnn``)."""

import jax
import jax.numpy as jnp
import numpy as np

from _common import N_IN, N_OUT, data, parse_args, report, time_steps, uniform


def main():
    args = parse_args(__doc__)
    if args.model != "rnn":
        raise SystemExit("bench_jax times the plain RNN only")
    N, H, T = args.N, args.H, args.T
    rng = np.random.default_rng(0)
    params = {
        "Wx": uniform(rng, (H, N_IN), H), "Wh": uniform(rng, (H, H), H), "b": np.zeros(H, np.float32),
        "h0": np.zeros(H, np.float32), "Wo": uniform(rng, (N_OUT, H), H), "bo": np.zeros(N_OUT, np.float32),
    }
    params = jax.tree_util.tree_map(jnp.asarray, params)
    x, d = (jnp.asarray(a) for a in data(N, T))

    def loss(p, x, d):
        zx = jnp.swapaxes(x, 0, 1) @ p["Wx"].T + p["b"]                 # (T, N, H), hoisted

        def cell(h, z):
            h = jnp.tanh(z + h @ p["Wh"].T)
            return h, h

        _, hs = jax.lax.scan(cell, jnp.broadcast_to(p["h0"], (N, H)), zx)
        y = hs @ p["Wo"].T + p["bo"]                                     # (T, N, 8)
        return jnp.sum((y - jnp.swapaxes(d, 0, 1)) ** 2) / N

    f = jax.jit(jax.value_and_grad(loss))

    def step():
        return f(params, x, d)

    report(time_steps(step, args.repeats, args.warmup, sync=jax.block_until_ready), version=jax.__version__)


if __name__ == "__main__":
    main()
