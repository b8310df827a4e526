"""Memory per GPU: what each rank holds, whether it fits, and what would make it fit.

``memory_per_gpu(arch, workload, layout, gpu, fmt, kv)`` evaluates every pipeline
stage and reports the busiest rank (the stage whose total is largest) with its own
parts, so ``weights + kv_cache + activations + gradients + optimizer + overhead ==
total`` always holds.  Formulas and their sources are next to each term; engine and
runtime constants live in ``data/runtime.toml`` (``rigsize.memory.runtime``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rigsize.hardware.gpus import GPU
from rigsize.memory import mxfp4_moe, runtime
from rigsize.memory.activations import ALL_LINEAR, ActivationBreakdown, LoraSpec, activation_bytes
from rigsize.memory.encoder_cache import encoder_activation_bytes, encoder_cache_bytes
from rigsize.memory.frameworks import Recipe, fsdp_root_bytes
from rigsize.model import formats, recurrent
from rigsize.model.architecture import Architecture
from rigsize.model.formats import KVFormat, WeightFormat
from rigsize.model.mtp import mtp_module
from rigsize.model.tensors import LINEAR_ROLES, Tensor
from rigsize.planning.layout import Layout, Stage, Workload, pipeline_stages

# The serving engine's dtype for Mamba conv and SSM state (vLLM: the model dtype by default).
RECURRENT_STATE_BITS = 16


@dataclass(frozen=True)
class Parts:
    """Bytes on one GPU, by kind.  ``total`` is their sum."""

    weights: int = 0
    kv_cache: int = 0
    activations: int = 0
    gradients: int = 0
    optimizer: int = 0
    overhead: int = 0
    recurrent_state: int = 0         # Mamba-style layers: a fixed state per sequence, not a KV cache
    encoder_cache: int = 0           # vLLM: image embeddings its profiling holds (memory.encoder_cache)

    @property
    def total(self) -> int:
        return (self.weights + self.kv_cache + self.activations + self.gradients + self.optimizer + self.overhead
                + self.recurrent_state + self.encoder_cache)


@dataclass(frozen=True)
class MemoryResult:
    per_gpu: Parts
    stage: int                       # the busiest pipeline stage
    usable_bytes: int
    kv_bytes_per_sequence: int       # on the busiest stage's ranks, at the requested length (0 in training)
    max_concurrency: int | None      # inference: sequences of the requested length that fit
    details: dict[str, int] = field(default_factory=dict)   # sub-parts (overhead terms, activation terms...)
    stages: tuple[tuple[Stage, Parts], ...] = ()           # every pipeline stage with its own parts
    kv: KVCapacity | None = None                            # inference: the KV pool and what it holds

    @property
    def starts(self) -> bool:
        """The engine starts: vLLM refuses to when one request of max_model_len tokens
        cannot be held (vllm_budget_rules.md sec. 5)."""
        return self.kv is None or self.kv.starts

    @property
    def fits(self) -> bool:
        return self.per_gpu.total <= self.usable_bytes and self.starts

    @property
    def headroom_bytes(self) -> int:
        """Usable minus total; where the parts fit but the engine would refuse to start, minus
        the KV bytes one --max-model-len request lacks (so "short by" is what is missing)."""
        left = self.usable_bytes - self.per_gpu.total
        if self.kv is not None and not self.kv.starts:
            # parts that overflow leave no KV pool: the shortage is the overflow plus that request's KV
            return left - self.kv.shortfall_bytes if left < 0 else -self.kv.shortfall_bytes
        return left


@dataclass(frozen=True)
class KVCapacity:
    """The KV cache an inference engine would allocate, as vLLM reports it at start-up
    (the smallest pool over pipeline stages; per data-parallel replica)."""

    pool_bytes: int                 # KV budget on the tightest rank
    tokens: int                     # "GPU KV cache size: N tokens" (blocks x block size)
    max_model_len: int
    concurrency_at_max_model_len: float   # "Maximum concurrency for max_model_len tokens per request"
    max_context_single: int         # the longest context one request can have (vLLM's estimate_max_model_len)
    max_context_at_concurrency: int  # the longest context at which --batch sequences fit at once
    starts: bool
    shortfall_bytes: int = 0        # when it does not start: the KV bytes one max_model_len request lacks


# ----------------------------------------------------------------------------------
# Which tensors a rank holds
# ----------------------------------------------------------------------------------

def stages(arch: Architecture, layout: Layout) -> tuple[Stage, ...]:
    """The pipeline stages as the engines split the layers (``layout.stage_sizes``)."""
    return pipeline_stages(arch.num_hidden_layers, layout)


def _hit(store: dict, key: tuple, arch: Architecture) -> Any:
    """The memoized value of ``key`` in one of this module's per-architecture caches, or None.
    Each entry holds its architecture object, so an id the key names cannot be reused by another."""
    hit = store.get(key)
    return hit[1] if hit is not None and hit[0] is arch else None


def _keep(store: dict, key: tuple, arch: Architecture, value: Any, limit: int = 4096) -> Any:
    """Memoize ``value`` (never None) under ``key``, emptying the cache past ``limit`` entries."""
    if len(store) > limit:
        store.clear()
    store[key] = (arch, value)
    return value


def stage_tensors(arch: Architecture, stage: Stage) -> list[Tensor]:
    """Tensors of one stage: its layers; the embedding (and any other input-side tensor)
    on the first; the final norm and lm_head on the last; a middle stage holds neither.
    A tied embedding is held by the last stage too: Megatron-LM keeps a copy there
    (weights, gradients and optimizer state; ``LanguageModule.setup_embeddings_and_
    output_layer``) and vLLM builds ``embed_tokens`` on the last rank to tie the head.

    Memoized per architecture object and stage (a search asks for the same stages many
    times); callers read the list and must not change it."""
    key = (id(arch), stage.layers.start, stage.layers.stop, stage.first, stage.last)
    if (hit := _hit(_STAGE_TENSORS, key, arch)) is not None:
        return hit
    rows = []
    for t in arch.tensors:
        if t.layer is not None:
            if t.layer in stage.layers:
                rows.append(t)
        elif t.role in ("embed", "pos_embed", "other"):
            if stage.first or (t.role == "embed" and stage.last and arch.tie_word_embeddings):
                rows.append(t)
        elif stage.last:   # final norm, lm_head
            rows.append(t)
    return _keep(_STAGE_TENSORS, key, arch, rows)


_STAGE_TENSORS: dict[tuple, tuple[Architecture, list[Tensor]]] = {}


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


def rank_weight_bytes(tensors: list[Tensor], arch: Architecture, layout: Layout, fmt: WeightFormat,
                       training: bool) -> int:
    """Bytes of ``tensors`` (a stage's, or a subset) on one rank, in ``fmt``.

    Memoized: a search evaluates the same stage of the same model in the same format and
    tp/ep split many times.  The key names the tensor slice by its ends and length and
    the one architecture object (held in the cache, so its id cannot be reused); only
    the layout fields ``shard_factor`` reads are in it."""
    if not tensors:
        return 0
    key = (id(arch), tensors[0].name, tensors[-1].name, len(tensors), layout.tp, layout.ep, layout.expert_tp,
           fmt, training)
    if (hit := _hit(_RANK_BYTES, key, arch)) is not None:
        return hit
    stored, factor = _tensor_bits(arch, fmt, training), _shard_factors(arch, layout)
    bits = 0.0
    try:
        for t in tensors:
            bits += stored[id(t)] / factor[id(t)]
    except KeyError:        # a tensor not of arch.tensors (a caller's own list)
        mix = formats.gguf_mix(arch.tensors, arch.num_hidden_layers) if fmt.layout == "gguf" else None
        bits = 0.0
        for t in tensors:
            bits += (formats.tensor_bits(fmt, t, arch.num_hidden_layers, mix=mix, training=training)
                     / shard_factor(t, arch, layout))
    value = math.ceil(bits / 8)
    return _keep(_RANK_BYTES, key, arch, value)


_RANK_BYTES: dict[tuple, tuple[Architecture, int]] = {}


def _tensor_bits(arch: Architecture, fmt: WeightFormat, training: bool) -> dict[int, float]:
    """``formats.tensor_bits`` of every tensor of ``arch`` (by ``id``) in ``fmt``; memoized
    per architecture object (held in the cache), format and ``training``."""
    key = (id(arch), fmt, training)
    if (hit := _hit(_TENSOR_BITS, key, arch)) is not None:
        return hit
    mix = formats.gguf_mix(arch.tensors, arch.num_hidden_layers) if fmt.layout == "gguf" else None
    value = {id(t): formats.tensor_bits(fmt, t, arch.num_hidden_layers, mix=mix, training=training)
             for t in arch.tensors}
    return _keep(_TENSOR_BITS, key, arch, value, limit=256)


_TENSOR_BITS: dict[tuple, tuple[Architecture, dict[int, float]]] = {}


def _shard_factors(arch: Architecture, layout: Layout) -> dict[int, float]:
    """``shard_factor`` of every tensor of ``arch`` (by ``id``) under the layout's tp, ep and
    expert-tp; memoized per architecture object (held in the cache) and those sizes: a
    layout search sums the same tensors' shards over many pipeline splits."""
    key = (id(arch), layout.tp, layout.ep, layout.expert_tp)
    if (hit := _hit(_SHARD_FACTORS, key, arch)) is not None:
        return hit
    value = {id(t): shard_factor(t, arch, layout) for t in arch.tensors}
    return _keep(_SHARD_FACTORS, key, arch, value, limit=256)


_SHARD_FACTORS: dict[tuple, tuple[Architecture, dict[int, float]]] = {}


def _rank_params(tensors: list[Tensor], arch: Architecture, layout: Layout) -> float:
    """Parameters of ``tensors`` on one rank; memoized like ``rank_weight_bytes`` (the key
    names the slice and the layout fields ``shard_factor`` reads)."""
    if not tensors:
        return 0
    key = (id(arch), tensors[0].name, tensors[-1].name, len(tensors), layout.tp, layout.ep, layout.expert_tp)
    if (hit := _hit(_RANK_PARAMS, key, arch)) is not None:
        return hit
    factor = _shard_factors(arch, layout)
    try:
        value = sum(t.numel / factor[id(t)] for t in tensors)
    except KeyError:        # a tensor not of arch.tensors (a caller's own list)
        value = sum(t.numel / shard_factor(t, arch, layout) for t in tensors)
    return _keep(_RANK_PARAMS, key, arch, value)


_RANK_PARAMS: dict[tuple, tuple[Architecture, float]] = {}


def _largest_shard(tensors: list[Tensor], arch: Architecture, layout: Layout) -> float:
    """The largest single parameter's elements on one rank (0 for none); memoized like
    ``_rank_params``."""
    if not tensors:
        return 0.0
    key = (id(arch), tensors[0].name, tensors[-1].name, len(tensors), layout.tp, layout.ep, layout.expert_tp)
    if (hit := _hit(_LARGEST_SHARD, key, arch)) is not None:
        return hit
    factor = _shard_factors(arch, layout)
    try:
        value = max(t.numel / t.count / factor[id(t)] for t in tensors)
    except KeyError:        # a tensor not of arch.tensors (a caller's own list)
        value = max(t.numel / t.count / shard_factor(t, arch, layout) for t in tensors)
    return _keep(_LARGEST_SHARD, key, arch, value)


_LARGEST_SHARD: dict[tuple, tuple[Architecture, float]] = {}


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


def state_bytes(recipe: Recipe, optimizer: str, adapters: bool) -> StateBytes:
    """Model-state bytes per trainable parameter, from the framework's recipe
    (``data/frameworks.toml``: parameter and gradient dtypes, fp32 master, adapter dtype).

    - Weights and gradients take the recipe's ``param_bits`` / ``grad_bits`` (adapters:
      ``adapter_bits`` for both).  Examples: DeepSpeed (ZeRO paper, Rajbhandari et al.
      2020, sec. 3.1) 2 + 2; Megatron-Core 2 + 4 (fp32 ``main_grad``); FSDP2/torchtitan
      4 + 4 (fp32 sharded parameters); transformers, torchtune, Unsloth 2 + 2 (bf16 model).
    - adamw: Adam's two moments are ``zeros_like`` of the parameter the optimizer steps
      (torch ``AdamW``): fp32 (4 + 4) where an fp32 master copy exists (DeepSpeed,
      Megatron: + 4 for the master itself, K = 12 in the ZeRO paper) or the parameters
      are fp32; the parameter dtype otherwise (bf16 model: 2 + 2; fp32 adapters: 4 + 4).
    - adamw-8bit: bitsandbytes 8-bit Adam (Dettmers et al. 2022, "8-bit Optimizers via
      Block-wise Quantization"): one byte per moment (block-wise absmax aside), plus the
      fp32 master where the framework keeps one.
    - adamw-bf16: both moments in bf16, no fp32 master, 16-bit weights and gradients.
    """
    if adapters:
        bits = recipe.adapter_bits
        moments = {"adamw": 2 * bits / 8, "adamw-8bit": 2.0, "adamw-bf16": 4.0}[optimizer]
        return StateBytes(bits / 8, bits / 8, moments)
    if optimizer == "adamw-bf16":
        return StateBytes(2.0, 2.0, 4.0)
    master = 4.0 if recipe.master_weights else 0.0
    wide = recipe.master_weights or recipe.param_bits == 32
    moments = {"adamw": 8.0 if wide else 2 * recipe.param_bits / 8, "adamw-8bit": 2.0}[optimizer]
    return StateBytes(recipe.param_bits / 8, recipe.grad_bits / 8, master + moments)


def _sharded_states(per_param: StateBytes, trainable: float, layout: Layout, shards: int,
                    recipe: Recipe | None = None, largest: float = 0.0) -> Parts:
    """ZeRO stages (Rajbhandari et al. 2020, Figure 1): 1 shards optimizer states,
    2 also gradients, 3 also parameters, each over the data-parallel group holding the
    same parameters (``shards``: dp x cp for dense ones, the expert-data-parallel group
    for experts).  Megatron's distributed optimizer shards the fp32 master and moments
    only (6 + 12/d bytes).

    Optimizer states offloaded to CPU (ZeRO-Offload, Ren et al. 2021, sec. 4.1) or
    paged by bitsandbytes (``cudaMallocManaged``, spilled to host under pressure) are
    not charged.  ZeRO-Offload with ZeRO-2/3 also moves each gradient partition to CPU
    memory as it is produced (Ren et al. 2021, sec. 4.1, Fig. 2: "the gradients are
    offloaded to CPU"; DeepSpeed docs, offload_optimizer): the GPU keeps only the
    reduction bucket (``reduce_bucket_size`` elements).  Optimizer-in-backward
    (torchtune ``optimizer_in_bwd``) steps each parameter in its post-accumulate-grad
    hook and frees its gradient: only the ``largest`` parameter's gradient is live."""
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
    if layout.offload in ("optimizer", "params") or (recipe is not None and recipe.paged_optimizer):
        o = 0.0
    if recipe is not None and z >= 2 and layout.offload in ("optimizer", "params") and recipe.reduce_bucket_elements:
        g = min(g, recipe.reduce_bucket_elements * per_param.gradients)
    if recipe is not None and recipe.optimizer_in_backward:
        g = min(g, largest * per_param.gradients)
    return Parts(weights=math.ceil(w), gradients=math.ceil(g), optimizer=math.ceil(o))


def _backward_peak(acts: ActivationBreakdown, grads: int, recipe: Recipe, accumulation: int) -> tuple[int, int]:
    """(activations, gradients) charged so that their sum is what coexists at the step's peak.

    Backward frees each layer's saved activations as it produces that layer's gradients
    and the loss frees the logits before the first layer is recomputed, so the peak is
    the largest of: every layer's activations with the logits (start of backward); with
    a recomputed layer's working set instead (first recomputation); and the gradients
    with that working set (end of backward).  Gradients only start empty when
    ``zero_grad(set_to_none=True)`` freed them and one micro-batch makes the step
    (``persistent_grads`` false, no accumulation); a persistent gradient buffer
    (Megatron's, DeepSpeed's contiguous one) coexists with everything."""
    layers = acts.layers + acts.embedding
    logits, working = acts.logits_and_loss, acts.recompute_working_set
    if recipe.persistent_grads or accumulation > 1:
        return layers + max(logits, working), grads
    peak = max(logits, working, grads + working - acts.layers)
    # gradients are charged whole (their state size); activations get what coexists with them
    return max(0, layers + peak - grads), grads


# ----------------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------------

def kv_bytes_per_token_on_rank(arch: Architecture, layout: Layout, kv: KVFormat, layer: int) -> int:
    """One token's K/V (or MLA latent) in one layer on one rank: KV heads per rank =
    max(1, kv_heads / tp); the MLA latent is replicated on every TP rank."""
    if not arch.is_attention_layer(layer):
        return 0     # a recurrent layer (Mamba): its state is ``recurrent_state``, not KV
    if arch.attention == "mla":
        kv_b = next(t for t in arch.tensors if t.role == "attn_kv_b" and len(t.shape) == 2)
        rank = kv_b.shape[1]
        # DeepSeek-V3.2's indexer keys sit beside the latent, replicated like it
        return formats.mla_kv_bytes_per_token(kv, rank, arch.head_dim - rank) + arch.indexer_key_bytes
    heads = max(1, math.ceil(arch.num_key_value_heads / layout.tp))
    return formats.attention_kv_bytes_per_token(kv, heads, arch.head_dim)


def kv_bytes_per_sequence(arch: Architecture, layout: Layout, kv: KVFormat, seq: int, layers: range,
                          block: int, windows: str = "cap", step_tokens: int = 0, extra_layers: int = 0) -> int:
    """KV cache of one sequence of ``seq`` tokens on one rank of a stage; paged engines
    allocate whole blocks; context parallelism splits the tokens over cp ranks.
    Sliding-window layers (``windows``, the engine's rule, runtime.toml [vllm.era.*]):
    "cap" keeps at most the window; "uniform_cap" caps only when every layer has the
    same window (older vLLM ran interleaved windows as full attention); "full" ignores
    windows; "hybrid" is vLLM >= 0.9.2's ``SlidingWindowSpec``: ``min(window - 1 +
    step_tokens, seq)`` tokens plus one block.  ``extra_layers`` full-attention layers outside
    the stack (a speculative draft's MTP layers, ``mtp_kv_layers``) keep the whole sequence too."""
    if extra_layers:
        tokens = math.ceil(math.ceil(seq / layout.cp) / block) * block
        extra = extra_layers * tokens * _mtp_kv_per_token(arch, layout, kv)
        return extra + kv_bytes_per_sequence(arch, layout, kv, seq, layers, block, windows, step_tokens)
    wins = arch.layer_windows or ()
    uniform = bool(wins) and len(set(wins)) == 1 and wins[0] is not None
    # one token's K/V is the same in every layer (kv_bytes_per_token_on_rank reads no
    # per-layer field): computed once, not once per layer
    attention, by_window = _attention_windows(arch, layers)
    per_token = kv_bytes_per_token_on_rank(arch, layout, kv, attention[0]) if attention else 0
    if not wins:        # no sliding windows: every attention layer keeps the whole sequence
        return len(attention) * math.ceil(math.ceil(seq / layout.cp) / block) * block * per_token
    total = 0
    for window, layers_with_it in by_window:     # the layers of one window add the same bytes each
        window = window if wins else None
        if windows == "full" or (windows == "uniform_cap" and not uniform):
            window = None
        extra = 0
        if window and windows == "hybrid":
            tokens, extra = min(seq, window - 1 + step_tokens), block
        else:
            tokens = min(seq, window) if window else seq
        tokens = math.ceil(math.ceil(tokens / layout.cp) / block) * block + extra
        total += layers_with_it * tokens * per_token
    return total


def mtp_kv_layers(arch: Architecture, engine: runtime.Engine, stage: Stage) -> int:
    """MTP layers whose KV cache a rank of ``stage`` keeps: with speculative decoding, vLLM
    builds the drafter on the last pipeline rank only (``gpu_model_runner.py``: ``if
    self.speculative_config and get_pp_group().is_last_rank``; the draft's own parallel config
    has pipeline_parallel_size=1, ``SpeculativeConfig.create_draft_parallel_config``, 0.33.0
    wheel), and its attention layers register in the same forward context as the target's
    (``llm_base_proposer.py`` ``load_model``: draft layers = all attention layers minus the
    target's), so their KV specs join the target's: MLA or full attention like the target's,
    one group, one block holding every layer's slice, and tokens per block shrink by layers /
    (layers + MTP layers)."""
    if not engine.speculative_tokens or not stage.last:
        return 0
    module = mtp_module(arch)
    return module.layers if module is not None else 0


def _mtp_kv_per_token(arch: Architecture, layout: Layout, kv: KVFormat) -> int:
    """One token's K/V in one MTP layer on one rank: a full-attention layer of the target's
    kind (DeepseekV2DecoderLayer's MLA; Qwen3NextDecoderLayer with layer_type full_attention)."""
    first = next((i for i in range(arch.num_hidden_layers) if arch.is_attention_layer(i)), 0)
    return kv_bytes_per_token_on_rank(arch, layout, kv, first)


def _attention_windows(arch: Architecture, layers: range) -> tuple[tuple[int, ...], tuple[tuple[int | None, int], ...]]:
    """The attention layers among ``layers`` and how many of them have each sliding window
    (``arch.layer_windows``; None: full attention), memoized per architecture object and
    layer range (a search sizes the KV cache of the same stages many times)."""
    key = (id(arch), layers.start, layers.stop, layers.step)
    if (hit := _hit(_ATTENTION_WINDOWS, key, arch)) is not None:
        return hit
    attention = tuple(i for i in layers if arch.is_attention_layer(i))
    counts: dict[int | None, int] = {}
    for i in attention:
        window = arch.layer_windows[i] if arch.layer_windows else None
        counts[window] = counts.get(window, 0) + 1
    value = attention, tuple(counts.items())
    return _keep(_ATTENTION_WINDOWS, key, arch, value)


_ATTENTION_WINDOWS: dict[tuple, tuple[Architecture, tuple]] = {}


def _live_per_token(arch: Architecture, layout: Layout) -> float:
    """Elements per token alive at the peak of one layer's forward pass (the caching
    allocator frees each intermediate once its last reader ran): in attention the
    residual, the normed input, the fused q/k/v output and the attention output
    (``2h + 2q + 2kv``); in a gated MLP the residual, the normed input, the fused
    gate_up output and SiluAndMul's output (``2h + 3I``: vLLM ``MergedColumnParallel
    Linear`` + ``SiluAndMul``; transformers' ``act(gate(x)) * up(x)`` also holds three
    I-wide tensors at the product); fused MoE's three intermediate caches,
    ``fused_moe.py``: M x topk x (2N + N + K).  Widths are per tensor-parallel rank."""
    h, tp = arch.hidden_size, layout.tp
    q = arch.num_attention_heads * arch.head_dim / tp
    kv = arch.num_key_value_heads * arch.head_dim / tp
    per_token = max(2 * h + 2 * q + 2 * kv, 2 * h + 3 * arch.intermediate_size / tp)
    expert = next((t for t in arch.tensors if t.role == "expert_down"), None) if arch.num_experts else None
    if expert is not None:
        n = expert.shape[1] / layout.expert_tp
        per_token = max(per_token, 2 * h + arch.experts_per_token * (3 * n + h))
    return per_token


def _inference_activations(arch: Architecture, layout: Layout, workload: Workload, dtype_bytes: int,
                           engine: runtime.Engine, last: bool = True) -> int:
    """Peak transient memory of a forward pass.

    vLLM: the profiling run of ``max_num_batched_tokens`` tokens
    (``gpu_model_runner.profile_run``; vllm_budget_rules.md sec. 2) with the live
    intermediates of ``_live_per_token``, plus, on the last pipeline stage, the sampler
    warm-up's fp32 logits for ``min(max_num_seqs, max_num_batched_tokens)`` rows; where
    the warm-up sorts them (PyTorch top-k/top-p: V0, V1 before 0.17 without FlashInfer)
    its own peak, about ten such copies over the hidden states, is larger.  Like
    vLLM's budget it depends on the batching limits, not on the requested concurrency
    (the KV cache takes the rest).  An estimate; vLLM prints the measured figure.

    transformers ``generate()``: the prefill of every prompt at once; before 4.45 the
    lm_head's output over every prompt token in the model dtype and its fp32 copy
    (``logits.float()``), after it the next token's logits only
    (data/runtime.toml [transformers.logits_to_keep])."""
    vocab = arch.vocab_size
    if engine.name == "transformers":
        tokens = workload.batch * max(1, workload.prompt)
        logits_rows = tokens if engine.prompt_logits else workload.batch
        logits = logits_rows * vocab * (dtype_bytes + 4) if last else 0
        return math.ceil(tokens * _live_per_token(arch, layout) * dtype_bytes + logits)
    tokens = engine.max_num_batched_tokens
    rows = min(engine.max_num_seqs, tokens)
    forward = tokens * _live_per_token(arch, layout) * dtype_bytes
    if not last:
        return math.ceil(forward)
    logits = rows * vocab * 4
    # the sampler warm-up after the forward pass: the hidden states stay, the layer
    # intermediates are freed (data/runtime.toml [vllm.sampler])
    warm_up = tokens * arch.hidden_size * dtype_bytes + runtime.sampler_copies(engine) * logits
    return math.ceil(max(forward + logits, warm_up))


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
    every = []
    for stage in stages(arch, layout):
        parts, details, kv_seq = _stage_parts(arch, workload, layout, gpu, fmt, kv, engine, stage, attn)
        every.append((stage, parts))
        if best is None or parts.total > best[0].total:
            best = (parts, stage.index, details, kv_seq)
    assert best is not None
    parts, stage, details, kv_seq = best
    if workload.training:
        return MemoryResult(parts, stage, gpu.usable_memory_bytes, kv_seq, None, details, tuple(every))
    if engine.kv_budget == "sglang":
        return _sglang_memory(arch, workload, layout, gpu, kv, engine, every, stage, kv_seq)
    if engine.kv_budget == "trtllm":
        total = gpu.usable_memory_bytes

        def trt_pool(p: Parts) -> int:
            """TensorRT-LLM's KV pool on a rank whose other memory is ``p`` less its KV cache: the fraction of
            what that leaves of CUDA's total (trtllm_budget_rules.md: (total - peak) x fraction)."""
            return int(engine.free_fraction * max(0, total - (p.total - p.kv_cache)))

        usable = parts.total - parts.kv_cache + trt_pool(parts)
        cap, concurrency = kv_capacity(arch, workload, layout, kv, engine, usable, every, pool_of=trt_pool)
        return MemoryResult(parts, stage, usable, kv_seq, concurrency, details, tuple(every), cap)
    usable = int(gpu.usable_memory_bytes * gpu_memory_utilization)
    cap, concurrency = kv_capacity(arch, workload, layout, kv, engine, usable, every)
    return MemoryResult(parts, stage, usable, kv_seq, concurrency, details, tuple(every), cap)


def _longest(bytes_at: Any, budget: int, hi: int, per_block: int = 0, block: int = 1, cp: int = 1) -> int:
    """The largest length L <= hi with bytes_at(L) <= budget (bytes_at grows with L).

    ``per_block`` > 0 says bytes_at(L) = per_block x ceil(ceil(L / cp) / block) (no sliding
    window: every layer keeps whole blocks of the sequence, ``kv_bytes_per_sequence``), so L is
    read off directly: ceil(ceil(L / cp) / block) <= k  <=>  L <= k x block x cp.  Otherwise a
    binary search."""
    if per_block > 0:
        return max(0, min(hi, budget // per_block * block * cp))
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if bytes_at(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True)
class HybridPages:
    """vLLM's one page size for attention blocks and recurrent states (vllm_budget_rules.md
    sec. 10): ``page_bytes`` per layer slot, ``group_size`` layer slots, each shared by one
    layer of every group; a request holds ceil(len / block_size) blocks in each attention
    group and one block in each state group."""

    block_size: int
    page_bytes: int
    group_size: int
    attention_groups: int
    state_groups: int
    state_blocks: int = 1           # blocks a request holds in each state group: 1 + num_speculative_tokens
                                    # under speculative decoding (MambaSpec.num_speculative_blocks)

    def blocks_per_request(self, tokens: int) -> int:
        return self.attention_groups * -(-tokens // self.block_size) + self.state_groups * self.state_blocks


def hybrid_pages(arch: Architecture, layout: Layout, kv: KVFormat, engine: runtime.Engine,
                 layers: range, extra_attention: int = 0) -> HybridPages | None:
    """The unified pages of a hybrid (attention + recurrent) model's stage under vLLM's
    V1 hybrid allocator, from the version runtime.toml [vllm.hybrid_pages] names; None for
    other models, engines and versions.  As read in 0.10.2 (model_executor/models/config.py
    HybridAttentionMambaModelConfig, v1/core/kv_cache_utils.py
    _get_kv_cache_config_uniform_page_size) and 0.33.0 (platforms/interface.py
    _align_hybrid_block_size, the same rule with FlashAttention's 16-token kernel blocks):
    the attention block grows to 16 * ceil(state_page / (16 * attention_page_per_token))
    tokens and the state page is padded to the attention page; layers are grouped by kind
    into groups of min(attention layers, recurrent layers).  Speculative decoding adds the draft's
    MTP attention layers (``extra_attention``, ``mtp_kv_layers``) to the attention layers and gives
    each state 1 + num_speculative_tokens blocks per request (0.33.0 wheel:
    model_executor/layers/mamba/abstract.py sets num_speculative_blocks = num_speculative_tokens
    unless cache_config.use_replayssm, default False in config/cache.py; v1/kv_cache_interface.py
    MambaSpec.max_memory_usage_bytes = page x (1 + num_speculative_blocks))."""
    if engine.name != "vllm" or not runtime.hybrid_pages_apply(engine):
        return None
    attn = [i for i in layers if arch.is_attention_layer(i)]
    rec_all = recurrent.recurrent_layers(arch)
    rec = [i for i in rec_all if i in layers]
    if not attn or not rec:
        return None
    per_token = max(kv_bytes_per_token_on_rank(arch, layout, kv, i) for i in attn)
    conv = arch.conv_state_elements / len(rec_all)
    if arch.conv_kernel:
        conv = conv * (arch.conv_kernel - 1) / arch.conv_kernel     # vLLM keeps kernel - 1 columns
    state_bits = conv * RECURRENT_STATE_BITS + arch.ssm_state_elements / len(rec_all) * arch.serving_ssm_bits
    state_page = math.ceil(state_bits / 8 / layout.tp)
    align = engine.kv_block_size
    block = max(align, align * -(-state_page // (align * per_token)))
    n_attn = len(attn) + extra_attention
    size = min(n_attn, len(rec))
    return HybridPages(block_size=block, page_bytes=block * per_token, group_size=size,
                       attention_groups=-(-n_attn // size), state_groups=-(-len(rec) // size),
                       state_blocks=1 + engine.speculative_tokens)


def _hybrid_capacity(pages: HybridPages, pool: int, engine: runtime.Engine, seq: int, per_replica: int,
                     limit: int) -> tuple[KVCapacity, int]:
    """What vLLM prints and admits with unified pages: ``num_blocks = pool // page //
    group_size``; "GPU KV cache size" = num_blocks // number of groups * block_size;
    concurrency = num_blocks / blocks per max_model_len request (kv_cache_utils.py 0.10.2)."""
    blocks = pool // pages.page_bytes // pages.group_size
    groups = pages.attention_groups + pages.state_groups
    tokens = blocks // groups * pages.block_size

    def longest(count: int) -> int:
        fit = (blocks // count - pages.state_groups * pages.state_blocks) // pages.attention_groups * pages.block_size
        return max(0, min(fit, limit))

    need = pages.blocks_per_request(engine.max_model_len)
    cap = KVCapacity(pool_bytes=pool, tokens=tokens, max_model_len=engine.max_model_len,
                     concurrency_at_max_model_len=blocks / need, max_context_single=longest(1),
                     max_context_at_concurrency=longest(per_replica), starts=need <= blocks,
                     shortfall_bytes=max(0, need - blocks) * pages.page_bytes * pages.group_size)
    return cap, blocks // pages.blocks_per_request(max(1, seq))


def _sglang_memory(arch: Architecture, workload: Workload, layout: Layout, gpu: GPU, kv: KVFormat,
                   engine: runtime.Engine, every: list[tuple[Stage, Parts]], stage: int, kv_seq: int) -> MemoryResult:
    """SGLang's budget (``runtime.sglang_budget``): the weights and the KV pool share ``mem_fraction_static``
    of the memory free before the weights load; the pool is what the weights leave of it (on the tightest
    rank), cut into tokens of every layer on the rank.  Activations, CUDA graphs and the request pools are
    SGLang's reserve outside that share, so they are not parts of the total here (``details`` gives the
    reserve)."""
    budget = runtime.sglang_budget(engine, gpu, layout, arch.attention == "mla", multimodal_model(arch))
    inside = [(st, replace(p, activations=0, overhead=0, encoder_cache=0)) for st, p in every]
    parts = next(p for st, p in inside if st.index == stage)
    details = {"sglang/pre_load_free": budget.pre_load_free_bytes,
               "sglang/reserve_outside_budget": budget.pre_load_free_bytes - budget.budget_bytes}
    cap, concurrency = kv_capacity(arch, workload, layout, kv, engine, budget.budget_bytes, inside)
    return MemoryResult(parts, stage, budget.budget_bytes, kv_seq, concurrency, details, tuple(inside), cap)


def multimodal_model(arch: Architecture) -> bool:
    """A model with a vision tower (SGLang's is_multimodal)."""
    return any(t.role in ("vision", "vision_proj") for t in arch.tensors)


def kv_capacity(arch: Architecture, workload: Workload, layout: Layout, kv: KVFormat, engine: runtime.Engine,
                usable: int, every: list[tuple[Stage, Parts]],
                pool_of: Callable[[Parts], int] | None = None) -> tuple[KVCapacity, int | None]:
    """The KV pool of every stage and what it holds (vllm_budget_rules.md sec. 4): the
    budget left after everything else, cut into blocks of ``block_size`` tokens of every
    layer on the rank; vLLM takes the smallest block count over workers.  ``pool_of``: each
    stage's pool from its parts where the engine's rule is not ``usable`` less the rest
    (TensorRT-LLM's).  Returns the capacity and how many sequences of the requested length
    fit (all replicas)."""
    block = engine.kv_block_size
    sglang = engine.kv_budget == "sglang"
    per_replica = -(-workload.batch // layout.dp)
    limit = max(engine.max_model_len, arch.max_position_embeddings or 0, workload.seq)
    by_tokens = runtime.concurrency_by_tokens(engine)
    best: KVCapacity | None = None
    fit_requested: int | None = None
    for stage, parts in every:
        pages = hybrid_pages(arch, layout, kv, engine, stage.layers, mtp_kv_layers(arch, engine, stage))
        if pages is not None:
            # vLLM carves the recurrent state from the same pool as the KV blocks
            pool = (pool_of(parts) + parts.recurrent_state if pool_of else
                    max(0, usable - (parts.total - parts.kv_cache - parts.recurrent_state)))
            cap, requested = _hybrid_capacity(pages, pool, engine, workload.seq, per_replica, limit)
            fit_requested = requested if fit_requested is None else min(fit_requested, requested)
            if best is None or cap.tokens < best.tokens:
                best = cap
            continue
        pool = pool_of(parts) if pool_of else max(0, usable - (parts.total - parts.kv_cache))
        layers = stage.layers
        extra = mtp_kv_layers(arch, engine, stage)     # a draft's MTP layers share the pool's blocks
        block_bytes = (sum(kv_bytes_per_token_on_rank(arch, layout, kv, i) for i in layers)
                       + extra * (_mtp_kv_per_token(arch, layout, kv) if extra else 0)) * block
        if not block_bytes:
            continue
        blocks = pool // block_bytes
        held = blocks * block_bytes

        def seq_bytes(n: int, layers: range = layers, extra: int = extra) -> int:
            return kv_bytes_per_sequence(arch, layout, kv, n, layers, block, engine.windows,
                                         engine.max_num_batched_tokens, extra_layers=extra)

        # without sliding windows a sequence's bytes are linear in its blocks: the searches are exact arithmetic
        linear = 0 if any(w is not None for w in arch.layer_windows or ()) else block_bytes
        at_max = seq_bytes(engine.max_model_len)
        concurrency = blocks * block / engine.max_model_len if by_tokens else held / at_max
        # vLLM <= 0.9.1 starts only if the KV tokens (no window discount) reach max_model_len
        single = min(blocks * block, limit) if by_tokens else _longest(seq_bytes, held, limit, linear, block, layout.cp)
        starts = blocks * block >= engine.max_model_len if by_tokens else at_max <= held
        lacking = (engine.max_model_len - blocks * block) * block_bytes // block if by_tokens else at_max - held
        cap = KVCapacity(pool_bytes=pool, tokens=blocks * block, max_model_len=engine.max_model_len,
                         concurrency_at_max_model_len=concurrency, max_context_single=single,
                         max_context_at_concurrency=_longest(lambda n: per_replica * seq_bytes(n), held, limit,
                                                             per_replica * linear, block, layout.cp),
                         # SGLang starts with any pool that holds a request and caps requests at it: max_req_len
                         # = min(context_len - 1, pool - 1), max_req_input_len = max_req_len - 5, asserted > 0
                         # (tp_worker.py l.287-294, 0.5.9 wheel)
                         starts=blocks > 6 if sglang else (engine.name != "vllm" or starts),
                         shortfall_bytes=0 if starts or sglang or engine.name != "vllm" else max(0, lacking))
        requested = held // seq_bytes(workload.seq + engine.speculative_tokens)
        fit_requested = requested if fit_requested is None else min(fit_requested, requested)
        if best is None or cap.tokens < best.tokens:
            best = cap
    if best is None:
        best = KVCapacity(0, 0, engine.max_model_len, 0.0, 0, 0, True)
    return best, None if fit_requested is None else fit_requested * layout.dp


def _stage_parts(arch: Architecture, workload: Workload, layout: Layout, gpu: GPU, fmt: WeightFormat,
                 kv: KVFormat, engine: runtime.Engine, stage: Stage, attn: str) -> tuple[Parts, dict[str, int], int]:
    """One rank of ``stage``: its parts, their sub-parts (``details``: overhead terms,
    activation terms...) and, in inference, the KV bytes of one sequence."""
    tensors = stage_tensors(arch, stage)
    overhead = runtime.overhead_bytes(layout, workload, gpu, engine)
    details = {f"overhead/{k}": v for k, v in overhead.items()}
    if not workload.training:
        parts, kv_seq = _inference_parts(arch, workload, layout, fmt, kv, engine, stage, tensors,
                                         sum(overhead.values()))
        if engine.speculative_tokens:       # part of weights: the draft's MTP layers (0 off the last stage)
            details["weights/mtp_layers"] = mtp_weight_bytes(arch, layout, fmt, engine, stage)
        if (pad := _mxfp4_padding(arch, layout, gpu, fmt, engine, tensors)):
            details["weights/mxfp4_kernel_layout"] = pad
            parts = replace(parts, weights=parts.weights + pad)
        return parts, details, kv_seq
    weights, states = _training_states(arch, workload, layout, fmt, tensors, details)
    gathered = runtime.gathered_params_bytes(arch, layout, workload, tensors, shard_factor)
    details["weights/gathered_for_zero3"] = gathered
    root = fsdp_root_bytes(workload.settings, layout, arch, tensors, shard_factor)   # FSDP's root unit stays gathered
    details["weights/fsdp_root_unsharded"] = root
    gathered += root
    acts = _training_activations(arch, workload, layout, stage, attn)
    for k, v in acts.parts.items():
        details[f"activations/{k}"] = v
    activations, gradients = _coexisting_at_peak(workload, layout, acts, states.gradients, details)
    return Parts(weights=weights + gathered, activations=activations, gradients=gradients,
                 optimizer=states.optimizer, overhead=sum(overhead.values())), details, 0


def _inference_parts(arch: Architecture, workload: Workload, layout: Layout, fmt: WeightFormat, kv: KVFormat,
                     engine: runtime.Engine, stage: Stage, tensors: list[Tensor], overhead: int) -> tuple[Parts, int]:
    """Serving: the rank's weights, the KV cache of its replica's share of the requests
    (``kv_bytes_per_sequence``) and the forward pass's transient peak
    (``_inference_activations``).  Returns the parts and one sequence's KV bytes.

    A text-only vLLM deployment (``--images-per-request 0``: ``--limit-mm-per-prompt`` 0 for
    the tower's modalities) builds no vision tower or projector: "Tower model components are
    automatically skipped when --limit-mm-per-prompt is set to zero for all of their
    modalities" (vllm/model_executor/models/interfaces.py _mark_tower_model, from the 0.15.0
    wheel: ``runtime.skips_unused_tower``; older versions, SGLang and TensorRT-LLM keep it)."""
    if workload.images == 0 and runtime.skips_unused_tower(engine):
        tensors = [t for t in tensors if t.role not in ("vision", "vision_proj")]
    weights = rank_weight_bytes(tensors, arch, layout, fmt, training=False) + mtp_weight_bytes(arch, layout, fmt,
                                                                                               engine, stage)
    # speculative decoding: the scheduler allocates num_lookahead_tokens (= num_speculative_tokens for MTP)
    # slots past each running request's tokens (v1/core/sched/scheduler.py allocate_slots; vllm/config/vllm.py
    # num_lookahead_tokens, 0.33.0 wheel)
    kv_seq = kv_bytes_per_sequence(arch, layout, kv, workload.seq + engine.speculative_tokens, stage.layers,
                                   engine.kv_block_size, engine.windows, engine.max_num_batched_tokens,
                                   extra_layers=mtp_kv_layers(arch, engine, stage))
    # speculative decoding leaves the profiling pass as it is: max_num_scheduled_tokens = max_num_batched_tokens
    # (vllm/config/vllm.py _set_max_num_scheduled_tokens) and the drafter's dummy pass runs over the same tokens
    # after the target's (gpu_model_runner.py _dummy_run, drafter.dummy_run; 0.33.0 wheel), one MTP layer whose
    # intermediates are no wider than a decoder layer's; the rejection sampler's warm-up is not modelled
    acts = _inference_activations(arch, layout, workload, 2, engine, last=stage.last)
    per_replica = -(-workload.batch // layout.dp)      # dp replicas share the requests
    # vLLM CacheConfig.mamba_cache_dtype / mamba_ssm_cache_dtype default "auto": conv and
    # SSM state both in the model dtype (vllm/config/cache.py), 16 bits here; speculative decoding keeps
    # 1 + num_speculative_tokens states per sequence (hybrid_pages: MambaSpec.num_speculative_blocks)
    state = recurrent.state_bytes_per_sequence(arch, RECURRENT_STATE_BITS, arch.serving_ssm_bits,
                                               stage.layers, layout.tp) * (1 + engine.speculative_tokens)
    encoder = 0
    if engine.name == "vllm" and stage.first:    # the tower runs where the embeddings are looked up
        encoder = encoder_cache_bytes(arch, engine.max_num_batched_tokens, engine.max_num_seqs,
                                      engine.max_model_len, 0 if workload.images == 0 else None)
        # profile_run encodes its dummy images before the text forward pass and vLLM charges
        # the peak of the whole run: the tower's peak where it exceeds the cache plus the forward's
        tower = encoder_activation_bytes(arch, layout.tp, engine.max_num_batched_tokens, engine.max_num_seqs,
                                         engine.max_model_len, 0 if workload.images == 0 else None)
        acts = max(acts, tower - encoder)
    return Parts(weights=weights, kv_cache=kv_seq * per_replica, activations=acts, overhead=overhead,
                 recurrent_state=state * per_replica, encoder_cache=encoder), kv_seq


def _mxfp4_padding(arch: Architecture, layout: Layout, gpu: GPU, fmt: WeightFormat, engine: runtime.Engine,
                   tensors: list[Tensor]) -> int:
    """vLLM's MXFP4 MoE kernels: the padded, re-laid-out routed experts less what the format
    counted for them (``rigsize.memory.mxfp4_moe``); 0 for other formats and engines."""
    if fmt.name != "mxfp4" or engine.name != "vllm":
        return 0
    backend = mxfp4_moe.backend(gpu, engine)
    if backend is None:
        return 0
    experts = [t for t in tensors if t.role.startswith("expert_")]
    counted = rank_weight_bytes(experts, arch, layout, fmt, training=False)
    return mxfp4_moe.padding_bytes(experts, layout, backend, counted)


def mtp_weight_bytes(arch: Architecture, layout: Layout, fmt: WeightFormat, engine: runtime.Engine,
                     stage: Stage) -> int:
    """The draft's MTP layers on one rank of ``stage`` (``rigsize.model.mtp``): on the last
    pipeline stage only (``mtp_kv_layers``), sharded over the target's tp and ep like a decoder
    layer (the draft's tensor_parallel_size defaults to the target's,
    ``SpeculativeConfig._verify_and_get_draft_tp``; expert parallelism is inherited for an MoE
    draft, ``create_draft_parallel_config``), quantized like the target (``quantization``
    defaults to the target's, ``SpeculativeConfig.__post_init__``), DeepSeek's ``eh_proj`` an
    unsharded 16-bit ``nn.Linear`` (``deepseek_mtp.py``); the draft's embedding and head are
    the target's (0.33.0 wheel)."""
    if not mtp_kv_layers(arch, engine, stage):
        return 0
    module = mtp_module(arch)
    assert module is not None       # mtp_kv_layers found it
    return rank_weight_bytes(list(module.tensors), arch, layout, fmt, training=False)


def _training_states(arch: Architecture, workload: Workload, layout: Layout, fmt: WeightFormat,
                     tensors: list[Tensor], details: dict[str, int]) -> tuple[int, Parts]:
    """(weights on the rank, the trained parameters' states after ZeRO sharding): LoRA
    trains adapters on frozen weights (``_adapter_states``), the other tasks every
    parameter (``_full_states``); bytes per trained parameter from ``state_bytes``."""
    adapters = workload.task in ("lora", "qlora")
    per_param = state_bytes(workload.settings, workload.optimizer, adapters)
    if adapters:
        return _adapter_states(arch, workload, layout, fmt, tensors, per_param, details)
    return _full_states(arch, workload, layout, tensors, per_param)


def _adapter_states(arch: Architecture, workload: Workload, layout: Layout, fmt: WeightFormat,
                    tensors: list[Tensor], per_param: StateBytes, details: dict[str, int]) -> tuple[int, Parts]:
    """LoRA / QLoRA: the frozen base weights (sharded under ZeRO-3, gone when offloaded)
    plus the adapters (``lora_params``) with their gradients and optimizer states."""
    recipe = workload.settings
    # PEFT's prepare_model_for_kbit_training casts every unquantized tensor (embeddings,
    # lm_head, norms) to fp32; formats.tensor_bits(training=True) prices them so, once
    upcast = workload.task == "qlora" and recipe.upcast_unquantized
    frozen = rank_weight_bytes(tensors, arch, layout, fmt, training=upcast)
    if upcast:
        details["weights/unquantized_upcast_fp32"] = frozen - rank_weight_bytes(tensors, arch, layout, fmt,
                                                                                 training=False)
    if layout.zero == 3:      # ZeRO-3 / FSDP shard frozen parameters too
        frozen = 0 if layout.offload == "params" else math.ceil(frozen / layout.zero_shards)
    trainable = lora_params(tensors, arch, layout, workload.lora_rank, workload.lora_targets)
    states = _sharded_states(per_param, trainable, layout, layout.zero_shards, recipe)
    return frozen + states.weights, states


def _full_states(arch: Architecture, workload: Workload, layout: Layout, tensors: list[Tensor],
                 per_param: StateBytes) -> tuple[int, Parts]:
    """Every parameter trained: dense parameters sharded over the data-parallel group,
    experts over the expert-data-parallel group (``_sharded_states``); no weights on the
    GPU when parameters are offloaded."""
    recipe = workload.settings
    dense, experts = _dense_and_experts(tensors, arch)
    largest = _largest_shard(tensors, arch, layout)
    a = _sharded_states(per_param, _rank_params(dense, arch, layout), layout, layout.zero_shards, recipe, largest)
    b = _sharded_states(per_param, _rank_params(experts, arch, layout), layout, layout.expert_zero_shards,
                        recipe, largest)
    states = Parts(weights=a.weights + b.weights, gradients=a.gradients + b.gradients,
                   optimizer=a.optimizer + b.optimizer)
    return (0 if layout.offload == "params" else states.weights), states


def _dense_and_experts(tensors: list[Tensor], arch: Architecture) -> tuple[list[Tensor], list[Tensor]]:
    """``tensors`` split into dense ones and routed experts (sharded over different groups);
    memoized like ``_rank_params`` (the key names the slice by its ends and length)."""
    if not tensors:
        return [], []
    key = (id(arch), tensors[0].name, tensors[-1].name, len(tensors))
    if (hit := _hit(_SPLIT, key, arch)) is not None:
        return hit
    value = ([t for t in tensors if not t.role.startswith("expert_")],
             [t for t in tensors if t.role.startswith("expert_")])
    return _keep(_SPLIT, key, arch, value)


_SPLIT: dict[tuple, tuple[Architecture, tuple[list[Tensor], list[Tensor]]]] = {}


def _training_activations(arch: Architecture, workload: Workload, layout: Layout, stage: Stage,
                          attn: str) -> ActivationBreakdown:
    """The stage's saved activations (``activation_bytes``), with the framework's
    accounting (megatron for Megatron-LM, hf otherwise) and its recipe's loss,
    offloading and checkpointing settings.

    Memoized per architecture object and everything else the result depends on (a layout
    search asks for the same stage under many data-parallel sizes and ZeRO stages, which
    do not change activations); callers read the result and must not change it."""
    # 1F1B: stage s keeps pp - s micro-batches in flight (Narayanan et al. 2021, sec. 2.2.1)
    in_flight = max(1, min(layout.pp - stage.index, workload.grad_accum))
    # every workload field but global_batch (a tuple: a dataclasses.replace per call cost a planner's search 5%)
    fields = tuple(v for k, v in vars(workload).items() if k != "global_batch")
    key = (id(arch), fields, layout.tp, layout.sp, layout.cp, layout.pp,
           layout.recompute, stage.layers.start, stage.layers.stop, stage.first, stage.last, attn, in_flight)
    if (hit := _hit(_ACTIVATIONS, key, arch)) is not None:
        return hit
    result = _stage_activations(arch, workload, layout, stage, attn, in_flight)
    return _keep(_ACTIVATIONS, key, arch, result)


_ACTIVATIONS: dict[tuple, tuple[Architecture, ActivationBreakdown]] = {}


def _stage_activations(arch: Architecture, workload: Workload, layout: Layout, stage: Stage, attn: str,
                       in_flight: int) -> ActivationBreakdown:
    recipe = workload.settings
    lora = None
    if workload.task in ("lora", "qlora"):   # adapter dtype per framework (PEFT's autocast_adapter_dtype=True: fp32)
        lora = LoraSpec(targets=workload.lora_targets or ALL_LINEAR, rank=workload.lora_rank,
                        adapter_bits=recipe.adapter_input_bits)
    return activation_bytes(
        arch, micro_batch=workload.batch, seq=workload.seq,
        impl="megatron" if workload.framework == "megatron" else "hf",
        recompute=layout.recompute, attn=attn, lora=lora, tp=layout.tp, sp=layout.sp, cp=layout.cp,
        pp=layout.pp, layers=stage.layers, first=stage.first, last=stage.last,
        in_flight_microbatches=in_flight,
        loss=recipe.loss, loss_chunks=recipe.loss_chunks, offload=recipe.activation_offload, loss_transient=True,
        loss_compiled=recipe.compiled_loss,
        selective_ac=recipe.selective_ac, loss_shift_copy=recipe.loss_shift_copy,
        # PEFT's QLoRA upcast makes the embedding output, hence the residual stream, fp32 (activation_bytes)
        residual_bits=32 if workload.task == "qlora" and recipe.upcast_unquantized else None,
        head_copy=workload.task == "qlora" and recipe.upcast_unquantized,   # autocast's bf16 lm_head (activation_bytes)
        dequantized_base=workload.task == "qlora",   # a 4-bit layer's matmul on a dequantized weight copy
    )


def _coexisting_at_peak(workload: Workload, layout: Layout, acts: ActivationBreakdown, grads: int,
                        details: dict[str, int]) -> tuple[int, int]:
    """(activations, gradients) charged at the step's memory peak (``_backward_peak``),
    after PyTorch DDP's gradient buckets where they apply."""
    recipe = workload.settings
    if layout.zero == 0 and layout.zero_shards > 1 and workload.framework not in ("megatron", "deepspeed"):
        # PyTorch DDP allocates all-reduce buckets the size of every gradient at construction and
        # keeps them; with its default gradient_as_bucket_view=False the gradients are separate
        # tensors too, so gradient memory doubles and persists (torch.nn.parallel.
        # DistributedDataParallel docs, gradient_as_bucket_view; as_of 2026-12-01)
        details["gradients/ddp_buckets"] = grads
        grads, recipe = 2 * grads, replace(recipe, persistent_grads=True)
    activations, gradients = _backward_peak(acts, grads, recipe,
                                            workload.global_batch // max(1, workload.batch * layout.dp))
    details["activations/not_coexisting"] = acts.total - activations   # freed before the peak
    return activations, gradients
