"""Classical restoration baselines: what a user would try before a neural network.

Every baseline maps an ``(H, W, 3)`` float32 RGB image in [0, 1] to the same shape and range,
with its parameters estimated from the degraded image alone (never from the ground truth):

- ``input``: the degraded image itself (the floor every method must beat);
- ``nlm``: OpenCV non-local means (``fastNlMeansDenoising`` on the 8-bit RGB vector image,
  7x7 patches, 21x21 search) with ``h = 255 * sigma``, sigma estimated by :func:`estimate_noise_sigma`;
- ``bilateral``: OpenCV bilateral filter, sigmaColor ``4 * sigma``, sigmaSpace 2 px;
- ``wiener``: Wiener deconvolution with a Gaussian PSF of the sigma estimated by :func:`estimate_blur_sigma`
  (balance from the noise level), on a reflect-padded image;
- ``richardson_lucy``: 20 Richardson-Lucy iterations with the same PSF;
- ``unsharp``: unsharp masking, radius = estimated blur sigma, amount 1;
- ``nlm_wiener``: denoise-then-deconvolve for blur + noise: ``nlm`` first, then Wiener deconvolution
  with the Gaussian PSF estimated on the denoised image and a balance from the noise left after NLM.

``BASELINES`` (a :class:`restorekit.registry.Registry`) maps names to functions; each is added with
:func:`register_baseline` naming the degradation groups it suits (:data:`BASELINE_GROUPS`).

These are honest, untuned-per-image baselines (parameters calibrated once on scikit-image photos).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from restorekit.errors import ConfigError
from restorekit.registry import Registry

Baseline = Callable[[np.ndarray], np.ndarray]


def _gray(img: np.ndarray) -> np.ndarray:
    return (0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]).astype(np.float64)


def estimate_noise_sigma(img: np.ndarray) -> float:
    """Gaussian noise std (on the [0,1] scale) from the finest Haar diagonal band, median absolute
    deviation / 0.6745 (Donoho), averaged over channels. ``img``: (H, W, 3) or (H, W) float in [0, 1]."""
    x = np.asarray(img, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    if h < 2 or w < 2:
        return 0.0
    x = x[:h, :w]
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0
    return float(np.mean([np.median(np.abs(hh[..., c])) / 0.6745 for c in range(x.shape[2])]))


def estimate_blur_sigma(img: np.ndarray, *, probe: float = 1.0, lo: float = 0.3, hi: float = 6.0) -> float:
    """Std of a Gaussian blur from the re-blur gradient ratio at strong edges.

    For an ideal step edge blurred by sigma, re-blurring with ``probe`` reduces the gradient peak by
    ``R = sqrt(sigma^2 + probe^2) / sigma``, so ``sigma = probe / sqrt(R^2 - 1)`` (Zhuo & Sim 2011).
    The median (bias-corrected, see the code) over the strongest 2% gradient pixels is returned, clipped to [lo, hi].
    """
    import cv2

    g = _gray(np.asarray(img, dtype=np.float32)).astype(np.float32)
    if min(g.shape) < 16:
        return lo
    g = cv2.GaussianBlur(g, (0, 0), 0.5)  # tame pixel noise before measuring gradients
    def grad(x: np.ndarray) -> np.ndarray:
        gx = cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3)
        return np.sqrt(gx * gx + gy * gy)

    g0 = grad(g)
    g1 = grad(cv2.GaussianBlur(g, (0, 0), probe))
    m = g0[4:-4, 4:-4]
    thr = np.quantile(m, 0.98)
    sel = (g0 >= thr) & (g1 > 1e-6)
    sel[:4] = sel[-4:] = False
    sel[:, :4] = sel[:, -4:] = False
    if sel.sum() < 10 or thr <= 1e-4:
        return lo
    r = g0[sel] / g1[sel]
    r = r[r > 1.0 + 1e-3]
    if r.size == 0:
        return hi
    est = probe / np.sqrt(r**2 - 1.0)
    # the 0.5 px pre-smoothing adds in quadrature; real edges are not ideal steps and the Sobel
    # derivative widens them: a linear correction calibrated on scikit-image photos blurred by
    # sigma 1..3 (raw estimates 1.46, 2.37, 3.34) removes that bias
    raw = float(np.sqrt(max(np.median(est) ** 2 - 0.25, 0.0)))
    sigma = (raw - 0.5) / 0.94
    return float(np.clip(sigma, lo, hi))


def gaussian_psf(sigma: float) -> np.ndarray:
    """Normalised 2-D Gaussian PSF of radius ceil(3 sigma)."""
    r = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    psf = np.outer(k, k)
    return psf / psf.sum()


def _u8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def nlm(img: np.ndarray) -> np.ndarray:
    """OpenCV non-local means with h from the estimated noise level."""
    import cv2

    sigma = estimate_noise_sigma(img)
    h = float(max(1.0, 255.0 * sigma))
    out = cv2.fastNlMeansDenoising(_u8(img), None, h, 7, 21)
    return out.astype(np.float32) / 255.0


def bilateral(img: np.ndarray) -> np.ndarray:
    """OpenCV bilateral filter, sigmaColor 4x the estimated noise std, sigmaSpace 2 px."""
    import cv2

    sigma = max(estimate_noise_sigma(img), 1.0 / 255.0)
    out = cv2.bilateralFilter(np.ascontiguousarray(img, dtype=np.float32), -1, 4.0 * sigma, 2.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _deconv_channels(img: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], psf: np.ndarray) -> np.ndarray:
    pad = psf.shape[0]
    x = np.pad(np.asarray(img, dtype=np.float64), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.stack([fn(x[..., c], psf) for c in range(x.shape[2])], axis=-1)
    return np.clip(out[pad:-pad, pad:-pad], 0.0, 1.0).astype(np.float32)


def wiener(img: np.ndarray) -> np.ndarray:
    """Wiener deconvolution (scikit-image) with an estimated Gaussian PSF; balance from the noise level."""
    from skimage.restoration import wiener as sk_wiener

    sigma = estimate_blur_sigma(img)
    balance = _wiener_balance(estimate_noise_sigma(img))
    psf = gaussian_psf(sigma)
    return _deconv_channels(img, lambda ch, p: sk_wiener(ch, p, balance, clip=False), psf)


def richardson_lucy(img: np.ndarray, num_iter: int = 20) -> np.ndarray:
    """Richardson-Lucy deconvolution (scikit-image), ``num_iter`` iterations, estimated Gaussian PSF."""
    from skimage.restoration import richardson_lucy as sk_rl

    psf = gaussian_psf(estimate_blur_sigma(img))
    return _deconv_channels(img, lambda ch, p: sk_rl(ch, p, num_iter=num_iter, clip=True), psf)


def unsharp(img: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """Unsharp masking ``img + amount * (img - G_r * img)``, Gaussian radius r = estimated blur sigma."""
    import cv2

    radius = estimate_blur_sigma(img)
    x = np.ascontiguousarray(img, dtype=np.float32)
    blurred = cv2.GaussianBlur(x, (0, 0), radius, borderType=cv2.BORDER_REFLECT)
    return np.clip(x + amount * (x - blurred), 0.0, 1.0).astype(np.float32)


def _wiener_balance(noise: float) -> float:
    return float(np.clip(0.005 + 10.0 * noise**2 / 0.01, 0.005, 1.0))


def nlm_wiener(img: np.ndarray) -> np.ndarray:
    """Denoise then deconvolve: :func:`nlm`, then Wiener with the blur sigma and the residual noise
    level estimated on the denoised image (the blur estimate is not fooled by noise edges there)."""
    from skimage.restoration import wiener as sk_wiener

    den = nlm(img)
    sigma = estimate_blur_sigma(den)
    balance = _wiener_balance(estimate_noise_sigma(den))
    return _deconv_channels(den, lambda ch, p: sk_wiener(ch, p, balance, clip=False), gaussian_psf(sigma))


def identity(img: np.ndarray) -> np.ndarray:
    """The degraded input itself."""
    return np.asarray(img, dtype=np.float32)


#: every baseline by name (the table the evaluation runner reads: ``BASELINES[name](img)``)
BASELINES: Registry[Baseline] = Registry("baseline")
#: the same registry under its older name
BASELINE_REGISTRY = BASELINES
#: which baselines suit which degradation, filled by :func:`register_baseline` (``blur+noise``:
#: everything that fits a blurred, noisy input; ``all``: every baseline; ``none``: no baseline)
BASELINE_GROUPS: Registry[list[str]] = Registry("baseline group")
for _group in ("all", "noise", "blur", "blur+noise", "none"):
    BASELINE_GROUPS.register(_group, [])

#: the degradation groups a baseline may declare (``all`` is implied)
DEGRADATION_GROUPS = ("noise", "blur", "blur+noise")
#: the degradation(s) each baseline was designed for, as declared to :func:`register_baseline`
BASELINE_DEGRADATIONS: Registry[tuple[str, ...]] = Registry("baseline degradation")


def register_baseline(name: str, fn: Baseline, groups: tuple[str, ...]) -> Baseline:
    """Register ``fn`` as baseline ``name``, member of ``groups`` (a subset of :data:`DEGRADATION_GROUPS`)
    and of ``all``; every ``noise`` or ``blur`` baseline also suits ``blur+noise``."""
    bad = [g for g in groups if g not in DEGRADATION_GROUPS]
    if bad or not groups:
        raise ConfigError(f"baseline {name!r}: groups must be among {DEGRADATION_GROUPS}, got {list(groups)}")
    BASELINES.register(name, fn)
    BASELINE_DEGRADATIONS.register(name, tuple(groups))
    members = {"all", *groups}
    if "noise" in groups or "blur" in groups:
        members.add("blur+noise")
    for g in ("all", *DEGRADATION_GROUPS):
        if g in members and name not in BASELINE_GROUPS[g]:
            BASELINE_GROUPS[g].append(name)
    return fn


register_baseline("nlm", nlm, ("noise",))
register_baseline("bilateral", bilateral, ("noise",))
register_baseline("wiener", wiener, ("blur",))
register_baseline("richardson_lucy", richardson_lucy, ("blur",))
register_baseline("unsharp", unsharp, ("blur",))
register_baseline("nlm_wiener", nlm_wiener, ("blur+noise",))


def baseline_groups_of(name: str) -> list[str]:
    """The degradation(s) baseline ``name`` was registered for (``noise``/``blur``/``blur+noise``)."""
    return list(BASELINE_DEGRADATIONS[name])


def resolve_baselines(spec: str | list[str] | None) -> list[str]:
    """Baseline names from ``"all"`` (default), ``"noise"``, ``"blur"``, ``"none"`` or a comma list."""
    if spec is None:
        spec = "all"
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for raw in items:
        name = raw.strip()
        if not name or name == "input":
            continue
        names = BASELINE_GROUPS.get(name, None)
        if names is None:
            if name not in BASELINES:
                known = BASELINES.names() + BASELINE_GROUPS.names()
                raise ConfigError(f"--baselines: unknown baseline {name!r} (known: {', '.join(known)})")
            names = [name]
        for n in names:
            if n not in out:
                out.append(n)
    return out
