"""Training memory: model states against the ZeRO paper, Megatron's table and PyTorch
measurements; properties of the layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rigsize

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _states(r: rigsize.EstimateReport) -> int:
    """Model states on the busiest GPU, without ZeRO-3's gathered working set."""
    p = r.memory.per_gpu
    return p.weights - r.memory.details.get("weights/gathered_for_zero3", 0) + p.gradients + p.optimizer


@pytest.mark.parametrize("zero, paper_gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_table_1(zero: int, paper_gb: float) -> None:
    """Rajbhandari et al. 2020 (ZeRO), Figure 1 / Table 1: a 7.5B model with mixed-precision
    Adam (K = 12) on N_d = 64 GPUs holds 120 / 31.4 / 16.6 / 1.9 GB of model states per GPU
    for baseline / P_os / P_os+g / P_os+g+p."""
    r = rigsize.estimate("7.5B", task="finetune", framework="deepspeed", dp=64, zero=str(zero), seq=512)
    scale = r.model.params / 7.5e9            # the bare size is approximate; compare per parameter
    assert _states(r) / 1e9 / scale == pytest.approx(paper_gb, rel=0.02)


@pytest.mark.parametrize("dp", [1, 8, 64])
def test_megatron_distributed_optimizer_bytes_per_param(dp: int) -> None:
    """Megatron-LM docs, "Distributed Optimizer": bf16 params with fp32 grads take 18 bytes
    per parameter, 6 + 12/d with the distributed optimizer."""
    plain = rigsize.estimate("llama-3.1-8b", task="pretrain", dp=dp, zero="0", seq=1024)
    dist = rigsize.estimate("llama-3.1-8b", task="pretrain", dp=dp, zero="1", seq=1024)
    n = plain.model.params
    assert _states(plain) / n == pytest.approx(18, rel=1e-6)
    assert _states(dist) / n == pytest.approx(6 + 12 / dp, rel=1e-6)


def _torch_cases() -> dict:
    return json.loads((FIXTURES / "torch_training_state_bytes.json").read_text())["cases"]


@pytest.mark.parametrize("case", sorted(k for k, v in _torch_cases().items() if v.get("lora", {}).get("adapter_bits", 32) == 32))
def test_states_match_pytorch_after_one_adamw_step(case: str, tmp_path: Path) -> None:
    """Gradient and AdamW-state bytes measured after one torch.optim.AdamW step on tiny bf16
    models (tests/test_activations_vs_torch.py writes the fixture): within 5%."""
    c = _torch_cases()[case]
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(c["config"]))
    kwargs = {"task": "finetune", "framework": "hf", "seq": 64}
    if "lora" in c:
        kwargs.update(task="lora", lora_rank=c["lora"]["rank"], lora_targets=",".join(c["lora"]["targets"]))
    r = rigsize.estimate(str(cfg), **kwargs)
    assert r.memory.per_gpu.gradients == pytest.approx(c["grad_bytes"], rel=0.05)
    assert r.memory.per_gpu.optimizer == pytest.approx(c["optimizer_bytes"], rel=0.05)
    assert r.memory.per_gpu.weights == pytest.approx(c["weight_bytes"], rel=0.05)


def test_lora_below_full_finetune_and_qlora_below_lora() -> None:
    full = rigsize.estimate("llama-3.1-8b", task="finetune", recompute="full").memory.per_gpu
    lora = rigsize.estimate("llama-3.1-8b", task="lora", recompute="full").memory.per_gpu
    qlora = rigsize.estimate("llama-3.1-8b", task="qlora", recompute="full").memory.per_gpu
    assert lora.total < full.total and qlora.weights < lora.weights and qlora.total < lora.total


def test_training_batch_flags_conflict() -> None:
    with pytest.raises(rigsize.InputError, match="differ"):
        rigsize.estimate("llama-3.1-8b", task="finetune", batch=2, micro_batch=4)
    with pytest.raises(rigsize.PlanError, match="multiple"):
        rigsize.estimate("llama-3.1-8b", task="finetune", framework="deepspeed", zero="1", dp=4, micro_batch=2,
                         global_batch=6)


def test_offload_needs_zero() -> None:
    with pytest.raises(rigsize.PlanError, match="zero"):
        rigsize.estimate("llama-3.1-8b", task="finetune", offload="params", zero="2", framework="deepspeed")


def test_pipeline_first_stage_is_busiest_in_1f1b() -> None:
    """1F1B keeps pp micro-batches in flight on the first stage (Narayanan et al. 2021)."""
    r = rigsize.estimate("llama-3.1-70b", task="pretrain", tp=8, pp=4, dp=1, global_batch=64, seq=4096)
    assert r.memory.busiest_stage in (0, 3)
    acts0 = r.memory.details["activations/layers"]
    assert acts0 > 0


