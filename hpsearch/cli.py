"""``hpsearch``: sweeps of the study's methods, and what to do with their results.

Adding a subcommand is one decorated function here: ``@subcommand(name, help, *arguments)``
(see hpsearch.commands), its arguments ``arg("--flag", ...)`` next to it.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from cl_rnn.config import OneLineParser
from hpsearch.commands import SUBCOMMANDS, Argument, UsageError, arg, subcommand


# --- hpsearch spaces ---------------------------------------------------------------------------

@subcommand("spaces", "List the methods' search spaces and their fixed flags.",
            arg("--method", help="Show only this method."))
def spaces(args: argparse.Namespace) -> int:
    """Each method (one file in search_spaces/), its fixed flags and the parameters it samples."""
    import search_spaces
    from cl_rnn.config import Config, to_argv

    names = [args.method] if args.method else search_spaces.names()
    for name in names:
        space = search_spaces.load(name)
        print(f"{name}: {space.summary}")
        config = Config().replace(**space.fixed)
        print(f"  fixed:   {' '.join(to_argv(config))}")
        print(f"  methods: {_methods_text(config)}")
        print(f"  population: {_population_text(config)}")
        for param, distribution in search_spaces.parameters(space).items():
            print(f"  {param:<22} {_distribution_text(distribution)}")
    return 0


def _methods_text(config: Any) -> str:
    """The registered methods (cl_rnn.methods.registry) that the fixed flags select."""
    from cl_rnn.methods import registry

    return ", ".join(f"{spec.name} ({spec.role})" for spec in registry.composition(config))


def _population_text(config: Any) -> str:
    """Whether ``hpsearch run --population P`` trains this method's trials together."""
    from cl_rnn.population import fallback_reason

    reason = fallback_reason(config)
    return "batched (--population P trains P trials in one pass)" if reason is None else f"single runs ({reason})"


def _distribution_text(distribution: Any) -> str:
    if hasattr(distribution, "choices"):
        return "one of " + ", ".join(map(str, distribution.choices))
    scale = " (log)" if getattr(distribution, "log", False) else ""
    step = f" step {distribution.step}" if getattr(distribution, "step", None) else ""
    return f"{distribution.low} .. {distribution.high}{scale}{step}"


# --- hpsearch run ----------------------------------------------------------------------------------

@subcommand(
    "run", "Run (or --resume) a sweep of one method: Optuna samples, Ray Tune runs the trials.",
    arg("--method", help="Search space to sample (see `hpsearch spaces`)."),
    arg("--num-samples", type=int, help="Trials in the sweep (default 8; with --grid: one per grid point)."),
    arg("--max-concurrent", type=int, help="At most this many trials at once (default: one per CPU)."),
    arg("--n-iter", type=int, help="Training iterations per task (default: the study's 5000)."),
    arg("--data", default="", help="HDF5 dataset (default: the embedded surrogate)."),
    arg("--name", default="", help="Sweep folder name under --results (default: <method>-<time>)."),
    arg("--results", default="results", help="Folder holding sweep folders (default results)."),
    arg("--address", help="Join this Ray cluster (HOST:PORT) instead of starting one on this machine."),
    arg("--scheduler", choices=("none", "asha"),
        help="asha: stop weak trials early, compared after each task (the default for one --metric without "
             "--grid); none: every trial runs to its end (the default otherwise)."),
    arg("--metric", choices=("final", "during", "during,final"), default="final", metavar="final|during|during,final",
        help="Optimise mean final (default) or mean during accuracy, or both (two objectives: a Pareto front)."),
    arg("--seed", type=int, default=42,
        help="Every trial's --random_seed, and the sampler's seed (see --sampler-seed)."),
    arg("--sampler", choices=("tpe", "random"), default="tpe",
        help="tpe: Optuna's TPE, which models the trials so far (default); random: independent draws."),
    arg("--sampler-seed", type=int, metavar="S",
        help="Seed of the sampler alone (default: --seed); every trial keeps --seed as its --random_seed."),
    arg("--flag", action="append", default=[], metavar="NAME=VALUE",
        help="Any study flag for every trial, e.g. --flag num_tasks=2 --flag during_acc_criterion=60."),
    arg("--train", default="", metavar="MODULE:FUNCTION",
        help="Training function to call instead of cl_rnn.train:train (tests, custom trainers)."),
    arg("--population", type=int, default=1, metavar="P",
        help="Train P sampled configurations together in each trial (default 1; see `hpsearch spaces`)."),
    arg("--grid", metavar="FILE", help="Run each point of a grid in the study's format once (a Python file "
        "assigning `grid` and `conditions`, read as literals) instead of sampling the method's space."),
    arg("--warm-start", action="store_true",
        help="Run the method's published line (the study's README) as the first trial."),
    arg("--resume", metavar="NAME", help="Continue the sweep results/NAME after its driver died."),
    arg("--verbose", action="store_true", help="Ray's own progress and logs."))
