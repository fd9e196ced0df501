"""Every loss against torch.nn + torch.autograd and central differences; stability; errors.

A new loss is one new row in LOSSES: (name, builder of the loss from a namespace (minidl.nn or torch.nn),
kind of data). W and PW stand for per-output tensors built to the data's width and dtype.
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
from minidl.errors import ConfigError, DataError, ShapeError
from tests.oracle import minidl_loss, torch_loss

tnn = torch.nn
W, PW = "<weight>", "<pos_weight>"  # placeholders for per-output weights


@dataclass(frozen=True)
class Row:
    name: str
    build: Callable[..., mnn.Module]  # (namespace, width, dtype) -> loss
    kind: str  # "regression", "probability", "hard-probability", "logits" or "classes"


def loss(cls: str, **kwargs) -> Callable[..., mnn.Module]:
    """Build ``cls`` from minidl.nn or torch.nn with the same arguments, weights sized to the data."""

    def build(nn, width: int, dtype: torch.dtype):
        fills = {W: torch.linspace(0.5, 2.0, width), PW: torch.linspace(3.0, 0.3, width)}
        resolved = {k: fills[v].to(dtype) if isinstance(v, str) and v in fills else v for k, v in kwargs.items()}
        return getattr(nn, cls)(**resolved)

    return build


LOSSES = [
    Row("MSELoss-mean", loss("MSELoss"), "regression"),
    Row("MSELoss-sum", loss("MSELoss", reduction="sum"), "regression"),
    Row("MSELoss-none", loss("MSELoss", reduction="none"), "regression"),
    Row("L1Loss-mean", loss("L1Loss"), "regression"),
    Row("L1Loss-sum", loss("L1Loss", reduction="sum"), "regression"),
    Row("BCELoss-mean", loss("BCELoss"), "probability"),
    Row("BCELoss-sum", loss("BCELoss", reduction="sum"), "probability"),
    Row("BCELoss-none", loss("BCELoss", reduction="none"), "probability"),
    Row("BCELoss-weight", loss("BCELoss", weight=W), "probability"),
    Row("BCELoss-hard-targets", loss("BCELoss"), "hard-probability"),
    Row("BCEWithLogitsLoss-mean", loss("BCEWithLogitsLoss"), "logits"),
    Row("BCEWithLogitsLoss-sum", loss("BCEWithLogitsLoss", reduction="sum"), "logits"),
    Row("BCEWithLogitsLoss-none", loss("BCEWithLogitsLoss", reduction="none"), "logits"),
    Row("BCEWithLogitsLoss-weight", loss("BCEWithLogitsLoss", weight=W), "logits"),
    Row("BCEWithLogitsLoss-pos_weight", loss("BCEWithLogitsLoss", pos_weight=PW), "logits"),
    Row(
        "BCEWithLogitsLoss-both-none",
        loss("BCEWithLogitsLoss", weight=W, pos_weight=PW, reduction="none"),
        "logits",
    ),
    Row("CrossEntropyLoss-mean", loss("CrossEntropyLoss"), "classes"),
    Row("CrossEntropyLoss-sum", loss("CrossEntropyLoss", reduction="sum"), "classes"),
    Row("CrossEntropyLoss-none", loss("CrossEntropyLoss", reduction="none"), "classes"),
    Row("CrossEntropyLoss-weight", loss("CrossEntropyLoss", weight=W), "classes"),
    Row("CrossEntropyLoss-smoothing", loss("CrossEntropyLoss", label_smoothing=0.1), "classes"),
    Row("CrossEntropyLoss-smoothing-weight", loss("CrossEntropyLoss", weight=W, label_smoothing=0.3), "classes"),
    Row(
        "CrossEntropyLoss-smoothing-weight-sum",
        loss("CrossEntropyLoss", weight=W, label_smoothing=0.2, reduction="sum"),
        "classes",
    ),
    Row("CrossEntropyLoss-ignore", loss("CrossEntropyLoss"), "classes-ignore"),
    Row(
        "CrossEntropyLoss-ignore-all-options",
        loss("CrossEntropyLoss", weight=W, label_smoothing=0.25),
        "classes-ignore",
    ),
    Row(
        "CrossEntropyLoss-ignore-none",
        loss("CrossEntropyLoss", weight=W, label_smoothing=0.1, reduction="none"),
        "classes-ignore",
    ),
    Row("CrossEntropyLoss-ignore-class1", loss("CrossEntropyLoss", ignore_index=1, label_smoothing=0.1), "classes"),
    Row("HuberLoss-mean", loss("HuberLoss"), "regression"),
    Row("HuberLoss-sum", loss("HuberLoss", reduction="sum"), "regression"),
    Row("HuberLoss-none-delta0.5", loss("HuberLoss", reduction="none", delta=0.5), "regression"),
    Row("HuberLoss-delta2", loss("HuberLoss", delta=2.0), "regression"),
    Row("SmoothL1Loss-mean", loss("SmoothL1Loss"), "regression"),
    Row("SmoothL1Loss-sum-beta0.5", loss("SmoothL1Loss", reduction="sum", beta=0.5), "regression"),
    Row("SmoothL1Loss-none-beta2", loss("SmoothL1Loss", reduction="none", beta=2.0), "regression"),
    Row("SmoothL1Loss-beta0", loss("SmoothL1Loss", beta=0.0), "regression"),
]
IDS = [row.name for row in LOSSES]


def make_data(kind: str, batch: int, width: int, gen: torch.Generator, dtype: torch.dtype):
    """(input, target) of the kind a loss takes, drawn from ``gen`` in float64 then cast."""
    x = torch.randn(batch, width, generator=gen, dtype=torch.float64) * 2
    if kind.startswith("classes"):
        target = torch.randint(0, width, (batch,), generator=gen)
        if kind == "classes-ignore":
            target[torch.rand(batch, generator=gen) < 0.3] = -100
        return (x * 1.5).to(dtype), target
    y = torch.rand(batch, width, generator=gen, dtype=torch.float64)
    if kind == "regression":
        y = torch.randn(batch, width, generator=gen, dtype=torch.float64) * 2
    elif kind == "probability":
        x = torch.sigmoid(x)
    elif kind == "hard-probability":
        x, y = torch.sigmoid(x), (y > 0.5).double()
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("row", LOSSES, ids=IDS)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@settings(max_examples=12)  # 35 rows x 2 dtypes: about 800 random cases per run
@given(batch=st.integers(1, 20), width=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_matches_torch(row, dtype, tol, batch, width, seed):
    gen = torch.Generator().manual_seed(seed)
    x, target = make_data(row.kind, batch, width, gen, dtype)
    ours, theirs = row.build(mnn, width, dtype), row.build(tnn, width, dtype)
    shape = (batch,) if row.kind.startswith("classes") else (batch, width)
    g = torch.randn(shape if ours.reduction == "none" else (), generator=gen, dtype=torch.float64).to(dtype)
    expected, expected_grad = torch_loss(theirs, x, target, g)
    value, grad = minidl_loss(ours, x, target, g)
    assert value.shape == expected.shape and grad.shape == x.shape
    # equal_nan: every CrossEntropyLoss target may be ignored, then the mean is 0/0 in both
    torch.testing.assert_close(value, expected, atol=tol, rtol=tol, equal_nan=True)
    torch.testing.assert_close(grad, expected_grad, atol=tol, rtol=tol)


@pytest.mark.parametrize("row", LOSSES, ids=IDS)
def test_central_differences(row):
    gen = torch.Generator().manual_seed(0)
    x, target = make_data(row.kind, 6, 3, gen, torch.float64)
    assert minidl.gradcheck(row.build(mnn, 3, torch.float64), x, target)


@pytest.mark.parametrize("row", LOSSES, ids=IDS)
def test_default_backward_is_grad_output_one(row):
    """The trainer calls ``loss.backward()`` with no argument: the same as a grad_output of 1."""
    x, target = make_data(row.kind, 5, 3, torch.Generator().manual_seed(1), torch.float64)
    ours = row.build(mnn, 3, torch.float64)
    if ours.reduction == "none":
        return
    ours(x, target)
    implicit = ours.backward()
    ours(x, target)
    assert torch.equal(implicit, ours.backward(torch.tensor(1.0, dtype=torch.float64)))


def test_weighted_losses_have_torchs_state_dict():
    w, pw = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 3.0])
    assert list(mnn.BCEWithLogitsLoss(w, pos_weight=pw).state_dict()) == ["weight", "pos_weight"]
    tnn.BCEWithLogitsLoss(w, pos_weight=pw).load_state_dict(mnn.BCEWithLogitsLoss(w, pos_weight=pw).state_dict())
    assert list(mnn.CrossEntropyLoss(w).state_dict()) == list(tnn.CrossEntropyLoss(w).state_dict())
    assert list(mnn.BCELoss().state_dict()) == list(tnn.BCELoss().state_dict()) == []


# -- stability --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("name", "x", "target"),
    [
        ("BCEWithLogitsLoss", [[-1e4, 1e4, -1e4, 1e4, 0.0]], [[0.0, 1.0, 1.0, 0.0, 0.5]]),
        ("CrossEntropyLoss", [[-1e4, 0.0, 1e4], [1e4, 1e4, -1e4], [1e4, -1e4, 0.0]], [0, 1, 2]),
        ("BCELoss", [[0.0, 1.0, 0.0, 1.0, 1e-30]], [[1.0, 0.0, 0.0, 1.0, 1.0]]),  # log clamped at −100
        ("HuberLoss", [[-1e4, 1e4, 0.0]], [[1e4, -1e4, 0.0]]),
        ("SmoothL1Loss", [[-1e4, 1e4, 0.0]], [[1e4, -1e4, 0.0]]),
    ],
)
def test_stable_at_extreme_inputs(name, x, target, dtype):
    x = torch.tensor(x, dtype=dtype)
    target = torch.tensor(target, dtype=torch.long if name == "CrossEntropyLoss" else dtype)
    g = torch.tensor(1.0, dtype=dtype)
    value, grad = minidl_loss(getattr(mnn, name)(), x, target, g)
    expected, expected_grad = torch_loss(getattr(tnn, name)(), x, target, g)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


def test_cross_entropy_with_every_target_ignored_is_nan_with_zero_gradient_as_torch():
    x, target = torch.randn(3, 4, dtype=torch.float64), torch.full((3,), -100)
    value, grad = minidl_loss(mnn.CrossEntropyLoss(label_smoothing=0.1), x, target, torch.tensor(1.0).double())
    expected, expected_grad = torch_loss(
        tnn.CrossEntropyLoss(label_smoothing=0.1), x, target, torch.tensor(1.0).double()
    )
    assert value.isnan() and expected.isnan()
    assert torch.equal(grad, expected_grad) and not grad.any()


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss", "HuberLoss", "SmoothL1Loss"])
def test_shape_mismatch_is_an_error_not_a_broadcast(name):
    with pytest.raises(ShapeError, match=rf"{name}\(.*\): input shape \(8, 1\) does not match target shape \(8,\)"):
        getattr(mnn, name)()(torch.full((8, 1), 0.5), torch.zeros(8))


@pytest.mark.parametrize(
    ("make", "x", "target", "error", "message"),
    [
        (mnn.BCELoss, torch.full((2, 1), 0.5), torch.ones(2, 1, dtype=torch.long), ShapeError,
         r"BCELoss\(\): expected floating-point input and target, got torch.float32 input of shape \(2, 1\) "
         r"and torch.int64 target of shape \(2, 1\)"),
        (mnn.BCELoss, torch.tensor([[0.5], [1.5]]), torch.ones(2, 1), DataError,
         r"BCELoss\(\): every input element must be a probability in \[0, 1\], got 1.5"),
        (mnn.BCELoss, torch.tensor([[0.5], [0.5]]), torch.tensor([[1.0], [-1.0]]), DataError,
         r"every target element must be a probability in \[0, 1\], got -1.0"),
        (lambda: mnn.BCELoss(torch.ones(3)), torch.full((2, 2), 0.5), torch.ones(2, 2), ShapeError,
         r"BCELoss\(\): weight of shape \(3,\) does not broadcast to the input's shape \(2, 2\)"),
        (mnn.CrossEntropyLoss, torch.zeros(4, 3), torch.tensor([0, 1, 3, 2]), DataError,
         r"CrossEntropyLoss\(\): target 3 is out of bounds for 3 classes"),
        (mnn.CrossEntropyLoss, torch.zeros(4, 3), torch.tensor([0, -1, 2, 2]), DataError, r"target -1 is out of"),
        (mnn.CrossEntropyLoss, torch.zeros(4, 3), torch.zeros(4, 3, dtype=torch.long), ShapeError,
         r"expected logits of shape \(N, C\) and class indices of shape \(N,\), got input \(4, 3\) and target \(4, 3"),
        (mnn.CrossEntropyLoss, torch.zeros(4, 3), torch.zeros(5, dtype=torch.long), ShapeError,
         r"got input \(4, 3\) and target \(5,\)"),
        (mnn.CrossEntropyLoss, torch.zeros(4, 3), torch.zeros(4), ShapeError,
         r"expected floating logits and integer class indices, got torch.float32 input \(4, 3\) and torch.float32"),
        (lambda: mnn.CrossEntropyLoss(torch.ones(2)), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), ShapeError,
         r"weight of shape \(2,\) does not give one weight to each of the 3 classes of input \(4, 3\)"),
    ],
    ids=["bce-int-target", "bce-input-range", "bce-target-range", "bce-weight", "ce-high", "ce-negative",
         "ce-2d-target", "ce-batch", "ce-float-target", "ce-weight"],
)  # fmt: skip
def test_bad_data_raises_errors_naming_the_loss_and_value(make, x, target, error, message):
    with pytest.raises(error, match=message):
        make()(x, target)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: mnn.CrossEntropyLoss(label_smoothing=1.5), r"label_smoothing must be between 0.0 and 1.0, got 1.5"),
        (lambda: mnn.CrossEntropyLoss(ignore_index=1.0), r"ignore_index must be an integer, got 1.0"),
        (lambda: mnn.CrossEntropyLoss(torch.ones(2, 2)), r"weight must be 1-D \(one per class\), got shape \(2, 2\)"),
        (lambda: mnn.BCELoss([1.0, 2.0]), r"BCELoss: weight must be a floating-point tensor or None"),
        (lambda: mnn.BCEWithLogitsLoss(pos_weight=torch.ones(2, dtype=torch.long)), r"pos_weight must be a floating"),
        (lambda: mnn.HuberLoss(delta=0), r"HuberLoss: delta must be a positive number, got 0"),
        (lambda: mnn.SmoothL1Loss(beta=-1.0), r"SmoothL1Loss: beta must be a non-negative number, got -1.0"),
        (lambda: mnn.HuberLoss(reduction="avg"), r"HuberLoss: reduction must be one of"),
    ],
)
def test_bad_hyperparameters_are_rejected_at_construction(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_backward_before_forward_names_the_loss():
    with pytest.raises(RuntimeError, match=r"MSELoss\(\): backward called before forward"):
        mnn.MSELoss().backward()
    with pytest.raises(RuntimeError, match=r"CrossEntropyLoss\(label_smoothing=0.1\): backward called before"):
        mnn.CrossEntropyLoss(label_smoothing=0.1).backward()


# -- what the trainer and the CLI read -------------------------------------------------------------


def test_registry_and_class_attributes():
    assert {"mse", "mae", "bce", "bce-logits", "cross-entropy", "huber", "smooth-l1"} <= set(mnn.LOSSES)
    for name, cls in mnn.LOSSES.items():
        assert isinstance(cls(), mnn.Loss), name
    assert mnn.BCEWithLogitsLoss.decision_threshold == 0.0 and not mnn.BCEWithLogitsLoss.class_index_target
    assert mnn.BCELoss.decision_threshold == 0.5 and not mnn.BCELoss.class_index_target
    assert mnn.CrossEntropyLoss.class_index_target
    assert mnn.MAELoss is mnn.L1Loss


@pytest.mark.parametrize(("name", "outputs"), [("cross-entropy", 2), ("bce-logits", 1), ("huber", 1)])
def test_trainer_learns_the_disk_with_each_classification_loss(name, outputs):
    from minidl.data import disk
    from minidl.optim import SGD
    from minidl.train import Trainer

    x, labels = disk(400, seed=0)
    x = (x - 0.5) * 3.5
    torch.manual_seed(0)
    model = mnn.mlp(2, "16:tanh,16:tanh", outputs)
    trainer = Trainer(model, mnn.LOSSES[name](), SGD(model.parameters(), lr=0.1, momentum=0.9))
    trainer.fit(x, labels, epochs=25, batch_size=16)
    assert trainer.evaluate(x, labels).accuracy > 0.9
