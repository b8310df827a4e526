"""Activation memory for training: the bytes a forward pass keeps for the backward pass.

Two accountings, chosen by ``impl``:

``"hf"``
    What Hugging Face ``transformers`` 5.x modules save through autograd, counted
    tensor by tensor from the modeling code (``models/llama/modeling_llama.py`` and the
    families copied from it, ``models/gemma2/modeling_gemma2.py``,
    ``integrations/moe.py`` (``grouped_mm_experts_forward``),
    ``integrations/sdpa_attention.py``, ``loss/loss_utils.py``) and PEFT's
    ``tuners/lora/layer.py`` ``Linear.forward``.  ``tests/test_activations_vs_torch.py``
    measures the same bytes with ``torch.autograd.graph.saved_tensors_hooks`` on tiny
    bf16 models of each family in ``HF_MEASURED`` and requires agreement within 5%.
    Default for fine-tuning, LoRA and QLoRA (QLoRA is counted as LoRA: what
    bitsandbytes' 4-bit matmul keeps is not measured; nor is LoRA under ``torch.autocast``,
    which re-casts each fp32 adapter input to bf16).

``"megatron"``
    Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
    Models" (arXiv:2205.05198): the per-layer term list of section 4.1 (attention
    ``11sbh + 5as^2b``, MLP ``19sbh``, layer norms ``4sbh``, eq. 1 ``sbh(34 + 5as/h)``),
    the tensor/sequence-parallel splits (eqs. 2-4, Table 2), selective and full
    recomputation (section 5, Table 2), the 1F1B pipeline factor (section 4.2.3) and the
    input/output-layer terms (section 4.3).  Every term is generalised for
    grouped-query attention and gated or routed MLPs (see ``_megatron_layer``).
    Default for pre-training.

All results are bytes on one GPU, for one pipeline stage.  ``micro_batch`` and ``seq``
describe one micro-batch; ``cp`` splits the sequence, ``tp`` the heads and MLP width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Literal

from rigsize.model.architecture import Architecture
from rigsize.model.tensors import Tensor
from rigsize.units import BITS_PER_BYTE

Impl = Literal["hf", "megatron"]
Recompute = Literal["none", "selective", "full"]
Attn = Literal["flash", "eager"]
Loss = Literal["full", "chunked", "fused"]
Stage = Literal["first", "middle", "last"]

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

HF_MEASURED: frozenset[str] = frozenset({"llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen3_moe", "gemma2"})
"""Families whose hf accounting the tests check against torch; others use the same rules unmeasured."""

_GEMMA_NORM = frozenset({"gemma", "gemma2", "gemma3_text"})        # fp32 multiply by (1 + weight)
_SOFTCAP = frozenset({"gemma2"})                                    # attn + final logit soft-capping on by default
_FP32_ROUTING = frozenset({"mixtral"})                              # routing weights stay fp32 (modeling_mixtral.py)


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapters on frozen base weights, as PEFT's ``LoraConfig`` sets them up.

    ``targets``: module names (``q_proj`` ... ``down_proj``; ``ALL_LINEAR`` for
    ``"all-linear"``).  ``adapter_bits``: 16 when the adapters are in the bf16 model dtype
    (``model.to(torch.bfloat16)`` after ``get_peft_model``); 32 for PEFT's default
    ``autocast_adapter_dtype=True`` on a bf16 base, where every adapted layer casts its
    input to a private fp32 copy.  ``dropout``: ``lora_dropout > 0``; off by default
    (PEFT then uses ``nn.Identity`` and saves no mask).
    """

    targets: frozenset[str] = ALL_LINEAR
    rank: int = 16
    dropout: bool = False
    adapter_bits: int = 16


@dataclass(frozen=True)
class ActivationBreakdown:
    """Activation bytes on one GPU (one pipeline stage).  ``total`` = sum of ``parts``.

    ``per_layer``: bytes each decoder layer on the stage keeps for one micro-batch
    (everything it saves under ``recompute="none"``; its input only under ``"full"``).
    ``layer_parts``: the same bytes summed over the stage's layers, by component.
    ``layers``: ``sum(per_layer) * in_flight_microbatches``.  ``embedding``: token ids,
    rotary tables, embedding dropout masks (first stage).  ``logits_and_loss``: final
    norm, lm_head input, fp32 logits of the loss (last stage; both when ``pp == 1``).
    ``recompute_working_set``: with full recomputation, the one layer whose activations
    are re-materialised during its backward pass (the largest); zero otherwise.
    """

    impl: str
    recompute: str
    attn: str
    per_layer: tuple[int, ...]
    layer_parts: Mapping[str, int]
    in_flight_microbatches: int
    layers: int
    embedding: int
    logits_and_loss: int
    recompute_working_set: int
    total: int
    notes: tuple[str, ...] = field(default=())

    @property
    def parts(self) -> dict[str, int]:
        return {"layers": self.layers, "embedding": self.embedding,
                "logits_and_loss": self.logits_and_loss, "recompute_working_set": self.recompute_working_set}


