"""int8 inference benchmark: ONNX Runtime fp32 against ``restorekit export --quantize int8``, same tiling, one run.

For trained models (random weights would make a PSNR meaningless), each one optional:

* ``demo`` (``--unet``): the model ``restorekit demo`` trains (configs/demo.yaml:
  a NAFNet width 16 since that recipe was chosen by measurement);
* ``student`` (``--student``): the distillation student of ``restorekit distill
  configs/distill-demo.yaml`` (``student_unet`` base 8, 121 k parameters);
* ``deblur_unet`` (``--deblur-unet``): the deblurring seed's GroupNorm U-Net (base 32)
  trained on the demo recipe: ``restorekit demo --out runs/demo-unet --set
  model.name=deblur_unet --set "model.args={base_ch: 32, norm: group}"``.

A model whose file is missing is skipped (the JSON lists it under ``missing`` with the
command that trains it); the script prints, and records, the file each model came
from and whether it was given on the command line or taken from the default path.

* calibration: degraded crops of photos every one of those runs *trained* on
  (:data:`CALIB`), with the degradation that model was trained on, written as PNGs and
  passed as ``--calibration``;
* quality: PSNR against the clean photo of the fp32 and the int8 graph's restorations
  of the held-out photos (:data:`HELDOUT`: coffee, rocket, validation photos of all
  three runs, never used for calibration), same degradation, full size, restorekit's
  tiling; ``int8_psnr_drop_db`` = fp32 PSNR - int8 PSNR;
* speed: ``restore_image`` with each runtime on a ``--size`` image (a real photo tiled
  up), the same tile / overlap / batch and the same ONNX Runtime thread count,
  interleaved fp32 / int8 over ``--rounds`` rounds (so load from other processes hits
  both alike), medians; ``int8_speedup_vs_fp32`` = fp32 time / int8 time.

Top-level ``int8_speedup_vs_fp32`` is the smallest and ``int8_psnr_drop_db`` the largest
over the models the issue names (:data:`GOAL_MODELS`: the distillation student and the
demo recipe's U-Net) among those measured; ``int8_speedup_vs_fp32_all_models`` and
``int8_psnr_drop_db_all_models`` include the demo's NAFNet too; ``models.<name>`` has
each one's figures.

Usage: ``python benchmarks/int8.py --unet runs/demo/model.safetensors --student
runs/distill-demo/student/model.safetensors [--deblur-unet runs/demo-unet/model.safetensors]
[--size 1024] [--out FILE]``. The last line printed is one JSON object.
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

#: validation photos of configs/demo.yaml and configs/distill-demo.yaml (never calibrated on)
HELDOUT = ("coffee", "rocket")
#: training photos of both runs (calibration)
CALIB = ("astronaut", "hubble_deep_field", "immunohistochemistry", "motorcycle_left", "motorcycle_right")
#: the models the int8 goal is stated for (issue #16: "the distillation student and the demo U-Net")
GOAL_MODELS = ("student", "deblur_unet")
#: slot -> (command-line flag, default file, degradation it trains on, command that trains it)
MODELS: dict[str, tuple[str, str, Any, str]] = {
    "demo": ("--unet", "runs/demo/model.safetensors", "demo-deblur", "restorekit demo"),
    "student": (
        "--student", "runs/distill-demo/student/model.safetensors",
        [{"name": "gaussian_noise", "p": 1.0, "sigma": [0.06, 0.12]}, {"name": "jpeg", "p": 0.5, "quality": [75, 95]}],
        "restorekit distill configs/distill-demo.yaml --out runs/distill-demo",
    ),
    "deblur_unet": (
        "--deblur-unet", "runs/demo-unet/model.safetensors", "demo-deblur",
        'restorekit demo --out runs/demo-unet --set model.name=deblur_unet --set "model.args={base_ch: 32, norm: group}"',
    ),
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


def timed_image(size: int) -> np.ndarray:
    """A ``size x size`` real photo (astronaut tiled up), float32 [0, 1]."""
    from skimage import data

    base = data.astronaut().astype(np.float32) / 255.0
    reps = -(-size // base.shape[0])
    return np.ascontiguousarray(np.tile(base, (reps, reps, 1))[:size, :size])


def bench_model(key: str, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from restorekit.export.onnx import onnx_bytes
    from restorekit.export.quantize import psnr01, quantize_int8
    from restorekit.inference import restore_image
    from restorekit.inference.runtime import OnnxRuntime
    from restorekit.models.loading import load_model

    spec = MODELS[key][2]
    tile, overlap, batch, threads = args.tile, args.overlap, args.batch, args.threads
    model = load_model(path).eval()
    fp32 = onnx_bytes(model)
    with tempfile.TemporaryDirectory(prefix="rk-int8-bench-") as tmp:
        cal = Path(tmp) / "calibration"
        write_calibration(cal, spec)
        t0 = time.perf_counter()
        q = quantize_int8(fp32, Path(tmp) / "int8.onnx", calibration=cal)
        quant_s = time.perf_counter() - t0
        int8 = q.path.read_bytes()
    rt32 = OnnxRuntime(fp32, torch.device("cpu"), threads=threads)
    rt8 = OnnxRuntime(int8, torch.device("cpu"), threads=threads)
    # quality on held-out photos
    p32, p8, p8_vs_32 = [], [], []
    for i, name in enumerate(HELDOUT):
        x, clean = degraded(name, spec, i)
        y32 = restore_image(rt32, x, tile=tile, overlap=overlap, batch=batch)
        y8 = restore_image(rt8, x, tile=tile, overlap=overlap, batch=batch)
        p32.append(psnr01(y32, clean))
        p8.append(psnr01(y8, clean))
        p8_vs_32.append(psnr01(y8, y32))
    # speed: interleaved, same tiling, batch and threads
    img = timed_image(args.size)
    restore_image(rt32, img[:tile, :tile], tile=tile, batch=batch)
    restore_image(rt8, img[:tile, :tile], tile=tile, batch=batch)
    t32, t8 = [], []
    for _ in range(args.rounds):
        for rt, acc in ((rt32, t32), (rt8, t8)):
            t = time.perf_counter()
            restore_image(rt, img, tile=tile, overlap=overlap, batch=batch)
            acc.append(time.perf_counter() - t)
    m32, m8 = statistics.median(t32), statistics.median(t8)
    card = getattr(model, "restorekit_card", None)
    x = np.ascontiguousarray(np.stack([img[:tile, :tile].transpose(2, 0, 1)] * batch))
    x = x * 2 - 1 if rt32.info.value_range == "-1,1" else x
    return {
        "source": str(path), "arch": getattr(card, "arch", None),
        "parameters": sum(p.numel() for p in model.parameters()),
        "fp32_s": round(m32, 3), "int8_s": round(m8, 3), "all_s": {"fp32": t32, "int8": t8},
        "int8_speedup_vs_fp32": round(m32 / m8, 3),
        "fp32_psnr_db": round(float(np.mean(p32)), 3), "int8_psnr_db": round(float(np.mean(p8)), 3),
        "int8_psnr_drop_db": round(float(np.mean(p32) - np.mean(p8)), 3),
        "per_photo_psnr": {"fp32": p32, "int8": p8},
        "int8_psnr_vs_fp32_db": round(float(np.mean(p8_vs_32)), 2),
        "size_mb_fp32": len(fp32) / 1e6, "size_mb_int8": q.size_bytes / 1e6, "quantize_s": round(quant_s, 1),
        "graph_rewrites": q.rewrites,
        "ms_per_op_type": {"fp32": op_profile(fp32, x, threads), "int8": op_profile(int8, x, threads)},
    }


def op_profile(data: bytes, x: np.ndarray, threads: int, runs: int = 3, top: int = 10) -> dict[str, float]:
    """Milliseconds per call of one batch of tiles ``x``, by operator type, in the graph ONNX Runtime runs (its
    profiler, median over ``runs`` calls after a warm-up): shows what stays fp32 and where the int8 time goes."""
    import json as _json

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    so.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="rk-int8-prof-") as tmp:
        so.profile_file_prefix = str(Path(tmp) / "p")
        s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        feed = {s.get_inputs()[0].name: x.astype(np.float32)}
        for _ in range(runs + 1):
            s.run(None, feed)
        events = _json.loads(Path(s.end_profiling()).read_text())
    per_node: dict[str, list[float]] = {}
    op_of: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per_node.setdefault(e["name"], []).append(e["dur"] / 1000)
            op_of[e["name"]] = e["args"]["op_name"]
    by_op: dict[str, float] = {}
    for name, durs in per_node.items():
        by_op[op_of[name]] = by_op.get(op_of[name], 0.0) + statistics.median(durs[1:] or durs)
    ranked = sorted(by_op.items(), key=lambda kv: -kv[1])
    out = {k: round(v, 2) for k, v in ranked[:top]}
    out["other"] = round(sum(v for _, v in ranked[top:]), 2)
    out["total"] = round(sum(by_op.values()), 2)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for key, (flag, default, _, how) in MODELS.items():
        ap.add_argument(flag, dest=key, default=None, help=f"trained {key} package (default {default}: `{how}`)")
    ap.add_argument("--size", type=int, default=1024, help="side of the timed image")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4, help="tiles per ONNX Runtime call (restorekit's default)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="ONNX Runtime intra-op threads, both runtimes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    load0 = load_average()
    models: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for key, (flag, default, _, how) in MODELS.items():
        given = getattr(args, key)
        p = Path(given or default)
        if not p.is_file():
            why = f"'{p}' not found ({'given with ' + flag if given else 'default path; pass ' + flag}); train it with: {how}"
            print(f"{key}: {why}; skipped", flush=True)
            missing[key] = why
            continue
        print(f"{key}: {p} ({'given with ' + flag if given else 'default path, no ' + flag + ' given'})", flush=True)
        models[key] = bench_model(key, p, args)
        models[key]["source_given"] = bool(given)
        print(f"{key}: {json.dumps(models[key])}", flush=True)
    if not models:
        raise SystemExit("error: no trained model found (--unet / --student / --deblur-unet; see the docstring)")
    out = {
        "benchmark": "int8",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**cpu_info(), "torch": torch.__version__, "threads": args.threads},
        "image": f"{args.size}x{args.size} (astronaut tiled)",
        "tiling": f"tile {args.tile}, overlap {args.overlap}, batch {args.batch}",
        "heldout": list(HELDOUT), "calibration": list(CALIB), "models": models, "missing": missing,
        "goal_models": [k for k in GOAL_MODELS if k in models] or list(models),
        "int8_speedup_vs_fp32_all_models": min(m["int8_speedup_vs_fp32"] for m in models.values()),
        "int8_psnr_drop_db_all_models": max(m["int8_psnr_drop_db"] for m in models.values()),
        "load_avg_1m": [load0, load_average()],
    }
    out["int8_speedup_vs_fp32"] = min(models[k]["int8_speedup_vs_fp32"] for k in out["goal_models"])
    out["int8_psnr_drop_db"] = max(models[k]["int8_psnr_drop_db"] for k in out["goal_models"])
    out["goals"] = {"int8_speedup_1.5x": out["int8_speedup_vs_fp32"] >= 1.5, "int8_drop_0.2db": out["int8_psnr_drop_db"] <= 0.2}
    if args.out:
        from restorekit.utils.atomic import atomic_write_text

        atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
