"""Local inference memory: llama.cpp (and Ollama, which runs llama.cpp's ggml engine) and MLX.

Where every tensor lives, as llama.cpp's loader places it (src/llama-model.cpp ``load_tensors``
at the commit in data/local_engines.toml):

* layer ``il`` is on a GPU when ``il >= i_gpu_start = max(n_layer + 1 - n_gpu_layers, 0)``; the
  output layer (final norm, output.weight) is "layer n_layer", so it is on the GPU whenever
  ``n_gpu_layers >= 1``; the input layer (token_embd) is always in host memory; a tied output
  reads a copy of token_embd on the output's device;
* with several GPUs and ``--split-mode layer``, GPU layers go to device
  ``upper_bound(cumulative splits, (il - i_gpu_start) / act_gpu_layers)``, the splits in
  proportion to each device's memory; with ``row``, each GPU layer's matrices are split by rows
  in that proportion and everything else sits on the main GPU;
* ``--n-cpu-moe N`` keeps the expert tensors of layers 0..N-1 in host memory;
* the KV cache holds ``n_ctx`` cells for every attention layer, on that layer's device, K and V in
  their own types (``--cache-type-k/-v``); sliding-window layers hold ``min(n_ctx, window +
  n_ubatch)`` cells (llama-kv-cache-iswa.cpp ``size_swa``);
* the compute buffer is the largest intermediate the reserved graph of ``n_ubatch`` tokens needs
  (``_compute_bytes``).

MLX (mlx-lm): everything lives in unified memory; the KV cache grows in steps of 256 tokens for
the tokens a request holds (no context is reserved up front).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from rigsize.hardware.gpus import GPU
from rigsize.memory.per_gpu import KVCapacity, MemoryResult, Parts
from rigsize.model import formats
from rigsize.model.architecture import Architecture
from rigsize.model.formats import KVFormat, WeightFormat
from rigsize.model.tensors import Tensor
from rigsize.planning.layout import Stage, Workload

LOCAL_ENGINES = ("llamacpp", "ollama", "mlx")
GGML_ENGINES = ("llamacpp", "ollama")
ALL_LAYERS = 10_000          # -ngl 999-style "every layer"


@cache
def data() -> dict[str, Any]:
    return tomllib.loads(resources.files("rigsize.data").joinpath("local_engines.toml").read_text())


@dataclass(frozen=True)
class Host:
    """The host system: CPU memory bandwidth and FP32 rate for offloaded layers, and its RAM."""

    name: str
    ram_bytes: int
    memory_bytes_per_second: float | None
    fp32_flops: float | None
    pcie_bytes_per_second: float
    unified: bool = False           # the same memory as the GPU (Apple silicon, APUs)
    source: str = ""


@dataclass(frozen=True)
class LocalSettings:
    """A local engine's settings, every default resolved."""

    engine: str                     # llamacpp | ollama | mlx
    version: str
    n_ctx: int                      # cells the KV cache holds (mlx: the request's tokens, rounded up)
    n_ubatch: int                   # tokens per compute pass (mlx: prefill_step_size)
    gpu_layers: int                 # llama.cpp -ngl (0 .. n_layer + 1)
    n_cpu_moe: int
    flash_attn: bool
    split_mode: str                 # layer | row
    kv_k: KVFormat
    kv_v: KVFormat
    host: Host
    devices: tuple[GPU, ...]        # the GPUs, main first
    n_parallel: int = 1


@dataclass(frozen=True)
class LocalMemory(MemoryResult):
    """``MemoryResult`` with the host side: what lives in system RAM and whether it fits."""

    host_bytes: int = 0
    host_usable_bytes: int = 0
    host_details: dict[str, int] = field(default_factory=dict)
    devices: tuple[tuple[str, Parts, int], ...] = ()      # (device, parts, usable bytes) per GPU
    unified_total_bytes: int = 0                          # unified memory: GPU + host share one pool
    placement: dict[str, int] = field(default_factory=dict)   # weight bytes per device, "host" included
    device_is_host: bool = False       # --gpu cpu: the one device is the host CPU, its memory system RAM

    @property
    def fits(self) -> bool:
        return self.gpu_short_bytes == 0 and self.host_short_bytes == 0

    @property
    def gpu_short_bytes(self) -> int:
        """How far the fullest GPU's parts exceed its usable memory (0 when every GPU holds its own;
        always 0 on the host CPU alone, whose memory ``host_short_bytes`` checks whole)."""
        if self.device_is_host:
            return 0
        return max([p.total - usable for _, p, usable in self.devices] + [0])

    @property
    def host_short_bytes(self) -> int:
        """How far what lives in system RAM exceeds it (unified memory: GPU and host parts
        against the one pool); 0 when it fits."""
        if self.unified_total_bytes:
            return max(self.per_gpu.total + self.host_bytes - self.unified_total_bytes, 0)
        return max(self.host_bytes - self.host_usable_bytes, 0)


