"""Reading raw camera files (rawpy / LibRaw) and writing DNGs (pidng).

:func:`read_raw` returns a :class:`RawImage`: the visible Bayer mosaic cropped so
that it starts on a red pixel (RGGB) and has even sides, the black and white
levels, the white balance, the colour matrix and the ISO / exposure time from the
metadata. X-Trans, Foveon and already-demosaiced ("linear") raws are refused with
a :class:`~restorekit.errors.ImageReadError` that names the file.

ISO: LibRaw fills ``other.iso_speed`` for most cameras; when it is 0 (e.g. ISO
stored only in the EXIF sub-IFD of some DNGs or written in IFD0),
:func:`read_tiff_iso` reads TIFF tag 34855 (ISOSpeedRatings / PhotographicSensitivity)
from IFD0, the EXIF IFD and the SubIFDs of any TIFF-based raw (DNG, NEF, CR2, ARW,
ORF, PEF, ...), with a few lines of ``struct`` and no extra dependency.

:func:`write_dng` writes an uncompressed 16-bit CFA DNG (what the synthetic data
and tests use); :func:`write_linear_dng` writes a 3-channel LinearRaw DNG (what
``restore`` produces for a ``.dng`` output). Both put the ISO in the EXIF IFD's
ISOSpeedRatings so that rawpy and raw converters read it back.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from restorekit.errors import ImageReadError, ImageWriteError
from restorekit.utils.atomic import atomic_path

#: file extensions treated as camera raw files (lower case, with the dot)
RAW_EXTENSIONS = frozenset(
    {
        ".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
        ".pef", ".srw", ".3fr", ".iiq", ".erf", ".mef", ".mos", ".kdc", ".dcr", ".mrw", ".x3f", ".raw", ".rwl",
    }
)

# XYZ (D65) -> linear sRGB
XYZ_TO_SRGB = np.array(
    [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]],
    dtype=np.float64,
)
SRGB_TO_XYZ = np.linalg.inv(XYZ_TO_SRGB)


def is_raw_path(path: str | Path) -> bool:
    """True when ``path``'s extension is a camera raw format (see :data:`RAW_EXTENSIONS`)."""
    return Path(path).suffix.lower() in RAW_EXTENSIONS


