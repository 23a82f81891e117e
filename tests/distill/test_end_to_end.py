"""End to end through `restorekit distill`: the demo config (small variant) and chunked epochs across a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from restorekit.cli.main import main
from restorekit.distill.cache import FINGERPRINT_FILE, read_fingerprint
from restorekit.models import create_model
from restorekit.models.package import save_package

DEMO = Path(__file__).resolve().parents[2] / "configs" / "distill-demo.yaml"

SMALL = [
    "data.names=[chelsea, coins, text, page]",
    "data.val_names=[page]",
    "data.patch_size=32",
    "data.batch_size=4",
    "data.repeat=1",
    "data.val_patch=64",
    "teacher.train.model.args.width=8",
    "teacher.train.train.epochs=1",
    "model.args={base_filters: 4, depth: 2}",
    "train.epochs=1",
    "score.latency_size=64",
    "score.latency_repeats=1",
]


@pytest.mark.slow
def test_demo_config_small_end_to_end(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["distill", str(DEMO), "--out", str(out), *sum((["--set", s] for s in SMALL), [])]
    assert main(args) == 0
    rep = json.loads((out / "report.json").read_text())
    for key in ("input", "teacher", "student"):
        assert set(rep[key]) >= {"psnr", "ssim", "params", "gmacs_256", "ms_per_megapixel"}
    assert rep["teacher"]["name"] == "nafnet" and rep["student"]["name"] == "student_unet"
    assert rep["student"]["params"] < rep["teacher"]["params"]
    assert rep["student_vs_teacher"]["psnr_gap"] == pytest.approx(rep["student"]["psnr"] - rep["teacher"]["psnr"])
    assert rep["student_vs_input"]["psnr_gain"] == pytest.approx(rep["student"]["psnr"] - rep["input"]["psnr"])
    assert rep["n_images"] == 1 and rep["teacher_outputs"]["mode"] == "precompute"
    # the input row is the engine's own measurement of the degraded validation input
    final = json.loads((out / "student" / "final_metrics.json").read_text())
    assert rep["input"]["psnr"] == pytest.approx(final["input"]["psnr"], abs=1e-3)
    md = (out / "report.md").read_text()
    assert ("**WARNING" in md) == (not rep["student_beats_input"])
    # cache: one 16-bit PNG per training photo, fingerprint complete; KD term active during training
    fp = read_fingerprint(out / "teacher_cache")
    assert fp["complete"] and fp["count"] == 3
    assert sorted(p.name for p in (out / "teacher_cache").iterdir()) == ["chelsea.png", "coins.png", FINGERPRINT_FILE, "text.png"]
    epochs = json.loads((out / "student" / "distill_epochs.json").read_text())
    assert epochs["0"]["loss_parts"]["kd_output"] > 0 and epochs["0"]["online_teacher_batches"] == 0
    # rerun with --resume auto: teacher reused, nothing recomputed
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "teacher_cache").iterdir()}
    capsys.readouterr()
    assert main(args + ["--resume", "auto"]) == 0
    err = capsys.readouterr().err
    assert "reusing the trained teacher" in err and "0 computed, 3 reused" in err
    assert {p.name: p.stat().st_mtime_ns for p in (out / "teacher_cache").iterdir() if p.name != FINGERPRINT_FILE} == {
        k: v for k, v in mtimes.items() if k != FINGERPRINT_FILE}
    # another cache format invalidates the cache (teacher, data and recipe changes: see test_cache.py)
    assert main(args + ["--set", "teacher.cache_format=npy", "--precompute-only"]) == 0
    err = capsys.readouterr().err
    assert "3 computed, 0 reused (invalidated: format changed)" in err
    assert sorted(p.suffix for p in (out / "teacher_cache").iterdir()) == [".json", ".npy", ".npy", ".npy"]


def _teacher_package(path: Path) -> Path:
    torch.manual_seed(0)
    net = create_model("nafnet", width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1])
    return save_package(net, path)


@pytest.mark.slow
def test_chunked_epochs_order_survives_resume_online_teacher(tmp_path: Path) -> None:
    teacher = _teacher_package(tmp_path / "teacher.safetensors")
    cfg = tmp_path / "distill.yaml"
    cfg.write_text(
        "seed: 3\n"
        "data: {kind: skimage, names: [chelsea, coins, text, page, camera], val_names: [camera], degrade: demo-deblur,\n"
        "       patch_size: 32, batch_size: 3, val_patch: 32}\n"
        "model: {name: student_unet, args: {base_filters: 4, depth: 2}}\n"
        f"teacher: {{path: {teacher}, mode: online}}\n"
        "distill: {lambda_perc: 0.0, epoch_samples: 3}\n"
        "train: {epochs: 3, early_stopping: {enabled: false}, checkpoint: {every_n_epochs: 0}, n_samples: 0}\n"
        "score: {enabled: false}\n"
        "tracking: {enabled: false}\n"
        "trainer: {progress_bar: false}\n"
    )
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["distill", str(cfg), "--out", str(straight), "--quiet"]) == 0
    assert main(["distill", str(cfg), "--out", str(resumed), "--quiet", "--set", "train.epochs=2"]) == 0
    assert main(["distill", str(cfg), "--out", str(resumed), "--quiet", "--resume", "auto"]) == 0
    a = json.loads((straight / "student" / "distill_epochs.json").read_text())
    b = json.loads((resumed / "student" / "distill_epochs.json").read_text())
    # each epoch's chunk is fixed by (seed, epoch): the same samples in the straight and the resumed run
    # (the order inside an epoch is the training engine's seeded shuffle of the chunk)
    chunks_a = [sorted(a[str(e)]["samples"]) for e in range(3)]
    assert chunks_a == [sorted(b[str(e)]["samples"]) for e in range(3)]
    from restorekit.data import build_datasets
    from restorekit.distill.config import load_distill_config
    from restorekit.distill.sampler import epoch_indices

    base, _ = build_datasets(load_distill_config(cfg).student.data, seed=3)
    names = [it.name for it in base.items]
    expected = [[names[i] for i in epoch_indices(len(names), 3, 3, e)] for e in range(3)]
    assert chunks_a == [sorted(x) for x in expected]
    # 4 training photos, 3 per epoch: the first pass (epoch 0 + 1 sample of epoch 1) sees all four
    assert sorted(sum(expected, [])[:4]) == sorted(names)
    # online teacher: every training batch got its teacher output from the teacher, KD term logged
    assert all(a[str(e)]["online_teacher_batches"] == 1 and a[str(e)]["loss_parts"]["kd_output"] >= 0 for e in range(3))
    hist = json.loads((resumed / "student" / "training_history.json").read_text())
    assert [h["epoch"] for h in hist["epochs"]] == [0, 1, 2]


@pytest.mark.slow
def test_feature_distillation_through_engine_and_resume(tmp_path: Path) -> None:
    teacher = _teacher_package(tmp_path / "teacher.safetensors")
    cfg = tmp_path / "feat.yaml"
    cfg.write_text(
        "data: {kind: skimage, names: [chelsea, coins, text], val_names: [text], degrade: demo-deblur,\n"
        "       patch_size: 32, batch_size: 2, val_patch: 32}\n"
        "model: {name: student_unet, args: {base_filters: 4, depth: 2}}\n"
        f"teacher: {{path: {teacher}, mode: online}}\n"
        "distill: {lambda_perc: 0.0, features: [{student: enc2, teacher: encoders.1, weight: 0.5}]}\n"
        "train: {epochs: 1, early_stopping: {enabled: false}, checkpoint: {every_n_epochs: 0}, n_samples: 0}\n"
        "score: {latency_size: 32, latency_repeats: 1}\n"
        "tracking: {enabled: false}\n"
        "trainer: {progress_bar: false}\n"
    )
    out = tmp_path / "run"
    assert main(["distill", str(cfg), "--out", str(out), "--quiet"]) == 0
    ckpt = torch.load(out / "student" / "checkpoints" / "latest.ckpt", map_location="cpu", weights_only=True)
    adapter = [k for k in ckpt["state_dict"] if k.startswith("kd_features.")]
    assert adapter and len(ckpt["optimizer_states"][0]["param_groups"]) == 2
    assert main(["distill", str(cfg), "--out", str(out), "--quiet", "--resume", "auto", "--set", "train.epochs=2"]) == 0
    rec = json.loads((out / "student" / "distill_epochs.json").read_text())
    assert set(rec) == {"0", "1"} and all(rec[e]["loss_parts"]["feat_enc2"] > 0 for e in rec)
    from restorekit.models.loading import load_model

    student = load_model(out / "student" / "model.safetensors")  # the adapters are not part of the student
    assert not any(k.startswith("kd_features") for k in student.state_dict())
    rep = json.loads((out / "report.json").read_text())
    assert rep["teacher_outputs"]["mode"] == "online" and rep["teacher_outputs"]["online_teacher_batches"] > 0
