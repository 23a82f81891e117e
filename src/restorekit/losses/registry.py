"""Registry of named losses: name -> :class:`LossSpec` whose ``factory(**args)`` builds an
``nn.Module`` with ``forward(pred, target) -> scalar`` (``(B, C, H, W)`` tensors).

:data:`LOSSES` is a :class:`restorekit.registry.Registry`; add a loss with
:func:`register_loss` beside its code (``LOSSES[name]``, ``name in LOSSES`` and
``sorted(LOSSES)`` work as on a dict; an unknown name raises ConfigError).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn

from restorekit.registry import Registry


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: its factory, input range and the reference it compares with by default."""

    factory: Callable[..., nn.Module]
    value_range: str
    description: str
    force_target: str | None = None  # e.g. kd_output always compares with the teacher


def _l1(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.pixel import L1Loss

    return L1Loss(**kw)


def _mse(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.pixel import MSELoss

    return MSELoss(**kw)


def _charbonnier(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.pixel import CharbonnierLoss

    return CharbonnierLoss(**kw)


def _psnr(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.pixel import PSNRLoss

    return PSNRLoss(**kw)


def _tv(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.pixel import TVLoss

    return TVLoss(**kw)


def _fft(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.pixel import FFTLoss

    return FFTLoss(**kw)


def _ssim(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.structural import SSIMLoss

    return SSIMLoss(**kw)


def _ms_ssim(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.structural import MSSSIMLoss

    return MSSSIMLoss(**kw)


def _shadow(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.structural import ShadowAwareLoss

    return ShadowAwareLoss(**kw)


def _perceptual(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.vgg import perceptual_loss

    return perceptual_loss(**kw)


def _lpips(**kw):  # noqa: ANN003, ANN202
    from restorekit.losses.lpips import lpips_loss

    return lpips_loss(**kw)


#: every registered loss by name
LOSSES: Registry[LossSpec] = Registry("loss")


def register_loss(
    name: str,
    factory: Callable[..., nn.Module],
    value_range: str,
    description: str,
    *,
    force_target: str | None = None,
    replace: bool = False,
) -> LossSpec:
    """Register ``factory`` as loss ``name`` (``value_range``: the input range it expects)."""
    spec = LossSpec(factory, value_range, description, force_target)
    LOSSES.register(name, spec, replace=replace)
    return spec


register_loss("l1", _l1, "any", "mean |pred - target|")
register_loss("mse", _mse, "any", "mean (pred - target)^2")
register_loss("charbonnier", _charbonnier, "any", "mean sqrt((pred - target)^2 + eps^2); args: eps=1e-3")
register_loss("psnr", _psnr, "0,1", "NAFNet PSNR loss = -PSNR (dB); args: to_y=false")
register_loss("ssim", _ssim, "0,1 or -1,1", "1 - SSIM; args: value_range='0,1'|'-1,1'")
register_loss("ms_ssim", _ms_ssim, "0,1 or -1,1", "1 - MS-SSIM; args: value_range")
register_loss("tv", _tv, "any", "total variation of pred (target unused)")
register_loss("fft", _fft, "any", "L1 between orthonormal 2-D FFTs")
register_loss(
    "perceptual", _perceptual, "0,1", "VGG feature distance; args: network=vgg16|vgg19, layers=[relu2_2], weights, criterion"
)
register_loss("lpips", _lpips, "0,1", "LPIPS-VGG; args: weights=<lpips vgg.pth> (required), backbone_weights")
register_loss("shadow", _shadow, "0,1 linear", "raw project: 0.16 shadow-weighted L1 + 0.84 (1 - MS-SSIM), gamma 2.2")
register_loss("kd_output", _l1, "any", "L1 between the student output and the teacher output", force_target="teacher")


def available_losses() -> dict[str, str]:
    """``{name: description}`` of every registered loss."""
    return {name: spec.description for name, spec in LOSSES.items()}
