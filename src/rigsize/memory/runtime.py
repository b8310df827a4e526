"""Engine defaults and fixed runtime memory, from ``data/runtime.toml``.

These are the terms no formula gives: what an engine reserves by default, what the
CUDA context and communication buffers take.  Each value carries its source in the
data file; the functions here only combine them, and every one that is applied is
echoed under ``assumptions``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

from rigsize.hardware.gpus import GPU
from rigsize.messages import render
from rigsize.model.architecture import Architecture
from rigsize.model.tensors import Tensor
from rigsize.planning.layout import Layout, Workload
from rigsize.units import GiB


@cache
def data() -> dict[str, Any]:
    return tomllib.loads(resources.files("rigsize.data").joinpath("runtime.toml").read_text())


@dataclass(frozen=True)
class Engine:
    """An inference engine's memory-relevant settings, every default resolved.

    ``era`` names the rule set of ``data/runtime.toml`` ``[vllm.era.*]`` (vLLM versions
    where the budget rules changed) or ``transformers`` for plain ``generate()``.
    """

    name: str                       # "vllm" (also sizes sglang/trtllm, said in assumptions) | "transformers"
    era: str
    version: str                    # as the user gave it, or the newest modelled
    gpu_memory_utilization: float
    max_num_batched_tokens: int     # tokens of the profiling forward pass (chunked-prefill budget)
    max_num_seqs: int               # sequences sampled in the profiling pass
    kv_block_size: int              # tokens per paged-KV block (1: contiguous)
    max_model_len: int
    chunked_prefill: bool
    cuda_graphs: str                # "inside" the budget | "outside" it (after KV sizing) | "none" (eager)
    prompt_logits: bool = False     # transformers < 4.45: fp32 logits over the whole prompt
    sampler: str = "flashinfer"     # top-k/top-p of the profiling warm-up: "sort" (PyTorch) | "flashinfer" | "triton"
    windows: str = "cap"            # sliding-window layers: "full" (charged whole), "hybrid" (vLLM >= 0.9.2:
                                    # window - 1 + max_num_batched_tokens, + 1 block), "cap" (at the window)
    serving: str = "vllm"           # the engine that will run it: "vllm", "sglang" (kv_budget "sglang") or "trtllm"
                                    # (sized by vLLM's rules)
    speculative_tokens: int = 0     # speculative decoding with the model's own MTP layers: draft tokens per
                                    # step (vLLM num_speculative_tokens; 0: none)
    kv_budget: str = "vllm"         # whose rule sizes the KV pool: "vllm" (gpu_memory_utilization of the total,
                                    # less what profiling measures) | "sglang" (sglang_budget: mem_fraction_static)
                                    # | "trtllm" (free_fraction of what weights, activations and runtime leave)
    budget_era: str = ""            # sglang: the [sglang.budget_era.*] key of the version asked (or the newest)
    mem_fraction_static: float | None = None   # sglang: --mem-fraction-static as given (None: SGLang's default)
    free_fraction: float = 0.9      # trtllm (kv_budget "trtllm"): KvCacheConfig.free_gpu_memory_fraction
    recv_interval: int = 1          # sglang: --scheduler-recv-interval, decode steps between polls for new requests
                                    # (ServerArgs.scheduler_recv_interval = 1: every step)
    batch_wait_iters: int = 0       # trtllm: batch_wait_timeout_iters, batch_wait_max_tokens_ratio (0, 0.0: off,
    batch_wait_ratio: float = 0.0   # TorchLlmArgs' defaults): prompts held while others decode (speed.serving._hold)
    adp_balance_iters: int = 0      # trtllm: attention_dp_config.timeout_iters with enable_balance (0: no balancing)


def _version_tuple(text: str) -> tuple[int, ...]:
    """``text`` as numbers to compare; a release line ("0.17") compares as its first release (0.17.0), as
    ``_era`` takes it, so that every since/until rule sees the same version (a bare (0, 17) sorts below 0.17.0)."""
    v = _version_parts(text)
    return (*v, 0) if len(v) == 2 else v


def _version_parts(text: str) -> tuple[int, ...]:
    import re

    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)?(?:(?:\.post|rc|\.dev|a|b)\d+)?(?:\+\S*)?",
                     text.strip())
    if not m:
        from rigsize.errors import InputError

        raise InputError("input.conflict", what=f"--engine-version '{text[:40]}' is not a version like 0.10.1")
    return tuple(int(x) for x in m.groups() if x is not None)


# Versions where _batching_defaults' rules change (vllm_budget_rules.md sec. 3), written in code, not in runtime.toml:
# H100/H200 by name from 0.8.0, any GPU of >= 70 GiB from 0.8.5, A100s excluded from 0.9.0
_BIG_BY_NAME, _BIG_BY_SIZE, _A100_EXCLUDED = (0, 8, 0), (0, 8, 5), (0, 9, 0)
_VLLM_CODE_EDGES = (_BIG_BY_NAME, _BIG_BY_SIZE, _A100_EXCLUDED)


@cache
def _version_edges(engine: str) -> frozenset[tuple[int, ...]]:
    """Every version at which one of ``engine``'s rules changes: each ``since`` / ``until`` under
    runtime.toml [<engine>] (its eras, and the sampler, vision-tower, hybrid-page, MTP... rules), and for
    vLLM the batching defaults' (``_VLLM_CODE_EDGES``)."""
    found: set[tuple[int, ...]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("since", "until") and isinstance(v, str):
                    found.add(_version_tuple(v))
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data()[engine])
    if engine == "vllm":
        found.update(_VLLM_CODE_EDGES)
    return frozenset(found)


