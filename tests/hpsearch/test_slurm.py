"""`hpsearch slurm`: the sbatch script, its refusals, and a sweep through a real local SLURM.

The two-node test runs the script itself with stand-ins for srun and scontrol (every "node" is this
machine, Ray is real).  The real-SLURM test starts munged + slurmctld + slurmd with
tests/hpsearch/slurm_local.sh; it skips where they are not installed or not run as root, and with
CL_RNN_SKIP_SLURM_TEST=1.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray_cluster import cluster_env, free_port

from hpsearch import cli, records
from hpsearch.settings import SweepSettings, save
from hpsearch.trial import FINISHED

HERE = Path(__file__).resolve().parent
HPSEARCH = [sys.executable, "-m", "hpsearch.cli", "slurm"]
TWO_NODES = ["--nodes", "2", "--cpus-per-node", "1", "--time", "00:10:00"]
FAKE_SWEEP = ["--method", "si", "--num-samples", "2", "--n-iter", "5", "--flag", "num_tasks=2",
              "--train", "hpsearch_fakes:train"]
# Stand-ins with SLURM's interface: srun drops its own options and runs the command here.
FAKE_SRUN = """#!/bin/bash
while [ $# -gt 0 ]; do case $1 in -w) shift 2 ;; -*) shift ;; *) break ;; esac; done
exec "$@"
"""
FAKE_SCONTROL = """#!/bin/bash
[ "$1 $2" = "show hostnames" ] && printf 'node1\\nnode2\\n'
"""


def write_script(tmp_path: Path, *options: str, run: tuple[str, ...] = tuple(FAKE_SWEEP)) -> tuple[Path, str]:
    done = subprocess.run([*HPSEARCH, *options, "--", *run, "--results", "results", "--name", "sweep"],
                          cwd=tmp_path, env=cluster_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    script = Path(done.stdout.splitlines()[0])
    return script, script.read_text()


def session_processes(session: int) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "sid=,pid=,args="], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if line.split()[0] == str(session)]


def test_the_script_for_two_nodes_is_complete_and_absolute(tmp_path, tiny_dataset_path):
    data = tmp_path / "data.h5"
    shutil.copy(tiny_dataset_path, data)
    script, text = write_script(tmp_path, *TWO_NODES, "--gpus-per-node", "2", "--partition", "cpu",
                                "--account", "lab", run=(*FAKE_SWEEP, "--data", "data.h5", "--flag", "val_set_size=50"))
    assert script == tmp_path / "results" / "sweep.sbatch"
    for directive in ("--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1", "--gpus-per-node=2",
                      "--time=00:10:00", "--signal=B:TERM@60", "--partition=cpu", "--account=lab",
                      f"--output={tmp_path}/results/sweep-%j.log"):
        assert f"#SBATCH {directive}\n" in text
    assert f"BIN={Path(sys.executable).parent}\n" in text and "--num-gpus=2" in text
    run_line = next(line for line in text.splitlines() if '"$BIN/hpsearch" run' in line)
    assert f"--results {tmp_path}/results --name sweep --data {data}" in run_line
    assert '--address "$ADDRESS") &' in run_line
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def start_job(tmp_path: Path, script: Path, **env: str) -> subprocess.Popen:
    """The batch script as SLURM would run it, on stand-ins for srun and scontrol; its output to job.log."""
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (fakes / name).write_text(text)
        (fakes / name).chmod(0o755)
    env = cluster_env(PATH=f"{fakes}:{os.environ['PATH']}", SLURM_JOB_ID="fake", SLURM_JOB_NODELIST="node[1-2]",
                      **env)
    with (tmp_path / "job.log").open("w") as log:
        return subprocess.Popen(["bash", str(script)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def finish(job: subprocess.Popen, timeout: float) -> list[str]:
    """Wait for the job; returns the processes it left in its session (and kills them)."""
    try:
        job.wait(timeout=timeout)
    finally:
        leftovers = session_processes(job.pid)
        if leftovers or job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    return leftovers


def test_the_script_starts_ray_on_both_nodes_runs_the_sweep_and_stops_ray(tmp_path):
    script, _ = write_script(tmp_path, *TWO_NODES)
    job = start_job(tmp_path, script)
    leftovers = finish(job, timeout=240)
    log = (tmp_path / "job.log").read_text()
    assert job.returncode == 0, log[-3000:]
    assert "hpsearch slurm: 2 of 2 Ray nodes joined" in log and "Ray stopped" in log
    rows = records.read_rows(tmp_path / "results" / "sweep" / records.TRIALS_CSV).values()
    assert len(rows) == 2 and all(row["state"] == FINISHED for row in rows)
    assert not leftovers, leftovers


def test_a_cancelled_job_stops_the_sweep_then_ray_and_says_how_to_resume(tmp_path):
    script, _ = write_script(tmp_path, "--nodes", "1", "--cpus-per-node", "1", "--time", "00:10:00")
    job = start_job(tmp_path, script, FAKE_SECONDS_PER_TASK="60")
    deadline = time.monotonic() + 120
    while not list((tmp_path / "results" / "sweep").glob("trial_*/worker.pid")) and time.monotonic() < deadline:
        time.sleep(0.5)
    # SIGTERM to the batch shell alone: what the job gets a minute before its time limit and from
    # `scancel --batch --signal=TERM`.  (A plain scancel signals every process of the job at once.)
    job.send_signal(signal.SIGTERM)
    leftovers = finish(job, timeout=90)
    log = (tmp_path / "job.log").read_text()
    assert f"continue the sweep in a later job with: hpsearch slurm ... -- --resume sweep --results " \
           f"{tmp_path}/results" in log, log[-3000:]
    assert "Ray stopped" in log and job.returncode != 0
    assert "trials ended; continue with" in log and "Traceback" not in log  # the driver stopped as on Ctrl-C
    assert not leftovers, leftovers


@pytest.mark.parametrize("options,message", [
    (["--time", "4h"], "--time '4h': expected HH:MM:SS"),
    (["--nodes", "0"], "--nodes and --cpus-per-node must be at least 1"),
    (["--partition", "a b"], "--partition 'a b': not a SLURM name"),
    (["--", "--num-samples", "many"], "hpsearch run arguments: argument --num-samples: invalid int value"),
    (["--", "--method", "nope"], "unknown method 'nope'"),
    (["--", "--method", "si", "--flag", "bogus=1"], "--flag 'bogus=1'"),
    (["--", "--method", "si", "--address", "h:1"], "--address: the job sets it"),
    (["--", "--resume", "nothing"], "--resume nothing: no sweep in"),
    (["--", "--resume", "../x"], "--resume ../x: a sweep name must be a plain folder name"),
    (["--", "--method", "si", "--name", "../x"], "--name ../x: a sweep name must be a plain folder name"),
    (["--", "--num-samples", "2"], "--method is required"),
    ([], "missing the sweep: end with `-- <hpsearch run arguments>`"),
    (["--submit", "--", "--method", "si"], "--submit: sbatch not found"),
])
def test_bad_input_is_one_line_and_status_2(capsys, monkeypatch, tmp_path, options, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    allocation = ["--nodes", "1", "--cpus-per-node", "2", "--time", "01:00:00"]
    assert cli.main(["slurm", *allocation, *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "results").exists()


def test_an_existing_sweep_is_refused_and_resumed(capsys, tmp_path):
    allocation = ["--nodes", "1", "--cpus-per-node", "2", "--time", "01:00:00"]
    (tmp_path / "old").mkdir()
    save(SweepSettings(method="si", name="old", results=str(tmp_path)))
    new = ["--", "--method", "si", "--results", str(tmp_path), "--name", "old"]
    assert cli.main(["slurm", *allocation, *new]) == 2
    assert "exists: continue it with -- --resume old" in capsys.readouterr().err
    assert cli.main(["slurm", *allocation, "--", "--resume", "old", "--results", str(tmp_path)]) == 0
    text = (tmp_path / "old.resume.sbatch").read_text()
    assert f'"$BIN/hpsearch" run --resume old --results {tmp_path} --address "$ADDRESS")' in text


def test_symbolic_links_are_kept_and_a_repeated_flag_is_left_to_the_job_to_warn(capsys, tmp_path,
                                                                                  tiny_dataset_path):
    """The paths the job gets are the ones `hpsearch run` would use (links kept, as user_files.absolute)."""
    allocation = ["--nodes", "1", "--cpus-per-node", "2", "--time", "01:00:00"]
    (tmp_path / "real").mkdir()
    (tmp_path / "results").symlink_to(tmp_path / "real")
    (tmp_path / "d.h5").symlink_to(tiny_dataset_path)
    new = ["--", "--method", "si", "--results", str(tmp_path / "results"), "--name", "s", "--data",
           str(tmp_path / "d.h5"), "--flag", "lr=0.1", "--flag", "lr=0.2"]
    assert cli.main(["slurm", *allocation, *new]) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err, err  # the job's driver warns, in the driver's log
    assert f"sweep folder: {tmp_path}/results/s\n" in out
    text = (tmp_path / "results" / "s.sbatch").read_text()
    assert f"--results {tmp_path}/results --name s --data {tmp_path}/d.h5 --address" in text
    (tmp_path / "real" / "s").mkdir()
    save(SweepSettings(method="si", name="s", results=str(tmp_path / "real")))
    assert cli.main(["slurm", *allocation, "--", "--resume", "s", "--results", str(tmp_path / "results")]) == 0
    text = (tmp_path / "real" / "s.resume.sbatch").read_text()
    assert f"run --resume s --results {tmp_path}/results --address" in text


def test_the_job_gives_up_on_a_head_that_never_answers(monkeypatch, capsys):
    from hpsearch import slurm

    monkeypatch.setattr(slurm, "JOIN_TIMEOUT_S", 1.0)
    assert slurm.wait_for_cluster([f"127.0.0.1:{free_port()}", "2"]) == 1
    assert "no Ray head answers at 127.0.0.1:" in capsys.readouterr().out


# --- a real SLURM on localhost ------------------------------------------------------------------------

def slurm_missing() -> str:
    if os.environ.get("CL_RNN_SKIP_SLURM_TEST") == "1":
        return "CL_RNN_SKIP_SLURM_TEST=1"
    missing = [name for name in ("munged", "slurmctld", "slurmd", "sbatch") if not shutil.which(name)]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)"
    return "" if os.geteuid() == 0 else "slurmd must run as root to start jobs"


@pytest.fixture
def local_slurm(tmp_path):
    """A one-node, 2-CPU SLURM of our own; stops exactly its daemons afterwards."""
    state = tmp_path / "slurm"
    script = str(HERE / "slurm_local.sh")
    started = subprocess.run([script, "start", str(state)], capture_output=True, text=True, timeout=60)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield state / "slurm.conf"
    finally:
        pids = [int(p.read_text()) for p in state.glob("*.pid")]
        subprocess.run([script, "stop", str(state)], timeout=120)
        assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a SLURM daemon outlived stop"


@pytest.mark.skipif(bool(slurm_missing()), reason=slurm_missing() or "runs")
def test_a_sweep_through_a_real_slurm(tmp_path, local_slurm, tiny_dataset_path):
    env = cluster_env(SLURM_CONF=str(local_slurm))
    run = ["--method", "finetune", "--num-samples", "2", "--n-iter", "30", "--flag", "num_tasks=2",
           "--flag", "rnn_arch=32", "--flag", "val_set_size=50", "--data", str(tiny_dataset_path),
           "--results", str(tmp_path / "results"), "--name", "real"]
    done = subprocess.run([*HPSEARCH, "--nodes", "1", "--cpus-per-node", "2", "--time", "00:05:00", "--submit",
                           "--", *run], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    job = re.search(r"submitted: job (\d+)", done.stdout).group(1)
    log = tmp_path / "results" / f"real-{job}.log"
    assert f"driver log: {log}" in done.stdout
    deadline = time.monotonic() + 180
    while "JobState=COMPLETED" not in (state := job_state(job, env)) and time.monotonic() < deadline:
        assert "JobState=FAILED" not in state and "JobState=CANCELLED" not in state, log.read_text()[-3000:]
        time.sleep(2)
    print(log.read_text())
    assert "JobState=COMPLETED" in state, state
    rows = records.read_rows(tmp_path / "results" / "real" / records.TRIALS_CSV).values()
    assert len(rows) == 2 and all(row["state"] == FINISHED for row in rows)
    assert re.search(r"hpsearch slurm: [\d:]+ Ray stopped", log.read_text())


def job_state(job: str, env: dict[str, str]) -> str:
    return subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True, text=True).stdout