def run(args: argparse.Namespace) -> int:
    """Each trial writes a run folder like a single run; the sweep folder gets trials.csv and an
    Optuna journal (optuna-dashboard results/NAME/optuna.journal)."""
    from hpsearch import sweep
    from hpsearch.settings import settings_of

    if args.resume:
        return _run_status(sweep.resume(args.results, args.resume, args.address, args.verbose))
    return _run_status(sweep.run(settings_of(args)))


def _run_status(rows: list[dict[str, Any]]) -> int:
    """1 when every trial failed (a broken setup, not a bad sample), else 0; pruned trials are results."""
    from hpsearch.trial import FAILED

    failed = [row for row in rows if row["state"] == FAILED]
    if not rows or len(failed) < len(rows):
        return 0
    print(f"hpsearch run: all {len(rows)} trials failed; the first: {failed[0].get('error') or 'no message'}",
          file=sys.stderr)
    return 1


# --- hpsearch analyze | export | seeds | report -----------------------------------------------------

def _sweep_args(top: int) -> tuple[Argument, ...]:
    return (arg("sweep", metavar="SWEEP", help="A sweep folder (results/NAME), a sweep's NAME under --results, "
                "or any folder of run folders."),
            arg("--results", default="results", help="Where a sweep NAME is looked up (default results)."),
            arg("--by", choices=("final", "during", "pareto"), default="final",
                help="Rank by mean final (default) or mean during accuracy, or list the Pareto front."),
            arg("--top", type=int, default=top, help=f"How many winners (default {top}; 0: all)."),
            arg("--min-during", type=float, metavar="X",
                help="Only trials with mean during accuracy >= X (%%)."))


def _analysis_errors() -> tuple[type[Exception], ...]:
    from hpsearch.analyze import AnalysisError

    return AnalysisError, FileNotFoundError


def _sweep(args: argparse.Namespace) -> Any:
    from hpsearch.user_files import sweep_folder

    return sweep_folder(args.sweep, args.results)


@subcommand("analyze", "Rank a sweep's finished trials by final or during accuracy, or its Pareto front.",
            *_sweep_args(10), arg("--csv", metavar="FILE", help="Also write the whole table (every trial)."))
def analyze(args: argparse.Namespace) -> int:
    """One row per trial: state, mean and min during and final accuracy, duration, hyperparameters.
    Pruned and failed trials are listed in --csv but never ranked."""
    from hpsearch import analyze as analysis
    from hpsearch.user_files import write_output

    try:
        sweep = _sweep(args)
        table = analysis.load_runs(sweep)
        ranked = analysis.select(table, args.by, args.top, args.min_during)
        if args.csv:
            write_output(args.csv, table.to_csv(index=False), "give --csv a writable path")
    except _analysis_errors() as err:
        raise UsageError(str(err)) from None
    heading = analysis.heading(table, ranked, args.by, args.min_during)
    print(f"{sweep}: {len(table)} trials ({analysis.state_counts(table)})\n{heading}:")
    print(analysis.format_ranking(ranked, analysis.param_columns(table)))
    if args.csv:
        print(f"table of all {len(table)} trials: {args.csv}")
    return 0


@subcommand("export", "Write the winners as train_split_audioset.py lines (default SWEEP/winners.txt).",
            *_sweep_args(1), arg("--out", metavar="FILE", help="Where to write (default SWEEP/winners.txt)."))
def export(args: argparse.Namespace) -> int:
    """Each line holds the trial's whole configuration (fixed, sampled and sweep-set flags, its seed),
    never its run folder: running it reproduces the trial's accuracy matrix."""
    from pathlib import Path

    from hpsearch.analyze import load_runs
    from hpsearch.export import export as export_winners

    try:
        sweep = _sweep(args)
        out = Path(args.out or sweep / "winners.txt")
        text = export_winners(load_runs(sweep), out, args.by, args.top, args.min_during)
    except _analysis_errors() as err:
        raise UsageError(str(err)) from None
    print(text + f"written to {out}")
    return 0


