"""The engine: random columns against finite differences and a plain step-by-step loop."""

import numpy as np
import pytest

from reference import reference_forward
from unrolled import Layer, Link, Network
from unrolled.analysis import gradcheck
from unrolled.divergences import CrossEntropy, SquaredError

ACTS = ["tanh", "sigmoid", "identity", "softmax", "tanh"]


def random_network(seed, *, blocked=False, fixed=True, output_act=None):
    """A random column: 2-4 layers, delays 0-3, every kind of link and history."""
    rng = np.random.default_rng(seed)
    n_layers = int(rng.integers(2, 5))
    names = [f"l{i}" for i in range(n_layers)]
    sizes = {name: int(rng.integers(1, 4)) for name in names}
    layers = {}
    for i, name in enumerate(names):
        act = ACTS[int(rng.integers(len(ACTS)))] if i < n_layers - 1 else (output_act or "identity")
        layers[name] = Layer(sizes[name], act, bias=bool(rng.random() < 0.8),
                             init="learned" if rng.random() < 0.6 else "zeros")
    inputs = {"x": int(rng.integers(1, 4)), "u": 2}
    links, keys = [], set()

    def add(src, dst, delay, **kw):
        key = (src, dst, delay)
        if key not in keys:
            keys.add(key)
            links.append(Link(src, dst, delay, **kw))

    add("x", names[0], 0)
    add("u", names[int(rng.integers(n_layers))], int(rng.integers(0, 3)))
    for i in range(1, n_layers):
        add(names[int(rng.integers(i))], names[i], 0)           # forward links keep delay 0 acyclic
    for _ in range(n_layers + 2):
        src, dst = names[int(rng.integers(n_layers))], names[int(rng.integers(n_layers))]
        delay = int(rng.integers(1, 4))
        kind = rng.random()
        if fixed and kind < 0.25 and sizes[src] == sizes[dst]:
            add(src, dst, delay, weight=float(rng.uniform(0.3, 0.9)), trainable=False,
                gradient="blocked" if blocked and rng.random() < 0.5 else "full")
        elif fixed and kind < 0.4:
            add(src, dst, delay, weight=rng.normal(size=(sizes[dst], sizes[src])) * 0.5, trainable=False)
        else:
            add(src, dst, delay, gradient="blocked" if blocked and kind > 0.7 else "full")
    add("x", names[-1], int(rng.integers(0, 4)))
    net = Network(inputs, layers, links, names[-1], dtype=np.float64, seed=seed)
    for p in net.params.values():                 # non-trivial values everywhere, inits included
        p[...] = rng.normal(size=p.shape) * 0.6
    return net, rng


def random_data(net, rng, N=3, T=6):
    x = rng.normal(size=(N, T, net.inputs["x"]))
    u = rng.normal(size=(N, T, 2))
    lengths = rng.integers(1, T + 1, size=N)
    lengths[0] = T
    return x, u, lengths


def given_state(net, rng, N, share=0.5):
    return {name: rng.normal(size=(N, D, net.node_size(name)))
            for name, D in net.depth.items() if D and rng.random() < share}


@pytest.mark.parametrize("seed", range(12))
def test_random_network_matches_step_by_step_reference(seed):
    net, rng = random_network(seed)
    x, u, lengths = random_data(net, rng)
    state = given_state(net, rng, len(x))
    y, _ = net.forward(x, u=u, lengths=lengths, state=state)
    ref = reference_forward(net, x, lengths, state, u=u)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_random_network_gradients_match_finite_differences(seed):
    net, rng = random_network(seed)
    x, u, lengths = random_data(net, rng)
    state = given_state(net, rng, len(x))
    d = rng.normal(size=(len(x), x.shape[1], net.n_out))
    check = gradcheck(net, x, d, SquaredError(), lengths=lengths, state=state, inputs={"u": u})
    assert check.max_error < 1e-6, str(check)
    assert set(check.bptt) == set(net.params) | {"dx"}


@pytest.mark.parametrize("seed", range(6))
def test_softmax_output_with_fused_cross_entropy(seed):
    net, rng = random_network(100 + seed, output_act="softmax")
    x, u, lengths = random_data(net, rng)
    labels = rng.integers(0, net.n_out, size=(len(x), x.shape[1]))
    check = gradcheck(net, x, labels, CrossEntropy(), lengths=lengths, inputs={"u": u})
    assert check.max_error < 1e-6, str(check)


