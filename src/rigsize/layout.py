"""What runs (the workload) and how it is spread over GPUs (the layout), with the
validity rules engines enforce.

Vocabulary (STYLE.md rule 12): ``tp pp dp ep cp sp zero`` everywhere.  The GPU count
is ``tp * pp * dp * cp``; ``ep`` shards experts across the ``tp * dp * cp`` ranks of a
pipeline stage (as vLLM and Megatron-Core do) and must divide that product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rigsize import formats
from rigsize.architecture import Architecture
from rigsize.errors import PlanError
from rigsize.formats import WeightFormat
from rigsize.messages import Note

Task = Literal["inference", "finetune", "lora", "qlora", "pretrain"]
Framework = Literal["deepspeed", "megatron", "fsdp", "hf"]
TRAINING_TASKS = ("finetune", "lora", "qlora", "pretrain")


@dataclass(frozen=True)
class Layout:
    """How one job is spread over GPUs."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    cp: int = 1
    sp: bool = False
    zero: int = 0
    offload: Literal["none", "optimizer", "params"] = "none"
    recompute: Literal["none", "selective", "full"] = "none"

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    @property
    def stage_ranks(self) -> int:
        """Ranks that share one pipeline stage: tp * dp * cp."""
        return self.tp * self.dp * self.cp

    @property
    def expert_tp(self) -> int:
        """Tensor-parallel width inside each expert.

        Megatron-Core's default expert_tensor_parallel_size is tp, bounded so that
        ep * etp divides tp * dp * cp; vLLM's expert parallelism uses all tp * dp ranks
        as EP ranks with no TP inside experts.  min(tp, tp*dp*cp/ep) gives both.
        """
        return max(1, min(self.tp, self.stage_ranks // self.ep))

    @property
    def zero_shards(self) -> int:
        """Ranks ZeRO / the distributed optimizer shard dense states over: dp x cp."""
        return self.dp * self.cp

    @property
    def expert_zero_shards(self) -> int:
        """The experts' own data-parallel group (Megatron-Core's expert-data-parallel):
        tp x dp x cp ranks of a stage hold ep x expert-tp distinct expert shards."""
        return max(1, self.stage_ranks // (self.ep * self.expert_tp))


@dataclass(frozen=True)
class Workload:
    """What runs: the job and its sizes (tokens, sequences)."""

    task: Task
    batch: int                 # inference: concurrent sequences; training: micro-batch (sequences)
    seq: int                   # tokens per sequence held in memory
    prompt: int = 0            # inference only
    output: int = 0            # inference only
    global_batch: int = 0      # training: sequences per optimizer step
    framework: Framework = "hf"
    optimizer: Literal["adamw", "adamw-8bit", "adamw-bf16"] = "adamw"
    lora_rank: int = 16
    lora_targets: frozenset[str] | None = None   # None: all linear layers

    @property
    def training(self) -> bool:
        return self.task in TRAINING_TASKS

    @property
    def grad_accum(self) -> int:
        return max(1, self.global_batch // max(1, self.batch))


def divisors(n: int, limit: int) -> list[int]:
    """Divisors of ``n`` up to ``limit``, ascending, in O(sqrt n)."""
    out: set[int] = set()
    d = 1
    while d * d <= n:
        if n % d == 0:
            out.update((d, n // d))
        d += 1
    return sorted(x for x in out if x <= limit)


def _shape_problems(arch: Architecture, tp: int) -> list[tuple[str, dict[str, object]]]:
    """The attention and MLP constraints ``tp`` breaks, as (message key, parameters).

    vLLM's ``ColumnParallelLinear``/``QKVParallelLinear`` need tp to divide the heads and
    the MLP width; KV heads are split when tp divides them and replicated when tp is a
    multiple of them (``QKVParallelLinear``: num_kv_head_replicas)."""
    problems: list[tuple[str, dict[str, object]]] = []
    heads, kv = arch.num_attention_heads, arch.num_key_value_heads
    if heads % tp:
        problems.append(("plan.tp_heads", {"heads": heads}))
    elif arch.attention == "standard" and kv < tp and tp % kv:
        problems.append(("plan.tp_kv_whole", {"kv": kv}))
    elif arch.attention == "standard" and kv >= tp and kv % tp:
        problems.append(("plan.tp_kv", {"kv": kv}))
    if arch.intermediate_size and arch.intermediate_size % tp:
        problems.append(("plan.tp_intermediate", {"size": arch.intermediate_size}))
    return problems


def valid_tp_sizes(arch: Architecture, fmt: str | WeightFormat | None = None, limit: int = 64) -> list[int]:
    """Every tp up to ``limit`` that splits the attention heads, the KV heads, the MLP
    width and (given ``fmt``) its quantization groups, all at once.  The one source of
    every tp rigsize suggests or chooses.

    Experts are checked at expert-tp = tp (no expert parallelism); with ep > 1 more
    sizes may work, which ``validate_layout`` and ``sizing.validate_job`` judge."""
    sizes = [tp for tp in range(1, max(1, limit) + 1) if not _shape_problems(arch, tp)]
    if fmt is None:
        return sizes
    fmt = formats.resolve_weight_format(fmt)
    dense = [t for t in arch.tensors if not t.role.startswith("expert_")]
    experts = [t for t in arch.tensors if t.role.startswith("expert_")]
    return [tp for tp in sizes
            if not formats.tp_group_problems(fmt, dense, tp) and not formats.tp_group_problems(fmt, experts, tp)]


def tp_hint(arch: Architecture, tp: int, fmt: str | WeightFormat | None = None) -> Note:
    """"try 4 or 8": the nearest tp sizes below and above ``tp`` that satisfy every
    constraint (``valid_tp_sizes``); with ``fmt``, also the sizes that only its
    quantization groups rule out, which a checkpoint padded for tp would allow."""
    def nearest(sizes: list[int]) -> list[int]:
        below = [d for d in sizes if d < tp]
        above = [d for d in sizes if d > tp]
        return ([below[-1]] if below else []) + ([above[0]] if above else [])

    near = nearest(valid_tp_sizes(arch, fmt)) or [1]
    hint = (Note("plan.tp_try_two", {"a": near[0], "b": near[1]}) if len(near) == 2
            else Note("plan.tp_try_one", {"a": near[0]}))
    if fmt is None:
        return hint
    blocked = [d for d in nearest(valid_tp_sizes(arch)) if d not in near]
    if not blocked:
        return hint
    name = formats.resolve_weight_format(fmt).name
    return Note("plan.tp_try_padded", {"hint": hint, "blocked": ", ".join(map(str, blocked)), "fmt": name})


def tp_problems(arch: Architecture, tp: int, fmt: str | WeightFormat | None = None) -> list[Note]:
    """Why ``tp`` cannot split this model's attention and MLP (empty when it can), each
    with the nearest sizes that can (quantization groups of ``fmt`` included)."""
    problems = _shape_problems(arch, tp)
    if not problems:
        return []
    hint = tp_hint(arch, tp, fmt)
    return [Note(key, {"tp": tp, **params, "hint": hint}) for key, params in problems]


def validate_layout(arch: Architecture, layout: Layout, workload: Workload) -> None:
    """Raise ``PlanError`` naming the first constraint a layout breaks."""
    problems = tp_problems(arch, layout.tp)
    if problems:
        raise PlanError("plan.invalid", why=problems[0])
    if layout.pp > arch.num_hidden_layers:
        raise PlanError("plan.invalid", why=f"pp={layout.pp} exceeds the {arch.num_hidden_layers} layers")
    if layout.ep > 1:
        if not arch.num_experts:
            raise PlanError("plan.invalid", why=f"ep={layout.ep} needs a mixture-of-experts model")
        if layout.stage_ranks % layout.ep:
            raise PlanError("plan.invalid", why=f"ep={layout.ep} must divide tp x dp x cp = {layout.stage_ranks}")
        if arch.num_experts % layout.ep:
            raise PlanError("plan.invalid", why=f"ep={layout.ep} does not divide {arch.num_experts} experts")
    if not workload.training:
        if layout.zero or layout.offload != "none" or layout.recompute != "none":
            raise PlanError("plan.invalid", why="--zero, --offload and --recompute apply to training tasks")
        if layout.cp > 1:
            raise PlanError("plan.invalid", why="context parallelism (--cp) is modelled for training only; "
                            "use tp or pp for inference")
        return
    if workload.framework == "hf" and (layout.tp > 1 or layout.pp > 1 or layout.cp > 1):
        raise PlanError("plan.invalid", why="transformers' Trainer scales by data parallelism only; use "
                        "--framework megatron for tp/pp/cp, or deepspeed/fsdp with --zero")
    if workload.framework == "megatron" and layout.zero > 1:
        raise PlanError("plan.invalid", why="Megatron's distributed optimizer is ZeRO-1 (--zero 1); "
                        "use --framework deepspeed or fsdp for ZeRO-2/3")
    if layout.offload == "params" and layout.zero != 3:
        raise PlanError("plan.invalid", why="--offload params needs --zero 3 (DeepSpeed offload_param is ZeRO-3 only)")
    if layout.offload == "optimizer" and layout.zero == 0:
        raise PlanError("plan.invalid", why="--offload optimizer needs --zero 1, 2 or 3 (ZeRO-Offload)")
    if workload.global_batch % (workload.batch * layout.dp):
        raise PlanError("plan.invalid", why=f"global batch {workload.global_batch} is not a multiple of "
                        f"micro-batch {workload.batch} x dp {layout.dp}")

