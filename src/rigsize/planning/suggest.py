"""What would make a job fit: option changes, each re-estimated.

A suggestion is a set of option changes (``change``, keyed by ``rigsize estimate``
option names) that is evaluated through the same path ``estimate`` takes
(``planning.job.resolve_job``: options -> job, the training layout search, validation; then
``planning.job.evaluate_memory``), never a hand-patched job.  So the total and ``fits`` it reports
are exactly what ``rigsize.estimate(model, **(options | change))`` prints: defaults
that follow from the change (``--task qlora`` recomputes by default, ``--zero 3``
picks DeepSpeed, ``--gpus`` picks a layout) apply as they would for the user.

The change is written so that ``options | change`` is the whole trial: options that
would conflict with it are overridden inside it (a new GPU count restates the
user's own ``--tp/--pp/--dp/--cp``; a shorter context uses the keys the user gave).

The flow (STYLE.md rule 11): each group of candidates is enumerated cheapest change
first, evaluated, and the first one that fits is kept; candidates that do not fit
or are invalid for this model are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rigsize.errors import PlanError, RigsizeError
from rigsize.memory.per_gpu import MemoryResult
from rigsize.model import formats
from rigsize.model.inputs import ModelSpec
from rigsize.planning import limits
from rigsize.planning.job import Job, default_inference_layout, evaluate_memory, resolve_job
from rigsize.planning.options import parse_options
from rigsize.report import Suggestion

_LAYOUT_KEYS = ("tp", "pp", "dp", "cp")
_RECOMPUTE_ORDER = {"none": 0, "selective": 1, "full": 2}
_GPU_FACTORS = (2, 4, 8, 16, 32, 64)

Candidate = tuple[dict[str, Any], str]          # (change, description)
Trial = tuple[Job, MemoryResult]


class _Evaluator:
    """``estimate``'s evaluation of ``options | change`` (memory only), cached."""

    def __init__(self, spec: ModelSpec, opts: dict[str, Any]) -> None:
        self.spec, self.opts = spec, opts
        self._cache: dict[str, Trial | None] = {}

    def __call__(self, change: dict[str, Any], drop: Iterable[str] = ()) -> Trial | None:
        """The job and memory of ``options | change``, or None if ``estimate`` would
        refuse it.  ``drop`` removes options first: only to probe what ``estimate``
        would choose without them, never for a reported suggestion."""
        kept = {k: v for k, v in self.opts.items() if k not in drop}
        trial = kept | parse_options(change)
        key = repr(sorted(trial.items()))
        if key not in self._cache:
            try:
                job, _ = resolve_job(self.spec, trial, {})
                self._cache[key] = (job, evaluate_memory(job))
            except RigsizeError:
                self._cache[key] = None
        return self._cache[key]

    def fits(self, change: dict[str, Any]) -> Trial | None:
        trial = self(change)
        return trial if trial is not None and trial[1].fits else None


def suggestions(spec: ModelSpec, opts: dict[str, Any], job: Job) -> list[Suggestion]:
    """Changes that make the job ``estimate`` built from ``opts`` fit, cheapest first
    within each kind; every one re-estimated (see the module docstring)."""
    ev = _Evaluator(spec, opts)
    out: list[Suggestion] = []

    def keep_first(group: Iterator[Candidate]) -> bool:
        for change, description in group:
            trial = ev.fits(change)
            if trial is not None:
                out.append(Suggestion(change=change, description=_describe(description, trial[0]),
                                      total_bytes=trial[1].per_gpu.total, fits=True))
                return True
        return False

    training = job.workload.training
    if not training:      # a context limit costs no hardware: where it alone makes the job fit, say it first
        keep_first(_max_model_len(job, ev))
    keep_first(_more_gpus(job, opts, ev))
    groups = _training_groups(job, opts) if training else _inference_groups(job, opts, ev)
    for group in groups:
        keep_first(group)
    if training and not out:
        keep_first(_combined_training(job, opts, ev))
    return out


