"""Inference and training speed: validation errors on data nobody here produced, and
properties of the models.  The error targets are the issues' (median |error| on
reserved serving rows of each class: TPOT <= 10%, TTFT <= 20%; training step time / MFU
<= 10% on known-layout runs); where rigsize is worse, the tests pin today's honest figure
so it cannot silently regress, and the README says so."""

from __future__ import annotations

import statistics

import pytest

import rigsize
from rigsize.validation import serving_cases, serving_rows, summarize, training_rows, whole_run_rows


def _median(rows, metric: str, split: str) -> float:
    errs = [abs(r.error) for r in rows if r.metric == metric and r.split == split]
    assert errs, (metric, split)
    return statistics.median(errs)


@pytest.fixture(scope="module")
def serving() -> list:
    return serving_rows()


def _class_median(rows, cls: str, metric: str, split: str) -> float:
    errs = [abs(r.error) for r in rows if r.cls == cls and r.metric == metric and r.split == split]
    assert len(errs) >= 20, (cls, metric, split, len(errs))
    return statistics.median(errs)


# Reserved rows, per class (engine | GPU family | dense or MoE), never fitted on.  Classes that meet the
# issue's targets (TPOT <= 10%, TTFT <= 20%) are held to them; the others pin the figure read once after
# the last model change (+2 points) so they cannot silently regress, and the README lists them as misses.
# Re-pinned 2026-12-01 after the collectives' bandwidth became NCCL's published NVLink ring fraction
# (0.82, was fitted at 0.21-0.34) with the per-call latency fitted instead: chosen on the fit split (TTFT
# median |log err| summed over the six Hopper/Blackwell engine rows 1.70 -> 1.47, decode 0.53 -> 0.57), then
# read once on these rows: pooled TTFT 43.5% -> 39.6%, pooled TPOT 14.7% -> 17.1%; per class TTFT better in
# 4 of 10 (vLLM Hopper dense 23.5% -> 17.6%, now within target), TPOT worse in 7 of 10 (vLLM Hopper dense
# 9.5% -> 12.2%, no longer within target; SGLang Blackwell MoE 13.4% -> 8.2%, now within).  The change
# stands as chosen on the fit split; it was not revised after this reading.
# Re-pinned 2026-12-02 after TTFT gained the closed-network bound past saturation (R >= N D - Z) and NVLink 3 /
# 5 took their own published ring fractions, with the prefill side of every row refitted on the fit split (TTFT
# median |log err|, e.g. vLLM Hopper 0.114 -> 0.103, SGLang Hopper 0.319 -> 0.280): read once, pooled TTFT 39.6% ->
# 39.8%, TPOT 17.1% -> 17.1%; vLLM Hopper dense TTFT 17.6% -> 20.3%, no longer within target; not revised.
# Then, after review, a prompt shorter than the budget adds only its share of a full budget's step to the
# queue (MoE TTFT had fallen as prompts grew); prefill sides refitted, read once: pooled TTFT 39.7%, SGLang
# Hopper MoE TTFT 39.9% -> 38.1%, SGLang Hopper dense 39.3% -> 38.7%.
# Re-pinned 2026-12-02 (second change that day) after the decode steps of the spread waves carry the other
# clients' prompt chunks (speed.serving._steady_state; every wave had the burst wave's TPOT), vLLM and
# TensorRT-LLM rows refitted on the fit split (fit TTFT / decode median |log err|: vLLM Hopper 0.103 / 0.093 ->
# 0.104 / 0.047, TensorRT-LLM Hopper 0.370 / 0.101 -> 0.310 / 0.106; SGLang kept as it was, where the change made
# its fit split worse): read once, pooled TPOT 17.1% -> 14.2%, TTFT 39.7% -> 37.9%; vLLM Hopper dense TPOT 12.0% ->
# 8.4% and TTFT 20.3% -> 15.4%, both within target; TensorRT-LLM Blackwell MoE TPOT 26% -> 30.4% worse; not revised.
# 2026-12-03: TensorRT-LLM Blackwell MoE re-pinned at 0.26 (25.1%) after attention-DP replicas' tokens all reach
# the experts they share, and their hidden states are all-gathered and reduce-scattered per MoE layer
# (speed.serving.step_time; 26.3% after the first alone).
# 2026-12-03: a data correction, not a model change. InferenceX's launch scripts (read in the InferenceX repository at
# the measurement dates) ran the Llama-3.1-70B rows with an fp8 KV cache (they said bf16), drew request lengths from
# int(0.8 L) .. L (random-range-ratio 0.8: every InferenceX row is now predicted at its mean lengths) and fixed the
# scheduler's token budget (TensorRT-LLM 16384 for Llama, (CONC + ISL + 127) // 64 * 64 for DeepSeek; SGLang's
# chunked prefill 8192-32768), and the SGLang H200 DeepSeek rows ran SGLang's auto KV dtype (bf16). Every engine's
# rows refitted on the fit split, read once: vLLM Hopper dense TPOT 8.4% -> 9.1%, TTFT 15.4% -> 11.1% (both within
# target); vLLM Blackwell dense TPOT 9.4% -> 10.1% (no longer within); SGLang Blackwell MoE TPOT 8.2% -> 13.1% (no
# longer within); SGLang Hopper MoE 9.9% -> 9.5%; TensorRT-LLM Hopper MoE 32% -> 36.6%. Not revised after reading.
# 2026-12-03 (later): the SGLang InferenceX rows took their scripts' --mem-fraction-static (the DeepSeek-R1 fp8 tp 4
# rows ran at 0.95: rigsize's default share had left their KV cache empty) and --scheduler-recv-interval (10 / 30
# decode steps between polls for new requests, now in speed.serving._steady_ttft); SGLang Blackwell refitted on
# the fit split (TTFT 0.322 -> 0.151), read once: SGLang Blackwell MoE TPOT 13.1% -> 12.3%, TTFT 83% -> 61.8%;
# vLLM Hopper dense TTFT 11.1% -> 10.6% (its 0.9 --gpu-memory-utilization, read from the Llama scripts).
# 2026-12-03 (later): the TensorRT-LLM InferenceX rows took their scripts' admission holds (batch waiting 20 / 0.9 on
# the Llama 1k x 1k tp < 8 runs, 40 / 0.8 on one DeepSeek group; attention-DP balancing, 60 steps; now in
# speed.serving._hold_steps); both TensorRT-LLM rows refitted, read once: Blackwell dense TPOT 11.0% -> 12.9% (worse),
# TTFT 31.5% -> 13.4% (within target); Blackwell MoE 25.6% -> 23.4% / 58% -> 49.5%; Hopper dense 12.7% -> 10.6% /
# 30.3% -> 29.7%; Hopper MoE 36.6% -> 37.7% (worse) / 46.5% -> 45.3%. Not revised after reading.
# 2026-12-03 (last): TensorRT-LLM sized by its own KV budget (memory.runtime._trtllm_engine) and the holds' arrival
# rate counting the other clients only; both rows refitted, read once: Blackwell dense 12.9% -> 12.2% / 13.4% -> 13.1%;
# Hopper dense 10.6% -> 11.8% / 29.7% -> 30.0%; Hopper MoE TPOT 37.7% -> 43.2% (worse: the refit put Hopper's decode
# GEMM fraction at its 0.95 cap) / 45.3% -> 44.4%; Blackwell MoE unchanged. Not revised after reading.
RESERVED_TPOT = {
    "vllm|blackwell|dense": 0.10, "sglang|hopper|moe": 0.10,
    "vllm|hopper|dense": 0.10, "trtllm|hopper|dense": 0.115, "trtllm|blackwell|dense": 0.13,
    "sglang|hopper|dense": 0.24, "trtllm|blackwell|moe": 0.44, "trtllm|hopper|moe": 0.54,
    "vllm|hopper|moe": 0.495,       # the held-out model (Qwen3-235B-A22B) alone
}
# Re-pinned 2026-12-04 after the 2025-11 DeepSeek-R1 rows took their scripts' layouts and split rule 3 made the
# deployments they joined fit (data, SERVING-README): TensorRT-LLM Blackwell dense TPOT 12.2% -> 14.0%, TTFT 13.1% ->
# 16.1%; its MoE class 45 -> 26 reserved rows; TensorRT-LLM Hopper MoE is now the held-out Qwen3-235B-A22B alone;
# SGLang Blackwell MoE kept 11 reserved rows (under 20: no target, no pin).  Then NVFP4 weights took their own
# streaming fraction (Efficiency.nvfp4_memory): vLLM Blackwell dense TPOT 10.1% -> 8.8% (met), TensorRT-LLM Blackwell
# dense 14.0% -> 13.1%, TTFT 16.1% -> 16.3%.  Then the p-norm roofline (Efficiency.roofline_p): SGLang Hopper MoE
# TPOT 9.5% -> 9.8% (met), TTFT 37.6% -> 24.9%; SGLang Hopper dense 25.2% / 37.9% -> 23.8% / 36.2%; TensorRT-LLM
# Blackwell dense 13.1% / 16.3% -> 12.8% / 15.0%; vLLM Hopper MoE (Qwen3) TPOT 48.3% -> 48.8%
RESERVED_TTFT = {
    "vllm|hopper|dense": 0.12, "vllm|blackwell|dense": 0.28, "sglang|hopper|moe": 0.26,
    "trtllm|hopper|dense": 0.30, "sglang|hopper|dense": 0.365, "trtllm|blackwell|dense": 0.155,
    "trtllm|blackwell|moe": 0.42, "trtllm|hopper|moe": 0.43,
}


