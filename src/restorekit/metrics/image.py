"""Image-level metrics under a named :class:`~restorekit.metrics.protocol.Protocol`.

Inputs: ``(H, W, 3)`` float arrays in [0, 1] (numpy) or tensors shaped ``(H, W, 3)``,
``(3, H, W)`` or ``(1, 3, H, W)``, RGB. Everything is computed in float64 so that
values agree with scikit-image to ~1e-7.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from restorekit.metrics.functional import ms_ssim_batch, psnr_batch, rgb_to_y
from restorekit.metrics.protocol import Protocol, resolve_protocol

#: PSNR of identical images is infinite; reports cap it at this value and add a note.
PSNR_CAP = 100.0

ArrayLike = Any  # np.ndarray | torch.Tensor


def to_bchw(img: ArrayLike) -> torch.Tensor:
    """An RGB image as a float64 ``(1, C, H, W)`` CPU tensor (HWC arrays, CHW or BCHW tensors)."""
    if isinstance(img, torch.Tensor):
        t = img.detach().to("cpu", torch.float64)
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ValueError(f"expected a single image, got a batch of {t.shape[0]}")
            return t
        if t.dim() == 3 and t.shape[0] in (1, 3) and t.shape[-1] not in (1, 3):
            return t.unsqueeze(0)
        if t.dim() == 3:
            return t.permute(2, 0, 1).unsqueeze(0)
        if t.dim() == 2:
            return t[None, None]
        raise ValueError(f"cannot interpret a tensor of shape {tuple(t.shape)} as an image")
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float64) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float64) / 65535.0
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]


def prepare(pred: ArrayLike, target: ArrayLike, protocol: "str | Protocol | None" = None) -> tuple[torch.Tensor, torch.Tensor, Protocol]:
    """Apply a protocol: quantize, Y conversion, border crop. Returns float64 ``(1, C, h, w)`` tensors."""
    proto = resolve_protocol(protocol)
    x, y = to_bchw(pred), to_bchw(target)
    if x.shape != y.shape:
        raise ValueError(f"pred and target sizes differ: {tuple(x.shape[1:])} vs {tuple(y.shape[1:])}")
    if proto.quantize:
        x = torch.round(x.clamp(0, 1) * 255.0) / 255.0
        y = torch.round(y.clamp(0, 1) * 255.0) / 255.0
    if proto.channel == "y":
        if x.shape[1] != 3:
            raise ValueError("the Y-channel protocol needs RGB images")
        x, y = rgb_to_y(x), rgb_to_y(y)
    c = int(proto.crop_border)
    if c:
        h, w = x.shape[-2:]
        if 2 * c >= min(h, w):
            raise ValueError(f"crop_border {c} leaves nothing of a {h}x{w} image")
        x, y = x[..., c:-c, c:-c], y[..., c:-c, c:-c]
    return x, y, proto


def _ssim_protocol(x: torch.Tensor, y: torch.Tensor, proto: Protocol) -> float:
    """SSIM of prepared (1, C, H, W) float64 tensors with the protocol's window."""
    if proto.window == "uniform":
        return _ssim_uniform_tiled(x, y)
    return _ssim_tiled(x, y)


def _ssim_uniform_tiled(x: torch.Tensor, y: torch.Tensor, rows: int = 256) -> float:
    """scikit-image's default SSIM (7x7 box, sample covariance) of (1, C, H, W) tensors, over strips of rows."""
    from restorekit.metrics.functional import _fit_window, ssim_uniform_maps

    _, c, h, w = x.shape
    k = _fit_window(h, w, 7)
    valid_h = h - k + 1
    total, count = 0.0, 0
    for ch in range(c):
        for r0 in range(0, valid_h, rows):
            r1 = min(valid_h, r0 + rows)
            smap = ssim_uniform_maps(x[:, ch : ch + 1, r0 : r1 + k - 1], y[:, ch : ch + 1, r0 : r1 + k - 1], 1.0, k)
            total += float(smap.sum())
            count += smap.numel()
    return total / count


