"""A registry from architecture names to model builders, like timm's ``create_model``.

Builders are registered with :func:`register_model`. :func:`create_model` records
the name and the constructor arguments on the returned module
(``model.restorekit_arch`` / ``model.restorekit_args``) so that a model package
can be written without the caller repeating them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn

from restorekit.errors import ConfigError


@dataclass
class ModelSpec:
    """What the registry knows about an architecture."""

    name: str
    builder: Callable[..., nn.Module]
    description: str = ""
    #: value range the model's inputs and outputs live in: "0,1" or "-1,1"
    value_range: str = "0,1"
    #: spatial size multiple the architecture needs (padding is internal; informational)
    size_multiple: int = 1
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    description: str = "",
    value_range: str = "0,1",
    size_multiple: int = 1,
    presets: dict[str, dict[str, Any]] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``builder`` under ``name``."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = ModelSpec(name, builder, description, value_range, size_multiple, dict(presets or {}))
        return builder

    return deco


def _ensure_builtin() -> None:
    # Importing the package registers the built-in architectures.
    import restorekit.models  # noqa: F401


def list_models() -> list[str]:
    """Names of all registered architectures, sorted."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; unknown names raise :class:`ConfigError` listing the known ones."""
    _ensure_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model '{name}'; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, preset: str | None = None, **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` with ``kwargs`` (optionally starting from a named preset)."""
    spec = get_spec(name)
    args: dict[str, Any] = {}
    if preset is not None:
        if preset not in spec.presets:
            raise ConfigError(f"model '{name}' has no preset '{preset}'; presets: {', '.join(sorted(spec.presets)) or 'none'}")
        args.update(spec.presets[preset])
    args.update(kwargs)
    try:
        model = spec.builder(**args)
    except TypeError as exc:
        raise ConfigError(f"model '{name}': bad constructor arguments {sorted(args)}: {exc}") from exc
    model.restorekit_arch = name  # type: ignore[attr-defined]
    model.restorekit_args = dict(args)  # type: ignore[attr-defined]
    model.restorekit_value_range = spec.value_range  # type: ignore[attr-defined]
    return model
