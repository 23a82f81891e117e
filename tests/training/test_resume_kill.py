"""A real SIGKILL part-way through `restorekit train`, then `--resume auto`: no epoch repeated or skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml


def _launch(args, env):  # noqa: ANN001, ANN202
    return subprocess.Popen(
        [sys.executable, "-m", "restorekit", "train", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )


@pytest.mark.slow
def test_sigkill_then_resume_continues_exactly(tmp_path, tiny_config):
    epochs = 5
    tiny_config["train"].update({"epochs": epochs, "ema": {"enabled": True, "decay": 0.9},
                                 "early_stopping": {"enabled": True, "patience": 50},
                                 "checkpoint": {"every_n_epochs": 2}})
    tiny_config["data"]["repeat"] = 2
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config))
    run_dir = tmp_path / "runs" / "tiny"
    latest = run_dir / "checkpoints" / "latest.ckpt"
    env = dict(os.environ, MLFLOW_TRACKING_URI="", PYTHONUNBUFFERED="1")
    args = [str(cfg_path), "--out", str(run_dir), "--no-progress"]

    proc = _launch(args, env)
    deadline = time.time() + 300
    while not latest.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed:\n" + (proc.stdout.read() if proc.stdout else "")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    killed_at = torch.load(latest, map_location="cpu", weights_only=True)["epoch"]
    assert killed_at < epochs - 1  # killed part-way
    # what is on disk after the kill: every checkpoint under a real name loads completely
    for ck in (run_dir / "checkpoints").glob("[!.]*.ckpt"):
        torch.load(ck, map_location="cpu", weights_only=True)
    assert not (run_dir / "model.safetensors").exists()

    # continuing without --resume is refused (the folder holds a run)
    refused = subprocess.run([sys.executable, "-m", "restorekit", "train", *args], capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and "--resume auto" in refused.stderr

    done = subprocess.run([sys.executable, "-m", "restorekit", "train", *args, "--resume", "auto"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    hist = json.loads((run_dir / "training_history.json").read_text())["epochs"]
    assert [h["epoch"] for h in hist] == list(range(epochs))  # none repeated, none skipped
    steps = [h["global_step"] for h in hist]
    assert steps == [4 * (e + 1) for e in range(epochs)]  # 8 samples / batch 2 per epoch, continuous
    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name]
    for ck in (run_dir / "checkpoints").glob("*.ckpt"):
        state = torch.load(ck, map_location="cpu", weights_only=True)
        assert any(k.startswith("ema_model.") for k in state["state_dict"])
        assert "optimizer_states" in state and state["lr_schedulers"]
    final = torch.load(latest, map_location="cpu", weights_only=True)
    assert final["epoch"] == epochs - 1 and final["global_step"] == 4 * epochs
    # the scheduler ran once per optimizer step over the whole (interrupted) run
    assert final["lr_schedulers"][0]["last_epoch"] == 4 * epochs
    es = [v for k, v in final["callbacks"].items() if k.startswith("EarlyStopping")]
    assert es and es[0]["wait_count"] <= epochs
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("epoch*.ckpt")) == ["epoch0001.ckpt", "epoch0003.ckpt"]

    # MLflow: one run, every epoch logged once
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir.parent / 'mlflow.db'}")
    run_id = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    logged = [m.step for m in client.get_metric_history(run_id, "val_psnr")]
    assert sorted(set(logged)) == list(range(epochs))
    assert client.get_run(run_id).info.status == "FINISHED"
