"""Properties of the continuous-batching simulation (rigsize.speed.serving).

A closed-loop client never waits for its own request: at concurrency 1 the engine is
idle when a request arrives, so TTFT is the prefill alone and cannot depend on how many
tokens the request will later generate.  More prompt or more clients never make the
first token arrive sooner.
"""

from __future__ import annotations

import math
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rigsize
from rigsize.hardware.gpus import resolve_gpu
from rigsize.memory.runtime import engine_for
from rigsize.model.formats import resolve_kv_format, resolve_weight_format
from rigsize.model.inputs import resolve_model
from rigsize.planning.layout import Layout
from rigsize.speed.roofline import efficiency
from rigsize.speed.serving import serve

# (preset, gpu, tp, ep, weights): dense and MoE, one GPU and tensor-parallel
SETUPS = [
    ("llama-3.1-8b", "H100", 1, 1, "bf16"),
    ("llama-3.1-70b", "H200", 4, 1, "fp8"),
    ("mixtral-8x7b", "H100", 2, 2, "bf16"),
]


@cache
def _setup(i: int, engine: str) -> tuple:
    preset, gpu_name, tp, ep, weights = SETUPS[i]
    gpu = resolve_gpu(gpu_name)
    eff, _ = efficiency("inference", gpu, engine=engine)
    return (resolve_model(preset).arch, Layout(tp=tp, ep=ep), gpu, resolve_weight_format(weights),
            resolve_kv_format("bf16"), eff, engine_for(gpu))


