"""`restorekit data`: dataset tools: preview, pack, pages (and align, from the raw pipeline)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from restorekit.errors import ConfigError


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "data",
        help="dataset tools: preview, pack, pages, align, synth-raw",
        description="Dataset tools: preview, pack, pages, align (raw ground truth onto noisy shots), synth-raw (synthetic raw scenes).",
    )
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    pv = dsub.add_parser(
        "preview",
        help="render training samples (degraded/clean or input/target) with their degradation parameters",
        description="Render N samples exactly as training sees them (crop, augmentation, degradation) into one image.",
    )
    pv.add_argument("config", nargs="?", help="run config (YAML with a data: section) or a data-section YAML")
    pv.add_argument("--images", help="a folder of clean images replacing the config's data (degraded with the config's or --degrade recipe)")
    pv.add_argument("--degrade", help="degradation preset (e.g. manuscript, gopro-like, demo-deblur) overriding the config's")
    pv.add_argument("--n", type=int, default=8, help="number of samples (default 8)")
    pv.add_argument("--split", choices=["train", "val"], default="train")
    pv.add_argument("--epoch", type=int, default=0)
    pv.add_argument("--seed", type=int, help="seed (default: the config's seed, else 0)")
    pv.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a data key, e.g. patch_size=128")
    pv.add_argument("--out", default="preview.png", help="output image (default preview.png)")
    pv.set_defaults(func=run_preview)

    pk = dsub.add_parser(
        "pack",
        help="convert a dataset folder into a faster-to-read form (JPEG copies, LMDB, WebDataset shards)",
        description="Pack every image under SRC (relative paths kept) into DST; datasets read DST transparently.",
    )
    pk.add_argument("src", help="dataset folder (e.g. a GoPro root, or a folder holding input/ and target/)")
    pk.add_argument("--out", required=True, help="output folder")
    pk.add_argument("--format", choices=["jpeg", "png", "lmdb", "webdataset"], default="jpeg")
    pk.add_argument("--quality", type=int, help="JPEG quality 1-100 (jpeg: default 95; lmdb/webdataset: re-encode to JPEG when given)")
    pk.add_argument("--crop", type=int, help="keep the centre N x N of each image")
    pk.add_argument("--shard-mb", type=int, default=512, help="webdataset shard size in MB (default 512)")
    pk.add_argument("--workers", type=int, help="encoding threads (default min(4, CPUs))")
    pk.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    pk.add_argument("--raw", action="store_true", help="pack a raw (RawNIND-style) dataset with the raw pipeline")
    pk.set_defaults(func=run_pack)

    pg = dsub.add_parser(
        "pages",
        help="generate document pages (Latin/Devanagari text, system fonts) with ground-truth text and degraded copies",
        description="Render N clean pages from text with system fonts (clean/*.png + clean/*.txt) and degrade them "
                    "(degraded/*.png); see docs/documents.md.",
    )
    pg.add_argument("--out", required=True, help="output folder (clean/, degraded/, pages.json)")
    pg.add_argument("--n", type=int, default=8, help="number of pages (default 8)")
    pg.add_argument("--script", choices=["latin", "devanagari", "both"], default="both", help="text script (both alternates)")
    pg.add_argument("--size", type=int, nargs=2, default=[512, 384], metavar=("W", "H"), help="page size in pixels (default 512 384)")
    pg.add_argument("--font-size", type=int, nargs=2, default=[20, 28], metavar=("MIN", "MAX"), help="font size range in pixels")
    pg.add_argument("--fonts", default=None, help="comma list of font names or .ttf paths (default: per script, see docs)")
    pg.add_argument("--degrade", default="document",
                    help="document (default), blur-noise-yellow, none, or any degradation preset (e.g. manuscript)")
    pg.add_argument("--seed", type=int, default=0)
    pg.add_argument("--overwrite", action="store_true", help="replace pages already in --out")
    pg.set_defaults(func=run_pages)

    from restorekit.raw.cli import register_data_commands

    register_data_commands(dsub)

    def run_help(args: argparse.Namespace) -> int:
        p.print_help()
        return 1

    p.set_defaults(func=run_help)


def _load_data_section(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    from restorekit.config.base import apply_overrides, load_yaml

    data: dict[str, Any] = {}
    seed = 0
    if args.config:
        raw = load_yaml(args.config)
        if "data" in raw:
            data = dict(raw["data"] or {})
            seed = int(raw.get("seed", 0) or 0)
        elif "kind" in raw:
            data = dict(raw)
        else:
            raise ConfigError(f"config '{args.config}' has no data: section (and is not a data section itself: no 'kind')")
    elif not args.images:
        raise ConfigError("give a CONFIG file or --images DIR")
    if args.images:
        keep = {k: data[k] for k in ("patch_size", "degrade", "val_patch", "augment", "bayer_safe") if k in data}
        if not keep.get("degrade"):
            keep.pop("degrade", None)
        data = {"kind": "clean", "dir": args.images, "val_fraction": 0.0, **keep}
    if args.degrade:
        data["degrade"] = args.degrade
    data = apply_overrides(data, args.overrides)
    if args.seed is not None:
        seed = args.seed
    return data, seed


def run_preview(args: argparse.Namespace) -> int:
    from restorekit.data import build_datasets
    from restorekit.data.config import parse_data_config
    from restorekit.data.preview import preview_dataset
    from restorekit.errors import DataError

    if args.n < 1:
        raise ConfigError(f"--n must be at least 1 (samples to render), got {args.n}")
    data, seed = _load_data_section(args)
    cfg = parse_data_config(data, source=f"{args.config or '--images'} data")
    train, val = build_datasets(cfg, seed=seed)
    ds = train if args.split == "train" else val
    if ds is None:
        raise DataError("the validation split is empty (no validation source and val_fraction gave none)")
    out = preview_dataset(ds, args.out, n=args.n, epoch=args.epoch)
    print(f"wrote {out} ({min(args.n, len(ds))} {args.split} samples, seed {seed}, epoch {args.epoch})")
    return 0


def run_pages(args: argparse.Namespace) -> int:
    from restorekit.documents.pages import PageStyle, generate_pages

    fonts = None
    if args.fonts:
        names = [f.strip() for f in args.fonts.split(",") if f.strip()]
        scripts = ["latin", "devanagari"] if args.script == "both" else [args.script]
        fonts = {s: names for s in scripts}
    style = PageStyle(width=args.size[0], height=args.size[1], font_size=(args.font_size[0], args.font_size[1]))
    m = generate_pages(args.out, args.n, script=args.script, style=style, fonts=fonts, degrade=args.degrade,
                       seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {m['n']} pages ({args.script}, {style.width}x{style.height}) to {args.out}: clean/*.png + .txt"
          + (", degraded/*.png" if m["degrade"] is not None else "") + ", pages.json")
    return 0


def run_pack(args: argparse.Namespace) -> int:
    if args.raw:
        from restorekit.raw.pack import pack_raw_dataset

        kwargs: dict[str, Any] = {"crop": args.crop, "progress": sys.stderr.isatty()}
        if args.quality is not None:
            kwargs["quality"] = args.quality
        res = pack_raw_dataset(Path(args.src), Path(args.out), **kwargs)
        print(f"packed raw dataset {args.src} -> {args.out}" + (f": {res}" if res is not None else ""))
        return 0
    from restorekit.data.pack import pack_dataset

    last = [0]

    def progress(i: int, n: int) -> None:
        if sys.stderr.isatty() and (i == n or i - last[0] >= max(1, n // 50)):
            last[0] = i
            print(f"\rpacking {i}/{n}", end="" if i < n else "\n", file=sys.stderr, flush=True)

    m = pack_dataset(
        args.src,
        args.out,
        format=args.format,
        quality=args.quality,
        crop=args.crop,
        shard_mb=args.shard_mb,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=progress,
    )
    for rel, why in m.get("skipped", {}).items():
        print(f"skipped {rel}: {why}", file=sys.stderr)
    mb = m["bytes"] / 1e6
    print(f"packed {m['count']} images from {args.src} into {args.out} ({args.format}, {mb:.1f} MB, {m['seconds']} s)")
    return 0
