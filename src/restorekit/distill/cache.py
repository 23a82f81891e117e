"""A resumable, fingerprinted cache of teacher outputs.

Layout of a cache folder::

    cache_dir/
      fingerprint.json        # what the cache was computed from (see fingerprint.py) + progress
      <name>.png              # 16-bit PNG of the teacher output for input <name> (format "png16")
      <name>.npy              # or float32 (H, W, 3) array in [0, 1] (format "npy")

``<name>`` is the input's relative path with its extension replaced, so the
cache mirrors the input folder (sub-folders included) and a data loader can
read it as one more aligned folder. Every file is written atomically
(:mod:`restorekit.utils.atomic`): a run killed mid-way leaves only complete
files (and perhaps a hidden temporary file, removed by the next run); the
next run skips the outputs already there. When the fingerprint changes (new
teacher weights, new inputs, new degradation recipe, other format), the old
outputs are deleted before anything is computed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np

from restorekit.distill.fingerprint import changed_parts
from restorekit.errors import DataError
from restorekit.io.image import is_image_name
from restorekit.utils.atomic import atomic_path, atomic_write_json

log = logging.getLogger(__name__)

CacheFormat = Literal["png16", "npy"]
FINGERPRINT_FILE = "fingerprint.json"
_EXT: dict[str, str] = {"png16": ".png", "npy": ".npy"}


@dataclass(frozen=True)
class CacheItem:
    """One teacher input: ``name`` (relative posix path of the input file) and a loader.

    ``load()`` returns the teacher's input as an ``(H, W, 3)`` float32 RGB array in [0, 1].
    """

    name: str
    load: Callable[[], np.ndarray]


@dataclass
class PrecomputeResult:
    """What :func:`precompute_teacher` did."""

    cache_dir: Path
    computed: int = 0
    skipped: int = 0
    invalidated: bool = False
    changed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.computed + self.skipped


def cache_ext(fmt: str) -> str:
    """File extension of cache format ``fmt`` (``png16`` -> ``.png``, ``npy`` -> ``.npy``)."""
    if fmt not in _EXT:
        raise DataError(f"unknown teacher cache format '{fmt}' (use one of {', '.join(_EXT)})")
    return _EXT[fmt]


def cache_name(name: str, fmt: str) -> str:
    """Relative cache file name for input ``name``: same path and stem, the format's extension."""
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts:
        raise DataError(f"teacher cache: input name '{name}' must be a relative path inside the data folder")
    return str(p.with_suffix(cache_ext(fmt)))


def write_cached(path: Path, image: np.ndarray, fmt: str) -> None:
    """Write one teacher output ``(H, W, 3)`` float in [0, 1] to ``path`` atomically."""
    img = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if fmt == "png16":
        from restorekit.io import write_image

        write_image(path, img, bit_depth=16)
    elif fmt == "npy":
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(img), allow_pickle=False)
    else:
        cache_ext(fmt)  # raises


def read_cached(path: str | Path) -> np.ndarray:
    """Read a cached teacher output as ``(H, W, 3)`` float32 in [0, 1] (16-bit PNG or .npy)."""
    p = Path(path)
    if p.suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"teacher cache file '{p}' is unreadable: {exc}") from exc
        return arr.astype(np.float32, copy=False)
    from restorekit.io import read_image

    return read_image(p)


def read_fingerprint(cache_dir: str | Path) -> dict[str, Any] | None:
    """The fingerprint record stored in ``cache_dir``, or None when absent or unreadable."""
    f = Path(cache_dir) / FINGERPRINT_FILE
    if not f.is_file():
        return None
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def cache_status(cache_dir: str | Path, fingerprint: Mapping[str, Any]) -> str:
    """``missing``, ``stale`` (other fingerprint), ``partial`` (interrupted) or ``complete``."""
    old = read_fingerprint(cache_dir)
    if old is None:
        return "missing"
    if old.get("digest") != fingerprint.get("digest"):
        return "stale"
    return "complete" if old.get("complete") else "partial"


