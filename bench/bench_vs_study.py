"""Speed against the study's own code (not a test): the same lines, the same data, one machine, one run.

    python bench/bench_vs_study.py [--n-iter 300] [--repeats 2] [--lines finetune,ewc,si,masking,hnet,coresets]

Per line (the study's published line of the method, as ``search_spaces/_published.py`` keeps it; coresets
with --coreset_size=100), with ``--n_iter``, 10 tasks, ``--random_seed=42`` and no
``--during_acc_criterion`` (every run trains every task), both programs run as whole
processes on the embedded surrogate (exported to the study's pickle and installed where its code reads it,
see ``../shared/study/``), alternating study, cl-rnn, study, cl-rnn, ... ``--repeats`` times; each runs as
it would alone: the study's code with torch's default threads, cl-rnn as its command line does.  Printed
per line: the median wall seconds of each whole process and their ratio, and each side's training rate:
(n_iter - 1) x tasks extra iterations over the extra seconds a run with ``--n_iter`` takes against one
with ``--n_iter=1`` (start-up, data loading and evaluation cancel out; medians too).

With ``--baseline DIR`` (another checkout of cl-rnn, e.g. the code before a change, run with its own
``.venv`` when it has one) its runs join the alternation and its columns are printed beside this tree's.

Then this machine's limit for the study's network (32-unit LSTM, batch 64, 10 steps of 128 inputs, a
10-way head): the FLOPs of one training iteration's matrix products, counted below, each timed on one
thread at its own shape; the limit is the iterations per second if an iteration cost only those
products, and cl-rnn's fine-tuning rate is given as a fraction of it.  Ratios are only of figures from
this one run; the machine is printed with them.
"""
from __future__ import annotations

import argparse
import math
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cl_rnn.data.surrogate import ensure_surrogate  # noqa: E402
from cl_rnn.nets.matmul import onednn_available  # noqa: E402
from _study import STUDY_RUN, install_data, read_overview, study_ready  # noqa: E402
from _timing import machine  # noqa: E402
from search_spaces._published import LINES  # noqa: E402

CHOICES = {"finetune": ("finetune", []), "ewc": ("ewc", []), "si": ("si", []), "masking": ("masking", []),
           "hnet": ("hnet", []), "coresets": ("coresets", ["--coreset_size=100"]), "multitask": ("multitask", [])}
BATCH, STEPS, INPUTS, HIDDEN, CLASSES = 64, 10, 128, 32, 10


def line_flags(name: str, n_iter: int) -> list[str]:
    method, extra = CHOICES[name]
    # no --during_acc_criterion: a run stopped early would train fewer iterations than the rates assume
    return [*shlex.split(LINES[method][0]), *extra, "--num_tasks=10", f"--n_iter={n_iter}", "--random_seed=42",
            "--during_acc_criterion=-1"]


def timed(command: list[str], log: Path, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    with open(log, "w") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True, cwd=cwd)
    return time.perf_counter() - started


def study_command(flags: list[str], out: Path) -> list[str]:
    return ["bash", str(STUDY_RUN), str(out), "--", *flags]


def cl_rnn_command(tree: Path, flags: list[str], data: Path, out: Path) -> list[str]:
    """A checkout's command line, with its own virtual environment's python where it has one."""
    own = tree / ".venv" / "bin" / "python"
    python = str(own) if tree != ROOT and own.exists() else sys.executable
    return [python, str(tree / "train_split_audioset.py"), *flags, f"--data={data}", f"--out_dir={out}",
            "--overwrite"]


def measure_line(name: str, n_iter: int, repeats: int, data: Path, runs: Path,
                 trees: dict[str, Path]) -> dict[str, list[float]]:
    """Wall seconds per side (the study, then each cl-rnn tree) and --n_iter (n_iter and 1), alternating."""
    seconds: dict[str, list[float]] = {}
    for repeat in range(repeats):
        for iters in (n_iter, 1):
            flags = line_flags(name, iters)
            for side in ("study", *trees):
                out = runs / f"{name}_{side}_{iters}_{repeat}"
                command = (study_command(flags, out) if side == "study"
                           else cl_rnn_command(trees[side], flags, data, out))
                seconds.setdefault(f"{side}_{iters}", []).append(timed(command, runs / f"{out.name}.log"))
                read_overview(out / "performance_overview.txt")  # the run ended with its summary
    return seconds


def training_rate(long: list[float], short: list[float], n_iter: int) -> float:
    extra = statistics.median(long) - statistics.median(short)
    return (n_iter - 1) * 10 / extra if extra > 0 else math.nan


# --- the machine's limit -------------------------------------------------------------------------

def iteration_products() -> list[tuple[str, tuple[int, int, int], int]]:
    """(what, (m, k, n), how many) for the matrix products of one training iteration (m x k @ k x n).

    Forward: the input projection of all steps at once, the recurrent product of steps 1..T-1, the head
    on the last step.  Backward: the input weights' gradient, the recurrent weights' gradient and the
    gradient flowing back through the recurrent weights (steps 1..T-1), the head's weight and input
    gradients.  The input itself needs no gradient.  Elementwise work (gates, Adam) is left out."""
    rows = BATCH * STEPS
    return [("input projection", (rows, INPUTS, 4 * HIDDEN), 1),
            ("recurrent step", (BATCH, HIDDEN, 4 * HIDDEN), STEPS - 1),
            ("head", (BATCH, HIDDEN, CLASSES), 1),
            ("input weights' gradient", (4 * HIDDEN, rows, INPUTS), 1),
            ("recurrent weights' gradient", (4 * HIDDEN, BATCH * (STEPS - 1), HIDDEN), 1),
            ("recurrent backward step", (BATCH, 4 * HIDDEN, HIDDEN), STEPS - 1),
            ("head gradients", (CLASSES, BATCH, HIDDEN), 1), ("head input gradient", (BATCH, CLASSES, HIDDEN), 1)]


