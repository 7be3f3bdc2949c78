"""One lazy registry for tasks, adapters, backends and subcommands.

Entries are "module:attr" strings, imported on first use, so listing names never imports torch.
A typo gets a "did you mean ...?" in a UsageError (exit code 2 at the CLI).

Third-party plug-ins register through Python entry points: a package that declares, in its pyproject,

    [project.entry-points."evalkit.tasks"]
    my_task = "my_pkg.tasks:my_task"          # a factory returning a Task

(groups ``evalkit.tasks``, ``evalkit.adapters``, ``evalkit.backends``, ``evalkit.commands``) is listed by
``evalkit list`` and usable by name once installed. Built-in names win over a plug-in of the same name.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from evalkit.core.errors import UsageError

T = TypeVar("T")


@dataclass
class Registry(Generic[T]):
    kind: str  # "task", "model", "backend", "command" -- used in messages
    entry_point_group: str | None = None  # e.g. "evalkit.tasks": plug-ins, read on first look-up
    _entries: dict[str, str] = field(default_factory=dict)
    _meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    _loaded: dict[str, Any] = field(default_factory=dict)
    _plugins_read: bool = False

    def register(self, name: str, target: str, **meta: Any) -> None:
        """Register ``name`` -> "package.module:attr"; ``meta`` is listable without importing."""
        if name in self._entries and self._entries[name] != target:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = target
        self._meta[name] = meta

    def _read_plugins(self) -> None:
        if self._plugins_read or not self.entry_point_group:
            return
        self._plugins_read = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._entries:
                self._entries[ep.name] = ep.value
                self._meta[ep.name] = {"plugin": ep.dist.name if ep.dist else ep.value}

    def names(self) -> list[str]:
        self._read_plugins()
        return sorted(self._entries)

    def meta(self, name: str) -> dict[str, Any]:
        self._check(name)
        return dict(self._meta[name])

    def __contains__(self, name: str) -> bool:
        self._read_plugins()
        return name in self._entries

    def get(self, name: str) -> Any:
        self._check(name)
        if name not in self._loaded:
            self._loaded[name] = load_attr(self._entries[name])
        return self._loaded[name]

    def _check(self, name: str) -> None:
        self._read_plugins()
        if name in self._entries:
            return
        close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = f"run `evalkit list {self.kind}s` to see them"
        raise UsageError(f"unknown {self.kind} {name!r}; " + (hint + " " if hint else "") + listing)


def load_attr(target: str) -> Any:
    """Import "package.module:attr" and return the attribute."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
