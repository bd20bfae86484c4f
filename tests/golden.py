"""Golden outputs: what the code computes today for a fixed set of runs, kept to check a refactor bit for bit.

    python tests/golden.py record [CASE ...]        # results changed on purpose: this machine's, the rest dropped
    python tests/golden.py record --add [CASE ...]  # the same code recorded on one more machine
    python tests/golden.py check [CASE ...]         # rerun and compare (tests/test_golden.py does the same)

Cases (all on a small surrogate, 100 classes x 100 clips, with --val_set_size=50):
- ``readme/<line>``: every published line of the study's README with --n_iter=50;
- ``method/<method>``: each method's first published line with --num_tasks=3 --n_iter=200;
- ``population/<scenario>``: the members of tests/test_population.py trained as one population.

A case keeps the accuracy matrix (each float's exact bits, as ``float.hex``), the text of
performance_overview.txt and, for single runs, the SHA-256 of the final weights (every tensor of the
weight source's state in the --store_final_models checkpoint, in key order).  Bit for bit is a promise of one
machine: each file keeps one recording per machine (the CPU model, its vector extensions and the torch
version), and a case is checked only where it was recorded.  Not approximately elsewhere: the products'
summation order differs between CPUs, and a raw-input LSTM amplifies that last-bit difference into
accuracies several points apart within 50 iterations (measured: up to 7.5 points between an AVX-512
and an AVX2 EPYC), so no tolerance tells a refactor's change from another CPU's rounding.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from cl_rnn.checkpoint import path_in, read_payload  # noqa: E402
from cl_rnn.config import Config  # noqa: E402
from cl_rnn.data.surrogate import write_surrogate  # noqa: E402
from cl_rnn.population import train_population  # noqa: E402
from cl_rnn.results import Result  # noqa: E402
from cl_rnn.rules import from_argv  # noqa: E402
from cl_rnn.train import train  # noqa: E402
from search_spaces._published import LINES  # noqa: E402

FOLDER = HERE / "golden"
DATA_FLAGS = ["--val_set_size=50"]


def machine() -> str:
    """The CPU (model and the vector extensions float kernels choose between) and torch version."""
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    vector = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags)
    return f"{models[0] if models else platform.processor()} ({vector}); torch {torch.__version__}"


# --- the cases ---------------------------------------------------------------------------------------------

def readme_lines() -> dict[str, str]:
    """Every published line by a unique name: the method, then ``<method>_<k>`` for its k-th further line."""
    return {(method if k == 0 else f"{method}_{k}"): text
            for method, texts in LINES.items() for k, text in enumerate(texts)}


def single_cases() -> dict[str, list[str]]:
    cases = {f"readme/{name}": [*text.split(), "--n_iter=50"] for name, text in readme_lines().items()}
    cases.update({f"method/{method}": [*texts[0].split(), "--num_tasks=3", "--n_iter=200"]
                  for method, texts in LINES.items()})
    return cases


def population_cases() -> list[str]:
    import test_population

    return [f"population/{name}" for name in sorted(test_population.METHODS)]


def all_cases() -> list[str]:
    return [*single_cases(), *population_cases()]


# --- running a case ----------------------------------------------------------------------------------------

def weights_digest(run_folder: Path) -> str:
    """SHA-256 over the weight source's final trained state (every tensor, in key order; not the masks,
    which the seed draws) and the from-scratch networks.  The source's, not the regularisers': their
    state (Fisher, importances) shaped every step of the weights, and where it is kept is the engine's
    business."""
    digest = hashlib.sha256()

    def visit(key: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(value, dict):
            for k in sorted(value, key=str):
                visit(f"{key}/{k}", value[k])
        elif isinstance(value, (list, tuple)):
            for k, item in enumerate(value):
                visit(f"{key}/{k}", item)

    payload = read_payload(path_in(run_folder))  # a run alone: one member
    learner = payload["learner"]
    source = {"theta": learner["theta"][0]} if "theta" in learner else source_state(learner["method"])
    visit("source", {k: v for k, v in source.items() if k != "masks"})
    visit("task_weights", payload["members"][0]["task_weights"])
    return digest.hexdigest()


def source_state(method: dict[str, Any]) -> dict[str, Any]:
    """The weight source's part of the autograd learner's method state (a source with extras keeps it
    as "0:<source>"); the kernel learner's weights are its "theta" row."""
    composite = [k for k in method if str(k).startswith("0:")]
    return method[composite[0]] if composite else method


