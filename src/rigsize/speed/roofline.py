"""Hardware limits: achievable compute, memory bandwidth and collectives.

Peaks come from the GPU catalog (datasheets); the achievable fractions of them are
*empirical* assumptions from ``data/efficiency.toml``, each labelled with how it was
obtained (fitted on which measurements), overridable with ``--efficiency KEY=VALUE``.
They are never folded into the catalog's peaks.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from functools import cache
from importlib import resources
from typing import Any

from rigsize.errors import InputError
from rigsize.hardware.gpus import GPU
from rigsize.model.formats import WeightFormat


@dataclass(frozen=True)
class Efficiency:
    """Achievable fractions of peak and fixed costs (empirical; see data/efficiency.toml)."""

    compute: float              # fraction of dense peak FLOP/s reached by large GEMMs
    memory: float               # fraction of peak HBM bandwidth reached by streaming reads
    attention_compute: float    # fraction of peak reached by attention kernels (prefill)
    link: float                 # fraction of per-direction link bandwidth reached by collectives
    step_overhead_s: float      # per engine step: launches, scheduling, sampling (seconds)
    collective_latency_s: float # per collective call (seconds)
    ttft_overhead_s: float = 0.0  # per request before its first token: API, tokenization, scheduling
    prefill_compute: float = 0.0  # fraction of peak for prefill tokens' GEMMs (0: same as compute)
    layer_overhead_s: float = 0.0  # per decoder layer per step: kernel launches and small ops
    moe_layer_overhead_s: float = 0.0  # per MoE layer per step: routing, permutation, grouped GEMM set-up
    nvfp4_memory: float = 0.0   # fraction of peak bandwidth NVFP4 weight streaming reaches (0: same as memory)
    roofline_p: float = 0.0     # a step's compute and memory times combine as their p-norm (0: the hard maximum)
    source: str = ""


@cache
def _table() -> dict[str, Any]:
    return tomllib.loads(resources.files("rigsize.data").joinpath("efficiency.toml").read_text())


def speculative_acceptance(method: str, model_type: str, tokens: int) -> dict[str, Any] | None:
    """The published acceptance rate row for a speculative method, model_type and draft token
    count (data/efficiency.toml [[speculative.acceptance]]), or None where none is published."""
    for row in _table().get("speculative", {}).get("acceptance", []):
        if row["method"] == method and model_type in row["model_types"] and row["num_speculative_tokens"] == tokens:
            return dict(row)
    return None


def efficiency(kind: str, gpu: GPU, overrides: dict[str, float] | None = None,
               engine: str | None = None) -> tuple[Efficiency, str]:
    """The efficiency row for ``kind`` ("inference"/"training") on ``gpu``'s
    architecture (and ``engine``, where rows per engine exist), falling back to the
    ``default`` row; returns it and the row's key."""
    rows = _table()[kind]
    # the GPU family's own row (per engine where fitted per engine), else the row it is
    # borrowed from (``default.transfer_from``), whose key then names another family
    for family in (gpu.architecture, rows["default"]["transfer_from"]):
        table = rows.get(family, {})
        if engine and isinstance(table.get(engine), dict):
            row, key = table[engine], f"{family}.{engine}"
            break
        if "compute" in table:
            row, key = table, family
            break
    eff = Efficiency(**{f.name: row[f.name] for f in fields(Efficiency) if f.name in row})
    if overrides:
        known = {f.name for f in fields(Efficiency)} - {"source"}
        for name, value in overrides.items():
            if name not in known:
                raise InputError("input.bad_choice", option="--efficiency", value=name, choices=", ".join(sorted(known)))
        if "memory" in overrides and "nvfp4_memory" not in overrides and eff.nvfp4_memory and eff.memory:
            # a measured or chosen streaming fraction (a --profile's copy bandwidth, --efficiency memory=) moves
            # NVFP4's with it: the fitted NVFP4 fraction is kept as its ratio to the common one, not as a figure
            # that would silently outrank the user's (capped at the 1.5 any fraction may take)
            ratio = eff.nvfp4_memory * float(overrides["memory"]) / eff.memory
            overrides = {**overrides, "nvfp4_memory": min(1.5, ratio)}
        eff = replace(eff, **overrides)
    return eff, f"{kind}.{key}"


def compute_dtype(fmt: WeightFormat, gpu: GPU) -> str:
    """The dtype the matrix units run for weights in ``fmt``: fp8 formats run in fp8 on
    GPUs with fp8 tensor cores, NVFP4 in fp4 on GPUs with fp4 ones; weight-only formats (GPTQ, AWQ, GGUF, NF4) dequantize to
    16-bit; everything else runs in bf16 (fp16 where bf16 is missing)."""
    if fmt.name in ("fp8", "fp8-block") and gpu.flops("fp8"):
        return "fp8"
    if fmt.name == "int8" and gpu.flops("int8"):
        return "int8"
    if fmt.name == "nvfp4" and gpu.flops("fp4"):     # Blackwell runs NVFP4 GEMMs on FP4 tensor cores
        return "fp4"
    if fmt.name == "fp32":
        return "tf32" if gpu.flops("tf32") else "fp32"
    return "bf16" if gpu.flops("bf16") else "fp16"


