"""Synthetic degradation operations.

Every operation is a small pydantic model (its config) with

* ``p``: the probability that it is applied to a given sample,
* parameter ranges (``[low, high]`` pairs, sampled uniformly; a single number
  means a fixed value),
* ``sample(rng, shape) -> dict``: draws the parameters of one application
  (JSON-able, so they can be logged and written on preview tiles),
* ``apply(img, params, rng) -> img``: applies them; ``rng`` supplies the
  remaining randomness (noise realisations, stain positions...).

Images are ``(H, W, 3)`` float32 RGB arrays in [0, 1]; every operation returns
an array of the same shape and dtype, clipped to [0, 1]. OpenCV does the
filtering, so an operation on a 256x256 patch costs well under a millisecond
to a few milliseconds.

The randomness comes only from the ``numpy.random.Generator`` passed in: the
datasets derive it from ``(seed, epoch, index)`` with
:func:`restorekit.utils.seed.sample_rng`, so a sample's degradation is the same
whatever the worker or the order of loading.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BeforeValidator, Field, field_validator

from restorekit.config.base import StrictModel
from restorekit.registry import Registry


def _to_range(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (float(v), float(v))
    return v


def _check_range(v: tuple[float, float]) -> tuple[float, float]:
    lo, hi = v
    if lo > hi:
        raise ValueError(f"range [{lo}, {hi}] has low > high")
    return (float(lo), float(hi))


#: ``[low, high]`` (sampled uniformly) or one number (fixed).
Range = Annotated[tuple[float, float], BeforeValidator(_to_range)]


def _uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    lo, hi = r
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))


def _randint(rng: np.random.Generator, r: tuple[float, float]) -> int:
    """Integer in [low, high] inclusive."""
    lo, hi = int(round(r[0])), int(round(r[1]))
    return lo if lo == hi else int(rng.integers(lo, hi + 1))


def _clip(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0.0, 1.0).astype(np.float32, copy=False)


def _r(x: float, nd: int = 4) -> float:
    return float(round(float(x), nd))


class Op(StrictModel):
    """Base class: probability ``p`` and the sample/apply protocol."""

    name: str
    p: float = Field(1.0, ge=0.0, le=1.0)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        """Draw this application's parameters (JSON-able)."""
        return {}

    def apply(self, img: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """Apply to ``img`` (H, W, 3) float32 [0, 1]; return the same shape, clipped."""
        raise NotImplementedError

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any] | None]:
        """Apply with probability ``p``: returns (image, params) or (image, None) when skipped.

        The draw deciding whether it applies is always consumed, so the random
        stream of later operations does not depend on ``p``.
        """
        if rng.random() >= self.p:
            return img, None
        params = self.sample(rng, img.shape)
        return _clip(self.apply(img, params, rng)), params


# ----------------------------------------------------------------------------- noise


class GaussianNoise(Op):
    """Additive white Gaussian noise, ``sigma`` on the [0, 1] scale, drawn per sample."""

    name: Literal["gaussian_noise"] = "gaussian_noise"
    sigma: Range = (0.01, 0.05)
    per_channel: bool = True  #: False: the same noise on the three channels (luminance noise)

    _v = field_validator("sigma")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        return {"sigma": _r(_uniform(rng, self.sigma), 5)}

    def apply(self, img, params, rng):  # noqa: ANN001
        h, w, c = img.shape
        if self.per_channel:
            n = rng.standard_normal((h, w, c), dtype=np.float32)
        else:
            n = np.repeat(rng.standard_normal((h, w, 1), dtype=np.float32), c, axis=2)
        return img + np.float32(params["sigma"]) * n


