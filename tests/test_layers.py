"""Every layer against torch.nn + torch.autograd, and against central differences.

A new layer is one new row in LAYERS. Both sides run in train mode from the same weights and the same
global RNG seed, so Dropout draws the same mask in minidl and torch (bernoulli_ on the global RNG).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
import minidl.nn as mnn
from minidl.errors import BackwardError, ConfigError, ShapeError
from tests.oracle import copy_weights, minidl_grads, torch_grads

tnn = torch.nn


@dataclass(frozen=True)
class Row:
    name: str
    ours: Callable[[], mnn.Module]
    theirs: Callable[[], tnn.Module]
    shape: tuple[int, ...] | None = None  # the input's shape after the batch dimension; None: any width
    min_batch: int = 1  # BatchNorm1d needs more than one value per channel
    # BatchNorm over 2 samples is ill-conditioned (each sample is ±1 after normalisation), so in float32 a
    # different operation order than torch's shows at ~2e-5 relative; float64 still checks batch 2 at 1e-10
    min_batch_float32: int = 1


def _seq_ours() -> mnn.Module:
    return mnn.Sequential(mnn.Linear(3, 8), mnn.ReLU(), mnn.Linear(8, 5), mnn.Tanh(), mnn.Linear(5, 2), mnn.Sigmoid())


def _seq_theirs() -> tnn.Module:
    return tnn.Sequential(tnn.Linear(3, 8), tnn.ReLU(), tnn.Linear(8, 5), tnn.Tanh(), tnn.Linear(5, 2), tnn.Sigmoid())


def _mixed(nn) -> list:
    return [nn.Linear(4, 8), nn.BatchNorm1d(8), nn.GELU(), nn.Dropout(0.2), nn.Linear(8, 6), nn.LeakyReLU(0.1),
            nn.Linear(6, 3), nn.LogSoftmax(1)]  # fmt: skip


def _mixed_ours() -> mnn.Module:
    return mnn.Sequential(*_mixed(mnn))


def _mixed_theirs() -> tnn.Module:
    return tnn.Sequential(*_mixed(tnn))


def twin(cls: str, *args, **kwargs) -> tuple[Callable[[], mnn.Module], Callable[[], tnn.Module]]:
    """minidl's and torch.nn's layer of the same name, built with the same arguments."""
    return (lambda: getattr(mnn, cls)(*args, **kwargs)), (lambda: getattr(tnn, cls)(*args, **kwargs))


LAYERS = [
    Row("Linear", *twin("Linear", 5, 3), (5,)),
    Row("Linear-nobias", *twin("Linear", 4, 7, bias=False), (4,)),
    Row("Linear-1x1", *twin("Linear", 1, 1), (1,)),
    Row("ReLU", *twin("ReLU")),
    Row("Tanh", *twin("Tanh")),
    Row("Sigmoid", *twin("Sigmoid")),
    Row("LeakyReLU", *twin("LeakyReLU")),
    Row("LeakyReLU-0.2", *twin("LeakyReLU", 0.2)),
    Row("ELU", *twin("ELU")),
    Row("ELU-alpha0.5", *twin("ELU", alpha=0.5)),
    Row("GELU", *twin("GELU")),
    Row("GELU-tanh", *twin("GELU", approximate="tanh")),
    Row("Softplus", *twin("Softplus")),
    Row("Softplus-beta2-threshold3", *twin("Softplus", 2, 3)),  # inputs cross the threshold
    Row("SiLU", *twin("SiLU")),
    Row("Softmax", *twin("Softmax", 1)),
    Row("Softmax-dim0", *twin("Softmax", 0), (3,)),
    Row("Softmax-3d-last", *twin("Softmax", -1), (3, 4)),
    Row("LogSoftmax", *twin("LogSoftmax", 1)),
    Row("LogSoftmax-3d-mid", *twin("LogSoftmax", 1), (3, 4)),
    Row("Identity", *twin("Identity")),
    Row("Flatten", *twin("Flatten"), (3, 4)),
    Row("Flatten-all", *twin("Flatten", 0), (2, 3, 2)),
    Row("Flatten-middle", *twin("Flatten", 1, 2), (2, 3, 2)),
    Row("Dropout", *twin("Dropout", 0.3)),
    Row("Dropout-0", *twin("Dropout", 0.0)),
    Row("BatchNorm1d", *twin("BatchNorm1d", 4), (4,), min_batch=2, min_batch_float32=4),
    Row("BatchNorm1d-3d", *twin("BatchNorm1d", 3), (3, 5)),
    Row("BatchNorm1d-noaffine", *twin("BatchNorm1d", 4, affine=False), (4,), min_batch=2, min_batch_float32=4),
    Row("BatchNorm1d-nobias", *twin("BatchNorm1d", 4, bias=False), (4,), min_batch=2, min_batch_float32=4),
    Row("BatchNorm1d-cumulative", *twin("BatchNorm1d", 4, momentum=None), (4,), min_batch=2, min_batch_float32=4),
    Row(
        "BatchNorm1d-nostats",
        *twin("BatchNorm1d", 4, track_running_stats=False),
        (4,),
        min_batch=2,
        min_batch_float32=4,
    ),
    Row("Sequential", _seq_ours, _seq_theirs, (3,)),
    Row("Sequential-mixed", _mixed_ours, _mixed_theirs, (4,), min_batch=2, min_batch_float32=4),
]
IDS = [row.name for row in LAYERS]


def _pair(row: Row, dtype: torch.dtype):
    torch.manual_seed(0)
    ours = row.ours().to(dtype=dtype)
    theirs = row.theirs().to(dtype)
    copy_weights(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("row", LAYERS, ids=IDS)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@settings(max_examples=12)  # 34 rows x 2 dtypes: about 800 random cases per run
@given(batch=st.integers(1, 17), width=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_matches_torch(row, dtype, tol, batch, width, seed):
    ours, theirs = _pair(row, dtype)
    batch = max(batch, row.min_batch if dtype == torch.float64 else max(row.min_batch, row.min_batch_float32))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *(row.shape or (width,)), generator=gen, dtype=torch.float64).to(dtype) * 3
    torch.manual_seed(seed)
    g = torch.randn(theirs(x).shape, generator=gen, dtype=torch.float64).to(dtype)
    copy_weights(ours, theirs)  # undo the shape probe's update of BatchNorm's running statistics
    out_t, gx_t, grads_t = torch_grads(theirs, x, g, seed=seed)
    out, gx, grads = minidl_grads(ours, x, g, seed=seed)
    torch.testing.assert_close(out, out_t, atol=tol, rtol=tol)
    torch.testing.assert_close(gx, gx_t, atol=tol, rtol=tol)
    assert grads.keys() == grads_t.keys()
    for key in grads:
        torch.testing.assert_close(grads[key], grads_t[key], atol=tol, rtol=tol, msg=f"{row.name}: grad of {key}")
    state, state_t = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(state_t)
    for key in state:  # buffers too: BatchNorm's running statistics after one training step
        torch.testing.assert_close(state[key], state_t[key], atol=tol, rtol=tol, msg=f"{row.name}: {key}")


@pytest.mark.parametrize("row", LAYERS, ids=IDS)
@pytest.mark.parametrize("batch", [1, 4])
def test_central_differences(row, batch):
    torch.manual_seed(1)
    layer = row.ours().double()
    x = torch.randn(max(batch, row.min_batch), *(row.shape or (5,)), dtype=torch.float64)
    assert minidl.gradcheck(layer, x)


@pytest.mark.parametrize("row", LAYERS, ids=IDS)
def test_backward_before_forward_names_the_layer(row):
    layer = row.ours()
    with pytest.raises(BackwardError, match="backward called before forward"):
        layer.backward(torch.zeros(2, *(row.shape or (5,))))


@pytest.mark.parametrize(
    "make",
    [
        mnn.ReLU, mnn.LeakyReLU, mnn.ELU, mnn.Tanh, mnn.Sigmoid, mnn.GELU, lambda: mnn.GELU("tanh"), mnn.Softplus,
        lambda: mnn.Softplus(beta=0.5, threshold=1e6), mnn.SiLU, lambda: mnn.Softmax(1), lambda: mnn.LogSoftmax(1),
    ],
    ids=["ReLU", "LeakyReLU", "ELU", "Tanh", "Sigmoid", "GELU", "GELU-tanh", "Softplus", "Softplus-nothreshold",
         "SiLU", "Softmax", "LogSoftmax"],
)  # fmt: skip
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stable_at_large_inputs(make, dtype):
    """Finite at ±1e4 in forward and backward, and equal to torch wherever torch is finite."""
    ours = make()
    x = torch.tensor([[-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4]], dtype=dtype)
    g = torch.linspace(-1, 1, x.shape[1], dtype=dtype).unsqueeze(0)
    out, gx, _ = minidl_grads(ours, x, g)
    assert torch.isfinite(out).all() and torch.isfinite(gx).all()
    out_t, gx_t, _ = torch_grads(_torch_twin(ours), x, g)
    finite = torch.isfinite(out_t) & torch.isfinite(gx_t)  # torch's Softplus overflows without its threshold
    torch.testing.assert_close(out[finite], out_t[finite])
    torch.testing.assert_close(gx[finite], gx_t[finite])


def _torch_twin(layer: mnn.Module) -> tnn.Module:
    """The torch.nn module with the same hyperparameters as a minidl activation."""
    kinds = {
        mnn.LeakyReLU: lambda m: tnn.LeakyReLU(m.negative_slope),
        mnn.ELU: lambda m: tnn.ELU(m.alpha),
        mnn.GELU: lambda m: tnn.GELU(m.approximate),
        mnn.Softplus: lambda m: tnn.Softplus(m.beta, m.threshold),
        mnn.Softmax: lambda m: tnn.Softmax(m.dim),
        mnn.LogSoftmax: lambda m: tnn.LogSoftmax(m.dim),
    }
    make = kinds.get(type(layer), lambda m: getattr(tnn, type(m).__name__)())
    return make(layer)


def test_linear_accepts_leading_dimensions():
    ours, theirs = _pair(Row("Linear", lambda: mnn.Linear(4, 3), lambda: tnn.Linear(4, 3)), torch.float64)
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    g = torch.randn(2, 5, 3, dtype=torch.float64)
    out_t, gx_t, grads_t = torch_grads(theirs, x, g)
    out, gx, grads = minidl_grads(ours, x, g)
    torch.testing.assert_close(out, out_t, atol=1e-12, rtol=0)
    torch.testing.assert_close(gx, gx_t, atol=1e-12, rtol=0)
    torch.testing.assert_close(grads["weight"], grads_t["weight"], atol=1e-12, rtol=0)


def test_gradients_accumulate_until_zeroed():
    layer = mnn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    g = torch.randn(4, 2, dtype=torch.float64)
    layer(x)
    layer.backward(g)
    once = layer.weight.grad.clone()
    layer(x)
    layer.backward(g)
    torch.testing.assert_close(layer.weight.grad, 2 * once)
    layer.zero_grad(set_to_none=False)
    assert torch.count_nonzero(layer.weight.grad) == 0
    layer.zero_grad()  # torch's default: set_to_none=True
    assert layer.weight.grad is None and layer.bias.grad is None


def test_sigmoid_gradient_is_sigma_times_one_minus_sigma():
    # the public implementations of the course exercise get this one wrong
    x = torch.tensor([[-2.0, 0.0, 3.0]], dtype=torch.float64)
    layer = mnn.Sigmoid()
    layer(x)
    s = torch.sigmoid(x)
    torch.testing.assert_close(layer.backward(torch.ones_like(x)), s * (1 - s), atol=1e-15, rtol=0)


@pytest.mark.parametrize(
    ("make", "expected"),
    [(mnn.ReLU, 0.0), (mnn.LeakyReLU, 0.01), (lambda: mnn.ELU(alpha=0.5), 0.5), (mnn.GELU, 0.5), (mnn.SiLU, 0.5)],
    ids=["ReLU", "LeakyReLU", "ELU", "GELU", "SiLU"],
)
def test_gradient_at_zero_is_torchs(make, expected):
    layer = make()
    zeros = torch.zeros(1, 3, dtype=torch.float64)
    _, grad, _ = minidl_grads(layer, zeros, torch.ones_like(zeros))
    _, grad_t, _ = torch_grads(_torch_twin(layer), zeros, torch.ones_like(zeros))
    assert torch.equal(grad, torch.full_like(zeros, expected))
    assert torch.equal(grad, grad_t)


# -- Dropout -----------------------------------------------------------------------------------------


def test_dropout_is_the_identity_in_eval_mode():
    layer = mnn.Dropout(0.5).eval()
    x = torch.randn(4, 5)
    state = torch.get_rng_state()
    assert torch.equal(layer(x), x)
    assert torch.equal(layer.backward(x * 2), x * 2)
    assert torch.equal(torch.get_rng_state(), state)  # no random number drawn


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_preserves_the_mean_and_backward_uses_the_forward_mask(p):
    layer = mnn.Dropout(p, generator=123)
    x = torch.ones(100_000, dtype=torch.float64)
    y = layer(x)
    mask = y != 0
    assert abs(y.mean().item() - 1) < 0.02  # sampling sd is √(p/(1−p))/√n ≤ 0.007 here
    assert abs(mask.double().mean().item() - (1 - p)) < 0.01
    grad = layer.backward(torch.ones_like(x))
    assert torch.equal(grad, mask.double() / (1 - p))  # exactly the survivors, scaled by 1/(1 − p)
    assert torch.equal(y, grad)


def test_dropout_matches_torch_given_the_same_mask():
    """With its own generator the mask differs from torch's; give torch's autograd the same mask."""
    layer = mnn.Dropout(0.4, generator=torch.Generator().manual_seed(5))
    x = torch.randn(6, 7, dtype=torch.float64)
    g = torch.randn(6, 7, dtype=torch.float64)
    y = layer(x)
    gx = layer.backward(g)
    mask = (y != 0).double()
    xt = x.clone().requires_grad_(True)
    yt = xt * (mask / 0.6)
    yt.backward(g)
    torch.testing.assert_close(y, yt.detach(), atol=0, rtol=0)
    torch.testing.assert_close(gx, xt.grad, atol=0, rtol=0)


def test_dropout_seed_and_generator_state():
    x = torch.ones(50, 50)
    first, same, other = mnn.Dropout(0.5, generator=7), mnn.Dropout(0.5, generator=7), mnn.Dropout(0.5, generator=8)
    state = first.generator.get_state()
    a = first(x)
    assert torch.equal(a, same(x))
    assert not torch.equal(a, other(x))
    assert not torch.equal(a, first(x))  # a fresh mask every forward
    first.generator.set_state(state)  # what a resumed run does with the saved state
    assert torch.equal(first(x), a)


def test_dropout_with_the_global_rng_matches_torch_nn_dropout():
    x = torch.randn(9, 11)
    torch.manual_seed(3)
    ours = mnn.Dropout(0.25)(x)
    torch.manual_seed(3)
    assert torch.equal(ours, tnn.Dropout(0.25)(x))


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", True])  # p = 1 drops everything, as torch
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ConfigError, match=r"Dropout: dropout probability p must be in \[0, 1\], got p="):
        mnn.Dropout(p)


def test_dropout_gradcheck_in_train_mode_with_its_own_generator():
    layer = mnn.Dropout(0.5, generator=11)
    state = layer.generator.get_state()
    assert minidl.gradcheck(layer, torch.randn(5, 4, dtype=torch.float64))
    assert torch.equal(layer.generator.get_state(), state)  # gradcheck leaves the generator as it found it


# -- BatchNorm1d -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [({}, (8, 3)), ({"momentum": None}, (8, 3)), ({"momentum": 0.5}, (5, 3, 4)), ({"eps": 1e-3}, (2, 3))],
    ids=["default", "cumulative", "3d-momentum0.5", "eps-batch2"],
)
def test_batchnorm_running_stats_then_eval_match_torch(kwargs, shape):
    ours, theirs = _pair(Row("bn", *twin("BatchNorm1d", 3, **kwargs)), torch.float64)
    gen = torch.Generator().manual_seed(0)
    for step in range(5):  # a few training steps with shifted, scaled data
        x = torch.randn(shape, generator=gen, dtype=torch.float64) * (step + 1) + step
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-10, rtol=1e-10)
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, atol=1e-12, rtol=1e-12, msg=key)
    assert int(ours.num_batches_tracked) == 5 and ours.num_batches_tracked.dtype == torch.int64
    ours.eval(), theirs.eval()
    before = {key: value.clone() for key, value in ours.state_dict().items()}
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    out_t, gx_t, grads_t = torch_grads(theirs, x, g)
    out, gx, grads = minidl_grads(ours, x, g)
    torch.testing.assert_close(out, out_t, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(gx, gx_t, atol=1e-10, rtol=1e-10)
    for key in grads_t:
        torch.testing.assert_close(grads[key], grads_t[key], atol=1e-10, rtol=1e-10)
    assert all(torch.equal(value, before[key]) for key, value in ours.state_dict().items())  # eval changes nothing
    assert minidl.gradcheck(ours, x)  # eval mode: the affine map with the running statistics


def test_batchnorm_state_dict_moves_both_ways():
    theirs = tnn.BatchNorm1d(4)
    theirs(torch.randn(10, 4) * 3 + 1)  # non-trivial running statistics
    with torch.no_grad():
        theirs.weight.uniform_(), theirs.bias.uniform_()
    ours = mnn.BatchNorm1d(4)
    ours.load_state_dict(theirs.state_dict())
    assert list(ours.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value) and ours.state_dict()[key].dtype == value.dtype
    ours(torch.randn(6, 4))  # one more step on our side, then back to torch
    back = tnn.BatchNorm1d(4)
    back.load_state_dict(ours.state_dict())
    assert int(back.num_batches_tracked) == 2
    for key, value in ours.state_dict().items():
        assert torch.equal(back.state_dict()[key], value)
    assert list(mnn.BatchNorm1d(4, track_running_stats=False).state_dict()) == ["weight", "bias"]
    assert list(mnn.BatchNorm1d(4, affine=False).state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]


def test_batchnorm_without_running_stats_uses_the_batch_in_eval_mode():
    ours, theirs = _pair(Row("bn", *twin("BatchNorm1d", 3, track_running_stats=False)), torch.float64)
    ours.eval(), theirs.eval()
    x = torch.randn(7, 3, dtype=torch.float64) * 2 + 5
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-12, rtol=1e-12)
    assert ours(x).mean(0).abs().max() < 1e-12


def test_batchnorm_errors_name_the_layer_and_shape():
    layer = mnn.BatchNorm1d(3)
    with pytest.raises(ShapeError, match=r"BatchNorm1d\(3, .*\): expected input of shape \(N, 3\) .* got \(4, 5\)"):
        layer(torch.zeros(4, 5))
    with pytest.raises(ShapeError, match=r"got \(4,\)"):
        layer(torch.zeros(4))
    with pytest.raises(ShapeError, match=r"more than 1 value per channel.*\(1, 3\)"):
        layer(torch.zeros(1, 3))
    layer.eval()
    assert layer(torch.zeros(1, 3)).shape == (1, 3)  # a single sample is fine with running statistics
    with pytest.raises(ConfigError, match="num_features must be a positive integer, got 0"):
        mnn.BatchNorm1d(0)


def test_batchnorm_repr_is_torchs():
    assert repr(mnn.BatchNorm1d(3)) == repr(tnn.BatchNorm1d(3))
    assert repr(mnn.BatchNorm1d(5, momentum=None, affine=False)) == repr(
        tnn.BatchNorm1d(5, momentum=None, affine=False)
    )


# -- names, reprs and bad arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["LeakyReLU", "ELU", "GELU", "Softplus", "SiLU", "Identity", "Flatten", "ReLU", "Tanh", "Sigmoid"]
)
def test_repr_is_torchs(name):
    assert repr(getattr(mnn, name)()) == repr(getattr(tnn, name)())


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
def test_softmax_repr_is_torchs(name):
    assert repr(getattr(mnn, name)(dim=-1)) == repr(getattr(tnn, name)(dim=-1))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: mnn.LeakyReLU("0.1"), ConfigError, r"LeakyReLU: negative_slope must be a number, got '0.1'"),
        (lambda: mnn.ELU(alpha=None), ConfigError, r"ELU: alpha must be a number, got None"),
        (lambda: mnn.GELU("fast"), ConfigError, r"GELU: approximate must be 'none' or 'tanh', got 'fast'"),
        (lambda: mnn.Softplus(beta="2"), ConfigError, r"Softplus: beta must be a number"),
        (lambda: mnn.Softplus(beta=0), ConfigError, r"Softplus: beta must be non-zero"),
        (lambda: mnn.Softmax(dim=1.0), ConfigError, r"Softmax: dim must be an integer, got 1.0"),
        (
            lambda: mnn.Softmax(dim=2)(torch.zeros(3, 4)),
            ShapeError,
            r"Softmax\(dim=2\): dim 2 is out of range .*\(3, 4\)",
        ),
        (lambda: mnn.Flatten(2)(torch.zeros(3, 4)), ShapeError, r"Flatten\(start_dim=2, end_dim=-1\): cannot flatten"),
        (lambda: mnn.Dropout(0.5, generator="x"), ConfigError, r"Dropout: generator must be"),
    ],
    ids=[
        "LeakyReLU",
        "ELU",
        "GELU",
        "Softplus",
        "Softplus-beta0",
        "Softmax-dim",
        "Softmax-range",
        "Flatten",
        "Dropout-generator",
    ],
)
def test_bad_arguments_raise_errors_naming_the_layer(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("name", ["leaky_relu", "elu", "gelu", "softplus", "silu", "relu", "tanh", "sigmoid"])
def test_every_activation_name_builds_an_mlp(name):
    model = mnn.mlp(2, f"5:{name},3:{name}", 1)
    assert isinstance(model[1], mnn.ACTIVATIONS[name]) and isinstance(model[3], mnn.ACTIVATIONS[name])
    assert model(torch.randn(4, 2)).shape == (4, 1)


def test_unknown_activation_lists_the_new_names():
    with pytest.raises(ConfigError, match="choose from elu, gelu, identity, leaky_relu, linear, relu, sigmoid, silu"):
        mnn.parse_hidden("25:swish")
