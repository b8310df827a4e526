"""Data-integrity checks for data/validation/sglang_startup_logs.toml (SGLang start-up logs quoted
from public material; nobody here produced them).

These tests only check the file: that it loads, that every log names its source, version, GPU, model
and printed KV capacity, and that the figures typed from the sources are the ones printed there, and that
its split is written down. rigsize's predictions on the logs are tests/memory/test_sglang_budget.py's.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources

import pytest

from rigsize.hardware.gpus import resolve_gpu
from rigsize.model.formats import resolve_weight_format

NAME = "sglang_startup_logs.toml"
TEXT = resources.files("rigsize.data").joinpath("validation", NAME).read_text(encoding="utf-8")
LOGS = tomllib.loads(TEXT)["log"]
IDS = [log["id"] for log in LOGS]
DATE = re.compile(r"\d{4}-\d{2}-\d{2}$")
SOURCES = {"given", "default, printed", "default, not printed", "printed, origin unknown"}
# Settings that are either a number or one of these words (see the file header):
WORDS = {"default", "unknown"}
SETTINGS = ("chunked_prefill_size", "cuda_graph_max_bs", "context_length", "max_total_tokens",
            "max_running_requests", "page_size")
REQUIRED = ("id", "url", "sglang_version", "version_source", "gpu", "gpu_in_catalog", "gpu_count",
            "model", "weights_format", "tp", "dp", "ep", "pp", "enable_dp_attention",
            "kv_cache_dtype", "mem_fraction_static", "mem_fraction_source", "excerpt", "hybrid",
            "notes", "as_of", "printed")


def test_file_loads_with_enough_logs_and_unique_ids():
    assert len(LOGS) >= 10
    assert len(set(IDS)) == len(IDS)


def test_header_writes_the_split_down():
    # the split was fixed before any prediction: the three logs seen while reading SGLang's code are fit
    assert "SPLIT, written 2026-12-03 before any prediction was run" in TEXT
    assert "fit (seen):  rtx3090-r1-distill-qwen7b, l4x4-qwq32b-tp4, h100-qwen3-30b-a3b-fp8-tp1" in TEXT


@pytest.mark.parametrize("log", LOGS, ids=IDS)
def test_required_fields(log):
    missing = [k for k in REQUIRED if k not in log]
    assert not missing, (log["id"], missing)
    for key in ("url", "sglang_version", "version_source", "gpu", "model", "excerpt", "notes"):
        assert isinstance(log[key], str) and log[key].strip(), (log["id"], key)
    assert DATE.match(log["as_of"]), log["id"]


@pytest.mark.parametrize("log", LOGS, ids=IDS)
def test_url_is_a_link_or_a_code_index_id(log):
    url = log["url"]
    assert url.startswith("https://github.com/") or (
        url.startswith("unknown (") and re.search(r"code-index id \d+", url)
    ), (log["id"], url)


@pytest.mark.parametrize("log", LOGS, ids=IDS)
def test_printed_kv_tokens_present_and_consistent(log):
    printed = log["printed"]
    tokens = printed.get("kv_tokens")
    assert isinstance(tokens, int) and tokens > 0, log["id"]
    if "max_total_num_tokens" in printed:
        assert printed["max_total_num_tokens"] == tokens, log["id"]
    # the token count must appear in the quoted lines, as printed
    assert str(tokens) in log["excerpt"], log["id"]
    for key, value in printed.items():
        assert isinstance(value, (int, float)) and value > 0, (log["id"], key)
        if key.endswith("_gib"):
            assert f"{value:.2f}" in log["excerpt"] or str(value) in log["excerpt"], (log["id"], key)


@pytest.mark.parametrize("log", LOGS, ids=IDS)
def test_gpu_model_and_format_names(log):
    if log["gpu_in_catalog"]:
        assert resolve_gpu(log["gpu"]).name == log["gpu"], log["id"]
    assert "/" in log["model"], (log["id"], "a Hugging Face id is org/name")
    if log["weights_format"] != "unknown":
        resolve_weight_format(log["weights_format"])


@pytest.mark.parametrize("log", LOGS, ids=IDS)
def test_parallel_sizes_and_settings(log):
    for key in ("tp", "dp", "ep", "pp", "gpu_count"):
        assert isinstance(log[key], int) and log[key] >= 1, (log["id"], key)
    # with DP attention the dp ranks live inside the tp group; otherwise dp replicas multiply it
    replicas = 1 if log["enable_dp_attention"] else log["dp"]
    assert log["gpu_count"] == log["tp"] * log["pp"] * replicas, log["id"]
    assert log["mem_fraction_source"] in SOURCES, log["id"]
    msf = log["mem_fraction_static"]
    if log["mem_fraction_source"] == "default, not printed":
        assert msf == "unknown", log["id"]
    else:
        assert isinstance(msf, float) and 0 < msf < 1, log["id"]
        assert f"{msf}" in log["excerpt"] or f"mem-fraction-static {msf}" in log["excerpt"] or (
            log["mem_fraction_source"] == "given"
        ), log["id"]
    for key in SETTINGS:
        value = log[key]
        assert value in WORDS or (isinstance(value, int) and value >= 1), (log["id"], key)
    assert isinstance(log["hybrid"], bool)


# Spot values typed from the sources (read 2026-12-01), so a mistyped edit of the file fails here.
SPOT = {
    "l4x4-qwq32b-tp4": {"kv_tokens": 46611, "k_size_gib": 1.42, "load_begin_avail_gib": 21.63},
    "rtx3090-r1-distill-qwen7b": {"kv_tokens": 105531, "max_running_requests": 2049},
    "h100-qwen3-30b-a3b-fp8-tp1": {"kv_tokens": 392920, "load_end_avail_gib": 49.33},
    "mi35x-x8-kimi-k25-tp8": {"kv_tokens": 2454421, "kv_size_gib": 160.63},
    "b200x8-deepseek-v32-exp-dp8-pr11309": {"kv_tokens": 975424, "kv_size_gib": 43.67},
}


@pytest.mark.parametrize("log_id", sorted(SPOT))
def test_spot_values(log_id):
    log = next(log for log in LOGS if log["id"] == log_id)
    for key, value in SPOT[log_id].items():
        assert log["printed"][key] == value, (log_id, key)