def constant_input_twin(net, cache, N, T):
    """The same column with every blocked link reading a recorded external input instead.

    The lecture: a gradient-blocked link treats its source as a constant input. So the
    blocked network's BPTT must equal the exact gradient of this twin.
    """
    inputs, links, extra, state, rename = dict(net.inputs), [], {}, {}, {}
    for k, link in enumerate(net.links):
        if link.gradient != "blocked":
            links.append(link)
            continue
        name = f"const{k}"
        inputs[name] = net.node_size(link.src)
        weight = None if link.trainable else net.weight(link).copy()
        twin = Link(name, link.dst, link.delay, weight=weight, trainable=link.trainable)
        links.append(twin)
        rename[twin.key] = link.key
        D = net.depth[link.src]
        buf = cache.A[link.src]                                # (D + T, N, size)
        extra[name] = np.swapaxes(buf[D:], 0, 1).copy()
        if link.delay:
            state[name] = np.swapaxes(buf[D - link.delay:D], 0, 1).copy()
    layers = dict(net.layers)
    twin_net = Network(inputs, layers, links, net.output, dtype=np.float64)
    for key, value in twin_net.params.items():
        # an init may be shallower in the twin: its rows are the most recent ones
        value[...] = net.params[rename.get(key, key)][-len(value):]
    return twin_net, extra, state, rename


@pytest.mark.parametrize("seed", range(10))
def test_blocked_links_treat_their_source_as_a_constant_input(seed):
    net, rng = random_network(200 + seed, blocked=True)
    if not any(link.gradient == "blocked" for link in net.links):
        net.links[-1] = Link(net.links[-1].src, net.links[-1].dst, net.links[-1].delay, gradient="blocked")
        net = Network(net.inputs, net.layers, net.links, net.output, dtype=np.float64)
    x, u, _ = random_data(net, rng)
    N, T = x.shape[:2]
    d = rng.normal(size=(N, T, net.n_out))
    y, cache = net.forward(x, u=u)
    grads, dx = net.backward(SquaredError()(y, d)[1], cache)

    twin, extra, state, rename = constant_input_twin(net, cache, N, T)
    # The twin computes the same outputs ...
    np.testing.assert_allclose(twin.forward(x, u=u, state=state, **extra)[0], y, rtol=1e-12, atol=1e-12)
    # ... and its exact gradient (finite differences) is the blocked network's BPTT.
    check = gradcheck(twin, x, d, SquaredError(), state=state, inputs={"u": u, **extra})
    assert check.max_error < 1e-6, str(check)
    for key, g in check.numeric.items():
        mine = dx if key == "dx" else grads[rename.get(key, key)]
        if key.startswith("init["):       # rows only the blocked link read get no gradient
            assert np.all(mine[:-len(g)] == 0.0)
            mine = mine[-len(g):]
        np.testing.assert_allclose(mine, g, rtol=1e-5, atol=1e-7)


def test_padded_batch_equals_each_sequence_alone():
    net, rng = random_network(7)
    x, u, lengths = random_data(net, rng, N=4, T=7)
    d = rng.normal(size=(4, 7, net.n_out))
    y, cache = net.forward(x, u=u, lengths=lengths)
    g, dx = net.backward(SquaredError()(y, d, lengths=lengths)[1], cache)
    total = {k: np.zeros_like(v) for k, v in g.items()}
    for n in range(4):
        L = lengths[n]
        yn, cn = net.forward(x[n:n + 1, :L], u=u[n:n + 1, :L])
        np.testing.assert_allclose(y[n, :L], yn[0], rtol=1e-12, atol=1e-12)
        assert np.all(y[n, L:] == 0.0)
        for name in net.depth:
            if net.depth[name]:
                np.testing.assert_allclose(cache.state[name][n], cn.state[name][0], rtol=1e-12, atol=1e-12)
        # divergence means over N: rescale the single-sequence gradient by 1/4
        gn, dxn = net.backward(SquaredError()(yn, d[n:n + 1, :L])[1] / 4, cn)
        for k in total:
            total[k] += gn[k]
        np.testing.assert_allclose(dx[n, :L], dxn[0], rtol=1e-10, atol=1e-12)
        assert np.all(dx[n, L:] == 0.0)
    for k in g:
        np.testing.assert_allclose(g[k], total[k], rtol=1e-10, atol=1e-12)


