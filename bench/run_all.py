"""Every benchmark, one after the other (``make bench``). Figures only: nothing here fails on timing.

Run: .venv/bin/python bench/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test of the suite)")
    args = parser.parse_args()
    python = sys.executable
    runs: list[list[str]] = [
        ["bench/bench_client_credentials.py", "--scaling", "1,2,4,8,16"],
        ["bench/bench_grants.py"],
        ["bench/bench_signin.py"],
        ["clients/python/bench_validate.py", "3", "3"],
        ["bench/bench_soak.py"],
        ["bench/bench_data_size.py"],
    ]
    if args.quick:
        runs = [
            ["bench/bench_client_credentials.py", "--seconds", "2", "--rounds", "1"],
            ["clients/python/bench_validate.py", "1", "1"],
        ]
    failed = []
    for run in runs:
        print(f"\n=== {' '.join(run)}", flush=True)
        started = time.monotonic()
        done = subprocess.run([python, *run], cwd=ROOT, check=False)
        print(f"=== {run[0]}: {time.monotonic() - started:.0f} s", flush=True)
        if done.returncode != 0:
            failed.append(run[0])
    if failed:
        print(f"\nthese benchmarks could not run: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
