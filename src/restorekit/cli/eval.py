"""`restorekit eval`: score restored images or a model against baselines."""

from __future__ import annotations

from restorekit.cli._pending import register_pending


def register(sub) -> None:  # noqa: ANN001
    register_pending(sub, "eval", "score restored images or a model against baselines", "the losses and metrics issue")
