"""Training speed per GPU family and framework (issue 12): the runs of
data/validation/training_runs_more.toml, their classes and split, the packaged error bands,
and the FP8 / QLoRA terms against hand-computed figures.

Expected values here are read from the data file or computed by hand from the cited
datasheet figures, never by the code under test.
"""

from __future__ import annotations

import json
import statistics
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from _bench import load_bench
from click.testing import CliRunner

from rigsize.model.inputs import resolve_model
from rigsize.shells.cli import cli
from rigsize.speed.error_bands import band
from rigsize.speed.training import TrainingEfficiency, compute_seconds, dequant_seconds
from rigsize.validation.training_more import FRAMEWORKS, more_runs, more_training_rows, training_cases

ROOT = Path(__file__).resolve().parents[2]


def _bands() -> dict:
    text = resources.files("rigsize.data").joinpath("validation", "error_bands_training.toml").read_text()
    return tomllib.loads(text)["class"]


def test_every_source_framework_maps_to_a_rigsize_framework() -> None:
    frameworks = tomllib.loads((ROOT / "src/rigsize/data/frameworks.toml").read_text())
    assert {r["framework"] for r in more_runs()} <= set(FRAMEWORKS)
    assert set(FRAMEWORKS.values()) <= {k.split(".")[0] for k in frameworks} | {"megatron"}


def test_split_is_the_files_own() -> None:
    by_case = {r["case"]: r["split"] for r in more_runs()}
    assert all(c.split == by_case[c.case] for c in training_cases())


def _fit_script():
    return load_bench("fit_training")


def test_the_fitting_script_sees_fit_rows_only() -> None:
    classes = _fit_script().class_rows()
    assert classes and all(c.split == "fit" for cases in classes.values() for c in cases)


def test_torchtitan_hopper_band_is_what_its_reserved_rows_give() -> None:
    # the reserved torchtitan rows, picked from the data file itself (H100 and H200)
    names = {r["case"] for r in more_runs() if r["split_class"] == "hopper/torchtitan" and r["split"] == "reserved"}
    cases = tuple(c for c in training_cases() if c.case in names)
    assert len(cases) == 7      # 10 reserved, 3 of them 405B rows without a printed micro-batch
    rows = more_training_rows(cases)
    step = [abs(r.measured / r.predicted - 1) for r in rows]       # tokens/s per GPU ~ 1 / step time
    tokens = [abs(r.predicted / r.measured - 1) for r in rows]
    packaged = _bands()["torchtitan|hopper|dense"]
    assert packaged["step_seconds"]["n"] == 7
    assert abs(packaged["step_seconds"]["median_abs"] - statistics.median(step)) < 1e-4
    assert abs(packaged["tokens_per_second"]["median_abs"] - statistics.median(tokens)) < 1e-4


def test_a_class_under_five_reserved_runs_has_no_band() -> None:
    # torchtune on A100: 6 reserved rows in the file; the 70B LoRA row has no printed layout
    # and the baseline row is unpacked, so 4 are predicted: below error_bands.MIN_ROWS (5)
    predicted = sorted(c.case for c in training_cases() if c.cls == "torchtune|ampere|dense" and c.split == "reserved")
    assert predicted == ["torchtune-readme-llama32-3b-a100-activation-checkpointing",
                         "torchtune-readme-llama32-3b-a100-activation-offloading",
                         "torchtune-readme-llama32-3b-a100-compile", "torchtune-readme-llama32-3b-a100-lora"]
    assert band("training", "torchtune|ampere|dense", "step_seconds") is None


def test_estimate_carries_the_packaged_band() -> None:
    out = CliRunner().invoke(cli, ["estimate", "llama-3.1-8b", "--task", "pretrain", "--gpu", "H100", "--gpus", "8",
                                   "--zero", "3", "--framework", "torchtitan", "--json"])
    assert out.exit_code == 0, out.output
    perf = json.loads(out.output)["performance"]
    row = _bands().get("torchtitan|hopper|dense", {}).get("step_seconds")
    if row and row["n"] >= 5:
        assert perf["error_band"]["step_seconds"]["median_abs"] == row["median_abs"]
    else:
        assert perf["error_band"]["step_seconds"] is None
    assert perf["efficiency_source"].startswith("training.hopper.torchtitan")


