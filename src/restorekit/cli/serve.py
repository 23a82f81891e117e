"""`restorekit serve`: HTTP service for a model."""

from __future__ import annotations

from restorekit.cli._pending import register_pending


def register(sub) -> None:  # noqa: ANN001
    register_pending(sub, "serve", "HTTP service for a model", "the serving issue")
