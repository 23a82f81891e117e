"""`restorekit restore`: restore images (files, folders, globs) with a trained or exported model, tiled.

Examples::

    restorekit restore --model runs/x/model.safetensors photos/ --out restored/
    restorekit restore --model model.onnx "scans/*.tif" --out out/ --suffix _restored --format png
    restorekit restore --model raw.safetensors shots/*.dng --out out/ --iso auto

Each output keeps its input's name (plus ``--suffix``) and format (or
``--format``); 16-bit inputs give 16-bit PNG/TIFF outputs. Unreadable files are
reported on one line each and skipped; the exit status is 1 when any file
failed. Outputs are written atomically and existing ones are skipped unless
``--overwrite``.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
RAW_EXTS = (".dng", ".nef", ".cr2", ".cr3", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw", ".nrw", ".raw", ".3fr", ".iiq", ".rwl", ".erf", ".kdc", ".mrw", ".x3f")
FORMATS = {"keep": None, "png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "tif": ".tif", "tiff": ".tiff", "webp": ".webp", "bmp": ".bmp"}


def _tile_arg(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--tile must be 'auto', 0 or a number of pixels, got {text!r}") from exc
    if v < 0:
        raise argparse.ArgumentTypeError(f"--tile must be >= 0, got {v}")
    return v


def _overlap_arg(text: str) -> int | float:
    try:
        v = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--overlap must be pixels (e.g. 32) or a fraction (e.g. 0.25), got {text!r}") from exc
    if v < 0:
        raise argparse.ArgumentTypeError(f"--overlap must be >= 0, got {text}")
    return v if 0 < v < 1 else int(v)


def _iso_arg(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--iso must be 'auto' or a number, got {text!r}") from exc


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "restore",
        help="restore images with a trained model (tiled)",
        description="Restore image files, folders and globs with a model package, checkpoint, exported .onnx/.pt "
        "file or (untrained) registry name. Outputs keep the input names.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--model", "-m", required=True, help="model package (.safetensors), checkpoint, exported .onnx / TorchScript "
                   "file, or a registry name (random weights, for testing)")
    p.add_argument("--preset", default=None, help="preset when --model is a registry name")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--suffix", default="", help="appended to each output file stem (default: none)")
    p.add_argument("--format", default="keep", choices=sorted(FORMATS), help="output format (default: keep the input's)")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (default 95)")
    p.add_argument("--tile", type=_tile_arg, default="auto", help="tile size in pixels, 0 = whole image, auto = from a memory budget")
    p.add_argument("--overlap", type=_overlap_arg, default=32, help="tile overlap: pixels or a fraction of the tile (default 32)")
    p.add_argument("--blend", choices=["linear", "cosine"], default="linear", help="tile blending window (default linear)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--batch", type=int, default=4, help="tiles per forward pass (default 4)")
    p.add_argument("--backend", default="auto", choices=["auto", "eager", "compile", "onnxruntime"],
                   help="PyTorch runtime for module models (auto: fastest available; ONNX Runtime on CPU)")
    p.add_argument("--ensemble", action="store_true", help="x8 self-ensemble (flips/rotations): slower, slightly better")
    p.add_argument("--overwrite", action="store_true", help="recompute outputs that already exist")
    p.add_argument("--recursive", "-r", action="store_true", help="descend into sub-folders (output keeps the relative path)")
    p.add_argument("--iso", type=_iso_arg, default="auto", help="raw files: ISO for the noise condition (auto = from EXIF)")
    p.add_argument("--strength", type=float, default=1.0, help="raw files: denoising strength (1.0 = model output)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def collect_inputs(items: list[str], recursive: bool = False) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files, folders and globs to ``(file, relative output path base)`` pairs, plus error lines.

    Folders contribute their image and raw files (sorted); ``relative`` keeps the
    sub-folder structure for ``--recursive``. Missing inputs become error lines.
    """
    exts = IMAGE_EXTS + RAW_EXTS
    found: list[tuple[Path, Path]] = []
    errors: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            files = sorted(f for f in it if f.is_file() and f.suffix.lower() in exts and not f.name.startswith("."))
            found.extend((f, f.relative_to(p)) for f in files)
        elif p.exists():
            found.append((p, Path(p.name)))
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                errors.append(f"{item}: no file matches this pattern")
            found.extend((m, Path(m.name)) for m in matches)
        else:
            errors.append(f"{item}: file does not exist")
    seen: set[Path] = set()
    unique = []
    for f, rel in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((f, rel))
    return unique, errors


def output_path(src: Path, rel: Path, out_dir: Path, suffix: str, fmt: str, is_raw: bool) -> Path:
    """Output path: ``out_dir / rel`` with ``suffix`` on the stem and the chosen format's extension."""
    ext = FORMATS.get(fmt)
    if ext is None:
        ext = ".tif" if is_raw else src.suffix.lower()
        if ext not in IMAGE_EXTS:
            ext = ".png"
    return out_dir / rel.parent / f"{rel.stem}{suffix}{ext}"


