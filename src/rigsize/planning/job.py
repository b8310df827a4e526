"""A fully specified job: model, hardware, workload, layout, formats, engine or framework,
and how its speed is evaluated.  ``resolve_job`` turns options into one (every default
resolved and echoed as an assumption, the layout validated); ``resolve_speed`` adds the
speed settings.  ``planning.evaluate.evaluate`` is then a function of the job alone, so
``estimate`` and the planner run the same arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from rigsize.errors import FormatError, InputError, PlanError
from rigsize.hardware.gpus import DEFAULT_GPU, GPU, load_gpu_spec, resolve_gpu
from rigsize.memory import frameworks, runtime
from rigsize.memory.per_gpu import MemoryResult, memory_per_gpu
from rigsize.messages import Note
from rigsize.model import formats, vision
from rigsize.model.architecture import Architecture
from rigsize.model.formats import KVFormat, WeightFormat
from rigsize.model.inputs import ModelSpec, stored_weight_format
from rigsize.model.tp_groups import tp_group_problems
from rigsize.numbers import parse_quantity
from rigsize.planning import limits
from rigsize.planning.layout import (
    TRAINING_TASKS,
    Layout,
    Workload,
    divisors,
    megatron_stage_problem,
    tp_problems,
    valid_tp_sizes,
    validate_layout,
)
from rigsize.planning.options import BY_NAME
from rigsize.speed.error_bands import gpu_class_key

# Inference defaults (issue contract): one request of 1024 prompt + 256 output tokens.
DEFAULT_PROMPT, DEFAULT_OUTPUT = 1024, 256
# Training default sequence: min(4096, the model's maximum context).
DEFAULT_TRAIN_SEQ = 4096


def checkpoint_format(spec: ModelSpec) -> tuple[WeightFormat, str]:
    """The weight format the checkpoint is stored in (with the modules it keeps in
    another dtype), and why rigsize thinks so (``rigsize.model.inputs.stored_weight_format``)."""
    return stored_weight_format(spec)


@dataclass(frozen=True)
class Speed:
    """How a job's speed is evaluated, every default and override resolved: the
    efficiency row (``speed.roofline.Efficiency`` for inference,
    ``speed.training.TrainingEfficiency`` for training) and what training speed needs."""

    engine: str                   # inference: the engine whose row applies; training: the framework
    efficiency: Any
    source: str                   # efficiency_source as reported
    band_class: str | None        # error-band class; None when the efficiencies were overridden
    network: str = ""
    gpus_per_node: int = 8
    vpp: int = 1
    train_tokens: float | None = None
    precision: str = "bf16"       # training GEMMs: bf16 or fp8
    host: Any = None              # training with --offload: the host (memory.llamacpp.Host) the CPU step runs on
    acceptance_rate: float | None = None    # inference, --speculative: each draft token's acceptance
    acceptance_source: str = ""


@dataclass(frozen=True)
class Job:
    """Everything one evaluation needs, every default resolved."""

    spec: ModelSpec
    gpu: GPU
    workload: Workload
    layout: Layout
    weights: WeightFormat
    kv: KVFormat
    engine: runtime.Engine
    gpu_memory_utilization: float
    global_batch_given: bool = False
    sp_given: bool = False
    speed: Speed | None = None       # how speed is evaluated (resolve_speed); None: memory only
    local: Any = None                # llama.cpp / Ollama / MLX: memory.llamacpp.LocalSettings; None: serving


def _gpu(opts: dict[str, Any], assumptions: dict[str, Any]) -> GPU:
    if "gpu" in opts and "gpu_spec" in opts:
        raise InputError("input.conflict", what="give either --gpu or --gpu-spec, not both")
    if "gpu_spec" in opts:
        return load_gpu_spec(opts["gpu_spec"])
    if "gpu" not in opts:
        assumptions["gpu"] = DEFAULT_GPU
    from rigsize.memory.local_engines import CPU_ONLY

    if str(opts.get("gpu", "")).strip().lower() in CPU_ONLY:     # a serving engine or training: GPUs only
        raise InputError("input.conflict", what=f"--gpu {opts['gpu']}: the host CPU alone is sized for llama.cpp "
                         "and Ollama only; add --engine llamacpp or --engine ollama (inference)")
    return resolve_gpu(opts.get("gpu", DEFAULT_GPU))


def _workload(opts: dict[str, Any], arch: Architecture, task: str, assumptions: dict[str, Any],
              config: Mapping[str, Any] | None = None) -> Workload:
    """The workload the options describe; the defaults rigsize fills in are written to
    ``assumptions``."""
    if task not in TRAINING_TASKS:
        return _inference_workload(opts, arch, assumptions, config)
    return _training_workload(opts, arch, task, assumptions)


def _default(opts: dict[str, Any], assumptions: dict[str, Any], name: str, value: Any) -> Any:
    """The option as given, else ``value``, which is then echoed as an assumption."""
    if name in opts:
        return opts[name]
    assumptions[name] = value
    return value


def _inference_workload(opts: dict[str, Any], arch: Architecture, assumptions: dict[str, Any],
                        config: Mapping[str, Any] | None = None) -> Workload:
    """Requests of ``prompt + output`` tokens (``_prompt_output``), ``batch`` at once; a
    request's images add their tokens to its prompt (``_image_tokens``)."""
    for name in ("micro_batch", "global_batch"):
        if name in opts:
            raise InputError("input.conflict", what=f"--{name.replace('_', '-')} applies to training tasks")
    batch = _default(opts, assumptions, "batch", 1)
    prompt, output = _prompt_output(opts, arch)
    images, image_size = _image_tokens(opts, config, assumptions)
    if images and "seq" in opts:
        raise InputError("input.conflict", what="--seq with --images-per-request: give --prompt (text tokens) "
                         "and --output; the images' tokens are added to the prompt")
    if "seq" in opts and opts["seq"] != prompt + output:
        raise InputError("input.conflict", what=f"--seq {opts['seq']} contradicts --prompt {prompt} + "
                         f"--output {output}; give --seq alone or prompt and output")
    for name, value in (("prompt", prompt), ("output", output)):
        if name not in opts:
            assumptions[name] = value
    prompt += images    # the echoed prompt stays the text's, so the assumptions reproduce the run
    seq = prompt + output if images else _default(opts, assumptions, "seq", prompt + output)
    _check_context(arch, seq)
    return Workload(task="inference", batch=batch, seq=seq, prompt=prompt, output=output,  # type: ignore[arg-type]
                    images=opts.get("images_per_request"), image_size=image_size)


