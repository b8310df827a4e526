"""Whole-server rules (issue 17), checked against figures from outside the code:
NVIDIA's DGX H100 reference server, the ZeRO paper's bytes per state, the ring
all-reduce volume, the vendors' software requirements."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rigsize.hardware.server_report import ServerReport, SoftwareItem
from rigsize.hardware.servers import (
    catalog,
    checkpoint_bytes,
    loading_floor_bytes,
    server_for,
    software_for,
)
from rigsize.model.inputs import resolve_model
from rigsize.planning.evaluate import evaluate
from rigsize.planning.job import resolve_job, resolve_speed
from rigsize.planning.options import parse_options


def _plan(model: str, **options):
    opts = parse_options(options)
    spec = resolve_model(model, True)
    assumptions: dict = {}
    job, _ = resolve_job(spec, opts, assumptions)
    speed, _ = resolve_speed(job, opts, assumptions)
    job = replace(job, speed=speed)
    return job, evaluate(job)


@pytest.fixture(scope="module")
def h100_inference():
    return _plan("qwen2-72b", gpu="H100-SXM-80GB", gpus=8)


@pytest.fixture(scope="module")
def megatron_64():
    return _plan("llama-3-70b", task="finetune", gpu="H100-SXM-80GB", gpus=64, framework="megatron", tp=8, pp=4)


def test_catalog_rows_carry_sources() -> None:
    data = catalog()
    for section in ("reference", "software"):
        for key, row in data[section].items():
            assert row["source"] and row["as_of"] and row["retrieved"], key
    for key, row in data["rule"].items():
        assert row["rule"] and row["source"], key


def test_dgx_h100_reference_reproduces(h100_inference) -> None:
    """NVIDIA DGX BasePOD 'Core Components' (DGX H100): 2x Xeon 8480C = 112 cores, 2 TB
    DDR5, eight 3.84 TB U.2 NVMe for data; DGX H100/H200 User Guide: 10.2 kW max."""
    job, ev = h100_inference
    server = server_for(job, ev)
    ServerReport(**server)
    assert server["cpu_cores"] == 112
    assert "8480C" in server["cpu_class"]
    assert server["ram_bytes"] == 2_000_000_000_000
    assert server["nvme_bytes"] == 8 * 3_840_000_000_000
    assert server["power_watts_per_node"] == pytest.approx(10_200)
    assert server["network"].startswith("none") and server["shared_storage"] == "not required"
    assert set(server) == {"cpu_cores", "cpu_class", "ram_bytes", "nvme_bytes", "nvme_write_bytes_per_second",
                           "shared_storage", "network", "inter_node_bytes_per_second_per_gpu",
                           "power_watts_per_node", "rules"}
    assert all(set(r) == {"rule", "source"} for r in server["rules"].values())


def test_checkpoint_is_parameters_times_bytes_saved(megatron_64) -> None:
    """ZeRO (arXiv:1910.02054) sec. 3.1: mixed-precision Adam holds 2 + 2 + 12 = 16 bytes
    per parameter (70e9 x 16 = 1.12 TB of training memory); a checkpoint saves all but
    the 2-byte gradients: 14 bytes (70e9 x 14 = 0.98 TB)."""
    job, _ = megatron_64
    params = job.spec.arch.params
    assert 70e9 < params < 71e9
    assert checkpoint_bytes(job) == pytest.approx(params * (16 - 2), rel=1e-9)
    print(f"llama-3-70b: {params:,} parameters; training states {params * 16 / 1e12:.2f} TB, "
          f"checkpoint {checkpoint_bytes(job) / 1e12:.2f} TB")


def test_ram_holds_the_largest_shard_while_loading(h100_inference, megatron_64) -> None:
    """The host page cache holds its GPUs' weight shards while they load: for a tp=8
    bf16 72B model on one node, the whole model, 2 bytes x parameters."""
    job, ev = h100_inference
    server = server_for(job, ev)
    assert server["ram_bytes"] >= loading_floor_bytes(job, ev) >= 2 * job.spec.arch.params * 0.99
    job, ev = megatron_64
    assert server_for(job, ev)["ram_bytes"] >= loading_floor_bytes(job, ev)


def test_nic_covers_the_inter_node_traffic(megatron_64) -> None:
    """tp=8 inside each DGX, pp=4 x dp=2 across nodes: the data-parallel pair spans nodes.
    Megatron reduces fp32 main grads (4 bytes; Megatron-LM dist_optimizer docs) by
    reduce-scatter + all-gather, 2 (n-1)/n x the rank's parameters (Patarasuk & Yuan
    2009); pp sends 2 x micro-batches x b s h / tp x 2 bytes per boundary.  Needed per GPU
    = traffic / step time, and ConnectX-7 NDR gives 400 Gb/s = 50e9 bytes/s per GPU."""
    job, ev = megatron_64
    lay, w, arch = job.layout, job.workload, job.spec.arch
    micro = w.global_batch // (w.batch * lay.dp)
    dp = 2 * (lay.dp - 1) / lay.dp * arch.params / (lay.tp * lay.pp) * 4
    pp = 2 * micro * w.batch * w.seq * arch.hidden_size * 2 / lay.tp
    needed = (dp + pp) / ev.performance.step_seconds
    server = server_for(job, ev)
    print(f"inter-node: dp {dp / 1e9:.2f} GB + pp {pp / 1e9:.3f} GB per GPU per step of "
          f"{ev.performance.step_seconds:.2f} s -> {needed / 1e9:.2f} GB/s per GPU")
    assert server["inter_node_bytes_per_second_per_gpu"] == pytest.approx(needed, rel=1e-6)
    assert server["network"] == "ib-ndr-400"
    assert 400e9 / 8 >= needed
    assert server["shared_storage"].startswith("parallel file system")


def test_power_is_the_cost_models_figure(megatron_64) -> None:
    from rigsize.planning.cost import CostSettings, on_prem

    job, ev = megatron_64
    total = on_prem(job, CostSettings(), None).power_watts
    assert server_for(job, ev)["power_watts_per_node"] == pytest.approx(total / 8)


def test_software_names_the_platform_stack() -> None:
    job, _ = _plan("qwen2-72b", gpu="MI300X", gpus=8)
    names = {s["name"]: s["version"] for s in software_for(job)}
    assert names["ROCm"] == ">= 6.3" and "vLLM" in names           # vLLM docs: MI300 (gfx942), ROCm 6.3+
    job, _ = _plan("qwen2-72b", gpu="B200-180GB", gpus=8)
    names = {s["name"]: s["version"] for s in software_for(job)}
    assert names["CUDA"] == ">= 12.8"                               # Blackwell Compatibility Guide 1.4.2
    job, _ = _plan("qwen2-72b", gpu="H100-SXM-80GB", gpus=8, task="qlora")
    items = software_for(job)
    [SoftwareItem(**s) for s in items]
    assert {"CUDA", "PEFT", "bitsandbytes"} <= {s["name"] for s in items}
    assert {s["name"]: s["version"] for s in items}["CUDA"] == ">= 11.8"


def test_messages_in_both_languages() -> None:
    from rigsize.messages import MESSAGES

    server = {k: v for k, v in MESSAGES.items() if k.startswith("server.")}
    assert len(server) >= 10 and all(set(m) == {"en", "zh"} for m in server.values())


def test_the_cpu_line_says_the_cores_are_a_share_of_the_reference_server() -> None:
    """DGX A100 (data/servers.toml): 2x AMD EPYC 7742, 64 cores each, 128 cores for 8
    GPUs, so 16 per GPU and 32 for a 2-GPU plan.  The line said "32 cores: 2x AMD EPYC
    7742 (64 cores each)", which reads as a contradiction; it now says which is which."""
    from rigsize.messages import render

    job, ev = _plan("llama-3.1-8b", gpu="A100-SXM-80GB", gpus=2)
    server = server_for(job, ev)
    assert server["cpu_cores"] == 128 // 8 * 2
    line = render("server.cpu", "en", cpu_cores=server["cpu_cores"], cpu_class=server["cpu_class"])
    assert line.startswith("CPU        32 cores for this node's GPUs (the reference server's cores per GPU); "
                           "reference CPUs: 2x AMD EPYC 7742 (64 cores each")
    assert "32 核" in render("server.cpu", "zh", cpu_cores=32, cpu_class=server["cpu_class"])
