"""A trial whose worker process dies is told on the driver's stderr in one line per attempt (the trial, the
cause, what comes next), never with Ray's traceback."""
from __future__ import annotations

import re

from driver_helpers import hpsearch, run


def test_a_dying_trial_worker_is_one_line_per_attempt_without_a_traceback(tmp_path):
    done = run(hpsearch("run", "--method", "finetune", "--num-samples", "2", "--max-concurrent", "1", "--n-iter", "5",
                        "--flag", "num_tasks=2", "--train", "fault_trainers:train_crashing_always",
                        "--results", str(tmp_path), "--name", "d"))
    assert done.returncode == 0, done.stdout + done.stderr  # one trial finished
    assert "Traceback" not in done.stdout + done.stderr
    told = [line for line in done.stderr.splitlines() if line.startswith("hpsearch run: trial ")]
    trial = re.match(r"hpsearch run: trial (\w+): ", told[0]).group(1)
    cause = "The actor is dead because its worker process has died"
    assert told == [f"hpsearch run: trial {trial}: {cause}; retrying from its last finished task (retry 1 of 2)",
                    f"hpsearch run: trial {trial}: {cause}; retrying from its last finished task (retry 2 of 2)",
                    f"hpsearch run: trial {trial}: {cause}; recorded failed after 3 attempts"]