def _image_tokens(opts: dict[str, Any], config: Mapping[str, Any] | None,
                  assumptions: dict[str, Any]) -> tuple[int, tuple[int, int] | None]:
    """Prompt tokens of a request's ``images_per_request`` images at ``image_size``, by the
    model's own rule (``rigsize.model.vision.image_tokens``), and that (width, height); 0 and
    None without images."""
    count = opts.get("images_per_request") or 0
    if not count:
        if "image_size" in opts:
            raise InputError("input.conflict", what="--image-size needs --images-per-request")
        return 0, None
    model_type = (config or {}).get("model_type")
    if model_type not in vision.MODEL_TYPES:
        raise InputError("input.conflict", what=f"--images-per-request: model_type {model_type} has no vision tower")
    size = str(_default(opts, assumptions, "image_size", "1024x1024"))
    parts = size.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and 0 < int(p) <= 65536 for p in parts):
        raise InputError("input.conflict", what=f"--image-size {size}: give width x height in pixels, e.g. 1280x720")
    width, height = (int(p) for p in parts)
    per_image = vision.image_tokens(config or {}, width, height)
    assumptions["image_tokens"] = f"{count} x {per_image} ({model_type} at {width}x{height})"
    return int(count) * per_image, (width, height)


def _training_workload(opts: dict[str, Any], arch: Architecture, task: str, assumptions: dict[str, Any]) -> Workload:
    """Micro-batches of ``seq`` tokens, trained by a framework (megatron for pre-training,
    deepspeed under ZeRO, hf otherwise) with its recipe (``frameworks.recipe``)."""
    if "prompt" in opts or "output" in opts:
        raise InputError("input.conflict", what="--prompt and --output apply to inference; use --seq for training")
    if "batch" in opts and "micro_batch" in opts and opts["batch"] != opts["micro_batch"]:
        raise InputError("input.conflict", what=f"--batch {opts['batch']} and --micro-batch {opts['micro_batch']} "
                         "differ; in training --batch is the micro-batch")
    micro = opts.get("micro_batch", opts.get("batch"))
    if micro is None:
        micro = _default(opts, assumptions, "micro_batch", 1)
    seq = _default(opts, assumptions, "seq", min(DEFAULT_TRAIN_SEQ, arch.max_position_embeddings or DEFAULT_TRAIN_SEQ))
    _check_context(arch, seq)
    framework = opts.get("framework") or _default(
        opts, assumptions, "framework",
        "megatron" if task == "pretrain" else ("deepspeed" if opts.get("zero", "0") != "0" else "hf"))
    targets = _lora_targets(opts, arch)
    if "adapter_dtype" in opts and task not in ("lora", "qlora"):
        raise InputError("input.adapter_dtype_task", task=task)
    recipe = frameworks.recipe(
        framework, task, optimizer=opts.get("optimizer"), recompute=opts.get("recompute"),
        optimizer_in_backward=opts.get("optimizer_in_backward"), chunked_loss=opts.get("chunked_loss"),
        adapter_dtype=opts.get("adapter_dtype"), activation_offload=opts.get("activation_offload"),
        zero=int(opts.get("zero", "0")))
    _check_framework_options(opts, framework, task)
    # echo the framework defaults that change the memory, as the recipe in force has them (with
    # ZeRO, torchtune's distributed recipes and DeepSpeed under a Trainer replace some: frameworks.recipe)
    for name, on in (("optimizer_in_backward", recipe.optimizer_in_backward), ("chunked_loss", recipe.loss != "full"),
                     ("activation_offload", recipe.activation_offload)):
        if name not in opts and on:
            assumptions[name] = True
    return Workload(
        task=task, batch=micro, seq=seq, framework=framework,  # type: ignore[arg-type]
        optimizer=_default(opts, assumptions, "optimizer", recipe.optimizer),
        lora_rank=_default(opts, assumptions, "lora_rank", 16), lora_targets=targets, recipe=recipe,
    )


def _torchtune_sharding(opts: dict[str, Any], task: str, assumptions: dict[str, Any]) -> dict[str, Any]:
    """torchtune on more than one GPU runs its *_distributed recipes, which always shard the model with
    FSDP2 (torchtune/training/_distributed.py shard_model: fully_shard on each layer and the root,
    reshard_after_forward from the config, True in every shipped config; 0.6.1 wheel) with their own
    optimizer (frameworks.recipe): the job is ZeRO-3 there (ZeRO-2 with fsdp_reshard_after_forward=False),
    never unsharded.  Returns the options with that stage, echoed; ZeRO 0/1 on several GPUs is refused."""
    gpus = opts.get("gpus") or (opts.get("dp", 1) * opts.get("tp", 1) * opts.get("pp", 1) * opts.get("cp", 1))
    if opts.get("framework") != "torchtune" or task not in TRAINING_TASKS or gpus <= 1:
        return opts
    if "zero" not in opts:
        assumptions["zero"] = "3"
        assumptions["zero_reason"] = "torchtune's distributed recipes shard with FSDP2, resharding after forward"
        return {**opts, "zero": "3"}
    if opts["zero"] in ("0", "1"):
        raise InputError("input.conflict", what=f"--zero {opts['zero']}: torchtune's distributed recipes always "
                         "shard with FSDP2; use --zero 3 (full sharding, their default) or --zero 2 "
                         "(fsdp_reshard_after_forward=False), or one GPU")
    return opts


def _lora_targets(opts: dict[str, Any], arch: Architecture) -> frozenset[str] | None:
    """``--lora-targets`` as a set of module names (None: every linear layer), each checked."""
    targets = opts.get("lora_targets")
    if targets is not None and not any(x.strip() for x in targets.split(",")):
        raise InputError("input.conflict", what="--lora-targets names no module; give e.g. q_proj,v_proj, or "
                         "leave it out for every linear layer")
    if not targets:
        return None
    _check_lora_targets(arch, targets)
    return frozenset(x.strip() for x in targets.split(",") if x.strip())


