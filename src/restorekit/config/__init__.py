"""Typed, validated configuration: YAML files plus ``--set a.b=value`` overrides."""

from restorekit.config.base import StrictModel, apply_overrides, load_yaml, validate_config

__all__ = ["StrictModel", "apply_overrides", "load_yaml", "validate_config"]
