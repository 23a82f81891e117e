"""``build_datasets(cfg, seed=, run_dir=)``: a ``data:`` config section -> (train, val) datasets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from restorekit.data.config import (
    CleanDataConfig,
    CommonDataConfig,
    GoProDataConfig,
    PairedDataConfig,
    PairsListDataConfig,
    SkimageDataConfig,
    parse_data_config,
)
from restorekit.data.dataset import RestoreDataset
from restorekit.data.dedup import KNOWN_GROUPS, dedup_split
from restorekit.data.sources import (
    Item,
    Problem,
    SkimageRef,
    check_items,
    clean_items,
    gopro_items,
    pairs_list_items,
    paired_items,
    skimage_items,
)
from restorekit.degrade.pipeline import build_degrader
from restorekit.errors import ConfigError, DataError
from restorekit.utils.atomic import atomic_write_json
from restorekit.utils.seed import sample_rng

log = logging.getLogger(__name__)

#: most decoded-image cache per process that ``cache_mb: auto`` picks
AUTO_CACHE_MAX_MB = 2048


def resolve_cache_mb(value: int | str, num_workers: int) -> int:
    """MB of decoded-image cache per process for ``data.cache_mb``.

    ``auto``: a quarter of the available RAM divided among the DataLoader processes
    (``num_workers``, or the main process), at most :data:`AUTO_CACHE_MAX_MB` each. Decoding
    is what a PNG/JPEG training loader spends its time on (``benchmarks/data_pipeline.py``);
    a dataset revisited every epoch is then decoded once per worker. An integer is used as given.
    """
    if value != "auto":
        return int(value)
    from restorekit.utils.system import available_ram

    share = available_ram() / 4 / 2**20 / max(1, int(num_workers))
    return int(max(0, min(AUTO_CACHE_MAX_MB, share)))


def discover(cfg: CommonDataConfig, *, val: bool = False) -> tuple[list[Item], list[Problem]] | None:
    """Items and problems of the training source (``val=False``) or the explicit validation source.

    Returns None when ``val`` is asked and the config names no validation source.
    """
    extra = cfg.extra or None
    if isinstance(cfg, GoProDataConfig):
        root = cfg.val_dir if val else cfg.root
        return None if root is None else gopro_items(root, cfg.blur_dir, cfg.sharp_dir, extra)
    if isinstance(cfg, PairedDataConfig):
        if val:
            if cfg.val_input_dir is None and cfg.val_target_dir is None:
                return None
            if cfg.val_input_dir is None or cfg.val_target_dir is None:
                raise ConfigError("data.val_input_dir and data.val_target_dir must be given together")
            return paired_items(cfg.val_input_dir, cfg.val_target_dir, None)
        return paired_items(cfg.input_dir, cfg.target_dir, extra)
    if isinstance(cfg, PairsListDataConfig):
        f = cfg.val_file if val else cfg.file
        return None if f is None else pairs_list_items(f)
    if isinstance(cfg, CleanDataConfig):
        d = cfg.val_dir if val else cfg.dir
        return None if d is None else clean_items(d, None if val else extra)
    if isinstance(cfg, SkimageDataConfig):
        names = cfg.val_names if val else cfg.names
        if names is None:
            return None
        if not val and cfg.val_names:
            names = [n for n in names if n not in set(cfg.val_names)]
        return skimage_items(names)
    raise ConfigError(f"data.kind '{getattr(cfg, 'kind', '?')}' is not an image dataset kind")


def split_items(items: list[Item], fraction: float, seed: int, by: str = "auto") -> tuple[list[Item], list[Item]]:
    """Seeded train/validation split; ``by`` "group" keeps groups (GoPro scenes) on one side.

    At least one item (or group) goes to validation when ``fraction`` > 0 and
    there are two or more; the order inside each side stays sorted.
    """
    if fraction <= 0 or len(items) < 2:
        return list(items), []
    use_groups = by == "group" or (by == "auto" and any(it.group for it in items))
    units = sorted({(it.group or it.name) if use_groups else it.name for it in items})
    if len(units) < 2:  # a single scene: fall back to files
        units = sorted(it.name for it in items)
        use_groups = False
    n_val = min(len(units) - 1, max(1, int(round(len(units) * fraction))))
    perm = sample_rng(seed, "split").permutation(len(units))
    val_units = {units[i] for i in perm[:n_val]}
    key = (lambda it: it.group or it.name) if use_groups else (lambda it: it.name)
    train = [it for it in items if key(it) not in val_units]
    val = [it for it in items if key(it) in val_units]
    return train, val


#: content de-duplication of a split loads every image once; above this many images it is skipped (logged)
DEDUP_MAX_ITEMS = 2000


def dedup_train_items(train: list[Item], val: list[Item]) -> tuple[list[Item], dict[str, Any]]:
    """Drop training items whose target duplicates a validation target by content (exact pixels,
    near-duplicate thumbnails, or a known alias / stereo group, see :mod:`restorekit.data.dedup`).

    Returns the kept items and a record for ``split.json``: ``{"checked", "dropped": [...]}``.
    """
    if not train or not val:
        return train, {"checked": True, "dropped": []}
    if len(train) + len(val) > DEDUP_MAX_ITEMS:
        log.warning("split: %d images, more than %d: content de-duplication skipped", len(train) + len(val), DEDUP_MAX_ITEMS)
        return train, {"checked": False, "reason": f"more than {DEDUP_MAX_ITEMS} images", "dropped": []}
    # the alias / stereo table names scikit-image's photos: it must not join user files called "cat"
    known = {it.name: KNOWN_GROUPS[it.name] for it in train + val if isinstance(it.target, SkimageRef) and it.name in KNOWN_GROUPS}
    kept, dropped = dedup_split(train, val, load=lambda it: it.target.load(), known=known)
    return kept, {"checked": True, "dropped": dropped}


def _source_desc(cfg: CommonDataConfig) -> dict[str, Any]:
    return {k: v for k, v in cfg.model_dump().items() if k in ("kind", "root", "input_dir", "target_dir", "file", "dir", "names", "blur_dir")}


def build_datasets(cfg: Any, *, seed: int, run_dir: str | Path | None = None) -> tuple[Any, Any]:
    """Build the (train, val) datasets of a ``data:`` config (a config object or a dict).

    Pairing problems are checked up front (see ``data.check`` / ``data.on_error``).
    Without a validation source, a seeded ``val_fraction`` split is made. Either way, training
    images that duplicate a validation image by content are dropped (:func:`dedup_train_items`). The
    split (train/val names, dropped duplicates) is written to ``run_dir/split.json`` when given
    (with no validation sample at all, validation falls back to the training images, full size),
    and skipped problems to ``run_dir/data_problems.json``.
    ``kind: raw`` is handed to :func:`restorekit.raw.dataset.build_raw_datasets`.
    """
    if isinstance(cfg, dict):
        cfg = parse_data_config(cfg)
    if getattr(cfg, "kind", None) == "raw":
        from restorekit.raw.dataset import build_raw_datasets

        return build_raw_datasets(cfg, seed=seed, run_dir=run_dir)
    if not isinstance(cfg, CommonDataConfig):
        raise ConfigError(f"data: unsupported config object {type(cfg).__name__}")

    found = discover(cfg)
    assert found is not None
    items, problems = found
    if cfg.limit is not None:
        items = items[: cfg.limit]
    src = f"data ({cfg.kind})"
    items, problems = check_items(items, problems, mode=cfg.check, on_error=cfg.on_error, source=src, max_pixels=cfg.max_pixels)

    val_found = discover(cfg, val=True)
    if val_found is not None:
        v_items, v_problems = val_found
        v_items, v_probs = check_items(v_items, v_problems, mode=cfg.check, on_error=cfg.on_error, source=f"{src} validation", max_pixels=cfg.max_pixels)
        problems = problems + v_probs
        train_items, val_items = items, v_items
        how = "explicit"
    else:
        train_items, val_items = split_items(items, cfg.val_fraction, seed, cfg.split_by)
        how = f"seeded split, val_fraction={cfg.val_fraction}"
    train_items, dedup = dedup_train_items(train_items, val_items)
    if not train_items:
        raise DataError(f"{src}: no training samples left after the split")

    degrader = build_degrader(cfg.degrade)
    aug = (cfg.augment.hflip, cfg.augment.vflip, cfg.augment.rot90)
    common = dict(
        seed=seed, degrader=degrader, bayer_safe=cfg.bayer_safe, on_error=cfg.on_error, max_pixels=cfg.max_pixels,
        cache_mb=resolve_cache_mb(cfg.cache_mb, cfg.num_workers), resize=cfg.resize, degrade_before_crop=cfg.degrade_before_crop,
    )
    train_ds = RestoreDataset(train_items, train=True, patch_size=cfg.patch_size, augment=aug, repeat=cfg.repeat, **common)
    val_from_train = not val_items
    if val_from_train:
        log.warning("%s: no validation samples (val_fraction=%s, %d samples): validating on the training images", src, cfg.val_fraction, len(items))
    val_ds = RestoreDataset(
        val_items or train_items, train=False, patch_size=cfg.val_patch, augment=(False, False, False), split="val", **common
    )

    if run_dir is not None:
        rd = Path(run_dir)
        atomic_write_json(
            rd / "split.json",
            {
                "seed": seed,
                "how": how,
                "source": _source_desc(cfg),
                "train": [it.name for it in train_items],
                "val": [it.name for it in val_items],
                "val_from_train": val_from_train,
                "dedup": dedup,
            },
        )
        if problems:
            atomic_write_json(rd / "data_problems.json", [p.as_dict() for p in problems])
    return train_ds, val_ds