@pytest.mark.parametrize("cls", sorted(RESERVED_TPOT))
def test_serving_tpot_on_reserved_rows_per_class(serving: list, cls: str) -> None:
    assert _class_median(serving, cls, "tpot_s", "reserved") <= RESERVED_TPOT[cls]


@pytest.mark.parametrize("cls", sorted(RESERVED_TTFT))
def test_serving_ttft_on_reserved_rows_per_class(serving: list, cls: str) -> None:
    """vLLM on Hopper (dense, 10.6%) and TensorRT-LLM on Blackwell (dense, 15.0%) meet the 20% TTFT target; the
    others are pinned (see README)."""
    assert _class_median(serving, cls, "ttft_s", "reserved") <= RESERVED_TTFT[cls]


def test_serving_tpot_on_fitted_rows(serving: list) -> None:
    for cls in ("vllm|hopper|dense", "trtllm|hopper|dense", "vllm|blackwell|dense"):
        assert _class_median(serving, cls, "tpot_s", "fit") <= 0.12


def test_every_serving_row_is_fit_reserved_or_set_apart() -> None:
    assert {c.split for c in serving_cases()} == {"fit", "reserved", "spec-decode?"}


def test_training_known_layouts_within_target() -> None:
    rows = [r for r in training_rows() if not r.case.startswith("mbridge")]
    assert _median(rows, "step_s", "reserved") <= 0.10
    assert statistics.median(abs(r.error) for r in rows if r.split == "reserved") <= 0.10