def _era(eras: dict[str, dict[str, Any]], version: str | None,
         edges: frozenset[tuple[int, ...]] | None = None) -> tuple[str, dict[str, Any]] | str:
    """The entry of ``eras`` whose ``[since, until)`` range holds ``version`` (None: the newest), or, when
    none does, the oldest ``since``.  A release line ("0.5") is taken as its first release only where no
    rule changes inside it (``edges``: the engine's, else the eras' own); otherwise it is refused."""
    if version is None:
        key = max(eras, key=lambda k: _version_tuple(eras[k]["since"]))
        return key, eras[key]
    v = _version_parts(version)
    if len(v) == 2:        # a release line ("0.5"): one set of rules must hold all of it
        lo, hi = (*v, 0), (v[0], v[1] + 1, 0)
        if edges is None:
            edges = {_version_tuple(e[k]) for e in eras.values() for k in ("since", "until") if k in e}
        oldest = min(_version_tuple(e["since"]) for e in eras.values())
        inside = sorted(e for e in edges if lo < e < hi and e != oldest)   # below the oldest: refused as too old
        if inside:
            from rigsize.errors import InputError

            raise InputError("input.conflict", what=render(
                "engine.version_ambiguous", version=version,
                edges=", ".join(".".join(map(str, e)) for e in inside), example=".".join(map(str, inside[0]))))
        v = lo
    for key, era in eras.items():
        if _version_tuple(era["since"]) <= v and ("until" not in era or v < _version_tuple(era["until"])):
            return key, era
    return str(min(eras.values(), key=lambda e: _version_tuple(e["since"]))["since"])


def newer_than_read(engine: str, version: str | None) -> str | None:
    """The note for a ``version`` newer than the newest release of ``engine`` whose rules were read
    (runtime.toml [<engine>.read]): its rules are taken to be the newest era's."""
    if not version or version.strip().lower() == "latest":
        return None
    newest = data()[engine]["read"]["newest"]
    v, n = _version_tuple(version), _version_tuple(newest)
    # a post-release of the newest read (0.5.23.post1) is a wheel that was not read either
    if v < n or (v == n and ".post" not in version):
        return None
    return render("engine.version_newer", version=version, newest=newest)


def vllm_era(version: str | None) -> tuple[str, dict[str, Any]]:
    """The ``[vllm.era.*]`` entry whose ``[since, until)`` range holds ``version``
    (None: the newest)."""
    found = _era(data()["vllm"]["era"], version, _version_edges("vllm"))
    if isinstance(found, str):
        from rigsize.errors import InputError

        raise InputError("input.conflict", what=f"--engine-version {version}: rigsize models vLLM's memory budget "
                         f"from {found} on")
    return found


def engine_for(gpu: GPU, *, max_position_embeddings: int | None = None, mla: bool = False,
               opts: dict[str, Any] | None = None, assumptions: dict[str, Any] | None = None) -> Engine:
    """The engine's settings for this GPU: what the user set, else the defaults of the
    version (``vllm serve``: the OpenAI-server usage context).  Defaults applied are
    written to ``assumptions``."""
    opts = opts or {}
    said = assumptions if assumptions is not None else {}
    max_len = _pick(opts, said, "max_model_len", max_position_embeddings or 2048)
    _check_engine_options(opts)
    if opts.get("engine") == "transformers":
        return _transformers_engine(opts, said, max_len)
    if opts.get("engine") == "trtllm":
        return _trtllm_engine(gpu, opts, said, max_len, mla)
    if opts.get("engine") == "sglang":
        return _sglang_engine(gpu, opts, said, max_len, mla)
    return _vllm_engine(gpu, opts, said, max_len, mla)


