"""restore_image / restore_tensor: seams, odd and tiny sizes, inputs, value range, ensemble, TLC, OOM fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from restorekit.errors import ConfigError
from restorekit.inference import Runtime, make_runtime, plan_tile, restore_image, restore_tensor
from restorekit.models.spec import ModelCard, card_of, set_card


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a = torch.as_tensor(np.asarray(a, dtype=np.float64))
    b = torch.as_tensor(np.asarray(b, dtype=np.float64))
    mse = float(((a - b) ** 2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-30))


def test_seams_shallow_conv_photo(photo, tm):
    """A pure conv model (receptive-field radius 6): tiles with 24 px overlap match the whole image.

    Measured on astronaut 256x256, tile 96 (PSNR of tiled vs whole, unclipped, range 1):
    overlap 24: 55.5 dB linear / 67.9 dB cosine; overlap 16: 51.8 / 60.7; overlap 8: 48.6 / 52.8;
    overlap 0: 34.2 dB.
    """
    img = photo("astronaut", 256)
    m = tm.ShallowConv()
    whole = restore_tensor(m, torch.from_numpy(img).permute(2, 0, 1), tile=0, backend="eager", clip=False)
    for blend in ("linear", "cosine"):
        tiled = restore_tensor(m, torch.from_numpy(img).permute(2, 0, 1), tile=96, overlap=24, blend=blend,
                               backend="eager", clip=False, batch=3)
        assert psnr(tiled, whole) >= 50.0, blend
    # without overlap the seams are visible: much lower
    hard = restore_tensor(m, torch.from_numpy(img).permute(2, 0, 1), tile=96, overlap=0, backend="eager", clip=False)
    assert psnr(hard, whole) < psnr(tiled, whole) - 10


@pytest.mark.slow
def test_seams_unet_photo(photo, tm):
    """deblur_unet (base 8, BatchNorm, He init: long-range dependencies) on astronaut 512x512.

    The receptive field is ~120 px in radius; with tile 384 the overlap is 256 px.
    Measured: cosine 56.3 dB, linear 47.1 dB; tile 256 / overlap 128 cosine: 41.5 dB.
    """
    img = photo("astronaut", 512)
    m = tm.signal_unet()
    whole = restore_image(m, img, tile=0, backend="eager")
    tiled = restore_image(m, img, tile=384, overlap=192, blend="cosine", backend="eager", batch=4)
    assert psnr(tiled, whole) >= 50.0
    linear = restore_image(m, img, tile=384, overlap=192, blend="linear", backend="eager", batch=4)
    assert 40.0 <= psnr(linear, whole) < psnr(tiled, whole)


@pytest.mark.parametrize("h,w", [(37, 53), (101, 67), (130, 129)])
def test_odd_sizes(photo, tm, h, w):
    img = photo("astronaut", 256)[:h, :w]
    m = tm.ShallowConv()
    whole = restore_image(m, img, tile=0, backend="eager")
    tiled = restore_image(m, img, tile=48, overlap=24, backend="eager")
    assert tiled.shape == (h, w, 3) and tiled.dtype == np.float32
    assert psnr(tiled, whole) >= 50.0


@pytest.mark.parametrize("h,w", [(1, 1), (3, 5), (17, 9), (16, 300)])
def test_tiny_images_unet(tm, h, w):
    """Images smaller than a tile (or the size multiple) go through whole, padded and cropped back."""
    m = tm.signal_unet()
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    out = restore_image(m, img, tile="auto", backend="eager")
    assert out.shape == (h, w, 3) and np.isfinite(out).all()
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_input_types_agree(photo, tm):
    from PIL import Image

    img = photo("astronaut", 64)
    u8 = np.round(img * 255).astype(np.uint8)
    m = tm.ShallowConv()
    ref = restore_image(m, u8.astype(np.float32) / 255, tile=0, backend="eager")
    outs = [
        restore_image(m, u8, tile=0, backend="eager"),
        restore_image(m, Image.fromarray(u8), tile=0, backend="eager"),
        restore_image(m, torch.from_numpy(u8.astype(np.float32) / 255).permute(2, 0, 1), tile=0, backend="eager"),
        restore_image(m, torch.from_numpy(u8.astype(np.float32) / 255).permute(2, 0, 1)[None], tile=0, backend="eager"),
    ]
    for o in outs:
        assert np.abs(o - ref).max() < 1e-6
    flipped = restore_image(m, u8[:, ::-1], tile=0, backend="eager")  # negative-stride view
    assert np.abs(flipped - restore_image(m, np.ascontiguousarray(u8[:, ::-1]), tile=0, backend="eager")).max() == 0


def test_value_range_handled(photo):
    """deblur_unet works in [-1, 1]: restore_image converts, so the result equals the manual computation."""
    import restorekit

    torch.manual_seed(0)
    m = restorekit.create_model("deblur_unet", base_ch=8).eval()
    img = photo("astronaut", 64)
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    with torch.no_grad():
        manual = ((m(x * 2 - 1) + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    out = restore_image(m, img, tile=0, backend="eager")
    assert np.abs(out - manual).max() < 1e-5


def test_onnxruntime_backend_matches_eager(photo, tm):
    img = photo("astronaut", 96)
    m = tm.signal_unet()
    a = restore_image(m, img, tile=64, overlap=16, backend="eager")
    b = restore_image(m, img, tile=64, overlap=16, backend="onnxruntime")
    assert np.abs(a - b).max() < 1e-4
    assert make_runtime(m, "cpu", "auto").name == "onnxruntime"  # the CPU default, and it says so


def test_caller_model_untouched(tm):
    m = tm.signal_unet()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    restore_image(m, np.zeros((40, 40, 3), np.float32), tile=32, overlap=8, backend="eager")
    assert not m.enc1.block[0].weight.is_contiguous(memory_format=torch.channels_last) or m.enc1.block[0].weight.is_contiguous()
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert not m.training


def test_ensemble_equivariant_model_unchanged(photo):
    """For a model that commutes with flips/rotations (a per-pixel 1x1 conv), the x8 ensemble equals one pass."""
    m = torch.nn.Conv2d(3, 3, 1)
    img = photo("astronaut", 48)
    a = restore_image(m, img, tile=0, backend="eager")
    b = restore_image(m, img, tile=32, overlap=8, ensemble=True, backend="eager")
    assert np.abs(a - b).max() < 1e-5


def test_ensemble_averages_transforms(photo, tm):
    """For a non-equivariant model the ensemble is the mean of the 8 transformed passes."""
    m = tm.ShallowConv()
    img = photo("astronaut", 40)
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    outs = []
    for flip in (False, True):
        for k in range(4):
            xi = torch.flip(x, (-1,)) if flip else x
            with torch.no_grad():
                y = torch.rot90(m(torch.rot90(xi, k, (-2, -1))), -k, (-2, -1))
            outs.append(torch.flip(y, (-1,)) if flip else y)
    ref = torch.stack(outs).mean(0).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    got = restore_image(m, img, tile=0, ensemble=True, backend="eager")
    assert np.abs(got - ref).max() < 1e-5
    assert np.abs(got - restore_image(m, img, tile=0, backend="eager")).max() > 1e-3


def test_progress_callback(tm):
    calls = []
    restore_image(tm.ShallowConv(), np.zeros((100, 100, 3), np.float32), tile=32, overlap=8, batch=2,
                  backend="eager", progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] == 16 and len(calls) == 8


def test_plan_tile_whole_and_errors():
    assert plan_tile(100, 80, 0, 32) == (100, 0)
    assert plan_tile(100, 80, 256, 32) == (100, 0)
    assert plan_tile(1000, 1000, 250, 0.25, multiple=16) == (240, 60)
    with pytest.raises(ConfigError, match="tile"):
        plan_tile(100, 100, "big", 32)
    with pytest.raises(ConfigError, match="blend"):
        restore_image(torch.nn.Identity(), np.zeros((8, 8, 3), np.float32), blend="box")


def test_auto_tile_from_budget(tm):
    m = tm.signal_unet()
    small = plan_tile(4096, 4096, "auto", 32, multiple=16, model=m, batch=1, memory_budget=64 << 20)[0]
    large = plan_tile(4096, 4096, "auto", 32, multiple=16, model=m, batch=1, memory_budget=1024 << 20)[0]
    assert small % 16 == 0 and large % 16 == 0 and 128 <= small < large <= 1024


class _OOMAbove(Runtime):
    """Wraps a runtime; raises CUDA-style out-of-memory for tiles wider than ``limit`` (simulated OOM)."""

    def __init__(self, inner: Runtime, limit: int) -> None:
        super().__init__(inner.info, inner.device)
        self.inner, self.limit, self.seen = inner, limit, []

    def __call__(self, x01: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x01.shape))
        if x01.shape[-1] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return self.inner(x01)


def test_oom_fallback_halves_tile(photo, tm, caplog):
    img = photo("astronaut", 256)
    m = tm.ShallowConv()
    rt = _OOMAbove(make_runtime(m, "cpu", "eager"), limit=64)
    with caplog.at_level(logging.WARNING, logger="restorekit.inference"):
        out = restore_image(rt, img, tile=256, overlap=16, batch=2)
    ref = restore_image(make_runtime(m, "cpu", "eager"), img, tile=64, overlap=16, batch=2)
    assert np.abs(out - ref).max() < 1e-6  # the retry used tile 64: same result as asking for 64
    widths = [s[-1] for s in rt.seen]
    assert widths[0] == 256 and 128 in widths and widths[-1] == 64
    assert "out of memory at tile 256" in caplog.text and "retrying the image with tile 128" in caplog.text


def test_oom_gives_up_below_minimum(tm):
    rt = _OOMAbove(make_runtime(tm.ShallowConv(), "cpu", "eager"), limit=8)
    with pytest.raises(torch.OutOfMemoryError):
        restore_image(rt, np.zeros((128, 128, 3), np.float32), tile=128, overlap=8, batch=1)


def test_other_errors_not_retried(tm):
    class Broken(Runtime):
        calls = 0

        def __call__(self, x01):
            Broken.calls += 1
            raise ValueError("broken model")

    rt = Broken(make_runtime(tm.ShallowConv(), "cpu", "eager").info, torch.device("cpu"))
    with pytest.raises(ValueError):
        restore_image(rt, np.zeros((64, 64, 3), np.float32), tile=32, overlap=8)
    assert Broken.calls == 1


def test_tlc_decision_logged(tm, caplog):
    m = tm.tiny_nafnet()
    with caplog.at_level(logging.INFO, logger="restorekit.inference"):
        restore_image(m, np.zeros((64, 64, 3), np.float32), tile=0, backend="eager")
    assert "TLC not applied to nafnet: training size unknown" in caplog.text
    set_card(m, card_of(m).with_(train_size=(64, 64)))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="restorekit.inference"):
        restore_image(m, np.zeros((64, 64, 3), np.float32), tile=0, backend="eager")
    assert "TLC not needed" in caplog.text


def test_tlc_applied_to_a_copy_for_large_tiles(tm, monkeypatch, caplog):
    """Tiles > 1.5x the training size: enable_tlc(copy, train_size=...) is called once and cached; caller untouched."""
    import sys
    import types

    calls = []

    def fake_enable_tlc(model, train_size):
        calls.append((id(model), tuple(train_size)))
        model.tlc_enabled = True
        return model

    monkeypatch.setitem(sys.modules, "restorekit.models.tlc", types.SimpleNamespace(enable_tlc=fake_enable_tlc))
    m = tm.tiny_nafnet()
    set_card(m, card_of(m).with_(train_size=(16, 16)))
    img = np.zeros((64, 48, 3), np.float32)
    with caplog.at_level(logging.INFO, logger="restorekit.inference"):
        restore_image(m, img, tile=0, backend="eager")
        restore_image(m, img, tile=0, backend="eager")
    assert len(calls) == 1 and calls[0][0] != id(m) and calls[0][1] == (16, 16)
    assert not hasattr(m, "tlc_enabled")
    assert "TLC applied to nafnet for 64x48 tiles (training size 16x16)" in caplog.text


def test_real_tlc_changes_output_and_exports(tm):
    """With restorekit.models.tlc: TLC changes NAFNet's output for large tiles, and the ONNX path agrees with eager.

    Measured: |TLC - global pooling| max 3.3e-4 (tiny random NAFNet, 128x96, train size 32); ORT vs eager 3e-7.
    """
    pytest.importorskip("restorekit.models.tlc")
    img = np.random.default_rng(0).random((128, 96, 3), dtype=np.float32)
    plain = restore_image(tm.tiny_nafnet(), img, tile=0, backend="eager")
    m = tm.tiny_nafnet()
    set_card(m, card_of(m).with_(train_size=(32, 32)))
    eager = restore_image(m, img, tile=0, backend="eager")
    onnx = restore_image(m, img, tile=0, backend="onnxruntime")
    assert np.abs(eager - plain).max() > 1e-5
    assert np.abs(onnx - eager).max() < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch,kwargs",
    [
        ("restormer", {"preset": "tiny"}),
        ("student_unet", {"base_filters": 8}),
        ("vit_restorer", {"preset": "tiny", "img_size": 64}),
        ("nafnet", {"preset": "tiny"}),
    ],
)
def test_zoo_models_default_path(arch, kwargs):
    """Every image model of the zoo restores through the default (auto) path and matches eager PyTorch.

    vit_restorer only ever runs at its native size (tiles of exactly ``img_size``), so its graph is
    exported and verified there and ONNX Runtime runs it too (an earlier round fell back to eager
    because the graph was traced at 64 px).
    """
    import restorekit

    torch.manual_seed(0)
    m = restorekit.create_model(arch, **kwargs).eval()
    img = np.random.default_rng(0).random((72, 100, 3), dtype=np.float32)
    a = restore_image(m, img, tile=48, overlap=8)
    b = restore_image(m, img, tile=48, overlap=8, backend="eager")
    assert a.shape == (72, 100, 3) and np.abs(a - b).max() < 1e-5
    assert make_runtime(m, "cpu").name == "onnxruntime"


def test_onnx_session_cached_until_weights_change(tm):
    from restorekit.inference.runtime import onnx_runtime_for

    m = tm.ShallowConv()
    a = onnx_runtime_for(m, torch.device("cpu"))
    assert onnx_runtime_for(m, torch.device("cpu")) is a
    with torch.no_grad():
        m.body[0].weight.mul_(1.5)  # an in-place update, like an optimizer step
    b = onnx_runtime_for(m, torch.device("cpu"))
    assert b is not a
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        assert float((b(x) - m(x)).abs().max()) < 1e-5
