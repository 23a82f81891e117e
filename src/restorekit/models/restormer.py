"""``restormer``: Restormer (Zamir et al., CVPR 2022), an independent implementation.

Same constructor arguments and state-dict keys as swz30/Restormer
(``patch_embed.proj``, ``encoder_level1..3``, ``down1_2``, ``down2_3``, ``down3_4``,
``latent``, ``up4_3``, ``reduce_chan_level3``, ``decoder_level3``, ``up3_2``,
``reduce_chan_level2``, ``decoder_level2``, ``up2_1``, ``decoder_level1``,
``refinement``, ``output``; blocks ``norm1.body``, ``attn.{temperature,qkv,qkv_dwconv,project_out}``,
``norm2.body``, ``ffn.{project_in,dwconv,project_out}``), so the official
``{'params': ...}`` checkpoints load unchanged.

* MDTA: transposed (channel) attention per head on L2-normalised q, k with a
  learned ``temperature`` per head; GDFN: gated depthwise FFN with GELU gate.
* ``LayerNorm_type``: ``"WithBias"`` (deblurring models) or ``"BiasFree"``
  (denoising: divides by the std without subtracting the mean, no bias).

Input and output: ``(B, 3, H, W)`` RGB in [0, 1], any size: reflect-padded to a
multiple of 8 inside the model (as the official test scripts do outside it),
output cropped back. Output = input + prediction (no clipping).
26,126,644 parameters at the defaults.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from restorekit.models.layers import pad_to_multiple
from restorekit.models.registry import register_model
from restorekit.models.spec import Capabilities, Tensors, count_indices, has_keys, has_match


class BiasFreeLayerNorm(nn.Module):
    """``x / sqrt(var + 1e-5) * weight`` over the last dim (no mean subtraction)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.var(-1, keepdim=True, unbiased=False)
        return x / torch.sqrt(var + 1e-5) * self.weight


