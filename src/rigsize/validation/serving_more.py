"""Serving measurements beyond AIConfigurator's Hopper/Blackwell rows (issue 11):
``data/validation/serving_more.csv`` (sources and the pre-chosen fit/reserved split in
``SERVING-MORE-README.md``).

Each row is replayed the way its benchmark released requests:

- ``burst``: ``vllm bench serve`` with ``--request-rate inf`` and no
  ``--max-concurrency``: every prompt at once (``serving.serve_burst``);
- ``max-concurrency``: a closed loop of ``concurrency`` clients sending ``num_prompts``
  requests in all (``serving.serve`` with ``num_prompts / concurrency`` waves);
- ``offline fixed batch`` (vLLM ``benchmark_latency.py``): one batch of ``concurrency``
  prompts run to completion; its latency is one request's end-to-end time.

Rows rigsize cannot replay faithfully are left out with the reason (``skipped()``):
MLPerf rows (per-request lengths of the datasets are not in the logs), tensor
parallelism across nodes, models without a preset, throughput runs whose prompt count
is not stated.  Mapping decisions, each an assumption stated here, not a measurement:

- "NVIDIA A100 80GB" (dennislee22, form factor not stated) is run as A100-SXM-80GB;
- dennislee22's 2-GPU sections that do not state tp ("2 GPU pods host the model in the
  same node", one vLLM server reporting KV memory "in each GPU") are run at tp 2, as
  its Test 1 script (``--tensor-parallel-size 2``);
- the KV cache is the one the row's startup log states ("Available KV cache memory"),
  not rigsize's memory model, so the check is of speed alone;
- output length is what the run generated (``total_output_tokens / num_prompts``: no
  ``--ignore-eos``), the requested one where not printed;
- Oracle's MI300X latency rows ("All eight GPUs were assigned" to one instance) at tp 8.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from rigsize.hardware.gpus import resolve_gpu
from rigsize.memory.runtime import engine_for
from rigsize.model.formats import resolve_kv_format, resolve_weight_format
from rigsize.model.inputs import resolve_model
from rigsize.planning.layout import Layout
from rigsize.speed.error_bands import class_key
from rigsize.speed.roofline import Efficiency, efficiency
from rigsize.speed.serving import ServingResult, serve, serve_burst
from rigsize.units import GiB
from rigsize.validation import Row

GPUS = {"NVIDIA A100 80GB (README intro)": "A100-SXM-80GB", "NVIDIA GeForce RTX 4090 24GB": "RTX-4090",
        "NVIDIA GeForce RTX 4090": "RTX-4090", "NVIDIA L40S": "L40S", "NVIDIA H100-SXM-80GB": "H100-SXM-80GB",
        "NVIDIA H200-SXM-141GB": "H200-SXM-141GB", "NVIDIA H100-PCIe-80GB": "H100-PCIE-80GB",
        "NVIDIA H100-NVL-94GB": "H100-NVL-94GB", "AMD Instinct MI300X 192GB (OCI BM.GPU.MI300X.8)": "MI300X",
        "AMD Instinct MI300X": "MI300X",     # dstackai/benchmarks amd/tgi_vs_vllm (8x MI300X 192 GB)
        # sm1001+ (GPUStack's A100 pages name the 80 GB SXM card; its Qwen3-14B page says "A100 SXM" without the
        # memory, so that one stays unmapped); Database Mart's A40 (one 48 GB variant)
        "NVIDIA A100 SXM 80GB": "A100-SXM-80GB", "Nvidia A40": "A40"}
MODELS = {"Qwen/Qwen2-7B-Instruct": "qwen2-7b", "Qwen/Qwen2.5-32B": "qwen2.5-32b", "Qwen/Qwen2-72B": "qwen2-72b",
          "mistralai/Mistral-7B-Instruct-v0.3": "mistral-7b-v0.3",
          "meta-llama/Llama-3.1-405B (FP8 checkpoint; exact HF repo not stated)": "llama-3.1-405b",
          "openai/gpt-oss-120b": "gpt-oss-120b", "openai/gpt-oss-20b": "gpt-oss-20b", "Qwen/Qwen3-32B": "qwen3-32b",
          # the July 2025 re-release: Qwen3-235B-A22B's shapes (its config), a longer context
          "Qwen/Qwen3-235B-A22B-Instruct-2507": "qwen3-235b-a22b", "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": "qwen3-235b-a22b",
          "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
          # the R1 distills are fine-tunes of Llama-3.1-8B and Qwen2.5-14B (their model cards): the same shapes
          "deepseek-ai/DeepSeek-R1-Distill-Llama-8B": "llama-3.1-8b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": "qwen2.5-14b",
          "Qwen/Qwen2.5-14B-Instruct": "qwen2.5-14b", "Qwen/Qwen2.5-7B-Instruct": "qwen2.5-7b",
          "google/gemma-3-12b-it": "gemma-3-12b",
          # sm1043+: Llama 3.1 model card: "Llama 3.1 is an auto-regressive language model that uses an optimized
          # transformer architecture. The tuned versions use supervised fine-tuning (SFT) and [RLHF]": the base's shapes
          "meta-llama/Llama-3.1-405B-Instruct": "llama-3.1-405b"}
SOURCE = "serving_more"


@dataclass(frozen=True)
class MoreCase:
    row_id: str
    split: str
    cls: str
    mode: str               # "burst" | "closed" | "batch"
    preset: str
    gpu: str
    engine_version: str | None
    weights: str | None
    tp: int
    requests: int           # burst: prompts sent at once; closed: clients; batch: batch size
    waves: float            # closed loop: num_prompts / concurrency
    isl: int
    osl: int
    kv_gib_per_gpu: float | None
    measured: dict[str, float]     # metric -> value, in seconds and tokens/s


def replay_mode(r: dict[str, str]) -> str | None:
    """How a row's load is replayed (burst, closed loop, offline batch), or None where it is not."""
    if r["load_mode"].startswith("burst"):
        return "burst"
    if r["load_mode"].startswith("max-concurrency"):
        return "closed"
    if r["load_mode"].startswith("offline fixed batch"):
        return "batch"
    return None


