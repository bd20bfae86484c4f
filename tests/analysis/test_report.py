"""hpsearch report: non-trivial PNGs and a Markdown summary that links them."""
from __future__ import annotations

from pathlib import Path

import matplotlib.image
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.storages.journal import JournalFileBackend
from runfolders import TRIALS

from hpsearch.report import param_importances, write_report


def write_journal(sweep: Path, names: list[str]) -> None:
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(sweep / "optuna.journal")))
    study = optuna.create_study(study_name=sweep.name, storage=storage, direction="maximize")
    distributions = {"lr": FloatDistribution(1e-5, 1e-1, log=True),
                     "batch_size": CategoricalDistribution([32, 64, 128])}
    for name in names:
        _, lr, batch, _, final = TRIALS[name]
        study.add_trial(optuna.trial.create_trial(
            params={"lr": lr, "batch_size": batch}, distributions=distributions,
            value=sum(final) / len(final)))


def assert_real_image(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 10_000, path
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels[..., :3].var() > 1e-3, f"{path} is blank"


def test_report_writes_plots_and_markdown(sweep_folder):
    write_journal(sweep_folder, ["A", "B", "C", "D", "G"])
    report = write_report(sweep_folder, by="final", top=3)
    text = report.read_text()
    names = ["winner_accuracy_matrix.png", "winner_per_task.png", "during_vs_final.png",
             "param_importances.png"]
    for name in names:
        assert_real_image(sweep_folder / "plots" / name)
        assert f"(plots/{name})" in text
    assert "## Top 3 by final" in text and "## Pareto front" in text
    assert "python3 train_split_audioset.py --multi_head" in text
    assert "trial F: ValueError: boom" in text
    assert "Best by final: trial B" in text


@pytest.mark.parametrize("names, reason", [([], "no Optuna journal"),
                                           (["A"], "needs at least 2 finished trials")])
def test_importances_are_skipped_with_a_note(sweep_folder, names, reason):
    if names:
        write_journal(sweep_folder, names)
    values, note = param_importances(sweep_folder)
    assert values == {} and reason in note
    text = write_report(sweep_folder).read_text()
    assert "importances skipped" in text and reason in text
    assert not (sweep_folder / "plots" / "param_importances.png").exists()


def test_report_on_a_folder_of_single_runs(runs_folder):
    text = write_report(runs_folder, by="during").read_text()
    assert "Best by during: trial run_A" in text
    assert_real_image(runs_folder / "plots" / "during_vs_final.png")


def test_report_shows_the_seed_statistics_when_seeds_ran(sweep_folder):
    rows = [{"trial": "B", "seed": s, "state": "finished", "during": d, "final": f}
            for s, d, f in [(42, 80, 70), (0, 60, 50), (1, 90, 90)]]
    rows.append({"trial": "B", "seed": 2, "state": "failed", "during": None, "final": None})
    pd.DataFrame(rows).to_csv(sweep_folder / "seeds.csv", index=False)
    text = write_report(sweep_folder).read_text()
    assert "## Winners over seeds" in text
    assert "| B | 3 / 4 | 76.67 ± 7.20 |" in text and "| 70.00 ± 9.43 | 16.33 | 50.00 |" in text
