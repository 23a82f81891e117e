"""Training-speed benchmark: restorekit's engine (its defaults) against a plain PyTorch loop, in one run.

For the demo U-Net (``deblur_unet``, 8.6 M params) and NAFNet-w32 (``nafnet`` preset
``gopro-w32``, 17.1 M params): optimizer steps per second at 256x256, batch 4, on the
same in-memory batches of real photos (scikit-image, Gaussian blur + noise), same
initial weights, L1 loss, AdamW:

* **engine**: ``restorekit.training.engine.train`` with the engine's defaults
  (``train.channels_last: auto`` and ``trainer.compile: auto`` resolved from the
  architecture's spec and the device, ``trainer.precision: auto``, which is bf16-mixed
  on CPUs with AMX-BF16 (losses and validation in fp32), foreach AdamW, Lightning's
  loop), run for ``warmup + steps`` optimizer steps;
* **plain**: what the seed projects do: fp32, NCHW, eager, ``torch.optim.AdamW``
  with its defaults, ``zero_grad / forward / backward / step`` in a Python loop;
* **plain_cl**: the same plain loop in ``channels_last`` (shows which memory format
  is faster for training this architecture on this machine).

The variants are interleaved step by step (engine, plain, plain_cl, engine, ...): a
Lightning callback runs one step of each plain loop after every engine step and the
time it spends is subtracted from the engine's step interval. Medians over the
measured steps; the 1-minute load average is recorded before and after. The plain
loops use the same restorekit module as the engine (including its LayerNorm2d), so
the ratio measures what the engine's settings add, not the model code.

The last line printed is one JSON object; ``--out`` also writes it (atomically).
Usage: ``python benchmarks/training.py [--steps 4] [--warmup 2] [--models demo_unet,nafnet_w32]``
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info, load_average  # noqa: E402

MODELS: dict[str, tuple[str, str | None]] = {
    "demo_unet": ("deblur_unet", None),
    "nafnet_w32": ("nafnet", "gopro-w32"),
}
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "immunohistochemistry")


def make_samples(n: int, size: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``n`` (input, target) pairs: random ``size`` crops of real photos, Gaussian-blurred (sigma 1.5) + noise 0.02."""
    import cv2

    from restorekit.export.quantize import skimage_photo

    rng = np.random.default_rng(seed)
    photos = [skimage_photo(name) for name in PHOTOS]
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        tgt = np.ascontiguousarray(img[top : top + size, left : left + size])
        inp = cv2.GaussianBlur(tgt, (0, 0), 1.5) + rng.normal(0, 0.02, tgt.shape).astype(np.float32)
        out.append({
            "input": torch.from_numpy(np.clip(inp, 0, 1)).permute(2, 0, 1).contiguous(),
            "target": torch.from_numpy(tgt).permute(2, 0, 1).contiguous(),
            "name": f"{PHOTOS[i % len(PHOTOS)]}_{i}",
        })
    return out


class ListDataset(torch.utils.data.Dataset):
    """An in-memory list of sample dicts (what ``restorekit.data.collate`` batches)."""

    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.samples[i]


class PlainLoop:
    """The seeds' training loop: fp32, eager, ``AdamW`` defaults, L1; NCHW unless ``channels_last``."""

    def __init__(self, model: nn.Module, batches: list[dict[str, torch.Tensor]], value_range: str, *,
                 channels_last: bool, lr: float) -> None:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(memory_format=fmt).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr)
        scale = (lambda t: t * 2 - 1) if value_range == "-1,1" else (lambda t: t)
        self.batches = [(scale(b["input"]).contiguous(memory_format=fmt), scale(b["target"]).contiguous(memory_format=fmt))
                        for b in batches]
        self.i = 0
        self.times: list[float] = []

    def step(self) -> float:
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        t0 = time.perf_counter()
        self.opt.zero_grad()
        loss = nn.functional.l1_loss(self.model(x), y)
        loss.backward()
        self.opt.step()
        dt = time.perf_counter() - t0
        self.times.append(dt)
        return dt


