"""Data pipeline throughput: 256x256 training patches per second from 1280x720 frames.

Measured in one run, on the same synthetic GoPro-style dataset (real photos from
scikit-image resized to 1280x720, the blurred partner made by ``gopro-like``):

(a) the seed project's original approach: decode the full frame with PIL,
    convert the whole frame to a float tensor in [-1, 1], batch full frames,
    random-crop 256x256 (+ flips) in the training loop;
(a2) the seed's current v2 loader: crop + flips + 90-degree rotations inside
    ``__getitem__`` in the PIL domain (``SeedV2Dataset``);
(a3) BasicSR's paired loader approach: ``cv2.imdecode`` to float32, crop and augment
    the float arrays, ``img2tensor`` (``BasicSRPairedDataset``);
(b) restorekit's loader with its defaults (``cache_mb: auto``: decoded images kept per
    worker, so each worker decodes a frame once; the timed patches are the first epoch's
    after the first batch, i.e. the cache is still filling), crop on the uint8 array,
    then float, then augment; and the same with ``cache_mb: 0`` (8-bit PNGs decoded only
    down to the last row the crop needs);
(c) restorekit's loader over packed forms (``restorekit data pack``: a JPEG-q95 folder,
    and LMDB holding JPEG-q95 bytes);

each with 0 and 2 DataLoader workers, from PNG and from JPEG sources; then the
cost of the ``manuscript`` degradation preset per patch, the whole clean+manuscript
pipeline, and how many patches per second one training step of the demo model
(deblur_unet, batch 4, AdamW) consumes on this machine.

Usage: ``python benchmarks/data_pipeline.py [--frames 12] [--patches 48] [--quick]``.
The last line printed is one JSON object (``speedup_vs_seed`` = (b)/(a), ``speedup_vs_seed_v2`` = (b)/(a2),
PNG, 2 workers); the four loaders are interleaved (``--rounds`` rounds, medians).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info, load_average  # noqa: E402

W, H, PATCH, BATCH = 1280, 720, 256, 4


def make_frames(root: Path, n: int) -> tuple[Path, Path, Path]:
    """Write n sharp/blurred 1280x720 pairs as GoPro-style PNG trees (2 scenes), a JPEG copy, and a clean folder."""
    import cv2
    from skimage import data as skd

    from restorekit.degrade import build_degrader
    from restorekit.utils.seed import sample_rng

    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "cat"]
    blur = build_degrader("gopro-like")
    png_root, jpg_root, clean = root / "png", root / "jpg", root / "clean"
    rng = np.random.default_rng(0)
    for i in range(n):
        img = getattr(skd, names[i % len(names)])()[..., :3]
        h, w = img.shape[:2]
        # crop to 16:9 at a random place, resize to 1280x720, add sensor-like grain so PNGs have real entropy
        ch = min(h, int(w * 9 / 16))
        cw = int(ch * 16 / 9)
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        frame = cv2.resize(img[top : top + ch, left : left + cw], (W, H), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
        frame = np.clip(frame + rng.normal(0, 0.012, frame.shape).astype(np.float32), 0, 1)
        blurred, _ = blur(frame, sample_rng(0, i))
        scene = f"GOPR{i % 2:04d}"
        for base, ext, params in ((png_root, ".png", [int(cv2.IMWRITE_PNG_COMPRESSION), 3]), (jpg_root, ".jpg", [int(cv2.IMWRITE_JPEG_QUALITY), 95])):
            for sub, arr in (("sharp", frame), ("blur", blurred)):
                p = base / scene / sub / f"{i:06d}{ext}"
                p.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(p), (arr[..., ::-1] * 255 + 0.5).astype(np.uint8), params)
        clean.mkdir(parents=True, exist_ok=True)
        shutil.copy(png_root / scene / "sharp" / f"{i:06d}.png", clean / f"{i:06d}.png")
    return png_root, jpg_root, clean


# ----------------------------------------------------------------------------- (a) the seed's approach


class SeedFullFrameDataset:
    """The original seed dataset: PIL decode -> full-frame float tensor in [-1, 1] (blur, sharp)."""

    def __init__(self, root: Path) -> None:
        self.pairs = sorted((p, p.parent.parent / "sharp" / p.name) for p in root.glob("*/blur/*"))

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        import torch
        from PIL import Image

        def to_tensor(path: Path) -> torch.Tensor:
            arr = np.asarray(Image.open(path).convert("RGB"))
            t = torch.from_numpy(arr).permute(2, 0, 1).float().div(255)  # torchvision's ToTensor
            return (t - 0.5) / 0.5  # Normalize(0.5, 0.5)

        b, s = self.pairs[i]
        return to_tensor(b), to_tensor(s)


def seed_crop(blur: Any, sharp: Any, gen: Any) -> tuple[Any, Any]:
    """The training-loop crop of the seed: one random 256 window + flips per sample of the batch."""
    import torch

    outs_b, outs_s = [], []
    for b, s in zip(blur, sharp):
        top = int(torch.randint(0, b.shape[1] - PATCH + 1, (1,), generator=gen))
        left = int(torch.randint(0, b.shape[2] - PATCH + 1, (1,), generator=gen))
        pb, ps = b[:, top : top + PATCH, left : left + PATCH], s[:, top : top + PATCH, left : left + PATCH]
        if torch.rand(1, generator=gen) < 0.5:
            pb, ps = pb.flip(2), ps.flip(2)
        if torch.rand(1, generator=gen) < 0.5:
            pb, ps = pb.flip(1), ps.flip(1)
        outs_b.append(pb)
        outs_s.append(ps)
    return torch.stack(outs_b), torch.stack(outs_s)


# ----------------------------------------------------------------------------- (a2) the seed's v2 loader, (a3) BasicSR


class SeedV2Dataset:
    """The seed's current (v2) ``DeblurDataset``: crop and augment inside ``__getitem__``, in the PIL domain.

    PIL decode of both full frames, one synchronized random 256 crop (PIL ``crop``), hflip / vflip
    (50 % each, PIL), a random 90-degree rotation k in {0..3} done as in the seed (to_tensor ->
    ``torch.rot90`` -> to_pil_image), then ToTensor + Normalize(0.5, 0.5) to [-1, 1]. torchvision's
    functions are written out with PIL/numpy/torch (restorekit does not depend on torchvision).
    """

    def __init__(self, root: Path, seed: int = 0) -> None:
        import random

        self.pairs = sorted((p, p.parent.parent / "sharp" / p.name) for p in root.glob("*/blur/*"))
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.pairs)

    @staticmethod
    def _to_tensor(img: Any) -> Any:
        import torch

        return torch.from_numpy(np.asarray(img)).permute(2, 0, 1).float().div(255)

    @staticmethod
    def _to_pil(t: Any) -> Any:
        from PIL import Image

        return Image.fromarray(t.mul(255).byte().permute(1, 2, 0).contiguous().numpy())

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        import torch
        from PIL import Image

        b_path, s_path = self.pairs[i]
        blur, sharp = Image.open(b_path).convert("RGB"), Image.open(s_path).convert("RGB")
        w, h = blur.size
        left, top = self.rng.randint(0, w - PATCH), self.rng.randint(0, h - PATCH)
        box = (left, top, left + PATCH, top + PATCH)
        blur, sharp = blur.crop(box), sharp.crop(box)
        if self.rng.random() > 0.5:
            blur, sharp = blur.transpose(Image.FLIP_LEFT_RIGHT), sharp.transpose(Image.FLIP_LEFT_RIGHT)
        if self.rng.random() > 0.5:
            blur, sharp = blur.transpose(Image.FLIP_TOP_BOTTOM), sharp.transpose(Image.FLIP_TOP_BOTTOM)
        k = self.rng.choice([0, 1, 2, 3])
        if k > 0:
            blur = self._to_pil(torch.rot90(self._to_tensor(blur), k=k, dims=[1, 2]))
            sharp = self._to_pil(torch.rot90(self._to_tensor(sharp), k=k, dims=[1, 2]))
        return (self._to_tensor(blur) - 0.5) / 0.5, (self._to_tensor(sharp) - 0.5) / 0.5


class BasicSRPairedDataset:
    """BasicSR's ``PairedImageDataset`` approach (disk backend): read bytes, ``cv2.imdecode`` the full frames to
    float32 [0, 1] BGR, ``paired_random_crop`` on the float arrays, ``augment`` (hflip, vflip, rot90 as a transpose),
    ``img2tensor`` (BGR -> RGB, HWC -> CHW)."""

    def __init__(self, root: Path, seed: int = 0) -> None:
        self.pairs = sorted((p, p.parent.parent / "sharp" / p.name) for p in root.glob("*/blur/*"))
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.pairs)

    @staticmethod
    def _imfrombytes(content: bytes) -> np.ndarray:
        import cv2

        img = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR)
        return img.astype(np.float32) / 255.0

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        import torch

        lq_path, gt_path = self.pairs[i]
        img_gt = self._imfrombytes(Path(gt_path).read_bytes())
        img_lq = self._imfrombytes(Path(lq_path).read_bytes())
        h, w = img_lq.shape[:2]
        top, left = int(self.rng.integers(0, h - PATCH + 1)), int(self.rng.integers(0, w - PATCH + 1))
        img_lq = img_lq[top : top + PATCH, left : left + PATCH, ...]
        img_gt = img_gt[top : top + PATCH, left : left + PATCH, ...]
        hflip, vflip, rot90 = self.rng.random() < 0.5, self.rng.random() < 0.5, self.rng.random() < 0.5
        out = []
        for img in (img_gt, img_lq):
            if hflip:
                img = img[:, ::-1]
            if vflip:
                img = img[::-1]
            if rot90:
                img = img.transpose(1, 0, 2)
            img = np.ascontiguousarray(img[..., ::-1])  # BGR -> RGB
            out.append(torch.from_numpy(img.transpose(2, 0, 1).copy()).float())
        return out[1], out[0]


# ----------------------------------------------------------------------------- timing


def patches_per_second(batches: Callable[[], Iterable[Any]], n_patches: int, on_batch: Callable[[Any], int]) -> float:
    """Iterate (re-creating the epoch iterator as needed) until n_patches were produced after a warm-up batch."""
    produced, t0 = 0, None
    while produced < n_patches:
        for b in batches():
            k = on_batch(b)
            if t0 is None:  # the first batch pays worker start-up: not counted
                t0 = time.perf_counter()
                continue
            produced += k
            if produced >= n_patches:
                break
    return produced / (time.perf_counter() - t0)


def bench_seed(root: Path, workers: int, n: int) -> float:
    import torch
    from torch.utils.data import DataLoader

    ds = SeedFullFrameDataset(root)
    gen = torch.Generator().manual_seed(0)
    dl = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers, persistent_workers=workers > 0, drop_last=True)

    def on_batch(b: Any) -> int:
        x, y = seed_crop(b[0], b[1], gen)
        return x.shape[0]

    rate = patches_per_second(lambda: dl, n, on_batch)
    del dl
    return rate


def bench_patch_dataset(ds: Any, workers: int, n: int) -> float:
    """Patches per second of a dataset that returns ``(input, target)`` 256 patches (seed v2, BasicSR)."""
    from torch.utils.data import DataLoader

    dl = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers, persistent_workers=workers > 0, drop_last=True)
    rate = patches_per_second(lambda: dl, n, lambda b: int(b[0].shape[0]))
    del dl
    return rate


def bench_restorekit(cfg: dict[str, Any], workers: int, n: int) -> float:
    from restorekit.data import build_datasets, make_loader
    from restorekit.data.config import parse_data_config

    c = parse_data_config({"patch_size": PATCH, "val_fraction": 0.0, "repeat": 4, "check": "header", **cfg})
    train, _ = build_datasets(c, seed=0)
    dl = make_loader(train, batch_size=BATCH, num_workers=workers, seed=0)
    rate = patches_per_second(lambda: dl, n, lambda b: int(b["input"].shape[0]))
    del dl
    return rate


def bench_degrade(preset: str, reps: int = 100) -> float:
    """Milliseconds per 256x256 patch for a degradation preset (single thread)."""
    from skimage import data as skd

    from restorekit.degrade import build_degrader
    from restorekit.utils.seed import sample_rng

    d = build_degrader(preset)
    patch = skd.astronaut()[100:356, 100:356].astype(np.float32) / 255
    for i in range(5):
        d(patch, sample_rng(1, i))
    t = time.perf_counter()
    for i in range(reps):
        d(patch, sample_rng(0, i))
    return (time.perf_counter() - t) / reps * 1000


def bench_train_step(steps: int = 2) -> float:
    """Patches per second consumed by training steps of the demo model (deblur_unet, batch 4, 256x256, AdamW)."""
    import torch

    from restorekit.models.registry import create_model

    model = create_model("deblur_unet").train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=1e-4)
    x = torch.rand(BATCH, 3, PATCH, PATCH) * 2 - 1
    y = torch.rand(BATCH, 3, PATCH, PATCH) * 2 - 1

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.l1_loss(model(x), y)
        loss.backward()
        opt.step()

    step()  # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=12, help="number of 1280x720 frame pairs (default 12)")
    ap.add_argument("--patches", type=int, default=48, help="patches timed per configuration (default 48)")
    ap.add_argument("--quick", action="store_true", help="tiny run (smoke test of the script)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per configuration (medians reported)")
    ap.add_argument("--out", default=None, help="also write the JSON here (atomically)")
    ap.add_argument("--keep", help="keep the generated data in this folder")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.patches = 4, 8

    import torch

    load_before = load_average()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from restorekit.data.pack import pack_dataset

    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rk-bench-data-"))
    res: dict[str, Any] = {"frames": args.frames, "patch": PATCH, "batch": BATCH, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    try:
        print(f"generating {args.frames} frame pairs of {W}x{H} in {tmp} ...", flush=True)
        png, jpg, clean = make_frames(tmp, args.frames)
        t = time.perf_counter()
        pack_dataset(png, tmp / "packed_jpeg", format="jpeg", quality=95)
        res["pack_jpeg_s"] = round(time.perf_counter() - t, 2)
        pack_dataset(png, tmp / "packed_lmdb", format="lmdb", quality=95)
        size = lambda p: sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file())  # noqa: E731
        res["mb_png"] = round(size(png) / 1e6, 1)
        res["mb_jpeg_source"] = round(size(jpg) / 1e6, 1)
        res["mb_packed_jpeg95"] = round(size(tmp / "packed_jpeg") / 1e6, 1)

        rows = []
        for workers in (0, 2):
            for src_name, root in (("png", png), ("jpeg", jpg)):
                # interleaved A B C D A B C D; the medians of the rounds are kept
                runs: dict[str, list[float]] = {"seed": [], "seed_v2": [], "basicsr": [], "restorekit": [],
                                                "restorekit_nocache": []}
                for _ in range(args.rounds):
                    runs["seed"].append(bench_seed(root, workers, args.patches))
                    runs["seed_v2"].append(bench_patch_dataset(SeedV2Dataset(root), workers, args.patches))
                    runs["basicsr"].append(bench_patch_dataset(BasicSRPairedDataset(root), workers, args.patches))
                    runs["restorekit"].append(bench_restorekit({"kind": "gopro", "root": str(root)}, workers, args.patches))
                    runs["restorekit_nocache"].append(
                        bench_restorekit({"kind": "gopro", "root": str(root), "cache_mb": 0}, workers, args.patches))
                med = {k: float(np.median(v)) for k, v in runs.items()}
                a, b = med["seed"], med["restorekit"]
                for k, v in med.items():
                    res[f"{k}_{src_name}_w{workers}"] = round(v, 2)
                rows.append((f"{src_name} w{workers}", a, b))
                print(f"  {src_name:4s} workers={workers}: seed {a:7.1f}  seed v2 {med['seed_v2']:7.1f}  basicsr "
                      f"{med['basicsr']:7.1f}  restorekit {b:7.1f} (no cache {med['restorekit_nocache']:7.1f}) patches/s   "
                      f"x{b / med['seed_v2']:.2f} vs v2", flush=True)
            for pk in ("packed_jpeg", "packed_lmdb"):
                c = bench_restorekit({"kind": "gopro", "root": str(tmp / pk)}, workers, args.patches)
                res[f"restorekit_{pk}_w{workers}"] = round(c, 2)
                print(f"  {pk:11s} workers={workers}: restorekit {c:7.1f} patches/s   x{c / res[f'seed_png_w{workers}']:.2f} vs seed png", flush=True)
            m = bench_restorekit({"kind": "clean", "dir": str(clean), "degrade": "manuscript"}, workers, args.patches)
            res[f"restorekit_clean_manuscript_w{workers}"] = round(m, 2)
            print(f"  clean+manuscript workers={workers}: {m:7.1f} patches/s", flush=True)

        res["manuscript_ms_per_patch"] = round(bench_degrade("manuscript"), 2)
        res["demo_deblur_ms_per_patch"] = round(bench_degrade("demo-deblur"), 2)
        res["gopro_like_ms_per_patch"] = round(bench_degrade("gopro-like", reps=30), 2)
        print(f"  degradation per 256x256 patch: manuscript {res['manuscript_ms_per_patch']} ms, demo-deblur "
              f"{res['demo_deblur_ms_per_patch']} ms, gopro-like {res['gopro_like_ms_per_patch']} ms", flush=True)
        steps = 1 if args.quick else 2
        res["train_step_patches_per_s"] = round(bench_train_step(steps), 2)
        print(f"  demo model (deblur_unet) training consumes {res['train_step_patches_per_s']} patches/s", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    res["speedup_vs_seed"] = round(res["restorekit_png_w2"] / res["seed_png_w2"], 2)
    res["speedup_vs_seed_v2"] = round(res["restorekit_png_w2"] / res["seed_v2_png_w2"], 2)
    res["speedup_vs_basicsr"] = round(res["restorekit_png_w2"] / res["basicsr_png_w2"], 2)
    res["nocache_speedup_vs_seed_v2"] = round(res["restorekit_nocache_png_w2"] / res["seed_v2_png_w2"], 2)
    res["speedup_vs_seed_v2_w0"] = round(res["restorekit_png_w0"] / res["seed_v2_png_w0"], 2)
    res["speedup_vs_seed_w0"] = round(res["restorekit_png_w0"] / res["seed_png_w0"], 2)
    best_packed = max(res["restorekit_packed_jpeg_w2"], res["restorekit_packed_lmdb_w2"])
    res["packed_speedup_vs_seed"] = round(best_packed / res["seed_png_w2"], 2)
    res["pipeline_over_train_step"] = round(res["restorekit_png_w2"] / res["train_step_patches_per_s"], 1)
    print(f"speedup vs seed (PNG, 2 workers): x{res['speedup_vs_seed']}; packed: x{res['packed_speedup_vs_seed']}; "
          f"pipeline supplies {res['pipeline_over_train_step']}x what a training step consumes")
    res["load_avg_1m"] = [load_before, load_average()]
    res["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    res["machine"] = cpu_info()
    res["benchmark"] = "data_pipeline"
    res["goals"] = {"speedup_vs_seed_v2_1.5x": res["speedup_vs_seed_v2"] >= 1.5}
    if args.out:
        from restorekit.utils.atomic import atomic_write_text

        atomic_write_text(args.out, json.dumps(res, indent=1) + "\n")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
