"""`restorekit demo [--minutes 5] [--out runs/demo]`: train the seed deblurring U-Net on bundled photos."""

from __future__ import annotations

import argparse


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "demo",
        help="train the demo deblurring U-Net on bundled photos (about 5 minutes on CPU)",
        description=(
            "Train the seed deblurring U-Net (deblur_unet) on the photos bundled with scikit-image, degraded on the "
            "fly (blur + noise + JPEG), for a bounded time, and report PSNR/SSIM of the degraded input and of the "
            "model output on held-out photos (report.json, report.md)."
        ),
    )
    p.add_argument("--minutes", type=float, default=5.0, help="time budget in minutes, evaluation included (default 5)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo; a previous demo there is replaced)")
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
    report = run_demo(args.minutes, args.out, overrides=overrides, config_path=args.config, progress=not args.no_progress)
    print(
        f"\nheld-out photos ({report['n_images']}): input {report['input']['psnr']:.2f} dB / SSIM {report['input']['ssim']:.4f}"
        f" -> output {report['output']['psnr']:.2f} dB / SSIM {report['output']['ssim']:.4f}"
        f"  (gain {report['gain_db']:+.2f} dB)\nreport: {args.out}/report.md"
    )
    return 0
