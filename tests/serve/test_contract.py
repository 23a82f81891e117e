"""Contract (issue #12): every front end restores a photo the same way, whatever model file it is given.

The small package is exported to ONNX and TorchScript; the same photo is restored through
``load_restorer`` (package, .onnx, .pt), the HTTP service (FastAPI TestClient with the .onnx
and the .pt), a real ``restorekit serve --model <the .onnx>`` process, and ``restorekit restore``
(package and .onnx). Every pair agrees to >= 45 dB PSNR.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from restorekit.inference.restorer import load_restorer
from restorekit.io import decode_image, read_image, write_image
from restorekit.serve.api import ServeConfig, create_app
from restorekit.serve.core import quality_metrics


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory, photo):
    src = tmp_path_factory.mktemp("contract") / "astronaut.png"
    write_image(src, photo("astronaut", None)[:120, :136])  # not a multiple of the model's size multiple
    return src


def _via_testclient(model_path, src) -> np.ndarray:
    app = create_app(ServeConfig(models=[str(model_path)], device="cpu"))
    with TestClient(app) as client:
        r = client.post("/v1/restore", files={"image": (src.name, src.read_bytes(), "image/png")})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png"
        models = client.get("/v1/models").json()["models"]
    assert models[0]["runtime"] in ("onnxruntime", "torchscript") and models[0]["params"] is None
    return decode_image(r.content)[0]


def _via_cli(tmp_path, model_path, src) -> np.ndarray:
    from restorekit.cli.main import main

    out = tmp_path / f"cli_{model_path.suffix[1:]}"
    assert main(["restore", "--model", str(model_path), str(src), "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    (dest,) = sorted(out.iterdir())
    return read_image(dest)


def _via_serve_process(model_path, src) -> np.ndarray:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "restorekit", "serve", "--model", str(model_path), "--port", str(port), "--device", "cpu",
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
        r = httpx.post(f"{url}/v1/restore", files={"image": (src.name, src.read_bytes(), "image/png")}, timeout=120)
        assert r.status_code == 200, r.text
        return decode_image(r.content)[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_every_front_end_agrees_on_every_model_file(tmp_path, exported_zoo, photo_file):
    pkg, onnx, ts = (exported_zoo / f"deblur_small{ext}" for ext in (".safetensors", ".onnx", ".pt"))
    image = read_image(photo_file)
    outs = {
        "load_restorer(package)": load_restorer(pkg, device="cpu").restore_image(image),
        "load_restorer(onnx)": load_restorer(onnx, device="cpu").restore_image(image),
        "load_restorer(torchscript)": load_restorer(ts, device="cpu").restore_image(image),
        "TestClient(onnx)": _via_testclient(onnx, photo_file),
        "TestClient(torchscript)": _via_testclient(ts, photo_file),
        "serve process(onnx)": _via_serve_process(onnx, photo_file),
        "cli(package)": _via_cli(tmp_path, pkg, photo_file),
        "cli(onnx)": _via_cli(tmp_path, onnx, photo_file),
    }
    for name, out in outs.items():
        assert out.shape == image.shape, name
    # the model really changes the photo (a contract over identity outputs would prove nothing)
    assert quality_metrics(outs["load_restorer(package)"], image)["psnr"] < 40
    for (na, a), (nb, b) in itertools.combinations(outs.items(), 2):
        psnr = quality_metrics(a, b)["psnr"]
        assert psnr >= 45.0, f"{na} vs {nb}: {psnr:.2f} dB"
