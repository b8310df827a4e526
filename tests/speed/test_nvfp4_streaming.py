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


def test_nvfp4_weights_stream_at_their_own_fraction() -> None:
    seconds, weight_bytes = _weights_only_step("nvfp4", replace(BARE, nvfp4_memory=0.4))
    # one sequence at context 0 reads no KV: the step is the weights over 0.4 of peak
    assert seconds == pytest.approx(weight_bytes / (peak_bandwidth(GPU) * 0.4), rel=1e-3)
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
