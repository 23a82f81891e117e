"""Fixtures of the training tests: a tiny but real run config (scikit-image photos, small U-Net)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "model": {"name": "deblur_unet", "args": {"base_ch": 8}},
    "data": {
        "kind": "skimage",
        "names": ["astronaut", "coffee", "chelsea", "rocket"],
        "val_names": ["motorcycle_left"],
        "patch_size": 32,
        "batch_size": 2,
        "val_patch": 64,
        "degrade": "demo-deblur",
    },
    "loss": [{"name": "charbonnier", "weight": 1.0}],
    "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4},
    "schedule": {"name": "cosine", "min_lr": 1e-5},
    "train": {"epochs": 2, "n_samples": 1, "checkpoint": {"every_n_epochs": 1}},
    # one thread: far faster than oversubscribed OpenMP threads on a busy shared CPU
    "trainer": {"device": "cpu", "progress_bar": False, "num_threads": 1},
    "tracking": {"enabled": True, "experiment": "tests"},
}


@pytest.fixture
def tiny_config() -> dict[str, Any]:
    """A fresh copy of the tiny run config as a plain dict (edit, then parse_run_config)."""
    return copy.deepcopy(TINY)
