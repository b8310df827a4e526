"""``rigsize plan`` for local inference (--engine llamacpp | ollama | mlx): no cloud search, the
hardware you name.  Candidates are the given device (and count) in the given or each listed
GGUF / MLX format, with every layer on the GPU and, where that does not fit, the most layers
that do (llama.cpp -ngl); each is ``estimate``'s evaluation, ranked fastest first.
"""

from __future__ import annotations

from typing import Any

from rigsize.errors import RigsizeError
from rigsize.model.inputs import ModelSpec

# Formats tried when --weights is not given, fewest bits last (GGUF K-quants and Q4_0; MLX affine)
GGUF_FORMATS = ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "iq4_xs", "q4_0", "q3_k_m", "q2_k")
MLX_FORMATS = ("mlx-8bit", "mlx-4bit")


def _options(opts: dict[str, Any]) -> dict[str, Any]:
    """The estimate options of a local plan (the plan's own search options dropped)."""
    from rigsize.planning.options import PLAN_OPTIONS

    own = {o.name for o in PLAN_OPTIONS}
    return {k: v for k, v in opts.items() if k not in own}


def local_plan(spec: ModelSpec, opts: dict[str, Any]) -> dict[str, Any]:
    """The plan object (PlanReport shape) for a local engine."""
    from rigsize.memory.llamacpp import most_gpu_layers_that_fit
    from rigsize.memory.local_engines import overhead_per_gpu
    from rigsize.planning.estimate import estimate
    from rigsize.planning.job import build_job

    base = _options(opts)
    if opts.get("have"):
        base.update(_have(opts["have"], base))
    engine = base["engine"]
    formats = [base["weights"]] if "weights" in base else list(MLX_FORMATS if engine == "mlx" else GGUF_FORMATS)
    considered, rejected, recs = 0, {"memory": 0, "invalid": 0}, []
    first_error: RigsizeError | None = None
    for fmt in formats:
        considered += 1
        trial = {**base, "weights": fmt}
        try:
            report = estimate(spec, **trial)
            if not report.memory.fits and engine != "mlx" and "gpu_layers" not in base:
                job, _ = build_job(spec, _parsed(trial), {})
                ngl = most_gpu_layers_that_fit(spec.arch, job.workload, job.weights, job.local,
                                               overhead_per_gpu(job.gpu))
                if ngl:
                    trial["gpu_layers"] = ngl
                    report = estimate(spec, **trial)
        except RigsizeError as err:
            rejected["invalid"] += 1
            first_error = first_error or err
            continue
        if not report.memory.fits:
            rejected["memory"] += 1
            continue
        recs.append((report, fmt, trial))
    if not recs and first_error is not None and not rejected["memory"]:
        raise first_error          # every format refused for the same reason (engine, device, option)
    def speed(r: tuple) -> float:      # tokens/s; 0 where the device's peaks leave it unknown
        return r[0].performance.output_tokens_per_second if r[0].performance else 0.0

    if opts.get("objective") == "fastest":
        recs.sort(key=lambda r: -speed(r))
    else:       # quality first: every layer on the GPU, then the format with the most bits, then speed
        recs.sort(key=lambda r: ("gpu_layers" in r[2], formats.index(r[1]), -speed(r)))
    top = recs[: int(opts.get("top", 3))]
    out = []
    for i, (report, fmt, trial) in enumerate(top):
        body = report.model_dump(mode="json")
        body["choices"] = {"gpu": report.hardware.gpu, "gpus": report.hardware.gpus, "weights": fmt,
                           "kv_dtype": report.model.kv_dtype, "engine": engine}
        where = (f"{trial['gpu_layers']} of {spec.arch.num_hidden_layers + 1} layers on the GPU"
                 if "gpu_layers" in trial else "every layer on the GPU")
        perf = report.performance
        where += f", contexts up to {report.memory.max_context_single:,} tokens"
        body["why"] = (f"rank {i + 1}: {fmt}, {where}: " + (
            f"{perf.output_tokens_per_second:,.1f} tokens/s generated, {perf.ttft_seconds:,.2f} s to the first token"
            if perf else "speed unknown (see warnings)"))
        body["server"], body["software"] = None, []
        out.append(body)
    objective = "fastest" if opts.get("objective") == "fastest" else "fewest-gpus"
    ranking = ("tokens/s" if objective == "fastest" else "every layer on the GPU first, then the format with the "
               "most bits (quality), then tokens/s (--objective fastest: tokens/s alone)")
    return {"schema_version": 1, "model": spec.name, "task": "inference", "goals": {}, "objective": objective,
            "assumptions": {"search": f"local inference ({engine}): the hardware given, each format in "
                            f"{', '.join(formats)}; all layers on the GPU, else the most that fit",
                            "ranking": ranking},
            "candidates_considered": considered, "pruned": 0, "rejected": rejected, "recommendations": out}


