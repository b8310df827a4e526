"""Engine defaults and fixed runtime memory, from ``data/runtime.toml``.

These are the terms no formula gives: what an engine reserves by default, what the
CUDA context and communication buffers take.  Each value carries its source in the
data file; the functions here only combine them, and every one that is applied is
echoed under ``assumptions``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from rigsize.architecture import Architecture
from rigsize.hardware import GPU
from rigsize.layout import Layout, Workload
from rigsize.tensors import Tensor


@cache
def data() -> dict[str, Any]:
    return tomllib.loads(resources.files("rigsize.data").joinpath("runtime.toml").read_text())


@dataclass(frozen=True)
class Engine:
    """An inference engine's memory-relevant defaults."""

    name: str
    gpu_memory_utilization: float
    max_num_batched_tokens: int     # tokens of the profiling forward pass (chunked-prefill budget)
    max_num_seqs: int               # sequences sampled in the profiling pass
    kv_block_size: int              # tokens per paged-KV block


def engine_for(gpu: GPU) -> Engine:
    """vLLM's defaults for ``vllm serve`` on this GPU (vllm/engine/arg_utils.py: GPUs of
    at least 70 GiB that are not A100s get the larger batching defaults)."""
    d = data()
    big = gpu.usable_memory_bytes >= 70 * 2**30 and "A100" not in gpu.name.upper()
    size = "ge70gib_not_a100" if big else "other_gpu"
    ctx = d["applied"]["usage_context"]
    return Engine(
        name=d["applied"]["engine"],
        gpu_memory_utilization=float(d["vllm"]["gpu_memory_utilization"]["value"]),
        max_num_batched_tokens=int(d["vllm"]["max_num_batched_tokens"][f"{ctx}_{size}"]),
        max_num_seqs=int(d["vllm"]["max_num_seqs"][f"{ctx}_{size}"]),
        kv_block_size=int(d["vllm"]["kv_block_size"]["value"]),
    )


def _nccl_groups(layout: Layout) -> int:
    """Communicators a rank joins: one per parallel dimension wider than one GPU."""
    return sum(1 for n in (layout.tp, layout.pp, layout.dp, layout.cp) if n > 1) + (layout.ep > 1)


def overhead_bytes(layout: Layout, workload: Workload, gpu: GPU, eng: Engine) -> dict[str, int]:
    """Fixed memory outside the model's tensors, by term (data/runtime.toml [applied]).

    Inference (vLLM >= 0.21): inside the gpu_memory_utilization budget sit the
    non-torch increase measured during profiling and the CUDA-graph estimate; the CUDA
    context and NCCL buffers were allocated before the budget's snapshot and live in
    the (1 - utilization) headroom, so they are not charged here.
    Training: the CUDA context, the cuBLAS workspace and one NCCL communicator per
    parallel group wider than one GPU.  Allocator fragmentation has no published
    typical figure and is not charged (a warning says so)."""
    a = data()["applied"]
    if not workload.training:
        return {"non_torch": int(a["vllm_non_torch_bytes"]), "cuda_graphs": int(a["vllm_cuda_graph_bytes"])}
    hopper = gpu.architecture == "hopper"
    terms = {
        "cuda_context": int(a["training_cuda_context_bytes"]),
        "cublas_workspace": int(a["hopper_cublas_workspace_bytes" if hopper else "other_cublas_workspace_bytes"]),
    }
    groups = _nccl_groups(layout)
    if groups:
        terms["nccl"] = groups * int(a["training_nccl_bytes_per_group"])
    return terms


def gathered_params_bytes(arch: Architecture, layout: Layout, workload: Workload, tensors: list[Tensor],
                          shard: Callable[[Tensor, Architecture, Layout], float]) -> int:
    """ZeRO-3 / FSDP full sharding gathers whole layers before use: DeepSpeed keeps at
    most ``stage3_max_live_parameters`` gathered plus ``stage3_prefetch_bucket_size``
    prefetched (DeepSpeed config docs); FSDP holds the current and the prefetched unit.
    Modelled as two decoder layers' bf16 parameters, capped by DeepSpeed's limits."""
    if not workload.training or layout.zero != 3:
        return 0
    per_layer: dict[int, float] = {}
    for t in tensors:
        if t.layer is not None:
            per_layer[t.layer] = per_layer.get(t.layer, 0.0) + t.numel / shard(t, arch, layout)
    largest = max(per_layer.values(), default=0.0)
    elements = 2 * largest
    if workload.framework == "deepspeed":
        ds = data()["deepspeed"]["zero3_defaults"]
        elements = min(elements, float(ds["stage3_max_live_parameters"]) + float(ds["stage3_prefetch_bucket_size"]))
    return math.ceil(elements * 2)


def assumptions(eng: Engine, workload: Workload) -> dict[str, Any]:
    """The runtime constants an estimate applied, for the report."""
    if workload.training:
        return {"allocator_fragmentation": "not modelled (no published typical figure)"}
    return {"engine": f"{eng.name} >= 0.21 (vllm serve defaults)", "kv_block_size": eng.kv_block_size,
            "max_num_batched_tokens": eng.max_num_batched_tokens, "max_num_seqs": eng.max_num_seqs}
