"""`restorekit data`: dataset tools: preview, pack, align."""

from __future__ import annotations

from restorekit.cli._pending import register_pending


def register(sub) -> None:  # noqa: ANN001
    register_pending(sub, "data", "dataset tools: preview, pack, align", "the data issue")
