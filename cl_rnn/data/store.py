"""The Split-AudioSet HDF5 file: writing, validated loading, and the study's task split.

Layout (``format_version`` 1): datasets ``x`` uint8 (N, 10, 128), ``y`` int (N,) labels
0..K-1, ``train_idx`` and ``test_idx`` (disjoint row indices); provenance as file attributes
(``source``, ``class_ids``, ``class_names``, filter settings...).  Every problem with a file is a
:class:`DataError` whose message is one line naming the file and the problem.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from cl_rnn.atomic import atomic_path
from cl_rnn.data.gather import gather_blocks, gather_mapped
from cl_rnn.data.split import class_order, stratified_split

FORMAT_VERSION = 1
STEPS, FEATURES = 10, 128
SPLIT_NAMES = ("train_idx", "test_idx")


class DataError(Exception):
    """A dataset file is missing, unreadable or malformed (one line: file and problem)."""


@dataclass
class SplitAudioSet:
    path: Path
    x: torch.Tensor  # uint8 (N, 10, 128)
    y: torch.Tensor  # int64 (N,)
    train_idx: torch.Tensor  # int64
    test_idx: torch.Tensor  # int64
    attrs: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1


@dataclass
class Task:
    index: int
    classes: list[int]  # global labels; a sample's local label is its class's position here
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def write_dataset(path: str | os.PathLike, x: np.ndarray, y: np.ndarray, train_idx: np.ndarray,
                  test_idx: np.ndarray, attrs: dict[str, Any]) -> None:
    """Write a dataset file atomically (``cl_rnn.atomic``)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("x", data=np.asarray(x, dtype=np.uint8))
        f.create_dataset("y", data=np.asarray(y, dtype=np.int64).reshape(-1))
        f.create_dataset("train_idx", data=np.asarray(train_idx, dtype=np.int64))
        f.create_dataset("test_idx", data=np.asarray(test_idx, dtype=np.int64))
        _write_attrs(f, {"format_version": FORMAT_VERSION, **attrs})


def _write_attrs(f: h5py.File, attrs: dict[str, Any]) -> None:
    json_keys = []
    for key, value in attrs.items():
        if isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
            json_keys.append(key)
        f.attrs[key] = value
    f.attrs["json_attrs"] = json.dumps(json_keys)


def _read_attrs(f: h5py.File) -> dict[str, Any]:
    json_keys = set(json.loads(f.attrs.get("json_attrs", "[]")))
    attrs: dict[str, Any] = {}
    for key, value in f.attrs.items():
        if key == "json_attrs":
            continue
        if isinstance(value, np.ndarray):
            value = [v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v
                     for v in value]
        elif isinstance(value, np.generic):
            value = value.item()
        attrs[key] = json.loads(value) if key in json_keys else value
    return attrs


@dataclass
class _Header:
    """Everything but x, validated; x's shape and dtype checked from its metadata."""
    y: np.ndarray
    train_idx: np.ndarray
    test_idx: np.ndarray
    attrs: dict[str, Any]


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {err}") from None


def _read_header(path: Path, f: h5py.File) -> _Header:
    for name in ("x", "y"):
        if name not in f:
            raise DataError(f"{path}: missing dataset '{name}'")
    for name in SPLIT_NAMES:
        if name not in f:
            raise DataError(f"{path}: missing train/test split (no '{name}' dataset)")
    x = f["x"]
    _check_x(path, x.shape, x.dtype)
    try:
        y, train_idx, test_idx = (f[name][()] for name in ("y", *SPLIT_NAMES))
        attrs = _read_attrs(f)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path}: cannot read (truncated or corrupt?): {err}") from None
    y = _check_labels(path, y, len(x))
    declared = attrs.get("num_classes")
    if isinstance(declared, int) and y.max() >= declared:
        raise DataError(f"{path}: label {int(y.max())} out of range (file declares {declared} classes)")
    return _Header(y, _check_split(path, "train_idx", train_idx, len(x)),
                   _check_split(path, "test_idx", test_idx, len(x)), attrs)


