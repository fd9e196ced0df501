"""Data sets and the batch iterator."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidl.data import DISK_RADIUS, DataLoader, Standardizer, disk


def test_disk_labels_points_inside_the_disk():
    x, y = disk(2000, seed=3)
    assert x.shape == (2000, 2) and y.shape == (2000,) and y.dtype == torch.long
    assert x.min() >= 0 and x.max() <= 1
    inside = ((x.double() - 0.5) ** 2).sum(1).sqrt() < DISK_RADIUS
    assert torch.equal(inside.long(), y)
    assert abs(DISK_RADIUS - 1 / math.sqrt(2 * math.pi)) < 1e-15
    assert 0.45 < y.float().mean() < 0.55  # the disk covers half the square


def test_disk_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = disk(100, seed=7)
    b = disk(100, seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(disk(100, seed=8)[0], a[0])
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("bad", [0, -5, 1.5])
def test_disk_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="positive integer"):
        disk(bad)


@given(n=st.integers(1, 50), batch=st.integers(1, 60), shuffle=st.booleans(), drop_last=st.booleans())
def test_loader_covers_every_sample_once(n, batch, shuffle, drop_last):
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(n)
    loader = DataLoader(x, y, batch, shuffle=shuffle, seed=1, drop_last=drop_last)
    seen = [int(v) for _, yb in loader for v in yb]
    assert len(list(loader)) == len(loader)
    if drop_last:
        assert len(seen) == (n // batch) * batch
    else:
        assert sorted(seen) == list(range(n))
    for xb, yb in loader:
        assert torch.equal(xb.squeeze(1).long(), yb)


def test_loader_shuffles_reproducibly_and_differently_each_epoch():
    x, y = torch.arange(20.0).unsqueeze(1), torch.arange(20)
    a, b = DataLoader(x, y, 4, shuffle=True, seed=5), DataLoader(x, y, 4, shuffle=True, seed=5)
    first_a, first_b = torch.cat([yb for _, yb in a]), torch.cat([yb for _, yb in b])
    assert torch.equal(first_a, first_b)
    assert not torch.equal(torch.cat([yb for _, yb in a]), first_a)


def test_loader_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        DataLoader(torch.zeros(3, 1), torch.zeros(3), 0)
    with pytest.raises(ValueError, match="x has 3 samples but y has 2"):
        DataLoader(torch.zeros(3, 1), torch.zeros(2), 1)


def test_standardizer_uses_training_statistics():
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    scaler = Standardizer().fit(x)
    z = scaler(x)
    torch.testing.assert_close(z[:, 0], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.equal(z[:, 1], torch.zeros(3))  # a constant feature is only centred
    torch.testing.assert_close(scaler(torch.tensor([[7.0, 6.0]])), torch.tensor([[2.0, 1.0]]))
