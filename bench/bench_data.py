"""Data-layer speed and memory: surrogate generation, file load, load_tasks peak RSS.

    python bench/bench_data.py [--repeat 3]

Generation and loading are timed in this process (best of --repeat: the machine is shared);
load_tasks runs in a fresh process with torch imported, and its peak RSS is reported.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cl_rnn.data.store import load_dataset
from cl_rnn.data.surrogate import make_surrogate, write_surrogate

PEAK_RSS = r"""
import re, sys, time
from types import SimpleNamespace
import torch
from cl_rnn.data.tasks import load_tasks
def vm_hwm_mb():  # peak RSS of this process (ru_maxrss would include the parent's, pre-exec)
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
before = vm_hwm_mb()
start = time.perf_counter()
data = sys.argv[1] if len(sys.argv) > 1 else ""
tasks = load_tasks(SimpleNamespace(data=data, num_tasks=10, num_classes_per_task=10,
                                   data_random_seed=42, val_set_size=500))
seconds = time.perf_counter() - start
peak = vm_hwm_mb()
print(f"load_tasks: {seconds:.2f} s, peak RSS {peak:.0f} MB (after importing torch: {before:.0f} MB)")
print("modules loaded:", "sklearn" in sys.modules and "sklearn" or "no sklearn")
"""


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"make_surrogate (100 x 1000): best of {args.repeat}: "
          f"{best_of(args.repeat, make_surrogate):.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "surrogate.h5"
        print(f"write_surrogate: {best_of(args.repeat, lambda: write_surrogate(path)):.2f} s, "
              f"file {path.stat().st_size / 1e6:.1f} MB")
        print(f"load_dataset: {best_of(args.repeat, lambda: load_dataset(path)):.2f} s")
        subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], check=True)
        print("first use (no --data: builds and caches the surrogate, then loads it):")
        subprocess.run([sys.executable, "-c", PEAK_RSS], check=True,
                       env={**os.environ, "CL_RNN_DATA_DIR": str(Path(tmp) / "cache")})


if __name__ == "__main__":
    main()
