"""``rigsize plan``: search GPUs, counts, layouts, formats and engines for a job, keep the
plans that meet the user's goals, rank them.

Enumerate, evaluate, rank are separate steps (STYLE.md):

1. ``candidates``: every (GPU, count, layout, weight format, KV format, engine or
   framework) the flags leave open; a flag that is given pins its choice.  They are held
   as blocks (``_Run`` per GPU, ``_Block`` per count), counted without being built.
2. Cheap checks first, each rejecting with a named reason: the format must run on the
   GPU; tp must split the heads, KV heads, MLP width and quantization groups; the
   weights and the requested sequences' KV cache (per data-parallel replica, over its
   tp x pp GPUs, within the job's memory utilization) or, for full training, the 16 bytes
   per parameter of weights, gradients and Adam states however they are sharded, must fit
   in the GPUs' usable memory; a training run must meet the deadline even at the dense peak.
3. The survivors are evaluated through the same path as ``estimate``
   (``planning.job.resolve_job`` -> ``planning.evaluate.evaluate`` -> ``planning.cost.job_cost``),
   memory once per (GPU, count, layout, formats) and speed per engine.
4. Goals filter (TTFT, TPOT, throughput, budget, deadline), the objective ranks, and each
   recommendation is ``estimate``'s full report for its choices, so re-running
   ``estimate`` with them gives the same numbers.

Pruning that cannot change the answer (``_run``, ``_best_first``): where the objective's
first ranking key has a lower bound known before evaluation (``_first_key``), candidates
are taken best-first from a queue and the search stops once ``top`` plans meet every goal
and every bound left is worse (``pruned``).  The queue holds GPUs, then blocks, then cells
at lower bounds of all they contain (``_block_floor``), and for training runs refines a
cell's bound in steps before evaluating it (``_refine_key``: the layouts ``estimate`` may
pick, their compute and bubble, then their full step time).  Ties rank in the order the
plain sorted search gave.  ``tests/planning/test_plan.py`` checks the queue's order
against the sorted candidate list, each bound against the evaluated values, and the
pruned search against the exhaustive one on small spaces.
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any, Callable, Iterator

from rigsize.errors import FormatError, InputError, PlanError, RigsizeError
from rigsize.hardware.gpus import GPU, catalog, resolve_gpu
from rigsize.model import formats
from rigsize.model.inputs import ModelSpec, resolve_model
from rigsize.model.tp_groups import tp_group_problems
from rigsize.planning.layout import TRAINING_TASKS, divisors, tp_problems
from rigsize.planning.options import parse_options

REASONS = ("out_of_memory", "context_too_long", "heads_not_divisible", "kv_heads_not_divisible", "quant_groups_not_divisible",
           "experts_not_divisible", "format_unsupported", "misses_ttft", "misses_tpot", "misses_throughput",
           "misses_deadline", "over_budget", "invalid_layout")
OBJECTIVES = ("cheapest", "fastest", "fewest-gpus", "pareto", "lowest-latency", "cheapest-per-token")
ENGINES = ("vllm", "sglang", "trtllm")
# --allow-quant: the weight formats a serving engine loads (GGUF belongs to llama.cpp,
# the local-inference issue); kept to those gpu_runs says the GPU computes or dequantizes.
QUANT_WEIGHTS = ("fp8", "fp8-block", "int8", "gptq-int4", "awq-int4", "nvfp4")
QUANT_KV = ("fp8",)
# 16 bytes per parameter for mixed-precision Adam: bf16 weights and gradients, fp32 master
# weights and two moments (ZeRO paper, Rajbhandari et al. 2020, sec. 3.1: "2Psi + 2Psi + 12Psi").
FULL_TRAINING_BYTES_PER_PARAM = 16
DEFAULT_MAX_GPUS = {"pretrain": 4096}
# The stacks a team would use per task, (framework, ZeRO stage), the first for one GPU:
# Megatron-LM for pre-training (Narayanan et al. 2021); full fine-tuning sharded by
# DeepSpeed ZeRO-3 or FSDP (Rajbhandari et al. 2020; PyTorch FSDP, Zhao et al. 2023);
# LoRA with PEFT on one GPU or ZeRO-3 across several; QLoRA with PEFT + bitsandbytes.
TRAINING_STACKS: dict[str, list[tuple[str, int]]] = {
    "pretrain": [("megatron", 0)],
    "finetune": [("hf", 0), ("deepspeed", 3), ("fsdp", 3)],
    "lora": [("hf", 0), ("deepspeed", 3)],
    "qlora": [("hf", 0), ("deepspeed", 3)],
}
DEFAULT_MAX_GPUS_OTHER = 64


@dataclass(frozen=True)
class Goals:
    ttft: float | None = None
    tpot: float | None = None
    throughput: float | None = None
    budget_per_hour: float | None = None
    deadline_days: float | None = None
    max_gpus: int = DEFAULT_MAX_GPUS_OTHER


@dataclass(frozen=True)
class Candidate:
    gpu: str
    gpus: int
    tp: int
    pp: int
    dp: int
    weights: str
    kv_dtype: str
    engine: str            # inference engine, or training framework ("" = the task's default)
    zero: int = 0          # training: ZeRO stage
    recompute: str = ""    # training: activation recomputation ("" = the framework's default)

    def options(self, training: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"gpu": self.gpu, "gpus": self.gpus, "weights": self.weights}
        if training:
            if self.engine:
                out["framework"] = self.engine
            if self.zero:
                out["zero"] = str(self.zero)
            if self.recompute:
                out["recompute"] = self.recompute
            return out
        out.update(tp=self.tp, pp=self.pp, dp=self.dp, kv_dtype=self.kv_dtype, engine=self.engine)
        return out


def parse_have(text: str) -> list[tuple[str, int, int | None]]:
    """``"4x RTX-4090"``, ``"2x8 H100"`` (2 nodes of 8), ``"2x H100, 4x A100-80GB"`` ->
    [(GPU name, total count, GPUs per node or None)]."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = re.fullmatch(r"(\d+)\s*x\s*(?:(\d+)\s+)?(.+)", part, flags=re.I)
        if not m:
            raise InputError("input.conflict", what=f"--have '{part}': write COUNTx NAME or NODESxCOUNT NAME, "
                             "e.g. '4x RTX-4090' or '2x8 H100'")
        first, per_node, name = int(m.group(1)), m.group(2), m.group(3).strip()
        if first < 1 or (per_node is not None and int(per_node) < 1):
            raise InputError("input.conflict", what=f"--have '{part}': counts start at 1, e.g. '1x RTX-4090'")
        gpu = resolve_gpu(name).name
        out.append((gpu, first * int(per_node), int(per_node)) if per_node else (gpu, first, None))
    if not out:
        raise InputError("input.conflict", what=f"--have {text!r} names no hardware; write COUNTx NAME, "
                         "e.g. '4x RTX-4090' or '2x8 H100'")
    return out


def check_fixed_choices(spec: ModelSpec, opts: dict[str, Any]) -> None:
    """The hardware and layout the user fixed, checked once before any scenario is searched:
    a malformed --have or --gpu, --have with --gpu/--gpus (--have already says which GPUs and
    how many), a tp that cannot split the model or a pp deeper than its layers, and --gpus that
    the given sizes cannot fill.  Searched instead, each left no candidate ("0 candidates
    considered"), and the overview put the error in every scenario's cell with exit code 0."""
    if opts.get("have") is not None:
        if "gpu" in opts or "gpus" in opts:
            raise InputError("input.conflict", what="give --have, or --gpu/--gpus, not both (--have already "
                             "names the GPUs and how many)")
        parse_have(str(opts["have"]))
    if opts.get("gpu") is not None:
        names = [n.strip() for n in str(opts["gpu"]).split(",")]
        if not any(names):
            raise InputError("input.conflict", what=f"--gpu {opts['gpu']!r} names no GPU; write e.g. H100 or "
                             "'H100,L4' ('rigsize gpus' lists the catalog)")
        from rigsize.memory.local_engines import CPU_ONLY, LOCAL_ENGINES

        for name in filter(None, names):
            if name.lower() in CPU_ONLY:
                if opts.get("engine") not in LOCAL_ENGINES:
                    raise InputError("input.conflict", what=f"--gpu {name}: the host CPU alone is sized for "
                                     "llama.cpp and Ollama only; add --engine llamacpp or --engine ollama")
                continue
            resolve_gpu(name)
    arch = spec.arch
    if "tp" in opts and (problems := tp_problems(arch, opts["tp"])):
        raise PlanError("plan.invalid", why=problems[0])
    if opts.get("pp", 1) > arch.num_hidden_layers:
        raise PlanError("plan.invalid", why=f"pp={opts['pp']} exceeds the {arch.num_hidden_layers} layers")
    given = {k: opts[k] for k in ("tp", "pp", "dp", "cp") if k in opts}
    size = math.prod(given.values())
    if given and "gpus" in opts and (opts["gpus"] % size or (len(given) == 4 and opts["gpus"] != size)):
        raise InputError("input.conflict", what=f"--gpus {opts['gpus']} is not a multiple of "
                         f"{' x '.join(given)} = {size}")


