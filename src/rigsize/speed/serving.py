"""Inference speed under continuous batching: TTFT, TPOT, throughput.

One engine step on one GPU costs the larger of its compute time and its memory time
(the roofline model, Williams et al. 2009), plus tensor-parallel all-reduces, pipeline
hand-offs and a fixed per-step overhead:

- compute: 2 FLOPs per multiply-accumulate of every weight a token uses (routed experts
  at top-k), plus attention's ``4 * heads * head_dim * context`` per token and layer
  (QK^T and PV); achievable fraction of the dense peak of the dtype the GPU runs;
- memory: the weights the step touches (for MoE, the experts a batch of T tokens
  touches, ``E * (1 - (1 - k/E)^T)`` per layer) plus the KV cache of every sequence in
  the step, at achievable HBM bandwidth; under data-parallel attention with expert
  parallelism the experts on a GPU take every replica's tokens (dp x T);
- communication: two all-reduces of the step's hidden states per layer at tp > 1
  (Megatron-LM's row-parallel outputs, Shoeybi et al. 2019, sec. 3); under data-parallel
  attention with expert parallelism, an all-gather and a reduce-scatter of the replicas'
  hidden states per MoE layer (vLLM's default allgather_reducescatter all2all).

Continuous batching at a closed-loop concurrency ``B`` (``vllm bench serve
--max-concurrency B``) is solved as a steady state: requests spend ``TTFT + (O - 1)
TPOT`` in the system (Little's law gives the completion rate), prefill chunks of new
requests ride along the decode steps of running ones (vLLM's chunked prefill, decode
first, then prefill up to ``max_num_batched_tokens``), which slows TPOT; a new
request's prompt takes ``ceil(P / free budget)`` mixed steps after queueing behind the
*other* clients' prompts (a request never waits for itself: at concurrency 1 TTFT is
the prefill alone).  Metrics follow ``vllm bench serve``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from rigsize.hardware.gpus import GPU
from rigsize.memory.per_gpu import kv_bytes_per_token_on_rank, rank_weight_bytes, stage_tensors
from rigsize.memory.runtime import Engine
from rigsize.model.architecture import Architecture
from rigsize.model.formats import KVFormat, WeightFormat
from rigsize.model.mtp import mtp_module
from rigsize.model.tensors import Tensor
from rigsize.model.vision import VISION_ROLES, EncoderWork
from rigsize.planning.layout import Layout, Stage, pipeline_stages
from rigsize.speed.roofline import (
    Efficiency,
    allgather_seconds,
    allreduce_seconds,
    compute_dtype,
    group_bandwidth,
    link_bandwidth,
    peak_bandwidth,
    peak_flops,
    roofline,
)

ACT_BYTES = 2   # bf16/fp16 hidden states between layers and in all-reduces


@dataclass(frozen=True)
class ModelCost:
    """Per-GPU quantities of the busiest pipeline stage that a step's cost needs."""

    linear_flops_per_token: float      # 2 x weights used per token (experts at top-k), on this GPU
    lm_head_flops_per_token: float     # only for sampled tokens (last stage)
    dense_weight_bytes: float          # non-expert weights on this GPU
    expert_bytes_per_layer: float      # one routed expert's bytes on this GPU (0 for dense models)
    moe_layers: int                    # MoE layers on the stage
    attn_flops_per_token_ctx: float    # attention FLOPs per token per context token (all stage layers)
    kv_bytes_per_token: float          # KV bytes per context token (all stage layers, this GPU)
    windows: tuple[int | None, ...]    # sliding windows of the stage's layers
    layers: int
    expert_flops_per_token: float = 0.0   # the routed experts' part of linear_flops_per_token
    kept_weight_bytes: float = 0.0     # the part of dense_weight_bytes the format leaves unquantized (lm_head...)


NOT_PER_TOKEN = ("embed", "pos_embed", "vision", "vision_proj")


def model_cost(arch: Architecture, layout: Layout, fmt: WeightFormat, kv: KVFormat) -> ModelCost:
    """The cost of the slowest pipeline stage, which paces every step: the stage (vLLM's
    layer split, the same stages memory sizes) that streams the most weight bytes."""
    costs = [_stage_cost(arch, layout, fmt, kv, s) for s in pipeline_stages(arch.num_hidden_layers, layout)]
    return max(costs, key=lambda c: c.dense_weight_bytes + c.expert_bytes_per_layer * c.moe_layers)


def _stage_cost(arch: Architecture, layout: Layout, fmt: WeightFormat, kv: KVFormat, st: Stage) -> ModelCost:
    """One stage's ``ModelCost``; memoized per architecture object (held in the cache),
    layout, formats and stage (a search times the same stage for several engines and
    concurrencies)."""
    key = (id(arch), layout, fmt, kv, st)
    hit = _STAGE_COSTS.get(key)
    if hit is not None and hit[0] is arch:
        return hit[1]
    value = _stage_cost_of(arch, layout, fmt, kv, st)
    if len(_STAGE_COSTS) > 1024:
        _STAGE_COSTS.clear()
    _STAGE_COSTS[key] = (arch, value)
    return value


_STAGE_COSTS: dict[tuple, tuple[Architecture, ModelCost]] = {}


