"""Image I/O: every mode and depth reads into float32 RGB [0,1]; bad files fail naming the file."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from restorekit.errors import ImageReadError, ImageWriteError
from restorekit.io import decode_image, image_to_tensor, read_image, read_image_with_info, tensor_to_image, write_image


@pytest.fixture()
def rgb8(photo) -> np.ndarray:
    return np.round(photo("astronaut", 64) * 255).astype(np.uint8)


def _save_pil(path: Path, im: Image.Image, **kw) -> Path:
    im.save(path, **kw)
    return path


@pytest.mark.parametrize("ext,lossless", [(".png", True), (".bmp", True), (".tif", True), (".webp", False), (".jpg", False)])
def test_rgb8_formats(tmp_path, rgb8, ext, lossless):
    kw = {"quality": 95} if ext in (".jpg", ".webp") else {}
    p = _save_pil(tmp_path / f"a{ext}", Image.fromarray(rgb8), **kw)
    arr, info = read_image_with_info(p)
    assert arr.dtype == np.float32 and arr.shape == (64, 64, 3)
    assert 0.0 <= arr.min() and arr.max() <= 1.0
    err = np.abs(arr - rgb8 / 255.0).mean()
    if lossless:
        assert err < 1e-7
    else:
        assert err < 0.03
    assert info.bit_depth == 8 and (info.width, info.height) == (64, 64)


def test_grey_palette_rgba_cmyk(tmp_path, rgb8):
    base = Image.fromarray(rgb8)
    grey = _save_pil(tmp_path / "g.png", base.convert("L"))
    g = read_image(grey)
    assert np.allclose(g[..., 0], g[..., 1]) and np.allclose(g[..., 1], g[..., 2])
    assert np.allclose(g[..., 0], np.asarray(base.convert("L")) / 255.0, atol=1e-6)

    pal = base.convert("P", palette=Image.ADAPTIVE, colors=64)
    p = read_image(_save_pil(tmp_path / "p.png", pal))
    assert np.allclose(p, np.asarray(pal.convert("RGB")) / 255.0, atol=1e-6)

    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    a, info = read_image_with_info(_save_pil(tmp_path / "a.png", rgba))
    assert info.has_alpha and np.allclose(a, rgb8 / 255.0, atol=1e-6)  # alpha dropped, colour kept

    cmyk = base.convert("CMYK")
    c = read_image(_save_pil(tmp_path / "c.jpg", cmyk, quality=98))
    assert np.abs(c - np.asarray(cmyk.convert("RGB")) / 255.0).mean() < 0.03

    la = base.convert("LA")
    assert read_image(_save_pil(tmp_path / "la.png", la)).shape == (64, 64, 3)


def test_16bit_png_and_tiff_keep_precision(tmp_path, photo):
    img = photo("coffee", 48)
    for ext in (".png", ".tif"):
        p = write_image(tmp_path / f"x16{ext}", img, bit_depth=16)
        back, info = read_image_with_info(p)
        assert info.bit_depth == 16
        assert np.abs(back - img).max() < 1.0 / 65535 + 1e-7  # 16-bit quantisation only
    grey16 = (np.linspace(0, 65535, 48 * 48).reshape(48, 48)).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    g = read_image(tmp_path / "g16.png")
    assert np.allclose(g[..., 0], grey16 / 65535.0, atol=1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    rng = np.random.default_rng(orientation)
    arr = rng.integers(0, 255, size=(20, 32, 3), dtype=np.uint8)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    p = tmp_path / f"o{orientation}.png"
    im.save(p, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB")) / 255.0
    got = read_image(p)
    assert got.shape == expected.shape
    assert np.allclose(got, expected, atol=1e-6)


def test_write_formats_roundtrip(tmp_path, photo):
    img = photo("chelsea", 40)
    for ext in (".png", ".tif", ".bmp"):
        back = read_image(write_image(tmp_path / f"o{ext}", img))
        assert np.abs(back - img).max() <= 0.5 / 255 + 1e-6
    jpg = read_image(write_image(tmp_path / "o.jpg", img, quality=95))
    assert np.abs(jpg - img).mean() < 0.02
    with pytest.raises(ImageWriteError, match="unsupported extension"):
        write_image(tmp_path / "o.xyz", img)
    with pytest.raises(ImageWriteError, match="16-bit"):
        write_image(tmp_path / "o16.jpg", img, bit_depth=16)
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_tensor_conversions(photo):
    img = photo("astronaut", 16)
    t = image_to_tensor(img)
    assert tuple(t.shape) == (3, 16, 16)
    assert np.allclose(tensor_to_image(t[None]), img)
    assert np.allclose(image_to_tensor(np.round(img * 255).astype(np.uint8)).numpy().transpose(1, 2, 0), np.round(img * 255) / 255)


# ---- bad files: one error type naming the file and the cause -------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"nope\.png.*does not exist"):
        read_image(tmp_path / "nope.png")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.png.*empty"):
        read_image(p)


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is plain text, not a JPEG")
    with pytest.raises(ImageReadError, match=r"notes\.jpg.*not a recognised image"):
        read_image(p)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_truncated(tmp_path, photo, ext):
    p = write_image(tmp_path / f"full{ext}", photo("astronaut", 128))
    data = p.read_bytes()
    t = tmp_path / f"trunc{ext}"
    t.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=rf"trunc\{ext}.*(truncated|corrupt|decode)"):
        read_image(t)


def test_decompression_bomb_refused_before_decoding(tmp_path):
    # A 20000 x 20000 grey PNG compresses to a few hundred KB; refuse it from the header.
    im = Image.new("L", (20000, 20000))
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=9)
    p = tmp_path / "bomb.png"
    p.write_bytes(buf.getvalue())
    with pytest.raises(ImageReadError, match=r"bomb\.png.*too many pixels"):
        read_image(p, max_pixels=50_000_000)
    with pytest.raises(ImageReadError, match="too many pixels"):
        decode_image(p.read_bytes(), name="upload", max_pixels=1000)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)


def test_write_is_atomic_on_failure(tmp_path, photo, monkeypatch):
    dest = tmp_path / "keep.png"
    write_image(dest, photo("astronaut", 16))
    before = dest.read_bytes()

    import restorekit.io.image as mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(mod.Path, "write_bytes", boom)
    with pytest.raises(ImageWriteError, match="disk full"):
        write_image(dest, photo("coffee", 16))
    monkeypatch.undo()
    assert dest.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["keep.png"]
