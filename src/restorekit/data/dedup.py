"""Content de-duplication for train/validation splits.

A split checked by file name only leaks: scikit-image's ``cat`` is pixel-identical to
``chelsea``, and ``motorcycle_right`` is the stereo partner of ``motorcycle_left``. This module
groups images by *content* so that a split can keep each group on one side:

- **exact duplicates**: the SHA-256 of the decoded pixels (shape + bytes), so a PNG and a
  re-encoded lossless copy match;
- **near duplicates**: the best Pearson correlation of 32x32 area-downscaled grey thumbnails over
  shifts of up to :data:`MAX_SHIFT` thumbnail pixels, at or above :data:`NEAR_DUP_THRESHOLD`
  (re-compressed, shifted, colour-jittered or rescaled copies; a stereo partner with small disparity);
- **known groups**: names declared to belong together (:data:`KNOWN_GROUPS`: aliases and stereo
  pairs of the bundled photos), whatever their pixels.

:func:`content_groups` returns a group id per name (union-find over the three relations);
:func:`dedup_split` drops training items that share a group with any validation item.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: shift-tolerant correlation of 32x32 grey thumbnails at or above which two images count as near
#: duplicates. Calibrated on the bundled scikit-image photos (tests/data/test_dedup.py): distinct
#: photos reach at most 0.60 (retina / colorwheel), the motorcycle stereo pair 0.88, a JPEG-75 copy 1.00.
NEAR_DUP_THRESHOLD = 0.8
#: largest thumbnail shift (pixels of the 32x32 thumbnail, i.e. ~6 % of the image) tried
MAX_SHIFT = 2
#: thumbnail side in pixels
THUMB = 32
#: images with an aspect ratio differing by more than this factor are never near duplicates
MAX_ASPECT_RATIO = 1.25
#: scikit-image photos that are the same picture or the same scene (aliases, stereo pairs)
KNOWN_GROUPS: dict[str, str] = {
    "cat": "chelsea",
    "chelsea": "chelsea",
    "motorcycle_left": "motorcycle",
    "motorcycle_right": "motorcycle",
}


def _as_uint8_rgb(arr: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 view of an image (grey repeated; floats in [0, 1] scaled; 16-bit shifted)."""
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    a = a[..., :3]
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.uint16:
        return np.ascontiguousarray((a >> 8).astype(np.uint8))
    if a.dtype == bool:
        return np.ascontiguousarray(a.astype(np.uint8) * 255)
    return np.ascontiguousarray(np.round(np.clip(a.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8))


def pixel_hash(arr: np.ndarray) -> str:
    """SHA-256 (hex) of the decoded pixels as (H, W, 3) uint8, shape included."""
    a = _as_uint8_rgb(arr)
    h = hashlib.sha256(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def thumbnail(arr: np.ndarray, size: int = THUMB) -> np.ndarray:
    """``(size, size)`` float64 area-downscaled grey (BT.601 luma, 0..255) image."""
    import cv2

    a = _as_uint8_rgb(arr).astype(np.float32)
    g = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA).astype(np.float64)


def thumb_correlation(x: np.ndarray, y: np.ndarray, max_shift: int = MAX_SHIFT) -> float:
    """Best Pearson correlation of two thumbnails over integer shifts up to ``max_shift`` (overlap only)."""
    return float(correlation_matrix(x[None], y[None], max_shift)[0, 0])


def correlation_matrix(a: np.ndarray, b: np.ndarray, max_shift: int = MAX_SHIFT) -> np.ndarray:
    """:func:`thumb_correlation` of every pair: ``a`` (N, S, S) and ``b`` (M, S, S) thumbnails -> (N, M).

    One matrix product per shift over the overlapping crops (each crop normalised on its own), so
    thousands of images compare in seconds.
    """
    s = a.shape[-1]
    best = np.full((a.shape[0], b.shape[0]), -1.0, dtype=np.float32)

    def norm(x: np.ndarray) -> np.ndarray:
        x = x.reshape(x.shape[0], -1).astype(np.float32)
        x = x - x.mean(axis=1, keepdims=True)
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return np.where(n > 1e-6, x / np.maximum(n, 1e-12), 0.0).astype(np.float32)

    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            ca = a[:, max(dy, 0): s + min(dy, 0), max(dx, 0): s + min(dx, 0)]
            cb = b[:, max(-dy, 0): s + min(-dy, 0), max(-dx, 0): s + min(-dx, 0)]
            np.maximum(best, norm(ca) @ norm(cb).T, out=best)
    return best


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Shift-tolerant thumbnail correlation of two images (0 when their aspect ratios differ too much)."""
    ra, rb = a.shape[1] / a.shape[0], b.shape[1] / b.shape[0]
    if max(ra, rb) / min(ra, rb) > MAX_ASPECT_RATIO:
        return 0.0
    return thumb_correlation(thumbnail(a), thumbnail(b))


@dataclass(frozen=True)
class _Fingerprint:
    digest: str
    thumb: np.ndarray
    aspect: float


@dataclass
class Groups:
    """Result of :func:`content_groups`: ``group[name]`` is the id of its group (its first member's
    name, or the :data:`KNOWN_GROUPS` id) and ``reasons`` says why names were joined."""

    group: dict[str, str]
    reasons: list[dict[str, Any]] = field(default_factory=list)

    def members(self) -> dict[str, list[str]]:
        """Group id -> names, for groups with two or more names."""
        out: dict[str, list[str]] = {}
        for n, g in self.group.items():
            out.setdefault(g, []).append(n)
        return {g: sorted(v) for g, v in out.items() if len(v) > 1}


def _fingerprint(arr: np.ndarray) -> _Fingerprint:
    a = _as_uint8_rgb(arr)
    return _Fingerprint(pixel_hash(a), thumbnail(a), a.shape[1] / max(a.shape[0], 1))


def content_groups(
    images: Mapping[str, np.ndarray | Callable[[], np.ndarray]],
    *,
    known: Mapping[str, str] | None = None,
    threshold: float = NEAR_DUP_THRESHOLD,
) -> Groups:
    """Group ``images`` (name -> array or zero-argument loader) by content.

    Two names share a group when their pixels are identical, their thumbnails correlate at
    ``threshold`` or more (and their aspect ratios are within :data:`MAX_ASPECT_RATIO`), or
    ``known`` (default :data:`KNOWN_GROUPS`) gives them the same id; groups are closed
    transitively. Each image is loaded once.
    """
    known = KNOWN_GROUPS if known is None else known
    names = list(images)
    parent = {n: n for n in names}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    reasons: list[dict[str, Any]] = []
    prints: dict[str, _Fingerprint] = {}
    for n in names:
        src = images[n]
        prints[n] = _fingerprint(src() if callable(src) else src)
    by_hash: dict[str, str] = {}
    for n in names:
        first = by_hash.setdefault(prints[n].digest, n)
        if first != n:
            union(first, n)
            reasons.append({"a": first, "b": n, "why": "identical pixels"})
    if len(names) > 1:
        corr = correlation_matrix(np.stack([prints[n].thumb for n in names]), np.stack([prints[n].thumb for n in names]))
        aspect = np.array([prints[n].aspect for n in names])
        ratio = np.maximum(aspect[:, None], aspect[None, :]) / np.minimum(aspect[:, None], aspect[None, :])
        for i, j in zip(*np.nonzero(np.triu((corr >= threshold) & (ratio <= MAX_ASPECT_RATIO), k=1))):
            a, b = names[i], names[j]
            if prints[a].digest == prints[b].digest:
                continue
            union(a, b)
            reasons.append({"a": a, "b": b, "why": f"near duplicate (thumbnail correlation {corr[i, j]:.3f})"})
    by_known: dict[str, str] = {}
    for n in names:
        k = known.get(n)
        if k is None:
            continue
        first = by_known.setdefault(k, n)
        if first != n and find(first) != find(n):
            union(first, n)
            reasons.append({"a": first, "b": n, "why": f"known group '{k}'"})
    root_id: dict[str, str] = {}
    for n in names:
        root_id.setdefault(find(n), known.get(n, find(n)))
    return Groups({n: root_id[find(n)] for n in names}, reasons)


def dedup_split(
    train: Iterable[Any],
    val: Iterable[Any],
    *,
    load: Callable[[Any], np.ndarray],
    name: Callable[[Any], str] = lambda it: it.name,
    known: Mapping[str, str] | None = None,
    threshold: float = NEAR_DUP_THRESHOLD,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Drop training items whose content matches a validation item.

    ``load(item)`` returns the item's (target) image. Returns the kept training items and one
    record per dropped item: ``{"name", "matches": [val names], "why": [...]}``.
    """
    train, val = list(train), list(val)
    if not train or not val:
        return train, []
    keyed: dict[str, Any] = {}
    for side, items in (("train", train), ("val", val)):
        for it in items:
            keyed.setdefault(f"{side}:{name(it)}", it)
    known = KNOWN_GROUPS if known is None else known
    side_known = {k: known[k.split(":", 1)[1]] for k in keyed if k.split(":", 1)[1] in known}
    groups = content_groups({k: (lambda it=it: load(it)) for k, it in keyed.items()}, known=side_known, threshold=threshold)
    val_groups: dict[str, list[str]] = {}
    for k, g in groups.group.items():
        if k.startswith("val:"):
            val_groups.setdefault(g, []).append(k.split(":", 1)[1])
    kept, dropped = [], []
    for it in train:
        g = groups.group[f"train:{name(it)}"]
        if g in val_groups:
            why = sorted({r["why"] for r in groups.reasons if f"train:{name(it)}" in (r["a"], r["b"])} or {"same group"})
            dropped.append({"name": name(it), "matches": sorted(val_groups[g]), "why": why})
        else:
            kept.append(it)
    if dropped:
        log.warning("held out by content: %d training image(s) duplicate validation images and were removed: %s",
                    len(dropped), ", ".join(f"{d['name']} ~ {'/'.join(d['matches'])}" for d in dropped))
    return kept, dropped
