"""LPIPS (VGG variant) written here; usable only when its weight files are available locally.

Needs two files, both loaded with ``torch.load(weights_only=True)``:
- the linear-layer weights of the ``lpips`` package (``lpips/weights/v0.1/vgg.pth``: keys
  ``lin0.model.1.weight`` .. ``lin4.model.1.weight``, shapes ``(1, C, 1, 1)``; a full LPIPS state dict
  with ``lins.N.model.1.weight`` keys is accepted too);
- torchvision's VGG16 ImageNet file (hub cache or ``backbone_weights``).

Definition (Zhang et al. 2018): inputs [0,1] -> [-1,1] -> ``(x - shift) / scale``; VGG16 features at
relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; each unit-normalised over channels; squared difference;
1x1 linear layer; spatial mean; summed over layers.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn as nn

from restorekit.errors import ConfigError
from restorekit.losses.vgg import VGGFeatures, build_vgg_features

LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_LPIPS_CHANNELS = (64, 128, 256, 512, 512)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def load_lpips_linear(path: str | Path) -> list[torch.Tensor]:
    """The five ``(1, C, 1, 1)`` linear weights from an lpips weight file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(
            f"LPIPS weights '{p}' not found: copy 'lpips/weights/v0.1/vgg.pth' from the lpips package "
            "(pip download lpips; it is a wheel/zip) to that path; restorekit never downloads weights"
        )
    try:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"cannot load LPIPS weights '{p}': {exc}") from exc
    found: dict[int, torch.Tensor] = {}
    for key, value in state.items():
        m = re.fullmatch(r"(?:.*\.)?lins?\.?(\d)\.model\.1\.weight", key)
        if m:
            found[int(m.group(1))] = value
    if sorted(found) != [0, 1, 2, 3, 4]:
        raise ConfigError(f"LPIPS weights '{p}' lack lin0..lin4 '.model.1.weight' keys (got {sorted(state)[:6]})")
    for i, ch in enumerate(_LPIPS_CHANNELS):
        if tuple(found[i].shape) != (1, ch, 1, 1):
            raise ConfigError(f"LPIPS weights '{p}': lin{i} has shape {tuple(found[i].shape)}, expected (1, {ch}, 1, 1)")
    return [found[i].float() for i in range(5)]


class LPIPS(nn.Module):
    """LPIPS distance per image: ``(B,3,H,W)`` RGB in [0,1] pair -> ``Tensor[B]`` (0 for identical images)."""

    def __init__(self, backbone: VGGFeatures, linear: list[torch.Tensor]) -> None:
        super().__init__()
        self.backbone = backbone
        self.lins = nn.ModuleList()
        for w in linear:
            conv = nn.Conv2d(w.shape[1], 1, 1, bias=False)
            with torch.no_grad():
                conv.weight.copy_(w)
            conv.weight.requires_grad_(False)
            self.lins.append(conv)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x * 2.0 - 1.0) - self.shift) / self.scale
        f = self.backbone(x)
        out = []
        for layer in LPIPS_LAYERS:
            t = f[layer]
            out.append(t / (torch.sqrt((t * t).sum(dim=1, keepdim=True)) + 1e-10))
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp, ft = self._feats(pred), self._feats(target)
        total = pred.new_zeros(pred.shape[0])
        for lin, a, b in zip(self.lins, fp, ft):
            total = total + lin((a - b) ** 2).mean(dim=(1, 2, 3))
        return total


def build_lpips(weights: str | Path, backbone_weights: str | Path | None = "imagenet") -> LPIPS:
    """LPIPS-VGG from an lpips linear-weight file and torchvision VGG16 weights (``"random"`` for tests)."""
    linear = load_lpips_linear(weights)
    backbone = build_vgg_features("vgg16", LPIPS_LAYERS, backbone_weights, normalize=False)
    return LPIPS(backbone, linear)


class LPIPSLoss(nn.Module):
    """Mean LPIPS over the batch (inputs RGB [0, 1])."""

    def __init__(self, lpips: LPIPS) -> None:
        super().__init__()
        self.lpips = lpips

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.lpips(pred, target).mean()


def lpips_loss(weights: str | None = None, backbone_weights: str | None = "imagenet") -> LPIPSLoss:
    """Registry factory: ``weights`` (lpips vgg.pth) is required; the term is optional in configs."""
    if not weights:
        raise ConfigError("loss 'lpips' needs args.weights: path to the lpips package's v0.1/vgg.pth file")
    return LPIPSLoss(build_lpips(weights, backbone_weights))
