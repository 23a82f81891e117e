"""The epoch-by-epoch plan of a run: patch size, batch size, accumulation and optimizer steps.

Progressive training (Restormer) changes the patch and batch size between
stages; gradient accumulation keeps the effective batch size. Knowing the
number of optimizer steps of every epoch up front gives the cosine schedule its
length and lets a resumed run pick the same stage for the same epoch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from restorekit.errors import ConfigError


@dataclass(frozen=True)
class EpochPlan:
    """What happens in one epoch (per process)."""

    epoch: int
    patch_size: int
    batch_size: int
    accumulate: int
    batches: int
    steps: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Stage:
    at: int
    patch_size: int
    batch_size: int


def accumulation_for(batch_size: int, world_size: int, effective: int | None) -> int:
    """Micro-batches per optimizer step so that ``batch * world * accumulate ~= effective`` (>= 1)."""
    if effective is None:
        return 1
    per_step = batch_size * world_size
    return max(1, int(round(effective / per_step)))


def batches_per_epoch(n_samples: int, batch_size: int, world_size: int, drop_last: bool, limit: int | float | None) -> int:
    """Training batches each process sees in one epoch (DistributedSampler pads to equal shares)."""
    per_rank = math.ceil(n_samples / world_size)
    n = per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)
    if isinstance(limit, float) and limit <= 1.0:
        n = int(n * limit)
    elif limit is not None:
        n = min(n, int(limit))
    return n


def drop_last_for(n_samples: int, batch_size: int, world_size: int) -> bool:
    """Drop the ragged last batch only when at least one full batch remains."""
    return math.ceil(n_samples / world_size) >= batch_size


def make_plan(
    *,
    n_samples: int,
    epochs: int,
    batch_size: int,
    patch_size: int | None,
    world_size: int = 1,
    stages: list[Stage] | None = None,
    unit: str = "epoch",
    effective_batch_size: int | None = None,
    limit_batches: int | float | None = None,
    max_steps: int = -1,
) -> list[EpochPlan]:
    """Plan every epoch; stops listing epochs once ``max_steps`` optimizer steps are reached."""
    if n_samples <= 0:
        raise ConfigError("data: the training set is empty")
    stages = sorted(stages or [], key=lambda s: s.at)
    plan: list[EpochPlan] = []
    steps_done = 0
    for epoch in range(epochs):
        position = epoch if unit == "epoch" else steps_done
        patch, batch = patch_size, batch_size
        for s in stages:
            if s.at <= position:
                patch, batch = s.patch_size, s.batch_size
        drop = drop_last_for(n_samples, batch, world_size)
        nb = batches_per_epoch(n_samples, batch, world_size, drop, limit_batches)
        if nb <= 0:
            raise ConfigError(f"epoch {epoch}: no training batches (samples={n_samples}, batch={batch}, world={world_size})")
        acc = accumulation_for(batch, world_size, effective_batch_size)
        steps = math.ceil(nb / acc)
        if max_steps >= 0 and steps_done + steps >= max_steps:
            steps = max(0, max_steps - steps_done)
            plan.append(EpochPlan(epoch, patch or 0, batch, acc, nb, steps))
            break
        plan.append(EpochPlan(epoch, patch or 0, batch, acc, nb, steps))
        steps_done += steps
    return plan


def total_steps(plan: list[EpochPlan]) -> int:
    """Optimizer steps of the whole plan."""
    return sum(p.steps for p in plan)


def accumulation_schedule(plan: list[EpochPlan]) -> dict[int, int]:
    """``{epoch: accumulate}`` at every change (for Lightning's GradientAccumulationScheduler)."""
    out: dict[int, int] = {}
    last = None
    for p in plan:
        if p.accumulate != last:
            out[p.epoch] = p.accumulate
            last = p.accumulate
    return out or {0: 1}
