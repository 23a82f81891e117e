"""Small deterministic models for inference tests (kept tiny for speed)."""

from __future__ import annotations

import torch
import torch.nn as nn


class ShallowConv(nn.Module):
    """Six 3x3 convolutions (receptive-field radius 6 px), ReLU between, RGB [0,1] -> RGB; a pure conv model."""

    def __init__(self, width: int = 16, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        layers: list[nn.Module] = []
        chans = [3] + [width] * 5 + [3]
        for i in range(6):
            conv = nn.Conv2d(chans[i], chans[i + 1], 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / (9 * chans[i])) ** 0.5)
                conv.bias.zero_()
            layers.append(conv)
            if i < 5:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, H, W)`` (input + 0.1 * conv features)."""
        return x + 0.1 * self.body(x)


def signal_unet(seed: int = 0, norm: str = "batch", base_ch: int = 8) -> nn.Module:
    """deblur_unet (base 8) with He-initialised convs so that its output has image-like structure.

    Default PyTorch init makes a deep random U-Net's output almost constant, which
    would make any seam test pass trivially; He init keeps the signal (and the
    long-range dependencies) alive. The head is scaled so the output std is ~0.1.
    """
    import restorekit

    torch.manual_seed(seed)
    m = restorekit.create_model("deblur_unet", base_ch=base_ch, norm=norm).eval()
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            nn.init.zeros_(mod.bias)
    with torch.no_grad():
        y = m(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1)
        m.final.weight.mul_(0.05 / float(y.std()))
    return m


def tiny_nafnet(seed: int = 0, width: int = 8) -> nn.Module:
    """NAFNet width 8 with non-zero block scales (beta/gamma start at 0, which would make blocks identities)."""
    import restorekit

    torch.manual_seed(seed)
    m = restorekit.create_model("nafnet", width=width, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("beta") or name.endswith("gamma"):
                p.copy_(torch.randn(p.shape) * 0.2)
    return m