@dataclass
class RawImage:
    """A Bayer raw frame normalised to RGGB.

    ``raw``: ``(H, W)`` uint16 sensor values as stored (visible area, cropped to RGGB, even sides).
    ``black_level``: 4 values in packed order (R, G1, G2, B); ``white_level``: saturation value.
    ``wb``: white-balance gains (R, G, B) normalised so G = 1 (as shot).
    ``cam_to_srgb``: 3x3 matrix camera RGB -> linear sRGB (rows sum to 1).
    ``pattern``: the file's own 2x2 pattern before normalisation (e.g. "GRBG");
    ``offset``: (rows, cols) dropped at the top / left to reach RGGB.
    """

    raw: np.ndarray
    black_level: np.ndarray
    white_level: float
    pattern: str
    offset: tuple[int, int]
    wb: np.ndarray
    cam_to_srgb: np.ndarray
    iso: float | None = None
    exposure_time: float | None = None
    path: str = ""
    make: str = ""
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.raw.shape[0]), int(self.raw.shape[1])

    def mosaic(self, clip: bool = True) -> np.ndarray:
        """``(H, W)`` float32 RGGB mosaic: ``(raw - black) / (white - black)``, clipped to [0, 1] by default."""
        black = np.empty((2, 2), np.float32)
        black.flat[:] = self.black_level
        h, w = self.shape
        black_map = np.tile(black, (h // 2, w // 2))
        scale = np.float32(self.white_level) - black_map
        m = (self.raw.astype(np.float32) - black_map) / np.maximum(scale, 1.0)
        return np.clip(m, 0.0, 1.0) if clip else m


# ------------------------------------------------------------------------------------------ reading
def read_raw(path: str | Path) -> RawImage:
    """Read a Bayer raw file with rawpy into a :class:`RawImage` (RGGB, even sides).

    Raises :class:`ImageReadError` for missing/unreadable files, X-Trans or other
    non-Bayer sensors, and linear (demosaiced) DNGs.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(p, "file does not exist" if not p.exists() else "is not a file")
    try:
        import rawpy
    except ImportError as exc:  # pragma: no cover - rawpy is a declared extra
        raise ImageReadError(p, "reading raw files needs rawpy (pip install 'restorekit[raw]')") from exc
    try:
        raw = rawpy.imread(str(p))
    except Exception as exc:  # noqa: BLE001 - LibRaw raises many types
        raise ImageReadError(p, f"not a readable camera raw file ({type(exc).__name__}: {exc})") from exc
    with raw:
        try:
            return _from_rawpy(raw, p)
        except ImageReadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ImageReadError(p, f"cannot decode raw data ({type(exc).__name__}: {exc})") from exc


def _from_rawpy(raw: Any, p: Path) -> RawImage:
    import rawpy

    if raw.raw_type != rawpy.RawType.Flat:
        raise ImageReadError(p, "not a Bayer mosaic (linear/demosaiced or multi-layer raw); only Bayer CFA raws are supported")
    pattern_arr = np.asarray(raw.raw_pattern)
    if pattern_arr.shape == (6, 6):
        raise ImageReadError(p, "X-Trans sensor (Fujifilm 6x6 CFA) is not supported; only 2x2 Bayer raws are (convert it to a Bayer DNG first)")
    if pattern_arr.shape != (2, 2):
        raise ImageReadError(p, f"unsupported CFA pattern of size {pattern_arr.shape}; only 2x2 Bayer raws are supported")
    desc = raw.color_desc.decode("ascii", "replace")
    if raw.num_colors != 3 or len(desc) < 3 or set(desc[:4]) - {"R", "G", "B"}:
        raise ImageReadError(p, f"unsupported colour filter '{desc}' (CMYG or 4-colour sensors are not supported)")
    visible = raw.raw_image_visible
    colors = np.array(raw.raw_colors_visible, copy=True)
    letters = np.array([desc[c] for c in colors[:2, :2].ravel()]).reshape(2, 2)
    pattern = "".join(letters.ravel())
    if sorted(pattern) != ["B", "G", "G", "R"]:
        raise ImageReadError(p, f"unexpected CFA pattern '{pattern}'")
    (oy, ox) = [(y, x) for y in (0, 1) for x in (0, 1) if letters[y, x] == "R"][0]
    h, w = visible.shape
    h2, w2 = (h - oy) // 2 * 2, (w - ox) // 2 * 2
    if h2 < 2 or w2 < 2:
        raise ImageReadError(p, f"raw image too small ({w}x{h})")
    # copy: rawpy's arrays are views into LibRaw memory that is freed when the file is closed
    data = np.array(visible[oy : oy + h2, ox : ox + w2], dtype=np.uint16, copy=True)
    col = colors[oy : oy + 2, ox : ox + 2]
    black_pc = np.asarray(raw.black_level_per_channel, np.float64)
    black = np.array([black_pc[col[dy, dx]] for dy in (0, 1) for dx in (0, 1)], np.float32)
    white = float(raw.white_level)
    wb = _as_shot_wb(raw, desc)
    cam = _cam_to_srgb(raw)
    tags = read_tiff_tags(p)
    iso, exposure = _iso_exposure(raw, tags)
    make, model = str(tags.get("make", "")), str(tags.get("model", ""))
    return RawImage(
        raw=data, black_level=black, white_level=white, pattern=pattern, offset=(oy, ox), wb=wb,
        cam_to_srgb=cam, iso=iso, exposure_time=exposure, path=str(p), make=make, model=model,
    )


def _as_shot_wb(raw: Any, desc: str) -> np.ndarray:
    """As-shot white balance as (R, G, B) gains with G = 1 (falls back to daylight, then ones)."""
    for source in ("camera_whitebalance", "daylight_whitebalance"):
        vals = np.asarray(getattr(raw, source), np.float64)
        gains = {}
        for idx, letter in enumerate(desc[: len(vals)]):
            if vals[idx] > 0 and letter not in gains:
                gains[letter] = vals[idx]
        if all(k in gains for k in "RGB"):
            g = gains["G"]
            return np.array([gains["R"] / g, 1.0, gains["B"] / g], np.float32)
    return np.ones(3, np.float32)


def _cam_to_srgb(raw: Any) -> np.ndarray:
    """Camera RGB -> linear sRGB (LibRaw's rgb_cam), rows normalised to sum 1; identity if unknown."""
    m = np.asarray(raw.color_matrix, np.float64)[:3, :3]
    if not np.isfinite(m).all() or np.abs(m).sum() == 0:
        return np.eye(3, dtype=np.float32)
    sums = m.sum(axis=1, keepdims=True)
    sums[np.abs(sums) < 1e-6] = 1.0
    return (m / sums).astype(np.float32)


def _iso_exposure(raw: Any, tags: dict[str, Any]) -> tuple[float | None, float | None]:
    iso: float | None = None
    exposure: float | None = None
    other = getattr(raw, "other", None)
    if other is not None:
        iso = float(other.iso_speed) if getattr(other, "iso_speed", 0) else None
        exposure = float(other.shutter_speed) if getattr(other, "shutter_speed", 0) else None
    if iso is None and tags.get("iso"):
        iso = float(tags["iso"])
    if exposure is None and tags.get("exposure_time"):
        exposure = float(tags["exposure_time"])
    return iso, exposure


# ------------------------------------------------------------------------------ TIFF tag reading
_TIFF_TYPES = {1: ("B", 1), 2: ("s", 1), 3: ("H", 2), 4: ("I", 4), 5: ("II", 8), 6: ("b", 1), 7: ("B", 1),
               8: ("h", 2), 9: ("i", 4), 10: ("ii", 8), 11: ("f", 4), 12: ("d", 8), 13: ("I", 4)}
_TAG_NAMES = {271: "make", 272: "model", 33434: "exposure_time", 34855: "iso", 34665: "_exif", 330: "_subifds"}


def read_tiff_tags(path: str | Path, max_bytes: int = 4 << 20) -> dict[str, Any]:
    """Read ISO (tag 34855), exposure time (33434), make and model from a TIFF-based file.

    Looks in IFD0, its SubIFDs and the EXIF IFD. Returns ``{}`` for files that are
    not TIFF-structured (CR3, RAF, ...) or are truncated: never raises.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes)
    except OSError:
        return {}
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return {}
    end = "<" if data[:2] == b"II" else ">"
    try:
        if struct.unpack(end + "H", data[2:4])[0] != 42:
            return {}
        first = struct.unpack(end + "I", data[4:8])[0]
    except struct.error:
        return {}
    out: dict[str, Any] = {}
    seen: set[int] = set()
    queue = [first]
    while queue and len(seen) < 16:
        off = queue.pop(0)
        if off in seen or off <= 0 or off + 2 > len(data):
            continue
        seen.add(off)
        for tag, value in _read_ifd(data, off, end):
            name = _TAG_NAMES.get(tag)
            if name == "_exif" or name == "_subifds":
                queue.extend(int(v) for v in (value if isinstance(value, list) else [value]))
            elif name and name not in out:
                v = value[0] if isinstance(value, list) and len(value) == 1 else value
                if name == "exposure_time" and isinstance(v, tuple):
                    v = v[0] / v[1] if v[1] else None
                if name == "iso" and isinstance(v, list):
                    v = v[0]
                if v not in (None, 0, ""):
                    out[name] = v
    return out


def _read_ifd(data: bytes, off: int, end: str) -> list[tuple[int, Any]]:
    items: list[tuple[int, Any]] = []
    try:
        (n,) = struct.unpack_from(end + "H", data, off)
        for i in range(min(n, 4096)):
            e = off + 2 + 12 * i
            tag, typ, count = struct.unpack_from(end + "HHI", data, e)
            if tag not in _TAG_NAMES or typ not in _TIFF_TYPES:
                continue
            fmt, size = _TIFF_TYPES[typ]
            nbytes = size * count
            voff = e + 8 if nbytes <= 4 else struct.unpack_from(end + "I", data, e + 8)[0]
            if voff + nbytes > len(data) or count > 4096:
                continue
            raw = data[voff : voff + nbytes]
            if typ == 2:
                items.append((tag, raw.split(b"\x00")[0].decode("latin-1").strip()))
            elif typ in (5, 10):
                vals = struct.unpack(end + fmt[0] * (2 * count), raw)
                items.append((tag, [(vals[2 * k], vals[2 * k + 1]) for k in range(count)]))
            else:
                items.append((tag, list(struct.unpack(end + fmt * count, raw))))
    except struct.error:
        pass
    return items


# ------------------------------------------------------------------------------------------ writing
_PATTERN_CODES = {"R": 0, "G": 1, "B": 2}


def _rational(x: float, den: int = 10000) -> list[int]:
    return [int(round(float(x) * den)), den]


def _srational_matrix(m: np.ndarray) -> list[list[int]]:
    return [_rational(v) for v in np.asarray(m, np.float64).ravel()]


def _base_tags(width: int, height: int, *, iso: float | None, exposure_time: float | None, make: str, model: str) -> Any:
    from pidng.defs import DNGVersion, Orientation
    from pidng.dng import DNGTags, Tag, dngIFD, dngTag

    t = DNGTags()
    t.set(Tag.ImageWidth, width)
    t.set(Tag.ImageLength, height)
    t.set(Tag.TileWidth, width)
    t.set(Tag.TileLength, height)
    t.set(Tag.Orientation, Orientation.Horizontal)
    t.set(Tag.Make, make or "restorekit")
    t.set(Tag.Model, model or "restorekit")
    t.set(Tag.UniqueCameraModel, f"{make or 'restorekit'} {model or 'restorekit'}")
    t.set(Tag.Software, "restorekit")
    t.set(Tag.DNGVersion, DNGVersion.V1_4)
    t.set(Tag.DNGBackwardVersion, DNGVersion.V1_0)
    exif = dngIFD()
    if iso:
        exif.tags.append(dngTag(Tag.PhotographicSensitivity, [int(round(min(float(iso), 65535)))]))
    if exposure_time:
        exif.tags.append(dngTag(Tag.ExposureTime, [_exposure_rational(float(exposure_time))]))
    if exif.tags:
        t.__tags__[Tag.EXIF_IFD] = _IfdTag(Tag.EXIF_IFD, [exif])  # pidng 4.0.9 cannot build IFD tags itself
    return t


def _exposure_rational(t: float) -> list[int]:
    if t >= 1:
        return [int(round(t * 1000)), 1000]
    return [1, max(1, int(round(1 / t)))] if abs(1 / t - round(1 / t)) < 1e-3 else [int(round(t * 1e6)), 1000000]


def _IfdTag(tag: Any, value: list[Any]) -> Any:  # noqa: N802 - mirrors pidng's dngTag constructor
    """A pidng ``dngTag`` whose value is a sub-IFD (pidng 4.0.9 mixes str and bytes for IFD-typed tags)."""
    from pidng.dng import Type, dngTag

    class IfdTag(dngTag):  # type: ignore[misc, valid-type]
        def setValue(self, value):  # noqa: N802, ANN001, ANN201 - pidng's API
            if self.DataType == Type.IFD:
                self.Value = b"\x00\x00\x00\x00"
                self.subIFD = value[0]
            else:
                super().setValue(value)

    return IfdTag(tag, value)


def _colour_tags(t: Any, wb: Sequence[float], cam_to_srgb: np.ndarray | None) -> None:
    from pidng.defs import CalibrationIlluminant
    from pidng.dng import Tag

    cam = np.eye(3) if cam_to_srgb is None else np.asarray(cam_to_srgb, np.float64)
    # ColorMatrix1 maps XYZ -> camera: inverse of (camera -> sRGB -> XYZ)
    xyz_to_cam = np.linalg.inv(SRGB_TO_XYZ @ cam)
    t.set(Tag.ColorMatrix1, _srational_matrix(xyz_to_cam))
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    wb = np.asarray(wb, np.float64)
    neutral = 1.0 / np.maximum(wb, 1e-6)
    neutral = neutral / neutral[1]
    t.set(Tag.AsShotNeutral, [[int(round(v * 1_000_000)), 1_000_000] for v in neutral])


def write_dng(
    path: str | Path,
    raw: np.ndarray,
    *,
    black_level: float | Sequence[float] = 0,
    white_level: int = 65535,
    pattern: str = "RGGB",
    wb: Sequence[float] = (1.0, 1.0, 1.0),
    cam_to_srgb: np.ndarray | None = None,
    iso: float | None = None,
    exposure_time: float | None = None,
    make: str = "restorekit",
    model: str = "synthetic",
) -> Path:
    """Write an ``(H, W)`` uint16 CFA mosaic as an uncompressed 16-bit DNG, atomically.

    ``pattern`` is the 2x2 CFA layout (RGGB, GRBG, GBRG, BGGR), or 36 letters of a
    6x6 X-Trans-like layout (only useful to test the refusal); ``black_level`` a
    scalar or 4 values (pattern order); ``wb`` the as-shot (R, G, B) gains stored
    as AsShotNeutral = 1/wb; ``cam_to_srgb`` the camera -> linear sRGB matrix
    (stored as ColorMatrix1 = its inverse composed with sRGB -> XYZ, D65);
    ``iso`` goes in EXIF ISOSpeedRatings. rawpy reads back exactly this mosaic,
    these levels and this pattern.
    """
    from pidng.core import RAW2DNG
    from pidng.defs import PhotometricInterpretation
    from pidng.dng import Tag

    p = Path(path)
    arr = np.asarray(raw)
    if arr.ndim != 2 or arr.dtype != np.uint16:
        raise ImageWriteError(p, f"a CFA DNG needs an (H, W) uint16 mosaic, got {arr.dtype} {arr.shape}")
    pattern = pattern.upper().replace(" ", "")
    if len(pattern) == 36 and set(pattern) == {"R", "G", "B"}:
        dim = 6  # an X-Trans-like 6x6 layout (what the refusal tests write)
    elif len(pattern) == 4 and sorted(pattern) == ["B", "G", "G", "R"]:
        dim = 2
    else:
        raise ImageWriteError(p, f"CFA pattern must be one of RGGB/GRBG/GBRG/BGGR (or 36 letters for 6x6), got '{pattern}'")
    h, w = arr.shape
    t = _base_tags(w, h, iso=iso, exposure_time=exposure_time, make=make, model=model)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [dim, dim])
    t.set(Tag.CFAPattern, [_PATTERN_CODES[c] for c in pattern])
    blacks = np.broadcast_to(np.asarray(black_level, np.float64), (4,)) if np.ndim(black_level) else np.full(4, float(black_level))
    if np.all(blacks == blacks[0]):
        t.set(Tag.BlackLevel, [int(round(blacks[0]))])
    else:
        t.set(Tag.BlackLevelRepeatDim, [2, 2])
        t.set(Tag.BlackLevel, [int(round(b)) for b in blacks])
    t.set(Tag.WhiteLevel, [int(white_level)])
    _colour_tags(t, wb, cam_to_srgb)
    return _convert(p, t, np.ascontiguousarray(arr))


def write_linear_dng(
    path: str | Path,
    rgb: np.ndarray,
    *,
    wb: Sequence[float] = (1.0, 1.0, 1.0),
    cam_to_srgb: np.ndarray | None = None,
    iso: float | None = None,
    exposure_time: float | None = None,
    make: str = "restorekit",
    model: str = "restored",
) -> Path:
    """Write ``(H, W, 3)`` camera-linear RGB in [0, 1] as a 16-bit LinearRaw DNG (black 0, white 65535)."""
    from pidng.core import RAW2DNG  # noqa: F401 - import check
    from pidng.defs import PhotometricInterpretation
    from pidng.dng import Tag

    p = Path(path)
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageWriteError(p, f"a linear DNG needs an (H, W, 3) image, got shape {arr.shape}")
    data = np.round(np.clip(arr.astype(np.float64), 0, 1) * 65535).astype(np.uint16)
    h, w = data.shape[:2]
    t = _base_tags(w, h, iso=iso, exposure_time=exposure_time, make=make, model=model)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Linear_Raw)
    t.set(Tag.SamplesPerPixel, 3)
    t.set(Tag.BitsPerSample, [16, 16, 16])
    t.set(Tag.PlanarConfiguration, 1)
    t.set(Tag.BlackLevel, [0])
    t.set(Tag.WhiteLevel, [65535])
    _colour_tags(t, wb, cam_to_srgb)
    return _convert(p, t, np.ascontiguousarray(data))


def _convert(p: Path, tags: Any, data: np.ndarray) -> Path:
    from pidng.core import RAW2DNG

    conv = RAW2DNG()
    try:
        conv.options(tags, path="", compress=False)
        buf = conv.convert(data)
    except Exception as exc:  # noqa: BLE001 - pidng raises plain Exception
        raise ImageWriteError(p, f"DNG encoding failed ({exc})") from exc
    try:
        with atomic_path(p) as tmp:
            tmp.write_bytes(bytes(buf))
    except OSError as exc:
        raise ImageWriteError(p, f"cannot write file ({exc.strerror or exc})") from exc
    return p


def read_linear_dng(path: str | Path) -> np.ndarray:
    """Read a LinearRaw DNG written by :func:`write_linear_dng` -> ``(H, W, 3)`` float32 in [0, 1]."""
    import rawpy

    p = Path(path)
    try:
        with rawpy.imread(str(p)) as raw:
            img = np.array(raw.raw_image_visible, copy=True)  # LibRaw frees its buffer on close
            white = float(raw.white_level) or 65535.0
    except Exception as exc:  # noqa: BLE001
        raise ImageReadError(p, f"not a readable DNG ({exc})") from exc
    if img.ndim != 3 or img.shape[2] < 3:
        raise ImageReadError(p, f"not a 3-channel linear DNG (raw data shape {img.shape})")
    return (img[..., :3].astype(np.float32) / white).clip(0, 1)


def read_iso(path: str | Path) -> float | None:
    """The ISO of a raw file from its metadata (TIFF/EXIF tags, then LibRaw), without decoding pixels; None if absent."""
    tags = read_tiff_tags(path)
    if tags.get("iso"):
        return float(tags["iso"])
    try:
        import rawpy

        raw = rawpy.RawPy()
        try:
            raw.open_file(str(path))
            iso = float(raw.other.iso_speed)
        finally:
            raw.close()
    except Exception:  # noqa: BLE001 - unreadable metadata: no ISO
        return None
    return iso or None
