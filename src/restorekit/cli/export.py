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
    p.add_argument("--format", "-f", choices=["onnx", "torchscript", "safetensors"], default=None,
                   help="output format (default: from the --out suffix)")
    p.add_argument("--out", "-o", required=True, help="output file (.onnx, .pt, .safetensors)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference allowed vs PyTorch (default 1e-4)")
    p.add_argument("--no-verify", action="store_true", help="skip the verification run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from restorekit.errors import ConfigError
    from restorekit.export import export_model
    from restorekit.models.loading import load_model
    from restorekit.models.registry import create_model, list_models

    src = Path(args.model)
    if src.exists():
        model = load_model(src)
    elif args.model in list_models():
        print(f"warning: '{args.model}' is an architecture name: exporting UNTRAINED random weights", file=sys.stderr)
        model = create_model(args.model, preset=args.preset).eval()
    else:
        raise ConfigError(f"--model '{args.model}': no such file and not a registered architecture ({', '.join(list_models())})")
    res = export_model(model, args.out, args.format, verify=not args.no_verify, tolerance=args.tolerance)
    diff = "not verified" if res.max_abs_diff is None else f"max abs diff vs PyTorch {res.max_abs_diff:.2e} on {res.verify_shapes}"
    print(f"exported {arch_of(model)} to {res.path} ({res.format}, {res.size_bytes / 1e6:.1f} MB); {diff}")
    return 0
