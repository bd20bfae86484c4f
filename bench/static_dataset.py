"""A second dataset of another character than the surrogate, for bench/fidelity.py (not a test).

    python bench/static_dataset.py OUT.h5 [--seed 0] [--noise 45]

The surrogate hides a class in how a clip evolves over its 10 steps; here nothing evolves.  Each of
100 classes is a fixed 128-dimensional prototype; every frame of a clip shows that prototype, scaled by
a per-clip loudness, under independent per-frame noise, so averaging the frames is what helps and
the last frame alone already says much.  Same shape and split as the study's data: 1000 clips per
class, 800 train / 200 test, uint8 around 128.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cl_rnn.data.store import write_dataset  # noqa: E402

CLASSES, CLIPS, STEPS, FEATURES, TRAIN = 100, 1000, 10, 128, 800


def make_static(seed: int, noise: float) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(0.0, 1.0, (CLASSES, FEATURES)) * 25.0
    loudness = rng.uniform(0.5, 1.5, (CLASSES, CLIPS, 1, 1))
    frames = prototypes[:, None, None, :] * loudness + rng.normal(0.0, noise, (CLASSES, CLIPS, STEPS, FEATURES))
    x = np.clip(np.rint(128.0 + frames), 0, 255).astype(np.uint8).reshape(-1, STEPS, FEATURES)
    y = np.repeat(np.arange(CLASSES), CLIPS)
    order = np.arange(CLASSES * CLIPS).reshape(CLASSES, CLIPS)
    return x, y, order[:, :TRAIN].reshape(-1), order[:, TRAIN:].reshape(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=45.0, help="per-frame noise, in uint8 steps")
    args = parser.parse_args()
    x, y, train_idx, test_idx = make_static(args.seed, args.noise)
    write_dataset(args.out, x, y, train_idx, test_idx,
                  {"source": "bench/static_dataset.py", "seed": args.seed, "noise": args.noise,
                   "num_classes": CLASSES})
    print(f"{args.out}: {len(y)} clips, static prototypes, noise {args.noise}")


if __name__ == "__main__":
    main()
