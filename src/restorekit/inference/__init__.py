"""restorekit.inference: the :class:`Restorer` and the runtimes it runs models with.

``load_restorer(path, **options)`` -> a :class:`Restorer` for any model file;
``restorer(x)`` maps ``(B, 3, H, W)`` in [0, 1] to ``(B, 3, H, W)`` in [0, 1] with
tiling, padding, TLC and the runtime handled inside. :class:`RestoreOptions` is
the one validated set of options every front end uses. ``restore_image`` and
``restore_tensor`` are thin calls into the Restorer; ``make_runtime`` builds an
eager / compiled / ONNX Runtime / TorchScript runtime.
"""

from restorekit.inference.core import plan_tile, resolve_plan
from restorekit.inference.ensemble import ensemble_forward
from restorekit.inference.memory import auto_tile_size, memory_budget
from restorekit.inference.options import BACKENDS, RestoreOptions
from restorekit.inference.restorer import Restorer, image_to_chw, load_restorer, restore_image, restore_tensor
from restorekit.inference.runtime import (
    ModelInfo,
    OnnxRuntime,
    Runtime,
    TorchRuntime,
    TorchScriptRuntime,
    exported_kind,
    make_runtime,
    model_info,
)
from restorekit.inference.tiling import axis_plan, resolve_overlap, tile_starts, tile_window

__all__ = [
    "BACKENDS",
    "ModelInfo",
    "OnnxRuntime",
    "RestoreOptions",
    "Restorer",
    "Runtime",
    "TorchRuntime",
    "TorchScriptRuntime",
    "auto_tile_size",
    "axis_plan",
    "ensemble_forward",
    "exported_kind",
    "image_to_chw",
    "load_restorer",
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