# ----------------------------------------------------------------------------------
# Layer widths, read from the weight list
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layer:
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


def _dim(tensors: list[Tensor], role: str, axis: int) -> int:
    """A dimension of the layer's weight of this role (biases skipped), 0 if absent."""
    t = next((t for t in tensors if t.role == role and len(t.shape) == 2), None)
    return t.shape[axis] if t is not None else 0


def _layer_of(arch: Architecture, tensors: list[Tensor]) -> _Layer:
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
    return _Layer(
        norms=max(len(hidden_norms), 1),
        gated=bool(roles & {"mlp_gate", "mlp_gate_up", "expert_gate"}) or "mlp_up" not in roles,
        inter=_dim(tensors, "mlp_up", 0) or _dim(tensors, "mlp_gate_up", 0) // 2,
        linears=tuple(sorted({_MODULE_OF_ROLE[t.role] for t in tensors if t.role in _MODULE_OF_ROLE})),
        **dims, **moe)


@lru_cache(maxsize=64)
def _layers(arch: Architecture) -> tuple[_Layer, ...]:
    by_layer: dict[int, list[Tensor]] = {}
    for t in arch.tensors:
        if t.layer is not None:
            by_layer.setdefault(t.layer, []).append(t)
    return tuple(_layer_of(arch, by_layer.get(i, [])) for i in range(arch.num_hidden_layers))


def _stage_layers(arch: Architecture, pp: int, layers_on_stage: int | None, stage: Stage,
                  indices: range | None = None) -> tuple[_Layer, ...]:
    """The stage's layers: ``indices`` when given, else the first (or last)
    ``layers_on_stage`` layers; default ``ceil(L / pp)``."""
    all_layers = _layers(arch)
    if indices is not None:
        return tuple(all_layers[i] for i in indices if 0 <= i < len(all_layers))
    n = math.ceil(len(all_layers) / pp) if layers_on_stage is None else layers_on_stage
    n = max(0, min(n, len(all_layers)))
    return all_layers[:n] if stage == "first" else all_layers[len(all_layers) - n:]


# ----------------------------------------------------------------------------------
# hf: what transformers' modules save through autograd
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Hf:
    """Per-call settings of the hf accounting."""

    h: int
    tokens: int          # tokens of one micro-batch on this GPU: micro_batch * seq / cp
    batch: int
    seq: int             # keys each query attends over (full sequence)
    a: int               # bytes per element of the model dtype
    attn: Attn
    tp: int
    norm: str            # "llama" | "gemma" | "layernorm"
    softcap: bool
    attn_dropout: bool
    routing_bytes: int
    norm_topk: bool
    mask_bytes: int      # dropout mask element: 1 (bool, CUDA fused dropout); the input dtype on CPU
    lora: LoraSpec | None

    @property
    def full_ft(self) -> bool:
        return self.lora is None


def _hf_norm(c: _Hf, width: int, rows: int) -> int:
    """Bytes per token one norm keeps (its output is counted by whichever op keeps it).

    RMSNorm, modeling_llama.py ``LlamaRMSNorm.forward``: the fp32 upcast of the input
    (kept by ``pow`` and ``mul``), ``rsqrt`` of the variance (fp32, one per row), and the
    normalised tensor in the model dtype that ``weight * x`` keeps for the weight
    gradient (not kept when the weight is frozen).  Gemma's RMSNorm
    (modeling_gemma2.py) multiplies in fp32, so that tensor is fp32.  LayerNorm
    (``native_layer_norm``): input, mean and rstd.
    """
    if c.norm == "layernorm":
        return c.a * width + 2 * FP32_BYTES * rows
    weight_grad = ((FP32_BYTES if c.norm == "gemma" else c.a) * width) if c.full_ft else 0
    return FP32_BYTES * width + FP32_BYTES * rows + weight_grad


def _hf_linear_in(c: _Hf, width: int, modules: tuple[str, ...], *, already_kept: bool = False,
                  input_grad: bool = True) -> tuple[int, int]:
    """(model-dtype bytes, LoRA bytes) per token kept for the linear layers reading one input.

    Full fine-tuning: the shared input, once (``MmBackward0`` keeps it for the weight
    gradient).  LoRA, peft ``lora.Linear.forward`` ``base(x) + B(A(dropout(x))) * s``:
    the frozen base keeps nothing; each adapted layer keeps A's input (``x`` itself,
    shared, when the adapter dtype is the model dtype; else a private fp32 cast; with
    dropout, a private dropped-out copy, plus the dropout mask when ``x`` needs a
    gradient) and B's ``rank``-wide input.
    """
    if c.lora is None:
        return (0 if already_kept else c.a * width), 0
    n = sum(1 for m in modules if m in c.lora.targets)
    if n == 0:
        return 0, 0
    ab = c.lora.adapter_bits // BITS_PER_BYTE
    lora = n * c.lora.rank * ab
    if c.lora.dropout:
        return 0, lora + n * width * (ab + (c.mask_bytes if input_grad else 0))
    if ab != c.a:
        return 0, lora + n * width * ab
    return (0 if already_kept else c.a * width), lora


