"""Generation: outputs fed back, reproducible sampling, temperature, greedy against a plain loop."""

import numpy as np
import pytest

from unrolled import RNN
from unrolled.blocks import Stack
from unrolled.generate import generate, one_hot, teacher_forcing


def _symbol_model(seed=0, n=4):
    m = RNN(n, n, hidden=(5,), output="softmax", dtype=np.float64, seed=seed)
    rng = np.random.default_rng(seed)
    for p in m.params.values():
        p[...] = rng.normal(size=p.shape)
    return m


def _greedy_by_rerunning(model, prime, steps):
    """The obviously right loop: rerun the whole sequence so far, take the last argmax."""
    seq = prime
    out = []
    for _ in range(steps):
        y = model.predict(seq)
        idx = y[:, -1].argmax(-1)
        out.append(idx)
        seq = np.concatenate([seq, one_hot(idx, model.n_in)[:, None]], axis=1)
    return np.stack(out, axis=1)


def test_greedy_is_deterministic_and_equals_a_step_by_step_argmax_loop():
    m = _symbol_model()
    prime = one_hot(np.array([[0, 1, 2], [3, 3, 1]]), 4, np.float64)
    g = generate(m, prime, 12, greedy=True)
    assert g.shape == (2, 12) and g.dtype == np.int64
    np.testing.assert_array_equal(g, generate(m, prime, 12, greedy=True, seed=123))
    np.testing.assert_array_equal(g, _greedy_by_rerunning(m, prime, 12))
    # after the prime, each generated step is one step of the network, continuing from its state
    seen = []

    class Spy:
        n_in, n_out, dtype, network = m.n_in, m.n_out, m.dtype, m.network

        def forward(self, x, **kw):
            seen.append(x.shape[1])
            return m.forward(x, **kw)

    np.testing.assert_array_equal(generate(Spy(), prime, 12, greedy=True), g)
    assert seen == [3] + [1] * 11
    # a very low temperature samples the argmax
    np.testing.assert_array_equal(generate(m, prime, 12, temperature=1e-3, seed=5), g)


def test_sampling_is_reproducible_under_a_seed():
    m = _symbol_model(1)
    prime = one_hot(np.zeros((3, 2), dtype=int), 4, np.float64)
    a = generate(m, prime, 30, seed=42)
    np.testing.assert_array_equal(a, generate(m, prime, 30, seed=42))
    np.testing.assert_array_equal(a, generate(m, prime, 30, seed=np.random.default_rng(42)))
    assert not np.array_equal(a, generate(m, prime, 30, seed=43))
    assert len(np.unique(a)) > 1


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_samples_follow_the_temperature_scaled_distribution(temperature):
    # zero weights: the output is softmax(b_y) = p at every step, whatever the input
    m = RNN(3, 3, hidden=(2,), output="softmax", dtype=np.float64, seed=0)
    for p in m.params.values():
        p[...] = 0.0
    p = np.array([0.6, 0.3, 0.1])
    m.params["b[y]"][...] = np.log(p)
    N = 20000
    draws = generate(m, np.zeros((N, 1, 3)), 2, temperature=temperature, seed=0)
    q = p ** (1 / temperature) / np.sum(p ** (1 / temperature))   # e.g. T = 0.5: [36, 9, 1] / 46
    for k in range(2):
        freq = np.bincount(draws[:, k], minlength=3) / N
        np.testing.assert_allclose(freq, q, atol=4 * np.sqrt(q * (1 - q) / N).max())


def test_values_are_fed_back_for_an_identity_output():
    m = RNN(2, 2, hidden=(3,), dtype=np.float64, seed=2)
    rng = np.random.default_rng(2)
    for p in m.params.values():
        p[...] = rng.normal(size=p.shape) * 0.5
    prime = rng.normal(size=(4, 2))                 # one sequence, (T0, n_in): returns (steps, n_out)
    out = generate(m, prime, 5)
    assert out.shape == (5, 2)
    seq = prime[None]
    for k in range(5):
        nxt = m.predict(seq)[:, -1]
        np.testing.assert_allclose(out[k], nxt[0], rtol=1e-12, atol=1e-14)
        seq = np.concatenate([seq, nxt[:, None]], axis=1)


def test_one_to_many_and_mixed_length_primes():
    m = _symbol_model(3)
    # one-to-many: a single input, then the outputs fed back
    x0 = one_hot(np.array([[2]]), 4, np.float64)
    np.testing.assert_array_equal(generate(m, x0, 6, greedy=True), _greedy_by_rerunning(m, x0, 6))
    # primes of different lengths in one batch: each continues from its own last step
    primes = one_hot(np.array([[0, 1, 2, 3], [1, 2, 0, 0]]), 4, np.float64)
    batch = generate(m, primes, 5, greedy=True, lengths=[4, 2])
    np.testing.assert_array_equal(batch[0], generate(m, primes[0], 5, greedy=True))
    np.testing.assert_array_equal(batch[1], generate(m, primes[1, :2], 5, greedy=True))


def test_a_stack_continues_from_the_state_of_each_block():
    rng = np.random.default_rng(4)
    bottom = RNN(4, 3, hidden=(4,), dtype=np.float64, seed=0)
    top = RNN(3, 4, hidden=(3,), output="softmax", dtype=np.float64, seed=1)
    stack = Stack(bottom, top)
    for p in stack.params.values():
        p[...] = rng.normal(size=p.shape)
    prime = one_hot(np.array([[1, 2]]), 4, np.float64)
    np.testing.assert_array_equal(generate(stack, prime, 8, greedy=True), _greedy_by_rerunning(stack, prime, 8))


def test_teacher_forcing_shifts_the_targets_behind_the_start_symbol():
    d = np.array([[2, 0, 1], [1, 2, -1]])             # -1: padding, never read
    u = teacher_forcing(d, 4, start=3, lengths=[3, 2])
    assert u.argmax(-1).tolist() == [[3, 2, 0], [3, 1, 3]]
    assert u.shape == (2, 3, 4) and u.sum() == 6


def test_errors():
    m = _symbol_model()
    prime = np.zeros((1, 2, 4))
    with pytest.raises(ValueError, match=r"temperature must be a positive finite number, got 0.*greedy=True"):
        generate(m, prime, 3, temperature=0)
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        generate(m, prime, -1)
    with pytest.raises(ValueError, match=r"expected prime of shape \(N, T0, 4\) or \(T0, 4\)"):
        generate(m, np.zeros((1, 2, 3)), 3)
    with pytest.raises(ValueError, match="needs n_out == n_in, got n_out = 2 and n_in = 3"):
        generate(RNN(3, 2, hidden=(2,)), np.zeros((1, 2, 3)), 3)
    with pytest.raises(ValueError, match="it needs n_in >= n_out"):
        generate(RNN(2, 3, hidden=(2,), output="softmax"), np.zeros((1, 2, 2)), 3)
    assert generate(m, prime, 0).shape == (1, 0)
