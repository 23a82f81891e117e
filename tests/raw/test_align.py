"""Alignment (ORB + RANSAC + ECC) recovers known sub-pixel motions on real photos."""

from __future__ import annotations

import csv
import math

import cv2
import numpy as np
import pytest

from restorekit.cli.main import main as cli_main
from restorekit.errors import ConfigError, DataError
from restorekit.io import read_image, write_image
from restorekit.raw.align import align_folder, align_pair


def _moved(photo_full: np.ndarray, theta_deg: float, tx: float, ty: float, size: int = 256):
    """(noisy, gt, true warp): the noisy frame sees the photo rotated about its centre and shifted.

    The true warp maps noisy pixel coordinates to ground-truth coordinates (both cropped).
    """
    h, w = photo_full.shape[:2]
    th = math.radians(theta_deg)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    c = np.array([w / 2, h / 2])
    t = c - rot @ c + np.array([tx, ty])
    full_warp = np.hstack([rot, t[:, None]]).astype(np.float32)
    noisy_full = cv2.warpAffine(photo_full, full_warp, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT)
    o = np.array([(w - size) // 2, (h - size) // 2], float)
    warp = np.hstack([rot, (rot @ o + t - o)[:, None]])
    sl = (slice(int(o[1]), int(o[1]) + size), slice(int(o[0]), int(o[0]) + size))
    return np.clip(noisy_full[sl], 0, 1), photo_full[sl].copy(), warp


def _max_displacement(a: np.ndarray, b: np.ndarray, size: int) -> float:
    pts = np.array([[x, y, 1.0] for x in (0, size - 1) for y in (0, size - 1)] + [[size / 2, size / 2, 1.0]])
    return float(np.abs(pts @ a.T - pts @ b.T).max())


@pytest.mark.parametrize(
    "name,theta,tx,ty,noise",
    [
        ("astronaut", 0.0, 0.3, -0.7, 0.0),
        ("astronaut", 1.5, 2.25, 1.5, 0.03),
        ("coffee", -2.0, -3.4, 0.6, 0.0),
        ("chelsea", 0.5, 10.3, -5.2, 0.03),
    ],
)
def test_recovers_known_subpixel_motion(photo, name, theta, tx, ty, noise):
    full = photo(name)
    noisy, gt, true_warp = _moved(full, theta, tx, ty)
    if noise:
        noisy = np.clip(noisy + np.random.default_rng(0).normal(0, noise, noisy.shape), 0, 1).astype(np.float32)
    res = align_pair(noisy, gt * 0.8, min_cc=0.9)  # a darker ground truth: exposure is matched too
    assert res.status == "ok", res.reason
    err = _max_displacement(res.warp, true_warp, 256)
    assert err < 0.1, f"max displacement error {err:.3f} px"
    assert res.cc > 0.95
    assert res.gain == pytest.approx(1 / 0.8, rel=0.05)
    assert res.psnr_after > res.psnr_before + 3


def test_low_correlation_rejected_with_reason(photo):
    a = photo("astronaut", 128)
    b = photo("coffee", 128)
    res = align_pair(a, b, min_cc=0.9)
    assert res.status in ("rejected", "failed")
    assert res.reason and ("min_cc" in res.reason or "ECC" in res.reason)
    with pytest.raises(DataError, match="same size"):
        align_pair(a, b[:64])


def test_align_folder_and_cli(tmp_path, photo):
    noisy_dir, gt_dir, out = tmp_path / "noisy", tmp_path / "gt", tmp_path / "out"
    for name, (theta, tx, ty) in {"a.png": (0.4, 1.3, -0.6), "b.png": (0.0, -2.5, 0.25)}.items():
        noisy, gt, _ = _moved(photo("astronaut"), theta, tx, ty, size=192)
        write_image(noisy_dir / name, noisy, bit_depth=16)
        write_image(gt_dir / name, gt, bit_depth=16)
    write_image(noisy_dir / "c.png", photo("coffee", 192))
    write_image(gt_dir / "c.png", photo("astronaut", 192))  # a wrong pair: rejected
    write_image(noisy_dir / "lonely.png", photo("coffee", 64))
    # a rejected and an unpartnered pair: the good ones are written, and the exit status says some failed (#18)
    assert cli_main(["data", "align", str(noisy_dir), str(gt_dir), "--out", str(out), "--min-cc", "0.9"]) == 1
    rows = {r["name"]: r for r in csv.DictReader(open(out / "alignment.csv"))}
    assert list(next(iter(rows.values())).keys())[:11] == ["name", "m00", "m01", "m02", "m10", "m11", "m12", "cc", "gain",
                                                         "psnr_before", "psnr_after"]
    assert rows["a.png"]["status"] == "ok" and rows["b.png"]["status"] == "ok"
    assert abs(float(rows["b.png"]["m02"]) - (-2.5)) < 0.1 and abs(float(rows["b.png"]["m12"]) - 0.25) < 0.1
    assert float(rows["a.png"]["psnr_after"]) > float(rows["a.png"]["psnr_before"])
    assert rows["c.png"]["status"] in ("rejected", "failed") and rows["c.png"]["reason"]
    assert rows["lonely.png"]["status"] == "failed" and "no ground truth" in rows["lonely.png"]["reason"]
    assert sorted(p.name for p in (out / "aligned").iterdir()) == ["a.png", "b.png"]
    aligned = read_image(out / "aligned" / "a.png")
    noisy = read_image(noisy_dir / "a.png")
    assert aligned.shape == noisy.shape
    assert 10 * np.log10(1 / np.mean((aligned[8:-8, 8:-8] - noisy[8:-8, 8:-8]) ** 2)) > 30


def test_align_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="nope"):
        align_folder(tmp_path / "nope", tmp_path, tmp_path / "o")
    (tmp_path / "n").mkdir()
    (tmp_path / "g").mkdir()
    with pytest.raises(DataError, match="no pairs"):
        align_folder(tmp_path / "n", tmp_path / "g", tmp_path / "o")


@pytest.mark.parametrize(
    "flag,value",
    [("--iterations", "0"), ("--features", "0"), ("--matches", "0"), ("--eps", "-1"), ("--eps", "nan"), ("--min-cc", "2"), ("--quality", "0")],
)
def test_align_rejects_settings_that_cannot_work(tmp_path, photo, capsys, flag, value):
    noisy_dir, gt_dir = tmp_path / "noisy", tmp_path / "gt"
    write_image(noisy_dir / "a.png", photo("astronaut", 96))
    write_image(gt_dir / "a.png", photo("astronaut", 96))
    assert cli_main(["data", "align", str(noisy_dir), str(gt_dir), "--out", str(tmp_path / "o"), flag, value]) != 0
    err = capsys.readouterr().err
    assert err.startswith("error: ") and flag in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match=flag):
        align_pair(photo("astronaut", 64), photo("astronaut", 64), **{
            "--iterations": {"ecc_iterations": 0}, "--features": {"n_features": 0}, "--matches": {"n_matches": 0},
            "--eps": {"ecc_eps": float(value)}, "--min-cc": {"min_cc": 2.0}, "--quality": {"n_features": 0},
        }[flag]) if flag != "--quality" else align_folder(noisy_dir, gt_dir, tmp_path / "o", quality=0)


def test_align_exits_zero_when_every_pair_aligns(tmp_path, photo):
    noisy_dir, gt_dir, out = tmp_path / "noisy", tmp_path / "gt", tmp_path / "out"
    noisy, gt, _ = _moved(photo("astronaut"), 0.3, 1.2, -0.4, size=160)
    write_image(noisy_dir / "a.png", noisy)
    write_image(gt_dir / "a.png", gt)
    assert cli_main(["data", "align", str(noisy_dir), str(gt_dir), "--out", str(out)]) == 0