def test_nan_in_padding_never_reaches_the_result():
    net, rng = random_network(3)
    x, u, lengths = random_data(net, rng)
    lengths[1] = 2
    x[1, 2:] = np.nan
    u[1, 2:] = np.nan
    y, cache = net.forward(x, u=u, lengths=lengths)
    assert np.all(np.isfinite(y))
    g, dx = net.backward(np.ones_like(y), cache)
    assert all(np.all(np.isfinite(v)) for v in g.values())


@pytest.mark.parametrize("seed", range(4))
def test_streaming_in_chunks_equals_one_pass(seed):
    net, rng = random_network(300 + seed)
    x, u, _ = random_data(net, rng, N=2, T=9)
    y_full, _ = net.forward(x, u=u)
    state, parts = None, []
    for lo, hi in [(0, 4), (4, 5), (5, 9)]:
        y, cache = net.forward(x[:, lo:hi], u=u[:, lo:hi], state=state)
        parts.append(y)
        state = cache.state
    np.testing.assert_allclose(np.concatenate(parts, axis=1), y_full, rtol=1e-12, atol=1e-12)


def test_gradient_of_a_given_state_and_of_the_final_state():
    net, rng = random_network(11)
    x, u, lengths = random_data(net, rng)
    N, T = x.shape[:2]
    state = given_state(net, rng, N, share=1.0)
    y, cache = net.forward(x, u=u, lengths=lengths, state=state)
    c = {k: rng.normal(size=v.shape) for k, v in cache.state.items()}

    def loss():  # depends on the outputs and on the final state
        y, cache = net.forward(x, u=u, lengths=lengths, state=state)
        return np.sum(y * y) + sum(np.sum(c[k] * cache.state[k]) for k in c)

    y, cache = net.forward(x, u=u, lengths=lengths, state=state)
    grads, dinputs, dstate = net.backward_full(2 * y, cache, dstate=c)
    for name, s in state.items():
        fd = np.zeros_like(s)
        for i in np.ndindex(s.shape):
            old = s[i]
            s[i] = old + 1e-6; up = loss()
            s[i] = old - 1e-6; down = loss()
            s[i] = old
            fd[i] = (up - down) / 2e-6
        np.testing.assert_allclose(dstate[name], fd, rtol=1e-6, atol=1e-8)


def test_hoisted_schedule_components():
    # x -> a -> b, b -> a @1 (a cycle), b -> c (acyclic), c -> c? no: c -> d
    net = Network({"x": 2}, {"a": Layer(3), "b": Layer(3), "c": Layer(2), "d": Layer(1, "identity")},
                  [Link("x", "a"), Link("a", "b"), Link("b", "a", 1), Link("b", "c"), Link("c", "d"),
                   Link("x", "d", 2)], "d")
    assert net.schedule == [(["a", "b"], True), (["c"], False), (["d"], False)]
    assert net.depth == {"x": 2, "a": 0, "b": 1, "c": 0, "d": 0}
    assert set(net.params) == {"W[x->a@0]", "W[a->b@0]", "W[b->a@1]", "W[b->c@0]", "W[c->d@0]",
                               "W[x->d@2]", "b[a]", "b[b]", "b[c]", "b[d]", "init[b]"}
    assert net.params["init[b]"].shape == (1, 3)


def test_float32_by_default_and_float64_on_request():
    kw = dict(inputs={"x": 1}, layers={"h": Layer(2)}, links=[Link("x", "h"), Link("h", "h", 1)], output="h")
    net32 = Network(**kw, seed=0)
    net64 = Network(**kw, dtype=np.float64, seed=0)
    x = np.linspace(-1, 1, 10).reshape(2, 5, 1)
    y32, c32 = net32.forward(x)
    y64, _ = net64.forward(x)
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    assert all(v.dtype == np.float32 for v in net32.backward(np.ones_like(y32), c32)[0].values())
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)


def test_backward_is_pure():
    net, rng = random_network(5)
    x, u, lengths = random_data(net, rng)
    y, cache = net.forward(x, u=u, lengths=lengths)
    dy = rng.normal(size=y.shape)
    g1, dx1 = net.backward(dy, cache)
    g2, dx2 = net.backward(dy, cache)
    for k in g1:
        assert np.array_equal(g1[k], g2[k])
    assert np.array_equal(dx1, dx2)


