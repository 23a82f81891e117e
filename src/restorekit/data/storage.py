"""Where image bytes come from: plain folders or packed datasets, behind one interface.

A packed dataset (written by ``restorekit data pack``) is a folder holding
``restorekit-pack.json`` plus its payload: LMDB (``data.lmdb``) or WebDataset
tar shards (``shard-000000.tar`` ...). Its manifest lists every file by its
relative path (as in the source folder) with its size, so a config can point
at ``packed/GOPR0372_07_00/blur`` exactly as it pointed at the original
folder: :func:`resolve` walks up from any path to the enclosing pack.
(The ``jpeg``/``png`` pack formats are plain folders and need nothing special.)

BasicSR/NAFNet LMDBs (``X.lmdb/`` holding ``data.mdb`` and ``meta_info.txt``,
one ``key.png (h,w,c) compression`` line per image, keys without extension,
values PNG-encoded bytes, as ``basicsr.utils.lmdb_util.make_lmdb_from_imgs``
writes them) are read by :class:`BasicSRLmdbStorage`: a config points
``input_dir``/``target_dir`` at the ``.lmdb`` folders, and each key is listed as
``key.png`` so pairing by name works as with folders.

Readers are opened lazily and per process, so datasets pickle into
DataLoader workers without carrying open LMDB environments or file handles.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import DataError, ImageReadError
from restorekit.io.image import IMAGE_EXTENSIONS, is_image_name  # noqa: F401  (is_image_name re-exported)

MANIFEST = "restorekit-pack.json"
IMAGE_EXTS = IMAGE_EXTENSIONS  # kept for callers of the old name


class Storage:
    """A tree of image files addressed by relative POSIX path."""

    root: Path

    def list_files(self, prefix: str = "") -> list[str]:
        """Relative paths of the image files under ``prefix`` (a relative folder, '' = all), sorted."""
        raise NotImplementedError

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def known_size(self, rel: str) -> tuple[int, int] | None:
        """(height, width) when the storage recorded it (packs), else None."""
        return None

    def display(self, rel: str) -> str:
        """A path-like name for messages."""
        return str(self.root / rel)

    def size_of(self, rel: str) -> tuple[int, int]:
        """(H, W) from the header (or the pack manifest); raises ImageReadError for unreadable files."""
        known = self.known_size(rel)
        if known is not None:
            return known
        return header_size(self.read_bytes(rel), self.display(rel))

    def is_dir(self, rel: str) -> bool:
        raise NotImplementedError

    def skipped_files(self, prefix: str = "") -> dict[str, str]:
        """``{relative path: reason}`` of image names under ``prefix`` that :meth:`list_files` left out
        (broken symbolic links); filled by ``list_files``."""
        return {}


class DirStorage(Storage):
    """A plain folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._skipped: dict[str, str] = {}

    def list_files(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        out = []
        for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in filenames:
                if not f.startswith(".") and is_image_name(f):
                    path = Path(dirpath, f)
                    rel = path.relative_to(self.root).as_posix()
                    if path.is_symlink() and not path.exists():
                        self._skipped[rel] = f"broken symbolic link (points to '{os.readlink(path)}', which does not exist)"
                        continue
                    out.append(rel)
        return sorted(out)

    def skipped_files(self, prefix: str = "") -> dict[str, str]:
        pre = (prefix.rstrip("/") + "/") if prefix and prefix != "." else ""
        return {k: v for k, v in sorted(self._skipped.items()) if k.startswith(pre)}

    def read_bytes(self, rel: str) -> bytes:
        p = self.root / rel
        try:
            return p.read_bytes()
        except FileNotFoundError as exc:
            raise ImageReadError(p, "file does not exist") from exc
        except OSError as exc:
            raise ImageReadError(p, f"cannot open file ({exc.strerror or exc})") from exc

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def is_dir(self, rel: str) -> bool:
        return (self.root / rel).is_dir()

    def size_of(self, rel: str) -> tuple[int, int]:
        p = self.root / rel
        if not p.is_file():
            raise ImageReadError(p, "file does not exist")
        with open(p, "rb") as fh:  # Pillow reads only the header
            head = fh.read(1 << 16)
        try:
            return header_size(head, str(p))
        except ImageReadError:
            return header_size(self.read_bytes(rel), str(p))  # header larger than 64 KiB (big EXIF)


class IndexedStorage(Storage):
    """A storage whose files are the keys of an index (``self.files``: relative path -> entry)."""

    files: dict[str, Any]

    def _index_dirs(self) -> None:
        self._dirs = {p.as_posix() for k in self.files for p in Path(k).parents}

    def list_files(self, prefix: str = "") -> list[str]:
        if not prefix or prefix == ".":
            return sorted(self.files)
        pre = prefix.rstrip("/") + "/"
        return sorted(k for k in self.files if k.startswith(pre))

    def exists(self, rel: str) -> bool:
        return rel in self.files

    def is_dir(self, rel: str) -> bool:
        return rel in ("", ".") or rel.rstrip("/") in self._dirs


class PackStorage(IndexedStorage):
    """A packed dataset: LMDB or WebDataset tar shards with a JSON manifest."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.format = manifest["format"]
        self.files: dict[str, dict[str, Any]] = manifest["files"]
        self._index_dirs()
        self._handles: dict[str, Any] = {}
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        st = dict(self.__dict__)
        st["_handles"] = {}
        st["_pid"] = -1
        return st

    def known_size(self, rel: str) -> tuple[int, int] | None:
        e = self.files.get(rel)
        return (int(e["h"]), int(e["w"])) if e and "h" in e else None

    def display(self, rel: str) -> str:
        return f"{self.root}/{rel} (packed {self.format})"

    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            self._handles = {}
            self._pid = os.getpid()

    def read_bytes(self, rel: str) -> bytes:
        e = self.files.get(rel)
        if e is None:
            raise ImageReadError(self.display(rel), "not in the packed dataset")
        self._check_pid()
        if self.format == "lmdb":
            env = self._handles.get("lmdb")
            if env is None:
                env = open_lmdb(self.root / "data.lmdb")
                self._handles["lmdb"] = env
            with env.begin(buffers=False) as txn:
                data = txn.get(rel.encode("utf-8"))
            if data is None:
                raise ImageReadError(self.display(rel), "key missing from the LMDB")
            return bytes(data)
        if self.format == "webdataset":
            shard = e["shard"]
            fh = self._handles.get(shard)
            if fh is None:
                fh = open(self.root / shard, "rb")  # noqa: SIM115 - kept open per process
                self._handles[shard] = fh
            fh.seek(int(e["offset"]))
            data = fh.read(int(e["size"]))
            if len(data) != int(e["size"]):
                raise ImageReadError(self.display(rel), f"shard '{shard}' is truncated")
            return data
        raise DataError(f"packed dataset '{self.root}' has an unknown format '{self.format}'")


def open_lmdb(path: Path) -> Any:
    """A read-only environment on the LMDB folder ``path`` (needs the ``lmdb`` package: ``restorekit[data]``)."""
    try:
        import lmdb
    except ImportError as exc:
        raise DataError(f"reading the LMDB '{path}' needs the 'lmdb' package: pip install 'restorekit[data]'") from exc
    try:
        return lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=512)
    except lmdb.Error as exc:
        raise DataError(f"cannot open the LMDB '{path}': {exc}") from exc


#: the files that make a folder a BasicSR-style LMDB
BASICSR_LMDB_FILES = ("data.mdb", "meta_info.txt")


def parse_basicsr_meta(path: Path) -> dict[str, tuple[int, int] | None]:
    """``{key: (h, w) or None}`` from a BasicSR ``meta_info.txt`` (``key.png (h,w,c) level`` lines;
    the shape and level are optional, keys are written with or without ``.png``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the LMDB index '{path}': {exc}") from exc
    out: dict[str, tuple[int, int] | None] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        name, _, rest = line.partition(" ")
        key = name[: -len(".png")] if name.lower().endswith(".png") else name
        size: tuple[int, int] | None = None
        shape = rest.strip().split(" ")[0] if rest.strip() else ""
        if shape:
            try:
                dims = [int(v) for v in shape.strip("()").split(",")]
            except ValueError:
                raise DataError(f"{path}:{n}: expected 'key.png (h,w,c) level', got {line!r}") from None
            if len(dims) < 2 or min(dims[:2]) < 1:
                raise DataError(f"{path}:{n}: bad image shape {shape!r}")
            size = (dims[0], dims[1])
        if not key:
            raise DataError(f"{path}:{n}: empty key")
        out[key] = size
    if not out:
        raise DataError(f"the LMDB index '{path}' lists no images")
    return out


class BasicSRLmdbStorage(IndexedStorage):
    """A BasicSR/NAFNet LMDB folder: key ``k`` is listed as the file ``k.png``; sizes from ``meta_info.txt``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, tuple[int, int] | None] = {f"{k}.png": v for k, v in parse_basicsr_meta(root / "meta_info.txt").items()}
        self._index_dirs()
        self._env: Any = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        st = dict(self.__dict__)
        st["_env"], st["_pid"] = None, -1
        return st

    def known_size(self, rel: str) -> tuple[int, int] | None:
        return self.files.get(rel)

    def display(self, rel: str) -> str:
        return f"{self.root}/{rel} (BasicSR LMDB key '{rel[:-4]}')"

    def read_bytes(self, rel: str) -> bytes:
        if rel not in self.files:
            raise ImageReadError(self.display(rel), "not listed in meta_info.txt")
        if self._env is None or self._pid != os.getpid():
            self._env, self._pid = open_lmdb(self.root), os.getpid()
        with self._env.begin(buffers=False) as txn:
            data = txn.get(rel[:-4].encode("utf-8"))
        if data is None:
            raise ImageReadError(self.display(rel), "key missing from data.mdb")
        return bytes(data)


def is_basicsr_lmdb(folder: Path) -> bool:
    """True for a folder holding ``data.mdb`` and ``meta_info.txt`` (and no restorekit manifest)."""
    return all((folder / f).is_file() for f in BASICSR_LMDB_FILES) and not (folder / MANIFEST).is_file()


_MANIFEST_CACHE: dict[str, PackStorage | None] = {}


def _pack_at(folder: Path) -> PackStorage | None:
    key = str(folder)
    if key in _MANIFEST_CACHE:
        return _MANIFEST_CACHE[key]
    m = folder / MANIFEST
    st: PackStorage | None = None
    if m.is_file():
        try:
            manifest = json.loads(m.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read pack manifest '{m}': {exc}") from exc
        if manifest.get("format") in ("lmdb", "webdataset"):
            st = PackStorage(folder, manifest)
    _MANIFEST_CACHE[key] = st
    return st


@dataclass(frozen=True)
class Location:
    """A storage and a relative path inside it (a folder or a file)."""

    storage: Storage
    rel: str

    def child(self, name: str) -> "Location":
        rel = f"{self.rel}/{name}" if self.rel else name
        return Location(self.storage, rel)


def _enclosing_pack(folder: Path) -> Storage | None:
    """The pack (or BasicSR LMDB) whose root is ``folder`` or one of its ancestors (cached per folder)."""
    key = str(folder)
    if key in _ENCLOSING:
        return _ENCLOSING[key]
    st: Storage | None = None
    for anc in [folder, *folder.parents]:
        if (anc / MANIFEST).is_file():
            st = _pack_at(anc)
            if st is not None:
                break
        if is_basicsr_lmdb(anc):
            st = _BASICSR.get(str(anc)) or _BASICSR.setdefault(str(anc), BasicSRLmdbStorage(anc))
            break
    _ENCLOSING[key] = st
    return st


_ENCLOSING: dict[str, Storage | None] = {}
_BASICSR: dict[str, BasicSRLmdbStorage] = {}
_DIRS: dict[str, DirStorage] = {}


def _dir_storage(folder: Path) -> DirStorage:
    st = _DIRS.get(str(folder))
    if st is None:
        st = _DIRS[str(folder)] = DirStorage(folder)
    return st


def resolve(path: str | Path) -> Location:
    """Map a filesystem path to (storage, relative path), entering packed datasets.

    A path at or below a folder holding a pack manifest (existing on disk or
    not) is resolved inside that pack; anything else is a plain folder/file.
    """
    p = Path(path).expanduser().absolute()
    is_file = p.is_file()
    st = _enclosing_pack(p.parent if is_file else p)
    if st is not None:
        return Location(st, p.relative_to(st.root).as_posix() if p != st.root else "")
    if is_file:
        return Location(_dir_storage(p.parent), p.name)
    return Location(_dir_storage(p), "")


def clear_cache() -> None:
    """Forget cached pack manifests and folder lookups (after packing in the same process)."""
    _MANIFEST_CACHE.clear()
    _ENCLOSING.clear()
    _DIRS.clear()
    _BASICSR.clear()


def decode_uint(data: bytes, name: str, *, max_pixels: int | None = None, rows: int | None = None) -> np.ndarray:
    """Decode image bytes to an (H, W, 3) RGB array *without* float conversion.

    uint8 for 8-bit files, uint16 for 16-bit PNG/TIFF; EXIF orientation applied
    (OpenCV). Anything OpenCV cannot decode goes through
    :func:`restorekit.io.decode_image` (float32 result, precise error message).
    The channel order is already RGB (a view over the BGR buffer).

    ``rows``: only the first ``rows`` rows are needed (a training crop's bottom
    edge). For 8-bit non-interlaced PNGs the decoder then stops there (PNG rows
    are stored top to bottom), which saves a third of the decoding on average
    for random crops; other files are decoded fully (the result may have more rows).
    """
    import cv2

    if rows is not None and _header_ok(data, name, max_pixels):
        part = decode_png_rows(data, rows)
        if part is not None:
            return part
    buf = np.frombuffer(data, dtype=np.uint8)
    arr = None
    if len(buf) and _header_ok(data, name, max_pixels):
        arr = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if arr is None or arr.dtype not in (np.uint8, np.uint16):
        from restorekit.io import decode_image

        return decode_image(data, name=name, max_pixels=max_pixels)[0]
    return arr[..., ::-1]


_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_partial_ok(data: bytes) -> bool:
    """True for an 8-bit, non-interlaced PNG (grey, RGB, palette, +alpha) whose rows can be decoded partially."""
    return (
        len(data) > 33
        and data[:8] == _PNG_SIG
        and data[12:16] == b"IHDR"
        and data[24] == 8  # bit depth
        and data[25] in (0, 2, 3, 4, 6)  # colour type
        and data[28] == 0  # not interlaced
    )


def decode_png_rows(data: bytes, rows: int) -> np.ndarray | None:
    """The first ``rows`` rows of an 8-bit PNG as (rows, W, 3) uint8 RGB, or None when not applicable.

    Uses Pillow's streaming zlib decoder with a shortened tile, so inflation
    and unfiltering stop at ``rows``. Returns None (caller decodes fully) for
    16-bit or interlaced PNGs, files with EXIF data, or any surprise.
    """
    import io

    if not png_partial_ok(data):
        return None
    h = int.from_bytes(data[20:24], "big")
    w = int.from_bytes(data[16:20], "big")
    rows = int(rows)
    if rows >= h or rows <= 0:
        return None
    try:
        from PIL import Image

        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            im = Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved
        if im.size != (w, h) or len(im.tile) != 1 or "exif" in im.info:
            return None
        t = im.tile[0]
        ext = (0, 0, w, rows)
        im.tile = [t._replace(extents=ext) if hasattr(t, "_replace") else (t[0], ext, *t[2:])]
        im._size = (w, rows)  # noqa: SLF001 - decode only the rows the crop needs
        im.load()
        if im.mode != "RGB":
            im = im.convert("RGBA").convert("RGB") if im.mode in ("P", "PA") else im.convert("RGB")
        arr = np.asarray(im)
    except Exception:  # noqa: BLE001 - any trouble: decode the whole file the normal way
        return None
    if arr.shape != (rows, w, 3) or arr.dtype != np.uint8:
        return None
    return arr


def _header_ok(data: bytes, name: str, max_pixels: int | None) -> bool:
    """Cheap bomb guard for OpenCV decoding: PNG/JPEG dimensions from the header against the pixel limit."""
    from restorekit.io.image import max_pixels_limit

    limit = max_pixels_limit(max_pixels)
    hw = _quick_size(data)
    if hw is not None and hw[0] * hw[1] > limit:
        raise ImageReadError(name, f"too many pixels: {hw[1]}x{hw[0]} exceeds the limit of {limit:,}")
    return True


def _quick_size(data: bytes) -> tuple[int, int] | None:
    """(H, W) from a PNG IHDR, without decoding; None for other formats."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        w = int.from_bytes(data[16:20], "big")
        h = int.from_bytes(data[20:24], "big")
        return h, w
    return None


def header_size(data: bytes, name: str) -> tuple[int, int]:
    """(H, W) of encoded image bytes from the header only (EXIF rotation accounted for)."""
    import io

    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageReadError(name, "file is empty (0 bytes)")
    try:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            im = Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved
        w, h = im.size
        orient = 1
        if im.format in ("JPEG", "TIFF", "WEBP", "PNG"):
            try:
                orient = int(im.getexif().get(0x0112, 1) or 1)
            except Exception:  # noqa: BLE001
                orient = 1
    except UnidentifiedImageError as exc:
        raise ImageReadError(name, "not a recognised image format (PNG, JPEG, TIFF, WebP, BMP)") from exc
    except Exception as exc:  # noqa: BLE001
        raise ImageReadError(name, f"corrupt image header ({exc})") from exc
    return (w, h) if orient in (5, 6, 7, 8) else (h, w)
