"""MS-SSIM against an independent implementation (torchmetrics), so that wrong scale weights fail.

torchmetrics' ``multiscale_structural_similarity_index_measure`` uses the same Gaussian window
(11, sigma 1.5) and the standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) of Wang,
Simoncelli and Bovik (2003). Measured agreement on 256x256 photos: within 2e-4; reversing the
weights moves the value by 0.013 (blur) to 0.053 (noise).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm_ms_ssim

from restorekit.losses import build_loss
from restorekit.metrics.functional import ms_ssim_batch


def _pair(photo, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    img = photo("astronaut", 256)
    rng = np.random.default_rng(0)
    if kind == "noise":
        deg = img + 0.08 * rng.standard_normal(img.shape)
    elif kind == "blur":
        deg = cv2.GaussianBlur(img, (0, 0), 2.0)
    else:
        deg = cv2.GaussianBlur(img, (0, 0), 1.0) + 0.03 * rng.standard_normal(img.shape)
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.clip(a, 0, 1), dtype=np.float32)).permute(2, 0, 1)[None]
    return t(deg), t(img)


@pytest.mark.parametrize("kind", ["noise", "blur", "blur+noise"])
def test_ms_ssim_matches_torchmetrics(photo, kind):
    pred, target = _pair(photo, kind)
    ref = float(tm_ms_ssim(pred.double(), target.double(), data_range=1.0, kernel_size=11, sigma=1.5))
    ours = float(ms_ssim_batch(pred, target, 1.0))
    assert ours == pytest.approx(ref, abs=1e-3), (ours, ref)
    # the loss is 1 - MS-SSIM with the same weights
    loss, _ = build_loss([{"name": "ms_ssim", "weight": 1.0}])(pred, target)
    assert float(loss) == pytest.approx(1.0 - ref, abs=1e-3)


def test_the_scale_weights_matter_at_this_tolerance(photo):
    """The comparison above would notice reversed weights (the mutation this guards against)."""
    pred, target = _pair(photo, "noise")
    ours = float(ms_ssim_batch(pred, target, 1.0))
    reversed_w = float(ms_ssim_batch(pred, target, 1.0, weights=(0.1333, 0.2363, 0.3001, 0.2856, 0.0448)))
    assert abs(ours - reversed_w) > 0.01
