"""The Streamlit app's OCR view: Tesseract's text of the original and restored page side by side."""

from __future__ import annotations

import pytest

from restorekit.documents.ocr import cer

from .conftest import needs_tesseract


@pytest.fixture
def identity_package(tmp_path):
    import torch

    from restorekit.models import create_model
    from restorekit.models.package import save_package

    model = create_model("nafnet", width=8, enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1])
    with torch.no_grad():
        model.ending.weight.zero_()
        model.ending.bias.zero_()
    return save_package(model, tmp_path / "identity.safetensors")


@needs_tesseract
def test_app_shows_ocr_of_input_and_output(monkeypatch, identity_package, small_pages):
    from streamlit.testing.v1 import AppTest

    import restorekit.serve.app as app_module

    monkeypatch.setenv("RESTOREKIT_UI_MODELS", str(identity_package))
    monkeypatch.delenv("RESTOREKIT_UI_MODELS_DIR", raising=False)
    monkeypatch.setenv("RESTOREKIT_UI_DEVICE", "cpu")
    at = AppTest.from_file(app_module.__file__, default_timeout=180)
    at.run()
    page = (small_pages / "clean" / "page_0000.png").read_bytes()
    at.file_uploader(key="uploads").set_value(("page.png", page, "image/png"))
    at.run()
    at.button(key="restore").click().run()
    assert not at.exception
    key = next(iter(at.session_state["results"]))[0]
    at.button(key=f"ocr-{key}").click().run()
    assert not at.exception
    original = at.text_area(key=f"ocr-in-{key}-eng").value
    restored = at.text_area(key=f"ocr-out-{key}-eng").value
    truth = (small_pages / "clean" / "page_0000.txt").read_text(encoding="utf-8")
    # an identity model on a clean page: both read the ground truth
    assert cer(truth, original) <= 0.05 and cer(truth, restored) <= 0.05


def test_app_hides_ocr_without_tesseract(monkeypatch):
    import pytesseract

    from restorekit.documents.ocr import available_langs

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    assert available_langs() == []
