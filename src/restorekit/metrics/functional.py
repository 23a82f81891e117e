"""Batched torch implementations of PSNR, SSIM and MS-SSIM (differentiable).

All functions take ``(B, C, H, W)`` float tensors (any value range; pass the
matching ``data_range``) and return one value per image, ``Tensor[B]``.

SSIM is the Gaussian-window SSIM of Wang et al. (2004) exactly as scikit-image
computes it with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``:
an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma), K1 = 0.01,
K2 = 0.03, local statistics filtered without padding ("valid"), the SSIM map
averaged over the valid area and then over channels. scikit-image filters with
reflect padding and then discards a 5-pixel border, which is the same thing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Standard MS-SSIM scale weights (Wang, Simoncelli, Bovik 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
K1, K2 = 0.01, 0.03


def gaussian_kernel1d(win_size: int = 11, sigma: float = 1.5, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``win_size`` taps (odd), as a ``(win_size,)`` tensor."""
    x = torch.arange(win_size, dtype=torch.float64, device=device) - (win_size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype)


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) tensors, got shape {tuple(pred.shape)}")


def _fit_window(h: int, w: int, win_size: int) -> int:
    """Largest odd window <= win_size that fits in (h, w)."""
    size = min(win_size, h, w)
    if size % 2 == 0:
        size -= 1
    return max(size, 1)


def gaussian_filter_valid(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering without padding: (B,C,H,W) -> (B,C,H-k+1,W-k+1) (grouped convolutions)."""
    b, c, h, w = x.shape
    k = kernel.numel()
    flat = x.reshape(1, b * c, h, w)
    kh = kernel.view(1, 1, 1, k).expand(b * c, 1, 1, k).contiguous()
    kv = kernel.view(1, 1, k, 1).expand(b * c, 1, k, 1).contiguous()
    flat = F.conv2d(F.conv2d(flat, kh, groups=b * c), kv, groups=b * c)
    return flat.reshape(b, c, h - k + 1, w - k + 1)


def ssim_maps(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM map and contrast-structure map, each ``(B, C, H-k+1, W-k+1)`` (valid area).

    The window shrinks to the largest odd size that fits when an image is smaller than ``win_size``.
    """
    _check_pair(pred, target)
    k = _fit_window(pred.shape[-2], pred.shape[-1], win_size)
    kernel = gaussian_kernel1d(k, sigma, dtype=pred.dtype, device=pred.device)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    # One batched filtering pass over the five statistics.
    stats = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=1)
    mu_x, mu_y, e_xx, e_yy, e_xy = gaussian_filter_valid(stats, kernel).chunk(5, dim=1)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    cs = (2.0 * cov + c2) / (var_x + var_y + c2)
    lum = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return lum * cs, cs


def ssim_batch(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    *,
    win_size: int = 11,
    sigma: float = 1.5,
    compute_dtype: torch.dtype | None = torch.float64,
) -> torch.Tensor:
    """Per-image SSIM of ``(B, C, H, W)`` tensors -> ``Tensor[B]`` (mean over channels and valid area).

    Agrees with ``skimage.metrics.structural_similarity(..., channel_axis=-1, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=data_range)``. Statistics are computed in
    ``compute_dtype`` (float64 by default; ``None`` keeps the input dtype, e.g. for a training loss);
    the result is returned in the input's dtype.
    """
    out_dtype = pred.dtype
    if compute_dtype is not None and pred.device.type != "mps":
        pred, target = pred.to(compute_dtype), target.to(compute_dtype)
    smap, _ = ssim_maps(pred, target, data_range, win_size, sigma)
    return smap.mean(dim=(1, 2, 3)).to(out_dtype)


def ssim_uniform_maps(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    win_size: int = 7,
) -> torch.Tensor:
    """scikit-image's default SSIM map over the valid area: ``(B, C, H-k+1, W-k+1)``.

    ``win_size x win_size`` box window (7 by default, shrunk to the largest odd size that fits),
    sample covariance (``N / (N - 1)`` with ``N = win_size ** 2``), K1 = 0.01, K2 = 0.03. scikit-image
    filters with reflect padding and then discards ``(win_size - 1) // 2`` pixels on every side, which
    leaves exactly this valid-area map.
    """
    _check_pair(pred, target)
    k = _fit_window(pred.shape[-2], pred.shape[-1], win_size)
    n = k * k
    cov_norm = n / (n - 1.0) if n > 1 else 1.0
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    stats = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=1)
    mu_x, mu_y, e_xx, e_yy, e_xy = F.avg_pool2d(stats, k, stride=1).chunk(5, dim=1)
    var_x = cov_norm * (e_xx - mu_x * mu_x)
    var_y = cov_norm * (e_yy - mu_y * mu_y)
    cov = cov_norm * (e_xy - mu_x * mu_y)
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return num / den


