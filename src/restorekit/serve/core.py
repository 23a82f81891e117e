"""The inference core shared by the web app, the HTTP service and the Azure Functions handler.

Every front end goes through the same three steps as ``restorekit restore``:

1. decode the uploaded bytes with :func:`restorekit.io.decode_image` into an
   ``(H, W, 3)`` float32 RGB array in [0, 1] (EXIF orientation applied, alpha
   dropped), refusing empty / truncated / non-image / oversized uploads;
2. restore it with :func:`restorekit.inference.restore_image` (the same tiling,
   blending, value-range conversion and clipping as the CLI);
3. encode the ``(H, W, 3)`` [0, 1] result with :func:`restorekit.io.encode_image`.

Because nothing else touches the pixels, a given model, image and
:class:`RestoreSettings` give the same output bytes from the CLI, the web app,
the service and the Azure handler.

Models are restorekit packages (``.safetensors``) loaded once per device by a
thread-safe :class:`ModelStore` (explicit files, a folder of packages, or
in-memory modules).
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from restorekit.errors import CheckpointError, ConfigError, ImageReadError
from restorekit.models.spec import arch_of

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

    from restorekit.io import ImageInfo

#: Default upload size limit (bytes) for the service and the web app.
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
#: Default pixel limit (width * height) for uploads: 40 megapixels.
DEFAULT_MAX_PIXELS = 40_000_000

#: Output formats: key -> (encode_image format, MIME type, file extension).
OUTPUT_FORMATS: dict[str, tuple[str, str, str]] = {
    "png": ("PNG", "image/png", ".png"),
    "jpeg": ("JPEG", "image/jpeg", ".jpg"),
    "tiff": ("TIFF", "image/tiff", ".tif"),
    "webp": ("WEBP", "image/webp", ".webp"),
}
_FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff"}
#: MIME type of each decoded input format (``ImageInfo.format``), for data URLs.
INPUT_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "TIFF": "image/tiff", "WEBP": "image/webp", "BMP": "image/bmp"}


class UploadTooLargeError(ImageReadError):
    """An upload exceeds the byte or pixel limit; ``limit`` names which ("bytes" or "pixels")."""

    def __init__(self, name: str, reason: str, limit: str) -> None:
        self.limit = limit
        super().__init__(name, reason)


# --------------------------------------------------------------------------- settings and limits


@dataclass(frozen=True)
class Limits:
    """Upload limits: encoded size in bytes and decoded width * height."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.max_upload_bytes <= 0:
            raise ConfigError(f"max_upload_bytes must be > 0, got {self.max_upload_bytes}")
        if self.max_pixels <= 0:
            raise ConfigError(f"max_pixels must be > 0, got {self.max_pixels}")


@dataclass(frozen=True)
class RestoreSettings:
    """Tiling settings passed to :func:`restorekit.inference.restore_image`.

    ``None`` means "restore_image's own default", so default settings here are
    exactly the defaults of ``restorekit restore``. ``tile`` is ``"auto"``, ``0``
    (whole image at once) or a tile size in pixels; ``overlap`` is pixels (int)
    or a fraction of the tile (float in (0, 1)); ``blend`` "linear" | "cosine";
    ``batch`` tiles per forward; ``backend`` "auto" | "eager" | "compile" | "onnxruntime".
    """

    tile: int | str | None = None
    overlap: int | float | None = None
    blend: str | None = None
    batch: int | None = None
    backend: str | None = None
    ensemble: bool = False

    _FIELDS = ("tile", "overlap", "blend", "batch", "backend", "ensemble")

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``restore_image`` (only the settings that were given)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in self._FIELDS[:-1] if getattr(self, k) is not None}
        if self.ensemble:
            out["ensemble"] = True
        return out

    def with_values(self, **changes: Any) -> "RestoreSettings":
        """A copy with the given non-None fields replaced."""
        vals = {k: getattr(self, k) for k in self._FIELDS}
        vals.update({k: v for k, v in changes.items() if v is not None})
        return RestoreSettings(**vals)


