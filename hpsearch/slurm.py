"""``hpsearch slurm``: an sbatch script that turns a SLURM allocation into a Ray cluster for one sweep.

It follows Ray's documented pattern ("Deploying on Slurm"): one task per node; the batch script
starts the Ray head on the first node and a worker on every other node, each with
``srun ... ray start --block``, and runs the driver on the first node.  Here the driver waits until
every node has joined, runs ``hpsearch run ... --address HEAD:PORT`` with the sweep folder on the
shared file system, and a trap stops the Ray steps when the sweep ends or the job is cancelled.

``python -m hpsearch.slurm ADDRESS NODES`` is the script's wait for the nodes (Ray stays in ray_adapter).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TIME_LIMIT = re.compile(r"(\d+-)?\d+:[0-5]\d:[0-5]\d")  # [D-]HH:MM:SS
SLURM_NAME = re.compile(r"[\w.,:@+-]+")  # a partition or account: nothing the script's shell would read
SET_BY_JOB = ("--results", "--name", "--data", "--resume", "--address")  # rewritten with absolute paths
JOIN_TIMEOUT_S = 300.0
STOP_BEFORE_END_S = 60  # the batch shell's trap stops the sweep, then Ray, this long before the time limit


class SlurmError(Exception):
    """Input `hpsearch slurm` refuses, or sbatch refused the job; the message is one line."""


@dataclass(frozen=True)
class Allocation:
    nodes: int
    cpus_per_node: int
    gpus_per_node: int
    time: str
    partition: str = ""
    account: str = ""


@dataclass(frozen=True)
class Job:
    allocation: Allocation
    run_args: tuple[str, ...]  # for `hpsearch run`, every path absolute; the script adds --address
    sweep_dir: Path
    python: Path  # the Python that wrote the script: it, and ray and hpsearch next to it, run the job

    @property
    def resuming(self) -> bool:
        return "--resume" in self.run_args

    @property
    def script(self) -> Path:
        return self.sweep_dir.parent / f"{self.sweep_dir.name}{'.resume' if self.resuming else ''}.sbatch"

    @property
    def log(self) -> Path:
        """The driver's log (the job's output); SLURM puts the job id in place of %j."""
        return self.sweep_dir.parent / f"{self.sweep_dir.name}-%j.log"


def check_allocation(allocation: Allocation) -> None:
    if allocation.nodes < 1 or allocation.cpus_per_node < 1 or allocation.gpus_per_node < 0:
        raise SlurmError("--nodes and --cpus-per-node must be at least 1, --gpus-per-node at least 0")
    if not TIME_LIMIT.fullmatch(allocation.time):
        raise SlurmError(f"--time {allocation.time!r}: expected HH:MM:SS (or D-HH:MM:SS), e.g. 04:00:00")
    for option, value in (("--partition", allocation.partition), ("--account", allocation.account)):
        if value and not SLURM_NAME.fullmatch(value):
            raise SlurmError(f"{option} {value!r}: not a SLURM name")


def parse_run_args(run_parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``argv`` as `hpsearch run` would take it; its refusal becomes one line."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise SlurmError("missing the sweep: end with `-- <hpsearch run arguments>`, e.g. -- --method ewc")
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return run_parser.parse_args(["run", *argv])
    except SystemExit:
        said = (err.getvalue() or out.getvalue()).strip().splitlines() or ["refused"]
        raise SlurmError(f"hpsearch run arguments: {said[-1].split('error: ')[-1]}") from None


def sweep_of(run: argparse.Namespace, argv: list[str]) -> tuple[tuple[str, ...], Path]:
    """The run arguments the job passes on (paths absolute, --name set) and the sweep folder.

    Refuses what `hpsearch run` refuses before it loads data (settings.prepare, settings.resume_dir); the job's
    driver checks the data and warns about a --flag given twice."""
    from hpsearch.settings import SweepError, load, prepare, resume_dir, settings_of

    if run.address:
        raise SlurmError("--address: the job sets it (the Ray head on the allocation's first node)")
    try:
        if run.resume:
            sweep_dir = resume_dir(run.results, run.resume)
            load(sweep_dir)  # its settings are readable
            return ("--resume", run.resume, "--results", str(sweep_dir.parent),
                    *(["--verbose"] * run.verbose)), sweep_dir
        settings = settings_of(run, warn=False)
        notices = prepare(settings, resume="-- --resume")
    except SweepError as err:
        raise SlurmError(str(err)) from None
    for line in notices:
        print(line, file=sys.stderr)
    data = ["--data", settings.data] if settings.data else []
    run_args = (*_without(argv, SET_BY_JOB), "--results", settings.results, "--name", settings.name, *data)
    return run_args, settings.sweep_dir


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """``argv`` less ``options`` (``--opt value`` and ``--opt=value``) and a leading ``--``."""
    kept: list[str] = []
    tokens = iter(argv[1:] if argv[:1] == ["--"] else argv)
    for token in tokens:
        option, equals, _ = token.partition("=")
        if option in options:
            if not equals:
                next(tokens, None)
            continue
        kept.append(token)
    return kept


def job_python() -> Path:
    """The running Python, not resolved (a venv's python is a link out of the venv); ray and hpsearch beside it."""
    python = Path(sys.executable).absolute()
    for program in ("ray", "hpsearch"):
        if not (python.parent / program).is_file():
            raise SlurmError(f"no {program} next to {python}: install cl-rnn in this environment")
    return python


def sbatch_directives(job: Job) -> list[str]:
    allocation = job.allocation
    options = [f"--job-name=hpsearch-{job.sweep_dir.name}", f"--nodes={allocation.nodes}", "--ntasks-per-node=1",
               f"--cpus-per-task={allocation.cpus_per_node}", f"--time={allocation.time}", f"--output={job.log}",
               "--open-mode=append", f"--signal=B:TERM@{STOP_BEFORE_END_S}"]
    options += [f"--gpus-per-node={allocation.gpus_per_node}"] * (allocation.gpus_per_node > 0)
    options += [f"--partition={allocation.partition}"] * bool(allocation.partition)
    options += [f"--account={allocation.account}"] * bool(allocation.account)
    return [f"#SBATCH {shlex.quote(option)}" for option in options]


SCRIPT = r"""
# Written by `hpsearch slurm`: Ray's "Deploying on Slurm" pattern, then one sweep on the Ray cluster.
set -u
exec 2>&1  # one stream: stdout and stderr opened apart would overwrite each other in the log
BIN={bin_dir}
PYTHON={python}
SWEEP={sweep_dir}
NODE_COUNT={nodes}
# Ray's auth setting must be identical on head, workers and driver; srun passes this environment on.
export RAY_AUTH_MODE="${{RAY_AUTH_MODE:-disabled}}" RAY_USAGE_STATS_ENABLED=0
STEP=(srun --nodes=1 --ntasks=1 --cpus-per-task={cpus})
NODE=(--num-cpus={cpus} --num-gpus={gpus} --temp-dir="/tmp/ray-$SLURM_JOB_ID" --disable-usage-stats --block)
RESUME={resume}
say() {{ echo "hpsearch slurm: $(date +%T) $*"; }}
gone() {{ for _ in $(seq "$1"); do kill -0 "${{@:2}}" 2>/dev/null || return 0; sleep 1; done; return 1; }}

mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
HEAD=${{NODES[0]}}
HEAD_IP=$("${{STEP[@]}}" -w "$HEAD" hostname --ip-address | tr ' ' '\n' | grep -m1 -E '^[0-9]+(\.[0-9]+){{3}}$')
PORT=$("${{STEP[@]}}" -w "$HEAD" "$PYTHON" -c \
  'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
[ -n "$HEAD_IP" ] && [ -n "$PORT" ] || {{ say "no IPv4 address or free port on $HEAD"; exit 1; }}
ADDRESS=$HEAD_IP:$PORT

STEPS=()  # the srun steps running `ray start --block`, head first
DRIVER=
stop_ray() {{
  trap - EXIT TERM INT
  # SIGINT: Tune saves the experiment and the driver returns; SIGTERM if it takes too long
  [ -n "$DRIVER" ] && kill -INT "$DRIVER" 2>/dev/null && ! gone 30 "$DRIVER" && kill -TERM "$DRIVER"
  say "stopping Ray (srun then reports its steps cancelled)"
  for ((i = ${{#STEPS[@]}} - 1; i >= 0; i--)); do kill -TERM "${{STEPS[i]}}" 2>/dev/null; done  # workers first
  gone 60 "${{STEPS[@]}}"
  say "Ray stopped. Sweep folder: $SWEEP"
}}
trap stop_ray EXIT
trap 'say "stopping early (scancel or time limit); continue the sweep in a later job with: $RESUME"; exit 143' TERM INT

"${{STEP[@]}}" -w "$HEAD" "$BIN/ray" start --head --node-ip-address="$HEAD_IP" --port="$PORT" \
  --include-dashboard=false "${{NODE[@]}}" &
STEPS+=($!)
"$PYTHON" -m hpsearch.slurm "$ADDRESS" 1 || exit 1
if [ "$NODE_COUNT" -gt 1 ]; then
  for node in "${{NODES[@]:1}}"; do
    "${{STEP[@]}}" -w "$node" "$BIN/ray" start --address="$ADDRESS" "${{NODE[@]}}" &
    STEPS+=($!)
  done
  "$PYTHON" -m hpsearch.slurm "$ADDRESS" "$NODE_COUNT" || exit 1
fi

say "sweep folder $SWEEP, driver on $HEAD, Ray at $ADDRESS"
(trap - INT; exec "$BIN/hpsearch" run {run_args} --address "$ADDRESS") &  # with SIGINT, unlike plain &
DRIVER=$!
wait "$DRIVER"
STATUS=$?
DRIVER=
exit $STATUS
"""


def render(job: Job) -> str:
    """The sbatch script: directives, then the script body with every value shell-quoted."""
    resume = ["hpsearch", "slurm", "...", "--", "--resume", job.sweep_dir.name, "--results", str(job.sweep_dir.parent)]
    body = SCRIPT.format(
        bin_dir=shlex.quote(str(job.python.parent)), python=shlex.quote(str(job.python)),
        sweep_dir=shlex.quote(str(job.sweep_dir)),
        nodes=job.allocation.nodes, cpus=job.allocation.cpus_per_node, gpus=job.allocation.gpus_per_node,
        resume=shlex.quote(shlex.join(resume)), run_args=shlex.join(job.run_args))
    return "\n".join(["#!/bin/bash", *sbatch_directives(job)]) + "\n" + body


def write(job: Job) -> Path:
    try:
        job.script.parent.mkdir(parents=True, exist_ok=True)
        job.script.write_text(render(job))
        job.script.chmod(0o755)
    except OSError as err:
        raise SlurmError(f"cannot write {job.script} ({err.strerror or err})") from None
    return job.script


def submit(script: Path) -> str:
    """``sbatch`` the script; returns the job id."""
    done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise SlurmError(f"sbatch refused {script}: {said}")
    return done.stdout.strip().split(";")[0]


def create(args: argparse.Namespace, run_parser: argparse.ArgumentParser) -> int:
    """`hpsearch slurm`: check everything, write the script, --submit it; print where things will be."""
    allocation = Allocation(args.nodes, args.cpus_per_node, args.gpus_per_node, args.time, args.partition,
                            args.account)
    check_allocation(allocation)
    if args.submit and shutil.which("sbatch") is None:
        raise SlurmError("--submit: sbatch not found on PATH (submit the written script where SLURM is)")
    run_args, sweep_dir = sweep_of(parse_run_args(run_parser, args.run_args), args.run_args)
    job = Job(allocation, run_args, sweep_dir, job_python())
    print(write(job))
    log = str(job.log)
    if args.submit:
        job_id = submit(job.script)
        log = log.replace("%j", job_id)
        print(f"submitted: job {job_id}")
    else:
        print(f"submit it with: sbatch {job.script}")
    print(f"driver log: {log}\nsweep folder: {sweep_dir}")
    return 0


def wait_for_cluster(argv: list[str]) -> int:
    """In the job: wait until ``NODES`` Ray nodes have joined ``ADDRESS``; 1 when they did not in time."""
    address, count = argv[0], int(argv[1])
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while not _answers(address):
        if time.monotonic() > deadline:
            print(f"hpsearch slurm: no Ray head answers at {address} after {JOIN_TIMEOUT_S:.0f} s", flush=True)
            return 1
        time.sleep(1)
    from hpsearch import ray_adapter

    alive = ray_adapter.wait_for_nodes(address, count, deadline - time.monotonic())
    print(f"hpsearch slurm: {alive} of {count} Ray nodes joined {address}", flush=True)
    return 0 if alive >= count else 1


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(wait_for_cluster(sys.argv[1:]))
