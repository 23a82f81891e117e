"""Device selection: CUDA, then MPS, then CPU, unless the user names one."""

from __future__ import annotations

import torch

from restorekit.errors import ConfigError


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device for ``name``.

    ``None``/``"auto"`` picks CUDA when available, else Apple MPS, else CPU.
    ``"cuda"``, ``"cuda:1"``, ``"mps"`` and ``"cpu"`` are honoured when that
    device exists; asking for an absent one raises :class:`ConfigError`.
    The environment variable ``RESTOREKIT_DEVICE`` overrides ``auto``.
    """
    import os

    if isinstance(name, torch.device):
        return name
    if name is None or name == "auto":
        env = os.environ.get("RESTOREKIT_DEVICE")
        if env and env != "auto":
            return resolve_device(env)
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device '{name}' is not a valid device name (use auto, cpu, cuda, cuda:N or mps)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' requested but CUDA is not available in this PyTorch build")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device '{name}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device '{name}' requested but MPS is not available")
    return dev


def lightning_accelerator(name: str | None = "auto") -> str:
    """Map a device name to a Lightning ``accelerator`` string (cpu, gpu, mps)."""
    dev = resolve_device(name)
    return {"cuda": "gpu", "mps": "mps"}.get(dev.type, "cpu")


def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bfloat16 matrices in hardware (Intel AMX-BF16, Sapphire Rapids and newer).

    There oneDNN runs bf16 convolutions and matmuls on the AMX tiles (``benchmarks/memory_format.py`` and
    ``benchmarks/training.py`` measure what that buys; results in docs/benchmarks.md). Without AMX, bf16 is
    emulated or runs on AVX512-BF16 dot products only, which is rarely faster than fp32, so ``False`` keeps fp32.
    ``RESTOREKIT_CPU_BF16=0`` (or ``1``) overrides the detection.
    """
    from restorekit.utils.system import env_flag

    forced = env_flag("RESTOREKIT_CPU_BF16")
    if forced is not None:
        return forced
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except Exception:  # noqa: BLE001 - a private probe; absent or failing means "no"
        return False