def _check_framework_options(opts: dict[str, Any], framework: str, task: str) -> None:
    """Options the framework has no code for: activation offloading, optimizer-in-backward, LoRA."""
    no_offload = ("hf", "trl", "fsdp", "torchtitan", "llamafactory")
    if opts.get("activation_offload") and framework in no_offload:
        raise InputError("input.conflict", what=f"--activation-offload: {framework} has no activation offloading "
                         "(torchtune, Unsloth, DeepSpeed and Megatron do)")
    if opts.get("optimizer_in_backward") and framework in ("deepspeed", "megatron"):
        raise InputError("input.conflict", what=f"--optimizer-in-backward: {framework} steps its own optimizer "
                         "after backward (torchtune and torchtitan offer it)")
    if task in ("lora", "qlora") and framework in ("torchtitan", "megatron"):
        raise InputError("input.conflict", what=f"--task {task}: {framework} has no LoRA recipe; use hf, trl, "
                         "torchtune, unsloth, llamafactory or deepspeed")


def _prompt_output(opts: dict[str, Any], arch: Architecture) -> tuple[int, int]:
    """Prompt and output tokens: given, derived from --seq (seq = prompt + output), or
    the defaults clamped to the model's context."""
    seq, prompt, output = opts.get("seq"), opts.get("prompt"), opts.get("output")
    if seq is not None and seq < 2 and (prompt is None or output is None):
        raise InputError("input.too_small", option="--seq", value=seq, minimum=2)
    if seq is not None and prompt is None and output is None:
        output = min(DEFAULT_OUTPUT, seq // 2)
        return seq - output, output
    if seq is not None and prompt is None:
        return max(1, seq - output), output
    if seq is not None and output is None:
        return prompt, max(1, seq - prompt)
    limit = arch.max_position_embeddings or (DEFAULT_PROMPT + DEFAULT_OUTPUT)
    output = output if output is not None else min(DEFAULT_OUTPUT, max(1, limit // 5))
    prompt = prompt if prompt is not None else max(1, min(DEFAULT_PROMPT, limit - output))
    return prompt, output


def _check_lora_targets(arch: Architecture, targets: str) -> None:
    """LoRA targets are PEFT module names (q_proj, ...) or rigsize roles (attn_q, ...)."""
    import difflib

    from rigsize.model.tensors import LINEAR_ROLES

    modules = {t.name.rsplit(".", 2)[-2] for t in arch.tensors if t.is_linear and t.name.endswith(".weight")}
    known = modules | set(LINEAR_ROLES)
    for name in (x.strip() for x in targets.split(",")):
        if name and name not in known:
            close = difflib.get_close_matches(name, sorted(modules), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; this model has {', '.join(sorted(modules))}"
            raise InputError("input.conflict", what=f"--lora-targets: '{name}' is not a linear module{hint}")


def _check_context(arch: Architecture, seq: int) -> None:
    limit = arch.max_position_embeddings
    if limit and seq > limit:
        raise InputError("input.conflict", what=f"sequence of {seq:,} tokens exceeds the model's "
                         f"max_position_embeddings {limit:,}; use a shorter --seq (or --prompt/--output)")


def default_inference_layout(arch: Architecture, gpus: int, node: int, fmt: WeightFormat | None = None) -> Layout:
    """The largest valid tp up to one node (for ``fmt``'s quantization groups too,
    when given), pipeline stages across nodes."""
    for tp in reversed(valid_tp_sizes(arch, fmt, min(gpus, node))):
        if gpus % tp == 0 and gpus // tp <= arch.num_hidden_layers:
            return Layout(tp=tp, pp=gpus // tp)
    raise PlanError("plan.invalid", why=f"{gpus} GPUs cannot be split as tp x pp with tp <= {node} dividing the "
                    f"heads and pp <= {arch.num_hidden_layers} layers; use fewer GPUs, or --dp for replicas")


def _layout(opts: dict[str, Any], job_arch: Architecture, workload: Workload, gpu: GPU,
            assumptions: dict[str, Any]) -> tuple[Layout, bool]:
    """The layout the user gave, or the default one for ``--gpus``.  Returns it and
    whether rigsize chose model parallelism itself (training then searches for the
    least that fits)."""
    explicit = {k: opts[k] for k in ("tp", "pp", "dp", "cp") if k in opts}
    gpus = opts.get("gpus")
    training = workload.training
    recompute = opts.get("recompute")
    if recompute is None:
        # the framework's documented default (data/frameworks.toml; PEFT's
        # prepare_model_for_kbit_training checkpoints every layer for QLoRA)
        recompute = workload.settings.recompute if training else "none"
        if training:
            assumptions["recompute"] = recompute
    common = {
        "ep": opts.get("ep", 1), "zero": int(opts.get("zero", "0")), "offload": opts.get("offload", "none"),
        "recompute": recompute, "pp_first_layers": opts.get("pp_first_layers"),
        "pp_last_layers": opts.get("pp_last_layers"),
    }
    if explicit:
        tp, pp, dp, cp = (explicit.get(k, 1) for k in ("tp", "pp", "dp", "cp"))
        if gpus is not None and gpus != tp * pp * dp * cp:
            if set(explicit) <= {"tp", "pp", "cp"} and gpus % (tp * pp * cp) == 0 and training:
                dp = gpus // (tp * pp * cp)
                assumptions["dp"] = dp
            else:
                raise InputError("input.conflict", what=f"--gpus {gpus} is not tp x pp x dp x cp = {tp * pp * dp * cp}")
        layout = Layout(tp=tp, pp=pp, dp=dp, cp=cp, **common)
        chosen = False
    else:
        n = gpus or 1
        if gpus is None:
            assumptions["gpus"] = 1
        if training:
            layout = Layout(dp=n, **common)
        else:
            layout = replace(default_inference_layout(job_arch, n, gpu.node_size), **common)
        chosen = True
    sp = opts.get("sp")
    if sp is None:
        sp = training and layout.tp > 1
        assumptions["sp"] = sp
    return replace(layout, sp=sp), chosen


def served_16bit(stored: str, task: str, engine: str, gpu: GPU) -> str | None:
    """The 16-bit dtype a float32 checkpoint is served in by vLLM and SGLang's dtype "auto"
    (vLLM ``_resolve_auto_dtype``: "Downcast for float32 models" to the platform's first dtype,
    bf16 from compute capability 8.0, else fp16; vllm/config.py L3303 in 0.9.2, config/model.py
    L1665 in 0.11.0; fp16 before, bf16 for Gemma 2 since 0.6.1; SGLang
    ``_get_and_verify_dtype``, srt/configs/model_config.py L2304-2317 in 0.5.23), or None."""
    if stored != "fp32" or task != "inference" or engine not in ("vllm", "sglang"):
        return None
    return "bf16" if gpu.supports("bf16") else "fp16"


def _formats(opts: dict[str, Any], spec: ModelSpec, task: str, gpu: GPU,
             assumptions: dict[str, Any]) -> tuple[WeightFormat, KVFormat]:
    stored, why = checkpoint_format(spec)
    if "weights" in opts:
        weights = formats.resolve_weight_format(opts["weights"])
    else:
        name = stored.name
        if task == "qlora":
            name, why = "nf4", "QLoRA default (Dettmers et al. 2023)"
        elif task in ("finetune", "pretrain"):
            name, why = "bf16", "mixed-precision training"
        elif served := served_16bit(name, task, opts.get("engine") or "vllm", gpu):
            name, why = served, f"config torch_dtype float32, served as {served} (vLLM/SGLang dtype auto)"
        assumptions["weights"] = name
        assumptions["weights_reason"] = why
        weights = formats.resolve_weight_format(name)
    if weights.name == stored.name:
        weights = stored     # the checkpoint's own format, with the modules it keeps unquantized
    if task in ("finetune", "pretrain") and weights.name not in ("bf16", "fp16", "fp32"):
        raise InputError("input.conflict", what=f"full training updates 16/32-bit weights, not {weights.name}; "
                         "use --task qlora for 4-bit or --weights bf16")
    if task == "qlora" and weights.name not in ("nf4", "fp4"):
        raise InputError("input.conflict", what=f"QLoRA quantizes the base to nf4 or fp4, not {weights.name}; "
                         "use --task lora for other formats")
    runs = formats.gpu_runs(weights, gpu.architecture)
    if runs == "no":
        raise FormatError("format.gpu_cannot", fmt=weights.name, gpu=gpu.name)
    if runs == "dequantize":
        # no kernel reads the format on this GPU: the loader upcasts it to 16 bits
        # (formats.gpu_runs), so the weights take 16-bit memory and run as 16-bit GEMMs
        wide = "bf16" if gpu.supports("bf16") else "fp16"
        assumptions["weights_dequantized"] = (f"{weights.name} has no kernel on {gpu.name} ({gpu.architecture}): "
                                              f"upcast to {wide} at load, so sized and run as {wide}")
        weights = formats.resolve_weight_format(wide)
    if "kv_dtype" in opts:
        kv = formats.resolve_kv_format(opts["kv_dtype"])
        if kv.layout == "ggml_block":
            raise InputError("input.conflict", what=f"--kv-dtype {kv.name} is a llama.cpp cache type; use "
                             "--engine llamacpp or ollama, or fp8/int8 for a serving engine")
    else:
        kv = formats.resolve_kv_format("bf16" if gpu.supports("bf16") else "fp16")
        assumptions["kv_dtype"] = kv.name
    return weights, kv


def build_job(spec: ModelSpec, opts: dict[str, Any], assumptions: dict[str, Any]) -> tuple[Job, bool]:
    """Resolve every option and default into one job (no evaluation)."""
    task = opts.get("task") or "inference"
    if "task" not in opts:
        assumptions["task"] = task
    kind = "training" if task in TRAINING_TASKS else "inference"
    for name in opts:
        wanted = BY_NAME[name].tasks
        if wanted not in ("any", kind):
            raise InputError("input.conflict", what=f"--{name.replace('_', '-')} applies to {wanted} tasks, "
                             f"not --task {task}")
    from rigsize.memory import local_engines

    runtime.check_speculative(opts, spec.arch)
    local_engines.check_engine_options(opts)
    if opts.get("engine") in local_engines.LOCAL_ENGINES:
        return build_local_job(spec, opts, assumptions), False
    gpu = _gpu(opts, assumptions)
    if opts.get("gpus_per_node"):
        gpu = gpu.model_copy(update={"gpus_per_node": opts["gpus_per_node"]})
    opts = _torchtune_sharding(opts, task, assumptions)
    workload = _workload(opts, spec.arch, task, assumptions, spec.config)
    layout, chosen = _layout(opts, spec.arch, workload, gpu, assumptions)
    if workload.training:
        global_batch = opts.get("global_batch") or workload.batch * layout.dp
        if "global_batch" not in opts:
            assumptions["global_batch"] = global_batch
        workload = replace(workload, global_batch=global_batch)
    weights, kv = _formats(opts, spec, task, gpu, assumptions)
    engine = runtime.engine_for(gpu, max_position_embeddings=spec.arch.max_position_embeddings,
                                mla=spec.arch.attention == "mla",
                                opts=opts if not workload.training else {},
                                assumptions=assumptions if not workload.training else {})
    limit = spec.arch.max_position_embeddings
    if not workload.training and limit and engine.max_model_len > limit:
        # vLLM refuses unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 (config/model.py _get_and_verify_max_len)
        raise InputError("input.conflict", what=f"--max-model-len {engine.max_model_len:,} exceeds the model's "
                         f"max_position_embeddings {limit:,}; vLLM refuses it (unless VLLM_ALLOW_LONG_MAX_MODEL_LEN)")
    if not workload.training and workload.seq > engine.max_model_len:
        raise InputError("input.conflict", what=f"a sequence of {workload.seq:,} tokens exceeds --max-model-len "
                         f"{engine.max_model_len:,}; raise --max-model-len or shorten --prompt/--output")
    util = opts.get("gpu_memory_utilization")
    if engine.kv_budget == "sglang" and not workload.training:
        util = 1.0          # SGLang's own budget sizes the pool (memory.per_gpu._sglang_memory), not this share
        _say_sglang_budget(engine, gpu, layout, spec.arch, assumptions)
    elif engine.kv_budget == "trtllm" and not workload.training:
        util = 1.0          # TensorRT-LLM's own budget sizes the pool (memory.per_gpu.memory_per_gpu), not this share
    elif util is None:
        util = engine.gpu_memory_utilization
        if not workload.training:
            assumptions["gpu_memory_utilization"] = util
    return Job(spec, gpu, workload, layout, weights, kv, engine, util,
               global_batch_given="global_batch" in opts, sp_given="sp" in opts), chosen


def _say_sglang_budget(engine: runtime.Engine, gpu: GPU, layout: Layout, arch: Any,
                       assumptions: dict[str, Any]) -> None:
    """The SGLang budget an estimate applies, in its assumptions: the fraction (SGLang's default for this GPU
    and layout, unless given) and what it is a share of."""
    from rigsize.memory.per_gpu import multimodal_model

    multimodal = multimodal_model(arch)
    b = runtime.sglang_budget(engine, gpu, layout, arch.attention == "mla", multimodal)
    if b.fraction_source == "default":
        assumptions["mem_fraction_static"] = b.fraction
    basis = "" if b.gpu_mem_basis == "nvidia-smi" else " (the nameplate: no nvidia-smi total in the catalog)"
    rule = (f"SGLang's default for {b.gpu_mem_mib:,.0f} MiB{basis}: (total - {b.reserved_mib:,.0f} MiB reserved) "
            f"/ total, rules of SGLang {engine.budget_era}+" if b.fraction_source == "default" else "given")
    clauses = [f"SGLang's: weights + KV pool <= mem_fraction_static {b.fraction:g} ({rule}) x the memory free before "
               f"the weights load ({b.pre_load_free_bytes / 2**30:.2f} GiB: CUDA's total less the CUDA context)",
               "activations and CUDA graphs live in the rest", "one token per page",
               "sliding-window layers at the whole context (its hybrid SWA pool is not modelled)"]
    if b.factor != 1.0:
        clauses.append(f"then x {b.factor:g}: SGLang cuts it on AMD's aiter attention backend above 8,192 tokens of "
                       "context, a given fraction too")
    if multimodal and b.fraction_source == "default":
        clauses.append("SGLang lowers a multimodal model's default fraction further (adjust_mem_fraction_for_vlm), "
                       "which is not modelled")
    assumptions["memory_budget"] = "; ".join(clauses)


def _local_weights(opts: dict[str, Any], spec: ModelSpec, engine: str, assumptions: dict[str, Any]) -> WeightFormat:
    """The weight format of a local job: as given, else Ollama's library default (Q4_K_M)
    or the checkpoint's own (llama.cpp converts it to a 16-bit GGUF; mlx-lm loads it)."""
    stored, why = checkpoint_format(spec)
    if "weights" in opts:
        weights = formats.resolve_weight_format(opts["weights"])
    elif engine == "ollama":
        weights = formats.resolve_weight_format("q4_k_m")
        assumptions["weights"] = "q4_k_m"
        assumptions["weights_reason"] = "the Ollama library's default tags are Q4_K_M quantizations"
    else:
        weights = stored
        assumptions["weights"] = stored.name
        assumptions["weights_reason"] = why
    if weights.name == stored.name:
        weights = stored
    return weights


def _local_devices(opts: dict[str, Any], engine: str, assumptions: dict[str, Any]) -> tuple[GPU, tuple[GPU, ...]]:
    """The devices of a local job: ``--gpu cpu`` (the host CPU alone), a mixed ``--gpu "A,B"`` (llama.cpp's
    layer split), or ``--gpus`` copies of one ``--gpu``."""
    from rigsize.memory import local_engines

    names = [x.strip() for x in str(opts.get("gpu") or "").split(",") if x.strip()]
    if len(names) == 1 and names[0].lower() in local_engines.CPU_ONLY:
        if opts.get("gpus") not in (None, 1) or opts.get("gpu_layers") or opts.get("split_mode"):
            raise InputError("input.conflict", what="--gpu cpu runs on the host CPU alone: no --gpus, "
                             "--gpu-layers or --split-mode")
        cpu = local_engines.cpu_device(opts, assumptions)
        return cpu, (cpu,)
    if len(names) > 1:
        if engine != "llamacpp" or opts.get("split_mode") == "row":
            raise InputError("input.conflict", what="several different GPUs are planned together only for "
                             "--engine llamacpp with --split-mode layer")
        if opts.get("gpus") not in (None, len(names)):
            raise InputError("input.conflict", what=f"--gpus {opts['gpus']} contradicts the {len(names)} GPUs "
                             "named in --gpu")
        devices = tuple(resolve_gpu(x) for x in names)
        return devices[0], devices
    gpu = _gpu(opts, assumptions)
    if "gpus" not in opts:
        assumptions["gpus"] = 1
    return gpu, (gpu,) * int(opts.get("gpus") or 1)


def build_local_job(spec: ModelSpec, opts: dict[str, Any], assumptions: dict[str, Any]) -> Job:
    """A llama.cpp / Ollama / MLX job: one replica over ``--gpus`` identical devices (layer or
    row split), the layers ``--gpu-layers`` leaves on the CPU in host RAM."""
    from rigsize.memory import local_engines

    engine = opts["engine"]
    if opts.get("task", "inference") != "inference":
        raise InputError("input.conflict", what=f"--engine {engine} runs inference only")
    gpu, devices = _local_devices(opts, engine, assumptions)
    n = len(devices)
    if engine == "mlx" and n > 1:
        raise InputError("input.conflict", what="--engine mlx runs on one Apple silicon device here (--gpus 1)")
    workload = _inference_workload(opts, spec.arch, assumptions, spec.config)
    if workload.images:
        assumptions["vision_tower"] = ("the --mmproj file in F16 on the first GPU (memory.llamacpp.mmproj_bytes); "
                                       "its encoding time is not in TTFT for local engines (not modelled)")
    weights = _local_weights(opts, spec, engine, assumptions)
    eng, settings = local_engines.resolve_local(engine, gpu, devices, spec.arch, opts, assumptions, workload.seq,
                                                weights)
    if engine == "ollama" and "gpu_layers" not in opts:
        # Ollama sets num_gpu itself (api/types.go DefaultOptions NumGPU -1, "set dynamically"): the most
        # layers that fit, as rigsize sizes them (Ollama's own estimate of the buffers may differ)
        from rigsize.memory.llamacpp import most_gpu_layers_that_fit

        ngl = most_gpu_layers_that_fit(spec.arch, workload, weights, settings, local_engines.overhead_per_gpu(gpu))
        if ngl is not None and ngl < settings.gpu_layers:
            settings = replace(settings, gpu_layers=ngl)
            assumptions["gpu_layers"] = (f"{ngl} of {spec.arch.num_hidden_layers + 1} (Ollama's num_gpu default: "
                                         "the most layers that fit)")
    # the layout as the report names it: llama.cpp's layer split is a pipeline over the GPUs ("split layers and
    # KV across GPUs (pipelined)"), its row split a tensor-parallel split of each matrix
    layout = Layout(tp=n, pp=1) if settings.split_mode == "row" and n > 1 else Layout(pp=n)
    return Job(spec, gpu, workload, layout, weights, settings.kv_k, eng, 1.0, local=settings)


def validate_job(job: Job) -> None:
    if job.local is not None:
        return              # one replica, no tensor parallelism: nothing of the serving layout to check
    arch = job.spec.arch
    shape = tp_problems(arch, job.layout.tp, job.weights)    # hints that suit the weight format too
    if shape:
        raise PlanError("plan.invalid", why=shape[0])
    validate_layout(arch, job.layout, job.workload)
    problems = _group_problems(arch, job.weights, job.layout.tp, job.layout.expert_tp)
    if problems:    # name only the tp sizes every constraint allows (and the padded-checkpoint way out)
        raise replace(problems[0], good=tuple(valid_tp_sizes(arch, job.weights))).error()


def _group_problems(arch: Architecture, weights: WeightFormat, tp: int, expert_tp: int) -> list:
    """Quantization groups that tp (dense tensors) and expert-tp (experts: layout.expert_tp)
    would cut (``tp_group_problems``).  Memoized per architecture object, format and sizes: a
    layout search checks the same few tp sizes for hundreds of candidates."""
    key = (id(arch), weights, tp, expert_tp)
    hit = _GROUP_PROBLEMS.get(key)
    if hit is not None and hit[0] is arch:
        return hit[1]
    dense = [t for t in arch.tensors if not t.role.startswith("expert_")]
    experts = [t for t in arch.tensors if t.role.startswith("expert_")]
    problems = tp_group_problems(weights, dense, tp)
    if experts:
        problems += tp_group_problems(weights, experts, expert_tp)
    if len(_GROUP_PROBLEMS) > 4096:
        _GROUP_PROBLEMS.clear()
    _GROUP_PROBLEMS[key] = (arch, problems)
    return problems


_GROUP_PROBLEMS: dict[tuple, tuple[Architecture, list]] = {}


def evaluate_memory(job: Job) -> MemoryResult:
    """Memory per GPU of a job (no speed): what layout searches and suggestions need."""
    if job.local is not None:
        from rigsize.memory.llamacpp import local_memory
        from rigsize.memory.local_engines import overhead_per_gpu

        return local_memory(job.spec.arch, job.workload, job.weights, job.local, overhead_per_gpu(job.gpu))
    return memory_per_gpu(job.spec.arch, job.workload, job.layout, job.gpu, job.weights, job.kv,
                          job.engine, job.gpu_memory_utilization)


def fitting_memory(job: Job) -> MemoryResult | None:
    """The memory of a candidate job, or None if it is invalid or does not fit."""
    try:
        validate_job(job)
    except (PlanError, FormatError):
        return None
    result = evaluate_memory(job)
    return result if result.fits else None


def _batch_splits(job: Job, tp: int, pp: int) -> bool:
    """Whether the data parallelism left by tp x pp splits a global batch the user gave."""
    dp = job.layout.gpus // (tp * pp)
    return not job.global_batch_given or job.workload.global_batch % (job.workload.batch * dp) == 0


def trial_shape(job: Job, tp: int, pp: int) -> tuple[Layout, Workload] | None:
    """The layout and workload of ``training_trial(job, tp, pp)`` without building its job (the
    planner's bounds read only these); None where dp cannot split a global batch the user gave."""
    if not _batch_splits(job, tp, pp):
        return None       # this dp cannot split the batch the user asked for
    n = job.layout.gpus
    sp = job.layout.sp if job.sp_given else tp > 1
    layout = replace(job.layout, tp=tp, pp=pp, dp=n // (tp * pp), sp=sp)
    if job.global_batch_given:
        gb = job.workload.global_batch
    else:
        gb = max(job.workload.global_batch, job.workload.batch * layout.dp)
    return layout, replace(job.workload, global_batch=gb)


def training_trial(job: Job, tp: int, pp: int) -> Job | None:
    """``job`` on its GPUs with tp x pp model parallelism and data parallelism for the
    rest, as ``least_parallel_training_layout`` tries it (the planner bounds a count's
    cost over the same trials, ``trial_shape``); None where dp cannot split a global batch
    the user gave."""
    shape = trial_shape(job, tp, pp)
    if shape is None:
        return None
    return replace(job, layout=shape[0], workload=shape[1])


def least_parallel_training_layout(job: Job) -> Job:
    """Training with only ``--gpus``: the least model parallelism that fits (tp inside
    a node first, then pp), data parallelism for the rest."""
    n = job.layout.gpus
    node = job.gpu.node_size
    if job.workload.framework != "megatron":   # transformers, DeepSpeed ZeRO and FSDP scale by dp
        return job

    tried: dict[tuple[int, int], Job | None] = {}

    def trial(tp: int, pp: int) -> Job | None:     # each (tp, pp) built once: the listing and the bisection share it
        if (tp, pp) not in tried:
            tried[tp, pp] = training_trial(job, tp, pp)
        return tried[tp, pp]

    best: tuple[int, int, Job] | None = None
    for tp in [d for d in range(1, min(n, node) + 1) if n % d == 0]:
        # memory per GPU falls as pp grows, so the smallest pp that fits is found by bisection
        layers = job.spec.arch.num_hidden_layers
        # Megatron needs pp to divide the layers (layout.megatron_stage_problem)
        pps = [pp for pp in divisors(n // tp, layers) if _batch_splits(job, tp, pp)
               and (pp == 1 or megatron_stage_problem(layers, pp, job.layout.pp_first_layers,
                                                      job.layout.pp_last_layers) is None)]
        lo, hi, found = 0, len(pps) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            candidate = trial(tp, pps[mid])
            if candidate is not None and fitting_memory(candidate):
                found, hi = candidate, mid - 1
            else:
                lo = mid + 1
        if found is not None:
            key = (found.layout.tp * found.layout.pp, found.layout.pp)
            if best is None or key < best[:2]:
                best = (*key, found)
    if best is None and not _batch_splits(job, job.layout.tp, job.layout.pp):
        # say what the search could not find, not the dp of the fallback layout the user never chose
        w = job.workload
        raise PlanError("plan.invalid", why=f"no tp x pp layout on {n} GPUs both fits in memory and leaves a "
                        f"data-parallel size that splits global batch {w.global_batch} (micro-batch {w.batch}); "
                        "give a larger --global-batch (a multiple of micro-batch x dp) or --tp / --pp")
    return best[2] if best else job


def resolve_job(spec: ModelSpec, opts: dict[str, Any], assumptions: dict[str, Any]) -> tuple[Job, bool]:
    """Options -> the validated job ``estimate`` evaluates: ``build_job``, then for
    training with only ``--gpus`` the least model parallelism that fits.  Suggestions
    (``rigsize.planning.suggest``) evaluate their trials through this same function."""
    job, chosen = build_job(spec, opts, assumptions)
    if chosen and job.workload.training and job.layout.gpus > 1:
        job = least_parallel_training_layout(job)
    validate_job(job)
    return job, chosen


# --efficiency keys with their own range (0 always allowed: "not used", the common value): the roofline's p-norm
# (p < 1 would make a step slower than doing compute and memory one after the other; the fits search 1..16) and
# NVFP4's streaming fraction
_EFFICIENCY_RANGES = {
    "roofline_p": (1.0, 16.0, "the roofline's p-norm is 0 (the hard maximum) or in [1, 16]"),
    "nvfp4_memory": (1e-3, 1.5, "a fraction in [0.001, 1.5], or 0 for the common memory fraction"),
}


def parse_efficiency(text: str | None) -> dict[str, float]:
    """``"compute=0.7,memory=0.85"`` -> {"compute": 0.7, "memory": 0.85}."""
    out: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError("input.conflict", what=f"--efficiency: '{item}' is not KEY=VALUE")
        name = key.strip()
        number = parse_quantity(value, f"--efficiency {name}")
        is_time = name.endswith("_s")
        if name in out:
            raise InputError("input.conflict", what=f"--efficiency: {name} given twice; give each key once")
        if name in _EFFICIENCY_RANGES:          # keys that are neither fractions nor times
            lo, hi, what = _EFFICIENCY_RANGES[name]
            if not math.isfinite(number) or not (number == 0 or lo <= number <= hi):
                raise InputError("input.conflict", what=f"--efficiency {name}={value}: {what}")
            out[name] = number
            continue
        # a fraction below 0.001 of a peak makes times overflow to inf; a time may be 0 (a fitted value is)
        # and is at most limits.MAX_EFFICIENCY_TIME_S (the fitted ones stay under 0.4 s)
        if not math.isfinite(number) or (not 0 <= number <= limits.MAX_EFFICIENCY_TIME_S if is_time
                                         else not 1e-3 <= number <= 1.5):
            raise InputError("input.conflict", what=f"--efficiency {name}={value}: fractions must be in "
                             f"[0.001, 1.5] and times (keys ending in _s) in [0, {limits.MAX_EFFICIENCY_TIME_S:g}] "
                             "seconds")
        out[name] = number
    return out


def _profile_overrides(opts: dict[str, Any], assumptions: dict[str, Any]) -> dict[str, float]:
    if not opts.get("profile"):
        return {}
    from rigsize.speed.calibrate import load_profile, profile_overrides

    measured = profile_overrides(load_profile(opts["profile"]))
    assumptions["profile_efficiency"] = measured
    return measured

def resolve_speed(job: Job, opts: dict[str, Any], assumptions: dict[str, Any]) -> tuple[Speed, list[Note]]:
    """The efficiency row and speed settings for ``job`` (defaults echoed in
    ``assumptions``), with the notes a user should read about them."""
    if job.workload.training:
        return _training_speed_settings(job, opts, assumptions)
    from rigsize.speed.roofline import efficiency

    if job.local is not None:
        from rigsize.speed.local import local_speed_settings

        return local_speed_settings(job, opts, assumptions)
    notes: list[Note] = []
    engine_name = opts.get("engine") or "vllm"
    if "engine" not in opts:
        assumptions["engine_speed"] = engine_name
    overrides = _profile_overrides(opts, assumptions)
    overrides.update(parse_efficiency(opts.get("efficiency")))
    eff, key = efficiency("inference", job.gpu, overrides, engine=engine_name)
    if key.split(".")[1] != job.gpu.architecture:
        notes.append(Note("perf.unfitted_gpu", {"gpu": job.gpu.name, "arch": job.gpu.architecture, "row": key}))
    band = None if overrides else gpu_class_key(engine_name, job.gpu, job.spec.arch.num_experts > 0)
    rate, rate_source = _acceptance(job, opts, assumptions)
    return Speed(engine_name, eff, f"{key}: {eff.source}", band, acceptance_rate=rate,
                 acceptance_source=rate_source), notes


def _acceptance(job: Job, opts: dict[str, Any], assumptions: dict[str, Any]) -> tuple[float | None, str]:
    """The draft tokens' acceptance rate under --speculative: --acceptance-rate, else the published
    figure for this model_type and token count (data/efficiency.toml [[speculative.acceptance]]),
    else a one-line refusal: no rate is invented."""
    k = job.engine.speculative_tokens
    if not k:
        return None, ""
    if opts.get("acceptance_rate") is not None:
        return float(opts["acceptance_rate"]), "--acceptance-rate"
    from rigsize.speed.roofline import speculative_acceptance

    row = speculative_acceptance("mtp", job.spec.arch.model_type, k)
    if row is None:
        raise InputError("input.conflict", what=f"--speculative mtp with {k} draft token(s): no published acceptance "
                         f"rate for model_type {job.spec.arch.model_type}; give --acceptance-rate (DeepSeek-V3's "
                         "report: 0.85-0.90 at 1 token)")
    assumptions["acceptance_rate"] = row["value"]
    return float(row["value"]), str(row["source"])


def _offload_host(job: Job, opts: dict[str, Any], assumptions: dict[str, Any]) -> Any:
    """The host ZeRO-Offload's CPU step runs on: --host-cpu; else the GPU's reference server's CPUs
    where the CPU catalog has them (DGX H100/H200: two Xeon 8480, data/servers.toml), their memory
    bandwidth times the sockets; else local inference's assumed desktop host."""
    from rigsize.hardware.servers import reference_for
    from rigsize.memory.local_engines import host_for

    ref = reference_for(job.gpu) if not opts.get("host_cpu") else None
    row = ref[1] if ref and job.gpu.name in ref[1]["gpu_names"] else {}
    name = opts.get("host_cpu") or row.get("host_cpu")
    host = host_for(job.gpu, {"host_cpu": name}, assumptions)
    assumptions.pop("host_ram", None)          # the CPU step's speed does not read the RAM size
    sockets = int(row.get("host_sockets", 1)) if not opts.get("host_cpu") else 1
    if row.get("host_cpu") and host.memory_bytes_per_second:
        host = replace(host, name=f"{sockets}x {host.name}", memory_bytes_per_second=host.memory_bytes_per_second * sockets)
        assumptions["host_cpu"] = f"{host.name} ({ref[0]}'s CPUs, data/servers.toml; give --host-cpu)"
    return host


def _training_speed_settings(job: Job, opts: dict[str, Any], assumptions: dict[str, Any]) -> tuple[Speed, list[Note]]:
    from rigsize.speed.training import networks, training_efficiency

    notes: list[Note] = []
    network = opts.get("network") or "ib-ndr-400"
    if network not in networks():
        raise InputError("input.bad_choice", option="--network", value=network, choices=", ".join(networks()))
    if "network" not in opts:
        assumptions["network"] = network
    per_node = opts.get("gpus_per_node") or job.gpu.node_size
    vpp = opts.get("vpp", 1)
    if vpp > 1:
        per_stage = job.spec.arch.num_hidden_layers // job.layout.pp
        if job.layout.pp == 1 or per_stage % vpp:
            raise InputError("input.conflict", what=f"--vpp {vpp} needs pp > 1 and must divide the {per_stage} "
                             "layers of each pipeline stage")
    if "gpus_per_node" not in opts:
        assumptions["gpus_per_node"] = per_node
    eff, key = training_efficiency(job.gpu.architecture, job.workload.framework)
    # no row fitted on this family's runs of this framework: another row is borrowed (speed.training)
    borrowed = key not in (f"{job.gpu.architecture}.{job.workload.framework}", "default") or (
        key == "default" and (job.gpu.architecture, job.workload.framework) != ("ampere", "megatron"))
    if borrowed:
        notes.append(Note("perf.training_framework", {"framework": job.workload.framework,
                                                      "family": job.gpu.architecture, "row": f"training.{key}"}))
    measured = _profile_overrides(opts, assumptions)
    # a measured or given GEMM fraction governs every matmul, the attention core's too (attention=0:
    # the core at the projections' fraction, speed.training.attention_seconds), not the fitted fraction
    if "compute" in measured:       # a calibrated GPU: its large-GEMM efficiency is e_max
        eff = replace(eff, e_max=measured["compute"], attention=0.0,
                      source=f"measured by rigsize calibrate ({opts['profile']})")
    given = parse_efficiency(opts.get("efficiency"))
    unknown = set(given) - {"compute", "link", "collective_latency_s"}
    if unknown:
        raise InputError("input.conflict", what=f"--efficiency {', '.join(sorted(unknown))}: training takes "
                         "compute (the large-GEMM fraction), link and collective_latency_s")
    if given:
        eff = replace(eff, e_max=given.get("compute", eff.e_max), link=given.get("link", eff.link),
                      attention=0.0 if "compute" in given else eff.attention,
                      collective_latency_s=given.get("collective_latency_s", eff.collective_latency_s),
                      source="--efficiency")
    host = None
    if job.layout.offload != "none":
        host = _offload_host(job, opts, assumptions)
        if host.memory_bytes_per_second is None:
            raise InputError("input.conflict", what=f"--offload: the host CPU {host.name} has no published memory "
                             "bandwidth; give --host-cpu with one from `rigsize cpus`")
        notes.append(Note("perf.offload", {"host": host.name, "per_node": min(job.layout.gpus, per_node)}))
    source = f"borrowed from training.{key}: {eff.source}" if borrowed else f"training.{key}: {eff.source}"
    # no published offloaded run was compared: the band of the class's runs does not cover it
    band = None if (measured or given or host is not None) else gpu_class_key(job.workload.framework, job.gpu,
                                                          job.spec.arch.num_experts > 0)
    precision = opts.get("precision", "bf16")
    if precision == "fp8" and not job.gpu.flops("fp8"):
        raise InputError("input.conflict", what=f"--precision fp8: {job.gpu.name} has no FP8 tensor cores; use bf16 "
                         "or a GPU with FP8 (Hopper, Ada, Blackwell, MI300X)")
    if precision == "fp8":
        assumptions["precision_memory"] = ("fp8 GEMMs change speed only: memory is sized as bf16 mixed precision "
                                           "(Transformer Engine keeps bf16 weights and fp32 master weights; its "
                                           "FP8 weight copies and amax history are not counted)")
    return Speed(job.workload.framework, eff, source, band, network, per_node, vpp, opts.get("train_tokens"),
                 precision, host=host), notes
