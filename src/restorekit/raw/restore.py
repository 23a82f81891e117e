"""Denoise a raw file with a noise-conditioned model (``nafnet_cond``), tiled on the packed grid.

:func:`restore_raw_file` reads a Bayer raw (rawpy), normalises it to an RGGB
mosaic in [0, 1], takes the ISO from the metadata (or the caller), demosaics the
noisy residual, runs the model on overlapping tiles of the half-resolution
packed mosaic (each tile with its full-resolution residual window and the
condition ISO / 6400), blends tiles with linear ramps, mixes the result with the
noisy residual by ``strength`` and writes:

* ``.tif`` / ``.tiff`` / ``.png``: 16-bit, rendered (as-shot white balance, the
  file's colour matrix, sRGB curve), or camera-linear with ``render="linear"``;
* ``.jpg``: 8-bit rendered;
* ``.dng``: a 16-bit LinearRaw DNG holding the camera-linear result, with the
  file's white balance, colour matrix and ISO (raw converters develop it).

``model`` is an ``nn.Module`` taking ``(rggb, cond, residual)`` or a runtime
with ``run_raw(rggb, cond, residual)`` (ONNX / TorchScript exports).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ConfigError, ImageWriteError

#: default tile side in full-resolution pixels (128 on the packed grid, as the seed's app)
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 0.25


def _resolve_iso(iso: Any, meta_iso: float | None, path: Path) -> float:
    if iso is None or (isinstance(iso, str) and iso.lower() == "auto"):
        if not meta_iso:
            raise ConfigError(f"'{path}': no ISO in the file's metadata; pass --iso N")
        return float(meta_iso)
    try:
        v = float(iso)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"iso must be 'auto' or a number, got {iso!r}") from exc
    if v <= 0:
        raise ConfigError(f"iso must be > 0, got {iso!r}")
    return v


def _tile_px(tile: Any, h: int, w: int) -> int:
    """Tile side on the packed grid (half resolution)."""
    if tile is None or (isinstance(tile, str) and tile == "auto"):
        t = DEFAULT_TILE // 2
    else:
        t = int(tile) // 2
        if t <= 0:
            return max(h, w)
    return max(8, t)


def _overlap_px(overlap: Any, tile: int) -> int:
    from restorekit.inference.tiling import resolve_overlap

    if isinstance(overlap, float) and 0 < overlap < 1:
        return resolve_overlap(overlap, tile)
    return resolve_overlap(int(overlap) // 2, tile)  # pixels are full-resolution


def _forward(model: Any, rggb, cond, residual):  # noqa: ANN001, ANN202
    import torch

    if isinstance(model, torch.nn.Module):
        from restorekit.models.value_range import from_model_range, model_value_range, to_model_range

        vr = model_value_range(model)
        with torch.inference_mode():
            out = model(to_model_range(rggb, vr), cond, to_model_range(residual, vr))
        return from_model_range(out, vr).float()
    if hasattr(model, "run_raw"):
        return model.run_raw(rggb, cond, residual).float()
    raise ConfigError(f"model of type {type(model).__name__} cannot run a conditioned raw model (needs (rggb, cond, residual))")


def denoise_mosaic(
    model: Any,
    mosaic: np.ndarray,
    iso: float,
    *,
    strength: float = 1.0,
    tile: Any = "auto",
    overlap: Any = DEFAULT_OVERLAP,
    device: Any = None,
    demosaic: str = "bilinear",
    iso_norm: float = 6400.0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Denoise an ``(H, W)`` RGGB mosaic in [0, 1] -> (restored ``(H, W, 3)``, noisy residual ``(H, W, 3)``, tiles).

    Both outputs are camera-linear float32 in [0, 1]; ``restored = residual +
    strength * (model - residual)``.
    """
    import torch

    from restorekit.inference.tiling import axis_plan
    from restorekit.raw.bayer import demosaic as demosaic_fn
    from restorekit.raw.bayer import pack_rggb

    if not 0.0 <= float(strength) <= 1.0:
        raise ConfigError(f"strength must be in [0, 1], got {strength}")
    dev = None
    if isinstance(model, torch.nn.Module):
        from restorekit.device import resolve_device

        dev = resolve_device(device or "auto")
        model = model.to(dev).eval()
    residual = np.clip(demosaic_fn(mosaic, demosaic), 0, 1).astype(np.float32)
    packed = pack_rggb(np.ascontiguousarray(mosaic, np.float32))  # (4, h, w)
    h, w = packed.shape[1:]
    t = _tile_px(tile, h, w)
    th, tw = min(t, h), min(t, w)
    ov = _overlap_px(overlap, min(th, tw))
    ys, wys, tot_y = axis_plan(h, th, ov, "linear")
    xs, wxs, tot_x = axis_plan(w, tw, ov, "linear")
    acc = np.zeros((3, 2 * h, 2 * w), np.float32)
    cond = torch.tensor([[iso / iso_norm]], dtype=torch.float32)
    res_t = torch.from_numpy(residual.transpose(2, 0, 1).copy())
    pk_t = torch.from_numpy(packed)
    n = 0
    for y, wy in zip(ys, wys):
        for x, wx in zip(xs, wxs):
            rg = pk_t[None, :, y : y + th, x : x + tw]
            rs = res_t[None, :, 2 * y : 2 * (y + th), 2 * x : 2 * (x + tw)]
            if dev is not None:
                rg, rs, c = rg.to(dev), rs.to(dev), cond.to(dev)
            else:
                c = cond
            out = _forward(model, rg, c, rs)[0].cpu().numpy()
            if out.shape != (3, 2 * th, 2 * tw):
                raise ConfigError(f"raw model returned shape {tuple(out.shape)} for a ({2 * th}, {2 * tw}) tile; expected (3, {2 * th}, {2 * tw})")
            wgt = np.repeat(np.repeat(np.outer(wy, wx), 2, 0), 2, 1)  # weights on the full-res grid
            acc[:, 2 * y : 2 * (y + th), 2 * x : 2 * (x + tw)] += out * wgt[None]
            n += 1
    total = np.repeat(np.repeat(np.outer(tot_y, tot_x), 2, 0), 2, 1)
    restored = (acc / np.maximum(total, 1e-8)[None]).transpose(1, 2, 0)
    out = residual + float(strength) * (restored - residual)
    return np.clip(out, 0, 1).astype(np.float32), residual, n


