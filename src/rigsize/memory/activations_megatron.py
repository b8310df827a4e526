"""Activation memory as Korthikanti et al. 2022 count it for Megatron-LM.

"Reducing Activation Recomputation in Large Transformer Models" (arXiv:2205.05198): the
per-layer term list of section 4.1 (attention ``11sbh + 5as^2b``, MLP ``19sbh``, layer
norms ``4sbh``, eq. 1 ``sbh(34 + 5as/h)``), the tensor/sequence-parallel splits (eqs.
2-4, Table 2), selective and full recomputation (section 5, Table 2), the 1F1B pipeline
factor (section 4.2.3) and the input/output-layer terms (section 4.3).  Every term is
generalised for grouped-query attention and gated or routed MLPs (``_layer``).

``megatron_notes`` says what the accounting leaves out; ``megatron_stage`` counts one stage.
"""

from __future__ import annotations

from rigsize.memory.activation_inputs import FP32_BYTES, Attn, DecoderLayer, Recompute, StageRun, StageTerms
from rigsize.model.architecture import Architecture


def megatron_notes(*, lora: object, dropout: bool | None, attn: Attn, recompute: Recompute) -> list[str]:
    """What differs from the paper's setting: LoRA is ignored, the dropout masks are the
    paper's default, flash attention keeps no score matrix."""
    notes: list[str] = []
    if lora is not None:
        notes.append("megatron accounting ignores LoRA (frozen weights keep the same activations)")
    if dropout is None:
        notes.append("dropout masks counted as in Korthikanti et al. (GPT-3 setting); pass dropout=False "
                     "for recipes with hidden and attention dropout 0")
    if attn == "flash" and recompute == "none":
        notes.append("flash attention keeps no s x s scores: the 5as/h term of eq. 1 becomes an fp32 "
                     "logsumexp per head, as under selective recomputation")
    return notes


def _layer(L: DecoderLayer, h: int, a: int, attn: Attn, recompute: Recompute, mask: int,
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


def megatron_stage(arch: Architecture, layers: tuple[DecoderLayer, ...], run: StageRun) -> StageTerms:
    """What one GPU of the stage keeps: every layer's terms (``_layer``) at the run's
    tensor/sequence-parallel split, only the layer inputs under full recomputation, the
    embedding dropout mask on the first stage and the output layer on the last."""
    h, tokens, a, tp, recompute = arch.hidden_size, run.tokens, run.a, run.tp, run.recompute
    rep_div = tp if run.sp else 1
    mask = run.mask_bytes if run.dropout else 0
    per_layer, parts, full = [], {}, []
    for L in layers:
        rep, split = _layer(L, h, a, run.attn, recompute if recompute != "full" else "none", mask, run.seq)
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
    emb = round(run.in_flight * tokens * run.mask_bytes * h / rep_div) if (run.first and run.dropout) else 0
    out = round(tokens * (2 * a * h / rep_div + FP32_BYTES * arch.vocab_size / tp)) if run.last else 0
    return StageTerms(per_layer, parts, emb, out, working)
