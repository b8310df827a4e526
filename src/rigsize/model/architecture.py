"""What the rest of rigsize needs to know about a model, in Hugging Face vocabulary:
``Architecture`` (its widths, its weight tensors, its KV cache per token), and the
parameter counts read from it (``breakdown``, ``active_params``).

``rigsize.model.families.build_architecture`` lays one out from a ``config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from rigsize.model.tensors import Tensor

# "hybrid": Falcon-H1's layers run attention and a Mamba mixer side by side (both a KV cache and a state)
ATTENTION_LAYER_TYPES = frozenset({"full_attention", "sliding_attention", "chunked_attention", "attention", "hybrid"})


@dataclass(frozen=True)
class Architecture:
    """What the rest of rigsize needs to know about a model, in HF vocabulary."""

    model_type: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int      # per layer for standard attention; 1 latent "head" for MLA
    head_dim: int                 # per-head K/V width (MLA: the cached latent + rope width)
    vocab_size: int
    intermediate_size: int        # dense MLP width (0 if every layer is MoE)
    max_position_embeddings: int | None
    tie_word_embeddings: bool
    tensors: tuple[Tensor, ...]
    kv_elements_per_token: int    # K and V (or MLA latent) for all layers, no window, no split
    attention: str = "standard"   # "standard" | "mla"
    num_experts: int = 0          # routed experts per MoE layer
    experts_per_token: int = 0
    moe_layers: tuple[int, ...] = ()
    layer_windows: tuple[int | None, ...] = ()   # sliding window per layer (None = full)
    notes: tuple[str, ...] = field(default=())
    # Hugging Face ``layer_types`` per layer (empty: every layer is attention); the KV
    # cache covers only the attention kinds (``ATTENTION_LAYER_TYPES``)
    layer_types: tuple[str, ...] = ()
    conv_state_elements: int = 0      # per sequence, all recurrent layers (model dtype)
    ssm_state_elements: int = 0       # per sequence, all recurrent layers (fp32 in transformers)
    conv_kernel: int = 0              # the recurrent layers' conv width (transformers keeps all of it; vLLM kernel - 1)
    params_mtp: int = 0               # multi-token-prediction layers the checkpoint carries, outside ``params``
    indexer_key_bytes: int = 0        # DeepSeek-V3.2: the sparse-attention indexer's cached key, bytes/token/layer
    serving_ssm_bits: int = 16        # SSM state width a serving engine keeps (vLLM: the model dtype unless the
                                      # config names mamba_ssm_cache_dtype, as Nemotron-H's does)
    max_image_tokens: int = 0         # vision-language models: the most tokens one image becomes (0: none/unknown)
    max_image_peak: tuple[int, int, int] = (0, 0, 0)   # the tower's peak on that image: positions, elements per
                                      # position on every tp rank, elements split over tp (model.vision.vision_peak)

    def is_attention_layer(self, i: int) -> bool:
        return not self.layer_types or self.layer_types[i] in ATTENTION_LAYER_TYPES

    @cached_property
    def params(self) -> int:
        """Every weight, counted once (computed on first use: the tensor list is fixed)."""
        return sum(t.numel for t in self.tensors)


# ----------------------------------------------------------------------------------
# Counts
# ----------------------------------------------------------------------------------

_GROUPS: dict[str, str] = {
    "embed": "embedding", "pos_embed": "embedding", "lm_head": "lm_head",
    "router": "moe/router", "norm": "norms", "other": "other",
    "vision": "vision/tower", "vision_proj": "vision/projector",
}


def component_of(t: Tensor) -> str:
    """Breakdown key of a tensor (nanoGPT-style, e.g. ``attention``, ``moe/experts``)."""
    if t.role in _GROUPS:
        return _GROUPS[t.role]
    if t.role.startswith("attn_"):
        return "attention"
    if t.role.startswith("expert_"):
        return "moe/experts"
    if t.role.startswith("shared_"):
        return "moe/shared_experts"
    if t.role.startswith("ssm_") or ".mixer." in t.name:
        return "mamba"
    return "mlp"


def breakdown(arch: Architecture) -> dict[str, int]:
    """Parameters by component; the values sum to ``arch.params``."""
    out: dict[str, int] = {}
    for t in arch.tensors:
        key = component_of(t)
        out[key] = out.get(key, 0) + t.numel
    return out


def active_params(arch: Architecture) -> int:
    """Parameters used per text token: embedding and lm_head included, routed experts
    at top-k (e.g. Mixtral 8x7B: 12.9B of 46.7B); a vision tower and projector
    (``vision`` roles) run once per image, not per token, and are left out."""
    text = arch.params - sum(t.numel for t in arch.tensors if t.role in ("vision", "vision_proj"))
    if not arch.num_experts:
        return text
    routed = sum(t.numel for t in arch.tensors if t.role.startswith("expert_"))
    return text - routed + routed * arch.experts_per_token // arch.num_experts


def layer_type_counts(arch: Architecture) -> dict[str, int]:
    """Layers by Hugging Face ``layer_types`` value (from the windows where the config
    types none: a windowed layer is ``sliding_attention``), plus how many layers have a
    routed-expert MLP (``moe_mlp``) and a dense one (``dense_mlp``)."""
    kinds = arch.layer_types or tuple("sliding_attention" if w else "full_attention"
                                      for w in (arch.layer_windows or (None,) * arch.num_hidden_layers))
    out: dict[str, int] = {}
    for k in kinds:
        out[k] = out.get(k, 0) + 1
    # a shared-expert MLP with no routed experts beside it (Granite 4.0 H dense models: num_local_experts 0,
    # the shared MLP is the layer's only one) is a dense MLP
    dense = {t.layer for t in arch.tensors if t.layer is not None and t.role.startswith(("mlp_", "shared_"))}
    out["moe_mlp"] = len(arch.moe_layers)
    out["dense_mlp"] = len(dense - set(arch.moe_layers))
    return out
