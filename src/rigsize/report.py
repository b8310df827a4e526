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

from pydantic import BaseModel, ConfigDict, Field

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
    total: int


class Suggestion(_Frozen):
    change: dict[str, Any] = Field(description="Options to change, as estimate keys")
    description: str
    total_bytes: int = Field(description="Busiest GPU's total after the change")
    fits: bool


class MemoryReport(_Frozen):
    per_gpu: PerGpuReport
    usable_bytes: int = Field(description="Inference: visible x gpu_memory_utilization; training: visible")
    fits: bool
    headroom_bytes: int = Field(description="usable - total; negative when it does not fit")
    max_concurrency: int | None = Field(description="Inference: sequences of the requested length that fit")
    busiest_stage: int = Field(description="Pipeline stage of the busiest GPU")
    kv_bytes_per_sequence: int = Field(description="KV cache of one sequence on the busiest GPU")
    details: dict[str, int] = Field(description="Sub-parts: overhead terms, activation terms, gathered weights")
    suggestions: list[Suggestion]


class Bound(_Frozen):
    prefill: str = Field(description="compute | memory | communication | overhead")
    decode: str


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


class TrainingBreakdown(_Frozen):
    compute: float
    bubble: float
    tp_comm: float
    dp_comm: float
    pp_comm: float
    ep_comm: float
    cp_comm: float


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


class EstimateReport(_Frozen):
    schema_version: Literal[1] = SCHEMA_VERSION
    model: ModelReport
    task: Literal["inference", "finetune", "lora", "qlora", "pretrain"]
    hardware: HardwareReport
    parallel: ParallelReport
    memory: MemoryReport
    performance: InferencePerformance | TrainingPerformance | None = Field(
        None, description="Speed; null when it cannot be estimated (e.g. the layout does not fit)")
    inputs: dict[str, Any] = Field(description="Options as the user gave them, parsed")
    assumptions: dict[str, Any] = Field(description="Every default applied, so the result can be reproduced")
    warnings: list[str]


class PresetRow(_Frozen):
    name: str
    family: str
    hub_id: str | None
    aliases: list[str]
    params: int
    active_params: int
    source: str
    as_of: str


def schema() -> dict[str, Any]:
    return EstimateReport.model_json_schema()


if __name__ == "__main__":  # regenerate the published schema
    json.dump(schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