def _have(text: str, base: dict[str, Any]) -> dict[str, Any]:
    """``--have "2x RTX-3090"`` -> gpu and gpus; ``"1x RTX-4090, 1x RTX-3090"`` -> the mixed list in --gpu
    (llama.cpp's layer split over PCIe, the only case where different GPUs are planned together)."""
    from rigsize.errors import InputError
    from rigsize.planning.search import parse_have

    if "gpu" in base or "gpus" in base:
        raise InputError("input.conflict", what="give --have, or --gpu/--gpus, not both")
    parts = parse_have(text)
    if any(per_node for _, _, per_node in parts):
        raise InputError("input.conflict", what="--have NODESxCOUNT: local inference runs on one machine")
    names = [name for name, count, _ in parts for _ in range(count)]
    if len({*names}) == 1:
        return {"gpu": names[0], "gpus": len(names)}
    return {"gpu": ",".join(names)}


def _parsed(opts: dict[str, Any]) -> dict[str, Any]:
    from rigsize.planning.options import parse_options

    return parse_options(opts)


# What fits on the hardware you have (``rigsize plan --have SETUP`` without MODEL): every
# preset at the best format that keeps every layer on the devices, with an 8K context (the
# longest context that fits is reported beside it).
WHAT_FITS_CONTEXT = 8192
SERVING_FORMATS = ("bf16", "fp8", "awq-int4")      # vLLM: 16-bit, then the common 8- and 4-bit checkpoints


def what_fits(opts: dict[str, Any]) -> dict[str, Any]:
    """For each preset, the first format (most bits first) whose every layer fits on the
    devices ``opts["have"]`` names, and how fast one user is served; presets that fit in none
    are listed apart.  llama.cpp by default; --engine vllm|sglang|trtllm sizes serving on
    the same devices (one user, tp over the devices)."""
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.model.formats import resolve_weight_format, weights_bytes
    from rigsize.model.inputs import presets, resolve_model
    from rigsize.planning.estimate import estimate

    base = {k: v for k, v in _options(opts).items() if k not in ("top",)}
    base.update(_have(opts["have"], base))
    engine = base.setdefault("engine", "llamacpp")
    local = engine in ("llamacpp", "ollama", "mlx")
    formats = ([base.pop("weights")] if "weights" in base else
               list(MLX_FORMATS if engine == "mlx" else GGUF_FORMATS if local else SERVING_FORMATS))
    base.setdefault("max_model_len", WHAT_FITS_CONTEXT)
    base.setdefault("batch", 1)
    count = int(base.get("gpus", 1))
    # serving engines: tp over the devices, else the largest tp the model's heads admit (the
    # rest of the devices as data-parallel replicas); local engines split layers themselves
    tps = [base["tp"]] if "tp" in base else sorted((t for t in range(1, count + 1) if count % t == 0), reverse=True)
    probe = {**base, "weights": formats[0], "max_model_len": 512, "prompt": 16, "output": 16}
    estimate("qwen2-0.5b", **({**probe, "tp": 1, "gpus": 1} if not local else probe))   # a wrong engine,
    # format or device for the setup is refused here in one line, not reported as "does not fit"
    names = base["gpu"].split(",")
    memory = int(base.get("gpus", 1)) * sum(resolve_gpu(n).usable_memory_bytes for n in names) // len(names) \
        if len(names) == 1 else sum(resolve_gpu(n).usable_memory_bytes for n in names)
    rows, misses = [], []
    for name in sorted(presets()):
        spec = resolve_model(name)
        hit = None
        context = min(base["max_model_len"], spec.arch.max_position_embeddings or base["max_model_len"])
        for fmt in formats:
            if weights_bytes(resolve_weight_format(fmt), spec.arch.tensors, spec.arch.num_hidden_layers) > memory:
                continue                      # the weights alone exceed the devices
            for tp in ([None] if local else tps):
                trial = {**base, "weights": fmt, "max_model_len": context}
                if tp is not None:
                    trial.update(tp=tp, dp=count // tp)
                try:
                    report = estimate(spec, **trial)
                except RigsizeError:
                    continue                  # this format or tp does not apply to the model
                if report.memory.fits:
                    hit = (fmt, report)
                    break
            if hit:
                break
        if hit is None:
            misses.append(name)
            continue
        fmt, report = hit
        perf = report.performance
        rows.append({"model": name, "params": spec.arch.params, "weights": fmt,
                     "max_context": report.memory.max_context_single,
                     "output_tokens_per_second": perf.output_tokens_per_second if perf else None,
                     "ttft_seconds": perf.ttft_seconds if perf else None})
    rows.sort(key=lambda r: -r["params"])
    return {"schema_version": 1, "have": opts["have"], "engine": engine,
            "assumptions": {"context": f"{WHAT_FITS_CONTEXT:,} tokens (max_context: the longest that fits)",
                            "users": 1, "formats": f"the first of {', '.join(formats)} that keeps every layer "
                            "on the devices"},
            "models": rows, "does_not_fit": misses}
