"""``rigsize.estimate``: one model, one job, one layout, no search.

The flow (see STYLE.md): parse options -> resolve the model -> count -> report.
Later issues add hardware, memory per GPU, speed and cost to the same report.
"""

from __future__ import annotations

from typing import Any

from rigsize import formats
from rigsize.architecture import active_params, breakdown
from rigsize.models import ModelSpec, resolve_model
from rigsize.options import parse_options
from rigsize.report import EstimateReport, ModelReport

_TORCH_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "half": "fp16", "float": "fp32"}


def checkpoint_format(spec: ModelSpec) -> tuple[str, str]:
    """The weight format the checkpoint is stored in, and why rigsize thinks so."""
    if spec.checkpoint is not None and spec.checkpoint.weight_format:
        return spec.checkpoint.weight_format, "GGUF general.file_type"
    q = spec.config.get("quantization_config")
    if isinstance(q, dict):
        method = str(q.get("quant_method", "")).lower()
        bits = q.get("bits")
        if method == "fp8":
            return ("fp8-block" if q.get("weight_block_size") else "fp8"), "config quantization_config"
        if method in ("gptq", "awq") and bits in (4, 8):
            name = f"{method}-int{bits}"
            if name != "awq-int8":
                return name, "config quantization_config"
        if method == "bitsandbytes":
            if q.get("load_in_4bit"):
                return str(q.get("bnb_4bit_quant_type", "fp4")).lower(), "config quantization_config"
            if q.get("load_in_8bit"):
                return "llm-int8", "config quantization_config"
    dtype = spec.config.get("torch_dtype") or spec.config.get("dtype")
    if isinstance(dtype, str) and dtype in _TORCH_DTYPES:
        return _TORCH_DTYPES[dtype], "config torch_dtype"
    return "bf16", "default (config names no dtype)"


def model_report(spec: ModelSpec, weights: str | None = None, kv_dtype: str = "bf16") -> ModelReport:
    """The ``model`` block: counts, bytes per KV token and weight bytes."""
    arch = spec.arch
    weight_fmt = formats.resolve_weight_format(weights or checkpoint_format(spec)[0])
    kv_fmt = formats.resolve_kv_format(kv_dtype)
    ckpt = spec.checkpoint
    return ModelReport(
        name=spec.name, source=spec.source, origin=spec.origin, approximate=spec.approximate,
        model_type=arch.model_type, params=arch.params, active_params=active_params(arch),
        stored_params=ckpt.stored_params if ckpt else None,
        stored_bytes=ckpt.stored_bytes if ckpt else None,
        kv_bytes_per_token=formats.kv_bytes_per_token(arch, kv_fmt),
        kv_dtype=kv_fmt.name,
        weight_bytes=formats.weights_bytes(weight_fmt, arch.tensors, arch.num_hidden_layers),
        weight_format=weight_fmt.name, breakdown=breakdown(arch),
        num_hidden_layers=arch.num_hidden_layers, hidden_size=arch.hidden_size,
        max_position_embeddings=arch.max_position_embeddings,
        config=dict(spec.config) if spec.approximate else None,
    )


def estimate(model: str | ModelSpec, **options: Any) -> EstimateReport:
    """Size ``model`` for a job.  Options are those of ``rigsize estimate --help``
    (snake_case or hyphenated keys; strings like ``"8k"`` accepted).

    >>> r = estimate("qwen2-72b")
    >>> r.model.params
    72706203648
    """
    opts = parse_options(options)
    spec = model if isinstance(model, ModelSpec) else resolve_model(model, opts.get("offline", False))
    assumptions: dict[str, Any] = {}
    if "weights" not in opts:
        fmt, why = checkpoint_format(spec)
        assumptions["weights"] = fmt
        assumptions["weights_reason"] = why
    if "kv_dtype" not in opts:
        assumptions["kv_dtype"] = "bf16"
    report = model_report(spec, opts.get("weights"), opts.get("kv_dtype", "bf16"))
    return EstimateReport(
        model=report, inputs={"model": model if isinstance(model, str) else spec.name, **opts},
        assumptions=assumptions, warnings=[str(w) for w in spec.warnings],
    )
