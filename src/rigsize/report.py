"""Result types: what ``rigsize.estimate`` returns and ``--json`` prints.

Pydantic models at the edge: the same object feeds the terminal tables, the JSON
output and (later) the HTTP API, and its JSON Schema is published in
``schema/estimate.schema.json`` (regenerate with ``python -m rigsize.report``).
All sizes are integer bytes or plain counts.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from rigsize.hardware.server_report import ServerReport, SoftwareItem

SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelReport(_Frozen):
    name: str = Field(description="Preset name, file stem, Hub id or bare size as typed")
    source: Literal["preset", "config", "folder", "gguf", "hub", "size"]
    origin: str = Field(description="Where the config came from: citation, path or Hub URL")
    approximate: bool = Field(description="True when the architecture was synthesized from a bare size")
    model_type: str
    params: int = Field(description="Parameters as transformers builds the model (buffers excluded, tied once)")
    active_params: int = Field(description="Parameters used per token (routed experts at top-k)")
    stored_params: int | None = Field(description="Parameters stored in the checkpoint; null without one")
    stored_bytes: int | None = Field(description="Bytes of all tensors in the checkpoint; null without one")
    kv_bytes_per_token: int = Field(description="K and V (or MLA latent) for all layers at kv_dtype, no window, no split")
    kv_dtype: str
    weight_bytes: int = Field(description="Weights at weight_format, scales and high-precision tensors included")
    weight_format: str
    breakdown: dict[str, int] = Field(description="Parameters by component; sums to params")
    num_hidden_layers: int
    hidden_size: int
    max_position_embeddings: int | None
    config: dict[str, Any] | None = Field(None, description="The synthesized config (bare sizes only)")
    state_bytes_per_sequence: int = Field(0, description="Recurrent (Mamba) state of one sequence at the dtypes "
                                          "transformers' cache keeps: conv state in the model dtype, SSM state "
                                          "in fp32; 0 for attention-only models")
    params_mtp: int = Field(0, description="Multi-token-prediction / draft layers, outside params (0 where none "
                                           "are laid out)")
    params_vision: int = Field(0, description="Vision tower plus projector, inside params (0 for text-only models)")
    layer_types: dict[str, int] = Field(default_factory=dict, description="Layers by Hugging Face layer_types "
                                        "value (full_attention, sliding_attention, chunked_attention, "
                                        "linear_attention...), plus moe_mlp and dense_mlp counts")
    architectures: list[str] = Field(default_factory=list, description="The config's architectures (the model "
                                     "classes an engine picks by, e.g. Qwen2ForCausalLM); empty where it names none")


class HardwareReport(_Frozen):
    gpu: str
    gpus: int
    nodes: int
    gpus_per_node: int
    gpu_memory_bytes: int = Field(description="Nameplate memory of one GPU")
    gpu_memory_bytes_visible: int = Field(description="Memory the runtime exposes (nameplate where unmeasured)")


class ParallelReport(_Frozen):
    tp: int
    pp: int
    dp: int
    ep: int
    cp: int
    sp: bool
    zero: int
    offload: Literal["none", "optimizer", "params"]
    recompute: Literal["none", "selective", "full"]
    micro_batch: int | None = Field(description="Sequences per micro-batch (training)")
    global_batch: int | None = Field(description="Sequences per optimizer step (training)")


class PerGpuReport(_Frozen):
    """The busiest GPU's memory; the parts sum to total."""

    weights: int
    kv_cache: int
    activations: int
    gradients: int
    optimizer: int
    overhead: int
    recurrent_state: int = Field(0, description="Recurrent (Mamba) state of the rank's sequences at the engine's "
                                 "dtype (vLLM: the model dtype for conv and SSM state); 0 without recurrent layers")
    encoder_cache: int = Field(0, description="vLLM: the image embeddings its memory profiling holds for a "
                               "vision-language model (encoder budget / tokens per image items, model dtype); 0 for "
                               "text-only models and --images-per-request 0")
    total: int


