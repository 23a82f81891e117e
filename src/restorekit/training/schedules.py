"""Per-step learning-rate schedules: constant or cosine, each with a linear warm-up.

The multiplier is a picklable callable object, so ``LambdaLR.state_dict()``
stores its settings and a resumed run continues the same curve.
"""

from __future__ import annotations

import math

import torch


class LRMultiplier:
    """``step -> lr / base_lr`` for a warm-up followed by a constant or cosine phase.

    Warm-up: linear from ``warmup_start_factor`` to 1 over ``warmup_steps``.
    Cosine: from 1 down to ``min_factor`` at ``total_steps`` (held after).
    """

    def __init__(
        self,
        name: str,
        total_steps: int,
        warmup_steps: int = 0,
        warmup_start_factor: float = 0.01,
        min_factor: float = 0.0,
    ) -> None:
        if name not in ("constant", "cosine"):
            raise ValueError(f"unknown schedule {name!r}")
        self.name = name
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, int(warmup_steps))
        self.warmup_start_factor = float(warmup_start_factor)
        self.min_factor = float(min_factor)

    def __call__(self, step: int) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            t = step / self.warmup_steps
            return self.warmup_start_factor + (1.0 - self.warmup_start_factor) * t
        if self.name == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        t = min(1.0, max(0.0, (step - self.warmup_steps) / span))
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    total_steps: int,
    *,
    base_lr: float,
    min_lr: float = 0.0,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.01,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepping once per optimizer step (``min_lr`` is absolute)."""
    mult = LRMultiplier(name, total_steps, warmup_steps, warmup_start_factor, min_lr / base_lr if base_lr > 0 else 0.0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, mult)