def skip_reason(r: dict[str, str], models: dict[str, str] | None = None,
                gpus: dict[str, str] | None = None) -> str | None:
    """Why a row (of this file, or of one in its columns with its own name maps) cannot be
    replayed, or None."""
    models, gpus = MODELS if models is None else models, GPUS if gpus is None else gpus
    if r["source_kind"] == "mlperf":
        return "MLPerf dataset: per-request lengths are not in the log"
    if replay_mode(r) is None:
        return f"load mode not replayed: {r['load_mode']}"
    if r["hf_model"] not in models:
        return f"no preset for {r['hf_model']}"
    if r["gpu"] not in gpus:
        return f"GPU {r['gpu']} not mapped"
    if "different nodes" in r["notes"]:
        return "tensor parallelism across nodes (serving speed models one node)"
    if "GPU pods host" in r["notes"] and int(r["gpus"] or 1) > 1:
        # dennislee22/vLLM-benchmarking's Tests 2, 3, 6 and 8: one model over two Kubernetes pods of one GPU each, so
        # NCCL runs between containers, not over the node's NVLink (its 2-GPU runs serve fewer tokens/s
        # than its 1-GPU runs of the same model); the link is not known
        return "tensor parallelism across Kubernetes pods (the link between them is not the GPU fabric)"
    return None


@cache
def _rows() -> tuple[dict[str, str], ...]:
    text = resources.files("rigsize.data").joinpath("validation", "serving_more.csv").read_text()
    return tuple(csv.DictReader(text.splitlines()))


def skipped() -> list[tuple[str, str]]:
    return [(r["row_id"], why) for r in _rows() if (why := skip_reason(r))]


