"""Tiled raw restoration on the packed grid, ISO from metadata, strength blending, outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from restorekit.errors import ConfigError
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
