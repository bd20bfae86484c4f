"""Per-task checkpoints: a run's whole state after its last finished task, so a restart ends the same.

After every task but the last, a run (a population of one or more members, ``cl_rnn.population``)
saves: each member's flags, accuracy matrix, from-scratch networks of earlier tasks, random
generators' states and outcome; which members are still training; the learner's state (the
weights, a method's hypernetwork and its targets, masks, coresets, the regularisers' Fisher,
anchors and importances); and the fingerprint of the data (a restart on other data is refused).
Batch streams restart with every task and draw from the members' generators, so those states are
all they need.  A run restarted from it trains the remaining tasks exactly as the uninterrupted run
would have (bitwise on the same machine).

A single run keeps it in ``<run folder>/checkpoints/checkpoint.pt`` and continues when the same
command runs again; a population of several members, where its caller says.  Only the latest
checkpoint is kept: it is all a restart needs.  It is written atomically (temporary file, fsync,
``os.replace``): a reader sees the previous checkpoint or the new one, never half of one.  When the
run ends the checkpoint is removed, unless ``--store_final_models`` keeps it (marked done).
"""
from __future__ import annotations

import dataclasses
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cl_rnn.atomic import atomic_path
from cl_rnn.config import Config
from cl_rnn.results import RunFolderError
from cl_rnn.rules import ConfigError

FOLDER = "checkpoints"
FILE = "checkpoint.pt"
FORMAT = 3  # 3: one format for single runs and populations (a single run is a population of one)
# Flags that change where or how loudly a run writes, not what it computes.
NOT_COMPARED = ("out_dir", "overwrite", "loglevel_info")


class CheckpointMismatch(ConfigError):
    """The run folder holds a checkpoint of another configuration."""


@dataclass
class RunState:
    """Everything a run needs to continue after ``task`` (the last finished task)."""
    configs: list[dict[str, Any]]  # each member's flags
    task: int
    active: list[int]  # the members still training
    learner: dict[str, Any]  # the weights and the method's and regularisers' state (``cl_rnn.learners``)
    members: list[dict[str, Any]]  # each member's matrix, generators, outcome (``Member.state``)
    data_fingerprint: str  # of the tasks trained on (``cl_rnn.data.fingerprint``)
    done: bool = False


def path_in(run_folder: Path | str) -> Path:
    return Path(run_folder) / FOLDER / FILE


def rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"].cpu())
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save(path: Path, state: RunState) -> Path:
    """Write ``state`` atomically over the checkpoint at ``path``; returns it."""
    return write_payload(path, dataclasses.asdict(state))


def write_payload(path: Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` of ``payload`` (plus the format) to ``path``, atomically and synced to disk.

    A failed write (disk full) is a :class:`RunFolderError` naming the file and the cause; the previous
    checkpoint stays as it was."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as out:
            torch.save({"format": FORMAT, **payload}, out)
            out.flush()
            os.fsync(out.fileno())  # the data is on disk before the name points at it
    except (OSError, RuntimeError) as err:
        cause = _os_error(err)
        if cause is None:
            raise
        raise RunFolderError(f"{path}: cannot write the checkpoint ({cause.strerror or cause})") from None
    return path


def _os_error(err: BaseException | None) -> OSError | None:
    """The OSError behind ``err``: torch.save turns a failed write into a RuntimeError raised while handling it."""
    while err is not None and not isinstance(err, OSError):
        err = err.__context__
    return err


def read_payload(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """What ``write_payload`` wrote; a ``ConfigError`` naming the file if unreadable."""
    try:
        # our own file (written by ``write_payload``): it holds numpy's RNG state, which weights_only refuses
        saved = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line message
        raise ConfigError(f"{path}: unreadable checkpoint ({type(err).__name__}); "
                          "pass --overwrite to start the run afresh") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a cl-rnn checkpoint of format {FORMAT}; pass --overwrite to start afresh")
    return saved


def load(path: Path, device: torch.device | str = "cpu") -> RunState:
    """The checkpoint at ``path``, tensors on ``device``; a ``ConfigError`` naming the file if unreadable."""
    saved = read_payload(path, device)
    fields = {f.name for f in dataclasses.fields(RunState)}
    return RunState(**{k: v for k, v in saved.items() if k in fields})


def differences(saved: dict[str, Any], config: Config) -> list[str]:
    """``--flag=saved (now value)`` for every computed-on flag that differs."""
    now = dataclasses.asdict(config)
    return [f"--{name}={saved.get(name)!r} (now {value!r})" for name, value in now.items()
            if name not in NOT_COMPARED and saved.get(name) != value]


def resumable(config: Config, device: torch.device | str = "cpu") -> RunState | None:
    """The state to continue from, when ``--out_dir`` holds an unfinished run of these flags.

    None when there is nothing to resume (no folder, no checkpoint, a finished run, ``--overwrite``).
    Raises :class:`CheckpointMismatch` for a checkpoint of other flags: runs are never mixed.
    """
    if not config.out_dir or config.overwrite:
        return None
    path = path_in(config.out_dir)
    if not path.is_file():
        return None
    state = load(path, device)
    if state.done:
        return None
    # The data's contents are compared (check_same_data), not its path: the same file by another path
    # (relative, absolute as command.txt records it, moved) continues.
    changed = [d for d in differences(state.configs[0], config) if not d.startswith("--data=")]
    if changed:
        raise CheckpointMismatch(
            f"--out_dir {config.out_dir}: holds a checkpoint of other flags ({', '.join(changed[:3])}"
            f"{', ...' if len(changed) > 3 else ''}); pass --overwrite to replace it or choose another --out_dir")
    return state


def check_same_data(saved: str, fingerprint: str, source: str, where: Path) -> None:
    """Refuse to continue a checkpoint on other data than it was trained on (same path, other contents)."""
    if saved != fingerprint:
        raise CheckpointMismatch(
            f"{source}: not the data the checkpoint in {where} was trained on (fingerprint {fingerprint[:12]}, "
            f"the checkpoint's {saved[:12]}); use that data, or pass --overwrite to start afresh")


def remove(run_folder: Path) -> None:
    shutil.rmtree(Path(run_folder) / FOLDER, ignore_errors=True)


def population_state(path: Path | None, configs: list[Config], device: torch.device | str = "cpu"
                     ) -> RunState | None:
    """A population's saved state at ``path`` to continue from, or None; ``CheckpointMismatch`` when it
    holds other configurations."""
    if path is None or not path.is_file():
        return None
    saved = load(path, device)
    changed = [f"member {k}: {diff}" for k, (old, config) in enumerate(zip(saved.configs, configs))
               for diff in differences(old, config)]
    if len(saved.configs) != len(configs) or changed:
        raise CheckpointMismatch(
            f"{path}: holds a population of other flags ({', '.join(changed[:3]) or 'another size'}); "
            "remove it to start afresh")
    return saved