def _ssim_tiled(x: torch.Tensor, y: torch.Tensor, rows: int = 256) -> float:
    """SSIM of (1, C, H, W) float64 tensors computed per channel over strips of valid rows.

    Exactly the same value as :func:`ssim_batch` (the valid-area map is split, not the image), with memory
    bounded by ``rows`` (a 12-megapixel image needs tens of MB instead of several GB).
    """
    from restorekit.metrics.functional import _fit_window, ssim_maps

    _, c, h, w = x.shape
    k = _fit_window(h, w, 11)
    valid_h = h - k + 1
    total, count = 0.0, 0
    for ch in range(c):
        for r0 in range(0, valid_h, rows):
            r1 = min(valid_h, r0 + rows)
            xs = x[:, ch : ch + 1, r0 : r1 + k - 1]
            ys = y[:, ch : ch + 1, r0 : r1 + k - 1]
            smap, _ = ssim_maps(xs, ys, 1.0, k, 1.5)
            total += float(smap.sum())
            count += smap.numel()
    return total / count


def psnr(pred: ArrayLike, target: ArrayLike, protocol: "str | Protocol | None" = None) -> float:
    """PSNR in dB (data range 1) under ``protocol`` (default "rgb"); ``inf`` for identical images."""
    x, y, _ = prepare(pred, target, protocol)
    return float(psnr_batch(x, y, 1.0)[0])


def ssim(pred: ArrayLike, target: ArrayLike, protocol: "str | Protocol | None" = None) -> float:
    """SSIM (data range 1) under ``protocol``: Gaussian window (scikit-image ``gaussian_weights=True`` / BasicSR)
    by default, scikit-image's default 7x7 uniform-window SSIM under ``protocol="skimage"``."""
    x, y, proto = prepare(pred, target, protocol)
    return _ssim_protocol(x, y, proto)


def ms_ssim(pred: ArrayLike, target: ArrayLike, protocol: "str | Protocol | None" = None) -> float:
    """Multi-scale SSIM (5 scales from 176 px, fewer on smaller images) under ``protocol``."""
    x, y, _ = prepare(pred, target, protocol)
    return float(ms_ssim_batch(x, y, 1.0)[0])


def mae(pred: ArrayLike, target: ArrayLike, protocol: "str | Protocol | None" = None) -> float:
    """Mean absolute error on the [0,1] scale under ``protocol``."""
    x, y, _ = prepare(pred, target, protocol)
    return float((x - y).abs().mean())


def mse(pred: ArrayLike, target: ArrayLike, protocol: "str | Protocol | None" = None) -> float:
    """Mean squared error on the [0,1] scale under ``protocol``."""
    x, y, _ = prepare(pred, target, protocol)
    return float(((x - y) ** 2).mean())


def measure(
    pred: ArrayLike,
    target: ArrayLike,
    protocol: "str | Protocol | None" = None,
    *,
    metrics: tuple[str, ...] = ("psnr", "ssim", "mae", "mse"),
) -> dict[str, float]:
    """Several metrics at once (one preparation pass). Keys: the requested metric names.

    PSNR is returned uncapped (``inf`` for identical images); see :func:`cap_psnr` for reports.
    """
    x, y, proto = prepare(pred, target, protocol)
    out: dict[str, float] = {}
    for name in metrics:
        if name == "psnr":
            out[name] = float(psnr_batch(x, y, 1.0)[0])
        elif name == "ssim":
            out[name] = _ssim_protocol(x, y, proto)
        elif name == "ms_ssim":
            out[name] = float(ms_ssim_batch(x, y, 1.0)[0])
        elif name == "mae":
            out[name] = float((x - y).abs().mean())
        elif name == "mse":
            out[name] = float(((x - y) ** 2).mean())
        else:
            raise ValueError(f"unknown metric {name!r} (expected psnr, ssim, ms_ssim, mae, mse)")
    return out


def cap_psnr(value: float, cap: float = PSNR_CAP) -> float:
    """PSNR for reports: ``inf`` (identical images) and anything above ``cap`` become ``cap``."""
    if math.isnan(value):
        return value
    return min(float(value), cap)
