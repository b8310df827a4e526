"""Local inference speed (llama.cpp, Ollama, MLX): one request, layers where the memory model put them.

* Generation (decode) is bound by memory bandwidth: the time per token is the sum, over the
  memories the weights live in, of the bytes read there per token over that memory's
  bandwidth (the GPU's, or the host RAM's for layers left on the CPU), the KV cache read with
  the layer that owns it.  A MoE layer reads only the experts a token is routed to
  (``experts_per_token / num_experts`` of its expert bytes).  With ``--split-mode row`` the GPUs
  read their row shares at the same time (the slowest share counts), and each layer's partial
  results cross PCIe (two transfers of the hidden state per layer).
* Prompt processing is bound by compute: 2 x active parameters x prompt tokens, plus causal
  attention (2 x 2 x q_dim x n^2 / 2 per attention layer), at the GPU's dense fp16 rate.
  llama.cpp computes batches of 32+ tokens on the GPU even for weights left in host RAM
  (op offload, ``no_op_offload = false``): those weights then cross PCIe once per ubatch.
  With no GPU, the CPU's FP32 rate, at one of two fitted fractions per weight tensor: llama.cpp's
  CPU backend runs prompt batches of the types in ``CPU_TILED_TYPES`` through tiled GEMM kernels
  (llamafile's tinyBLAS) and every other type (the K-quants, IQ4_XS, ...) through its per-row
  dot products, which reach a smaller share of the FP32 peak (``cpu_compute_vec_dot``).
* Each layer adds a fixed time per generated token (``layer_overhead_s``: kernel launches and
  synchronisation, which do not shrink with the bytes read), and each MoE layer more
  (``moe_layer_overhead_s``: the router's matmul, softmax and top-k, the expert-id matmul's
  dispatch and the weighted sum of the experts' outputs, ops a dense layer does not run), fitted
  where a family has enough MoE fit runs (tools/fit_local_efficiency.py), else 0.
* The fraction of each peak reached is EMPIRICAL, fitted per device family by
  tools/fit_local_efficiency.py on the ``split = "fit"`` rows of
  data/validation/llamacpp_bench.toml only (data/efficiency.toml ``[local.*]``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from typing import Any

from rigsize.errors import InputError
from rigsize.hardware.gpus import GPU
from rigsize.memory.llamacpp import (
    LocalSettings,
    kv_cells,
    kv_layer_bytes_per_cell,
    layer_device,
    row_shares,
    tensor_bytes,
)
from rigsize.messages import Note
from rigsize.model.architecture import Architecture
from rigsize.model.formats import WeightFormat

# bytes of one hidden-state element llama.cpp moves between devices (f32 activations)
_ACT_BYTES = 4


@dataclass(frozen=True)
class LocalEfficiency:
    """Achievable fractions of datasheet peaks for local inference (EMPIRICAL)."""

    memory: float = 0.7          # decode: fraction of the device's memory bandwidth
    compute: float = 0.5         # prompt: fraction of the device's dense fp16 FLOP/s
    cpu_memory: float = 0.7      # decode of layers in host RAM: fraction of the host's bandwidth
    cpu_compute: float = 0.5     # prompt on the CPU: fraction of its FP32 FLOP/s (CPU_TILED_TYPES)
    cpu_compute_vec_dot: float = 0.5   # the same for the other GGUF types (per-row dot products)
    pcie: float = 0.7            # weights streamed host -> GPU for prompt batches
    token_overhead_s: float = 0.0
    layer_overhead_s: float = 0.0   # decode: fixed time per layer per token (kernel launches, synchronisation)
    moe_layer_overhead_s: float = 0.0   # decode: more per MoE layer (router, top-k, expert-id dispatch)
    source: str = ""


# GGUF types whose prompt batches llama.cpp's CPU backend hands to llamafile's tiled GEMM (tinyBLAS) on x86
# AVX/AVX2/AVX-512: the cases of ``llamafile_sgemm``'s type switch (ggml/src/ggml-cpu/llamafile/sgemm.cpp,
# llama.cpp commit 02e86cf, read 2026-12-01): F32, BF16, F16, Q8_0, Q4_0, Q5_0 and IQ4_NL (IQ4_NL since
# llama.cpp PR #9422, merged 2024-09; Q4_0 / Q8_0 since PR #6414, 2024-04; on ARM only F32, F16, Q8_0 and
# Q4_0 have a case).  Any other type "should fall back to a general matmul routine" (the function's comment):
# ggml's per-row vec_dot kernels.  sgemm is called from ggml_compute_forward_mul_mat only: routed experts
# (mul_mat_id) always take the per-row path.  NOT MODELLED (a stated limit): the CPU "repack" extra buffer,
# which since 2025 tiles Q4_K on AVX2 (llama.cpp PR #12332), Q4_0 / IQ4_NL 8x8 on AVX2 and more types on ARM,
# and AMX on Sapphire / Granite Rapids (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K, IQ4_XS): which kernel runs then
# depends on the build and the CPU's instruction set, and the two fitted fractions average over the builds of
# the fit rows.
CPU_TILED_TYPES = frozenset({"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "IQ4_NL"})

# llama.cpp backend (llama-bench's backend column) -> the family an efficiency row is fitted per
BACKEND_FAMILY = {"metal": "apple", "cuda": "cuda", "rocm": "rocm", "hip": "rocm", "vulkan": "vulkan",
                  "sycl": "sycl", "cpu": "cpu"}


def device_family(gpu: GPU) -> str:
    """The family an efficiency row is fitted per: llama.cpp's backend for the device (its kernels set
    the fractions reached): Metal on Apple silicon, CUDA on NVIDIA (GeForce, workstation and DGX Spark
    alike), ROCm/HIP on AMD (Radeon and Ryzen AI Max), SYCL on Intel, the CPU backend for CPUs."""
    if getattr(gpu, "kind", "gpu") in ("apple", "cpu"):
        return "apple" if gpu.kind == "apple" else "cpu"
    vendor = gpu.vendor.lower()
    return {"nvidia": "cuda", "amd": "rocm", "intel": "sycl"}.get(vendor, vendor)


@cache
def _rows() -> dict[str, Any]:
    text = resources.files("rigsize.data").joinpath("efficiency.toml").read_text()
    return tomllib.loads(text).get("local", {})


# GPU vendors whose kernels differ inside one backend: llama.cpp's Vulkan backend runs its matrix
# multiplications on NV_coopmat2 on NVIDIA and on KHR_cooperative_matrix on AMD and Intel (ggml_vulkan's
# start-up line prints "matrix cores: NV_coopmat2" or "KHR_coopmat"), so its prompt fraction is fitted per
# vendor where fit rows allow ([local.vulkan.<vendor>], tools/fit_local_efficiency.py)
VENDOR_ROWS = ("nvidia", "amd", "intel")


def local_efficiency(family: str, engine: str = "llamacpp", vendor: str | None = None) -> tuple[LocalEfficiency, str]:
    """The fitted row for ``family`` (per engine where one was fitted; per GPU ``vendor`` where
    ``[local.<family>.<vendor>]`` was fitted), else ``[local.default]``."""
    rows = _rows()
    row = rows.get(family, {})
    if isinstance(row.get(engine), dict):
        row, key = row[engine], f"local.{family}.{engine}"
    elif vendor in VENDOR_ROWS and isinstance(row.get(vendor), dict) and "memory" in row[vendor]:
        row, key = row[vendor], f"local.{family}.{vendor}"
    elif "memory" in row:
        key = f"local.{family}"
    else:
        row, key = rows.get("default", {}), "local.default"
    names = {f.name for f in fields(LocalEfficiency)}
    eff = LocalEfficiency(**{k: v for k, v in row.items() if k in names})
    return eff, key


# ----------------------------------------------------------------------------------
# Bytes and FLOPs per device
# ----------------------------------------------------------------------------------

def _is_expert(t: Any) -> bool:
    return t.role.startswith("expert_")


def decode_bytes(arch: Architecture, fmt: WeightFormat, s: LocalSettings, context: int) -> dict[str, float]:
    """Bytes read per generated token from each memory ("gpu0".., "host"), ``context`` tokens
    already in the cache.  The input embedding reads one row (negligible, not counted)."""
    n = arch.num_hidden_layers
    out: dict[str, float] = {f"gpu{i}": 0.0 for i in range(len(s.devices))}
    out["host"] = 0.0
    routed = arch.experts_per_token / arch.num_experts if arch.num_experts else 1.0
    tied = not any(t.role == "lm_head" for t in arch.tensors)
    shares = row_shares(s)
    for t in arch.tensors:
        if t.layer is None and t.role in ("embed", "pos_embed", "other", "vision", "vision_proj"):   # vision: per image
            if t.role == "embed" and tied:        # the tied output reads the whole matrix
                _put(out, layer_device(n, n, s), float(tensor_bytes(t, arch, fmt)))
            continue
        b = float(tensor_bytes(t, arch, fmt)) * (routed if _is_expert(t) else 1.0)
        il = n if t.layer is None else t.layer
        dev = layer_device(il, n, s)
        if dev is not None and _is_expert(t) and t.layer is not None and t.layer < s.n_cpu_moe:
            dev = None
        if dev is not None and shares and len(t.shape) >= 2 and t.layer is not None:
            for i, share in enumerate(shares):      # --split-mode row: each GPU reads its rows
                out[f"gpu{i}"] += b * share
            continue
        _put(out, dev, b)
    cells = min(context, s.n_ctx)
    for il in range(n):
        used = min(cells, kv_cells(arch, il, s))
        _put(out, layer_device(il, n, s), float(used * kv_layer_bytes_per_cell(arch, il, s)))
    return out


def _put(out: dict[str, float], dev: int | None, b: float) -> None:
    out["host" if dev is None else f"gpu{dev}"] += b


def _matmul_params(arch: Architecture) -> int:
    """Active parameters a token's matmuls use: the embedding lookup left out, a tied output counted."""
    from rigsize.model.architecture import active_params

    embed = sum(t.numel for t in arch.tensors if t.role in ("embed", "pos_embed"))
    tied = not any(t.role == "lm_head" for t in arch.tensors)
    return active_params(arch) - embed + (embed if tied else 0)


