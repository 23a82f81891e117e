"""Facts about the machine that several layers size things by (memory)."""

from __future__ import annotations

import os


def env_flag(name: str) -> bool | None:
    """The boolean value of environment variable ``name``: False for ``0``/``false``/``no``/``off`` (any case),
    True for any other non-empty value, None when unset or empty (the caller's default applies)."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    return value not in ("0", "false", "no", "off")


def available_ram() -> int:
    """Available system memory in bytes (MemAvailable on Linux, else total physical, else 8 GiB)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30