def ssim_uniform_batch(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    *,
    win_size: int = 7,
    compute_dtype: torch.dtype | None = torch.float64,
) -> torch.Tensor:
    """Per-image scikit-image *default* SSIM of ``(B, C, H, W)`` tensors -> ``Tensor[B]``.

    Equals ``skimage.metrics.structural_similarity(target, pred, channel_axis=-1, data_range=data_range)``
    with every other argument at its default (7x7 uniform window, sample covariance): the SSIM that the
    deblurring, manuscript and raw seed projects report.
    """
    out_dtype = pred.dtype
    if compute_dtype is not None and pred.device.type != "mps":
        pred, target = pred.to(compute_dtype), target.to(compute_dtype)
    return ssim_uniform_maps(pred, target, data_range, win_size).mean(dim=(1, 2, 3)).to(out_dtype)


def psnr_batch(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB of ``(B, C, H, W)`` tensors -> ``Tensor[B]``; identical images give ``inf``.

    ``10 log10(data_range^2 / mse)`` with the MSE over all channels and pixels (scikit-image's
    ``peak_signal_noise_ratio``), computed in float64 where the device supports it.
    """
    _check_pair(pred, target)
    out_dtype = pred.dtype
    if pred.device.type != "mps":
        pred, target = pred.double(), target.double()
    mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))
    return (10.0 * torch.log10((data_range**2) / mse)).to(out_dtype)


def ms_ssim_levels(h: int, w: int, win_size: int = 11, max_levels: int = 5) -> int:
    """Number of MS-SSIM scales usable on an (h, w) image: each scale must still hold the window."""
    levels = 0
    size = min(h, w)
    while levels < max_levels and size >= win_size:
        levels += 1
        size //= 2
    return levels


def ms_ssim_batch(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    *,
    win_size: int = 11,
    sigma: float = 1.5,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
    compute_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Per-image multi-scale SSIM -> ``Tensor[B]`` (differentiable).

    Five scales (2x average pooling between them; odd sizes edge-replicated first) with the
    standard weights on images of at least 176 px (e.g. 256 patches). Smaller images degrade
    gracefully: only the scales that still hold the 11x11 window are used, with their weights
    renormalised to sum to one; below 11 px it is single-scale SSIM with a shrunken window.
    Negative contrast/SSIM terms are clamped to a tiny positive value before the powers (as
    pytorch-msssim's ReLU) so that the product stays real.
    """
    _check_pair(pred, target)
    out_dtype = pred.dtype
    if compute_dtype is not None:
        pred, target = pred.to(compute_dtype), target.to(compute_dtype)
    levels = ms_ssim_levels(pred.shape[-2], pred.shape[-1], win_size, len(weights))
    if levels <= 1:
        smap, _ = ssim_maps(pred, target, data_range, win_size, sigma)
        return smap.mean(dim=(1, 2, 3)).to(out_dtype)
    w = torch.tensor(weights[:levels], dtype=pred.dtype, device=pred.device)
    w = w / w.sum()
    values = []
    x, y = pred, target
    for level in range(levels):
        smap, cs = ssim_maps(x, y, data_range, win_size, sigma)
        if level < levels - 1:
            values.append(cs.mean(dim=(2, 3)))  # (B, C)
            pad = (0, x.shape[-1] % 2, 0, x.shape[-2] % 2)
            x = F.avg_pool2d(F.pad(x, pad, mode="replicate") if any(pad) else x, 2)
            y = F.avg_pool2d(F.pad(y, pad, mode="replicate") if any(pad) else y, 2)
        else:
            values.append(smap.mean(dim=(2, 3)))
    stacked = torch.stack(values, dim=0).clamp_min(1e-8)  # (L, B, C)
    ms = torch.prod(stacked ** w.view(-1, 1, 1), dim=0)  # (B, C)
    return ms.mean(dim=1).to(out_dtype)


# BT.601 luma as MATLAB's rgb2ycbcr / BasicSR's rgb2ycbcr(y_only=True) on [0,1] input (16..235 scale).
_Y_COEFFS = (65.481, 128.553, 24.966)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of ``(B, 3, H, W)`` RGB in [0,1] -> ``(B, 1, H, W)`` in [16/255, 235/255] (MATLAB scale)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return (_Y_COEFFS[0] * r + _Y_COEFFS[1] * g + _Y_COEFFS[2] * b + 16.0) / 255.0


def psnr_to_mse(psnr_db: float, data_range: float = 1.0) -> float:
    """Inverse of PSNR: the MSE that gives ``psnr_db``."""
    return data_range**2 / (10.0 ** (psnr_db / 10.0)) if math.isfinite(psnr_db) else 0.0
