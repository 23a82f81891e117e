"""The architecture registry, like timm's ``create_model``/``list_models``.

Architectures register an :class:`~restorekit.models.spec.ArchSpec` with
:func:`register_model` in their own file. :func:`create_model` validates the
arguments against the builder's signature, builds the module and attaches a
:class:`~restorekit.models.spec.ModelCard` (read back with
:func:`~restorekit.models.spec.card_of`) so that a model package can be written
without the caller repeating the name and the arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch.nn as nn

from restorekit.models.spec import ArchSpec, Capabilities, CapabilitiesFn, ModelCard, Tensors, set_card
from restorekit.registry import Registry


def _load_builtin() -> None:
    # Importing the package registers the built-in architectures.
    import restorekit.models  # noqa: F401


#: every registered architecture, by name
MODELS: Registry[ArchSpec] = Registry("model", loader=_load_builtin)


def register_model(
    name: str,
    *,
    description: str = "",
    presets: dict[str, dict[str, Any]] | None = None,
    detect: Callable[[Tensors], bool] | None = None,
    infer: Callable[[Tensors], dict[str, Any]] | None = None,
    from_checkpoint: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    capabilities: CapabilitiesFn | Capabilities | None = None,
    priority: int = 0,
    convert_state: Callable[[Tensors], Tensors] | None = None,
    from_sidecar: Callable[[Path], dict[str, Any]] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``builder`` under ``name`` with its spec (see :class:`ArchSpec`)."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        spec = ArchSpec(
            name=name, builder=builder, description=description, presets=dict(presets or {}), detect=detect,
            infer=infer, from_checkpoint=from_checkpoint, capabilities=capabilities or Capabilities(), priority=priority,
            convert_state=convert_state, from_sidecar=from_sidecar,
        )
        MODELS.register(name, spec, replace=True)
        return builder

    return deco


def list_models() -> list[str]:
    """Names of all registered architectures, sorted."""
    return MODELS.names()


def get_spec(name: str) -> ArchSpec:
    """The :class:`ArchSpec` of ``name``; unknown names raise ConfigError listing the known ones."""
    return MODELS.get(name)


def create_model(name: str, preset: str | None = None, **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` with ``kwargs`` (optionally starting from a named preset).

    Arguments are validated first: an unknown or mistyped one raises
    :class:`~restorekit.errors.ConfigError` naming it. The module carries a
    :class:`ModelCard` with the arguments it was built with.
    """
    spec = get_spec(name)
    args = spec.resolve_args(preset, **kwargs)
    model = spec.build(args)
    return set_card(model, ModelCard(arch=name, args=dict(args), value_range=spec.caps(args).value_range))
