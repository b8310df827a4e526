"""Fine-tuning frameworks' documented memory defaults, from ``data/frameworks.toml``.

A ``Recipe`` is what a framework does by default for one task (adapter dtype, loss,
optimizer placement, gradient checkpointing...) with the user's own options applied
on top.  ``per_gpu.py`` and ``activations.py`` read only the ``Recipe``; every default
carries its ``source`` and ``as_of`` in the data file (``provenance`` returns them).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any, Literal

FRAMEWORKS: tuple[str, ...] = ("hf", "trl", "deepspeed", "megatron", "fsdp", "torchtitan", "torchtune",
                               "unsloth", "llamafactory")
Loss = Literal["full", "chunked", "fused", "inplace"]


@dataclass(frozen=True)
class Recipe:
    """One framework's memory-relevant behaviour for one task (see data/frameworks.toml FIELDS)."""

    param_bits: int = 16
    grad_bits: int = 16
    master_weights: bool = False
    persistent_grads: bool = False
    adapter_bits: int = 32
    optimizer: str = "adamw"
    paged_optimizer: bool = False
    optimizer_in_backward: bool = False
    loss: Loss = "full"
    loss_chunks: int = 1
    activation_offload: bool = False
    recompute: str = "none"
    upcast_unquantized: bool = False
    reduce_bucket_elements: int = 0
    selective_ac: str = "none"
    loss_shift_copy: bool = False
    adapter_compute_bits: int = 0
    fsdp_root_unsharded: bool = False
    compiled_loss: bool = False

    @property
    def adapter_input_bits(self) -> int:
        """Element size of what the adapters' matmuls read and keep in the forward pass:
        ``adapter_compute_bits`` where the framework casts the adapters to the activations'
        dtype (Unsloth), else the adapters' own dtype (PEFT casts the input to it)."""
        return self.adapter_compute_bits or self.adapter_bits


_FIELDS = frozenset(Recipe.__dataclass_fields__)


@cache
def data() -> dict[str, Any]:
    return tomllib.loads(resources.files("rigsize.data").joinpath("frameworks.toml").read_text())


def _chain(framework: str, task: str) -> list[dict[str, Any]]:
    """Tables applied in order: hf.all, hf.<task>, <fw>.all, <fw>.<task>."""
    d = data()
    out = [d["hf"].get("all", {}), d["hf"].get(task, {})]
    if framework != "hf":
        out += [d[framework].get("all", {}), d[framework].get(task, {})]
    return out


def provenance(framework: str, task: str) -> dict[str, dict[str, Any]]:
    """Each field's applied default with its source and date."""
    merged: dict[str, dict[str, Any]] = {}
    for table in _chain(framework, task):
        merged.update({k: v for k, v in table.items() if k in _FIELDS})
    return merged


def defaults(framework: str, task: str) -> Recipe:
    """The framework's documented defaults for ``task`` (finetune, lora, qlora, pretrain)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}")
    return Recipe(**{k: v["value"] for k, v in provenance(framework, task).items()})


# Frameworks built on transformers' Trainer hand the model to DeepSpeed when ZeRO is on
# (transformers docs, "DeepSpeed" integration: the Trainer calls deepspeed.initialize, whose
# engine keeps the fp32 master, fp32 moments and its contiguous gradient buffer); their
# model states then follow the deepspeed entry.  torchtune's multi-GPU recipes use plain
# torch.optim.AdamW with neither paging nor optimizer-in-backward
# (recipes/configs/llama3_1/8B_full.yaml, full_finetune_distributed), as_of 2026-12-01.
TRAINER_FRAMEWORKS = ("hf", "trl", "unsloth", "llamafactory")
_DEEPSPEED_STATE_FIELDS = ("param_bits", "grad_bits", "master_weights", "persistent_grads", "reduce_bucket_elements")


def recipe(framework: str, task: str, *, optimizer: str | None = None, recompute: str | None = None,
           optimizer_in_backward: bool | None = None, chunked_loss: bool | None = None,
           adapter_dtype: str | None = None, activation_offload: bool | None = None, zero: int = 0) -> Recipe:
    """Defaults with the user's options on top (None: keep the default).

    A user-chosen optimizer drops the default's paging (torchtune's default is
    bitsandbytes' ``PagedAdamW8bit``; ``--optimizer adamw-8bit`` is the unpaged ``AdamW8bit``).  ``chunked_loss=False`` means the full fp32 loss;
    ``True`` keeps a fused default and otherwise chunks (8 chunks, torchtune's default,
    where the framework names none)."""
    r = defaults(framework, task)
    changes: dict[str, Any] = {}
    if zero and framework in TRAINER_FRAMEWORKS:
        ds = defaults("deepspeed", task)
        changes.update({k: getattr(ds, k) for k in _DEEPSPEED_STATE_FIELDS},
                       paged_optimizer=False, optimizer_in_backward=False)
    if zero and framework == "torchtune":
        changes.update(optimizer="adamw", paged_optimizer=False, optimizer_in_backward=False)
    if r.activation_offload and (recompute or r.recompute) == "none":
        changes["activation_offload"] = False    # offload rides on the checkpointing (Unsloth's "unsloth" mode)
    if optimizer is not None:
        changes.update(optimizer=optimizer, paged_optimizer=False)
    if recompute is not None:
        changes["recompute"] = recompute
    if optimizer_in_backward is not None:
        changes["optimizer_in_backward"] = optimizer_in_backward
    if chunked_loss is not None:
        if not chunked_loss:
            changes.update(loss="full", loss_chunks=1)
        elif r.loss == "full":
            changes.update(loss="chunked", loss_chunks=max(r.loss_chunks, 8) if r.loss_chunks > 1 else 8)
    if adapter_dtype is not None:
        changes["adapter_bits"] = {"bf16": 16, "fp32": 32}[adapter_dtype]
    if activation_offload is not None:
        changes["activation_offload"] = activation_offload
    return replace(r, **changes)


def fsdp_root_bytes(recipe: Recipe, layout: Any, arch: Any, tensors: list[Any],
                    shard: Callable[[Any, Any, Any], float]) -> int:
    """The root FSDP unit's parameters, gathered once and kept unsharded from its forward
    to the end of the backward: bytes on one rank (bf16, the mixed-precision param dtype).

    A framework that wraps each decoder layer and then the whole model (torchtitan 9dec370
    ``parallelize_llama.apply_fsdp``: ``fully_shard(model, ...)`` after the blocks) leaves
    the embedding, the final norm and the lm_head in the root unit, and FSDP never reshards
    the root after forward: FSDP2 ``_fsdp_state.FSDPState._lazy_init`` sets the root's
    ``post_forward_mesh_info = None`` ("For the root, do not reshard after forward since for
    training, the parameters would be freed and all-gathered immediately"); FSDP1
    ``_runtime_utils._post_forward_reshard`` frees only ``not state._is_root`` (both
    torch/distributed, read 2026-12-01).  So those tensors' unsharded bf16 copy coexists
    with the activations at every peak, beside the sharded (fp32) parameters.  ``tensors``
    are the stage's; decoder layers (``t.layer`` set) are their own units and are not
    counted here (runtime.gathered_params_bytes gathers two of them at a time)."""
    if not recipe.fsdp_root_unsharded or layout.zero != 3 or layout.zero_shards == 1:
        return 0
    elements = sum(t.numel / shard(t, arch, layout) for t in tensors if t.layer is None)
    return math.ceil(elements * 2)
