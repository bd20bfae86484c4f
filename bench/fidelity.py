"""Fidelity (not a test): every command line of the study's README, the study's own code against cl-rnn.

    python bench/fidelity.py [--data FILE.h5] [--n-iter 500] [--seeds 42,1,2] [--lines hnet,ewc] [--jobs 2]

Each published line (search_spaces/_published.py), with ``--n_iter`` and ``--random_seed`` appended,
runs through the study's own code (``../shared/study/run.sh``; set it up first, see that folder's
README) and through cl-rnn's ``train_split_audioset.py``, both on the same data: ``--data`` (default:
the embedded surrogate) is exported in the study's pickle format and installed where the study's code
reads it.  Both sides' performance_overview.txt are read the same way; the table shows per line the
mean +- std over the seeds of final and during accuracy, the differences, how many tasks each side
trained ("s": stopped by the criterion), and a verdict: "ok" when both means lie within --tolerance points
and every seed finishes or stops alike; "DIFFERS" when a mean lies further apart than the tolerance and
than two standard errors of the difference; "unclear" when it lies further than the tolerance but the
seeds scatter too much to tell (rerun that line with more --seeds).

The study's results are cached in --cache (default results/fidelity/study.json) by dataset, command line
and seed, so a rerun costs only cl-rnn's runs (cl-rnn's are never cached: its code is what changes).
``$STUDY`` names the study's install (default /tmp/study); the bench replaces the dataset it reads, so
two benches on different data at once need two installs and two --cache folders.  Expect hours at the
default settings on 2 cores: the study's code takes ~1 CPU-minute per line and seed, Online EWC ~8
(its Fisher goes one sample at a time).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cl_rnn.atomic import write_atomic  # noqa: E402
from cl_rnn.data.surrogate import ensure_surrogate  # noqa: E402
from _study import (STUDY_RUN, Outcome, install_data, log_path, published, read_overview,  # noqa: E402
                    study_ready)

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_study(flags: list[str], out: Path) -> Outcome:
    with open(log_path(out), "w") as log:
        subprocess.run(["bash", str(STUDY_RUN), str(out), "--", *flags], stdout=log, stderr=subprocess.STDOUT,
                       env={**os.environ, **ONE_THREAD}, check=True)
    return read_overview(out / "performance_overview.txt")


def run_cl_rnn(flags: list[str], data: Path, out: Path) -> Outcome:
    command = [sys.executable, str(ROOT / "train_split_audioset.py"), *flags, f"--data={data}",
               f"--out_dir={out}", "--overwrite"]
    with open(log_path(out), "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ONE_THREAD},
                       check=True, cwd=ROOT)
    return read_overview(out / "performance_overview.txt")


class StudyCache:
    """The study's outcomes by dataset sha1, command line and seed, in one JSON file."""

    def __init__(self, path: Path, dataset: str):
        self.path, self.dataset = path, dataset
        self.entries = json.loads(path.read_text()) if path.exists() else {}
        self.lock = threading.Lock()  # runs finish on the pool's threads

    def key(self, flags: list[str]) -> str:
        return f"{self.dataset} {' '.join(flags)}"

    def get(self, flags: list[str]) -> Outcome | None:
        entry = self.entries.get(self.key(flags))
        return Outcome(**entry) if entry else None

    def put(self, flags: list[str], outcome: Outcome) -> None:
        with self.lock:
            self.entries[self.key(flags)] = outcome.__dict__
            write_atomic(self.path, json.dumps(self.entries, indent=1, sort_keys=True))


def mean(values: list[float]) -> float:
    """NaN where a value is NaN (multitask writes no during accuracy)."""
    return math.fsum(values) / len(values)


