"""A recommendation as a whole server (issue 17): per node, the CPUs, RAM, NVMe, network,
shared storage and power around the plan's GPUs, and the software the job needs.

Every figure comes from a documented rule in ``data/servers.toml``: a vendor reference
server (DGX H100/H200/B200/A100, AMD's MI300X submission), scaled per GPU and never gone
below, or rigsize's own arithmetic on the plan (checkpoint size = parameters x bytes
saved per parameter; RAM >= the shards a host holds while loading; inter-node bandwidth =
the traffic of groups that span nodes / the step time).  What no source gives is
``"unknown"``.  The power per node is the cost model's own figure
(``planning.cost.on_prem``), divided per node, never a second copy.
"""

from __future__ import annotations

import math
import tomllib
from functools import cache
from importlib import resources
from typing import Any

from rigsize.hardware.gpus import GPU
from rigsize.memory.per_gpu import lora_params, state_bytes
from rigsize.model import formats
from rigsize.planning.evaluate import Evaluation
from rigsize.planning.job import Job
from rigsize.planning.layout import Layout
from rigsize.report import CostReport, TrainingPerformance

UNKNOWN = "unknown"
ACT_BYTES = 2       # bf16 activations crossing a pipeline boundary (as speed.training)


@cache
def catalog() -> dict[str, Any]:
    return tomllib.loads(resources.files("rigsize.data").joinpath("servers.toml").read_text())


def reference_for(gpu: GPU) -> tuple[str, dict[str, Any]] | None:
    """The reference server row for ``gpu``: by catalog name first, then by architecture."""
    refs = catalog()["reference"]
    for key, row in refs.items():
        if gpu.name in row["gpu_names"]:
            return key, row
    for key, row in refs.items():
        if gpu.architecture in row["architectures"]:
            return key, row
    return None


def _rule(key: str, ref: tuple[str, dict[str, Any]] | None = None, extra: str = "") -> dict[str, str]:
    """The ``{"rule", "source"}`` of ``[rule.key]``, naming the reference row it read."""
    row = catalog()["rule"][key]
    source = row["source"]
    if ref is not None:
        source = f"{source}; [reference.{ref[0]}]: {ref[1]['source']}"
    return {"rule": row["rule"] + (f" ({extra})" if extra else ""), "source": source}


def _per_gpu(ref: dict[str, Any], field: str, node_gpus: int) -> float | None:
    value = ref.get(field, UNKNOWN)
    return None if value == UNKNOWN else value / ref["gpus"] * node_gpus


# ----------------------------------------------------------------------------------
# rigsize's own arithmetic (data/servers.toml [rule.*])
# ----------------------------------------------------------------------------------

def checkpoint_bytes(job: Job) -> int:
    """Bytes of one saved checkpoint ([rule.checkpoint_bytes]): trained parameters x
    (weights + fp32 master + optimizer moments); gradients are not saved.  Inference:
    the weights as stored."""
    arch, w = job.spec.arch, job.workload
    if not w.training:
        return formats.weights_bytes(job.weights, arch.tensors, arch.num_hidden_layers)
    adapters = w.task in ("lora", "qlora")
    per = state_bytes(w.settings, w.optimizer, adapters)
    saved = per.weights + per.optimizer
    if adapters:
        params = lora_params(arch.tensors, arch, Layout(), w.lora_rank, w.lora_targets)
    else:
        params = arch.params
    return math.ceil(params * saved)


def loading_floor_bytes(job: Job, evaluation: Evaluation) -> int:
    """The largest shard a host holds while loading ([rule.ram_bytes]): its GPUs'
    weight shards, plus the states offloaded to CPU."""
    node_gpus = min(job.layout.gpus, job.gpu.node_size)
    per_gpu = evaluation.memory.per_gpu
    offloaded = 0
    if job.workload.training and job.layout.offload != "none":
        offloaded = checkpoint_bytes(job) * node_gpus // max(1, job.layout.gpus)
    return per_gpu.weights * node_gpus + offloaded