def _trtllm_engine(gpu: GPU, opts: dict[str, Any], said: dict[str, Any], max_len: int, mla: bool) -> Engine:
    """``trtllm-serve`` (PyTorch backend): TensorRT-LLM's KV budget, ``free_gpu_memory_fraction`` (default 0.9) of
    the memory CUDA reports less the peak a profiling forward of ``max_num_tokens`` measures (weights, activations
    and non-torch memory, the CUDA context included; runtime.toml [tensorrt_llm.kv_cache_free_gpu_memory_fraction],
    data/validation/trtllm_budget_rules.md).  The activation and runtime terms inside that peak, and the scheduler
    settings the speed model reads, are vLLM's newest (TensorRT-LLM's own are not measured here: the assumptions
    say so)."""
    d = data()["tensorrt_llm"]["kv_cache_free_gpu_memory_fraction"]
    given = opts.get("kv_cache_free_gpu_memory_fraction")
    fraction = float(given) if given is not None else float(d["value"])
    eng = _vllm_engine(gpu, opts, said, max_len, mla)
    said.pop("engine_version", None)
    said["kv_cache_free_gpu_memory_fraction"] = fraction
    said["memory_budget"] = (f"TensorRT-LLM's: KV pool = kv_cache_free_gpu_memory_fraction {fraction:g} x (CUDA's "
                             "total - weights - the activation peak of a max_num_tokens profiling forward - non-torch "
                             "memory, the CUDA context included); the activation and runtime terms and the scheduler "
                             "are vLLM's newest (TensorRT-LLM's own not measured)")
    # KvCacheConfig.tokens_per_block defaults to 32 (llm_args.py; trtllm_budget_rules.md, answer 4)
    return replace(eng, kv_budget="trtllm", free_fraction=fraction, serving="trtllm", kv_block_size=32)


def sglang_era(version: str | None) -> tuple[str, dict[str, Any]]:
    """The ``[sglang.budget_era.*]`` entry whose ``[since, until)`` range holds ``version`` (None: the newest)."""
    found = _era(data()["sglang"]["budget_era"], version, _version_edges("sglang"))
    if isinstance(found, str):
        from rigsize.errors import InputError

        raise InputError("input.conflict", what=render("engine.sglang_too_old", version=version, oldest=found))
    return found


def _sglang_engine(gpu: GPU, opts: dict[str, Any], said: dict[str, Any], max_len: int, mla: bool) -> Engine:
    """``python -m sglang.launch_server`` of the asked version: its own KV budget (``sglang_budget``), one
    token per page (``--page-size`` default 1) and sliding-window layers charged at the whole context, as
    with ``--disable-hybrid-swa-memory`` (its default split pool, ``swa_full_tokens_ratio``, is not modelled:
    the assumptions say so).  The scheduler settings the speed model reads (token budget per step,
    sequences) stay vLLM's newest defaults, as the serving fit was made with them."""
    asked = opts.get("engine_version")
    asked = None if asked is None or asked.strip().lower() == "latest" else asked.strip().removeprefix("v")
    era_key, era = sglang_era(asked)
    version = asked or f">= {era['since']}"
    fraction = opts.get("mem_fraction_static")
    scheduler = _vllm_engine(gpu, {k: v for k, v in opts.items() if k != "engine_version"}, said, max_len, mla)
    said.pop("engine_version", None)            # vLLM's, which the line above wrote: SGLang's is the one in force
    if not asked:
        said["engine_version"] = version
    if note := newer_than_read("sglang", asked):
        said["engine_version_note"] = note
    return replace(scheduler, kv_budget="sglang", budget_era=era_key,
                   mem_fraction_static=fraction, kv_block_size=1, serving="sglang", windows="full")


@dataclass(frozen=True)
class SGLangBudget:
    """SGLang's KV budget on one rank (``sglang_budget``): the weights and the KV pool may take ``fraction``
    of the memory free before the weights load; activations, CUDA graphs and the request pools live in
    the rest (sglang_budget_rules.md sec. 1)."""

    fraction: float
    fraction_source: str          # "given" (--mem-fraction-static) | "default" (SGLang's rule for this GPU)
    reserved_mib: float           # the default rule's reserve (0 when given)
    gpu_mem_mib: float            # nvidia-smi's total the default rule reads
    gpu_mem_basis: str            # "nvidia-smi" | "nameplate" (no measured total in the catalog)
    pre_load_free_bytes: int      # free memory when SGLang measures it, before the weights load
    factor: float = 1.0           # SGLang's later cut of the fraction (AMD aiter at long contexts: 0.85)

    @property
    def budget_bytes(self) -> int:
        return int(self.fraction * self.factor * self.pre_load_free_bytes)