class StageMemory(_Frozen):
    """One pipeline stage's GPU: which decoder layers it holds and its memory."""

    stage: int
    role: Literal["only", "first", "middle", "last"] = Field(
        description="first: embedding; last: final norm, lm_head, logits and loss; middle: neither")
    first_layer: int
    num_layers: int
    per_gpu: PerGpuReport


class Suggestion(_Frozen):
    change: dict[str, Any] = Field(description="Options to change, as estimate keys")
    description: str
    total_bytes: int = Field(description="Busiest GPU's total after the change")
    fits: bool


class MemoryReport(_Frozen):
    per_gpu: PerGpuReport
    usable_bytes: int = Field(description="Inference: visible x gpu_memory_utilization (SGLang: mem_fraction_static "
                              "x the memory free before the weights load); training: visible")
    fits: bool
    headroom_bytes: int = Field(description="usable - total; negative when it does not fit (where the parts fit "
                                "but vLLM would refuse to start: minus the KV bytes one --max-model-len request "
                                "lacks)")
    max_concurrency: int | None = Field(description="Inference: sequences of the requested length that fit")
    busiest_stage: int = Field(description="Pipeline stage of the busiest GPU")
    per_stage: list[StageMemory] = Field(default_factory=list, description="Every pipeline stage's busiest GPU")
    kv_cache_tokens: int | None = Field(None, description="Inference: tokens the KV cache holds per replica, as "
                                        "vLLM logs 'GPU KV cache size' (blocks x block size; smallest stage)")
    max_model_len: int | None = Field(None, description="Inference: the engine's context limit applied")
    max_concurrency_at_max_model_len: float | None = Field(
        None, description="Inference: vLLM's 'Maximum concurrency for max_model_len tokens per request' (per replica)")
    max_context_single: int | None = Field(
        None, description="Inference: the longest context one request can have (vLLM's estimate_max_model_len)")
    max_context_at_concurrency: int | None = Field(
        None, description="Inference: the longest context at which --batch sequences fit at once")
    kv_bytes_per_sequence: int = Field(description="KV cache of one sequence on the busiest GPU")
    details: dict[str, int] = Field(description="Sub-parts: overhead terms, activation terms, gathered weights")
    suggestions: list[Suggestion]


class Bound(_Frozen):
    prefill: str = Field(description="compute | memory | communication | overhead")
    decode: str


class ErrorBand(_Frozen):
    """How far off this kind of figure has been on published runs rigsize was not fitted on."""

    median_abs: float = Field(description="Median |predicted / measured - 1| over the class's reserved runs")
    p90_abs: float = Field(description="90th percentile of the same")
    n: int = Field(description="Reserved runs in the class")
    class_: str = Field(alias="class", description="engine-or-framework|gpu family|dense-or-moe")

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


ERROR_BAND_DOC = ("Per figure: the error on reserved published runs of the same class (engine or framework, GPU "
                  "family, dense or MoE); null where fewer than 20 (serving) or 5 (training) such runs exist")


class VisionEncoder(_Frozen):
    """The vision tower's and projector's work on one request's images, part of its TTFT."""

    images: int = Field(description="Images per request")
    patches_per_image: int = Field(description="Patches the tower embeds per image, every tile, before any merge")
    tokens_per_image: int = Field(description="Embeddings the projector hands the text model per image")
    flops_per_request: float = Field(description="Tower and projector FLOPs for the request's images (all GPUs): "
                                     "2 per multiply-accumulate of their matrices plus the tower's own attention")
    attention_flops_per_request: float = Field(description="Of flops_per_request, the tower's QK^T and PV")
    weight_bytes_per_gpu: int = Field(description="Tower and projector bytes one GPU reads per request")
    seconds: float = Field(description="Part of ttft_seconds: the request's images through the tower on its GPUs "
                                       "(the prefill roofline and efficiencies)")
    bound: str = Field(description="compute | memory | communication | overhead")