# ----------------------------------------------------------------------------------
# Where each layer lives
# ----------------------------------------------------------------------------------

def i_gpu_start(n_layer: int, gpu_layers: int) -> int:
    """llama-model.cpp: the first layer on a GPU; layers below it stay on the CPU."""
    return max(n_layer + 1 - gpu_layers, 0)


def _splits(devices: tuple[GPU, ...]) -> list[float]:
    """Cumulative split points in proportion to each device's memory (llama.cpp's default
    tensor_split is each device's free memory; the nameplate stands in for it here)."""
    total = sum(d.usable_memory_bytes for d in devices)
    out, acc = [], 0.0
    for d in devices:
        out.append(acc / total)
        acc += d.usable_memory_bytes
    return out


def layer_device(il: int, n_layer: int, s: LocalSettings) -> int | None:
    """The GPU index layer ``il`` (``n_layer`` = the output layer) lives on, or None for host."""
    start = i_gpu_start(n_layer, s.gpu_layers)
    if il < start or not s.devices:
        return None
    if len(s.devices) == 1 or s.split_mode == "row":
        return 0
    act = min(s.gpu_layers, n_layer + 1)
    frac = (il - start) / act
    splits = _splits(s.devices)
    return max(i for i, x in enumerate(splits) if x <= frac)     # std::upper_bound(...) - 1


def tensor_bytes(t: Tensor, arch: Architecture, fmt: WeightFormat) -> int:
    """Bytes of ``t`` in ``fmt`` (GGUF: llama-quantize's type for it)."""
    return _bytes_by_name(arch, fmt)[t.name]


def _bytes_by_name(arch: Architecture, fmt: WeightFormat) -> dict[str, int]:
    """Every tensor's bytes, computed once per (architecture, format): placement and decode read
    them many times (the GGUF mix looks at the whole model, so it is built once here)."""
    key = (id(arch), fmt)
    hit = _BYTES.get(key)
    if hit is not None and hit[0] is arch:
        return hit[1]
    mix = formats.gguf_mix(arch.tensors, arch.num_hidden_layers) if fmt.layout == "gguf" else None
    # a vision tower is not in the model's GGUF: llama.cpp loads it only from a separate
    # --mmproj file (not modelled), so the local engines size the text model alone
    table = {t.name: 0 if t.role in ("vision", "vision_proj")
             else math.ceil(formats.tensor_bits(fmt, t, arch.num_hidden_layers, mix=mix) / 8)
             for t in arch.tensors}
    if len(_BYTES) > 256:
        _BYTES.clear()
    _BYTES[key] = (arch, table)
    return table


_BYTES: dict[tuple, tuple[Architecture, dict[str, int]]] = {}


def mmproj_bytes(arch: Architecture) -> int:
    """The vision tower and projector as llama.cpp loads them for image requests: a separate --mmproj
    GGUF, in F16 as rigsize prices a GGUF's vision tensors (an assumption: the mmproj-*-F16.gguf files
    publishers ship), "offloaded to GPU by default; to disable this, add --no-mmproj-offload" (llama.cpp
    docs/multimodal.md).  0 for a text model."""
    return sum(2 * t.numel for t in arch.tensors if t.role in ("vision", "vision_proj"))


