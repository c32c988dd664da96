"""One small registry of names, shared by datasets, models, objectives and augmentation policies."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from lowdata.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UsageError(self.unknown_message(name))
        return self._entries[name]

    def unknown_message(self, name: str, extra: str = "") -> str:
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        from lowdata.errors import shown

        return f"unknown {self.kind} {shown(name)}{hint}; choose one of: {', '.join(self.names())}{extra}"

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