def _cache_files(cache_dir: Path) -> list[Path]:
    exts = set(_EXT.values())
    return [p for p in cache_dir.rglob("*") if p.is_file() and p.suffix in exts and not p.name.startswith(".")]


def _remove_temporaries(cache_dir: Path) -> int:
    """Delete hidden ``.stem.XXXX.tmp.ext`` files left by a killed writer; return how many."""
    n = 0
    for p in cache_dir.rglob(".*.tmp*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


def clear_cache(cache_dir: str | Path) -> int:
    """Delete every cached output and the fingerprint in ``cache_dir``; return the number of outputs removed."""
    d = Path(cache_dir)
    if not d.is_dir():
        return 0
    files = _cache_files(d)
    for p in files:
        p.unlink(missing_ok=True)
    _remove_temporaries(d)
    (d / FINGERPRINT_FILE).unlink(missing_ok=True)
    return len(files)


def precompute_teacher(
    teacher_fn: Callable[[np.ndarray], np.ndarray],
    items: Sequence[CacheItem],
    cache_dir: str | Path,
    fingerprint: Mapping[str, Any],
    *,
    fmt: CacheFormat = "png16",
    progress: Callable[[int, int, str], None] | None = None,
) -> PrecomputeResult:
    """Run ``teacher_fn`` over ``items`` into ``cache_dir``, resuming and invalidating as needed.

    ``teacher_fn``: ``(H, W, 3)`` float32 [0, 1] -> ``(H, W, 3)`` float32 [0, 1].
    Outputs already present (from an interrupted run with the same
    fingerprint) are skipped; a different fingerprint deletes the old cache
    first. ``progress(done, total, name)`` is called after each item.
    """
    d = Path(cache_dir)
    d.mkdir(parents=True, exist_ok=True)
    result = PrecomputeResult(cache_dir=d)
    names = [cache_name(it.name, fmt) for it in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"teacher cache '{d}': several inputs map to the same cache file(s) {dupes[:5]} (same stem)")

    old = read_fingerprint(d)
    if old is not None and old.get("digest") != fingerprint.get("digest"):
        result.invalidated = True
        result.changed = changed_parts(old, fingerprint)
        removed = clear_cache(d)
        log.warning("teacher cache %s is stale (changed: %s): removed %d outputs", d, ", ".join(result.changed), removed)
    elif old is None and _cache_files(d):
        # outputs without a fingerprint: nothing says what produced them
        result.invalidated = True
        result.changed = ["fingerprint missing"]
        clear_cache(d)
    _remove_temporaries(d)

    record = dict(fingerprint)
    record.update({"complete": False, "format": fmt, "count": len(items)})
    atomic_write_json(d / FINGERPRINT_FILE, record)

    total = len(items)
    for i, (item, rel) in enumerate(zip(items, names)):
        out = d / rel
        if out.is_file():
            result.skipped += 1
        else:
            x = item.load()
            y = teacher_fn(x)
            if y.shape != x.shape:
                raise DataError(
                    f"teacher output for '{item.name}' has shape {tuple(y.shape)}, input {tuple(x.shape)}"
                )
            write_cached(out, y, fmt)
            result.computed += 1
        if progress is not None:
            progress(i + 1, total, item.name)

    record["complete"] = True
    atomic_write_json(d / FINGERPRINT_FILE, record)
    return result


def list_images(folder: str | Path) -> list[tuple[str, Path]]:
    """``(relative posix name, path)`` of every image under ``folder`` (recursive, sorted, hidden files skipped)."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"teacher cache: input folder '{root}' does not exist")
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and is_image_name(p.name) and not any(s.startswith(".") for s in rel.parts):
            out.append((rel.as_posix(), p))
    return out


def folder_items(files: Sequence[tuple[str, Path]]) -> list[CacheItem]:
    """:class:`CacheItem` s reading each listed image file with :func:`restorekit.io.read_image`."""
    from restorekit.io import read_image

    def loader(path: Path) -> Callable[[], np.ndarray]:
        return lambda: read_image(path)

    return [CacheItem(name, loader(path)) for name, path in files]
