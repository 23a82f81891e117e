"""int8 ONNX export: static QDQ quantization calibrated on real photos, verified against the fp32 graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from restorekit.errors import ConfigError, ImageReadError
from restorekit.export.onnx import onnx_bytes
from restorekit.export.quantize import (
    CALIBRATION_PHOTOS,
    VERIFY_PHOTOS,
    QuantizeError,
    export_int8,
    image_crops,
    psnr01,
    quantize_int8,
    run_onnx01,
    skimage_photo,
    verify_int8,
    _session,
)


@pytest.fixture(scope="module")
def unet_fp32(tm) -> bytes:
    return onnx_bytes(tm.signal_unet(norm="group"))


@pytest.fixture(scope="module")
def unet_int8(unet_fp32, tmp_path_factory):
    out = tmp_path_factory.mktemp("q") / "u.int8.onnx"
    return quantize_int8(unet_fp32, out, crop_size=64)


def test_graph_is_int8_qdq_per_channel_with_metadata(unet_fp32, unet_int8) -> None:
    q = onnx.load(str(unet_int8.path))
    ops = [n.op_type for n in q.graph.node]
    fp32 = onnx.load_from_string(unet_fp32)
    n_conv = sum(n.op_type == "Conv" for n in fp32.graph.node)
    assert ops.count("QuantizeLinear") >= n_conv and ops.count("DequantizeLinear") >= 2 * n_conv
    inits = {i.name: i for i in q.graph.initializer}
    int8_weights = [i for i in inits.values() if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4]
    assert len(int8_weights) == n_conv  # every conv weight stored as int8
    # per-channel: each weight's scale has one entry per output channel
    for node in q.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in {w.name for w in int8_weights}:
            w = inits[node.input[0]]
            scale = onnx.numpy_helper.to_array(inits[node.input[1]])
            assert scale.shape == (w.dims[0],) and np.all(scale > 0)
    meta = {p.key: p.value for p in q.metadata_props}
    assert meta["restorekit.json"] == {p.key: p.value for p in fp32.metadata_props}["restorekit.json"]
    assert "per_channel=True" in meta["restorekit.quantization"]
    assert unet_int8.n_calibration_crops == 2 * len(CALIBRATION_PHOTOS)
    assert unet_int8.size_bytes < 0.45 * unet_int8.fp32_size_bytes  # int8 weights: ~4x smaller


def test_int8_close_to_fp32_on_held_out_photos(unet_fp32, unet_int8) -> None:
    psnr, names = verify_int8(unet_fp32, unet_int8.path, size=64)
    assert set(names) == {f"skimage:{n}" for n in VERIFY_PHOTOS}
    assert not set(VERIFY_PHOTOS) & set(CALIBRATION_PHOTOS)
    assert psnr > 33.0, psnr
    # the quantization error is far below the model's own change to the image
    x = image_crops([("astronaut", skimage_photo("astronaut"))], 64, 1)[0][None]
    y32 = run_onnx01(_session(unet_fp32), x, "-1,1")
    y8 = run_onnx01(_session(unet_int8.path), x, "-1,1")
    assert psnr01(y8, y32) > psnr01(x, y32) + 10
    with pytest.raises(QuantizeError, match="too far from fp32"):
        verify_int8(unet_fp32, unet_int8.path, size=64, min_psnr_db=psnr + 1)


@pytest.mark.slow
def test_calibration_matters(unet_fp32, tmp_path) -> None:
    """Calibrating on flat grey images gives wrong activation ranges: clearly worse than on photos."""
    import cv2

    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"g{i}.png"), np.full((64, 64, 3), 120 + i, np.uint8))
    good = quantize_int8(unet_fp32, tmp_path / "good.onnx", crop_size=64)
    bad = quantize_int8(unet_fp32, tmp_path / "bad.onnx", crop_size=64, calibration=folder)
    assert bad.calibration == [str(folder / "g0.png"), str(folder / "g1.png")]
    p_good, _ = verify_int8(unet_fp32, good.path, size=64)
    p_bad, _ = verify_int8(unet_fp32, bad.path, size=64)
    assert p_good > p_bad + 3, (p_good, p_bad)


@pytest.mark.slow
def test_nafnet_int8_export_and_cli(tm, tmp_path, capsys) -> None:
    from restorekit.cli.main import main
    from restorekit.inference.runtime import OnnxRuntime
    from restorekit.models.package import save_package

    model = tm.tiny_nafnet()
    res = export_int8(model, tmp_path / "n.onnx", min_psnr_db=30.0)
    assert res.psnr_vs_fp32_db is not None and res.psnr_vs_fp32_db > 30.0
    rt = OnnxRuntime(res.path, torch.device("cpu"))  # restorekit runs it like any export (metadata kept)
    x = torch.from_numpy(image_crops([("coffee", skimage_photo("coffee"))], 64, 1)[0][None])
    with torch.inference_mode():
        ref = model(x)
    assert psnr01(rt(x).numpy(), ref.numpy()) > 30.0

    src = tmp_path / "m.safetensors"
    save_package(tm.signal_unet(norm="group"), src)
    out = tmp_path / "cli.int8.onnx"
    assert main(["export", "-m", str(src), "--format", "onnx", "--quantize", "int8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "onnx int8" in printed and "dB PSNR vs fp32 on 3 held-out photos" in printed and out.is_file()


def test_bad_inputs_fail_clearly(tm, tmp_path, capsys) -> None:
    from restorekit.cli.main import main
    from restorekit.models.package import save_package

    src = tmp_path / "m.safetensors"
    save_package(tm.signal_unet(norm="group"), src)
    assert main(["export", "-m", str(src), "--quantize", "int8", "--out", str(tmp_path / "m.pt")]) != 0
    assert "--quantize int8 needs --format onnx" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="no image files"):
        quantize_int8(onnx_bytes(tm.signal_unet()), tmp_path / "x.onnx", calibration=tmp_path)
    bad = tmp_path / "cal"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="broken.png"):
        quantize_int8(onnx_bytes(tm.signal_unet()), tmp_path / "x.onnx", calibration=bad)
    with pytest.raises(ConfigError, match="not a folder"):
        quantize_int8(onnx_bytes(tm.signal_unet()), tmp_path / "x.onnx", calibration=tmp_path / "missing")
    assert not (tmp_path / "x.onnx").exists()
