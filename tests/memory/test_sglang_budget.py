"""SGLang's own KV budget (--engine sglang): SGLang's default mem_fraction_static per release era, the pool
it leaves, and SGLang's start-up logs.

Expected values are worked by hand from SGLang's code as quoted in data/validation/sglang_budget_rules.md
(sec. 1 and 4) and data/runtime.toml [sglang.budget_era.*], with the card's nvidia-smi total (H100 SXM:
81,559 MiB, gpus.toml) and CUDA's total (79.18 GiB), never from rigsize's own functions.
"""

from __future__ import annotations

import math

import pytest

import rigsize
from rigsize.launch import launch
from rigsize.planning.search import search

H100 = "H100-SXM-80GB"
H100_MIB = 81559
H200_MIB = 143771       # gpus.toml memory_bytes_visible of H200-SXM-141GB, nvidia-smi's total
GiB, MiB = 2**30, 2**20


def _est(model: str = "qwen2-7b", **opts):
    return rigsize.estimate(model, task="inference", engine="sglang", gpu=opts.pop("gpu", H100), **opts)


@pytest.mark.parametrize("version, tp, reserved_mib", [
    # 0.5.23: 512 + 8192 x 1.5 + 256 x 2 + tp/8 x 1024 + 58 prefill graph sizes x 8 (non-MLA, CUDA)
    ("0.5.23", 1, 512 + 12288 + 512 + 128 + 464),
    ("0.5.10", 1, 512 + 12288 + 512 + 128 + 464),           # prefill graphs on by default from 0.5.10
    # 0.5.3-0.5.9 (0.5.5, 0.5.9: the same code): no prefill graph term
    ("0.5.3", 1, 512 + 12288 + 512 + 128),
    ("0.5.5", 1, 512 + 12288 + 512 + 128),
    ("0.5.9", 1, 512 + 12288 + 512 + 128),
    ("0.5.5", 2, 512 + 12288 + 512 + 256),
    # 0.4.10.post2's step table below 90 GiB: (9.5 + tp x pp / 2) x 1024
    ("0.4.10.post2", 1, (9.5 + 0.5) * 1024),
    ("0.4.10.post2", 2, (9.5 + 1.0) * 1024),
    ("0.5.2", 1, (9.5 + 0.5) * 1024),                        # the step table's last release
])
def test_default_fraction_is_sglangs_rule(version: str, tp: int, reserved_mib: float) -> None:
    r = _est(engine_version=version, gpus=tp, tp=tp)
    assert r.assumptions["mem_fraction_static"] == round((H100_MIB - reserved_mib) / H100_MIB, 3)


def test_worked_examples_of_the_rules_file() -> None:
    """sglang_budget_rules.md sec. 4: 0.830 (0.5.23), 0.835 (0.5.5), 0.874 (0.4.10.post2) on an 81,559 MiB card."""
    got = [_est(engine_version=v).assumptions["mem_fraction_static"] for v in ("0.5.23", "0.5.5", "0.4.10.post2")]
    assert got == [0.830, 0.835, 0.874]


def test_mla_reserves_the_flat_prefill_graph_term() -> None:
    """0.5.23, MLA: 1536 MiB for prefill graphs instead of 8 per size; tp 8 takes the >= 4 graph max_bs 512."""
    r = rigsize.estimate("deepseek-v3", task="inference", engine="sglang", gpu="H200-SXM-141GB", gpus=8, tp=8)
    mib = H200_MIB
    reserved = 512 + 8192 * 1.5 + 512 * 2 + 8 / 8 * 1024 + 1536
    assert r.assumptions["mem_fraction_static"] == round((mib - reserved) / mib, 3)


@pytest.mark.parametrize("version, reserved_mib", [
    ("0.5.9", 512 + 12288 + 512 * 2 + 1024 + 2048),          # EAGLE-type +2048, no prefill graphs before 0.5.10
    ("0.5.12", 512 + 12288 + 512 * 2 + 1024 + 4096),         # +4096; prefill graphs off under speculative decoding
    ("0.5.15", 512 + 12288 + 512 * 2 + 1024),                # no speculative term from 0.5.14
])
def test_speculative_decoding_reserve_by_era(version: str, reserved_mib: float) -> None:
    """DeepSeek-V3 with its MTP layer (SGLang NEXTN, an EAGLE-type algorithm) on 8 x H200 at tp 8."""
    r = rigsize.estimate("deepseek-v3", task="inference", engine="sglang", engine_version=version,
                         gpu="H200-SXM-141GB", gpus=8, tp=8, speculative="mtp")
    mib = H200_MIB
    assert r.assumptions["mem_fraction_static"] == round((mib - reserved_mib) / mib, 3)


