"""One trial without Ray: what it reports, how it ends, and the rows and journal it leads to."""
from __future__ import annotations

import math
import time

import optuna
import pytest

import hpsearch_fakes
import search_spaces
from hpsearch import journal, progress, records
from hpsearch.trial import FAILED, FINISHED, OBJECTIVE, PRUNED, RUNNING, TrialPlan, objectives, run_trial

PARAMS = {"lr": 1e-3, "batch_size": 64, "clip_grad_norm": 1.0, "rnn_arch": "32", "orthogonal_hh_init": False,
          "use_orthogonal_hh_reg": False, "orthogonal_hh_reg": -1.0, "use_best_models": False}


def run(tmp_path, train=hpsearch_fakes.train, metric="final", **flags):
    plan = TrialPlan("finetune", {"num_tasks": 3, "n_iter": 5, **flags}, metric, str(tmp_path))
    reports = []
    final = run_trial(PARAMS, plan, tmp_path / "trial_x" / "run", reports.append, train)
    return reports, final


def test_reports_each_task_but_the_last_then_the_outcome(tmp_path):
    reports, final = run(tmp_path)
    assert [r["task"] for r in reports] == [0, 1, 2]
    assert [r["state"] for r in reports] == [RUNNING, RUNNING, FINISHED]
    assert final is reports[-1] and final["tasks_done"] == 3
    assert final[OBJECTIVE] == final["final_mean"] == pytest.approx(77.0)
    assert final["run_folder"] == str(tmp_path / "trial_x" / "run")
    assert (tmp_path / "trial_x" / "run" / "config.json").is_file()
    assert reports[0][OBJECTIVE] == reports[0]["final_mean"] == 80.0


def test_during_metric_is_the_objective_when_asked(tmp_path):
    reports, final = run(tmp_path, metric="during")
    assert final[OBJECTIVE] == final["during_mean"] == pytest.approx(79.0)


def test_a_run_stopped_by_the_during_criterion_is_pruned_without_objective(tmp_path):
    reports, final = run(tmp_path, during_acc_criterion="79.5")
    assert final["state"] == PRUNED and final["tasks_done"] == 2
    assert "during_acc_criterion" in final["stop_reason"]
    assert OBJECTIVE not in final  # Ray's OptunaSearch then records the trial PRUNED


def test_a_diverging_run_fails_with_minus_inf_and_its_error(tmp_path):
    reports, final = run(tmp_path, train=hpsearch_fakes.train_failing, lr=0.002)
    (final,) = reports
    assert final["state"] == FAILED and final[OBJECTIVE] == -math.inf
    assert final["during_mean"] == final["final_mean"] == -math.inf
    assert final["error"].startswith("TrainingDiverged: loss is nan")


def test_a_stop_from_report_propagates(tmp_path):
    """Ray stops a trial by raising SystemExit inside report: that must not become a failure."""
    plan = TrialPlan("finetune", {"num_tasks": 3, "n_iter": 5}, "final", str(tmp_path))

    def stop(metrics):
        raise SystemExit(0)

    with pytest.raises(SystemExit):
        run_trial(PARAMS, plan, tmp_path / "run", stop, hpsearch_fakes.train)


@pytest.mark.parametrize("last,errored,state", [
    ({"state": FINISHED}, False, FINISHED), ({"state": PRUNED}, False, PRUNED),
    ({"state": RUNNING}, False, PRUNED), ({"state": FAILED}, False, FAILED), (None, True, FAILED)])
def test_row_state(tmp_path, last, errored, state):
    row = records.trial_row("t1", PARAMS, last, errored, "ActorDiedError: boom", tmp_path)
    assert row["state"] == state
    assert row["lr"] == 1e-3 and "use_orthogonal_hh_reg" not in row  # flags only, no gates
    if errored:
        assert row["error"] == "ActorDiedError: boom" and row["final_mean"] == -math.inf


def test_rows_round_trip_through_trials_csv(tmp_path):
    _, final = run(tmp_path)
    rows = [records.trial_row("a", PARAMS, final, False, "", tmp_path),
            records.trial_row("b", PARAMS, None, True, "boom", tmp_path)]
    path = tmp_path / "trials.csv"
    records.write_rows(path, rows)
    back = records.read_rows(path)
    assert list(back) == ["a", "b"]
    assert back["a"]["run_folder"] == "trial_x/run" and back["a"]["state"] == FINISHED
    assert back["b"]["final_mean"] == -math.inf and back["b"]["error"] == "boom"
    assert "best trial by final accuracy: a" in progress.best_text(list(back.values()), "final", tmp_path)


def test_journal_mirror_keeps_states_params_and_values(tmp_path):
    study = journal.open_study(tmp_path / "optuna.journal", "s")
    _, final = run(tmp_path)
    finished = records.trial_row("a", PARAMS, final, False, "", tmp_path)
    journal.mirror(study, "finetune", PARAMS, finished, [final[OBJECTIVE]], {0: 80.0, 1: 79.0})
    journal.mirror(study, "finetune", PARAMS, {**finished, "trial_id": "b", "state": PRUNED}, None, {0: 50.0})
    journal.mirror(study, "finetune", PARAMS, {**finished, "trial_id": "c", "state": FAILED}, [-math.inf], {})
    again = journal.open_study(tmp_path / "optuna.journal", "s")
    states = [t.state for t in again.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                      optuna.trial.TrialState.FAIL]
    assert again.trials[0].value == final[OBJECTIVE] and again.trials[0].params["lr"] == 1e-3
    assert again.trials[0].intermediate_values == {0: 80.0, 1: 79.0}
    assert journal.mirrored_ids(again) == {"a", "b", "c"}


