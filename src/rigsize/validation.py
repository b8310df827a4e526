"""Validation against measurements nobody here produced.

Sources (packaged under ``data/validation``, each with its attribution):

- ``serving_silicon_sample.csv``: measured serving runs (TTFT, TPOT) from NVIDIA's
  AIConfigurator (``aiconfigurator_core/systems/silicon_sample.csv``, Apache-2.0), see
  its README.  Split by ``bench/split_serving.py``: every Qwen3-235B-A22B row is
  reserved (the held-out model); the other deployments alternate fit / reserved inside
  each class (engine x GPU family x dense or MoE).  Efficiencies are fitted per engine
  and GPU family on ``fit`` rows only.
- ``training_runs.toml``: published training runs with their layouts and conventions.

``rigsize validate`` prints case, measured, predicted and error per source, with the
median and worst error, fitted and reserved rows apart.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from rigsize.error_bands import class_key
from rigsize.formats import resolve_kv_format, resolve_weight_format
from rigsize.hardware import resolve_gpu
from rigsize.layout import Layout
from rigsize.models import resolve_model
from rigsize.roofline import Efficiency, efficiency
from rigsize.runtime import engine_for
from rigsize.serving import ServingResult, serve

HELD_OUT_MODELS = ("qwen3-235b-a22b",)   # never fitted, in any class (bench/split_serving.py)
# InferenceMAX's client sends --num-prompts $((CONC * 10)) at --max-concurrency $CONC
# (InferenceMAX README, "Benchmark Client Configuration"): ten waves of requests.
BENCH_WAVES = 10


@dataclass(frozen=True)
class ServingCase:
    case: str
    preset: str
    gpu: str
    backend: str
    weights: str
    kv_dtype: str
    tp: int
    pp: int
    ep: int
    dp: int
    concurrency: int
    isl: int
    osl: int
    ttft_s: float
    tpot_s: float
    split: str          # "fit" | "reserved" | "spec-decode?" (possibly MTP: compared with neither)
    cls: str = ""       # error_bands.class_key: engine|gpu family|dense-or-moe


@cache
def serving_cases() -> tuple[ServingCase, ...]:
    text = resources.files("rigsize.data").joinpath("validation", "serving_silicon_sample.csv").read_text()
    out = []
    for i, r in enumerate(csv.DictReader(text.splitlines())):
        split = r["split"]
        if "possibly MTP" in r.get("spec_decode", ""):
            split = "spec-decode?"     # likely measured with MTP speculative decoding: not comparable
        out.append(ServingCase(
            case=f"{r['preset']}/{r['gpu']}/{r['backend']}/tp{r['tp']}ep{r['ep']}dp{r['dp']}/c{r['concurrency']}/"
                 f"{r['isl']}x{r['osl']}/{r['weights']}#{i}",
            preset=r["preset"], gpu=r["gpu"], backend=r["backend"], weights=r["weights"], kv_dtype=r["kv_dtype"],
            tp=int(r["tp"]), pp=int(r["pp"]), ep=int(r["ep"]), dp=int(r["dp"]), concurrency=int(r["concurrency"]),
            isl=int(r["isl"]), osl=int(r["osl"]), ttft_s=float(r["ttft_ms"]) / 1e3, tpot_s=float(r["tpot_ms"]) / 1e3,
            split=split, cls=class_key(r["backend"], resolve_gpu(r["gpu"]).architecture, _is_moe(r["preset"]))))
    return tuple(out)


@cache
def _is_moe(preset: str) -> bool:
    return resolve_model(preset).arch.num_experts > 0


@cache
def _capacity(c: ServingCase) -> int | None:
    """Sequences of the case's length that the KV cache holds (rigsize's memory model)."""
    from rigsize.errors import RigsizeError
    from rigsize.sizing import estimate

    try:
        r = estimate(c.preset, gpu=c.gpu, tp=c.tp, pp=c.pp, ep=c.ep, weights=c.weights, kv_dtype=c.kv_dtype,
                     prompt=c.isl, output=c.osl)
    except RigsizeError:      # a layout rigsize considers invalid; the engine ran it, so no KV cap
        return None
    return r.memory.max_concurrency


def predict_serving(c: ServingCase, eff: Efficiency | None = None) -> ServingResult:
    gpu = resolve_gpu(c.gpu)
    spec = resolve_model(c.preset)
    if eff is None:
        eff, _ = efficiency("inference", gpu, engine=c.backend)
    layout = Layout(tp=c.tp, pp=c.pp, ep=c.ep, dp=c.dp)
    return serve(spec.arch, layout, gpu, resolve_weight_format(c.weights), resolve_kv_format(c.kv_dtype), eff,
                 engine_for(gpu), c.concurrency, c.isl, c.osl, kv_capacity=_capacity(c), waves=BENCH_WAVES)


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


def serving_rows(cases: tuple[ServingCase, ...] | None = None) -> list[Row]:
    rows = []
    for c in cases or serving_cases():
        p = predict_serving(c)
        src = "aiconfigurator silicon_sample"
        rows.append(Row(src, c.case, "ttft_s", c.split, c.ttft_s, p.ttft_seconds, c.cls, c.preset))
        rows.append(Row(src, c.case, "tpot_s", c.split, c.tpot_s, p.tpot_seconds, c.cls, c.preset))
    return rows


def summarize(rows: list[Row]) -> list[dict[str, Any]]:
    """Median and worst absolute error per (source, metric, split)."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r.source, r.metric, r.split), []).append(abs(r.error))
    return [{"source": s, "metric": m, "split": sp, "n": len(v), "median_abs_error": statistics.median(v),
             "worst_abs_error": max(v)} for (s, m, sp), v in sorted(groups.items())]


