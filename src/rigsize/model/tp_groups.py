"""Tensor parallelism and quantization groups: a shard must keep whole groups.

``tp_group_problems`` lists the quantization groups (GPTQ/AWQ groups, GGUF blocks,
NVFP4 groups, fp8-block tiles) that a tensor-parallel split of a model's tensors would
cut; the caller (``rigsize.planning.job``) decides whether that is fatal.  MXFP4 (tp_axes
empty) reports none: vLLM's gpt-oss loader gives each rank cdiv(I/32, tp) whole 32-wide
blocks, the last rank fewer (vllm/model_executor/models/gpt_oss.py _load_weights_mxfp4).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rigsize.errors import FormatError
from rigsize.model.formats import (
    GGUF_CATEGORY,
    Axis,
    GGUFMix,
    WeightFormat,
    gguf_mix,
    gguf_tensor_type,
    gguf_types,
    resolve_weight_format,
)
from rigsize.model.tensors import Tensor

# Megatron-style split (vLLM RowParallelLinear / ColumnParallelLinear).  attn_k/attn_v/
# attn_qkv are left out (KV heads are replicated when tp exceeds them) and MLA's
# attn_q_a/attn_kv_a are replicated, not split.
_ROW_PARALLEL = frozenset({"attn_o", "mlp_down", "expert_down", "shared_down", "ssm_out",
                           "ssm_x"})   # vLLM MambaMixer: x_proj RowParallelLinear, dt_proj ColumnParallelLinear
_COL_PARALLEL = frozenset({"attn_q", "attn_q_b", "attn_kv_b", "mlp_gate", "mlp_up", "mlp_gate_up",
                           "expert_gate", "expert_up", "shared_gate", "shared_up", "ssm_in",
                           "ssm_dt"})
_MAX_GOOD_TP = 64


@dataclass(frozen=True)
class TPGroupProblem:
    """``tensor``'s ``axis`` (``dim`` features, in groups of ``group``) cannot be split
    over ``tp`` shards of whole groups; ``good`` lists tp values that can."""

    fmt: str
    tensor: str
    role: str
    axis: Axis
    dim: int
    group: int
    tp: int
    good: tuple[int, ...]
    n_tensors: int = 1          # tensors with the same problem (e.g. one per layer)

    @property
    def groups(self) -> float:
        return self.dim / self.group

    def error(self) -> FormatError:
        """The user-facing error, for callers that decide this is fatal."""
        key = "format.tp_groups" if self.axis == "in" else "format.tp_groups_out"
        groups = self.dim // self.group if self.dim % self.group == 0 else round(self.groups, 2)
        return FormatError(key, fmt=self.fmt, tensor=self.tensor, dim=self.dim, groups=groups,
                           group=self.group, tp=self.tp, good=", ".join(map(str, self.good)))


def _good_tps(dim: int, group: int) -> tuple[int, ...]:
    if dim % group:
        return (1,)
    n_groups = dim // group
    return tuple(d for d in range(1, min(n_groups, _MAX_GOOD_TP) + 1) if n_groups % d == 0)


def _tp_groups(fmt: WeightFormat, t: Tensor, mix: GGUFMix | None) -> list[tuple[Axis, int, int]]:
    """(axis, features, group) pairs that a tp split of ``t`` must keep whole."""
    if len(t.shape) < 2:
        return []
    out_f, in_f = t.shape[-2], t.shape[-1]
    if t.role == "mlp_gate_up":
        out_f //= 2                         # MergedColumnParallelLinear splits each half
    if fmt.layout == "gguf":
        if mix is None or t.role not in GGUF_CATEGORY:
            return []
        block = gguf_types()[gguf_tensor_type(fmt, t, mix)].block_size
        return [("in", in_f, block)] if block > 1 and t.role in _ROW_PARALLEL else []
    if t.role not in fmt.quantized_roles:
        return []
    if fmt.kept_modules and fmt.kept_modules.format_of(t) not in (None, fmt.name):
        return []
    pairs: list[tuple[Axis, int, int]] = []
    if "in" in fmt.tp_axes and t.role in _ROW_PARALLEL:
        group = fmt.tile_cols if fmt.layout == "tile" else fmt.group_size
        if group:
            pairs.append(("in", in_f, group))
    if "out" in fmt.tp_axes and t.role in _COL_PARALLEL and fmt.layout == "tile":
        pairs.append(("out", out_f, fmt.tile_rows))
    return pairs


def tp_group_problems(fmt: str | WeightFormat, tensors: Iterable[Tensor], tp: int) -> list[TPGroupProblem]:
    """Quantization groups a tensor-parallel split over ``tp`` would cut.

    Column-parallel layers split out_features, row-parallel layers (attn_o, mlp_down,
    expert_down, shared_down) split in_features; group quantizers (GPTQ, AWQ, GGUF
    blocks, NVFP4) group along in_features, so a row-parallel shard needs
    ``(in_features / tp) % group == 0`` (Qwen2-72B: 29568 = 231 groups of 128, which
    no tp of 2/4/8 splits).  fp8-block checks both axes (128x128 tiles).  Returns one
    problem per distinct (role, axis, size); raises nothing: the caller decides.
    """
    fmt = resolve_weight_format(fmt)
    if tp <= 1 or (fmt.layout != "gguf" and not (fmt.quantized_roles and fmt.tp_axes)):
        return []       # no quantization groups a split could cut (bf16, per-tensor fp8): _tp_groups finds none
    rows = list(tensors)
    n_layers = max((t.layer for t in rows if t.layer is not None), default=-1) + 1
    mix = gguf_mix(rows, max(n_layers, 1)) if fmt.layout == "gguf" else None
    found: dict[tuple[str, str, int, int], TPGroupProblem] = {}
    for t in rows:
        for axis, dim, group in _tp_groups(fmt, t, mix):
            if dim % (group * tp) == 0:
                continue
            key = (t.role, axis, dim, group)
            if key in found:
                p = found[key]
                found[key] = TPGroupProblem(p.fmt, p.tensor, p.role, p.axis, p.dim, p.group, p.tp, p.good,
                                            p.n_tensors + 1)
            else:
                found[key] = TPGroupProblem(fmt.name, t.name, t.role, axis, dim, group, tp, _good_tps(dim, group))
    return list(found.values())
