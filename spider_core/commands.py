"""Subcommands of the ``spider`` umbrella that other packages provide (``spider twin``, ``sgtest``, ``load``).

Why entry points: ``spider_core`` is the lowest layer; Cloud-Twin, the SG suites and the load runner are
built on it, so the core must not import them. Each package registers a module under the
``spidertwin.commands`` entry-point group (``pyproject.toml``); the umbrella finds them at run time.
A command module offers ``add_arguments(parser)`` and ``run(args) -> int`` (its exit status), and may
set ``COMMAND_HELP`` / ``COMMAND_DESCRIPTION``; without them the first line of its docstring is used.
A command whose module cannot be imported is still listed and says why when it is run.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Callable

GROUP = "spidertwin.commands"


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _first_line(name: str, doc: str | None) -> str:
    """The docstring's first line, without markup and without a leading ``spider <name> ...:``."""
    line = (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
    line = line.replace("``", "").replace("`", "").rstrip(".")
    head, sep, rest = line.partition(": ")
    return rest if sep and head.startswith(f"spider {name}") else line


def _from_module(name: str, module: ModuleType | object) -> Command:
    add, run = getattr(module, "add_arguments", None), getattr(module, "run", None)
    if not callable(add) or not callable(run):
        raise TypeError(f"{getattr(module, '__name__', module)!r} has no add_arguments(parser) and run(args)")
    help_ = getattr(module, "COMMAND_HELP", None) or _first_line(name, module.__doc__)
    return Command(name, help_, getattr(module, "COMMAND_DESCRIPTION", None) or help_, add, run)


def _unavailable(name: str, target: str, exc: BaseException) -> Command:
    reason = f"{type(exc).__name__}: {exc}"

    def run(_: argparse.Namespace) -> int:
        print(f"spider {name}: unavailable ({target} could not be loaded: {reason})", file=sys.stderr)
        return 2

    return Command(name, f"(unavailable: {reason})", f"{target} could not be loaded: {reason}",
                   lambda _p: None, run)


def discover() -> list[Command]:
    """Every registered command in registration order (loaded now: their arguments build the parser)."""
    found: dict[str, Command] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            continue
        try:
            found[ep.name] = _from_module(ep.name, ep.load())
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not take the server down
            found[ep.name] = _unavailable(ep.name, ep.value, exc)
    return list(found.values())
