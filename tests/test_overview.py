"""performance_overview.txt is what the study's writer writes: keys, order, number formats, and for a run
stopped by --during_acc_criterion the final accuracy of every task (untrained ones too) and their mean.

The STUDY_* texts are what the study's ``save_performance_summary`` (sequential/train_utils_sequential.py)
writes for the accuracy matrices below (3 tasks, 60 test clips each, ``--rnn_arch 32 --n_iter 5000``):
``%f`` for the summary statistics, lists as ``misc.list_to_str(array.tolist())`` (space-separated, each
number as Python prints it; multitask's 1 x n matrix prints as ``[a, b, c]``), ``rnn_arch`` quoted, NaN
for ``compression_ratio`` and ``hnet_arch`` without a hypernetwork (with one: its ratio and ``--hnet_arch``).
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from cl_rnn.metrics import MULTITASK_OVERVIEW_KEYS, OVERVIEW_KEYS, format_overview, overview
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks

# stopped by the criterion after task 1 of 3: two rows, each over all three tasks
STOPPED = [[54, 20, 17], [43, 35, 21]]
STUDY_STOPPED = """\
mean_final_accuracy 55.000000
std_final_accuracy 15.153535
mean_during_accuracy 74.166667
std_during_accuracy 15.833333
min_final_accuracy 35.000000
min_during_accuracy 58.333333
final_accuracy 71.66666666666667 58.333333333333336 35.0
during_accuracy 90.0 58.333333333333336
compression_ratio nan
rnn_arch "32"
hnet_arch nan
num_train_iter 5000
finished 0
"""
FINISHED = STOPPED + [[40, 30, 51]]
STUDY_FINISHED = """\
mean_final_accuracy 67.222222
std_final_accuracy 14.294089
mean_during_accuracy 77.777778
std_during_accuracy 13.899996
min_final_accuracy 50.000000
min_during_accuracy 58.333333
final_accuracy 66.66666666666667 50.0 85.0
during_accuracy 90.0 58.333333333333336 85.0
compression_ratio nan
rnn_arch "32"
hnet_arch nan
num_train_iter 5000
finished 1
"""
MULTITASK = [[50, 45, 60]]
STUDY_MULTITASK = """\
mean_final_accuracy 86.111111
std_final_accuracy 10.393493
min_final_accuracy 75.000000
final_accuracy [83.33333333333333, 75.0, 100.0]
compression_ratio nan
rnn_arch "32"
hnet_arch nan
num_train_iter 5000
finished 1
"""
# a hypernetwork run (compression ratio 23,496 / 24,036) stopped after task 0
HNET_STOPPED = [[54, 20, 17]]
STUDY_HNET_STOPPED = """\
mean_final_accuracy 50.555556
std_final_accuracy 27.966029
mean_during_accuracy 90.000000
std_during_accuracy 0.000000
min_final_accuracy 28.333333
min_during_accuracy 90.000000
final_accuracy 90.0 33.333333333333336 28.333333333333332
during_accuracy 90.0
compression_ratio 0.977534
rnn_arch "32"
hnet_arch 50,50
num_train_iter 5000
finished 0
"""


def parse(text: str) -> list[tuple[str, str]]:
    """(key, value) per line, in order; every line is ``key value``."""
    assert text.endswith("\n")
    return [tuple(line.split(" ", 1)) for line in text.splitlines()]


def _python_float(token: str) -> bool:
    try:
        return repr(float(token)) == token
    except ValueError:
        return False


def kind(value: str) -> str:
    """How a value is written: ``%f``, ``%d``, a space-separated list of n numbers as Python prints them,
    ``[n]`` (the bracketed multitask list), quoted or plain text."""
    if re.fullmatch(r'"[^"]*"', value):
        return "quoted"
    if value.startswith("["):
        inner = value[1:-1].split(", ")
        assert value.endswith("]") and all(_python_float(v) for v in inner), value
        return f"[{len(inner)}]"
    if re.fullmatch(r"-?\d+", value):
        return "%d"
    if re.fullmatch(r"-?\d+\.\d{6}|nan", value):
        return "%f"
    tokens = value.split(" ")
    if all(_python_float(t) for t in tokens):
        return f"list of {len(tokens)}"
    return "text"


def shape(text: str) -> list[tuple[str, str]]:
    return [(key, kind(value)) for key, value in parse(text)]


def numbers(value: str) -> list[float]:
    return [float(v) for v in value.strip("[]").replace(",", " ").split()]


def study_matrix(rows: list[list[int]], height: int) -> np.ndarray:
    """cl-rnn's matrix (``height`` rows: 3, or 1 for multitask) holding the study's accuracies
    (100. * correct / clips), unreached rows NaN."""
    matrix = np.full((height, 3), np.nan)
    for t, row in enumerate(rows):
        matrix[t] = [100. * k / 60 for k in row]
    return matrix


@pytest.mark.parametrize("rows, study, multitask, finished, hnet", [
    (STOPPED, STUDY_STOPPED, False, False, False),
    (FINISHED, STUDY_FINISHED, False, True, False),
    (MULTITASK, STUDY_MULTITASK, True, True, False),
    (HNET_STOPPED, STUDY_HNET_STOPPED, False, False, True),
])
def test_the_overview_of_a_matrix_is_the_study_text_byte_for_byte(rows, study, multitask, finished, hnet):
    matrix = study_matrix(rows, 1 if multitask else 3)
    entries = overview(matrix, multitask=multitask, compression_ratio=23496 / 24036 if hnet else None,
                       rnn_arch="32", hnet_arch="50,50" if hnet else None, num_train_iter=5000, finished=finished)
    assert format_overview(entries) == study
    assert tuple(entries) == (MULTITASK_OVERVIEW_KEYS if multitask else OVERVIEW_KEYS)


def test_the_study_samples_are_consistent_with_their_own_lists():
    """The parser reads the study's texts: the summary lines are the statistics of the lists."""
    for text in (STUDY_STOPPED, STUDY_FINISHED, STUDY_MULTITASK, STUDY_HNET_STOPPED):
        values = dict(parse(text))
        final = numbers(values["final_accuracy"])
        assert len(final) == 3  # every task, trained or not
        assert values["mean_final_accuracy"] == "%f" % np.mean(final)
        assert values["std_final_accuracy"] == "%f" % np.std(final)
        assert values["min_final_accuracy"] == "%f" % np.min(final)
        if "during_accuracy" in values:
            assert values["mean_during_accuracy"] == "%f" % np.mean(numbers(values["during_accuracy"]))


