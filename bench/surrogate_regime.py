"""Is the surrogate in the study's regime?  Multi-head 32-unit LSTM, fine-tuned task after task.

Trains a plain ``torch.nn.LSTM`` (raw 0..255 inputs as the study feeds them, cross-entropy on the
last step, Adam, batch 64) on the tasks one after another with one output head per task, and prints
the accuracy matrix's diagonal (during) and last row (final).  ``--last-step-only`` feeds only the
last frame, to show that the class unfolds over time; ``--center`` scales the inputs.

    python bench/surrogate_regime.py --n-iter 2000 --tasks 10
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from cl_rnn.data.surrogate import make_surrogate


def task_split(x: np.ndarray, y: np.ndarray, idx: np.ndarray, classes: np.ndarray, center: bool):
    rows = idx[np.isin(y[idx], classes)]
    local = np.searchsorted(np.sort(classes), y[rows])
    order = np.argsort(classes)  # position in task row for each sorted class
    local = order[local]
    inputs = torch.from_numpy(x[rows]).float()
    return (inputs - 128) / 64 if center else inputs, torch.from_numpy(local).long()


def evaluate(lstm, heads, x, y, task, steps):
    with torch.no_grad():
        out, _ = lstm(x[:, -steps:].transpose(0, 1))
        logits = heads(out[-1])[:, 10 * task:10 * task + 10]
        return 100.0 * (logits.argmax(1) == y).float().mean().item()


def run(args) -> None:
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    start = time.perf_counter()
    x, y, tr, te, _ = make_surrogate(seed=args.data_seed, clips_per_class=args.clips)
    print(f"generated in {time.perf_counter() - start:.1f}s")
    perm = np.random.RandomState(42).permutation(100).reshape(10, 10)
    tasks = [(task_split(x, y, tr, perm[t], args.center), task_split(x, y, te, perm[t], args.center))
             for t in range(args.tasks)]
    del x
    steps = 1 if args.last_step_only else 10
    lstm = torch.nn.LSTM(128, args.hidden)
    heads = torch.nn.Linear(args.hidden, 10 * args.tasks)
    with torch.no_grad():  # the study's init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        torch.nn.init.uniform_(lstm.weight_ih_l0, -128 ** -0.5, 128 ** -0.5)
        torch.nn.init.uniform_(lstm.bias_ih_l0, -128 ** -0.5, 128 ** -0.5)
        lstm.bias_hh_l0.zero_()
    rng = np.random.default_rng(args.seed)
    matrix = np.full((args.tasks, args.tasks), np.nan)
    for t, ((xtr, ytr), _) in enumerate(tasks):
        opt = torch.optim.Adam(list(lstm.parameters()) + list(heads.parameters()), lr=args.lr)
        for _ in range(args.n_iter):
            b = torch.from_numpy(rng.integers(0, len(ytr), args.batch))
            out, _ = lstm(xtr[b, -steps:].transpose(0, 1))
            loss = torch.nn.functional.cross_entropy(heads(out[-1])[:, 10 * t:10 * t + 10], ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        for k, (_, (xte, yte)) in enumerate(tasks):
            matrix[t, k] = evaluate(lstm, heads, xte, yte, k, steps)
        print(f"task {t}: during {matrix[t, t]:.1f}  row {np.round(matrix[t, :t + 1], 1).tolist()}",
              flush=True)
    during, final = np.diag(matrix), matrix[-1]
    print(f"during mean {during.mean():.1f}  final mean {final.mean():.1f}  "
          f"({time.perf_counter() - start:.0f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-iter", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--clips", type=int, default=1000, help="clips per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--last-step-only", action="store_true")
    parser.add_argument("--center", action="store_true",
                        help="feed (x - 128) / 64 instead of the raw bytes the study feeds")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