def _load(args: argparse.Namespace):  # noqa: ANN202
    """The model as an nn.Module, or a Runtime for exported files."""
    from restorekit.errors import ConfigError
    from restorekit.inference.runtime import exported_kind, make_runtime
    from restorekit.models.loading import load_model
    from restorekit.models.registry import create_model, list_models

    p = Path(args.model)
    if p.exists():
        if exported_kind(p):
            return make_runtime(p, args.device)
        return load_model(p)
    if args.model in list_models():
        print(f"warning: '{args.model}' is an architecture name: restoring with UNTRAINED random weights", file=sys.stderr)
        return create_model(args.model, preset=args.preset).eval()
    raise ConfigError(f"--model '{args.model}': no such file and not a registered architecture ({', '.join(list_models())})")


def run(args: argparse.Namespace) -> int:
    import logging

    import torch
    import torch.nn as nn

    from restorekit.errors import ConfigError, RestoreKitError
    from restorekit.inference import make_runtime, restore_image
    from restorekit.io import read_image_with_info, write_image

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    inf_log = logging.getLogger("restorekit.inference")
    inf_log.setLevel(logging.INFO if not args.quiet else logging.WARNING)
    inf_log.addFilter(_OnceFilter())  # TLC / runtime decisions are the same for every image: say them once
    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out '{out_dir}' exists and is not a folder")
    items, errors = collect_inputs(args.inputs, args.recursive)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if not items:
        print("error: no input images found", file=sys.stderr)
        return 1
    model = _load(args)
    is_module = isinstance(model, nn.Module)
    arch = getattr(model, "restorekit_arch", None) if is_module else model.info.arch
    device = args.device
    # say which runtime does the work (auto picks the fastest available on CPU)
    if is_module and arch != "nafnet_cond":
        rt = make_runtime(model, device, args.backend)
        print(f"restorekit restore: {arch or 'model'} via {rt.describe()}", file=sys.stderr)
        if not str(arch or "").startswith("nafnet"):
            model = rt  # reuse the runtime for every image (TLC models keep the module: TLC depends on the tile)
    elif not is_module:
        print(f"restorekit restore: {arch or 'exported model'} via {model.describe()}", file=sys.stderr)

    from tqdm.auto import tqdm

    failed = len(errors)
    done = skipped = 0
    planned: dict[Path, Path] = {}
    bar = tqdm(items, unit="img", disable=args.quiet or None, file=sys.stderr)
    for src, rel in bar:
        is_raw = src.suffix.lower() in RAW_EXTS
        dest = output_path(src, rel, out_dir, args.suffix, args.format, is_raw)
        if dest in planned:
            print(f"error: {src}: output {dest} would overwrite the output of {planned[dest]} (use --suffix or --format)",
                  file=sys.stderr)
            failed += 1
            continue
        planned[dest] = src
        if dest.exists() and not args.overwrite:
            skipped += 1
            continue
        bar.set_postfix_str(src.name[-30:], refresh=False)
        try:
            if is_raw:
                _restore_raw(model, src, dest, args)
            elif arch == "nafnet_cond":
                raise ConfigError("nafnet_cond restores raw files (.dng, ...), not RGB images")
            else:
                img, info = read_image_with_info(src)
                out = restore_image(model, img, tile=args.tile, overlap=args.overlap, blend=args.blend,
                                    device=None if args.device == "auto" else args.device, batch=args.batch,
                                    ensemble=args.ensemble, backend=args.backend)
                bits = 16 if info.bit_depth > 8 and dest.suffix.lower() in (".png", ".tif", ".tiff") else 8
                write_image(dest, out, bit_depth=bits, quality=args.quality)
            done += 1
        except RestoreKitError as exc:
            failed += 1
            bar.write(f"error: {src}: {getattr(exc, 'reason', None) or exc}", file=sys.stderr)
        except (OSError, ValueError, torch.OutOfMemoryError) as exc:  # unexpected I/O or decoding trouble: report, continue
            failed += 1
            bar.write(f"error: {src}: {type(exc).__name__}: {exc}", file=sys.stderr)
    bar.close()
    print(f"restored {done}, skipped {skipped} existing (use --overwrite to redo), failed {failed} -> {out_dir}", file=sys.stderr)
    return 1 if failed else 0


class _OnceFilter:
    """A logging filter that lets each distinct message through once."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def filter(self, record) -> bool:  # noqa: ANN001
        msg = record.getMessage()
        if msg in self.seen:
            return False
        self.seen.add(msg)
        return True


def _restore_raw(model, src: Path, dest: Path, args: argparse.Namespace) -> None:  # noqa: ANN001
    """Dispatch a raw file to the raw helper's ``restore_raw_file`` (imported lazily)."""
    from restorekit.errors import ConfigError

    try:
        from restorekit.raw.restore import restore_raw_file
    except ImportError as exc:
        raise ConfigError(f"raw files need restorekit.raw.restore, which is not available ({exc})") from exc
    restore_raw_file(model, src, dest, iso=args.iso, strength=args.strength, tile=args.tile, overlap=args.overlap,
                     device=None if args.device == "auto" else args.device)
