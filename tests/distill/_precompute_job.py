"""Subprocess job for the precompute-resume test: a real conv teacher over an image folder, slowed per image.

Usage: python _precompute_job.py INPUT_DIR CACHE_DIR DELAY_S
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from restorekit.distill.cache import folder_items, list_images, precompute_teacher
from restorekit.distill.fingerprint import cache_fingerprint, hash_state_dict, listing_hash


def make_teacher() -> torch.nn.Module:
    """A fixed-seed 3-layer conv net: the same weights in every process."""
    torch.manual_seed(1234)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1)
    )
    return net.eval()


def teacher_fn(net: torch.nn.Module, delay: float):
    def fn(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t = torch.from_numpy(x.transpose(2, 0, 1)).unsqueeze(0)
            y = (t + 0.1 * net(t)).clamp(0, 1)[0].numpy().transpose(1, 2, 0)
        time.sleep(delay)
        return np.ascontiguousarray(y, dtype=np.float32)

    return fn


def fingerprint_for(net: torch.nn.Module, input_dir: Path, degrade: dict | None = None) -> dict:
    return cache_fingerprint(
        teacher=hash_state_dict(net),
        teacher_run={"tile": 0},
        data=listing_hash(list_images(input_dir)),
        degrade=degrade or {"recipe": "none"},
        cache_format={"fmt": "png16"},
    )


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    input_dir, cache_dir, delay = Path(argv[0]), Path(argv[1]), float(argv[2])
    net = make_teacher()
    files = list_images(input_dir)
    res = precompute_teacher(
        teacher_fn(net, delay), folder_items(files), cache_dir, fingerprint_for(net, input_dir),
        progress=lambda done, total, name: print(f"{done}/{total} {name}", flush=True),
    )
    print(f"computed={res.computed} skipped={res.skipped}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
