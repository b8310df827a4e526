"""The inference memory budget against vLLM's own start-up logs and published
``transformers`` memory tables (data/validation/vllm_startup_logs.toml and
transformers_memory.toml: quoted from public issues and model docs, nobody here
produced them).

The targets (KV capacity and concurrency within 3% of the logs) are reported by
``rigsize validate --source kv``; the tolerances below are regression guards on the
logs that meet them today, stated as such, and the logs that do not are listed in
KNOWN_MISSES with the reason found.
"""

from __future__ import annotations

import pytest

import rigsize
from rigsize.validation.kv import log_case, transformers_rows, vllm_logs, vllm_startup_rows

# Logs rigsize misses by more than 3%, with what was found (see the issue note):
KNOWN_MISSES = {
    # V0 (version not printed): the printed capacity (81,536 tokens) is below what the printed
    # 8.69 GiB holds at 96 KiB/token; V0 samples on the driver worker only and vLLM takes the
    # fewest blocks over workers, so rank 0's sort warm-up sets it; +4.7% left
    "rtx4090x2-r1-distill-qwen14b-rt",
    # gpu_memory_utilization not printed (the default of that era assumed)
    "l40s-llama31-8b-32k-rt",
    # LMCache connector active; max_model_len and utilization not printed
    "h100-x4-qwen3-235b-fp8-tp4-rt",
    # V0 0.7.3 with MLA: the printed weights (83.88 GiB per rank) are 4.6 GiB above the
    # block-FP8 checkpoint's share and the printed non-torch memory is 7.16 GiB per rank;
    # neither is modelled
    "h200-x8-deepseek-r1-tp8-128k",
    # 4 x RTX PRO 6000 over PCIe: the printed weights + non-torch (56.89 GiB) hold 1.7 GiB of
    # non-torch memory, 1.5 GiB above rigsize's figure (+4.9%)
    "rtxpro6000s-x4-qwen3-235b-fp8-tp4-32k",
    # pp=2: only the first stage's line is quoted; its non-KV memory beyond the weights is
    # 3.0 GiB (forward 1.3 GiB; the rest, likely pipeline communication buffers, unexplained)
    "rtxpro6000s-x2-qwen3-32b-pp2-u0426-32k",
}
REGRESSION_GUARD = 0.035


def test_enough_logs_are_reproduced() -> None:
    rows = vllm_startup_rows()
    cases = {r.case for r in rows}
    assert len(cases) >= 8
    gpus = {log["gpu"].split()[0] for log in vllm_logs() if log["id"] in cases}
    assert {"RTX-3090", "A100", "L40S", "H100", "H200"} <= gpus


@pytest.mark.parametrize("row", vllm_startup_rows(), ids=lambda r: f"{r.case}:{r.metric}")
def test_kv_capacity_matches_log(row) -> None:
    if row.case in KNOWN_MISSES:
        pytest.skip("known miss, reported by rigsize validate")
    assert abs(row.error) <= REGRESSION_GUARD, (row.case, row.metric, row.measured, row.predicted)


def test_page_size_matches_the_log() -> None:
    """vLLM 0.6.6 on an RTX 3090, Qwen2.5-7B: 5.77 GiB of KV cache made 6,749 blocks of 16
    tokens, so one token of all 28 layers is 5.77 GiB / (6749 x 16) = 57,375 bytes as
    printed (rounded GiB); rigsize's K + V bytes per token must agree to that rounding."""
    r = rigsize.estimate("qwen2.5-7b", gpu="RTX-3090", engine_version="0.6.6", max_model_len=8192)
    per_token_from_log = 5.77 * 2**30 / (6749 * 16)
    assert r.model.kv_bytes_per_token == pytest.approx(per_token_from_log, rel=0.001)


def test_refuses_to_start_like_vllm() -> None:
    """RTX 3090, Llama-3.1-8B, max_model_len 29,000: vLLM refused to start ('larger than
    the maximum number of tokens that can be stored in KV cache (23648)')."""
    log = next(x for x in vllm_logs() if x["id"] == "rtx3090-llama31-8b-29k")
    preset, opts = log_case(log)
    r = rigsize.estimate(preset, **opts)
    assert not r.memory.fits
    assert any("refuse to start" in w for w in r.warnings)
    assert r.memory.max_context_single == pytest.approx(23648, rel=REGRESSION_GUARD)
    ok = rigsize.estimate(preset, **{**opts, "max_model_len": r.memory.max_context_single})
    assert ok.memory.fits