def weight_placement(arch: Architecture, fmt: WeightFormat, s: LocalSettings) -> dict[str, int]:
    """Weight bytes per device ("gpu0", "gpu1", ... and "host")."""
    n = arch.num_hidden_layers
    out: dict[str, int] = {f"gpu{i}": 0 for i in range(len(s.devices))}
    out["host"] = 0
    tied = not any(t.role == "lm_head" for t in arch.tensors)
    shares = row_shares(s)
    for t in arch.tensors:
        b = tensor_bytes(t, arch, fmt)
        if t.layer is None and t.role in ("embed", "pos_embed", "other"):
            out["host"] += b                                   # the input layer: always on the CPU
            if t.role == "embed" and tied:                      # the output reads a copy on its device
                _add(out, layer_device(n, n, s), b)
            continue
        il = n if t.layer is None else t.layer
        dev = layer_device(il, n, s)
        if dev is not None and t.role.startswith("expert_") and t.layer is not None and t.layer < s.n_cpu_moe:
            dev = None                                          # --n-cpu-moe: the experts stay in RAM
        if dev is not None and shares and len(t.shape) >= 2 and t.layer is not None:
            for i, share in enumerate(shares):              # --split-mode row: matrices by rows
                out[f"gpu{i}"] += math.ceil(b * share)
            continue
        _add(out, dev, b)
    return out


def row_shares(s: LocalSettings) -> list[float]:
    """--split-mode row: each GPU's share of every matrix (by memory; none for a layer split)."""
    if s.split_mode != "row" or len(s.devices) < 2:
        return []
    total = sum(d.usable_memory_bytes for d in s.devices)
    return [d.usable_memory_bytes / total for d in s.devices]


def _add(out: dict[str, int], dev: int | None, b: int) -> None:
    out["host" if dev is None else f"gpu{dev}"] += b


# ----------------------------------------------------------------------------------
# KV cache and compute buffers
# ----------------------------------------------------------------------------------

def kv_cells(arch: Architecture, layer: int, s: LocalSettings) -> int:
    """Cells layer ``layer`` holds: n_ctx; a sliding-window layer min(n_ctx, window + n_ubatch)
    (llama.cpp, swa_full off)."""
    wins = arch.layer_windows or ()
    window = wins[layer] if wins and layer < len(wins) else None
    if window and s.engine in GGML_ENGINES:
        return min(s.n_ctx, window * s.n_parallel + s.n_ubatch)
    return s.n_ctx


def kv_layer_bytes_per_cell(arch: Architecture, layer: int, s: LocalSettings) -> int:
    """One cell of one layer: a K row and a V row of n_head_kv x head_dim values in their types
    (MLA: the latent and the RoPE key, in the K type)."""
    if not arch.is_attention_layer(layer):
        return 0
    if arch.attention == "mla":
        kv_b = next(t for t in arch.tensors if t.role == "attn_kv_b" and len(t.shape) == 2)
        rank = kv_b.shape[1]
        return formats.mla_kv_bytes_per_token(s.kv_k, rank, arch.head_dim - rank)
    heads, d = arch.num_key_value_heads, arch.head_dim
    half_k = formats.attention_kv_bytes_per_token(s.kv_k, heads, d) // 2 if s.kv_k.layout != "ggml_block" \
        else _row(s.kv_k, heads * d)
    half_v = formats.attention_kv_bytes_per_token(s.kv_v, heads, d) // 2 if s.kv_v.layout != "ggml_block" \
        else _row(s.kv_v, heads * d)
    return half_k + half_v


def _row(kv: KVFormat, elements: int) -> int:
    return math.ceil(elements / kv.block_size) * kv.block_bytes


def kv_placement(arch: Architecture, s: LocalSettings) -> dict[str, int]:
    """KV bytes per device: each layer's cache on its layer's device (row split: the main GPU)."""
    out: dict[str, int] = {f"gpu{i}": 0 for i in range(len(s.devices))}
    out["host"] = 0
    n = arch.num_hidden_layers
    for il in range(n):
        b = kv_cells(arch, il, s) * kv_layer_bytes_per_cell(arch, il, s)
        _add(out, layer_device(il, n, s), b)
    return out


