"""``--flag NAME=VALUE``: flag values of train_split_audioset.py pinned for every trial of a sweep."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from cl_rnn.config import FIELDS, FLAG_TYPES, conflicting_values, repeat_warning

SWEEP_SET = ("n_iter", "data", "random_seed", "out_dir")  # flags the sweep sets, not --flag


def flag_value(name: str, text: str) -> Any:
    """``text`` read as flag ``name``'s type, as train_split_audioset.py reads it; ValueError or
    argparse.ArgumentTypeError when it cannot be."""
    return FLAG_TYPES[str(FIELDS[name].type)](text)


class FlagError(ValueError):
    """A --flag that names no flag, a flag the sweep sets, or a value of the wrong type (one line)."""


def parse_flags(items: list[str], warn: bool = True) -> dict[str, Any]:
    """``["num_tasks=2", "during_acc_criterion=60"]`` -> typed flag values; the last of a flag given
    twice wins, with one warning (``warn``) when the values differ."""
    flags: dict[str, Any] = {}
    given: list[tuple[str, str]] = []
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().lstrip("-")
        given.append((name, text))
        if not sep or name not in FIELDS:
            raise FlagError(f"--flag {item!r}: expected NAME=VALUE with NAME a flag of train_split_audioset.py")
        if name in SWEEP_SET:
            raise FlagError(f"--flag {name}: the sweep sets it (use --n-iter, --data, --seed)")
        try:
            flags[name] = flag_value(name, text)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as err:
            raise FlagError(f"--flag {name}: {err}") from None
    if warn:
        for name, values in conflicting_values(given).items():
            print(f"hpsearch run: warning: {repeat_warning(f'--flag {name}', values)}", file=sys.stderr)
    return flags
