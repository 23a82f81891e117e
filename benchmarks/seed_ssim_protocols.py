"""Write docs/results/seed_ssim_protocols.json: scikit-image default SSIM vs restorekit's `skimage` and `rgb` protocols.

Three real photos from skimage.data (96x128 crops), degraded by a small box blur plus Gaussian noise sigma 0.04.
Run: .venv/bin/python benchmarks/seed_ssim_protocols.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from skimage import data
from skimage.metrics import structural_similarity

from restorekit.metrics import ssim
from restorekit.utils.atomic import atomic_path

rng = np.random.default_rng(0)
rows = []
for name in ("astronaut", "chelsea", "coffee"):
    t = getattr(data, name)()[:96, :128, :3].astype(np.float64) / 255.0
    f = 0.5 * t + 0.25 * (np.roll(t, 1, 0) + np.roll(t, 1, 1))
    d = np.round(np.clip(f + rng.normal(0, 0.04, f.shape), 0, 1) * 255) / 255
    rows.append({"photo": name, "skimage_default": structural_similarity(t, d, channel_axis=-1, data_range=1.0),
                 "protocol_skimage": ssim(d, t, "skimage"), "protocol_rgb_gaussian": ssim(d, t, "rgb")})
out = Path(__file__).resolve().parents[1] / "docs" / "results" / "seed_ssim_protocols.json"
with atomic_path(out) as tmp:
    tmp.write_text(json.dumps({"images": rows}, indent=2))
print(json.dumps(rows, indent=2))