@settings(max_examples=15, deadline=None)
@given(zero=st.sampled_from(["1", "2", "3"]), dp=st.sampled_from([1, 2, 4, 8]), more=st.sampled_from([2, 4]))
def test_states_never_rise_as_dp_grows_with_zero(zero: str, dp: int, more: int) -> None:
    a = rigsize.estimate("qwen2.5-7b", task="finetune", framework="deepspeed", zero=zero, dp=dp, seq=512)
    b = rigsize.estimate("qwen2.5-7b", task="finetune", framework="deepspeed", zero=zero, dp=dp * more, seq=512)
    assert _states(b) <= _states(a)


@settings(max_examples=15, deadline=None)
@given(tp=st.sampled_from([1, 2, 4]), pp=st.sampled_from([1, 2, 4]), seq=st.sampled_from([512, 2048]),
       mb=st.integers(1, 4))
def test_megatron_memory_never_rises_with_tp_or_pp(tp: int, pp: int, seq: int, mb: int) -> None:
    base = rigsize.estimate("llama-3.1-8b", task="pretrain", tp=tp, pp=pp, seq=seq, micro_batch=mb,
                            global_batch=mb * 8).memory.per_gpu
    wider = rigsize.estimate("llama-3.1-8b", task="pretrain", tp=tp * 2, pp=pp, seq=seq, micro_batch=mb,
                             global_batch=mb * 8).memory.per_gpu
    deeper = rigsize.estimate("llama-3.1-8b", task="pretrain", tp=tp, pp=pp * 2, seq=seq, micro_batch=mb,
                              global_batch=mb * 8).memory.per_gpu
    for p in (wider, deeper):
        assert p.weights + p.gradients + p.optimizer <= base.weights + base.gradients + base.optimizer
    assert wider.activations <= base.activations


@settings(max_examples=15, deadline=None)
@given(mb=st.integers(1, 8), seq=st.sampled_from([256, 1024, 4096]), task=st.sampled_from(["finetune", "lora", "pretrain"]))
def test_activations_never_fall_as_batch_or_seq_grows(mb: int, seq: int, task: str) -> None:
    a = rigsize.estimate("qwen2.5-0.5b", task=task, micro_batch=mb, seq=seq).memory.per_gpu
    b = rigsize.estimate("qwen2.5-0.5b", task=task, micro_batch=mb + 1, seq=seq * 2 if seq < 32768 else seq).memory.per_gpu
    assert b.activations >= a.activations


def test_expert_states_shard_over_the_expert_data_parallel_group() -> None:
    """dp=8, ep=8: each rank holds 1/8 of the experts and no other rank holds the same
    ones, so ZeRO-1 cannot shard the experts' optimizer states (expert dp group = 1)."""
    r = rigsize.estimate("mixtral-8x7b", task="pretrain", dp=8, ep=8, zero="1", recompute="full")
    arch = rigsize.resolve_model("mixtral-8x7b").arch
    experts = sum(t.numel for t in arch.tensors if t.role.startswith("expert_")) / 8
    assert r.memory.per_gpu.optimizer >= 12 * experts       # fp32 master + 2 moments, unsharded
    assert not r.memory.fits


def test_lora_base_is_sharded_by_zero3() -> None:
    one = rigsize.estimate("llama-3.1-70b", task="lora", framework="deepspeed", zero="0", recompute="full")
    z3 = rigsize.estimate("llama-3.1-70b", task="lora", gpus=8, zero="3", recompute="full")
    frozen = one.memory.per_gpu.weights
    assert z3.memory.per_gpu.weights < frozen / 4 and z3.memory.fits


def test_given_global_batch_is_kept_when_rigsize_picks_the_layout() -> None:
    r = rigsize.estimate("llama-3.1-8b", task="pretrain", gpus=8, global_batch=24)
    assert r.parallel.global_batch == 24 and 24 % (r.parallel.dp * r.parallel.micro_batch) == 0


def test_moe_config_whose_layers_are_all_dense_still_sizes() -> None:
    """DeepSeek-V3 cut to 3 layers: all below first_k_dense_replace, so no MoE layer."""
    import json
    import tempfile

    cfg = rigsize.resolve_model("deepseek-v3").config
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({**cfg, "num_hidden_layers": 3}, f)
    r = rigsize.estimate(f.name)
    assert r.memory.fits and r.model.params < 10e9
