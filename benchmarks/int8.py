"""int8 inference benchmark: ONNX Runtime fp32 against ``restorekit export --quantize int8``, same tiling, one run.

For trained models (the demo U-Net from ``restorekit demo`` and the distillation
student from ``restorekit distill configs/distill-demo.yaml``; random weights would
make a PSNR meaningless):

* calibration: degraded crops of the *training* photos of those runs (the degradation
  each model was trained on), written as PNGs and passed as ``--calibration``;
* quality: PSNR against the clean photo of the fp32 and the int8 graph's restorations
  of the held-out photos (coffee, rocket: the runs' validation photos, never used for
  calibration), same degradation, full size, restorekit's tiling; ``int8_psnr_drop_db``
  = fp32 PSNR - int8 PSNR (the larger of the models);
* speed: ``restore_image`` with each runtime on a ``--size`` image (a real photo tiled
  up), same tile / overlap / batch, interleaved fp32 / int8 over ``--rounds`` rounds,
  medians; ``int8_speedup_vs_fp32`` = the smaller of the models.

Usage: ``python benchmarks/int8.py --unet runs/demo/model.safetensors --student
runs/distill-demo/student/model.safetensors [--size 1024] [--out FILE]``. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info, load_average  # noqa: E402

HELDOUT = ("coffee", "rocket")
CALIB = ("astronaut", "chelsea", "immunohistochemistry", "motorcycle_left", "hubble_deep_field")
#: the degradations the two demo runs train on (configs/demo.yaml's preset; configs/distill-demo.yaml's ops)
DEGRADE = {
    "demo": "demo-deblur",
    "student": [{"name": "gaussian_noise", "p": 1.0, "sigma": [0.06, 0.12]}, {"name": "jpeg", "p": 0.5, "quality": [75, 95]}],
}


def degraded(name: str, spec: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(degraded, clean) ``(H, W, 3)`` float32 [0, 1] versions of a scikit-image photo, seeded."""
    from restorekit.degrade import build_degrader
    from restorekit.export.quantize import skimage_photo
    from restorekit.utils.seed import sample_rng

    clean = skimage_photo(name)
    out, _ = build_degrader(spec)(clean, sample_rng(seed, 0))
    return np.clip(np.asarray(out, np.float32), 0, 1), clean


def write_calibration(folder: Path, spec: Any) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(CALIB):
        x, _ = degraded(name, spec, 100 + i)
        cv2.imwrite(str(folder / f"{name}.png"), (x[..., ::-1] * 255 + 0.5).astype(np.uint8))


def bench_model(key: str, path: Path, size: int, rounds: int, tile: int, overlap: int) -> dict[str, Any]:
    from restorekit.export.onnx import onnx_bytes
    from restorekit.export.quantize import psnr01, quantize_int8, verify_int8
    from restorekit.inference import make_runtime, restore_image
    from restorekit.models.loading import load_model

    model = load_model(path).eval()
    fp32 = onnx_bytes(model)
    with tempfile.TemporaryDirectory(prefix="rk-int8-bench-") as tmp:
        cal = Path(tmp) / "calibration"
        write_calibration(cal, DEGRADE[key])
        t0 = time.perf_counter()
        q = quantize_int8(fp32, Path(tmp) / "int8.onnx", calibration=cal)
        quant_s = time.perf_counter() - t0
        psnr_vs_fp32, _ = verify_int8(fp32, q.path)
        rt32 = make_runtime_from_bytes(fp32)
        rt8 = make_runtime(q.path, "cpu")
        # quality on held-out photos
        p32, p8 = [], []
        for i, name in enumerate(HELDOUT):
            x, clean = degraded(name, DEGRADE[key], i)
            y32 = restore_image(rt32, x, tile=tile, overlap=overlap)
            y8 = restore_image(rt8, x, tile=tile, overlap=overlap)
            p32.append(psnr01(y32, clean))
            p8.append(psnr01(y8, clean))
        # speed: interleaved, same tiling
        from skimage import data

        base = data.astronaut().astype(np.float32) / 255.0
        reps = -(-size // base.shape[0])
        img = np.ascontiguousarray(np.tile(base, (reps, reps, 1))[:size, :size])
        restore_image(rt32, img[:tile, :tile], tile=tile)
        restore_image(rt8, img[:tile, :tile], tile=tile)
        t32, t8 = [], []
        for _ in range(rounds):
            for rt, acc in ((rt32, t32), (rt8, t8)):
                t = time.perf_counter()
                restore_image(rt, img, tile=tile, overlap=overlap)
                acc.append(time.perf_counter() - t)
        size32 = len(fp32)
        size8 = q.size_bytes
    m32, m8 = statistics.median(t32), statistics.median(t8)
    return {
        "source": str(path), "arch": getattr(getattr(model, "restorekit_card", None), "arch", None),
        "fp32_s": round(m32, 3), "int8_s": round(m8, 3), "all_s": {"fp32": t32, "int8": t8},
        "int8_speedup_vs_fp32": round(m32 / m8, 3),
        "fp32_psnr_db": round(float(np.mean(p32)), 3), "int8_psnr_db": round(float(np.mean(p8)), 3),
        "int8_psnr_drop_db": round(float(np.mean(p32) - np.mean(p8)), 3),
        "per_photo_psnr": {"fp32": p32, "int8": p8},
        "int8_psnr_vs_fp32_db": round(psnr_vs_fp32, 2),
        "size_mb_fp32": size32 / 1e6, "size_mb_int8": size8 / 1e6, "quantize_s": round(quant_s, 1),
    }


def make_runtime_from_bytes(data: bytes) -> Any:
    from restorekit.inference.runtime import OnnxRuntime

    return OnnxRuntime(data, torch.device("cpu"))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--unet", default="runs/demo/model.safetensors", help="trained demo model package (restorekit demo)")
    ap.add_argument("--student", default="runs/distill-demo/student/model.safetensors", help="trained student package")
    ap.add_argument("--size", type=int, default=1024, help="side of the timed image")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    load0 = load_average()
    models: dict[str, Any] = {}
    for key, p in (("demo", args.unet), ("student", args.student)):
        if not Path(p).is_file():
            print(f"{key}: '{p}' not found (train it first: see the docstring); skipped", flush=True)
            continue
        models[key] = bench_model(key, Path(p), args.size, args.rounds, args.tile, args.overlap)
        print(f"{key}: {json.dumps(models[key])}", flush=True)
    if not models:
        raise SystemExit("error: no trained model found (--unet / --student)")
    out = {
        "benchmark": "int8",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**cpu_info(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "image": f"{args.size}x{args.size} (astronaut tiled)", "tiling": f"tile {args.tile}, overlap {args.overlap}",
        "heldout": list(HELDOUT), "calibration": list(CALIB), "models": models,
        "int8_speedup_vs_fp32": min(m["int8_speedup_vs_fp32"] for m in models.values()),
        "int8_psnr_drop_db": max(m["int8_psnr_drop_db"] for m in models.values()),
        "load_avg_1m": [load0, load_average()],
    }
    out["goals"] = {"int8_speedup_1.5x": out["int8_speedup_vs_fp32"] >= 1.5, "int8_drop_0.2db": out["int8_psnr_drop_db"] <= 0.2}
    if args.out:
        from restorekit.utils.atomic import atomic_write_text

        atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
