"""`restorekit demo`: a short, small-settings run must write its report and beat its degraded input."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_short_demo_writes_report_and_beats_input(tmp_path):
    from restorekit.cli.main import main

    out = tmp_path / "demo"
    rc = main([
        "demo", "--minutes", "1.5", "--out", str(out), "--no-progress", "--device", "cpu",
        # small settings so that a minute and a half is enough on a busy 2-core machine: a narrow
        # NAFNet, strong noise (the model gains once it has learnt to denoise), two held-out photos
        "--set", "model.args.width=8",
        "--set", "data.patch_size=48",
        "--set", "data.names=[astronaut, cat, motorcycle_left, coffee]",
        "--set", "data.val_names=[coffee, chelsea]",
        "--set", "data.degrade=[{name: gaussian_blur, kernel_sizes: [5], sigma: [1.0, 1.0]}, "
                 "{name: gaussian_noise, p: 1.0, sigma: [0.15, 0.15]}]",
        "--set", "tracking.enabled=false",
    ])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    for side in ("input", "output"):
        assert 5.0 < report[side]["psnr"] < 60.0 and 0.0 < report[side]["ssim"] <= 1.0
    # two distinct photos, two degraded draws each; `cat` (= chelsea) was kept out of training by content
    assert report["n_images"] == 2 and report["n_samples"] == 4
    assert [r["name"] for r in report["images"]] == ["coffee", "chelsea"]
    assert report["train_photos"] == 2 and {d["name"] for d in report["split"]["dedup"]["dropped"]} == {"cat"}
    assert report["gain_db"] == pytest.approx(report["output"]["psnr"] - report["input"]["psnr"])
    assert report["output"]["psnr"] > report["input"]["psnr"]
    assert report["steps"] > 0 and report["calibration"]["threads"] >= 1
    # scored by restorekit.evaluation next to every classical baseline that fits blur + noise
    assert report["protocol"] == "rgb"
    assert set(report["baselines"]) == {"nlm", "bilateral", "wiener", "richardson_lucy", "unsharp", "nlm_wiener"}
    best = report["best_baseline"]
    assert report["gain_over_best_baseline_db"] == pytest.approx(report["output"]["psnr"] - report["baselines"][best]["psnr"])
    lo, hi = report["gain_over_best_baseline_ci95_db"]
    assert lo <= report["gain_over_best_baseline_db"] <= hi
    ev = json.loads((out / "eval" / "report.json").read_text())
    assert ev["methods"]["output"]["mean"]["psnr"] == pytest.approx(report["output"]["psnr"])
    assert ev["methods"]["nlm"]["per_image"][0]["psnr"] == pytest.approx(report["samples"][0]["nlm"]["psnr"])
    for name in ("model.safetensors", "report.md", "training_history.json", "training_curves.png",
                 "comparisons/coffee_0.png", "comparisons/chelsea_1.png", "split.json"):
        assert (out / name).is_file(), name
    assert "Per photo" in (out / "report.md").read_text()
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
    assert cfg.model.name == "nafnet" and cfg.model.args["width"] == 16
    assert cfg.data.kind == "skimage" and set(cfg.data.val_names).isdisjoint(cfg.data.names)
    assert len(cfg.data.val_names) >= 6


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


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n## ", start + len(heading))
    return text[start: nxt if nxt > 0 else len(text)]


def demo_figures(report: dict) -> list[str]:
    """The strings README and docs/training.md must quote from the committed demo report."""
    best = report["best_baseline"]
    lo, hi = report["gain_over_best_baseline_ci95_db"]
    return [
        f"{report['n_images']} held-out photos",
        f"{report['n_samples']} degraded samples",
        f"{report['input']['psnr']:.2f} dB",
        f"{report['output']['psnr']:.2f} dB",
        f"{report['output']['ssim']:.3f}",
        f"`{best}`",
        f"{report['baselines'][best]['psnr']:.2f} dB",
        f"{report['baselines'][best]['ssim']:.3f}",
        f"{report['gain_over_best_baseline_db']:+.2f} dB",
        f"{lo:+.2f} .. {hi:+.2f} dB",
        f"{report['steps']} steps",
    ]


def test_docs_quote_the_committed_demo_report():
    """README's and docs/training.md's demo figures are copied from docs/results/demo-report.json."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    report = json.loads((root / "docs" / "results" / "demo-report.json").read_text())
    assert report["n_images"] >= 6 and report["n_samples"] >= 12
    assert {"nlm", "bilateral", "wiener", "richardson_lucy", "unsharp", "nlm_wiener"} <= set(report["baselines"])
    assert len(report["images"]) == report["n_images"] and len(report["samples"]) == report["n_samples"]
    for doc, heading in (("README.md", "## The demo"), ("docs/training.md", "## The demo")):
        section = _section((root / doc).read_text(), heading)
        missing = [s for s in demo_figures(report) if s not in section]
        assert not missing, f"{doc} does not quote {missing} from docs/results/demo-report.json"


def test_identity_start_makes_the_demo_model_return_its_input():
    import torch

    from restorekit.demo import demo_config, identity_start
    from restorekit.training.engine import build_model

    torch.manual_seed(0)
    model = build_model(demo_config()).eval()
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        assert float((model(x) - x).abs().mean()) > 1e-3  # NAFNet's default initialisation is not the identity
        assert identity_start(model)
        assert torch.equal(model(x), x)
    # the zeroed layer still learns: its gradient is not zero
    model.train()
    loss = (model(x) - torch.rand_like(x)).abs().mean()
    loss.backward()
    assert float(model.ending.weight.grad.abs().sum()) > 0
    assert identity_start(torch.nn.Conv2d(3, 3, 3)) is False


def test_demo_output_folder_is_replaced_only_when_a_demo_wrote_it(tmp_path):
    """Both demos share prepare_out: an earlier demo's folder is replaced, a user's folder is refused untouched."""
    from restorekit.demo import prepare_out
    from restorekit.documents import demo as document_demo
    from restorekit.errors import ConfigError

    assert document_demo.prepare_out is prepare_out
    out = tmp_path / "run"
    prepare_out(out)
    (out / "old.txt").write_text("from the last demo")
    prepare_out(out)
    assert not (out / "old.txt").exists() and out.is_dir()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    with pytest.raises(ConfigError, match="--out"):
        prepare_out(mine)
    assert (mine / "thesis.tex").read_text() == "keep me"
