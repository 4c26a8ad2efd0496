"""Wall time of the quick reproduction suite, `jointkl reproduce --quick`, in a fresh output folder (not a test).

Runs the command as a user would (a new process, nothing cached), prints its own output as it goes, then
the total wall time and the machine it ran on.

    python benchmarks/bench_reproduce_quick.py [TABLE ...] [--keep DIR]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tables", nargs="*", help="table ids (default: all)")
    ap.add_argument("--keep", help="write the runs and the report here instead of a temporary folder")
    a = ap.parse_args()
    out = Path(a.keep) if a.keep else Path(tempfile.mkdtemp()) / "reproduce"
    cmd = [sys.executable, "-m", "jointkl", "reproduce", *a.tables, "--quick", "--out", str(out)]
    print(f"machine: {machine()}\n$ {' '.join(cmd)}", flush=True)
    t = time.perf_counter()
    code = subprocess.call(cmd)
    seconds = time.perf_counter() - t
    print(f"jointkl reproduce --quick: {seconds:.1f} s wall (exit code {code}); report in {out}")
    print(f"machine at the end: {machine()}")
    sys.exit(code)


if __name__ == "__main__":
    main()
