"""``load_model``: one entry point for every weight file a user may have.

This first version loads restorekit packages; foreign formats (Lightning,
BasicSR ``params``/``params_ema``, seed checkpoints, bare state dicts) are
recognised by the model-zoo issue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn as nn

from restorekit.errors import CheckpointError
from restorekit.models.package import is_package, load_package


def load_model(path: str | Path, arch: str | None = None, map_location: str = "cpu", **kwargs: Any) -> nn.Module:
    """Load any supported weight file at ``path`` and return the model in eval mode."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"model file '{p}' does not exist")
    if is_package(p):
        return load_package(p, map_location=map_location)
    raise CheckpointError(f"'{p}': not a restorekit package (foreign checkpoint formats are not supported yet)")
