"""The inference core shared by the web app, the HTTP service and the Azure Functions handler.

Every front end goes through the same three steps as ``restorekit restore``:

1. decode the uploaded bytes with :func:`restorekit.io.decode_image` into an
   ``(H, W, 3)`` float32 RGB array in [0, 1] (EXIF orientation applied, alpha
   dropped), refusing empty / truncated / non-image / oversized uploads;
2. restore it with the model's :class:`~restorekit.inference.restorer.Restorer`
   (the same tiling, blending, value-range conversion and clipping as the CLI),
   configured by a :class:`~restorekit.inference.options.RestoreOptions` validated
   exactly as ``restorekit restore`` validates its flags;
3. encode the ``(H, W, 3)`` [0, 1] result with :func:`restorekit.io.encode_image`.

Because nothing else touches the pixels, a given model, image and
:class:`RestoreOptions` give the same output from the CLI, the web app, the
service and the Azure handler.

Models are any file :func:`~restorekit.inference.restorer.load_restorer` reads
(packages ``.safetensors``, Lightning ``.ckpt``, ``.pth``, exported ``.onnx`` and
TorchScript ``.pt``), loaded once per device by a thread-safe :class:`ModelStore`
(explicit files, a folder of model files, or in-memory modules). What a model can
do is read from ``restorer.caps``, never from its architecture name.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from restorekit.errors import CheckpointError, ConfigError, ImageReadError
from restorekit.inference.options import RestoreOptions

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

    from restorekit.inference.restorer import Restorer
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


#: Restore options a request (query/form field) may set; device, backend, precision and the
#: memory budget are the server's.
REQUEST_OPTIONS = ("tile", "overlap", "blend", "ensemble", "tlc", "strength")

#: Model file suffixes a models folder is scanned for.
MODEL_SUFFIXES = (".safetensors", ".pth", ".ckpt", ".onnx", ".pt")


def request_options(base: RestoreOptions, values: Mapping[str, Any]) -> RestoreOptions:
    """``base`` with the request's :data:`REQUEST_OPTIONS` in ``values`` applied (``None``/"" keep ``base``).

    Validated by :meth:`RestoreOptions.parse`, so a bad value raises the same
    :class:`ConfigError` as the CLI flag (``--tile: ...``); any other key raises
    ConfigError naming it.
    """
    unknown = [k for k, v in values.items() if k not in REQUEST_OPTIONS and v not in (None, "")]
    if unknown:
        raise ConfigError(f"unknown restore option(s) {', '.join(sorted(unknown))}; a request may set {', '.join(REQUEST_OPTIONS)}")
    given = {k: v for k, v in values.items() if v not in (None, "")}
    return base.updated(**given) if given else base


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


class LoadedModel:
    """A model ready for inference and what the front ends show about it.

    ``restorer`` is the :class:`~restorekit.inference.restorer.Restorer` built with
    the server's options; :meth:`restorer_for` gives the same model with a
    request's options (cached, so runtimes such as an ONNX session or a compiled
    module are built once per option set and reused for every image).
    """

    _CACHE_SIZE = 8

    def __init__(self, name: str, restorer: "Restorer", source: str = "<memory>") -> None:
        self.name = name
        self.restorer = restorer
        self.source = source
        self._variants: dict[str, "Restorer"] = {restorer.options.model_dump_json(): restorer}
        self._lock = threading.Lock()

    @property
    def caps(self) -> Any:
        """The model's :class:`~restorekit.models.spec.Capabilities`."""
        return self.restorer.caps

    @property
    def arch(self) -> str:
        return self.restorer.arch

    @property
    def device(self) -> str:
        return str(self.restorer.device)

    @property
    def options(self) -> RestoreOptions:
        """The server's default options for this model."""
        return self.restorer.options

    @property
    def value_range(self) -> str:
        return str(self.caps.value_range)

    @property
    def params(self) -> int | None:
        """Parameter count of an ``nn.Module`` (None for exported ONNX/TorchScript files)."""
        m = self.restorer.module
        return None if m is None else int(sum(p.numel() for p in m.parameters()))

    @property
    def runtime(self) -> str:
        """``module`` or the kind of exported file (``onnxruntime``/``torchscript``)."""
        if self.restorer.module is not None:
            return "module"
        from restorekit.inference.runtime import exported_kind

        return str(exported_kind(Path(self.source)) or "exported")

    def restorer_for(self, options: RestoreOptions | None = None) -> "Restorer":
        """The Restorer with ``options`` (default: the server's), built once per distinct option set."""
        if options is None:
            return self.restorer
        key = options.model_dump_json()
        with self._lock:
            hit = self._variants.get(key)
            if hit is None:
                hit = self.restorer.with_options(options)
                if len(self._variants) >= self._CACHE_SIZE:  # keep the server's default, drop the oldest other
                    oldest = next(k for k in self._variants if self._variants[k] is not self.restorer)
                    del self._variants[oldest]
                self._variants[key] = hit
            return hit

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "arch": self.arch,
            "value_range": self.value_range,
            "params": self.params,
            "device": self.device,
            "rgb": bool(self.caps.rgb),
            "inputs": list(self.caps.inputs),
            "runtime": self.runtime,
        }


