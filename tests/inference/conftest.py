"""Fixtures of the inference tests: tiny deterministic models (see _models.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def load_test_models():
    """Import tests/inference/_models.py by path (tests run with --import-mode=importlib)."""
    path = Path(__file__).with_name("_models.py")
    spec = importlib.util.spec_from_file_location("restorekit_test_inference_models", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def tm():
    """The test-model module: ``tm.ShallowConv()``, ``tm.signal_unet()``, ``tm.tiny_nafnet()``."""
    return load_test_models()
