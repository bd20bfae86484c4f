"""A killed `--metric during,final` sweep resumes as the two-objective study it was."""
from __future__ import annotations

import pickle

from driver_helpers import FAKE_SWEEP, hpsearch, interrupted_sweep

from hpsearch import journal, sweep
from hpsearch.trial import FINISHED


def test_a_two_objective_sweep_resumes_with_both_objectives(tmp_path, ray_local):
    sweep_dir = tmp_path / "k"
    interrupted_sweep(hpsearch("run", *FAKE_SWEEP, "--metric", "during,final", "--results", str(tmp_path),
                               "--name", "k"), sweep_dir, tmp_path / "driver.log")
    rows = sweep.resume(str(tmp_path), "k")
    assert len(rows) == 4 and all(row["state"] == FINISHED for row in rows)
    study = journal.open_study(sweep_dir / journal.JOURNAL, "k")
    assert len(study.directions) == 2 and len(study.trials) == 4
    assert all(t.values == [row["during_mean"], row["final_mean"]] for t, row in
               zip(sorted(study.trials, key=lambda t: t.user_attrs[journal.RAY_ID]),
                   sorted(rows, key=lambda row: row["trial_id"])))
    # The restored searcher told Optuna the trials after the kill as two-objective results too.
    state_file = max(sweep_dir.glob("searcher-state-*.pkl"))  # the resumed session's: names end in its start time
    searcher = pickle.loads(state_file.read_bytes())
    assert searcher["_metric"] == ["objective_during", "objective_final"]
    told = searcher["_ot_study"].get_trials(deepcopy=False)
    assert len(told) == 4 and all(t.state.name == "COMPLETE" and len(t.values) == 2 for t in told)
