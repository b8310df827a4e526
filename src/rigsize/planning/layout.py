"""What runs (the workload) and how it is spread over GPUs (the layout), with the
validity rules engines enforce.

Vocabulary (STYLE.md rule 12): ``tp pp dp ep cp sp zero`` everywhere.  The GPU count
is ``tp * pp * dp * cp``; ``ep`` shards experts across the ``tp * dp * cp`` ranks of a
pipeline stage (as vLLM and Megatron-Core do) and must divide that product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rigsize.errors import PlanError
from rigsize.memory.frameworks import Recipe, defaults
from rigsize.messages import Note
from rigsize.model import formats
from rigsize.model.architecture import Architecture
from rigsize.model.formats import WeightFormat
from rigsize.model.tp_groups import tp_group_problems

Task = Literal["inference", "finetune", "lora", "qlora", "pretrain"]
Framework = Literal["hf", "trl", "deepspeed", "megatron", "fsdp", "torchtitan", "torchtune", "unsloth", "llamafactory"]
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
    pp_first_layers: int | None = None   # Megatron --decoder-first-pipeline-num-layers
    pp_last_layers: int | None = None    # Megatron --decoder-last-pipeline-num-layers

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
    images: int | None = None  # inference: images per request (None: not said; 0: a text-only deployment)
    image_size: tuple[int, int] | None = None   # inference: (width, height) px of each image, where images
    global_batch: int = 0      # training: sequences per optimizer step
    framework: Framework = "hf"
    optimizer: Literal["adamw", "adamw-8bit", "adamw-bf16"] = "adamw"
    lora_rank: int = 16
    lora_targets: frozenset[str] | None = None   # None: all linear layers
    recipe: Recipe | None = None   # the framework's defaults with the user's options; None: defaults

    @property
    def training(self) -> bool:
        return self.task in TRAINING_TASKS

    @property
    def settings(self) -> Recipe:
        """The recipe in force (``data/frameworks.toml`` defaults unless one was given)."""
        if self.recipe is not None:
            return self.recipe
        return defaults(self.framework, self.task if self.training else "finetune")

    @property
    def grad_accum(self) -> int:
        return max(1, self.global_batch // max(1, self.batch))


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: its decoder layers and whether it holds the model's ends.

    The first stage holds the embedding; the last the final norm, the lm_head, the
    logits and the loss; a middle stage neither; with pp = 1 the only stage is both."""

    index: int
    layers: range
    first: bool
    last: bool

    @property
    def role(self) -> Literal["only", "first", "middle", "last"]:
        if self.first and self.last:
            return "only"
        return "first" if self.first else ("last" if self.last else "middle")


