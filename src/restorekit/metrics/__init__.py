"""Image-quality metrics under named protocols.

Image level (``(H, W, 3)`` arrays or tensors in [0, 1]): :func:`psnr`, :func:`ssim`,
:func:`ms_ssim`, :func:`mae`, :func:`mse`, :func:`measure`, each taking
``protocol="rgb" | "y" | "basicsr" | "basicsr-y" | "y+crop4" | Protocol(...)``.

Batch level (``(B, C, H, W)`` tensors, for validation loops): :func:`psnr_batch`,
:func:`ssim_batch`, :func:`ms_ssim_batch` -> ``Tensor[B]``; these agree with
scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False)``; :func:`ssim_uniform_batch` (and ``protocol="skimage"`` at
image level) is scikit-image's *default* SSIM (7x7 uniform window, sample covariance), the one the seed
projects report.
"""

from restorekit.metrics.functional import (
    gaussian_kernel1d,
    ms_ssim_batch,
    psnr_batch,
    rgb_to_y,
    ssim_batch,
    ssim_maps,
    ssim_uniform_batch,
    ssim_uniform_maps,
)
from restorekit.metrics.image import PSNR_CAP, cap_psnr, mae, measure, ms_ssim, mse, prepare, psnr, ssim
from restorekit.metrics.protocol import Protocol, resolve_protocol

__all__ = [
    "PSNR_CAP",
    "Protocol",
    "cap_psnr",
    "gaussian_kernel1d",
    "mae",
    "measure",
    "ms_ssim",
    "ms_ssim_batch",
    "mse",
    "prepare",
    "psnr",
    "psnr_batch",
    "resolve_protocol",
    "rgb_to_y",
    "ssim",
    "ssim_batch",
    "ssim_maps",
    "ssim_uniform_batch",
    "ssim_uniform_maps",
]
