"""`hpsearch run --grid FILE` (the study's grid format) and `hpsearch run --warm-start` (its published line first)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from hpsearch_fakes import TINY, subprocess_env

import hpsearch_fakes
import search_spaces
from hpsearch import cli, grid, journal, records, sweep, warm_start
from hpsearch.flags import SWEEP_SET
from hpsearch.settings import SETTINGS_FILE, SweepError, SweepSettings, plan_of, prepare
from hpsearch.trial import FINISHED
from search_spaces import _published

# A grid file as the study writes them (its sequential/audioset/hp_search_audioset.py): the import, the
# function and the open() must not run (the import would fail, the open would leave the marker).
STUDY_FILE = '''"""A study-format grid."""
from sequential.copy import hp_search_copy as hpcopy

grid = {{
    #'n_iter': [5000],
    'lr': [1e-3, 1e-2],
    'batch_size': [32, 64],
    'rnn_arch': ['"8"'],
}}

conditions = [
]

conditions = conditions + hpcopy._BASE_CONDITIONS

def _performance_criteria(summary_dict, performance_criteria):
    return float(summary_dict['mean_final_accuracy'][0]) > performance_criteria

_MARKER = open({marker!r}, "w")
'''


def write(tmp_path, text: str, name: str = "grid.py"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run_args(tmp_path, name: str, *extra: str) -> list[str]:
    return ["run", "--method", "finetune", "--n-iter", "5", "--results", str(tmp_path), "--name", name,
            *(f"--flag={flag}={value}" for flag, value in TINY.items()), *extra]


def test_the_study_expansion_products_conditions_and_duplicates():
    points = grid.expand(
        {"use_ewc": [False, True], "ewc_lambda": [1.0, 10.0], "lr": [0.001]},
        [({"lr": [0.001]}, {"batch_size": [32, 64]}),  # every point, twice
         ({"use_si": [True]}, {"lr": [0.5]}),  # names a flag the grid does not: skipped
         *grid.BASE_CONDITIONS])  # use_ewc off: its strengths zeroed, so one point per batch size
    ewc_on = [{"use_ewc": True, "ewc_lambda": lam, "lr": 0.001, "batch_size": size}
              for lam in (1.0, 10.0) for size in (32, 64)]
    ewc_off = [{"use_ewc": False, "ewc_lambda": 0.0, "lr": 0.001, "batch_size": size, "ewc_gamma": 0.0,
                "n_fisher": 0, "tbptt_fisher": -1} for size in (32, 64)]
    assert points == ewc_on + ewc_off


def test_a_study_file_is_read_not_run(tmp_path):
    marker = tmp_path / "ran"
    points = grid.read(write(tmp_path, STUDY_FILE.format(marker=str(marker))), SWEEP_SET)
    assert points == [{"lr": lr, "batch_size": size, "rnn_arch": "8"} for lr in (1e-3, 1e-2) for size in (32, 64)]
    assert not marker.exists()


@pytest.mark.parametrize("text,message", [
    ("grid = {'lr': [1e-3]\n", "line 1: "),
    ("conditions = []\n", "no `grid = {...}` assignment"),
    ("grid = {'lr': []}\n", "grid['lr']: expected a non-empty list of values, got []"),
    ("grid = {'lr': 0.001}\n", "grid['lr']: expected a non-empty list of values, got 0.001"),
    ("grid = {'learning_rate': [0.1]}\n", "grid['learning_rate']: not a flag of train_split_audioset.py"),
    ("grid = {'n_iter': [100]}\n", "grid['n_iter']: the sweep sets it"),
    ("grid = {'batch_size': ['many']}\n", "grid['batch_size']: 'many': invalid literal for int()"),
    ("import os\ngrid = {'lr': [float(os.environ['LR'])]}\n", "line 2: grid: not a Python literal"),
    ("grid = {'lr': [0.1]}\nconditions = [({'lr': [0.1]},)]\n", "conditions[0]: expected a pair"),
    ("grid = {'lr': [0.1]}\nconditions = [({'lr': [0.1]}, {'bogus': [1]})]\n",
     "conditions[0][1]['bogus']: not a flag"),
])
def test_a_bad_grid_file_is_refused_in_one_line_naming_the_key(tmp_path, capsys, text, message):
    assert cli.main(run_args(tmp_path, "bad", "--grid", write(tmp_path, text))) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hpsearch run: --grid {tmp_path / 'grid.py'}: ") and message in err, err
    assert err.count("\n") == 1 and not (tmp_path / "bad").exists()


@pytest.mark.parametrize("text,extra,message", [
    ("grid = {'lr': [0.1, 0.2]}\n", ["--flag", "lr=0.3"], "--flag lr: the grid sets lr too"),
    ("grid = {'multi_head': [False]}\n", [], "grid point 0 sets multi_head=False, but method finetune fixes"),
    ("grid = {'lr': [0.1, 0.2]}\n", ["--warm-start"], "--grid: its 2 points run once each"),
    ("grid = {'lr': [0.1, 0.2]}\n", ["--num-samples", "3"], "--num-samples at most 2"),
    ("grid = {'clip_grad_norm': [1.0, -2.0]}\n", [], "grid point 1 (clip_grad_norm=-2.0): --clip_grad_norm"),
])
def test_a_grid_the_sweep_cannot_run_is_refused(tmp_path, capsys, text, extra, message):
    assert cli.main(run_args(tmp_path, "bad", "--grid", write(tmp_path, text), *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_a_study_format_grid_runs_every_point_once(tmp_path, ray_local, tiny_dataset_path, capsys):
    """A 2x2 grid of real tiny runs: each point once, nothing else sampled, recorded as its grid values."""
    path = write(tmp_path, STUDY_FILE.format(marker=str(tmp_path / "ran")))
    assert cli.main(run_args(tmp_path, "g", "--grid", path, "--data", str(tiny_dataset_path), "--n-iter", "10")) == 0
    rows = list(records.read_rows(tmp_path / "g" / records.TRIALS_CSV).values())
    assert sorted((row["lr"], row["batch_size"]) for row in rows) == [(1e-3, 32), (1e-3, 64), (1e-2, 32), (1e-2, 64)]
    assert all(row["state"] == FINISHED for row in rows)
    for row in rows:  # the space's other parameters are not sampled: the defaults and FIXED flags hold
        config = json.loads((tmp_path / "g" / row["run_folder"] / "config.json").read_text())
        assert (config["lr"], config["batch_size"], config["rnn_arch"]) == (row["lr"], row["batch_size"], "8")
        assert config["clip_grad_norm"] == -1 and config["orthogonal_hh_reg"] == -1 and config["multi_head"]
        assert config["n_iter"] == 10 and config["num_tasks"] == 2
    study = journal.open_study(tmp_path / "g" / journal.JOURNAL, "g")
    assert len(study.trials) == 4 and all(set(t.params) == {"lr", "batch_size", "rnn_arch"} for t in study.trials)
    assert study.trials[0].distributions["lr"] == optuna.distributions.CategoricalDistribution([1e-3, 1e-2])
    saved = json.loads((tmp_path / "g" / SETTINGS_FILE).read_text())
    assert len(saved["grid"]) == 4 and saved["grid_file"] == path and saved["num_samples"] == 4
    assert not (tmp_path / "ran").exists()


def test_warm_start_runs_the_published_line_first(tmp_path, ray_local, capsys):
    """The first trial has the published fine-tuning line's values; the sweep's own flags and a --flag win."""
    settings = SweepSettings(method="finetune", num_samples=3, max_concurrent=1, n_iter=5, name="warm",
                             results=str(tmp_path), flags={"num_tasks": 2, "rnn_arch": "64"}, warm_start=True)
    rows = sweep.run(settings, train=hpsearch_fakes.train)
    published = _published.flags("finetune")
    first_asked = journal.open_study(tmp_path / "warm" / journal.JOURNAL, "warm").trials[0].params
    assert first_asked["lr"] == published["lr"]  # Optuna's trial 0 is the published point
    first = next(row for row in rows if row["lr"] == first_asked["lr"])  # Ray's trial ids are random, not ordered
    names = ["lr", "batch_size", "clip_grad_norm", "orthogonal_hh_init", "orthogonal_hh_reg", "use_best_models"]
    assert {name: first[name] for name in names} == {name: published[name] for name in names}
    config = json.loads((tmp_path / "warm" / first["run_folder"] / "config.json").read_text())
    assert {name: config[name] for name in names} == {name: published[name] for name in names}
    assert (config["rnn_arch"], config["num_tasks"], config["n_iter"], config["random_seed"]) == ("64", 2, 5, 42)
    assert published["rnn_arch"] == "32" and published["n_iter"] == 50000
    assert len({row["lr"] for row in rows}) == 3  # the others are sampled
    err = capsys.readouterr().err
    assert "--warm-start: the first trial is the published finetune line except rnn_arch='64'" in err


def test_warm_start_of_a_method_without_a_published_line_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(_published, "LINES", {m: lines for m, lines in _published.LINES.items() if m != "si"})
    with pytest.raises(SweepError, match="--warm-start: the study published no line for method 'si'"):
        prepare(SweepSettings(method="si", name="x", results=str(tmp_path), warm_start=True))


def test_a_flag_that_rules_out_the_published_point_is_one_warning(tmp_path, monkeypatch):
    """A space whose lr range follows batch_size: pinning batch_size=32 puts the published lr outside it."""
    (tmp_path / "warm_method.py").write_text(
        '"""Mine."""\nFIXED = {"multi_head": True}\n\ndef suggest(trial):\n'
        '    high = 1e-2 if trial.suggest_categorical("batch_size", [32, 64]) == 64 else 1e-3\n'
        '    return {"lr": trial.suggest_float("lr", 1e-5, high, log=True)}\n')
    monkeypatch.setattr(search_spaces, "__path__", [*search_spaces.__path__, str(tmp_path)])
    line = "--multi_head --batch_size=64 --lr=0.005"
    monkeypatch.setattr(_published, "LINES", {**_published.LINES, "warm_method": (line,)})
    settings = SweepSettings(method="warm_method", name="w", results=str(tmp_path), warm_start=True,
                             flags={"batch_size": 32})
    [warning, _] = prepare(settings)
    assert warning.startswith("hpsearch run: warning: --warm-start: the published warm_method line cannot run")
    assert "lr=0.005" in warning and warning.endswith("the sweep starts without it")
    assert warm_start.points(plan_of(settings)) == []
    settings.flags = {}
    assert warm_start.points(plan_of(settings)) == [{"batch_size": 64, "lr": 0.005}]


def _finished(csv) -> dict:
    try:
        return {tid: row for tid, row in records.read_rows(csv).items() if row["state"] == FINISHED}
    except Exception:  # noqa: BLE001 - a file being replaced: try again
        return {}


def test_a_killed_grid_sweep_resumes_with_the_remaining_points(tmp_path):
    path = write(tmp_path, "grid = {'lr': [1e-4, 1e-3, 1e-2], 'batch_size': [32, 64]}\n")
    env = subprocess_env(FAKE_SECONDS_PER_TASK="1.0")
    hpsearch = [sys.executable, "-m", "hpsearch.cli"]
    driver = subprocess.Popen([*hpsearch, *run_args(tmp_path, "k", "--grid", path, "--max-concurrent", "1",
                                                    "--train", "hpsearch_fakes:train")],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    csv = tmp_path / "k" / records.TRIALS_CSV
    try:
        deadline = time.monotonic() + 120
        while len(_finished(csv)) < 2 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        driver.wait()
    before = _finished(csv)
    assert 2 <= len(before) < 6
    resumed = subprocess.run([*hpsearch, "run", "--resume", "k", "--results", str(tmp_path)], env=env,
                             capture_output=True, text=True, timeout=180, start_new_session=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rows = records.read_rows(csv).values()
    assert sorted((row["lr"], row["batch_size"]) for row in rows) == [
        (lr, size) for lr in (1e-4, 1e-3, 1e-2) for size in (32, 64)]
    assert all(row["state"] == FINISHED for row in rows) and set(before) <= {row["trial_id"] for row in rows}
