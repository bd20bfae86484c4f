"""Search efficiency: the compute a strategy needs to find a configuration as good as the study's grid finds.

    python bench/bench_search.py         # fine-tuning, Online EWC, SI; 5 repeats; 10 tasks x 300 iterations
    python bench/bench_search.py --methods finetune --repeats 1 --n-iter 20 --num-tasks 2   # a quick run

A sweep platform is judged by the time to a good configuration: trials needed x time per trial.  Per method,
on the embedded surrogate, every trial a multi-head 32-unit LSTM with --random_seed 42:

1. The study-style grid, run through ``hpsearch run --grid``: lr {1e-5, 1e-4, 1e-3} x batch_size {64, 128} x
   clip_grad_norm {-1, 1} x the method's strength at three values (fine-tuning: orthogonal_hh_reg {-1, 0.1, 1};
   EWC: ewc_lambda {10, 100, 1000} with --n_fisher=-1; SI: si_lambda {0.1, 1, 10} with --si_task_loss_only),
   36 configurations, all run.  Its compute is the sum of its trials' CPU seconds; its winner (best final)
   rerun over 2 more seeds sets the target: that 3-seed mean final accuracy.
2. Each strategy (``hpsearch run`` over the method's own search space, rnn_arch pinned to 32), --repeats times
   with sampler seeds 0, 1, ...: the compute until the best finished trial's 3-seed mean final accuracy is
   within 0.5 points of the target, or one grid's compute is spent (then the sweep is stopped: not reached).
   The finished trials are walked in the order they ended; whenever the incumbent (best single-seed final
   so far) changes, it is rerun over 2 more seeds and its mean checked.  The cost is the cumulative CPU
   seconds of every trial up to the one that reached the target, pruned and failed trials included (trained
   iterations in a second column).  Those reruns are evaluation, not search: they are not counted.
3. Printed: per strategy the median ratio to the grid's compute over the repeats (a repeat that never got
   there counts as more than the budget), how often it got there, and the mean and worst share of the
   budget the repeats spent (one that never got there: all of it, 1.0); and, for ASHA, the Spearman correlation
   over the grid's runs between each rung's score and the final accuracy.  ASHA (hpsearch.ray_adapter) has
   rungs at task index 1, 2, 4, 8 (after 2, 3, 5, 9 tasks; never the last task) and scores a trial there by
   the mean accuracy of the tasks trained so far at that point: the mean of row t, columns 0..t, of the run's
   accuracy matrix.  Goal: the best strategy within 25% of the grid's compute (median), random within 60%.
   ``tpe_warm`` is TPE with ``--warm-start`` (the study's published line of the method, at 32 units, is the
   first trial): against ``tpe`` it measures what the warm start saves.

A trial's CPU seconds are ``trials.csv``'s ``cpu_seconds`` (the trial's process, one torch thread): steady on a
shared machine, where wall time depends on what else runs.  Everything goes to --out (default
results/bench_search/): a rerun reuses what is there (grid runs, seed reruns, finished repeats); an
interrupted sweep is resumed (its trials then running count only their last attempt).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from _timing import machine  # bench/ is the script's folder

REPO = Path(__file__).resolve().parents[1]
STRENGTHS = {"finetune": {"orthogonal_hh_reg": [-1.0, 0.1, 1.0]},
             "ewc": {"ewc_lambda": [10.0, 100.0, 1000.0], "n_fisher": [-1]},
             "si": {"si_lambda": [0.1, 1.0, 10.0], "si_task_loss_only": [True]}}
TRAINING = {"lr": [1e-5, 1e-4, 1e-3], "batch_size": [64, 128], "clip_grad_norm": [-1.0, 1.0], "rnn_arch": ["32"]}
STRATEGIES = {"random": ["--sampler", "random", "--scheduler", "none"],
              "tpe": ["--sampler", "tpe", "--scheduler", "none"],
              "tpe_asha": ["--sampler", "tpe", "--scheduler", "asha"],
              "random_asha": ["--sampler", "random", "--scheduler", "asha"],
              "tpe_warm": ["--sampler", "tpe", "--scheduler", "none", "--warm-start"]}
TOLERANCE = 0.5  # points of mean final accuracy below the target that still count as reached
MORE_SEEDS = (0, 1, 2)  # a configuration's 3-seed mean: its trial's seed and the first two of these others
NUM_SAMPLES = 1000  # more trials than one grid's compute allows: the budget ends a strategy's sweep
POLL_S = 5.0


@dataclass(frozen=True)
class Bench:
    out: Path  # this setting's folder: <out>/tasks<T>_iter<N>
    reruns: Path  # seed reruns, shared by every setting (keyed by the whole configuration)
    num_tasks: int
    n_iter: int
    max_concurrent: int

    def sweep_args(self) -> list[str]:
        return ["--flag", f"num_tasks={self.num_tasks}", "--n-iter", str(self.n_iter),
                "--max-concurrent", str(self.max_concurrent)]


# --- a sweep as a child process ------------------------------------------------------------------------

def start_sweep(folder: Path, name: str, argv: list[str]) -> subprocess.Popen:
    """``hpsearch run`` into ``folder/name`` (resumed when an earlier bench left it), its output in a log.
    In a session of its own, so that a Ctrl-C reaches it once, from ``stop_sweep``."""
    folder.mkdir(parents=True, exist_ok=True)
    resume = (folder / name / "sweep.json").is_file()
    args = ["--resume", name] if resume else [*argv, "--name", name]
    with open(folder / f"{name}.log", "a") as log:
        return subprocess.Popen([sys.executable, "-m", "hpsearch.cli", "run", *args, "--results", str(folder)],
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_sweep(process: subprocess.Popen) -> None:
    """Ctrl-C to the sweep we started (it ends its trials and Ray, and could be resumed), then harder."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    for wait_s, harder in ((180, process.terminate), (60, process.kill)):
        try:
            process.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            harder()
    process.wait()


