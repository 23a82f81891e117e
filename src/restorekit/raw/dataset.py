"""Raw denoising datasets: RawNIND-style raw scenes and the packed JPEG proxy.

Sample (a dict, batched by ``restorekit.data.collate``):

* ``rggb``: ``(4, h, w)`` float32, packed noisy mosaic (R, G1, G2, B), black-subtracted, [0, 1];
* ``cond``: ``(1,)`` float32, ISO / ``iso_norm`` (6400);
* ``residual``: ``(3, 2h, 2w)`` float32, demosaiced noisy frame, camera-linear RGB [0, 1];
* ``input``: the same tensor as ``residual`` (what metrics compare the output against);
* ``target``: ``(3, 2h, 2w)`` float32, demosaiced ground truth, camera-linear RGB [0, 1];
* ``name`` (str) and ``iso`` (int): per-ISO validation metrics group by ``iso``.

Sources:

* raw files (:func:`discover_raw_pairs`): flat ``<scene>_ISO<iso>_<rest>.<ext>``
  names, the lowest ISO of each scene being its ground truth; or ``<scene>/``
  folders holding the noisy frames with the ground truth in ``<scene>/gt/``;
* a packed proxy (``pack.json`` + ``metadata.csv`` + ``noisy/ mosaic/ gt/`` JPEGs,
  gamma 1/2.2 encoded, see :mod:`restorekit.raw.pack`); its own split column is used;
* the Raw Restorer seed's small dataset (:func:`read_seed_index`, ``format: seed``): one
  folder with ``align_data.csv`` (pandas index column, ``cc``, ``noisy_image``,
  ``gt_image``, ``m00..m12`` warp matrix, ``iso``, ...), per noisy frame
  ``<noisy_image>_bayer.jpg`` (single-channel mosaic) and ``<noisy_image>.jpg``
  (its demosaic), per scene ``<gt_image>.jpg``; all 8-bit, gamma 1/2.2, in
  lin_rec2020. As the seed's ``SmallRawDataset``: the ground truth is warped onto
  the noisy frame with the CSV's matrix (``cv2.warpAffine``, Lanczos, inverse map,
  reflected border), both are decoded with ``x ** 2.2``, the residual is the
  demosaic of the mosaic (``demosaic: malvar`` is the seed's), and the ground truth
  is scaled to the residual's mean. Seeded 80/20 split by scene (``val_fraction``).

Crops are Bayer-safe (even offsets); flips are done on a window two pixels
larger, flipped, then cut at offset 1 so the flipped mosaic is again RGGB.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from restorekit.errors import DataError
from restorekit.raw.config import RawDataConfig

_ISO_RE = re.compile(r"^(?P<scene>.*?)[_\-]ISO(?P<iso>\d+)(?:[_\-.].*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class RawPair:
    """A noisy frame and its ground truth: raw files, or the packed proxy's JPEGs (``packed`` = True)."""

    name: str
    scene: str
    iso: int
    noisy: Path
    gt: Path
    mosaic: Path | None = None
    packed: bool = False
    split: str = ""
    cc: float | None = None
    #: the seed layout's 2x3 warp matrix (m00, m01, m02, m10, m11, m12): ground truth -> noisy frame
    warp: tuple[float, ...] | None = None
    #: a pair of the seed's JPEG dataset (``read_seed_index``)
    seed: bool = False


# --------------------------------------------------------------------------------------- discovery
def iso_from_name(name: str) -> int | None:
    """The ISO written in a RawNIND-style file name (``..._ISO3200_...``), or None."""
    m = _ISO_RE.match(Path(name).stem)
    return int(m.group("iso")) if m else None


def _raw_files(folder: Path, recursive: bool) -> list[Path]:
    from restorekit.raw.io import RAW_EXTENSIONS

    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in RAW_EXTENSIONS)


def _iso_of(path: Path) -> int:
    iso = iso_from_name(path.name)
    if iso is None:
        from restorekit.raw.io import read_iso

        meta = read_iso(path)
        if meta is None:
            raise DataError(f"cannot tell the ISO of '{path}': not in the file name (_ISO<n>_) nor in its metadata")
        iso = int(round(meta))
    return iso


