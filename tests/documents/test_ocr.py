import json
import shutil

import numpy as np
import pytest

from restorekit.cli.main import main
from restorekit.documents import ocr
from restorekit.errors import ConfigError
from restorekit.io import read_image

from .conftest import needs_tesseract


def test_error_rates():
    assert ocr.cer("abcd", "abxd") == pytest.approx(0.25)
    assert ocr.cer("ab  cd\n", "ab cd") == 0.0  # white space is normalised
    assert ocr.cer("abc", "") == 1.0
    assert ocr.cer("", "") == 0.0
    assert ocr.wer("the cat sat", "the bat sat down") == pytest.approx(2 / 3)
    assert ocr.cer("क्षा", "क्षा") == 0.0
    assert ocr.cer("\u0915\u093e", "\u0915") == pytest.approx(0.5)  # a lost vowel sign is one error of two


def test_parse_langs():
    assert ocr.parse_langs("eng, san") == ["eng", "san"]
    with pytest.raises(ConfigError, match="unknown language"):
        ocr.parse_langs("eng,klingon")
    with pytest.raises(ConfigError, match="one language per script"):
        ocr.parse_langs("san,hin")


def test_missing_tesseract_names_the_package(monkeypatch):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(ocr.TesseractMissing, match="tesseract-ocr"):
        ocr.check_tesseract(["eng"])
    assert not ocr.tesseract_available(["eng"])


@needs_tesseract
def test_missing_language_names_the_package():
    with pytest.raises(ocr.TesseractMissing, match="tesseract-ocr-hin"):
        ocr.check_tesseract(["eng", "hin"])


@needs_tesseract
def test_tesseract_reads_clean_pages_and_struggles_with_degraded_ones(small_pages):
    ev = ocr.OcrEvaluator(["eng", "san"])
    for name in ("page_0000", "page_0001", "page_0002", "page_0003"):
        ref = (small_pages / "clean" / f"{name}.txt").read_text(encoding="utf-8")
        ev.add(name, ref, {"clean": read_image(small_pages / "clean" / f"{name}.png"),
                           "input": read_image(small_pages / "degraded" / f"{name}.png")})
    s = ev.summary()
    assert set(s) == {"eng", "san"} and s["eng"]["n_pages"] == s["san"]["n_pages"] == 2
    assert s["eng"]["clean_cer"] <= 0.05
    assert s["san"]["clean_cer"] <= 0.12
    for lang in ("eng", "san"):
        assert s[lang]["input_cer"] > s[lang]["clean_cer"] + 0.05
        assert s[lang]["input_wer"] >= s[lang]["input_cer"]
    md = ev.markdown()
    assert "| eng | 2 |" in md and "```diff" in md


@needs_tesseract
def test_eval_cli_with_ocr_on_existing_outputs(small_pages, tmp_path):
    # "restored" = the clean pages for 0000/0001 and the degraded ones for 0002/0003
    pred = tmp_path / "pred"
    pred.mkdir()
    for name in ("page_0000", "page_0001"):
        shutil.copy(small_pages / "clean" / f"{name}.png", pred / f"{name}.png")
    for name in ("page_0002", "page_0003"):
        shutil.copy(small_pages / "degraded" / f"{name}.png", pred / f"{name}.png")
    report = tmp_path / "ev" / "report.json"
    rc = main(["eval", "--pred", str(pred), "--target", str(small_pages / "clean"), "--input",
               str(small_pages / "degraded"), "--report", str(report), "--ocr", "eng,san", "--baselines", "none"])
    assert rc == 0
    res = json.loads(report.read_text())
    pages = {p["name"]: p for p in res["ocr_pages"]}
    for name in ("page_0000", "page_0001"):
        assert pages[name]["output"]["cer"] == pytest.approx(pages[name]["clean"]["cer"])
    for name in ("page_0002", "page_0003"):
        assert pages[name]["output"]["cer"] == pytest.approx(pages[name]["input"]["cer"])
    assert set(res["ocr"]) == {"eng", "san"}
    assert res["methods"]["pred"]["mean"]["psnr"] > res["methods"]["input"]["mean"]["psnr"]
    md = (tmp_path / "ev" / "report.md").read_text()
    assert "## OCR (Tesseract)" in md and "Worst page" in md


@needs_tesseract
def test_eval_cli_with_ocr_runs_a_model_and_needs_ground_truth(small_pages, tmp_path, capsys):
    import torch

    from restorekit.models import create_model
    from restorekit.models.package import save_package

    model = create_model("nafnet", width=8, enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1])
    with torch.no_grad():  # NAFNet adds its input: a zero ending makes it the identity
        model.ending.weight.zero_()
        model.ending.bias.zero_()
    pkg = save_package(model, tmp_path / "id.safetensors")
    report = tmp_path / "m" / "report.json"
    rc = main(["eval", "--model", str(pkg), "--data", str(small_pages), "--report", str(report), "--ocr", "eng,san",
               "--limit", "2", "--no-images"])
    assert rc == 0
    res = json.loads(report.read_text())
    for p in res["ocr_pages"]:
        assert p["output"]["cer"] == pytest.approx(p["input"]["cer"], abs=0.02)
    assert "OCR eng" in capsys.readouterr().out
    # without the .txt files: a clear error naming the page
    bare = tmp_path / "bare"
    shutil.copytree(small_pages, bare)
    for t in (bare / "clean").glob("*.txt"):
        t.unlink()
    rc = main(["eval", "--model", str(pkg), "--data", str(bare), "--report", str(tmp_path / "b.json"), "--ocr", "eng"])
    assert rc == 2
    assert "no ground-truth text for page" in capsys.readouterr().err
