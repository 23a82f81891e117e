"""Crops and synchronized augmentation over any number of aligned arrays.

Everything here works on NumPy arrays of shape ``(H, W)`` or ``(H, W, C)`` of
any dtype and channel count (uint8/uint16 straight from the decoder, float32,
a Bayer mosaic, a 1-channel noise map...). Crops happen *before* float
conversion, so a 1280x720 frame costs a 256x256 patch of conversion work.

Aligned arrays must share (H, W); the same crop window and the same
flips/rotation are applied to all of them, so they stay pixel-aligned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from restorekit.errors import DataError
# the crop primitives live in restorekit.utils.crop (shared with restorekit.raw); re-exported here
from restorekit.utils.crop import Crop, apply_crop, plan_center_crop, plan_random_crop  # noqa: F401


@dataclass(frozen=True)
class Augment:
    """Synchronized geometric augmentation: flips then ``rot90`` quarter turns (counter-clockwise)."""

    hflip: bool = False
    vflip: bool = False
    rot90: int = 0

    def as_dict(self) -> dict[str, int | bool]:
        return {"hflip": self.hflip, "vflip": self.vflip, "rot90": self.rot90}


def check_aligned(arrays: Sequence[np.ndarray], names: Sequence[str] | None = None) -> tuple[int, int]:
    """Return the common (H, W) of ``arrays``; raise :class:`DataError` naming the ones that differ."""
    if not arrays:
        raise ValueError("no arrays given")
    h, w = arrays[0].shape[:2]
    bad = [i for i, a in enumerate(arrays) if a.shape[:2] != (h, w)]
    if bad:
        labels = list(names) if names else [f"array {i}" for i in range(len(arrays))]
        sizes = ", ".join(f"{labels[i]} {arrays[i].shape[1]}x{arrays[i].shape[0]}" for i in range(len(arrays)))
        raise DataError(f"aligned arrays differ in size: {sizes}")
    return h, w


def crop_arrays(arrays: Sequence[np.ndarray], crop: Crop, pad_mode: str = "reflect") -> list[np.ndarray]:
    """Apply the same ``crop`` to every array."""
    return [apply_crop(a, crop, pad_mode) for a in arrays]


def random_crop(
    arrays: Sequence[np.ndarray], size: int | tuple[int, int], rng: np.random.Generator, *, bayer_safe: bool = False
) -> tuple[list[np.ndarray], Crop]:
    """One random window of ``size`` over all aligned ``arrays`` (reflect-padded when smaller)."""
    h, w = check_aligned(arrays)
    crop = plan_random_crop(h, w, size, rng, even=bayer_safe)
    return crop_arrays(arrays, crop), crop


def center_crop(arrays: Sequence[np.ndarray], size: int | tuple[int, int] | None, *, bayer_safe: bool = False) -> list[np.ndarray]:
    """The centre window of ``size`` (``None`` = unchanged) of every aligned array."""
    h, w = check_aligned(arrays)
    return crop_arrays(arrays, plan_center_crop(h, w, size, even=bayer_safe))


def sample_augment(rng: np.random.Generator, *, hflip: bool = True, vflip: bool = True, rot90: bool = True) -> Augment:
    """Draw one synchronized augmentation; the three draws are always consumed (stable streams)."""
    u = rng.random(2)
    k = int(rng.integers(0, 4))
    return Augment(hflip=bool(hflip and u[0] < 0.5), vflip=bool(vflip and u[1] < 0.5), rot90=k if rot90 else 0)


def apply_augment(arr: np.ndarray, aug: Augment) -> np.ndarray:
    """Apply ``aug`` to an (H, W[, C]) array (returns a view; copy when contiguity matters)."""
    if aug.hflip:
        arr = arr[:, ::-1]
    if aug.vflip:
        arr = arr[::-1]
    if aug.rot90:
        arr = np.rot90(arr, aug.rot90, axes=(0, 1))
    return arr


def augment_arrays(arrays: Sequence[np.ndarray], aug: Augment) -> list[np.ndarray]:
    """Apply the same augmentation to every aligned array."""
    return [apply_augment(a, aug) for a in arrays]


def to_float(arr: np.ndarray) -> np.ndarray:
    """uint8 -> /255, uint16 -> /65535, float -> as is; returns a contiguous float32 array."""
    if arr.dtype == np.uint8:
        return np.multiply(arr, np.float32(1.0 / 255.0), dtype=np.float32)
    if arr.dtype == np.uint16:
        return np.multiply(arr, np.float32(1.0 / 65535.0), dtype=np.float32)
    return np.ascontiguousarray(arr, dtype=np.float32)


def to_chw_tensor(arr: np.ndarray) -> "torch.Tensor":  # noqa: F821
    """(H, W[, C]) float array -> contiguous (C, H, W) float32 tensor."""
    import torch

    if arr.ndim == 2:
        arr = arr[..., None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32))
