"""The seeds' documented workflows, from the shipped configs, end to end on small real data (issue #13).

Each test runs ``restorekit train configs/<seed>.yaml`` as the README documents it, shrunk by ``--set``
overrides to a few optimiser steps on a tiny data set built from scikit-image photos in the seed's own
layout, then restores a held-out image with the run's package through ``load_restorer`` and checks the
numbers that matter: the run's recorded validation scores, the package's arguments, and that the model
output is a finite image of the input's size that differs from a do-nothing model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from restorekit.cli.main import main
from restorekit.io import write_image

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SMALL = ["train.epochs=1", "train.max_steps=3", "data.num_workers=0", "tracking.enabled=false",
         "data.batch_size=2", "data.val_batch_size=1"]


def _blur(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(img, (0, 0), 1.5).astype(np.float32)


def _check_run(run: Path, sample: np.ndarray, arch: str) -> None:
    from restorekit.inference import load_restorer

    hist = json.loads((run / "training_history.json").read_text())["epochs"]
    assert hist and hist[-1]["global_step"] >= 1
    assert all(np.isfinite(h["val_psnr"]) and np.isfinite(h["val_input_psnr"]) for h in hist)
    r = load_restorer(run / "model.safetensors", tile=0, device="cpu")
    assert r.arch == arch
    x = torch.from_numpy(sample).permute(2, 0, 1)[None]
    y = r(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert float((y - x).abs().mean()) > 1e-4  # the trained network is not the identity


def test_deblurring_seed_workflow(tmp_path: Path, photo) -> None:
    """configs/deblur-unet.yaml on a GoPro-layout folder (root/<scene>/{blur,sharp}/*.png)."""
    root = tmp_path / "GOPRO_Large"
    for split, names in (("train", ("astronaut", "coffee", "rocket")), ("test", ("chelsea",))):
        for i, name in enumerate(names):
            sharp = photo(name, 96)
            write_image(root / split / "GOPR0001" / "sharp" / f"{i:06d}.png", sharp)
            write_image(root / split / "GOPR0001" / "blur" / f"{i:06d}.png", _blur(sharp))
    run = tmp_path / "run"
    rc = main(["train", str(CONFIGS / "deblur-unet.yaml"), "--out", str(run),
               "--set", f"data.root={root / 'train'}", "--set", f"data.val_dir={root / 'test'}",
               "--set", "data.patch_size=64", "--set", "data.val_patch=64", "--set", "model.args.base_ch=8",
               *[a for s in SMALL for a in ("--set", s)]])
    assert rc == 0
    cfg = json.loads(json.dumps(__import__("yaml").safe_load((run / "config.yaml").read_text())))
    assert cfg["loss"][0]["name"] == "ms_ssim" and cfg["optim"]["name"] == "adamw"  # the seed's recipe ran
    _check_run(run, _blur(photo("chelsea", 96)), "deblur_unet")


def test_manuscript_seed_workflow(tmp_path: Path, photo) -> None:
    """configs/manuscript-vit.yaml on a folder of clean pages: resized to 256, degraded, then cropped."""
    pages = tmp_path / "clean"
    for name in ("text", "page", "camera", "coins"):
        write_image(pages / f"{name}.png", photo(name, 300)[:300, :220])
    run = tmp_path / "run"
    rc = main(["train", str(CONFIGS / "manuscript-vit.yaml"), "--out", str(run),
               "--set", f"data.dir={pages}", "--set", "data.val_fraction=0.25", "--set", "data.patch_size=64",
               "--set", "data.val_patch=64", "--set", "model.args.embed_dim=32", "--set", "model.args.depth=1",
               "--set", "model.args.num_heads=2", "--set", "model.args.img_size=64", "--set", "model.args.patch_size=16",
               "--set", "loss=[{name: l1, weight: 1.0}]",
               *[a for s in SMALL for a in ("--set", s)]])
    assert rc == 0
    split = json.loads((run / "split.json").read_text())
    assert len(split["val"]) == 1 and len(split["train"]) == 3
    _check_run(run, photo("text", 300)[:128, :96], "vit_restorer")
