"""`restorekit distill`: distill a teacher into a small student."""

from __future__ import annotations

from restorekit.cli._pending import register_pending


def register(sub) -> None:  # noqa: ANN001
    register_pending(sub, "distill", "distill a teacher into a small student", "the distillation issue")
