"""The HDF5 file: round trip, one-line errors for bad files, the study's task split."""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch

from cl_rnn.data.split import class_order
from cl_rnn.data.store import DataError, load_dataset, split_tasks, write_dataset
from cl_rnn.data.surrogate import default_surrogate_path, ensure_surrogate, make_surrogate
from cl_rnn.data.tasks import load_tasks


def small_arrays(classes: int = 4, per_class: int = 5):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(classes), per_class)
    x = rng.integers(0, 256, (len(y), 10, 128), dtype=np.uint8)
    test = np.arange(len(y))[np.arange(len(y)) % per_class == 0]
    train = np.setdiff1d(np.arange(len(y)), test)
    return x, y, train, test


def test_round_trip_keeps_arrays_and_provenance(tmp_path):
    x, y, train, test = small_arrays()
    attrs = {"source": "test", "class_ids": ["/m/a", "/m/b", "/m/c", "/m/d"],
             "filter": {"min_confidence": 70}, "num_classes": 4}
    write_dataset(tmp_path / "d.h5", x, y, train, test, attrs)
    data = load_dataset(tmp_path / "d.h5")
    assert data.x.dtype == torch.uint8 and torch.equal(data.x, torch.from_numpy(x))
    assert data.y.dtype == torch.int64 and data.y.tolist() == y.tolist()
    assert data.train_idx.tolist() == train.tolist() and data.test_idx.tolist() == test.tolist()
    assert data.attrs["class_ids"] == attrs["class_ids"]
    assert data.attrs["filter"] == {"min_confidence": 70}
    assert data.attrs["source"] == "test" and data.attrs["format_version"] == 1
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def _write_raw(path: Path, **datasets) -> Path:
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name, data=value)
    return path


def _valid(**changes):
    x, y, train, test = small_arrays()
    arrays = {"x": x, "y": y, "train_idx": train, "test_idx": test}
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


@pytest.mark.parametrize("changes, problem", [
    ({"test_idx": None}, "missing train/test split (no 'test_idx' dataset)"),
    ({"train_idx": None}, "missing train/test split (no 'train_idx' dataset)"),
    ({"x": np.zeros((20, 10, 127), np.uint8)}, "x has shape (20, 10, 127), expected (N, 10, 128)"),
    ({"x": np.zeros((20, 10, 128), np.float32)}, "x has dtype float32, expected uint8"),
    ({"y": np.arange(19)}, "y has shape (19,), expected (20,) to match x"),
    ({"y": np.zeros(20, np.float32)}, "y has dtype float32, expected an integer type"),
    ({"y": np.r_[np.repeat(np.arange(4), 5)[:-1], 7]}, "label 7 out of range"),
    ({"y": np.r_[-1, np.repeat(np.arange(4), 5)[1:]]}, "label -1 out of range"),
    ({"train_idx": np.array([0, 99])}, "train_idx has indices outside 0..19"),
    ({"test_idx": np.array([0, 1, 5, 10, 15])}, "train_idx and test_idx overlap"),
    ({"test_idx": np.array([0, 5, 10])}, "class 3 has 0 test clips (need >= 1)"),
])
def test_bad_file_gives_one_line_naming_file_and_problem(tmp_path, changes, problem):
    path = _write_raw(tmp_path / "bad.h5", **_valid(**changes))
    with pytest.raises(DataError) as err:
        load_dataset(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)) and problem in message


def test_label_beyond_the_declared_class_count(tmp_path):
    x, y, train, test = small_arrays()
    write_dataset(tmp_path / "d.h5", x, y, train, test, {"num_classes": 3})
    with pytest.raises(DataError, match=r"d\.h5: label 3 out of range \(file declares 3 classes\)"):
        load_dataset(tmp_path / "d.h5")


def test_missing_truncated_and_corrupt_files(tmp_path, tiny_dataset_path):
    with pytest.raises(DataError, match=r"nothere\.h5: no such file"):
        load_dataset(tmp_path / "nothere.h5")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(tiny_dataset_path.read_bytes()[:200_000])
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"this is not HDF5" * 100)
    for path in (truncated, corrupt):
        with pytest.raises(DataError) as err:
            load_dataset(path)
        assert str(err.value).startswith(str(path)) and "truncated or corrupt" in str(err.value)
        assert "\n" not in str(err.value)


