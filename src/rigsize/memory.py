"""Memory per GPU: what each rank holds, whether it fits, and what would make it fit.

``memory_per_gpu(arch, workload, layout, gpu, fmt, kv)`` evaluates every pipeline
stage and reports the busiest rank (the stage whose total is largest) with its own
parts, so ``weights + kv_cache + activations + gradients + optimizer + overhead ==
total`` always holds.  Formulas and their sources are next to each term; engine and
runtime constants live in ``data/runtime.toml`` (``rigsize.runtime``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rigsize import formats, runtime
from rigsize.architecture import Architecture
from rigsize.formats import KVFormat, WeightFormat
from rigsize.hardware import GPU
from rigsize.layout import Layout, Workload
from rigsize.tensors import LINEAR_ROLES, Tensor


@dataclass(frozen=True)
class Parts:
    """Bytes on one GPU, by kind.  ``total`` is their sum."""

    weights: int = 0
    kv_cache: int = 0
    activations: int = 0
    gradients: int = 0
    optimizer: int = 0
    overhead: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.activations + self.gradients + self.optimizer + self.overhead


@dataclass(frozen=True)
class MemoryResult:
    per_gpu: Parts
    stage: int                       # the busiest pipeline stage
    usable_bytes: int
    kv_bytes_per_sequence: int       # on the busiest stage's ranks, at the requested length (0 in training)
    max_concurrency: int | None      # inference: sequences of the requested length that fit
    details: dict[str, int] = field(default_factory=dict)   # sub-parts (overhead terms, activation terms...)

    @property
    def fits(self) -> bool:
        return self.per_gpu.total <= self.usable_bytes

    @property
    def headroom_bytes(self) -> int:
        return self.usable_bytes - self.per_gpu.total


# ----------------------------------------------------------------------------------
# Which tensors a rank holds
# ----------------------------------------------------------------------------------

def stage_layers(n_layers: int, pp: int) -> list[range]:
    """Layers per pipeline stage as vLLM's ``get_pp_indices`` assigns them: an even
    split, with the remainder given to the stages before the last (the last stage
    also holds the lm_head).  Megatron needs n_layers % pp == 0 unless told otherwise."""
    sizes = [n_layers // pp] * pp
    for i in range(n_layers % pp):
        sizes[-2 - i if pp > 1 else 0] += 1
    out, start = [], 0
    for s in sizes:
        out.append(range(start, start + s))
        start += s
    return out


def stage_tensors(arch: Architecture, stage: int, pp: int) -> list[Tensor]:
    """Tensors of one stage: its layers, the embedding on the first stage, the final
    norm and lm_head on the last (a tied embedding is held by both, as Megatron and
    vLLM do)."""
    layers = stage_layers(arch.num_hidden_layers, pp)[stage]
    first, last = stage == 0, stage == pp - 1
    rows = []
    for t in arch.tensors:
        if t.layer is not None:
            if t.layer in layers:
                rows.append(t)
        elif t.role in ("embed", "pos_embed", "other"):
            if first or (t.role == "embed" and last and arch.tie_word_embeddings):
                rows.append(t)
        elif last:   # final norm, lm_head
            rows.append(t)
    return rows


def shard_factor(t: Tensor, arch: Architecture, layout: Layout) -> float:
    """Into how many pieces tensor parallelism (and expert parallelism) cuts ``t``.

    Megatron-LM / vLLM: column-parallel q/k/v/gate/up and row-parallel o/down split
    by tp; vocab-parallel embedding and lm_head split by tp; K/V heads fewer than tp
    are replicated (each rank keeps one); MLA's down-projections (q_a, kv_a) are
    replicated (vLLM ``ReplicatedLinear``); norms, routers and biases of
    row-parallel layers are replicated; experts split over ep x expert-tp ranks.
    """
    tp = layout.tp
    if t.role.startswith("expert_"):
        return layout.ep * layout.expert_tp
    if t.role in ("norm", "router", "other", "pos_embed", "attn_q_a", "attn_kv_a"):
        return 1
    if len(t.shape) == 1 and t.role in ("attn_o", "mlp_down", "shared_down"):
        return 1     # row-parallel bias: added after the all-reduce, replicated
    kv = arch.num_key_value_heads
    if t.role in ("attn_k", "attn_v") and arch.attention == "standard":
        return min(tp, kv)
    if t.role == "attn_qkv" and arch.attention == "standard":
        q = arch.num_attention_heads * arch.head_dim
        kvr = 2 * kv * arch.head_dim
        return (q + kvr) / (q / tp + kvr / min(tp, kv))
    return tp


def _rank_weight_bytes(tensors: list[Tensor], arch: Architecture, layout: Layout, fmt: WeightFormat,
                       training: bool) -> int:
    mix = formats.gguf_mix(arch.tensors, arch.num_hidden_layers) if fmt.layout == "gguf" else None
    bits = 0.0
    for t in tensors:
        bits += formats.tensor_bits(fmt, t, arch.num_hidden_layers, mix=mix, training=training) / shard_factor(t, arch, layout)
    return math.ceil(bits / 8)


def _rank_params(tensors: list[Tensor], arch: Architecture, layout: Layout) -> float:
    return sum(t.numel / shard_factor(t, arch, layout) for t in tensors)


def lora_params(tensors: list[Tensor], arch: Architecture, layout: Layout, rank: int,
                targets: frozenset[str] | None) -> float:
    """LoRA adapter parameters a rank holds: r x (in + out) per targeted linear weight
    (Hu et al. 2021, sec. 4: W + BA with B in R^{d x r}, A in R^{r x k}), split like
    the base layer.  ``targets`` are role names or HF module names (q_proj...); None
    means every linear layer (PEFT ``target_modules="all-linear"``, lm_head excluded)."""
    total = 0.0
    for t in tensors:
        if t.role not in LINEAR_ROLES or len(t.shape) != 2:
            continue
        module = t.name.rsplit(".", 2)[-2] if t.name.endswith(".weight") else t.name.rsplit(".", 1)[-1]
        if targets is not None and t.role not in targets and module not in targets:
            continue
        out_f, in_f = t.shape
        total += t.count * rank * (in_f + out_f) / shard_factor(t, arch, layout)
    return total


# ----------------------------------------------------------------------------------
# Training states: bytes per trainable parameter by framework and optimizer
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StateBytes:
    """Bytes per trainable parameter: weights, gradients, optimizer (incl. fp32 master)."""

    weights: float
    gradients: float
    optimizer: float


def state_bytes(framework: str, optimizer: str, adapters: bool) -> StateBytes:
    """Model-state bytes per trainable parameter.

    - deepspeed: ZeRO paper (Rajbhandari et al. 2020, sec. 3.1): mixed-precision Adam
      holds fp16/bf16 weights (2) and gradients (2) plus fp32 master weights,
      momentum and variance (K = 12): 16 bytes.
    - megatron: Megatron-Core keeps fp32 main gradients (``main_grad``): 2 + 4 + 12 =
      18 bytes (Megatron-LM docs, "Distributed Optimizer" table: bf16 param, fp32 grads).
    - fsdp: FSDP2 with ``MixedPrecisionPolicy(param_dtype=bf16)`` keeps sharded fp32
      parameters (4), fp32 gradients (4) and Adam's two fp32 moments (8): 16 bytes;
      the fp32 parameters are the master copy.
    - hf: a model loaded in bf16 trained by ``torch.optim.AdamW``: states take the
      parameter dtype (torch AdamW ``exp_avg``/``exp_avg_sq`` are ``zeros_like(p)``):
      2 + 2 + 4 = 8 bytes.
    - adamw-8bit: bitsandbytes 8-bit Adam (Dettmers et al. 2022, "8-bit Optimizers via
      Block-wise Quantization"): one byte per moment (block-wise absmax aside);
      adamw-bf16: both moments in bf16, no fp32 master.
    - adapters (LoRA/QLoRA): PEFT keeps adapter weights in fp32
      (``autocast_adapter_dtype=True``), so fp32 weights and gradients, fp32 moments.
    """
    if adapters:
        moments = {"adamw": 8.0, "adamw-8bit": 2.0, "adamw-bf16": 4.0}[optimizer]
        return StateBytes(4.0, 4.0, moments)
    base = {
        "deepspeed": StateBytes(2.0, 2.0, 12.0),
        "megatron": StateBytes(2.0, 4.0, 12.0),
        "fsdp": StateBytes(4.0, 4.0, 8.0),
        "hf": StateBytes(2.0, 2.0, 4.0),
    }[framework]
    master = 0.0 if framework in ("hf", "fsdp") else 4.0
    if optimizer == "adamw-8bit":
        return StateBytes(base.weights, base.gradients, master + 2.0)
    if optimizer == "adamw-bf16":
        return StateBytes(2.0, 2.0, 4.0)
    return base


def _sharded_states(per_param: StateBytes, trainable: float, layout: Layout, shards: int) -> Parts:
    """ZeRO stages (Rajbhandari et al. 2020, Figure 1): 1 shards optimizer states,
    2 also gradients, 3 also parameters, each over the data-parallel group holding the
    same parameters (``shards``: dp x cp for dense ones, the expert-data-parallel group
    for experts).  Megatron's distributed optimizer shards the fp32 master and moments
    only (6 + 12/d bytes)."""
    d = shards
    z = layout.zero
    w = per_param.weights * trainable
    g = per_param.gradients * trainable
    o = per_param.optimizer * trainable
    if z >= 1:
        o /= d
    if z >= 2:
        g /= d
    if z >= 3:
        w /= d
    if layout.offload in ("optimizer", "params"):
        o = 0.0
    return Parts(weights=math.ceil(w), gradients=math.ceil(g), optimizer=math.ceil(o))


# ----------------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------------

def _kv_bytes_per_token_on_rank(arch: Architecture, layout: Layout, kv: KVFormat, layer: int) -> int:
    """One token's K/V (or MLA latent) in one layer on one rank: KV heads per rank =
    max(1, kv_heads / tp); the MLA latent is replicated on every TP rank."""
    if arch.attention == "mla":
        kv_b = next(t for t in arch.tensors if t.role == "attn_kv_b" and len(t.shape) == 2)
        rank = kv_b.shape[1]
        return formats.mla_kv_bytes_per_token(kv, rank, arch.head_dim - rank)
    heads = max(1, math.ceil(arch.num_key_value_heads / layout.tp))
    return formats.attention_kv_bytes_per_token(kv, heads, arch.head_dim)


def kv_bytes_per_sequence(arch: Architecture, layout: Layout, kv: KVFormat, seq: int, layers: range,
                          block: int) -> int:
    """KV cache of one sequence of ``seq`` tokens on one rank of a stage: sliding-window
    layers keep at most their window; paged engines allocate whole blocks; context
    parallelism splits the tokens over cp ranks."""
    total = 0
    for i in layers:
        window = arch.layer_windows[i] if arch.layer_windows else None
        tokens = min(seq, window) if window else seq
        tokens = math.ceil(math.ceil(tokens / layout.cp) / block) * block
        total += tokens * _kv_bytes_per_token_on_rank(arch, layout, kv, i)
    return total


def _inference_activations(arch: Architecture, layout: Layout, workload: Workload, dtype_bytes: int,
                           engine: runtime.Engine) -> int:
    """Peak transient memory of a forward step, as vLLM measures it with a profiling
    run of ``max_num_batched_tokens`` tokens (``gpu_model_runner.profile_run``):
    one layer's live intermediates per token (residual, normed input, q/k/v, the
    gated MLP's gate_up and activation; fused-MoE's three intermediate caches,
    ``fused_moe.py``: M x topk x (2N + N + K)), plus the sampler's fp32 logits for up
    to ``max_num_seqs`` sequences.  Like vLLM's budget, it depends on the engine's
    batching limits, not on the requested concurrency (the KV cache takes the rest).
    An estimate; vLLM prints the measured figure at start-up."""
    tokens = engine.max_num_batched_tokens
    h, tp = arch.hidden_size, layout.tp
    qkv = (arch.num_attention_heads + 2 * arch.num_key_value_heads) * arch.head_dim / tp
    dense = 3 * h + qkv + 3 * arch.intermediate_size / tp
    per_token = dense
    expert = next((t for t in arch.tensors if t.role == "expert_down"), None)
    if arch.num_experts and expert is not None:
        n = expert.shape[1] / layout.expert_tp
        per_token = max(dense, 2 * h + arch.experts_per_token * (3 * n + h))
    logits = min(engine.max_num_seqs, engine.max_num_batched_tokens) * arch.vocab_size * 4
    return math.ceil(tokens * per_token * dtype_bytes + logits)


# transformers has no flash/SDPA path for these (Gemma 2's attention soft-capping needs
# attn_implementation="eager", transformers' Gemma 2 docs): they save s^2 probabilities
EAGER_ONLY = frozenset({"gemma2"})


def memory_per_gpu(arch: Architecture, workload: Workload, layout: Layout, gpu: GPU,
                   fmt: WeightFormat, kv: KVFormat, engine: runtime.Engine,
                   gpu_memory_utilization: float, attn: str | None = None) -> MemoryResult:
    """Evaluate every stage and return the busiest rank's memory."""
    if attn is None:
        hf = workload.framework != "megatron"
        attn = "eager" if hf and arch.model_type in EAGER_ONLY else "flash"
    best: tuple[Parts, int, dict[str, int], int] | None = None
    for stage in range(layout.pp):
        tensors = stage_tensors(arch, stage, layout.pp)
        layers = stage_layers(arch.num_hidden_layers, layout.pp)[stage]
        parts, details, kv_seq = _stage_parts(arch, workload, layout, gpu, fmt, kv, engine, tensors, layers, stage, attn)
        if best is None or parts.total > best[0].total:
            best = (parts, stage, details, kv_seq)
    assert best is not None
    parts, stage, details, kv_seq = best
    if workload.training:
        usable = gpu.usable_memory_bytes
        concurrency = None
    else:
        usable = int(gpu.usable_memory_bytes * gpu_memory_utilization)
        free = usable - (parts.total - parts.kv_cache)
        concurrency = max(0, free // kv_seq) * layout.dp if kv_seq else None
    return MemoryResult(parts, stage, usable, kv_seq, concurrency, details)


def _stage_parts(arch: Architecture, workload: Workload, layout: Layout, gpu: GPU, fmt: WeightFormat,
                 kv: KVFormat, engine: runtime.Engine, tensors: list[Tensor], layers: range, stage: int,
                 attn: str) -> tuple[Parts, dict[str, int], int]:
    overhead = runtime.overhead_bytes(layout, workload, gpu, engine)
    details = {f"overhead/{k}": v for k, v in overhead.items()}
    if not workload.training:
        weights = _rank_weight_bytes(tensors, arch, layout, fmt, training=False)
        kv_seq = kv_bytes_per_sequence(arch, layout, kv, workload.seq, layers, engine.kv_block_size)
        acts = _inference_activations(arch, layout, workload, 2, engine)
        per_replica = -(-workload.batch // layout.dp)      # dp replicas share the requests
        return Parts(weights=weights, kv_cache=kv_seq * per_replica, activations=acts,
                     overhead=sum(overhead.values())), details, kv_seq
    adapters = workload.task in ("lora", "qlora")
    per_param = state_bytes(workload.framework, workload.optimizer, adapters)
    if adapters:
        frozen = _rank_weight_bytes(tensors, arch, layout, fmt, training=workload.task == "qlora")
        if layout.zero == 3:      # ZeRO-3 / FSDP shard frozen parameters too
            frozen = 0 if layout.offload == "params" else math.ceil(frozen / layout.zero_shards)
        trainable = lora_params(tensors, arch, layout, workload.lora_rank, workload.lora_targets)
        states = _sharded_states(per_param, trainable, layout, layout.zero_shards)
        weights = frozen + states.weights
    else:
        dense = [t for t in tensors if not t.role.startswith("expert_")]
        experts = [t for t in tensors if t.role.startswith("expert_")]
        a = _sharded_states(per_param, _rank_params(dense, arch, layout), layout, layout.zero_shards)
        b = _sharded_states(per_param, _rank_params(experts, arch, layout), layout, layout.expert_zero_shards)
        states = Parts(weights=a.weights + b.weights, gradients=a.gradients + b.gradients,
                       optimizer=a.optimizer + b.optimizer)
        weights = states.weights
        if layout.offload == "params":
            weights = 0
    from rigsize.activations import ALL_LINEAR, LoraSpec, activation_bytes

    gathered = runtime.gathered_params_bytes(arch, layout, workload, tensors, shard_factor)
    details["weights/gathered_for_zero3"] = gathered
    lora = None
    if adapters:   # PEFT's default autocast_adapter_dtype=True keeps adapters in fp32
        lora = LoraSpec(targets=workload.lora_targets or ALL_LINEAR, rank=workload.lora_rank, adapter_bits=32)
    acts = activation_bytes(
        arch, micro_batch=workload.batch, seq=workload.seq,
        impl="megatron" if workload.framework == "megatron" else "hf",
        recompute=layout.recompute, attn=attn, lora=lora, tp=layout.tp, sp=layout.sp, cp=layout.cp,
        pp=layout.pp, layers_on_stage=len(layers), stage="first" if stage == 0 else "last",
        # 1F1B: stage s keeps pp - s micro-batches in flight (Narayanan et al. 2021, sec. 2.2.1)
        in_flight_microbatches=max(1, min(layout.pp - stage, workload.grad_accum)),
    )
    for k, v in acts.parts.items():
        details[f"activations/{k}"] = v
    return Parts(weights=weights + gathered, activations=acts.total, gradients=states.gradients,
                 optimizer=states.optimizer, overhead=sum(overhead.values())), details, 0