class Speculative(_Frozen):
    """Speculative decoding with the model's own MTP layers (--speculative mtp)."""

    method: str = Field(description="mtp: the checkpoint's multi-token-prediction layers draft (vLLM method 'mtp')")
    num_speculative_tokens: int = Field(description="Draft tokens proposed and verified per decode step")
    acceptance_rate: float = Field(description="Probability that each draft token is accepted, as applied")
    acceptance_source: str = Field(description="Where acceptance_rate comes from: --acceptance-rate or a "
                                   "published figure (data/efficiency.toml [[speculative.acceptance]])")
    tokens_per_step: float = Field(description="Expected tokens a decode step emits per sequence, "
                                   "1 + a + ... + a^K; TPOT is the step over these, ITL the step itself")


class InferencePerformance(_Frozen):
    """As `vllm bench serve` defines them, for closed-loop concurrency = batch."""

    ttft_seconds: float = Field(description="Mean time to first token")
    tpot_seconds: float = Field(description="Mean over requests of (latency - TTFT) / (output tokens - 1)")
    itl_seconds: float = Field(description="Mean inter-token latency")
    e2e_seconds: float = Field(description="Mean request latency")
    output_tokens_per_second: float
    output_tokens_per_second_per_gpu: float
    requests_per_second: float
    max_concurrency: int | None = Field(description="Sequences of this length the KV cache holds")
    running: int = Field(description="Sequences decoding together (concurrency capped by the KV cache)")
    bound: Bound
    efficiency: dict[str, float] = Field(description="Achievable-fraction assumptions applied (empirical)")
    efficiency_source: str
    error_band: dict[str, ErrorBand | None] = Field(default_factory=dict, description=ERROR_BAND_DOC)
    encoder: VisionEncoder | None = Field(None, description="Vision-language models with --images-per-request: "
                                          "the vision encoder's part of TTFT; null without images")
    speculative: Speculative | None = Field(None, description="With --speculative: the draft and the acceptance "
                                            "applied; null without speculative decoding")


class TrainingBreakdown(_Frozen):
    compute: float
    bubble: float
    tp_comm: float
    dp_comm: float
    pp_comm: float
    ep_comm: float
    cp_comm: float
    moe_overhead: float = Field(0.0, description="MoE layers' fixed time per micro-batch (host syncs of the "
                                "token dispatcher; fitted)")
    offload: float = Field(0.0, description="--offload: PCIe copies not hidden behind backward and the CPU "
                           "optimizer step at host memory bandwidth (a lower bound); activation offload: the "
                           "checkpointed layer inputs' copies that compute does not hide")


class TrainingPerformance(_Frozen):
    step_seconds: float
    tokens_per_second: float
    samples_per_second: float
    mfu: float = Field(description="Model FLOPs (PaLM Appendix B: 6N + 12LHQT per token) / (time x GPUs x dense peak)")
    hfu: float = Field(description="Hardware FLOPs, recomputation included")
    bound: str
    breakdown: TrainingBreakdown = Field(description="Seconds per step by term; sums to step_seconds")
    flops_convention: str
    train_days: float | None = None
    gpu_hours: float | None = Field(None, description="Pure compute at the predicted step time; no failures")
    efficiency: dict[str, float]
    efficiency_source: str
    error_band: dict[str, ErrorBand | None] = Field(default_factory=dict, description=ERROR_BAND_DOC)


class CostInstance(_Frozen):
    provider: str
    name: str
    count: int = Field(description="Instances needed")
    gpus_paid: int = Field(description="GPUs paid for (whole instances)")
    usd_per_hour: float = Field(description="All the instances, at the chosen pricing")
    price_as_of: str = Field(description="The price's publication date, or unknown")
    stale: bool = Field(description="Older than --max-price-age days, or undated")
    region: str = Field("", description="Region the price is for")
    source: str = ""


