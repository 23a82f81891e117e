import json

import pytest

from restorekit.config.base import load_yaml
from restorekit.documents.demo import DOCUMENT_DEMO_CONFIG, document_demo_config, run_document_demo
from restorekit.documents.pages import PageStyle
from restorekit.errors import ConfigError
from restorekit.training.config import config_to_dict

from .conftest import needs_tesseract


def test_shipped_config_matches_the_builtin_recipe():
    a = config_to_dict(document_demo_config())
    b = config_to_dict(document_demo_config(path="configs/demo-document.yaml"))
    assert a == b
    assert DOCUMENT_DEMO_CONFIG["data"]["augment"] == load_yaml("configs/demo-document.yaml")["data"]["augment"]


def test_budget_limits(tmp_path):
    with pytest.raises(ConfigError, match="at most 10"):
        run_document_demo(11, tmp_path / "x")
    with pytest.raises(ConfigError, match="positive"):
        run_document_demo(0, tmp_path / "x")


@needs_tesseract
@pytest.mark.slow
def test_document_demo_end_to_end(tmp_path):
    out = tmp_path / "demo-document"
    minutes = 1.6
    r = run_document_demo(minutes, out, progress=False, style=PageStyle(width=320, height=224, font_size=(18, 24)),
                          n_train=6, n_val=1, n_other=1,
                          overrides=["model.args={base_filters: 8, depth: 2, global_residual: true}",
                                     "tracking.enabled=false", "trainer.num_threads=1"])
    for f in ("model.safetensors", "report.json", "report.md", "eval/report.md", "eval-other-font/report.json"):
        assert (out / f).is_file(), f
    saved = json.loads((out / "report.json").read_text())
    assert saved["ocr"] == r["ocr"]
    for lang in ("eng", "san"):
        s = r["ocr"][lang]
        assert s["n_pages"] == 1
        assert 0 <= s["clean_cer"] <= s["input_cer"]
        assert s["output_cer"] >= 0 and "output_wer" in s
        assert set(r["goals"][lang]) == {"output_cer_at_most_half_input", "clean_cer_at_most_0.1", "other_font_reads_better"}
    assert {p["lang"] for p in r["per_page"]} == {"eng", "san"} == {p["lang"] for p in r["other_font"]["per_page"]}
    assert r["input"]["psnr"] < 100 and r["output"]["ssim"] > 0
    assert r["steps"] > 0
    md = (out / "report.md").read_text()
    assert "eng CER" in md and "degraded | restored | clean" in md
    assert all((out / c).is_file() for c in r["crops"]) and len(r["crops"]) == 2
    # the time budget holds (evaluation and OCR included)
    assert r["wall_seconds"] <= minutes * 60 * 1.3
