"""Per-step learning-rate schedules: constant or cosine, each with a linear warm-up.

The multiplier is a picklable callable object, so ``LambdaLR.state_dict()``
stores its settings and a resumed run continues the same curve.
"""

from __future__ import annotations

import math
import time

import torch


class LRMultiplier:
    """``step -> lr / base_lr`` for a warm-up followed by a constant or cosine phase.

    Warm-up: linear from ``warmup_start_factor`` to 1 over ``warmup_steps``.
    Cosine: from 1 down to ``min_factor`` at ``total_steps`` (held after).
    ``cosine_time``: the same curve over ``seconds`` of wall-clock time from the first call.
    """

    def __init__(
        self,
        name: str,
        total_steps: int,
        warmup_steps: int = 0,
        warmup_start_factor: float = 0.01,
        min_factor: float = 0.0,
        seconds: float | None = None,
    ) -> None:
        if name not in ("constant", "cosine", "cosine_time"):
            raise ValueError(f"unknown schedule {name!r}")
        self.name = name
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, int(warmup_steps))
        self.warmup_start_factor = float(warmup_start_factor)
        self.min_factor = float(min_factor)
        self.seconds = float(seconds) if seconds else None
        self.t0: float | None = None

    def __call__(self, step: int) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            t = step / self.warmup_steps
            return self.warmup_start_factor + (1.0 - self.warmup_start_factor) * t
        if self.name == "constant":
            return 1.0
        if self.name == "cosine_time":
            now = time.time()
            if self.t0 is None:
                self.t0 = now
            t = min(1.0, (now - self.t0) / max(self.seconds or 1.0, 1e-6))
            return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
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
    seconds: float | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepping once per optimizer step (``min_lr`` is absolute; ``seconds`` for cosine_time)."""
    mult = LRMultiplier(name, total_steps, warmup_steps, warmup_start_factor, min_lr / base_lr if base_lr > 0 else 0.0, seconds)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, mult)