class OnPremCost(_Frozen):
    usd_per_hour: float | None = Field(description="Per hour of ownership; null without --server-price")
    capex_usd: float | None
    power_watts: float | None = Field(description="GPUs' TDP + host draw, before PUE")
    break_even_utilization: float | None = Field(
        description="Share of hours the servers must be used for owning to cost less than renting")
    amortization_years: float
    pue: float
    usd_per_kwh: float


class CostReport(_Frozen):
    pricing: str
    usd_per_hour: float | None = Field(description="Cheapest way to run the plan at this pricing")
    usd_per_million_output_tokens: float | None = Field(None, description="Inference, at the predicted throughput")
    usd_per_million_train_tokens: float | None = Field(
        None, description="Training: usd_per_hour over the predicted tokens per second (compute time; usd_total "
        "adds the allowance); what plan ranks training by under cheapest, with or without train_tokens")
    usd_total: float | None = Field(None, description="Training: the run, allowance included")
    gpu_hours_with_allowance: float | None = None
    days_with_allowance: float | None = None
    instances: list[CostInstance] = Field(description="Instance types that hold the plan, cheapest first")
    on_prem: OnPremCost


class EstimateReport(_Frozen):
    schema_version: Literal[1] = SCHEMA_VERSION
    model: ModelReport
    task: Literal["inference", "finetune", "lora", "qlora", "pretrain"]
    hardware: HardwareReport
    parallel: ParallelReport
    memory: MemoryReport
    performance: InferencePerformance | TrainingPerformance | None = Field(
        None, description="Speed; null when it cannot be estimated (e.g. the layout does not fit)")
    cost: CostReport | None = Field(None, description="What the plan costs to rent or own; null when it does not fit")
    inputs: dict[str, Any] = Field(description="Options as the user gave them, parsed")
    assumptions: dict[str, Any] = Field(description="Every default applied, so the result can be reproduced")
    warnings: list[str]


class PlanChoices(_Frozen):
    gpu: str
    gpus: int
    weights: str
    kv_dtype: str | None = None
    engine: str | None = None
    framework: str | None = None


class Recommendation(EstimateReport):
    """``estimate``'s full report for the plan, plus what the search chose and why, and the
    whole server (per node) and software stack it needs."""

    choices: PlanChoices
    why: str
    server: ServerReport | None = Field(None, description="One node as a server, each figure with its rule")
    software: list[SoftwareItem] = Field(default_factory=list)


class PlanReport(_Frozen):
    """``rigsize plan --json``: recommendations in ranked order, with the search's counts."""

    schema_version: Literal[1] = SCHEMA_VERSION
    model: str
    task: str
    goals: dict[str, float | int] = Field(description="Goals and limits applied (ttft, tpot in seconds; ...)")
    objective: Literal["cheapest", "fastest", "fewest-gpus", "pareto", "lowest-latency", "cheapest-per-token"]
    assumptions: dict[str, Any]
    candidates_considered: int = Field(ge=0)
    pruned: int = Field(0, ge=0, description="Candidates skipped because a smaller count of the same GPU, formats "
                        "and engine already met every goal (cannot rank first under cheapest / fewest-gpus)")
    rejected: dict[str, int] = Field(description="Candidates rejected, by reason")
    recommendations: list[Recommendation]
    explain: str | None = None


class ScenarioError(_Frozen):
    error: str = Field(description="Why this scenario has no plan (one line)")


class PlanOverview(_Frozen):
    """``rigsize plan MODEL --json`` without ``--task``: every scenario's plan."""

    schema_version: Literal[1] = SCHEMA_VERSION
    model: str
    scenarios: dict[str, PlanReport | ScenarioError] = Field(
        description="low_latency, high_throughput, finetune, lora, qlora, pretrain")


