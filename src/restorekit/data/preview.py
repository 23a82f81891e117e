"""Render training samples exactly as the model sees them, with their sampled degradation parameters.

One row per sample: input | target | extras..., each tile scaled to ``tile``
pixels high, and a caption strip with the sample name, its crop size and the
parameters of every applied degradation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import DataError


def _fmt_params(params: dict[str, Any] | None) -> list[str]:
    if not params:
        return ["no degradation"] if params is not None else []
    lines = []
    for op, p in params.items():
        if isinstance(p, dict):
            inner = []
            for k, v in p.items():
                if isinstance(v, list):
                    v = f"[{len(v)}]"
                elif isinstance(v, float):
                    v = f"{v:.4g}"
                inner.append(f"{k}={v}")
            lines.append(f"{op}: " + " ".join(inner))
        else:
            lines.append(f"{op}: {json.dumps(p)}")
    return lines


def _tile(t: Any, height: int) -> np.ndarray:
    """(C, H, W) tensor in [0, 1] -> (height, w', 3) uint8 (aspect kept)."""
    import cv2

    arr = t.detach().cpu().numpy().transpose(1, 2, 0)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[..., :3]
    h, w = arr.shape[:2]
    if h != height:
        nw = max(1, int(round(w * height / h)))
        arr = cv2.resize(arr, (nw, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_NEAREST)
    return np.clip(np.rint(arr * 255), 0, 255).astype(np.uint8)


def render_samples(samples: list[dict[str, Any]], *, tile: int = 256, gap: int = 4) -> np.ndarray:
    """Compose samples into one (H, W, 3) uint8 RGB grid with captions."""
    from PIL import Image, ImageDraw, ImageFont

    if not samples:
        raise DataError("nothing to preview: the dataset is empty")
    font = ImageFont.load_default()
    line_h = 12
    rows = []
    for s in samples:
        keys = ["input", "target"] + [k for k, v in s.items() if k not in ("input", "target") and hasattr(v, "shape") and getattr(v, "ndim", 0) == 3]
        tiles = [_tile(s[k], tile) for k in keys]
        width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
        h, w = s["target"].shape[-2:]
        import textwrap

        raw_lines = [f"{s.get('name', '?')}  ({w}x{h})  columns: {' | '.join(keys)}"] + _fmt_params(s.get("params"))
        max_chars = max(16, width // 6)  # the default bitmap font is about 6 px per character
        caption = [part for line in raw_lines for part in (textwrap.wrap(line, max_chars, subsequent_indent="  ") or [""])]
        strip_h = line_h * len(caption) + 6
        canvas = Image.new("RGB", (width, tile + strip_h), (24, 24, 24))
        x = 0
        for t in tiles:
            canvas.paste(Image.fromarray(t), (x, 0))
            x += t.shape[1] + gap
        draw = ImageDraw.Draw(canvas)
        for j, line in enumerate(caption):
            draw.text((4, tile + 3 + j * line_h), line, fill=(235, 235, 235), font=font)
        rows.append(np.asarray(canvas))
    width = max(r.shape[1] for r in rows)
    out = np.full((sum(r.shape[0] for r in rows) + gap * (len(rows) - 1), width, 3), 255, np.uint8)
    y = 0
    for r in rows:
        out[y : y + r.shape[0], : r.shape[1]] = r
        y += r.shape[0] + gap
    return out


def preview_dataset(ds: Any, out: str | Path, *, n: int = 8, epoch: int = 0, tile: int | None = None) -> Path:
    """Write a grid of the first ``n`` samples of ``ds`` (at ``epoch``) to ``out`` (atomic)."""
    from restorekit.io import write_image

    if hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)
    count = min(int(n), len(ds))
    if count <= 0:
        raise DataError("nothing to preview: the dataset is empty")
    # spread the picks over the dataset so several images appear
    idx = np.unique(np.linspace(0, len(ds) - 1, count).round().astype(int))
    samples = [ds[int(i)] for i in idx]
    if tile is None:  # small patches are enlarged (nearest) so the captions fit
        ps = getattr(ds, "patch_size", None)
        tile = int(min(max(ps or 256, 192), 256))
    grid = render_samples(samples, tile=tile)
    return write_image(out, grid)
