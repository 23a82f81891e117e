"""Atomic file writes: write to a temporary file in the destination folder, then rename.

A reader (or a resumed run) never sees a half-written file: either the old file
or the complete new one is there. ``os.replace`` is atomic on POSIX and Windows
when source and destination are on the same filesystem, which a sibling
temporary file guarantees.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success rename it onto ``dest``.

    The temporary name keeps ``dest``'s extension (or ``suffix``) so that
    libraries choosing a format by extension (Pillow, OpenCV) still work. On any
    exception the temporary file is removed and ``dest`` is left untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ext = suffix if suffix is not None else dest.suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".tmp{ext}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # flush the data to disk before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp, _final_mode(dest))
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _final_mode(dest: Path) -> int:
    """Mode the file would have had if written directly: the existing file's, else 0o666 minus umask.

    ``mkstemp`` creates files readable by the owner only (0o600); without this every output
    written atomically would be unreadable by other users.
    """
    try:
        return dest.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_bytes(dest: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``dest`` atomically and return ``dest`` as a Path."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def atomic_write_text(dest: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``dest`` atomically."""
    return atomic_write_bytes(dest, text.encode(encoding))


def atomic_write_json(dest: str | Path, obj: Any, indent: int = 2) -> Path:
    """Serialise ``obj`` as JSON (non-finite floats written as null-free strings) atomically."""
    return atomic_write_text(dest, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def check_writable_folder(folder: str | Path, option: str, *, what: str | None = None) -> Path:
    """Create ``folder`` and check a file can be written in it, before any work.

    Raises :class:`~restorekit.errors.ConfigError` naming ``option`` (e.g. ``--out``) and the path
    (``what``, default the folder) when a parent is a plain file or the folder is not writable.
    """
    from restorekit.errors import ConfigError

    folder = Path(folder)
    label = f"{option} '{what if what is not None else folder}'"
    for parent in (folder, *folder.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{label}: '{parent}' is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".restorekit-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{label}: its folder is not writable ({exc.strerror or exc})") from None
    return folder