class FitRow(_Frozen):
    model: str = Field(description="Preset name")
    params: int = Field(ge=0)
    weights: str = Field(description="The first format, most bits first, whose every layer fits")
    max_context: int = Field(ge=0, description="The longest context that fits in that format")
    output_tokens_per_second: float | None = Field(None, description="One user; null where a peak is unknown")
    ttft_seconds: float | None = None


class WhatFits(_Frozen):
    """``rigsize plan --have SETUP --json`` without MODEL: which presets fit and how fast."""

    schema_version: Literal[1] = SCHEMA_VERSION
    have: str
    engine: str
    assumptions: dict[str, Any]
    models: list[FitRow] = Field(description="Largest first")
    does_not_fit: list[str] = Field(description="Presets that fit in none of the formats tried")


class PlanOutput(RootModel[PlanReport | PlanOverview | WhatFits]):
    """``rigsize plan --json``: one task's plan, (without --task) the overview, or (without
    MODEL, with --have) which presets fit."""


class LaunchReport(_Frozen):
    """``rigsize launch --json``: the commands and files written for the plan."""

    schema_version: Literal[1] = SCHEMA_VERSION
    tool: str = Field(description="The engine, framework or platform the files target")
    version: str = Field(description="The version the flags were checked against")
    version_from: Literal["default", "--engine-version", "plan"] = Field(
        "default", description="How the version was chosen: the emitter's default (the newest pinned), "
        "--engine-version, or the version the plan was sized for")
    target: Literal["local", "skypilot", "slurm", "k8s"]
    gpu: str | None = Field(None, description="The GPU the plan chose and the files are sized for")
    gpus: int | None = Field(None, description="How many of them")
    launcher: Literal["torchrun", "accelerate", "deepspeed", "srun"] | None = Field(
        None, description="The process launcher a training command starts under (--launcher, else the "
        "framework's own); null for a serving engine")
    commands: list[str]
    files: list[str] = Field(description="Paths written, rigsize-plan.json among them")
    notes: list[str]


class PresetRow(_Frozen):
    name: str
    family: str
    hub_id: str | None
    aliases: list[str]
    params: int
    active_params: int
    source: str
    as_of: str


Unknown = Literal["unknown"]


class _CatalogRow(BaseModel):
    """A catalog row as ``--json`` prints it: the fields every row has are typed; the
    catalogs may carry more (sources, notes, measured extras), which pass through."""

    model_config = ConfigDict(frozen=True, extra="allow")


class GpuRow(_CatalogRow):
    name: str
    aliases: list[str]
    architecture: str
    memory_bytes: int = Field(description="Nameplate memory")
    memory_bytes_visible: int | Unknown = Field(description="Memory the runtime exposes, where measured")
    hbm_bytes_per_second: float | Unknown
    dense_flops: dict[str, float | Unknown] = Field(description="Dense peak FLOP/s per dtype (datasheet)")
    interconnect: dict[str, Any]
    gpus_per_node: int | Unknown
    tdp_watts: float | Unknown
    source: str
    as_of: str = Field(description="Date of the source document (YYYY, YYYY-MM or YYYY-MM-DD), or unknown")
    retrieved: str | None = Field(None, description="Date the source was read (YYYY-MM-DD)")
    source_kind: Literal["primary", "secondary"] = Field(
        "primary", description="secondary: the figures rest on third parties only (no vendor datasheet)")
    skypilot_name: str | None = Field(None, description="AcceleratorName in SkyPilot's catalogs, where listed")


class FormatRow(_CatalogRow):
    name: str
    kind: Literal["weight", "kv"]
    aliases: list[str]
    bits_per_weight: float = Field(description="True bits per weight of a 4096x4096 matrix, scales included")
    element_bits: int
    high_precision_tensors: str
    layout: str
    source: str
    as_of: str


