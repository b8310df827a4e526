"""The planner's speed, as ratios in one run (issue 16): whole CLI processes, median of N,
against a reference `rigsize estimate qwen2-72b --json` measured in the same run.

Run: .venv/bin/python bench/plan_speed.py [--runs 5]
Targets: the GPT-3 175B pre-training search <= 3x the reference; the Qwen2-72B inference
search over every GPU, count, format and engine <= 1.5x; the `plan 72B` overview <= 5 s.  Prints candidates per second
beside Calculon's ~30 per second per core (Isaev et al., SC23, as the issue quotes it): "considered" counts every
candidate the search space holds (the figure the issue sizes), "reached" those the best-first search took off its
queue before its bounds stopped it (considered - pruned), which is closer to what Calculon's figure counts.
The wall-clock ratio is the target; on a machine shared with other work the ratio of CPU seconds (user + system of
the child process, the same medians) is printed beside it, as it is less disturbed by the load.
"""

from __future__ import annotations

import argparse
import json
import resource
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


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, its stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out


def medians(cmd: list[str], runs: int) -> tuple[float, float, str]:
    walls, cpus, out = [], [], ""
    for _ in range(runs):
        wall, cpu, out = timed(cmd)
        walls.append(wall)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    ref, ref_cpu, _ = medians(REFERENCE, runs)
    print(f"reference estimate: {ref:.3f} s wall, {ref_cpu:.3f} s CPU (median of {runs})")
    for name, (cmd, target) in SEARCHES.items():
        t, cpu, out = medians(cmd, runs)
        plan = json.loads(out)
        n, reached = plan["candidates_considered"], plan["candidates_considered"] - plan["pruned"]
        verdict = "met" if t / ref <= target else "NOT met"
        print(f"{name}: {t:.2f} s = {t / ref:.1f}x the reference (target <= {target}x: {verdict}; CPU {cpu:.2f} s = "
              f"{cpu / ref_cpu:.1f}x); {n:,} candidates considered, {n / t:,.0f} per second; {reached:,} reached, "
              f"{reached / t:,.0f} per second (Calculon: ~30 per core)")
    cmd, limit = OVERVIEW
    t, cpu, _ = medians(cmd, runs)
    print(f"overview plan 72B: {t:.2f} s wall, {cpu:.2f} s CPU (target <= {limit} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
