"""PNG figures of a sweep: accuracy matrix, per-task accuracy, during vs final, importances.

Every function draws one figure with the Agg backend (no display needed), writes it to ``path``
and closes it.  Accuracies are in %.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 120
DURING_COLOR, FINAL_COLOR, FRONT_COLOR = "#1f77b4", "#ff7f0e", "#d62728"


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def accuracy_matrix(matrix: np.ndarray, path: Path, title: str) -> Path:
    """Heatmap of A[t, k] (test accuracy on task k after training task t), annotated."""
    rows, cols = matrix.shape
    size = max(4.0, 0.6 * cols + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, label="test accuracy (%)", fraction=0.046, pad=0.04)
    for t in range(rows):
        for k in range(cols):
            value = matrix[t, k]
            if not math.isnan(value):
                ax.text(k, t, f"{value:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if value < 60 else "black")
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    ax.set_xlabel("evaluated on task")
    ax.set_ylabel("after training task")
    ax.set_title(f"{title}\n(diagonal: during, last row: final)", fontsize=10)
    return _save(fig, path)


def per_task_accuracy(during: list[float], final: list[float], path: Path, title: str) -> Path:
    """Grouped bars: during and final accuracy of each task, with their means in the legend."""
    tasks = np.arange(max(len(during), len(final)))
    width = 0.4
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(tasks) + 2.0), 4.0))
    if during:
        ax.bar(tasks[:len(during)] - width / 2, during, width, color=DURING_COLOR,
               label=f"during (mean {np.nanmean(during):.1f} %)")
    if final:
        ax.bar(tasks[:len(final)] + width / 2, final, width, color=FINAL_COLOR,
               label=f"final (mean {np.nanmean(final):.1f} %)")
    ax.set_xticks(tasks)
    ax.set_xlabel("task")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 118)  # headroom for the legend above the bars
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", ncol=2, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def during_vs_final(table: pd.DataFrame, front: pd.DataFrame, path: Path, title: str,
                    winner: str | None = None) -> Path:
    """Every finished trial (pruned ones faint) in the during/final plane, the Pareto front marked."""
    fig, ax = plt.subplots(figsize=(6.0, 5.0))
    pruned = table[table["state"] == "pruned"].dropna(subset=["during", "final"])
    finished = table[table["state"] == "finished"].dropna(subset=["during", "final"])
    if not pruned.empty:
        ax.scatter(pruned["during"], pruned["final"], marker="x", color="0.6",
                   label=f"pruned ({len(pruned)}, partial)")
    ax.scatter(finished["during"], finished["final"], color=DURING_COLOR, alpha=0.7,
               label=f"finished ({len(finished)})")
    if not front.empty:
        ordered = front.sort_values("during")
        ax.plot(ordered["during"], ordered["final"], "-o", color=FRONT_COLOR, markerfacecolor="none",
                markersize=10, label=f"Pareto front ({len(front)})")
    if winner is not None and winner in set(finished["trial"]):
        best = finished[finished["trial"] == winner].iloc[0]
        ax.scatter([best["during"]], [best["final"]], marker="*", s=250, color="gold",
                   edgecolor="black", zorder=5, label=f"winner ({winner})")
    ax.set_xlabel("mean during accuracy (%)")
    ax.set_ylabel("mean final accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def importances(values: dict[str, float], path: Path, title: str) -> Path:
    """Horizontal bars of Optuna's hyperparameter importances, most important on top."""
    names = list(values)[::-1]
    fig, ax = plt.subplots(figsize=(6.0, max(2.5, 0.45 * len(names) + 1.2)))
    ax.barh(names, [values[n] for n in names], color=DURING_COLOR)
    for y, name in enumerate(names):
        ax.text(values[name], y, f" {values[name]:.2f}", va="center", fontsize=8)
    ax.set_xlabel("importance (Optuna's PED-ANOVA: how much it decides the best 10% of trials)")
    ax.set_xlim(0, max(1.0, max(values.values()) * 1.15))
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