def compute_bytes(arch: Architecture, s: LocalSettings, ctx: int, logits: bool) -> int:
    """The compute buffer of a graph of ``n_ubatch`` tokens against ``ctx`` KV cells: the
    largest of the logits (f32, one row per token: llama.cpp reserves with n_outputs =
    n_tokens), the attention scores (f32 n_head x ctx x n_ubatch without flash attention),
    the FFN intermediates (gate, up and their product in f32), each with the f32 hidden state
    and its normed copy that live beside it.  ggml-alloc reuses freed tensors, so the peak is
    one of these, not their sum (an estimate: llama.cpp prints the measured figure)."""
    u = s.n_ubatch
    h = arch.hidden_size
    hidden = 2 * u * h * 4
    terms = [hidden + 3 * u * arch.intermediate_size * 4]
    expert = next((t for t in arch.tensors if t.role == "expert_down"), None)
    if arch.num_experts and expert is not None:
        terms.append(hidden + 3 * u * arch.experts_per_token * expert.shape[1] * 4)
    if not s.flash_attn:
        terms.append(hidden + u * ctx * arch.num_attention_heads * 4)
    if logits and s.engine != "mlx":
        # mlx-lm evaluates only the cache state during prefill (lazy graphs): the logits of the last
        # token alone are computed, so no n_ubatch x vocab buffer
        terms.append(u * h * 4 + u * arch.vocab_size * 4)
    return max(terms)


def host_compute_bytes(arch: Architecture, s: LocalSettings, ctx: int) -> int:
    """The host-side (CUDA_Host / CPU) buffer when every layer is offloaded: the token
    embeddings of one ubatch gathered from token_embd on the CPU (f32) and the KQ mask input,
    n_kv x n_ubatch in F32 whether or not flash attention casts it to F16 on the device
    (llama-graph.cpp build_attn_inp_*: self_kq_mask GGML_TYPE_F32, self_kq_mask_cnv = ggml_cast)."""
    return s.n_ubatch * arch.hidden_size * 4 + ctx * s.n_ubatch * 4


# ----------------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------------

def local_memory(arch: Architecture, workload: Workload, fmt: WeightFormat, s: LocalSettings,
                 overhead_per_gpu: int) -> LocalMemory:
    """Memory on every device and in host RAM for one local job."""
    n = arch.num_hidden_layers
    weights = weight_placement(arch, fmt, s)
    mmproj = mmproj_bytes(arch) if workload.images else 0
    if mmproj:      # requests with images load the --mmproj file, on the first GPU unless --no-mmproj-offload
        weights = {**weights, ("gpu0" if s.devices else "host"): weights["gpu0" if s.devices else "host"] + mmproj}
    kv = kv_placement(arch, s)
    ctx = s.n_ctx
    start = i_gpu_start(n, s.gpu_layers)
    cpu_layers = min(start, n)
    devices = []
    stages = []
    per_dev_layers = _device_layers(n, s)
    for i, gpu in enumerate(s.devices):
        name = f"gpu{i}"
        out_here = layer_device(n, n, s) == i
        has_layers = bool(per_dev_layers.get(i)) or out_here
        comp = compute_bytes(arch, s, ctx, logits=out_here) if has_layers else 0
        parts = Parts(weights=weights[name], kv_cache=kv[name], activations=comp,
                      overhead=overhead_per_gpu if has_layers else 0)
        usable = _gpu_usable(gpu)
        devices.append((name, parts, usable))
        layers = per_dev_layers.get(i, range(0))
        stages.append((Stage(i, layers, first=i == 0, last=out_here), parts))
    host_compute = host_compute_bytes(arch, s, ctx)
    if cpu_layers or not s.devices:
        host_compute = max(host_compute, compute_bytes(arch, s, ctx, logits=not s.devices))
    host_details = {"host/weights": weights["host"], "host/kv_cache": kv["host"], "host/compute": host_compute}
    host_bytes = sum(host_details.values())
    main = max(devices, key=lambda d: d[1].total / max(d[2], 1)) if devices else ("host", Parts(), 0)
    unified = s.host.unified and bool(s.devices)
    details = {f"{name}/{k}": getattr(p, k) for name, p, _ in devices for k in ("weights", "kv_cache", "activations")}
    details.update(host_details)
    if mmproj:
        details[("gpu0" if s.devices else "host") + "/mmproj"] = mmproj
    details["host/total"] = host_bytes
    details["host/usable"] = s.host.ram_bytes
    if unified:
        details["host/unified_bytes"] = s.host.ram_bytes
    busiest = [i for i, d in enumerate(devices) if d is main]
    kv_seq = sum(kv.values())
    limit = arch.max_position_embeddings or max(ctx, 1)
    longest = longest_context(arch, s, weights, overhead_per_gpu, max(limit, ctx))
    cap = KVCapacity(pool_bytes=sum(kv.values()), tokens=ctx, max_model_len=ctx,
                     concurrency_at_max_model_len=float(s.n_parallel), max_context_single=longest,
                     max_context_at_concurrency=longest, starts=True)
    result = LocalMemory(
        per_gpu=main[1], stage=busiest[0] if busiest else 0, usable_bytes=main[2], kv_bytes_per_sequence=kv_seq,
        max_concurrency=None, details=details, stages=tuple(stages), kv=cap,
        host_bytes=host_bytes, host_usable_bytes=s.host.ram_bytes, host_details=host_details,
        devices=tuple(devices), unified_total_bytes=s.host.ram_bytes if unified else 0, placement=weights,
        device_is_host=all(getattr(g, "kind", "gpu") == "cpu" for g in s.devices) and bool(s.devices))
    if result.host_short_bytes:
        details["host/short"] = result.host_short_bytes       # the report says host RAM is what is short
        if result.device_is_host:
            details["host/device_is_host"] = 1
    fits = result.fits and workload.seq <= ctx
    return _with_concurrency(result, s.n_parallel if fits else 0)


