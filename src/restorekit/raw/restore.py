"""Denoise a raw file with a noise-conditioned model (``nafnet_cond``) through the :class:`Restorer`.

:func:`restore_raw_file` reads a Bayer raw (rawpy), normalises it to an RGGB
mosaic in [0, 1], takes the ISO from the metadata (or the caller), demosaics the
noisy residual and calls ``restorer(residual, rggb=packed, cond=ISO / 6400)``:
the :class:`~restorekit.inference.restorer.Restorer` tiles every input
consistently (tiles from a memory budget, OOM retry, batching, TLC, any runtime:
eager, ONNX Runtime, TorchScript) and mixes the result with the noisy residual by
``strength``. It writes:

* ``.tif`` / ``.tiff`` / ``.png``: 16-bit, rendered (as-shot white balance, the
  file's colour matrix, sRGB curve), or camera-linear with ``render="linear"``;
* ``.jpg``: 8-bit rendered;
* ``.dng``: a 16-bit LinearRaw DNG holding the camera-linear result, with the
  file's white balance, colour matrix and ISO (raw converters develop it).

``model`` is a :class:`Restorer` (its options are used, ``strength`` included), or
anything :meth:`Restorer.coerce` takes (a module with a raw model card, a runtime,
a model file), run with the ``tile``/``overlap``/``device``/``strength`` given.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ConfigError, DataError, ImageWriteError

#: default tile side in full-resolution pixels when a bare module is given (128 on the packed grid)
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 0.25
ISO_NORM = 6400.0


def _resolve_iso(iso: Any, meta_iso: float | None, path: Path) -> float:
    if iso is None or (isinstance(iso, str) and iso.lower() == "auto"):
        if not meta_iso:
            raise ConfigError(f"'{path}': no ISO in the file's metadata; pass --iso N")
        return float(meta_iso)
    try:
        v = float(iso)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--iso must be 'auto' or a number, got {iso!r}") from exc
    if not np.isfinite(v) or v <= 0:
        raise ConfigError(f"--iso must be > 0, got {iso!r}")
    return v


def raw_restorer(model: Any, *, strength: float | None = None, tile: Any = None, overlap: Any = None,
                 device: Any = None) -> Any:
    """A Restorer for ``model`` with the given options changed (None keeps the current/default value).

    Raises ConfigError when the model does not take raw inputs (``rggb``/``cond``).
    """
    from restorekit.inference.options import RestoreOptions
    from restorekit.inference.restorer import Restorer

    if strength is not None and not 0.0 <= float(strength) <= 1.0:
        raise ConfigError(f"--strength must be in [0, 1], got {strength}")
    values = {"strength": strength, "tile": tile, "overlap": overlap, "device": None if device is None else str(device)}
    if isinstance(model, Restorer):
        r = model.with_options(**values) if any(v is not None for v in values.values()) else model
    else:
        defaults = {"tile": DEFAULT_TILE, "overlap": DEFAULT_OVERLAP}
        r = Restorer.coerce(model, RestoreOptions.parse(**{**defaults, **{k: v for k, v in values.items() if v is not None}}))
    if "rggb" not in r.caps.inputs or "cond" not in r.caps.inputs:
        raise ConfigError(f"model '{r.arch}' restores RGB images (inputs {list(r.caps.inputs)}); raw files need a "
                          "noise-conditioned raw model (inputs rggb, cond, residual)")
    return r


def denoise_mosaic(
    model: Any,
    mosaic: np.ndarray,
    iso: float,
    *,
    strength: float | None = None,
    tile: Any = None,
    overlap: Any = None,
    device: Any = None,
    demosaic: str = "bilinear",
    iso_norm: float = ISO_NORM,
    space_matrix: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Denoise an ``(H, W)`` RGGB mosaic in [0, 1] -> (restored ``(H, W, 3)``, noisy residual ``(H, W, 3)``, tiles).

    Both outputs are camera-linear float32 in [0, 1]; ``restored = clip(residual +
    strength * (model - residual))``. ``tile`` is in full-resolution pixels.
    ``space_matrix``: the 3x3 camera -> model colour space matrix (the seed's
    ``lin_rec2020``, :func:`~restorekit.raw.bayer.camera_to_space_matrix`); the
    mosaic is converted per 2x2 quad (clipped) before demosaicing and packing, and
    both outputs are mapped back to camera RGB with its inverse. None = camera space.
    """
    import torch

    from restorekit.raw.bayer import demosaic as demosaic_fn
    from restorekit.raw.bayer import pack_rggb

    restorer = raw_restorer(model, strength=strength, tile=tile, overlap=overlap, device=device)
    h, w = mosaic.shape[:2]
    if h % 2 or w % 2:
        raise ConfigError(f"raw mosaic must have an even size, got {h}x{w}")
    if space_matrix is not None:
        from restorekit.raw.bayer import mosaic_to_space

        mosaic = mosaic_to_space(mosaic, space_matrix)
    residual = np.clip(demosaic_fn(mosaic, demosaic), 0, 1).astype(np.float32)
    packed = pack_rggb(np.ascontiguousarray(mosaic, np.float32))  # (4, h/2, w/2)
    cond = torch.tensor([[iso / iso_norm]], dtype=torch.float32)
    res_t = torch.from_numpy(residual.transpose(2, 0, 1).copy())[None]
    counted = {"total": 1}

    def count(done: int, total: int) -> None:
        counted["total"] = total

    out = restorer(res_t, rggb=torch.from_numpy(packed)[None], cond=cond, progress=count)[0]
    restored = out.permute(1, 2, 0).numpy().astype(np.float32)
    if space_matrix is not None:
        from restorekit.raw.bayer import rgb_to_space

        back = np.linalg.inv(np.asarray(space_matrix, np.float64))
        restored = np.clip(rgb_to_space(restored, back), 0, 1)
        residual = np.clip(rgb_to_space(residual, back), 0, 1)
    return restored, residual, counted["total"]


