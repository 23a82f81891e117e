"""One set of restore options, validated once, used by every front end.

The CLI (``restorekit restore``, ``eval --model``, raw restore), the HTTP service,
the Streamlit app, the Azure handler and the demo all build a
:class:`RestoreOptions`; the same values are valid or invalid everywhere, and an
invalid one raises :class:`~restorekit.errors.ConfigError` naming the option
(``--overlap: must be smaller than --tile (256), got 300``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from restorekit.config.base import StrictModel
from restorekit.errors import ConfigError

BACKENDS = ("auto", "eager", "compile", "onnxruntime", "torchscript")
Backend = Literal["auto", "eager", "compile", "onnxruntime", "torchscript"]
Precision = Literal["auto", "fp32", "fp16", "bf16"]


class RestoreOptions(StrictModel):
    """How a :class:`~restorekit.inference.restorer.Restorer` runs a model.

    ``tile``: ``"auto"`` (largest tile that fits the memory budget), ``0`` (whole image)
    or a side in pixels. ``overlap``: a fraction of the tile (``0 <= overlap < 1``) or
    pixels (an integer ``>= 1``, smaller than an integer ``tile``). ``blend``: the
    window tiles are blended with. ``batch``: most tiles per forward pass.
    ``ensemble``: average the 8 flips/rotations (x8 self-ensemble). ``device``:
    ``auto``/``cpu``/``cuda[:N]``/``mps``. ``backend``: runtime for ``nn.Module`` models
    (exported files always run in their own). ``precision``: ``auto`` = fp16 on CUDA,
    fp32 elsewhere; ``bf16`` also on CPUs (fast where they have AMX-BF16; runs eager PyTorch). ``tlc``: the test-time local converter for models that support it
    (``auto``: when tiles exceed 1.5x the training size). ``memory_budget_mb``: overrides
    the automatic budget of ``tile="auto"``. ``strength``: blend of the result with
    the input (1 = the model's output). ``clip``: clamp the output to [0, 1].
    """

    tile: int | Literal["auto"] = "auto"
    overlap: float = 32
    blend: Literal["linear", "cosine"] = "linear"
    batch: int = Field(4, ge=1, le=1024)
    ensemble: bool = False
    device: str = "auto"
    backend: Backend = "auto"
    precision: Precision = "auto"
    tlc: Literal["auto", "on", "off"] = "auto"
    memory_budget_mb: int | None = Field(None, ge=1)
    strength: float = Field(1.0, ge=0.0, le=1.0)
    clip: bool = True

    @field_validator("tile", mode="before")
    @classmethod
    def _tile(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        if isinstance(v, bool):
            raise ValueError("must be 'auto', 0 (whole image) or a number of pixels")
        if isinstance(v, float):
            if not math.isfinite(v) or v != int(v):
                raise ValueError(f"must be 'auto', 0 (whole image) or a whole number of pixels, got {v}")
            v = int(v)
        if isinstance(v, str):
            try:
                v = int(v.strip())
            except ValueError:
                raise ValueError(f"must be 'auto', 0 (whole image) or a number of pixels, got {v!r}") from None
        if isinstance(v, int) and v < 0:
            raise ValueError(f"must be 'auto', 0 (whole image) or a positive number of pixels, got {v}")
        if isinstance(v, int) and 0 < v < 16:
            raise ValueError(f"tiles smaller than 16 pixels are not useful, got {v}")
        return v

    @field_validator("overlap", mode="before")
    @classmethod
    def _overlap(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("must be a fraction of the tile (0 <= overlap < 1) or a number of pixels")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"must be a fraction of the tile (0 <= overlap < 1) or a number of pixels, got {v!r}") from None
        if not math.isfinite(f) or f < 0:
            raise ValueError(f"must be a finite number >= 0, got {v!r}")
        if f >= 1 and f != int(f):
            raise ValueError(f"pixels must be a whole number (or give a fraction below 1), got {v!r}")
        return f

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        v = v.strip().lower()
        base, _, idx = v.partition(":")
        if base not in ("auto", "cpu", "cuda", "mps") or (idx and not idx.isdigit()) or (idx and base != "cuda"):
            raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps, got {v!r}")
        return v

    @model_validator(mode="after")
    def _overlap_vs_tile(self) -> "RestoreOptions":
        if isinstance(self.tile, int) and self.tile > 0 and self.overlap >= 1 and self.overlap >= self.tile:
            raise ValueError(f"--overlap ({int(self.overlap)} px) must be smaller than --tile ({self.tile})")
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def overlap_value(self) -> int | float:
        """The overlap as the tiler takes it: a float fraction below 1, else whole pixels."""
        return self.overlap if self.overlap < 1 else int(self.overlap)

    @classmethod
    def parse(cls, **values: Any) -> "RestoreOptions":
        """Validate ``values`` (``None`` means the default); errors name the options as CLI flags."""
        clean = {k: v for k, v in values.items() if v is not None}
        try:
            return cls(**clean)
        except ValidationError as exc:
            raise ConfigError(format_option_errors(exc)) from None

    def updated(self, **values: Any) -> "RestoreOptions":
        """A validated copy with ``values`` changed (``None`` keeps the current value)."""
        return RestoreOptions.parse(**{**self.model_dump(), **{k: v for k, v in values.items() if v is not None}})


def format_option_errors(exc: ValidationError) -> str:
    """One line per bad option, named as its command-line flag (``--memory-budget-mb``)."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if not str(p).startswith(("int", "literal", "function"))]
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            lines.append(f"unknown restore option '{'.'.join(loc)}'")
        elif loc:
            lines.append(f"--{loc[0].replace('_', '-')}: {msg}")
        else:
            lines.append(msg)
    return "; ".join(dict.fromkeys(lines))