def _trains(c: _Hf, L: _Layer, *modules: str) -> bool:
    """Whether any of these linear layers has trainable weights (its output needs a gradient)."""
    return c.lora is None or any(m in c.lora.targets for m in _present(L, *modules))


def _hf_attention(c: _Hf, L: _Layer, parts: dict[str, int], rg_in: bool) -> bool:
    """Adds the attention block's bytes; returns whether its output needs a gradient.

    ``rg_in``: whether the block's input needs a gradient (False only in the first layer
    under LoRA with a frozen embedding); then q, k and v need one only through their own
    adapters, and each op keeps just what the gradients of its other inputs need.
    """
    T, a, tp = c.tokens, c.a, c.tp
    heads = max(L.heads // tp, 1)
    q, k, v, o_in = L.q // tp, L.k // tp, L.v // tp, L.o_in // tp
    rq = rg_in or _trains(c, L, "q_proj", "qkv_proj", "q_a_proj", "q_b_proj")
    rk = rg_in or _trains(c, L, "k_proj", "qkv_proj", "kv_a_proj_with_mqa", "kv_b_proj")
    rv = rg_in or _trains(c, L, "v_proj", "qkv_proj", "kv_a_proj_with_mqa", "kv_b_proj")
    base, lora = _hf_linear_in(c, c.h, _present(L, "q_proj", "k_proj", "v_proj", "qkv_proj", "q_a_proj",
                                                "kv_a_proj_with_mqa"), input_grad=rg_in)
    att, lo = base, lora
    for width, up in L.latents:   # MLA: RMSNorm on each low-rank latent, read by its up-projection
        base, lora = _hf_linear_in(c, width, _present(L, up))
        att, lo = att + _hf_norm(c, width, 1) + base, lo + lora
    for rows, width, needs in zip(L.qk_norm_rows, (q, k), (rq, rk)):   # Qwen3 q_norm / k_norm
        att += _hf_norm(c, width, max(rows // tp, 1)) if rows and needs else 0
    if c.attn == "flash":
        # SDPA flash kernel (CPU flash kernel; CUDA flash/cuDNN): keeps q, k and v
        # (kv heads, enable_gqa), the output and an fp32 logsumexp per head; the output
        # is o_proj's input (same storage).
        att += (a * (q + k + v + o_in) + FP32_BYTES * heads) if (rq or rk or rv) else 0
        base, lora = _hf_linear_in(c, o_in, _present(L, "o_proj"), already_kept=True, input_grad=rq or rk or rv)
    else:
        # eager_attention_forward: ``q @ k.T`` keeps q (for k's gradient) and the
        # repeat_kv'd k (for q's); softmax keeps its fp32 output, ``probs @ v`` the
        # probabilities in the model dtype (for v's gradient) and the repeated v; Gemma 2's
        # soft-capping tanh keeps its output; attention dropout a mask; o_proj reads a
        # fresh contiguous copy of the output.
        k_rep, v_rep = heads * (L.k // L.kv_heads), heads * (L.v // L.kv_heads)
        rs = rq or rk
        att += a * ((q if rk else 0) + (k_rep if rq else 0) + (v_rep if rs else 0))
        per_score = (FP32_BYTES + (a if c.softcap else 0) + (c.mask_bytes if c.attn_dropout else 0)) if rs else 0
        per_score += a if rv else 0
        parts["attention_scores"] += T * heads * c.seq * per_score
        base, lora = _hf_linear_in(c, o_in, _present(L, "o_proj"), input_grad=rq or rk or rv)
    parts["attention"] += T * (att + base)
    parts["lora"] += T * (lo + lora)
    return rq or rk or rv or _trains(c, L, "o_proj")


def _hf_mlp(c: _Hf, L: _Layer, parts: dict[str, int], rg_in: bool) -> None:
    """gate/up read the normed input; act keeps gate's output, ``act(gate) * up`` keeps
    act's output (for up's gradient) and up's output (for gate's); down keeps the product.
    A plain MLP: act keeps fc1's output, fc2 keeps act's output."""
    T, a = c.tokens, c.a
    inter = L.inter // c.tp
    shared_input = L.norms == 1   # parallel attention + MLP (Cohere, Phi): one normed input, counted once
    base, lora = _hf_linear_in(c, c.h, _present(L, "gate_proj", "up_proj", "gate_up_proj"),
                               already_kept=shared_input, input_grad=rg_in)
    r_gate = rg_in or _trains(c, L, "gate_proj", "gate_up_proj")
    r_up = rg_in or _trains(c, L, "up_proj", "gate_up_proj")
    if L.gated:
        inner = a * inter * ((1 if r_gate else 0) + (1 if r_up else 0) + (1 if r_gate else 0))
    else:
        inner = a * inter if r_up else 0
    down, down_lora = _hf_linear_in(c, inter, _present(L, "down_proj"), input_grad=r_gate or r_up)
    parts["mlp"] += T * (base + inner + down)
    parts["lora"] += T * (lora + down_lora)


def _hf_moe(c: _Hf, L: _Layer, parts: dict[str, int]) -> None:
    """A routed-expert block per transformers' ``grouped_mm_experts_forward`` (integrations/moe.py).

    Router: ``F.linear`` keeps the normed input (trainable router), softmax its fp32
    output, topk its int64 indices, the top-k renormalisation (Mixtral; Qwen MoE with
    ``norm_topk_prob``) the sum and a copy of the values.  Per routed (token, expert)
    copy: three int64 index tensors (gather, weight gather, un-permute), the gathered
    input and the down input (for the expert weight gradients), the fused gate_up output
    and act's output, the expert output and the routing weight (kept by their product).
    """
    T, a, h, k = c.tokens, c.a, c.h, L.top_k
    inter = L.expert_inter // c.tp
    router = FP32_BYTES * L.experts + INDEX_BYTES * k + ((FP32_BYTES + FP32_BYTES * k) if c.norm_topk else 0)
    router += a * h if c.full_ft else 0
    per_copy = 3 * INDEX_BYTES + a * (2 * inter + inter) + a * h + c.routing_bytes
    per_copy += a * (h + inter) if c.full_ft else 0
    parts["mlp"] += T * (router + k * per_copy) + OFFSET_BYTES * L.experts
    if L.shared_inter:   # shared expert: a dense gated MLP beside the routed ones (input shared with the router)
        sh = L.shared_inter // c.tp
        parts["mlp"] += T * (3 * a * sh + (a * sh if c.full_ft else 0))


def _present(L: _Layer, *modules: str) -> tuple[str, ...]:
    return tuple(m for m in modules if m in L.linears)


def _hf_layer(c: _Hf, L: _Layer, rg_in: bool) -> dict[str, int]:
    """Bytes one decoder layer keeps for one micro-batch, by component.

    ``rg_in`` is False only for the first layer under LoRA with a frozen embedding (no
    ``enable_input_require_grads``): its input norm then keeps nothing.
    """
    parts = {"norms": 0, "attention": 0, "attention_scores": 0, "mlp": 0, "lora": 0}
    rg_mid = _hf_attention(c, L, parts, rg_in) or rg_in
    # Norms before the attention keep nothing without rg_in; the others (after it) need rg_mid.
    counted = (1 if rg_in else 0) + ((L.norms - 1) if rg_mid else 0)
    parts["norms"] = c.tokens * counted * _hf_norm(c, c.h, 1)
    if c.norm == "gemma":   # (1 + weight.float()), kept by the fp32 multiply: once per norm
        parts["norms"] += counted * FP32_BYTES * c.h
    if L.experts:
        _hf_moe(c, L, parts)
    else:
        _hf_mlp(c, L, parts, rg_mid)
    return parts


def _hf_embedding(c: _Hf, arch: Architecture, recompute: Recompute, first: bool = True) -> int:
    """Inputs kept once per forward: on the first stage, the token ids
    ``EmbeddingBackward0`` keeps (trainable embedding) and Gemma's scalar embed scale; on
    every stage that runs layers, the rotary cos/sin tables ``(1, seq, head_dim)`` that
    every layer's ``q * cos`` / ``rotate_half(q) * sin`` keep (each stage computes its
    own).  Under gradient checkpointing the checkpoints also hold each layer's keyword
    inputs alive: ``position_ids`` and, for eager attention, the additive
    ``(batch, 1, seq, seq)`` mask in the model dtype (one per attention type: full,
    sliding)."""
    seq_local = c.tokens // c.batch
    b = INDEX_BYTES * c.tokens if c.full_ft and first else 0
    if arch.model_type in _GEMMA_NORM and c.full_ft and first:
        b += c.a
    rope_dim = arch.head_dim if arch.attention == "standard" else 0
    b += 2 * c.a * seq_local * rope_dim
    if recompute == "full":
        b += INDEX_BYTES * seq_local
        if c.attn == "eager":
            kinds = len({w is None for w in arch.layer_windows}) or 1
            b += kinds * c.batch * seq_local * c.seq * c.a
    return b


def _hf_output(c: _Hf, arch: Architecture) -> int:
    """Final norm, lm_head input, the fp32 log-softmax output of ``cross_entropy`` (the
    loss upcasts the logits: loss_utils.py ``ForCausalLMLoss``), the int64 shifted labels
    and the scalar ``total_weight`` kept by ``nll_loss``; Gemma 2's final soft-capping
    keeps its tanh output.  The bf16 logits the model returns are not kept by autograd
    (they live as long as the caller holds the output) and are not counted."""
    T = c.tokens
    lm_head, lora = _hf_linear_in(c, c.h, ("lm_head",))
    per_token = _hf_norm(c, c.h, 1) + lm_head + lora
    per_token += arch.vocab_size * (FP32_BYTES + (c.a if c.softcap else 0))
    # The labels are padded by one and shifted; with one sequence the shifted slice is
    # already contiguous and keeps the padded storage alive (one extra id).
    labels = INDEX_BYTES * (T + (1 if c.batch == 1 else 0))
    gemma = FP32_BYTES * c.h if c.norm == "gemma" else 0   # (1 + weight.float()) of the final norm
    return T * per_token + labels + FP32_BYTES + gemma


def _hf_sac_op(c: _Hf, L: _Layer) -> tuple[int, int]:
    """(saved, already in the full set) bytes per token of one block under torchtitan's per-op
    selective activation checkpointing (``selective_ac_option = "op"``).

    torchtitan ``parallelize_llama.py`` (9dec370) ``_custom_policy``: MUST_SAVE the output of
    every op in ``_save_list`` -- ``aten.mm`` "except every second mm" (a per-block counter:
    the 1st, 3rd, 5th... mm of the forward), ``_scaled_dot_product_flash_attention`` /
    ``_efficient_attention`` (all outputs: the attention output and its fp32 logsumexp) --
    and PREFER_RECOMPUTE everything else.  In a Llama block the mms run wq, wk, wv, wo, w1
    (gate), w3 (up), w2 (down) (``models/llama/model.py``), so wq, wv, w1 and w2 are kept.
    The attention output, v and the gate output are also in the full saved set
    (``_hf_attention``/``_hf_mlp``), so a recomputed block re-materialises everything else.
    Dense blocks only: routed experts run grouped mms, which that list does not hold."""
    a, tp = c.a, c.tp
    widths: list[int] = []
    for m, w in (("q_proj", L.q), ("k_proj", L.k), ("v_proj", L.v), ("qkv_proj", L.q + L.k + L.v),
                 ("o_proj", c.h * tp), ("gate_proj", L.inter), ("up_proj", L.inter),
                 ("gate_up_proj", 2 * L.inter), ("down_proj", c.h * tp)):
        if m in L.linears and not (L.experts and m in ("gate_proj", "up_proj", "gate_up_proj", "down_proj")):
            widths.append(w // tp)
    kept_mm = sum(w for j, w in enumerate(widths) if j % 2 == 0)   # mm count 1, 3, 5...: saved
    attention = a * L.o_in // tp + FP32_BYTES * max(L.heads // tp, 1)
    overlap = attention + a * (L.v + (L.inter if not L.experts else 0)) // tp
    return a * kept_mm + attention, overlap


def _hf(arch: Architecture, layers: tuple[_Layer, ...], c: _Hf, recompute: Recompute, stage_first: bool,
        stage_last: bool, sac: str = "none", residual_bytes: int | None = None
        ) -> tuple[list[int], dict[str, int], int, int, int]:
    """``sac``: what ``recompute="selective"`` means (``Recipe.selective_ac``): "op" (torchtitan
    per-op SAC, ``_hf_sac_op``) or "N" (torchtitan ``selective_ac_option = N``: every N-th block
    is checkpointed whole, ``ptd_checkpoint_wrapper._count % ac_freq == 0``, the others keep
    everything).  ``residual_bytes``: element size of the residual stream, the checkpointed
    layer inputs (default: the model dtype; fp32 under PEFT's QLoRA upcast, see
    ``activation_bytes``)."""
    rb = c.a if residual_bytes is None else residual_bytes
    per_layer, parts, work = [], {}, []
    for i, L in enumerate(layers):
        needs_grad = c.full_ft or not stage_first or i > 0 or recompute == "full"
        p = _hf_layer(c, L, needs_grad)
        whole = sum(p.values())
        whole_block = recompute == "full" or (recompute == "selective" and sac.isdigit() and (i + 1) % int(sac) == 0)
        if recompute == "selective" and sac == "op":
            saved, overlap = _hf_sac_op(c, L)
            p = {"layer_input": c.tokens * rb * c.h, "sac_saved": c.tokens * saved}
            work.append(whole - c.tokens * overlap)
        elif whole_block:   # torch.utils.checkpoint keeps the layer input only
            p = {"layer_input": c.tokens * rb * c.h}
            work.append(whole)
        for key, val in p.items():
            parts[key] = parts.get(key, 0) + val
        per_layer.append(sum(p.values()))
    working = max(work, default=0)   # one block re-materialised during its backward
    emb = _hf_embedding(c, arch, recompute, stage_first) if (stage_first or layers) else 0
    out = _hf_output(c, arch) if stage_last else 0
    return per_layer, parts, emb, out, working


# ----------------------------------------------------------------------------------
# megatron: Korthikanti et al. 2022, generalised term by term
# ----------------------------------------------------------------------------------

def _megatron_layer(L: _Layer, h: int, a: int, attn: Attn, recompute: Recompute, mask: int,
                    s: int) -> tuple[dict[str, float], dict[str, float]]:
    """Bytes per token of one layer: (replicated across tp unless sp, split by tp).

    Korthikanti et al. 2022 sec. 4.1 (2-byte activations, 1-byte masks; MHA, MLP 4h):
      attention 11sbh = QKV input 2 + Q 2 + K 2 + V 2 + o_proj input 2 + dropout mask 1,
                plus 5as^2b = softmax output 2 + its dropout mask 1 + dropout output 2;
      MLP 19sbh = fc1 input 2 + GeLU input 8 + fc2 input 8 + dropout mask 1;
      layer norms 4sbh = two inputs of 2.
    Generalised: Q and the o_proj input are ``heads*head_dim`` wide, K and V
    ``kv_heads*head_dim`` (GQA); a plain MLP of width I keeps GeLU and fc2 inputs (2I);
    a gated one keeps the fused SwiGLU input (2I, Megatron-Core ``bias_swiglu``) and the
    fc2 input (I); a routed MLP keeps every per-expert term top_k times, plus the
    permuted fc1 inputs and fp32 router probabilities.  Sec. 4.2.1 (eq. 2): layer-norm
    inputs, the two dropout masks, the QKV and fc1 inputs (10sbh) stay replicated under
    tensor parallelism; the rest (24sbh + 5as^2b) is split.  Flash attention keeps no
    score matrix, only an fp32 logsumexp per head; selective recomputation (sec. 5)
    recomputes the core attention, so neither is kept.
    """
    dropout = mask > 0
    rep = {"norms": 2 * a * h, "attention": a * h + mask * h, "mlp": a * h + mask * h}
    split = {"attention": a * (2 * L.q + L.k + L.v), "attention_scores": 0.0, "mlp": 0.0}
    if recompute == "none":
        if attn == "eager":
            split["attention_scores"] = L.heads * s * (a + (mask + a if dropout else 0))
        else:
            split["attention_scores"] = FP32_BYTES * L.heads
    if L.experts:
        k, inter = L.top_k, L.expert_inter
        split["mlp"] = k * (a * h + (3 if L.gated else 2) * a * inter) + FP32_BYTES * L.experts
        split["mlp"] += 3 * a * L.shared_inter if L.shared_inter else 0
    else:
        split["mlp"] = (3 if L.gated else 2) * a * L.inter
    return rep, split


def _megatron(arch: Architecture, layers: tuple[_Layer, ...], *, tokens: int, seq: int, a: int, attn: Attn,
              recompute: Recompute, dropout: bool, mask: int, tp: int, sp: bool, stage_first: bool,
              stage_last: bool, in_flight: int) -> tuple[list[int], dict[str, int], int, int, int]:
    h = arch.hidden_size
    rep_div = tp if sp else 1
    per_layer, parts, full = [], {}, []
    for L in layers:
        rep, split = _megatron_layer(L, h, a, attn, recompute if recompute != "full" else "none",
                                     mask if dropout else 0, seq)
        p = {key: round(tokens * (rep.get(key, 0) / rep_div + split.get(key, 0) / tp)) for key in (*rep, *split)}
        full.append(sum(p.values()))
        if recompute == "full":   # Table 2: 2sbh per layer (the input); /t with sp (sec. 5)
            p = {"layer_input": round(tokens * a * h / rep_div)}
        for key, val in p.items():
            parts[key] = parts.get(key, 0) + val
        per_layer.append(sum(p.values()))
    working = max(full, default=0) if recompute == "full" else 0
    # Sec. 4.3: embedding dropout mask sbh/t per in-flight micro-batch (sbhp/t on the
    # first stage); final layer norm input 2sbh/t, output projection input 2sbh/t, fp32
    # logits for the cross entropy 4sbv/t (last stage).
    emb = round(in_flight * tokens * mask * h / rep_div) if (stage_first and dropout) else 0
    out = round(tokens * (2 * a * h / rep_div + FP32_BYTES * arch.vocab_size / tp)) if stage_last else 0
    return per_layer, parts, emb, out, working


def _loss_logits(tokens: int, vocab: int, a: int, loss: Loss, chunks: int, impl_hf: bool,
                 shift_copy: bool = False) -> int:
    """Bytes the cross-entropy keeps for the logits of one micro-batch.

    ``"full"``: the fp32 log-softmax output of every token (transformers' ``ForCausalLMLoss``
    upcasts the logits; Korthikanti et al. sec. 4.3: 4sbv), with hf's backward transient of two
    more fp32 copies (``_hf_output``; Megatron's vocab-parallel cross-entropy works in place).  ``"chunked"`` (torchtune
    ``CEWithChunkedOutputLoss``): the lm_head's model-dtype logits of every token, upcast to
    fp32 one chunk of ``tokens / chunks`` at a time.  ``"fused"`` (Unsloth with Apple's Cut
    Cross-Entropy, Wijmans et al. 2024, arXiv:2411.09009): the logits are never materialised;
    one fp32 log-sum-exp per token is kept.

    ``shift_copy`` (transformers < 4.49, before PR #35646): ``ForCausalLMLoss`` runs
    ``logits = logits.float()`` then ``shift_logits = logits[..., :-1, :].contiguous()``, so at
    the forward pass's last op ``log_softmax`` the model-dtype logits the model returns, the fp32
    upcast, its shifted contiguous copy and the fp32 log-softmax output coexist: ``a + 12`` bytes
    per logit, above the backward's 12."""
    if loss == "fused":
        return FP32_BYTES * tokens
    if loss == "chunked":   # + one chunk's fp32 upcast
        return tokens * vocab * a + math.ceil(tokens / max(chunks, 1)) * vocab * FP32_BYTES
    if impl_hf and shift_copy:
        return tokens * vocab * max(3 * FP32_BYTES, a + 3 * FP32_BYTES)
    return tokens * vocab * FP32_BYTES * (3 if impl_hf else 1)


# ----------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------

def activation_bytes(
    arch: Architecture, *, micro_batch: int, seq: int, impl: Impl = "hf", recompute: Recompute = "none",
    attn: Attn = "flash", lora: LoraSpec | None = None, tp: int = 1, sp: bool = False, cp: int = 1,
    pp: int = 1, layers_on_stage: int | None = None, in_flight_microbatches: int | None = None,
    stage: Stage = "first", dtype_bits: int = 16, dropout: bool | None = None, softcap: bool | None = None,
    mask_bits: int = 8, layers: range | None = None, first: bool | None = None, last: bool | None = None,
    loss: Loss = "full", loss_chunks: int = 1, offload: bool = False, loss_transient: bool = False,
    selective_ac: str = "none", residual_bits: int | None = None, loss_shift_copy: bool = False,
) -> ActivationBreakdown:
    """Bytes of activations kept for the backward pass on one GPU of pipeline ``stage``.

    The stage's parts: the first stage keeps the embedding's inputs, the last the final
    norm, lm_head input, logits and loss, a middle stage neither (``stage="middle"``);
    with ``pp == 1`` the one stage keeps both.  ``layers`` (decoder layer indices) and
    ``first``/``last`` describe a stage exactly (``rigsize.plan.layout.Stage``) and take
    precedence over ``stage`` and ``layers_on_stage``.

    ``in_flight_microbatches``: micro-batches whose activations the stage holds at once;
    default 1F1B (Narayanan et al. 2021; Korthikanti et al. sec. 4.2.3): ``pp`` on the
    first stage, 1 on the last (pass ``min(pp, micro-batches)`` when there are fewer).
    ``dropout``: hidden and attention dropout (masks); default per impl: True for
    megatron (the paper's GPT-3 setting), False for hf (transformers configs default
    ``attention_dropout=0.0``; only eager attention keeps a mask).  ``softcap``: Gemma 2
    logit soft-capping (default on for gemma2, as its config class sets).
    ``recompute="selective"``: transformers has no selective recomputation, so with
    ``selective_ac="none"`` it counts as none under hf.
    ``mask_bits``: one dropout-mask element; 8 (bool) for CUDA's fused dropout, which is
    what Korthikanti et al. count; torch's CPU dropout keeps its mask in the input dtype.
    ``loss`` / ``loss_chunks``: how the cross-entropy holds the logits (``_loss_logits``).
    ``offload``: saved activations move to host memory as the forward pass produces them
    (torchtune ``enable_activation_offloading``, Unsloth's offloaded gradient checkpointing):
    the GPU keeps one layer's worth in flight, not every layer's.
    ``loss_transient``: add what the loss's backward allocates beside the saved tensors (hf's
    full fp32 loss: nll_loss's fp32 gradient of the log-probabilities and
    ``_log_softmax_backward_data``'s fp32 gradient of the logits, both [tokens, vocab], while
    the saved output is alive; PyTorch ``derivatives.yaml``): the memory peak, not a saved tensor.
    ``loss_shift_copy``: transformers < 4.49's extra fp32 copy of the shifted logits (``_loss_logits``).
    ``selective_ac`` (hf): what ``recompute="selective"`` means: "none" (counted as none), "op"
    (torchtitan per-op SAC) or "N" (every N-th block checkpointed); see ``_hf`` and ``_hf_sac_op``.
    ``residual_bits`` (hf): the residual stream's element size, default ``dtype_bits``.  PEFT's
    ``prepare_model_for_kbit_training`` casts the embedding to fp32 (peft ``utils/other.py``:
    "cast all non INT8 parameters to fp32"), so ``embed_tokens`` returns fp32 and every
    ``hidden_states = residual + hidden_states`` of modeling_llama.py ``LlamaDecoderLayer``
    promotes to fp32 (torch type promotion): each checkpointed layer input is fp32.
    """
    checks = (("micro_batch", micro_batch), ("seq", seq), ("tp", tp), ("cp", cp), ("pp", pp),
              ("in_flight_microbatches", in_flight_microbatches or 1))
    for name, val in checks:
        if val < 1:
            raise ValueError(f"{name} must be >= 1, got {val}")
    if dtype_bits % BITS_PER_BYTE or dtype_bits <= 0:
        raise ValueError(f"dtype_bits must be a whole number of bytes, got {dtype_bits}")
    notes: list[str] = []
    a = dtype_bits // BITS_PER_BYTE
    seq_local = math.ceil(seq / cp)
    tokens = micro_batch * seq_local
    first = (stage == "first" or pp == 1) if first is None else first
    last = (stage == "last" or pp == 1) if last is None else last
    in_flight = in_flight_microbatches or (pp if first else 1)
    stage_layers = _stage_layers(arch, pp, layers_on_stage, stage, layers)
    drop = (impl == "megatron") if dropout is None else dropout
    if impl == "hf":
        if recompute == "selective" and selective_ac == "op" and lora is not None:
            notes.append("per-op selective checkpointing modelled for full-parameter training: LoRA's mms not counted")
        if recompute == "selective" and selective_ac == "none":
            notes.append("transformers has no selective recomputation: counted as recompute='none'")
            recompute = "none"
        if sp:
            notes.append("transformers' tensor parallelism has no sequence parallelism: sp ignored")
        if tp > 1:
            notes.append("hf with tp > 1: head- and intermediate-wide tensors divided by tp, the rest "
                         "replicated (transformers' tp_plan); not measured")
        if arch.model_type not in HF_MEASURED:
            notes.append(f"hf accounting for {arch.model_type} follows the measured families' rules "
                         f"({', '.join(sorted(HF_MEASURED))}) but was not measured itself")
        norm = ("gemma" if arch.model_type in _GEMMA_NORM else
                "layernorm" if any(t.role == "norm" and t.name.endswith(".bias") for t in arch.tensors) else "llama")
        c = _Hf(h=arch.hidden_size, tokens=tokens, batch=micro_batch, seq=seq, a=a, attn=attn, tp=tp, norm=norm,
                softcap=(arch.model_type in _SOFTCAP) if softcap is None else softcap, attn_dropout=drop,
                routing_bytes=FP32_BYTES if arch.model_type in _FP32_ROUTING else a,
                norm_topk=True, mask_bytes=mask_bits // BITS_PER_BYTE, lora=lora)
        per_layer, parts, emb, out, working = _hf(arch, stage_layers, c, recompute, first, last, sac=selective_ac,
                                                  residual_bytes=None if residual_bits is None
                                                  else residual_bits // BITS_PER_BYTE)
    else:
        if lora is not None:
            notes.append("megatron accounting ignores LoRA (frozen weights keep the same activations)")
        if dropout is None:
            notes.append("dropout masks counted as in Korthikanti et al. (GPT-3 setting); pass dropout=False "
                         "for recipes with hidden and attention dropout 0")
        if attn == "flash" and recompute == "none":
            notes.append("flash attention keeps no s x s scores: the 5as/h term of eq. 1 becomes an fp32 "
                         "logsumexp per head, as under selective recomputation")
        per_layer, parts, emb, out, working = _megatron(
            arch, stage_layers, tokens=tokens, seq=seq, a=a, attn=attn, recompute=recompute, dropout=drop,
            mask=mask_bits // BITS_PER_BYTE, tp=tp, sp=sp, stage_first=first, stage_last=last,
            in_flight=in_flight)
    if last and (loss != "full" or loss_transient):   # replace the fp32 logits of the whole micro-batch
        vocab = arch.vocab_size // tp if impl == "megatron" else arch.vocab_size
        hf = impl == "hf" and loss_transient
        out += (_loss_logits(tokens, vocab, a, loss, loss_chunks, hf, loss_shift_copy)
                - _loss_logits(tokens, vocab, a, "full", 1, False))
    in_layers = max(per_layer, default=0) if offload else sum(per_layer) * in_flight
    return ActivationBreakdown(
        impl=impl, recompute=recompute, attn=attn, per_layer=tuple(per_layer),
        layer_parts=MappingProxyType(parts), in_flight_microbatches=in_flight, layers=in_layers,
        embedding=emb, logits_and_loss=out, recompute_working_set=working,
        total=in_layers + emb + out + working, notes=tuple(notes))