def test_defaults_follow_the_version() -> None:
    """Utilization 0.9 before 0.20 and 0.92 from it, with CUDA graphs charged inside the
    budget only from 0.20 and never with --enforce-eager (vllm_budget_rules.md sec. 1)."""
    old = rigsize.estimate("llama-3.1-8b", engine_version="0.10.1", max_model_len=8192)
    new = rigsize.estimate("llama-3.1-8b", max_model_len=8192)
    eager = rigsize.estimate("llama-3.1-8b", max_model_len=8192, enforce_eager=True)
    assert old.assumptions["gpu_memory_utilization"] == 0.9
    assert new.assumptions["gpu_memory_utilization"] == 0.92
    assert "overhead/cuda_graphs" in new.memory.details
    assert "overhead/cuda_graphs" not in old.memory.details
    assert "overhead/cuda_graphs" not in eager.memory.details
    assert eager.memory.kv_cache_tokens > new.memory.kv_cache_tokens


def test_max_model_len_defaults_to_the_model() -> None:
    r = rigsize.estimate("qwen2.5-7b")
    assert r.memory.max_model_len == r.model.max_position_embeddings == r.assumptions["max_model_len"]
    with pytest.raises(rigsize.RigsizeError, match="exceeds --max-model-len"):
        rigsize.estimate("qwen2.5-7b", max_model_len=1024, prompt=2048)


