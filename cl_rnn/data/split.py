"""The study's splits: its classes into tasks (``class_order``), and each task's validation set
(``sklearn.model_selection.train_test_split(..., stratify=y)`` for an integer test size, exactly).

The study draws each task's validation set with scikit-learn's stratified split.  Importing
scikit-learn costs a training process ~140 MB of RSS (it pulls in SciPy), so this reproduces the
same draws (StratifiedShuffleSplit as of scikit-learn 1.x, checked against it in the tests) with
NumPy's legacy RandomState, which is what ``random_state=int`` means there.
"""
from __future__ import annotations

import numpy as np


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState
                      ) -> np.ndarray:
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_split(items: np.ndarray, labels: np.ndarray, test_size: int, random_state: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train items, test items) as train_test_split(items, test_size=test_size,
    stratify=labels, random_state=random_state) returns them."""
    n_test = int(test_size)
    n_train = len(items) - n_test
    if not 0 < n_test < len(items):
        raise ValueError(f"test_size={n_test} should be between 1 and {len(items) - 1}")
    classes, y_indices, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    if class_counts.min() < 2:
        raise ValueError("a class has only 1 member, too few for a stratified split")
    for name, size in (("train", n_train), ("test", n_test)):
        if size < len(classes):
            raise ValueError(f"the {name} part ({size}) is smaller than the number of "
                             f"classes ({len(classes)})")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(random_state)
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i in range(len(classes)):
        chosen = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(chosen[:n_i[i]])
        test.extend(chosen[n_i[i]:n_i[i] + t_i[i]])
    return items[rng.permutation(train)], items[rng.permutation(test)]


def class_order(num_classes: int, num_tasks: int, num_classes_per_task: int,
                data_random_seed: int) -> np.ndarray:
    """The classes of each task, one row per task (the study's rule, generalised).

    The study permutes its 100 classes with RandomState(data_random_seed), reshapes to 10 x 10
    and gives task t the first num_classes_per_task entries of row t.  For K classes the rows
    have max(num_classes_per_task, K // 10) entries, which is exactly the study's rule for K = 100.
    """
    row = max(num_classes_per_task, num_classes // 10)
    if num_tasks * row > num_classes:
        raise ValueError(f"{num_tasks} tasks of {num_classes_per_task} classes need "
                         f"{num_tasks * row} classes, the dataset has {num_classes}")
    perm = np.random.RandomState(data_random_seed).permutation(num_classes)
    return perm[:num_tasks * row].reshape(num_tasks, row)[:, :num_classes_per_task]
