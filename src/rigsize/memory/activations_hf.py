"""Activation memory as Hugging Face ``transformers`` keeps it: the tensors its modules
save through autograd for the backward pass, counted one by one from the modeling code.

Sources: ``transformers`` 5.x ``models/llama/modeling_llama.py`` and the families copied
from it, ``models/gemma2/modeling_gemma2.py``, ``integrations/moe.py``
(``grouped_mm_experts_forward``), ``integrations/sdpa_attention.py``,
``loss/loss_utils.py``; PEFT's ``tuners/lora/layer.py`` ``Linear.forward``; torchtitan's
selective activation checkpointing.  ``tests/test_activations_vs_torch.py`` measures the
same bytes with ``torch.autograd.graph.saved_tensors_hooks`` on tiny bf16 models of each
family in ``HF_MEASURED`` and requires agreement within 5%.  QLoRA is counted as LoRA
(what bitsandbytes' 4-bit matmul keeps is not measured; nor is LoRA under
``torch.autocast``, which re-casts each fp32 adapter input to bf16).

``hf_notes`` says what the accounting cannot model; ``hf_stage`` counts one stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigsize.memory.activation_inputs import (
    ALL_LINEAR,
    FP32_BYTES,
    INDEX_BYTES,
    OFFSET_BYTES,
    Attn,
    DecoderLayer,
    Recompute,
    StageRun,
    StageTerms,
    present,
)
from rigsize.model.architecture import Architecture
from rigsize.units import BITS_PER_BYTE

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


def _norm(c: _Hf, width: int, rows: int) -> int:
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


def _linear_in(c: _Hf, width: int, modules: tuple[str, ...], *, already_kept: bool = False,
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


def _trains(c: _Hf, L: DecoderLayer, *modules: str) -> bool:
    """Whether any of these linear layers has trainable weights (its output needs a gradient)."""
    return c.lora is None or any(m in c.lora.targets for m in present(L, *modules))


def _attention(c: _Hf, L: DecoderLayer, parts: dict[str, int], rg_in: bool) -> bool:
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
    base, lora = _linear_in(c, c.h, present(L, "q_proj", "k_proj", "v_proj", "qkv_proj", "q_a_proj",
                                                "kv_a_proj_with_mqa"), input_grad=rg_in)
    att, lo = base, lora
    for width, up in L.latents:   # MLA: RMSNorm on each low-rank latent, read by its up-projection
        base, lora = _linear_in(c, width, present(L, up))
        att, lo = att + _norm(c, width, 1) + base, lo + lora
    for rows, width, needs in zip(L.qk_norm_rows, (q, k), (rq, rk)):   # Qwen3 q_norm / k_norm
        att += _norm(c, width, max(rows // tp, 1)) if rows and needs else 0
    if c.attn == "flash":
        # SDPA flash kernel (CPU flash kernel; CUDA flash/cuDNN): keeps q, k and v
        # (kv heads, enable_gqa), the output and an fp32 logsumexp per head; the output
        # is o_proj's input (same storage).
        att += (a * (q + k + v + o_in) + FP32_BYTES * heads) if (rq or rk or rv) else 0
        base, lora = _linear_in(c, o_in, present(L, "o_proj"), already_kept=True, input_grad=rq or rk or rv)
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
        base, lora = _linear_in(c, o_in, present(L, "o_proj"), input_grad=rq or rk or rv)
    parts["attention"] += T * (att + base)
    parts["lora"] += T * (lo + lora)
    return rq or rk or rv or _trains(c, L, "o_proj")


def _mlp(c: _Hf, L: DecoderLayer, parts: dict[str, int], rg_in: bool) -> None:
    """gate/up read the normed input; act keeps gate's output, ``act(gate) * up`` keeps
    act's output (for up's gradient) and up's output (for gate's); down keeps the product.
    A plain MLP: act keeps fc1's output, fc2 keeps act's output."""
    T, a = c.tokens, c.a
    inter = L.inter // c.tp
    shared_input = L.norms == 1   # parallel attention + MLP (Cohere, Phi): one normed input, counted once
    base, lora = _linear_in(c, c.h, present(L, "gate_proj", "up_proj", "gate_up_proj"),
                               already_kept=shared_input, input_grad=rg_in)
    r_gate = rg_in or _trains(c, L, "gate_proj", "gate_up_proj")
    r_up = rg_in or _trains(c, L, "up_proj", "gate_up_proj")
    if L.gated:
        inner = a * inter * ((1 if r_gate else 0) + (1 if r_up else 0) + (1 if r_gate else 0))
    else:
        inner = a * inter if r_up else 0
    down, down_lora = _linear_in(c, inter, present(L, "down_proj"), input_grad=r_gate or r_up)
    parts["mlp"] += T * (base + inner + down)
    parts["lora"] += T * (lora + down_lora)


def _moe(c: _Hf, L: DecoderLayer, parts: dict[str, int]) -> None:
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


def _layer(c: _Hf, L: DecoderLayer, rg_in: bool) -> dict[str, int]:
    """Bytes one decoder layer keeps for one micro-batch, by component.

    ``rg_in`` is False only for the first layer under LoRA with a frozen embedding (no
    ``enable_input_require_grads``): its input norm then keeps nothing.
    """
    parts = {"norms": 0, "attention": 0, "attention_scores": 0, "mlp": 0, "lora": 0}
    rg_mid = _attention(c, L, parts, rg_in) or rg_in
    # Norms before the attention keep nothing without rg_in; the others (after it) need rg_mid.
    counted = (1 if rg_in else 0) + ((L.norms - 1) if rg_mid else 0)
    parts["norms"] = c.tokens * counted * _norm(c, c.h, 1)
    if c.norm == "gemma":   # (1 + weight.float()), kept by the fp32 multiply: once per norm
        parts["norms"] += counted * FP32_BYTES * c.h
    if L.experts:
        _moe(c, L, parts)
    else:
        _mlp(c, L, parts, rg_mid)
    return parts


def _embedding(c: _Hf, arch: Architecture, recompute: Recompute, first: bool = True) -> int:
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


def _output(c: _Hf, arch: Architecture, head_copy: bool = False) -> int:
    """Final norm, lm_head input, the fp32 log-softmax output of ``cross_entropy`` (the
    loss upcasts the logits: loss_utils.py ``ForCausalLMLoss``), the int64 shifted labels
    and the scalar ``total_weight`` kept by ``nll_loss``; Gemma 2's final soft-capping
    keeps its tanh output.  The bf16 logits the model returns are not kept by autograd
    (they live as long as the caller holds the output) and are not counted.

    ``head_copy``: an fp32 lm_head weight (PEFT's QLoRA upcast) under bf16 autocast.
    ``F.linear`` is on autocast's lower-precision list, so it runs on a bf16 cast of the
    weight; autocast caches casts only of leaf tensors that require grad
    (aten/src/ATen/autocast_mode.cpp ``cached_cast``: ``arg.requires_grad() && arg.is_leaf()``),
    and the frozen head does not, so the cast is a fresh vocab x hidden bf16 tensor, which
    ``MmBackward`` keeps (``mat2``) because the lm_head input needs a gradient
    (tools/autograd/derivatives.yaml, ``mm``: ``self: mm_mat1_backward(grad, mat2, ...)``).
    It lives until the lm_head's backward, beside the loss's logits."""
    T = c.tokens
    lm_head, lora = _linear_in(c, c.h, ("lm_head",))
    per_token = _norm(c, c.h, 1) + lm_head + lora
    per_token += arch.vocab_size * (FP32_BYTES + (c.a if c.softcap else 0))
    # The labels are padded by one and shifted; with one sequence the shifted slice is
    # already contiguous and keeps the padded storage alive (one extra id).
    labels = INDEX_BYTES * (T + (1 if c.batch == 1 else 0))
    gemma = FP32_BYTES * c.h if c.norm == "gemma" else 0   # (1 + weight.float()) of the final norm
    head = c.a * arch.vocab_size * c.h // c.tp if head_copy else 0
    return T * per_token + labels + FP32_BYTES + gemma + head


def _sac_op(c: _Hf, L: DecoderLayer) -> tuple[int, int]:
    """(saved, already in the full set) bytes per token of one block under torchtitan's per-op
    selective activation checkpointing (``selective_ac_option = "op"``).

    torchtitan ``parallelize_llama.py`` (9dec370) ``_custom_policy``: MUST_SAVE the output of
    every op in ``_save_list`` -- ``aten.mm`` "except every second mm" (a per-block counter:
    the 1st, 3rd, 5th... mm of the forward), ``_scaled_dot_product_flash_attention`` /
    ``_efficient_attention`` (all outputs: the attention output and its fp32 logsumexp) --
    and PREFER_RECOMPUTE everything else.  In a Llama block the mms run wq, wk, wv, wo, w1
    (gate), w3 (up), w2 (down) (``models/llama/model.py``), so wq, wv, w1 and w2 are kept.
    The attention output, v and the gate output are also in the full saved set
    (``_attention``/``_mlp``), so a recomputed block re-materialises everything else.
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


# ----------------------------------------------------------------------------------
# One stage
# ----------------------------------------------------------------------------------

def hf_notes(arch: Architecture, *, recompute: Recompute, selective_ac: str, lora: LoraSpec | None,
             tp: int, sp: bool) -> tuple[Recompute, list[str]]:
    """The recomputation the accounting counts, and what it says it cannot model:
    transformers has no selective recomputation (without ``selective_ac`` it counts as
    none) and no sequence parallelism; its ``tp_plan`` is not measured; families outside
    ``HF_MEASURED`` follow the measured families' rules."""
    notes: list[str] = []
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
    return recompute, notes


def _settings(arch: Architecture, run: StageRun, lora: LoraSpec | None, softcap: bool | None) -> _Hf:
    """The family's norm (Gemma's fp32 ``1 + weight``, LayerNorm where norms have biases,
    else Llama's RMSNorm), soft-capping and routing-weight dtype, with the run's sizes."""
    norm = ("gemma" if arch.model_type in _GEMMA_NORM else
            "layernorm" if any(t.role == "norm" and t.name.endswith(".bias") for t in arch.tensors) else "llama")
    return _Hf(h=arch.hidden_size, tokens=run.tokens, batch=run.batch, seq=run.seq, a=run.a, attn=run.attn,
               tp=run.tp, norm=norm, softcap=(arch.model_type in _SOFTCAP) if softcap is None else softcap,
               attn_dropout=run.dropout, routing_bytes=FP32_BYTES if arch.model_type in _FP32_ROUTING else run.a,
               norm_topk=True, mask_bytes=run.mask_bytes, lora=lora)


def hf_stage(arch: Architecture, layers: tuple[DecoderLayer, ...], run: StageRun, *, lora: LoraSpec | None,
             softcap: bool | None = None, selective_ac: str = "none", residual_bits: int | None = None,
             head_copy: bool = False) -> StageTerms:
    """What one GPU of the stage keeps for one micro-batch, layer by layer, plus the
    embedding's inputs (first stage) and the output side (last stage).

    ``selective_ac``: what ``recompute="selective"`` means (``Recipe.selective_ac``): "op"
    (torchtitan per-op SAC, ``_sac_op``) or "N" (torchtitan ``selective_ac_option = N``:
    every N-th block is checkpointed whole, ``ptd_checkpoint_wrapper._count % ac_freq ==
    0``, the others keep everything).  ``residual_bits``: element size of the residual
    stream, the checkpointed layer inputs (default: the model dtype; fp32 under PEFT's
    QLoRA upcast, see ``rigsize.memory.activations.activation_bytes``).  ``head_copy``: autocast's
    bf16 copy of an fp32 lm_head, kept for the backward (``_output``)."""
    c = _settings(arch, run, lora, softcap)
    recompute, sac = run.recompute, selective_ac
    rb = c.a if residual_bits is None else residual_bits // BITS_PER_BYTE
    per_layer, parts, work = [], {}, []
    for i, L in enumerate(layers):
        needs_grad = c.full_ft or not run.first or i > 0 or recompute == "full"
        p = _layer(c, L, needs_grad)
        whole = sum(p.values())
        whole_block = recompute == "full" or (recompute == "selective" and sac.isdigit() and (i + 1) % int(sac) == 0)
        if recompute == "selective" and sac == "op":
            saved, overlap = _sac_op(c, L)
            p = {"layer_input": c.tokens * rb * c.h, "sac_saved": c.tokens * saved}
            work.append(whole - c.tokens * overlap)
        elif whole_block:   # torch.utils.checkpoint keeps the layer input only
            p = {"layer_input": c.tokens * rb * c.h}
            work.append(whole)
        for key, val in p.items():
            parts[key] = parts.get(key, 0) + val
        per_layer.append(sum(p.values()))
    working = max(work, default=0)   # one block re-materialised during its backward
    emb = _embedding(c, arch, recompute, run.first) if (run.first or layers) else 0
    out = _output(c, arch, head_copy) if run.last else 0
    return StageTerms(per_layer, parts, emb, out, working)
