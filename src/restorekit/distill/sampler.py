"""Chunked epochs: bound an epoch to N samples and cycle through the whole dataset across epochs.

The seed project trained 2,500-file slices of a large dataset per "epoch",
with a checkpoint after each. :class:`ChunkedEpochSampler` does this
reproducibly: the dataset is visited in passes, each pass a permutation drawn
from ``(seed, pass)``; epoch ``e`` takes the samples at stream positions
``[e * N, (e + 1) * N)`` of the concatenated passes. The indices of an epoch
therefore depend only on ``(seed, epoch)``: a run resumed at epoch ``e`` sees
exactly the samples an uninterrupted run would, and every sample is seen once
per pass.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler

from restorekit.errors import ConfigError
from restorekit.utils.seed import sample_rng


def pass_permutation(n: int, seed: int, pass_index: int) -> np.ndarray:
    """The visiting order of pass ``pass_index``: a permutation of ``range(n)`` from ``(seed, pass)``."""
    return sample_rng(seed, "chunked-epochs", pass_index).permutation(n)


def epoch_indices(n: int, epoch_samples: int, seed: int, epoch: int) -> np.ndarray:
    """Dataset indices of ``epoch`` (int64 array of length ``epoch_samples``).

    Depends only on ``(n, epoch_samples, seed, epoch)``.
    """
    if n <= 0:
        raise ConfigError("chunked epochs: the dataset is empty")
    if epoch_samples <= 0:
        raise ConfigError(f"chunked epochs: epoch_samples must be positive, got {epoch_samples}")
    start = epoch * epoch_samples
    stop = start + epoch_samples
    out = np.empty(epoch_samples, dtype=np.int64)
    pos = start
    k = 0
    while pos < stop:
        p, off = divmod(pos, n)
        take = min(n - off, stop - pos)
        out[k : k + take] = pass_permutation(n, seed, p)[off : off + take]
        k += take
        pos += take
    return out


class ChunkedEpochSampler(Sampler[int]):
    """A sampler yielding ``epoch_samples`` indices per epoch, cycling through ``n`` samples in seeded passes.

    Call :meth:`set_epoch` before each epoch (Lightning does so for any
    sampler that has it, also after a resume, from the restored epoch counter).
    With ``epoch_samples=None`` an epoch is one full pass (a plain seeded shuffle).
    """

    def __init__(self, n: int, epoch_samples: int | None, seed: int, epoch: int = 0) -> None:
        if n <= 0:
            raise ConfigError("chunked epochs: the dataset is empty")
        self.n = int(n)
        self.epoch_samples = int(epoch_samples) if epoch_samples else self.n
        if self.epoch_samples <= 0:
            raise ConfigError(f"chunked epochs: epoch_samples must be positive, got {epoch_samples}")
        self.seed = int(seed)
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the chunk of ``epoch``."""
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """The indices of the current epoch."""
        return epoch_indices(self.n, self.epoch_samples, self.seed, self.epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.epoch_samples

    def epochs_per_pass(self) -> float:
        """How many epochs one full pass over the dataset takes."""
        return self.n / self.epoch_samples


class ChunkedDataset:
    """A view of ``base`` holding the ``epoch_samples`` samples of the current epoch (see :func:`epoch_indices`).

    Drop-in for the training engine: ``len()`` is the chunk size (so the epoch
    plan, the cosine schedule and checkpoints count chunks), ``set_epoch``
    selects the chunk and forwards the epoch to ``base`` (per-epoch crops and
    degradations), ``patch_size`` is forwarded (progressive training). Sample
    ``i`` of epoch ``e`` is ``base[epoch_indices(len(base), N, seed, e)[i]]``,
    so a resumed run at epoch ``e`` reads exactly the same samples.
    """

    def __init__(self, base, epoch_samples: int, seed: int) -> None:  # noqa: ANN001 - any map-style dataset
        self.base = base
        self.n = len(base)
        if self.n <= 0:
            raise ConfigError("chunked epochs: the training set is empty")
        if epoch_samples <= 0:
            raise ConfigError(f"distill.epoch_samples must be positive, got {epoch_samples}")
        self.epoch_samples = int(epoch_samples)
        self.seed = int(seed)
        self.epoch = 0
        self._indices = epoch_indices(self.n, self.epoch_samples, self.seed, 0)

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``'s chunk (and forward the epoch to the wrapped dataset)."""
        self.epoch = int(epoch)
        self._indices = epoch_indices(self.n, self.epoch_samples, self.seed, self.epoch)
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    @property
    def patch_size(self):  # noqa: ANN201
        return getattr(self.base, "patch_size", None)

    @patch_size.setter
    def patch_size(self, value) -> None:  # noqa: ANN001
        self.base.patch_size = value

    def indices(self) -> list[int]:
        """Base-dataset indices of the current epoch's chunk."""
        return [int(i) for i in self._indices]

    def __len__(self) -> int:
        return self.epoch_samples

    def __getitem__(self, i: int):  # noqa: ANN204
        if not -self.epoch_samples <= i < self.epoch_samples:
            raise IndexError(i)
        return self.base[int(self._indices[i])]

    def __getattr__(self, name: str):  # noqa: ANN204 - e.g. ``items``, ``names`` of the base dataset
        if name in ("base", "__setstate__", "__getstate__"):
            raise AttributeError(name)
        return getattr(self.base, name)