def sglang_budget(eng: Engine, gpu: GPU, layout: Layout, mla: bool, multimodal: bool = False) -> SGLangBudget:
    """SGLang's default ``mem_fraction_static`` for this GPU and layout (data/runtime.toml
    [sglang.budget_era.*]), or the one given, and the free memory it applies to.  From 0.5.10 the default
    reserves memory for prefill CUDA graphs unless the era turns them off for the plan (speculative decoding,
    pp > 1, a multimodal model, a GPU that is not NVIDIA's: ``prefill_graph_off_for``).  A multimodal model's
    default is then lowered further by SGLang's adjust_mem_fraction_for_vlm, which is not modelled (the
    estimate's assumptions say so).

    The free memory before the weights load is CUDA's total less what the process holds by then: the CUDA
    context (runtime.toml [applied] training_cuda_context_bytes).  No NCCL buffers: SGLang measures after
    torch distributed's init (model_runner.py init_torch_distributed, 0.5.5 wheel), but NCCL allocates its
    channel buffers at the first collectives, and a 4-GPU log held 0.40 GiB in all then (runtime.toml
    [runtime.sglang_pre_load_used], with the two 1-GPU logs' 0.70 and 0.82 GiB: not fitted to them)."""
    era = data()["sglang"]["budget_era"][eng.budget_era]
    visible = gpu.memory_bytes_visible
    basis = "nvidia-smi" if isinstance(visible, int) else "nameplate"
    gpu_mem = (visible if isinstance(visible, int) else gpu.memory_bytes) / 2**20
    row = next(r for r in era["chunk_table"] if gpu_mem < r[0])
    chunked, max_bs = int(row[1]), int(row[2] if layout.tp < 4 else row[3])
    parallel = layout.tp * layout.pp
    reserved = 0.0
    if eng.mem_fraction_static is not None:
        fraction, source = float(eng.mem_fraction_static), "given"
    else:
        source = "default"
        if era["rule"] == "step_table":
            base, per = next((b, p) for below, b, p in era["step_table"] if gpu_mem < below)
            reserved = (base + parallel * per) * 1024
        else:
            reserved = (era["base_mib"] + max(chunked, era["min_activation_tokens"]) * era["activation_mib_per_token"]
                        + max_bs * era["graph_mib_per_bs"] + parallel / 8 * era["parallel_mib"])
            off = {"speculative": bool(eng.speculative_tokens), "pp": layout.pp > 1, "multimodal": multimodal,
                   "non_cuda": gpu.vendor.lower() != "nvidia"}
            if era["prefill_graph"] == "default_on" and not any(off[k] for k in era["prefill_graph_off_for"]):
                reserved += era["prefill_graph_mla_mib"] if mla else \
                    len(prefill_graph_sizes(chunked)) * era["prefill_graph_mib_per_size"]
            if gpu_mem > era["large_gpu_above_mib"]:
                reserved = max(reserved, era["large_gpu_floor_mib"])
        if eng.speculative_tokens:
            reserved += era["speculative_mib"]
        fraction = round((gpu_mem - reserved) / gpu_mem, 3)
    factor = 1.0        # SGLang's own cut of the fraction in force, after the rule, a given fraction too
    aiter = gpu.vendor.lower() == "amd" and not mla        # ROCm's default attention backend for non-MLA models
    if "aiter_factor" in era and aiter and eng.max_model_len > era["aiter_context_above"]:
        factor = float(era["aiter_factor"])
    a = data()["applied"]
    return SGLangBudget(fraction, source, reserved, gpu_mem, basis,
                        max(0, gpu.usable_memory_bytes - int(a["training_cuda_context_bytes"])), factor)


def prefill_graph_sizes(max_bs: int) -> list[int]:
    """SGLang 0.5.23's prefill CUDA-graph sizes up to ``max_bs`` (cuda_graph_hook.py
    generate_prefill_cuda_graph_batch_sizes l.480-497): 4..32 step 4, 48..256 step 16, 288..512 step 32,
    576..1024 step 64, 1280..4096 step 256, then step 512."""
    sizes = [*range(4, 33, 4), *range(48, 257, 16), *range(288, 513, 32), *range(576, 1025, 64),
             *range(1280, 4097, 256), *range(4608, max(max_bs, 4608) + 1, 512)]
    return [b for b in sizes if b <= max_bs]


