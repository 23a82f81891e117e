"""ONNX export with dynamic batch/height/width and restorekit metadata in ``metadata_props``.

The exported graph takes the model's own value range (see the metadata's
``value_range``) and spatial sizes that are multiples of ``size_multiple``;
:class:`restorekit.inference.runtime.OnnxRuntime` does the conversion and padding.
Single-input models take ``input (B,3,H,W)``; ``nafnet_cond`` takes
``rggb (B,4,h,w)``, ``cond (B,1)``, ``residual (B,3,2h,2w)``.
"""

from __future__ import annotations

from typing import Any

from restorekit.inference.onnx_graph import OPSET, dynamic_axes, example_inputs, onnx_bytes

__all__ = ["OPSET", "dynamic_axes", "example_inputs", "onnx_bytes", "read_onnx_metadata"]


def read_onnx_metadata(path: Any) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
