"""Population training against single runs (not a test): configuration-iterations per second.

    python bench/bench_population.py [--iters 300] [--repeats 3] [--sizes 1,8,32] [--methods finetune,ewc,si]

The study's network (32-unit LSTM, multi-head, batch 64) on the embedded surrogate data, one
thread (what ``train`` and ``train_population`` use).  Timed: the second task's training loop
(penalties active there), for ``train`` (one run: its iterations/s is what P single runs in a
row achieve) and for ``train_population`` with P members that differ in seed and learning rate
(P x iterations / s).  Best of ``--repeats`` (wall and CPU time): the machine is shared.
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from cl_rnn import population as population_module
from cl_rnn.config import Config
from cl_rnn.data.tasks import load_tasks
from cl_rnn.population import train_population
from cl_rnn.train import train
from _timing import Timer, iterations  # bench/ is the script's folder

STUDY_NET = dict(multi_head=True, rnn_arch="32", batch_size=64, net_act="tanh", num_tasks=2)
METHODS = {
    "finetune": {},
    "finetune+clip": dict(clip_grad_norm=1.0),
    "ewc": dict(use_ewc=True, ewc_lambda=100.0, n_fisher=500),
    "si": dict(use_si=True, si_lambda=1.0),
    "si_task_loss_only": dict(use_si=True, si_lambda=1.0, si_task_loss_only=True),
    "ortho_reg": dict(orthogonal_hh_reg=1.0),
    "masks": dict(use_masks=True, mask_fraction=0.5, no_context_mod_outputs=True, dont_softplus_gains=True),
    "task_identity": dict(input_task_identity=True),
}


def configs(flags: dict, size: int, iters: int, out: str) -> list[Config]:
    return [Config(**STUDY_NET, n_iter=iters, random_seed=k, lr=1e-4 * (1 + k % 4), out_dir=f"{out}/{k}",
                   overwrite=True, **flags) for k in range(size)]


def single_speed(flags, tasks, iters, repeats, out) -> tuple[float, float]:
    with Timer(population_module._Population, "_optimise", iterations) as timer:
        for _ in range(repeats):
            train(configs(flags, 1, iters, out)[0], tasks=tasks)
    second_tasks = timer.speeds[1::2]
    return max(s[0] for s in second_tasks), max(s[1] for s in second_tasks)


def population_speed(flags, tasks, size, iters, repeats, out) -> tuple[float, float]:
    with Timer(population_module._Population, "_optimise", iterations) as timer:
        for _ in range(repeats):
            train_population(configs(flags, size, iters, out), tasks=tasks)
    second_tasks = timer.speeds[1::2]
    return max(s[0] for s in second_tasks), max(s[1] for s in second_tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="1,8,32")
    parser.add_argument("--methods", default="finetune,ewc,si")
    args = parser.parse_args()
    tasks = load_tasks(Config(**STUDY_NET))
    out = tempfile.mkdtemp(prefix="bench_population_")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"torch {torch.__version__}, 1 thread, best of {args.repeats}, {args.iters} iterations per task; "
          "configuration-iterations/s, wall (cpu); speed-up = population / single runs, wall (cpu)")
    print(f"{'method':18s} {'single runs':>16s} " + " ".join(f"{'P=' + str(p):>30s}" for p in sizes))
    for name in args.methods.split(","):
        flags = METHODS[name]
        single = single_speed(flags, tasks, args.iters, args.repeats, f"{out}/{name}_single")
        cells = []
        for size in sizes:
            wall, cpu = population_speed(flags, tasks, size, args.iters, args.repeats, f"{out}/{name}_{size}")
            cells.append(f"{wall:5.0f} ({cpu:5.0f}) {wall / single[0]:4.2f}x ({cpu / single[1]:4.2f}x)")
        print(f"{name:18s} {single[0]:7.0f} ({single[1]:6.0f}) " + " ".join(f"{c:>30s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