def test_borrowed_row_is_said() -> None:
    out = CliRunner().invoke(cli, ["estimate", "llama-3.1-8b", "--task", "pretrain", "--gpu", "H100", "--gpus", "8",
                                   "--zero", "3", "--framework", "deepspeed", "--json"])
    report = json.loads(out.output)
    # no DeepSpeed row on Hopper: the family's FSDP row is borrowed (same kernels, same GPUs), not
    # A100 Megatron-LM's training.default (0.8 of an A100's peak, which no Hopper stack reaches)
    assert report["performance"]["efficiency_source"].startswith("borrowed from training.hopper.fsdp")
    assert any("borrowed from training.hopper.fsdp" in w for w in report["warnings"])
    # a family with no fitted row at all borrows Hopper's FSDP row for the PyTorch stacks (so an unmeasured
    # family never looks faster than a measured one) and training.default for Megatron-LM; A100
    # Megatron-LM is training.default itself
    from rigsize.speed.training import training_efficiency

    assert training_efficiency("ada", "hf")[1] == "hopper.fsdp"
    assert training_efficiency("cdna3", "megatron")[1] == "default"
    assert training_efficiency("ampere", "megatron")[1] == "default"
    assert training_efficiency("blackwell", "deepspeed")[1] == "blackwell.megatron"
    assert training_efficiency("ampere", "deepspeed")[1] == "ampere.fsdp"


def _llama8b_step(precision: str) -> float:
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.planning.layout import Layout, Workload

    arch = resolve_model("llama-3.1-8b").arch
    eff = TrainingEfficiency(e_max=0.5, width_half=0.0, link=1.0, collective_latency_s=0.0, fp8_ratio=1.0)
    work = Workload(task="pretrain", batch=1, seq=4096, global_batch=1)
    return compute_seconds(arch, work, Layout(), resolve_gpu("H100-SXM-80GB"), eff, precision)


def test_fp8_runs_the_linear_layers_only_in_fp8() -> None:
    # Llama 3.1 8B (config.json): 8,030,261,248 parameters, embedding and untied lm_head
    # 128256 x 4096 = 525,336,576 each; 32 layers, 32 heads of 128.  One 4096-token sequence.
    tokens, head = 4096, 525_336_576
    # N as rigsize counts it (module doc): active parameters minus the input embedding, so
    # the 266,240 norm weights ride with the projections
    linear = 8_030_261_248 - 2 * head
    attention = 12 * 32 * 32 * 128 * 4096 * tokens         # PaLM 12 L H Q T per token
    bf16, fp8 = 989.4e12 * 0.5, 1978.9e12 * 0.5           # H100 SXM dense peaks (whitepaper) x e_max
    expected_bf16 = (6 * tokens * (linear + head) + attention) / bf16
    expected_fp8 = 6 * tokens * linear / fp8 + (6 * tokens * head + attention) / bf16
    assert abs(_llama8b_step("bf16") / expected_bf16 - 1) < 1e-9
    assert abs(_llama8b_step("fp8") / expected_fp8 - 1) < 1e-9
    assert 1.5 < expected_bf16 / expected_fp8 < 2.0


def test_qlora_dequantizes_in_forward_and_backward() -> None:
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.planning.layout import Layout, Workload

    arch = resolve_model("llama-3.1-8b").arch
    work = Workload(task="qlora", batch=1, seq=4096, global_batch=1)
    quantized = 8_030_261_248 - 2 * 525_336_576 - 266_240
    per_param = 0.5 + 0.127 / 8 + 2                    # NF4 codes + double-quantized scales read, bf16 written
    expected = 2 * quantized * per_param / 2039e9      # forward + backward, A100 80 GB datasheet HBM rate
    assert abs(dequant_seconds(arch, work, Layout(), resolve_gpu("A100-SXM-80GB")) / expected - 1) < 1e-9
    full = Layout(recompute="full")
    assert abs(dequant_seconds(arch, work, full, resolve_gpu("A100-SXM-80GB")) / (1.5 * expected) - 1) < 1e-9


def test_gb200_collectives_stay_on_nvlink_across_its_trays() -> None:
    # GB200 NVL72: 4 GPUs per host, all 72 on one NVLink switch fabric (NVIDIA's NVL72 page);
    # NVLink 5 is 1.8 TB/s per GPU, 900e9 each way.  An H100 server ends at 8 GPUs.
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.speed.training import _bandwidth, networks, training_efficiency

    eff, _ = training_efficiency("default")
    gb200, h100 = resolve_gpu("GB200"), resolve_gpu("H100-SXM-80GB")
    assert gb200.node_size == 4 and gb200.scale_up(4) == 72
    assert _bandwidth(gb200, 64, 4, "ib-ndr-400", eff) == 900e9
    assert _bandwidth(gb200, 144, 4, "ib-ndr-400", eff) == networks()["ib-ndr-400"]["per_gpu_bytes_per_second"]
    assert _bandwidth(h100, 16, 8, "ib-ndr-400", eff) == networks()["ib-ndr-400"]["per_gpu_bytes_per_second"]


