"""ONNX export with dynamic batch/height/width and restorekit metadata in ``metadata_props``.

The exported graph takes the model's own value range (see the metadata's
``value_range``) and spatial sizes that are multiples of ``size_multiple``;
:class:`restorekit.inference.runtime.OnnxRuntime` does the conversion and padding.
Single-input models take ``input (B,3,H,W)``; ``nafnet_cond`` takes
``rggb (B,4,h,w)``, ``cond (B,1)``, ``residual (B,3,2h,2w)``.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import torch
import torch.nn as nn

from restorekit.inference.runtime import META_KEY, ModelInfo, model_info

OPSET = 17


def example_inputs(info: ModelInfo, size: int = 64, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Deterministic example inputs in the model's value range for export and verification.

    ``size`` is the full-resolution side (a multiple of the size multiple).
    """
    g = torch.Generator().manual_seed(seed)
    lo, hi = (-1.0, 1.0) if info.value_range == "-1,1" else (0.0, 1.0)
    if info.inputs == ["rggb", "cond", "residual"]:
        h = size // 2
        rggb = torch.rand(batch, 4, h, h, generator=g)
        cond = torch.rand(batch, 1, generator=g)
        residual = torch.rand(batch, 3, size, size, generator=g)
        return rggb, cond, residual
    return (lo + (hi - lo) * torch.rand(batch, 3, size, size, generator=g),)


def _dynamic_axes(info: ModelInfo) -> dict[str, dict[int, str]]:
    if info.inputs == ["rggb", "cond", "residual"]:
        return {
            "rggb": {0: "batch", 2: "half_height", 3: "half_width"},
            "cond": {0: "batch"},
            "residual": {0: "batch", 2: "height", 3: "width"},
            "output": {0: "batch", 2: "height", 3: "width"},
        }
    return {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"}}


def onnx_bytes(model: nn.Module, info: ModelInfo | None = None, *, example_size: int | None = None) -> bytes:
    """Export ``model`` (copied to CPU, eval) to ONNX bytes with dynamic axes and metadata.

    Uses the TorchScript-based exporter (``dynamo=False``): it handles the
    dynamic height/width of these convolutional models reliably. The example
    input is a multiple of the size multiple so no internal padding branch is
    baked into the graph.
    """
    import copy

    import onnx

    info = info or model_info(model)
    m = copy.deepcopy(model).to("cpu").eval()
    size = example_size or max(64, 4 * info.size_multiple)
    size = ((size + info.size_multiple - 1) // info.size_multiple) * info.size_multiple
    if info.inputs == ["rggb", "cond", "residual"]:
        size = ((size + 2 * info.size_multiple - 1) // (2 * info.size_multiple)) * (2 * info.size_multiple)
    args = example_inputs(info, size)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(
                m,
                args,
                buf,
                input_names=list(info.inputs),
                output_names=["output"],
                dynamic_axes=_dynamic_axes(info),
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    proto = onnx.load_from_string(buf.getvalue())
    del proto.metadata_props[:]
    for k, v in {META_KEY: info.to_json(), "value_range": info.value_range, "size_multiple": str(info.size_multiple), "arch": str(info.arch)}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    return proto.SerializeToString()


def read_onnx_metadata(path: Any) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
