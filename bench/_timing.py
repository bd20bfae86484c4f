"""Timing of a training loop from the outside (a method patched to record its speed per call), and the
machine a figure was measured on."""
from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, ContextManager


class Timer:
    """Patches ``owner.name`` (e.g. ``population._Population._optimise``) to record, per call, the work done
    (``count(self, *args)``: iterations, or iterations x members) per wall-clock and per CPU second.

    CPU time counts only this process's running time, so it is the steadier figure on a shared machine.
    ``around``: a context manager factory entered around each call (e.g. torch's profiler); what each
    one's ``__enter__`` returned is kept in ``entered``.
    """

    def __init__(self, owner: Any, name: str, count: Callable[..., float],
                 around: Callable[[], ContextManager[Any]] = nullcontext):
        self.owner, self.name, self.count, self.speeds = owner, name, count, []
        self.around, self.entered = around, []
        self.original = getattr(owner, name)

    def __enter__(self) -> "Timer":
        original, speeds, count, around, entered = self.original, self.speeds, self.count, self.around, self.entered

        def timed(this, *args):
            cpu, wall = time.process_time(), time.perf_counter()
            with around() as value:
                result = original(this, *args)
            entered.append(value)
            work = count(this, *args)
            speeds.append((work / (time.perf_counter() - wall), work / (time.process_time() - cpu)))
            return result

        setattr(self.owner, self.name, timed)
        return self

    def __exit__(self, *exc) -> None:
        setattr(self.owner, self.name, self.original)


def iterations(population: Any, n_iter: int, validated: Any) -> int:
    """``count`` for ``cl_rnn.population._Population._optimise``: its iterations times the members (a single
    run: its iterations)."""
    return n_iter * len(population.members)


def machine() -> str:
    """The CPU model (/proc/cpuinfo) and the cores this process may use: what a speed figure holds for."""
    models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
              if line.startswith("model name")] if Path("/proc/cpuinfo").is_file() else []
    return f"{models[0] if models else 'unknown CPU'}; {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores usable"
