"""Name -> implementation tables for engines, decoders, backends and models."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from harness import HarnessError

T = TypeVar("T")


class Registry(Generic[T]):
    """A dict filled by a decorator; registering a name twice is a bug, asking for an unknown one a user error."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise HarnessError(
                f"unknown {self.kind} {name!r}: choose one of {', '.join(self.names())}"
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)
