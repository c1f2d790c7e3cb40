import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unrolled import divergences as dv
from unrolled.divergences import (
    BinaryCrossEntropy,
    CrossEntropy,
    LastStep,
    LogitGradient,
    PooledMean,
    SquaredError,
)

N, T, C = 3, 5, 4
LENGTHS = np.array([5, 2, 3])


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def fd_grad(f, x, h=1e-6):
    """Central finite differences of the scalar f at x (float64)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


def make_case(name):
    """(div, y, d, lengths) for the finite-difference checks."""
    rng = np.random.default_rng(sum(map(ord, name)))
    probs = rng.uniform(0.2, 0.9, size=(N, T, C))  # away from 0 and 1: smooth log
    soft = softmax(rng.normal(size=(N, T, C)))
    dist = softmax(rng.normal(size=(N, T, C)))
    labels = rng.integers(0, C, size=(N, T))
    w_t = rng.uniform(0.5, 2.0, size=T)
    w_nt = rng.uniform(0.5, 2.0, size=(N, T))
    real = rng.normal(size=(N, T, C))
    seq_labels = rng.integers(0, C, size=N)
    seq_real = rng.normal(size=(N, C))
    cases = {
        "se": (SquaredError(), real, rng.normal(size=(N, T, C)), None),
        "se_lengths": (SquaredError(), real, rng.normal(size=(N, T, C)), LENGTHS),
        "se_weights_t": (SquaredError(w_t), real, rng.normal(size=(N, T, C)), LENGTHS),
        "se_weights_nt": (SquaredError(w_nt), real, rng.normal(size=(N, T, C)), None),
        "ce_labels": (CrossEntropy(), probs, labels, None),
        "ce_labels_lengths": (CrossEntropy(w_t), probs, labels, LENGTHS),
        "ce_dist": (CrossEntropy(), probs, dist, None),
        "ce_dist_lengths": (CrossEntropy(w_nt), probs, dist, LENGTHS),
        "bce": (BinaryCrossEntropy(), probs, rng.uniform(size=(N, T, C)), None),
        "bce_lengths": (BinaryCrossEntropy(w_t), probs, rng.uniform(size=(N, T, C)), LENGTHS),
        "last_se": (LastStep(SquaredError()), real, seq_real, None),
        "last_se_lengths": (LastStep("mse"), real, seq_real, LENGTHS),
        "last_ce_lengths": (LastStep(CrossEntropy()), soft, seq_labels, LENGTHS),
        "pooled_se": (PooledMean(SquaredError()), real, seq_real, None),
        "pooled_se_lengths": (PooledMean(SquaredError()), real, seq_real, LENGTHS),
        "pooled_ce_lengths": (PooledMean(CrossEntropy()), soft, seq_labels, LENGTHS),
        "pooled_bce": (PooledMean(BinaryCrossEntropy()), probs, rng.uniform(size=(N, C)), LENGTHS),
    }
    return cases[name]


CASES = [
    "se", "se_lengths", "se_weights_t", "se_weights_nt", "ce_labels", "ce_labels_lengths",
    "ce_dist", "ce_dist_lengths", "bce", "bce_lengths", "last_se", "last_se_lengths",
    "last_ce_lengths", "pooled_se", "pooled_se_lengths", "pooled_ce_lengths", "pooled_bce",
]


@pytest.mark.parametrize("name", CASES)
def test_gradient_matches_finite_differences(name):
    div, y, d, lengths = make_case(name)
    value, dy = div(y, d, lengths=lengths)
    assert isinstance(value, float)
    assert dy.shape == y.shape and dy.dtype == y.dtype
    num = fd_grad(lambda x: div(x, d, lengths=lengths)[0], y)
    assert rel_err(dy, num) < 1e-7
    if lengths is not None:
        pad = np.arange(T)[None, :] >= lengths[:, None]
        assert np.all(np.asarray(dy)[pad] == 0)
        if isinstance(dy, LogitGradient):
            assert np.all(dy.dz[pad] == 0)


@pytest.mark.parametrize("name", [c for c in CASES if "lengths" in c])
def test_padding_is_never_read(name):
    """NaN outputs and junk labels at padded steps change nothing."""
    div, y, d, lengths = make_case(name)
    value, dy = div(y, d, lengths=lengths)
    pad = np.arange(T)[None, :] >= lengths[:, None]
    y_junk = y.copy()
    y_junk[pad] = np.nan
    d_junk = np.array(d, copy=True)
    if d_junk.shape[:2] == (N, T):
        d_junk[pad] = -1 if d_junk.dtype.kind == "i" else np.nan
    value2, dy2 = div(y_junk, d_junk, lengths=lengths)
    assert value2 == value
    np.testing.assert_array_equal(np.asarray(dy2), np.asarray(dy))


def test_value_is_mean_over_sequences_of_per_sequence_sums():
    """Each sequence alone gives value_n; the batch gives mean_n value_n."""
    div, y, d, lengths = make_case("ce_labels_lengths")
    w = div.weights
    singles = [
        CrossEntropy(w)(y[n : n + 1], d[n : n + 1], lengths=lengths[n : n + 1])[0]
        for n in range(N)
    ]
    assert div(y, d, lengths=lengths)[0] == pytest.approx(np.mean(singles), rel=1e-14)


# ---------------------------------------------------------------------------
# hand-worked values


def test_squared_error_by_hand():
    y = np.array([[[1.0, 2.0]], [[0.0, 0.0]]])  # N=2, T=1, C=2
    d = np.array([[[0.0, 0.0]], [[1.0, 1.0]]])
    value, dy = SquaredError()(y, d)
    # per-sequence: 1^2 + 2^2 = 5 and 1^2 + 1^2 = 2; mean over N=2: 7/2
    assert value == 3.5
    # 2 (y - d) / N = y - d
    np.testing.assert_array_equal(dy, [[[1.0, 2.0]], [[-1.0, -1.0]]])


def test_squared_error_weights_and_lengths_by_hand():
    y = np.array([[[1.0], [2.0], [5.0]], [[3.0], [0.0], [7.0]]])  # N=2, T=3, C=1
    d = np.zeros_like(y)
    value, dy = SquaredError(weights=[1.0, 0.5, 2.0])(y, d, lengths=[3, 1])
    # seq 0: 1*1 + 0.5*4 + 2*25 = 53; seq 1 (one valid step): 1*9 = 9; (53 + 9)/2 = 31
    assert value == 31.0
    # dy = w * 2 y / N = w * y: seq 0: [1, 1, 10]; seq 1: [3, 0, 0] (padding)
    np.testing.assert_array_equal(dy[..., 0], [[1.0, 1.0, 10.0], [3.0, 0.0, 0.0]])


def test_zero_length_sequence_contributes_nothing():
    y = np.array([[[1.0]], [[4.0]]])
    d = np.zeros_like(y)
    value, dy = SquaredError()(y, d, lengths=[1, 0])
    # only sequence 0: 1^2 = 1, still divided by N = 2
    assert value == 0.5
    np.testing.assert_array_equal(dy[..., 0], [[1.0], [0.0]])


def test_cross_entropy_by_hand():
    y = np.array([[[0.5, 0.25, 0.25], [0.125, 0.625, 0.25]]])  # N=1, T=2, C=3
    value, dy = CrossEntropy()(y, np.array([[0, 2]]))
    # -log 0.5 - log 0.25 = log 2 + log 4 = log 8
    assert value == pytest.approx(np.log(8.0), rel=1e-15)
    # -d / y: [-1/0.5, 0, 0], [0, 0, -1/0.25]
    np.testing.assert_array_equal(dy, [[[-2.0, 0, 0], [0, 0, -4.0]]])
    # y - d: [0.5 - 1, 0.25, 0.25], [0.125, 0.625, 0.25 - 1]
    np.testing.assert_array_equal(dy.dz, [[[-0.5, 0.25, 0.25], [0.125, 0.625, -0.75]]])
    assert dy.activation == "softmax"


def test_binary_cross_entropy_by_hand():
    y = np.array([[[0.5, 0.75]], [[0.25, 0.5]]])  # N=2, T=1, C=2
    d = np.array([[[1.0, 0.0]], [[0.0, 0.5]]])
    value, dy = BinaryCrossEntropy()(y, d)
    # seq 0: -log 0.5 - log 0.25 = log 8; seq 1: -log 0.75 - (0.5 log 0.5 + 0.5 log 0.5) = log(4/3) + log 2
    expected = (np.log(8.0) + np.log(4 / 3) + np.log(2.0)) / 2
    assert value == pytest.approx(expected, rel=1e-15)
    # (-d/y + (1-d)/(1-y)) / 2: seq 0: [-2, 4]/2; seq 1: [4/3, -1 + 1]/2
    np.testing.assert_allclose(dy, [[[-1.0, 2.0]], [[2 / 3, 0.0]]], rtol=1e-15)
    # (y - d) / 2
    np.testing.assert_array_equal(dy.dz, [[[-0.25, 0.375]], [[0.125, 0.0]]])
    assert dy.activation == "sigmoid"


def test_last_step_by_hand():
    y = np.array([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]])  # N=2, T=3, C=1
    d = np.array([[0.0], [1.0]])
    value, dy = LastStep(SquaredError())(y, d, lengths=[2, 3])
    # last steps: y[0, 1] = 2 and y[1, 2] = 6: (2^2 + 5^2)/2 = 14.5
    assert value == 14.5
    # 2 (y - d)/N = y - d at those steps: 2 and 5
    np.testing.assert_array_equal(dy[..., 0], [[0.0, 2.0, 0.0], [0.0, 0.0, 5.0]])
    # without lengths: the last step T-1: (3^2 + 5^2)/2 = 17
    assert LastStep(SquaredError())(y, d)[0] == 17.0


def test_pooled_mean_by_hand_is_not_a_sum_over_steps():
    y = np.array([[[1.0], [3.0]]])  # N=1, T=2, C=1
    d = np.array([[0.0]])
    value, dy = PooledMean(SquaredError())(y, d)
    # m = (1 + 3)/2 = 2, value = 2^2 = 4; dy(t) = 2 m / len = 2 at both steps
    assert value == 4.0
    np.testing.assert_array_equal(dy[..., 0], [[2.0, 2.0]])
    # the per-step decomposition gives 1^2 + 3^2 = 10 (or 5 averaged): not 4
    per_step = SquaredError()(y, np.zeros_like(y))[0]
    assert per_step == 10.0 and per_step / 2 != value


# ---------------------------------------------------------------------------
# LogitGradient: the fused gradient w.r.t. the softmax/sigmoid pre-activation


def softmax_vjp(y, g):
    """J^T g for y = softmax(z): y * (g - sum_c y_c g_c)."""
    return y * (g - np.sum(y * g, axis=-1, keepdims=True))


@pytest.mark.parametrize("targets", ["labels", "dist"])
def test_cross_entropy_dz_is_softmax_vjp_and_logit_gradient(targets):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(N, T, C))
    d = rng.integers(0, C, size=(N, T)) if targets == "labels" else softmax(rng.normal(size=(N, T, C)))
    div = CrossEntropy(weights=rng.uniform(0.5, 2, size=T))
    _, dy = div(softmax(z), d, lengths=LENGTHS)
    assert isinstance(dy, LogitGradient) and isinstance(dy, np.ndarray)
    np.testing.assert_allclose(dy.dz, softmax_vjp(softmax(z), np.asarray(dy)), rtol=1e-12, atol=1e-15)
    num = fd_grad(lambda x: div(softmax(x), d, lengths=LENGTHS)[0], z)
    assert rel_err(dy.dz, num) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_labels_equal_their_one_hot_distributions(dtype, weighted):
    """Labels take a shorter path (the terms at the labels only); it gives what the one-hot
    targets give, to the bit: saturated outputs (y = 0 at a label) and padding holding NaN."""
    rng = np.random.default_rng(5)
    y = softmax(rng.normal(size=(N, T, C)) * 4).astype(dtype)
    labels = rng.integers(0, C, size=(N, T))
    y[0, 1] = 0.0
    y[0, 1, (labels[0, 1] + 1) % C] = 1.0                  # all mass off the label: log(0)
    y[1, 3] = np.nan                                         # a padded step (length 2)
    labels[1, 4] = 99                                        # an out-of-range label, padded too
    one_hot = (np.where(np.arange(T)[None, :] < LENGTHS[:, None], labels, 0)[..., None] == np.arange(C))
    div = CrossEntropy(rng.uniform(0.5, 2.0, size=T) if weighted else None)
    value, dy = div(y, labels, lengths=LENGTHS)
    value_d, dy_d = div(y, one_hot.astype(dtype), lengths=LENGTHS)
    assert value == value_d and np.isfinite(value)
    np.testing.assert_array_equal(np.asarray(dy), np.asarray(dy_d))
    np.testing.assert_array_equal(dy.dz, dy_d.dz)
    assert dy.dtype == dtype and dy.dz.dtype == dtype


def test_cross_entropy_dz_exact_when_saturated():
    """Softmax outputs exactly 0 at the target: dy is clipped, dz stays exact."""
    z = np.array([[[0.0, -800.0, 1.0], [3.0, 2.0, -900.0]]])  # exp(-800) underflows to 0
    y = softmax(z)
    assert y[0, 0, 1] == 0.0 and y[0, 1, 2] == 0.0
    labels = np.array([[1, 2]])
    value, dy = CrossEntropy()(y, labels)
    tiny = np.finfo(np.float64).tiny
    assert np.all(np.isfinite(dy)) and dy[0, 0, 1] == pytest.approx(-1 / tiny, rel=1e-15)
    assert value == pytest.approx(-2 * np.log(tiny), rel=1e-15)
    # torch computes the loss from logits via log-softmax: exact gradient (y - onehot)
    zt = torch.tensor(z[0], requires_grad=True)
    F.cross_entropy(zt, torch.tensor(labels[0]), reduction="sum").backward()
    np.testing.assert_allclose(dy.dz[0], zt.grad.numpy(), rtol=1e-14, atol=0)
    np.testing.assert_allclose(dy.dz[0], y[0] - np.eye(3)[labels[0]], rtol=0, atol=0)
    # back-propagating the clipped dy through the softmax would lose the -1 entirely
    assert softmax_vjp(y, np.asarray(dy))[0, 0, 1] == 0.0


def test_binary_cross_entropy_dz_is_sigmoid_vjp_and_logit_gradient():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(N, T, C))
    d = rng.uniform(size=(N, T, C))
    div = BinaryCrossEntropy()
    _, dy = div(sigmoid(z), d, lengths=LENGTHS)
    s = sigmoid(z)
    np.testing.assert_allclose(dy.dz, s * (1 - s) * np.asarray(dy), rtol=1e-12, atol=1e-15)
    num = fd_grad(lambda x: div(sigmoid(x), d, lengths=LENGTHS)[0], z)
    assert rel_err(dy.dz, num) < 1e-7


def test_binary_cross_entropy_saturated_matches_torch_logits():
    z = np.array([[[40.0, -40.0, 0.3]]])  # sigmoid(40) == 1.0 exactly in float64
    y = sigmoid(z)
    assert y[0, 0, 0] == 1.0
    d = np.array([[[0.0, 1.0, 0.5]]])
    _, dy = BinaryCrossEntropy()(y, d)
    assert np.all(np.isfinite(dy))
    zt = torch.tensor(z, requires_grad=True)
    F.binary_cross_entropy_with_logits(zt, torch.tensor(d), reduction="sum").backward()
    np.testing.assert_allclose(dy.dz, zt.grad.numpy(), rtol=1e-12, atol=1e-300)


def test_logit_gradient_derived_arrays_drop_dz():
    dy = LogitGradient(np.ones((2, 3, 4)), np.zeros((2, 3, 4)), "softmax")
    assert dy.dz.shape == (2, 3, 4) and dy.activation == "softmax"
    for derived in (dy[0], dy[:, :1], dy * 2, dy.reshape(6, 4)):
        assert derived.dz is None and derived.activation is None
    assert type(np.asarray(dy)) is np.ndarray
    with pytest.raises(ValueError, match=r"expected dz of shape \(2, 3, 4\) like dy, got \(2, 3\)"):
        LogitGradient(np.ones((2, 3, 4)), np.zeros((2, 3)), "softmax")


def test_last_step_keeps_logit_gradient_and_pooled_mean_does_not():
    div, y, d, lengths = make_case("last_ce_lengths")
    _, dy = div(y, d, lengths=lengths)
    assert isinstance(dy, LogitGradient) and dy.activation == "softmax"
    expected = np.zeros_like(y)
    rows, last = np.arange(N), lengths - 1
    expected[rows, last] = (y[rows, last] - np.eye(C)[d]) / N
    np.testing.assert_allclose(dy.dz, expected, rtol=1e-15, atol=0)
    np.testing.assert_allclose(dy.dz, softmax_vjp(y, np.asarray(dy)), rtol=1e-12, atol=1e-15)
    div, y, d, lengths = make_case("pooled_ce_lengths")
    _, dy = div(y, d, lengths=lengths)
    assert type(dy) is np.ndarray


# ---------------------------------------------------------------------------
# against torch


def test_cross_entropy_matches_torch_labels_with_padding():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(N, T, C)) * 3
    labels = rng.integers(0, C, size=(N, T))
    pad = np.arange(T)[None, :] >= LENGTHS[:, None]
    value, dy = CrossEntropy()(softmax(z), labels, lengths=LENGTHS)
    zt = torch.tensor(z, requires_grad=True)
    target = torch.tensor(np.where(pad, -100, labels))  # torch's ignore_index
    loss = F.cross_entropy(zt.reshape(-1, C), target.reshape(-1), reduction="sum") / N
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(dy.dz, zt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_cross_entropy_matches_torch_distributions():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(N, T, C))
    dist = softmax(rng.normal(size=(N, T, C)))
    y = softmax(z)
    value, dy = CrossEntropy()(y, dist)
    zt = torch.tensor(z, requires_grad=True)
    loss = F.cross_entropy(zt.reshape(-1, C), torch.tensor(dist.reshape(-1, C)), reduction="sum") / N
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(dy.dz, zt.grad.numpy(), rtol=1e-12, atol=1e-15)
    # the plain dy against torch's gradient w.r.t. the probabilities
    yt = torch.tensor(y, requires_grad=True)
    (-(torch.tensor(dist) * yt.log()).sum() / N).backward()
    np.testing.assert_allclose(np.asarray(dy), yt.grad.numpy(), rtol=1e-12)


def test_squared_error_matches_torch():
    rng = np.random.default_rng(5)
    y, d = rng.normal(size=(N, T, C)), rng.normal(size=(N, T, C))
    value, dy = SquaredError()(y, d)
    yt = torch.tensor(y, requires_grad=True)
    loss = F.mse_loss(yt, torch.tensor(d), reduction="sum") / N
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-13)
    np.testing.assert_allclose(dy, yt.grad.numpy(), rtol=1e-13)


def test_binary_cross_entropy_matches_torch():
    rng = np.random.default_rng(6)
    y, d = rng.uniform(0.05, 0.95, size=(N, T, C)), rng.uniform(size=(N, T, C))
    value, dy = BinaryCrossEntropy()(y, d)
    yt = torch.tensor(y, requires_grad=True)
    loss = F.binary_cross_entropy(yt, torch.tensor(d), reduction="sum") / N
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(np.asarray(dy), yt.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------
# dtypes, saturation without floating-point errors


def test_float32_keeps_dtype_and_saturates_finitely():
    y = np.array([[[1.0, 0.0], [0.0, 1.0]]], dtype=np.float32)
    value, dy = CrossEntropy(weights=[1e3, 1e3])(y, np.array([[1, 1]]))
    assert dy.dtype == np.float32 and dy.dz.dtype == np.float32
    assert np.all(np.isfinite(dy)) and dy[0, 0, 1] == -np.finfo(np.float32).max
    assert isinstance(value, float) and np.isfinite(value)
    value, dy = BinaryCrossEntropy()(y, np.array([[[0.0, 1.0], [1.0, 0.0]]], dtype=np.float32))
    assert dy.dtype == np.float32 and np.all(np.isfinite(dy)) and np.isfinite(value)


# ---------------------------------------------------------------------------
# errors


def test_bad_outputs():
    with pytest.raises(ValueError, match=r"expected y of shape \(N, T, C\), got \(4, 10\)"):
        SquaredError()(np.zeros((4, 10)), np.zeros((4, 10)))
    with pytest.raises(TypeError, match="expected y of a floating dtype, got int64"):
        SquaredError()(np.zeros((1, 2, 3), dtype=np.int64), np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="at least one sequence"):
        SquaredError()(np.zeros((0, 2, 3)), np.zeros((0, 2, 3)))


def test_bad_target_shapes():
    y = np.zeros((4, 10, 3))
    with pytest.raises(ValueError, match=r"expected d of shape \(4, 10, 3\) like y, got \(4, 10\)"):
        SquaredError()(y, np.zeros((4, 10)))
    with pytest.raises(ValueError, match=r"expected d of shape \(4, 10\) \(class labels\) or \(4, 10, 3\)"):
        CrossEntropy()(y + 0.5, np.zeros((4, 9), dtype=int))
    with pytest.raises(TypeError, match=r"expected integer class labels of shape \(4, 10\), got dtype float64"):
        CrossEntropy()(y + 0.5, np.zeros((4, 10)))
    with pytest.raises(ValueError, match=r"expected per-sequence targets d of shape \(4, 3\) or \(4,\) class labels, got \(4, 10\)"):
        LastStep(CrossEntropy())(y, np.zeros((4, 10), dtype=int))
    with pytest.raises(ValueError, match=r"expected per-sequence targets d of shape \(4, 3\), got \(4,\)"):
        PooledMean(SquaredError())(y, np.zeros(4))


def test_bad_labels_and_target_values():
    y = np.full((2, 3, 4), 0.25)
    labels = np.array([[0, 1, 2], [3, 4, 0]])
    with pytest.raises(ValueError, match=r"expected class labels in \[0, C=4\), got 4 at \(n=1, t=1\)"):
        CrossEntropy()(y, labels)
    # the same label at a padded step is ignored
    assert CrossEntropy()(y, labels, lengths=[3, 1])[0] == pytest.approx(-4 * np.log(0.25) / 2)
    with pytest.raises(ValueError, match="expected class labels in"):
        LastStep(CrossEntropy())(y, np.array([0, -1]))
    with pytest.raises(ValueError, match="expected non-negative target distributions"):
        CrossEntropy()(y, -y)
    with pytest.raises(ValueError, match=r"expected targets d in \[0, 1\]"):
        BinaryCrossEntropy()(y, y * 5)


def test_bad_lengths():
    y, d = np.zeros((2, 3, 1)), np.zeros((2, 3, 1))
    with pytest.raises(ValueError, match=r"expected lengths of shape \(2,\), got \(3,\)"):
        SquaredError()(y, d, lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"expected lengths in \[0, T=3\], got lengths\[1\] = 4"):
        SquaredError()(y, d, lengths=[1, 4])
    with pytest.raises(ValueError, match=r"got lengths\[0\] = -1"):
        SquaredError()(y, d, lengths=[-1, 2])
    with pytest.raises(TypeError, match="expected integer lengths, got dtype float64"):
        SquaredError()(y, d, lengths=[1.0, 2.0])
    for wrapper in (LastStep, PooledMean):
        with pytest.raises(ValueError, match=rf"{wrapper.__name__} expected at least one valid step per sequence, got 0 for sequence 1"):
            wrapper(SquaredError())(y, np.zeros((2, 1)), lengths=[2, 0])


def test_bad_weights():
    with pytest.raises(ValueError, match=r"expected weights of shape \(3,\) or \(2, 3\), got \(4,\)"):
        SquaredError(weights=np.ones(4))(np.zeros((2, 3, 1)), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="non-negative"):
        SquaredError(weights=[1.0, -1.0])
    with pytest.raises(ValueError, match=r"shape \(T,\) or \(N, T\)"):
        SquaredError(weights=np.ones((1, 2, 3)))


def test_registry():
    assert type(dv.get("mse")) is SquaredError and type(dv.get("squared_error")) is SquaredError
    assert type(dv.get("cross_entropy")) is CrossEntropy
    assert type(dv.get("binary_cross_entropy")) is BinaryCrossEntropy
    div = LastStep("cross_entropy")
    assert dv.get(div) is div and type(div.div) is CrossEntropy
    with pytest.raises(ValueError, match=r"expected a Divergence or one of \['binary_cross_entropy', 'cross_entropy', 'mse', 'squared_error'\], got 'l1'"):
        dv.get("l1")
    with pytest.raises(TypeError, match="expected a Divergence, a callable div"):
        dv.get(3)
    plain = lambda y, d, *, lengths=None: (0.0, np.zeros_like(y))  # noqa: E731
    assert dv.get(plain) is plain
    assert set(dv.__all__) == {
        "Divergence", "SquaredError", "CrossEntropy", "BinaryCrossEntropy",
        "LastStep", "PooledMean", "LogitGradient", "get",
    }


def test_squared_error_without_padding_skips_the_masks_and_gives_the_same_numbers():
    """Nothing padded (no lengths, or every length T), nothing weighted: a shorter path;
    it agrees with the masked one (which sums per step first) to rounding."""
    from unrolled.divergences import _PerStep
    rng = np.random.default_rng(3)
    for dtype, rtol in ((np.float32, 1e-6), (np.float64, 1e-14)):
        y, d = rng.normal(size=(4, 9, 3)).astype(dtype), rng.normal(size=(4, 9, 3)).astype(dtype)
        masked_value, masked_dy = _PerStep.__call__(SquaredError(), y, d)
        for lengths in (None, [9, 9, 9, 9]):
            value, dy = SquaredError()(y, d, lengths=lengths)
            assert dy.dtype == dtype
            np.testing.assert_allclose(value, masked_value, rtol=rtol)
            np.testing.assert_allclose(dy, masked_dy, rtol=rtol)
            np.testing.assert_allclose(value, np.sum((y.astype(float) - d) ** 2) / 4, rtol=rtol)
