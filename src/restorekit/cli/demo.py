"""`restorekit demo`: train the demo deblurring U-Net on bundled photos."""

from __future__ import annotations

from restorekit.cli._pending import register_pending


def register(sub) -> None:  # noqa: ANN001
    register_pending(sub, "demo", "train the demo deblurring U-Net on bundled photos", "the spine issue")
