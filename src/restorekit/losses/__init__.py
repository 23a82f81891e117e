"""Training losses. Inputs are ``(B, C, H, W)`` tensors in [0, 1] unless a loss says otherwise.

Build a weighted combination from config with :func:`build_loss` (a list of
:class:`~restorekit.losses.config.LossTerm`); its forward returns ``(total, parts)``.
"""

from restorekit.losses.builder import (
    LOSS_PRESETS,
    CombinedLoss,
    NonFiniteLossError,
    build_loss,
    build_term,
    check_finite,
    loss_preset,
)
from restorekit.losses.config import LossTerm
from restorekit.losses.distill import FeatureDistillation
from restorekit.losses.registry import LOSSES, available_losses

__all__ = [
    "LOSSES",
    "LOSS_PRESETS",
    "CombinedLoss",
    "FeatureDistillation",
    "LossTerm",
    "NonFiniteLossError",
    "available_losses",
    "build_loss",
    "build_term",
    "check_finite",
    "loss_preset",
]
