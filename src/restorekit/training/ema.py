"""Exponential moving average of model weights (BasicSR's ``params_ema``).

``ema = decay * ema + (1 - decay) * weights`` after every optimizer step;
buffers (e.g. BatchNorm statistics) are copied. The averaged copy is used for
validation and export when enabled and is saved with every checkpoint (it is a
sub-module of the training module, so it lives in the checkpoint's state_dict).
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


def make_ema_copy(model: nn.Module) -> nn.Module:
    """A frozen deep copy of ``model`` (same attributes such as ``restorekit_arch``); callers pick train/eval mode."""
    ema = copy.deepcopy(model)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """In place: ``ema_p <- decay * ema_p + (1 - decay) * p`` for parameters; buffers copied.

    ``decay=0`` copies the weights. Parameters are matched by name (both
    modules must have the same architecture).
    """
    ema_params = dict(ema.named_parameters())
    src, dst = [], []
    for name, p in model.named_parameters():
        e = ema_params[name]
        if e.dtype.is_floating_point:
            src.append(p.detach().to(e.dtype))
            dst.append(e)
    if dst:
        torch._foreach_lerp_(dst, src, 1.0 - decay)
    ema_buffers = dict(ema.named_buffers())
    for name, b in model.named_buffers():
        if name in ema_buffers:
            ema_buffers[name].copy_(b)
