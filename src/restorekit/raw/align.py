"""Aligning a ground-truth shot onto a noisy shot of the same scene (tripod drift, re-focus).

:func:`align_pair` follows the raw-denoising project: ORB features (2000), the
best 50 Hamming matches, a RANSAC partial-affine (rotation + uniform scale +
shift) as the coarse estimate, then ECC (``cv2.findTransformECC``, Euclidean
motion, 200 iterations, eps 1e-5) for sub-pixel refinement. The ground truth's
exposure is matched to the noisy image by the ratio of their means. ECC's
correlation coefficient (``cc``) measures the quality; pairs whose ``cc`` is
below ``min_cc`` are rejected with a reason.

Warp convention: ``warp`` (2x3) maps *noisy* pixel coordinates to *ground-truth*
coordinates, ``gt_xy = warp @ [x, y, 1]``; the aligned ground truth is
``cv2.warpAffine(gt, warp, size, flags=INTER_LINEAR | WARP_INVERSE_MAP)``.

:func:`align_folder` pairs files by name, writes ``OUT/aligned/<name>`` and
``OUT/alignment.csv`` (name, m00..m12, cc, psnr_before, psnr_after, status, reason).
Ordinary RGB images work as well as raw files (demosaiced for alignment).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ConfigError, DataError
from restorekit.io.image import IMAGE_EXTENSIONS

CSV_FIELDS = ["name", "m00", "m01", "m02", "m10", "m11", "m12", "cc", "gain", "psnr_before", "psnr_after", "status", "reason"]


@dataclass
class AlignResult:
    """Outcome of :func:`align_pair`.

    ``aligned``: ``(H, W, 3)`` float32 ground truth warped onto the noisy frame and
    exposure-matched (``gain``); ``valid``: ``(H, W)`` bool, pixels that came from
    inside the ground truth. ``status``: "ok", "rejected" (cc below threshold) or
    "failed" (ECC did not converge); ``reason`` explains anything but "ok".
    """

    warp: np.ndarray
    cc: float
    gain: float
    psnr_before: float
    psnr_after: float
    status: str
    reason: str = ""
    method: str = "orb+ecc"
    aligned: np.ndarray | None = field(default=None, repr=False)
    valid: np.ndarray | None = field(default=None, repr=False)


def _gray_u8(img: np.ndarray) -> np.ndarray:
    import cv2

    x = np.clip(img, 0, 1)
    g = cv2.cvtColor((x * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY) if x.ndim == 3 else (x * 255 + 0.5).astype(np.uint8)
    return g


def _gray_f32(img: np.ndarray) -> np.ndarray:
    x = np.clip(img, 0, 1).astype(np.float32)
    if x.ndim == 3:
        x = x @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.ascontiguousarray(x)


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2
    if mask is not None:
        d = d[mask]
    mse = float(np.mean(d)) if d.size else float("nan")
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def coarse_warp(noisy: np.ndarray, gt: np.ndarray, *, n_features: int = 2000, n_matches: int = 50) -> np.ndarray | None:
    """ORB + best ``n_matches`` + RANSAC partial affine: 2x3 warp noisy -> gt coordinates, or None."""
    import cv2

    orb = cv2.ORB_create(nfeatures=n_features)
    k1, d1 = orb.detectAndCompute(_gray_u8(noisy), None)
    k2, d2 = orb.detectAndCompute(_gray_u8(gt), None)
    if d1 is None or d2 is None or len(k1) < 4 or len(k2) < 4:
        return None
    matches = sorted(cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(d1, d2), key=lambda m: m.distance)[:n_matches]
    if len(matches) < 4:
        return None
    src = np.float32([k1[m.queryIdx].pt for m in matches]).reshape(-1, 1, 2)
    dst = np.float32([k2[m.trainIdx].pt for m in matches]).reshape(-1, 1, 2)
    warp, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    if warp is None or inliers is None or int(inliers.sum()) < 4:
        return None
    return warp.astype(np.float32)


def apply_warp(img: np.ndarray, warp: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``img`` (gt) onto a ``(H, W)`` noisy frame: returns (warped float32, valid mask)."""
    import cv2

    h, w = size
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    out = cv2.warpAffine(np.ascontiguousarray(img, np.float32), warp.astype(np.float32), (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
    ones = np.ones(img.shape[:2], np.float32)
    valid = cv2.warpAffine(ones, warp.astype(np.float32), (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape((h, w) + img.shape[2:]), valid > 0.999


def check_align_settings(
    *,
    n_features: int = 2000,
    n_matches: int = 50,
    ecc_iterations: int = 200,
    ecc_eps: float = 1e-5,
    min_cc: float | None = None,
    quality: int = 95,
) -> None:
    """Raise :class:`ConfigError` naming the ``restorekit data align`` flag of a setting that cannot work."""
    checks = [
        (n_features >= 3, "--features", f"ORB features must be at least 3, got {n_features}"),
        (n_matches >= 3, "--matches", f"matches kept for RANSAC must be at least 3, got {n_matches}"),
        (ecc_iterations >= 1, "--iterations", f"ECC iterations must be at least 1, got {ecc_iterations}"),
        (math.isfinite(ecc_eps) and ecc_eps > 0, "--eps", f"ECC epsilon must be a positive number, got {ecc_eps}"),
        (min_cc is None or (math.isfinite(min_cc) and -1.0 <= min_cc <= 1.0), "--min-cc", f"must lie in [-1, 1], got {min_cc}"),
        (1 <= quality <= 100, "--quality", f"JPEG quality must lie in 1..100, got {quality}"),
    ]
    for ok, flag, msg in checks:
        if not ok:
            raise ConfigError(f"{flag}: {msg}")


def align_pair(
    noisy: np.ndarray,
    gt: np.ndarray,
    *,
    n_features: int = 2000,
    n_matches: int = 50,
    ecc_iterations: int = 200,
    ecc_eps: float = 1e-5,
    gauss_filter: int = 5,
    min_cc: float | None = None,
    match_exposure: bool = True,
) -> AlignResult:
    """Align ``gt`` onto ``noisy`` (both ``(H, W, 3)`` or ``(H, W)`` float in [0, 1], same size).

    Returns an :class:`AlignResult` with the 2x3 warp (noisy -> gt coordinates), ECC's
    correlation coefficient, the exposure gain applied to ``gt``, PSNR of
    (noisy, gt) before and after alignment (both exposure-matched, measured on the
    pixels valid after warping) and a status.
    """
    import cv2

    check_align_settings(n_features=n_features, n_matches=n_matches, ecc_iterations=ecc_iterations, ecc_eps=ecc_eps, min_cc=min_cc)
    if noisy.shape[:2] != gt.shape[:2]:
        raise DataError(f"alignment needs images of the same size, got {noisy.shape[:2]} and {gt.shape[:2]}")
    h, w = noisy.shape[:2]
    gain = 1.0
    if match_exposure:
        mg = float(np.mean(gt))
        gain = float(np.mean(noisy)) / mg if mg > 1e-8 else 1.0
    gt_m = np.clip(gt.astype(np.float32) * gain, 0, 1)
    init = coarse_warp(noisy, gt_m, n_features=n_features, n_matches=n_matches)
    method = "orb+ecc"
    if init is None:
        init = np.eye(2, 3, dtype=np.float32)
        method = "ecc"
    # Euclidean ECC: keep the rotation part of the partial affine, drop its scale
    a, b = float(init[0, 0]), float(init[1, 0])
    theta = math.atan2(b, a)
    warp = np.array([[math.cos(theta), -math.sin(theta), init[0, 2]], [math.sin(theta), math.cos(theta), init[1, 2]]], np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, int(ecc_iterations), float(ecc_eps))
    status, reason = "ok", ""
    try:
        cc, warp = cv2.findTransformECC(_gray_f32(noisy), _gray_f32(gt_m), warp, cv2.MOTION_EUCLIDEAN, criteria, None, int(gauss_filter))
        cc = float(cc)
    except cv2.error as exc:
        cc = float("nan")
        status, reason = "failed", f"ECC did not converge ({str(exc).strip().splitlines()[-1][:120]})"
        warp = np.eye(2, 3, dtype=np.float32) if init is None else warp
    aligned, valid = apply_warp(gt_m, warp, (h, w))
    if valid.sum() < 0.25 * h * w:
        valid = np.ones((h, w), bool)
    before = _psnr(noisy, gt_m, valid)
    after = _psnr(noisy, aligned, valid)
    if status == "ok" and min_cc is not None and not cc >= min_cc:
        status, reason = "rejected", f"correlation {cc:.4f} below min_cc {min_cc:g}"
    return AlignResult(
        warp=np.asarray(warp, np.float64), cc=cc, gain=gain, psnr_before=before, psnr_after=after,
        status=status, reason=reason, method=method, aligned=aligned, valid=valid,
    )


# ------------------------------------------------------------------------------------------ folders
def load_for_alignment(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """An image file as ``(H, W, 3)`` float32 [0, 1]; raw files are demosaiced (camera-linear, gamma 1/2.2 for matching)."""
    from restorekit.raw.io import is_raw_path

    if is_raw_path(path):
        from restorekit.raw.bayer import demosaic_bilinear
        from restorekit.raw.io import read_raw

        r = read_raw(path)
        return demosaic_bilinear(r.mosaic()), {"raw": True, "iso": r.iso}
    from restorekit.io import read_image_with_info

    img, info = read_image_with_info(path)
    return img, {"raw": False, "bit_depth": info.bit_depth}


def pair_by_name(noisy_dir: Path, gt_dir: Path) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pairs ``(name, noisy, gt)`` with identical file names (or, failing that, identical stems).

    Returns the pairs and the noisy names without a partner.
    """
    from restorekit.raw.io import RAW_EXTENSIONS

    exts = IMAGE_EXTENSIONS | set(RAW_EXTENSIONS)
    if not noisy_dir.is_dir():
        raise DataError(f"noisy folder '{noisy_dir}' does not exist")
    if not gt_dir.is_dir():
        raise DataError(f"ground-truth folder '{gt_dir}' does not exist")
    gts = {p.name: p for p in gt_dir.iterdir() if p.is_file() and p.suffix.lower() in exts}
    gt_stems = {p.stem: p for p in gts.values()}
    pairs, missing = [], []
    for p in sorted(noisy_dir.iterdir()):
        if not p.is_file() or p.suffix.lower() not in exts:
            continue
        g = gts.get(p.name) or gt_stems.get(p.stem)
        if g is None:
            missing.append(p.name)
        else:
            pairs.append((p.name, p, g))
    return pairs, missing


def align_folder(
    noisy_dir: str | Path,
    gt_dir: str | Path,
    out_dir: str | Path,
    *,
    min_cc: float = 0.9,
    quality: int = 95,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Align every ground truth in ``gt_dir`` onto its noisy partner (same file name) in ``noisy_dir``.

    Writes ``out_dir/aligned/<name>`` for accepted pairs (same format as the input;
    raw ground truths become ``<name>.tiff``, 16-bit camera-linear RGB) and
    ``out_dir/alignment.csv`` with one row per pair, rejected and failed pairs
    included with their reason. Returns the rows.
    """
    from restorekit.io import write_image
    from restorekit.utils.atomic import atomic_write_text

    known = {"n_features", "n_matches", "ecc_iterations", "ecc_eps"}
    check_align_settings(min_cc=min_cc, quality=quality, **{k: v for k, v in kwargs.items() if k in known})
    noisy_dir, gt_dir, out_dir = Path(noisy_dir), Path(gt_dir), Path(out_dir)
    pairs, missing = pair_by_name(noisy_dir, gt_dir)
    if not pairs:
        raise DataError(f"no pairs: no file of '{noisy_dir}' has a partner of the same name in '{gt_dir}'")
    rows: list[dict[str, Any]] = []
    for name, pn, pg in pairs:
        noisy, _ = load_for_alignment(pn)
        gt, ginfo = load_for_alignment(pg)
        row: dict[str, Any] = {"name": name}
        if noisy.shape[:2] != gt.shape[:2]:
            row.update({k: "" for k in CSV_FIELDS[1:]})
            row.update(status="failed", reason=f"size mismatch: noisy {noisy.shape[1]}x{noisy.shape[0]}, gt {gt.shape[1]}x{gt.shape[0]}")
            rows.append(row)
            continue
        res = align_pair(noisy, gt, min_cc=min_cc, **kwargs)
        m = res.warp
        row.update(
            m00=m[0, 0], m01=m[0, 1], m02=m[0, 2], m10=m[1, 0], m11=m[1, 1], m12=m[1, 2], cc=res.cc, gain=res.gain,
            psnr_before=res.psnr_before, psnr_after=res.psnr_after, status=res.status, reason=res.reason,
        )
        if res.status == "ok" and res.aligned is not None:
            if ginfo.get("raw"):
                write_image(out_dir / "aligned" / (Path(name).stem + ".tiff"), np.clip(res.aligned, 0, 1), bit_depth=16)
            else:
                bits = 16 if ginfo.get("bit_depth", 8) > 8 and Path(name).suffix.lower() in {".png", ".tif", ".tiff"} else 8
                write_image(out_dir / "aligned" / name, np.clip(res.aligned, 0, 1), bit_depth=bits, quality=quality)
        rows.append(row)
    for name in missing:
        rows.append({"name": name, **{k: "" for k in CSV_FIELDS[1:]}, "status": "failed", "reason": "no ground truth with this name"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k, "")) for k in CSV_FIELDS})
    atomic_write_text(out_dir / "alignment.csv", buf.getvalue())
    return rows


def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}" if math.isfinite(float(v)) else str(float(v))
    return v
