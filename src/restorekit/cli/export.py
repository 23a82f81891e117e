"""`restorekit export`: export a model to ONNX, TorchScript or a safetensors package, verified."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from restorekit.models.spec import arch_of


def register(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "export",
        help="export a model to ONNX, TorchScript or safetensors",
        description="Export a model package / checkpoint (or an untrained registry architecture) to ONNX with dynamic "
        "batch/height/width, traced TorchScript, or a safetensors package. ONNX and TorchScript exports are run "
        "against PyTorch on a test input and refused when the max abs difference reaches --tolerance.",
    )
    p.add_argument("--model", "-m", required=True, help="model package/checkpoint, or a registry name (random weights)")
    p.add_argument("--preset", default=None, help="preset when --model is a registry name")
    p.add_argument("--format", "-f", choices=["onnx", "torchscript", "safetensors", "seed"], default=None,
                   help="output format (default: from the --out suffix); seed: the seed project's own checkpoint "
                        "layout and key names (deblur U-Net, manuscript ViT, KD student, raw ModelWrapper)")
    p.add_argument("--out", "-o", required=True, help="output file (.onnx, .pt, .safetensors; seed: .pth)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference allowed vs PyTorch (default 1e-4)")
    p.add_argument("--no-verify", action="store_true", help="skip the verification run")
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="ONNX only: static int8 quantization (ONNX Runtime QDQ, per-channel weights), calibrated on "
                   "--calibration and verified against the fp32 graph on held-out photos")
    p.add_argument("--calibration", default=None, metavar="DIR",
                   help="folder of images to calibrate int8 activation ranges (default: photos bundled with scikit-image)")
    p.add_argument("--min-psnr", type=float, default=30.0,
                   help="--quantize: refuse the int8 model when its output is below this PSNR vs fp32 (dB, default 30)")
    p.set_defaults(func=run)


#: output suffixes accepted for each --format
SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".ts", ".torchscript"), "safetensors": (".safetensors",),
            "seed": (".pth", ".pt")}


def _check_out(out: Path, fmt: str | None, model: Path) -> None:
    """Refuse, before any work, an --out whose suffix does not match --format or whose folder is unusable."""
    from restorekit.errors import ConfigError
    from restorekit.utils.atomic import check_writable_folder

    ext = out.suffix.lower()
    if fmt is not None and ext not in SUFFIXES.get(fmt, (ext,)):
        raise ConfigError(f"--out '{out}': a {fmt} export must be named {' or '.join(SUFFIXES[fmt])}, not '{out.suffix or '(no suffix)'}'")
    if fmt is None and not any(ext in v for v in SUFFIXES.values()):
        raise ConfigError(f"--out '{out}': cannot tell the export format from the suffix; use "
                          f"{', '.join(x for v in SUFFIXES.values() for x in v)} or pass --format")
    if out.is_dir():
        raise ConfigError(f"--out '{out}' is a folder; give a file name")
    if model.exists() and out.exists() and out.resolve() == model.resolve():
        raise ConfigError(f"--out '{out}' is the --model file; choose another name")
    check_writable_folder(out.parent, "--out", what=out)


def run(args: argparse.Namespace) -> int:
    from restorekit.errors import ConfigError
    from restorekit.export import export_model
    from restorekit.models.loading import load_model
    from restorekit.models.registry import create_model, list_models

    _check_out(Path(args.out), args.format, Path(args.model))
    src = Path(args.model)
    if src.exists():
        model = load_model(src)
    elif args.model in list_models():
        print(f"warning: '{args.model}' is an architecture name: exporting UNTRAINED random weights", file=sys.stderr)
        model = create_model(args.model, preset=args.preset).eval()
    else:
        raise ConfigError(f"--model '{args.model}': no such file and not a registered architecture ({', '.join(list_models())})")
    if args.quantize:
        return _run_int8(model, args)
    res = export_model(model, args.out, args.format, verify=not args.no_verify, tolerance=args.tolerance)
    diff = "not verified" if res.max_abs_diff is None else f"max abs diff vs PyTorch {res.max_abs_diff:.2e} on {res.verify_shapes}"
    print(f"exported {arch_of(model)} to {res.path} ({res.format}, {res.size_bytes / 1e6:.1f} MB); {diff}")
    return 0


def _run_int8(model, args: argparse.Namespace) -> int:  # noqa: ANN001
    """``--quantize int8``: verified fp32 export, calibration, int8 graph verified against fp32."""
    from restorekit.errors import ConfigError
    from restorekit.export.quantize import export_int8

    if (args.format or Path(args.out).suffix.lower().lstrip(".")) != "onnx":
        raise ConfigError(f"--quantize int8 needs --format onnx (an .onnx --out), got '{args.format or args.out}'")
    res = export_int8(model, args.out, calibration=args.calibration, tolerance=args.tolerance,
                      min_psnr_db=None if args.no_verify else args.min_psnr)
    psnr = "" if res.psnr_vs_fp32_db is None else f"; {res.psnr_vs_fp32_db:.2f} dB PSNR vs fp32 on {len(res.verify_images)} held-out photos"
    print(f"exported {arch_of(model)} to {res.path} (onnx int8, {res.size_bytes / 1e6:.1f} MB, fp32 "
          f"{res.fp32_size_bytes / 1e6:.1f} MB; calibrated on {res.n_calibration_crops} crops of "
          f"{len(res.calibration)} images{psnr})")
    return 0