def _fits_at(arch: Architecture, s: LocalSettings, weights: dict[str, int], overhead: int, ctx: int) -> bool:
    """Whether the same placement fits with a context of ``ctx`` cells (KV and compute buffers resized)."""
    from dataclasses import replace

    t = replace(s, n_ctx=ctx)
    kv = kv_placement(arch, t)
    n = arch.num_hidden_layers
    layers = _device_layers(n, t)
    gpu_total = 0
    for i, gpu in enumerate(s.devices):
        out_here = layer_device(n, n, t) == i
        busy = bool(layers.get(i)) or out_here
        total = weights[f"gpu{i}"] + kv[f"gpu{i}"] + (compute_bytes(arch, t, ctx, out_here) + overhead if busy else 0)
        if total > _gpu_usable(gpu):
            return False
        gpu_total = max(gpu_total, total)
    host = weights["host"] + kv["host"] + host_compute_bytes(arch, t, ctx)
    if min(i_gpu_start(n, t.gpu_layers), n) or not s.devices:
        host = weights["host"] + kv["host"] + max(host_compute_bytes(arch, t, ctx),
                                                  compute_bytes(arch, t, ctx, logits=not s.devices))
    if s.host.unified and s.devices:
        return gpu_total + host <= s.host.ram_bytes
    return host <= s.host.ram_bytes


def longest_context(arch: Architecture, s: LocalSettings, weights: dict[str, int], overhead: int, limit: int) -> int:
    """The longest context (llama.cpp -c) the same layers fit with, up to ``limit``; 0 if none."""
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits_at(arch, s, weights, overhead, mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _with_concurrency(r: LocalMemory, n: int) -> LocalMemory:
    from dataclasses import replace

    return replace(r, max_concurrency=n)


def _device_layers(n: int, s: LocalSettings) -> dict[int, range]:
    out: dict[int, list[int]] = {}
    for il in range(n):
        dev = layer_device(il, n, s)
        if dev is not None:
            out.setdefault(dev, []).append(il)
    return {d: range(v[0], v[-1] + 1) for d, v in out.items()}


def _gpu_usable(gpu: GPU) -> int:
    """What the GPU may hold: discrete GPUs their visible memory; unified memory the share
    the OS lets the GPU wire (macOS iogpu.wired_limit_mb default, the catalog's
    gpu_wired_fraction; the whole pool where no source gives one)."""
    frac = getattr(gpu, "gpu_wired_fraction", None)
    if getattr(gpu, "unified_memory", False) and isinstance(frac, (int, float)):
        return int(gpu.memory_bytes * frac)
    return gpu.usable_memory_bytes


def most_gpu_layers_that_fit(arch: Architecture, workload: Workload, fmt: WeightFormat, s: LocalSettings,
                             overhead_per_gpu: int) -> int | None:
    """The largest -ngl whose memory fits (bisection: memory on the GPUs grows with it), or None."""
    from dataclasses import replace

    n = arch.num_hidden_layers
    lo, hi, best = 0, n + 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        r = local_memory(arch, workload, fmt, replace(s, gpu_layers=mid), overhead_per_gpu)
        gpus_ok = all(p.total <= u for _, p, u in r.devices)
        if gpus_ok:
            if r.fits:
                best = mid
            lo = mid + 1
        else:
            hi = mid - 1
    return best
