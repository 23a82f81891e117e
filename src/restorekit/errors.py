"""Exception types shared by every part of restorekit.

Every error a user can cause (a bad file, a bad setting, a bad checkpoint) is a
:class:`RestoreKitError`; the CLI prints its message and exits with status 2, the
HTTP service turns it into a 4xx answer.
"""

from __future__ import annotations

from pathlib import Path


class RestoreKitError(Exception):
    """Base class of user-facing errors: the message says what is wrong and where."""


class ImageReadError(RestoreKitError):
    """An image file could not be read; ``path`` names the file, ``reason`` the cause."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image '{self.path}': {reason}")


class ImageWriteError(RestoreKitError):
    """An image could not be written to ``path``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot write image '{self.path}': {reason}")


class ConfigError(RestoreKitError):
    """A configuration file or override is invalid; the message names the key."""


class CheckpointError(RestoreKitError):
    """A weight file cannot be loaded (unsafe pickle, unknown layout, missing keys)."""


class DataError(RestoreKitError):
    """A dataset is malformed (missing partners, size mismatches, unreadable files)."""