def _ttft(i: int, engine: str, concurrency: int, prompt: int, output: int, kv_tokens: int | None,
          waves: float) -> float:
    arch, layout, gpu, fmt, kv, eff, eng = _setup(i, engine)
    capacity = None if kv_tokens is None else max(1, kv_tokens // (prompt + output))
    return serve(arch, layout, gpu, fmt, kv, eff, eng, concurrency, prompt, output,
                 kv_capacity=capacity, waves=waves).ttft_seconds


setup = st.integers(0, len(SETUPS) - 1)
engines = st.sampled_from(["vllm", "sglang", "trtllm"])
prompts = st.integers(1, 16384)
outputs = st.integers(1, 4096)
kv_pools = st.one_of(st.none(), st.integers(2_000, 2_000_000))   # KV cache size in tokens
wave_counts = st.sampled_from([math.inf, 10.0, 1.0])             # steady service, InferenceMAX, one burst


@settings(max_examples=60, deadline=None)
@given(setup, engines, prompts, outputs, outputs, wave_counts)
def test_batch1_ttft_does_not_depend_on_output(i, engine, prompt, out_a, out_b, waves) -> None:
    a = _ttft(i, engine, 1, prompt, out_a, None, waves)
    b = _ttft(i, engine, 1, prompt, out_b, None, waves)
    assert math.isclose(a, b, rel_tol=1e-12), (a, b)


@settings(max_examples=60, deadline=None)
@given(setup, engines, prompts, st.integers(1, 4096), outputs, kv_pools, wave_counts)
def test_ttft_never_falls_as_the_prompt_grows(i, engine, prompt, more, output, kv_tokens, waves) -> None:
    if kv_tokens is not None and kv_tokens < prompt + more + output:
        kv_tokens = None     # the longer request must still fit one sequence
    short = _ttft(i, engine, 4, prompt, output, kv_tokens, waves)
    long = _ttft(i, engine, 4, prompt + more, output, kv_tokens, waves)
    assert long >= short * (1 - 1e-12), (short, long)


@settings(max_examples=60, deadline=None)
@given(setup, engines, st.integers(1, 256), st.integers(1, 256), st.integers(1, 8192), outputs, kv_pools,
       wave_counts)
def test_ttft_never_falls_as_concurrency_grows(i, engine, c, more, prompt, output, kv_tokens, waves) -> None:
    if kv_tokens is not None and kv_tokens < prompt + output:
        kv_tokens = None
    few = _ttft(i, engine, c, prompt, output, kv_tokens, waves)
    many = _ttft(i, engine, c + more, prompt, output, kv_tokens, waves)
    assert many >= few * (1 - 1e-12), (few, many)


def test_batch1_ttft_is_the_prefill_alone() -> None:
    """The issue's case: 760 / 230 / 81 ms at output 1 / 2 / 128 before the fix.  Now one
    number, and it is the time of the prompt's prefill steps on an idle engine plus the
    fitted fixed TTFT overhead (no queueing term)."""
    from rigsize.speed.serving import model_cost, step_time

    ttfts = {o: rigsize.estimate("llama-3.1-8b", prompt=4096, output=o).performance.ttft_seconds
             for o in (1, 2, 128)}
    assert len({round(v, 12) for v in ttfts.values()}) == 1, ttfts
    arch, layout, gpu, fmt, kv, eff, eng = _setup(0, "vllm")
    cost = model_cost(arch, layout, fmt, kv)
    full, rest = divmod(4096, eng.max_num_batched_tokens)
    prefill = full * step_time(cost, arch, layout, gpu, fmt, eff, 0, 0, eng.max_num_batched_tokens, 2048).seconds
    if rest:
        prefill += step_time(cost, arch, layout, gpu, fmt, eff, 0, 0, rest, 2048).seconds
    assert math.isclose(ttfts[128], prefill + eff.ttft_overhead_s, rel_tol=1e-9)


def test_tensor_parallel_across_servers_runs_at_the_network_rate() -> None:
    # H100 SXM: NVLink 4, 900 GB/s = 450e9 each way, 8 GPUs per HGX board; across boards one
    # ConnectX-7 NDR port per GPU, 400 Gb/s = 50e9 B/s.  GB200 NVL72: 72 GPUs on one NVLink fabric.
    from rigsize.speed.roofline import group_bandwidth, spans_nodes

    h100, gb200 = resolve_gpu("H100-SXM-80GB"), resolve_gpu("GB200")
    assert group_bandwidth(h100, 8) == 450e9 and group_bandwidth(h100, 16) == 50e9
    assert group_bandwidth(gb200, 16) == 900e9 and spans_nodes(gb200, 144)
    assert not spans_nodes(h100.model_copy(update={"gpus_per_node": 16}), 16)     # --gpus-per-node 16


def test_cross_node_tp_is_slower_and_said() -> None:
    # Llama 3.1 405B on 16 H100s with an 8k prompt: tp 16 all-reduces cross the network
    # (hidden 16384 x 8192 tokens x 2 B = 268 MB per all-reduce, 2 per layer, 126 layers);
    # tp 8 x pp 2 keeps them inside each server.
    across = rigsize.estimate("llama-3.1-405b", gpu="H100-SXM-80GB", gpus=16, tp=16, prompt=8192)
    inside = rigsize.estimate("llama-3.1-405b", gpu="H100-SXM-80GB", gpus=16, tp=16, prompt=8192, gpus_per_node=16)
    assert across.performance.ttft_seconds > 3 * inside.performance.ttft_seconds
    assert any("tp=16 spans more GPUs" in w for w in across.warnings)
    assert not any("spans more GPUs" in w for w in inside.warnings)


def test_nvlink_bridges_join_only_their_group() -> None:
    # A100 PCIe: "NVLink Bridge for 2 GPUs" (600 GB/s = 300e9 each way), PCIe 4.0 x16 beyond
    # the pair (16 GT/s x 16 lanes x 128/130 / 8 = 31.5e9); H200 NVL: "2- or 4-way" bridges at
    # 900 GB/s per GPU, PCIe 5.0 x16 beyond four; an HGX board's NVSwitch reaches all 8.
    from rigsize.speed.roofline import fabric_bandwidth

    pcie4, pcie5 = 16e9 * 16 / 8 * 128 / 130, 32e9 * 16 / 8 * 128 / 130
    a100, h200nvl, h100 = resolve_gpu("A100-PCIE-80GB"), resolve_gpu("H200-NVL-141GB"), resolve_gpu("H100-SXM-80GB")
    assert fabric_bandwidth(a100, 2) == 300e9 and fabric_bandwidth(a100, 4) == pytest.approx(pcie4)
    assert fabric_bandwidth(h200nvl, 4) == 450e9 and fabric_bandwidth(h200nvl, 8) == pytest.approx(pcie5)
    assert fabric_bandwidth(h100, 8) == 450e9


def test_zero3_over_pcie_bridged_cards_is_communication_bound() -> None:
    # Llama 3.1 70B LoRA under ZeRO-3 on 4 GPUs: every micro-batch gathers the 70.6B frozen
    # bf16 weights (141 GB) for forward and again for backward; on A100 PCIe cards beyond the
    # bridged pair that runs at PCIe 4.0 rates, on A100 SXM at NVSwitch rates.
    opts = dict(task="lora", gpus=4, zero=3, recompute="full", seq=2048)
    pcie = rigsize.estimate("llama-3.1-70b", gpu="A100-PCIE-80GB", **opts).performance
    sxm = rigsize.estimate("llama-3.1-70b", gpu="A100-SXM-80GB", **opts).performance
    assert sxm.breakdown.dp_comm == 0.0 and pcie.breakdown.dp_comm > 2 * 141e9 / (16e9 * 16 / 8) - pcie.breakdown.compute
    assert pcie.step_seconds > 2 * sxm.step_seconds


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([1, 8, 64, 128]), st.sampled_from([128, 2048]), st.sampled_from([64, 512]))
def test_closed_loop_throughput_obeys_littles_law(batch, prompt, output) -> None:
    # a closed loop of N clients, each with one request in flight back to back: requests/s x mean
    # end-to-end latency = N (Little's law), KV waits included in the latency
    r = rigsize.estimate("llama-3.1-8b", batch=batch, prompt=prompt, output=output, max_model_len=4096)
    p = r.performance
    assert p.requests_per_second * p.e2e_seconds == pytest.approx(batch, rel=1e-9)


