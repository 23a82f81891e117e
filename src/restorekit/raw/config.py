"""Config section of raw datasets (``data.kind: raw``). Owned by the raw issue; extended there."""

from __future__ import annotations

from typing import Literal

from restorekit.config.base import StrictModel


class RawDataConfig(StrictModel):
    """A RawNIND-style folder of raw files (or the packed JPEG proxy)."""

    kind: Literal["raw"] = "raw"
    root: str
    batch_size: int = 2
    num_workers: int = 0
    patch_size: int = 256