@pytest.mark.parametrize("version", ["0.5.10", "0.5.23"])
def test_pipeline_parallel_turns_the_prefill_graphs_off(version: str) -> None:
    """0.5.10's _handle_piecewise_cuda_graph and 0.5.23's cuda_graph_hook.py l.150 disable them at pp > 1:
    tp 1 x pp 2 reserves 512 + 12288 + 256 x 2 + 2/8 x 1024 MiB, no 58 x 8 MiB for prefill graphs."""
    base = 512 + 12288 + 256 * 2 + 2 / 8 * 1024
    got = _est("llama-3.1-8b", engine_version=version, gpus=2, pp=2).assumptions["mem_fraction_static"]
    assert got == round((H100_MIB - base) / H100_MIB, 3)


def test_amd_aiter_cuts_the_fraction_at_long_contexts() -> None:
    """0.5.23 attention_hook.py l.244-268: on ROCm's aiter backend with context_len > 8192 the fraction in force is
    multiplied by 0.85, a given one too; not at 8192 tokens."""
    long = rigsize.estimate("qwen2-7b", task="inference", engine="sglang", gpu="MI300X", mem_fraction_static=0.8)
    short = rigsize.estimate("qwen2-7b", task="inference", engine="sglang", gpu="MI300X", mem_fraction_static=0.8,
                             max_model_len=8192, prompt=1024, output=512)
    assert long.memory.usable_bytes == pytest.approx(0.85 * short.memory.usable_bytes, rel=1e-9)


def test_a_cross_engine_plan_takes_each_engines_own_budget_option() -> None:
    """--gpu-memory-utilization applies to the vLLM-sized candidates and SGLang's keep their own default: the plan
    is not refused for it (a review found it was)."""
    recs = search("qwen2-7b", task="inference", gpu=H100, gpu_memory_utilization=0.8, top=20)["recommendations"]
    engines = {r["choices"]["engine"] for r in recs}
    assert {"vllm", "sglang"} <= engines


def test_pool_is_the_fraction_of_pre_load_free_less_the_weights() -> None:
    """Qwen3-32B bf16 on one H100 at --mem-fraction-static 0.8: (0.8 x (79.18 GiB - 400 MiB CUDA context)
    - 2 B x 32,762,123,264 parameters) / (64 layers x 8 KV heads x 128 x 2 x 2 B) tokens."""
    r = _est("qwen3-32b", mem_fraction_static=0.8, prompt=1024, output=1)
    pool = 0.8 * (79.18 * GiB - 400 * MiB) - 2 * 32_762_123_264
    assert r.memory.kv_cache_tokens == pytest.approx(math.floor(pool / (64 * 8 * 128 * 2 * 2)), abs=1)
    assert r.memory.per_gpu.activations == 0 and r.memory.per_gpu.overhead == 0     # SGLang's reserve
    assert r.memory.usable_bytes == pytest.approx(0.8 * (79.18 * GiB - 400 * MiB), abs=1)


def test_sglang_starts_where_vllm_refuses_a_long_context() -> None:
    """vLLM refuses to start unless one --max-model-len request fits; SGLang caps a request at its pool
    (tp_worker.py max_req_len = min(context_len - 1, pool - 1))."""
    args = dict(task="inference", gpu="L4", max_model_len=131072, prompt=1024, output=512)
    assert not rigsize.estimate("qwen2.5-7b", engine="vllm", **args).memory.fits
    sg = rigsize.estimate("qwen2.5-7b", engine="sglang", **args).memory
    assert sg.fits and 0 < sg.kv_cache_tokens < 131072