def parse_tile(value: Any, setting: str = "tile") -> int | str | None:
    """Parse a tile setting from text: ``None``/"" -> None, "auto" -> "auto", digits -> int (0 or >= 16)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        n = int(str(value).strip())
    except ValueError as exc:
        raise ConfigError(f"{setting} must be 'auto', 0 or a tile size in pixels, got {value!r}") from exc
    if n != 0 and n < 16:
        raise ConfigError(f"{setting} must be 'auto', 0 (no tiling) or >= 16 pixels, got {n}")
    return n


def parse_overlap(value: Any, setting: str = "overlap") -> int | float | None:
    """Parse an overlap setting: ``None``/"" -> None, an int >= 0 (pixels) or a float in (0, 1) (fraction)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if "." in text:
            f = float(text)
            if not 0.0 < f < 1.0:
                raise ConfigError(f"{setting}: a fractional overlap must be in (0, 1), got {value!r}")
            return f
        n = int(text)
    except ValueError as exc:
        raise ConfigError(f"{setting} must be pixels (int >= 0) or a fraction in (0, 1), got {value!r}") from exc
    if n < 0:
        raise ConfigError(f"{setting} must be >= 0, got {n}")
    return n


def normalize_format(name: str | None, default: str = "png", setting: str = "format") -> str:
    """Canonical output format key ("png", "jpeg", "tiff", "webp") for ``name`` (case-insensitive, jpg/tif accepted)."""
    if name is None or str(name).strip() == "":
        return default
    key = str(name).strip().lower().lstrip(".")
    key = _FORMAT_ALIASES.get(key, key)
    if key not in OUTPUT_FORMATS:
        raise ConfigError(f"{setting} must be one of {', '.join(OUTPUT_FORMATS)} (or jpg/tif), got {name!r}")
    return key


def format_for_mime(mime: str) -> str | None:
    """Output format key for a MIME type (``image/png`` -> "png"), or None when unsupported."""
    mime = mime.strip().lower()
    for key, (_, m, _) in OUTPUT_FORMATS.items():
        if m == mime:
            return key
    if mime in ("image/jpg", "image/pjpeg"):
        return "jpeg"
    if mime == "image/tif":
        return "tiff"
    return None


# --------------------------------------------------------------------------- decoding and encoding


def decode_upload(data: bytes, *, name: str = "upload", limits: Limits | None = None) -> tuple[np.ndarray, "ImageInfo"]:
    """Decode uploaded bytes into an ``(H, W, 3)`` float32 RGB array in [0, 1] and its :class:`ImageInfo`.

    Raises :class:`UploadTooLargeError` (a :class:`ImageReadError`) when ``data`` exceeds
    ``limits.max_upload_bytes`` or the header declares more than ``limits.max_pixels`` pixels,
    and :class:`ImageReadError` for empty, truncated or non-image data.
    """
    from restorekit.io import decode_image

    lim = limits or Limits()
    if len(data) > lim.max_upload_bytes:
        raise UploadTooLargeError(
            name,
            f"upload is {len(data):,} bytes, over the limit of {lim.max_upload_bytes:,} bytes ({_mb(lim.max_upload_bytes)})",
            "bytes",
        )
    try:
        return decode_image(data, name=name, max_pixels=lim.max_pixels)
    except ImageReadError as exc:
        if exc.reason.startswith("too many pixels"):
            raise UploadTooLargeError(name, exc.reason.split(" (possible")[0], "pixels") from exc
        raise


def probe_upload(data: bytes, *, name: str = "upload", limits: Limits | None = None) -> tuple[int, int, str]:
    """Cheap check of an upload from its header only: ``(width, height, format)``.

    Raises what :func:`decode_upload` would for an empty, unidentifiable or
    oversized file, without decoding pixels (a service checks requests with it
    before they queue; truncated pixel data is only found by decoding).
    """
    import io

    from PIL import Image, UnidentifiedImageError

    lim = limits or Limits()
    if len(data) > lim.max_upload_bytes:
        raise UploadTooLargeError(
            name,
            f"upload is {len(data):,} bytes, over the limit of {lim.max_upload_bytes:,} bytes ({_mb(lim.max_upload_bytes)})",
            "bytes",
        )
    if not data:
        raise ImageReadError(name, "file is empty (0 bytes)")
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise UploadTooLargeError(name, f"too many pixels ({exc})", "pixels") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(name, "not a recognised image format (PNG, JPEG, TIFF, WebP, BMP)") from exc
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on corrupt headers
        raise ImageReadError(name, f"corrupt image header ({exc})") from exc
    w, h = im.size
    if w <= 0 or h <= 0:
        raise ImageReadError(name, f"image has no pixels ({w}x{h})")
    if w * h > lim.max_pixels:
        raise UploadTooLargeError(name, f"too many pixels: {w}x{h} = {w * h:,} exceeds the limit of {lim.max_pixels:,}", "pixels")
    return w, h, (im.format or "UNKNOWN").upper()


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MB"


