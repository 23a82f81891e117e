"""The shared inference core: same pixels and bytes as `restorekit restore`, limits, parsing, model store."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from restorekit.errors import CheckpointError, ConfigError, ImageReadError
from restorekit.io import decode_image, encode_image, read_image, write_image
from restorekit.inference.options import RestoreOptions
from restorekit.serve.core import (
    Limits,
    ModelStore,
    UploadTooLargeError,
    decode_base64_image,
    decode_upload,
    discover_models,
    probe_upload,
    normalize_format,
    request_options,
    quality_metrics,
    restore_array,
    restore_bytes,
    seed_json_response,
)


def _cli_restore(tmp_path, model, src, *extra: str):
    from restorekit.cli.main import main

    out = tmp_path / "cli_out"
    rc = main(["restore", "--model", str(model), str(src), "--out", str(out), "--quiet", *extra])
    assert rc == 0
    (dest,) = sorted(out.iterdir())
    return dest


def test_core_equals_the_cli_with_default_settings(tmp_path, small_package, small_loaded, photo):
    src = tmp_path / "in" / "astronaut.png"
    src.parent.mkdir()
    write_image(src, photo("astronaut", None)[:200, :232])  # not a multiple of 16
    res = restore_bytes(small_loaded, src.read_bytes(), name=src.name)
    assert res.image.shape == (200, 232, 3) and res.size == "232x200"
    assert 0.0 <= res.image.min() and res.image.max() <= 1.0
    assert _cli_restore(tmp_path, small_package, src).read_bytes() == res.data  # byte-identical PNG


def test_core_equals_restore_image_and_the_cli_when_tiled(tmp_path, small_package, small_loaded, photo):
    from restorekit.inference import restore_image
    from restorekit.models.loading import load_model

    src = tmp_path / "in" / "astronaut.png"
    src.parent.mkdir()
    write_image(src, photo("astronaut", None)[:200, :232])
    # 96 px tiles, 24 px overlap: 3x3 tiles, so tiling and blending are part of the comparison
    options = RestoreOptions(tile=96, overlap=24, blend="cosine", backend="eager")
    res = restore_bytes(small_loaded, src.read_bytes(), name=src.name, options=options)
    direct = restore_image(load_model(small_package), read_image(src), tile=96, overlap=24, blend="cosine", backend="eager")
    assert np.array_equal(res.image, direct)
    cli = _cli_restore(tmp_path, small_package, src, "--tile", "96", "--overlap", "24", "--blend", "cosine", "--backend", "eager")
    assert cli.read_bytes() == res.data
    # the tiles matter: a whole-image pass gives different pixels
    whole = restore_array(small_loaded, read_image(src), RestoreOptions(tile=0, backend="eager"))
    assert not np.array_equal(whole, res.image)


def test_16_bit_input_gives_16_bit_output_like_the_cli(tmp_path, small_package, small_loaded, photo):
    src = tmp_path / "in" / "coffee16.png"
    src.parent.mkdir()
    write_image(src, photo("coffee", 64), bit_depth=16)
    res = restore_bytes(small_loaded, src.read_bytes(), name=src.name, options=RestoreOptions(backend="eager"))
    out, info = decode_image(res.data)
    assert info.bit_depth == 16
    assert res.data == _cli_restore(tmp_path, small_package, src, "--backend", "eager").read_bytes()
    jpeg = restore_bytes(small_loaded, src.read_bytes(), name=src.name, out_format="jpeg", options=RestoreOptions(backend="eager"))
    assert decode_image(jpeg.data)[1].bit_depth == 8


def test_decode_upload_limits_and_errors(astronaut_png):
    img, info = decode_upload(astronaut_png, name="a.png")
    assert img.shape == (128, 128, 3) and info.format == "PNG"
    with pytest.raises(UploadTooLargeError, match="over the limit of 1,000 bytes") as e:
        decode_upload(astronaut_png, name="a.png", limits=Limits(max_upload_bytes=1000))
    assert e.value.limit == "bytes"
    with pytest.raises(UploadTooLargeError, match=r"128x128 = 16,384 exceeds the limit of 10,000") as e:
        decode_upload(astronaut_png, name="a.png", limits=Limits(max_pixels=10_000))
    assert e.value.limit == "pixels" and "a.png" in str(e.value)
    for bad, reason in [(b"", "empty"), (b"hello", "not a recognised image"), (astronaut_png[:300], "a.png")]:
        with pytest.raises(ImageReadError, match=reason):
            decode_upload(bad, name="a.png")
    with pytest.raises(ConfigError, match="max_pixels"):
        Limits(max_pixels=0)


def test_probe_reads_only_the_header(astronaut_png, coffee_jpeg):
    assert probe_upload(astronaut_png) == (128, 128, "PNG")
    assert probe_upload(coffee_jpeg, name="c.jpg") == (96, 96, "JPEG")
    # truncated pixel data passes the probe (found when decoding), a broken header does not
    assert probe_upload(astronaut_png[:200]) == (128, 128, "PNG")
    with pytest.raises(ImageReadError, match="x.png"):
        decode_upload(astronaut_png[:200], name="x.png")
    for bad, exc, msg in [
        (b"", ImageReadError, "empty"),
        (b"GIF89a-but-not-really", ImageReadError, "not a recognised image format"),
        (astronaut_png, UploadTooLargeError, "16,384 exceeds the limit of 100"),
    ]:
        with pytest.raises(exc, match=msg):
            probe_upload(bad, name="p.png", limits=Limits(max_pixels=100))


def test_base64_and_seed_json(small_loaded, astronaut_png):
    b64 = base64.b64encode(astronaut_png).decode()
    assert decode_base64_image(b64) == astronaut_png
    assert decode_base64_image(f"data:image/png;base64,{b64}") == astronaut_png
    assert decode_base64_image(b64.rstrip("=")) == astronaut_png  # missing padding tolerated
    for bad in ["%%%", "", 42, "data:image/png,abc"]:
        with pytest.raises(ImageReadError):
            decode_base64_image(bad)
    res = restore_bytes(small_loaded, astronaut_png, out_format="jpeg", quality=90)
    body = seed_json_response(res, astronaut_png, seconds=1.234)
    assert list(body) == ["success", "deblurred_image", "original_image", "processing_time", "image_size"]
    assert body["processing_time"] == "1.2s" and body["image_size"] == "128x128"
    assert body["original_image"] == f"data:image/png;base64,{b64}"
    assert base64.b64decode(body["deblurred_image"].split(",", 1)[1]) == res.data


def test_request_options_are_validated_like_the_cli():
    base = RestoreOptions(backend="eager", device="cpu")
    assert request_options(base, {}) is base
    got = request_options(base, {"tile": "256", "overlap": "0.25", "blend": "cosine", "strength": "0.5", "model": None})
    assert (got.tile, got.overlap, got.blend, got.strength, got.backend) == (256, 0.25, "cosine", 0.5, "eager")
    assert request_options(base, {"tile": "auto", "overlap": ""}).tile == "auto"
    for values, flag in [({"tile": "8"}, "--tile"), ({"tile": "big"}, "--tile"), ({"overlap": "1.5"}, "--overlap"),
                         ({"overlap": "-3"}, "--overlap"), ({"blend": "x"}, "--blend"), ({"strength": "2"}, "--strength"),
                         ({"tile": "64", "overlap": "64"}, "--overlap")]:
        with pytest.raises(ConfigError, match=flag):
            request_options(base, values)
    with pytest.raises(ConfigError, match="unknown restore option.*device"):  # the device is the server's
        request_options(base, {"device": "cuda"})
    assert normalize_format("JPG") == "jpeg" and normalize_format(".tif") == "tiff" and normalize_format(None) == "png"
    with pytest.raises(ConfigError, match="format"):
        normalize_format("gif")


def test_model_store_discovery_and_caching(tmp_path, small_package):
    import shutil

    d = tmp_path / "zoo"
    d.mkdir()
    shutil.copy(small_package, d / "a.safetensors")
    shutil.copy(small_package, d / "b.safetensors")
    (d / "notes.txt").write_text("not a model")
    (d / "b.onnx").write_bytes(b"\x08")  # listed by suffix; loading it would fail (answered 500 by the service)
    found = discover_models([small_package], d)
    assert list(found) == ["deblur_small", "a", "b", "b.safetensors"]  # sorted: b.onnx first; a clash keeps the suffix
    store = ModelStore([small_package], d, device="cpu")
    assert store.default_name == "deblur_small" and not store.is_loaded("a")
    m1, m2 = store.get("a"), store.get("a")
    assert m1 is m2 and store.is_loaded("a")
    assert m1.arch == "deblur_unet" and m1.value_range == "-1,1" and m1.params == sum(p.numel() for p in m1.restorer.module.parameters())
    desc = {e["name"]: e for e in store.describe()}
    assert desc["a"]["loaded"] and not desc["b"]["loaded"] and desc["deblur_small"]["default"]
    with pytest.raises(ConfigError, match="unknown model 'zzz'"):
        store.get("zzz")
    with pytest.raises(CheckpointError, match="missing.safetensors"):
        ModelStore([tmp_path / "missing.safetensors"])
    with pytest.raises(ConfigError, match="models_dir"):
        discover_models([], tmp_path / "nope")


def test_quality_metrics_match_scikit_image(photo):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ref = photo("astronaut", 96)
    noisy = np.clip(ref + np.random.default_rng(1).normal(0, 0.05, ref.shape), 0, 1).astype(np.float32)
    m = quality_metrics(noisy, ref)
    assert m["psnr"] == pytest.approx(peak_signal_noise_ratio(ref, noisy, data_range=1.0), abs=1e-4)
    sk = structural_similarity(ref, noisy, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert m["ssim"] == pytest.approx(sk, abs=1e-4)
    assert 20 < m["psnr"] < 32
    with pytest.raises(ConfigError, match="reference image is 96x96"):
        quality_metrics(noisy[:50], ref)


def test_restore_array_accepts_a_progress_callback(small_loaded, photo):
    calls: list[tuple[int, int]] = []
    out = restore_array(small_loaded, photo("camera", 80), RestoreOptions(tile=48, overlap=16), progress=lambda d, t: calls.append((d, t)))
    assert out.shape == (80, 80, 3)
    assert calls and calls[-1][0] == calls[-1][1] and calls[-1][1] >= 4
    assert encode_image(out, "PNG")[:4] == b"\x89PNG"
