"""Conversions between restorekit's canonical [0, 1] tensors and a model's own value range."""

from __future__ import annotations

import torch
import torch.nn as nn
from restorekit.models.spec import caps_of


def model_value_range(model: nn.Module) -> str:
    """The value range a model works in: ``"0,1"`` (default) or ``"-1,1"``."""
    return caps_of(model).value_range


def to_model_range(x: torch.Tensor, value_range: str) -> torch.Tensor:
    """Map a tensor in [0, 1] to the model's range (``"0,1"`` or ``"-1,1"``)."""
    if value_range == "-1,1":
        return x * 2.0 - 1.0
    if value_range == "0,1":
        return x
    raise ValueError(f"unknown value range {value_range!r} (expected '0,1' or '-1,1')")


def from_model_range(y: torch.Tensor, value_range: str) -> torch.Tensor:
    """Map a model output in its own range back to [0, 1] (not clipped)."""
    if value_range == "-1,1":
        return (y + 1.0) * 0.5
    if value_range == "0,1":
        return y
    raise ValueError(f"unknown value range {value_range!r} (expected '0,1' or '-1,1')")
