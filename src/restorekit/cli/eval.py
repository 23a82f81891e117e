"""`restorekit eval`: score restored images or a model against baselines.

Two modes:

* ``restorekit eval --pred DIR --target DIR [--input DIR] --report FILE``: score existing outputs
  (paired by file name without extension);
* ``restorekit eval --model M (--data PATH | --input DIR --target DIR) --report FILE [--baselines ...]``:
  run a model (tiled) and the classical baselines; PATH is a dataset folder (``input/target``,
  ``blur/sharp``, GoPro ``<scene>/blur,sharp`` ...) or a training/data config (its validation split).
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "eval",
        help="score restored images or a model against the input and classical baselines",
        description=(
            "Score images under a named metric protocol. Either --pred DIR --target DIR (existing outputs) or "
            "--model M with --data PATH or --input DIR --target DIR (runs the model and baselines)."
        ),
    )
    p.add_argument("--pred", help="folder of restored images to score")
    p.add_argument("--target", help="folder of ground-truth images (paired by file name)")
    p.add_argument("--input", help="folder of degraded inputs (scored too; needed for baselines)")
    p.add_argument("--model", help="model package (.safetensors), checkpoint, or exported .onnx / TorchScript file")
    p.add_argument("--data", help="dataset folder, or a training/data config YAML (its validation split)")
    p.add_argument("--report", required=True, help="report JSON path; .csv, .md and <stem>_images/ are written beside it")
    p.add_argument("--protocol", default="rgb",
                   help="rgb (default), y, basicsr, basicsr-y, skimage (scikit-image's default SSIM, as the seeds "
                        "report), skimage-y; optionally +cropN / +u8")
    p.add_argument("--crop-border", type=int, default=None, help="pixels cropped from each border before measuring")
    p.add_argument("--baselines", default=None,
                   help="all | noise | blur | none | comma list of nlm,bilateral,wiener,richardson_lucy,unsharp "
                        "(default: all with --model or --input, else none)")
    p.add_argument("--metrics", default="psnr,ssim,mae,mse", help="comma list of psnr,ssim,ms_ssim,mae,mse")
    p.add_argument("--lpips", default=None, metavar="VGG_PTH",
                   help="add LPIPS: path to the lpips package's weights/v0.1/vgg.pth (nothing is downloaded)")
    p.add_argument("--vgg-weights", default="imagenet",
                   help="torchvision VGG16 weights for LPIPS (default: torch hub cache vgg16-397923af.pth)")
    p.add_argument("--tile", default="auto", help="tile size for the model: auto, pixels, or 0 for whole images")
    p.add_argument("--overlap", default="32", help="tile overlap: pixels or a fraction of the tile (as restore)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--backend", default="auto", help="auto, eager, compile, onnxruntime")
    p.add_argument("--ensemble", action="store_true", help="self-ensemble over the 8 flips/rotations")
    p.add_argument("--limit", type=int, default=None, help="score at most N images")
    p.add_argument("--skip-missing", action="store_true", help="score matched pairs only when some files have no partner")
    p.add_argument("--no-images", action="store_true", help="do not write comparison images")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--mlflow-run", default=None, metavar="ID",
                   help="also log this evaluation (metrics and report files) to the existing MLflow run ID")
    p.add_argument("--mlflow-uri", default=None, metavar="URI",
                   help="tracking URI of that run (default: sqlite:///runs/mlflow.db as training uses)")
    p.add_argument("--ocr", default=None, metavar="LANGS",
                   help="also read every page with Tesseract (e.g. eng,san) and report CER/WER of the clean, degraded "
                        "and restored pages; needs <name>.txt ground truth beside the target images")
    p.set_defaults(func=run)


def _print_summary(res: dict) -> None:
    proto = res["protocol"]["name"]
    print(f"{res['count']} image(s), protocol {proto}")
    width = max(len(m) for m in res["methods"])
    for method in res["ranking"]:
        mean = res["methods"][method]["mean"]
        mark = " <-" if method == res["primary"] else ""
        ssim = mean.get("ssim")
        ssim_s = f"  SSIM {ssim:.4f}" if ssim is not None else ""
        print(f"  {method:<{width}}  PSNR {mean.get('psnr', float('nan')):7.2f} dB{ssim_s}{mark}")
    g = res["gain_db"]
    if g.get("over_input") is not None:
        print(f"  gain over input: {g['over_input']:+.2f} dB")
    if g.get("best_baseline"):
        print(f"  gain over best baseline ({g['best_baseline']}): {g['over_best_baseline']:+.2f} dB")
    for note in res.get("notes", []):
        if "infinite" in note:
            print(f"  note: {note}")
    files = res.get("files", {})
    if files:
        print(f"report: {files.get('json')} (+ .csv, .md)")


def _check_report(report: str) -> None:
    """ConfigError naming ``--report`` when its folder cannot be created or written (checked up front)."""
    from pathlib import Path

    from restorekit.errors import ConfigError
    from restorekit.utils.atomic import check_writable_folder

    path = Path(report)
    if path.is_dir():
        raise ConfigError(f"--report '{path}' is a folder; give a .json file path")
    check_writable_folder(path.parent, "--report", what=path)


def run(args: argparse.Namespace) -> int:
    from restorekit.errors import ConfigError
    from restorekit.evaluation import evaluate_folders, evaluate_model
    from restorekit.inference.options import RestoreOptions

    # every numeric option is validated once, before any image is read or model loaded
    if args.model:
        opts = RestoreOptions.parse(tile=args.tile, overlap=args.overlap, device=args.device, backend=args.backend,
                                    ensemble=args.ensemble)
        tile, overlap = opts.tile, opts.overlap_value
    else:
        tile, overlap = args.tile, args.overlap
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1 (leave it out to score every image), got {args.limit}")
    if args.crop_border is not None and args.crop_border < 0:
        raise ConfigError(f"--crop-border must be >= 0, got {args.crop_border}")
    _check_report(args.report)
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    bad = [m for m in metrics if m not in ("psnr", "ssim", "ms_ssim", "mae", "mse")]
    if bad or not metrics:
        raise ConfigError(f"--metrics: unknown metric(s) {bad} (expected psnr, ssim, ms_ssim, mae, mse)")
    on_missing = "skip" if args.skip_missing else "fail"
    common = dict(protocol=args.protocol, crop_border=args.crop_border, report=args.report, metrics=metrics,
                  comparisons=not args.no_images, limit=args.limit, on_missing=on_missing, progress=sys.stderr.isatty())
    if args.title:
        common["title"] = args.title
    if args.lpips:
        common["lpips_weights"] = args.lpips
        common["vgg_weights"] = args.vgg_weights
    if args.pred:
        if args.model or args.data:
            raise ConfigError("--pred scores existing outputs: do not combine it with --model/--data")
        if not args.target:
            raise ConfigError("--pred needs --target DIR")
        baselines = args.baselines or ("all" if args.input else "none")
        if args.ocr:
            from restorekit.documents.ocr import evaluate_with_ocr

            res = evaluate_with_ocr(args.ocr, pred_dir=args.pred, target_dir=args.target, input_dir=args.input,
                                    baselines=baselines, **common)
        else:
            res = evaluate_folders(args.pred, args.target, input_dir=args.input, baselines=baselines, **common)
    elif args.model:
        if args.data and (args.input or args.target):
            raise ConfigError("give either --data or --input/--target, not both")
        if args.data:
            data = args.data
        elif args.input and args.target:
            data = (args.input, args.target)
        else:
            raise ConfigError("--model needs --data PATH or --input DIR --target DIR")
        if args.ocr:
            from restorekit.documents.ocr import evaluate_with_ocr

            res = evaluate_with_ocr(args.ocr, model=args.model, data=data, baselines=args.baselines or "none", tile=tile,
                                    overlap=overlap, device=args.device, ensemble=args.ensemble,
                                    backend=args.backend, **common)
        else:
            res = evaluate_model(args.model, data, baselines=args.baselines or "all", tile=tile, overlap=overlap,
                                 device=args.device, ensemble=args.ensemble, backend=args.backend, **common)
    else:
        raise ConfigError("nothing to evaluate: pass --pred DIR --target DIR, or --model M with --data/--input/--target")
    _print_summary(res)
    if args.mlflow_run:
        from restorekit.training.tracking import log_evaluation

        files = [f for f in (res.get("files") or {}).values() if isinstance(f, str)]
        logged = log_evaluation(args.mlflow_run, res, uri=args.mlflow_uri, run_dir="runs/_", files=files)
        print(f"logged {len(logged)} metric(s) to MLflow run {args.mlflow_run}")
    if args.ocr:
        for lang, s in res["ocr"].items():
            print(f"  OCR {lang} ({s['n_pages']} pages): CER clean {s.get('clean_cer', float('nan')):.3f}, "
                  f"input {s.get('input_cer', float('nan')):.3f}, output {s.get('output_cer', float('nan')):.3f}")
    return 0