def test_a_data_parallel_ring_across_nodes_uses_every_nic_of_its_ranks() -> None:
    # NVIDIA measures 192 GB/s all-reduce bus bandwidth across DGX A100s with 8 x 200 Gb/s HDR
    # (8 x 25 GB/s = 200 GB/s per node; NVIDIA/nccl #812): the ring's bus bandwidth is the NICs of
    # the group's ranks in one node together, not one GPU's NIC.  With tp = 8 inside the node each
    # data-parallel ring has one rank per node, hence one NIC (25 GB/s); with tp = 2, four (100 GB/s).
    # Across H100 nodes with 8 x 400 Gb/s NDR (400 GB/s per node) the cap is NVLink 4's 450 GB/s
    # per direction, not reached.  A GB200 host has 4 GPUs and 4 NICs: 200 GB/s across racks.
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.speed.training import ring_bandwidth

    a100, h100, gb200 = resolve_gpu("A100-SXM-80GB"), resolve_gpu("H100-SXM-80GB"), resolve_gpu("GB200")
    assert ring_bandwidth(a100, 32, 1, 8, "ib-hdr-200x8") == 200e9
    assert ring_bandwidth(a100, 32, 2, 8, "ib-hdr-200x8") == 100e9
    assert ring_bandwidth(a100, 64, 8, 8, "ib-hdr-200x8") == 25e9
    assert ring_bandwidth(a100, 64, 16, 8, "ib-hdr-200x8") == 25e9
    assert ring_bandwidth(h100, 512, 1, 8, "ib-ndr-400") == 400e9
    assert ring_bandwidth(h100, 8, 1, 8, "ib-ndr-400") == 450e9          # one node: NVLink
    assert ring_bandwidth(gb200, 576, 1, 4, "ib-ndr-400") == 200e9


def test_a_ring_across_pcie_cards_is_held_to_their_pcie_links() -> None:
    # A PCIe card reaches its NIC, and its neighbours in the node, over its own x16 link: Gen4 x16 is
    # 16 GT/s x 16 lanes / 8 x 128/130 = 31.5 GB/s per direction (PCI-SIG), so a 400 Gb/s port (50 GB/s)
    # cannot be filled, and more ranks per node never give less bandwidth than one.  An A100 PCIe's
    # NVLink bridge joins only its pair: ranks 4 apart (0 and 4) talk over PCIe.
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.speed.training import ring_bandwidth

    gen4 = 16e9 * 16 / 8 * 128 / 130
    for name in ("A100-PCIE-80GB", "L40S", "RTX-4090"):
        gpu = resolve_gpu(name)
        by_stride = [ring_bandwidth(gpu, 1024, stride, 8, "ib-ndr-400") for stride in (1, 2, 4, 8)]
        assert all(b <= 32e9 for b in by_stride), (name, by_stride)
        assert by_stride[-1] == pytest.approx(gen4), name
        assert by_stride == sorted(by_stride, reverse=True), name


def test_fsdp_across_nodes_hides_its_gathers_where_the_nics_allow() -> None:
    # llm-foundry's MPT-13B on 32 H100s (4 nodes, bf16, no recomputation) ran at 4,811 tokens/s per
    # GPU (training_runs_more.toml): ZeRO-3's three passes over 13B x 2 bytes fit in that step only
    # if each ring moves them at the node's 8 NICs, not at one NIC's 50 GB/s (78 GB / 50 GB/s =
    # 1.6 s against a measured step of 64 x 2048 / (4811 x 32) = 0.85 s).
    case = next(c for c in training_cases() if c.case == "llmfoundry-h100bf16-mpt13b-s2048-g32-bf16")
    row = more_training_rows((case,))[0]
    step = case.workload.global_batch * case.workload.seq / (row.measured * case.layout.gpus)
    assert abs(step - 0.851) < 0.01          # the measured step the comment derives
    assert 0.7 * row.measured < row.predicted < 1.35 * row.measured

