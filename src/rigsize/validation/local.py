"""Validation of local inference (llama.cpp, Ollama, MLX) against public measurements nobody here made.

- ``data/validation/llamacpp_bench.toml``: llama-bench results from llama.cpp's performance
  discussions and pull requests (prompt ``pp`` and generation ``tg`` tokens/s per model, GGUF
  type and device).  Each run is re-run through ``rigsize.speed.local`` with the run's device,
  preset, format, -ngl and flash attention.  Rows marked ``split = "fit"`` are the only ones
  tools/fit_local_efficiency.py reads; ``reserved`` rows are compared here alone.
- ``data/validation/llamacpp_memory.toml``: buffer sizes llama.cpp prints at start-up (model
  buffer per device, KV cache K/V, compute buffers), compared with rigsize.memory.llamacpp.

Targets per device family on reserved rows (issue 19): generation within 15% median, prompt
within 25%.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Any

from rigsize.validation.common import Row

BENCH_SOURCE = "llama.cpp llama-bench"
MEMORY_SOURCE = "llama.cpp start-up logs"
TARGETS = {"tg_tokens_per_s": 0.15, "pp_tokens_per_s": 0.25}
# GGUF types as llama-bench prints them -> rigsize weight formats
FORMATS = {"Q4_0": "q4_0", "Q8_0": "q8_0", "F16": "fp16", "BF16": "bf16", "Q4_K_M": "q4_k_m", "Q4_K": "q4_k_m",
           "Q4_K_S": "q4_k_s", "Q5_K_M": "q5_k_m", "Q5_K_S": "q5_k_s", "Q6_K": "q6_k", "Q3_K_M": "q3_k_m", "Q2_K": "q2_k",
           "IQ4_XS": "iq4_xs",
           "IQ4_NL": "iq4_nl", "MXFP4": "mxfp4_moe",
           "MLX-4BIT": "mlx-4bit", "MLX-8BIT": "mlx-8bit"}      # mlx-lm rows (backend = "mlx")


def run_engine(run: dict[str, Any]) -> str:
    """The engine a run was measured with: mlx-lm for backend "mlx", else llama.cpp (llama-bench)."""
    return "mlx" if str(run.get("backend", "")).lower() == "mlx" else "llamacpp"


def _load(name: str) -> dict[str, Any]:
    path = resources.files("rigsize.data").joinpath("validation", name)
    if not path.is_file():
        return {}
    return tomllib.loads(path.read_text())


@cache
def bench_runs() -> tuple[dict[str, Any], ...]:
    return tuple(_load("llamacpp_bench.toml").get("run", ()))


@cache
def memory_logs() -> tuple[dict[str, Any], ...]:
    data = _load("llamacpp_memory.toml")
    return tuple(data.get("log", data.get("run", ())))


def run_options(run: dict[str, Any]) -> dict[str, Any] | None:
    """``estimate`` options reproducing one llama-bench run, or None when rigsize cannot express it."""
    fmt = FORMATS.get(str(run.get("format", "")).upper())
    if fmt is None:
        return None
    n_prompt, n_gen = int(run.get("n_prompt") or 0), int(run.get("n_gen") or 0)
    engine = run_engine(run)
    opts: dict[str, Any] = {"engine": engine, "weights": fmt, "gpu": run["device"], "output": max(n_gen, 1),
                            "prompt": max(n_prompt, 1), "max_model_len": max(n_prompt + n_gen, 512) + 1}
    if engine == "mlx":         # mlx-lm keeps every layer on the GPU and has no -ngl / -fa settings
        return opts
    if str(run.get("backend", "")).lower() == "cpu":    # a CPU-only run: device is a data/cpus.toml name
        opts.update(gpu="cpu", host_cpu=run["device"])
        if isinstance(run.get("flash_attn"), bool):
            opts["flash_attn"] = run["flash_attn"]
        return opts
    ngl = run.get("ngl")
    if isinstance(ngl, int) and ngl >= 0:
        opts["gpu_layers"] = ngl
    if isinstance(run.get("flash_attn"), bool):
        opts["flash_attn"] = run["flash_attn"]
    if run.get("host_cpu"):
        opts["host_cpu"] = run["host_cpu"]
    return opts


def run_job(run: dict[str, Any]) -> Any:
    """The local job of a run, or None."""
    from rigsize.errors import RigsizeError
    from rigsize.model.inputs import resolve_model
    from rigsize.planning.job import build_job
    from rigsize.planning.options import parse_options

    opts = run_options(run)
    if opts is None:
        return None
    try:
        spec = resolve_model(str(run["model"]), True)
        job, _ = build_job(spec, parse_options(opts), {})
    except RigsizeError:
        return None
    return job


def predict_run(run: dict[str, Any], eff: Any = None) -> dict[str, float] | None:
    """Predicted pp and tg tokens/s of one llama-bench run (``eff``: a LocalEfficiency; default
    the packaged fitted row of the run's family; mlx-lm rows take the device family's row for engine
    mlx, i.e. the Apple Metal row, as no MLX row is fitted).  llama-bench's pp test processes n_prompt
    tokens from an empty cache; its tg test generates n_gen tokens from an empty cache."""
    from rigsize.errors import RigsizeError
    from rigsize.speed.local import device_family, local_efficiency, prompt_seconds, token_seconds

    job = run_job(run)
    if job is None:
        return None
    if eff is None:
        engine = run_engine(run)
        family = device_family(job.gpu) if engine == "mlx" else (run_family(run) or device_family(job.gpu))
        eff, _ = local_efficiency(family, engine, job.gpu.vendor.lower())
    arch, fmt, s = job.spec.arch, job.weights, job.local
    out: dict[str, float] = {}
    if run.get("pp_tokens_per_s") and int(run.get("n_prompt") or 0) > 0:
        n = int(run["n_prompt"])
        try:       # a device without a published fp16 rate has no prompt prediction; its tg still counts
            out["pp_tokens_per_s"] = n / prompt_seconds(arch, fmt, replace(s, n_ctx=max(s.n_ctx, n)), eff, n)[0]
        except RigsizeError:
            pass
    if run.get("tg_tokens_per_s") and int(run.get("n_gen") or 0) > 0:
        try:
            t, _ = token_seconds(arch, fmt, s, eff, int(run["n_gen"]) // 2)
            out["tg_tokens_per_s"] = 1.0 / t
        except RigsizeError:
            pass
    return out or None


def run_family(run: dict[str, Any]) -> str | None:
    """The run's family: the backend llama-bench printed (metal, cuda, rocm, vulkan, ...), "mlx" for mlx-lm
    rows, else the device's."""
    from rigsize.errors import RigsizeError
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.speed.local import BACKEND_FAMILY, device_family

    backend = str(run.get("backend", "")).lower()
    if backend == "mlx":
        return "mlx"
    if backend in BACKEND_FAMILY:
        return BACKEND_FAMILY[backend]
    try:
        return device_family(resolve_gpu(str(run["device"])))
    except RigsizeError:
        return None


