"""Accuracy matrix -> during, final, forgetting, and the study's ``performance_overview.txt``.

``A[t, k]`` is the test accuracy (%) on task k after training task t, measured for every task k,
trained or not; rows not reached are NaN.  During accuracy of task t is ``A[t, t]``.  ``final``
is the last reached row over the tasks trained so far (cl-rnn's own numbers: result.json, tasks.csv,
sweeps).  The overview is the study's summary: its final accuracies are the whole last reached row,
so a run stopped by ``--during_acc_criterion`` lists (and averages) the untrained tasks too, as
measured with the network as it was.  Standard deviations are population std (ddof 0), like the study.
"""
from __future__ import annotations

import numpy as np

OVERVIEW_KEYS = ("mean_final_accuracy", "std_final_accuracy", "mean_during_accuracy", "std_during_accuracy",
                 "min_final_accuracy", "min_during_accuracy", "final_accuracy", "during_accuracy",
                 "compression_ratio", "rnn_arch", "hnet_arch", "num_train_iter", "finished")
MULTITASK_OVERVIEW_KEYS = ("mean_final_accuracy", "std_final_accuracy", "min_final_accuracy", "final_accuracy",
                           "compression_ratio", "rnn_arch", "hnet_arch", "num_train_iter", "finished")


def rows_reached(matrix: np.ndarray) -> int:
    """Number of leading rows that hold measurements."""
    done = ~np.isnan(matrix).all(axis=1)
    return int(np.argmin(done)) if not done.all() else len(matrix)


def during(matrix: np.ndarray) -> list[float]:
    n = rows_reached(matrix)
    return [float(matrix[t, t]) for t in range(n)]


def final(matrix: np.ndarray) -> list[float]:
    """The last reached row over the tasks trained so far (for multitask, the one row)."""
    n = rows_reached(matrix)
    if n == 0:
        return []
    width = matrix.shape[1] if matrix.shape[0] == 1 else n
    return [float(v) for v in matrix[n - 1, :width]]


def task_metrics(matrix: np.ndarray, t: int, multitask: bool, last: bool) -> dict:
    """What a run reports after task ``t`` (a sweep trial's metrics); a multitask run has one row, no during."""
    row = matrix[0 if multitask else t]
    during_values = [] if multitask else during(matrix)
    return {"task": t, "accuracy_row": [float(v) for v in row], "during": during_values,
            "during_mean": float(np.mean(during_values)) if during_values else float("nan"),
            "final_mean": float(np.mean(row[:t + 1])), "finished": last}


def forgetting(matrix: np.ndarray) -> list[float]:
    """During minus final accuracy per trained task (0 for the last trained task)."""
    return [d - f for d, f in zip(during(matrix), final(matrix))]


def last_row(matrix: np.ndarray) -> list[float]:
    """The last reached row over every task, trained or not (the study's final accuracies)."""
    n = rows_reached(matrix)
    return [float(v) for v in matrix[n - 1]] if n else []


def _stats(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return float("nan"), float("nan"), float("nan")
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=0)), float(array.min())


def overview(matrix: np.ndarray, *, multitask: bool, compression_ratio: float | None, rnn_arch: str,
             hnet_arch: str | None, num_train_iter: int, finished: bool) -> dict:
    """The study's ``performance_overview.txt`` entries, in its order, holding what its writer holds.

    Final accuracies: the whole last reached row (untrained tasks of a stopped run included); multitask
    keeps it as the study does, a 1 x num_tasks matrix (written ``[a, b, ...]``).  ``rnn_arch`` is
    quoted (``"32"``); ``compression_ratio`` and ``hnet_arch`` are None without a hypernetwork (the
    study's NaN, written ``nan``); with one, ``hnet_arch`` is what the study writes: its ``--hnet_arch``.
    """
    final_values = last_row(matrix)
    mean_f, std_f, min_f = _stats(final_values)
    tail = {"compression_ratio": None if compression_ratio is None else float(compression_ratio),
            "rnn_arch": f'"{rnn_arch}"', "hnet_arch": hnet_arch, "num_train_iter": int(num_train_iter),
            "finished": int(finished)}
    if multitask:
        return {"mean_final_accuracy": mean_f, "std_final_accuracy": std_f, "min_final_accuracy": min_f,
                "final_accuracy": [final_values], **tail}
    during_values = during(matrix)
    mean_d, std_d, min_d = _stats(during_values)
    return {"mean_final_accuracy": mean_f, "std_final_accuracy": std_f, "mean_during_accuracy": mean_d,
            "std_during_accuracy": std_d, "min_final_accuracy": min_f, "min_during_accuracy": min_d,
            "final_accuracy": final_values, "during_accuracy": during_values, **tail}


def format_value(value) -> str:
    """As the study's writer: floats ``%f`` (None: its NaN, ``nan``), ints ``%d``, lists space-separated
    with each number as Python prints it (a one-row matrix: ``[a, b, ...]``), "" as ``""``."""
    if value is None:
        return "nan"
    if isinstance(value, float):
        return "%f" % value
    if isinstance(value, int):
        return "%d" % value
    if isinstance(value, (list, tuple)):
        return " ".join(str(_plain(v)) for v in value)
    return str(value) or '""'


def _plain(value):
    """Python floats (and lists of them), printed as the study's ``ndarray.tolist()`` values print."""
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else float(value)


def format_overview(entries: dict) -> str:
    return "".join(f"{key} {format_value(value)}\n" for key, value in entries.items())
