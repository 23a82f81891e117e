"""Synthetic raw: unprocessing real photos and the ISO-dependent Poisson-Gaussian noise model."""

from __future__ import annotations

import numpy as np
import pytest

from restorekit.raw.bayer import demosaic_bilinear, render_srgb
from restorekit.raw.io import read_raw
from restorekit.raw.unprocess import DEFAULT_NOISE, NoiseModel, make_synthetic_scenes, unprocess


def test_noise_parameters_follow_iso_as_documented():
    nm = NoiseModel()
    assert nm.shot(100) == pytest.approx(1.2e-4) and nm.shot(6400) == pytest.approx(64 * 1.2e-4)
    assert nm.read(6400) == pytest.approx(2e-11 * 6400**2 + 1e-6)
    assert nm.read(3200) - nm.read_floor == pytest.approx((nm.read(6400) - nm.read_floor) / 4)


@pytest.mark.parametrize("level", [0.05, 0.3])
def test_empirical_variance_matches_model_and_grows_with_iso(level):
    rng = np.random.default_rng(0)
    clean = np.full((256, 256), level, np.float32)
    measured = []
    for iso in (100, 400, 1600, 6400):
        noisy = DEFAULT_NOISE.sample(clean, iso, rng)
        var = float(np.var(noisy))
        expected = DEFAULT_NOISE.variance(level, iso)
        assert var == pytest.approx(expected, rel=0.05), (iso, var, expected)
        assert abs(float(noisy.mean()) - level) < 4 * np.sqrt(expected / clean.size)  # unbiased
        measured.append(var)
    assert all(b > 2.5 * a for a, b in zip(measured, measured[1:]))  # strictly and clearly growing


def test_noise_is_heteroscedastic():
    rng = np.random.default_rng(1)
    ramp = np.repeat(np.array([0.02, 0.5], np.float32), 128 * 128).reshape(2, 128, 128)
    noisy = DEFAULT_NOISE.sample(ramp, 3200, rng)
    v_dark, v_bright = np.var(noisy[0]), np.var(noisy[1])
    assert v_bright > 3 * v_dark
    assert v_dark == pytest.approx(DEFAULT_NOISE.variance(0.02, 3200), rel=0.06)


def test_unprocess_inverts_the_rendering(photo):
    img = photo("astronaut", 128)
    up = unprocess(img, wb=(2.0, 1.0, 1.7))
    assert up.mosaic.shape == (128, 128) and up.mosaic.min() >= 0 and up.mosaic.max() <= 1
    # green is the largest raw channel after the inverse white balance (as in real raw files)
    assert up.camera_rgb[..., 1].mean() > up.camera_rgb[..., 0].mean()
    back = render_srgb(up.camera_rgb, up.wb, up.cam_to_srgb)
    ok = (img > 0.02).all(axis=2) & (img < 0.98).all(axis=2)
    assert ok.mean() > 0.5
    err = np.abs(back - img).max(axis=2)[ok]
    # exact except a few saturated colours that fall outside the camera gamut (clipped at 0)
    assert np.mean(err < 1e-4) > 0.95 and float(err.mean()) < 2e-3
    # the demosaiced mosaic renders close to the photo too (only demosaic error left)
    rendered = render_srgb(demosaic_bilinear(up.mosaic), up.wb, up.cam_to_srgb)
    psnr = 10 * np.log10(1 / np.mean((rendered[4:-4, 4:-4] - img[4:-4, 4:-4]) ** 2))
    assert psnr > 25.0


def test_synthetic_scenes_are_real_dngs(tmp_path, photo):
    paths = make_synthetic_scenes(tmp_path, [("astro", photo("astronaut", 64))], isos=(100, 1600, 6400), seed=3)
    assert [p.name for p in paths] == ["astro_ISO100_synthetic.dng", "astro_ISO1600_synthetic.dng", "astro_ISO6400_synthetic.dng"]
    frames = {p.name: read_raw(p) for p in paths}
    gt = frames["astro_ISO100_synthetic.dng"]
    assert gt.iso == 100 and gt.pattern == "RGGB" and gt.black_level.tolist() == [512] * 4 and gt.white_level == 16383
    up = unprocess(photo("astronaut", 64), rng=__import__("restorekit.utils.seed", fromlist=["x"]).sample_rng(3, "unprocess", "astro"))
    # ground truth is the clean mosaic, quantised to 14 bits
    assert np.abs(gt.mosaic() - up.mosaic).max() < 1.0 / (16383 - 512)
    errs = [float(np.std(frames[f"astro_ISO{iso}_synthetic.dng"].mosaic(clip=False) - gt.mosaic())) for iso in (1600, 6400)]
    assert errs[1] > 1.5 * errs[0]
    assert frames["astro_ISO6400_synthetic.dng"].iso == 6400
