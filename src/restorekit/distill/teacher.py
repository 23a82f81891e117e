"""The teacher: any model :func:`restorekit.models.loading.load_model` can load, frozen and in eval mode.

Two ways to run it:

* :func:`teacher_image_fn` for whole images (cache precompute, scorecard):
  through :func:`restorekit.inference.restore_image`, so large images are
  tiled (and TLC applied where the inference core does) exactly as at inference.
* :func:`teacher_batch` for training batches (online mode): one forward pass
  on the ``(B, 3, H, W)`` patches under ``torch.no_grad``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from restorekit.models.value_range import from_model_range, model_value_range, to_model_range
from restorekit.models.spec import arch_of, args_of, card_of


def freeze(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode with every parameter ``requires_grad=False``; returns it."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_teacher(path: str | Path, arch: str | None = None, **kwargs: Any) -> nn.Module:
    """Load a teacher from any weight file ``load_model`` understands, frozen, on CPU."""
    from restorekit.models.loading import load_model

    if arch:
        model = load_model(path, arch=arch, **kwargs)
    else:
        model = load_model(path, **kwargs)
    return freeze(model)


@torch.no_grad()
def teacher_batch(teacher: nn.Module, batch: dict[str, Any] | torch.Tensor) -> torch.Tensor:
    """Teacher output for a training batch: ``(B, 3, H, W)`` float in [0, 1] (not clipped), no gradient.

    ``batch`` is a collated batch dict (``input`` or raw ``rggb``/``cond``/``residual``)
    or an input tensor in [0, 1]; the model's own value range is handled here.
    """
    was_training = teacher.training
    teacher.eval()
    vr = model_value_range(teacher)
    try:
        if isinstance(batch, dict) and "rggb" in batch:
            from restorekit.training.forward import run_model

            y = run_model(teacher, batch)
        else:
            x = batch["input"] if isinstance(batch, dict) else batch
            y = teacher(to_model_range(x, vr))
        return from_model_range(y, vr).detach()
    finally:
        if was_training:
            teacher.train()


def teacher_image_fn(
    teacher: nn.Module,
    *,
    tile: int | str = "auto",
    overlap: int | float = 32,
    device: str | None = None,
    **restore_kwargs: Any,
) -> Callable[[np.ndarray], np.ndarray]:
    """``(H, W, 3)`` float32 [0, 1] -> teacher output of the same shape, via the inference core (tiling/TLC)."""
    from restorekit.inference import restore_image

    def fn(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = restore_image(teacher, x, tile=tile, overlap=overlap, device=device, **restore_kwargs)
        return np.asarray(out, dtype=np.float32)

    return fn


def teacher_run_settings(teacher: nn.Module, **settings: Any) -> dict[str, Any]:
    """How the teacher is run, for the cache fingerprint: arch, args, value range, train size, tiling settings."""
    return {
        "arch": arch_of(teacher),
        "arch_args": args_of(teacher),
        "value_range": model_value_range(teacher),
        "train_size": (card_of(teacher).train_size if card_of(teacher) else None),
        **settings,
    }
