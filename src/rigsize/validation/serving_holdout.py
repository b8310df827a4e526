"""The serving holdout (issue 11): ``data/validation/serving_holdout.csv``, published serving
measurements gathered after the serving model was fitted, in the columns of
``serving_more.csv`` (sources and protocol in ``SERVING-HOLDOUT-README.md``).

Protocol: no rigsize prediction has been computed for these rows.  They are opened once, by
``rigsize validate --source serving-holdout``, after a model change is final, and the errors
are then reported as they come out, never used to revise that change.  So this source is in
no default report and not in ``--source all``, and no test computes its errors: the tests read
the table (``holdout_table``) and the skip reasons, never ``holdout_rows``.

Rows are replayed as ``serving_more`` replays its own (``serving_more.predict_more``, same
load modes and assumptions).  Rows it cannot replay are left out with the reason
(``skipped()``): MLPerf rows (per-request lengths of the datasets are not in the logs), models
without a preset, GPUs not mapped to the catalog, load modes not replayed.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from importlib import resources

from rigsize.hardware.gpus import resolve_gpu
from rigsize.speed.error_bands import class_key
from rigsize.validation import Row
from rigsize.validation.serving_more import MoreCase, predict_more, replay_mode, skip_reason

SOURCE = "serving_holdout"
SPLIT = "holdout"
# GPU names as the sources print them -> catalog names.  "NVIDIA A100 80GB" (form factor not
# stated) is run as A100-SXM-80GB, as serving_more does.
GPUS = {"NVIDIA B200-SXM-180GB": "B200-180GB", "NVIDIA H200-SXM-141GB": "H200-SXM-141GB",
        "Virtualized NVIDIA H200-SXM-141GB": "H200-SXM-141GB", "NVIDIA H200-NVL-141GB": "H200-NVL-141GB",
        "NVIDIA H100-SXM-80GB": "H100-SXM-80GB", "NVIDIA GB200": "GB200", "NVIDIA GB300": "GB300",
        "NVIDIA L40S": "L40S", "NVIDIA RTX PRO 6000 Blackwell Server Edition": "RTX-PRO-6000",
        "AMD Instinct MI300X 192GB HBM3": "MI300X", "AMD Instinct MI300X (8x192 GB HBM3 node)": "MI300X",
        "AMD Instinct MI325X 256GB HBM3e": "MI325X", "AMD Instinct MI355X 288GB HBM3e": "MI355X",
        "NVIDIA A100 80GB (issue title '1x A100 80GB')": "A100-SXM-80GB"}
MODELS = {"meta-llama/Llama-2-70b-chat-hf": "llama-2-70b", "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
          "meta-llama/Llama-3.1-70B-Instruct": "llama-3.1-70b", "meta-llama/Llama-3.1-405B-Instruct": "llama-3.1-405b",
          "mistralai/Mixtral-8x7B-Instruct-v0.1": "mixtral-8x7b", "deepseek-ai/DeepSeek-R1": "deepseek-r1"}


@cache
def holdout_table() -> tuple[dict[str, str], ...]:
    """The rows as written, no prediction."""
    text = resources.files("rigsize.data").joinpath("validation", "serving_holdout.csv").read_text()
    return tuple(csv.DictReader(text.splitlines()))


def skipped() -> list[tuple[str, str]]:
    return [(r["row_id"], why) for r in holdout_table() if (why := skip_reason(r, MODELS, GPUS))]


def holdout_cases() -> tuple[MoreCase, ...]:
    out = []
    for r in holdout_table():
        if skip_reason(r, MODELS, GPUS):
            continue
        mode = replay_mode(r)
        prompts = int(r["num_prompts"]) if r["num_prompts"] else 0
        osl = int(r["osl"])
        if prompts and r["total_output_tokens"]:
            osl = max(1, round(int(r["total_output_tokens"]) / prompts))
        measured = {metric: float(r[column]) * scale for metric, column, scale in (
            ("ttft_s", "ttft_mean_ms", 1e-3), ("tpot_s", "tpot_mean_ms", 1e-3),
            ("output_tokens_per_s", "output_tokens_per_s", 1.0)) if r[column]}
        requests = prompts if mode == "burst" else int(r["concurrency"])
        version = re.search(r"\d+\.\d+(\.\d+)?", r["engine_version"]) if r["engine_version"] else None
        out.append(MoreCase(
            row_id=r["row_id"], split=SPLIT,
            cls=class_key(r["engine"], resolve_gpu(GPUS[r["gpu"]]).architecture, r["model_class"] == "moe"),
            mode=mode, preset=MODELS[r["hf_model"]], gpu=GPUS[r["gpu"]],
            engine_version=version.group(0) if version else None,
            weights="fp8" if r["weights"].startswith("fp8") else None, tp=int(r["tp"] or r["gpus"]),
            requests=requests, waves=prompts / requests if mode == "closed" and prompts else 1.0,
            isl=int(r["isl"]), osl=osl, kv_gib_per_gpu=None, measured=measured))
    return tuple(out)


def holdout_rows() -> list[Row]:
    """Predictions against the holdout.  Called by ``rigsize validate --source serving-holdout``
    alone, once a model change is final (module docstring)."""
    rows = []
    for c in holdout_cases():
        p = predict_more(c)
        predicted = {"ttft_s": p.ttft_seconds, "tpot_s": p.tpot_seconds,
                     "output_tokens_per_s": p.output_tokens_per_second}
        for metric, value in c.measured.items():
            rows.append(Row(SOURCE, f"{c.row_id}/{c.preset}/{c.gpu}/tp{c.tp}/{c.mode}{c.requests}/{c.isl}x{c.osl}",
                            metric, c.split, value, predicted[metric], c.cls, c.preset))
    return rows
