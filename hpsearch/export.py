"""Winners as ``train_split_audioset.py`` command lines that reproduce them.

A line is the trial's whole configuration as the study's flags: every flag that differs from its
default (the method's fixed flags, the sampled ones, --n_iter, --random_seed, --data, ...), and
never the run folder.  ``cl_rnn.rules.from_argv`` parses it back to the same ``Config``, so the
same seed on the same data gives the same accuracy matrix.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cl_rnn.config import FIELDS, Config, command_line, format_value
from hpsearch.analyze import AnalysisError, param_columns, read_config, select
from hpsearch.user_files import write_output


def reproducible(config: Config) -> Config:
    """The configuration without what only says where a run writes.  Its --data is as the run recorded it:
    absolute (``cl_rnn.results``), so the line runs from anywhere and in a Ray trial's own folder."""
    return config.replace(out_dir="", overwrite=False)


def winner_config(row: pd.Series) -> Config:
    if not row.get("run_dir"):
        raise AnalysisError(f"trial {row['trial']}: no run folder, so no configuration to export")
    return reproducible(read_config(Path(row["run_dir"])))


def export_argv(config: Config, explicit: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Like ``cl_rnn.config.to_argv`` (flags that differ from the default, in field order), plus
    the ``explicit`` flags (the sampled ones) where they equal the default, so a line shows every
    sampled value.  ``from_argv`` parses it back to ``config``."""
    changed = config.changed()
    argv = []
    for name, f in FIELDS.items():
        value = getattr(config, name)
        if f.type in ("bool", bool) and f.default is False:  # a switch: present or absent
            argv += [f"--{name}"] if value else []
        elif name in changed or name in explicit:
            argv.append(f"--{name}={format_value(value)}")
    return argv


def winner_line(row: pd.Series, explicit: frozenset[str] = frozenset()) -> str:
    config = winner_config(row)
    return command_line(config, export_argv(config, explicit))


def _comment(row: pd.Series) -> str:
    return (f"# trial {row['trial']}: during {row['during']:.2f} %, final {row['final']:.2f} %"
            f" (run folder {row['run_dir']})")


def export_text(winners: pd.DataFrame) -> str:
    """One comment line and one command line per winner, best first (the file is a shell script)."""
    explicit = frozenset(param_columns(winners)) & set(FIELDS)
    lines = []
    for _, row in winners.iterrows():
        lines += [_comment(row), winner_line(row, explicit)]
    return "\n".join(lines) + "\n" if lines else ""


def command_lines(text: str) -> list[str]:
    """The command lines of an export file, without the comments."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def export(table: pd.DataFrame, out: Path, by: str = "final", top: int = 1,
           min_during: float | None = None) -> str:
    """Write the winners' command lines to ``out`` and return the text."""
    winners = select(table, by, top, min_during)
    if winners.empty:
        raise AnalysisError("no finished trial to export")
    text = export_text(winners)
    write_output(out, text, "give --out a writable path")
    return text
