"""Synthetic degradations: composable operations, presets, a pipeline.

>>> from restorekit.degrade import build_degrader
>>> from restorekit.utils.seed import sample_rng
>>> deg = build_degrader("manuscript")
>>> degraded, params = deg(clean, sample_rng(seed, epoch, index))  # doctest: +SKIP
"""

from restorekit.degrade.ops import (
    OPS,
    BleedThrough,
    DefocusBlur,
    Fade,
    GaussianBlur,
    GaussianNoise,
    InkBleed,
    Jpeg,
    MotionBlur,
    OneOf,
    Op,
    OpConfig,
    PaperTexture,
    PoissonGaussianNoise,
    Resample,
    SaltPepper,
    Stains,
    YellowTint,
    disk_kernel,
    jpeg_roundtrip,
    line_kernel,
    trajectory_kernel,
)
from restorekit.degrade.pipeline import Degrader, DegradeSpec, build_degrader, expand_spec
from restorekit.degrade.presets import PRESETS, list_presets

__all__ = [
    "OPS",
    "PRESETS",
    "BleedThrough",
    "DefocusBlur",
    "DegradeSpec",
    "Degrader",
    "Fade",
    "GaussianBlur",
    "GaussianNoise",
    "InkBleed",
    "Jpeg",
    "MotionBlur",
    "OneOf",
    "Op",
    "OpConfig",
    "PaperTexture",
    "PoissonGaussianNoise",
    "Resample",
    "SaltPepper",
    "Stains",
    "YellowTint",
    "build_degrader",
    "disk_kernel",
    "expand_spec",
    "jpeg_roundtrip",
    "line_kernel",
    "list_presets",
    "trajectory_kernel",
]
