"""`restorekit train`: train a model from a YAML config."""

from __future__ import annotations

from restorekit.cli._pending import register_pending


def register(sub) -> None:  # noqa: ANN001
    register_pending(sub, "train", "train a model from a YAML config", "the spine issue")
