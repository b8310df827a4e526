"""What both activation accountings read: each decoder layer's widths (from the weight
list), the layers one pipeline stage runs, and how the stage runs one micro-batch.

``rigsize.memory.activations_hf`` and ``rigsize.memory.activations_megatron`` turn these
into bytes; ``rigsize.memory.activations.activation_bytes`` picks one and adds the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

from rigsize.model.architecture import Architecture
from rigsize.model.tensors import Tensor

Recompute = Literal["none", "selective", "full"]
Attn = Literal["flash", "eager"]
Stage = Literal["first", "middle", "last"]

# Element sizes of saved tensors that are not in the model dtype
FP32_BYTES = 4     # RMSNorm upcasts, softmax statistics, logits upcast for the loss
INDEX_BYTES = 8    # int64 token ids, gather/scatter indices
OFFSET_BYTES = 4   # grouped_mm offsets (int32, one per expert)

# Module names as PEFT's ``target_modules`` spells them (Llama layout), by weight role.
_MODULE_OF_ROLE: dict[str, str] = {
    "attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj", "attn_qkv": "qkv_proj",
    "attn_o": "o_proj", "attn_q_a": "q_a_proj", "attn_q_b": "q_b_proj",
    "attn_kv_a": "kv_a_proj_with_mqa", "attn_kv_b": "kv_b_proj",
    "mlp_gate": "gate_proj", "mlp_up": "up_proj", "mlp_gate_up": "gate_up_proj", "mlp_down": "down_proj",
}
ALL_LINEAR: frozenset[str] = frozenset(_MODULE_OF_ROLE.values())
"""PEFT's ``target_modules="all-linear"`` on a decoder: every linear layer except lm_head."""


@dataclass(frozen=True)
class StageRun:
    """How one GPU of a pipeline stage runs one micro-batch.

    ``tokens``: tokens of the micro-batch on this GPU (``batch * ceil(seq / cp)``);
    ``seq``: keys each query attends over (the full sequence); ``a``: bytes per element
    of the model dtype; ``mask_bytes``: one dropout-mask element; ``dropout``: hidden and
    attention dropout on; ``first`` / ``last``: the stage holds the embedding / the
    final norm, lm_head and loss; ``in_flight``: micro-batches whose activations it holds.
    """

    tokens: int
    batch: int
    seq: int
    a: int
    attn: Attn
    recompute: Recompute
    tp: int
    sp: bool
    mask_bytes: int
    dropout: bool
    first: bool
    last: bool
    in_flight: int


class StageTerms(NamedTuple):
    """One accounting's bytes for a stage, before the loss variant and offloading."""

    per_layer: list[int]
    parts: dict[str, int]
    embedding: int
    logits_and_loss: int
    working_set: int


# ----------------------------------------------------------------------------------
# Layer widths, read from the weight list
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DecoderLayer:
    """One decoder layer's widths, as the activation terms need them."""

    q: int                      # query width: heads * qk head dim
    k: int                      # key width before repeat_kv: kv heads * qk head dim
    v: int                      # value width before repeat_kv
    o_in: int                   # o_proj input width: heads * v head dim
    heads: int
    kv_heads: int
    qk_norm_rows: tuple[int, int] = (0, 0)   # RMSNorm rows per token on q and on k (0: no q/k norm)
    norms: int = 2                           # hidden-width norms in the layer
    gated: bool = True
    inter: int = 0                           # dense MLP width
    experts: int = 0
    top_k: int = 0
    expert_inter: int = 0
    shared_inter: int = 0
    latents: tuple[tuple[int, str], ...] = ()   # MLA: (width, up-projection) of each normed latent
    linears: tuple[str, ...] = ()            # module names present, for LoRA targets


def present(L: DecoderLayer, *modules: str) -> tuple[str, ...]:
    """Those of ``modules`` (PEFT names) that the layer has."""
    return tuple(m for m in modules if m in L.linears)


def _dim(tensors: list[Tensor], role: str, axis: int) -> int:
    """A dimension of the layer's weight of this role (biases skipped), 0 if absent."""
    t = next((t for t in tensors if t.role == role and len(t.shape) == 2), None)
    return t.shape[axis] if t is not None else 0


