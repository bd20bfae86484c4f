"""Speed of the advanced methods' training loops (not a test): iterations/s per method.

    python bench/bench_advanced.py [--iters 1000] [--repeats 3] [--tasks 10] [--methods hnet,masking,...]

The study's lines (32-unit LSTM, multi-head; batch 128 for the hypernetwork, 64 otherwise) on the
embedded surrogate data, one thread (what ``train`` uses), validation as the trainer does it
(only with ``--use_best_models``).  The figure is the it/s of the *last* task of a ``--tasks``-task
run: the regularisers are largest there (the hypernetwork's output regulariser covers 9 earlier
tasks, replay draws from 9 coresets).  Each figure is the best of ``--repeats`` rounds (a round runs
every method once, so the methods of a round see similar load): the machine is shared, so the best
run is the least disturbed one.  Wall-clock and CPU-time it/s are reported; CPU time (this process's
running time only) and the ratio to fine-tuning at the same batch size are the steadier figures.

Targets (2 CPU cores), 5x the study's own speed: hypernetwork >= 400 it/s (study ~50-80),
coresets >= 170 it/s (study ~34); masking within 20% of fine-tuning (>= 1,350 it/s).
"""
from __future__ import annotations

import argparse
import tempfile

import cl_rnn.population as population_module
from cl_rnn.config import Config
from cl_rnn.data.tasks import load_tasks
from cl_rnn.train import train
from _timing import Timer, iterations  # bench/ is the script's folder

STUDY_NET = dict(multi_head=True, rnn_arch="32", net_act="tanh", lr=1e-4, num_classes_per_task=10)
HNET = dict(hnet_all=True, use_new_hnet=True, nh_hnet_type="chunked_hmlp", nh_hmlp_arch="10,10",
            nh_chmlp_chunk_size=2000, nh_cond_emb_size=32, nh_chunk_emb_size=32, std_normal_temb=1.0,
            std_normal_emb=0.1, beta=1.0, weight_decay=0.01, batch_size=128)
MASKS = dict(use_masks=True, no_context_mod_outputs=True, dont_softplus_gains=True, batch_size=64)
METHODS = {
    "finetune": dict(batch_size=64),
    "finetune_b128": dict(batch_size=128),
    "hnet": HNET,
    "masking": dict(MASKS, mask_fraction=0.6),
    "masking_si": dict(MASKS, mask_fraction=0.4, clip_grad_norm=1.0, use_si=True, si_lambda=100.0,
                       si_task_loss_only=True),
    "coreset100": dict(batch_size=64, clip_grad_norm=1.0, use_best_models=True, use_replay=True,
                       replay_distill_reg=10.0, coreset_size=100),
    "coreset500": dict(batch_size=64, use_best_models=True, use_replay=True, replay_distill_reg=0.1,
                       coreset_size=500),
}


def last_task_speed(flags: dict, tasks, num_tasks: int, iters: int, out: str, timer: Timer) -> tuple[float, float]:
    timer.speeds.clear()
    config = Config(**STUDY_NET, num_tasks=num_tasks, n_iter=iters, out_dir=out, overwrite=True, **flags)
    train(config, tasks=tasks)
    return timer.speeds[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=1000, help="iterations per task")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    names = args.methods.split(",")
    tasks = load_tasks(Config(num_tasks=args.tasks))
    best = {name: (0.0, 0.0) for name in names}
    with tempfile.TemporaryDirectory() as out, Timer(population_module._Population, "_optimise", iterations) as timer:
        for _ in range(args.repeats):  # rounds over all methods: each round sees similar machine load
            for name in names:
                wall, cpu = last_task_speed(METHODS[name], tasks, args.tasks, args.iters, out, timer)
                best[name] = (max(best[name][0], wall), max(best[name][1], cpu))
    print(f"{'':14s} {'wall':>8s} {'cpu':>8s}  it/s, last of {args.tasks} tasks, best of {args.repeats}")
    for name in names:
        base = best.get("finetune_b128" if METHODS[name].get("batch_size") == 128 else "finetune")
        ratio = f"   cpu {best[name][1] / base[1]:.2f} x fine-tuning at its batch size" if base else ""
        print(f"{name:14s} {best[name][0]:8.0f} {best[name][1]:8.0f}{ratio}")


if __name__ == "__main__":
    main()
