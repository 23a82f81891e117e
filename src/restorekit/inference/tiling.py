"""Tile grids and blending windows for tiled inference.

A grid along one axis of length ``L`` with tile ``t`` and overlap ``ov`` starts a
tile every ``t - ov`` pixels and snaps the last one to the border, so every tile
is full size (``t`` pixels) and the image is covered exactly. Each tile gets a
separable weight ``wy (t,) x wx (t,)`` that ramps up over the overlap with its
neighbours (linear feathering like the deblurring seed, or a raised-cosine
window) and is flat (1) against the image border. The blended output is the
weighted sum of tile outputs divided by the summed weights; because the grid and
the windows are separable, the summed weights are the outer product of two 1-D
sums, so no full-size weight image is ever allocated.
"""

from __future__ import annotations

import math

import numpy as np

from restorekit.errors import ConfigError

BLENDS = ("linear", "cosine")


def resolve_overlap(overlap: int | float, tile: int) -> int:
    """Overlap in pixels: an int is pixels, a float in (0, 1) a fraction of ``tile``.

    The result is clipped to ``[0, tile // 2]`` so that the stride stays positive
    and at least half a tile.
    """
    if isinstance(overlap, bool):
        raise ConfigError(f"overlap must be pixels (int) or a fraction (float in (0,1)), got {overlap!r}")
    if isinstance(overlap, float) and 0.0 < overlap < 1.0:
        px = int(round(overlap * tile))
    else:
        try:
            px = int(overlap)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"overlap must be pixels (int) or a fraction (float in (0,1)), got {overlap!r}") from exc
        if px < 0:
            raise ConfigError(f"overlap must be >= 0, got {overlap!r}")
    return max(0, min(px, tile // 2))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of full-size tiles covering ``[0, length)``; the last tile is snapped to the border.

    ``tile >= length`` gives a single tile at 0 (the caller then uses ``length`` as the tile size).
    """
    if tile >= length:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return sorted(set(starts))


def _ramp(n: int, blend: str) -> np.ndarray:
    """Rising edge of length ``n`` with values in (0, 1); ``ramp + ramp[::-1] == 1``."""
    k = (np.arange(n, dtype=np.float64) + 0.5) / n
    if blend == "linear":
        return k
    if blend == "cosine":
        return 0.5 - 0.5 * np.cos(math.pi * k)
    raise ConfigError(f"blend must be one of {', '.join(BLENDS)}, got {blend!r}")


def tile_window(starts: list[int], index: int, tile: int, blend: str = "linear") -> np.ndarray:
    """1-D weight ``(tile,)`` float32 of tile ``index`` in a grid with ``starts``.

    The weight rises over the actual overlap with the previous tile and falls over
    the overlap with the next one; it is 1 against the image border and in the
    middle. Complementary ramps make two overlapping tiles sum to 1.
    """
    if blend not in BLENDS:
        raise ConfigError(f"blend must be one of {', '.join(BLENDS)}, got {blend!r}")
    w = np.ones(tile, dtype=np.float64)
    s = starts[index]
    if index > 0:
        n = starts[index - 1] + tile - s
        if n > 0:
            w[:n] = np.minimum(w[:n], _ramp(n, blend))
    if index + 1 < len(starts):
        n = s + tile - starts[index + 1]
        if n > 0:
            w[tile - n :] = np.minimum(w[tile - n :], _ramp(n, blend)[::-1])
    return w.astype(np.float32)


def axis_plan(length: int, tile: int, overlap: int, blend: str) -> tuple[list[int], list[np.ndarray], np.ndarray]:
    """Starts, per-tile windows and the summed window ``(length,)`` along one axis."""
    t = min(tile, length)
    starts = tile_starts(length, t, overlap)
    windows = [tile_window(starts, i, t, blend) for i in range(len(starts))]
    total = np.zeros(length, dtype=np.float64)
    for s, w in zip(starts, windows):
        total[s : s + t] += w
    return starts, windows, total.astype(np.float32)


def fit_tile(length: int, max_tile: int, overlap: int, multiple: int) -> int:
    """The smallest tile (a multiple of ``multiple``, <= ``max_tile`` when possible) that covers
    ``length`` with as few tiles as ``max_tile`` would need.

    Used by ``tile="auto"``: a 2048-pixel side with a 512 budget and 32 overlap
    needs 5 tiles, which fit in 448 pixels instead of 512, so 20 % fewer pixels
    are computed.
    """
    if length <= max_tile:
        return length
    n = math.ceil((length - overlap) / max(1, max_tile - overlap))
    t = math.ceil((length + (n - 1) * overlap) / n)
    t = int(math.ceil(t / multiple) * multiple)
    return min(max(t, 2 * overlap + multiple), length) if t < length else length