def discover_raw_pairs(root: str | Path, layout: str = "auto") -> list[RawPair]:
    """Noisy/ground-truth pairs of a raw folder (see the module docstring), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"raw data folder '{root}' does not exist")
    gt_dirs = sorted(p for p in root.rglob("gt") if p.is_dir())
    if root.name == "gt":
        gt_dirs = [root]
    if layout == "gt_folder" or (layout == "auto" and gt_dirs):
        if not gt_dirs:
            raise DataError(f"layout 'gt_folder': no 'gt/' folder under '{root}'")
        return _pairs_gt_folder(root, gt_dirs)
    return _pairs_flat(root)


def _pairs_gt_folder(root: Path, gt_dirs: list[Path]) -> list[RawPair]:
    pairs = []
    for gdir in gt_dirs:
        scene_dir = gdir.parent
        gts = _raw_files(gdir, recursive=False)
        if not gts:
            raise DataError(f"ground-truth folder '{gdir}' has no raw file")
        gt = min(gts, key=lambda p: (_iso_of(p), p.name))
        scene = str(scene_dir.relative_to(root)) if scene_dir != root else root.name
        for p in _raw_files(scene_dir, recursive=False):
            name = f"{scene}__{p.stem}".replace("/", "__") if scene_dir != root else p.stem
            pairs.append(RawPair(name=name, scene=scene, iso=_iso_of(p), noisy=p, gt=gt))
    return sorted(pairs, key=lambda r: r.name)


def _pairs_flat(root: Path) -> list[RawPair]:
    scenes: dict[str, list[tuple[int, Path]]] = {}
    unnamed = []
    for p in _raw_files(root, recursive=True):
        m = _ISO_RE.match(p.stem)
        if not m:
            unnamed.append(p.name)
            continue
        rel_dir = p.parent.relative_to(root)
        scene = str(rel_dir / m.group("scene")) if str(rel_dir) != "." else m.group("scene")
        scenes.setdefault(scene, []).append((int(m.group("iso")), p))
    if not scenes:
        extra = f" ({len(unnamed)} raw files without _ISO<n>_ in their name)" if unnamed else ""
        raise DataError(f"no raw scenes found in '{root}'{extra}: expected names like scene_ISO100_x.dng or scene/gt/ folders")
    pairs = []
    for scene, frames in sorted(scenes.items()):
        frames.sort(key=lambda t: (t[0], t[1].name))
        gt_iso, gt = frames[0]
        for iso, p in frames[1:]:
            if iso == gt_iso:
                continue  # another ground-truth-ISO frame, not a noisy one
            pairs.append(RawPair(name=p.stem, scene=scene, iso=iso, noisy=p, gt=gt))
    return pairs


def is_packed(root: str | Path) -> bool:
    """True when ``root`` is a packed proxy written by :func:`restorekit.raw.pack.pack_raw_dataset`."""
    return (Path(root) / "pack.json").is_file() and (Path(root) / "metadata.csv").is_file()


def read_packed_index(root: str | Path) -> tuple[list[RawPair], dict[str, Any]]:
    """The pairs listed in a packed proxy's ``metadata.csv`` and its ``pack.json``."""
    root = Path(root)
    try:
        info = json.loads((root / "pack.json").read_text(encoding="utf-8"))
        with open(root / "metadata.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, ValueError) as exc:
        raise DataError(f"packed raw dataset '{root}' is unreadable ({exc})") from exc
    pairs = []
    for i, row in enumerate(rows):
        try:
            name = row["name"]
            cc = float(row["cc"]) if row.get("cc") not in (None, "", "nan") else None
            pairs.append(
                RawPair(
                    name=name, scene=row.get("scene", name), iso=int(float(row["iso"])),
                    noisy=root / "noisy" / f"{name}.jpg", gt=root / "gt" / f"{name}.jpg",
                    mosaic=root / "mosaic" / f"{name}.jpg", packed=True, split=row.get("split", ""), cc=cc,
                )
            )
        except (KeyError, ValueError) as exc:
            raise DataError(f"'{root / 'metadata.csv'}' row {i + 2}: bad or missing column ({exc})") from exc
    return pairs, info


SEED_WARP_COLUMNS = ("m00", "m01", "m02", "m10", "m11", "m12")


def is_seed_layout(root: str | Path, csv_name: str = "align_data.csv") -> bool:
    """True when ``root`` holds the seed's alignment CSV (``csv_name``) with its ``noisy_image`` column."""
    path = Path(root) / csv_name
    if not path.is_file():
        return False
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError):
        return False
    return "noisy_image" in header and "gt_image" in header


