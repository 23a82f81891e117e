"""Distill config: sections validated with key names, loss built from the lambdas, teacher run merged."""

from __future__ import annotations

from pathlib import Path

import pytest

from restorekit.distill.config import DistillConfig, load_distill_config
from restorekit.errors import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "configs" / "distill-demo.yaml"


def _base() -> dict:
    return {
        "data": {"kind": "skimage", "names": ["astronaut", "coffee"], "patch_size": 32},
        "model": {"name": "student_unet", "args": {"base_filters": 8, "depth": 2}},
        "teacher": {"path": "teacher.safetensors"},
    }


def test_demo_config_loads() -> None:
    cfg = load_distill_config(DEMO)
    assert cfg.student.model.name == "student_unet"
    assert [t.name for t in cfg.student.loss][:2] == ["l1", "kd_output"]
    t = cfg.teacher_run_raw()
    assert t["model"]["name"] == "nafnet" and t["data"] == cfg.raw["data"] and t["loss"] == [{"name": "l1"}]
    assert t["name"] == "distill-demo-teacher"


def test_loss_from_lambdas_and_explicit_loss_wins() -> None:
    raw = _base()
    raw["distill"] = {"lambda_kd": 0.25, "lambda_perc": 0.1, "perceptual_target": "target"}
    cfg = DistillConfig(raw)
    assert [(t.name, t.weight, t.target) for t in cfg.student.loss] == [
        ("l1", 1.0, "target"), ("kd_output", 0.25, "teacher"), ("perceptual", 0.1, "target")]
    raw["loss"] = [{"name": "charbonnier"}, {"name": "kd_output", "weight": 2.0}]
    assert [t.name for t in DistillConfig(raw).student.loss] == ["charbonnier", "kd_output"]


def test_errors_name_the_key() -> None:
    raw = _base()
    raw["distill"] = {"lamda_kd": 1.0}
    with pytest.raises(ConfigError, match="distill.lamda_kd: unknown key"):
        DistillConfig(raw, "x.yaml")
    raw = _base()
    raw["teacher"] = {}
    with pytest.raises(ConfigError, match="teacher.path"):
        DistillConfig(raw)
    raw = _base()
    raw["distill"] = {"features": [{"student": "enc1", "teacher": "intro"}]}
    with pytest.raises(ConfigError, match="teacher.mode: online"):
        DistillConfig(raw)
    raw = _base()
    raw["teacher"]["mode"] = "cached"
    with pytest.raises(ConfigError, match="teacher.mode"):
        DistillConfig(raw)