def encode_output(image: np.ndarray, fmt: str = "png", *, quality: int = 95, bit_depth: int = 8) -> bytes:
    """Encode an ``(H, W, 3)`` float image in [0, 1] as ``fmt`` (a key of :data:`OUTPUT_FORMATS`)."""
    from restorekit.io import encode_image

    key = normalize_format(fmt)
    return encode_image(image, OUTPUT_FORMATS[key][0], bit_depth=bit_depth, quality=quality)


def output_bit_depth(input_bit_depth: int, fmt: str) -> int:
    """Bits per channel of an output, as ``restorekit restore`` chooses: 16 for >8-bit inputs saved as PNG/TIFF."""
    return 16 if input_bit_depth > 8 and normalize_format(fmt) in ("png", "tiff") else 8


def data_url(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,<data>``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def decode_base64_image(text: Any, *, name: str = "image") -> bytes:
    """Bytes of a base64 string (a ``data:...;base64,`` prefix is accepted); ImageReadError if invalid."""
    if not isinstance(text, str):
        raise ImageReadError(name, f"expected a base64 string, got {type(text).__name__}")
    payload = text.strip()
    if payload.startswith("data:"):
        head, sep, rest = payload.partition(",")
        if not sep or ";base64" not in head:
            raise ImageReadError(name, "data URL is not base64-encoded (expected 'data:<mime>;base64,...')")
        payload = rest
    payload = "".join(payload.split())
    if not payload:
        raise ImageReadError(name, "file is empty (0 bytes)")
    try:
        return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageReadError(name, f"invalid base64 data ({exc})") from exc


# --------------------------------------------------------------------------- models


@dataclass
class LoadedModel:
    """A model ready for inference on ``device`` and what the front ends show about it."""

    name: str
    model: "nn.Module"
    device: str
    source: str
    arch: str
    value_range: str
    params: int
    _runtimes: dict[str, Any] = field(default_factory=dict, repr=False)
    _rt_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def runner(self, backend: str | None = None) -> Any:
        """What :func:`restore_image` is given, exactly as ``restorekit restore`` does it.

        One :class:`~restorekit.inference.Runtime` per backend, built once and
        reused for every image; NAFNet-family models keep the module (TLC depends
        on the tile size, so the runtime is made per call).
        """
        if self.arch.startswith("nafnet"):
            return self.model
        key = backend or "auto"
        with self._rt_lock:
            if key not in self._runtimes:
                from restorekit.inference import make_runtime

                self._runtimes[key] = make_runtime(self.model, self.device, key)
            return self._runtimes[key]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "arch": self.arch,
            "value_range": self.value_range,
            "params": self.params,
            "device": self.device,
        }


def _count_params(model: "nn.Module") -> int:
    return int(sum(p.numel() for p in model.parameters()))


def prepare_model(model: "nn.Module", *, name: str, device: str = "cpu", source: str = "<memory>") -> LoadedModel:
    """Put ``model`` in eval mode on ``device`` and wrap it as a :class:`LoadedModel`."""
    from restorekit.device import resolve_device
    from restorekit.models.value_range import model_value_range

    dev = resolve_device(device)
    model = model.to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(
        name=name,
        model=model,
        device=str(dev),
        source=source,
        arch=str(arch_of(model)),
        value_range=model_value_range(model),
        params=_count_params(model),
    )


def load_for_inference(path: str | Path, *, device: str = "cpu", name: str | None = None) -> LoadedModel:
    """Load the model file at ``path`` (see :func:`restorekit.models.loading.load_model`) onto ``device``."""
    from restorekit.models.loading import load_model

    p = Path(path)
    model = load_model(p, map_location="cpu")
    return prepare_model(model, name=name or p.stem, device=device, source=str(p))


def discover_models(paths: Sequence[str | Path] = (), models_dir: str | Path | None = None) -> dict[str, Path]:
    """Name -> file of the models given explicitly and of every ``*.safetensors`` package in ``models_dir``.

    Names are file stems; a clash gets the parent folder prefixed. A missing
    explicit file or folder raises :class:`CheckpointError` / :class:`ConfigError`.
    """
    from restorekit.models.package import is_package

    found: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise CheckpointError(f"model file '{p}' does not exist")
        if p.is_dir():
            found.extend(sorted(q for q in p.glob("*.safetensors") if is_package(q)))
        else:
            found.append(p)
    if models_dir is not None:
        d = Path(models_dir).expanduser()
        if not d.is_dir():
            raise ConfigError(f"models_dir '{d}' is not a folder")
        found.extend(sorted(q for q in d.glob("*.safetensors") if is_package(q)))
    out: dict[str, Path] = {}
    for p in found:
        if p.resolve() in {q.resolve() for q in out.values()}:
            continue
        name = p.stem
        if name in out:
            name = f"{p.parent.name}/{p.stem}"
        k = 2
        base = name
        while name in out:
            name = f"{base}-{k}"
            k += 1
        out[name] = p
    return out


