"""Crop windows over ``(H, W[, C])`` NumPy arrays (any dtype), shared by the RGB and raw datasets.

They live below both :mod:`restorekit.data` and :mod:`restorekit.raw` so that neither imports the
other for them; :mod:`restorekit.data.transforms` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Crop:
    """A crop window in the (padded) image: ``top``, ``left``, ``size`` and the padding applied first."""

    top: int
    left: int
    height: int
    width: int
    pad_top: int = 0
    pad_bottom: int = 0
    pad_left: int = 0
    pad_right: int = 0


def _even_down(x: int) -> int:
    return x - (x % 2)


def plan_random_crop(h: int, w: int, size: int | tuple[int, int], rng: np.random.Generator, *, even: bool = False) -> Crop:
    """Draw a random ``size`` window in an (h, w) image, padding (reflect) when the image is smaller.

    ``even`` keeps the offsets and the padding even (Bayer-safe: the CFA phase is preserved).
    """
    ph, pw = (size, size) if isinstance(size, int) else size
    pad_h, pad_w = max(0, ph - h), max(0, pw - w)
    pt, pl = pad_h // 2, pad_w // 2
    if even:  # reflect padding keeps the CFA parity (row -k mirrors row k); even offsets keep the phase
        pt, pl = _even_down(pt), _even_down(pl)
    pb, pr = pad_h - pt, pad_w - pl
    hh, ww = h + pt + pb, w + pl + pr
    max_top, max_left = hh - ph, ww - pw
    if even:
        top = 2 * int(rng.integers(0, max_top // 2 + 1)) if max_top > 0 else 0
        left = 2 * int(rng.integers(0, max_left // 2 + 1)) if max_left > 0 else 0
    else:
        top = int(rng.integers(0, max_top + 1)) if max_top > 0 else 0
        left = int(rng.integers(0, max_left + 1)) if max_left > 0 else 0
    return Crop(top, left, ph, pw, pt, pb, pl, pr)


def plan_center_crop(h: int, w: int, size: int | tuple[int, int] | None, *, even: bool = False) -> Crop:
    """The centre ``size`` window (padding when smaller); ``None`` = the full image."""
    if size is None:
        return Crop(0, 0, h, w)
    ph, pw = (size, size) if isinstance(size, int) else size
    pad_h, pad_w = max(0, ph - h), max(0, pw - w)
    pt, pl = pad_h // 2, pad_w // 2
    if even:
        pt, pl = _even_down(pt), _even_down(pl)
    pb, pr = pad_h - pt, pad_w - pl
    top, left = (h + pad_h - ph) // 2, (w + pad_w - pw) // 2
    if even:
        top, left = _even_down(top), _even_down(left)
    return Crop(top, left, ph, pw, pt, pb, pl, pr)


def apply_crop(arr: np.ndarray, crop: Crop, pad_mode: str = "reflect") -> np.ndarray:
    """Cut ``crop`` out of ``arr`` (H, W[, C]); only the needed rows/columns are padded or copied.

    Reflect padding falls back to ``symmetric`` repetition when the image is
    smaller than the padding (NumPy reflects repeatedly).
    """
    if not (crop.pad_top or crop.pad_bottom or crop.pad_left or crop.pad_right):
        return arr[crop.top : crop.top + crop.height, crop.left : crop.left + crop.width]
    pads = [(crop.pad_top, crop.pad_bottom), (crop.pad_left, crop.pad_right)] + [(0, 0)] * (arr.ndim - 2)
    padded = np.pad(arr, pads, mode=pad_mode)  # type: ignore[call-overload]
    return padded[crop.top : crop.top + crop.height, crop.left : crop.left + crop.width]