def _counts(max_gpus: int, node: int, any_count: bool) -> list[int]:
    """GPU counts a buyer can rent or buy: 1, 2, 4, 8 inside a node, whole nodes beyond."""
    if any_count:
        return list(range(1, max_gpus + 1))
    inside = [c for c in (1, 2, 4, 8) if c <= min(node, max_gpus)]
    return inside + [n * node for n in range(2, max_gpus // node + 1) if n * node > inside[-1]]


@cache
def _newest_registry(engine: str) -> frozenset[str]:
    """The architectures the newest pinned version of ``engine`` knows (data/launch/<engine>-<version>-
    architectures.txt; the newest is each launch emitter's default, tests/launch checks it), read without
    importing the launch package (a search should not pay for it)."""
    folder = resources.files("rigsize.data").joinpath("launch")
    names = [f.name for f in folder.iterdir() if f.name.startswith(f"{engine}-") and f.name.endswith("-architectures.txt")]
    if not names:
        return frozenset()
    newest = max(names, key=lambda n: tuple(int(x) for x in re.findall(r"\d+", n[len(engine) + 1:])))
    text = folder.joinpath(newest).read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _layouts(count: int, node: int) -> list[tuple[int, int, int]]:
    """(tp, pp, dp) for inference: tp inside one node; the rest all data-parallel
    replicas or all pipeline stages (the two layouts serving engines document)."""
    out = []
    for tp in divisors(min(count, node), node):
        if count % tp:
            continue
        rest = count // tp
        out.append((tp, 1, rest))
        if rest > 1:
            out.append((tp, rest, 1))
    return out


def _shape_reason(arch: Any, tp: int, weights: str) -> str | None:
    problems = tp_problems(arch, tp)
    if problems:
        key = problems[0].key
        return {"plan.tp_heads": "heads_not_divisible", "plan.tp_kv": "kv_heads_not_divisible",
                "plan.tp_kv_whole": "kv_heads_not_divisible"}.get(key, "invalid_layout")
    dense = [t for t in arch.tensors if not t.role.startswith("expert_")]
    experts = [t for t in arch.tensors if t.role.startswith("expert_")]
    if tp_group_problems(weights, dense, tp) or tp_group_problems(weights, experts, tp):
        return "quant_groups_not_divisible"
    return None


@dataclass
class _Search:
    spec: ModelSpec
    opts: dict[str, Any]
    task: str
    goals: Goals
    objective: str
    rejected: Counter
    considered: int = 0
    pruned: int = 0
    memo: dict = field(default_factory=dict)
    overview: bool = False      # the scenario overview: priced GPUs, power-of-two counts
    progress: Callable[[int, int], None] | None = None

    @property
    def training(self) -> bool:
        return self.task in TRAINING_TASKS

    def gpus(self) -> list[tuple[GPU, int | None, int | None]]:
        """(GPU, the most GPUs of it one may use, GPUs per node if fixed by --have)."""
        if self.opts.get("have"):
            return [(resolve_gpu(name), count, node) for name, count, node in parse_have(self.opts["have"])]
        if self.opts.get("gpu"):
            return [(resolve_gpu(n.strip()), None, None) for n in str(self.opts["gpu"]).split(",") if n.strip()]
        rows = [g for g in catalog() if isinstance(g.flops("bf16") or g.flops("fp16"), (int, float))]
        if self.overview:       # what one can rent: GPUs with a priced instance in the catalog
            from rigsize.hardware.instances import catalog as instance_catalog

            priced = {i.gpu for i in instance_catalog(self.opts.get("prices")) if i.prices}
            rows = [g for g in rows if g.name in priced]
        return [(g, None, None) for g in rows]

    def weight_choices(self, gpu: GPU) -> list[str]:
        if "weights" in self.opts:
            return [self.opts["weights"]]
        from rigsize.planning.job import checkpoint_format, served_16bit

        base = "nf4" if self.task == "qlora" else checkpoint_format(self.spec)[0].name
        # a float32 checkpoint is served in 16 bits (vLLM/SGLang dtype auto; TensorRT-LLM converts to the dtype
        # asked for): a plan never sizes fp32 weights for inference
        base = served_16bit(base, self.task, "vllm", gpu) or base
        if self.training or not self.opts.get("allow_quant"):
            return [base]
        return [base] + [f for f in QUANT_WEIGHTS if f != base]

    def kv_choices(self, gpu: GPU) -> list[str]:
        if "kv_dtype" in self.opts:
            return [self.opts["kv_dtype"]]
        base = "bf16" if gpu.supports("bf16") else "fp16"
        if self.training or not self.opts.get("allow_quant"):
            return [base]
        return [base] + [k for k in QUANT_KV if gpu.supports(k) or k == "fp8"]

    def engines(self) -> list[str]:
        if self.training:
            return [self.opts.get("framework", "")]
        if "engine" in self.opts:
            return [self.opts["engine"]]
        if self.opts.get("engine_version"):     # a vLLM version (memory.runtime): it pins vLLM
            return ["vllm"]
        if self.overview:                       # the overview: vLLM unless --engine
            return ["vllm"]
        return [e for e in ENGINES if self._engine_has_model(e)]

    def _engine_has_model(self, engine: str) -> bool:
        """Whether the engine's default launch version knows the model's architecture (its registry, pinned
        in data/launch/<engine>-<version>-architectures.txt; rigsize.launch.architectures): a plan it could
        not start is not offered (Jamba: no pinned SGLang has JambaForCausalLM).  Unknown architectures,
        and engines without a pinned list, are kept."""
        key = ("engine_has_model", engine)
        if key not in self.memo:        # once per search: runs() asks for every block
            archs = [a for a in (self.spec.config or {}).get("architectures") or () if isinstance(a, str)]
            known = True
            if archs and engine in ("vllm", "sglang"):
                known = any(a in _newest_registry(engine) for a in archs)
            self.memo[key] = known
        return self.memo[key]

    def training_variants(self, count: int) -> list[tuple[str, int, str]]:
        """(framework, ZeRO stage, recompute) to try: the task's usual stacks (TRAINING_STACKS)
        unless pinned, with and without activation recomputation."""
        stacks = TRAINING_STACKS[self.task] if count > 1 else TRAINING_STACKS[self.task][:1]
        if "framework" in self.opts:
            # torchtune's recipes on several GPUs always shard (planning.job._torchtune_sharding)
            own = 3 if self.opts["framework"] == "torchtune" and count > 1 else 0
            stacks = [(f, z) for f, z in stacks if f == self.opts["framework"]] or [(self.opts["framework"], own)]
        if "zero" in self.opts:
            stacks = [(f, int(self.opts["zero"])) for f, _ in stacks]
        out = []
        for framework, zero in dict.fromkeys(stacks):
            recomputes = [self.opts["recompute"]] if "recompute" in self.opts else (
                ["selective", "full"] if framework == "megatron" else ["none", "full"])
            out += [(framework, zero, r) for r in recomputes]
        return out

    def runs(self) -> list[_Run]:
        """The candidates by GPU, in the order ``candidates`` lists them: each GPU's counts,
        the size of each count's block, and the blocks themselves built when asked for
        (a pre-training search lists thousands of counts per GPU that it never reaches)."""
        out = []
        for gpu, cap, node in self.gpus():
            node = node or gpu.node_size
            most = min(self.goals.max_gpus, cap or self.goals.max_gpus)
            counts = [self.opts["gpus"]] if "gpus" in self.opts else _counts(most, node, bool(self.opts.get("any_count")))
            if self.overview and "gpus" not in self.opts:     # powers of two: 1, 2, 4, ... nodes
                counts = [c for c in counts if c & (c - 1) == 0]
            weights = tuple(self.weight_choices(gpu))
            if self.training:      # training_variants reads only whether the count is above 1
                variants = {many: tuple(self.training_variants(2 if many else 1)) for many in {c > 1 for c in counts}}

                def make(j: int, gpu: GPU = gpu, counts: list[int] = counts, weights: tuple[str, ...] = weights,
                         variants: dict = variants) -> _Block:
                    count = counts[j]
                    return _Block(gpu.name, count, weights, ("",), ((1, 1, count),), ("",), variants[count > 1])
                out.append(_Run(gpu.name, counts, [len(weights) * len(variants[c > 1]) for c in counts], make,
                                tuple(variants.values())))
                continue
            blocks = []
            for count in counts:
                shapes = _layouts(count, node)
                if self.objective == "lowest-latency":     # replicas do not shorten one request
                    shapes = [sh for sh in shapes if sh[2] == 1]
                given = [(i, self.opts[k]) for i, k in enumerate(("tp", "pp", "dp")) if k in self.opts]
                if len(given) == 3 and given[0][1] * given[1][1] * given[2][1] == count:
                    shapes = list(dict.fromkeys([*shapes, tuple(v for _, v in given)]))   # a mixed layout asked for
                shapes = [sh for sh in shapes if all(sh[i] == v for i, v in given)]      # a given size pins it
                blocks.append(_Block(gpu.name, count, weights, tuple(self.kv_choices(gpu)), tuple(shapes),
                                     tuple(self.engines())))
            out.append(_Run(gpu.name, counts, [b.size for b in blocks], blocks.__getitem__))
        return out

    def blocks(self) -> list[_Block]:
        """The candidates, one block per (GPU, count), in the order ``candidates`` lists them."""
        return [r.block(j) for r in self.runs() for j in range(len(r.counts))]

    def candidates(self) -> Iterator[Candidate]:
        for block in self.blocks():
            for i in range(len(block)):
                yield block.member(i)


@dataclass(eq=False)
class _Run:
    """One GPU's blocks (``_Block``), one per count, each built on first use."""

    gpu: str
    counts: list[int]
    sizes: list[int]                        # candidates per count
    make: Callable[[int], _Block]
    variants: tuple[tuple[tuple[str, int, str], ...], ...] = ()    # training: the variant lists used
    built: dict[int, _Block] = field(default_factory=dict)

    def block(self, j: int) -> _Block:
        if j not in self.built:
            self.built[j] = self.make(j)
        return self.built[j]


@dataclass(slots=True, eq=False)
class _Block:
    """The candidates of one (GPU, count): every weight format x KV format x (tp, pp, dp)
    x engine for inference, every weight format x (framework, ZeRO, recompute) for
    training.  A member is named by its index, in that nesting order, so a search can
    order, count and skip members without building them."""

    gpu: str
    gpus: int
    weights: tuple[str, ...]
    kvs: tuple[str, ...]
    shapes: tuple[tuple[int, int, int], ...]
    engines: tuple[str, ...]
    variants: tuple[tuple[str, int, str], ...] = ()     # training only
    size: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.size = (len(self.weights) * len(self.variants) if self.variants
                     else len(self.weights) * len(self.kvs) * len(self.shapes) * len(self.engines))

    def __len__(self) -> int:
        return self.size

    def index(self, w: int, k: int, inner: int, e: int) -> int:
        """The member index of (weights, KV, shape or variant, engine) positions."""
        if self.variants:
            return w * len(self.variants) + inner
        return ((w * len(self.kvs) + k) * len(self.shapes) + inner) * len(self.engines) + e

    def member(self, i: int) -> Candidate:
        if self.variants:
            w, v = divmod(i, len(self.variants))
            framework, zero, recompute = self.variants[v]
            return Candidate(self.gpu, self.gpus, 1, 1, self.gpus, self.weights[w], "", framework, zero, recompute)
        rest, e = divmod(i, len(self.engines))
        rest, sh = divmod(rest, len(self.shapes))
        w, k = divmod(rest, len(self.kvs))
        tp, pp, dp = self.shapes[sh]
        return Candidate(self.gpu, self.gpus, tp, pp, dp, self.weights[w], self.kvs[k], self.engines[e])

    def cells(self) -> Iterator[tuple[int, int]]:
        """(weights, shape or variant) positions: the members of one cell differ only in
        KV format and engine, which no ranking bound reads (``_first_key``)."""
        for w in range(len(self.weights)):
            for inner in range(len(self.variants) or len(self.shapes)):
                yield w, inner

    def signature(self, w: int, inner: int) -> tuple:
        """What of a cell any ``_first_key`` reads besides the GPU and count: the weights
        and (tp, pp) for inference; the weights and framework for training (not ZeRO or
        recompute, which ``_refine_key`` reads)."""
        if self.variants:
            return self.weights[w], self.variants[inner][0]
        return self.weights[w], self.shapes[inner][:2]

    def cell_members(self, cells: list[tuple[int, int]]) -> list[int]:
        """The member indices of some cells, ascending (the order ``candidates`` lists them)."""
        if self.variants:
            return sorted(self.index(w, 0, v, 0) for w, v in cells)
        kvs, engines = range(len(self.kvs)), range(len(self.engines))
        return sorted(self.index(w, k, sh, e) for w, sh in cells for k in kvs for e in engines)


def _lower_bound_reason(s: _Search, c: Candidate, gpu: GPU) -> str | None:
    """Cheap necessary conditions (module docstring, step 2)."""
    arch = s.spec.arch
    if formats.gpu_runs(c.weights, gpu.architecture) == "no":
        return "format_unsupported"
    if not s.training:
        key = ("shape", c.tp, c.weights)
        if key not in s.memo:       # depends on the model, tp and format only
            s.memo[key] = _shape_reason(arch, c.tp, c.weights)
        reason = s.memo[key]
        if reason:
            return reason
    if s.training:
        floor = total_state_bytes(s, c.weights) / c.gpus
    else:       # each data-parallel replica holds all the weights and its share of the requests
        sequences = -(-s.opts.get("batch", 1) // c.dp)
        floor = (total_state_bytes(s, c.weights) + sequences * kv_floor_bytes(s, c.kv_dtype)) / (c.tp * c.pp)
    if floor > gpu.usable_memory_bytes * _memory_utilization(s, c):
        return "out_of_memory"
    if s.training and s.goals.deadline_days and s.opts.get("train_tokens"):
        # the run's days with the allowance (cost.days_with_allowance) at the speed model's ceiling
        if _best_hours(s, gpu, c.gpus, c.engine) / 24 > s.goals.deadline_days:
            return "misses_deadline"
    return None


def _flops_per_token(s: _Search) -> float:
    """Model FLOPs per trained token (``speed.training.step_flops``: 6 N + 12 L H Q T, 4 N
    for LoRA's frozen weights; no recomputation), at this search's sequence length: what
    every GPU together must at least compute.  0 where the options build no job (no bound).
    It was 6 x active parameters, which overstates LoRA (4 N) and, with the input embedding
    counted, a short-sequence run, so the "lower bound" could exceed the run it bounded."""
    if "flops_per_token" not in s.memo:
        from rigsize.planning.layout import Layout
        from rigsize.speed.training import step_flops

        base = _base_training_job(s)
        if base is None:
            s.memo["flops_per_token"] = 0.0
        else:
            w = replace(base.workload, global_batch=1)
            s.memo["flops_per_token"] = step_flops(s.spec.arch, w, Layout())[0] / w.seq
    return s.memo["flops_per_token"]


def _memory_utilization(s: _Search, c: Candidate) -> float:
    """The fraction of the GPU's usable memory the candidate's job may fill (``memory.per_gpu``:
    ``int(usable x gpu_memory_utilization)``): 1 for training, the job's
    ``gpu_memory_utilization`` for a serving engine (given, else the engine's default for
    the version asked, ``memory.runtime``), read from the job ``build_job`` makes for this
    GPU and engine (memoized: nothing else of the candidate changes it)."""
    if s.training:
        return 1.0
    key = ("utilization", c.gpu, c.engine)
    if key not in s.memo:
        from rigsize.planning.job import build_job
        from rigsize.planning.options import parse_options as parse

        try:
            job, _ = build_job(s.spec, parse(_candidate_opts(s, c)), {})
            s.memo[key] = job.gpu_memory_utilization
        except RigsizeError:       # estimate refuses it too; the plain floor then
            s.memo[key] = max(1.0, s.opts.get("gpu_memory_utilization", 1.0))
    return s.memo[key]


def total_state_bytes(s: _Search, weights: str) -> float:
    """Bytes every GPU together must hold at least: the weights in ``weights`` (inference,
    LoRA, QLoRA), or 16 bytes per parameter (full training); memoized per search."""
    if weights not in s.memo:
        arch = s.spec.arch
        s.memo[weights] = (arch.params * FULL_TRAINING_BYTES_PER_PARAM if s.task in ("pretrain", "finetune")
                           else formats.weights_bytes(weights, arch.tensors, arch.num_hidden_layers))
    return s.memo[weights]


def kv_floor_bytes(s: _Search, kv: str) -> float:
    """Inference: the KV cache one requested sequence needs at full length (``estimate``
    counts ``batch`` sequences of ``prompt + output`` tokens, ``ceil(batch / dp)`` on each
    data-parallel replica, whose tp x pp GPUs together hold them); 0 for training, and for
    models with a sliding window in any layer (fewer tokens kept there: no simple floor).
    The busiest GPU holds at least the mean of its replica's weights and KV cache: shards
    are at most 1 / tp of a tensor or a token's K/V, and the busiest stage at least 1 / pp."""
    if s.training or any(w is not None for w in s.spec.arch.layer_windows):
        return 0.0
    key = ("kv", kv)
    if key not in s.memo:
        from rigsize.planning.job import DEFAULT_OUTPUT, DEFAULT_PROMPT

        o = s.opts
        tokens = o.get("seq") or (o.get("prompt", DEFAULT_PROMPT) + o.get("output", DEFAULT_OUTPUT))
        s.memo[key] = tokens * formats.kv_bytes_per_token(s.spec.arch, kv)
    return s.memo[key]


def _classify(err: RigsizeError) -> str:
    text = str(err)
    if isinstance(err, FormatError):
        return "format_unsupported" if "cannot" in text or "run" in text else "quant_groups_not_divisible"
    if "expert" in text:
        return "experts_not_divisible"
    if "head" in text:
        return "heads_not_divisible"
    return "invalid_layout"


@dataclass(frozen=True)
class _Scored:
    candidate: Candidate
    usd_per_hour: float | None
    usd_total: float | None
    speed: float            # inference: output tokens/s; training: tokens/s
    run_days: float | None
    options: dict[str, Any]  # the estimate options that reproduce this plan
    latency: float = math.inf        # inference: TTFT + TPOT (seconds)
    usd_per_mtok: float | None = None    # $ per million output tokens (inference) or trained tokens (training)
    job: Any = None                  # the evaluated planning.job.Job and its Evaluation,
    evaluation: Any = None           # reused for the recommendation's server
    order: tuple[float, int] = (0.0, 0)    # place in the best-first order (``_best_first``): breaks ties


def _evaluate(s: _Search, c: Candidate) -> _Scored | str:
    """One candidate through estimate's own path (resolve_job, resolve_speed, evaluate,
    job_cost), without the suggestions a non-fitting estimate adds; a reason string when
    it fails a constraint or a goal."""
    from rigsize.planning.cost import cost_settings, job_cost
    from rigsize.planning.evaluate import evaluate
    from rigsize.planning.job import resolve_job, resolve_speed
    from rigsize.planning.options import parse_options as parse

    def run(opts: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
        assumptions: dict[str, Any] = {}
        job, _ = resolve_job(s.spec, parse(opts), assumptions)
        speed, _ = resolve_speed(job, opts, assumptions)
        job = replace(job, speed=speed)
        return assumptions, job, evaluate(job)

    opts = _candidate_opts(s, c)
    try:
        assumptions, job, ev = run(opts)
        m = ev.memory
        if not m.fits and m.per_gpu.total <= m.usable_bytes and not m.starts and _may_cap_context(s, m, job):
            # vLLM would refuse the model's full context, which the workload does not need: a deployment
            # sets --max-model-len, so the plan does, to the longest one request that fits
            opts = {**opts, "max_model_len": m.kv.max_context_single}
            assumptions, job, ev = run(opts)
    except (PlanError, FormatError) as err:
        return _classify(err)
    if not ev.memory.fits or ev.performance is None:
        m = ev.memory       # the parts fit, but vLLM would refuse one request of --max-model-len
        return "context_too_long" if m.per_gpu.total <= m.usable_bytes and not m.starts else "out_of_memory"
    perf = ev.performance
    cost = job_cost(job, perf, cost_settings(opts, assumptions), [])
    g = s.goals
    days = None
    if s.training:
        days = cost.days_with_allowance
        if g.deadline_days and (days is None or days > g.deadline_days):
            return "misses_deadline"
        rate = perf.tokens_per_second
    else:
        if g.ttft and perf.ttft_seconds > g.ttft:
            return "misses_ttft"
        if g.tpot and perf.tpot_seconds > g.tpot:
            return "misses_tpot"
        if g.throughput and perf.output_tokens_per_second < g.throughput:
            return "misses_throughput"
        rate = perf.output_tokens_per_second
    if g.budget_per_hour is not None and (cost.usd_per_hour is None or cost.usd_per_hour > g.budget_per_hour):
        return "over_budget"
    latency = math.inf if s.training else perf.ttft_seconds + perf.tpot_seconds
    per_mtok = cost.usd_per_million_train_tokens if s.training else cost.usd_per_million_output_tokens
    return _Scored(c, cost.usd_per_hour, cost.usd_total, rate, days, opts, latency, per_mtok, job, ev)


def _may_cap_context(s: _Search, m: Any, job: Any) -> bool:
    """Whether a serving plan may set --max-model-len itself: the user gave none, and one request
    of the workload's own length (prompt + output) still fits in what the KV cache can hold."""
    return (not s.training and "max_model_len" not in s.opts and m.kv is not None
            and m.kv.max_context_single >= job.workload.seq)


def _candidate_opts(s: _Search, c: Candidate) -> dict[str, Any]:
    """The ``estimate`` options of a candidate: the user's, with the candidate's choices."""
    opts = {k: v for k, v in s.opts.items() if k not in PLAN_ONLY and k != "gpu"}
    opts.update(c.options(s.training))
    opts.setdefault("task", s.task)
    # each engine takes its own budget share: --gpu-memory-utilization for vLLM-sized engines,
    # --mem-fraction-static for SGLang (the other's default applies to it, echoed in its assumptions)
    # (--kv-cache-free-gpu-memory-fraction for TensorRT-LLM)
    if opts.get("engine") in ("sglang", "trtllm"):
        opts.pop("gpu_memory_utilization", None)
    if opts.get("engine") != "sglang" and opts.get("engine") is not None:
        opts.pop("mem_fraction_static", None)
    if opts.get("engine") != "trtllm" and opts.get("engine") is not None:
        opts.pop("kv_cache_free_gpu_memory_fraction", None)
    return opts


def _rank_key(s: _Search, x: _Scored) -> tuple:
    """The objective's ranking key.  A training plan's cost is what its tokens cost: the
    run's $ where a run is given (``--train-tokens``; the bounds of ``_first_key`` are in
    its units), else $ per million trained tokens, its $/h over its tokens/s (the run's $
    is that times the tokens and the allowance, so both rank alike); never $/h, which
    ranks a slower, cheaper-by-the-hour plan first that costs more for the same job."""
    if s.training:
        cost = x.usd_total if x.usd_total is not None else x.usd_per_mtok
    else:
        cost = x.usd_per_hour
    # 9 significant digits: plans whose costs agree to rounding (a job that scales linearly costs the
    # same per token on 24, 48 or 64 GPUs) tie, and the next key decides, not float noise
    cost = math.inf if cost is None else float(f"{cost:.9g}")
    if s.objective == "fastest":       # speeds equal to 9 digits tie too
        return (-float(f"{x.speed:.9g}"), cost, x.candidate.gpus)
    if s.objective == "fewest-gpus":
        return (x.candidate.gpus, cost, -x.speed)
    if s.objective == "lowest-latency":
        return (x.latency, cost, x.candidate.gpus)
    if s.objective == "cheapest-per-token":
        return (math.inf if x.usd_per_mtok is None else float(f"{x.usd_per_mtok:.9g}"), cost, -x.speed,
                x.candidate.gpus)
    return (cost, -x.speed, x.candidate.gpus)


def _pareto(s: _Search, plans: list[_Scored]) -> list[_Scored]:
    front = [p for p in plans if not any(
        (_rank_key(s, q)[0] <= _rank_key(s, p)[0] and q.speed >= p.speed)
        and (_rank_key(s, q)[0] < _rank_key(s, p)[0] or q.speed > p.speed) for q in plans)]
    return sorted(front, key=lambda p: (_rank_key(s, p), p.order))


def _goals(opts: dict[str, Any], task: str) -> Goals:
    return Goals(ttft=opts.get("ttft"), tpot=opts.get("tpot"), throughput=opts.get("throughput"),
                 budget_per_hour=opts.get("budget_per_hour"), deadline_days=opts.get("deadline_days"),
                 max_gpus=int(opts.get("max_gpus") or DEFAULT_MAX_GPUS.get(task, DEFAULT_MAX_GPUS_OTHER)))


PLAN_ONLY = ("objective", "ttft", "tpot", "throughput", "users", "budget_per_hour", "max_gpus", "deadline_days",
             "allow_quant", "any_count", "have", "dry_run", "explain", "top")


def search(model: str | ModelSpec, *, progress: Callable[[int, int], None] | None = None,
           **options: Any) -> dict[str, Any]:
    """The plan object (``rigsize plan --json``): ranked recommendations with rejection
    counts.  Options are ``rigsize plan --help``'s; ``progress(done, total)`` is called as
    candidates are evaluated (a shell draws a bar with it)."""
    opts = parse_options(options, command="plan")
    if "users" in opts:
        if "batch" in opts and opts["batch"] != opts["users"]:
            raise InputError("input.conflict", what="--users and --batch name the same thing; give one")
        opts["batch"] = opts["users"]
    if (opts.get("pricing") == "on-prem" and opts.get("server_price") is None
            and opts.get("objective", "cheapest") in ("cheapest", "cheapest-per-token", "pareto")):
        # owned $/h is unknown without a server price (planning.cost.on_prem): every plan would cost "-"
        # and the ranking would be the search's tie-break
        raise InputError("input.conflict", what="--pricing on-prem ranks plans by what owning the servers costs, "
                         "which needs --server-price USD (one server's price); or rank by --objective fastest "
                         "or fewest-gpus")
    spec = model if isinstance(model, ModelSpec) else resolve_model(model, opts.get("offline", False))
    from rigsize.planning.cost import check_cost_options

    check_cost_options(opts)      # refused up front, not only once some plan fits
    check_fixed_choices(spec, opts)
    if opts.get("engine") in ("llamacpp", "ollama", "mlx"):     # local inference: planning.local_plan
        from rigsize.planning.local_plan import local_plan

        return local_plan(spec, opts)
    if opts.get("task") is None:
        return overview(spec, opts, progress)
    return _plan(spec, opts, progress=progress)


def what_fits_on(**options: Any) -> dict[str, Any]:
    """``rigsize plan --have SETUP`` without MODEL (``planning.local_plan.what_fits``)."""
    from rigsize.planning.local_plan import what_fits

    opts = parse_options(options, command="plan")
    if not opts.get("have"):
        raise InputError("input.conflict", what="give MODEL, or --have to list which models fit on that hardware")
    return what_fits(opts)


def _plan(spec: ModelSpec, opts: dict[str, Any], overview: bool = False,
          progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    task = opts["task"]
    objective = opts.get("objective", "cheapest")
    s = _Search(spec, opts, task, _goals(opts, task), objective, Counter(), overview=overview, progress=progress)
    if s.training and s.goals.deadline_days and not opts.get("train_tokens"):
        raise InputError("input.conflict", what="--deadline-days needs --train-tokens (how much to train)")
    runs = s.runs()
    s.considered = sum(sum(r.sizes) for r in runs)
    if opts.get("dry_run"):
        return _result(s, [], None)
    plans = _run(s, runs)
    ranked = _pareto(s, plans) if objective == "pareto" else sorted(plans, key=lambda p: (_rank_key(s, p), p.order))
    top = ranked[: int(opts.get("top", 3))]
    return _result(s, top, _explain(s, top) if opts.get("explain") else None)


# The scenario overview (issue 17): each scenario's stated default workload, overridable by
# the usual flags.  Training scenarios train on 1B tokens at 4K (fine-tuning) or 20 tokens
# per parameter (pre-training: Hoffmann et al. 2022, "Chinchilla", Table 3's compute-optimal
# ratio) within a deadline.
SCENARIOS: dict[str, dict[str, Any]] = {
    "low_latency": {"task": "inference", "batch": 1, "prompt": 1024, "output": 512, "objective": "lowest-latency"},
    "high_throughput": {"task": "inference", "batch": 64, "prompt": 2048, "output": 512,
                        "objective": "cheapest-per-token"},
    "finetune": {"task": "finetune", "train_tokens": 1e9, "seq": 4096, "deadline_days": 3, "objective": "cheapest"},
    "lora": {"task": "lora", "train_tokens": 1e9, "seq": 4096, "deadline_days": 3, "objective": "cheapest"},
    "qlora": {"task": "qlora", "train_tokens": 1e9, "seq": 4096, "deadline_days": 3, "objective": "cheapest"},
    "pretrain": {"task": "pretrain", "tokens_per_param": 20, "seq": 4096, "deadline_days": 30,
                 "objective": "cheapest"},
}
OVERVIEW_INFERENCE_MAX_GPUS = 16      # two 8-GPU nodes; --max-gpus widens it
# The workstation scenario (issue 19): llama.cpp at Q4_K_M, the usual local quality point,
# on the desk-side setups the issue names and the catalog holds, smallest memory first.
WORKSTATION = {"engine": "llamacpp", "weights": "q4_k_m", "batch": 1, "prompt": 1024, "output": 512,
               "max_model_len": 8192}     # llama-server -c 8192: a chat-sized context, not the trained one
WORKSTATION_SETUPS = ("1x RTX-4090", "1x RTX-5090", "2x RTX-3090", "2x RTX-4090", "1x RTX-PRO-6000",
                      "1x DGX-SPARK", "1x RYZEN-AI-MAX-395-128GB", "1x M2-Ultra-192GB", "1x M3-Ultra-512GB")
_WORKLOAD_KEYS = ("batch", "prompt", "output", "seq", "train_tokens", "deadline_days", "objective", "users")


def overview(spec: ModelSpec, opts: dict[str, Any],
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``rigsize plan MODEL`` without ``--task``: every scenario's best plans.  A scenario
    that fits nowhere (or whose flags do not apply to it) is reported with no
    recommendation and the reason."""
    scenarios: dict[str, Any] = {}
    for key, defaults in SCENARIOS.items():
        run = {k: v for k, v in opts.items() if k not in _WORKLOAD_KEYS}
        run.update({k: v for k, v in defaults.items() if k != "tokens_per_param"})
        if "tokens_per_param" in defaults:
            run["train_tokens"] = defaults["tokens_per_param"] * spec.arch.params
        for k in _WORKLOAD_KEYS:          # the user's workload flags override the scenario's
            if k in opts and not (k == "objective"):
                run[k] = opts[k]
        run.setdefault("top", 1)
        if run["task"] == "inference" and "max_gpus" not in opts:
            run["max_gpus"] = OVERVIEW_INFERENCE_MAX_GPUS
        try:
            scenarios[key] = _plan(spec, _only_applicable(run), overview=True, progress=progress)
        except InputError as err:
            scenarios[key] = {"error": str(err)}
    scenarios["workstation"] = workstation(spec, opts)
    return {"schema_version": 1, "model": spec.name, "scenarios": scenarios}


def workstation(spec: ModelSpec, opts: dict[str, Any]) -> dict[str, Any]:
    """The overview's workstation answer: the first of WORKSTATION_SETUPS (smallest device
    memory first) that holds every layer at Q4_K_M under llama.cpp, planned by
    ``planning.local_plan``; when none does, the largest with layers in system RAM."""
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.model.formats import weights_bytes
    from rigsize.planning.estimate import estimate
    from rigsize.planning.local_plan import local_plan

    floor = weights_bytes(WORKSTATION["weights"], spec.arch.tensors, spec.arch.num_hidden_layers)
    tried, errors, chosen, first_error = 0, 0, None, None
    for setup in WORKSTATION_SETUPS:
        count, name = setup.split("x ", 1)
        tried += 1
        if floor > int(count) * resolve_gpu(name.strip()).usable_memory_bytes:
            continue                    # the weights alone exceed the devices' memory: out of memory
        try:      # every layer on the GPUs: one estimate, no offload search
            fits = estimate(spec, **WORKSTATION, gpu=name.strip(), gpus=int(count)).memory.fits
        except RigsizeError as err:
            errors += 1
            first_error = first_error or err
            continue
        if fits:
            chosen = setup
            break
    if chosen is None and first_error is not None and errors == tried:
        return {"error": str(first_error)}   # the workload does not apply to the model (e.g. its context)
    if chosen is None:
        chosen = WORKSTATION_SETUPS[-1]      # the most memory: the best offload answer
    try:
        recs = local_plan(spec, {**WORKSTATION, "have": chosen, "top": 1})["recommendations"]
    except RigsizeError:
        recs = []
    for rec in recs:
        rec["why"] = f"{chosen}: " + rec["why"]
    full = sum(1 for r in recs if r.get("inputs", {}).get("gpu_layers") is None)
    return {"schema_version": 1, "model": spec.name, "task": "inference", "goals": {}, "objective": "fewest-gpus",
            "assumptions": {"search": f"llama.cpp at q4_k_m, -c 8192, 1 user, on {', '.join(WORKSTATION_SETUPS)}",
                            "ranking": "the setup with the least device memory that holds every layer on its GPUs; "
                                       "when none does, the largest with layers in system RAM"},
            "candidates_considered": len(WORKSTATION_SETUPS), "pruned": len(WORKSTATION_SETUPS) - tried,
            "rejected": {"out_of_memory": tried - errors - full, "invalid_layout": errors},
            "recommendations": recs}


def _only_applicable(run: dict[str, Any]) -> dict[str, Any]:
    """Drop the flags that do not apply to this scenario's kind of task."""
    from rigsize.planning.options import BY_NAME

    kind = "training" if run["task"] in TRAINING_TASKS else "inference"
    return {k: v for k, v in run.items() if BY_NAME[k].tasks in ("any", kind)}


def _run(s: _Search, runs: list[_Run]) -> list[_Scored]:
    """Cheap checks, then evaluation.  Under ``cheapest`` (inference) and ``fewest-gpus``
    the ranking's first key (the rented instances' $/h, or the GPU count) is known before
    any memory or speed is computed, so candidates are evaluated best-first and the search
    stops once ``top`` plans meet every goal and the next candidate's key is worse than the
    last of them: no skipped candidate can rank in the top (``pruned``).  Each plan keeps
    its place in the best-first order of the cheap key (``_Scored.order``), which breaks
    ranking ties as the plain sorted search did, whatever order the search evaluated in."""
    gpus = {g.name: g for g, _, _ in s.gpus()}
    top = int(s.opts.get("top", 3))
    key = _first_key(s)
    total = s.considered
    plans: list[_Scored] = []
    best: list[float] = []          # the ``top`` smallest first keys so far, sorted
    bound: float | None = None
    for i, (c, order, lower) in enumerate(_best_first(s, runs, key, lambda: bound)):
        if s.progress and i % 16 == 0:
            s.progress(i, total)
        if key and bound is not None and lower > bound:
            s.pruned += total - i
            break
        reason = _lower_bound_reason(s, c, gpus[c.gpu])
        result = reason or _evaluate(s, c)
        if isinstance(result, str):
            s.rejected[result] += 1
            continue
        plans.append(replace(result, order=order))
        if key:
            bisect.insort(best, _rank_key(s, plans[-1])[0])
            del best[top:]
            if len(best) >= top:
                # _rank_key rounds costs to 9 digits (5e-9 relative): keep what ties the cut-off
                bound = best[top - 1] + abs(best[top - 1]) * 1e-8
    return plans


def _best_first(s: _Search, runs: list[_Run], key: Callable[[Candidate], float] | None,
                bound: Callable[[], float | None]) -> Iterator[tuple[Candidate | None, tuple[float, int], float]]:
    """(candidate, its place in ``sorted(candidates, key=key)``, a lower bound of its first
    ranking key), in that sorted order (a last None once every bound left is above
    ``bound()``, where the search stops), without building the candidate list: the key is
    computed once per cell (``_Block.cells``: members that differ only in formats the key
    does not read), and a member is built only when the search reaches it.  Without a key:
    the listing order.  With ``_block_floor``, a GPU's blocks, and a block's cells, are
    queued only when the search reaches that GPU's or block's floor.  With
    ``_refine_key``, a cell whose refined bound is above its key is put back at the
    refined bound, so cells known to be worse are reached later (or never, once the search
    stops) while the places reported stay those of the cheap key."""
    starts, offsets, n, at = [], [], 0, 0      # first block of each run; first candidate of each block
    for r in runs:
        starts.append(n)
        n += len(r.counts)
        for size in r.sizes:
            offsets.append(at)
            at += size

    def block(bi: int) -> _Block:
        ri = bisect.bisect_right(starts, bi) - 1
        return runs[ri].block(bi - starts[ri])

    if key is None:
        for bi, off in enumerate(offsets):
            b = block(bi)
            for i in range(len(b)):
                yield b.member(i), (0.0, off + i), 0.0
        return
    refiners = _refine_key(s) or []
    # (bound, block, first member, cheap key, weights, shape or variant, refiners applied);
    # first member -1: a block whose cells are not queued yet, at a bound of all their keys;
    # -2: a GPU whose blocks are not (the weights slot holds its run)
    heap: list[tuple] = []

    def expand(bi: int, b: _Block) -> Iterator[tuple]:
        keys: dict[tuple, float] = {}
        for w, inner in b.cells():
            first = b.index(w, 0, inner, 0)
            sig = b.signature(w, inner)
            if sig not in keys:
                keys[sig] = key(b.member(first))
            yield keys[sig], bi, first, keys[sig], w, inner, 0

    floors = _block_floor(s)
    if floors is None:
        for bi in range(n):
            heap.extend(expand(bi, block(bi)))
    else:
        floor, gpu_floor = floors
        heap.extend((gpu_floor(r), starts[ri], -2, 0.0, ri, 0, 0) for ri, r in enumerate(runs) if r.counts)
    heapq.heapify(heap)
    while heap:
        lower, bi, first, cheap, w, inner, level = heapq.heappop(heap)
        if bound() is not None and lower > bound():      # everything left is worse: the search stops here
            yield None, (cheap, offsets[bi]), lower
            return
        if first == -2:
            r = runs[w]
            for j, size in enumerate(r.sizes):
                if size:
                    heapq.heappush(heap, (floor(r.block(j)), bi + j, -1, 0.0, 0, 0, 0))
            continue
        b = block(bi)
        if first == -1:
            for entry in expand(bi, b):
                heapq.heappush(heap, entry)
            continue
        tighter = lower
        while level < len(refiners) and tighter == lower and (bound() is None or lower <= bound()):
            tighter = max(lower, refiners[level](b.member(first), lower, bound()))
            level += 1
        if tighter > lower:         # worse than it looked: back in the queue at its new bound
            heapq.heappush(heap, (tighter, bi, first, cheap, w, inner, level))
            continue
        # the other cells of this block at the same key: their members interleave in listing order
        group = [(w, inner)]
        while not refiners and heap and heap[0][0] == lower and heap[0][1] == bi:
            group.append(heapq.heappop(heap)[4:6])
        for i in b.cell_members(group):
            yield b.member(i), (cheap, offsets[bi] + i), lower


def _block_floor(s: _Search) -> tuple[Callable[[_Block], float], Callable[[_Run], float]] | None:
    """Lower bounds of ``_first_key`` over all of a block's candidates, and over all of one
    GPU's blocks, so a GPU is expanded into blocks, and a block into cells, only when the
    search reaches it; None where there are none.  fewest-gpus: the count.  cheapest: the
    instances' $/h is at least the count times the GPU's lowest price per GPU of any priced
    instance (``planning.cost.renting_options`` rents whole instances: ceil(count / usable)
    x price >= count x price / instance GPUs), or, owned (``--pricing on-prem``), the count
    times one full server's $/h over its GPUs; for a training run times ``_best_hours``,
    in which the count cancels (rounding absorbed by factors of 1 - 1e-12 and 1 - 1e-9)."""
    if s.objective == "fewest-gpus":
        return (lambda b: float(b.gpus)), (lambda run: float(min(run.counts)))
    if s.objective != "cheapest" or (s.training and not s.opts.get("train_tokens")):
        return None
    from rigsize.hardware.instances import catalog as instance_catalog
    from rigsize.hardware.instances import instances_for
    from rigsize.planning.cost import cost_settings

    settings = cost_settings(s.opts, {})
    rows = instance_catalog(settings.prices_file, settings.provider)
    gpus = {g.name: g for g, _, _ in s.gpus()}
    per_gpu = {}
    if settings.pricing == "on-prem":
        # owned: power and colocation grow with the GPUs, price and operations with the servers,
        # ceil(count / node) >= count / node of them, so $/h >= count x one full server's $/h / node
        from rigsize.planning.cost import owning

        for name, g in _owned_gpus(s).items():
            full = owning(g, g.node_size, settings).usd_per_hour
            per_gpu[name] = math.inf if full is None else full / g.node_size
    else:
        for name, g in gpus.items():
            prices = [p / i.gpus for i in instances_for(g, rows, settings.provider, settings.region)
                      if (p := i.usd_per_hour(settings.pricing)) is not None and i.gpus]
            per_gpu[name] = min(prices, default=math.inf)

    def floor(b: _Block) -> float:
        rate = b.gpus * per_gpu[b.gpu] * (1 - 1e-12)
        if not s.training or rate == math.inf:
            return rate
        return rate * min(_best_hours(s, gpus[b.gpu], b.gpus, f) for f in {v[0] for v in b.variants})

    def gpu_floor(run: _Run) -> float:
        if per_gpu[run.gpu] == math.inf:
            return math.inf
        if not s.training:
            return min((floor(run.block(j)) for j, size in enumerate(run.sizes) if size), default=math.inf)
        frameworks = {v[0] for variants in run.variants for v in variants}
        return per_gpu[run.gpu] * min(_best_hours(s, gpus[run.gpu], 1, f) for f in frameworks) * (1 - 1e-9)
    return floor, gpu_floor


def _refine_key(s: _Search) -> list[Callable[[Candidate, float, float | None], float]] | None:
    """Costlier lower bounds of the first ranking key, cheapest first, each computed only
    for cells the search reaches at the previous bound (``_best_first``; called with the
    candidate, its bound so far and the search's current cut-off); None where there are
    none.  Training runs under ``cheapest``: ``_layout_floor``, then ``_trial_floor``."""
    if not (s.training and s.objective == "cheapest" and s.opts.get("train_tokens")):
        return None
    if any(k in s.opts for k in ("tp", "pp", "dp", "cp", "ep", "pp_first_layers", "pp_last_layers")):
        return None       # a layout the user fixed: estimate does not search it
    if "efficiency" in s.opts or "profile" in s.opts:
        return [_trial_floor(s)]      # _layout_floor reads the packaged efficiency rows
    first = _layout_floor(s)
    return [_trial_floor(s)] if first is None else [first, _trial_floor(s)]


def _layout_floor(s: _Search) -> Callable[[Candidate, float, float | None], float] | None:
    """The run's cost at the cheapest step any layout ``estimate`` may pick could take.

    The run's cost is the instances' $/h times its hours,
    and its hours follow from the step time of the layout ``estimate`` picks for the count
    (``planning.job.least_parallel_training_layout``), which is one of ``training_layouts``
    (the necessary conditions it and ``validate_job`` impose: tp a valid size dividing the
    count inside a node, pp a divisor Megatron admits, the global batch split by dp).  No
    such layout: no plan (inf).  Otherwise the step is at least the cheapest of those
    layouts' compute at the speed model's own efficiency plus its 1F1B bubble
    (``speed.training.compute_seconds``, the function ``training_speed`` calls; the stage
    imbalance it multiplies by is >= 1 and every communication term is >= 0)."""
    from rigsize.planning.layout import Layout, training_layouts
    from rigsize.speed.training import training_efficiency

    hourly = _hourly(s)
    gpus = {g.name: g for g, _, _ in s.gpus()}
    base = _base_training_job(s)
    if base is None:
        return None
    arch, w = s.spec.arch, base.workload
    given = s.opts.get("global_batch")
    vpp = s.opts.get("vpp", 1)
    tokens = s.opts["train_tokens"]

    def refine(c: Candidate, cheap: float, cutoff: float | None) -> float:
        gpu, n = gpus[c.gpu], c.gpus
        rate = hourly(c)
        if rate == math.inf or c.engine != w.framework and c.engine:
            return cheap
        node = s.opts.get("gpus_per_node") or gpu.node_size
        memo_key = ("layouts", n, node, c.weights)      # the same for every recompute and ZeRO variant
        if memo_key not in s.memo:
            s.memo[memo_key] = training_layouts(arch, n, node, w.framework, w.batch, given,
                                                valid_tps(s, c.weights, node))
        layouts = s.memo[memo_key]
        if not layouts:
            return math.inf
        gb = given or w.batch * n
        work = replace(w, global_batch=gb)
        eff, _ = training_efficiency(gpu.architecture, w.framework)
        precision = s.opts.get("precision", "bf16")
        step = math.inf
        for tp, pp in layouts:
            lay = Layout(tp=tp, pp=pp, dp=n // (tp * pp), zero=c.zero, recompute=c.recompute or base.layout.recompute)
            step = min(step, _compute_and_bubble(arch, work, lay, gpu, eff, precision, vpp))
        return max(cheap, _run_cost(rate, tokens, gb * w.seq / step))
    return refine


def _compute_and_bubble(arch: Any, workload: Any, layout: Any, gpu: GPU, eff: Any, precision: str, vpp: int) -> float:
    """A lower bound of ``speed.training.training_speed``'s step: its compute term before
    the stage imbalance (>= 1) multiplies it, plus the 1F1B bubble on that compute; the
    communication terms (>= 0) left out."""
    from rigsize.speed.training import compute_seconds

    m = max(1, workload.global_batch // (workload.batch * layout.dp))
    return compute_seconds(arch, workload, layout, gpu, eff, precision) * (1 + (layout.pp - 1) / (m * vpp))


def _run_cost(usd_per_hour: float, train_tokens: float, tokens_per_second: float) -> float:
    """$ of a run (``planning.cost.job_cost``): $/h times the hours of ``train_tokens`` at
    ``tokens_per_second``, over the allowance's effective training time."""
    return usd_per_hour * (train_tokens / tokens_per_second / 3600 / _effective_time())


def _trial_floor(s: _Search) -> Callable[[Candidate, float, float | None], float]:
    """The run's cost at the best of the layouts ``estimate`` may pick, each timed by
    ``speed.training.training_speed`` exactly as ``evaluate`` times it (the trials of
    ``planning.job.training_trial``, on the job ``build_job`` makes of the candidate), but
    without sizing memory: the layout chosen is one of them, so its cost is at least
    their least.  Layouts whose model states alone cannot fit are left out where that is
    certain: with no ZeRO sharding, offloading or paging, a GPU holds at least the state
    bytes of 1 / (tp x pp) of the parameters (shards are at most tp; the busiest stage at
    least the mean), and ``memory.per_gpu`` charges weights, gradients and optimizer whole."""
    from rigsize.memory.per_gpu import state_bytes
    from rigsize.planning.job import build_job, resolve_speed, trial_shape
    from rigsize.planning.layout import training_layouts
    from rigsize.planning.options import parse_options as parse
    from rigsize.speed.training import training_speed

    hourly = _hourly(s)
    arch = s.spec.arch
    params = sum(t.numel for t in arch.tensors)
    tokens = s.opts["train_tokens"]

    def refine(c: Candidate, lower: float, cutoff: float | None) -> float:
        rate = hourly(c)
        opts = _candidate_opts(s, c)
        try:
            job, _ = build_job(s.spec, parse(opts), {})
            speed, _ = resolve_speed(job, opts, {})
        except RigsizeError:
            return lower
        w, lay = job.workload, job.layout
        recipe = w.settings
        certain = (w.task in ("pretrain", "finetune") and lay.zero == 0 and lay.offload == "none"
                   and not recipe.paged_optimizer and not recipe.optimizer_in_backward)
        per_param = state_bytes(recipe, w.optimizer, False)
        states = (per_param.weights + per_param.gradients + per_param.optimizer) * params
        node = job.gpu.node_size
        trials = []         # (a lower bound of its cost, trial job), best first
        for tp, pp in training_layouts(arch, lay.gpus, node, w.framework, w.batch,
                                       w.global_batch if job.global_batch_given else None,
                                       valid_tps(s, c.weights, node)):
            if certain and states / (tp * pp) > job.gpu.usable_memory_bytes * (1 + 1e-9) + 64:
                continue
            shape = trial_shape(job, tp, pp)
            if shape is not None:
                layout, t = shape
                step = _compute_and_bubble(arch, t, layout, job.gpu, speed.efficiency, speed.precision, speed.vpp)
                trials.append((_run_cost(rate, tokens, t.global_batch * t.seq / step), len(trials), shape))
        best = math.inf
        for floor, _, (layout, t) in sorted(trials, key=lambda x: x[:2]):
            if floor >= best or (cutoff is not None and floor > cutoff):
                return min(best, floor)     # the rest cost at least this
            try:
                run = training_speed(arch, t, layout, job.gpu, gpus_per_node=speed.gpus_per_node,
                                     network=speed.network, vpp=speed.vpp, train_tokens=speed.train_tokens,
                                     eff=speed.efficiency, precision=speed.precision, host=speed.host)
            except RigsizeError:
                return lower
            best = min(best, _run_cost(rate, tokens, run.tokens_per_second))
        return best
    return refine


def _effective_time() -> float:
    from rigsize.planning.cost import ownership

    return ownership()["run_allowance"]["effective_training_time"]


def valid_tps(s: _Search, weights: str, limit: int) -> tuple[int, ...]:
    """``layout.valid_tp_sizes`` for this model and format, memoized per search."""
    key = ("tps", weights, limit)
    if key not in s.memo:
        from rigsize.planning.layout import valid_tp_sizes

        s.memo[key] = tuple(valid_tp_sizes(s.spec.arch, weights, limit))
    return s.memo[key]


def _base_training_job(s: _Search) -> Any:
    """The job ``estimate`` builds for these options on one GPU (``planning.job.build_job``):
    the workload every candidate shares (micro-batch, sequence, framework) and the
    framework's default recompute; None if the options do not build one."""
    from rigsize.planning.job import build_job
    from rigsize.planning.options import parse_options as parse

    opts = {k: v for k, v in s.opts.items() if k not in PLAN_ONLY and k not in ("gpu", "gpus")}
    opts.setdefault("task", s.task)
    try:
        job, _ = build_job(s.spec, parse(opts), {})
    except RigsizeError:
        return None
    return job


def _first_key(s: _Search):
    """A lower bound of the objective's first ranking key from the candidate alone, or
    None: fewest-gpus, the count; fastest, minus the most tokens/s it could make;
    cheapest inference, the rented instances' $/h (exact);
    cheapest training run, that $/h times the run's hours at the dense bf16 peak with the
    allowance (the run can only take longer)."""
    if s.objective == "fewest-gpus":
        return lambda c: c.gpus
    if s.objective == "lowest-latency" and not s.training:
        return _latency_bound(s)
    if s.objective == "cheapest-per-token" and not s.training:
        return _per_token_bound(s)
    if s.objective == "fastest":
        return _training_fastest_bound(s) if s.training else _fastest_bound(s)
    if s.objective != "cheapest" or (s.training and not s.opts.get("train_tokens")):
        return None
    hourly = _hourly(s)
    gpus = {g.name: g for g, _, _ in s.gpus()}

    def cost(c: Candidate) -> float:
        rate = hourly(c)
        if not s.training or rate == math.inf:
            return rate
        return rate * _best_hours(s, gpus[c.gpu], c.gpus, c.engine)
    return cost


def _hourly(s: _Search):
    """The cheapest rented instances' $/h for a candidate (planning.cost's rule), known
    before any memory or speed is evaluated; inf where no priced instance holds it.  With
    ``--pricing on-prem``, the owned servers' $/h instead (``planning.cost.owning``, the
    rule ``job_cost`` reports then; inf without a server price), so every bound built on
    this one bounds the cost the plan is ranked by.
    One per search (the cheap key and both refiners share it, and its memo)."""
    if "hourly" in s.memo:
        return s.memo["hourly"]
    from rigsize.hardware.instances import catalog as instance_catalog
    from rigsize.hardware.instances import instances_for
    from rigsize.planning.cost import cost_settings, node_group, renting_options

    settings = cost_settings(s.opts, {})
    if settings.pricing == "on-prem":
        s.memo["hourly"] = _owned_hourly(s, settings)
        return s.memo["hourly"]
    rows = instance_catalog(settings.prices_file, settings.provider)
    gpus = {g.name: g for g, _, _ in s.gpus()}
    memo: dict[tuple[str, int, int], float] = {}
    # each GPU's instances, filtered once (renting_options filters them the same way again)
    own = {name: tuple(instances_for(g, rows, settings.provider, settings.region)) for name, g in gpus.items()}

    def rate(c: Candidate) -> float:
        group = node_group(gpus[c.gpu], c.gpus, c.tp, c.pp, s.training)
        k = (c.gpu, c.gpus, group)
        if k not in memo:
            options = renting_options(gpus[c.gpu], c.gpus, group, own[c.gpu], settings)
            memo[k] = options[0].usd_per_hour if options else math.inf
        return memo[k]
    s.memo["hourly"] = rate
    return rate


def _owned_gpus(s: _Search) -> dict[str, GPU]:
    """The search's GPUs as the jobs hold them (``build_job`` sets ``--gpus-per-node``)."""
    per_node = s.opts.get("gpus_per_node")
    return {g.name: g.model_copy(update={"gpus_per_node": per_node}) if per_node else g for g, _, _ in s.gpus()}


def _owned_hourly(s: _Search, settings: Any) -> Callable[[Candidate], float]:
    """``_hourly`` under ``--pricing on-prem``: the owned servers' exact $/h of a candidate."""
    from rigsize.planning.cost import owning

    gpus = _owned_gpus(s)
    memo: dict[tuple[str, int], float] = {}

    def rate(c: Candidate) -> float:
        k = (c.gpu, c.gpus)
        if k not in memo:
            per_hour = owning(gpus[c.gpu], c.gpus, settings).usd_per_hour
            memo[k] = math.inf if per_hour is None else per_hour
        return memo[k]
    return rate


def _latency_bound(s: _Search):
    """TTFT + TPOT is at least one decode step: every weight of a tensor-parallel group
    read once at the GPUs' peak HBM bandwidth (pipeline stages run one after another,
    data-parallel replicas do not help one request); a roofline lower bound."""
    from rigsize.speed.roofline import peak_bandwidth

    gpus = {g.name: g for g, _, _ in s.gpus()}

    def bound(c: Candidate) -> float:
        try:
            bw = peak_bandwidth(gpus[c.gpu])
        except RigsizeError:
            return math.inf
        return total_state_bytes(s, c.weights) / c.tp / bw
    return bound


def _per_token_tensors(s: _Search) -> tuple[list, list]:
    """(the tensors every decode step reads in full, the routed experts): serving's own rule
    (``speed.serving._stage_cost_of``): not the input embedding (a lookup reads its rows) unless
    it doubles as the lm_head, nor a vision tower (once per image).  Memoized per search."""
    if "per_token_tensors" not in s.memo:
        from rigsize.speed.serving import NOT_PER_TOKEN

        arch = s.spec.arch
        dense = [t for t in arch.tensors if not t.role.startswith("expert_") and t.role not in NOT_PER_TOKEN]
        if arch.tie_word_embeddings:
            dense += [t for t in arch.tensors if t.role == "embed"]
        routed = [t for t in arch.tensors if t.role.startswith("expert_")]
        s.memo["per_token_tensors"] = (dense, routed)
    return s.memo["per_token_tensors"]


def step_bytes_floor(s: _Search, weights: str) -> float:
    """Bytes of ``weights`` a decode step reads at the least, all GPUs together: the weights
    every step reads (``_per_token_tensors``), and of the routed experts the top-k of each MoE
    layer that one token needs (a step of few sequences reads only the experts they touch:
    Mixtral 8x7B at batch 1 streams 2 of its 8 experts, so its tokens/s may exceed bandwidth /
    all its weights).  Memoized per search."""
    key = ("step_bytes", weights)
    if key not in s.memo:
        arch = s.spec.arch
        dense, routed = _per_token_tensors(s)
        n = arch.num_hidden_layers
        floor = float(formats.weights_bytes(weights, dense, n))
        if routed and arch.num_experts:
            floor += formats.weights_bytes(weights, routed, n) * arch.experts_per_token / arch.num_experts
        s.memo[key] = floor
    return s.memo[key]


def _per_token_params(s: _Search) -> float:
    """Parameters whose GEMMs every generated token runs: ``_per_token_tensors``' matrices, the
    routed experts at top-k.  Memoized per search."""
    if "per_token_params" not in s.memo:
        arch = s.spec.arch
        dense, routed = _per_token_tensors(s)
        n = float(sum(t.numel for t in dense if len(t.shape) >= 2))
        if routed and arch.num_experts:
            n += sum(t.numel for t in routed if len(t.shape) >= 2) * arch.experts_per_token / arch.num_experts
        s.memo["per_token_params"] = n
    return s.memo["per_token_params"]


def _tokens_per_second_ceiling(s: _Search):
    """The most output tokens per second a candidate could produce: each pipeline stage
    streams at least its share of the weights a step reads (``step_bytes_floor``) per step at
    the peak HBM bandwidth, a step emitting at most one token per user (K + 1 with K
    speculative tokens), so tokens/s <= users x (K + 1) x tp x pp x bandwidth / bytes; and no
    GPU exceeds the peak of the dtype its format's GEMMs run at (``roofline.compute_dtype``:
    fp8, fp4 or int8 peaks where the GPU has them; tokens/s <= GPUs x peak / (2 x per-token
    parameters)).  The serving model reaches neither at its fitted efficiencies (below 1);
    ``--efficiency`` may give up to 1.5 (``planning.job.parse_efficiency``), so the ceiling
    grows by that much then, and a measured ``--profile`` (unbounded) gives no ceiling (None)."""
    from rigsize.model.formats import resolve_weight_format
    from rigsize.speed.roofline import compute_dtype, peak_bandwidth, peak_flops

    gpus = {g.name: g for g, _, _ in s.gpus()}
    per_step = s.opts.get("batch", 1) * (1 + int(s.opts.get("speculative_tokens") or 1)
                                         if s.opts.get("speculative") else 1)
    scale = 1.5 if "efficiency" in s.opts else 1.0
    unbounded = "profile" in s.opts

    def ceiling(c: Candidate) -> float | None:
        if unbounded:
            return None
        gpu = gpus[c.gpu]
        try:
            dtype = compute_dtype(resolve_weight_format(c.weights), gpu)
            peak = max(peak_flops(gpu, "bf16"), peak_flops(gpu, dtype))
            by_bytes = per_step * c.tp * c.pp * peak_bandwidth(gpu) / step_bytes_floor(s, c.weights)
            by_flops = c.gpus * peak / (2 * _per_token_params(s))
        except RigsizeError:
            return None
        return scale * min(by_bytes, by_flops)
    return ceiling


def _per_token_bound(s: _Search):
    """$ per million output tokens is at least the instances' $/h over the most tokens per
    second the plan could produce (``_tokens_per_second_ceiling``)."""
    hourly = _hourly(s)
    ceiling = _tokens_per_second_ceiling(s)

    def bound(c: Candidate) -> float:
        rate = hourly(c)
        if rate == math.inf:
            return math.inf
        most = ceiling(c)
        return math.inf if most is None else rate / (most * 3600 / 1e6)
    return bound


def _fastest_bound(s: _Search):
    """The fastest objective's first key is -(output tokens/s): at least -(the ceiling)."""
    ceiling = _tokens_per_second_ceiling(s)

    def bound(c: Candidate) -> float:
        most = ceiling(c)
        return -math.inf if most is None else -most
    return bound


def _best_hours(s: _Search, gpu: GPU, count: int, framework: str) -> float:
    """Hours of the run at the speed model's own ceiling: the model FLOPs of its tokens
    (``_flops_per_token``) at ``e_max`` (the fitted asymptote of the GEMM efficiency for this
    GPU family and framework, which rigsize.speed.training never exceeds) of the dense peak
    (the FP8 peak times the fitted FP8 ratio under --precision fp8), divided by the
    allowance's effective training time: the predicted run can only take longer."""
    key = ("best_hours", gpu.name, framework)
    if key not in s.memo:       # the terms that do not depend on the count
        peak, e_max = _training_ceiling_rate(s, gpu, framework)
        flops = _flops_per_token(s) * s.opts["train_tokens"]
        s.memo[key] = (flops, peak, e_max, _effective_time())
    flops, peak, e_max, effective = s.memo[key]
    return flops / (count * peak * e_max) / 3600 / effective


def _training_ceiling_rate(s: _Search, gpu: GPU, framework: str) -> tuple[float, float]:
    """(peak FLOP/s per GPU, the most of it the speed model's GEMMs reach): the dense bf16 peak,
    or the FP8 peak times the fitted FP8 ratio under --precision fp8; ``e_max`` of the family and
    framework's row (``speed.training`` never exceeds it), 1.5 under --efficiency (its cap), none
    (inf) under a measured profile."""
    from rigsize.speed.roofline import peak_flops
    from rigsize.speed.training import CAUSAL_SHARE, training_efficiency

    eff, _ = training_efficiency(gpu.architecture, framework or "megatron")
    peak = peak_flops(gpu, "bf16")
    if s.opts.get("precision") == "fp8" and gpu.flops("fp8"):
        peak = max(peak, gpu.flops("fp8") * eff.fp8_ratio)
    # a measured or given GEMM efficiency replaces e_max: --efficiency caps fractions at 1.5
    # (planning.job.parse_efficiency); a profile's is unbounded, so no bound then
    # the attention core may run nearer the peak than the projections on PaLM's full count: at
    # ``attention / CAUSAL_SHARE`` of it (speed.training.attention_seconds)
    gemm = 1.5 if "efficiency" in s.opts else eff.e_max
    e_max = math.inf if "profile" in s.opts else max(gemm, eff.attention / CAUSAL_SHARE)
    return peak, e_max


def _training_fastest_bound(s: _Search):
    """Training's fastest key is -(tokens/s): at least -(GPUs x peak x e_max / model FLOPs per
    token), the ceiling ``_best_hours`` bounds a run's hours with; -inf where there is none."""
    gpus = {g.name: g for g, _, _ in s.gpus()}
    per_token = _flops_per_token(s)

    def bound(c: Candidate) -> float:
        if per_token <= 0:
            return -math.inf
        key = ("ceiling_rate", c.gpu, c.engine)
        if key not in s.memo:
            try:
                s.memo[key] = _training_ceiling_rate(s, gpus[c.gpu], c.engine)
            except RigsizeError:
                s.memo[key] = (math.inf, math.inf)
        peak, e_max = s.memo[key]
        return -(c.gpus * peak * e_max / per_token)
    return bound


def _explain(s: _Search, top: list[_Scored]) -> str | None:
    if len(top) < 2:
        return None
    a, b = top[0], top[1]

    def money(x: _Scored) -> str:
        if s.training and x.usd_total is None and x.usd_per_mtok is not None:
            return f"${x.usd_per_mtok:,.2f} per million trained tokens"
        v = x.usd_total if s.training else x.usd_per_hour
        return "unpriced" if v is None else (f"${v:,.0f}" if s.training else f"${v:,.2f}/h")

    unit = "tokens/s"
    return (f"{a.candidate.gpus} x {a.candidate.gpu} ({a.candidate.weights}, {a.candidate.engine or 'default'}) "
            f"beat {b.candidate.gpus} x {b.candidate.gpu} ({b.candidate.weights}, {b.candidate.engine or 'default'}) "
            f"on {s.objective}: {money(a)} vs {money(b)}, {a.speed:,.0f} vs {b.speed:,.0f} {unit}")


def _result(s: _Search, top: list[_Scored], explain: str | None) -> dict[str, Any]:
    recs = []
    from rigsize.planning.estimate import estimate

    for i, x in enumerate(top):
        c = x.candidate
        report = estimate(s.spec, **x.options)        # the full report, exactly as estimate prints it
        body = report.model_dump(mode="json")
        choices = {"gpu": c.gpu, "gpus": c.gpus, "weights": c.weights}
        if s.training:
            choices["framework"] = report.inputs.get("framework") or report.assumptions.get("framework") or c.engine
        else:
            choices.update(kv_dtype=c.kv_dtype, engine=c.engine)
        body["choices"] = choices
        body["why"] = _why(s, x, i)
        body["server"], body["software"] = _server(s, x, report.cost)
        recs.append(body)
    goals = {k: v for k, v in s.goals.__dict__.items() if v is not None}
    out = {"schema_version": 1, "model": s.spec.name, "task": s.task, "goals": goals, "objective": s.objective,
           "assumptions": {"search": "GPU counts 1, 2, 4, 8 and whole nodes (--any-count: every count); inference "
                           "layouts: tp inside a node, the rest data-parallel or pipeline; training layouts: "
                           "estimate's least model parallelism for the count"},
           "candidates_considered": s.considered, "pruned": s.pruned,
           "rejected": {r: s.rejected.get(r, 0) for r in REASONS}, "recommendations": recs}
    if explain:
        out["explain"] = explain
    return out


def _server(s: _Search, x: _Scored, cost: Any) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """The whole server (per node) and software a recommendation needs
    (``rigsize.hardware.servers``), from the job and evaluation the search scored."""
    from rigsize.hardware.servers import server_for, software_for

    return server_for(x.job, x.evaluation, cost), software_for(x.job)


def _why(s: _Search, x: _Scored, rank: int) -> str:
    c = x.candidate
    parts = [f"rank {rank + 1} by {s.objective}"]
    if x.usd_per_hour is not None:
        parts.append(f"${x.usd_per_hour:,.2f}/h")
    if s.training and x.usd_per_mtok is not None:
        parts.append(f"${x.usd_per_mtok:,.2f} per million trained tokens")
    if s.training and x.run_days is not None:
        parts.append(f"{x.run_days:,.1f} days with allowance")
    parts.append(f"{x.speed:,.0f} tokens/s on {c.gpus} x {c.gpu}")
    met = [k for k in ("ttft", "tpot", "throughput", "budget_per_hour", "deadline_days") if getattr(s.goals, k)]
    if met:
        parts.append("meets " + ", ".join(met))
    if "max_model_len" in x.options and "max_model_len" not in s.opts:
        parts.append(f"--max-model-len {x.options['max_model_len']:,} set by the plan: vLLM would refuse one request "
                     "of the model's full context here")
    return "; ".join(parts)

