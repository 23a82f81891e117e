"""`restorekit demo [--task photo|document] [--minutes M] [--out DIR]`: the photo demo (a restoration network
trained on bundled photos, default; restorekit.demo) or the document demo (restorekit.documents.demo)."""

from __future__ import annotations

import argparse


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "demo",
        help="train the demo restoration network on bundled photos (under 10 minutes on CPU)",
        description=(
            "Train a restoration network (the recipe in configs/demo.yaml) on the photos bundled with scikit-image, "
            "degraded on the fly (blur + noise + JPEG), for a bounded time, and report PSNR/SSIM of the degraded "
            "input, the model output and every classical baseline on held-out photos (report.json, report.md)."
        ),
    )
    p.add_argument("--task", choices=["photo", "document"], default="photo",
                   help="photo (default): deblurring on bundled photos; document: old-document restoration on generated "
                        "pages, judged by Tesseract OCR (docs/documents.md)")
    p.add_argument("--minutes", type=float, default=None,
                   help="time budget in minutes, evaluation included (photo default: restorekit.demo.DEMO_MINUTES; "
                        "document: 8, at most 10)")
    p.add_argument("--out", default=None,
                   help="output folder (default runs/demo or runs/demo-document; a previous demo there is replaced)")
    p.add_argument("--config", default=None, help="a run config to use instead of the built-in demo recipe")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a demo config value, e.g. --set data.patch_size=96 (repeatable)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from restorekit.demo import run_demo
    from restorekit.training.logs import quiet_lightning

    quiet_lightning()
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"trainer.device={args.device}")
    if args.task == "document":
        return run_document(args, overrides)
    from restorekit.demo import DEMO_MINUTES

    args.minutes = DEMO_MINUTES if args.minutes is None else args.minutes
    args.out = args.out or "runs/demo"
    report = run_demo(args.minutes, args.out, overrides=overrides, config_path=args.config, progress=not args.no_progress)
    print(
        f"\nheld-out photos ({report['n_images']}): input {report['input']['psnr']:.2f} dB / SSIM {report['input']['ssim']:.4f}"
        f" -> output {report['output']['psnr']:.2f} dB / SSIM {report['output']['ssim']:.4f}"
        f"  (gain {report['gain_db']:+.2f} dB)\nreport: {args.out}/report.md"
    )
    return 0


def run_document(args: argparse.Namespace, overrides: list[str]) -> int:
    """``restorekit demo --task document``."""
    from restorekit.documents.demo import run_document_demo

    out = args.out or "runs/demo-document"
    minutes = 8.0 if args.minutes is None else args.minutes
    r = run_document_demo(minutes, out, overrides=overrides, config_path=args.config, progress=not args.no_progress)
    print(f"\nheld-out pages ({r['n_pages']}): PSNR {r['input']['psnr']:.2f} -> {r['output']['psnr']:.2f} dB")
    for lang, s in r["ocr"].items():
        print(f"  OCR {lang}: CER clean {s['clean_cer']:.3f}, degraded {s['input_cer']:.3f} -> restored {s['output_cer']:.3f}")
    print(f"goals met: {'yes' if r['goals']['all'] else 'no (see report.md)'}\nreport: {out}/report.md")
    return 0
