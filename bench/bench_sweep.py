"""Sweep platform speed: overhead per trial against calling train() directly, and concurrency.

    python bench/bench_sweep.py                 # both measurements, best of 3
    python bench/bench_sweep.py --repeat 5 --only overhead

Overhead: a sweep of N tiny trials run one at a time (Ray already started); its wall time minus
the time its trials spent inside ``cl_rnn.train.train`` (train's own clock, reported by each
trial) is what the platform adds over calling train() directly: sampling, scheduling, reporting,
trials.csv and the journal.  Measured at two N, the slope removes the one-off first actor start.
Both numbers come from the same run, so a busy machine slows them alike.  Target <= 0.3 s.

Concurrency: trials per hour with at most 1 and then at most 2 trials at a time on 2 CPUs; target
ratio >= 1.8.  A long sweep's rate is what matters, so it is measured as for the overhead: sweeps of
two sizes, and the slope (extra seconds per extra trial) removes the one-off start (Ray Tune's setup
and the first actors: ~2-3 s whatever the concurrency, which would otherwise shrink the ratio of
short sweeps).  Every flag that changes a trial's cost is pinned (only lr and clip vary), so all
trials cost the same.  The same configurations also run as 1 and 2 plain processes (no Ray): on a
shared machine that ratio says what the cores allow at the moment, whatever the platform does.

The machine is shared and noisy: every figure is the best of --repeat runs.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

# Tiny data (2 tasks of 240 training clips) and one network size, so that every trial costs the same.
TINY = {"num_tasks": 2, "val_set_size": 50, "val_iter": 50, "rnn_arch": "32", "batch_size": 64}
SAME_COST = {**TINY, "use_best_models": False, "orthogonal_hh_init": False, "orthogonal_hh_reg": -1.0}


def sweep_seconds(root: Path, name: str, data: Path, num_samples: int, max_concurrent: int, n_iter: int,
                  flags: dict = TINY) -> float:
    from hpsearch import sweep
    from hpsearch.settings import SweepSettings

    settings = SweepSettings(method="finetune", num_samples=num_samples, max_concurrent=max_concurrent,
                             n_iter=n_iter, data=str(data), name=name, results=str(root), flags=dict(flags))
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        sweep.run(settings)
    return time.perf_counter() - started


def train_seconds(root: Path, name: str) -> float:
    """Time spent inside train() by all trials of a sweep (train's own clock, in each trial)."""
    import json

    total = 0.0
    for result in (root / name).glob("trial_*/result.json"):
        last = json.loads(result.read_text().strip().splitlines()[-1])
        total += last["train_seconds"]
    return total


def overhead(root: Path, data: Path, sizes: tuple[int, int], n_iter: int, repeat: int) -> None:
    best: dict[int, float] = {}
    for n in sizes:
        for r in range(repeat):
            name = f"overhead{n}_{r}"
            wall = sweep_seconds(root, name, data, n, 1, n_iter)
            inside = train_seconds(root, name)
            best[n] = min(best.get(n, float("inf")), wall - inside)
            print(f"N={n:3d}: sweep {wall:6.2f} s, of which inside train() {inside:6.2f} s: "
                  f"{(wall - inside) / n:5.3f} s per trial around train() (first actor start included)")
    (n1, o1), (n2, o2) = sorted(best.items())
    print(f"overhead per trial, best runs: N={n1}: {o1 / n1:5.3f} s, N={n2}: {o2 / n2:5.3f} s; "
          f"marginal (slope, no actor start): {(o2 - o1) / (n2 - n1):5.3f} s  (target <= 0.3)")


def _train_quietly(config) -> None:
    import torch

    from cl_rnn.train import train

    torch.set_num_threads(1)
    train(config)


def plain_seconds(root: Path, name: str, processes: int) -> float:
    """The sweep's configurations as plain processes (no Ray, no Optuna): the machine's own ratio."""
    import multiprocessing

    from hpsearch import records
    from hpsearch.settings import load, plan_of

    settings = load(root / name)
    plan = plan_of(settings)
    rows = records.read_rows(settings.sweep_dir / records.TRIALS_CSV).values()
    configs = [plan.config(row, root / f"{name}_plain{processes}" / row["trial_id"]) for row in rows]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_train_quietly, configs[:processes])  # workers imported and warm
        started = time.perf_counter()
        pool.map(_train_quietly, configs, chunksize=1)
        return time.perf_counter() - started


def seconds_per_trial(root: Path, data: Path, limit: int, sizes: tuple[int, int], n_iter: int,
                      repeat: int) -> tuple[float, float]:
    """Steady-state seconds per trial (slope between two sweep sizes), for the sweep and plain processes."""
    swept: dict[int, float] = {}
    plain: dict[int, float] = {}
    for r in range(repeat):
        for n in sizes:
            name = f"concurrency{limit}_{n}_{r}"
            wall = sweep_seconds(root, name, data, n, limit, n_iter, SAME_COST)
            swept[n] = min(swept.get(n, float("inf")), wall)
            direct = plain_seconds(root, name, limit)
            plain[n] = min(plain.get(n, float("inf")), direct)
            print(f"  at most {limit} at a time, {n:2d} trials: sweep {wall:6.2f} s, plain processes {direct:6.2f} s")
    (n1, n2) = sizes
    return (swept[n2] - swept[n1]) / (n2 - n1), (plain[n2] - plain[n1]) / (n2 - n1)


def concurrency(root: Path, data: Path, sizes: tuple[int, int], n_iter: int, repeat: int) -> None:
    one, two = (seconds_per_trial(root, data, limit, sizes, n_iter, repeat) for limit in (1, 2))
    for k, what in enumerate(("sweep", "plain processes")):
        print(f"{what} (n_iter={n_iter}, 2 tasks): 1 at a time {3600 / one[k]:6.0f} trials/h "
              f"({one[k]:5.3f} s/trial), 2 at a time {3600 / two[k]:6.0f} trials/h ({two[k]:5.3f} s/trial): "
              f"x{one[k] / two[k]:4.2f}")
    print("target: the sweep's ratio >= 1.8 on 2 idle cores; the plain-process ratio is what this machine "
          "allows right now")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("overhead", "concurrency"))
    parser.add_argument("--overhead-n-iter", type=int, default=20)
    parser.add_argument("--concurrency-trials", type=int, nargs=2, default=(4, 12), metavar=("N1", "N2"))
    parser.add_argument("--concurrency-n-iter", type=int, default=1000)
    args = parser.parse_args()

    import ray

    from cl_rnn.data.surrogate import write_surrogate
    from hpsearch import ray_env  # noqa: F401 - Ray's quiet environment before Ray loads

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = write_surrogate(root / "tiny.h5", seed=0, clips_per_class=30)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            if args.only in (None, "overhead"):
                overhead(root, data, (8, 24), args.overhead_n_iter, args.repeat)
            if args.only in (None, "concurrency"):
                concurrency(root, data, tuple(args.concurrency_trials), args.concurrency_n_iter, args.repeat)
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
