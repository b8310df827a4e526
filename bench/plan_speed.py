"""The planner's speed, as ratios in one run (issue 16): whole CLI processes, median of N,
against a reference `rigsize estimate qwen2-72b --json` measured in the same run.

Run: .venv/bin/python bench/plan_speed.py [--runs 5]
Targets: the GPT-3 175B pre-training search <= 3x the reference; the Qwen2-72B inference
search over every GPU, count, format and engine <= 1.5x; the `plan 72B` overview <= 5 s.  Prints candidates per second
beside Calculon's ~30 per second per core (Isaev et al., SC23, as the issue quotes it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = str(Path(sys.executable).with_name("rigsize"))
REFERENCE = [BIN, "estimate", "qwen2-72b", "--json"]
SEARCHES = {
    "pretrain gpt-3-175b": ([BIN, "plan", "gpt-3-175b", "--task", "pretrain", "--max-gpus", "4096", "--seq", "2048",
                             "--global-batch", "1536", "--train-tokens", "300B", "--json"], 3.0),
    "inference qwen2-72b": ([BIN, "plan", "qwen2-72b", "--task", "inference", "--users", "32", "--seq", "8192",
                             "--allow-quant", "--json"], 1.5),
}
OVERVIEW = ([BIN, "plan", "72B", "--json"], 5.0)      # issue 17: the overview within 5 s


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    ref = statistics.median(timed(REFERENCE)[0] for _ in range(runs))
    print(f"reference estimate: {ref:.3f} s (median of {runs})")
    for name, (cmd, target) in SEARCHES.items():
        times, out = [], ""
        for _ in range(runs):
            t, out = timed(cmd)
            times.append(t)
        t = statistics.median(times)
        n = json.loads(out)["candidates_considered"]
        print(f"{name}: {t:.2f} s = {t / ref:.1f}x the reference (target <= {target}x); "
              f"{n:,} candidates, {n / t:,.0f} per second (Calculon: ~30 per core)")
    cmd, limit = OVERVIEW
    t = statistics.median(timed(cmd)[0] for _ in range(runs))
    print(f"overview plan 72B: {t:.2f} s (target <= {limit} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