class ModelStore:
    """Thread-safe catalogue of models, each loaded once per device on first use.

    ``paths``/``models_dir`` list package files; ``modules`` adds in-memory models
    (already built ``nn.Module``\\ s, e.g. in tests or notebooks). The first name
    is the default model.
    """

    def __init__(
        self,
        paths: Sequence[str | Path] = (),
        models_dir: str | Path | None = None,
        *,
        device: str = "cpu",
        modules: Mapping[str, "nn.Module"] | None = None,
    ) -> None:
        self.device = device
        self._files = discover_models(paths, models_dir)
        self._modules = dict(modules or {})
        self._loaded: dict[tuple[str, str], LoadedModel] = {}
        self._lock = threading.Lock()
        self._name_locks: dict[str, threading.Lock] = {}

    def names(self) -> list[str]:
        """Model names, default first."""
        return list(self._modules) + [n for n in self._files if n not in self._modules]

    @property
    def default_name(self) -> str:
        names = self.names()
        if not names:
            raise ConfigError("no model configured: pass --model PATH or --models-dir DIR")
        return names[0]

    def source(self, name: str) -> str:
        return str(self._files[name]) if name in self._files else "<memory>"

    def is_loaded(self, name: str, device: str | None = None) -> bool:
        return (name, device or self.device) in self._loaded

    def get(self, name: str | None = None, device: str | None = None) -> LoadedModel:
        """The loaded model ``name`` (default: the first) on ``device`` (default: the store's)."""
        name = name or self.default_name
        dev = device or self.device
        if name not in self._files and name not in self._modules:
            raise ConfigError(f"unknown model '{name}'; available: {', '.join(self.names()) or 'none'}")
        key = (name, dev)
        hit = self._loaded.get(key)
        if hit is not None:
            return hit
        with self._lock:
            lock = self._name_locks.setdefault(name, threading.Lock())
        with lock:  # one loader per name; other names load in parallel
            hit = self._loaded.get(key)
            if hit is not None:
                return hit
            if name in self._modules:
                loaded = prepare_model(self._modules[name], name=name, device=dev)
            else:
                loaded = load_for_inference(self._files[name], device=dev, name=name)
            self._loaded[key] = loaded
            return loaded

    def describe(self) -> list[dict[str, Any]]:
        """One dict per model: name, source, loaded, and arch/params/value_range when loaded."""
        out = []
        for i, name in enumerate(self.names()):
            entry: dict[str, Any] = {"name": name, "source": self.source(name), "default": i == 0}
            loaded = self._loaded.get((name, self.device))
            entry["loaded"] = loaded is not None
            if loaded is not None:
                entry.update({k: v for k, v in loaded.describe().items() if k not in entry})
            out.append(entry)
        return out


# --------------------------------------------------------------------------- restoring


def restore_array(
    loaded: LoadedModel,
    image: np.ndarray,
    settings: RestoreSettings | None = None,
    **extra: Any,
) -> np.ndarray:
    """Restore an ``(H, W, 3)`` float32 RGB image in [0, 1]; returns ``(H, W, 3)`` float32 in [0, 1].

    A thin call of :func:`restorekit.inference.restore_image` with the model's
    runtime (:meth:`LoadedModel.runner`), its device and ``settings`` (plus
    ``extra`` keyword arguments it accepts, e.g. ``progress=callable(done, total)``),
    exactly as ``restorekit restore`` calls it.
    """
    from restorekit.inference import restore_image

    if loaded.arch == "nafnet_cond":
        raise ConfigError(f"model '{loaded.name}' (nafnet_cond) restores raw files (.dng, ...), not RGB images")
    st = settings or RestoreSettings()
    kwargs = st.kwargs()
    kwargs.update(extra)
    try:
        out = restore_image(loaded.runner(st.backend), image, device=loaded.device, **kwargs)
    except ValueError as exc:  # bad tile/overlap combinations surface as ValueError in some paths
        raise ConfigError(f"invalid restore settings {kwargs}: {exc}") from exc
    return np.asarray(out, dtype=np.float32)