def bench_rows(split: str | None = None) -> list[Row]:
    """Measured vs predicted tokens/s, one row per run and metric, class = the device family."""
    rows = []
    for run in bench_runs():
        if split is not None and run.get("split") != split:
            continue
        pred = predict_run(run)
        family = run_family(run)
        if not pred or family is None:
            continue
        for metric, value in pred.items():
            rows.append(Row(BENCH_SOURCE, str(run["id"]), metric, str(run.get("split", "reserved")),
                            float(run[metric]), value, cls=f"local.{family}", model=str(run["model"])))
    return rows


_HOST_BUFFERS = ("CPU", "CPU_Mapped")


def _is_host(buffer: str) -> bool:
    """llama.cpp buffer names: CUDA0 / ROCm0 / Vulkan0 / MTL0 are device memory; CPU, CPU_Mapped and
    <backend>_Host are host memory (pinned or mapped)."""
    return buffer in _HOST_BUFFERS or buffer.endswith("_Host")


def _split_mib(table: dict[str, Any] | None) -> tuple[float, float]:
    """(device bytes, host bytes) of a {buffer = MiB} table."""
    dev = host = 0.0
    for name, mib in (table or {}).items():
        if _is_host(str(name)):
            host += float(mib) * 2**20
        else:
            dev += float(mib) * 2**20
    return dev, host


def log_options(log: dict[str, Any]) -> dict[str, Any] | None:
    """``estimate`` options reproducing one start-up log, or None when rigsize cannot express it."""
    fmt = FORMATS.get(str(log.get("format", "")).upper())
    if fmt is None or str(log.get("device", "unknown")) == "unknown":
        return None
    engine = "ollama" if str(log.get("engine", "")).lower() == "ollama" else "llamacpp"
    opts: dict[str, Any] = {"engine": engine, "weights": fmt, "gpu": log["device"], "output": 1, "prompt": 1,
                            "max_model_len": int(log["n_ctx"])}
    offloaded = str(log.get("offloaded_layers", ""))
    if "/" in offloaded:
        opts["gpu_layers"] = int(offloaded.split("/")[0])
    if log.get("type_k"):
        opts["kv_dtype"] = str(log["type_k"]).lower()
    if isinstance(log.get("flash_attn"), bool):
        opts["flash_attn"] = log["flash_attn"]
    return opts


