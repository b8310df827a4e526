"""Validation of the inference memory budget against engines' own start-up logs and
published ``transformers`` memory tables (nobody here produced either).

- ``data/validation/vllm_startup_logs.toml``: vLLM start-up logs quoted in public issues
  and pages.  Each usable log is re-run through ``rigsize.estimate`` with the log's GPU,
  model, parallel sizes, vLLM version and flags; rigsize's ``kv_cache_tokens`` is
  compared with the printed KV capacity (``GPU KV cache size: N tokens`` or
  ``# GPU blocks`` x 16) and ``max_concurrency_at_max_model_len`` with the printed
  ``Maximum concurrency for N tokens per request``.
- ``data/validation/transformers_memory.toml``: the Qwen speed benchmarks' GPU memory
  of ``transformers`` ``generate()`` at batch 1, single-GPU rows, compared with
  weights + KV cache + activations (the benchmark reads ``torch.cuda.max_memory_
  allocated``, which leaves out the CUDA context rigsize adds as overhead).
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from rigsize.validation import Row

# Hugging Face ids in the logs -> the preset with the same architecture (and, where the
# log's checkpoint differs from the preset's, why it is the same shape).
LOG_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "meta-llama/Llama-3.1-8B-Instruct": ("llama-3.1-8b", {}),
    "Qwen/Qwen2.5-7B-Instruct": ("qwen2.5-7b", {}),
    "Qwen/Qwen2-7B-Instruct": ("qwen2-7b", {}),
    # DeepSeek-R1-Distill-Qwen-14B is Qwen2.5-14B fine-tuned (its model card), same shapes
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": ("qwen2.5-14b", {}),
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": ("qwen3-235b-a22b", {"weights": "fp8-block"}),
    "Qwen/Qwen3-235B-A22B-FP8": ("qwen3-235b-a22b", {"weights": "fp8-block"}),
    "Qwen/Qwen3-30B-A3B": ("qwen3-30b-a3b", {}),
    "Qwen/Qwen3-Next-80B-A3B-Instruct": ("qwen3-next-80b-a3b", {}),
    "deepseek-ai/DeepSeek-R1": ("deepseek-r1", {"weights": "fp8-block"}),
    "openai/gpt-oss-120b": ("gpt-oss-120b", {}),      # MXFP4 experts as shipped: the preset's stored format
    # Qwen3-30B-A3B-Instruct-2507 is the July 2025 re-release of Qwen3-30B-A3B: same
    # Qwen3MoeForCausalLM shape (48 layers, 32 q / 4 kv heads, 128 experts of 768, top-8;
    # its log's MoE lookup E=128,N=192 at tp=4); only the context differs (262144 vs 40960)
    "Qwen/Qwen3-30B-A3B-Instruct-2507": ("qwen3-30b-a3b", {}),
    "Qwen/Qwen3-32B": ("qwen3-32b", {}),                               # the preset's own repo
}
# GPUs as the logs name them -> catalog rows (the logs' A100/H100 variant is not stated;
# the 80/40 GB SXM rows are taken, whose memory equals the PCIe cards')
LOG_GPUS = {"RTX-PRO-6000-SERVER": "RTX-PRO-6000-SERVER", "RTX-3090": "RTX-3090", "RTX-4090": "RTX-4090", "L40S": "L40S", "L4": "L4",
            "A100 80GB": "A100-SXM-80GB", "A100 40GB": "A100-SXM-40GB", "H100": "H100-SXM-80GB",
            "H200": "H200-SXM-141GB",
            "GH200": "GH200-96GB",                      # the only GH200 row (96 GB)
            # "A10 (" with the parenthesis so that the A100 names above are not caught
            # by the prefix match; A10 and A10G share 23,028 MiB visible in gpus.toml
            "A10 (": "A10"}
# Logs that print no exact version: a release of the engine, log format and date they
# show (each log's version_source); only the era of budget rules matters (runtime.toml).
UNDATED = {
    "rtx3090-llama31-8b-20k": "0.6.4",           # V0 one-line 'Memory profiling results' format, late 2024
    "rtx3090-llama31-8b-29k": "0.6.4",
    "rtx4090x2-r1-distill-qwen14b-rt": "0.7.2",  # V0 log format, issue dated 2025-02-11
    "l40s-llama31-8b-32k-rt": "0.8.4",           # V1, April 2025
    "h100-x4-qwen3-235b-fp8-tp4-rt": "0.9.2",    # V1, issue dated 2025-07-22
}


@cache
def vllm_logs() -> tuple[dict[str, Any], ...]:
    text = resources.files("rigsize.data").joinpath("validation", "vllm_startup_logs.toml").read_text()
    return tuple(tomllib.loads(text)["log"])


def _gpu(log: dict[str, Any]) -> str | None:
    for prefix, name in LOG_GPUS.items():
        if str(log["gpu"]).startswith(prefix):
            return name
    return None


def _version(log: dict[str, Any]) -> str:
    v = str(log["vllm_version"])
    if v[:1].isdigit():
        return v.split("+")[0]
    return UNDATED.get(str(log["id"]), "")


def _given(value: Any) -> Any:
    """A flag value the log states (not 'default'/'unknown')."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, bool):
        return value
    return None


