"""Name -> implementation tables for engines, decoders, backends and models, and what each part declares.

A registered engine, decoder or backend is a `Part`: it says on which devices it runs, which modules it
needs (and how to install them) and where it ranks among the `auto` choices.  `Registry.unavailable`,
`Registry.require` and `Registry.auto` answer from those declarations for `Config.resolve`, the benchmarks
and the tests, so that generic code never names an individual part.
"""

from __future__ import annotations

import importlib.util
from typing import Callable, Generic, TypeVar

from harness import HarnessError

T = TypeVar("T")


def has_module(name: str) -> bool:
    """True when `name` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class Part:
    """What a registered part declares (class attributes, read without building it)."""

    devices: tuple[str, ...] = ("cpu", "cuda")  # where it runs
    needs: tuple[tuple[str, str], ...] = ()  # (module, what a user knows it as) that it imports
    install = ""  # how to get `needs`, and what to choose instead
    auto_rank = 0  # 'auto' takes the available part of highest rank for the device; 0: never
    device_note = ""  # how the message names a wrong device ("is the CPU baseline"); default says where it runs

    @classmethod
    def gpu_only(cls) -> bool:
        return cls.devices == ("cuda",)

    @classmethod
    def missing(cls) -> str | None:
        """The first needed package that is not installed, as a user knows it."""
        return next((what for module, what in cls.needs if not has_module(module)), None)


class Registry(Generic[T]):
    """A dict filled by a decorator; registering a name twice is a bug, asking for an unknown one a user error."""

    def __init__(self, kind: str, flag: str = ""):
        self.kind = kind
        self.flag = flag  # the command-line option that chooses among them, for messages
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

    def unavailable(self, name: str, device: str | None = None) -> str | None:
        """Why `name` cannot run here (on `device`, when given), in one line with the fix; None if it can.
        Tests and benchmarks skip with this reason."""
        part = self[name]
        missing = part.missing()
        if missing:
            return f"{self.flag} {name} needs {missing}, which is not installed here: {part.install}"
        if device is not None and device not in part.devices:
            others = "/".join(n for n in self.names() if device in self[n].devices)
            note = part.device_note or f"runs on the {'GPU' if part.gpu_only() else 'CPU'}"
            fix = "use --device cuda" if device == "cpu" else "use --device cpu with it"
            where = "GPU" if device == "cuda" else "CPU"
            return f"{self.flag} {name} {note}: {fix}, or {self.flag} {others} on the {where}"
        return None

    def require(self, name: str, device: str | None = None) -> str:
        reason = self.unavailable(name, device)
        if reason:
            raise HarnessError(reason)
        return name

    def auto(self, device: str) -> str:
        """The part 'auto' means on `device`: the available one of highest rank."""
        ranked = sorted((self[n].auto_rank, n) for n in self.names()
                        if self[n].auto_rank and self.unavailable(n, device) is None)
        return ranked[-1][1]
