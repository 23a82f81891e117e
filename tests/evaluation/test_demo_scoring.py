"""The demo's held-out scoring: branch coverage, the combined baseline, the gain interval, the report rows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch.nn as nn

from restorekit.evaluation import EvalSample
from restorekit.evaluation.baselines import BASELINES, resolve_baselines
from restorekit.metrics.image import measure
from restorekit.metrics.protocol import resolve_protocol


def _blur_noise(img: np.ndarray, sigma: float, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(cv2.GaussianBlur(img, (0, 0), sigma) + noise * rng.standard_normal(img.shape).astype(np.float32), 0, 1)


def test_denoise_then_deconvolve_beats_each_step_alone(photo):
    """Measured on 256 px crops (blur 2.0, noise 0.04): nlm_wiener 25.8-30.0 dB, nlm 24.8-27.5, wiener 25.2-28.1."""
    proto = resolve_protocol("rgb")
    for name in ("astronaut", "coffee", "camera"):
        img = photo(name, 256)
        x = _blur_noise(img, 2.0, 0.04)
        score = {b: measure(BASELINES[b](x), img, proto, metrics=("psnr",))["psnr"] for b in ("nlm", "wiener", "nlm_wiener")}
        assert score["nlm_wiener"] > max(score["nlm"], score["wiener"]) + 0.4, (name, score)
    assert resolve_baselines("blur+noise") == ["nlm", "bilateral", "wiener", "richardson_lucy", "unsharp", "nlm_wiener"]


def test_degradation_branches_cover_every_blur_and_jpeg_on_off():
    from restorekit.demo import DEMO_CONFIG, degradation_branches

    branches = degradation_branches(DEMO_CONFIG["data"]["degrade"])
    labels = [b[0] for b in branches]
    blur_kinds = {o["name"] + (":" + o["kind"] if o.get("kind") else "") for o in DEMO_CONFIG["data"]["degrade"][0]["ops"]}
    assert {lab["blur"] for lab in labels} == blur_kinds
    assert {lab["jpeg"] for lab in labels} == {"on", "off"}
    assert len(branches) == len(blur_kinds) * 2
    # every branch fixes its choices: probabilities 1, one blur op, JPEG only where "on"
    for lab, ops in branches:
        assert all(o.get("p", 1.0) == 1.0 for o in ops)
        assert sum("blur" in o["name"] for o in ops) == 1
        assert any(o["name"] == "jpeg" for o in ops) == (lab["jpeg"] == "on")


def test_heldout_set_is_large_seeded_full_size_and_covers_every_branch():
    from restorekit.demo import degradation_branches, demo_config, heldout_samples

    cfg = demo_config()
    samples = heldout_samples(cfg.data, cfg.seed)
    photos = {s.conditions["photo"] for s in samples}
    assert len(photos) >= 6 and len(samples) >= 12
    assert photos.isdisjoint(set(cfg.data.names) - set(cfg.data.val_names))
    assert {s.conditions["branch"] for s in samples} == {b[0]["branch"] for b in degradation_branches(cfg.data.degrade)}
    from restorekit.data.sources import SkimageRef

    for s in samples:
        assert s.target.shape[:2] == SkimageRef(s.conditions["photo"]).load().shape[:2]  # full size
        assert s.input.shape == s.target.shape and s.input.dtype == np.float32
    again = heldout_samples(cfg.data, cfg.seed)
    assert all(np.array_equal(a.input, b.input) for a, b in zip(samples, again))
    other = heldout_samples(cfg.data, cfg.seed, eval_seed=123)
    assert not np.array_equal(samples[0].input, other[0].input)
    assert [s.conditions["branch"] for s in other] == [s.conditions["branch"] for s in samples]


def test_photo_bootstrap_interval():
    from restorekit.demo import photo_bootstrap_ci

    rng = np.random.default_rng(0)
    photos = [f"p{i // 2}" for i in range(12)]
    gains = list(1.5 + rng.normal(0, 0.5, 12))
    lo, hi = photo_bootstrap_ci(gains, photos)
    assert lo < float(np.mean(gains)) < hi and 0.2 < hi - lo < 1.5
    # constant gains: a zero-width interval at that value; spread across photos widens it
    assert photo_bootstrap_ci([1.0] * 12, photos) == pytest.approx([1.0, 1.0])
    wide = photo_bootstrap_ci([0.0, 0.0, 3.0, 3.0] * 3, photos)
    assert wide[1] - wide[0] > 1.0


class _Smooth(nn.Module):
    """A fixed 3x3 box filter: a 'model' with a known, modest denoising effect."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, padding_mode="replicate", bias=False, groups=3)
        nn.init.constant_(self.conv.weight, 1.0 / 9.0)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.conv(x)


def test_evaluate_heldout_scores_model_and_baselines_on_the_same_inputs(photo, tmp_path):
    import torch

    from restorekit.demo import evaluate_heldout, report_markdown

    samples = []
    for i, name in enumerate(("astronaut", "coffee", "camera")):
        img = photo(name, 96)
        for j, (blur, jpeg) in enumerate((("gaussian_blur", "on"), ("motion_blur:line", "off"))):
            samples.append(EvalSample(name=f"{name}#{j}", target=img, input=_blur_noise(img, 1.0, 0.08, seed=i * 2 + j),
                                      conditions={"photo": name, "blur": blur, "jpeg": jpeg, "branch": f"{blur}+{jpeg}", "params": "{}"}))
    rep = evaluate_heldout(_Smooth(), samples, torch.device("cpu"), out=tmp_path, progress=False, baselines="noise,wiener,nlm_wiener")
    assert rep["n_images"] == 3 and rep["n_samples"] == 6
    assert set(rep["baselines"]) == {"nlm", "bilateral", "wiener", "nlm_wiener"}
    proto = resolve_protocol("rgb")
    for row, s in zip(rep["samples"], samples):
        assert row["input"]["psnr"] == pytest.approx(measure(s.input, s.target, proto, metrics=("psnr",))["psnr"], abs=1e-6)
        nlm = measure(BASELINES["nlm"](s.input), s.target, proto, metrics=("psnr",))["psnr"]
        assert row["nlm"]["psnr"] == pytest.approx(nlm, abs=1e-6)
    best = rep["best_baseline"]
    assert rep["gain_over_best_baseline_db"] == pytest.approx(rep["output"]["psnr"] - rep["baselines"][best]["psnr"])
    assert rep["gain_over_best_baseline_db"] == pytest.approx(np.mean([r["output"]["psnr"] - r[best]["psnr"] for r in rep["samples"]]))
    lo, hi = rep["gain_over_best_baseline_ci95_db"]
    assert lo <= rep["gain_over_best_baseline_db"] <= hi
    assert set(rep["by_branch"]["blur"]) == {"gaussian_blur", "motion_blur:line"}
    assert rep["by_branch"]["jpeg"]["on"]["output"]["n"] == 3
    per_photo = {r["name"]: r for r in rep["images"]}
    assert per_photo["coffee"]["output"]["psnr"] == pytest.approx(np.mean([r["output"]["psnr"] for r in rep["samples"][2:4]]))
    assert len(list((tmp_path / "comparisons").glob("*.png"))) == 6 and (tmp_path / "eval" / "report.json").is_file()
    md = report_markdown({**rep, "model": {"name": "box", "args": {}}, "steps": 0, "epochs": 0, "train_photos": 0,
                          "device": "cpu", "wall_seconds": 1.0})
    assert "Per blur" in md and "coffee#1" in md and best in md
