"""Facts about the machine that several layers size things by (memory)."""

from __future__ import annotations

import os


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
