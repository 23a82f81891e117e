"""``student_unet``: the distillation project's BatchNorm / ConvTranspose U-Net (beingdhruvv/ImageSharpening-KD).

Input and output: ``(B, 3, H, W)`` RGB in [0, 1]. Like the seed, the output is
the sharpened image itself; ``global_residual=True`` adds the input to the
output instead (the network then starts near the identity and learns only the
correction, which a small student learns in far fewer steps). Any size: reflect-padded to a multiple of
``2 ** depth`` internally and cropped back.

``depth`` is the number of pooling levels: encoder blocks ``enc1..enc{depth}``
with ``base_filters * 2**i`` channels, a bottleneck with ``base_filters * 2**depth``,
decoder ``up{i}`` (ConvTranspose 2x2 stride 2) + ``dec{i}`` (concat skip, ConvBlock),
and a 1x1 ``final`` conv. Blocks are (3x3 conv, BatchNorm, ReLU) x 2 under
``block.N`` like the seed, so the seed's state dicts load unchanged.

The seed's ``UNet(depth=...)`` builds 3 pooling levels for any ``depth >= 3`` (and
2 levels with an ``8 * base`` bottleneck below that); ``legacy_three_levels=True``
reproduces that layout and its fixed padding to a multiple of 16, to import those
checkpoints (7,703,107 parameters at ``base_filters=64``). With depth 3 the
correct and the legacy layouts coincide except for the padding multiple.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from restorekit.models.layers import pad_to_multiple
from restorekit.models.registry import register_model
from restorekit.models.spec import Capabilities, Tensors, count_indices, has_keys


class StudentConvBlock(nn.Module):
    """(3x3 conv -> BatchNorm -> ReLU) x 2, optional dropout (keys ``block.0/1/3/4``)."""

    def __init__(self, in_ch: int, out_ch: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class StudentUNet(nn.Module):
    """U-Net with ``depth`` max-pooling levels (see the module docstring for the legacy layout)."""

    def __init__(
        self,
        base_filters: int = 64,
        depth: int = 4,
        use_dropout: bool = False,
        legacy_three_levels: bool = False,
        in_channels: int = 3,
        out_channels: int = 3,
        global_residual: bool = False,
    ) -> None:
        super().__init__()
        if global_residual and in_channels != out_channels:
            raise ValueError("student_unet: global_residual needs in_channels == out_channels")
        self.global_residual = global_residual
        if depth < 1:
            raise ValueError(f"student_unet: depth must be >= 1, got {depth}")
        f = base_filters
        d = 0.2 if use_dropout else 0.0
        if legacy_three_levels:
            levels = 3 if depth >= 3 else 2
            enc_ch = [f * 2**i for i in range(levels)]
            bott = f * 8
            self.pad_multiple = 16
        else:
            levels = depth
            enc_ch = [f * 2**i for i in range(levels)]
            bott = f * 2**levels
            self.pad_multiple = 2**levels
        self.levels = levels
        self.pool = nn.MaxPool2d(2)
        prev = in_channels
        for i, ch in enumerate(enc_ch, start=1):
            self.add_module(f"enc{i}", StudentConvBlock(prev, ch, d))
            prev = ch
        self.bottleneck = StudentConvBlock(prev, bott, d)
        prev = bott
        for i in range(levels, 0, -1):
            ch = enc_ch[i - 1]
            self.add_module(f"up{i}", nn.ConvTranspose2d(prev, ch, 2, stride=2))
            self.add_module(f"dec{i}", StudentConvBlock(ch * 2, ch, d))
            prev = ch
        self.final = nn.Conv2d(prev, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, H, W)``."""
        h, w = x.shape[-2:]
        inp = x
        x = pad_to_multiple(x, self.pad_multiple, "reflect")
        skips = []
        for i in range(1, self.levels + 1):
            x = getattr(self, f"enc{i}")(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for i in range(self.levels, 0, -1):
            x = getattr(self, f"up{i}")(x)
            x = getattr(self, f"dec{i}")(torch.cat([x, skips[i - 1]], dim=1))
        out = self.final(x)[:, :, :h, :w]
        return out + inp if self.global_residual else out


def _detect(state: Tensors) -> bool:
    """The key signature of :class:`StudentUNet` (``enc1``, ``bottleneck``, transposed-conv ``up1``, ``final``)."""
    return has_keys(state, "enc1.block.0.weight", "bottleneck.block.0.weight", "up1.weight", "final.weight")


def _infer(state: Tensors) -> dict:
    """Base width, depth and the seed's legacy three-level layout from tensor shapes."""
    levels = count_indices(state, r"enc(\d+)\.block\.0\.weight") - 1  # enc indices start at 1
    base = int(state["enc1.block.0.weight"].shape[0])
    bott = int(state["bottleneck.block.0.weight"].shape[0])
    args: dict = {
        "base_filters": base,
        "in_channels": int(state["enc1.block.0.weight"].shape[1]),
        "out_channels": int(state["final.weight"].shape[0]),
    }
    if bott == base * 8 and levels in (2, 3):
        # the seed's layout: 3 levels for depth >= 3 (its training used depth=4), 2 levels below
        args.update(depth=4 if levels == 3 else 2, legacy_three_levels=True)
    else:
        args.update(depth=levels, legacy_three_levels=False)
    return args


def _caps(args: dict) -> Capabilities:
    legacy = bool(args["legacy_three_levels"])
    mult = 16 if legacy else 2 ** int(args["depth"])
    return Capabilities(value_range="0,1", size_multiple=mult)


@register_model(
    "student_unet",
    description="BatchNorm/ConvTranspose U-Net student of the distillation seed; inputs in [0, 1]",
    presets={
        "seed-legacy": {"base_filters": 64, "depth": 4, "legacy_three_levels": True},
        "base64-d4": {"base_filters": 64, "depth": 4},
        "base32-d4": {"base_filters": 32, "depth": 4},
        "tiny": {"base_filters": 8, "depth": 2},  # contract tests (tests/models/test_contract.py)
    },
    detect=_detect,
    infer=_infer,
    capabilities=_caps,
)
def student_unet(
    base_filters: int = 64,
    depth: int = 4,
    use_dropout: bool = False,
    legacy_three_levels: bool = False,
    in_channels: int = 3,
    out_channels: int = 3,
    global_residual: bool = False,
) -> StudentUNet:
    """Build :class:`StudentUNet`."""
    return StudentUNet(base_filters, depth, use_dropout, legacy_three_levels, in_channels, out_channels, global_residual)
