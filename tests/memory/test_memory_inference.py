"""Inference memory per GPU: validated on vLLM's own startup logs, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rigsize
from rigsize.units import GiB

# vLLM prints "Model loading took X GiB" / "model weights take X GiB" per rank.  Sources
# are recorded in src/rigsize/data/runtime.toml [[measured_vllm_startup]].
WEIGHT_LOGS = [
    # (preset, gpu, tp, measured GiB per rank, source)
    ("llama-3-8b", "H100", 1, 14.96, "vllm PR #10511, Meta-Llama-3-8B, tp=1"),
    ("llama-3-8b", "H100", 2, 7.48, "vllm PR #10511, Meta-Llama-3-8B, tp=2"),
    ("llama-3.1-8b", "L40S", 1, 14.9889, "L40S log, Llama-3.1-8B-Instruct"),
    # DeepSeek-R1-Distill-Qwen-14B has the Qwen2.5-14B architecture (its config.json)
    ("qwen2.5-14b", "RTX-4090", 2, 13.9476, "vllm issue #13061, R1-Distill-Qwen-14B, tp=2"),
]


@pytest.mark.parametrize("preset, gpu, tp, measured, source", WEIGHT_LOGS)
def test_weights_per_rank_match_vllm_logs(preset: str, gpu: str, tp: int, measured: float, source: str) -> None:
    r = rigsize.estimate(preset, gpu=gpu, tp=tp)
    assert r.memory.per_gpu.weights / GiB == pytest.approx(measured, rel=0.02), source


def test_kv_capacity_matches_vllm_log_for_qwen3_235b() -> None:
    """vLLM issue (2025-07-22): Qwen3-235B-A22B-FP8 on 4x H100, tp=4: 'GPU KV cache size:
    178,880 tokens' for 8.11 GiB of KV cache per rank.  One KV head of 128 per rank (4 KV
    heads over tp=4), 94 layers, bf16."""
    r = rigsize.estimate("qwen3-235b-a22b", gpu="H100", tp=4, weights="fp8-block", seq=16)
    per_token = r.memory.kv_bytes_per_sequence / 16
    assert 8.11 * GiB / per_token == pytest.approx(178_880, rel=0.02)


def test_qwen2_72b_needs_more_than_one_h100_in_bf16() -> None:
    r = rigsize.estimate("qwen2-72b")
    assert not r.memory.fits and r.memory.headroom_bytes < 0
    assert r.memory.suggestions, "a layout that does not fit must say what would"
    for s in r.memory.suggestions:
        change = {k: v for k, v in s.change.items() if k != "gpus" or "tp" not in s.change}
        fixed = rigsize.estimate("qwen2-72b", **change)
        assert fixed.memory.fits, s


def test_parts_sum_to_total_and_headroom() -> None:
    r = rigsize.estimate("mixtral-8x7b", gpus=2, batch=8)
    p = r.memory.per_gpu
    assert p.weights + p.kv_cache + p.activations + p.gradients + p.optimizer + p.overhead == p.total
    assert r.memory.headroom_bytes == r.memory.usable_bytes - p.total


def test_max_concurrency_is_the_edge() -> None:
    r = rigsize.estimate("llama-3.1-8b", prompt=4096, output=512)
    n = r.memory.max_concurrency
    assert n and n > 1
    assert rigsize.estimate("llama-3.1-8b", prompt=4096, output=512, batch=n).memory.fits
    assert not rigsize.estimate("llama-3.1-8b", prompt=4096, output=512, batch=n + 1).memory.fits


def test_kv_heads_replicate_beyond_their_count() -> None:
    """8 KV heads at tp=16 (pp=1): each rank still holds one head, so KV per rank stops falling."""
    a = rigsize.estimate("llama-3.1-405b", tp=8, gpus=8).memory.kv_bytes_per_sequence
    b = rigsize.estimate("llama-3.1-405b", tp=16, gpus=16, gpu="H100").memory.kv_bytes_per_sequence
    assert a == b


def test_sliding_window_layers_cap_kv() -> None:
    """Gemma 2 alternates 4096-token sliding-window layers with global ones.

    transformers' cache keeps a window layer's last 4096 tokens: at 8192 tokens the KV is
    3/4 of the unwindowed figure.  vLLM >= 0.9.2 reserves ``min(window - 1 +
    max_num_batched_tokens, len)`` tokens plus one block per window layer
    (``SlidingWindowSpec.max_memory_usage_bytes``): with 2048 batched tokens that is
    ceil(6143 / 16) + 1 = 385 blocks = 6160 tokens, so (6160 + 8192) / 2 / 8192 of full."""
    kw = dict(prompt=8192 - 256, output=256, gpu="H100-SXM-80GB")
    r = rigsize.estimate("gemma-2-9b", engine="transformers", **kw)
    full = r.model.kv_bytes_per_token * 8192
    assert r.memory.kv_bytes_per_sequence == pytest.approx(0.75 * full, rel=0.01)
    v = rigsize.estimate("gemma-2-9b", max_num_batched_tokens=2048, **kw)
    assert v.memory.kv_bytes_per_sequence == pytest.approx((6160 + 8192) / 2 / 8192 * full, rel=0.001)
    old = rigsize.estimate("gemma-2-9b", engine_version="0.9.0", **kw)   # before the hybrid allocator: full
    assert old.memory.kv_bytes_per_sequence == pytest.approx(full, rel=0.001)


def test_tp_must_divide_heads() -> None:
    with pytest.raises(rigsize.PlanError, match="does not divide"):
        rigsize.estimate("qwen2-72b", tp=6)


def test_quantized_groups_must_split_over_tp() -> None:
    with pytest.raises(rigsize.FormatError, match="tp"):
        rigsize.estimate("qwen2-72b", weights="gptq-int4", tp=8)


def test_fp8_weights_refused_on_ampere() -> None:
    with pytest.raises(rigsize.FormatError, match="cannot run"):
        rigsize.estimate("llama-3.1-8b", gpu="V100-SXM2-32GB", weights="fp8")


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 64), seq=st.integers(64, 16000), extra_b=st.integers(0, 64), extra_s=st.integers(0, 8000))
def test_memory_never_falls_as_batch_or_sequence_grows(batch: int, seq: int, extra_b: int, extra_s: int) -> None:
    small = rigsize.estimate("qwen2-7b", batch=batch, seq=seq).memory.per_gpu
    big = rigsize.estimate("qwen2-7b", batch=batch + extra_b, seq=seq + extra_s).memory.per_gpu
    assert big.kv_cache >= small.kv_cache and big.activations >= small.activations and big.total >= small.total


@pytest.mark.parametrize("preset", ["llama-3.1-70b", "qwen3-30b-a3b", "deepseek-v3"])
def test_weights_per_gpu_never_rise_with_tp(preset: str) -> None:
    last = None
    for tp in (1, 2, 4, 8):
        w = rigsize.estimate(preset, tp=tp, gpu="B200").memory.per_gpu.weights
        assert last is None or w <= last
        last = w


FAMILIES = [  # within a family the high-precision policy is the same, so fewer bits never cost more
    ("fp32", "bf16", "fp8"),
    ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k"),
    ("gptq-int8", "gptq-int4"),
]


@pytest.mark.parametrize("preset", ["llama-3.1-70b", "qwen2.5-7b"])
@pytest.mark.parametrize("family", FAMILIES)
def test_lower_precision_never_costs_more(preset: str, family: tuple[str, ...]) -> None:
    sizes = [rigsize.estimate(preset, weights=f).memory.per_gpu.weights for f in family]
    assert sizes == sorted(sizes, reverse=True)


def test_kept_embeddings_make_fp8_bigger_than_q8_0_on_a_large_vocab() -> None:
    """Not a bug: fp8 checkpoints keep embed_tokens and lm_head in bf16 while Q8_0 quantizes
    them; Qwen2.5-7B's 152k vocabulary makes those two tensors 14% of the model."""
    fp8 = rigsize.estimate("qwen2.5-7b", weights="fp8").memory.per_gpu.weights
    q8 = rigsize.estimate("qwen2.5-7b", weights="q8_0").memory.per_gpu.weights
    assert fp8 > q8


