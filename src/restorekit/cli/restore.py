"""`restorekit restore`: restore images with a trained model (tiled)."""

from __future__ import annotations

from restorekit.cli._pending import register_pending


def register(sub) -> None:  # noqa: ANN001
    register_pending(sub, "restore", "restore images with a trained model (tiled)", "the inference issue")
