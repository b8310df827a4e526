"""--precision fp8 for training (issue 12): Transformer Engine runs the linear layers in FP8,
attention and the lm_head stay bf16, so the step is faster but less than 2x; MFU is against
the fp8 peak (NeMo's convention), so the same model FLOPs give a lower MFU."""

from __future__ import annotations

import pytest

import rigsize

ARGS = dict(task="pretrain", gpus=64, gpu="H100")
H100_BF16, H100_FP8 = 989.4e12, 1978.9e12      # dense peaks, NVIDIA H100 SXM datasheet


def test_fp8_is_faster_than_bf16_but_less_than_twice() -> None:
    bf16 = rigsize.estimate("llama-3.1-70b", **ARGS).performance
    fp8 = rigsize.estimate("llama-3.1-70b", precision="fp8", **ARGS).performance
    assert 1.0 < bf16.step_seconds / fp8.step_seconds < 2.0


def test_fp8_mfu_is_against_the_fp8_peak() -> None:
    bf16 = rigsize.estimate("llama-3.1-70b", **ARGS).performance
    fp8 = rigsize.estimate("llama-3.1-70b", precision="fp8", **ARGS).performance
    flops_per_gpu = bf16.mfu * bf16.step_seconds * H100_BF16          # the same model FLOPs either way
    assert fp8.mfu == pytest.approx(flops_per_gpu / (fp8.step_seconds * H100_FP8), rel=1e-3)


def test_fp8_memory_is_sized_as_bf16_and_says_so() -> None:
    bf16 = rigsize.estimate("llama-3.1-70b", **ARGS)
    fp8 = rigsize.estimate("llama-3.1-70b", precision="fp8", **ARGS)
    assert fp8.memory.per_gpu.total == bf16.memory.per_gpu.total
    assert "precision_memory" in fp8.assumptions