@pytest.mark.xfail(strict=True, reason=(
    "known miss since 2026-12-02: data-parallel rings across nodes run at the node's NICs together "
    "(NVIDIA's 192 GB/s on 8 x HDR DGX A100s, NVIDIA/nccl #812), under which ZeRO-3's gathers of 175B "
    "hide behind compute at 1,536 GPUs; the 2021 DeepSpeed runs were bound at about one NIC per GPU "
    "(a constant ~49 s step at 768 and 1,536 GPUs, ~1 TB of gathers per GPU), a shortfall not modelled"))
def test_zero3_collapses_at_scale() -> None:
    """Narayanan et al. 2021 Table 2: ZeRO-3 throughput per GPU halves each time the GPU
    count doubles at fixed batch (144 -> 88 -> 44 TFLOP/s for 175B)."""
    rows = {r.case: r for r in training_rows()}
    a = rows["narayanan2021-t2-zero3-174p6b-384gpu"].predicted
    b = rows["narayanan2021-t2-zero3-174p6b-1536gpu"].predicted
    assert b < a / 2.5


# Llama 3.1 8B's model card (1.46M H100-hours for about 15T tokens) implies 6 x 8e9 x 15e12 /
# (1.46e6 x 3600 s) = 137 TFLOP/s per GPU, 14% of the dense peak, against 25% for its 70B and
# about 40% for its 405B (Llama 3 paper Table 4): its cluster layout is unpublished, and at rigsize's
# assumed 1,024 GPUs its data-parallel rings no longer bind since they use the node's NICs together.
WHOLE_RUN_KNOWN_MISSES = {"llama31-8b-whole-run"}


