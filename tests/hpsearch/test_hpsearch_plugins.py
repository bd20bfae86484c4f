"""A method added from outside cl-rnn: one file in methods/ and one in search_spaces/ of a CL_RNN_PLUGINS
folder (README's example, examples/plugins/), registered, swept, trained and exported like the study's."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from hpsearch_fakes import REPO, TINY, subprocess_env

from hpsearch import records
from hpsearch.trial import FINISHED

HPSEARCH = [sys.executable, "-m", "hpsearch.cli"]


def run(*argv: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([*HPSEARCH, *argv], env=env, capture_output=True, text=True, timeout=300,
                          start_new_session=True)


def test_a_method_from_a_temporary_module_is_swept_and_exported(tmp_path: Path, tiny_dataset_path: Path):
    plugins = tmp_path / "plugins"
    shutil.copytree(REPO / "examples" / "plugins", plugins)
    env = subprocess_env(CL_RNN_PLUGINS=str(plugins))

    listed = run("spaces", "--method", "l2_anchor", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "fixed:   --multi_head --use_l2_anchor" in listed.stdout
    assert "methods: finetune (source), l2_anchor (extra)" in listed.stdout

    swept = run("run", "--method", "l2_anchor", "--num-samples", "2", "--n-iter", "10",
                "--data", str(tiny_dataset_path), "--results", str(tmp_path), "--name", "plug", "--flag", "rnn_arch=8",
                *(f"--flag={flag}={value}" for flag, value in TINY.items()), env=env)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    rows = list(records.read_rows(tmp_path / "plug" / records.TRIALS_CSV).values())
    assert len(rows) == 2 and all(row["state"] == FINISHED for row in rows)
    run_folders = [path.parent for path in (tmp_path / "plug").rglob("performance_overview.txt")]
    results = [json.loads((folder / "result.json").read_text()) for folder in run_folders]
    assert len(results) == 2 and {result["method"] for result in results} == {"l2_anchor"}
    configs = [json.loads((folder / "config.json").read_text()) for folder in run_folders]
    assert all(c["use_l2_anchor"] and 1e-4 <= c["l2_anchor_strength"] <= 1.0 for c in configs)

    exported = run("export", "plug", "--results", str(tmp_path), "--top", "1", env=env)
    assert exported.returncode == 0, exported.stderr
    winners = (tmp_path / "plug" / "winners.txt").read_text()
    assert "--use_l2_anchor" in winners and "--l2_anchor_strength=" in winners

    without = run("spaces", "--method", "l2_anchor", env=subprocess_env())
    assert without.returncode != 0 and "unknown method 'l2_anchor'" in without.stderr


def test_a_broken_plugin_stops_everything_with_one_line(tmp_path: Path):
    methods = tmp_path / "plugins" / "methods"
    methods.mkdir(parents=True)
    (methods / "bad.py").write_text('FLAGS = {"use_bad": ("no", "a default that is no flag type", 3)}\n')
    broken = run("spaces", env=subprocess_env(CL_RNN_PLUGINS=str(tmp_path / "plugins")))
    assert broken.returncode == 1
    assert broken.stderr.strip().splitlines() == [
        f"CL_RNN_PLUGINS: {methods / 'bad.py'}: FLAGS['use_bad'] must be (default, help) with a bool, int, "
        "float or str default"]
    (methods / "bad.py").write_text("import no_such_module\n")
    broken = run("spaces", env=subprocess_env(CL_RNN_PLUGINS=str(tmp_path / "plugins")))
    assert broken.returncode == 1 and broken.stderr.strip().splitlines() == [
        f"CL_RNN_PLUGINS: {methods / 'bad.py'}: ModuleNotFoundError: No module named 'no_such_module'"]
