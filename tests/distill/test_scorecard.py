"""Scorecard: numbers, gaps, the bold warning when the student does not beat its input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from restorekit.distill.scorecard import Score, build_report, quality, render_markdown, score_models, write_report
from restorekit.metrics import psnr


def _pairs(photo):
    rng = np.random.default_rng(0)
    out = []
    for name in ("astronaut", "coffee"):
        tgt = photo(name, 64)
        inp = np.clip(tgt + rng.normal(0, 0.05, tgt.shape), 0, 1).astype(np.float32)
        out.append((inp, tgt))
    return out


class Blend(torch.nn.Module):
    """A 'model' that moves its input towards a smoothed copy: a deterministic denoiser for tests."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, k, padding=k // 2, groups=3, bias=False)
        torch.nn.init.constant_(self.conv.weight, 1.0 / (k * k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_scores_and_report(photo, tmp_path) -> None:
    pairs = _pairs(photo)
    teacher, student = Blend(3).eval(), Blend(5).eval()
    scores = score_models(pairs, teacher, student, tile=0, latency_size=64, latency_repeats=1)
    p_in = np.mean([psnr(x, y) for x, y in pairs])
    assert scores["input"].psnr == pytest.approx(p_in, abs=1e-6)
    assert scores["input"].params == 0 and scores["teacher"].params == 27 and scores["student"].params == 75
    assert scores["teacher"].gmacs_256 == pytest.approx(27 * 256 * 256 / 3 / 1e9 * 3, rel=1e-6)
    assert scores["teacher"].ms_per_megapixel > 0 and scores["student"].ms_per_megapixel > 0
    rep = build_report(scores, n_images=2)
    assert rep["student_vs_teacher"]["psnr_gap"] == pytest.approx(scores["student"].psnr - scores["teacher"].psnr)
    assert rep["student_vs_input"]["psnr_gain"] == pytest.approx(scores["student"].psnr - p_in)
    assert rep["student_vs_teacher"]["params_ratio"] == pytest.approx(75 / 27)
    j, m = write_report(tmp_path, rep)
    data = json.loads(j.read_text())
    for key in ("input", "teacher", "student"):
        assert set(data[key]) >= {"psnr", "ssim", "params", "gmacs_256", "ms_per_megapixel"}
    assert m.read_text().startswith("# Distillation scorecard")


def test_warning_only_when_student_does_not_beat_input() -> None:
    inp = Score(25.0, 0.80, 0, 0.0, 0.0, "input")
    tea = Score(28.0, 0.88, 1000, 1.0, 10.0, "nafnet")
    worse = build_report({"input": inp, "teacher": tea, "student": Score(24.5, 0.79, 100, 0.1, 1.0, "student_unet")}, n_images=3)
    better = build_report({"input": inp, "teacher": tea, "student": Score(26.0, 0.84, 100, 0.1, 1.0, "student_unet")}, n_images=3)
    md_w, md_b = render_markdown(worse), render_markdown(better)
    assert not worse["student_beats_input"] and better["student_beats_input"]
    assert "**WARNING: the student does not beat its input" in md_w and "-0.50 dB" in md_w
    assert "WARNING" not in md_b
    assert "| student | student_unet | 26.00 | 0.8400 | 100 |" in md_b
    assert better["student_vs_teacher"]["speedup"] == pytest.approx(10.0)


def test_quality_of_identity_is_input_quality(photo) -> None:
    pairs = _pairs(photo)
    p0, s0, n = quality(None, pairs)
    p1, s1, _ = quality(lambda x: x, pairs)
    assert n == 2 and p0 == p1 and s0 == s1 and 20 < p0 < 30


def test_scorecard_logged_to_mlflow(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    from restorekit.distill.scorecard import log_report_mlflow

    rep = build_report({"input": Score(25.0, 0.80, 0, 0.0, 0.0, "input"),
                        "teacher": Score(28.0, 0.88, 1000, 1.0, 10.0, "nafnet"),
                        "student": Score(26.0, 0.84, 100, 0.1, 1.0, "student_unet")}, n_images=3)
    _, md = write_report(tmp_path, rep)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = log_report_mlflow(rep, run_dir=tmp_path / "student", uri=uri, experiment="kd-test", md_path=md)
    run = MlflowClient(uri).get_run(run_id)
    assert run.data.metrics["score_student_psnr"] == 26.0 and run.data.metrics["score_student_psnr_gain"] == 1.0
    assert run.data.metrics["score_teacher_params"] == 1000 and run.data.tags["student_beats_input"] == "true"
    arts = {a.path for a in MlflowClient(uri).list_artifacts(run_id, "scorecard")}
    assert arts == {"scorecard/report.json", "scorecard/report.md"}
