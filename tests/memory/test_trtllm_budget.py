"""TensorRT-LLM's own KV budget (--engine trtllm): the pool is kv_cache_free_gpu_memory_fraction (default 0.9,
trtllm-serve's) of what CUDA's total leaves after the weights, the activation peak and non-torch memory
(tensorrt_llm/_torch/pyexecutor/_util.py _cal_max_memory: available_kv = (total - peak) x fraction; see
data/validation/trtllm_budget_rules.md).  The expectations below are that arithmetic on the estimate's own parts,
not rigsize's capacity code."""

from __future__ import annotations

import pytest

import rigsize

KW = dict(task="inference", gpu="H200-SXM-141GB", gpus=1, weights="fp8", kv_dtype="fp8", prompt=8192, output=1024)


def _est(**extra):
    return rigsize.estimate("llama-3.1-70b", engine="trtllm", **KW, **extra)


def test_the_pool_is_the_fraction_of_what_the_rest_leaves() -> None:
    r = _est()
    per = r.memory.per_gpu
    other = per.weights + per.activations + per.overhead
    from rigsize.hardware.gpus import resolve_gpu

    cuda_total = resolve_gpu("H200-SXM-141GB").usable_memory_bytes
    pool = 0.9 * (cuda_total - other)
    assert r.memory.usable_bytes == pytest.approx(other + pool, abs=1)
    # 70B in fp8: 80 layers x 8 KV heads x 128 x 2 (K, V) x 1 byte = 163,840 bytes a token, 32-token blocks
    per_seq = -(-9216 // 32) * 32 * 163_840
    assert r.memory.max_concurrency == int(pool // (32 * 163_840)) * 32 * 163_840 // per_seq
    assert r.assumptions["kv_cache_free_gpu_memory_fraction"] == 0.9


def test_a_given_fraction_scales_the_pool() -> None:
    a, b = _est(), _est(kv_cache_free_gpu_memory_fraction=0.45)
    other = a.memory.per_gpu.weights + a.memory.per_gpu.activations + a.memory.per_gpu.overhead
    assert (b.memory.usable_bytes - other) == pytest.approx((a.memory.usable_bytes - other) / 2, abs=2)


def test_more_memory_for_the_cache_than_vllms_share_of_the_whole_card() -> None:
    # vLLM: 0.92 x total - the rest; TensorRT-LLM: 0.9 x (total - the rest): with 68 GiB of fp8 weights on a
    # 141 GB card the latter leaves more (the 10% it keeps back is of the free memory, not of the card)
    vllm = rigsize.estimate("llama-3.1-70b", **KW)
    assert _est().memory.max_concurrency > vllm.memory.max_concurrency