def prompt_flops(arch: Architecture, tokens: int) -> float:
    """2 x active matmul parameters x tokens + causal attention 2 x 2 x q_dim x tokens^2 / 2 per
    attention layer (Kaplan et al. 2020 Table 1's 2N per token; the attention term with the causal
    half)."""
    matmul = _matmul_params(arch)
    attn_layers = sum(1 for i in range(arch.num_hidden_layers) if arch.is_attention_layer(i))
    q_dim = arch.num_attention_heads * arch.head_dim
    return 2.0 * matmul * tokens + 2.0 * attn_layers * q_dim * tokens * tokens


# ----------------------------------------------------------------------------------
# Times
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LocalSpeed:
    prompt_seconds: float
    token_seconds: float                  # one generated token at the mean context of the output
    decode_split: dict[str, float]        # seconds per token by memory
    prompt_bound: str
    decode_bound: str


def _bandwidth(gpu: GPU) -> float:
    bw = gpu.hbm_bytes_per_second
    if not isinstance(bw, (int, float)):
        raise InputError("input.conflict", what=f"{gpu.name} has no published memory bandwidth; speed unknown")
    return float(bw)


def token_seconds(arch: Architecture, fmt: WeightFormat, s: LocalSettings, eff: LocalEfficiency,
                  context: int) -> tuple[float, dict[str, float]]:
    """Seconds per generated token, and its split by memory."""
    read = decode_bytes(arch, fmt, s, context)
    split: dict[str, float] = {}
    for i, gpu in enumerate(s.devices):
        split[f"gpu{i}"] = read[f"gpu{i}"] / (_bandwidth(gpu) * eff.memory)
    if read["host"]:
        if not s.host.memory_bytes_per_second:
            raise InputError("input.conflict", what=f"host {s.host.name} has no memory bandwidth in the CPU "
                             "catalog; give --host-cpu")
        rate = s.host.memory_bytes_per_second * (eff.memory if s.host.unified else eff.cpu_memory)
        split["host"] = read["host"] / rate
    gpu_time = sum(v for k, v in split.items() if k != "host")
    if s.split_mode == "row" and len(s.devices) > 1:
        gpu_time = max(v for k, v in split.items() if k != "host")
        hops = 2 * arch.num_hidden_layers * arch.hidden_size * _ACT_BYTES * (len(s.devices) - 1)
        split["pcie"] = hops / (s.host.pcie_bytes_per_second * eff.pcie)
        gpu_time += split["pcie"]
    fixed = (eff.token_overhead_s + arch.num_hidden_layers * eff.layer_overhead_s
             + len(arch.moe_layers) * eff.moe_layer_overhead_s)
    if fixed:
        split["fixed"] = fixed
    return gpu_time + split.get("host", 0.0) + fixed, split


