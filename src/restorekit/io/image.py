"""Read and write images as float32 RGB arrays in [0, 1].

Reading accepts PNG, JPEG, TIFF, WebP and BMP files in 8 or 16 bits per
channel, in grey, grey+alpha, RGB, RGBA, palette and CMYK modes. EXIF
orientation is applied, alpha is dropped (composited over nothing: the colour
channels are kept as stored), and the result is always ``(H, W, 3)`` float32 in
[0, 1]. Decompression bombs are refused from the header, before any pixel is
decoded.

Writing (PNG 8/16-bit, JPEG, TIFF 8/16-bit, WebP, BMP) goes through a temporary
file renamed onto the destination, so a crash never leaves a partial image.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import ImageReadError, ImageWriteError
from restorekit.utils.atomic import atomic_path

#: Default pixel limit (width * height) above which an image is refused unread:
#: 178 million pixels, Pillow's own bomb threshold. Override per call or with the
#: ``RESTOREKIT_MAX_PIXELS`` environment variable.
DEFAULT_MAX_PIXELS = 178_956_970

# Pillow warns between 1x and 2x its own limit; restorekit applies its own limit from the header.
warnings.filterwarnings("ignore", message=".*decompression bomb.*")

def _avif_suffixes() -> frozenset[str]:
    """``{".avif"}`` where this Pillow build decodes AVIF, else empty."""
    try:
        from PIL import features

        return frozenset({".avif"}) if features.check("avif") else frozenset()
    except Exception:  # noqa: BLE001 - an old Pillow without the features module
        return frozenset()


#: every file extension restorekit reads as an image (lower case, with the dot); the one list
#: the data, evaluation, restore and distillation front ends share
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"}) | _avif_suffixes()


def is_image_name(name: str | Path) -> bool:
    """True when ``name`` ends with one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return os.path.splitext(str(name))[1].lower() in IMAGE_EXTENSIONS


_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP", ".bmp": "BMP"}
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    """What was in the file: its format, size (width, height), bits per channel, alpha."""

    format: str
    width: int
    height: int
    bit_depth: int
    has_alpha: bool
    mode: str


def max_pixels_limit(max_pixels: int | None) -> int:
    """The pixel limit in force: ``max_pixels`` when given, else ``$RESTOREKIT_MAX_PIXELS``, else the default."""
    if max_pixels is not None:
        return int(max_pixels)
    env = os.environ.get("RESTOREKIT_MAX_PIXELS")
    return int(env) if env else DEFAULT_MAX_PIXELS