def _stage_cost_of(arch: Architecture, layout: Layout, fmt: WeightFormat, kv: KVFormat, st: Stage) -> ModelCost:
    tensors = stage_tensors(arch, st)
    layers = st.layers
    experts = [t for t in tensors if t.role.startswith("expert_")]
    # a vision tower and projector run once per image, not per token (rigsize.model.vision)
    dense = [t for t in tensors if not t.role.startswith("expert_") and t.role not in NOT_PER_TOKEN]
    lm_head = [t for t in tensors if t.role == "lm_head" and len(t.shape) == 2]
    if arch.tie_word_embeddings and st.last:
        lm_head = [t for t in arch.tensors if t.role == "embed"]
    from rigsize.memory.per_gpu import shard_factor

    def flops(rows: list[Tensor]) -> float:
        return sum(2 * t.numel / shard_factor(t, arch, layout) for t in rows if len(t.shape) >= 2)

    linear = flops([t for t in dense if t.role != "lm_head"])
    moe_layers = len({t.layer for t in experts})
    expert_bytes = expert_flops = 0.0
    if experts:
        expert_bytes = rank_weight_bytes(experts, arch, layout, fmt, training=False) / max(1, moe_layers)
        per_expert_flops = flops(experts) / max(1, moe_layers) / arch.num_experts * layout.ep
        expert_flops = per_expert_flops * arch.experts_per_token * moe_layers / layout.ep
        linear += expert_flops
    lm_flops = sum(2 * t.numel / layout.tp for t in lm_head)
    # bytes a step streams: every non-expert weight except the embedding table (a lookup
    # reads only its rows), which is read in full when it doubles as the lm_head; the vision
    # tower is not read by a decode step
    streamed = [t for t in tensors if not t.role.startswith("expert_") and t.role not in NOT_PER_TOKEN]
    if arch.tie_word_embeddings and st.last:
        streamed += [t for t in arch.tensors if t.role == "embed"]
    weight_bytes = rank_weight_bytes(streamed, arch, layout, fmt, training=False)
    # what the format keeps at its stored precision (formats.tensor_bits: quantized are 2-D tensors of its roles)
    kept = [t for t in streamed if not (t.role in fmt.quantized_roles and len(t.shape) >= 2)]
    kept_bytes = rank_weight_bytes(kept, arch, layout, fmt, training=False) if kept else 0.0
    attn = _attention_flops_per_layer(arch, layout)
    kv_per_token = sum(kv_bytes_per_token_on_rank(arch, layout, kv, i) for i in layers)
    windows = tuple(arch.layer_windows[i] if arch.layer_windows else None for i in layers)
    return ModelCost(linear, lm_flops, weight_bytes, expert_bytes, moe_layers, attn * len(layers),
                     kv_per_token, windows, len(layers), expert_flops, kept_bytes)


def _attention_flops_per_layer(arch: Architecture, layout: Layout) -> float:
    """Attention FLOPs per token per context token in one layer on one GPU."""
    heads = arch.num_attention_heads / layout.tp
    if arch.attention == "mla":
        kv_b = next(t for t in arch.tensors if t.role == "attn_kv_b" and len(t.shape) == 2)
        # decode with weight absorption (DeepSeek-V2 paper, sec. 2.1.2): QK over the
        # latent + rope width, PV over the latent, 2 FLOPs per MAC
        return 2 * heads * (arch.head_dim + kv_b.shape[1])
    q = next(t for t in arch.tensors if t.role in ("attn_q", "attn_qkv") and len(t.shape) == 2)
    q_width = q.shape[0] if q.role == "attn_q" else arch.num_attention_heads * arch.head_dim
    return 4 * heads * q_width / arch.num_attention_heads


def draft_cost(arch: Architecture, layout: Layout, fmt: WeightFormat, kv: KVFormat) -> ModelCost:
    """One forward pass of the model's MTP layers (``rigsize.model.mtp``) on one GPU of the last
    stage, where vLLM runs the drafter: its decoder layers and input projection, and the target's
    lm_head, which the draft shares and reads again for every draft token
    (``llm_base_proposer.py`` ``_maybe_share_lm_head``, 0.33.0 wheel)."""
    from rigsize.memory.per_gpu import shard_factor

    module = mtp_module(arch)
    assert module is not None           # runtime.check_speculative refused the others
    rows = list(module.tensors)
    head = [t for t in arch.tensors if t.role == "lm_head" and len(t.shape) == 2]
    if arch.tie_word_embeddings:
        head = [t for t in arch.tensors if t.role == "embed"]
    experts = [t for t in rows if t.role.startswith("expert_")]
    dense = [t for t in rows if not t.role.startswith("expert_")]
    linear = sum(2 * t.numel / shard_factor(t, arch, layout) for t in dense if len(t.shape) >= 2)
    moe_layers = len({t.layer for t in experts})
    expert_bytes = 0.0
    if experts:
        expert_bytes = rank_weight_bytes(experts, arch, layout, fmt, training=False) / moe_layers
        per_expert = sum(2 * t.numel / shard_factor(t, arch, layout) for t in experts) / moe_layers
        linear += per_expert / arch.num_experts * arch.experts_per_token * moe_layers
    first = next((i for i in range(arch.num_hidden_layers) if arch.is_attention_layer(i)), 0)
    return ModelCost(linear, sum(2 * t.numel / layout.tp for t in head),
                     rank_weight_bytes(dense + head, arch, layout, fmt, training=False), expert_bytes, moe_layers,
                     _attention_flops_per_layer(arch, layout) * module.layers,
                     module.layers * kv_bytes_per_token_on_rank(arch, layout, kv, first), (None,) * module.layers,
                     module.layers)


@dataclass(frozen=True)
class Speculation:
    """Speculative decoding with the model's own MTP layers: ``tokens`` draft tokens per step
    (vLLM num_speculative_tokens), each accepted with probability ``acceptance``; ``draft`` is
    one pass of the MTP layers (``draft_cost``)."""

    tokens: int
    acceptance: float
    draft: ModelCost

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens a verification step emits, 1 + a + ... + a^K: the accepted prefix of
        the K drafts plus the target's own token (Leviathan et al. 2023, "Fast Inference from
        Transformers via Speculative Decoding", eq. 1, (1 - a^(K+1)) / (1 - a), with each draft
        accepted independently at rate a)."""
        return sum(self.acceptance ** i for i in range(self.tokens + 1))


@dataclass(frozen=True)
class EncoderStep:
    """One request's images through the vision tower and projector, on one GPU of its tp group."""

    seconds: float
    bound: str                 # "compute" | "memory" | "communication" | "overhead"
    flops: float               # the images' tower and projector FLOPs, all tp ranks together
    weight_bytes: float        # tower and projector bytes on this GPU, read once per request


