"""Pixel-wise and frequency losses. Inputs ``(B, C, H, W)`` float tensors; every loss returns a scalar.

These losses are range-agnostic (any range, pred and target in the same one), except where noted.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from restorekit.metrics.functional import rgb_to_y


class L1Loss(nn.Module):
    """Mean absolute error ``mean(|pred - target|)``."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).abs().mean()


class MSELoss(nn.Module):
    """Mean squared error ``mean((pred - target)^2)``."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((pred - target) ** 2).mean()


class CharbonnierLoss(nn.Module):
    """Charbonnier (smooth L1): ``mean(sqrt((pred - target)^2 + eps^2))``; eps 1e-3 in the deblurring seed."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"charbonnier eps must be > 0, got {eps}")
        self.eps = float(eps)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((pred - target) ** 2 + self.eps**2).mean()


class PSNRLoss(nn.Module):
    """NAFNet's PSNR loss: ``10/ln(10) * mean_b log(mse_b + 1e-8)`` = minus the mean per-image PSNR
    for data range 1 (so it is negative, and lower is better). Inputs in [0, 1].

    ``to_y=True`` measures on the BT.601 Y channel (RGB input), as NAFNet's ``toY`` option.
    """

    def __init__(self, to_y: bool = False) -> None:
        super().__init__()
        self.to_y = bool(to_y)
        self.scale = 10.0 / math.log(10.0)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.to_y:
            pred, target = rgb_to_y(pred), rgb_to_y(target)
        mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))
        return self.scale * torch.log(mse + 1e-8).mean()


class TVLoss(nn.Module):
    """Anisotropic total variation of the prediction: ``mean|dx| + mean|dy|`` (target unused)."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        dx = (pred[..., :, 1:] - pred[..., :, :-1]).abs().mean()
        dy = (pred[..., 1:, :] - pred[..., :-1, :]).abs().mean()
        return dx + dy


class FFTLoss(nn.Module):
    """Frequency loss: L1 between the orthonormal 2-D real FFTs (real and imaginary parts) of pred and target.

    ``mean(|Re(F(p) - F(t))|, |Im(F(p) - F(t))|)`` over all ``B*C*H*(W//2+1)*2`` values, with
    ``F = torch.fft.rfft2(norm="ortho")`` (so a constant offset ``c`` gives ``c*sqrt(H*W)`` at DC only).
    """

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = torch.fft.rfft2(pred.float(), norm="ortho") - torch.fft.rfft2(target.float(), norm="ortho")
        return torch.view_as_real(diff).abs().mean()