@subcommand("seeds", "Rerun the winners with N seeds as Ray trials; mean, std, SEM and min over seeds.",
            *_sweep_args(1), arg("--num-seeds", type=int, default=10, help="Runs per winner (default 10)."),
            arg("--max-concurrent", type=int, help="At most this many reruns at once (default: one a CPU)."),
            arg("--population", type=int, default=0, metavar="P",
                help="Train up to P reruns together in one trial where the method is batched "
                     "(default 0: spread evenly over the cluster's CPUs; 1: off)."),
            arg("--address", help="Join this Ray cluster (HOST:PORT)."),
            arg("--verbose", action="store_true", help="Ray's own progress and logs."))
def seeds(args: argparse.Namespace) -> int:
    """The winner's own seed plus seeds 0, 1, ... with --during_acc_criterion off, each into
    SWEEP/seeds/<trial>/seed_<s>/; reruns that already have a result are not repeated."""
    import functools

    from hpsearch import ray_adapter
    from hpsearch.analyze import load_runs
    from hpsearch.seeds import SEEDS_CSV, SEEDS_DIR, all_failed, format_statistics, run_seeds

    try:
        sweep = _sweep(args)
        runner = functools.partial(ray_adapter.run_configs, storage=sweep / SEEDS_DIR, address=args.address,
                                   verbose=args.verbose, max_concurrent=args.max_concurrent,
                                   population=args.population)
        rows, stats = run_seeds(sweep, load_runs(sweep), runner, args.by, args.top, args.num_seeds, args.min_during)
    except _analysis_errors() as err:
        raise UsageError(str(err)) from None
    shown = rows[["trial", "seed", "state", "during", "final", "error"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(format_statistics(stats))
    print(f"written to {sweep / SEEDS_CSV}")
    failure = all_failed(rows)
    if failure:
        print(f"hpsearch seeds: {failure}", file=sys.stderr)
    return 1 if failure else 0


@subcommand("report", "Plots (PNG) and a Markdown summary of a sweep: SWEEP/report.md, SWEEP/plots/.",
            *_sweep_args(5)[:4])
def report(args: argparse.Namespace) -> int:
    """The winner's accuracy matrix and per-task accuracy, during vs final of all trials with the
    Pareto front, Optuna's hyperparameter importances, the ranking and the winners' command lines."""
    from hpsearch.report import write_report

    try:
        path = write_report(_sweep(args), args.by, args.top)
    except _analysis_errors() as err:
        raise UsageError(str(err)) from None
    print(f"{path}")
    for png in sorted((path.parent / "plots").glob("*.png")):
        print(f"  {png}")
    return 0


# --- hpsearch slurm -------------------------------------------------------------------------------------

@subcommand(
    "slurm", "Write an sbatch script that runs a sweep on a SLURM allocation as a Ray cluster (--submit: submit it).",
    arg("--nodes", type=int, required=True, metavar="N", help="Nodes to allocate: the Ray head and N-1 workers."),
    arg("--cpus-per-node", type=int, required=True, metavar="C", help="CPUs per node, all of them Ray's."),
    arg("--gpus-per-node", type=int, default=0, metavar="G", help="GPUs per node (default 0)."),
    arg("--time", required=True, metavar="HH:MM:SS", help="The allocation's time limit."),
    arg("--partition", default="", metavar="P", help="SLURM partition (default: the cluster's)."),
    arg("--account", default="", metavar="A", help="SLURM account to charge."),
    arg("--submit", action="store_true", help="Submit the script with sbatch."),
    arg("run_args", nargs=argparse.REMAINDER, metavar="-- RUN_ARGUMENTS", help="The sweep: `hpsearch run` arguments."))
def slurm(args: argparse.Namespace) -> int:
    """The script starts Ray on every node with srun, runs `hpsearch run --address` on the first node and
    stops Ray when the sweep ends or the job is cancelled; `-- --resume NAME` continues a sweep."""
    from hpsearch import slurm as batch

    try:
        return batch.create(args, build_parser())
    except batch.SlurmError as err:
        raise UsageError(str(err)) from None


# --- entry point -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="hpsearch", description=__doc__.splitlines()[0], allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.handler.__doc__,
                                  allow_abbrev=False)
        for argument in command.arguments:
            sub.add_argument(*argument.names, **argument.options)
    return parser


def _known_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's input, printed as one line (imported late: they pull in optuna)."""
    import search_spaces
    from hpsearch.settings import SweepError

    return UsageError, SweepError, search_spaces.SpaceError


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return SUBCOMMANDS[args.command].handler(args)
    except _known_errors() as err:
        print(f"hpsearch {args.command}: {err}", file=sys.stderr)
        return getattr(err, "exit_status", 2)  # 2: bad input; a sweep's live driver (SweepBusy): 1


if __name__ == "__main__":
    sys.exit(main())
