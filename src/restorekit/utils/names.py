"""File-name helpers shared by every front end that names an output after its input."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(stem: str, *, max_len: int = 80, default: str = "image") -> str:
    """``stem`` reduced to ``[A-Za-z0-9._-]`` (each run of other characters becomes one ``_``).

    Leading dots are dropped (no hidden files, no ``..``), the result is cut to ``max_len``
    characters, and an empty result becomes ``default``. The result never contains a path
    separator, so it is safe to join to an output folder.
    """
    out = _UNSAFE.sub("_", str(stem)).lstrip(".")[:max_len]
    return out or default
