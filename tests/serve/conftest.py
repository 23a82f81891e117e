"""Fixtures for the serving tests: a small deblur_unet package, encoded photos, a real uvicorn on loopback."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def small_package(tmp_path_factory) -> Path:
    """A deblur_unet (base_ch=8, seeded random weights) saved as a restorekit package."""
    import torch

    import restorekit
    from restorekit.models.package import save_package

    torch.manual_seed(0)
    model = restorekit.create_model("deblur_unet", base_ch=8)
    path = tmp_path_factory.mktemp("models") / "deblur_small.safetensors"
    save_package(model, path)
    return path


@pytest.fixture(scope="session")
def small_loaded(small_package):
    """The small package loaded by the serving core (its runtimes are built once and reused)."""
    from restorekit.serve.core import load_for_inference

    return load_for_inference(small_package, device="cpu")


@pytest.fixture(scope="session")
def astronaut_png(photo) -> bytes:
    """A real 128x128 photo encoded as PNG."""
    from restorekit.io import encode_image

    return encode_image(photo("astronaut", 128), "PNG")


@pytest.fixture(scope="session")
def coffee_jpeg(photo) -> bytes:
    """A real 96x96 photo encoded as JPEG."""
    from restorekit.io import encode_image

    return encode_image(photo("coffee", 96), "JPEG", quality=92)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(app, *, timeout: float = 30.0) -> Iterator[str]:
    """Run ``app`` under a real uvicorn on 127.0.0.1:<free port> in a thread; yield the base URL; always shut down."""
    import httpx
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_keep_alive=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on {base}")
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def serve_app():
    """``with serve_app(app) as base_url:`` runs a real uvicorn on loopback for the block."""
    return running_server


@pytest.fixture(scope="module")
def small_service(small_package, small_loaded):
    """(base URL, LoadedModel): the service over the small package, limits 400 kB and 300x300 pixels."""
    from restorekit.serve.api import ServeConfig, create_app
    from restorekit.serve.core import Limits

    cfg = ServeConfig(models=[str(small_package)], device="cpu", limits=Limits(max_upload_bytes=400_000, max_pixels=300 * 300))
    with running_server(create_app(cfg)) as url:
        yield url, small_loaded


_GATES: dict[str, tuple[threading.Event, threading.Event]] = {}


def _gate_net(key: str):
    import torch
    import torch.nn as nn

    class GateNet(nn.Module):
        """Identity model whose forward signals ``entered`` and then waits for ``release``.

        Lets a test hold an inference slot for exactly as long as it wants. The
        events live in a module dict (looked up by ``key``) so the module can be deep-copied.
        """

        def __init__(self) -> None:
            super().__init__()
            self.key = key
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            entered, release = _GATES[self.key]
            entered.set()
            release.wait(60)
            return x * self.scale

    return GateNet()


@pytest.fixture
def gate_model(request):
    """(module, entered, release): an identity model that blocks until ``release.set()``; released at teardown."""
    key = request.node.name
    entered, release = threading.Event(), threading.Event()
    _GATES[key] = (entered, release)
    try:
        yield _gate_net(key), entered, release
    finally:
        release.set()
        _GATES.pop(key, None)


@pytest.fixture(scope="session")
def exported_zoo(tmp_path_factory, small_package) -> Path:
    """A folder with the small package and its ONNX and TorchScript exports (``deblur_small.{safetensors,onnx,pt}``)."""
    import shutil

    from restorekit.export import export_model
    from restorekit.models.loading import load_model

    d = tmp_path_factory.mktemp("zoo")
    shutil.copy(small_package, d / "deblur_small.safetensors")
    model = load_model(small_package)
    export_model(model, d / "deblur_small.onnx")
    export_model(model, d / "deblur_small.pt")
    return d