def restore_raw_file(
    model: Any,
    path: str | Path,
    out_path: str | Path,
    *,
    iso: Any = "auto",
    strength: float = 1.0,
    tile: Any = "auto",
    overlap: Any = DEFAULT_OVERLAP,
    device: Any = None,
    demosaic: str = "bilinear",
    render: str = "srgb",
) -> dict[str, Any]:
    """Denoise the raw file ``path`` and write ``out_path`` (format by extension, see the module docstring).

    ``iso``: "auto" (metadata) or a number; ``strength`` in [0, 1]; ``tile``:
    full-resolution tile side ("auto" = 256, 0 = whole frame); ``overlap``: a
    fraction of the tile or full-resolution pixels; ``render``: "srgb" or "linear"
    for TIFF/PNG outputs. Returns ``{"iso", "width", "height", "tiles", "seconds", "out"}``.
    """
    from restorekit.raw.io import read_raw

    t0 = time.perf_counter()
    src = Path(path)
    dest = Path(out_path)
    raw = read_raw(src)
    iso_v = _resolve_iso(iso, raw.iso, src)
    out, _, n = denoise_mosaic(model, raw.mosaic(), iso_v, strength=strength, tile=tile, overlap=overlap,
                               device=device, demosaic=demosaic)
    write_raw_result(dest, out, raw=raw, iso=iso_v, render=render)
    h, w = out.shape[:2]
    return {"iso": iso_v, "width": w, "height": h, "tiles": n, "seconds": time.perf_counter() - t0, "out": str(dest)}


def write_raw_result(dest: Path, camera_rgb: np.ndarray, *, raw: Any, iso: float | None = None, render: str = "srgb") -> Path:
    """Write a camera-linear ``(H, W, 3)`` result next to its source :class:`~restorekit.raw.io.RawImage` metadata."""
    from restorekit.io import write_image
    from restorekit.raw.bayer import render_srgb
    from restorekit.raw.io import write_linear_dng

    ext = dest.suffix.lower()
    if ext == ".dng":
        return write_linear_dng(dest, camera_rgb, wb=raw.wb, cam_to_srgb=raw.cam_to_srgb, iso=iso or raw.iso,
                                exposure_time=raw.exposure_time, make=raw.make or "restorekit", model=raw.model or "restored")
    if render not in ("srgb", "linear"):
        raise ConfigError(f"render must be 'srgb' or 'linear', got {render!r}")
    img = render_srgb(camera_rgb, raw.wb, raw.cam_to_srgb) if render == "srgb" else np.clip(camera_rgb, 0, 1)
    if ext in (".tif", ".tiff", ".png"):
        write_image(dest, img, bit_depth=16)
    elif ext in (".jpg", ".jpeg", ".webp", ".bmp"):
        write_image(dest, img, bit_depth=8)
    else:
        raise ImageWriteError(dest, "raw results are written as .tif/.tiff/.png (16-bit), .jpg or .dng")
    return dest
