"""Config section for losses: a training config's ``loss`` is a list of :class:`LossTerm`.

Example (YAML)::

    loss:
      - {name: ms_ssim, weight: 0.84}
      - {name: charbonnier, weight: 0.16, args: {eps: 1.0e-3}}
      - {name: perceptual, weight: 0.1, args: {layers: [relu2_2]}, target: teacher}
"""

from __future__ import annotations

from typing import Any, Literal

import math

from pydantic import Field, field_validator

from restorekit.config.base import StrictModel


class LossTerm(StrictModel):
    """One weighted loss term.

    name: a registered loss (see ``restorekit.losses.available_losses()``).
    weight: multiplier of the term in the total (finite, >= 0; a negative weight would reward the error).
    args: keyword arguments of the loss (e.g. ``{eps: 1e-3}`` for charbonnier).
    target: compare the prediction with the ground truth ("target") or with the teacher output ("teacher",
        read from the batch's ``teacher`` tensor).
    """

    name: str
    weight: float = Field(1.0, ge=0.0)
    args: dict[str, Any] = {}
    target: Literal["target", "teacher"] = "target"

    @field_validator("weight")
    @classmethod
    def _finite_weight(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number >= 0")
        return value

    @field_validator("name")
    @classmethod
    def _known_name(cls, value: str) -> str:
        from restorekit.losses.registry import LOSSES

        if value not in LOSSES:
            raise ValueError(f"unknown loss {value!r}; known: {', '.join(sorted(LOSSES))}")
        return value