def _pick(opts: dict[str, Any], said: dict[str, Any], name: str, default: Any) -> Any:
    """The user's value of ``name``, else ``default``, which is then written to ``said``."""
    if opts.get(name) is not None:
        return opts[name]
    said[name] = default
    return default


def check_speculative(opts: dict[str, Any], arch: Architecture) -> None:
    """``--speculative mtp`` needs a model with MTP layers whose vLLM module was read
    (rigsize.model.mtp) and an engine that runs it: vLLM (method "mtp"), SGLang (EAGLE over
    the NextN layer) or TensorRT-LLM (MTP), all sized by vLLM's rules."""
    from rigsize.errors import InputError
    from rigsize.model.mtp import mtp_module

    if not opts.get("speculative"):
        for name in ("speculative_tokens", "acceptance_rate"):
            if opts.get(name) is not None:
                raise InputError("input.conflict", what=f"--{name.replace('_', '-')} needs --speculative mtp")
        return
    engine = opts.get("engine") or "vllm"
    if engine not in ("vllm", "sglang", "trtllm"):
        raise InputError("input.conflict", what=f"--speculative mtp: {engine} does not run a model's MTP layers as "
                         "a draft; use --engine vllm or sglang")
    if not arch.params_mtp:
        raise InputError("input.conflict", what=f"--speculative mtp: model_type {arch.model_type} has no MTP layers "
                         "(params_mtp = 0); DeepSeek-V3 (deepseek-v3) has one")
    if mtp_module(arch) is None:
        raise InputError("input.conflict", what=f"--speculative mtp: the MTP layers of model_type {arch.model_type} "
                         "are not laid out as vLLM loads them yet (DeepSeek-V3/V3.2 and Qwen3-Next are)")


def _check_engine_options(opts: dict[str, Any]) -> None:
    """Options that do not apply to the chosen engine: vLLM's batching budget under
    transformers ``generate()``; a version for sglang or TensorRT-LLM, sized by vLLM's rules."""
    from rigsize.errors import InputError

    if opts.get("engine") == "transformers":
        vllm_only = [k for k in ("max_num_batched_tokens", "max_num_seqs", "enforce_eager", "gpu_memory_utilization",
                                 "sampler")
                     if opts.get(k) not in (None, False)]
        if vllm_only:
            raise InputError("input.conflict", what=f"--{vllm_only[0].replace('_', '-')} is a serving-engine setting; "
                             "transformers generate() has no such budget (drop it, or use --engine vllm)")
    if opts.get("sampler") and opts.get("engine") not in (None, "vllm"):
        raise InputError("input.conflict", what=f"--sampler sizes vLLM's start-up warm-up; {opts['engine']} has none "
                         "modelled (drop it, or use --engine vllm)")
    if opts.get("engine") == "trtllm" and opts.get("engine_version"):
        raise InputError("input.conflict", what=render("engine.trtllm_version"))
    if opts.get("mem_fraction_static") is not None and opts.get("engine") != "sglang":
        raise InputError("input.conflict", what=render("engine.mem_fraction_not_sglang"))
    if opts.get("engine") == "sglang" and opts.get("gpu_memory_utilization") is not None:
        raise InputError("input.conflict", what=render("engine.utilization_not_sglang"))
    if opts.get("kv_cache_free_gpu_memory_fraction") is not None and opts.get("engine") != "trtllm":
        raise InputError("input.conflict", what=render("engine.free_fraction_not_trtllm"))
    if opts.get("engine") == "trtllm" and opts.get("gpu_memory_utilization") is not None:
        raise InputError("input.conflict", what=render("engine.utilization_not_trtllm"))