def _describe(template: str, job: Job) -> str:
    """Fill the layout ``estimate`` chose for the trial into a description."""
    lay = job.layout
    return template.format(tp=lay.tp, pp=lay.pp, dp=lay.dp, framework=job.workload.framework)


# ----------------------------------------------------------------------------------
# More GPUs: the layout estimate picks for the new count, restated when the user pinned one
# ----------------------------------------------------------------------------------

def _with_gpus(job: Job, opts: dict[str, Any], ev: _Evaluator, n: int,
               extra: dict[str, Any]) -> dict[str, Any] | None:
    """``{"gpus": n} | extra``, with the layout ``estimate`` would choose for ``n`` GPUs.

    When the user gave no layout, the GPU count alone lets ``estimate`` choose (the
    default inference layout, or the training search), and the change says no more;
    when they pinned one, the change restates every layout key they gave, as
    ``estimate`` would choose them without the user's.  For inference the layout is
    the largest tp that ``valid_tp_sizes`` allows for the weight format too (pinned
    in the change when ``estimate``'s own default would break its quantization
    groups), pipeline stages for the rest."""
    change = {"gpus": n, **extra}
    pinned = [k for k in _LAYOUT_KEYS if k in opts]
    arch, node = job.spec.arch, job.gpu.node_size
    if job.workload.training:
        if not pinned:
            return change
        probe = ev(change, drop=pinned)
        if probe is None:
            return None
        lay = probe[0].layout
    else:
        try:
            lay = default_inference_layout(arch, n, node, job.weights)
            if not pinned:
                plain = default_inference_layout(arch, n, node)
                return change if (plain.tp, plain.pp) == (lay.tp, lay.pp) else change | {"tp": lay.tp, "pp": lay.pp}
        except PlanError:
            return None
    return change | {"tp": lay.tp, "pp": lay.pp, "dp": lay.dp} | ({"cp": lay.cp} if "cp" in opts else {})