def read_seed_index(root: str | Path, csv_name: str = "align_data.csv") -> list[RawPair]:
    """The pairs of the Raw Restorer seed's JPEG dataset (see the module docstring), in CSV order.

    Raises DataError naming the CSV and row for a missing column or a bad value, and
    naming the file when a listed JPEG is missing.
    """
    root = Path(root)
    path = root / csv_name
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"seed raw dataset CSV '{path}' is unreadable ({exc})") from exc
    pairs = []
    for i, row in enumerate(rows):
        try:
            noisy, gt = row["noisy_image"], row["gt_image"]
            iso_v = float(row["iso"]) if row.get("iso") not in (None, "") else None
            iso = int(round(iso_v)) if iso_v else (iso_from_name(noisy) or 0)
            if iso <= 0:
                raise ValueError(f"no ISO for '{noisy}' (column iso and the file name)")
            cc = float(row["cc"]) if row.get("cc") not in (None, "", "nan") else None
            warp = tuple(float(row[c]) for c in SEED_WARP_COLUMNS) if all(row.get(c) not in (None, "") for c in SEED_WARP_COLUMNS) else None
        except (KeyError, ValueError) as exc:
            raise DataError(f"'{path}' row {i + 2}: bad or missing column ({exc})") from exc
        m = _ISO_RE.match(noisy)
        scene = m.group("scene") if m else Path(gt).stem
        pair = RawPair(name=noisy, scene=scene, iso=iso, noisy=root / f"{noisy}.jpg", gt=root / f"{gt}.jpg",
                       mosaic=root / f"{noisy}_bayer.jpg", cc=cc, warp=warp, seed=True)
        for f in (pair.mosaic, pair.gt):
            if not f.is_file():  # type: ignore[union-attr]
                raise DataError(f"'{path}' row {i + 2}: '{f}' does not exist")
        pairs.append(pair)
    if not pairs:
        raise DataError(f"seed raw dataset CSV '{path}' lists no pairs")
    return pairs


