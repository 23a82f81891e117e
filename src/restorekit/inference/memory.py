"""Memory budget and automatic tile size.

``auto_tile_size`` estimates the activation memory of a model per input pixel
with a small probe forward (forward hooks summing the outputs of leaf modules,
halved: in-place ReLUs and freed intermediates make the plain sum an
over-estimate) and returns the largest tile whose batch fits the budget.
Budget: ``RESTOREKIT_TILE_BUDGET_MB`` if set; on CUDA 60 % of free device
memory; on CPU the smaller of 768 MiB and a quarter of available RAM.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any

import torch
import torch.nn as nn
from restorekit.models.spec import arch_of, args_of
from restorekit.utils.system import available_ram

log = logging.getLogger("restorekit.inference")

#: bytes per input pixel assumed when the model cannot be probed (exported files)
DEFAULT_BYTES_PER_PIXEL = 4096
MIN_AUTO_TILE = 128
MAX_AUTO_TILE_CPU = 1024
MAX_AUTO_TILE_GPU = 2048
_BPP_CACHE: dict[str, float] = {}


def memory_budget(device: torch.device) -> int:
    """Bytes of activation memory tiles may use on ``device``."""
    env = os.environ.get("RESTOREKIT_TILE_BUDGET_MB")
    if env:
        return int(float(env) * (1 << 20))
    if device.type == "cuda" and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.6)
    return int(min(768 << 20, available_ram() // 4))


def bytes_per_pixel(model: Any, probe: int = 64) -> float:
    """Estimated peak activation bytes per input pixel of ``model`` (fp32, batch 1).

    ``model`` may be a Runtime: its source module is probed when it has one.
    """
    src = getattr(model, "source_module", None)
    if src is not None:
        model = src
    if not isinstance(model, nn.Module):
        return float(DEFAULT_BYTES_PER_PIXEL)
    key = json.dumps([arch_of(model), args_of(model)],
                     sort_keys=True, default=str)
    if key in _BPP_CACHE:
        return _BPP_CACHE[key]
    total = 0

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += out.numel() * out.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules() if len(list(m.children())) == 0]
    try:
        p = next(iter(model.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
        x = torch.zeros(1, 3, probe, probe, device=dev)
        with torch.inference_mode():
            model(x)
    except Exception as exc:  # noqa: BLE001 - multi-input models etc.: use the default
        log.debug("memory probe failed (%s); assuming %d bytes/pixel", exc, DEFAULT_BYTES_PER_PIXEL)
        total = DEFAULT_BYTES_PER_PIXEL * probe * probe * 2
    finally:
        for h in handles:
            h.remove()
    bpp = max(64.0, 0.5 * total / (probe * probe))
    _BPP_CACHE[key] = bpp
    return bpp


def auto_tile_size(model: Any, device: torch.device, *, batch: int = 1, multiple: int = 1, budget: int | None = None) -> int:
    """Largest square tile (multiple of ``max(multiple, 16)``) whose batch of ``batch`` fits the memory budget."""
    budget = int(budget) if budget else memory_budget(device)
    bpp = bytes_per_pixel(model)
    side = math.sqrt(budget / (bpp * max(1, batch)))
    step = max(16, multiple)
    hi = MAX_AUTO_TILE_GPU if device.type == "cuda" else MAX_AUTO_TILE_CPU
    tile = int(min(hi, max(MIN_AUTO_TILE, side)) // step * step)
    log.debug("auto tile: budget %.0f MiB, %.0f bytes/pixel, batch %d -> tile %d", budget / 2**20, bpp, batch, tile)
    return tile


def fit_batch(model: Any, device: torch.device, tile_h: int, tile_w: int, batch: int, budget: int | None = None) -> int:
    """The largest batch ``<= batch`` whose tiles fit the memory budget (at least 1)."""
    budget = int(budget) if budget else memory_budget(device)
    per_tile = bytes_per_pixel(model) * tile_h * tile_w
    return max(1, min(int(batch), int(budget // max(per_tile, 1.0))))
