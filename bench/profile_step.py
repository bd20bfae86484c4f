"""Where a training step spends its time (not a test): torch's profiler over one task's training loop.

    python bench/profile_step.py [--methods finetune,ortho_reg] [--iters 1500] [--rows 20] [--threads 1]

The study's network and each method's flags as bench_train.py has them, one thread (``--threads``: a
run alone's split of its products and kernel rows), the embedded surrogate.  Per method: one
unprofiled run first (the kernel's build and first-call costs), then the training loop of one task
of ``--iters`` iterations under ``torch.profiler`` (evaluation and set-up left out); printed: the ops
by self CPU time in microseconds per iteration, and the loop's wall time per iteration without the
profiler, measured in the same run (the profiler adds its own cost to every op it records).
"""
from __future__ import annotations

import argparse
import tempfile
from contextlib import nullcontext

import torch
from torch.profiler import ProfilerActivity, profile

from cl_rnn import population as population_module
from cl_rnn.config import Config
from cl_rnn.data.tasks import load_tasks
from cl_rnn.train import train
from _timing import Timer, iterations, machine  # bench/ is the script's folder
from bench_train import METHODS, STUDY_NET


def run_loop(flags: dict, tasks, iters: int, out: str, profiled: bool, threads: int = 1) -> Timer:
    """One task's training; the timer holds the loop's speed and, when ``profiled``, its profile."""
    config = Config(**STUDY_NET, num_tasks=1, n_iter=iters, out_dir=out, overwrite=True, **flags)
    around = (lambda: profile(activities=[ProfilerActivity.CPU])) if profiled else nullcontext
    with Timer(population_module._Population, "_optimise", iterations, around) as timer:
        train(config, tasks=tasks[:1], threads=threads)
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="finetune,ortho_reg")
    parser.add_argument("--iters", type=int, default=1500)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    unknown = sorted(set(args.methods.split(",")) - set(METHODS))
    if unknown:
        parser.error(f"unknown method {unknown[0]!r}; known: {', '.join(METHODS)}")
    tasks = load_tasks(Config(**STUDY_NET))
    out = tempfile.mkdtemp(prefix="profile_step_")
    print(f"machine: {machine()}; torch {torch.__version__}; {args.iters} iterations, {args.threads} thread(s)")
    for name in args.methods.split(","):
        flags = METHODS[name]
        plain = min(args.iters / run_loop(flags, tasks, args.iters, f"{out}/{name}", False, args.threads).speeds[-1][0]
                    for _ in range(2))
        profiled = run_loop(flags, tasks, args.iters, f"{out}/{name}", True, args.threads).entered[-1]
        events = sorted(profiled.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events) / args.iters
        print(f"\n{name}: {plain / args.iters * 1e6:.0f} us per iteration unprofiled "
              f"({args.iters / plain:,.0f} it/s); profiled, {total:.0f} us per iteration:")
        print(f"  {'op':<48} {'us/iter':>8} {'calls/iter':>10}")
        for event in events[:args.rows]:
            print(f"  {event.key[:48]:<48} {event.self_cpu_time_total / args.iters:8.1f} "
                  f"{event.count / args.iters:10.1f}")


if __name__ == "__main__":
    main()
