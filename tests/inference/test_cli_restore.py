"""`restorekit restore`: folders/globs, bad files, 16-bit round trip, skip/overwrite, exported models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.cli.main import main
from restorekit.io import read_image_with_info, write_image


@pytest.fixture(scope="module")
def identity_package(tmp_path_factory) -> Path:
    """A NAFNet (width 8) package whose output is exactly its input (ending conv zeroed)."""
    import restorekit
    from restorekit.models.package import save_package

    m = restorekit.create_model("nafnet", width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]).eval()
    with torch.no_grad():
        m.ending.weight.zero_()
        m.ending.bias.zero_()
    path = tmp_path_factory.mktemp("models") / "identity.safetensors"
    save_package(m, path)
    return path


@pytest.fixture(scope="module")
def unet_package(tmp_path_factory) -> Path:
    import restorekit
    from restorekit.models.package import save_package

    torch.manual_seed(0)
    m = restorekit.create_model("deblur_unet", base_ch=8).eval()
    path = tmp_path_factory.mktemp("models") / "unet.safetensors"
    save_package(m, path)
    return path


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".tmp" in p.name]


def test_folder_with_bad_files(tmp_path, photo, unet_package, capsys):
    src = tmp_path / "in"
    src.mkdir()
    img = photo("astronaut", 96)
    write_image(src / "good1.png", img)
    write_image(src / "good2.jpg", img[:50, :70])
    (src / "notimage.png").write_bytes(b"this is not a PNG")
    (src / "empty.jpg").write_bytes(b"")
    (src / "truncated.png").write_bytes((src / "good1.png").read_bytes()[:200])
    (src / "readme.txt").write_text("ignored: not an image extension")
    out = tmp_path / "out"
    rc = main(["restore", "--model", str(unet_package), str(src), "--out", str(out), "--tile", "64", "-q", "--backend", "eager"])
    err = capsys.readouterr().err
    assert rc == 1
    assert sorted(p.name for p in out.iterdir()) == ["good1.png", "good2.jpg"]
    assert _leftovers(out) == []
    bad_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(bad_lines) == 3
    for name in ("notimage.png", "empty.jpg", "truncated.png"):
        assert sum(name in line for line in bad_lines) == 1
    assert "empty" in next(line for line in bad_lines if "empty.jpg" in line)
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((out / "good1.png").stat().st_mode) == 0o666 & ~mask
    restored, info = read_image_with_info(out / "good1.png")
    assert restored.shape == (96, 96, 3) and info.bit_depth == 8
    assert "restored 2" in err and "failed 3" in err


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip(tmp_path, photo, identity_package, ext):
    """A 16-bit input gives a 16-bit output; with an identity model every 16-bit value survives exactly."""
    img = photo("astronaut", 64)
    ramp = np.linspace(0, 1, 64 * 64, dtype=np.float64).reshape(64, 64)  # values between 8-bit levels
    src16 = np.round(np.clip(img * 0.5 + ramp[..., None] * 0.5, 0, 1) * 65535).astype(np.uint16)
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / f"deep{ext}", src16, bit_depth=16)
    rc = main(["restore", "--model", str(identity_package), str(tmp_path / "in" / f"deep{ext}"), "--out",
               str(tmp_path / "out"), "--tile", "32", "--overlap", "8", "-q"])
    assert rc == 0
    out, info = read_image_with_info(tmp_path / "out" / f"deep{ext}")
    assert info.bit_depth == 16
    assert np.array_equal(np.round(out * 65535).astype(np.uint16), src16)
    assert len(np.unique(src16[..., 0] & 0xFF)) > 200  # really 16-bit content, not 8-bit in disguise


def test_skip_existing_and_overwrite(tmp_path, photo, unet_package, capsys):
    write_image(tmp_path / "a.png", photo("astronaut", 48))
    out = tmp_path / "out"
    assert main(["restore", "-m", str(unet_package), str(tmp_path / "a.png"), "--out", str(out), "-q", "--backend", "eager"]) == 0
    (out / "a.png").write_bytes(b"sentinel")
    assert main(["restore", "-m", str(unet_package), str(tmp_path / "a.png"), "--out", str(out), "-q", "--backend", "eager"]) == 0
    assert (out / "a.png").read_bytes() == b"sentinel"
    assert "skipped 1 existing" in capsys.readouterr().err
    assert main(["restore", "-m", str(unet_package), str(tmp_path / "a.png"), "--out", str(out), "-q", "--overwrite", "--backend", "eager"]) == 0
    assert read_image_with_info(out / "a.png")[0].shape == (48, 48, 3)


def test_glob_suffix_format(tmp_path, photo, unet_package):
    for i in range(3):
        write_image(tmp_path / f"img{i}.jpg", photo("astronaut", 40 + i))
    write_image(tmp_path / "other.png", photo("astronaut", 40))
    out = tmp_path / "out"
    rc = main(["restore", "-m", str(unet_package), str(tmp_path / "img*.jpg"), "--out", str(out), "--suffix", "_r",
               "--format", "png", "-q", "--ensemble", "--blend", "cosine", "--backend", "eager"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["img0_r.png", "img1_r.png", "img2_r.png"]
    assert read_image_with_info(out / "img2_r.png")[0].shape == (42, 42, 3)


def test_missing_input_and_no_match(tmp_path, unet_package, capsys):
    rc = main(["restore", "-m", str(unet_package), str(tmp_path / "nope.png"), str(tmp_path / "*.webp"),
               "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "nope.png: file does not exist" in err and "no file matches" in err


@pytest.mark.slow
def test_exported_models_restore_like_package(tmp_path, photo, unet_package):
    """The same weights through the package, ONNX and TorchScript exports give the same pixels (to 8-bit rounding)."""
    write_image(tmp_path / "a.png", photo("astronaut", 80))
    outs = {}
    for fmt, name in (("onnx", "m.onnx"), ("torchscript", "m.pt")):
        assert main(["export", "-m", str(unet_package), "--format", fmt, "--out", str(tmp_path / name)]) == 0
    for model in (unet_package, tmp_path / "m.onnx", tmp_path / "m.pt"):
        out = tmp_path / f"out_{model.suffix[1:]}"
        assert main(["restore", "-m", str(model), str(tmp_path / "a.png"), "--out", str(out), "--tile", "48",
                     "--overlap", "16", "-q", "--backend", "eager"]) == 0
        outs[model.suffix] = read_image_with_info(out / "a.png")[0]
    assert np.abs(outs[".onnx"] - outs[".safetensors"]).max() <= 1 / 255 + 1e-6
    assert np.abs(outs[".pt"] - outs[".safetensors"]).max() <= 1 / 255 + 1e-6


def test_bad_model_name(tmp_path, capsys):
    write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.float32))
    assert main(["restore", "-m", "no_such_model", str(tmp_path / "a.png"), "--out", str(tmp_path / "o")]) == 2
    assert "no_such_model" in capsys.readouterr().err


def test_raw_files_dispatch_to_raw_helper(tmp_path, monkeypatch):
    """Raw files go to restorekit.raw.restore.restore_raw_file with a raw-model Restorer built from the flags."""
    import sys
    import types

    from restorekit.models.package import save_package
    from restorekit.models.registry import create_model

    model = create_model("nafnet_cond", chans=[8, 16], enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1])
    save_package(model, tmp_path / "raw.safetensors")
    calls = []

    def fake_restore_raw_file(restorer, path, out_path, iso="auto", **raw_options):
        calls.append({"path": path, "out": out_path, "iso": iso, "options": restorer.options, "inputs": restorer.caps.inputs,
                      "raw": raw_options})
        write_image(out_path, np.zeros((4, 4, 3), np.float32), bit_depth=16)

    fake = types.ModuleType("restorekit.raw.restore")
    fake.restore_raw_file = fake_restore_raw_file
    monkeypatch.setitem(sys.modules, "restorekit.raw.restore", fake)
    (tmp_path / "shot.dng").write_bytes(b"II*\0fake")
    rc = main(["restore", "-m", str(tmp_path / "raw.safetensors"), str(tmp_path / "shot.dng"), "--out", str(tmp_path / "o"),
               "--iso", "3200", "--strength", "0.5", "--tile", "256", "--overlap", "0.25", "-q", "--backend", "eager"])
    assert rc == 0 and len(calls) == 1
    c = calls[0]
    assert c["iso"] == 3200 and c["options"].strength == 0.5 and c["options"].tile == 256 and c["options"].overlap == 0.25
    assert "rggb" in c["inputs"]
    assert c["out"] == tmp_path / "o" / "shot.tif" and (tmp_path / "o" / "shot.tif").exists()
