"""Bayer packing, demosaicing and tone curves on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorekit.errors import DataError
from restorekit.raw.bayer import (
    demosaic,
    demosaic_bilinear,
    demosaic_malvar,
    gamma_decode,
    gamma_encode,
    mosaic_rgb,
    pack_rggb,
    srgb_decode,
    srgb_encode,
    unpack_rggb,
)


def _psnr(a: np.ndarray, b: np.ndarray, border: int = 4) -> float:
    d = (a - b)[border:-border, border:-border]
    return float(10 * np.log10(1.0 / np.mean(d**2)))


def test_pack_unpack_round_trip_numpy_and_torch(photo):
    m = mosaic_rgb(photo("astronaut", 128))
    packed = pack_rggb(m)
    assert packed.shape == (4, 64, 64)
    # channel = 2*dy + dx: R, G1, G2, B
    assert packed[0, 3, 5] == m[6, 10] and packed[1, 3, 5] == m[6, 11]
    assert packed[2, 3, 5] == m[7, 10] and packed[3, 3, 5] == m[7, 11]
    np.testing.assert_array_equal(unpack_rggb(packed), m)
    t = torch.from_numpy(np.stack([m, m[::-1].copy()]))[:, None]  # (2, 1, H, W)
    pt = pack_rggb(t)
    assert pt.shape == (2, 1, 4, 64, 64)
    assert torch.equal(unpack_rggb(pt), t)


def test_pack_refuses_odd_sizes():
    with pytest.raises(DataError, match="even"):
        pack_rggb(np.zeros((5, 8), np.float32))


def test_mosaic_samples_the_right_colours(photo):
    img = photo("coffee", 64)
    m = mosaic_rgb(img)
    assert m[0, 0] == img[0, 0, 0] and m[0, 1] == img[0, 1, 1] and m[1, 0] == img[1, 0, 1] and m[1, 1] == img[1, 1, 2]


def test_demosaic_keeps_flat_colour_exactly():
    flat = np.broadcast_to(np.array([0.3, 0.5, 0.2], np.float32), (32, 32, 3)).copy()
    for method in ("bilinear", "malvar"):
        np.testing.assert_allclose(demosaic(mosaic_rgb(flat), method), flat, atol=1e-6)


def test_demosaic_keeps_measured_samples_and_malvar_beats_bilinear(photo):
    img = photo("astronaut", 256)
    m = mosaic_rgb(img)
    bil, mal = demosaic_bilinear(m), demosaic_malvar(m)
    # sampled positions are left untouched
    assert np.allclose(bil[0::2, 0::2, 0], img[0::2, 0::2, 0]) and np.allclose(mal[1::2, 1::2, 2], img[1::2, 1::2, 2])
    p_bil, p_mal = _psnr(bil, img), _psnr(np.clip(mal, 0, 1), img)
    assert p_bil > 27.0  # measured 28.4 dB
    assert p_mal > p_bil + 2.0  # measured 32.5 dB


def test_unknown_demosaic_named():
    with pytest.raises(DataError, match="unknown demosaic method 'vng'"):
        demosaic(np.zeros((4, 4), np.float32), "vng")


def test_tone_curves_round_trip():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(gamma_decode(gamma_encode(x)), x, atol=1e-5)
    np.testing.assert_allclose(srgb_decode(srgb_encode(x)), x, atol=1e-5)
    assert abs(float(srgb_encode(np.float32(0.18))) - 0.4614) < 1e-3
