"""End-to-end training runs on real photo patches: artefacts, MLflow records, EMA, accumulation, NaN handling."""

from __future__ import annotations

import json

import pytest
import torch

from restorekit.training.config import parse_run_config
from restorekit.training.engine import train


def _mlflow_client(run_dir):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{run_dir.parent / 'mlflow.db'}")


def test_tiny_run_writes_every_artefact_and_mlflow_records(tmp_path, tiny_config):
    tiny_config["tracking"]["registered_model_name"] = "tiny-deblur"
    cfg = parse_run_config(tiny_config)
    run_dir = tmp_path / "runs" / "tiny"
    result = train(cfg, run_dir)

    # run folder
    for name in ("config.yaml", "training_history.json", "training_curves.png", "model.safetensors",
                 "final_metrics.json", "checkpoints/latest.ckpt", "checkpoints/epoch0000.ckpt", "checkpoints/epoch0001.ckpt"):
        assert (run_dir / name).is_file(), name
    assert len(list((run_dir / "checkpoints").glob("best-epoch*-psnr*.ckpt"))) == 1
    assert list((run_dir / "samples").glob("epoch0001_*.png")) and list((run_dir / "comparisons").glob("*.png"))
    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name]
    hist = json.loads((run_dir / "training_history.json").read_text())["epochs"]
    assert [h["epoch"] for h in hist] == [0, 1]
    for h in hist:
        assert h["train_loss"] > 0 and 5 < h["val_psnr"] < 60 and 0 < h["val_ssim"] <= 1 and h["lr"] > 0
    assert hist[1]["global_step"] == 4  # 4 photos, batch 2, 2 epochs

    # the package holds the architecture, value range and training summary
    from restorekit.models.package import load_package, read_package

    _, meta = read_package(run_dir / "model.safetensors")
    assert meta.arch == "deblur_unet" and meta.arch_args == {"base_ch": 8} and meta.value_range == "-1,1"
    assert meta.train_size == [32, 32] and meta.training["epochs"] == 2
    assert meta.training["best_val_psnr"] == pytest.approx(max(h["val_psnr"] for h in hist))
    model = load_package(run_dir / "model.safetensors")
    assert sum(p.numel() for p in model.parameters()) > 0
    fm = json.loads((run_dir / "final_metrics.json").read_text())
    assert fm["n_images"] == 1 and fm["output"]["psnr"] == pytest.approx(result.final_metrics["output"]["psnr"])

    # MLflow (sqlite store beside the run folder)
    assert (tmp_path / "runs" / "mlflow.db").is_file()
    client = _mlflow_client(run_dir)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["optim.lr"] == "0.001" and run.data.params["model.name"] == "deblur_unet"
    for key in ("train_loss", "val_loss", "val_psnr", "val_ssim", "learning_rate"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [0, 1], key
    assert client.get_metric_history(run.info.run_id, "val_psnr")[-1].value == pytest.approx(hist[-1]["val_psnr"])
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model", "samples", "comparisons", "training_history.json", "training_curves.png"} <= top
    # the pyfunc model folder: MLmodel + the package as its artifact (tests/training/test_mlflow_model.py loads it)
    assert {"model/MLmodel", "model/artifacts"} <= {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model/artifacts")] == ["model/artifacts/model.safetensors"]
    versions = client.search_model_versions("name='tiny-deblur'")
    assert len(versions) == 1 and versions[0].run_id == run.info.run_id


def test_ema_weights_are_checkpointed_validated_and_exported(tmp_path, tiny_config):
    tiny_config["train"].update({"epochs": 1, "ema": {"enabled": True, "decay": 0.5}, "export": "last"})
    tiny_config["tracking"]["enabled"] = False
    cfg = parse_run_config(tiny_config)
    run_dir = tmp_path / "ema"
    train(cfg, run_dir)
    ckpt = torch.load(run_dir / "checkpoints" / "latest.ckpt", map_location="cpu", weights_only=True)
    sd = ckpt["state_dict"]
    ema = {k[len("ema_model."):]: v for k, v in sd.items() if k.startswith("ema_model.")}
    raw = {k[len("model."):]: v for k, v in sd.items() if k.startswith("model.")}
    assert ema.keys() == raw.keys() and ema
    assert any(not torch.equal(ema[k], raw[k]) for k in raw if raw[k].is_floating_point())
    from restorekit.models.package import read_package

    state, meta = read_package(run_dir / "model.safetensors")
    assert meta.training["ema"] is True
    for k, v in state.items():
        assert torch.equal(v, ema[k]), k  # the package holds the averaged weights


def test_gradient_accumulation_divides_optimizer_steps(tmp_path, tiny_config):
    tiny_config["train"].update({"epochs": 1, "effective_batch_size": 4, "checkpoint": {"every_n_epochs": 0}})
    tiny_config["tracking"]["enabled"] = False
    tiny_config["data"]["repeat"] = 2  # 8 samples, batch 2 -> 4 micro-batches -> 2 optimizer steps
    result = train(parse_run_config(tiny_config), tmp_path / "acc")
    assert result.history[-1]["global_step"] == 2 and result.history[-1]["accumulate"] == 2
    plan = json.loads((tmp_path / "acc" / "plan.json").read_text())
    assert plan["total_steps"] == 2


def test_progressive_patch_sizes_change_per_epoch(tmp_path, tiny_config):
    tiny_config["train"].update({"epochs": 2, "checkpoint": {"every_n_epochs": 0},
                                 "progressive": {"stages": [{"at": 0, "patch_size": 32, "batch_size": 4},
                                                            {"at": 1, "patch_size": 48, "batch_size": 2}]}})
    tiny_config["tracking"]["enabled"] = False
    seen = []

    from lightning.pytorch.callbacks import Callback

    class Spy(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # noqa: ANN001
            seen.append((trainer.current_epoch, tuple(batch["input"].shape)))

    result = train(parse_run_config(tiny_config), tmp_path / "prog", callbacks=[Spy()])
    assert seen == [(0, (4, 3, 32, 32)), (1, (2, 3, 48, 48)), (1, (2, 3, 48, 48))]
    assert [h["patch_size"] for h in result.history] == [32, 48]


def test_nonfinite_loss_stops_naming_step_and_batch(tmp_path, tiny_config):
    from restorekit.errors import RestoreKitError

    tiny_config["optim"]["lr"] = 1e30  # explodes after the first step
    tiny_config["train"].update({"epochs": 3, "grad_clip": None})
    tiny_config["tracking"]["enabled"] = False
    with pytest.raises(RestoreKitError, match=r"step \d+, batch \d+"):
        train(parse_run_config(tiny_config), tmp_path / "nan")
    tiny_config["train"]["skip_nonfinite"] = True
    result = train(parse_run_config(tiny_config), tmp_path / "nan-skip")
    assert result.history[-1]["skipped_batches"] > 0
