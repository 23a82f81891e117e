"""The benchmark helpers: the FMA peak kernel and the docs/benchmarks.md generator."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"rk_bench_{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="needs a C compiler")
def test_fma_peak_kernel_measures_vector_fma() -> None:
    machine = _load("machine")
    one = machine.fma_peak_gflops(cores=1, iters=2_000_000, repeats=2)
    assert one is not None and one["cores"] == 1
    # 12 chains x >= 1 lane x 2 flops per iteration: even a scalar, heavily shared core does > 0.2 GFLOP/s
    assert one["gflops_all_cores"] > 0.2 and one["gflops_best_core"] == one["gflops_all_cores"]
    info = machine.cpu_info()
    assert info["cpus"] >= 1 and "model_name" in info


def _training_result(speedups: dict[str, float]) -> dict:
    models = {}
    for key, sp in speedups.items():
        plain = 2.0
        models[key] = {"arch": key, "preset": None, "s_per_step": {"plain": plain, "plain_cl": plain / 1.1, "engine": plain / sp},
                       "speedup_vs_plain": sp, "engine_channels_last": False, "engine_compile": False,
                       "channels_last_vs_nchw_plain": 1.1, "load_avg_1m": [1.0, 2.0]}
    return {"benchmark": "training", "date": "2026-01-01 00:00 UTC", "machine": {"cpus": 2, "model_name": "X"},
            "settings": {"size": 256, "batch": 4, "steps": 3, "warmup": 1}, "models": models,
            "train_speedup_vs_plain": min(speedups.values()), "goals": {"train_speedup_1.3x": min(speedups.values()) >= 1.3}}


def test_report_copies_numbers_from_the_newest_json(tmp_path) -> None:
    report = _load("report")
    results = tmp_path / "results"
    results.mkdir()
    old = _training_result({"a": 1.15, "b": 1.7})
    new = _training_result({"a": 1.45, "b": 1.9})
    new["date"] = "2026-02-01 00:00 UTC"
    (results / "training-old.json").write_text(json.dumps(old))
    (results / "training-new.json").write_text(json.dumps(new))
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nhand-written notes stay\n")
    report.ROOT = tmp_path
    assert report.main(["--results", str(results), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "hand-written notes stay" in text and text.count(report.BEGIN) == 1
    assert "**1.45x**" in text and "1.15x" not in text and "1.45x" in text and "1.90x" in text
    assert "goal >= 1.3x: **met**" in text
    assert report.main(["--results", str(results), "--doc", str(doc), "--check"]) == 0
    (results / "training-new.json").write_text(json.dumps({**new, "train_speedup_vs_plain": 1.2,
                                                           "goals": {"train_speedup_1.3x": False}}))
    assert report.main(["--results", str(results), "--doc", str(doc), "--check"]) == 1
    report.main(["--results", str(results), "--doc", str(doc)])
    text = doc.read_text()
    assert "**1.20x**" in text and "**not met**" in text and text.count(report.BEGIN) == 1


def test_specs_memory_format_follows_the_committed_measurement() -> None:
    """The architectures' ``channels_last`` entries for the CPU (inference and training) are what the newest
    committed ``benchmarks/memory_format.py`` run measured to be faster."""
    from restorekit.models.registry import create_model
    from restorekit.models.spec import caps_of

    results = sorted((BENCH / "results").glob("memory_format-*.json"))
    assert results, "no committed memory_format result"
    data = max((json.loads(p.read_text()) for p in results), key=lambda d: d["date"])
    assert data["models"], data
    for key, r in data["models"].items():
        caps = caps_of(create_model(r["arch"], preset=r["preset"]))
        rec = r["recommended"]
        assert caps.channels_last["cpu"] is rec["cpu"], (key, caps.channels_last, rec)
        assert caps.channels_last.get("train:cpu", caps.channels_last["cpu"]) is rec["train:cpu"], (key, rec)
