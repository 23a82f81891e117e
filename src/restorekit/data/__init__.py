"""Datasets, crops/augmentation, splits and packed storage for restoration training.

Entry points (imported lazily, so ``restorekit.data.config`` stays light):

* :func:`build_datasets` ``(cfg, *, seed, run_dir=None) -> (train_ds, val_ds)``
* :func:`collate` - stacks tensors, keeps lists for names / params dicts
* :class:`RestoreDataset`, :func:`make_loader`
* :mod:`restorekit.data.transforms` - crop-before-float, synchronized flips/rot90, Bayer-safe crops
* :mod:`restorekit.data.config` - the ``data:`` config union (``DataConfig``)
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "build_datasets": ("restorekit.data.build", "build_datasets"),
    "split_items": ("restorekit.data.build", "split_items"),
    "collate": ("restorekit.data.dataset", "collate"),
    "make_loader": ("restorekit.data.dataset", "make_loader"),
    "RestoreDataset": ("restorekit.data.dataset", "RestoreDataset"),
    "DataConfig": ("restorekit.data.config", "DataConfig"),
    "parse_data_config": ("restorekit.data.config", "parse_data_config"),
}

__all__ = sorted(_LAZY) + ["transforms", "config"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    if name in ("transforms", "config", "storage", "sources", "pack", "preview"):
        import importlib

        return importlib.import_module(f"restorekit.data.{name}")
    raise AttributeError(f"module 'restorekit.data' has no attribute {name!r}")
