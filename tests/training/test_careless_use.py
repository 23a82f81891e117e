"""Training-side careless use (issue #18): each mistake is a clear error naming the file or setting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from restorekit.cli.main import main
from restorekit.errors import ConfigError
from restorekit.training.config import load_run_config, parse_run_config
from restorekit.training.engine import train


def _write(tmp_path: Path, cfg: dict, name: str = "tiny.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_unknown_model_arg_fails_at_load_naming_key(tmp_path, tiny_config, capsys) -> None:
    cfg = _write(tmp_path, tiny_config)
    with pytest.raises(ConfigError, match=r"model\.args\.bogus: unknown argument of 'deblur_unet'"):
        load_run_config(cfg, ["model.args.bogus=1"])
    out = tmp_path / "runs" / "x"
    assert main(["train", str(cfg), "--out", str(out), "--set", "model.args.bogus=1"]) == 2
    assert "model.args.bogus" in capsys.readouterr().err
    assert not out.exists()  # nothing was started


@pytest.mark.parametrize("weight", [-0.5, float("inf")])
def test_negative_or_infinite_loss_weight_refused(tiny_config, weight) -> None:
    tiny_config["loss"] = [{"name": "charbonnier", "weight": weight}]
    with pytest.raises(ConfigError, match=r"loss\.0\.weight"):
        parse_run_config(tiny_config)


@pytest.mark.parametrize("kind", ["binary", "folder"])
@pytest.mark.parametrize("command", [["train"], ["data", "preview"], ["distill"]])
def test_non_utf8_or_folder_config(tmp_path, capsys, kind, command) -> None:
    p = tmp_path / "conf.yaml"
    if kind == "folder":
        p.mkdir()
    else:
        p.write_bytes(bytes(range(128, 256)))
    args = [*command, str(p)] + (["--out", str(tmp_path / "o")] if command[0] != "data" else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config file") and "conf.yaml" in err
    assert ("is a folder" in err) if kind == "folder" else ("not UTF-8" in err)


def test_failed_train_removes_the_run_folder_it_created(tmp_path, tiny_config) -> None:
    tiny_config["model"]["init"] = str(tmp_path / "missing.safetensors")  # fails after split.json is written
    cfg = parse_run_config(tiny_config)
    run_dir = tmp_path / "runs" / "fail"
    with pytest.raises(ConfigError, match="model.init"):
        train(cfg, run_dir)
    assert not run_dir.exists()


@pytest.mark.slow
def test_resume_checks_truncated_other_arch_and_fewer_epochs(tmp_path, tiny_config, capsys) -> None:
    tiny_config["train"].update({"epochs": 2})
    tiny_config["tracking"]["enabled"] = False
    cfg = _write(tmp_path, tiny_config)
    run_dir = tmp_path / "runs" / "tiny"
    assert main(["train", str(cfg), "--out", str(run_dir), "--no-progress"]) == 0
    capsys.readouterr()
    latest = run_dir / "checkpoints" / "latest.ckpt"
    assert torch.load(latest, map_location="cpu", weights_only=True)["epoch"] == 1

    # fewer epochs than already done
    assert main(["train", str(cfg), "--out", str(run_dir), "--resume", "auto", "--set", "train.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "train.epochs" in err and "already trained 2 epoch(s)" in err and "Traceback" not in err
    # another architecture (other args of the same model, then another model)
    assert main(["train", str(cfg), "--out", str(run_dir), "--resume", "auto", "--set", "model.args.base_ch=4"]) == 2
    assert "base_ch=8" in capsys.readouterr().err
    assert main(["train", str(cfg), "--out", str(run_dir), "--resume", str(latest),
                 "--set", "model.name=student_unet", "--set", "model.args={}"]) == 2
    assert "is a 'deblur_unet' model but model.name is 'student_unet'" in capsys.readouterr().err
    # truncated, through --resume auto and an explicit path
    latest.write_bytes(latest.read_bytes()[:1000])
    for resume in ("auto", str(latest)):
        assert main(["train", str(cfg), "--out", str(run_dir), "--resume", resume, "--set", "train.epochs=3"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --resume: cannot read checkpoint") and "latest.ckpt" in err


@pytest.mark.slow
def test_sigint_says_it_stopped_and_how_to_resume(tmp_path, tiny_config) -> None:
    tiny_config["train"].update({"epochs": 50, "early_stopping": {"enabled": False}})
    tiny_config["tracking"]["enabled"] = False
    cfg = _write(tmp_path, tiny_config)
    run_dir = tmp_path / "runs" / "int"
    latest = run_dir / "checkpoints" / "latest.ckpt"
    env = dict(os.environ, MLFLOW_TRACKING_URI="", PYTHONUNBUFFERED="1")
    # SIGINT back to its default in the child: a test runner started in the background by a non-interactive
    # shell inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "restorekit", "train", str(cfg), "--out", str(run_dir), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while not latest.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "training stopped by Ctrl+C" in err and f"--out {run_dir} --resume auto" in err and "Traceback" not in err
    assert latest.is_file()  # the resume point is kept
