"""Building blocks shared by the NAFNet family: LayerNorm2d, SimpleGate, the pooling used by channel attention.

``LayerNorm2d`` trains through one custom autograd function (:class:`LayerNorm2dFunction`:
ATen's fused layer-norm forward and backward kernels on the channels-last view, no
layout copies for channels-last inputs); without autograd (inference, tracing,
ONNX export, ``torch.compile``) it runs ``F.layer_norm``, which TorchScript and
ONNX (``LayerNormalization``) support. Everything else is plain tensor ops.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2dFunction(torch.autograd.Function):
    """Per-pixel LayerNorm over the channels of ``x`` (B, C, H, W), fused forward and backward.

    With ``xhat = (x - mean_c(x)) * rstd``, ``rstd = 1 / sqrt(var_c(x) + eps)`` (biased
    variance over the C channels of each pixel) and ``y = xhat * weight + bias``, the
    gradients are, per pixel, with ``g = dy * weight``::

        dx      = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
        dweight = sum_{b,h,w} dy * xhat
        dbias   = sum_{b,h,w} dy

    Both directions run as single fused ATen kernels (``native_layer_norm`` and its
    backward, which evaluate exactly these formulas) on the ``(B, H, W, C)`` view of
    ``x``: free for channels-last tensors, one copy for NCHW ones. Written as the same
    formulas in element-wise PyTorch ops, the backward measured 3-4x slower on 2 CPU
    threads (tests check this function against that reference formula with
    ``torch.autograd.gradcheck`` in float64). Only the per-pixel mean and rstd (B*H*W
    values each) are saved besides the input view. The output has channels-last strides.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
        xp = x.permute(0, 2, 3, 1)
        y, mean, rstd = torch.native_layer_norm(xp, (xp.shape[-1],), weight, bias, eps)
        ctx.save_for_backward(xp, weight, bias, mean, rstd)
        return y.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        xp, weight, bias, mean, rstd = ctx.saved_tensors
        need = [bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1]), bool(ctx.needs_input_grad[2])]
        dxp, dw, db = torch.ops.aten.native_layer_norm_backward(
            dy.permute(0, 2, 3, 1), xp, (xp.shape[-1],), mean, rstd, weight, bias, need
        )
        dx = dxp.permute(0, 3, 1, 2) if dxp is not None else None
        return dx, dw, db, None


def layer_norm_2d_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """NAFNet's LayerNorm2d written out with element-wise ops (the test oracle; slow)."""
    mu = x.mean(1, keepdim=True)
    var = (x - mu).pow(2).mean(1, keepdim=True)
    return (x - mu) / (var + eps).sqrt() * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def _layer_norm_2d_nchw(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """The ONNX form of LayerNorm2d: reductions over the channel axis of the NCHW tensor ``x`` (B, C, H, W).

    Exported as ReduceMean/Sub/Mul/ReduceMean/Add/Sqrt/Div/Mul/Add on NCHW data instead of
    Transpose -> LayerNormalization (last axis) -> Transpose: ONNX Runtime's CPU provider then
    keeps NAFNet's convolutions in its blocked NCHWc layout across the norms, and the fp32
    graph ran 1.5x faster (NAFNet width 16, 4 tiles of 256 px, 2 threads). Same values as
    :func:`layer_norm_2d_reference` up to float rounding.
    """
    mu = x.mean(1, keepdim=True)
    d = x - mu
    var = (d * d).mean(1, keepdim=True)
    return d / torch.sqrt(var + eps) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def _plain_path() -> bool:
    """True where a custom autograd function is not wanted: no autograd, tracing, ONNX export, compiling."""
    if not torch.is_grad_enabled() or torch.jit.is_scripting() or torch.jit.is_tracing():
        return True
    if torch.onnx.is_in_onnx_export():
        return True
    return bool(torch.compiler.is_compiling())


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of a ``(B, C, H, W)`` tensor, per pixel.

    Computes what NAFNet's ``LayerNorm2d`` computes (biased variance, ``eps`` inside
    the square root, per-channel affine ``weight``/``bias``; equal to 1e-6), same
    state-dict keys. Training runs :class:`LayerNorm2dFunction` (fused forward and
    backward); inference, tracing and ``torch.compile`` use ``F.layer_norm`` on the
    channels-last view, which computes the same values; ONNX export writes the NCHW
    reductions of :func:`_layer_norm_2d_nchw`, which ONNX Runtime runs faster. The
    output has channels-last strides, which the following convolutions accept directly.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.channels = int(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            return _layer_norm_2d_nchw(x, self.weight, self.bias, self.eps)
        if _plain_path():
            y = F.layer_norm(x.permute(0, 2, 3, 1), (self.channels,), self.weight, self.bias, self.eps)
            return y.permute(0, 3, 1, 2)
        return LayerNorm2dFunction.apply(x, self.weight, self.bias, self.eps)


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