def bench_model(key: str, steps: int, warmup: int, size: int, batch: int, workdir: Path,
                threads: int | None = None) -> dict[str, Any]:
    """Interleaved engine / plain / plain_cl steps for one architecture; seconds per step and ratios."""
    import lightning.pytorch as pl

    from restorekit.data import collate
    from restorekit.models.registry import create_model
    from restorekit.models.spec import caps_of
    from restorekit.training.config import parse_run_config, resolve_compile
    from restorekit.training.engine import resolve_precision, train
    from restorekit.training.module import wants_channels_last

    arch, preset = MODELS[key]
    n_train = batch * 4
    samples = make_samples(n_train + 1, size)
    train_ds, val_ds = ListDataset(samples[:n_train]), ListDataset([{k: (v[:, :64, :64] if torch.is_tensor(v) else v)
                                                                       for k, v in samples[-1].items()}])
    batches = [collate(samples[i : i + batch]) for i in range(0, n_train, batch)]
    lr = 2e-4
    torch.manual_seed(0)
    proto = create_model(arch, preset=preset)
    vr = caps_of(proto).value_range
    plain = PlainLoop(copy.deepcopy(proto), batches, vr, channels_last=False, lr=lr)
    plain_cl = PlainLoop(copy.deepcopy(proto), batches, vr, channels_last=True, lr=lr)
    total = warmup + steps
    cfg = parse_run_config({
        "name": f"bench-{key}",
        "model": {"name": arch, "preset": preset},
        "data": {"kind": "skimage", "patch_size": size, "batch_size": batch, "num_workers": 0},
        "loss": [{"name": "l1"}],
        "optim": {"name": "adamw", "lr": lr},
        "schedule": {"name": "constant"},
        "train": {"epochs": 1000, "max_steps": total, "n_samples": 0, "val_every_n_epochs": 1000,
                  "early_stopping": {"enabled": False},
                  "checkpoint": {"every_n_epochs": 0, "save_best": False, "save_latest": False}},
        "trainer": {"device": "cpu", "progress_bar": False, "num_threads": threads},
        "tracking": {"enabled": False},
    })

    class Interleave(pl.Callback):
        """After each engine step, one step of each plain loop; their time is left out of the engine's intervals.

        An engine interval runs from the end of the previous callback (or the first batch's start) to the
        end of its step: it includes Lightning's loop, batch transfer, logging, clipping and the optimizer.
        """

        def __init__(self) -> None:
            self.resume: float | None = None
            self.intervals: list[float] = []

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
            if self.resume is None:
                self.resume = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            assert self.resume is not None
            self.intervals.append(time.perf_counter() - self.resume)
            plain.step()
            plain_cl.step()
            self.resume = time.perf_counter()

    spy = Interleave()
    load_before = load_average()
    t0 = time.perf_counter()
    train(cfg, workdir / key, datasets=(train_ds, val_ds), progress_bar=False, callbacks=[spy])
    wall = time.perf_counter() - t0
    load_after = load_average()
    intervals = spy.intervals
    engine_meas, plain_meas, cl_meas = intervals[warmup:], plain.times[warmup:], plain_cl.times[warmup:]
    if not engine_meas:
        raise RuntimeError(f"{key}: the engine ran {len(intervals)} steps, none after the {warmup} warm-up steps")
    med = {k: statistics.median(v) for k, v in (("engine", engine_meas), ("plain", plain_meas), ("plain_cl", cl_meas))}
    return {
        "arch": arch, "preset": preset, "batch": batch, "size": size, "steps_measured": len(engine_meas),
        "warmup_steps": warmup,
        "engine_channels_last": wants_channels_last(proto, "auto", "cpu"),
        "engine_compile": resolve_compile(cfg.trainer.compile, torch.device("cpu")),
        "engine_precision": resolve_precision(cfg, "cpu"),
        "s_per_step": {k: round(v, 4) for k, v in med.items()},
        "steps_per_s": {k: round(1.0 / v, 4) for k, v in med.items()},
        "all_s": {"engine": [round(t, 3) for t in intervals], "plain": [round(t, 3) for t in plain.times],
                  "plain_cl": [round(t, 3) for t in plain_cl.times]},
        "speedup_vs_plain": round(med["plain"] / med["engine"], 3),
        "channels_last_vs_nchw_plain": round(med["plain"] / med["plain_cl"], 3),
        "wall_s": round(wall, 1),
        "load_avg_1m": [load_before, load_after],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--steps", type=int, default=4, help="measured steps per variant")
    ap.add_argument("--warmup", type=int, default=2, help="engine steps not measured")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for every variant (engine: trainer.num_threads); default: PyTorch's")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("MLFLOW_TRACKING_URI", "")
    results: dict[str, Any] = {}
    load0 = load_average()
    with tempfile.TemporaryDirectory(prefix="rk-train-bench-") as tmp:
        for key in args.models.split(","):
            results[key] = bench_model(key, args.steps, args.warmup, args.size, args.batch, Path(tmp), args.threads)
            print(f"{key}: {json.dumps(results[key])}", flush=True)
    out = {
        "benchmark": "training",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**cpu_info(), "python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads()},
        "settings": vars(args),
        "models": results,
        "load_avg_1m": [load0, load_average()],
        "train_speedup_vs_plain": min(r["speedup_vs_plain"] for r in results.values()),
    }
    out["goals"] = {"train_speedup_1.3x": out["train_speedup_vs_plain"] >= 1.3}
    line = json.dumps(out)
    if args.out:
        from restorekit.utils.atomic import atomic_write_text

        atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    print(line)
    return out


if __name__ == "__main__":
    main()