def encoder_time(arch: Architecture, layout: Layout, gpu: GPU, fmt: WeightFormat, eff: Efficiency,
                 work: EncoderWork, images: int) -> EncoderStep:
    """The vision encoder's part of a request's prefill (``work`` per image, ``images`` of them,
    encoded in one batch as vLLM's ``_execute_mm_encoder`` does for a step's scheduled items),
    on the roofline prefill uses: matrix FLOPs at the prefill GEMM efficiency and attention at
    the attention efficiency, of the 16-bit peak (towers are stored unquantized,
    ``rigsize.model.vision``), against one read of the tower's weights; split over tp like the
    text model (vLLM's default mm_encoder_tp_mode "weights", MultiModalConfig in
    vllm/config/multimodal.py, code-index id 885309865: column/row-parallel tower linears; "data"
    mode, one whole tower per rank, is not modelled), with two all-reduces of the positions'
    hidden states per tower layer at tp > 1, and the per-layer launch overhead of a decoder
    layer for each tower layer.  No published per-image encoder time on a stated GPU was found
    to check this against (as of 2026-12-01); the FLOPs are checked against torch's counter."""
    rows = [t for t in arch.tensors if t.role in VISION_ROLES]
    weight_bytes = rank_weight_bytes(rows, arch, layout, fmt, training=False)
    peak = peak_flops(gpu, "bf16")
    compute = images * (work.linear_flops / (peak * (eff.prefill_compute or eff.compute))
                        + work.attention_flops / (peak * eff.attention_compute)) / layout.tp
    memory = weight_bytes / (peak_bandwidth(gpu) * eff.memory)
    comm = 0.0
    if layout.tp > 1:
        message = images * work.tokens * work.width * ACT_BYTES
        comm = 2 * work.layers * allreduce_seconds(message, layout.tp, group_bandwidth(gpu, layout.tp), eff)
    overhead = eff.layer_overhead_s * work.layers
    parts = {"compute": compute, "memory": memory, "communication": comm, "overhead": overhead}
    return EncoderStep(roofline(compute, memory, eff.roofline_p) + comm + overhead,
                       max(parts.items(), key=lambda kv: kv[1])[0], images * work.flops, weight_bytes)


@lru_cache(maxsize=4096)
def _ctx_sum(windows: tuple[int | None, ...], ctx: float) -> float:
    """Context tokens attended, averaged over the stage's layers (windows cap it).
    Memoized: a wave's steps ask for the same few contexts thousands of times."""
    return sum(min(ctx, w) if w else ctx for w in windows) / max(1, len(windows))


@dataclass(frozen=True)
class Step:
    seconds: float
    bound: str        # "compute" | "memory" | "communication" | "overhead"