def _vllm_engine(gpu: GPU, opts: dict[str, Any], said: dict[str, Any], max_len: int, mla: bool) -> Engine:
    """``vllm serve`` of the asked version (``[vllm.era.*]``; the newest when none or
    "latest"): chunked prefill by era and context length, the batching defaults of
    ``_batching_defaults`` unless set, the scheduler's own checks (``_check_scheduler``)."""
    d = data()
    asked = opts.get("engine_version")
    asked = None if asked is None or asked.strip().lower() == "latest" else asked
    era_key, era = vllm_era(asked)
    version = asked or f">= {era['since']}"
    if not asked:
        said["engine_version"] = version
    if note := newer_than_read("vllm", asked):
        said["engine_version_note"] = note
    chunked = era["chunked_prefill"] == "always" or (
        era["chunked_prefill"] == "long_context" and max_len > int(era["chunked_prefill_min_len"]))
    default_tokens, default_seqs = _batching_defaults(gpu, era, asked, max_len, chunked)
    tokens = _pick(opts, said, "max_num_batched_tokens", default_tokens)
    seqs = _pick(opts, said, "max_num_seqs", min(default_seqs, tokens))
    _check_scheduler(tokens, seqs, chunked, max_len, version)
    eager = bool(opts.get("enforce_eager"))
    sampler = _pick(opts, said, "sampler", _default_sampler(asked))
    return Engine(
        name="vllm", era=era_key, version=version,
        gpu_memory_utilization=float(era["gpu_memory_utilization"]),
        max_num_batched_tokens=tokens, max_num_seqs=seqs,
        # MLA models get FlashMLA's 64-token blocks (vllm_budget_rules.md sec. 3)
        kv_block_size=int(d["vllm"]["kv_block_size"]["mla" if mla else "value"]), max_model_len=max_len,
        chunked_prefill=chunked, windows=era.get("windows", "hybrid"),
        cuda_graphs="none" if eager else era["cuda_graphs"], sampler=sampler, serving=opts.get("engine") or "vllm",
        speculative_tokens=_speculative_tokens(opts, said, tokens, asked),
    )


def _speculative_tokens(opts: dict[str, Any], said: dict[str, Any], budget: int, asked: str | None) -> int:
    """Draft tokens per step under ``--speculative mtp`` (default 1), checked as vLLM checks them:
    the method exists in the version (data/runtime.toml [vllm.speculative_mtp], read from each
    wheel's config/speculative.py) and max_num_batched_tokens exceeds num_lookahead_tokens, which
    is num_speculative_tokens for MTP (vllm/config/vllm.py _set_max_num_scheduled_tokens and
    num_lookahead_tokens, 0.33.0 wheel)."""
    from rigsize.errors import InputError

    if not opts.get("speculative"):
        if opts.get("speculative_tokens"):
            raise InputError("input.conflict", what="--speculative-tokens needs --speculative mtp")
        return 0
    k = int(_pick(opts, said, "speculative_tokens", 1))
    since = data()["vllm"]["speculative_mtp"]["since"]
    if asked and opts.get("engine") in (None, "vllm") and _version_tuple(asked) < _version_tuple(since):
        raise InputError("input.conflict", what=f"--speculative mtp: vLLM {asked} is older than {since}, the first "
                         f"checked version with the 'mtp' speculative method; use --engine-version {since} or newer")
    if budget <= k:
        raise InputError("input.conflict", what=f"--speculative-tokens {k} needs --max-num-batched-tokens above it "
                         f"({budget:,}); vLLM refuses it")
    return k


def _default_sampler(asked: str | None) -> str:
    """The top-k/top-p sampler a plain ``pip install vllm==X`` runs in its start-up
    warm-up (data/runtime.toml [[vllm.sampler.default]], read from the wheels)."""
    rows = data()["vllm"]["sampler"]["default"]
    if asked is None:
        return str(max(rows, key=lambda r: _version_tuple(r["since"]))["value"])
    v = _version_tuple(asked)
    for row in rows:
        if _version_tuple(row["since"]) <= v and ("until" not in row or v < _version_tuple(row["until"])):
            return str(row["value"])
    return "sort"


def version_at_least(eng: Engine, since: str) -> bool:
    """Whether the vLLM version ``eng`` sizes is ``since`` or newer (no version given: the newest, so yes)."""
    return eng.version.startswith(">=") or _version_tuple(eng.version) >= _version_tuple(since)


def skips_unused_tower(eng: Engine) -> bool:
    """vLLM versions that build no vision tower when every modality it serves has an image
    limit of 0 (data/runtime.toml [vllm.text_only_tower]); SGLang and TensorRT-LLM, sized by
    vLLM's rules, are not known to skip it, so their towers are counted."""
    if eng.name != "vllm" or eng.serving != "vllm":
        return False
    if eng.version.startswith(">="):
        return True
    return _version_tuple(eng.version) >= _version_tuple(data()["vllm"]["text_only_tower"]["since"])


def hybrid_pages_apply(eng: Engine) -> bool:
    """vLLM versions whose V1 allocator gives attention and recurrent layers one page size
    (data/runtime.toml [vllm.hybrid_pages])."""
    if eng.name != "vllm" or eng.version.startswith(">="):
        return eng.name == "vllm"
    return _version_tuple(eng.version) >= _version_tuple(data()["vllm"]["hybrid_pages"]["since"])