def std(values: list[float]) -> float:
    average = mean(values)
    return math.sqrt(math.fsum((v - average) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0


def mean_std(values: list[float]) -> str:
    return f"{mean(values):5.1f} +- {std(values):4.1f}"


def gap(study: list[float], ours: list[float]) -> tuple[float, float]:
    """The difference of the means (cl-rnn - study) and its standard error over the seeds."""
    error = math.sqrt(std(study) ** 2 / len(study) + std(ours) ** 2 / len(ours))
    return mean(ours) - mean(study), error


# Where cl-rnn does the intended thing and README says how the study's code differs: line -> measure.
DOCUMENTED = {"from_scratch": "final"}  # the study tests every task with the last task's network


def verdict(name: str, study: list[Outcome], ours: list[Outcome], tolerance: float) -> str:
    """"ok" within ``tolerance``; "DIFFERS" beyond it by more than two standard errors of the difference;
    "unclear" in between: the seeds scatter too much to tell, rerun the line with more --seeds."""
    gaps = {measure: gap([getattr(o, measure) for o in study], [getattr(o, measure) for o in ours])
            for measure in ("final", "during")}
    documented = DOCUMENTED.get(name)
    checked = [(abs(d), e) for measure, (d, e) in gaps.items() if not math.isnan(d) and measure != documented]
    # Finished or stopped, seed by seed: where a criterion sits within the seed noise (masking's 25% at a few
    # hundred iterations), the task a run stops after varies from seed to seed in either code.
    if [o.finished for o in ours] != [o.finished for o in study]:
        return "DIFFERS (stops)"
    if any(d > tolerance and d > 2 * e for d, e in checked):
        return "DIFFERS"
    if any(d > tolerance for d, _ in checked):
        return "unclear: within 2 standard errors, add --seeds"
    return f"ok ({documented} differs as README documents)" if documented and abs(gaps[documented][0]) > tolerance \
        else "ok"


def table_row(name: str, study: list[Outcome], ours: list[Outcome], tolerance: float) -> str:
    def means(outcomes: list[Outcome]) -> str:
        return f"{mean_std([o.final for o in outcomes])}  {mean_std([o.during for o in outcomes])}"

    delta_final = gap([o.final for o in study], [o.final for o in ours])[0]
    delta_during = gap([o.during for o in study], [o.during for o in ours])[0]
    stops = ",".join(str(o.trained) + ("" if o.finished else "s") for o in study)
    our_stops = ",".join(str(o.trained) + ("" if o.finished else "s") for o in ours)
    return (f"{name:<40} | {means(study)} | {means(ours)} | {delta_final:+5.1f} {delta_during:+5.1f} | "
            f"{stops:>9} {our_stops:>9} | {verdict(name, study, ours, tolerance)}")


HEADER = (f"{'line':<40} | {'study final':>13}  {'study during':>13} | {'cl-rnn final':>13}  "
          f"{'cl-rnn during':>13} | {'dfinal':>5} {'dduring':>5} | {'study tasks':>9} {'cl-rnn':>9} | verdict")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="a cl-rnn dataset (default: the surrogate)")
    parser.add_argument("--n-iter", type=int, default=500)
    parser.add_argument("--seeds", default="42,1,2")
    parser.add_argument("--lines", default="", help="comma-separated line names, as the table names them "
                        "(default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--tolerance", type=float, default=5.0, help="points")
    parser.add_argument("--cache", type=Path, default=ROOT / "results" / "fidelity")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = study_ready()
    if missing:
        print(f"fidelity: skipped: {missing}")
        return 0
    data = (args.data or ensure_surrogate()).resolve()
    lines = published()
    names = [n for n in args.lines.split(",") if n] or list(lines)
    unknown = sorted(set(names) - set(lines))
    if unknown:
        print(f"fidelity: error: unknown line {unknown[0]!r}; known: {', '.join(lines)}", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    cache = StudyCache(args.cache / "study.json", install_data(data, args.cache))
    runs = tempfile.mkdtemp(prefix="fidelity_", dir=args.cache)
    print(f"data {data} ({cache.dataset[:12]}), --n_iter={args.n_iter}, seeds {seeds}; run folders {runs}")

    def study_outcome(flags: list[str], out: Path) -> Outcome:
        outcome = cache.get(flags)
        if outcome is None:
            outcome = run_study(flags, out)
            cache.put(flags, outcome)
        return outcome

    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {}
        for name in names:
            for seed in seeds:
                flags = [*lines[name], f"--n_iter={args.n_iter}", f"--random_seed={seed}"]
                out = Path(runs) / f"{name.replace(' ', '_')}_{seed}"
                futures[name, seed] = (pool.submit(study_outcome, flags, out.with_name(out.name + "_study")),
                                       pool.submit(run_cl_rnn, flags, data, out.with_name(out.name + "_cl_rnn")))
        print(HEADER)
        failed = 0
        for name in names:
            try:
                study = [futures[name, seed][0].result() for seed in seeds]
                ours = [futures[name, seed][1].result() for seed in seeds]
            except (subprocess.CalledProcessError, OSError, KeyError, ValueError) as err:
                failed += 1
                print(f"{name:<40} | a run failed ({err}); its log is in {runs}", flush=True)
                continue
            print(table_row(name, study, ours, args.tolerance), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
