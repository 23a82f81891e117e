"""restorekit.inference: tiled restoration of any image size, on CPU or GPU, through several runtimes.

``restore_image(model, image, tile="auto", overlap=32, blend="linear", ...)`` ->
``(H, W, 3)`` float32 in [0, 1]; ``restore_tensor`` for ``(1, 3, H, W)`` tensors;
``make_runtime`` for eager / compiled / ONNX Runtime / TorchScript execution.
"""

from restorekit.inference.core import plan_tile, resolve_plan, restore_image, restore_tensor
from restorekit.inference.ensemble import ensemble_forward
from restorekit.inference.memory import auto_tile_size, memory_budget
from restorekit.inference.runtime import (
    ModelInfo,
    OnnxRuntime,
    Runtime,
    TorchRuntime,
    TorchScriptRuntime,
    make_runtime,
    model_info,
)
from restorekit.inference.tiling import axis_plan, resolve_overlap, tile_starts, tile_window

__all__ = [
    "ModelInfo",
    "OnnxRuntime",
    "Runtime",
    "TorchRuntime",
    "TorchScriptRuntime",
    "auto_tile_size",
    "axis_plan",
    "ensemble_forward",
    "make_runtime",
    "memory_budget",
    "model_info",
    "plan_tile",
    "resolve_overlap",
    "resolve_plan",
    "restore_image",
    "restore_tensor",
    "tile_starts",
    "tile_window",
]
