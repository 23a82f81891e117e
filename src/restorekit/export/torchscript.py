"""TorchScript export by tracing, with restorekit metadata in ``_extra_files``.

The traced module takes the model's own value range; the example input is a
multiple of the size multiple so that no internal padding branch is baked in.
:class:`restorekit.inference.runtime.TorchScriptRuntime` reads the metadata,
pads and converts the value range.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from restorekit.export.onnx import example_inputs
from restorekit.inference.runtime import META_KEY, ModelInfo, model_info
from restorekit.utils.atomic import atomic_path


def trace_module(model: nn.Module, info: ModelInfo | None = None, example_size: int | None = None) -> torch.jit.ScriptModule:
    """``torch.jit.trace`` of a CPU eval copy of ``model`` on deterministic example inputs."""
    info = info or model_info(model)
    m = copy.deepcopy(model).to("cpu").eval()
    size = example_size or info.caps.native_size or max(64, 4 * info.size_multiple)
    step = info.size_multiple * (2 if info.inputs != ["input"] else 1)
    size = ((size + step - 1) // step) * step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            return torch.jit.trace(m, example_inputs(info, size), check_trace=False)


def save_torchscript(model: nn.Module, path: str | Path, info: ModelInfo | None = None) -> Path:
    """Trace ``model`` and write it to ``path`` atomically with ``_extra_files[META_KEY]`` = metadata JSON."""
    info = info or model_info(model)
    traced = trace_module(model, info)
    p = Path(path)
    with atomic_path(p) as tmp:
        torch.jit.save(traced, str(tmp), _extra_files={META_KEY: info.to_json()})
    return p
