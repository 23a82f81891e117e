"""``deblur_unet``: the GroupNorm U-Net of the deblurring seed project (AndreiSobo/image_deblurring).

Input and output: ``(B, 3, H, W)`` RGB in [-1, 1] (the seed normalises images
with mean 0.5, std 0.5). Any H, W: the input is reflect-padded to a multiple of
16 and the output cropped back (the seed resized skips instead, which shifts
content on odd sizes). 8,636,451 parameters at
``base_ch=32``.

Weight names: restorekit's ``ConvBlock`` keeps its layers in a Sequential
(``enc1.block.0/1/3/4``); the seed's keeps them as attributes
(``enc1.conv1/norm1/conv2/norm2``). Both layouts are recognised and loaded
(:func:`to_block_layout` is the spec's ``convert_state``); ``restorekit export
--format seed`` writes the seed's names back (:func:`to_seed_layout`).
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from restorekit.models.registry import register_model
from restorekit.models.spec import Capabilities, Tensors, has_keys


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(8, ch)
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind in ("none", None):
        return nn.Identity()
    raise ValueError(f"norm must be 'group', 'batch' or 'none', got {kind!r}")


class ConvBlock(nn.Module):
    """(3x3 conv -> norm -> ReLU) x 2."""

    def __init__(self, in_ch: int, out_ch: int, norm: str = "group") -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            _norm(norm, out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            _norm(norm, out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UpBlock(nn.Module):
    """Bilinear x2 upsample + 3x3 conv, concat with the (resized) skip, ConvBlock."""

    def __init__(self, in_ch: int, out_ch: int, norm: str = "group") -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
        )
        self.conv = ConvBlock(out_ch * 2, out_ch, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:
            skip = F.interpolate(skip, size=x.shape[-2:], mode="nearest")
        return self.conv(torch.cat([x, skip], dim=1))


class DeblurUNet(nn.Module):
    """GroupNorm U-Net: encoder base*(1,2,4,8) with max-pooling, bottleneck base*16, 1x1 head."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, base_ch: int = 32, norm: str = "group", residual: bool = False) -> None:
        super().__init__()
        if residual and in_ch != out_ch:
            raise ValueError("deblur_unet: residual needs in_ch == out_ch")
        #: add the input to the output (the network learns the correction only); False = the seed's network
        self.residual = residual
        c = base_ch
        self.enc1 = ConvBlock(in_ch, c, norm)
        self.enc2 = ConvBlock(c, c * 2, norm)
        self.enc3 = ConvBlock(c * 2, c * 4, norm)
        self.enc4 = ConvBlock(c * 4, c * 8, norm)
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvBlock(c * 8, c * 16, norm)
        self.up4 = UpBlock(c * 16, c * 8, norm)
        self.up3 = UpBlock(c * 8, c * 4, norm)
        self.up2 = UpBlock(c * 4, c * 2, norm)
        self.up1 = UpBlock(c * 2, c, norm)
        self.final = nn.Conv2d(c, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        inp = x
        # Reflect-pad to a multiple of 16 so every pooling level is exact; on sizes that are
        # already multiples of 16 this computes exactly what the seed's network computes.
        ph, pw = (-h) % 16, (-w) % 16
        if ph or pw:
            mode = "reflect" if h > ph and w > pw else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        e4 = self.enc4(self.pool(e3))
        b = self.bottleneck(self.pool(e4))
        d = self.up4(b, e4)
        d = self.up3(d, e3)
        d = self.up2(d, e2)
        d = self.up1(d, e1)
        out = self.final(d)[..., :h, :w]
        return out + inp if self.residual else out


#: the seed's ``ConvBlock`` attributes -> restorekit's ``block`` Sequential indices
SEED_TO_BLOCK = {"conv1": "block.0", "norm1": "block.1", "conv2": "block.3", "norm2": "block.4"}
BLOCK_TO_SEED = {v: k for k, v in SEED_TO_BLOCK.items()}
_SEED_KEY = re.compile(r"^((?:enc[1-4]|bottleneck|up[1-4]\.conv)\.)(conv1|norm1|conv2|norm2)(\..+)$")
_BLOCK_KEY = re.compile(r"^((?:enc[1-4]|bottleneck|up[1-4]\.conv)\.)(block\.[0134])(\..+)$")


def to_block_layout(state: Tensors) -> Tensors:
    """Rename the seed's ``ConvBlock`` keys (``enc1.conv1.weight``, ``up1.conv.norm2.bias``) to restorekit's
    (``enc1.block.0.weight``, ``up1.conv.block.4.bias``); restorekit keys pass through unchanged."""
    out: Tensors = {}
    for k, v in state.items():
        m = _SEED_KEY.match(k)
        out[f"{m.group(1)}{SEED_TO_BLOCK[m.group(2)]}{m.group(3)}" if m else k] = v
    return out


def to_seed_layout(state: Tensors) -> Tensors:
    """Inverse of :func:`to_block_layout`: the key names the seed project's ``DeblurUNet`` uses."""
    out: Tensors = {}
    for k, v in state.items():
        m = _BLOCK_KEY.match(k)
        out[f"{m.group(1)}{BLOCK_TO_SEED[m.group(2)]}{m.group(3)}" if m else k] = v
    return out


def _detect(state: Tensors) -> bool:
    """The key signature of :class:`DeblurUNet` (four encoder blocks, a bottleneck, ``up4.up.1``, ``final``), in
    restorekit's ``block.N`` layout or the seed's ``conv1/norm1/conv2/norm2`` layout."""
    if not has_keys(state, "up4.up.1.weight", "final.weight"):
        return False
    return has_keys(state, "enc1.block.0.weight", "enc4.block.0.weight", "bottleneck.block.0.weight") or has_keys(
        state, "enc1.conv1.weight", "enc4.conv1.weight", "bottleneck.conv1.weight")


def _infer(state: Tensors) -> dict:
    """Channels and normalisation from tensor shapes and the presence of norm parameters."""
    if "enc1.block.1.running_mean" in state:
        norm = "batch"
    elif "enc1.block.1.weight" in state:
        norm = "group"
    else:
        norm = "none"
    return {
        "in_ch": int(state["enc1.block.0.weight"].shape[1]),
        "out_ch": int(state["final.weight"].shape[0]),
        "base_ch": int(state["enc1.block.0.weight"].shape[0]),
        "norm": norm,
    }


def _caps(args: dict) -> Capabilities:
    # GroupNorm statistics span the whole input (tiles differ from whole-image results); channels-last slows
    # GroupNorm on CPU.
    return Capabilities(value_range="-1,1", size_multiple=16, global_context=args["norm"] == "group",
                        channels_last={"cpu": True, "cuda": True, "mps": False})


@register_model(
    "deblur_unet",
    description="GroupNorm U-Net of the GoPro deblurring seed (8.64 M params at base_ch=32); inputs in [-1, 1]",
    detect=_detect,
    infer=_infer,
    capabilities=_caps,
    convert_state=to_block_layout,
    presets={"tiny": {"base_ch": 8}},  # contract tests (tests/models/test_contract.py)
)
def deblur_unet(in_ch: int = 3, out_ch: int = 3, base_ch: int = 32, norm: str = "group", residual: bool = False) -> DeblurUNet:
    """Build :class:`DeblurUNet` (``residual=True``: output = input + network output, same weights)."""
    return DeblurUNet(in_ch=in_ch, out_ch=out_ch, base_ch=base_ch, norm=norm, residual=residual)