def test_moe_overhead_is_per_layer_and_micro_batch() -> None:
    # Qwen3-30B-A3B: 48 decoder layers, every one MoE (config.json decoder_sparse_step 1,
    # mlp_only_layers []); a dense model pays nothing.
    from dataclasses import replace

    from rigsize.planning.layout import Layout
    from rigsize.speed.training import moe_overhead_seconds, training_efficiency

    eff = replace(training_efficiency("blackwell", "megatron")[0], moe_layer_s=0.002)
    moe, dense = resolve_model("qwen3-30b-a3b").arch, resolve_model("llama-3.1-8b").arch
    assert moe_overhead_seconds(moe, Layout(pp=2), 8, eff) == 8 * 48 / 2 * 0.002
    assert moe_overhead_seconds(dense, Layout(), 8, eff) == 0.0


def test_moe_tokens_per_second_grow_with_the_micro_batch() -> None:
    # Megatron-Bridge 26.02 Qwen3-30B-A3B, 8 GPUs, tp 1 pp 1 ep 8, seq 4096, GBS 512 (fit
    # rows): 9,299 tokens/s/GPU at micro-batch 1 (B200), 26,084 at micro-batch 4 (GB200):
    # the fixed per-layer time per micro-batch is amortized over 4x the tokens.
    by_case = {c.case: c for c in training_cases()}
    mb1, mb4 = by_case["mbridge-2511-b200-qwen3-30b-a3b-fp8mx"], by_case["mbridge-2602-gb200-qwen3-30b-a3b-mxfp8"]
    assert (mb1.workload.batch, mb4.workload.batch) == (1, 4)
    from rigsize.validation.training_more import predict

    s1, s4 = predict(mb1), predict(mb4)
    assert s1.breakdown["moe_overhead"] > 3 * s4.breakdown["moe_overhead"] > 0
    assert s4.tokens_per_second / s1.tokens_per_second > 1.2


def test_megatron_bridge_rows_are_compared_on_tokens_not_their_own_flops() -> None:
    # Megatron-Bridge's "model TFLOP/s/GPU" counts FLOPs its own way (flop_utils.py); its
    # tokens/s/GPU is convention-free, and it is what the validation compares.
    from rigsize.validation import training_rows, training_runs

    bridge = {r["case"]: r for r in training_runs() if r.get("flops_convention") == "megatron-bridge-model"}
    rows = {r.case: r for r in training_rows() if r.case in bridge}
    assert set(rows) == set(bridge) and len(bridge) == 15
    assert all(r.metric == "tokens_per_s_per_gpu" for r in rows.values())
    assert all(r.measured == bridge[c]["tokens_per_second_per_gpu"] for c, r in rows.items())
    # FSDP on in the table is Megatron-FSDP: the framework stays Megatron-LM
    assert rows["mbridge-2511-gb200-llama3-70b-fp8cs"].cls.startswith("megatron|blackwell")


def _offload_run(gpus: int, **extra):
    import rigsize

    opts = dict(task="finetune", framework="deepspeed", zero=2, offload="optimizer", gpu="A100-SXM-80GB",
                gpus=gpus, seq=2048, micro_batch=4, **extra)
    return rigsize.estimate("llama-3.1-8b", **opts)


def test_zero_offload_charges_the_cpu_step_and_the_pcie_copies() -> None:
    # Llama 3.1 8B: 8,030,261,248 parameters, one A100 SXM (PCIe 4.0 x16: 16 GT/s x 16 lanes x
    # 128/130 / 8 bits = 31.5 GB/s each way), host = the assumed Ryzen 9 9950X (AMD: two DDR5-5600
    # channels = 89.6 GB/s).  CPU step: 30 B per parameter of host traffic; the bf16 parameters come
    # back over PCIe (2 B each); the bf16 gradients (2 B each) go down behind backward.
    r = _offload_run(1)
    params, pcie, host = 8_030_261_248, 16e9 * 16 / 8 * 128 / 130, 89.6e9
    expected = params * 30 / host + params * 2 / pcie
    assert params * 2 / pcie < 2 / 3 * r.performance.breakdown.compute       # the copy down is hidden
    assert abs(r.performance.breakdown.offload / expected - 1) < 1e-6
    assert r.assumptions["host_cpu"].startswith("RYZEN-9-9950X")
    assert r.performance.error_band == {}      # no published offloaded run backs a band