@pytest.mark.parametrize("opts, words", [
    (dict(engine="sglang", gpu_memory_utilization=0.8), "--mem-fraction-static"),
    (dict(engine="vllm", mem_fraction_static=0.8), "--engine sglang"),
    (dict(engine="sglang", engine_version="0.4.9"), "from 0.4.10 on"),
])
def test_budget_settings_of_the_other_engine_are_refused(opts: dict, words: str) -> None:
    with pytest.raises(rigsize.RigsizeError) as err:
        rigsize.estimate("qwen2-7b", task="inference", **opts)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("engine, line, edges", [
    ("sglang", "0.5", "0.5.3, 0.5.10, 0.5.14, 0.5.20"),   # SGLang's eras change inside 0.5 (runtime.toml)
    ("vllm", "0.6", "0.6.4, 0.6.5"),
    # rules other than the eras change inside these lines: hybrid pages from 0.10.2 (runtime.toml
    # [vllm.hybrid_pages]), --speculative mtp from 0.11.2, the batching defaults at 0.8.5 (_batching_defaults)
    ("vllm", "0.10", "0.10.2"), ("vllm", "0.11", "0.11.2"), ("vllm", "0.8", "0.8.5"),
])
def test_a_release_line_that_spans_eras_is_refused(engine: str, line: str, edges: str) -> None:
    # "0.5" once read as 0.5.0, below 0.5.3: the 0.4.10 step table, silently
    with pytest.raises(rigsize.RigsizeError) as err:
        rigsize.estimate("qwen2-7b", task="inference", engine=engine, engine_version=line)
    assert edges in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("line", ["0.17", "0.21", "0.22"])
def test_a_release_line_inside_one_era_is_its_first_release(line: str) -> None:
    # every since/until rule reads the line as X.Y.0, not only the era: 0.17.0 and 0.22.0 change the
    # sampler default (runtime.toml [[vllm.sampler.default]]), which a bare (0, 17) sorted below
    one = rigsize.estimate("qwen2-7b", task="inference", engine="vllm", engine_version=line)
    first = rigsize.estimate("qwen2-7b", task="inference", engine="vllm", engine_version=f"{line}.0")
    assert one.assumptions["sampler"] == first.assumptions["sampler"]
    assert one.memory.kv_cache_tokens == first.memory.kv_cache_tokens


def test_the_newest_release_read_and_its_candidates_take_no_note() -> None:
    for version in ("0.5.23", "0.5.23rc1", "0.5.22.post3"):
        r = rigsize.estimate("qwen2-7b", task="inference", engine="sglang", engine_version=version)
        assert "engine_version_note" not in r.assumptions, version


def test_the_refusal_of_a_line_names_a_release_to_give() -> None:
    with pytest.raises(rigsize.RigsizeError) as err:
        rigsize.estimate("qwen2-7b", task="inference", engine="sglang", engine_version="0.5rc1")
    assert "--engine-version 0.5.3)" in str(err.value)        # not "0.5rc1.3"


@pytest.mark.parametrize("engine, version, newest", [("sglang", "1.0.0", "0.5.23"), ("vllm", "0.40.1", "0.33.0"),
                                                     ("sglang", "0.5.23.post1", "0.5.23")])
def test_a_release_newer_than_any_read_says_whose_rules_it_takes(engine: str, version: str, newest: str) -> None:
    r = rigsize.estimate("qwen2-7b", task="inference", engine=engine, engine_version=version)
    assert newest in r.assumptions["engine_version_note"]
    latest = rigsize.estimate("qwen2-7b", task="inference", engine=engine)
    assert r.memory.kv_cache_tokens == latest.memory.kv_cache_tokens
    assert "engine_version_note" not in latest.assumptions


def test_launch_writes_the_fraction_the_plan_was_sized_with() -> None:
    rec = search("qwen2-7b", task="inference", engine="sglang", gpu=H100, gpus=1, mem_fraction_static=0.77,
                 top=1)["recommendations"][0]
    argv = list(launch(rec).launch.argv[0])
    assert argv[argv.index("--mem-fraction-static") + 1] == "0.77"


def test_start_up_logs_within_their_measured_error() -> None:
    """rigsize against the #tokens SGLang printed (sglang_startup_logs.toml, split written before the first
    comparison): measured 2026-12-03 at +10.4%, +10.2%, +1.1% on the three fit logs and +10.2% on the one
    reserved log (Qwen3-235B-A22B-FP8, tp 4, given 0.93).  Over-prediction: the weights' load takes 0.12-0.28
    GiB more than their bytes and the process holds 0.40-0.82 GiB before it, against 400 MiB charged."""
    from rigsize.validation.kv import sglang_startup_rows

    rows = sglang_startup_rows()
    assert {r.split for r in rows} == {"fit", "reserved"} and len(rows) == 4
    for r in rows:
        assert 0 < r.predicted / r.measured - 1 < 0.15, r