def prepare_model(model: "nn.Module", *, name: str, device: str = "cpu", source: str = "<memory>",
                  options: RestoreOptions | None = None) -> LoadedModel:
    """Wrap an in-memory ``model`` (put in eval mode, no gradients) as a :class:`LoadedModel` on ``device``."""
    from restorekit.inference.restorer import Restorer

    opts = (options or RestoreOptions()).updated(device=device)
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(name, Restorer.from_module(model, opts), source)


def load_for_inference(path: str | Path, *, device: str = "cpu", name: str | None = None,
                       options: RestoreOptions | None = None) -> LoadedModel:
    """Load any model file ``restorekit restore`` accepts (package, .ckpt, .pth, .onnx, TorchScript) onto ``device``.

    Goes through :func:`~restorekit.inference.restorer.load_restorer`; a file that
    cannot be read raises :class:`CheckpointError` (or another RestoreKitError) naming it.
    """
    from restorekit.inference.restorer import load_restorer

    p = Path(path)
    opts = (options or RestoreOptions()).updated(device=device)
    try:
        restorer = load_restorer(p, options=opts)
    except (ConfigError, CheckpointError, ImageReadError):
        raise
    except (RuntimeError, ValueError, KeyError, OSError) as exc:  # e.g. a tensor of the wrong shape in a package
        raise CheckpointError(f"cannot load model '{p}': {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    return LoadedModel(name or p.stem, restorer, str(p))


def model_files(folder: Path) -> list[Path]:
    """The model files (:data:`MODEL_SUFFIXES`) directly inside ``folder``, sorted."""
    return sorted(q for q in folder.iterdir() if q.is_file() and q.suffix.lower() in MODEL_SUFFIXES)


def discover_models(paths: Sequence[str | Path] = (), models_dir: str | Path | None = None) -> dict[str, Path]:
    """Name -> file of the models given explicitly and of every model file (:data:`MODEL_SUFFIXES`) in ``models_dir``.

    Names are file stems; a clash gets the suffix (``model.onnx``) or the parent
    folder prefixed. A missing explicit file or folder raises :class:`CheckpointError`
    / :class:`ConfigError`; so does a folder holding no model file.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise CheckpointError(f"model file '{p}' does not exist")
        if p.is_dir():
            files = model_files(p)
            if not files:
                raise ConfigError(f"model folder '{p}' holds no model file ({', '.join(MODEL_SUFFIXES)})")
            found.extend(files)
        else:
            found.append(p)
    if models_dir is not None:
        d = Path(models_dir).expanduser()
        if not d.is_dir():
            raise ConfigError(f"models_dir '{d}' is not a folder")
        files = model_files(d)
        if not files:
            raise ConfigError(f"models_dir '{d}' holds no model file ({', '.join('*' + s for s in MODEL_SUFFIXES)})")
        found.extend(files)
    out: dict[str, Path] = {}
    for p in found:
        if p.resolve() in {q.resolve() for q in out.values()}:
            continue
        name = p.stem
        if name in out:
            name = p.name
        if name in out:
            name = f"{p.parent.name}/{p.name}"
        k = 2
        base = name
        while name in out:
            name = f"{base}-{k}"
            k += 1
        out[name] = p
    return out


class ModelStore:
    """Thread-safe catalogue of models, each loaded once per device on first use.

    ``paths``/``models_dir`` list model files; ``modules`` adds in-memory models
    (already built ``nn.Module``\\ s, e.g. in tests or notebooks). The first name
    is the default model. ``options`` are the server's restore options (device
    taken from ``device``).
    """

    def __init__(
        self,
        paths: Sequence[str | Path] = (),
        models_dir: str | Path | None = None,
        *,
        device: str = "cpu",
        modules: Mapping[str, "nn.Module"] | None = None,
        options: RestoreOptions | None = None,
    ) -> None:
        self.options = (options or RestoreOptions()).updated(device=device)
        self.device = self.options.device
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
                loaded = prepare_model(self._modules[name], name=name, device=dev, options=self.options)
            else:
                loaded = load_for_inference(self._files[name], device=dev, name=name, options=self.options)
            self._loaded[key] = loaded
            return loaded

    def describe(self) -> list[dict[str, Any]]:
        """One dict per model: name, source, loaded, and arch/params/value_range/inputs when loaded."""
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


def check_rgb(loaded: LoadedModel) -> None:
    """Raise :class:`ConfigError` when the model does not take one RGB image (e.g. a raw model with extra inputs)."""
    if not loaded.caps.rgb:
        raise ConfigError(
            f"model '{loaded.name}' takes inputs {list(loaded.caps.inputs)}, not one RGB image: "
            "restore raw files (.dng, ...) with `restorekit raw restore`"
        )


def restore_array(
    loaded: LoadedModel,
    image: np.ndarray,
    options: RestoreOptions | None = None,
    *,
    progress: Any = None,
) -> np.ndarray:
    """Restore an ``(H, W, 3)`` float32 RGB image in [0, 1]; returns ``(H, W, 3)`` float32 in [0, 1].

    Runs ``loaded``'s :class:`Restorer` with ``options`` (default: the server's);
    ``progress`` is ``callable(done, total)`` or None, as for ``Restorer.restore_image``.
    """
    check_rgb(loaded)
    out = loaded.restorer_for(options).restore_image(image, progress=progress)
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
    options: RestoreOptions | None = None,
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
    out = restore_array(loaded, image, options)
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

    Uses :mod:`restorekit.metrics` (protocol "rgb": scikit-image's definitions). Raises :class:`ConfigError` when
    the sizes differ.
    """
    if pred.shape != reference.shape:
        raise ConfigError(
            f"reference image is {reference.shape[1]}x{reference.shape[0]} but the image is {pred.shape[1]}x{pred.shape[0]}"
        )
    from restorekit.metrics import psnr, ssim

    return {"psnr": float(psnr(pred, reference)), "ssim": float(ssim(pred, reference))}


def warm_up(loaded: LoadedModel, options: RestoreOptions | None = None, size: int = 64) -> float:
    """Run one small image through ``loaded`` (builds cached runtimes, e.g. the ONNX session); returns seconds."""
    t0 = time.perf_counter()
    ramp = np.linspace(0.0, 1.0, size * size * 3, dtype=np.float32).reshape(size, size, 3)
    if loaded.caps.rgb:  # models with extra inputs are not run on an RGB ramp
        restore_array(loaded, ramp, options)
    return time.perf_counter() - t0
