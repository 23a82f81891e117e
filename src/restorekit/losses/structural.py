"""SSIM-family losses (differentiable) and the raw project's shadow-aware loss."""

from __future__ import annotations

import torch
import torch.nn as nn

from restorekit.metrics.functional import ms_ssim_batch, ssim_batch


def _to_unit(x: torch.Tensor, value_range: str) -> torch.Tensor:
    if value_range == "0,1":
        return x
    if value_range == "-1,1":
        return (x + 1.0) * 0.5
    raise ValueError(f"value_range must be '0,1' or '-1,1', got {value_range!r}")


class SSIMLoss(nn.Module):
    """``1 - SSIM`` (Gaussian 11x11, sigma 1.5, valid area; scikit-image definition), mean over the batch.

    value_range: "0,1" (default) or "-1,1"; [-1,1] inputs are mapped to [0,1] first, so the SSIM
    constants see the same data range (1) either way.
    """

    def __init__(self, value_range: str = "0,1", win_size: int = 11, sigma: float = 1.5) -> None:
        super().__init__()
        _to_unit(torch.zeros(1), value_range)
        self.value_range, self.win_size, self.sigma = value_range, int(win_size), float(sigma)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p, t = _to_unit(pred, self.value_range), _to_unit(target, self.value_range)
        return 1.0 - ssim_batch(p, t, 1.0, win_size=self.win_size, sigma=self.sigma, compute_dtype=None).mean()


class MSSSIMLoss(nn.Module):
    """``1 - MS-SSIM`` (5 scales on >= 176 px patches such as 256; fewer scales, renormalised weights,
    on smaller ones), mean over the batch. value_range as :class:`SSIMLoss`.
    """

    def __init__(self, value_range: str = "0,1", win_size: int = 11, sigma: float = 1.5) -> None:
        super().__init__()
        _to_unit(torch.zeros(1), value_range)
        self.value_range, self.win_size, self.sigma = value_range, int(win_size), float(sigma)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p, t = _to_unit(pred, self.value_range), _to_unit(target, self.value_range)
        return 1.0 - ms_ssim_batch(p, t, 1.0, win_size=self.win_size, sigma=self.sigma).mean()


def shadow_weight(target_gamma: torch.Tensor, alpha: float = 0.2, beta: float = 5.0) -> torch.Tensor:
    """Per-pixel weight ``alpha + (1 - alpha) exp(-beta * Y)``, Y = BT.709 luminance of the
    gamma-encoded RGB target ``(B, 3, H, W)`` -> ``(B, 1, H, W)``; 1.0 in black, ~0.205 in white."""
    lum = 0.2126 * target_gamma[:, 0:1] + 0.7152 * target_gamma[:, 1:2] + 0.0722 * target_gamma[:, 2:3]
    return alpha + (1.0 - alpha) * torch.exp(-beta * lum)


class ShadowAwareLoss(nn.Module):
    """The raw-denoising project's loss on linear RGB in [0, 1]:

    ``l1_weight * mean(w * |p - t|) + ssim_weight * (1 - MS-SSIM(p, t))`` where p, t are
    ``clamp(x, 1e-6, 1) ** (1/gamma)`` (gamma 2.2) and ``w = shadow_weight(t)`` (alpha 0.2, beta 5).
    Defaults: l1_weight 0.16, ssim_weight 0.84.
    """

    def __init__(
        self,
        l1_weight: float = 0.16,
        ssim_weight: float = 0.84,
        alpha: float = 0.2,
        beta: float = 5.0,
        gamma: float | None = 2.2,
    ) -> None:
        super().__init__()
        self.l1_weight, self.ssim_weight = float(l1_weight), float(ssim_weight)
        self.alpha, self.beta = float(alpha), float(beta)
        self.gamma = None if gamma is None else float(gamma)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.gamma is not None:
            pred = pred.clamp(1e-6, 1.0) ** (1.0 / self.gamma)
            target = target.clamp(1e-6, 1.0) ** (1.0 / self.gamma)
        w = shadow_weight(target, self.alpha, self.beta)
        l1 = (w * (pred - target).abs()).mean()
        ms = ms_ssim_batch(pred, target, 1.0).mean()
        return self.l1_weight * l1 + self.ssim_weight * (1.0 - ms)
