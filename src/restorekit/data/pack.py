"""``restorekit data pack``: re-encode / shard a dataset folder for faster reading.

Formats (relative paths are kept, so a config pointing at ``SRC/x/y`` works on ``DST/x/y``):

* ``jpeg``: a folder of JPEG copies (``--quality``, default 95, 4:4:4 chroma) - smaller and
  faster to decode than PNG; lossy (16-bit sources become 8-bit).
* ``png``: a folder of PNG copies (lossless; useful with ``--crop``).
* ``lmdb``: one LMDB environment (``data.lmdb/``; restorekit's own layout, not BasicSR's: key = relative
  path with its extension, index in the manifest), value = the file bytes
  (original, or JPEG when ``--quality`` is given); no per-file open/stat.
* ``webdataset``: tar shards (``shard-000000.tar``, WebDataset-compatible member names)
  with an offset index in the manifest for random access.

``--crop N`` keeps the centre N x N of every image (paired files of equal size stay aligned).
Every pack writes ``restorekit-pack.json`` (format, options, per-file size and location).
The output is assembled in a temporary sibling folder and renamed into place,
so an interrupted pack never looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import numpy as np

from restorekit.data.storage import MANIFEST, clear_cache, decode_uint, header_size, resolve
from restorekit.data.transforms import center_crop
from restorekit.errors import DataError, RestoreKitError

FORMATS = ("jpeg", "png", "lmdb", "webdataset")


def _encode(arr: np.ndarray, fmt: str, quality: int) -> bytes:
    """(H, W, 3) RGB uint8/uint16 -> JPEG (8-bit, 4:4:4) or PNG bytes via OpenCV."""
    import cv2

    bgr = np.ascontiguousarray(arr[..., ::-1])
    if fmt == "jpeg":
        if bgr.dtype != np.uint8:
            bgr = (bgr.astype(np.float32) / 257.0 + 0.5).astype(np.uint8) if bgr.dtype == np.uint16 else np.clip(bgr * 255 + 0.5, 0, 255).astype(np.uint8)
        params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
        if hasattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR"):
            params += [int(cv2.IMWRITE_JPEG_SAMPLING_FACTOR), int(cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444)]
        ok, buf = cv2.imencode(".jpg", bgr, params)
    else:
        if bgr.dtype not in (np.uint8, np.uint16):
            bgr = np.clip(bgr * 65535 + 0.5, 0, 65535).astype(np.uint16)
        ok, buf = cv2.imencode(".png", bgr, [int(cv2.IMWRITE_PNG_COMPRESSION), 3])
    if not ok:
        raise DataError(f"OpenCV could not encode a {fmt.upper()}")
    return buf.tobytes()


def _convert(data: bytes, name: str, rel: str, encode: str | None, quality: int, crop: int | None) -> tuple[str, bytes, int, int]:
    """Return (new relative path, bytes, height, width) of one file."""
    if encode is None and crop is None:
        h, w = header_size(data, name)
        return rel, data, h, w
    arr = decode_uint(data, name)
    if crop is not None:
        arr = center_crop([arr], crop)[0] if min(arr.shape[:2]) >= crop else arr
    fmt = encode or ("png" if PurePosixPath(rel).suffix.lower() == ".png" else "jpeg")
    if encode is None and PurePosixPath(rel).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        fmt = "png"
    out = _encode(arr, fmt, quality)
    ext = ".jpg" if fmt == "jpeg" else ".png"
    return str(PurePosixPath(rel).with_suffix(ext)), out, int(arr.shape[0]), int(arr.shape[1])


def pack_dataset(
    src: str | Path,
    out: str | Path,
    *,
    format: str = "jpeg",  # noqa: A002
    quality: int | None = None,
    crop: int | None = None,
    shard_mb: int = 512,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Pack every image under ``src`` (a folder or a pack) into ``out``; return the manifest.

    ``quality`` (1-100) re-encodes to JPEG (default 95 for the ``jpeg`` format; for
    ``lmdb``/``webdataset`` the original bytes are stored unless it is given).
    """
    if format not in FORMATS:
        raise DataError(f"unknown pack format '{format}' (choose from {', '.join(FORMATS)})")
    if quality is not None and not 1 <= int(quality) <= 100:
        raise DataError(f"--quality must lie in 1..100, got {quality}")
    if crop is not None and crop < 8:
        raise DataError(f"--crop must be at least 8, got {crop}")
    if int(shard_mb) < 1:
        raise DataError(f"--shard-mb must be at least 1 (MB per webdataset shard), got {shard_mb}")
    if workers is not None and int(workers) < 1:
        raise DataError(f"--workers must be at least 1 (encoding threads), got {workers}")
    loc = resolve(src)
    if not loc.storage.is_dir(loc.rel):
        raise DataError(f"pack source '{src}' is not a folder")
    out = Path(out).absolute()
    _check_output(out)
    files = _exclude_output(loc, loc.storage.list_files(loc.rel), out)
    skipped = loc.storage.skipped_files(loc.rel)
    if not files:
        raise DataError(f"pack source '{src}' holds no images ({', '.join(sorted(['png', 'jpg', 'tif', 'webp', 'bmp']))})")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DataError(f"pack output '{out}' exists and is not empty (use --overwrite)")
    pre = (loc.rel.rstrip("/") + "/") if loc.rel else ""
    encode = "jpeg" if format == "jpeg" or quality is not None else ("png" if format == "png" else None)
    q = int(quality if quality is not None else 95)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".packing", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private
    t0 = time.time()
    entries: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    try:
        def job(rel: str) -> tuple[str, bytes, int, int] | str:
            name = loc.storage.display(rel)
            try:
                return _convert(loc.storage.read_bytes(rel), name, rel[len(pre) :], encode, q, crop)
            except RestoreKitError as exc:
                return str(exc)

        writer = _Writer(format, tmp, shard_mb, sum(_size_hint(loc, r) for r in files))
        n_workers = workers or min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=n_workers) as pool:  # OpenCV codecs release the GIL
            for i, res in enumerate(pool.map(job, files, chunksize=1) if n_workers > 1 else map(job, files)):
                if isinstance(res, str):
                    errors.append(res)
                    continue
                rel, data, h, w = res
                if rel in entries:
                    errors.append(f"two source files map to '{rel}' (same name, different extensions)")
                    continue
                entries[rel] = {"h": h, "w": w, **writer.add(rel, data)}
                if progress:
                    progress(i + 1, len(files))
        writer.close(entries)
        if errors:
            raise DataError(f"cannot pack '{src}': {len(errors)} file(s) failed:\n  " + "\n  ".join(errors[:25]))
        manifest = {
            "restorekit_pack": 1,
            "format": format,
            "source": str(Path(src).absolute()),
            "encode": encode or "original",
            "quality": q if encode == "jpeg" else None,
            "crop": crop,
            "count": len(entries),
            "skipped": {rel[len(pre) :]: why for rel, why in skipped.items()},
            "bytes": int(sum(e.get("size", 0) for e in entries.values())) or writer.total,
            "seconds": round(time.time() - t0, 2),
            "files": entries,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    clear_cache()
    return manifest


def _check_output(out: Path) -> None:
    """The output must be a folder (or not exist yet) below folders: no plain file on the way."""
    for p in [out, *out.parents]:
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == out else f"lies under the file '{p}'"
                raise DataError(f"pack output '{out}' {what}: choose a folder path")
            return


def _exclude_output(loc: Any, files: list[str], out: Path) -> list[str]:
    """Leave out files under ``out`` (packing into a subfolder of the source never re-packs the pack)."""
    root = getattr(loc.storage, "root", None)
    if root is None:
        return files
    try:
        inside = out.relative_to(Path(root).absolute()).as_posix()
    except ValueError:
        return files
    pre = inside.rstrip("/") + "/"
    return [f for f in files if not f.startswith(pre)]


def _size_hint(loc: Any, rel: str) -> int:
    try:
        return int(os.path.getsize(loc.storage.root / rel))
    except OSError:
        return 4 << 20


class _Writer:
    """Writes payloads for one format; ``add`` returns the manifest location fields."""

    def __init__(self, fmt: str, root: Path, shard_mb: int, hint: int) -> None:
        self.fmt, self.root, self.total = fmt, root, 0
        self.shard_bytes = max(1, shard_mb) << 20
        self._tar: tarfile.TarFile | None = None
        self._shard_idx, self._shard_size = -1, 0
        self._env = None
        if fmt == "lmdb":
            import lmdb

            self._map = int(hint * 2) + (1 << 30)  # sparse on Linux; JPEG re-encoding only shrinks
            self._env = lmdb.open(str(root / "data.lmdb"), map_size=self._map, subdir=True, meminit=False, map_async=True)
            self._txn = self._env.begin(write=True)
            self._pending = 0

    def add(self, rel: str, data: bytes) -> dict[str, Any]:
        self.total += len(data)
        if self.fmt in ("jpeg", "png"):
            p = self.root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            return {}
        if self.fmt == "lmdb":
            import lmdb

            while True:
                try:
                    self._txn.put(rel.encode("utf-8"), data)
                    break
                except lmdb.MapFullError:
                    self._txn.abort()
                    raise DataError("LMDB map full while packing (internal size estimate too small); retry with --format webdataset") from None
            self._pending += 1
            if self._pending >= 256:
                self._txn.commit()
                self._txn = self._env.begin(write=True)  # type: ignore[union-attr]
                self._pending = 0
            return {"size": len(data)}
        # webdataset
        if self._tar is None or self._shard_size >= self.shard_bytes:
            if self._tar is not None:
                self._tar.close()
            self._shard_idx += 1
            self._tar = tarfile.open(self.root / self.shard_name, "w", format=tarfile.GNU_FORMAT)
            self._shard_size = 0
        import io

        ti = tarfile.TarInfo(name=rel)
        ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
        self._tar.addfile(ti, io.BytesIO(data))
        self._shard_size += len(data) + 1024
        return {"shard": self.shard_name, "size": len(data)}

    @property
    def shard_name(self) -> str:
        return f"shard-{self._shard_idx:06d}.tar"

    def close(self, entries: dict[str, dict[str, Any]]) -> None:
        if self.fmt == "lmdb" and self._env is not None:
            self._txn.commit()
            self._env.sync()
            self._env.close()
        if self.fmt == "webdataset":
            if self._tar is not None:
                self._tar.close()
            for shard in sorted({e["shard"] for e in entries.values()}):
                with tarfile.open(self.root / shard, "r") as tf:
                    for m in tf.getmembers():
                        if m.name in entries:
                            entries[m.name]["offset"] = m.offset_data