def peak_flops(gpu: GPU, dtype: str) -> float:
    value = gpu.flops(dtype) or gpu.flops("bf16") or gpu.flops("fp16")
    if not value:
        raise InputError("input.conflict", what=f"{gpu.name} has no published {dtype} peak; "
                         "describe it with --gpu-spec to estimate speed")
    return value


def peak_bandwidth(gpu: GPU) -> float:
    if not isinstance(gpu.hbm_bytes_per_second, (int, float)):
        raise InputError("input.conflict", what=f"{gpu.name} has no published memory bandwidth; "
                         "describe it with --gpu-spec to estimate speed")
    return float(gpu.hbm_bytes_per_second)


def link_bandwidth(gpu: GPU) -> float:
    """Per-direction GPU-to-GPU bandwidth inside a node (bytes/s)."""
    bw = gpu.interconnect.per_direction_bytes_per_second
    if not isinstance(bw, (int, float)):
        raise InputError("input.conflict", what=f"{gpu.name} has no published interconnect bandwidth; "
                         "describe it with --gpu-spec to estimate speed")
    return float(bw)


# The network an inference estimate assumes between nodes (the training default of
# planning.job too): one 400 Gb/s NDR port per GPU, efficiency.toml [network.ib-ndr-400].
INFERENCE_NETWORK = "ib-ndr-400"


def spans_nodes(gpu: GPU, span: int) -> bool:
    """A group of ``span`` consecutive GPUs leaves the GPU fabric: more GPUs than one server
    (``gpu.node_size``, after --gpus-per-node) or, on rack-scale parts, its NVLink domain."""
    return span > gpu.scale_up(gpu.node_size)


# PCIe x16 per direction, by generation (PCI-SIG: 8 / 16 / 32 GT/s with 128b/130b encoding for
# 3.0 / 4.0 / 5.0; 6.0 runs 64 GT/s in FLIT mode, 242 payload bytes of 256); x16 / 8 bits.
PCIE_X16 = {"gen3": 8e9 * 16 / 8 * 128 / 130, "gen4": 16e9 * 16 / 8 * 128 / 130, "gen5": 32e9 * 16 / 8 * 128 / 130,
            "gen6": 64e9 * 16 / 8 * 242 / 256}


def pcie_bytes_per_second(gpu: GPU, fallback: float) -> float:
    """The GPU's host link per direction from the catalog's ``pcie`` ("gen5 x16"), else ``fallback``."""
    import re

    m = re.match(r"(gen\d)\s*x(\d+)", str(gpu.pcie).lower())
    if m and m.group(1) in PCIE_X16:
        return PCIE_X16[m.group(1)] * int(m.group(2)) / 16
    return fallback


def fabric_bandwidth(gpu: GPU, span: int) -> float:
    """Per-direction per-GPU bandwidth of a collective over ``span`` GPUs of one server: the
    interconnect's rate, except that NVLink bridges join only ``bridge_group`` cards (A100 /
    H100 PCIe and NVL: pairs), so a wider group is as fast as its PCIe hops."""
    ic = gpu.interconnect
    if ic.kind == "nvlink-bridge" and span > ic.bridge_group:
        return pcie_bytes_per_second(gpu, PCIE_X16["gen4"])
    return link_bandwidth(gpu)


def group_bandwidth(gpu: GPU, span: int) -> float:
    """Per-direction per-GPU bandwidth of a collective over ``span`` consecutive GPUs: the
    GPU fabric inside the scale-up domain (``fabric_bandwidth``), the ``INFERENCE_NETWORK``
    across nodes."""
    if not spans_nodes(gpu, span):
        return fabric_bandwidth(gpu, span)
    from rigsize.speed.training import networks

    return float(networks()[INFERENCE_NETWORK]["per_gpu_bytes_per_second"])


def allreduce_seconds(n_bytes: float, ranks: int, bandwidth: float, eff: Efficiency) -> float:
    """Ring all-reduce: each rank sends and receives 2 (n - 1) / n of the buffer
    (Patarasuk & Yuan 2009; NCCL's "bus bandwidth" convention, nccl-tests
    doc/PERFORMANCE.md), plus a fixed latency per call."""
    if ranks <= 1:
        return 0.0
    return 2 * (ranks - 1) / ranks * n_bytes / (bandwidth * eff.link) + eff.collective_latency_s


def allgather_seconds(n_bytes: float, ranks: int, bandwidth: float, eff: Efficiency) -> float:
    """Ring all-gather or reduce-scatter of a buffer of ``n_bytes`` (the full size):
    (n - 1) / n of it crosses each link (nccl-tests doc/PERFORMANCE.md)."""
    if ranks <= 1:
        return 0.0
    return (ranks - 1) / ranks * n_bytes / (bandwidth * eff.link) + eff.collective_latency_s


def roofline(compute: float, memory: float, p: float) -> float:
    """A kernel's time from its compute-bound and memory-bound times: the hard roofline takes the larger
    (Williams, Waterman and Patterson 2009, "Roofline", CACM 52(4)); near the ridge point real kernels overlap the
    two only in part, so with ``p`` > 0 the time is their p-norm, (c^p + m^p)^(1/p): the sum at p = 1, the maximum
    as p grows.  ``p`` is fitted per engine and GPU family (data/efficiency.toml, ``roofline_p``); 0 keeps the
    maximum."""
    hi, lo = max(compute, memory), min(compute, memory)
    if not p or hi <= 0:
        return hi
    return hi * (1 + (lo / hi) ** p) ** (1 / p)
