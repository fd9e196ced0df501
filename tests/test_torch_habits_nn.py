"""Issue 10, modules: each habit a PyTorch user relies on, compared with torch.nn + autograd (float64, 1e-10)."""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch
from torch import nn as tnn

import minidl
import minidl.nn as mnn
from minidl.errors import BackwardError

TOL = {"atol": 1e-10, "rtol": 1e-10}
DT = torch.float64


def close(a, b):
    torch.testing.assert_close(a, b, **TOL)


def copy_weights(ours: mnn.Module, theirs: tnn.Module) -> None:
    theirs.load_state_dict({k: v.clone() for k, v in ours.state_dict().items()})


def grads_match(ours: mnn.Module, theirs: tnn.Module) -> None:
    theirs_grads = {name: p.grad for name, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        if theirs_grads[name] is None:
            assert p.grad is None, name
        else:
            close(p.grad, theirs_grads[name])


# -- item 1: a module instance used twice; tied weights ----------------------------------------------


def shared_pair():
    torch.manual_seed(0)
    act = mnn.ReLU()
    ours = mnn.Sequential(mnn.Linear(3, 4), act, mnn.Linear(4, 4), act, mnn.Linear(4, 1)).double()
    tact = tnn.ReLU()
    theirs = tnn.Sequential(tnn.Linear(3, 4), tact, tnn.Linear(4, 4), tact, tnn.Linear(4, 1)).double()
    copy_weights(ours, theirs)
    return ours, theirs


class TiedOurs(mnn.Module):
    """The same Linear applied twice, with a Tanh between: y = W tanh(W x + b) + b."""

    def __init__(self):
        self.inner = mnn.Linear(4, 4)
        self.act = mnn.Tanh()

    def forward(self, x):
        return self.inner(self.act(self.inner(x)))

    def backward(self, g):
        return self.inner.backward(self.act.backward(self.inner.backward(g)))


class TiedTheirs(tnn.Module):
    def __init__(self):
        super().__init__()
        self.inner = tnn.Linear(4, 4)
        self.act = tnn.Tanh()

    def forward(self, x):
        return self.inner(self.act(self.inner(x)))


@pytest.mark.parametrize("case", ["shared-activation", "tied-linear"])
def test_a_module_called_twice_gets_torchs_gradients(case):
    if case == "shared-activation":
        ours, theirs = shared_pair()
        x = torch.randn(5, 3, dtype=DT)
    else:
        torch.manual_seed(1)
        ours, theirs = TiedOurs().double(), TiedTheirs().double()
        copy_weights(ours, theirs)
        x = torch.randn(5, 4, dtype=DT)
    g = torch.randn(5, 1 if case == "shared-activation" else 4, dtype=DT)
    xt = x.clone().requires_grad_()
    theirs(xt).backward(g)
    close(ours(x), theirs(x))
    close(ours.backward(g), xt.grad)
    grads_match(ours, theirs)


def test_named_modules_lists_a_shared_module_once_as_torch():
    ours, theirs = shared_pair()
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert list(ours.state_dict()) == list(theirs.state_dict())  # the state_dict walks every name, as torch
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == [
        n for n, _ in theirs.named_modules(remove_duplicate=False)
    ]


# -- item 2: a forward that must not disturb the pending backward ---------------------------------------


@pytest.mark.parametrize("how", ["eval-mode", "no_grad", "eval-mode-and-loss-in-no_grad"])
def test_a_validation_forward_between_forward_and_backward_changes_nothing(how):
    ours, theirs = shared_pair()
    loss_ours, loss_theirs = mnn.MSELoss(), tnn.MSELoss()
    x, y = torch.randn(6, 3, dtype=DT), torch.randn(6, 1, dtype=DT)
    xv, yv = torch.randn(9, 3, dtype=DT), torch.randn(9, 1, dtype=DT)  # another batch size
    value = loss_ours(ours(x), y)
    if how == "no_grad":
        with minidl.no_grad():
            loss_ours(ours(xv), yv)
    else:
        ours.eval()
        if how == "eval-mode":
            loss_ours.eval()
            loss_ours(ours(xv), yv)
        else:
            with minidl.no_grad():
                loss_ours(ours(xv), yv)
        ours.train(), loss_ours.train()
    ours.backward(loss_ours.backward())
    loss_theirs(theirs(x), y).backward()
    close(value, loss_theirs(theirs(x), y).detach())
    grads_match(ours, theirs)


@pytest.mark.parametrize(
    "make",
    [lambda: mnn.Linear(2, 2), mnn.ReLU, mnn.Tanh, mnn.MSELoss, lambda: mnn.Sequential(mnn.Linear(2, 2), mnn.ReLU())],
)
def test_backward_with_nothing_pending_says_to_call_forward_first(make):
    module = make()
    args = (torch.zeros(3, 2), torch.zeros(3, 2)) if isinstance(module, mnn.Loss) else (torch.zeros(3, 2),)
    call_backward = (lambda: module.backward()) if isinstance(module, mnn.Loss) else lambda: module.backward(args[0])
    with pytest.raises(BackwardError, match="call forward first"):
        call_backward()
    module(*args)
    call_backward()
    with pytest.raises(BackwardError, match="call forward first"):  # each forward serves one backward
        call_backward()
    with minidl.no_grad():
        module(*args)
    with pytest.raises(BackwardError, match="call forward first"):
        call_backward()
    assert minidl.is_grad_enabled()


def test_no_grad_is_a_decorator_too_and_restores_the_mode():
    @minidl.no_grad()
    def predict(model, x):
        assert not minidl.is_grad_enabled()
        return model(x)

    layer = mnn.Linear(2, 1)
    predict(layer, torch.zeros(1, 2))
    assert minidl.is_grad_enabled()
    with pytest.raises(BackwardError):
        layer.backward(torch.zeros(1, 1))


# -- item 3 and the containers: one source of truth ---------------------------------------------------


SEQUENTIAL_EDITS = {
    "setattr": lambda m, t: (setattr(m, "1", mnn.Tanh()), setattr(t, "1", tnn.Tanh())),
    "setitem": lambda m, t: (m.__setitem__(1, mnn.Tanh()), t.__setitem__(1, tnn.Tanh())),
    "setitem-negative": lambda m, t: (m.__setitem__(-2, mnn.Tanh()), t.__setitem__(-2, tnn.Tanh())),
    "delitem": lambda m, t: (m.__delitem__(1), t.__delitem__(1)),
    "append": lambda m, t: (m.append(mnn.Sigmoid()), t.append(tnn.Sigmoid())),
    "extend": lambda m, t: (m.extend([mnn.Tanh(), mnn.ReLU()]), t.extend([tnn.Tanh(), tnn.ReLU()])),
    "insert": lambda m, t: (m.insert(1, mnn.Sigmoid()), t.insert(1, tnn.Sigmoid())),
}


@pytest.mark.parametrize("edit", list(SEQUENTIAL_EDITS))
def test_editing_a_sequential_changes_what_runs_as_torch(edit):
    torch.manual_seed(2)
    ours = mnn.Sequential(mnn.Linear(3, 3), mnn.ReLU(), mnn.Linear(3, 3)).double()
    theirs = tnn.Sequential(tnn.Linear(3, 3), tnn.ReLU(), tnn.Linear(3, 3)).double()
    copy_weights(ours, theirs)
    ours(torch.zeros(2, 3, dtype=DT))  # forward once before the edit: nothing stale may survive it
    SEQUENTIAL_EDITS[edit](ours, theirs)
    assert repr(ours) == repr(theirs).replace(", inplace=False", "")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x, g = torch.randn(4, 3, dtype=DT), torch.randn(4, 3, dtype=DT)
    xt = x.clone().requires_grad_()
    theirs(xt).backward(g)
    close(ours(x), theirs(x))
    close(ours.backward(g), xt.grad)
    grads_match(ours, theirs)


def test_sequential_slicing_and_ordered_dict_as_torch():
    ours = mnn.Sequential(OrderedDict([("fc", mnn.Linear(2, 3)), ("act", mnn.ReLU()), ("out", mnn.Linear(3, 1))]))
    theirs = tnn.Sequential(OrderedDict([("fc", tnn.Linear(2, 3)), ("act", tnn.ReLU()), ("out", tnn.Linear(3, 1))]))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["fc.weight", "fc.bias", "out.weight", "out.bias"]
    head = ours[1:]
    assert isinstance(head, mnn.Sequential) and repr(head) == repr(theirs[1:])
    assert ours[-1] is ours.out and len(ours) == 3 and list(ours) == [ours.fc, ours.act, ours.out]
    x = torch.randn(5, 3)
    assert torch.equal(head(x), ours.out(ours.act(x)))
    with pytest.raises(IndexError, match="out of range"):
        ours[3]


def test_module_list_dict_and_parameter_list_register_as_torch():
    torch.manual_seed(3)

    class Ours(mnn.Module):
        def __init__(self):
            self.blocks = mnn.ModuleList([mnn.Linear(2, 2), mnn.Linear(2, 2)])
            self.heads = mnn.ModuleDict({"a": mnn.Linear(2, 1), "b": mnn.Linear(2, 1)})
            self.scales = mnn.ParameterList([mnn.Parameter(torch.ones(2)), mnn.Parameter(torch.ones(1))])

    class Theirs(tnn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = tnn.ModuleList([tnn.Linear(2, 2), tnn.Linear(2, 2)])
            self.heads = tnn.ModuleDict({"a": tnn.Linear(2, 1), "b": tnn.Linear(2, 1)})
            self.scales = tnn.ParameterList([tnn.Parameter(torch.ones(2)), tnn.Parameter(torch.ones(1))])

    ours, theirs = Ours(), Theirs()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict(theirs.state_dict())
    assert len(ours.blocks) == 2 and list(ours.heads) == ["a", "b"] and len(ours.scales) == 2
    ours.blocks.append(mnn.Tanh())
    theirs.blocks.append(tnn.Tanh())
    del ours.heads["a"], theirs.heads["a"]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert isinstance(ours.blocks[:2], mnn.ModuleList) and len(ours.blocks[:2]) == 2
    with pytest.raises(NotImplementedError, match="ModuleList has no forward"):
        ours.blocks(torch.zeros(1, 2))


def test_a_model_without_backward_is_told_what_to_write():
    class Net(mnn.Module):
        def __init__(self):
            self.layers = mnn.Sequential(mnn.Linear(2, 1))

        def forward(self, x):
            return self.layers(x)

    net = Net()
    net(torch.zeros(1, 2))
    with pytest.raises(NotImplementedError, match=r"return self\.layers\.backward\(grad_output\)"):
        net.backward(torch.ones(1, 1))


def test_backward_on_the_loss_value_is_told_what_to_write():
    value = mnn.MSELoss()(torch.ones(2, 1), torch.zeros(2, 1))
    assert repr(value) == "tensor(1.)" and type(value * 2) is torch.Tensor
    with pytest.raises(BackwardError, match=r"model\.backward\(loss_fn\.backward\(\)\)"):
        value.backward()


# -- item 6: freezing -----------------------------------------------------------------------------------


def test_a_frozen_parameter_gets_no_gradient_and_none_as_torch():
    ours, theirs = shared_pair()
    ours[0].requires_grad_(False)
    theirs[0].requires_grad_(False)
    ours[2].bias.requires_grad = False
    theirs[2].bias.requires_grad = False
    ours.zero_grad()
    x, g = torch.randn(4, 3, dtype=DT), torch.randn(4, 1, dtype=DT)
    ours(x)
    ours.backward(g)
    theirs(x).backward(g)
    grads_match(ours, theirs)
    assert ours[0].weight.grad is None and ours[2].bias.grad is None
    assert "requires_grad=False" in repr(ours[0].weight)
    assert not ours[0].weight.data.requires_grad  # minidl's own flag: torch's autograd stays off


# -- item 9: load_state_dict copies without autograd ----------------------------------------------------


def test_load_state_dict_from_parameters_that_require_grad_copies_no_history():
    torch.manual_seed(4)
    theirs = tnn.Linear(3, 2).double()
    ours = mnn.Linear(3, 2).double()
    ours.load_state_dict(dict(theirs.named_parameters()))
    assert all(t.grad_fn is None and not t.requires_grad for t in ours.state_dict().values())
    close(ours.weight.data, theirs.weight.detach())
    opt = minidl.optim.SGD(ours.parameters(), lr=0.1)
    ours(torch.ones(1, 3, dtype=DT))
    ours.backward(torch.ones(1, 2, dtype=DT))
    opt.step()  # used to fail: an in-place update of a tensor with autograd history


# -- item 11: numeric edges -----------------------------------------------------------------------------

INF, NAN = math.inf, math.nan
EDGES = [
    # (minidl layer, torch layer, input, upstream gradient)
    ("relu-inf-grad", mnn.ReLU, tnn.ReLU, [-2.0, 0.0, 3.0], [INF, INF, -INF]),
    ("relu-nan-input", mnn.ReLU, tnn.ReLU, [NAN, -1.0, 1.0], [1.0, 1.0, 1.0]),
    ("leaky-inf-grad", mnn.LeakyReLU, tnn.LeakyReLU, [-2.0, 0.0, 3.0], [INF, -INF, INF]),
    ("elu-inf-grad", mnn.ELU, tnn.ELU, [-2.0, 0.0, 3.0], [INF, -INF, INF]),
]


@pytest.mark.parametrize(("name", "ours", "theirs", "x", "g"), EDGES, ids=[row[0] for row in EDGES])
def test_numeric_edges_match_torch(name, ours, theirs, x, g):
    x, g = torch.tensor([x], dtype=DT), torch.tensor([g], dtype=DT)
    xt = x.clone().requires_grad_()
    yt = theirs()(xt)
    yt.backward(g)
    layer = ours()
    torch.testing.assert_close(layer(x), yt.detach(), equal_nan=True, **TOL)
    torch.testing.assert_close(layer.backward(g), xt.grad, equal_nan=True, **TOL)


LARGE_EDGES = [  # ReLU's backward multiplies by its mask on large CPU tensors only when every number is finite
    # (name, where to put what into x, where to put what into g)
    ("finite", None, None),
    ("inf-grad-where-x<=0", None, ("negative", INF)),
    ("nan-grad-where-x<=0", None, ("negative", NAN)),
    ("-inf-grad-where-x>0", None, ("positive", -INF)),
    ("nan-input", ("first", NAN), None),
    ("inf-input", ("first", INF), None),
    ("finite-but-the-sum-overflows", None, ("all", 3e38)),  # float32: the sum is inf, the numbers are finite
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "x_edge", "g_edge"), LARGE_EDGES, ids=[row[0] for row in LARGE_EDGES])
def test_relu_backward_on_large_tensors_matches_torch(name, x_edge, g_edge, dtype):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 128, generator=generator, dtype=dtype)  # 8,192 elements: the large path
    g = torch.randn(64, 128, generator=generator, dtype=dtype)
    for tensor, edge in ((x, x_edge), (g, g_edge)):
        if edge is not None:
            where, value = edge
            mask = {"negative": x <= 0, "positive": x > 0, "all": torch.ones_like(x, dtype=torch.bool)}.get(where)
            if mask is None:
                tensor[0, 0] = value
            else:
                tensor[mask] = value
    xt = x.clone().requires_grad_()
    tnn.ReLU()(xt).backward(g)
    layer = mnn.ReLU()
    layer(x)
    torch.testing.assert_close(layer.backward(g), xt.grad, equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("p", [1e-15, 1e-13, 1e-7, 0.5, 1 - 1e-7, 1 - 1e-13, 0.0, 1.0])
@pytest.mark.parametrize("y", [0.0, 1.0, 0.3])
def test_bce_clamps_as_torch_near_0_and_1(p, y):
    x, t = torch.tensor([[p]], dtype=DT), torch.tensor([[y]], dtype=DT)
    xt = x.clone().requires_grad_()
    value_t = tnn.BCELoss()(xt, t)
    value_t.backward()
    loss = mnn.BCELoss()
    close(loss(x, t), value_t.detach())
    close(loss.backward(), xt.grad)


# -- missing features -----------------------------------------------------------------------------------


def _soft(shape, gen):
    return torch.softmax(torch.randn(shape, generator=gen, dtype=DT), dim=1 if len(shape) > 1 else 0)


CE_CASES = [
    # (name, constructor kwargs, input shape, target maker)
    ("probabilities", {}, (5, 4), lambda gen: _soft((5, 4), gen)),
    ("probabilities-weight-smooth", {"weight": "w", "label_smoothing": 0.2}, (5, 4), lambda gen: _soft((5, 4), gen)),
    ("probabilities-sum", {"reduction": "sum"}, (5, 4), lambda gen: _soft((5, 4), gen)),
    ("probabilities-none", {"reduction": "none"}, (5, 4), lambda gen: _soft((5, 4), gen)),
    ("k-dim", {}, (3, 4, 2, 5), lambda gen: torch.randint(0, 4, (3, 2, 5), generator=gen)),
    ("k-dim-none-ignore", {"reduction": "none", "ignore_index": 1}, (3, 4, 5),
     lambda gen: torch.randint(0, 4, (3, 5), generator=gen)),
    ("k-dim-probabilities", {"weight": "w"}, (3, 4, 5), lambda gen: _soft((3, 4, 5), gen)),
    ("unbatched", {}, (4,), lambda gen: torch.tensor(2)),
    ("unbatched-none-smooth", {"reduction": "none", "label_smoothing": 0.1}, (4,), lambda gen: torch.tensor(3)),
    ("unbatched-probabilities", {}, (4,), lambda gen: _soft((4,), gen)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs", "shape", "target"), CE_CASES, ids=[row[0] for row in CE_CASES])
def test_cross_entropy_shapes_and_soft_labels_match_torch(name, kwargs, shape, target):
    gen = torch.Generator().manual_seed(5)
    kwargs = {k: (torch.rand(4, generator=gen, dtype=DT) + 0.5 if v == "w" else v) for k, v in kwargs.items()}
    x = torch.randn(shape, generator=gen, dtype=DT)
    t = target(gen)
    xt = x.clone().requires_grad_()
    value_t = tnn.CrossEntropyLoss(**kwargs)(xt, t)
    g = torch.randn(value_t.shape, generator=gen, dtype=DT)
    value_t.backward(g)
    loss = mnn.CrossEntropyLoss(**kwargs)
    close(loss(x, t), value_t.detach())
    close(loss.backward(g), xt.grad)


@pytest.mark.parametrize(
    "move",
    [lambda m: m.to(torch.float64), lambda m: m.to("cpu", torch.float64), lambda m: m.to(torch.zeros(1, dtype=DT))],
)
def test_module_to_takes_torchs_positional_forms(move):
    model = mnn.Sequential(mnn.Linear(2, 3), mnn.BatchNorm1d(3))
    assert move(model) is model
    assert all(t.dtype == DT for k, t in model.state_dict().items() if k != "1.num_batches_tracked")
    assert model.to("cpu").to(device="cpu")[0].weight.device.type == "cpu"
    with pytest.raises(TypeError, match="floating-point dtype"):
        model.to(torch.int64)


def test_dropout_p1_drops_everything_as_torch():
    x = torch.randn(4, 3, dtype=DT)
    state = torch.get_rng_state()
    layer = mnn.Dropout(1.0)
    out = layer(x)
    assert torch.equal(out, tnn.Dropout(1.0)(x)) and torch.equal(torch.get_rng_state(), state)
    assert torch.equal(layer.backward(torch.ones_like(x)), torch.zeros_like(x))
    assert repr(layer) == repr(tnn.Dropout(1.0))
