"""`restorekit demo`: a short, small-settings run must write its report and beat its degraded input."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_short_demo_writes_report_and_beats_input(tmp_path):
    from restorekit.cli.main import main

    out = tmp_path / "demo"
    rc = main([
        "demo", "--minutes", "1", "--out", str(out), "--no-progress", "--device", "cpu",
        # small settings so that a minute is enough on a busy 2-core machine: a narrower U-Net,
        # strong noise (the model gains once it has learnt to denoise), one held-out photo
        "--set", "model.args.base_ch=16",
        "--set", "data.patch_size=48",
        "--set", "data.val_names=[coffee]",
        "--set", "data.degrade=[{name: gaussian_blur, kernel_sizes: [5], sigma: [1.0, 1.0]}, "
                 "{name: gaussian_noise, p: 1.0, sigma: [0.15, 0.15]}]",
        "--set", "tracking.enabled=false",
    ])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    for side in ("input", "output"):
        assert 5.0 < report[side]["psnr"] < 60.0 and 0.0 < report[side]["ssim"] <= 1.0
    assert report["n_images"] == 1 and report["images"][0]["name"] == "coffee"
    assert report["gain_db"] == pytest.approx(report["output"]["psnr"] - report["input"]["psnr"])
    assert report["output"]["psnr"] > report["input"]["psnr"]
    assert report["steps"] > 0 and report["calibration"]["threads"] >= 1
    # scored by restorekit.evaluation next to the classical deblurring baselines
    assert report["protocol"] == "rgb"
    assert set(report["baselines"]) == {"wiener", "richardson_lucy", "unsharp"}
    best = report["best_baseline"]
    assert report["gain_over_best_baseline_db"] == pytest.approx(report["output"]["psnr"] - report["baselines"][best]["psnr"])
    ev = json.loads((out / "eval" / "report.json").read_text())
    assert ev["methods"]["output"]["mean"]["psnr"] == pytest.approx(report["output"]["psnr"])
    assert ev["methods"]["input"]["per_image"][0]["psnr"] == pytest.approx(report["images"][0]["input"]["psnr"])
    for name in ("model.safetensors", "report.md", "training_history.json", "training_curves.png", "comparisons/coffee.png"):
        assert (out / name).is_file(), name
    assert "gain" in (out / "report.md").read_text()
    # a second demo into the same folder replaces the first; a foreign folder is refused
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    assert main(["demo", "--minutes", "0.2", "--out", str(foreign), "--no-progress"]) == 2
    assert (foreign / "thesis.tex").read_text() == "keep me"


def test_demo_yaml_matches_builtin_recipe():
    from pathlib import Path

    from restorekit.config.base import load_yaml
    from restorekit.demo import DEMO_CONFIG, demo_config

    path = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    assert load_yaml(path) == DEMO_CONFIG
    cfg = demo_config()
    assert cfg.model.name == "deblur_unet" and cfg.model.args["base_ch"] == 32
    assert cfg.data.kind == "skimage" and set(cfg.data.val_names).isdisjoint(cfg.data.names)


def test_budget_fits_the_minutes():
    from restorekit.demo import plan_budget

    cal = {"step_s": 0.5, "val_s": 2.0, "val_s_per_mpx": 4.0}
    b = plan_budget(5.0, 15.0, cal, n_train_images=10, batch=4, full_val_mpx=0.5)
    assert b["epochs"] == 8
    spent = 15.0 + b["max_steps"] * cal["step_s"] + b["epochs"] * (cal["val_s"] + 1.0) + b["final_eval_budget_s"] + 10.0
    assert 280.0 <= spent <= 300.0
    assert b["steps_per_epoch"] * b["epochs"] >= b["max_steps"]
    tiny = plan_budget(0.5, 10.0, {"step_s": 2.0, "val_s": 1.0, "val_s_per_mpx": 2.0}, 5, 4, 0.3)
    assert tiny["max_steps"] >= tiny["epochs"] >= 1
