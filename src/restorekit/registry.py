"""One registry mechanism for everything restorekit looks up by name.

Architectures (:mod:`restorekit.models`), losses (:mod:`restorekit.losses`),
degradation operations (:mod:`restorekit.degrade`) and classical baselines
(:mod:`restorekit.evaluation`) are each a :class:`Registry`, in the spirit of
timm's ``create_model``/``list_models`` and BasicSR's ``Registry``: entries are
added with :meth:`Registry.register` (directly or as a decorator) beside the code
they describe, looked up with :meth:`Registry.get` (an unknown name raises
:class:`~restorekit.errors.ConfigError` listing the known ones) and listed with
:meth:`Registry.names`, which is what the contract tests parametrise over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from restorekit.errors import ConfigError

T = TypeVar("T")

_MISSING: Any = object()


class Registry(Generic[T]):
    """A name -> entry table of one kind (``kind`` names it in error messages).

    ``loader`` is called once before the first lookup: it imports the modules
    whose definitions register the built-in entries (so that ``import restorekit``
    stays cheap and lookups never see a half-filled table).
    """

    def __init__(self, kind: str, loader: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._loader = loader
        self._loaded = loader is None

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True  # set first: the loader's imports register into this table
            assert self._loader is not None
            self._loader()

    def register(self, name: str, entry: T | None = None, *, replace: bool = False) -> T | Callable[[T], T]:
        """Add ``entry`` under ``name``; without ``entry`` return a decorator that adds what it decorates.

        Registering a name twice is an error unless ``replace=True`` (a plug-in overriding a built-in).
        """

        def add(obj: T) -> T:
            if not name or not isinstance(name, str):
                raise ConfigError(f"{self.kind} registry: names must be non-empty strings, got {name!r}")
            if name in self._entries and not replace and self._entries[name] is not obj:
                raise ConfigError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = obj
            return obj

        if entry is None:
            return add
        return add(entry)

    def get(self, name: str, default: Any = _MISSING) -> T:
        """The entry called ``name``; an unknown name raises ConfigError listing the known ones.

        With ``default`` given, an unknown name returns it instead (``dict.get`` style).
        """
        self._ensure_loaded()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            if default is not _MISSING:
                return default  # type: ignore[no-any-return]
            known = ", ".join(sorted(self._entries)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}; available: {known}") from None

    def __getitem__(self, name: str) -> T:
        """``registry[name]``: the same as :meth:`get` (ConfigError listing the known names)."""
        return self.get(name)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._ensure_loaded()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs sorted by name."""
        self._ensure_loaded()
        return sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"