def test_params_are_live_weights():
    net = Network({"x": 1}, {"h": Layer(1, "identity", bias=False)}, [Link("x", "h")], "h", dtype=np.float64)
    net.params["W[x->h@0]"][...] = 3.0
    assert net.forward(np.ones((1, 2, 1)))[0].ravel().tolist() == [3.0, 3.0]


# ------------------------------------------------------------------ clear errors
def test_cycle_of_delay0_links_is_named():
    with pytest.raises(ValueError, match=r"delay-0 links form a cycle: a -> b -> c -> a"):
        Network({"x": 1}, {"a": Layer(1), "b": Layer(1), "c": Layer(1)},
                [Link("x", "a"), Link("a", "b"), Link("b", "c"), Link("c", "a")], "c")


def test_self_loop_without_delay_is_a_cycle():
    with pytest.raises(ValueError, match=r"cycle: h -> h"):
        Network({"x": 1}, {"h": Layer(1)}, [Link("x", "h"), Link("h", "h")], "h")


def test_unknown_names_and_negative_delay():
    with pytest.raises(ValueError, match=r"unknown source 'hh'"):
        Network({"x": 1}, {"h": Layer(1)}, [Link("hh", "h")], "h")
    with pytest.raises(ValueError, match=r"unknown destination layer 'x'"):
        Network({"x": 1}, {"h": Layer(1)}, [Link("h", "x")], "h")
    with pytest.raises(ValueError, match=r"output must be one of the layers \['h'\], got 'y'"):
        Network({"x": 1}, {"h": Layer(1)}, [Link("x", "h")], "y")
    with pytest.raises(ValueError, match=r"delay must be >= 0, got -1"):
        Link("h", "h", -1)
    with pytest.raises(ValueError, match=r"unknown activation 'tan'"):
        Layer(3, "tan")


