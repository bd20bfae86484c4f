"""Per-task checkpoints: a run's whole state after its last finished task, so a restart ends the same.

``<run folder>/checkpoints/checkpoint.pt`` holds, after every task but the last: the flags, the
accuracy matrix so far, the method's state (``Method.state_dict``: weights, hypernetwork and its
targets, masks, coresets), the regularisers' (EWC's Fisher and anchor, SI's importances), the
from-scratch networks of earlier tasks, the RNG states of torch, numpy and ``random``, and the
fingerprint of the data (a restart on other data is refused).  Batch streams restart with every
task and draw from numpy's global RNG, so the RNG states are all they need.  A run restarted from
it trains the remaining tasks exactly as the uninterrupted run would have (bitwise on the same
machine).

Only the latest checkpoint is kept: it is all a restart needs.  It is written atomically (temporary
file, fsync, ``os.replace``): a reader sees the previous checkpoint or the new one, never half of one.
When the run ends the checkpoint is removed, unless ``--store_final_models`` keeps it (marked done).
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
FORMAT = 2  # 2: a single run's regularisers kept apart from its method
# Flags that change where or how loudly a run writes, not what it computes.
NOT_COMPARED = ("out_dir", "overwrite", "loglevel_info")


class CheckpointMismatch(ConfigError):
    """The run folder holds a checkpoint of another configuration."""


@dataclass
class RunState:
    """Everything a run needs to continue after ``task`` (the last finished task)."""
    config: dict[str, Any]
    task: int
    matrix: np.ndarray
    method: dict[str, Any]
    regularisers: list[dict[str, Any]]  # each Regulariser's state (EWC's Fisher and anchor, SI's importances)
    task_weights: list[torch.Tensor]
    rng: dict[str, Any]
    seconds: float
    resumed_at: list[int]
    done: bool = False
    data_fingerprint: str = ""  # of the tasks trained on (``cl_rnn.data.fingerprint``); "": not recorded


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


def save(run_folder: Path, state: RunState) -> Path:
    """Write ``state`` atomically over the folder's checkpoint; returns its path."""
    return write_payload(path_in(run_folder), dataclasses.asdict(state))


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
    # With a data fingerprint the data's contents are compared (check_same_data), not its path: the
    # same file by another path (relative, absolute as command.txt records it, moved) continues.
    changed = [d for d in differences(state.config, config) if not (state.data_fingerprint and d.startswith("--data="))]
    if changed:
        raise CheckpointMismatch(
            f"--out_dir {config.out_dir}: holds a checkpoint of other flags ({', '.join(changed[:3])}"
            f"{', ...' if len(changed) > 3 else ''}); pass --overwrite to replace it or choose another --out_dir")
    return state


def check_same_data(saved: str, fingerprint: str, source: str, where: Path) -> None:
    """Refuse to continue a checkpoint on other data than it was trained on (same path, other contents);
    ``saved``: the checkpoint's data fingerprint ("" for one written before fingerprints: not checked)."""
    if saved and saved != fingerprint:
        raise CheckpointMismatch(
            f"{source}: not the data the checkpoint in {where} was trained on (fingerprint {fingerprint[:12]}, "
            f"the checkpoint's {saved[:12]}); use that data, or pass --overwrite to start afresh")


def remove(run_folder: Path) -> None:
    shutil.rmtree(Path(run_folder) / FOLDER, ignore_errors=True)


def population_state(path: Path | None, configs: list[Config]) -> dict[str, Any] | None:
    """A population's saved state to continue from (``cl_rnn.population``), or None;
    ``CheckpointMismatch`` when it holds other configurations."""
    if path is None or not path.is_file():
        return None
    saved = read_payload(path)
    changed = [f"member {k}: {diff}" for k, (old, config) in enumerate(zip(saved["configs"], configs))
               for diff in differences(old, config)]
    if len(saved["configs"]) != len(configs) or changed:
        raise CheckpointMismatch(
            f"{path}: holds a population of other flags ({', '.join(changed[:3]) or 'another size'}); "
            "remove it to start afresh")
    return saved

