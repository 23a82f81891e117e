"""Statistics of every degradation op, measured on real photos or flat fields."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from restorekit.degrade import (
    OPS,
    BleedThrough,
    DefocusBlur,
    Fade,
    GaussianBlur,
    GaussianNoise,
    InkBleed,
    Jpeg,
    MotionBlur,
    PaperTexture,
    PoissonGaussianNoise,
    Resample,
    SaltPepper,
    Stains,
    YellowTint,
    disk_kernel,
    line_kernel,
    trajectory_kernel,
)
from restorekit.utils.seed import sample_rng


def flat(value: float, size: int = 256) -> np.ndarray:
    return np.full((size, size, 3), value, np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_gaussian_noise_sigma_matches_sampled(seed: int) -> None:
    op = GaussianNoise(sigma=(0.02, 0.10))
    img = flat(0.5)
    out, params = op(img, sample_rng(seed, 0))
    assert 0.02 <= params["sigma"] <= 0.10
    measured = float((out - img).std())
    assert abs(measured - params["sigma"]) / params["sigma"] < 0.10


def test_gaussian_noise_luminance_mode_is_shared_across_channels() -> None:
    out, _ = GaussianNoise(sigma=0.05, per_channel=False)(flat(0.5), sample_rng(0))
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_poisson_gaussian_variance_is_signal_dependent() -> None:
    op = PoissonGaussianNoise(gain=0.004, read_sigma=0.01)
    for level in (0.15, 0.6):
        img = flat(level, 384)
        out, params = op(img, sample_rng(1, level))
        expected = params["gain"] * level + params["read_sigma"] ** 2
        assert abs(float(out.var()) - expected) / expected < 0.10
        assert abs(float(out.mean()) - level) < 0.003


def test_salt_and_pepper_fraction(photo) -> None:  # noqa: ANN001
    img = np.clip(photo("coffee", 256), 0.02, 0.98)  # no pixel is already pure black/white
    out, params = SaltPepper(amount=(0.004, 0.01))(img, sample_rng(2))
    changed = np.any(out != img, axis=2)
    frac = float(changed.mean())
    assert abs(frac - params["amount"]) / params["amount"] < 0.2
    salt = np.all(out[changed] == 1.0, axis=1).mean()
    assert 0.35 < salt < 0.65


def test_gaussian_blur_default_sigma_follows_opencv(photo) -> None:  # noqa: ANN001
    img = photo("astronaut", 128)
    op = GaussianBlur(kernel_sizes=[5])
    out, params = op(img, sample_rng(0))
    assert params == {"kernel": 5, "sigma": 1.1}
    np.testing.assert_allclose(out, np.clip(cv2.GaussianBlur(img, (5, 5), 0, borderType=cv2.BORDER_REFLECT_101), 0, 1), atol=1e-6)
    assert np.abs(np.diff(out, axis=1)).mean() < np.abs(np.diff(img, axis=1)).mean()


@pytest.mark.parametrize("length,angle", [(3, 0), (7.5, 33), (15, 90), (21, 135), (30, 250)])
def test_line_kernel_sums_to_one_and_points_along_angle(length: float, angle: float) -> None:
    k = line_kernel(length, angle)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert abs(float(k.sum()) - 1.0) < 1e-5 and k.min() >= 0
    ys, xs = np.nonzero(k > 1e-6)
    w = k[ys, xs]
    c = (k.shape[0] - 1) / 2
    x, y = xs - c, -(ys - c)
    cov = np.cov(np.stack([x, y]), aweights=w)
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, 1]
    est = np.degrees(np.arctan2(major[1], major[0])) % 180
    diff = abs(est - angle % 180)
    assert min(diff, 180 - diff) < 3.0
    # the spread along the major axis is that of a uniform segment: var = (L^2 - 1) / 12 (+ splat smoothing)
    assert abs(np.sqrt(12 * evals[1] + 1) - length) < 1.0


def test_motion_blur_impulse_response_is_its_kernel() -> None:
    op = MotionBlur(length=(9, 9), angle=(30, 30))
    img = np.zeros((41, 41, 3), np.float32)
    img[20, 20] = 1.0
    params = op.sample(sample_rng(0), img.shape)
    out = op.apply(img, params, sample_rng(0))
    k = op.kernel(params, sample_rng(0))
    r = k.shape[0] // 2
    np.testing.assert_allclose(out[20 - r : 21 + r, 20 - r : 21 + r, 0], k[::-1, ::-1], atol=1e-6)
    assert abs(float(out[..., 0].sum()) - 1.0) < 1e-4


def test_trajectory_kernels_are_random_normalised_paths() -> None:
    k1 = trajectory_kernel(20, 45, sample_rng(1))
    k2 = trajectory_kernel(20, 45, sample_rng(2))
    for k in (k1, k2):
        assert abs(float(k.sum()) - 1.0) < 1e-5 and k.min() >= 0
        assert k.shape[0] >= 11  # a 20 px path cannot fit in a tiny kernel
    assert k1.shape != k2.shape or not np.allclose(k1, k2)


def test_defocus_disk_kernel() -> None:
    for r in (1.0, 2.5, 6.0):
        k = disk_kernel(r)
        assert abs(float(k.sum()) - 1.0) < 1e-5
        ys, xs = np.nonzero(k > 0)
        c = k.shape[0] // 2
        assert np.sqrt((ys - c) ** 2 + (xs - c) ** 2).max() <= r + 0.5 + 1e-6
    img = flat(0.3, 64)
    out, params = DefocusBlur(radius=(2, 4))(img, sample_rng(0))
    np.testing.assert_allclose(out, img, atol=1e-5)  # a flat field is unchanged by a normalised kernel
    assert 2 <= params["radius"] <= 4


def test_resample_x4_removes_detail_and_keeps_size(photo) -> None:  # noqa: ANN001
    img = photo("astronaut", 128)
    out, params = Resample(scale=0.25, down=["bicubic"])(img, sample_rng(0))
    assert out.shape == img.shape and params["scale"] == 0.25
    ref = cv2.resize(cv2.resize(img, (32, 32), interpolation=cv2.INTER_CUBIC), (128, 128), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(out, np.clip(ref, 0, 1), atol=1e-6)
    hf = lambda a: np.abs(cv2.Laplacian(a, cv2.CV_32F)).mean()  # noqa: E731
    assert hf(out) < 0.5 * hf(img)


def test_jpeg_is_a_real_codec_roundtrip(photo) -> None:  # noqa: ANN001
    from PIL import Image

    from restorekit.degrade import jpeg_roundtrip

    img = photo("chelsea", 128)
    op = Jpeg(quality=(60, 90))
    out, params = op(img, sample_rng(4))
    assert isinstance(params["quality"], int) and 60 <= params["quality"] <= 90
    assert np.abs(out - img).mean() > 1e-3  # it changed the image
    dec, data = jpeg_roundtrip(img, params["quality"])
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    np.testing.assert_array_equal(out, dec)
    pil = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32) / 255
    assert Image.open(io.BytesIO(data)).format == "JPEG"
    assert np.abs(pil - out).mean() < 1.5 / 255  # another decoder reads the same picture
    err_q = lambda q: float(np.abs(jpeg_roundtrip(img, q)[0] - img).mean())  # noqa: E731
    assert err_q(20) > err_q(60) > err_q(95)


def test_fade_and_tint_are_exact(photo) -> None:  # noqa: ANN001
    img = photo("rocket", 64)
    out, p = Fade()(img, sample_rng(0))
    np.testing.assert_allclose(out, np.clip(img * p["contrast"] + p["brightness"], 0, 1), atol=1e-6)
    assert 0.5 <= p["contrast"] <= 0.9 and 0.05 <= p["brightness"] <= 0.2
    out, p = YellowTint()(img, sample_rng(1))
    np.testing.assert_allclose(out[..., 0], img[..., 0], atol=1e-7)
    np.testing.assert_allclose(out[..., 1], img[..., 1] * p["green"], atol=1e-6)
    np.testing.assert_allclose(out[..., 2], img[..., 2] * p["blue"], atol=1e-6)


def test_stains_darken_discs_only(photo) -> None:  # noqa: ANN001
    img = photo("coffee", 200)
    out, p = Stains(count=(2, 2))(img, sample_rng(5))
    assert len(p["stains"]) == 2
    yy, xx = np.mgrid[:200, :200]
    inside = np.zeros((200, 200), bool)
    for s in p["stains"]:
        assert 10 <= s["r"] <= 50 and 0.3 <= s["d"] <= 0.7
        inside |= (xx - s["x"]) ** 2 + (yy - s["y"]) ** 2 <= s["r"] ** 2
    np.testing.assert_array_equal(out[~inside], img[~inside])
    assert (out[inside] <= img[inside] + 1e-7).all() and out[inside].mean() < 0.75 * img[inside].mean()


def _page() -> np.ndarray:
    page = np.full((96, 96, 3), 0.95, np.float32)
    page[20:28, 8:40] = 0.05  # a dark stroke on the left half
    return page


def test_ink_bleed_spreads_dark_strokes() -> None:
    page = _page()
    out, p = InkBleed(radius=(2, 2), strength=(0.8, 0.8))(page, sample_rng(0))
    assert (out <= page + 1e-6).all()
    assert out[18, 20, 0] < page[18, 20, 0] - 0.05  # just above the stroke got darker
    np.testing.assert_allclose(out[70:, 60:], page[70:, 60:], atol=1e-6)  # far from ink: untouched


def test_bleed_through_mirrors_the_verso() -> None:
    page = _page()
    op = BleedThrough(strength=(0.3, 0.3), blur=(1, 1), max_shift=0)
    out, p = op(page, sample_rng(0))
    assert out[24, 96 - 24, 0] < page[24, 96 - 24, 0] - 0.1  # mirrored position of the stroke
    assert abs(float(out[70, 70, 0]) - float(page[70, 70, 0]) * (1 - 0.3 * 0.05)) < 0.01


def test_paper_texture_is_multiplicative_and_mean_preserving() -> None:
    img = flat(0.6)
    out, p = PaperTexture(mottle=(0.05, 0.05), grain=(0.01, 0.01), scale=(16, 16))(img, sample_rng(3))
    ratio = out / img
    assert abs(float(ratio.mean()) - 1.0) < 0.02
    expected = np.hypot(0.05, 0.01)
    assert abs(float(ratio[..., 0].std()) - expected) / expected < 0.15


@pytest.mark.parametrize("name", sorted(n for n in OPS if n != "one_of"))
def test_every_op_is_deterministic_and_in_range(name: str, photo) -> None:  # noqa: ANN001
    img = photo("astronaut", 96)
    op = OPS[name]()
    a, pa = op(img, sample_rng(7, 1, 2))
    b, pb = op(img, sample_rng(7, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert pa == pb
    assert a.dtype == np.float32 and a.shape == img.shape and a.min() >= 0 and a.max() <= 1
    import json

    json.dumps(pa)  # params are JSON-able for logging


def test_probability_is_respected() -> None:
    op = Fade(p=0.3)
    img = flat(0.5, 4)
    applied = sum(op(img, sample_rng(11, i))[1] is not None for i in range(1000))
    assert 240 < applied < 360  # binomial(1000, 0.3): +-4 sigma
    assert all(Fade(p=0.0)(img, sample_rng(0, i))[1] is None for i in range(50))
