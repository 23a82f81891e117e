"""VGG16/VGG19 feature extractor with torchvision-compatible parameter names, and the perceptual loss.

The module's state-dict keys are ``features.N.weight`` / ``features.N.bias`` with torchvision's
layer indices, so torchvision's ImageNet files load directly (only the ``features.*`` keys are
used; the classifier is ignored). Weights are never downloaded: they are read with
``torch.load(weights_only=True)`` from a given path or from the torch hub cache
(``~/.cache/torch/hub/checkpoints/vgg16-397923af.pth`` / ``vgg19-dcbee9e9.pth``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn

from restorekit.errors import ConfigError

_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_CHANNELS = (64, 128, 256, 512, 512)
WEIGHT_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbee9e9.pth"}
WEIGHT_URLS = {k: f"https://download.pytorch.org/models/{v}" for k, v in WEIGHT_FILES.items()}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str) -> list[str]:
    """Names of the layers of ``features`` in index order: conv1_1, relu1_1, ..., pool5."""
    if arch not in _BLOCKS:
        raise ConfigError(f"unknown VGG network {arch!r} (expected vgg16 or vgg19)")
    names: list[str] = []
    for b, n in enumerate(_BLOCKS[arch], start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


def _build_features(arch: str, upto: int) -> nn.Sequential:
    """torchvision's ``features`` layout truncated after index ``upto``."""
    layers: list[nn.Module] = []
    in_ch = 3
    for b, n in enumerate(_BLOCKS[arch]):
        for _ in range(n):
            layers += [nn.Conv2d(in_ch, _CHANNELS[b], 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = _CHANNELS[b]
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers[: upto + 1])


def hub_checkpoint_dir() -> Path:
    """The torch hub checkpoint folder (``$TORCH_HOME/hub/checkpoints``, default ~/.cache/torch/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_vgg_weights(arch: str, weights: str | Path | None) -> Path | None:
    """Path of the ImageNet weight file to load, or ``None`` for ``weights="random"``.

    ``weights``: a file path, ``"imagenet"``/``None`` (look in the torch hub cache), or ``"random"``.
    Raises ConfigError saying how to obtain the file when it is absent.
    """
    if weights is not None and str(weights) == "random":
        return None
    if weights is None or str(weights) == "imagenet":
        path = hub_checkpoint_dir() / WEIGHT_FILES[arch]
    else:
        path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{arch.upper()} ImageNet weights not found at '{path}'. restorekit never downloads at run time: "
            f"fetch {WEIGHT_URLS[arch]} once (e.g. `curl -L -o {hub_checkpoint_dir() / WEIGHT_FILES[arch]} "
            f"{WEIGHT_URLS[arch]}`) or set the loss arg `weights: /path/to/{WEIGHT_FILES[arch]}`; "
            "use `weights: random` only for tests"
        )
    return path


def load_vgg_state(path: Path) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a torchvision-format VGG file (weights_only load)."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ConfigError(f"cannot load VGG weights '{path}': {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"VGG weights '{path}' are not a state dict")
    feats = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
    if not feats:
        raise ConfigError(f"VGG weights '{path}' have no 'features.N.weight' keys (torchvision layout expected)")
    return feats


class VGGFeatures(nn.Module):
    """Frozen VGG feature extractor returning the activations of selected layers.

    Input: ``(B, 3, H, W)`` RGB in [0, 1] (ImageNet-normalised inside when ``normalize``).
    Output: ``dict[layer_name, Tensor]`` for ``layers`` (e.g. ``["relu2_2"]``).
    Build with :func:`build_vgg_features` (which loads the weights).
    """

    def __init__(self, arch: str = "vgg16", layers: Sequence[str] = ("relu2_2",), normalize: bool = True) -> None:
        super().__init__()
        names = layer_names(arch)
        unknown = [layer for layer in layers if layer not in names]
        if unknown:
            raise ConfigError(f"unknown {arch} layer(s) {unknown}; known: {', '.join(names)}")
        if not layers:
            raise ConfigError("perceptual loss needs at least one layer")
        self.arch = arch
        self.layers = list(layers)
        self._index = {names.index(layer): layer for layer in self.layers}
        self.features = _build_features(arch, max(self._index))
        self.normalize = bool(normalize)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGFeatures":  # always frozen / eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.normalize:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._index:
                out[self._index[i]] = x
        return out


def build_vgg_features(
    arch: str = "vgg16",
    layers: Sequence[str] = ("relu2_2",),
    weights: str | Path | None = "imagenet",
    normalize: bool = True,
) -> VGGFeatures:
    """A :class:`VGGFeatures` with ImageNet weights (file path / hub cache) or ``weights="random"``."""
    net = VGGFeatures(arch, layers, normalize)
    path = resolve_vgg_weights(arch, weights)
    if path is None:
        gen = torch.Generator().manual_seed(0)
        for m in net.features:
            if isinstance(m, nn.Conv2d):
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / (9 * m.in_channels)) ** 0.5)
                    m.bias.zero_()
        return net
    state = load_vgg_state(path)
    own = net.state_dict()
    wanted = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in wanted]
    if missing:
        raise ConfigError(f"VGG weights '{path}' lack {missing[:4]} for {arch} (wrong network file?)")
    for k, v in wanted.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ConfigError(f"VGG weights '{path}': {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
    net.load_state_dict(wanted, strict=True)
    return net


class PerceptualLoss(nn.Module):
    """Distance between VGG features of pred and target (inputs RGB [0, 1], ``(B, 3, H, W)``).

    ``sum_l layer_weight_l * criterion(phi_l(pred), phi_l(target))`` with criterion "l1" (default) or
    "mse" (means over all elements). Target features are computed without gradient.
    """

    def __init__(self, extractor: VGGFeatures, layer_weights: dict[str, float], criterion: str = "l1") -> None:
        super().__init__()
        if criterion not in ("l1", "mse"):
            raise ConfigError(f"perceptual criterion must be 'l1' or 'mse', got {criterion!r}")
        self.extractor = extractor
        self.layer_weights = dict(layer_weights)
        self.criterion = criterion

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp = self.extractor(pred)
        with torch.no_grad():
            ft = self.extractor(target)
        total = pred.new_zeros(())
        for layer, w in self.layer_weights.items():
            d = fp[layer] - ft[layer]
            total = total + w * (d.abs().mean() if self.criterion == "l1" else (d * d).mean())
        return total


def perceptual_loss(
    network: str = "vgg16",
    layers: Sequence[str] | dict[str, float] = ("relu2_2",),
    weights: str | None = "imagenet",
    criterion: str = "l1",
    normalize: bool = True,
) -> PerceptualLoss:
    """Factory used by the loss registry. ``layers``: list (equal weights 1) or ``{layer: weight}``;
    ``weights``: "imagenet" (hub cache), a file path, or "random" (tests only)."""
    layer_weights = dict(layers) if isinstance(layers, dict) else {str(x): 1.0 for x in layers}
    extractor = build_vgg_features(network, list(layer_weights), weights, normalize)
    return PerceptualLoss(extractor, layer_weights, criterion)
