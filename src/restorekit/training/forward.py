"""Model forward dispatch shared by training, evaluation and inference.

:func:`run_model` is the raw dispatch (tensors in the model's own value
range): a batch with ``"rggb"`` calls ``model(rggb, cond, residual)`` (the
conditional raw NAFNet), anything else ``model(input)``.

:func:`predict01` is the boundary used by the training module: it takes
restorekit's canonical [0, 1] tensors, converts them to the model's range
(``model.restorekit_value_range``), runs the model and converts the output
back to [0, 1] (not clipped, so losses see the true error).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from restorekit.models.value_range import from_model_range, model_value_range, to_model_range

#: batch keys holding image tensors that are model inputs and live in [0, 1]
_IMAGE_INPUT_KEYS = ("input", "rggb", "residual")


def run_model(model: nn.Module, batch_or_tensor: torch.Tensor | Mapping[str, Any]) -> torch.Tensor:
    """Call ``model`` on a tensor ``(B,C,H,W)`` or a batch dict; no value-range conversion.

    Raw batches (key ``"rggb"``: ``(B,4,h,w)``, ``"cond"``: ``(B,1)``,
    ``"residual"``: ``(B,3,2h,2w)``) call ``model(rggb, cond, residual)``;
    other batches ``model(batch["input"])``. Returns the model's output
    ``(B,3,H,W)`` in the model's own range.
    """
    if isinstance(batch_or_tensor, torch.Tensor):
        return model(batch_or_tensor)
    batch = batch_or_tensor
    if "rggb" in batch:
        return model(batch["rggb"], batch["cond"], batch["residual"])
    if "input" not in batch:
        raise KeyError(f"batch has neither 'input' nor 'rggb' (keys: {sorted(batch)})")
    return model(batch["input"])


def to_model_batch(
    batch_or_tensor: torch.Tensor | Mapping[str, Any],
    value_range: str,
    channels_last: bool = False,
) -> torch.Tensor | dict[str, Any]:
    """Convert the [0, 1] image inputs of a batch (or a tensor) to ``value_range`` (optionally channels_last)."""

    def conv(t: torch.Tensor) -> torch.Tensor:
        t = to_model_range(t, value_range)
        if channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    if isinstance(batch_or_tensor, torch.Tensor):
        return conv(batch_or_tensor)
    out = dict(batch_or_tensor)
    for k in _IMAGE_INPUT_KEYS:
        if k in out and isinstance(out[k], torch.Tensor):
            out[k] = conv(out[k])
    return out


def predict01(
    model: nn.Module,
    batch_or_tensor: torch.Tensor | Mapping[str, Any],
    *,
    value_range: str | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Run ``model`` on [0, 1] inputs and return its output mapped back to [0, 1] (unclipped), ``(B,3,H,W)`` float."""
    vr = value_range or model_value_range(model)
    out = run_model(model, to_model_batch(batch_or_tensor, vr, channels_last))
    return from_model_range(out, vr).contiguous()