def _layer_of(arch: Architecture, tensors: list[Tensor]) -> DecoderLayer:
    nh = arch.num_attention_heads
    norms = [t for t in tensors if t.role == "norm" and t.name.endswith(".weight")]
    qk_norms = [t for t in norms if ".q_norm." in t.name or ".k_norm." in t.name]
    latents = [t for t in norms if "_a_layernorm" in t.name]
    hidden_norms = [t for t in norms if t not in qk_norms and t not in latents]
    if arch.attention == "mla":   # modeling_deepseek_v3.py
        q = _dim(tensors, "attn_q", 0) or _dim(tensors, "attn_q_b", 0)
        o_in = _dim(tensors, "attn_o", 1)
        lat = tuple((t.shape[0], "q_b_proj" if "q_a_" in t.name else "kv_b_proj") for t in latents)
        dims = dict(q=q, k=q, v=o_in, o_in=o_in, heads=nh, kv_heads=nh, latents=lat)
    else:
        hd, nkv = arch.head_dim, arch.num_key_value_heads
        rows = (0, 0)
        if qk_norms:   # per-head RMSNorm (Qwen3, Gemma 3) or one over all heads (OLMo 2)
            rows = (nh, nkv) if qk_norms[0].shape[0] == hd else (1, 1)
        dims = dict(q=nh * hd, k=nkv * hd, v=nkv * hd, o_in=nh * hd, heads=nh, kv_heads=nkv, qk_norm_rows=rows)
    roles = {t.role for t in tensors}
    moe: dict[str, int] = {}
    if "router" in roles:
        moe = dict(experts=_dim(tensors, "router", 0), top_k=max(arch.experts_per_token, 1),
                   expert_inter=_dim(tensors, "expert_up", 0), shared_inter=_dim(tensors, "shared_up", 0))
    return DecoderLayer(
        norms=max(len(hidden_norms), 1),
        gated=bool(roles & {"mlp_gate", "mlp_gate_up", "expert_gate"}) or "mlp_up" not in roles,
        inter=_dim(tensors, "mlp_up", 0) or _dim(tensors, "mlp_gate_up", 0) // 2,
        linears=tuple(sorted({_MODULE_OF_ROLE[t.role] for t in tensors if t.role in _MODULE_OF_ROLE})),
        **dims, **moe)


def decoder_layers(arch: Architecture) -> tuple[DecoderLayer, ...]:
    """Every decoder layer's widths, in order.

    Memoized by the architecture object itself, not its hash: hashing an Architecture
    hashes every tensor (about 1 ms for a 96-layer model, paid on every call under
    ``lru_cache``, and a training search calls this once per pipeline stage per trial).
    The cache holds the object, so its id cannot be reused."""
    hit = _DECODER_LAYERS.get(id(arch))
    if hit is not None and hit[0] is arch:
        return hit[1]
    by_layer: dict[int, list[Tensor]] = {}
    for t in arch.tensors:
        if t.layer is not None:
            by_layer.setdefault(t.layer, []).append(t)
    value = tuple(_layer_of(arch, by_layer.get(i, [])) for i in range(arch.num_hidden_layers))
    if len(_DECODER_LAYERS) >= 64:
        _DECODER_LAYERS.clear()
    _DECODER_LAYERS[id(arch)] = (arch, value)
    return value


_DECODER_LAYERS: dict[int, tuple[Architecture, tuple[DecoderLayer, ...]]] = {}


def stage_layers(arch: Architecture, pp: int, layers_on_stage: int | None, stage: Stage,
                 indices: range | None = None) -> tuple[DecoderLayer, ...]:
    """The stage's layers: ``indices`` when given, else the first (or last)
    ``layers_on_stage`` layers; default ``ceil(L / pp)``."""
    all_layers = decoder_layers(arch)
    if indices is not None:
        return tuple(all_layers[i] for i in indices if 0 <= i < len(all_layers))
    n = math.ceil(len(all_layers) / pp) if layers_on_stage is None else layers_on_stage
    n = max(0, min(n, len(all_layers)))
    return all_layers[:n] if stage == "first" else all_layers[len(all_layers) - n:]
