"""Seeding helpers for reproducible runs and per-sample random streams."""

from __future__ import annotations

import hashlib

import numpy as np


def sample_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A NumPy generator determined only by ``seed`` and ``keys`` (e.g. epoch, index).

    Used so that a sample's crop and degradation are the same whatever the
    worker process or the order in which samples are drawn.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(str(int(seed)).encode())
    for k in keys:
        h.update(b"/")
        h.update(str(k).encode())
    return np.random.default_rng(int.from_bytes(h.digest(), "little"))