def warp_to_noisy(gt: np.ndarray, warp: Sequence[float]) -> np.ndarray:
    """Warp an ``(H, W, 3)`` ground truth onto its noisy frame with a 2x3 matrix (the seed's ``apply_alignment``)."""
    import cv2

    m = np.asarray(warp, np.float32).reshape(2, 3)
    h, w = gt.shape[:2]
    return cv2.warpAffine(gt.astype(np.float32), m, (w, h), flags=cv2.INTER_LANCZOS4 + cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def _load_seed_pair(pair: RawPair, demosaic: str, match_exposure: bool, gamma: float) -> dict[str, Any]:
    from restorekit.io import read_image
    from restorekit.raw.bayer import demosaic as demosaic_fn
    from restorekit.raw.bayer import gamma_decode

    assert pair.mosaic is not None
    mosaic = read_image(pair.mosaic)[..., 0]
    gt = read_image(pair.gt)
    h, w = mosaic.shape
    if gt.shape[:2] != (h, w) or h % 2 or w % 2:
        raise DataError(f"seed sample '{pair.name}': mosaic '{pair.mosaic}' is {w}x{h}, ground truth '{pair.gt}' is "
                        f"{gt.shape[1]}x{gt.shape[0]}; they must be equal and even")
    if pair.warp is not None:
        gt = warp_to_noisy(gt, pair.warp)
    mosaic = gamma_decode(mosaic, gamma)
    target = gamma_decode(gt, gamma)
    residual = np.clip(demosaic_fn(mosaic, demosaic), 0, 1).astype(np.float32)
    if match_exposure:
        mt = float(target.mean())
        if mt > 1e-8:
            target = np.clip(target * (float(residual.mean()) / mt), 0, 1).astype(np.float32)
    return {"mosaic": mosaic, "residual": residual, "target": target, "cc": pair.cc}


# ------------------------------------------------------------------------------------------ loading
class MisalignedPairError(DataError):
    """A raw pair whose alignment was rejected (correlation below ``data.min_cc``) or failed."""


def load_raw_pair(pair: RawPair, *, demosaic: str = "bilinear", match_exposure: bool = True, align: bool = False,
                  min_cc: float | None = None, gamma: float = 2.2, color_space: str = "camera") -> dict[str, Any]:
    """Decode a pair into full-resolution arrays.

    Returns ``{"mosaic": (H, W), "residual": (H, W, 3), "target": (H, W, 3), "cc": float|None}``,
    (with ``align`` and ``min_cc`` set, a pair whose alignment is rejected or fails raises
    :class:`MisalignedPairError`),
    all float32 linear in [0, 1]: camera RGB, or ``color_space`` "lin_rec2020" (raw files are
    converted per 2x2 quad before demosaicing). Packed pairs are decoded from their
    gamma-encoded JPEGs; the seed's JPEG pairs (already lin_rec2020) as its ``SmallRawDataset``.
    """
    from restorekit.raw.bayer import demosaic as demosaic_fn
    from restorekit.raw.bayer import gamma_decode

    cc = pair.cc
    if pair.seed:
        return _load_seed_pair(pair, demosaic, match_exposure, gamma)
    if pair.packed:
        from restorekit.io import read_image

        assert pair.mosaic is not None
        mosaic = gamma_decode(read_image(pair.mosaic)[..., 0], gamma)
        residual = gamma_decode(read_image(pair.noisy), gamma)
        target = gamma_decode(read_image(pair.gt), gamma)
        h, w = mosaic.shape
        if residual.shape[:2] != (h, w) or target.shape[:2] != (h, w) or h % 2 or w % 2:
            raise DataError(f"packed sample '{pair.name}': mosaic {w}x{h}, noisy {residual.shape[1]}x{residual.shape[0]}, "
                            f"gt {target.shape[1]}x{target.shape[0]} must be equal and even")
        return {"mosaic": mosaic, "residual": residual, "target": target, "cc": cc}
    from restorekit.raw.io import read_raw

    noisy = read_raw(pair.noisy)
    gt = read_raw(pair.gt)
    if noisy.shape != gt.shape:
        raise DataError(f"raw pair '{pair.name}': noisy '{pair.noisy}' is {noisy.shape[1]}x{noisy.shape[0]} but "
                        f"ground truth '{pair.gt}' is {gt.shape[1]}x{gt.shape[0]}")
    mosaic = noisy.mosaic()
    gt_mosaic = gt.mosaic()
    if color_space != "camera":
        from restorekit.raw.bayer import camera_to_space_matrix, mosaic_to_space, xyz_to_cam_matrix

        t = camera_to_space_matrix(xyz_to_cam_matrix(noisy), color_space)
        mosaic, gt_mosaic = mosaic_to_space(mosaic, t), mosaic_to_space(gt_mosaic, t)
    residual = np.clip(demosaic_fn(mosaic, demosaic), 0, 1)
    target = np.clip(demosaic_fn(gt_mosaic, demosaic), 0, 1)
    if align:
        from restorekit.raw.align import align_pair
        from restorekit.raw.bayer import gamma_encode

        res = align_pair(gamma_encode(residual, gamma), gamma_encode(target, gamma), min_cc=min_cc, match_exposure=False)
        cc = res.cc
        if res.status == "ok" and res.aligned is not None:
            target = gamma_decode(res.aligned, gamma)
        elif min_cc is not None:
            # an unaligned ground truth would teach the model to blur: with a threshold set, the pair is refused
            raise MisalignedPairError(f"raw pair '{pair.name}' ('{pair.noisy}'): alignment {res.status}: {res.reason}")
    if match_exposure:
        mt = float(target.mean())
        if mt > 1e-8:
            target = np.clip(target * (float(residual.mean()) / mt), 0, 1).astype(np.float32)
    return {"mosaic": mosaic, "residual": residual, "target": target, "cc": cc}


def bayer_safe_window(arrays: Sequence[np.ndarray], size: int | None, rng: np.random.Generator | None,
                      hflip: bool = False, vflip: bool = False) -> list[np.ndarray]:
    """Crop (random when ``rng`` else centre; ``None`` = full) and flip aligned ``(H, W[, C])`` arrays
    so that an RGGB mosaic among them stays RGGB.

    Windows start on even offsets; a flip takes a window 2 px larger along that
    axis, reverses it and keeps rows/columns ``1 .. size`` (whose first one is
    even in the original grid, i.e. an R/G1 row or R/G2 column).
    """
    from restorekit.utils.crop import apply_crop, plan_center_crop, plan_random_crop

    h, w = arrays[0].shape[:2]
    ph, pw = (h, w) if size is None else (size, size)
    wh, ww = ph + (2 if vflip else 0), pw + (2 if hflip else 0)
    if rng is None:
        crop = plan_center_crop(h, w, (wh, ww), even=True)
    else:
        crop = plan_random_crop(h, w, (wh, ww), rng, even=True)
    out = []
    for a in arrays:
        x = apply_crop(a, crop, "reflect")
        if hflip:
            x = x[:, ::-1][:, 1 : 1 + pw]
        if vflip:
            x = x[::-1][1 : 1 + ph]
        out.append(np.ascontiguousarray(x))
    return out


class RawDenoiseDataset:
    """Map-style dataset of raw denoising samples (see the module docstring).

    ``train``: random Bayer-safe crops of ``patch_size`` (+ flips); otherwise
    centre crops of ``patch_size`` (None = full frames). ``set_epoch`` reseeds the
    crops; ``patch_size`` may be changed between epochs (progressive training).
    """

    def __init__(self, pairs: list[RawPair], cfg: RawDataConfig, *, train: bool, seed: int = 0,
                 patch_size: int | None = None) -> None:
        if not pairs:
            raise DataError(f"raw dataset '{cfg.root}': no {'training' if train else 'validation'} pairs")
        self.pairs = pairs
        self.cfg = cfg
        self.train = train
        self.seed = int(seed)
        self.epoch = 0
        self.patch_size = patch_size
        self.repeat = cfg.repeat if train else 1
        self._cache: dict[int, dict[str, Any]] = {}
        self._refused: set[int] = set()

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def isos(self) -> list[int]:
        return sorted({p.iso for p in self.pairs})

    def _load(self, i: int) -> dict[str, Any]:
        if i in self._cache:
            return self._cache[i]
        cfg = self.cfg
        data = load_raw_pair(self.pairs[i], demosaic=cfg.demosaic, match_exposure=cfg.match_exposure and not self.pairs[i].packed,
                             align=cfg.align, min_cc=cfg.min_cc, color_space=cfg.color_space)
        if cfg.cache:
            self._cache[i] = data
        return data

    def _load_usable(self, i: int) -> tuple[int, dict[str, Any]]:
        """Pair ``i``, or the next one whose alignment passed ``data.min_cc`` (refused pairs are
        remembered and warned about once); :class:`DataError` when none is left."""
        n = len(self.pairs)
        for k in range(n):
            j = (i + k) % n
            if j in self._refused:
                continue
            try:
                return j, self._load(j)
            except MisalignedPairError as exc:
                self._refused.add(j)
                warnings.warn(f"skipping {exc}", stacklevel=2)
        raise DataError(f"raw dataset '{self.cfg.root}': every pair failed alignment at min_cc={self.cfg.min_cc}")

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        from restorekit.raw.bayer import pack_rggb
        from restorekit.utils.seed import sample_rng

        if not 0 <= index < len(self):
            raise IndexError(index)
        i, data = self._load_usable(index % len(self.pairs))
        pair = self.pairs[i]
        arrays = [data["mosaic"], data["residual"], data["target"]]
        size = self.patch_size
        if size is not None:
            size = int(size) // 2 * 2
        if self.train:
            rng = sample_rng(self.seed, self.epoch, index)
            hf = bool(rng.integers(0, 2)) if self.cfg.flips else False
            vf = bool(rng.integers(0, 2)) if self.cfg.flips else False
            mosaic, residual, target = bayer_safe_window(arrays, size, rng, hf, vf)
        else:
            mosaic, residual, target = bayer_safe_window(arrays, size, None)
        rggb = torch.from_numpy(pack_rggb(np.ascontiguousarray(mosaic, np.float32)))
        res_t = torch.from_numpy(np.ascontiguousarray(residual.transpose(2, 0, 1), np.float32))
        tgt_t = torch.from_numpy(np.ascontiguousarray(target.transpose(2, 0, 1), np.float32))
        cond = torch.tensor([pair.iso / self.cfg.iso_norm], dtype=torch.float32)
        return {"rggb": rggb, "cond": cond, "residual": res_t, "input": res_t, "target": tgt_t,
                "name": pair.name, "iso": int(pair.iso)}


# ------------------------------------------------------------------------------------------ building
def _select(pairs: list[RawPair], cfg: RawDataConfig) -> list[RawPair]:
    if cfg.isos is not None:
        keep = set(cfg.isos)
        pairs = [p for p in pairs if p.iso in keep]
    if cfg.min_cc is not None:
        pairs = [p for p in pairs if p.cc is None or p.cc >= cfg.min_cc]
    if cfg.limit is not None:
        pairs = pairs[: cfg.limit]
    return pairs


def _source_pairs(root: str, cfg: RawDataConfig) -> tuple[list[RawPair], bool]:
    fmt = cfg.format
    if fmt == "seed" or (fmt == "auto" and is_seed_layout(root, cfg.csv)):
        if not (Path(root) / cfg.csv).is_file():
            raise DataError(f"'{root}' is not the seed's raw dataset (no '{cfg.csv}'; set data.csv)")
        return read_seed_index(root, cfg.csv), False
    if fmt == "packed" or (fmt == "auto" and is_packed(root)):
        if not is_packed(root):
            raise DataError(f"'{root}' is not a packed raw dataset (no pack.json / metadata.csv)")
        return read_packed_index(root)[0], True
    return discover_raw_pairs(root, cfg.layout), False


def split_scenes(pairs: list[RawPair], val_fraction: float, seed: int) -> tuple[list[RawPair], list[RawPair]]:
    """Seeded split by scene (a scene's frames stay together); by frame when there is a single scene."""
    scenes = sorted({p.scene for p in pairs})
    rng = np.random.default_rng(int(seed))
    if val_fraction <= 0:
        return pairs, []
    if len(scenes) >= 2:
        order = list(rng.permutation(len(scenes)))
        n_val = min(len(scenes) - 1, max(1, int(round(val_fraction * len(scenes)))))
        val_scenes = {scenes[k] for k in order[:n_val]}
        return [p for p in pairs if p.scene not in val_scenes], [p for p in pairs if p.scene in val_scenes]
    order = list(rng.permutation(len(pairs)))
    n_val = min(len(pairs) - 1, max(1, int(round(val_fraction * len(pairs)))))
    val_idx = set(order[:n_val])
    return [p for k, p in enumerate(pairs) if k not in val_idx], [p for k, p in enumerate(pairs) if k in val_idx]


def build_raw_datasets(cfg: RawDataConfig, *, seed: int, run_dir: Path | None = None) -> tuple[RawDenoiseDataset, RawDenoiseDataset]:
    """Training and validation datasets for ``cfg`` (``data.kind: raw``).

    Validation comes from ``val_root`` when given, else from the packed proxy's
    own split column, else from a seeded split of ``root`` by scene. When
    ``run_dir`` is given, ``raw_split.json`` there records the names of both sets.
    """
    pairs, packed = _source_pairs(cfg.root, cfg)
    if cfg.val_root:
        train_pairs = _select(pairs, cfg)
        val_pairs = _select(_source_pairs(cfg.val_root, cfg)[0], cfg)
    elif packed and any(p.split for p in pairs):
        sel = _select(pairs, cfg)
        train_pairs = [p for p in sel if p.split != "val"]
        val_pairs = [p for p in sel if p.split == "val"]
    else:
        train_pairs, val_pairs = split_scenes(_select(pairs, cfg), cfg.val_fraction, seed)
    if not train_pairs:
        raise DataError(f"raw dataset '{cfg.root}': no training pairs left (isos={cfg.isos}, min_cc={cfg.min_cc}, limit={cfg.limit})")
    if not val_pairs:
        raise DataError(f"raw dataset '{cfg.root}': no validation pairs (give val_root or a val_fraction > 0 with 2+ pairs)")
    train = RawDenoiseDataset(train_pairs, cfg, train=True, seed=seed, patch_size=cfg.patch_size)
    val = RawDenoiseDataset(val_pairs, cfg, train=False, seed=seed, patch_size=cfg.val_patch)
    if run_dir is not None:
        from restorekit.utils.atomic import atomic_write_json

        atomic_write_json(Path(run_dir) / "raw_split.json", {
            "root": cfg.root, "packed": packed,
            "train": [{"name": p.name, "iso": p.iso, "scene": p.scene} for p in train_pairs],
            "val": [{"name": p.name, "iso": p.iso, "scene": p.scene} for p in val_pairs],
        })
    return train, val


def per_iso_summary(rows: Sequence[dict[str, Any]], keys: Sequence[str] = ("psnr_in", "psnr_out")) -> dict[int, dict[str, float]]:
    """Group per-sample metric rows (each with an ``iso`` key) into ``{iso: {key: mean, "n": count}}``."""
    out: dict[int, dict[str, Any]] = {}
    for iso in sorted({int(r["iso"]) for r in rows}):
        sel = [r for r in rows if int(r["iso"]) == iso]
        out[iso] = {k: float(np.mean([float(r[k]) for r in sel])) for k in keys if all(k in r for r in sel)}
        out[iso]["n"] = len(sel)
    return out