@cache
def more_cases() -> tuple[MoreCase, ...]:
    out = []
    for r in _rows():
        if skip_reason(r):
            continue
        mode = replay_mode(r)
        gpus = int(r["gpus"])
        tp = int(r["tp"]) if r["tp"] else gpus      # the module docstring: untold 2-GPU sections at tp 2
        prompts = int(r["num_prompts"]) if r["num_prompts"] else 0
        osl = int(r["osl"])
        if prompts and r["total_output_tokens"]:
            osl = max(1, round(int(r["total_output_tokens"]) / prompts))
        kv = re.search(r"Available KV cache memory[^:]*: ([\d.]+) GiB", r["notes"])
        measured = {}
        for metric, column, scale in (("ttft_s", "ttft_mean_ms", 1e-3), ("tpot_s", "tpot_mean_ms", 1e-3),
                                      ("output_tokens_per_s", "output_tokens_per_s", 1.0),
                                      ("latency_s", "latency_s", 1.0)):
            if r[column]:
                measured[metric] = float(r[column]) * scale
        requests = prompts if mode == "burst" else int(r["concurrency"])
        gpu = GPUS[r["gpu"]]
        preset = MODELS[r["hf_model"]]
        version = re.match(r"[\d.]+", r["engine_version"]) if r["engine_version"] else None
        out.append(MoreCase(
            row_id=r["row_id"], split=r["split"],
            cls=class_key(r["engine"], resolve_gpu(gpu).architecture, r["model_class"] == "moe"),
            mode=mode, preset=preset, gpu=gpu, engine_version=version.group(0).rstrip(".") if version else None,
            weights="fp8" if r["weights"].startswith("fp8") else None, tp=tp, requests=requests,
            waves=prompts / requests if mode == "closed" and prompts else 1.0, isl=int(r["isl"]), osl=osl,
            kv_gib_per_gpu=float(kv.group(1)) if kv else None, measured=measured))
    return tuple(out)


def predict_more(c: MoreCase, eff: Efficiency | None = None) -> ServingResult:
    from rigsize.memory.per_gpu import kv_bytes_per_token_on_rank
    from rigsize.model.inputs import stored_weight_format

    gpu = resolve_gpu(c.gpu)
    spec = resolve_model(c.preset)
    if eff is None:
        eff, _ = efficiency("inference", gpu, engine="vllm")
    layout = Layout(tp=c.tp)
    fmt = resolve_weight_format(c.weights) if c.weights else stored_weight_format(spec)[0]
    kv = resolve_kv_format("bf16")     # kv_cache_dtype=auto on bf16 models; not stated (Oracle): vLLM's auto
    opts = {"engine_version": c.engine_version} if c.engine_version else {}
    engine = engine_for(gpu, max_position_embeddings=spec.arch.max_position_embeddings,
                        mla=spec.arch.attention == "mla", opts=opts)
    capacity = None
    if c.kv_gib_per_gpu:
        per_token = sum(kv_bytes_per_token_on_rank(spec.arch, layout, kv, i) for i in range(spec.arch.num_hidden_layers))
        capacity = max(1, math.floor(c.kv_gib_per_gpu * GiB / per_token / (c.isl + c.osl)))
    if c.mode == "burst":
        return serve_burst(spec.arch, layout, gpu, fmt, kv, eff, engine, c.requests, c.isl, c.osl, capacity)
    waves = c.waves if c.mode == "closed" else 1.0
    return serve(spec.arch, layout, gpu, fmt, kv, eff, engine, c.requests, c.isl, c.osl, kv_capacity=capacity,
                 waves=waves)


def more_rows() -> list[Row]:
    rows = []
    for c in more_cases():
        p = predict_more(c)
        predicted = {"ttft_s": p.ttft_seconds, "tpot_s": p.tpot_seconds,
                     "output_tokens_per_s": p.output_tokens_per_second, "latency_s": p.e2e_seconds}
        for metric, value in c.measured.items():
            rows.append(Row(SOURCE, f"{c.row_id}/{c.preset}/{c.gpu}/tp{c.tp}/{c.mode}{c.requests}/{c.isl}x{c.osl}",
                            metric, c.split, value, predicted[metric], c.cls, c.preset))
    return rows