def read_trials(sweep_dir: Path) -> list[dict[str, Any]]:
    """trials.csv's rows in the order the trials ended."""
    from hpsearch import records

    return list(records.read_rows(sweep_dir / records.TRIALS_CSV).values())


def number(value: Any) -> float:
    """A trials.csv number; 0 for the empty cell of a trial whose worker died before reporting."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def cost(rows: list[dict[str, Any]], n_iter: int) -> tuple[float, int]:
    """CPU seconds and trained iterations of these trials, whatever their state."""
    return (sum(number(row["cpu_seconds"]) for row in rows),
            sum(int(number(row["tasks_done"])) * n_iter for row in rows))


# --- a configuration's mean final accuracy over 3 seeds ------------------------------------------------

def _train_one(config: Any) -> None:
    import torch

    from cl_rnn.train import train

    torch.set_num_threads(1)
    try:
        train(config)
    except Exception:  # noqa: BLE001 - a diverged rerun leaves no result: its mean is NaN
        pass


def mean_final(run_dir: Path, reruns: Path) -> float:
    """The run's mean final accuracy averaged with its reruns at two more seeds (cached under ``reruns``)."""
    from cl_rnn.config import command_line
    from cl_rnn.results import read_ended
    from hpsearch.analyze import read_config, read_outcome
    from hpsearch.export import reproducible

    config = reproducible(read_config(run_dir))
    key = hashlib.sha1(command_line(config.replace(random_seed=0)).encode()).hexdigest()[:16]
    seeds = [s for s in MORE_SEEDS if s != config.random_seed][:2]
    folders = [reruns / key / f"seed_{s}" for s in seeds]
    todo = [config.replace(random_seed=s, out_dir=str(f), overwrite=True)
            for s, f in zip(seeds, folders) if read_ended(f) is None]
    if todo:
        with multiprocessing.get_context("spawn").Pool(len(todo)) as pool:
            pool.map(_train_one, todo, chunksize=1)
    return statistics.fmean(read_outcome(d)["final"] for d in [run_dir, *folders])


# --- the grid --------------------------------------------------------------------------------------------

def grid_of(method: str) -> dict[str, list[Any]]:
    return {**TRAINING, **STRENGTHS[method]}


def run_grid(bench: Bench, method: str) -> list[dict[str, Any]]:
    """The grid's trials, run through ``hpsearch run --grid`` unless an earlier bench ran them all."""
    folder, grid = bench.out / method, grid_of(method)
    size = math.prod(len(values) for values in grid.values())
    if len(read_trials(folder / "grid")) < size:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "grid.py").write_text(f'"""The study-style grid of bench/bench_search.py: {method}."""\n'
                                        f"grid = {grid!r}\nconditions = []\n")
        process = start_sweep(folder, "grid", ["--method", method, "--grid", str(folder / "grid.py"),
                                               *bench.sweep_args()])
        try:
            process.wait()
        finally:
            stop_sweep(process)
    rows = read_trials(folder / "grid")
    if len(rows) < size:
        sys.exit(f"bench_search: the {method} grid ended {len(rows)} of {size} trials; see {folder / 'grid.log'}")
    return rows


def best_run(sweep_dir: Path, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], Path]:
    from hpsearch.progress import best_row

    best = best_row(rows, "final")
    if best is None:
        sys.exit(f"bench_search: no trial of {sweep_dir} finished")
    return best, sweep_dir / str(best["run_folder"])


