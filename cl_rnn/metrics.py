"""Accuracy matrix -> during, final, forgetting, and the study's summary keys.

``A[t, k]`` is the test accuracy (%) on task k after training task t; rows not reached are NaN.
During accuracy of task t is ``A[t, t]``; final accuracies are the last reached row, over the tasks
trained so far.  Standard deviations are population std (ddof 0), like the study.
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


def forgetting(matrix: np.ndarray) -> list[float]:
    """During minus final accuracy per trained task (0 for the last trained task)."""
    return [d - f for d, f in zip(during(matrix), final(matrix))]


def _stats(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return float("nan"), float("nan"), float("nan")
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=0)), float(array.min())


def overview(matrix: np.ndarray, *, multitask: bool, compression_ratio: float, rnn_arch: str,
             hnet_arch: str, num_train_iter: int, finished: bool) -> dict:
    """The study's ``performance_overview.txt`` entries, in its order."""
    final_values = final(matrix)
    mean_f, std_f, min_f = _stats(final_values)
    tail = {"compression_ratio": float(compression_ratio), "rnn_arch": rnn_arch, "hnet_arch": hnet_arch,
            "num_train_iter": int(num_train_iter), "finished": int(finished)}
    if multitask:
        return {"mean_final_accuracy": mean_f, "std_final_accuracy": std_f, "min_final_accuracy": min_f,
                "final_accuracy": final_values, **tail}
    during_values = during(matrix)
    mean_d, std_d, min_d = _stats(during_values)
    return {"mean_final_accuracy": mean_f, "std_final_accuracy": std_f, "mean_during_accuracy": mean_d,
            "std_during_accuracy": std_d, "min_final_accuracy": min_f, "min_during_accuracy": min_d,
            "final_accuracy": final_values, "during_accuracy": during_values, **tail}


def format_value(value) -> str:
    """Floats as ``%f``; lists as ``[a, b, ...]`` of ``%f``; ints and strings as they are."""
    if isinstance(value, float):
        return "%f" % value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join("%f" % v for v in value) + "]"
    return str(value)


def format_overview(entries: dict) -> str:
    return "".join(f"{key} {format_value(value)}\n" for key, value in entries.items())
