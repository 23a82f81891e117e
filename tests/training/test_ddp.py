"""DDP with 2 CPU processes on gloo through `restorekit train` (trainer.devices=2, strategy=ddp)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml


@pytest.mark.slow
def test_ddp_two_cpu_processes_gloo(tmp_path, tiny_config):
    tiny_config["train"].update({"epochs": 2, "checkpoint": {"every_n_epochs": 0}})
    tiny_config["trainer"].update({"devices": 2, "strategy": "ddp", "device": "cpu"})
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config))
    run_dir = tmp_path / "runs" / "ddp"
    env = dict(os.environ, MLFLOW_TRACKING_URI="", OMP_NUM_THREADS="1", PL_TORCH_DISTRIBUTED_BACKEND="gloo")
    env.pop("LOCAL_RANK", None)
    done = subprocess.run(
        [sys.executable, "-m", "restorekit", "train", str(cfg_path), "--out", str(run_dir), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["world_size"] == 2
    hist = json.loads((run_dir / "training_history.json").read_text())["epochs"]
    # 4 photos, batch 2, split over 2 processes by the DistributedSampler: 1 optimizer step per epoch
    assert [h["global_step"] for h in hist] == [1, 2]
    assert all(h["val_psnr"] is not None for h in hist)
    assert (run_dir / "model.safetensors").is_file()
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["epochs"] == 2