def sampler_copies(eng: Engine) -> float:
    """fp32 [rows, vocab] tensors alive at the peak of the sampler warm-up
    (data/runtime.toml [vllm.sampler]: measured for the sort path)."""
    table = data()["vllm"]["sampler"]
    return float(table["sort_copies"] if eng.sampler == "sort" else table["one_pass_copies"])


def _batching_defaults(gpu: GPU, era: dict[str, Any], asked: str | None, max_len: int,
                       chunked: bool) -> tuple[int, int]:
    """vLLM's default ``max_num_batched_tokens`` and ``max_num_seqs`` for this GPU, before
    the seqs cap at the token budget.

    GPUs of at least 70 GiB that are not A100s get the larger batching defaults
    (vllm/engine/arg_utils.py, usage-context defaults) (0.8.0-0.8.4: H100/H200 by name;
    0.8.5-0.8.x: any GPU of >= 70 GiB; A100s excluded from 0.9.0 on: vllm_budget_rules.md
    sec. 3).  Without chunked prefill the profile runs a whole max_model_len prompt."""
    d = data()
    v = _version_tuple(asked) if asked else (99,)
    name = gpu.name.upper()
    if _BIG_BY_NAME <= v < _BIG_BY_SIZE:
        big = "H100" in name or "H200" in name
    else:
        big = gpu.memory_bytes >= 70 * GiB and ("A100" not in name or v < _A100_EXCLUDED)
    size = "ge70gib_not_a100" if big else "other_gpu"
    ctx = d["applied"]["usage_context"]
    if chunked:
        table = era.get("max_num_batched_tokens") or d["vllm"]["max_num_batched_tokens"]
        default_tokens = int(table[f"{ctx}_{size}"]) if f"{ctx}_{size}" in table else int(table["value"])
    else:
        default_tokens = max(max_len, int(era["min_max_num_batched_tokens"]))
    seqs_table = era.get("max_num_seqs") or d["vllm"]["max_num_seqs"]
    return default_tokens, int(seqs_table[f"{ctx}_{size}"])


def _check_scheduler(tokens: int, seqs: int, chunked: bool, max_len: int, version: str) -> None:
    """vLLM's SchedulerConfig checks (vllm/config/scheduler.py _verify_args)."""
    from rigsize.errors import InputError

    if tokens < seqs:
        raise InputError("input.conflict", what=f"--max-num-batched-tokens {tokens:,} is below --max-num-seqs "
                         f"{seqs:,}; vLLM refuses it (each scheduled sequence needs a token)")
    if not chunked and tokens < max_len:
        raise InputError("input.conflict", what=f"--max-num-batched-tokens {tokens:,} is below --max-model-len "
                         f"{max_len:,} without chunked prefill (vLLM {version}); vLLM refuses it")


def _transformers_engine(opts: dict[str, Any], said: dict[str, Any], max_len: int) -> Engine:
    """Plain ``generate()``: one contiguous cache per sequence, the whole prompt in one
    forward pass, no memory fraction; before 4.45 the logits of every prompt token in
    fp32 (``data/runtime.toml`` [transformers.logits_to_keep])."""
    t = data()["transformers"]
    version = opts.get("engine_version") or t["newest_modelled"]
    if not opts.get("engine_version"):
        said["engine_version"] = version
    prompt_logits = _version_tuple(version) < _version_tuple(t["logits_to_keep"]["since"])
    batch = int(opts.get("batch") or 1)     # generate() prefills every prompt of the batch in one pass
    return Engine(name="transformers", era="transformers", version=version, gpu_memory_utilization=1.0,
                  max_num_batched_tokens=max_len * batch, max_num_seqs=batch, kv_block_size=1, max_model_len=max_len,
                  chunked_prefill=False, cuda_graphs="none", prompt_logits=prompt_logits)


def concurrency_by_tokens(eng: Engine) -> bool:
    """vLLM <= 0.9.0 printed concurrency as KV tokens / max_model_len; later versions
    count whole blocks per request (vllm_budget_rules.md sec. 4)."""
    return eng.name == "vllm" and data()["vllm"]["era"][eng.era]["concurrency"] == "tokens"


def _nccl_groups(layout: Layout) -> int:
    """Communicators a rank joins: one per parallel dimension wider than one GPU."""
    return sum(1 for n in (layout.tp, layout.pp, layout.dp, layout.cp) if n > 1) + (layout.ep > 1)


