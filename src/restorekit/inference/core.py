"""Tiled inference on any image size: ``restore_image`` (arrays, PIL, tensors) and ``restore_tensor``.

The input image and the blended output stay on the CPU; only the batch of tiles
being processed is moved to the device by the :class:`~restorekit.inference.runtime.Runtime`.
Tiles are full size everywhere (the last row/column is snapped to the border),
blended with linear or cosine windows and normalised by the summed weights.
Images smaller than a tile, and ``tile=0``, go through whole (padded to the
model's size multiple). ``tile="auto"`` picks the largest tile that fits a
memory budget and then shrinks it to cover the image with the same number of
tiles. On a CUDA out-of-memory error the tile is halved and the image retried.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from restorekit.errors import ConfigError
from restorekit.inference.ensemble import ensemble_forward
from restorekit.inference.memory import auto_tile_size, fit_batch
from restorekit.inference.runtime import Runtime, TorchRuntime, make_runtime, model_info
from restorekit.inference.tiling import axis_plan, fit_tile, resolve_overlap

log = logging.getLogger("restorekit.inference")

#: smallest tile the OOM fallback goes down to
MIN_TILE = 64

ProgressArg = None | bool | Callable[[int, int], Any] | Any


class _Progress:
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


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_device_memory(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _round_tile(t: int, multiple: int) -> int:
    return max(multiple, (int(t) // multiple) * multiple)


def _tiled_pass(
    runtime: Runtime,
    src: torch.Tensor,
    out: torch.Tensor,
    tile: int,
    overlap: int,
    blend: str,
    batch: int,
    ensemble: bool,
    progress: ProgressArg,
) -> None:
    """One tiled pass: ``src`` (3,H,W) CPU view in [0,1] -> ``out`` (H,W,3) CPU float32 (blended, unclipped).

    ``out`` is overwritten. Tiles of size ``min(tile, H) x min(tile, W)`` are cut from
    ``src``, batched, restored, weighted and accumulated.
    """
    _, h, w = src.shape
    ys, wys, tot_y = axis_plan(h, tile, overlap, blend)
    xs, wxs, tot_x = axis_plan(w, tile, overlap, blend)
    th, tw = min(tile, h), min(tile, w)
    coords = [(iy, ix) for iy in range(len(ys)) for ix in range(len(xs))]
    out.zero_()
    bar = _Progress(progress, len(coords))
    try:
        for b0 in range(0, len(coords), max(1, batch)):
            chunk = coords[b0 : b0 + max(1, batch)]
            tiles = torch.stack([src[:, ys[iy] : ys[iy] + th, xs[ix] : xs[ix] + tw] for iy, ix in chunk])
            pred = ensemble_forward(runtime, tiles) if ensemble else runtime(tiles)
            for k, (iy, ix) in enumerate(chunk):
                wt = torch.from_numpy(np.outer(wys[iy], wxs[ix]))  # (th, tw)
                if len(ys) == 1 and len(xs) == 1:
                    out.copy_(pred[k].permute(1, 2, 0))
                else:
                    out[ys[iy] : ys[iy] + th, xs[ix] : xs[ix] + tw].add_((pred[k] * wt).permute(1, 2, 0))
            bar.update(len(chunk))
    finally:
        bar.close(own=progress is True)
    if len(ys) > 1 or len(xs) > 1:
        # summed weights are separable: divide by the row sums, then by the column sums (no (H,W) buffer)
        out.div_(torch.from_numpy(tot_y)[:, None, None])
        out.div_(torch.from_numpy(tot_x)[None, :, None])


def _maybe_tlc(model: nn.Module, tile_hw: tuple[int, int]) -> nn.Module:
    """Apply TLC to NAFNet-family models when the processed size is large relative to the training size.

    Returns a converted copy (the caller's module is untouched) or ``model``
    itself, logging why TLC was not applied.
    """
    arch = str(getattr(model, "restorekit_arch", "") or "")
    if not arch.startswith("nafnet"):
        return model
    ts = getattr(model, "restorekit_train_size", None)
    if not ts:
        log.info("TLC not applied to %s: training size unknown (set model.restorekit_train_size or the package's train_size)", arch)
        return model
    ts_h, ts_w = (int(ts[0]), int(ts[1])) if isinstance(ts, (list, tuple)) else (int(ts), int(ts))
    if tile_hw[0] <= 1.5 * ts_h and tile_hw[1] <= 1.5 * ts_w:
        log.info("TLC not needed for %s: tiles %dx%d are within 1.5x the training size %dx%d", arch, *tile_hw, ts_h, ts_w)
        return model
    try:
        from restorekit.models.tlc import enable_tlc
    except ImportError as exc:
        log.warning("TLC not applied to %s: restorekit.models.tlc is unavailable (%s)", arch, exc)
        return model
    import weakref

    from restorekit.inference.runtime import _fingerprint

    for k in [k for k, v in _TLC_CACHE.items() if v[0]() is None]:  # drop copies of collected modules
        del _TLC_CACHE[k]
    fp = (_fingerprint(model), ts_h, ts_w)
    hit = _TLC_CACHE.get(id(model))
    if hit is not None and hit[0]() is model and hit[1] == fp:
        return hit[2]
    m = copy.deepcopy(model)
    res = enable_tlc(m, train_size=(ts_h, ts_w))
    m = res if isinstance(res, nn.Module) else m
    _TLC_CACHE[id(model)] = (weakref.ref(model), fp, m)
    log.info("TLC applied to %s for %dx%d tiles (training size %dx%d)", arch, *tile_hw, ts_h, ts_w)
    return m


_TLC_CACHE: dict[int, tuple[Any, tuple, nn.Module]] = {}


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
        native = getattr(model, "img_size", None)  # fixed-size models (ViT): tiles of their native size
        if isinstance(native, int) and native > 0:
            max_tile = native
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
        multiple = model.info.size_multiple if isinstance(model, Runtime) else model_info(model).size_multiple
    auto_cpu = tile == "auto" and device.type == "cpu"
    t, ov = plan_tile(h, w, tile, overlap, multiple=multiple, model=model, device=device,
                      batch=1 if auto_cpu else int(batch), memory_budget=memory_budget)
    if auto_cpu:
        batch = fit_batch(model, device, min(t, h), min(t, w), int(batch), memory_budget)
    return t, ov, int(batch)


def restore_tensor(
    model: nn.Module | Runtime | str,
    x: torch.Tensor,
    *,
    tile: int | str = "auto",
    overlap: int | float = 32,
    blend: str = "linear",
    device: str | torch.device | None = None,
    batch: int = 4,
    ensemble: bool = False,
    progress: ProgressArg = None,
    backend: str = "auto",
    clip: bool = True,
    memory_budget: int | None = None,
) -> torch.Tensor:
    """Restore ``x`` ``(1, 3, H, W)`` or ``(3, H, W)`` float RGB in [0, 1] -> ``(1, 3, H, W)`` CPU float32 in [0, 1].

    ``model``: an ``nn.Module`` (any value range; see :mod:`restorekit.models.value_range`),
    a :class:`Runtime`, or a path to a package / exported ``.onnx`` / TorchScript file.
    """
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ConfigError(f"restore_tensor expects a (1, 3, H, W) tensor, got shape {tuple(x.shape)}")
    src = x[0].detach().to("cpu", torch.float32)
    out = _restore_chw(model, src, tile=tile, overlap=overlap, blend=blend, device=device, batch=batch,
                       ensemble=ensemble, progress=progress, backend=backend, memory_budget=memory_budget)
    if clip:
        out.clamp_(0.0, 1.0)
    return out.permute(2, 0, 1).unsqueeze(0).contiguous()


def _restore_chw(
    model: nn.Module | Runtime | str,
    src: torch.Tensor,
    *,
    tile: int | str,
    overlap: int | float,
    blend: str,
    device: str | torch.device | None,
    batch: int,
    ensemble: bool,
    progress: ProgressArg,
    backend: str,
    memory_budget: int | None,
) -> torch.Tensor:
    """Core: ``src`` (3,H,W) CPU float32 view in [0,1] -> (H,W,3) CPU float32 (unclipped)."""
    from restorekit.device import resolve_device

    if blend not in ("linear", "cosine"):
        raise ConfigError(f"blend must be 'linear' or 'cosine', got {blend!r}")
    if int(batch) < 1:
        raise ConfigError(f"batch must be >= 1, got {batch!r}")
    _, h, w = src.shape
    if isinstance(model, nn.Module):
        info = model_info(model)
        dev = resolve_device(device) if device is not None else None
        if dev is None:
            p = next(iter(model.parameters()), None)
            dev = p.device if p is not None and p.device.type != "cpu" else resolve_device("auto")
    elif isinstance(model, Runtime):
        info, dev = model.info, model.device
    else:
        model = make_runtime(model, device, backend)
        info, dev = model.info, model.device
    mult = info.size_multiple
    t, ov, batch = resolve_plan(model, h, w, tile, overlap, batch, dev, multiple=mult, memory_budget=memory_budget)
    out = torch.empty((h, w, 3), dtype=torch.float32)
    runtime_cache: dict[tuple[int, int], Runtime] = {}

    def runtime_for(tile_hw: tuple[int, int]) -> Runtime:
        if isinstance(model, Runtime):
            return model
        key = tile_hw
        if key not in runtime_cache:
            m = _maybe_tlc(model, tile_hw)
            runtime_cache[key] = make_runtime(m, dev, backend)
        return runtime_cache[key]

    while True:
        rt = runtime_for((min(t, h), min(t, w)))
        try:
            _tiled_pass(rt, src, out, t, ov, blend, int(batch), ensemble, progress)
            return out
        except Exception as exc:  # noqa: BLE001 - only OOM is retried
            if not _is_oom(exc):
                raise
            new_t = _round_tile(min(t, max(h, w)) // 2, mult)
            if new_t < MIN_TILE or new_t >= t:
                if int(batch) > 1:
                    batch = max(1, int(batch) // 2)
                    log.warning("out of memory at tile %d; retrying with batch %d", t, batch)
                    _free_device_memory(dev)
                    continue
                raise
            log.warning("out of memory at tile %d on %s; retrying the image with tile %d", t, dev, new_t)
            _free_device_memory(dev)
            ov = resolve_overlap(overlap, new_t)
            t = new_t
            runtime_cache.clear()


def _image_to_chw(image: Any) -> torch.Tensor:
    """numpy (H,W[,3]) float [0,1]/uint8/uint16, PIL image, or tensor (3,H,W)/(1,3,H,W) -> (3,H,W) float32 CPU view."""
    if isinstance(image, torch.Tensor):
        t = image.detach()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ConfigError(f"restore_image expects one image, got a batch of shape {tuple(t.shape)}")
            t = t[0]
        if t.ndim == 3 and t.shape[0] in (1, 3):
            t = t.expand(3, -1, -1) if t.shape[0] == 1 else t
            if t.dtype == torch.uint8:
                t = t.float() / 255.0
            return t.to("cpu", torch.float32)
        if t.ndim == 3 and t.shape[-1] in (1, 3):
            image = t.cpu().numpy()
        elif t.ndim == 2:
            image = t.cpu().numpy()
        else:
            raise ConfigError(f"restore_image: unsupported tensor shape {tuple(t.shape)} (use (3,H,W) or (1,3,H,W))")
    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    elif arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ConfigError(f"restore_image expects an (H, W, 3) image, got shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[..., :3]
    if any(st < 0 for st in arr.strides):  # flipped views: torch cannot view negative strides
        arr = np.ascontiguousarray(arr)
    t = torch.from_numpy(arr).permute(2, 0, 1)  # a view: no copy of the full image
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return t


def restore_image(
    model: nn.Module | Runtime | str,
    image: Any,
    *,
    tile: int | str = "auto",
    overlap: int | float = 32,
    blend: str = "linear",
    device: str | torch.device | None = None,
    batch: int = 4,
    ensemble: bool = False,
    progress: ProgressArg = None,
    backend: str = "auto",
    memory_budget: int | None = None,
) -> np.ndarray:
    """Restore one RGB image; returns ``(H, W, 3)`` float32 in [0, 1] (clipped).

    ``image``: ``(H, W, 3)``/``(H, W)`` numpy array (float in [0, 1], uint8 or
    uint16), a PIL image, or a ``(3, H, W)``/``(1, 3, H, W)`` tensor in [0, 1].
    ``model``: ``nn.Module`` (its value range is handled), a :class:`Runtime`, or
    a path to a model package / exported ``.onnx`` / TorchScript file.
    ``tile``: ``"auto"`` (from a memory budget), pixels, or 0 for the whole image.
    ``overlap``: pixels (int) or a fraction of the tile (float in (0, 1)).
    ``blend``: ``"linear"`` (feathering) or ``"cosine"``. ``batch``: tiles per forward.
    ``ensemble``: average of the 8 flips/rotations. ``progress``: True for a tqdm
    bar, a callable ``(done, total)`` or a tqdm-like object. ``backend``: ``auto``
    (fastest available on CPU), ``eager``, ``compile``, ``onnxruntime``.
    """
    src = _image_to_chw(image)
    out = _restore_chw(model, src, tile=tile, overlap=overlap, blend=blend, device=device, batch=batch,
                       ensemble=ensemble, progress=progress, backend=backend, memory_budget=memory_budget)
    out.clamp_(0.0, 1.0)
    return out.numpy()
