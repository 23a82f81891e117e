"""Tile planning shared by the :class:`~restorekit.inference.restorer.Restorer` and the raw tiler.

Tiles are full size everywhere (the last row/column is snapped to the border).
Images smaller than a tile, and ``tile=0``, go through whole. ``tile="auto"``
picks the largest tile that fits a memory budget and then shrinks it to cover
the image with the same number of tiles.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import torch

from restorekit.errors import ConfigError
from restorekit.inference.memory import auto_tile_size, fit_batch
from restorekit.inference.tiling import fit_tile, resolve_overlap

log = logging.getLogger("restorekit.inference")

#: smallest tile the OOM fallback goes down to
MIN_TILE = 64

ProgressArg = None | bool | Callable[[int, int], Any] | Any


class Progress:
    """Adapter over ``None`` / ``True`` (a tqdm bar) / a callable ``(done, total)`` / a tqdm-like object."""

    def __init__(self, progress: ProgressArg, total: int) -> None:
        self.total = total
        self.done = 0
        self._bar = None
        self._fn = None
        if progress is True:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit="tile", leave=False)
        elif callable(progress):
            self._fn = progress
        elif progress is not None and hasattr(progress, "update"):
            self._bar = progress
            if hasattr(progress, "reset"):
                progress.reset(total=total)

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._fn is not None:
            self._fn(self.done, self.total)

    def close(self, own: bool) -> None:
        if self._bar is not None and own:
            self._bar.close()


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def round_tile(t: int, multiple: int) -> int:
    return max(multiple, (int(t) // multiple) * multiple)


def plan_tile(
    h: int,
    w: int,
    tile: int | str,
    overlap: int | float,
    *,
    multiple: int = 1,
    model: Any = None,
    device: torch.device | None = None,
    batch: int = 1,
    memory_budget: int | None = None,
) -> tuple[int, int]:
    """Resolve ``tile`` ("auto" | int | 0) and ``overlap`` to pixels for an ``h x w`` image.

    Returns ``(tile, overlap)``; ``tile >= max(h, w)`` means the whole image in one pass.
    """
    big = max(h, w)
    if tile == 0 or tile is None:
        return big, 0
    if tile == "auto":
        max_tile = auto_tile_size(model, device or torch.device("cpu"), batch=batch, multiple=multiple, budget=memory_budget)
        if big <= max_tile:
            return big, 0
        ov = resolve_overlap(overlap, max_tile)
        t = max(fit_tile(h, max_tile, ov, multiple) if h > max_tile else 0, fit_tile(w, max_tile, ov, multiple) if w > max_tile else 0)
        return t, resolve_overlap(overlap, t) if isinstance(overlap, float) and overlap < 1 else ov
    try:
        t = int(tile)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tile must be 'auto', 0 (whole image) or a positive number of pixels, got {tile!r}") from exc
    if t < 0:
        raise ConfigError(f"tile must be 'auto', 0 (whole image) or a positive number of pixels, got {tile!r}")
    if t >= big:
        return big, 0
    if multiple > 1 and t % multiple:
        t2 = max(multiple, (t // multiple) * multiple)
        log.info("tile %d is not a multiple of %d (the model's size multiple); using %d", t, multiple, t2)
        t = t2
    return t, resolve_overlap(overlap, t)


def resolve_plan(
    model: Any,
    h: int,
    w: int,
    tile: int | str,
    overlap: int | float,
    batch: int,
    device: torch.device,
    *,
    multiple: int | None = None,
    memory_budget: int | None = None,
) -> tuple[int, int, int]:
    """``(tile, overlap, batch)`` that :func:`restore_image` will use for an ``h x w`` image.

    On CPU batching gains little, so ``"auto"`` sizes the tile for one tile at a
    time (fewer, larger tiles waste less on overlap) and then keeps as much of the
    requested batch as still fits the memory budget. Elsewhere the tile is sized
    for the whole batch.
    """
    if multiple is None:
        from restorekit.inference.runtime import Runtime, model_info

        multiple = model.info.size_multiple if isinstance(model, Runtime) else model_info(model).size_multiple
    auto_cpu = tile == "auto" and device.type == "cpu"
    t, ov = plan_tile(h, w, tile, overlap, multiple=multiple, model=model, device=device,
                      batch=1 if auto_cpu else int(batch), memory_budget=memory_budget)
    if auto_cpu:
        batch = fit_batch(model, device, min(t, h), min(t, w), int(batch), memory_budget)
    return t, ov, int(batch)