def step_time(cost: ModelCost, arch: Architecture, layout: Layout, gpu: GPU, fmt: WeightFormat,
              eff: Efficiency, decode_seqs: float, decode_ctx: float, prefill_tokens: float,
              prefill_ctx: float, spec: Speculation | None = None, verify: int = 1,
              sampled_rows: float | None = None) -> Step:
    """One engine step on one GPU: ``decode_seqs`` sequences generating a token at
    average context ``decode_ctx``, plus ``prefill_tokens`` prompt tokens whose chunk
    ends at average context ``prefill_ctx``.

    Speculative decoding (``spec``): each decoding sequence puts its last token and its K
    drafts through the target (``verify`` = K + 1 rows, logits for every row: the rejection
    sampler compares the target's probabilities at each draft position) while its KV cache is
    read once for all of them (one attention call over the sequence's query rows); then the
    drafter's passes follow on the last stage (``_draft_seconds``).  ``sampled_rows`` overrides
    the rows that get logits (the drafter samples one per sequence)."""
    if spec is not None:
        verify = spec.tokens + 1
    rows = decode_seqs * verify
    tokens = rows + prefill_tokens
    sampled = (rows if sampled_rows is None else sampled_rows) + (1 if prefill_tokens else 0)
    dtype = compute_dtype(fmt, gpu)
    # prefill GEMMs have many rows and run nearer peak than decode's skinny ones
    decode_linear = rows * cost.linear_flops_per_token + sampled * cost.lm_head_flops_per_token
    prefill_linear = prefill_tokens * cost.linear_flops_per_token
    attn = (rows * _ctx_sum(cost.windows, decode_ctx)
            + prefill_tokens * _ctx_sum(cost.windows, prefill_ctx)) * cost.attn_flops_per_token_ctx
    # Data-parallel attention with expert parallelism (vLLM --data-parallel-size with --enable-expert-parallel,
    # SGLang/TensorRT-LLM attention DP): the dp replicas' tokens all go through the one set of experts sharded over
    # their ranks, so this GPU's experts see every replica's tokens, not this replica's alone (each replica runs the
    # same step, its batch the same size): dp x the tokens, in FLOPs and in the experts they touch
    share = layout.dp if cost.moe_layers and layout.ep > 1 else 1
    decode_linear += (share - 1) * rows * cost.expert_flops_per_token
    prefill_linear += (share - 1) * prefill_tokens * cost.expert_flops_per_token
    peak = peak_flops(gpu, dtype)
    compute = (decode_linear / (peak * eff.compute) + prefill_linear / (peak * (eff.prefill_compute or eff.compute))
               + attn / (peak_flops(gpu, "bf16") * eff.attention_compute))
    weight_bytes = cost.dense_weight_bytes
    if cost.moe_layers:
        e, k = arch.num_experts, arch.experts_per_token
        touched = e * (1 - (1 - k / e) ** max(tokens * share, 1))     # experts a batch of T tokens touches
        weight_bytes += cost.moe_layers * cost.expert_bytes_per_layer * touched / e
    # each decoding sequence reads its whole KV; a prefill chunk reads its prompt's earlier KV once
    kv_tokens = decode_seqs * _ctx_sum(cost.windows, decode_ctx) + (
        _ctx_sum(cost.windows, prefill_ctx) if prefill_tokens else 0)
    kv_bytes = kv_tokens * cost.kv_bytes_per_token
    # NVFP4 GEMMs stream their weights at a lower fraction of peak than other formats at decode's few rows: on
    # B200 FlashInfer's CUTLASS FP4 GEMM read an 8192 x 8192 weight at 1.78 TB/s at M = 1, where a 16-bit matmul
    # of the same shape reached 5-6 TB/s (flashinfer-ai/flashinfer issue #1732, 2025-09-19, flashinfer 0.3.1), and
    # vLLM's smaller scale-factor tiling for batches up to 32 gained 25-35% output throughput (vllm-project/vllm
    # PR #30885, 2025-12-17).  Fitted per engine and family where NVFP4 runs exist (0: the common fraction); the
    # tensors NVFP4 keeps at 16 bits (lm_head, embeddings, routers) and the KV cache stream at the common fraction
    quantized_eff = eff.nvfp4_memory if fmt.name == "nvfp4" and eff.nvfp4_memory else eff.memory
    kept = min(cost.kept_weight_bytes, weight_bytes)
    memory = ((weight_bytes - kept) / quantized_eff + (kept + kv_bytes) / eff.memory) / peak_bandwidth(gpu)
    comm = 0.0
    if layout.tp > 1:
        message = tokens * arch.hidden_size * ACT_BYTES
        comm = 2 * cost.layers * allreduce_seconds(message, layout.tp, group_bandwidth(gpu, layout.tp), eff)
    if share > 1:
        # each MoE layer gathers the dp replicas' hidden states to every rank (dispatch) and reduce-scatters the
        # experts' outputs back (combine): vLLM's default --all2all-backend allgather_reducescatter ("Standard
        # all2all using allgather/reducescatter primitives", docs.vllm.ai serving/expert_parallel_deployment,
        # v0.12.0; AgRsAll2AllManager: "Gather hidden_states and router_logits from all dp ranks", "Reduce-scatter
        # hidden_states across all dp ranks"); the optimized all-to-alls (DeepEP, NVLink one-sided) are not modelled
        gathered = share * tokens * arch.hidden_size * ACT_BYTES
        bw = group_bandwidth(gpu, layout.tp * layout.dp)
        comm += 2 * cost.moe_layers * allgather_seconds(gathered, layout.dp, bw, eff)
    handoff = 0.0
    if layout.pp > 1:   # one stage-to-stage send per stage boundary (pp - 1 of them per token's trip)
        send = tokens * arch.hidden_size * ACT_BYTES / eff.link
        # stages are tp consecutive GPUs each: the boundaries between servers cross the network
        crossing = min(layout.pp - 1, -(-layout.tp * layout.pp // gpu.scale_up(gpu.node_size)) - 1)
        handoff = (send / link_bandwidth(gpu) * (layout.pp - 1 - crossing)
                   + send / group_bandwidth(gpu, layout.tp * layout.pp) * crossing) / (layout.pp - 1) \
            + eff.collective_latency_s
    overhead = (eff.step_overhead_s + eff.layer_overhead_s * cost.layers
                + eff.moe_layer_overhead_s * cost.moe_layers)
    total = roofline(compute, memory, eff.roofline_p) + comm + overhead
    bound = max({"compute": compute, "memory": memory, "communication": comm, "overhead": overhead}.items(),
                key=lambda kv: kv[1])[0]
    seconds = total * layout.pp + handoff * (layout.pp - 1)
    if spec is not None:
        seconds += _draft_seconds(spec, arch, layout, gpu, fmt, eff, decode_seqs, decode_ctx, prefill_tokens,
                                  prefill_ctx)
    return Step(seconds, bound)


def _draft_seconds(spec: Speculation, arch: Architecture, layout: Layout, gpu: GPU, fmt: WeightFormat,
                   eff: Efficiency, decode_seqs: float, decode_ctx: float, prefill_tokens: float,
                   prefill_ctx: float) -> float:
    """The drafter's share of a step, on the last pipeline stage (vLLM 0.33.0,
    ``llm_base_proposer.py`` ``propose``): a first pass of the MTP layers over every token the
    target just processed (the K + 1 rows of each decoding sequence and the prefill chunk; one
    draft token sampled per sequence), then K - 1 passes over one token per sequence
    (``for token_index in range(self.num_speculative_tokens - 1)``), each reading the MTP
    weights and the shared lm_head again.  They run inside the engine step: no second
    per-step overhead."""
    one_stage = replace(layout, pp=1)
    inside = replace(eff, step_overhead_s=0.0)
    seconds = step_time(spec.draft, arch, one_stage, gpu, fmt, inside, decode_seqs, decode_ctx, prefill_tokens,
                        prefill_ctx, verify=spec.tokens + 1, sampled_rows=decode_seqs).seconds
    if spec.tokens > 1 and decode_seqs:
        seconds += (spec.tokens - 1) * step_time(spec.draft, arch, one_stage, gpu, fmt, inside, decode_seqs,
                                                 decode_ctx, 0, 0).seconds
    return seconds


def _prompt_service(cost: ModelCost, arch: Architecture, layout: Layout, gpu: GPU, fmt: WeightFormat,
                    eff: Efficiency, budget: int, running: int, prompt: int, output: int, encoder: float = 0.0,
                    spec: Speculation | None = None) -> tuple[float, float]:
    """(service, work) of one request's prompt among ``running`` closed-loop clients: the
    engine time of the mixed steps that prefill it, and what its chunks add to steps that
    stream the weights anyway (``_steady_ttft`` explains both)."""
    others = running - 1
    free = max(1, budget - others * _verify(spec))     # a decoding sequence takes K + 1 of the budget
    full, rest = divmod(prompt, free)          # the prompt's chunks: full ones and the remainder
    idle = step_time(cost, arch, layout, gpu, fmt, eff, 0, 0, 0, 0).seconds    # a step that only streams weights
    service = work = 0.0
    packed = None           # engine time per prompt token when the budget is filled with prompts
    for chunk, count in ((free, full), (rest, 1 if rest else 0)):
        if count:
            step = step_time(cost, arch, layout, gpu, fmt, eff, others, prompt + output / 2, chunk, prompt / 2,
                             spec)
            service += count * step.seconds
            alone = max(0.0, step_time(cost, arch, layout, gpu, fmt, eff, 0, 0, chunk, prompt / 2, spec).seconds
                        - idle)
            if chunk < free:
                # a partial chunk shares its step with other prompts' chunks when they queue: what it
                # adds is its share of a full budget's step (a MoE reads the experts once for them all:
                # 64 prompts of 128 tokens in one 8K-token step, not 64 steps' expert streaming)
                if packed is None:
                    full_step = step_time(cost, arch, layout, gpu, fmt, eff, 0, 0, free, prompt / 2, spec).seconds
                    packed = max(0.0, full_step - idle) / free
                alone = min(alone, packed * chunk)
            work += count * alone
    return service + encoder, work + encoder


def _steady_ttft(service: float, work: float, running: int, eff: Efficiency, decoding: float,
                 decode_step: float, recv_interval: int = 1, hold: Hold | None = None) -> float:
    """TTFT of a request arriving desynchronised among ``running`` closed-loop clients
    whose requests each spend TTFT + ``decoding`` seconds in the system (``service`` and
    ``work`` from ``_prompt_service``; ``decode_step`` the step in flight when it arrives).

    A request never waits for itself: by the arrival theorem of closed queueing networks
    (Reiser and Lavenberg 1980, Mean-Value Analysis; Schweitzer's approximation for the
    queue seen), an arriving request finds the engine as the *other* ``running - 1``
    clients load it.  Those decode while its prompt is prefilled in ceil(P / free) mixed
    steps.  The engine's work for a prompt is what its chunks add to a step that
    streams the weights anyway (a short prompt adds almost nothing; a long one adds its
    prefill compute), so the request waits behind the others' prompts as in an M/D/1
    queue of that work (never behind more than all of them), and, when any are
    decoding, half a step on average for the step in flight, or half of ``recv_interval``
    steps where the scheduler polls for new requests only every that many decode steps
    (SGLang ``--scheduler-recv-interval``: ``SchedulerRecvSkipper`` adds 1 per decode step and
    receives when the count reaches the interval, at once after a prefill batch, whose weight
    is 1000; python/sglang/srt/managers/scheduler_recv_skipper.py), plus what TensorRT-LLM's admission
    ``hold`` adds (``_hold_steps``, at the clients' rate over the cycle without it).  A lone client
    (``running = 1``) therefore sees an idle engine: TTFT is its prefill alone.  A request's
    images go through the vision tower (``encoder`` seconds) in its first chunk's step, which
    adds to its service and to the work others wait behind.  The
    others' request rate depends on the TTFT they see too (each client's cycle is TTFT
    + decoding), so TTFT is the fixed point of that loop, found by bisection (the wait
    falls as the cycle grows).
    """
    others = running - 1
    in_flight = 0.5 * max(1, recv_interval) * decode_step if others else 0.0
    if others and hold is not None:
        cycle = service + in_flight + eff.ttft_overhead_s + decoding
        behind = hold.scale * running - 1            # the other clients of every replica the hold counts
        in_flight += _hold_steps(hold, behind * decode_step / cycle, behind) * decode_step

    def seen(ttft: float) -> float:
        cycle = ttft + eff.ttft_overhead_s + decoding
        rho = min(0.95, others * work / cycle)   # engine time on their prompts
        queued = min(rho / (2 * (1 - rho)), others)      # M/D/1 mean wait in units of work, behind at most all others
        # Past saturation the M/D/1 wait (rho capped) no longer binds: the others' prompts need
        # others x work of engine time per cycle, so a request waits at least what exceeds the rest
        # of its cycle (the asymptotic bound of closed networks, R >= N D - Z: Denning and Buzen
        # 1978, "The operational analysis of queueing network models", sec. 6).
        return service + max(queued * work, others * work - (cycle - ttft)) + in_flight

    lo, hi = service + in_flight, seen(service + in_flight)
    for _ in range(60):          # seen() falls as its argument grows: one crossing in [lo, hi]
        if hi - lo <= 1e-10 * hi:       # well inside every figure's printed precision
            break
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if seen(mid) > mid else (lo, mid)
    return hi


@dataclass(frozen=True)
class ServingResult:
    ttft_seconds: float
    tpot_seconds: float
    itl_seconds: float
    e2e_seconds: float
    output_tokens_per_second: float
    output_tokens_per_second_per_gpu: float
    requests_per_second: float
    prefill_bound: str
    decode_bound: str
    running: int            # sequences decoding at once (capped by the KV cache)
    encoder_seconds: float = 0.0   # part of ttft_seconds: the request's own images through the vision tower
    tokens_per_step: float = 1.0   # speculative decoding: expected tokens a decode step emits per sequence


def serve(arch: Architecture, layout: Layout, gpu: GPU, fmt: WeightFormat, kv: KVFormat, eff: Efficiency,
          engine: Engine, concurrency: int, prompt: int, output: int, kv_capacity: int | None = None,
          waves: float = math.inf, encoder_seconds: float = 0.0, acceptance: float | None = None) -> ServingResult:
    """Closed-loop serving of ``concurrency`` clients sending ``prompt``-token requests
    for ``output`` tokens (``vllm bench serve --max-concurrency``).

    With fixed lengths the clients move in waves: they send together, their prompts are
    prefilled in chunks of the engine's token budget (decodes of requests already
    started go first, vLLM's chunked-prefill policy), every started request decodes
    one token per step, and all finish about together, so the next wave starts
    together, at least at first: later waves arrive spread over the first one's prefill
    window, so their prompts barely queue, but their decode steps carry the other
    clients' prompt chunks all along (``_steady_state``).  A benchmark of ``waves`` x
    concurrency requests therefore averages one burst wave with ``waves - 1`` spread ones,
    in TTFT and in TPOT (a long-running service: ``waves = inf``, the default;
    InferenceMAX runs 10).  The
    burst wave is simulated step by step through its prefill phase; its pure
    decode phase is integrated over the growing context.  When the KV cache holds
    fewer sequences than there are clients, the rest wait for a free slot: with C
    running, a client's cycle is concurrency / C waves long.  Data-parallel replicas
    each serve ``concurrency / dp`` clients.  ``encoder_seconds`` (``encoder_time``) is each
    request's vision-encoder time, spent in the step that schedules its first prompt chunk
    (vLLM runs a step's scheduled encoder inputs before its forward pass).

    Speculative decoding (``engine.speculative_tokens`` K > 0, each draft accepted at rate
    ``acceptance``): every step that decodes verifies K + 1 tokens per sequence (``step_time``)
    and emits ``Speculation.tokens_per_step`` of them on average, so a request's output takes
    (O - 1) / tokens_per_step steps; ITL is then the step (one streamed chunk), TPOT the step
    over the tokens it emits.
    """
    cost = model_cost(arch, layout, fmt, kv)
    spec = None
    if engine.speculative_tokens:
        assert acceptance is not None       # planning.job.resolve_speed gives one or refuses
        spec = Speculation(engine.speculative_tokens, acceptance, draft_cost(arch, layout, fmt, kv))
    clients = max(1, math.ceil(concurrency / layout.dp))
    running = _running(clients, kv_capacity, prompt, output, engine)
    # SGLang runs prefill and decode in separate batches unless --enable-mixed-chunk (ServerArgs.enable_mixed_chunk
    # = False, python/sglang/srt/server_args.py); vLLM's chunked prefill and TensorRT-LLM's in-flight batching mix.
    # (_steady_state keeps the burst wave's TPOT for SGLang: see there.)
    job = _Wave(cost, arch, layout, gpu, fmt, eff, engine.max_num_batched_tokens, prompt, output, encoder_seconds,
                spec, mixed=engine.serving != "sglang",
                recv_interval=engine.recv_interval if engine.serving == "sglang" else 1,
                hold=_hold(engine, layout, engine.max_num_batched_tokens, running, prompt))
    started, steps, prefill_bound = _prefill_phase(job, running)
    # pure decode phase: all requests decode together, context growing from the prompt
    points = [job.step(running, prompt + f * output, 0, 0) for f in (0.0, 0.5, 1.0)]
    decode_step = (points[0].seconds + 2 * points[1].seconds + points[2].seconds) / 4      # Simpson's rule
    per_step = spec.tokens_per_step if spec else 1.0
    wave_ttft, wave_tpot, wave = _wave_times(started, steps, output, decode_step, per_step)
    steady_ttft, steady_step = _steady_state(job, running, decode_step, per_step, wave_tpot * per_step)
    steady_tpot = steady_step / per_step
    burst = 1 / waves if waves > 1 else 1.0
    tpot = burst * wave_tpot + (1 - burst) * steady_tpot
    wait = (clients / running - 1) * wave          # waiting for a KV slot
    # Throughput: the first round of requests drains in clients / running waves (a wave ends when its
    # last request does); afterwards every client keeps one request in flight, back to back, so by
    # Little's law a replica completes clients / steady_e2e requests per second, steady_e2e being the
    # latency of a request of the spread waves (KV wait included) ...
    steady_e2e = steady_ttft + eff.ttft_overhead_s + wait + max(0, output - 1) * steady_tpot
    # ... but never faster than the hardware can prefill: each GPU at its datasheet peak runs its share
    # of a prompt's matmuls (cost is per GPU) at most peak / (prompt x FLOPs per token) times a second.
    # Where the clients would ask for more (tiny outputs), that is the rate, and TTFT queues by what
    # Little's law then requires.
    prompt_flops = prompt * cost.linear_flops_per_token
    ceiling = peak_flops(gpu, compute_dtype(fmt, gpu)) / prompt_flops if prompt_flops else math.inf
    steady_rate = min(clients / steady_e2e, ceiling)
    queue = clients / steady_rate - steady_e2e
    ttft = burst * wave_ttft + (1 - burst) * (steady_ttft + queue) + eff.ttft_overhead_s + wait
    e2e = ttft + max(0, output - 1) * tpot
    if math.isinf(waves):      # a long-running service: the steady state alone
        rate = steady_rate
    else:
        rounds = max(1.0, waves)
        rate = rounds * clients / (wave * clients / running + (rounds - 1) * clients / steady_rate)
    # data-parallel replicas each serve clients of their own: never more clients than there are
    replicas = min(layout.dp, concurrency / clients)
    total = replicas * rate * output
    return ServingResult(
        ttft_seconds=ttft, tpot_seconds=tpot, itl_seconds=tpot * per_step, e2e_seconds=e2e,
        output_tokens_per_second=total, output_tokens_per_second_per_gpu=total / layout.gpus,
        requests_per_second=total / output, prefill_bound=prefill_bound, decode_bound=points[1].bound,
        running=running, encoder_seconds=encoder_seconds, tokens_per_step=per_step,
    )


def _steady_state(job: "_Wave", running: int, decode_step: float, per_step: float,
                  wave_step: float) -> tuple[float, float]:
    """(TTFT, step time) seen by a request of the spread waves, among ``running`` clients.

    Its decode steps are not pure decode: the other clients' prompts arrive all the time and
    the engine runs their chunks in the same steps (vLLM's chunked prefill and TensorRT-LLM's
    in-flight batching put prompt tokens and decodes in one batch; SGLang's mixed chunks), so
    each step carries, on average, the others' prompt tokens per step (``running - 1``
    prompts per cycle over the cycle's steps) and the decodes of the clients that are
    decoding (this one and the others for the share of their cycle they spend decoding).
    Prompts come whole (or in budget-sized chunks), so a share of the steps carries one and the
    rest carry none; the mean step is that mixture.

    SGLang (prefill in batches of its own, ``job.mixed`` False) keeps the burst wave's step
    (``wave_step``): its measured TPOTs stay near pure decode at loads where TTFT grows by
    seconds, as if it admitted prompts only as its own KV budget and conservative
    new-token reservation allow, which rigsize does not model (SGLang is sized by vLLM's
    rules).  Charging its decodes for the others' prefill batches made the fit split worse
    (TTFT median |log err| 0.282 -> 0.387, decode 0.146 -> 0.173 on Hopper), so it is not applied.  The step and TTFT depend on each other
    through the cycle (TTFT + decoding): a fixed point, found by damped iteration.  A lone
    client's steps are pure decode (``decode_step``).  Before 2026-12-02 every wave took the
    burst wave's TPOT, whose prompts are all prefilled before most of its decoding: at high
    load TPOT came out too short and the queue too long."""
    service, work = _prompt_service(job.cost, job.arch, job.layout, job.gpu, job.fmt, job.eff, job.budget, running,
                                    job.prompt, job.output, job.encoder, job.spec)
    need = max(0, job.output - 1) / per_step        # decode steps of a request
    others = running - 1
    if not job.mixed:
        return (_steady_ttft(service, work, running, job.eff, need * wave_step, decode_step, job.recv_interval,
                             job.hold), wave_step)
    if not others or not need:
        return (_steady_ttft(service, work, running, job.eff, need * decode_step, decode_step, job.recv_interval,
                             job.hold), decode_step)
    ctx = job.prompt + job.output / 2
    all_decoding = job.step(running, ctx, 0, 0).seconds
    step = decode_step
    for _ in range(40):
        decoding = need * step
        ttft = _steady_ttft(service, work, running, job.eff, decoding, step, job.recv_interval, job.hold)
        cycle = ttft + job.eff.ttft_overhead_s + decoding
        seqs = 1 + others * decoding / cycle                # decoding in a step: this one, and the others' share
        tokens = others * job.prompt * step / cycle          # the others' prompt tokens per step, on average
        free = max(1.0, job.budget - seqs * _verify(job.spec))
        chunk = min(free, max(float(job.prompt), tokens))
        without = job.step(seqs, ctx, 0, 0).seconds
        added = job.step(seqs, ctx, chunk, job.prompt / 2).seconds - without
        new = max(0.0, decode_step - (all_decoding - without)) + min(1.0, tokens / chunk) * added
        if abs(new - step) <= 1e-7 * step:
            break
        step = 0.5 * (step + new)
    return _steady_ttft(service, work, running, job.eff, need * step, step, job.recv_interval, job.hold), step


def _running(clients: int, kv_capacity: int | None, prompt: int, output: int, engine: Engine) -> int:
    """Sequences decoding at once: the clients, capped by the KV cache and the scheduler."""
    running = clients
    if kv_capacity is not None:   # paged KV: blocks are allocated as tokens arrive, so on average a running
        # sequence holds prompt + output/2 tokens, not its full length (vLLM's scheduler)
        average = kv_capacity * (prompt + output) / (prompt + output / 2)
        running = max(1, min(clients, math.floor(average)))
    # the scheduler's caps on sequences per step: max_num_seqs, and under speculative decoding a decoding
    # request is scheduled 1 + num_speculative_tokens tokens of the max_num_batched_tokens budget
    # (v1/core/sched/scheduler.py, padded_num_tokens = 1 + self.num_spec_tokens, 0.33.0 wheel)
    return min(running, engine.max_num_seqs, engine.max_num_batched_tokens // (1 + engine.speculative_tokens))


def _verify(spec: Speculation | None) -> int:
    """Tokens of the step budget one decoding sequence takes: 1, or K + 1 under speculative decoding."""
    return 1 if spec is None else spec.tokens + 1


@dataclass(frozen=True)
class Hold:
    """A scheduler that holds new prompts while others decode, until ``count`` of them wait or
    ``iters`` steps pass (``_hold_steps``).  ``periodic``: the step count runs whether or not a
    prompt waits (a release every ``iters`` steps); otherwise it starts with the first waiting
    prompt.  ``scale``: replicas whose clients feed the same count (attention-DP ranks)."""

    iters: int
    count: int
    periodic: bool = False
    scale: int = 1


def _hold(engine: Engine, layout: Layout, budget: int, running: int, prompt: int) -> Hold | None:
    """TensorRT-LLM's two holds, as read in tensorrt_llm/_torch/pyexecutor/py_executor.py (stored copies of
    2025-2026, not at the release tags):

    - ``_waiting_requests`` (batch waiting, tensor-parallel only, called only when prompts and decodes are both
      scheduled): prompts wait until the scheduled tokens (prompts + one per decode) reach
      ``batch_wait_max_tokens_ratio x max_num_tokens`` or ``batch_wait_timeout_iters`` such steps pass; the count
      restarts at each release;
    - ``_balance_adp_requests`` (attention DP with ``attention_dp_config.enable_balance``, run every step): prompts
      wait until every rank has one, the count of steps without that release reaching ``timeout_iters`` releases
      them anyway, so it runs on through pure decode steps and releases every that many steps."""
    if engine.serving != "trtllm":
        return None
    if layout.dp > 1:
        return Hold(engine.adp_balance_iters, layout.dp, periodic=True, scale=layout.dp) if engine.adp_balance_iters \
            else None
    if engine.batch_wait_iters <= 0:
        return None
    threshold = engine.batch_wait_ratio * budget - running
    return Hold(engine.batch_wait_iters, max(1, math.ceil(threshold / max(1, prompt))))


def _hold_steps(hold: Hold | None, arrivals_per_step: float, others: int) -> float:
    """Mean decode steps a new prompt is held (``Hold``), the ``others`` other clients' prompts (all the ``scale``
    replicas') arriving Poisson at ``arrivals_per_step``.  The hold ends after L = min(iters, (count - 1) / rate)
    steps, or iters where the others are fewer than count - 1.  Periodic: a prompt arrives anywhere in it, L / 2.
    Otherwise the first prompt starts it and waits L, the m = rate x L (at most the others) that follow wait
    L / 2 on average:
    L (1 + m / 2) / (1 + m)."""
    if hold is None or hold.iters <= 0 or hold.count <= 1:
        return 0.0
    reachable = others >= hold.count - 1 and arrivals_per_step > 0
    length = min(float(hold.iters), (hold.count - 1) / arrivals_per_step) if reachable else float(hold.iters)
    if hold.periodic:
        return length / 2
    m = min(arrivals_per_step * length, float(others))
    return length * (1 + m / 2) / (1 + m)


@dataclass(frozen=True)
class _Wave:
    """One wave of identical requests on one replica: what each of its steps costs."""

    cost: ModelCost
    arch: Architecture
    layout: Layout
    gpu: GPU
    fmt: WeightFormat
    eff: Efficiency
    budget: int               # max_num_batched_tokens
    prompt: int
    output: int
    encoder: float = 0.0      # seconds of one request's images in the vision tower
    spec: Speculation | None = None
    mixed: bool = True        # prompt chunks ride in decode steps (False: SGLang's separate prefill batches)
    recv_interval: int = 1    # decode steps between the scheduler's polls for new requests (``_steady_ttft``)
    hold: "Hold | None" = None   # TensorRT-LLM's admission holds (``_hold_steps``)

    def step(self, decode_seqs: float, decode_ctx: float, prefill_tokens: float, prefill_ctx: float) -> Step:
        return step_time(self.cost, self.arch, self.layout, self.gpu, self.fmt, self.eff, decode_seqs, decode_ctx,
                         prefill_tokens, prefill_ctx, self.spec)


def _prefill_phase(job: _Wave, running: int) -> tuple[list[float], list[float], str]:
    """The burst wave's prefill, step by step (vLLM's chunked prefill: decodes of started
    requests first, then prompt chunks in arrival order up to the token budget).
    Returns each request's first-token time, each mixed step's duration and the bound
    of the first step."""
    waiting = [job.prompt] * running         # prompt tokens left, in arrival order
    started: list[float] = []
    steps: list[float] = []
    clock, decoding, bound = 0.0, 0, "compute"
    memo: dict[tuple[int, int], Step] = {}     # the steps repeat: (decoding, chunk) -> the step
    while waiting:
        free = max(1, job.budget - decoding * _verify(job.spec))
        chunk, take, fresh = 0, 0, 0
        for i, left in enumerate(waiting):
            part = min(left, free - chunk)
            if part <= 0:
                break
            fresh += left == job.prompt       # its first chunk: its images are encoded in this step
            chunk += part
            waiting[i] -= part
            take = i + 1 if waiting[i] == 0 else take
        step = memo.get((decoding, chunk))
        if step is None:
            step = memo[decoding, chunk] = job.step(decoding, job.prompt, chunk, job.prompt / 2)
        bound = step.bound if not steps else bound
        seconds = step.seconds + fresh * job.encoder
        clock += seconds
        steps.append(seconds)
        done = sum(1 for left in waiting[:take] if left == 0)
        started += [clock] * done
        decoding += done
        waiting = waiting[done:]
    return started, steps, bound


def _wave_times(started: list[float], steps: list[float], output: int,
                decode_step: float, per_step: float = 1.0) -> tuple[float, float, float]:
    """(mean TTFT, mean TPOT, duration) of the wave: a request's first ``output - 1``
    steps after its first token are the mixed steps still running, then pure decode.
    Each step emits ``per_step`` tokens of a decoding sequence (speculative decoding), so
    its output takes (output - 1) / per_step steps."""
    cumulative = [sum(steps[: i + 1]) for i in range(len(steps))]
    tpots = []
    need = max(0.0, output - 1) / per_step       # steps a request's remaining tokens take
    for t0 in started:
        mixed = [d for d, end in zip(steps, cumulative) if end > t0 + 1e-15][: math.ceil(need)]
        rest = max(0.0, need - len(mixed))
        tpots.append((sum(mixed) + rest * decode_step) / max(1, output - 1))
    wave = max(t + p * max(0, output - 1) for t, p in zip(started, tpots))
    return sum(started) / len(started), sum(tpots) / len(tpots), wave


def serve_burst(arch: Architecture, layout: Layout, gpu: GPU, fmt: WeightFormat, kv: KVFormat, eff: Efficiency,
                engine: Engine, requests: int, prompt: int, output: int,
                kv_capacity: int | None = None, encoder_seconds: float = 0.0,
                acceptance: float | None = None) -> ServingResult:
    """``requests`` requests sent at once with no client-side limit (``vllm bench serve
    --request-rate inf`` without ``--max-concurrency``, each client sending one request).

    The engine runs as many as its scheduler and KV cache allow (``running``, as in
    ``serve``); with fixed lengths those finish together and the next ``running`` start,
    so the burst drains in waves: ``full`` waves of ``running`` and one of the ``rest``.
    A request of wave ``j`` waits ``j`` whole waves before its own first token, so mean
    TTFT = one wave's TTFT + the mean wave index x the wave's duration; throughput is
    every output token over the time to drain.  Data-parallel replicas each take
    ``requests / dp``."""
    per_replica = max(1, math.ceil(requests / layout.dp))
    first = serve(arch, layout, gpu, fmt, kv, eff, engine, per_replica * layout.dp, prompt, output,
                  kv_capacity=kv_capacity, waves=1, encoder_seconds=encoder_seconds,
                  acceptance=acceptance)
    running = first.running
    full, rest = divmod(per_replica, running)
    if full == 1 and rest == 0:
        return first
    one = first if per_replica == running else serve(arch, layout, gpu, fmt, kv, eff, engine, running * layout.dp,
                                                     prompt, output, kv_capacity=kv_capacity, waves=1,
                                                     encoder_seconds=encoder_seconds, acceptance=acceptance)
    wave = running * output * layout.dp / one.output_tokens_per_second
    tail = serve(arch, layout, gpu, fmt, kv, eff, engine, rest * layout.dp, prompt, output,
                 kv_capacity=kv_capacity, waves=1, encoder_seconds=encoder_seconds,
                  acceptance=acceptance) if rest else None
    tail_wave = rest * output * layout.dp / tail.output_tokens_per_second if tail else 0.0
    waits = running * wave * full * (full - 1) / 2 + rest * full * wave     # sum over requests of waves waited
    ttft = (full * running * one.ttft_seconds + (rest * tail.ttft_seconds if tail else 0) + waits) / per_replica
    tpot = (full * running * one.tpot_seconds + (rest * tail.tpot_seconds if tail else 0)) / per_replica
    drain = full * wave + tail_wave
    total = layout.dp * per_replica * output / drain
    return ServingResult(
        ttft_seconds=ttft, tpot_seconds=tpot, itl_seconds=tpot * one.tokens_per_step,
        e2e_seconds=ttft + max(0, output - 1) * tpot,
        output_tokens_per_second=total, output_tokens_per_second_per_gpu=total / layout.gpus,
        requests_per_second=total / output, prefill_bound=one.prefill_bound, decode_bound=one.decode_bound,
        running=running, encoder_seconds=encoder_seconds, tokens_per_step=one.tokens_per_step)