def test_closed_loop_never_prefills_faster_than_the_datasheet_peak() -> None:
    # 64 clients of 2048-token prompts and 1 output token on one H100 SXM (989.4 TFLOP/s dense bf16,
    # NVIDIA datasheet): each prompt needs 2048 x 2 x 6,979,321,856 matmul FLOPs (Llama 3.1 8B's
    # 8,030,261,248 parameters less its embedding and lm_head, 525,336,576 each, and its 266,240 norm
    # weights), so at most
    # 989.4e12 / that prompts a second, whatever the latency model says
    p = rigsize.estimate("llama-3.1-8b", gpu="H100-SXM-80GB", batch=64, prompt=2048, output=1).performance
    assert p.requests_per_second <= 989.4e12 / (2048 * 2 * 6_979_321_856) * (1 + 1e-9)
    assert p.requests_per_second * p.e2e_seconds == pytest.approx(64, rel=1e-9)     # TTFT queues instead


def test_a_saturated_prefill_queue_holds_every_other_prompt() -> None:
    # 16 clients of 8,000-token prompts and 2 output tokens on one H100: each client's cycle is
    # almost all prefill, so in steady service the engine always has the other 15 prompts to
    # prefill ahead of a new one (a FIFO server with N customers and no think time: response N x s,
    # the asymptotic bound R >= N D - Z of closed networks, Denning and Buzen 1978).  TTFT is then
    # close to 16 x the lone prefill (the weights streamed in each step are shared, so a little
    # under), never the 9.3 x a capped M/D/1 utilisation (rho <= 0.95) gave.
    lone = rigsize.estimate("llama-3.1-8b", gpu="H100-SXM-80GB", batch=1, prompt=8000, output=2).performance
    many = rigsize.estimate("llama-3.1-8b", gpu="H100-SXM-80GB", batch=16, prompt=8000, output=2).performance
    assert 0.75 * 16 * lone.ttft_seconds <= many.ttft_seconds <= 1.05 * 16 * lone.ttft_seconds