def overhead_bytes(layout: Layout, workload: Workload, gpu: GPU, eng: Engine) -> dict[str, int]:
    """Fixed memory outside the model's tensors, by term (data/runtime.toml [applied]).

    Inference, vLLM: inside the gpu_memory_utilization budget sit the non-torch
    increase measured during profiling and, from 0.20 (era ``cuda_graphs = "inside"``,
    not with --enforce-eager), the CUDA-graph estimate; the CUDA context and NCCL
    buffers were allocated before the budget's snapshot and live in the (1 -
    utilization) headroom, so they are not charged here (before 0.20 the graphs live
    there too).  transformers ``generate()`` has no budget: the CUDA context takes its
    share of the whole GPU.
    Training: the CUDA context, the cuBLAS workspace and one NCCL communicator per
    parallel group wider than one GPU.  Allocator fragmentation has no published
    typical figure and is not charged (a warning says so)."""
    a = data()["applied"]
    if not workload.training:
        if eng.name == "transformers":
            return {"cuda_context": int(a["training_cuda_context_bytes"])}
        era = data()["vllm"]["era"][eng.era]
        # vLLM 0.6.4 counted all non-torch memory on the GPU, the CUDA context included
        whole = era.get("non_torch") == "whole_gpu"
        terms = {"non_torch": int(a["training_cuda_context_bytes" if whole else "vllm_non_torch_bytes"])}
        if eng.cuda_graphs == "inside":
            terms["cuda_graphs"] = int(a["vllm_cuda_graph_bytes"])
        if eng.kv_budget == "trtllm":
            # TensorRT-LLM's peak counts all non-torch memory (mem_get_info's used less torch's allocated),
            # the CUDA context with it (trtllm_budget_rules.md, step 5)
            terms["cuda_context"] = int(a["training_cuda_context_bytes"])
        return terms
    hopper = gpu.architecture == "hopper"
    terms = {
        "cuda_context": int(a["training_cuda_context_bytes"]),
        "cublas_workspace": int(a["hopper_cublas_workspace_bytes" if hopper else "other_cublas_workspace_bytes"]),
    }
    groups = _nccl_groups(layout)
    if groups:
        terms["nccl"] = groups * int(a["training_nccl_bytes_per_group"])
    return terms


def gathered_params_bytes(arch: Architecture, layout: Layout, workload: Workload, tensors: list[Tensor],
                          shard: Callable[[Tensor, Architecture, Layout], float]) -> int:
    """ZeRO-3 / FSDP full sharding gathers whole layers before use: DeepSpeed keeps at
    most ``stage3_max_live_parameters`` gathered plus ``stage3_prefetch_bucket_size``
    prefetched (DeepSpeed config docs); FSDP holds the current and the prefetched unit.
    Modelled as two decoder layers' bf16 parameters, capped by DeepSpeed's limits."""
    if not workload.training or layout.zero != 3 or layout.zero_shards == 1:
        return 0      # nothing is sharded on one rank, so nothing is gathered
    per_layer: dict[int, float] = {}
    for t in tensors:
        if t.layer is not None:
            per_layer[t.layer] = per_layer.get(t.layer, 0.0) + t.numel / shard(t, arch, layout)
    largest = max(per_layer.values(), default=0.0)
    elements = 2 * largest
    if workload.framework == "deepspeed":
        ds = data()["deepspeed"]["zero3_defaults"]
        elements = min(elements, float(ds["stage3_max_live_parameters"]) + float(ds["stage3_prefetch_bucket_size"]))
    return math.ceil(elements * 2)


def assumptions(eng: Engine, workload: Workload) -> dict[str, Any]:
    """The runtime constants an estimate applied, for the report."""
    if workload.training:
        return {"allocator_fragmentation": "not modelled (no published typical figure)"}
    if eng.name in ("llamacpp", "ollama", "mlx"):      # local engines: memory.local_engines says the rest
        return {"engine": f"{eng.name} {eng.version} (one request; weights, KV cache and compute buffers per "
                          "device as the engine places them)"}
    if eng.name == "transformers":
        return {"engine": f"transformers {eng.version} generate() (contiguous KV cache, whole-prompt prefill)",
                "prompt_logits": eng.prompt_logits}
    return {"engine": f"vllm {eng.version} (vllm serve defaults; rules of era {eng.era})",
            "kv_block_size": eng.kv_block_size, "max_num_batched_tokens": eng.max_num_batched_tokens,
            "max_num_seqs": eng.max_num_seqs, "chunked_prefill": eng.chunked_prefill,
            "cuda_graphs": eng.cuda_graphs, "sampler": eng.sampler}