# Targets on reserved rows of a class with at least error_bands.MIN_ROWS rows (issue 11/12).
TARGETS = {"tpot_s": 0.10, "ttft_s": 0.20, "output_tokens_per_s": 0.15, "step_s": 0.10, "mfu": 0.10,
           "tflops_per_gpu": 0.10, "tokens_per_s_per_gpu": 0.10}


def summarize_classes(rows: list[Row]) -> list[dict[str, Any]]:
    """Median and p90 absolute error per (class, metric, split), and per held-out model:
    the figures targets and error bands are read from, never pooled across classes."""
    from rigsize.error_bands import MIN_ROWS, summarize as band

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
        target = TARGETS.get(metric) if split == "reserved" and b.n >= MIN_ROWS[kind] else None
        out.append({"class": cls, "metric": metric, "split": split, "n": b.n, "median_abs_error": b.median_abs,
                    "p90_abs_error": b.p90_abs, "target": target,
                    "meets_target": None if target is None else b.median_abs <= target})
    return out


def log_error(pred: float, measured: float) -> float:
    return abs(math.log(pred / measured))


# ----------------------------------------------------------------------------------
# Training runs
# ----------------------------------------------------------------------------------

@cache
def training_runs() -> tuple[dict[str, Any], ...]:
    import tomllib

    text = resources.files("rigsize.data").joinpath("validation", "training_runs.toml").read_text()
    return tuple(tomllib.loads(text)["run"])


def _eq3_flops(run: dict[str, Any], arch: Any) -> float:
    """Narayanan et al. 2021 eq. 3: 96 B s l h^2 (1 + s/(6h) + V/(16 l h)) per iteration,
    the convention of their (and MT-NLG's, BLOOM's) reported TFLOP/s."""
    b, s, layer, h, v = run["global_batch"], run["seq"], arch.num_hidden_layers, arch.hidden_size, arch.vocab_size
    return 96 * b * s * layer * h * h * (1 + s / (6 * h) + v / (16 * layer * h))


# Fitting subset for the training efficiency (documented in data/efficiency.toml): the
# Narayanan et al. 2021 Table 1 rows; every other known-layout run is out of sample.
TRAINING_FIT_PREFIX = "narayanan2021-t1-"


def training_case(run: dict[str, Any]) -> tuple[Any, Any, Any, Any, str] | None:
    """(arch, workload, layout, gpu, network) of a known-layout run, or None if rigsize
    cannot express it (unknown fields)."""
    from rigsize.architecture import build_architecture
    from rigsize.layout import Layout, Workload
    from rigsize.models import preset_config

    needed = ("tp", "pp", "dp", "micro_batch", "global_batch", "seq", "gpu")
    if run.get("class") != "known_layout" or any(not isinstance(run.get(k), (int, str)) or run.get(k) == "unknown"
                                                  for k in needed):
        return None
    cfg = dict(run["config"]) if "config" in run else preset_config(run["preset"])
    arch = build_architecture(cfg)
    recompute = run.get("recompute") if run.get("recompute") in ("none", "selective", "full") else "full"
    zero = run.get("zero") if isinstance(run.get("zero"), int) else 0
    framework = "deepspeed" if zero >= 2 else "megatron"
    ep = run.get("ep") if isinstance(run.get("ep"), int) else 1
    cp = run.get("cp") if isinstance(run.get("cp"), int) else 1
    layout = Layout(tp=run["tp"], pp=run["pp"], dp=run["dp"], cp=cp, ep=ep, sp=bool(run.get("sp") is True),
                    zero=zero, recompute=recompute, pp_first_layers=run.get("pp_first_layers"),
                    pp_last_layers=run.get("pp_last_layers"))
    workload = Workload(task="pretrain", batch=run["micro_batch"], seq=run["seq"], global_batch=run["global_batch"],
                        framework=framework)  # type: ignore[arg-type]
    network = run.get("network") if run.get("network") in _networks() else "ib-hdr-200x8"
    return arch, workload, layout, resolve_gpu(run["gpu"]), network


