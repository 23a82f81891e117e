"""x8 geometric self-ensemble: average the outputs for the 8 flips/rotations of the input.

Each transform is undone on the output before averaging, so the result is
aligned with the input. Applied per batch of tiles, so memory stays bounded.
"""

from __future__ import annotations

from typing import Callable

import torch


def _apply(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    if flip:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k, dims=(-2, -1)) if k else x


def _invert(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    if k:
        y = torch.rot90(y, -k, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if flip else y


TRANSFORMS = [(k, f) for f in (False, True) for k in range(4)]


def ensemble_forward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Mean over the 8 dihedral transforms of ``fn`` applied to ``x`` ``(B, C, h, w)`` -> ``(B, C, h, w)``."""
    acc: torch.Tensor | None = None
    for k, flip in TRANSFORMS:
        y = _invert(fn(_apply(x, k, flip).contiguous()), k, flip)
        acc = y.clone() if acc is None else acc.add_(y)
    assert acc is not None
    return acc.div_(len(TRANSFORMS))
