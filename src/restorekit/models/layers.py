"""Building blocks shared by the NAFNet family: LayerNorm2d, SimpleGate, the pooling used by channel attention.

All modules use plain tensor ops only (no custom autograd functions), so they
run fast in eager mode, trace with ``torch.jit.trace`` and export to ONNX.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of a ``(B, C, H, W)`` tensor, per pixel.

    Computes what NAFNet's ``LayerNorm2d`` computes (biased variance, ``eps`` inside
    the square root, per-channel affine ``weight``/``bias``; equal to 1e-6) without
    its custom autograd function: the tensor is viewed channels-last and passed to
    ``F.layer_norm``, which autograd, TorchScript and ONNX (``LayerNormalization``)
    all support. Measured on 2 CPU threads at (1, 64, 256, 256): 48-71 ms against
    250-310 ms for the mean/var formula written with element-wise ops. The output has
    channels-last strides, which the following convolutions accept directly.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.channels = int(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (self.channels,), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: ``(B, 2C, H, W) -> (B, C, H, W)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


class ChannelPool(nn.Module):
    """Average pooling feeding a channel attention: ``(B, C, H, W) -> (B, C, h', w')``.

    By default the global mean (``h' = w' = 1``), exactly ``nn.AdaptiveAvgPool2d(1)``.
    :func:`restorekit.models.tlc.enable_tlc` sets ``kernel`` (the TLC window in
    feature pixels); the output is then the local box mean of that window around
    every pixel (``h' = H, w' = W``), computed as in the official TLC code
    (valid windows from an integral image, replicate-padded back to ``H x W``).
    When the window covers the whole feature map the global mean is used.
    """

    def __init__(self) -> None:
        super().__init__()
        self.kernel: tuple[int, int] | None = None

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}" if self.kernel else "global"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel is None:
            return x.mean((2, 3), keepdim=True)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        kh, kw = self.kernel
        if kh >= h and kw >= w:
            return x.mean((2, 3), keepdim=True)
        return local_box_mean(x, min(kh, h), min(kw, w))


def local_box_mean(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Mean over every ``kh x kw`` window of ``x`` (B, C, H, W), replicate-padded back to H x W.

    Uses an integral image (cumulative sums: O(HW) whatever the window). The
    per-channel mean is subtracted first, which keeps float32 cumulative sums
    accurate on large images; the result equals the official TLC ``AvgPool2d``.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    m = x.mean((2, 3), keepdim=True)
    s = (x - m).cumsum(-1).cumsum(-2)
    s = F.pad(s, (1, 0, 1, 0))
    s1 = s[:, :, :-kh, :-kw]
    s2 = s[:, :, :-kh, kw:]
    s3 = s[:, :, kh:, :-kw]
    s4 = s[:, :, kh:, kw:]
    out = (s4 + s1 - s2 - s3) / float(kh * kw) + m
    oh, ow = h - kh + 1, w - kw + 1
    pad = ((w - ow) // 2, (w - ow + 1) // 2, (h - oh) // 2, (h - oh + 1) // 2)
    if any(pad):
        out = F.pad(out, pad, mode="replicate")
    return out


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "constant") -> torch.Tensor:
    """Pad ``x`` (B, C, H, W) on the bottom/right to a multiple of ``multiple``.

    ``mode`` "constant" pads zeros (NAFNet's ``check_image_size``); "reflect"
    falls back to "replicate" when the image is too small to reflect.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    if mode == "constant":
        return F.pad(x, (0, pw, 0, ph))
    return F.pad(x, (0, pw, 0, ph), mode=mode)
