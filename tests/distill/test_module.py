"""DistillationModule (training owns student and teacher) and the distill careless-use fixes (issues #12, #13, #18)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.io import imsave
from skimage.transform import resize

from restorekit.cli.main import main
from restorekit.distill.features import FeaturePair
from restorekit.distill.module import DistillationModule
from restorekit.errors import ConfigError, RestoreKitError
from restorekit.losses import build_loss
from restorekit.models import create_model
from restorekit.models.package import save_package
from restorekit.training.config import parse_run_config

from tests.training.conftest import TINY


def _teacher(path: Path) -> Path:
    torch.manual_seed(0)
    net = create_model("nafnet", width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1])
    return save_package(net, path)


def _photo_batch(size: int = 32) -> dict:
    img = resize(skdata.astronaut(), (size, size), anti_aliasing=True).astype(np.float32)
    tgt = torch.from_numpy(img).permute(2, 0, 1)[None]
    noisy = (tgt + 0.1 * torch.randn_like(tgt, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    return {"input": noisy, "target": tgt, "name": ["astronaut"]}


def _student_cfg(**train):  # noqa: ANN003, ANN202
    raw = dict(TINY, model={"name": "student_unet", "args": {"base_filters": 4, "depth": 2}},
               loss=[{"name": "l1"}, {"name": "kd_output", "weight": 1.0}])
    return parse_run_config(raw)


def test_module_owns_teacher_features_and_optimizer_groups(tmp_path) -> None:
    from restorekit.distill.teacher import load_teacher, teacher_batch

    teacher = load_teacher(_teacher(tmp_path / "t.safetensors"))
    cfg = _student_cfg()
    student = create_model("student_unet", base_filters=4, depth=2)
    m = DistillationModule(cfg, student, 10, teacher=teacher, feature_pairs=[FeaturePair("enc2", "encoders.1", 0.5)])
    # the teacher is not a submodule: not in state_dict nor in the optimiser; the adapters are, in group 2
    keys = m.state_dict().keys()
    assert not any(k.startswith("teacher") for k in keys) and any(k.startswith("kd_features.") for k in keys)
    opt = m.configure_optimizers()["optimizer"]
    assert len(opt.param_groups) == 2
    teacher_ids = {id(p) for p in teacher.parameters()}
    assert not teacher_ids & {id(p) for g in opt.param_groups for p in g["params"]}
    # a plain module with the same config has the same model keys: only kd_features is added
    from restorekit.training.module import RestorationModule

    plain = RestorationModule(cfg, create_model("student_unet", base_filters=4, depth=2), 10)
    assert set(keys) - set(plain.state_dict()) == {k for k in keys if k.startswith("kd_features.")}
    # online teacher on a real photo batch: identical to the teacher's own output, and the loss includes the feature term
    batch = _photo_batch()
    m.train()
    assert m.add_teacher(batch) is True
    torch.testing.assert_close(batch["teacher"], teacher_batch(teacher, _photo_batch()))
    pred = m.predict(m.model, batch)
    total, parts = m._loss(pred, batch)
    assert "feat_enc2" in parts and parts["kd_output"] > 0
    expected = parts["l1"] + parts["kd_output"] + 0.5 * parts["feat_enc2"]
    assert float(total.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_teacher_term_on_validation_batch_without_teacher_tensor() -> None:
    """Plain validation skips a teacher term the batch cannot feed; training still names the problem."""
    loss = build_loss([{"name": "l1"}, {"name": "l1", "target": "teacher", "weight": 2.0}])
    batch = _photo_batch()
    total, parts = loss(batch["input"], batch["target"], skip_missing=True)
    assert set(parts) == {"l1"} and float(total) == pytest.approx(float(parts["l1"]))
    with pytest.raises(RestoreKitError, match="teacher"):
        loss(batch["input"], batch["target"])
    total2, parts2 = loss(batch["input"], batch["target"], teacher=batch["target"])
    assert float(total2) == pytest.approx(3.0 * float(parts["l1"]), rel=1e-5)


def _paired_folders(root: Path, names: list[str], size: int = 48) -> tuple[Path, Path]:
    inp, tgt = root / "input", root / "target"
    inp.mkdir(parents=True)
    tgt.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for n in names:
        img = getattr(skdata, n)()
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        clean = resize(img[..., :3], (size, size), anti_aliasing=True)
        noisy = np.clip(clean + rng.normal(0, 0.08, clean.shape), 0, 1)
        imsave(tgt / f"{n}.png", (clean * 255).round().astype(np.uint8), check_contrast=False)
        imsave(inp / f"{n}.png", (noisy * 255).round().astype(np.uint8), check_contrast=False)
    return inp, tgt


@pytest.mark.slow
def test_precompute_with_val_fraction_caches_validation_split_and_nests_runs(tmp_path) -> None:
    inp, tgt = _paired_folders(tmp_path / "data", ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins"])
    teacher = _teacher(tmp_path / "teacher.safetensors")
    cfg = tmp_path / "d.yaml"
    cfg.write_text(
        f"data: {{kind: paired, input_dir: {inp}, target_dir: {tgt}, val_fraction: 0.34, patch_size: 32, batch_size: 2}}\n"
        "model: {name: student_unet, args: {base_filters: 4, depth: 2}}\n"
        f"teacher: {{path: {teacher}, mode: precompute}}\n"
        "distill: {lambda_perc: 0.0}\n"
        "train: {epochs: 1, early_stopping: {enabled: false}, checkpoint: {every_n_epochs: 0}, n_samples: 0}\n"
        "score: {latency_size: 256, latency_repeats: 1}\n"
        "tracking: {enabled: true, experiment: distill-tests}\n"
        "trainer: {progress_bar: false, device: cpu, num_threads: 1}\n"
    )
    out = tmp_path / "run"
    assert main(["distill", str(cfg), "--out", str(out), "--quiet"]) == 0
    cached = {p.stem for p in (out / "teacher_cache").glob("*.png")}
    split = json.loads((out / "student" / "split.json").read_text())
    val_names = {Path(n).stem for n in split["val"]}
    assert val_names and val_names <= cached and len(cached) == 6
    rep = json.loads((out / "report.json").read_text())
    # the 48 px images are smaller than the 256 latency size: the report says so instead of "512x512 crop"
    assert "256x256" in rep["protocol"] and "reflect-padded" in rep["protocol"] and "512" not in rep["protocol"]
    assert rep["latency_size"] == 256
    # the student's training run is nested under the distillation's parent run
    from mlflow.tracking import MlflowClient

    rec = json.loads((out / "student" / "mlflow_run.json").read_text())
    parent = json.loads((out / "mlflow_run.json").read_text())
    child = MlflowClient(tracking_uri=rec["tracking_uri"]).get_run(rec["run_id"])
    assert child.data.tags["mlflow.parentRunId"] == parent["run_id"]


def test_distill_out_under_a_plain_file(tmp_path, capsys) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    cfg = tmp_path / "d.yaml"
    cfg.write_text("data: {kind: skimage, names: [chelsea]}\nteacher: {path: t.safetensors}\n")
    assert main(["distill", str(cfg), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and "file.txt' is a file" in err and "Traceback" not in err


def test_distill_teacher_package_with_wrong_shape_tensor(tmp_path, capsys) -> None:
    from safetensors.torch import load_file, save_file

    pkg = _teacher(tmp_path / "t.safetensors")
    from safetensors import safe_open

    with safe_open(str(pkg), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(pkg))
    key = next(k for k, v in tensors.items() if v.dim() == 4)
    tensors[key] = torch.zeros(3, 3, 1, 1)
    save_file(tensors, str(pkg), metadata=meta)
    cfg = tmp_path / "d.yaml"
    cfg.write_text(f"data: {{kind: skimage, names: [chelsea, coins], val_names: [coins]}}\nteacher: {{path: {pkg}}}\n"
                   "tracking: {enabled: false}\n")
    assert main(["distill", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "t.safetensors" in err and "Traceback" not in err


@pytest.mark.parametrize("bad", [b"\xff\xfe\x00garbage: [", None])
def test_distill_config_not_utf8_or_folder(tmp_path, capsys, bad) -> None:
    path = tmp_path / "cfgdir"
    if bad is None:
        path.mkdir()
    else:
        path.write_bytes(bad)
    assert main(["distill", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "cfgdir" in err and ("folder" in err if bad is None else "UTF-8" in err)


def test_negative_distill_loss_weight_refused() -> None:
    with pytest.raises(ConfigError, match=r"loss\.1\.weight"):
        parse_run_config(dict(TINY, loss=[{"name": "l1"}, {"name": "kd_output", "weight": -1.0}]))
