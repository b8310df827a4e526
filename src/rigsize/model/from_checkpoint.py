"""Any model on the Hub: a decoder laid out from its checkpoint's own tensors when rigsize
does not lay out its ``model_type``.

The safetensors headers (local files or the Hub's, ``model.checkpoints``) list every
stored tensor with its shape, so the weights are exact: each tensor keeps its stored shape
(packed quantized tensors unpacked by the same rule ``summarize_safetensors`` counts them
with), and its role (embedding, attention, MLP, experts, norms...) and layer index come
from its name.  What the headers cannot say is approximate and flagged: the KV cache comes
from the config's attention fields (every layer taken as full attention), activations from
hidden_size and intermediate_size, and tensors whose names no rule knows are "other",
replicated on every tensor-parallel rank.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rigsize.errors import ModelError
from rigsize.model.architecture import Architecture
from rigsize.model.hf_config import Config
from rigsize.model.tensors import Role, Tensor

# (pattern on the tensor name, role), first match wins; names as Hugging Face checkpoints
# spell them across families (Llama-like, GPT-2/NeoX, Falcon, MoE blocks)
_ROLES: tuple[tuple[str, Role], ...] = (
    (r"(^|\.)(embed_tokens|wte|word_embeddings|tok_embeddings|embeddings)\.weight$", "embed"),
    (r"(^|\.)(wpe|embed_positions|position_embeddings)\.weight$", "pos_embed"),
    (r"(^|\.)(lm_head|embed_out|output)\.weight$", "lm_head"),
    (r"\.experts\.(\d+\.)?(gate_proj|w1)\b", "expert_gate"),
    (r"\.experts\.(\d+\.)?(up_proj|w3)\b", "expert_up"),
    (r"\.experts\.(\d+\.)?(gate_up_proj)\b", "expert_up"),
    (r"\.experts\.(\d+\.)?(down_proj|w2)\b", "expert_down"),
    (r"\.shared_experts?\.(gate_proj)\b", "shared_gate"),
    (r"\.shared_experts?\.(up_proj)\b", "shared_up"),
    (r"\.shared_experts?\.(down_proj)\b", "shared_down"),
    (r"\.(router|gate)\.weight$", "router"),
    (r"\.(q_proj|query)\.", "attn_q"),
    (r"\.(k_proj|key)\.", "attn_k"),
    (r"\.(v_proj|value)\.", "attn_v"),
    (r"\.(qkv_proj|query_key_value|c_attn|Wqkv)\.", "attn_qkv"),
    (r"\.(o_proj|out_proj|dense|c_proj)\.", "attn_o"),
    (r"\.(gate_proj|w1)\.", "mlp_gate"),
    (r"\.(up_proj|w3|fc1|c_fc|dense_h_to_4h)\.", "mlp_up"),
    (r"\.(gate_up_proj)\.", "mlp_gate_up"),
    (r"\.(down_proj|w2|fc2|dense_4h_to_h)\.", "mlp_down"),
    (r"(norm|ln_?\w*|layernorm)\w*\.(weight|bias)$", "norm"),
)
_LAYER = re.compile(r"\.(?:layers|h|blocks|layer)\.(\d+)\.")


def _role(name: str) -> Role:
    for pattern, role in _ROLES:
        if re.search(pattern, name):
            return role
    return "other"


def architecture_from_checkpoint(raw: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> Architecture:
    """The stored tensors as the model's layout, the attention fields of the config for
    its KV cache.  Raises when the headers hold no tensor or the config no layer count."""
    if not shapes:
        raise ModelError("model.unsupported_type", model_type=str(raw.get("model_type")),
                         supported="(a checkpoint's safetensors headers would let rigsize size it)")
    cfg = Config(dict(raw))
    n = cfg.int("num_hidden_layers", "n_layer", "num_layers")
    h = cfg.int("hidden_size", "n_embd", "d_model")
    nh = cfg.int("num_attention_heads", "n_head", default=1)
    nkv = cfg.int("num_key_value_heads", default=nh) if cfg.get("num_key_value_heads") is not None else nh
    hd = cfg.int("head_dim", default=max(1, h // max(1, nh)))
    rows = []
    for name, shape in sorted(shapes.items()):
        m = _LAYER.search(name)
        layer = int(m.group(1)) if m and int(m.group(1)) < n else None
        rows.append(Tensor(name, _role(name), tuple(shape) or (1,), layer))
    expert_rows = [t for t in rows if t.role.startswith("expert_")]
    indexed = {m.group(1) for t in expert_rows if (m := re.search(r"\.experts\.(\d+)\.", t.name))}
    fused = next((t.shape[0] for t in expert_rows if len(t.shape) == 3), 0)   # (experts, out, in) tensors
    experts = cfg.int("num_experts", "num_local_experts", "n_routed_experts", default=len(indexed) or fused) \
        if expert_rows else 0
    if fused:      # one fused tensor holds every expert: count them apart, as the laid-out MoE tensors do
        rows = [replace(t, shape=t.shape[1:], count=experts) if t.role.startswith("expert_") and len(t.shape) == 3
                else t for t in rows]
    top_k = cfg.int("num_experts_per_tok", "moe_topk", "top_k", "num_experts_per_token", default=experts) \
        if experts else 0
    moe_layers = tuple(sorted({t.layer for t in rows if t.role.startswith("expert_") and t.layer is not None}))
    tied = not any(t.role == "lm_head" for t in rows)
    vocab = next((t.shape[0] for t in rows if t.role == "embed"), cfg.int("vocab_size", default=0))
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n, num_attention_heads=nh,
        num_key_value_heads=nkv, head_dim=hd, vocab_size=vocab,
        intermediate_size=cfg.int("intermediate_size", "n_inner", default=4 * h),
        max_position_embeddings=cfg.max_positions("max_position_embeddings", "n_positions"),
        tie_word_embeddings=tied, tensors=tuple(rows), kv_elements_per_token=2 * n * nkv * hd,
        num_experts=experts, experts_per_token=top_k, moe_layers=moe_layers, layer_windows=(None,) * n,
        notes=("laid out from the checkpoint's tensors: weights exact, KV cache from the config's attention "
               "fields (every layer full attention), activations approximate"
               + ("" if not experts or cfg.get("num_experts_per_tok", cfg.get("moe_topk")) is not None
                  else "; the config names no experts per token: every expert taken as active"),),
    )
