"""Memory format x precision on this CPU, for training and inference, in one interleaved run.

The architecture specs declare which memory format is faster per device
(``Capabilities.channels_last``: ``"cpu"`` for inference, ``"train:cpu"`` for training); this
script is the measurement behind those entries. For the demo U-Net (``deblur_unet``, GroupNorm)
and NAFNet-w32 (depthwise convolutions, LayerNorm2d), with the same weights and inputs:

* **inference**: one forward of a ``--tile`` x ``--tile`` tile under ``torch.inference_mode``,
  NCHW / channels_last, fp32 / bf16 autocast;
* **training**: one AdamW step (forward, L1 backward, foreach update) at ``--train-size``,
  batch ``--batch``, the same four variants (bf16 = autocast around the forward only, as
  ``trainer.precision: bf16-mixed`` does).

Variants run round-robin (A B C D A B C D ...), the first round is a warm-up, medians of the
rest are reported as seconds and as speedups over fp32 NCHW. The spec entries that this
run supports are printed (``recommended``). The last line printed is one JSON object;
``--out`` also writes it. Usage: ``python benchmarks/memory_format.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info, load_average  # noqa: E402

MODELS: dict[str, tuple[str, str | None]] = {"demo_unet": ("deblur_unet", None), "nafnet_w32": ("nafnet", "gopro-w32")}
VARIANTS = ("fp32_nchw", "fp32_cl", "bf16_nchw", "bf16_cl")


def _prepare(model: nn.Module, variant: str) -> nn.Module:
    m = copy.deepcopy(model)
    return m.to(memory_format=torch.channels_last) if variant.endswith("_cl") else m


def _input(x: torch.Tensor, variant: str) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if variant.endswith("_cl") else x.contiguous()


def _autocast(variant: str) -> Any:
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant.startswith("bf16"))


def inference_steps(model: nn.Module, tile: int) -> dict[str, Callable[[], None]]:
    """One callable per variant: a forward of a (1, 3, tile, tile) tile in [-1, 1]."""
    x = torch.rand(1, 3, tile, tile, generator=torch.Generator().manual_seed(0)) * 2 - 1
    steps = {}
    for v in VARIANTS:
        m, xin = _prepare(model, v).eval(), _input(x, v)

        def run(m: nn.Module = m, xin: torch.Tensor = xin, v: str = v) -> None:
            with torch.inference_mode(), _autocast(v):
                m(xin)

        steps[v] = run
    return steps


def training_steps(model: nn.Module, size: int, batch: int) -> dict[str, Callable[[], None]]:
    """One callable per variant: an AdamW step on a fixed (batch, 3, size, size) batch."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(batch, 3, size, size, generator=g) * 2 - 1, torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    steps = {}
    for v in VARIANTS:
        m = _prepare(model, v).train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4, foreach=True)
        xin, yin = _input(x, v), _input(y, v)

        def run(m: nn.Module = m, opt: torch.optim.Optimizer = opt, xin: torch.Tensor = xin, yin: torch.Tensor = yin,
                v: str = v) -> None:
            opt.zero_grad(set_to_none=True)
            with _autocast(v):
                out = m(xin)
            (out.float() - yin).abs().mean().backward()
            opt.step()

        steps[v] = run
    return steps


def round_robin(steps: dict[str, Callable[[], None]], rounds: int) -> dict[str, Any]:
    """Medians (after a warm-up round) of interleaved timings, and speedups over fp32 NCHW."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds + 1):
        for k, fn in steps.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    return {"s": {k: round(v, 4) for k, v in med.items()},
            "speedup_vs_fp32_nchw": {k: round(med["fp32_nchw"] / v, 3) for k, v in med.items()},
            "all_s": {k: [round(t, 4) for t in v] for k, v in times.items()}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--train-size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    from restorekit.device import cpu_has_fast_bf16
    from restorekit.models.registry import create_model
    from restorekit.models.spec import caps_of

    load0 = load_average()
    res: dict[str, Any] = {"benchmark": "memory_format", "settings": vars(args), "threads": torch.get_num_threads(),
                           "cpu_has_fast_bf16": cpu_has_fast_bf16(), "models": {}}
    for key in [k for k in args.models.split(",") if k]:
        arch, preset = MODELS[key]
        torch.manual_seed(0)
        model = create_model(arch, preset=preset)
        inf = round_robin(inference_steps(model, args.tile), args.rounds)
        print(f"{key} inference {args.tile}^2: {inf['s']} -> {inf['speedup_vs_fp32_nchw']}", flush=True)
        tr = round_robin(training_steps(model, args.train_size, args.batch), args.rounds)
        print(f"{key} training {args.batch}x{args.train_size}^2: {tr['s']} -> {tr['speedup_vs_fp32_nchw']}", flush=True)
        caps = caps_of(model)
        res["models"][key] = {
            "arch": arch, "preset": preset, "inference": inf, "training": tr,
            "spec_channels_last": dict(caps.channels_last),
            "recommended": {
                "cpu": inf["s"]["fp32_cl"] < inf["s"]["fp32_nchw"],
                "cpu_bf16": inf["s"]["bf16_cl"] < inf["s"]["bf16_nchw"],
                "train:cpu": tr["s"]["fp32_cl"] < tr["s"]["fp32_nchw"],
                "train:cpu_bf16": tr["s"]["bf16_cl"] < tr["s"]["bf16_nchw"],
            },
        }
    res["load_avg_1m"] = [load0, load_average()]
    res["machine"] = {**cpu_info(), "torch": torch.__version__}
    res["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.out:
        from restorekit.utils.atomic import atomic_write_text

        atomic_write_text(args.out, json.dumps(res, indent=1) + "\n")
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
