"""Serving validation: AIConfigurator's measured runs and published maximum throughputs.

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
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

from rigsize.hardware.gpus import resolve_gpu
from rigsize.memory.runtime import engine_for
from rigsize.model.formats import resolve_kv_format, resolve_weight_format
from rigsize.model.inputs import resolve_model
from rigsize.planning.layout import Layout
from rigsize.speed.error_bands import class_key
from rigsize.speed.roofline import Efficiency, efficiency
from rigsize.speed.serving import ServingResult, serve
from rigsize.validation.common import Row

# InferenceMAX's client sends --num-prompts $((CONC * 10)) at --max-concurrency $CONC
# (InferenceMAX README, "Benchmark Client Configuration"): ten waves of requests.
BENCH_WAVES = 10


def mean_length(nominal: int, range_ratio: float) -> int:
    """Mean request length of a random dataset drawn with ``--random-range-ratio``: InferenceMAX's
    client (kimbochen/bench_serving, later utils/bench_serving/benchmark_serving.py in InferenceX)
    draws each length uniformly from the integers ``int(L * ratio) .. L`` (``sample_random_requests``:
    ``np.random.randint(int(input_len * range_ratio), input_len + 1)``), for inputs and outputs
    alike, and InferenceX passes ``RANDOM_RANGE_RATIO: 0.8`` (.github/workflows/full-sweep-tmpl.yml
    at 9596d23d7, 2025-10-29; benchmark-tmpl.yml later): the mean is ``(int(L * ratio) + L) / 2``, 0.9 L.
    Ratio 0 (a fixed-length client): ``L``."""
    if not range_ratio:
        return nominal
    return round((int(nominal * range_ratio) + nominal) / 2)


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
    version: str = ""   # the engine version AIConfigurator recorded (blank where it did not)
    range_ratio: float = 0.0    # the client's --random-range-ratio (0: fixed lengths)
    max_num_tokens: int | None = None   # the scheduler's token budget as the launch script set it (None: default)
    # the launch script's memory share (None: not set or not read): SGLang --mem-fraction-static, vLLM
    # --gpu-memory-utilization, TensorRT-LLM kv_cache_config.free_gpu_memory_fraction (see _capacity)
    mem_fraction: float | None = None
    recv_interval: int = 1      # SGLang --scheduler-recv-interval as the launch script set it (1: SGLang's default)
    # TensorRT-LLM's admission holds as the launch script set them (0: off, its default): batch_wait_timeout_iters,
    # batch_wait_max_tokens_ratio, attention_dp_config.timeout_iters with enable_balance (speed.serving._hold)
    batch_wait_iters: int = 0
    batch_wait_ratio: float = 0.0
    adp_balance_iters: int = 0

    @property
    def mean_isl(self) -> int:
        return mean_length(self.isl, self.range_ratio)

    @property
    def mean_osl(self) -> int:
        return mean_length(self.osl, self.range_ratio)


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
            split=split, cls=class_key(r["backend"], resolve_gpu(r["gpu"]).architecture, _is_moe(r["preset"])),
            version=r["backend_version"], range_ratio=float(r["random_range_ratio"] or 0),
            max_num_tokens=int(r["max_num_tokens"]) if r["max_num_tokens"] else None,
            mem_fraction=float(r["mem_fraction"]) if r["mem_fraction"] else None,
            recv_interval=int(r["recv_interval"] or 1), batch_wait_iters=int(r["batch_wait_iters"] or 0),
            batch_wait_ratio=float(r["batch_wait_ratio"] or 0), adp_balance_iters=int(r["adp_balance_iters"] or 0)))
    return tuple(out)


@cache
def _is_moe(preset: str) -> bool:
    return resolve_model(preset).arch.num_experts > 0


@cache
def _capacity(c: ServingCase) -> int | None:
    """Sequences of the case's length that the KV cache holds (rigsize's memory model): SGLang runs by SGLang's
    own budget at the recorded version (the newest rules where none is recorded), TensorRT-LLM by its own
    (``free_gpu_memory_fraction`` of the memory the weights and the profiled peak leave), vLLM by vLLM's, each at
    the memory share its launch script set (``mem_fraction``; the engine's default where none was read)."""
    from rigsize.errors import RigsizeError
    from rigsize.planning.estimate import estimate

    engine: dict = ({"engine": "sglang", "engine_version": c.version or None} if c.backend == "sglang" else
                    {"engine": "trtllm"} if c.backend == "trtllm" else {})
    if c.mem_fraction is not None:
        engine[{"sglang": "mem_fraction_static", "vllm": "gpu_memory_utilization",
                "trtllm": "kv_cache_free_gpu_memory_fraction"}[c.backend]] = c.mem_fraction
    try:
        r = estimate(c.preset, gpu=c.gpu, tp=c.tp, pp=c.pp, ep=c.ep, weights=c.weights, kv_dtype=c.kv_dtype,
                     prompt=c.mean_isl, output=c.mean_osl, **engine)
    except RigsizeError:      # a layout rigsize considers invalid; the engine ran it, so no KV cap
        return None
    return r.memory.max_concurrency


def predict_serving(c: ServingCase, eff: Efficiency | None = None) -> ServingResult:
    gpu = resolve_gpu(c.gpu)
    spec = resolve_model(c.preset)
    if eff is None:
        eff, _ = efficiency("inference", gpu, engine=c.backend)
    layout = Layout(tp=c.tp, pp=c.pp, ep=c.ep, dp=c.dp)
    engine = replace(engine_for(gpu), serving=c.backend)      # its scheduler; _capacity sizes its KV cache
    if c.max_num_tokens:        # vLLM --max-num-batched-tokens, TensorRT-LLM --max_num_tokens, SGLang's chunk
        engine = replace(engine, max_num_batched_tokens=c.max_num_tokens)
    engine = replace(engine, recv_interval=c.recv_interval, batch_wait_iters=c.batch_wait_iters,
                     batch_wait_ratio=c.batch_wait_ratio, adp_balance_iters=c.adp_balance_iters)
    return serve(spec.arch, layout, gpu, resolve_weight_format(c.weights), resolve_kv_format(c.kv_dtype), eff,
                 engine, c.concurrency, c.mean_isl, c.mean_osl, kv_capacity=_capacity(c), waves=BENCH_WAVES)


def serving_rows(cases: tuple[ServingCase, ...] | None = None) -> list[Row]:
    rows = []
    for c in cases or serving_cases():
        p = predict_serving(c)
        src = "aiconfigurator silicon_sample"
        rows.append(Row(src, c.case, "ttft_s", c.split, c.ttft_s, p.ttft_seconds, c.cls, c.preset))
        rows.append(Row(src, c.case, "tpot_s", c.split, c.tpot_s, p.tpot_seconds, c.cls, c.preset))
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
    from rigsize.planning.estimate import estimate

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
