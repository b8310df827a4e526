"""The attention core in training (speed.training.attention_seconds, layer_attention): its own
fitted fraction on causal FLOPs where a class has one, borrowed by PyTorch-native frameworks and
not by Megatron-LM, given up for a user's or calibration's GEMM fraction, and counted over the
layers that have attention (hybrid models, sliding windows)."""

from __future__ import annotations

import pytest

import rigsize
from rigsize.model.inputs import resolve_model
from rigsize.speed.training import (
    TrainingEfficiency,
    attention_flops_per_token,
    attention_seconds,
    layer_attention,
    training_efficiency,
)


def _eff(attention: float) -> TrainingEfficiency:
    return TrainingEfficiency(e_max=0.6, width_half=0.0, link=1.0, collective_latency_s=0.0, attention=attention)


def test_a_fitted_fraction_times_the_causal_half() -> None:
    flops, peak = 4.0e15, 1.0e15
    # 4e15 full-count FLOPs, half of them run (causal), at 0.2 of a 1e15 peak: 10 s
    assert attention_seconds(flops, peak, 0.5, _eff(0.2)) == pytest.approx(10.0)
    # no fitted fraction: the full count at the projections' fraction (the rule before 2026-12-02): 8 s
    assert attention_seconds(flops, peak, 0.5, _eff(0.0)) == pytest.approx(8.0)


def test_pytorch_frameworks_borrow_the_family_fraction_and_megatron_does_not() -> None:
    fsdp, _ = training_efficiency("hopper", "fsdp")
    assert fsdp.attention > 0
    for framework in ("torchtitan", "hf", "trl", "deepspeed", "torchtune", "unsloth"):
        assert training_efficiency("hopper", framework)[0].attention == fsdp.attention, framework
    assert training_efficiency("hopper", "megatron")[0].attention == 0.0
    assert training_efficiency("ampere", "fsdp")[0].attention == 0.0     # Ampere kept the old rule


def test_a_given_gemm_fraction_governs_the_attention_core_too() -> None:
    opts = dict(task="pretrain", gpu="H100-SXM-80GB", gpus=8, seq=32768, framework="fsdp", zero="3",
                recompute="full", global_batch=8)
    slow = rigsize.estimate("llama-3.1-8b", efficiency="compute=0.3", **opts).performance
    fast = rigsize.estimate("llama-3.1-8b", efficiency="compute=0.9", **opts).performance
    fitted = rigsize.estimate("llama-3.1-8b", **opts).performance
    assert "attention" not in fast.efficiency and "attention" in fitted.efficiency
    # every matmul at 3x the fraction: compute 3x shorter
    assert slow.breakdown.compute / fast.breakdown.compute == pytest.approx(3.0, rel=1e-6)


def test_attention_is_counted_on_attention_layers_only() -> None:
    dense = resolve_model("llama-3.1-8b").arch
    assert sum(v > 0 for v in layer_attention(dense, 4096)) == dense.num_hidden_layers
    hybrid = resolve_model("qwen3-next-80b-a3b").arch       # 3 linear-attention layers to 1 full-attention one
    full = [i for i in range(hybrid.num_hidden_layers) if hybrid.is_attention_layer(i)]
    per_layer = layer_attention(hybrid, 4096)
    assert 0 < len(full) < hybrid.num_hidden_layers
    assert [i for i, v in enumerate(per_layer) if v > 0] == full
    assert attention_flops_per_token(hybrid, 4096) == pytest.approx(6 * sum(per_layer))


def test_a_sliding_window_attends_its_span() -> None:
    arch = resolve_model("gemma-2-9b").arch
    windows = arch.layer_windows
    local = next(i for i, w in enumerate(windows) if w is not None)
    glob = next(i for i, w in enumerate(windows) if w is None)
    w, seq = windows[local], 4 * windows[local]
    per_layer = layer_attention(arch, seq)
    # a causal query sees min(w, position) keys: on the full-count convention 2w - w^2/T of T
    assert per_layer[local] / per_layer[glob] == pytest.approx((2 * w - w * w / seq) / seq)
    short = layer_attention(arch, w // 2)       # within the window: the whole sequence
    assert short[local] == pytest.approx(short[glob])


def test_mla_trains_at_its_own_widths() -> None:
    """DeepSeek-V3's config: qk_nope_head_dim 128, qk_rope_head_dim 64, v_head_dim 128 (no weight
    absorption in training): QK^T over 192, PV over 128, so the core's per-head width is their mean."""
    from rigsize.speed.training import _attn_dims

    assert _attn_dims(resolve_model("deepseek-v3").arch) == (128, (192 + 128) / 2)
    assert _attn_dims(resolve_model("llama-3.1-8b").arch) == (32, 128)


@pytest.mark.parametrize("nope, rope, v, q_lora", [(64, 32, 96, 1536), (128, 64, 128, None)])
def test_mla_widths_follow_the_config(tmp_path, nope: int, rope: int, v: int, q_lora: int | None) -> None:
    """A DeepSeek-V3 config with other head widths (v_head_dim unlike qk_nope_head_dim; no query
    LoRA, as DeepSeek-V2-Lite): QK^T over nope + rope, PV over v."""
    import json
    from importlib import resources

    from rigsize.speed.training import _attn_dims

    config = json.loads(resources.files("rigsize.data").joinpath("models", "deepseek-v3.json").read_text())
    config.update(qk_nope_head_dim=nope, qk_rope_head_dim=rope, v_head_dim=v, q_lora_rank=q_lora)
    (tmp_path / "config.json").write_text(json.dumps(config))
    arch = resolve_model(str(tmp_path / "config.json")).arch
    assert _attn_dims(arch) == (config["num_attention_heads"], (nope + rope + v) / 2)
