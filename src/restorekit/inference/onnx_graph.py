"""ONNX graphs built from a module: used by ONNX Runtime inference and by ``restorekit export``.

The graph takes the model's own value range and spatial sizes that are
multiples of its size multiple (the runtime converts and pads). Inputs are the
architecture's declared inputs (``input (B,3,H,W)``; a raw model:
``rggb (B,4,h,w)``, ``cond (B,K)``, ``residual (B,3,2h,2w)``), with dynamic
batch and spatial axes, and restorekit metadata in ``metadata_props``.
"""

from __future__ import annotations

import io
import warnings

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
    shapes = {
        "input": (batch, 3, size, size),
        "residual": (batch, 3, size, size),
        "rggb": (batch, 4, size // 2, size // 2),
        "cond": (batch, int(info.arch_args.get("cond_input", 1))),
    }
    out = []
    for name in info.inputs:
        t = torch.rand(*shapes[name], generator=g)
        out.append(lo + (hi - lo) * t if name in ("input", "residual") else t)
    return tuple(out)


def dynamic_axes(info: ModelInfo) -> dict[str, dict[int, str]]:
    axes = {"input": {0: "batch", 2: "height", 3: "width"}, "residual": {0: "batch", 2: "height", 3: "width"},
            "rggb": {0: "batch", 2: "half_height", 3: "half_width"}, "cond": {0: "batch"}}
    return {**{n: axes[n] for n in info.inputs}, "output": {0: "batch", 2: "height", 3: "width"}}


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
    # models with a native size only ever run at it: trace there (their resize branch is then the identity)
    size = example_size or info.caps.native_size or max(64, 4 * info.size_multiple)
    size = ((size + info.size_multiple - 1) // info.size_multiple) * info.size_multiple
    if "rggb" in info.inputs:
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
                dynamic_axes=dynamic_axes(info),
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
