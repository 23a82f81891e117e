"""Synthetic raw data: "unprocess" sRGB photos into linear RGGB mosaics and add sensor noise.

Unprocessing (after Brooks et al., "Unprocessing Images for Learned Raw
Denoising", CVPR 2019) runs the camera pipeline backwards on an sRGB photo:

1. inverse sRGB curve -> linear sRGB;
2. inverse colour matrix: ``camera = srgb_to_cam @ rgb`` with ``srgb_to_cam`` the
   inverse of a camera's ``cam_to_srgb`` (rows normalised so white stays white);
3. inverse white balance: R divided by ``wb[0]``, B by ``wb[2]`` (G gain 1);
4. exposure scale (``exposure`` <= 1 darkens, as a high-ISO shot often is);
5. RGGB mosaic.

Noise model (heteroscedastic Poisson-Gaussian, on the normalised signal ``x`` in
[0, 1], i.e. ``(raw - black) / (white - black)``)::

    y = shot * Poisson(x / shot) + Normal(0, read)
    Var[y | x] = shot * x + read
    shot(ISO) = shot_k * ISO                     (photon noise grows linearly with gain)
    read(ISO) = read_c * ISO**2 + read_floor      (read noise std grows linearly with gain,
                                                   plus a gain-independent floor)

with defaults ``shot_k = 1.2e-6`` and ``read_c = 2e-11``, ``read_floor = 1e-6``:
at ISO 100 the std at mid-grey (x = 0.2) is 0.005, at ISO 6400 it is 0.049
(shot 7.7e-3, read std 0.029). :class:`NoiseModel` holds these numbers.

Synthetic scenes are written as real 16-bit CFA DNGs (14-bit range: black 512,
white 16383) through :func:`restorekit.raw.io.write_dng`, so training and tests
read them back with rawpy exactly as they would read camera files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from restorekit.raw.bayer import mosaic_rgb, srgb_decode
from restorekit.raw.io import XYZ_TO_SRGB, write_dng

#: XYZ -> camera matrix of a Nikon D700 (dcraw's adobe_coeff / 10000): a typical Bayer sensor.
_XYZ_TO_CAM_D700 = np.array([[8139, -2171, -663], [-8747, 16541, 2295], [-1925, 2008, 8093]], np.float64) / 10000.0


def default_cam_to_srgb() -> np.ndarray:
    """A realistic camera RGB -> linear sRGB matrix (rows sum to 1), from a Nikon D700 profile."""
    srgb_to_cam = _XYZ_TO_CAM_D700 @ np.linalg.inv(XYZ_TO_SRGB)
    srgb_to_cam /= srgb_to_cam.sum(axis=1, keepdims=True)
    cam_to_srgb = np.linalg.inv(srgb_to_cam)
    return (cam_to_srgb / cam_to_srgb.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class NoiseModel:
    """Poisson-Gaussian noise whose parameters follow ISO (see the module docstring).

    ``shot(iso) = shot_k * iso``; ``read(iso) = read_c * iso**2 + read_floor`` (a variance);
    ``variance(x, iso) = shot(iso) * x + read(iso)`` on the normalised [0, 1] signal.
    """

    shot_k: float = 1.2e-6
    read_c: float = 2e-11
    read_floor: float = 1e-6

    def shot(self, iso: float) -> float:
        """Shot-noise gain (variance per unit signal) at ``iso``."""
        return float(self.shot_k * iso)

    def read(self, iso: float) -> float:
        """Signal-independent read-noise variance at ``iso``."""
        return float(self.read_c * iso**2 + self.read_floor)

    def variance(self, x: np.ndarray | float, iso: float) -> np.ndarray | float:
        """Expected noise variance of a pixel of clean value ``x`` at ``iso``."""
        return self.shot(iso) * np.clip(x, 0.0, None) + self.read(iso)

    def sample(self, x: np.ndarray, iso: float, rng: np.random.Generator) -> np.ndarray:
        """Noisy version of the clean mosaic ``x`` (any shape, float32, not clipped)."""
        shot = self.shot(iso)
        lam = np.clip(x, 0.0, None).astype(np.float64) / shot
        y = rng.poisson(lam).astype(np.float64) * shot
        y += rng.normal(0.0, np.sqrt(self.read(iso)), size=x.shape)
        return y.astype(np.float32)


DEFAULT_NOISE = NoiseModel()


@dataclass
class Unprocessed:
    """A clean linear RGGB mosaic made from an sRGB photo, and how it was made.

    ``mosaic``: ``(H, W)`` float32 in [0, 1]; ``camera_rgb``: ``(H, W, 3)`` the
    clean camera-linear image it samples (the ground truth of the raw model);
    ``wb``: (R, G, B) white-balance gains; ``cam_to_srgb``: 3x3.
    """

    mosaic: np.ndarray
    camera_rgb: np.ndarray
    wb: np.ndarray
    cam_to_srgb: np.ndarray
    exposure: float


def unprocess(
    srgb: np.ndarray,
    *,
    wb: Sequence[float] | None = None,
    cam_to_srgb: np.ndarray | None = None,
    exposure: float = 1.0,
    rng: np.random.Generator | None = None,
) -> Unprocessed:
    """sRGB ``(H, W, 3)`` float [0, 1] (H, W even) -> clean linear RGGB mosaic.

    ``wb`` defaults to gains drawn as in Brooks et al. (R in [1.9, 2.4], B in [1.5, 1.9])
    from ``rng`` (or the middle values without one).
    """
    img = np.asarray(srgb, np.float32)
    h, w = img.shape[:2]
    img = img[: h // 2 * 2, : w // 2 * 2]
    if wb is None:
        if rng is None:
            wb = (2.15, 1.0, 1.7)
        else:
            wb = (float(rng.uniform(1.9, 2.4)), 1.0, float(rng.uniform(1.5, 1.9)))
    wb_arr = np.asarray(wb, np.float32)
    cam = default_cam_to_srgb() if cam_to_srgb is None else np.asarray(cam_to_srgb, np.float32)
    linear = srgb_decode(img)
    camera = linear @ np.linalg.inv(cam).astype(np.float32).T
    camera = camera / wb_arr[None, None, :]
    camera = np.clip(camera * float(exposure), 0.0, 1.0).astype(np.float32)
    return Unprocessed(mosaic=mosaic_rgb(camera), camera_rgb=camera, wb=wb_arr, cam_to_srgb=cam, exposure=float(exposure))


def to_sensor(mosaic: np.ndarray, black: int = 512, white: int = 16383) -> np.ndarray:
    """Normalised mosaic (may be slightly negative from noise) -> uint16 sensor values with ``black``/``white``."""
    vals = np.round(black + np.asarray(mosaic, np.float64) * (white - black))
    return np.clip(vals, 0, white).astype(np.uint16)


def write_synthetic_dng(
    path: str | Path,
    mosaic: np.ndarray,
    *,
    iso: float,
    wb: Sequence[float],
    cam_to_srgb: np.ndarray,
    black: int = 512,
    white: int = 16383,
    exposure_time: float | None = None,
) -> Path:
    """Write a normalised RGGB mosaic as a 14-bit-range CFA DNG carrying its ISO."""
    if exposure_time is None:
        exposure_time = 1.0 / max(1.0, float(iso))  # brighter gain, shorter shutter: constant exposure
    return write_dng(
        path, to_sensor(mosaic, black, white), black_level=black, white_level=white, pattern="RGGB",
        wb=wb, cam_to_srgb=cam_to_srgb, iso=iso, exposure_time=exposure_time, make="restorekit", model="synthetic",
    )


def make_synthetic_scenes(
    out_dir: str | Path,
    photos: Iterable[tuple[str, np.ndarray]],
    *,
    isos: Sequence[int] = (100, 800, 1600, 3200, 6400),
    seed: int = 0,
    noise: NoiseModel = DEFAULT_NOISE,
    gt_noise: bool = False,
) -> list[Path]:
    """Write RawNIND-style flat scenes ``<scene>_ISO<iso>_synthetic.dng`` for each ``(scene, srgb)``.

    The lowest ISO is the ground truth: written noise-free unless ``gt_noise``;
    every other ISO gets an independent noise draw from ``noise``. Returns the
    written paths. Deterministic in ``seed``.
    """
    from restorekit.utils.seed import sample_rng

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    isos = sorted(int(i) for i in isos)
    written: list[Path] = []
    for scene, srgb in photos:
        rng = sample_rng(seed, "unprocess", scene)
        up = unprocess(srgb, rng=rng)
        for k, iso in enumerate(isos):
            if k == 0 and not gt_noise:
                m = up.mosaic
            else:
                m = noise.sample(up.mosaic, iso, sample_rng(seed, "noise", scene, iso))
            path = out / f"{scene}_ISO{iso}_synthetic.dng"
            write_synthetic_dng(path, m, iso=iso, wb=up.wb, cam_to_srgb=up.cam_to_srgb)
            written.append(path)
    return written


def bundled_photos(names: Sequence[str] | None = None, size: int | None = None) -> list[tuple[str, np.ndarray]]:
    """``(name, (H, W, 3) float32 sRGB [0, 1])`` for scikit-image's bundled colour photos.

    ``size`` centre-crops each to a square (even) of at most that side.
    """
    from skimage import data

    out = []
    for name in names or ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left"):
        fn = getattr(data, name, None)
        if fn is None:
            continue
        img = np.asarray(fn())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = img[..., :3].astype(np.float32) / 255.0
        if size is not None:
            h, w = img.shape[:2]
            s = min(size, h, w) // 2 * 2
            top, left = (h - s) // 2 // 2 * 2, (w - s) // 2 // 2 * 2
            img = img[top : top + s, left : left + s]
        out.append((name, np.ascontiguousarray(img)))
    return out