@dataclass
class RestoreResult:
    """One restored upload: pixels, encoded output, and timings."""

    image: np.ndarray  #: (H, W, 3) float32 RGB in [0, 1]
    info: "ImageInfo"  #: what the upload was
    data: bytes  #: encoded output
    format: str  #: output format key
    mime: str
    seconds: float  #: decode + restore + encode wall time
    model: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> str:
        """``"WxH"`` of the output."""
        return f"{self.image.shape[1]}x{self.image.shape[0]}"


def restore_bytes(
    loaded: LoadedModel,
    data: bytes,
    *,
    name: str = "upload",
    settings: RestoreSettings | None = None,
    limits: Limits | None = None,
    out_format: str = "png",
    quality: int = 95,
    bit_depth: int | None = None,
    decoded: tuple[np.ndarray, "ImageInfo"] | None = None,
) -> RestoreResult:
    """Decode ``data``, restore it with ``loaded`` and encode the result as ``out_format``.

    ``bit_depth`` None follows ``restorekit restore``: 16-bit PNG/TIFF for inputs
    with more than 8 bits per channel, else 8. ``decoded`` may carry an already
    decoded ``(array, info)`` pair of ``data`` to skip decoding.
    """
    key = normalize_format(out_format)
    t0 = time.perf_counter()
    image, info = decoded if decoded is not None else decode_upload(data, name=name, limits=limits)
    t1 = time.perf_counter()
    out = restore_array(loaded, image, settings)
    t2 = time.perf_counter()
    bits = bit_depth if bit_depth is not None else output_bit_depth(info.bit_depth, key)
    encoded = encode_output(out, key, quality=quality, bit_depth=bits)
    t3 = time.perf_counter()
    return RestoreResult(
        image=out,
        info=info,
        data=encoded,
        format=key,
        mime=OUTPUT_FORMATS[key][1],
        seconds=t3 - t0,
        model=loaded.name,
        timings={"decode_s": t1 - t0, "restore_s": t2 - t1, "encode_s": t3 - t2},
    )


def seed_json_response(result: RestoreResult, original: bytes, *, seconds: float | None = None) -> dict[str, Any]:
    """The deblurring seed's success answer for ``result`` (restored from the upload bytes ``original``).

    ``{"success": true, "deblurred_image": "data:<mime>;base64,...", "original_image": "data:<mime>;base64,...",
    "processing_time": "X.Xs", "image_size": "WxH"}``; ``original_image`` carries the uploaded bytes
    unchanged, labelled with their real MIME type.
    """
    secs = result.seconds if seconds is None else seconds
    return {
        "success": True,
        "deblurred_image": data_url(result.data, result.mime),
        "original_image": data_url(original, INPUT_MIME.get(result.info.format, "application/octet-stream")),
        "processing_time": f"{secs:.1f}s",
        "image_size": result.size,
    }


# --------------------------------------------------------------------------- metrics


def quality_metrics(pred: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``pred`` against ``reference`` (both ``(H, W, 3)`` in [0, 1], same size).

    Uses :mod:`restorekit.metrics` (protocol "rgb": scikit-image's definitions)
    and falls back to scikit-image directly. Raises :class:`ConfigError` when
    the sizes differ.
    """
    if pred.shape != reference.shape:
        raise ConfigError(
            f"reference image is {reference.shape[1]}x{reference.shape[0]} but the image is {pred.shape[1]}x{pred.shape[0]}"
        )
    try:
        from restorekit.metrics import psnr, ssim

        return {"psnr": float(psnr(pred, reference)), "ssim": float(ssim(pred, reference))}
    except ImportError:  # pragma: no cover - metrics are part of restorekit
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        p = float(peak_signal_noise_ratio(reference, pred, data_range=1.0))
        s = float(
            structural_similarity(
                reference, pred, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
            )
        )
        return {"psnr": p if math.isfinite(p) else float("inf"), "ssim": s}


def warm_up(loaded: LoadedModel, settings: RestoreSettings | None = None, size: int = 64) -> float:
    """Run one small image through ``loaded`` (builds cached runtimes, e.g. the ONNX session); returns seconds."""
    t0 = time.perf_counter()
    ramp = np.linspace(0.0, 1.0, size * size * 3, dtype=np.float32).reshape(size, size, 3)
    restore_array(loaded, ramp, settings)
    return time.perf_counter() - t0