def _fewest_gpus(job: Job, opts: dict[str, Any], ev: _Evaluator, factors: tuple[int, ...],
                 extra: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The smallest GPU count ``gpus x factor`` at which ``{"gpus": n} | extra`` fits.

    Memory per GPU does not grow with the GPU count (estimate's layout for more GPUs
    shards at least as much), so the largest count that makes a valid job is tried
    first (if it does not fit, none does) and the smallest that fits is then found by
    bisection: a few estimates instead of one per count."""
    counts = [job.layout.gpus * f for f in factors if job.layout.gpus * f <= limits.MAX_GPUS]
    changes: dict[int, dict[str, Any] | None] = {}

    def change_at(i: int) -> dict[str, Any] | None:
        if i not in changes:        # built lazily: a pinned training layout costs a probe
            changes[i] = _with_gpus(job, opts, ev, counts[i], extra)
        return changes[i]

    def fits(i: int) -> bool:
        change = change_at(i)
        return change is not None and ev.fits(change) is not None

    top = len(counts) - 1
    while top >= 0 and (change_at(top) is None or ev(change_at(top)) is None):   # too many GPUs for a valid job
        top -= 1
    if top < 0 or not fits(top):
        return None
    lo, hi = 0, top
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    change = change_at(lo)
    return None if change is None else (counts[lo], change)


# Frameworks that shard a model over data-parallel GPUs themselves (FSDP/FSDP2, DeepSpeed,
# and the transformers Trainer family through its DeepSpeed/FSDP integration); a suggestion
# keeps the user's framework when it is one of them.  Open-source Unsloth trains on one GPU.
SHARDING_FRAMEWORKS = frozenset({"fsdp", "torchtitan", "deepspeed", "hf", "trl", "llamafactory", "torchtune"})


def _sharding_framework(framework: str) -> str | None:
    return framework if framework in SHARDING_FRAMEWORKS else None


def _more_gpus(job: Job, opts: dict[str, Any], ev: _Evaluator) -> Iterator[Candidate]:
    w = job.workload
    if w.training and w.framework != "megatron":
        # data parallelism alone copies the model: shard it with ZeRO-3 over the GPUs
        fw = _sharding_framework(w.framework)
        if fw is None:
            return
        found = _fewest_gpus(job, opts, ev, _GPU_FACTORS, {"zero": 3, "framework": fw})
        if found is not None:
            yield found[1], f"shard over {found[0]} GPUs with ZeRO-3 ({fw})"
        return
    found = _fewest_gpus(job, opts, ev, _GPU_FACTORS, {})
    if found is not None:
        yield found[1], f"use {found[0]} GPUs (tp={{tp}}, pp={{pp}}, dp={{dp}})"


def _combined_training(job: Job, opts: dict[str, Any], ev: _Evaluator) -> Iterator[Candidate]:
    """When no single change suffices: full recomputation with ZeRO-3 (or Megatron's
    distributed optimizer and least model parallelism) on the fewest GPUs; at a tie
    the simplest combination (then micro-batch 1, then optimizer offload)."""
    w = job.workload
    if w.framework == "megatron":
        offloads: tuple[str, ...] = ("none",)
        base: dict[str, Any] = {"zero": 1, "recompute": "full"}
    else:
        fw = _sharding_framework(w.framework)
        if fw is None:
            return
        offloads = ("none", "optimizer")
        base = {"zero": 3, "framework": fw, "recompute": "full"}
    smaller = [{}] + ([_micro_batch_keys(opts)] if w.batch > 1 else [])
    best: tuple[int, dict[str, Any]] | None = None
    for micro in smaller:
        for offload in offloads:
            extra = base | micro | ({"offload": offload} if offload != "none" else {})
            found = _fewest_gpus(job, opts, ev, (1, *_GPU_FACTORS), extra)
            if found is not None and (best is None or found[0] < best[0]):
                best = found
    if best is not None:
        yield best[1], "combine: " + ", ".join(f"{k}={v}" for k, v in best[1].items()) + " (tp={tp}, pp={pp}, dp={dp})"


# ----------------------------------------------------------------------------------
# Inference: smaller weights or KV cache, fewer or shorter sequences
# ----------------------------------------------------------------------------------

def _inference_groups(job: Job, opts: dict[str, Any], ev: _Evaluator) -> list[Iterator[Candidate]]:
    """After --max-model-len (tried first, ``suggestions``) and more GPUs."""
    return [_weight_formats(job), _kv_fp8(job), _fewer_sequences(job, ev),
            _shorter_context(job, opts, ev)]


def _max_model_len(job: Job, ev: _Evaluator) -> Iterator[Candidate]:
    """vLLM refuses to start when one --max-model-len request does not fit the KV pool:
    the longest limit that starts, no shorter than the requested sequence (vLLM's own
    advice, estimate_max_model_len)."""
    if job.engine.name != "vllm" or job.workload.seq >= job.engine.max_model_len:
        return
    best = _largest(job.workload.seq, job.engine.max_model_len - 1,
                    lambda n: ev.fits({"max_model_len": n}) is not None)
    if best is not None:
        yield {"max_model_len": best}, f"limit the engine's context to {best:,} tokens (--max-model-len)"


def _weight_formats(job: Job) -> Iterator[Candidate]:
    if job.gpu.architecture not in formats.architectures():
        return      # a CPU (--gpu cpu): these are GPU kernels' formats, and gpu_runs knows no CPU architecture
    for name in ("fp8", "awq-int4", "gptq-int4"):
        fmt = formats.resolve_weight_format(name)
        if fmt.name != job.weights.name and formats.gpu_runs(fmt, job.gpu.architecture) != "no":
            yield {"weights": name}, f"store weights as {name}"


def _kv_fp8(job: Job) -> Iterator[Candidate]:
    if job.kv.name != "fp8" and job.spec.arch.attention == "standard":
        yield {"kv_dtype": "fp8"}, "store the KV cache in fp8"


def _largest(lo: int, hi: int, fits: Callable[[int], bool]) -> int | None:
    """The largest x in [lo, hi] with ``fits(x)``, by bisection (memory grows with x)."""
    if hi < lo or not fits(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _fewer_sequences(job: Job, ev: _Evaluator) -> Iterator[Candidate]:
    w = job.workload
    best = _largest(1, w.batch - 1, lambda b: ev.fits({"batch": b}) is not None)
    if best is not None:
        yield {"batch": best}, f"serve at most {best} concurrent sequences"


def _context_change(job: Job, opts: dict[str, Any], seq: int) -> dict[str, Any]:
    """Sequences of ``seq`` tokens, in the keys the user gave: the output length is
    kept when they named a prompt or output, else ``--seq`` alone (estimate then
    derives prompt and output from it)."""
    if "prompt" not in opts and "output" not in opts:
        return {"seq": seq}
    change: dict[str, Any] = {"prompt": seq - job.workload.output}
    if "seq" in opts:
        change["seq"] = seq
    return change


def _shorter_context(job: Job, opts: dict[str, Any], ev: _Evaluator) -> Iterator[Candidate]:
    w = job.workload
    keeps_output = "prompt" in opts or "output" in opts
    lo = w.output + 1 if keeps_output else 2
    best = _largest(lo, w.seq - 1, lambda s: ev.fits(_context_change(job, opts, s)) is not None)
    if best is not None:
        change = _context_change(job, opts, best)
        text = (f"limit prompts to {change['prompt']:,} tokens" if keeps_output
                else f"limit sequences to {best:,} tokens")
        yield change, text


# ----------------------------------------------------------------------------------
# Training: shard, recompute, offload, quantize the base, smaller micro-batches
# ----------------------------------------------------------------------------------

def _training_groups(job: Job, opts: dict[str, Any]) -> list[Iterator[Candidate]]:
    return [_more_zero(job), _more_recompute(job), _offload(job), _qlora(job, opts), _micro_batch_one(job, opts)]


def _more_zero(job: Job) -> Iterator[Candidate]:
    lay = job.layout
    if lay.zero_shards > 1:
        top = 1 if job.workload.framework == "megatron" else 3
        for z in range(lay.zero + 1, top + 1):
            yield {"zero": z}, f"shard with ZeRO-{z}"


def _more_recompute(job: Job) -> Iterator[Candidate]:
    for rc in ("selective", "full"):
        if _RECOMPUTE_ORDER[rc] > _RECOMPUTE_ORDER[job.layout.recompute]:
            yield {"recompute": rc}, f"recompute activations ({rc})"


def _offload(job: Job) -> Iterator[Candidate]:
    if job.layout.zero >= 1 and job.layout.offload == "none":
        yield {"offload": "optimizer"}, "offload optimizer states to CPU memory"


def _qlora(job: Job, opts: dict[str, Any]) -> Iterator[Candidate]:
    if job.workload.task == "finetune":
        # estimate refuses --task qlora with 16-bit --weights, so a given format is restated
        yield {"task": "qlora"} | ({"weights": "nf4"} if "weights" in opts else {}), "fine-tune with QLoRA instead"


def _micro_batch_keys(opts: dict[str, Any]) -> dict[str, Any]:
    """Micro-batch 1, under the key(s) the user gave (estimate refuses --batch 4 with
    --micro-batch 1)."""
    return dict.fromkeys([k for k in ("batch", "micro_batch") if k in opts] or ["micro_batch"], 1)


def _micro_batch_one(job: Job, opts: dict[str, Any]) -> Iterator[Candidate]:
    if job.workload.batch > 1:
        yield _micro_batch_keys(opts), "use micro-batch 1 with gradient accumulation"
