"""Fine-tuning memory validation: published peak memory of fine-tuning runs."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from rigsize.validation.common import Row

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

    from rigsize.model.families import build_architecture
    from rigsize.model.inputs import ModelSpec, preset_config, presets, resolve_model

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
    """rigsize's peak for the row, in the source's terms: torch.cuda statistics count only the
    blocks of PyTorch's caching allocator ("memory_reserved() ... the total amount of memory
    managed by the caching allocator", PyTorch docs, CUDA semantics, memory management), so
    they leave out the CUDA context and NCCL's communication buffers, which NCCL allocates
    itself with cudaMalloc / cuMem (nccl src/include/alloc.h ``ncclCudaCalloc``); the cuBLAS
    workspace is taken from the caching allocator and stays in.

    A row's ``recipe`` table names framework behaviour of the release the source ran that
    differs from the framework's current defaults (``rigsize.memory.frameworks.Recipe`` fields, e.g.
    transformers < 4.49's ``loss_shift_copy``); the row's notes give the release and source.
    It is applied to the same job ``estimate`` resolves."""
    from dataclasses import replace

    from rigsize.planning.job import evaluate_memory, resolve_job
    from rigsize.planning.options import parse_options

    opts = parse_options(dict(task=row["task"], framework=row["framework"], gpu=row["gpu"], gpus=row["gpus"],
                              seq=row["seq"], batch=row["batch"], **row.get("options", {})))
    job, _ = resolve_job(_finetune_model(row), opts, {})
    if row.get("recipe"):
        job = replace(job, workload=replace(job.workload, recipe=replace(job.workload.settings, **row["recipe"])))
    memory = evaluate_memory(job)
    total = memory.per_gpu.total
    if row["measure"].startswith("torch_"):
        total -= memory.details.get("overhead/cuda_context", 0) + memory.details.get("overhead/nccl", 0)
    return float(total)


def finetune_rows() -> list[Row]:
    """One row per published figure; split "published" (targets) or "settings unpublished"."""
    rows = []
    for row in finetune_memory():
        split = "published" if row["settings"] == "published" else "settings unpublished"
        rows.append(Row(row["framework"], row["case"], "peak_memory_gib", split, published_bytes(row) / GIB,
                        predicted_bytes(row) / GIB))
    return rows