def test_zero_offload_shares_the_host_between_a_servers_gpus() -> None:
    # ZeRO-2 shards the optimizer over the GPUs: 8 GPUs of one server each step 1/8 of the
    # parameters, but on one CPU whose memory bandwidth they share, so the CPU step does not
    # shrink; a faster host (EPYC 9654: 12 channels of DDR5-4800 = 460.8 GB/s) does shorten it.
    one, eight = _offload_run(1), _offload_run(8)
    params, host = 8_030_261_248, 89.6e9
    cpu_step = params * 30 / host
    assert eight.performance.breakdown.offload > cpu_step
    assert one.performance.breakdown.offload > eight.performance.breakdown.offload
    epyc = _offload_run(8, host_cpu="EPYC-9654")
    assert epyc.performance.breakdown.offload < eight.performance.breakdown.offload - 0.7 * cpu_step


def test_host_cpu_is_refused_for_training_without_offload() -> None:
    import pytest

    import rigsize
    from rigsize.errors import InputError

    with pytest.raises(InputError, match="host-cpu"):
        rigsize.estimate("llama-3.1-8b", task="finetune", gpu="A100-SXM-80GB", gpus=1, host_cpu="EPYC-9654")


def test_activation_offload_copies_hide_behind_compute() -> None:
    # Llama 3.1 8B, one 8192-token sequence: 32 checkpointed layer inputs of 8192 x 4096 bf16 values
    # = 2,147,483,648 B each way per micro-batch over the A100's PCIe 4.0 x16 (31.5 GB/s).
    from dataclasses import replace

    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.planning.layout import Layout, Workload
    from rigsize.speed.training import activation_offload_seconds

    arch, gpu = resolve_model("llama-3.1-8b").arch, resolve_gpu("A100-SXM-80GB")
    work = Workload(task="finetune", batch=1, seq=8192, global_batch=1, framework="torchtune")
    work = replace(work, recipe=replace(work.settings, activation_offload=True))
    copy = 32 * 8192 * 4096 * 2 / (16e9 * 16 / 8 * 128 / 130)
    assert activation_offload_seconds(arch, work, Layout(), gpu, 10.0, 1, 0.0) == 0.0        # hidden
    exposed = activation_offload_seconds(arch, work, Layout(), gpu, 0.03, 1, 0.0)
    assert abs(exposed - ((copy - 0.01) + (copy - 0.02))) < 1e-9
    plain = Workload(task="finetune", batch=1, seq=8192, global_batch=1, framework="torchtune")
    assert activation_offload_seconds(arch, plain, Layout(), gpu, 0.03, 1, 0.0) == 0.0


def test_zero_offload_on_a_dgx_uses_its_two_xeons() -> None:
    # 8 H100 SXM in a DGX H100: two Xeon Platinum 8480C (NVIDIA's DGX guide), 8 channels of DDR5-4800
    # each (Intel ARK, 8480+: 307.2 GB/s per socket); PCIe 5.0 x16 (32 GT/s x 16 x 128/130 / 8)
    import rigsize

    r = rigsize.estimate("llama-3.1-8b", task="finetune", framework="deepspeed", zero=2, offload="optimizer",
                         gpu="H100-SXM-80GB", gpus=8, seq=2048, micro_batch=4)
    params, host, pcie = 8_030_261_248, 2 * 307.2e9, 32e9 * 16 / 8 * 128 / 130
    expected = params * 30 / host + params / 8 * 2 / pcie
    assert abs(r.performance.breakdown.offload / expected - 1) < 1e-6
    assert r.assumptions["host_cpu"].startswith("2x XEON-PLATINUM-8480+")
    given = rigsize.estimate("llama-3.1-8b", task="finetune", framework="deepspeed", zero=2, offload="optimizer",
                             gpu="H100-SXM-80GB", gpus=8, seq=2048, micro_batch=4, host_cpu="EPYC-9654")
    assert given.assumptions.get("host_cpu") is None            # given, not assumed


def test_a_tensor_parallel_projection_is_as_wide_as_its_intensity() -> None:
    """The width law's argument (speed.training.dense_width): a projection split over tp is a h x h/tp GEMM,
    whose FLOPs per byte at many tokens, k n / (k + n), match a square GEMM of width 2 k n / (k + n): for
    Llama 3.1 70B (h = 8192) at tp 8, 2 x 8192 x 1024 / 9216 = 1820.4, not 8192 / 8 = 1024; unsplit, h."""
    from rigsize.planning.layout import Layout
    from rigsize.speed.training import dense_width, gemm_width

    arch = resolve_model("llama-3.1-70b").arch
    assert dense_width(arch, Layout(tp=8)) == pytest.approx(1820.44, abs=0.01)
    assert dense_width(arch, Layout(tp=1)) == 8192
    assert gemm_width(2048, 768) == pytest.approx(1117.09, abs=0.01)     # Qwen3-30B-A3B's expert GEMM