@pytest.mark.parametrize("preset, gpus", [("mixtral-8x7b", 2), ("qwen3-30b-a3b", 1)])
def test_moe_ttft_never_falls_as_the_prompt_grows_under_load(preset: str, gpus: int) -> None:
    # 256 clients of short prompts: the engine packs many prompts into one step, whose experts it
    # streams once for all of them, so a 128-token prompt must not cost the queue a whole step's
    # expert reads (which made TTFT 2.5 s at 128 tokens and 1.6 s at 512 for Mixtral on 2 H100s)
    ttfts = [rigsize.estimate(preset, gpu="H100-SXM-80GB", gpus=gpus, tp=gpus, batch=256, prompt=p,
                              output=16).performance.ttft_seconds for p in (128, 256, 512)]
    assert ttfts == sorted(ttfts), ttfts


def test_data_parallel_replicas_serve_only_the_clients_there_are() -> None:
    # one client: 4 data-parallel replicas serve it no faster than one (three sit idle)
    one = rigsize.estimate("llama-3.1-8b", gpu="H100-SXM-80GB", batch=1, prompt=1000, output=200).performance
    four = rigsize.estimate("llama-3.1-8b", gpu="H100-SXM-80GB", gpus=4, dp=4, batch=1, prompt=1000,
                            output=200).performance
    assert four.requests_per_second == pytest.approx(one.requests_per_second, rel=1e-9)
    assert four.requests_per_second * four.e2e_seconds == pytest.approx(1, rel=1e-9)


def test_spread_waves_decode_beside_the_other_clients_prompts() -> None:
    # 64 clients of 4,096-token prompts and 128 output tokens on one H100 (vLLM): each cycle the
    # engine prefills 64 x 4,096 = 262,144 prompt tokens, about 2,048 per decode step, in the same
    # steps as the decodes (chunked prefill), so a client's TPOT is well above what a burst wave sees
    # (its prompts all prefilled in its first steps, most of its decoding pure; before 2026-12-02 every
    # wave took that TPOT); a lone client's steps carry no other prompt.  The fit-split rows of TensorRT-LLM on Hopper show it: Llama 3.1 8B at
    # c = 64 measured TPOT 64.3 ms against ~17 ms of pure decode.
    arch, layout, gpu, fmt, kv, eff, eng = _setup(0, "vllm")

    def tpot(c: int, output: int, waves: float) -> float:
        return serve(arch, layout, gpu, fmt, kv, eff, eng, c, 4096, output, waves=waves).tpot_seconds

    assert tpot(64, 128, math.inf) > 1.3 * tpot(64, 128, 1.0)
    # the same prompt load spread over 16x the output tokens costs each token less
    assert tpot(64, 2048, math.inf) < tpot(64, 128, math.inf)
    assert tpot(1, 128, math.inf) == pytest.approx(tpot(1, 128, 1.0), rel=0.02)


def test_sglang_keeps_the_burst_waves_tpot() -> None:
    # SGLang's decodes are not charged for the other clients' prefill batches (see speed.serving._steady_state):
    # its TPOT does not depend on how the benchmark spread the waves
    from dataclasses import replace
    arch, layout, gpu, fmt, kv, eff, eng = _setup(0, "sglang")
    sglang = replace(eng, serving="sglang")
    a, b = (serve(arch, layout, gpu, fmt, kv, eff, sglang, 64, 4096, 128, waves=w).tpot_seconds
            for w in (math.inf, 1.0))
    assert a == pytest.approx(b, rel=1e-12)