# --- a strategy's repeat ---------------------------------------------------------------------------------

@dataclass
class Walk:
    """Trials in the order they ended: their cost so far, and each new incumbent checked against the target."""
    target: float
    budget: float
    n_iter: int
    evaluate: Callable[[Path], float]
    seen: int = 0
    cpu_seconds: float = 0.0
    iterations: int = 0
    best: float = -math.inf
    incumbents: list[dict[str, Any]] = field(default_factory=list)

    def advance(self, sweep_dir: Path, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The outcome once the target is reached or the budget spent; None while neither."""
        from hpsearch.records import FINISHED

        for row in rows[self.seen:]:
            self.seen += 1
            cpu, iterations = cost([row], self.n_iter)
            self.cpu_seconds, self.iterations = self.cpu_seconds + cpu, self.iterations + iterations
            if self.cpu_seconds > self.budget:
                return self.outcome(False)
            if row["state"] == FINISHED and number(row["final_mean"]) > self.best:
                self.best = number(row["final_mean"])
                mean = self.evaluate(sweep_dir / str(row["run_folder"]))
                self.incumbents.append({"trial": self.seen, "trial_id": row["trial_id"], "final": self.best,
                                        "mean_final_3_seeds": mean})
                if mean >= self.target - TOLERANCE:
                    return self.outcome(True)
        return None

    def outcome(self, reached: bool) -> dict[str, Any]:
        return {"reached": reached, "cpu_seconds": self.cpu_seconds, "iterations": self.iterations,
                "trials": self.seen, "incumbents": self.incumbents}


def follow(process: subprocess.Popen, sweep_dir: Path, walk: Walk) -> dict[str, Any]:
    """Walk the sweep's trials as they end, until an outcome or the sweep's own end."""
    while True:
        ended = process.poll() is not None
        outcome = walk.advance(sweep_dir, read_trials(sweep_dir))
        if outcome is not None:
            return outcome
        if ended:
            if process.returncode and not walk.seen:
                sys.exit(f"bench_search: {sweep_dir.name} failed (status {process.returncode}); "
                         f"see {sweep_dir}.log")
            return walk.outcome(False)  # every sample ran within the budget
        time.sleep(POLL_S)


def run_repeat(bench: Bench, method: str, strategy: str, repeat: int, target: float, budget: float) -> dict:
    folder, name = bench.out / method, f"{strategy}_{repeat}"
    done = folder / f"{name}.json"
    if done.is_file():
        return json.loads(done.read_text())
    process = start_sweep(folder, name, [
        "--method", method, "--num-samples", str(NUM_SAMPLES), "--flag", "rnn_arch=32", "--sampler-seed", str(repeat),
        *STRATEGIES[strategy], *bench.sweep_args()])
    try:
        outcome = follow(process, folder / name, Walk(target, budget, bench.n_iter,
                                                      lambda run_dir: mean_final(run_dir, bench.reruns)))
    finally:
        stop_sweep(process)
    done.write_text(json.dumps(outcome, indent=2) + "\n")
    return outcome


# --- ASHA's rungs against the final accuracy -------------------------------------------------------------

def asha_rungs(num_tasks: int) -> list[int]:
    """The task indices where hpsearch's ASHA compares trials (max_t = num_tasks - 1, grace 1, factor 2, as
    Ray computes its milestones), less the last task, which is never a running report."""
    max_t = max(num_tasks - 1, 1)
    return [2 ** k for k in range(int(math.log(max_t) / math.log(2) + 1)) if 2 ** k < num_tasks - 1]


def rung_correlations(sweep_dir: Path, rows: list[dict[str, Any]], num_tasks: int) -> dict[int, float]:
    """Spearman correlation over the grid's finished runs of each rung's score with the mean final accuracy."""
    import numpy as np
    import pandas as pd

    from hpsearch.analyze import read_matrix
    from hpsearch.records import FINISHED

    rungs = asha_rungs(num_tasks)
    scores = []
    for row in rows:
        if row["state"] == FINISHED:
            matrix = read_matrix(sweep_dir / str(row["run_folder"]))
            scores.append({"final": np.mean(matrix[-1]), **{t: np.mean(matrix[t, : t + 1]) for t in rungs}})
    table = pd.DataFrame(scores)
    return table.corr(method="spearman")["final"].drop("final").to_dict() if rungs else {}


# --- the report ------------------------------------------------------------------------------------------

def ratio_text(values: list[float]) -> str:
    middle = statistics.median(values)
    return f"{middle:.2f}" if math.isfinite(middle) else "> 1"


def method_report(method: str, grid: dict[str, Any], outcomes: dict[str, list[dict]]) -> list[str]:
    lines = [f"{method}: grid {grid['runs']} runs, {grid['cpu_seconds']:,.0f} CPU-s, {grid['iterations']:,} "
             f"iterations; target {grid['target']:.2f} % mean final over 3 seeds (winner {grid['winner']}; "
             f"reached at >= {grid['target'] - TOLERANCE:.2f})",
             f"  {'strategy':<12} {'median CPU ratio to grid':>24} {'reached':>8} {'median iterations ratio':>24} "
             f"{'mean CPU ratio':>15} {'worst':>6}"]
    for strategy, repeats in outcomes.items():
        reached = [o for o in repeats if o["reached"]]
        cpu = [o["cpu_seconds"] / grid["cpu_seconds"] if o["reached"] else math.inf for o in repeats]
        its = [o["iterations"] / grid["iterations"] if o["reached"] else math.inf for o in repeats]
        spent = [min(o["cpu_seconds"] / grid["cpu_seconds"], 1.0) if o["reached"] else 1.0 for o in repeats]
        lines.append(f"  {strategy:<12} {ratio_text(cpu):>24} {f'{len(reached)}/{len(repeats)}':>8} "
                     f"{ratio_text(its):>24} {statistics.mean(spent):15.2f} {max(spent):6.2f}")
    rungs = grid["rung_correlations"]
    lines.append("  ASHA rungs, Spearman of rung score with final over the grid's runs: " + (", ".join(
        f"task {t} (after {t + 1}) {rho:+.2f}" for t, rho in rungs.items()) or "no rung before the last task"))
    return lines


# --- main ------------------------------------------------------------------------------------------------

def bench_method(bench: Bench, method: str, strategies: list[str], repeats: int) -> list[str]:
    rows = run_grid(bench, method)
    sweep_dir = bench.out / method / "grid"
    best, run_dir = best_run(sweep_dir, rows)
    cpu_seconds, iterations = cost(rows, bench.n_iter)
    grid = {"runs": len(rows), "cpu_seconds": cpu_seconds, "iterations": iterations,
            "target": mean_final(run_dir, bench.reruns), "winner": best["trial_id"],
            "rung_correlations": rung_correlations(sweep_dir, rows, bench.num_tasks)}
    print(f"{method}: grid done, {cpu_seconds:,.0f} CPU-s; target {grid['target']:.2f} %", flush=True)
    outcomes: dict[str, list[dict]] = {}
    for strategy in strategies:
        for repeat in range(repeats):
            outcome = run_repeat(bench, method, strategy, repeat, grid["target"], cpu_seconds)
            outcomes.setdefault(strategy, []).append(outcome)
            print(f"  {strategy} repeat {repeat}: {'reached' if outcome['reached'] else 'not reached'} after "
                  f"{outcome['trials']} trials, {outcome['cpu_seconds']:,.0f} CPU-s", flush=True)
    return method_report(method, grid, outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="finetune,ewc,si", help="Comma list of finetune, ewc, si.")
    parser.add_argument("--strategies", default="random,tpe,tpe_asha,tpe_warm",
                        help=f"Comma list of {', '.join(STRATEGIES)}.")
    parser.add_argument("--repeats", type=int, default=5, help="Sweeps per strategy (sampler seeds 0, 1, ...).")
    parser.add_argument("--n-iter", type=int, default=300, help="Training iterations per task.")
    parser.add_argument("--num-tasks", type=int, default=10)
    parser.add_argument("--max-concurrent", type=int, default=2, help="Trials at once in every sweep.")
    parser.add_argument("--out", default="results/bench_search", help="Output folder, reused by a rerun.")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop our sweeps on the way out (finally blocks)
    methods, strategies = args.methods.split(","), args.strategies.split(",")
    unknown = sorted(set(methods) - set(STRENGTHS)) + sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        parser.error(f"unknown method or strategy: {', '.join(unknown)}")

    out = Path(args.out).resolve()
    bench = Bench(out / f"tasks{args.num_tasks}_iter{args.n_iter}", out / "reruns", args.num_tasks, args.n_iter,
                  args.max_concurrent)
    lines = [line for method in methods for line in bench_method(bench, method, strategies, args.repeats)]
    lines += ["cost: CPU seconds of every trial (pruned and failed included) until the first whose 3-seed mean is "
              f"within {TOLERANCE} points of the target; the seed reruns are evaluation, not search, and not counted",
              "goal: the best strategy <= 0.25 of the grid's compute (median), random <= 0.60",
              f"machine: {machine()}",
              "command: python " + shlex.join(sys.argv)]
    text = "\n".join(lines)
    print(text)
    (bench.out / "report.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
