#!/usr/bin/env python3
"""Compare demo model candidates by what a CPU-minute buys: steps/s and held-out PSNR after the same wall time.

Usage (run candidates side by side, one thread each, so that they share the same machine load)::

    .venv/bin/python benchmarks/demo_candidates.py naf16_p96b4 150 &
    .venv/bin/python benchmarks/demo_candidates.py unet32_p64b4 150 &

Each run trains the candidate on the demo's training photos and degradation (``restorekit.demo.DEMO_CONFIG``)
for ``seconds`` of wall time (AdamW, cosine over the time, L1, grad clip 1), then scores 192x192 centre crops
of five held-out photos, two seeded degradations each, and prints one JSON line.
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
import torch

CANDIDATES = {
    "unet32_p64b4": ("deblur_unet", {"base_ch": 32, "norm": "group", "residual": True}, 64, 4),
    "unet16_p96b8": ("deblur_unet", {"base_ch": 16, "norm": "group", "residual": True}, 96, 8),
    "naf16_p96b4": ("nafnet", {"width": 16, "enc_blk_nums": [1, 1, 1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1]}, 96, 4),
}
VAL = ["coffee", "rocket", "chelsea", "camera", "coins"]


def main() -> None:
    name, seconds = sys.argv[1], float(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    lr = float(sys.argv[4]) if len(sys.argv) > 4 else 2e-3
    torch.set_num_threads(threads)
    from skimage.metrics import peak_signal_noise_ratio as psnr

    from restorekit.data import build_datasets, collate
    from restorekit.data.config import parse_data_config
    from restorekit.data.sources import SkimageRef
    from restorekit.degrade.pipeline import build_degrader
    from restorekit.demo import DEMO_CONFIG
    from restorekit.models import create_model
    from restorekit.training.forward import predict01
    from restorekit.utils.seed import sample_rng

    arch, args, patch, batch = CANDIDATES[name]
    deg_spec = DEMO_CONFIG["data"]["degrade"]
    train_names = [n for n in DEMO_CONFIG["data"]["names"] if n not in VAL]
    torch.manual_seed(0)
    model = create_model(arch, **args)
    cfg = parse_data_config({"kind": "skimage", "names": train_names, "val_names": VAL[:1], "patch_size": patch,
                             "batch_size": batch, "repeat": 50, "degrade": deg_spec})
    train_ds, _ = build_datasets(cfg, seed=0)
    deg = build_degrader(deg_spec)
    vals = []
    for i, v in enumerate(VAL):
        img = SkimageRef(v).load().astype(np.float32) / 255
        h, w = img.shape[:2]
        c = 192
        img = np.ascontiguousarray(img[(h - c) // 2:(h - c) // 2 + c, (w - c) // 2:(w - c) // 2 + c])
        for d in range(2):
            x, _ = deg(img, sample_rng(7, "v", i, d))
            vals.append((x, img))
    loader = torch.utils.data.DataLoader(train_ds, batch_size=batch, shuffle=True, collate_fn=collate)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    t0, step, it = time.time(), 0, iter(loader)
    while (el := time.time() - t0) < seconds:
        warm = min(1.0, (step + 1) / 20)
        for g in opt.param_groups:
            g["lr"] = warm * (1e-5 + 0.5 * (lr - 1e-5) * (1 + math.cos(math.pi * el / seconds)))
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        loss = (predict01(model, b) - b["target"]).abs().mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
    model.eval()
    with torch.no_grad():
        out = [predict01(model, torch.from_numpy(x).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy() for x, _ in vals]
    print(json.dumps({
        "cand": name, "seconds": seconds, "threads": threads, "steps": step, "steps_per_s": round(step / seconds, 3),
        "pixels_per_s": round(step * batch * patch * patch / seconds), "params": sum(p.numel() for p in model.parameters()),
        "input_psnr": round(float(np.mean([psnr(t, x, data_range=1) for x, t in vals])), 3),
        "psnr": round(float(np.mean([psnr(t, y, data_range=1) for y, (_, t) in zip(out, vals)])), 3), "lr": lr,
    }))


if __name__ == "__main__":
    main()