def test_data_parallel_attention_shares_its_experts() -> None:
    # DeepSeek-V3 (256 routed experts, 8 per token, 58 MoE layers: its config) on 8 x H200 as attention DP 8 with
    # EP 8: each replica decodes one sequence, and the 8 replicas' tokens all reach the experts sharded over the 8
    # GPUs, so a GPU streams the experts 8 tokens touch, 256 x (1 - (1 - 8/256)^8) = 57.4 of 256, not one token's 8.
    # Memory-bound (compute made free, no overheads), at context 0: (dense + 58 x shard x 57.4 / 256) / bandwidth.
    from rigsize.speed.roofline import Efficiency, peak_bandwidth
    from rigsize.speed.serving import model_cost, step_time

    arch = resolve_model("deepseek-v3").arch
    gpu, fmt, kv = resolve_gpu("H200"), resolve_weight_format("fp8-block"), resolve_kv_format("fp8")
    eff = Efficiency(compute=1e9, memory=1.0, attention_compute=1e9, link=1e9, step_overhead_s=0.0,
                     collective_latency_s=0.0, prefill_compute=1e9)
    dp8 = Layout(tp=1, ep=8, dp=8)
    cost = model_cost(arch, dp8, fmt, kv)
    touched = 256 * (1 - (1 - 8 / 256) ** 8)
    assert touched == pytest.approx(57.43, abs=0.01)
    want = (cost.dense_weight_bytes + 58 * cost.expert_bytes_per_layer * touched / 256) / peak_bandwidth(gpu)
    assert step_time(cost, arch, dp8, gpu, fmt, eff, 1, 0, 0, 0).seconds == pytest.approx(want, rel=1e-6)
    # the experts' FLOPs too: with bandwidth made free, one sequence's step is its own GEMMs, its lm_head row and
    # the 7 other replicas' tokens through this GPU's experts
    from rigsize.speed.roofline import compute_dtype, peak_flops
    fast = Efficiency(compute=1.0, memory=1e9, attention_compute=1e9, link=1e9, step_overhead_s=0.0,
                      collective_latency_s=0.0)
    flops = cost.linear_flops_per_token + cost.lm_head_flops_per_token + 7 * cost.expert_flops_per_token
    assert cost.expert_flops_per_token > 0
    assert step_time(cost, arch, dp8, gpu, fmt, fast, 1, 0, 0, 0).seconds == pytest.approx(
        flops / peak_flops(gpu, compute_dtype(fmt, gpu)), rel=1e-6)
    # and the hidden states cross the 8 GPUs twice per MoE layer (all-gather to dispatch, reduce-scatter to
    # combine: vLLM's default allgather_reducescatter backend): 8 replicas x 1 token x 7168 x 2 bytes gathered,
    # 7/8 of it over each GPU's NVLink, 2 x 58 times, with compute and memory made free
    from rigsize.speed.roofline import group_bandwidth
    wire = Efficiency(compute=1e9, memory=1e9, attention_compute=1e9, link=1.0, step_overhead_s=0.0,
                      collective_latency_s=0.0, prefill_compute=1e9)
    want = 2 * 58 * 7 / 8 * (8 * 7168 * 2) / group_bandwidth(gpu, 8)
    assert step_time(cost, arch, dp8, gpu, fmt, wire, 1, 0, 0, 0).seconds == pytest.approx(want, rel=1e-6)