def test_dp_replicas_share_the_requests() -> None:
    one = rigsize.estimate("llama-3.1-8b", batch=200)
    two = rigsize.estimate("llama-3.1-8b", dp=2, batch=400)
    assert two.memory.per_gpu.kv_cache == one.memory.per_gpu.kv_cache
    assert two.memory.max_concurrency == 2 * one.memory.max_concurrency


def test_seq_alone_sets_prompt_and_output() -> None:
    r = rigsize.estimate("llama-3.1-8b", seq="32K")
    assert r.assumptions["prompt"] + r.assumptions["output"] == 32768
    short = rigsize.estimate("llama-3.1-8b", seq=2048).performance
    long = rigsize.estimate("llama-3.1-8b", seq="32K").performance
    assert long.ttft_seconds > short.ttft_seconds


def test_default_lengths_fit_short_context_models() -> None:
    r = rigsize.estimate("gpt2")       # 1024-token context: defaults are clamped
    assert r.memory.fits and r.assumptions["prompt"] + r.assumptions["output"] <= 1024


def test_short_by_is_what_one_max_model_len_request_lacks() -> None:
    # Llama 3.1 8B on one RTX 4090: the weights fit, but vLLM refuses to start because one
    # request of the default max_model_len (131,072) needs 131,072 x 131,072 B = 16 GiB of KV
    # (32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B per token), more than the pool; vLLM's
    # refusal reads "(X GiB KV cache is needed, which is larger than the available KV cache
    # memory (Y GiB)", so the shortfall is X - Y, not the memory left over.
    r = rigsize.estimate("llama-3.1-8b", gpu="RTX-4090")
    m = r.memory
    assert m.per_gpu.total < m.usable_bytes and not m.fits
    needed, pool = 131_072 * 131_072, m.kv_cache_tokens * 131_072
    assert m.headroom_bytes == -(needed - pool)
    assert rigsize.estimate("llama-3.1-8b", gpu="RTX-4090", max_model_len=m.kv_cache_tokens).memory.fits
    # the fix that costs no hardware comes first
    assert m.suggestions[0].change == {"max_model_len": m.kv_cache_tokens}


def test_a_float32_checkpoint_is_served_in_16_bits() -> None:
    # Gemma 2 27B's config.json says torch_dtype float32; vLLM's dtype "auto" downcasts float32
    # models to 16 bits (bf16 on compute capability 8.0+, fp16 before: vllm _resolve_auto_dtype),
    # so its weights take 27,227,128,320 x 2 B, not x 4.
    r = rigsize.estimate("gemma-2-27b")
    assert r.model.params == 27_227_128_320
    assert r.assumptions["weights"] == "bf16" and "float32" in r.assumptions["weights_reason"]
    assert abs(r.memory.per_gpu.weights / (27_227_128_320 * 2) - 1) < 0.01
    assert rigsize.estimate("gemma-2-27b", gpu="V100-SXM2-32GB", gpus=2).assumptions["weights"] == "fp16"
    assert rigsize.estimate("gemma-2-27b", weights="fp32", gpus=2).memory.per_gpu.weights > 27e9 * 4 / 2 * 0.99


def test_plan_never_sizes_fp32_weights_for_serving() -> None:
    p = rigsize.plan("gemma-2-27b", task="inference")
    assert p["recommendations"] and all(r["inputs"]["weights"] == "bf16" for r in p["recommendations"])