def stage_sizes(n_layers: int, pp: int, first: int | None = None, last: int | None = None) -> list[int]:
    """Decoder layers per pipeline stage.

    - With ``first``/``last`` (Megatron-LM's ``--decoder-first-pipeline-num-layers`` /
      ``--decoder-last-pipeline-num-layers``, ``megatron/core/transformer/
      transformer_block.py`` ``get_num_layers_to_build``): the end stages hold those
      layers and the rest split evenly over the other stages (``megatron_stage_problem``
      says when Megatron refuses).
    - Otherwise an even split, the remainder given one each to the stages before the
      last, from the second-to-last backwards: vLLM's ``get_pp_indices``
      (``vllm/distributed/utils.py``; the last stage also holds the lm_head).  When pp
      divides the layers this is Megatron-LM's split too (Megatron refuses the rest:
      ``megatron/training/arguments.py``, "Number of layers should be divisible by the
      pipeline-model-parallel size").
    """
    if pp > 1 and (first is not None or last is not None):
        fixed = {i: n for i, n in ((0, first), (pp - 1, last)) if n is not None}
        each = (n_layers - sum(fixed.values())) // (pp - len(fixed)) if pp > len(fixed) else 0
        return [fixed.get(i, each) for i in range(pp)]
    out = [n_layers // pp] * pp
    for i in range(n_layers % pp):
        out[-2 - i if pp > 1 else 0] += 1
    return out


def megatron_stage_problem(n_layers: int, pp: int, first: int | None, last: int | None) -> str | None:
    """Why Megatron-LM would refuse this layer split (None when it accepts it)."""
    if first is None and last is None:
        if n_layers % pp:
            ok = ", ".join(str(d) for d in divisors(n_layers, 64) if d > 1) or "1"
            return (f"pp={pp} does not divide the {n_layers} layers (Megatron-LM requires it); use pp {ok}, or give "
                    "--pp-first-layers/--pp-last-layers (Megatron's --decoder-first/last-pipeline-num-layers)")
        return None
    given = [x for x in (first, last) if x is not None]
    if pp == 1:
        return "--pp-first-layers/--pp-last-layers need pp > 1"
    rest, free = n_layers - sum(given), pp - len(given)
    if rest < 0:
        named = " + ".join(f"{flag} {x}" for flag, x in (("--pp-first-layers", first), ("--pp-last-layers", last))
                           if x is not None)
        total = f" = {sum(given)}" if len(given) > 1 else ""
        return f"{named}{total} exceeds the {n_layers} layers; the end stages hold at most {n_layers} in all"
    if (free == 0 and rest != 0) or (free > 0 and rest % free):
        return (f"with {sum(given)} layers on the end stages, the other {rest} of {n_layers} layers do not split "
                f"evenly over the remaining {free} stages (Megatron-LM requires it)")
    return None


def pipeline_stages(n_layers: int, layout: Layout) -> tuple[Stage, ...]:
    """Every pipeline stage of ``layout`` with its layers (see ``stage_sizes``)."""
    sizes = stage_sizes(n_layers, layout.pp, layout.pp_first_layers, layout.pp_last_layers)
    out, start = [], 0
    for i, n in enumerate(sizes):
        out.append(Stage(i, range(start, start + n), first=i == 0, last=i == layout.pp - 1))
        start += n
    return tuple(out)


def divisors(n: int, limit: int) -> list[int]:
    """Divisors of ``n`` up to ``limit``, ascending, in O(sqrt n)."""
    out: set[int] = set()
    d = 1
    while d * d <= n:
        if n % d == 0:
            out.update((d, n // d))
        d += 1
    return sorted(x for x in out if x <= limit)


def training_layouts(arch: Architecture, gpus: int, node: int, framework: str, micro_batch: int,
                     global_batch: int | None, tp_sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """Every (tp, pp) a training job on ``gpus`` GPUs may be given when rigsize picks its
    model parallelism (``planning.job.least_parallel_training_layout``, then
    ``validate_layout``): Megatron-LM tries tp dividing the count inside one node and pp
    dividing the rest, pp dividing the layers (``megatron_stage_problem``), and a given
    global batch must split over dp x micro-batch; the other frameworks scale by dp alone.
    ``tp_sizes``: the tp sizes the heads, widths and quantization groups admit
    (``valid_tp_sizes``).  Necessary conditions only: a layout listed may still not fit."""
    def splits(dp: int) -> bool:
        return global_batch is None or global_batch % (micro_batch * dp) == 0

    if framework != "megatron":
        return [(1, 1)] if splits(gpus) else []
    out = []
    for tp in (d for d in range(1, min(gpus, node) + 1) if gpus % d == 0 and d in tp_sizes):
        for pp in divisors(gpus // tp, arch.num_hidden_layers):
            if splits(gpus // (tp * pp)) and (pp == 1 or arch.num_hidden_layers % pp == 0):
                out.append((tp, pp))
    return out


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
    sizes may work, which ``validate_layout`` and ``planning.job.validate_job`` judge.
    Memoized per architecture object (held in the cache, so its id is not reused), format and
    limit: a planner's search asks for the same sizes thousands of times."""
    fmt = formats.resolve_weight_format(fmt) if fmt is not None else None
    key = (id(arch), fmt, limit)
    hit = _VALID_TP.get(key)
    if hit is not None and hit[0] is arch:
        return list(hit[1])
    sizes = [tp for tp in range(1, max(1, limit) + 1) if not _shape_problems(arch, tp)]
    if fmt is not None:
        dense = [t for t in arch.tensors if not t.role.startswith("expert_")]
        experts = [t for t in arch.tensors if t.role.startswith("expert_")]
        sizes = [tp for tp in sizes
                 if not tp_group_problems(fmt, dense, tp) and not tp_group_problems(fmt, experts, tp)]
    if len(_VALID_TP) > 256:
        _VALID_TP.clear()
    _VALID_TP[key] = (arch, tuple(sizes))
    return sizes


_VALID_TP: dict[tuple, tuple[Architecture, tuple[int, ...]]] = {}


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
    ends = layout.pp_first_layers is not None or layout.pp_last_layers is not None
    if ends and not (workload.training and workload.framework == "megatron"):
        raise PlanError("plan.invalid", why="--pp-first-layers/--pp-last-layers follow Megatron-LM's uneven "
                        "pipeline split; use them with --framework megatron")
    if workload.training and workload.framework == "megatron" and layout.pp > 1:
        problem = megatron_stage_problem(arch.num_hidden_layers, layout.pp, layout.pp_first_layers,
                                         layout.pp_last_layers)
        if problem:
            raise PlanError("plan.invalid", why=problem)
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
    if workload.framework in ("trl", "unsloth", "llamafactory") and (layout.tp > 1 or layout.pp > 1 or layout.cp > 1):
        raise PlanError("plan.framework_dp_only", framework=workload.framework)
    per_rank = workload.global_batch // (workload.batch * layout.dp)
    if workload.settings.optimizer_in_backward and per_rank > 1:
        raise PlanError("plan.optimizer_in_backward_accum", global_batch=workload.global_batch, accum=per_rank,
                        batch=workload.batch, one=workload.batch * layout.dp)
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

