"""Metrics against scikit-image and independent re-implementations on real photos."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.filters import gaussian
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from restorekit.errors import ConfigError
from restorekit.metrics import (
    PSNR_CAP,
    Protocol,
    cap_psnr,
    mae,
    measure,
    ms_ssim,
    ms_ssim_batch,
    mse,
    psnr,
    psnr_batch,
    resolve_protocol,
    ssim,
    ssim_batch,
)


def _sk_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range)
    if a.ndim == 3:
        kw["channel_axis"] = -1
    return float(sk_ssim(a.astype(np.float64), b.astype(np.float64), **kw))


def _degraded(img: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        out = img + rng.normal(0, 0.06, img.shape)
    elif kind == "blur":
        out = gaussian(img, sigma=1.7, channel_axis=-1)
    else:
        out = img * 0.8 + 0.1
    return np.clip(out, 0, 1).astype(np.float32)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
@pytest.mark.parametrize("kind", ["noise", "blur", "fade"])
def test_ssim_psnr_agree_with_skimage(photo, name: str, kind: str) -> None:
    target = photo(name, 128)
    pred = _degraded(target, kind)
    assert abs(ssim(pred, target) - _sk_ssim(pred, target)) < 1e-5
    assert abs(psnr(pred, target) - sk_psnr(target.astype(np.float64), pred.astype(np.float64), data_range=1.0)) < 1e-5


def test_batch_versions_agree_with_skimage_in_float32(photo) -> None:
    targets = [photo(n, 96) for n in ("astronaut", "coffee", "chelsea")]
    preds = [_degraded(t, k, i) for i, (t, k) in enumerate(zip(targets, ["noise", "blur", "fade"]))]
    tp = torch.from_numpy(np.stack(preds)).permute(0, 3, 1, 2).contiguous()
    tt = torch.from_numpy(np.stack(targets)).permute(0, 3, 1, 2).contiguous()
    s = ssim_batch(tp, tt)
    p = psnr_batch(tp, tt)
    s32 = ssim_batch(tp, tt, compute_dtype=None)  # training-speed path
    assert s.shape == (3,) and s.dtype == torch.float32
    for i in range(3):
        ref = _sk_ssim(preds[i], targets[i])
        assert abs(float(s[i]) - ref) < 1e-5
        assert abs(float(s32[i]) - ref) < 1e-5
        assert abs(float(p[i]) - sk_psnr(targets[i].astype(np.float64), preds[i].astype(np.float64), data_range=1.0)) < 1e-4


def test_data_range_two_for_minus_one_one(photo) -> None:
    t = photo("astronaut", 64)
    p = _degraded(t, "noise")
    tp = torch.from_numpy(p * 2 - 1).permute(2, 0, 1)[None]
    tt = torch.from_numpy(t * 2 - 1).permute(2, 0, 1)[None]
    ref = _sk_ssim(p * 2 - 1, t * 2 - 1, data_range=2.0)
    assert abs(float(ssim_batch(tp, tt, data_range=2.0)[0]) - ref) < 1e-5
    assert abs(float(psnr_batch(tp, tt, data_range=2.0)[0]) - psnr(p, t)) < 1e-4


def test_y_channel_and_crop_border_against_independent_computation(photo) -> None:
    t = photo("coffee", 128)
    p = _degraded(t, "noise", 3)
    # independent: scikit-image's BT.601 conversion (Y in 16..235) and plain slicing
    ty = rgb2ycbcr(t.astype(np.float64))[..., 0] / 255.0
    py = rgb2ycbcr(p.astype(np.float64))[..., 0] / 255.0
    c = 4
    ty_c, py_c = ty[c:-c, c:-c], py[c:-c, c:-c]
    proto = resolve_protocol("y", crop_border=c)
    assert proto.name == "y+crop4"
    assert abs(psnr(p, t, proto) - sk_psnr(ty_c, py_c, data_range=1.0)) < 1e-6
    assert abs(ssim(p, t, proto) - _sk_ssim(py_c, ty_c)) < 1e-6
    # the Y protocol genuinely differs from RGB
    assert abs(psnr(p, t, "y") - psnr(p, t)) > 0.1
    # crop only
    assert abs(psnr(p, t, "rgb+crop8") - sk_psnr(t[8:-8, 8:-8].astype(np.float64), p[8:-8, 8:-8].astype(np.float64), data_range=1.0)) < 1e-6


def _basicsr_ssim_channel(img1: np.ndarray, img2: np.ndarray) -> float:
    """BasicSR's _ssim on one [0,255] channel: cv2 Gaussian 11x11 sigma 1.5, valid area."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    win = np.outer(k, k.transpose())
    f = lambda x: cv2.filter2D(x, -1, win)[5:-5, 5:-5]  # noqa: E731
    mu1, mu2 = f(img1), f(img2)
    s1, s2, s12 = f(img1**2) - mu1**2, f(img2**2) - mu2**2, f(img1 * img2) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
    return float(m.mean())


