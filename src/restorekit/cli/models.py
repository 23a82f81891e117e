"""`restorekit models`: list architectures and inspect model files."""

from __future__ import annotations

from restorekit.cli._pending import register_pending


def register(sub) -> None:  # noqa: ANN001
    register_pending(sub, "models", "list architectures and inspect model files", "the model zoo issue")
