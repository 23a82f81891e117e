"""Named degradation recipes.

``manuscript`` (alias ``manuscript-kaggle``) and ``manuscript-stains`` reproduce the
manuscript-restoration project's Kaggle degradations exactly (order, probabilities and
ranges); ``manuscript-repo`` is its repository's ``utils/dataset_loader.py`` variant
(noise p 0.7 sigma 0.01-0.08, blur p 0.7, contrast p 0.6, salt and pepper p 0.5 before
the fixed tint [1, 0.95, 0.8] at p 0.6, stains p 0.4);
``gopro-like`` imitates GoPro's frame-averaged camera shake; ``div2k-bicubic-x4``
is the bicubic x4 down-up degradation (same size in and out); ``demo-deblur`` is
a moderate blur + noise + JPEG mix (the demo's own degradation is in ``configs/demo.yaml``).
"""

from __future__ import annotations

from typing import Any

#: the manuscript Kaggle recipe: six techniques, applied in this order, then clipped
_MANUSCRIPT_COMMON: list[dict[str, Any]] = [
    {"name": "gaussian_noise", "p": 0.8, "sigma": [0.02, 0.10]},
    {"name": "gaussian_blur", "p": 0.8, "kernel_sizes": [3, 5, 7]},
    {"name": "fade", "p": 0.7, "contrast": [0.5, 0.9], "brightness": [0.05, 0.20]},
    {"name": "yellow_tint", "p": 0.7, "green": [0.90, 0.98], "blue": [0.75, 0.90]},
    {"name": "salt_pepper", "p": 0.5, "amount": [0.001, 0.01]},
]

PRESETS: dict[str, list[dict[str, Any]]] = {
    "manuscript": _MANUSCRIPT_COMMON + [{"name": "jpeg", "p": 0.5, "quality": [60, 90]}],
    # the local variant: stains (1-5 discs, radius 10-50 px, darkened by U(0.3, 0.7)) instead of JPEG
    "manuscript-stains": _MANUSCRIPT_COMMON + [{"name": "stains", "p": 0.5, "count": [1, 5], "radius": [10, 50], "darkness": [0.3, 0.7]}],
    # the seed's Kaggle notebook list (kaggle_training_complete.ipynb), by the name the seed write-up uses
    "manuscript-kaggle": _MANUSCRIPT_COMMON + [{"name": "jpeg", "p": 0.5, "quality": [60, 90]}],
    # the seed repository's utils/dataset_loader.py: applied to the whole page before augmentation and resizing;
    # salt and pepper comes before the fixed tint [1, 0.95, 0.8]
    "manuscript-repo": [
        {"name": "gaussian_noise", "p": 0.7, "sigma": [0.01, 0.08]},
        {"name": "gaussian_blur", "p": 0.7, "kernel_sizes": [3, 5, 7]},
        {"name": "fade", "p": 0.6, "contrast": [0.6, 0.9], "brightness": [0.05, 0.15]},
        {"name": "salt_pepper", "p": 0.5, "amount": [0.001, 0.01]},
        {"name": "yellow_tint", "p": 0.6, "green": [0.95, 0.95], "blue": [0.8, 0.8]},
        {"name": "stains", "p": 0.4, "count": [1, 5], "radius": [10, 50], "darkness": [0.3, 0.7]},
    ],
    # documents beyond the seed: ageing plus ink and paper effects
    "document-aging": [
        {"name": "paper_texture", "p": 0.8},
        {"name": "bleed_through", "p": 0.5},
        {"name": "ink_bleed", "p": 0.5},
        {"name": "fade", "p": 0.7, "contrast": [0.6, 0.95], "brightness": [0.02, 0.15]},
        {"name": "yellow_tint", "p": 0.7},
        {"name": "stains", "p": 0.4, "softness": 0.6, "color": [1.0, 0.92, 0.78]},
        {"name": "gaussian_noise", "p": 0.5, "sigma": [0.005, 0.03]},
        {"name": "jpeg", "p": 0.3, "quality": [60, 95]},
    ],
    # camera shake averaged in linear light, like GoPro's blur_gamma frames
    "gopro-like": [
        {"name": "motion_blur", "p": 1.0, "kind": "trajectory", "length": [7, 31], "angle": [0, 360], "gamma": 2.2},
        {"name": "gaussian_noise", "p": 0.5, "sigma": [0.0, 0.01]},
    ],
    # DIV2K bicubic x4: downscale by 4 with bicubic, upscale back with bicubic
    "div2k-bicubic-x4": [{"name": "resample", "p": 1.0, "scale": 0.25, "down": ["bicubic"], "up": "bicubic"}],
    # a moderate blur + noise + JPEG mix (the demo itself spells its degradation out in configs/demo.yaml)
    "demo-deblur": [
        {
            "name": "one_of",
            "p": 1.0,
            "ops": [
                {"name": "gaussian_blur", "kernel_sizes": [5, 7], "sigma": [0.8, 1.6]},
                {"name": "motion_blur", "kind": "line", "length": [3, 9], "angle": [0, 180]},
            ],
        },
        {"name": "gaussian_noise", "p": 0.8, "sigma": [0.01, 0.03]},
        {"name": "jpeg", "p": 0.5, "quality": [70, 95]},
    ],
}


def list_presets() -> list[str]:
    """Names of the built-in presets."""
    return sorted(PRESETS)