def test_basicsr_protocol_matches_basicsr_formulas(photo) -> None:
    t = photo("chelsea", 96)
    p = _degraded(t, "blur")
    t8 = np.round(t.astype(np.float64) * 255)
    p8 = np.round(p.astype(np.float64) * 255)
    c = 2
    # RGB, per channel on [0,255]
    ref_ssim = np.mean([_basicsr_ssim_channel(p8[c:-c, c:-c, i], t8[c:-c, c:-c, i]) for i in range(3)])
    ref_psnr = 10 * np.log10(255.0**2 / np.mean((p8[c:-c, c:-c] - t8[c:-c, c:-c]) ** 2))
    proto = resolve_protocol("basicsr", crop_border=c)
    assert proto.quantize and proto.name == "basicsr-rgb+crop2"
    assert abs(ssim(p, t, proto) - ref_ssim) < 1e-6
    assert abs(psnr(p, t, proto) - ref_psnr) < 1e-6
    # Y channel as BasicSR: bgr2ycbcr(y_only) on /255 input, *255, no rounding of Y
    ty = t8 / 255.0 @ np.array([65.481, 128.553, 24.966]) + 16.0
    py = p8 / 255.0 @ np.array([65.481, 128.553, 24.966]) + 16.0
    ref_ssim_y = _basicsr_ssim_channel(py[c:-c, c:-c], ty[c:-c, c:-c])
    ref_psnr_y = 10 * np.log10(255.0**2 / np.mean((py[c:-c, c:-c] - ty[c:-c, c:-c]) ** 2))
    proto_y = resolve_protocol("basicsr-y", crop_border=c)
    assert abs(ssim(p, t, proto_y) - ref_ssim_y) < 1e-6
    assert abs(psnr(p, t, proto_y) - ref_psnr_y) < 1e-6


def test_identical_images_give_infinite_psnr_and_ssim_one(photo) -> None:
    t = photo("astronaut", 64)
    assert psnr(t, t) == math.inf
    assert ssim(t, t) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(t, t) == pytest.approx(1.0, abs=1e-9)
    assert mae(t, t) == 0.0 and mse(t, t) == 0.0
    assert cap_psnr(psnr(t, t)) == PSNR_CAP
    assert cap_psnr(31.5) == 31.5


def test_tensor_layouts_and_measure(photo) -> None:
    t = photo("coffee", 64)
    p = _degraded(t, "noise")
    ref = measure(p, t, metrics=("psnr", "ssim", "mae", "mse", "ms_ssim"))
    chw = torch.from_numpy(p).permute(2, 0, 1)
    assert psnr(chw, torch.from_numpy(t).permute(2, 0, 1)) == pytest.approx(ref["psnr"], abs=1e-9)
    assert ssim(torch.from_numpy(p), torch.from_numpy(t)) == pytest.approx(ref["ssim"], abs=1e-9)
    assert ref["mse"] == pytest.approx(float(np.mean((p.astype(np.float64) - t) ** 2)), rel=1e-9)
    assert ref["mae"] == pytest.approx(float(np.mean(np.abs(p.astype(np.float64) - t))), rel=1e-9)
    # uint8 input is scaled to [0,1]
    u8 = np.round(t * 255).astype(np.uint8)
    assert psnr(u8, u8.astype(np.float64) / 255.0) == math.inf


def test_ms_ssim_scales_and_small_images(photo) -> None:
    t = photo("astronaut", 256)
    light, heavy = _degraded(t, "noise", 1), np.clip(t + np.random.default_rng(2).normal(0, 0.15, t.shape), 0, 1)
    v_light, v_heavy = ms_ssim(light, t), ms_ssim(heavy, t)
    assert 0 < v_heavy < v_light < 1
    # small images use fewer scales but stay sensible
    small_t, small_p = t[:40, :40], light[:40, :40]
    v_small = ms_ssim(small_p, small_t)
    assert 0 < v_small < 1
    tiny = ms_ssim(small_p[:8, :8], small_t[:8, :8])
    assert 0 < tiny <= 1
    x = torch.rand(2, 3, 24, 24)
    assert ms_ssim_batch(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)


def test_protocol_names_and_errors() -> None:
    assert resolve_protocol(None).name == "rgb"
    assert resolve_protocol("y").name == "y"
    assert resolve_protocol("rgb+u8+crop4").name == "rgb+u8+crop4"
    assert resolve_protocol("basicsr-y+crop4").to_dict()["channel"] == "y"
    assert resolve_protocol(Protocol(channel="y"), crop_border=2).name == "y+crop2"
    for bad in ("lab", "y+foo", ""):
        with pytest.raises(ConfigError):
            resolve_protocol(bad)
    with pytest.raises(ConfigError):
        Protocol(crop_border=-1)


def test_image_level_ssim_is_computed_in_strips_without_changing_the_value(photo) -> None:
    from restorekit.metrics.image import _ssim_tiled, prepare

    t = photo("astronaut", 200)
    p = _degraded(t, "noise", 5)
    x, y, _ = prepare(p, t)
    whole = float(ssim_batch(x, y)[0])
    assert _ssim_tiled(x, y, rows=37) == pytest.approx(whole, abs=1e-12)
    assert ssim(p, t) == pytest.approx(whole, abs=1e-12)
    assert abs(whole - _sk_ssim(p, t)) < 1e-5
