"""Deterministic surrogate of Split AudioSet: the embedded default dataset.

Real Split AudioSet clips are 10 one-second VGGish embeddings (128 bytes each) whose class is
carried by how the sound evolves.  The surrogate imitates that with a small generative model:

* A latent space of ``LATENT_DIM`` dimensions is mapped to the 128 output features by one random
  mixing matrix shared by all classes (like VGGish's PCA basis: every feature mixes every source).
* Each class owns a random ``CLASS_SUBSPACE``-dimensional subspace of the latent space, a
  characteristic frequency and ``PROTOTYPES`` prototype trajectories: rotations in a plane of that
  subspace, ``u cos(w t + phase) + v sin(w t + phase)`` with their own frequency near the class's.
* A clip picks one prototype and draws a random phase, amplitude and small frequency jitter; the
  class is therefore in the *dynamics* (which plane rotates, how fast), not in any single frame.
* Nuisance factors hide the class from a single frame: a per-clip static offset (a "recording
  channel") in latent and feature space, per-step latent noise and per-feature noise.  Within a
  task's 10 classes the rotation planes overlap (12 latent dimensions, 6 per class), so one frame
  is ambiguous; a recurrent net that reads all 10 steps beats one that sees only the last step by
  a wide margin (about 73% vs 31% during accuracy in the study's setting, ~99% vs ~70% with
  inputs scaled to unit range).
* Values are quantised like VGGish: ``128 + SCALE * features``, rounded and clipped to 0..255
  (mean ~128, std ~85, ~12% of the bytes at each bound).

Much of the difficulty in the study's setting comes from feeding raw 0..255 bytes to a tanh LSTM
(saturated gates), as with the real data: the class signal must span a large share of the byte
range for such a net to learn at all, so the task is made hard by overlapping classes rather than
by heavy noise.  ``bench/surrogate_regime.py`` measures the regime.

Every class is generated from its own random stream (seeded by ``(seed, class)``), one class at
a time into a preallocated uint8 array, so float temporaries stay small (~2 s for 100 x 1000).
Layout: all training clips class by class, then all test clips, like the study's released file;
80% of each class's clips are for training.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

STEPS = 10
FEATURES = 128
LATENT_DIM = 12
CLASS_SUBSPACE = 6
PROTOTYPES = 3
SCALE = 40.0
SIGNAL = 8.0
# Tuned so a 32-unit LSTM lands in the study's regime (see bench/surrogate_regime.py).
NOISE = {"offset_latent": 1.0, "offset_feature": 0.2, "step_latent": 1.0, "step_feature": 0.2}
FREQ_RANGE = (0.25, 1.4)
TEST_FRACTION = 0.2
FORMAT_SOURCE = "surrogate"
DEFAULT_CLIPS_PER_CLASS = 1000  # what ensure_surrogate builds (tests shrink it)


def _shared_structure(seed: int, num_classes: int) -> dict[str, np.ndarray]:
    """Mixing matrix and per-class prototypes (depend on seed and class count only)."""
    rng = np.random.default_rng([seed, 0xC1A55])
    mixing = rng.standard_normal((LATENT_DIM, FEATURES)) / np.sqrt(LATENT_DIM)
    bases = np.linalg.qr(rng.standard_normal((num_classes, LATENT_DIM, CLASS_SUBSPACE)))[0]
    coeff = rng.standard_normal((num_classes, PROTOTYPES, 2, CLASS_SUBSPACE))
    coeff /= np.linalg.norm(coeff, axis=-1, keepdims=True)
    planes = np.einsum("cds,cpks->cpkd", bases, coeff)  # (C, P, 2, D): u and v of each prototype
    class_freq = rng.uniform(*FREQ_RANGE, size=num_classes)
    proto_freq = class_freq[:, None] * rng.uniform(0.9, 1.1, size=(num_classes, PROTOTYPES))
    return {"mixing": mixing.astype(np.float32), "planes": planes.astype(np.float32),
            "freq": proto_freq.astype(np.float32)}


def _class_clips(structure: dict[str, np.ndarray], seed: int, label: int, count: int) -> np.ndarray:
    """``count`` clips of one class as uint8 (count, STEPS, FEATURES)."""
    rng = np.random.default_rng([seed, label])
    proto = rng.integers(0, PROTOTYPES, size=count)
    freq = structure["freq"][label, proto] * rng.uniform(0.93, 1.07, size=count)
    phase = rng.uniform(0, 2 * np.pi, size=count)
    amplitude = SIGNAL * rng.uniform(0.7, 1.3, size=count)
    angle = freq[:, None] * np.arange(STEPS) + phase[:, None]  # (n, T)
    u, v = structure["planes"][label, proto, 0], structure["planes"][label, proto, 1]  # (n, D)
    latent = (amplitude[:, None, None] * np.cos(angle)[..., None] * u[:, None, :]
              + amplitude[:, None, None] * np.sin(angle)[..., None] * v[:, None, :])
    latent += NOISE["offset_latent"] * rng.standard_normal((count, 1, LATENT_DIM))
    latent += NOISE["step_latent"] * rng.standard_normal((count, STEPS, LATENT_DIM))
    feats = latent.astype(np.float32) @ structure["mixing"]
    feats += NOISE["offset_feature"] * rng.standard_normal((count, 1, FEATURES), dtype=np.float32)
    feats += NOISE["step_feature"] * rng.standard_normal((count, STEPS, FEATURES), dtype=np.float32)
    return np.clip(np.rint(128.0 + SCALE * feats), 0, 255).astype(np.uint8)


def make_surrogate(seed: int = 0, clips_per_class: int = 1000, num_classes: int = 100
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """Build the surrogate in memory: (x, y, train_idx, test_idx, attrs)."""
    if clips_per_class < 2 or num_classes < 1:
        raise ValueError("surrogate needs clips_per_class >= 2 and num_classes >= 1")
    n_test = max(1, int(round(clips_per_class * TEST_FRACTION)))
    n_train = clips_per_class - n_test
    structure = _shared_structure(seed, num_classes)
    x = np.empty((num_classes * clips_per_class, STEPS, FEATURES), dtype=np.uint8)
    test_start = num_classes * n_train
    for label in range(num_classes):
        clips = _class_clips(structure, seed, label, clips_per_class)
        x[label * n_train:(label + 1) * n_train] = clips[:n_train]
        x[test_start + label * n_test:test_start + (label + 1) * n_test] = clips[n_train:]
    y = np.concatenate([np.repeat(np.arange(num_classes), n_train),
                        np.repeat(np.arange(num_classes), n_test)]).astype(np.int64)
    train_idx = np.arange(test_start, dtype=np.int64)
    test_idx = np.arange(test_start, len(y), dtype=np.int64)
    attrs = {"source": FORMAT_SOURCE, "surrogate_seed": seed, "clips_per_class": clips_per_class,
             "num_classes": num_classes, "train_per_class": n_train, "test_per_class": n_test,
             "class_names": [f"surrogate class {c}" for c in range(num_classes)],
             "generator": "cl_rnn.data.surrogate (latent rotations + nuisance, see its docstring)"}
    return x, y, train_idx, test_idx, attrs


def write_surrogate(path: str | os.PathLike, seed: int = 0, clips_per_class: int = 1000,
                    num_classes: int = 100) -> Path:
    """Generate the surrogate and write it (atomically) as an HDF5 dataset file."""
    from cl_rnn.data.store import write_dataset

    x, y, train_idx, test_idx, attrs = make_surrogate(seed, clips_per_class, num_classes)
    write_dataset(path, x, y, train_idx, test_idx, attrs)
    return Path(path)


def default_surrogate_path() -> Path:
    """Where the embedded default lives: ``$CL_RNN_DATA_DIR`` or ``~/.cache/cl-rnn``."""
    root = os.environ.get("CL_RNN_DATA_DIR") or Path.home() / ".cache" / "cl-rnn"
    return Path(root) / "split_audioset_surrogate_seed0.h5"


def ensure_surrogate(path: str | os.PathLike | None = None) -> Path:
    """Return the cached default surrogate, building it on first use.

    Safe under concurrent first use: each process writes its own temporary file and renames it
    into place (write_dataset is atomic), so a reader never sees a half-written file.
    """
    target = Path(path) if path is not None else default_surrogate_path()
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_surrogate(target, clips_per_class=DEFAULT_CLIPS_PER_CLASS)
    return target