def read_image(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Read ``path`` into an ``(H, W, 3)`` float32 RGB array in [0, 1].

    Raises :class:`~restorekit.errors.ImageReadError` naming the file and the
    cause (missing, empty, truncated, not an image, too many pixels).
    """
    return read_image_with_info(path, max_pixels=max_pixels)[0]


def read_image_with_info(path: str | Path, *, max_pixels: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Like :func:`read_image` and also return the file's :class:`ImageInfo`."""
    p = Path(path)
    if not p.exists():
        raise ImageReadError(p, "file does not exist")
    if p.is_dir():
        raise ImageReadError(p, "is a directory, not an image file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImageReadError(p, f"cannot open file ({exc.strerror or exc})") from exc
    return decode_image(data, name=str(p), max_pixels=max_pixels)


def decode_image(data: bytes, *, name: str = "<bytes>", max_pixels: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Decode encoded image bytes (as uploaded to a service) into float32 RGB [0, 1] and info.

    ``name`` is used in error messages.
    """
    from PIL import Image, UnidentifiedImageError

    if len(data) == 0:
        raise ImageReadError(name, "file is empty (0 bytes)")
    limit = max_pixels_limit(max_pixels)
    try:
        im = _open_lazily(data, limit)
    except UnidentifiedImageError as exc:
        raise ImageReadError(name, "not a recognised image format (PNG, JPEG, TIFF, WebP, BMP)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(name, f"too many pixels ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on corrupt headers
        raise ImageReadError(name, f"corrupt image header ({exc})") from exc
    width, height = im.size
    if width <= 0 or height <= 0:
        raise ImageReadError(name, f"image has no pixels ({width}x{height})")
    if width * height > limit:
        raise ImageReadError(
            name,
            f"too many pixels: {width}x{height} = {width * height:,} exceeds the limit of {limit:,} "
            "(possible decompression bomb; raise max_pixels / RESTOREKIT_MAX_PIXELS if the file is trusted)",
        )
    fmt = (im.format or "UNKNOWN").upper()
    orientation = _exif_orientation(im)
    try:
        arr, bit_depth, has_alpha, mode = _decode_pixels(im, data, fmt)
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or "broken" in msg.lower() or "premature" in msg.lower():
            raise ImageReadError(name, f"file is truncated or corrupt ({msg})") from exc
        raise ImageReadError(name, f"cannot decode pixels ({msg})") from exc
    arr = _apply_orientation(arr, orientation)
    info = ImageInfo(format=fmt, width=arr.shape[1], height=arr.shape[0], bit_depth=bit_depth, has_alpha=has_alpha, mode=mode)
    return np.ascontiguousarray(arr, dtype=np.float32), info


_PIL_LIMIT_LOCK = threading.Lock()


def _open_lazily(data: bytes, limit: int) -> Any:
    """``Image.open`` (header only) without Pillow's own bomb check getting in the way of ``limit``.

    Pillow refuses images above twice its global ``MAX_IMAGE_PIXELS``; restorekit applies its own
    (configurable) limit from the header instead. The global is only raised, under a lock, for a
    limit above Pillow's, so concurrent decodes in a server never see it switched off.
    """
    from PIL import Image

    pil_max = Image.MAX_IMAGE_PIXELS
    if pil_max is None or limit <= 2 * pil_max:
        return Image.open(io.BytesIO(data))
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            return Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _exif_orientation(im: Any) -> int:
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not stop decoding
        return 1


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1..8) to an (H, W, C) array."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(arr, -1)
    if orientation == 7:
        return np.rot90(arr.transpose(1, 0, 2), 2)
    if orientation == 8:
        return np.rot90(arr, 1)
    return arr


def _png_bit_depth(data: bytes) -> int:
    # IHDR is the first chunk: 8-byte signature, 4 length, 4 type, 4 width, 4 height, 1 bit depth
    return data[24] if len(data) > 24 and data[12:16] == b"IHDR" else 8


def _decode_pixels(im: Any, data: bytes, fmt: str) -> tuple[np.ndarray, int, bool, str]:
    """Return (float32 HxWx3 in [0,1], bits per channel, had alpha, source mode)."""
    mode = im.mode
    if fmt == "PNG" and _png_bit_depth(data) == 16 and mode not in ("I", "I;16", "I;16B", "I;16L"):
        return _decode_cv2_16(data, mode)
    if fmt == "TIFF":
        high = _decode_tiff_high_depth(im, data)
        if high is not None:
            return high
    im.load()
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        maxval = 65535.0
        if mode == "I" and arr.size and arr.max() <= 255:
            maxval = 255.0 if fmt != "PNG" else 65535.0
        grey = np.clip(arr / maxval, 0, 1).astype(np.float32)
        return np.repeat(grey[..., None], 3, axis=2), 16, False, mode
    if mode == "F":
        grey = np.clip(np.asarray(im, dtype=np.float32), 0, 1)
        return np.repeat(grey[..., None], 3, axis=2), 32, False, mode
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
    if mode == "1":
        rgb = im.convert("L").convert("RGB")
    elif mode in ("L", "LA"):
        rgb = im.convert("L").convert("RGB")
    else:  # RGB, RGBA, P, PA, CMYK, YCbCr, LAB, HSV, RGBX ...
        rgb = im.convert("RGBA").convert("RGB") if mode in ("P", "PA") else im.convert("RGB")
    arr = np.asarray(rgb, dtype=np.float32) / 255.0
    return arr, 8, has_alpha, mode


def _decode_cv2_16(data: bytes, mode: str) -> tuple[np.ndarray, int, bool, str]:
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise OSError("16-bit image data is truncated or corrupt")
    has_alpha = arr.ndim == 3 and arr.shape[2] in (2, 4)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB)
    elif arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    else:
        arr = np.repeat(arr[..., :1], 3, axis=2)
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    return arr.astype(np.float32) / scale, 16 if scale > 255 else 8, has_alpha, mode


def _decode_tiff_high_depth(im: Any, data: bytes) -> tuple[np.ndarray, int, bool, str] | None:
    """Decode 16-bit or float TIFFs with tifffile (Pillow cannot read 16-bit RGB TIFF)."""
    bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
    bits_t = tuple(bits) if isinstance(bits, (tuple, list)) else ((bits,) if bits else (8,))
    if max(bits_t) <= 8:
        return None
    if max(bits_t) == 16:
        try:  # OpenCV decodes LZW/Deflate-compressed 16-bit TIFFs without extra codecs
            return _decode_cv2_16(data, im.mode)
        except OSError:
            pass
    import tifffile

    try:
        arr = tifffile.imread(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001
        raise OSError(f"TIFF data is truncated or corrupt: {exc}") from exc
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    has_alpha = arr.ndim == 3 and arr.shape[2] in (2, 4)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] in (1, 2):
        arr = np.repeat(arr[..., :1], 3, axis=2)
    arr = arr[..., :3]
    if np.issubdtype(arr.dtype, np.floating):
        out = np.clip(arr.astype(np.float32), 0, 1)
        depth = 32
    else:
        maxval = float(np.iinfo(arr.dtype).max)
        out = arr.astype(np.float32) / maxval
        depth = int(np.iinfo(arr.dtype).bits)
    return out, depth, has_alpha, im.mode


def _to_hwc_float(image: Any) -> np.ndarray:
    """Accept (H,W,3)/(H,W) arrays or (3,H,W)/(1,3,H,W) tensors in [0,1]; return HxWx3 float32."""
    if hasattr(image, "detach"):
        t = image.detach().float().cpu()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError(f"expected a single image, got a batch of shape {tuple(t.shape)}")
            t = t[0]
        if t.ndim == 3 and t.shape[0] in (1, 3):
            t = t.permute(1, 2, 0)
        image = t.numpy()
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise ValueError(f"expected an image of shape (H, W, 3) or (H, W), got {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr


def encode_image(image: Any, fmt: str = "PNG", *, bit_depth: int = 8, quality: int = 95) -> bytes:
    """Encode an RGB image in [0, 1] (array or tensor) to bytes of ``fmt`` (PNG, JPEG, TIFF, WEBP, BMP).

    ``bit_depth`` 16 is supported for PNG and TIFF; JPEG, WebP and BMP are 8-bit.
    """
    import cv2

    fmt = fmt.upper().replace("JPG", "JPEG").replace("TIF", "TIFF").replace("TIFFF", "TIFF")
    arr = np.clip(_to_hwc_float(image), 0.0, 1.0)
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if bit_depth == 16 and fmt not in ("PNG", "TIFF"):
        raise ValueError(f"16-bit output is only supported for PNG and TIFF, not {fmt}")
    if bit_depth == 16:
        q = np.round(arr * 65535.0).astype(np.uint16)
        bgr = cv2.cvtColor(q, cv2.COLOR_RGB2BGR)
        ext = ".png" if fmt == "PNG" else ".tiff"
        ok, buf = cv2.imencode(ext, bgr)
        if not ok:
            raise ValueError(f"OpenCV could not encode a 16-bit {fmt}")
        return buf.tobytes()
    from PIL import Image

    q8 = np.round(arr * 255.0).astype(np.uint8)
    pil = Image.fromarray(q8, mode="RGB")
    out = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = int(quality)
    if fmt == "JPEG":
        kwargs["subsampling"] = 0 if quality >= 90 else 2
    if fmt == "PNG":
        kwargs["compress_level"] = 3
    pil.save(out, format=fmt, **kwargs)
    return out.getvalue()


def write_image(path: str | Path, image: Any, *, bit_depth: int = 8, quality: int = 95) -> Path:
    """Write an RGB image in [0, 1] to ``path`` atomically; the format follows the extension.

    ``image`` is an ``(H, W, 3)`` / ``(H, W)`` array (float in [0,1], uint8 or
    uint16) or a ``(3, H, W)`` / ``(1, 3, H, W)`` tensor in [0, 1].
    """
    p = Path(path)
    fmt = _WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ImageWriteError(p, f"unsupported extension '{p.suffix}' (use one of {', '.join(sorted(_WRITE_FORMATS))})")
    try:
        data = encode_image(image, fmt, bit_depth=bit_depth, quality=quality)
    except ValueError as exc:
        raise ImageWriteError(p, str(exc)) from exc
    try:
        with atomic_path(p) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise ImageWriteError(p, exc.strerror or str(exc)) from exc
    return p


def image_to_tensor(image: Any) -> "torch.Tensor":  # noqa: F821
    """``(H, W, 3)`` array in [0, 1] (or uint8/uint16) -> ``(3, H, W)`` float32 tensor in [0, 1]."""
    import torch

    arr = _to_hwc_float(image)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def tensor_to_image(tensor: "torch.Tensor") -> np.ndarray:  # noqa: F821
    """``(3, H, W)`` or ``(1, 3, H, W)`` tensor in [0, 1] -> ``(H, W, 3)`` float32 array, clipped."""
    return np.clip(_to_hwc_float(tensor), 0.0, 1.0)