def outcome(result: Result, weights: str | None) -> dict[str, Any]:
    return {"accuracy_matrix": [" ".join(float(v).hex() for v in row) for row in np.asarray(result.accuracy_matrix)],
            "performance_overview": (result.out_dir / "performance_overview.txt").read_text(),
            "final_weights_sha256": weights}


def run_single(argv: list[str], data: Path, out: Path) -> dict[str, Any]:
    config = from_argv([*argv, *DATA_FLAGS, f"--data={data}", f"--out_dir={out}", "--store_final_models"])
    return outcome(train(config), weights_digest(out))


def run_population(scenario: str, out: Path) -> list[dict[str, Any]]:
    import test_population
    from train_helpers import synthetic_tasks

    configs: list[Config] = test_population.member_configs(out, "member", **test_population.METHODS[scenario])
    return [outcome(result, None) for result in train_population(configs, tasks=synthetic_tasks(num_tasks=2))]


def compute(case: str, data: Path, work: Path) -> dict[str, Any]:
    kind, name = case.split("/", 1)
    out = work / case.replace("/", "_")
    if kind == "population":
        return {"members": run_population(name, out)}
    return run_single(single_cases()[case], data, out)


def golden_data(work: Path) -> Path:
    """The cases' dataset: the surrogate generator at 100 clips per class (coresets of 500 fit a task)."""
    return write_surrogate(work / "golden.h5", seed=0, clips_per_class=100)


# --- comparing -----------------------------------------------------------------------------------------------

def golden_path(case: str) -> Path:
    return FOLDER / f"{case.replace('/', '__')}.json"


def differences(case: str, recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between this machine's recording of a case and a fresh run of it (empty: the same)."""
    old, new = recorded.get("members", [recorded]), now.get("members", [now])
    problems = []
    for k, (a, b) in enumerate(zip(old, new)):
        where = f"{case}" + (f" member {k}" if "members" in recorded else "")
        problems += [f"{where}: {key} differs" for key in ("accuracy_matrix", "performance_overview",
                                                            "final_weights_sha256") if a.get(key) != b.get(key)]
    if len(old) != len(new):
        problems.append(f"{case}: {len(old)} members recorded, {len(new)} now")
    return problems


def recordings(case: str) -> dict[str, Any]:
    """The case's recordings by machine (none where it was never recorded)."""
    path = golden_path(case)
    return json.loads(path.read_text())["recordings"] if path.is_file() else {}


def unrecorded_reason(case: str) -> str | None:
    """None where this machine has a recording of ``case``, else the one line that says why not."""
    recorded = recordings(case)
    if machine() in recorded:
        return None
    where = "; ".join(recorded) or "no machine"
    return (f"{case}: not recorded on this machine ({machine()}), only on: {where}; bit for bit holds per "
            "machine: record it here from a checkout of the recorded commit (`python tests/golden.py record --add`)")


def check(case: str, data: Path, work: Path) -> list[str]:
    return differences(case, recordings(case)[machine()], compute(case, data, work))


def record(case: str, data: Path, work: Path, add: bool = False) -> None:
    """This machine's recording; ``add`` keeps the other machines' (the same code), else they are dropped."""
    FOLDER.mkdir(exist_ok=True)
    kept = recordings(case) if add else {}
    kept[machine()] = compute(case, data, work)
    golden_path(case).write_text(json.dumps({"case": case, "recordings": kept}, indent=1) + "\n")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("record", "check"):
        print(__doc__.split("\n\n")[1])
        return 2
    add = argv[0] == "record" and argv[1:2] == ["--add"]
    cases = argv[1 + add:] or all_cases()
    unknown = sorted(set(cases) - set(all_cases()))
    if unknown:
        print(f"golden: unknown case(s): {', '.join(unknown)}")
        return 2
    torch.set_num_threads(1)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = golden_data(work)
        for case in cases:
            if argv[0] == "record":
                record(case, data, work, add)
                print(f"{case}: recorded", flush=True)
                continue
            reason = unrecorded_reason(case)
            problems = [reason] if reason else check(case, data, work)
            failed += bool(problems)
            print("; ".join(problems) if problems else f"{case}: same", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