def _networks() -> dict[str, Any]:
    from rigsize.training_speed import networks

    return networks()


# Whole runs publish GPU-hours but not their layouts: rigsize predicts them with its own
# least-model-parallel Megatron layout on this many GPUs, a 4M-token batch (Llama 2 paper,
# Table 1) and 4096-token sequences where the source does not say.
WHOLE_RUN_GPUS, WHOLE_RUN_BATCH_TOKENS, WHOLE_RUN_SEQ = 1024, 4 * 2**20, 4096


def whole_run_rows() -> list[Row]:
    from rigsize.sizing import estimate

    rows = []
    for run in training_runs():
        if run.get("class") != "whole_run" or not run.get("preset") or not isinstance(run.get("gpu_hours"), float):
            continue
        seq = run["seq"] if isinstance(run.get("seq"), int) else WHOLE_RUN_SEQ
        gpus = run["gpus"] if isinstance(run.get("gpus"), int) else WHOLE_RUN_GPUS
        batch = max(gpus, WHOLE_RUN_BATCH_TOKENS // seq // gpus * gpus)
        r = estimate(run["preset"], task="pretrain", gpu=run["gpu"], gpus=gpus, seq=seq, global_batch=batch,
                     recompute="selective", train_tokens=run["train_tokens"])
        if r.performance is None or r.performance.gpu_hours is None:
            continue
        rows.append(Row(run["case"].split("-")[0], run["case"], "gpu_hours", "whole-run (layout unknown)",
                        float(run["gpu_hours"]), r.performance.gpu_hours))
    return rows


def training_rows(eff: Any = None) -> list[Row]:
    from rigsize.training_speed import training_speed

    rows = []
    for run in training_runs():
        case = training_case(run)
        if case is None:
            continue
        arch, workload, layout, gpu, network = case
        vpp = run.get("vpp") if isinstance(run.get("vpp"), int) else 1
        precision = "fp8" if str(run.get("precision", "")).startswith("fp8") else "bf16"
        speed = training_speed(arch, workload, layout, gpu, gpus_per_node=int(run.get("gpus_per_node", 8)),
                               network=network, vpp=vpp, eff=eff, precision=precision)
        split = "fit" if run["case"].startswith(TRAINING_FIT_PREFIX) else "reserved"
        src = run["case"].split("-")[0]
        cls = class_key(workload.framework, gpu.architecture, arch.num_experts > 0)
        if isinstance(run.get("step_seconds"), (int, float)):
            rows.append(Row(src, run["case"], "step_s", split, float(run["step_seconds"]), speed.step_seconds, cls))
        elif isinstance(run.get("tflops_per_gpu"), (int, float)) and "eq3" in str(run.get("flops_convention", "")):
            predicted = _eq3_flops(run, arch) / (speed.step_seconds * layout.gpus) / 1e12
            rows.append(Row(src, run["case"], "tflops_per_gpu", split, float(run["tflops_per_gpu"]), predicted, cls))
        elif isinstance(run.get("mfu"), (int, float)):
            rows.append(Row(src, run["case"], "mfu", split, float(run["mfu"]), speed.mfu, cls))
        elif isinstance(run.get("tflops_per_gpu"), (int, float)):
            predicted = speed.model_flops_per_step / (speed.step_seconds * layout.gpus) / 1e12
            rows.append(Row(src, run["case"], "tflops_per_gpu", split, float(run["tflops_per_gpu"]), predicted, cls))
    return rows


# ----------------------------------------------------------------------------------
# Published maximum-throughput figures (TensorRT-LLM performance overview, MLPerf)
# ----------------------------------------------------------------------------------

MAX_LOAD_CAP = 2048   # sequences: the largest concurrency rigsize tries for "max throughput"


@cache
def published_throughput() -> tuple[dict[str, str], ...]:
    text = resources.files("rigsize.data").joinpath("validation", "published_throughput.csv").read_text()
    return tuple(csv.DictReader(text.splitlines()))


def published_rows() -> list[Row]:
    """Maximum throughput as published (offline, max load) against rigsize's throughput at
    the largest concurrency the KV cache holds.  Only rows that state tp, lengths and
    precision; GPUs without published peaks are skipped."""
    from rigsize.errors import RigsizeError
    from rigsize.sizing import estimate

    rows = []
    for r in published_throughput():
        if not (r["tp"] and r["isl"] and r["osl"] and r["weights"]):
            continue
        args = dict(gpu=r["gpu"], tp=int(r["tp"]), pp=int(r["pp"] or 1), weights=r["weights"],
                    prompt=int(r["isl"]), output=int(r["osl"]), engine=r["backend"] if r["backend"] in
                    ("vllm", "sglang", "trtllm") else "vllm")
        try:
            cap = estimate(r["preset"], **args).memory.max_concurrency
            if not cap:
                continue
            perf = estimate(r["preset"], **args, batch=min(cap, MAX_LOAD_CAP)).performance
        except RigsizeError:
            continue
        if perf is None:
            continue
        replicas = int(r["gpus"] or 1) / (int(r["tp"]) * int(r["pp"] or 1))
        source = "mlperf" if r["source"].startswith("MLPerf") else "trtllm perf-overview"
        rows.append(Row(source, f"{r['preset']}/{r['gpu']}/tp{r['tp']}/{r['isl']}x{r['osl']}/{r['weights']}",
                        "output_tokens_per_s", "published", float(r["tokens_per_s"]),
                        perf.output_tokens_per_second * replicas))
    return rows


# ----------------------------------------------------------------------------------
# Published peak memory of fine-tuning runs (torchtune, Unsloth, torchtitan, LLaMA-Factory)
# ----------------------------------------------------------------------------------

FINETUNE_TARGET = 0.10   # the target: every row with published settings within 10%
GIB = 2**30


@cache
def finetune_memory() -> tuple[dict[str, Any], ...]:
    import tomllib

    text = resources.files("rigsize.data").joinpath("validation", "finetune_memory.toml").read_text()
    return tuple(tomllib.loads(text)["row"])


def _finetune_model(row: dict[str, Any]) -> Any:
    """The row's model; a context beyond max_position_embeddings (Unsloth extends RoPE) is allowed."""
    from types import MappingProxyType

    from rigsize.architecture import build_architecture
    from rigsize.models import ModelSpec, preset_config, presets, resolve_model

    if "config" in row:
        cfg = dict(row["config"])
    elif row["preset"] in presets():
        cfg = preset_config(row["preset"])
    else:
        return resolve_model(row["preset"])          # a bare size ("7B")
    if cfg.get("max_position_embeddings", 0) < row["seq"]:
        cfg["max_position_embeddings"] = row["seq"]
    return ModelSpec(row["case"], "config", row["url"], MappingProxyType(cfg), build_architecture(cfg))


def published_bytes(row: dict[str, Any]) -> float:
    """The printed figure in bytes: GiB; a GPU's "GB" memory size is binary, other GB decimal."""
    binary = row["unit"] == "GiB" or row["measure"] == "gpu_memory_at_max_context"
    return row["published"] * (GIB if binary else 1e9)


def predicted_bytes(row: dict[str, Any]) -> float:
    """rigsize's peak for the row, in the source's terms: torch.cuda statistics leave out the
    CUDA context (it is not allocated through PyTorch's caching allocator).

    A row's ``recipe`` table names framework behaviour of the release the source ran that
    differs from the framework's current defaults (``rigsize.frameworks.Recipe`` fields, e.g.
    transformers < 4.49's ``loss_shift_copy``); the row's notes give the release and source.
    It is applied to the same job ``estimate`` resolves."""
    from dataclasses import replace

    from rigsize.options import parse_options
    from rigsize.sizing import evaluate, resolve_job

    opts = parse_options(dict(task=row["task"], framework=row["framework"], gpu=row["gpu"], gpus=row["gpus"],
                              seq=row["seq"], batch=row["batch"], **row.get("options", {})))
    job, _ = resolve_job(_finetune_model(row), opts, {})
    if row.get("recipe"):
        job = replace(job, workload=replace(job.workload, recipe=replace(job.workload.settings, **row["recipe"])))
    memory = evaluate(job)
    total = memory.per_gpu.total
    if row["measure"].startswith("torch_"):
        total -= memory.details.get("overhead/cuda_context", 0)
    return float(total)


def finetune_rows() -> list[Row]:
    """One row per published figure; split "published" (targets) or "settings unpublished"."""
    rows = []
    for row in finetune_memory():
        split = "published" if row["settings"] == "published" else "settings unpublished"
        rows.append(Row(row["framework"], row["case"], "peak_memory_gib", split, published_bytes(row) / GIB,
                        predicted_bytes(row) / GIB))
    return rows
