"""Inference benchmark: restorekit's default path vs the deblurring seed's tiling, on this machine, in one run.

For the demo U-Net (``deblur_unet``, 8.6 M params) and NAFNet-w32 (``nafnet`` preset
``gopro-w32``, 17.1 M params), on a 2048x2048 image (random weights: speed does not
depend on them):

(a) whole-image eager PyTorch (NCHW), when it fits in memory and time;
(b) the seed's tiling: 256 tiles, 64 overlap, one tile at a time, eager NCHW;
(c) restorekit's default path: ``restore_image(model, img)`` (tile="auto", overlap 32,
    backend "auto" = ONNX Runtime on CPU, batched tiles);
(d) ONNX Runtime through an exported ``.onnx`` file (``restorekit export``), default tiling;
(e) eager PyTorch channels_last with the default tiling (the fallback runtime);
(f) eager PyTorch under bf16 autocast (``--precision bf16``), default tiling: on CPUs with
    AMX-BF16 oneDNN runs the convolutions on the AMX tiles (random weights: the PSNR
    against (c) shows the rounding, not a restoration quality).

It also measures a large fp32 matrix multiply and the FMA peak of the CPU (a
register-only vector FMA kernel, ``benchmarks/machine.py``; not a matmul) right before
and after (c), reports ``fraction_of_fma_peak`` of (c), ``eager_speedup_vs_seed_tiling``
= (b) / (e) (restorekit's eager PyTorch path alone, no ONNX Runtime), ``lscpu``'s model
name and clock, and the load average; the matmul figure (the machine's practical peak), reports the useful model GFLOP/s of (c) (2 x MACs of the
whole image / time, overlap not counted) against it, and the peak RSS of a fresh
subprocess restoring a 4096x4096 image with the default path.

Per model the eager variants (b), (e), (f) run before any ONNX Runtime session of that model exists
and the previous model's runtimes are released: eager PyTorch timed right after ONNX Runtime in the
same process ran slower (its thread pool). Modes whose full run would not fit the time budget are timed on a prefix of their
tiles and extrapolated (marked "extrapolated"); (a) is skipped when it would not
fit in memory or time. The last line printed is one JSON object.

Usage: ``python benchmarks/inference.py [--size 2048] [--mem-size 4096] [--budget-s 540]``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info, fma_peak_gflops, load_average  # noqa: E402

MODELS = {
    "demo_unet": ("deblur_unet", {}),
    "nafnet_w32": ("nafnet", {"preset": "gopro-w32"}),
}


class Budget(Exception):
    """Raised inside a tiled run to stop it once its time slice is spent."""


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


class PeakRSS:
    """Samples the process RSS every 10 ms in a thread; ``peak - start`` is the increase during the block."""

    def __enter__(self) -> "PeakRSS":
        self.start = rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def increase(self) -> float:
        return self.peak - self.start


def count_macs(model: nn.Module, size: int = 256) -> int:
    """Multiply-accumulates of conv/linear layers for one (1,3,size,size) input (hooks)."""
    macs = 0

    def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(mod, nn.Conv2d):
            macs += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.ConvTranspose2d):
            macs += inp[0].numel() * mod.out_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            macs += out.numel() * mod.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for h in hs:
        h.remove()
    return macs


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    """Best-of-``reps`` fp32 matmul throughput in GFLOP/s (2 n^3 flops per product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def timed_restore(runtime, img: np.ndarray, *, tile, overlap, batch, limit_s: float) -> dict:  # noqa: ANN001
    """Run restore_image with a time limit; extrapolate from the tiles done when the limit is hit."""
    from restorekit.inference import restore_image

    state = {"done": 0, "total": 0}
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        state["done"], state["total"] = done, total
        if time.perf_counter() - t0 > limit_s and done < total:
            raise Budget

    out = None
    with PeakRSS() as mem:
        try:
            out = restore_image(runtime, img, tile=tile, overlap=overlap, batch=batch, progress=progress)
        except Budget:
            pass
    elapsed = time.perf_counter() - t0
    full = state["done"] == state["total"]
    seconds = elapsed if full else elapsed * state["total"] / max(1, state["done"])
    return {"seconds": seconds, "extrapolated": not full, "tiles": state["total"], "tiles_run": state["done"],
            "peak_rss_increase_mb": mem.increase, "out": out}


_MEM_SCRIPT = r"""
import json, sys, time
import numpy as np, torch
import restorekit
from restorekit.inference import restore_image, make_runtime
name, kw, size = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
m = restorekit.create_model(name, **kw).eval()
rt = make_runtime(m, "cpu")          # the default runtime (ONNX Runtime on CPU)
img = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
limit = float(sys.argv[4])
state = {"done": 0, "total": 0}
class Stop(Exception):
    pass
def progress(done, total):
    state["done"], state["total"] = done, total
    if time.perf_counter() - t0 > limit and done < total:
        raise Stop
t0 = time.perf_counter()
try:
    out = restore_image(rt, img, progress=progress)          # default path: tile="auto", overlap 32
    finite = bool(np.isfinite(out).all())
except Stop:
    finite = None
dt = time.perf_counter() - t0
# VmHWM: this process's own peak RSS (ru_maxrss would include the parent's peak: it survives exec)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"peak_rss_mb": hwm, "seconds": dt,
                  "tiles_done": state["done"], "tiles": state["total"], "runtime": rt.describe(), "finite": finite}))
"""


def peak_mem_subprocess(name: str, kw: dict, size: int, limit_s: float) -> dict:
    """Peak RSS of a fresh process restoring a ``size``^2 image with the default path.

    The input and output buffers are allocated before the first tile and the tile
    buffers reach their size with the first batch, so when the run is stopped after
    ``limit_s`` (reported as tiles_done < tiles) the peak is already reached.
    """
    try:
        res = subprocess.run([sys.executable, "-c", _MEM_SCRIPT, name, json.dumps(kw), str(size), str(limit_s)],
                             capture_output=True, text=True, timeout=limit_s + 300)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {limit_s + 300:.0f} s"}
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-30))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--mem-size", type=int, default=4096)
    ap.add_argument("--budget-s", type=float, default=540.0, help="rough wall-clock budget of the whole run")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default=None, help="also write the summary JSON here (atomically)")
    args = ap.parse_args()

    import restorekit
    from restorekit.export import export_model
    from restorekit.inference import make_runtime, resolve_plan, restore_image
    from restorekit.inference.memory import bytes_per_pixel
    from restorekit.inference.runtime import ort_arena_enabled
    from restorekit.utils.system import available_ram

    t_start = time.perf_counter()
    deadline = t_start + args.budget_s
    threads = torch.get_num_threads()
    print(f"restorekit inference benchmark: {args.size}x{args.size}, torch {torch.__version__}, {threads} threads, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    rng = np.random.default_rng(0)
    from skimage import data

    base = data.astronaut().astype(np.float32) / 255.0  # a real photo, tiled up to the benchmark size
    reps = -(-args.size // base.shape[0])
    img = np.ascontiguousarray(np.tile(base, (reps, reps, 1))[: args.size, : args.size])
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    np.clip(img, 0, 1, out=img)
    load0 = load_average()
    mm0 = matmul_gflops()
    print(f"matmul fp32 2048^3: {mm0:.1f} GFLOP/s", flush=True)
    fma0 = fma_peak_gflops(cores=threads)
    print(f"FMA peak ({threads} cores, register-only vector FMA kernel): {fma0}", flush=True)
    names = [n for n in args.models.split(",") if n]
    results: dict[str, dict] = {}
    mem4096: dict = {}
    for i, key in enumerate(names):
        arch, kw = MODELS[key]
        torch.manual_seed(0)
        model = restorekit.create_model(arch, **kw).eval()
        macs = count_macs(model) * (args.size / 256) ** 2
        r: dict = {"arch": arch, "gmacs_per_image": macs / 1e9}
        remaining_models = len(names) - i
        slice_s = max(30.0, (deadline - time.perf_counter() - 60) / remaining_models)
        print(f"\n== {key} ({arch} {kw}): {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params, "
              f"{macs / 1e9:.0f} GMACs for the {args.size}^2 image; time slice {slice_s:.0f} s", flush=True)

        # the default plan, from the module (the same bytes per pixel and size multiple the default runtime uses);
        # the eager variants run first, before this model's ONNX Runtime sessions exist (their thread pools
        # slowed eager PyTorch measured after them in the same process)
        tile_c, ov_c, batch_c = resolve_plan(model, args.size, args.size, "auto", 32, 4, torch.device("cpu"))

        # (b) the seed's tiling: 256/64, one tile at a time, eager NCHW
        rt_seed = make_runtime(model, "cpu", "eager", channels_last=False)
        restore_image(rt_seed, img[:256, :256], tile=256)  # warm-up (first-call kernel setup)
        b = timed_restore(rt_seed, img, tile=256, overlap=64, batch=1, limit_s=0.3 * slice_s)
        r["b_seed_tiling"] = {k: v for k, v in b.items() if k != "out"}
        print(f"(b) seed tiling [eager NCHW, 256/64, batch 1]: {b['seconds']:.1f} s"
              f"{' (extrapolated from %d of %d tiles)' % (b['tiles_run'], b['tiles']) if b['extrapolated'] else ''}, "
              f"+{b['peak_rss_increase_mb']:.0f} MB RSS", flush=True)

        # (e) eager channels_last, default tiling
        rt_eager = make_runtime(model, "cpu", "eager")
        restore_image(rt_eager, img[:tile_c, :tile_c], tile=tile_c)  # warm-up
        e = timed_restore(rt_eager, img, tile=tile_c, overlap=ov_c, batch=4, limit_s=0.1 * slice_s)
        r["e_eager_channels_last"] = {k: v for k, v in e.items() if k != "out"} | {"runtime": rt_eager.describe()}
        out_e = e["out"]
        r["eager_speedup_vs_seed_tiling"] = b["seconds"] / e["seconds"]
        print(f"(e) eager channels_last, default tiling: {e['seconds']:.1f} s{' (extrapolated)' if e['extrapolated'] else ''}",
              flush=True)

        # (f) eager under bf16 autocast (``--precision bf16``; AMX tiles where the CPU has them), default tiling
        rt_bf16 = make_runtime(model, "cpu", "eager", precision="bf16")
        restore_image(rt_bf16, img[:tile_c, :tile_c], tile=tile_c)  # warm-up
        f = timed_restore(rt_bf16, img, tile=tile_c, overlap=ov_c, batch=4, limit_s=0.1 * slice_s)
        r["f_eager_bf16"] = {k: v for k, v in f.items() if k != "out"} | {"runtime": rt_bf16.describe()}
        r["eager_bf16_speedup_vs_seed_tiling"] = b["seconds"] / f["seconds"]
        if f["out"] is not None and out_e is not None:
            r["f_eager_bf16"]["psnr_vs_fp32_default_db"] = psnr(f["out"], out_e)  # against (e), the same path in fp32
        print(f"(f) eager bf16 autocast, default tiling: {f['seconds']:.1f} s{' (extrapolated)' if f['extrapolated'] else ''}"
              f" -> {r['eager_bf16_speedup_vs_seed_tiling']:.2f}x the seed tiling", flush=True)
        del f

        # (c) default path; the in-memory ONNX export happens once, timed separately
        t0 = time.perf_counter()
        rt_default = make_runtime(model, "cpu")
        r["default_runtime"] = rt_default.describe()
        r["one_time_setup_s"] = time.perf_counter() - t0
        restore_image(rt_default, img[:256, :256])  # warm-up
        mm_before = matmul_gflops()
        fma_before = fma_peak_gflops(cores=threads, repeats=1)
        c = timed_restore(rt_default, img, tile="auto", overlap=32, batch=4, limit_s=0.35 * slice_s)
        mm_after = matmul_gflops()
        fma_after = fma_peak_gflops(cores=threads, repeats=1)
        mm = (mm_before + mm_after) / 2
        fma = [f["gflops_all_cores"] for f in (fma_before, fma_after) if f]
        r["fma_gflops_around_c"] = sum(fma) / len(fma) if fma else None
        r["c_default"] = {k: v for k, v in c.items() if k != "out"} | {"tile": tile_c, "overlap": ov_c, "batch": batch_c}
        r["c_default"]["gflops_useful"] = 2 * macs / 1e9 / c["seconds"]
        r["matmul_gflops_around_c"] = mm
        r["fraction_of_matmul_peak"] = r["c_default"]["gflops_useful"] / mm
        r["fraction_of_fma_peak"] = r["c_default"]["gflops_useful"] / r["fma_gflops_around_c"] if fma else None
        print(f"(c) default [{r['default_runtime']}, tile {tile_c}/{ov_c}, batch {batch_c}]: {c['seconds']:.1f} s"
              f"{' (extrapolated)' if c['extrapolated'] else ''}, +{c['peak_rss_increase_mb']:.0f} MB RSS, "
              f"{r['c_default']['gflops_useful']:.0f} useful GFLOP/s = {r['fraction_of_matmul_peak']:.2f} of matmul "
              f"({mm:.0f} GFLOP/s measured around it); setup {r['one_time_setup_s']:.1f} s", flush=True)
        out_c = c["out"]
        r["speedup_vs_seed_tiling"] = b["seconds"] / c["seconds"]
        print(f"    -> (c) is {r['speedup_vs_seed_tiling']:.2f}x faster than (b)", flush=True)

        # (d) ONNX Runtime via an exported file (what `restorekit export` writes)
        with tempfile.TemporaryDirectory() as td:
            onnx_path = Path(td) / f"{key}.onnx"
            res = export_model(model, onnx_path, "onnx")
            rt_file = make_runtime(onnx_path, "cpu")
            restore_image(rt_file, img[:256, :256])
            d = timed_restore(rt_file, img, tile="auto", overlap=32, batch=4, limit_s=0.15 * slice_s)
        r["d_onnx_file"] = {k: v for k, v in d.items() if k != "out"} | {"export_max_abs_diff": res.max_abs_diff}
        print(f"(d) ONNX Runtime from exported file (max abs diff vs PyTorch {res.max_abs_diff:.1e}): {d['seconds']:.1f} s"
              f"{' (extrapolated)' if d['extrapolated'] else ''}", flush=True)

        # (a) whole image, eager NCHW: only when it fits (memory estimate from the activation probe, time from (b))
        need_mb = bytes_per_pixel(model) * 2 * args.size**2 / 2**20
        est_s = b["seconds"] * args.size**2 / (max(1, b["tiles"]) * 256 * 256)
        left = deadline - time.perf_counter() - 60 * (remaining_models - 1) - 90
        if need_mb > available_ram() / 2**20 * 0.5:
            r["a_whole"] = {"skipped": f"needs ~{need_mb / 1024:.1f} GB, more than half the available RAM"}
        elif est_s > left:
            r["a_whole"] = {"skipped": f"estimated {est_s:.0f} s > {max(0.0, left):.0f} s left in the budget"}
        else:
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                whole = restore_image(rt_seed, img, tile=0)
                r["a_whole"] = {"seconds": time.perf_counter() - t0}
            r["a_whole"]["peak_rss_increase_mb"] = mem.increase
            if out_c is not None:
                r["a_whole"]["psnr_default_vs_whole_db"] = psnr(out_c, whole)
            del whole
        a = r["a_whole"]
        print("(a) whole image eager NCHW: " + (f"skipped ({a['skipped']})" if "skipped" in a else
              f"{a['seconds']:.1f} s, +{a['peak_rss_increase_mb']:.0f} MB RSS"
              + (f"; default path vs whole: {a['psnr_default_vs_whole_db']:.1f} dB PSNR" if "psnr_default_vs_whole_db" in a else "")),
              flush=True)
        results[key] = r
        del out_c, out_e, rt_default, rt_file, rt_eager, rt_bf16, rt_seed
        gc.collect()

        if key == "demo_unet" and args.mem_size:
            left = deadline - time.perf_counter() - 60 * (remaining_models - 1)
            mem4096 = peak_mem_subprocess(arch, kw, args.mem_size, limit_s=max(20.0, min(0.25 * left, 120.0)))
            print(f"peak RSS, {args.mem_size}^2 with the default path (fresh subprocess): {json.dumps(mem4096)}", flush=True)

    total = time.perf_counter() - t_start
    key0 = names[0]
    summary = {
        "benchmark": "inference",
        "size": args.size,
        "threads": threads,
        "matmul_gflops": mm0,
        "speedup_vs_seed_tiling": round(results[key0]["speedup_vs_seed_tiling"], 3),
        "fraction_of_matmul_peak": round(results[key0]["fraction_of_matmul_peak"], 3),
        "fma_peak": fma0,
        "fraction_of_fma_peak": (round(results[key0]["fraction_of_fma_peak"], 3)
                                 if results[key0].get("fraction_of_fma_peak") is not None else None),
        "eager_speedup_vs_seed_tiling": round(results[key0]["eager_speedup_vs_seed_tiling"], 3),
        "eager_bf16_speedup_vs_seed_tiling": round(results[key0]["eager_bf16_speedup_vs_seed_tiling"], 3),
        "machine": {**cpu_info(), "torch": torch.__version__},
        "ort_cpu_mem_arena": ort_arena_enabled(),
        "peak_mem_mb_4096": round(mem4096["peak_rss_mb"], 1) if "peak_rss_mb" in mem4096 else None,
        "per_model": {
            k: {
                "default_runtime": v["default_runtime"],
                "c_default_s": round(v["c_default"]["seconds"], 2),
                "b_seed_s": round(v["b_seed_tiling"]["seconds"], 2),
                "b_extrapolated": v["b_seed_tiling"]["extrapolated"],
                "d_onnx_file_s": round(v["d_onnx_file"]["seconds"], 2),
                "e_eager_cl_s": round(v["e_eager_channels_last"]["seconds"], 2),
                "f_eager_bf16_s": round(v["f_eager_bf16"]["seconds"], 2),
                "eager_bf16_speedup_vs_seed_tiling": round(v["eager_bf16_speedup_vs_seed_tiling"], 3),
                "bf16_psnr_vs_fp32_db": (round(v["f_eager_bf16"]["psnr_vs_fp32_default_db"], 2)
                                         if "psnr_vs_fp32_default_db" in v["f_eager_bf16"] else None),
                "a_whole_s": round(v["a_whole"]["seconds"], 2) if "seconds" in v["a_whole"] else None,
                "speedup_vs_seed_tiling": round(v["speedup_vs_seed_tiling"], 3),
                "gflops_useful": round(v["c_default"]["gflops_useful"], 1),
                "fraction_of_matmul_peak": round(v["fraction_of_matmul_peak"], 3),
                "fraction_of_fma_peak": round(v["fraction_of_fma_peak"], 3) if v.get("fraction_of_fma_peak") else None,
                "eager_speedup_vs_seed_tiling": round(v["eager_speedup_vs_seed_tiling"], 3),
            }
            for k, v in results.items()
        },
        "goals": {
            "speedup_2x": results[key0]["speedup_vs_seed_tiling"] >= 2.0,
            "mem_4096_under_2gb": bool(mem4096.get("peak_rss_mb", 1e9) < 2048),
            "half_of_matmul_peak": results[key0]["fraction_of_matmul_peak"] >= 0.5,
        },
        "total_seconds": round(total, 1),
        "load_average_end": round(os.getloadavg()[0], 2),
        "load_avg_1m": [load0, load_average()],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    summary["goals"].update({
        "speedup_3x": results[key0]["speedup_vs_seed_tiling"] >= 3.0,
        "eager_speedup_1.5x": results[key0]["eager_speedup_vs_seed_tiling"] >= 1.5,
        "fma_fraction_0.7": bool(summary["fraction_of_fma_peak"] and summary["fraction_of_fma_peak"] >= 0.7),
    })
    if args.out:
        from restorekit.utils.atomic import atomic_write_text

        atomic_write_text(args.out, json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
