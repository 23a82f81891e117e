"""`restorekit serve` and `restorekit ui` command lines: validation, the Streamlit command, a real `serve` process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from restorekit.cli.main import build_parser, main


def test_serve_validates_its_flags(tmp_path, capsys, small_package):
    assert main(["serve"]) == 2
    assert "--model PATH (or --models-dir DIR) is required" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors' does not exist" in capsys.readouterr().err
    assert main(["serve", "--model", str(small_package), "--tile", "7"]) == 2
    assert "--tile: tiles smaller than 16 pixels are not useful, got 7" in capsys.readouterr().err
    assert main(["serve", "--model", str(small_package), "--max-concurrency", "0"]) == 2
    assert "max_concurrency must be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_serve_refuses_a_bad_port_before_loading_the_model(tmp_path, capsys, port):
    # issue #18: a traceback after loading the model; now an error line, and the model is never opened
    junk = tmp_path / "never_opened.safetensors"
    junk.write_bytes(b"not a model")
    assert main(["serve", "--model", str(junk), "--port", port]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"--port must be in [0, 65535], got {port}" in err
    assert "Traceback" not in err and "never_opened" not in err


def test_serve_empty_models_folder_says_so(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no models here")
    assert main(["serve", "--models-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"models_dir '{tmp_path}' holds no model file" in err and ".onnx" in err and "Traceback" not in err
    assert main(["serve", "--model", str(tmp_path)]) == 2
    assert f"model folder '{tmp_path}' holds no model file" in capsys.readouterr().err


def test_serve_package_with_a_wrong_shaped_tensor_gives_an_error_line(tmp_path, capsys, small_package):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(small_package), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(small_package))
    name = next(k for k, v in tensors.items() if v.ndim == 4)
    tensors[name] = tensors[name][:, :-1].contiguous()  # one input channel fewer
    bad = tmp_path / "wrong_shape.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    assert main(["serve", "--model", str(bad), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "wrong_shape.safetensors" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_serve_config_from_flags(small_package):
    from restorekit.cli.serve import build_config

    args = build_parser().parse_args(
        ["serve", "--model", str(small_package), "--tile", "256", "--overlap", "0.25", "--max-upload-mb", "2",
         "--max-pixels", "1000000", "--max-concurrency", "3", "--cors-origin", "*", "--backend", "eager"]
    )
    cfg = build_config(args)
    assert (cfg.options.tile, cfg.options.overlap, cfg.options.backend) == (256, 0.25, "eager")
    assert cfg.options.blend == "linear" and cfg.options.batch == 4  # the rest are restore's defaults
    assert cfg.limits.max_upload_bytes == 2 * 1024 * 1024 and cfg.limits.max_pixels == 1_000_000
    assert cfg.max_concurrency == 3 and cfg.cors_origins == ["*"]


def test_ui_command_and_environment(tmp_path, small_package, capsys):
    from restorekit.cli.ui import streamlit_command, ui_environment

    args = build_parser().parse_args(["ui", "--model", str(small_package), "--port", "8599", "--max-upload-mb", "7.5",
                                      "--max-pixels", "1234567", "--models-dir", str(tmp_path)])
    env = ui_environment(args, base={})
    assert env["RESTOREKIT_UI_MODELS"] == str(small_package.resolve())
    assert env["RESTOREKIT_UI_MODELS_DIR"] == str(tmp_path.resolve())
    assert env["RESTOREKIT_UI_MAX_UPLOAD_MB"] == "7.5" and env["RESTOREKIT_UI_MAX_PIXELS"] == "1234567"
    cmd = streamlit_command(args)
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"] and cmd[4].endswith("restorekit/serve/app.py")
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8599"
    assert flags["--server.maxUploadSize"] == "8" and flags["--browser.gatherUsageStats"] == "false"
    assert main(["ui", "--model", str(tmp_path / "nope.safetensors")]) == 2
    assert "--model" in capsys.readouterr().err


@pytest.mark.slow
def test_restorekit_serve_process_round_trip(small_package, astronaut_png):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "restorekit", "serve", "--model", str(small_package), "--port", str(port), "--device", "cpu",
         "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "restorekit serve did not start"
            time.sleep(0.2)
        r = httpx.post(f"{url}/v1/restore", files={"image": ("a.png", astronaut_png, "image/png")}, timeout=60)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["x-image-size"] == "128x128"
        bad = httpx.post(f"{url}/v1/restore", files={"image": ("a.png", b"nope", "image/png")}, timeout=60)
        assert bad.status_code == 400
        assert httpx.get(f"{url}/healthz").json()["served"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode in (0, -15)
