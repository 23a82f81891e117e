"""``nafnet``: NAFNet (Chen et al., 2022), written to match megvii-research/NAFNet exactly.

Same constructor arguments (``img_channel, width, middle_blk_num, enc_blk_nums,
dec_blk_nums``) and the same state-dict keys (``intro``, ``encoders``, ``downs``,
``middle_blks``, ``ups``, ``decoders``, ``ending``; blocks ``conv1..conv5``,
``sca.1``, ``norm1``, ``norm2``, ``beta``, ``gamma``), so official checkpoints load
unchanged. Differences that do not change outputs: ``LayerNorm2d`` uses plain ops
(ONNX-exportable), the channel-attention pooling is a :class:`ChannelPool` that
:func:`restorekit.models.tlc.enable_tlc` can switch to TLC.

Input and output: ``(B, C, H, W)`` RGB in [0, 1], any size (zero-padded to a
multiple of ``2 ** len(enc_blk_nums)`` internally like the official
``check_image_size``, then cropped back). The output is the input plus the
predicted residual (not clipped).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from restorekit.models.layers import ChannelPool, LayerNorm2d, SimpleGate, pad_to_multiple
from restorekit.models.registry import register_model
from restorekit.models.spec import Capabilities, Tensors, blocks_per_stage, count_indices, has_keys, has_match


class NAFBlock(nn.Module):
    """NAFNet block: LN -> 1x1 -> 3x3 depthwise -> SimpleGate -> SCA -> 1x1, then LN -> FFN with SimpleGate."""

    def __init__(self, c: int, DW_Expand: int = 2, FFN_Expand: int = 2, drop_out_rate: float = 0.0) -> None:  # noqa: N803
        super().__init__()
        dw = c * DW_Expand
        self.conv1 = nn.Conv2d(c, dw, 1, bias=True)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw, bias=True)
        self.conv3 = nn.Conv2d(dw // 2, c, 1, bias=True)
        # Simplified channel attention: pool + 1x1 conv, multiply (no sigmoid); keys sca.1.*
        self.sca = nn.Sequential(ChannelPool(), nn.Conv2d(dw // 2, dw // 2, 1, bias=True))
        self.sg = SimpleGate()
        ffn = FFN_Expand * c
        self.conv4 = nn.Conv2d(c, ffn, 1, bias=True)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1, bias=True)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.norm1(inp)
        x = self.conv2(self.conv1(x))
        x = self.sg(x)
        x = x * self.sca(x)
        x = self.dropout1(self.conv3(x))
        y = inp + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        x = self.dropout2(x)
        return y + x * self.gamma


class NAFNet(nn.Module):
    """U-shaped NAFNet: stride-2 conv downsampling, 1x1 conv + PixelShuffle upsampling, additive skips."""

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: Sequence[int] = (),
        dec_blk_nums: Sequence[int] = (),
        drop_out_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(f"enc_blk_nums {list(enc_blk_nums)} and dec_blk_nums {list(dec_blk_nums)} differ in length")
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1, bias=True)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1, bias=True)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan, drop_out_rate=drop_out_rate) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(chan, drop_out_rate=drop_out_rate) for _ in range(middle_blk_num)])
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan, drop_out_rate=drop_out_rate) for _ in range(num)]))
        self.padder_size = 2 ** len(self.encoders)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` in [0, 1] -> restored ``(B, C, H, W)`` (input + predicted residual)."""
        h, w = inp.shape[-2:]
        inp = pad_to_multiple(inp, self.padder_size, "constant")
        x = self.intro(inp)
        encs = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            encs.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, encs[::-1]):
            x = up(x) + skip
            x = decoder(x)
        x = self.ending(x) + inp
        return x[:, :, :h, :w]


NAFNET_PRESETS: dict[str, dict] = {
    "gopro-w32": {"width": 32, "middle_blk_num": 1, "enc_blk_nums": [1, 1, 1, 28], "dec_blk_nums": [1, 1, 1, 1]},
    "gopro-w64": {"width": 64, "middle_blk_num": 1, "enc_blk_nums": [1, 1, 1, 28], "dec_blk_nums": [1, 1, 1, 1]},
    "sidd-w32": {"width": 32, "middle_blk_num": 12, "enc_blk_nums": [2, 2, 4, 8], "dec_blk_nums": [2, 2, 2, 2]},
    "sidd-w64": {"width": 64, "middle_blk_num": 12, "enc_blk_nums": [2, 2, 4, 8], "dec_blk_nums": [2, 2, 2, 2]},
    "tiny": {"width": 16, "middle_blk_num": 1, "enc_blk_nums": [1, 1, 1, 1], "dec_blk_nums": [1, 1, 1, 1]},
}


def _detect(state: Tensors) -> bool:
    """The official NAFNet key signature (``intro``, ``ending`` and ``sca.1`` channel attention in the stages)."""
    return has_keys(state, "intro.weight", "ending.weight") and has_match(
        state, r"(encoders|middle_blks|decoders)\.\d+\.\d+\.sca\.1\.weight")


def _infer(state: Tensors) -> dict:
    """Width and block counts per stage from the keys and tensor shapes."""
    n_down = count_indices(state, r"downs\.(\d+)\.weight")
    n_up = count_indices(state, r"ups\.(\d+)\.0\.weight")
    return {
        "img_channel": int(state["intro.weight"].shape[1]),
        "width": int(state["intro.weight"].shape[0]),
        "enc_blk_nums": blocks_per_stage(state, "encoders", n_down, "conv1.weight"),
        "middle_blk_num": count_indices(state, r"middle_blks\.(\d+)\.conv1\.weight"),
        "dec_blk_nums": blocks_per_stage(state, "decoders", n_up, "conv1.weight"),
    }


def _caps(args: dict) -> Capabilities:
    # simplified channel attention pools over the whole input (global context; TLC makes it local);
    # depthwise 3x3 convolutions and LayerNorm2d: channels-last is slower on CPU
    return Capabilities(value_range="0,1", size_multiple=2 ** len(list(args["enc_blk_nums"])), tlc=True,
                        global_context=True, channels_last={"cpu": True, "cuda": True, "mps": False})


@register_model(
    "nafnet",
    description="NAFNet (official layout; GoPro-w32 17.11 M, SIDD-w64 115.98 M params); inputs in [0, 1]",
    presets=NAFNET_PRESETS,
    detect=_detect,
    infer=_infer,
    capabilities=_caps,
    priority=1,
)
def nafnet(
    img_channel: int = 3,
    width: int = 32,
    middle_blk_num: int = 1,
    enc_blk_nums: Sequence[int] = (1, 1, 1, 28),
    dec_blk_nums: Sequence[int] = (1, 1, 1, 1),
    drop_out_rate: float = 0.0,
) -> NAFNet:
    """Build :class:`NAFNet` (defaults: the GoPro width-32 deblurring model)."""
    return NAFNet(img_channel, width, middle_blk_num, list(enc_blk_nums), list(dec_blk_nums), drop_out_rate)