def memory_rows() -> list[Row]:
    """Printed buffer sizes vs rigsize's, per log and buffer kind: the model buffers on the device and on
    the host, the KV cache, the device and host compute buffers."""
    from rigsize.errors import RigsizeError
    from rigsize.planning.estimate import estimate

    rows = []
    for log in memory_logs():
        opts = log_options(log)
        if opts is None:
            continue
        try:
            r = estimate(str(log["model"]), offline=True, **opts)
        except RigsizeError:
            continue
        d = r.memory.details
        gpu_w = sum(v for k, v in d.items() if k.startswith("gpu") and k.endswith("/weights"))
        gpu_c = sum(v for k, v in d.items() if k.startswith("gpu") and k.endswith("/activations"))
        model_dev, model_host = _split_mib(log.get("model_buffer_mib"))
        comp_dev, comp_host = _split_mib(log.get("compute_buffer_mib"))
        kv = sum(float(k.get("buffer_mib", 0)) for k in log.get("kv", ())) * 2**20
        pairs = [("model_buffer_device", model_dev, gpu_w), ("model_buffer_host", model_host, d.get("host/weights")),
                 ("kv_cache", kv, r.memory.kv_bytes_per_sequence), ("compute_buffer_device", comp_dev, gpu_c),
                 ("compute_buffer_host", comp_host, d.get("host/compute"))]
        for metric, measured, predicted in pairs:
            if measured > 0 and predicted is not None:
                rows.append(Row(MEMORY_SOURCE, str(log["id"]), metric, "published", measured, float(predicted)))
    return rows


REPORTS_SOURCE = "local reports (--have)"


@cache
def local_reports() -> tuple[dict[str, Any], ...]:
    return tuple(_load("local_reports.toml").get("report", ()))


def report_options(rep: dict[str, Any]) -> dict[str, Any] | None:
    """``rigsize plan --have`` options (and the format and context) of one public report, or None."""
    fmt = FORMATS.get(str(rep.get("format", "")).upper())
    ctx = rep.get("context")
    if fmt is None or not isinstance(ctx, int):
        return None
    opts: dict[str, Any] = {"engine": "llamacpp", "have": rep["have"], "weights": fmt,
                            "max_model_len": max(int(ctx), 2), "prompt": 1, "output": 1}
    if rep.get("split_mode") in ("layer", "row"):
        opts["split_mode"] = rep["split_mode"]
    return opts


def report_checks() -> list[tuple[dict[str, Any], Any]]:
    """Each report with rigsize's ``plan --have`` answer for its model, format and context (None: no plan fits)."""
    from rigsize.errors import RigsizeError
    from rigsize.planning.search import search

    out = []
    for rep in local_reports():
        opts = report_options(rep)
        if opts is None:
            continue
        try:
            plan = search(str(rep["model"]), task="inference", offline=True, **opts)
        except RigsizeError:
            out.append((rep, None))
            continue
        recs = plan["recommendations"]
        out.append((rep, recs[0] if recs else None))
    return out


def planned_tg(rep: dict[str, Any], rec: dict[str, Any]) -> float | None:
    """Generation tokens/s of the planned job at the report's context (speed.local with the packaged
    family row); None where the device has no bandwidth figure."""
    from rigsize.errors import RigsizeError
    from rigsize.model.inputs import resolve_model
    from rigsize.planning.job import build_job
    from rigsize.planning.options import parse_options
    from rigsize.speed.local import device_family, local_efficiency, token_seconds

    inputs = {k: v for k, v in rec["inputs"].items() if k != "model"}
    try:
        job, _ = build_job(resolve_model(str(rep["model"]), True), parse_options(inputs), {})
        eff, _ = local_efficiency(device_family(job.gpu), "llamacpp")
        t, _ = token_seconds(job.spec.arch, job.weights, job.local, eff, int(rep["context"]))
    except RigsizeError:
        return None
    return 1.0 / t


def report_rows() -> list[Row]:
    """Reported vs predicted generation tokens/s where rigsize's plan runs the report's setup."""
    rows = []
    for rep, rec in report_checks():
        if rec is None or not isinstance(rep.get("tg_tokens_per_s"), (int, float)):
            continue
        tg = planned_tg(rep, rec)
        if tg is not None:
            rows.append(Row(REPORTS_SOURCE, str(rep["id"]), "tg_tokens_per_s", "reported",
                            float(rep["tg_tokens_per_s"]), tg, model=str(rep["model"])))
    return rows


def local_rows() -> list[Row]:
    return bench_rows() + memory_rows() + report_rows()
