"""Chunked epochs: bounded epochs, full coverage per pass, order reproduced by a resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from restorekit.distill.sampler import ChunkedEpochSampler, epoch_indices
from restorekit.errors import ConfigError


def test_epochs_cycle_through_whole_dataset() -> None:
    n, chunk = 10, 4
    order = np.concatenate([epoch_indices(n, chunk, seed=7, epoch=e) for e in range(5)])  # 20 = two passes
    assert len(order) == 20
    assert sorted(order[:10]) == list(range(10))  # pass 0 sees every sample once
    assert sorted(order[10:]) == list(range(10))  # and pass 1 too
    assert not np.array_equal(order[:10], order[10:])  # passes are reshuffled
    assert not np.array_equal(epoch_indices(n, chunk, 7, 0), epoch_indices(n, chunk, 8, 0))


def test_order_depends_only_on_seed_and_epoch_across_a_resume() -> None:
    ds = TensorDataset(torch.arange(23))
    # an uninterrupted run of 6 epochs
    s = ChunkedEpochSampler(len(ds), epoch_samples=5, seed=3)
    dl = DataLoader(ds, batch_size=2, sampler=s)
    full = []
    for e in range(6):
        s.set_epoch(e)
        full.append([int(v) for (b,) in dl for v in b])
    # a run that stops after epoch 2 and a fresh process-like sampler resumed at epoch 3
    s2 = ChunkedEpochSampler(len(ds), epoch_samples=5, seed=3)
    first = []
    for e in range(3):
        s2.set_epoch(e)
        first.append(list(iter(s2)))
    resumed_sampler = ChunkedEpochSampler(len(ds), epoch_samples=5, seed=3)
    rest = []
    for e in range(3, 6):
        resumed_sampler.set_epoch(e)
        rest.append(list(iter(resumed_sampler)))
    assert first + rest == full
    assert all(len(ep) == 5 for ep in full)
    assert len(resumed_sampler) == 5


def test_none_means_one_pass_and_errors() -> None:
    s = ChunkedEpochSampler(7, None, seed=0)
    assert len(s) == 7 and sorted(s) == list(range(7))
    with pytest.raises(ConfigError):
        ChunkedEpochSampler(0, 3, seed=0)
    with pytest.raises(ConfigError):
        epoch_indices(5, -1, 0, 0)
