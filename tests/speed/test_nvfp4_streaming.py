"""NVFP4 weights stream at their own fitted fraction of peak bandwidth (Efficiency.nvfp4_memory):
a decode step that only reads weights takes weight bytes over that fraction, other formats keep
the common one, and 0 means the common one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rigsize.hardware.gpus import resolve_gpu
from rigsize.model.formats import resolve_kv_format, resolve_weight_format
from rigsize.model.inputs import resolve_model
from rigsize.planning.layout import Layout
from rigsize.speed.roofline import Efficiency, efficiency, peak_bandwidth
from rigsize.speed.serving import model_cost, step_time

GPU = resolve_gpu("B200")
ARCH = resolve_model("llama-3.1-70b").arch
LAYOUT = Layout(tp=1)
# memory-bound and nothing else: no overheads, compute out of the way
BARE = Efficiency(compute=0.95, memory=0.8, attention_compute=0.9, link=0.77, step_overhead_s=0.0,
                  collective_latency_s=0.0)


def _weights_only_step(fmt_name: str, eff: Efficiency) -> tuple[float, float]:
    fmt = resolve_weight_format(fmt_name)
    cost = model_cost(ARCH, LAYOUT, fmt, resolve_kv_format("fp8"))
    return step_time(cost, ARCH, LAYOUT, GPU, fmt, eff, 1, 0, 0, 0).seconds, cost.dense_weight_bytes


# Llama 3.1 70B's lm_head, which NVFP4 checkpoints keep in bf16: 128256 x 8192 x 2 bytes
LM_HEAD_BYTES = 128256 * 8192 * 2


def test_nvfp4_weights_stream_at_their_own_fraction() -> None:
    seconds, weight_bytes = _weights_only_step("nvfp4", replace(BARE, nvfp4_memory=0.4))
    # one sequence at context 0 reads no KV: the quantized weights over 0.4 of peak, the kept lm_head over 0.8
    # (the norms' few kB are kept too, within the tolerance)
    expected = (weight_bytes - LM_HEAD_BYTES) / 0.4 + LM_HEAD_BYTES / 0.8
    assert seconds == pytest.approx(expected / peak_bandwidth(GPU), rel=1e-3)
    common, _ = _weights_only_step("nvfp4", BARE)           # 0: the common fraction
    assert common == pytest.approx(weight_bytes / (peak_bandwidth(GPU) * 0.8), rel=1e-3)


def test_other_formats_ignore_the_nvfp4_fraction() -> None:
    with_fraction, _ = _weights_only_step("fp8", replace(BARE, nvfp4_memory=0.4))
    without, _ = _weights_only_step("fp8", BARE)
    assert with_fraction == without


def test_fitted_blackwell_rows_carry_an_nvfp4_fraction_and_hopper_rows_none() -> None:
    # only Blackwell runs NVFP4 on tensor cores, and only its fit rows include NVFP4 runs (SERVING-README)
    for engine in ("vllm", "sglang", "trtllm"):
        assert 0.2 <= efficiency("inference", GPU, engine=engine)[0].nvfp4_memory <= 0.98
        assert efficiency("inference", resolve_gpu("H100"), engine=engine)[0].nvfp4_memory == 0.0


def test_roofline_p_norm_runs_from_the_sum_to_the_maximum() -> None:
    from rigsize.speed.roofline import roofline
    assert roofline(3.0, 4.0, 0.0) == 4.0                      # 0: the hard roofline
    assert roofline(3.0, 4.0, 1.0) == pytest.approx(7.0)       # p = 1: no overlap at all
    assert roofline(3.0, 4.0, 2.0) == pytest.approx(5.0)       # the 3-4-5 triangle
    assert 4.0 < roofline(3.0, 4.0, 16.0) < 4.01               # large p: near the maximum
    assert roofline(0.0, 4.0, 2.0) == 4.0 and roofline(0.0, 0.0, 2.0) == 0.0


def test_a_chosen_memory_fraction_moves_nvfp4s_with_it() -> None:
    packaged, _ = efficiency("inference", GPU, engine="vllm")
    chosen, _ = efficiency("inference", GPU, {"memory": packaged.memory / 2}, engine="vllm")
    assert chosen.nvfp4_memory == pytest.approx(packaged.nvfp4_memory / 2)     # the fitted ratio is kept
    both, _ = efficiency("inference", GPU, {"memory": 0.5, "nvfp4_memory": 0.3}, engine="vllm")
    assert both.nvfp4_memory == 0.3                                             # unless it is chosen too


def test_kv_reads_keep_the_common_fraction() -> None:
    # a sequence at context 1000: the KV bytes stream at memory, only the weights at nvfp4_memory
    fmt, kv = resolve_weight_format("nvfp4"), resolve_kv_format("fp8")
    cost = model_cost(ARCH, LAYOUT, fmt, kv)
    eff = replace(BARE, nvfp4_memory=0.4)
    seconds = step_time(cost, ARCH, LAYOUT, GPU, fmt, eff, 1, 1000, 0, 0).seconds
    expected = ((cost.dense_weight_bytes - LM_HEAD_BYTES) / 0.4
                + (LM_HEAD_BYTES + 1000 * cost.kv_bytes_per_token) / 0.8) / peak_bandwidth(GPU)
    assert seconds == pytest.approx(expected, rel=1e-3)


def test_the_new_keys_are_accepted_on_the_command_line() -> None:
    from rigsize.planning.job import parse_efficiency
    assert parse_efficiency("roofline_p=0,nvfp4_memory=0") == {"roofline_p": 0.0, "nvfp4_memory": 0.0}
    assert parse_efficiency("roofline_p=2.5,nvfp4_memory=0.4") == {"roofline_p": 2.5, "nvfp4_memory": 0.4}
