"""`restorekit ui`: Streamlit web app."""

from __future__ import annotations

from restorekit.cli._pending import register_pending


def register(sub) -> None:  # noqa: ANN001
    register_pending(sub, "ui", "Streamlit web app", "the serving issue")
