"""`restorekit export`: export a model to ONNX, TorchScript or safetensors."""

from __future__ import annotations

from restorekit.cli._pending import register_pending


def register(sub) -> None:  # noqa: ANN001
    register_pending(sub, "export", "export a model to ONNX, TorchScript or safetensors", "the inference issue")