def test_sglang_recv_interval_holds_a_new_request_for_half_its_steps() -> None:
    # SGLang --scheduler-recv-interval N: new requests are taken in every N decode steps
    # (SchedulerRecvSkipper), so an arriving request waits N / 2 decode steps on average instead of
    # half the step in flight: at N = 30, about 14.5 steps more.  A lone client finds the engine idle.
    from dataclasses import replace
    arch, layout, gpu, fmt, kv, eff, eng = _setup(0, "sglang")
    every, thirty = replace(eng, serving="sglang"), replace(eng, serving="sglang", recv_interval=30)
    base, held = (serve(arch, layout, gpu, fmt, kv, eff, e, 16, 1024, 1024) for e in (every, thirty))
    extra = held.ttft_seconds - base.ttft_seconds
    assert 0.9 * 14.5 * base.tpot_seconds < extra <= 14.5 * base.tpot_seconds * 1.0001
    assert held.tpot_seconds == pytest.approx(base.tpot_seconds, rel=1e-9)
    lone = [serve(arch, layout, gpu, fmt, kv, eff, e, 1, 1024, 1024).ttft_seconds for e in (every, thirty)]
    assert lone[0] == pytest.approx(lone[1], rel=1e-12)
    # vLLM has no such setting: the field is ignored there
    vllm = [serve(arch, layout, gpu, fmt, kv, eff, replace(eng, recv_interval=n), 16, 1024, 1024).ttft_seconds
            for n in (1, 30)]
    assert vllm[0] == pytest.approx(vllm[1], rel=1e-12)


def test_tensorrt_llm_holds_new_prompts_as_its_scheduler_does() -> None:
    from dataclasses import replace

    from rigsize.speed.serving import Hold, _hold, _hold_steps

    # batch waiting: a lone waiting prompt is held the whole timeout; with 15 others needed to reach the
    # token threshold and 1 arrival a step, the hold closes after 15 steps, the first waits 15, the next
    # 15 wait 7.5 on average: 15 x (1 + 7.5) / 16
    assert _hold_steps(Hold(20, 16), 1e-9, 63) == pytest.approx(20, rel=1e-6)
    assert _hold_steps(Hold(20, 16), 1.0, 63) == pytest.approx(15 * 8.5 / 16)
    # fewer other clients than the threshold needs: the timeout always binds, and at most the 3 others follow
    assert _hold_steps(Hold(20, 16), 1.0, 3) == pytest.approx(20 * 2.5 / 4)
    assert _hold_steps(Hold(20, 1), 1.0, 63) == 0          # one prompt passes the threshold alone
    # attention-DP balancing: a release every 60 steps, or once every rank has a prompt
    assert _hold_steps(Hold(60, 8, periodic=True, scale=8), 1e-9, 63) == pytest.approx(30, rel=1e-6)
    assert _hold_steps(Hold(60, 8, periodic=True, scale=8), 1.0, 63) == pytest.approx(3.5)
    # the threshold in prompts: 0.9 x 16,384 tokens less one per decoding sequence, 1,024-token prompts
    eng = replace(engine_for(resolve_gpu("H200")), serving="trtllm", batch_wait_iters=20, batch_wait_ratio=0.9)
    assert _hold(eng, Layout(tp=1), 16384, 64, 1024) == Hold(20, math.ceil((0.9 * 16384 - 64) / 1024))
    assert _hold(replace(eng, serving="vllm"), Layout(tp=1), 16384, 64, 1024) is None
    assert _hold(eng, Layout(tp=1, dp=8), 16384, 64, 1024) is None        # batch waiting is off under attention DP
    # in the simulation: held prompts wait while the others decode; a lone client is never held
    arch, layout, gpu, fmt, kv, eff, base = _setup(1, "trtllm")
    plain, held = (replace(base, serving="trtllm", batch_wait_iters=n, batch_wait_ratio=0.9) for n in (0, 20))
    a, b = (serve(arch, layout, gpu, fmt, kv, eff, e, 4, 1024, 1024) for e in (plain, held))
    assert b.ttft_seconds - a.ttft_seconds > 10 * a.tpot_seconds
    lone = [serve(arch, layout, gpu, fmt, kv, eff, e, 1, 1024, 1024).ttft_seconds for e in (plain, held)]
    assert lone[0] == pytest.approx(lone[1], rel=1e-12)
