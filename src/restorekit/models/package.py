"""The restorekit model package: one ``.safetensors`` file that is all inference needs.

Tensors are the model's ``state_dict``; the safetensors metadata (string to
string) holds:

``restorekit_format``  package format version ("1")
``arch``               registry name of the architecture
``arch_args``          JSON of the constructor arguments
``value_range``        "0,1" or "-1,1": the range of the model's inputs and outputs
``train_size``         JSON [h, w] of the training patch size, or null (used by TLC)
``training``           JSON summary of the run that produced it (epochs, PSNR, ...)
``extra``              JSON of anything else (free-form)

Loading never unpickles anything: safetensors holds only tensors and strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from restorekit.errors import CheckpointError
from restorekit.models.spec import card_of, set_card
from restorekit.utils.atomic import atomic_path

PACKAGE_FORMAT = "1"


@dataclass
class PackageMeta:
    """Metadata stored in a model package."""

    arch: str
    arch_args: dict[str, Any]
    value_range: str = "0,1"
    train_size: list[int] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        return {
            "restorekit_format": PACKAGE_FORMAT,
            "arch": self.arch,
            "arch_args": json.dumps(self.arch_args),
            "value_range": self.value_range,
            "train_size": json.dumps(self.train_size),
            "training": json.dumps(self.training, default=_jsonable),
            "extra": json.dumps(self.extra, default=_jsonable),
        }

    @classmethod
    def from_metadata(cls, md: dict[str, str], source: str) -> "PackageMeta":
        try:
            return cls(
                arch=md["arch"],
                arch_args=json.loads(md.get("arch_args", "{}")),
                value_range=md.get("value_range", "0,1"),
                train_size=json.loads(md.get("train_size", "null")),
                training=json.loads(md.get("training", "{}")),
                extra=json.loads(md.get("extra", "{}")),
            )
        except (KeyError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"'{source}': malformed restorekit package metadata ({exc})") from exc


def _jsonable(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def is_package(path: str | Path) -> bool:
    """True when ``path`` is a safetensors file carrying restorekit package metadata."""
    p = Path(path)
    if p.suffix != ".safetensors" or not p.is_file():
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as f:
            md = f.metadata() or {}
    except Exception:  # noqa: BLE001
        return False
    return "restorekit_format" in md


def save_package(
    model: nn.Module,
    path: str | Path,
    *,
    arch: str | None = None,
    arch_args: dict[str, Any] | None = None,
    value_range: str | None = None,
    train_size: list[int] | tuple[int, int] | None = None,
    training: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a restorekit package at ``path`` (atomically).

    ``arch``/``arch_args``/``value_range``/``train_size`` default to the module's
    :class:`~restorekit.models.spec.ModelCard` (set by ``create_model``/``load_model``).
    """
    from safetensors.torch import save_file

    card = card_of(model)
    arch = arch or (card.arch if card else None)
    if arch is None:
        raise CheckpointError("save_package: the model was not built by create_model; pass arch= and arch_args=")
    args = arch_args if arch_args is not None else (card.args if card else {})
    vr = value_range or (card.value_range if card else "0,1")
    ts = list(train_size) if train_size is not None else (list(card.train_size) if card and card.train_size else None)
    meta = PackageMeta(arch, dict(args), vr, ts, dict(training or {}), dict(extra or {}))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # safetensors refuses shared storage; clone tensors that alias another
    seen: dict[int, str] = {}
    for k, v in list(state.items()):
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        if ptr in seen and ptr != -1:
            state[k] = v.clone()
        seen[ptr] = k
    p = Path(path)
    with atomic_path(p) as tmp:
        save_file(state, str(tmp), metadata=meta.to_metadata())
    return p


def read_package(path: str | Path) -> tuple[dict[str, torch.Tensor], PackageMeta]:
    """Read a package's tensors and metadata (safe: no pickle involved)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    p = Path(path)
    try:
        with safe_open(str(p), framework="pt") as f:
            md = f.metadata() or {}
        state = load_file(str(p))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"'{p}': not a readable safetensors file ({exc})") from exc
    if "restorekit_format" not in md:
        raise CheckpointError(f"'{p}': safetensors file without restorekit metadata (pass arch= to load it)")
    return state, PackageMeta.from_metadata(md, str(p))


def load_package(path: str | Path, map_location: str | torch.device = "cpu", **overrides: Any) -> nn.Module:
    """Build the architecture recorded in the package at ``path`` and load its weights (eval mode).

    ``overrides`` replace recorded constructor arguments (e.g. a ViT's ``size_mode``);
    weights that do not fit (missing or unexpected keys, wrong shapes) raise
    :class:`CheckpointError` naming the file and the tensors.
    """
    from restorekit.errors import ConfigError
    from restorekit.models.registry import create_model

    from restorekit.models.registry import get_spec

    state, meta = read_package(path)
    state = get_spec(meta.arch).canonical_state(state)
    try:
        model = create_model(meta.arch, **{**meta.arch_args, **overrides})
    except ConfigError as exc:
        raise CheckpointError(f"'{path}': {exc}") from exc
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"'{path}': weights do not fit architecture '{meta.arch}': "
            f"missing keys {missing[:10]}, unexpected keys {unexpected[:10]}"
        )
    bad = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
           if state[k].shape != v.shape]
    if bad:
        raise CheckpointError(f"'{path}': tensors of the wrong shape for architecture '{meta.arch}' "
                              f"with arguments {meta.arch_args}: {', '.join(bad[:6])}")
    model.load_state_dict(state, strict=True)
    card = card_of(model)
    assert card is not None
    ts = tuple(meta.train_size) if meta.train_size else None
    set_card(model, card.with_(value_range=meta.value_range, train_size=ts, source=str(path),
                               training=dict(meta.training), extra=dict(meta.extra)))
    return model.to(map_location).eval()