def _three_tasks(tmp_path, **changes):
    config = small_config(tmp_path, num_tasks=3, n_iter=5, val_iter=5, **changes)
    return train(config, tasks=synthetic_tasks(num_tasks=3))


def test_a_criterion_stopped_run_writes_the_study_overview_with_every_task(tmp_path):
    # task 0 passes (>= 0), task 1 cannot reach 100% at this learning rate: stopped after task 1 of 3
    result = _three_tasks(tmp_path, during_acc_criterion="0,100", lr=1e-6, rnn_arch="32")
    assert not result.finished and result.stop_reason.startswith("during_acc_criterion: task 1")
    text = (result.out_dir / "performance_overview.txt").read_text()
    assert shape(text) == shape(STUDY_STOPPED)
    values = dict(parse(text))
    row = result.accuracy_matrix[1]
    assert not np.isnan(row).any() and np.isnan(result.accuracy_matrix[2]).all()
    assert numbers(values["final_accuracy"]) == list(row)  # the untrained task 2 included
    assert values["mean_final_accuracy"] == "%f" % np.mean(row)
    assert numbers(values["during_accuracy"]) == result.during == [result.accuracy_matrix[0, 0], row[1]]
    assert values["finished"] == "0" and values["rnn_arch"] == '"32"' and values["num_train_iter"] == "5"
    # cl-rnn's own numbers stay per trained task
    saved = json.loads((result.out_dir / "result.json").read_text())
    assert saved["final"] == result.final == list(row[:2])
    assert saved["mean_final_accuracy"] == pytest.approx(np.mean(row[:2]))


def test_stopping_changes_no_trained_number(tmp_path):
    stopped = _three_tasks(tmp_path / "a", during_acc_criterion="0,100", lr=1e-6)
    whole = _three_tasks(tmp_path / "b", lr=1e-6)
    assert whole.finished
    np.testing.assert_array_equal(stopped.accuracy_matrix[:2], whole.accuracy_matrix[:2])


def test_a_finished_and_a_multitask_run_write_the_study_format(tmp_path):
    finished = _three_tasks(tmp_path / "cl", rnn_arch="32")
    text = (finished.out_dir / "performance_overview.txt").read_text()
    assert shape(text) == shape(STUDY_FINISHED)
    assert numbers(dict(parse(text))["final_accuracy"]) == finished.final
    multitask = _three_tasks(tmp_path / "mt", rnn_arch="32", multitask=True)
    text = (multitask.out_dir / "performance_overview.txt").read_text()
    assert shape(text) == shape(STUDY_MULTITASK)
    assert numbers(dict(parse(text))["final_accuracy"]) == multitask.final


def test_a_stopped_population_member_writes_its_single_runs_overview(tmp_path):
    from cl_rnn.population import train_population

    tasks = synthetic_tasks(num_tasks=3)
    config = small_config(tmp_path, num_tasks=3, n_iter=5, val_iter=5, during_acc_criterion="0,100", lr=1e-6)
    [member] = train_population([config.replace(out_dir=str(tmp_path / "member"))], tasks=tasks)
    single = train(config.replace(out_dir=str(tmp_path / "single")), tasks=tasks)
    assert not member.finished and member.summary == single.summary
    text = (member.out_dir / "performance_overview.txt").read_text()
    assert text == (single.out_dir / "performance_overview.txt").read_text()
    assert len(numbers(dict(parse(text))["final_accuracy"])) == 3
