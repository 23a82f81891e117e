"""Shared fixtures: small real photos from scikit-image, temporary folders."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MLFLOW_TRACKING_URI", "")  # never reach a user's server from tests
os.environ.setdefault("PYTHONHASHSEED", "0")


def _photo(name: str, size: int | None = None) -> np.ndarray:
    """A real photo from skimage.data as float32 RGB in [0, 1], optionally centre-cropped square."""
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3].astype(np.float32) / 255.0
    if size is not None:
        h, w = img.shape[:2]
        top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
        img = img[top : top + size, left : left + size]
    return np.ascontiguousarray(img)


@pytest.fixture(scope="session")
def photo():
    """Factory: ``photo("astronaut", 128)`` -> (128, 128, 3) float32 RGB in [0, 1]."""
    return _photo


@pytest.fixture(scope="session")
def astronaut_small() -> np.ndarray:
    return _photo("astronaut", 128)


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    yield
