"""Fixtures of the export tests: reuse the tiny models of tests/inference/_models.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tm():
    path = Path(__file__).parents[1] / "inference" / "_models.py"
    spec = importlib.util.spec_from_file_location("restorekit_test_export_models", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod
