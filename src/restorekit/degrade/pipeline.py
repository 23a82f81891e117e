"""A composable degradation pipeline: an ordered list of operations.

``Degrader(ops)(img, rng) -> (degraded, params)`` applies each op with its
probability; ``params`` maps each applied op's name (``name#2`` for a repeat)
to its sampled parameters, ready to log or print on a preview tile.
"""

from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np
from pydantic import TypeAdapter, ValidationError

from restorekit.config.base import format_validation_error
from restorekit.degrade.ops import Op, OpConfig
from restorekit.degrade.presets import PRESETS
from restorekit.errors import ConfigError

#: what a config's ``degrade`` key holds: a preset name or a list of op dicts (or both mixed: a preset name inside the list)
DegradeSpec = Union[str, list[Union[str, OpConfig]]]

_OP_LIST = TypeAdapter(list[OpConfig])


class Degrader:
    """Ordered operations applied to an (H, W, 3) float32 RGB [0, 1] image."""

    def __init__(self, ops: Sequence[Op], name: str | None = None) -> None:
        self.ops = list(ops)
        self.name = name

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """Degrade ``img`` (not modified); returns (float32 [0, 1] image of the same shape, params)."""
        out = np.asarray(img, dtype=np.float32)
        params: dict[str, Any] = {}
        for op in self.ops:
            out, p = op(out, rng)
            if p is not None:
                key, i = op.name, 2
                while key in params:
                    key, i = f"{op.name}#{i}", i + 1
                params[key] = p
        return out, params

    def __len__(self) -> int:
        return len(self.ops)

    def __repr__(self) -> str:
        return f"Degrader({self.name or [op.name for op in self.ops]})"


def expand_spec(spec: DegradeSpec) -> list[dict[str, Any]]:
    """Expand preset names (alone or inside a list) into a list of op dicts."""
    items = [spec] if isinstance(spec, str) else list(spec)
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            if item not in PRESETS:
                raise ConfigError(f"unknown degradation preset '{item}' (known: {', '.join(sorted(PRESETS))})")
            out.extend(dict(d) for d in PRESETS[item])
        elif isinstance(item, Op):
            out.append(item.model_dump())
        else:
            out.append(dict(item))
    return out


def build_degrader(spec: DegradeSpec | Sequence[Op] | Degrader | None) -> Degrader | None:
    """Build a :class:`Degrader` from a preset name, a list of op configs/dicts, or ``None``."""
    if spec is None:
        return None
    if isinstance(spec, Degrader):
        return spec
    if not isinstance(spec, str) and spec and all(isinstance(o, Op) for o in spec):
        return Degrader(list(spec))  # type: ignore[arg-type]
    raw = expand_spec(spec)  # type: ignore[arg-type]
    try:
        ops = _OP_LIST.validate_python(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "data.degrade")) from exc
    return Degrader(ops, name=spec if isinstance(spec, str) else None)