class ModelList(_Frozen):
    """``rigsize models --json``."""

    schema_version: Literal[1] = Field(description="Bumped when a field changes meaning or goes away")
    models: list[PresetRow]


class GpuList(_Frozen):
    """``rigsize gpus --json``."""

    schema_version: Literal[1] = Field(description="Bumped when a field changes meaning or goes away")
    gpus: list[GpuRow]


class InstanceRow(_Frozen):
    provider: str
    name: str
    gpu: str
    gpus: int
    vcpus: int | None
    ram_gib: float | None
    network: str
    regions: list[str]
    price_region: str
    currency: str
    prices_per_hour: dict[str, float] = Field(description="Published prices per instance-hour in `currency`, "
                                              "by pricing (on-demand, spot, 1y, 3y); missing = not published")
    usd_per_hour_on_demand: float | None
    as_of: str = Field(description="The price's publication date, or unknown")
    stale: bool
    source: str


class InstanceList(_Frozen):
    """``rigsize clouds --json``."""

    schema_version: Literal[1] = Field(description="Bumped when a field changes meaning or goes away")
    instances: list[InstanceRow]


class FormatList(_Frozen):
    """``rigsize formats --json``."""

    schema_version: Literal[1] = Field(description="Bumped when a field changes meaning or goes away")
    formats: list[FormatRow]


class ValidationSummary(_Frozen):
    source: str
    metric: str
    split: str
    n: int = Field(ge=1)
    median_abs_error: float = Field(ge=0)
    worst_abs_error: float = Field(ge=0)


class ValidationClass(_Frozen):
    """Errors of one class (engine or framework x GPU family x dense/MoE, or one held-out
    model), the level at which targets are set and error bands are read."""

    class_: str = Field(alias="class")
    metric: str
    split: str
    n: int = Field(ge=1)
    median_abs_error: float = Field(ge=0)
    p90_abs_error: float = Field(ge=0)
    target: float | None = Field(description="Target median |error| (reserved rows of a class large enough)")
    meets_target: bool | None

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class ValidationCase(_Frozen):
    source: str
    case: str
    metric: str
    split: str
    measured: float
    predicted: float
    error: float = Field(description="predicted / measured - 1")
    class_: str = Field("", alias="class", description="engine-or-framework|gpu family|dense-or-moe, or empty")

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class ValidationReport(_Frozen):
    """``rigsize validate --json``: predicted against measured, fitted and reserved apart."""

    schema_version: Literal[1] = Field(description="Bumped when a field changes meaning or goes away")
    summary: list[ValidationSummary]
    by_class: list[ValidationClass] = Field(default_factory=list, description="Per class, fit and reserved apart")
    cases: list[ValidationCase]


class CalibrationReport(_Frozen):
    """``rigsize calibrate --json``: the profile written and where."""

    schema_version: Literal[1] = Field(description="Bumped when a field changes meaning or goes away")
    output: str = Field(description="Path of the profile written")
    profile: dict[str, Any] = Field(description="The profile (schema 'rigsize-profile/1'), as written")


# command -> the model its --json prints; published as schema/<command>.schema.json
SCHEMAS: dict[str, type[BaseModel]] = {
    "estimate": EstimateReport, "models": ModelList, "gpus": GpuList, "formats": FormatList,
    "validate": ValidationReport, "calibrate": CalibrationReport, "clouds": InstanceList, "plan": PlanOutput,
    "launch": LaunchReport,
}


def schema(command: str = "estimate") -> dict[str, Any]:
    return SCHEMAS[command].model_json_schema()


if __name__ == "__main__":  # regenerate the published schemas: python -m rigsize.report [--write DIR]
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        from pathlib import Path

        for name in SCHEMAS:
            Path(sys.argv[2], f"{name}.schema.json").write_text(json.dumps(schema(name), indent=2) + "\n")
    else:
        json.dump(schema(), sys.stdout, indent=2)
        sys.stdout.write("\n")
