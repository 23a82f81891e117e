"""Build a weighted sum of loss terms from config, and guard against non-finite losses."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn as nn

from restorekit.errors import ConfigError, RestoreKitError
from restorekit.losses.config import LossTerm
from restorekit.losses.registry import LOSSES


class NonFiniteLossError(RestoreKitError):
    """The loss became NaN or Inf; the message names the step, the batch and the offending terms."""


class CombinedLoss(nn.Module):
    """Weighted sum of loss terms.

    forward(pred, target, **extras) with ``(B, C, H, W)`` tensors in [0, 1]; ``extras["teacher"]`` is the
    reference of terms whose target is "teacher". Returns ``(total, parts)``: ``total`` a scalar with
    gradient, ``parts`` ``{key: detached unweighted term value}``, keyed by the loss name, with
    ``@teacher`` appended for teacher terms and ``#2``, ``#3``... for repeats.
    """

    def __init__(self, keys: list[str], weights: list[float], targets: list[str], modules: list[nn.Module]) -> None:
        super().__init__()
        self.keys, self.weights, self.targets = list(keys), list(weights), list(targets)
        self.terms = nn.ModuleList(modules)

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, *, skip_missing: bool = False, **extras: Any
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``skip_missing``: terms whose reference (``extras[name]``) is absent are left out (validation
        batches without teacher outputs) instead of raising :class:`RestoreKitError`."""
        total = pred.new_zeros((), dtype=torch.float32)
        parts: dict[str, torch.Tensor] = {}
        for key, weight, ref_name, module in zip(self.keys, self.weights, self.targets, self.terms):
            if ref_name == "target":
                ref = target
            else:
                ref = extras.get(ref_name)
                if ref is None and skip_missing:
                    continue
                if ref is None:
                    raise RestoreKitError(
                        f"loss term '{key}' compares with the '{ref_name}' output but the batch has no "
                        f"'{ref_name}' tensor (precompute teacher outputs or set target: target)"
                    )
                ref = ref.to(device=pred.device, dtype=pred.dtype)
            value = module(pred, ref)
            parts[key] = value.detach()
            total = total + weight * value.float()
        return total, parts

    def describe(self) -> list[dict[str, Any]]:
        """The terms as ``[{key, weight, target}]``."""
        return [{"key": k, "weight": w, "target": t} for k, w, t in zip(self.keys, self.weights, self.targets)]


def _as_term(item: LossTerm | Mapping[str, Any], index: int) -> LossTerm:
    if isinstance(item, LossTerm):
        return item
    from restorekit.config.base import validate_config

    return validate_config(LossTerm, dict(item), f"loss[{index}]")


def build_term(term: LossTerm, index: int = 0) -> nn.Module:
    """Instantiate one loss; unknown or invalid args raise ConfigError naming ``loss[i].args``."""
    spec = LOSSES.get(term.name, None)
    if spec is None:
        raise ConfigError(f"loss[{index}].name: unknown loss {term.name!r}; known: {', '.join(sorted(LOSSES))}")
    factory = spec.factory
    try:
        return factory(**term.args)
    except TypeError as exc:
        raise ConfigError(f"loss[{index}] ({term.name}).args: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"loss[{index}] ({term.name}).args: {exc}") from exc


def build_loss(terms: Iterable[LossTerm | Mapping[str, Any]]) -> CombinedLoss:
    """A :class:`CombinedLoss` from a list of :class:`LossTerm` (or plain dicts); empty -> ConfigError."""
    items = [_as_term(t, i) for i, t in enumerate(terms)]
    if not items:
        raise ConfigError("loss: at least one loss term is required")
    keys: list[str] = []
    weights: list[float] = []
    targets: list[str] = []
    modules: list[nn.Module] = []
    for i, term in enumerate(items):
        spec = LOSSES[term.name]
        target = spec.force_target or term.target
        key = term.name if target == "target" or term.name == "kd_output" else f"{term.name}@{target}"
        n, base = 2, key
        while key in keys:
            key = f"{base}#{n}"
            n += 1
        keys.append(key)
        weights.append(float(term.weight))
        targets.append(target)
        modules.append(build_term(term, i))
    return CombinedLoss(keys, weights, targets, modules)


def check_finite(
    loss: torch.Tensor | float,
    step: int,
    batch_idx: int,
    parts: Mapping[str, torch.Tensor | float] | None = None,
) -> None:
    """Raise :class:`NonFiniteLossError` naming ``step`` and ``batch_idx`` when ``loss`` is NaN/Inf.

    ``parts`` (from :class:`CombinedLoss`) lets the message name the offending terms. Training calls
    this each step unless the config says to skip such batches.
    """
    value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    if math.isfinite(value):
        return
    bad = []
    for key, v in (parts or {}).items():
        fv = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
        if not math.isfinite(fv):
            bad.append(f"{key}={fv}")
    detail = f" (non-finite terms: {', '.join(bad)})" if bad else ""
    raise NonFiniteLossError(
        f"loss is {value} at step {step}, batch {batch_idx}{detail}; check the learning rate and the input data, "
        "or set train.skip_nonfinite: true to skip such batches"
    )


#: Loss combinations of the seed projects (reference.md).
LOSS_PRESETS: dict[str, list[dict[str, Any]]] = {
    # deblurring U-Net: 0.84 (1 - MS-SSIM) + 0.16 Charbonnier(eps 1e-3)
    "deblur": [
        {"name": "ms_ssim", "weight": 0.84},
        {"name": "charbonnier", "weight": 0.16, "args": {"eps": 1e-3}},
    ],
    # manuscript ViT: L1 + 0.1 VGG16 features
    "manuscript": [
        {"name": "l1", "weight": 1.0},
        {"name": "perceptual", "weight": 0.1, "args": {"network": "vgg16", "layers": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]}},
    ],
    # distillation: L1(out, sharp) + 1.0 L1(out, teacher) + 0.1 VGG relu2_2 (out, teacher)
    "distill": [
        {"name": "l1", "weight": 1.0},
        {"name": "kd_output", "weight": 1.0},
        {"name": "perceptual", "weight": 0.1, "args": {"network": "vgg16", "layers": ["relu2_2"]}, "target": "teacher"},
    ],
    # raw denoising: shadow-aware loss
    "raw": [{"name": "shadow", "weight": 1.0}],
}


def loss_preset(name: str) -> list[LossTerm]:
    """The seed project's loss terms by preset name (deblur, manuscript, distill, raw)."""
    if name not in LOSS_PRESETS:
        raise ConfigError(f"unknown loss preset {name!r}; known: {', '.join(sorted(LOSS_PRESETS))}")
    return [LossTerm(**t) for t in LOSS_PRESETS[name]]
