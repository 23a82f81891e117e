"""A short training of nafnet_cond on synthetic raw scenes beats the noisy input at every ISO."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

ISOS = (1600, 3200, 6400)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


@pytest.mark.slow
def test_short_training_improves_psnr_at_every_iso(tmp_path, photo):
    from restorekit.data.dataset import collate
    from restorekit.losses import build_loss
    from restorekit.models.registry import create_model
    from restorekit.raw.config import RawDataConfig
    from restorekit.raw.dataset import build_raw_datasets, per_iso_summary
    from restorekit.raw.unprocess import make_synthetic_scenes

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is several times faster than two on a busy machine
    try:
        torch.manual_seed(0)
        photos = [(n, photo(n, 192)) for n in ("astronaut", "coffee", "chelsea", "rocket")]
        make_synthetic_scenes(tmp_path, photos, isos=(100,) + ISOS, seed=0)
        cfg = RawDataConfig(root=str(tmp_path), patch_size=64, val_patch=128, val_fraction=0.25, repeat=4, cache=True)
        train, val = build_raw_datasets(cfg, seed=0)
        assert sorted({p.iso for p in val.pairs}) == list(ISOS)
        model = create_model("nafnet_cond", chans=[16, 32, 64, 64], enc_blk_nums=[1, 1, 1], middle_blk_num=1,
                             dec_blk_nums=[1, 1, 1])
        # start from the identity (output = demosaiced noisy input): only the residual head is zeroed
        torch.nn.init.zeros_(model.ending.weight)
        torch.nn.init.zeros_(model.ending.bias)
        loss_fn = build_loss([{"name": "l1", "weight": 1.0}])
        steps, batch = 200, 4
        opt = torch.optim.Adam(model.parameters(), lr=5e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=5e-5)
        step, epoch = 0, 0
        while step < steps:
            train.set_epoch(epoch)
            order = np.random.default_rng(epoch).permutation(len(train))
            for k in range(0, len(order) - batch + 1, batch):
                b = collate([train[int(i)] for i in order[k : k + batch]])
                loss, _ = loss_fn(model(b["rggb"], b["cond"], b["residual"]), b["target"])
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                step += 1
                if step == steps:
                    break
            epoch += 1
        model.eval()
        rows = []
        with torch.no_grad():
            for i in range(len(val)):
                b = collate([val[i]])
                out = model(b["rggb"], b["cond"], b["residual"]).clamp(0, 1)
                rows.append({"iso": b["iso"][0], "psnr_in": _psnr(b["input"], b["target"]), "psnr_out": _psnr(out, b["target"])})
        summary = per_iso_summary(rows)
        print("per-ISO PSNR (noisy -> restored):", {k: (round(v["psnr_in"], 2), round(v["psnr_out"], 2)) for k, v in summary.items()})
        for iso, s in summary.items():
            assert s["psnr_out"] > s["psnr_in"] + 0.3, (iso, s)
    finally:
        torch.set_num_threads(threads)