def test_context_limits_are_consistent() -> None:
    r = rigsize.estimate("llama-3.1-8b", gpu="H100-SXM-80GB", batch=8, max_model_len=32768)
    m = r.memory
    # full attention: the longest single context is the whole pool (vLLM estimate_max_model_len),
    # reported up to the model's own limit
    assert m.max_context_single == min(m.kv_cache_tokens, r.model.max_position_embeddings)
    assert m.max_context_at_concurrency == min(m.kv_cache_tokens // 8 // 16 * 16, r.model.max_position_embeddings)
    assert m.max_concurrency_at_max_model_len == pytest.approx(m.kv_cache_tokens / 32768, rel=0.01)


def test_transformers_engine_matches_qwen25_benchmark() -> None:
    """Qwen2.5 speed benchmark (A100 80GB, transformers 4.46.0, batch 1, 2048 output
    tokens; torch.cuda.max_memory_allocated in GiB): every single-GPU BF16 row within
    5% (regression guard; rigsize validate reports each)."""
    rows = [r for r in transformers_rows() if r.split == "published (GiB)"]
    assert len(rows) >= 20
    worst = max(rows, key=lambda r: abs(r.error))
    assert abs(worst.error) <= 0.05, (worst.case, worst.measured, worst.predicted)


def test_transformers_before_445_keeps_prompt_logits() -> None:
    """transformers < 4.45 ran lm_head over every prompt token and upcast to fp32 (PR
    #31292): at 30,720 prompt tokens and Qwen2's 152,064-token vocabulary that is
    30720 x 152064 x (2 + 4) bytes more than 4.46 holds."""
    kw = dict(engine="transformers", prompt=30720, output=2048, gpu="A100-SXM-80GB", max_model_len=32768)
    old = rigsize.estimate("qwen2-7b", engine_version="4.38.2", **kw)
    new = rigsize.estimate("qwen2-7b", engine_version="4.46.0", **kw)
    extra = old.memory.per_gpu.activations - new.memory.per_gpu.activations
    assert extra == pytest.approx(30720 * 152064 * 6, rel=0.001)


def test_old_versions_refuse_without_window_discount() -> None:
    """vLLM <= 0.9.1 starts only if its KV tokens reach max_model_len, windows or not
    (V0: 'larger than the maximum number of tokens that can be stored in KV cache')."""
    r = rigsize.estimate("mistral-7b-v0.1", gpu="A10", engine_version="0.6.3")
    assert r.memory.kv_cache_tokens < r.memory.max_model_len
    assert not r.memory.fits


def test_transformers_prefills_the_prompt_in_one_pass() -> None:
    """generate() runs each prompt in one forward pass: at batch 1 the TTFT is a single
    prefill, so it is within a small factor of vLLM's chunked prefill of the same prompt
    (the review found 57 s against 0.2 s when it was prefilled a token per step)."""
    kw = dict(prompt=8192, output=64, gpu="H100-SXM-80GB")
    hf = rigsize.estimate("qwen2.5-7b", engine="transformers", **kw).performance
    vllm = rigsize.estimate("qwen2.5-7b", **kw).performance
    assert hf.ttft_seconds < 3 * vllm.ttft_seconds


@pytest.mark.parametrize("opts", [
    {"max_model_len": 1_000_000},                                  # above max_position_embeddings
    {"max_num_batched_tokens": 100, "max_num_seqs": 1000},        # vLLM's scheduler check
    {"engine": "sglang", "engine_version": "0.4.9"},               # older than SGLang's modelled budget rules
    {"engine": "trtllm", "engine_version": "1.0.0"},               # no TensorRT-LLM versions are modelled
    {"engine": "trtllm", "gpu_memory_utilization": 0.8},           # vLLM's budget share, not TensorRT-LLM's
    {"engine": "vllm", "kv_cache_free_gpu_memory_fraction": 0.8},  # TensorRT-LLM's budget share, not vLLM's
    {"engine": "sglang", "gpu_memory_utilization": 0.8},           # vLLM's budget share, not SGLang's
    {"engine": "vllm", "mem_fraction_static": 0.8},                # SGLang's budget share, not vLLM's
    {"engine": "transformers", "enforce_eager": True},             # no such setting in generate()
    {"engine": "transformers", "sampler": "sort"},                 # no vLLM warm-up in generate()
    {"engine": "sglang", "sampler": "sort"},                       # vLLM's warm-up only
    {"engine_version": "1e3"},
])
def test_contradictory_engine_settings_are_refused(opts) -> None:
    with pytest.raises(rigsize.RigsizeError):
        rigsize.estimate("llama-3.1-8b", **opts)


def test_no_false_queueing_warning_with_replicas() -> None:
    r = rigsize.estimate("llama-3.1-8b", dp=2, batch=3, max_model_len=8192)
    assert not any("queue for a slot" in w for w in r.warnings)


@pytest.mark.parametrize(("version", "sampler"), [
    ("0.6.6", "sort"),        # V0 profile_run: SamplingParams(top_p=0.99, top_k=vocab - 1), sorted
    ("0.10.2", "sort"),       # FlashInfer not a dependency of the wheel (an extra)
    ("0.16.0", "sort"),       # FlashInfer required but opt-in (PR #26859)
    ("0.17.0", "triton"),     # apply_top_k_top_p_triton for 8 rows or more
    ("0.22.0", "flashinfer"),  # on by default (PR #40376)
])
def test_sampler_default_follows_the_wheels(version, sampler) -> None:
    r = rigsize.estimate("llama-3.1-8b", gpu="H100", engine_version=version, max_model_len=8192)
    assert r.assumptions["sampler"] == sampler


def test_sort_sampler_peak_matches_the_printed_activation() -> None:
    """vLLM 0.10.2 on 8 x L40S printed 'FlashInfer is not available' and '1.4 GiB for peak
    activation' for Qwen3-235B-A22B FP8 with expert parallelism (log
    l40s-x8-qwen3-235b-fp8-ep-32k): an independent check of the sort path's copies, which were
    measured on other models (llm-d's H100 logs)."""
    r = rigsize.estimate("qwen3-235b-a22b", gpu="L40S", tp=8, ep=8, weights="fp8-block", engine_version="0.10.2",
                         max_model_len=32768, output=1, prompt=1024)
    assert r.memory.per_gpu.activations / 2**30 == pytest.approx(1.40, rel=0.05)
    flash = rigsize.estimate("qwen3-235b-a22b", gpu="L40S", tp=8, ep=8, weights="fp8-block", engine_version="0.10.2",
                             max_model_len=32768, output=1, prompt=1024, sampler="flashinfer")
    assert flash.memory.per_gpu.activations < 0.5 * r.memory.per_gpu.activations


def test_hybrid_pages_follow_the_printed_block_size() -> None:
    """vLLM 0.10.2 printed, for Qwen3-Next-80B-A3B at tp=2 on H200 (log
    h200-x2-qwen3-next-80b-tp2-256k): 'Setting attention block size to 544 tokens' and
    'Padding mamba page size by 1.49%'."""
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.memory.per_gpu import hybrid_pages
    from rigsize.memory.runtime import engine_for
    from rigsize.model.families import build_architecture
    from rigsize.model.formats import resolve_kv_format
    from rigsize.model.inputs import preset_config
    from rigsize.model.recurrent import recurrent_layers
    from rigsize.planning.layout import Layout

    arch = build_architecture(preset_config("qwen3-next-80b-a3b"))
    eng = engine_for(resolve_gpu("H200"), opts={"engine_version": "0.10.2"})
    pages = hybrid_pages(arch, Layout(tp=2), resolve_kv_format("bf16"), eng, range(arch.num_hidden_layers))
    assert pages is not None and pages.block_size == 544
    state_page = pages.page_bytes / 1.0149                  # the printed padding
    conv = arch.conv_state_elements / len(recurrent_layers(arch)) * 3 / 4
    assert state_page == pytest.approx((conv + arch.ssm_state_elements / 36) * 2 / 2, rel=0.001)
    assert (pages.group_size, pages.attention_groups, pages.state_groups) == (12, 1, 3)
    old = engine_for(resolve_gpu("H200"), opts={"engine_version": "0.9.2"})
    assert hybrid_pages(arch, Layout(tp=2), resolve_kv_format("bf16"), old, range(48)) is None


def test_deepseek_v32_indexer_keys_are_cached_as_vllm_stores_them(tmp_path) -> None:
    """vLLM's DeepseekV32IndexerCache (deepseek_v2.py, 0.33.0): the indexer's key in fp8 plus
    one fp32 scale per 128 values, uint8 storage: 128 + 4 = 132 bytes per token per layer,
    beside MLA's latent (512 + 64 values, 1,152 bytes in bf16)."""
    import json

    from rigsize.model.inputs import preset_config

    cfg = {**preset_config("deepseek-v3"), "model_type": "deepseek_v32", "index_n_heads": 64,
           "index_head_dim": 128, "index_topk": 2048}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    v32 = rigsize.estimate(str(path), gpu="H200", tp=8, max_model_len=8192, prompt=1024, output=1)
    v3 = rigsize.estimate("deepseek-v3", gpu="H200", tp=8, max_model_len=8192, prompt=1024, output=1)
    cached = 64 * -(-1025 // 64)        # 1,025 tokens in FlashMLA's 64-token blocks
    per_token_v3 = v3.memory.kv_bytes_per_sequence / (61 * cached)
    per_token_v32 = v32.memory.kv_bytes_per_sequence / (61 * cached)
    assert per_token_v3 == 1152 and per_token_v32 == 1152 + 132
    assert v32.model.kv_bytes_per_token == v3.model.kv_bytes_per_token      # K/V only, as documented


def test_text_only_vllm_builds_no_vision_tower() -> None:
    """vLLM skips the tower "when --limit-mm-per-prompt is set to zero for all of their
    modalities" (interfaces.py _mark_tower_model, 0.33.0): --images-per-request 0 drops the
    tower and projector (params_vision, 2 bytes each in bf16) and the encoder cache."""
    with_tower = rigsize.estimate("qwen2.5-vl-7b", gpu="H100")
    text_only = rigsize.estimate("qwen2.5-vl-7b", gpu="H100", images_per_request=0)
    assert with_tower.memory.per_gpu.weights - text_only.memory.per_gpu.weights == 2 * with_tower.model.params_vision
    assert text_only.memory.per_gpu.encoder_cache == 0
    assert text_only.memory.kv_cache_tokens > with_tower.memory.kv_cache_tokens


def test_nemotron_h_state_page_is_fp32_as_vllm_keeps_it() -> None:
    """vLLM's NemotronH hook keeps the SSM cache at the config's mamba_ssm_cache_dtype, else
    float32 (DEFAULT_MAMBA_SSM_CACHE_DTYPE, model_executor/models/config.py 0.33.0): per layer
    conv (4096 + 2 x 8 x 128) x 3 x 2 B + SSM 64 x 64 x 128 x 4 B = 2,134,016 B, so the
    attention block (1,024 B per token per layer) grows to 16 x ceil(2,134,016 / 16,384)."""
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.memory.per_gpu import hybrid_pages
    from rigsize.memory.runtime import engine_for
    from rigsize.model.families import build_architecture
    from rigsize.model.formats import resolve_kv_format
    from rigsize.model.inputs import preset_config
    from rigsize.planning.layout import Layout

    arch = build_architecture(preset_config("nemotron-3-nano-30b-a3b"))
    pages = hybrid_pages(arch, Layout(), resolve_kv_format("bf16"), engine_for(resolve_gpu("H100")),
                         range(arch.num_hidden_layers))
    assert pages is not None and pages.block_size == 16 * -(-2_134_016 // 16_384) == 2096
