"""The project's small, fast raw dataset: an 8-bit JPEG proxy of aligned raw pairs.

``pack_raw_dataset(src, out)`` reads every noisy/ground-truth pair of a raw
folder (see :func:`restorekit.raw.dataset.discover_raw_pairs`), demosaics both,
matches the ground truth's exposure and aligns it onto the noisy frame (ORB +
ECC), optionally centre-crops (even offsets), and writes::

    out/pack.json                 format, gamma, JPEG quality, demosaic, seed, split
    out/metadata.csv              name, scene, iso, split, cc, m00..m12, gain, width, height, noisy_src, gt_src, status
    out/noisy/<name>.jpg          demosaiced noisy frame (RGB, 4:4:4)
    out/mosaic/<name>.jpg         single-channel RGGB Bayer mosaic
    out/gt/<name>.jpg             aligned ground truth (RGB, 4:4:4)

All three are camera-linear values encoded with gamma 1/2.2 before 8-bit
quantisation (linear 8-bit would leave the shadows a handful of levels); the
reader decodes them back to linear. The split is seeded and by scene (80/20 by
default). :func:`restorekit.raw.dataset.build_raw_datasets` reads the result.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from restorekit.errors import DataError, ImageWriteError
from restorekit.utils.atomic import atomic_path, atomic_write_json, atomic_write_text

PACK_FORMAT = "restorekit-raw-pack/1"
META_FIELDS = ["name", "scene", "iso", "split", "cc", "m00", "m01", "m02", "m10", "m11", "m12", "gain",
               "width", "height", "noisy_src", "gt_src", "status"]


def _write_jpeg(path: Path, arr01: np.ndarray, quality: int) -> None:
    from PIL import Image

    u8 = (np.clip(arr01, 0, 1) * 255 + 0.5).astype(np.uint8)
    im = Image.fromarray(u8, mode="L" if u8.ndim == 2 else "RGB")
    try:
        with atomic_path(path) as tmp:
            im.save(tmp, format="JPEG", quality=int(quality), subsampling=0)
    except OSError as exc:
        raise ImageWriteError(path, f"cannot write JPEG ({exc})") from exc


def _center_crop_even(h: int, w: int, crop: int | tuple[int, int] | None) -> tuple[int, int, int, int]:
    if crop is None:
        return 0, 0, h, w
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    ch, cw = min(int(ch), h) // 2 * 2, min(int(cw), w) // 2 * 2
    top, left = (h - ch) // 2 // 2 * 2, (w - cw) // 2 // 2 * 2
    return top, left, ch, cw


def pack_raw_dataset(
    src: str | Path,
    out: str | Path,
    *,
    quality: int = 95,
    crop: int | tuple[int, int] | None = None,
    seed: int = 0,
    split: float = 0.2,
    align: bool = True,
    min_cc: float | None = None,
    demosaic: str = "bilinear",
    layout: str = "auto",
    gamma: float = 2.2,
    progress: bool = False,
) -> dict[str, Any]:
    """Write the JPEG proxy of the raw folder ``src`` into ``out`` (see the module docstring).

    ``crop``: centre crop (int side or (h, w)), even-aligned; ``split``: fraction of
    scenes in the validation split (seeded by ``seed``); ``min_cc``: pairs whose
    alignment correlation is lower are left out (listed with status "rejected").
    Returns a summary ``{"written", "rejected", "train", "val", "out"}``.
    """
    from restorekit.raw.align import align_pair
    from restorekit.raw.bayer import gamma_encode
    from restorekit.raw.dataset import discover_raw_pairs, load_raw_pair, split_scenes

    if not 1 <= int(quality) <= 100:
        raise DataError(f"JPEG quality must be in 1..100, got {quality}")
    if not 0 <= split < 1:
        raise DataError(f"split (validation fraction) must be in [0, 1), got {split}")
    out = Path(out)
    pairs = discover_raw_pairs(src, layout)
    if not pairs:
        raise DataError(f"no noisy/ground-truth raw pairs found in '{src}'")
    train_pairs, val_pairs = split_scenes(pairs, split, seed) if split > 0 and len(pairs) > 1 else (pairs, [])
    val_names = {p.name for p in val_pairs}
    rows: list[dict[str, Any]] = []
    it: Any = pairs
    if progress:
        from tqdm import tqdm

        it = tqdm(pairs, desc="pack raw", unit="pair")
    for pair in it:
        data = load_raw_pair(pair, demosaic=demosaic, match_exposure=True, align=False)
        mosaic, residual, target = data["mosaic"], data["residual"], data["target"]
        row: dict[str, Any] = {"name": pair.name, "scene": pair.scene, "iso": pair.iso,
                               "split": "val" if pair.name in val_names else "train",
                               "noisy_src": str(pair.noisy), "gt_src": str(pair.gt), "gain": 1.0}
        warp = np.eye(2, 3)
        cc = float("nan")
        status = "ok"
        if align:
            res = align_pair(gamma_encode(residual, gamma), gamma_encode(target, gamma), min_cc=min_cc, match_exposure=False)
            warp, cc, status = res.warp, res.cc, res.status
            if res.status == "ok" and res.aligned is not None:
                from restorekit.raw.bayer import gamma_decode

                target = gamma_decode(res.aligned, gamma)
        row.update({f"m{r}{c}": float(warp[r, c]) for r in range(2) for c in range(3)})
        row["cc"] = cc
        row["status"] = status
        top, left, ch, cw = _center_crop_even(*mosaic.shape, crop)
        row["width"], row["height"] = cw, ch
        rows.append(row)
        if status != "ok":
            continue
        sl = (slice(top, top + ch), slice(left, left + cw))
        _write_jpeg(out / "noisy" / f"{pair.name}.jpg", gamma_encode(residual[sl], gamma), quality)
        _write_jpeg(out / "mosaic" / f"{pair.name}.jpg", gamma_encode(mosaic[sl], gamma), quality)
        _write_jpeg(out / "gt" / f"{pair.name}.jpg", gamma_encode(target[sl], gamma), quality)
    ok_rows = [r for r in rows if r["status"] == "ok"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=META_FIELDS)
    writer.writeheader()
    for r in ok_rows:
        writer.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in META_FIELDS})
    atomic_write_text(out / "metadata.csv", buf.getvalue())
    if len(ok_rows) < len(rows):
        rbuf = io.StringIO()
        w2 = csv.DictWriter(rbuf, fieldnames=META_FIELDS)
        w2.writeheader()
        for r in rows:
            if r["status"] != "ok":
                w2.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in META_FIELDS})
        atomic_write_text(out / "rejected.csv", rbuf.getvalue())
    summary = {
        "format": PACK_FORMAT, "gamma": gamma, "quality": int(quality), "demosaic": demosaic, "seed": int(seed),
        "split": float(split), "crop": crop, "aligned": bool(align), "min_cc": min_cc, "src": str(src),
        "written": len(ok_rows), "rejected": len(rows) - len(ok_rows),
        "train": sum(r["split"] == "train" for r in ok_rows), "val": sum(r["split"] == "val" for r in ok_rows),
    }
    atomic_write_json(out / "pack.json", summary)
    return {**summary, "out": str(out)}