def matmul_seconds(m: int, k: int, n: int, repeats: int = 2000) -> float:
    """Best-of-5 seconds of one float32 product of these shapes on one thread, by the faster of torch's
    ``mm`` (MKL) and oneDNN's linear kernel (what cl-rnn's ``matmul_nt`` uses where it exists)."""
    a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
    b_t = b.t().contiguous()
    products = [lambda: torch.mm(a, b, out=out)]
    if onednn_available():
        products.append(lambda: torch.ops.mkldnn._linear_pointwise(a, b_t, None, "none", [], ""))
    best = math.inf
    for product in products:
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(repeats):
                product()
            best = min(best, (time.perf_counter() - started) / repeats)
    return best


def machine_limit() -> tuple[float, float, float]:
    """(FLOPs of one iteration, seconds its products take at the measured speeds, GFLOP/s of the input projection)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        flops = seconds = 0.0
        for _, (m, k, n), count in iteration_products():
            flops += 2 * m * k * n * count
            seconds += matmul_seconds(m, k, n) * count
        m, k, n = iteration_products()[0][1]
        projection = 2 * m * k * n / matmul_seconds(m, k, n) / 1e9
    finally:
        torch.set_num_threads(threads)
    return flops, seconds, projection


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-iter", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--lines", default=",".join(CHOICES), help=f"Comma list of {', '.join(CHOICES)}.")
    parser.add_argument("--baseline", type=Path, help="Another cl-rnn checkout to time beside this one.")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_vs_study")
    args = parser.parse_args()
    names = [n for n in args.lines.split(",") if n]
    unknown = sorted(set(names) - set(CHOICES))
    if unknown:
        parser.error(f"unknown line {unknown[0]!r}; known: {', '.join(CHOICES)}")
    if args.baseline and not (args.baseline / "train_split_audioset.py").is_file():
        parser.error(f"--baseline {args.baseline}: no train_split_audioset.py there")
    missing = study_ready()
    if missing:
        print(f"bench_vs_study: skipped: {missing}")
        return 0
    trees = {"cl_rnn": ROOT} if args.baseline is None else {"baseline": args.baseline.resolve(), "cl_rnn": ROOT}
    sides = ["study", *trees]
    data = ensure_surrogate().resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    install_data(data, args.out)
    runs = Path(tempfile.mkdtemp(prefix="runs_", dir=args.out))
    print(f"machine: {machine()}; torch {torch.__version__}; data {data.name}; "
          f"--n_iter={args.n_iter}, 10 tasks, {args.repeats} repeats; logs in {runs}", flush=True)
    if args.baseline:
        print(f"baseline: {trees['baseline']} ({_commit(trees['baseline'])}); cl-rnn: {ROOT} ({_commit(ROOT)})")
    print(_row("line", [f"{s} s" for s in sides], [f"{s} it/s" for s in sides]), flush=True)
    rates: dict[str, dict[str, float]] = {}
    for name in names:
        s = measure_line(name, args.n_iter, args.repeats, data, runs, trees)
        wall = {side: statistics.median(s[f"{side}_{args.n_iter}"]) for side in sides}
        rates[name] = {side: training_rate(s[f"{side}_{args.n_iter}"], s[f"{side}_1"], args.n_iter)
                       for side in sides}
        print(_row(name, [f"{wall['study']:.1f}", *(f"{wall[t]:.1f} {wall['study'] / wall[t]:.1f}x" for t in trees)],
                   [f"{rates[name]['study']:.0f}",
                    *(f"{rates[name][t]:.0f} {rates[name][t] / rates[name]['study']:.1f}x" for t in trees)]),
              flush=True)
    flops, seconds, projection = machine_limit()
    print(f"limit: one training iteration of the study's network is {flops / 1e6:.1f} MFLOP of matrix products; "
          f"at this machine's single-thread speed for each shape (the faster of torch's mm and oneDNN; "
          f"input projection {projection:.0f} GFLOP/s) they take {seconds * 1e6:.0f} us: {1 / seconds:,.0f} it/s",
          flush=True)
    if "finetune" in rates:
        for tree in trees:
            rate = rates["finetune"][tree]
            print(f"{tree}'s fine-tuning line trains at {rate:,.0f} it/s: {rate * seconds:.0%} of that limit")
    print("command: python " + shlex.join(sys.argv))
    return 0


def _row(name: str, walls: list[str], rates: list[str]) -> str:
    return f"{name:<10} " + " ".join(f"{w:>13}" for w in walls) + " | " + " ".join(f"{r:>13}" for r in rates)


def _commit(tree: Path) -> str:
    found = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h"], capture_output=True, text=True)
    return found.stdout.strip() or "not a git checkout"


if __name__ == "__main__":
    sys.exit(main())
