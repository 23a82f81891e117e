"""Tiled raw restoration on the packed grid, ISO from metadata, strength blending, outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from restorekit.errors import ConfigError
from restorekit.inference.options import RestoreOptions
from restorekit.io import read_image_with_info
from restorekit.raw.bayer import demosaic_bilinear
from restorekit.raw.io import read_linear_dng, read_raw, write_dng
from restorekit.raw.restore import denoise_mosaic, restore_raw_file
from restorekit.raw.unprocess import make_synthetic_scenes


class _PixelwiseRaw(nn.Module):
    """A per-pixel stand-in for nafnet_cond: mixes the residual with the (upsampled) mosaic by the condition."""

    def forward(self, rggb: torch.Tensor, cond: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        up = F.pixel_shuffle(rggb[:, [0, 1, 2, 3] * 3], 2)  # (B, 3, 2h, 2w): the mosaic value at each pixel
        c = cond[:, :, None, None]
        return residual * (1 - 0.5 * c) + 0.5 * c * up


def PixelwiseRaw() -> nn.Module:  # noqa: N802
    """The stand-in with a nafnet_cond card: its capabilities say it takes (rggb, cond, residual)."""
    from restorekit.models.spec import ModelCard, set_card

    m = _PixelwiseRaw()
    set_card(m, ModelCard(arch="nafnet_cond", args={"chans": [8, 16], "enc_blk_nums": [1], "middle_blk_num": 1,
                                                   "dec_blk_nums": [1]}))
    return m


@pytest.fixture(scope="module")
def dng(tmp_path_factory, photo):
    root = tmp_path_factory.mktemp("restore")
    make_synthetic_scenes(root, [("astro", photo("astronaut", 160))], isos=(100, 3200), seed=0)
    return root / "astro_ISO3200_synthetic.dng"


def test_tiles_blend_to_the_whole_frame_result(dng):
    m = read_raw(dng).mosaic()
    whole, residual, n1 = denoise_mosaic(PixelwiseRaw(), m, 3200, tile=0)
    tiled, _, n2 = denoise_mosaic(PixelwiseRaw(), m, 3200, tile=64, overlap=16)
    assert n1 == 1 and n2 == 9  # 80x80 packed grid, 32-pixel tiles, 8 overlap
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    # the condition reached the model: ISO 3200 -> cond 0.5 -> the residual is mixed with a quarter of the mosaic
    expect = np.clip(residual * 0.75 + 0.25 * m[..., None], 0, 1)
    np.testing.assert_allclose(whole, expect, atol=1e-6)
    half, _, _ = denoise_mosaic(PixelwiseRaw(), m, 3200, tile=64, overlap=16, strength=0.5)
    np.testing.assert_allclose(half, np.clip(residual + 0.5 * (whole - residual), 0, 1), atol=1e-6)
    none, _, _ = denoise_mosaic(PixelwiseRaw(), m, 3200, strength=0.0)
    np.testing.assert_allclose(none, np.clip(demosaic_bilinear(m), 0, 1), atol=1e-7)


def test_restore_file_outputs_and_iso(dng, tmp_path):
    info = restore_raw_file(PixelwiseRaw(), dng, tmp_path / "out.tif", tile=64, overlap=0.25)
    assert info["iso"] == 3200 and (info["width"], info["height"]) == (160, 160)
    img, meta = read_image_with_info(tmp_path / "out.tif")
    assert meta.bit_depth == 16 and img.shape == (160, 160, 3)
    info = restore_raw_file(PixelwiseRaw(), dng, tmp_path / "out.dng", iso=6400)
    assert info["iso"] == 6400
    lin = read_linear_dng(tmp_path / "out.dng")
    m = read_raw(dng).mosaic()
    expect, _, _ = denoise_mosaic(PixelwiseRaw(), m, 6400)
    assert np.abs(lin - expect).max() < 1e-4
    from restorekit.raw.io import read_iso

    assert read_iso(tmp_path / "out.dng") == 6400


def test_restore_errors(tmp_path, dng):
    write_dng(tmp_path / "noiso.dng", np.full((32, 32), 1000, np.uint16))
    with pytest.raises(ConfigError, match="no ISO"):
        restore_raw_file(PixelwiseRaw(), tmp_path / "noiso.dng", tmp_path / "o.tif")
    with pytest.raises(ConfigError, match="strength"):
        restore_raw_file(PixelwiseRaw(), dng, tmp_path / "o.tif", strength=1.5)
    with pytest.raises(ConfigError, match="iso"):
        restore_raw_file(PixelwiseRaw(), dng, tmp_path / "o.tif", iso="loud")


def test_nafnet_cond_through_the_cli(tmp_path, photo):
    from restorekit.cli.main import main
    from restorekit.models.package import save_package
    from restorekit.models.registry import create_model

    make_synthetic_scenes(tmp_path / "in", [("cat", photo("chelsea", 64))], isos=(100, 1600), seed=0)
    model = create_model("nafnet_cond", chans=[8, 16, 32], enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1])
    save_package(model, tmp_path / "raw.safetensors")
    rc = main(["restore", "--model", str(tmp_path / "raw.safetensors"), str(tmp_path / "in" / "cat_ISO1600_synthetic.dng"),
               "--out", str(tmp_path / "out"), "--iso", "auto", "--strength", "0.8", "--tile", "32", "--overlap", "8"])
    assert rc == 0
    img, meta = read_image_with_info(tmp_path / "out" / "cat_ISO1600_synthetic.tif")
    assert img.shape == (64, 64, 3) and meta.bit_depth == 16


# ------------------------------------------------------------------ the seed's colour path (lin_rec2020, Malvar)
def test_lin_rec2020_matrix_of_known_cameras():
    from restorekit.raw.bayer import XYZ_TO_LIN_REC2020, camera_to_space_matrix
    from restorekit.raw.io import XYZ_TO_SRGB

    # a camera whose sensor is linear sRGB: camera -> Rec.2020 is the BT.709 -> BT.2020 matrix of ITU-R BT.2087
    bt2087 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])
    np.testing.assert_allclose(camera_to_space_matrix(XYZ_TO_SRGB, "lin_rec2020"), bt2087, atol=2e-3)
    # a camera that already sees Rec.2020, and the camera space itself, are identities
    np.testing.assert_allclose(camera_to_space_matrix(XYZ_TO_LIN_REC2020, "lin_rec2020"), np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(camera_to_space_matrix(np.zeros((3, 3)), "camera"), np.eye(3))
    from restorekit.errors import DataError

    with pytest.raises(DataError, match="singular"):
        camera_to_space_matrix(np.zeros((3, 3)), "lin_rec2020")
    with pytest.raises(DataError, match="lin_rec2020"):
        camera_to_space_matrix(np.eye(3), "prophoto")


def test_mosaic_to_space_matches_converting_the_image_first(photo):
    from restorekit.raw.bayer import XYZ_TO_LIN_REC2020, camera_to_space_matrix, mosaic_rgb, mosaic_to_space, rgb_to_space
    from restorekit.raw.io import XYZ_TO_SRGB

    t = camera_to_space_matrix(XYZ_TO_SRGB, "lin_rec2020")
    flat = np.broadcast_to(np.array([0.2, 0.5, 0.3], np.float32), (8, 8, 3)).copy()
    # on a flat colour the per-quad conversion of the mosaic is the mosaic of the converted image
    np.testing.assert_allclose(mosaic_to_space(mosaic_rgb(flat), t), mosaic_rgb(rgb_to_space(flat, t)), atol=1e-6)
    img = photo("coffee", 64) * 0.8
    m = mosaic_to_space(mosaic_rgb(img), t)
    assert m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
    # the inverse maps converted pixels back to camera RGB
    np.testing.assert_allclose(rgb_to_space(rgb_to_space(img, t), np.linalg.inv(t)), img, atol=1e-5)
    assert not np.allclose(XYZ_TO_LIN_REC2020, XYZ_TO_SRGB)


_SEEN: dict[str, torch.Tensor] = {}


class _RecordingIdentity(nn.Module):
    """Returns its residual and keeps the last inputs in ``_SEEN`` (what the model saw, even from a copy)."""

    def forward(self, rggb: torch.Tensor, cond: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        _SEEN.update(rggb=rggb.clone(), residual=residual.clone())
        return residual


def test_restore_in_lin_rec2020_with_malvar(dng, tmp_path):
    from restorekit.models.spec import ModelCard, set_card
    from restorekit.raw.bayer import camera_to_space_matrix, demosaic_malvar, mosaic_to_space, pack_rggb, xyz_to_cam_matrix

    model = _RecordingIdentity()
    set_card(model, ModelCard(arch="nafnet_cond", args={"chans": [8, 16], "enc_blk_nums": [1], "middle_blk_num": 1,
                                                       "dec_blk_nums": [1]}))
    raw = read_raw(dng)
    m = raw.mosaic()
    t = camera_to_space_matrix(xyz_to_cam_matrix(raw), "lin_rec2020")
    # the synthetic DNG's matrix is its cam_to_srgb composed with sRGB -> XYZ: not the identity
    assert np.abs(t - np.eye(3)).max() > 0.1
    from restorekit.inference.restorer import Restorer

    eager = Restorer.from_module(model, RestoreOptions.parse(backend="eager", tile=0))  # the module itself runs
    out, residual, _ = denoise_mosaic(eager, m, 3200, demosaic="malvar", space_matrix=t)
    rec = mosaic_to_space(m, t)
    np.testing.assert_allclose(_SEEN["rggb"][0].numpy(), pack_rggb(rec), atol=1e-6)
    np.testing.assert_allclose(_SEEN["residual"][0].permute(1, 2, 0).numpy(), np.clip(demosaic_malvar(rec), 0, 1),
                               atol=1e-6)
    # the result comes back to camera RGB through the inverse matrix ...
    from restorekit.raw.bayer import rgb_to_space

    back = np.clip(rgb_to_space(np.clip(demosaic_malvar(rec), 0, 1), np.linalg.inv(t)), 0, 1)
    np.testing.assert_allclose(out, back, atol=1e-5)
    # ... closer to the camera-space Malvar demosaic than the Rec.2020 image is (quads mix G1/G2 and clip: not equal)
    ref = np.clip(demosaic_malvar(m), 0, 1)
    assert np.abs(out - ref).mean() < 0.5 * np.abs(np.clip(demosaic_malvar(rec), 0, 1) - ref).mean()
    np.testing.assert_allclose(out, residual, atol=1e-6)
    info = restore_raw_file(model, dng, tmp_path / "rec.dng", demosaic="malvar", color_space="lin_rec2020", tile=0)
    assert info["color_space"] == "lin_rec2020" and info["demosaic"] == "malvar"
    np.testing.assert_allclose(read_linear_dng(tmp_path / "rec.dng"), out, atol=1e-4)
    with pytest.raises(ConfigError, match="--color-space"):
        restore_raw_file(model, dng, tmp_path / "o.tif", color_space="srgb")
    with pytest.raises(ConfigError, match="--demosaic"):
        restore_raw_file(model, dng, tmp_path / "o.tif", demosaic="ahd")


def test_cli_colour_flags_reach_the_raw_path(tmp_path, dng):
    from restorekit.cli.main import main
    from restorekit.raw.bayer import camera_to_space_matrix, xyz_to_cam_matrix
    from restorekit.models.package import save_package
    from restorekit.models.registry import create_model

    model = create_model("nafnet_cond", chans=[8, 16, 32], enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1])
    save_package(model, tmp_path / "raw.safetensors")
    args = ["restore", "--model", str(tmp_path / "raw.safetensors"), str(dng), "--tile", "0", "--format", "tif", "-q"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b"), "--demosaic", "malvar", "--color-space", "lin_rec2020"]) == 0
    a = read_image_with_info(tmp_path / "a" / f"{dng.stem}.tif")[0]
    b = read_image_with_info(tmp_path / "b" / f"{dng.stem}.tif")[0]
    from restorekit.raw.bayer import render_srgb

    raw = read_raw(dng)
    t = camera_to_space_matrix(xyz_to_cam_matrix(raw), "lin_rec2020")
    expect, _, _ = denoise_mosaic(model, raw.mosaic(), 3200, tile=0, demosaic="malvar", space_matrix=t)
    assert np.abs(b - render_srgb(expect, raw.wb, raw.cam_to_srgb)).max() < 2e-3
    assert np.abs(a - b).mean() > 1e-4  # the flags changed what the model saw
