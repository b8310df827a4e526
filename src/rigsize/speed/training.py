"""Training speed: step time, MFU/HFU, tokens per second, days and GPU-hours.

FLOPs (MFU convention, Chowdhery et al. 2022 "PaLM", Appendix B): per token
``6 N + 12 L H Q T`` where N counts the matmul parameters a token uses (routed experts
at top-k; the input embedding is a lookup and is excluded, the lm_head is included),
L layers, H heads, Q head dim, T sequence length.  Hardware FLOPs (HFU) add what
recomputation runs again: one more forward (``2 N + 4 L H Q T``) for full
recomputation, the attention core (``4 L H Q T``) for selective (Megatron-LM's), every
second mm of each block and the routed experts for torchtitan's per-op selective
checkpointing (``recompute_share``).  LoRA's frozen
weights need input gradients only (``4 N``, Hu et al. 2021: no weight gradients).

Time per step on one GPU = compute at achievable throughput + the pipeline bubble +
communication that is not hidden:

- compute: FLOPs / (gpus x peak x efficiency); the achievable fraction grows with the
  per-GPU GEMM width (``dense_width``: 2 hidden / (tp + 1)), ``e_max * w / (w + w_half)`` (empirical, fitted
  on the documented subset of published runs in data/validation/training_runs.toml);
  the attention core (attention layers only; sliding windows at their span) at a fitted
  fraction of its causal FLOPs where the class has one (``attention_seconds``);
- bubble: ``(pp - 1) / (m * v)`` of the ideal compute for 1F1B with m micro-batches
  per pipeline and v virtual stages (Narayanan et al. 2021, sec. 2.2);
- tp: per layer and micro-batch, 4 all-reduces of ``b s h`` activations (2 forward,
  2 backward; Korthikanti et al. 2022 sec. 4.2.2; sequence parallelism replaces each
  by a reduce-scatter + all-gather of the same volume), 2 more with full recompute;
- pp: each micro-batch's activations and gradients cross each stage boundary;
- dp: gradients reduced once per step (ring all-reduce, or reduce-scatter under ZeRO
  and Megatron's distributed optimizer), hidden behind backward where the framework
  overlaps it (DDP/FSDP and DeepSpeed ZeRO-3 by default; Megatron and ZeRO-1/2 not);
- ZeRO-3: parameters gathered for forward and backward of every micro-batch, and
  gradients reduce-scattered, overlapped with compute (time = max(compute, comm));
- ep: all-to-all dispatch and combine of each MoE layer's tokens, forward and backward;
- cp: ring exchange of K/V blocks, overlapped with attention compute;
- MoE: a fixed time per MoE layer and micro-batch (the dispatcher's host sync; fitted);
- offload (ZeRO-Offload, Ren et al. 2021 sec. 4.1): gradients to the CPU over PCIe behind
  backward, the optimizer step on the CPU at host memory bandwidth, parameters back.
Each group's bandwidth is NVLink inside a node (inside the rack's NVLink domain on GB200/GB300
NVL72) and the network (``--network``) across.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Callable

from rigsize.hardware.gpus import GPU
from rigsize.model.architecture import Architecture, active_params
from rigsize.planning.layout import Layout, Workload
from rigsize.speed.roofline import (
    PCIE_X16,
    allgather_seconds,
    allreduce_seconds,
    fabric_bandwidth,
    pcie_bytes_per_second,
    peak_flops,
)

ACT_BYTES = 2


@cache
def networks() -> dict[str, dict]:
    return tomllib.loads(resources.files("rigsize.data").joinpath("efficiency.toml").read_text())["network"]


@dataclass(frozen=True)
class TrainingEfficiency:
    """Empirical (see data/efficiency.toml [training.*])."""

    e_max: float            # asymptotic fraction of dense peak for large GEMMs
    width_half: float       # per-GPU GEMM width (dense_width, gemm_width) at which half of e_max is reached
    link: float             # fraction of link / network bandwidth reached by collectives
    collective_latency_s: float
    source: str = ""
    # FP8 GEMMs' achieved fraction of the FP8 peak relative to bf16 GEMMs' fraction of the
    # bf16 peak ([training.fp8]; scaling/cast kernels included): 1 = FP8 GEMMs as efficient
    fp8_ratio: float = 1.0
    # fixed time per MoE layer and micro-batch, forward and backward ([training.moe]): the
    # dispatcher's host syncs and the router/permute/all-to-all launches that do not scale
    # with tokens (see ``moe_overhead_seconds``)
    moe_layer_s: float = 0.0
    # achieved fraction of the bf16 peak of the attention core on its CAUSAL FLOPs (half of PaLM's
    # 12 L H Q T: flash kernels skip the masked blocks and count FLOPs so), forward and backward;
    # fitted per class where its fit rows reach long sequences (``attention_seconds``).  0: not
    # fitted, the core at the projections' GEMM fraction on PaLM's full count (the rule before
    # 2026-12-02, which the classes without long-sequence runs keep)
    attention: float = 0.0


def _rows() -> dict:
    return tomllib.loads(resources.files("rigsize.data").joinpath("efficiency.toml").read_text())["training"]


# Where (family, framework) has no fitted row, the family's rows are borrowed in this order: an
# achievable fraction of peak belongs to the GPU generation more than to the framework (A100
# Megatron-LM's training.default reaches 0.8 of the A100's peak; Hopper's PyTorch rows reach 0.5-0.6
# of theirs), and the PyTorch-native stacks (HF Trainer, TRL, DeepSpeed, LLaMA-Factory, torchtune,
# Unsloth) run the same kernels as FSDP.  A family with no fitted row at all (Ada, CDNA, Volta...)
# borrows Hopper's FSDP row for those stacks, the one fitted on the most PyTorch runs, so that no
# unmeasured family looks faster than the measured ones; Megatron-LM there keeps training.default.
BORROW_ORDER = ("fsdp", "torchtitan", "torchtune", "megatron")
OWN_DEFAULT = ("ampere", "megatron")
PYTORCH_FALLBACK = ("hopper", "fsdp")


@cache
def training_efficiency(architecture: str, framework: str = "megatron") -> tuple[TrainingEfficiency, str]:
    """The row fitted for (GPU family, framework), ``training.<family>.<framework>``; where
    none was fitted, the family's first fitted row in ``BORROW_ORDER``, else ``training.default``
    (A100 Megatron-LM runs).  The key names the row used."""
    rows = _rows()
    family = rows.get(architecture, {})
    names = () if (architecture, framework) == OWN_DEFAULT else (framework, *BORROW_ORDER)
    name = next((n for n in names if isinstance(family.get(n), dict) and "e_max" in family[n]), None)
    if name:
        key, r = f"{architecture}.{name}", family[name]
    elif framework != "megatron" and not any(isinstance(v, dict) and "e_max" in v for v in family.values()):
        fam, fw = PYTORCH_FALLBACK
        key, r = f"{fam}.{fw}", rows[fam][fw]
    else:
        key, r = "default", rows["default"]
    return TrainingEfficiency(r["e_max"], r["width_half"], r["link"], r["collective_latency_s"], r["source"],
                              float(rows.get("fp8", {}).get("gemm_ratio", 1.0)),
                              float(rows.get("moe", {}).get("layer_overhead_s", 0.0)),
                              _attention(r, family, framework)), key


def _attention(row: dict, family: dict, framework: str) -> float:
    """The row's fitted attention-core fraction; a PyTorch-native framework whose row has none
    borrows its family's first in ``BORROW_ORDER`` that has one: they run the same flash kernels
    (FlashAttention-2 through flash-attn or SDPA's flash backend; PyTorch made cuDNN attention
    opt-in, pytorch/pytorch#138522, 2.5.1, and torchtitan asks for SDPBackend.FLASH_ATTENTION
    before Blackwell, pytorch/torchtitan#1196).  Megatron-LM never borrows: Transformer Engine
    picks cuDNN fused attention on Hopper and later (transformer_engine/pytorch/attention/
    dot_product_attention/utils.py get_attention_backend: "Disabling FlashAttention to give
    FusedAttention preference on Hopper+"), a different kernel."""
    if "attention" in row or framework == "megatron":
        return float(row.get("attention", 0.0))
    donor = next((family[n] for n in BORROW_ORDER if isinstance(family.get(n), dict) and "attention" in family[n]),
                 {})
    return float(donor.get("attention", 0.0))


@dataclass(frozen=True)
class TrainingSpeed:
    step_seconds: float
    tokens_per_second: float
    samples_per_second: float
    mfu: float
    hfu: float
    bound: str
    breakdown: dict[str, float]
    model_flops_per_step: float
    train_days: float | None = None
    gpu_hours: float | None = None


def _per_arch(fn: Callable[[Architecture], Any]) -> Callable[[Architecture], Any]:
    """Memoize a function of the architecture alone, by the object itself: hashing an
    Architecture hashes every tensor, and a planner's search times thousands of layouts
    of one model.  The cache holds the object, so its id cannot be reused."""
    memo: dict[int, tuple[Architecture, Any]] = {}

    @functools.wraps(fn)
    def cached(arch: Architecture) -> Any:
        hit = memo.get(id(arch))
        if hit is not None and hit[0] is arch:
            return hit[1]
        value = fn(arch)
        if len(memo) >= 64:
            memo.clear()
        memo[id(arch)] = (arch, value)
        return value
    return cached


@_per_arch
def _matmul_params(arch: Architecture) -> float:
    """Parameters in matmuls per token: active parameters minus the input embedding
    lookup (a tied embedding still serves as the lm_head matmul)."""
    embed = sum(t.numel for t in arch.tensors if t.role in ("embed", "pos_embed"))
    lm_head = sum(t.numel for t in arch.tensors if t.role == "lm_head" and len(t.shape) == 2)
    tied_head = embed if arch.tie_word_embeddings and not lm_head else 0
    pos = sum(t.numel for t in arch.tensors if t.role == "pos_embed")
    return active_params(arch) - embed + tied_head - (pos if tied_head else 0)


@_per_arch
def _attn_dims(arch: Architecture) -> tuple[int, float]:
    """(heads, per-head width used by QK^T/PV: the mean of the two products' widths).  MLA trains
    without weight absorption: QK^T over the query's nope + rope width (DeepSeek-V3: 128 + 64), PV
    over v_head_dim (128), read off attn_q_b and attn_kv_b (kv_b: heads x (nope + v) rows, the latent
    rank columns; the rope width is head_dim - rank)."""
    heads = arch.num_attention_heads
    q = next((t for t in arch.tensors if t.role in ("attn_q", "attn_q_b") and len(t.shape) == 2), None)
    width = q.shape[0] // heads if q is not None else arch.hidden_size // heads
    kv_b = next((t for t in arch.tensors if t.role == "attn_kv_b" and len(t.shape) == 2), None)
    if arch.attention == "mla" and kv_b is not None:
        nope = width - (arch.head_dim - kv_b.shape[1])
        v = kv_b.shape[0] // heads - nope
        return heads, (width + v) / 2
    return heads, width


_LAYER_ATTENTION: dict[tuple, tuple[Architecture, tuple[float, ...]]] = {}


def layer_attention(arch: Architecture, seq: int) -> tuple[float, ...]:
    """Per layer, the attention core's forward FLOPs per token on PaLM's full (non-causal) count,
    ``2 H Q T`` (QK^T and PV; the 12 L H Q T of fwd + bwd is 6 x their sum): 0 for a layer without
    attention (a recurrent / linear-attention layer of a hybrid model, ``arch.is_attention_layer``),
    and a sliding-window layer of window w attends min(w, position) keys, so on the same full-count
    convention its T is ``2w - w^2 / T`` once T > w (2 x the mean keys a causal query sees)."""
    key = (id(arch), seq)
    hit = _LAYER_ATTENTION.get(key)
    if hit is not None and hit[0] is arch:
        return hit[1]
    heads, q = _attn_dims(arch)
    windows = arch.layer_windows or (None,) * arch.num_hidden_layers
    out = []
    for i in range(arch.num_hidden_layers):
        w = windows[i] if i < len(windows) else None
        span = seq if w is None or w >= seq else 2 * w - w * w / seq
        out.append(2.0 * heads * q * span if arch.is_attention_layer(i) else 0.0)
    if len(_LAYER_ATTENTION) > 256:
        _LAYER_ATTENTION.clear()
    _LAYER_ATTENTION[key] = (arch, tuple(out))
    return tuple(out)


def attention_flops_per_token(arch: Architecture, seq: int) -> float:
    """PaLM's ``12 L H Q T`` (forward + backward, full count) over the layers that have attention,
    sliding windows counted at their span (``layer_attention``)."""
    return 6.0 * sum(layer_attention(arch, seq))


# Matmul roles that are not a decoder layer's own projections (``_op_sac_params``)
_NOT_LAYER_MATMUL = ("embed", "pos_embed", "lm_head", "vision", "vision_proj")
# A block's mms in forward order (torchtitan models/llama/model.py and models/deepseek_v3: q (or q_a, q_b), kv (or
# kv_a, kv_b), k, v, o; the router; the shared experts' w1, w3, w2; the dense MLP's w1 (gate), w3 (up), w2 (down)).
# Tensors built from a checkpoint folder come in name order, so the order is the role's, not the list's; other roles
# follow in list order.
_FORWARD_ORDER = {role: i for i, role in enumerate((
    "attn_q", "attn_q_a", "attn_q_b", "attn_kv_a", "attn_kv_b", "attn_k", "attn_v", "attn_qkv", "attn_o", "router",
    "shared_gate", "shared_up", "shared_gate_up", "shared_down", "mlp_gate", "mlp_up", "mlp_gate_up", "mlp_down"))}


@_per_arch
def _op_sac_params(arch: Architecture) -> tuple[float, float]:
    """(dense, routed-expert) matmul parameters per token whose forward torchtitan's per-op selective
    activation checkpointing runs again in the backward (``selective_ac_option = "op"``).

    torchtitan ``parallelize_llama.py`` at 9dec370 (train_configs/llama3_*.toml set the option), and
    ``torchtitan/distributed/activation_checkpoint.py`` since: ``_custom_policy`` counts the block's
    ``aten.mm`` calls and MUST_SAVEs their outputs "except every second mm"; the SDPA outputs are
    saved too (the attention core is not recomputed), and every other op is PREFER_RECOMPUTE.  The
    recomputed mms are the 2nd, 4th, 6th... of each block's forward: wk, wo and w3 (up) in a Llama
    block, whose mms run wq, wk, wv, wo, w1, w3, w2 (``models/llama/model.py``; ``_FORWARD_ORDER``).
    Newer torchtitan also recomputes the MoE router without counting it (``mm_recompute_shapes``), which
    shifts the parity after it: not modelled (the 9dec370 rule, the benchmark's).  Routed experts run grouped mms, which the save list does
    not hold: they are recomputed whole (at top-k).  The lm_head is outside the checkpointed blocks.
    The same rule is read for the memory side in ``memory.activations_hf._sac_op``."""
    share = arch.experts_per_token / arch.num_experts if arch.num_experts else 1.0
    per_layer: dict[int, list] = {}
    for t in arch.tensors:
        if len(t.shape) == 2 and t.layer is not None and t.role not in _NOT_LAYER_MATMUL:
            per_layer.setdefault(t.layer, []).append(t)
    dense = expert = 0.0
    for tensors in per_layer.values():
        count = 0
        for t in sorted(tensors, key=lambda t: _FORWARD_ORDER.get(t.role, len(_FORWARD_ORDER))):
            if t.role.startswith("expert_"):
                expert += t.numel * share
                continue
            count += 1
            if count % 2 == 0:
                dense += t.numel
    return dense, expert


def recompute_share(arch: Architecture, workload: Workload, layout: Layout) -> tuple[float, float, float]:
    """What recomputation runs again, as (share of the dense layers' matmul forward, share of the
    routed experts' forward, share of the attention core's forward); the lm_head is never rerun
    except under full recomputation (as before 2026-12-03).

    - ``full``: everything once more (1, 1, 1);
    - ``selective``, per the framework's ``selective_ac`` (``data/frameworks.toml``): "op" (torchtitan
      per-op SAC, ``_op_sac_params``): every second mm of a block and the routed experts, not the
      attention core; "N" (a positive integer: every N-th block checkpointed whole, torchtitan
      ``selective_ac_option = N``): that share of the layers, whole; otherwise Megatron-LM's
      selective recomputation, the attention core only (Korthikanti et al. 2022, sec. 5)."""
    if layout.recompute == "full":
        return 1.0, 1.0, 1.0
    if layout.recompute != "selective":
        return 0.0, 0.0, 0.0
    sac = workload.settings.selective_ac if workload.framework == "torchtitan" else "none"
    if sac == "op":
        dense, expert = _op_sac_params(arch)
        layer_dense = _matmul_params(arch) - _lm_head_params(arch) - _expert_params(arch)[0]
        expert_all = _expert_params(arch)[0]
        return (dense / layer_dense if layer_dense else 0.0), (expert / expert_all if expert_all else 0.0), 0.0
    if sac.isdigit() and int(sac) > 0:
        share = (arch.num_hidden_layers // int(sac)) / arch.num_hidden_layers
        return share, share, share
    return 0.0, 0.0, 1.0


def step_flops(arch: Architecture, workload: Workload, layout: Layout) -> tuple[float, float]:
    """(model FLOPs, hardware FLOPs) of one optimizer step, all GPUs together (the hardware FLOPs:
    ``flop_parts`` summed)."""
    tokens = workload.global_batch * workload.seq
    n = _matmul_params(arch)
    attn = attention_flops_per_token(arch, workload.seq)      # PaLM: 12 L H Q T, attention layers only
    dense = 4 * n if workload.task in ("lora", "qlora") else 6 * n
    model = tokens * (dense + attn)
    return model, sum(flop_parts(arch, workload, layout).values())


@_per_arch
def _lm_head_params(arch: Architecture) -> float:
    """The output projection's matmul parameters (a tied embedding serves as it)."""
    lm_head = sum(t.numel for t in arch.tensors if t.role == "lm_head" and len(t.shape) == 2)
    if lm_head or not arch.tie_word_embeddings:
        return lm_head
    return sum(t.numel for t in arch.tensors if t.role == "embed")


@_per_arch
def _expert_params(arch: Architecture) -> tuple[float, int]:
    """(routed-expert matmul parameters a token uses (top-k of E), one expert's intermediate width)."""
    if not arch.num_experts:
        return 0.0, 0
    experts = [t for t in arch.tensors if t.role.startswith("expert_") and len(t.shape) == 2]
    share = arch.experts_per_token / arch.num_experts
    width = min((min(t.shape) for t in experts), default=0)
    return sum(t.numel for t in experts) * share, width


def flop_parts(arch: Architecture, workload: Workload, layout: Layout) -> dict[str, float]:
    """Hardware FLOPs of one step (all GPUs) by the GEMMs that run them; they sum to
    ``step_flops(...)[1]``.  ``linear``: the dense layers' projections (attention q/k/v/o,
    MLP, shared experts); ``expert``: routed experts at top-k; ``attention``: the core
    (QK^T, PV; PaLM's 12 L H Q T over the attention layers, ``attention_flops_per_token``);
    ``lm_head``.  Under Transformer Engine FP8 recipes only
    ``linear`` and ``expert`` run in FP8: TE's fp8_autocast covers te.Linear /
    LayerNormLinear / LayerNormMLP / GroupedLinear, while the attention core (DotProductAttention,
    bf16 flash/cuDNN kernels) and the output layer stay bf16 (Megatron-Core keeps the output
    layer outside the FP8 region; TE user guide "Using FP8 with Transformer Engine")."""
    tokens = workload.global_batch * workload.seq
    n = _matmul_params(arch)
    head = _lm_head_params(arch)
    expert, _ = _expert_params(arch)
    attn = attention_flops_per_token(arch, workload.seq)      # PaLM: 12 L H Q T, attention layers only
    per_param = 4 if workload.task in ("lora", "qlora") else 6          # Hu et al. 2021: no weight gradients
    dense_share, expert_share, attn_share = recompute_share(arch, workload, layout)   # forwards run again
    head_param = per_param + (2 if layout.recompute == "full" else 0)
    return {"linear": tokens * (per_param + 2 * dense_share) * (n - head - expert),
            "expert": tokens * (per_param + 2 * expert_share) * expert,
            "attention": tokens * attn * (1 + attn_share / 3), "lm_head": tokens * head_param * head}


def stage_imbalance(arch: Architecture, workload: Workload, layout: Layout) -> float:
    """How much longer the slowest pipeline stage computes than an even share: ``pp x
    max(stage FLOPs) / sum(stage FLOPs)`` (1 when balanced).  1F1B runs at the pace of
    its slowest stage (Narayanan et al. 2021, sec. 2.2), and the stages are the same
    ones memory is sized for (``memory.stages``): each stage's decoder layers (routed
    experts at top-k), the lm_head on the last; attention ``12 H Q T`` per layer."""
    if layout.pp == 1:
        return 1.0
    key = (id(arch), layout.pp, layout.pp_first_layers, layout.pp_last_layers, workload.seq)
    hit = _STAGE_FLOPS.get(key)
    if hit is None or hit[0] is not arch:
        hit = (arch, _stage_flops(arch, workload, layout))
        if len(_STAGE_FLOPS) >= 1024:
            _STAGE_FLOPS.clear()
        _STAGE_FLOPS[key] = hit
    flops = hit[1]
    return layout.pp * max(flops) / max(1.0, sum(flops))


_STAGE_FLOPS: dict[tuple, tuple[Architecture, list[float]]] = {}


def _stage_flops(arch: Architecture, workload: Workload, layout: Layout) -> list[float]:
    """Per token, each pipeline stage's matmul parameters and attention (``stage_imbalance``);
    reads the stages' split and the sequence only."""
    from rigsize.memory.per_gpu import stage_tensors, stages

    per_layer = layer_attention(arch, workload.seq)        # per token, /6 of PaLM's 12 L H Q T
    share = arch.experts_per_token / arch.num_experts if arch.num_experts else 1.0
    flops = []
    for st in stages(arch, layout):
        n = 0.0
        for t in stage_tensors(arch, st):
            if len(t.shape) < 2 or t.role in ("embed", "pos_embed", "vision", "vision_proj"):   # vision: per image
                continue
            n += t.numel * (share if t.role.startswith("expert_") else 1.0)
        if st.last and arch.tie_word_embeddings:
            n += sum(t.numel for t in arch.tensors if t.role == "embed")
        flops.append(n + sum(per_layer[i] for i in st.layers))
    return flops


def _achieved(eff: TrainingEfficiency, width: float) -> float:
    """Achieved fraction of peak of a GEMM whose narrow per-GPU dimension is ``width``:
    ``e_max * w / (w + w_half)`` (empirical; fitted per GPU family and framework)."""
    return eff.e_max * width / (width + eff.width_half)


def gemm_width(k: float, n: float) -> float:
    """The width of the square GEMM as intense as a tall ``tokens x k x n`` one: with tokens far above
    k and n, FLOPs per byte moved, 2 T k n / (2 (T k + k n + T n)), tend to k n / (k + n), which a
    ``w x w`` GEMM reaches at w = 2 k n / (k + n) (the roofline's arithmetic intensity, Williams et al.
    2009, "Roofline", CACM 52(4)).  ``gemm_width(h, h) = h``: an unsplit projection's width is h."""
    return 2 * k * n / (k + n)


def dense_width(arch: Architecture, layout: Layout) -> float:
    """The width law's argument for the dense projections, one for all of them: tensor parallelism splits
    one side of each (column-parallel N, row-parallel K) and keeps the other whole, and the attention
    output projection's ``h x h / tp`` stands for them all: ``gemm_width(h, h / tp) = 2 h / (tp + 1)``.
    A simplification: the MLP's GEMMs, most of a layer's FLOPs, are ``h x ffn / tp`` and wider (Llama 3.1
    70B at tp 8: ``gemm_width(8192, 3584)`` = 4,987 against 1,820), so this errs narrow; a FLOP-weighted
    width per GEMM is not modelled.  (Before 2026-12-03: h / tp, as if both sides were split.)"""
    return gemm_width(arch.hidden_size, arch.hidden_size / layout.tp)


def compute_seconds(arch: Architecture, workload: Workload, layout: Layout, gpu: GPU, eff: TrainingEfficiency,
                    precision: str = "bf16") -> float:
    """Per-GPU GEMM time of one step with the work spread evenly (``flop_parts`` / GPUs).

    - dense projections at the width ``dense_width``: ``2 h / (tp + 1)``, a ``h x h / tp`` GEMM;
    - routed experts at their own: with grouped GEMM (Megatron-Core ``--moe-grouped-gemm``, TE
      GroupedLinear) every local expert is a ``tokens_e x h x ffn_e / expert-tp`` GEMM, of width
      ``gemm_width(h, ffn_e / expert-tp)`` (1,117 for Qwen3-30B-A3B: h = 2048, ffn_e = 768); the same
      fitted width law is applied to it;
    - FP8 (Transformer Engine or torchao float8 on nn.Linear): the projections and experts
      at the FP8 peak x ``fp8_ratio``; the attention core and lm_head at the bf16 peak
      (see ``flop_parts``), so a run is at most 2x faster than bf16 and usually much less."""
    parts = flop_parts(arch, workload, layout)
    bf16 = peak_flops(gpu, "bf16")
    fp8 = gpu.flops("fp8") if precision == "fp8" else None
    gemm = fp8 * eff.fp8_ratio if fp8 else peak_flops(gpu, precision)
    dense = _achieved(eff, dense_width(arch, layout))
    _, expert_width = _expert_params(arch)
    expert = _achieved(eff, gemm_width(arch.hidden_size, expert_width / layout.expert_tp)) if expert_width else dense
    seconds = (parts["linear"] / (gemm * dense) + parts["expert"] / (gemm * expert)
               + parts["lm_head"] / (bf16 * dense) + attention_seconds(parts["attention"], bf16, dense, eff))
    return seconds / layout.gpus


# Causal masking: flash-attention kernels (FlashAttention-2/3, cuDNN fused attention) skip the
# blocks above the diagonal, and their benchmarks count causal FLOPs as half the full count
# (Dao-AILab/flash-attention benchmarks/benchmark_flash_attention.py, flops(): ``// (2 if causal
# else 1)``; read 2026-12-02).
CAUSAL_SHARE = 0.5


def attention_seconds(flops: float, bf16: float, dense: float, eff: TrainingEfficiency) -> float:
    """Time of the attention core's ``flops`` (PaLM's full count, all GPUs).

    Where the class has a fitted ``attention`` fraction: the causal half at that fraction of the bf16
    peak (PaLM's 2:1 backward:forward, so the fraction also absorbs the kernels' recomputation in
    backward).  Published kernel benchmarks bracket it on H100 SXM (FlashAttention-3 paper, Shah et
    al. 2024, arXiv 2407.08608, Fig. 5's causal head-dim-128 forward panel as transcribed:
    FlashAttention-2 191-335 TFLOPS from 512 to 16k tokens = 0.19-0.34 of 989 TFLOPS, cuDNN 315-539 =
    0.32-0.54; its abstract: FlashAttention-2 reaches 35% of the H100), and end-to-end runs reach
    less (the backward pass, masks, packing).  Elsewhere the rule the fits before
    2026-12-02 were made with: the full count at the projections' GEMM fraction ``dense``."""
    if eff.attention > 0:
        return flops * CAUSAL_SHARE / (bf16 * eff.attention)
    return flops / (bf16 * dense)


# NF4 storage: 4-bit codes (0.5 B/param) and, with double quantization, 0.127 bits/param of
# scales (Dettmers et al. 2023, "QLoRA", sec. 3); the dequantized bf16 copy is written (2 B).
DEQUANT_BYTES_PER_PARAM = 0.5 + 0.127 / 8 + 2


def dequant_seconds(arch: Architecture, workload: Workload, layout: Layout, gpu: GPU) -> float:
    """QLoRA: per micro-batch, each GPU dequantizes every frozen 4-bit weight of its stage to
    bf16 before the GEMM, in forward and again in backward for the input gradient (torchao
    ``nf4tensor.LinearNF4``: forward ``F.linear(input, weight.to(input.dtype))``, backward
    ``grad_output @ weight.to(grad_output.dtype)``; bitsandbytes ``MatMul4Bit`` likewise),
    plus once more in the recomputed forward under full checkpointing.  Memory-bound: the
    bytes at the HBM peak (a lower bound on this term; no fitted efficiency)."""
    if workload.task != "qlora":
        return 0.0
    from rigsize.speed.roofline import peak_bandwidth

    quantized = sum(t.numel for t in arch.tensors if len(t.shape) == 2 and t.role not in ("embed", "pos_embed",
                                                                                          "lm_head"))
    passes = 2 + (1 if layout.recompute == "full" else 0)
    local = quantized / (layout.tp * layout.pp)      # FSDP gathers whole weights: each rank dequantizes them all
    return passes * local * DEQUANT_BYTES_PER_PARAM / peak_bandwidth(gpu)


def moe_overhead_seconds(arch: Architecture, layout: Layout, micro_batches: int, eff: TrainingEfficiency) -> float:
    """Per GPU and step: ``eff.moe_layer_s`` for every MoE layer of its stage and every
    micro-batch.  Dropless MoE with grouped GEMM needs each expert's token count on the host
    before the expert GEMMs and the all-to-all splits can be launched (Megatron-Core
    ``MoEAlltoAllTokenDispatcher``: ``tokens_per_expert.to("cpu", non_blocking=True)`` and a
    stream sync at its ``cuda_sync_point``; its inference dispatcher exists to keep them
    "GPU-resident to enable use of torch._grouped_mm without host synchronization"), so the
    GPU idles once per layer per pass whatever the tokens.  One fitted value for every class
    (bench/fit_training.py): runs of one model that differ only in micro-batch size pin it."""
    if not arch.num_experts:
        return 0.0
    return micro_batches * len(arch.moe_layers) / layout.pp * eff.moe_layer_s


# ZeRO-Offload's CPU step per parameter of the partition, in host memory: read the fp32
# master, exp_avg, exp_avg_sq and fp32 gradient (16 B), write master and moments (12 B) and
# the 16-bit copy the GPU gets back (2 B) (DeepSpeed stage_1_and_2.py keeps the partition's
# fp32 master and gradients on the CPU; its CPU-Adam streams them once).  Memory-bound: at
# the host's bandwidth this is a lower bound on the step.
CPU_ADAM_BYTES_PER_PARAM = 30
GRAD_BYTES, PARAM_BYTES = 2, 2       # bf16 gradients down, bf16 parameters up (Ren et al. 2021 Fig. 5)


def offload_seconds(arch: Architecture, workload: Workload, layout: Layout, gpu: GPU, compute: float,
                    micro_batches: int, host: Any, gpus_on_host: int) -> float:
    """Per step, what ZeRO-Offload adds (Ren et al. 2021, "ZeRO-Offload", sec. 4.1 and Fig. 5):
    each GPU's gradient partition goes to the CPU during backward (hidden behind the
    backward's 2/3 of compute), the CPU steps the partition (``CPU_ADAM_BYTES_PER_PARAM`` at
    the host's memory bandwidth, shared by the ``gpus_on_host`` GPUs of the server), and the
    updated 16-bit partition comes back before the next forward.  ``--offload params``
    (ZeRO-Infinity) also uploads the partition for every micro-batch's forward and backward,
    overlapped with compute.  Full-parameter training only: LoRA's optimizer is the adapters'."""
    if layout.offload == "none" or host is None or workload.task in ("lora", "qlora"):
        return 0.0
    dense, expert = _rank_param_sums(arch, layout)
    part = (dense / layout.zero_shards + expert / layout.expert_zero_shards) / layout.pp
    pcie = pcie_bytes_per_second(gpu, host.pcie_bytes_per_second)
    # every micro-batch's gradients go down (DeepSpeed stage_1_and_2.py copy_grads_in_partition per micro-step)
    down = max(0.0, micro_batches * part * GRAD_BYTES / pcie - (2 / 3) * compute)
    step = part * CPU_ADAM_BYTES_PER_PARAM * gpus_on_host / host.memory_bytes_per_second
    up = part * PARAM_BYTES / pcie
    gather = 0.0
    if layout.offload == "params":
        gather = max(0.0, micro_batches * 2 * part * PARAM_BYTES / pcie - compute)
    return down + step + up + gather


def activation_offload_seconds(arch: Architecture, workload: Workload, layout: Layout, gpu: GPU, compute: float,
                               micro_batches: int, pcie_fallback: float) -> float:
    """Activation offload (torchtune ``enable_activation_offloading``, Unsloth's offloaded
    gradient checkpointing): each checkpointed layer input (``b s/cp h`` bf16 values, sequence
    split over tp under SP) goes to the host in forward and back in backward, on a side stream;
    only what the forward's 1/3 and the backward's 2/3 of compute do not hide is charged."""
    if not workload.settings.activation_offload:
        return 0.0
    shard = layout.cp * (layout.tp if layout.sp else 1)
    per_micro = arch.num_hidden_layers / layout.pp * workload.batch * workload.seq / shard * arch.hidden_size * ACT_BYTES
    copy = micro_batches * per_micro / pcie_bytes_per_second(gpu, pcie_fallback)
    return max(0.0, copy - compute / 3) + max(0.0, copy - 2 * compute / 3)


def _bandwidth(gpu: GPU, group_span: int, gpus_per_node: int, network: str, eff: TrainingEfficiency) -> float:
    """Per-GPU bandwidth of a group spanning ``group_span`` consecutive ranks: the GPU fabric
    inside its scale-up domain (the server, or a rack-scale NVLink domain), the network across."""
    if group_span <= gpu.scale_up(gpus_per_node):
        return fabric_bandwidth(gpu, group_span)
    return float(networks()[network]["per_gpu_bytes_per_second"])


def ring_bandwidth(gpu: GPU, group_span: int, stride: int, gpus_per_node: int, network: str) -> float:
    """Per-GPU bus bandwidth of a ring collective (all-reduce, all-gather, reduce-scatter) over
    ranks ``stride`` apart inside ``group_span`` consecutive ranks.  Inside the scale-up domain,
    the GPU fabric.  Across nodes, NCCL runs one ring per NIC, each entering and leaving every
    node once, so the bus bandwidth is the NICs of the group's ranks in one node together,
    capped by the fabric inside it: "on an NVIDIA DGX-A100 system we have 8x200Gbit/s IB cards
    and we measure 192GB/s AllReduce BusBW" (NVIDIA, NVIDIA/nccl issue #812, 2023-03-31; node count not stated); "on 3+
    nodes ... the busbw ... [reflects] the total NIC bandwidth" (S. Jeaugey, nccl-tests issue
    #160, 2023-08-01).  A group with one rank per node (data parallelism across tp = 8 nodes)
    has that rank's own NIC, capped by its PCIe link on PCIe cards."""
    domain = gpu.scale_up(gpus_per_node)
    if group_span <= domain:
        return fabric_bandwidth(gpu, group_span)
    # each GPU reaches its NIC over its own PCIe link (GPUDirect RDMA): a Gen4 x16 card moves at most
    # 31.5 GB/s whatever the port's rate
    nic = float(networks()[network]["per_gpu_bytes_per_second"])
    nic = min(nic, pcie_bytes_per_second(gpu, nic))
    # the group's ranks in one host (its NICs: one per GPU).  A rack-scale NVLink domain (GB200 NVL72)
    # counts its host's 4, not the domain's 72: rings over 72 NICs at once are not measured here
    per_node = max(1, min(domain, gpus_per_node) // max(1, stride))
    if per_node == 1:
        return nic
    # those ranks lie ``stride`` apart, over per_node x stride GPUs of the server: an NVLink bridge
    # joins only its pair
    return min(per_node * nic, fabric_bandwidth(gpu, per_node * stride))


@dataclass(frozen=True)
class _Step:
    """What every term of one training step needs: the job and its per-step shape."""

    arch: Architecture
    workload: Workload
    layout: Layout
    gpu: GPU
    eff: TrainingEfficiency
    gpus_per_node: int
    network: str
    micro_batches: int        # per pipeline per step
    message: float            # bytes of one micro-batch's activations (b s/cp h)

    @property
    def link_eff(self):
        from rigsize.speed.roofline import Efficiency

        return Efficiency(1, 1, 1, self.eff.link, 0, self.eff.collective_latency_s)

    def bandwidth(self, group: int) -> float:
        return _bandwidth(self.gpu, group, self.gpus_per_node, self.network, self.eff)


def _tp_comm(st: _Step) -> float:
    """4 all-reduces of b s h per layer and micro-batch (2 forward, 2 backward), 2 more
    with full recompute (Korthikanti et al. 2022 sec. 4.2.2)."""
    lay = st.layout
    if lay.tp == 1:
        return 0.0
    calls = 4 + (2 if lay.recompute == "full" else 0)
    layers = st.arch.num_hidden_layers / lay.pp
    return st.micro_batches * layers * calls * allreduce_seconds(st.message, lay.tp, st.bandwidth(lay.tp), st.link_eff)


def _pp_comm(st: _Step, vpp: int) -> float:
    """Each micro-batch's activations forward and gradients backward cross each stage
    boundary (Narayanan et al. 2021 sec. 2.2), once per virtual stage."""
    lay = st.layout
    if lay.pp == 1:
        return 0.0
    bw = st.bandwidth(lay.tp * lay.cp * lay.dp * 2)       # neighbouring stages are tp*cp*dp ranks apart
    return 2 * st.micro_batches * vpp * (st.message / lay.tp / (bw * st.eff.link) + st.eff.collective_latency_s)


def _cp_comm(st: _Step) -> float:
    """Ring exchange of K/V blocks (cp - 1 hops per pass; forward + 2x backward), hidden
    behind the attention core it overlaps with."""
    arch, lay, w = st.arch, st.layout, st.workload
    if lay.cp == 1:
        return 0.0
    bw = st.bandwidth(lay.tp * lay.cp)
    kv = 2 * arch.num_key_value_heads * arch.head_dim / max(1, lay.tp)
    ring = (lay.cp - 1) * w.batch * w.seq / lay.cp * kv * ACT_BYTES / (bw * st.eff.link)
    # the attention core of the step on one GPU (bf16 under FP8 recipes too); before 2026-12-02 this
    # left out a factor T (the sequence), so the ring was never hidden
    flops = w.global_batch * w.seq * attention_flops_per_token(arch, w.seq)
    attn_time = attention_seconds(flops, peak_flops(st.gpu, "bf16"), _achieved(st.eff, dense_width(arch, lay)),
                                  st.eff) / lay.gpus
    return max(0.0, 3 * st.micro_batches * arch.num_hidden_layers / lay.pp * ring - attn_time)


def _ep_comm(st: _Step) -> float:
    """All-to-all dispatch and combine of each MoE layer's tokens, forward and backward."""
    arch, lay, w = st.arch, st.layout, st.workload
    if lay.ep == 1 or not arch.num_experts:
        return 0.0
    bw = st.bandwidth(lay.expert_tp * lay.ep)
    moe_layers = len(arch.moe_layers) / lay.pp
    # each rank dispatches its own tokens: with sequence parallelism tp ranks split them
    tokens = w.batch * w.seq / lay.cp / (lay.tp if lay.sp else 1)
    volume = tokens * arch.experts_per_token * arch.hidden_size * ACT_BYTES
    return st.micro_batches * moe_layers * 4 * (lay.ep - 1) / lay.ep * volume / (bw * st.eff.link)


def _rank_param_sums(arch: Architecture, lay: Layout) -> tuple[float, float]:
    """(dense, expert) parameters of the whole model one rank of each stage holds
    together, split as ``memory.per_gpu.shard_factor`` splits them; memoized per
    architecture object and the layout fields shard_factor reads."""
    from rigsize.memory.per_gpu import shard_factor

    key = (id(arch), lay.tp, lay.ep, lay.expert_tp)
    hit = _RANK_PARAM_SUMS.get(key)
    if hit is not None and hit[0] is arch:
        return hit[1]
    dense = sum(t.numel / shard_factor(t, arch, lay) for t in arch.tensors if not t.role.startswith("expert_"))
    expert = sum(t.numel / shard_factor(t, arch, lay) for t in arch.tensors if t.role.startswith("expert_"))
    if len(_RANK_PARAM_SUMS) >= 1024:
        _RANK_PARAM_SUMS.clear()
    _RANK_PARAM_SUMS[key] = (arch, (dense, expert))
    return dense, expert


_RANK_PARAM_SUMS: dict[tuple, tuple[Architecture, tuple[float, float]]] = {}


def _dp_comm(st: _Step, compute: float, bubble: float) -> float:
    """Gradients reduced once per step (ring all-reduce, or reduce-scatter under ZeRO and
    Megatron's distributed optimizer), hidden behind backward where the framework
    overlaps it (DDP/FSDP); ZeRO-3 gathers parameters for forward and backward of every
    micro-batch, overlapped with the step's compute and bubble time."""
    arch, lay, w = st.arch, st.layout, st.workload
    dense, expert = (x / lay.pp for x in _rank_param_sums(arch, lay))
    grad_width = 4 if w.framework == "megatron" else 2      # Megatron reduces fp32 main grads
    total = 0.0
    # dense states: dp x cp ranks tp apart; experts: their data-parallel ranks ep x expert-tp apart
    # (Megatron-Core's rank orders tp-cp-ep-dp-pp and, for experts, tp-ep-dp-pp)
    for params, ranks, stride in ((dense, lay.zero_shards, lay.tp),
                                  (expert, lay.expert_zero_shards, lay.ep * lay.expert_tp)):
        if ranks <= 1 or params == 0:
            continue
        bw = ring_bandwidth(st.gpu, lay.stage_ranks, stride, st.gpus_per_node, st.network)
        if lay.zero == 3:
            gather = allgather_seconds(params * ACT_BYTES, ranks, bw, st.link_eff)
            per_micro = 2 * gather + allgather_seconds(params * grad_width, ranks, bw, st.link_eff)
            total += max(0.0, st.micro_batches * per_micro - (compute + bubble))      # overlapped with compute
        else:
            reduce = allreduce_seconds(params * grad_width, ranks, bw, st.link_eff)
            total += max(0.0, reduce - (2 / 3) * compute) if w.framework in ("hf", "fsdp") else reduce
    return total


def training_speed(arch: Architecture, workload: Workload, layout: Layout, gpu: GPU, *, gpus_per_node: int,
                   network: str, vpp: int = 1, train_tokens: float | None = None,
                   eff: TrainingEfficiency | None = None, precision: str = "bf16", host: Any = None) -> TrainingSpeed:
    """One step's time as the sum of its terms (the module docstring's list), with MFU,
    HFU and, for ``train_tokens``, days and GPU-hours."""
    if eff is None:
        eff, _ = training_efficiency(gpu.architecture, workload.framework)
    model_flops, hw_flops = step_flops(arch, workload, layout)
    m = max(1, workload.global_batch // (workload.batch * layout.dp))     # micro-batches per pipeline per step
    st = _Step(arch, workload, layout, gpu, eff, gpus_per_node, network, m,
               workload.batch * workload.seq / layout.cp * arch.hidden_size * ACT_BYTES)
    # each GPU computes its stage's share; the slowest stage paces the pipeline
    compute = (compute_seconds(arch, workload, layout, gpu, eff, precision)
               + m * dequant_seconds(arch, workload, layout, gpu)) * stage_imbalance(arch, workload, layout)
    moe = moe_overhead_seconds(arch, layout, m, eff)
    bubble = (compute + moe) * (layout.pp - 1) / (m * vpp)      # the fixed MoE time idles the pipeline too
    breakdown = {"compute": compute, "bubble": bubble, "tp_comm": _tp_comm(st), "dp_comm": 0.0,
                 "pp_comm": _pp_comm(st, vpp), "ep_comm": _ep_comm(st), "cp_comm": _cp_comm(st),
                 "moe_overhead": moe,
                 "offload": offload_seconds(arch, workload, layout, gpu, compute, m, host,
                                            min(layout.gpus, gpus_per_node))
                 + activation_offload_seconds(arch, workload, layout, gpu, compute, m, PCIE_X16["gen4"])}
    breakdown["dp_comm"] = _dp_comm(st, compute, bubble)
    return _result(breakdown, model_flops, hw_flops, workload, layout.gpus, peak_flops(gpu, precision), train_tokens)


def _result(breakdown: dict[str, float], model_flops: float, hw_flops: float, workload: Workload, gpus: int,
            peak: float, train_tokens: float | None) -> TrainingSpeed:
    """Totals from the terms; ``peak`` is the MFU denominator (the fp8 peak for FP8 recipes)."""
    step = sum(breakdown.values())
    bound = max(breakdown.items(), key=lambda kv: kv[1])[0]
    tokens = workload.global_batch * workload.seq
    days = gpu_hours = None
    if train_tokens:
        seconds = train_tokens / tokens * step
        days, gpu_hours = seconds / 86400, seconds * gpus / 3600
    return TrainingSpeed(
        step_seconds=step, tokens_per_second=tokens / step, samples_per_second=workload.global_batch / step,
        mfu=model_flops / (step * gpus * peak), hfu=hw_flops / (step * gpus * peak), bound=bound,
        breakdown=breakdown, model_flops_per_step=model_flops, train_days=days, gpu_hours=gpu_hours,
    )