def inter_node_traffic(job: Job) -> dict[str, float]:
    """Bytes each GPU sends across nodes per training step, by group ([rule.inter_node]).
    A group spans nodes when its consecutive ranks exceed the node (as speed.training)."""
    lay, w, arch = job.layout, job.workload, job.spec.arch
    node = job.gpu.node_size
    if not w.training or lay.gpus <= node:
        return {}
    micro = max(1, w.global_batch // (w.batch * lay.dp))
    message = w.batch * w.seq / lay.cp * arch.hidden_size * ACT_BYTES
    out: dict[str, float] = {}
    n = lay.zero_shards
    if lay.stage_ranks > node and n > 1:
        trained = (lora_params(arch.tensors, arch, lay, w.lora_rank, w.lora_targets)
                   if w.task in ("lora", "qlora") else arch.params / (lay.tp * lay.pp))
        grad = 4 if w.framework == "megatron" else state_bytes(w.settings, w.optimizer,
                                                               w.task in ("lora", "qlora")).gradients
        if lay.zero == 3:
            # two all-gathers of the 16-bit parameters and one reduce-scatter per micro-batch
            out["dp"] = micro * (n - 1) / n * trained * (2 * 2 + grad)
        elif lay.zero in (1, 2) or w.framework == "megatron":
            out["dp"] = 2 * (n - 1) / n * trained * grad      # reduce-scatter + all-gather
        else:
            out["dp"] = 2 * (n - 1) / n * trained * grad      # ring all-reduce
    if lay.pp > 1 and lay.tp * lay.cp * lay.dp * 2 > node:
        out["pp"] = 2 * micro * message / lay.tp
    if lay.tp > node:
        calls = 4 + (2 if lay.recompute == "full" else 0)
        out["tp"] = micro * arch.num_hidden_layers / lay.pp * calls * 2 * (lay.tp - 1) / lay.tp * message
    return out


def _power(job: Job, cost: CostReport | None, node_gpus: int) -> float | str:
    """The cost model's power (``on_prem.power_watts``: all GPUs x (TDP + host per GPU)), per node."""
    if cost is None:
        from rigsize.planning.cost import CostSettings, on_prem

        watts = on_prem(job, CostSettings(), None).power_watts
    else:
        watts = cost.on_prem.power_watts
    return UNKNOWN if watts is None else watts / job.layout.gpus * node_gpus


# ----------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------

def server_for(job: Job, evaluation: Evaluation, cost: CostReport | None = None) -> dict[str, Any]:
    """One node of the plan as a server: the issue's ``server`` JSON keys, each with its rule."""
    node_gpus = min(job.layout.gpus, job.gpu.node_size)
    nodes = -(-job.layout.gpus // job.gpu.node_size)
    ref = reference_for(job.gpu)
    row = ref[1] if ref else {}
    own = bool(ref) and job.gpu.name in row["gpu_names"]
    rules: dict[str, dict[str, str]] = {}

    cores = _per_gpu(row, "cpu_cores", node_gpus) if ref else None
    rules["cpu_cores"] = _rule("cpu_cores", ref)
    rules["cpu_class"] = _rule("cpu_cores", ref, "the reference server's CPUs")

    ram_ref = None
    if ref and row["ram_bytes"] != UNKNOWN:
        if own:
            ram_ref = _per_gpu(row, "ram_bytes", node_gpus)
        else:   # another part of the generation: the reference's RAM per byte of GPU memory
            hbm = (job.gpu.memory_gb * 1e9) if job.gpu.memory_gb else job.gpu.memory_bytes
            ram_ref = row["ram_bytes"] / row["gpu_memory_bytes"] * hbm * node_gpus
    floor = loading_floor_bytes(job, evaluation)
    ram = max(ram_ref or 0, floor)
    rules["ram_bytes"] = _rule("ram_bytes", ref, f"reference {_fmt(ram_ref)}, loading floor {floor:,} bytes")

    ckpt = checkpoint_bytes(job)
    stored = formats.weights_bytes(job.weights, job.spec.arch.tensors, job.spec.arch.num_hidden_layers)
    need = stored + (ckpt * node_gpus // job.layout.gpus if job.workload.training else 0)
    nvme_ref = _per_gpu(row, "nvme_data_bytes", node_gpus) if ref else None
    rules["nvme_bytes"] = _rule("nvme_bytes", ref, f"reference {_fmt(nvme_ref)}, weights + checkpoint share "
                                f"{need:,} bytes; one checkpoint = {ckpt:,} bytes")
    rules["nvme_write_bytes_per_second"] = _rule("nvme_write")

    training_multi = job.workload.training and nodes > 1
    shared = "parallel file system (Lustre, GPFS, WEKA, ...)" if training_multi else "not required"
    rules["shared_storage"] = _rule("shared_storage")

    network, per_gpu_bw = _network(job, evaluation, nodes, row)
    rules["network"] = _rule("network")
    traffic = inter_node_traffic(job)
    rules["inter_node_bytes_per_second_per_gpu"] = _rule(
        "inter_node", extra="traffic per GPU per step: " + (", ".join(f"{k} {v:,.0f} bytes" for k, v in
                                                                       traffic.items()) or "none"))
    rules["power_watts_per_node"] = _rule("power")
    return {
        "cpu_cores": UNKNOWN if cores is None else math.ceil(cores),
        "cpu_class": row.get("cpu_class", UNKNOWN),
        "ram_bytes": math.ceil(ram),
        "nvme_bytes": math.ceil(max(nvme_ref or 0, need)),
        "nvme_write_bytes_per_second": UNKNOWN,
        "shared_storage": shared,
        "network": network,
        "inter_node_bytes_per_second_per_gpu": per_gpu_bw,
        "power_watts_per_node": _power(job, cost, node_gpus),
        "rules": rules,
    }


def _network(job: Job, evaluation: Evaluation, nodes: int, row: dict[str, Any]) -> tuple[str, float | str]:
    """The compute fabric and the per-GPU bandwidth the plan's inter-node traffic needs."""
    if nodes <= 1:
        return "none (single node)", 0.0
    name = (job.speed.network if job.speed and job.speed.network else row.get("network", UNKNOWN))
    perf = evaluation.performance
    if not isinstance(perf, TrainingPerformance):
        return name, UNKNOWN          # multi-node inference traffic is not modelled
    traffic = sum(inter_node_traffic(job).values())
    return name, traffic / perf.step_seconds


def _fmt(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:,.0f} bytes"


# ----------------------------------------------------------------------------------
# Software
# ----------------------------------------------------------------------------------

ENGINES = {"vllm": "vllm", "sglang": "sglang", "trtllm": "tensorrt_llm", "tensorrt-llm": "tensorrt_llm"}
FRAMEWORKS = {"megatron": "megatron", "deepspeed": "deepspeed", "fsdp": "fsdp", "torchtitan": "torchtitan",
              "hf": "transformers", "trl": "trl", "torchtune": "torchtune", "unsloth": "unsloth",
              "llamafactory": "llamafactory"}
CUDA_BY_ARCH = {"hopper": ("cuda_hopper", "driver_hopper"), "blackwell": ("cuda_blackwell", "driver_blackwell"),
                "ada": ("cuda_ada", None)}


def software_for(job: Job) -> list[dict[str, str]]:
    """The software stack the job and its hardware need, each with version, why and source."""
    keys = _platform_keys(job.gpu) + _job_keys(job)
    rows = catalog()["software"]
    out, seen = [], set()
    for key in keys:
        if key in seen:
            continue
        seen.add(key)
        row = rows[key]
        out.append({"name": row["name"], "version": row["version"], "why": row["why"], "source": row["source"]})
    return out


def _platform_keys(gpu: GPU) -> list[str]:
    if gpu.vendor == "nvidia":
        cuda, driver = CUDA_BY_ARCH.get(gpu.architecture, ("cuda_other", None))
        return [driver, cuda] if driver else [cuda]
    if gpu.vendor == "amd":
        return ["rocm"]
    if gpu.vendor == "huawei":
        return ["cann"]
    return []


def _job_keys(job: Job) -> list[str]:
    w = job.workload
    keys: list[str] = []
    if not w.training:
        engine = (job.speed.engine if job.speed else job.engine.name).lower()
        keys.append(ENGINES.get(engine, "vllm"))
        if job.gpu.vendor == "huawei":
            keys.append("vllm_ascend")
    else:
        keys.append(FRAMEWORKS.get(w.framework, "transformers"))
        if w.task in ("lora", "qlora"):
            keys.append("peft")
    name = job.weights.name
    if name in ("nf4", "fp4") or w.optimizer == "adamw-8bit":
        keys.append("bitsandbytes")
    if name.startswith("awq"):
        keys.append("autoawq")
    if name.startswith("gptq"):
        keys.append("gptq")
    return keys
