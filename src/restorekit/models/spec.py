"""Architecture specs: what restorekit knows about a network, declared beside its ``nn.Module``.

Every architecture file registers one :class:`ArchSpec` (through
:func:`restorekit.models.registry.register_model`) holding

* its **builder** and the builder's typed arguments (a pydantic model derived from
  the builder's signature, so ``model.args.bogus=1`` fails naming the key before any
  work starts), plus named **presets**;
* how to **recognise** its state dict (:attr:`ArchSpec.detect`) and **infer** its
  constructor arguments from tensor shapes (:attr:`ArchSpec.infer`), and optionally
  how to read arguments the shapes cannot reveal from a checkpoint's own metadata
  (:attr:`ArchSpec.from_checkpoint`, e.g. a ViT's head count from its ``config``);
* its **capabilities** (:class:`Capabilities`) for given arguments: value range, size
  multiple, inputs, whether TLC applies, a native size, whether tiling changes the
  result, the memory format that is fastest per device.

Nothing outside the architecture's own file tests its name: inference, export,
serving and training read capabilities (spandrel's descriptors work the same way).
A module built by the registry carries a :class:`ModelCard` (architecture name,
arguments, value range, training size, source), read with :func:`card_of`.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from pydantic import ConfigDict, ValidationError, create_model

from restorekit.errors import ConfigError

Tensors = dict[str, torch.Tensor]

#: the only attribute restorekit sets on a module: its :class:`ModelCard`
CARD_ATTR = "restorekit_card"


@dataclass(frozen=True)
class Capabilities:
    """What inference and training need to know about one configured architecture.

    ``value_range``: range of the model's image inputs and outputs, ``"0,1"`` or ``"-1,1"``.
    ``size_multiple``: inputs are padded (reflect) to a multiple of this before the forward pass.
    ``inputs``: names of the forward arguments; ``("input",)`` for RGB restorers, e.g.
    ``("rggb", "cond", "residual")`` for a noise-conditioned raw model.
    ``tlc``: the test-time local converter applies (global channel-attention pools).
    ``native_size``: the model only works at this square size (a ViT's ``img_size``):
    tiles are exactly this size.
    ``global_context``: outputs depend on statistics over the whole input (GroupNorm,
    transposed attention), so tiled results differ from whole-image results; tiles are
    made as large as memory allows.
    ``channels_last``: per device type (``"cpu"``, ``"cuda"``, ``"mps"``), whether
    ``torch.channels_last`` is the faster memory format, measured per architecture
    (``benchmarks/memory_format.py``); an optional ``"train:<device>"`` entry overrides it
    for training.
    ``exportable``: ONNX/TorchScript export is supported for this configuration.
    """

    value_range: str = "0,1"
    size_multiple: int = 1
    inputs: tuple[str, ...] = ("input",)
    tlc: bool = False
    native_size: int | None = None
    global_context: bool = False
    channels_last: dict[str, bool] = field(default_factory=lambda: {"cpu": True, "cuda": True, "mps": False})
    exportable: bool = True

    @property
    def rgb(self) -> bool:
        """True when the model maps one ``(B, 3, H, W)`` image batch to another."""
        return self.inputs == ("input",)

    def prefers_channels_last(self, device: torch.device | str) -> bool:
        """Whether channels-last is the faster memory format on ``device``."""
        kind = torch.device(device).type
        return bool(self.channels_last.get(kind, False))

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (stored in exported files)."""
        return {
            "value_range": self.value_range,
            "size_multiple": self.size_multiple,
            "inputs": list(self.inputs),
            "tlc": self.tlc,
            "native_size": self.native_size,
            "global_context": self.global_context,
            "channels_last": dict(self.channels_last),
            "exportable": self.exportable,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Capabilities":
        """Inverse of :meth:`to_json`; unknown keys are ignored (newer files)."""
        base = cls()
        return cls(
            value_range=str(d.get("value_range", base.value_range)),
            size_multiple=max(1, int(d.get("size_multiple", 1) or 1)),
            inputs=tuple(d.get("inputs") or base.inputs),
            tlc=bool(d.get("tlc", False)),
            native_size=int(d["native_size"]) if d.get("native_size") else None,
            global_context=bool(d.get("global_context", False)),
            channels_last=dict(d.get("channels_last") or base.channels_last),
            exportable=bool(d.get("exportable", True)),
        )


CapabilitiesFn = Callable[[dict[str, Any]], Capabilities]


def _args_model(name: str, builder: Callable[..., nn.Module]) -> type:
    """A strict pydantic model of ``builder``'s keyword arguments (types from its annotations)."""
    try:
        hints = typing.get_type_hints(builder)
    except Exception:  # noqa: BLE001 - unresolvable annotations: accept any value for those
        hints = {}
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(builder).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        ann = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (ann, default)
    return create_model(  # type: ignore[call-overload]
        f"{name}_args", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=()),
        **fields,
    )


@dataclass
class ArchSpec:
    """One registered architecture (see the module docstring)."""

    name: str
    builder: Callable[..., nn.Module]
    description: str = ""
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``detect(state) -> bool``: the (prefix-stripped) state dict has this architecture's key signature
    detect: Callable[[Tensors], bool] | None = None
    #: ``infer(state) -> args``: constructor arguments from tensor shapes (raises KeyError on a missing key)
    infer: Callable[[Tensors], dict[str, Any]] | None = None
    #: ``from_checkpoint(obj) -> args``: arguments from a checkpoint's non-tensor entries (may be empty)
    from_checkpoint: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: ``convert_state(state) -> state``: rename a foreign layout's keys (e.g. a seed project's module names) to
    #: this architecture's own before strict loading; must return already-canonical dicts unchanged
    convert_state: Callable[[Tensors], Tensors] | None = None
    #: ``from_sidecar(weights_path) -> args``: arguments read from files beside the weights (e.g. the raw seed's
    #: ``config.yaml``); may be empty. Recorded and keyword arguments win over these.
    from_sidecar: Callable[[Path], dict[str, Any]] | None = None
    #: ``capabilities(args) -> Capabilities`` for the full (defaults filled in) arguments
    capabilities: CapabilitiesFn | Capabilities = field(default_factory=Capabilities)
    #: detection order: higher first (for architectures whose signatures overlap)
    priority: int = 0

    def __post_init__(self) -> None:
        self.args_model = _args_model(self.name, self.builder)

    # ------------------------------------------------------------------ arguments
    @property
    def arg_names(self) -> list[str]:
        """Names of the builder's arguments."""
        return list(self.args_model.model_fields)

    def defaults(self) -> dict[str, Any]:
        """The builder's default arguments."""
        return {k: f.default for k, f in self.args_model.model_fields.items() if not f.is_required()}

    def validate_args(self, args: dict[str, Any], *, where: str = "model.args") -> dict[str, Any]:
        """Check ``args`` against the builder's signature; return them (values coerced to the declared types).

        Raises :class:`ConfigError` naming each bad key as ``{where}.{key}``.
        """
        try:
            model = self.args_model(**args)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                key = ".".join(str(p) for p in err.get("loc", ()))
                if err.get("type") == "extra_forbidden":
                    lines.append(f"{where}.{key}: unknown argument of '{self.name}' (accepted: {', '.join(self.arg_names)})")
                else:
                    lines.append(f"{where}.{key}: {err.get('msg')} (got {err.get('input')!r})")
            raise ConfigError(f"model '{self.name}': " + "; ".join(lines)) from None
        return {k: getattr(model, k) for k in args}

    def resolve_args(self, preset: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Preset values (if any) updated with ``kwargs``, validated."""
        args: dict[str, Any] = {}
        if preset is not None:
            if preset not in self.presets:
                raise ConfigError(
                    f"model '{self.name}' has no preset '{preset}'; presets: {', '.join(sorted(self.presets)) or 'none'}"
                )
            args.update(self.presets[preset])
        args.update(kwargs)
        return self.validate_args(args)

    def caps(self, args: dict[str, Any] | None = None) -> Capabilities:
        """Capabilities of this architecture built with ``args`` (defaults filled in)."""
        full = {**self.defaults(), **(args or {})}
        c = self.capabilities
        return c(full) if callable(c) else c

    def canonical_state(self, state: Tensors) -> Tensors:
        """``state`` with a foreign key layout renamed to this architecture's (:attr:`convert_state`)."""
        return self.convert_state(state) if self.convert_state is not None else state

    def build(self, args: dict[str, Any]) -> nn.Module:
        """Call the builder with already validated ``args``; errors name the architecture."""
        try:
            return self.builder(**args)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model '{self.name}': cannot build with arguments {args}: {exc}") from exc


@dataclass(frozen=True)
class ModelCard:
    """The facts a built module carries: how to rebuild it and how to run it."""

    arch: str
    args: dict[str, Any]
    value_range: str = "0,1"
    #: training crop (h, w) in input pixels, when known (used by TLC)
    train_size: tuple[int, int] | None = None
    #: the file it was loaded from, when it was
    source: str | None = None
    #: the package's training summary and free-form extras, when read from a package
    training: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> "ModelCard":
        """A copy with ``changes`` applied."""
        if "train_size" in changes and changes["train_size"] is not None:
            ts = changes["train_size"]
            changes["train_size"] = (int(ts), int(ts)) if isinstance(ts, int) else (int(ts[0]), int(ts[1]))
        return replace(self, **changes)


def card_of(model: nn.Module) -> ModelCard | None:
    """The :class:`ModelCard` of a module built or loaded by restorekit (None for foreign modules)."""
    inner = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    card = getattr(inner, CARD_ATTR, None)
    return card if isinstance(card, ModelCard) else None


def set_card(model: nn.Module, card: ModelCard) -> nn.Module:
    """Attach ``card`` to ``model`` (returns ``model``)."""
    object.__setattr__(model, CARD_ATTR, card)
    return model


# ----------------------------------------------------------------------------- helpers for detect/infer


def has_keys(state: Tensors, *keys: str) -> bool:
    """All of ``keys`` are in ``state``."""
    return all(k in state for k in keys)


def has_match(state: Tensors, pattern: str) -> bool:
    """Some key of ``state`` matches the regular expression ``pattern`` entirely."""
    rx = re.compile(pattern)
    return any(rx.fullmatch(k) for k in state)


def count_indices(state: Tensors, pattern: str) -> int:
    """``max N + 1`` over keys matching ``pattern`` whose group 1 is the integer ``N`` (0 when none)."""
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := rx.match(k))}
    return (max(found) + 1) if found else 0


