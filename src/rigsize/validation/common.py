"""What every validation source shares: a compared row, summaries per source and per class."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

HELD_OUT_MODELS = ("qwen3-235b-a22b",)   # never fitted, in any class (bench/split_serving.py)


@dataclass(frozen=True)
class Row:
    source: str
    case: str
    metric: str
    split: str
    measured: float
    predicted: float
    cls: str = ""       # error_bands.class_key, where the row belongs to a class with a band
    model: str = ""     # preset, for the per-model (held-out model) summary

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1


def summarize(rows: list[Row]) -> list[dict[str, Any]]:
    """Median and worst absolute error per (source, metric, split)."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r.source, r.metric, r.split), []).append(abs(r.error))
    return [{"source": s, "metric": m, "split": sp, "n": len(v), "median_abs_error": statistics.median(v),
             "worst_abs_error": max(v)} for (s, m, sp), v in sorted(groups.items())]


# Targets on reserved rows of a class with at least error_bands.MIN_ROWS rows (issue 11/12).
TARGETS = {"tpot_s": 0.10, "ttft_s": 0.20, "output_tokens_per_s": 0.15, "step_s": 0.10, "mfu": 0.10,
           "tflops_per_gpu": 0.10, "tokens_per_s_per_gpu": 0.10,
           "tg_tokens_per_s": 0.15, "pp_tokens_per_s": 0.25}       # local inference (issue 19)


# Local inference (issue 19): a device family's reserved median is held to its target from this many rows
# (as training's MIN_ROWS; a family has tens of published llama-bench runs, not serving's hundreds of cases).
LOCAL_MIN_ROWS = 5
LOCAL_METRICS = ("tg_tokens_per_s", "pp_tokens_per_s")


def summarize_classes(rows: list[Row]) -> list[dict[str, Any]]:
    """Median and p90 absolute error per (class, metric, split), and per held-out model:
    the figures targets and error bands are read from, never pooled across classes."""
    from rigsize.speed.error_bands import MIN_ROWS
    from rigsize.speed.error_bands import summarize as band

    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        if r.cls:
            groups.setdefault((r.cls, r.metric, r.split), []).append(r.error)
        if r.model in HELD_OUT_MODELS:
            groups.setdefault((f"held-out model {r.model}", r.metric, r.split), []).append(r.error)
    out = []
    for (cls, metric, split), errors in sorted(groups.items()):
        b = band(errors, cls)
        kind = "training" if metric in ("step_s", "mfu", "tflops_per_gpu", "tokens_per_s_per_gpu") else "serving"
        need = LOCAL_MIN_ROWS if metric in LOCAL_METRICS else MIN_ROWS[kind]
        target = TARGETS.get(metric) if split == "reserved" and b.n >= need else None
        out.append({"class": cls, "metric": metric, "split": split, "n": b.n, "median_abs_error": b.median_abs,
                    "p90_abs_error": b.p90_abs, "target": target,
                    "meets_target": None if target is None else b.median_abs <= target})
    return out


def log_error(pred: float, measured: float) -> float:
    return abs(math.log(pred / measured))
