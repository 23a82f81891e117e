"""Blur kernels and presets checked by what they do to real pixels (catch silent recipe changes).

Measured on this code: a 21 px trajectory kernel has a median minor-axis spread of 0.67 px over
30 draws (a straight line of the same length: at most 0.43 px, its anti-aliasing); gamma 2.2
moves the middle of a blurred black/white edge from 0.56 to 0.77.
"""

from __future__ import annotations

import numpy as np
import pytest

from restorekit.degrade.ops import GaussianNoise, MotionBlur
from restorekit.degrade.pipeline import build_degrader


def _spread(img: np.ndarray) -> tuple[float, float]:
    """(minor, major) standard deviations in px of the intensity distribution of channel 0."""
    w = img[..., 0].astype(np.float64)
    w = w / w.sum()
    ys, xs = np.mgrid[: w.shape[0], : w.shape[1]]
    mx, my = (w * xs).sum(), (w * ys).sum()
    cxy = (w * (xs - mx) * (ys - my)).sum()
    cov = np.array([[(w * (xs - mx) ** 2).sum(), cxy], [cxy, (w * (ys - my) ** 2).sum()]])
    ev = np.sqrt(np.clip(np.linalg.eigvalsh(cov), 0, None))
    return float(ev[0]), float(ev[1])


def _impulse(size: int = 81) -> np.ndarray:
    img = np.zeros((size, size, 3), np.float32)
    img[size // 2, size // 2] = 1.0
    return img


def test_trajectory_blur_is_a_curved_random_path_not_a_line():
    imp = _impulse()
    traj = MotionBlur(kind="trajectory", length=(21, 21), angle=(0, 360))
    line = MotionBlur(kind="line", length=(21, 21), angle=(0, 360))
    t_minor = [_spread(traj(imp, np.random.default_rng(s))[0])[0] for s in range(30)]
    l_minor = [_spread(line(imp, np.random.default_rng(s))[0])[0] for s in range(30)]
    assert max(l_minor) < 0.5
    assert np.median(t_minor) > max(l_minor) + 0.1, (np.median(t_minor), max(l_minor))
    # a new path per sample: same length and angle, different kernels
    fixed = MotionBlur(kind="trajectory", length=(21, 21), angle=(30, 30))
    k1 = fixed.kernel({"kind": "trajectory", "length": 21.0, "angle": 30.0}, np.random.default_rng(1))
    k2 = fixed.kernel({"kind": "trajectory", "length": 21.0, "angle": 30.0}, np.random.default_rng(2))
    assert k1.shape != k2.shape or np.abs(k1 - k2).sum() > 0.2


@pytest.mark.parametrize("kind", ["line", "trajectory"])
def test_motion_blur_gamma_blurs_in_linear_light(kind):
    edge = np.zeros((48, 48, 3), np.float32)
    edge[:, 24:] = 1.0
    edge[:, 24:, 1] = 0.6
    lin = MotionBlur(kind=kind, length=(9, 9), angle=(0, 0), gamma=2.2)
    srgb = MotionBlur(kind=kind, length=(9, 9), angle=(0, 0))
    out_g, p_g = lin(edge, np.random.default_rng(0))
    out_s, _ = srgb(edge, np.random.default_rng(0))
    # the same kernel applied to x ** 2.2, then encoded back
    ref, _ = srgb(edge**2.2, np.random.default_rng(0))
    ref = np.clip(ref, 0, 1) ** (1 / 2.2)
    np.testing.assert_allclose(out_g, ref, atol=2e-3)
    assert out_g[24, 24, 0] - out_s[24, 24, 0] > 0.1  # linear-light blur brightens the dark side of the edge
    assert p_g["length"] == 9.0


def test_gopro_like_blur_lengths_cover_7_to_31_px():
    deg = build_degrader("gopro-like")
    blur = deg.ops[0]
    assert isinstance(blur, MotionBlur) and blur.kind == "trajectory" and blur.gamma == pytest.approx(2.2)
    lengths = np.array([blur.sample(np.random.default_rng(s), (64, 64, 3))["length"] for s in range(300)])
    assert lengths.min() >= 7.0 and lengths.max() <= 31.0
    assert np.quantile(lengths, 0.1) < 10.0 and np.quantile(lengths, 0.9) > 27.0
    # the kernels are as long as their sampled length
    for s in range(5):
        rng = np.random.default_rng(s)
        params = blur.sample(rng, (64, 64, 3))
        major = _spread(blur.kernel(params, rng)[..., None])[1]
        # a uniform segment of length L has std L / sqrt(12); a curved path is a little shorter end to end
        assert 0.5 * params["length"] / np.sqrt(12) < major < 1.2 * params["length"] / np.sqrt(12), (params, major)


def test_demo_deblur_noise_level_is_what_the_recipe_says():
    deg = build_degrader("demo-deblur")
    flat = np.full((128, 128, 3), 0.5, np.float32)
    ratios, sigmas, applied = [], [], 0
    for s in range(60):
        out, params = deg(flat, np.random.default_rng(s))
        if "gaussian_noise" not in params:
            continue
        applied += 1
        sigma = params["gaussian_noise"]["sigma"]
        sigmas.append(sigma)
        if "jpeg" not in params:  # JPEG smooths noise; measure on the draws without it
            ratios.append(float(np.std(out - 0.5)) / sigma)
    assert 0.01 <= min(sigmas) and max(sigmas) <= 0.03
    assert 0.65 <= applied / 60 <= 0.95  # p = 0.8
    assert len(ratios) >= 10 and 0.95 < np.median(ratios) < 1.05, np.median(ratios)


def test_gaussian_noise_std_matches_sigma():
    op = GaussianNoise(sigma=(0.05, 0.05))
    out, p = op(np.full((256, 256, 3), 0.5, np.float32), np.random.default_rng(0))
    assert float(np.std(out - 0.5)) == pytest.approx(0.05, rel=0.03)
