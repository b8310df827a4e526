"""The list of a model's weight tensors, as ``transformers`` names and shapes them.

The family builders (``rigsize.model.llama_like``, ``gpt_family``...) produce these rows
from a Hugging Face config, with ``linear_rows`` and ``norm_rows`` for the two shapes
most rows come in; the format catalog (``rigsize.model.formats``) prices each row in bits, since
quantizers treat tensors differently by role (GGUF mixes, fp32 norms in QLoRA...).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

Role = Literal[
    "embed",          # token embedding (vocab x hidden)
    "pos_embed",      # learned absolute positions (GPT-2, OPT)
    "lm_head",        # output projection (vocab x hidden); absent when tied
    "attn_q", "attn_k", "attn_v", "attn_qkv", "attn_o",
    "attn_q_a", "attn_q_b", "attn_kv_a", "attn_kv_b",   # MLA low-rank projections
    "mlp_gate", "mlp_up", "mlp_gate_up", "mlp_down",    # dense MLP (gate_up = fused)
    "expert_gate", "expert_up", "expert_down",          # routed experts (count = experts)
    "shared_gate", "shared_up", "shared_down",          # shared experts
    "ssm_in", "ssm_out",   # Mamba mixer in_proj / out_proj (linear)
    "ssm_x", "ssm_dt",     # Mamba 1 x_proj (dt, B, C from x) / dt_proj (linear)
    "ssm_conv",       # Mamba depthwise conv1d (channels x 1 x kernel) and its bias
    "router",         # MoE gate (experts x hidden) and its bias
    "norm",           # any normalization weight or bias
    "bias",           # linear biases (QKV bias, GPT-2 biases)
    "other",          # anything else (e.g. shared-expert gate vector)
    "vision",         # a vision-language model's vision tower (rigsize.model.vision)
    "vision_proj",    # ... and its projector into the text model (mergers, multimodal projector)
]

LINEAR_ROLES: frozenset[str] = frozenset({
    "attn_q", "attn_k", "attn_v", "attn_qkv", "attn_o",
    "attn_q_a", "attn_q_b", "attn_kv_a", "attn_kv_b",
    "mlp_gate", "mlp_up", "mlp_gate_up", "mlp_down",
    "expert_gate", "expert_up", "expert_down",
    "shared_gate", "shared_up", "shared_down",
    "ssm_in", "ssm_out", "ssm_x", "ssm_dt",
})
"""Roles of 2-D matmul weights: the tensors weight-only quantizers (GPTQ, AWQ, NF4) touch."""


@dataclass(frozen=True)
class Tensor:
    """One weight tensor (or ``count`` identical ones, e.g. the routed experts of a layer).

    ``shape`` follows PyTorch: ``(out_features, in_features)`` for a linear weight.
    ``layer`` is the decoder layer index, ``None`` outside the layer stack.
    """

    name: str
    role: Role
    shape: tuple[int, ...]
    layer: int | None = None
    count: int = 1

    @cached_property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * self.count

    @property
    def is_linear(self) -> bool:
        return self.role in LINEAR_ROLES and len(self.shape) == 2


def linear_rows(name: str, role: Role, out_f: int, in_f: int, bias: bool, layer: int | None,
                count: int = 1) -> list[Tensor]:
    """A linear layer's weight (out, in) and optional bias (a 1-D row of the same role),
    as ``torch.nn.Linear`` holds them."""
    rows = [Tensor(f"{name}.weight", role, (out_f, in_f), layer, count)]
    if bias:
        rows.append(Tensor(f"{name}.bias", role, (out_f,), layer, count))
    return rows


def norm_rows(name: str, width: int, bias: bool, layer: int | None, count: int = 1) -> list[Tensor]:
    """A normalization layer's weight and optional bias (``nn.LayerNorm``; RMSNorm has no bias)."""
    rows = [Tensor(f"{name}.weight", "norm", (width,), layer, count)]
    if bias:
        rows.append(Tensor(f"{name}.bias", "norm", (width,), layer, count))
    return rows