def test_class_order_is_the_studys_permutation():
    order = class_order(100, 10, 10, 42)
    assert (order == np.random.RandomState(42).permutation(100).reshape(10, 10)).all()
    study_rows = np.random.RandomState(3).permutation(100).reshape(10, 10)
    assert (class_order(100, 5, 4, 3) == study_rows[:5, :4]).all()
    assert class_order(30, 3, 10, 0).shape == (3, 10)
    with pytest.raises(ValueError, match="need 40 classes"):
        class_order(30, 4, 10, 0)


def test_split_tasks_local_labels_and_stratified_validation(tiny_dataset_path):
    data = load_dataset(tiny_dataset_path)
    tasks = split_tasks(data, num_tasks=10, num_classes_per_task=10, data_random_seed=42, val_set_size=50)
    order = np.random.RandomState(42).permutation(100).reshape(10, 10)
    seen = set()
    for t, task in enumerate(tasks):
        assert task.index == t and task.classes == order[t].tolist()
        assert (len(task.y_train), len(task.y_val), len(task.y_test)) == (190, 50, 60)
        assert task.x_train.dtype == torch.uint8 and task.y_train.dtype == torch.int64
        assert set(task.y_val.bincount().tolist()) == {5}  # stratified: 5 per class
        for x_part, y_part in ((task.x_train, task.y_train), (task.x_test, task.y_test)):
            global_labels = torch.tensor(task.classes)[y_part]
            rows = [int(torch.nonzero((data.x == x_part[i]).all(-1).all(-1))[0])
                    for i in range(0, len(y_part), 37)]
            assert data.y[rows].tolist() == global_labels[::37].tolist()
        seen |= {bytes(x.numpy()) for x in task.x_train[:5]} & {bytes(x.numpy()) for x in task.x_val}
    assert not seen  # validation clips are not training clips
    no_val = split_tasks(data, 2, 10, 42, val_set_size=0)
    assert len(no_val[0].y_val) == 0 and len(no_val[0].y_train) == 240


def test_validation_too_large_is_a_clear_error(tiny_dataset_path):
    with pytest.raises(DataError, match="cannot split 500 validation clips from 240"):
        split_tasks(load_dataset(tiny_dataset_path), 10, 10, 42, 500)


def rewritten_chunked(source: Path, target: Path) -> Path:
    """``source`` with x stored in compressed chunks (a file another tool wrote): not memory-mappable."""
    with h5py.File(source, "r") as f, h5py.File(target, "w") as g:
        for name, dataset in f.items():
            g.create_dataset(name, data=dataset[()], chunks=(7, 10, 128) if name == "x" else None,
                             compression="gzip" if name == "x" else None)
        g.attrs.update(f.attrs)
    return target


@pytest.mark.parametrize("layout", ["contiguous", "chunked"])
def test_load_tasks_from_file_equals_split_of_loaded_dataset(tiny_dataset_path, tmp_path, layout):
    path = tiny_dataset_path if layout == "contiguous" else rewritten_chunked(tiny_dataset_path, tmp_path / "c.h5")
    with h5py.File(path, "r") as f:
        assert (f["x"].id.get_offset() is None) == (layout == "chunked")
    config = SimpleNamespace(data=str(path), num_tasks=4, num_classes_per_task=5,
                             data_random_seed=7, val_set_size=20)
    streamed = load_tasks(config)
    in_memory = split_tasks(load_dataset(tiny_dataset_path), 4, 5, 7, 20)
    assert len(streamed) == 4
    for a, b in zip(streamed, in_memory):
        assert a.classes == b.classes
        for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            assert torch.equal(getattr(a, part), getattr(b, part)), part


def test_load_tasks_without_data_builds_and_caches_the_surrogate(surrogate_cache):
    config = SimpleNamespace(data="", num_tasks=2, num_classes_per_task=10, data_random_seed=42,
                             val_set_size=10)
    tasks = load_tasks(config)
    path = default_surrogate_path()
    assert path.parent == surrogate_cache and path.exists()
    assert len(tasks) == 2 and len(tasks[0].y_train) == 150  # 16 train clips x 10 classes - 10
    stamp = path.stat().st_mtime_ns
    load_tasks(config)
    assert path.stat().st_mtime_ns == stamp  # cached, not rebuilt


def test_concurrent_first_use_is_safe(surrogate_cache):
    barrier, errors = threading.Barrier(2), []

    def first_use():
        barrier.wait()
        try:
            load_dataset(ensure_surrogate())
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [p.name for p in surrogate_cache.iterdir()] == [default_surrogate_path().name]
    x, *_ = make_surrogate(clips_per_class=20)
    assert torch.equal(load_dataset(default_surrogate_path()).x, torch.from_numpy(x))
