"""The registry of ``hpsearch`` subcommands: ``@subcommand(name, help, *arguments)``.

Each argument is ``arg("--flag", ...)`` (argparse's own keywords); the decorated function takes
the parsed ``argparse.Namespace`` and returns an exit status, and its docstring becomes the
subcommand's description.  ``hpsearch.cli`` declares the subcommands and builds the parser.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Argument:
    names: tuple[str, ...]
    options: dict[str, Any]


def arg(*names: str, **options: Any) -> Argument:
    """One argparse argument, declared next to the subcommand that uses it."""
    return Argument(names, options)


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    arguments: tuple[Argument, ...]
    handler: Handler


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(name: str, help: str, *arguments: Argument) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        SUBCOMMANDS[name] = Subcommand(name, help, arguments, handler)
        return handler
    return register


class UsageError(Exception):
    """Bad input found after parsing; printed as one line, exit status 2."""