class PoissonGaussianNoise(Op):
    """Signal-dependent noise: ``y = a * Poisson(x / a) + N(0, b^2)``, so ``Var[y] = a x + b^2``.

    ``gain`` (a) is the size of one photo-electron on the [0, 1] scale (larger =
    darker/higher ISO), ``read_sigma`` (b) the signal-independent read noise.
    """

    name: Literal["poisson_gaussian"] = "poisson_gaussian"
    gain: Range = (0.001, 0.01)
    read_sigma: Range = (0.002, 0.02)

    _v = field_validator("gain", "read_sigma")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        return {"gain": _r(_uniform(rng, self.gain), 6), "read_sigma": _r(_uniform(rng, self.read_sigma), 6)}

    def apply(self, img, params, rng):  # noqa: ANN001
        a = max(float(params["gain"]), 1e-8)
        shot = rng.poisson(np.clip(img, 0, 1).astype(np.float64) / a).astype(np.float32) * np.float32(a)
        return shot + np.float32(params["read_sigma"]) * rng.standard_normal(img.shape, dtype=np.float32)


class SaltPepper(Op):
    """Impulse specks: a fraction of the pixels set to white (salt) or black (pepper), half each."""

    name: Literal["salt_pepper"] = "salt_pepper"
    amount: Range = (0.001, 0.01)
    salt_ratio: float = Field(0.5, ge=0.0, le=1.0)

    _v = field_validator("amount")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        return {"amount": _r(_uniform(rng, self.amount), 5)}

    def apply(self, img, params, rng):  # noqa: ANN001
        h, w = img.shape[:2]
        u = rng.random((h, w), dtype=np.float32)
        amount = float(params["amount"])
        out = img.copy()
        out[u < amount * self.salt_ratio] = 1.0
        out[(u >= amount * self.salt_ratio) & (u < amount)] = 0.0
        return out


# ----------------------------------------------------------------------------- blur


def _gamma_wrap(img: np.ndarray, gamma: float | None, fn: Any) -> np.ndarray:
    """Apply ``fn`` in linear light (``x ** gamma``) when ``gamma`` is set (GoPro 'blur_gamma' style)."""
    if not gamma:
        return fn(img)
    lin = np.power(np.clip(img, 0, 1), gamma, dtype=np.float32)
    return np.power(np.clip(fn(lin), 0, 1), 1.0 / gamma, dtype=np.float32)


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.filter2D(img, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)


class GaussianBlur(Op):
    """Gaussian blur with an odd kernel size drawn from ``kernel_sizes``.

    ``sigma`` ``None`` calls ``cv2.GaussianBlur(img, (k, k), 0)`` exactly as the
    manuscript project did (OpenCV's kernel for that size; the nominal sigma
    ``0.3 * ((k - 1) / 2 - 1) + 0.8`` is logged); otherwise it is drawn from the range.
    """

    name: Literal["gaussian_blur"] = "gaussian_blur"
    kernel_sizes: list[int] = Field(default_factory=lambda: [3, 5, 7])
    sigma: Range | None = None

    @field_validator("kernel_sizes")
    @classmethod
    def _odd(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 or k % 2 == 0 for k in v):
            raise ValueError(f"kernel sizes must be odd positive integers, got {v}")
        return v

    def sample(self, rng, shape):  # noqa: ANN001
        k = int(self.kernel_sizes[int(rng.integers(len(self.kernel_sizes)))])
        if self.sigma is None:
            sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
        else:
            sigma = _uniform(rng, self.sigma)
        return {"kernel": k, "sigma": _r(sigma)}

    def apply(self, img, params, rng):  # noqa: ANN001
        import cv2

        k = int(params["kernel"])
        # sigma 0 = OpenCV's own kernel for this size (its fixed tables for k <= 7), as in the seed project
        sigma = 0.0 if self.sigma is None else float(params["sigma"])
        return cv2.GaussianBlur(img, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)