class WithBiasLayerNorm(nn.Module):
    """Standard LayerNorm over the last dim (eps 1e-5) with weight and bias."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(var + 1e-5) * self.weight + self.bias


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels of ``(B, C, H, W)`` (via ``(B, HW, C)``); key ``body.*``."""

    def __init__(self, dim: int, LayerNorm_type: str) -> None:  # noqa: N803
        super().__init__()
        if LayerNorm_type == "BiasFree":
            self.body: nn.Module = BiasFreeLayerNorm(dim)
        elif LayerNorm_type == "WithBias":
            self.body = WithBiasLayerNorm(dim)
        else:
            raise ValueError(f"restormer: LayerNorm_type must be 'WithBias' or 'BiasFree', got {LayerNorm_type!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.body(x.flatten(2).transpose(1, 2))
        return y.transpose(1, 2).reshape(b, c, h, w)


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network."""

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention: attention across channels, ``heads`` groups."""

    def __init__(self, dim: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        heads = self.num_heads
        q = F.normalize(q.reshape(b, heads, c // heads, h * w), dim=-1)
        k = F.normalize(k.reshape(b, heads, c // heads, h * w), dim=-1)
        v = v.reshape(b, heads, c // heads, h * w)
        attn = (q @ k.transpose(-2, -1)) * self.temperature
        out = attn.softmax(dim=-1) @ v
        return self.project_out(out.reshape(b, c, h, w))


class RestormerBlock(nn.Module):
    """``x + MDTA(LN(x))``, then ``x + GDFN(LN(x))``."""

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, LayerNorm_type: str) -> None:  # noqa: N803
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim, LayerNorm_type)
        self.attn = MDTA(dim, num_heads, bias)
        self.norm2 = ChannelLayerNorm(dim, LayerNorm_type)
        self.ffn = GDFN(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 conv embedding (key ``proj``)."""

    def __init__(self, in_c: int, embed_dim: int, bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """3x3 conv to C/2 + PixelUnshuffle(2): ``(B, C, H, W) -> (B, 2C, H/2, W/2)``."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """3x3 conv to 2C + PixelShuffle(2): ``(B, C, H, W) -> (B, C/2, 2H, 2W)``."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Restormer(nn.Module):
    """Four-level Restormer encoder/decoder with refinement blocks and a global residual."""

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        LayerNorm_type: str = "WithBias",  # noqa: N803
        dual_pixel_task: bool = False,
    ) -> None:
        super().__init__()
        nb, hd = list(num_blocks), list(heads)

        def stage(d: int, n: int, h: int) -> nn.Sequential:
            return nn.Sequential(*[RestormerBlock(d, h, ffn_expansion_factor, bias, LayerNorm_type) for _ in range(n)])

        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = stage(dim, nb[0], hd[0])
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = stage(dim * 2, nb[1], hd[1])
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = stage(dim * 4, nb[2], hd[2])
        self.down3_4 = Downsample(dim * 4)
        self.latent = stage(dim * 8, nb[3], hd[3])
        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, 1, bias=bias)
        self.decoder_level3 = stage(dim * 4, nb[2], hd[2])
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, 1, bias=bias)
        self.decoder_level2 = stage(dim * 2, nb[1], hd[1])
        self.up2_1 = Upsample(dim * 2)
        self.decoder_level1 = stage(dim * 2, nb[0], hd[0])
        self.refinement = stage(dim * 2, num_refinement_blocks, hd[0])
        self.dual_pixel_task = dual_pixel_task
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, dim * 2, 1, bias=bias)
        self.output = nn.Conv2d(dim * 2, out_channels, 3, padding=1, bias=bias)

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` in [0, 1] -> ``(B, out_channels, H, W)``."""
        h, w = inp_img.shape[-2:]
        x0 = pad_to_multiple(inp_img, 8, "reflect")
        e1_in = self.patch_embed(x0)
        e1 = self.encoder_level1(e1_in)
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        lat = self.latent(self.down3_4(e3))
        d3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(lat), e3], 1)))
        d2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(d3), e2], 1)))
        d1 = self.decoder_level1(torch.cat([self.up2_1(d2), e1], 1))
        d1 = self.refinement(d1)
        if self.dual_pixel_task:
            out = self.output(d1 + self.skip_conv(e1_in))
        else:
            out = self.output(d1) + x0
        return out[:, :, :h, :w]


RESTORMER_PRESETS: dict[str, dict] = {
    "motion-deblurring": {"LayerNorm_type": "WithBias"},
    "denoising": {"LayerNorm_type": "BiasFree"},
    "tiny": {"dim": 16, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 2, 4, 8]},
}


def _detect(state: Tensors) -> bool:
    """Restormer's key signature (``patch_embed.proj``, ``output`` and attention temperatures in ``latent``)."""
    return has_keys(state, "patch_embed.proj.weight", "output.weight") and has_match(
        state, r"latent\.\d+\.attn\.temperature")


def _solve_expansion(pairs: list[tuple[int, int]]) -> float:
    """A factor ``f`` with ``int(dim * f) == hidden`` for every (dim, hidden) pair."""
    for f in (2.66, 2.0, 3.0, 4.0, 1.0, 1.5, 2.5, 2.67, 2.65):
        if all(int(d * f) == h for d, h in pairs):
            return f
    lo = max(h / d for d, h in pairs)
    hi = min((h + 1) / d for d, h in pairs)
    return float((lo + hi) / 2 if lo < hi else lo)


def _infer(state: Tensors) -> dict:
    """Width, blocks, heads (from the temperatures), FFN expansion and LayerNorm type from the weights."""
    stages = ["encoder_level1", "encoder_level2", "encoder_level3", "latent"]
    pairs = [
        (int(state[f"{s}.0.ffn.project_out.weight"].shape[0]), int(state[f"{s}.0.ffn.project_out.weight"].shape[1]))
        for s in stages
    ]
    return {
        "inp_channels": int(state["patch_embed.proj.weight"].shape[1]),
        "out_channels": int(state["output.weight"].shape[0]),
        "dim": int(state["patch_embed.proj.weight"].shape[0]),
        "num_blocks": [count_indices(state, rf"{s}\.(\d+)\.attn\.temperature") for s in stages],
        "num_refinement_blocks": count_indices(state, r"refinement\.(\d+)\.attn\.temperature"),
        "heads": [int(state[f"{s}.0.attn.temperature"].shape[0]) for s in stages],
        "ffn_expansion_factor": _solve_expansion(pairs),
        "bias": "encoder_level1.0.attn.qkv.bias" in state,
        "LayerNorm_type": "WithBias" if "encoder_level1.0.norm1.body.bias" in state else "BiasFree",
        "dual_pixel_task": "skip_conv.weight" in state,
    }


def _caps(args: dict) -> Capabilities:
    # transposed (channel) attention pools over every pixel: tiles differ slightly from the whole image
    return Capabilities(value_range="0,1", size_multiple=8, global_context=True,
                        channels_last={"cpu": False, "cuda": True, "mps": False})


@register_model(
    "restormer",
    description="Restormer (swz30 layout; 26.13 M params at defaults); inputs in [0, 1]",
    presets=RESTORMER_PRESETS,
    detect=_detect,
    infer=_infer,
    capabilities=_caps,
)
def restormer(
    inp_channels: int = 3,
    out_channels: int = 3,
    dim: int = 48,
    num_blocks: Sequence[int] = (4, 6, 6, 8),
    num_refinement_blocks: int = 4,
    heads: Sequence[int] = (1, 2, 4, 8),
    ffn_expansion_factor: float = 2.66,
    bias: bool = False,
    LayerNorm_type: str = "WithBias",  # noqa: N803
    dual_pixel_task: bool = False,
) -> Restormer:
    """Build :class:`Restormer` (defaults: the motion-deblurring model)."""
    return Restormer(
        inp_channels, out_channels, dim, list(num_blocks), num_refinement_blocks, list(heads),
        ffn_expansion_factor, bias, LayerNorm_type, dual_pixel_task,
    )
