"""Rewrite the `split` column of data/validation/serving_silicon_sample.csv by the rule of
2026-12-01 (issue 11: every GPU family fitted on its own rows, every class keeps rows
no fit has seen).  The rule is mechanical and uses no prediction or error:

1. Every Qwen3-235B-A22B row is `reserved`: the held-out model, never fitted.
2. The other rows are grouped by deployment (preset, GPU, engine, weights, tp, pp, ep,
   dp: one server set-up, all its lengths and concurrencies together, so a reserved row
   is never a near-copy of a fitted one) inside each class (engine x GPU family x dense
   or MoE).  Groups are taken in order of first appearance in the file and alternate
   `fit`, `reserved`, `fit`, ...
3. A split, once written, stands: rerun on a file whose rows already carry one, a group
   keeps its side, and a group that a data correction of a row's layout filled from both
   sides becomes `fit` as a whole (a row a fit has read is never reserved, and a reserved
   row whose deployment was fitted is out of sample no longer; 2026-12-04, when the
   2025-11 DeepSeek-R1 rows took their scripts' expert parallelism and attention DP).
   Groups new to the file (rows without a split) alternate as in rule 2, by their place in the
   class's order of first appearance.

Run once: .venv/bin/python bench/split_serving.py (idempotent; prints the counts).
"""

from __future__ import annotations

import collections
import csv
import io
from pathlib import Path

from rigsize.hardware.gpus import resolve_gpu
from rigsize.model.inputs import resolve_model
from rigsize.speed.error_bands import class_key

PATH = Path(__file__).resolve().parents[1] / "src/rigsize/data/validation/serving_silicon_sample.csv"
HELD_OUT_MODELS = ("qwen3-235b-a22b",)


def _group(r: dict[str, str]) -> tuple[str, ...]:
    """A row's deployment: one server set-up, all its lengths and concurrencies together."""
    return (r["preset"], r["gpu"], r["backend"], r["weights"], r["tp"], r["pp"], r["ep"], r["dp"])


def main() -> None:
    text = PATH.read_text()
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    moe = {p: resolve_model(p).arch.num_experts > 0 for p in {r["preset"] for r in rows}}
    order: dict[str, list[tuple]] = collections.defaultdict(list)
    for r in rows:
        cls = class_key(r["backend"], resolve_gpu(r["gpu"]).architecture, moe[r["preset"]])
        group = _group(r)
        if r["preset"] not in HELD_OUT_MODELS and group not in order[cls]:
            order[cls].append(group)
    before: dict[tuple, set[str]] = collections.defaultdict(set)   # rule 3: the sides already written
    for r in rows:
        if r.get("split") in ("fit", "reserved") and r["preset"] not in HELD_OUT_MODELS:
            before[_group(r)].add(r["split"])
    side = {}
    for groups in order.values():
        for i, g in enumerate(groups):
            side[g] = ("fit" if "fit" in before[g] else "reserved") if g in before else ("fit", "reserved")[i % 2]
    counts: collections.Counter = collections.Counter()
    for r in rows:
        group = _group(r)
        r["split"] = "reserved" if r["preset"] in HELD_OUT_MODELS else side[group]
        counts[(class_key(r["backend"], resolve_gpu(r["gpu"]).architecture, moe[r["preset"]]), r["split"])] += 1
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    PATH.write_text(out.getvalue())
    for (cls, split), n in sorted(counts.items()):
        print(f"{cls:28s} {split:9s} {n}")


if __name__ == "__main__":
    main()
