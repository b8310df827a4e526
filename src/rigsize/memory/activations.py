"""Activation memory for training: the bytes a forward pass keeps for the backward pass.

Two accountings, chosen by ``impl``:

``"hf"`` (``rigsize.memory.activations_hf``)
    What Hugging Face ``transformers`` 5.x modules save through autograd, counted
    tensor by tensor from the modeling code and PEFT's ``lora.Linear.forward``, and
    measured against torch on tiny models of each family in ``HF_MEASURED``
    (``tests/test_activations_vs_torch.py``, within 5%).  Default for fine-tuning, LoRA
    and QLoRA.

``"megatron"`` (``rigsize.memory.activations_megatron``)
    Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
    Models" (arXiv:2205.05198): the per-layer terms of section 4.1 (eq. 1
    ``sbh(34 + 5as/h)``), the tensor/sequence-parallel splits (eqs. 2-4), recomputation
    (section 5, Table 2), the 1F1B pipeline factor (section 4.2.3) and the input/output
    layers (section 4.3), generalised for grouped-query attention and gated or routed
    MLPs.  Default for pre-training.

Both read the layer widths and the stage's run from ``rigsize.memory.activation_inputs``;
this module picks one, applies the loss variant (``_loss_logits``) and activation
offloading, and sums the parts.  All results are bytes on one GPU, for one pipeline
stage.  ``micro_batch`` and ``seq`` describe one micro-batch; ``cp`` splits the sequence,
``tp`` the heads and MLP width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from rigsize.memory.activation_inputs import (
    ALL_LINEAR,
    FP32_BYTES,
    INDEX_BYTES,
    OFFSET_BYTES,
    Attn,
    Recompute,
    Stage,
    StageRun,
    StageTerms,
    stage_layers,
)
from rigsize.memory.activations_hf import HF_MEASURED, LoraSpec, hf_notes, hf_stage
from rigsize.memory.activations_megatron import megatron_notes, megatron_stage
from rigsize.model.architecture import Architecture
from rigsize.units import BITS_PER_BYTE

__all__ = ["ALL_LINEAR", "FP32_BYTES", "HF_MEASURED", "INDEX_BYTES", "OFFSET_BYTES", "ActivationBreakdown", "Attn",
           "Impl", "LoraSpec", "Loss", "Recompute", "Stage", "activation_bytes"]

Impl = Literal["hf", "megatron"]
Loss = Literal["full", "chunked", "fused", "inplace"]


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
# The loss
# ----------------------------------------------------------------------------------

def _loss_logits(tokens: int, vocab: int, a: int, loss: Loss, chunks: int, impl_hf: bool,
                 shift_copy: bool = False, compiled: bool = False, head_grad: int = 0) -> int:
    """Bytes the cross-entropy keeps for the logits of one micro-batch, at its peak.

    ``"full"``: the fp32 log-softmax output of every token (transformers' ``ForCausalLMLoss``
    upcasts the logits; Korthikanti et al. sec. 4.3: 4sbv), with hf's backward transient of two
    more fp32 copies (``activations_hf._output``; Megatron's vocab-parallel cross-entropy
    works in place).  ``"fused"`` (Unsloth with Apple's Cut
    Cross-Entropy, Wijmans et al. 2024, arXiv:2411.09009): the logits are never materialised;
    one fp32 log-sum-exp per token is kept.  ``"inplace"`` (Unsloth without Cut Cross-Entropy:
    kernels/cross_entropy_loss.py ``Fast_CrossEntropyLoss`` @d9ed4be, also what current Unsloth
    runs when it returns logits): the lm_head's model-dtype logits are kept, with an fp32 loss
    and one fp32 log-sum-exp per row and per 65,536-wide vocabulary chunk (``MAX_FUSED_SIZE``);
    the backward writes the gradient into the logits in place.

    ``"chunked"`` (torchtune ``CEWithChunkedOutputLoss``, 1814feb
    modules/loss/ce_chunked_output_loss.py): the lm_head returns model-dtype logits in ``chunks``
    pieces and ``compute_cross_entropy`` runs ``F.cross_entropy(logits.float(), ...)`` on each.
    Eager (torchtune's default ``compile: False``): every chunk's ``log_softmax`` keeps its fp32
    output for the backward (PyTorch derivatives.yaml, ``_log_softmax``: ``result``), so at the
    last chunk the model-dtype logits, every chunk's fp32 log-probabilities and that chunk's fp32
    upcast coexist, ``a + 4`` bytes per logit plus 4 per logit of one chunk (the backward then
    holds less: the recipe's ``del logits`` frees the model-dtype chunks).  ``compiled``
    (``compile: True``: training/_compile.py ``compile_loss`` compiles ``compute_cross_entropy``):
    inductor fuses the upcast, the log-softmax and its gradient, keeping the model-dtype chunk and
    a log-sum-exp per token, so the logits plus one chunk's model-dtype gradient are the peak.

    ``shift_copy`` (transformers < 4.49, before PR #35646): ``ForCausalLMLoss`` runs
    ``logits = logits.float()`` then ``shift_logits = logits[..., :-1, :].contiguous()``, so at
    the forward pass's last op ``log_softmax`` the model-dtype logits the model returns, the fp32
    upcast, its shifted contiguous copy and the fp32 log-softmax output coexist: ``a + 12`` bytes
    per logit, above the backward's 12."""
    if loss == "fused":
        return FP32_BYTES * tokens
    if loss == "inplace":
        return tokens * vocab * a + FP32_BYTES * tokens * (1 + math.ceil(vocab / 65_536))
    if loss == "chunked":
        logits, chunk = tokens * vocab * a, math.ceil(tokens / max(chunks, 1)) * vocab
        peak = logits + chunk * a if compiled else logits + tokens * vocab * FP32_BYTES + chunk * FP32_BYTES
        # A trained lm_head (head_grad: its weight gradient's bytes): the autograd engine runs the
        # ready node with the highest sequence number first (torch/csrc/autograd/engine.h, ReadyQueue),
        # so every chunk's loss backward runs before any lm_head matmul's, leaving each chunk's
        # model-dtype logit gradient; each matmul's weight gradient is then summed into the
        # weight's InputBuffer (torch/csrc/autograd/input_buffer.cpp, in place): at the second
        # matmul the running sum, the new partial and the other chunks' gradients coexist.
        return max(peak, logits + head_grad, logits - chunk * a + 2 * head_grad) if head_grad else peak
    if impl_hf and shift_copy:
        return tokens * vocab * max(3 * FP32_BYTES, a + 3 * FP32_BYTES)
    return tokens * vocab * FP32_BYTES * (3 if impl_hf else 1)


def _loss_variant(arch: Architecture, run: StageRun, impl: Impl, loss: Loss, chunks: int, transient: bool,
                  shift_copy: bool, compiled: bool = False, trained_head: bool = False) -> int:
    """Bytes the loss as configured keeps beyond (or below) the fp32 logits of the whole
    micro-batch that both accountings count on the last stage (Korthikanti et al. sec.
    4.3: 4sbv/t): another ``loss``, hf's backward transient, transformers < 4.49's
    shifted copy (``_loss_logits``).  Megatron's vocab-parallel loss holds ``vocab / tp``."""
    if not run.last or (loss == "full" and not transient):
        return 0
    vocab = arch.vocab_size // run.tp if impl == "megatron" else arch.vocab_size
    hf = impl == "hf" and transient
    head_grad = vocab * arch.hidden_size * run.a if trained_head else 0   # the lm_head weight's gradient
    return (_loss_logits(run.tokens, vocab, run.a, loss, chunks, hf, shift_copy, compiled, head_grad)
            - _loss_logits(run.tokens, vocab, run.a, "full", 1, False))


# ----------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------

def _check_sizes(dtype_bits: int, **sizes: int) -> None:
    for name, val in sizes.items():
        if val < 1:
            raise ValueError(f"{name} must be >= 1, got {val}")
    if dtype_bits % BITS_PER_BYTE or dtype_bits <= 0:
        raise ValueError(f"dtype_bits must be a whole number of bytes, got {dtype_bits}")


def _breakdown(impl: Impl, run: StageRun, terms: StageTerms, logits_and_loss: int, offload: bool,
               notes: list[str], dequantized: int = 0) -> ActivationBreakdown:
    """The stage's total: every layer's bytes for each in-flight micro-batch (1F1B,
    Narayanan et al. 2021), or one layer's when saved activations go to host memory as
    they are produced (``offload``), plus the embedding, output and recomputation terms
    (the last with the ``dequantized`` weight a 4-bit layer's matmul works on)."""
    in_layers = max(terms.per_layer, default=0) if offload else sum(terms.per_layer) * run.in_flight
    working = terms.working_set + dequantized
    return ActivationBreakdown(
        impl=impl, recompute=run.recompute, attn=run.attn, per_layer=tuple(terms.per_layer),
        layer_parts=MappingProxyType(terms.parts), in_flight_microbatches=run.in_flight, layers=in_layers,
        embedding=terms.embedding, logits_and_loss=logits_and_loss, recompute_working_set=working,
        total=in_layers + terms.embedding + logits_and_loss + working, notes=tuple(notes))


def _dequantized_weight(arch: Architecture, layers: range, tp: int, a: int) -> int:
    """Bytes of the largest decoder-layer linear weight in the model dtype: QLoRA's 4-bit base
    layers run each matmul, forward and backward, on a full dequantized copy of the weight
    (bitsandbytes autograd/_functions.py ``MatMul4Bit``: ``F.linear(A, F.dequantize_4bit(B,
    quant_state).to(A.dtype).t())`` and, for the input gradient, ``F.dequantize_4bit(B,
    ctx.state).to(grad_output.dtype).t()``; torchao ``linear_nf4``: ``F.linear(input,
    weight.to(input.dtype))``; Unsloth kernels/utils.py ``fast_dequantize``), freed after it:
    one such copy is live beside whatever the layer's forward or backward holds."""
    per_copy = [t.numel // t.count for t in arch.tensors if t.layer in layers and t.is_linear]
    return a * max(per_copy, default=0) // tp


def activation_bytes(
    arch: Architecture, *, micro_batch: int, seq: int, impl: Impl = "hf", recompute: Recompute = "none",
    attn: Attn = "flash", lora: LoraSpec | None = None, tp: int = 1, sp: bool = False, cp: int = 1,
    pp: int = 1, layers_on_stage: int | None = None, in_flight_microbatches: int | None = None,
    stage: Stage = "first", dtype_bits: int = 16, dropout: bool | None = None, softcap: bool | None = None,
    mask_bits: int = 8, layers: range | None = None, first: bool | None = None, last: bool | None = None,
    loss: Loss = "full", loss_chunks: int = 1, offload: bool = False, loss_transient: bool = False,
    selective_ac: str = "none", residual_bits: int | None = None, loss_shift_copy: bool = False,
    head_copy: bool = False, loss_compiled: bool = False, dequantized_base: bool = False,
) -> ActivationBreakdown:
    """Bytes of activations kept for the backward pass on one GPU of pipeline ``stage``.

    The stage's parts: the first stage keeps the embedding's inputs, the last the final
    norm, lm_head input, logits and loss, a middle stage neither (``stage="middle"``);
    with ``pp == 1`` the one stage keeps both.  ``layers`` (decoder layer indices) and
    ``first``/``last`` describe a stage exactly (``rigsize.planning.layout.Stage``) and take
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
    ``loss`` / ``loss_chunks``: how the cross-entropy holds the logits (``_loss_logits``);
    ``loss_compiled``: the loss runs under ``torch.compile`` (``_loss_logits``: chunked loss only).
    ``offload``: saved activations move to host memory as the forward pass produces them
    (torchtune ``enable_activation_offloading``, Unsloth's offloaded gradient checkpointing):
    the GPU keeps one layer's worth in flight, not every layer's.
    ``loss_transient``: add what the loss's backward allocates beside the saved tensors (hf's
    full fp32 loss: nll_loss's fp32 gradient of the log-probabilities and
    ``_log_softmax_backward_data``'s fp32 gradient of the logits, both [tokens, vocab], while
    the saved output is alive; PyTorch ``derivatives.yaml``): the memory peak, not a saved tensor.
    ``loss_shift_copy``: transformers < 4.49's extra fp32 copy of the shifted logits (``_loss_logits``).
    ``selective_ac`` (hf): what ``recompute="selective"`` means: "none" (counted as none), "op"
    (torchtitan per-op SAC) or "N" (every N-th block checkpointed); see ``activations_hf.hf_stage``.
    ``residual_bits`` (hf): the residual stream's element size, default ``dtype_bits``.  PEFT's
    ``prepare_model_for_kbit_training`` casts the embedding to fp32 (peft ``utils/other.py``:
    "cast all non INT8 parameters to fp32"), so ``embed_tokens`` returns fp32 and every
    ``hidden_states = residual + hidden_states`` of modeling_llama.py ``LlamaDecoderLayer``
    promotes to fp32 (torch type promotion): each checkpointed layer input is fp32.
    ``head_copy`` (hf, last stage): the same upcast leaves the lm_head weight fp32, and under the
    Trainer's bf16 autocast ``F.linear`` runs on a bf16 copy of it that the matmul keeps for the
    input's gradient until the lm_head's backward (``activations_hf._output``).
    ``dequantized_base`` (QLoRA): the recomputation term also holds one dequantized copy of the
    largest 4-bit weight, which every base-layer matmul materialises (``_dequantized_weight``).
    """
    _check_sizes(dtype_bits, micro_batch=micro_batch, seq=seq, tp=tp, cp=cp, pp=pp,
                 in_flight_microbatches=in_flight_microbatches or 1)
    first = (stage == "first" or pp == 1) if first is None else first
    last = (stage == "last" or pp == 1) if last is None else last
    if impl == "hf":
        recompute, notes = hf_notes(arch, recompute=recompute, selective_ac=selective_ac, lora=lora, tp=tp, sp=sp)
    else:
        notes = megatron_notes(lora=lora, dropout=dropout, attn=attn, recompute=recompute)
    run = StageRun(
        tokens=micro_batch * math.ceil(seq / cp), batch=micro_batch, seq=seq, a=dtype_bits // BITS_PER_BYTE,
        attn=attn, recompute=recompute, tp=tp, sp=sp, mask_bytes=mask_bits // BITS_PER_BYTE,
        dropout=(impl == "megatron") if dropout is None else dropout, first=first, last=last,
        in_flight=in_flight_microbatches or (pp if first else 1))
    on_stage = stage_layers(arch, pp, layers_on_stage, stage, layers)
    if impl == "hf":
        terms = hf_stage(arch, on_stage, run, lora=lora, softcap=softcap, selective_ac=selective_ac,
                         residual_bits=residual_bits, head_copy=head_copy)
    else:
        terms = megatron_stage(arch, on_stage, run)
    logits = terms.logits_and_loss + _loss_variant(arch, run, impl, loss, loss_chunks, loss_transient, loss_shift_copy,
                                                   loss_compiled, trained_head=lora is None)
    span = layers if layers is not None else range(arch.num_hidden_layers)
    dequantized = _dequantized_weight(arch, span, tp, run.a) if dequantized_base and on_stage else 0
    return _breakdown(impl, run, terms, logits, offload, notes, dequantized)