def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Anti-aliased straight motion-blur kernel of ``length`` px at ``angle_deg``; sums to 1.

    The segment is centred in an odd square kernel; points along it are
    splatted bilinearly, so sub-pixel lengths and any angle are represented.
    """
    length = max(float(length), 1.0)
    size = int(math.ceil(length)) | 1
    size += 2
    k = np.zeros((size, size), np.float64)
    c = (size - 1) / 2.0
    theta = math.radians(angle_deg)
    dx, dy = math.cos(theta), -math.sin(theta)
    n = max(int(length * 4), 2)
    ts = np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, n)
    _splat(k, c + ts * dx, c + ts * dy)
    return (k / k.sum()).astype(np.float32)


def _splat(k: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:
    """Add unit mass at each (x, y), distributed bilinearly over the 4 neighbours."""
    x0 = np.floor(xs).astype(int)
    y0 = np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for ox, oy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + ox, y0 + oy
        ok = (xi >= 0) & (yi >= 0) & (xi < k.shape[1]) & (yi < k.shape[0])
        np.add.at(k, (yi[ok], xi[ok]), wgt[ok])


def trajectory_kernel(length: float, angle_deg: float, rng: np.random.Generator, *, curvature: float = 0.5) -> np.ndarray:
    """Random camera-shake kernel: a smooth random walk of total ``length`` px starting along ``angle_deg``.

    The heading turns by a random, momentum-smoothed amount at each step
    (``curvature`` = typical total turn in radians), then the path is centred
    on its mass and splatted into an odd square kernel that sums to 1.
    """
    length = max(float(length), 1.0)
    steps = max(int(length * 2), 4)
    step = length / steps
    turn = rng.standard_normal(steps) * (curvature / math.sqrt(steps))
    turn = np.convolve(turn, np.ones(5) / 5.0, mode="same")
    heading = math.radians(angle_deg) + np.cumsum(turn)
    xs = np.concatenate([[0.0], np.cumsum(step * np.cos(heading))])
    ys = np.concatenate([[0.0], np.cumsum(-step * np.sin(heading))])
    xs -= xs.mean()
    ys -= ys.mean()
    ext = int(math.ceil(max(np.abs(xs).max(), np.abs(ys).max()))) + 1
    size = 2 * ext + 1
    k = np.zeros((size, size), np.float64)
    # resample the path densely so the kernel is continuous
    t = np.linspace(0, 1, len(xs))
    tt = np.linspace(0, 1, steps * 4)
    _splat(k, np.interp(tt, t, xs) + ext, np.interp(tt, t, ys) + ext)
    return (k / k.sum()).astype(np.float32)


class MotionBlur(Op):
    """Motion blur with a random kernel: ``length`` px, ``angle`` degrees.

    ``kind`` ``line`` is a straight anti-aliased segment; ``trajectory`` a smooth
    random camera-shake path of that length (new path per sample). ``gamma``
    (e.g. 2.2) blurs in linear light, as GoPro's ``blur_gamma`` frames.
    """

    name: Literal["motion_blur"] = "motion_blur"
    kind: Literal["line", "trajectory"] = "line"
    length: Range = (5.0, 15.0)
    angle: Range = (0.0, 180.0)
    curvature: float = Field(0.8, ge=0.0)
    gamma: float | None = None

    _v = field_validator("length", "angle")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        return {"kind": self.kind, "length": _r(_uniform(rng, self.length), 2), "angle": _r(_uniform(rng, self.angle), 1)}

    def kernel(self, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        """The (odd, square, sum-1) kernel for ``params``; trajectories draw their path from ``rng``."""
        if params.get("kind", self.kind) == "trajectory":
            return trajectory_kernel(params["length"], params["angle"], rng, curvature=self.curvature)
        return line_kernel(params["length"], params["angle"])

    def apply(self, img, params, rng):  # noqa: ANN001
        k = self.kernel(params, rng)
        return _gamma_wrap(img, self.gamma, lambda x: _filter(x, k))


def disk_kernel(radius: float) -> np.ndarray:
    """Anti-aliased disc (defocus / out-of-focus) kernel of ``radius`` px; sums to 1."""
    radius = max(float(radius), 0.5)
    ext = int(math.ceil(radius))
    yy, xx = np.mgrid[-ext : ext + 1, -ext : ext + 1]
    d = np.sqrt(xx**2 + yy**2)
    k = np.clip(radius + 0.5 - d, 0.0, 1.0)
    return (k / k.sum()).astype(np.float32)


class DefocusBlur(Op):
    """Out-of-focus blur: convolution with an anti-aliased disc of ``radius`` px."""

    name: Literal["defocus_blur"] = "defocus_blur"
    radius: Range = (1.0, 4.0)
    gamma: float | None = None

    _v = field_validator("radius")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        return {"radius": _r(_uniform(rng, self.radius), 2)}

    def apply(self, img, params, rng):  # noqa: ANN001
        k = disk_kernel(params["radius"])
        return _gamma_wrap(img, self.gamma, lambda x: _filter(x, k))


_INTERP = {"nearest": 0, "bilinear": 1, "bicubic": 2, "area": 3, "lanczos": 4}  # cv2.INTER_* values


class Resample(Op):
    """Down-then-up sampling blur (the distillation project's degradation, DIV2K-style x4).

    The image is resized by ``scale`` (< 1) with one of ``down`` (chosen per
    sample), then back to its original size with ``up``: input and target keep
    the same size, as restoration models expect.
    """

    name: Literal["resample"] = "resample"
    scale: Range = (0.25, 0.5)
    down: list[Literal["nearest", "bilinear", "bicubic", "area", "lanczos"]] = Field(default_factory=lambda: ["area", "bilinear", "bicubic"])
    up: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bicubic"

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: tuple[float, float]) -> tuple[float, float]:
        v = _check_range(v)
        if v[0] <= 0 or v[1] > 1:
            raise ValueError(f"scale must lie in (0, 1], got {list(v)}")
        return v

    def sample(self, rng, shape):  # noqa: ANN001
        down = self.down[int(rng.integers(len(self.down)))]
        return {"scale": _r(_uniform(rng, self.scale), 4), "down": down}

    def apply(self, img, params, rng):  # noqa: ANN001
        import cv2

        h, w = img.shape[:2]
        s = float(params["scale"])
        sw, sh = max(1, int(round(w * s))), max(1, int(round(h * s)))
        small = cv2.resize(img, (sw, sh), interpolation=_INTERP[params["down"]])
        return cv2.resize(small, (w, h), interpolation=_INTERP[self.up])


# ----------------------------------------------------------------------------- codec


def jpeg_roundtrip(img: np.ndarray, quality: int) -> tuple[np.ndarray, bytes]:
    """Encode ``img`` (H, W, 3) float [0, 1] as a real JPEG (OpenCV/libjpeg) and decode it back.

    Returns (decoded float32 image, the JPEG bytes).
    """
    import cv2

    q8 = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(q8[..., ::-1]), [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 RGB
        raise RuntimeError("OpenCV failed to encode a JPEG")
    data = buf.tobytes()
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return dec[..., ::-1].astype(np.float32) * np.float32(1.0 / 255.0), data


class Jpeg(Op):
    """JPEG compression artefacts from the real codec, ``quality`` drawn as an integer in the range."""

    name: Literal["jpeg"] = "jpeg"
    quality: Range = (60, 90)

    @field_validator("quality")
    @classmethod
    def _q(cls, v: tuple[float, float]) -> tuple[float, float]:
        v = _check_range(v)
        if v[0] < 1 or v[1] > 100:
            raise ValueError(f"JPEG quality must lie in [1, 100], got {list(v)}")
        return v

    def sample(self, rng, shape):  # noqa: ANN001
        return {"quality": _randint(rng, self.quality)}

    def apply(self, img, params, rng):  # noqa: ANN001
        return jpeg_roundtrip(img, int(params["quality"]))[0]


# ----------------------------------------------------------------------------- photometric / ageing


class Fade(Op):
    """Contrast/brightness fading: ``img * contrast + brightness``."""

    name: Literal["fade"] = "fade"
    contrast: Range = (0.5, 0.9)
    brightness: Range = (0.05, 0.20)

    _v = field_validator("contrast", "brightness")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        return {"contrast": _r(_uniform(rng, self.contrast)), "brightness": _r(_uniform(rng, self.brightness))}

    def apply(self, img, params, rng):  # noqa: ANN001
        return img * np.float32(params["contrast"]) + np.float32(params["brightness"])


class YellowTint(Op):
    """Yellow ageing tint: multiply R, G, B by ``[1, green, blue]``."""

    name: Literal["yellow_tint"] = "yellow_tint"
    green: Range = (0.90, 0.98)
    blue: Range = (0.75, 0.90)

    _v = field_validator("green", "blue")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        return {"green": _r(_uniform(rng, self.green)), "blue": _r(_uniform(rng, self.blue))}

    def apply(self, img, params, rng):  # noqa: ANN001
        return img * np.array([1.0, params["green"], params["blue"]], dtype=np.float32)


class Stains(Op):
    """Stains/blotches: ``count`` discs of ``radius`` px, each multiplying the image by ``darkness``.

    ``softness`` 0 gives the hard discs of the manuscript project; > 0 feathers
    the edge over that fraction of the radius. ``color`` (RGB multipliers) tints
    the stain (e.g. brownish water marks), default neutral.
    """

    name: Literal["stains"] = "stains"
    count: Range = (1, 5)
    radius: Range = (10, 50)
    darkness: Range = (0.3, 0.7)
    softness: float = Field(0.0, ge=0.0, le=1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)

    _v = field_validator("count", "radius", "darkness")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        h, w = shape[:2]
        stains = []
        for _ in range(_randint(rng, self.count)):
            stains.append(
                {
                    "x": int(rng.integers(0, w)),
                    "y": int(rng.integers(0, h)),
                    "r": _randint(rng, self.radius),
                    "d": _r(_uniform(rng, self.darkness), 3),
                }
            )
        return {"stains": stains}

    def apply(self, img, params, rng):  # noqa: ANN001
        h, w = img.shape[:2]
        out = img.copy()
        yy, xx = np.ogrid[:h, :w]
        color = np.asarray(self.color, np.float32)
        for s in params["stains"]:
            d = np.sqrt((xx - s["x"]) ** 2 + (yy - s["y"]) ** 2).astype(np.float32)
            r = float(s["r"])
            if self.softness > 0:
                edge = max(r * self.softness, 1.0)
                m = np.clip((r - d) / edge, 0.0, 1.0)
            else:
                m = (d <= r).astype(np.float32)
            factor = 1.0 - m[..., None] * (1.0 - np.float32(s["d"]) * color)
            out *= factor
        return out


class InkBleed(Op):
    """Ink bleeding: dark strokes spread into the paper (grey erosion, blurred), blended by ``strength``."""

    name: Literal["ink_bleed"] = "ink_bleed"
    radius: Range = (1, 2)
    strength: Range = (0.3, 0.8)

    _v = field_validator("radius", "strength")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        return {"radius": _randint(rng, self.radius), "strength": _r(_uniform(rng, self.strength), 3)}

    def apply(self, img, params, rng):  # noqa: ANN001
        import cv2

        r = int(params["radius"])
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        spread = cv2.GaussianBlur(cv2.erode(img, k), (0, 0), max(r * 0.7, 0.5))
        a = np.float32(params["strength"])
        return (1 - a) * img + a * np.minimum(img, spread)


class BleedThrough(Op):
    """Bleed-through: the (mirrored, blurred) writing of the other side of the page shows faintly.

    The verso is the page itself flipped left-right and shifted (a stand-in
    for an unseen back page); its darkness, scaled by ``strength``, darkens the
    recto multiplicatively.
    """

    name: Literal["bleed_through"] = "bleed_through"
    strength: Range = (0.1, 0.4)
    blur: Range = (1.0, 3.0)
    max_shift: int = Field(16, ge=0)

    _v = field_validator("strength", "blur")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        s = self.max_shift
        return {
            "strength": _r(_uniform(rng, self.strength), 3),
            "blur": _r(_uniform(rng, self.blur), 2),
            "dx": int(rng.integers(-s, s + 1)),
            "dy": int(rng.integers(-s, s + 1)),
        }

    def apply(self, img, params, rng):  # noqa: ANN001
        import cv2

        lum = img @ np.array([0.299, 0.587, 0.114], np.float32)
        verso = np.roll(lum[:, ::-1], (params["dy"], params["dx"]), axis=(0, 1))
        verso = cv2.GaussianBlur(np.ascontiguousarray(verso), (0, 0), float(params["blur"]))
        ink = 1.0 - verso
        return img * (1.0 - np.float32(params["strength"]) * ink)[..., None]


class PaperTexture(Op):
    """Paper texture: low-frequency multiplicative mottling plus fine fibre grain.

    ``mottle`` is the amplitude of a smooth noise field (scale ``scale`` px),
    ``grain`` the std of per-pixel grain; both multiply the image (ink and paper alike).
    """

    name: Literal["paper_texture"] = "paper_texture"
    mottle: Range = (0.02, 0.08)
    grain: Range = (0.005, 0.02)
    scale: Range = (8, 48)

    _v = field_validator("mottle", "grain", "scale")(_check_range)

    def sample(self, rng, shape):  # noqa: ANN001
        return {
            "mottle": _r(_uniform(rng, self.mottle)),
            "grain": _r(_uniform(rng, self.grain)),
            "scale": _r(_uniform(rng, self.scale), 1),
        }

    def apply(self, img, params, rng):  # noqa: ANN001
        import cv2

        h, w = img.shape[:2]
        s = max(float(params["scale"]), 1.0)
        sh, sw = max(2, int(math.ceil(h / s)) + 1), max(2, int(math.ceil(w / s)) + 1)
        coarse = rng.standard_normal((sh, sw), dtype=np.float32)
        field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        field /= max(float(field.std()), 1e-6)
        tex = 1.0 + np.float32(params["mottle"]) * field + np.float32(params["grain"]) * rng.standard_normal((h, w), dtype=np.float32)
        return img * tex[..., None]


class OneOf(Op):
    """Apply exactly one of ``ops`` (chosen with ``weights``), e.g. Gaussian *or* motion blur.

    The chosen op's own ``p`` still applies. Params: ``{"chosen": name, **its params}``.
    """

    name: Literal["one_of"] = "one_of"
    ops: list["OpConfig"]
    weights: list[float] | None = None

    @field_validator("ops")
    @classmethod
    def _nonempty(cls, v: list[Any]) -> list[Any]:
        if not v:
            raise ValueError("one_of needs at least one op")
        return v

    def __call__(self, img, rng):  # noqa: ANN001
        if rng.random() >= self.p:
            return img, None
        w = np.asarray(self.weights if self.weights else [1.0] * len(self.ops), np.float64)
        if len(w) != len(self.ops) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"one_of weights {self.weights} do not match its {len(self.ops)} ops")
        op = self.ops[int(rng.choice(len(self.ops), p=w / w.sum()))]
        out, params = op(img, rng)
        if params is None:
            return out, None
        return out, {"chosen": op.name, **params}


#: every operation class, in documentation order: the ONE list both the config union
#: (:data:`OpConfig`, discriminated on ``name``) and the name registry (:data:`OPS`) are built from
_OP_CLASSES: tuple[type["Op"], ...] = (
    GaussianNoise,
    PoissonGaussianNoise,
    SaltPepper,
    GaussianBlur,
    MotionBlur,
    DefocusBlur,
    Resample,
    Jpeg,
    Fade,
    YellowTint,
    Stains,
    InkBleed,
    BleedThrough,
    PaperTexture,
    OneOf,
)

OpConfig = Annotated[Union[_OP_CLASSES], Field(discriminator="name")]

OneOf.model_rebuild()


def op_name(cls: type[Op]) -> str:
    """The ``name`` literal an operation class is selected by in configs."""
    return str(cls.model_fields["name"].default)


#: every operation class by its ``name`` (``OPS["jpeg"]``, ``"jpeg" in OPS``, ``sorted(OPS)``)
OPS: Registry[type[Op]] = Registry("degradation op")
for _cls in _OP_CLASSES:
    OPS.register(op_name(_cls), _cls)
del _cls