def restore_raw_file(
    model: Any,
    path: str | Path,
    out_path: str | Path,
    *,
    iso: Any = "auto",
    strength: float | None = None,
    tile: Any = None,
    overlap: Any = None,
    device: Any = None,
    demosaic: str = "bilinear",
    render: str = "srgb",
    color_space: str = "camera",
) -> dict[str, Any]:
    """Denoise the raw file ``path`` and write ``out_path`` (format by extension, see the module docstring).

    ``iso``: "auto" (metadata) or a number; ``strength`` in [0, 1]; ``tile``:
    full-resolution tile side (0 = whole frame); ``overlap``: a fraction of the tile
    or full-resolution pixels (None: the Restorer's options); ``render``: "srgb" or
    "linear" for TIFF/PNG outputs; ``demosaic``: "bilinear" or "malvar"; ``color_space``:
    the model's colour space, "camera" (camera-linear) or "lin_rec2020" (the seed
    project's: the mosaic goes through ``XYZ->Rec.2020 @ inv(XYZ->camera)`` first,
    the result comes back to camera RGB before writing).
    Returns ``{"iso", "width", "height", "tiles", "seconds", "out", "color_space", "demosaic"}``.
    """
    from restorekit.raw.io import read_raw

    t0 = time.perf_counter()
    src = Path(path)
    dest = Path(out_path)
    if render not in ("srgb", "linear"):
        raise ConfigError(f"render must be 'srgb' or 'linear', got {render!r}")
    check_raw_colour_options(demosaic, color_space)
    restorer = raw_restorer(model, strength=strength, tile=tile, overlap=overlap, device=device)
    raw = read_raw(src)
    iso_v = _resolve_iso(iso, raw.iso, src)
    matrix = None
    if color_space != "camera":
        from restorekit.raw.bayer import camera_to_space_matrix, xyz_to_cam_matrix

        try:
            matrix = camera_to_space_matrix(xyz_to_cam_matrix(raw), color_space)
        except DataError as exc:
            raise ConfigError(f"--color-space {color_space}: '{src}': {exc}") from exc
    out, _, n = denoise_mosaic(restorer, raw.mosaic(), iso_v, demosaic=demosaic, space_matrix=matrix)
    write_raw_result(dest, out, raw=raw, iso=iso_v, render=render)
    h, w = out.shape[:2]
    return {"iso": iso_v, "width": w, "height": h, "tiles": n, "seconds": time.perf_counter() - t0, "out": str(dest),
            "color_space": color_space, "demosaic": demosaic}


def check_raw_colour_options(demosaic: str, color_space: str) -> None:
    """Raise ConfigError naming the flag when ``demosaic`` / ``color_space`` is not a known value."""
    from restorekit.raw.bayer import COLOR_SPACES, DEMOSAICERS

    if demosaic not in DEMOSAICERS:
        raise ConfigError(f"--demosaic must be one of {', '.join(DEMOSAICERS)}, got {demosaic!r}")
    if color_space not in COLOR_SPACES:
        raise ConfigError(f"--color-space must be one of {', '.join(COLOR_SPACES)}, got {color_space!r}")


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