def test_two_objectives_are_reported_and_mirrored_as_two_values(tmp_path):
    """--metric during,final: every report but a pruned one carries both objectives, and the journal is a
    two-objective study whose finished trial has both values and whose failed and pruned trials have none."""
    reports, final = run(tmp_path, metric="during,final")
    keys = objectives("during,final")
    assert keys == ["objective_during", "objective_final"] and OBJECTIVE not in final
    assert [final[key] for key in keys] == [final["during_mean"], final["final_mean"]]
    _, pruned = run(tmp_path / "p", metric="during,final", during_acc_criterion="79.5")
    assert pruned["state"] == PRUNED and not set(keys) & set(pruned)
    study = journal.open_study(tmp_path / "optuna.journal", "s", "during,final")
    row = records.trial_row("a", PARAMS, final, False, "", tmp_path)
    journal.mirror(study, "finetune", PARAMS, row, [final[key] for key in keys], {})
    journal.mirror(study, "finetune", PARAMS, {**row, "trial_id": "b", "state": FAILED}, [-math.inf] * 2, {})
    journal.mirror(study, "finetune", PARAMS, {**row, "trial_id": "c", "state": PRUNED}, None, {})
    journal.mirror(study, "finetune", PARAMS, {**row, "trial_id": "d"}, [final["during_mean"], None], {})
    again = journal.open_study(tmp_path / "optuna.journal", "s")  # an existing study keeps its directions
    assert again.directions == [optuna.study.StudyDirection.MAXIMIZE] * 2
    assert again.metric_names == ["during", "final"]
    assert [(t.state.name, t.values) for t in again.trials] == [
        ("COMPLETE", [final["during_mean"], final["final_mean"]]), ("FAIL", None), ("PRUNED", None), ("FAIL", None)]
    assert [t.number for t in again.best_trials] == [0]


def test_journal_mirror_keeps_pinned_flags_out_of_the_params(tmp_path):
    study = journal.open_study(tmp_path / "optuna.journal", "s")
    _, final = run(tmp_path)
    row = records.trial_row("a", PARAMS, final, False, "", tmp_path)
    journal.mirror(study, "finetune", PARAMS, row, [final[OBJECTIVE]], {}, {"lr": PARAMS["lr"]})
    (trial,) = journal.open_study(tmp_path / "optuna.journal", "s").trials
    assert "lr" not in trial.params and "batch_size" in trial.params
    assert trial.user_attrs["lr"] == PARAMS["lr"]


@pytest.mark.parametrize("method", search_spaces.names())
def test_every_method_trains_with_the_real_trainer(tmp_path, tiny_dataset_path, method):
    """A random draw of each space runs through cl_rnn.train.train and writes its run folder."""
    from cl_rnn.train import train

    space = search_spaces.load(method)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    params = {**space.suggest(trial), **trial.params}
    small = {"coreset_size": 20} if method == "coresets" else {}  # tasks of the tiny data have 190 clips
    plan = TrialPlan(method, {**hpsearch_fakes.TINY, "n_iter": 10, "data": str(tiny_dataset_path), **small},
                     "final", str(tmp_path))
    reports = []
    final = run_trial(params, plan, tmp_path / "run", reports.append, train)
    assert final["state"] == FINISHED, final["error"]
    assert (tmp_path / "run" / "performance_overview.txt").is_file()
    written = (tmp_path / "run" / "command.txt").read_text()
    assert all(f"--{flag}" in written for flag in space.fixed if space.fixed[flag] is True)
    assert 0 <= final["final_mean"] <= 100


def test_a_real_run_below_the_during_criterion_is_pruned(tmp_path, tiny_dataset_path):
    from cl_rnn.train import train

    plan = TrialPlan("finetune", {**hpsearch_fakes.TINY, "n_iter": 5, "data": str(tiny_dataset_path),
                                  "during_acc_criterion": "100"}, "final", str(tmp_path))
    final = run_trial(PARAMS, plan, tmp_path / "run", lambda metrics: None, train)
    assert final["state"] == PRUNED and final["stop_reason"].startswith("during_acc_criterion")
    assert OBJECTIVE not in final and final["tasks_done"] == 1


def test_every_report_carries_the_trials_cpu_and_wall_seconds_so_far(tmp_path):
    """A trial a scheduler stops ends on a running report: its cost and duration must be in that report too."""
    def busy(config, report=None):
        deadline = time.process_time() + 0.02
        while time.process_time() < deadline:  # some CPU work before the fake trains
            pass
        return hpsearch_fakes.train(config, report=report)

    reports, final = run(tmp_path, train=busy)
    seconds = [r["cpu_seconds"] for r in reports]
    assert seconds == sorted(seconds) and seconds[0] >= 0.02
    walls = [r["duration"] for r in reports]
    assert walls == sorted(walls) and walls[0] >= seconds[0] - 0.01
    row = records.trial_row("a", PARAMS, reports[0], False, "", tmp_path)
    assert row["state"] == PRUNED and row["cpu_seconds"] == seconds[0] and row["duration"] == walls[0]
