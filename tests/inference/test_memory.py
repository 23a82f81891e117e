"""Memory stays bounded as the image grows: peak RSS of a subprocess for two image sizes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_SCRIPT = r"""
import json, resource, sys
import numpy as np, torch
torch.set_num_threads(1)
import restorekit
from restorekit.inference import restore_image

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20

size, tile = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
m = restorekit.create_model("deblur_unet", base_ch=8, norm="batch").eval()
img = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
restore_image(m, img[:tile, :tile], tile=tile, overlap=16, batch=2, backend="eager")  # warm-up: kernels, allocator
before = rss_mb()
out = restore_image(m, img, tile=tile, overlap=16, batch=2, backend="eager")
# VmHWM is this process's own peak; ru_maxrss would include the parent's peak (kept across exec)
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"size": size, "before_mb": before, "peak_mb": peak, "delta_mb": peak - before,
                  "image_mb": img.nbytes / 2**20, "ok": bool(np.isfinite(out).all())}))
"""


def _measure(size: int, tile: int) -> dict:
    res = subprocess.run([sys.executable, "-c", _SCRIPT, str(size), str(tile)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_rss_bounded_as_image_grows():
    """Tiled restoration of a 16x larger image costs only its output buffer more, not activations.

    Measured (deblur_unet base 8, tile 128, batch 2, eager, 1 thread): 512^2 -> +17 MiB,
    2048^2 -> +61 MiB over the RSS before the call (growth 44 MiB for 45 MiB more output
    buffer); whole-image activations at 2048^2 would be several GiB.
    """
    small = _measure(512, 128)
    large = _measure(2048, 128)
    assert small["ok"] and large["ok"]
    growth = large["delta_mb"] - small["delta_mb"]
    extra_image = large["image_mb"] - small["image_mb"]  # one more output buffer of this size is expected
    assert growth < 2.5 * extra_image + 32, (small, large)
    assert large["delta_mb"] < 400, large


_PEAK_SCRIPT = r"""
import json
import torch
torch.set_num_threads(1)
import restorekit
from restorekit.inference.memory import bytes_per_pixel

def status_mb(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)) / 1024

torch.manual_seed(0)
m = restorekit.create_model("deblur_unet", base_ch=8).eval()
with torch.inference_mode():
    m(torch.rand(1, 3, 64, 64))  # warm-up: kernels, allocator
# one forward of a 512x512 tile: the real activation peak against the per-pixel estimate
x = torch.rand(1, 3, 512, 512)
before = status_mb("VmRSS:")
with torch.inference_mode():
    m(x)
forward_peak = status_mb("VmHWM:") - before
print(json.dumps({"estimate_mb": bytes_per_pixel(m) * 512 * 512 / 2**20, "forward_peak_mb": forward_peak}))
"""

_AUTO_SCRIPT = r"""
import json, sys
import numpy as np
import torch
torch.set_num_threads(1)
import restorekit
from restorekit.inference import restore_image
from restorekit.inference.memory import auto_tile_size

def status_mb(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)) / 1024

budget = int(float(sys.argv[1]) * 2**20)
torch.manual_seed(0)
m = restorekit.create_model("deblur_unet", base_ch=8).eval()
tile = auto_tile_size(m, torch.device("cpu"), batch=1, budget=budget)
img = np.random.default_rng(0).random((896, 896, 3), dtype=np.float32)
restore_image(m, img[:64, :64], tile=0, backend="eager", device="cpu")  # warm-up
before = status_mb("VmRSS:")
restore_image(m, img, tile="auto", batch=1, backend="eager", memory_budget=budget, device="cpu")
print(json.dumps({"tile": tile, "peak_mb": status_mb("VmHWM:") - before, "image_mb": img.nbytes / 2**20}))
"""


def _run(script: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_bytes_per_pixel_is_not_an_underestimate_of_the_real_peak():
    """The probe's estimate against the measured peak RSS of one 512x512 forward (own process).

    Measured (deblur_unet base 8, 1 thread): estimate 117 MiB, real peak 98 MiB (0.83x). An estimate
    4x too low would put the real peak at 3.3x the estimate.
    """
    r = _run(_PEAK_SCRIPT)
    ratio = r["forward_peak_mb"] / r["estimate_mb"]
    assert 0.25 < ratio < 1.5, r


def test_auto_tile_keeps_the_real_peak_within_the_budget():
    """``tile="auto"`` with a 96 MiB budget: the measured peak of a whole 896x896 restoration stays under it.

    Measured: tile 448, peak 56 MiB (input and output buffers included). Tiles sized from an
    estimate 4x too low would be twice as wide and peak near 4x higher.
    """
    r = _run(_AUTO_SCRIPT, "96")
    assert 128 <= r["tile"] <= 512, r
    assert r["peak_mb"] < 1.25 * 96, r


def test_ort_arena_setting_reaches_the_session(monkeypatch):
    """``RESTOREKIT_ORT_ARENA=0`` builds ONNX Runtime sessions without the CPU memory arena (default: with it),
    and both sessions restore a real photo alike."""
    import numpy as np
    import torch

    from skimage import data

    from restorekit.inference.onnx_graph import onnx_bytes
    from restorekit.inference.runtime import OnnxRuntime, ort_arena_enabled
    from restorekit.models import create_model

    model = create_model("deblur_unet", base_ch=8).eval()
    graph = onnx_bytes(model)
    img = torch.from_numpy(data.astronaut()[:64, :64].astype(np.float32) / 255).permute(2, 0, 1)[None]
    outs = {}
    for value, want in (("0", False), ("1", True), (None, True)):
        if value is None:
            monkeypatch.delenv("RESTOREKIT_ORT_ARENA", raising=False)
        else:
            monkeypatch.setenv("RESTOREKIT_ORT_ARENA", value)
        assert ort_arena_enabled() is want
        rt = OnnxRuntime(graph, torch.device("cpu"))  # a new session (make_runtime caches one per module)
        assert rt.session.get_session_options().enable_cpu_mem_arena is want
        outs[value] = rt(img)
    assert torch.allclose(outs["0"], outs["1"], atol=1e-5)
