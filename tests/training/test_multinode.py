"""Multi-node training: `restorekit train` under two `torchrun --nnodes=2 --nproc-per-node=1` launches (gloo, localhost)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_torchrun_gloo(tmp_path, tiny_config) -> None:
    tiny_config["train"].update({"epochs": 2, "checkpoint": {"every_n_epochs": 0}})
    tiny_config["trainer"].update({"num_nodes": 2, "devices": 1, "strategy": "ddp", "device": "cpu"})
    cfg_path = tmp_path / "mn.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config))
    run_dir = tmp_path / "runs" / "mn"
    port = _free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI="", OMP_NUM_THREADS="1", PL_TORCH_DISTRIBUTED_BACKEND="gloo")
    for k in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                "--master-addr=127.0.0.1", f"--master-port={port}"]
    cmd = ["-m", "restorekit", "train", str(cfg_path), "--out", str(run_dir), "--no-progress"]
    procs = [subprocess.Popen([*torchrun, f"--node-rank={r}", *cmd], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n----\n".join(o[-3000:] for o in outs)
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["world_size"] == 2
    # 4 photos, batch 2, split over the 2 nodes by the DistributedSampler: 1 optimizer step per epoch
    hist = json.loads((run_dir / "training_history.json").read_text())["epochs"]
    assert [h["global_step"] for h in hist] == [1, 2]
    # only rank 0 wrote: one package, one summary (printed by node 0), one MLflow run
    assert (run_dir / "model.safetensors").is_file()
    assert '"run_dir"' in outs[0] and '"run_dir"' not in outs[1]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir.parent / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tests")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert sorted(p.name for p in Path(run_dir).iterdir() if p.name.startswith("mlflow_run"))  == ["mlflow_run.json"]
