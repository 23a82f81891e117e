"""restorekit: train, distill, evaluate, export and serve image-restoration models.

Top-level names are imported lazily so that ``import restorekit`` (and the
CLI's ``--help``) stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "create_model": ("restorekit.models.registry", "create_model"),
    "list_models": ("restorekit.models.registry", "list_models"),
    "load_model": ("restorekit.models.loading", "load_model"),
    "save_package": ("restorekit.models.package", "save_package"),
    "read_image": ("restorekit.io.image", "read_image"),
    "write_image": ("restorekit.io.image", "write_image"),
    "restore_image": ("restorekit.inference", "restore_image"),
    "load_restorer": ("restorekit.inference", "load_restorer"),
    "Restorer": ("restorekit.inference", "Restorer"),
    "RestoreOptions": ("restorekit.inference", "RestoreOptions"),
    "resolve_device": ("restorekit.device", "resolve_device"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'restorekit' has no attribute {name!r}")