def log_case(log: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(preset, estimate options) reproducing a log's start-up, or None when rigsize
    cannot express it (model or GPU outside the catalogs, version unknown)."""
    model = LOG_MODELS.get(str(log["model"]))
    gpu = _gpu(log)
    version = _version(log)
    if not log.get("usable") or model is None or gpu is None or not version:
        return None
    preset, extra = model
    opts: dict[str, Any] = {"gpu": gpu, "tp": int(log["tp"]), "engine_version": version, "output": 1, **extra}
    if isinstance(log.get("pp"), int):
        opts["pp"] = log["pp"]
    for key in ("gpu_memory_utilization", "max_model_len", "max_num_batched_tokens", "max_num_seqs"):
        if _given(log.get(key)) is not None:
            opts[key] = log[key]
    if "--enable-expert-parallel" in str(log.get("excerpt", "")):   # vLLM: every tp rank an expert rank
        opts["ep"] = int(log["tp"])
    if log.get("enforce_eager") is True:
        opts["enforce_eager"] = True
    if log.get("sampler") in ("sort", "flashinfer", "triton"):   # what the log printed it used
        opts["sampler"] = log["sampler"]
    opts["prompt"] = min(1024, int(opts.get("max_model_len", 2048)) - 1)
    return preset, opts


def _printed_tokens(printed: dict[str, Any]) -> int | None:
    if "kv_cache_tokens" in printed:
        return int(printed["kv_cache_tokens"])
    if "gpu_blocks" in printed:
        return int(printed["gpu_blocks"]) * 16      # vLLM's default block size (runtime.toml)
    return None


def vllm_startup_rows() -> list[Row]:
    from rigsize.errors import RigsizeError
    from rigsize.planning.estimate import estimate

    rows = []
    for log in vllm_logs():
        case = log_case(log)
        if case is None:
            continue
        preset, opts = case
        try:
            r = estimate(preset, **opts)
        except RigsizeError:
            continue
        m = r.memory
        printed = log["printed"]
        tokens = _printed_tokens(printed)
        if tokens and m.kv_cache_tokens is not None:
            rows.append(Row("vllm start-up logs", log["id"], "kv_cache_tokens", "published", tokens,
                            m.kv_cache_tokens))
        conc = printed.get("max_concurrency")
        if conc and m.max_concurrency_at_max_model_len is not None:
            rows.append(Row("vllm start-up logs", log["id"], "max_concurrency", "published", float(conc),
                            m.max_concurrency_at_max_model_len))
    return rows


# SGLang start-up logs (data/validation/sglang_startup_logs.toml): the log's model -> the preset of the same
# shapes, and the log's GPU -> the catalog row, for the logs its SPLIT calls expressible.
SGLANG_LOG_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    # DeepSeek-R1-Distill-Qwen-7B is fine-tuned from Qwen2.5-Math-7B (its model card), Qwen2.5-7B's shapes
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": ("qwen2.5-7b", {}),
    # QwQ-32B: Qwen2ForCausalLM of Qwen2.5-32B's shapes (64 layers, 40 q / 8 kv heads, 5120 wide; its config)
    "Qwen/QwQ-32B": ("qwen2.5-32b", {}),
    "Qwen/Qwen3-235B-A22B-FP8": ("qwen3-235b-a22b", {"weights": "fp8-block"}),
    "Qwen/Qwen3-30B-A3B-FP8": ("qwen3-30b-a3b", {"weights": "fp8-block"}),
}
SGLANG_LOG_GPUS = {"RTX-3090": "RTX-3090", "L4": "L4", "H100-SXM-80GB": "H100-SXM-80GB",
                   "H100 80GB (SXM or PCIe not stated)": "H100-SXM-80GB"}
SGLANG_FIT_LOGS = ("rtx3090-r1-distill-qwen7b", "l4x4-qwq32b-tp4", "h100-qwen3-30b-a3b-fp8-tp1")


@cache
def sglang_logs() -> tuple[dict[str, Any], ...]:
    text = resources.files("rigsize.data").joinpath("validation", "sglang_startup_logs.toml").read_text()
    return tuple(tomllib.loads(text)["log"])


def sglang_log_case(log: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(preset, estimate options) reproducing an SGLang log's start-up, or None when it is not expressible
    (the file's SPLIT: GPU, model, and a fraction printed or given)."""
    model, gpu = SGLANG_LOG_MODELS.get(str(log["model"])), SGLANG_LOG_GPUS.get(str(log["gpu"]))
    fraction = log.get("mem_fraction_static")
    if model is None or gpu is None or not isinstance(fraction, float) or int(log.get("dp", 1)) != 1:
        return None
    preset, extra = model
    opts: dict[str, Any] = {"gpu": gpu, "tp": int(log["tp"]), "pp": int(log.get("pp", 1)), "engine": "sglang",
                            "mem_fraction_static": fraction, "prompt": 1024, "output": 1, **extra}
    if int(log.get("ep", 1)) > 1:
        opts["ep"] = int(log["ep"])
    if log.get("kv_cache_dtype") not in ("auto", None):
        opts["kv_dtype"] = "fp8" if str(log["kv_cache_dtype"]).startswith("fp8") else str(log["kv_cache_dtype"])
    return preset, opts


def sglang_startup_rows() -> list[Row]:
    """rigsize's ``kv_cache_tokens`` under ``--engine sglang`` against the ``#tokens`` SGLang printed."""
    from rigsize.errors import RigsizeError
    from rigsize.planning.estimate import estimate

    rows = []
    for log in sglang_logs():
        case = sglang_log_case(log)
        tokens = log["printed"].get("kv_tokens")
        if case is None or not tokens:
            continue
        try:
            r = estimate(case[0], **case[1])
        except RigsizeError:
            continue
        if r.memory.kv_cache_tokens is not None:
            split = "fit" if log["id"] in SGLANG_FIT_LOGS else "reserved"
            rows.append(Row("sglang start-up logs", log["id"], "kv_cache_tokens", split, int(tokens),
                            r.memory.kv_cache_tokens))
    return rows


@cache
def transformers_tables() -> dict[str, Any]:
    text = resources.files("rigsize.data").joinpath("validation", "transformers_memory.toml").read_text()
    return tomllib.loads(text)


# The Qwen speed benchmarks' models -> presets of the same architecture, and how each
# source measured memory: Qwen2.5's script sums torch.cuda.max_memory_allocated / 1024^3
# (so its "GB" is GiB); the Qwen2 and Qwen3 pages do not say (rows kept, unit taken as
# printed: GB as GiB, MB as MiB, stated in the row's split).
TRANSFORMERS_MODELS = {
    "Qwen/Qwen2.5-0.5B-Instruct": "qwen2.5-0.5b", "Qwen/Qwen2.5-1.5B-Instruct": "qwen2.5-1.5b",
    "Qwen/Qwen2.5-3B-Instruct": "qwen2.5-3b", "Qwen/Qwen2.5-7B-Instruct": "qwen2.5-7b",
    "Qwen/Qwen2.5-14B-Instruct": "qwen2.5-14b", "Qwen/Qwen2.5-32B-Instruct": "qwen2.5-32b",
    "Qwen/Qwen2-0.5B-Instruct": "qwen2-0.5b", "Qwen/Qwen2-1.5B-Instruct": "qwen2-1.5b",
    "Qwen/Qwen2-7B-Instruct": "qwen2-7b", "Qwen/Qwen3-8B": "qwen3-8b", "Qwen/Qwen3-32B": "qwen3-32b",
    "Qwen/Qwen3-0.6B": "qwen3-0.6b",
}
TRANSFORMERS_GPUS = {"NVIDIA A100 80GB": "A100-SXM-80GB", "NVIDIA H20 96GB": "H20-96GB"}
SOURCE_VERSIONS = {"qwen25_speed_benchmark": "4.46.0", "qwen2_speed_benchmark": "4.38.2",
                   "qwen3_speed_benchmark": "4.51.3"}


def transformers_rows() -> list[Row]:
    from rigsize.errors import RigsizeError
    from rigsize.planning.estimate import estimate
    from rigsize.units import GiB, MiB

    rows = []
    for r in transformers_tables()["row"]:
        preset = TRANSFORMERS_MODELS.get(r["model"])
        gpu = TRANSFORMERS_GPUS.get(r["gpu"])
        if preset is None or gpu is None or r["weights"] != "bf16" or int(r.get("gpu_count", 1)) != 1:
            continue
        version = SOURCE_VERSIONS[r["source_id"]]
        prompt, output = int(r["prompt_tokens"]), int(r["output_tokens"])
        try:
            e = estimate(preset, gpu=gpu, engine="transformers", engine_version=version, prompt=prompt,
                         output=output, batch=int(r["batch"]), max_model_len=prompt + output)
        except RigsizeError:
            continue
        p = e.memory.per_gpu
        predicted = p.weights + p.kv_cache + p.activations        # max_memory_allocated leaves out the context
        unit = GiB if r["memory_unit"] == "GB" else MiB
        split = "published (GiB)" if r["source_id"] == "qwen25_speed_benchmark" else "published (unit unstated)"
        rows.append(Row(f"transformers {r['source_id']}", f"{preset}/{prompt}", "peak_memory", split,
                        float(r["memory_value"]) * unit, float(predicted)))
    return rows
