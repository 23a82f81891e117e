"""Shared fixtures for the document tests: a few small generated pages (module-scoped, generated once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from restorekit.documents.ocr import tesseract_available

needs_tesseract = pytest.mark.skipif(
    not tesseract_available(["eng", "san"]),
    reason="Debian's tesseract-ocr, tesseract-ocr-eng and tesseract-ocr-san are not installed (make ocr)",
)


@pytest.fixture(scope="session")
def small_pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 384x256 pages (Latin, Devanagari, Latin, Devanagari), degraded with the document recipe."""
    from restorekit.documents.pages import PageStyle, generate_pages

    root = tmp_path_factory.mktemp("pages")
    generate_pages(root, 4, script="both", style=PageStyle(width=384, height=256), seed=5)
    return root
