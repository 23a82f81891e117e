"""`restorekit restore`: restore images (files, folders, globs) with a trained or exported model, tiled.

Examples::

    restorekit restore --model runs/x/model.safetensors photos/ --out restored/
    restorekit restore --model model.onnx "scans/*.tif" --out out/ --suffix _restored --format png
    restorekit restore --model raw.safetensors shots/*.dng --out out/ --iso auto
    restorekit restore --model m.safetensors photos/ --out out/ --shard $SLURM_ARRAY_TASK_ID/8 --manifest out/done.jsonl
    restorekit restore --model m.safetensors photos/ --out out/ --engine ray --address auto

A thin adapter of :class:`~restorekit.inference.restorer.Restorer`: the options
become one :class:`~restorekit.inference.options.RestoreOptions` (validated
before anything is read), inputs are discovered, planned and sharded by
:mod:`restorekit.inference.batch`, and raw files go to raw models (by the model's
``caps.inputs``). Each output keeps its input's name (plus ``--suffix``) and format
(or ``--format``; GIF/AVIF inputs give PNG); 16-bit inputs give 16-bit PNG/TIFF.
Unreadable or skipped files are reported on one line each; the exit status is 1
when any file failed. Outputs are written atomically, never outside ``--out`` and
never over an input; existing ones are skipped unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys

from restorekit.inference.batch import FORMATS


def _iso_arg(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--iso must be 'auto' or a whole number, got {text!r}") from exc
    if v <= 0:
        raise argparse.ArgumentTypeError(f"--iso must be > 0, got {v}")
    return v


def _quality_arg(text: str) -> int:
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--quality must be a whole number from 1 to 100, got {text!r}") from exc
    if not 1 <= v <= 100:
        raise argparse.ArgumentTypeError(f"--quality must be from 1 to 100, got {v}")
    return v


def _positive_int(flag: str):  # noqa: ANN202
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number >= 1, got {text!r}") from exc
        if v < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be >= 1, got {v}")
        return v

    return parse


def _positive_float(flag: str):  # noqa: ANN202
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{flag} must be a number > 0, got {text!r}") from exc
        if not v > 0 or v != v or v == float("inf"):
            raise argparse.ArgumentTypeError(f"{flag} must be a finite number > 0, got {text}")
        return v

    return parse


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
    p.add_argument("--out", "-o", required=True, help="output folder (must not hold the inputs under the same names)")
    p.add_argument("--suffix", default="", help="appended to each output file stem (default: none; no '/' or '..')")
    p.add_argument("--format", default="keep", choices=sorted(FORMATS), help="output format (default: keep the input's)")
    p.add_argument("--quality", type=_quality_arg, default=95, help="JPEG/WebP quality, 1-100 (default 95)")
    p.add_argument("--tile", default="auto", help="tile size in pixels, 0 = whole image, auto = from a memory budget")
    p.add_argument("--overlap", default="32", help="tile overlap: pixels or a fraction of the tile (default 32)")
    p.add_argument("--blend", default="linear", help="tile blending window: linear or cosine (default linear)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--batch", default="4", help="tiles per forward pass (default 4)")
    p.add_argument("--backend", default="auto", help="auto, eager, compile, onnxruntime, torchscript: runtime for module "
                   "models (auto: fastest available; ONNX Runtime on CPU)")
    p.add_argument("--precision", default="auto", help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 (GPU), bf16 (GPU or CPU; fast on CPUs with AMX)")
    p.add_argument("--tlc", default="auto", help="test-time local converter: auto, on, off")
    p.add_argument("--memory-budget-mb", default=None, help="memory budget for --tile auto (default: from the device)")
    p.add_argument("--ensemble", action="store_true", help="x8 self-ensemble (flips/rotations): slower, slightly better")
    p.add_argument("--overwrite", action="store_true", help="recompute outputs that already exist")
    p.add_argument("--recursive", "-r", action="store_true", help="descend into sub-folders (output keeps the relative path)")
    p.add_argument("--iso", type=_iso_arg, default="auto", help="raw files: ISO for the noise condition (auto = from EXIF)")
    p.add_argument("--demosaic", choices=["bilinear", "malvar"], default="bilinear",
                   help="raw files: demosaic of the noisy residual (malvar = the Raw Restorer seed's; default bilinear)")
    p.add_argument("--color-space", "--colour-space", dest="color_space", choices=["camera", "lin_rec2020"],
                   default="camera", help="raw files: the model's colour space (lin_rec2020 = the Raw Restorer seed's; "
                   "default camera-linear)")
    p.add_argument("--strength", default="1.0", help="blend of the result with the input, 0-1 (1.0 = model output)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="process shard K of N (K from 0): a deterministic, disjoint 1/N of the inputs by path order")
    p.add_argument("--manifest", default=None, metavar="FILE.jsonl",
                   help="append one JSON line per finished image (input, output, seconds, status, error)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (this process) or ray (Ray Data: Restorer actors on a Ray cluster; pip install 'restorekit[ray]')")
    p.add_argument("--address", default=None, help="--engine ray: cluster address (auto, ray://host:10001); default: a local Ray")
    p.add_argument("--workers", type=_positive_int("--workers"), default=None,
                   help="--engine ray: Restorer actors (default: one per GPU of the cluster, else 1)")
    p.add_argument("--cpus-per-worker", type=_positive_float("--cpus-per-worker"), default=1.0,
                   help="--engine ray: CPUs reserved by each actor (default 1)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def build_options(args: argparse.Namespace):  # noqa: ANN201
    """The one :class:`RestoreOptions` of this run (ConfigError naming the flag on a bad value)."""
    from restorekit.inference.options import RestoreOptions

    return RestoreOptions.parse(tile=args.tile, overlap=args.overlap, blend=args.blend, batch=args.batch,
                                ensemble=args.ensemble, device=args.device, backend=args.backend,
                                precision=args.precision, tlc=args.tlc, memory_budget_mb=args.memory_budget_mb,
                                strength=args.strength)


def _raw_restore(args: argparse.Namespace | None = None):  # noqa: ANN202
    """``restorekit.raw.restore.restore_raw_file`` with this run's ``--demosaic`` / ``--color-space``
    (a picklable partial); reading a raw file without the ``raw`` extra raises a clear error there."""
    import functools

    from restorekit.raw.restore import restore_raw_file
    if args is None:
        return restore_raw_file
    return functools.partial(restore_raw_file, demosaic=getattr(args, "demosaic", "bilinear"),
                             color_space=getattr(args, "color_space", "camera"))


def run(args: argparse.Namespace) -> int:
    import logging

    from restorekit.inference.batch import (
        Manifest,
        WriteSettings,
        check_out_dir,
        check_suffix,
        discover_inputs,
        open_restorer,
        parse_shard,
        plan_jobs,
        restore_job,
        select_shard,
    )

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    inf_log = logging.getLogger("restorekit.inference")
    inf_log.setLevel(logging.INFO if not args.quiet else logging.WARNING)
    inf_log.addFilter(_OnceFilter())  # TLC / runtime decisions are the same for every image: say them once
    # every setting is validated before any file is read or any model loaded
    options = build_options(args)
    check_suffix(args.suffix)
    shard = parse_shard(args.shard)
    if args.engine == "local" and (args.address or args.workers):
        print("warning: --address/--workers apply to --engine ray only", file=sys.stderr)
    items, skipped = discover_inputs(args.inputs, args.recursive)
    out_dir = check_out_dir(args.out)
    manifest = Manifest(args.manifest)
    jobs, clashes = plan_jobs(items, out_dir, args.suffix, args.format)
    skipped += clashes
    failed = 0
    for s in skipped:
        print(f"{'error' if s.failed else 'skipped'}: {s.path}: {s.reason}", file=sys.stderr)
        failed += s.failed
    if not jobs:
        where = ", ".join(args.inputs)
        left = f" ({len(skipped)} file(s) left out, listed above)" if skipped else ""
        print(f"error: no input images found in {where}{left}", file=sys.stderr)
        return 1
    mine = select_shard(jobs, shard)
    if shard is not None:
        print(f"restorekit restore: shard {shard[0]}/{shard[1]}: {len(mine)} of {len(jobs)} image(s)", file=sys.stderr)
    settings = WriteSettings(quality=args.quality, overwrite=args.overwrite, iso=args.iso)
    if args.engine == "ray":
        from restorekit.inference.ray_engine import run_ray

        results = run_ray(mine, args.model, options, settings, manifest=manifest, preset=args.preset,
                          address=args.address, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                          raw_restore=_raw_restore(args), report=_report, quiet=args.quiet)
    else:
        restorer = open_restorer(args.model, options, preset=args.preset)
        print(f"restorekit restore: {restorer.describe()}", file=sys.stderr)
        results = []
        from tqdm.auto import tqdm

        raw_fn = _raw_restore(args)
        bar = tqdm(mine, unit="img", disable=args.quiet or None, file=sys.stderr)
        for job in bar:
            bar.set_postfix_str(job.item.path.name[-30:], refresh=False)
            res = restore_job(restorer, job, settings, raw_fn)
            manifest.record(res)
            _report(res, bar.write)
            results.append(res)
        bar.close()
    done = sum(r.status == "ok" for r in results)
    existing = sum(r.status == "skipped" for r in results)
    failed += sum(r.status == "failed" for r in results)
    print(f"restored {done}, skipped {existing} existing (use --overwrite to redo), failed {failed} -> {out_dir}",
          file=sys.stderr)
    return 1 if failed else 0


def _report(res, write=None) -> None:  # noqa: ANN001
    """Print a job's error or notes (one line each) to stderr."""
    def say(line: str) -> None:
        if write is not None:
            write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    if res.status == "failed":
        say(f"error: {res.input}: {res.error}")
    for note in res.notes:
        say(f"note: {res.input}: {note}")


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