def test_shape_and_dtype_errors_say_what_was_expected():
    net = Network({"x": 3}, {"h": Layer(2)}, [Link("x", "h"), Link("h", "h", 1)], "h")
    with pytest.raises(ValueError, match=r"expected x of shape \(N, T, 3\), got \(32, 3\)"):
        net.forward(np.zeros((32, 3)))
    with pytest.raises(TypeError, match=r"x must hold real numbers .* got dtype <U1"):
        net.forward(np.array([[["a", "b", "c"]]]))
    with pytest.raises(TypeError, match=r"dtype must be float32 or float64"):
        Network({"x": 1}, {"h": Layer(1)}, [Link("x", "h")], "h", dtype=np.int32)
    with pytest.raises(ValueError, match=r"expected lengths of shape \(2,\)"):
        net.forward(np.zeros((2, 4, 3)), lengths=[4])
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T=4\]"):
        net.forward(np.zeros((2, 4, 3)), lengths=[4, 5])
    with pytest.raises(ValueError, match=r"expected state\['h'\] of shape \(2, 1, 2\)"):
        net.forward(np.zeros((2, 4, 3)), state={"h": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"state names 'x', which no link reads with a delay"):
        net.forward(np.zeros((2, 4, 3)), state={"x": np.zeros((2, 1, 3))})
    y, cache = net.forward(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"expected dy of shape \(2, 4, 2\) like the outputs, got \(2, 4\)"):
        net.backward(np.zeros((2, 4)), cache)
    with pytest.raises(ValueError, match=r"weight must have shape \(2, 3\)"):
        Network({"x": 3}, {"h": Layer(2)}, [Link("x", "h", weight=np.zeros((3, 2)))], "h")
    with pytest.raises(ValueError, match=r"scalar weight means s\*I"):
        Network({"x": 3}, {"h": Layer(2)}, [Link("x", "h", weight=1.0, trainable=False)], "h")
    with pytest.raises(ValueError, match=r"reads the input 'u': pass u="):
        Network({"x": 1, "u": 2}, {"h": Layer(1)}, [Link("x", "h"), Link("u", "h")], "h").forward(np.zeros((1, 2, 1)))


# ------------------------------------------------------------ a network without inputs
def generator():
    """h(t) = tanh(W h(t-1) + b) from a learned h(-1), y(t) = V h(t): reads no input."""
    net = Network({}, {"h": Layer(3, "tanh"), "y": Layer(2, "identity")},
                  [Link("h", "h", 1), Link("h", "y")], "y", dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    for p in net.params.values():
        p[...] = rng.normal(size=p.shape) * 0.7
    return net


def test_a_network_without_inputs_runs_for_steps_from_its_learned_state():
    net = generator()
    y, cache = net.forward(None, steps=4)
    W, b, V, bo = (net.params[k] for k in ("W[h->h@1]", "b[h]", "W[h->y@0]", "b[y]"))
    h = net.params["init[h]"][0]
    for t in range(4):                                               # the hand-worked recurrence
        h = np.tanh(W @ h + b)
        np.testing.assert_allclose(y[0, t], V @ h + bo, rtol=1e-12)
    assert y.shape == (1, 4, 2) and cache.state["h"].shape == (1, 1, 3)


def test_a_network_without_inputs_takes_its_batch_from_the_state_or_the_lengths():
    net = generator()
    start = np.random.default_rng(1).normal(size=(3, 1, 3))
    y, _ = net.forward(None, steps=5, state={"h": start})
    y1, _ = net.forward(None, steps=5, state={"h": start[1:2]})
    assert y.shape == (3, 5, 2)
    np.testing.assert_allclose(y[1], y1[0], rtol=1e-12)
    y, _ = net.forward(None, steps=5, lengths=[5, 2])
    assert y.shape == (2, 5, 2) and np.all(y[1, 2:] == 0) and np.all(y[1, :2] != 0)


def test_gradients_of_a_network_without_inputs_match_finite_differences():
    net = generator()
    state = {"h": np.random.default_rng(2).normal(size=(2, 1, 3))}
    target = np.random.default_rng(3).normal(size=(2, 6, 2))

    def loss():
        y, _ = net.forward(None, steps=6, state=state)
        return 0.5 * np.sum((y - target) ** 2)

    y, cache = net.forward(None, steps=6, state=state)
    grads, dinputs, dstate = net.backward_full(y - target, cache)
    assert dinputs == {}
    for key, p in net.params.items():
        num = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + 1e-6
            up = loss()
            p[i] = old - 1e-6
            num[i] = (up - loss()) / 2e-6
            p[i] = old
        np.testing.assert_allclose(grads[key], num, rtol=1e-6, atol=1e-8, err_msg=key)


def test_steps_is_checked():
    net = generator()
    with pytest.raises(ValueError, match=r"this network reads no input: pass steps=T"):
        net.forward(None)
    with pytest.raises(ValueError, match=r"steps must be at least 1 \(the number of steps T\), got 0"):
        net.forward(None, steps=0)
    with pytest.raises(TypeError, match=r"steps must be an integer \(the number of steps T\), got 2.5"):
        net.forward(None, steps=2.5)
    with pytest.raises(ValueError, match=r"expected state\['h'\] of shape \(2, 1, 3\) \(N, D, size\), got \(3, 1, 3\)"):
        net.forward(None, steps=2, lengths=[2, 2], state={"h": np.zeros((3, 1, 3))})
    with pytest.raises(ValueError, match=r"an input cannot be named 'steps': forward takes steps= for itself"):
        Network({"steps": 1}, {"h": Layer(2)}, [Link("steps", "h")], "h")
    with_input = Network({"x": 1}, {"h": Layer(2)}, [Link("x", "h")], "h", seed=0)
    with pytest.raises(ValueError, match=r"steps=3 contradicts the inputs' T=4"):
        with_input.forward(np.zeros((1, 4, 1)), steps=3)
    y, _ = with_input.forward(np.zeros((1, 4, 1)), steps=4)
    assert y.shape == (1, 4, 2)


def test_backward_skips_the_inputs_gradients_when_the_cache_says_so():
    net, rng = random_network(7)
    x, u, lengths = random_data(net, rng, N=3, T=6)
    y, cache = net.forward(x, lengths=lengths, u=u)
    dy = rng.normal(size=y.shape)
    grads, dinputs, _ = net.backward_full(dy, cache)
    cache.input_grads = False
    grads2, dinputs2, _ = net.backward_full(dy, cache)
    assert set(dinputs) == {"x", "u"} and dinputs2 == {}
    for key in grads:
        np.testing.assert_allclose(grads2[key], grads[key], rtol=1e-12, atol=1e-14)
    assert net.backward(dy, cache)[1] is None
