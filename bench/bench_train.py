"""Speed of the training loop per method (not a test): iterations/s, Fisher time, start-up, memory.

    python bench/bench_train.py [--iters 3000] [--repeats 3] [--threads 1,2]

The study's network (32-unit LSTM, multi-head, batch 64) on the embedded surrogate data, one
thread (what ``train`` uses, and a sweep's trials), or with ``--threads`` each count in turn (a run
alone from the command line uses every core: ``train(threads=...)``).  Each figure is the best of
``--repeats`` runs: the machine is shared, so the best run is the least disturbed one.  Targets
(2 CPU cores): fine-tuning >= 1,350 it/s; EWC and SI within 20% of it; Fisher <= 2 s per task;
first iteration <= 2 s after process start; peak RSS <= 500 MB.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import torch

from cl_rnn.config import Config
from cl_rnn.data.tasks import load_tasks
from cl_rnn.methods.ewc import task_fisher
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn import population as population_module
from cl_rnn.train import train
from _timing import Timer, iterations  # bench/ is the script's folder

STUDY_NET = dict(multi_head=True, rnn_arch="32", batch_size=64, lr=1e-4, net_act="tanh")
METHODS = {
    "finetune": {},
    "finetune+clip": dict(clip_grad_norm=1.0),
    "ewc": dict(use_ewc=True, ewc_lambda=100.0),
    "si": dict(use_si=True, si_lambda=1.0),
    "si_task_loss_only": dict(use_si=True, si_lambda=1.0, si_task_loss_only=True),
    "ortho_reg": dict(orthogonal_hh_reg=1.0),
    "task_identity": dict(input_task_identity=True),
    "multitask": dict(multitask=True),
}


def loop_speed(flags: dict, tasks, iters: int, repeats: int, out: str, threads: int = 1) -> tuple[float, float]:
    """Best wall-clock and best CPU-time it/s of the second task's training loop (penalties are
    active there; multitask: the whole run).  CPU time counts only this process's running time,
    so it is the steadier figure on a shared machine."""
    best = (0.0, 0.0)
    with Timer(population_module._Population, "_optimise", iterations) as timer:
        for _ in range(repeats):
            timer.speeds.clear()
            config = Config(**STUDY_NET, num_tasks=2, n_iter=iters, out_dir=out, overwrite=True, **flags)
            train(config, tasks=tasks, threads=threads)
            best = (max(best[0], timer.speeds[-1][0]), max(best[1], timer.speeds[-1][1]))
    return best


def fisher_seconds(tasks, repeats: int) -> float:
    config = Config(**STUDY_NET, use_ewc=True)
    net = RecurrentNet(NetSpec.from_config(config))
    theta = net.init_weights()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        task_fisher(config, net, theta, tasks[0], 0, None)
        best = min(best, time.perf_counter() - started)
    torch.set_num_threads(threads)
    return best


STARTUP = """
import time, resource, sys
from pathlib import Path
born = float(Path('/proc/self/stat').read_text().split()[21]) / __import__('os').sysconf('SC_CLK_TCK')
boot = float(Path('/proc/uptime').read_text().split()[0])
age = lambda: time.clock_gettime(time.CLOCK_BOOTTIME) - born
import cl_rnn.train as t
from cl_rnn.learners import AutogradLearner, KernelLearner
first = []
def timed(update):
    def first_update(self):
        update(self)
        if not first:
            first.append(age())
    return first_update
for learner in (AutogradLearner, KernelLearner):
    learner.update = timed(learner.update)
from cl_rnn.rules import from_argv
t.train(from_argv(sys.argv[1:]))
print(first[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def startup_and_memory(argv: list[str]) -> tuple[float, float]:
    """Seconds from process start to the end of the first iteration, and peak RSS (MB) of a run."""
    done = subprocess.run([sys.executable, "-c", STARTUP, *argv], capture_output=True, text=True, check=True)
    first, rss = done.stdout.split()[-2:]
    return float(first), float(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--threads", default="1", help="Comma list of thread counts to time the loop with.")
    args = parser.parse_args()
    tasks = load_tasks(Config(**STUDY_NET))
    out = tempfile.mkdtemp(prefix="bench_train_")
    print(f"torch {torch.__version__}, best of {args.repeats}, {args.iters} iterations per task")
    print(f"{'':18s} {'wall':>8s} {'cpu':>8s}  (iterations/s)")
    counts = [int(t) for t in args.threads.split(",")]
    for name in args.methods.split(","):
        for threads in counts:
            wall, cpu = loop_speed(METHODS[name], tasks, args.iters, args.repeats, f"{out}/{name}", threads)
            label = name if counts == [1] else f"{name} x{threads}"
            print(f"{label:18s} {wall:8.0f} {cpu:8.0f}")
    print(f"{'fisher (7,500)':18s} {fisher_seconds(tasks, args.repeats):8.2f} s (wall)")
    # The study's first EWC line (10 tasks, Fisher after each), shortened to 200 iterations per task.
    first, rss = startup_and_memory(["--multi_head", "--num_tasks=10", "--num_classes_per_task=10", "--batch_size=128",
                                     "--n_iter=200", "--lr=0.0001", "--rnn_arch=32", "--use_ewc", "--ewc_lambda=100.0",
                                     "--n_fisher=-1", f"--out_dir={out}/startup", "--loglevel_info"])
    print(f"{'first iteration':18s} {first:8.2f} s after process start (data already cached)")
    print(f"{'peak RSS':18s} {rss:8.0f} MB (the study's EWC line, 10 tasks, 200 iterations each)")


if __name__ == "__main__":
    main()
