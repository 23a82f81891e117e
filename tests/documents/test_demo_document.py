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


def test_demo_recipe_is_the_measured_winner():
    """The demo trains the recipe that met the OCR goal in the committed experiment log (tools/document_recipes.py),
    and GOAL_STEPS (the demo's too-few-steps warning) is the fewest steps with which it met it."""
    from pathlib import Path

    from restorekit.documents.demo import CER_RATIO_GOAL, CLEAN_CER_MAX, GOAL_STEPS

    log = json.loads(Path("docs/results/document-recipes.json").read_text(encoding="utf-8"))
    demo = config_to_dict(document_demo_config())
    same = [r for r in log["runs"] if config_to_dict(document_demo_config(r["overrides"])) == demo]
    met = [r for r in same if r["demo_goal_met"]]
    assert met, "no run of the demo recipe in docs/results/document-recipes.json met the goal"
    assert min(r["steps"] for r in met) == GOAL_STEPS
    for r in met:
        for lang in ("eng", "san"):
            s = r["demo_val"][lang]
            assert s["output_cer"] <= CER_RATIO_GOAL * s["input_cer"] and s["clean_cer"] <= CLEAN_CER_MAX
            assert r["other_font"][lang]["output_cer"] < r["other_font"][lang]["input_cer"]
    # the recipe it replaced did not meet it with more steps
    assert any(not r["demo_goal_met"] and r["steps"] >= GOAL_STEPS for r in log["runs"] if r not in same)


def test_budget_limits(tmp_path):
    with pytest.raises(ConfigError, match="at most 10"):
        run_document_demo(11, tmp_path / "x")
    with pytest.raises(ConfigError, match="positive"):
        run_document_demo(0, tmp_path / "x")


@pytest.mark.parametrize("precision,dtype", [("bf16-mixed", "torch.bfloat16"), ("32-true", "torch.float32")])
def test_calibration_times_the_precision_training_uses(small_pages, tmp_path, monkeypatch, precision, dtype):
    """The demo plans its steps from the calibration: it must time the network in the precision of training
    (bf16 autocast is about twice as fast on AMX CPUs), with the loss in fp32 as in training."""
    import torch

    import restorekit.training.engine as engine
    from restorekit.data import build_datasets
    from restorekit.documents.demo import calibrate

    seen: list[str] = []
    build = engine.build_model

    def spy(cfg):
        model = build(cfg)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(lambda m, i, o: seen.append(str(o.dtype)))
        return model

    monkeypatch.setattr(engine, "build_model", spy)
    cfg = document_demo_config([f"data.dir={small_pages / 'clean'}", "data.val_dir=null", "data.patch_size=64",
                                "data.batch_size=2", "model.args={base_filters: 8, depth: 2, global_residual: true}",
                                f"trainer.precision={precision}", "trainer.num_threads=1"])
    train_ds, _ = build_datasets(cfg.data, seed=0, run_dir=tmp_path)
    cal = calibrate(cfg, train_ds, torch.device("cpu"), steps=2)
    assert seen and set(seen) == {dtype}
    assert 0 < cal["step_s"] < 30 and cal["threads"] == 1


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
