"""Config plumbing shared by every section.

Every section is a :class:`StrictModel` (pydantic, ``extra="forbid"``), so a
typo in a key fails with its dotted path before any work starts. Overrides are
``a.b.c=value`` strings whose value is parsed as YAML (``3``, ``1e-4``,
``true``, ``[1, 2]``, ``null``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from restorekit.errors import ConfigError

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    """Base class of config sections: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``; errors name the file."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file '{p}' is a folder; give the path of a YAML file (e.g. configs/demo.yaml)")
    if not p.is_file():
        raise ConfigError(f"config file '{p}' does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file '{p}' is not UTF-8 text (byte {exc.start}: {exc.reason}); is it a YAML config?"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file '{p}' cannot be read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{p}' is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{p}' must contain a mapping at the top level, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Return a copy of ``data`` with ``key.path=value`` overrides applied (value parsed as YAML)."""
    out = copy.deepcopy(data)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.path=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override '{item}' has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() != "" else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override '{item}': cannot parse value: {exc}") from exc
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            if part not in node or node[part] is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
            node = node[part]
        node[parts[-1]] = value
    return out


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn a pydantic error into lines that name each offending key by its dotted path."""
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") == "extra_forbidden":
            lines.append(f"  {loc}: unknown key")
        else:
            lines.append(f"  {loc}: {err.get('msg')} (got {err.get('input')!r})")
    return "\n".join(lines)


def validate_config(cls: type[T], data: dict[str, Any], source: str = "") -> T:
    """Validate ``data`` into ``cls``; raise :class:`ConfigError` naming every bad key."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source or cls.__name__)) from exc