def test_whole_runs_within_a_factor() -> None:
    rows = [r for r in whole_run_rows() if r.case not in WHOLE_RUN_KNOWN_MISSES]
    assert len(rows) >= 4
    for r in rows:
        assert 0.5 <= r.predicted / r.measured <= 1.6, r.case


@pytest.mark.xfail(strict=True, reason="Llama 3.1 8B's published GPU-hours imply 14% MFU; see WHOLE_RUN_KNOWN_MISSES")
def test_llama31_8b_whole_run_within_a_factor() -> None:
    (r,) = [r for r in whole_run_rows() if r.case in WHOLE_RUN_KNOWN_MISSES]
    assert 0.5 <= r.predicted / r.measured <= 1.6


def test_summary_has_both_splits(serving: list) -> None:
    splits = {(s["metric"], s["split"]) for s in summarize(serving)}
    assert ("tpot_s", "fit") in splits and ("tpot_s", "reserved") in splits


# ---- properties ----------------------------------------------------------------

def test_throughput_grows_and_latency_grows_with_concurrency() -> None:
    last = None
    for c in (1, 4, 16, 64):
        p = rigsize.estimate("llama-3.1-8b", batch=c).performance
        assert p is not None
        if last is not None:
            assert p.output_tokens_per_second >= last.output_tokens_per_second
            assert p.tpot_seconds >= last.tpot_seconds
        last = p


def test_decode_is_memory_bound_at_batch_1() -> None:
    p = rigsize.estimate("llama-3.1-70b", gpus=4).performance
    assert p is not None and p.bound.decode == "memory"
    # TPOT cannot beat reading the weights once per token at peak bandwidth
    weights = 70.6e9 * 2 / 4
    assert p.tpot_seconds > weights / 3.35e12


def test_fp8_decodes_faster_than_bf16() -> None:
    bf16 = rigsize.estimate("llama-3.1-70b", gpus=4).performance
    fp8 = rigsize.estimate("llama-3.1-70b", gpus=4, weights="fp8").performance
    assert fp8.tpot_seconds < bf16.tpot_seconds


def test_training_breakdown_sums_and_mfu_below_one() -> None:
    p = rigsize.estimate("llama-3.1-70b", task="pretrain", gpus=64, global_batch=512).performance
    assert p is not None
    assert sum(p.breakdown.model_dump().values()) == pytest.approx(p.step_seconds)
    assert 0 < p.mfu <= p.hfu < 1


def test_train_tokens_give_days_and_gpu_hours() -> None:
    p = rigsize.estimate("llama-3.1-8b", task="pretrain", gpus=8, global_batch=64, train_tokens="1T").performance
    assert p.gpu_hours == pytest.approx(p.train_days * 24 * 8)
    tokens_per_s = 64 * 4096 / p.step_seconds
    assert p.train_days == pytest.approx(1e12 / tokens_per_s / 86400)


def test_recompute_costs_hfu_not_mfu() -> None:
    none = rigsize.estimate("llama-3.1-8b", task="pretrain", gpus=8, global_batch=64).performance
    full = rigsize.estimate("llama-3.1-8b", task="pretrain", gpus=8, global_batch=64, recompute="full").performance
    assert full.step_seconds > none.step_seconds and full.hfu > full.mfu


def test_efficiency_override() -> None:
    base = rigsize.estimate("llama-3.1-8b", batch=8).performance
    slow = rigsize.estimate("llama-3.1-8b", batch=8, efficiency="memory=0.3").performance
    assert slow.tpot_seconds > base.tpot_seconds
    with pytest.raises(rigsize.InputError):
        rigsize.estimate("llama-3.1-8b", efficiency="warp=2")