def blocks_per_stage(state: Tensors, prefix: str, n_stages: int, leaf: str) -> list[int]:
    """Block counts of ``prefix.<stage>.<block>.<leaf>`` for stages ``0..n_stages-1``."""
    return [count_indices(state, rf"{re.escape(prefix)}\.{i}\.(\d+)\.{re.escape(leaf)}") for i in range(n_stages)]


def arch_of(model: nn.Module) -> str:
    """The registry name of ``model``'s architecture, or its class name for foreign modules."""
    card = card_of(model)
    return card.arch if card else type(getattr(model, "_orig_mod", model)).__name__


def args_of(model: nn.Module) -> dict[str, Any]:
    """The constructor arguments ``model`` was built with ({} for foreign modules)."""
    card = card_of(model)
    return dict(card.args) if card else {}


def caps_of(model: nn.Module) -> Capabilities:
    """Capabilities of a module: from its spec and card; defaults (RGB, [0, 1]) for foreign modules."""
    card = card_of(model)
    if card is None:
        return Capabilities()
    from restorekit.models.registry import MODELS

    if card.arch not in MODELS:  # a foreign module given a card (e.g. to declare its value range)
        return Capabilities(value_range=card.value_range)
    caps = MODELS.get(card.arch).caps(card.args)
    return caps if caps.value_range == card.value_range else replace(caps, value_range=card.value_range)