def prompt_seconds(arch: Architecture, fmt: WeightFormat, s: LocalSettings, eff: LocalEfficiency,
                   tokens: int) -> tuple[float, str]:
    """Seconds to process a prompt of ``tokens``, and what bounds it."""
    if not s.devices:
        if not s.host.fp32_flops:
            raise InputError("input.conflict", what=f"host {s.host.name} has no FP32 rate in the CPU catalog")
        return _cpu_prompt(arch, fmt, tokens, s.host.fp32_flops, eff), "compute"
    if all(getattr(g, "kind", "gpu") == "cpu" for g in s.devices):     # --gpu cpu: the CPU's FP32 rate
        fp32 = s.devices[0].flops("fp32")
        if not fp32:
            raise InputError("input.conflict", what=f"{s.devices[0].name} has no FP32 rate in the CPU catalog; "
                             "prompt speed unknown")
        return _cpu_prompt(arch, fmt, tokens, fp32, eff), "compute"
    flops = prompt_flops(arch, tokens)
    peak = sum((g.flops("fp16") or g.flops("bf16") or 0.0) for g in s.devices) / len(s.devices)
    if not peak:
        raise InputError("input.conflict", what=f"{s.devices[0].name} has no published fp16 rate; speed unknown")
    compute = flops / (peak * eff.compute)
    host_bytes = decode_bytes(arch, fmt, s, 0)["host"] if not s.host.unified else 0.0
    if host_bytes and tokens >= 32:       # op offload: host weights cross PCIe once per ubatch
        ubatches = -(-tokens // s.n_ubatch)
        transfer = ubatches * host_bytes / (s.host.pcie_bytes_per_second * eff.pcie)
        if transfer > compute:
            return transfer, "communication"
        return compute, "compute"
    return compute, "compute"


def vec_dot_share(arch: Architecture, fmt: WeightFormat) -> float:
    """The share of a prompt token's matmul FLOPs that llama.cpp's CPU backend runs as per-row dot
    products (``_matmul_split``)."""
    row_wise, total = _matmul_split(arch, fmt)
    return row_wise / total if total else 0.0


def _matmul_split(arch: Architecture, fmt: WeightFormat) -> tuple[float, float]:
    """(per-row, all) matmul parameters a prompt token uses on the CPU: per-row are weights whose GGUF
    type is not in ``CPU_TILED_TYPES`` and every routed expert whatever its type (mul_mat_id never
    reaches sgemm); routed experts are weighted by the share of them a token uses, a tied output counts
    its embedding matrix.  Formats that are not GGUF are 16-bit and dense here (--engine llamacpp takes
    GGUF only): all tiled."""
    hit = _SPLIT.get((id(arch), fmt))
    if hit is not None and hit[0] is arch:
        return hit[1]
    from rigsize.model import formats

    mix = formats.gguf_mix(arch.tensors, arch.num_hidden_layers) if fmt.layout == "gguf" else None
    routed = arch.experts_per_token / arch.num_experts if arch.num_experts else 1.0
    tied = not any(t.role == "lm_head" for t in arch.tensors)
    total = row_wise = 0.0
    for t in arch.tensors:
        if len(t.shape) < 2 or t.role in ("norm", "bias", "router", "pos_embed", "vision", "vision_proj", "other"):
            continue
        if t.role == "embed" and not tied:      # a lookup, not a matmul
            continue
        work = t.numel * (routed if _is_expert(t) else 1.0)
        total += work
        if mix is not None and (_is_expert(t) or formats.gguf_tensor_type(fmt, t, mix) not in CPU_TILED_TYPES):
            row_wise += work
    if len(_SPLIT) > 256:
        _SPLIT.clear()
    _SPLIT[(id(arch), fmt)] = (arch, (row_wise, total))
    return row_wise, total


_SPLIT: dict[tuple, tuple[Architecture, tuple[float, float]]] = {}


def _cpu_prompt(arch: Architecture, fmt: WeightFormat, tokens: int, fp32: float, eff: LocalEfficiency) -> float:
    """Seconds for a ``tokens`` prompt on a CPU of ``fp32`` peak FLOP/s: 2 x the per-row parameters x
    tokens at ``cpu_compute_vec_dot``, the rest of ``prompt_flops`` (tiled matmuls, attention) at
    ``cpu_compute``."""
    slow = 2.0 * _matmul_split(arch, fmt)[0] * tokens
    fast = prompt_flops(arch, tokens) - slow
    return fast / (fp32 * eff.cpu_compute) + slow / (fp32 * eff.cpu_compute_vec_dot)


def local_speed(arch: Architecture, fmt: WeightFormat, s: LocalSettings, eff: LocalEfficiency, prompt: int,
                output: int) -> LocalSpeed:
    pp, pbound = prompt_seconds(arch, fmt, s, eff, prompt)
    tg, split = token_seconds(arch, fmt, s, eff, prompt + output // 2)
    bound = max(split, key=split.get) if split else "memory"
    decode = {"pcie": "communication", "fixed": "overhead"}.get(bound, "memory")
    return LocalSpeed(pp, tg, split, pbound, decode)


# ----------------------------------------------------------------------------------
# Hooks for planning.job / planning.evaluate
# ----------------------------------------------------------------------------------

def local_speed_settings(job: Any, opts: dict[str, Any], assumptions: dict[str, Any]) -> tuple[Any, list[Note]]:
    """The ``Speed`` of a local job: the fitted family row, with --efficiency overrides."""
    from dataclasses import replace

    from rigsize.planning.job import Speed, parse_efficiency

    family = device_family(job.gpu)
    eff, key = local_efficiency(family, job.local.engine)
    notes: list[Note] = []
    if key == "local.default":      # no llama-bench run of this family was fitted
        notes.append(Note("perf.unfitted_gpu", {"gpu": job.gpu.name, "arch": family, "row": key}))
    given = parse_efficiency(opts.get("efficiency"))
    if given:
        known = {f.name for f in fields(LocalEfficiency)} - {"source"}
        unknown = set(given) - known
        if unknown:
            raise InputError("input.bad_choice", option="--efficiency", value=", ".join(sorted(unknown)),
                             choices=", ".join(sorted(known)))
        eff = replace(eff, **given, source="--efficiency")
    return Speed(job.local.engine, eff, f"{key}: {eff.source}", None), notes


def local_performance(job: Any, result: Any, notes: list[Note]) -> Any:
    """The report's performance block for a local job that fits."""
    from rigsize.report import Bound, InferencePerformance
    from rigsize.units import GiB

    if not result.fits:
        short = max(result.per_gpu.total - result.usable_bytes, result.host_bytes - result.host_usable_bytes)
        notes.append(Note("perf.not_fit", {"short_gib": max(short, 0) / GiB}))
        return None
    w = job.workload
    eff = job.speed.efficiency
    try:
        sp = local_speed(job.spec.arch, job.weights, job.local, eff, w.prompt, w.output)
    except InputError as err:
        why = str(err)
        try:        # the prompt rate is unknown (no fp16 peak): generation, bound by bandwidth, still is
            tg, _ = token_seconds(job.spec.arch, job.weights, job.local, eff, w.prompt + w.output // 2)
            why += f"; generation alone: {1 / tg:,.1f} tokens/s (memory-bound)"
        except InputError:
            pass
        notes.append(Note("perf.unknown", {"why": why}))
        return None
    ttft = sp.prompt_seconds + sp.token_seconds
    e2e = ttft + sp.token_seconds * max(w.output - 1, 0)
    split = {f"decode_s_per_token/{k}": round(v, 6) for k, v in sp.decode_split.items()}
    figures = {f.name: getattr(eff, f.name) for f in fields(LocalEfficiency) if f.name != "source"}
    return InferencePerformance(
        ttft_seconds=ttft, tpot_seconds=sp.token_seconds, itl_seconds=sp.token_seconds, e2e_seconds=e2e,
        output_tokens_per_second=1.0 / sp.token_seconds,
        output_tokens_per_second_per_gpu=1.0 / sp.token_seconds / max(len(job.local.devices), 1),
        requests_per_second=1.0 / e2e, max_concurrency=result.max_concurrency, running=1,
        bound=Bound(prefill=sp.prompt_bound, decode=sp.decode_bound),
        efficiency={**figures, **split, "prompt_tokens_per_second": round(w.prompt / sp.prompt_seconds, 2)},
        efficiency_source=job.speed.source, error_band={},
    )
