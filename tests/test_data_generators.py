"""The 2-D generators, the digits, splits and the data-section loader."""

from __future__ import annotations

import math

import pytest
import torch

from minidl.data import DATASETS, blobs, circles, digits, load_data, moons, spirals, split_indices, xor
from minidl.errors import ConfigError

# name -> number of classes with the default arguments
CLASSES = {"disk": 2, "circles": 2, "xor": 2, "moons": 2, "spirals": 2, "blobs": 3}


def test_every_generator_is_in_the_table():
    assert set(DATASETS) == set(CLASSES)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_generator_shapes_labels_and_balance(name):
    x, y = DATASETS[name](600, seed=1)
    assert x.shape == (600, 2) and x.dtype == torch.float32 and y.shape == (600,) and y.dtype == torch.long
    counts = torch.bincount(y, minlength=CLASSES[name])
    assert len(counts) == CLASSES[name] and int(counts.min()) > 600 / CLASSES[name] * 0.8
    assert DATASETS[name](5, seed=0, dtype=torch.float64)[0].dtype == torch.float64


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_generator_is_seeded_and_leaves_the_global_rng_alone(name):
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a, b = DATASETS[name](100, seed=7), DATASETS[name](100, seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(DATASETS[name](100, seed=8)[0], a[0])
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize(("kwargs", "message"), [({"n": 0}, "positive integer"), ({"noise": -1}, "noise must be")])
def test_generator_rejects_bad_arguments(name, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DATASETS[name](**{"n": 10, **kwargs})


def test_noise_jitters_the_points_but_not_the_labels():
    clean, labels = moons(200, noise=0.0, seed=3)
    noisy, noisy_labels = moons(200, noise=0.2, seed=3)
    assert torch.equal(labels, noisy_labels)
    assert 0.1 < float((noisy - clean).std()) < 0.3


def test_shapes_are_what_their_names_say():
    x, y = circles(400, noise=0.0, factor=0.5, seed=0)
    radius = x.double().norm(dim=1)
    torch.testing.assert_close(radius, torch.where(y == 1, 0.5, 1.0).double(), atol=1e-6, rtol=0)
    x, y = xor(400, seed=0)
    assert torch.equal(y, ((x[:, 0] > 0) != (x[:, 1] > 0)).long())
    x, y = moons(400, noise=0.0, seed=0)
    upper = x[y == 0].double()
    torch.testing.assert_close(upper.norm(dim=1), torch.ones(len(upper), dtype=torch.float64), atol=1e-6, rtol=0)
    x, y = spirals(400, noise=0.0, classes=3, seed=0)
    assert set(y.tolist()) == {0, 1, 2} and float(x.norm(dim=1).max()) <= 1 + 1e-6
    x, y = blobs(900, noise=0.1, centers=3, seed=0)
    for c in range(3):
        angle = 2 * math.pi * c / 3 + math.pi / 2
        centre = torch.tensor([2 * math.cos(angle), 2 * math.sin(angle)])
        torch.testing.assert_close(x[y == c].mean(0), centre, atol=0.03, rtol=0)


def test_digits_are_scaled_to_the_unit_interval():
    x, y = digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert sorted(set(y.tolist())) == list(range(10))


def test_split_is_seeded_disjoint_and_complete():
    train, val, test = split_indices(100, val_fraction=0.1, test_fraction=0.25, seed=4)
    assert (len(train), len(val), len(test)) == (65, 10, 25)
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(100))
    again = split_indices(100, val_fraction=0.1, test_fraction=0.25, seed=4)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    with pytest.raises(ConfigError, match="leaves no training samples"):
        split_indices(3, val_fraction=0.5, test_fraction=0.5)


def test_generated_splits_use_separate_streams():
    data = {"dataset": "disk", "n_train": 50, "n_test": 40, "noise": 0.0, "val_fraction": 0.2, "standardize": True}
    bundle = load_data(data, seed=0)
    assert [len(s[0]) for s in (bundle.train, bundle.val, bundle.test)] == [50, 10, 40]
    assert torch.equal(bundle.train[0], DATASETS["disk"](50, seed=0)[0])  # the seed experiment's points
    assert not torch.equal(bundle.test[0][:10], bundle.val[0])
    assert bundle.kind == "binary" and bundle.classes == [0, 1]
    assert load_data({**data, "val_fraction": 0.0}, seed=0).val is None