def _check_x(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if len(shape) != 3 or shape[1:] != (STEPS, FEATURES):
        raise DataError(f"{path}: x has shape {shape}, expected (N, {STEPS}, {FEATURES})")
    if dtype != np.uint8:
        raise DataError(f"{path}: x has dtype {dtype}, expected uint8")


def check_arrays(path: str | os.PathLike, x: np.ndarray, y: np.ndarray, train_idx: np.ndarray,
                 test_idx: np.ndarray) -> None:
    """The loader's checks on in-memory arrays (importers); DataError names ``path``."""
    path = Path(path)
    _check_x(path, x.shape, x.dtype)
    header = _Header(_check_labels(path, y, len(x)), _check_split(path, "train_idx", train_idx, len(x)),
                     _check_split(path, "test_idx", test_idx, len(x)), {})
    _check_counts(path, header)


def _check_labels(path: Path, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise DataError(f"{path}: y has shape {y.shape}, expected ({n},) to match x")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y has dtype {y.dtype}, expected an integer type")
    if n == 0:
        raise DataError(f"{path}: the dataset is empty")
    if y.min() < 0:
        raise DataError(f"{path}: label {int(y.min())} out of range (labels must be 0..K-1)")
    missing = np.flatnonzero(np.bincount(y, minlength=int(y.max()) + 1) == 0)
    if len(missing):
        raise DataError(f"{path}: label {int(y.max())} out of range: labels must be 0..K-1 with "
                        f"every class present, class {int(missing[0])} has no clips")
    return y.astype(np.int64)


def _check_split(path: Path, name: str, idx: np.ndarray, n: int) -> np.ndarray:
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise DataError(f"{path}: {name} must be a 1-d integer array, got {idx.dtype} {idx.shape}")
    if len(idx) and (idx.min() < 0 or idx.max() >= n):
        raise DataError(f"{path}: {name} has indices outside 0..{n - 1}")
    if len(np.unique(idx)) != len(idx):
        raise DataError(f"{path}: {name} repeats indices")
    return idx.astype(np.int64)


def _check_counts(path: Path, header: _Header) -> None:
    if np.intersect1d(header.train_idx, header.test_idx).size:
        raise DataError(f"{path}: train_idx and test_idx overlap")
    k = int(header.y.max()) + 1
    train = np.bincount(header.y[header.train_idx], minlength=k)
    test = np.bincount(header.y[header.test_idx], minlength=k)
    for counts, part, least in ((train, "training", 2), (test, "test", 1)):
        if counts.min() < least:
            c = int(counts.argmin())
            raise DataError(f"{path}: class {c} has {int(counts[c])} {part} clips (need >= {least})")


def _validated_header(path: Path, f: h5py.File) -> _Header:
    header = _read_header(path, f)
    _check_counts(path, header)
    return header


def load_dataset(path: str | os.PathLike) -> SplitAudioSet:
    """Load and validate a dataset file into memory as tensors; raises DataError."""
    path = Path(path)
    with _open(path) as f:
        header = _validated_header(path, f)
        try:
            x = f["x"][()]
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: cannot read x (truncated or corrupt?): {err}") from None
    return SplitAudioSet(path, torch.from_numpy(x), torch.from_numpy(header.y),
                         torch.from_numpy(header.train_idx), torch.from_numpy(header.test_idx),
                         header.attrs)


@dataclass
class _TaskPlan:
    """Row indices into the file and local labels of one task's three parts."""
    index: int
    classes: list[int]
    rows: dict[str, np.ndarray]  # "train" | "val" | "test" -> row indices of x
    labels: dict[str, np.ndarray]


def _plan_tasks(path: Path, header: _Header, num_tasks: int, num_classes_per_task: int,
                data_random_seed: int, val_set_size: int) -> list[_TaskPlan]:
    k = int(header.y.max()) + 1
    try:
        order = class_order(k, num_tasks, num_classes_per_task, data_random_seed)
    except ValueError as err:
        raise DataError(f"{path}: {err}") from None
    plans = []
    for t, classes in enumerate(order):
        local_of = np.full(k, -1)
        local_of[classes] = np.arange(len(classes))
        train = header.train_idx[local_of[header.y[header.train_idx]] >= 0]
        test = header.test_idx[local_of[header.y[header.test_idx]] >= 0]
        val = train[:0]
        if val_set_size > 0:
            try:
                train, val = stratified_split(train, header.y[train], val_set_size, data_random_seed)
            except ValueError as err:
                raise DataError(f"{path}: task {t}: cannot split {val_set_size} validation "
                                f"clips from {len(train)}: {err}") from None
        rows = {"train": train, "val": val, "test": test}
        labels = {part: local_of[header.y[r]].astype(np.int64) for part, r in rows.items()}
        plans.append(_TaskPlan(t, [int(c) for c in classes], rows, labels))
    return plans


def _task(plan: _TaskPlan, xs: dict[str, torch.Tensor]) -> Task:
    ys = {part: torch.from_numpy(labels) for part, labels in plan.labels.items()}
    return Task(plan.index, plan.classes, xs["train"], ys["train"], xs["val"], ys["val"],
                xs["test"], ys["test"])


def split_tasks(dataset: SplitAudioSet, num_tasks: int, num_classes_per_task: int,
                data_random_seed: int, val_set_size: int) -> list[Task]:
    """Cut an in-memory dataset into the study's tasks (x copied per task, local labels)."""
    header = _Header(dataset.y.numpy(), dataset.train_idx.numpy(), dataset.test_idx.numpy(),
                     dataset.attrs)
    plans = _plan_tasks(dataset.path, header, num_tasks, num_classes_per_task, data_random_seed,
                        val_set_size)
    return [_task(p, {part: dataset.x[torch.from_numpy(r)] for part, r in p.rows.items()})
            for p in plans]


def _read_tasks(path: Path, f: h5py.File, plans: list[_TaskPlan]) -> list[Task]:
    """Every task's arrays, gathered from x (``gather.py``); the full x is never copied into memory."""
    x = f["x"]
    row_sets = [rows for plan in plans for rows in plan.rows.values()]
    offset = x.id.get_offset()  # None: chunked, or never written (a cut file fails to open before this)
    try:
        arrays = (gather_blocks(x, row_sets) if offset is None or x.compression is not None
                  else gather_mapped(path, offset, x.shape, row_sets))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read x (truncated or corrupt?): {err}") from None
    parts = iter(torch.from_numpy(a) for a in arrays)
    return [_task(p, {part: next(parts) for part in p.rows}) for p in plans]


def tasks_from_file(path: str | os.PathLike, num_tasks: int, num_classes_per_task: int,
                    data_random_seed: int, val_set_size: int) -> list[Task]:
    """``split_tasks(load_dataset(path), ...)``, but x is never read whole: each task's rows are gathered."""
    path = Path(path)
    with _open(path) as f:
        header = _validated_header(path, f)
        plans = _plan_tasks(path, header, num_tasks, num_classes_per_task, data_random_seed, val_set_size)
        return _read_tasks(path, f, plans)
